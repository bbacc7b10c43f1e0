//! Every call, with its errors (PSCI DEN 0022 D.b, SMCCC DEN 0028).

use super::*;

const RAM: GuestRange = GuestRange::new(0x4000_0000, 0x1000_0000);
const ENTRY: u64 = 0x4008_0000;

fn psci() -> Psci {
    Psci::new(4, RAM)
}

fn x0(o: Outcome) -> i64 {
    o.x0.expect("call returns") as i64
}

#[test]
fn versions() {
    let mut p = psci();
    assert_eq!(
        p.call(VcpuId(0), [u64::from(fid::PSCI_VERSION), 0, 0, 0]),
        Outcome::value(0x1_0001)
    );
    assert_eq!(
        p.call(VcpuId(0), [u64::from(fid::SMCCC_VERSION), 0, 0, 0]),
        Outcome::value(0x1_0001)
    );
    // Upper 32 bits of X0 are ignored.
    assert_eq!(
        x0(p.call(VcpuId(0), [0xdead_0000_8400_0000, 0, 0, 0])),
        0x1_0001
    );
}

#[test]
fn cpu_on_starts_an_off_vcpu_once() {
    let mut p = psci();
    let o = p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 2, ENTRY, 0xc0ffee]);
    assert_eq!(
        o,
        Outcome {
            x0: Some(0),
            action: Action::StartVcpu {
                target: VcpuId(2),
                entry: GuestPhysAddr(ENTRY),
                context: 0xc0ffee
            },
        }
    );
    assert_eq!(p.state(VcpuId(2)), PowerState::OnPending);
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 2, ENTRY, 0])),
        ret::ON_PENDING
    );
    p.started(VcpuId(2));
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 2, ENTRY, 0])),
        ret::ALREADY_ON
    );
    assert_eq!(
        x0(p.call(VcpuId(1), [u64::from(fid::CPU_ON_64), 0, ENTRY, 0])),
        ret::ALREADY_ON
    );
}

#[test]
fn cpu_on_checks_mpidr() {
    let mut p = psci();
    for bad in [4u64, 0xff, 0x100, 0x1_0000, 0x1_0000_0000, 0x100 | 1] {
        assert_eq!(
            x0(p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), bad, ENTRY, 0])),
            ret::INVALID_PARAMETERS,
            "{bad:#x}"
        );
    }
    // MT/U/RES1 bits [31:24] are not affinity.
    assert!(matches!(
        p.call(
            VcpuId(0),
            [u64::from(fid::CPU_ON_64), 0x8000_0003, ENTRY, 0]
        )
        .action,
        Action::StartVcpu {
            target: VcpuId(3),
            ..
        }
    ));
}

#[test]
fn cpu_on_checks_entry_point() {
    let mut p = psci();
    for bad in [
        0u64,
        RAM.base.0 - 4,
        RAM.end(),
        RAM.end() - 2,
        ENTRY + 1,
        u64::MAX - 3,
    ] {
        assert_eq!(
            x0(p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 1, bad, 0])),
            ret::INVALID_ADDRESS,
            "{bad:#x}"
        );
    }
    assert_eq!(
        p.state(VcpuId(1)),
        PowerState::Off,
        "a refused CPU_ON changes nothing"
    );
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 1, RAM.end() - 4, 0])),
        0
    );
}

#[test]
fn cpu_on_32_truncates_arguments() {
    let mut p = psci();
    let o = p.call(
        VcpuId(0),
        [
            u64::from(fid::CPU_ON_32),
            0xffff_ffff_0000_0001,
            0xffff_ffff_0000_0000 | ENTRY,
            0x1_0000_0005,
        ],
    );
    assert_eq!(
        o.action,
        Action::StartVcpu {
            target: VcpuId(1),
            entry: GuestPhysAddr(ENTRY),
            context: 5
        }
    );
}

#[test]
fn start_failure_turns_the_target_off_again() {
    let mut p = psci();
    p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 3, ENTRY, 0]);
    assert_eq!(p.start_failed(VcpuId(3)) as i64, ret::INTERNAL_FAILURE);
    assert_eq!(p.state(VcpuId(3)), PowerState::Off);
}

