//! virtio-console (§5.3), port 0 only: the guest's `hvc0`.
//!
//! Queue 0 (receiveq) carries input to the guest, queue 1 (transmitq) the guest's output.
//! No multiport (VIRTIO_CONSOLE_F_MULTIPORT is not offered) and no console size; the device
//! offers VIRTIO_CONSOLE_F_EMERG_WRITE: a write to `emerg_wr` prints one byte, before any
//! queue is set up (Linux's early `hvc` path does not use it, but drivers like virtio-drivers
//! do).
//!
//! Output goes to a [`ConsoleSink`] (normally a `console::LineWriter` prefixing
//! `[guest hvc0]`). Input comes from a [`ConsoleInput`]; [`InputQueue`] is one the VMM can
//! share: it pushes the user's bytes in and calls the transport's `poll`.

use crate::queue::Queues;
use crate::{DeviceError, DeviceType, VirtioDevice, read_config_bytes};
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::cell::RefCell;

pub use console::ConsoleSink;

/// Receive queue of port 0.
pub const RECEIVEQ: u16 = 0;
/// Transmit queue of port 0.
pub const TRANSMITQ: u16 = 1;
/// VIRTIO_CONSOLE_F_EMERG_WRITE.
pub const VIRTIO_CONSOLE_F_EMERG_WRITE: u64 = 1 << 2;
/// Largest queue the device accepts.
pub const QUEUE_MAX: u16 = 128;
/// Configuration space: cols, rows (u16), max_nr_ports (u32), emerg_wr (u32).
pub const CONFIG_LEN: u32 = 12;
const EMERG_WR: u32 = 8;
/// The most of one transmit chain that reaches the sink; the rest is dropped (and said so).
/// Linux writes at most a page per buffer.
pub const MAX_WRITE: u64 = 4096;
/// The most bytes written to the sink in one round (one exit): the sink may be a UART at
/// 115200 baud, where 4 KiB takes about 0.36 s; the rest of the ring waits for the next poll.
pub const ROUND_WRITE: u64 = 4096;

/// Where console input comes from.
pub trait ConsoleInput {
    /// True when bytes are waiting.
    fn pending(&self) -> bool;
    /// Moves up to `buf.len()` waiting bytes into `buf`; returns how many.
    fn read(&mut self, buf: &mut [u8]) -> usize;
}

/// A bounded byte FIFO shared between the VMM's input path and the console device. Clones are
/// the same FIFO. Single-threaded (`Rc`), like the event loop.
#[derive(Clone, Debug)]
pub struct InputQueue {
    inner: Rc<RefCell<VecDeque<u8>>>,
    capacity: usize,
}

