//! The distributor and redistributor register frames.
//!
//! Access widths follow IHI 0069 §12.1.3 ("GIC memory-mapped register access"): every
//! register is 32-bit accessible; `IPRIORITYR`, `ITARGETSR`, `CPENDSGIR` and `SPENDSGIR` are
//! also byte-accessible; the 64-bit registers (`GICD_IROUTER<n>`, `GICR_TYPER`) are
//! accessible as a whole or as 32-bit halves. Accesses must be naturally aligned. Anything
//! else is refused with [`MmioError::BadWidth`].

use crate::regs::{self, gicd, gicr, gicr_sgi};
use crate::{Block, Irq, Vgic, implemented_mask};
use arm_fault::AccessSize;
use guest_mem::GuestPhysAddr;
use mmio_bus::MmioError;
use vmm_platform::{GICD_SIZE, GICR_STRIDE};

/// Which frame an address is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Frame {
    /// The distributor.
    Dist,
    /// RD_base of a vCPU's redistributor.
    Rd(usize),
    /// SGI_base of a vCPU's redistributor.
    Sgi(usize),
}

/// For four interrupts' implemented bits (bit i: byte i), the mask of their priority bytes.
const BYTE_MASKS: [u32; 16] = [
    0x0000_0000,
    0x0000_00ff,
    0x0000_ff00,
    0x0000_ffff,
    0x00ff_0000,
    0x00ff_00ff,
    0x00ff_ff00,
    0x00ff_ffff,
    0xff00_0000,
    0xff00_00ff,
    0xff00_ff00,
    0xff00_ffff,
    0xffff_0000,
    0xffff_00ff,
    0xffff_ff00,
    0xffff_ffff,
];

/// What the fast path makes of an access ([`Vgic::fast`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fast {
    /// GICD_CTLR, word.
    DistCtlr,
    /// A bit register word covering an implemented block.
    Bits(BitReg, Loc),
    /// A priority word (`GICD_IPRIORITYR<n>` of SPIs, `GICR_IPRIORITYR<n>` of a vCPU's SGIs
    /// and PPIs) from INTID `first`.
    Priority(Loc, u32),
    /// `GICR_WAKER` of a vCPU.
    Waker(usize),
    /// Anything else in the vGIC's windows: the generic path.
    No,
    /// A word access outside the vGIC's windows (what [`Vgic::locate`] says `None` of).
    NotMine,
}

/// The seven one-bit-per-interrupt register arrays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BitReg {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

/// Which 32 interrupts a bit register word covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Loc {
    /// A vCPU's SGIs and PPIs.
    Private(usize),
    /// SPIs from INTID `32 * n` (n >= 1).
    Spi(u32),
}

/// A decoded register.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reg {
    DistCtlr,
    /// A read-only value.
    Const(u32),
    /// Reads as zero, writes ignored (architecturally, in this configuration).
    RazWi,
    Bits(BitReg, Option<Loc>),
    /// Priority bytes from INTID `first`; `None`: RAZ/WI.
    Priority(Option<Loc>, u32),
    /// ICFGR covering INTIDs from `first` (16 per register).
    Cfg(Option<Loc>, u32),
    /// IROUTER of INTID n; `None`: not implemented (RAZ/WI).
    Router(Option<u32>),
    RdTyper(usize),
    Waker(usize),
}

/// The widths a register allows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Widths {
    Word,
    ByteWord,
    WordDouble,
}

impl Widths {
    fn allows(self, size: AccessSize) -> bool {
        matches!(
            (self, size),
            (_, AccessSize::Word)
                | (Widths::ByteWord, AccessSize::Byte)
                | (Widths::WordDouble, AccessSize::Double)
        )
    }
}

#[inline(always)]
fn bit_reg(index: u64) -> Option<BitReg> {
    Some(match index {
        1 => BitReg::Group,
        2 => BitReg::SetEnable,
        3 => BitReg::ClearEnable,
        4 => BitReg::SetPending,
        5 => BitReg::ClearPending,
        6 => BitReg::SetActive,
        7 => BitReg::ClearActive,
        _ => return None,
    })
}

