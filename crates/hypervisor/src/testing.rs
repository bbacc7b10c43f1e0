//! [`TestHyp`], one configurable [`Hypervisor`] double for host tests, fuzzers and benchmarks.
//!
//! It holds a register file and PC per vCPU, whether each vCPU runs, and models seL4's list
//! registers the way `VCPU_InjectIRQ` treats them (an active entry is refused with
//! `seL4_DeleteFirst`). Every request is checked against what the VMM may ask (the vCPU exists,
//! the list register exists, the INTID is below 1020 and in group 1, a start entry lies in guest
//! RAM, the vGIC never overwrites a pending interrupt it injected); a broken rule is a
//! *violation*, which panics or is kept for the caller to collect ([`Violation`]).
//!
//! ```
//! use hypervisor::testing::{TestHyp, Violation};
//! use hypervisor::{GpReg, Hypervisor, VcpuId};
//!
//! let mut hyp = TestHyp::new(2).list_register_count(4).on_violation(Violation::Record);
//! hyp.set_gpr(VcpuId(1), GpReg::new(3), 7);
//! assert_eq!(hyp.regs[1][3], 7);
//! hyp.set_gpr(VcpuId(2), GpReg::new(3), 7);
//! assert!(hyp.take_violation().is_some(), "vcpu2 does not exist");
//! ```
//!
//! With recording off ([`TestHyp::recording`]) nothing is logged and the register calls
//! (`gpr`, `set_gpr`, `advance_pc`, `commit`) neither allocate nor log: cheap enough to measure
//! the VMM under callgrind.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;

use guest_mem::GuestRange;

use crate::{GpReg, GuestPhysAddr, HypError, Hypervisor, VcpuId, VirtualIrq};

/// `seL4_DeleteFirst`, what `VCPU_InjectIRQ` returns for a list register holding an active
/// interrupt.
pub const SEL4_DELETE_FIRST: i64 = 8;

/// The error [`TestHyp::start_vcpu`] returns when told to fail ([`TestHyp::fail_start`]):
/// `TCB_Resume` with `seL4_InvalidCapability`.
pub const START_FAILURE: HypError = HypError::Kernel {
    op: "TCB_Resume",
    code: 3,
};

/// One list register as the kernel holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LrEntry {
    /// The interrupt.
    pub irq: VirtualIrq,
    /// The guest acknowledged it and has not EOI'd it yet.
    pub active: bool,
    /// Put there by a test, not through `inject_irq` (something the vGIC cannot know of).
    pub foreign: bool,
}

/// What the back-end was asked to do, or what the guest did to a list register, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HypEvent {
    /// `inject_irq(vcpu, lr, irq)` succeeded.
    Inject(VcpuId, usize, VirtualIrq),
    /// The guest EOI'd `intid` from list register `lr` ([`TestHyp::guest_eoi`]; before the
    /// maintenance fault).
    Eoi(VcpuId, usize, u32),
    /// `ack_vppi(vcpu, intid)`.
    AckVppi(VcpuId, u32),
    /// `ack_irq(intid)`.
    AckIrq(u32),
}

/// What [`TestHyp`] does when the VMM asks something it must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Violation {
    /// Panic at once, naming the request (unit tests: the backtrace points at the culprit).
    #[default]
    Panic,
    /// Keep the first violation for [`TestHyp::take_violation`] and go on as the kernel would
    /// (fuzzers: the rig checks after each input).
    Record,
}

/// The configurable hypervisor double. Build it with [`TestHyp::new`] and the builder methods;
/// its state is in public fields for tests to read and set.
pub struct TestHyp {
    /// General-purpose registers X0..X30 per vCPU (index 31, the zero register, stays 0: a
    /// power-of-two row lets the hot path index without a bounds check).
    pub regs: Vec<[u64; 32]>,
    /// PCs per vCPU (start at 0; `advance_pc` adds to them).
    pub pc: Vec<u64>,
    /// Whether each vCPU runs (set by `start_vcpu`, cleared by `stop_vcpu`).
    pub running: Vec<bool>,
    /// The kernel's list registers per vCPU; `lrs[v].len()` is vCPU v's count (tests may
    /// replace a vector to give vCPUs different counts, or plant [`LrEntry::foreign`] entries).
    pub lrs: Vec<Vec<Option<LrEntry>>>,
    /// When true, `start_vcpu` fails with [`START_FAILURE`].
    pub fail_start: bool,
    /// `start_vcpu` calls that succeeded: (vCPU, entry, context). Recorded only with recording on.
    pub started: Vec<(VcpuId, GuestPhysAddr, u64)>,
    /// `stop_vcpu` calls. Recorded only with recording on.
    pub stopped: Vec<VcpuId>,
    /// `commit` calls. Recorded only with recording on.
    pub commits: Vec<VcpuId>,
    /// Injections, EOIs and acknowledgements. Recorded only with recording on.
    pub events: Vec<HypEvent>,
    recording: bool,
    model_lrs: bool,
    ram: Option<GuestRange>,
    on_violation: Violation,
    violation: Cell<Option<String>>,
}

