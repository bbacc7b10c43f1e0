//! `vmmctl boot-layout`: the EFI loader's plan for a platform, checked without a board.
//!
//! The same `boot_plan::layout::plan` the loader runs, on the kernel and root task it will
//! carry, against the memory seL4 was built for (`support/platform_gen.json` of the prefix)
//! and the ranges the platform table forbids; only the firmware's memory map is missing (the
//! loader claims every range from the firmware at boot and stops if one is taken).

use std::fmt::Write as _;
use std::path::Path;

use boot_plan::elf::Elf;
use boot_plan::layout::{self, Request};
use boot_plan::pagetable::{self, KernelWindow};
use boot_plan::prefix::Sel4Prefix;

const USAGE: &str =
    "usage: vmmctl boot-layout <platform> --sel4-prefix DIR --root-task ELF [--dtb-bytes N]";

const HELP: &str = "
prints where the EFI loader puts seL4, the DTB and the root task for <platform>, and fails if
anything lands outside the memory seL4 was built for or in a range the platform table forbids
(identity-mapped guest RAM, carve-outs). The firmware's memory map is not checked (the loader
claims every range from the firmware at boot).

  --sel4-prefix DIR  the seL4 install prefix (bin/kernel.elf, support/platform_gen.json)
  --root-task ELF    the root task the loader carries
  --dtb-bytes N      room for the DTB (default 1 MiB; decimal or 0x hex)
  -h, --help         print this and exit
