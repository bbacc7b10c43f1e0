//! PSCI 1.1 (Arm DEN 0022) over SMCCC 1.1 (Arm DEN 0028), as the guest's firmware.
//!
//! [`Psci::call`] takes the caller and its X0..X3 and returns an [`Outcome`]: the value for
//! X0 (if the call returns) and an [`Action`] for the VMM to carry out (start a vCPU, stop
//! the caller, end the VM). The power state of every vCPU lives here, so CPU_ON, CPU_OFF and
//! AFFINITY_INFO agree with each other. Guest arguments are untrusted: the target MPIDR must
//! name a vCPU and the entry point must lie in guest RAM.
//!
//! CPU_SUSPEND is served as a standby (WFI-like) state whatever the requested power state,
//! as KVM does: a wake-up interrupt returns from the call with SUCCESS.
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use guest_mem::{GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;

/// Function IDs (SMC32 and SMC64 conventions).
pub mod fid {
    /// PSCI_VERSION.
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    /// CPU_SUSPEND, SMC32.
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    /// CPU_SUSPEND, SMC64.
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    /// CPU_OFF.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON, SMC32.
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// CPU_ON, SMC64.
    pub const CPU_ON_64: u32 = 0xc400_0003;
    /// AFFINITY_INFO, SMC32.
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    /// AFFINITY_INFO, SMC64.
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
    /// MIGRATE, SMC32.
    pub const MIGRATE_32: u32 = 0x8400_0005;
    /// MIGRATE, SMC64.
    pub const MIGRATE_64: u32 = 0xc400_0005;
    /// MIGRATE_INFO_TYPE.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// MIGRATE_INFO_UP_CPU, SMC32.
    pub const MIGRATE_INFO_UP_CPU_32: u32 = 0x8400_0007;
    /// MIGRATE_INFO_UP_CPU, SMC64.
    pub const MIGRATE_INFO_UP_CPU_64: u32 = 0xc400_0007;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
    /// SMCCC_VERSION.
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    /// SMCCC_ARCH_FEATURES.
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    /// SMCCC_ARCH_WORKAROUND_1 (Spectre v2).
    pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
    /// SMCCC_ARCH_WORKAROUND_2 (Spectre v4).
    pub const SMCCC_ARCH_WORKAROUND_2: u32 = 0x8000_7fff;
    /// SMCCC_ARCH_WORKAROUND_3 (Spectre-BHB).
    pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3fff;
}

/// PSCI return codes (as the signed values X0 carries).
pub mod ret {
    /// SUCCESS.
    pub const SUCCESS: i64 = 0;
    /// NOT_SUPPORTED (also SMCCC's "unknown function").
    pub const NOT_SUPPORTED: i64 = -1;
    /// INVALID_PARAMETERS.
    pub const INVALID_PARAMETERS: i64 = -2;
    /// DENIED.
    pub const DENIED: i64 = -3;
    /// ALREADY_ON.
    pub const ALREADY_ON: i64 = -4;
    /// ON_PENDING.
    pub const ON_PENDING: i64 = -5;
    /// INTERNAL_FAILURE.
    pub const INTERNAL_FAILURE: i64 = -6;
    /// NOT_PRESENT.
    pub const NOT_PRESENT: i64 = -7;
    /// DISABLED.
    pub const DISABLED: i64 = -8;
    /// INVALID_ADDRESS.
    pub const INVALID_ADDRESS: i64 = -9;
}

/// PSCI 1.1.
pub const PSCI_VERSION_1_1: u64 = 0x0001_0001;
/// SMCCC 1.1.
pub const SMCCC_VERSION_1_1: u64 = 0x0001_0001;
/// MIGRATE_INFO_TYPE: no Trusted OS that needs migrating.
pub const MIGRATE_INFO_NONE: u64 = 2;

/// A vCPU's power state as PSCI reports it through AFFINITY_INFO.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PowerState {
    /// Running.
    On = 0,
    /// Off (never started, or CPU_OFF).
    Off = 1,
    /// CPU_ON accepted, not yet running.
    OnPending = 2,
}

