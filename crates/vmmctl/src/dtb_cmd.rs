//! `vmmctl dtb`: builds the guest device tree (`crates/guest-dtb`).
//!
//! ```text
//! vmmctl dtb <platform> --board <board.dtb> [--initrd FILE | --initrd-size N]
//!            [--node PATH]... -o <guest.dtb>
//! ```
//!
//! The initrd, if any, is placed where the VMM loads it (the platform's initrd load address);
//! `--initrd FILE` takes its size from the file. The guest gets the board nodes the platform
//! table names (pass-through regions, and `board_nodes`, the nodes without registers such as
//! the Orin's `/bpmp` and `/serial`); a named node the board tree lacks is an error naming it.
//! `--node PATH` copies one more board node, for this build only.
//!
//! The board DTB must be the platform's board: its root `compatible` must list the one
//! [`board_compatible`] names for the platform (the guest's root takes the board's
//! `compatible` and `model`, and the table's pass-through nodes and addresses are that board's),
//! so an Orin DTB given for `qemu-virt` is refused, naming both.

use std::{fs, io};

use guest_dtb::tree::Tree;
use guest_dtb::{Initrd, Output, Platform};

const DTB_USAGE: &str = "usage: vmmctl dtb <platform> --board <board.dtb> \
[--initrd FILE | --initrd-size N] [--node PATH]... -o <guest.dtb>";

const DTB_HELP: &str = "
builds the guest device tree of <platform> from its board's DTB and writes it to <guest.dtb>:
the devices the VMM emulates, written from the platform table, and the board nodes the table
names (pass-through regions, board nodes), copied from <board.dtb>.

  --board <board.dtb>  the board's own DTB; its root compatible must be the platform's board
                       (qemu-virt, qemu-virt-pt: linux,dummy-virt; orin-agx: nvidia,tegra234)
  --initrd FILE        the initrd the VMM loads (a file); /chosen gets its range at the
                       platform's initrd load address
  --initrd-size N      the same for an initrd of N bytes (decimal or 0x hex), without the file
  --node PATH          copy one more board node (repeatable)
  -o, --output FILE    where to write the guest DTB
  -h, --help           print this and exit
";

/// The entry a board DTB's root `compatible` must have for `platform`, or `None` for a platform
/// this table does not know yet (every platform of `vmm_platform::PLATFORMS` has one: a test
/// checks).
fn board_compatible(platform: &Platform) -> Option<&'static str> {
    match platform.name {
        "qemu-virt" | "qemu-virt-pt" => Some("linux,dummy-virt"),
        "orin-agx" => Some("nvidia,tegra234"),
        _ => None,
    }
}

/// Refuses a board DTB made for another board than `p`'s.
fn check_board(p: &Platform, blob: &[u8], board: &str) -> Result<(), String> {
    let want = board_compatible(p).ok_or_else(|| {
        format!(
            "{}: vmmctl does not know which board DTB this platform needs \
             (add it to board_compatible in crates/vmmctl/src/dtb_cmd.rs)",
            p.name
        )
    })?;
    let tree = Tree::read(blob).map_err(|e| format!("{}: {board}: {e}", p.name))?;
    let have = tree.compatible(0);
    if have.contains(&want) {
        return Ok(());
    }
    let have = if have.is_empty() {
        "has no compatible".to_string()
    } else {
        let quoted: Vec<String> = have.iter().map(|c| format!("{c:?}")).collect();
        format!("is {}", quoted.join(", "))
    };
    Err(format!(
        "{}: {board} is not this platform's board DTB: its root compatible {have}; \
         {} needs a board DTB whose root compatible lists {want:?}",
        p.name, p.name
    ))
}

/// The size of the initrd `file`, refusing what is not a regular file.
fn initrd_len(file: &str) -> Result<u64, String> {
    let meta = fs::metadata(file).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!(
            "--initrd {file}: no such file (images/qemu-virt/build.sh makes \
             images/qemu-virt/out/initramfs.cpio.gz; --initrd-size N needs no file)"
        ),
        _ => format!("--initrd {file}: cannot read it: {e}"),
    })?;
    if meta.is_dir() {
        return Err(format!(
            "--initrd {file}: is a directory; give the initrd image itself \
             (e.g. images/qemu-virt/out/initramfs.cpio.gz)"
        ));
    }
    if !meta.is_file() {
        return Err(format!("--initrd {file}: not a regular file"));
    }
    Ok(meta.len())
}

fn size(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => s.replace('_', "").parse(),
    };
    parsed.map_err(|_| format!("--initrd-size {s:?} is not a number"))
}