/// An ID register (PIDR4..7, PIDR0..3, CIDR0..3 at 0xffd0..=0xfffc).
fn id_reg(off: u64, ids: &[u32; 12]) -> Option<Reg> {
    let i = usize::try_from(off.checked_sub(regs::ID_BASE)? / 4).ok()?;
    ids.get(i).map(|&v| Reg::Const(v))
}

impl Vgic {
    /// The frame and offset of `addr`, if it is in one of the vGIC's windows.
    #[inline]
    pub(crate) fn locate(&self, addr: GuestPhysAddr) -> Option<(Frame, u64)> {
        if let Some(off) = addr.0.checked_sub(self.dist)
            && off < GICD_SIZE
        {
            return Some((Frame::Dist, off));
        }
        let off = addr.0.checked_sub(self.redist)?;
        let v = usize::try_from(off / GICR_STRIDE).ok()?;
        if v >= self.cpus.len() {
            return None;
        }
        let within = off % GICR_STRIDE;
        Some(match within.checked_sub(gicr::SGI_BASE) {
            Some(o) => (Frame::Sgi(v), o),
            None => (Frame::Rd(v), within),
        })
    }

    /// The fast path: a word access to GICD_CTLR (polled for RWP after every distributor
    /// change), to one of the one-bit-per-interrupt registers (IGROUPR, IS/ICENABLER,
    /// IS/ICPENDR, IS/ICACTIVER) of the distributor (SPI words) or of a redistributor's
    /// SGI_base frame (what Linux does on every interrupt mask, unmask and pending clear), to a
    /// priority word of either, or to GICR_WAKER (CPU bring-up and power-down).
    /// Says exactly what the generic decode ([`Vgic::locate`], then `access`) would (a test
    /// holds the two together); [`Fast::No`] for every other access, which takes the generic
    /// path, except a word access outside the windows: [`Fast::NotMine`] (the common case of
    /// an access to a device on the bus, which then needs no second look).
    #[inline(always)]
    pub(crate) fn fast(&self, addr: GuestPhysAddr, size: AccessSize) -> Fast {
        if size != AccessSize::Word {
            return Fast::No;
        }
        if let Some(off) = addr.0.checked_sub(self.dist)
            && off < GICD_SIZE
        {
            if off == gicd::CTLR {
                return Fast::DistCtlr;
            }
            if off & 3 != 0 || !(0x80..0x800).contains(&off) {
                return Fast::No;
            }
            if off >= gicd::IPRIORITYR {
                let first = off.wrapping_sub(gicd::IPRIORITYR) as u32;
                let n = first >> 5;
                return if n != 0 && n <= self.it_lines {
                    Fast::Priority(Loc::Spi(n), first)
                } else {
                    Fast::No
                };
            }
            let n = ((off & 0x7f) >> 2) as u32;
            return match bit_reg(off >> 7) {
                Some(reg) if n != 0 && n <= self.it_lines => Fast::Bits(reg, Loc::Spi(n)),
                _ => Fast::No,
            };
        }
        let Some(off) = addr.0.checked_sub(self.redist) else {
            return Fast::NotMine;
        };
        let v = match usize::try_from(off / GICR_STRIDE) {
            Ok(v) if v < self.cpus.len() => v,
            _ => return Fast::NotMine,
        };
        let rd = off % GICR_STRIDE;
        if rd == gicr::WAKER {
            return Fast::Waker(v);
        }
        let within = rd.wrapping_sub(gicr::SGI_BASE);
        if (gicr_sgi::IPRIORITYR..gicr_sgi::IPRIORITYR + 32).contains(&within) {
            return if within & 3 == 0 {
                Fast::Priority(
                    Loc::Private(v),
                    within.wrapping_sub(gicr_sgi::IPRIORITYR) as u32,
                )
            } else {
                Fast::No
            };
        }
        if within & 0x7f != 0 || !(0x80..0x400).contains(&within) {
            return Fast::No;
        }
        match bit_reg(within >> 7) {
            Some(reg) => Fast::Bits(reg, Loc::Private(v)),
            None => Fast::No,
        }
    }

    /// GICD_CTLR as it reads.
    #[inline(always)]
    pub(crate) fn dist_ctlr(&self) -> u64 {
        let g1 = if self.grp1 { gicd::CTLR_ENABLE_G1A } else { 0 };
        u64::from(gicd::CTLR_ARE_NS | g1)
    }

