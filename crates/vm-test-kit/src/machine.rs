//! The production machine under test: what `vm-builder` makes of a platform table (the vGIC,
//! every emulated device the table lists, `vmm::Vm`), over a [`TestHyp`] and guest RAM the
//! caller gives, with guest exits made the way seL4 reports them (`Event::Exit` with the
//! syndrome and the faulting IPA; registers in the double).
//!
//! [`TestMachine::bring_up`] plays a Linux guest's boot, driven by the table: the GIC
//! distributor and every redistributor, the secondary vCPUs through PSCI CPU_ON, the PL011
//! where there is one, the interrupts of every device enabled, PCI enumeration and BAR
//! placement; [`TestMachine::probe_all`] then runs every virtio driver's probe.

use arm_fault::{AccessSize, GpReg};
use console::{LineWriter, NullSink};
use guest_mem::{AccessObserver, GuestMemory, GuestPhysAddr};
use hypervisor::testing::TestHyp;
use hypervisor::{Hypervisor, VcpuId};
use pl011::SharedPl011;
use virtio_devices::InputQueue;
use virtio_devices::net::ArpIcmpResponder;
use virtio_pci::{PciBus, SharedPciBus};
use vmm::{Event, Reply};
use vmm_platform::{GICR_STRIDE, PciLayout, Platform, VirtioKind};

use crate::driver::{self, MmioPort, VirtioPci};
use crate::queue::GuestQueue;

/// The guest's virtio-net MAC (as the root task gives it).
pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The VMM's MAC on the guest network.
pub const VMM_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x00, 0x02];
/// The VMM's IPv4 address.
pub const VMM_IP: [u8; 4] = [10, 0, 2, 2];
/// The guest's IPv4 address.
pub const GUEST_IP: [u8; 4] = [10, 0, 2, 15];

/// The register the machine's loads and stores use (x1 / w1).
pub const RT: u8 = 1;

/// The VM type under test.
pub type TestVm<'m> = vm_builder::Vm<'m, TestHyp>;

/// A load exit of `vcpu` (into x1).
pub fn load(vcpu: u8, addr: u64, size: AccessSize) -> Event {
    Event::Exit {
        vcpu: VcpuId(vcpu),
        esr: arm_fault::syndrome::data_abort(size, RT, false),
        ipa: GuestPhysAddr(addr),
    }
}

/// A store exit of `vcpu` (the value must be in x1).
pub fn store(vcpu: u8, addr: u64, size: AccessSize) -> Event {
    Event::Exit {
        vcpu: VcpuId(vcpu),
        esr: arm_fault::syndrome::data_abort(size, RT, true),
        ipa: GuestPhysAddr(addr),
    }
}

impl GuestQueue {
    /// The notify exit: `iowrite16(x1, notify)` by `vcpu` (x1 holds the queue index when the
    /// driver is Linux).
    pub fn notify_event(&self, vcpu: u8) -> Event {
        store(vcpu, self.notify, AccessSize::Half)
    }
}

/// The backends the machine's devices get: output discarded, `disk` behind virtio-blk, the
/// in-VMM ARP/ICMP responder behind virtio-net (as the root task has it).
pub fn backends(disk: Vec<u8>) -> vm_builder::Backends<NullSink, ArpIcmpResponder> {
    vm_builder::Backends {
        sink: NullSink,
        hvc_input: InputQueue::new(4096),
        disk,
        disk_id: "vmm-disk0",
        mac: GUEST_MAC,
        net: ArpIcmpResponder::new(VMM_MAC, VMM_IP),
    }
}

/// A platform's machine with its guest's view.
pub struct TestMachine<'m> {
    /// The platform.
    pub p: &'static Platform,
    /// The VM.
    pub vm: TestVm<'m>,
    /// The PCI bridge, where the table has one.
    pub pci: Option<SharedPciBus>,
    /// The PL011, where the table has one.
    pub uart: Option<SharedPl011<LineWriter<NullSink>>>,
    /// The virtio devices in slot order.
    pub functions: &'static [VirtioKind],
    /// Each slot's BAR 0, once [`TestMachine::bring_up`] placed them.
    pub bars: Vec<u64>,
    /// The queues [`TestMachine::probe_all`] set up.
    pub queues: Vec<GuestQueue>,
    next_free: u64,
    ram_end: u64,
}

