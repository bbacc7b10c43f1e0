//! ELF64 little-endian AArch64 executables: the seL4 kernel and the root task.
//!
//! Only what a loader needs: the entry point and the `PT_LOAD` segments, each checked to lie
//! inside the file (`p_offset + p_filesz`), to fit in memory (`p_filesz <= p_memsz`, no
//! wrap-around) and not to overlap another segment.

use core::fmt;

use crate::PhysRange;

const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;
const PT_LOAD: u32 = 1;
const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
/// More program headers than any kernel or root task has; a bound on the work per image.
pub const MAX_PHDRS: usize = 64;

/// Why an image is not one the loader can place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ElfError {
    /// Not `\x7fELF`, not 64-bit, not little-endian, or not version 1.
    NotElf64Le,
    /// `e_machine` is not AArch64.
    Machine(u16),
    /// `e_type` is not `ET_EXEC` (a relocatable or shared object cannot be loaded here).
    NotExecutable(u16),
    /// The program header table lies outside the file or has a wrong entry size.
    PhdrTable {
        /// `e_phoff`.
        offset: u64,
        /// `e_phnum`.
        count: u16,
    },
    /// More than [`MAX_PHDRS`] program headers.
    TooManyPhdrs(u16),
    /// Segment `index`'s file bytes lie outside the file, or its memory size is smaller than
    /// its file size, or its addresses wrap around.
    Segment {
        /// Index of the program header.
        index: usize,
    },
    /// Two loadable segments overlap in memory (physical or virtual).
    Overlap {
        /// The first.
        a: usize,
        /// The second.
        b: usize,
    },
    /// No loadable segment.
    NoSegments,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf64Le => write!(f, "not an ELF64 little-endian file"),
            ElfError::Machine(m) => write!(f, "e_machine {m} is not AArch64 ({EM_AARCH64})"),
            ElfError::NotExecutable(t) => write!(f, "e_type {t} is not an executable"),
            ElfError::PhdrTable { offset, count } => {
                write!(
                    f,
                    "{count} program headers at {offset:#x} lie outside the file"
                )
            }
            ElfError::TooManyPhdrs(n) => write!(f, "{n} program headers (at most {MAX_PHDRS})"),
            ElfError::Segment { index } => write!(f, "segment {index} is malformed"),
            ElfError::Overlap { a, b } => write!(f, "segments {a} and {b} overlap"),
            ElfError::NoSegments => write!(f, "no loadable segment"),
        }
    }
}

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Segment {
    /// Virtual address.
    pub vaddr: u64,
    /// Physical address (`p_paddr`).
    pub paddr: u64,
    /// File offset of its bytes.
    pub offset: usize,
    /// Bytes from the file; the rest of `memsz` is zero.
    pub filesz: usize,
    /// Bytes in memory.
    pub memsz: u64,
}

impl Segment {
    /// The virtual range it occupies.
    pub fn virt(&self) -> PhysRange {
        PhysRange::new(self.vaddr, self.vaddr.saturating_add(self.memsz))
    }

    /// The physical range it occupies.
    pub fn phys(&self) -> PhysRange {
        PhysRange::new(self.paddr, self.paddr.saturating_add(self.memsz))
    }
}

/// A checked ELF image.
#[derive(Clone, Copy)]
pub struct Elf<'a> {
    data: &'a [u8],
    entry: u64,
    phoff: usize,
    phnum: usize,
}

fn u16_at(d: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = d.get(at..at.saturating_add(2)) {
        b.copy_from_slice(s);
    }
    u16::from_le_bytes(b)
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = d.get(at..at.saturating_add(4)) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}

