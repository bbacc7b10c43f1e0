//! The kernel's initial EL2 tables, read back by a walker as the MMU would.
use std::collections::HashMap;

use boot_plan::PhysRange;
use boot_plan::pagetable::{
    ATTR_DEVICE, ATTR_NORMAL, Attrs, KernelWindow, MapError, Tables, boot_map, tcr_el2, walk,
};

const BASE: u64 = 0x4567_8000;

fn memory(t: &Tables) -> HashMap<u64, u64> {
    t.encode(BASE)
        .enumerate()
        .map(|(i, d)| (BASE + i as u64 * 8, d))
        .collect()
}

fn tr(m: &HashMap<u64, u64>, va: u64) -> Option<boot_plan::pagetable::Translation> {
    walk(|pa| m.get(&pa).copied(), BASE, va)
}

#[test]
fn sel4s_tcr_and_mair() {
    // TCR_EL2_DEFAULT of seL4 16 (include/arch/arm/arch/64/mode/machine.h).
    assert_eq!(tcr_el2(40), Some(0x8082_3510));
    assert_eq!(tcr_el2(44), Some(0x8084_3510));
    assert_eq!(tcr_el2(48), None);
    assert_eq!(
        boot_plan::pagetable::MAIR_EL2.to_le_bytes()[..6],
        [0x00, 0x04, 0x0c, 0x44, 0xff, 0xaa]
    );
}

#[test]
fn qemu_boot_map() {
    let ram = [PhysRange::new(0x4000_0000, 0xc000_0000)];
    let k = KernelWindow {
        virt: PhysRange::new(0x80_4000_0000, 0x80_4023_4000),
        phys: 0x4000_0000,
    };
    let t = boot_map(&ram, k).unwrap();
    let m = memory(&t);
    // The UART: identity, device, never executed.
    let uart = tr(&m, 0x0900_0000).unwrap();
    assert_eq!(
        (uart.pa, uart.index, uart.xn, uart.af),
        (0x0900_0000, ATTR_DEVICE, true, true)
    );
    // RAM: identity, normal, inner shareable, executable, in 1 GiB blocks.
    for va in [0x4000_0000, 0x7fff_fff8, 0x8000_0000, 0xbfff_f000] {
        let r = tr(&m, va).unwrap();
        assert_eq!(
            (r.pa, r.index, r.sh, r.xn, r.level),
            (va, ATTR_NORMAL, 3, false, 1)
        );
    }
    assert_eq!(tr(&m, 0xc000_0000).unwrap().index, ATTR_DEVICE);
    // The kernel's image at its virtual addresses.
    let r = tr(&m, 0x80_4000_1234).unwrap();
    assert_eq!(
        (r.pa, r.index, r.xn, r.level),
        (0x4000_1234, ATTR_NORMAL, false, 2)
    );
    assert_eq!(tr(&m, 0x80_403f_f000).unwrap().pa, 0x403f_f000);
    // Nothing else above the identity range.
    assert_eq!(tr(&m, 0x80_4040_0000), None);
    assert_eq!(tr(&m, 0x80_0000_0000), None);
    assert!(t.len() <= 4, "{} tables", t.len());
}

#[test]
fn ram_not_gib_aligned_is_refined_to_2m_and_4k() {
    // Orin-like: 0x8000_0000..0xbe00_0000, then a 4 KiB-aligned end.
    let ram = [
        PhysRange::new(0x8000_0000, 0xbe00_0000),
        PhysRange::new(0xc200_0000, 0xfffe_0000),
    ];
    let k = KernelWindow {
        virt: PhysRange::new(0x80_8000_0000, 0x80_8030_0000),
        phys: 0x8000_0000,
    };
    let t = boot_map(&ram, k).unwrap();
    let m = memory(&t);
    assert_eq!(tr(&m, 0xbdff_f000).unwrap().index, ATTR_NORMAL);
    let hole = tr(&m, 0xbe00_0000).unwrap();
    assert_eq!((hole.index, hole.xn, hole.level), (ATTR_DEVICE, true, 2));
    assert_eq!(tr(&m, 0xc200_0000).unwrap().index, ATTR_NORMAL);
    let end = tr(&m, 0xfffd_f000).unwrap();
    assert_eq!((end.index, end.level), (ATTR_NORMAL, 3));
    assert_eq!(tr(&m, 0xfffe_0000).unwrap().index, ATTR_DEVICE);
    assert_eq!(tr(&m, 0x80_8000_0000).unwrap().pa, 0x8000_0000);
}

#[test]
fn kernel_not_2m_congruent_uses_pages() {
    let k = KernelWindow {
        virt: PhysRange::new(0x80_4000_0000, 0x80_4000_3000),
        phys: 0x4123_4000,
    };
    let t = boot_map(&[], k).unwrap();
    let m = memory(&t);
    let r = tr(&m, 0x80_4000_2abc).unwrap();
    assert_eq!((r.pa, r.level), (0x4123_6abc, 3));
}

#[test]
fn errors() {
    let mut t = Tables::new(2);
    assert_eq!(
        t.map(0x1001, 0, 0x1000, Attrs::NORMAL),
        Err(MapError::Unaligned {
            va: 0x1001,
            pa: 0,
            size: 0x1000
        })
    );
    assert_eq!(
        t.map(1 << 48, 0, 0x1000, Attrs::NORMAL),
        Err(MapError::OutOfRange {
            va: 1 << 48,
            size: 0x1000
        })
    );
    // A 4 KiB page needs three tables below the root.
    assert_eq!(
        t.map(0x1000, 0x1000, 0x1000, Attrs::NORMAL),
        Err(MapError::TooManyTables(2))
    );
}

#[test]
fn a_fragmented_firmware_map_costs_no_more_tables_than_its_real_edges() {
    // 512 adjacent 4 KiB-granular pieces of one RAM range (as a UEFI memory map lists loader
    // code, boot-services data, conventional memory ...), overlapping seL4's own range.
    let mut ram = vec![PhysRange::new(0x4000_0000, 0xc000_0000)];
    let mut at = 0x4000_3000u64;
    for i in 0..512u64 {
        let len = 0x1000 * (1 + i % 7);
        ram.push(PhysRange::new(at, at + len));
        at += len;
    }
    let k = KernelWindow {
        virt: PhysRange::new(0x80_6000_0000, 0x80_6025_0000),
        phys: 0x6000_0000,
    };
    let t = boot_map(&ram, k).unwrap();
    let m = memory(&t);
    assert!(t.len() <= 4, "{} tables", t.len());
    assert_eq!(tr(&m, at - 0x1000).unwrap().index, ATTR_NORMAL);
}
