//! One scenario per exit class: how the guest side prepares the exit, the measured step, and
//! what follows it (the rest of the request as Linux would do it), so that the machine is
//! back in its steady state for the next iteration.

use crate::machine::{
    GICD, GICR, GUEST_IP, GUEST_MAC, GuestQueue, INDIRECT, Machine, Measured, NEXT, RT, SLOT_BLK,
    SLOT_CONSOLE, SLOT_NET, UART, VMM_IP, VMM_MAC, WRITE, esr_msr_sgi1r, esr_smc, load, store,
};
use arm_fault::AccessSize;
use guest_mem::GuestPhysAddr;
use hypervisor::VcpuId;
use virtio_devices::net::inet_checksum;
use vmm::{Event, Reply};

/// What a scenario is, for the report.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    /// Key.
    pub name: &'static str,
    /// The exit class (as `vmm::ExitStats` counts it) or what the step is.
    pub class: &'static str,
    /// What the guest did.
    pub what: &'static str,
    /// Instruction budget the issue sets, if any.
    pub target: Option<u64>,
    /// Whether it is a per-exit figure (false: a helper row such as the harness overhead).
    pub exit: bool,
}

/// Every scenario, in report order.
pub const ALL: &[Info] = &[
    Info {
        name: "gicd_read",
        class: "gic",
        what: "GICD_CTLR load (`ldr w`), as gic_do_wait_for_rwp polls it",
        target: Some(150),
        exit: true,
    },
    Info {
        name: "gicd_write",
        class: "gic",
        what: "GICD_ISENABLER1 store (`str w`): unmask SPIs that are already enabled",
        target: Some(150),
        exit: true,
    },
    Info {
        name: "gicr_read",
        class: "gic",
        what: "GICR_ISENABLER0 load (SGI_base of vCPU 0's redistributor)",
        target: Some(150),
        exit: true,
    },
    Info {
        name: "gicr_write",
        class: "gic",
        what: "GICR_ISENABLER0 store: enable SGIs and the timer PPI",
        target: Some(150),
        exit: true,
    },
    Info {
        name: "gicd_prio_write",
        class: "gic",
        what: "GICD_IPRIORITYR8 store (`str w`, INTIDs 32-35, same value): how Linux sets SPI priorities",
        target: Some(150),
        exit: true,
    },
    Info {
        name: "gicr_waker_read",
        class: "gic",
        what: "GICR_WAKER load of vCPU 0's redistributor (awake), as Linux polls it when it wakes one",
        target: Some(150),
        exit: true,
    },
    Info {
        name: "pci_cfg_read",
        class: "mmio pci-ecam",
        what: "ECAM dword load: virtio-blk's Command/Status",
        target: Some(300),
        exit: true,
    },
    Info {
        name: "blk_read_4k",
        class: "mmio pci-mmio",
        what: "virtio-blk notify (`strh`): one 4 KiB read (indirect header/data/status), completion raises INTx",
        target: None,
        exit: true,
    },
    Info {
        name: "net_tx_1500",
        class: "mmio pci-mmio",
        what: "virtio-net TX notify: one 1500-byte frame (12-byte header and frame in one descriptor) to another host; no TX interrupt",
        target: None,
        exit: true,
    },
    Info {
        name: "console_tx_64",
        class: "mmio pci-mmio",
        what: "virtio-console TX notify: 64 bytes (one line) on hvc0; no TX interrupt",
        target: None,
        exit: true,
    },
    Info {
        name: "psci_version",
        class: "psci",
        what: "SMC #0 with x0 = PSCI_VERSION",
        target: None,
        exit: true,
    },
    Info {
        name: "sgi",
        class: "sgi",
        what: "MSR ICC_SGI1R_EL1: SGI 1 (reschedule IPI) vCPU 0 -> vCPU 1, injected into vCPU 1's list register",
        target: None,
        exit: true,
    },
    Info {
        name: "pl011_tx_byte",
        class: "mmio pl011",
        what: "PL011 UARTDR store: one console byte (64-byte lines)",
        target: None,
        exit: true,
    },
    Info {
        name: "virtio_isr_read",
        class: "mmio pci-mmio",
        what: "virtio ISR load after a blk completion (vp_interrupt; lowers INTx)",
        target: None,
        exit: true,
    },
    Info {
        name: "eoi_maintenance",
        class: "maintenance",
        what: "VGIC maintenance after the guest EOIs the blk INTx SPI",
        target: None,
        exit: true,
    },
    Info {
        name: "sgi_eoi",
        class: "maintenance",
        what: "VGIC maintenance after vCPU 1 EOIs the SGI",
        target: None,
        exit: true,
    },
    Info {
        name: "blk_read_64k",
        class: "mmio pci-mmio",
        what: "virtio-blk notify: one 64 KiB read, data in one segment",
        target: None,
        exit: true,
    },
    Info {
        name: "blk_read_64k_16seg",
        class: "mmio pci-mmio",
        what: "virtio-blk notify: one 64 KiB read, data in 16 4 KiB segments (page cache pages)",
        target: None,
        exit: true,
    },
    Info {
        name: "net_ping_1500",
        class: "mmio pci-mmio",
        what: "virtio-net TX notify: 1500-byte ICMP echo request to the VMM; the reply reaches the RX queue in the same exit",
        target: None,
        exit: true,
    },
    Info {
        name: "poll_after_exit",
        class: "(root task)",
        what: "`devs.poll(vm)`, which the root task's loop runs after every guest exit (devices idle)",
        target: None,
        exit: false,
    },
    Info {
        name: "null",
        class: "-",
        what: "harness overhead (call of the measured step doing nothing); subtracted from every row",
        target: None,
        exit: false,
    },
];

