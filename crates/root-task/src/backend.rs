//! The seL4 implementation of the core's [`Hypervisor`] trait.

use alloc::vec::Vec;
use core::ptr::NonNull;

use guest_mem::GuestPhysAddr;
use hypervisor::{GpReg, HypError, Hypervisor, VcpuId, VirtualIrq};
use sel4::{CapRights, VmAttributes, cap};
use stage2::Mapping;
use stage2::{PageSize, Source};
use vmm_platform::{Access, MemAttrs};

use crate::objects::{AllocError, Objects};
use crate::space::map_frame;

/// SPSR for a vCPU's first instruction: EL1h with D, A, I and F masked (arm64 boot protocol).
const SPSR_EL1H_DAIF: u64 = 0x3c5;

/// Where the root task sees guest RAM: `RAM_WINDOW + (gpa - ram base)`.
pub const RAM_WINDOW: usize = 0x10_0000_0000;

/// One guest vCPU: its TCB and VCPU object, and its registers while the VMM handles a fault.
pub struct Vcpu {
    /// The thread.
    pub tcb: cap::Tcb,
    /// The virtual CPU state bound to it.
    pub vcpu: cap::VCpu,
    regs: Option<sel4::UserContext>,
    dirty: bool,
}

impl Vcpu {
    /// A vCPU from its objects.
    pub fn new(tcb: cap::Tcb, vcpu: cap::VCpu) -> Self {
        Vcpu {
            tcb,
            vcpu,
            regs: None,
            dirty: false,
        }
    }
}

fn kernel(op: &'static str, e: sel4::Error) -> HypError {
    HypError::Kernel { op, code: e as i64 }
}

/// The back-end.
pub struct Sel4Hyp {
    /// Kernel objects.
    pub objs: Objects,
    /// vCPUs by index.
    pub vcpus: Vec<Vcpu>,
    /// The guest's stage-2 address space.
    pub guest_vspace: cap::VSpace,
    /// Guest RAM base and size (for the root task's view of it).
    pub ram: guest_mem::GuestRange,
    /// Pass-through interrupt handlers by INTID.
    pub irqs: Vec<(u32, cap::IrqHandler)>,
    lrs: usize,
}

impl Sel4Hyp {
    /// A back-end over the given objects.
    pub fn new(
        objs: Objects,
        vcpus: Vec<Vcpu>,
        guest_vspace: cap::VSpace,
        ram: guest_mem::GuestRange,
        lrs: usize,
    ) -> Self {
        Sel4Hyp {
            objs,
            vcpus,
            guest_vspace,
            ram,
            irqs: Vec::new(),
            lrs,
        }
    }

    fn regs(&mut self, v: VcpuId) -> Option<&mut sel4::UserContext> {
        let vcpu = self.vcpus.get_mut(v.index())?;
        if vcpu.regs.is_none() {
            match vcpu.tcb.tcb_read_all_registers(false) {
                Ok(r) => vcpu.regs = Some(r),
                Err(e) => {
                    log::error!("[{v}] reading registers: {e:?}");
                    return None;
                }
            }
        }
        vcpu.regs.as_mut()
    }

    /// Writes back registers the VMM changed, and forgets the cached copy (call before
    /// replying to the vCPU's fault).
    pub fn flush(&mut self, v: VcpuId) {
        let Some(vcpu) = self.vcpus.get_mut(v.index()) else {
            return;
        };
        if let (Some(regs), true) = (vcpu.regs.as_mut(), vcpu.dirty)
            && let Err(e) = vcpu.tcb.tcb_write_all_registers(false, regs)
        {
            log::error!("[{v}] writing registers: {e:?}");
        }
        vcpu.regs = None;
        vcpu.dirty = false;
    }

    fn map_run(&mut self, m: &Mapping) -> Result<(), AllocError> {
        let (frame_bp, frame_size) = match m.page {
            PageSize::Large => (
                sel4::ObjectBlueprint::Arch(sel4::ObjectBlueprintArch::LargePage),
                1 << 21,
            ),
            PageSize::Small => (
                sel4::ObjectBlueprint::Arch(sel4::ObjectBlueprintArch::SmallPage),
                1 << 12,
            ),
        };
        let guest_attrs = match m.attrs {
            MemAttrs::NormalCacheable => VmAttributes::DEFAULT,
            // seL4 16 has two stage-2 memory types: Normal write-back (cacheable) and
            // Device-nGnRnE. Both device-nGnRE and normal-nc map to the latter, which is
            // non-cacheable and at least as strict as either.
            MemAttrs::DeviceNGnRE | MemAttrs::NormalNonCacheable => VmAttributes::EXECUTE_NEVER,
        };
        // A read-only run gets frames without write rights: stage 2's S2AP is read-only, and a
        // guest store there is a VM fault the VMM answers as for any unemulated store.
        let guest_rights = match m.access {
            Access::ReadWrite => CapRights::all(),
            Access::ReadOnly => CapRights::read_only(),
        };
        let is_ram = m.attrs == MemAttrs::NormalCacheable;
        let mut off = 0u64;
        while off < m.size {
            let gpa = m.guest.0 + off;
            let frame = match m.source {
                Source::AnyRam { .. } => self.objs.alloc_blueprint(frame_bp)?,
                Source::Physical(p) => self.objs.alloc_at((p.0 + off) as usize, frame_bp)?,
            };
            map_frame(
                &mut self.objs,
                self.guest_vspace,
                frame,
                gpa as usize,
                guest_rights.clone(),
                guest_attrs,
            )?;
            if is_ram {
                // The VMM's own view of guest RAM, for loading images and for DMA emulation.
                let copy = self.objs.copy(frame)?;
                let vaddr = RAM_WINDOW + (gpa - self.ram.base.0) as usize;
                map_frame(
                    &mut self.objs,
                    sel4::init_thread::slot::VSPACE.cap(),
                    copy,
                    vaddr,
                    CapRights::read_write(),
                    VmAttributes::DEFAULT | VmAttributes::EXECUTE_NEVER,
                )?;
            }
            off += frame_size;
        }
        Ok(())
    }

