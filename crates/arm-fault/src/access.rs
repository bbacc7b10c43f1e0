//! What an emulated load or store does, and how its result reaches the guest register.

use core::fmt;

/// The width of an MMIO access.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum AccessSize {
    /// 8 bits.
    Byte,
    /// 16 bits.
    Half,
    /// 32 bits.
    Word,
    /// 64 bits.
    Double,
}

impl AccessSize {
    /// From the syndrome's SAS field (0..=3).
    pub fn from_sas(sas: u8) -> Self {
        match sas & 3 {
            0 => AccessSize::Byte,
            1 => AccessSize::Half,
            2 => AccessSize::Word,
            _ => AccessSize::Double,
        }
    }

    /// From a byte count, if it is 1, 2, 4 or 8.
    pub fn from_bytes(bytes: u64) -> Option<Self> {
        match bytes {
            1 => Some(AccessSize::Byte),
            2 => Some(AccessSize::Half),
            4 => Some(AccessSize::Word),
            8 => Some(AccessSize::Double),
            _ => None,
        }
    }

    /// Bytes moved.
    pub const fn bytes(self) -> u64 {
        match self {
            AccessSize::Byte => 1,
            AccessSize::Half => 2,
            AccessSize::Word => 4,
            AccessSize::Double => 8,
        }
    }

    /// Bits moved.
    pub const fn bits(self) -> u32 {
        (self.bytes() * 8) as u32
    }

    /// All-ones for this width.
    pub const fn mask(self) -> u64 {
        match self {
            AccessSize::Double => u64::MAX,
            _ => (1u64 << self.bits()) - 1,
        }
    }
}

/// A general-purpose register number as an instruction encodes it: 0..=30 name X0..X30,
/// 31 names XZR/WZR in loads and stores (reads as zero, writes are discarded).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpReg(u8);

impl GpReg {
    /// The zero register.
    pub const ZR: GpReg = GpReg(31);

    /// Register `n`; only the low five bits count.
    pub const fn new(n: u8) -> Self {
        GpReg(n & 31)
    }

    /// X0..X30, or `None` for the zero register.
    pub const fn index(self) -> Option<u8> {
        if self.0 == 31 { None } else { Some(self.0) }
    }
}

impl fmt::Debug for GpReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index() {
            Some(n) => write!(f, "x{n}"),
            None => write!(f, "xzr"),
        }
    }
}

/// A load or store the VMM must emulate, from a data abort's syndrome.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MmioAccess {
    /// Width of the access (SAS).
    pub size: AccessSize,
    /// A store (WnR=1) or a load.
    pub write: bool,
    /// The transfer register (SRT).
    pub reg: GpReg,
    /// A load that sign-extends (SSE).
    pub sign_extend: bool,
    /// The register is 64-bit, X rather than W (SF).
    pub sixty_four: bool,
    /// Load-acquire or store-release semantics (AR).
    pub acquire_release: bool,
}

impl MmioAccess {
    /// The value a store puts on the bus, from the transfer register's contents.
    pub fn store_value(&self, reg_value: u64) -> u64 {
        reg_value & self.size.mask()
    }

    /// The value a load leaves in the transfer register, from the bus value: sign- or
    /// zero-extended from the access width to 64 bits (X) or to 32 bits with the upper half
    /// cleared (W), as the architecture writes a W register.
    pub fn load_result(&self, bus_value: u64) -> u64 {
        let v = bus_value & self.size.mask();
        let extended = if self.sign_extend && self.size != AccessSize::Double {
            let shift = 64 - self.size.bits();
            (((v << shift) as i64) >> shift) as u64
        } else {
            v
        };
        if self.sixty_four {
            extended
        } else {
            extended & 0xffff_ffff
        }
    }
}
