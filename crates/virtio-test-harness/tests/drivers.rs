//! A real guest driver (the `virtio-drivers` crate, 0.13) against our PCI bridge and devices.
//! Its ECAM and BAR accesses are real loads and stores that fault into the same `MmioBus`
//! dispatch the VMM runs for a stage-2 fault; its DMA memory is our guest RAM.

// Test code: clippy.toml allows these inside #[test] functions; helpers need it spelled out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use virtio_devices::VirtioDevice;
use virtio_devices::blk::VirtioBlk;
use virtio_devices::console::{InputQueue, VirtioConsole};
use virtio_devices::net::{ArpIcmpResponder, VirtioNet};
use virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::HeaderType;
use virtio_drivers::transport::pci::virtio_device_type;
use virtio_pci::{BarKind, FunctionOptions};
use virtio_test_harness::SharedSink;
use virtio_test_harness::machine::{GuestHal, MachineGuard};

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
const VMM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
const VMM_IP: [u8; 4] = [10, 0, 2, 2];

fn opts(kind: BarKind) -> FunctionOptions {
    FunctionOptions {
        bar_kind: kind,
        ..FunctionOptions::default()
    }
}

fn boxed(d: impl VirtioDevice + 'static) -> Box<dyn VirtioDevice> {
    Box::new(d)
}

#[test]
fn driver_enumerates_bus_0_through_ecam() {
    let m = MachineGuard::new(vec![
        (
            boxed(VirtioBlk::new(vec![0u8; 4096], "disk")),
            opts(BarKind::Mem64),
        ),
        (
            boxed(VirtioConsole::new(
                SharedSink::default(),
                InputQueue::new(64),
            )),
            opts(BarKind::Mem32),
        ),
        (
            boxed(VirtioNet::new(
                GUEST_MAC,
                ArpIcmpResponder::new(VMM_MAC, VMM_IP),
            )),
            opts(BarKind::Mem64),
        ),
    ]);
    let mut root = m.root();
    let found = m.assign_bars(&mut root);
    assert_eq!(found.len(), 3, "{found:?}");
    let expect = [
        (0x1042, DeviceType::Block, (0x01, 0x00)),
        (0x1043, DeviceType::Console, (0x07, 0x80)),
        (0x1041, DeviceType::Network, (0x02, 0x00)),
    ];
    for (slot, ((df, info), (id, ty, (class, sub)))) in found.iter().zip(expect).enumerate() {
        assert_eq!((df.bus, df.device, df.function), (0, slot as u8, 0));
        assert_eq!(info.vendor_id, 0x1af4);
        assert_eq!(info.device_id, id);
        assert_eq!(info.revision, 1);
        assert_eq!((info.class, info.subclass), (class, sub));
        assert_eq!(info.header_type, HeaderType::Standard);
        assert_eq!(virtio_device_type(info), Some(ty));
    }
    // The BARs the driver placed decode, one after the other, 64- and 32-bit.
    let bars: Vec<_> = (0..3u8)
        .map(|s| m.with(|mm| mm.pci.with(|b| b.decoding_bar(s)).unwrap()))
        .collect();
    assert_eq!(
        bars.iter()
            .map(|b| b.map(|r| (r.base.0, r.size)))
            .collect::<Vec<_>>(),
        vec![
            Some((0x1000_0000, 0x4000)),
            Some((0x1000_4000, 0x4000)),
            Some((0x1000_8000, 0x4000))
        ]
    );
    for (df, _) in &found {
        let info = root.bars(*df).unwrap();
        let (_, size) = info[0].as_ref().unwrap().memory_address_size().unwrap();
        assert_eq!(size, 0x4000);
        // Every function has a transport the driver accepts (all capabilities present).
        let t = m.transport(&mut root, *df);
        drop(t);
    }
    assert!(m.with(|mm| mm.traps) > 100, "the driver's accesses trapped");
}

#[test]
fn driver_blk_writes_then_reads_back_a_pattern() {
    let m = MachineGuard::new(vec![(
        boxed(VirtioBlk::new(vec![0u8; 64 * 512], "vmm-disk0")),
        FunctionOptions::default(),
    )]);
    let mut root = m.root();
    let found = m.assign_bars(&mut root);
    let t = m.transport(&mut root, found[0].0);
    let mut blk = VirtIOBlk::<GuestHal, _>::new(t).expect("blk init");
    assert_eq!(blk.capacity(), 64);
    assert!(!blk.readonly());

    let pattern: Vec<u8> = (0..4 * SECTOR_SIZE)
        .map(|i| (i * 7 + i / 512) as u8)
        .collect();
    blk.write_blocks(5, &pattern).expect("write");
    blk.flush().expect("flush");
    let mut back = vec![0u8; 4 * SECTOR_SIZE];
    blk.read_blocks(5, &mut back).expect("read");
    assert_eq!(back, pattern);
    // Neighbours untouched.
    let mut s4 = vec![0xffu8; SECTOR_SIZE];
    blk.read_blocks(4, &mut s4).expect("read 4");
    assert!(s4.iter().all(|&b| b == 0));

    let mut id = [0u8; 20];
    let n = blk.device_id(&mut id).expect("get id");
    assert_eq!(&id[..n], b"vmm-disk0");

    // Out of range: IOERR, which the driver reports as an I/O error.
    assert!(blk.read_blocks(64, &mut back[..512]).is_err());
    drop(blk);
}

