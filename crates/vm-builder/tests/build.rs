//! The machine every platform table builds, and a table whose windows collide refused by name.

use console::NullSink;
use guest_mem::{GuestPhysAddr, GuestRange};
use virtio_devices::InputQueue;
use virtio_devices::net::ArpIcmpResponder;
use vm_builder::{Backends, BuildError, SLOT_BLK, SLOT_CONSOLE, SLOT_NET, build};
use vmm_platform::{PLATFORMS, Platform, QEMU_VIRT, UartLayout};

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

#[test]
fn every_platform_builds_its_windows_and_three_devices() {
    for p in PLATFORMS {
        let m = build(p, backends()).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        let windows: Vec<_> = m.bus.devices().collect();
        let mut want = Vec::new();
        if let Some(u) = p.uart {
            want.push(("pl011", GuestRange::new(u.base.0, pl011::REGION_SIZE)));
        }
        want.push(("pci-ecam", p.pci.ecam));
        want.push(("pci-mmio", p.pci.mmio));
        let mut sorted = want.clone();
        sorted.sort_by_key(|w| w.1.base.0);
        let mut got = windows.clone();
        got.sort_by_key(|w| w.1.base.0);
        assert_eq!(got, sorted, "{}", p.name);
        assert_eq!(m.uart.is_some(), p.uart.is_some(), "{}", p.name);
        assert_eq!(m.pci.with(|b| b.len()), Some(3), "{}", p.name);
        for slot in [SLOT_CONSOLE, SLOT_BLK, SLOT_NET] {
            // Each device present and not started (status 0) in its slot.
            assert_eq!(
                m.pci.with(|b| b.device_status(slot)).flatten(),
                Some(0),
                "{} slot {slot}",
                p.name
            );
        }
    }
}

#[test]
fn colliding_windows_are_a_build_error() {
    // A PL011 inside the PCI MMIO window: validation refuses such a table; build does too.
    let p = Platform {
        uart: Some(UartLayout {
            base: GuestPhysAddr(QEMU_VIRT.pci.mmio.base.0),
            ..QEMU_VIRT.uart.unwrap()
        }),
        ..QEMU_VIRT
    };
    match build(&p, backends()) {
        Err(BuildError::Bus(e)) => assert!(format!("{e:?}").contains("pci-mmio"), "{e:?}"),
        other => panic!("{:?}", other.err()),
    }
}
