//! The host bridge: ECAM decoding, the type-0 header, the BAR protocol and its placement
//! rules, the capability list, and INTx routing.

// Test code: clippy.toml allows these inside #[test] functions; helpers need it spelled out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mmio_bus::AccessSize::{Byte, Half, Word};
use virtio_devices::VirtioDevice;
use virtio_devices::blk::VirtioBlk;
use virtio_devices::console::{InputQueue, VirtioConsole};
use virtio_pci::{BarKind, FunctionOptions, PciBus, status};
use virtio_test_harness::rig::{RAM_BASE, Rig, layout};
use virtio_test_harness::{SharedSink, logs};

fn blk() -> Box<dyn VirtioDevice> {
    Box::new(VirtioBlk::new(vec![0u8; 4096], "d"))
}

fn console() -> Box<dyn VirtioDevice> {
    Box::new(VirtioConsole::new(
        SharedSink::default(),
        InputQueue::new(8),
    ))
}

fn mem32() -> FunctionOptions {
    FunctionOptions {
        bar_kind: BarKind::Mem32,
        ..FunctionOptions::default()
    }
}

#[test]
fn absent_buses_devices_and_functions_read_all_ones() {
    let mut rig = Rig::new(vec![blk()]);
    assert_eq!(rig.read(Rig::ecam(0, 0, 0, 0), Word), 0x1042_1af4);
    assert_eq!(
        rig.read(Rig::ecam(0, 1, 0, 0), Word),
        0xffff_ffff,
        "empty slot"
    );
    assert_eq!(
        rig.read(Rig::ecam(0, 0, 1, 0), Word),
        0xffff_ffff,
        "function 1"
    );
    assert_eq!(rig.read(Rig::ecam(0, 31, 7, 0x3c), Half), 0xffff);
    assert_eq!(rig.read(Rig::ecam(0, 2, 0, 3), Byte), 0xff);
    // Writes there go nowhere.
    rig.write(Rig::ecam(0, 1, 0, 4), Half, 0x6);
    assert_eq!(rig.read(Rig::ecam(0, 1, 0, 4), Half), 0xffff);
}

#[test]
fn type0_header_identifies_a_modern_virtio_device() {
    let mut rig = Rig::new(vec![blk(), console()]);
    assert_eq!(rig.cfg_read(0, 0x00, Half), 0x1af4);
    assert_eq!(rig.cfg_read(0, 0x02, Half), 0x1042);
    assert_eq!(rig.cfg_read(1, 0x02, Half), 0x1043);
    assert_eq!(rig.cfg_read(0, 0x08, Byte), 1, "revision");
    assert_eq!(
        rig.cfg_read(0, 0x08, Word),
        0x0100_0001,
        "mass storage, SCSI; rev 1"
    );
    assert_eq!(rig.cfg_read(1, 0x0a, Half), 0x0780, "communication, other");
    assert_eq!(
        rig.cfg_read(0, 0x0e, Byte),
        0,
        "header type 0, single function"
    );
    assert_eq!(rig.cfg_read(0, 0x2c, Word), 0x1100_1af4, "subsystem");
    assert_ne!(rig.cfg_read(0, 0x06, Half) & 0x10, 0, "capability list");
    assert_eq!(rig.cfg_read(0, 0x34, Byte), 0x40);
    assert_eq!(rig.cfg_read(0, 0x30, Word), 0, "no expansion ROM");
    assert_eq!(rig.cfg_read(0, 0x100, Word), 0, "no extended capabilities");
}

#[test]
fn bar_sizing_returns_the_size_mask() {
    let mut rig = Rig::with_options(vec![
        (blk(), FunctionOptions::default()),
        (console(), mem32()),
    ]);
    // 64-bit BAR 0/1.
    assert_eq!(rig.cfg_read(0, 0x10, Word), 0x4);
    rig.cfg_write(0, 0x10, Word, 0xffff_ffff);
    rig.cfg_write(0, 0x14, Word, 0xffff_ffff);
    assert_eq!(rig.cfg_read(0, 0x10, Word), 0xffff_c004);
    assert_eq!(rig.cfg_read(0, 0x14, Word), 0xffff_ffff);
    // 32-bit BAR 0; BAR 1 unimplemented.
    assert_eq!(rig.cfg_read(1, 0x10, Word), 0);
    rig.cfg_write(1, 0x10, Word, 0xffff_ffff);
    rig.cfg_write(1, 0x14, Word, 0xffff_ffff);
    assert_eq!(rig.cfg_read(1, 0x10, Word), 0xffff_c000);
    assert_eq!(rig.cfg_read(1, 0x14, Word), 0);
    // Restoring an address keeps it (low bits of the size read 0).
    rig.cfg_write(1, 0x10, Word, 0x1000_8123);
    assert_eq!(rig.cfg_read(1, 0x10, Word), 0x1000_8000);
}

