//! The PL011 driven the way Linux 6.1 drives it: `drivers/tty/serial/amba-pl011.c`
//! (Debian `linux-source-6.1`), `drivers/amba/bus.c` for the probe, earlycon's `pl011_putc`.
//! Each step below transliterates the named driver function's register accesses, in order,
//! with the access width the driver uses (`UPIO_MEM`: 16-bit, since `vendor_arm` has no
//! `access_32b` and QEMU virt's node no `reg-io-width`; earlycon `mmio32`: 32-bit).
//! The interrupt line is checked against MIS after every step.

// Test code: clippy.toml allows these inside #[test] functions; the driver transliterations
// and helpers around them need it spelled out.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{INTID, Out, Vm};
use console::LineWriter;
use pl011::{Pl011, regs::*};

// include/linux/amba/serial.h, under the driver's names.
const UART01X_DR: u64 = DR;
const UART01X_FR: u64 = FR;
const UART01X_FR_MODEM_ANY: u16 = FR_DCD | FR_DSR | FR_CTS;
const UART011_IFLS_RX4_8: u16 = 2 << 3;
const UART011_IFLS_TX4_8: u16 = 2;
/// `pl011_fifo_to_tty` ORs this into every character; `CREAD` off ignores it.
const UART_DUMMY_DR_RX: u32 = 1 << 16;
const UART_DR_ERROR: u32 = (DR_OE | DR_BE | DR_PE | DR_FE) as u32;
const AMBA_ISR_PASS_LIMIT: u32 = 256;

