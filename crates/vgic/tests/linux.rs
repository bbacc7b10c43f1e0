//! The vGIC driven the way Linux 6.1 drives a GICv3: `drivers/irqchip/irq-gic-v3.c` and
//! `irq-gic-common.c` (Debian `linux-source-6.1`). Each method of [`Linux`] transliterates the
//! driver function it is named after: the same registers, in the same order, at the same
//! widths (`readl_relaxed`/`writel_relaxed` 32-bit, `gic_read_typer`/`gic_write_irouter`
//! 64-bit on arm64). `gic_cpu_sys_reg_init` programs ICC system registers, which the vCPU's
//! virtual CPU interface handles without the VMM, so it is left out.
//!
//! Then interrupts of every kind are delivered through the model: an IPI to other CPUs
//! (`gic_ipi_send_mask` and `gic_send_sgi`, which replaced `gic_raise_softirq` in 5.10), the virtual timer PPI (acknowledged with `ack_vppi` after the EOI),
//! a pass-through level SPI (acknowledged with `ack_irq` after the EOI) and an emulated
//! device's level SPI (virtio INTx).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use arm_fault::AccessSize;
use common::{Ev, Machine};
use hypervisor::VcpuId;
use irqchip::InterruptController;
use vgic::VTIMER_PPI;
use vmm_platform::ORIN_AGX;

// include/linux/irqchip/arm-gic-v3.h and arm-gic.h, under the kernel's names.
const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
const GICD_TYPER2: u64 = 0x000c;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_ICACTIVER: u64 = 0x0380;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IROUTER: u64 = 0x6000;
const GICD_PIDR2: u64 = 0xffe8;
const GICD_CTLR_RWP: u32 = 1 << 31;
const GICD_CTLR_ARE_NS: u32 = 1 << 4;
const GICD_CTLR_ENABLE_G1A: u32 = 1 << 1;
const GICD_CTLR_ENABLE_G1: u32 = 1 << 0;
const GICD_CTLR_DS: u32 = 1 << 6;
const GICD_TYPER_LPIS: u32 = 1 << 17;
const GICD_TYPER_MBIS: u32 = 1 << 16;
const GICD_TYPER_ESPI: u32 = 1 << 8;
const GICD_TYPER2_NASSGICAP: u32 = 1 << 8;
const GIC_PIDR2_ARCH_MASK: u32 = 0xf0;
const GIC_PIDR2_ARCH_GICV3: u32 = 0x30;
const GIC_PIDR2_ARCH_GICV4: u32 = 0x40;
const GICR_CTLR: u64 = GICD_CTLR;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const GICR_PIDR2: u64 = GICD_PIDR2;
const GICR_CTLR_RWP: u32 = 1 << 3;
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const GICR_IGROUPR0: u64 = GICD_IGROUPR;
const SZ_64K: u64 = 0x1_0000;
const GIC_DIST_ENABLE_CLEAR: u64 = 0x180;
const GIC_DIST_ACTIVE_CLEAR: u64 = 0x380;
const GIC_DIST_PRI: u64 = 0x400;
const GIC_DIST_CONFIG: u64 = 0xc00;
const GICD_INT_ACTLOW_LVLTRIG: u32 = 0;
const GICD_INT_EN_CLR_X32: u32 = 0xffff_ffff;
const GICD_INT_DEF_PRI: u32 = 0xa0;
const GICD_INT_DEF_PRI_X4: u32 = 0xa0a0_a0a0;
const ICC_SGI1R_TARGET_LIST_SHIFT: u32 = 0;
const ICC_SGI1R_AFFINITY_1_SHIFT: u32 = 16;
const ICC_SGI1R_SGI_ID_SHIFT: u32 = 24;
const ICC_SGI1R_AFFINITY_2_SHIFT: u32 = 32;
const ICC_SGI1R_RS_SHIFT: u32 = 44;
const ICC_SGI1R_AFFINITY_3_SHIFT: u32 = 48;
// include/linux/irq.h
const IRQ_TYPE_EDGE_RISING: u32 = 1;
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;
const IRQ_TYPE_LEVEL_LOW: u32 = 8;
const IRQ_TYPE_LEVEL_MASK: u32 = IRQ_TYPE_LEVEL_LOW | IRQ_TYPE_LEVEL_HIGH;
const IRQ_TYPE_EDGE_BOTH: u32 = 3;
const EINVAL: i32 = 22;
// Linux's arm64 IPIs: IPI_RESCHEDULE = 0, IPI_CALL_FUNC = 1.
const IPI_RESCHEDULE: u32 = 0;
const IPI_CALL_FUNC: u32 = 1;

/// Orin's devkit passes HSP shared mailbox interrupt 0 through: SPI 120, level.
const HSP_SHARED0: u32 = 120 + 32;
/// Orin's virtio INTA: SPI 416, level (emulated).
const VIRTIO_INTA: u32 = 416 + 32;

/// `MPIDR_AFFINITY_LEVEL` (arch/arm64/include/asm/cputype.h).
fn mpidr_affinity_level(mpidr: u64, level: u32) -> u64 {
    let shift = ((1u32 << level) >> 1) << 3;
    (mpidr >> shift) & 0xff
}

