//! The machine under test: the test kit's (`vm-test-kit`): `vm-builder`'s machine of the
//! `qemu-virt` table (the real vGIC, PL011, PCI host bridge with virtio console, block and
//! net) over a hypervisor double that does the least possible work, guest RAM in a `Vec`.
//! Guest exits are made the way seL4 reports them: `Event::Exit` with the syndrome (ESR_EL2)
//! and the faulting IPA, registers in the double.
//!
//! `bring_up` then plays the Linux guest's boot (GIC, secondary vCPUs through PSCI CPU_ON, PCI
//! enumeration and BAR placement), and each scenario runs its virtio driver's probe (features,
//! virtqueues in guest RAM, DRIVER_OK), every step as the trapped access Linux would make.

use std::sync::atomic::{AtomicU64, Ordering};

use vm_test_kit::TestHyp;
use vm_test_kit::machine::TestVm;
use vmm::{Event, Reply};
use vmm_platform::{Platform, QEMU_VIRT, VirtioKind};

pub use arm_fault::syndrome::{msr_sgi1r as esr_msr_sgi1r, smc as esr_smc};
pub use vm_test_kit::machine::{GUEST_IP, GUEST_MAC, RT, VMM_IP, VMM_MAC, load, store};
pub use vm_test_kit::queue::{GuestQueue, INDIRECT, NEXT, WRITE};

/// The platform the machine is (QEMU virt: 4 vCPUs, GICv3, PL011, ECAM).
pub const PLATFORM: &Platform = &QEMU_VIRT;
/// Guest RAM the bench allocates (the platform has more; nothing here needs it). Rings and
/// buffers go in its upper half.
pub const RAM_SIZE: usize = 64 << 20;
/// Disk image size (the self-test disk is 1 MiB).
pub const DISK_SIZE: usize = 1 << 20;

/// PCI slot of virtio-console (the table's order).
pub const SLOT_CONSOLE: u8 = slot(VirtioKind::Console);
/// virtio-blk.
pub const SLOT_BLK: u8 = slot(VirtioKind::Block);
/// virtio-net.
pub const SLOT_NET: u8 = slot(VirtioKind::Net);

const fn slot(kind: VirtioKind) -> u8 {
    let Some(h) = PLATFORM.pci() else {
        panic!("qemu-virt has a PCI bridge")
    };
    let mut i = 0;
    while i < h.functions.len() {
        if matches!(
            (h.functions[i], kind),
            (VirtioKind::Console, VirtioKind::Console)
                | (VirtioKind::Block, VirtioKind::Block)
                | (VirtioKind::Net, VirtioKind::Net)
        ) {
            return i as u8;
        }
        i += 1;
    }
    panic!("qemu-virt lists every virtio kind")
}

/// GIC distributor.
pub const GICD: u64 = PLATFORM.gic.dist.0;
/// Redistributor of vCPU 0 (stride 0x2_0000; SGI_base at +0x1_0000).
pub const GICR: u64 = PLATFORM.gic.redist.0;
/// PL011.
pub const UART: u64 = match PLATFORM.pl011() {
    Some(u) => u.base.0,
    None => panic!("qemu-virt has a PL011"),
};

/// The VM type under test.
pub type BenchVm = TestVm<'static>;

/// The machine.
pub type Machine = vm_test_kit::TestMachine<'static>;

/// What one measured step does.
#[derive(Clone, Copy, Debug)]
pub enum Measured {
    /// One guest exit.
    Exit(Event),
    /// The devices' poll the root task runs after an event that reached one.
    Poll,
    /// Nothing: the harness's own overhead.
    Nothing,
}

/// The step under measurement. `#[no_mangle]` so that callgrind's `--toggle-collect` can
/// name it; never inlined so that it exists.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn bench_measured(vm: &mut BenchVm, m: &Measured) -> Reply {
    step(vm, m)
}

/// Steps run outside measurement (it also keeps the two functions from being folded into one).
pub static UNMEASURED: AtomicU64 = AtomicU64::new(0);

/// The same step outside measurement (bring-up, warm-up, the unmeasured part of a cycle).
#[unsafe(no_mangle)]
#[inline(never)]
pub fn bench_unmeasured(vm: &mut BenchVm, m: &Measured) -> Reply {
    UNMEASURED.fetch_add(1, Ordering::Relaxed);
    step(vm, m)
}

#[inline(always)]
fn step(vm: &mut BenchVm, m: &Measured) -> Reply {
    match *m {
        Measured::Exit(ev) => vm.handle(ev),
        Measured::Poll => {
            vm.poll_devices_now();
            Reply::Nothing
        }
        Measured::Nothing => Reply::Nothing,
    }
}

fn disk_image() -> Vec<u8> {
    // As images/qemu-virt/build.sh makes it: a marker, then i % 251 up to 4 KiB, then bytes
    // that are not zero either (so that a wrong copy shows).
    let mut d: Vec<u8> = (0..DISK_SIZE).map(|i| (i % 251) as u8).collect();
    d[..24].copy_from_slice(b"SEL4-VMM-DISK-PATTERN-v1");
    d
}

/// The machine, not yet brought up: the double keeps registers and PCs only (no event log,
/// no list-register model), so that it costs next to nothing per exit.
pub fn new_machine() -> Machine {
    let ram: &'static mut [u8] = Box::leak(vec![0u8; RAM_SIZE].into_boxed_slice());
    let hyp = TestHyp::new(usize::from(PLATFORM.vcpus))
        .recording(false)
        .model_list_registers(false);
    Machine::new(PLATFORM, hyp, ram, None, disk_image())
}
