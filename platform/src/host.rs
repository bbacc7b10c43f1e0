//! The host side of a board: what the boot loader and seL4 use, never the guest.

use crate::GuestRange;

/// The UART the boot loader prints its steps on: seL4's debug console on that board.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HostUart {
    /// An Arm PL011 (or SBSA UART): data register at +0x00, flags at +0x18.
    Pl011 {
        /// Physical base address.
        base: u64,
    },
    /// A 16550: THR at +0, LSR at register 5, registers `1 << reg_shift` bytes apart.
    Ns16550 {
        /// Physical base address.
        base: u64,
        /// log2 of the register stride (2 on Tegra: 32-bit registers).
        reg_shift: u8,
    },
}

/// Physical memory the loader must not place anything in, with the reason.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HostReserved {
    /// What it is.
    pub name: &'static str,
    /// Where (physical).
    pub range: GuestRange,
}

/// What the boot loader needs to know of the board besides seL4's own build.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Host {
    /// Where it prints.
    pub uart: HostUart,
    /// Firmware carve-outs and broken memory, besides identity-mapped guest RAM (which is
    /// always kept free: it reaches the root task as untyped memory).
    pub reserved: &'static [HostReserved],
}