/// The guest kernel: per-CPU data the driver keeps (`gic_data`, `gic_data_rdist()`).
struct Linux {
    m: Machine,
    /// `gic_data.rdists.gicd_typer`.
    gicd_typer: u32,
    /// `gic_data.ppi_nr`.
    ppi_nr: u32,
    /// `gic_data_rdist_rd_base()` per CPU.
    rd_base: Vec<Option<u64>>,
    /// `cpu_logical_map()`: MPIDR of each CPU (the device tree's `reg`; Aff0 = index).
    cpu_logical_map: Vec<u64>,
    nr_cpu_ids: usize,
    /// The CPU the code runs on (`smp_processor_id()`).
    cpu: usize,
    /// Spins a `gic_do_wait_for_rwp` / `gic_enable_redist` loop took.
    spins: usize,
}

impl Linux {
    fn new() -> Self {
        let mut m = Machine::new(&ORIN_AGX, 4);
        // The VMM starts the boot vCPU (vmm::Vm::boot).
        m.power(0, true);
        let n = usize::from(ORIN_AGX.vcpus);
        Linux {
            m,
            gicd_typer: 0,
            ppi_nr: 0,
            rd_base: vec![None; n],
            cpu_logical_map: (0..n as u64).collect(),
            nr_cpu_ids: n,
            cpu: 0,
            spins: 0,
        }
    }

    fn dist_base(&self) -> u64 {
        self.m.gicd()
    }

    /// The first (only) redistributor region's base (`gic_data.redist_regions[0]`).
    fn redist_region(&self) -> u64 {
        self.m.rd(0)
    }

    fn readl_relaxed(&mut self, addr: u64) -> u32 {
        let cpu = self.cpu;
        self.m.read(cpu, addr, AccessSize::Word).unwrap() as u32
    }

    fn writel_relaxed(&mut self, value: u32, addr: u64) {
        let cpu = self.cpu;
        self.m
            .write(cpu, addr, AccessSize::Word, u64::from(value))
            .unwrap();
    }

    /// `gic_read_typer` on arm64: `readq_relaxed`.
    fn gic_read_typer(&mut self, addr: u64) -> u64 {
        let cpu = self.cpu;
        self.m.read(cpu, addr, AccessSize::Double).unwrap()
    }

    /// `gic_write_irouter` on arm64: `writeq_relaxed`.
    fn gic_write_irouter(&mut self, value: u64, addr: u64) {
        let cpu = self.cpu;
        self.m.write(cpu, addr, AccessSize::Double, value).unwrap();
    }

    fn gic_data_rdist_rd_base(&self) -> u64 {
        self.rd_base[self.cpu].expect("redistributor found")
    }

    fn gic_data_rdist_sgi_base(&self) -> u64 {
        self.gic_data_rdist_rd_base() + SZ_64K
    }

    /// `GIC_LINE_NR`.
    fn gic_line_nr(&self) -> u32 {
        (((self.gicd_typer & 0x1f) + 1) * 32).min(1020)
    }

    /// `GIC_ESPI_NR`.
    fn gic_espi_nr(&self) -> u32 {
        if self.gicd_typer & GICD_TYPER_ESPI != 0 {
            (((self.gicd_typer >> 27) & 0x1f) + 1) * 32
        } else {
            0
        }
    }

    /// `gic_validate_dist_version`.
    fn gic_validate_dist_version(&mut self) -> bool {
        let base = self.dist_base();
        let reg = self.readl_relaxed(base + GICD_PIDR2) & GIC_PIDR2_ARCH_MASK;
        reg == GIC_PIDR2_ARCH_GICV3 || reg == GIC_PIDR2_ARCH_GICV4
    }

    /// `gic_do_wait_for_rwp`: polls up to 1000000 times.
    fn gic_do_wait_for_rwp(&mut self, base: u64, bit: u32) {
        let mut count = 1_000_000u32;
        while self.readl_relaxed(base + GICD_CTLR) & bit != 0 {
            count -= 1;
            self.spins += 1;
            assert!(count != 0, "RWP timeout, gone fishing");
        }
    }

    /// `gic_dist_wait_for_rwp`.
    fn gic_dist_wait_for_rwp(&mut self) {
        let base = self.dist_base();
        self.gic_do_wait_for_rwp(base, GICD_CTLR_RWP);
    }

    /// `gic_redist_wait_for_rwp`.
    fn gic_redist_wait_for_rwp(&mut self) {
        let base = self.gic_data_rdist_rd_base();
        self.gic_do_wait_for_rwp(base, GICR_CTLR_RWP);
    }