fn u64_at(d: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = d.get(at..at.saturating_add(8)) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

impl<'a> Elf<'a> {
    /// Checks `data` and every loadable segment in it.
    pub fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        if data.len() < EHDR_LEN
            || data.get(0..4) != Some(b"\x7fELF")
            || data.get(4) != Some(&2)
            || data.get(5) != Some(&1)
            || data.get(6) != Some(&1)
        {
            return Err(ElfError::NotElf64Le);
        }
        let e_type = u16_at(data, 16);
        let machine = u16_at(data, 18);
        if machine != EM_AARCH64 {
            return Err(ElfError::Machine(machine));
        }
        if e_type != ET_EXEC {
            return Err(ElfError::NotExecutable(e_type));
        }
        let entry = u64_at(data, 24);
        let phoff64 = u64_at(data, 32);
        let phentsize = u16_at(data, 54);
        let phnum16 = u16_at(data, 56);
        let phnum = usize::from(phnum16);
        if phnum > MAX_PHDRS {
            return Err(ElfError::TooManyPhdrs(phnum16));
        }
        let table_err = ElfError::PhdrTable {
            offset: phoff64,
            count: phnum16,
        };
        let phoff = usize::try_from(phoff64).map_err(|_| table_err)?;
        let table_end = phnum
            .checked_mul(PHDR_LEN)
            .and_then(|l| l.checked_add(phoff))
            .ok_or(table_err)?;
        if (phnum > 0 && usize::from(phentsize) != PHDR_LEN) || table_end > data.len() {
            return Err(table_err);
        }
        let elf = Elf {
            data,
            entry,
            phoff,
            phnum,
        };
        let mut any = false;
        for (i, s) in elf.raw_segments().enumerate() {
            let s = s?;
            any = true;
            for (j, t) in elf.raw_segments().enumerate().take(i) {
                let t = t?;
                if s.phys().overlaps(&t.phys()) || s.virt().overlaps(&t.virt()) {
                    return Err(ElfError::Overlap { a: j, b: i });
                }
            }
        }
        if !any {
            return Err(ElfError::NoSegments);
        }
        Ok(elf)
    }

    fn raw_segments(&self) -> impl Iterator<Item = Result<Segment, ElfError>> + '_ {
        (0..self.phnum).filter_map(move |index| {
            let at = self.phoff.saturating_add(index.saturating_mul(PHDR_LEN));
            if u32_at(self.data, at) != PT_LOAD {
                return None;
            }
            let offset = u64_at(self.data, at.saturating_add(8));
            let vaddr = u64_at(self.data, at.saturating_add(16));
            let paddr = u64_at(self.data, at.saturating_add(24));
            let filesz = u64_at(self.data, at.saturating_add(32));
            let memsz = u64_at(self.data, at.saturating_add(40));
            let bad = ElfError::Segment { index };
            let ok = filesz <= memsz
                && offset
                    .checked_add(filesz)
                    .is_some_and(|end| end <= self.data.len() as u64)
                && vaddr.checked_add(memsz).is_some()
                && paddr.checked_add(memsz).is_some();
            if !ok {
                return Some(Err(bad));
            }
            Some(
                usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(filesz).ok())
                    .map(|(offset, filesz)| Segment {
                        vaddr,
                        paddr,
                        offset,
                        filesz,
                        memsz,
                    })
                    .ok_or(bad),
            )
        })
    }

    /// The loadable segments (all checked by [`Elf::parse`]).
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.raw_segments().filter_map(Result::ok)
    }

    /// The file bytes of `segment` (empty if it is not one of this image's).
    pub fn bytes(&self, segment: &Segment) -> &'a [u8] {
        self.data
            .get(segment.offset..segment.offset.saturating_add(segment.filesz))
            .unwrap_or(&[])
    }

    /// `e_entry`.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The span of the segments' virtual addresses.
    pub fn virt_span(&self) -> PhysRange {
        self.span(Segment::virt)
    }

    /// The span of the segments' physical addresses.
    pub fn phys_span(&self) -> PhysRange {
        self.span(Segment::phys)
    }

    fn span(&self, f: impl Fn(&Segment) -> PhysRange) -> PhysRange {
        let mut lo = u64::MAX;
        let mut hi = 0;
        for s in self.segments() {
            let r = f(&s);
            lo = lo.min(r.start);
            hi = hi.max(r.end);
        }
        PhysRange::new(lo, hi)
    }
}
