//! What the loader reads in the firmware's device tree: the cores (`/cpus`), the PSCI conduit
//! (`/psci`), the memory (`/memory*`) and what is reserved (`/reserved-memory`, the memory
//! reservation block).
//!
//! The tree is read with guest-dtb's checked reader (`guest_dtb::tree`, a bounds-checked walk
//! of the whole blob first): the blob comes from firmware, and a malformed one must end in a
//! named error, not a fault.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use guest_dtb::tree::{self, Tree};

use crate::PhysRange;

/// The MPIDR bits that name a core (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_AFF_MASK: u64 = 0xff_00ff_ffff;

/// Why the device tree cannot be used.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DtbError {
    /// Not a flattened device tree (magic), or shorter than its header says.
    Header,
    /// The structure block is malformed at this offset.
    Structure(usize),
    /// No `/cpus` node with `cpu` children.
    NoCpus,
    /// A `cpu` node's `reg` is missing or not 1 or 2 cells.
    CpuReg(String),
    /// The running core's MPIDR is not among `/cpus`.
    BootCpuNotListed(u64),
    /// The kernel is built for more cores than `/cpus` lists as usable.
    TooFewCpus {
        /// Cores the kernel expects.
        want: usize,
        /// Usable cores listed.
        have: usize,
    },
    /// A secondary core the loader must start has an enable method other than PSCI.
    EnableMethod {
        /// The core.
        mpidr: u64,
        /// What the tree says.
        method: String,
    },
    /// `/psci` is missing or its `method` is neither "smc" nor "hvc".
    Psci,
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtbError::Header => write!(f, "not a flattened device tree (bad magic or size)"),
            DtbError::Structure(at) => write!(f, "device tree structure malformed at {at:#x}"),
            DtbError::NoCpus => write!(f, "device tree has no /cpus/cpu@* nodes"),
            DtbError::CpuReg(node) => write!(f, "{node}: reg is not an MPIDR of 1 or 2 cells"),
            DtbError::BootCpuNotListed(m) => {
                write!(f, "the running core (MPIDR {m:#x}) is not in /cpus")
            }
            DtbError::TooFewCpus { want, have } => write!(
                f,
                "seL4 is built for {want} cores but /cpus lists {have} usable"
            ),
            DtbError::EnableMethod { mpidr, method } => write!(
                f,
                "core {mpidr:#x}: enable-method \"{method}\" (only \"psci\" is supported)"
            ),
            DtbError::Psci => write!(f, "/psci missing or its method is neither smc nor hvc"),
        }
    }
}

/// How PSCI calls reach the firmware.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Conduit {
    /// `smc #0` (a secure monitor: Orin's TF-A, QEMU with `virtualization=on`).
    Smc,
    /// `hvc #0`.
    Hvc,
}

/// One core listed in `/cpus`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Cpu {
    /// Its node's path.
    pub node: String,
    /// The MPIDR affinity bits from `reg`.
    pub mpidr: u64,
    /// `enable-method`, if given.
    pub enable_method: Option<String>,
    /// `status` is absent, "okay" or "ok".
    pub usable: bool,
}

/// What the loader reads from the tree.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BoardInfo {
    /// Every `cpu` node under `/cpus`, in tree order.
    pub cpus: Vec<Cpu>,
    /// `/psci`'s `method`.
    pub psci: Option<Conduit>,
    /// The `reg` ranges of `device_type = "memory"` nodes.
    pub memory: Vec<PhysRange>,
    /// `/reserved-memory` children's `reg` ranges and the memory reservation block, with
    /// their names.
    pub reserved: Vec<(String, PhysRange)>,
    /// The header's `totalsize`.
    pub total_size: usize,
}

fn be(value: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = value.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// The first string of a property value.
fn str_prop(value: &[u8]) -> String {
    let n = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(value.get(..n).unwrap_or(&[])).into_owned()
}

/// Node `i`'s `reg` as physical ranges (translated through its parents' `ranges`); ranges
/// that do not fit 64 bits are left out.
fn regions(t: &Tree<'_>, i: usize) -> Vec<PhysRange> {
    t.regions(i)
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(a, s)| PhysRange::sized(u64::try_from(a).ok()?, u64::try_from(s).ok()?))
        .collect()
}

fn usable(t: &Tree<'_>, i: usize) -> bool {
    matches!(
        t.prop(i, "status").map(str_prop).as_deref(),
        None | Some("okay") | Some("ok")
    )
}