    /// `gic_init_bases`, the register accesses of it and what it calls.
    fn gic_init_bases(&mut self) {
        let base = self.dist_base();
        let typer = self.readl_relaxed(base + GICD_TYPER);
        self.gicd_typer = typer;
        // gic_enable_quirks(readl_relaxed(GICD_IIDR), gic_quirks): none may match.
        let iidr = self.readl_relaxed(base + GICD_IIDR);
        for (quirk, mask) in [
            (0x0204_043b_u32, 0xffff_ffff_u32), // HIP06
            (0x0000_0000, 0xffff_ffff),         // HIP07
            (0xa000_034c, 0xe8f0_0fff),         // Cavium 38539
            (0x0402_043b, 0xffff_ffff),         // NVIDIA T241-FABRIC-4
        ] {
            assert_ne!(iidr & mask, quirk, "IIDR {iidr:#x} matches a Linux quirk");
        }
        // "%d SPIs implemented": the platform's largest SPI must be below GIC_LINE_NR.
        assert!(self.gic_line_nr() > ORIN_AGX.max_spi().intid());
        assert_eq!(self.gic_espi_nr(), 0);
        let typer2 = self.readl_relaxed(base + GICD_TYPER2);
        assert_eq!(typer2 & GICD_TYPER2_NASSGICAP, 0);
        assert_eq!(typer & GICD_TYPER_MBIS, 0, "no mbi_init");
        self.gic_update_rdist_properties();
        self.gic_dist_init();
        self.gic_cpu_init();
        // gic_smp_init registers the SGIs as IPIs: no register access.
        // gic_dist_supports_lpis(): no ITS init.
        assert_eq!(self.readl_relaxed(base + GICD_TYPER) & GICD_TYPER_LPIS, 0);
    }

    /// `gic_iterate_rdists` with the callback `f` (0 = done, 1 = try the next one).
    fn gic_iterate_rdists(&mut self, f: fn(&mut Linux, u64) -> i32) -> i32 {
        let mut ptr = self.redist_region();
        let reg = self.readl_relaxed(ptr + GICR_PIDR2) & GIC_PIDR2_ARCH_MASK;
        if reg != GIC_PIDR2_ARCH_GICV3 && reg != GIC_PIDR2_ARCH_GICV4 {
            panic!("No redistributor present @{ptr:#x}");
        }
        loop {
            let typer = self.gic_read_typer(ptr + GICR_TYPER);
            let ret = f(self, ptr);
            if ret == 0 {
                return 0;
            }
            // No redist_stride in the device tree: 2 x 64K frames, 4 with vLPIs.
            ptr += SZ_64K * 2;
            if typer & GICR_TYPER_VLPIS != 0 {
                ptr += SZ_64K * 2;
            }
            if typer & GICR_TYPER_LAST != 0 {
                break;
            }
        }
        -19 // -ENODEV
    }

    /// `__gic_update_rdist_properties`.
    fn gic_update_rdist_properties_one(l: &mut Linux, ptr: u64) -> i32 {
        let typer = l.gic_read_typer(ptr + GICR_TYPER);
        let _ctlr = l.readl_relaxed(ptr + GICR_CTLR);
        assert_eq!(typer & (GICR_TYPER_VLPIS | 1), 0, "no (v)LPIs");
        // GICR_TYPER_NR_PPIS
        let nr_ppis = match (typer >> 27) & 0x1f {
            0 => 16,
            1 | 2 => 32 * ((typer >> 27) & 0x1f) as u32 + 16,
            _ => 16,
        };
        l.ppi_nr = l.ppi_nr.min(nr_ppis);
        1
    }

    /// `gic_update_rdist_properties`.
    fn gic_update_rdist_properties(&mut self) {
        self.ppi_nr = u32::MAX;
        self.gic_iterate_rdists(Self::gic_update_rdist_properties_one);
        assert_ne!(self.ppi_nr, u32::MAX, "no redistributor walked");
        assert_eq!(self.ppi_nr, 16, "GICv3 features: 16 PPIs");
    }

    /// `gic_mpidr_to_affinity`.
    fn gic_mpidr_to_affinity(mpidr: u64) -> u64 {
        mpidr_affinity_level(mpidr, 3) << 32
            | mpidr_affinity_level(mpidr, 2) << 16
            | mpidr_affinity_level(mpidr, 1) << 8
            | mpidr_affinity_level(mpidr, 0)
    }

    /// `gic_dist_init`, with `gic_dist_config` (irq-gic-common.c) inlined where it is called.
    fn gic_dist_init(&mut self) {
        let base = self.dist_base();
        // Disable the distributor.
        self.writel_relaxed(0, base + GICD_CTLR);
        self.gic_dist_wait_for_rwp();
        // Configure SPIs as non-secure Group-1.
        let lines = self.gic_line_nr();
        for i in (32..lines).step_by(32) {
            self.writel_relaxed(!0, base + GICD_IGROUPR + u64::from(i / 8));
        }
        // Extended SPI range: GIC_ESPI_NR is 0, the loops do nothing.
        // gic_dist_config(base, GIC_LINE_NR, NULL):
        for i in (32..lines).step_by(16) {
            self.writel_relaxed(
                GICD_INT_ACTLOW_LVLTRIG,
                base + GIC_DIST_CONFIG + u64::from(i / 4),
            );
        }
        for i in (32..lines).step_by(4) {
            self.writel_relaxed(GICD_INT_DEF_PRI_X4, base + GIC_DIST_PRI + u64::from(i));
        }
        for i in (32..lines).step_by(32) {
            self.writel_relaxed(
                GICD_INT_EN_CLR_X32,
                base + GIC_DIST_ACTIVE_CLEAR + u64::from(i / 8),
            );
            self.writel_relaxed(
                GICD_INT_EN_CLR_X32,
                base + GIC_DIST_ENABLE_CLEAR + u64::from(i / 8),
            );
        }
        // gic_dist_config ends without sync_access (NULL).
        let val = GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1;
        // Enable distributor with ARE, Group1, and wait for it to drain.
        self.writel_relaxed(val, base + GICD_CTLR);
        self.gic_dist_wait_for_rwp();
        // Set all global interrupts to the boot CPU only.
        let affinity = Self::gic_mpidr_to_affinity(self.cpu_logical_map[self.cpu]);
        for i in 32..lines {
            self.gic_write_irouter(affinity, base + GICD_IROUTER + u64::from(i) * 8);
        }
    }