/// `struct uart_amba_port`, the parts the register accesses depend on.
struct Driver {
    /// `uap->im`: the driver's copy of IMSC.
    im: u16,
    /// `uap->fifosize`.
    fifosize: usize,
    /// `port->state->xmit`.
    xmit: std::collections::VecDeque<u8>,
    /// Characters `uart_insert_char` got: (char, flag).
    tty: Vec<(u8, Flag)>,
    /// `port->icount`.
    overrun: u32,
    brk: u32,
    /// `port->read_status_mask` (`pl011_setup_status_masks`).
    read_status_mask: u32,
    /// `uap->old_status`.
    old_status: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flag {
    Normal,
    Break,
    Overrun,
}

impl Driver {
    fn new(fifosize: usize) -> Self {
        Driver {
            im: 0,
            fifosize,
            xmit: Default::default(),
            tty: Vec::new(),
            overrun: 0,
            brk: 0,
            read_status_mask: 0,
            old_status: 0,
        }
    }
}

type Uart = Vm<LineWriter<Out>>;

fn guest_uart() -> (Uart, Out) {
    let out = Out::default();
    let vm = Vm::new(Pl011::new(INTID, LineWriter::guest("ttyAMA0", out.clone())));
    (vm, out)
}

/// drivers/amba/bus.c `amba_read_periphid`: `readl(base + size - 0x20 + 4 * i) & 255`.
fn amba_read_periphid(vm: &mut Uart) -> (u32, u32) {
    let size = pl011::REGION_SIZE;
    let (mut pid, mut cid) = (0u32, 0u32);
    for i in 0..4u64 {
        pid |= (vm.readl(size - 0x20 + 4 * i) & 255) << (i * 8);
    }
    for i in 0..4u64 {
        cid |= (vm.readl(size - 0x10 + 4 * i) & 255) << (i * 8);
    }
    (pid, cid)
}

/// `pl011_register_port` (from `pl011_probe`): mask and clear everything.
fn pl011_register_port(vm: &mut Uart) {
    vm.writew(IMSC, 0);
    vm.writew(ICR, 0xffff);
}

/// `pl011_console_get_options`, for `console=ttyAMA0` without options: returns the baud
/// rate it computes, or None when the UART is disabled (the driver then uses 38400).
fn pl011_console_get_options(vm: &mut Uart, uartclk: u32) -> Option<u32> {
    if vm.readw(CR) & CR_UARTEN == 0 {
        return None;
    }
    let lcr_h = vm.readw(LCR_H) as u8;
    assert_eq!(lcr_h & LCR_H_PEN, 0, "parity 'n'");
    assert_eq!(lcr_h & 0x60, LCR_H_WLEN_8, "8 bits");
    let ibrd = u32::from(vm.readw(IBRD));
    let fbrd = u32::from(vm.readw(FBRD));
    // `*baud = uap->port.uartclk * 4 / (64 * ibrd + fbrd);` divides by zero if both are 0.
    Some(uartclk * 4 / (64 * ibrd + fbrd))
}

/// `pl011_setup_status_masks` with `INPCK` off and `BRKINT` on (the tty default).
fn pl011_setup_status_masks(d: &mut Driver) {
    d.read_status_mask = u32::from(DR_OE | 255 | DR_BE);
}

/// `pl011_set_termios` for 8N1, no `CRTSCTS`; `clocal` false enables modem-status
/// interrupts (`UART_ENABLE_MS` -> `pl011_enable_ms`).
fn pl011_set_termios(vm: &mut Uart, d: &mut Driver, uartclk: u32, baud: u32, clocal: bool) {
    let quot = if baud > uartclk / 16 {
        (uartclk * 8 + baud / 2) / baud
    } else {
        (uartclk * 4 + baud / 2) / baud
    };
    let mut lcr_h = LCR_H_WLEN_8;
    if d.fifosize > 1 {
        lcr_h |= LCR_H_FEN;
    }
    pl011_setup_status_masks(d);
    if !clocal {
        // pl011_enable_ms
        d.im |= INT_RIM | INT_CTSM | INT_DCDM | INT_DSRM;
        vm.writew(IMSC, d.im);
    }
    let mut old_cr = vm.readw(CR);
    old_cr &= !(CR_CTSEN | CR_RTSEN);
    vm.writew(FBRD, (quot & 0x3f) as u16);
    vm.writew(IBRD, (quot >> 6) as u16);
    // pl011_write_lcr_h: LCRH_RX == LCRH_TX for vendor_arm, one write.
    vm.writew(LCR_H, lcr_h.into());
    vm.writew(CR, old_cr);
}

/// `pl011_console_putchar`: poll TXFF, write DR. Returns the polls needed.
fn pl011_console_putchar(vm: &mut Uart, ch: u8) -> u32 {
    let mut polls = 1;
    while vm.readw(UART01X_FR) & FR_TXFF != 0 {
        polls += 1;
        assert!(polls < 100, "TXFF never clears");
    }
    vm.writew(UART01X_DR, ch.into());
    polls
}

/// `uart_console_write`: '\n' becomes "\r\n".
fn uart_console_write(vm: &mut Uart, s: &str, putchar: fn(&mut Uart, u8) -> u32) {
    for &c in s.as_bytes() {
        if c == b'\n' {
            assert_eq!(putchar(vm, b'\r'), 1);
        }
        assert_eq!(putchar(vm, c), 1, "an instant transmitter is never full");
    }
}

/// `pl011_console_write`: force UARTEN | TXE, write, wait for !BUSY, restore CR.
fn pl011_console_write(vm: &mut Uart, s: &str) {
    let old_cr = vm.readw(CR);
    let new_cr = (old_cr & !CR_CTSEN) | CR_UARTEN | CR_TXE;
    vm.writew(CR, new_cr);
    uart_console_write(vm, s, pl011_console_putchar);
    assert_eq!(
        vm.readw(UART01X_FR) & FR_BUSY,
        0,
        "not busy after the last byte"
    );
    vm.writew(CR, old_cr);
}

/// `pl011_hwinit`.
fn pl011_hwinit(vm: &mut Uart, d: &mut Driver) {
    vm.writew(ICR, INT_OE | INT_BE | INT_PE | INT_FE | INT_RT | INT_RX);
    d.im = vm.readw(IMSC);
    vm.writew(IMSC, INT_RT | INT_RX);
}

/// `pl011_startup`: hwinit, `pl011_allocate_irq`, IFLS, CR, modem status,
/// `pl011_enable_interrupts`.
fn pl011_startup(vm: &mut Uart, d: &mut Driver) {
    pl011_hwinit(vm, d);
    // pl011_allocate_irq
    vm.writew(IMSC, d.im);
    vm.writew(IFLS, UART011_IFLS_RX4_8 | UART011_IFLS_TX4_8);
    let mut cr = vm.readw(CR);
    cr &= CR_RTS | CR_DTR;
    cr |= CR_UARTEN | CR_RXE | CR_TXE;
    vm.writew(CR, cr);
    d.old_status = vm.readw(UART01X_FR) & UART01X_FR_MODEM_ANY;
    // pl011_enable_interrupts
    vm.writew(ICR, INT_RT | INT_RX);
    for _ in 0..d.fifosize * 2 {
        if vm.readw(UART01X_FR) & FR_RXFE != 0 {
            break;
        }
        vm.readw(UART01X_DR);
    }
    d.im = INT_RT | INT_RX;
    vm.writew(IMSC, d.im);
}

/// `pl011_stop_tx`.
fn pl011_stop_tx(vm: &mut Uart, d: &mut Driver) {
    d.im &= !INT_TX;
    vm.writew(IMSC, d.im);
}

/// `pl011_tx_char`.
fn pl011_tx_char(vm: &mut Uart, c: u8, from_irq: bool) -> bool {
    if !from_irq && vm.readw(UART01X_FR) & FR_TXFF != 0 {
        return false;
    }
    vm.writew(UART01X_DR, c.into());
    true
}

/// `pl011_tx_chars`: true if TX interrupts must stay enabled.
fn pl011_tx_chars(vm: &mut Uart, d: &mut Driver, from_irq: bool) -> bool {
    let mut count = d.fifosize >> 1;
    if d.xmit.is_empty() {
        pl011_stop_tx(vm, d);
        return false;
    }
    loop {
        if from_irq {
            if count == 0 {
                break;
            }
            count -= 1;
        }
        let Some(&c) = d.xmit.front() else { break };
        if !pl011_tx_char(vm, c, from_irq) {
            break;
        }
        d.xmit.pop_front();
        if d.xmit.is_empty() {
            break;
        }
    }
    if d.xmit.is_empty() {
        pl011_stop_tx(vm, d);
        return false;
    }
    true
}

/// `pl011_start_tx` -> `pl011_start_tx_pio`.
fn pl011_start_tx(vm: &mut Uart, d: &mut Driver) {
    if pl011_tx_chars(vm, d, false) {
        d.im |= INT_TX;
        vm.writew(IMSC, d.im);
    }
}

/// `pl011_fifo_to_tty` (via `pl011_rx_chars`).
fn pl011_fifo_to_tty(vm: &mut Uart, d: &mut Driver) -> usize {
    let mut taken = 0;
    while taken != 256 {
        if vm.readw(UART01X_FR) & FR_RXFE != 0 {
            break;
        }
        let mut ch = u32::from(vm.readw(UART01X_DR)) | UART_DUMMY_DR_RX;
        taken += 1;
        let mut flag = Flag::Normal;
        if ch & UART_DR_ERROR != 0 {
            if ch & u32::from(DR_BE) != 0 {
                ch &= !u32::from(DR_FE | DR_PE);
                d.brk += 1;
            }
            if ch & u32::from(DR_OE) != 0 {
                d.overrun += 1;
            }
            ch &= d.read_status_mask;
            if ch & u32::from(DR_BE) != 0 {
                flag = Flag::Break;
            }
        }
        // uart_insert_char(port, ch, UART011_DR_OE, ch, flag): an overrun adds a TTY_OVERRUN.
        d.tty.push(((ch & 255) as u8, flag));
        if ch & u32::from(DR_OE) != 0 {
            d.tty.push((0, Flag::Overrun));
        }
    }
    taken
}

/// `pl011_int`: returns whether it handled anything (`IRQ_RETVAL(handled)`).
fn pl011_int(vm: &mut Uart, d: &mut Driver) -> bool {
    let mut pass_counter = AMBA_ISR_PASS_LIMIT;
    let mut status = vm.readw(RIS) & d.im;
    if status == 0 {
        return false;
    }
    loop {
        vm.writew(ICR, status & !(INT_TX | INT_RT | INT_RX));
        if status & (INT_RT | INT_RX) != 0 {
            pl011_fifo_to_tty(vm, d);
        }
        if status & (INT_DSRM | INT_DCDM | INT_CTSM | INT_RIM) != 0 {
            // pl011_modem_status
            let s = vm.readw(UART01X_FR) & UART01X_FR_MODEM_ANY;
            d.old_status = s;
        }
        if status & INT_TX != 0 {
            pl011_tx_chars(vm, d, true);
        }
        if pass_counter == 0 {
            panic!("pl011_int: AMBA_ISR_PASS_LIMIT reached");
        }
        pass_counter -= 1;
        status = vm.readw(RIS) & d.im;
        if status == 0 {
            break;
        }
    }
    true
}

/// `pl011_shutdown`: `pl011_disable_interrupts`, `pl011_disable_uart`.
fn pl011_shutdown(vm: &mut Uart, d: &mut Driver) {
    d.im = 0;
    vm.writew(IMSC, d.im);
    vm.writew(ICR, 0xffff);
    let mut cr = vm.readw(CR);
    cr &= CR_RTS | CR_DTR;
    cr |= CR_UARTEN | CR_TXE;
    vm.writew(CR, cr);
    // pl011_shutdown_channel(uap, REG_LCRH_RX)
    let val = vm.readw(LCR_H) & !u16::from(LCR_H_BRK | LCR_H_FEN);
    vm.writew(LCR_H, val);
}

/// earlycon `pl011_putc` (`earlycon=pl011,mmio32,...`): poll TXFF, writel DR, poll BUSY.
fn pl011_putc(vm: &mut Uart, c: u8) -> u32 {
    let mut polls = 1;
    while vm.readl(UART01X_FR) & u32::from(FR_TXFF) != 0 {
        polls += 1;
        assert!(polls < 100, "TXFF never clears");
    }
    vm.writel(UART01X_DR, c.into());
    while vm.readl(UART01X_FR) & u32::from(FR_BUSY) != 0 {
        polls += 1;
        assert!(polls < 100, "BUSY never clears");
    }
    polls
}

/// earlycon `pl011_putc` for `earlycon=pl011,mmio,...`: the store is `writeb`.
fn pl011_putc_mmio8(vm: &mut Uart, c: u8) -> u32 {
    while vm.readl(UART01X_FR) & u32::from(FR_TXFF) != 0 {}
    vm.writeb(UART01X_DR, c);
    while vm.readl(UART01X_FR) & u32::from(FR_BUSY) != 0 {}
    1
}

/// `pl011_getc` (earlycon read, `CONFIG_CONSOLE_POLL`).
fn pl011_getc(vm: &mut Uart) -> Option<u8> {
    if vm.readl(UART01X_FR) & u32::from(FR_RXFE) != 0 {
        return None;
    }
    Some(vm.readl(UART01X_DR) as u8)
}

#[test]
fn amba_probe_matches_pl011_r1p5() {
    let (mut vm, _) = guest_uart();
    let (pid, cid) = amba_read_periphid(&mut vm);
    assert_eq!(cid, 0xb105_f00d, "AMBA_CID");
    assert_eq!(pid, 0x0034_1011);
    // pl011_ids[0]: { .id = 0x00041011, .mask = 0x000fffff, .data = &vendor_arm }
    assert_eq!(pid & 0x000f_ffff, 0x0004_1011);
    // amba_rev() = 3: get_fifosize_arm() -> 32.
    assert_eq!((pid >> 20) & 0xf, 3);
    assert_eq!(amba_part(pid), 0x011);
    assert_eq!(amba_manf(pid), 0x41);
    assert!(!vm.irq());
}

fn amba_part(pid: u32) -> u32 {
    pid & 0xfff
}

fn amba_manf(pid: u32) -> u32 {
    (pid >> 12) & 0xff
}

#[test]
fn earlycon_pl011_putc_mmio32_and_mmio() {
    let (mut vm, out) = guest_uart();
    uart_console_write(
        &mut vm,
        "Booting Linux on physical CPU 0x0000000000 [0x410fd083]\n",
        pl011_putc,
    );
    uart_console_write(&mut vm, "Linux version 6.1.0\n", pl011_putc_mmio8);
    assert_eq!(
        out.take(),
        "[guest ttyAMA0] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\n\
         [guest ttyAMA0] Linux version 6.1.0\n"
    );
    assert!(
        vm.line.changes.is_empty(),
        "earlycon runs with IMSC = 0: no interrupt"
    );
    // pl011_early_read -> pl011_getc.
    assert_eq!(pl011_getc(&mut vm), None);
    assert_eq!(vm.input(b"ok"), 2);
    assert_eq!(pl011_getc(&mut vm), Some(b'o'));
    assert_eq!(pl011_getc(&mut vm), Some(b'k'));
    assert_eq!(pl011_getc(&mut vm), None);
    assert!(!vm.irq());
}

#[test]
fn earlycon_on_a_uart_left_at_hardware_reset_holds_the_byte() {
    let out = Out::default();
    let mut vm = Vm::new(Pl011::new_hw_reset(INTID, out.clone()));
    assert_eq!(vm.readl(CR), 0x300, "TRM reset: TXE | RXE, UART disabled");
    // pl011_putc: TXFF is clear, the write lands in the 1-byte holding register ...
    assert_eq!(vm.readl(UART01X_FR) & u32::from(FR_TXFF), 0);
    vm.writel(UART01X_DR, u32::from(b'B'));
    // ... and BUSY never clears: the reason `Pl011::new` starts enabled.
    for _ in 0..1000 {
        assert_ne!(vm.readl(UART01X_FR) & u32::from(FR_BUSY), 0);
    }
    assert_eq!(
        vm.readl(UART01X_FR) & u32::from(FR_TXFF | FR_TXFE),
        u32::from(FR_TXFF)
    );
    vm.writel(UART01X_DR, u32::from(b'X'));
    assert_eq!(out.text(), "");
    // Enabling the UART sends what was held; the byte written to the full register is lost.
    vm.writel(CR, u32::from(CR_UARTEN | CR_TXE | CR_RXE));
    assert_eq!(out.text(), "B");
    assert_eq!(vm.uart.with(|u| u.stats().tx_lost), Some(1));
    assert_eq!(vm.readl(UART01X_FR) & u32::from(FR_BUSY), 0);
    assert!(!vm.irq());
}

/// The whole life of ttyAMA0: probe, console, getty opens it, output (polled and
/// interrupt-driven), input (below and above the RX trigger, overrun, break), close.
#[test]
fn linux_console_and_tty_lifecycle() {
    const UARTCLK: u32 = pl011::UARTCLK_HZ;
    let (mut vm, out) = guest_uart();
    let mut d = Driver::new(32);

    // pl011_probe -> pl011_register_port
    pl011_register_port(&mut vm);
    assert!(!vm.irq());

    // register_console -> pl011_console_match / pl011_console_setup without options:
    // pl011_console_get_options finds the UART enabled and reads back 115200 8N1.
    let baud = pl011_console_get_options(&mut vm, UARTCLK).unwrap();
    assert_eq!(baud, 115_246, "24 MHz * 4 / (64 * 13 + 1)");
    // uart_set_options rounds to the standard rate, then pl011_set_termios.
    pl011_set_termios(&mut vm, &mut d, UARTCLK, 115_200, true);
    assert_eq!((vm.readw(IBRD), vm.readw(FBRD)), (13, 1));
    assert_eq!(vm.readw(LCR_H), 0x70);
    assert!(!vm.irq());

    // printk -> pl011_console_write -> pl011_console_putchar
    pl011_console_write(&mut vm, "Serial: AMBA PL011 UART driver\n");
    pl011_console_write(
        &mut vm,
        "9000000.pl011: ttyAMA0 at MMIO 0x9000000 (irq = 13, base_baud = 0) is a PL011 rev3\n",
    );
    assert_eq!(
        out.take(),
        "[guest ttyAMA0] Serial: AMBA PL011 UART driver\n\
         [guest ttyAMA0] 9000000.pl011: ttyAMA0 at MMIO 0x9000000 (irq = 13, base_baud = 0) is a PL011 rev3\n"
    );
    assert!(!vm.irq(), "IMSC is 0: TXRIS latched but masked");
    assert_ne!(vm.readw(RIS) & INT_TX, 0, "TXRIS set by the writes");

    // getty opens /dev/ttyAMA0: uart_startup -> pl011_startup, then pl011_set_termios
    // without CLOCAL (modem-status interrupts on).
    pl011_startup(&mut vm, &mut d);
    assert_eq!(vm.readw(IFLS), 0x12);
    assert_eq!(
        vm.readw(CR) & (CR_UARTEN | CR_TXE | CR_RXE),
        CR_UARTEN | CR_TXE | CR_RXE
    );
    assert_eq!(d.old_status, UART01X_FR_MODEM_ANY, "CTS, DSR, DCD asserted");
    assert!(!vm.irq());
    pl011_set_termios(&mut vm, &mut d, UARTCLK, 115_200, false);
    assert!(!vm.irq(), "constant modem lines: no modem-status interrupt");
    assert_eq!(
        d.im,
        INT_RT | INT_RX | INT_RIM | INT_CTSM | INT_DCDM | INT_DSRM
    );

    // tty write "login: " -> pl011_start_tx -> pl011_start_tx_pio -> pl011_tx_chars(false):
    // TXFF never set, so everything goes out, pl011_stop_tx, TXIM stays masked.
    d.xmit.extend(b"\r\nlogin: ");
    pl011_start_tx(&mut vm, &mut d);
    assert!(d.xmit.is_empty());
    assert_eq!(d.im & INT_TX, 0);
    assert!(!vm.irq());
    assert_eq!(
        out.text(),
        "[guest ttyAMA0] \n",
        "the prompt waits in the line buffer"
    );
    vm.uart.flush();
    assert_eq!(out.take(), "[guest ttyAMA0] \n[guest ttyAMA0] login: \n");

    // Interrupt-driven TX, as when pl011_tx_chars(false) returned true and
    // pl011_start_tx_pio unmasked TXIM: TXRIS is set (the FIFO is empty), so the line rises;
    // pl011_int sends fifosize/2 bytes per pass and re-reads RIS until pl011_stop_tx.
    let text = "Debian GNU/Linux 12 debian ttyAMA0 -- a line longer than sixteen bytes\r\n";
    d.xmit.extend(text.as_bytes());
    d.im |= INT_TX;
    vm.writew(IMSC, d.im);
    assert!(vm.irq(), "TXIM unmasked with TXRIS set: line high");
    assert_eq!(vm.readw(MIS), INT_TX);
    assert!(pl011_int(&mut vm, &mut d));
    assert!(d.xmit.is_empty());
    assert_eq!(d.im & INT_TX, 0, "pl011_tx_chars -> pl011_stop_tx");
    assert!(!vm.irq(), "TXIM masked: line low");
    assert_eq!(
        out.take(),
        "[guest ttyAMA0] Debian GNU/Linux 12 debian ttyAMA0 -- a line longer than sixteen bytes\n"
    );
    assert_eq!(vm.line.changes, [true, false]);

    // Input below the RX trigger (16): only the receive timeout, RTIS.
    assert_eq!(vm.uart.rx_space(), 32);
    assert_eq!(vm.input(b"root\r"), 5);
    assert!(vm.irq());
    assert_eq!(vm.readw(MIS), INT_RT);
    assert!(pl011_int(&mut vm, &mut d));
    assert!(!vm.irq(), "FIFO read empty: RTIS cleared, line low");
    assert_eq!(take_tty(&mut d), b"root\r");

    // Input at or above the trigger: RXIS and RTIS.
    let twenty = b"abcdefghijklmnopqrst";
    assert_eq!(vm.input(twenty), 20);
    assert!(vm.irq());
    assert_eq!(vm.readw(MIS), INT_RX | INT_RT);
    assert!(pl011_int(&mut vm, &mut d));
    assert!(!vm.irq());
    assert_eq!(take_tty(&mut d), twenty);

    // A paste of 40 bytes into the 32-entry FIFO: 8 lost, overrun.
    let paste: Vec<u8> = (0..40u8).map(|i| b'A' + (i % 26)).collect();
    assert_eq!(vm.input(&paste), 32);
    assert_eq!(vm.uart.rx_space(), 0);
    assert_eq!(vm.readw(RSR_ECR), u16::from(RSR_OE), "RSR.OE set at once");
    assert_eq!(vm.readw(RIS) & INT_OE, INT_OE, "OERIS set");
    assert_eq!(vm.readw(MIS), INT_RX | INT_RT, "Linux leaves OEIM masked");
    assert_ne!(vm.readw(UART01X_FR) & FR_RXFF, 0);
    assert!(vm.irq());
    // pl011_int reads the 32 stored bytes (none flagged: the lost bytes came after them).
    assert!(pl011_int(&mut vm, &mut d));
    assert!(!vm.irq());
    assert_eq!(take_tty(&mut d), &paste[..32]);
    assert_eq!(d.overrun, 0);
    // The next byte stored carries DR.OE: the tty gets the byte and a TTY_OVERRUN.
    assert_eq!(vm.input(b"Z"), 1);
    assert!(pl011_int(&mut vm, &mut d));
    assert_eq!(d.overrun, 1);
    assert_eq!(d.tty, [(b'Z', Flag::Normal), (0, Flag::Overrun)]);
    d.tty.clear();
    // RSR keeps OE until ECR is written.
    assert_eq!(vm.readw(RSR_ECR), u16::from(RSR_OE));
    vm.writew(RSR_ECR, 0);
    assert_eq!(vm.readw(RSR_ECR), 0);
    assert_eq!(
        vm.uart.with(|u| u.stats().rx_overruns),
        Some(8),
        "8 bytes lost"
    );

    // A break (Ctrl-A b on the console): BEIS, a NUL with DR.BE -> uart_handle_break.
    assert!(vm.uart.push_break(&mut vm.line));
    assert_eq!(vm.readw(RIS) & INT_BE, INT_BE, "BERIS set");
    assert_eq!(
        vm.readw(MIS),
        INT_RT,
        "Linux leaves BEIM masked; the timeout reports it"
    );
    assert!(pl011_int(&mut vm, &mut d));
    assert!(!vm.irq());
    assert_eq!(d.brk, 1);
    assert_eq!(d.tty, [(0, Flag::Break)]);
    d.tty.clear();

    // Last close: pl011_shutdown. Then the console keeps printing, FIFOs off.
    pl011_shutdown(&mut vm, &mut d);
    assert!(!vm.irq());
    assert_eq!(vm.readw(LCR_H) & u16::from(LCR_H_FEN), 0);
    assert_eq!(vm.readw(CR) & CR_RXE, 0);
    assert_eq!(vm.input(b"lost"), 0, "receiver disabled");
    assert_eq!(vm.uart.rx_space(), 0);
    pl011_console_write(&mut vm, "reboot: Power down\n");
    assert_eq!(out.take(), "[guest ttyAMA0] reboot: Power down\n");
    assert!(!vm.irq());
    // Raised and lowered once each for: TX interrupt, "root", 20 bytes, the paste, "Z", break.
    assert_eq!(vm.line.changes, [true, false].repeat(6));
}

fn take_tty(d: &mut Driver) -> Vec<u8> {
    let t = d.tty.iter().map(|&(c, f)| {
        assert_eq!(f, Flag::Normal);
        c
    });
    let v = t.collect();
    d.tty.clear();
    v
}

/// `pl011_set_mctrl` with TIOCM_LOOP (and `pl011_get_mctrl`): bytes come back on RX, modem
/// inputs follow the outputs, and a change raises the modem-status interrupt.
#[test]
fn loopback_via_tiocm_loop() {
    let (mut vm, out) = guest_uart();
    let mut d = Driver::new(32);
    pl011_register_port(&mut vm);
    pl011_startup(&mut vm, &mut d);
    // pl011_enable_ms
    d.im |= INT_RIM | INT_CTSM | INT_DCDM | INT_DSRM;
    vm.writew(IMSC, d.im);
    assert!(!vm.irq());

    // pl011_set_mctrl(TIOCM_LOOP | TIOCM_RTS): LBE and RTS on, DTR, OUT1, OUT2 off.
    let mut cr = vm.readw(CR);
    cr |= CR_LBE | CR_RTS;
    cr &= !(CR_DTR | CR_OUT1 | CR_OUT2);
    vm.writew(CR, cr);
    // In loopback CTS = RTS (unchanged: asserted), DSR = DTR, DCD = OUT1 dropped.
    assert_eq!(vm.readw(FR) & (UART01X_FR_MODEM_ANY | FR_RI), FR_CTS);
    assert!(vm.irq());
    assert_eq!(vm.readw(MIS), INT_DSRM | INT_DCDM);
    assert!(pl011_int(&mut vm, &mut d));
    assert_eq!(d.old_status, FR_CTS);
    assert!(!vm.irq());

    // External input is not received in loopback.
    assert_eq!(vm.input(b"x"), 0);

    d.xmit.extend(b"ping");
    pl011_start_tx(&mut vm, &mut d);
    assert_eq!(out.text(), "", "looped back, not sent");
    assert!(vm.irq());
    assert!(pl011_int(&mut vm, &mut d));
    assert_eq!(take_tty(&mut d), b"ping");
    assert!(!vm.irq());

    // Back to normal: the terminal's lines are asserted again.
    vm.writew(CR, cr & !CR_LBE);
    assert_eq!(
        vm.readw(FR) & (UART01X_FR_MODEM_ANY | FR_RI),
        UART01X_FR_MODEM_ANY
    );
    assert!(pl011_int(&mut vm, &mut d));
    assert!(!vm.irq());
}

/// `pl011_startup`'s comment: "RXIS is asserted only when the RX FIFO transitions from below
/// to above the trigger threshold". The model does the same; RTIS still reports the data.
#[test]
fn rxis_is_a_threshold_crossing_and_rtis_covers_the_rest() {
    let (mut vm, _) = guest_uart();
    vm.writew(IMSC, INT_RX);
    assert_eq!(vm.input(&[b'.'; 20]), 20);
    assert!(vm.irq());
    vm.writew(ICR, INT_RX);
    assert!(!vm.irq(), "cleared while above the trigger");
    assert_eq!(vm.input(b"..."), 3);
    assert!(!vm.irq(), "no new crossing: RXIS stays clear");
    assert_ne!(vm.readw(RIS) & INT_RT, 0, "the timeout interrupt is set");
    // Read below the trigger (16) and refill across it: RXIS again.
    for _ in 0..8 {
        vm.readw(DR);
    }
    assert_eq!(vm.input(b"."), 1);
    assert!(vm.irq());
}
