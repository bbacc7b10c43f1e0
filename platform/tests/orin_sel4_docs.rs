//! `support/sel4/README-orin.md` against the files it describes: its spelled-out kernel
//! `cmake` line has exactly the settings of `support/sel4/orin-agx/orin-agx.cmake` (the source
//! of truth; a setting missing from the README, such as `KernelArmExportVCNTUser` once was,
//! builds a kernel the root task cannot run on), and its root-task build command is for seL4's
//! target with the standard library built from source, as `build/build.sh` builds it (a plain
//! `cargo build` builds for the host and fails).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

fn read(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// `set(Name "value" CACHE ...)` lines.
fn cmake_settings(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("set("))
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap().to_string();
            let value = words.next().unwrap().trim_matches('"').to_string();
            (name, value)
        })
        .collect()
}

/// The ```sh blocks of a Markdown text, with `\` continuations joined.
fn shell_blocks(md: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        match (&mut cur, line.trim()) {
            (None, "```sh") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(b.replace("\\\n", " "));
                cur = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_cmake_line_has_exactly_the_cmake_files_settings() {
    let file = cmake_settings(&read("support/sel4/orin-agx/orin-agx.cmake"));
    assert_eq!(
        file.get("KernelArmExportVCNTUser").map(String::as_str),
        Some("ON")
    );
    let readme = read("support/sel4/README-orin.md");
    let blocks = shell_blocks(&readme);
    // The recommended command takes the file itself.
    assert!(
        blocks
            .iter()
            .any(|b| b.contains("cmake -C support/sel4/orin-agx/orin-agx.cmake")),
        "README-orin.md configures the kernel with orin-agx.cmake"
    );
    let spelled: Vec<&String> = blocks
        .iter()
        .filter(|b| b.contains("cmake -G Ninja") && b.contains("-DKernelPlatform="))
        .collect();
    assert_eq!(spelled.len(), 1, "one spelled-out cmake line");
    let flags: BTreeMap<String, String> = spelled[0]
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("-D"))
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .filter(|(k, _)| k != "CROSS_COMPILER_PREFIX" && k != "CMAKE_INSTALL_PREFIX")
        .collect();
    assert_eq!(flags, file, "README-orin.md's cmake line vs orin-agx.cmake");
}

/// QEMU's kernel settings need the same counter export (the VMM's clock is the same code).
#[test]
fn both_kernel_configurations_export_the_virtual_counter() {
    for path in [
        "support/sel4/orin-agx/orin-agx.cmake",
        "support/sel4/qemu-arm-virt.cmake",
    ] {
        let s = cmake_settings(&read(path));
        assert_eq!(
            s.get("KernelArmExportVCNTUser").map(String::as_str),
            Some("ON"),
            "{path}"
        );
        assert_eq!(
            s.get("KernelArmHypervisorSupport").map(String::as_str),
            Some("ON"),
            "{path}"
        );
    }
}

#[test]
fn the_readme_builds_the_root_task_for_sel4() {
    let readme = read("support/sel4/README-orin.md");
    let cargo: Vec<String> = shell_blocks(&readme)
        .into_iter()
        .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.contains("cargo build"))
        .collect();
    assert_eq!(cargo.len(), 1, "{cargo:#?}");
    let cmd = &cargo[0];
    for part in [
        "RUST_TARGET_PATH=$RUST_SEL4/support/targets",
        "--release",
        "--no-default-features --features orin-agx",
        "-Z build-std=core,alloc,compiler_builtins",
        "-Z build-std-features=compiler-builtins-mem",
        "--target aarch64-sel4-roottask",
    ] {
        assert!(cmd.contains(part), "{part:?} missing from {cmd}");
    }
    assert!(readme.contains("build/build.sh --platform orin-agx"));
    assert!(readme.contains("build/out/sel4-vmm.efi"));
}
