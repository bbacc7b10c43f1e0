//! The guest's device tree, built from a platform table and the board's real DTB.
//!
//! [`build`] takes a [`Platform`], the board's DTB and where the initrd was loaded, and returns
//! the DTB the guest boots with. What the VMM emulates is written from the table; what the
//! guest gets of the board is copied from the board's tree, checked against the table.
//!
//! # Where it runs
//!
//! At build time, on the host: `vmmctl dtb <platform> --board <board.dtb> --initrd FILE -o
//! guest.dtb` (`build/build.sh` does this), and the root task embeds the result and copies it
//! to the platform's DTB load region. That way a bad table or board tree stops the build with
//! a message, not the boot; the board DTB need not be in the image; and `dtc` checks the output
//! before it ships. The crate is `no_std` + `alloc` and never panics on its input, so the root
//! task could run it at boot instead (say, on a DTB the bootloader hands over).
//!
//! # What the guest tree holds
//!
//! Written from the table (on every platform):
//!
//! * `/` with the board's `compatible` and `model`, the board root's `#address-cells` and
//!   `#size-cells` (the copied nodes' `reg` and `ranges` are encoded in them), and
//!   `interrupt-parent` = the emulated GIC;
//! * `/chosen`: `bootargs`, `stdout-path`, and `linux,initrd-start` / `linux,initrd-end`
//!   (64-bit) when an initrd is given;
//! * `/memory@…`: guest RAM only;
//! * `/cpus` with one `cpu@n` per vCPU (`reg` = MPIDR Aff0 = n, `arm,armv8`, PSCI enable);
//! * `/psci` (`arm,psci-1.0`, `arm,psci-0.2`, method `smc`: seL4 takes a guest HVC as one of its own system calls);
//! * `/timer` (`arm,armv8-timer`, PPIs 13, 14, 11, 10);
//! * `intc@<distributor>`: the emulated GICv3 (`#interrupt-cells` 3, `#address-cells` 0,
//!   distributor + redistributor region, maintenance PPI 9), the root interrupt parent;
//! * `pcie@<ECAM>`: `pci-host-ecam-generic` for the virtio devices: bus 0 only, one 32-bit
//!   non-prefetchable memory window, `dma-coherent`, and an `interrupt-map` routing INTA..INTD
//!   of every slot to the table's four SPIs by the standard swizzle `(slot + pin - 1) % 4`.
//!   The map mask `<0x1800 0 0 7>` keeps the low two bits of the device number, so four slots'
//!   entries route all 32 (the swizzle only depends on the slot modulo 4), as QEMU's tree does.
//!   Linux takes legacy interrupts from this map, never from the 8-bit `interrupt_line`
//!   register (which cannot hold the Orin's SPIs 416..419);
//! * where the table has a UART: `pl011@…` (`arm,pl011`, `arm,primecell`, its SPI, clocks
//!   `uartclk` and `apb_pclk` from a 24 MHz `fixed-clock` `apb-pclk`, like QEMU's) and the
//!   alias `serial0`.
//!
//! Every emulated interrupt has flags 4 (level, active high), the timer's too: the emulated GIC
//! is a GICv3, whose binding defines only the trigger bits, as QEMU's GICv3 tree writes them
//! (the board's `0xf08` adds a GICv2 CPU mask and active-low, which Linux's GICv3 driver
//! configures as plain level anyway).
//!
//! # What the guest gets of the board
//!
//! The nodes the platform names, copied with all their properties and subnodes, at their
//! board paths:
//!
//! * every `passthrough[*].dt_path`;
//! * every `board_nodes[*].dt_path`: nodes without registers, which no pass-through region can
//!   name (the Orin's `/bpmp` with its `i2c` child, and `/serial`, the TCU);
//! * the node `stdout-path` names, when it is a board node (the Orin's `/serial` again);
//! * the `extra` nodes of [`build_with`] (`vmmctl dtb --node PATH`): more board nodes for one
//!   build, beyond what the table names.
//!
//! Their ancestors come too, with their properties (the `#address-cells`, `#size-cells` and
//! `ranges` the paths need, and e.g. `/sram@40000000`'s `mmio-sram` binding its pool children
//! hang off) but only the children that are kept. Nothing else of the board's tree is copied
//! (its `/aliases` only where an alias names a kept node).
//!
//! Checks against the table, each failing with an [`Error`] that names the node:
//!
//! * every node the table names exists ([`Error::MissingNode`], naming the path and the
//!   region or board node of the table that names it: a board tree without the Orin's `/bpmp`
//!   is an error, not a guest without clocks);
//! * every pass-through range is one of its node's `reg` regions, translated through the
//!   parents' `ranges` ([`Error::RegMismatch`]), and every `reg` region of a copied node (not
//!   of an ancestor) lies in a pass-through range ([`Error::RegNotPassedThrough`]);
//! * interrupts: a GIC SPI of a copied node that the table passes through must have the
//!   table's trigger ([`Error::IrqMismatch`]); one the table does not pass through is left out
//!   of the guest's `interrupts` (with its `interrupt-names` entry; see [`Output::notes`]), so
//!   the guest is told only of interrupts it can get (the Orin's HSP top0 keeps `doorbell` and
//!   `shared0`, the two `tegra-hsp.c` requests); a PPI is an error ([`Error::BadInterrupt`]);
//!   every pass-through interrupt must belong to a copied node ([`Error::IrqNotInGuest`]).
//!
//! # Phandles
//!
//! Copied nodes keep their phandle values; the emulated GIC and clock get values above the
//! board's largest. Every reference in a copied node is resolved on the board, and:
//!
//! * to a copied node: kept as is;
//! * to the board's GIC (`interrupt-parent`, `interrupts-extended`, `interrupt-map`; the GIC is
//!   *replaceable*): rewritten to the emulated GIC's phandle;
//! * `iommus`, `iommu-map` and `interconnects` (with `iommu-map-mask`, `interconnect-names`) to
//!   a node the guest does not get: the property is left out. The guest has no SMMU or memory
//!   controller: stage 2 isolates it, and its RAM is identity-mapped where DMA matters;
//! * to anything else (a clock, reset or power-domain provider, a mailbox, an ITS, ...) the
//!   guest does not get: the build fails with [`Error::UnkeptReference`] naming the node, the
//!   property and the target, unless the platform passes the target through.
//!
//! A phandle that no board node has is [`Error::DanglingPhandle`]. The properties known to
//! hold phandles are dtc's list, the common Linux bindings (`clocks`, `resets`,
//! `power-domains`, `mboxes`, `shmem`, `dmas`, `phys`, `*-gpios`, `*-supply`, `pinctrl-N`,
//! `memory-region`, ...) and every phandle-valued property of the Tegra234 devkit tree
//! (`nvidia,bpmp`, `remote-endpoint`, `dais`, ...); any other property is copied byte for
//! byte. Every built tree is read back and re-checked by [`verify`] before it is returned, so a
//! dangling phandle among those properties cannot leave this crate.
//!
//! # Reading and writing
//!
//! The board DTB is read with the `fdt` crate, after a bounds-checked walk of the whole blob
//! (`fdt` trusts the header's offsets), so truncated or corrupted input is an
//! [`Error::Malformed`], never a panic. The output is written by this crate rather than by
//! `vm-fdt`: that writer refuses property names longer than 31 characters, and real board nodes
//! have them (`nvidia,aspm-l0s-entrance-latency-us` on every Tegra234 PCIe controller).
#![no_std]
#![forbid(unsafe_code)]
// A board DTB is input too (and a fuzz target): checked, wrapping or saturating arithmetic only.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

