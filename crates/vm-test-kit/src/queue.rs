//! The driver's side of a split virtqueue (virtio 1.2 §2.7), written byte by byte into guest
//! RAM as a guest driver lays it out: a test can build any chain, honest or hostile.

use guest_mem::{GuestMemory, GuestPhysAddr};

/// VIRTQ_DESC_F_NEXT.
pub const NEXT: u16 = 1;
/// VIRTQ_DESC_F_WRITE.
pub const WRITE: u16 = 2;
/// VIRTQ_DESC_F_INDIRECT.
pub const INDIRECT: u16 = 4;

/// One split virtqueue as the driver set it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestQueue {
    /// PCI slot of the device.
    pub slot: u8,
    /// Queue index.
    pub index: u16,
    /// Size (entries).
    pub size: u16,
    /// Descriptor table.
    pub desc: u64,
    /// Available ring.
    pub avail: u64,
    /// Used ring.
    pub used: u64,
    /// Notification address (BAR + notify offset).
    pub notify: u64,
    /// The driver's next available index.
    pub avail_idx: u16,
    /// The used index consumed so far.
    pub last_used: u16,
}

impl GuestQueue {
    /// Bytes of the descriptor table, available ring and used ring of `size` entries (with
    /// the event-index words).
    pub const fn ring_bytes(size: u16) -> (u64, u64, u64) {
        let n = size as u64;
        (16 * n, 6 + 2 * n, 6 + 8 * n)
    }

    /// Writes a descriptor at `at` (a table entry, direct or indirect).
    pub fn write_desc(mem: &GuestMemory<'_>, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        mem.write(GuestPhysAddr(at), &raw)
            .expect("descriptor in guest RAM");
    }

    /// Writes descriptor `i` of the table.
    pub fn set_desc(
        &self,
        mem: &GuestMemory<'_>,
        i: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        GuestQueue::write_desc(mem, self.desc + 16 * u64::from(i), addr, len, flags, next);
    }

    /// Makes chain `head` available: the ring entry, then the index.
    pub fn publish(&mut self, mem: &GuestMemory<'_>, head: u16) {
        let slot = u64::from(self.avail_idx % self.size);
        mem.write_u16(GuestPhysAddr(self.avail + 4 + 2 * slot), head)
            .expect("avail ring");
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.set_avail_idx(mem, self.avail_idx);
    }

    /// Publishes `idx` as `avail.idx` (any value: a hostile driver's too).
    pub fn set_avail_idx(&self, mem: &GuestMemory<'_>, idx: u16) {
        mem.write_u16(GuestPhysAddr(self.avail + 2), idx)
            .expect("avail idx");
    }

    /// Sets `avail.flags`.
    pub fn set_avail_flags(&self, mem: &GuestMemory<'_>, flags: u16) {
        mem.write_u16(GuestPhysAddr(self.avail), flags)
            .expect("avail flags");
    }

    /// Sets `used_event` (EVENT_IDX).
    pub fn set_used_event(&self, mem: &GuestMemory<'_>, v: u16) {
        mem.write_u16(GuestPhysAddr(self.avail + 4 + 2 * u64::from(self.size)), v)
            .expect("used_event");
    }

    /// `used_event` for an interrupt at the next completion (callbacks on), or never
    /// (`virtqueue_disable_cb` with EVENT_IDX).
    pub fn want_interrupt(&self, mem: &GuestMemory<'_>, on: bool) {
        let v = if on {
            self.last_used
        } else {
            self.last_used.wrapping_sub(1)
        };
        self.set_used_event(mem, v);
    }

    /// `avail_event` as the device published it (EVENT_IDX).
    pub fn avail_event(&self, mem: &GuestMemory<'_>) -> u16 {
        mem.read_u16(GuestPhysAddr(self.used + 4 + 8 * u64::from(self.size)))
            .expect("avail_event")
    }

    /// The device's `used.idx`.
    pub fn used_idx(&self, mem: &GuestMemory<'_>) -> u16 {
        mem.read_u16(GuestPhysAddr(self.used + 2))
            .expect("used idx")
    }

    /// Used element `n` (id, len).
    pub fn used_elem(&self, mem: &GuestMemory<'_>, n: u16) -> (u32, u32) {
        let at = self.used + 4 + 8 * u64::from(n % self.size);
        (
            mem.read_u32(GuestPhysAddr(at)).expect("used id"),
            mem.read_u32(GuestPhysAddr(at + 4)).expect("used len"),
        )
    }
}
