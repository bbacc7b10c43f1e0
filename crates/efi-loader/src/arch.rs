//! The AArch64 EL2 pieces: system registers, cache maintenance by address, PSCI calls, the
//! switch to the boot page tables, the secondary cores' entry, and the jump into seL4.

use core::arch::{asm, global_asm};

use boot_plan::dtb::Conduit;

/// The exception level the loader runs at (2 for seL4's hypervisor mode).
pub fn current_el() -> u64 {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { asm!("mrs {}, CurrentEL", out(reg) el) };
    (el >> 2) & 3
}

/// MPIDR_EL1 of this core.
pub fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v) };
    v
}

/// HCR_EL2.E2H: the firmware left the host-extension (VHE) on.
pub fn vhe() -> bool {
    let v: u64;
    // SAFETY: reading HCR_EL2 at EL2 has no side effects.
    unsafe { asm!("mrs {}, hcr_el2", out(reg) v) };
    v & (1 << 34) != 0
}

/// Counter ticks and their frequency.
pub fn counter() -> (u64, u64) {
    let (c, f): (u64, u64);
    // SAFETY: reading the generic timer's counter has no side effects.
    unsafe { asm!("isb", "mrs {}, cntpct_el0", "mrs {}, cntfrq_el0", out(reg) c, out(reg) f) };
    (c, f)
}

/// Masks every exception at this core (the firmware's timer must not fire after its
/// boot services ended).
pub fn mask_interrupts() {
    // SAFETY: masking exceptions only delays them.
    unsafe { asm!("msr daifset, #0xf", "isb") };
}

/// Cleans and invalidates `[start, end)` to the point of coherency, by address: the only
/// way that reaches Tegra's system cache (set/way operations do not), and what a core with
/// its MMU and caches off reads.
pub fn clean_to_poc(start: u64, end: u64) {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut a = start & !(line - 1);
    while a < end {
        // SAFETY: cleaning a line of mapped memory writes back what the cache holds.
        unsafe { asm!("dc civac, {}", in(reg) a) };
        a += line;
    }
    // SAFETY: barriers and an I-cache invalidate have no memory effects of their own.
    unsafe { asm!("dsb sy", "ic iallu", "dsb sy", "isb") };
}

/// PSCI `CPU_ON` (SMC64): starts core `mpidr` at physical address `entry` with `context`
/// in x0. Returns PSCI's status (0 success).
pub fn psci_cpu_on(conduit: Conduit, mpidr: u64, entry: u64, context: u64) -> i64 {
    let mut x0: u64 = 0xc400_0003;
    // SAFETY: a PSCI call into the firmware; it returns in x0 and may clobber x1-x17.
    unsafe {
        match conduit {
            Conduit::Smc => {
                asm!("smc #0", inout("x0") x0, inout("x1") mpidr => _, inout("x2") entry => _,
                inout("x3") context => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                out("x14") _, out("x15") _, out("x16") _, out("x17") _)
            }
            Conduit::Hvc => {
                asm!("hvc #0", inout("x0") x0, inout("x1") mpidr => _, inout("x2") entry => _,
                inout("x3") context => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                out("x14") _, out("x15") _, out("x16") _, out("x17") _)
            }
        }
    }
    x0 as i64
}

/// PSCI's name for a status.
pub fn psci_status(s: i64) -> &'static str {
    match s {
        0 => "SUCCESS",
        -1 => "NOT_SUPPORTED",
        -2 => "INVALID_PARAMETERS",
        -3 => "DENIED",
        -4 => "ALREADY_ON",
        -5 => "ON_PENDING",
        -6 => "INTERNAL_FAILURE",
        -7 => "NOT_PRESENT",
        -8 => "DISABLED",
        -9 => "INVALID_ADDRESS",
        _ => "unknown status",
    }
}

/// What a core needs to run on the boot tables; read by `secondary_entry` with the MMU off
/// (so cleaned to the point of coherency before the core starts). Field offsets are used
/// by the assembly below.
#[repr(C)]
pub struct CoreStart {
    /// MAIR_EL2 (offset 0).
    pub mair: u64,
    /// TCR_EL2 (8).
    pub tcr: u64,
    /// TTBR0_EL2 (16).
    pub ttbr: u64,
    /// Initial stack pointer (24).
    pub sp: u64,
    /// The Rust function the core continues in, with this block in x0 (32).
    pub main: u64,
    /// The exception vectors (40).
    pub vbar: u64,
}

/// SCTLR_EL2 as the loader runs on its own tables: RES1 bits, MMU, D-cache, I-cache; no
/// alignment checks, little-endian, WXN off.
pub const SCTLR_EL2: u64 = 0x30c5_0830 | 1 | (1 << 2) | (1 << 12);

