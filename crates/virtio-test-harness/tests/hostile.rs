//! A hostile guest: one test per thing a guest may get wrong on purpose. The device ignores
//! the request or goes to DEVICE_NEEDS_RESET, logs it once, never panics, never loops
//! without bound and never touches memory outside guest RAM.

// Test code: clippy.toml allows these inside #[test] functions; helpers need it spelled out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use guest_mem::GuestPhysAddr;
use mmio_bus::AccessSize;
use virtio_devices::VirtioDevice;
use virtio_devices::blk::{VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VirtioBlk};
use virtio_devices::console::{InputQueue, VirtioConsole};
use virtio_devices::features::{
    VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_EVENT_IDX, VIRTIO_F_VERSION_1,
};
use virtio_devices::net::{ArpIcmpResponder, VirtioNet};
use virtio_devices::queue::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use virtio_pci::status;
use virtio_test_harness::SharedSink;
use virtio_test_harness::logs;
use virtio_test_harness::rig::{RAM_BASE, RAM_SIZE, RawQueue, Rig, common};

const NEXT: u16 = VIRTQ_DESC_F_NEXT;
const WRITE: u16 = VIRTQ_DESC_F_WRITE;
const INDIRECT: u16 = VIRTQ_DESC_F_INDIRECT;
const V1: u64 = VIRTIO_F_VERSION_1;

fn blk_dev(sectors: usize) -> Box<dyn VirtioDevice> {
    Box::new(VirtioBlk::new(vec![0u8; sectors * 512], "hostile"))
}

fn console_dev(sink: &SharedSink) -> Box<dyn VirtioDevice> {
    Box::new(VirtioConsole::new(sink.clone(), InputQueue::new(64)))
}

/// A rig with one block device (16 sectors) up and running with queue 0 of `size`.
fn blk_rig(features: u64, size: u16) -> (Rig, RawQueue) {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let q = rig.bring_up(0, features, &[(0, size)]).remove(0);
    (rig, q)
}

/// Buffers for one block request: header, data, status.
struct Req {
    hdr: u64,
    data: u64,
    status: u64,
}

fn blk_req(rig: &mut Rig, kind: u32, sector: u64, data_len: u64) -> Req {
    let hdr = rig.alloc(16, 16);
    let data = rig.alloc(data_len.max(1), 16);
    let status = rig.alloc(1, 1);
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&kind.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    rig.mem.write(GuestPhysAddr(hdr), &h).unwrap();
    rig.mem.write_u8_for_test(status, 0xff);
    Req { hdr, data, status }
}

trait StatusByte {
    fn write_u8_for_test(&self, at: u64, v: u8);
    fn u8_at(&self, at: u64) -> u8;
}

impl StatusByte for guest_mem::GuestMemory<'_> {
    fn write_u8_for_test(&self, at: u64, v: u8) {
        self.write(GuestPhysAddr(at), &[v]).unwrap();
    }
    fn u8_at(&self, at: u64) -> u8 {
        let mut b = [0u8];
        self.read(GuestPhysAddr(at), &mut b).unwrap();
        b[0]
    }
}

/// Submits a 3-descriptor request (header, data, status) at descriptors 0..2.
fn submit(rig: &mut Rig, q: &mut RawQueue, r: &Req, data_len: u32, data_flags: u16) -> u8 {
    rig.set_desc(q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(q, 1, r.data, data_len, data_flags | NEXT, 2);
    rig.set_desc(q, 2, r.status, 1, WRITE, 0);
    rig.push_avail(q, 0);
    rig.notify(0, 0);
    rig.mem.u8_at(r.status)
}

fn assert_needs_reset(rig: &mut Rig, needle: &str) {
    let st = rig.status(0);
    assert_ne!(st & status::DEVICE_NEEDS_RESET, 0, "status {st:#x}");
    let lines = logs::take();
    assert_eq!(logs::count(&lines, needle), 1, "logged once: {lines:?}");
}

fn assert_alive(rig: &mut Rig) {
    assert_eq!(rig.status(0) & status::DEVICE_NEEDS_RESET, 0);
}

// ---- the block protocol ----

#[test]
fn blk_read_write_round_trip_at_the_register_level() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let w = blk_req(&mut rig, 1, 3, 512);
    rig.mem.fill(GuestPhysAddr(w.data), 512, 0x5a).unwrap();
    assert_eq!(submit(&mut rig, &mut q, &w, 512, 0), VIRTIO_BLK_S_OK);
    let r = blk_req(&mut rig, 0, 3, 512);
    assert_eq!(submit(&mut rig, &mut q, &r, 512, WRITE), VIRTIO_BLK_S_OK);
    assert_eq!(rig.mem.u8_at(r.data + 511), 0x5a);
    assert_eq!(rig.used_idx(&q), 2);
    assert_eq!(rig.used_elem(&q, 1), (0, 513));
    // Used-buffer notification: ISR bit 0 and INTA, lowered by the ISR read.
    assert!(rig.intx(0));
    assert_eq!(rig.isr(0), 1);
    assert!(!rig.intx(0));
    assert_alive(&mut rig);
}

