//! Register-level behaviour: every offset at every width has a defined result, reserved
//! space is RAZ/WI, and the FIFO, trigger and enable semantics of the TRM.

// Test code: clippy.toml allows these inside #[test] functions; the driver transliterations
// and helpers around them need it spelled out.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{INTID, Line, Out, Vm};
use mmio_bus::{AccessSize, IrqLines};
use pl011::{Pl011, regs::*};

const SIZES: [AccessSize; 4] = [
    AccessSize::Byte,
    AccessSize::Half,
    AccessSize::Word,
    AccessSize::Double,
];

/// Registers the model implements, with their read/write masks after the firmware reset.
const RW: [(u64, u64); 8] = [
    (ILPR, 0xFF),
    (IBRD, 0xFFFF),
    (FBRD, 0x3F),
    (LCR_H, 0xFF),
    (CR, 0xFF87),
    (IFLS, 0x3F),
    (IMSC, 0x7FF),
    (DMACR, 0),
];

fn uart() -> (Vm<Out>, Out) {
    let out = Out::default();
    (Vm::new(Pl011::new(INTID, out.clone())), out)
}

fn implemented(offset: u64) -> bool {
    matches!(offset, 0x000 | 0x004 | 0x018 | 0x020..=0x048 | 0xFE0..=0xFFC)
        && offset.is_multiple_of(4)
}

/// Every byte offset of the frame, every width, read then write all-ones then read: no
/// panic, and wherever the access is not a register access the bus sees RAZ/WI.
#[test]
fn every_offset_every_width_is_defined() {
    for &size in &SIZES {
        let (mut vm, _) = uart();
        for offset in 0..pl011::REGION_SIZE {
            if offset + size.bytes() > pl011::REGION_SIZE {
                continue;
            }
            let r = vm.read(offset, size);
            if !implemented(offset) || size == AccessSize::Double {
                assert_eq!(r, 0, "{offset:#x}/{size:?} reads as zero");
            }
            // Leave CR/LCR_H/IMSC alone here so the UART stays usable; they are covered below.
            if ![CR, LCR_H, IMSC, DR].contains(&offset) {
                vm.write(offset, size, u64::MAX);
            }
            let r2 = vm.read(offset, size);
            if !implemented(offset) || size == AccessSize::Double {
                assert_eq!(r2, 0, "{offset:#x}/{size:?} ignores writes");
            }
            let _ = vm.irq();
        }
    }
}

/// The device itself, without the bus: what it refuses and why.
#[test]
fn refusals_name_the_reason() {
    let mut u = Pl011::new(INTID, Vec::<u8>::new());
    let mut line = Line::default();
    use mmio_bus::MmioError::*;
    assert_eq!(u.read_reg(&mut line, DR, AccessSize::Double), Err(BadWidth));
    assert_eq!(
        u.read_reg(&mut line, CR + 1, AccessSize::Byte),
        Err(BadWidth)
    );
    assert_eq!(
        u.read_reg(&mut line, 0x008, AccessSize::Word),
        Err(NoRegister)
    );
    assert_eq!(
        u.read_reg(&mut line, 0x01C, AccessSize::Word),
        Err(NoRegister)
    );
    assert_eq!(
        u.read_reg(&mut line, 0x080, AccessSize::Word),
        Err(NoRegister)
    );
    assert_eq!(
        u.read_reg(&mut line, 0x1000, AccessSize::Word),
        Err(NoRegister)
    );
    assert_eq!(u.read_reg(&mut line, ICR, AccessSize::Word), Err(ReadOnly));
    for ro in [FR, RIS, MIS, PERIPH_ID0, 0xFFC] {
        assert_eq!(
            u.write_reg(&mut line, ro, AccessSize::Word, 0),
            Err(ReadOnly),
            "{ro:#x}"
        );
    }
    assert_eq!(
        u.write_reg(&mut line, u64::MAX - 3, AccessSize::Word, 0),
        Err(NoRegister)
    );
    assert_eq!(u.read_reg(&mut line, DMACR, AccessSize::Word), Ok(0));
    assert_eq!(u.write_reg(&mut line, DMACR, AccessSize::Word, 7), Ok(()));
    assert_eq!(u.read_reg(&mut line, DMACR, AccessSize::Word), Ok(0));
}