/// Looks a scenario up.
pub fn info(name: &str) -> Option<&'static Info> {
    ALL.iter().find(|i| i.name == name)
}

/// A scenario's cycle.
pub trait Cycle {
    /// The guest side, and the unmeasured exits, before the measured step.
    fn prep(&mut self, m: &mut Machine);
    /// The measured step (called after `prep`).
    fn measured(&self, m: &Machine) -> Measured;
    /// The unmeasured exits and guest work after it.
    fn after(&mut self, m: &mut Machine, reply: Reply);
    /// True when `prep` and `after` do nothing, so the step can be timed back to back.
    fn batchable(&self) -> bool {
        false
    }
    /// Checks (once warm) that the steps did what the guest expects.
    fn check(&mut self, m: &mut Machine);
}

/// A register exit with nothing around it (loads, idempotent stores).
struct Reg {
    ev: Event,
    store: Option<(u8, u64)>,
    expect: Option<u64>,
}

impl Cycle for Reg {
    fn prep(&mut self, _: &mut Machine) {}
    fn measured(&self, _: &Machine) -> Measured {
        Measured::Exit(self.ev)
    }
    fn after(&mut self, _: &mut Machine, _: Reply) {}
    fn batchable(&self) -> bool {
        true
    }
    fn check(&mut self, m: &mut Machine) {
        if let Some((vcpu, v)) = self.store {
            m.set_reg(vcpu, RT, v);
        }
        let r = m.exit(self.ev);
        assert_eq!(r, Reply::Resume);
        if let (Some(want), Event::Exit { vcpu, .. }) = (self.expect, self.ev) {
            assert_eq!(m.reg(vcpu.0, RT), want, "register value");
        }
    }
}

struct Psci;

impl Cycle for Psci {
    fn prep(&mut self, m: &mut Machine) {
        m.set_reg(0, 0, u64::from(psci::fid::PSCI_VERSION));
    }
    fn measured(&self, _: &Machine) -> Measured {
        Measured::Exit(Event::Exit {
            vcpu: VcpuId(0),
            esr: esr_smc(),
            ipa: GuestPhysAddr(0),
        })
    }
    fn after(&mut self, _: &mut Machine, _: Reply) {}
    fn check(&mut self, m: &mut Machine) {
        assert_eq!(
            m.smc(0, [u64::from(psci::fid::PSCI_VERSION), 0, 0, 0]),
            psci::PSCI_VERSION_1_1
        );
    }
}

