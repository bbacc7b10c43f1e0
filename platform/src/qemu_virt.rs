//! QEMU's `virt` machine (`-machine virt,virtualization=on,gic-version=3 -cpu cortex-a57`).
//!
//! The guest sees the same memory map QEMU gives a bare guest (hw/arm/virt.c, and
//! `testdata/qemu-virt-gicv3-smp4-2g.dtb` dumped from Debian's QEMU 7.2): GIC distributor at
//! 0x0800_0000, redistributors from 0x080a_0000, PL011 at 0x0900_0000 on SPI 1, PCIe ECAM at
//! 0x3f00_0000, the 32-bit PCI MMIO window at 0x1000_0000 and INTA..D on SPIs 3..6, RAM from
//! 0x4000_0000. Every device is emulated; nothing is passed through, so RAM need not be
//! identity-mapped and seL4 (loaded in the same physical RAM) is never in the guest's way.

use crate::{
    Device, GicLayout, GuestPhysAddr, GuestRange, Host, HostUart, LoadRegion, PciHost, PciLayout,
    Platform, Ram, Spi, UartLayout, VirtioKind, assert_valid,
};

/// The QEMU virt platform.
pub const QEMU_VIRT: Platform = Platform {
    name: "qemu-virt",
    ram: Ram {
        range: GuestRange::new(0x4000_0000, 0x2000_0000),
        identity: false,
    },
    // Kernel at the start of RAM (2 MiB aligned; its text_offset is 0 since Linux 5.8), then
    // room for a 64 MiB initrd and the DTB.
    kernel: LoadRegion {
        addr: GuestPhysAddr(0x4000_0000),
        max_size: 0x0800_0000,
    },
    initrd: LoadRegion {
        addr: GuestPhysAddr(0x4800_0000),
        max_size: 0x0400_0000,
    },
    dtb: LoadRegion {
        addr: GuestPhysAddr(0x4c00_0000),
        max_size: 0x0020_0000,
    },
    vcpus: 4,
    // `quiet`: every console character is a trapped PL011 write, and a verbose boot log is
    // most of a boot's exits; drop it to see the whole kernel log.
    bootargs: "console=ttyAMA0 earlycon=pl011,mmio32,0x09000000 rdinit=/init quiet",
    stdout_path: "/pl011@9000000",
    passthrough: &[],
    board_nodes: &[],
    passthrough_irqs: &[],
    gic: GicLayout {
        dist: GuestPhysAddr(0x0800_0000),
        redist: GuestPhysAddr(0x080a_0000),
    },
    devices: &[
        Device::Pl011(UartLayout {
            base: GuestPhysAddr(0x0900_0000),
            spi: Spi(1),
        }),
        Device::Pci(PciHost {
            layout: PciLayout {
                // QEMU's ECAM window is 16 MiB (16 buses); the guest is told of bus 0 only.
                ecam: GuestRange::new(0x3f00_0000, 0x0010_0000),
                mmio: GuestRange::new(0x1000_0000, 0x2eff_0000),
                intx: [Spi(3), Spi(4), Spi(5), Spi(6)],
            },
            functions: VIRTIO,
        }),
    ],
    // seL4's console: the board's own PL011 (the guest's PL011 at the same guest-physical
    // address is emulated).
    host: Host {
        uart: HostUart::Pl011 { base: 0x0900_0000 },
        reserved: &[],
    },
};

/// The virtio devices of the QEMU tables, in slot order: `hvc0`, the disk, the network.
pub(crate) const VIRTIO: &[VirtioKind] = &[VirtioKind::Console, VirtioKind::Block, VirtioKind::Net];

const _: () = assert_valid(&QEMU_VIRT);