    /// The fast path's read of a bit register: its word.
    #[inline(always)]
    pub(crate) fn fast_read_bits(&self, reg: BitReg, loc: Loc) -> u64 {
        u64::from(self.read_bits(reg, Some(loc)))
    }

    /// The fast path's write of a bit register: true when a bit changed.
    #[inline(always)]
    pub(crate) fn fast_write_bits(&mut self, reg: BitReg, loc: Loc, value: u64) -> bool {
        self.write_bits(reg, Some(loc), value as u32)
    }

    /// The SPI block that a distributor register word `n` (32 interrupts each) covers; `None`
    /// for word 0 (SGIs and PPIs: the redistributors' with affinity routing) and for words
    /// past `ITLinesNumber`.
    #[inline(always)]
    fn spi_loc(&self, n: u64) -> Option<Loc> {
        let n = u32::try_from(n).ok()?;
        (n >= 1 && n <= self.it_lines).then_some(Loc::Spi(n))
    }

    #[inline(always)]
    fn decode(&self, frame: Frame, off: u64) -> Option<(Reg, Widths)> {
        match frame {
            Frame::Dist => self.decode_gicd(off),
            Frame::Rd(v) => self.decode_rd(v, off),
            Frame::Sgi(v) => decode_sgi(v, off),
        }
    }

    #[inline(always)]
    fn decode_gicd(&self, off: u64) -> Option<(Reg, Widths)> {
        use Widths::*;
        Some(match off {
            gicd::CTLR => (Reg::DistCtlr, Word),
            gicd::TYPER => (Reg::Const(self.typer()), Word),
            gicd::IIDR => (Reg::Const(regs::IIDR), Word),
            gicd::TYPER2 => (Reg::Const(0), Word),
            gicd::STATUSR => (Reg::RazWi, Word),
            0x0080..=0x03ff => {
                let reg = bit_reg(off / 0x80)?;
                (Reg::Bits(reg, self.spi_loc((off % 0x80) / 4)), Word)
            }
            0x0400..=0x07fb => {
                let intid = off.wrapping_sub(gicd::IPRIORITYR) as u32; // off >= IPRIORITYR
                let loc = self.spi_loc(u64::from(intid / 32));
                (Reg::Priority(loc, intid), ByteWord)
            }
            0x0800..=0x0bfb => (Reg::RazWi, ByteWord),
            0x0c00..=0x0cff => {
                let first = (off.wrapping_sub(gicd::ICFGR) / 4).wrapping_mul(16) as u32; // < 1024
                let loc = self.spi_loc(u64::from(first / 32));
                (Reg::Cfg(loc, first), Word)
            }
            0x0d00..=0x0d7f | 0x0e00..=0x0eff | gicd::SGIR => (Reg::RazWi, Word),
            0x0f10..=0x0f2f => (Reg::RazWi, ByteWord),
            0x6100..=0x7fdf => {
                let intid = (off.wrapping_sub(gicd::IROUTER) / 8) as u32; // off >= IROUTER
                let n = (intid < self.nr_irqs).then_some(intid);
                (Reg::Router(n), WordDouble)
            }
            0xffd0..=0xffff => (id_reg(off, &regs::GICD_IDS)?, Word),
            _ => return None,
        })
    }

    #[inline(always)]
    fn decode_rd(&self, v: usize, off: u64) -> Option<(Reg, Widths)> {
        use Widths::*;
        Some(match off {
            gicr::CTLR | gicr::STATUSR => (Reg::RazWi, Word),
            gicr::IIDR => (Reg::Const(regs::IIDR), Word),
            0x0008..=0x000f => (Reg::RdTyper(v), WordDouble),
            gicr::WAKER => (Reg::Waker(v), Word),
            0xffd0..=0xffff => (id_reg(off, &regs::GICR_IDS)?, Word),
            _ => return None,
        })
    }

