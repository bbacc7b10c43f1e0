//! The VMM core.
//!
//! [`Vm`] owns guest memory, the MMIO bus, the interrupt controller and the PSCI state, and
//! drives a [`Hypervisor`] back-end. The back-end's fault loop hands it one [`Event`] at a
//! time and gets back a [`Reply`] saying what to do with the vCPU that faulted. Nothing here
//! knows seL4: the root task implements [`Hypervisor`] and translates seL4 faults into
//! [`Event`]s; host tests do the same with plain data.
//!
//! Guest errors never panic the VMM. An access nobody emulates is read-as-zero /
//! write-ignored and logged once per address (see `mmio-bus`); an exit that cannot be
//! emulated at all (a data abort without syndrome, an instruction fetch from unmapped memory,
//! an unknown trap) is logged with vCPU, address and syndrome and ends the VM with
//! [`SystemEvent::Crash`]: a defined, visible end instead of a guest silently running on with
//! a corrupted register.
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

pub mod loader;
mod stats;

pub use irqchip::InterruptController;
pub use stats::{ExitClass, ExitStats};

use alloc::boxed::Box;
use alloc::vec::Vec;
use arm_fault::{DecodeError, Esr, Exit, GpReg, MmioAccess, SysReg, SysRegAccess, decode};
use guest_mem::{GuestMemory, GuestPhysAddr};
use hypervisor::{Hypervisor, SystemEvent, VcpuId};
use mmio_bus::{DeviceCtx, DevicePoll, IrqLines, LogOnce, MmioBus};
use psci::{Action, Psci};

/// Something the hypervisor back-end reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event {
    /// A stage-2 fault or trapped instruction of `vcpu` (seL4: VMFault or VCPUFault).
    Exit {
        /// The vCPU, stopped until the reply.
        vcpu: VcpuId,
        /// Its syndrome (ESR_EL2).
        esr: Esr,
        /// The faulting IPA, for aborts.
        ipa: GuestPhysAddr,
    },
    /// The guest EOI'd the interrupt in list register `lr` (seL4: VGICMaintenance fault).
    Maintenance {
        /// The vCPU, stopped until the reply.
        vcpu: VcpuId,
        /// The list register, when the kernel knows it.
        lr: Option<usize>,
    },
    /// The virtual timer of `vcpu` fired (seL4: VPPIEvent fault).
    Vppi {
        /// The vCPU, stopped until the reply.
        vcpu: VcpuId,
        /// The PPI (27).
        intid: u32,
    },
    /// A physical pass-through interrupt arrived (seL4: a notification from an IRQHandler).
    Irq {
        /// Its INTID.
        intid: u32,
    },
    /// An SMCCC call that reached the VMM as a system call rather than a trap (seL4 treats a
    /// guest HVC as a system call and reports an unknown one as an UnknownSyscall fault). X0..X3
    /// are read from the vCPU; the back-end must already have stepped the PC past the HVC.
    /// Guests should use SMC on seL4 (the guest DTB says so): an HVC whose X7 happens to hold
    /// a valid seL4 system call number is taken by the kernel as that system call.
    Hvc {
        /// The vCPU, stopped until the reply.
        vcpu: VcpuId,
    },
}

/// What the back-end does with the vCPU after an event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reply {
    /// Resume the vCPU (its registers and PC are already updated).
    Resume,
    /// The vCPU waits for an interrupt (WFI, CPU_SUSPEND): resume it when
    /// [`Vm::take_wakeups`] names it (the back-end may also resume it at once).
    Idle,
    /// Do not resume the vCPU (CPU_OFF).
    Stopped,
    /// The event was not a vCPU fault: nothing to reply to.
    Nothing,
    /// End the VM.
    Shutdown(SystemEvent),
}

/// Routes device interrupt lines into the interrupt controller.
struct Lines<'a, G: ?Sized> {
    gic: &'a mut G,
    hyp: &'a mut dyn Hypervisor,
}

impl<G: InterruptController + ?Sized> IrqLines for Lines<'_, G> {
    fn set_level(&mut self, intid: u32, level: bool) {
        self.gic.set_level(self.hyp, intid, level);
    }
}

