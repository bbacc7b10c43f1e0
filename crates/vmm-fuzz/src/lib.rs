//! Fuzz targets over everything a guest can reach, each a plain function of the fuzzer's bytes
//! so that `fuzz/` (cargo-fuzz, libFuzzer) runs them and the tests replay their corpus.
//!
//! The VM targets drive a real `vmm::Vm` for a platform table, QEMU virt or Jetson AGX Orin (the
//! first input byte picks), with the vGIC, the MMIO bus (PL011 where the platform has one) and
//! virtio-pci console, block and net, after a Linux-like bring-up ([`machine`]). The rest of the
//! input is a sequence of operations ([`Op`]): trapped loads and stores anywhere in the address
//! map with any syndrome, raw syndromes, SMCs, maintenance, timer and pass-through interrupt
//! events, descriptors, ring entries and bytes written into guest RAM, queue notifications and
//! device polls. After every operation the rig checks the invariants, not only the absence of a
//! crash:
//!
//! * every guest-memory access lies inside guest RAM (`GuestMemory`'s observer, [`machine::Watch`]);
//! * the work per event is bounded: guest-memory accesses and bytes moved stay under a bound
//!   derived from the queue sizes ([`Bounds`]);
//! * the PC of the vCPU that exited moves by 0, 2 (T32) or 4 bytes and no other vCPU's moves;
//! * what the VMM asks of the hypervisor is valid (vCPU and list-register indices, INTIDs,
//!   entry points in RAM, no stage-2 change at run time), and the vGIC never holds one INTID
//!   in two list registers of a vCPU;
//! * at the end the VM still answers: PCI enumeration finds the three devices, and (unless the
//!   guest ended it) PSCI_VERSION returns 1.1.
//!
//! A violated invariant panics, which is what libFuzzer reports.

#![forbid(unsafe_code)]
// A violated invariant panics: that is what libFuzzer reports and the replay tests catch.
#![allow(clippy::panic)]

pub mod machine;

use std::cell::RefCell;

use arm_fault::{AccessSize, Esr};
use guest_mem::{GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;
use machine::{BUF_OFF, GuestQueue, Machine, RAM_LEN, Watch};
use vmm::{Event, Reply};
use vmm_platform::VirtioKind;
use vmm_platform::{GICR_STRIDE, Platform};

/// Most operations one input runs.
pub const MAX_OPS: usize = 512;

/// Which part of the VM an input aims at: the operations it draws from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Focus {
    /// Everything: any exit anywhere in the address map, any syndrome.
    All,
    /// GIC distributor and redistributor registers, SGIs, maintenance and timer events.
    Vgic,
    /// PCI ECAM configuration space of every slot (and the BARs it places).
    PciEcam,
    /// virtio-blk: descriptors, rings and buffers in guest RAM, its BAR, its notifications.
    VirtioBlk,
    /// virtio-net.
    VirtioNet,
    /// virtio-console.
    VirtioConsole,
    /// PSCI and SMCCC calls.
    Psci,
    /// virtio-blk driven only by a well-behaved driver: spec-valid requests of every shape
    /// (direct chains and indirect tables up to the queue's size, up to `seg_max` segments).
    /// Liveness: none resets the device, each completes with VIRTIO_BLK_S_OK.
    VirtioBlkValid,
}

/// One operation of an input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Op {
    /// A load or store with a well-formed syndrome anywhere in the address map.
    Access,
    /// Any syndrome at any IPA.
    RawExit,
    /// 8 bytes written by the guest into a ring or a buffer.
    RamWrite,
    /// A whole descriptor written into a queue's table.
    Desc,
    /// A ring entry published (entry, then `avail.idx`), then the queue notified.
    Publish,
    /// A notification, after storing any `avail.idx`.
    Notify,
    /// An SMC (PSCI / SMCCC).
    Smc,
    /// A maintenance, virtual-timer or pass-through interrupt event.
    GicEvent,
    /// The root task's device poll.
    Poll,
    /// A load or store in the GIC frames.
    GicAccess,
    /// `msr ICC_SGI1R_EL1`.
    Sgi,
    /// A load or store in ECAM space.
    Ecam,
    /// A load or store in a device's BAR.
    Bar,
    /// 8 bytes written into the buffer area.
    BufWrite,
    /// A spec-valid virtio-blk request, published, notified and checked.
    BlkRequest,
}