impl TestHyp {
    /// Four list registers per vCPU.
    pub const DEFAULT_LIST_REGISTERS: usize = 4;

    /// A back-end with `vcpus` vCPUs, all stopped, registers zero,
    /// [`DEFAULT_LIST_REGISTERS`](Self::DEFAULT_LIST_REGISTERS) empty list registers each,
    /// recording on, list registers modelled, violations panicking, any start entry accepted.
    pub fn new(vcpus: usize) -> TestHyp {
        TestHyp {
            regs: vec![[0; 32]; vcpus],
            pc: vec![0; vcpus],
            running: vec![false; vcpus],
            lrs: vec![vec![None; Self::DEFAULT_LIST_REGISTERS]; vcpus],
            fail_start: false,
            started: Vec::new(),
            stopped: Vec::new(),
            commits: Vec::new(),
            events: Vec::new(),
            recording: true,
            model_lrs: true,
            ram: None,
            on_violation: Violation::Panic,
            violation: Cell::new(None),
        }
    }

    /// Gives every vCPU `n` empty list registers.
    #[must_use]
    pub fn list_register_count(mut self, n: usize) -> TestHyp {
        for lrs in &mut self.lrs {
            *lrs = vec![None; n];
        }
        self
    }

    /// Guest RAM: a `start_vcpu` entry outside it is a violation.
    #[must_use]
    pub fn ram(mut self, ram: GuestRange) -> TestHyp {
        self.ram = Some(ram);
        self
    }

    /// Whether to log `started`, `stopped`, `commits` and `events` (default on). Off, no call
    /// allocates.
    #[must_use]
    pub fn recording(mut self, on: bool) -> TestHyp {
        self.recording = on;
        self
    }

    /// Whether `inject_irq` writes the list registers in [`TestHyp::lrs`] (default on), so
    /// that an active entry is refused with `seL4_DeleteFirst` and overwriting a pending one
    /// the vGIC injected is a violation. Turn it off when the caller reports maintenance
    /// faults the guest never caused (a fuzzer): injections are then only checked.
    #[must_use]
    pub fn model_list_registers(mut self, on: bool) -> TestHyp {
        self.model_lrs = on;
        self
    }

    /// What a violation does (default [`Violation::Panic`]).
    #[must_use]
    pub fn on_violation(mut self, what: Violation) -> TestHyp {
        self.on_violation = what;
        self
    }

    /// Whether `start_vcpu` fails (also settable later through [`TestHyp::fail_start`]).
    #[must_use]
    pub fn fail_start(mut self, fail: bool) -> TestHyp {
        self.fail_start = fail;
        self
    }

    /// The first violation since the last call ([`Violation::Record`]).
    pub fn take_violation(&self) -> Option<String> {
        self.violation.take()
    }

    /// The INTIDs injected into vCPU `vcpu` so far, in order.
    pub fn injected(&self, vcpu: u8) -> Vec<u32> {
        self.events
            .iter()
            .filter_map(|e| match e {
                HypEvent::Inject(c, _, irq) if c.0 == vcpu => Some(irq.intid),
                _ => None,
            })
            .collect()
    }

    /// The acknowledgements (`AckIrq`, `AckVppi`) so far, in order.
    pub fn acks(&self) -> Vec<HypEvent> {
        self.events
            .iter()
            .copied()
            .filter(|e| matches!(e, HypEvent::AckIrq(_) | HypEvent::AckVppi(..)))
            .collect()
    }

    /// The events so far; the log starts empty again.
    pub fn take_events(&mut self) -> Vec<HypEvent> {
        core::mem::take(&mut self.events)
    }

