//! The machine under test: a real `vmm::Vm` with the real vGIC and the real MMIO bus (PL011,
//! PCI host bridge with virtio console, block and net), guest RAM in a `Vec`, and a hypervisor
//! double that does the least possible work. Guest exits are made the way seL4 reports them:
//! `Event::Exit` with the syndrome (ESR_EL2) and the faulting IPA, registers in the double.
//!
//! [`Machine::bring_up`] then plays the Linux guest's boot: GIC distributor and
//! redistributors, secondary vCPUs through PSCI CPU_ON, PCI enumeration and BAR placement,
//! and each virtio driver's probe (features, virtqueues in guest RAM, DRIVER_OK), every step
//! as the trapped access Linux would make.

use arm_fault::{AccessSize, Esr, GpReg};
use console::{LineWriter, NullSink};
use guest_mem::{GuestMemory, GuestPhysAddr};
use hypervisor::{HypError, Hypervisor, VcpuId, VirtualIrq};
use pl011::SharedPl011;
use std::sync::atomic::{AtomicU64, Ordering};
use virtio_devices::InputQueue;
use virtio_devices::net::ArpIcmpResponder;
use virtio_pci::{PciBus, SharedPciBus, status};
use vmm::{Event, Reply, Vm};
use vmm_platform::{Platform, QEMU_VIRT};

/// The platform the machine copies (QEMU virt: 4 vCPUs, GICv3, PL011, ECAM).
pub const PLATFORM: &Platform = &QEMU_VIRT;
/// Guest RAM the bench allocates (the platform has more; nothing here needs it).
pub const RAM_SIZE: usize = 64 << 20;
/// Guest RAM base.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Disk image size (the self-test disk is 1 MiB).
pub const DISK_SIZE: usize = 1 << 20;

/// The guest's virtio-net MAC and the VMM's own address (as in the root task).
pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The VMM's MAC on the guest network.
pub const VMM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
/// The VMM's IPv4 address.
pub const VMM_IP: [u8; 4] = [10, 0, 2, 2];
/// The guest's IPv4 address.
pub const GUEST_IP: [u8; 4] = [10, 0, 2, 15];

/// PCI slots, in the order the root task adds the devices.
pub const SLOT_CONSOLE: u8 = 0;
/// virtio-blk.
pub const SLOT_BLK: u8 = 1;
/// virtio-net.
pub const SLOT_NET: u8 = 2;

/// GIC frames.
pub const GICD: u64 = 0x0800_0000;
/// Redistributor of vCPU 0 (stride 0x2_0000; SGI_base at +0x1_0000).
pub const GICR: u64 = 0x080a_0000;
/// PL011.
pub const UART: u64 = 0x0900_0000;

/// The hypervisor double: registers in arrays, everything else succeeds doing nothing.
pub struct BenchHyp {
    regs: [[u64; 31]; 4],
    /// PCs (advanced by the VMM).
    pub pc: [u64; 4],
}

impl BenchHyp {
    fn new() -> Self {
        BenchHyp {
            regs: [[0; 31]; 4],
            pc: [0; 4],
        }
    }
}

impl Hypervisor for BenchHyp {
    fn vcpu_count(&self) -> usize {
        4
    }
    #[inline]
    fn gpr(&mut self, vcpu: VcpuId, reg: GpReg) -> u64 {
        match reg.index() {
            Some(r) => self.regs[vcpu.index() & 3][usize::from(r)],
            None => 0,
        }
    }
    #[inline]
    fn set_gpr(&mut self, vcpu: VcpuId, reg: GpReg, value: u64) {
        if let Some(r) = reg.index() {
            self.regs[vcpu.index() & 3][usize::from(r)] = value;
        }
    }
    #[inline]
    fn advance_pc(&mut self, vcpu: VcpuId, bytes: u64) {
        self.pc[vcpu.index() & 3] += bytes;
    }
    fn start_vcpu(&mut self, _: VcpuId, _: GuestPhysAddr, _: u64) -> Result<(), HypError> {
        Ok(())
    }
    fn stop_vcpu(&mut self, _: VcpuId) {}
    fn list_registers(&self, _: VcpuId) -> usize {
        4
    }
    fn inject_irq(&mut self, _: VcpuId, _: usize, _: VirtualIrq) -> Result<(), HypError> {
        Ok(())
    }
    fn ack_vppi(&mut self, _: VcpuId, _: u32) {}
    fn ack_irq(&mut self, _: u32) {}
}

