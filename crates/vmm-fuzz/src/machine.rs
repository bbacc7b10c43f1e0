//! The machine the VM targets drive: the test kit's (`vm-test-kit`), that is `vm-builder`'s
//! machine of a platform table (the vGIC and every emulated device it lists, as the root task
//! runs it), over a small guest RAM at the platform's RAM base, and the hypervisor double set
//! to check what the VMM asks of it and keep the first violation for the rig.
//!
//! `bring_up` and `probe_all` play a Linux guest's boot as trapped accesses (GIC, secondary
//! vCPUs through PSCI, PCI enumeration, each virtio driver's probe), so that inputs start from
//! a running system rather than spending their bytes on getting there.

use std::cell::Cell;

use guest_mem::{AccessObserver, GuestPhysAddr, GuestRange};
use vm_test_kit::{TestHyp, TestMachine, Violation};
use vmm_platform::Platform;

pub use vm_test_kit::queue::GuestQueue;

/// Guest RAM the fuzzer gives the VM (at the platform's RAM base; the tables have more, which
/// only costs time to clear between inputs).
pub const RAM_LEN: usize = 1 << 20;
/// Where the rings go (offset into RAM).
pub const RINGS_OFF: u64 = 0x1_0000;
/// Where the guest's buffers go (offset into RAM): the fuzzer's descriptors point here.
pub const BUF_OFF: u64 = 0x8_0000;
/// The virtio-blk disk.
pub const DISK_LEN: usize = 64 << 10;

/// The machine the targets drive.
pub type Machine<'m> = TestMachine<'m>;

/// Every guest-memory access, as `GuestMemory` reports it: counted, and checked to lie in
/// guest RAM.
pub struct Watch {
    ram: GuestRange,
    /// Accesses since the last reset.
    pub accesses: Cell<u64>,
    /// Bytes since the last reset.
    pub bytes: Cell<u64>,
    /// The first access outside guest RAM, if any.
    pub outside: Cell<Option<(u64, u64)>>,
}

impl Watch {
    /// A watch over guest RAM `ram`.
    pub fn new(ram: GuestRange) -> Watch {
        Watch {
            ram,
            accesses: Cell::new(0),
            bytes: Cell::new(0),
            outside: Cell::new(None),
        }
    }

    /// Starts counting again.
    pub fn reset(&self) {
        self.accesses.set(0);
        self.bytes.set(0);
    }
}

impl AccessObserver for Watch {
    fn observe(&self, addr: GuestPhysAddr, len: u64, _write: bool) {
        self.accesses.set(self.accesses.get().saturating_add(1));
        self.bytes.set(self.bytes.get().saturating_add(len));
        // Independently of GuestMemory's own check: the platform's RAM as the rig laid it out.
        if !self.ram.contains_range(addr, len) && self.outside.get().is_none() {
            self.outside.set(Some((addr.0, len)));
        }
    }
}

/// The machine of `p` over `ram` (RAM_LEN bytes, zeroed) at the platform's RAM base, every
/// guest-memory access reported to `watch`, brought up and every virtio device probed. The
/// double checks each request (vCPU and list-register indices, INTIDs, entry points in RAM)
/// and keeps the first violation (`vm.hyp().take_violation()`).
pub fn machine<'m>(p: &'static Platform, ram: &'m mut [u8], watch: &'m Watch) -> Machine<'m> {
    let base = p.ram.range.base.0;
    let hyp = TestHyp::new(usize::from(p.vcpus))
        .recording(false)
        // The fuzzer sends maintenance events for EOIs the double never saw.
        .model_list_registers(false)
        .ram(GuestRange::new(base, RAM_LEN as u64))
        .on_violation(Violation::Record);
    let disk = (0..DISK_LEN).map(|i| (i % 251) as u8).collect();
    let mut m = TestMachine::new(p, hyp, ram, Some(watch), disk);
    m.alloc_from(RINGS_OFF);
    m.bring_up();
    m.probe_all();
    m
}