#[test]
fn rw_registers_keep_their_bits_at_every_width() {
    for (reg, mask) in RW {
        for size in [AccessSize::Byte, AccessSize::Half, AccessSize::Word] {
            let (mut vm, _) = uart();
            let v = 0xFFFF_FFFF & size.mask();
            vm.write(reg, size, v);
            assert_eq!(
                vm.read(reg, AccessSize::Word),
                v & mask,
                "{reg:#x} {size:?}"
            );
            // A narrow read returns the low bytes.
            assert_eq!(vm.read(reg, size), v & mask & size.mask());
            vm.write(reg, AccessSize::Word, 0);
            assert_eq!(vm.read(reg, AccessSize::Word), 0);
        }
    }
}

#[test]
fn reset_values() {
    let (mut vm, _) = uart();
    let expect = [
        (CR, 0x301),
        (LCR_H, 0x70),
        (IBRD, 13),
        (FBRD, 1),
        (IFLS, 0x12),
        (IMSC, 0),
        (RIS, 0),
        (MIS, 0),
        (RSR_ECR, 0),
        (FR, 0x97), // TXFE | RXFE | DCD | DSR | CTS
        (ILPR, 0),
    ];
    for (reg, v) in expect {
        assert_eq!(vm.readl(reg), v, "{reg:#x}");
    }
    let hw = Vm::new(Pl011::new_hw_reset(INTID, Out::default()));
    let mut hw = hw;
    for (reg, v) in [(CR, 0x300), (LCR_H, 0), (IBRD, 0), (FBRD, 0), (IFLS, 0x12)] {
        assert_eq!(hw.readl(reg), v, "{reg:#x}");
    }
    let ids: Vec<u32> = (0..8).map(|i| hw.readl(PERIPH_ID0 + 4 * i)).collect();
    assert_eq!(ids, [0x11, 0x10, 0x34, 0x00, 0x0D, 0xF0, 0x05, 0xB1]);
    // Byte and halfword reads of the IDs work too.
    assert_eq!(hw.read(PERIPH_ID0 + 8, AccessSize::Byte), 0x34);
    assert_eq!(hw.read(PCELL_ID0 + 0xC, AccessSize::Half), 0xB1);
}

#[test]
fn dr_byte_read_pops_and_double_read_does_not() {
    let (mut vm, _) = uart();
    assert_eq!(vm.input(b"ab"), 2);
    assert_eq!(vm.read(DR, AccessSize::Double), 0, "refused: no pop");
    assert_eq!(vm.read(DR, AccessSize::Byte), u64::from(b'a'));
    assert_eq!(vm.read(DR, AccessSize::Word), u64::from(b'b'));
    assert_eq!(vm.read(DR, AccessSize::Word), 0, "empty FIFO reads 0");
    assert_ne!(vm.readl(FR) & u32::from(FR_RXFE), 0);
}

#[test]
fn narrow_write_is_zero_extended() {
    let (mut vm, _) = uart();
    // writeb to CR: the high byte (TXE, RXE) becomes 0, as with QEMU's PL011.
    vm.writeb(CR, 0x01);
    assert_eq!(vm.readl(CR), 0x01);
    assert_eq!(vm.input(b"x"), 0, "RXE now clear");
}

#[test]
fn rx_overflow_sets_oe_in_rsr_ris_and_the_next_dr() {
    let (mut vm, _) = uart();
    vm.writel(IMSC, u32::from(INT_OE));
    let input: Vec<u8> = (0..40).collect();
    assert_eq!(vm.uart.rx_space(), 32);
    assert_eq!(vm.input(&input), 32);
    assert!(vm.irq(), "OEIM unmasked: line high");
    assert_eq!(vm.readl(RSR_ECR), u32::from(RSR_OE));
    let fr = vm.readl(FR) as u16;
    assert_eq!(fr & (FR_RXFF | FR_RXFE), FR_RXFF);
    // The stored bytes are the first 32, unflagged.
    for i in 0..32 {
        assert_eq!(vm.readl(DR), i);
    }
    assert_eq!(vm.input(&[99, 100]), 2);
    assert_eq!(
        vm.readl(DR),
        u32::from(DR_OE) | 99,
        "OE rides on the next byte stored"
    );
    assert_eq!(vm.readl(DR), 100);
    vm.writel(ICR, u32::from(INT_OE));
    assert!(!vm.irq());
    assert_eq!(vm.readl(RSR_ECR), u32::from(RSR_OE), "RSR.OE until ECR");
    vm.writeb(RSR_ECR, 0);
    assert_eq!(vm.readl(RSR_ECR), 0);
    let s = vm.uart.with(|u| u.stats()).unwrap();
    assert_eq!((s.rx_bytes, s.rx_overruns), (34, 8));
}

