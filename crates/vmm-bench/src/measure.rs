//! Measurements: instruction counts under callgrind, time per exit, data-path throughput.

use crate::machine::{Machine, bench_measured, bench_unmeasured};
use crate::scenarios::{self, Cycle, DataPath};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Warm-up cycles before anything is counted or timed.
pub const WARMUP: u64 = 256;

/// Runs one cycle with the measured step outside measurement.
fn cycle_unmeasured(m: &mut Machine, c: &mut dyn Cycle) {
    c.prep(m);
    let s = c.measured(m);
    let r = bench_unmeasured(&mut m.vm, &s);
    c.after(m, r);
}

/// A machine for `name`, warmed up and checked.
pub fn ready(name: &str) -> (Machine, Box<dyn Cycle>) {
    let (mut m, mut c) = scenarios::build(name).unwrap_or_else(|| panic!("no scenario {name}"));
    for _ in 0..WARMUP {
        cycle_unmeasured(&mut m, c.as_mut());
    }
    c.check(&mut m);
    (m, c)
}

/// The `instr` mode, run under callgrind: warm-up, then `n` cycles whose measured step goes
/// through `bench_measured` (the function callgrind collects in).
pub fn instr_mode(name: &str, n: u64) {
    let (mut m, mut c) = ready(name);
    for _ in 0..n {
        c.prep(&mut m);
        let s = c.measured(&m);
        let r = bench_measured(&mut m.vm, &s);
        c.after(&mut m, r);
    }
    c.check(&mut m);
}

/// Instructions collected inside `bench_measured` for `n` cycles of `name`, or why not.
pub fn callgrind(exe: &Path, name: &str, n: u64, out_dir: &Path) -> Result<u64, String> {
    std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join(format!("callgrind.{name}.out"));
    let st = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--toggle-collect=bench_measured",
            &format!("--callgrind-out-file={}", out.display()),
        ])
        .arg(exe)
        .args(["instr", name, &n.to_string()])
        .output()
        .map_err(|e| format!("valgrind: {e}"))?;
    if !st.status.success() {
        return Err(format!(
            "valgrind failed: {}",
            String::from_utf8_lossy(&st.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    for l in text.lines() {
        for key in ["totals:", "summary:"] {
            if let Some(v) = l.strip_prefix(key) {
                return v
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("bad {key} line"));
            }
        }
    }
    Err("no totals in callgrind output".into())
}

/// Time figures of one scenario, in ns per measured step.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Median over runs of the mean of individually timed steps (timer overhead included).
    pub each: f64,
    /// Every run's mean.
    pub runs: Vec<f64>,
    /// Back-to-back timing (one clock pair per batch), for scenarios that allow it.
    pub batch: Option<f64>,
}

/// Median of `v`.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Times `name`: `runs` runs of `n` steps each.
pub fn time(name: &str, runs: usize, n: u64) -> Timing {
    let (mut m, mut c) = ready(name);
    let mut means = Vec::with_capacity(runs);
    let mut batches = Vec::new();
    for _ in 0..runs {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            c.prep(&mut m);
            let s = c.measured(&m);
            let t0 = Instant::now();
            let r = bench_measured(&mut m.vm, black_box(&s));
            total += t0.elapsed();
            c.after(&mut m, r);
        }
        means.push(total.as_nanos() as f64 / n as f64);
        if c.batchable() {
            let s = c.measured(&m);
            let t0 = Instant::now();
            for _ in 0..n {
                black_box(bench_measured(&mut m.vm, black_box(&s)));
            }
            batches.push(t0.elapsed().as_nanos() as f64 / n as f64);
        }
    }
    c.check(&mut m);
    Timing {
        each: median(&means),
        runs: means,
        batch: (!batches.is_empty()).then(|| median(&batches)),
    }
}

/// Steps per run so that a run takes about `ms` milliseconds.
pub fn calibrate(name: &str, ms: f64) -> u64 {
    let (mut m, mut c) = ready(name);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_millis(20) {
        c.prep(&mut m);
        let s = c.measured(&m);
        let r = bench_measured(&mut m.vm, &s);
        c.after(&mut m, r);
        n += 1;
    }
    let per = t0.elapsed().as_nanos() as f64 / n as f64;
    ((ms * 1e6 / per) as u64).clamp(200, 2_000_000)
}

/// A data-path result.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// The test.
    pub dp: DataPath,
    /// ns per request through the VMM (median over runs).
    pub vmm_ns: f64,
    /// ns for a plain memcpy of the same bytes (median over runs, interleaved).
    pub memcpy_ns: f64,
    /// Requests per run.
    pub n: u64,
}

impl Throughput {
    /// memcpy time / VMM time: the VMM's speed as a fraction of memcpy's.
    pub fn ratio(&self) -> f64 {
        self.memcpy_ns / self.vmm_ns
    }

    /// VMM throughput, MB/s (10^6 bytes).
    pub fn vmm_mbps(&self) -> f64 {
        self.dp.bytes as f64 / self.vmm_ns * 1e3
    }

    /// memcpy throughput, MB/s.
    pub fn memcpy_mbps(&self) -> f64 {
        self.dp.bytes as f64 / self.memcpy_ns * 1e3
    }

    /// Requests per second through the VMM.
    pub fn per_second(&self) -> f64 {
        1e9 / self.vmm_ns
    }
}

/// Whole requests through the VMM against a memcpy of the same bytes between the same kind
/// of buffers (a disk image `Vec` into a guest-RAM `Vec`, same offsets every time, like the
/// device does), run after run in turn.
pub fn throughput(dp: &DataPath, runs: usize, ms: f64) -> Throughput {
    let (mut m, mut c) = ready(dp.scenario);
    let n = calibrate(dp.scenario, ms);
    let chunk = (dp.bytes / dp.copies) as usize;
    let src: Vec<u8> = (0..chunk).map(|i| i as u8).collect();
    let mut dst = vec![0u8; chunk * dp.copies as usize];
    let mut vmm = Vec::with_capacity(runs);
    let mut cpy = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        for _ in 0..n {
            c.prep(&mut m);
            let s = c.measured(&m);
            let r = bench_measured(&mut m.vm, black_box(&s));
            c.after(&mut m, r);
        }
        vmm.push(t0.elapsed().as_nanos() as f64 / n as f64);
        let t0 = Instant::now();
        for _ in 0..n {
            for k in 0..dp.copies as usize {
                let d = &mut dst[k * chunk..(k + 1) * chunk];
                d.copy_from_slice(black_box(&src));
                black_box(d);
            }
        }
        cpy.push(t0.elapsed().as_nanos() as f64 / n as f64);
    }
    c.check(&mut m);
    Throughput {
        dp: *dp,
        vmm_ns: median(&vmm),
        memcpy_ns: median(&cpy),
        n,
    }
}

/// The step `Measured::Nothing` costs when timed one by one (the clock pair): subtracted.
pub fn timer_overhead(runs: usize) -> f64 {
    time("null", runs, 100_000).each
}