/// Runs `vmmctl dtb` with the arguments after `dtb`; returns what it prints.
pub fn run(args: &[String]) -> Result<String, String> {
    let mut platform = None;
    let mut board = None;
    let mut out = None;
    let mut initrd_size: Option<u64> = None;
    let mut initrd_file: Option<String> = None;
    let mut nodes: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |opt: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{opt} needs a value\n{DTB_USAGE}"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(format!("{DTB_USAGE}\n{DTB_HELP}")),
            "--board" => board = Some(value("--board")?),
            "-o" | "--output" => out = Some(value("-o")?),
            "--node" => nodes.push(value("--node")?),
            "--initrd" | "--initrd-size" if initrd_size.is_some() || initrd_file.is_some() => {
                return Err(format!("give --initrd or --initrd-size once\n{DTB_USAGE}"));
            }
            "--initrd" => initrd_file = Some(value("--initrd")?),
            "--initrd-size" => initrd_size = Some(size(&value("--initrd-size")?)?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{DTB_USAGE}")),
            _ if platform.is_none() => platform = Some(a.clone()),
            _ => return Err(format!("unexpected argument {a:?}\n{DTB_USAGE}")),
        }
    }
    let name = platform.ok_or_else(|| format!("missing platform name\n{DTB_USAGE}"))?;
    let p = vmm_platform::by_name(&name).ok_or_else(|| {
        let known: Vec<_> = vmm_platform::PLATFORMS.iter().map(|p| p.name).collect();
        format!("unknown platform {name:?}; known: {}", known.join(", "))
    })?;
    let board = board.ok_or_else(|| format!("missing --board\n{DTB_USAGE}"))?;
    let out = out.ok_or_else(|| format!("missing -o\n{DTB_USAGE}"))?;
    if let Some(file) = &initrd_file {
        initrd_size = Some(initrd_len(file)?);
    }
    let blob = fs::read(&board).map_err(|e| format!("--board {board}: {e}"))?;
    check_board(p, &blob, &board)?;
    let initrd = initrd_size.map(|n| Initrd::at_load_region(p, n));
    let extra: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let Output { dtb, nodes, notes } = guest_dtb::build_with(p, &blob, initrd, &extra)
        .map_err(|e| format!("{}: {board}: {e}", p.name))?;
    fs::write(&out, &dtb).map_err(|e| format!("{out}: {e}"))?;

    let mut s = format!(
        "{out}: {} bytes, guest device tree of {} from {board}\n",
        dtb.len(),
        p.name
    );
    match initrd {
        Some(i) => s.push_str(&format!("initrd: {}..{}\n", i.start, i.end)),
        None => s.push_str("initrd: none\n"),
    }
    for n in &nodes {
        s.push_str(&format!("copied: {n}\n"));
    }
    for n in &notes {
        s.push_str(&format!("note: {n}\n"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> String {
        format!(
            "{}/../../platform/testdata/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// `vmmctl dtb orin-agx --board <devkit DTB> -o g.dtb`, no `--node`: the BPMP and the TCU
    /// are in the output because the table names them.
    #[test]
    fn orin_dtb_has_the_bpmp_and_the_tcu_by_default() {
        let dir = std::env::temp_dir().join(format!("vmmctl-dtb-default-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("g.dtb");
        let board = testdata("tegra234-p3737-0000+p3701-0000.dtb");
        let printed = run(&args(&[
            "orin-agx",
            "--board",
            &board,
            "-o",
            out.to_str().unwrap(),
        ]))
        .unwrap();
        for line in [
            "copied: /bpmp\n",
            "copied: /bpmp/i2c\n",
            "copied: /serial\n",
            "copied: /bus@0/misc@100000\n",
            "note: /bpmp: iommus left out",
            "note: /bpmp: interconnects left out",
        ] {
            assert!(printed.contains(line), "{line:?} missing from\n{printed}");
        }
        let dtb = fs::read(&out).unwrap();
        guest_dtb::verify(&dtb).unwrap();
        let has = |bytes: &[u8]| dtb.windows(bytes.len()).any(|w| w == bytes);
        // FDT_BEGIN_NODE tokens of the three nodes, and their values.
        assert!(has(b"\0\0\0\x01bpmp\0"));
        assert!(has(b"\0\0\0\x01i2c\0"));
        assert!(has(b"\0\0\0\x01serial\0"));
        assert!(has(b"nvidia,tegra234-bpmp\0nvidia,tegra186-bpmp\0"));
        assert!(has(b"nvidia,tegra234-tcu\0"));
        assert!(has(b" clk_ignore_unused pd_ignore_unused "));
        // dtc reads it back without a warning, with /bpmp and /serial at the root.
        match std::process::Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-o", "-"])
            .arg(&out)
            .output()
        {
            Ok(o) => {
                assert!(o.status.success());
                let stderr = String::from_utf8_lossy(&o.stderr);
                assert!(stderr.trim().is_empty(), "dtc warns:\n{stderr}");
                let dts = String::from_utf8(o.stdout).unwrap();
                assert!(dts.contains("\n\tbpmp {\n\t\tcompatible = \"nvidia,tegra234-bpmp\\0nvidia,tegra186-bpmp\";"), "{dts}");
                assert!(dts.contains("\n\tserial {\n"), "{dts}");
                assert!(!dts.contains("iommus"), "{dts}");
            }
            Err(_) => println!("SKIPPED the dtc check: dtc is not installed (CI installs it)"),
        }
    }

    /// A board tree without a node the table names: an error naming the node, nothing written.
    #[test]
    fn orin_dtb_refuses_a_board_without_the_bpmp() {
        let dir = std::env::temp_dir().join(format!("vmmctl-dtb-nobpmp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut blob = fs::read(testdata("tegra234-p3737-0000+p3701-0000.dtb")).unwrap();
        // Rename the node: FDT_BEGIN_NODE "bpmp" -> "bpmX" (one node has that exact name).
        let needle = b"\0\0\0\x01bpmp\0";
        let hits: Vec<usize> = blob
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| w == needle)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(hits.len(), 1);
        blob[hits[0] + 7] = b'X';
        let board = dir.join("no-bpmp.dtb");
        fs::write(&board, &blob).unwrap();
        let out = dir.join("g.dtb");
        let e = run(&args(&[
            "orin-agx",
            "--board",
            board.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(
            e.ends_with(
                "/bpmp (named by board node bpmp of the platform table) is not in the board DTB"
            ),
            "{e}"
        );
        assert!(e.starts_with("orin-agx: "), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn dtb_writes_the_guest_tree() {
        let dir = std::env::temp_dir().join(format!("vmmctl-dtb-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let out = dir.join("orin.dtb");
        let initrd = dir.join("initrd");
        fs::write(&initrd, vec![0u8; 4096]).unwrap();
        let board = testdata("tegra234-p3737-0000+p3701-0000.dtb");
        let printed = run(&args(&[
            "orin-agx",
            "--board",
            &board,
            "--initrd",
            initrd.to_str().unwrap(),
            "--node",
            "/bpmp",
            "-o",
            out.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(
            printed.contains("initrd: 0x9c000000..0x9c001000"),
            "{printed}"
        );
        assert!(printed.contains("copied: /bpmp"), "{printed}");
        assert!(
            printed.contains("note: /bpmp: iommus left out"),
            "{printed}"
        );
        let dtb = fs::read(&out).unwrap();
        guest_dtb::verify(&dtb).unwrap();

        let out = dir.join("qemu.dtb");
        let board = testdata("qemu-virt-gicv3-smp4-2g.dtb");
        let printed = run(&args(&[
            "qemu-virt",
            "--board",
            &board,
            "--initrd-size",
            "0x10_0000",
            "-o",
            out.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(
            printed.contains("initrd: 0x48000000..0x48100000"),
            "{printed}"
        );
        guest_dtb::verify(&fs::read(&out).unwrap()).unwrap();
    }

    #[test]
    fn dtb_reports_bad_input() {
        let board = testdata("qemu-virt-gicv3-smp4-2g.dtb");
        let e = run(&args(&["qemu-virt", "--board", &board])).unwrap_err();
        assert!(e.contains("missing -o"), "{e}");
        let e = run(&args(&["nope", "--board", &board, "-o", "/dev/null"])).unwrap_err();
        assert!(e.contains("unknown platform"), "{e}");
        let e = run(&args(&[
            "qemu-virt",
            "--board",
            &board,
            "--initrd-size",
            "0x10000000",
            "-o",
            "/dev/null",
        ]))
        .unwrap_err();
        assert!(e.contains("initrd load region"), "{e}");
        // QEMU's DTB for the Orin: refused before any node is looked for.
        let e = run(&args(&["orin-agx", "--board", &board, "-o", "/dev/null"])).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "orin-agx: {board} is not this platform's board DTB: \
                 its root compatible is \"linux,dummy-virt\"; orin-agx needs"
            )),
            "{e}"
        );
        assert!(e.ends_with("lists \"nvidia,tegra234\""), "{e}");
    }

    /// Every platform has the board it needs named, and the board DTBs in testdata are theirs.
    #[test]
    fn every_platform_names_its_board() {
        let qemu = fs::read(testdata("qemu-virt-gicv3-smp4-2g.dtb")).unwrap();
        let orin = fs::read(testdata("tegra234-p3737-0000+p3701-0000.dtb")).unwrap();
        for p in vmm_platform::PLATFORMS {
            assert!(board_compatible(p).is_some(), "{}", p.name);
            let (mine, other) = if p.name.starts_with("qemu-virt") {
                (&qemu, &orin)
            } else {
                (&orin, &qemu)
            };
            check_board(p, mine, "mine").unwrap();
            assert!(check_board(p, other, "other").is_err(), "{}", p.name);
        }
    }
}
