//! `sel4-vmm.efi`: starts seL4 (hypervisor mode) and the VMM root task from UEFI.
//!
//! What seL4 expects of its loader, done here in this order (seL4_tools' elfloader and
//! rust-sel4's kernel loader do the same; the decisions are `boot-plan`'s):
//!
//! 1. At EL2, without VHE. Read the firmware's device tree (UEFI configuration table): the
//!    cores' MPIDRs from `/cpus`, the PSCI conduit from `/psci`.
//! 2. Plan every range against seL4's memory, the platform's reserved ranges (identity guest
//!    RAM, carve-outs) and the firmware's memory map; claim each range from the firmware
//!    (`AllocatePages` at that address), so nothing the firmware uses is overwritten.
//! 3. Copy the kernel's segments to their physical addresses, the root task's to one
//!    contiguous range (seL4 maps it back with `pv_offset`), the device tree; write the boot
//!    page tables; leave boot services.
//! 4. Clean everything written to the point of coherency, by address; start every other core
//!    with PSCI CPU_ON (by MPIDR) on the boot tables; switch this core to them; release the
//!    others; enter seL4 on each with TPIDR_EL1 = its logical ID and x0..x5 = the user image
//!    range, `pv_offset`, the entry, the DTB address and size.
//!
//! Every step is printed on the platform's UART; every stop says why.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod uart;

mod payload {
    use boot_plan::PhysRange;
    include!(concat!(env!("OUT_DIR"), "/payload.rs"));
}

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use boot_plan::dtb::{self, Conduit};
use boot_plan::elf::Elf;
use boot_plan::layout::{self, Forbidden, MapEntry, Plan, Request};
use boot_plan::pagetable::{self, KernelWindow, MAIR_EL2};
use boot_plan::{PAGE, PhysRange};
use uefi::boot::{self, AllocateType, MemoryType};
use uefi::mem::memory_map::MemoryMap;
use uefi::{Guid, Status, guid};
use vmm_platform::{HostUart, Platform};

use arch::{CoreStart, KernelArgs};

/// `EFI_DTB_TABLE_GUID`: the configuration table entry that holds the device tree.
const DTB_TABLE_GUID: Guid = guid!("b1b621d5-f19c-41a5-830b-d9152c69aae0");
/// Largest number of cores the loader starts.
const MAX_CORES: usize = 16;
/// How long a core gets to come up.
const CORE_TIMEOUT_MS: u64 = 1000;

/// The platform's UART, set once in `main` (kind, base, register shift).
static UART: [AtomicU64; 3] = [
    AtomicU64::new(0),
    AtomicU64::new(0x0900_0000),
    AtomicU64::new(0),
];

fn set_host_uart(u: HostUart) {
    let (kind, base, shift) = match u {
        HostUart::Pl011 { base } => (0, base, 0),
        HostUart::Ns16550 { base, reg_shift } => (1, base, u64::from(reg_shift)),
    };
    for (slot, v) in UART.iter().zip([kind, base, shift]) {
        slot.store(v, Ordering::Relaxed);
    }
}

fn host_uart() -> HostUart {
    let [kind, base, shift] =
        [0, 1, 2].map(|i| UART.get(i).map_or(0, |a| a.load(Ordering::Relaxed)));
    match kind {
        0 => HostUart::Pl011 { base },
        _ => HostUart::Ns16550 {
            base,
            reg_shift: shift as u8,
        },
    }
}

macro_rules! say {
    ($($arg:tt)*) => {
        uart::with(host_uart(), |u| { let _ = writeln!(u, "loader: {}", format_args!($($arg)*)); })
    };
}

/// Stops the boot: says why on the UART, then parks the core.
macro_rules! stop {
    ($($arg:tt)*) => {{
        say!("STOP: {}", format_args!($($arg)*));
        arch::halt()
    }};
}

