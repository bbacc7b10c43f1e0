//! The seed corpus and regression inputs, written op by op ([`vmm_fuzz::encode`]): each
//! starts the fuzzer from real driver traffic (a block read and write, a network ping, console
//! output, GIC programming, PCI enumeration, PSCI calls) rather than from random bytes.
//! `cargo test -p vmm-fuzz --test seeds -- --ignored` rewrites the files; the normal run checks
//! the committed ones are what this file builds, so the two cannot drift apart.

// Test code: a seed that does not build is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs;
use std::path::Path;

use vmm_fuzz::Focus;
use vmm_fuzz::encode::{Addr, Input};

const QEMU: u8 = 0;
const ORIN: u8 = 1;
/// QEMU virt's RAM base (the fuzz machine's RAM starts there).
const QEMU_RAM: u64 = 0x4000_0000;
const NEXT: u8 = 1;
const WRITE: u8 = 2;
const INDIRECT: u8 = 4;

/// Every generated file: (directory, name, bytes).
fn files() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (p, pname) in [(QEMU, "qemu"), (ORIN, "orin")] {
        out.push(("corpus/virtio_blk", format!("read-write-{pname}"), blk(p)));
        out.push(("corpus/virtio_net", format!("arp-ping-{pname}"), net(p)));
        out.push((
            "corpus/virtio_console",
            format!("hello-{pname}"),
            console(p),
        ));
        out.push(("corpus/vgic", format!("sgi-eoi-{pname}"), vgic(p)));
        out.push(("corpus/pci_ecam", format!("enumerate-{pname}"), ecam(p)));
        out.push(("corpus/psci", format!("calls-{pname}"), psci(p)));
        out.push(("corpus/vm_all", format!("mixed-{pname}"), all(p)));
        out.push(("corpus/psci", format!("system-off-{pname}"), system_off(p)));
        out.push((
            "corpus/virtio_blk_valid",
            format!("full-length-tables-{pname}"),
            blk_valid(p),
        ));
    }
    out.push((
        "regressions/virtio_console",
        "chain-of-128-whole-ram-buffers".into(),
        whole_ram(128, 128),
    ));
    out.push((
        "regressions/virtio_console",
        "128-chains-of-16-mib".into(),
        whole_ram(16, 128),
    ));
    out.push((
        "regressions/vm_all",
        "t32-data-abort-steps-pc-by-2".into(),
        t32(),
    ));
    out
}

/// A virtio-blk read of sector 2 into a 1 KiB buffer, then a write of it, then GET_ID; the
/// header, data and status in three descriptors, and the same with an indirect table.
/// Well-behaved requests: 254 segments in an indirect table of 256 entries (the queue's
/// size), read and write; the longest direct chain; GET_ID; FLUSH.
fn blk_valid(p: u8) -> Vec<u8> {
    let op = Focus::VirtioBlkValid
        .kind_of(vmm_fuzz::Op::BlkRequest)
        .unwrap();
    let mut v = vec![p];
    for (kind, indirect, segs) in [
        (0u8, 1u8, 254u16),
        (1, 1, 254),
        (0, 0, 254),
        (3, 1, 0),
        (2, 0, 0),
    ] {
        v.extend_from_slice(&[0, op, kind, indirect]);
        v.extend_from_slice(&segs.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
    }
    v
}

fn blk(p: u8) -> Vec<u8> {
    let mut i = Input::new(Focus::VirtioBlk, p);
    // Request header: type IN (0), reserved, sector 2.
    i.buf(0, [0, 0, 0, 0, 0, 0, 0, 0])
        .buf(1, 2u64.to_le_bytes());
    i.desc(0, 0, Addr::Buf(0), 16, NEXT, 1)
        .desc(0, 1, Addr::Buf(0x10), 1024, NEXT | WRITE, 2)
        .desc(0, 2, Addr::Buf(0x100), 1, WRITE, 0)
        .publish(0, 0, 0, 1, 0);
    // OUT (1) of the same buffer to sector 4.
    i.buf(4, [1, 0, 0, 0, 0, 0, 0, 0])
        .buf(5, 4u64.to_le_bytes());
    i.desc(0, 3, Addr::Buf(4 * 8 / 16), 16, NEXT, 4)
        .desc(0, 4, Addr::Buf(0x10), 1024, NEXT, 5)
        .desc(0, 5, Addr::Buf(0x101), 1, WRITE, 0)
        .publish(1, 0, 3, 1, 0);
    // GET_ID (8) through an indirect table at buffer offset 0x200 (16-byte units).
    i.buf(8, [8, 0, 0, 0, 0, 0, 0, 0]);
    let buf = ram(p) + vmm_fuzz::machine::BUF_OFF;
    i.buf(0x400, u64_of(buf + 64))
        .buf(0x401, len_flags_next(16, NEXT, 1));
    i.buf(0x402, u64_of(buf + 0x300))
        .buf(0x403, len_flags_next(20, NEXT | WRITE, 2));
    i.buf(0x404, u64_of(buf + 0x320))
        .buf(0x405, len_flags_next(1, WRITE, 0));
    i.desc(0, 6, Addr::Buf(0x200), 48, INDIRECT, 0)
        .publish(2, 0, 6, 1, 0);
    i.poll();
    i.bytes
}

/// The platform's guest RAM base.
fn ram(p: u8) -> u64 {
    if p == QEMU { QEMU_RAM } else { 0x9000_0000 }
}

fn u64_of(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

fn len_flags_next(len: u32, flags: u8, next: u16) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&len.to_le_bytes());
    b[4..6].copy_from_slice(&u16::from(flags).to_le_bytes());
    b[6..].copy_from_slice(&next.to_le_bytes());
    b
}

