//! The memory plan: Orin and QEMU layouts, forbidden ranges, the firmware map.
use boot_plan::PhysRange;
use boot_plan::elf::Elf;
use boot_plan::layout::{Forbidden, LayoutError, MapEntry, Request, STACK_BYTES, plan};

fn guest_ram() -> Forbidden {
    Forbidden {
        name: "guest RAM (identity-mapped)".into(),
        range: PhysRange::new(0x9000_0000, 0xa000_0000),
    }
}

#[test]
fn orin_plan_keeps_clear_of_guest_ram_and_stays_low() {
    let (k, u) = (
        boot_plan::testing::kernel(0x8000_0000),
        boot_plan::testing::root_task(),
    );
    let (kernel, user) = (Elf::parse(&k).unwrap(), Elf::parse(&u).unwrap());
    let memory = [
        PhysRange::new(0x8000_0000, 0xbe00_0000),
        PhysRange::new(0xc200_0000, 0xfffe_0000),
    ];
    let forbidden = [guest_ram()];
    let req = Request {
        kernel: &kernel,
        user: &user,
        dtb_bytes: 0x3_1234,
        table_bytes: 0x6000,
        cores: 4,
        sel4_memory: &memory,
        forbidden: &forbidden,
        firmware: None,
    };
    let p = plan(&req).unwrap();
    assert_eq!(p.kernel, PhysRange::new(0x8000_0000, 0x8020_0000));
    // seL4's order: kernel, DTB, root task.
    assert_eq!(p.dtb, PhysRange::new(0x8020_0000, 0x8023_2000));
    assert_eq!(p.user, PhysRange::new(0x8023_2000, 0x80a4_4000));
    assert_eq!(p.user_virt, PhysRange::new(0x20_0000, 0xa1_2000));
    assert_eq!(p.pv_offset(), 0x8003_2000);
    assert_eq!(p.tables.len(), 0x6000);
    assert_eq!(p.stacks.len(), 4 * STACK_BYTES);
    assert_eq!(p.stack_top(3), p.stacks.end - STACK_BYTES);
    for (name, r) in p.regions() {
        assert!(!r.overlaps(&forbidden[0].range), "{name} {r}");
        assert!(memory.iter().any(|m| m.contains_range(&r)), "{name} {r}");
        assert!(r.end <= 0x9000_0000, "{name} {r}");
    }
    for (i, (_, a)) in p.regions().iter().enumerate() {
        for (_, b) in &p.regions()[i + 1..] {
            assert!(!a.overlaps(b));
        }
    }
}

#[test]
fn a_kernel_in_guest_ram_or_outside_memory_is_named() {
    let u = boot_plan::testing::root_task();
    let user = Elf::parse(&u).unwrap();
    let memory = [PhysRange::new(0x8000_0000, 0xc000_0000)];
    let forbidden = [guest_ram()];
    let k = boot_plan::testing::kernel(0x9010_0000);
    let kernel = Elf::parse(&k).unwrap();
    let req = Request {
        kernel: &kernel,
        user: &user,
        dtb_bytes: 0x1000,
        table_bytes: 0x1000,
        cores: 1,
        sel4_memory: &memory,
        forbidden: &forbidden,
        firmware: None,
    };
    match plan(&req) {
        Err(LayoutError::Forbidden { forbidden: f, .. }) => assert_eq!(f, forbidden[0]),
        other => panic!("{other:?}"),
    }
    let k = boot_plan::testing::kernel(0x7000_0000);
    let kernel = Elf::parse(&k).unwrap();
    let req = Request {
        kernel: &kernel,
        ..req
    };
    assert!(matches!(plan(&req), Err(LayoutError::OutsideMemory { .. })));
    assert!(
        plan(&req)
            .unwrap_err()
            .to_string()
            .contains("outside seL4's memory")
    );
}

