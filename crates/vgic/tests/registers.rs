//! Register behaviour of the distributor and redistributor frames, every offset at every
//! width, and random guest accesses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use arm_fault::AccessSize::{self, Byte, Double, Half, Word};
use common::Machine;
use hypervisor::VcpuId;
use irqchip::InterruptController;
use mmio_bus::MmioError;
use proptest::prelude::*;
use vgic::regs::{gicd, gicr, gicr_sgi};
use vmm_platform::{ORIN_AGX, QEMU_VIRT};

const WIDTHS: [AccessSize; 4] = [Byte, Half, Word, Double];

#[test]
fn distributor_identification() {
    let mut m = Machine::new(&ORIN_AGX, 4);
    let d = m.gicd();
    let typer = m.readl(d + gicd::TYPER);
    assert_eq!(
        typer & 0x1f,
        14,
        "ITLinesNumber: SPIs up to INTID 479 (max SPI 419 + 32)"
    );
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits: 10-bit INTIDs");
    assert_ne!(typer & gicd::TYPER_SECURITY_EXTN, 0);
    for bit in [
        gicd::TYPER_LPIS,
        gicd::TYPER_MBIS,
        gicd::TYPER_ESPI,
        gicd::TYPER_NO1N,
        gicd::TYPER_RSS,
    ] {
        assert_eq!(typer & bit, 0, "TYPER bit {bit:#x}");
    }
    assert_eq!(m.gic.nr_irqs(), 480);
    assert_eq!(m.readl(d + gicd::TYPER2), 0);
    assert_eq!(m.readl(d + gicd::IIDR), vgic::regs::IIDR);
    assert_eq!(m.readl(d + gicd::PIDR2) & 0xf0, 0x30, "ArchRev 3");
    assert_eq!(m.readl(d + gicd::STATUSR), 0);

    let mut q = Machine::new(&QEMU_VIRT, 4);
    let qd = q.gicd();
    assert_eq!(
        q.readl(qd + gicd::TYPER) & 0x1f,
        1,
        "QEMU: SPIs up to INTID 63"
    );
    assert_eq!(q.gic.nr_irqs(), 64);
}

#[test]
fn distributor_ctlr() {
    let mut m = Machine::new(&QEMU_VIRT, 4);
    let a = m.gicd() + gicd::CTLR;
    assert_eq!(m.readl(a), gicd::CTLR_ARE_NS, "ARE_NS reads one at reset");
    m.writel(a, 0);
    assert_eq!(m.readl(a), gicd::CTLR_ARE_NS, "and ignores writes");
    m.writel(a, u32::MAX);
    assert_eq!(
        m.readl(a),
        gicd::CTLR_ARE_NS | gicd::CTLR_ENABLE_G1A,
        "RWP, DS and the legacy EnableGrp1 bit read zero"
    );
    m.writel(a, gicd::CTLR_ENABLE_G1);
    assert_eq!(m.readl(a), gicd::CTLR_ARE_NS);
}

#[test]
fn redistributor_identification_and_typer() {
    let mut m = Machine::new(&ORIN_AGX, 4);
    for v in 0..4usize {
        let rd = m.rd(v);
        let t64 = m.read(0, rd + gicr::TYPER, Double).unwrap();
        let lo = m.read(0, rd + gicr::TYPER, Word).unwrap();
        let hi = m.read(0, rd + gicr::TYPER + 4, Word).unwrap();
        assert_eq!(t64, hi << 32 | lo, "32-bit halves");
        assert_eq!(t64 >> 32, v as u64, "Affinity_Value = MPIDR (Aff0 = index)");
        assert_eq!((t64 >> 8) & 0xffff, v as u64, "Processor_Number");
        assert_eq!(t64 & gicr::TYPER_LAST != 0, v == 3, "Last on the last only");
        assert_eq!(t64 & (gicr::TYPER_PLPIS | gicr::TYPER_VLPIS), 0);
        assert_eq!((t64 >> 27) & 0x1f, 0, "PPInum: 16 PPIs");
        assert_eq!(m.readl(rd + gicr::PIDR2) & 0xf0, 0x30);
        assert_eq!(m.readl(rd + gicr::IIDR), vgic::regs::IIDR);
        assert_eq!(m.readl(rd + gicr::CTLR) & gicr::CTLR_RWP, 0);
        assert_eq!(
            m.write(0, rd + gicr::TYPER, Double, 0),
            Err(MmioError::ReadOnly)
        );
    }
    // Past the last redistributor is nobody's.
    let past = m.rd(4);
    assert!(!m.gic.handles(guest_mem::GuestPhysAddr(past)));
    let addr = guest_mem::GuestPhysAddr(past);
    assert_eq!(m.gic.mmio_read(&mut m.hyp, VcpuId(0), addr, Word), None);
    assert_eq!(m.gic.mmio_write(&mut m.hyp, VcpuId(0), addr, Word, 1), None);
    // Nor the addresses just before the distributor and just after it.
    for a in [m.platform.gic.dist.0 - 4, m.platform.gic.dist.0 + 0x1_0000] {
        let addr = guest_mem::GuestPhysAddr(a);
        assert!(!m.gic.handles(addr));
        assert_eq!(m.gic.mmio_read(&mut m.hyp, VcpuId(0), addr, Word), None);
    }
}

