//! An emulated GICv3 for the guest: distributor, one redistributor per vCPU, SGIs, and
//! injection through the list registers the hypervisor owns.
//!
//! The guest sees the Non-secure view of a GICv3 (Arm IHI 0069) with two Security states and
//! no Secure software: affinity routing is always on (`GICD_CTLR.ARE_NS` is RAO/WI), every
//! interrupt is Non-secure Group 1 (`IGROUPR` is RAO/WI), there are no LPIs, no ITS, no
//! message-based SPIs and no extended ranges. `GICD_TYPER.ITLinesNumber` covers the largest
//! SPI the platform uses.
//!
//! # Interrupt state
//!
//! Each interrupt has the architecture's state bits, kept as 32-bit words so the registers
//! read and write them directly: enable, a *pending latch* (edges, `ISPENDR` writes, SGIs),
//! the *line* (level inputs: `set_level`, pass-through level SPIs, the virtual timer), an
//! active bit the guest sets through `ISACTIVER`, the trigger, and *listed*: sitting in one of
//! the vCPU's list registers. Pending is `latch | (line & level)`. An interrupt is injected
//! when it is enabled, pending, not active and not listed, Group 1 is enabled in `GICD_CTLR`,
//! and its vCPU is online with its redistributor awake.
//!
//! The list registers belong to the kernel: [`Hypervisor::inject_irq`] writes one as pending
//! with the EOI maintenance bit set, and the guest's EOI comes back as
//! [`InterruptController::maintenance`] naming it. The vGIC keeps a shadow of every vCPU's
//! list registers (their number comes from [`Hypervisor::list_registers`]) and never writes a
//! register its shadow says is in use (seL4 would silently replace a pending one). What does
//! not fit waits in the vCPU's pending set, which is refilled highest priority (lowest
//! value) first, then lowest INTID, on every maintenance.
//!
//! An interrupt in a list register reads as active (the guest may or may not have
//! acknowledged it yet; the vGIC cannot read the list registers back). A level interrupt whose
//! line is still high after the EOI is injected again; an edge that fires while its interrupt
//! is listed is latched and injected again after the EOI.
//!
//! # Hardware-backed interrupts
//!
//! Pass-through SPIs (from the platform table) and the virtual timer PPI are backed by a
//! physical interrupt the kernel keeps masked until it is acknowledged. A level one is
//! acknowledged ([`Hypervisor::ack_irq`], [`Hypervisor::ack_vppi`]) only after the guest's EOI
//! of the list register that carried it, so an interrupt is never lost (acknowledged before
//! the guest saw it) nor doubled (acknowledged while still pending). While the guest keeps it
//! disabled it stays pending and unacknowledged. An edge pass-through SPI is latched and
//! acknowledged at once. Their trigger is fixed: the `ICFGR` bits read the platform's trigger
//! and ignore writes (the architecture lets an implementation make them read-only).
//!
//! # Routing
//!
//! `GICD_IROUTER` routes an SPI to the vCPU whose MPIDR it names (vCPU n has Aff0 = n), or to
//! any vCPU (Interrupt_Routing_Mode 1, "1 of N": the first online vCPU with a free list
//! register). An SPI routed to a vCPU that is offline or asleep goes to the first online one
//! instead (logged once), or waits while none is online. When a vCPU goes offline
//! ([`InterruptController::vcpu_power`]) the SPIs in its list registers are taken back and
//! delivered elsewhere; a pass-through one is acknowledged at the EOI of that delivery. The
//! kernel's copies stay in the offline vCPU's list registers (nothing can clear them), so
//! those registers are left alone, and the SPI is not injected into that vCPU again, until
//! the guest's EOI of the left-over copy, which acknowledges nothing. Its own SGIs and PPIs
//! stay listed for when it runs again.
//!
//! # Guest errors
//!
//! Nothing a guest writes panics. Registers the architecture defines as RAZ/WI in this
//! configuration (`ITARGETSR`, `IGRPMODR`, `NSACR`, `GICD_SGIR`, bits of INTIDs the
//! distributor does not implement, ...) read 0 and ignore writes. A reserved offset, a width
//! the specification does not allow for the register, a misaligned access or a write to a
//! read-only register returns an [`MmioError`], which the event loop turns into
//! read-as-zero / write-ignored, logged once per address. Interrupt events naming INTIDs or
//! vCPUs that do not exist are ignored and logged once.
//!
//! # Use
//!
//! Build it from the platform table and hand it to the event loop:
//! `vmm::Vm::new(hyp, vgic::Vgic::new(platform), bus, mem, platform.vcpus)`. The loop calls
//! it through [`InterruptController`]: `mmio_read`/`mmio_write` for every emulated data abort
//! (each either claims the address, in the GICD and GICR windows, and performs the access, or
//! returns `None` for the bus), `sysreg_write` for trapped ICC_SGI1R_EL1 (and ICC_ASGI1R_EL1,
//! ICC_SGI0R_EL1) writes, `maintenance` for VGICMaintenance faults, `vppi` for VPPIEvent
//! faults, `physical_irq` for notifications of the pass-through interrupts' IRQ handlers,
//! `set_level` from device models, `vcpu_power` at boot and for PSCI CPU_ON/CPU_OFF, and
//! `has_pending` to decide whether a WFI idles. Every call that may make an interrupt
//! deliverable fills list registers at once, of whichever vCPU it concerns.
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

