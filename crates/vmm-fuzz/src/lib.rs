//! Fuzz targets over everything a guest can reach, each a plain function of the fuzzer's bytes
//! so that `fuzz/` (cargo-fuzz, libFuzzer) runs them and the tests replay their corpus.
//!
//! The VM targets drive a real `vmm::Vm` (the vGIC, the MMIO bus with PL011 and virtio-pci
//! console, block and net) after a Linux-like bring-up, with a sequence of operations decoded
//! from the input: trapped loads and stores anywhere in the emulated address map with any
//! syndrome, raw syndromes, SMCs, maintenance and timer events, bytes written into guest RAM
//! (descriptor tables and rings included), queue notifications and device polls. After every
//! operation they check the invariants, not only the absence of a crash:
//!
//! * every guest-memory access lies inside guest RAM (seen through `GuestMemory`'s observer);
//! * the work per event is bounded ([`MAX_ACCESSES`], [`MAX_BYTES`]);
//! * the PC of the vCPU that exited moves by 0, 2 (T32) or 4 bytes and no other vCPU's moves;
//! * the VM keeps answering: after any sequence, a PSCI_VERSION call still returns 1.1.
//!
//! A violated invariant panics, which is what libFuzzer reports.

// Panicking is how a fuzz target reports a broken invariant.
#![allow(clippy::panic)]

use std::cell::Cell;

use arm_fault::{AccessSize, Esr};
use guest_mem::{AccessObserver, GuestPhysAddr};
use hypervisor::VcpuId;
use vmm::{Event, Reply};
use vmm_bench::machine::{
    self, GICD, GICR, GuestQueue, Machine, RAM_BASE, RAM_SIZE, SLOT_BLK, SLOT_CONSOLE, SLOT_NET,
    UART,
};

/// Most guest-memory accesses one event may make: every queue of every device walked in full
/// (3 devices, 2 queues, 256 descriptors, a few accesses each) with room to spare.
pub const MAX_ACCESSES: u64 = 3 * 2 * 256 * 16;
/// Most bytes one event may move to or from guest RAM (the whole 1 MiB disk, twice, plus
/// rings).
pub const MAX_BYTES: u64 = 4 << 20;
/// Most operations one input runs (inputs are capped so that one run stays short).
pub const MAX_OPS: usize = 512;

/// Watches guest-memory accesses.
struct Watch {
    accesses: Cell<u64>,
    bytes: Cell<u64>,
    outside: Cell<Option<(u64, u64)>>,
}

impl AccessObserver for Watch {
    fn observe(&self, addr: GuestPhysAddr, len: u64, _write: bool) {
        self.accesses.set(self.accesses.get().saturating_add(1));
        self.bytes.set(self.bytes.get().saturating_add(len));
        let end = addr.0.checked_add(len);
        let inside = addr.0 >= RAM_BASE && end.is_some_and(|e| e <= RAM_BASE + RAM_SIZE as u64);
        if !inside {
            self.outside.set(Some((addr.0, len)));
        }
    }
}

thread_local! {
    // One per thread, leaked once: the machine's memory takes a 'static observer.
    static WATCH: &'static Watch = Box::leak(Box::new(Watch {
        accesses: Cell::new(0),
        bytes: Cell::new(0),
        outside: Cell::new(None),
    }));
}

impl Watch {
    fn reset(&self) {
        self.accesses.set(0);
        self.bytes.set(0);
    }
}

/// Reads the fuzzer's bytes; runs dry as zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    fn size(&mut self) -> AccessSize {
        match self.u8() & 3 {
            0 => AccessSize::Byte,
            1 => AccessSize::Half,
            2 => AccessSize::Word,
            _ => AccessSize::Double,
        }
    }
}

/// Which part of the VM an input aims at: the operations it draws from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Focus {
    /// Everything: any exit anywhere in the address map, any syndrome.
    All,
    /// GIC distributor and redistributor registers, SGIs, maintenance and timer events.
    Vgic,
    /// PCI ECAM configuration space of every slot.
    PciEcam,
    /// virtio-blk: guest-RAM bytes, its BAR, its notifications.
    VirtioBlk,
    /// virtio-net.
    VirtioNet,
    /// virtio-console.
    VirtioConsole,
    /// PSCI and SMCCC calls.
    Psci,
}

