//! Delivery: list registers and the pending queue, level and edge semantics, SGIs, routing,
//! power, and events naming things that do not exist.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use arm_fault::SysReg;
use common::{Ev, LrEntry, Machine, platform};
use hypervisor::{VcpuId, VirtualIrq};
use irqchip::InterruptController;
use proptest::prelude::*;
use vgic::ListRegister;
use vgic::regs::{gicd, gicr, gicr_sgi};
use vmm_platform::{PassthroughIrq, Spi, Trigger};

/// SPI 8 (INTID 40) level pass-through, SPI 9 (INTID 41) edge pass-through; QEMU's emulated
/// SPIs 1 and 3..6 (INTIDs 33, 35..38); 64 INTIDs.
static PT: &[PassthroughIrq] = &[
    PassthroughIrq {
        name: "level",
        spi: Spi(8),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "edge",
        spi: Spi(9),
        trigger: Trigger::Edge,
    },
];
const PT_LEVEL: u32 = 40;
const PT_EDGE: u32 = 41;

fn machine(vcpus: u8, nlr: usize) -> Machine {
    let mut m = Machine::new(&platform(vcpus, PT), nlr);
    m.bring_up(usize::from(vcpus));
    m
}

/// `intid` as an ICC_SGI1R_EL1 value for Aff0 target list `list`.
fn sgi1r(intid: u32, list: u16) -> u64 {
    u64::from(intid) << 24 | u64::from(list)
}

fn edge(m: &mut Machine, intid: u32) {
    let a = m.gicd() + gicd::ICFGR + u64::from(intid / 16) * 4;
    let v = m.readl(a) | 2 << (2 * (intid % 16));
    m.writel(a, v);
}

proptest! {
    /// More pending interrupts than list registers: the first injections take the best, and
    /// every refill after an EOI takes the best of what is left: highest priority (lowest
    /// value) first, lower INTID first among equals.
    #[test]
    fn pending_queue_in_priority_order(
        nlr in 1usize..6,
        prios in prop::collection::vec(any::<u8>(), 5..20),
    ) {
        let mut m = Machine::new(&platform(1, PT), nlr);
        m.bring_up(1);
        m.writel(m.gicd() + gicd::CTLR, 0); // group 1 off while they pile up
        let intids: Vec<u32> = (0..prios.len() as u32).map(|i| 42 + i).collect();
        for (&intid, &p) in intids.iter().zip(&prios) {
            m.set_priority(intid, 0, p);
            m.enable(intid, 0);
            m.set_pending(intid, 0);
        }
        prop_assert!(m.hyp.events.is_empty());
        m.writel(m.gicd() + gicd::CTLR, gicd::CTLR_ENABLE_G1A);
        prop_assert_eq!(m.hyp.injected(0).len(), nlr.min(intids.len()));
        let taken = m.drain(0, 100);
        let mut expect: Vec<(u8, u32)> = prios.iter().copied().zip(intids.iter().copied()).collect();
        expect.sort_unstable();
        let expect: Vec<u32> = expect.into_iter().map(|(_, i)| i).collect();
        prop_assert_eq!(m.hyp.injected(0), expect);
        prop_assert_eq!(taken.len(), intids.len());
        prop_assert!(!m.gic.has_pending(VcpuId(0)));
    }
}

#[test]
fn four_list_registers_ten_pending() {
    let mut m = machine(1, 4);
    let prios = [0x90u8, 0x10, 0xa0, 0x10, 0x00, 0xf0, 0x50, 0x80, 0x20, 0x60];
    for (i, &p) in prios.iter().enumerate() {
        let intid = 42 + i as u32;
        m.set_priority(intid, 0, p);
        m.enable(intid, 0);
    }
    // The first four arrive in INTID order and fill the list registers as they come.
    for i in 0..10 {
        m.set_pending(42 + i, 0);
    }
    assert_eq!(m.hyp.injected(0), [42, 43, 44, 45]);
    for lr in 0..4 {
        assert!(matches!(
            m.gic.list_register(VcpuId(0), lr),
            Some(ListRegister::Holds(_))
        ));
    }
    // The guest takes the best of its list registers each time; every refill takes the best
    // of the six that waited: 46 (0x00), 50 (0x20), 48 (0x50), 51 (0x60), 49 (0x80), 47.
    let taken = m.drain(0, 20);
    assert_eq!(&m.hyp.injected(0)[4..], [46, 50, 48, 51, 49, 47]);
    assert_eq!(taken.len(), 10);
    assert_eq!(
        taken[..2],
        [43, 46],
        "0x10 first, then 0x00 once it is listed"
    );
}

