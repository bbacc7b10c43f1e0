//! `vmmctl`: the VMM's host tool.
//!
//! ```text
//! vmmctl plan <platform> [--json]   guest memory map and stage-2 plan
//! vmmctl check <platform>           validate a platform table
//! vmmctl platforms                  list the platforms this build knows
//! vmmctl dtb <platform> ...         build the guest device tree (dtb_cmd.rs)
//! vmmctl boot-layout <platform> ... where the EFI loader puts everything (layout_cmd.rs)
//! ```
//!
//! Every command takes `-h` / `--help`: its usage on stdout, exit status 0.

#![forbid(unsafe_code)]

mod dtb_cmd;
mod layout_cmd;

use std::process::ExitCode;

use serde_json::json;
use stage2::Plan;
use vmm_platform::{PLATFORMS, Platform};

const USAGE: &str = "usage:
  vmmctl plan <platform> [--json]   print the guest memory map and stage-2 plan
  vmmctl check <platform>           validate a platform table
  vmmctl platforms                  list the platforms
  vmmctl dtb <platform> --board <board.dtb> [--initrd FILE | --initrd-size N]
             [--node PATH]... -o <guest.dtb>
                                    build the guest device tree (the nodes the table names,
                                    and each --node PATH)
  vmmctl boot-layout <platform> --sel4-prefix DIR --root-task ELF [--dtb-bytes N]
                                    where the EFI loader puts seL4, the DTB and the root
                                    task, checked against seL4's memory and the table's
                                    forbidden ranges (identity guest RAM, carve-outs)
  vmmctl <command> --help           that command's usage";

const PLAN_HELP: &str = "usage: vmmctl plan <platform> [--json]

prints the platform's guest memory map (RAM, load regions, pass-through and emulated windows)
and the stage-2 mappings that map it, after validating the table.

  --json      the same as JSON
  -h, --help  print this and exit
";

const CHECK_HELP: &str = "usage: vmmctl check <platform>

validates the platform table (alignment, overlaps, load regions in RAM, SPIs) and prints
\"<platform>: ok\", or the error naming the regions and addresses at fault (exit status 2).

  -h, --help  print this and exit
";

const PLATFORMS_HELP: &str = "usage: vmmctl platforms

lists the platforms this build knows, one a line.

  -h, --help  print this and exit
";

fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "-h" || a == "--help")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("vmmctl: {msg}");
            ExitCode::from(2)
        }
    }
}

fn platform(name: Option<&String>) -> Result<&'static Platform, String> {
    let name = name.ok_or_else(|| format!("missing platform name\n{USAGE}"))?;
    vmm_platform::by_name(name).ok_or_else(|| {
        let known: Vec<_> = PLATFORMS.iter().map(|p| p.name).collect();
        format!("unknown platform {name:?}; known: {}", known.join(", "))
    })
}

/// Runs one command and returns what it prints.
fn run(args: &[String]) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("plan") => {
            let mut json = false;
            let mut name = None;
            for a in &args[1..] {
                match a.as_str() {
                    "-h" | "--help" => return Ok(PLAN_HELP.to_string()),
                    "--json" => json = true,
                    s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
                    _ if name.is_none() => name = Some(a),
                    _ => return Err(format!("unexpected argument {a:?}\n{USAGE}")),
                }
            }
            let p = platform(name)?;
            p.validate()
                .map_err(|e| format!("{}: invalid table: {e}", p.name))?;
            let plan = Plan::new(p);
            Ok(if json {
                plan_json(p, &plan)
            } else {
                plan_text(p, &plan)
            })
        }
        Some("check") => {
            if wants_help(&args[1..]) {
                return Ok(CHECK_HELP.to_string());
            }
            if args.len() != 2 {
                return Err(format!("check takes one platform name\n{USAGE}"));
            }
            let p = platform(args.get(1))?;
            p.validate().map_err(|e| format!("{}: {e}", p.name))?;
            Ok(format!("{}: ok\n", p.name))
        }
        Some("dtb") => dtb_cmd::run(&args[1..]),
        Some("boot-layout") => layout_cmd::run(&args[1..]),
        Some("platforms") if wants_help(&args[1..]) => Ok(PLATFORMS_HELP.to_string()),
        Some("platforms") if args.len() > 1 => {
            Err(format!("platforms takes no arguments\n{USAGE}"))
        }
        Some("platforms") => Ok(PLATFORMS.iter().map(|p| format!("{}\n", p.name)).collect()),
        Some("-h" | "--help" | "help") => Ok(format!("{USAGE}\n")),
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
        None => Err(USAGE.to_string()),
    }
}

fn plan_text(p: &Platform, plan: &Plan) -> String {
    let mut s = format!(
        "platform {}: {} vCPUs, RAM {}identity-mapped\nbootargs: {}\n\n",
        p.name,
        p.vcpus,
        if p.ram.identity { "" } else { "not " },
        p.bootargs
    );
    s.push_str(&plan.to_string());
    s.push('\n');
    s
}

