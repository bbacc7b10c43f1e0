//! Every validation error, each from one small change to a valid table.

use vmm_platform::*;

fn base() -> Platform {
    QEMU_VIRT
}

fn err(p: Platform) -> PlatformError {
    p.validate().expect_err("the table should be refused")
}

/// `p` with its device list changed by `f` (a table's list is `'static`: the copy is leaked).
fn devices(p: &mut Platform, f: impl FnOnce(&mut Vec<Device>)) {
    let mut list = p.devices.to_vec();
    f(&mut list);
    p.devices = Box::leak(list.into_boxed_slice());
}

/// `p` with its PCI layout changed by `f`.
fn pci(p: &mut Platform, f: impl Fn(&mut PciLayout)) {
    devices(p, |list| {
        for d in list {
            if let Device::Pci(h) = d {
                f(&mut h.layout);
            }
        }
    });
}

/// `p` with its PL011 moved to `base`.
fn pl011_at(p: &mut Platform, base: u64) {
    devices(p, |list| {
        for d in list {
            if let Device::Pl011(u) = d {
                u.base = GuestPhysAddr(base);
            }
        }
    });
}

#[test]
fn shipped_tables_are_valid() {
    for p in PLATFORMS {
        assert_eq!(p.validate(), Ok(()), "{}", p.name);
    }
    assert!(by_name("orin-agx").is_some());
    assert!(by_name("rpi4").is_none());
}

#[test]
fn design_document_orin_numbers_overlap() {
    // The design document's initrd (0x9D00_0000, 32 MiB) runs over its DTB (0x9E00_0000).
    let mut p = ORIN_AGX;
    p.initrd = LoadRegion {
        addr: GuestPhysAddr(0x9d00_0000),
        max_size: 0x0200_0000,
    };
    let e = err(p);
    assert_eq!(
        e,
        PlatformError::Overlap {
            a: "initrd",
            a_range: GuestRange::new(0x9d00_0000, 0x0200_0000),
            b: "dtb",
            b_range: GuestRange::new(0x9e00_0000, 0x0020_0000),
        }
    );
    assert_eq!(
        e.to_string(),
        "initrd [0x9d000000, 0x9f000000) overlaps dtb [0x9e000000, 0x9e200000)"
    );
}

#[test]
fn empty_region() {
    let mut p = base();
    pci(&mut p, |l| l.mmio = GuestRange::new(0x1000_0000, 0));
    assert_eq!(err(p), PlatformError::Empty { region: "pci-mmio" });
    let mut p = base();
    p.initrd.max_size = 0;
    assert_eq!(err(p), PlatformError::Empty { region: "initrd" });
}

#[test]
fn wrapping_region() {
    let mut p = base();
    p.ram.range = GuestRange::new(0xffff_ffff_ffff_f000, 0x2000);
    assert_eq!(
        err(p),
        PlatformError::Wraps {
            region: "ram",
            range: GuestRange::new(0xffff_ffff_ffff_f000, 0x2000)
        }
    );
}

#[test]
fn misaligned_regions() {
    let mut p = base();
    p.ram.range = GuestRange::new(0x4000_0800, 0x2000_0000);
    assert_eq!(
        err(p),
        PlatformError::Misaligned {
            region: "ram",
            value: 0x4000_0800,
            align: 0x1000
        }
    );
    let mut p = base();
    p.gic.dist = GuestPhysAddr(0x0800_1000);
    assert_eq!(
        err(p),
        PlatformError::Misaligned {
            region: "gicd",
            value: 0x0800_1000,
            align: 0x1_0000
        }
    );
    let mut p = base();
    p.kernel.addr = GuestPhysAddr(0x4010_0000);
    assert_eq!(
        err(p),
        PlatformError::Misaligned {
            region: "kernel",
            value: 0x4010_0000,
            align: 0x20_0000
        }
    );
    let mut p = ORIN_AGX;
    const PT: &[Passthrough] = &[Passthrough {
        name: "odd",
        dt_path: "/odd",
        range: GuestRange::new(0x0300_0000, 0x800),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    }];
    p.passthrough = PT;
    assert_eq!(
        err(p),
        PlatformError::Misaligned {
            region: "odd",
            value: 0x800,
            align: 0x1000
        }
    );
    // Read-only regions are held to the same 4 KiB granule: APB MISC's first `reg` entry is
    // 0xf000 (15 pages) and passes; a size that is not a page multiple does not.
    let mut p = ORIN_AGX;
    const RO: &[Passthrough] = &[Passthrough {
        name: "apb-misc",
        dt_path: "/bus@0/misc@100000",
        range: GuestRange::new(0x0010_0000, 0xf800),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadOnly,
    }];
    p.passthrough = RO;
    assert_eq!(
        err(p),
        PlatformError::Misaligned {
            region: "apb-misc",
            value: 0xf800,
            align: 0x1000
        }
    );
}

