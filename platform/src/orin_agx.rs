//! NVIDIA Jetson AGX Orin devkit (Tegra234, P3737-0000 carrier + P3701-0000 module).
//!
//! Starts from the design document (`shared/seed/orin-agx-port-design.md`); every value is
//! checked against the devkit's real device tree (`testdata/tegra234-p3737-0000+p3701-0000.dtb`)
//! by `tests/orin_board.rs`. Where the two disagree the board wins, and the difference is
//! recorded next to the value.

use crate::{
    GicLayout, GuestPhysAddr, GuestRange, LoadRegion, MemAttrs, Passthrough, PassthroughIrq,
    PciLayout, Platform, Ram, Spi, Trigger, assert_valid,
};

/// The Orin AGX platform.
pub const ORIN_AGX: Platform = Platform {
    name: "orin-agx",
    // Identity-mapped: the guest's BPMP driver hands the BPMP physical buffer addresses.
    ram: Ram {
        range: GuestRange::new(0x9000_0000, 0x1000_0000),
        identity: true,
    },
    kernel: LoadRegion {
        addr: GuestPhysAddr(0x9000_0000),
        max_size: 0x0c00_0000,
    },
    // Design document: initrd at 0x9D00_0000 with up to 32 MiB, DTB at 0x9E00_0000. That
    // initrd would run to 0x9F00_0000 over the DTB (the validator reports the overlap), so the
    // initrd moves down 16 MiB and keeps its 32 MiB; the DTB stays where the document put it.
    initrd: LoadRegion {
        addr: GuestPhysAddr(0x9c00_0000),
        max_size: 0x0200_0000,
    },
    dtb: LoadRegion {
        addr: GuestPhysAddr(0x9e00_0000),
        max_size: 0x0020_0000,
    },
    vcpus: 4,
    // `arm64.nopauth`: seL4 leaves HCR_EL2.API/APK clear, so the A78AE's pointer-authentication
    // instructions would trap to EL2; the guest is told not to use them.
    bootargs: "console=ttyTCU0,115200 earlycon=tegra_comb_uart,mmio32,0x0c168000 arm64.nopauth debug init=/sbin/init",
    stdout_path: "serial0:115200n8",
    passthrough: PASSTHROUGH,
    passthrough_irqs: PASSTHROUGH_IRQS,
    // The emulated GIC sits where the board's GIC-600 is, so the addresses look familiar.
    gic: GicLayout {
        dist: GuestPhysAddr(0x0f40_0000),
        redist: GuestPhysAddr(0x0f44_0000),
    },
    pci: PciLayout {
        ecam: GuestRange::new(0x3000_0000, 0x0010_0000),
        mmio: GuestRange::new(0x2000_0000, 0x1000_0000),
        intx: [Spi(416), Spi(417), Spi(418), Spi(419)],
    },
    uart: None,
};

const PASSTHROUGH: &[Passthrough] = &[
    Passthrough {
        name: "hsp-top0",
        dt_path: "/bus@0/hsp@3c00000",
        range: GuestRange::new(0x03c0_0000, 0x000a_0000),
        attrs: MemAttrs::DeviceNGnRE,
    },
    Passthrough {
        name: "hsp-aon",
        dt_path: "/bus@0/hsp@c150000",
        range: GuestRange::new(0x0c15_0000, 0x0009_0000),
        attrs: MemAttrs::DeviceNGnRE,
    },
    Passthrough {
        name: "sram",
        dt_path: "/sram@40000000",
        range: GuestRange::new(0x4000_0000, 0x0008_0000),
        attrs: MemAttrs::NormalNonCacheable,
    },
];

const PASSTHROUGH_IRQS: &[PassthroughIrq] = &[
    PassthroughIrq {
        name: "hsp-top0-doorbell",
        spi: Spi(176),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared0",
        spi: Spi(120),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared1",
        spi: Spi(121),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared2",
        spi: Spi(122),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared3",
        spi: Spi(123),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared4",
        spi: Spi(124),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared5",
        spi: Spi(125),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared6",
        spi: Spi(126),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared7",
        spi: Spi(127),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-aon-shared1",
        spi: Spi(133),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-aon-shared2",
        spi: Spi(134),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-aon-shared3",
        spi: Spi(135),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-aon-shared4",
        spi: Spi(136),
        trigger: Trigger::Level,
    },
];

const _: () = assert_valid(&ORIN_AGX);