mod mmio;
pub mod regs;

use alloc::vec;
use alloc::vec::Vec;
use arm_fault::{AccessSize, SysReg};
use guest_mem::GuestPhysAddr;
use hypervisor::{Hypervisor, VcpuId, VirtualIrq};
use irqchip::InterruptController;
use mmio_bus::{LogOnce, MmioError};
use vmm_platform::{GICD_SIZE, GICR_STRIDE, MAX_VCPUS, Platform, Trigger};

/// The virtual timer's PPI (CNTV, INTID 27).
pub const VTIMER_PPI: u32 = 27;

/// The most list registers a GICv3 CPU interface has (ICH_VTR_EL2.ListRegs is 4 bits).
pub const MAX_LIST_REGISTERS: usize = 16;

/// INTIDs 1020..1023 are special; the largest SPI is 1019.
const MAX_SPI_INTID: u32 = 1019;

/// What one list register holds, as the vGIC knows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ListRegister {
    /// Free for an injection.
    Free,
    /// Holds this INTID, pending or active, until the guest's EOI.
    Holds(u32),
    /// An SPI taken back when the vCPU went offline and delivered elsewhere: the kernel's list
    /// register may still hold it, so it is not reused (nor the SPI injected into this vCPU
    /// again) until the guest's EOI of it frees it.
    Leftover(u32),
    /// The kernel refused an injection there: in use by something the vGIC did not put there.
    /// Free again after the next maintenance for it.
    Unknown,
}

/// The shadow of one list register.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lr {
    Free,
    Busy {
        intid: u32,
        /// The injection consumed a pending latch (edge, SGI, `ISPENDR`).
        latched: bool,
        /// The injection carried an asserted level line (a hardware one is acknowledged at
        /// the EOI).
        line: bool,
    },
    /// Not to be written: the kernel's list register holds something the vGIC no longer counts
    /// (an SPI taken back from an offline vCPU, or unknown after a refused injection).
    Stale(Option<u32>),
}

/// The state bits of 32 interrupts (one register's worth).
#[derive(Clone, Copy, Default, Debug)]
struct Block {
    /// Interrupts that exist: the others read as zero and ignore writes.
    implemented: u32,
    enabled: u32,
    /// Pending latch: edges, SGIs, `ISPENDR` writes.
    latch: u32,
    /// Level input.
    line: u32,
    /// Active, as set through `ISACTIVER`.
    active: u32,
    /// In a list register.
    listed: u32,
    /// Edge-triggered (`ICFGR` Int_config[1]).
    edge: u32,
    /// Backed by a physical interrupt (pass-through SPI) or a kernel virtual PPI.
    hw: u32,
    /// `ICFGR` bits that ignore writes.
    fixed_cfg: u32,
}

impl Block {
    fn pending(&self) -> u32 {
        (self.latch | (self.line & !self.edge)) & self.implemented
    }

    fn candidates(&self) -> u32 {
        self.pending() & self.enabled & !self.listed & !self.active
    }
}

/// A private (SGI/PPI) interrupt of one vCPU, or an SPI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Irq {
    Private(usize, u32),
    Spi(u32),
}

impl Irq {
    fn intid(self) -> u32 {
        match self {
            Irq::Private(_, i) | Irq::Spi(i) => i,
        }
    }

    fn bit(self) -> u32 {
        1 << (self.intid() % 32)
    }
}

/// One vCPU: its CPU interface's list registers and its redistributor.
#[derive(Clone, Debug)]
struct Cpu {
    online: bool,
    /// `GICR_WAKER.ProcessorSleep`.
    asleep: bool,
    private: Block,
    priority: [u8; 32],
    lrs: Vec<Lr>,
}