#[test]
fn level_reinjected_after_eoi_edge_pends_again() {
    let mut m = machine(1, 4);
    // Level (emulated): still asserted at the EOI, injected again.
    m.enable(33, 0);
    m.gic.set_level(&mut m.hyp, 33, true);
    assert_eq!(m.take(0), Some(33));
    // The handler lowers the line (reads the device's status) before its EOI: done.
    assert_eq!(m.ack(0), Some(33));
    m.gic.set_level(&mut m.hyp, 33, false);
    m.eoi(0, 33);
    assert_eq!(m.take(0), None);

    // Edge: pulses while the interrupt is listed (pending or active) make it pending once
    // more; it comes back after the EOI, once.
    edge(&mut m, 35);
    m.enable(35, 0);
    m.gic.set_level(&mut m.hyp, 35, true);
    m.gic.set_level(&mut m.hyp, 35, false);
    assert_eq!(m.ack(0), Some(35));
    assert!(m.bit(gicd::ISACTIVER, 35, 0), "listed reads active");
    assert!(!m.bit(gicd::ISPENDR, 35, 0));
    for _ in 0..3 {
        m.gic.set_level(&mut m.hyp, 35, true);
        m.gic.set_level(&mut m.hyp, 35, false);
    }
    assert!(m.bit(gicd::ISPENDR, 35, 0), "active and pending");
    m.eoi(0, 35);
    assert_eq!(m.take(0), Some(35));
    assert_eq!(m.take(0), None);
    assert_eq!(m.hyp.injected(0), [33, 33, 35, 35]);

    // A level line held high without an edge config does not latch: lowering it before the
    // guest sees it leaves nothing pending (the list register keeps its copy, as hardware
    // would after the guest's acknowledge).
    m.disable(36, 0);
    m.gic.set_level(&mut m.hyp, 36, true);
    assert!(m.bit(gicd::ISPENDR, 36, 0));
    m.gic.set_level(&mut m.hyp, 36, false);
    assert!(!m.bit(gicd::ISPENDR, 36, 0));
    m.enable(36, 0);
    assert_eq!(m.take(0), None);
}

#[test]
fn software_pending_and_active() {
    let mut m = machine(1, 4);
    // ISPENDR on a disabled interrupt: pending, not delivered, until enabled.
    m.set_pending(37, 0);
    assert!(m.hyp.events.is_empty());
    assert!(!m.gic.has_pending(VcpuId(0)));
    // ISACTIVER holds it back once enabled; ICACTIVER releases it.
    m.writel(m.gicd() + gicd::ISACTIVER + 4, 1 << (37 - 32));
    m.enable(37, 0);
    assert!(m.hyp.events.is_empty());
    m.writel(m.gicd() + gicd::ICACTIVER + 4, 1 << (37 - 32));
    assert_eq!(m.take(0), Some(37));
    // ICPENDR withdraws a pending interrupt before delivery.
    m.disable(37, 0);
    m.set_pending(37, 0);
    m.writel(m.gicd() + gicd::ICPENDR + 4, 1 << (37 - 32));
    m.enable(37, 0);
    assert_eq!(m.take(0), None);
}

#[test]
fn passthrough_edge_acked_at_once() {
    let mut m = machine(1, 4);
    m.enable(PT_EDGE, 0);
    m.gic.physical_irq(&mut m.hyp, PT_EDGE);
    assert_eq!(
        m.hyp.take_events()[..],
        [
            Ev::AckIrq(PT_EDGE),
            Ev::Inject(
                VcpuId(0),
                0,
                VirtualIrq {
                    intid: PT_EDGE,
                    priority: 0,
                    group: 1
                }
            )
        ]
    );
    // Another edge while listed: latched, acknowledged at once, delivered after the EOI.
    m.gic.physical_irq(&mut m.hyp, PT_EDGE);
    assert_eq!(m.hyp.acks(), [Ev::AckIrq(PT_EDGE)]);
    assert_eq!(m.take(0), Some(PT_EDGE));
    assert_eq!(m.take(0), Some(PT_EDGE));
    assert_eq!(m.take(0), None);
    assert_eq!(
        m.hyp.acks(),
        [Ev::AckIrq(PT_EDGE)],
        "nothing more at the EOIs"
    );
}

