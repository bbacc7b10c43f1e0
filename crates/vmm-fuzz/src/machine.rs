//! The machine the VM targets drive: a real `vmm::Vm` for a platform table (the vGIC, the MMIO
//! bus with the PL011 where the platform has one, and the PCI host bridge with virtio console,
//! block and net, as `crates/root-task/src/devices.rs` assembles them), over a small guest RAM
//! at the platform's RAM base, and a hypervisor double that checks what the VMM asks of it.
//!
//! [`Machine::bring_up`] plays a Linux guest's boot as trapped accesses (GIC, secondary vCPUs
//! through PSCI, PCI enumeration, each virtio driver's probe), so that inputs start from a
//! running system rather than spending their bytes on getting there.

use std::cell::Cell;

use arm_fault::{AccessSize, Esr, GpReg};
use console::NullSink;
use guest_mem::{AccessObserver, GuestMemory, GuestPhysAddr, GuestRange};
use hypervisor::{HypError, Hypervisor, VcpuId, VirtualIrq};
use virtio_devices::InputQueue;
use virtio_devices::net::ArpIcmpResponder;
use virtio_pci::{SharedPciBus, status};
use vmm::{Event, Reply, Vm};
use vmm_platform::{GICR_STRIDE, Platform};

/// Guest RAM the fuzzer gives the VM (at the platform's RAM base; the tables have more, which
/// only costs time to clear between inputs).
pub const RAM_LEN: usize = 1 << 20;
/// Where the rings go (offset into RAM).
pub const RINGS_OFF: u64 = 0x1_0000;
/// Where the guest's buffers go (offset into RAM): the fuzzer's descriptors point here.
pub const BUF_OFF: u64 = 0x8_0000;
/// The virtio-blk disk.
pub const DISK_LEN: usize = 64 << 10;
/// PCI slots as vm-builder assigns them.
pub const SLOT_CONSOLE: u8 = vm_builder::SLOT_CONSOLE;
/// virtio-blk.
pub const SLOT_BLK: u8 = vm_builder::SLOT_BLK;
/// virtio-net.
pub const SLOT_NET: u8 = vm_builder::SLOT_NET;
/// Queues each device's driver sets up: (slot, queue indices).
pub const QUEUES: [(u8, &[u16]); 3] = [
    (SLOT_CONSOLE, &[0, 1]),
    (SLOT_BLK, &[0]),
    (SLOT_NET, &[0, 1]),
];

/// What a violated invariant looks like (a panic message); kept by the hypervisor double until
/// the rig checks.
#[derive(Default)]
pub struct Faults(Cell<Option<String>>);

impl Faults {
    fn note(&self, what: String) {
        let old = self.0.take();
        self.0.set(Some(old.unwrap_or(what)));
    }

    /// The first violation noted since the last call.
    pub fn take(&self) -> Option<String> {
        self.0.take()
    }
}

/// Every guest-memory access, as `GuestMemory` reports it: counted, and checked to lie in
/// guest RAM.
pub struct Watch {
    ram: GuestRange,
    /// Accesses since the last reset.
    pub accesses: Cell<u64>,
    /// Bytes since the last reset.
    pub bytes: Cell<u64>,
    /// The first access outside guest RAM, if any.
    pub outside: Cell<Option<(u64, u64)>>,
}

impl Watch {
    /// A watch over guest RAM `ram`.
    pub fn new(ram: GuestRange) -> Watch {
        Watch {
            ram,
            accesses: Cell::new(0),
            bytes: Cell::new(0),
            outside: Cell::new(None),
        }
    }

    /// Starts counting again.
    pub fn reset(&self) {
        self.accesses.set(0);
        self.bytes.set(0);
    }
}

impl AccessObserver for Watch {
    fn observe(&self, addr: GuestPhysAddr, len: u64, _write: bool) {
        self.accesses.set(self.accesses.get().saturating_add(1));
        self.bytes.set(self.bytes.get().saturating_add(len));
        // Independently of GuestMemory's own check: the platform's RAM as the rig laid it out.
        if !self.ram.contains_range(addr, len) && self.outside.get().is_none() {
            self.outside.set(Some((addr.0, len)));
        }
    }
}

/// The hypervisor double: registers in arrays; every request is checked against what the
/// VMM may ask (vCPU and list-register indices, entry points in RAM, no stage-2 changes).
pub struct FuzzHyp<'f> {
    regs: [[u64; 31]; 4],
    /// PCs (advanced by the VMM).
    pub pc: [u64; 4],
    /// Running vCPUs.
    pub running: [bool; 4],
    lrs: usize,
    ram: GuestRange,
    faults: &'f Faults,
}

