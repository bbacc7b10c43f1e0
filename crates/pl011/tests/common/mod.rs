//! A PL011 on an MMIO bus, accessed the way a guest does, with a recording interrupt line and
//! a recording console.
#![allow(dead_code)]

use console::ConsoleSink;
use guest_mem::{GuestMemory, GuestPhysAddr, GuestRange};
use hypervisor::VcpuId;
use mmio_bus::{AccessSize, DeviceCtx, IrqLines, MmioBus};
use pl011::{Pl011, SharedPl011, regs};
use std::cell::RefCell;
use std::rc::Rc;

/// QEMU virt's UART: 0x0900_0000, SPI 1.
pub const BASE: u64 = 0x0900_0000;
pub const INTID: u32 = 32 + 1;

/// Records the interrupt line: every level driven, and checks only changes are driven.
#[derive(Default)]
pub struct Line {
    pub level: bool,
    pub changes: Vec<bool>,
}

impl IrqLines for Line {
    fn set_level(&mut self, intid: u32, level: bool) {
        assert_eq!(intid, INTID, "the UART drives its own SPI only");
        assert_ne!(level, self.level, "only level changes are driven");
        self.level = level;
        self.changes.push(level);
    }
}

/// A console sink the test can read while the UART owns it.
#[derive(Clone, Default)]
pub struct Out(pub Rc<RefCell<Vec<u8>>>);

impl ConsoleSink for Out {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.0.borrow_mut().extend_from_slice(bytes);
    }
}

impl Out {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }

    pub fn take(&self) -> String {
        let s = self.text();
        self.0.borrow_mut().clear();
        s
    }
}

/// A guest's view of the UART: loads and stores at BASE + offset through the bus.
pub struct Vm<S: ConsoleSink + 'static> {
    pub bus: MmioBus,
    pub uart: SharedPl011<S>,
    pub line: Line,
    ram: Vec<u8>,
}

impl<S: ConsoleSink + 'static> Vm<S> {
    pub fn new(uart: Pl011<S>) -> Self {
        let uart = SharedPl011::new(uart);
        let mut bus = MmioBus::new();
        bus.add(
            "pl011",
            GuestRange::new(BASE, pl011::REGION_SIZE),
            uart.device(),
        )
        .unwrap();
        Vm {
            bus,
            uart,
            line: Line::default(),
            ram: vec![0; 64],
        }
    }

    pub fn read(&mut self, offset: u64, size: AccessSize) -> u64 {
        let mem = GuestMemory::new(GuestPhysAddr(0x4000_0000), &mut self.ram);
        let mut ctx = DeviceCtx {
            vcpu: VcpuId(0),
            mem: &mem,
            irq: &mut self.line,
        };
        let (v, dev) = self.bus.read(&mut ctx, GuestPhysAddr(BASE + offset), size);
        assert!(dev.is_some(), "the UART frame covers {offset:#x}");
        v
    }

    pub fn write(&mut self, offset: u64, size: AccessSize, value: u64) {
        let mem = GuestMemory::new(GuestPhysAddr(0x4000_0000), &mut self.ram);
        let mut ctx = DeviceCtx {
            vcpu: VcpuId(0),
            mem: &mem,
            irq: &mut self.line,
        };
        let dev = self
            .bus
            .write(&mut ctx, GuestPhysAddr(BASE + offset), size, value);
        assert!(dev.is_some(), "the UART frame covers {offset:#x}");
    }

    /// `readw` (Linux `UPIO_MEM`).
    pub fn readw(&mut self, offset: u64) -> u16 {
        self.read(offset, AccessSize::Half) as u16
    }

    /// `writew` (Linux `UPIO_MEM`).
    pub fn writew(&mut self, offset: u64, v: u16) {
        self.write(offset, AccessSize::Half, v.into());
    }

    /// `readl` (`UPIO_MEM32`, earlycon, the AMBA bus).
    pub fn readl(&mut self, offset: u64) -> u32 {
        self.read(offset, AccessSize::Word) as u32
    }

    /// `writel`.
    pub fn writel(&mut self, offset: u64, v: u32) {
        self.write(offset, AccessSize::Word, v.into());
    }

    /// `writeb` (earlycon `mmio`).
    pub fn writeb(&mut self, offset: u64, v: u8) {
        self.write(offset, AccessSize::Byte, v.into());
    }

    /// Input from the console (the VMM's input path).
    pub fn input(&mut self, bytes: &[u8]) -> usize {
        self.uart.push_input(bytes, &mut self.line)
    }

    /// The interrupt line, checked against MIS (read without side effects).
    pub fn irq(&mut self) -> bool {
        let mis = self.readl(regs::MIS);
        assert_eq!(
            self.line.level,
            mis != 0,
            "line level follows MIS ({mis:#x})"
        );
        assert_eq!(self.uart.with(|u| u.irq_level()), Some(self.line.level));
        self.line.level
    }
}