impl<'m> TestMachine<'m> {
    /// The machine of `p` over `hyp`, with `ram` (zeroed) as guest RAM at the platform's RAM
    /// base, `disk` behind virtio-blk, and every guest-memory access reported to `observer`.
    /// Rings and buffers the machine allocates start half-way into `ram`.
    pub fn new(
        p: &'static Platform,
        hyp: TestHyp,
        ram: &'m mut [u8],
        observer: Option<&'m dyn AccessObserver>,
        disk: Vec<u8>,
    ) -> TestMachine<'m> {
        let base = p.ram.range.base;
        let len = ram.len() as u64;
        let mem = GuestMemory::new(base, ram);
        let mem = match observer {
            Some(o) => mem.with_observer(o),
            None => mem,
        };
        let built = vm_builder::build(p, backends(disk), hyp, mem)
            .unwrap_or_else(|e| panic!("{}: the machine does not build: {e}", p.name));
        TestMachine {
            p,
            vm: built.vm,
            pci: built.pci,
            uart: built.uart,
            functions: built.functions,
            bars: Vec::new(),
            queues: Vec::new(),
            next_free: base.0 + len / 2,
            ram_end: base.0 + len,
        }
    }

    /// Allocations ([`TestMachine::alloc`]) start at `offset` into guest RAM from now on.
    pub fn alloc_from(&mut self, offset: u64) {
        self.next_free = self.p.ram.range.base.0 + offset;
    }

    /// Allocates `len` bytes of guest RAM aligned to `align`.
    pub fn alloc(&mut self, len: u64, align: u64) -> u64 {
        let a = self.next_free.next_multiple_of(align);
        self.next_free = a + len;
        assert!(
            self.next_free <= self.ram_end,
            "the machine's guest RAM is used up"
        );
        a
    }

    /// Guest RAM's base.
    pub fn ram_base(&self) -> u64 {
        self.p.ram.range.base.0
    }

    /// Guest RAM.
    pub fn mem(&self) -> &GuestMemory<'m> {
        self.vm.mem()
    }

    /// The PCI layout (the table must have a bridge).
    pub fn pci_layout(&self) -> PciLayout {
        self.p
            .pci()
            .map(|h| h.layout)
            .unwrap_or_else(|| panic!("{} has no PCI bridge", self.p.name))
    }

    /// The PCI slot of the first device of `kind`.
    pub fn slot(&self, kind: VirtioKind) -> u8 {
        vm_builder::slot_of(self.functions, kind)
            .unwrap_or_else(|| panic!("{} has no {}", self.p.name, kind.name()))
    }

    /// Sets a guest register.
    pub fn set_reg(&mut self, vcpu: u8, reg: u8, v: u64) {
        self.vm.hyp_mut().set_gpr(VcpuId(vcpu), GpReg::new(reg), v);
    }

    /// Reads a guest register.
    pub fn reg(&mut self, vcpu: u8, reg: u8) -> u64 {
        self.vm.hyp_mut().gpr(VcpuId(vcpu), GpReg::new(reg))
    }

    /// Runs one event.
    pub fn exit(&mut self, ev: Event) -> Reply {
        self.vm.handle(ev)
    }

    /// A trapped load by `vcpu`; the VM must resume the vCPU.
    pub fn read(&mut self, vcpu: u8, addr: u64, size: AccessSize) -> u64 {
        let r = self.exit(load(vcpu, addr, size));
        assert_eq!(r, Reply::Resume, "load at {addr:#x}");
        self.reg(vcpu, RT)
    }

    /// A trapped store by `vcpu`; the VM must resume the vCPU.
    pub fn write(&mut self, vcpu: u8, addr: u64, size: AccessSize, v: u64) {
        self.set_reg(vcpu, RT, v);
        let r = self.exit(store(vcpu, addr, size));
        assert_eq!(r, Reply::Resume, "store at {addr:#x}");
    }

    /// An SMC (SMCCC / PSCI) by `vcpu` with x0..x3; returns x0.
    pub fn smc(&mut self, vcpu: u8, args: [u64; 4]) -> u64 {
        for (i, a) in (0u8..).zip(args) {
            self.set_reg(vcpu, i, a);
        }
        self.exit(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: arm_fault::syndrome::smc(),
            ipa: GuestPhysAddr(0),
        });
        self.reg(vcpu, 0)
    }

    /// The list register of `vcpu` holding `intid`, if one does.
    pub fn lr_holding(&self, vcpu: u8, intid: u32) -> Option<usize> {
        (0..vgic::MAX_LIST_REGISTERS).find(|&i| {
            self.vm.gic().list_register(VcpuId(vcpu), i) == Some(vgic::ListRegister::Holds(intid))
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
    pub fn ecam(&self, slot: u8, reg: u64) -> u64 {
        driver::ecam(&self.pci_layout(), 0, u64::from(slot), 0, reg)
    }

    /// The INTID of `slot`'s INTA.
    pub fn intx_intid(&self, slot: u8) -> u32 {
        self.pci_layout().intx[PciBus::intx_line(slot, 1)].intid()
    }

    /// The driver of `slot` (after [`TestMachine::bring_up`]).
    pub fn device(&self, slot: u8) -> VirtioPci {
        VirtioPci {
            slot,
            bar: self.bars.get(usize::from(slot)).copied().unwrap_or(0),
        }
    }

    /// Linux's boot as the VMM sees it (see the module documentation); no virtio probe.
    pub fn bring_up(&mut self) {
        use AccessSize::{Double, Word};
        let base = self.ram_base();
        self.vm
            .boot(GuestPhysAddr(base), GuestPhysAddr(base + 0x8000))
            .expect("boot vcpu0");
        let (gicd, gicr) = (self.p.gic.dist.0, self.p.gic.redist.0);
        let spis = u64::from(self.p.max_spi().0) + 1;
        // gic_dist_init: distributor off, SPIs' priorities, routed to the boot CPU, enabled.
        self.write(0, gicd, Word, 0);
        let _typer = self.read(0, gicd + 0x4, Word);
        for n in (32..32 + spis).step_by(4) {
            self.write(0, gicd + 0x400 + n, Word, 0xa0a0_a0a0);
        }
        for intid in 32..32 + spis {
            self.write(0, gicd + 0x6000 + 8 * intid, Double, 0);
        }
        // ARE_NS | EnableGrp1A | EnableGrp1.
        self.write(0, gicd, Word, 0x13);
        // Secondary vCPUs through PSCI CPU_ON (they start in guest RAM).
        for v in 1..u64::from(self.p.vcpus) {
            let r = self.smc(0, [0xc400_0003, v, base + 0x1000, 0]);
            assert_eq!(r, 0, "CPU_ON vcpu{v}");
        }
        // Each CPU wakes its redistributor, sets its SGI/PPI priorities, enables its SGIs and
        // the virtual timer PPI.
        for v in 0..self.p.vcpus {
            let rd = gicr + u64::from(v) * GICR_STRIDE;
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
        if let Some(u) = self.p.pl011() {
            self.write(0, u.base.0 + 0x2c, Word, 0x70);
            self.write(0, u.base.0 + 0x30, Word, 0x301);
        }
        // Every SPI the table routes enabled: the devices' and the pass-through ones.
        let mut enable = vec![0u64; (spis as usize).div_ceil(32) + 1];
        let device_spis = self.p.devices.iter().flat_map(|d| d.spis().map(|(_, s)| s));
        let pt_spis = self.p.passthrough_irqs.iter().map(|i| i.spi);
        for spi in device_spis.chain(pt_spis) {
            let intid = spi.intid() as usize;
            enable[intid / 32] |= 1 << (intid % 32);
        }
        for (n, bits) in enable.into_iter().enumerate().skip(1) {
            if bits != 0 {
                self.write(0, gicd + 0x100 + 4 * n as u64, Word, bits);
            }
        }
        // pci-host-generic and the PCI core.
        if self.p.pci().is_some() {
            let layout = self.pci_layout();
            let slots = u8::try_from(self.functions.len()).expect("at most 32 functions");
            self.bars = driver::enumerate(self, &layout, slots)
                .into_iter()
                .map(|d| d.bar)
                .collect();
        }
    }

    /// A virtio driver's probe of `slot` up to DRIVER_OK: every offered feature accepted
    /// (Linux knows them all), `queues` at the device's maximum size. Returns the queues.
    pub fn virtio_probe(&mut self, slot: u8, queues: &[u16]) -> Vec<GuestQueue> {
        let dev = self.device(slot);
        let sizes: Vec<(u16, Option<u16>)> = queues.iter().map(|&q| (q, None)).collect();
        let mut next = self.next_free;
        let end = self.ram_end;
        let qs = dev.probe(self, None, &sizes, &mut |len, align| {
            let a = next.next_multiple_of(align);
            next = a + len;
            assert!(next <= end, "the machine's guest RAM is used up");
            a
        });
        self.next_free = next;
        qs
    }

    /// Every virtio driver's probe, each with the queues Linux's driver of its kind sets up
    /// ([`driver::queues_of`]); the queues go to [`TestMachine::queues`].
    pub fn probe_all(&mut self) {
        for (slot, &kind) in (0u8..).zip(self.functions) {
            let qs = self.virtio_probe(slot, driver::queues_of(kind));
            self.queues.extend(qs);
        }
    }
}

/// The machine's guest on vCPU 0: each access one exit.
impl MmioPort for TestMachine<'_> {
    fn read(&mut self, addr: u64, size: AccessSize) -> u64 {
        TestMachine::read(self, 0, addr, size)
    }

    fn write(&mut self, addr: u64, size: AccessSize, value: u64) {
        TestMachine::write(self, 0, addr, size, value);
    }
}