/// Log-once keys: a kind in the high bits, a number in the low.
/// The kinds of warning, each with a log-once table of its own (with one table for all, 64
/// distinct bad SGIs silenced a later routing warning).
mod key {
    pub const BAD_VCPU: usize = 0;
    pub const SET_LEVEL: usize = 1;
    pub const PHYS_IRQ: usize = 2;
    pub const VPPI: usize = 3;
    pub const MAINTENANCE: usize = 4;
    pub const SGI: usize = 5;
    pub const ROUTE: usize = 6;
    pub const INJECT: usize = 7;
    pub const NO_LRS: usize = 8;
    pub const KINDS: usize = 9;
    /// What each kind's warnings are about.
    pub const NAMES: [&str; KINDS] = [
        "vgic: requests for a vCPU that does not exist",
        "vgic: lines raised for interrupts no device has",
        "vgic: physical interrupts of no pass-through line",
        "vgic: virtual PPIs of another INTID than the timer's",
        "vgic: maintenance for list registers holding nothing",
        "vgic: bad SGI requests",
        "vgic: SPIs routed to no vCPU",
        "vgic: list registers refused by the kernel",
        "vgic: vCPUs without list registers",
    ];
}

/// The emulated GICv3.
pub struct Vgic {
    dist: u64,
    redist: u64,
    /// `GICD_TYPER.ITLinesNumber`.
    it_lines: u32,
    /// INTIDs below this exist: 32 * (ITLinesNumber + 1), at most 1020.
    nr_irqs: u32,
    /// `GICD_CTLR.EnableGrp1NS`.
    grp1: bool,
    cpus: Vec<Cpu>,
    /// SPI state by INTID / 32; block 0 (the private range) is unused.
    spis: Vec<Block>,
    /// SPI priorities by INTID (the first 32 unused).
    spi_priority: Vec<u8>,
    /// `GICD_IROUTER` by INTID (the first 32 unused).
    route: Vec<u64>,
    log: [LogOnce; key::KINDS],
}

impl Vgic {
    /// True the first time `detail` is seen for warning kind `kind` (the caller logs).
    fn log_first(&mut self, kind: usize, detail: u64) -> bool {
        self.log.get_mut(kind).is_some_and(|t| t.first(detail))
    }

    /// The vGIC of `platform`: its vCPU count, GICD/GICR windows, SPIs up to
    /// [`Platform::max_spi`], and its pass-through interrupts with their triggers. Every vCPU
    /// starts offline with its redistributor asleep; the event loop powers vCPU 0 on at boot.
    pub fn new(platform: &Platform) -> Self {
        let vcpus = usize::from(platform.vcpus.min(MAX_VCPUS));
        let max_intid = platform.max_spi().intid().min(MAX_SPI_INTID);
        // max_intid <= 1019: at most 32 blocks of 32.
        let it_lines = max_intid / 32;
        let blocks = it_lines.saturating_add(1);
        let nr_irqs = blocks.saturating_mul(32).min(MAX_SPI_INTID + 1);

        let mut spis = vec![Block::default(); blocks as usize];
        for (n, b) in spis.iter_mut().enumerate().skip(1) {
            let first = (n as u32).saturating_mul(32);
            b.implemented = implemented_mask(first, nr_irqs);
        }
        let private = Block {
            implemented: u32::MAX,
            // SGIs are edge-triggered, fixed; the virtual timer is a level PPI the kernel
            // backs.
            edge: 0xffff,
            fixed_cfg: 0xffff | 1 << VTIMER_PPI,
            hw: 1 << VTIMER_PPI,
            ..Block::default()
        };
        let cpu = Cpu {
            online: false,
            asleep: true,
            private,
            priority: [0; 32],
            lrs: Vec::new(),
        };
        let mut vgic = Vgic {
            dist: platform.gic.dist.0,
            redist: platform.gic.redist.0,
            it_lines,
            nr_irqs,
            grp1: false,
            cpus: vec![cpu; vcpus],
            spis,
            spi_priority: vec![0; nr_irqs as usize],
            route: vec![0; nr_irqs as usize],
            log: key::NAMES.map(LogOnce::new),
        };
        for p in platform.passthrough_irqs {
            let irq = Irq::Spi(p.spi.intid());
            let bit = irq.bit();
            if let Some(b) = vgic.block_mut(irq)
                && b.implemented & bit != 0
            {
                b.hw |= bit;
                b.fixed_cfg |= bit;
                match p.trigger {
                    Trigger::Edge => b.edge |= bit,
                    Trigger::Level => b.edge &= !bit,
                }
            }
        }
        vgic
    }