#[test]
fn waker_handshake() {
    let mut m = Machine::new(&QEMU_VIRT, 2);
    let w = m.rd(1) + gicr::WAKER;
    let asleep = gicr::WAKER_PROCESSOR_SLEEP | gicr::WAKER_CHILDREN_ASLEEP;
    assert_eq!(m.readl(w), asleep, "asleep at reset");
    m.writel(w, 0);
    assert_eq!(
        m.readl(w),
        0,
        "ChildrenAsleep follows ProcessorSleep at once"
    );
    m.writel(w, gicr::WAKER_PROCESSOR_SLEEP);
    assert_eq!(m.readl(w), asleep);
    m.writel(w, gicr::WAKER_CHILDREN_ASLEEP | 1 | 1 << 31);
    assert_eq!(
        m.readl(w),
        0,
        "ChildrenAsleep is read-only, IMPDEF bits RAZ/WI"
    );
}

#[test]
fn priorities_by_byte_and_word() {
    let mut m = Machine::new(&QEMU_VIRT, 2);
    let d = m.gicd() + gicd::IPRIORITYR;
    m.writel(d + 40, 0x1122_3344);
    for (i, b) in [0x44u64, 0x33, 0x22, 0x11].into_iter().enumerate() {
        assert_eq!(m.read(0, d + 40 + i as u64, Byte), Ok(b));
    }
    m.write(0, d + 42, Byte, 0xf0).unwrap();
    assert_eq!(m.readl(d + 40), 0x11f0_3344);
    // SGIs and PPIs: the redistributor's, per vCPU; the distributor's bytes 0..31 RAZ/WI.
    m.writel(d, 0xffff_ffff);
    assert_eq!(m.readl(d), 0);
    let s0 = m.sgi(0) + gicr_sgi::IPRIORITYR;
    let s1 = m.sgi(1) + gicr_sgi::IPRIORITYR;
    m.write(0, s0 + 27, Byte, 0x80).unwrap();
    assert_eq!(m.read(0, s0 + 27, Byte), Ok(0x80));
    assert_eq!(m.read(0, s1 + 27, Byte), Ok(0));
    assert_eq!(m.read(0, s0 + 24, Word), Ok(0x8000_0000));
    assert_eq!(m.read(0, s0 + 0x20, Word), Err(MmioError::NoRegister));
    // INTIDs the distributor does not implement (QEMU: 64 and up).
    m.write(0, d + 64, Byte, 0x55).unwrap();
    assert_eq!(m.read(0, d + 64, Byte), Ok(0));
    m.write(0, d + 1019, Byte, 0x55).unwrap();
    assert_eq!(m.read(0, d + 1019, Byte), Ok(0));
    assert_eq!(m.read(0, d + 1020, Byte), Err(MmioError::NoRegister));
}

