//! Property test of the enable / pending / active / priority state machine: random sequences
//! of guest register writes, device lines, physical interrupts, virtual timer events, SGIs,
//! guest acknowledges and EOIs, power and wake changes, checked after every step against a
//! model of what the architecture requires:
//!
//! - the vGIC's list-register shadow matches the kernel's, no INTID is listed twice on a
//!   vCPU and no SPI on two vCPUs;
//! - enables and priorities read back as written;
//! - no interrupt that could be delivered waits while its vCPU has a free list register;
//! - what was injected in a step is never of lower priority than what was left waiting for
//!   the same vCPU (nor of equal priority and higher INTID);
//! - a pass-through level SPI and the virtual timer are acknowledged to the kernel only right
//!   after the guest's EOI of an injection that carried them, once per physical interrupt; an
//!   edge pass-through SPI at once; nothing else is;
//! - at the end, with everything enabled and the guest taking whatever comes, every
//!   interrupt is delivered and every physical one acknowledged: nothing is lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use arm_fault::AccessSize;
use common::{Ev, Machine, platform};
use hypervisor::VcpuId;
use irqchip::InterruptController;
use proptest::prelude::*;
use vgic::ListRegister;
use vgic::regs::{gicd, gicr};
use vmm_platform::{PassthroughIrq, Spi, Trigger};

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
const VCPUS: usize = 3;
/// The interrupts the test drives: two SGIs, a software PPI, the virtual timer, emulated
/// SPIs and the two pass-through ones.
const IRQS: [u32; 10] = [1, 2, 20, 27, 33, 35, 36, 42, PT_LEVEL, PT_EDGE];
/// SPIs a device model drives with `set_level`.
const EMULATED: [u32; 4] = [33, 35, 36, 42];

#[derive(Clone, Debug)]
enum Op {
    Enable(u8, usize, bool),
    Pend(u8, usize, bool),
    Active(u8, usize, bool),
    Prio(u8, usize, u8),
    Edge(usize, bool),
    Route(usize, u8, bool),
    Level(usize, bool),
    Phys(bool),
    Vppi(u8),
    Sgi(u8, u32, u8, bool),
    Ack(u8),
    Eoi(u8, usize),
    Power(u8, bool),
    Wake(u8, bool),
    Grp1(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0..VCPUS as u8;
    let irq = 0..IRQS.len();
    prop_oneof![
        1 => (v.clone(), irq.clone(), any::<bool>()).prop_map(|(v, i, b)| Op::Enable(v, i, b)),
        1 => (v.clone(), irq.clone(), any::<bool>()).prop_map(|(v, i, b)| Op::Pend(v, i, b)),
        1 => (v.clone(), irq.clone(), prop::bool::weighted(0.3))
            .prop_map(|(v, i, b)| Op::Active(v, i, b)),
        1 => (v.clone(), irq, any::<u8>()).prop_map(|(v, i, p)| Op::Prio(v, i, p & 0xf0)),
        1 => (0..EMULATED.len(), any::<bool>()).prop_map(|(i, b)| Op::Edge(i, b)),
        1 => (0..IRQS.len(), 0..VCPUS as u8 + 2, prop::bool::weighted(0.3))
            .prop_map(|(i, t, irm)| Op::Route(i, t, irm)),
        1 => (0..EMULATED.len(), any::<bool>()).prop_map(|(i, b)| Op::Level(i, b)),
        2 => any::<bool>().prop_map(Op::Phys),
        2 => v.clone().prop_map(Op::Vppi),
        1 => (v.clone(), 0..3u32, 0..8u8, prop::bool::weighted(0.2))
            .prop_map(|(f, i, l, irm)| Op::Sgi(f, i, l, irm)),
        4 => v.clone().prop_map(Op::Ack),
        4 => (v.clone(), 0..4usize).prop_map(|(v, k)| Op::Eoi(v, k)),
        1 => (v.clone(), prop::bool::weighted(0.7)).prop_map(|(v, b)| Op::Power(v, b)),
        1 => (v, prop::bool::weighted(0.2)).prop_map(|(v, b)| Op::Wake(v, b)),
        1 => prop::bool::weighted(0.8).prop_map(Op::Grp1),
    ]
}

/// What the test knows independently of the vGIC.
struct Model {
    enabled: [[bool; IRQS.len()]; VCPUS],
    prio: [[u8; IRQS.len()]; VCPUS],
    /// IROUTER of SPIs (by index into IRQS).
    route: [u64; IRQS.len()],
    online: [bool; VCPUS],
    awake: [bool; VCPUS],
    grp1: bool,
    /// The physical level SPI was delivered and not yet acknowledged (the kernel masks it).
    pt_outstanding: bool,
    /// Same for each vCPU's virtual timer.
    vt_outstanding: [bool; VCPUS],
    /// Made pending by a latching event (ISPENDR, an SGI, an edge) and not yet taken by the
    /// guest nor withdrawn with ICPENDR: must stay visible (pending, or pending in a list
    /// register the vGIC counts). SPIs use row 0.
    owed: [[bool; IRQS.len()]; VCPUS],
    /// Emulated line levels, for edge detection.
    line: [bool; EMULATED.len()],
    /// Edge configuration of the emulated SPIs.
    edge: [bool; EMULATED.len()],
}

fn irq_index(intid: u32) -> usize {
    IRQS.iter().position(|&i| i == intid).unwrap()
}

impl Model {
    fn eligible(&self, v: usize) -> bool {
        self.online[v] && self.awake[v]
    }