fn plan_json(p: &Platform, plan: &Plan) -> String {
    let regions: Vec<_> = plan
        .regions
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "kind": r.kind.name(),
                "guest_base": r.range.base.0,
                "size": r.range.size,
                "attrs": r.attrs.map(|a| a.name()),
                "access": r.access.map(|a| a.name()),
            })
        })
        .collect();
    let mappings: Vec<_> = plan
        .mappings
        .iter()
        .map(|m| {
            let (source, host) = match m.source {
                stage2::Source::AnyRam { ram_offset } => ("ram", ram_offset),
                stage2::Source::Physical(h) => ("physical", h.0),
            };
            json!({
                "name": m.name,
                "guest_base": m.guest.0,
                "size": m.size,
                "page_size": m.page.bytes(),
                "pages": m.pages(),
                "source": source,
                "source_addr": host,
                "attrs": m.attrs.name(),
                "access": m.access.name(),
            })
        })
        .collect();
    let doc = json!({
        "platform": p.name,
        "vcpus": p.vcpus,
        "bootargs": p.bootargs,
        "regions": regions,
        "mappings": mappings,
    });
    format!("{doc:#}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn plan_json_has_integer_fields() {
        let out = run(&args("plan orin-agx --json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let regions = v["regions"].as_array().unwrap();
        let ram = regions.iter().find(|r| r["name"] == "ram").unwrap();
        assert_eq!(ram["guest_base"].as_u64(), Some(0x9000_0000));
        assert_eq!(ram["size"].as_u64(), Some(0x1000_0000));
        assert_eq!(ram["kind"], "ram");
        assert_eq!(ram["attrs"], "normal-wb");
        let sram = regions
            .iter()
            .find(|r| r["name"] == "sram-bpmp-tx")
            .unwrap();
        assert_eq!(sram["attrs"], "device-nGnRE");
        assert_eq!(sram["access"], "read-write");
        let misc = regions.iter().find(|r| r["name"] == "apb-misc").unwrap();
        assert_eq!(misc["guest_base"].as_u64(), Some(0x10_0000));
        assert_eq!(misc["size"].as_u64(), Some(0xf000));
        assert_eq!(misc["access"], "read-only");
        let gicd = regions.iter().find(|r| r["name"] == "gicd").unwrap();
        assert_eq!(gicd["kind"], "emulated");
        assert!(gicd["attrs"].is_null());
        assert!(gicd["access"].is_null());
        let ro: Vec<_> = v["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["access"] == "read-only")
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(ro, ["apb-misc", "apb-misc-straps"]);
        let big: Vec<_> = v["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["page_size"] == 0x20_0000)
            .collect();
        assert_eq!(big.len(), 1);
        assert_eq!(big[0]["pages"].as_u64(), Some(128));
    }

    #[test]
    fn orin_plan_text_marks_apb_misc_read_only() {
        let out = run(&args("plan orin-agx")).unwrap();
        let misc: Vec<&str> = out.lines().filter(|l| l.starts_with("apb-misc")).collect();
        assert_eq!(misc.len(), 4, "{out}");
        for l in misc {
            assert!(l.ends_with("device-nGnRE, read-only"), "{l}");
        }
        assert!(out.contains("clk_ignore_unused pd_ignore_unused"), "{out}");
        assert!(
            out.ends_with("256 MiB in 2 MiB blocks, 1288 KiB in 4 KiB pages\n"),
            "{out}"
        );
    }

    #[test]
    fn plan_text_names_every_region() {
        let out = run(&args("plan qemu-virt")).unwrap();
        for s in [
            "qemu-virt: 4 vCPUs",
            "gicd",
            "pci-ecam",
            "pl011",
            "512 MiB in 2 MiB blocks",
        ] {
            assert!(out.contains(s), "{s} missing:\n{out}");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(run(&[]).unwrap_err().contains("usage"));
        assert!(run(&args("plan")).unwrap_err().contains("missing platform"));
        assert!(
            run(&args("plan rpi4"))
                .unwrap_err()
                .contains("unknown platform \"rpi4\"; known: qemu-virt, orin-agx, qemu-virt-pt")
        );
        assert!(
            run(&args("plan qemu-virt --yaml"))
                .unwrap_err()
                .contains("unknown option --yaml")
        );
        assert!(
            run(&args("plan qemu-virt orin-agx"))
                .unwrap_err()
                .contains("unexpected argument")
        );
        assert!(
            run(&args("frobnicate"))
                .unwrap_err()
                .contains("unknown command")
        );
        assert_eq!(run(&args("check orin-agx")).unwrap(), "orin-agx: ok\n");
        assert_eq!(
            run(&args("platforms")).unwrap(),
            "qemu-virt\norin-agx\nqemu-virt-pt\n"
        );
    }
}