#[test]
fn passthrough_level_software_pend_does_not_ack() {
    let mut m = machine(1, 4);
    m.enable(PT_LEVEL, 0);
    // The guest pends it by hand (no physical interrupt): its EOI acknowledges nothing.
    m.set_pending(PT_LEVEL, 0);
    assert_eq!(m.ack(0), Some(PT_LEVEL));
    // The physical interrupt arrives while that copy is active: it must not be acknowledged
    // by the EOI of the software copy, and must be delivered after it.
    m.gic.physical_irq(&mut m.hyp, PT_LEVEL);
    m.eoi(0, PT_LEVEL);
    assert!(m.hyp.acks().is_empty());
    assert_eq!(m.take(0), Some(PT_LEVEL));
    assert_eq!(m.hyp.acks(), [Ev::AckIrq(PT_LEVEL)]);
    // set_level on a pass-through line is not the device model's to drive.
    m.gic.set_level(&mut m.hyp, PT_LEVEL, true);
    assert_eq!(m.take(0), None);
}

#[test]
fn sgis_to_self_list_and_all() {
    let mut m = machine(4, 4);
    for v in 0..4 {
        let s = m.sgi(v);
        m.writel(s + gicr_sgi::ISENABLER0, 0xffff);
    }
    // To self.
    m.sgi1r(2, sgi1r(5, 1 << 2));
    assert_eq!(m.hyp.injected(2), [5]);
    assert_eq!(m.take(2), Some(5));
    // To a list: vCPUs 0, 1 and 3 from vCPU 1 (a CPU may name itself).
    m.hyp.take_events();
    m.sgi1r(1, sgi1r(3, 0b1011));
    for (v, n) in [(0, 1), (1, 1), (2, 0), (3, 1)] {
        assert_eq!(m.hyp.injected(v).len(), n, "vcpu{v}");
    }
    for v in [0, 1, 3] {
        assert_eq!(m.take(v), Some(3));
    }
    // IRM = 1: every vCPU but the sender; the target list is ignored.
    m.hyp.take_events();
    m.sgi1r(3, sgi1r(7, 0) | 1 << 40);
    for v in 0..3u8 {
        assert_eq!(m.hyp.injected(v), [7]);
    }
    assert!(m.hyp.injected(3).is_empty());
    // Affinities no vCPU has (Aff1 = 1, or RS = 1: Aff0 16..31): nobody.
    m.hyp.take_events();
    m.sgi1r(0, sgi1r(1, 0xffff) | 1 << 16);
    m.sgi1r(0, sgi1r(1, 0xffff) | 1 << 44);
    m.sgi1r(0, sgi1r(1, 0xffff) | 1 << 32);
    m.sgi1r(0, sgi1r(1, 0xffff) | 1 << 48);
    assert!(m.hyp.events.is_empty());
    // Target list bits past the last vCPU are ignored, the rest delivered.
    m.sgi1r(0, sgi1r(2, 0xfff0 | 1 << 1));
    assert_eq!(m.hyp.injected(1), [2]);
}

#[test]
fn sgi_waits_for_enable_and_wake() {
    let mut m = Machine::new(&platform(2, PT), 4);
    m.bring_up(1); // vCPU 1 off, its redistributor asleep
    let s1 = m.sgi(1);
    // Pending at a disabled, offline, asleep target.
    m.sgi1r(0, sgi1r(6, 0b10));
    assert!(m.hyp.events.is_empty());
    assert_eq!(m.readl(s1 + gicr_sgi::ISPENDR0), 1 << 6);
    m.writel(s1 + gicr_sgi::ISENABLER0, 1 << 6);
    m.power(1, true);
    assert!(m.hyp.events.is_empty(), "redistributor still asleep");
    assert!(m.gic.has_pending(VcpuId(1)));
    let w = m.rd(1) + gicr::WAKER;
    m.writel(w, 0);
    assert_eq!(m.hyp.injected(1), [6]);
}