/// virtio-net: receive buffers posted, an ARP request and an ICMP echo sent (12-byte header
/// then the frame), the device polled for the replies.
fn net(p: u8) -> Vec<u8> {
    let mut i = Input::new(Focus::VirtioNet, p);
    // receiveq: two 2 KiB buffers.
    i.desc(0, 0, Addr::Buf(0x400), 2048, WRITE, 0)
        .desc(0, 1, Addr::Buf(0x480), 2048, WRITE, 0)
        .publish(0, 0, 0, 2, 1);
    // ARP who-has 10.0.2.2 from the guest's MAC.
    let mut f = vec![0u8; 12];
    f.extend([0xff; 6]);
    f.extend([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06]);
    f.extend([
        0, 1, 8, 0, 6, 4, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 10, 0, 2, 15,
    ]);
    f.extend([0; 6]);
    f.extend([10, 0, 2, 2]);
    write_bytes(&mut i, 0, &f);
    i.desc(1, 0, Addr::Buf(0), f.len() as u32, 0, 0)
        .publish(0, 1, 0, 1, 0);
    // ICMP echo request to 10.0.2.2.
    let mut g = vec![0u8; 12];
    g.extend([
        0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x00,
    ]);
    let mut ip = [
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2,
    ];
    let sum = virtio_devices::net::inet_checksum(&ip).to_be_bytes();
    ip[10..12].copy_from_slice(&sum);
    g.extend(ip);
    g.extend([8, 0, 0xf7, 0xfe, 0, 1, 0, 0]);
    write_bytes(&mut i, 0x100, &g);
    i.desc(1, 1, Addr::Buf(0x10), g.len() as u32, 0, 0)
        .publish(0, 1, 1, 1, 0);
    i.poll().poll();
    i.bytes
}

/// Writes `data` into the buffer area at byte offset `at` (a multiple of 8).
fn write_bytes(i: &mut Input, at: u16, data: &[u8]) {
    for (n, c) in data.chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        i.buf(at / 8 + n as u16, b);
    }
}

/// virtio-console: "hello\n" on the transmitq, a receive buffer posted.
fn console(p: u8) -> Vec<u8> {
    let mut i = Input::new(Focus::VirtioConsole, p);
    write_bytes(&mut i, 0, b"hello from hvc0\n");
    i.desc(1, 0, Addr::Buf(0), 16, 0, 0).publish(0, 1, 0, 1, 0);
    i.desc(1, 1, Addr::Buf(0), 6, NEXT, 2)
        .desc(1, 2, Addr::Buf(1), 10, 0, 0)
        .publish(0, 1, 1, 1, 0);
    i.desc(0, 0, Addr::Buf(0x100), 64, WRITE, 0)
        .publish(0, 0, 0, 1, 0);
    i.poll();
    i.bytes
}

