//! The hypervisor back-end trait.
//!
//! The VMM core (fault handling, device models, vGIC, PSCI) knows nothing of seL4. Everything
//! it needs from the kernel goes through [`Hypervisor`]: guest registers, starting and stopping
//! vCPUs, list-register injection, acknowledging virtual PPIs and physical interrupts, and
//! stage-2 mappings. The seL4 root task implements it with `sel4` capabilities; host tests and
//! fuzzers implement it with plain data.
//!
//! The trait is object safe: device models and the vGIC take `&mut dyn Hypervisor`.
//!
//! With the `test-utils` feature, [`testing::TestHyp`] is a configurable double for host tests,
//! fuzzers and benchmarks.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "test-utils")]
extern crate alloc;

#[cfg(feature = "test-utils")]
pub mod testing;

use core::fmt;

pub use arm_fault::GpReg;
pub use guest_mem::GuestPhysAddr;

/// A guest vCPU by index; vCPU n has MPIDR Aff0 = n.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VcpuId(pub u8);

impl VcpuId {
    /// The index as usize (for per-vCPU arrays).
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for VcpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vcpu{}", self.0)
    }
}

impl fmt::Display for VcpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vcpu{}", self.0)
    }
}

/// A virtual interrupt for a list register.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VirtualIrq {
    /// Interrupt ID the guest acknowledges.
    pub intid: u32,
    /// Priority (the guest's IPRIORITYR value).
    pub priority: u8,
    /// Group (1 for everything a Linux guest uses).
    pub group: u8,
}

/// A guest request that ends the whole VM.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SystemEvent {
    /// PSCI SYSTEM_OFF.
    PowerOff,
    /// PSCI SYSTEM_RESET.
    Reset,
    /// The VMM stopped the VM after a guest error it cannot continue from.
    Crash,
}

/// Why a back-end operation failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HypError {
    /// No such vCPU.
    NoSuchVcpu(VcpuId),
    /// A list register index at or past the hardware's count.
    NoSuchListRegister {
        /// The vCPU.
        vcpu: VcpuId,
        /// The index.
        lr: usize,
    },
    /// The kernel refused the operation; `code` is its error number.
    Kernel {
        /// What was attempted.
        op: &'static str,
        /// The kernel's error code.
        code: i64,
    },
}

impl fmt::Display for HypError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HypError::NoSuchVcpu(v) => write!(f, "no {v}"),
            HypError::NoSuchListRegister { vcpu, lr } => {
                write!(f, "{vcpu} has no list register {lr}")
            }
            HypError::Kernel { op, code } => write!(f, "{op} failed with kernel error {code}"),
        }
    }
}

/// What the VMM core needs from the hypervisor.
///
/// Calls naming a vCPU are made while that vCPU is stopped in a fault the VMM has not replied
/// to yet, except `inject_irq`, which may name a running vCPU (seL4 forwards the request to
/// the core it runs on).
pub trait Hypervisor {
    /// Number of vCPUs the back-end created.
    fn vcpu_count(&self) -> usize;

    /// Reads general-purpose register X0..X30; the zero register reads 0.
    fn gpr(&mut self, vcpu: VcpuId, reg: GpReg) -> u64;

    /// Writes general-purpose register X0..X30; writes to the zero register are dropped.
    fn set_gpr(&mut self, vcpu: VcpuId, reg: GpReg, value: u64);

    /// Steps the vCPU's PC over the faulting instruction.
    fn advance_pc(&mut self, vcpu: VcpuId, bytes: u64);

    /// Makes the register changes of this event take effect (a back-end that caches a
    /// stopped vCPU's registers writes them back here). `Vm::handle` calls it once per event
    /// of a vCPU, before its caller replies to the fault.
    fn commit(&mut self, vcpu: VcpuId) {
        let _ = vcpu;
    }

    /// Starts a stopped vCPU at `entry` with X0 = `context`, per the arm64 boot protocol
    /// (EL1h, MMU off, DAIF masked).
    fn start_vcpu(
        &mut self,
        vcpu: VcpuId,
        entry: GuestPhysAddr,
        context: u64,
    ) -> Result<(), HypError>;

    /// Stops a vCPU (it runs again only through `start_vcpu`).
    fn stop_vcpu(&mut self, vcpu: VcpuId);

    /// Number of list registers the vCPU's GIC interface has (ICH_VTR_EL2.ListRegs + 1).
    fn list_registers(&self, vcpu: VcpuId) -> usize;

    /// Writes `irq` into list register `lr` of `vcpu` as pending, with an EOI maintenance
    /// interrupt so the VMM hears when the guest is done with it.
    fn inject_irq(&mut self, vcpu: VcpuId, lr: usize, irq: VirtualIrq) -> Result<(), HypError>;

    /// Re-arms the virtual PPI `intid` (the virtual timer) after the guest's EOI.
    fn ack_vppi(&mut self, vcpu: VcpuId, intid: u32);

    /// Acknowledges physical interrupt `intid` so the kernel delivers it again.
    fn ack_irq(&mut self, intid: u32);
}
