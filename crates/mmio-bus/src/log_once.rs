//! Logging a guest's bad accesses once per address, not once per access: a guest polling an
//! unhandled register must not flood the console.

use arm_fault::AccessSize;
use guest_mem::GuestPhysAddr;
use hypervisor::VcpuId;

const SLOTS: usize = 64;

/// Remembers the first [`SLOTS`] keys it was asked about; past that it says once, naming
/// what it stopped reporting, that later ones are counted and not logged.
#[derive(Debug)]
pub struct LogOnce {
    /// What its warnings are about, for the message when it is full.
    what: &'static str,
    addrs: [u64; SLOTS],
    len: usize,
    overflow: u64,
}

impl Default for LogOnce {
    fn default() -> Self {
        Self::new("mmio: unhandled accesses (by address)")
    }
}

impl LogOnce {
    /// An empty table for warnings about `what`.
    pub const fn new(what: &'static str) -> Self {
        Self {
            what,
            addrs: [0; SLOTS],
            len: 0,
            overflow: 0,
        }
    }

    /// Keys seen after the table was full (not logged).
    pub fn suppressed(&self) -> u64 {
        self.overflow
    }

    /// True the first time `addr` is seen (the caller logs), false afterwards. Once the table
    /// is full it logs, the first time only, that it stops reporting.
    pub fn first(&mut self, addr: u64) -> bool {
        let seen = self
            .addrs
            .get(..self.len)
            .is_some_and(|s| s.contains(&addr));
        if seen {
            return false;
        }
        if let Some(slot) = self.addrs.get_mut(self.len) {
            *slot = addr;
            // `get_mut(len)` succeeded: len < capacity.
            self.len = self.len.saturating_add(1);
            return true;
        }
        self.overflow = self.overflow.saturating_add(1);
        if self.overflow == 1 {
            log::warn!(
                "{}: {SLOTS} distinct ones logged; later ones are counted, not logged",
                self.what
            );
        }
        false
    }

    /// Distinct addresses remembered.
    pub fn seen(&self) -> usize {
        self.len
    }

    /// Logs an unhandled access at warn level, once per address.
    pub fn warn(
        &mut self,
        vcpu: VcpuId,
        addr: GuestPhysAddr,
        size: AccessSize,
        value: Option<u64>,
        device: &str,
    ) {
        if !self.first(addr.0) {
            return;
        }
        match value {
            Some(v) => log::warn!(
                "[{vcpu}] unhandled {}-byte write of {v:#x} at {addr} ({device}): ignored",
                size.bytes()
            ),
            None => log::warn!(
                "[{vcpu}] unhandled {}-byte read at {addr} ({device}): reads as zero",
                size.bytes()
            ),
        }
    }
}