impl Focus {
    fn ops(self) -> &'static [Op] {
        use Op::*;
        match self {
            Focus::All => &[
                Access, RawExit, RamWrite, Desc, Publish, Notify, Smc, GicEvent, Poll, GicAccess,
                Sgi, Ecam, Bar, BufWrite,
            ],
            Focus::Vgic => &[GicAccess, GicAccess, GicEvent, Sgi],
            Focus::PciEcam => &[Ecam, Ecam, Ecam, Bar],
            Focus::VirtioBlk | Focus::VirtioNet | Focus::VirtioConsole => &[
                RamWrite, Desc, Desc, Publish, Notify, Bar, Poll, BufWrite, Ecam,
            ],
            Focus::Psci => &[Smc],
            Focus::VirtioBlkValid => &[BlkRequest, BlkRequest, BlkRequest, Poll],
        }
    }

    /// The device a virtio focus aims at.
    fn device(self) -> Option<VirtioKind> {
        match self {
            Focus::VirtioBlk | Focus::VirtioBlkValid => Some(VirtioKind::Block),
            Focus::VirtioNet => Some(VirtioKind::Net),
            Focus::VirtioConsole => Some(VirtioKind::Console),
            _ => None,
        }
    }

    /// The kind byte that selects `op` under this focus, if it offers it.
    pub fn kind_of(self, op: Op) -> Option<u8> {
        self.ops()
            .iter()
            .position(|&o| o == op)
            .and_then(|i| u8::try_from(i).ok())
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

/// The bound on the work of one event, derived from the queues the drivers set up and the
/// queues' per-round budgets (`virtio_devices::queue`). An event runs at most one round of
/// each queue (a notification one queue, a poll the pending ones and the device's own work);
/// a round pops at most `size` chains of at most `size` descriptors, whose buffers add up to
/// at most `ROUND_BYTES` (or one chain of at most `MAX_CHAIN_LEN`). Per queue and round that
/// is `size` ring reads, `size * size` descriptor reads, as many buffer pieces plus one per
/// 256 bytes copied (the devices' bounce buffers), and two used-ring writes per chain.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Most guest-memory accesses per event.
    pub accesses: u64,
    /// Most bytes read or written in guest memory per event.
    pub bytes: u64,
}

impl Bounds {
    fn for_queues(queues: &[GuestQueue]) -> Bounds {
        use virtio_devices::queue::{MAX_CHAIN_LEN, ROUND_BYTES};
        let data = ROUND_BYTES.max(MAX_CHAIN_LEN);
        // Outside the queues: the MMIO access itself, ISR and config reads (a few each).
        let mut accesses = 64u64;
        let mut bytes = 4096u64;
        for q in queues {
            let n = u64::from(q.size);
            accesses += 2 * n * n + 8 * n + data / 256 + 16;
            bytes += 16 * n * n + 16 * n + data + 64;
        }
        Bounds { accesses, bytes }
    }
}

struct Rig<'m> {
    m: Machine<'m>,
    watch: &'m Watch,
    bounds: Bounds,
    slot: Option<u8>,
}

impl<'m> Rig<'m> {
    /// Runs one event and checks the per-event invariants.
    fn event(&mut self, ev: Event) -> Reply {
        let exiting = match ev {
            Event::Exit { vcpu, .. } | Event::Hvc { vcpu } => Some(vcpu),
            _ => None,
        };
        let pcs = self.m.vm.hyp().pc.clone();
        self.watch.reset();
        let reply = self.m.exit(ev);
        self.check(&pcs, exiting, &format!("{ev:?}"));
        reply
    }

    fn poll(&mut self) {
        let pcs = self.m.vm.hyp().pc.clone();
        self.watch.reset();
        self.m.vm.poll_devices_now();
        self.check(&pcs, None, "poll");
    }

    fn check(&self, before: &[u64], exiting: Option<VcpuId>, what: &str) {
        if let Some((addr, len)) = self.watch.outside.get() {
            panic!("{what}: guest-memory access {addr:#x}+{len:#x} outside guest RAM");
        }
        if let Some(f) = self.m.vm.hyp().take_violation() {
            panic!("{what}: {f}");
        }
        let accesses = self.watch.accesses.get();
        let bytes = self.watch.bytes.get();
        assert!(
            accesses <= self.bounds.accesses && bytes <= self.bounds.bytes,
            "{what}: unbounded work: {accesses} accesses, {bytes} bytes (bounds {:?})",
            self.bounds
        );
        for (v, (old, new)) in before.iter().zip(self.m.vm.hyp().pc.iter()).enumerate() {
            let moved = new.wrapping_sub(*old);
            let allowed = exiting.is_some_and(|e| e.index() == v);
            // 4 for an A64 (or A32) instruction, 2 for a 16-bit T32 one (ESR.IL = 0).
            assert!(
                moved == 0 || (allowed && (moved == 4 || moved == 2)),
                "{what}: vcpu{v} PC moved by {moved:#x}"
            );
        }
        for v in 0..4u8 {
            let mut held = Vec::new();
            for lr in 0..vgic::MAX_LIST_REGISTERS {
                if let Some(vgic::ListRegister::Holds(intid)) =
                    self.m.vm.gic().list_register(VcpuId(v), lr)
                {
                    assert!(
                        !held.contains(&intid),
                        "{what}: vcpu{v} holds INTID {intid} in two list registers"
                    );
                    held.push(intid);
                }
            }
        }
    }