/// Per-core state shared with the secondary cores.
#[repr(C, align(64))]
struct Core {
    start: CoreStart,
    /// Logical core ID.
    id: u64,
    /// The kernel's entry and arguments.
    entry: u64,
    args: KernelArgs,
    /// 1 once the core runs on the boot tables.
    up: AtomicU32,
}

/// The cores' blocks: each written by the boot core before that core starts, then only read.
struct Cores(UnsafeCell<[Core; MAX_CORES]>);

// SAFETY: see `Cores`: a block has one writer, before its reader runs.
unsafe impl Sync for Cores {}

static CORES: Cores = Cores(UnsafeCell::new(
    [const {
        Core {
            start: CoreStart {
                mair: 0,
                tcr: 0,
                ttbr: 0,
                sp: 0,
                main: 0,
                vbar: 0,
            },
            id: 0,
            entry: 0,
            args: KernelArgs {
                ui_p_start: 0,
                ui_p_end: 0,
                pv_offset: 0,
                v_entry: 0,
                dtb: 0,
                dtb_size: 0,
            },
            up: AtomicU32::new(0),
        }
    }; MAX_CORES],
));
/// Set by the boot core when every core may enter the kernel.
static GO: AtomicU32 = AtomicU32::new(0);

#[uefi::entry]
fn main() -> Status {
    let Some(platform) = vmm_platform::by_name(payload::PLATFORM) else {
        return Status::LOAD_ERROR;
    };
    set_host_uart(platform.host.uart);
    say!(
        "sel4-vmm EFI loader: platform {}, seL4 {} for {} cores, kernel {} KiB, root task {} KiB",
        payload::PLATFORM,
        payload::SEL4_PLAT,
        payload::CORES,
        payload::KERNEL.len() / 1024,
        payload::ROOT_TASK.len() / 1024
    );
    if arch::current_el() != 2 {
        stop!(
            "running at EL{}: seL4's hypervisor mode needs the firmware to start the loader at EL2",
            arch::current_el()
        );
    }
    if arch::vhe() {
        stop!("HCR_EL2.E2H is set (the firmware runs with VHE): seL4 expects it clear");
    }
    load(platform)
}