    /// Number of vCPUs (and redistributors).
    pub fn vcpus(&self) -> usize {
        self.cpus.len()
    }

    /// INTIDs below this exist (SGIs, PPIs and the implemented SPIs).
    pub fn nr_irqs(&self) -> u32 {
        self.nr_irqs
    }

    /// What the vGIC believes list register `lr` of `vcpu` holds (`None`: no such register,
    /// or no injection has sized the shadow yet).
    pub fn list_register(&self, vcpu: VcpuId, lr: usize) -> Option<ListRegister> {
        let l = self.cpus.get(vcpu.index())?.lrs.get(lr)?;
        Some(match *l {
            Lr::Free => ListRegister::Free,
            Lr::Busy { intid, .. } => ListRegister::Holds(intid),
            Lr::Stale(Some(intid)) => ListRegister::Leftover(intid),
            Lr::Stale(None) => ListRegister::Unknown,
        })
    }

    /// True when `vcpu` is powered on and its redistributor awake.
    fn eligible(&self, v: usize) -> bool {
        self.cpus.get(v).is_some_and(|c| c.online && !c.asleep)
    }

    fn first_eligible(&self) -> Option<usize> {
        (0..self.cpus.len()).find(|&v| self.eligible(v))
    }

    fn block(&self, irq: Irq) -> Option<&Block> {
        match irq {
            Irq::Private(v, _) => self.cpus.get(v).map(|c| &c.private),
            Irq::Spi(i) if i >= 32 => self.spis.get((i / 32) as usize),
            Irq::Spi(_) => None,
        }
    }

    fn block_mut(&mut self, irq: Irq) -> Option<&mut Block> {
        match irq {
            Irq::Private(v, _) => self.cpus.get_mut(v).map(|c| &mut c.private),
            Irq::Spi(i) if i >= 32 => self.spis.get_mut((i / 32) as usize),
            Irq::Spi(_) => None,
        }
    }

    fn priority(&self, irq: Irq) -> u8 {
        match irq {
            Irq::Private(v, i) => self
                .cpus
                .get(v)
                .and_then(|c| c.priority.get(i as usize))
                .copied(),
            Irq::Spi(i) => self.spi_priority.get(i as usize).copied(),
        }
        .unwrap_or(0xff)
    }

    /// The vCPU index `affinity` (an IROUTER value) names, if it exists.
    fn named_vcpu(&self, affinity: u64) -> Option<usize> {
        let aff0 = (affinity & 0xff) as usize;
        (affinity & 0xff_ff00 == 0 && aff0 < self.cpus.len()).then_some(aff0)
    }

    /// Where SPI `intid` goes now: `Some(v)` for a vCPU that may take it, `None` while no vCPU
    /// is online. With 1-of-N routing any eligible vCPU may take it (`any` = true).
    fn spi_route(&self, intid: u32) -> (Option<usize>, bool) {
        let route = self.route.get(intid as usize).copied().unwrap_or(0);
        if route & regs::gicd::IROUTER_IRM != 0 {
            return (self.first_eligible(), true);
        }
        match self.named_vcpu(route) {
            Some(v) if self.eligible(v) => (Some(v), false),
            _ => (self.first_eligible(), false),
        }
    }

    fn spi_goes_to(&self, intid: u32, v: usize) -> bool {
        match self.spi_route(intid) {
            (Some(_), true) => self.eligible(v),
            (Some(t), false) => t == v,
            (None, _) => false,
        }
    }

    /// The interrupt `v` should get next: highest priority (lowest value), then lowest INTID.
    fn best_candidate(&self, v: usize) -> Option<Irq> {
        if !self.grp1 {
            return None;
        }
        let leftover = |intid: u32| {
            self.cpus
                .get(v)
                .is_some_and(|c| c.lrs.contains(&Lr::Stale(Some(intid))))
        };
        let mut best: Option<(u8, Irq)> = None;
        let mut consider = |irq: Irq, prio: u8| {
            if best.is_none_or(|(p, b)| (prio, irq.intid()) < (p, b.intid())) {
                best = Some((prio, irq));
            }
        };
        if let Some(c) = self.cpus.get(v) {
            for_each_bit(c.private.candidates(), |bit| {
                let irq = Irq::Private(v, bit);
                consider(irq, self.priority(irq));
            });
        }
        for (n, b) in self.spis.iter().enumerate().skip(1) {
            for_each_bit(b.candidates(), |bit| {
                // n < 32 blocks, bit < 32: the low five bits are the bit.
                let intid = (n as u32).wrapping_mul(32) | bit;
                if self.spi_goes_to(intid, v) && !leftover(intid) {
                    let irq = Irq::Spi(intid);
                    consider(irq, self.priority(irq));
                }
            });
        }
        best.map(|(_, irq)| irq)
    }