#[test]
fn other_sgi_registers() {
    let mut m = machine(2, 4);
    let s = m.sgi(1);
    m.writel(s + gicr_sgi::ISENABLER0, 0xffff);
    for reg in [SysReg::ICC_SGI0R_EL1, SysReg::ICC_ASGI1R_EL1] {
        assert!(
            m.gic
                .sysreg_write(&mut m.hyp, VcpuId(0), reg, sgi1r(1, 0b10))
        );
    }
    assert!(
        m.hyp.events.is_empty(),
        "no Group 0 or Secure SGIs in this GIC"
    );
    assert!(
        !m.gic
            .sysreg_write(&mut m.hyp, VcpuId(0), SysReg::CNTPCT_EL0, 0)
    );
    assert!(
        !m.gic
            .sysreg_write(&mut m.hyp, VcpuId(0), SysReg::new(3, 0, 12, 12, 1), 0)
    );
}

#[test]
fn irouter_to_offline_vcpu() {
    let mut m = Machine::new(&platform(4, PT), 4);
    m.bring_up(2); // vCPUs 0 and 1 on; 2 and 3 off
    m.enable(37, 0);
    m.route(37, 2);
    // Routed to vCPU 2, which is off: delivered to an online vCPU, not lost.
    m.gic.set_level(&mut m.hyp, 37, true);
    assert_eq!(m.hyp.injected(0), [37]);
    m.gic.set_level(&mut m.hyp, 37, false);
    assert_eq!(m.take(0), Some(37));
    // vCPU 2 comes up: it gets the next one.
    m.power(2, true);
    let w = m.rd(2) + gicr::WAKER;
    m.writel(w, 0);
    m.gic.set_level(&mut m.hyp, 37, true);
    assert_eq!(m.hyp.injected(2), [37]);
    m.gic.set_level(&mut m.hyp, 37, false);
    assert_eq!(m.take(2), Some(37));
    // Routed to an MPIDR no vCPU has (Aff1 = 1): the first online vCPU.
    m.route(37, 1 << 8);
    m.hyp.take_events();
    m.gic.set_level(&mut m.hyp, 37, true);
    assert_eq!(m.hyp.injected(0), [37]);
    m.gic.set_level(&mut m.hyp, 37, false);
    assert_eq!(m.take(0), Some(37));
}

#[test]
fn all_vcpus_offline_holds_spis() {
    let mut m = Machine::new(&platform(2, PT), 4);
    m.bring_up(2);
    m.enable(PT_LEVEL, 0);
    m.route(PT_LEVEL, 1);
    m.power(0, false);
    m.power(1, false);
    m.gic.physical_irq(&mut m.hyp, PT_LEVEL);
    assert!(m.hyp.events.is_empty(), "held, not acknowledged");
    m.power(1, true);
    assert_eq!(m.hyp.injected(1), [PT_LEVEL]);
    assert_eq!(m.take(1), Some(PT_LEVEL));
    assert_eq!(m.hyp.acks(), [Ev::AckIrq(PT_LEVEL)]);
}

#[test]
fn one_of_n_routing() {
    let mut m = machine(3, 2);
    for i in 42..47 {
        m.enable(i, 0);
        m.route(i, gicd::IROUTER_IRM);
    }
    // vCPU 0 takes two (its list registers), vCPU 1 the next two, vCPU 2 the last.
    for i in 42..47 {
        m.set_pending(i, 0);
    }
    assert_eq!(m.hyp.injected(0), [42, 43]);
    assert_eq!(m.hyp.injected(1), [44, 45]);
    assert_eq!(m.hyp.injected(2), [46]);
    // With vCPU 0 off, 1-of-N never picks it.
    m.power(0, false);
    m.hyp.take_events();
    m.drain(1, 10);
    m.drain(2, 10);
    m.set_pending(42, 0);
    assert!(m.hyp.injected(0).is_empty());
    m.check_shadow();
}

