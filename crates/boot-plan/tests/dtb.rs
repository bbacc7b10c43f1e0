//! /cpus, /psci, /memory and /reserved-memory from real board DTBs and dtc-built ones.
use boot_plan::PhysRange;
use boot_plan::dtb::{self, Conduit, DtbError, boot_cores};

const QEMU: &[u8] = include_bytes!("../../../platform/testdata/qemu-virt-gicv3-smp4-2g.dtb");
const ORIN: &[u8] = include_bytes!("../../../platform/testdata/tegra234-p3737-0000+p3701-0000.dtb");

#[test]
fn qemu_board_cores_psci_and_memory() {
    let info = dtb::read(QEMU).unwrap();
    let mpidrs: Vec<u64> = info.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(mpidrs, [0, 1, 2, 3]);
    assert_eq!(info.psci, Some(Conduit::Smc));
    assert_eq!(info.memory, [PhysRange::new(0x4000_0000, 0xc000_0000)]);
    assert_eq!(boot_cores(&info, 0x8000_0000, 4).unwrap(), [0, 1, 2, 3]);
    assert_eq!(info.total_size, QEMU.len());
}

#[test]
fn orin_board_mpidrs_are_affinities_not_indices() {
    let info = dtb::read(ORIN).unwrap();
    let mpidrs: Vec<u64> = info.cpus.iter().map(|c| c.mpidr).collect();
    assert_eq!(
        mpidrs,
        [
            0x0, 0x100, 0x200, 0x300, 0x10000, 0x10100, 0x10200, 0x10300, 0x20000, 0x20100,
            0x20200, 0x20300
        ]
    );
    assert!(
        info.cpus
            .iter()
            .all(|c| c.enable_method.as_deref() == Some("psci"))
    );
    assert_eq!(info.psci, Some(Conduit::Smc));
    // MPIDR_EL1 of core 0 reads 0x8100_0000 on an A78AE (U bit clear, MT set): affinity 0.
    assert_eq!(
        boot_cores(&info, 0x8100_0000, 4).unwrap(),
        [0x0, 0x100, 0x200, 0x300]
    );
    assert_eq!(
        boot_cores(&info, 0x8100_0000, 12).unwrap().last(),
        Some(&0x20300)
    );
    // Booted on another core: it is logical core 0, the rest follow in tree order.
    assert_eq!(
        boot_cores(&info, 0x8101_0100, 3).unwrap(),
        [0x10100, 0x0, 0x100]
    );
    assert_eq!(
        boot_cores(&info, 0, 13).err(),
        Some(DtbError::TooFewCpus { want: 13, have: 12 })
    );
    assert_eq!(
        boot_cores(&info, 0x30000, 4).err(),
        Some(DtbError::BootCpuNotListed(0x30000))
    );
    // The devkit DTB has no /memory and no /reserved-memory: the firmware adds both.
    assert!(info.memory.is_empty() && info.reserved.is_empty());
}

#[allow(clippy::unwrap_used)] // a test helper: a failed dtc run is a failed test
fn dts(src: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("boot-plan-{}-{}", std::process::id(), src.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let (i, o) = (dir.join("t.dts"), dir.join("t.dtb"));
    std::fs::write(&i, src).unwrap();
    let st = std::process::Command::new("dtc")
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&o)
        .arg(&i)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(o).unwrap()
}

#[test]
fn disabled_cores_spin_tables_and_reserved_memory() {
    let blob = dts(r#"/dts-v1/;
        /memreserve/ 0x48000000 0x1000;
        / { #address-cells = <2>; #size-cells = <2>;
            cpus { #address-cells = <2>; #size-cells = <0>;
                cpu@0 { device_type = "cpu"; reg = <0 0>; enable-method = "psci"; };
                cpu@1 { device_type = "cpu"; reg = <0 1>; enable-method = "psci"; status = "disabled"; };
                cpu@100000000 { device_type = "cpu"; reg = <1 0>; enable-method = "psci"; };
                cpu@3 { device_type = "cpu"; reg = <0 3>; enable-method = "spin-table"; };
            };
            psci { compatible = "arm,psci-1.0"; method = "hvc"; };
            memory@80000000 { device_type = "memory"; reg = <0 0x80000000 0 0x40000000>, <8 0 0 0x1000000>; };
            reserved-memory { #address-cells = <2>; #size-cells = <2>; ranges;
                ras@be000000 { reg = <0 0xbe000000 0 0x4000000>; no-map; };
            };
        };"#);
    let info = dtb::read(&blob).unwrap();
    assert_eq!(info.psci, Some(Conduit::Hvc));
    assert_eq!(
        info.memory,
        [
            PhysRange::new(0x8000_0000, 0xc000_0000),
            PhysRange::new(0x8_0000_0000, 0x8_0100_0000)
        ]
    );
    assert_eq!(
        info.reserved[0],
        (
            "/memreserve/".to_string(),
            PhysRange::new(0x4800_0000, 0x4800_1000)
        )
    );
    assert_eq!(
        info.reserved[1],
        (
            "/reserved-memory/ras@be000000".to_string(),
            PhysRange::new(0xbe00_0000, 0xc200_0000)
        )
    );
    // Aff3 comes from the upper cell; the disabled core is skipped.
    assert_eq!(boot_cores(&info, 0, 2).unwrap(), [0, 0x1_0000_0000]);
    assert_eq!(
        boot_cores(&info, 0, 3).err(),
        Some(DtbError::EnableMethod {
            mpidr: 3,
            method: "spin-table".into()
        })
    );
}

#[test]
fn malformed_blobs_give_errors_not_panics() {
    assert_eq!(dtb::read(&QEMU[..39]).err(), Some(DtbError::Header));
    assert_eq!(dtb::read(&[0u8; 64]).err(), Some(DtbError::Header));
    for n in (0..0x2000).chain((0x2000..QEMU.len()).step_by(4093)) {
        assert!(dtb::read(&QEMU[..n]).is_err());
    }
    let mut b = QEMU.to_vec();
    for i in (40..0x2000).step_by(3) {
        let old = b[i];
        b[i] = 0xff;
        let _ = dtb::read(&b);
        b[i] = old;
    }
}