/// One virtual machine: built by `vm-builder` from a platform table, driven by the back-end's
/// fault loop through [`Vm::handle`] and [`Vm::poll_devices`].
pub struct Vm<'m, H, G> {
    hyp: H,
    gic: G,
    bus: MmioBus,
    psci: Psci,
    mem: GuestMemory<'m>,
    stats: ExitStats,
    /// Devices with work no access triggers (the PCI bridge).
    pollers: Vec<Box<dyn DevicePoll>>,
    idle: u32,
    wakeups: u32,
    sysreg_log: LogOnce,
    exit_log: LogOnce,
    /// An access reached a bus device since the last [`Vm::poll_devices`].
    device_work: bool,
}

impl<'m, H: Hypervisor, G: InterruptController> Vm<'m, H, G> {
    /// A VM with `vcpus` vCPUs over `mem`, with the devices of `bus` (each named in the
    /// exit statistics) and the devices with outside work, `pollers`. Machines come from
    /// `vm-builder`; this is its last step.
    pub fn new(
        hyp: H,
        gic: G,
        bus: MmioBus,
        pollers: Vec<Box<dyn DevicePoll>>,
        mem: GuestMemory<'m>,
        vcpus: u8,
    ) -> Self {
        let psci = Psci::new(vcpus, mem.range());
        let mut stats = ExitStats::new(vcpus);
        stats.name_devices(bus.devices().map(|d| d.0));
        Vm {
            hyp,
            gic,
            bus,
            psci,
            mem,
            stats,
            pollers,
            idle: 0,
            wakeups: 0,
            sysreg_log: LogOnce::default(),
            exit_log: LogOnce::default(),
            device_work: false,
        }
    }

    /// The hypervisor back-end.
    pub fn hyp(&self) -> &H {
        &self.hyp
    }

    /// The hypervisor back-end, for what the back-end's own fault loop does to a vCPU
    /// outside an [`Event`] (stepping over a refused system call).
    pub fn hyp_mut(&mut self) -> &mut H {
        &mut self.hyp
    }

    /// The interrupt controller.
    pub fn gic(&self) -> &G {
        &self.gic
    }

    /// The emulated devices' bus.
    pub fn bus(&self) -> &MmioBus {
        &self.bus
    }

    /// The firmware (PSCI) state.
    pub fn psci(&self) -> &Psci {
        &self.psci
    }