#[test]
fn memory_space_enable_gates_bar_decode() {
    let mut rig = Rig::new(vec![blk()]);
    let bar = Rig::bar(0);
    rig.cfg_write(0, 0x10, Word, bar);
    rig.cfg_write(0, 0x14, Word, 0);
    // Decoding off: the window answers all-ones (master abort).
    assert_eq!(rig.read(bar + 0x12, Half), 0xffff);
    rig.cfg_write(0, 0x04, Half, 0x2);
    assert_eq!(rig.read(bar + 0x12, Half), 1, "num_queues");
    rig.cfg_write(0, 0x04, Half, 0x0);
    assert_eq!(rig.read(bar + 0x12, Half), 0xffff);
    assert_eq!(rig.cfg_read(0, 0x04, Half) & 1, 0, "I/O space hardwired 0");
}

#[test]
fn bar_outside_the_window_decodes_nothing() {
    let mut rig = Rig::new(vec![blk()]);
    let l = layout();
    let outside = l.mmio.end(); // just past the window
    rig.cfg_write(0, 0x10, Word, outside & 0xffff_ffff);
    rig.cfg_write(0, 0x14, Word, outside >> 32);
    rig.cfg_write(0, 0x04, Half, 0x2);
    assert_eq!(rig.pci.with(|b| b.decoding_bar(0)).unwrap(), None);
    // Just below the window is outside too.
    let below = l.mmio.base.0 - 0x4000;
    rig.cfg_write(0, 0x10, Word, below & 0xffff_ffff);
    assert_eq!(rig.pci.with(|b| b.decoding_bar(0)).unwrap(), None);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "outside the PCI memory window"),
        1,
        "{lines:?}"
    );
}

#[test]
fn bar_over_ram_decodes_nothing() {
    let mut rig = Rig::new(vec![blk()]);
    rig.cfg_write(0, 0x10, Word, RAM_BASE);
    rig.cfg_write(0, 0x14, Word, 0);
    rig.cfg_write(0, 0x04, Half, 0x2);
    assert_eq!(rig.pci.with(|b| b.decoding_bar(0)).unwrap(), None);
    // Guest RAM is untouched by accesses there: they never reach the device.
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "over guest RAM"), 1, "{lines:?}");
}

#[test]
fn overlapping_bars_decode_nothing_until_moved_apart() {
    let mut rig = Rig::new(vec![blk(), blk()]);
    let a = Rig::bar(0);
    for slot in 0..2 {
        rig.cfg_write(slot, 0x10, Word, a);
        rig.cfg_write(slot, 0x14, Word, 0);
        rig.cfg_write(slot, 0x04, Half, 0x2);
    }
    assert_eq!(rig.pci.with(|b| b.decoding_bar(0)).unwrap(), None);
    assert_eq!(rig.pci.with(|b| b.decoding_bar(1)).unwrap(), None);
    assert_eq!(rig.read(a + 0x12, Half), 0xffff);
    rig.cfg_write(1, 0x10, Word, Rig::bar(1));
    assert!(rig.pci.with(|b| b.decoding_bar(0)).unwrap().is_some());
    assert!(rig.pci.with(|b| b.decoding_bar(1)).unwrap().is_some());
    assert_eq!(rig.read(a + 0x12, Half), 1);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "overlapping another device's BAR"),
        2,
        "{lines:?}"
    );
}

#[test]
fn capability_list_describes_the_virtio_structures() {
    let mut rig = Rig::new(vec![blk()]);
    let mut at = rig.cfg_read(0, 0x34, Byte);
    let mut seen = Vec::new();
    for _ in 0..16 {
        if at == 0 {
            break;
        }
        assert_eq!(rig.cfg_read(0, at, Byte), 0x09, "vendor-specific");
        let cfg_type = rig.cfg_read(0, at + 3, Byte);
        let bar = rig.cfg_read(0, at + 4, Byte);
        let offset = rig.cfg_read(0, at + 8, Word);
        let length = rig.cfg_read(0, at + 12, Word);
        seen.push((cfg_type, bar, offset, length));
        if cfg_type == 2 {
            assert_eq!(rig.cfg_read(0, at + 16, Word), 4, "notify_off_multiplier");
        }
        at = rig.cfg_read(0, at + 1, Byte);
    }
    assert_eq!(
        seen,
        vec![
            (1, 0, 0x0000, 0x38),
            (2, 0, 0x3000, 4),
            (3, 0, 0x1000, 4),
            (4, 0, 0x2000, 24),
            (5, 0, 0, 0),
        ]
    );
}