    /// One operation drawn from `input` for `focus`.
    fn op(&mut self, focus: Focus, input: &mut Input<'_>) -> Option<Reply> {
        let vcpu = input.u8() & 3;
        let ops = focus.ops();
        let kind = usize::from(input.u8()) % ops.len();
        let op = ops.get(kind).copied().unwrap_or(Op::Poll);
        Some(match op {
            Op::Access => {
                let at = self.anywhere(input);
                self.access(vcpu, input, at)
            }
            Op::RawExit => self.raw_exit(vcpu, input),
            Op::RamWrite => self.ram_write(input),
            Op::Desc => self.desc(input),
            Op::Publish => self.publish(vcpu, input),
            Op::Notify => self.notify(vcpu, input),
            Op::Smc => self.smc(vcpu, input),
            Op::GicEvent => self.gic_event(vcpu, input),
            Op::Poll => {
                self.poll();
                return None;
            }
            Op::GicAccess => {
                let at = self.gic_addr(input);
                self.access(vcpu, input, at)
            }
            Op::Sgi => self.sgi(vcpu, input),
            Op::Ecam => {
                let slot = match self.slot {
                    Some(s) => s,
                    None => input.u8() % 5,
                };
                let reg = u64::from(input.u16() & 0xfff);
                let at = self.m.ecam(slot, reg);
                self.access(vcpu, input, at)
            }
            Op::Bar => {
                let slot = match self.slot {
                    Some(s) => s,
                    None => input.u8() % 3,
                };
                let bar = self.m.bars.get(usize::from(slot)).copied().unwrap_or(0);
                let at = bar + u64::from(input.u16() & 0x3fff);
                self.access(vcpu, input, at)
            }
            Op::BlkRequest => self.blk_request(vcpu, input),
            Op::BufWrite => {
                let at = self.m.ram_base() + BUF_OFF + u64::from(input.u16()) * 8 % 0x8_0000;
                let bytes = input.u64().to_le_bytes();
                let _ = self.m.mem().write(GuestPhysAddr(at), &bytes);
                Reply::Nothing
            }
        })
    }

