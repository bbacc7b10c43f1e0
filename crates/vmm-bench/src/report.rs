//! `vmm-bench run`: measures everything and writes `results.json` and `results.md`.

use crate::measure::{self, Throughput};
use crate::scenarios::{self, DATA_PATHS};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `run` was asked.
pub struct Options {
    /// Where results go.
    pub out: PathBuf,
    /// Fewer, shorter runs.
    pub quick: bool,
    /// Count instructions with callgrind.
    pub callgrind: bool,
    /// Previous `results.json` files to compare with, oldest first (`--baseline`, repeatable).
    pub baselines: Vec<PathBuf>,
}

/// Cycles counted under callgrind per scenario.
const INSTR_N: u64 = 2000;

fn sh(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn f1(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

fn fu(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// Runs everything (see the crate documentation).
pub fn run(o: &Options) {
    let exe = std::env::current_exe().expect("own path");
    let (runs, ms) = if o.quick { (3, 5.0) } else { (9, 30.0) };
    let have_valgrind = o.callgrind && sh("valgrind", &["--version"]).is_some();
    let cg_dir = exe
        .parent()
        .map(|p| p.join("vmm-bench-callgrind"))
        .unwrap_or_else(|| PathBuf::from("vmm-bench-callgrind"));

    // Instructions.
    let mut instr: Vec<(&str, Option<u64>)> = Vec::new();
    if have_valgrind {
        for i in scenarios::ALL {
            eprintln!("callgrind: {} ...", i.name);
            let ir = match measure::callgrind(&exe, i.name, INSTR_N, &cg_dir) {
                Ok(ir) => Some(ir),
                Err(e) => {
                    eprintln!("callgrind {}: {e}", i.name);
                    None
                }
            };
            instr.push((i.name, ir));
        }
    }
    let raw_instr = |name: &str| -> Option<f64> {
        instr
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, ir)| *ir)
            .map(|ir| ir as f64 / INSTR_N as f64)
    };
    let null_instr = raw_instr("null");

    // Time.
    eprintln!("timing ...");
    let overhead = measure::timer_overhead(runs);
    let mut exits = Vec::new();
    for i in scenarios::ALL {
        let n = measure::calibrate(i.name, ms);
        let t = measure::time(i.name, runs, n);
        let ir_raw = raw_instr(i.name);
        let ir = match (ir_raw, null_instr) {
            (Some(a), Some(b)) if i.name != "null" => Some((a - b).round().max(0.0) as u64),
            (Some(a), _) => Some(a.round() as u64),
            _ => None,
        };
        let ns = if i.name == "null" {
            t.each
        } else {
            (t.each - overhead).max(0.0)
        };
        eprintln!(
            "{:<20} {:>8} instr {:>9.1} ns  (batch {})",
            i.name,
            fu(ir),
            ns,
            f1(t.batch)
        );
        exits.push(json!({
            "name": i.name,
            "class": i.class,
            "what": i.what,
            "exit": i.exit,
            "target_instructions": i.target,
            "instructions": ir,
            "instructions_raw": ir_raw,
            "ns": ns,
            "ns_raw": t.each,
            "ns_runs": t.runs,
            "ns_batch": t.batch,
            "steps_per_run": n,
            "meets_target": match (i.target, ir) {
                (Some(t), Some(ir)) => Some(ir <= t),
                _ => None,
            },
        }));
    }

    // Data path.
    eprintln!("data path ...");
    let mut dps: Vec<Throughput> = Vec::new();
    for dp in DATA_PATHS {
        let t = measure::throughput(dp, runs, ms);
        eprintln!(
            "{:<20} {:>9.1} ns/request  memcpy {:>8.1} ns  ratio {:.2}",
            dp.name,
            t.vmm_ns,
            t.memcpy_ns,
            t.ratio()
        );
        dps.push(t);
    }
    let data_path: Vec<Value> = dps
        .iter()
        .map(|t| {
            json!({
                "name": t.dp.name,
                "what": t.dp.what,
                "bytes": t.dp.bytes,
                "vmm_ns_per_request": t.vmm_ns,
                "memcpy_ns": t.memcpy_ns,
                "ratio_to_memcpy": t.ratio(),
                "vmm_mb_per_s": t.vmm_mbps(),
                "memcpy_mb_per_s": t.memcpy_mbps(),
                "requests_per_s": t.per_second(),
                "requests_per_run": t.n,
            })
        })
        .collect();

    let boot = std::fs::read_to_string(o.out.join("boot.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok());
    let baselines: Vec<(PathBuf, Value)> = o
        .baselines
        .iter()
        .filter_map(|p| {
            let v = std::fs::read_to_string(p)
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(&s).ok());
            if v.is_none() {
                eprintln!("baseline {}: unreadable", p.display());
            }
            v.map(|v| (p.clone(), v))
        })
        .collect();

    let meta = json!({
        "commit": sh("git", &["rev-parse", "--short=12", "HEAD"]),
        // Source files the bench builds from (not this crate's outputs, not the root task,
        // which it does not build) that differ from that commit.
        "uncommitted": sh("git", &["status", "--porcelain", "--", "Cargo.toml", "Cargo.lock", "crates", "platform", ":(exclude)crates/root-task"])
            .map(|st| {
                st.lines()
                    .filter_map(|l| l.split_whitespace().last())
                    .filter(|f| f.ends_with(".rs") || f.ends_with(".toml") || f.ends_with(".lock"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            }),
        "date_utc": sh("date", &["-u", "+%Y-%m-%d %H:%M"]),
        "rustc": sh("rustc", &["-V"]),
        "cpu": cpu_model(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        // Other work on the host skews the times (not the instruction counts).
        "loadavg_1min": std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse::<f64>().ok())),
        "valgrind": if have_valgrind { sh("valgrind", &["--version"]) } else { None },
        "runs": runs,
        "callgrind_cycles": INSTR_N,
        "quick": o.quick,
        "null_instructions": null_instr,
        "timer_overhead_ns": overhead,
    });
    let results = json!({
        "meta": meta,
        "exits": exits,
        "data_path": data_path,
        "boot": boot,
    });
    std::fs::create_dir_all(&o.out).expect("out dir");
    let json_path = o.out.join("results.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&results).expect("json") + "\n",
    )
    .expect("write results.json");
    let refs: Vec<(&Path, &Value)> = baselines.iter().map(|(p, v)| (p.as_path(), v)).collect();
    let mut md = markdown(&results, &refs);
    // Hand-written findings (what was fixed, what is left) go after the figures.
    if let Ok(notes) = std::fs::read_to_string(o.out.join("notes.md")) {
        md.push('\n');
        md.push_str(&notes);
    }
    std::fs::write(o.out.join("results.md"), &md).expect("write results.md");
    println!("{md}");
    eprintln!(
        "wrote {} and {}",
        json_path.display(),
        o.out.join("results.md").display()
    );
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn find<'a>(list: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    list?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// The report.
pub fn markdown(r: &Value, baselines: &[(&Path, &Value)]) -> String {
    let mut s = String::new();
    let m = &r["meta"];
    let _ = writeln!(s, "# VMM benchmark results\n");
    let _ = writeln!(
        s,
        "Commit `{}`, {} UTC, {}, {} ({} cores), {}. Made by `crates/vmm-bench/run.sh` \
         (see [README](README.md)); machine-readable: [results.json](results.json).\n",
        m["commit"].as_str().unwrap_or("?"),
        m["date_utc"].as_str().unwrap_or("?"),
        m["rustc"].as_str().unwrap_or("?"),
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["valgrind"].as_str().unwrap_or("no valgrind"),
    );
    if let Some(files) = m["uncommitted"].as_array().filter(|f| !f.is_empty()) {
        let list: Vec<&str> = files.iter().filter_map(Value::as_str).collect();
        let _ = writeln!(
            s,
            "Built from that commit plus uncommitted changes to: {}.\n",
            list.iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(load) = num(m, "loadavg_1min") {
        let _ = writeln!(
            s,
            "Host load average (1 min) at the end of the run: {load:.2} on {} cores. Times \
             and ratios are medians of runs on that host as it was; instruction counts do not \
             depend on it.\n",
            m["cores"],
        );
    }
    let _ = writeln!(s, "## Per exit: the VMM's own work\n");
    let _ = writeln!(
        s,
        "One row is one guest exit handed to a real `vmm::Vm` (real vGIC, real MMIO bus with \
         PL011 and the virtio-pci bridge with console, blk and net) as `Vm::handle(Event)`, \
         after a Linux-like bring-up done with exits too. **instr**: instructions per exit \
         counted by callgrind inside the measured call ({} exits per scenario, minus the {} \
         instructions of the empty call). **ns**: median of {} runs of the mean time per exit, \
         each exit timed alone, minus the {:.1} ns the clock pair costs; **batch**: back to back, \
         where nothing has to happen between exits. Host CPU, not the Arm target: compare rows \
         with each other, not with the target's cycle counts.\n",
        m["callgrind_cycles"],
        f1(num(m, "null_instructions")),
        m["runs"],
        num(m, "timer_overhead_ns").unwrap_or(f64::NAN),
    );
    let _ = writeln!(
        s,
        "| exit | class | instr | target | ns | batch ns | what the guest did |\n| --- | --- | ---: | ---: | ---: | ---: | --- |"
    );
    for e in r["exits"].as_array().into_iter().flatten() {
        let ir = e["instructions"].as_u64();
        let target = e["target_instructions"].as_u64();
        let verdict = match e["meets_target"].as_bool() {
            Some(true) => format!("<= {} ok", target.unwrap_or(0)),
            Some(false) => format!("<= {} **missed**", target.unwrap_or(0)),
            None => "".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            e["name"].as_str().unwrap_or(""),
            e["class"].as_str().unwrap_or(""),
            fu(ir),
            verdict,
            f1(num(e, "ns")),
            f1(num(e, "ns_batch")),
            e["what"].as_str().unwrap_or(""),
        );
    }
    let _ = writeln!(s, "\n## Data path: throughput against memcpy\n");
    let _ = writeln!(
        s,
        "Whole requests as the guest makes them (the exits listed), back to back, against a \
         plain memcpy of the same bytes between the same kind of buffers, run after run in the \
         same process; medians of {} runs. **ratio** = memcpy time / VMM time (1.0 = memcpy \
         speed). Target: a 64 KiB virtio-blk read at least 0.50.\n",
        m["runs"]
    );
    let _ = writeln!(
        s,
        "| test | bytes | VMM ns/request | memcpy ns | ratio | VMM MB/s | requests/s | what |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for d in r["data_path"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | **{:.2}** | {:.0} | {:.0} | {} |",
            d["name"].as_str().unwrap_or(""),
            d["bytes"],
            f1(num(d, "vmm_ns_per_request")),
            f1(num(d, "memcpy_ns")),
            num(d, "ratio_to_memcpy").unwrap_or(f64::NAN),
            num(d, "vmm_mb_per_s").unwrap_or(f64::NAN),
            num(d, "requests_per_s").unwrap_or(f64::NAN),
            d["what"].as_str().unwrap_or(""),
        );
    }
    if !baselines.is_empty() {
        let _ = writeln!(s, "\n## Before and after\n");
        let label = |b: &Value| {
            let c = b["meta"]["commit"].as_str().unwrap_or("?");
            c.get(..7).unwrap_or(c).to_string()
        };
        for (path, b) in baselines {
            let _ = writeln!(
                s,
                "* `{}`: `{}` (commit `{}`, {}).",
                label(b),
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |f| f.to_string_lossy().into_owned()
                ),
                b["meta"]["commit"].as_str().unwrap_or("?"),
                b["meta"]["date_utc"].as_str().unwrap_or("?"),
            );
        }
        let now = label(r);
        let _ = writeln!(s, "* `{now}`: this run.\n");
        let cols = |what: &str| -> String {
            baselines
                .iter()
                .map(|(_, b)| format!(" {what} `{}` |", label(b)))
                .collect()
        };
        let _ = writeln!(
            s,
            "| exit |{} instr `{now}` | target |{} ns `{now}` |\n| --- |{} ---: | ---: |{} ---: |",
            cols("instr"),
            cols("ns"),
            " ---: |".repeat(baselines.len()),
            " ---: |".repeat(baselines.len()),
        );
        for e in r["exits"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap_or("");
            let olds: Vec<Option<&Value>> = baselines
                .iter()
                .map(|(_, b)| find(b.get("exits"), name))
                .collect();
            let instr: String = olds
                .iter()
                .map(|o| format!(" {} |", fu(o.and_then(|o| o["instructions"].as_u64()))))
                .collect();
            let ns: String = olds
                .iter()
                .map(|o| format!(" {} |", f1(o.and_then(|o| num(o, "ns")))))
                .collect();
            let target = e["target_instructions"]
                .as_u64()
                .map_or(String::new(), |t| format!("<= {t}"));
            let _ = writeln!(
                s,
                "| {name} |{instr} {} | {target} |{ns} {} |",
                fu(e["instructions"].as_u64()),
                f1(num(e, "ns")),
            );
        }
        let _ = writeln!(
            s,
            "\n| data path |{} ratio `{now}` |{} ns `{now}` |\n| --- |{} ---: |{} ---: |",
            cols("ratio"),
            cols("ns"),
            " ---: |".repeat(baselines.len()),
            " ---: |".repeat(baselines.len()),
        );
        for d in r["data_path"].as_array().into_iter().flatten() {
            let name = d["name"].as_str().unwrap_or("");
            let olds: Vec<Option<&Value>> = baselines
                .iter()
                .map(|(_, b)| find(b.get("data_path"), name))
                .collect();
            let ratio = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
            let ratios: String = olds
                .iter()
                .map(|o| format!(" {} |", ratio(o.and_then(|o| num(o, "ratio_to_memcpy")))))
                .collect();
            let ns: String = olds
                .iter()
                .map(|o| format!(" {} |", f1(o.and_then(|o| num(o, "vmm_ns_per_request")))))
                .collect();
            let _ = writeln!(
                s,
                "| {name} |{ratios} {} |{ns} {} |",
                ratio(num(d, "ratio_to_memcpy")),
                f1(num(d, "vmm_ns_per_request")),
            );
        }
    }
    let _ = writeln!(s, "\n## Boot\n");
    match r.get("boot").filter(|b| !b.is_null()) {
        None => {
            let _ = writeln!(
                s,
                "Not measured in this run: `crates/vmm-bench/boot.sh` writes \
                 `crates/vmm-bench/boot.json`, which the next `crates/vmm-bench/run.sh` folds in \
                 here."
            );
        }
        Some(b) => boot_md(&mut s, b),
    }
    s
}

fn boot_md(s: &mut String, b: &Value) {
    let vmm_measured = b.get("vmm").is_some_and(|v| !v.is_null());
    let sides = if vmm_measured {
        "booted bare on QEMU and under seL4 + the VMM, runs interleaved"
    } else {
        "booted bare on QEMU (**the side under seL4 + the VMM was not measured in this boot \
         run**, see the note below the table)"
    };
    let _ = writeln!(
        s,
        "Guest uptime when `/init` starts (`SELFTEST: init reached, uptime X s`), the same \
         kernel and initramfs ({}) {sides}, on {} (QEMU {}, TCG). Made by \
         `crates/vmm-bench/boot.sh` on {} UTC.\n",
        b["kernel"].as_str().unwrap_or("?"),
        b["host"].as_str().unwrap_or("?"),
        b["qemu"].as_str().unwrap_or("?"),
        b["date_utc"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        s,
        "| side | runs | init reached (s), each run | median | wall clock (s), each run | self-test |\n| --- | ---: | --- | ---: | --- | --- |"
    );
    for side in ["bare", "bare_matched", "vmm"] {
        let Some(x) = b.get(side).filter(|x| !x.is_null()) else {
            continue;
        };
        let list = |k: &str| -> String {
            x[k].as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_f64().map_or("-".into(), |f| format!("{f:.2}")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            x["label"].as_str().unwrap_or(side),
            x["init_s"].as_array().map_or(0, |a| a.len()),
            list("init_s"),
            f1(num(x, "init_median_s")),
            list("wall_s"),
            x["results"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
        );
    }
    let vmm = b.get("vmm").and_then(|v| num(v, "init_median_s"));
    for (side, label) in [("bare", "bare"), ("bare_matched", "bare-matched")] {
        if let (Some(bare), Some(vmm)) = (b.get(side).and_then(|v| num(v, "init_median_s")), vmm) {
            let _ = writeln!(
                s,
                "\nUnder the VMM the guest reaches init in {:.2}x the {label} time (medians).",
                vmm / bare
            );
        }
    }
    if let Some(note) = b["note"].as_str() {
        let _ = writeln!(s, "\n{note}");
    }
    if let Some(ex) = b.get("vmm_exits").and_then(Value::as_str) {
        let _ = writeln!(
            s,
            "\nVM exits during the boot, by class (the VMM's exit statistics at the end of \
             the last run):\n\n```text\n{ex}\n```"
        );
    }
}
