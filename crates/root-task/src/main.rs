//! The VMM as the seL4 root task.
//!
//! From bootinfo it builds the guest described by the platform table this build is for:
//! kernel objects from the untypeds, the guest's stage-2 VSpace per `stage2::Plan` (RAM in
//! 2 MiB blocks, pass-through regions with their attributes), guest RAM mapped a second time
//! into the root task, the boot images loaded, one TCB + VCPU per guest vCPU with a fault
//! endpoint badged with the vCPU index, IRQ handlers for pass-through interrupts. Then it runs
//! the core's event loop (`vmm::Vm`), translating seL4 faults into `vmm::Event`s and the
//! core's `Reply` into replies.

#![no_std]
#![no_main]

extern crate alloc;

mod backend;
mod clock;
mod devices;
mod images;
mod logger;
mod objects;
mod space;
mod uart;

use alloc::vec::Vec;

use arm_fault::Esr;
use guest_mem::{GuestMemory, GuestPhysAddr};
use hypervisor::{SystemEvent, VcpuId};
use sel4::{CNodeCapData, cap_type, init_thread};
use sel4_root_task::{Never, root_task};
use stage2::Plan;
use vmm::{Event, Reply, loader};
use vmm_platform::Platform;

use backend::{Sel4Hyp, Vcpu};
use objects::{AllocError, Objects, Slot};

#[cfg(feature = "orin-agx")]
static PLATFORM: &Platform = &vmm_platform::ORIN_AGX;
#[cfg(all(feature = "qemu-virt-pt", not(feature = "orin-agx")))]
static PLATFORM: &Platform = &vmm_platform::QEMU_VIRT_PT;
#[cfg(not(any(feature = "orin-agx", feature = "qemu-virt-pt")))]
static PLATFORM: &Platform = &vmm_platform::QEMU_VIRT;

/// Notification badges carry this bit; vCPU fault badges are the vCPU index.
const IRQ_BADGE: sel4::Word = 1 << 63;
/// Print exit statistics every this many events (0: never), set at build time with
/// `VMM_PROGRESS=N`.
const PROGRESS_EVERY: u64 = match option_env!("VMM_PROGRESS") {
    Some(s) => parse_u64(s),
    None => 0,
};

// Evaluated at compile time only: an index out of range there is a build error.
#[allow(clippy::indexing_slicing)]
const fn parse_u64(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u64;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v
}

/// How many cores the VMM spreads vCPUs over, set at build time with `VMM_CORES=N` (default
/// and upper bound: the kernel's `MAX_NUM_NODES`). An emulator with fewer host CPUs than
/// guest vCPUs (QEMU TCG on a 2-core CI machine) runs faster with vCPUs folded onto fewer
/// cores: an seL4 core with nothing to run sleeps in WFI, while one whose vCPU spins on a lock
/// or on the kernel lock keeps a host CPU busy.
const CORES_WANTED: u64 = match option_env!("VMM_CORES") {
    Some(s) => parse_u64(s),
    None => 0,
};

/// vCPU threads' priority; the VMM (root task) keeps the maximum.
const VCPU_PRIORITY: sel4::Word = 100;

#[root_task(heap_size = 16 * 1024 * 1024)]
fn main(bootinfo: &sel4::BootInfoPtr) -> sel4::Result<Never> {
    logger::init();
    let p = PLATFORM;
    match run(bootinfo, p) {
        Ok(event) => log::info!("vmm: guest ended ({event:?})"),
        Err(e) => log::error!("vmm: {e}"),
    }
    out!("vmm: halted");
    init_thread::suspend_self()
}

/// Why the VM could not be set up: the step, and the cause as the kernel or the core gave it
/// (kept as a value; the VMM's log prints both).
struct SetupError {
    step: &'static str,
    cause: Cause,
}

/// The cause of a [`SetupError`].
enum Cause {
    /// A kernel invocation failed.
    Kernel(sel4::Error),
    /// No slot, no untyped, or a retype refused.
    Alloc(AllocError),
    /// The platform table is invalid.
    Platform(vmm_platform::PlatformError),
    /// The back-end refused a set-up request (a stage-2 mapping, starting vCPU 0).
    Hyp(hypervisor::HypError),
    /// A guest image does not fit its load region, or is not what it should be.
    Load(loader::LoadError),
    /// The machine could not be built.
    Build(vm_builder::BuildError),
}

