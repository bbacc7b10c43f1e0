//! Host test rig for `virtio-pci` and `virtio-devices`.
//!
//! Two ways to drive the device models, both through the same [`mmio_bus::MmioBus`] dispatch
//! the VMM runs for a stage-2 fault:
//!
//! * [`machine`]: a **real guest driver** that nobody here wrote (the `virtio-drivers` crate).
//!   The ECAM and BAR windows are mapped `PROT_NONE`; the driver's volatile loads and stores
//!   there fault, a SIGSEGV handler decodes the faulting x86-64 instruction (`iced-x86`),
//!   runs `MmioBus::read`/`write`, writes the loaded value into the saved register (or takes
//!   the stored one from it) and steps RIP over the instruction. The driver's DMA memory
//!   ([`machine::GuestHal`]) is carved out of the very buffer that backs the devices'
//!   `GuestMemory`, with physical address = guest-physical address; buffers the driver shares
//!   from its own heap are bounced through guest RAM.
//! * [`rig`]: a hand-rolled driver that programs the bridge register by register and writes
//!   rings byte by byte, to play a hostile guest.
//!
//! Tests that use either take [`serial`] (the signal handler and the log capture are global).

// Test infrastructure: a failed set-up is a failed test.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

pub mod logs;
pub mod machine;
pub mod rig;
mod trap;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Serialises tests that use the global trap handler or the log capture.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    logs::install();
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Interrupt lines as the interrupt controller would see them.
#[derive(Default, Debug)]
pub struct Irqs {
    /// Current level per INTID.
    pub level: HashMap<u32, bool>,
    /// Every change, in order.
    pub history: Vec<(u32, bool)>,
}

impl Irqs {
    /// The level of `intid` (low if never driven).
    pub fn is_high(&self, intid: u32) -> bool {
        self.level.get(&intid).copied().unwrap_or(false)
    }
}

impl mmio_bus::IrqLines for Irqs {
    fn set_level(&mut self, intid: u32, level: bool) {
        self.level.insert(intid, level);
        self.history.push((intid, level));
    }
}

/// A console sink the test can read while the device owns a clone.
#[derive(Clone, Default)]
pub struct SharedSink(pub std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl console::ConsoleSink for SharedSink {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.0.borrow_mut().extend_from_slice(bytes);
    }
}

impl SharedSink {
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }
}
