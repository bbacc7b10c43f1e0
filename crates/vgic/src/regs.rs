//! Register offsets and fields of the emulated GICv3 (Arm IHI 0069, chapter 12), under the
//! specification's names.

/// Offsets into the distributor frame (GICD).
pub mod gicd {
    /// Distributor Control Register.
    pub const CTLR: u64 = 0x0000;
    /// Interrupt Controller Type Register.
    pub const TYPER: u64 = 0x0004;
    /// Distributor Implementer Identification Register.
    pub const IIDR: u64 = 0x0008;
    /// Interrupt Controller Type Register 2.
    pub const TYPER2: u64 = 0x000c;
    /// Error Reporting Status Register (optional: RAZ/WI here).
    pub const STATUSR: u64 = 0x0010;
    /// Set SPI Register, Non-secure (message-based SPIs: not implemented, reserved).
    pub const SETSPI_NSR: u64 = 0x0040;
    /// Interrupt Group Registers.
    pub const IGROUPR: u64 = 0x0080;
    /// Interrupt Set-Enable Registers.
    pub const ISENABLER: u64 = 0x0100;
    /// Interrupt Clear-Enable Registers.
    pub const ICENABLER: u64 = 0x0180;
    /// Interrupt Set-Pending Registers.
    pub const ISPENDR: u64 = 0x0200;
    /// Interrupt Clear-Pending Registers.
    pub const ICPENDR: u64 = 0x0280;
    /// Interrupt Set-Active Registers.
    pub const ISACTIVER: u64 = 0x0300;
    /// Interrupt Clear-Active Registers.
    pub const ICACTIVER: u64 = 0x0380;
    /// Interrupt Priority Registers (byte-accessible).
    pub const IPRIORITYR: u64 = 0x0400;
    /// Interrupt Processor Targets Registers (RES0 with affinity routing; byte-accessible).
    pub const ITARGETSR: u64 = 0x0800;
    /// Interrupt Configuration Registers.
    pub const ICFGR: u64 = 0x0c00;
    /// Interrupt Group Modifier Registers (RAZ/WI to Non-secure accesses).
    pub const IGRPMODR: u64 = 0x0d00;
    /// Non-secure Access Control Registers (RAZ/WI to Non-secure accesses).
    pub const NSACR: u64 = 0x0e00;
    /// Software Generated Interrupt Register (RES0 with affinity routing).
    pub const SGIR: u64 = 0x0f00;
    /// SGI Clear-Pending Registers (RES0 with affinity routing).
    pub const CPENDSGIR: u64 = 0x0f10;
    /// SGI Set-Pending Registers (RES0 with affinity routing).
    pub const SPENDSGIR: u64 = 0x0f20;
    /// Interrupt Routing Registers (64-bit, INTID 32..1019 at `IROUTER + 8 * INTID`).
    pub const IROUTER: u64 = 0x6000;
    /// Peripheral ID2 Register.
    pub const PIDR2: u64 = 0xffe8;

    /// CTLR: Register Write Pending (always 0: writes take effect at once).
    pub const CTLR_RWP: u32 = 1 << 31;
    /// CTLR: Affinity Routing Enable, Non-secure (RAO/WI).
    pub const CTLR_ARE_NS: u32 = 1 << 4;
    /// CTLR: Enable Non-secure Group 1 interrupts (`EnableGrp1A` in the Non-secure view).
    pub const CTLR_ENABLE_G1A: u32 = 1 << 1;
    /// CTLR bit 0: `EnableGrp1` of the legacy (ARE_NS = 0) view; RES0 here.
    pub const CTLR_ENABLE_G1: u32 = 1 << 0;
    /// CTLR: Disable Security (reads 0: the guest has the Non-secure view).
    pub const CTLR_DS: u32 = 1 << 6;

    /// TYPER: the system supports two Security states (the guest is Non-secure).
    pub const TYPER_SECURITY_EXTN: u32 = 1 << 10;
    /// TYPER: message-based SPIs.
    pub const TYPER_MBIS: u32 = 1 << 16;
    /// TYPER: LPIs.
    pub const TYPER_LPIS: u32 = 1 << 17;
    /// TYPER: extended SPI range.
    pub const TYPER_ESPI: u32 = 1 << 8;
    /// TYPER: 1-of-N SPI routing not supported.
    pub const TYPER_NO1N: u32 = 1 << 25;
    /// TYPER: Range Selector support (Aff0 above 15).
    pub const TYPER_RSS: u32 = 1 << 26;
    /// TYPER: IDbits field shift (number of INTID bits minus one).
    pub const TYPER_IDBITS_SHIFT: u32 = 19;

    /// IROUTER: Interrupt_Routing_Mode (1: any participating PE, "1 of N").
    pub const IROUTER_IRM: u64 = 1 << 31;
}