#[test]
fn pci_cfg_capability_reaches_the_bar() {
    let mut rig = Rig::new(vec![blk()]);
    // No BAR programmed, decoding off: the capability still reaches the registers.
    let cap = 0x84;
    rig.cfg_write(0, cap + 4, Byte, 0); // bar 0
    rig.cfg_write(0, cap + 8, Word, 0x12); // num_queues
    rig.cfg_write(0, cap + 12, Word, 2);
    assert_eq!(rig.cfg_read(0, cap + 16, Word) & 0xffff, 1);
    // A write through it: device_status = ACKNOWLEDGE.
    rig.cfg_write(0, cap + 8, Word, 0x14);
    rig.cfg_write(0, cap + 12, Word, 1);
    rig.cfg_write(0, cap + 16, Word, u64::from(status::ACKNOWLEDGE));
    assert_eq!(rig.cfg_read(0, cap + 16, Word) & 0xff, 1);
    assert_eq!(rig.pci.with(|b| b.device_status(0)).unwrap(), Some(1));
    // A bad length or a misaligned offset does nothing.
    rig.cfg_write(0, cap + 12, Word, 3);
    rig.cfg_write(0, cap + 16, Word, 0);
    assert_eq!(rig.pci.with(|b| b.device_status(0)).unwrap(), Some(1));
}

#[test]
fn interrupt_pin_per_slot_and_line_is_scratch() {
    let pin_c = FunctionOptions {
        pin: 3,
        ..FunctionOptions::default()
    };
    let mut rig = Rig::with_options(vec![(blk(), FunctionOptions::default()), (blk(), pin_c)]);
    assert_eq!(rig.cfg_read(0, 0x3d, Byte), 1, "INTA");
    assert_eq!(rig.cfg_read(1, 0x3d, Byte), 3, "INTC");
    rig.cfg_write(0, 0x3c, Byte, 0x5a);
    assert_eq!(rig.cfg_read(0, 0x3c, Byte), 0x5a);
    rig.cfg_write(0, 0x3d, Byte, 4);
    assert_eq!(rig.cfg_read(0, 0x3d, Byte), 1, "pin is read-only");
    // The swizzle: slot 1 pin C -> (1 + 3 - 1) % 4 = line 3 (INTD).
    assert_eq!(PciBus::intx_line(1, 3), 3);
    assert_eq!(PciBus::intx_line(3, 2), 0);
    let map = rig.pci.with(|b| b.interrupt_map()).unwrap();
    assert_eq!(map.len(), 16);
    let l = layout();
    for e in map {
        assert_eq!(e.spi, l.intx[PciBus::intx_line(e.slot, e.pin)]);
    }
}

#[test]
fn intx_routes_through_the_swizzle_and_interrupt_line_is_not_used() {
    // Slot 1, INTA -> line 1 (INTB, SPI 4, INTID 36 on QEMU virt).
    let mut rig = Rig::new(vec![blk(), blk()]);
    rig.place_bars();
    // Interrupt Line says something else entirely: ignored.
    rig.cfg_write(1, 0x3c, Byte, 0);
    let mut q = rig.bring_up(1, virtio_devices::features::VIRTIO_F_VERSION_1, &[(0, 4)]);
    let q = &mut q[0];
    let hdr = rig.alloc(16, 16);
    let st = rig.alloc(1, 1);
    rig.mem
        .write(guest_mem::GuestPhysAddr(hdr), &4u32.to_le_bytes())
        .unwrap();
    rig.set_desc(q, 0, hdr, 16, 1, 1);
    rig.set_desc(q, 1, st, 1, 2, 0);
    rig.push_avail(q, 0);
    rig.notify(1, 0);
    assert!(rig.intx(1));
    assert!(rig.irq.is_high(36));
    assert!(!rig.intx(0) && !rig.intx(2) && !rig.intx(3));
    assert_eq!(rig.isr(1), 1);
    assert!(!rig.intx(1), "ISR read lowers the line");
}

#[test]
fn functions_sharing_a_line_are_ored() {
    // Slots 0 and 4 both use INTA -> line 0.
    let mut rig = Rig::new((0..5).map(|_| blk()).collect());
    rig.place_bars();
    let v1 = virtio_devices::features::VIRTIO_F_VERSION_1;
    let mut qs = Vec::new();
    for slot in [0u8, 4] {
        let q = rig.bring_up(slot, v1, &[(0, 4)]).remove(0);
        qs.push((slot, q));
    }
    for (slot, q) in &mut qs {
        let hdr = rig.alloc(16, 16);
        let st = rig.alloc(1, 1);
        rig.mem
            .write(guest_mem::GuestPhysAddr(hdr), &4u32.to_le_bytes())
            .unwrap();
        rig.set_desc(q, 0, hdr, 16, 1, 1);
        rig.set_desc(q, 1, st, 1, 2, 0);
        rig.push_avail(q, 0);
        rig.notify(*slot, 0);
    }
    assert!(rig.intx(0));
    rig.isr(0);
    assert!(rig.intx(0), "slot 4 still asserts");
    rig.isr(4);
    assert!(!rig.intx(0));
    let changes: Vec<_> = rig.irq.history.iter().filter(|(i, _)| *i == 35).collect();
    assert_eq!(
        changes,
        vec![&(35, true), &(35, false)],
        "only level changes are driven"
    );
}
