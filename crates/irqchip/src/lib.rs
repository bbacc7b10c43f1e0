//! The interrupt controller the event loop drives (the `vgic` crate implements it).
//!
//! It lives in a crate of its own so that interrupt-controller implementations do not depend
//! on the event loop (`vmm`), which re-exports the trait.
#![no_std]
#![forbid(unsafe_code)]

use arm_fault::{AccessSize, SysReg};
use guest_mem::GuestPhysAddr;
use hypervisor::{Hypervisor, VcpuId};
use mmio_bus::MmioError;

/// An emulated interrupt controller: its own MMIO windows, interrupt lines, and the
/// interrupt-related exits seL4 reports.
///
/// Every method that may change what is pending takes the hypervisor, so the controller can
/// fill list registers at once (of any vCPU, not only the one that trapped).
pub trait InterruptController {
    /// True when `addr` lies in one of the controller's MMIO windows (distributor,
    /// redistributors).
    fn handles(&self, addr: GuestPhysAddr) -> bool;

    /// A guest load at `addr`: `None` when `addr` is not in the controller's windows (the
    /// event loop then hands the access to the MMIO bus), otherwise the value or why the
    /// controller refused the access. One call both claims the address and performs the access
    /// (the event loop calls it for every emulated load, so it should be cheap to say `None`).
    fn mmio_read(
        &mut self,
        hyp: &mut dyn Hypervisor,
        vcpu: VcpuId,
        addr: GuestPhysAddr,
        size: AccessSize,
    ) -> Option<Result<u64, MmioError>>;

    /// A guest store at `addr`: `None` when `addr` is not in the controller's windows (the
    /// access goes to the MMIO bus), otherwise whether the controller accepted it.
    fn mmio_write(
        &mut self,
        hyp: &mut dyn Hypervisor,
        vcpu: VcpuId,
        addr: GuestPhysAddr,
        size: AccessSize,
        value: u64,
    ) -> Option<Result<(), MmioError>>;

    /// Drives SPI line `intid` (emulated devices, level-sensitive).
    fn set_level(&mut self, hyp: &mut dyn Hypervisor, intid: u32, level: bool);

    /// seL4 delivered a physical (pass-through) interrupt. Level-triggered ones must be
    /// acknowledged with `Hypervisor::ack_irq` only after the guest's EOI.
    fn physical_irq(&mut self, hyp: &mut dyn Hypervisor, intid: u32);

    /// A VGIC maintenance fault: the guest EOI'd the interrupt in list register `lr`
    /// (`None` when the kernel could not tell which).
    fn maintenance(&mut self, hyp: &mut dyn Hypervisor, vcpu: VcpuId, lr: Option<usize>);

    /// A virtual PPI event (the virtual timer fired) on `vcpu`.
    fn vppi(&mut self, hyp: &mut dyn Hypervisor, vcpu: VcpuId, intid: u32);

    /// A trapped write to a GIC CPU-interface system register (ICC_SGI1R_EL1 and friends).
    /// Returns false when the register is not the controller's.
    fn sysreg_write(
        &mut self,
        hyp: &mut dyn Hypervisor,
        vcpu: VcpuId,
        reg: SysReg,
        value: u64,
    ) -> bool;

    /// The vCPU was powered on (PSCI CPU_ON) or off (CPU_OFF): SPIs routed to an offline vCPU
    /// go elsewhere.
    fn vcpu_power(&mut self, hyp: &mut dyn Hypervisor, vcpu: VcpuId, online: bool);

    /// True when `vcpu` has an interrupt pending or in a list register (WFI may return).
    fn has_pending(&self, vcpu: VcpuId) -> bool;
}