    /// The guest reads ICV_IAR1_EL1 on `vcpu`: the highest-priority pending list register
    /// (lowest priority value, then lowest index; foreign entries too) becomes active.
    /// Returns the list register and its INTID, `None` when nothing is pending.
    pub fn guest_ack(&mut self, vcpu: VcpuId) -> Option<(usize, u32)> {
        let (lr, e) = self
            .lrs
            .get_mut(vcpu.index())?
            .iter_mut()
            .enumerate()
            .filter_map(|(i, e)| e.as_mut().filter(|e| !e.active).map(|e| (i, e)))
            .min_by_key(|(i, e)| (e.irq.priority, *i))?;
        e.active = true;
        Some((lr, e.irq.intid))
    }

    /// The guest writes ICV_EOIR1_EL1 for `intid` on `vcpu` (EOImode 0: drop and deactivate):
    /// the active list register holding it empties and an [`HypEvent::Eoi`] is logged. Returns
    /// the list register (for the maintenance fault seL4 then reports), `None` when `intid` is
    /// not active on `vcpu`.
    pub fn guest_eoi(&mut self, vcpu: VcpuId, intid: u32) -> Option<usize> {
        let lrs = self.lrs.get_mut(vcpu.index())?;
        let lr = lrs
            .iter()
            .position(|e| e.is_some_and(|e| e.active && e.irq.intid == intid))?;
        if let Some(slot) = lrs.get_mut(lr) {
            *slot = None;
        }
        if self.recording {
            self.events.push(HypEvent::Eoi(vcpu, lr, intid));
        }
        Some(lr)
    }

    /// A broken rule: panics or keeps the first message, per [`Violation`].
    #[cold]
    #[inline(never)]
    #[allow(clippy::panic)] // Violation::Panic asks for it
    fn violate(&self, what: fmt::Arguments<'_>) {
        match self.on_violation {
            Violation::Panic => panic!("hypervisor double: {what}"),
            Violation::Record => {
                let old = self.violation.take();
                self.violation
                    .set(Some(old.unwrap_or_else(|| format!("{what}"))));
            }
        }
    }

    /// `vcpu`'s index when it exists; a violation otherwise.
    #[inline]
    /// A hot call named a vCPU that does not exist: out of line, so that the hot calls stay
    /// small enough to inline.
    #[cold]
    fn missing(&self, vcpu: VcpuId, what: &str) {
        self.vcpu(vcpu, what);
    }

    fn vcpu(&self, vcpu: VcpuId, what: &str) -> Option<usize> {
        let i = vcpu.index();
        if i < self.regs.len() {
            Some(i)
        } else {
            self.violate(format_args!("{what} names {vcpu}, which does not exist"));
            None
        }
    }
}

impl Hypervisor for TestHyp {
    fn vcpu_count(&self) -> usize {
        self.regs.len()
    }

    // The hot calls (every exit makes them) cost what the seL4 back-end's cached registers
    // do: one bounds check on the vCPU; the violation path is out of line.
    #[inline]
    fn gpr(&mut self, vcpu: VcpuId, reg: GpReg) -> u64 {
        let Some(r) = reg.index() else { return 0 };
        match self.regs.get(vcpu.index()) {
            // `& 31` keeps the index in the 32-entry row: no bounds check, no panic.
            #[allow(clippy::indexing_slicing)]
            Some(row) => row[usize::from(r) & 31],
            None => {
                self.missing(vcpu, "gpr");
                0
            }
        }
    }

    #[inline]
    fn set_gpr(&mut self, vcpu: VcpuId, reg: GpReg, value: u64) {
        let Some(r) = reg.index() else { return };
        match self.regs.get_mut(vcpu.index()) {
            #[allow(clippy::indexing_slicing)]
            Some(row) => row[usize::from(r) & 31] = value,
            None => {
                self.missing(vcpu, "set_gpr");
            }
        }
    }

    #[inline]
    fn advance_pc(&mut self, vcpu: VcpuId, bytes: u64) {
        match self.pc.get_mut(vcpu.index()) {
            Some(pc) => *pc = pc.wrapping_add(bytes),
            None => {
                self.missing(vcpu, "advance_pc");
            }
        }
    }

    #[inline]
    fn commit(&mut self, vcpu: VcpuId) {
        if self.recording && self.vcpu(vcpu, "commit").is_some() {
            self.commits.push(vcpu);
        }
    }

