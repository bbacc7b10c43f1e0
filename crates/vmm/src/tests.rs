//! The event loop against a recording back-end (`hypervisor::testing::TestHyp`) and a
//! recording interrupt controller.

use super::*;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use arm_fault::AccessSize;
use core::cell::RefCell;
use guest_mem::GuestRange;
use hypervisor::testing::TestHyp;
use mmio_bus::{MmioDevice, MmioError};

/// Records what the loop asks of the interrupt controller; one register at GICD+0 is
/// read/write, an INTID pending flag per vCPU answers `has_pending`.
#[derive(Default)]
struct FakeGic {
    reg: u32,
    calls: Vec<&'static str>,
    pending: [bool; 4],
    online: [bool; 4],
    sgis: Vec<(VcpuId, u64)>,
    levels: Vec<(u32, bool)>,
}

const GICD: u64 = 0x0800_0000;

impl InterruptController for FakeGic {
    fn handles(&self, addr: GuestPhysAddr) -> bool {
        (GICD..GICD + 0x1_0000).contains(&addr.0)
    }
    fn mmio_read(
        &mut self,
        _: &mut dyn Hypervisor,
        _: VcpuId,
        addr: GuestPhysAddr,
        _: AccessSize,
    ) -> Option<Result<u64, MmioError>> {
        if !self.handles(addr) {
            return None;
        }
        Some(if addr.0 == GICD {
            Ok(u64::from(self.reg))
        } else {
            Err(MmioError::NoRegister)
        })
    }
    fn mmio_write(
        &mut self,
        _: &mut dyn Hypervisor,
        _: VcpuId,
        addr: GuestPhysAddr,
        _: AccessSize,
        v: u64,
    ) -> Option<Result<(), MmioError>> {
        if !self.handles(addr) {
            return None;
        }
        if addr.0 != GICD {
            return Some(Err(MmioError::NoRegister));
        }
        self.reg = v as u32;
        Some(Ok(()))
    }
    fn set_level(&mut self, _: &mut dyn Hypervisor, intid: u32, level: bool) {
        self.levels.push((intid, level));
    }
    fn physical_irq(&mut self, _: &mut dyn Hypervisor, intid: u32) {
        self.calls.push("physical_irq");
        if intid == 200 {
            self.pending[1] = true;
        }
    }
    fn maintenance(&mut self, _: &mut dyn Hypervisor, _: VcpuId, _: Option<usize>) {
        self.calls.push("maintenance");
    }
    fn vppi(&mut self, _: &mut dyn Hypervisor, _: VcpuId, _: u32) {
        self.calls.push("vppi");
    }
    fn sysreg_write(
        &mut self,
        _: &mut dyn Hypervisor,
        vcpu: VcpuId,
        reg: SysReg,
        value: u64,
    ) -> bool {
        if reg == SysReg::ICC_SGI1R_EL1 {
            self.sgis.push((vcpu, value));
            true
        } else {
            false
        }
    }
    fn vcpu_power(&mut self, _: &mut dyn Hypervisor, vcpu: VcpuId, online: bool) {
        self.online[vcpu.index()] = online;
    }
    fn has_pending(&self, vcpu: VcpuId) -> bool {
        self.pending[vcpu.index()]
    }
}

/// A device with one 64-bit register at offset 8 that reads back 0x80 in its low byte after
/// reset, and raises SPI 40 when written.
struct Reg(alloc::rc::Rc<RefCell<u64>>);
impl MmioDevice for Reg {
    fn read(&mut self, _: &mut DeviceCtx<'_>, off: u64, _: AccessSize) -> Result<u64, MmioError> {
        if off == 8 {
            Ok(*self.0.borrow())
        } else {
            Err(MmioError::NoRegister)
        }
    }
    fn write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        off: u64,
        _: AccessSize,
        v: u64,
    ) -> Result<(), MmioError> {
        if off != 8 {
            return Err(MmioError::NoRegister);
        }
        *self.0.borrow_mut() = v;
        ctx.irq.set_level(40, true);
        Ok(())
    }
}

const RAM: u64 = 0x4000_0000;
const DEV: u64 = 0x0900_0000;
const IL: u64 = 1 << 25;

fn esr_dabt(sas: u64, sse: bool, srt: u64, sf: bool, write: bool) -> Esr {
    arm_fault::syndrome::data_abort_iss(sas, sse, srt, sf, write)
}

fn esr_hvc() -> Esr {
    arm_fault::syndrome::hvc()
}

fn esr_smc() -> Esr {
    arm_fault::syndrome::smc()
}

