//! The logic of `efi-loader`, the EFI application that starts seL4 and the VMM: everything it
//! decides, as plain functions over bytes and numbers, so that the host tests run all of it.
//!
//! * [`elf`]: the seL4 kernel's and the root task's ELF images, bounds-checked.
//! * [`dtb`]: what the firmware's device tree says: the cores' MPIDRs (`/cpus`), the PSCI
//!   conduit, the memory and the reserved memory.
//! * [`layout`]: where every byte the loader writes goes, checked against seL4's memory, the
//!   ranges nothing may touch (identity-mapped guest RAM, firmware carve-outs) and the
//!   firmware's memory map.
//! * [`pagetable`]: the kernel's initial EL2 translation (4 KiB granule, 48-bit VA).
//!
//! The loader copies, cleans caches and jumps; it decides nothing this crate did not.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "prefix")]
extern crate std;

pub mod dtb;
pub mod elf;
pub mod layout;
pub mod pagetable;
#[cfg(feature = "prefix")]
pub mod prefix;
mod range;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use range::PhysRange;

/// 4 KiB.
pub const PAGE: u64 = 0x1000;