struct Rig {
    m: Machine,
    watch: &'static Watch,
    queues: Vec<(u8, GuestQueue)>,
}

impl Rig {
    fn new() -> Rig {
        let watch = WATCH.with(|w| *w);
        watch.reset();
        watch.outside.set(None);
        let mut m = Machine::observed(Some(watch));
        m.bring_up();
        let mut queues = Vec::new();
        for (slot, qs) in [
            (SLOT_CONSOLE, &[0u16, 1][..]),
            (SLOT_BLK, &[0][..]),
            (SLOT_NET, &[0, 1][..]),
        ] {
            for q in m.virtio_probe(slot, qs) {
                queues.push((slot, q));
            }
        }
        Rig { m, watch, queues }
    }

    /// Runs one event and checks the per-event invariants.
    fn event(&mut self, ev: Event) -> Reply {
        let exiting = match ev {
            Event::Exit { vcpu, .. } | Event::Hvc { vcpu } => Some(vcpu),
            _ => None,
        };
        let pcs = self.m.vm.hyp.pc;
        self.watch.reset();
        let reply = self.m.exit(ev);
        self.check(&pcs, exiting, &format!("{ev:?}"));
        reply
    }

    fn poll(&mut self) {
        let pcs = self.m.vm.hyp.pc;
        self.watch.reset();
        let pci = self.m.pci.clone();
        self.m.vm.with_device_ctx(|ctx| pci.poll(ctx));
        self.check(&pcs, None, "poll");
    }

    fn check(&self, before: &[u64; 4], exiting: Option<VcpuId>, what: &str) {
        if let Some((addr, len)) = self.watch.outside.get() {
            panic!("{what}: guest-memory access {addr:#x}+{len:#x} outside guest RAM");
        }
        let accesses = self.watch.accesses.get();
        let bytes = self.watch.bytes.get();
        assert!(
            accesses <= MAX_ACCESSES && bytes <= MAX_BYTES,
            "{what}: unbounded work: {accesses} accesses, {bytes} bytes"
        );
        for (v, (old, new)) in before.iter().zip(self.m.vm.hyp.pc.iter()).enumerate() {
            let moved = new.wrapping_sub(*old);
            let allowed = exiting.is_some_and(|e| e.index() == v);
            // 4 for an A64 (or A32) instruction, 2 for a 16-bit T32 one (ESR.IL = 0).
            assert!(
                moved == 0 || (allowed && (moved == 4 || moved == 2)),
                "{what}: vcpu{v} PC moved by {moved:#x}"
            );
        }
    }

    /// One operation drawn from `input` for `focus`.
    fn op(&mut self, focus: Focus, input: &mut Input<'_>) -> Option<Reply> {
        let vcpu = input.u8() & 3;
        let kind = input.u8();
        Some(match focus {
            Focus::All => match kind % 8 {
                0 => {
                    let at = anywhere(input);
                    self.access(vcpu, input, at)
                }
                1 => self.raw_exit(vcpu, input),
                2 => self.ram_write(input),
                3 => self.notify(vcpu, None, input),
                4 => self.smc(vcpu, input),
                5 => self.gic_event(vcpu, input),
                6 => {
                    self.poll();
                    return None;
                }
                _ => {
                    let at = gic_addr(input);
                    self.access(vcpu, input, at)
                }
            },
            Focus::Vgic => match kind % 4 {
                0 | 1 => {
                    let at = gic_addr(input);
                    self.access(vcpu, input, at)
                }
                2 => self.gic_event(vcpu, input),
                _ => self.sgi(vcpu, input),
            },
            Focus::PciEcam => {
                let slot = u64::from(input.u8() % 4);
                let reg = u64::from(input.u16() & 0xfff);
                self.access(vcpu, input, Machine::ecam(slot as u8, reg))
            }
            Focus::VirtioBlk | Focus::VirtioNet | Focus::VirtioConsole => {
                let slot = match focus {
                    Focus::VirtioBlk => SLOT_BLK,
                    Focus::VirtioNet => SLOT_NET,
                    _ => SLOT_CONSOLE,
                };
                match kind % 5 {
                    0 | 1 => self.ram_write(input),
                    2 => self.notify(vcpu, Some(slot), input),
                    3 => {
                        let bar = self.m.bars.get(usize::from(slot)).copied().unwrap_or(0);
                        let at = bar + u64::from(input.u16() & 0x3fff);
                        self.access(vcpu, input, at)
                    }
                    _ => {
                        self.poll();
                        return None;
                    }
                }
            }
            Focus::Psci => self.smc(vcpu, input),
        })
    }