    fn typer(&self) -> u32 {
        // 10 INTID bits (no LPIs), two Security states, no LPIs/MBIS/ESPI/RSS, 1-of-N
        // supported, Aff3 not supported (A3V = 0), CPUNumber 0 (ARE is always on).
        self.it_lines | 9 << gicd::TYPER_IDBITS_SHIFT | gicd::TYPER_SECURITY_EXTN
    }

    fn rd_typer(&self, v: usize) -> u64 {
        let last = if Some(v) == self.cpus.len().checked_sub(1) {
            gicr::TYPER_LAST
        } else {
            0
        };
        // PPInum 0 (16 PPIs), no LPIs or vLPIs; Affinity_Value = MPIDR (Aff0 = index).
        (v as u64) << gicr::TYPER_AFFINITY_SHIFT
            | (v as u64) << gicr::TYPER_PROCESSOR_NUMBER_SHIFT
            | last
    }

    #[inline(always)]
    fn loc_block(&self, loc: Loc) -> Option<&Block> {
        match loc {
            Loc::Private(v) => self.block(Irq::Private(v, 0)),
            // n <= it_lines <= 31 (spi_loc).
            Loc::Spi(n) => self.block(Irq::Spi(n.wrapping_mul(32))),
        }
    }

    #[inline(always)]
    fn loc_block_mut(&mut self, loc: Loc) -> Option<&mut Block> {
        match loc {
            Loc::Private(v) => self.block_mut(Irq::Private(v, 0)),
            Loc::Spi(n) => self.block_mut(Irq::Spi(n.wrapping_mul(32))),
        }
    }

    fn loc_irq(loc: Loc, intid: u32) -> Irq {
        match loc {
            Loc::Private(v) => Irq::Private(v, intid),
            Loc::Spi(_) => Irq::Spi(intid),
        }
    }

    /// Checks width and alignment, and decodes.
    #[inline(always)]
    fn access(&self, frame: Frame, off: u64, size: AccessSize) -> Result<Reg, MmioError> {
        let (reg, widths) = self.decode(frame, off).ok_or(MmioError::NoRegister)?;
        if !widths.allows(size) || !off.is_multiple_of(size.bytes()) {
            return Err(MmioError::BadWidth);
        }
        Ok(reg)
    }

    #[inline]
    pub(crate) fn read(&self, frame: Frame, off: u64, size: AccessSize) -> Result<u64, MmioError> {
        let reg = self.access(frame, off, size)?;
        Ok(match reg {
            Reg::DistCtlr => self.dist_ctlr(),
            Reg::Const(v) => u64::from(v),
            Reg::RazWi | Reg::Router(None) => 0,
            Reg::Bits(reg, loc) => u64::from(self.read_bits(reg, loc)),
            Reg::Priority(loc, first) => self.read_priorities(loc, first, size),
            Reg::Cfg(loc, first) => u64::from(self.read_cfg(loc, first)),
            Reg::Router(Some(n)) => {
                let route = self.route.get(n as usize).copied().unwrap_or(0);
                if off % 8 == 4 { route >> 32 } else { route }
            }
            Reg::RdTyper(v) => {
                let t = self.rd_typer(v);
                if off % 8 == 4 { t >> 32 } else { t }
            }
            Reg::Waker(v) => self.read_waker(v),
        } & size.mask())
    }

