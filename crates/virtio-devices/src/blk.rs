//! virtio-blk (§5.2) over an in-memory disk image.
//!
//! One request queue. A request is a 16-byte header (`type`, reserved, `sector`) in
//! device-readable buffers, data, and a one-byte status in the last device-writable byte.
//!
//! * `VIRTIO_BLK_T_IN` / `OUT`: the data length must be a multiple of 512 and the sectors must
//!   lie inside the disk, else `VIRTIO_BLK_S_IOERR` (also for sector numbers whose byte offset
//!   overflows); a write to a read-only disk (VIRTIO_BLK_F_RO) is `IOERR`.
//! * `VIRTIO_BLK_T_FLUSH`: nothing to flush in memory; `OK`.
//! * `VIRTIO_BLK_T_GET_ID`: the device's ID string, up to 20 bytes (NUL-padded).
//! * anything else: `VIRTIO_BLK_S_UNSUPP`.
//!
//! A chain too short to hold a header, or without a writable status byte, cannot be answered:
//! it is returned with length 0 and logged once.

use crate::queue::{Chain, QueueAccess, Queues};
use crate::{DeviceError, DeviceType, LogCauses, VirtioDevice, le32, le64, read_config_bytes};
use guest_mem::GuestMemory;

/// Sector size.
pub const SECTOR: u64 = 512;
/// VIRTIO_BLK_F_SIZE_MAX.
pub const VIRTIO_BLK_F_SIZE_MAX: u64 = 1 << 1;
/// VIRTIO_BLK_F_SEG_MAX.
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
/// VIRTIO_BLK_F_RO.
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
/// VIRTIO_BLK_F_BLK_SIZE.
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
/// VIRTIO_BLK_F_FLUSH.
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
/// Read.
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// Write.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// Flush.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// Get the device ID string.
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;
/// Success.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// Failure.
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// Request type not supported.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;
/// Length of the ID string.
pub const ID_LEN: usize = 20;
/// Largest queue.
pub const QUEUE_MAX: u16 = 256;
/// `seg_max`: a request's data segments, leaving room for header and status in a chain of
/// at most QUEUE_MAX descriptors.
pub const SEG_MAX: u32 = QUEUE_MAX as u32 - 2;
/// `size_max`: the largest segment. With SEG_MAX of them a request's chain stays under the
/// queue's MAX_CHAIN_LEN (254 x 64 KiB + header + status < 16 MiB), so a driver that keeps
/// to the advertised limits never has a request refused for its size.
pub const SIZE_MAX: u32 = 64 * 1024;
#[allow(clippy::panic)] // a compile-time check
const _: () = assert!(
    (SEG_MAX as u64 * SIZE_MAX as u64 + HEADER as u64) < crate::queue::MAX_CHAIN_LEN,
    "seg_max x size_max must fit in one chain"
);
/// Configuration space exposed: capacity, size_max, seg_max, geometry, blk_size.
pub const CONFIG_LEN: u32 = 24;

const HEADER: usize = 16;

/// The block device, over any byte buffer (`&'static mut [u8]`, `Vec<u8>`, ...). A trailing
/// partial sector is not part of the disk.
pub struct VirtioBlk<D> {
    disk: D,
    read_only: bool,
    id: [u8; ID_LEN],
    log: LogCauses,
}

enum Malformed {
    NoStatus = 0,
    ShortHeader = 1,
    TooLarge = 2,
}

impl<D: AsRef<[u8]> + AsMut<[u8]>> VirtioBlk<D> {
    /// A writable disk called `id` (truncated to 20 bytes).
    pub fn new(disk: D, id: &str) -> Self {
        let mut id_bytes = [0u8; ID_LEN];
        for (d, s) in id_bytes.iter_mut().zip(id.bytes()) {
            *d = s;
        }
        VirtioBlk {
            disk,
            read_only: false,
            id: id_bytes,
            log: LogCauses::default(),
        }
    }

    /// Offers VIRTIO_BLK_F_RO and fails writes.
    pub fn read_only(mut self, ro: bool) -> Self {
        self.read_only = ro;
        self
    }