/// Reads `blob`.
pub fn read(blob: &[u8]) -> Result<BoardInfo, DtbError> {
    let t = Tree::read(blob).map_err(|e| match e {
        guest_dtb::Error::Malformed(guest_dtb::DtbError::Structure { offset, .. }) => {
            DtbError::Structure(offset)
        }
        guest_dtb::Error::Malformed(_) => DtbError::Header,
        _ => DtbError::Structure(0),
    })?;
    // Tree::read checked the header: totalsize fits the blob, the blocks lie inside it.
    let word = |at: usize| be(blob, at).map(|v| (v >> 32) as usize);
    let total_size = word(4).unwrap_or(blob.len());
    let mut info = BoardInfo {
        total_size,
        ..BoardInfo::default()
    };
    // The memory reservation block: (address, size) pairs up to a zero pair.
    if let Some(mut at) = word(16) {
        for _ in 0..1024 {
            let (Some(a), Some(s)) = (be(blob, at), be(blob, at.saturating_add(8))) else {
                return Err(DtbError::Header);
            };
            if a == 0 && s == 0 {
                break;
            }
            if let Some(range) = PhysRange::sized(a, s) {
                info.reserved.push((String::from("/memreserve/"), range));
            }
            at = at.saturating_add(16);
        }
    }
    let root_children = t.node(0).map(|n| n.children.clone()).unwrap_or_default();
    for &i in &root_children {
        let Some(node) = t.node(i) else { continue };
        let base = node.name.split('@').next().unwrap_or("");
        let device_type = t.prop(i, "device_type").map(str_prop);
        if base == "psci" {
            info.psci = match t.prop(i, "method").map(str_prop).as_deref() {
                Some("smc") => Some(Conduit::Smc),
                Some("hvc") => Some(Conduit::Hvc),
                _ => None,
            };
        } else if (device_type.as_deref() == Some("memory") || base == "memory") && usable(&t, i) {
            info.memory.extend(regions(&t, i));
        } else if node.name == "reserved-memory" {
            for &c in &node.children {
                info.reserved
                    .extend(regions(&t, c).into_iter().map(|r| (t.path(c), r)));
            }
        } else if node.name == "cpus" {
            let ac = t.addr_cells(i);
            for &c in &node.children {
                let Some(cpu) = t.node(c) else { continue };
                let is_cpu = t.prop(c, "device_type").map(str_prop).as_deref() == Some("cpu")
                    || cpu.name.split('@').next() == Some("cpu");
                if !is_cpu {
                    continue;
                }
                let reg = t.prop(c, "reg").and_then(tree::cells).unwrap_or_default();
                let mpidr = match (ac, reg.as_slice()) {
                    (1, [lo, ..]) => u64::from(*lo) & MPIDR_AFF_MASK,
                    (2, [hi, lo, ..]) => ((u64::from(*hi) << 32) | u64::from(*lo)) & MPIDR_AFF_MASK,
                    _ => u64::MAX,
                };
                info.cpus.push(Cpu {
                    node: t.path(c),
                    mpidr,
                    enable_method: t.prop(c, "enable-method").map(str_prop),
                    usable: usable(&t, c),
                });
            }
        }
    }
    Ok(info)
}

/// The cores seL4 gets, in logical order: the running core (`boot_mpidr`) is core 0, then the
/// other usable cores in tree order, `want` in all. Their MPIDRs are what PSCI CPU_ON takes
/// (never indices: Orin's are 0x0, 0x100, ..., 0x20300).
pub fn boot_cores(info: &BoardInfo, boot_mpidr: u64, want: usize) -> Result<Vec<u64>, DtbError> {
    if info.cpus.is_empty() {
        return Err(DtbError::NoCpus);
    }
    if let Some(c) = info.cpus.iter().find(|c| c.mpidr == u64::MAX) {
        return Err(DtbError::CpuReg(c.node.clone()));
    }
    let boot = boot_mpidr & MPIDR_AFF_MASK;
    if !info.cpus.iter().any(|c| c.mpidr == boot) {
        return Err(DtbError::BootCpuNotListed(boot));
    }
    let mut cores = Vec::from([boot]);
    let others = info.cpus.iter().filter(|c| c.usable && c.mpidr != boot);
    let have = 1 + others.clone().count();
    for c in others.take(want.saturating_sub(1)) {
        match c.enable_method.as_deref() {
            Some("psci") => cores.push(c.mpidr),
            m => {
                return Err(DtbError::EnableMethod {
                    mpidr: c.mpidr,
                    method: String::from(m.unwrap_or("(none)")),
                });
            }
        }
    }
    if cores.len() < want {
        return Err(DtbError::TooFewCpus { want, have });
    }
    Ok(cores)
}
