//! Guest run time, from the generic timer's virtual counter.
//!
//! The root task reads CNTVCT_EL0 at EL0, which CNTKCTL_EL1.EL0VCTEN allows. seL4 sets that bit
//! at boot with `KernelArmExportVCNTUser`, but a core that has run a vCPU holds the guest's
//! CNTKCTL_EL1 (seL4 saves it on a vCPU switch and writes nothing back), and a guest that
//! clears the bit would make our read trap. So the clock is only read on a core no vCPU uses.

/// A counter reading.
#[derive(Clone, Copy)]
pub struct Instant(u64);

/// The virtual counter, when it can be read safely.
pub struct Clock {
    usable: bool,
}

impl Clock {
    /// Why there is no clock, for the log.
    pub const WHY_NOT: &str = "the VMM shares a core with vCPUs (a guest may deny EL0 the \
        counter there) or the kernel lacks KernelArmExportVCNTUser; see the runner's wall \
        clock";

    /// A clock, usable if the VMM runs on a core of its own.
    pub fn new(own_core: bool) -> Self {
        Self {
            usable: own_core && sel4::sel4_cfg_bool!(EXPORT_VCNT_USER),
        }
    }

    /// Now, if the clock is usable.
    pub fn now(&self) -> Option<Instant> {
        self.usable.then(|| Instant(read_cntvct()))
    }

    /// Whole seconds and milliseconds since `start`.
    pub fn seconds_since(&self, start: Option<Instant>) -> Option<(u64, u64)> {
        let start = start?;
        let now = self.now()?;
        let freq = read_cntfrq();
        if freq == 0 {
            return None;
        }
        let ticks = now.0.wrapping_sub(start.0);
        let ms = (u128::from(ticks) * 1000 / u128::from(freq)) as u64;
        Some((ms / 1000, ms % 1000))
    }
}

fn read_cntvct() -> u64 {
    let v: u64;
    // SAFETY: reads a counter register; `Clock::usable` says EL0 may read it on this core.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn read_cntfrq() -> u64 {
    let v: u64;
    // SAFETY: as `read_cntvct` (CNTFRQ_EL0 is readable at EL0 when a counter is).
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}