/// The VM type under test.
pub type BenchVm = Vm<'static, BenchHyp, vgic::Vgic>;

/// What one measured step does.
#[derive(Clone, Copy, Debug)]
pub enum Measured {
    /// One guest exit.
    Exit(Event),
    /// The root task's `devs.poll(vm)`, which it runs after every event.
    Poll,
    /// Nothing: the harness's own overhead.
    Nothing,
}

/// The step under measurement. `#[no_mangle]` so that callgrind's `--toggle-collect` can
/// name it; never inlined so that it exists.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn bench_measured(vm: &mut BenchVm, pci: &SharedPciBus, m: &Measured) -> Reply {
    step(vm, pci, m)
}

/// Steps run outside measurement (it also keeps the two functions from being folded into one).
pub static UNMEASURED: AtomicU64 = AtomicU64::new(0);

/// The same step outside measurement (bring-up, warm-up, the unmeasured part of a cycle).
#[unsafe(no_mangle)]
#[inline(never)]
pub fn bench_unmeasured(vm: &mut BenchVm, pci: &SharedPciBus, m: &Measured) -> Reply {
    UNMEASURED.fetch_add(1, Ordering::Relaxed);
    step(vm, pci, m)
}

#[inline(always)]
fn step(vm: &mut BenchVm, pci: &SharedPciBus, m: &Measured) -> Reply {
    match *m {
        Measured::Exit(ev) => vm.handle(ev),
        Measured::Poll => {
            vm.with_device_ctx(|ctx| pci.poll(ctx));
            Reply::Nothing
        }
        Measured::Nothing => Reply::Nothing,
    }
}

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

/// The register the bench's loads and stores use (x1 / w1).
pub const RT: u8 = 1;

/// A load exit.
pub fn load(vcpu: u8, addr: u64, size: AccessSize) -> Event {
    Event::Exit {
        vcpu: VcpuId(vcpu),
        esr: esr_dabt(size, RT, false),
        ipa: GuestPhysAddr(addr),
    }
}

/// A store exit (the value must be in x1).
pub fn store(vcpu: u8, addr: u64, size: AccessSize) -> Event {
    Event::Exit {
        vcpu: VcpuId(vcpu),
        esr: esr_dabt(size, RT, true),
        ipa: GuestPhysAddr(addr),
    }
}

/// The machine.
pub struct Machine {
    /// The VM.
    pub vm: BenchVm,
    /// The PCI bridge (for the poll the root task runs after every event).
    pub pci: SharedPciBus,
    /// The PL011 (kept alive; the bus holds a clone).
    pub uart: SharedPl011<LineWriter<NullSink>>,
    next_free: u64,
    /// Each device's BAR.
    pub bars: [u64; 3],
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

fn disk_image() -> Vec<u8> {
    // As images/qemu-virt/build.sh makes it: a marker, then i % 251 up to 4 KiB, then bytes
    // that are not zero either (so that a wrong copy shows).
    let mut d: Vec<u8> = (0..DISK_SIZE).map(|i| (i % 251) as u8).collect();
    d[..24].copy_from_slice(b"SEL4-VMM-DISK-PATTERN-v1");
    d
}

impl Machine {
    /// Builds the devices as `crates/root-task/src/devices.rs` does (sinks that discard).
    pub fn new() -> Machine {
        let p = PLATFORM;
        // The root task's machine (vm-builder), with sinks that discard.
        let m = vm_builder::build(
            p,
            vm_builder::Backends {
                sink: NullSink,
                hvc_input: InputQueue::new(4096),
                disk: disk_image(),
                disk_id: "vmm-disk0",
                mac: GUEST_MAC,
                net: ArpIcmpResponder::new(VMM_MAC, VMM_IP),
            },
        )
        .expect("the qemu-virt machine builds");
        let uart = m.uart.expect("qemu-virt has a PL011");
        let (gic, bus, pci) = (m.gic, m.bus, m.pci);

        let ram: &'static mut [u8] = Box::leak(vec![0u8; RAM_SIZE].into_boxed_slice());
        let mem = GuestMemory::new(GuestPhysAddr(RAM_BASE), ram);
        let mut vm = Vm::new(BenchHyp::new(), gic, bus, mem, p.vcpus);
        vm.stats.name_devices(vm.bus.devices().map(|d| d.0));
        Machine {
            vm,
            pci,
            uart,
            // Kernel image, initrd and DTB would sit below; rings and buffers go above 32 MiB.
            next_free: RAM_BASE + (32 << 20),
            bars: [0; 3],
        }
    }