    /// Capacity in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.disk.as_ref().len() as u64 / SECTOR
    }

    /// The disk image.
    pub fn disk(&self) -> &[u8] {
        self.disk.as_ref()
    }

    /// The byte range of `len` bytes at `sector`, if it lies inside the disk.
    fn range(&self, sector: u64, len: u64) -> Option<core::ops::Range<usize>> {
        if !len.is_multiple_of(SECTOR) {
            return None;
        }
        let start = sector.checked_mul(SECTOR)?;
        let end = start.checked_add(len)?;
        // capacity() * SECTOR is the disk's length, rounded down to whole sectors.
        if end > self.capacity().saturating_mul(SECTOR) {
            return None;
        }
        Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }

    fn malformed(&mut self, why: Malformed) {
        let cause = why as u8;
        if self.log.first(cause) {
            let text = match cause {
                0 => "request without a writable status byte: returned unanswered",
                1 => "request shorter than its 16-byte header: returned unanswered",
                _ => "request larger than seg_max x size_max allows: answered IOERR",
            };
            log::warn!("virtio-blk: {text}");
        }
    }

    /// Handles one request; returns the bytes written into the chain.
    fn request(&mut self, mem: &GuestMemory<'_>, chain: &Chain) -> Result<u32, DeviceError> {
        let writable = chain.writable_len();
        if writable == 0 {
            self.malformed(Malformed::NoStatus);
            return Ok(0);
        }
        if chain.oversized() {
            // More than the queue serves in one chain (beyond SEG_MAX x SIZE_MAX): this
            // request fails, the device goes on. The chain kept only its last writable
            // buffer, whose last byte is the status.
            self.malformed(Malformed::TooLarge);
            let mut w = chain.writer();
            w.skip(writable.saturating_sub(1));
            w.write(mem, &[VIRTIO_BLK_S_IOERR])?;
            return Ok(0);
        }
        let mut hdr = [0u8; HEADER];
        let mut r = chain.reader();
        if r.read(mem, &mut hdr)? < HEADER {
            self.malformed(Malformed::ShortHeader);
            return Ok(0);
        }
        let kind = le32(&hdr, 0);
        let sector = le64(&hdr, 8);
        // Data: the writable bytes before the status byte (reads), or the readable bytes after
        // the header (writes).
        let data_in = writable.saturating_sub(1); // writable != 0 (checked above)
        let mut w = chain.writer();
        let status = match kind {
            VIRTIO_BLK_T_IN => match self.range(sector, data_in) {
                Some(range) => {
                    let src = self.disk.as_ref().get(range).unwrap_or(&[]);
                    w.write(mem, src)?;
                    VIRTIO_BLK_S_OK
                }
                None => VIRTIO_BLK_S_IOERR,
            },
            VIRTIO_BLK_T_OUT => match self.range(sector, r.remaining()) {
                Some(range) if !self.read_only => {
                    let dst = self.disk.as_mut().get_mut(range).unwrap_or(&mut []);
                    r.read(mem, dst)?;
                    VIRTIO_BLK_S_OK
                }
                _ => VIRTIO_BLK_S_IOERR,
            },
            VIRTIO_BLK_T_FLUSH => VIRTIO_BLK_S_OK,
            VIRTIO_BLK_T_GET_ID => {
                let n = usize::try_from(data_in).unwrap_or(usize::MAX).min(ID_LEN);
                w.write(mem, self.id.get(..n).unwrap_or(&[]))?;
                VIRTIO_BLK_S_OK
            }
            _ => VIRTIO_BLK_S_UNSUPP,
        };
        // The status byte is the last writable byte, whatever was written before it. The used
        // length counts the bytes written contiguously from the first writable byte (§2.7.8.1:
        // the device wrote at least that many), the status byte included when nothing was
        // skipped before it.
        let contiguous = w.written();
        // The writer wrote at most data_in bytes before this point.
        w.skip(data_in.saturating_sub(contiguous));
        w.write(mem, &[status])?;
        let used = if contiguous == data_in {
            data_in.saturating_add(1)
        } else {
            contiguous
        };
        Ok(u32::try_from(used).unwrap_or(u32::MAX))
    }

    fn process(&mut self, q: &mut QueueAccess<'_>) -> Result<(), DeviceError> {
        let mem = q.mem();
        while let Some(chain) = q.pop()? {
            let len = self.request(mem, &chain)?;
            q.add_used(chain.head(), len)?;
        }
        Ok(())
    }
}

impl<D: AsRef<[u8]> + AsMut<[u8]>> VirtioDevice for VirtioBlk<D> {
    fn device_type(&self) -> DeviceType {
        DeviceType::Block
    }

    fn name(&self) -> &'static str {
        "virtio-blk"
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { VIRTIO_BLK_F_RO } else { 0 };
        VIRTIO_BLK_F_SIZE_MAX
            | VIRTIO_BLK_F_SEG_MAX
            | VIRTIO_BLK_F_BLK_SIZE
            | VIRTIO_BLK_F_FLUSH
            | ro
    }

    fn num_queues(&self) -> u16 {
        1
    }

    fn queue_max_size(&self, _queue: u16) -> u16 {
        QUEUE_MAX
    }

    fn config_len(&self) -> u32 {
        CONFIG_LEN
    }

    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let mut space = [0u8; CONFIG_LEN as usize];
        let fields: [(usize, &[u8]); 4] = [
            (0, &self.capacity().to_le_bytes()),
            (8, &SIZE_MAX.to_le_bytes()),
            (12, &SEG_MAX.to_le_bytes()),
            (20, &(SECTOR as u32).to_le_bytes()),
        ];
        for (off, bytes) in fields {
            if let Some(dst) = space.get_mut(off..off.saturating_add(bytes.len())) {
                dst.copy_from_slice(bytes);
            }
        }
        read_config_bytes(&space, offset, data);
    }

    fn process_queue(&mut self, queue: u16, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        match queues.get(queue) {
            Some(mut q) if queue == 0 => self.process(&mut q),
            _ => Ok(()),
        }
    }

    fn reset(&mut self) {}
}