#[test]
fn blk_sector_beyond_the_disk_is_ioerr() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 16, 512);
    assert_eq!(submit(&mut rig, &mut q, &r, 512, WRITE), VIRTIO_BLK_S_IOERR);
    let r = blk_req(&mut rig, 0, 15, 1024);
    assert_eq!(
        submit(&mut rig, &mut q, &r, 1024, WRITE),
        VIRTIO_BLK_S_IOERR,
        "straddles the end"
    );
    assert_alive(&mut rig);
}

#[test]
fn blk_sector_number_overflowing_is_ioerr() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 1, u64::MAX / 256, 512);
    assert_eq!(submit(&mut rig, &mut q, &r, 512, 0), VIRTIO_BLK_S_IOERR);
    assert_alive(&mut rig);
}

#[test]
fn blk_misaligned_length_is_ioerr() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 100);
    assert_eq!(submit(&mut rig, &mut q, &r, 100, WRITE), VIRTIO_BLK_S_IOERR);
    let w = blk_req(&mut rig, 1, 0, 513);
    assert_eq!(submit(&mut rig, &mut q, &w, 513, 0), VIRTIO_BLK_S_IOERR);
    assert_alive(&mut rig);
}

#[test]
fn blk_unknown_request_type_is_unsupp() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 11, 0, 512);
    assert_eq!(submit(&mut rig, &mut q, &r, 512, 0), VIRTIO_BLK_S_UNSUPP);
    assert_alive(&mut rig);
}

#[test]
fn blk_read_only_write_is_ioerr() {
    let mut rig = Rig::new(vec![Box::new(
        VirtioBlk::new(vec![7u8; 4096], "ro").read_only(true),
    )]);
    rig.place_bars();
    assert_ne!(
        rig.device_features(0) & (1 << 5),
        0,
        "VIRTIO_BLK_F_RO offered"
    );
    let mut q = rig.bring_up(0, V1 | (1 << 5), &[(0, 8)]).remove(0);
    let w = blk_req(&mut rig, 1, 0, 512);
    assert_eq!(submit(&mut rig, &mut q, &w, 512, 0), VIRTIO_BLK_S_IOERR);
    let r = blk_req(&mut rig, 0, 0, 512);
    assert_eq!(submit(&mut rig, &mut q, &r, 512, WRITE), VIRTIO_BLK_S_OK);
    assert_eq!(rig.mem.u8_at(r.data), 7, "disk unchanged");
}

#[test]
fn blk_chain_without_status_byte_is_returned_unanswered() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.hdr, 16, 0, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_eq!(rig.used_idx(&q), 1);
    assert_eq!(rig.used_elem(&q, 0), (0, 0));
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "without a writable status byte"),
        1,
        "{lines:?}"
    );
    assert_alive(&mut rig);
}

// ---- descriptor chains ----

#[test]
fn descriptor_loop_needs_reset_with_bounded_work() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(&q, 1, r.data, 512, NEXT, 0); // back to 0
    rig.push_avail(&mut q, 0);
    rig.counter.accesses.set(0);
    rig.notify(0, 0);
    assert!(
        rig.counter.accesses.get() < 40,
        "{} accesses",
        rig.counter.accesses.get()
    );
    assert_eq!(rig.used_idx(&q), 0);
    assert_needs_reset(&mut rig, "longer than the queue");
    // Config change interrupt.
    assert_eq!(rig.isr(0) & 2, 2);
}

#[test]
fn chain_longer_than_the_queue_needs_reset() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let mut q = rig
        .bring_up(0, V1 | VIRTIO_F_INDIRECT_DESC, &[(0, 4)])
        .remove(0);
    // An indirect table of 8 linked descriptors in a queue of 4 (a chain is at most the
    // queue's size, §2.7.5.3.1).
    let table = rig.alloc(16 * 8, 16);
    let buf = rig.alloc(16, 16);
    for i in 0..8u16 {
        rig.write_desc_at(table + 16 * u64::from(i), buf, 16, NEXT, i + 1);
    }
    rig.set_desc(&q, 0, table, 16 * 8, INDIRECT, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "indirect table of 128 bytes");
}