    /// A store: `Ok(true)` when it changed the vGIC's state (a bit, a priority, a trigger
    /// mode, a route, the group enable, a redistributor's sleep), `Ok(false)` when it changed
    /// nothing.
    #[inline]
    pub(crate) fn write(
        &mut self,
        frame: Frame,
        off: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<bool, MmioError> {
        let reg = self.access(frame, off, size)?;
        let changed = match reg {
            Reg::DistCtlr => {
                let grp1 = value as u32 & gicd::CTLR_ENABLE_G1A != 0;
                core::mem::replace(&mut self.grp1, grp1) != grp1
            }
            Reg::Const(_) | Reg::RdTyper(_) => return Err(MmioError::ReadOnly),
            Reg::RazWi | Reg::Router(None) => false,
            Reg::Bits(reg, loc) => self.write_bits(reg, loc, value as u32),
            Reg::Priority(loc, first) => self.write_priorities(loc, first, size, value),
            Reg::Cfg(loc, first) => self.write_cfg(loc, first, value as u32),
            Reg::Router(Some(n)) => match self.route.get_mut(n as usize) {
                Some(r) => {
                    let new = match (size, off % 8) {
                        (AccessSize::Double, _) => value,
                        (_, 4) => (*r & 0xffff_ffff) | value << 32,
                        _ => (*r & !0xffff_ffff) | value,
                    };
                    // Aff2.Aff1.Aff0 and IRM; Aff3 is RES0 (GICD_TYPER.A3V = 0).
                    let new = new & (gicd::IROUTER_IRM | 0xff_ffff);
                    core::mem::replace(r, new) != new
                }
                None => false,
            },
            Reg::Waker(v) => self.write_waker(v, value),
        };
        Ok(changed)
    }

    #[inline(always)]
    fn read_bits(&self, reg: BitReg, loc: Option<Loc>) -> u32 {
        let Some(b) = loc.and_then(|l| self.loc_block(l)) else {
            return 0;
        };
        match reg {
            BitReg::Group => b.implemented,
            BitReg::SetEnable | BitReg::ClearEnable => b.enabled,
            BitReg::SetPending | BitReg::ClearPending => b.pending(),
            BitReg::SetActive | BitReg::ClearActive => (b.active | b.listed) & b.implemented,
        }
    }

    /// Returns true when a bit changed.
    #[inline(always)]
    fn write_bits(&mut self, reg: BitReg, loc: Option<Loc>, value: u32) -> bool {
        let Some(b) = loc.and_then(|l| self.loc_block_mut(l)) else {
            return false;
        };
        let v = value & b.implemented;
        let field = match reg {
            BitReg::Group => return false,
            BitReg::SetEnable | BitReg::ClearEnable => &mut b.enabled,
            BitReg::SetPending | BitReg::ClearPending => &mut b.latch,
            BitReg::SetActive | BitReg::ClearActive => &mut b.active,
        };
        let old = *field;
        *field = match reg {
            BitReg::SetEnable | BitReg::SetPending | BitReg::SetActive => old | v,
            _ => old & !v,
        };
        *field != old
    }

    /// GICR_WAKER of vCPU `v` as it reads.
    #[inline(always)]
    pub(crate) fn read_waker(&self, v: usize) -> u64 {
        let asleep = self.cpus.get(v).is_some_and(|c| c.asleep);
        if asleep {
            u64::from(gicr::WAKER_PROCESSOR_SLEEP | gicr::WAKER_CHILDREN_ASLEEP)
        } else {
            0
        }
    }

    /// Writes GICR_WAKER of vCPU `v`; true when its sleep state changed.
    #[inline(always)]
    pub(crate) fn write_waker(&mut self, v: usize, value: u64) -> bool {
        match self.cpus.get_mut(v) {
            Some(c) => {
                let asleep = value as u32 & gicr::WAKER_PROCESSOR_SLEEP != 0;
                core::mem::replace(&mut c.asleep, asleep) != asleep
            }
            None => false,
        }
    }

    /// The priority bytes of `size` from INTID `first` (0 for unimplemented interrupts).
    #[inline]
    pub(crate) fn read_priorities(&self, loc: Option<Loc>, first: u32, size: AccessSize) -> u64 {
        let mut v = 0u64;
        for i in 0..size.bytes() as u32 {
            v |= u64::from(self.read_priority(loc, first.wrapping_add(i))) << (i << 3);
        }
        v
    }

    fn read_priority(&self, loc: Option<Loc>, intid: u32) -> u8 {
        let Some(loc) = loc else {
            return 0;
        };
        let implemented = self
            .loc_block(loc)
            .is_some_and(|b| b.implemented & (1 << (intid % 32)) != 0);
        if implemented {
            self.priority(Self::loc_irq(loc, intid))
        } else {
            0
        }
    }

    /// Writes the priority bytes of `size` from INTID `first` (those of implemented
    /// interrupts); true when one changed.
    #[inline]
    pub(crate) fn write_priorities(
        &mut self,
        loc: Option<Loc>,
        first: u32,
        size: AccessSize,
        value: u64,
    ) -> bool {
        let Some(loc) = loc else {
            return false;
        };
        let Some(implemented) = self.loc_block(loc).map(|b| b.implemented) else {
            return false;
        };
        // Indexed by INTID: a vCPU's 32 private priorities, or the SPIs' (from INTID 0).
        let prio: &mut [u8] = match loc {
            Loc::Private(v) => match self.cpus.get_mut(v) {
                Some(c) => &mut c.priority,
                None => return false,
            },
            Loc::Spi(_) => &mut self.spi_priority,
        };
        if size == AccessSize::Word {
            // Four bytes at once (`first` is word aligned, so the four INTIDs are in one block).
            let start = first as usize;
            let Some(word) = start
                .checked_add(4)
                .and_then(|end| prio.get_mut(start..end))
                .and_then(|w| <&mut [u8; 4]>::try_from(w).ok())
            else {
                return false;
            };
            let mask = BYTE_MASKS
                .get(((implemented >> (first % 32)) & 0xf) as usize)
                .copied()
                .unwrap_or(0);
            let old = u32::from_le_bytes(*word);
            let new = (old & !mask) | (value as u32 & mask);
            *word = new.to_le_bytes();
            return new != old;
        }
        let mut changed = false;
        for i in 0..size.bytes() as u32 {
            let intid = first.wrapping_add(i);
            if implemented & (1 << (intid % 32)) != 0
                && let Some(p) = prio.get_mut(intid as usize)
            {
                let byte = (value >> (i << 3)) as u8;
                changed |= core::mem::replace(p, byte) != byte;
            }
        }
        changed
    }

    fn read_cfg(&self, loc: Option<Loc>, first: u32) -> u32 {
        let Some(b) = loc.and_then(|l| self.loc_block(l)) else {
            return 0;
        };
        let shift = first % 32;
        let edge = (b.edge & b.implemented) >> shift;
        // Bit k of `edge` goes to bit 2k + 1.
        (0..16).fold(0, |acc, k| acc | ((edge >> k) & 1) << (k << 1 | 1))
    }

    /// Writes an ICFGR word; true when a trigger mode changed.
    fn write_cfg(&mut self, loc: Option<Loc>, first: u32, value: u32) -> bool {
        let Some(b) = loc.and_then(|l| self.loc_block_mut(l)) else {
            return false;
        };
        let shift = first % 32;
        let edge = (0..16).fold(0u32, |acc, k| acc | ((value >> (k << 1 | 1)) & 1) << k) << shift;
        let writable = (0xffff << shift) & b.implemented & !b.fixed_cfg;
        let new = (b.edge & !writable) | (edge & writable);
        core::mem::replace(&mut b.edge, new) != new
    }
}

#[inline(always)]
fn decode_sgi(v: usize, off: u64) -> Option<(Reg, Widths)> {
    use Widths::*;
    Some(match off {
        0x0080..=0x03ff if off % 0x80 < 4 => {
            let reg = bit_reg(off / 0x80)?;
            (Reg::Bits(reg, Some(Loc::Private(v))), Word)
        }
        0x0400..=0x041f => {
            let intid = off.wrapping_sub(gicr_sgi::IPRIORITYR) as u32; // off >= IPRIORITYR
            (Reg::Priority(Some(Loc::Private(v)), intid), ByteWord)
        }
        0x0c00..=0x0c07 => {
            let first = (off.wrapping_sub(gicr_sgi::ICFGR0) / 4).wrapping_mul(16) as u32; // 0 or 16
            (Reg::Cfg(Some(Loc::Private(v)), first), Word)
        }
        gicr_sgi::IGRPMODR0 | gicr_sgi::NSACR => (Reg::RazWi, Word),
        _ => return None,
    })
}

// Block 31 holds INTIDs 992..1023, of which 1020..1023 are special.
const _: () = assert!(implemented_mask(992, 1020) == 0x0fff_ffff);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use vmm_platform::{ORIN_AGX, QEMU_VIRT};