    /// `__gic_populate_rdist`.
    fn gic_populate_rdist_one(l: &mut Linux, ptr: u64) -> i32 {
        let mpidr = l.cpu_logical_map[l.cpu];
        let aff = mpidr_affinity_level(mpidr, 3) << 24
            | mpidr_affinity_level(mpidr, 2) << 16
            | mpidr_affinity_level(mpidr, 1) << 8
            | mpidr_affinity_level(mpidr, 0);
        let typer = l.gic_read_typer(ptr + GICR_TYPER);
        if typer >> 32 == aff {
            let cpu = l.cpu;
            l.rd_base[cpu] = Some(ptr);
            return 0;
        }
        1
    }

    /// `gic_populate_rdist`.
    fn gic_populate_rdist(&mut self) -> i32 {
        if self.gic_iterate_rdists(Self::gic_populate_rdist_one) == 0 {
            return 0;
        }
        panic!("CPU{}: mpidr has no re-distributor!", self.cpu);
    }

    /// `gic_enable_redist`.
    fn gic_enable_redist(&mut self, enable: bool) {
        let rbase = self.gic_data_rdist_rd_base();
        let mut count = 1_000_000u32;
        let mut val = self.readl_relaxed(rbase + GICR_WAKER);
        if enable {
            val &= !GICR_WAKER_PROCESSOR_SLEEP;
        } else {
            val |= GICR_WAKER_PROCESSOR_SLEEP;
        }
        self.writel_relaxed(val, rbase + GICR_WAKER);
        if !enable {
            val = self.readl_relaxed(rbase + GICR_WAKER);
            if val & GICR_WAKER_PROCESSOR_SLEEP == 0 {
                return; // No PM support in this redistributor.
            }
        }
        loop {
            count -= 1;
            if count == 0 {
                break;
            }
            val = self.readl_relaxed(rbase + GICR_WAKER);
            if enable ^ (val & GICR_WAKER_CHILDREN_ASLEEP != 0) {
                break;
            }
            self.spins += 1;
        }
        assert!(count != 0, "redistributor failed to wake up / sleep");
    }

    /// `gic_cpu_config` (irq-gic-common.c).
    fn gic_cpu_config(&mut self, base: u64, nr: u32) {
        for i in (0..nr).step_by(32) {
            self.writel_relaxed(
                GICD_INT_EN_CLR_X32,
                base + GIC_DIST_ACTIVE_CLEAR + u64::from(i / 8),
            );
            self.writel_relaxed(
                GICD_INT_EN_CLR_X32,
                base + GIC_DIST_ENABLE_CLEAR + u64::from(i / 8),
            );
        }
        for i in (0..nr).step_by(4) {
            self.writel_relaxed(GICD_INT_DEF_PRI_X4, base + GIC_DIST_PRI + u64::from(i));
        }
        self.gic_redist_wait_for_rwp();
    }

    /// `gic_cpu_init` (`gic_cpu_sys_reg_init` programs system registers: left out).
    fn gic_cpu_init(&mut self) {
        if self.gic_populate_rdist() != 0 {
            return;
        }
        self.gic_enable_redist(true);
        let rbase = self.gic_data_rdist_sgi_base();
        // Configure SGIs/PPIs as non-secure Group-1.
        for i in (0..self.ppi_nr + 16).step_by(32) {
            self.writel_relaxed(!0, rbase + GICR_IGROUPR0 + u64::from(i / 8));
        }
        self.gic_cpu_config(rbase, self.ppi_nr + 16);
    }

    /// `gic_starting_cpu`, run on a secondary CPU after PSCI CPU_ON started it.
    fn gic_starting_cpu(&mut self, cpu: usize) {
        self.m.power(cpu, true); // vmm: PSCI CPU_ON -> vcpu_power(target, true)
        self.cpu = cpu;
        self.gic_cpu_init();
    }

    fn gic_irq_in_rdist(hwirq: u32) -> bool {
        hwirq < 32
    }

    /// `gic_peek_irq`.
    fn gic_peek_irq(&mut self, hwirq: u32, offset: u64) -> bool {
        let mask = 1u32 << (hwirq % 32);
        let base = if Self::gic_irq_in_rdist(hwirq) {
            self.gic_data_rdist_sgi_base()
        } else {
            self.dist_base()
        };
        self.readl_relaxed(base + offset + u64::from(hwirq / 32) * 4) & mask != 0
    }

    /// `gic_poke_irq`.
    fn gic_poke_irq(&mut self, hwirq: u32, offset: u64) {
        let mask = 1u32 << (hwirq % 32);
        let base = if Self::gic_irq_in_rdist(hwirq) {
            self.gic_data_rdist_sgi_base()
        } else {
            self.dist_base()
        };
        self.writel_relaxed(mask, base + offset + u64::from(hwirq / 32) * 4);
    }