#[test]
fn a_full_length_indirect_table_is_served() {
    // What Linux builds for a request of seg_max = size - 2 segments: header, 254 data
    // segments, status: 256 entries, as many as the queue has.
    let mut rig = Rig::new(vec![blk_dev(256)]);
    rig.place_bars();
    let mut q = rig
        .bring_up(0, V1 | VIRTIO_F_INDIRECT_DESC, &[(0, 256)])
        .remove(0);
    let r = blk_req(&mut rig, 0, 0, 254 * 512); // read 254 sectors
    let table = rig.alloc(16 * 256, 16);
    rig.write_desc_at(table, r.hdr, 16, NEXT, 1);
    for i in 0..254u16 {
        let seg = r.data + 512 * u64::from(i);
        rig.write_desc_at(table + 16 * u64::from(i + 1), seg, 512, WRITE | NEXT, i + 2);
    }
    rig.write_desc_at(table + 16 * 255, r.status, 1, WRITE, 0);
    rig.set_desc(&q, 0, table, 16 * 256, INDIRECT, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_eq!(rig.mem.u8_at(r.status), VIRTIO_BLK_S_OK);
    assert_alive(&mut rig);
}

#[test]
fn a_request_over_the_chain_limit_fails_alone() {
    // 17 segments of 1 MiB (the rig's whole RAM, each time): more than a chain may carry.
    // The request gets IOERR; the device and the next request go on.
    let (mut rig, mut q) = blk_rig(V1, 32);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    for i in 1..=17u16 {
        rig.set_desc(&q, i, RAM_BASE, 1 << 20, WRITE | NEXT, i + 1);
    }
    rig.set_desc(&q, 18, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_eq!(rig.mem.u8_at(r.status), VIRTIO_BLK_S_IOERR);
    assert_alive(&mut rig);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "larger than seg_max x size_max"),
        1,
        "{lines:?}"
    );
    // The next, ordinary request is served.
    let r2 = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 20, r2.hdr, 16, NEXT, 21);
    rig.set_desc(&q, 21, r2.data, 512, WRITE | NEXT, 22);
    rig.set_desc(&q, 22, r2.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 20);
    rig.notify(0, 0);
    assert_eq!(rig.mem.u8_at(r2.status), VIRTIO_BLK_S_OK);
}

#[test]
fn head_index_outside_the_table_needs_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    rig.push_avail(&mut q, 8);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "descriptor index 8 outside the table");
}

#[test]
fn next_index_outside_the_table_needs_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 0xffff);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "descriptor index 65535");
}

#[test]
fn buffer_outside_guest_ram_needs_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(&q, 1, 0x1000, 512, WRITE | NEXT, 2); // below RAM
    rig.set_desc(&q, 2, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "is not guest RAM");
    assert!(rig.counter.lowest.get() >= RAM_BASE);
    assert!(rig.counter.highest.get() <= RAM_BASE + RAM_SIZE);
}

#[test]
fn buffer_straddling_the_end_of_ram_needs_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(&q, 1, RAM_BASE + RAM_SIZE - 256, 512, WRITE | NEXT, 2);
    rig.set_desc(&q, 2, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "is not guest RAM");
    assert!(rig.counter.highest.get() <= RAM_BASE + RAM_SIZE);
}

#[test]
fn huge_length_needs_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(&q, 1, r.data, u32::MAX, WRITE | NEXT, 2);
    rig.set_desc(&q, 2, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "is not guest RAM");
}

#[test]
fn zero_length_descriptors_carry_nothing() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 2, 512);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(&q, 1, r.data, 0, WRITE | NEXT, 2); // zero length
    rig.set_desc(&q, 2, r.data, 512, WRITE | NEXT, 3);
    rig.set_desc(&q, 3, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_eq!(rig.mem.u8_at(r.status), VIRTIO_BLK_S_OK);
    // A request whose only data descriptor is empty reads nothing, successfully.
    let r = blk_req(&mut rig, 0, 2, 0);
    assert_eq!(submit(&mut rig, &mut q, &r, 0, WRITE), VIRTIO_BLK_S_OK);
    assert_alive(&mut rig);
}