/// Offsets into a redistributor's RD_base frame (GICR, first 64 KiB).
pub mod gicr {
    /// Redistributor Control Register.
    pub const CTLR: u64 = 0x0000;
    /// Redistributor Implementer Identification Register.
    pub const IIDR: u64 = 0x0004;
    /// Redistributor Type Register (64-bit).
    pub const TYPER: u64 = 0x0008;
    /// Error Reporting Status Register (optional: RAZ/WI here).
    pub const STATUSR: u64 = 0x0010;
    /// Redistributor Wake Register.
    pub const WAKER: u64 = 0x0014;
    /// Redistributor Properties Base Address Register (LPIs: not implemented, reserved).
    pub const PROPBASER: u64 = 0x0070;
    /// Peripheral ID2 Register.
    pub const PIDR2: u64 = 0xffe8;

    /// Offset of the SGI_base frame from RD_base.
    pub const SGI_BASE: u64 = 0x1_0000;

    /// CTLR: Register Write Pending (always 0).
    pub const CTLR_RWP: u32 = 1 << 3;
    /// TYPER: physical LPIs.
    pub const TYPER_PLPIS: u64 = 1 << 0;
    /// TYPER: virtual LPIs.
    pub const TYPER_VLPIS: u64 = 1 << 1;
    /// TYPER: last redistributor in the region.
    pub const TYPER_LAST: u64 = 1 << 4;
    /// TYPER: Processor_Number field shift.
    pub const TYPER_PROCESSOR_NUMBER_SHIFT: u32 = 8;
    /// TYPER: Affinity_Value field shift.
    pub const TYPER_AFFINITY_SHIFT: u32 = 32;
    /// WAKER: ProcessorSleep.
    pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
    /// WAKER: ChildrenAsleep.
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
}

/// Offsets into a redistributor's SGI_base frame (second 64 KiB).
pub mod gicr_sgi {
    /// Interrupt Group Register 0.
    pub const IGROUPR0: u64 = 0x0080;
    /// Interrupt Set-Enable Register 0.
    pub const ISENABLER0: u64 = 0x0100;
    /// Interrupt Clear-Enable Register 0.
    pub const ICENABLER0: u64 = 0x0180;
    /// Interrupt Set-Pending Register 0.
    pub const ISPENDR0: u64 = 0x0200;
    /// Interrupt Clear-Pending Register 0.
    pub const ICPENDR0: u64 = 0x0280;
    /// Interrupt Set-Active Register 0.
    pub const ISACTIVER0: u64 = 0x0300;
    /// Interrupt Clear-Active Register 0.
    pub const ICACTIVER0: u64 = 0x0380;
    /// Interrupt Priority Registers 0..7 (byte-accessible).
    pub const IPRIORITYR: u64 = 0x0400;
    /// SGI Configuration Register (read-only: SGIs are edge-triggered).
    pub const ICFGR0: u64 = 0x0c00;
    /// PPI Configuration Register.
    pub const ICFGR1: u64 = 0x0c04;
    /// Interrupt Group Modifier Register 0 (RAZ/WI to Non-secure accesses).
    pub const IGRPMODR0: u64 = 0x0d00;
    /// Non-secure Access Control Register (RAZ/WI to Non-secure accesses).
    pub const NSACR: u64 = 0x0e00;
}

/// ICC_SGI1R_EL1 / ICC_ASGI1R_EL1 / ICC_SGI0R_EL1 fields.
pub mod sgir {
    /// TargetList: bit n names Aff0 = RS * 16 + n.
    pub const TARGET_LIST_MASK: u64 = 0xffff;
    /// Aff1 of the targets.
    pub const AFF1_SHIFT: u32 = 16;
    /// The SGI's INTID (0..15).
    pub const INTID_SHIFT: u32 = 24;
    /// Aff2 of the targets.
    pub const AFF2_SHIFT: u32 = 32;
    /// Interrupt Routing Mode: 1 = every PE but the sender.
    pub const IRM_BIT: u32 = 40;
    /// Range Selector.
    pub const RS_SHIFT: u32 = 44;
    /// Aff3 of the targets.
    pub const AFF3_SHIFT: u32 = 48;
}

/// Implementer identification the distributor and redistributors report: JEP106 code of Arm
/// (0x43b) with product ID 0x53 ("S"), revision 0. Not zero and none of the values Linux
/// 6.1's `gic_quirks` table matches (0x00000000 is HIP07's erratum entry).
pub const IIDR: u32 = 0x5300_043b;

/// ArchRev 3 (GICv3) in PIDR2 bits 7:4, JEDEC-assigned designer bits as Arm's.
pub const PIDR2: u32 = 0x3b;

/// The ID registers at 0xffd0..=0xfffc (PIDR4..7, PIDR0..3, CIDR0..3) of the distributor.
pub(crate) const GICD_IDS: [u32; 12] = [
    0x04, 0x00, 0x00, 0x00, 0x92, 0xb4, PIDR2, 0x00, 0x0d, 0xf0, 0x05, 0xb1,
];
/// The same for a redistributor (part number 0x493).
pub(crate) const GICR_IDS: [u32; 12] = [
    0x04, 0x00, 0x00, 0x00, 0x93, 0xb4, PIDR2, 0x00, 0x0d, 0xf0, 0x05, 0xb1,
];
/// First ID register offset.
pub(crate) const ID_BASE: u64 = 0xffd0;