    /// Sizes the shadow of `v`'s list registers from the hypervisor.
    fn size_lrs(&mut self, hyp: &mut dyn Hypervisor, v: usize) {
        let n = hyp.list_registers(VcpuId(v as u8)).min(MAX_LIST_REGISTERS);
        let Some(c) = self.cpus.get_mut(v) else {
            return;
        };
        if c.lrs.len() == n {
            return;
        }
        if n < c.lrs.len() {
            let gone: Vec<Lr> = c.lrs.drain(n..).collect();
            for lr in gone {
                self.reclaim(v, lr);
            }
        } else {
            c.lrs.resize(n, Lr::Free);
        }
        if n == 0 && self.log_first(key::NO_LRS, v as u64) {
            log::error!("vgic: vcpu{v} has no list registers: it gets no interrupts");
        }
    }

    /// Fills `v`'s free list registers from its pending interrupts, best first.
    fn flush(&mut self, hyp: &mut dyn Hypervisor, v: usize) {
        if !self.eligible(v) {
            return;
        }
        self.size_lrs(hyp, v);
        loop {
            let Some(slot) = self
                .cpus
                .get(v)
                .and_then(|c| c.lrs.iter().position(|l| *l == Lr::Free))
            else {
                return;
            };
            let Some(irq) = self.best_candidate(v) else {
                return;
            };
            self.inject(hyp, v, slot, irq);
        }
    }

    fn flush_all(&mut self, hyp: &mut dyn Hypervisor) {
        // Most calls (a register write that changes nothing deliverable, an EOI with nothing
        // else waiting) find no candidate anywhere: say so in a few instructions instead of
        // searching for every vCPU.
        if !self.any_candidate() {
            return;
        }
        for v in 0..self.cpus.len() {
            self.flush(hyp, v);
        }
    }

    /// True when some interrupt is enabled, pending, not active and not listed (what
    /// `best_candidate` looks for), on any vCPU or among the SPIs, with Group 1 enabled.
    fn any_candidate(&self) -> bool {
        if !self.grp1 {
            return false;
        }
        // No early exit: a handful of blocks ORed together costs less than the branches.
        let mut any = 0;
        for c in &self.cpus {
            any |= c.private.candidates();
        }
        for b in self.spis.get(1..).unwrap_or(&[]) {
            any |= b.candidates();
        }
        any != 0
    }

    fn inject(&mut self, hyp: &mut dyn Hypervisor, v: usize, slot: usize, irq: Irq) {
        let intid = irq.intid();
        let virq = VirtualIrq {
            intid,
            priority: self.priority(irq),
            group: 1,
        };
        let result = hyp.inject_irq(VcpuId(v as u8), slot, virq);
        let bit = irq.bit();
        let Some(b) = self.block_mut(irq) else {
            return;
        };
        let entry = match result {
            Ok(()) => {
                let latched = b.latch & bit != 0;
                let line = b.line & !b.edge & bit != 0;
                b.latch &= !bit;
                b.listed |= bit;
                Lr::Busy {
                    intid,
                    latched,
                    line,
                }
            }
            Err(e) => {
                if self.log_first(key::INJECT, (v as u64) << 8 | slot as u64) {
                    log::warn!("vgic: injecting INTID {intid} into vcpu{v} LR{slot}: {e}");
                }
                Lr::Stale(None)
            }
        };
        if let Some(l) = self.cpus.get_mut(v).and_then(|c| c.lrs.get_mut(slot)) {
            *l = entry;
        }
        if let Irq::Spi(i) = irq {
            let route = self.route.get(i as usize).copied().unwrap_or(0);
            if route & regs::gicd::IROUTER_IRM == 0
                && self.named_vcpu(route) != Some(v)
                && self.log_first(key::ROUTE, u64::from(i))
            {
                log::warn!(
                    "vgic: SPI INTID {i} routed to {route:#x} (no such vCPU online); delivered to vcpu{v}"
                );
            }
        }
    }

    /// Takes an interrupt back from a list register the guest will not EOI (its vCPU went
    /// offline): it is pending again, for delivery elsewhere.
    fn reclaim(&mut self, v: usize, lr: Lr) {
        let Lr::Busy { intid, latched, .. } = lr else {
            return;
        };
        let irq = if intid < 32 {
            Irq::Private(v, intid)
        } else {
            Irq::Spi(intid)
        };
        let bit = irq.bit();
        if let Some(b) = self.block_mut(irq) {
            b.listed &= !bit;
            if latched {
                b.latch |= bit;
            }
        }
    }