#[test]
fn readable_after_writable_needs_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let r = blk_req(&mut rig, 0, 0, 512);
    rig.set_desc(&q, 0, r.data, 512, WRITE | NEXT, 1);
    rig.set_desc(&q, 1, r.hdr, 16, NEXT, 2);
    rig.set_desc(&q, 2, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(
        &mut rig,
        "device-readable descriptor after a device-writable one",
    );
}

#[test]
fn indirect_without_negotiation_needs_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    let table = rig.alloc(48, 16);
    rig.set_desc(&q, 0, table, 48, INDIRECT, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "without VIRTIO_F_INDIRECT_DESC");
}

#[test]
fn indirect_request_works_when_negotiated() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let mut q = rig
        .bring_up(0, V1 | VIRTIO_F_INDIRECT_DESC, &[(0, 4)])
        .remove(0);
    let r = blk_req(&mut rig, 8, 0, 20); // GET_ID
    let table = rig.alloc(48, 16);
    rig.write_desc_at(table, r.hdr, 16, NEXT, 1);
    rig.write_desc_at(table + 16, r.data, 20, WRITE | NEXT, 2);
    rig.write_desc_at(table + 32, r.status, 1, WRITE, 0);
    rig.set_desc(&q, 0, table, 48, INDIRECT, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_eq!(rig.mem.u8_at(r.status), VIRTIO_BLK_S_OK);
    let mut id = [0u8; 7];
    rig.mem.read(GuestPhysAddr(r.data), &mut id).unwrap();
    assert_eq!(&id, b"hostile");
    assert_alive(&mut rig);
}

#[test]
fn nested_indirect_needs_reset() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let mut q = rig
        .bring_up(0, V1 | VIRTIO_F_INDIRECT_DESC, &[(0, 8)])
        .remove(0);
    let inner = rig.alloc(16, 16);
    let table = rig.alloc(16, 16);
    rig.write_desc_at(table, inner, 16, INDIRECT, 0);
    rig.set_desc(&q, 0, table, 16, INDIRECT, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "indirect descriptor in an indirect table");
}

#[test]
fn indirect_with_next_needs_reset() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let mut q = rig
        .bring_up(0, V1 | VIRTIO_F_INDIRECT_DESC, &[(0, 8)])
        .remove(0);
    let table = rig.alloc(32, 16);
    rig.set_desc(&q, 0, table, 32, INDIRECT | NEXT, 1);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "indirect descriptor with NEXT");
}

#[test]
fn indirect_table_of_bad_length_needs_reset() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let mut q = rig
        .bring_up(0, V1 | VIRTIO_F_INDIRECT_DESC, &[(0, 8)])
        .remove(0);
    let table = rig.alloc(32, 16);
    rig.set_desc(&q, 0, table, 20, INDIRECT, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "indirect table of 20 bytes");
}

// ---- the rings ----

#[test]
fn avail_index_jump_needs_reset() {
    let (mut rig, q) = blk_rig(V1, 8);
    rig.set_avail_idx(&q, 9);
    rig.counter.accesses.set(0);
    rig.notify(0, 0);
    assert!(rig.counter.accesses.get() < 10);
    assert_eq!(rig.used_idx(&q), 0);
    assert_needs_reset(&mut rig, "more than the queue size ahead");
}

#[test]
fn a_full_ring_is_processed_in_one_notify() {
    let (mut rig, mut q) = blk_rig(V1, 4);
    // Two flush requests in a table of 4 descriptors, each made available twice: a full ring
    // of 4 chains (a driver may publish up to the queue size; more is a jump, above).
    let reqs: Vec<Req> = (0..2).map(|_| blk_req(&mut rig, 4, 0, 0)).collect();
    for (i, r) in reqs.iter().enumerate() {
        let d = 2 * i as u16;
        rig.set_desc(&q, d, r.hdr, 16, NEXT, d + 1);
        rig.set_desc(&q, d + 1, r.status, 1, WRITE, 0);
    }
    for head in [0u16, 2, 0, 2] {
        rig.push_avail(&mut q, head);
    }
    rig.notify(0, 0);
    assert_eq!(rig.used_idx(&q), 4);
    for head in [0u16, 2] {
        rig.push_avail(&mut q, head);
    }
    rig.notify(0, 0);
    assert_eq!(rig.used_idx(&q), 6);
    assert_alive(&mut rig);
}

#[test]
fn notify_of_a_queue_that_does_not_exist_is_ignored() {
    let (mut rig, _q) = blk_rig(V1, 8);
    // The notification region has one slot; past it is no register, and queue 1 in the
    // region of a wider device would be an unknown queue: both ignored.
    rig.notify(0, 1);
    rig.notify(0, 200);
    assert_alive(&mut rig);
    let lines = logs::take();
    assert!(
        lines.iter().all(|l| !l.contains("needs reset")),
        "{lines:?}"
    );
}

