//! Guest-physical addresses and the only door to guest RAM.
//!
//! Every address a guest hands the VMM (a descriptor, a PSCI entry point, a DMA buffer) is a
//! [`GuestPhysAddr`]. [`GuestMemory`] turns such an address plus a length into bytes of the
//! RAM the VMM mapped for the guest, or into a [`MemError`] when any byte of the range lies
//! outside that RAM. Nothing else in the VMM dereferences guest memory.
//!
//! The guest runs on other cores while the VMM reads its memory, so the backing store is
//! accessed through raw pointer copies (never through `&[u8]` references that would assert the
//! bytes do not change), and the virtqueue index fields get acquire/release accessors.
#![no_std]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

/// An address in the guest's physical address space (an IPA, in Arm terms).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GuestPhysAddr(pub u64);

impl GuestPhysAddr {
    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `self + offset`, or `None` on overflow.
    pub const fn checked_add(self, offset: u64) -> Option<Self> {
        match self.0.checked_add(offset) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// True when the address is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        align != 0 && self.0 & align.wrapping_sub(1) == 0
    }
}

impl fmt::Debug for GuestPhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gpa:{:#x}", self.0)
    }
}

impl fmt::Display for GuestPhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A physical address of the machine the VMM runs on (what seL4 untypeds and device frames name).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HostPhysAddr(pub u64);

impl fmt::Debug for HostPhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hpa:{:#x}", self.0)
    }
}

/// A half-open range `[base, base + size)` of guest-physical addresses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GuestRange {
    /// First address.
    pub base: GuestPhysAddr,
    /// Length in bytes.
    pub size: u64,
}

impl GuestRange {
    /// A new range.
    pub const fn new(base: u64, size: u64) -> Self {
        Self {
            base: GuestPhysAddr(base),
            size,
        }
    }

    /// One past the last address, saturating at `u64::MAX` (tables are validated not to wrap).
    pub const fn end(&self) -> u64 {
        self.base.0.saturating_add(self.size)
    }

    /// True when `addr` lies in the range.
    pub const fn contains(&self, addr: GuestPhysAddr) -> bool {
        match addr.0.checked_sub(self.base.0) {
            Some(off) => off < self.size,
            None => false,
        }
    }

    /// True when `[addr, addr + len)` lies entirely in the range (and does not wrap).
    pub const fn contains_range(&self, addr: GuestPhysAddr, len: u64) -> bool {
        match addr.0.checked_sub(self.base.0) {
            Some(off) => match self.size.checked_sub(off) {
                Some(rest) => len <= rest,
                None => false,
            },
            None => false,
        }
    }

    /// True when the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &GuestRange) -> bool {
        self.size != 0 && other.size != 0 && self.base.0 < other.end() && other.base.0 < self.end()
    }
}

/// Why a guest memory access was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemError {
    /// Some byte of `[addr, addr + len)` lies outside guest RAM (or the range wraps).
    OutOfRange {
        /// Start of the refused access.
        addr: GuestPhysAddr,
        /// Its length.
        len: u64,
    },
    /// An atomic access was not naturally aligned.
    Misaligned {
        /// The address.
        addr: GuestPhysAddr,
        /// The alignment the access needed.
        align: u64,
    },
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemError::OutOfRange { addr, len } => {
                write!(f, "guest access {addr}+{len:#x} is outside guest RAM")
            }
            MemError::Misaligned { addr, align } => {
                write!(f, "guest access at {addr} is not {align}-byte aligned")
            }
        }
    }
}

/// Sees every access [`GuestMemory`] lets through, so that fuzzers and tests can check that
/// no access ever leaves guest RAM and that the work per request is bounded.
pub trait AccessObserver {
    /// Called once per successful access, before the bytes move.
    fn observe(&self, addr: GuestPhysAddr, len: u64, write: bool);
}

/// Guest RAM as the VMM sees it: one contiguous guest-physical range backed by host memory.
///
/// Cheap to copy around by reference; all accessors take `&self` because the guest itself
/// changes the bytes concurrently anyway.
pub struct GuestMemory<'a> {
    range: GuestRange,
    host: NonNull<u8>,
    observer: Option<&'a dyn AccessObserver>,
    _lifetime: PhantomData<&'a mut [u8]>,
}

// SAFETY: the backing store is only touched through raw copies and atomics; the guest writes
// it concurrently anyway, so handing the view to another thread adds no new hazard.
unsafe impl Send for GuestMemory<'_> {}
// SAFETY: as above.
unsafe impl Sync for GuestMemory<'_> {}