#[test]
fn power_off_reclaims_spis() {
    let mut m = machine(2, 4);
    for i in [PT_LEVEL, 33, 34] {
        m.enable(i, 0);
        m.set_priority(i, 0, 0x80);
    }
    edge(&mut m, 34);
    let s0 = m.sgi(0);
    m.writel(s0 + gicr_sgi::ISENABLER0, 1 << 3 | 1 << 27);
    m.gic.physical_irq(&mut m.hyp, PT_LEVEL);
    m.gic.set_level(&mut m.hyp, 33, true);
    m.gic.set_level(&mut m.hyp, 34, true);
    m.sgi1r(1, sgi1r(3, 1));
    assert_eq!(m.hyp.injected(0), [PT_LEVEL, 33, 34, 3]);
    assert_eq!(
        m.ack(0),
        Some(3),
        "SGI 3 (priority 0) is active when vCPU 0 stops"
    );
    // vCPU 0 goes off with all four listed: the SPIs move to vCPU 1, none acknowledged yet;
    // the SGI stays with vCPU 0.
    m.hyp.take_events();
    m.power(0, false);
    let mut got = m.hyp.injected(1);
    got.sort_unstable();
    assert_eq!(got, [33, 34, PT_LEVEL]);
    assert!(m.hyp.acks().is_empty());
    for (lr, intid) in [(0, PT_LEVEL), (1, 33), (2, 34)] {
        assert_eq!(
            m.gic.list_register(VcpuId(0), lr),
            Some(ListRegister::Leftover(intid))
        );
    }
    assert_eq!(
        m.gic.list_register(VcpuId(0), 3),
        Some(ListRegister::Holds(3))
    );
    m.check_shadow();
    // vCPU 1 handles them: the pass-through one is acknowledged once, at its EOI there.
    m.gic.set_level(&mut m.hyp, 33, false);
    assert_eq!(m.drain(1, 10).len(), 3);
    assert_eq!(m.hyp.acks(), [Ev::AckIrq(PT_LEVEL)]);
    // While vCPU 0's left-overs are there, the SPIs are not injected into it again.
    m.hyp.take_events();
    m.power(0, true);
    m.power(1, false);
    m.gic.physical_irq(&mut m.hyp, PT_LEVEL);
    m.gic.set_level(&mut m.hyp, 33, true);
    assert!(m.hyp.injected(0).is_empty(), "{:?}", m.hyp.events);
    // vCPU 0 runs again: it finishes SGI 3 and takes the left-overs, whose EOIs acknowledge
    // nothing and free the list registers; the pass-through SPI is injected again only after
    // its left-over copy is gone, and acknowledged at the EOI of that injection.
    m.gic.set_level(&mut m.hyp, 33, false);
    m.eoi(0, 3);
    let mut taken = m.drain(0, 10);
    taken.sort_unstable();
    assert_eq!(taken, [33, 34, PT_LEVEL, PT_LEVEL]);
    assert_eq!(m.hyp.injected(0), [PT_LEVEL]);
    let ev = m.hyp.take_events();
    let at = |e: &dyn Fn(&Ev) -> bool| ev.iter().position(e).unwrap();
    let leftover_eoi = at(&|e| matches!(e, Ev::Eoi(VcpuId(0), 0, PT_LEVEL)));
    let inject = at(&|e| matches!(e, Ev::Inject(VcpuId(0), _, irq) if irq.intid == PT_LEVEL));
    let ack = at(&|e| *e == Ev::AckIrq(PT_LEVEL));
    assert!(leftover_eoi < inject && inject < ack, "{ev:?}");
    assert_eq!(ev.iter().filter(|e| matches!(e, Ev::AckIrq(_))).count(), 1);
    m.check_shadow();
}

#[test]
fn vtimer_held_while_disabled_and_over_power_off() {
    let mut m = machine(1, 4);
    let v = VcpuId(0);
    m.gic.vppi(&mut m.hyp, v, vgic::VTIMER_PPI);
    assert!(m.hyp.events.is_empty(), "PPI 27 disabled at reset");
    let s = m.sgi(0);
    m.writel(s + gicr_sgi::ISENABLER0, 1 << 27);
    assert_eq!(m.ack(0), Some(27));
    // Powered off while the guest has it active: it stays listed, not acknowledged; back on,
    // the guest's EOI acknowledges it.
    m.power(0, false);
    m.power(0, true);
    assert!(m.hyp.acks().is_empty());
    assert_eq!(m.hyp.injected(0), [27]);
    m.eoi(0, 27);
    assert_eq!(m.hyp.acks(), [Ev::AckVppi(v, 27)]);
}

