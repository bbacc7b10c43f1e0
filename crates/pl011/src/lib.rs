//! An emulated Arm PL011 UART, revision r1p5 (ARM DDI 0183G).
//!
//! Complete enough for Linux's `drivers/tty/serial/amba-pl011.c` (the AMBA bus probe, the
//! console, the tty with interrupts) and for `earlycon=pl011,mmio32,<addr>` (polled output).
//! The VMM registers it on the MMIO bus for its 4 KiB frame ([`REGION_SIZE`]); what the guest
//! sends goes to a [`ConsoleSink`] (normally a [`console::LineWriter`] over seL4's debug
//! output); what the user types is handed in with [`Pl011::push_input`].
//!
//! # Model
//!
//! * **Transmission is instant.** A byte written to DR while the transmitter is enabled
//!   (CR.UARTEN and CR.TXE, and CTS when CR.CTSEN) goes to the sink at once, so the transmit
//!   FIFO is empty again before the guest's next access: FR.TXFE = 1, FR.TXFF = FR.BUSY = 0,
//!   and the transmit interrupt (TXRIS) is set after every such write: the FIFO is at or below
//!   its trigger level. Linux's `pl011_tx_chars` relies on that to keep sending from its
//!   interrupt handler while TXIM is unmasked.
//! * **A disabled transmitter holds bytes.** Written while TX is disabled, bytes wait in the
//!   transmit FIFO (32 bytes with LCR_H.FEN, else a 1-byte holding register), FR.BUSY and
//!   FR.TXFE/TXFF say so, and they go out when TX is enabled. A guest that disables the
//!   transmitter and then polls FR.BUSY waits forever, as on hardware; a write to a full FIFO
//!   is lost. Both are logged once.
//! * **Receive FIFO.** 32 entries (1 without FEN) of data + error bits. Bytes from
//!   [`Pl011::push_input`] are received only while CR.UARTEN and CR.RXE are set and loopback
//!   is off ([`Pl011::rx_space`] says how many fit); one that arrives with the FIFO full is
//!   lost and sets the overrun error: RSR.OE and OEIS at once, DR.OE on the next character
//!   stored. RXRIS is set when the FIFO fill level reaches the IFLS trigger (every character
//!   without FEN) and cleared when reads take it below; the receive timeout RTRIS is set at
//!   the end of every [`Pl011::push_input`] that leaves data in the FIFO (the line goes idle
//!   right after) and cleared when the FIFO is read empty. ICR clears any of them.
//! * **Interrupt line.** Level-sensitive: driven high through [`IrqLines::set_level`] when
//!   MIS (= RIS & IMSC) becomes non-zero and low when it becomes zero; only changes are
//!   driven.
//! * **Modem lines.** Outside loopback the UART sees a terminal that is always ready: CTS,
//!   DSR and DCD asserted, RI not (so `CRTSCTS` and blocking opens without `CLOCAL` work). In
//!   loopback (CR.LBE) CTS, DSR, DCD and RI follow RTS, DTR, OUT1 and OUT2, a change sets the
//!   modem-status interrupt, and transmitted bytes go to the receive FIFO instead of the
//!   sink. CR.RTSEN (automatic RTS) has no visible effect.
//! * **Line settings** (ILPR, IBRD, FBRD, LCR_H, IFLS) read back what was written. Only
//!   LCR_H.FEN changes behaviour (FIFO depth; changing it empties both FIFOs, as QEMU's model
//!   does). Baud rate, word length, parity, stop bits and break do not matter to an emulated
//!   line: bytes pass unchanged in both directions (the TRM's reset word length is 5 bits,
//!   and a guest printing before it programs LCR_H still means 8-bit characters).
//! * **DMACR** reads as zero and ignores writes (no DMA; a device tree must not give the
//!   UART `dmas`).
//! * **IDs.** UARTPeriphID0-3 at 0xFE0-0xFEC read 0x11, 0x10, 0x34, 0x00 (part 0x011,
//!   designer Arm, revision 3 = r1p5, hence a 32-byte FIFO in Linux's `get_fifosize_arm`),
//!   UARTPCellID0-3 at 0xFF0-0xFFC read 0x0D, 0xF0, 0x05, 0xB1.
//!
//! # Accesses
//!
//! A register is accessed at its (4-byte aligned) offset with a 1-, 2- or 4-byte access:
//! Linux uses 16-bit accesses (`UPIO_MEM`) unless the device tree says `reg-io-width = <4>`,
//! earlycon's `mmio32` 32-bit ones, its `mmio` 8-bit stores to DR. A narrow read returns the
//! low bytes; a narrow write writes the value zero-extended (as QEMU's PL011 does). Everything
//! else is refused with an [`MmioError`], which the bus turns into read-as-zero /
//! write-ignored and logs once: 8-byte accesses, accesses not at a register's offset, the
//! reserved offsets (0x008-0x014, 0x01C, 0x04C-0xFDC), reads of ICR and writes to FR, RIS,
//! MIS and the ID registers. A read of DR with the receive FIFO empty returns 0.
//!
//! # Reset state
//!
//! [`Pl011::new`] starts the UART as firmware leaves it before jumping to a kernel: enabled
//! (CR = UARTEN | TXE | RXE), 8N1 with FIFOs (LCR_H = 0x70), IBRD/FBRD = 13/1 (115200 baud
//! from a [`UARTCLK_HZ`] clock). The VMM boots Linux directly, with no firmware, and
//! earlycon never enables the UART: with the hardware reset state (UART disabled) the first
//! earlycon byte would stay in the holding register and `pl011_putc` would spin on FR.BUSY
//! forever. The non-zero divisors matter too: Linux's `pl011_console_get_options` divides by
//! them when it finds the UART enabled. [`Pl011::new_hw_reset`] gives the TRM's reset values
//! for guests that program the UART themselves.
#![no_std]
#![forbid(unsafe_code)]
// Guest values never overflow silently: checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

