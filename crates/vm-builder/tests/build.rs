//! The machine every platform table builds, from its device list, and the tables it refuses.

use arm_fault::AccessSize;
use console::NullSink;
use guest_mem::{GuestMemory, GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;
use hypervisor::testing::TestHyp;
use virtio_devices::InputQueue;
use virtio_devices::net::ArpIcmpResponder;
use vm_builder::{Backends, BuildError, Machine, build, slot_of};
use vmm::Event;
use vmm_platform::{Device, PLATFORMS, Platform, QEMU_VIRT, UartLayout, VirtioKind};

fn backends() -> Backends<NullSink, ArpIcmpResponder> {
    Backends {
        sink: NullSink,
        hvc_input: InputQueue::new(16),
        disk: vec![0; 4096],
        disk_id: "test",
        mac: [2, 0, 0, 0, 0, 1],
        net: ArpIcmpResponder::new([2, 0, 0, 0, 0, 2], [10, 0, 2, 2]),
    }
}

fn machine<'m>(
    p: &Platform,
    ram: &'m mut [u8],
) -> Result<Machine<'m, TestHyp, NullSink>, BuildError> {
    let mem = GuestMemory::new(p.ram.range.base, ram);
    build(p, backends(), TestHyp::new(usize::from(p.vcpus)), mem)
}

#[test]
fn every_platform_builds_the_devices_its_table_lists() {
    for p in PLATFORMS {
        let mut ram = vec![0u8; 4096];
        let m = machine(p, &mut ram).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        // The bus holds exactly the table's windows (it keeps them by address).
        let windows: Vec<_> = m.vm.bus().devices().collect();
        let mut want: Vec<(&str, GuestRange)> = p
            .devices
            .iter()
            .flat_map(|d| d.windows().map(|w| (w.name, w.range)))
            .collect();
        want.sort_by_key(|w| w.1.base);
        assert_eq!(windows, want, "{}", p.name);
        assert_eq!(m.uart.is_some(), p.pl011().is_some(), "{}", p.name);
        let functions = p.pci().map_or(&[][..], |h| h.functions);
        assert_eq!(m.functions, functions, "{}", p.name);
        let pci = m
            .pci
            .as_ref()
            .expect("every shipped table has a PCI bridge");
        assert_eq!(pci.with(|b| b.len()), Some(functions.len()), "{}", p.name);
        for (slot, kind) in (0u8..).zip(functions) {
            // Each device present in its slot, not started (status 0).
            assert_eq!(
                pci.with(|b| b.device_status(slot)).flatten(),
                Some(0),
                "{} slot {slot} ({})",
                p.name,
                kind.name()
            );
            assert_eq!(slot_of(functions, *kind), Some(slot));
        }
        // Every device and pass-through interrupt has its row in the exit counts: a load from
        // each window (as seL4 reports it) is counted under the window's name.
        let mut m = m;
        for (_, range) in &windows {
            m.vm.handle(Event::Exit {
                vcpu: VcpuId(0),
                esr: arm_fault::syndrome::data_abort(AccessSize::Word, 1, false),
                ipa: range.base,
            });
        }
        let report = m.vm.stats().to_string();
        for (name, _) in &windows {
            assert!(report.contains(name), "{}: {name} in\n{report}", p.name);
        }
        for irq in p.passthrough_irqs {
            assert!(
                report.contains(irq.name),
                "{}: {} in\n{report}",
                p.name,
                irq.name
            );
        }
    }
}

#[test]
fn a_table_without_devices_builds_a_machine_with_only_the_gic() {
    let p = Platform {
        devices: &[],
        ..QEMU_VIRT
    };
    let mut ram = vec![0u8; 4096];
    let m = machine(&p, &mut ram).unwrap();
    assert_eq!(m.vm.bus().devices().count(), 0);
    assert!(m.pci.is_none() && m.uart.is_none() && m.functions.is_empty());
}

#[test]
fn colliding_windows_are_a_build_error() {
    // A PL011 inside the PCI MMIO window: validation refuses such a table; build does too.
    let host = QEMU_VIRT.pci().unwrap();
    let devices: &'static [Device] = Box::leak(Box::new([
        Device::Pci(host),
        Device::Pl011(UartLayout {
            base: GuestPhysAddr(host.layout.mmio.base.0),
            ..QEMU_VIRT.pl011().unwrap()
        }),
    ]));
    let p = Platform {
        devices,
        ..QEMU_VIRT
    };
    let mut ram = vec![0u8; 4096];
    match machine(&p, &mut ram) {
        Err(e @ BuildError::Bus(_)) => {
            assert!(e.to_string().contains("pl011 overlaps pci-mmio"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn a_device_listed_twice_has_no_second_backend() {
    let mut host = QEMU_VIRT.pci().unwrap();
    host.functions = &[VirtioKind::Block, VirtioKind::Console, VirtioKind::Block];
    let devices: &'static [Device] = Box::leak(Box::new([Device::Pci(host)]));
    let p = Platform {
        devices,
        ..QEMU_VIRT
    };
    let mut ram = vec![0u8; 4096];
    let e = machine(&p, &mut ram).err().expect("refused");
    assert_eq!(
        e,
        BuildError::BackendUsed {
            kind: VirtioKind::Block
        }
    );
    assert_eq!(
        e.to_string(),
        "virtio-blk is listed twice, and its backend serves one device"
    );
}