fn load(platform: &'static Platform) -> ! {
    // 1. The firmware's device tree.
    let fw_dtb = uefi::system::with_config_table(|t| {
        t.iter()
            .find(|e| e.guid == DTB_TABLE_GUID)
            .map(|e| e.address as usize)
    });
    let Some(fw_dtb) = fw_dtb else {
        stop!("the firmware offers no device tree (no EFI_DTB_TABLE_GUID configuration table)")
    };
    // SAFETY: the firmware's table points at a device tree: its 40-byte header first, whose
    // `totalsize` (bounded below) says how much to read; `dtb::read` checks the whole blob.
    let header = unsafe { core::slice::from_raw_parts(fw_dtb as *const u8, 40) };
    let total = u32::from_be_bytes(
        header
            .get(4..8)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 4]),
    ) as usize;
    if !(40..=64 << 20).contains(&total) {
        stop!("device tree at {fw_dtb:#x}: size {total:#x} is not plausible");
    }
    // SAFETY: as above, `total` bytes from the firmware's table.
    let fw_blob = unsafe { core::slice::from_raw_parts(fw_dtb as *const u8, total) };
    let board = dtb::read(fw_blob).unwrap_or_else(|e| stop!("device tree at {fw_dtb:#x}: {e}"));
    let cores =
        dtb::boot_cores(&board, arch::mpidr(), payload::CORES).unwrap_or_else(|e| stop!("{e}"));
    if cores.len() > MAX_CORES {
        stop!(
            "{} cores: the loader starts at most {MAX_CORES}",
            cores.len()
        );
    }
    let conduit = board
        .psci
        .unwrap_or_else(|| stop!("{}", dtb::DtbError::Psci));
    say!(
        "device tree at {fw_dtb:#x} ({total} bytes), PSCI by {}",
        match conduit {
            Conduit::Smc => "SMC",
            Conduit::Hvc => "HVC",
        }
    );
    let mut list = alloc::string::String::new();
    for (i, m) in cores.iter().enumerate() {
        let _ = write!(list, "{}{i}={m:#x}", if i == 0 { "" } else { " " });
    }
    say!("cores (logical=MPIDR): {list}");

    // 2. The plan.
    let kernel = Elf::parse(payload::KERNEL).unwrap_or_else(|e| stop!("seL4 kernel.elf: {e}"));
    let user = Elf::parse(payload::ROOT_TASK).unwrap_or_else(|e| stop!("root task ELF: {e}"));
    let map =
        boot::memory_map(MemoryType::LOADER_DATA).unwrap_or_else(|e| stop!("GetMemoryMap: {e:?}"));
    let firmware: Vec<MapEntry> = map
        .entries()
        .filter_map(|d| {
            let range = PhysRange::sized(d.phys_start, d.page_count.checked_mul(PAGE)?)?;
            Some(MapEntry {
                range,
                free: d.ty == MemoryType::CONVENTIONAL,
                kind: type_name(d.ty),
            })
        })
        .collect();
    // Normal memory in the boot tables: seL4's memory and everything the firmware calls RAM
    // (the loader's own code and stack are there).
    let mut ram: Vec<PhysRange> = payload::SEL4_MEMORY.to_vec();
    ram.extend(
        map.entries()
            .filter(|d| {
                d.att
                    .contains(uefi::mem::memory_map::MemoryAttribute::WRITE_BACK)
                    && is_ram(d.ty)
            })
            .filter_map(|d| PhysRange::sized(d.phys_start, d.page_count.checked_mul(PAGE)?)),
    );
    drop(map);
    let window = KernelWindow {
        virt: kernel.virt_span(),
        phys: kernel.phys_span().start,
    };
    let tables =
        pagetable::boot_map(&ram, window).unwrap_or_else(|e| stop!("boot page tables: {e}"));
    let tcr = pagetable::tcr_el2(payload::PA_BITS)
        .unwrap_or_else(|| stop!("no TCR_EL2 for {} PA bits", payload::PA_BITS));
    let mut forbidden = layout::platform_forbidden(platform);
    for (name, range) in &board.reserved {
        forbidden.push(Forbidden {
            name: alloc::format!("device tree {name}"),
            range: *range,
        });
    }
    let req = Request {
        kernel: &kernel,
        user: &user,
        dtb_bytes: total as u64,
        table_bytes: tables.bytes(),
        cores: cores.len(),
        sel4_memory: payload::SEL4_MEMORY,
        forbidden: &forbidden,
        firmware: Some(&firmware),
    };
    let plan = layout::plan(&req).unwrap_or_else(|e| stop!("{e}"));
    for (name, r) in plan.regions() {
        say!("  {name:<17} {r} ({} KiB)", r.len() / 1024);
    }
    for (name, r) in plan.regions() {
        let pages = (r.align_out(PAGE).len() / PAGE) as usize;
        if let Err(e) = boot::allocate_pages(
            AllocateType::Address(r.start & !(PAGE - 1)),
            MemoryType::LOADER_DATA,
            pages,
        ) {
            stop!("claiming {name} at {r} from the firmware: {:?}", e.status());
        }
    }

    // 3. Copy.
    // SAFETY: every destination was claimed from the firmware above and is identity-mapped
    // by it; the sources are this image's own data.
    unsafe {
        for s in kernel.segments() {
            copy(s.paddr, kernel.bytes(&s), s.memsz);
        }
        core::ptr::write_bytes(plan.user.start as *mut u8, 0, plan.user.len() as usize);
        for s in user.segments() {
            copy(
                plan.user.start + (s.vaddr - plan.user_virt.start),
                user.bytes(&s),
                s.memsz,
            );
        }
        copy(plan.dtb.start, fw_blob, total as u64);
        let dst = plan.tables.start as *mut u64;
        for (i, d) in tables.encode(plan.tables.start).enumerate() {
            dst.add(i).write(d);
        }
    }
    check_tables(&plan, &window);
    let args = KernelArgs {
        ui_p_start: plan.user.start,
        ui_p_end: plan.user.end,
        pv_offset: plan.pv_offset(),
        v_entry: plan.user_entry,
        dtb: plan.dtb.start,
        dtb_size: total as u64,
    };
    say!(
        "kernel entry {:#x}; root task {:#x}..{:#x} pv_offset {:#x} entry {:#x}; dtb {:#x}+{:#x}",
        plan.kernel_entry,
        args.ui_p_start,
        args.ui_p_end,
        args.pv_offset,
        args.v_entry,
        args.dtb,
        args.dtb_size
    );
    let image = loader_image();
    say!("loader image {image}; leaving boot services");

    // SAFETY: nothing of the firmware's is used after this (the UART is driven directly; the
    // allocator is not used again).
    let _map = unsafe { boot::exit_boot_services(None) };
    arch::mask_interrupts();
    arch::install_vectors();
    start(&plan, &cores, conduit, tcr, image, &args)
}