mod fifo;
pub mod regs;
mod shared;

pub use shared::SharedPl011;

use console::ConsoleSink;
use core::fmt;
use fifo::Fifo;
use mmio_bus::{AccessSize, DeviceCtx, IrqLines, LogOnce, MmioDevice, MmioError};
use regs::*;

/// Size of the register frame.
pub const REGION_SIZE: u64 = 0x1000;
/// FIFO depth of an r1p5 PL011 (both directions).
pub const FIFO_DEPTH: usize = 32;
/// UARTPeriphID0-3 as the AMBA bus assembles them (`amba_read_periphid`).
pub const PERIPH_ID: u32 = 0x0034_1011;
/// UARTPCellID0-3 as the AMBA bus assembles them: `AMBA_CID`.
pub const PCELL_ID: u32 = 0xB105_F00D;
/// The device-tree `compatible` strings of a PL011 (the AMBA bus needs `arm,primecell`).
pub const COMPATIBLE: [&str; 2] = ["arm,pl011", "arm,primecell"];
/// The UART reference clock the reset divisors assume; a device tree gives the node a fixed
/// clock of this rate for both `uartclk` and `apb_pclk` (the AMBA bus refuses a PrimeCell
/// without `apb_pclk`).
pub const UARTCLK_HZ: u32 = 24_000_000;
/// Baud rate of the firmware reset state ([`Pl011::new`]).
pub const FIRMWARE_BAUD: u32 = 115_200;

/// The state [`Pl011::reset`] returns to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ResetState {
    /// As firmware leaves it: enabled, 115200 8N1, FIFOs on.
    Firmware,
    /// The TRM's reset values: disabled (CR = 0x300), FIFOs off, divisors zero.
    Hardware,
}

/// Counters for the VMM's statistics.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Pl011Stats {
    /// Bytes the guest transmitted (to the sink or, in loopback, to the receive FIFO).
    pub tx_bytes: u64,
    /// Bytes the guest wrote that were lost: FIFO full, or held and flushed by a FEN change.
    pub tx_lost: u64,
    /// Bytes stored in the receive FIFO.
    pub rx_bytes: u64,
    /// Bytes lost to a full receive FIFO (each sets the overrun error).
    pub rx_overruns: u64,
    /// Bytes not received because the receiver was disabled.
    pub rx_disabled: u64,
    /// Times the interrupt line went high.
    pub irqs: u64,
}

// Keys of the warn-once log (not addresses: the device's own events).
const LOG_TX_HELD: u64 = 1;
const LOG_TX_LOST: u64 = 2;
const LOG_DMA: u64 = 3;
const LOG_RX_DISABLED: u64 = 4;