/// SGI 1 from vCPU 0 to vCPU 1, then vCPU 1's EOI; `measure_eoi` picks which is measured.
struct Sgi {
    measure_eoi: bool,
}

const SGI_VALUE: u64 = (1 << 24) | 0b10;

impl Cycle for Sgi {
    fn prep(&mut self, m: &mut Machine) {
        m.set_reg(0, 2, SGI_VALUE);
        if self.measure_eoi {
            let ev = self.sgi_event();
            m.exit(ev);
        }
    }
    fn measured(&self, m: &Machine) -> Measured {
        Measured::Exit(if self.measure_eoi {
            m.eoi_event(1, 1)
        } else {
            self.sgi_event()
        })
    }
    fn after(&mut self, m: &mut Machine, _: Reply) {
        if !self.measure_eoi {
            let ev = m.eoi_event(1, 1);
            m.exit(ev);
        }
    }
    fn check(&mut self, m: &mut Machine) {
        self.prep(m);
        if !self.measure_eoi {
            let ev = self.sgi_event();
            m.exit(ev);
        }
        assert!(m.lr_holding(1, 1).is_some(), "SGI listed on vcpu1");
        let ev = m.eoi_event(1, 1);
        m.exit(ev);
        assert!(m.lr_holding(1, 1).is_none(), "SGI EOI'd");
    }
}

impl Sgi {
    fn sgi_event(&self) -> Event {
        Event::Exit {
            vcpu: VcpuId(0),
            esr: esr_msr_sgi1r(2),
            ipa: GuestPhysAddr(0),
        }
    }
}

struct Pl011Tx {
    n: usize,
}

const LINE: &[u8; 64] = b"[    1.234567] virtio_blk virtio1: [vda] 2048 512-byte sectors.\n";

impl Cycle for Pl011Tx {
    fn prep(&mut self, m: &mut Machine) {
        m.set_reg(0, RT, u64::from(LINE[self.n % LINE.len()]));
        self.n += 1;
    }
    fn measured(&self, _: &Machine) -> Measured {
        Measured::Exit(store(0, UART, AccessSize::Word))
    }
    fn after(&mut self, _: &mut Machine, _: Reply) {}
    fn check(&mut self, m: &mut Machine) {
        let before = m
            .uart
            .as_ref()
            .and_then(|u| u.with(|u| u.sink().lines()))
            .unwrap_or(0);
        for _ in 0..LINE.len() {
            self.prep(m);
            m.exit(store(0, UART, AccessSize::Word));
        }
        let after = m
            .uart
            .as_ref()
            .and_then(|u| u.with(|u| u.sink().lines()))
            .unwrap_or(0);
        assert_eq!(after, before + 1, "one line per 64 bytes");
    }
}

/// Which step of an interrupting request is measured.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    /// The notify store.
    Notify,
    /// The ISR load in the interrupt handler.
    Isr,
    /// The maintenance event after the EOI.
    Eoi,
}

/// A virtio request that completes with an interrupt: notify, ISR read, EOI (Linux's
/// virtio-blk; virtio-net RX).
struct Irq {
    slot: u8,
    intid: u32,
    stage: Stage,
    notify: Event,
    bar: u64,
}

impl Irq {
    fn isr(&self) -> Event {
        load(0, self.bar + 0x1000, AccessSize::Byte)
    }

    /// Runs the stages other than the measured one, before (`before`) or after it.
    fn run(&self, m: &mut Machine, before: bool) {
        let order = [Stage::Notify, Stage::Isr, Stage::Eoi];
        let at = order.iter().position(|s| *s == self.stage).unwrap_or(0);
        let range = if before { 0..at } else { at + 1..order.len() };
        for s in &order[range] {
            let ev = self.event(m, *s);
            m.exit(ev);
        }
    }

    fn event(&self, m: &Machine, s: Stage) -> Event {
        match s {
            Stage::Notify => self.notify,
            Stage::Isr => self.isr(),
            Stage::Eoi => m.eoi_event(0, self.intid),
        }
    }
}