    /// The root task's pointer to guest RAM (valid once every RAM run is mapped).
    pub fn ram_ptr(&self) -> NonNull<u8> {
        NonNull::new(RAM_WINDOW as *mut u8).unwrap_or(NonNull::dangling())
    }
}

impl Hypervisor for Sel4Hyp {
    fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    fn gpr(&mut self, vcpu: VcpuId, reg: GpReg) -> u64 {
        let Some(i) = reg.index() else { return 0 };
        self.regs(vcpu).map_or(0, |r| *r.gpr(usize::from(i)))
    }

    fn set_gpr(&mut self, vcpu: VcpuId, reg: GpReg, value: u64) {
        let Some(i) = reg.index() else { return };
        if let Some(r) = self.regs(vcpu) {
            *r.gpr_mut(usize::from(i)) = value;
            if let Some(v) = self.vcpus.get_mut(vcpu.index()) {
                v.dirty = true;
            }
        }
    }

    fn commit(&mut self, vcpu: VcpuId) {
        self.flush(vcpu);
    }

    fn advance_pc(&mut self, vcpu: VcpuId, bytes: u64) {
        if let Some(r) = self.regs(vcpu) {
            *r.pc_mut() += bytes;
            if let Some(v) = self.vcpus.get_mut(vcpu.index()) {
                v.dirty = true;
            }
        }
    }

    fn start_vcpu(
        &mut self,
        vcpu: VcpuId,
        entry: GuestPhysAddr,
        context: u64,
    ) -> Result<(), HypError> {
        let v = self
            .vcpus
            .get_mut(vcpu.index())
            .ok_or(HypError::NoSuchVcpu(vcpu))?;
        let mut regs = sel4::UserContext::default();
        *regs.pc_mut() = entry.0;
        *regs.gpr_mut(0) = context;
        *regs.spsr_mut() = SPSR_EL1H_DAIF;
        v.regs = None;
        v.dirty = false;
        v.tcb
            .tcb_write_all_registers(true, &mut regs)
            .map_err(|e| kernel("TCB_WriteRegisters", e))
    }

    fn stop_vcpu(&mut self, vcpu: VcpuId) {
        if let Some(v) = self.vcpus.get_mut(vcpu.index()) {
            v.regs = None;
            v.dirty = false;
            if let Err(e) = v.tcb.tcb_suspend() {
                log::error!("[{vcpu}] suspend: {e:?}");
            }
        }
    }

    fn list_registers(&self, _vcpu: VcpuId) -> usize {
        self.lrs
    }

    fn inject_irq(&mut self, vcpu: VcpuId, lr: usize, irq: VirtualIrq) -> Result<(), HypError> {
        if lr >= self.lrs {
            return Err(HypError::NoSuchListRegister { vcpu, lr });
        }
        let v = self
            .vcpus
            .get(vcpu.index())
            .ok_or(HypError::NoSuchVcpu(vcpu))?;
        // seL4 takes the 5-bit priority a list register holds.
        v.vcpu
            .vcpu_inject_irq(irq.intid as u16, irq.priority >> 3, irq.group, lr as u8)
            .map_err(|e| kernel("VCPU_InjectIRQ", e))
    }

    fn ack_vppi(&mut self, vcpu: VcpuId, intid: u32) {
        if let Some(v) = self.vcpus.get(vcpu.index())
            && let Err(e) = v.vcpu.vcpu_ack_vppi(intid as sel4::Word)
        {
            log::error!("[{vcpu}] VCPU_AckVPPI({intid}): {e:?}");
        }
    }

    fn ack_irq(&mut self, intid: u32) {
        if let Some((_, h)) = self.irqs.iter().find(|(i, _)| *i == intid)
            && let Err(e) = h.irq_handler_ack()
        {
            log::error!("IRQHandler_Ack({intid}): {e:?}");
        }
    }
}

impl stage2::MapStage2 for Sel4Hyp {
    type Error = AllocError;

    fn map(&mut self, mapping: &Mapping) -> Result<(), AllocError> {
        self.map_run(mapping)
    }
}

/// Counts the GIC's list registers without touching a running vCPU: seL4 refuses an
/// injection at an index past the hardware's count (read from ICH_VTR_EL2 at boot) with a
/// range error before it changes anything, so a spare VCPU object that never runs is probed.
pub fn count_list_registers(probe: cap::VCpu) -> usize {
    (0..64u8)
        .take_while(|&i| probe.vcpu_inject_irq(1023, 0, 1, i).is_ok())
        .count()
}
