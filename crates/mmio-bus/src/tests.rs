use super::*;
use alloc::vec;
use core::cell::RefCell;

struct NoIrq;
impl IrqLines for NoIrq {
    fn set_level(&mut self, _: u32, _: bool) {}
}

/// A 16-byte scratch register file that allows only 32-bit accesses.
struct Regs(alloc::rc::Rc<RefCell<[u32; 4]>>);
impl MmioDevice for Regs {
    fn read(
        &mut self,
        _: &mut DeviceCtx<'_>,
        off: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        if size != AccessSize::Word {
            return Err(MmioError::BadWidth);
        }
        self.0
            .borrow()
            .get(off as usize / 4)
            .map(|v| u64::from(*v))
            .ok_or(MmioError::NoRegister)
    }
    fn write(
        &mut self,
        _: &mut DeviceCtx<'_>,
        off: u64,
        size: AccessSize,
        v: u64,
    ) -> Result<(), MmioError> {
        if size != AccessSize::Word {
            return Err(MmioError::BadWidth);
        }
        *self
            .0
            .borrow_mut()
            .get_mut(off as usize / 4)
            .ok_or(MmioError::NoRegister)? = v as u32;
        Ok(())
    }
}

fn with_ctx<R>(f: impl FnOnce(&mut DeviceCtx<'_>) -> R) -> R {
    let mut ram = vec![0u8; 16];
    let mem = GuestMemory::new(GuestPhysAddr(0x4000_0000), &mut ram);
    let mut irq = NoIrq;
    let mut ctx = DeviceCtx {
        vcpu: VcpuId(1),
        mem: &mem,
        irq: &mut irq,
    };
    f(&mut ctx)
}

#[test]
fn routes_by_range_and_offset() {
    let a = alloc::rc::Rc::new(RefCell::new([0; 4]));
    let b = alloc::rc::Rc::new(RefCell::new([0; 4]));
    let mut bus = MmioBus::new();
    bus.add(
        "b",
        GuestRange::new(0x2000, 0x10),
        Box::new(Regs(b.clone())),
    )
    .unwrap();
    bus.add(
        "a",
        GuestRange::new(0x1000, 0x10),
        Box::new(Regs(a.clone())),
    )
    .unwrap();
    with_ctx(|ctx| {
        assert_eq!(
            bus.write(ctx, GuestPhysAddr(0x1004), AccessSize::Word, 0x1_2345_6789),
            Some(DeviceIndex(0))
        );
        bus.write(ctx, GuestPhysAddr(0x200c), AccessSize::Word, 7);
        assert_eq!(
            bus.read(ctx, GuestPhysAddr(0x1004), AccessSize::Word),
            (0x2345_6789, Some(DeviceIndex(0)))
        );
        assert_eq!(bus.read(ctx, GuestPhysAddr(0x200c), AccessSize::Word).0, 7);
    });
    assert_eq!(a.borrow()[1], 0x2345_6789);
    assert_eq!(b.borrow()[3], 7);
    assert_eq!(bus.devices().map(|d| d.0).collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn unhandled_accesses_are_raz_wi_and_logged_once_per_address() {
    let regs = alloc::rc::Rc::new(RefCell::new([5; 4]));
    let mut bus = MmioBus::new();
    bus.add(
        "regs",
        GuestRange::new(0x1000, 0x10),
        Box::new(Regs(regs.clone())),
    )
    .unwrap();
    with_ctx(|ctx| {
        // No device there.
        assert_eq!(
            bus.read(ctx, GuestPhysAddr(0x3000), AccessSize::Double),
            (0, None)
        );
        assert_eq!(
            bus.write(ctx, GuestPhysAddr(0x3000), AccessSize::Byte, 1),
            None
        );
        // Straddles the device's end.
        assert_eq!(
            bus.read(ctx, GuestPhysAddr(0x100c), AccessSize::Double),
            (0, None)
        );
        // Device refuses the width: RAZ, WI.
        assert_eq!(
            bus.read(ctx, GuestPhysAddr(0x1000), AccessSize::Byte),
            (0, Some(DeviceIndex(0)))
        );
        bus.write(ctx, GuestPhysAddr(0x1000), AccessSize::Half, 9);
        for _ in 0..100 {
            bus.read(ctx, GuestPhysAddr(0x3000), AccessSize::Word);
        }
    });
    assert_eq!(regs.borrow()[0], 5, "write of refused width ignored");
    assert_eq!(
        bus.unhandled_count(),
        3,
        "0x3000, 0x100c, 0x1000 each logged once"
    );
}

#[test]
fn overlapping_devices_are_refused() {
    let r = alloc::rc::Rc::new(RefCell::new([0; 4]));
    let mut bus = MmioBus::new();
    bus.add(
        "a",
        GuestRange::new(0x1000, 0x100),
        Box::new(Regs(r.clone())),
    )
    .unwrap();
    assert_eq!(
        bus.add(
            "b",
            GuestRange::new(0x10f0, 0x100),
            Box::new(Regs(r.clone()))
        )
        .err(),
        Some(BusError::Overlap {
            name: "b",
            existing: "a",
            at: GuestPhysAddr(0x10f0)
        })
    );
    assert_eq!(
        bus.add("c", GuestRange::new(0x5000, 0), Box::new(Regs(r)))
            .err(),
        Some(BusError::Empty("c"))
    );
}

#[test]
fn log_once_remembers_then_counts() {
    let mut l = LogOnce::default();
    assert!(l.first(1));
    assert!(!l.first(1));
    for a in 2..=64 {
        assert!(l.first(a));
    }
    assert_eq!(l.seen(), 64);
    // Full: the table itself says (once) that it stops reporting; the caller logs nothing.
    assert!(!l.first(1000));
    assert!(!l.first(1001));
    assert!(!l.first(1), "still remembered");
    assert_eq!(l.suppressed(), 2);
}

#[test]
fn last_device_hit_is_only_a_shortcut() {
    // Three devices, accesses jumping between them, to their edges and just past them, and a
    // device added (indices shift) after the bus has remembered one: every access still goes
    // to the device whose range holds it, or to nobody.
    let regs: Vec<_> = (0..4)
        .map(|_| alloc::rc::Rc::new(RefCell::new([0u32; 4])))
        .collect();
    let mut bus = MmioBus::new();
    for (i, base) in [0x1000u64, 0x2000, 0x3000].into_iter().enumerate() {
        let name = ["a", "b", "c"][i];
        bus.add(
            name,
            GuestRange::new(base, 0x10),
            Box::new(Regs(regs[i].clone())),
        )
        .unwrap();
    }
    with_ctx(|ctx| {
        for round in 0..3u64 {
            for (i, base) in [0x3000u64, 0x1000, 0x2000, 0x1000].into_iter().enumerate() {
                let v = round * 100 + i as u64;
                let at = GuestPhysAddr(base + 0xc);
                let dev = bus.write(ctx, at, AccessSize::Word, v).unwrap();
                assert_eq!(bus.read(ctx, at, AccessSize::Word), (v, Some(dev)));
                // Just past the device just hit: nobody's, whatever the bus remembers.
                assert_eq!(
                    bus.read(ctx, GuestPhysAddr(base + 0x10), AccessSize::Word),
                    (0, None)
                );
                // Straddling its end: nobody's.
                assert_eq!(bus.read(ctx, at, AccessSize::Double), (0, None));
            }
        }
    });
    // A device below the others: every index shifts by one.
    bus.add(
        "z",
        GuestRange::new(0x800, 0x10),
        Box::new(Regs(regs[3].clone())),
    )
    .unwrap();
    with_ctx(|ctx| {
        assert_eq!(
            bus.read(ctx, GuestPhysAddr(0x100c), AccessSize::Word),
            (203, Some(DeviceIndex(1)))
        );
        assert_eq!(
            bus.read(ctx, GuestPhysAddr(0x300c), AccessSize::Word),
            (200, Some(DeviceIndex(3)))
        );
        bus.write(ctx, GuestPhysAddr(0x800), AccessSize::Word, 9);
    });
    assert_eq!(regs[3].borrow()[0], 9);
    assert_eq!(regs[0].borrow()[3], 203);
    assert_eq!(regs[1].borrow()[3], 202);
    assert_eq!(regs[2].borrow()[3], 200);
}