#[test]
fn group_enable_gates_delivery() {
    let mut m = machine(1, 4);
    m.writel(m.gicd() + gicd::CTLR, 0);
    m.enable(33, 0);
    m.gic.set_level(&mut m.hyp, 33, true);
    assert!(m.hyp.events.is_empty());
    assert!(!m.gic.has_pending(VcpuId(0)));
    m.writel(m.gicd() + gicd::CTLR, gicd::CTLR_ENABLE_G1A);
    assert_eq!(m.hyp.injected(0), [33]);
    assert!(m.gic.has_pending(VcpuId(0)));
}

#[test]
fn kernel_refuses_a_list_register() {
    let mut m = machine(1, 2);
    // LR0 holds an active interrupt the vGIC does not know of: VCPU_InjectIRQ refuses it.
    m.hyp.lrs[0][0] = Some(LrEntry {
        irq: VirtualIrq {
            intid: 60,
            priority: 0,
            group: 1,
        },
        active: true,
        foreign: true,
    });
    m.enable(33, 0);
    m.gic.set_level(&mut m.hyp, 33, true);
    assert_eq!(
        m.gic.list_register(VcpuId(0), 0),
        Some(ListRegister::Unknown)
    );
    assert_eq!(
        m.gic.list_register(VcpuId(0), 1),
        Some(ListRegister::Holds(33))
    );
    // Its EOI frees it for the next injection.
    m.eoi(0, 60);
    assert_eq!(m.gic.list_register(VcpuId(0), 0), Some(ListRegister::Free));
    m.enable(34, 0);
    m.gic.set_level(&mut m.hyp, 34, true);
    assert_eq!(
        m.gic.list_register(VcpuId(0), 0),
        Some(ListRegister::Holds(34))
    );
    m.check_shadow();
}

#[test]
fn list_register_count_from_the_hypervisor() {
    let mut m = Machine::new(&platform(2, PT), 4);
    m.hyp.lrs = vec![vec![None; 1], vec![None; 3]];
    m.bring_up(2);
    for i in 42..46 {
        m.enable(i, 0);
        m.set_pending(i, 0);
    }
    assert_eq!(m.hyp.injected(0), [42]);
    for i in 46..50 {
        m.enable(i, 0);
        m.route(i, 1);
        m.set_pending(i, 0);
    }
    assert_eq!(m.hyp.injected(1), [46, 47, 48]);
    assert_eq!(m.gic.list_register(VcpuId(0), 1), None);
    assert_eq!(m.drain(0, 10), [42, 43, 44, 45]);
}

#[test]
fn has_pending() {
    let mut m = machine(2, 4);
    assert!(!m.gic.has_pending(VcpuId(0)));
    m.enable(33, 0);
    m.gic.set_level(&mut m.hyp, 33, true);
    assert!(m.gic.has_pending(VcpuId(0)));
    assert!(!m.gic.has_pending(VcpuId(1)));
    assert_eq!(m.ack(0), Some(33));
    assert!(m.gic.has_pending(VcpuId(0)), "in a list register");
    m.gic.set_level(&mut m.hyp, 33, false);
    m.eoi(0, 33);
    assert!(!m.gic.has_pending(VcpuId(0)));
    assert!(!m.gic.has_pending(VcpuId(200)));
}

#[test]
fn events_naming_nothing() {
    let mut m = machine(2, 4);
    let nobody = VcpuId(9);
    for intid in [0, 5, 16, 31, 64, 1019, 1020, 5000, u32::MAX] {
        m.gic.set_level(&mut m.hyp, intid, true);
        m.gic.physical_irq(&mut m.hyp, intid);
        m.gic.vppi(&mut m.hyp, VcpuId(0), intid.max(32));
        m.gic.vppi(&mut m.hyp, nobody, intid);
    }
    m.gic.vppi(&mut m.hyp, VcpuId(0), 5);
    m.gic.maintenance(&mut m.hyp, nobody, Some(0));
    m.gic.maintenance(&mut m.hyp, VcpuId(0), Some(99));
    m.gic.maintenance(&mut m.hyp, VcpuId(0), Some(usize::MAX));
    m.gic.maintenance(&mut m.hyp, VcpuId(0), None);
    m.gic.maintenance(&mut m.hyp, VcpuId(0), Some(0));
    m.gic.vcpu_power(&mut m.hyp, nobody, true);
    assert!(
        m.gic
            .sysreg_write(&mut m.hyp, nobody, SysReg::ICC_SGI1R_EL1, u64::MAX)
    );
    m.sgi1r(0, u64::MAX);
    assert!(m.hyp.events.is_empty(), "{:?}", m.hyp.events);
    assert!(!m.gic.has_pending(nobody));
}