    /// A trapped load or store of `vcpu` at `addr` with a well-formed syndrome.
    fn access(&mut self, vcpu: u8, input: &mut Input<'_>, addr: u64) -> Reply {
        let size = input.size();
        let write = input.u8() & 1 != 0;
        let reg = input.u8() % 32;
        let value = input.u64();
        self.m.set_reg(vcpu, reg, value);
        let esr = machine::esr_dabt(size, reg, write);
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr,
            ipa: GuestPhysAddr(addr),
        })
    }

    /// Any syndrome at all, any IPA: what a confused or hostile back-end report looks like.
    fn raw_exit(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let esr = Esr(u64::from(input.u32()));
        let ipa = anywhere(input);
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr,
            ipa: GuestPhysAddr(ipa),
        })
    }

    /// The guest writes 8 bytes into its RAM, mostly into the rings and buffers.
    fn ram_write(&mut self, input: &mut Input<'_>) -> Reply {
        let which = usize::from(input.u8());
        let off = u64::from(input.u16());
        let base = match self.queues.get(which % self.queues.len().max(1)) {
            Some((_, q)) if which & 0x80 == 0 => [q.desc, q.avail, q.used]
                .get(usize::from(input.u8() % 3))
                .copied()
                .unwrap_or(q.desc),
            _ => RAM_BASE + (32 << 20),
        };
        let bytes = input.u64().to_le_bytes();
        // The guest's own write: not counted against the VMM.
        let _ = self.m.mem().write(GuestPhysAddr(base + off), &bytes);
        Reply::Nothing
    }

    /// A queue notification (optionally of one device), after publishing an available index.
    fn notify(&mut self, vcpu: u8, slot: Option<u8>, input: &mut Input<'_>) -> Reply {
        let pick = usize::from(input.u8());
        let candidates: Vec<&GuestQueue> = self
            .queues
            .iter()
            .filter(|(s, _)| slot.is_none_or(|want| *s == want))
            .map(|(_, q)| q)
            .collect();
        let Some(q) = candidates.get(pick % candidates.len().max(1)).copied() else {
            return Reply::Nothing;
        };
        let idx = input.u16();
        let _ = self.m.mem().write_u16(GuestPhysAddr(q.avail + 2), idx);
        let ev = q.notify_event(vcpu);
        self.event(ev)
    }

    /// An SMC with x0..x3 from the input, x0 usually a PSCI or SMCCC function.
    fn smc(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        const FUNCTIONS: [u32; 16] = [
            0x8400_0000,
            0x8400_0001,
            0xc400_0001,
            0x8400_0002,
            0x8400_0003,
            0xc400_0003,
            0x8400_0004,
            0xc400_0004,
            0x8400_0006,
            0x8400_0007,
            0x8400_000a,
            0x8000_0000,
            0x8000_0001,
            0x8000_8000,
            0x8000_7fff,
            0x8400_000c,
        ];
        let pick = input.u8();
        let x0 = match FUNCTIONS.get(usize::from(pick % 20)) {
            Some(f) => u64::from(*f),
            None => input.u64(),
        };
        self.m.set_reg(vcpu, 0, x0);
        for r in 1..4 {
            let v = match input.u8() % 3 {
                0 => u64::from(input.u8() % 6),
                1 => RAM_BASE + u64::from(input.u32()),
                _ => input.u64(),
            };
            self.m.set_reg(vcpu, r, v);
        }
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: machine::esr_smc(),
            ipa: GuestPhysAddr(0),
        })
    }

    /// A maintenance, virtual-timer or pass-through interrupt event.
    fn gic_event(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let ev = match input.u8() % 4 {
            0 => Event::Maintenance {
                vcpu: VcpuId(vcpu),
                lr: Some(usize::from(input.u8() % 8)),
            },
            1 => Event::Maintenance {
                vcpu: VcpuId(vcpu),
                lr: None,
            },
            2 => Event::Vppi {
                vcpu: VcpuId(vcpu),
                intid: u32::from(input.u8()),
            },
            _ => Event::Irq {
                intid: u32::from(input.u16() % 1100),
            },
        };
        self.event(ev)
    }

    /// `msr ICC_SGI1R_EL1, x1` with any value.
    fn sgi(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let value = input.u64();
        self.m.set_reg(vcpu, 1, value);
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: machine::esr_msr_sgi1r(1),
            ipa: GuestPhysAddr(0),
        })
    }
}