    #[test]
    fn byte_masks() {
        for (bits, &m) in BYTE_MASKS.iter().enumerate() {
            for i in 0..4 {
                let byte = (m >> (8 * i)) & 0xff;
                assert_eq!(byte, if bits & (1 << i) != 0 { 0xff } else { 0 });
            }
        }
    }

    /// A priority word written at once does what its four bytes written one by one do
    /// (implemented interrupts only), and says it changed something exactly when they do.
    #[test]
    fn priority_words_and_bytes_agree() {
        for platform in [&QEMU_VIRT, &ORIN_AGX] {
            let mut word = Vgic::new(platform);
            let mut bytes = Vgic::new(platform);
            let mut locs: Vec<(Loc, u32)> = (1..=word.it_lines)
                .flat_map(|n| (0..8).map(move |w| (Loc::Spi(n), n * 32 + w * 4)))
                .collect();
            for v in 0..word.cpus.len() {
                locs.extend((0..8).map(|w| (Loc::Private(v), w * 4)));
            }
            for value in [0xa1b2_c3d4u64, 0xa1b2_c3d4, 0, 0xffff_ffff] {
                for &(loc, first) in &locs {
                    let w = word.write_priorities(Some(loc), first, AccessSize::Word, value);
                    let mut b = false;
                    for i in 0..4 {
                        b |= bytes.write_priorities(
                            Some(loc),
                            first + i,
                            AccessSize::Byte,
                            value >> (8 * i),
                        );
                    }
                    assert_eq!(w, b, "{loc:?} {first} {value:#x}");
                    assert_eq!(
                        word.read_priorities(Some(loc), first, AccessSize::Word),
                        bytes.read_priorities(Some(loc), first, AccessSize::Word),
                    );
                }
                assert_eq!(word.spi_priority, bytes.spi_priority);
                for (a, b) in word.cpus.iter().zip(&bytes.cpus) {
                    assert_eq!(a.priority, b.priority);
                }
            }
        }
    }