#[test]
fn notify_of_a_disabled_queue_is_ignored() {
    let sink = SharedSink::default();
    let mut rig = Rig::new(vec![console_dev(&sink)]);
    rig.place_bars();
    // Only queue 1 (transmit) set up; queue 0 never enabled.
    let _q = rig.bring_up(0, V1, &[(1, 4)]);
    rig.notify(0, 0);
    rig.notify(0, 0);
    assert_alive(&mut rig);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "notification of a queue that is not enabled"),
        1,
        "{lines:?}"
    );
}

#[test]
fn notify_before_driver_ok_is_ignored() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    rig.negotiate(0, V1);
    let mut q = rig.queue(0, 0, 8);
    let r = blk_req(&mut rig, 4, 0, 0);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(&q, 1, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_eq!(rig.used_idx(&q), 0, "nothing consumed before DRIVER_OK");
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "notification before DRIVER_OK"),
        1,
        "{lines:?}"
    );
    // Once live, the chain is processed.
    rig.driver_ok(0);
    rig.notify(0, 0);
    assert_eq!(rig.used_idx(&q), 1);
}

#[test]
fn notify_while_needing_reset_is_ignored_until_reset() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    rig.push_avail(&mut q, 9);
    rig.notify(0, 0);
    assert_needs_reset(&mut rig, "outside the table");
    rig.notify(0, 0);
    rig.notify(0, 0);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "notification while the device needs a reset"),
        1,
        "{lines:?}"
    );
    // Reset clears it and the device works again.
    rig.set_status(0, 0);
    assert_eq!(rig.status(0), 0);
    let mut q = rig.bring_up(0, V1, &[(0, 8)]).remove(0);
    let r = blk_req(&mut rig, 4, 0, 0);
    rig.set_desc(&q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(&q, 1, r.status, 1, WRITE, 0);
    rig.push_avail(&mut q, 0);
    rig.notify(0, 0);
    assert_eq!(rig.mem.u8_at(r.status), VIRTIO_BLK_S_OK);
}

#[test]
fn queue_size_not_a_power_of_two_or_too_big_is_refused() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    rig.negotiate(0, V1);
    rig.queue_config(0, 0, 6);
    assert_eq!(rig.enable(0, 0), 0);
    rig.queue_config(0, 0, 512);
    assert_eq!(rig.enable(0, 0), 0);
    rig.queue_config(0, 0, 0);
    assert_eq!(rig.enable(0, 0), 0);
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "queue_enable refused"), 0);
    assert_eq!(logs::count(&lines, "not a power of 2"), 1, "{lines:?}");
}

#[test]
fn rings_outside_ram_or_misaligned_are_refused() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    rig.negotiate(0, V1);
    rig.queue_config(0, 0, 8);
    rig.common_write(
        0,
        common::Q_DESC,
        AccessSize::Double,
        RAM_BASE + RAM_SIZE - 64,
    );
    assert_eq!(
        rig.enable(0, 0),
        0,
        "descriptor table straddles the end of RAM"
    );
    rig.common_write(0, common::Q_DESC, AccessSize::Double, RAM_BASE + 8);
    assert_eq!(rig.enable(0, 0), 0, "misaligned descriptor table");
    rig.common_write(0, common::Q_DESC, AccessSize::Double, RAM_BASE);
    assert_eq!(rig.enable(0, 0), 1);
}

#[test]
fn queue_writes_while_enabled_are_ignored() {
    let (mut rig, q) = blk_rig(V1, 8);
    rig.common_write(0, common::Q_SELECT, AccessSize::Half, 0);
    rig.common_write(0, common::Q_DESC, AccessSize::Double, RAM_BASE + 0x8000);
    rig.common_write(0, common::Q_SIZE, AccessSize::Half, 2);
    rig.common_write(0, common::Q_ENABLE, AccessSize::Half, 0);
    assert_eq!(
        rig.common_read(0, common::Q_DESC, AccessSize::Double),
        q.desc
    );
    assert_eq!(rig.common_read(0, common::Q_SIZE, AccessSize::Half), 8);
    assert_eq!(rig.common_read(0, common::Q_ENABLE, AccessSize::Half), 1);
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "written while enabled"), 1, "{lines:?}");
    assert_eq!(
        logs::count(&lines, "queue_enable written 0"),
        1,
        "{lines:?}"
    );
}

