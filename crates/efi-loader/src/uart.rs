//! Polled output on the board's UART (the platform table's `host.uart`), usable before and
//! after the firmware's boot services end, on any core.

use core::fmt;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

use vmm_platform::HostUart;

/// Polls before a character is dropped: a UART that never drains (its clock off) must not
/// stop the boot, only its output.
const SPIN: u32 = 200_000;

static LOCK: AtomicBool = AtomicBool::new(false);

/// Writes to `uart`.
pub struct Uart(pub HostUart);

impl Uart {
    fn reg(&self, offset: u64) -> *mut u32 {
        let base = match self.0 {
            HostUart::Pl011 { base } | HostUart::Ns16550 { base, .. } => base,
        };
        (base + offset) as *mut u32
    }

    fn putc(&self, c: u8) {
        // SAFETY: the platform table names this UART; the firmware (before ExitBootServices)
        // and the loader's own tables (after) map it as device memory.
        unsafe {
            match self.0 {
                HostUart::Pl011 { .. } => {
                    for _ in 0..SPIN {
                        // FR.TXFF
                        if read_volatile(self.reg(0x18)) & (1 << 5) == 0 {
                            break;
                        }
                    }
                    write_volatile(self.reg(0), u32::from(c));
                }
                HostUart::Ns16550 { reg_shift, .. } => {
                    for _ in 0..SPIN {
                        // LSR.THRE
                        if read_volatile(self.reg(5 << reg_shift)) & (1 << 5) != 0 {
                            break;
                        }
                    }
                    write_volatile(self.reg(0), u32::from(c));
                }
            }
        }
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.putc(b'\r');
            }
            self.putc(b);
        }
        Ok(())
    }
}

/// Runs `f` with the UART, one core at a time (bounded: a core that died holding the lock
/// must not silence the others for good).
pub fn with<R>(uart: HostUart, f: impl FnOnce(&mut Uart) -> R) -> R {
    let mut spins = 0u32;
    while LOCK
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
        && spins < 10_000_000
    {
        spins += 1;
        core::hint::spin_loop();
    }
    let r = f(&mut Uart(uart));
    LOCK.store(false, Ordering::Release);
    r
}