/// ICC_SGI1R_EL1 values: mostly Aff3.Aff2.Aff1 = 0 and RS = 0 (the vCPUs' cluster), random
/// target lists, INTIDs and RES0 bits.
fn sgi1r_value() -> impl Strategy<Value = u64> {
    let aff = || prop_oneof![6 => Just(0u64), 1 => any::<u8>().prop_map(u64::from)];
    (
        any::<u16>(),
        0..16u64,
        prop::bool::weighted(0.2),
        (aff(), aff(), aff()),
        prop_oneof![6 => Just(0u64), 1 => 0..16u64],
        any::<u64>(),
    )
        .prop_map(|(list, intid, irm, (a1, a2, a3), rs, junk)| {
            let res0 = 0xff00_0e00_f000_0000;
            u64::from(list)
                | intid << 24
                | u64::from(irm) << 40
                | a1 << 16
                | a2 << 32
                | a3 << 48
                | rs << 44
                | junk & res0
        })
}

proptest! {
    /// Any ICC_SGI1R_EL1 value from any vCPU reaches exactly the vCPUs it names: IRM = 1
    /// every vCPU but the sender; otherwise Aff3.Aff2.Aff1 must be 0 (every vCPU's) and the
    /// target list names Aff0 = RS * 16 + bit. Offline targets get it when they come up.
    #[test]
    fn sgi_targets(
        from in 0u8..4,
        value in sgi1r_value(),
        online in prop::array::uniform4(any::<bool>()),
    ) {
        let mut m = Machine::new(&platform(4, PT), 4);
        m.bring_up(4);
        for (v, &on) in online.iter().enumerate() {
            let s = m.sgi(v);
            m.writel(s + gicr_sgi::ISENABLER0, 0xffff);
            if !on {
                m.power(v, false);
            }
        }
        m.sgi1r(usize::from(from), value);
        let intid = ((value >> 24) & 0xf) as u32;
        let expect: Vec<bool> = (0..4u64)
            .map(|t| {
                if value & 1 << 40 != 0 {
                    t != u64::from(from)
                } else {
                    let upper = (value >> 16) & 0xff | (value >> 32) & 0xff | (value >> 48) & 0xff;
                    let rs = (value >> 44) & 0xf;
                    upper == 0 && rs == 0 && value & (1 << t) != 0
                }
            })
            .collect();
        for (v, &named) in expect.iter().enumerate() {
            m.power(v, true);
            let got = m.hyp.injected(v as u8);
            if named {
                prop_assert_eq!(got, vec![intid], "vcpu{}", v);
            } else {
                prop_assert!(got.is_empty(), "vcpu{} got {:?}", v, got);
            }
        }
    }

    /// An SPI goes where IROUTER says when that vCPU is up, to the first vCPU that is when
    /// it is not (or names no vCPU), to the first one with a free list register with 1-of-N
    /// routing, and waits when no vCPU is up: never lost.
    #[test]
    fn spi_routing(route in any::<u64>(), up in prop::array::uniform4(any::<bool>()), irm in any::<bool>()) {
        let mut m = Machine::new(&platform(4, PT), 4);
        m.bring_up(4);
        let route = if irm { route | gicd::IROUTER_IRM } else { route & !gicd::IROUTER_IRM };
        m.enable(37, 0);
        m.route(37, route);
        for (v, &on) in up.iter().enumerate() {
            if !on {
                m.power(v, false);
            }
        }
        m.gic.set_level(&mut m.hyp, 37, true);
        let first_up = (0..4).find(|&v| up[v]);
        let named = (route & 0xff_ff00 == 0 && (route & 0xff) < 4).then_some((route & 0xff) as usize);
        let expect = if irm {
            first_up
        } else {
            match named {
                Some(n) if up[n] => Some(n),
                _ => first_up,
            }
        };
        for v in 0..4usize {
            let got = m.hyp.injected(v as u8);
            prop_assert_eq!(got.len(), usize::from(Some(v) == expect), "vcpu{}", v);
        }
        if expect.is_none() {
            prop_assert!(m.bit(gicd::ISPENDR, 37, 0), "held pending");
            m.power(3, true);
            prop_assert_eq!(m.hyp.injected(3), vec![37]);
        }
    }
}