    fn start_vcpu(
        &mut self,
        vcpu: VcpuId,
        entry: GuestPhysAddr,
        context: u64,
    ) -> Result<(), HypError> {
        let v = self
            .vcpu(vcpu, "start_vcpu")
            .ok_or(HypError::NoSuchVcpu(vcpu))?;
        if self.fail_start {
            return Err(START_FAILURE);
        }
        if let Some(ram) = self.ram
            && !ram.contains(entry)
        {
            self.violate(format_args!("{vcpu} started at {entry}, outside guest RAM"));
        }
        if let Some(r) = self.running.get_mut(v) {
            *r = true;
        }
        if self.recording {
            self.started.push((vcpu, entry, context));
        }
        Ok(())
    }

    fn stop_vcpu(&mut self, vcpu: VcpuId) {
        if let Some(r) = self
            .vcpu(vcpu, "stop_vcpu")
            .and_then(|v| self.running.get_mut(v))
        {
            *r = false;
            if self.recording {
                self.stopped.push(vcpu);
            }
        }
    }

    fn list_registers(&self, vcpu: VcpuId) -> usize {
        self.vcpu(vcpu, "list_registers")
            .and_then(|v| self.lrs.get(v))
            .map_or(0, Vec::len)
    }

    fn inject_irq(&mut self, vcpu: VcpuId, lr: usize, irq: VirtualIrq) -> Result<(), HypError> {
        let v = self
            .vcpu(vcpu, "inject_irq")
            .ok_or(HypError::NoSuchVcpu(vcpu))?;
        let count = self.lrs.get(v).map_or(0, Vec::len);
        if lr >= count {
            self.violate(format_args!(
                "inject_irq into {vcpu} list register {lr} of {count}"
            ));
            return Err(HypError::NoSuchListRegister { vcpu, lr });
        }
        if irq.intid > 1019 {
            self.violate(format_args!(
                "inject_irq of INTID {} into {vcpu}",
                irq.intid
            ));
        }
        if irq.group != 1 {
            self.violate(format_args!(
                "inject_irq of INTID {} into {vcpu} in group {}",
                irq.intid, irq.group
            ));
        }
        if self.model_lrs {
            let old = self.lrs.get(v).and_then(|l| l.get(lr)).copied().flatten();
            match old {
                Some(e) if e.active => {
                    return Err(HypError::Kernel {
                        op: "VCPU_InjectIRQ",
                        code: SEL4_DELETE_FIRST,
                    });
                }
                Some(e) if !e.foreign => self.violate(format_args!(
                    "{vcpu} LR{lr}: INTID {} replaced a pending INTID {} the vGIC injected",
                    irq.intid, e.irq.intid
                )),
                _ => {}
            }
            if let Some(slot) = self.lrs.get_mut(v).and_then(|l| l.get_mut(lr)) {
                *slot = Some(LrEntry {
                    irq,
                    active: false,
                    foreign: false,
                });
            }
        }
        if self.recording {
            self.events.push(HypEvent::Inject(vcpu, lr, irq));
        }
        Ok(())
    }

    fn ack_vppi(&mut self, vcpu: VcpuId, intid: u32) {
        if self.vcpu(vcpu, "ack_vppi").is_some() && self.recording {
            self.events.push(HypEvent::AckVppi(vcpu, intid));
        }
    }