extern crate alloc;

mod blob;
mod error;
mod guest;
mod refs;
pub mod tree;
mod verify;
mod writer;

use alloc::string::String;
use alloc::vec::Vec;

pub use blob::DtbError;
pub use error::Error;
pub use verify::{Verified, verify};
pub use vmm_platform::{GuestPhysAddr, Platform};

/// Where the initrd was loaded: `[start, end)`, guest-physical.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Initrd {
    /// First byte.
    pub start: GuestPhysAddr,
    /// One past the last byte.
    pub end: GuestPhysAddr,
}

impl Initrd {
    /// An initrd of `size` bytes at the platform's initrd load address (where the VMM loads it).
    pub fn at_load_region(platform: &Platform, size: u64) -> Initrd {
        let start = platform.initrd.addr;
        Initrd {
            start,
            end: GuestPhysAddr(start.0.saturating_add(size)),
        }
    }
}

/// A built guest device tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The DTB.
    pub dtb: Vec<u8>,
    /// The board nodes the platform named, copied with their subtrees.
    pub nodes: Vec<String>,
    /// What was left out of them, one line each: interrupts the table does not pass through,
    /// properties that refer to providers the guest does not get.
    pub notes: Vec<String>,
}

/// The guest DTB for `platform`, from the board's DTB `board` and the initrd's range.
pub fn build(platform: &Platform, board: &[u8], initrd: Option<Initrd>) -> Result<Vec<u8>, Error> {
    build_with(platform, board, initrd, &[]).map(|o| o.dtb)
}

/// [`build`], also copying the board nodes at the paths `extra` (beyond the table's
/// pass-through regions and board nodes), and saying what it left out.
pub fn build_with(
    platform: &Platform,
    board: &[u8],
    initrd: Option<Initrd>,
    extra: &[&str],
) -> Result<Output, Error> {
    guest::build(platform, board, initrd, extra)
}