    /// Marks SGI `intid` pending on vCPU `target`.
    fn pend_sgi(&mut self, hyp: &mut dyn Hypervisor, target: usize, intid: u32) {
        if let Some(c) = self.cpus.get_mut(target) {
            c.private.latch |= 1 << (intid & 0xf);
            self.flush(hyp, target);
        }
    }

    /// ICC_SGI1R_EL1 written by `from`.
    fn sgi1r(&mut self, hyp: &mut dyn Hypervisor, from: usize, value: u64) {
        use regs::sgir::*;
        let intid = ((value >> INTID_SHIFT) & 0xf) as u32;
        if value & (1 << IRM_BIT) != 0 {
            for t in 0..self.cpus.len() {
                if t != from {
                    self.pend_sgi(hyp, t, intid);
                }
            }
            return;
        }
        let upper = (value >> AFF1_SHIFT) & 0xff
            | (value >> AFF2_SHIFT) & 0xff
            | (value >> AFF3_SHIFT) & 0xff;
        let rs = ((value >> RS_SHIFT) & 0xf) as usize;
        let list = value & TARGET_LIST_MASK;
        for n in 0..16usize {
            if list & (1 << n) == 0 {
                continue;
            }
            let aff0 = rs << 4 | n; // rs < 16, n < 16
            if upper == 0 && aff0 < self.cpus.len() {
                self.pend_sgi(hyp, aff0, intid);
            } else if self.log_first(key::SGI, value & 0x00ff_f0ff_00ff_ffff) {
                log::warn!("vgic: vcpu{from} sent SGI {intid} to {value:#x}: no such vCPU");
            }
        }
    }

    fn vcpu_index(&mut self, vcpu: VcpuId, what: &str) -> Option<usize> {
        let v = vcpu.index();
        if v < self.cpus.len() {
            return Some(v);
        }
        if self.log_first(key::BAD_VCPU, v as u64) {
            log::warn!("vgic: {what} for {vcpu}, which does not exist: ignored");
        }
        None
    }

    /// The SPI `intid` as an [`Irq`], if the distributor implements it.
    fn spi(&self, intid: u32) -> Option<Irq> {
        let irq = Irq::Spi(intid);
        (intid >= 32 && intid < self.nr_irqs).then_some(irq)
    }
}

/// Bits of the block starting at INTID `first` that exist below `nr_irqs`.
const fn implemented_mask(first: u32, nr_irqs: u32) -> u32 {
    match nr_irqs.saturating_sub(first) {
        0 => 0,
        n if n >= 32 => u32::MAX,
        n => (1u32 << n).wrapping_sub(1), // 0 < n < 32
    }
}

fn for_each_bit(mut bits: u32, mut f: impl FnMut(u32)) {
    while bits != 0 {
        let b = bits.trailing_zeros();
        bits &= bits.wrapping_sub(1); // bits != 0
        f(b);
    }
}

impl Vgic {
    /// A load the fast path does not cover: the generic decode (out of line).
    #[inline(never)]
    fn mmio_read_generic(
        &mut self,
        addr: GuestPhysAddr,
        size: AccessSize,
    ) -> Option<Result<u64, MmioError>> {
        let (frame, off) = self.locate(addr)?;
        Some(self.read(frame, off, size))
    }

    /// A store the fast path does not cover: the generic decode (out of line).
    #[inline(never)]
    fn mmio_write_generic(
        &mut self,
        hyp: &mut dyn Hypervisor,
        addr: GuestPhysAddr,
        size: AccessSize,
        value: u64,
    ) -> Option<Result<(), MmioError>> {
        let (frame, off) = self.locate(addr)?;
        let r = self.write(frame, off, size, value & size.mask());
        // Enables, pending bits, priorities, trigger modes, routes, group enable, a woken
        // redistributor: anything may have become deliverable, unless the write changed
        // nothing (`write` says so; after every change a flush ran, so an unchanged state has
        // nothing new to deliver).
        if r != Ok(false) {
            self.flush_all(hyp);
        }
        Some(r.map(|_| ()))
    }
}

/// The MMIO entry points are inlined into the event loop: the fast path (GICD_CTLR, the bit
/// registers, and "not mine" for a bus device's word access) costs no call; everything else
/// goes to the out-of-line generic decode.
impl InterruptController for Vgic {
    #[inline]
    fn handles(&self, addr: GuestPhysAddr) -> bool {
        self.locate(addr).is_some()
    }

