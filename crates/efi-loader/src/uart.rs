//! Polled output on the board's UART (the platform table's `host.uart`), usable before and
//! after the firmware's boot services end, on any core.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use vmm_platform::HostUart;

static LOCK: AtomicBool = AtomicBool::new(false);

/// Writes to `uart`.
pub struct Uart(pub HostUart);

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let base = match self.0 {
            HostUart::Pl011 { base } | HostUart::Ns16550 { base, .. } => base,
        };
        // SAFETY: the platform table names this UART; the firmware (before ExitBootServices)
        // and the loader's own tables (after) map it identity, as device memory; `with` lets
        // one core at a time write.
        unsafe { host_uart::write_str(self.0, base as usize, s) };
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