    fn ack_irq(&mut self, intid: u32) {
        if self.recording {
            self.events.push(HypEvent::AckIrq(intid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn irq(intid: u32) -> VirtualIrq {
        VirtualIrq {
            intid,
            priority: 0xa0,
            group: 1,
        }
    }

    #[test]
    fn register_file_and_zero_register() {
        let mut h = TestHyp::new(2);
        assert_eq!(h.vcpu_count(), 2);
        h.set_gpr(VcpuId(1), GpReg::new(30), 5);
        assert_eq!(h.gpr(VcpuId(1), GpReg::new(30)), 5);
        assert_eq!(h.regs[1][30], 5);
        assert_eq!(h.gpr(VcpuId(0), GpReg::new(30)), 0, "per vCPU");
        h.set_gpr(VcpuId(0), GpReg::new(31), 9);
        assert_eq!(h.gpr(VcpuId(0), GpReg::new(31)), 0, "xzr reads 0");
        assert_eq!(h.regs[0], [0; 32], "a write to xzr is dropped");
        h.regs[0][2] = 7;
        assert_eq!(h.gpr(VcpuId(0), GpReg::new(2)), 7);
        h.advance_pc(VcpuId(1), 4);
        h.advance_pc(VcpuId(1), 4);
        assert_eq!(h.pc, [0, 8]);
        h.commit(VcpuId(1));
        assert_eq!(h.commits, [VcpuId(1)]);
    }

    #[test]
    fn start_stop_and_fail_start() {
        let mut h = TestHyp::new(2);
        h.start_vcpu(VcpuId(1), GuestPhysAddr(0x4000_0000), 42)
            .unwrap();
        assert_eq!(h.running, [false, true]);
        assert_eq!(h.started, [(VcpuId(1), GuestPhysAddr(0x4000_0000), 42)]);
        h.stop_vcpu(VcpuId(1));
        assert_eq!(h.running, [false, false]);
        assert_eq!(h.stopped, [VcpuId(1)]);
        h.fail_start = true;
        assert_eq!(
            h.start_vcpu(VcpuId(0), GuestPhysAddr(0), 0),
            Err(START_FAILURE)
        );
        assert_eq!(h.running, [false, false]);
        assert_eq!(h.started.len(), 1);
        let mut h = TestHyp::new(1).fail_start(true);
        assert!(h.start_vcpu(VcpuId(0), GuestPhysAddr(0), 0).is_err());
    }

    #[test]
    fn recording_off_logs_nothing() {
        let mut h = TestHyp::new(1).recording(false);
        h.set_gpr(VcpuId(0), GpReg::new(1), 3);
        assert_eq!(h.gpr(VcpuId(0), GpReg::new(1)), 3);
        h.commit(VcpuId(0));
        h.start_vcpu(VcpuId(0), GuestPhysAddr(0), 0).unwrap();
        h.stop_vcpu(VcpuId(0));
        h.inject_irq(VcpuId(0), 0, irq(40)).unwrap();
        h.ack_irq(40);
        h.ack_vppi(VcpuId(0), 27);
        assert!(h.commits.is_empty() && h.started.is_empty() && h.stopped.is_empty());
        assert!(h.events.is_empty());
        assert_eq!(h.lrs[0][0].map(|e| e.irq.intid), Some(40), "still modelled");
    }

    #[test]
    fn violations_are_recorded_and_the_first_kept() {
        let mut h = TestHyp::new(2)
            .list_register_count(2)
            .ram(GuestRange::new(0x4000_0000, 0x1000))
            .on_violation(Violation::Record);
        assert_eq!(h.take_violation(), None);
        assert_eq!(h.gpr(VcpuId(2), GpReg::new(0)), 0);
        h.set_gpr(VcpuId(7), GpReg::new(0), 1);
        let first = h.take_violation().unwrap();
        assert!(first.contains("gpr names vcpu2"), "{first}");
        assert_eq!(h.take_violation(), None, "taken");

        assert_eq!(
            h.inject_irq(VcpuId(0), 2, irq(40)),
            Err(HypError::NoSuchListRegister {
                vcpu: VcpuId(0),
                lr: 2
            })
        );
        assert!(h.take_violation().unwrap().contains("list register 2 of 2"));
        assert_eq!(h.inject_irq(VcpuId(0), 0, irq(1020)), Ok(()));
        assert!(h.take_violation().unwrap().contains("INTID 1020"));
        assert_eq!(
            h.inject_irq(VcpuId(2), 0, irq(40)),
            Err(HypError::NoSuchVcpu(VcpuId(2)))
        );
        assert!(h.take_violation().is_some());
        assert_eq!(h.list_registers(VcpuId(9)), 0);
        assert!(h.take_violation().is_some());

        // A start entry outside RAM is noted; the vCPU still starts, as the kernel would.
        h.start_vcpu(VcpuId(1), GuestPhysAddr(0x4000_1000), 0)
            .unwrap();
        assert!(h.take_violation().unwrap().contains("outside guest RAM"));
        assert!(h.running[1]);
        h.start_vcpu(VcpuId(0), GuestPhysAddr(0x4000_0ffc), 0)
            .unwrap();
        assert_eq!(h.take_violation(), None);
    }

    #[test]
    #[should_panic(expected = "ack_vppi names vcpu3, which does not exist")]
    fn violations_panic_by_default() {
        TestHyp::new(3).ack_vppi(VcpuId(3), 27);
    }

    #[test]
    #[should_panic(expected = "outside guest RAM")]
    fn start_outside_ram_panics_by_default() {
        let mut h = TestHyp::new(1).ram(GuestRange::new(0x4000_0000, 0x1000));
        let _ = h.start_vcpu(VcpuId(0), GuestPhysAddr(0x3fff_fffc), 0);
    }

    #[test]
    #[should_panic(expected = "replaced a pending INTID 40 the vGIC injected")]
    fn overwriting_a_pending_injection_panics() {
        let mut h = TestHyp::new(1);
        h.inject_irq(VcpuId(0), 1, irq(40)).unwrap();
        let _ = h.inject_irq(VcpuId(0), 1, irq(41));
    }

    #[test]
    fn active_list_register_is_refused_with_delete_first() {
        let mut h = TestHyp::new(1).list_register_count(2);
        h.inject_irq(VcpuId(0), 0, irq(40)).unwrap();
        h.inject_irq(VcpuId(0), 1, irq(41)).unwrap();
        assert_eq!(
            h.guest_ack(VcpuId(0)),
            Some((0, 40)),
            "equal priority: lowest LR"
        );
        assert_eq!(
            h.inject_irq(VcpuId(0), 0, irq(42)),
            Err(HypError::Kernel {
                op: "VCPU_InjectIRQ",
                code: SEL4_DELETE_FIRST
            })
        );
        assert_eq!(h.guest_eoi(VcpuId(0), 41), None, "41 is not active");
        assert_eq!(h.guest_eoi(VcpuId(0), 40), Some(0));
        assert_eq!(h.lrs[0][0], None);
        h.inject_irq(VcpuId(0), 0, irq(42)).unwrap();
        assert_eq!(h.injected(0), [40, 41, 42]);
        assert_eq!(
            h.take_events()[2],
            HypEvent::Eoi(VcpuId(0), 0, 40),
            "the EOI is logged between the injections"
        );
        assert!(h.events.is_empty());
    }

    #[test]
    fn guest_acks_by_priority_and_foreign_entries_may_be_replaced() {
        let mut h = TestHyp::new(1).list_register_count(3);
        h.lrs[0][2] = Some(LrEntry {
            irq: VirtualIrq {
                intid: 60,
                priority: 0x10,
                group: 1,
            },
            active: false,
            foreign: true,
        });
        h.inject_irq(VcpuId(0), 0, irq(40)).unwrap();
        assert_eq!(
            h.guest_ack(VcpuId(0)),
            Some((2, 60)),
            "higher priority first"
        );
        assert_eq!(h.guest_ack(VcpuId(0)), Some((0, 40)));
        assert_eq!(h.guest_ack(VcpuId(0)), None);
        assert_eq!(h.guest_eoi(VcpuId(0), 60), Some(2));
        // A pending foreign entry is overwritten, as the kernel would.
        h.lrs[0][1] = Some(LrEntry {
            irq: irq(61),
            active: false,
            foreign: true,
        });
        h.inject_irq(VcpuId(0), 1, irq(41)).unwrap();
        assert_eq!(
            h.lrs[0][1].map(|e| (e.irq.intid, e.foreign)),
            Some((41, false))
        );
    }

    #[test]
    fn unmodelled_list_registers_are_only_checked() {
        let mut h = TestHyp::new(1)
            .model_list_registers(false)
            .on_violation(Violation::Record);
        h.inject_irq(VcpuId(0), 0, irq(40)).unwrap();
        h.inject_irq(VcpuId(0), 0, irq(41)).unwrap();
        assert_eq!(h.take_violation(), None);
        assert_eq!(h.lrs[0], [None; 4]);
        assert_eq!(h.injected(0), [40, 41]);
        assert!(h.inject_irq(VcpuId(0), 4, irq(40)).is_err());
        assert!(h.take_violation().is_some());
    }

    #[test]
    fn acks_are_logged() {
        let mut h = TestHyp::new(2);
        h.inject_irq(VcpuId(1), 0, irq(33)).unwrap();
        h.ack_irq(33);
        h.ack_vppi(VcpuId(1), 27);
        assert_eq!(
            h.acks(),
            [HypEvent::AckIrq(33), HypEvent::AckVppi(VcpuId(1), 27)]
        );
        assert_eq!(h.injected(1), [33]);
        assert!(h.injected(0).is_empty());
    }
}
