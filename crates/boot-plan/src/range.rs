use core::fmt;

/// A half-open range of physical addresses, `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl PhysRange {
    /// `[start, end)`; an `end` below `start` gives the empty range at `start`.
    pub const fn new(start: u64, end: u64) -> Self {
        PhysRange {
            start,
            end: if end < start { start } else { end },
        }
    }

    /// `size` bytes from `start`, or `None` if that passes the end of the address space.
    pub const fn sized(start: u64, size: u64) -> Option<Self> {
        match start.checked_add(size) {
            Some(end) => Some(PhysRange { start, end }),
            None => None,
        }
    }

    /// Its size in bytes.
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether it holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether the two share a byte.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end && !self.is_empty() && !other.is_empty()
    }

    /// Whether every byte of `other` is in `self`.
    pub const fn contains_range(&self, other: &PhysRange) -> bool {
        other.is_empty() || (self.start <= other.start && other.end <= self.end)
    }

    /// Whether `addr` is in it.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// The bytes both hold.
    pub fn intersect(&self, other: &PhysRange) -> PhysRange {
        PhysRange::new(self.start.max(other.start), self.end.min(other.end))
    }

    /// Grown outwards to multiples of `align` (a power of two); saturates at the top.
    pub fn align_out(&self, align: u64) -> PhysRange {
        let mask = align.saturating_sub(1);
        let start = self.start & !mask;
        let end = self.end.checked_add(mask).map_or(!mask, |e| e & !mask);
        PhysRange::new(start, end)
    }
}

impl fmt::Debug for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#012x}..{:#012x}", self.start, self.end)
    }
}