/// What the VMM must do after a call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// Nothing: write X0 and resume the caller.
    None,
    /// Start `target` at `entry` with X0 = `context`, then report [`Psci::started`] (or
    /// [`Psci::start_failed`]); the caller resumes with X0 = SUCCESS.
    StartVcpu {
        /// The vCPU to start.
        target: VcpuId,
        /// Its entry point (inside guest RAM).
        entry: GuestPhysAddr,
        /// Its X0.
        context: u64,
    },
    /// Stop the caller; it does not return (CPU_OFF).
    StopCaller,
    /// Let the caller wait for an interrupt, then resume it with X0 = SUCCESS (CPU_SUSPEND).
    Suspend,
    /// Power the whole VM off.
    SystemOff,
    /// Reset the whole VM.
    SystemReset,
}

/// The result of one call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Outcome {
    /// The value for X0, when the call returns to the caller.
    pub x0: Option<u64>,
    /// What the VMM does next.
    pub action: Action,
}

impl Outcome {
    fn ret(v: i64) -> Self {
        Outcome {
            x0: Some(v as u64),
            action: Action::None,
        }
    }

    fn value(v: u64) -> Self {
        Outcome {
            x0: Some(v),
            action: Action::None,
        }
    }
}

/// Most vCPUs tracked (the platform limit).
pub const MAX_VCPUS: usize = 16;

/// The firmware's state: every vCPU's power state, and guest RAM for entry-point checks.
#[derive(Clone, Debug)]
pub struct Psci {
    states: [PowerState; MAX_VCPUS],
    vcpus: u8,
    ram: GuestRange,
}

impl Psci {
    /// `vcpus` vCPUs, vCPU 0 on and the others off (the boot CPU runs first).
    pub fn new(vcpus: u8, ram: GuestRange) -> Self {
        let vcpus = vcpus.min(MAX_VCPUS as u8);
        let mut states = [PowerState::Off; MAX_VCPUS];
        states[0] = PowerState::On;
        Psci { states, vcpus, ram }
    }

    /// The power state of `vcpu` (Off for vCPUs that do not exist).
    pub fn state(&self, vcpu: VcpuId) -> PowerState {
        if vcpu.0 < self.vcpus {
            self.states
                .get(vcpu.index())
                .copied()
                .unwrap_or(PowerState::Off)
        } else {
            PowerState::Off
        }
    }

    /// Whether any vCPU is on or about to be (CPU_ON accepted).
    pub fn any_running(&self) -> bool {
        self.states
            .iter()
            .take(usize::from(self.vcpus))
            .any(|s| *s != PowerState::Off)
    }

    fn set(&mut self, vcpu: VcpuId, s: PowerState) {
        if let Some(slot) = self.states.get_mut(vcpu.index()) {
            *slot = s;
        }
    }

    /// The VMM started `target` after [`Action::StartVcpu`].
    pub fn started(&mut self, target: VcpuId) {
        self.set(target, PowerState::On);
    }

    /// Starting `target` failed; it is off again and the caller gets INTERNAL_FAILURE.
    pub fn start_failed(&mut self, target: VcpuId) -> u64 {
        self.set(target, PowerState::Off);
        ret::INTERNAL_FAILURE as u64
    }

    /// The vCPU an MPIDR names: Aff0 < vCPU count, every other affinity field zero.
    pub fn vcpu_for_mpidr(&self, mpidr: u64) -> Option<VcpuId> {
        // Aff3 is [39:32], Aff2..Aff0 are [23:0]; bits 24..31 (MT, U, RES1) are ignored.
        let aff = mpidr & 0xff_00ff_ffff;
        (aff < u64::from(self.vcpus)).then_some(VcpuId(aff as u8))
    }