#[test]
fn firmware_map_decides_what_is_free() {
    let (k, u) = (
        boot_plan::testing::kernel(0x4000_0000),
        boot_plan::testing::root_task(),
    );
    let (kernel, user) = (Elf::parse(&k).unwrap(), Elf::parse(&u).unwrap());
    let memory = [PhysRange::new(0x4000_0000, 0xc000_0000)];
    // Firmware holds 0x4020_0000..0x4040_0000 (say, the loader's own image) and the top.
    let map = [
        MapEntry {
            range: PhysRange::new(0x4000_0000, 0x4020_0000),
            free: true,
            kind: "conventional",
        },
        MapEntry {
            range: PhysRange::new(0x4020_0000, 0x4040_0000),
            free: false,
            kind: "loader code",
        },
        MapEntry {
            range: PhysRange::new(0x4040_0000, 0xbc00_0000),
            free: true,
            kind: "conventional",
        },
        MapEntry {
            range: PhysRange::new(0xbc00_0000, 0xc000_0000),
            free: false,
            kind: "runtime services data",
        },
    ];
    let req = Request {
        kernel: &kernel,
        user: &user,
        dtb_bytes: 0x1000,
        table_bytes: 0x2000,
        cores: 4,
        sel4_memory: &memory,
        forbidden: &[],
        firmware: Some(&map),
    };
    let p = plan(&req).unwrap();
    assert_eq!(p.dtb.start, 0x4040_0000);
    assert_eq!(p.user.start, 0x4040_1000);
    for (_, r) in p.regions() {
        assert!(!r.overlaps(&map[1].range) && !r.overlaps(&map[3].range));
    }
    // The kernel's fixed place taken by firmware: named with the entry's type.
    let k2 = boot_plan::testing::kernel(0x4030_0000);
    let kernel2 = Elf::parse(&k2).unwrap();
    let err = plan(&Request {
        kernel: &kernel2,
        ..req
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "seL4 kernel segment at 0x0040300000..0x0040400000 overlaps firmware memory 0x0040200000..0x0040400000 (loader code)"
    );
    // A hole in the map is not free either.
    let holey = [MapEntry {
        range: PhysRange::new(0x4000_0000, 0x4010_0000),
        free: true,
        kind: "conventional",
    }];
    let err = plan(&Request {
        firmware: Some(&holey),
        ..req
    })
    .unwrap_err();
    assert!(err.to_string().contains("not in the memory map"), "{err}");
}

#[test]
fn no_room_is_named() {
    let (k, u) = (
        boot_plan::testing::kernel(0x4000_0000),
        boot_plan::testing::root_task(),
    );
    let (kernel, user) = (Elf::parse(&k).unwrap(), Elf::parse(&u).unwrap());
    let memory = [PhysRange::new(0x4000_0000, 0x4080_0000)];
    let req = Request {
        kernel: &kernel,
        user: &user,
        dtb_bytes: 0x1000,
        table_bytes: 0x1000,
        cores: 1,
        sel4_memory: &memory,
        forbidden: &[],
        firmware: None,
    };
    assert_eq!(
        plan(&req).unwrap_err(),
        LayoutError::NoRoom {
            what: "root task",
            size: 0x81_2000
        }
    );
}

#[test]
fn platform_tables_forbid_identity_guest_ram_and_carve_outs() {
    let orin = boot_plan::layout::platform_forbidden(&vmm_platform::ORIN_AGX);
    let names: Vec<_> = orin.iter().map(|f| (f.name.as_str(), f.range)).collect();
    assert_eq!(
        names,
        [
            (
                "guest RAM (identity-mapped)",
                PhysRange::new(0x9000_0000, 0xa000_0000)
            ),
            ("RAS-error region", PhysRange::new(0xbe00_0000, 0xc200_0000)),
        ]
    );
    // QEMU virt's guest RAM is not identity-mapped: the loader may use any of seL4's memory.
    assert!(boot_plan::layout::platform_forbidden(&vmm_platform::QEMU_VIRT).is_empty());
}
