//! Syndromes as the hardware writes them into ESR_EL2, for the code that stands in for a
//! guest: tests, benchmarks and fuzz targets (one encoder instead of a copy in each).

use crate::{AccessSize, Esr};

/// IL: a 32-bit instruction.
const IL: u64 = 1 << 25;

/// A data abort from a lower EL with a valid instruction syndrome (ISV), every ISS field
/// given: `sas` the access size (0..=3), `sse` sign-extend, `srt` the register, `sf` a 64-bit
/// register, `write` a store. DFSC is a level-3 translation fault.
pub const fn data_abort_iss(sas: u64, sse: bool, srt: u64, sf: bool, write: bool) -> Esr {
    Esr((0x24 << 26)
        | IL
        | (1 << 24)
        | ((sas & 3) << 22)
        | ((sse as u64) << 21)
        | ((srt & 31) << 16)
        | ((sf as u64) << 15)
        | ((write as u64) << 6)
        | 7)
}

/// `ldr`/`str` of `size` with register `reg` (W for up to 32 bits, X for 64), no sign
/// extension.
pub const fn data_abort(size: AccessSize, reg: u8, write: bool) -> Esr {
    let sas = size as u64;
    data_abort_iss(sas, false, reg as u64, sas == 3, write)
}

/// `smc #0`.
pub const fn smc() -> Esr {
    Esr((0x17 << 26) | IL)
}

/// `hvc #0`.
pub const fn hvc() -> Esr {
    Esr((0x16 << 26) | IL)
}

/// `msr ICC_SGI1R_EL1, x<rt>` (op0 3, op1 0, CRn 12, CRm 11, op2 5; a write).
pub const fn msr_sgi1r(rt: u8) -> Esr {
    let iss = (3u64 << 20) | (5 << 17) | (12 << 10) | (((rt & 31) as u64) << 5) | (11 << 1);
    Esr((0x18 << 26) | IL | iss)
}