#[test]
fn configuration_registers() {
    static PT: &[vmm_platform::PassthroughIrq] = &[
        vmm_platform::PassthroughIrq {
            name: "level",
            spi: vmm_platform::Spi(8),
            trigger: vmm_platform::Trigger::Level,
        },
        vmm_platform::PassthroughIrq {
            name: "edge",
            spi: vmm_platform::Spi(9),
            trigger: vmm_platform::Trigger::Edge,
        },
    ];
    let mut m = Machine::new(&common::platform(2, PT), 4);
    let sgi = m.sgi(0);
    // SGIs: edge, read-only.
    assert_eq!(m.readl(sgi + gicr_sgi::ICFGR0), 0xaaaa_aaaa);
    m.writel(sgi + gicr_sgi::ICFGR0, 0);
    assert_eq!(m.readl(sgi + gicr_sgi::ICFGR0), 0xaaaa_aaaa);
    // PPIs: level at reset, programmable, except the kernel-backed virtual timer (27).
    assert_eq!(m.readl(sgi + gicr_sgi::ICFGR1), 0);
    m.writel(sgi + gicr_sgi::ICFGR1, 0xffff_ffff);
    assert_eq!(
        m.readl(sgi + gicr_sgi::ICFGR1),
        0xaaaa_aaaa & !(2 << (2 * (27 - 16)))
    );
    // SPIs 40 (SPI 8, level pass-through) and 41 (SPI 9, edge pass-through) are fixed.
    let cfg = m.gicd() + gicd::ICFGR + 40 / 16 * 4;
    let bit = |intid: u32| 2u32 << (2 * (intid % 16));
    assert_eq!(m.readl(cfg), bit(41));
    m.writel(cfg, 0xffff_ffff);
    assert_eq!(
        m.readl(cfg),
        0xaaaa_aaaa & !bit(40),
        "the others are programmable"
    );
    m.writel(cfg, 0);
    assert_eq!(m.readl(cfg), bit(41));
    // Distributor ICFGR0/1 (SGIs and PPIs) are RAZ/WI with affinity routing.
    m.writel(m.gicd() + gicd::ICFGR, u32::MAX);
    assert_eq!(m.readl(m.gicd() + gicd::ICFGR), 0);
}

#[test]
fn routing_registers() {
    let mut m = Machine::new(&ORIN_AGX, 4);
    let r = |intid: u64| 0x0f40_0000 + gicd::IROUTER + 8 * intid;
    m.write(0, r(100), Double, 0x00ff_0000_8003_0201).unwrap();
    assert_eq!(
        m.read(0, r(100), Double),
        Ok(0x8003_0201),
        "IRM and Aff2..0 stick; Aff3 is RES0 (A3V = 0)"
    );
    m.write(0, r(100) + 4, Word, 0x12).unwrap();
    m.write(0, r(100), Word, 0x3).unwrap();
    assert_eq!(m.read(0, r(100), Double), Ok(3));
    assert_eq!(m.read(0, r(100) + 4, Word), Ok(0));
    assert_eq!(m.read(0, r(100) + 4, Double), Err(MmioError::BadWidth));
    // Past ITLinesNumber: RAZ/WI. Below 32 and past 1019: reserved.
    m.write(0, r(500), Double, 1).unwrap();
    assert_eq!(m.read(0, r(500), Double), Ok(0));
    assert_eq!(m.read(0, r(31), Double), Err(MmioError::NoRegister));
    assert_eq!(m.read(0, r(1020), Double), Err(MmioError::NoRegister));
}

