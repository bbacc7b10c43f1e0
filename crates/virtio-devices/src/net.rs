//! virtio-net (§5.1) over a [`NetBackend`].
//!
//! Queue 0 is receiveq1, queue 1 transmitq1; no control queue, no offloads, no mergeable
//! receive buffers. Every buffer starts with the 12-byte `virtio_net_hdr` (VIRTIO_F_VERSION_1
//! always includes `num_buffers`). The device offers VIRTIO_NET_F_MAC and
//! VIRTIO_NET_F_STATUS (link up).
//!
//! The backend is where frames go and come from: [`ArpIcmpResponder`] (the VMM answering ARP
//! and ping for its own address) now; an inter-VM switch port or a real NIC driver later,
//! without touching this device. A received frame is held by the device until the guest has
//! a receive buffer for it (one frame at a time: the backend keeps the rest), and is
//! delivered when the guest adds buffers or when the VMM calls the transport's `poll`.

mod responder;

pub use responder::{ArpIcmpResponder, inet_checksum};

use crate::queue::{QueueAccess, Queues};
use crate::{DeviceError, DeviceType, LogCauses, VirtioDevice, read_config_bytes};
use alloc::vec;
use alloc::vec::Vec;

/// Receive queue.
pub const RECEIVEQ: u16 = 0;
/// Transmit queue.
pub const TRANSMITQ: u16 = 1;
/// VIRTIO_NET_F_MAC.
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
/// VIRTIO_NET_F_STATUS.
pub const VIRTIO_NET_F_STATUS: u64 = 1 << 16;
/// `status`: link is up.
pub const VIRTIO_NET_S_LINK_UP: u16 = 1;
/// `virtio_net_hdr` length with VIRTIO_F_VERSION_1.
pub const NET_HDR_LEN: usize = 12;
/// Largest Ethernet frame (without FCS) carried: 1500-byte MTU, 14-byte header, one VLAN tag.
pub const MAX_FRAME: usize = 1518;
/// Largest queue.
pub const QUEUE_MAX: u16 = 256;
/// Configuration space exposed: mac, status, max_virtqueue_pairs, mtu.
pub const CONFIG_LEN: u32 = 12;

/// Where a virtio-net device's frames go and come from.
pub trait NetBackend {
    /// The guest transmitted `frame` (Ethernet header onwards, no virtio header).
    fn send(&mut self, frame: &[u8]);

    /// Moves the next frame for the guest into `buf` and returns its length, or `None` when no
    /// frame waits. A frame longer than `buf` is the backend's to drop.
    fn recv(&mut self, buf: &mut [u8]) -> Option<usize>;
}

impl<B: NetBackend + ?Sized> NetBackend for alloc::boxed::Box<B> {
    fn send(&mut self, frame: &[u8]) {
        (**self).send(frame);
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        (**self).recv(buf)
    }
}

#[derive(Clone, Copy)]
enum Drop {
    ShortTx = 0,
    LongTx = 1,
    SmallRx = 2,
}

/// The network device.
pub struct VirtioNet<B> {
    mac: [u8; 6],
    backend: B,
    rx_frame: Vec<u8>,
    rx_len: Option<usize>,
    tx_frame: Vec<u8>,
    log: LogCauses,
}

impl<B: NetBackend> VirtioNet<B> {
    /// A NIC with address `mac` on `backend`.
    pub fn new(mac: [u8; 6], backend: B) -> Self {
        VirtioNet {
            mac,
            backend,
            rx_frame: vec![0; MAX_FRAME],
            rx_len: None,
            tx_frame: vec![0; NET_HDR_LEN + MAX_FRAME],
            log: LogCauses::default(),
        }
    }

    /// The backend.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    fn dropped(&mut self, why: Drop, len: u64) {
        if self.log.first(why as u8) {
            let text = match why {
                Drop::ShortTx => "transmit buffer shorter than the virtio-net header",
                Drop::LongTx => "transmitted frame longer than the MTU allows",
                Drop::SmallRx => "receive buffer too small for the frame",
            };
            log::warn!("virtio-net: {text} ({len} bytes): frame dropped");
        }
    }

    fn transmit(&mut self, q: &mut QueueAccess<'_>) -> Result<(), DeviceError> {
        let mem = q.mem();
        while let Some(chain) = q.pop()? {
            let total = chain.readable_len();
            if total < NET_HDR_LEN as u64 {
                self.dropped(Drop::ShortTx, total);
            } else if total > (NET_HDR_LEN + MAX_FRAME) as u64 {
                self.dropped(Drop::LongTx, total);
            } else {
                let n = chain.reader().read(mem, &mut self.tx_frame)?;
                if let Some(frame) = self.tx_frame.get(NET_HDR_LEN..n) {
                    self.backend.send(frame);
                }
            }
            q.add_used(chain.head(), 0)?;
        }
        Ok(())
    }

    /// Delivers waiting frames while the guest has receive buffers (at most the queue size
    /// per call, as the queue's budget says).
    fn receive(&mut self, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        let Some(mut q) = queues.get(RECEIVEQ) else {
            return Ok(());
        };
        let mem = q.mem();
        loop {
            if self.rx_len.is_none() {
                self.rx_len = self.backend.recv(&mut self.rx_frame);
            }
            let Some(len) = self.rx_len else {
                return Ok(());
            };
            let Some(chain) = q.pop()? else {
                return Ok(());
            };
            self.rx_len = None;
            let frame = self.rx_frame.get(..len.min(MAX_FRAME)).unwrap_or(&[]);
            let need = (frame.len() as u64).saturating_add(NET_HDR_LEN as u64);
            let mut used = 0;
            if chain.writable_len() < need {
                self.dropped(Drop::SmallRx, chain.writable_len());
            } else {
                let mut hdr = [0u8; NET_HDR_LEN];
                // num_buffers = 1; no flags, no GSO.
                if let Some(nb) = hdr.get_mut(10..12) {
                    nb.copy_from_slice(&1u16.to_le_bytes());
                }
                let mut w = chain.writer();
                w.write(mem, &hdr)?;
                w.write(mem, frame)?;
                used = u32::try_from(w.written()).unwrap_or(0);
            }
            q.add_used(chain.head(), used)?;
        }
    }
}

impl<B: NetBackend> VirtioDevice for VirtioNet<B> {
    fn device_type(&self) -> DeviceType {
        DeviceType::Net
    }

    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn features(&self) -> u64 {
        VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS
    }

    fn num_queues(&self) -> u16 {
        2
    }

    fn queue_max_size(&self, _queue: u16) -> u16 {
        QUEUE_MAX
    }

    fn config_len(&self) -> u32 {
        CONFIG_LEN
    }

    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let mut space = [0u8; CONFIG_LEN as usize];
        if let Some(m) = space.get_mut(0..6) {
            m.copy_from_slice(&self.mac);
        }
        if let Some(s) = space.get_mut(6..8) {
            s.copy_from_slice(&VIRTIO_NET_S_LINK_UP.to_le_bytes());
        }
        read_config_bytes(&space, offset, data);
    }

    fn process_queue(&mut self, queue: u16, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        if queue == TRANSMITQ
            && let Some(mut q) = queues.get(TRANSMITQ)
        {
            self.transmit(&mut q)?;
        }
        // A transmitted frame may have been answered at once (the responder does), and new
        // receive buffers may take a waiting frame.
        self.receive(queues)
    }

    fn poll(&mut self, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        self.receive(queues)
    }

    fn reset(&mut self) {
        // A frame held for the old driver's buffers is dropped with them.
        self.rx_len = None;
    }
}
