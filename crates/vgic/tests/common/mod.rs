//! A machine (the vGIC over `hypervisor::testing::TestHyp`, which models seL4's list registers
//! and logs what it is asked) with a guest CPU interface: acknowledge (ICV_IAR1), EOI
//! (ICV_EOIR1) and the maintenance fault seL4 sends for it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use arm_fault::{AccessSize, SysReg};
use guest_mem::GuestPhysAddr;
use hypervisor::VcpuId;
use hypervisor::testing::TestHyp;
use irqchip::InterruptController;
use mmio_bus::MmioError;
use vgic::{ListRegister, Vgic};
use vmm_platform::{GICR_STRIDE, Platform};

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use hypervisor::testing::{HypEvent as Ev, LrEntry, SEL4_DELETE_FIRST};

/// The vGIC and its back-end, with the guest's CPU interface.
pub struct Machine {
    pub gic: Vgic,
    pub hyp: TestHyp,
    pub platform: Platform,
}

impl Machine {
    pub fn new(platform: &Platform, nlr: usize) -> Self {
        Machine {
            gic: Vgic::new(platform),
            hyp: TestHyp::new(usize::from(platform.vcpus)).list_register_count(nlr),
            platform: *platform,
        }
    }

    pub fn gicd(&self) -> u64 {
        self.platform.gic.dist.0
    }

    /// RD_base of vCPU `v`'s redistributor.
    pub fn rd(&self, v: usize) -> u64 {
        self.platform.gic.redist.0 + GICR_STRIDE * v as u64
    }

    /// SGI_base of vCPU `v`'s redistributor.
    pub fn sgi(&self, v: usize) -> u64 {
        self.rd(v) + 0x1_0000
    }

    /// A load in the vGIC's windows (panics if the vGIC does not claim the address).
    pub fn read(&mut self, v: usize, addr: u64, size: AccessSize) -> Result<u64, MmioError> {
        self.gic
            .mmio_read(&mut self.hyp, VcpuId(v as u8), GuestPhysAddr(addr), size)
            .unwrap_or_else(|| panic!("{addr:#x}: not claimed by the vGIC"))
    }

    /// A store in the vGIC's windows (panics if the vGIC does not claim the address).
    pub fn write(
        &mut self,
        v: usize,
        addr: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        self.gic
            .mmio_write(
                &mut self.hyp,
                VcpuId(v as u8),
                GuestPhysAddr(addr),
                size,
                value,
            )
            .unwrap_or_else(|| panic!("{addr:#x}: not claimed by the vGIC"))
    }

    pub fn readl(&mut self, addr: u64) -> u32 {
        self.read(0, addr, AccessSize::Word).unwrap() as u32
    }

    pub fn writel(&mut self, addr: u64, value: u32) {
        self.write(0, addr, AccessSize::Word, u64::from(value))
            .unwrap();
    }

    pub fn power(&mut self, v: usize, on: bool) {
        self.gic.vcpu_power(&mut self.hyp, VcpuId(v as u8), on);
    }

    /// Group 1 on, vCPUs `0..n` online with their redistributors awake.
    pub fn bring_up(&mut self, n: usize) {
        let ctlr = self.gicd();
        self.writel(ctlr, vgic::regs::gicd::CTLR_ENABLE_G1A);
        for v in 0..n {
            self.power(v, true);
            let waker = self.rd(v) + vgic::regs::gicr::WAKER;
            self.writel(waker, 0);
        }
    }

    pub fn enable(&mut self, intid: u32, v: usize) {
        let (base, n) = self.bank(intid, v);
        self.writel(base + 0x100 + 4 * n, 1 << (intid % 32));
    }

    pub fn disable(&mut self, intid: u32, v: usize) {
        let (base, n) = self.bank(intid, v);
        self.writel(base + 0x180 + 4 * n, 1 << (intid % 32));
    }

    pub fn set_pending(&mut self, intid: u32, v: usize) {
        let (base, n) = self.bank(intid, v);
        self.writel(base + 0x200 + 4 * n, 1 << (intid % 32));
    }

    pub fn set_priority(&mut self, intid: u32, v: usize, prio: u8) {
        let (base, _) = self.bank(intid, v);
        self.write(
            0,
            base + 0x400 + u64::from(intid),
            AccessSize::Byte,
            u64::from(prio),
        )
        .unwrap();
    }

    /// IROUTER of SPI `intid` (64-bit write).
    pub fn route(&mut self, intid: u32, value: u64) {
        let a = self.gicd() + 0x6000 + 8 * u64::from(intid);
        self.write(0, a, AccessSize::Double, value).unwrap();
    }

