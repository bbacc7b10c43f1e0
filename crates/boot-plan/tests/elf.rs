//! ELF images the loader places: what it reads, and what it refuses.
use boot_plan::PhysRange;
use boot_plan::elf::{Elf, ElfError};
use boot_plan::testing::{Seg, elf, kernel};

#[test]
fn reads_segments_entry_and_spans() {
    let bytes = kernel(0x4000_0000);
    let e = Elf::parse(&bytes).unwrap();
    assert_eq!(e.entry(), 0x80_4000_0000);
    let segs: Vec<_> = e.segments().collect();
    assert_eq!(segs.len(), 2);
    assert_eq!(e.bytes(&segs[0]).len(), 0x1000);
    assert!(e.bytes(&segs[0]).iter().all(|&b| b == 0xaa));
    assert_eq!(e.bytes(&segs[1]).len(), 0);
    assert_eq!(e.phys_span(), PhysRange::new(0x4000_0000, 0x4020_0000));
    assert_eq!(
        e.virt_span(),
        PhysRange::new(0x80_4000_0000, 0x80_4020_0000)
    );
}

#[test]
fn refuses_what_is_not_an_aarch64_executable() {
    let good = kernel(0x4000_0000);
    assert_eq!(Elf::parse(&good[..63]).err(), Some(ElfError::NotElf64Le));
    let mut m = good.clone();
    m[18] = 62; // x86-64
    assert_eq!(Elf::parse(&m).err(), Some(ElfError::Machine(62)));
    let mut t = good.clone();
    t[16] = 3; // ET_DYN
    assert_eq!(Elf::parse(&t).err(), Some(ElfError::NotExecutable(3)));
    let mut c = good.clone();
    c[4] = 1; // ELFCLASS32
    assert_eq!(Elf::parse(&c).err(), Some(ElfError::NotElf64Le));
}

#[test]
fn refuses_segments_outside_the_file_or_smaller_in_memory() {
    let bytes = elf(
        0,
        &[Seg {
            vaddr: 0,
            paddr: 0,
            data: vec![1; 64],
            memsz: 16,
        }],
    );
    assert_eq!(
        Elf::parse(&bytes).err(),
        Some(ElfError::Segment { index: 0 })
    );
    let bytes = kernel(0x4000_0000);
    // Truncating the file cuts the first segment's bytes.
    assert_eq!(
        Elf::parse(&bytes[..bytes.len() - 1]).err(),
        Some(ElfError::Segment { index: 0 })
    );
    let wrap = elf(
        0,
        &[Seg {
            vaddr: u64::MAX - 10,
            paddr: 0,
            data: vec![],
            memsz: 64,
        }],
    );
    assert_eq!(
        Elf::parse(&wrap).err(),
        Some(ElfError::Segment { index: 0 })
    );
}

#[test]
fn refuses_overlapping_segments() {
    let bytes = elf(
        0,
        &[
            Seg {
                vaddr: 0x1000,
                paddr: 0x1000,
                data: vec![],
                memsz: 0x2000,
            },
            Seg {
                vaddr: 0x2000,
                paddr: 0x9000,
                data: vec![],
                memsz: 0x1000,
            },
        ],
    );
    assert_eq!(
        Elf::parse(&bytes).err(),
        Some(ElfError::Overlap { a: 0, b: 1 })
    );
}

#[test]
fn no_truncation_or_corruption_panics() {
    let good = kernel(0x4000_0000);
    for n in 0..good.len().min(400) {
        let _ = Elf::parse(&good[..n]);
    }
    for i in 0..200 {
        for v in [0u8, 0xff, 0x80] {
            let mut b = good.clone();
            b[i] = v;
            if let Ok(e) = Elf::parse(&b) {
                for s in e.segments() {
                    let _ = e.bytes(&s);
                }
            }
        }
    }
}