    /// The fast path says exactly what the generic decode says wherever it applies, and
    /// applies to every word access of GICD_CTLR and of an implemented bit register word.
    #[test]
    fn fast_path_agrees_with_the_generic_decode() {
        for platform in [&QEMU_VIRT, &ORIN_AGX] {
            let gic = Vgic::new(platform);
            let mut addrs: Vec<u64> = (0..0x1000).map(|o| gic.dist + o).collect();
            addrs.extend((0xffd0..0x1_0004).map(|o| gic.dist + o));
            addrs.extend([gic.dist.wrapping_sub(4), gic.redist.wrapping_sub(4)]);
            for v in 0..=gic.cpus.len() as u64 {
                let rd = gic.redist + v * GICR_STRIDE;
                addrs.extend((0..0x100).map(|o| rd + o));
                addrs.extend((0..0x1000).map(|o| rd + gicr::SGI_BASE + o));
            }
            // Outside the windows: far below, far above, just past the last redistributor.
            addrs.extend([0, 0x4010_0000_0000, u64::MAX - 3]);
            let mut fast = 0;
            for &a in &addrs {
                let addr = GuestPhysAddr(a);
                for size in [
                    AccessSize::Byte,
                    AccessSize::Half,
                    AccessSize::Word,
                    AccessSize::Double,
                ] {
                    let generic = gic
                        .locate(addr)
                        .map(|(frame, off)| gic.access(frame, off, size));
                    let expected = match generic {
                        Some(Ok(Reg::DistCtlr)) if size == AccessSize::Word => Fast::DistCtlr,
                        Some(Ok(Reg::Bits(reg, Some(loc)))) => Fast::Bits(reg, loc),
                        Some(Ok(Reg::Priority(Some(loc), first))) if size == AccessSize::Word => {
                            Fast::Priority(loc, first)
                        }
                        Some(Ok(Reg::Waker(v))) if size == AccessSize::Word => Fast::Waker(v),
                        None if size == AccessSize::Word => Fast::NotMine,
                        _ => Fast::No,
                    };
                    assert_eq!(gic.fast(addr, size), expected, "{a:#x} {size:?}");
                    fast += usize::from(!matches!(expected, Fast::No | Fast::NotMine));
                }
            }
            // GICD_CTLR, 7 bit registers and 8 priority words per SPI block, and per vCPU 7
            // bit registers, 8 priority words and GICR_WAKER.
            let vcpus = gic.cpus.len();
            assert_eq!(fast, 1 + 15 * gic.it_lines as usize + 16 * vcpus);
        }
    }
}