/// virtio-blk reads of `len` bytes in `segs` segments from sector 0 into the same buffer.
struct Blk {
    q: GuestQueue,
    irq: Irq,
    data: u64,
    len: u64,
    status: u64,
}

impl Blk {
    fn new(m: &mut Machine, len: u64, segs: u64, stage: Stage) -> Blk {
        let mut qs = m.virtio_probe(SLOT_BLK, &[0]);
        let q = qs.remove(0);
        let hdr = m.alloc(16, 16);
        let data = m.alloc(len, 4096);
        let status = m.alloc(1, 1);
        let n = segs + 2;
        let table = m.alloc(16 * n, 16);
        let mem = m.mem();
        // struct virtio_blk_outhdr: type IN, ioprio 0, sector 0.
        mem.write(GuestPhysAddr(hdr), &[0u8; 16]).expect("hdr");
        GuestQueue::write_desc(mem, table, hdr, 16, NEXT, 1);
        let seg = len / segs;
        for i in 0..segs {
            GuestQueue::write_desc(
                mem,
                table + 16 * (1 + i),
                data + i * seg,
                seg as u32,
                WRITE | NEXT,
                (2 + i) as u16,
            );
        }
        GuestQueue::write_desc(mem, table + 16 * (n - 1), status, 1, WRITE, 0);
        q.set_desc(mem, 0, table, (16 * n) as u32, INDIRECT, 0);
        let notify = q.notify_event(0);
        Blk {
            irq: Irq {
                slot: SLOT_BLK,
                intid: m.intx_intid(SLOT_BLK),
                stage,
                notify,
                bar: m.bars[usize::from(SLOT_BLK)],
            },
            q,
            data,
            len,
            status,
        }
    }
}

impl Cycle for Blk {
    fn prep(&mut self, m: &mut Machine) {
        let mem = m.mem();
        self.q.want_interrupt(mem, true);
        self.q.publish(mem, 0);
        m.set_reg(0, RT, u64::from(self.q.index));
        self.irq.run(m, true);
    }
    fn measured(&self, m: &Machine) -> Measured {
        Measured::Exit(self.irq.event(m, self.irq.stage))
    }
    fn after(&mut self, m: &mut Machine, _: Reply) {
        self.irq.run(m, false);
        self.q.last_used = self.q.last_used.wrapping_add(1);
    }
    fn check(&mut self, m: &mut Machine) {
        let mem = m.mem();
        mem.write_u16(GuestPhysAddr(self.status), 0xff)
            .expect("status");
        mem.fill(GuestPhysAddr(self.data), self.len, 0)
            .expect("clear");
        self.prep(m);
        let ev = self.irq.event(m, self.irq.stage);
        let r = m.exit(ev);
        self.after(m, r);
        let mem = m.mem();
        assert_eq!(self.q.used_idx(mem), self.q.last_used, "request completed");
        let (id, len) = self.q.used_elem(mem, self.q.last_used.wrapping_sub(1));
        assert_eq!((id, u64::from(len)), (0, self.len + 1), "used element");
        assert_eq!(
            mem.read_u16(GuestPhysAddr(self.status)).expect("s") & 0xff,
            0
        );
        let mut buf = vec![0u8; self.len as usize];
        mem.read(GuestPhysAddr(self.data), &mut buf).expect("data");
        assert_eq!(&buf[..24], b"SEL4-VMM-DISK-PATTERN-v1");
        assert!(
            buf[24..]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == ((i + 24) % 251) as u8)
        );
        let intx = m.vm.gic().list_register(VcpuId(0), 0);
        assert_eq!(intx, Some(vgic::ListRegister::Free), "INTx EOI'd");
        let _ = self.irq.slot;
    }
}

/// A 1514-byte Ethernet frame (1500-byte IPv4 packet), after a 12-byte virtio-net header.
fn frame(ping: bool) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    let dst = if ping {
        VMM_MAC
    } else {
        [0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc]
    };
    f.extend_from_slice(&dst);
    f.extend_from_slice(&GUEST_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&1500u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = if ping { 1 } else { 17 };
    ip[12..16].copy_from_slice(&GUEST_IP);
    ip[16..20].copy_from_slice(&if ping { VMM_IP } else { [10, 0, 2, 99] });
    let c = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut icmp: Vec<u8> = (0..1480u32).map(|i| (i * 7) as u8).collect();
    icmp[..8].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
    let c = inet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&icmp);
    assert_eq!(f.len(), 12 + 14 + 1500);
    f
}