#[test]
fn writes_to_read_only_registers_are_ignored() {
    let (mut rig, _q) = blk_rig(V1, 8);
    let before = rig.device_features(0);
    rig.common_write(0, common::DF, AccessSize::Word, 0);
    rig.common_write(0, common::NUM_QUEUES, AccessSize::Half, 9);
    rig.common_write(0, common::Q_NOFF, AccessSize::Half, 5);
    rig.write(Rig::bar(0) + 0x1000, AccessSize::Byte, 3); // ISR
    rig.write(Rig::bar(0) + 0x2000, AccessSize::Word, 0); // blk capacity
    assert_eq!(rig.device_features(0), before);
    assert_eq!(rig.common_read(0, common::NUM_QUEUES, AccessSize::Half), 1);
    assert_eq!(rig.common_read(0, common::Q_NOFF, AccessSize::Half), 0);
    assert_eq!(rig.read(Rig::bar(0) + 0x2000, AccessSize::Word), 16);
    // Vendor, device and class IDs are read-only too.
    rig.cfg_write(0, 0, AccessSize::Word, 0);
    rig.cfg_write(0, 8, AccessSize::Word, 0);
    assert_eq!(rig.cfg_read(0, 0, AccessSize::Word), 0x1042_1af4);
    assert_eq!(rig.cfg_read(0, 8, AccessSize::Word) & 0xff, 1);
    assert_alive(&mut rig);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "read-only device configuration"),
        1,
        "{lines:?}"
    );
}

// ---- feature negotiation and status ----

#[test]
fn features_ok_refused_without_version_1() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let st = rig.negotiate(0, 0);
    assert_eq!(st & status::FEATURES_OK, 0);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "VIRTIO_F_VERSION_1 not accepted"),
        1,
        "{lines:?}"
    );
    // And DRIVER_OK without FEATURES_OK is refused as well.
    rig.set_status(0, st | status::DRIVER_OK);
    assert_eq!(rig.status(0) & status::DRIVER_OK, 0);
}

#[test]
fn features_ok_refused_for_unknown_features() {
    let mut rig = Rig::new(vec![blk_dev(16)]);
    rig.place_bars();
    let st = rig.negotiate(0, V1 | (1 << 40) | (1 << 17));
    assert_eq!(st & status::FEATURES_OK, 0);
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "features not offered"), 1, "{lines:?}");
    // The driver retries with what was offered: accepted.
    let st = rig.negotiate(0, V1 | VIRTIO_F_RING_EVENT_IDX);
    assert_ne!(st & status::FEATURES_OK, 0);
}

#[test]
fn features_written_after_features_ok_are_ignored() {
    let (mut rig, _q) = blk_rig(V1, 8);
    rig.write_features(0, V1 | VIRTIO_F_INDIRECT_DESC);
    rig.common_write(0, common::GFSELECT, AccessSize::Word, 0);
    assert_eq!(rig.common_read(0, common::GF, AccessSize::Word), 0);
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "after FEATURES_OK"), 1, "{lines:?}");
}

#[test]
fn status_cannot_clear_bits_without_reset() {
    let (mut rig, _q) = blk_rig(V1, 8);
    let st = rig.status(0);
    rig.set_status(0, status::ACKNOWLEDGE);
    assert_eq!(rig.status(0), st);
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "clears bits"), 1, "{lines:?}");
}

#[test]
fn reset_clears_queues_and_negotiation() {
    let (mut rig, _q) = blk_rig(V1 | VIRTIO_F_RING_EVENT_IDX, 8);
    rig.set_status(0, 0);
    assert_eq!(rig.status(0), 0);
    rig.common_write(0, common::Q_SELECT, AccessSize::Half, 0);
    assert_eq!(rig.common_read(0, common::Q_ENABLE, AccessSize::Half), 0);
    assert_eq!(rig.common_read(0, common::Q_SIZE, AccessSize::Half), 256);
    assert_eq!(rig.common_read(0, common::Q_DESC, AccessSize::Double), 0);
    rig.common_write(0, common::GFSELECT, AccessSize::Word, 0);
    assert_eq!(rig.common_read(0, common::GF, AccessSize::Word), 0);
    assert_eq!(rig.isr(0), 0);
}

// ---- interrupt suppression ----

fn flush_chain(rig: &mut Rig, q: &mut RawQueue) {
    let r = blk_req(rig, 4, 0, 0);
    rig.set_desc(q, 0, r.hdr, 16, NEXT, 1);
    rig.set_desc(q, 1, r.status, 1, WRITE, 0);
    rig.push_avail(q, 0);
    rig.notify(0, 0);
}