    /// Serves one SMCCC call from `caller`, with its X0..X3.
    pub fn call(&mut self, caller: VcpuId, args: [u64; 4]) -> Outcome {
        let [x0, x1, x2, x3] = args;
        // SMCCC: the function ID is W0; bits [63:32] are ignored.
        let f = x0 as u32;
        // SMC32 calls take 32-bit arguments.
        let smc32 = f & 0x4000_0000 == 0;
        let arg = |x: u64| if smc32 { x & 0xffff_ffff } else { x };
        match f {
            fid::PSCI_VERSION => Outcome::value(PSCI_VERSION_1_1),
            fid::CPU_ON_32 | fid::CPU_ON_64 => self.cpu_on(arg(x1), arg(x2), arg(x3)),
            fid::CPU_OFF => {
                self.set(caller, PowerState::Off);
                Outcome {
                    x0: None,
                    action: Action::StopCaller,
                }
            }
            fid::CPU_SUSPEND_32 | fid::CPU_SUSPEND_64 => Outcome {
                x0: Some(ret::SUCCESS as u64),
                action: Action::Suspend,
            },
            fid::AFFINITY_INFO_32 | fid::AFFINITY_INFO_64 => {
                // Only affinity level 0 is supported (PSCI 1.0+ mandates only that).
                if arg(x2) != 0 {
                    return Outcome::ret(ret::INVALID_PARAMETERS);
                }
                match self.vcpu_for_mpidr(arg(x1)) {
                    Some(v) => Outcome::value(self.state(v) as u64),
                    None => Outcome::ret(ret::INVALID_PARAMETERS),
                }
            }
            fid::MIGRATE_INFO_TYPE => Outcome::value(MIGRATE_INFO_NONE),
            fid::SYSTEM_OFF => Outcome {
                x0: None,
                action: Action::SystemOff,
            },
            fid::SYSTEM_RESET => Outcome {
                x0: None,
                action: Action::SystemReset,
            },
            fid::PSCI_FEATURES => Outcome::ret(Self::features(x1 as u32)),
            fid::SMCCC_VERSION => Outcome::value(SMCCC_VERSION_1_1),
            fid::SMCCC_ARCH_FEATURES => Outcome::ret(match x1 as u32 {
                fid::SMCCC_VERSION | fid::SMCCC_ARCH_FEATURES => ret::SUCCESS,
                // No mitigation firmware: the guest decides for itself.
                _ => ret::NOT_SUPPORTED,
            }),
            // MIGRATE, MIGRATE_INFO_UP_CPU and everything else.
            _ => Outcome::ret(ret::NOT_SUPPORTED),
        }
    }

    fn cpu_on(&mut self, mpidr: u64, entry: u64, context: u64) -> Outcome {
        let Some(target) = self.vcpu_for_mpidr(mpidr) else {
            return Outcome::ret(ret::INVALID_PARAMETERS);
        };
        // The entry point must be an instruction in guest RAM (4-byte aligned).
        if entry & 3 != 0 || !self.ram.contains_range(GuestPhysAddr(entry), 4) {
            return Outcome::ret(ret::INVALID_ADDRESS);
        }
        match self.state(target) {
            PowerState::On => Outcome::ret(ret::ALREADY_ON),
            PowerState::OnPending => Outcome::ret(ret::ON_PENDING),
            PowerState::Off => {
                self.set(target, PowerState::OnPending);
                Outcome {
                    x0: Some(ret::SUCCESS as u64),
                    action: Action::StartVcpu {
                        target,
                        entry: GuestPhysAddr(entry),
                        context,
                    },
                }
            }
        }
    }

    /// PSCI_FEATURES: 0 for implemented functions (CPU_SUSPEND: original power_state
    /// format, no OS-initiated mode), NOT_SUPPORTED otherwise.
    fn features(f: u32) -> i64 {
        match f {
            fid::PSCI_VERSION
            | fid::CPU_SUSPEND_32
            | fid::CPU_SUSPEND_64
            | fid::CPU_OFF
            | fid::CPU_ON_32
            | fid::CPU_ON_64
            | fid::AFFINITY_INFO_32
            | fid::AFFINITY_INFO_64
            | fid::MIGRATE_INFO_TYPE
            | fid::SYSTEM_OFF
            | fid::SYSTEM_RESET
            | fid::PSCI_FEATURES
            | fid::SMCCC_VERSION => ret::SUCCESS,
            _ => ret::NOT_SUPPORTED,
        }
    }
}

#[cfg(test)]
mod tests;
