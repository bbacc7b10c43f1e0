//! QEMU's `virt` machine with real devices passed through and guest RAM identity-mapped: the
//! Orin table's pass-through paths (device frames at their addresses, a level SPI acknowledged
//! after the guest's EOI, DMA into identity-mapped RAM) run under QEMU.
//!
//! Same machine and emulated devices as [`crate::QEMU_VIRT`], plus, from QEMU's own board
//! (hw/arm/virt.c; nodes from `testdata/qemu-virt-gicv3-smp4-2g.dtb`, as Orin's come from its
//! DTB):
//!
//! * `virtio-rng-device` on virtio-mmio transport 31 (`-device virtio-rng-device`; QEMU fills
//!   the transports from the last, 0x0a00_3e00, SPI 47): a device that reads the guest's
//!   descriptors and writes random bytes into its buffers by DMA, at the guest-physical
//!   addresses the guest's driver gives it. Only identity-mapped RAM makes those the right
//!   physical addresses. QEMU's tree calls its interrupt edge (flags 1), and that is what the
//!   guest and the physical GIC are told.
//! * the PL031 RTC (0x0901_0000, SPI 2, level): read by the guest's `rtc-pl031`; its alarm
//!   raises a level interrupt that stays asserted until the guest's handler clears it, the
//!   case Orin's HSP mailboxes are (acknowledged only after the guest's EOI).
//!
//! Stage 2 maps whole 4 KiB pages: the virtio-mmio page 0x0a00_3000 holds transports 24..31;
//! the guest's tree names only 31, and QEMU puts nothing on the others unless told to.
//!
//! Guest RAM is 0x8000_0000 + 512 MiB of QEMU's 2 GiB, inside seL4's memory
//! (0x6000_0000..0xc000_0000 for QEMU virt) and clear of what the loaders put there: our EFI
//! loader places the kernel, the DTB and the root task upwards from 0x6000_0000 and refuses
//! guest RAM (`boot_plan::layout::platform_forbidden`, `vmmctl boot-layout`); rust-sel4's
//! loader puts the root task just below 0xc000_0000.

use crate::{
    Access, GicLayout, GuestPhysAddr, GuestRange, LoadRegion, MemAttrs, Passthrough,
    PassthroughIrq, Platform, QEMU_VIRT, Ram, Spi, Trigger, assert_valid,
};

/// QEMU virt with pass-through and identity-mapped guest RAM.
pub const QEMU_VIRT_PT: Platform = Platform {
    name: "qemu-virt-pt",
    ram: Ram {
        range: GuestRange::new(0x8000_0000, 0x2000_0000),
        identity: true,
    },
    kernel: LoadRegion {
        addr: GuestPhysAddr(0x8000_0000),
        max_size: 0x0800_0000,
    },
    initrd: LoadRegion {
        addr: GuestPhysAddr(0x8800_0000),
        max_size: 0x0400_0000,
    },
    dtb: LoadRegion {
        addr: GuestPhysAddr(0x8c00_0000),
        max_size: 0x0020_0000,
    },
    // `selftest.passthrough=`: the guest's self-test checks each device it names.
    bootargs: "console=ttyAMA0 earlycon=pl011,mmio32,0x09000000 rdinit=/init quiet \
               selftest.passthrough=virtio-rng,pl031-rtc",
    passthrough: PASSTHROUGH,
    passthrough_irqs: PASSTHROUGH_IRQS,
    gic: GicLayout {
        dist: GuestPhysAddr(0x0800_0000),
        redist: GuestPhysAddr(0x080a_0000),
    },
    ..QEMU_VIRT
};

const PASSTHROUGH: &[Passthrough] = &[
    Passthrough {
        name: "pl031-rtc",
        dt_path: "/pl031@9010000",
        range: GuestRange::new(0x0901_0000, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
    Passthrough {
        name: "virtio-rng",
        dt_path: "/virtio_mmio@a003e00",
        range: GuestRange::new(0x0a00_3000, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
];

const PASSTHROUGH_IRQS: &[PassthroughIrq] = &[
    PassthroughIrq {
        name: "pl031-rtc",
        spi: Spi(2),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "virtio-rng",
        spi: Spi(47),
        trigger: Trigger::Edge,
    },
];

const _: () = assert_valid(&QEMU_VIRT_PT);