unsafe extern "C" {
    /// Entry of a core started by PSCI CPU_ON (MMU off, at EL2), x0 = its `CoreStart`.
    pub fn secondary_entry() -> !;
    /// Turns the MMU off, loads MAIR/TCR/TTBR0_EL2, turns it on with `SCTLR_EL2`.
    /// Touches no memory while the MMU is off. The caller's code and stack must be mapped
    /// the same by both translations (identity, normal memory).
    pub fn switch_tables(mair: u64, tcr: u64, ttbr: u64, sctlr: u64);
    /// The exception vectors.
    pub static loader_vectors: u8;
}

global_asm!(
    r#"
    .section .text.loader_asm, "ax"
    .global secondary_entry
    .balign 4096
secondary_entry:
    msr daifset, #0xf
    ldr x1, [x0, #0]
    msr mair_el2, x1
    ldr x1, [x0, #8]
    msr tcr_el2, x1
    ldr x1, [x0, #16]
    msr ttbr0_el2, x1
    isb
    tlbi alle2
    dsb nsh
    isb
    ldr x1, ={sctlr}
    msr sctlr_el2, x1
    isb
    ldr x1, [x0, #40]
    msr vbar_el2, x1
    ldr x1, [x0, #24]
    mov sp, x1
    ldr x1, [x0, #32]
    br x1

    .global switch_tables
switch_tables:
    dsb sy
    mrs x9, sctlr_el2
    bic x9, x9, #1
    bic x9, x9, #(1 << 2)
    msr sctlr_el2, x9
    isb
    ic iallu
    tlbi alle2
    dsb sy
    isb
    msr mair_el2, x0
    msr tcr_el2, x1
    msr ttbr0_el2, x2
    isb
    tlbi alle2
    dsb sy
    isb
    msr sctlr_el2, x3
    isb
    ic iallu
    dsb sy
    isb
    ret

    /* Every exception: report it (kind in x0) and stop. */
    .macro vector kind
    .balign 128
    mov x0, #\kind
    mrs x1, esr_el2
    mrs x2, elr_el2
    mrs x3, far_el2
    b loader_exception
    .endm
    .global loader_vectors
    .balign 2048
loader_vectors:
    vector 0
    vector 1
    vector 2
    vector 3
    vector 4
    vector 5
    vector 6
    vector 7
    vector 8
    vector 9
    vector 10
    vector 11
    vector 12
    vector 13
    vector 14
    vector 15
    "#,
    sctlr = const SCTLR_EL2,
);

/// Sets this core's exception vectors to the loader's.
pub fn install_vectors() {
    // SAFETY: `loader_vectors` is a complete, 2 KiB-aligned vector table.
    unsafe { asm!("msr vbar_el2, {}", "isb", in(reg) &raw const loader_vectors) };
}

/// The vector table's address.
pub fn vectors() -> u64 {
    // SAFETY: only the address is taken.
    (&raw const loader_vectors) as u64
}

/// The kernel's arguments (`init_kernel`'s x0..x5).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct KernelArgs {
    /// User image physical start.
    pub ui_p_start: u64,
    /// User image physical end.
    pub ui_p_end: u64,
    /// User image physical minus virtual address.
    pub pv_offset: u64,
    /// User image virtual entry.
    pub v_entry: u64,
    /// DTB physical address.
    pub dtb: u64,
    /// DTB size.
    pub dtb_size: u64,
}

/// Enters seL4 on this core: TPIDR_EL1 holds its logical core ID (seL4's `_start` reads it
/// to choose the core's kernel stack), x0..x5 its arguments. CNTVOFF_EL2 is zeroed (its reset
/// value is unknown and firmware need not set it; rust-sel4's loader does the same).
pub fn enter_kernel(entry: u64, core: u64, a: &KernelArgs) -> ! {
    // SAFETY: the kernel's image is loaded and mapped at `entry` by the current tables.
    unsafe {
        asm!(
            "msr cntvoff_el2, xzr",
            "msr tpidr_el1, {core}",
            "isb",
            "br {entry}",
            core = in(reg) core,
            entry = in(reg) entry,
            in("x0") a.ui_p_start,
            in("x1") a.ui_p_end,
            in("x2") a.pv_offset,
            in("x3") a.v_entry,
            in("x4") a.dtb,
            in("x5") a.dtb_size,
            options(noreturn)
        )
    }
}

/// Parks this core for good.
pub fn halt() -> ! {
    loop {
        // SAFETY: waiting for an event has no side effects.
        unsafe { asm!("wfe") };
    }
}