fn start(
    plan: &Plan,
    cores: &[u64],
    conduit: Conduit,
    tcr: u64,
    image: PhysRange,
    args: &KernelArgs,
) -> ! {
    // 4. Caches, cores, tables, kernel.
    for (_, r) in plan.regions() {
        arch::clean_to_poc(r.start, r.end);
    }
    arch::clean_to_poc(image.start, image.end);
    let ttbr = plan.tables.start;
    for (i, &mpidr) in cores.iter().enumerate().skip(1) {
        // SAFETY: core `i` is not running; only this core writes its block.
        let Some(core) = (unsafe { (*CORES.0.get()).get_mut(i) }) else {
            stop!("core {i}: the loader starts at most {MAX_CORES}")
        };
        core.entry = plan.kernel_entry;
        core.args = *args;
        core.start = CoreStart {
            mair: MAIR_EL2,
            tcr,
            ttbr,
            sp: plan.stack_top(i),
            main: secondary_main as *const () as u64,
            vbar: arch::vectors(),
        };
        core.id = i as u64;
        let block = core as *const Core as u64;
        arch::clean_to_poc(block, block + core::mem::size_of::<Core>() as u64);
        let entry = arch::secondary_entry as *const () as u64;
        let status = arch::psci_cpu_on(conduit, mpidr, entry, block);
        if status != 0 {
            stop!(
                "PSCI CPU_ON core {i} (MPIDR {mpidr:#x}): {} ({status})",
                arch::psci_status(status)
            );
        }
        let (t0, freq) = arch::counter();
        while core.up.load(Ordering::Acquire) == 0 {
            let (t, _) = arch::counter();
            if t.wrapping_sub(t0) > freq / 1000 * CORE_TIMEOUT_MS {
                stop!("core {i} (MPIDR {mpidr:#x}) did not come up within {CORE_TIMEOUT_MS} ms");
            }
            core::hint::spin_loop();
        }
    }
    say!(
        "{} cores on the boot page tables; switching this one",
        cores.len()
    );
    // SAFETY: the boot tables map this code, its stack and the UART as the firmware's did
    // (identity, normal / device), and were cleaned to the point of coherency.
    unsafe { arch::switch_tables(MAIR_EL2, tcr, ttbr, arch::SCTLR_EL2) };
    say!("entering seL4 on {} cores", cores.len());
    GO.store(1, Ordering::Release);
    // SAFETY: barriers and SEV have no memory effects of their own.
    unsafe { core::arch::asm!("dsb ish", "sev") };
    arch::enter_kernel(plan.kernel_entry, 0, args)
}

/// A secondary core, on the boot tables and its own stack.
extern "C" fn secondary_main(core: &Core) -> ! {
    core.up.store(1, Ordering::Release);
    while GO.load(Ordering::Acquire) == 0 {
        // SAFETY: waiting for an event has no side effects.
        unsafe { core::arch::asm!("wfe") };
    }
    arch::enter_kernel(core.entry, core.id, &core.args)
}

