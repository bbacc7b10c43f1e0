//! Decoding of AArch64 guest exits.
//!
//! seL4 reports a guest's stage-2 fault or trapped instruction with the syndrome register
//! (ESR_EL2, "HSR" in seL4's AArch32 heritage) and, for aborts, the faulting IPA. [`decode`]
//! turns those into an [`Exit`]. Exception classes come from `aarch64-cpu`'s `ESR_EL2`
//! definitions; the ISS layouts of the classes the VMM acts on are defined here (Arm ARM
//! D17.2.37, "ESR_EL2").
//!
//! A data abort without a valid instruction syndrome (ISV=0: load/store pair, writeback,
//! SIMD, ...) cannot be emulated without decoding the guest's instruction from its memory.
//! The VMM does not guess: [`decode`] returns [`DecodeError::NoSyndrome`] naming the address.
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

mod access;
pub mod syndrome;
mod sysreg;

pub use access::{AccessSize, GpReg, MmioAccess};
pub use sysreg::{SysReg, SysRegAccess};

use aarch64_cpu::registers::ESR_EL2;
use core::fmt;
use guest_mem::GuestPhysAddr;
use tock_registers::{LocalRegisterCopy, register_bitfields};

register_bitfields! {u64,
    /// ISS of a data abort from a lower EL (EC 0b100100).
    DABT_ISS [
        DFSC OFFSET(0) NUMBITS(6) [],
        WNR OFFSET(6) NUMBITS(1) [],
        S1PTW OFFSET(7) NUMBITS(1) [],
        CM OFFSET(8) NUMBITS(1) [],
        EA OFFSET(9) NUMBITS(1) [],
        AR OFFSET(14) NUMBITS(1) [],
        SF OFFSET(15) NUMBITS(1) [],
        SRT OFFSET(16) NUMBITS(5) [],
        SSE OFFSET(21) NUMBITS(1) [],
        SAS OFFSET(22) NUMBITS(2) [],
        ISV OFFSET(24) NUMBITS(1) []
    ],
    /// ISS of a trapped MSR/MRS/system instruction (EC 0b011000).
    SYSREG_ISS [
        DIRECTION OFFSET(0) NUMBITS(1) [],
        CRM OFFSET(1) NUMBITS(4) [],
        RT OFFSET(5) NUMBITS(5) [],
        CRN OFFSET(10) NUMBITS(4) [],
        OP1 OFFSET(14) NUMBITS(3) [],
        OP2 OFFSET(17) NUMBITS(3) [],
        OP0 OFFSET(20) NUMBITS(2) []
    ]
}

/// The raw syndrome of an exit, as seL4 hands it over.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Esr(pub u64);

impl Esr {
    /// The exception class field (ESR_EL2.EC).
    #[inline]
    pub fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// The instruction-specific syndrome (ESR_EL2.ISS).
    #[inline]
    pub fn iss(self) -> u32 {
        (self.0 & 0x1ff_ffff) as u32
    }

    /// Bytes to step over the trapping instruction: 4, or 2 for a 16-bit T32 one (IL=0).
    #[inline]
    pub fn instruction_len(self) -> u64 {
        if self.0 & (1 << 25) != 0 { 4 } else { 2 }
    }

    /// The access of a data abort the VMM can emulate (lower EL, valid instruction syndrome,
    /// no external abort, no stage-1 walk fault, not a cache maintenance instruction); `None`
    /// for every other syndrome, which [`decode`] then explains.
    ///
    /// The event loop's fast path: one mask test, no [`Exit`] built. Agrees with [`decode`]:
    /// `esr.mmio_access() == Some(a)` exactly when `decode(esr, ipa)` is
    /// `Ok(Exit::DataAbort { ipa, access: a })`.
    #[inline]
    pub fn mmio_access(self) -> Option<MmioAccess> {
        const EC_DABT: u64 = (ESR_EL2::EC::Value::DataAbortLowerEL as u64) << 26;
        const EC_MASK: u64 = 0x3f << 26;
        const ISV: u64 = 1 << 24;
        const EA: u64 = 1 << 9;
        const CM: u64 = 1 << 8;
        const S1PTW: u64 = 1 << 7;
        if self.0 & (EC_MASK | ISV | EA | CM | S1PTW) != EC_DABT | ISV {
            return None;
        }
        Some(MmioAccess::from_iss(self.0 as u32))
    }
}

impl fmt::Debug for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ESR {:#x} (EC {:#04x}, ISS {:#x})",
            self.0,
            self.ec(),
            self.iss()
        )
    }
}

/// A decoded guest exit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Exit {
    /// A load or store to an address the stage-2 tables do not map: MMIO to emulate.
    DataAbort {
        /// The faulting intermediate physical address.
        ipa: GuestPhysAddr,
        /// What the instruction did, from the syndrome.
        access: MmioAccess,
    },
    /// A data cache maintenance instruction (DC CIVAC, ...) on an unmapped address: nothing to
    /// emulate, the VMM steps over it.
    CacheMaintenance {
        /// The faulting address.
        ipa: GuestPhysAddr,
    },
    /// An instruction fetch from an address stage 2 does not map as executable RAM.
    InstructionAbort {
        /// The faulting address.
        ipa: GuestPhysAddr,
        /// Instruction fault status code (ISS.IFSC).
        ifsc: u8,
    },
    /// WFI (or WFIT): the vCPU has nothing to do until an interrupt arrives.
    Wfi,
    /// WFE (or WFET).
    Wfe,
    /// HVC from AArch64 with its immediate (SMCCC calls use 0).
    Hvc {
        /// The instruction's imm16.
        imm: u16,
    },
    /// SMC from AArch64 (trapped by HCR_EL2.TSC) with its immediate.
    Smc {
        /// The instruction's imm16.
        imm: u16,
    },
    /// A trapped MSR or MRS.
    SysReg(SysRegAccess),
    /// Any other class: the VMM logs it and injects an undefined-instruction exception.
    Other {
        /// The exception class.
        ec: u8,
        /// Its syndrome.
        iss: u32,
    },
}