    /// A trapped load or store of `vcpu` at `addr` with a well-formed syndrome.
    fn access(&mut self, vcpu: u8, input: &mut Input<'_>, addr: u64) -> Reply {
        let size = input.size();
        let write = input.u8() & 1 != 0;
        let reg = input.u8() % 32;
        let value = input.u64();
        self.m.set_reg(vcpu, reg, value);
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: arm_fault::syndrome::data_abort(size, reg, write),
            ipa: GuestPhysAddr(addr),
        })
    }

    fn raw_exit(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let esr = Esr(u64::from(input.u32()));
        let ipa = self.anywhere(input);
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr,
            ipa: GuestPhysAddr(ipa),
        })
    }

    /// The queues this input may touch (one device's, or all).
    fn queue(&self, pick: u8) -> Option<GuestQueue> {
        let qs: Vec<&GuestQueue> = self
            .m
            .queues
            .iter()
            .filter(|q| self.slot.is_none_or(|s| q.slot == s))
            .collect();
        qs.get(usize::from(pick) % qs.len().max(1)).map(|q| **q)
    }

    /// The guest writes 8 bytes into a ring (or, with the top bit of `which`, the buffers).
    fn ram_write(&mut self, input: &mut Input<'_>) -> Reply {
        let which = input.u8();
        let off = u64::from(input.u16());
        let base = match self.queue(which & 0x7f) {
            Some(q) if which & 0x80 == 0 => match input.u8() % 3 {
                0 => q.desc,
                1 => q.avail,
                _ => q.used,
            },
            _ => self.m.ram_base() + BUF_OFF,
        };
        let bytes = input.u64().to_le_bytes();
        // The guest's own write: not counted against the VMM (the watch resets per event).
        let _ = self.m.mem().write(GuestPhysAddr(base + off), &bytes);
        Reply::Nothing
    }

    /// The guest writes descriptor `idx` of a queue's table: an address in the buffer area
    /// (or anywhere, with flag bit 7), a length, flags, next.
    fn desc(&mut self, input: &mut Input<'_>) -> Reply {
        let Some(q) = self.queue(input.u8()) else {
            return Reply::Nothing;
        };
        let idx = u64::from(input.u8());
        let mode = input.u8();
        let addr = if mode & 0x80 == 0 {
            self.m.ram_base() + BUF_OFF + u64::from(input.u16()) * 16
        } else {
            input.u64()
        };
        let len = if mode & 0x40 == 0 {
            u32::from(input.u16())
        } else {
            input.u32()
        };
        let flags = u16::from(mode & 7);
        let next = u16::from(input.u8());
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..].copy_from_slice(&next.to_le_bytes());
        let _ = self.m.mem().write(GuestPhysAddr(q.desc + 16 * idx), &raw);
        Reply::Nothing
    }

    /// The driver makes `count` chains available (ring entries `head`, `head + step`, ...),
    /// publishes the index and notifies.
    fn publish(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let pick = input.u8();
        let head = u16::from(input.u8());
        let count = u16::from(input.u8() % 8).max(1);
        let step = u16::from(input.u8());
        let Some(i) = self
            .m
            .queues
            .iter()
            .enumerate()
            .filter(|(_, q)| self.slot.is_none_or(|s| q.slot == s))
            .map(|(i, _)| i)
            .nth(usize::from(pick) % self.m.queues.len().max(1))
        else {
            return Reply::Nothing;
        };
        let Some(q) = self.m.queues.get_mut(i) else {
            return Reply::Nothing;
        };
        let mut h = head;
        for _ in 0..count {
            let slot = u64::from(q.avail_idx % q.size.max(1));
            let _ = self
                .m
                .vm
                .mem()
                .write_u16(GuestPhysAddr(q.avail + 4 + 2 * slot), h);
            q.avail_idx = q.avail_idx.wrapping_add(1);
            h = h.wrapping_add(step);
        }
        let _ = self
            .m
            .vm
            .mem()
            .write_u16(GuestPhysAddr(q.avail + 2), q.avail_idx);
        let q = *q;
        self.m.set_reg(vcpu, 1, u64::from(q.index));
        self.event(q.notify_event(vcpu))
    }

    /// A request as a well-behaved driver builds it: a header, `n` data segments of 256 bytes
    /// (n even, at most `seg_max` and what the disk holds from the sector), a status byte; a
    /// direct chain or, with VIRTIO_F_INDIRECT_DESC, an indirect table of n + 2 entries (up to
    /// the queue's size). The device must complete it with OK and stay out of
    /// DEVICE_NEEDS_RESET (the liveness a device reset, "acceptable" to the other targets,
    /// would hide).
    fn blk_request(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        use virtio_devices::blk::{
            SEG_MAX, VIRTIO_BLK_S_OK, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
            VIRTIO_BLK_T_OUT,
        };
        const SEG: u64 = 256;
        let Some(qi) =
            self.m.queues.iter().position(|q| {
                Some(q.slot) == vm_builder::slot_of(self.m.functions, VirtioKind::Block)
            })
        else {
            return Reply::Nothing;
        };
        let Some(q) = self.m.queues.get(qi).copied() else {
            return Reply::Nothing;
        };
        let sectors = (machine::DISK_LEN as u64) / 512;
        let kind = match input.u8() % 4 {
            0 => VIRTIO_BLK_T_IN,
            1 => VIRTIO_BLK_T_OUT,
            2 => VIRTIO_BLK_T_FLUSH,
            _ => VIRTIO_BLK_T_GET_ID,
        };
        let indirect = input.u8() & 1 == 1;
        // Segments: even, at least 2, at most seg_max, the queue (direct: size - 2 beside
        // header and status) and the disk (2 per sector).
        let room = u64::from(q.size)
            .saturating_sub(2)
            .min(u64::from(SEG_MAX))
            .min(2 * sectors);
        let mut n = (u64::from(input.u16()) % (room + 1)).max(2) & !1;
        if matches!(kind, VIRTIO_BLK_T_FLUSH) {
            n = 0;
        }
        if matches!(kind, VIRTIO_BLK_T_GET_ID) {
            n = 1; // 20 bytes of ID into one 256-byte buffer
        }
        let data_sectors = n * SEG / 512;
        let sector = u64::from(input.u16()) % (sectors - data_sectors + 1);
        let buf = self.m.ram_base() + BUF_OFF;
        let (hdr, status, data, table) = (buf, buf + 16, buf + 0x100, buf + 0x2_0000);
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&kind.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        let mem = self.m.mem();
        let _ = mem.write(GuestPhysAddr(hdr), &h);
        let _ = mem.write(GuestPhysAddr(status), &[0xff]);
        // (addr, len, device-writable) in chain order.
        let writes = kind != VIRTIO_BLK_T_OUT;
        let mut chain = vec![(hdr, 16u32, false)];
        chain.extend((0..n).map(|i| (data + i * SEG, SEG as u32, writes)));
        chain.push((status, 1, true));
        let write_desc = |at: u64, (addr, len, w): (u64, u32, bool), next: Option<u16>| {
            let flags = (u16::from(w) * 2) | u16::from(next.is_some());
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&addr.to_le_bytes());
            raw[8..12].copy_from_slice(&len.to_le_bytes());
            raw[12..14].copy_from_slice(&flags.to_le_bytes());
            raw[14..].copy_from_slice(&next.unwrap_or(0).to_le_bytes());
            let _ = mem.write(GuestPhysAddr(at), &raw);
        };
        let count = chain.len();
        let (base, head_desc) = if indirect {
            (table, None)
        } else {
            (q.desc, Some(()))
        };
        for (i, d) in chain.iter().enumerate() {
            let next = (i + 1 < count).then(|| (i + 1) as u16);
            write_desc(base + 16 * i as u64, *d, next);
        }
        if head_desc.is_none() {
            // The ring's descriptor 0: the INDIRECT descriptor naming the table.
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&table.to_le_bytes());
            raw[8..12].copy_from_slice(&(16 * count as u32).to_le_bytes());
            raw[12..14].copy_from_slice(&4u16.to_le_bytes());
            let _ = mem.write(GuestPhysAddr(q.desc), &raw);
        }
        // Publish head 0 and notify.
        let slot = u64::from(q.avail_idx % q.size.max(1));
        let _ = mem.write_u16(GuestPhysAddr(q.avail + 4 + 2 * slot), 0);
        let idx = q.avail_idx.wrapping_add(1);
        let _ = mem.write_u16(GuestPhysAddr(q.avail + 2), idx);
        if let Some(mq) = self.m.queues.get_mut(qi) {
            mq.avail_idx = idx;
        }
        self.m.set_reg(vcpu, 1, u64::from(q.index));
        let reply = self.event(q.notify_event(vcpu));
        let st = self
            .m
            .pci
            .as_ref()
            .and_then(|pci| pci.with(|b| b.device_status(q.slot)))
            .flatten()
            .unwrap_or(0);
        assert_eq!(
            st & virtio_pci::status::DEVICE_NEEDS_RESET,
            0,
            "liveness: a spec-valid virtio-blk request (type {kind}, {n} segments, indirect \
             {indirect}, sector {sector}) reset the device"
        );
        let mut done = [0xffu8];
        let _ = self.m.mem().read(GuestPhysAddr(status), &mut done);
        let done = done[0];
        assert_eq!(
            done, VIRTIO_BLK_S_OK,
            "liveness: a spec-valid virtio-blk request (type {kind}, {n} segments, indirect \
             {indirect}, sector {sector}) completed with status {done:#x}"
        );
        reply
    }

    /// A notification after storing any `avail.idx`.
    fn notify(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let Some(q) = self.queue(input.u8()) else {
            return Reply::Nothing;
        };
        let idx = input.u16();
        let _ = self.m.mem().write_u16(GuestPhysAddr(q.avail + 2), idx);
        // Linux writes the queue index; a hostile guest writes anything.
        let value = if idx & 1 == 0 {
            u64::from(q.index)
        } else {
            u64::from(input.u16())
        };
        self.m.set_reg(vcpu, 1, value);
        self.event(q.notify_event(vcpu))
    }

    /// An SMC with x0..x3 from the input, x0 usually a PSCI or SMCCC function.
    fn smc(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        // PSCI 1.1 and SMCCC 1.1 function IDs (the SMC64 forms where there are two).
        const FUNCTIONS: [u32; 19] = [
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
            0x8400_0008,
            0x8400_0009,
            0xc400_000e,
        ];
        let pick = input.u8();
        let x0 = match FUNCTIONS.get(usize::from(pick % 24)) {
            Some(f) => u64::from(*f),
            None => input.u64(),
        };
        self.m.set_reg(vcpu, 0, x0);
        let base = self.m.ram_base();
        for r in 1..4 {
            let v = match input.u8() % 3 {
                0 => u64::from(input.u8() % 6),
                1 => base.wrapping_add(u64::from(input.u32())),
                _ => input.u64(),
            };
            self.m.set_reg(vcpu, r, v);
        }
        let esr = if pick & 0x80 == 0 {
            arm_fault::syndrome::smc()
        } else {
            // HVC #0 (the PC is already past it).
            Esr((0x16 << 26) | (1 << 25))
        };
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr,
            ipa: GuestPhysAddr(0),
        })
    }

    fn gic_event(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let p = self.m.p;
        let ev = match input.u8() % 5 {
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
            3 => {
                // A pass-through SPI the platform routes (if it has any).
                let n = p.passthrough_irqs.len().max(1);
                let intid = p
                    .passthrough_irqs
                    .get(usize::from(input.u8()) % n)
                    .map_or(40, |i| i.spi.intid());
                Event::Irq { intid }
            }
            _ => Event::Irq {
                intid: u32::from(input.u16() % 1100),
            },
        };
        self.event(ev)
    }

    fn sgi(&mut self, vcpu: u8, input: &mut Input<'_>) -> Reply {
        let value = input.u64();
        self.m.set_reg(vcpu, 1, value);
        self.event(Event::Exit {
            vcpu: VcpuId(vcpu),
            esr: arm_fault::syndrome::msr_sgi1r(1),
            ipa: GuestPhysAddr(0),
        })
    }

    /// An address in the GIC frames (distributor, or a redistributor of any vCPU or none).
    fn gic_addr(&self, input: &mut Input<'_>) -> u64 {
        if input.u8() & 1 == 0 {
            self.m.p.gic.dist.0 + u64::from(input.u16())
        } else {
            self.m.p.gic.redist.0 + u64::from(input.u32()) % (5 * GICR_STRIDE)
        }
    }

    /// Any address, biased towards the platform's emulated windows, pass-through regions,
    /// RAM, and the ends of the address space.
    fn anywhere(&self, input: &mut Input<'_>) -> u64 {
        let p: &Platform = self.m.p;
        let mut bases: Vec<u64> = p.emulated_windows().map(|(_, r)| r.base.0).collect();
        bases.extend(p.passthrough.iter().map(|r| r.range.base.0));
        bases.extend([p.ram.range.base.0, 0, u64::MAX - 0xffff]);
        let pick = usize::from(input.u8());
        let off = u64::from(input.u32());
        match bases.get(pick % (bases.len() + 2)) {
            Some(b) => b.wrapping_add(off),
            None => input.u64(),
        }
    }

    /// The end of an input: the bus still enumerates, and firmware still answers.
    fn finish(&mut self) {
        for slot in 0..3u8 {
            let at = self.m.ecam(slot, 0);
            self.m.set_reg(0, 1, 0);
            let r = self.event(Event::Exit {
                vcpu: VcpuId(0),
                esr: arm_fault::syndrome::data_abort(AccessSize::Half, 1, false),
                ipa: GuestPhysAddr(at),
            });
            assert_eq!(r, Reply::Resume, "ECAM read");
            assert_eq!(self.m.reg(0, 1), 0x1af4, "slot {slot} vendor ID");
        }
        self.m.set_reg(0, 0, 0x8400_0000);
        let r = self.event(Event::Exit {
            vcpu: VcpuId(0),
            esr: arm_fault::syndrome::smc(),
            ipa: GuestPhysAddr(0),
        });
        if r == Reply::Resume {
            assert_eq!(
                self.m.reg(0, 0),
                0x1_0001,
                "PSCI_VERSION after the sequence"
            );
        }
    }
}