/// Copies `data` to physical `dst` and zeroes the rest of `memsz`.
unsafe fn copy(dst: u64, data: &[u8], memsz: u64) {
    let p = dst as *mut u8;
    // SAFETY: the caller claimed `dst .. dst + memsz`, which holds `data`.
    unsafe {
        core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len());
        core::ptr::write_bytes(p.add(data.len()), 0, memsz as usize - data.len());
    }
}

/// Reads the written tables back as the MMU will: the kernel's entry, the UART and this
/// code must translate as intended, or the boot stops here with the reason.
fn check_tables(plan: &Plan, window: &KernelWindow) {
    let read = |pa: u64| {
        plan.tables.contains(pa).then(|| {
            // SAFETY: inside the tables just written.
            unsafe { (pa as *const u64).read() }
        })
    };
    let want_kernel = plan.kernel_entry - window.virt.start + window.phys;
    match pagetable::walk(read, plan.tables.start, plan.kernel_entry) {
        Some(t) if t.pa == want_kernel && !t.xn => {}
        t => stop!(
            "boot tables map the kernel entry {:#x} to {t:?}, not {want_kernel:#x}",
            plan.kernel_entry
        ),
    }
    let here = check_tables as *const () as u64;
    match pagetable::walk(read, plan.tables.start, here) {
        Some(t) if t.pa == here && !t.xn && t.index == pagetable::ATTR_NORMAL => {}
        t => stop!("boot tables map the loader's code {here:#x} to {t:?}"),
    }
}

/// The loader's own image in memory (to clean it: secondary cores fetch it with the MMU off).
fn loader_image() -> PhysRange {
    let info = boot::open_protocol_exclusive::<uefi::proto::loaded_image::LoadedImage>(
        boot::image_handle(),
    )
    .map(|li| li.info())
    .unwrap_or_else(|e| stop!("LoadedImage protocol: {e:?}"));
    let start = info.0 as u64;
    PhysRange::new(start, start + info.1)
}

fn is_ram(t: MemoryType) -> bool {
    matches!(
        t,
        MemoryType::CONVENTIONAL
            | MemoryType::LOADER_CODE
            | MemoryType::LOADER_DATA
            | MemoryType::BOOT_SERVICES_CODE
            | MemoryType::BOOT_SERVICES_DATA
            | MemoryType::RUNTIME_SERVICES_CODE
            | MemoryType::RUNTIME_SERVICES_DATA
            | MemoryType::ACPI_RECLAIM
            | MemoryType::ACPI_NON_VOLATILE
    )
}

fn type_name(t: MemoryType) -> &'static str {
    match t {
        MemoryType::RESERVED => "reserved",
        MemoryType::LOADER_CODE => "loader code",
        MemoryType::LOADER_DATA => "loader data",
        MemoryType::BOOT_SERVICES_CODE => "boot services code",
        MemoryType::BOOT_SERVICES_DATA => "boot services data",
        MemoryType::RUNTIME_SERVICES_CODE => "runtime services code",
        MemoryType::RUNTIME_SERVICES_DATA => "runtime services data",
        MemoryType::CONVENTIONAL => "conventional",
        MemoryType::UNUSABLE => "unusable",
        MemoryType::ACPI_RECLAIM => "ACPI reclaim",
        MemoryType::ACPI_NON_VOLATILE => "ACPI NVS",
        MemoryType::MMIO => "MMIO",
        MemoryType::MMIO_PORT_SPACE => "MMIO port space",
        MemoryType::PAL_CODE => "PAL code",
        MemoryType::PERSISTENT_MEMORY => "persistent",
        _ => "other",
    }
}

/// An exception taken by the loader (after boot services): named, then the core stops.
#[unsafe(no_mangle)]
extern "C" fn loader_exception(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    stop!("exception (vector {kind}) ESR_EL2 {esr:#x} ELR_EL2 {elr:#x} FAR_EL2 {far:#x}")
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    stop!("panic: {info}")
}