#[test]
fn driver_blk_read_only_refuses_writes() {
    let m = MachineGuard::new(vec![(
        boxed(VirtioBlk::new(vec![0xa5u8; 8 * 512], "ro").read_only(true)),
        FunctionOptions::default(),
    )]);
    let mut root = m.root();
    let found = m.assign_bars(&mut root);
    let t = m.transport(&mut root, found[0].0);
    let mut blk = VirtIOBlk::<GuestHal, _>::new(t).expect("blk init");
    assert!(blk.readonly());
    assert!(blk.write_blocks(0, &[0u8; 512]).is_err());
    let mut back = [0u8; 512];
    blk.read_blocks(0, &mut back).expect("read");
    assert!(back.iter().all(|&b| b == 0xa5));
    drop(blk);
}

#[test]
fn driver_console_output_reaches_sink_and_input_reaches_driver() {
    let sink = SharedSink::default();
    let input = InputQueue::new(256);
    let m = MachineGuard::new(vec![(
        boxed(VirtioConsole::new(sink.clone(), input.clone())),
        opts(BarKind::Mem32),
    )]);
    let mut root = m.root();
    let found = m.assign_bars(&mut root);
    let t = m.transport(&mut root, found[0].0);
    let mut con = VirtIOConsole::<GuestHal, _>::new(t).expect("console init");

    con.send_bytes(b"hello from hvc0\n").expect("send");
    assert_eq!(sink.contents(), b"hello from hvc0\n");

    // Emergency write: one byte through the configuration space.
    con.emergency_write(b'!').expect("emerg");
    assert_eq!(sink.contents(), b"hello from hvc0\n!");

    // The transmissions raised INTA (slot 0, pin A); the driver's ISR read lowers it.
    assert!(
        m.with(|mm| mm.intx(0)),
        "INTA raised for used transmit buffers"
    );
    assert!(!con.ack_interrupt().expect("ack"), "no input yet");
    assert!(!m.with(|mm| mm.intx(0)), "ISR read lowered INTA");

    // Input: the VMM pushes bytes and polls; the device fills the driver's receive buffer and
    // raises INTA again.
    assert_eq!(input.push(b"ls -l\n"), 6);
    m.poll();
    assert!(m.with(|mm| mm.intx(0)), "INTA raised for input");
    assert!(con.ack_interrupt().expect("ack"), "input received");
    assert!(!m.with(|mm| mm.intx(0)));
    let mut got = Vec::new();
    while let Some(c) = con.recv(true).expect("recv") {
        got.push(c);
    }
    assert_eq!(got, b"ls -l\n");
    assert!(input.is_empty());
    drop(con);
}

/// An ARP request from the guest for `VMM_IP`.
fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&VMM_IP);
    f
}

fn checksum(data: &[u8]) -> u16 {
    virtio_devices::net::inet_checksum(data)
}

/// An ICMP echo request from the guest to `VMM_IP`.
fn echo_request(id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(payload);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&GUEST_IP);
    ip.extend_from_slice(&VMM_IP);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = VMM_MAC.to_vec();
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn driver_net_pings_the_vmm() {
    let m = MachineGuard::new(vec![(
        boxed(VirtioNet::new(
            GUEST_MAC,
            ArpIcmpResponder::new(VMM_MAC, VMM_IP),
        )),
        FunctionOptions::default(),
    )]);
    let mut root = m.root();
    let found = m.assign_bars(&mut root);
    let t = m.transport(&mut root, found[0].0);
    let mut net = VirtIONet::<GuestHal, _, 16>::new(t, 2048).expect("net init");
    assert_eq!(net.mac_address(), GUEST_MAC);

    // ARP: who has 10.0.2.2?
    let req = arp_request();
    let mut tx = net.new_tx_buffer(req.len());
    tx.packet_mut().copy_from_slice(&req);
    net.send(tx).expect("send arp");
    let rx = net.receive().expect("arp reply received");
    let p = rx.packet();
    assert_eq!(&p[0..6], &GUEST_MAC, "to the guest");
    assert_eq!(&p[6..12], &VMM_MAC, "from the VMM");
    assert_eq!(&p[12..14], &[0x08, 0x06]);
    assert_eq!(&p[20..22], &[0, 2], "ARP reply");
    assert_eq!(&p[22..28], &VMM_MAC, "sender hardware address");
    assert_eq!(&p[28..32], &VMM_IP);
    assert_eq!(&p[32..38], &GUEST_MAC);
    assert_eq!(&p[38..42], &GUEST_IP);
    net.recycle_rx_buffer(rx).expect("recycle");

    // ping 10.0.2.2, three times.
    for seq in 1..=3u16 {
        let payload: Vec<u8> = (0..56u8).map(|i| i ^ seq as u8).collect();
        let req = echo_request(0x77, seq, &payload);
        let mut tx = net.new_tx_buffer(req.len());
        tx.packet_mut().copy_from_slice(&req);
        net.send(tx).expect("send echo");
        let rx = net.receive().expect("echo reply received");
        let p = rx.packet();
        assert_eq!(&p[0..6], &GUEST_MAC);
        assert_eq!(&p[12..14], &[0x08, 0x00]);
        let ip = &p[14..];
        assert_eq!(checksum(&ip[..20]), 0, "IP header checksum");
        assert_eq!(&ip[12..16], &VMM_IP);
        assert_eq!(&ip[16..20], &GUEST_IP);
        let icmp = &ip[20..20 + 8 + payload.len()];
        assert_eq!(icmp[0], 0, "echo reply");
        assert_eq!(checksum(icmp), 0, "ICMP checksum");
        assert_eq!(&icmp[4..8], &[0, 0x77, (seq >> 8) as u8, seq as u8]);
        assert_eq!(&icmp[8..], &payload[..]);
        net.recycle_rx_buffer(rx).expect("recycle");
    }
    // The used-buffer interrupt went out on INTA and the driver's ISR read acknowledged it.
    assert!(m.with(|mm| mm.irq.history.iter().any(|&(_, l)| l)));
    let _ = net.ack_interrupt();
    assert!(!m.with(|mm| mm.intx(0)));
    drop(net);
}