#[test]
fn bit_registers() {
    let mut m = Machine::new(&ORIN_AGX, 4);
    let d = m.gicd();
    // IGROUPR: every implemented interrupt is Group 1, fixed.
    m.writel(d + gicd::IGROUPR + 4, 0);
    assert_eq!(m.readl(d + gicd::IGROUPR + 4), u32::MAX);
    assert_eq!(m.readl(d + gicd::IGROUPR), 0, "word 0: the redistributors'");
    assert_eq!(m.readl(d + gicd::IGROUPR + 4 * 15), 0, "past ITLinesNumber");
    assert_eq!(m.readl(m.sgi(2) + gicr_sgi::IGROUPR0), u32::MAX);
    // Set/clear pairs.
    for (set, clear) in [
        (gicd::ISENABLER, gicd::ICENABLER),
        (gicd::ISPENDR, gicd::ICPENDR),
        (gicd::ISACTIVER, gicd::ICACTIVER),
    ] {
        m.writel(d + set + 8, 0x0000_ff00);
        m.writel(d + set + 8, 0x0f00_0000);
        assert_eq!(m.readl(d + set + 8), 0x0f00_ff00, "{set:#x}");
        assert_eq!(m.readl(d + clear + 8), 0x0f00_ff00, "{clear:#x}");
        m.writel(d + clear + 8, 0x0000_0f00);
        assert_eq!(m.readl(d + set + 8), 0x0f00_f000);
        // The same through the redistributor, per vCPU.
        let s = m.sgi(1);
        m.writel(s + set, 0x8000_0001);
        assert_eq!(m.readl(s + clear), 0x8000_0001);
        assert_eq!(m.readl(m.sgi(0) + set), 0);
        // The distributor's word 0 and words naming unimplemented INTIDs: RAZ/WI.
        m.writel(d + set, u32::MAX);
        assert_eq!(m.readl(d + set), 0);
        m.writel(d + set + 4 * 20, u32::MAX);
        assert_eq!(m.readl(d + set + 4 * 20), 0);
    }
}

#[test]
fn raz_wi_registers() {
    let mut m = Machine::new(&QEMU_VIRT, 2);
    let d = m.gicd();
    for (off, size) in [
        (gicd::ITARGETSR + 40, Byte),
        (gicd::ITARGETSR + 40, Word),
        (gicd::IGRPMODR + 4, Word),
        (gicd::NSACR + 8, Word),
        (gicd::SGIR, Word),
        (gicd::CPENDSGIR, Byte),
        (gicd::SPENDSGIR + 4, Word),
        (gicd::STATUSR, Word),
    ] {
        m.write(0, d + off, size, u64::MAX).unwrap();
        assert_eq!(m.read(0, d + off, size), Ok(0), "{off:#x}");
    }
    for off in [gicr_sgi::IGRPMODR0, gicr_sgi::NSACR] {
        let a = m.sgi(0) + off;
        m.writel(a, u32::MAX);
        assert_eq!(m.readl(a), 0);
    }
    // Reserved (no LPIs, no message-based SPIs): refused, so the loop logs them once.
    for a in [
        d + gicd::SETSPI_NSR,
        m.rd(0) + gicr::PROPBASER,
        d + 0x1000,
        d + 0x8000,
    ] {
        assert_eq!(m.read(0, a, Word), Err(MmioError::NoRegister), "{a:#x}");
    }
    assert_eq!(
        m.write(0, d + gicd::TYPER, Word, 0),
        Err(MmioError::ReadOnly)
    );
    assert_eq!(
        m.write(0, d + gicd::PIDR2, Word, 0),
        Err(MmioError::ReadOnly)
    );
}

#[test]
fn access_widths() {
    let mut m = Machine::new(&QEMU_VIRT, 2);
    let d = m.gicd();
    let ok = |m: &mut Machine, a: u64, s: AccessSize| m.read(0, a, s).is_ok();
    // 32-bit only.
    for off in [
        gicd::CTLR,
        gicd::TYPER,
        gicd::ISENABLER + 4,
        gicd::ICFGR + 8,
    ] {
        assert!(ok(&mut m, d + off, Word));
        for s in [Byte, Half, Double] {
            assert_eq!(
                m.read(0, d + off, s),
                Err(MmioError::BadWidth),
                "{off:#x} {s:?}"
            );
            assert_eq!(m.write(0, d + off, s, 0), Err(MmioError::BadWidth));
        }
    }
    // Byte and word.
    for s in [Byte, Word] {
        assert!(ok(&mut m, d + gicd::IPRIORITYR + 32, s));
        assert!(ok(&mut m, d + gicd::ITARGETSR + 32, s));
    }
    assert_eq!(
        m.read(0, d + gicd::IPRIORITYR + 32, Half),
        Err(MmioError::BadWidth)
    );
    assert_eq!(
        m.read(0, d + gicd::IPRIORITYR + 32, Double),
        Err(MmioError::BadWidth)
    );
    assert_eq!(
        m.read(0, d + gicd::IPRIORITYR + 33, Word),
        Err(MmioError::BadWidth)
    );
    // Word and doubleword.
    assert!(ok(&mut m, d + gicd::IROUTER + 8 * 40, Double));
    assert!(ok(&mut m, d + gicd::IROUTER + 8 * 40 + 4, Word));
    assert_eq!(
        m.read(0, d + gicd::IROUTER + 8 * 40, Byte),
        Err(MmioError::BadWidth)
    );
    let rd = m.rd(1);
    assert!(ok(&mut m, rd + gicr::TYPER, Double));
    assert!(ok(&mut m, rd + gicr::TYPER + 4, Word));
    assert_eq!(m.read(0, rd + gicr::WAKER, Byte), Err(MmioError::BadWidth));
}