    /// `gic_mask_irq`.
    fn gic_mask_irq(&mut self, hwirq: u32) {
        self.gic_poke_irq(hwirq, GICD_ICENABLER);
        if Self::gic_irq_in_rdist(hwirq) {
            self.gic_redist_wait_for_rwp();
        } else {
            self.gic_dist_wait_for_rwp();
        }
    }

    /// `gic_unmask_irq`.
    fn gic_unmask_irq(&mut self, hwirq: u32) {
        self.gic_poke_irq(hwirq, GICD_ISENABLER);
    }

    /// `gic_configure_irq` (irq-gic-common.c).
    fn gic_configure_irq(&mut self, irq: u32, ty: u32, base: u64) -> i32 {
        let confmask = 0x2u32 << ((irq % 16) * 2);
        let confoff = u64::from(irq / 16) * 4;
        let oldval = self.readl_relaxed(base + confoff);
        let mut val = oldval;
        if ty & IRQ_TYPE_LEVEL_MASK != 0 {
            val &= !confmask;
        } else if ty & IRQ_TYPE_EDGE_BOTH != 0 {
            val |= confmask;
        }
        if val == oldval {
            return 0;
        }
        self.writel_relaxed(val, base + confoff);
        if self.readl_relaxed(base + confoff) != val {
            return -EINVAL;
        }
        0
    }

    /// `gic_set_type`.
    fn gic_set_type(&mut self, hwirq: u32, ty: u32) -> i32 {
        if hwirq < 16 {
            return if ty != IRQ_TYPE_EDGE_RISING {
                -EINVAL
            } else {
                0
            };
        }
        if hwirq >= 32 && ty != IRQ_TYPE_LEVEL_HIGH && ty != IRQ_TYPE_EDGE_RISING {
            return -EINVAL;
        }
        let base = if Self::gic_irq_in_rdist(hwirq) {
            self.gic_data_rdist_sgi_base()
        } else {
            self.dist_base()
        };
        let ret = self.gic_configure_irq(hwirq, ty, base + GICD_ICFGR);
        if ret != 0 && (16..32).contains(&hwirq) {
            // "GIC: PPI INTID%d is secure or misconfigured"
            return 0;
        }
        ret
    }

    /// `gic_set_affinity` (`force`: the first CPU of the mask).
    fn gic_set_affinity(&mut self, hwirq: u32, cpu: usize) -> i32 {
        if Self::gic_irq_in_rdist(hwirq) {
            return -EINVAL;
        }
        let enabled = self.gic_peek_irq(hwirq, GICD_ISENABLER);
        if enabled {
            self.gic_mask_irq(hwirq);
        }
        let reg = self.dist_base() + GICD_IROUTER + u64::from(hwirq) * 8;
        let val = Self::gic_mpidr_to_affinity(self.cpu_logical_map[cpu]);
        self.gic_write_irouter(val, reg);
        if enabled {
            self.gic_unmask_irq(hwirq);
        }
        0
    }

    /// `gic_compute_target_list`.
    fn gic_compute_target_list(
        &self,
        base_cpu: &mut usize,
        mask: &[usize],
        cluster_id: u64,
    ) -> u16 {
        let mut cpu = *base_cpu;
        let mut mpidr = self.cpu_logical_map[cpu];
        let mut tlist = 0u16;
        while cpu < self.nr_cpu_ids {
            tlist |= 1 << (mpidr & 0xf);
            let Some(&next_cpu) = mask.iter().find(|&&c| c > cpu) else {
                break;
            };
            cpu = next_cpu;
            mpidr = self.cpu_logical_map[cpu];
            if cluster_id != mpidr & !0xf {
                cpu -= 1;
                break;
            }
        }
        *base_cpu = cpu;
        tlist
    }

    /// `gic_send_sgi`: the ICC_SGI1R_EL1 value, written by the current CPU (a trapped MSR).
    fn gic_send_sgi(&mut self, cluster_id: u64, tlist: u16, irq: u32) {
        let mpidr_rs = (cluster_id & 0xf0) >> 4;
        let val = mpidr_affinity_level(cluster_id, 3) << ICC_SGI1R_AFFINITY_3_SHIFT
            | mpidr_affinity_level(cluster_id, 2) << ICC_SGI1R_AFFINITY_2_SHIFT
            | u64::from(irq) << ICC_SGI1R_SGI_ID_SHIFT
            | mpidr_affinity_level(cluster_id, 1) << ICC_SGI1R_AFFINITY_1_SHIFT
            | mpidr_rs << ICC_SGI1R_RS_SHIFT
            | u64::from(tlist) << ICC_SGI1R_TARGET_LIST_SHIFT;
        let cpu = self.cpu;
        self.m.sgi1r(cpu, val);
    }

    /// `gic_ipi_send_mask` (`mask` sorted, as a cpumask iterates).
    fn gic_ipi_send_mask(&mut self, hwirq: u32, mask: &[usize]) {
        assert!(hwirq < 16);
        let mut i = 0;
        while i < mask.len() {
            let mut cpu = mask[i];
            let cluster_id = self.cpu_logical_map[cpu] & !0xf;
            let tlist = self.gic_compute_target_list(&mut cpu, mask, cluster_id);
            self.gic_send_sgi(cluster_id, tlist, hwirq);
            // for_each_cpu continues after the last CPU the list covered.
            i = mask.iter().position(|&c| c > cpu).unwrap_or(mask.len());
        }
    }

