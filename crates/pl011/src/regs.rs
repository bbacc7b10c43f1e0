//! PL011 register offsets and bits (ARM DDI 0183G, PrimeCell UART (PL011) r1p5 TRM,
//! chapter 3). Names follow the TRM; Linux's `include/linux/amba/serial.h` uses the same
//! values (`UART01x_DR`, `UART011_CR_TXE`, ...).

/// Data register: received byte + error bits (read), byte to send (write).
pub const DR: u64 = 0x000;
/// Receive status register (read) / error clear register (write).
pub const RSR_ECR: u64 = 0x004;
/// Flag register (read-only).
pub const FR: u64 = 0x018;
/// IrDA low-power counter register.
pub const ILPR: u64 = 0x020;
/// Integer baud rate divisor.
pub const IBRD: u64 = 0x024;
/// Fractional baud rate divisor.
pub const FBRD: u64 = 0x028;
/// Line control register.
pub const LCR_H: u64 = 0x02C;
/// Control register.
pub const CR: u64 = 0x030;
/// Interrupt FIFO level select.
pub const IFLS: u64 = 0x034;
/// Interrupt mask set/clear (1 = enabled).
pub const IMSC: u64 = 0x038;
/// Raw interrupt status (read-only).
pub const RIS: u64 = 0x03C;
/// Masked interrupt status (read-only).
pub const MIS: u64 = 0x040;
/// Interrupt clear (write-only, write 1 to clear).
pub const ICR: u64 = 0x044;
/// DMA control: this model has no DMA, read-as-zero / write-ignored.
pub const DMACR: u64 = 0x048;
/// UARTPeriphID0; ID1..ID3 follow at +4, +8, +0xC.
pub const PERIPH_ID0: u64 = 0xFE0;
/// UARTPCellID0; ID1..ID3 follow at +4, +8, +0xC.
pub const PCELL_ID0: u64 = 0xFF0;

/// DR: overrun error (data received while the FIFO was full; set on the next character).
pub const DR_OE: u16 = 1 << 11;
/// DR: break error.
pub const DR_BE: u16 = 1 << 10;
/// DR: parity error.
pub const DR_PE: u16 = 1 << 9;
/// DR: framing error.
pub const DR_FE: u16 = 1 << 8;

/// RSR: framing error.
pub const RSR_FE: u8 = 1 << 0;
/// RSR: parity error.
pub const RSR_PE: u8 = 1 << 1;
/// RSR: break error.
pub const RSR_BE: u8 = 1 << 2;
/// RSR: overrun error.
pub const RSR_OE: u8 = 1 << 3;

/// FR: ring indicator (modem input).
pub const FR_RI: u16 = 1 << 8;
/// FR: transmit FIFO (holding register) empty.
pub const FR_TXFE: u16 = 1 << 7;
/// FR: receive FIFO (holding register) full.
pub const FR_RXFF: u16 = 1 << 6;
/// FR: transmit FIFO (holding register) full.
pub const FR_TXFF: u16 = 1 << 5;
/// FR: receive FIFO (holding register) empty.
pub const FR_RXFE: u16 = 1 << 4;
/// FR: busy transmitting (set while the transmit FIFO holds data).
pub const FR_BUSY: u16 = 1 << 3;
/// FR: data carrier detect (modem input).
pub const FR_DCD: u16 = 1 << 2;
/// FR: data set ready (modem input).
pub const FR_DSR: u16 = 1 << 1;
/// FR: clear to send (modem input).
pub const FR_CTS: u16 = 1 << 0;

/// LCR_H: stick parity.
pub const LCR_H_SPS: u8 = 1 << 7;
/// LCR_H: word length field (bits 6:5; 0b11 = 8 bits).
pub const LCR_H_WLEN_MASK: u8 = 0b11 << 5;
/// LCR_H: 8-bit words.
pub const LCR_H_WLEN_8: u8 = 0b11 << 5;
/// LCR_H: FIFOs enabled (otherwise 1-byte holding registers).
pub const LCR_H_FEN: u8 = 1 << 4;
/// LCR_H: two stop bits.
pub const LCR_H_STP2: u8 = 1 << 3;
/// LCR_H: even parity.
pub const LCR_H_EPS: u8 = 1 << 2;
/// LCR_H: parity enable.
pub const LCR_H_PEN: u8 = 1 << 1;
/// LCR_H: send break.
pub const LCR_H_BRK: u8 = 1 << 0;

/// CR: CTS hardware flow control.
pub const CR_CTSEN: u16 = 1 << 15;
/// CR: RTS hardware flow control.
pub const CR_RTSEN: u16 = 1 << 14;
/// CR: OUT2 modem output (RI in loopback).
pub const CR_OUT2: u16 = 1 << 13;
/// CR: OUT1 modem output (DCD in loopback).
pub const CR_OUT1: u16 = 1 << 12;
/// CR: request to send (CTS in loopback).
pub const CR_RTS: u16 = 1 << 11;
/// CR: data transmit ready (DSR in loopback).
pub const CR_DTR: u16 = 1 << 10;
/// CR: receive enable.
pub const CR_RXE: u16 = 1 << 9;
/// CR: transmit enable.
pub const CR_TXE: u16 = 1 << 8;
/// CR: loopback enable.
pub const CR_LBE: u16 = 1 << 7;
/// CR: SIR low-power mode.
pub const CR_SIRLP: u16 = 1 << 2;
/// CR: SIR (IrDA) enable.
pub const CR_SIREN: u16 = 1 << 1;
/// CR: UART enable.
pub const CR_UARTEN: u16 = 1 << 0;
/// CR bits that exist (bits 6:3 are reserved and read as zero).
pub const CR_MASK: u16 = 0xFF87;

/// Interrupt bit (IMSC, RIS, MIS, ICR): overrun error.
pub const INT_OE: u16 = 1 << 10;
/// Interrupt bit: break error.
pub const INT_BE: u16 = 1 << 9;
/// Interrupt bit: parity error.
pub const INT_PE: u16 = 1 << 8;
/// Interrupt bit: framing error.
pub const INT_FE: u16 = 1 << 7;
/// Interrupt bit: receive timeout.
pub const INT_RT: u16 = 1 << 6;
/// Interrupt bit: transmit.
pub const INT_TX: u16 = 1 << 5;
/// Interrupt bit: receive.
pub const INT_RX: u16 = 1 << 4;
/// Interrupt bit: DSR modem status change.
pub const INT_DSRM: u16 = 1 << 3;
/// Interrupt bit: DCD modem status change.
pub const INT_DCDM: u16 = 1 << 2;
/// Interrupt bit: CTS modem status change.
pub const INT_CTSM: u16 = 1 << 1;
/// Interrupt bit: RI modem status change.
pub const INT_RIM: u16 = 1 << 0;
/// All interrupt bits.
pub const INT_MASK: u16 = 0x7FF;

/// IFLS reset value: both trigger levels at 1/2.
pub const IFLS_RESET: u8 = 0x12;