/// Guest RX buffer length (Linux's small buffers: header + 1518).
const RX_BUF: u32 = 12 + 1518;

/// A TX notify with no interrupt (virtio-net TX, virtio-console TX).
struct Tx {
    q: GuestQueue,
    len: u64,
    slot: u8,
}

impl Tx {
    fn net(m: &mut Machine) -> Tx {
        let mut qs = m.virtio_probe(SLOT_NET, &[0, 1]);
        let tx = qs.remove(1);
        post_rx(m, &mut qs[0]);
        let f = frame(false);
        let buf = m.alloc(f.len() as u64, 64);
        m.mem().write(GuestPhysAddr(buf), &f).expect("frame");
        tx.set_desc(m.mem(), 0, buf, f.len() as u32, 0, 0);
        Tx {
            q: tx,
            len: f.len() as u64,
            slot: SLOT_NET,
        }
    }

    fn console(m: &mut Machine) -> Tx {
        let mut qs = m.virtio_probe(SLOT_CONSOLE, &[0, 1]);
        let tx = qs.remove(1);
        post_rx(m, &mut qs[0]);
        let buf = m.alloc(64, 64);
        m.mem().write(GuestPhysAddr(buf), LINE).expect("line");
        tx.set_desc(m.mem(), 0, buf, 64, 0, 0);
        Tx {
            q: tx,
            len: 64,
            slot: SLOT_CONSOLE,
        }
    }
}

/// Posts every RX buffer the queue holds (as the driver does at probe) and kicks.
fn post_rx(m: &mut Machine, rx: &mut GuestQueue) {
    let bufs = m.alloc(u64::from(rx.size) * 2048, 4096);
    let mem = m.mem();
    for i in 0..rx.size {
        rx.set_desc(mem, i, bufs + 2048 * u64::from(i), RX_BUF, WRITE, 0);
        rx.publish(mem, i);
    }
    rx.want_interrupt(mem, true);
    let ev = rx.notify_event(0);
    m.set_reg(0, RT, u64::from(rx.index));
    m.exit(ev);
}

impl Cycle for Tx {
    fn prep(&mut self, m: &mut Machine) {
        let mem = m.mem();
        self.q.want_interrupt(mem, false);
        self.q.publish(mem, 0);
        m.set_reg(0, RT, u64::from(self.q.index));
    }
    fn measured(&self, _: &Machine) -> Measured {
        Measured::Exit(self.q.notify_event(0))
    }
    fn after(&mut self, _: &mut Machine, _: Reply) {
        // free_old_xmit: the driver reclaims the buffer from the used ring.
        self.q.last_used = self.q.last_used.wrapping_add(1);
    }
    fn check(&mut self, m: &mut Machine) {
        self.prep(m);
        let ev = self.q.notify_event(0);
        m.exit(ev);
        self.after(m, Reply::Resume);
        assert_eq!(self.q.used_idx(m.mem()), self.q.last_used, "TX used");
        let intx = m.intx_intid(self.slot);
        assert!(m.lr_holding(0, intx).is_none(), "no TX interrupt");
        let _ = self.len;
    }
}

/// A ping of the VMM: TX notify; the echo reply lands in an RX buffer and interrupts.
struct Ping {
    tx: GuestQueue,
    rx: GuestQueue,
    irq: Irq,
}

impl Ping {
    fn new(m: &mut Machine, stage: Stage) -> Ping {
        let mut qs = m.virtio_probe(SLOT_NET, &[0, 1]);
        let tx = qs.remove(1);
        let mut rx = qs.remove(0);
        post_rx(m, &mut rx);
        let f = frame(true);
        let buf = m.alloc(f.len() as u64, 64);
        m.mem().write(GuestPhysAddr(buf), &f).expect("frame");
        tx.set_desc(m.mem(), 0, buf, f.len() as u32, 0, 0);
        let notify = tx.notify_event(0);
        Ping {
            tx,
            rx,
            irq: Irq {
                slot: SLOT_NET,
                intid: m.intx_intid(SLOT_NET),
                stage,
                notify,
                bar: m.bars[usize::from(SLOT_NET)],
            },
        }
    }
}