    #[inline(always)]
    fn mmio_read(
        &mut self,
        _hyp: &mut dyn Hypervisor,
        _vcpu: VcpuId,
        addr: GuestPhysAddr,
        size: AccessSize,
    ) -> Option<Result<u64, MmioError>> {
        match self.fast(addr, size) {
            mmio::Fast::Bits(reg, loc) => Some(Ok(self.fast_read_bits(reg, loc))),
            mmio::Fast::DistCtlr => Some(Ok(self.dist_ctlr())),
            mmio::Fast::Priority(loc, first) => {
                Some(Ok(self.read_priorities(Some(loc), first, size)))
            }
            mmio::Fast::Waker(v) => Some(Ok(self.read_waker(v))),
            mmio::Fast::NotMine => None,
            mmio::Fast::No => self.mmio_read_generic(addr, size),
        }
    }

    #[inline(always)]
    fn mmio_write(
        &mut self,
        hyp: &mut dyn Hypervisor,
        _vcpu: VcpuId,
        addr: GuestPhysAddr,
        size: AccessSize,
        value: u64,
    ) -> Option<Result<(), MmioError>> {
        match self.fast(addr, size) {
            // A bit register write that changes no bit runs no flush (see the generic path).
            mmio::Fast::Bits(reg, loc) => {
                if self.fast_write_bits(reg, loc, value) {
                    self.flush_all(hyp);
                }
                Some(Ok(()))
            }
            mmio::Fast::Priority(loc, first) => {
                if self.write_priorities(Some(loc), first, size, value) {
                    self.flush_all(hyp);
                }
                Some(Ok(()))
            }
            mmio::Fast::Waker(v) => {
                if self.write_waker(v, value) {
                    self.flush_all(hyp);
                }
                Some(Ok(()))
            }
            mmio::Fast::NotMine => None,
            mmio::Fast::DistCtlr | mmio::Fast::No => {
                self.mmio_write_generic(hyp, addr, size, value)
            }
        }
    }

    fn set_level(&mut self, hyp: &mut dyn Hypervisor, intid: u32, level: bool) {
        let Some(irq) = self.spi(intid) else {
            if self.log_first(key::SET_LEVEL, u64::from(intid)) {
                log::warn!("vgic: set_level on INTID {intid}: not an implemented SPI; ignored");
            }
            return;
        };
        let bit = irq.bit();
        let Some(b) = self.block_mut(irq) else {
            return;
        };
        if b.hw & bit != 0 {
            if self.log_first(key::SET_LEVEL, u64::from(intid)) {
                log::warn!("vgic: set_level on pass-through INTID {intid}; ignored");
            }
            return;
        }
        let was = b.line & bit != 0;
        if level {
            b.line |= bit;
            if !was && b.edge & bit != 0 {
                b.latch |= bit;
            }
        } else {
            b.line &= !bit;
        }
        if level && !was {
            self.flush_all(hyp);
        }
    }

    fn physical_irq(&mut self, hyp: &mut dyn Hypervisor, intid: u32) {
        let Some(irq) = self.spi(intid) else {
            if self.log_first(key::PHYS_IRQ, u64::from(intid)) {
                log::error!("vgic: physical INTID {intid} is not an SPI of the guest; left masked");
            }
            return;
        };
        let bit = irq.bit();
        let Some(b) = self.block_mut(irq) else {
            return;
        };
        let unknown = b.hw & bit == 0;
        if unknown {
            // Not in the platform table: treat it as a level pass-through (acknowledged after
            // the EOI), which neither loses nor storms.
            b.hw |= bit;
            b.fixed_cfg |= bit;
            b.edge &= !bit;
        }
        let edge = b.edge & bit != 0;
        if edge {
            b.latch |= bit;
        } else {
            b.line |= bit;
        }
        if unknown && self.log_first(key::PHYS_IRQ, u64::from(intid)) {
            log::warn!("vgic: physical INTID {intid} is not a pass-through SPI; taken as level");
        }
        if edge {
            hyp.ack_irq(intid);
        }
        self.flush_all(hyp);
    }