/// vGIC: priorities and enables, an SGI to every other vCPU, its EOI; a GICR wake-up.
fn vgic(p: u8) -> Vec<u8> {
    let mut i = Input::new(Focus::Vgic, p);
    i.gic(0, false, 0x0, 2, false, 0)
        .gic(0, false, 0x4, 2, false, 0)
        .gic(0, false, 0x420, 2, true, 0x8080_8080)
        .gic(0, false, 0x6100, 3, true, 1)
        .gic(0, true, 0x1_0100, 2, true, 0xffff)
        .gic(1, true, 0x2_0014, 2, true, 0)
        .gic(1, true, 0x2_0008, 3, false, 0)
        // SGI 1 to all but self (IRM), then SGI 2 to vCPU 1 and 3 (target list 0b1010).
        .sgi(0, 1 << 40 | 1 << 24)
        .sgi(0, 2 << 24 | 0b1010)
        .eoi(1, 0)
        .eoi(2, 0)
        .eoi(3, 1)
        .gic(2, true, 0x4_0000 + 0x1_0200, 2, true, 1 << 5)
        .gic(3, false, 0x104, 2, true, 0xffff_ffff);
    i.bytes
}

/// PCI: enumeration of every slot (IDs, header, BAR sizing and placement, capabilities), a
/// config access through the pci_cfg capability, and an empty slot.
fn ecam(p: u8) -> Vec<u8> {
    let mut i = Input::new(Focus::PciEcam, p);
    for slot in 0..4u8 {
        i.ecam(0, Some(slot), 0, 2, false, 0)
            .ecam(0, Some(slot), 0x8, 2, false, 0)
            .ecam(0, Some(slot), 0x10, 2, true, 0xffff_ffff)
            .ecam(0, Some(slot), 0x10, 2, false, 0)
            .ecam(0, Some(slot), 0x34, 0, false, 0)
            .ecam(0, Some(slot), 0x40, 2, false, 0)
            .ecam(0, Some(slot), 0x4, 1, true, 0x6);
    }
    // pci_cfg capability at 0x84: bar 0, length 4, offset 0 (device_feature_select), data.
    i.ecam(1, Some(1), 0x88, 0, true, 0)
        .ecam(1, Some(1), 0x90, 2, true, 4)
        .ecam(1, Some(1), 0x8c, 2, true, 0x14)
        .ecam(1, Some(1), 0x94, 2, false, 0)
        .bar(2, Some(2), 0x14, 0, false, 0)
        .bar(2, Some(2), 0x1000, 0, false, 0);
    i.bytes
}

/// PSCI: version, features, affinity info, CPU_OFF of vCPU 3 and CPU_ON back, SMCCC
/// version and arch features, a suspend.
fn psci(p: u8) -> Vec<u8> {
    let none: [(u8, &[u8]); 3] = [(0, &[0]), (0, &[0]), (0, &[0])];
    let mut i = Input::new(Focus::Psci, p);
    // PSCI_VERSION, SMCCC_VERSION, SMCCC_ARCH_FEATURES, its workaround ID, CPU_SUSPEND.
    for pick in [0u8, 11, 12, 13, 1] {
        i.smc(0, pick, none);
    }
    // AFFINITY_INFO of vCPU 1; CPU_OFF on vCPU 3; CPU_ON of vCPU 3 at RAM + 0x2000 (x2 is
    // RAM base + a u32); CPU_SUSPEND; FEATURES; an HVC (pick with the top bit set).
    i.smc(0, 8, [(0, &[1]), (0, &[0]), (0, &[0])])
        .smc(3, 2, none)
        .smc(0, 5, [(0, &[3]), (1, &0x2000u32.to_le_bytes()), (0, &[0])])
        .smc(1, 6, [(0, &[0]), (1, &[0, 0, 0, 0]), (0, &[0])])
        .smc(2, 10, none)
        .smc(2, 0x80, none);
    i.bytes
}

/// PSCI_VERSION, then SYSTEM_OFF from vCPU 2.
fn system_off(p: u8) -> Vec<u8> {
    let none: [(u8, &[u8]); 3] = [(0, &[0]), (0, &[0]), (0, &[0])];
    let mut i = Input::new(Focus::Psci, p);
    i.smc(0, 0, none).smc(2, 16, none);
    i.bytes
}

/// Everything: a GIC access, a PCI read, a PL011 store, an SMC, a WFI, a poll.
fn all(p: u8) -> Vec<u8> {
    let mut i = Input::new(Focus::All, p);
    i.gic(0, false, 0x0, 2, false, 0)
        .ecam(1, Some(0), 0, 2, false, 0)
        .raw_exit(2, 0x0400_0000 | 1 << 25, 0, 0) // WFI
        .smc(3, 0, [(0, &[0]), (0, &[0]), (0, &[0])])
        .sgi(0, 1 << 40 | 3 << 24)
        .eoi(1, 0)
        .poll();
    i.bytes
}