/// An emulated PL011 sending what the guest writes to `S`.
pub struct Pl011<S> {
    sink: S,
    intid: u32,
    reset_state: ResetState,
    /// The level last driven on the interrupt line.
    line: bool,
    rx: Fifo<u16, FIFO_DEPTH>,
    tx: Fifo<u8, FIFO_DEPTH>,
    /// RSR: FE, PE, BE of the last character read; OE as soon as an overrun happens.
    rsr: u8,
    /// An overrun happened: the next character stored carries DR.OE.
    overrun_pending: bool,
    ilpr: u8,
    ibrd: u16,
    fbrd: u8,
    lcr_h: u8,
    cr: u16,
    ifls: u8,
    imsc: u16,
    ris: u16,
    stats: Pl011Stats,
    log: LogOnce,
}

impl<S: ConsoleSink> Pl011<S> {
    /// A UART on interrupt `intid` (the GIC INTID, SPI number + 32), in the firmware reset
    /// state (see the crate docs), sending to `sink`.
    pub fn new(intid: u32, sink: S) -> Self {
        Self::with_reset_state(intid, sink, ResetState::Firmware)
    }

    /// A UART with the TRM's reset values (disabled).
    pub fn new_hw_reset(intid: u32, sink: S) -> Self {
        Self::with_reset_state(intid, sink, ResetState::Hardware)
    }

    /// A UART in the given reset state.
    pub fn with_reset_state(intid: u32, sink: S, reset_state: ResetState) -> Self {
        let mut uart = Pl011 {
            sink,
            intid,
            reset_state,
            line: false,
            rx: Fifo::new(),
            tx: Fifo::new(),
            rsr: 0,
            overrun_pending: false,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: 0,
            ifls: IFLS_RESET,
            imsc: 0,
            ris: 0,
            stats: Pl011Stats::default(),
            log: LogOnce::default(),
        };
        uart.load_reset_values();
        uart
    }

    fn load_reset_values(&mut self) {
        self.rx.clear();
        self.tx.clear();
        self.rsr = 0;
        self.overrun_pending = false;
        self.ilpr = 0;
        self.ifls = IFLS_RESET;
        self.imsc = 0;
        self.ris = 0;
        match self.reset_state {
            ResetState::Firmware => {
                // 24 MHz / (16 * 115200) = 13.02: IBRD 13, FBRD round(0.02 * 64) = 1.
                self.ibrd = 13;
                self.fbrd = 1;
                self.lcr_h = LCR_H_WLEN_8 | LCR_H_FEN;
                self.cr = CR_UARTEN | CR_TXE | CR_RXE;
            }
            ResetState::Hardware => {
                self.ibrd = 0;
                self.fbrd = 0;
                self.lcr_h = 0;
                self.cr = CR_TXE | CR_RXE;
            }
        }
    }

    /// Back to the reset state (a VM reboot): FIFOs emptied, interrupt line lowered.
    pub fn reset(&mut self, irq: &mut dyn IrqLines) {
        self.load_reset_values();
        self.update_irq(irq);
    }

    /// The INTID the UART drives.
    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// The level the interrupt line was last driven to.
    pub fn irq_level(&self) -> bool {
        self.line
    }

    /// Counters.
    pub fn stats(&self) -> Pl011Stats {
        self.stats
    }

    /// The output sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The output sink, mutably (to flush a [`console::LineWriter`] when the guest idles).
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// True while the UART receives from outside: enabled, receiver enabled, no loopback.
    pub fn accepts_input(&self) -> bool {
        self.rx_enabled() && self.cr & CR_LBE == 0
    }

    /// How many bytes [`push_input`](Self::push_input) would store now without an overrun
    /// (0 while the UART does not accept input). A VMM that keeps the rest of its input
    /// buffered, and pushes more when the guest has read some, loses nothing.
    pub fn rx_space(&self) -> usize {
        if self.accepts_input() {
            self.depth().saturating_sub(self.rx.len())
        } else {
            0
        }
    }