    /// `gic_handle_irq` on `cpu` with EOImode 0 (a guest at EL1 has no split EOI/deactivate):
    /// read ICV_IAR1, run the handler, `gic_eoi_irq` writes ICV_EOIR1, which the hardware
    /// reports as a maintenance interrupt for the list register.
    fn gic_handle_irq(
        &mut self,
        cpu: usize,
        handler: impl FnOnce(&mut Machine, u32),
    ) -> Option<u32> {
        let irqnr = self.m.ack(cpu)?;
        handler(&mut self.m, irqnr);
        self.m.eoi(cpu, irqnr);
        Some(irqnr)
    }
}

/// Boots the GIC the way Linux does on all four CPUs of Orin.
fn booted() -> Linux {
    let mut l = Linux::new();
    assert!(l.gic_validate_dist_version(), "GICv3 distributor");
    l.gic_init_bases();
    for cpu in 1..l.nr_cpu_ids {
        l.gic_starting_cpu(cpu);
    }
    l.cpu = 0;
    l
}

#[test]
fn gic_init_bases_and_secondary_bring_up() {
    let mut l = booted();
    assert_eq!(l.spins, 0, "RWP and WAKER settle at once");
    let base = l.dist_base();
    // ARE_NS and EnableGrp1 (EnableGrp1A in the Non-secure view) stick, bit 0 is RES0, DS 0.
    let ctlr = l.readl_relaxed(base + GICD_CTLR);
    assert_eq!(ctlr, GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_G1A);
    assert_eq!(ctlr & GICD_CTLR_DS, 0);
    // 14 interrupt lines: SPIs up to INTID 479 cover the largest Orin SPI (virtio INTD, 451).
    assert_eq!(l.gic_line_nr(), 480);
    // Every CPU found the redistributor whose GICR_TYPER affinity is its MPIDR.
    for cpu in 0..4 {
        assert_eq!(l.rd_base[cpu], Some(l.m.rd(cpu)));
        let waker = l.m.readl(l.m.rd(cpu) + GICR_WAKER);
        assert_eq!(waker, 0, "cpu{cpu} redistributor awake");
    }
    // gic_dist_config: SPIs level, priority 0xa0, disabled, inactive, routed to CPU0.
    for intid in (32..480).step_by(7) {
        assert!(!l.m.bit(GICD_ISENABLER, intid, 0));
        assert!(!l.m.bit(GICD_ICACTIVER, intid, 0));
        let prio = l.m.read(
            0,
            base + GICD_IPRIORITYR + u64::from(intid),
            AccessSize::Byte,
        );
        assert_eq!(prio, Ok(u64::from(GICD_INT_DEF_PRI)));
        let route = l.m.read(
            0,
            base + GICD_IROUTER + 8 * u64::from(intid),
            AccessSize::Double,
        );
        assert_eq!(route, Ok(0));
    }
    // gic_cpu_config on every CPU: SGIs/PPIs disabled, priority 0xa0.
    for cpu in 0..4 {
        let sgi = l.m.sgi(cpu);
        assert_eq!(l.m.readl(sgi + GICD_ISENABLER), 0);
        assert_eq!(l.m.readl(sgi + GICD_IPRIORITYR + 0x1c), GICD_INT_DEF_PRI_X4);
        assert_eq!(l.m.readl(sgi + GICR_IGROUPR0), !0);
    }
    // Nothing was injected or acknowledged while booting.
    assert!(l.m.hyp.events.is_empty(), "{:?}", l.m.hyp.events);
}

#[test]
fn gic_ipi_send_mask_reaches_other_cpus() {
    let mut l = booted();
    // set_smp_ipi_range -> enable_percpu_irq on each CPU: gic_unmask_irq in its redistributor.
    for cpu in 0..4 {
        l.cpu = cpu;
        for ipi in 0..8 {
            assert_eq!(l.gic_set_type(ipi, IRQ_TYPE_EDGE_RISING), 0);
            l.gic_unmask_irq(ipi);
        }
    }
    // CPU0 IPIs CPUs 1 and 2 (one ICC_SGI1R_EL1 write: cluster 0, target list 0b110).
    l.cpu = 0;
    l.gic_ipi_send_mask(IPI_RESCHEDULE, &[1, 2]);
    assert_eq!(l.m.hyp.injected(1), [IPI_RESCHEDULE]);
    assert_eq!(l.m.hyp.injected(2), [IPI_RESCHEDULE]);
    assert!(l.m.hyp.injected(0).is_empty() && l.m.hyp.injected(3).is_empty());
    for cpu in [1, 2] {
        assert!(l.m.gic.has_pending(VcpuId(cpu as u8)));
        assert_eq!(l.gic_handle_irq(cpu, |_, _| {}), Some(IPI_RESCHEDULE));
        assert!(!l.m.gic.has_pending(VcpuId(cpu as u8)));
    }
    // CPU3 calls a function on every other CPU, itself included in a second call.
    l.cpu = 3;
    l.m.hyp.take_events();
    l.gic_ipi_send_mask(IPI_CALL_FUNC, &[0, 1, 2]);
    l.gic_ipi_send_mask(IPI_CALL_FUNC, &[3]);
    for cpu in 0..4 {
        assert_eq!(l.m.hyp.injected(cpu as u8), [IPI_CALL_FUNC], "cpu{cpu}");
        assert_eq!(l.gic_handle_irq(cpu, |_, _| {}), Some(IPI_CALL_FUNC));
    }
    l.m.check_shadow();
    assert!(
        l.m.hyp.acks().is_empty(),
        "SGIs are not acknowledged to the kernel"
    );
}

