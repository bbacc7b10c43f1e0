//! Warnings of one kind never silence another, and a full table says that it stops logging.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Mutex;

use common::{Machine, platform};
use hypervisor::VcpuId;
use irqchip::InterruptController;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        LINES.lock().unwrap().push(format!("{}", r.args()));
    }
    fn flush(&self) {}
}

#[test]
fn seventy_bad_sgis_then_a_bad_vcpu_is_still_logged() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let mut m = Machine::new(&platform(4, &[]), 4);
    // 70 distinct SGI requests to vCPUs that do not exist (Aff1 = 1..=70).
    for k in 1..=70u64 {
        m.sgi1r(0, k << 16 | 1);
    }
    // Then another kind of warning: a maintenance event for a vCPU that does not exist.
    m.gic.maintenance(&mut m.hyp, VcpuId(9), Some(0));
    let lines = LINES.lock().unwrap().clone();
    let sgis = lines.iter().filter(|l| l.contains("no such vCPU")).count();
    assert_eq!(sgis, 64, "{lines:#?}");
    let full: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("vgic: bad SGI requests: 64 distinct ones logged; later ones are counted, not logged"))
        .collect();
    assert_eq!(full.len(), 1, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("vcpu9") && l.contains("does not exist")),
        "{lines:#?}"
    );
}