    /// Guest RAM.
    pub fn mem(&self) -> &GuestMemory<'static> {
        &self.vm.mem
    }

    /// Allocates zeroed guest RAM.
    pub fn alloc(&mut self, len: u64, align: u64) -> u64 {
        let a = self.next_free.div_ceil(align) * align;
        self.next_free = a + len;
        assert!(self.next_free <= RAM_BASE + RAM_SIZE as u64, "bench RAM");
        a
    }

    /// Runs one exit outside measurement.
    pub fn exit(&mut self, ev: Event) -> Reply {
        bench_unmeasured(&mut self.vm, &self.pci, &Measured::Exit(ev))
    }

    /// Sets a guest register.
    pub fn set_reg(&mut self, vcpu: u8, reg: u8, v: u64) {
        self.vm.hyp.set_gpr(VcpuId(vcpu), GpReg::new(reg), v);
    }

    /// Reads a guest register.
    pub fn reg(&mut self, vcpu: u8, reg: u8) -> u64 {
        self.vm.hyp.gpr(VcpuId(vcpu), GpReg::new(reg))
    }

    /// A trapped load by `vcpu`.
    pub fn read(&mut self, vcpu: u8, addr: u64, size: AccessSize) -> u64 {
        let r = self.exit(load(vcpu, addr, size));
        assert_eq!(r, Reply::Resume);
        self.reg(vcpu, RT)
    }

    /// A trapped store by `vcpu`.
    pub fn write(&mut self, vcpu: u8, addr: u64, size: AccessSize, v: u64) {
        self.set_reg(vcpu, RT, v);
        let r = self.exit(store(vcpu, addr, size));
        assert_eq!(r, Reply::Resume);
    }