";

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the command.
pub fn run(args: &[String]) -> Result<String, String> {
    let mut name = None;
    let (mut prefix, mut root_task, mut dtb_bytes) = (None, None, 1u64 << 20);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(format!("{USAGE}\n{HELP}")),
            "--sel4-prefix" => prefix = Some(value()?.clone()),
            "--root-task" => root_task = Some(value()?.clone()),
            "--dtb-bytes" => {
                let v = value()?;
                dtb_bytes = parse_u64(v).ok_or_else(|| format!("--dtb-bytes {v}: not a number"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            _ if name.is_none() => name = Some(a),
            _ => return Err(format!("unexpected argument {a:?}\n{USAGE}")),
        }
    }
    let p = crate::platform(name)?;
    let prefix = Path::new(
        prefix
            .as_ref()
            .ok_or_else(|| format!("--sel4-prefix is needed\n{USAGE}"))?,
    );
    let root_task = root_task.ok_or_else(|| format!("--root-task is needed\n{USAGE}"))?;

    let sel4 = Sel4Prefix::read(prefix)?;
    let (cores, memory) = (sel4.cores, sel4.memory);
    let kernel_bytes = read(&sel4.kernel)?;
    let user_bytes = read(Path::new(&root_task))?;
    let kernel = Elf::parse(&kernel_bytes).map_err(|e| format!("kernel.elf: {e}"))?;
    let user = Elf::parse(&user_bytes).map_err(|e| format!("{root_task}: {e}"))?;
    let window = KernelWindow {
        virt: kernel.virt_span(),
        phys: kernel.phys_span().start,
    };
    let tables =
        pagetable::boot_map(&memory, window).map_err(|e| format!("boot page tables: {e}"))?;
    let forbidden = layout::platform_forbidden(p);
    let req = Request {
        kernel: &kernel,
        user: &user,
        dtb_bytes,
        table_bytes: tables.bytes(),
        cores,
        sel4_memory: &memory,
        forbidden: &forbidden,
        firmware: None,
    };
    let plan = layout::plan(&req).map_err(|e| format!("{}: {e}", p.name))?;

    let mut s = format!(
        "platform {}: seL4 for {cores} cores; seL4's memory:",
        p.name
    );
    for m in &memory {
        let _ = write!(s, " {m}");
    }
    s.push_str("\n\nthe loader writes (each claimed from the firmware at boot):\n");
    for (name, r) in plan.regions() {
        let _ = writeln!(s, "  {name:<17} {r} {:>9} KiB", r.len() / 1024);
    }
    s.push_str("\nnothing in:\n");
    for f in &forbidden {
        let _ = writeln!(s, "  {:<30} {}", f.name, f.range);
    }
    let _ = writeln!(
        s,
        "\nkernel entry {:#x}; root task entry {:#x}, pv_offset {:#x}; boot tables {} KiB",
        plan.kernel_entry,
        plan.user_entry,
        plan.pv_offset(),
        tables.bytes() / 1024
    );
    Ok(s)
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use crate::run;
    use boot_plan::testing::{kernel, root_task};

    /// An seL4 install prefix as the Orin build leaves it (support/sel4/orin-agx): 12 cores,
    /// 40-bit PA, the overlay's memory (DRAM below 4 GiB minus the RAS-error region).
    fn orin_prefix(kernel_phys: u64) -> (tempdir::Dir, String, String) {
        let d = tempdir::Dir::new();
        let p = d.path().join("prefix");
        std::fs::create_dir_all(p.join("bin")).unwrap();
        std::fs::create_dir_all(p.join("libsel4/include/kernel")).unwrap();
        std::fs::create_dir_all(p.join("support")).unwrap();
        std::fs::write(p.join("bin/kernel.elf"), kernel(kernel_phys)).unwrap();
        std::fs::write(
            p.join("libsel4/include/kernel/gen_config.json"),
            r#"{"PLAT": "orinagx", "MAX_NUM_NODES": "12", "ARM_HYPERVISOR_SUPPORT": true, "ARM_PA_SIZE_BITS_40": true}"#,
        )
        .unwrap();
        std::fs::write(
            p.join("support/platform_gen.json"),
            r#"{"memory": [{"start": 2147483648, "end": 3187671040}, {"start": 3254779904, "end": 4294836224}]}"#,
        )
        .unwrap();
        let rt = d.path().join("root-task.elf");
        std::fs::write(&rt, root_task()).unwrap();
        let (p, rt) = (p.display().to_string(), rt.display().to_string());
        (d, p, rt)
    }

    fn args(prefix: &str, rt: &str) -> Vec<String> {
        [
            "boot-layout",
            "orin-agx",
            "--sel4-prefix",
            prefix,
            "--root-task",
            rt,
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn orin_layout_is_printed_and_clear_of_guest_ram() {
        let (_d, prefix, rt) = orin_prefix(0x8000_0000);
        let out = run(&args(&prefix, &rt)).unwrap();
        assert!(out.contains("seL4 for 12 cores"), "{out}");
        assert!(
            out.contains("seL4 kernel       0x0080000000..0x0080200000"),
            "{out}"
        );
        assert!(
            out.contains("device tree       0x0080200000..0x0080300000"),
            "{out}"
        );
        assert!(
            out.contains("guest RAM (identity-mapped)    0x0090000000..0x00a0000000"),
            "{out}"
        );
        assert!(
            out.contains("RAS-error region               0x00be000000..0x00c2000000"),
            "{out}"
        );
        assert_eq!(run(&args(&prefix, &rt)).unwrap(), out);
    }

    #[test]
    fn a_kernel_in_guest_ram_is_refused_with_the_reason() {
        let (_d, prefix, rt) = orin_prefix(0x9000_0000);
        let err = run(&args(&prefix, &rt)).unwrap_err();
        assert_eq!(
            err,
            "orin-agx: seL4 kernel segment at 0x0090000000..0x0090100000 overlaps guest RAM \
             (identity-mapped) at 0x0090000000..0x00a0000000"
        );
        let mut a = args(&prefix, &rt);
        a.truncate(3);
        assert!(run(&a).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn a_prefix_not_built_for_hypervisor_mode_is_refused() {
        let (_d, prefix, rt) = orin_prefix(0x8000_0000);
        let config = std::path::Path::new(&prefix).join("libsel4/include/kernel/gen_config.json");
        std::fs::write(&config, r#"{"PLAT": "orinagx", "MAX_NUM_NODES": "12"}"#).unwrap();
        let err = run(&args(&prefix, &rt)).unwrap_err();
        assert!(
            err.ends_with(
                "gen_config.json: not built for hypervisor mode (KernelArmHypervisorSupport)"
            ),
            "{err}"
        );
    }

    /// A directory removed when dropped.
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "vmmctl-layout-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