#[test]
fn holding_register_mode_without_fen() {
    let (mut vm, out) = uart();
    vm.writel(LCR_H, u32::from(LCR_H_WLEN_8));
    vm.writel(IMSC, u32::from(INT_RX));
    assert_eq!(vm.uart.rx_space(), 1);
    assert_eq!(vm.input(b"ab"), 1, "one-byte holding register");
    assert!(vm.irq(), "RXIS on every character without FIFO");
    assert_eq!(vm.readl(FR) as u16 & (FR_RXFF | FR_RXFE), FR_RXFF);
    assert_eq!(vm.readl(DR), u32::from(b'a'));
    assert!(!vm.irq());
    assert_eq!(vm.readl(RSR_ECR), u32::from(RSR_OE));
    // TX: the holding register empties at once.
    vm.writel(DR, u32::from(b'z'));
    assert_eq!(vm.readl(FR) as u16 & (FR_TXFF | FR_TXFE | FR_BUSY), FR_TXFE);
    assert_eq!(out.text(), "z");
}

#[test]
fn fen_change_flushes_both_fifos() {
    let (mut vm, out) = uart();
    vm.writel(IMSC, u32::from(INT_RT));
    assert_eq!(vm.input(b"abc"), 3);
    assert!(vm.irq());
    vm.writel(CR, u32::from(CR_UARTEN | CR_RXE)); // TX off: bytes held
    vm.writel(DR, u32::from(b'q'));
    vm.writel(LCR_H, u32::from(LCR_H_WLEN_8)); // FEN off
    assert!(!vm.irq(), "RX flushed: RTIS gone");
    assert_eq!(
        vm.readl(FR) as u16 & (FR_RXFE | FR_TXFE | FR_BUSY),
        FR_RXFE | FR_TXFE
    );
    vm.writel(CR, u32::from(CR_UARTEN | CR_RXE | CR_TXE));
    assert_eq!(out.text(), "", "the held byte was flushed");
    assert_eq!(vm.uart.with(|u| u.stats().tx_lost), Some(1));
    // Setting the same FEN again flushes nothing.
    assert_eq!(vm.input(b"x"), 1);
    vm.writel(LCR_H, u32::from(LCR_H_WLEN_8));
    assert_eq!(vm.readl(DR), u32::from(b'x'));
}

#[test]
fn disabled_transmitter_holds_up_to_the_fifo_and_txis_follows_the_trigger() {
    let (mut vm, out) = uart();
    vm.writel(IMSC, u32::from(INT_TX));
    vm.writel(DR, u32::from(b'0'));
    assert!(vm.irq(), "instant TX: TXRIS after the write");
    assert_eq!(out.take(), "0");
    // Transmitter off (UARTEN kept): the FIFO fills.
    vm.writel(CR, u32::from(CR_UARTEN | CR_RXE));
    for i in 0..16u8 {
        vm.writel(DR, u32::from(b'@' + i));
        assert!(vm.irq(), "at or below the TX trigger (16): TXRIS stays");
    }
    vm.writel(DR, u32::from(b'q'));
    assert!(!vm.irq(), "above the trigger: TXRIS cleared");
    for i in 17..32u8 {
        vm.writel(DR, u32::from(b'@' + i));
    }
    let fr = vm.readl(FR) as u16;
    assert_eq!(fr & (FR_TXFF | FR_TXFE | FR_BUSY), FR_TXFF | FR_BUSY);
    vm.writel(DR, u32::from(b'!'));
    assert_eq!(
        vm.uart.with(|u| u.stats().tx_lost),
        Some(1),
        "write to a full FIFO"
    );
    assert_eq!(out.text(), "");
    // UARTEN off too, then TXE back on: still held until both are set.
    vm.writel(CR, u32::from(CR_TXE | CR_RXE));
    assert_eq!(out.text(), "");
    vm.writel(CR, u32::from(CR_UARTEN | CR_TXE | CR_RXE));
    let expect: String = (0..32u8)
        .map(|i| if i == 16 { 'q' } else { char::from(b'@' + i) })
        .collect();
    assert_eq!(out.text(), expect);
    assert!(vm.irq(), "drained: TXRIS");
    assert_eq!(vm.readl(FR) as u16 & (FR_TXFE | FR_BUSY), FR_TXFE);
    vm.writel(ICR, u32::from(INT_TX));
    assert!(!vm.irq(), "ICR clears TXRIS until the next write");
    vm.writel(DR, u32::from(b'.'));
    assert!(vm.irq());
}