thread_local! {
    // Guest RAM, reused between inputs (cleared each time): allocating it per input is what
    // costs most with the fuzzer's sanitizers.
    static RAM: RefCell<Vec<u8>> = RefCell::new(vec![0; RAM_LEN]);
}

/// What a VM input left behind (for the seed tests: that a seed does what it says).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Per queue the drivers set up: (slot, queue, enabled, last_avail, next_used).
    pub queues: Vec<(u8, u16, bool, u16, u16)>,
    /// Each device's virtio status.
    pub status: Vec<u8>,
    /// How the VM ended, if the guest ended it.
    pub ended: Option<Reply>,
    /// vCPUs running at the end.
    pub running: Vec<bool>,
}

/// Drives a VM with the operations `data` decodes to, for `focus`, checking the invariants.
/// The first byte picks the platform (even: QEMU virt, odd: Orin AGX).
pub fn fuzz_vm(focus: Focus, data: &[u8]) {
    run_vm(focus, data);
}

/// [`fuzz_vm`], returning what the input left behind.
pub fn run_vm(focus: Focus, data: &[u8]) -> Summary {
    let mut input = Input { data };
    let platforms = vmm_platform::PLATFORMS;
    let pick = usize::from(input.u8()) % platforms.len();
    let Some(&p) = platforms.get(pick) else {
        return Summary::default();
    };
    RAM.with_borrow_mut(|ram| {
        ram.fill(0);
        let watch = Watch::new(GuestRange::new(p.ram.range.base.0, RAM_LEN as u64));
        let m = machine::machine(p, ram, &watch);
        if let Some(f) = m.vm.hyp().take_violation() {
            panic!("bring-up: {f}");
        }
        let bounds = Bounds::for_queues(&m.queues);
        let slot = focus
            .device()
            .and_then(|kind| vm_builder::slot_of(m.functions, kind));
        let mut rig = Rig {
            m,
            watch: &watch,
            bounds,
            slot,
        };
        let mut ended = None;
        for _ in 0..MAX_OPS {
            if input.is_empty() {
                break;
            }
            if let Some(r @ Reply::Shutdown(_)) = rig.op(focus, &mut input) {
                // SYSTEM_OFF / RESET or a fatal exit: the VM is over, as in the root task.
                ended = Some(r);
                break;
            }
        }
        if ended.is_none() {
            rig.finish();
        }
        let Some(pci) = rig.m.pci.clone() else {
            return Summary::default();
        };
        let queues = rig
            .m
            .queues
            .iter()
            .filter_map(|q| {
                let (on, avail, used) = pci.with(|b| b.queue_state(q.slot, q.index)).flatten()?;
                Some((q.slot, q.index, on, avail, used))
            })
            .collect();
        let status = (0u8..)
            .take(rig.m.functions.len())
            .filter_map(|s| pci.with(|b| b.device_status(s)).flatten())
            .collect();
        Summary {
            queues,
            status,
            ended,
            running: rig.m.vm.hyp().running.clone(),
        }
    })
}

