//! ELF images for tests (feature `test-utils`): seL4-like kernels and root tasks, written the
//! way linkers lay out executables (program headers only).

use alloc::vec;
use alloc::vec::Vec;

/// One segment: virtual and physical address, file bytes, size in memory.
pub struct Seg {
    /// Virtual address.
    pub vaddr: u64,
    /// Physical address.
    pub paddr: u64,
    /// File bytes.
    pub data: Vec<u8>,
    /// Size in memory (at least `data.len()` for a well-formed image).
    pub memsz: u64,
}

/// An ELF64 AArch64 executable with `entry` and `segs`.
pub fn elf(entry: u64, segs: &[Seg]) -> Vec<u8> {
    let phoff = 64u64;
    let data_start = phoff + 56 * segs.len() as u64;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&entry.to_le_bytes());
    out.extend_from_slice(&phoff.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.extend_from_slice(&64u16.to_le_bytes());
    out.extend_from_slice(&56u16.to_le_bytes());
    out.extend_from_slice(&(segs.len() as u16).to_le_bytes());
    out.extend_from_slice(&64u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    let mut off = data_start;
    for s in segs {
        out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        out.extend_from_slice(&7u32.to_le_bytes()); // RWX
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&s.vaddr.to_le_bytes());
        out.extend_from_slice(&s.paddr.to_le_bytes());
        out.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.memsz.to_le_bytes());
        out.extend_from_slice(&0x1000u64.to_le_bytes());
        off += s.data.len() as u64;
    }
    for s in segs {
        out.extend_from_slice(&s.data);
    }
    out
}

/// An seL4-like kernel: linked at 0x80_0000_0000 + `phys` (hypervisor mode's kernel window),
/// 4 KiB of code, 2 MiB in memory.
pub fn kernel(phys: u64) -> Vec<u8> {
    let v = 0x80_0000_0000 + phys;
    elf(
        v,
        &[
            Seg {
                vaddr: v,
                paddr: phys,
                data: vec![0xaa; 0x1000],
                memsz: 0x10_0000,
            },
            Seg {
                vaddr: v + 0x10_0000,
                paddr: phys + 0x10_0000,
                data: vec![],
                memsz: 0x10_0000,
            },
        ],
    )
}

/// A root-task-like image at 0x20_0000: 8 MiB of bytes and 64 KiB of bss.
pub fn root_task() -> Vec<u8> {
    elf(
        0x20_1234,
        &[
            Seg {
                vaddr: 0x20_0000,
                paddr: 0x20_0000,
                data: vec![0x55; 0x2000],
                memsz: 0x2000,
            },
            Seg {
                vaddr: 0x20_2000,
                paddr: 0x20_2000,
                data: vec![0x66; 0x80_0000],
                memsz: 0x81_0000,
            },
        ],
    )
}