#[test]
fn rx_trigger_levels_follow_ifls() {
    for (sel, level) in [
        (0u32, 4usize),
        (1, 8),
        (2, 16),
        (3, 24),
        (4, 28),
        (5, 16),
        (7, 16),
    ] {
        let (mut vm, _) = uart();
        vm.writel(IFLS, sel << 3);
        vm.writel(IMSC, u32::from(INT_RX));
        assert_eq!(vm.input(&vec![b'.'; level - 1]), level - 1);
        assert!(!vm.irq(), "sel {sel}: below {level}");
        assert_eq!(vm.input(b"."), 1);
        assert!(vm.irq(), "sel {sel}: reached {level}");
        vm.readl(DR);
        assert!(!vm.irq(), "sel {sel}: read below {level}");
    }
}

#[test]
fn receiver_gating_and_rx_space() {
    let (mut vm, _) = uart();
    vm.writel(CR, u32::from(CR_TXE | CR_RXE)); // UARTEN off
    assert_eq!(vm.uart.rx_space(), 0);
    assert_eq!(vm.input(b"abc"), 0);
    assert!(!vm.uart.push_break(&mut vm.line));
    vm.writel(CR, u32::from(CR_UARTEN | CR_TXE));
    assert_eq!(vm.input(b"abc"), 0, "RXE off");
    vm.writel(CR, u32::from(CR_UARTEN | CR_TXE | CR_RXE));
    assert_eq!(vm.input(b"abc"), 3);
    assert_eq!(vm.uart.rx_space(), 29);
    assert_eq!(vm.uart.with(|u| u.stats().rx_disabled), Some(6));
}

#[test]
fn cts_flow_control_in_loopback_gates_transmission() {
    let (mut vm, _) = uart();
    // Loopback with CTSEN and RTS low: CTS (= RTS) deasserted, nothing moves.
    let base = CR_UARTEN | CR_TXE | CR_RXE | CR_LBE | CR_CTSEN;
    vm.writel(CR, u32::from(base));
    vm.writel(DR, u32::from(b'k'));
    assert_ne!(vm.readl(FR) as u16 & FR_BUSY, 0);
    assert_ne!(vm.readl(FR) as u16 & FR_RXFE, 0);
    vm.writel(CR, u32::from(base | CR_RTS));
    assert_eq!(vm.readl(FR) as u16 & (FR_BUSY | FR_RXFE), 0, "sent into RX");
    assert_eq!(vm.readl(DR), u32::from(b'k'));
}

#[test]
fn reset_lowers_the_line_and_empties_fifos() {
    let (mut vm, _) = uart();
    vm.writel(IMSC, u32::from(INT_RT));
    vm.input(b"abc");
    assert!(vm.irq());
    let mut line = std::mem::take(&mut vm.line);
    vm.uart.with(|u| u.reset(&mut line)).unwrap();
    vm.line = line;
    assert!(!vm.irq());
    assert_eq!(vm.readl(IMSC), 0);
    assert_ne!(vm.readl(FR) as u16 & FR_RXFE, 0);
}

#[test]
fn shared_handle_refuses_reentry_without_panicking() {
    let (vm, _) = uart();
    let other = vm.uart.clone();
    struct NoLine;
    impl IrqLines for NoLine {
        fn set_level(&mut self, _: u32, _: bool) {}
    }
    let inner = vm.uart.with(|_| other.push_input(b"x", &mut NoLine));
    assert_eq!(inner, Some(0), "busy: nothing stored, no panic");
    assert_eq!(vm.uart.with(|_| other.rx_space()), Some(0));
}