/// An address in the GIC frames (distributor, or a redistributor of any vCPU or none).
fn gic_addr(input: &mut Input<'_>) -> u64 {
    if input.u8() & 1 == 0 {
        GICD + u64::from(input.u16())
    } else {
        GICR + u64::from(input.u32() % (5 * 0x2_0000))
    }
}

/// Any address, biased towards the emulated windows and their edges.
fn anywhere(input: &mut Input<'_>) -> u64 {
    let p = machine::PLATFORM;
    let bases = [
        GICD,
        GICR,
        UART,
        p.pci.ecam.base.0,
        p.pci.mmio.base.0,
        RAM_BASE,
        0,
        u64::MAX - 0xffff,
    ];
    let pick = usize::from(input.u8());
    let off = u64::from(input.u32());
    match bases.get(pick % 10) {
        Some(b) => b.wrapping_add(off),
        None => input.u64(),
    }
}

/// Drives the VM with the operations `data` decodes to, for `focus`, checking the invariants.
pub fn fuzz_vm(focus: Focus, data: &[u8]) {
    let mut rig = Rig::new();
    let mut input = Input { data };
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        if let Some(Reply::Shutdown(_)) = rig.op(focus, &mut input) {
            // SYSTEM_OFF / RESET or a fatal exit: the VM is over, as in the root task.
            return;
        }
    }
    // Still alive: the firmware interface answers.
    rig.m.set_reg(0, 0, 0x8400_0000);
    let r = rig.event(Event::Exit {
        vcpu: VcpuId(0),
        esr: machine::esr_smc(),
        ipa: GuestPhysAddr(0),
    });
    if r == Reply::Resume {
        assert_eq!(rig.m.reg(0, 0), 0x1_0001, "PSCI_VERSION after the sequence");
    }
}

/// The guest device tree builder over a (mutated) board DTB, for each platform: it returns an
/// error or a DTB that verifies, whose `/memory` is the platform's guest RAM and no more.
pub fn fuzz_guest_dtb(data: &[u8]) {
    for p in vmm_platform::PLATFORMS {
        let initrd = guest_dtb::Initrd::at_load_region(p, 0x1000);
        let Ok(dtb) = guest_dtb::build(p, data, Some(initrd)) else {
            continue;
        };
        if let Err(e) = guest_dtb::verify(&dtb) {
            panic!("{}: built DTB does not verify: {e}", p.name);
        }
        let ram = p.ram.range;
        let name = format!("memory@{:x}\0", ram.base.0);
        let mut reg = Vec::new();
        for v in [ram.base.0, ram.size] {
            reg.extend_from_slice(&v.to_be_bytes());
        }
        assert!(
            contains(&dtb, name.as_bytes()) && contains(&dtb, &reg),
            "{}: no /{name} with the platform's RAM as reg",
            p.name
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A fuzz target: the fuzzer's bytes in, a panic if an invariant breaks.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/` and the corpus directories name them.
pub const TARGETS: [(&str, Target); 8] = [
    ("vm_all", |d| fuzz_vm(Focus::All, d)),
    ("vgic", |d| fuzz_vm(Focus::Vgic, d)),
    ("pci_ecam", |d| fuzz_vm(Focus::PciEcam, d)),
    ("virtio_blk", |d| fuzz_vm(Focus::VirtioBlk, d)),
    ("virtio_net", |d| fuzz_vm(Focus::VirtioNet, d)),
    ("virtio_console", |d| fuzz_vm(Focus::VirtioConsole, d)),
    ("psci", |d| fuzz_vm(Focus::Psci, d)),
    ("guest_dtb", fuzz_guest_dtb),
];

/// Feeds the invariant checks an access just past guest RAM, as a device model escaping it
/// would make: they must panic (the replay tests prove the checks are live).
#[doc(hidden)]
pub fn self_test_outside_access() {
    let rig = Rig::new();
    let pcs = rig.m.vm.hyp.pc;
    rig.watch
        .observe(GuestPhysAddr(RAM_BASE + RAM_SIZE as u64 - 4), 8, true);
    rig.check(&pcs, None, "self-test");
}