#[test]
fn no_interrupt_flag_suppresses_used_notifications() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    rig.set_avail_flags(&q, 1);
    flush_chain(&mut rig, &mut q);
    assert_eq!(rig.used_idx(&q), 1);
    assert!(!rig.intx(0));
    assert_eq!(rig.isr(0), 0);
    rig.set_avail_flags(&q, 0);
    flush_chain(&mut rig, &mut q);
    assert!(rig.intx(0));
}

#[test]
fn event_idx_interrupts_only_when_used_event_is_crossed() {
    let (mut rig, mut q) = blk_rig(V1 | VIRTIO_F_RING_EVENT_IDX, 8);
    // used_event = 2: the driver wants an interrupt once used.idx passes 2 (i.e. reaches 3).
    rig.set_used_event(&q, 2);
    flush_chain(&mut rig, &mut q); // used 1
    assert!(!rig.intx(0));
    flush_chain(&mut rig, &mut q); // used 2
    assert!(!rig.intx(0));
    flush_chain(&mut rig, &mut q); // used 3: crosses
    assert!(rig.intx(0));
    assert_eq!(rig.isr(0), 1);
    flush_chain(&mut rig, &mut q); // used 4: event stays 2, not crossed again
    assert!(!rig.intx(0));
    // avail_event tells the driver to notify for the next chain.
    assert_eq!(rig.avail_event(&q), 4);
}

#[test]
fn intx_disable_masks_the_line() {
    let (mut rig, mut q) = blk_rig(V1, 8);
    rig.cfg_write(0, 0x04, AccessSize::Half, 0x6 | 0x400);
    flush_chain(&mut rig, &mut q);
    assert!(!rig.intx(0), "masked");
    assert_ne!(
        rig.cfg_read(0, 0x06, AccessSize::Half) & 0x8,
        0,
        "Interrupt Status still set"
    );
    rig.cfg_write(0, 0x04, AccessSize::Half, 0x6);
    assert!(rig.intx(0), "unmasked");
    rig.isr(0);
    assert!(!rig.intx(0));
}

// ---- console and net ----

#[test]
fn console_output_is_bounded_per_write_and_per_exit() {
    use virtio_devices::console::{MAX_WRITE, ROUND_WRITE};
    let sink = SharedSink::default();
    let mut rig = Rig::new(vec![console_dev(&sink)]);
    rig.place_bars();
    let mut qs = rig.bring_up(0, V1, &[(0, 4), (1, 4)]);
    let tx = &mut qs[1];
    // Four writes of the whole 1 MiB RAM each: one notify used to print 4 MiB.
    for i in 0..4u16 {
        rig.set_desc(tx, i, RAM_BASE, 1 << 20, 0, 0);
        rig.push_avail(tx, i);
    }
    rig.notify(0, 1);
    // One exit: at most ROUND_WRITE bytes reach the sink, each write cut at MAX_WRITE.
    assert_eq!(sink.contents().len() as u64, ROUND_WRITE.min(MAX_WRITE));
    assert_eq!(rig.used_elem(tx, 0), (0, 0));
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "the rest dropped"), 1, "{lines:?}");
    // The rest waits for the transport's polls, a round each.
    for _ in 0..3 {
        rig.poll();
    }
    assert_eq!(sink.contents().len() as u64, 4 * MAX_WRITE);
    assert_eq!(rig.used_elem(tx, 3), (3, 0));
    assert_alive(&mut rig);
}

#[test]
fn console_transmit_chain_with_writable_buffers_outputs_only_readable() {
    let sink = SharedSink::default();
    let mut rig = Rig::new(vec![console_dev(&sink)]);
    rig.place_bars();
    let mut qs = rig.bring_up(0, V1, &[(0, 4), (1, 4)]);
    let tx = &mut qs[1];
    let a = rig.alloc(5, 1);
    rig.mem.write(GuestPhysAddr(a), b"hello").unwrap();
    let w = rig.alloc(8, 1);
    rig.set_desc(tx, 0, a, 5, NEXT, 1);
    rig.set_desc(tx, 1, w, 8, WRITE, 0);
    rig.push_avail(tx, 0);
    rig.notify(0, 1);
    assert_eq!(sink.contents(), b"hello");
    assert_eq!(rig.used_elem(tx, 0), (0, 0));
}