impl Cycle for Ping {
    fn prep(&mut self, m: &mut Machine) {
        let mem = m.mem();
        self.tx.want_interrupt(mem, false);
        self.rx.want_interrupt(mem, true);
        self.tx.publish(mem, 0);
        m.set_reg(0, RT, u64::from(self.tx.index));
        self.irq.run(m, true);
    }
    fn measured(&self, m: &Machine) -> Measured {
        Measured::Exit(self.irq.event(m, self.irq.stage))
    }
    fn after(&mut self, m: &mut Machine, _: Reply) {
        self.irq.run(m, false);
        self.tx.last_used = self.tx.last_used.wrapping_add(1);
        // The RX handler takes the reply and gives the buffer back.
        let mem = m.mem();
        let (id, _) = self.rx.used_elem(mem, self.rx.last_used);
        self.rx.last_used = self.rx.last_used.wrapping_add(1);
        self.rx.publish(mem, id as u16);
    }
    fn check(&mut self, m: &mut Machine) {
        let rx_before = self.rx.last_used;
        self.prep(m);
        let ev = self.irq.event(m, self.irq.stage);
        let r = m.exit(ev);
        let mem = m.mem();
        let (id, len) = self.rx.used_elem(mem, rx_before);
        assert_eq!(len, 12 + 14 + 1500, "echo reply of {id} received");
        let at = mem.read_u64(GuestPhysAddr(self.rx.desc + 16 * u64::from(id)));
        let at = at.expect("desc");
        let mut reply = vec![0u8; len as usize];
        mem.read(GuestPhysAddr(at), &mut reply).expect("reply");
        assert_eq!(&reply[12..18], &GUEST_MAC, "to the guest");
        assert_eq!(reply[12 + 14 + 20], 0, "ICMP echo reply");
        self.after(m, r);
        let _ = self.irq.slot;
    }
}

struct Poll;

impl Cycle for Poll {
    fn prep(&mut self, _: &mut Machine) {}
    fn measured(&self, _: &Machine) -> Measured {
        Measured::Poll
    }
    fn after(&mut self, _: &mut Machine, _: Reply) {}
    fn batchable(&self) -> bool {
        true
    }
    fn check(&mut self, _: &mut Machine) {}
}

struct Null;

impl Cycle for Null {
    fn prep(&mut self, _: &mut Machine) {}
    fn measured(&self, _: &Machine) -> Measured {
        Measured::Nothing
    }
    fn after(&mut self, _: &mut Machine, _: Reply) {}
    fn batchable(&self) -> bool {
        true
    }
    fn check(&mut self, _: &mut Machine) {}
}