/// The guest device tree builder over a (mutated) board DTB, for each platform: it returns an
/// error or a DTB that verifies, whose only `/memory` node holds exactly the platform's RAM
/// (read with the root's `#address-cells` / `#size-cells`, whatever the board had).
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
        let Some(mem) = dtb_memory(&dtb) else {
            panic!("{}: built DTB unreadable", p.name);
        };
        assert_eq!(
            mem,
            vec![(ram.base.0, ram.size)],
            "{}: /memory is not the platform's RAM",
            p.name
        );
    }
}

/// The `reg` entries of every `memory@...` child of the root, decoded with the root's cells;
/// `None` when the blob cannot be read that far.
fn dtb_memory(dtb: &[u8]) -> Option<Vec<(u64, u64)>> {
    let be32 = |at: usize| -> Option<u32> {
        let b = dtb.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    };
    let off_struct = usize::try_from(be32(8)?).ok()?;
    let off_strings = usize::try_from(be32(12)?).ok()?;
    let cstr = |at: usize| -> Option<&[u8]> {
        let rest = dtb.get(at..)?;
        rest.get(..rest.iter().position(|&c| c == 0)?)
    };
    let (mut ac, mut sc) = (2u32, 1u32);
    let mut regs: Vec<Vec<u8>> = Vec::new();
    let mut depth = 0usize;
    let mut in_memory = false;
    let mut at = off_struct;
    loop {
        let token = be32(at)?;
        at = at.checked_add(4)?;
        match token {
            1 => {
                let name = cstr(at)?;
                at = at.checked_add(name.len() + 1)?.next_multiple_of(4);
                depth += 1;
                in_memory = depth == 2 && name.starts_with(b"memory@");
            }
            2 => {
                depth = depth.checked_sub(1)?;
                in_memory = false;
            }
            3 => {
                let len = usize::try_from(be32(at)?).ok()?;
                let name = cstr(off_strings.checked_add(usize::try_from(be32(at + 4)?).ok()?)?)?;
                let value = dtb.get(at + 8..at.checked_add(8)?.checked_add(len)?)?;
                at = (at + 8 + len).next_multiple_of(4);
                let cell = || Some(u32::from_be_bytes(value.try_into().ok()?));
                match (depth, name) {
                    (1, b"#address-cells") => ac = cell()?,
                    (1, b"#size-cells") => sc = cell()?,
                    (2, b"reg") if in_memory => regs.push(value.to_vec()),
                    _ => {}
                }
            }
            4 => {}
            9 => break,
            _ => return None,
        }
    }
    let number = |c: &[u8]| {
        c.chunks(4).fold(0u64, |a, w| {
            (a << 32) | u64::from(w.iter().fold(0u32, |x, &b| (x << 8) | u32::from(b)))
        })
    };
    let (ab, sb) = (4 * ac as usize, 4 * sc as usize);
    let mut out = Vec::new();
    for r in regs {
        if ab + sb == 0 || r.len() % (ab + sb) != 0 {
            return None;
        }
        for e in r.chunks(ab + sb) {
            let (a, s) = e.split_at(ab);
            out.push((number(a), number(s)));
        }
    }
    Some(out)
}

