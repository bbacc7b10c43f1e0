//! Guest images are embedded at build time from the paths the build is given.

// A build script's panic is the build's error message.
#![allow(clippy::panic)]

fn main() {
    for var in [
        "VMM_GUEST_KERNEL",
        "VMM_GUEST_INITRD",
        "VMM_GUEST_DTB",
        "VMM_GUEST_DISK",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        match std::env::var(var) {
            Ok(path) if std::path::Path::new(&path).is_file() => {
                println!("cargo:rerun-if-changed={path}");
            }
            Ok(path) => panic!("{var}={path}: no such file (see build/README.md)"),
            Err(_) => panic!(
                "{var} is not set: the root task embeds the guest images (see build/README.md)"
            ),
        }
    }
}