macro_rules! cause_from {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for Cause {
            fn from(e: $t) -> Self {
                Cause::$v(e)
            }
        })*
    };
}
cause_from!(
    sel4::Error => Kernel,
    AllocError => Alloc,
    vmm_platform::PlatformError => Platform,
    hypervisor::HypError => Hyp,
    loader::LoadError => Load,
    vm_builder::BuildError => Build,
);

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: ", self.step)?;
        match &self.cause {
            Cause::Kernel(e) => write!(f, "seL4 error {e:?}"),
            Cause::Alloc(e) => write!(f, "{e}"),
            Cause::Platform(e) => write!(f, "invalid platform table: {e}"),
            Cause::Hyp(e) => write!(f, "{e}"),
            Cause::Load(e) => write!(f, "{e}"),
            Cause::Build(e) => write!(f, "{e}"),
        }
    }
}

/// Names the set-up step a result belongs to.
trait Step<T> {
    fn at(self, step: &'static str) -> Result<T, SetupError>;
}

impl<T, E: Into<Cause>> Step<T> for Result<T, E> {
    fn at(self, step: &'static str) -> Result<T, SetupError> {
        self.map_err(|e| SetupError {
            step,
            cause: e.into(),
        })
    }
}

fn run(bootinfo: &sel4::BootInfo, p: &'static Platform) -> Result<SystemEvent, SetupError> {
    p.validate().at("platform table")?;
    let mut objs = Objects::new(bootinfo);
    // The VMM's own output first: the kernel has no debug console to lend it.
    let uart = uart::init(&mut objs, p.host.uart);
    log::info!(
        "vmm: platform {} with {} vCPUs, {} MiB RAM at {}",
        p.name,
        p.vcpus,
        p.ram.range.size >> 20,
        p.ram.range.base
    );
    if let Err(e) = uart {
        log::warn!(
            "vmm: {:?} not mapped ({e:?}): output through the kernel's console",
            p.host.uart
        );
    }
    // The frames at fixed physical addresses are kept for the stage-2 mapping below.
    let fixed = |r: vmm_platform::GuestRange| r.base.0 as usize..(r.base.0 + r.size) as usize;
    if p.ram.identity {
        objs.reserve(fixed(p.ram.range));
    }
    for pt in p.passthrough {
        objs.reserve(fixed(pt.range));
    }
    log::info!("vmm: {} MiB of untyped RAM", objs.free_ram() >> 20);

    let fault_ep = objs.alloc::<cap_type::Endpoint>().at("fault endpoint")?;
    let fault_ep_slot = Slot::of(fault_ep);
    let irq_ntfn = objs
        .alloc::<cap_type::Notification>()
        .at("irq notification")?;
    init_thread::slot::TCB
        .cap()
        .tcb_bind_notification(irq_ntfn)
        .at("bind notification")?;

    // The guest's address space.
    let vspace = objs.alloc::<cap_type::VSpace>().at("guest vspace")?;
    init_thread::slot::ASID_POOL
        .cap()
        .asid_pool_assign(vspace)
        .at("asid")?;

    // List registers: counted on a VCPU object that never runs.
    let probe = objs.alloc::<cap_type::VCpu>().at("probe vcpu")?;
    let lrs = backend::count_list_registers(probe);
    log::info!("vmm: GIC has {lrs} list registers");

    // vCPUs: a TCB and a VCPU each; each thread's CSpace holds only its badged fault endpoint
    // (send and grant-reply only): a guest HVC taken as a system call reaches nothing else,
    // and what it sends there is checked like any fault message (event_loop).
    // With a core to spare, the VMM takes the last one for itself: a vCPU that shares its core
    // with the VMM is descheduled at every other vCPU's exit.
    let own_core = dedicate_last_core(p.vcpus).at("VMM affinity")?;
    let mut vcpus = Vec::new();
    for i in 0..p.vcpus {
        vcpus.push(make_vcpu(&mut objs, i, fault_ep_slot, vspace).at("vcpu")?);
    }
    let clock = clock::Clock::new(own_core, &mut objs, p);
    let ram = p.ram.range;
    let mut hyp = Sel4Hyp::new(objs, vcpus, vspace, ram, lrs);

    // Stage 2, per the plan.
    let plan = Plan::new(p);
    for m in &plan.mappings {
        stage2::MapStage2::map(&mut hyp, m).at("stage-2 mapping")?;
    }
    let (small, large) = plan.bytes_by_page_size();
    log::info!(
        "vmm: stage 2 mapped: {} MiB in 2 MiB blocks, {} KiB in 4 KiB pages",
        large >> 20,
        small >> 10
    );

    // Pass-through interrupts.
    for (n, irq) in p.passthrough_irqs.iter().enumerate() {
        let slot = hyp.objs.slot().at("irq slot")?;
        init_thread::slot::IRQ_CONTROL
            .cap()
            .irq_control_get_trigger(
                irq.spi.intid() as sel4::Word,
                irq.trigger == vmm_platform::Trigger::Edge,
                &slot.path(),
            )
            .at("IRQControl_GetTrigger")?;
        let badged = hyp
            .objs
            .mint(Slot::of(irq_ntfn), IRQ_BADGE | (1 << n))
            .at("irq badge")?;
        let handler = slot.cap::<cap_type::IrqHandler>();
        handler
            .irq_handler_set_notification(badged.cap())
            .at("IRQHandler_SetNotification")?;
        hyp.irqs.push((irq.spi.intid(), handler));
    }

    // SAFETY: every RAM run of the plan is mapped at RAM_WINDOW in our VSpace, read-write,
    // and nothing else in the root task uses that window.
    let mem = unsafe { GuestMemory::from_raw(ram.base, hyp.ram_ptr(), ram.size) };
    let entry = loader::load_kernel(&mem, p.kernel, images::KERNEL).at("kernel")?;
    let initrd = loader::load_blob(&mem, p.initrd, "initrd", images::INITRD).at("initrd")?;
    let dtb = loader::load_blob(&mem, p.dtb, "dtb", images::DTB).at("dtb")?;
    log::info!(
        "vmm: kernel at {entry}, initrd {}+{:#x}, dtb {}+{:#x}",
        initrd.base,
        initrd.size,
        dtb.base,
        dtb.size
    );

    let mut machine = devices::build(p, hyp, mem, images::DISK).at("devices")?;
    machine
        .vm
        .boot(entry, GuestPhysAddr(dtb.base.0))
        .at("boot vcpu0")?;
    log::info!("vmm: vcpu0 started");
    let started = clock.now();

    let event = event_loop(&mut machine, fault_ep, p);
    match clock.since(started) {
        Some((s, ms, source)) => {
            log::info!("vmm: guest run time {s}.{ms:03} s (vcpu0 start to {event:?}; {source})")
        }
        None => log::info!(
            "vmm: guest run time not measured: {}",
            clock::Clock::WHY_NOT
        ),
    }
    Ok(event)
}

fn make_vcpu(
    objs: &mut Objects,
    i: u8,
    fault_ep_slot: Slot,
    vspace: sel4::cap::VSpace,
) -> Result<Vcpu, AllocError> {
    let tcb = objs.alloc::<cap_type::Tcb>()?;
    let vcpu = objs.alloc::<cap_type::VCpu>()?;
    vcpu.vcpu_set_tcb(tcb)?;
    // MPIDR Aff0 = vCPU index (bit 31 is RES1), as the guest DTB and PSCI say.
    vcpu.vcpu_write_regs(sel4::VCpuReg::VMPIDR_EL2, 0x8000_0000 | sel4::Word::from(i))?;
    // A two-slot CNode: slot 1 is the fault endpoint badged with the vCPU index.
    let cnode_slot = objs.alloc_blueprint(sel4::ObjectBlueprint::CNode { size_bits: 1 })?;
    let cnode = cnode_slot.cap::<cap_type::CNode>();
    // The least the kernel accepts for a fault endpoint (send, and grant-reply for the reply
    // cap): a guest HVC taken as a system call on this cap can neither receive (other vCPUs'
    // faults) nor grant.
    cnode.absolute_cptr_from_bits_with_depth(1, 1).mint(
        &fault_ep_slot.path(),
        sel4::CapRights::new(true, false, false, true),
        sel4::Word::from(i),
    )?;
    tcb.tcb_configure(
        sel4::CPtr::from_bits(1),
        cnode,
        CNodeCapData::new(0, sel4::WORD_SIZE - 1),
        vspace,
        0,
        init_thread::slot::NULL.cap().cast(),
    )?;
    tcb.tcb_set_sched_params(init_thread::slot::TCB.cap(), VCPU_PRIORITY, VCPU_PRIORITY)?;
    set_affinity(tcb, i)?;
    Ok(Vcpu::new(tcb, vcpu))
}

/// The cores vCPUs run on: `VMM_CORES` if set (at least 1), at most the kernel's nodes.
#[sel4::sel4_cfg(not(MAX_NUM_NODES = "1"))]
fn cores() -> sel4::Word {
    let nodes = sel4::sel4_cfg_usize!(MAX_NUM_NODES) as sel4::Word;
    match CORES_WANTED {
        0 => nodes,
        n => n.min(nodes),
    }
}

/// vCPU `i` runs on core `i` (modulo the core count).
#[sel4::sel4_cfg(not(MAX_NUM_NODES = "1"))]
fn set_affinity(tcb: sel4::cap::Tcb, i: u8) -> sel4::Result<()> {
    tcb.tcb_set_affinity(sel4::Word::from(i) % cores())
}

/// Moves the root task to the last core when no vCPU runs there and the vCPUs are not folded
/// onto fewer cores (folding means the host is short of CPUs: on QEMU with 2 host CPUs, a VMM
/// core of its own was measured slower than sharing core 0); says whether it did.
#[sel4::sel4_cfg(not(MAX_NUM_NODES = "1"))]
fn dedicate_last_core(vcpus: u8) -> sel4::Result<bool> {
    let nodes = sel4::sel4_cfg_usize!(MAX_NUM_NODES) as sel4::Word;
    let used = cores().min(sel4::Word::from(vcpus));
    if cores() < nodes {
        log::info!("vmm: vCPUs on {used} cores (VMM_CORES); the VMM shares core 0");
        return Ok(false);
    }
    if nodes > used {
        init_thread::slot::TCB.cap().tcb_set_affinity(nodes - 1)?;
        log::info!("vmm: running on core {} of its own", nodes - 1);
        return Ok(true);
    }
    Ok(false)
}

#[sel4::sel4_cfg(MAX_NUM_NODES = "1")]
fn dedicate_last_core(_vcpus: u8) -> sel4::Result<bool> {
    Ok(false)
}

#[sel4::sel4_cfg(MAX_NUM_NODES = "1")]
fn set_affinity(_tcb: sel4::cap::Tcb, _i: u8) -> sel4::Result<()> {
    Ok(())
}

/// The labels of the faults a vCPU thread raises (seL4 16, AArch64, hypervisor mode):
/// CapFault (a refused system call), UnknownSyscall (an HVC seL4 does not know: SMCCC),
/// VMFault, VGICMaintenance, VCPUFault, VPPIEvent.
const FAULT_LABELS: [sel4::Word; 6] = [1, 2, 5, 6, 7, 8];

/// True the first time it is asked for `vcpu` (per `seen` table): warnings a guest can
/// repeat at will are logged once per vCPU.
fn first_for(seen: &core::sync::atomic::AtomicU32, vcpu: VcpuId) -> bool {
    let bit = 1u32 << (vcpu.0 & 31);
    seen.fetch_or(bit, core::sync::atomic::Ordering::Relaxed) & bit == 0
}

/// Logs, the first time per vCPU, a message the guest sent through its fault endpoint.
fn warn_forged(vcpu: VcpuId, label: sel4::Word) {
    static SEEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    if first_for(&SEEN, vcpu) {
        log::warn!(
            "[{vcpu}] a message with label {label} through its fault endpoint (an HVC taken as \
             an seL4 Send/Call by the guest): not a fault, ignored (later ones not logged)"
        );
    }
}

/// Answers the message just received with an empty one: a fault or a Call resumes its
/// vCPU; after a Send there is no reply capability (seL4's Recv cleared the last one), so
/// nothing happens. No register of the vCPU is touched here: after a Send it is running.
fn reply_empty() {
    sel4::with_ipc_buffer_mut(|ib| sel4::reply(ib, sel4::MessageInfo::new(0, 0, 0, 0)));
}

/// Logs, the first time per vCPU, a system call of the guest the kernel refused.
fn warn_refused(vcpu: VcpuId) {
    static SEEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    if first_for(&SEEN, vcpu) {
        log::warn!(
            "[{vcpu}] an HVC taken as an seL4 system call on a capability the vCPU may not \
             use: refused by the kernel, x0 = -1 (later ones not logged)"
        );
    }
}

fn event_loop(
    machine: &mut devices::Machine<'_>,
    fault_ep: sel4::cap::Endpoint,
    p: &Platform,
) -> SystemEvent {
    let vm = &mut machine.vm;
    let mut events: u64 = 0;
    loop {
        let (info, badge) = fault_ep.recv(());
        events += 1;
        if PROGRESS_EVERY != 0 && events.is_multiple_of(PROGRESS_EVERY) {
            out!("vmm: {events} events\n{}", vm.stats());
        }
        if badge & IRQ_BADGE != 0 {
            for n in 0..p.passthrough_irqs.len() {
                if badge & (1 << n) != 0
                    && let Some(irq) = p.passthrough_irqs.get(n)
                {
                    vm.handle(Event::Irq {
                        intid: irq.spi.intid(),
                    });
                }
            }
            continue;
        }
        let vcpu = VcpuId(badge as u8);
        // A vCPU's HVC is an seL4 system call: through its fault endpoint (send rights only)
        // the guest can send any message. Labels no fault has are the guest's own error (and
        // rust-sel4's parser would panic on them): logged, not answered.
        if !FAULT_LABELS.contains(&info.label()) {
            warn_forged(vcpu, info.label());
            reply_empty();
            continue;
        }
        let fault = sel4::with_ipc_buffer(|ib| sel4::Fault::new(ib, &info));
        let event = match fault {
            sel4::Fault::VmFault(f) => Event::Exit {
                vcpu,
                esr: Esr(f.fsr()),
                ipa: GuestPhysAddr(f.addr()),
            },
            sel4::Fault::VCpuFault(f) => Event::Exit {
                vcpu,
                esr: Esr(f.hsr()),
                ipa: GuestPhysAddr(0),
            },
            sel4::Fault::VGicMaintenance(f) => Event::Maintenance {
                vcpu,
                lr: f.idx().map(|i| i as usize),
            },
            sel4::Fault::VPpiEvent(f) => Event::Vppi {
                vcpu,
                intid: f.irq() as u32,
            },
            sel4::Fault::UnknownSyscall(_) => {
                // A guest HVC: seL4 restarts at the HVC itself, so step over it first.
                hypervisor::Hypervisor::advance_pc(vm.hyp_mut(), vcpu, 4);
                Event::Hvc { vcpu }
            }
            sel4::Fault::CapFault(_) => {
                // A system call the guest's HVC made on a capability it may not use (receiving
                // on its fault endpoint): refused; the vCPU goes on after the HVC with x0 = -1
                // (SMCCC NOT_SUPPORTED).
                warn_refused(vcpu);
                hypervisor::Hypervisor::advance_pc(vm.hyp_mut(), vcpu, 4);
                hypervisor::Hypervisor::set_gpr(
                    vm.hyp_mut(),
                    vcpu,
                    hypervisor::GpReg::new(0),
                    u64::MAX,
                );
                hypervisor::Hypervisor::commit(vm.hyp_mut(), vcpu);
                reply_empty();
                continue;
            }
            _ => {
                // NullFault or UserException: a message the guest sent itself (seL4_Send or
                // seL4_Call from an HVC); no fault of a vCPU looks like it.
                warn_forged(vcpu, info.label());
                reply_empty();
                continue;
            }
        };
        // `handle` commits the vCPU's registers (Sel4Hyp::commit) before the reply below.
        let reply = vm.handle(event);
        match reply {
            // An idle vCPU (trapped WFI, CPU_SUSPEND) is resumed at once: the reply puts it
            // behind the other threads of its core, so a trapped WFI is a yield. Parking it
            // would need a wake-up at its virtual timer's deadline, and the root task has no
            // timer. Where WFI does not trap (KernelArmDisableWFIWFETraps, Orin) it waits in
            // hardware.
            Reply::Resume | Reply::Idle => reply_empty(),
            Reply::Stopped | Reply::Nothing => {}
            Reply::Shutdown(event) => {
                if let Some(u) = &machine.uart {
                    u.flush();
                }
                out!("vmm: exit statistics\n{}", vm.stats());
                return event;
            }
        }
        // After the reply, so the vCPU runs meanwhile: the devices' left-over work, if an
        // access reached one (the VM keeps track; otherwise this is a flag test).
        vm.poll_devices();
    }
}
