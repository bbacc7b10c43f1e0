//! Embeds the payload and what the loader must know of the kernel it starts.
//!
//! From `SEL4_PREFIX` (an seL4 install prefix): `bin/kernel.elf`, the kernel's configuration
//! (`libsel4/include/kernel/gen_config.json`: cores, physical address width, hypervisor mode)
//! and the memory it was built to use (`support/platform_gen.json`). `SEL4_VMM_ROOT_TASK` is
//! the root task ELF; `SEL4_VMM_PLATFORM` names the platform table (`qemu-virt`, `orin-agx`)
//! whose host UART and reserved ranges the loader uses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use boot_plan::prefix::Sel4Prefix;

fn need(var: &str) -> String {
    println!("cargo:rerun-if-env-changed={var}");
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => fail(&format!(
            "{var} is not set (build/build.sh sets it; see build/README.md)"
        )),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("efi-loader: {msg}");
    std::process::exit(1)
}

fn file(path: &Path) -> PathBuf {
    if !path.is_file() {
        fail(&format!("{}: no such file", path.display()));
    }
    println!("cargo:rerun-if-changed={}", path.display());
    path.canonicalize()
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
}

fn main() {
    let prefix = PathBuf::from(need("SEL4_PREFIX"));
    let root_task = file(Path::new(&need("SEL4_VMM_ROOT_TASK")));
    let platform = need("SEL4_VMM_PLATFORM");
    let sel4 = Sel4Prefix::read(&prefix).unwrap_or_else(|e| fail(&e));
    for f in &sel4.files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let kernel = file(&sel4.kernel);
    let (cores, pa_bits, plat_name) = (sel4.cores, sel4.pa_bits, sel4.plat.as_str());
    let mut memory = String::new();
    for r in &sel4.memory {
        let _ = write!(memory, "PhysRange::new({:#x}, {:#x}), ", r.start, r.end);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR unset")));
    let code = format!(
        "/// The platform table this image is for.\n\
         pub const PLATFORM: &str = {platform:?};\n\
         /// seL4's own name of its platform.\n\
         pub const SEL4_PLAT: &str = {plat_name:?};\n\
         /// Cores the kernel is built for (`KernelMaxNumNodes`).\n\
         pub const CORES: usize = {cores};\n\
         /// Physical address bits the kernel is built for.\n\
         pub const PA_BITS: u8 = {pa_bits};\n\
         /// The memory the kernel was built to use.\n\
         pub const SEL4_MEMORY: &[PhysRange] = &[{memory}];\n\
         /// seL4's kernel.elf.\n\
         pub static KERNEL: &[u8] = include_bytes!({kernel:?});\n\
         /// The root task ELF.\n\
         pub static ROOT_TASK: &[u8] = include_bytes!({root_task:?});\n"
    );
    std::fs::write(out.join("payload.rs"), code)
        .unwrap_or_else(|e| fail(&format!("payload.rs: {e}")));
}
