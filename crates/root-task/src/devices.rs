//! The guest's machine for this platform, built by vm-builder (the same machine the
//! benchmarks, fuzzers and tests run): the vGIC and every emulated device the table lists,
//! backed here by the VMM's UART, the embedded disk image and the in-VMM network responder.

use alloc::vec::Vec;

use console::ConsoleSink;
use guest_mem::GuestMemory;
use virtio_devices::InputQueue;
use virtio_devices::net::ArpIcmpResponder;
use vmm_platform::Platform;

use crate::backend::Sel4Hyp;

/// The guest's virtio-net MAC (QEMU's default, so guest images behave the same bare).
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The VMM's own address on the guest's network: it answers ARP and ICMP echo there.
const VMM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
const VMM_IP: [u8; 4] = [10, 0, 2, 2];

/// Guest console output on the VMM's UART.
#[derive(Clone, Copy)]
pub struct DebugOut;

impl ConsoleSink for DebugOut {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            crate::uart::putc(b);
        }
    }

    fn flush(&mut self) {}
}

/// The VM of platform `p` (vm-builder, as the benchmarks, fuzzers and tests build it) over
/// `hyp` and `mem`, with `disk` behind virtio-blk.
pub fn build<'m>(
    p: &Platform,
    hyp: Sel4Hyp,
    mem: GuestMemory<'m>,
    disk: &[u8],
) -> Result<Machine<'m>, vm_builder::BuildError> {
    vm_builder::build(
        p,
        vm_builder::Backends {
            sink: DebugOut,
            // Console input for hvc0: nothing feeds it yet.
            hvc_input: InputQueue::new(4096),
            disk: Vec::from(disk),
            disk_id: "vmm-disk0",
            mac: GUEST_MAC,
            net: ArpIcmpResponder::new(VMM_MAC, VMM_IP),
        },
        hyp,
        mem,
    )
}

/// The machine the root task runs.
pub type Machine<'m> = vm_builder::Machine<'m, Sel4Hyp, DebugOut>;