    fn first_eligible(&self) -> Option<usize> {
        (0..VCPUS).find(|&v| self.eligible(v))
    }
}

/// The interrupt's bit registers: (frame base, word index).
fn bank(m: &Machine, intid: u32, v: usize) -> (u64, u64) {
    if intid < 32 {
        (m.sgi(v), 0)
    } else {
        (m.gicd(), u64::from(intid / 32))
    }
}

fn write_bit(m: &mut Machine, reg: u64, intid: u32, v: usize) {
    let (base, n) = bank(m, intid, v);
    m.writel(base + reg + 4 * n, 1 << (intid % 32));
}

fn apply(m: &mut Machine, model: &mut Model, op: &Op) {
    let vi = |v: &u8| usize::from(*v);
    match op {
        Op::Enable(v, i, on) => {
            let intid = IRQS[*i];
            let v = if intid < 32 { vi(v) } else { 0 };
            write_bit(m, if *on { 0x100 } else { 0x180 }, intid, v);
            if intid < 32 {
                model.enabled[v][*i] = *on;
            } else {
                for e in &mut model.enabled {
                    e[*i] = *on;
                }
            }
        }
        Op::Pend(v, i, on) => {
            let intid = IRQS[*i];
            write_bit(m, if *on { 0x200 } else { 0x280 }, intid, vi(v));
            let row = if intid < 32 { vi(v) } else { 0 };
            model.owed[row][*i] = *on;
        }
        Op::Active(v, i, on) => {
            write_bit(m, if *on { 0x300 } else { 0x380 }, IRQS[*i], vi(v));
        }
        Op::Prio(v, i, p) => {
            let intid = IRQS[*i];
            let v = if intid < 32 { vi(v) } else { 0 };
            let (base, _) = bank(m, intid, v);
            m.write(
                0,
                base + 0x400 + u64::from(intid),
                AccessSize::Byte,
                u64::from(*p),
            )
            .unwrap();
            if intid < 32 {
                model.prio[v][*i] = *p;
            } else {
                for e in &mut model.prio {
                    e[*i] = *p;
                }
            }
        }
        Op::Edge(i, edge) => {
            let intid = EMULATED[*i];
            let a = m.gicd() + gicd::ICFGR + u64::from(intid / 16) * 4;
            let bit = 2 << (2 * (intid % 16));
            let v = m.readl(a);
            m.writel(a, if *edge { v | bit } else { v & !bit });
            model.edge[*i] = *edge;
        }
        Op::Route(i, t, irm) => {
            let intid = IRQS[*i];
            if intid >= 32 {
                let value = u64::from(*t) | if *irm { gicd::IROUTER_IRM } else { 0 };
                m.route(intid, value);
                model.route[*i] = value;
            }
        }
        Op::Level(i, level) => {
            m.gic.set_level(&mut m.hyp, EMULATED[*i], *level);
            if *level && !model.line[*i] && model.edge[*i] {
                model.owed[0][irq_index(EMULATED[*i])] = true;
            }
            model.line[*i] = *level;
        }
        Op::Phys(level) => {
            if *level {
                if !model.pt_outstanding {
                    model.pt_outstanding = true;
                    m.gic.physical_irq(&mut m.hyp, PT_LEVEL);
                }
            } else {
                m.gic.physical_irq(&mut m.hyp, PT_EDGE);
                model.owed[0][irq_index(PT_EDGE)] = true;
            }
        }
        Op::Vppi(v) => {
            if !model.vt_outstanding[vi(v)] {
                model.vt_outstanding[vi(v)] = true;
                m.gic.vppi(&mut m.hyp, VcpuId(*v), 27);
            }
        }
        Op::Sgi(from, intid, list, irm) => {
            let value = u64::from(*intid) << 24 | u64::from(*list) | if *irm { 1 << 40 } else { 0 };
            m.sgi1r(vi(from), value);
            if let Some(i) = IRQS.iter().position(|&x| x == *intid) {
                for t in 0..VCPUS {
                    let named = !*irm && *list & (1 << t) != 0;
                    if named || (*irm && t != vi(from)) {
                        model.owed[t][i] = true;
                    }
                }
            }
        }
        Op::Ack(v) => {
            if model.online[vi(v)]
                && let Some(intid) = m.ack(vi(v))
                && let Some(i) = IRQS.iter().position(|&x| x == intid)
            {
                model.owed[if intid < 32 { vi(v) } else { 0 }][i] = false;
            }
        }
        Op::Eoi(v, k) => {
            let v = vi(v);
            if model.online[v] {
                let active: Vec<u32> = m.hyp.lrs[v]
                    .iter()
                    .flatten()
                    .filter(|e| e.active)
                    .map(|e| e.irq.intid)
                    .collect();
                if let Some(&intid) = active.get(*k % active.len().max(1)) {
                    m.eoi(v, intid);
                }
            }
        }
        Op::Power(v, on) => {
            model.online[vi(v)] = *on;
            m.power(vi(v), *on);
        }
        Op::Wake(v, asleep) => {
            model.awake[vi(v)] = !*asleep;
            let a = m.rd(vi(v)) + gicr::WAKER;
            m.writel(
                a,
                if *asleep {
                    gicr::WAKER_PROCESSOR_SLEEP
                } else {
                    0
                },
            );
        }
        Op::Grp1(on) => {
            model.grp1 = *on;
            let a = m.gicd() + gicd::CTLR;
            m.writel(a, if *on { gicd::CTLR_ENABLE_G1A } else { 0 });
        }
    }
}

/// Acknowledges seen in one step, checked against the EOIs of the same step.
fn check_acks(model: &mut Model, op: &Op, events: &[Ev]) {
    for (n, e) in events.iter().enumerate() {
        match *e {
            Ev::AckIrq(PT_LEVEL) => {
                assert!(model.pt_outstanding, "{op:?}: level SPI acknowledged twice");
                assert!(
                    matches!(events[..n].last(), Some(Ev::Eoi(_, _, PT_LEVEL))),
                    "{op:?}: level SPI acknowledged other than right after its EOI: {events:?}"
                );
                model.pt_outstanding = false;
            }
            Ev::AckIrq(PT_EDGE) => {
                assert!(matches!(op, Op::Phys(false)), "{op:?}: edge SPI acked late");
            }
            Ev::AckVppi(v, 27) => {
                let v = v.index();
                assert!(
                    model.vt_outstanding[v],
                    "{op:?}: vtimer of vcpu{v} acknowledged twice"
                );
                assert!(
                    matches!(events[..n].last(), Some(Ev::Eoi(c, _, 27)) if c.index() == v),
                    "{op:?}: vtimer acknowledged other than right after its EOI: {events:?}"
                );
                model.vt_outstanding[v] = false;
            }
            Ev::AckIrq(_) | Ev::AckVppi(..) => panic!("{op:?}: unexpected {e:?}"),
            _ => {}
        }
    }
}

/// An interrupt the vGIC should be delivering: (INTID, priority, target vCPUs).
fn candidates(m: &mut Machine, model: &Model) -> Vec<(u32, u8, Vec<usize>)> {
    let mut out = Vec::new();
    if !model.grp1 {
        return out;
    }
    for (i, &intid) in IRQS.iter().enumerate() {
        let vs: Vec<usize> = if intid < 32 {
            (0..VCPUS).collect()
        } else {
            vec![0]
        };
        for v in vs {
            let enabled = m.bit(0x100, intid, v);
            let pending = m.bit(0x200, intid, v);
            let active = m.bit(0x300, intid, v);
            if !(enabled && pending && !active) {
                continue;
            }
            let targets: Vec<usize> = if intid < 32 {
                vec![v]
            } else if model.route[i] & gicd::IROUTER_IRM != 0 {
                (0..VCPUS).filter(|&t| model.eligible(t)).collect()
            } else {
                let named = model.route[i] as usize;
                if named < VCPUS && model.eligible(named) {
                    vec![named]
                } else {
                    model.first_eligible().into_iter().collect()
                }
            };
            let prio = m
                .read(
                    0,
                    bank(m, intid, v).0 + 0x400 + u64::from(intid),
                    AccessSize::Byte,
                )
                .unwrap() as u8;
            out.push((intid, prio, targets));
        }
    }
    out
}

fn free_lr(m: &Machine, v: usize) -> bool {
    (0..m.hyp.lrs[v].len())
        .any(|lr| m.gic.list_register(VcpuId(v as u8), lr) == Some(ListRegister::Free))
}

fn leftover(m: &Machine, v: usize, intid: u32) -> bool {
    (0..4).any(|lr| m.gic.list_register(VcpuId(v as u8), lr) == Some(ListRegister::Leftover(intid)))
}

fn check(m: &mut Machine, model: &mut Model, op: &Op) {
    m.check_shadow();
    let events = m.hyp.take_events();
    check_acks(model, op, &events);
    // Enables and priorities read back.
    for v in 0..VCPUS {
        for (i, &intid) in IRQS.iter().enumerate() {
            assert_eq!(
                m.bit(0x100, intid, v),
                model.enabled[v][i],
                "{op:?}: enable {intid}"
            );
            let (base, _) = bank(m, intid, v);
            let p = m.read(0, base + 0x400 + u64::from(intid), AccessSize::Byte);
            assert_eq!(
                p,
                Ok(u64::from(model.prio[v][i])),
                "{op:?}: priority {intid}"
            );
        }
    }
    // Nothing latched is lost: still pending, or pending in a list register the vGIC counts.
    for v in 0..VCPUS {
        for (i, &intid) in IRQS.iter().enumerate() {
            if !model.owed[v][i] {
                continue;
            }
            let pending = m.bit(0x200, intid, v);
            let vs: Vec<usize> = if intid < 32 {
                vec![v]
            } else {
                (0..VCPUS).collect()
            };
            let listed = vs.iter().any(|&c| {
                (0..4).any(|lr| {
                    m.gic.list_register(VcpuId(c as u8), lr) == Some(ListRegister::Holds(intid))
                        && m.hyp.lrs[c][lr].is_some_and(|e| !e.active)
                })
            });
            assert!(pending || listed, "{op:?}: INTID {intid} (vcpu{v}) lost");
        }
    }
    // Work conserving, and priority order of this step's injections.
    let cands = candidates(m, model);
    for (intid, prio, targets) in &cands {
        for &t in targets {
            if model.eligible(t) && !leftover(m, t, *intid) {
                assert!(
                    !free_lr(m, t),
                    "{op:?}: INTID {intid} waits while vcpu{t} has a free list register"
                );
                for e in &events {
                    if let Ev::Inject(c, _, irq) = e
                        && c.index() == t
                    {
                        assert!(
                            (irq.priority, irq.intid) < (*prio, *intid),
                            "{op:?}: vcpu{t} got INTID {} (priority {:#x}) before INTID {intid} ({prio:#x})",
                            irq.intid,
                            irq.priority
                        );
                    }
                }
            }
        }
    }
}

/// Everything on and enabled, the devices quiet, the guest taking whatever comes until
/// nothing does: every physical interrupt must have been acknowledged and nothing left
/// pending.
fn settle(m: &mut Machine, model: &mut Model) {
    let ops: Vec<Op> = (0..VCPUS as u8)
        .flat_map(|v| [Op::Power(v, true), Op::Wake(v, false)])
        .chain([Op::Grp1(true)])
        .chain((0..IRQS.len()).flat_map(|i| {
            (0..VCPUS as u8).flat_map(move |v| [Op::Active(v, i, false), Op::Enable(v, i, true)])
        }))
        .chain((0..EMULATED.len()).map(|i| Op::Level(i, false)))
        .collect();
    for op in &ops {
        apply(m, model, op);
        check(m, model, op);
    }
    for _round in 0..64 {
        let mut any = false;
        for v in 0..VCPUS {
            let active: Vec<u32> = m.hyp.lrs[v]
                .iter()
                .flatten()
                .filter(|e| e.active)
                .map(|e| e.irq.intid)
                .collect();
            for intid in active {
                m.eoi(v, intid);
                any = true;
            }
            for _ in 0..64 {
                let Some(intid) = m.ack(v) else {
                    break;
                };
                if let Some(i) = IRQS.iter().position(|&x| x == intid) {
                    model.owed[if intid < 32 { v } else { 0 }][i] = false;
                }
                m.eoi(v, intid);
                any = true;
            }
            let op = Op::Ack(v as u8);
            check(m, model, &op);
        }
        if !any {
            break;
        }
    }
    assert!(
        !model.pt_outstanding,
        "pass-through level SPI never acknowledged"
    );
    assert_eq!(
        model.vt_outstanding, [false; VCPUS],
        "virtual timer never re-armed"
    );
    for v in 0..VCPUS {
        assert!(
            !m.gic.has_pending(VcpuId(v as u8)),
            "vcpu{v} still has work"
        );
        assert!(m.hyp.lrs[v].iter().all(Option::is_none));
        for &intid in &IRQS {
            assert!(
                !m.bit(0x200, intid, v),
                "INTID {intid} still pending on vcpu{v}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn state_machine(nlr in 1usize..=4, ops in prop::collection::vec(op(), 1..120)) {
        let mut m = Machine::new(&platform(VCPUS as u8, PT), nlr);
        let mut model = Model {
            enabled: [[false; IRQS.len()]; VCPUS],
            prio: [[0; IRQS.len()]; VCPUS],
            route: [0; IRQS.len()],
            online: [false; VCPUS],
            awake: [false; VCPUS],
            grp1: false,
            pt_outstanding: false,
            vt_outstanding: [false; VCPUS],
            owed: [[false; IRQS.len()]; VCPUS],
            line: [false; EMULATED.len()],
            edge: [false; EMULATED.len()],
        };
        // vCPU 0 boots with its redistributor awake and Group 1 on.
        for op in [Op::Power(0, true), Op::Wake(0, false), Op::Grp1(true)] {
            apply(&mut m, &mut model, &op);
            check(&mut m, &mut model, &op);
        }
        for op in &ops {
            apply(&mut m, &mut model, op);
            check(&mut m, &mut model, op);
        }
        settle(&mut m, &mut model);
    }
}
