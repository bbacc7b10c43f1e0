//! What an emulated load or store does, and how its result reaches the guest register.

use core::fmt;

/// The width of an MMIO access.
///
/// The discriminant is log2 of the byte count (the syndrome's SAS encoding), so that widths,
/// masks and the conversion from SAS are shifts rather than branches.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum AccessSize {
    /// 8 bits.
    Byte = 0,
    /// 16 bits.
    Half = 1,
    /// 32 bits.
    Word = 2,
    /// 64 bits.
    Double = 3,
}

impl AccessSize {
    /// From the syndrome's SAS field (0..=3).
    #[inline]
    pub const fn from_sas(sas: u8) -> Self {
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
    #[inline]
    pub const fn bytes(self) -> u64 {
        1 << self as u8
    }

    /// Bits moved.
    #[inline]
    pub const fn bits(self) -> u32 {
        8 << self as u8
    }

    /// All-ones for this width.
    #[inline]
    pub const fn mask(self) -> u64 {
        // bits() is 8, 16, 32 or 64: the shift is 0..=56.
        u64::MAX >> 64u32.wrapping_sub(self.bits())
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
    #[inline]
    pub const fn new(n: u8) -> Self {
        GpReg(n & 31)
    }

    /// X0..X30, or `None` for the zero register.
    #[inline]
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
///
/// Kept as the syndrome's own bits (one word, cheap to pass and keep across calls on the exit
/// path) and read through accessors: [`size`](Self::size) (SAS), [`write`](Self::write) (WnR),
/// [`reg`](Self::reg) (SRT), [`sign_extend`](Self::sign_extend) (SSE),
/// [`sixty_four`](Self::sixty_four) (SF), [`acquire_release`](Self::acquire_release) (AR).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MmioAccess(u32);

/// The ISS bits an [`MmioAccess`] keeps.
const WNR: u32 = 1 << 6;
const AR: u32 = 1 << 14;
const SF: u32 = 1 << 15;
const SRT_SHIFT: u32 = 16;
const SSE: u32 = 1 << 21;
const SAS_SHIFT: u32 = 22;
const FIELDS: u32 = WNR | AR | SF | (31 << SRT_SHIFT) | SSE | (3 << SAS_SHIFT);

impl fmt::Debug for MmioAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmioAccess")
            .field("size", &self.size())
            .field("write", &self.write())
            .field("reg", &self.reg())
            .field("sign_extend", &self.sign_extend())
            .field("sixty_four", &self.sixty_four())
            .field("acquire_release", &self.acquire_release())
            .finish()
    }
}

impl MmioAccess {
    /// From the ISS of a data abort with a valid syndrome (ISV=1); bits other than SAS, SSE,
    /// SRT, SF, AR and WnR are ignored.
    #[inline]
    pub const fn from_iss(iss: u32) -> Self {
        MmioAccess(iss & FIELDS)
    }

    /// From its fields.
    pub const fn new(
        size: AccessSize,
        write: bool,
        reg: GpReg,
        sign_extend: bool,
        sixty_four: bool,
        acquire_release: bool,
    ) -> Self {
        let sas = match size {
            AccessSize::Byte => 0,
            AccessSize::Half => 1,
            AccessSize::Word => 2,
            AccessSize::Double => 3,
        };
        MmioAccess(
            sas << SAS_SHIFT
                | (reg.0 as u32) << SRT_SHIFT
                | if write { WNR } else { 0 }
                | if sign_extend { SSE } else { 0 }
                | if sixty_four { SF } else { 0 }
                | if acquire_release { AR } else { 0 },
        )
    }

    /// Width of the access (SAS).
    #[inline]
    pub const fn size(self) -> AccessSize {
        AccessSize::from_sas((self.0 >> SAS_SHIFT) as u8)
    }

    /// A store (WnR=1) or a load.
    #[inline]
    pub const fn write(self) -> bool {
        self.0 & WNR != 0
    }

    /// The transfer register (SRT).
    #[inline]
    pub const fn reg(self) -> GpReg {
        GpReg::new((self.0 >> SRT_SHIFT) as u8)
    }

    /// A load that sign-extends (SSE).
    #[inline]
    pub const fn sign_extend(self) -> bool {
        self.0 & SSE != 0
    }

    /// The register is 64-bit, X rather than W (SF).
    #[inline]
    pub const fn sixty_four(self) -> bool {
        self.0 & SF != 0
    }

    /// Load-acquire or store-release semantics (AR).
    #[inline]
    pub const fn acquire_release(self) -> bool {
        self.0 & AR != 0
    }

    /// The value a store puts on the bus, from the transfer register's contents.
    #[inline]
    pub fn store_value(&self, reg_value: u64) -> u64 {
        reg_value & self.size().mask()
    }

    /// The value a load leaves in the transfer register, from the bus value: sign- or
    /// zero-extended from the access width to 64 bits (X) or to 32 bits with the upper half
    /// cleared (W), as the architecture writes a W register.
    #[inline]
    pub fn load_result(&self, bus_value: u64) -> u64 {
        let size = self.size();
        let v = bus_value & size.mask();
        let extended = if self.sign_extend() && !matches!(size, AccessSize::Double) {
            // Not Double: bits() is 8, 16 or 32, so the shift is 32..=56.
            let shift = 64u32.wrapping_sub(size.bits());
            (((v << shift) as i64) >> shift) as u64
        } else {
            v
        };
        if self.sixty_four() {
            extended
        } else {
            extended & 0xffff_ffff
        }
    }
}