#[test]
fn overlapping_regions_name_both() {
    let mut p = base();
    pl011_at(&mut p, 0x080b_0000);
    // The UART now sits inside the redistributor region (regions are checked in table order).
    assert_eq!(
        err(p),
        PlatformError::Overlap {
            a: "gicr",
            a_range: GuestRange::new(0x080a_0000, 0x8_0000),
            b: "pl011",
            b_range: GuestRange::new(0x080b_0000, 0x1000),
        }
    );
    let mut p = ORIN_AGX;
    const PT: &[Passthrough] = &[Passthrough {
        name: "in-ram",
        dt_path: "/x",
        range: GuestRange::new(0x9ff0_0000, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    }];
    p.passthrough = PT;
    assert!(matches!(
        err(p),
        PlatformError::Overlap {
            a: "ram",
            b: "in-ram",
            ..
        }
    ));
}

#[test]
fn load_region_outside_ram() {
    let mut p = base();
    p.dtb.addr = GuestPhysAddr(0x5fff_f000);
    assert_eq!(
        err(p),
        PlatformError::OutsideRam {
            region: "dtb",
            range: GuestRange::new(0x5fff_f000, 0x20_0000),
            ram: GuestRange::new(0x4000_0000, 0x2000_0000),
        }
    );
}

#[test]
fn dtb_too_large() {
    let mut p = base();
    p.dtb.max_size = 0x40_0000;
    assert_eq!(
        err(p),
        PlatformError::TooLarge {
            region: "dtb",
            size: 0x40_0000,
            max: 0x20_0000
        }
    );
}

#[test]
fn vcpu_count() {
    let mut p = base();
    p.vcpus = 0;
    assert_eq!(err(p), PlatformError::VcpuCount { count: 0 });
    p.vcpus = 17;
    assert_eq!(err(p), PlatformError::VcpuCount { count: 17 });
}

#[test]
fn spis() {
    let mut p = base();
    pci(&mut p, |l| l.intx[2] = Spi(988));
    assert_eq!(
        err(p),
        PlatformError::SpiOutOfRange {
            name: "pci-intc",
            spi: Spi(988)
        }
    );
    let mut p = base();
    pci(&mut p, |l| l.intx[3] = Spi(1));
    assert_eq!(
        err(p),
        PlatformError::DuplicateSpi {
            a: "pl011",
            b: "pci-intd",
            spi: Spi(1)
        }
    );
    let mut p = ORIN_AGX;
    const IRQS: &[PassthroughIrq] = &[
        PassthroughIrq {
            name: "a",
            spi: Spi(40),
            trigger: Trigger::Level,
        },
        PassthroughIrq {
            name: "b",
            spi: Spi(40),
            trigger: Trigger::Edge,
        },
    ];
    p.passthrough_irqs = IRQS;
    assert_eq!(
        err(p),
        PlatformError::DuplicateSpi {
            a: "a",
            b: "b",
            spi: Spi(40)
        }
    );
    assert_eq!(ORIN_AGX.max_spi(), Spi(419));
}

#[test]
fn dt_paths_and_bootargs() {
    let mut p = ORIN_AGX;
    const PT: &[Passthrough] = &[Passthrough {
        name: "rel",
        dt_path: "bus@0/hsp@3c00000",
        range: GuestRange::new(0x03c0_0000, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    }];
    p.passthrough = PT;
    assert_eq!(
        err(p),
        PlatformError::BadDtPath {
            region: "rel",
            path: "bus@0/hsp@3c00000"
        }
    );
    // A board node's path too.
    let mut p = ORIN_AGX;
    const NODES: &[BoardNode] = &[BoardNode {
        name: "bpmp",
        dt_path: "bpmp",
    }];
    p.board_nodes = NODES;
    assert_eq!(
        err(p),
        PlatformError::BadDtPath {
            region: "bpmp",
            path: "bpmp"
        }
    );
    let mut p = base();
    p.bootargs = "";
    assert_eq!(err(p), PlatformError::MissingBootarg { field: "bootargs" });
    let mut p = base();
    p.stdout_path = "";
    assert_eq!(
        err(p),
        PlatformError::MissingBootarg {
            field: "stdout-path"
        }
    );
}

#[test]
fn every_error_has_a_summary_and_a_message() {
    let mut p = base();
    p.vcpus = 0;
    let e = err(p);
    assert_eq!(e.summary(), "vCPU count must be 1..=16");
    assert_eq!(e.to_string(), "0 vCPUs: must be 1..=16");
}

#[test]
fn one_device_of_each_kind() {
    let mut p = base();
    devices(&mut p, |list| {
        let uart = list[0];
        list.push(uart);
    });
    assert_eq!(err(p), PlatformError::DuplicateDevice { kind: "pl011" });
    assert_eq!(
        err(p).to_string(),
        "devices: pl011 is listed twice (one of each kind)"
    );
}

#[test]
fn the_device_list_is_what_the_regions_and_interrupts_come_from() {
    // Without devices, only RAM and the interrupt controller are left; with them, every
    // window in list order, named as the VMM's bus names them.
    let mut p = base();
    p.devices = &[];
    assert_eq!(p.validate(), Ok(()));
    assert_eq!(p.region_count(), 3);
    assert_eq!(p.max_spi(), Spi(0));
    let p = base();
    let names: Vec<_> = (0..p.region_count())
        .filter_map(|i| p.region(i))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["ram", "gicd", "gicr", "pl011", "pci-ecam", "pci-mmio"]
    );
    let windows: Vec<_> = p.emulated_windows().map(|(n, _)| n).collect();
    assert_eq!(windows, ["gicd", "gicr", "pl011", "pci-ecam", "pci-mmio"]);
    assert_eq!(p.max_spi(), Spi(6));
    let spis: Vec<_> = p.devices.iter().flat_map(|d| d.spis()).collect();
    assert_eq!(
        spis,
        [
            ("pl011", Spi(1)),
            ("pci-inta", Spi(3)),
            ("pci-intb", Spi(4)),
            ("pci-intc", Spi(5)),
            ("pci-intd", Spi(6))
        ]
    );
    // A misaligned ECAM window is named by its window name.
    let mut p = base();
    pci(&mut p, |l| l.ecam = GuestRange::new(0x3f08_0000, 0x10_0000));
    assert_eq!(
        err(p),
        PlatformError::Misaligned {
            region: "pci-ecam",
            value: 0x3f08_0000,
            align: 0x10_0000
        }
    );
}