/// A syndrome the VMM refuses to act on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// A data abort with ISV=0: the syndrome does not say which register or width the
    /// instruction used (pair, writeback, SIMD/FP and similar loads and stores).
    NoSyndrome {
        /// The faulting address.
        ipa: GuestPhysAddr,
        /// The whole syndrome, for the log.
        esr: Esr,
    },
    /// A synchronous external abort or a fault during a stage-1 table walk: not MMIO.
    NotEmulable {
        /// The faulting address.
        ipa: GuestPhysAddr,
        /// The whole syndrome, for the log.
        esr: Esr,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NoSyndrome { ipa, esr } => write!(
                f,
                "data abort at {ipa} without instruction syndrome ({esr:?}): the guest used a \
                 load/store form (pair, writeback, SIMD) that cannot be emulated on MMIO"
            ),
            DecodeError::NotEmulable { ipa, esr } => write!(
                f,
                "data abort at {ipa} is an external abort or stage-1 walk fault ({esr:?})"
            ),
        }
    }
}

/// Decodes an exit from its syndrome and, for aborts, the faulting IPA (seL4 combines
/// HPFAR_EL2 and FAR_EL2 into it; see [`ipa_from_hpfar`]).
#[inline]
pub fn decode(esr: Esr, ipa: GuestPhysAddr) -> Result<Exit, DecodeError> {
    use ESR_EL2::EC::Value as Ec;
    // The classes as plain numbers: a match on them is a jump table, where `read_as_enum`
    // first searches every class aarch64-cpu defines.
    const DABT: u8 = Ec::DataAbortLowerEL as u8;
    const IABT: u8 = Ec::InstrAbortLowerEL as u8;
    const WFX: u8 = Ec::TrappedWFIorWFE as u8;
    const HVC: u8 = Ec::HVC64 as u8;
    const SMC: u8 = Ec::SMC64 as u8;
    const MSR: u8 = Ec::TrappedMsrMrs as u8;
    let iss = u64::from(esr.iss());
    let exit = match esr.ec() {
        DABT => return decode_data_abort(esr, iss, ipa),
        IABT => Exit::InstructionAbort {
            ipa,
            ifsc: (iss & 0x3f) as u8,
        },
        // TI: 0b00 WFI, 0b01 WFE, 0b10 WFIT, 0b11 WFET.
        WFX => {
            if iss & 1 == 0 {
                Exit::Wfi
            } else {
                Exit::Wfe
            }
        }
        HVC => Exit::Hvc { imm: iss as u16 },
        SMC => Exit::Smc { imm: iss as u16 },
        MSR => Exit::SysReg(decode_sysreg(iss)),
        _ => Exit::Other {
            ec: esr.ec(),
            iss: esr.iss(),
        },
    };
    Ok(exit)
}

#[inline]
fn decode_data_abort(esr: Esr, iss: u64, ipa: GuestPhysAddr) -> Result<Exit, DecodeError> {
    let d = LocalRegisterCopy::<u64, DABT_ISS::Register>::new(iss);
    if d.is_set(DABT_ISS::EA) || d.is_set(DABT_ISS::S1PTW) {
        return Err(DecodeError::NotEmulable { ipa, esr });
    }
    if d.is_set(DABT_ISS::CM) {
        return Ok(Exit::CacheMaintenance { ipa });
    }
    if !d.is_set(DABT_ISS::ISV) {
        return Err(DecodeError::NoSyndrome { ipa, esr });
    }
    let access = MmioAccess::new(
        AccessSize::from_sas(d.read(DABT_ISS::SAS) as u8),
        d.is_set(DABT_ISS::WNR),
        GpReg::new(d.read(DABT_ISS::SRT) as u8),
        d.is_set(DABT_ISS::SSE),
        d.is_set(DABT_ISS::SF),
        d.is_set(DABT_ISS::AR),
    );
    Ok(Exit::DataAbort { ipa, access })
}

#[inline]
fn decode_sysreg(iss: u64) -> SysRegAccess {
    let s = LocalRegisterCopy::<u64, SYSREG_ISS::Register>::new(iss);
    SysRegAccess {
        reg: SysReg {
            op0: s.read(SYSREG_ISS::OP0) as u8,
            op1: s.read(SYSREG_ISS::OP1) as u8,
            crn: s.read(SYSREG_ISS::CRN) as u8,
            crm: s.read(SYSREG_ISS::CRM) as u8,
            op2: s.read(SYSREG_ISS::OP2) as u8,
        },
        rt: GpReg::new(s.read(SYSREG_ISS::RT) as u8),
        read: s.is_set(SYSREG_ISS::DIRECTION),
    }
}

/// The faulting IPA from HPFAR_EL2 (IPA bits [51:12] in its bits [43:4]) and the page offset
/// from FAR_EL2, for hypervisor back-ends that hand over the raw registers.
pub fn ipa_from_hpfar(hpfar: u64, far: u64) -> GuestPhysAddr {
    GuestPhysAddr(((hpfar & 0x0fff_ffff_fff0) << 8) | (far & 0xfff))
}

#[cfg(test)]
mod tests;