    /// An SMC (SMCCC / PSCI) by `vcpu` with x0..x3; returns x0.
    pub fn smc(&mut self, vcpu: u8, args: [u64; 4]) -> u64 {
        for (i, a) in args.iter().enumerate() {
            self.set_reg(vcpu, i as u8, *a);
        }
        self.exit(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: esr_smc(),
            ipa: GuestPhysAddr(0),
        });
        self.reg(vcpu, 0)
    }

    /// The list register of `vcpu` holding `intid`, if one does.
    pub fn lr_holding(&self, vcpu: u8, intid: u32) -> Option<usize> {
        (0..vgic::MAX_LIST_REGISTERS).find(|&i| {
            self.vm.gic.list_register(VcpuId(vcpu), i) == Some(vgic::ListRegister::Holds(intid))
        })
    }

    /// The guest EOIs `intid` on `vcpu`: the maintenance event for its list register.
    pub fn eoi_event(&self, vcpu: u8, intid: u32) -> Event {
        let lr = self.lr_holding(vcpu, intid);
        assert!(
            lr.is_some(),
            "INTID {intid} not in a list register of vcpu{vcpu}"
        );
        Event::Maintenance {
            vcpu: VcpuId(vcpu),
            lr,
        }
    }

    /// ECAM address of bus 0 `slot`'s register `reg`.
    pub fn ecam(slot: u8, reg: u64) -> u64 {
        PLATFORM.pci.ecam.base.0 + (u64::from(slot) << 15) + reg
    }

    /// The INTID of `slot`'s INTA.
    pub fn intx_intid(slot: u8) -> u32 {
        PLATFORM.pci.intx[PciBus::intx_line(slot, 1)].intid()
    }

    /// Linux's boot, as the VMM sees it (see the module documentation).
    pub fn bring_up(&mut self) {
        use AccessSize::{Double, Word};
        self.vm
            .boot(
                GuestPhysAddr(RAM_BASE),
                GuestPhysAddr(RAM_BASE + (30 << 20)),
            )
            .expect("boot");
        // gic_dist_init: distributor off, SPIs configured, routed to the boot CPU, enabled.
        self.write(0, GICD, Word, 0);
        let _typer = self.read(0, GICD + 0x4, Word);
        for n in (32..64).step_by(4) {
            self.write(0, GICD + 0x400 + n, Word, 0xa0a0_a0a0);
        }
        for intid in 32..64u64 {
            self.write(0, GICD + 0x6000 + 8 * intid, Double, 0);
        }
        // ARE_NS | EnableGrp1A | EnableGrp1.
        self.write(0, GICD, Word, 0x13);
        // Secondary vCPUs through PSCI CPU_ON (they start in guest RAM).
        for v in 1..4u64 {
            let r = self.smc(0, [0xc400_0003, v, RAM_BASE + 0x1000, 0]);
            assert_eq!(r, 0, "CPU_ON vcpu{v}");
        }
        // Each CPU wakes its redistributor, sets its SGI/PPI priorities, enables its SGIs and
        // the virtual timer PPI.
        for v in 0..4u8 {
            let rd = GICR + u64::from(v) * 0x2_0000;
            let _typer = self.read(v, rd + 0x8, Double);
            self.write(v, rd + 0x14, Word, 0);
            let waker = self.read(v, rd + 0x14, Word);
            assert_eq!(waker, 0, "vcpu{v} redistributor awake");
            for n in (0..32).step_by(4) {
                self.write(v, rd + 0x1_0400 + n, Word, 0xa0a0_a0a0);
            }
            self.write(v, rd + 0x1_0100, Word, 0xffff | 1 << 27);
        }
        // PL011: 8 bits, FIFOs, enabled for TX and RX.
        self.write(0, UART + 0x2c, Word, 0x70);
        self.write(0, UART + 0x30, Word, 0x301);
        // Enable the PL011's and the PCI INTx SPIs.
        let mut bits = 1u64 << (PLATFORM.uart.expect("uart").spi.intid() - 32);
        for s in [SLOT_CONSOLE, SLOT_BLK, SLOT_NET] {
            bits |= 1 << (Machine::intx_intid(s) - 32);
        }
        self.write(0, GICD + 0x104, Word, bits);
        self.enumerate_pci();
    }

    /// pci-host-generic + the PCI core: IDs, header type, BAR sizing and placement, Command.
    fn enumerate_pci(&mut self) {
        use AccessSize::Word;
        let window = PLATFORM.pci.mmio.base.0;
        for slot in 0..3u8 {
            let id = self.read(0, Machine::ecam(slot, 0), Word);
            assert_eq!(id & 0xffff, 0x1af4, "slot {slot} is virtio");
            let _hdr = self.read(0, Machine::ecam(slot, 0xc), Word);
            let bar = window + u64::from(slot) * virtio_pci::BAR_SIZE;
            // Size the 64-bit BAR 0.
            self.write(0, Machine::ecam(slot, 0x10), Word, 0xffff_ffff);
            let lo = self.read(0, Machine::ecam(slot, 0x10), Word);
            self.write(0, Machine::ecam(slot, 0x14), Word, 0xffff_ffff);
            let _hi = self.read(0, Machine::ecam(slot, 0x14), Word);
            assert_eq!(
                !(lo & !0xf) as u32 + 1,
                virtio_pci::BAR_SIZE as u32,
                "BAR size"
            );
            self.write(0, Machine::ecam(slot, 0x10), Word, bar & 0xffff_ffff);
            self.write(0, Machine::ecam(slot, 0x14), Word, bar >> 32);
            let _pin = self.read(0, Machine::ecam(slot, 0x3c), Word);
            // Memory Space | Bus Master.
            self.write(0, Machine::ecam(slot, 0x4), Word, 0x6);
            self.bars[usize::from(slot)] = bar;
        }
    }

    /// A virtio driver's probe up to DRIVER_OK: accepts every offered feature (Linux knows
    /// them all), sets up `queues` at the device's maximum size. Returns the queues.
    pub fn virtio_probe(&mut self, slot: u8, queues: &[u16]) -> Vec<GuestQueue> {
        use AccessSize::{Byte, Half, Word};
        let bar = self.bars[usize::from(slot)];
        self.write(0, bar + 0x14, Byte, 0);
        self.write(0, bar + 0x14, Byte, u64::from(status::ACKNOWLEDGE));
        self.write(
            0,
            bar + 0x14,
            Byte,
            u64::from(status::ACKNOWLEDGE | status::DRIVER),
        );
        self.write(0, bar, Word, 0);
        let lo = self.read(0, bar + 0x4, Word);
        self.write(0, bar, Word, 1);
        let hi = self.read(0, bar + 0x4, Word);
        self.write(0, bar + 0x8, Word, 0);
        self.write(0, bar + 0xc, Word, lo);
        self.write(0, bar + 0x8, Word, 1);
        self.write(0, bar + 0xc, Word, hi);
        let st = u64::from(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        self.write(0, bar + 0x14, Byte, st);
        assert_eq!(self.read(0, bar + 0x14, Byte), st, "FEATURES_OK");
        let mut out = Vec::new();
        for &index in queues {
            self.write(0, bar + 0x16, Half, u64::from(index));
            let size = self.read(0, bar + 0x18, Half) as u16;
            let notify_off = self.read(0, bar + 0x1e, Half);
            let n = u64::from(size);
            let desc = self.alloc(16 * n, 4096);
            let avail = self.alloc(6 + 2 * n, 2);
            let used = self.alloc(6 + 8 * n, 4096);
            for (off, a) in [(0x20, desc), (0x28, avail), (0x30, used)] {
                self.write(0, bar + off, Word, a & 0xffff_ffff);
                self.write(0, bar + off + 4, Word, a >> 32);
            }
            self.write(0, bar + 0x1c, Half, 1);
            assert_eq!(self.read(0, bar + 0x1c, Half), 1, "queue {index} enabled");
            out.push(GuestQueue {
                index,
                size,
                desc,
                avail,
                used,
                notify: bar + 0x3000 + 4 * notify_off,
                avail_idx: 0,
                last_used: 0,
            });
        }
        self.write(0, bar + 0x14, Byte, st | u64::from(status::DRIVER_OK));
        out
    }
}