    /// Bytes the user typed, as they arrive on the UART's receive line. Returns how many were
    /// stored; the others were lost to an overrun (which the guest sees as DR.OE / RSR.OE /
    /// OEIS), or to a disabled receiver (which it does not see). Drives the interrupt line.
    pub fn push_input(&mut self, bytes: &[u8], irq: &mut dyn IrqLines) -> usize {
        if !self.accepts_input() {
            let n = bytes.len() as u64;
            self.stats.rx_disabled = self.stats.rx_disabled.saturating_add(n);
            if n > 0 && self.log.first(LOG_RX_DISABLED) {
                log::info!(
                    "pl011: input while the receiver is disabled (CR={:#06x}): dropped",
                    self.cr
                );
            }
            return 0;
        }
        let stored = bytes
            .iter()
            .filter(|&&b| self.receive(u16::from(b)))
            .count();
        self.rx_idle();
        self.update_irq(irq);
        stored
    }

    /// A break condition on the receive line: one NUL character with DR.BE (Linux: the
    /// magic SysRq prefix on a serial console). False if it was lost (FIFO full, receiver
    /// disabled).
    pub fn push_break(&mut self, irq: &mut dyn IrqLines) -> bool {
        if !self.accepts_input() {
            return false;
        }
        let stored = self.receive(DR_BE);
        self.rx_idle();
        self.update_irq(irq);
        stored
    }

    /// A guest load of `size` at `offset` (the [`MmioDevice::read`] body).
    pub fn read_reg(
        &mut self,
        irq: &mut dyn IrqLines,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        let reg = Self::register(offset, size)?;
        let v = match reg {
            DR => {
                let v = self.read_dr();
                self.update_irq(irq);
                u64::from(v)
            }
            RSR_ECR => u64::from(self.rsr),
            FR => u64::from(self.fr()),
            ILPR => u64::from(self.ilpr),
            IBRD => u64::from(self.ibrd),
            FBRD => u64::from(self.fbrd),
            LCR_H => u64::from(self.lcr_h),
            CR => u64::from(self.cr),
            IFLS => u64::from(self.ifls),
            IMSC => u64::from(self.imsc),
            RIS => u64::from(self.ris),
            MIS => u64::from(self.mis()),
            ICR => return Err(MmioError::ReadOnly),
            DMACR => 0,
            PERIPH_ID0..=0xFFC => u64::from(id_byte(reg)),
            _ => return Err(MmioError::NoRegister),
        };
        Ok(v)
    }

    /// A guest store of the low `size` bytes of `value` at `offset` (the
    /// [`MmioDevice::write`] body).
    pub fn write_reg(
        &mut self,
        irq: &mut dyn IrqLines,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        let reg = Self::register(offset, size)?;
        let v = (value & size.mask()) as u32;
        match reg {
            DR => self.write_dr(v as u8),
            RSR_ECR => self.rsr = 0,
            ILPR => self.ilpr = v as u8,
            IBRD => self.ibrd = v as u16,
            FBRD => self.fbrd = (v & 0x3F) as u8,
            LCR_H => self.write_lcr_h(v as u8),
            CR => self.write_cr(v as u16),
            IFLS => self.ifls = (v & 0x3F) as u8,
            IMSC => self.imsc = v as u16 & INT_MASK,
            ICR => self.ris &= !(v as u16 & INT_MASK),
            DMACR => {
                if v & 0x7 != 0 && self.log.first(LOG_DMA) {
                    log::info!("pl011: DMACR={v:#x} ignored: this UART has no DMA");
                }
            }
            FR | RIS | MIS | PERIPH_ID0..=0xFFC => return Err(MmioError::ReadOnly),
            _ => return Err(MmioError::NoRegister),
        }
        self.update_irq(irq);
        Ok(())
    }

    /// The register `offset` names for an access of `size`.
    fn register(offset: u64, size: AccessSize) -> Result<u64, MmioError> {
        if offset >= REGION_SIZE {
            return Err(MmioError::NoRegister);
        }
        if size == AccessSize::Double || !offset.is_multiple_of(4) {
            return Err(MmioError::BadWidth);
        }
        Ok(offset)
    }

    // ---- state ----