/// A target: its name and its function.
pub type Target = (&'static str, fn(&[u8]));

/// The targets by name, as `fuzz/` and the corpus directories name them.
pub const TARGETS: [Target; 9] = [
    ("vm_all", |d| fuzz_vm(Focus::All, d)),
    ("vgic", |d| fuzz_vm(Focus::Vgic, d)),
    ("pci_ecam", |d| fuzz_vm(Focus::PciEcam, d)),
    ("virtio_blk", |d| fuzz_vm(Focus::VirtioBlk, d)),
    ("virtio_net", |d| fuzz_vm(Focus::VirtioNet, d)),
    ("virtio_console", |d| fuzz_vm(Focus::VirtioConsole, d)),
    ("psci", |d| fuzz_vm(Focus::Psci, d)),
    ("virtio_blk_valid", |d| fuzz_vm(Focus::VirtioBlkValid, d)),
    ("guest_dtb", fuzz_guest_dtb),
];

/// What [`self_test`] feeds the invariant checks.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Broken {
    /// An access just past guest RAM, as a device model escaping it would make.
    OutsideRam,
    /// One more access than the work bound allows.
    TooMuchWork,
}

/// Feeds the invariant checks a violation: they must panic (the replay tests prove the
/// checks are live).
#[doc(hidden)]
pub fn self_test(broken: Broken) {
    let p = &vmm_platform::QEMU_VIRT;
    RAM.with_borrow_mut(|ram| {
        let watch = Watch::new(GuestRange::new(p.ram.range.base.0, RAM_LEN as u64));
        let m = machine::machine(p, ram, &watch);
        let end = m.ram_base() + RAM_LEN as u64;
        let bounds = Bounds::for_queues(&m.queues);
        let rig = Rig {
            bounds,
            m,
            watch: &watch,
            slot: None,
        };
        rig.check(&[0; 4], None, "before");
        match broken {
            Broken::OutsideRam => {
                guest_mem::AccessObserver::observe(&watch, GuestPhysAddr(end - 4), 8, true);
            }
            Broken::TooMuchWork => watch.accesses.set(bounds.accesses + 1),
        }
        rig.check(&[0; 4], None, "self-test");
    });
}

/// Writes inputs for the VM targets op by op (seeds, regression inputs, tests).
#[doc(hidden)]
pub mod encode {
    use super::{Focus, Op};

    /// An input under construction.
    pub struct Input {
        focus: Focus,
        /// The bytes so far.
        pub bytes: Vec<u8>,
    }

    impl Input {
        /// An input for `focus` on platform `platform` (0 QEMU virt, 1 Orin AGX).
        pub fn new(focus: Focus, platform: u8) -> Input {
            Input {
                focus,
                bytes: vec![platform],
            }
        }

        fn op(&mut self, vcpu: u8, op: Op) -> &mut Self {
            let kind = self.focus.kind_of(op).unwrap_or(0);
            self.bytes.extend([vcpu, kind]);
            self
        }

        fn raw(&mut self, b: &[u8]) -> &mut Self {
            self.bytes.extend_from_slice(b);
            self
        }