/// Every offset of every frame at every width, read and written: no panic, and a defined
/// result: reads fit the width and repeat, a refused write is refused for the same reason as
/// the read (or because the register is read-only), and nothing is injected.
#[test]
fn every_offset_every_width() {
    let mut m = Machine::new(&ORIN_AGX, 4);
    // Nothing deliverable: interrupts may become pending and enabled, but no vCPU is online.
    let frames = [m.gicd(), m.rd(0), m.sgi(0), m.rd(3), m.sgi(3)];
    let mut counts = [0usize; 4];
    for base in frames {
        for off in 0..0x1_0000u64 {
            for s in WIDTHS {
                let a = base + off;
                let r1 = m.read(0, a, s);
                let r2 = m.read(1, a, s);
                assert_eq!(r1, r2, "{a:#x} {s:?}");
                match r1 {
                    Ok(v) => {
                        assert_eq!(v & !s.mask(), 0, "{a:#x} {s:?} read {v:#x}");
                        counts[0] += 1;
                    }
                    Err(MmioError::NoRegister) => counts[1] += 1,
                    Err(MmioError::BadWidth) => counts[2] += 1,
                    Err(e) => panic!("{a:#x} {s:?}: read gave {e:?}"),
                }
                let w = m.write(2, a, s, 0xa5a5_a5a5_a5a5_a5a5);
                match (r1, w) {
                    (Ok(_), Ok(())) | (Ok(_), Err(MmioError::ReadOnly)) => {}
                    (Err(e), Err(f)) => assert_eq!(e, f, "{a:#x} {s:?}"),
                    (r, w) => panic!("{a:#x} {s:?}: read {r:?} but write {w:?}"),
                }
                if w == Err(MmioError::ReadOnly) {
                    counts[3] += 1;
                }
            }
        }
    }
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    assert!(m.hyp.events.is_empty());
    // Half-word accesses are never allowed.
    for base in frames {
        for off in (0..0x1_0000u64).step_by(2) {
            assert!(m.read(0, base + off, Half).is_err());
        }
    }
}

/// Writes naming INTIDs past the implemented range are ignored, in every register.
#[test]
fn out_of_range_intids() {
    let mut m = Machine::new(&QEMU_VIRT, 2); // 64 INTIDs
    m.bring_up(2);
    let d = m.gicd();
    for reg in [
        gicd::ISENABLER,
        gicd::ISPENDR,
        gicd::ISACTIVER,
        gicd::IGROUPR,
    ] {
        for n in 2..32u64 {
            m.writel(d + reg + 4 * n, u32::MAX);
            assert_eq!(m.readl(d + reg + 4 * n), 0);
        }
    }
    for n in 4..64u64 {
        m.writel(d + gicd::ICFGR + 4 * n, u32::MAX);
        assert_eq!(m.readl(d + gicd::ICFGR + 4 * n), 0);
    }
    for intid in 64..1020u64 {
        m.write(0, d + gicd::IROUTER + 8 * intid, Double, u64::MAX)
            .unwrap();
        assert_eq!(m.read(0, d + gicd::IROUTER + 8 * intid, Double), Ok(0));
    }
    assert!(m.hyp.events.is_empty(), "nothing injected");
    assert!(!m.gic.has_pending(VcpuId(0)));
}

#[derive(Clone, Debug)]
enum Access {
    Read(u8, u64, AccessSize),
    Write(u8, u64, AccessSize, u64),
    Event(u8, u32, u8),
}

fn width() -> impl Strategy<Value = AccessSize> {
    prop_oneof![Just(Byte), Just(Half), Just(Word), Just(Double)]
}