    /// FIFO depth: 32, or 1 (holding registers) without LCR_H.FEN.
    fn depth(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    fn fifo_enabled(&self) -> bool {
        self.lcr_h & LCR_H_FEN != 0
    }

    /// RX trigger: interrupt when the FIFO holds at least this many (IFLS.RXIFLSEL).
    fn rx_trigger(&self) -> usize {
        fifo_fraction((self.ifls >> 3) & 7)
    }

    /// TX trigger: interrupt when the FIFO holds at most this many (IFLS.TXIFLSEL).
    fn tx_trigger(&self) -> usize {
        fifo_fraction(self.ifls & 7)
    }

    fn rx_enabled(&self) -> bool {
        self.cr & (CR_UARTEN | CR_RXE) == CR_UARTEN | CR_RXE
    }

    fn tx_enabled(&self) -> bool {
        let cts_ok = self.cr & CR_CTSEN == 0 || self.modem_lines() & FR_CTS != 0;
        self.cr & (CR_UARTEN | CR_TXE) == CR_UARTEN | CR_TXE && cts_ok
    }

    /// CTS, DSR, DCD, RI as FR bits.
    fn modem_lines(&self) -> u16 {
        if self.cr & CR_LBE == 0 {
            return FR_CTS | FR_DSR | FR_DCD;
        }
        let mut m = 0;
        for (out, input) in [
            (CR_RTS, FR_CTS),
            (CR_DTR, FR_DSR),
            (CR_OUT1, FR_DCD),
            (CR_OUT2, FR_RI),
        ] {
            if self.cr & out != 0 {
                m |= input;
            }
        }
        m
    }

    fn fr(&self) -> u16 {
        let depth = self.depth();
        let mut fr = self.modem_lines();
        if self.rx.is_empty() {
            fr |= FR_RXFE;
        }
        if self.rx.len() >= depth {
            fr |= FR_RXFF;
        }
        if self.tx.is_empty() {
            fr |= FR_TXFE;
        } else {
            fr |= FR_BUSY;
        }
        if self.tx.len() >= depth {
            fr |= FR_TXFF;
        }
        fr
    }

    fn mis(&self) -> u16 {
        self.ris & self.imsc
    }

    fn update_irq(&mut self, irq: &mut dyn IrqLines) {
        let level = self.mis() != 0;
        if level != self.line {
            self.line = level;
            if level {
                self.stats.irqs = self.stats.irqs.saturating_add(1);
            }
            irq.set_level(self.intid, level);
        }
    }

    // ---- receive ----

    /// Stores one received character (data + DR error bits); false on overrun.
    fn receive(&mut self, entry: u16) -> bool {
        let before = self.rx.len();
        let entry = if self.overrun_pending {
            entry | DR_OE
        } else {
            entry
        };
        if !self.rx.push(entry, self.depth()) {
            self.rsr |= RSR_OE;
            self.ris |= INT_OE;
            self.overrun_pending = true;
            self.stats.rx_overruns = self.stats.rx_overruns.saturating_add(1);
            return false;
        }
        self.overrun_pending = false;
        self.stats.rx_bytes = self.stats.rx_bytes.saturating_add(1);
        for (bit, int) in [(DR_FE, INT_FE), (DR_PE, INT_PE), (DR_BE, INT_BE)] {
            if entry & bit != 0 {
                self.ris |= int;
            }
        }
        if !self.fifo_enabled()
            || (before < self.rx_trigger() && self.rx.len() >= self.rx_trigger())
        {
            self.ris |= INT_RX;
        }
        true
    }

    /// The receive line went idle: the timeout interrupt if data is waiting.
    fn rx_idle(&mut self) {
        if !self.rx.is_empty() {
            self.ris |= INT_RT;
        }
    }

    fn read_dr(&mut self) -> u16 {
        let Some(entry) = self.rx.pop() else {
            return 0;
        };
        // RSR keeps OE (set at the overrun itself) and takes FE, PE, BE from this character.
        self.rsr = (self.rsr & RSR_OE) | ((entry >> 8) & 0x7) as u8;
        if !self.fifo_enabled() || self.rx.len() < self.rx_trigger() {
            self.ris &= !INT_RX;
        }
        if self.rx.is_empty() {
            self.ris &= !INT_RT;
        }
        entry & 0xFFF
    }

    // ---- transmit ----

    fn write_dr(&mut self, byte: u8) {
        if !self.tx.push(byte, self.depth()) {
            self.stats.tx_lost = self.stats.tx_lost.saturating_add(1);
            if self.log.first(LOG_TX_LOST) {
                log::warn!("pl011: DR written with the transmit FIFO full: byte lost");
            }
            return;
        }
        if self.tx_enabled() {
            self.transmit();
            return;
        }
        if self.log.first(LOG_TX_HELD) {
            log::warn!(
                "pl011: DR written with the transmitter disabled (CR={:#06x}): held until it is enabled",
                self.cr
            );
        }
        // Filling the FIFO above the trigger level (or the holding register) clears TXRIS.
        if !self.fifo_enabled() || self.tx.len() > self.tx_trigger() {
            self.ris &= !INT_TX;
        }
    }

    /// Sends everything in the transmit FIFO if the transmitter is enabled.
    fn transmit(&mut self) {
        if !self.tx_enabled() || self.tx.is_empty() {
            return;
        }
        let loopback = self.cr & CR_LBE != 0;
        while let Some(b) = self.tx.pop() {
            self.stats.tx_bytes = self.stats.tx_bytes.saturating_add(1);
            if loopback {
                if self.rx_enabled() {
                    self.receive(u16::from(b));
                }
            } else {
                self.sink.write_bytes(&[b]);
            }
        }
        // The FIFO drained to empty: at or below any trigger level.
        self.ris |= INT_TX;
        if loopback {
            self.rx_idle();
        }
    }

    fn write_lcr_h(&mut self, v: u8) {
        if (self.lcr_h ^ v) & LCR_H_FEN != 0 {
            self.rx.clear();
            self.ris &= !(INT_RX | INT_RT);
            let lost = self.tx.len() as u64;
            self.tx.clear();
            self.stats.tx_lost = self.stats.tx_lost.saturating_add(lost);
        }
        self.lcr_h = v;
    }

    fn write_cr(&mut self, v: u16) {
        let before = self.modem_lines();
        self.cr = v & CR_MASK;
        let changed = before ^ self.modem_lines();
        for (line, int) in [
            (FR_CTS, INT_CTSM),
            (FR_DSR, INT_DSRM),
            (FR_DCD, INT_DCDM),
            (FR_RI, INT_RIM),
        ] {
            if changed & line != 0 {
                self.ris |= int;
            }
        }
        self.transmit();
    }
}

/// FIFO level of an IFLS selector: 1/8, 1/4, 1/2, 3/4, 7/8 of 32 (reserved values: 1/2).
fn fifo_fraction(sel: u8) -> usize {
    match sel {
        0 => FIFO_DEPTH / 8,
        1 => FIFO_DEPTH / 4,
        3 => FIFO_DEPTH * 3 / 4,
        4 => FIFO_DEPTH * 7 / 8,
        _ => FIFO_DEPTH / 2,
    }
}

/// Byte `n` of the peripheral / PrimeCell IDs at 0xFE0..=0xFFC.
fn id_byte(offset: u64) -> u8 {
    // Callers pass 0xFE0..=0xFFC: no wrap; out of range gives a PrimeCell byte, not a panic.
    let n = (offset.wrapping_sub(PERIPH_ID0) / 4) as u32;
    let id = if n < 4 { PERIPH_ID } else { PCELL_ID };
    (id >> ((n % 4).wrapping_mul(8))) as u8
}

impl<S: ConsoleSink> MmioDevice for Pl011<S> {
    fn read(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
    ) -> Result<u64, MmioError> {
        self.read_reg(ctx.irq, offset, size)
    }

    fn write(
        &mut self,
        ctx: &mut DeviceCtx<'_>,
        offset: u64,
        size: AccessSize,
        value: u64,
    ) -> Result<(), MmioError> {
        self.write_reg(ctx.irq, offset, size, value)
    }
}

impl<S> fmt::Debug for Pl011<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pl011")
            .field("intid", &self.intid)
            .field("cr", &format_args!("{:#06x}", self.cr))
            .field("lcr_h", &format_args!("{:#04x}", self.lcr_h))
            .field("imsc", &format_args!("{:#05x}", self.imsc))
            .field("ris", &format_args!("{:#05x}", self.ris))
            .field("rx", &self.rx.len())
            .field("tx", &self.tx.len())
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}