        /// Descriptor `idx` of queue `pick`: `addr` (an offset into the buffer area when it
        /// fits 16 bits times 16, else absolute), `len`, `flags`, `next`.
        pub fn desc(
            &mut self,
            pick: u8,
            idx: u8,
            addr: Addr,
            len: u32,
            flags: u8,
            next: u8,
        ) -> &mut Self {
            let mut mode = flags & 7;
            let mut a = Vec::new();
            match addr {
                Addr::Buf(off) => a.extend_from_slice(&off.to_le_bytes()),
                Addr::Abs(x) => {
                    mode |= 0x80;
                    a.extend_from_slice(&x.to_le_bytes());
                }
            }
            let l: Vec<u8> = match u16::try_from(len) {
                Ok(l) => l.to_le_bytes().to_vec(),
                Err(_) => {
                    mode |= 0x40;
                    len.to_le_bytes().to_vec()
                }
            };
            self.op(0, Op::Desc)
                .raw(&[pick, idx, mode])
                .raw(&a)
                .raw(&l)
                .raw(&[next])
        }

        /// `count` (1..=7) ring entries from `head` by `step`, published and notified.
        pub fn publish(&mut self, vcpu: u8, pick: u8, head: u8, count: u8, step: u8) -> &mut Self {
            self.op(vcpu, Op::Publish).raw(&[pick, head, count, step])
        }

        /// `avail.idx = idx` (even) and a notification of queue `pick`.
        pub fn notify(&mut self, vcpu: u8, pick: u8, idx: u16) -> &mut Self {
            self.op(vcpu, Op::Notify)
                .raw(&[pick])
                .raw(&(idx & !1).to_le_bytes())
        }

        /// 8 bytes at buffer-area offset `8 * off`.
        pub fn buf(&mut self, off: u16, v: [u8; 8]) -> &mut Self {
            self.op(0, Op::BufWrite).raw(&off.to_le_bytes()).raw(&v)
        }

        /// A device poll.
        pub fn poll(&mut self) -> &mut Self {
            self.op(0, Op::Poll)
        }

        /// An SMC with x0 = FUNCTIONS[pick] and x1..x3 given as (selector, bytes).
        pub fn smc(&mut self, vcpu: u8, pick: u8, args: [(u8, &[u8]); 3]) -> &mut Self {
            self.op(vcpu, Op::Smc).raw(&[pick]);
            for (sel, b) in args {
                self.raw(&[sel]).raw(b);
            }
            self
        }

        /// A load (`write` false) or store of `size` (0..=3 for 1..8 bytes) at `off` of
        /// the focused device's BAR (or slot `slot`'s).
        pub fn bar(
            &mut self,
            vcpu: u8,
            slot: Option<u8>,
            off: u16,
            size: u8,
            write: bool,
            value: u64,
        ) -> &mut Self {
            self.op(vcpu, Op::Bar);
            if let Some(s) = slot {
                self.raw(&[s]);
            }
            self.raw(&off.to_le_bytes())
                .raw(&[size, u8::from(write), 1])
                .raw(&value.to_le_bytes())
        }

        /// The same in ECAM space.
        pub fn ecam(
            &mut self,
            vcpu: u8,
            slot: Option<u8>,
            reg: u16,
            size: u8,
            write: bool,
            value: u64,
        ) -> &mut Self {
            self.op(vcpu, Op::Ecam);
            if let Some(s) = slot {
                self.raw(&[s]);
            }
            self.raw(&reg.to_le_bytes())
                .raw(&[size, u8::from(write), 1])
                .raw(&value.to_le_bytes())
        }

        /// A GIC register access: distributor (`redist` false) at `off`, or redistributor
        /// space at `off`.
        pub fn gic(
            &mut self,
            vcpu: u8,
            redist: bool,
            off: u32,
            size: u8,
            write: bool,
            value: u64,
        ) -> &mut Self {
            self.op(vcpu, Op::GicAccess).raw(&[u8::from(redist)]);
            if redist {
                self.raw(&off.to_le_bytes());
            } else {
                self.raw(&(off as u16).to_le_bytes());
            }
            self.raw(&[size, u8::from(write), 1])
                .raw(&value.to_le_bytes())
        }

        /// `msr ICC_SGI1R_EL1` with `value`.
        pub fn sgi(&mut self, vcpu: u8, value: u64) -> &mut Self {
            self.op(vcpu, Op::Sgi).raw(&value.to_le_bytes())
        }

        /// A maintenance event for list register `lr`.
        pub fn eoi(&mut self, vcpu: u8, lr: u8) -> &mut Self {
            self.op(vcpu, Op::GicEvent).raw(&[0, lr])
        }

        /// Any syndrome at an address `anywhere` picks with (pick, offset).
        pub fn raw_exit(&mut self, vcpu: u8, esr: u32, pick: u8, off: u32) -> &mut Self {
            self.op(vcpu, Op::RawExit)
                .raw(&esr.to_le_bytes())
                .raw(&[pick])
                .raw(&off.to_le_bytes())
        }
    }

    /// A descriptor's buffer address.
    #[derive(Clone, Copy)]
    pub enum Addr {
        /// Offset into the buffer area, in units of 16 bytes.
        Buf(u16),
        /// Any guest-physical address.
        Abs(u64),
    }
}