#[test]
fn console_input_fills_small_buffers_in_order() {
    let sink = SharedSink::default();
    let input = InputQueue::new(64);
    let mut rig = Rig::new(vec![Box::new(VirtioConsole::new(sink, input.clone()))]);
    rig.place_bars();
    let mut qs = rig.bring_up(0, V1, &[(0, 4), (1, 4)]);
    let rx = &mut qs[0];
    let bufs: Vec<u64> = (0..3).map(|_| rig.alloc(2, 1)).collect();
    for (i, b) in bufs.iter().enumerate() {
        rig.set_desc(rx, i as u16, *b, 2, WRITE, 0);
        rig.push_avail(rx, i as u16);
    }
    rig.notify(0, 0); // nothing to deliver yet
    assert_eq!(rig.used_idx(rx), 0);
    input.push(b"abcde");
    rig.poll();
    assert_eq!(rig.used_idx(rx), 3);
    assert_eq!(rig.used_elem(rx, 2), (2, 1));
    let mut got = Vec::new();
    for b in &bufs {
        let mut x = [0u8; 2];
        rig.mem.read(GuestPhysAddr(*b), &mut x).unwrap();
        got.extend_from_slice(&x);
    }
    assert_eq!(&got[..5], b"abcde");
}

#[test]
fn net_receive_buffer_too_small_drops_the_frame() {
    let mut rig = Rig::new(vec![Box::new(VirtioNet::new(
        [2, 0, 0, 0, 0, 1],
        ArpIcmpResponder::new([2, 0, 0, 0, 0, 2], [10, 0, 2, 2]),
    ))]);
    rig.place_bars();
    let mut qs = rig.bring_up(0, V1, &[(0, 4), (1, 4)]);
    // A tiny receive buffer, then an ARP request that gets answered.
    let small = rig.alloc(16, 16);
    rig.set_desc(&qs[0], 0, small, 16, WRITE, 0);
    rig.push_avail(&mut qs[0], 0);
    rig.notify(0, 0);
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&[
        2, 0, 0, 0, 0, 1, 10, 0, 2, 15, 0, 0, 0, 0, 0, 0, 10, 0, 2, 2,
    ]);
    let tx = rig.alloc(12 + arp.len() as u64, 16);
    rig.mem.write(GuestPhysAddr(tx + 12), &arp).unwrap();
    rig.set_desc(&qs[1], 0, tx, 12 + arp.len() as u32, 0, 0);
    rig.push_avail(&mut qs[1], 0);
    rig.notify(0, 1);
    assert_eq!(rig.used_idx(&qs[1]), 1);
    assert_eq!(rig.used_idx(&qs[0]), 1);
    assert_eq!(
        rig.used_elem(&qs[0], 0),
        (0, 0),
        "dropped, buffer returned empty"
    );
    let lines = logs::take();
    assert_eq!(logs::count(&lines, "too small"), 1, "{lines:?}");
    assert_alive(&mut rig);
}

#[test]
fn net_transmit_shorter_than_header_is_dropped() {
    let mut rig = Rig::new(vec![Box::new(VirtioNet::new(
        [2, 0, 0, 0, 0, 1],
        ArpIcmpResponder::new([2, 0, 0, 0, 0, 2], [10, 0, 2, 2]),
    ))]);
    rig.place_bars();
    let mut qs = rig.bring_up(0, V1, &[(0, 4), (1, 4)]);
    let tx = rig.alloc(8, 16);
    rig.set_desc(&qs[1], 0, tx, 8, 0, 0);
    rig.push_avail(&mut qs[1], 0);
    rig.notify(0, 1);
    assert_eq!(rig.used_idx(&qs[1]), 1);
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "shorter than the virtio-net header"),
        1,
        "{lines:?}"
    );
    assert_alive(&mut rig);
}

#[test]
fn unhandled_accesses_say_when_they_stop_being_logged() {
    let _serial = virtio_test_harness::serial();
    let _ = logs::take();
    let mut log = mmio_bus::LogOnce::default();
    for a in 0..70u64 {
        log.warn(
            hypervisor::VcpuId(1),
            GuestPhysAddr(0x0c00_0000 + 8 * a),
            AccessSize::Word,
            None,
            "no device",
        );
    }
    let lines = logs::take();
    assert_eq!(
        logs::count(&lines, "unhandled 4-byte read"),
        64,
        "{lines:?}"
    );
    assert_eq!(
        logs::count(
            &lines,
            "mmio: unhandled accesses (by address): 64 distinct ones logged; later ones are counted, not logged"
        ),
        1,
        "{lines:?}"
    );
    assert_eq!(log.suppressed(), 6);
}