/// One chain of `descs` descriptors each covering all of the fuzz machine's guest RAM,
/// made available `entries` times before one notification of the console's transmitq.
fn whole_ram(descs: u8, entries: u16) -> Vec<u8> {
    let mut i = Input::new(Focus::VirtioConsole, QEMU);
    for d in 0..descs {
        let flags = if d + 1 < descs { NEXT } else { 0 };
        i.desc(
            1,
            d,
            Addr::Abs(QEMU_RAM),
            vmm_fuzz::machine::RAM_LEN as u32,
            flags,
            d.wrapping_add(1),
        );
    }
    i.notify(0, 1, entries);
    i.bytes
}

/// A data abort from a 16-bit T32 instruction (IL = 0): the PC steps by 2.
fn t32() -> Vec<u8> {
    let esr = (0x24u32 << 26) | 1 << 24 | 2 << 22 | 1 << 16 | 7;
    let mut i = Input::new(Focus::All, QEMU);
    i.raw_exit(1, esr, 0, 0x100);
    i.bytes
}

#[test]
fn committed_seeds_are_what_this_file_builds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (dir, name, bytes) in files() {
        let path = root.join(dir).join(&name);
        let on_disk = fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == bytes,
            "{} differs from tests/seeds.rs: run `cargo test -p vmm-fuzz --test seeds -- --ignored`",
            path.display()
        );
    }
}

#[test]
#[ignore = "rewrites the seed files"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (dir, name, bytes) in files() {
        fs::create_dir_all(root.join(dir)).unwrap();
        fs::write(root.join(dir).join(name), bytes).unwrap();
    }
}

/// (enabled, last_avail, next_used) of `slot`'s queue `q`.
fn queue(s: &vmm_fuzz::Summary, slot: u8, q: u16) -> (bool, u16, u16) {
    s.queues
        .iter()
        .find(|e| e.0 == slot && e.1 == q)
        .map(|e| (e.2, e.3, e.4))
        .unwrap()
}

#[test]
fn seeds_do_what_they_say() {
    const NEEDS_RESET: u8 = 0x40;
    for p in [QEMU, ORIN] {
        let s = vmm_fuzz::run_vm(Focus::VirtioBlk, &blk(p));
        assert_eq!(s.status[1] & NEEDS_RESET, 0, "{s:?}");
        // Read, write and GET_ID are used.
        assert_eq!(queue(&s, 1, 0), (true, 3, 3), "{s:?}");

        let s = vmm_fuzz::run_vm(Focus::VirtioNet, &net(p));
        assert_eq!(s.status[2] & NEEDS_RESET, 0, "{s:?}");
        assert_eq!(queue(&s, 2, 1), (true, 2, 2), "both frames sent: {s:?}");
        assert_eq!(
            queue(&s, 2, 0),
            (true, 2, 2),
            "ARP and ICMP replies received: {s:?}"
        );

        let s = vmm_fuzz::run_vm(Focus::VirtioConsole, &console(p));
        assert_eq!(queue(&s, 0, 1), (true, 2, 2), "{s:?}");

        let s = vmm_fuzz::run_vm(Focus::Psci, &psci(p));
        assert_eq!(s.running, [true; 4], "vCPU 3 off and on again: {s:?}");
        let s = vmm_fuzz::run_vm(Focus::Psci, &system_off(p));
        let off = vmm::Reply::Shutdown(hypervisor::SystemEvent::PowerOff);
        assert_eq!(s.ended, Some(off), "{s:?}");
    }
    // The chains that used to copy gigabytes: refused (too big: answered, the device goes
    // on) or spread over rounds.
    let s = vmm_fuzz::run_vm(Focus::VirtioConsole, &whole_ram(128, 128));
    assert_eq!(s.status[0] & NEEDS_RESET, 0, "{s:?}");
    let (_, taken, used) = queue(&s, 0, 1);
    assert!(
        taken > 0 && taken == used,
        "oversized chains returned: {s:?}"
    );
    let s = vmm_fuzz::run_vm(Focus::VirtioConsole, &whole_ram(16, 128));
    assert_eq!(
        queue(&s, 0, 1),
        (true, 1, 1),
        "one 16 MiB chain per round: {s:?}"
    );
}