/// A brought-up machine with every virtio device probed, and the cycle of scenario `name`.
pub fn build(name: &str) -> Option<(Machine, Box<dyn Cycle>)> {
    use AccessSize::Word;
    let mut m = crate::machine::new_machine();
    m.bring_up();
    let gicd_enable = 0b11_1010;
    let cycle: Box<dyn Cycle> = match name {
        "gicd_read" => Box::new(Reg {
            ev: load(0, GICD, Word),
            store: None,
            expect: Some(0x12),
        }),
        "gicd_write" => {
            m.set_reg(0, RT, gicd_enable);
            Box::new(Reg {
                ev: store(0, GICD + 0x104, Word),
                store: Some((0, gicd_enable)),
                expect: None,
            })
        }
        "gicd_prio_write" => {
            m.set_reg(0, RT, 0xa0a0_a0a0);
            Box::new(Reg {
                ev: store(0, GICD + 0x420, Word),
                store: Some((0, 0xa0a0_a0a0)),
                expect: None,
            })
        }
        "gicr_waker_read" => Box::new(Reg {
            ev: load(0, GICR + 0x14, Word),
            store: None,
            expect: Some(0),
        }),
        "gicr_read" => Box::new(Reg {
            ev: load(0, GICR + 0x1_0100, Word),
            store: None,
            expect: Some(0xffff | 1 << 27),
        }),
        "gicr_write" => {
            m.set_reg(0, RT, 0xffff | 1 << 27);
            Box::new(Reg {
                ev: store(0, GICR + 0x1_0100, Word),
                store: Some((0, 0xffff | 1 << 27)),
                expect: None,
            })
        }
        "pci_cfg_read" => Box::new(Reg {
            ev: load(0, m.ecam(SLOT_BLK, 0x4), Word),
            store: None,
            expect: Some(0x0010_0006),
        }),
        "blk_read_4k" => Box::new(Blk::new(&mut m, 4096, 1, Stage::Notify)),
        "blk_read_64k" => Box::new(Blk::new(&mut m, 65536, 1, Stage::Notify)),
        "blk_read_64k_16seg" => Box::new(Blk::new(&mut m, 65536, 16, Stage::Notify)),
        "virtio_isr_read" => Box::new(Blk::new(&mut m, 4096, 1, Stage::Isr)),
        "eoi_maintenance" => Box::new(Blk::new(&mut m, 4096, 1, Stage::Eoi)),
        "net_tx_1500" => Box::new(Tx::net(&mut m)),
        "console_tx_64" => Box::new(Tx::console(&mut m)),
        "net_ping_1500" => Box::new(Ping::new(&mut m, Stage::Notify)),
        "psci_version" => Box::new(Psci),
        "sgi" => Box::new(Sgi { measure_eoi: false }),
        "sgi_eoi" => Box::new(Sgi { measure_eoi: true }),
        "pl011_tx_byte" => Box::new(Pl011Tx { n: 0 }),
        "poll_after_exit" => {
            // Every device probed and live, as after boot.
            let _ = Tx::console(&mut m);
            let _ = Blk::new(&mut m, 4096, 1, Stage::Notify);
            let _ = Tx::net(&mut m);
            Box::new(Poll)
        }
        "null" => Box::new(Null),
        _ => return None,
    };
    Some((m, cycle))
}

/// Data-path tests: a scenario run as whole requests, and the bytes each moves.
#[derive(Clone, Copy, Debug)]
pub struct DataPath {
    /// Key.
    pub name: &'static str,
    /// The scenario whose cycle is one request.
    pub scenario: &'static str,
    /// What a request is.
    pub what: &'static str,
    /// Bytes a plain memcpy moves for the same request.
    pub bytes: u64,
    /// memcpy calls of `bytes / copies` each (a ping copies a frame each way).
    pub copies: u64,
}

/// The data-path tests.
pub const DATA_PATHS: &[DataPath] = &[
    DataPath {
        name: "blk_read_4k",
        scenario: "blk_read_4k",
        what: "virtio-blk 4 KiB read: notify + ISR load + EOI maintenance",
        bytes: 4096,
        copies: 1,
    },
    DataPath {
        name: "blk_read_64k",
        scenario: "blk_read_64k",
        what: "virtio-blk 64 KiB read (1 segment): notify + ISR load + EOI maintenance",
        bytes: 65536,
        copies: 1,
    },
    DataPath {
        name: "blk_read_64k_16seg",
        scenario: "blk_read_64k_16seg",
        what: "virtio-blk 64 KiB read (16 x 4 KiB segments): notify + ISR load + EOI maintenance",
        bytes: 65536,
        copies: 1,
    },
    DataPath {
        name: "net_tx_1500",
        scenario: "net_tx_1500",
        what: "virtio-net TX of a 1500-byte frame (1526 bytes with headers): notify",
        bytes: 1526,
        copies: 1,
    },
    DataPath {
        name: "net_ping_1500",
        scenario: "net_ping_1500",
        what: "virtio-net 1500-byte ping of the VMM: TX notify (echo reply to RX) + ISR load + EOI maintenance",
        bytes: 2 * 1526,
        copies: 2,
    },
];