    /// Guest RAM.
    pub fn mem(&self) -> &GuestMemory<'m> {
        &self.mem
    }

    /// The exit counts.
    pub fn stats(&self) -> &ExitStats {
        &self.stats
    }

    /// Names pass-through interrupts in the exit counts.
    pub fn name_irqs(&mut self, irqs: impl Iterator<Item = (u32, &'static str)>) {
        self.stats.name_irqs(irqs);
    }

    /// Call after replying to each event: when a guest access reached a device since the last
    /// call, the devices may have work left that no access triggers (chains past a notify's
    /// budget, a frame the backend answered), and they get to do it now. Otherwise (GIC,
    /// WFI, PSCI and interrupt events) it costs a flag test: a poll costs more than a GIC
    /// register exit (vmm-bench's poll row). Returns whether the devices were polled.
    pub fn poll_devices(&mut self) -> bool {
        if !core::mem::take(&mut self.device_work) {
            return false;
        }
        self.poll_devices_now();
        true
    }

    /// Polls the devices whatever happened: for outside input (console bytes, a frame from
    /// the network backend).
    pub fn poll_devices_now(&mut self) {
        let mut pollers = core::mem::take(&mut self.pollers);
        self.with_device_ctx(|ctx| {
            for p in &mut pollers {
                p.poll(ctx);
            }
        });
        self.pollers = pollers;
    }

    /// Starts the boot vCPU at the kernel entry with X0 = the DTB address (arm64 boot
    /// protocol; X1..X3 are zero).
    pub fn boot(
        &mut self,
        entry: GuestPhysAddr,
        dtb: GuestPhysAddr,
    ) -> Result<(), hypervisor::HypError> {
        self.hyp.start_vcpu(VcpuId(0), entry, dtb.0)?;
        self.psci.started(VcpuId(0));
        self.gic.vcpu_power(&mut self.hyp, VcpuId(0), true);
        Ok(())
    }

    /// Runs `f` with a device context for work that does not come from a guest access:
    /// console input, a received network frame. Interrupts the device raises go through the
    /// interrupt controller as usual; `vcpu` names the vCPU to blame in logs (vCPU 0).
    pub fn with_device_ctx<R>(&mut self, f: impl FnOnce(&mut DeviceCtx<'_>) -> R) -> R {
        let mut lines = Lines {
            gic: &mut self.gic,
            hyp: &mut self.hyp,
        };
        let mut ctx = DeviceCtx {
            vcpu: VcpuId(0),
            mem: &self.mem,
            irq: &mut lines,
        };
        let r = f(&mut ctx);
        self.collect_wakeups();
        r
    }

    /// vCPUs that were idle and now have an interrupt to take: resume them. Each is named once.
    pub fn take_wakeups(&mut self) -> impl Iterator<Item = VcpuId> + use<H, G> {
        let w = core::mem::take(&mut self.wakeups);
        (0..32u8).filter(move |i| w & (1 << i) != 0).map(VcpuId)
    }

    /// Handles one event.
    ///
    /// Emulated loads and stores (most exits) take a short path: the syndrome is checked with
    /// one mask test ([`Esr::mmio_access`]) and the access goes straight to the interrupt
    /// controller, which claims it or passes it on to the bus. Everything else, and every
    /// error, is handled out of line.
    pub fn handle(&mut self, event: Event) -> Reply {
        let reply = match event {
            Event::Exit { vcpu, esr, ipa } => match esr.mmio_access() {
                Some(access) => {
                    self.mmio(vcpu, ipa, access);
                    self.hyp.advance_pc(vcpu, esr.instruction_len());
                    Reply::Resume
                }
                None => self.exit(vcpu, esr, ipa),
            },
            Event::Maintenance { vcpu, lr } => {
                self.stats.count(vcpu, ExitClass::Maintenance);
                self.gic.maintenance(&mut self.hyp, vcpu, lr);
                Reply::Resume
            }
            Event::Vppi { vcpu, intid } => {
                self.stats.count(vcpu, ExitClass::Vppi);
                self.gic.vppi(&mut self.hyp, vcpu, intid);
                Reply::Resume
            }
            Event::Irq { intid } => {
                self.stats.count_irq(intid);
                self.gic.physical_irq(&mut self.hyp, intid);
                Reply::Nothing
            }
            Event::Hvc { vcpu } => self.smccc(vcpu, 0, 0),
        };
        if self.idle != 0 {
            self.collect_wakeups();
        }
        if let Event::Exit { vcpu, .. }
        | Event::Maintenance { vcpu, .. }
        | Event::Vppi { vcpu, .. }
        | Event::Hvc { vcpu } = event
        {
            self.hyp.commit(vcpu);
        }
        reply
    }

    #[inline(never)]
    fn collect_wakeups(&mut self) {
        if self.idle == 0 {
            return;
        }
        for i in 0..32u8 {
            let bit = 1u32 << i;
            if self.idle & bit != 0 && self.gic.has_pending(VcpuId(i)) {
                self.idle &= !bit;
                self.wakeups |= bit;
            }
        }
    }

    fn idle(&mut self, vcpu: VcpuId) -> Reply {
        if self.gic.has_pending(vcpu) {
            return Reply::Resume;
        }
        if let Some(bit) = 1u32.checked_shl(u32::from(vcpu.0)) {
            self.idle |= bit;
        }
        Reply::Idle
    }

    /// Every exit but an emulable load or store (and those too, decoded again, if called
    /// with one).
    #[inline]
    fn exit(&mut self, vcpu: VcpuId, esr: Esr, ipa: GuestPhysAddr) -> Reply {
        match decode(esr, ipa) {
            Ok(Exit::DataAbort { ipa, access }) => {
                self.mmio(vcpu, ipa, access);
                self.hyp.advance_pc(vcpu, esr.instruction_len());
                Reply::Resume
            }
            Ok(Exit::CacheMaintenance { .. }) => {
                self.hyp.advance_pc(vcpu, esr.instruction_len());
                Reply::Resume
            }
            Ok(Exit::Wfi) => {
                self.stats.count(vcpu, ExitClass::Wfi);
                self.hyp.advance_pc(vcpu, esr.instruction_len());
                self.idle(vcpu)
            }
            Ok(Exit::Wfe) => {
                self.stats.count(vcpu, ExitClass::Wfi);
                self.hyp.advance_pc(vcpu, esr.instruction_len());
                Reply::Resume
            }
            // The preferred return address of HVC is the next instruction already; a trapped
            // SMC returns to the SMC itself and must be stepped over.
            Ok(Exit::Hvc { imm }) => self.smccc(vcpu, imm, 0),
            Ok(Exit::Smc { imm }) => self.smccc(vcpu, imm, esr.instruction_len()),
            Ok(Exit::SysReg(access)) => {
                self.sysreg(vcpu, access);
                self.hyp.advance_pc(vcpu, esr.instruction_len());
                Reply::Resume
            }
            Ok(Exit::InstructionAbort { ipa, ifsc }) => {
                log::error!(
                    "[{vcpu}] instruction fetch from {ipa} (IFSC {ifsc:#x}): not guest RAM; stopping the VM"
                );
                self.stats.count(vcpu, ExitClass::Fatal);
                Reply::Shutdown(SystemEvent::Crash)
            }
            Ok(Exit::Other { ec, iss }) => {
                let hint = if ec == 0x09 || ec == 0x1c {
                    " (pointer authentication: boot the guest with arm64.nopauth)"
                } else {
                    ""
                };
                log::error!(
                    "[{vcpu}] unhandled exit EC {ec:#04x} ISS {iss:#x}{hint}; stopping the VM"
                );
                self.stats.count(vcpu, ExitClass::Fatal);
                Reply::Shutdown(SystemEvent::Crash)
            }
            Err(e @ (DecodeError::NoSyndrome { .. } | DecodeError::NotEmulable { .. })) => {
                log::error!("[{vcpu}] {e}; stopping the VM");
                self.stats.count(vcpu, ExitClass::Fatal);
                Reply::Shutdown(SystemEvent::Crash)
            }
        }
    }

    /// An emulated load or store: the interrupt controller's if it claims the address, the
    /// bus's otherwise. Inlined into `handle`: the access stays in registers.
    #[inline(always)]
    fn mmio(&mut self, vcpu: VcpuId, ipa: GuestPhysAddr, access: MmioAccess) {
        if access.write() {
            let value = access.store_value(self.hyp.gpr(vcpu, access.reg()));
            match self
                .gic
                .mmio_write(&mut self.hyp, vcpu, ipa, access.size(), value)
            {
                Some(r) => {
                    self.stats.count(vcpu, ExitClass::Gic);
                    if let Err(e) = r {
                        self.gic_refused(vcpu, ipa, access, Some(value), e);
                    }
                }
                None => self.bus_write(vcpu, ipa, access, value),
            }
        } else {
            let value = match self.gic.mmio_read(&mut self.hyp, vcpu, ipa, access.size()) {
                Some(r) => {
                    self.stats.count(vcpu, ExitClass::Gic);
                    r.unwrap_or_else(|e| {
                        self.gic_refused(vcpu, ipa, access, None, e);
                        0
                    })
                }
                None => self.bus_read(vcpu, ipa, access),
            };
            self.hyp
                .set_gpr(vcpu, access.reg(), access.load_result(value));
        }
    }

    /// The interrupt controller refused an access in its window: RAZ/WI, logged once.
    #[cold]
    #[inline(never)]
    fn gic_refused(
        &mut self,
        vcpu: VcpuId,
        ipa: GuestPhysAddr,
        access: MmioAccess,
        value: Option<u64>,
        e: mmio_bus::MmioError,
    ) {
        self.exit_log.warn(vcpu, ipa, access.size(), value, "gic");
        let dir = if value.is_some() { "write" } else { "read" };
        log::debug!("gic {dir} at {ipa}: {e}");
    }

    /// A load from a bus device (the device's interrupt lines borrow the back-end meanwhile).
    #[inline(never)]
    fn bus_read(&mut self, vcpu: VcpuId, ipa: GuestPhysAddr, access: MmioAccess) -> u64 {
        let mut lines = Lines {
            gic: &mut self.gic,
            hyp: &mut self.hyp,
        };
        let mut ctx = DeviceCtx {
            vcpu,
            mem: &self.mem,
            irq: &mut lines,
        };
        let (value, device) = self.bus.read(&mut ctx, ipa, access.size());
        self.device_work |= device.is_some();
        self.stats.count_mmio(vcpu, device);
        value
    }

    /// A store to a bus device.
    #[inline(never)]
    fn bus_write(&mut self, vcpu: VcpuId, ipa: GuestPhysAddr, access: MmioAccess, value: u64) {
        let mut lines = Lines {
            gic: &mut self.gic,
            hyp: &mut self.hyp,
        };
        let mut ctx = DeviceCtx {
            vcpu,
            mem: &self.mem,
            irq: &mut lines,
        };
        let device = self.bus.write(&mut ctx, ipa, access.size(), value);
        self.device_work |= device.is_some();
        self.stats.count_mmio(vcpu, device);
    }

    fn sysreg(&mut self, vcpu: VcpuId, access: SysRegAccess) {
        if !access.read {
            let value = self.hyp.gpr(vcpu, access.rt);
            if self
                .gic
                .sysreg_write(&mut self.hyp, vcpu, access.reg, value)
            {
                let class = match access.reg {
                    SysReg::ICC_SGI1R_EL1 | SysReg::ICC_ASGI1R_EL1 | SysReg::ICC_SGI0R_EL1 => {
                        ExitClass::Sgi
                    }
                    _ => ExitClass::SysReg,
                };
                self.stats.count(vcpu, class);
                return;
            }
        }
        // Registers nobody emulates: read as zero, writes ignored, logged once per register.
        self.stats.count(vcpu, ExitClass::SysReg);
        let r = access.reg;
        let key = u64::from(r.op0) << 16
            | u64::from(r.op1) << 12
            | u64::from(r.crn) << 8
            | u64::from(r.crm) << 4
            | u64::from(r.op2);
        if self.sysreg_log.first(key) {
            let dir = if access.read {
                "read (returns 0)"
            } else {
                "write (ignored)"
            };
            log::warn!("[{vcpu}] unhandled system register {r:?} {dir}");
        }
        if access.read {
            self.hyp.set_gpr(vcpu, access.rt, 0);
        }
    }

    /// An SMCCC call (PSCI lives there) with the immediate of its HVC/SMC.
    fn smccc(&mut self, vcpu: VcpuId, imm: u16, advance: u64) -> Reply {
        self.stats.count(vcpu, ExitClass::Psci);
        if advance != 0 {
            self.hyp.advance_pc(vcpu, advance);
        }
        let x0 = GpReg::new(0);
        if imm != 0 {
            // SMCCC calls use immediate 0; anything else is not a firmware call we know.
            self.hyp.set_gpr(vcpu, x0, psci::ret::NOT_SUPPORTED as u64);
            return Reply::Resume;
        }
        let args = [0u8, 1, 2, 3].map(|r| self.hyp.gpr(vcpu, GpReg::new(r)));
        let out = self.psci.call(vcpu, args);
        let mut ret = out.x0;
        let reply = match out.action {
            Action::None => Reply::Resume,
            Action::StartVcpu {
                target,
                entry,
                context,
            } => {
                match self.hyp.start_vcpu(target, entry, context) {
                    Ok(()) => {
                        self.psci.started(target);
                        self.gic.vcpu_power(&mut self.hyp, target, true);
                        log::info!("[{vcpu}] PSCI CPU_ON {target} at {entry}");
                    }
                    Err(e) => {
                        log::error!("[{vcpu}] PSCI CPU_ON {target}: {e}");
                        ret = Some(self.psci.start_failed(target));
                    }
                }
                Reply::Resume
            }
            Action::StopCaller => {
                self.gic.vcpu_power(&mut self.hyp, vcpu, false);
                self.hyp.stop_vcpu(vcpu);
                log::info!("[{vcpu}] PSCI CPU_OFF");
                if self.psci.any_running() {
                    Reply::Stopped
                } else {
                    // Nobody is left to CPU_ON anyone: the VM could never run again.
                    log::error!(
                        "[{vcpu}] PSCI CPU_OFF of the last running vCPU: no vCPU left, ending the VM"
                    );
                    Reply::Shutdown(SystemEvent::Crash)
                }
            }
            Action::Suspend => self.idle(vcpu),
            Action::SystemOff => Reply::Shutdown(SystemEvent::PowerOff),
            Action::SystemReset => Reply::Shutdown(SystemEvent::Reset),
        };
        if let Some(v) = ret {
            self.hyp.set_gpr(vcpu, x0, v);
        }
        reply
    }
}

#[cfg(test)]
mod tests;