fn access() -> impl Strategy<Value = Access> {
    // Offsets: anywhere in the GICD frame or the redistributor region (4 x 128 KiB plus a
    // little past), biased to the populated low registers.
    let off = prop_oneof![
        0..0x1_0000u64,
        0..0x1000u64,
        (0..4u64, 0..0x1000u64).prop_map(|(v, o)| 0x4_0000 + v * 0x2_0000 + o),
        (0..4u64, 0..0x1000u64).prop_map(|(v, o)| 0x5_0000 + v * 0x2_0000 + o),
        0x4_0000..0xd_0000u64,
        0x6000..0x8000u64,
    ];
    prop_oneof![
        (0..5u8, off.clone(), width()).prop_map(|(v, o, s)| Access::Read(v, o, s)),
        (0..5u8, off, width(), any::<u64>()).prop_map(|(v, o, s, x)| Access::Write(v, o, s, x)),
        (0..5u8, 0..1100u32, 0..8u8).prop_map(|(v, i, k)| Access::Event(v, i, k)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random guest accesses at random offsets, widths and values on both frames, mixed with
    /// interrupt events naming any INTID and vCPU, with a guest that acknowledges and EOIs:
    /// no panic, and the vGIC's list-register shadow always matches the kernel's.
    #[test]
    fn random_guest_input(accesses in prop::collection::vec(access(), 1..200)) {
        let mut m = Machine::new(&ORIN_AGX, 4);
        // Everything on and enabled, so that events inject and the guest's writes matter.
        m.bring_up(4);
        for n in 1..15 {
            let d = m.gicd();
            m.writel(d + gicd::ISENABLER + 4 * n, u32::MAX);
        }
        for v in 0..4 {
            let s = m.sgi(v);
            m.writel(s + gicr_sgi::ISENABLER0, u32::MAX);
        }
        // 0x0f40_0000: GICD; 0x0f44_0000: GICR (offsets above are from 0x0f40_0000).
        let base = 0x0f40_0000u64;
        for a in accesses {
            match a {
                // Claimed exactly when the address is in a window (`handles`).
                Access::Read(v, o, s) => {
                    let addr = guest_mem::GuestPhysAddr(base + o);
                    let r = m.gic.mmio_read(&mut m.hyp, VcpuId(v), addr, s);
                    prop_assert_eq!(r.is_some(), m.gic.handles(addr));
                    if let Some(Ok(x)) = r {
                        prop_assert_eq!(x & !s.mask(), 0);
                    }
                }
                Access::Write(v, o, s, x) => {
                    let addr = guest_mem::GuestPhysAddr(base + o);
                    let r = m.gic.mmio_write(&mut m.hyp, VcpuId(v), addr, s, x);
                    prop_assert_eq!(r.is_some(), m.gic.handles(addr));
                }
                Access::Event(v, intid, kind) => {
                    let vcpu = VcpuId(v);
                    let ok = usize::from(v) < 4;
                    match kind {
                        0 => m.gic.set_level(&mut m.hyp, intid, intid % 2 == 0),
                        1 => m.gic.physical_irq(&mut m.hyp, intid),
                        2 => m.gic.vppi(&mut m.hyp, vcpu, intid),
                        3 => {
                            let _ = m.gic.sysreg_write(
                                &mut m.hyp,
                                vcpu,
                                arm_fault::SysReg::ICC_SGI1R_EL1,
                                u64::from(intid).wrapping_mul(0x0101_0101_0001_0001),
                            );
                        }
                        4 if ok => m.power(usize::from(v), intid % 3 != 0),
                        5 if ok => {
                            let _ = m.take(usize::from(v));
                        }
                        6 => {
                            // A kernel reports EOIs only: a maintenance naming a list
                            // register that holds nothing (or does not exist).
                            let lr = intid as usize % 20;
                            let empty = !ok || m.hyp.lrs[usize::from(v)].get(lr).is_none_or(|e| e.is_none());
                            if empty {
                                m.gic.maintenance(&mut m.hyp, vcpu, Some(lr));
                            }
                        }
                        _ => m.gic.maintenance(&mut m.hyp, vcpu, None),
                    }
                }
            }
            m.check_shadow();
        }
    }
}