    /// `intid`'s bit in a one-bit-per-interrupt register at `reg` (0x100 ISENABLER, ...).
    pub fn bit(&mut self, reg: u64, intid: u32, v: usize) -> bool {
        let (base, n) = self.bank(intid, v);
        self.readl(base + reg + 4 * n) & (1 << (intid % 32)) != 0
    }

    /// The frame and word index of an INTID's bit registers (SGI_base for SGIs and PPIs).
    fn bank(&self, intid: u32, v: usize) -> (u64, u64) {
        if intid < 32 {
            (self.sgi(v), 0)
        } else {
            (self.gicd(), u64::from(intid / 32))
        }
    }

    /// The guest reads ICV_IAR1_EL1: the highest-priority pending list register becomes
    /// active. Returns its INTID.
    pub fn ack(&mut self, v: usize) -> Option<u32> {
        self.hyp.guest_ack(VcpuId(v as u8)).map(|(_, intid)| intid)
    }

    /// The guest writes ICV_EOIR1_EL1 for `intid` (EOImode 0: drop and deactivate): the list
    /// register empties and seL4 reports a maintenance fault naming it.
    pub fn eoi(&mut self, v: usize, intid: u32) {
        let lr = self
            .hyp
            .guest_eoi(VcpuId(v as u8), intid)
            .unwrap_or_else(|| panic!("vcpu{v} EOI of INTID {intid}, which is not active"));
        self.gic
            .maintenance(&mut self.hyp, VcpuId(v as u8), Some(lr));
    }

    /// Acknowledge and EOI one interrupt on `v` (an interrupt handler that does nothing).
    pub fn take(&mut self, v: usize) -> Option<u32> {
        let intid = self.ack(v)?;
        self.eoi(v, intid);
        Some(intid)
    }

    /// Take interrupts on `v` until none is pending (at most `limit`).
    pub fn drain(&mut self, v: usize, limit: usize) -> Vec<u32> {
        let mut got = Vec::new();
        while got.len() < limit {
            match self.take(v) {
                Some(i) => got.push(i),
                None => break,
            }
        }
        got
    }

    /// Checks that the vGIC's shadow matches the kernel's list registers: everything the vGIC
    /// believes it injected is there, nothing is listed twice on a vCPU, no SPI is listed on two
    /// vCPUs.
    pub fn check_shadow(&self) {
        let mut spis = std::collections::HashSet::new();
        for v in 0..self.hyp.lrs.len() {
            let mut seen = std::collections::HashSet::new();
            for lr in 0..self.hyp.lrs[v].len() {
                let kernel = self.hyp.lrs[v][lr];
                match self.gic.list_register(VcpuId(v as u8), lr) {
                    Some(ListRegister::Holds(intid)) => {
                        let e = kernel.unwrap_or_else(|| {
                            panic!("vcpu{v} LR{lr}: vGIC says {intid}, kernel has nothing")
                        });
                        assert_eq!(e.irq.intid, intid, "vcpu{v} LR{lr}");
                        assert!(!e.foreign, "vcpu{v} LR{lr}: foreign entry believed ours");
                        assert!(seen.insert(intid), "vcpu{v}: INTID {intid} listed twice");
                        if intid >= 32 {
                            assert!(spis.insert(intid), "SPI {intid} listed on two vCPUs");
                        }
                    }
                    Some(ListRegister::Free) => {
                        if let Some(e) = kernel {
                            panic!("vcpu{v} LR{lr}: vGIC says free, kernel has {e:?}");
                        }
                    }
                    Some(ListRegister::Leftover(intid)) => {
                        // The kernel may still hold the copy; the guest has not EOI'd it.
                        let e = kernel.unwrap_or_else(|| {
                            panic!("vcpu{v} LR{lr}: left-over {intid} but the kernel has nothing")
                        });
                        assert_eq!(e.irq.intid, intid);
                        assert!(seen.insert(intid), "vcpu{v}: INTID {intid} listed twice");
                    }
                    Some(ListRegister::Unknown) | None => {}
                }
            }
        }
    }

    /// Writes ICC_SGI1R_EL1 from `v`.
    pub fn sgi1r(&mut self, v: usize, value: u64) {
        assert!(self.gic.sysreg_write(
            &mut self.hyp,
            VcpuId(v as u8),
            SysReg::ICC_SGI1R_EL1,
            value
        ));
    }
}

/// A platform like QEMU virt with `vcpus` vCPUs and the given pass-through interrupts.
pub fn platform(vcpus: u8, passthrough: &'static [vmm_platform::PassthroughIrq]) -> Platform {
    Platform {
        vcpus,
        passthrough_irqs: passthrough,
        ..vmm_platform::QEMU_VIRT
    }
}
