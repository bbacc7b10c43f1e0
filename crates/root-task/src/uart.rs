//! The VMM's output: the board's UART (the platform table's `host.uart`), written by the root
//! task itself. The kernel is built without debug system calls (a guest's HVC is taken as a
//! system call, and those need no capability), so there is no `seL4_DebugPutChar` to print
//! with; the UART's page comes from seL4's device untypeds and is mapped here.
//!
//! Before the page is mapped, or if the kernel kept the UART for itself (a kernel built with
//! `KernelPrinting`), output goes to `seL4_DebugPutChar` where the kernel has it, else nowhere.

use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use sel4::CapRights;
use vmm_platform::HostUart;

use crate::objects::{AllocError, Objects};
use crate::space::map_device_page;

/// Where the UART's page is mapped in the root task (below the guest-RAM window, apart from
/// the RTC's page).
const UART_VADDR: usize = crate::backend::RAM_WINDOW - 0x40_0000;

/// The mapped register base (0: not mapped), the kind (0 PL011, 1 16550) and register shift.
static BASE: AtomicUsize = AtomicUsize::new(0);
static KIND: AtomicU8 = AtomicU8::new(0);
static SHIFT: AtomicU8 = AtomicU8::new(0);

/// Maps the UART of `uart` and sends all further output there.
pub fn init(objs: &mut Objects, uart: HostUart) -> Result<(), AllocError> {
    let (base, kind, shift) = match uart {
        HostUart::Pl011 { base } => (base, 0, 0),
        HostUart::Ns16550 { base, reg_shift } => (base, 1, reg_shift),
    };
    map_device_page(
        objs,
        (base & !0xfff) as usize,
        UART_VADDR,
        CapRights::read_write(),
    )?;
    KIND.store(kind, Ordering::Relaxed);
    SHIFT.store(shift, Ordering::Relaxed);
    BASE.store(UART_VADDR + (base & 0xfff) as usize, Ordering::Release);
    Ok(())
}

/// The UART and where its registers are mapped, once `init` has run.
fn mapped() -> Option<(HostUart, usize)> {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return None;
    }
    let uart = match KIND.load(Ordering::Relaxed) {
        0 => HostUart::Pl011 { base: 0 },
        _ => HostUart::Ns16550 {
            base: 0,
            reg_shift: SHIFT.load(Ordering::Relaxed),
        },
    };
    Some((uart, base))
}

/// Writes one byte.
pub fn putc(b: u8) {
    match mapped() {
        // SAFETY: `init` mapped the UART's registers at `base`, device memory, for the root
        // task (the kernel, built without printing, does not use it).
        Some((uart, base)) => unsafe { host_uart::putc(uart, base, b) },
        None => fallback(b),
    }
}

#[sel4::sel4_cfg(PRINTING)]
fn fallback(b: u8) {
    sel4::debug_put_char(b);
}

#[sel4::sel4_cfg(not(PRINTING))]
fn fallback(_b: u8) {}

/// `core::fmt` onto the UART, `\n` as `\r\n`.
pub struct Out;

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match mapped() {
            // SAFETY: as in `putc`.
            Some((uart, base)) => unsafe { host_uart::write_str(uart, base, s) },
            None => s.bytes().for_each(|b| {
                if b == b'\n' {
                    fallback(b'\r');
                }
                fallback(b)
            }),
        }
        Ok(())
    }
}

/// `println!` onto the VMM's UART.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::uart::Out, $($arg)*);
    }};
}