impl InputQueue {
    /// A FIFO holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        InputQueue {
            inner: Rc::new(RefCell::new(VecDeque::new())),
            capacity,
        }
    }

    /// Appends as many of `bytes` as fit; returns how many. The VMM then calls the
    /// transport's `poll` so the device hands them to the guest.
    pub fn push(&self, bytes: &[u8]) -> usize {
        let Ok(mut q) = self.inner.try_borrow_mut() else {
            return 0;
        };
        let n = bytes.len().min(self.capacity.saturating_sub(q.len()));
        q.extend(bytes.iter().take(n));
        n
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.inner.try_borrow().map(|q| q.len()).unwrap_or(0)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ConsoleInput for InputQueue {
    fn pending(&self) -> bool {
        !self.is_empty()
    }

    fn read(&mut self, buf: &mut [u8]) -> usize {
        let Ok(mut q) = self.inner.try_borrow_mut() else {
            return 0;
        };
        let mut n = 0usize;
        for b in buf.iter_mut() {
            let Some(c) = q.pop_front() else { break };
            *b = c;
            n = n.saturating_add(1); // at most buf.len()
        }
        n
    }
}

/// The console device.
pub struct VirtioConsole<S, I> {
    sink: S,
    input: I,
    features: u64,
    /// Output bytes dropped (beyond [`MAX_WRITE`] of a chain).
    dropped: u64,
    warned: bool,
}

impl<S: ConsoleSink, I: ConsoleInput> VirtioConsole<S, I> {
    /// A console writing to `sink` and reading from `input`.
    pub fn new(sink: S, input: I) -> Self {
        VirtioConsole {
            sink,
            input,
            features: 0,
            dropped: 0,
            warned: false,
        }
    }

    /// Output bytes dropped so far: what chains carried beyond [`MAX_WRITE`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The output sink.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    fn transmit(&mut self, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        let Some(mut q) = queues.get(TRANSMITQ) else {
            return Ok(());
        };
        let mem = q.mem();
        let mut buf = [0u8; 256];
        let mut round = 0u64;
        loop {
            if round >= ROUND_WRITE {
                q.defer();
                break;
            }
            let Some(chain) = q.pop()? else { break };
            let mut r = chain.reader();
            let mut left = MAX_WRITE;
            // Bounded: each read consumes at least one byte or ends the chain, and at most
            // MAX_WRITE bytes are read.
            while left > 0 {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let n = r.read(mem, buf.get_mut(..want).unwrap_or(&mut []))?;
                if n == 0 {
                    break;
                }
                self.sink.write_bytes(buf.get(..n).unwrap_or(&[]));
                left = left.saturating_sub(n as u64);
                round = round.saturating_add(n as u64);
            }
            let dropped = r.remaining();
            if dropped > 0 || chain.oversized() {
                self.dropped = self.dropped.saturating_add(dropped);
                if !self.warned {
                    self.warned = true;
                    log::warn!(
                        "virtio-console: a write of more than {MAX_WRITE} bytes: the rest dropped \
                         ({dropped} bytes; later ones counted, not logged)"
                    );
                }
            }
            q.add_used(chain.head(), 0)?;
        }
        Ok(())
    }

    fn receive(&mut self, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        if !self.input.pending() {
            return Ok(());
        }
        let Some(mut q) = queues.get(RECEIVEQ) else {
            return Ok(());
        };
        let mem = q.mem();
        let mut buf = [0u8; 256];
        while self.input.pending() {
            let Some(chain) = q.pop()? else { break };
            let mut w = chain.writer();
            // Bounded: each pass fills at least one byte or ends.
            while w.remaining() > 0 {
                let want = usize::try_from(w.remaining())
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = self.input.read(buf.get_mut(..want).unwrap_or(&mut []));
                if n == 0 {
                    break;
                }
                w.write(mem, buf.get(..n).unwrap_or(&[]))?;
            }
            let len = u32::try_from(w.written()).unwrap_or(u32::MAX);
            q.add_used(chain.head(), len)?;
        }
        Ok(())
    }
}

impl<S: ConsoleSink, I: ConsoleInput> VirtioDevice for VirtioConsole<S, I> {
    fn device_type(&self) -> DeviceType {
        DeviceType::Console
    }

    fn name(&self) -> &'static str {
        "virtio-console"
    }

    fn features(&self) -> u64 {
        VIRTIO_CONSOLE_F_EMERG_WRITE
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
        // cols = rows = 0 (no size), max_nr_ports = 1, emerg_wr reads 0.
        let mut space = [0u8; CONFIG_LEN as usize];
        if let Some(p) = space.get_mut(4..8) {
            p.copy_from_slice(&1u32.to_le_bytes());
        }
        read_config_bytes(&space, offset, data);
    }

    fn write_config(&mut self, offset: u32, data: &[u8]) -> bool {
        // Only emerg_wr is writable; the character is its low byte.
        if offset == EMERG_WR
            && let Some(&c) = data.first()
        {
            self.sink.write_bytes(&[c]);
            return true;
        }
        false
    }

    fn activate(&mut self, features: u64) {
        self.features = features;
    }

    fn process_queue(&mut self, queue: u16, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        match queue {
            TRANSMITQ => self.transmit(queues),
            RECEIVEQ => self.receive(queues),
            _ => Ok(()),
        }
    }

    fn poll(&mut self, queues: &mut Queues<'_>) -> Result<(), DeviceError> {
        self.receive(queues)
    }

    fn reset(&mut self) {
        self.features = 0;
    }
}
