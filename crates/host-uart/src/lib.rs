//! Polled output on the board's own UART, the platform table's `host.uart`: a PL011 (QEMU) or
//! a 16550 with spaced registers (Tegra's UARTA). One driver for the EFI loader (registers at
//! their physical address under UEFI's identity map) and the seL4 root task (registers mapped
//! where it chose).
#![no_std]

use vmm_platform::HostUart;

/// Polls of a full FIFO before a byte is dropped: a UART that never drains (its clock off)
/// must cost the caller its output, not its progress.
pub const SPIN: u32 = 1_000_000;

/// Writes byte `b` to `uart`, whose registers are mapped at `regs`.
///
/// # Safety
/// `regs` must be where `uart`'s register block is mapped as device memory, for this caller,
/// and no other writer may use the UART at the same time.
pub unsafe fn putc(uart: HostUart, regs: usize, b: u8) {
    let reg = |offset: usize| (regs + offset) as *mut u32;
    // SAFETY: the caller mapped the UART's registers at `regs`.
    unsafe {
        match uart {
            HostUart::Pl011 { .. } => {
                for _ in 0..SPIN {
                    if reg(0x18).read_volatile() & (1 << 5) == 0 {
                        break; // FR.TXFF clear
                    }
                }
            }
            HostUart::Ns16550 { reg_shift, .. } => {
                for _ in 0..SPIN {
                    if reg(5 << reg_shift).read_volatile() & (1 << 5) != 0 {
                        break; // LSR.THRE
                    }
                }
            }
        }
        reg(0).write_volatile(u32::from(b));
    }
}

/// Writes `s` to `uart`, each `\n` as `\r\n` (a serial terminal's line end).
///
/// # Safety
/// As for [`putc`].
pub unsafe fn write_str(uart: HostUart, regs: usize, s: &str) {
    for b in s.bytes() {
        // SAFETY: as the caller promised for `putc`.
        unsafe {
            if b == b'\n' {
                putc(uart, regs, b'\r');
            }
            putc(uart, regs, b);
        }
    }
}