impl FuzzHyp<'_> {
    fn vcpu(&self, vcpu: VcpuId, what: &str) -> Option<usize> {
        let i = vcpu.index();
        if i >= 4 {
            self.faults
                .note(format!("{what} names {vcpu}, which does not exist"));
            return None;
        }
        Some(i)
    }
}

impl Hypervisor for FuzzHyp<'_> {
    fn vcpu_count(&self) -> usize {
        4
    }
    fn gpr(&mut self, vcpu: VcpuId, reg: GpReg) -> u64 {
        let v = self.vcpu(vcpu, "gpr");
        match (v, reg.index()) {
            (Some(v), Some(r)) => self
                .regs
                .get(v)
                .and_then(|x| x.get(usize::from(r)))
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }
    fn set_gpr(&mut self, vcpu: VcpuId, reg: GpReg, value: u64) {
        let v = self.vcpu(vcpu, "set_gpr");
        if let (Some(v), Some(r)) = (v, reg.index())
            && let Some(slot) = self.regs.get_mut(v).and_then(|x| x.get_mut(usize::from(r)))
        {
            *slot = value;
        }
    }
    fn advance_pc(&mut self, vcpu: VcpuId, bytes: u64) {
        if let Some(pc) = self
            .vcpu(vcpu, "advance_pc")
            .and_then(|v| self.pc.get_mut(v))
        {
            *pc = pc.wrapping_add(bytes);
        }
    }
    fn start_vcpu(&mut self, vcpu: VcpuId, entry: GuestPhysAddr, _: u64) -> Result<(), HypError> {
        let v = self
            .vcpu(vcpu, "start_vcpu")
            .ok_or(HypError::NoSuchVcpu(vcpu))?;
        if !self.ram.contains(entry) {
            self.faults
                .note(format!("{vcpu} started at {entry}, outside guest RAM"));
        }
        if let Some(r) = self.running.get_mut(v) {
            *r = true;
        }
        Ok(())
    }
    fn stop_vcpu(&mut self, vcpu: VcpuId) {
        if let Some(r) = self
            .vcpu(vcpu, "stop_vcpu")
            .and_then(|v| self.running.get_mut(v))
        {
            *r = false;
        }
    }
    fn list_registers(&self, _: VcpuId) -> usize {
        self.lrs
    }
    fn inject_irq(&mut self, vcpu: VcpuId, lr: usize, irq: VirtualIrq) -> Result<(), HypError> {
        self.vcpu(vcpu, "inject_irq")
            .ok_or(HypError::NoSuchVcpu(vcpu))?;
        if lr >= self.lrs {
            self.faults.note(format!(
                "inject_irq into {vcpu} list register {lr} of {}",
                self.lrs
            ));
        }
        if irq.intid > 1019 {
            self.faults
                .note(format!("inject_irq of INTID {} into {vcpu}", irq.intid));
        }
        Ok(())
    }
    fn ack_vppi(&mut self, vcpu: VcpuId, _: u32) {
        self.vcpu(vcpu, "ack_vppi");
    }
    fn ack_irq(&mut self, _: u32) {}
}

/// The VM type the targets drive.
pub type FuzzVm<'m> = Vm<'m, FuzzHyp<'m>, vgic::Vgic>;

/// The syndrome of a data abort with a valid ISS: `ldr/str` of `size` with Rt = `reg`.
pub fn esr_dabt(size: AccessSize, reg: u8, write: bool) -> Esr {
    arm_fault::syndrome::data_abort(size, reg, write)
}

/// The syndrome of an SMC #0.
pub fn esr_smc() -> Esr {
    arm_fault::syndrome::smc()
}

/// The syndrome of `msr ICC_SGI1R_EL1, x<rt>`.
pub fn esr_msr_sgi1r(rt: u8) -> Esr {
    arm_fault::syndrome::msr_sgi1r(rt)
}

/// The driver's view of one split virtqueue.
#[derive(Clone, Debug)]
pub struct GuestQueue {
    /// PCI slot of the device.
    pub slot: u8,
    /// Queue index.
    pub index: u16,
    /// Size.
    pub size: u16,
    /// Descriptor table.
    pub desc: u64,
    /// Available ring.
    pub avail: u64,
    /// Used ring.
    pub used: u64,
    /// Notification address.
    pub notify: u64,
    /// The driver's next available index.
    pub avail_idx: u16,
}

/// A VM for one platform, brought up as Linux would.
pub struct Machine<'m> {
    /// The platform.
    pub p: &'static Platform,
    /// The VM.
    pub vm: FuzzVm<'m>,
    /// The PCI bridge (the root task polls it after every event).
    pub pci: SharedPciBus,
    /// Each device's BAR.
    pub bars: [u64; 3],
    /// The queues the drivers set up.
    pub queues: Vec<GuestQueue>,
    next_ring: u64,
}

