//! `vmmctl` as a user runs it: the built binary (`CARGO_BIN_EXE_vmmctl`), its exit status,
//! stdout and stderr.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Every command `vmmctl --help` lists.
const COMMANDS: [&str; 5] = ["plan", "check", "platforms", "dtb", "boot-layout"];

fn vmmctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmmctl"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn testdata(name: &str) -> String {
    format!(
        "{}/../../platform/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A directory of this test's own under the system's temporary directory.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmmctl-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_command_prints_its_usage_for_help() {
    let top = vmmctl(&["--help"]);
    assert!(top.status.success());
    let listed = text(&top.stdout);
    for cmd in COMMANDS {
        assert!(
            listed.contains(&format!("vmmctl {cmd} ")),
            "{cmd} not in\n{listed}"
        );
        for flag in ["--help", "-h"] {
            let o = vmmctl(&[cmd, flag]);
            let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
            assert_eq!(o.status.code(), Some(0), "vmmctl {cmd} {flag}: {stderr}");
            assert!(
                stdout.starts_with(&format!("usage: vmmctl {cmd}")),
                "vmmctl {cmd} {flag} printed\n{stdout}"
            );
            assert!(stderr.is_empty(), "vmmctl {cmd} {flag}: {stderr}");
        }
    }
}

/// `--help` wins over the other arguments, even ones that would be errors.
#[test]
fn help_after_other_arguments() {
    for args in [
        &["plan", "qemu-virt", "--help"][..],
        &["check", "no-such-platform", "-h"],
        &["dtb", "qemu-virt", "--initrd", "/nonexistent", "--help"],
        &[
            "boot-layout",
            "orin-agx",
            "--sel4-prefix",
            "/nonexistent",
            "-h",
        ],
    ] {
        let o = vmmctl(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        let stdout = text(&o.stdout);
        assert!(
            stdout.starts_with(&format!("usage: vmmctl {}", args[0])),
            "{args:?}: {stdout}"
        );
    }
    // An option's value is not a request for help.
    let o = vmmctl(&["dtb", "qemu-virt", "--board", "--help"]);
    assert_eq!(o.status.code(), Some(2));
    let o = vmmctl(&["platforms", "extra"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("platforms takes no arguments"));
}

/// The Orin's DTB for `qemu-virt`: refused with the reason, nothing written.
#[test]
fn dtb_refuses_another_platforms_board() {
    let out = scratch("orin-board").join("guest.dtb");
    let orin = testdata("tegra234-p3737-0000+p3701-0000.dtb");
    for platform in ["qemu-virt", "qemu-virt-pt"] {
        let o = vmmctl(&[
            "dtb",
            platform,
            "--board",
            &orin,
            "--initrd-size",
            "0x1000",
            "-o",
            out.to_str().unwrap(),
        ]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr,
            format!(
                "vmmctl: {platform}: {orin} is not this platform's board DTB: its root compatible \
                 is \"nvidia,p3737-0000+p3701-0000\", \"nvidia,p3701-0000\", \"nvidia,tegra234\"; \
                 {platform} needs a board DTB whose root compatible lists \"linux,dummy-virt\"\n"
            )
        );
        assert!(o.stdout.is_empty());
        assert!(!out.exists());
    }
    // And QEMU's DTB for the Orin.
    let qemu = testdata("qemu-virt-gicv3-smp4-2g.dtb");
    let o = vmmctl(&[
        "dtb",
        "orin-agx",
        "--board",
        &qemu,
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("root compatible is \"linux,dummy-virt\"; orin-agx needs"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// `vmmctl dtb qemu-virt` with `initrd`: refused (exit 2, nothing written); its stderr.
fn refused_initrd(board: &str, initrd: &str, out: &std::path::Path) -> String {
    let o = vmmctl(&[
        "dtb",
        "qemu-virt",
        "--board",
        board,
        "--initrd",
        initrd,
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(!out.exists());
    stderr
}

/// `--initrd` names the file the VMM loads: a directory, or nothing at all, is refused with a
/// reason, before anything is written.
#[test]
fn dtb_refuses_an_initrd_that_is_not_a_file() {
    let dir = scratch("initrd-dir");
    let out = dir.join("guest.dtb");
    let board = testdata("qemu-virt-gicv3-smp4-2g.dtb");
    let d = dir.to_str().unwrap();
    let stderr = refused_initrd(&board, d, &out);
    assert!(
        stderr.starts_with(&format!(
            "vmmctl: --initrd {d}: is a directory; give the initrd image itself"
        )),
        "{stderr}"
    );

    let missing = dir.join("initramfs.cpio.gz");
    let m = missing.to_str().unwrap();
    let stderr = refused_initrd(&board, m, &out);
    assert!(
        stderr.starts_with(&format!("vmmctl: --initrd {m}: no such file")),
        "{stderr}"
    );
    assert!(!stderr.contains("os error"), "{stderr}");

    // The same with a file: written.
    std::fs::write(&missing, [0u8; 4096]).unwrap();
    let o = vmmctl(&[
        "dtb",
        "qemu-virt",
        "--board",
        &board,
        "--initrd",
        m,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("initrd: 0x48000000..0x48001000"));
    assert!(out.exists());
}

/// README's example, as written there, from the repository's top directory.
#[test]
fn readme_dtb_example_runs() {
    let readme =
        std::fs::read_to_string(format!("{}/../../README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let example = readme
        .lines()
        .find_map(|l| {
            let start = l.find("`cargo run -p vmmctl -- dtb ")?;
            let rest = &l[start + 1..];
            Some(&rest[..rest.find('`')?])
        })
        .expect("README has a `cargo run -p vmmctl -- dtb ...` example");
    let args: Vec<&str> = example
        .strip_prefix("cargo run -p vmmctl -- ")
        .unwrap()
        .split_whitespace()
        .collect();
    // Its output goes outside the tree; here, into this test's own directory instead.
    let o_at = args.iter().position(|a| *a == "-o").unwrap();
    assert!(args[o_at + 1].starts_with("/tmp/"), "{example}");
    let out = scratch("readme").join("guest.dtb");
    let mut args = args;
    let out_s = out.to_str().unwrap().to_string();
    args[o_at + 1] = &out_s;
    let o = Command::new(env!("CARGO_BIN_EXE_vmmctl"))
        .args(&args)
        .current_dir(format!("{}/../..", env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    assert!(o.status.success(), "{example}: {}", text(&o.stderr));
    assert!(out.exists());
}
