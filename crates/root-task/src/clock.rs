//! Guest run time, for the exit summary.
//!
//! Two sources, whichever is safe:
//!
//! * the generic timer's virtual counter, read at EL0 (CNTVCT_EL0). seL4 allows that with
//!   `KernelArmExportVCNTUser` (CNTKCTL_EL1.EL0VCTEN), but a core that has run a vCPU holds the
//!   guest's CNTKCTL_EL1 (seL4 saves it on a vCPU switch and writes nothing back), and a guest
//!   that clears the bit would make our read trap. So only on a core no vCPU uses (Orin);
//! * otherwise the board's real-time clock if it has one the kernel leaves alone: QEMU virt's
//!   PL031 (`pl031@9010000` in QEMU's DTB), mapped read-only into the root task. One-second
//!   resolution, which is plenty for a boot that takes minutes under emulation.

use sel4::CapRights;

use crate::objects::Objects;
use crate::space::map_device_page;

/// QEMU virt's PL031 (register 0, RTCDR, counts seconds).
#[cfg(not(feature = "orin-agx"))]
const RTC_PADDR: Option<usize> = Some(0x0901_0000);
#[cfg(feature = "orin-agx")]
const RTC_PADDR: Option<usize> = None;
/// Where the root task maps it (below the guest-RAM window).
const RTC_VADDR: usize = crate::backend::RAM_WINDOW - 0x20_0000;

/// A reading of whichever source the clock uses.
#[derive(Clone, Copy)]
pub struct Instant(u64);

enum Source {
    Counter,
    Rtc(*const u32),
    None,
}

/// The guest's wall clock, as far as the VMM can read one safely.
pub struct Clock {
    source: Source,
}

impl Clock {
    /// Why there is no clock, for the log.
    pub const WHY_NOT: &str = "the VMM shares a core with vCPUs (a guest may deny EL0 the \
        counter there) and the board has no RTC the VMM may read; see the runner's wall clock";

    /// The counter on a core of the VMM's own, else the RTC if the board has one.
    pub fn new(own_core: bool, objs: &mut Objects, p: &vmm_platform::Platform) -> Self {
        if own_core && sel4::sel4_cfg_bool!(EXPORT_VCNT_USER) {
            return Self {
                source: Source::Counter,
            };
        }
        // An RTC the guest owns (passed through) is the guest's to program; not read here.
        let guests = |a: usize| {
            p.passthrough.iter().any(|r| {
                r.range
                    .contains_range(vmm_platform::GuestPhysAddr(a as u64), 4)
            })
        };
        let source = match RTC_PADDR.filter(|&a| !guests(a)).map(|a| map_rtc(objs, a)) {
            Some(Ok(ptr)) => Source::Rtc(ptr),
            Some(Err(e)) => {
                log::warn!("vmm: RTC not mapped ({e:?}); no guest run time");
                Source::None
            }
            None => Source::None,
        };
        Self { source }
    }

    /// Now, if there is a clock.
    pub fn now(&self) -> Option<Instant> {
        match self.source {
            Source::Counter => Some(Instant(read_cntvct())),
            // SAFETY: a device frame mapped read-only at `ptr` for the life of the root task.
            Source::Rtc(ptr) => Some(Instant(u64::from(unsafe { ptr.read_volatile() }))),
            Source::None => None,
        }
    }

    /// Time since `start` as (whole seconds, milliseconds, source name).
    pub fn since(&self, start: Option<Instant>) -> Option<(u64, u64, &'static str)> {
        let start = start?;
        let now = self.now()?;
        let elapsed = now.0.wrapping_sub(start.0);
        match self.source {
            Source::Counter => {
                let freq = read_cntfrq();
                if freq == 0 {
                    return None;
                }
                let ms = (u128::from(elapsed) * 1000 / u128::from(freq)) as u64;
                Some((ms / 1000, ms % 1000, "virtual counter"))
            }
            Source::Rtc(_) => Some((elapsed, 0, "PL031 RTC, 1 s resolution")),
            Source::None => None,
        }
    }
}

fn map_rtc(objs: &mut Objects, paddr: usize) -> Result<*const u32, crate::objects::AllocError> {
    map_device_page(objs, paddr, RTC_VADDR, CapRights::read_only())?;
    Ok(RTC_VADDR as *const u32)
}

fn read_cntvct() -> u64 {
    let v: u64;
    // SAFETY: reads a counter register; `Source::Counter` is only chosen where EL0 may.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn read_cntfrq() -> u64 {
    let v: u64;
    // SAFETY: as `read_cntvct` (CNTFRQ_EL0 is readable at EL0 when a counter is).
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack)) };
    v
}