/// x1: the register the bring-up's loads and stores use.
const RT: u8 = 1;

impl<'m> Machine<'m> {
    /// The devices as the root task assembles them, over `ram` (RAM_LEN bytes, zeroed) at
    /// the platform's RAM base; every guest-memory access is reported to `watch`.
    pub fn new(
        p: &'static Platform,
        ram: &'m mut [u8],
        watch: &'m Watch,
        faults: &'m Faults,
    ) -> Machine<'m> {
        // The root task's machine (vm-builder), with sinks that discard.
        let built = vm_builder::build(
            p,
            vm_builder::Backends {
                sink: NullSink,
                hvc_input: InputQueue::new(4096),
                disk: (0..DISK_LEN).map(|i| (i % 251) as u8).collect(),
                disk_id: "vmm-disk0",
                mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
                net: ArpIcmpResponder::new([0x52, 0x54, 0x00, 0x00, 0x00, 0x02], [10, 0, 2, 2]),
            },
        );
        let Ok(vm_builder::Machine { gic, bus, pci, .. }) = built else {
            panic!("the platform's machine does not build: {:?}", built.err());
        };
        let base = p.ram.range.base;
        let mem = GuestMemory::new(base, ram).with_observer(watch);
        let hyp = FuzzHyp {
            regs: [[0; 31]; 4],
            pc: [0; 4],
            running: [false; 4],
            lrs: 4,
            ram: GuestRange::new(base.0, RAM_LEN as u64),
            faults,
        };
        let vm = Vm::new(hyp, gic, bus, mem, p.vcpus);
        Machine {
            p,
            vm,
            pci,
            bars: [0; 3],
            queues: Vec::new(),
            next_ring: base.0 + RINGS_OFF,
        }
    }

    /// Guest RAM's base.
    pub fn ram_base(&self) -> u64 {
        self.p.ram.range.base.0
    }

    /// Guest RAM.
    pub fn mem(&self) -> &GuestMemory<'m> {
        &self.vm.mem
    }

    /// Sets a guest register.
    pub fn set_reg(&mut self, vcpu: u8, reg: u8, v: u64) {
        self.vm.hyp.set_gpr(VcpuId(vcpu), GpReg::new(reg), v);
    }

    /// Reads a guest register.
    pub fn reg(&mut self, vcpu: u8, reg: u8) -> u64 {
        self.vm.hyp.gpr(VcpuId(vcpu), GpReg::new(reg))
    }

    /// Runs one event (no checks: the rig checks).
    pub fn exit(&mut self, ev: Event) -> Reply {
        self.vm.handle(ev)
    }

    /// The root task's device poll.
    pub fn poll(&mut self) {
        let pci = self.pci.clone();
        self.vm.with_device_ctx(|ctx| pci.poll(ctx));
    }

    fn read(&mut self, vcpu: u8, addr: u64, size: AccessSize) -> u64 {
        self.exit(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: esr_dabt(size, RT, false),
            ipa: GuestPhysAddr(addr),
        });
        self.reg(vcpu, RT)
    }

    fn write(&mut self, vcpu: u8, addr: u64, size: AccessSize, v: u64) {
        self.set_reg(vcpu, RT, v);
        self.exit(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: esr_dabt(size, RT, true),
            ipa: GuestPhysAddr(addr),
        });
    }

    /// An SMC with x0..x3; returns x0.
    pub fn smc(&mut self, vcpu: u8, args: [u64; 4]) -> u64 {
        for (i, a) in (0u8..).zip(args) {
            self.set_reg(vcpu, i, a);
        }
        self.exit(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: esr_smc(),
            ipa: GuestPhysAddr(0),
        });
        self.reg(vcpu, 0)
    }

    /// ECAM address of bus 0 `slot`'s register `reg`.
    pub fn ecam(&self, slot: u8, reg: u64) -> u64 {
        self.p.pci.ecam.base.0 + (u64::from(slot) << 15) + reg
    }

    /// GICD base.
    pub fn gicd(&self) -> u64 {
        self.p.gic.dist.0
    }

    /// GICR base (vCPU 0's frame).
    pub fn gicr(&self) -> u64 {
        self.p.gic.redist.0
    }

    /// Linux's boot as the VMM sees it: GIC, secondaries, PCI, virtio probes.
    pub fn bring_up(&mut self) {
        use AccessSize::{Double, Word};
        let base = self.ram_base();
        let _ = self
            .vm
            .boot(GuestPhysAddr(base), GuestPhysAddr(base + 0x8000));
        let (gicd, gicr) = (self.gicd(), self.gicr());
        self.write(0, gicd, Word, 0);
        for n in (32..64).step_by(4) {
            self.write(0, gicd + 0x400 + n, Word, 0xa0a0_a0a0);
        }
        for intid in 32..64u64 {
            self.write(0, gicd + 0x6000 + 8 * intid, Double, 0);
        }
        self.write(0, gicd, Word, 0x13);
        for v in 1..4u64 {
            self.smc(0, [0xc400_0003, v, base + 0x1000, 0]);
        }
        for v in 0..4u8 {
            let rd = gicr + u64::from(v) * GICR_STRIDE;
            self.write(v, rd + 0x14, Word, 0);
            for n in (0..32).step_by(4) {
                self.write(v, rd + 0x1_0400 + n, Word, 0xa0a0_a0a0);
            }
            self.write(v, rd + 0x1_0100, Word, 0xffff | 1 << 27);
        }
        if let Some(u) = self.p.uart {
            self.write(0, u.base.0 + 0x2c, Word, 0x70);
            self.write(0, u.base.0 + 0x30, Word, 0x301);
        }
        // Every SPI the platform routes enabled (PCI INTx, the PL011, pass-through ones).
        for n in 1..32u64 {
            self.write(0, gicd + 0x100 + 4 * n, Word, 0xffff_ffff);
        }
        self.enumerate_pci();
        for (slot, qs) in QUEUES {
            self.virtio_probe(slot, qs);
        }
    }

    fn enumerate_pci(&mut self) {
        use AccessSize::Word;
        let window = self.p.pci.mmio.base.0;
        for slot in 0..3u8 {
            let bar = window + u64::from(slot) * virtio_pci::BAR_SIZE;
            let _ = self.read(0, self.ecam(slot, 0), Word);
            self.write(0, self.ecam(slot, 0x10), Word, 0xffff_ffff);
            let _ = self.read(0, self.ecam(slot, 0x10), Word);
            self.write(0, self.ecam(slot, 0x10), Word, bar & 0xffff_ffff);
            self.write(0, self.ecam(slot, 0x14), Word, bar >> 32);
            self.write(0, self.ecam(slot, 0x4), Word, 0x6);
            if let Some(b) = self.bars.get_mut(usize::from(slot)) {
                *b = bar;
            }
        }
    }

    /// A virtio driver's probe up to DRIVER_OK, every offered feature accepted.
    fn virtio_probe(&mut self, slot: u8, queues: &[u16]) {
        use AccessSize::{Byte, Half, Word};
        let bar = self.bars.get(usize::from(slot)).copied().unwrap_or(0);
        self.write(0, bar + 0x14, Byte, 0);
        self.write(0, bar + 0x14, Byte, u64::from(status::ACKNOWLEDGE));
        let drv = status::ACKNOWLEDGE | status::DRIVER;
        self.write(0, bar + 0x14, Byte, u64::from(drv));
        for sel in 0..2 {
            self.write(0, bar, Word, sel);
            let f = self.read(0, bar + 0x4, Word);
            self.write(0, bar + 0x8, Word, sel);
            self.write(0, bar + 0xc, Word, f);
        }
        let st = u64::from(drv | status::FEATURES_OK);
        self.write(0, bar + 0x14, Byte, st);
        for &index in queues {
            self.write(0, bar + 0x16, Half, u64::from(index));
            let size = self.read(0, bar + 0x18, Half) as u16;
            let notify_off = self.read(0, bar + 0x1e, Half);
            let n = u64::from(size);
            let desc = self.ring(16 * n);
            let avail = self.ring(6 + 2 * n);
            let used = self.ring(6 + 8 * n);
            for (off, a) in [(0x20, desc), (0x28, avail), (0x30, used)] {
                self.write(0, bar + off, Word, a & 0xffff_ffff);
                self.write(0, bar + off + 4, Word, a >> 32);
            }
            self.write(0, bar + 0x1c, Half, 1);
            self.queues.push(GuestQueue {
                slot,
                index,
                size,
                desc,
                avail,
                used,
                notify: bar + 0x3000 + 4 * notify_off,
                avail_idx: 0,
            });
        }
        self.write(0, bar + 0x14, Byte, st | u64::from(status::DRIVER_OK));
    }

    fn ring(&mut self, len: u64) -> u64 {
        let a = self.next_ring.next_multiple_of(4096);
        self.next_ring = a + len;
        a
    }
}

/// The notify exit of `q`: `iowrite16(x1, notify)` by `vcpu` (x1 holds the queue index when
/// the driver is Linux).
pub fn notify_event(q: &GuestQueue, vcpu: u8) -> Event {
    Event::Exit {
        vcpu: VcpuId(vcpu),
        esr: esr_dabt(AccessSize::Half, 1, true),
        ipa: GuestPhysAddr(q.notify),
    }
}