#[test]
fn cpu_off_and_affinity_info() {
    let mut p = psci();
    let info = |p: &mut Psci, mpidr: u64, level: u64| {
        x0(p.call(
            VcpuId(0),
            [u64::from(fid::AFFINITY_INFO_64), mpidr, level, 0],
        ))
    };
    assert_eq!(info(&mut p, 0, 0), 0, "boot vCPU on");
    assert_eq!(info(&mut p, 1, 0), 1, "others off");
    p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 1, ENTRY, 0]);
    assert_eq!(info(&mut p, 1, 0), 2, "on pending");
    p.started(VcpuId(1));
    assert_eq!(info(&mut p, 1, 0), 0);
    assert_eq!(
        p.call(VcpuId(1), [u64::from(fid::CPU_OFF), 0, 0, 0]),
        Outcome {
            x0: None,
            action: Action::StopCaller
        }
    );
    assert_eq!(info(&mut p, 1, 0), 1);
    assert_eq!(info(&mut p, 9, 0), ret::INVALID_PARAMETERS);
    assert_eq!(
        info(&mut p, 0, 1),
        ret::INVALID_PARAMETERS,
        "levels above 0 unsupported"
    );
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::AFFINITY_INFO_32), 0, 0, 0])),
        0
    );
    // A vCPU that was turned off can be turned on again.
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::CPU_ON_64), 1, ENTRY, 0])),
        0
    );
}

#[test]
fn suspend_system_and_migrate() {
    let mut p = psci();
    assert_eq!(
        p.call(
            VcpuId(0),
            [u64::from(fid::CPU_SUSPEND_64), 0x1_0000, ENTRY, 0]
        ),
        Outcome {
            x0: Some(0),
            action: Action::Suspend
        }
    );
    assert_eq!(
        p.call(VcpuId(0), [u64::from(fid::SYSTEM_OFF), 0, 0, 0]),
        Outcome {
            x0: None,
            action: Action::SystemOff
        }
    );
    assert_eq!(
        p.call(VcpuId(2), [u64::from(fid::SYSTEM_RESET), 0, 0, 0]),
        Outcome {
            x0: None,
            action: Action::SystemReset
        }
    );
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::MIGRATE_INFO_TYPE), 0, 0, 0])),
        2
    );
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::MIGRATE_64), 1, 0, 0])),
        ret::NOT_SUPPORTED
    );
    assert_eq!(
        x0(p.call(VcpuId(0), [u64::from(fid::MIGRATE_INFO_UP_CPU_64), 0, 0, 0])),
        ret::NOT_SUPPORTED
    );
}

#[test]
fn features() {
    let mut p = psci();
    let feat = |p: &mut Psci, f: u32| {
        x0(p.call(
            VcpuId(0),
            [u64::from(fid::PSCI_FEATURES), u64::from(f), 0, 0],
        ))
    };
    for f in [
        fid::PSCI_VERSION,
        fid::CPU_ON_64,
        fid::CPU_OFF,
        fid::CPU_SUSPEND_64,
        fid::AFFINITY_INFO_64,
        fid::SYSTEM_OFF,
        fid::SYSTEM_RESET,
        fid::PSCI_FEATURES,
        fid::MIGRATE_INFO_TYPE,
        fid::SMCCC_VERSION,
    ] {
        assert_eq!(feat(&mut p, f), 0, "{f:#x}");
    }
    for f in [fid::MIGRATE_64, 0x8400_0012, 0x1234] {
        assert_eq!(feat(&mut p, f), ret::NOT_SUPPORTED, "{f:#x}");
    }
    let arch = |p: &mut Psci, f: u32| {
        x0(p.call(
            VcpuId(0),
            [u64::from(fid::SMCCC_ARCH_FEATURES), u64::from(f), 0, 0],
        ))
    };
    assert_eq!(arch(&mut p, fid::SMCCC_ARCH_FEATURES), 0);
    assert_eq!(
        arch(&mut p, fid::SMCCC_ARCH_WORKAROUND_1),
        ret::NOT_SUPPORTED
    );
    assert_eq!(
        arch(&mut p, fid::SMCCC_ARCH_WORKAROUND_3),
        ret::NOT_SUPPORTED
    );
}

#[test]
fn unknown_functions_are_not_supported() {
    let mut p = psci();
    for f in [0u64, 0x8400_00ff, 0xc200_0000, 0x8200_0001, u64::MAX] {
        assert_eq!(
            x0(p.call(VcpuId(1), [f, 1, 2, 3])),
            ret::NOT_SUPPORTED,
            "{f:#x}"
        );
    }
}

#[test]
fn vcpu_count_is_capped() {
    let p = Psci::new(200, RAM);
    assert_eq!(p.vcpu_for_mpidr(15), Some(VcpuId(15)));
    assert_eq!(p.vcpu_for_mpidr(16), None);
    assert_eq!(p.state(VcpuId(100)), PowerState::Off);
}