impl<'a> GuestMemory<'a> {
    /// Guest RAM at `base` backed by `backing` (host tests, and the root task once it has
    /// mapped guest RAM into its own address space and made a slice of it).
    pub fn new(base: GuestPhysAddr, backing: &'a mut [u8]) -> Self {
        Self {
            range: GuestRange {
                base,
                size: backing.len() as u64,
            },
            // A slice's pointer is never null.
            host: NonNull::new(backing.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            observer: None,
            _lifetime: PhantomData,
        }
    }

    /// Guest RAM at `base` backed by `size` bytes at `host`.
    ///
    /// # Safety
    /// `host..host+size` must be mapped readable and writable for `'a` and used by nothing
    /// in this program but guest-memory accessors.
    pub unsafe fn from_raw(base: GuestPhysAddr, host: NonNull<u8>, size: u64) -> Self {
        Self {
            range: GuestRange { base, size },
            host,
            observer: None,
            _lifetime: PhantomData,
        }
    }

    /// Reports every successful access to `observer` (fuzzing and tests).
    pub fn with_observer(mut self, observer: &'a dyn AccessObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The guest-physical range this memory covers.
    pub fn range(&self) -> GuestRange {
        self.range
    }

    /// True when `[addr, addr + len)` is entirely guest RAM.
    pub fn contains(&self, addr: GuestPhysAddr, len: u64) -> bool {
        self.range.contains_range(addr, len)
    }

    /// The host pointer for `[addr, addr + len)`, after the bounds check.
    fn host_ptr(&self, addr: GuestPhysAddr, len: u64, write: bool) -> Result<*mut u8, MemError> {
        if !self.range.contains_range(addr, len) {
            return Err(MemError::OutOfRange { addr, len });
        }
        if let Some(obs) = self.observer {
            obs.observe(addr, len, write);
        }
        // `contains_range` above: `addr` is at or above the base.
        let off = addr.0.wrapping_sub(self.range.base.0);
        // `off + len <= size`, and `size` fits the host address space because it is mapped.
        Ok(self.host.as_ptr().wrapping_add(off as usize))
    }

    /// Copies guest bytes at `addr` into `buf`.
    pub fn read(&self, addr: GuestPhysAddr, buf: &mut [u8]) -> Result<(), MemError> {
        let src = self.host_ptr(addr, buf.len() as u64, false)?;
        // SAFETY: `src..src+len` is inside the mapped backing store (checked above); `buf` is
        // a distinct allocation of the VMM's.
        unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` into guest memory at `addr`.
    pub fn write(&self, addr: GuestPhysAddr, buf: &[u8]) -> Result<(), MemError> {
        let dst = self.host_ptr(addr, buf.len() as u64, true)?;
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    /// Sets `len` guest bytes at `addr` to `byte`.
    pub fn fill(&self, addr: GuestPhysAddr, len: u64, byte: u8) -> Result<(), MemError> {
        let dst = self.host_ptr(addr, len, true)?;
        // SAFETY: as in `read`; `len` fits usize because it fits the mapped range.
        unsafe { core::ptr::write_bytes(dst, byte, len as usize) };
        Ok(())
    }

    /// Copies `len` bytes within guest memory (ranges may overlap).
    pub fn copy_within(
        &self,
        from: GuestPhysAddr,
        to: GuestPhysAddr,
        len: u64,
    ) -> Result<(), MemError> {
        let src = self.host_ptr(from, len, false)?;
        let dst = self.host_ptr(to, len, true)?;
        // SAFETY: both ranges are inside the backing store.
        unsafe { core::ptr::copy(src, dst, len as usize) };
        Ok(())
    }

    /// Reads a little-endian `u16`.
    pub fn read_u16(&self, addr: GuestPhysAddr) -> Result<u16, MemError> {
        let mut b = [0; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a little-endian `u32`.
    pub fn read_u32(&self, addr: GuestPhysAddr) -> Result<u32, MemError> {
        let mut b = [0; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64`.
    pub fn read_u64(&self, addr: GuestPhysAddr) -> Result<u64, MemError> {
        let mut b = [0; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian `u16`.
    pub fn write_u16(&self, addr: GuestPhysAddr, v: u16) -> Result<(), MemError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u32`.
    pub fn write_u32(&self, addr: GuestPhysAddr, v: u32) -> Result<(), MemError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Writes a little-endian `u64`.
    pub fn write_u64(&self, addr: GuestPhysAddr, v: u64) -> Result<(), MemError> {
        self.write(addr, &v.to_le_bytes())
    }

    fn atomic_ptr(&self, addr: GuestPhysAddr, len: u64, write: bool) -> Result<*mut u8, MemError> {
        if !addr.is_aligned(len) {
            return Err(MemError::Misaligned { addr, align: len });
        }
        let p = self.host_ptr(addr, len, write)?;
        if !(p as usize).is_multiple_of(len as usize) {
            return Err(MemError::Misaligned { addr, align: len });
        }
        Ok(p)
    }

    /// Loads a `u16` with acquire ordering (a virtqueue `idx` the guest publishes).
    pub fn load_u16_acquire(&self, addr: GuestPhysAddr) -> Result<u16, MemError> {
        let p = self.atomic_ptr(addr, 2, false)?;
        // SAFETY: in bounds and 2-byte aligned (checked); AtomicU16 has u16's layout.
        Ok(u16::from_le(
            unsafe { AtomicU16::from_ptr(p.cast()) }.load(Ordering::Acquire),
        ))
    }

    /// Stores a `u16` with release ordering (a virtqueue `idx` the VMM publishes).
    pub fn store_u16_release(&self, addr: GuestPhysAddr, v: u16) -> Result<(), MemError> {
        let p = self.atomic_ptr(addr, 2, true)?;
        // SAFETY: as in `load_u16_acquire`.
        unsafe { AtomicU16::from_ptr(p.cast()) }.store(v.to_le(), Ordering::Release);
        Ok(())
    }

    /// Loads a `u32` with acquire ordering.
    pub fn load_u32_acquire(&self, addr: GuestPhysAddr) -> Result<u32, MemError> {
        let p = self.atomic_ptr(addr, 4, false)?;
        // SAFETY: in bounds and 4-byte aligned (checked).
        Ok(u32::from_le(
            unsafe { AtomicU32::from_ptr(p.cast()) }.load(Ordering::Acquire),
        ))
    }
}

impl fmt::Debug for GuestMemory<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestMemory")
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    const BASE: u64 = 0x4000_0000;

    #[test]
    fn reads_and_writes_inside_ram() {
        let mut ram = [0u8; 64];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        mem.write_u32(GuestPhysAddr(BASE + 4), 0xdead_beef).unwrap();
        assert_eq!(mem.read_u32(GuestPhysAddr(BASE + 4)).unwrap(), 0xdead_beef);
        mem.write_u64(GuestPhysAddr(BASE + 56), u64::MAX).unwrap();
        assert_eq!(mem.read_u64(GuestPhysAddr(BASE + 56)).unwrap(), u64::MAX);
        mem.fill(GuestPhysAddr(BASE), 4, 0xaa).unwrap();
        assert_eq!(mem.read_u32(GuestPhysAddr(BASE)).unwrap(), 0xaaaa_aaaa);
        mem.copy_within(GuestPhysAddr(BASE), GuestPhysAddr(BASE + 2), 4)
            .unwrap();
        assert_eq!(mem.read_u16(GuestPhysAddr(BASE + 4)).unwrap(), 0xaaaa);
    }

    #[test]
    fn refuses_every_range_that_leaves_ram() {
        let mut ram = [0u8; 64];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        let bad = [
            (BASE - 1, 1),     // just below
            (BASE + 64, 1),    // just above
            (BASE + 60, 8),    // straddles the end
            (BASE - 4, 8),     // straddles the start
            (u64::MAX - 2, 8), // wraps
            (BASE, u64::MAX),  // huge length
            (0, 0),            // zero length, outside
        ];
        for (addr, len) in bad {
            assert_eq!(
                mem.fill(GuestPhysAddr(addr), len, 0),
                Err(MemError::OutOfRange {
                    addr: GuestPhysAddr(addr),
                    len
                }),
                "{addr:#x}+{len:#x}"
            );
        }
        // Zero bytes at the very end is inside (an empty buffer ending the RAM).
        assert!(mem.read(GuestPhysAddr(BASE + 64), &mut []).is_ok());
        assert!(mem.read_u64(GuestPhysAddr(BASE + 57)).is_err());
    }

    #[test]
    fn atomics_need_alignment() {
        let mut ram = [0u8; 64];
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram);
        mem.store_u16_release(GuestPhysAddr(BASE + 2), 7).unwrap();
        assert_eq!(mem.load_u16_acquire(GuestPhysAddr(BASE + 2)).unwrap(), 7);
        assert_eq!(
            mem.load_u16_acquire(GuestPhysAddr(BASE + 1)),
            Err(MemError::Misaligned {
                addr: GuestPhysAddr(BASE + 1),
                align: 2
            })
        );
        assert!(mem.load_u32_acquire(GuestPhysAddr(BASE + 64)).is_err());
    }

    struct Count(Cell<u32>, Cell<u64>);
    impl AccessObserver for Count {
        fn observe(&self, _addr: GuestPhysAddr, len: u64, _write: bool) {
            self.0.set(self.0.get() + 1);
            self.1.set(self.1.get() + len);
        }
    }

    #[test]
    fn observer_sees_only_accesses_that_pass() {
        let mut ram = [0u8; 64];
        let count = Count(Cell::new(0), Cell::new(0));
        let mem = GuestMemory::new(GuestPhysAddr(BASE), &mut ram).with_observer(&count);
        mem.read_u32(GuestPhysAddr(BASE)).unwrap();
        assert!(mem.read_u32(GuestPhysAddr(BASE + 62)).is_err());
        assert_eq!((count.0.get(), count.1.get()), (1, 4));
    }

    #[test]
    fn ranges() {
        let r = GuestRange::new(0x1000, 0x1000);
        assert!(r.contains(GuestPhysAddr(0x1fff)));
        assert!(!r.contains(GuestPhysAddr(0x2000)));
        assert!(r.overlaps(&GuestRange::new(0x1fff, 1)));
        assert!(!r.overlaps(&GuestRange::new(0x2000, 0x10)));
        assert!(!r.overlaps(&GuestRange::new(0x1000, 0)));
    }
}