    fn maintenance(&mut self, hyp: &mut dyn Hypervisor, vcpu: VcpuId, lr: Option<usize>) {
        let Some(v) = self.vcpu_index(vcpu, "maintenance") else {
            return;
        };
        let entry = lr.and_then(|i| self.cpus.get(v).and_then(|c| c.lrs.get(i)).copied());
        match (lr, entry) {
            (Some(i), Some(Lr::Busy { intid, line, .. })) => {
                if let Some(l) = self.cpus.get_mut(v).and_then(|c| c.lrs.get_mut(i)) {
                    *l = Lr::Free;
                }
                let irq = if intid < 32 {
                    Irq::Private(v, intid)
                } else {
                    Irq::Spi(intid)
                };
                let bit = irq.bit();
                let mut ack = false;
                if let Some(b) = self.block_mut(irq) {
                    b.listed &= !bit;
                    if line && b.hw & bit != 0 {
                        b.line &= !bit;
                        ack = true;
                    }
                }
                if ack {
                    match irq {
                        Irq::Private(..) => hyp.ack_vppi(vcpu, intid),
                        Irq::Spi(_) => hyp.ack_irq(intid),
                    }
                }
            }
            (Some(i), Some(Lr::Stale(_))) => {
                if let Some(l) = self.cpus.get_mut(v).and_then(|c| c.lrs.get_mut(i)) {
                    *l = Lr::Free;
                }
            }
            _ => {
                if self.log_first(
                    key::MAINTENANCE,
                    (v as u64) << 8 | lr.map_or(0xff, |i| i as u64 & 0xff),
                ) {
                    log::warn!(
                        "vgic: {vcpu} maintenance for list register {lr:?}, which holds nothing the vGIC injected"
                    );
                }
            }
        }
        self.flush_all(hyp);
    }

    fn vppi(&mut self, hyp: &mut dyn Hypervisor, vcpu: VcpuId, intid: u32) {
        let Some(v) = self.vcpu_index(vcpu, "virtual PPI") else {
            return;
        };
        if !(16..32).contains(&intid) {
            if self.log_first(key::VPPI, u64::from(intid)) {
                log::warn!("vgic: virtual PPI event for INTID {intid}, not a PPI; ignored");
            }
            return;
        }
        let bit = 1u32 << intid;
        if let Some(c) = self.cpus.get_mut(v) {
            let b = &mut c.private;
            b.hw |= bit;
            b.fixed_cfg |= bit;
            b.edge &= !bit;
            b.line |= bit;
        }
        self.flush(hyp, v);
    }

    fn sysreg_write(
        &mut self,
        hyp: &mut dyn Hypervisor,
        vcpu: VcpuId,
        reg: SysReg,
        value: u64,
    ) -> bool {
        match reg {
            SysReg::ICC_SGI1R_EL1 => {
                if let Some(v) = self.vcpu_index(vcpu, "ICC_SGI1R_EL1") {
                    self.sgi1r(hyp, v, value);
                }
                true
            }
            // Group 0 and Secure Group 1 SGIs: every interrupt of the guest is Non-secure
            // Group 1, so the architecture forwards them to no PE.
            SysReg::ICC_SGI0R_EL1 | SysReg::ICC_ASGI1R_EL1 => {
                if self.log_first(key::SGI, 1 << 39 | u64::from(reg.op2)) {
                    log::warn!(
                        "[{vcpu}] {reg:?} (value {value:#x}): no Group 0 or Secure interrupts; ignored"
                    );
                }
                true
            }
            _ => false,
        }
    }

    fn vcpu_power(&mut self, hyp: &mut dyn Hypervisor, vcpu: VcpuId, online: bool) {
        let Some(v) = self.vcpu_index(vcpu, "power") else {
            return;
        };
        let Some(c) = self.cpus.get_mut(v) else {
            return;
        };
        c.online = online;
        if !online {
            // SPIs in its list registers go elsewhere (a pass-through one must not wait for
            // a vCPU that may never come back to be acknowledged). Its own SGIs and PPIs stay
            // listed: the guest takes them when the vCPU runs again.
            let taken: Vec<(usize, Lr)> = c
                .lrs
                .iter_mut()
                .enumerate()
                .filter_map(|(i, l)| match *l {
                    Lr::Busy { intid, .. } if intid >= 32 => {
                        let old = *l;
                        *l = Lr::Stale(Some(intid));
                        Some((i, old))
                    }
                    _ => None,
                })
                .collect();
            for (_, lr) in taken {
                self.reclaim(v, lr);
            }
        }
        self.flush_all(hyp);
    }

    fn has_pending(&self, vcpu: VcpuId) -> bool {
        let v = vcpu.index();
        let Some(c) = self.cpus.get(v) else {
            return false;
        };
        c.lrs.iter().any(|l| *l != Lr::Free) || self.best_candidate(v).is_some()
    }
}

// `GICD_SIZE` and `GICR_STRIDE` size the windows `mmio` decodes.
const _: () = assert!(GICD_SIZE == 0x1_0000 && GICR_STRIDE == 0x2_0000);
