//! `vmm-bench`: what the VMM itself costs per guest exit, on its virtio data path, and (with
//! `crates/vmm-bench/boot.sh`) at guest boot. See `crates/vmm-bench/README.md`.
//!
//! ```text
//! vmm-bench [run] [--out DIR] [--quick] [--no-callgrind] [--baseline FILE]...
//! vmm-bench list
//! vmm-bench instr SCENARIO N     (what callgrind runs: N measured cycles of SCENARIO)
//! vmm-bench time SCENARIO        (time one scenario, print ns per exit)
//! ```
//!
//! `run` measures every scenario: instructions per exit with `valgrind --tool=callgrind
//! --toggle-collect=bench_measured` (deterministic), time per exit (median of runs), and the
//! data path against memcpy in the same process; then writes `DIR/results.json` and
//! `DIR/results.md` (with `DIR/boot.json` folded in when `crates/vmm-bench/boot.sh` has made
//! it).

// The `#[unsafe(no_mangle)]` markers callgrind toggles on are in the library (`machine`); the
// binary has no unsafe code of its own.
#![forbid(unsafe_code)]

use vmm_bench::machine;
mod measure;
mod report;
mod scenarios;

use std::path::PathBuf;

fn usage() -> ! {
    eprintln!(
        "usage: vmm-bench [run] [--out DIR] [--quick] [--no-callgrind] [--baseline FILE]\n\
         \x20      vmm-bench list | instr SCENARIO N | time SCENARIO"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("list") => {
            for i in scenarios::ALL {
                println!("{:<20} {:<14} {}", i.name, i.class, i.what);
            }
        }
        Some("instr") => {
            let (Some(name), Some(n)) = (args.get(1), args.get(2).and_then(|s| s.parse().ok()))
            else {
                usage()
            };
            if scenarios::info(name).is_none() {
                usage()
            }
            measure::instr_mode(name, n);
        }
        Some("time") => {
            let Some(name) = args.get(1) else { usage() };
            if scenarios::info(name).is_none() {
                usage()
            }
            let overhead = measure::timer_overhead(5);
            let n = measure::calibrate(name, 30.0);
            let t = measure::time(name, 9, n);
            println!(
                "{name}: {:.1} ns/exit (timed one by one, minus {overhead:.1} ns clock overhead), batch {:?}, runs {:?}",
                t.each - overhead,
                t.batch,
                t.runs
            );
        }
        None | Some("run") | Some("--out" | "--quick" | "--no-callgrind" | "--baseline") => {
            let rest = if args.first().map(String::as_str) == Some("run") {
                &args[1..]
            } else {
                &args[..]
            };
            let mut opts = report::Options {
                out: PathBuf::from("crates/vmm-bench"),
                quick: false,
                callgrind: true,
                baselines: Vec::new(),
            };
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--out" => opts.out = it.next().map(PathBuf::from).unwrap_or_else(|| usage()),
                    "--quick" => opts.quick = true,
                    "--no-callgrind" => opts.callgrind = false,
                    "--baseline" => opts
                        .baselines
                        .push(it.next().map(PathBuf::from).unwrap_or_else(|| usage())),
                    _ => usage(),
                }
            }
            report::run(&opts);
        }
        _ => usage(),
    }
}