#[test]
fn vtimer_ppi_ack_vppi_after_eoi() {
    let mut l = booted();
    // arch_timer: the device tree says level-low; enable_percpu_irq on every CPU.
    for cpu in 0..4 {
        l.cpu = cpu;
        assert_eq!(l.gic_set_type(VTIMER_PPI, IRQ_TYPE_LEVEL_LOW), 0);
        l.gic_unmask_irq(VTIMER_PPI);
    }
    let v1 = VcpuId(1);
    l.m.gic.vppi(&mut l.m.hyp, v1, VTIMER_PPI);
    assert_eq!(l.m.hyp.injected(1), [VTIMER_PPI]);
    assert!(
        l.m.hyp.acks().is_empty(),
        "not re-armed before the guest's EOI"
    );
    // The guest's timer handler runs; at its EOI the VMM re-arms the kernel's vPPI.
    assert_eq!(l.gic_handle_irq(1, |_, _| {}), Some(VTIMER_PPI));
    let ev = l.m.hyp.take_events();
    let eoi = ev
        .iter()
        .position(|e| matches!(e, Ev::Eoi(v, _, 27) if *v == v1));
    let ack = ev.iter().position(|e| *e == Ev::AckVppi(v1, VTIMER_PPI));
    assert!(eoi.unwrap() < ack.unwrap(), "{ev:?}");
    assert_eq!(
        ev.iter().filter(|e| matches!(e, Ev::AckVppi(..))).count(),
        1
    );

    // CPU2 masked its timer (disable_percpu_irq): the event is remembered, not injected and
    // not re-armed, until the guest unmasks it.
    l.cpu = 2;
    l.gic_mask_irq(VTIMER_PPI);
    l.m.gic.vppi(&mut l.m.hyp, VcpuId(2), VTIMER_PPI);
    assert!(l.m.hyp.take_events().is_empty());
    assert!(l.gic_peek_irq(VTIMER_PPI, 0x200), "reads pending");
    l.gic_unmask_irq(VTIMER_PPI);
    assert_eq!(l.m.hyp.injected(2), [VTIMER_PPI]);
    assert_eq!(l.gic_handle_irq(2, |_, _| {}), Some(VTIMER_PPI));
    assert_eq!(l.m.hyp.acks(), [Ev::AckVppi(VcpuId(2), VTIMER_PPI)]);
    assert!(!l.gic_peek_irq(VTIMER_PPI, 0x200));
}

#[test]
fn passthrough_level_spi_acked_after_eoi() {
    let mut l = booted();
    // request_irq for the HSP mailbox: gic_set_type from the device tree (level-high, which
    // the pass-through configuration already is), then affinity to CPU3, then unmask.
    assert_eq!(l.gic_set_type(HSP_SHARED0, IRQ_TYPE_LEVEL_HIGH), 0);
    // The trigger of a pass-through interrupt is the board's: an edge request is refused.
    assert_eq!(l.gic_set_type(HSP_SHARED0, IRQ_TYPE_EDGE_RISING), -EINVAL);
    assert_eq!(l.gic_set_affinity(HSP_SHARED0, 3), 0);
    l.gic_unmask_irq(HSP_SHARED0);

    for round in 0..3 {
        l.m.gic.physical_irq(&mut l.m.hyp, HSP_SHARED0);
        assert_eq!(l.m.hyp.injected(3), [HSP_SHARED0], "round {round}");
        assert!(l.m.hyp.acks().is_empty(), "not acknowledged before the EOI");
        assert_eq!(l.gic_handle_irq(3, |_, _| {}), Some(HSP_SHARED0));
        let ev = l.m.hyp.take_events();
        let eoi = ev
            .iter()
            .position(|e| matches!(e, Ev::Eoi(VcpuId(3), _, i) if *i == HSP_SHARED0))
            .unwrap();
        let acks: Vec<usize> = ev
            .iter()
            .enumerate()
            .filter(|(_, e)| **e == Ev::AckIrq(HSP_SHARED0))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(acks.len(), 1, "acknowledged exactly once: {ev:?}");
        assert!(eoi < acks[0]);
    }

    // Masked by the guest (disable_irq): held pending, the physical line stays masked.
    l.gic_mask_irq(HSP_SHARED0);
    l.m.gic.physical_irq(&mut l.m.hyp, HSP_SHARED0);
    assert!(l.m.hyp.take_events().is_empty());
    assert!(l.gic_peek_irq(HSP_SHARED0, 0x200));
    // Moved to CPU1 while masked, then unmasked: delivered there, acknowledged after EOI.
    assert_eq!(l.gic_set_affinity(HSP_SHARED0, 1), 0);
    l.gic_unmask_irq(HSP_SHARED0);
    assert_eq!(l.m.hyp.injected(1), [HSP_SHARED0]);
    assert!(l.m.hyp.acks().is_empty());
    assert_eq!(l.gic_handle_irq(1, |_, _| {}), Some(HSP_SHARED0));
    assert_eq!(l.m.hyp.acks(), [Ev::AckIrq(HSP_SHARED0)]);
}

