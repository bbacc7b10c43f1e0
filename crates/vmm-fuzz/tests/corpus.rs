//! Replays every seed of the corpus and every regression input through its target: what CI
//! runs on every push (seconds), while `fuzz/` runs the same targets under libFuzzer.

#![allow(clippy::unwrap_used)] // a test helper: a missing corpus file is a failed test

use std::fs;
use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    for (name, target) in vmm_fuzz::TARGETS {
        let Ok(entries) = fs::read_dir(root.join(name)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let data = fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| target(&data));
            assert!(r.is_ok(), "{name}: {} fails", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn every_target_has_seeds_and_they_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, _) in vmm_fuzz::TARGETS {
        let seeds = fs::read_dir(root.join(name))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(seeds > 0, "{name}: no seed corpus in corpus/{name}");
    }
    assert!(replay("corpus") >= vmm_fuzz::TARGETS.len());
    // Every crash a fuzzer found, kept as the input that found it (none is fine).
    replay("regressions");
}

#[test]
fn a_broken_invariant_is_caught() {
    use vmm_fuzz::Broken;
    // The checks themselves work: each kind of violation panics the target, and a clean
    // machine does not.
    for broken in [Broken::OutsideRam, Broken::TooMuchWork] {
        let r = std::panic::catch_unwind(|| vmm_fuzz::self_test(broken));
        assert!(r.is_err(), "{broken:?} not caught");
    }
    vmm_fuzz::fuzz_vm(vmm_fuzz::Focus::All, &[]);
}