fn with_vm(f: impl FnOnce(&mut Vm<'_, TestHyp, FakeGic>, &alloc::rc::Rc<RefCell<u64>>)) {
    let mut ram = vec![0u8; 0x1_0000];
    let mem = GuestMemory::new(GuestPhysAddr(RAM), &mut ram);
    let reg = alloc::rc::Rc::new(RefCell::new(0x80));
    let mut bus = MmioBus::new();
    bus.add(
        "reg",
        GuestRange::new(DEV, 0x1000),
        Box::new(Reg(reg.clone())),
    )
    .unwrap();
    let hyp = TestHyp::new(4).ram(GuestRange::new(RAM, 0x1_0000));
    let mut vm = Vm::new(hyp, FakeGic::default(), bus, Vec::new(), mem, 4);
    vm.boot(GuestPhysAddr(RAM), GuestPhysAddr(RAM + 0x8000))
        .unwrap();
    f(&mut vm, &reg);
}

fn exit(vm: &mut Vm<'_, TestHyp, FakeGic>, vcpu: u8, esr: Esr, ipa: u64) -> Reply {
    vm.handle(Event::Exit {
        vcpu: VcpuId(vcpu),
        esr,
        ipa: GuestPhysAddr(ipa),
    })
}

#[test]
fn boot_starts_vcpu0_with_the_dtb_in_x0() {
    with_vm(|vm, _| {
        assert_eq!(
            vm.hyp.started,
            [(VcpuId(0), GuestPhysAddr(RAM), RAM + 0x8000)]
        );
        assert!(vm.gic.online[0]);
        assert_eq!(vm.psci.state(VcpuId(0)), psci::PowerState::On);
    });
}

#[test]
fn mmio_load_completes_the_register_and_steps_over() {
    with_vm(|vm, _| {
        // ldrsb x5, [..]: byte, sign-extended to 64 bits.
        assert_eq!(
            exit(vm, 0, esr_dabt(0, true, 5, true, false), DEV + 8),
            Reply::Resume
        );
        assert_eq!(vm.hyp.regs[0][5], 0xffff_ffff_ffff_ff80);
        assert_eq!(vm.hyp.pc[0], 4);
        // ldrsb w6: to 32 bits, upper half clear.
        exit(vm, 0, esr_dabt(0, true, 6, false, false), DEV + 8);
        assert_eq!(vm.hyp.regs[0][6], 0xffff_ff80);
    });
}

#[test]
fn mmio_store_takes_the_width_of_the_access_and_raises_lines() {
    with_vm(|vm, reg| {
        vm.hyp.regs[2][7] = 0x1122_3344_5566_7788;
        // strh w7
        exit(vm, 2, esr_dabt(1, false, 7, false, true), DEV + 8);
        assert_eq!(*reg.borrow(), 0x7788);
        assert_eq!(vm.gic.levels, [(40, true)]);
        // str xzr
        exit(vm, 2, esr_dabt(3, false, 31, true, true), DEV + 8);
        assert_eq!(*reg.borrow(), 0);
        assert_eq!(vm.stats.get(VcpuId(2), ExitClass::Mmio), 2);
        assert_eq!(vm.stats.device(0), 2);
    });
}

#[test]
fn gic_window_goes_to_the_interrupt_controller() {
    with_vm(|vm, _| {
        vm.hyp.regs[1][0] = 0x37;
        exit(vm, 1, esr_dabt(2, false, 0, false, true), GICD);
        assert_eq!(vm.gic.reg, 0x37);
        exit(vm, 1, esr_dabt(2, false, 3, false, false), GICD);
        assert_eq!(vm.hyp.regs[1][3], 0x37);
        // A GIC register the controller does not have: RAZ.
        vm.hyp.regs[1][4] = 99;
        exit(vm, 1, esr_dabt(2, false, 4, false, false), GICD + 0x40);
        assert_eq!(vm.hyp.regs[1][4], 0);
        assert_eq!(vm.stats.get(VcpuId(1), ExitClass::Gic), 3);
    });
}

#[test]
fn unhandled_mmio_reads_zero_and_writes_nothing() {
    with_vm(|vm, reg| {
        vm.hyp.regs[0][1] = 5;
        exit(vm, 0, esr_dabt(3, false, 1, true, false), 0x0a00_0000);
        assert_eq!(vm.hyp.regs[0][1], 0);
        exit(vm, 0, esr_dabt(3, false, 1, true, true), DEV + 0x10);
        assert_eq!(*reg.borrow(), 0x80);
        assert_eq!(vm.hyp.pc[0], 8, "both stepped over");
        assert_eq!(vm.stats.get(VcpuId(0), ExitClass::Unhandled), 1);
    });
}

/// A store to a read-only pass-through page (Orin's APB MISC: `Access::ReadOnly`, mapped
/// without write rights) is a stage-2 *permission* fault, DFSC 0x0f, not a translation fault:
/// no device claims the address, so it is ignored like any unemulated store and stepped over.
#[test]
fn a_store_to_a_read_only_page_is_ignored_and_stepped_over() {
    with_vm(|vm, reg| {
        const PERMISSION_FAULT_L3: u64 = 0x0f;
        let esr = Esr((esr_dabt(2, false, 1, false, true).0 & !0x3f) | PERMISSION_FAULT_L3);
        vm.hyp.regs[0][1] = 0xdead;
        assert_eq!(exit(vm, 0, esr, 0x0010_0004), Reply::Resume);
        assert_eq!(vm.hyp.pc[0], 4);
        assert_eq!(vm.hyp.regs[0][1], 0xdead, "a store changes no register");
        assert_eq!(*reg.borrow(), 0x80, "no device saw it");
        assert_eq!(vm.stats.get(VcpuId(0), ExitClass::Unhandled), 1);
    });
}

#[test]
fn psci_cpu_on_over_hvc_and_smc() {
    with_vm(|vm, _| {
        vm.hyp.regs[0][..4].copy_from_slice(&[u64::from(psci::fid::CPU_ON_64), 1, RAM + 0x100, 42]);
        assert_eq!(exit(vm, 0, esr_hvc(), 0), Reply::Resume);
        assert_eq!(vm.hyp.regs[0][0], 0);
        assert_eq!(vm.hyp.pc[0], 0, "HVC returns past itself already");
        assert_eq!(
            vm.hyp.started[1],
            (VcpuId(1), GuestPhysAddr(RAM + 0x100), 42)
        );
        assert!(vm.gic.online[1]);
        vm.hyp.regs[0][..4].copy_from_slice(&[u64::from(psci::fid::CPU_ON_64), 2, RAM + 0x100, 0]);
        exit(vm, 0, esr_smc(), 0);
        assert_eq!(vm.hyp.pc[0], 4, "a trapped SMC is stepped over");
        assert_eq!(vm.hyp.regs[0][0], 0);
        // Already on.
        vm.hyp.regs[0][..4].copy_from_slice(&[u64::from(psci::fid::CPU_ON_64), 2, RAM + 0x100, 0]);
        exit(vm, 0, esr_hvc(), 0);
        assert_eq!(vm.hyp.regs[0][0] as i64, psci::ret::ALREADY_ON);
        assert_eq!(vm.stats.get(VcpuId(0), ExitClass::Psci), 3);
    });
}

#[test]
fn psci_cpu_on_failure_is_reported_and_undone() {
    with_vm(|vm, _| {
        vm.hyp.fail_start = true;
        vm.hyp.regs[0][..4].copy_from_slice(&[u64::from(psci::fid::CPU_ON_64), 3, RAM, 0]);
        exit(vm, 0, esr_hvc(), 0);
        assert_eq!(vm.hyp.regs[0][0] as i64, psci::ret::INTERNAL_FAILURE);
        assert_eq!(vm.psci.state(VcpuId(3)), psci::PowerState::Off);
        assert!(!vm.gic.online[3]);
    });
}

#[test]
fn cpu_off_stops_and_system_off_ends() {
    with_vm(|vm, _| {
        vm.hyp.regs[0][..4].copy_from_slice(&[u64::from(psci::fid::CPU_ON_64), 1, RAM, 0]);
        exit(vm, 0, esr_hvc(), 0);
        vm.hyp.regs[1][0] = u64::from(psci::fid::CPU_OFF);
        assert_eq!(vm.handle(Event::Hvc { vcpu: VcpuId(1) }), Reply::Stopped);
        assert_eq!(vm.hyp.stopped, [VcpuId(1)]);
        assert!(!vm.gic.online[1]);
        vm.hyp.regs[0][0] = u64::from(psci::fid::SYSTEM_OFF);
        assert_eq!(
            exit(vm, 0, esr_hvc(), 0),
            Reply::Shutdown(SystemEvent::PowerOff)
        );
        vm.hyp.regs[0][0] = u64::from(psci::fid::SYSTEM_RESET);
        assert_eq!(
            exit(vm, 0, esr_hvc(), 0),
            Reply::Shutdown(SystemEvent::Reset)
        );
        // Not an SMCCC immediate.
        vm.hyp.regs[0][0] = u64::from(psci::fid::PSCI_VERSION);
        exit(vm, 0, Esr((0x16 << 26) | IL | 7), 0);
        assert_eq!(vm.hyp.regs[0][0] as i64, psci::ret::NOT_SUPPORTED);
    });
}

#[test]
fn cpu_off_of_the_last_vcpu_ends_the_vm() {
    with_vm(|vm, _| {
        vm.hyp.regs[0][..4].copy_from_slice(&[u64::from(psci::fid::CPU_ON_64), 1, RAM, 0]);
        exit(vm, 0, esr_hvc(), 0);
        vm.hyp.regs[0][0] = u64::from(psci::fid::CPU_OFF);
        assert_eq!(vm.handle(Event::Hvc { vcpu: VcpuId(0) }), Reply::Stopped);
        // vcpu1 was the last one on: nothing could ever start a vCPU again.
        vm.hyp.regs[1][0] = u64::from(psci::fid::CPU_OFF);
        assert_eq!(
            vm.handle(Event::Hvc { vcpu: VcpuId(1) }),
            Reply::Shutdown(SystemEvent::Crash)
        );
        assert_eq!(vm.hyp.stopped, [VcpuId(0), VcpuId(1)]);
    });
}

#[test]
fn wfi_idles_until_an_interrupt_is_pending() {
    with_vm(|vm, _| {
        assert_eq!(exit(vm, 1, Esr((0x01 << 26) | IL), 0), Reply::Idle);
        assert_eq!(vm.hyp.pc[1], 4);
        assert_eq!(vm.take_wakeups().count(), 0);
        assert_eq!(vm.handle(Event::Irq { intid: 100 }), Reply::Nothing);
        assert_eq!(vm.take_wakeups().count(), 0, "not for vcpu1");
        vm.handle(Event::Irq { intid: 200 });
        assert_eq!(vm.take_wakeups().collect::<Vec<_>>(), [VcpuId(1)]);
        assert_eq!(vm.take_wakeups().count(), 0, "named once");
        // Pending already: WFI returns at once. WFE never idles.
        assert_eq!(exit(vm, 1, Esr((0x01 << 26) | IL), 0), Reply::Resume);
        assert_eq!(exit(vm, 0, Esr((0x01 << 26) | IL | 1), 0), Reply::Resume);
    });
}

#[test]
fn sysregs_sgis_and_unknown_registers() {
    with_vm(|vm, _| {
        // msr icc_sgi1r_el1, x1
        vm.hyp.regs[0][1] = 0x0100_0000_0002;
        let sgi1r =
            Esr((0x18 << 26) | IL | (3 << 20) | (5 << 17) | (12 << 10) | (1 << 5) | (11 << 1));
        assert_eq!(exit(vm, 0, sgi1r, 0), Reply::Resume);
        assert_eq!(vm.gic.sgis, [(VcpuId(0), 0x0100_0000_0002)]);
        assert_eq!(vm.stats.get(VcpuId(0), ExitClass::Sgi), 1);
        // mrs x3, cntpct_el0 (if it traps): reads 0, stepped over.
        vm.hyp.regs[0][3] = 9;
        let mrs =
            Esr((0x18 << 26) | IL | (3 << 20) | (1 << 17) | (3 << 14) | (14 << 10) | (3 << 5) | 1);
        exit(vm, 0, mrs, 0);
        assert_eq!(vm.hyp.regs[0][3], 0);
        assert_eq!(vm.hyp.pc[0], 8);
    });
}

#[test]
fn exits_that_cannot_be_emulated_end_the_vm() {
    with_vm(|vm, _| {
        // ISV=0 data abort (ldp).
        assert_eq!(
            exit(vm, 0, Esr((0x24 << 26) | IL | 7), DEV),
            Reply::Shutdown(SystemEvent::Crash)
        );
        // Instruction fetch from unmapped memory.
        assert_eq!(
            exit(vm, 0, Esr((0x20 << 26) | IL | 7), DEV),
            Reply::Shutdown(SystemEvent::Crash)
        );
        // Pointer-authentication trap.
        assert_eq!(
            exit(vm, 0, Esr((0x09 << 26) | IL), 0),
            Reply::Shutdown(SystemEvent::Crash)
        );
        assert_eq!(vm.stats.get(VcpuId(0), ExitClass::Fatal), 3);
        assert_eq!(vm.hyp.pc[0], 0, "nothing was stepped over");
    });
}

#[test]
fn stats_count_a_scripted_sequence() {
    with_vm(|vm, _| {
        exit(vm, 0, esr_dabt(2, false, 0, false, true), GICD);
        exit(vm, 1, esr_dabt(2, false, 0, false, false), DEV + 8);
        exit(vm, 1, esr_dabt(2, false, 0, false, false), 0x0c00_0000);
        exit(vm, 2, Esr((0x01 << 26) | IL), 0);
        vm.handle(Event::Maintenance {
            vcpu: VcpuId(0),
            lr: Some(1),
        });
        vm.handle(Event::Vppi {
            vcpu: VcpuId(3),
            intid: 27,
        });
        vm.handle(Event::Irq { intid: 100 });
        vm.hyp.regs[0][0] = u64::from(psci::fid::PSCI_VERSION);
        exit(vm, 0, esr_hvc(), 0);
        assert_eq!(vm.gic.calls, ["maintenance", "vppi", "physical_irq"]);
        let s = &vm.stats;
        assert_eq!(
            ExitClass::ALL.map(|c| s.total(c)),
            [1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0],
            "gic mmio unhandled psci wfi sgi sysreg vppi maintenance irq fatal"
        );
        let report = alloc::format!("{s}");
        assert!(report.contains("maintenance"), "{report}");
        assert!(report.contains("mmio reg"), "{report}");
        assert!(
            !report.contains("fatal"),
            "zero rows are left out: {report}"
        );
    });
}

#[test]
fn each_passthrough_interrupt_is_counted_by_name() {
    with_vm(|vm, _| {
        vm.stats
            .name_irqs([(34, "pl031-rtc"), (79, "virtio-rng")].into_iter());
        for _ in 0..3 {
            vm.handle(Event::Irq { intid: 79 });
        }
        vm.handle(Event::Irq { intid: 500 });
        assert_eq!(
            (vm.stats.irq(79), vm.stats.irq(34), vm.stats.irq(500)),
            (3, 0, 0)
        );
        assert_eq!(vm.stats.total(ExitClass::PassthroughIrq), 4);
        let report = alloc::format!("{}", vm.stats);
        assert!(
            report.contains("  irq  virtio-rng                3  (INTID 79)"),
            "{report}"
        );
        // A line that never fired is listed too.
        assert!(
            report.contains("  irq  pl031-rtc                 0  (INTID 34)"),
            "{report}"
        );
    });
}

#[test]
fn each_vcpu_event_commits_its_registers_and_devices_are_polled_only_after_device_work() {
    /// Counts its polls and raises a line on each, as a device finishing a chain would.
    struct Poller(alloc::rc::Rc<core::cell::Cell<u32>>);
    impl DevicePoll for Poller {
        fn poll(&mut self, ctx: &mut DeviceCtx<'_>) {
            self.0.set(self.0.get() + 1);
            ctx.irq.set_level(40, true);
        }
    }
    with_vm(|vm, _| {
        let polls = alloc::rc::Rc::new(core::cell::Cell::new(0));
        vm.pollers.push(Box::new(Poller(polls.clone())));
        assert!(!vm.poll_devices(), "nothing happened yet");
        // A bus device's register: work for the devices, one commit for vcpu2.
        exit(vm, 2, esr_dabt(2, false, 0, false, false), DEV + 8);
        assert_eq!(vm.hyp.commits, [VcpuId(2)]);
        assert!(vm.poll_devices());
        assert_eq!(polls.get(), 1);
        assert_eq!(
            vm.gic.levels,
            [(40, true)],
            "the poll's interrupt reached the GIC"
        );
        assert!(!vm.poll_devices(), "taken");
        assert_eq!(polls.get(), 1);
        // The GIC, an address nobody handles, a maintenance event: no device work.
        exit(vm, 1, esr_dabt(2, false, 0, false, true), GICD);
        exit(vm, 1, esr_dabt(2, false, 0, false, false), 0x0c00_0000);
        vm.handle(Event::Maintenance {
            vcpu: VcpuId(3),
            lr: Some(0),
        });
        assert!(!vm.poll_devices());
        assert_eq!(polls.get(), 1);
        assert_eq!(vm.hyp.commits, [VcpuId(2), VcpuId(1), VcpuId(1), VcpuId(3)]);
        // Outside input: polled whatever happened.
        vm.poll_devices_now();
        assert_eq!(polls.get(), 2);
        // A physical interrupt belongs to no vCPU: nothing to commit.
        vm.handle(Event::Irq { intid: 100 });
        assert_eq!(vm.hyp.commits.len(), 4);
    });
}

#[test]
fn devices_can_raise_lines_outside_a_guest_access() {
    with_vm(|vm, _| {
        vm.with_device_ctx(|ctx| ctx.irq.set_level(41, true));
        assert_eq!(vm.gic.levels, [(41, true)]);
    });
}