#[test]
fn passthrough_level_spi_never_eoied_does_not_storm() {
    let mut l = booted();
    assert_eq!(l.gic_set_type(HSP_SHARED0, IRQ_TYPE_LEVEL_HIGH), 0);
    assert_eq!(l.gic_set_affinity(HSP_SHARED0, 3), 0);
    l.gic_unmask_irq(HSP_SHARED0);
    l.m.gic.physical_irq(&mut l.m.hyp, HSP_SHARED0);
    assert_eq!(l.m.hyp.injected(3), [HSP_SHARED0]);
    // The guest never takes it (a vCPU stuck with interrupts off). The physical line is not
    // acknowledged, so the GIC does not deliver it again; should it (a spurious delivery),
    // the pending interrupt is not injected a second time nor acknowledged.
    for _ in 0..100 {
        l.m.gic.physical_irq(&mut l.m.hyp, HSP_SHARED0);
    }
    assert_eq!(l.m.hyp.injected(3), [HSP_SHARED0]);
    assert!(l.m.hyp.acks().is_empty());
}

#[test]
fn emulated_level_spi_reinjected_while_asserted() {
    let mut l = booted();
    // The PCI host bridge's INTA (virtio-blk): level-high per the interrupt-map.
    assert_eq!(l.gic_set_type(VIRTIO_INTA, IRQ_TYPE_LEVEL_HIGH), 0);
    assert_eq!(l.gic_set_affinity(VIRTIO_INTA, 2), 0);
    l.gic_unmask_irq(VIRTIO_INTA);

    l.m.gic.set_level(&mut l.m.hyp, VIRTIO_INTA, true);
    assert_eq!(l.m.hyp.injected(2), [VIRTIO_INTA]);
    // The first handler run does not read the ISR (the line stays high): after the EOI the
    // interrupt comes back.
    assert_eq!(l.gic_handle_irq(2, |_, _| {}), Some(VIRTIO_INTA));
    assert_eq!(l.m.hyp.injected(2), [VIRTIO_INTA, VIRTIO_INTA]);
    // The second reads the ISR, which lowers the line, before the EOI: it does not.
    let handled = l.gic_handle_irq(2, |m, intid| {
        m.gic.set_level(&mut m.hyp, intid, false);
    });
    assert_eq!(handled, Some(VIRTIO_INTA));
    assert_eq!(l.m.hyp.injected(2).len(), 2);
    assert!(!l.m.gic.has_pending(VcpuId(2)));
    assert!(
        l.m.hyp.acks().is_empty(),
        "emulated lines are not kernel interrupts"
    );
}

#[test]
fn everything_at_once_on_four_list_registers() {
    let mut l = booted();
    for cpu in 0..4 {
        l.cpu = cpu;
        for ipi in 0..8 {
            l.gic_unmask_irq(ipi);
        }
        l.gic_unmask_irq(VTIMER_PPI);
    }
    l.cpu = 0;
    for (intid, cpu) in [(HSP_SHARED0, 0), (VIRTIO_INTA, 0), (HSP_SHARED0 + 1, 0)] {
        assert_eq!(l.gic_set_type(intid, IRQ_TYPE_LEVEL_HIGH), 0);
        assert_eq!(l.gic_set_affinity(intid, cpu), 0);
        l.gic_unmask_irq(intid);
    }
    // Six interrupts for CPU0 at once: four fit, two wait for EOIs.
    l.cpu = 1;
    l.gic_ipi_send_mask(IPI_RESCHEDULE, &[0]);
    l.gic_ipi_send_mask(IPI_CALL_FUNC, &[0]);
    l.m.gic.vppi(&mut l.m.hyp, VcpuId(0), VTIMER_PPI);
    l.m.gic.physical_irq(&mut l.m.hyp, HSP_SHARED0);
    l.m.gic.physical_irq(&mut l.m.hyp, HSP_SHARED0 + 1);
    l.m.gic.set_level(&mut l.m.hyp, VIRTIO_INTA, true);
    assert_eq!(l.m.hyp.injected(0).len(), 4);
    l.m.check_shadow();
    let mut seen = Vec::new();
    while let Some(i) = l.gic_handle_irq(0, |m, intid| {
        if intid == VIRTIO_INTA {
            m.gic.set_level(&mut m.hyp, intid, false);
        }
    }) {
        seen.push(i);
        l.m.check_shadow();
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        [
            IPI_RESCHEDULE,
            IPI_CALL_FUNC,
            VTIMER_PPI,
            HSP_SHARED0,
            HSP_SHARED0 + 1,
            VIRTIO_INTA
        ]
    );
    let mut acks = l.m.hyp.acks();
    acks.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        acks,
        [
            Ev::AckIrq(HSP_SHARED0),
            Ev::AckIrq(HSP_SHARED0 + 1),
            Ev::AckVppi(VcpuId(0), VTIMER_PPI)
        ]
    );
}