/// VIRTQ_DESC_F_NEXT.
pub const NEXT: u16 = 1;
/// VIRTQ_DESC_F_WRITE.
pub const WRITE: u16 = 2;
/// VIRTQ_DESC_F_INDIRECT.
pub const INDIRECT: u16 = 4;

/// The driver's side of a split virtqueue.
#[derive(Clone, Debug)]
pub struct GuestQueue {
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
    /// Next available index.
    pub avail_idx: u16,
    /// Used index consumed so far.
    pub last_used: u16,
}

impl GuestQueue {
    /// Writes a descriptor at `at` (a table entry, direct or indirect).
    pub fn write_desc(mem: &GuestMemory<'_>, at: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        mem.write(GuestPhysAddr(at), &raw).expect("desc");
    }

    /// Writes descriptor `i` of the table.
    pub fn set_desc(
        &self,
        mem: &GuestMemory<'_>,
        i: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        GuestQueue::write_desc(mem, self.desc + 16 * u64::from(i), addr, len, flags, next);
    }

    /// Makes chain `head` available (ring entry, then the index).
    pub fn publish(&mut self, mem: &GuestMemory<'_>, head: u16) {
        let slot = u64::from(self.avail_idx % self.size);
        mem.write_u16(GuestPhysAddr(self.avail + 4 + 2 * slot), head)
            .expect("ring");
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_u16(GuestPhysAddr(self.avail + 2), self.avail_idx)
            .expect("idx");
    }

    /// `used_event`: interrupt for the next completion (callbacks enabled), or never
    /// (`virtqueue_disable_cb` with EVENT_IDX).
    pub fn want_interrupt(&self, mem: &GuestMemory<'_>, on: bool) {
        let v = if on {
            self.last_used
        } else {
            self.last_used.wrapping_sub(1)
        };
        mem.write_u16(GuestPhysAddr(self.avail + 4 + 2 * u64::from(self.size)), v)
            .expect("used_event");
    }

    /// The device's used index.
    pub fn used_idx(&self, mem: &GuestMemory<'_>) -> u16 {
        mem.read_u16(GuestPhysAddr(self.used + 2)).expect("used")
    }

    /// Used element `n` (id, len).
    pub fn used_elem(&self, mem: &GuestMemory<'_>, n: u16) -> (u32, u32) {
        let at = self.used + 4 + 8 * u64::from(n % self.size);
        (
            mem.read_u32(GuestPhysAddr(at)).expect("id"),
            mem.read_u32(GuestPhysAddr(at + 4)).expect("len"),
        )
    }

    /// The notify exit (`iowrite16(index, notify)`).
    pub fn notify_event(&self, vcpu: u8) -> Event {
        store(vcpu, self.notify, AccessSize::Half)
    }
}
