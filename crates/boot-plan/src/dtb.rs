//! What the loader reads in the firmware's device tree: the cores (`/cpus`), the PSCI conduit
//! (`/psci`), the memory (`/memory*`) and what is reserved (`/reserved-memory`, the memory
//! reservation block).
//!
//! A small walk of its own over the structure block, every read bounds-checked: the blob
//! comes from firmware, and a malformed one must end in a named error, not a fault.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::PhysRange;

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const MAX_DEPTH: usize = 32;
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

struct Reader<'a> {
    d: &'a [u8],
}

impl Reader<'_> {
    fn be32(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.d.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_be_bytes(s))
    }
    fn be64(&self, at: usize) -> Option<u64> {
        Some((u64::from(self.be32(at)?) << 32) | u64::from(self.be32(at.checked_add(4)?)?))
    }
    fn cstr(&self, at: usize, limit: usize) -> Option<&str> {
        let tail = self.d.get(at..limit)?;
        let n = tail.iter().position(|&b| b == 0)?;
        core::str::from_utf8(tail.get(..n)?).ok()
    }
}

fn cells(value: &[u8], n: u32) -> Option<(u64, &[u8])> {
    let len = usize::try_from(n).ok()?.checked_mul(4)?;
    if n > 2 || value.len() < len {
        return None;
    }
    let (head, rest) = value.split_at(len);
    let v = head.chunks_exact(4).fold(0u64, |acc, c| {
        let w: [u8; 4] = c.try_into().unwrap_or([0; 4]);
        (acc << 32) | u64::from(u32::from_be_bytes(w))
    });
    Some((v, rest))
}

fn reg_ranges(value: &[u8], ac: u32, sc: u32, mut f: impl FnMut(PhysRange)) {
    let mut rest = value;
    // Bounded by the property's length: every entry takes at least 4 bytes.
    while !rest.is_empty() {
        let Some((base, r)) = cells(rest, ac) else {
            return;
        };
        let Some((size, r)) = cells(r, sc) else {
            return;
        };
        if let Some(range) = PhysRange::sized(base, size) {
            f(range);
        }
        if r.len() == rest.len() {
            return;
        }
        rest = r;
    }
}

fn str_prop(value: &[u8]) -> String {
    let n = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(value.get(..n).unwrap_or(&[])).into_owned()
}

#[derive(Clone, Default)]
struct Frame {
    name: String,
    ac: u32,
    sc: u32,
    device_type: String,
    reg: Vec<u8>,
    status: Option<String>,
    enable_method: Option<String>,
    method: Option<String>,
}

/// Reads `blob`.
pub fn read(blob: &[u8]) -> Result<BoardInfo, DtbError> {
    let r = Reader { d: blob };
    if r.be32(0) != Some(MAGIC) {
        return Err(DtbError::Header);
    }
    let field = |i: usize| {
        r.be32(i * 4)
            .ok_or(DtbError::Header)
            .and_then(|v| usize::try_from(v).map_err(|_| DtbError::Header))
    };
    let total = field(1)?;
    let off_struct = field(2)?;
    let off_strings = field(3)?;
    let off_rsv = field(4)?;
    let size_strings = field(8)?;
    let size_struct = field(9)?;
    let struct_end = off_struct
        .checked_add(size_struct)
        .ok_or(DtbError::Header)?;
    let strings_end = off_strings
        .checked_add(size_strings)
        .ok_or(DtbError::Header)?;
    if total > blob.len() || struct_end > total || strings_end > total || off_rsv > total {
        return Err(DtbError::Header);
    }
    let mut info = BoardInfo {
        total_size: total,
        ..BoardInfo::default()
    };
    // Memory reservation block: (address, size) pairs up to a zero pair.
    let mut at = off_rsv;
    for _ in 0..1024 {
        let (Some(a), Some(s)) = (r.be64(at), r.be64(at.saturating_add(8))) else {
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

    let mut stack: Vec<Frame> = Vec::new();
    let mut at = off_struct;
    let bad = |at: usize| DtbError::Structure(at);
    loop {
        let token = r.be32(at).filter(|_| at < struct_end).ok_or(bad(at))?;
        let here = at;
        at = at.checked_add(4).ok_or(bad(here))?;
        match token {
            BEGIN_NODE => {
                let name = r.cstr(at, struct_end).ok_or(bad(here))?;
                at = at
                    .checked_add(name.len() + 1)
                    .map(|a| (a + 3) & !3)
                    .ok_or(bad(here))?;
                if stack.len() >= MAX_DEPTH {
                    return Err(bad(here));
                }
                let (ac, sc) = (2, 1);
                stack.push(Frame {
                    name: String::from(name),
                    ac,
                    sc,
                    ..Frame::default()
                });
            }
            END_NODE => {
                let node = stack.pop().ok_or(bad(here))?;
                close_node(&mut info, &stack, node);
                if stack.is_empty() {
                    // The root closed: what follows must be END (NOPs allowed).
                    loop {
                        match r.be32(at).filter(|_| at < struct_end) {
                            Some(NOP) => at = at.saturating_add(4),
                            Some(END) => return Ok(info),
                            _ => return Err(bad(at)),
                        }
                    }
                }
            }
            PROP => {
                let len = r.be32(at).ok_or(bad(here))?;
                let nameoff = r.be32(at.saturating_add(4)).ok_or(bad(here))?;
                let len = usize::try_from(len).map_err(|_| bad(here))?;
                let vstart = at.checked_add(8).ok_or(bad(here))?;
                let vend = vstart.checked_add(len).ok_or(bad(here))?;
                let value = blob
                    .get(vstart..vend)
                    .filter(|_| vend <= struct_end)
                    .ok_or(bad(here))?;
                let name_at = off_strings
                    .checked_add(usize::try_from(nameoff).map_err(|_| bad(here))?)
                    .ok_or(bad(here))?;
                let name = r.cstr(name_at, strings_end).ok_or(bad(here))?;
                at = (vend + 3) & !3;
                let node = stack.last_mut().ok_or(bad(here))?;
                match name {
                    "#address-cells" => node.ac = cells(value, 1).map_or(2, |(v, _)| v as u32),
                    "#size-cells" => node.sc = cells(value, 1).map_or(1, |(v, _)| v as u32),
                    "device_type" => node.device_type = str_prop(value),
                    "reg" => node.reg = Vec::from(value),
                    "status" => node.status = Some(str_prop(value)),
                    "enable-method" => node.enable_method = Some(str_prop(value)),
                    "method" => node.method = Some(str_prop(value)),
                    _ => {}
                }
            }
            NOP => {}
            _ => return Err(bad(here)),
        }
    }
}

fn path(stack: &[Frame], node: &Frame) -> String {
    let mut p = String::new();
    for f in stack.iter().skip(1).chain(core::iter::once(node)) {
        p.push('/');
        p.push_str(&f.name);
    }
    if p.is_empty() {
        p.push('/');
    }
    p
}

fn close_node(info: &mut BoardInfo, parents: &[Frame], node: Frame) {
    // A node's `reg` is read with its parent's cells.
    let (ac, sc) = parents.last().map_or((2, 1), |p| (p.ac, p.sc));
    let depth = parents.len();
    let parent_name = parents.last().map(|p| p.name.as_str());
    let base = node.name.split('@').next().unwrap_or("");
    if depth == 2 && parent_name == Some("cpus") && (node.device_type == "cpu" || base == "cpu") {
        let p = path(parents, &node);
        let mpidr = if (1..=2).contains(&ac) && node.reg.len() >= ac as usize * 4 {
            cells(&node.reg, ac).map(|(v, _)| v & MPIDR_AFF_MASK)
        } else {
            None
        };
        info.cpus.push(Cpu {
            node: p,
            mpidr: mpidr.unwrap_or(u64::MAX),
            enable_method: node.enable_method,
            usable: matches!(node.status.as_deref(), None | Some("okay") | Some("ok")),
        });
    } else if depth == 1 && base == "psci" {
        info.psci = match node.method.as_deref() {
            Some("smc") => Some(Conduit::Smc),
            Some("hvc") => Some(Conduit::Hvc),
            _ => None,
        };
    } else if depth == 1 && (node.device_type == "memory" || base == "memory") {
        if matches!(node.status.as_deref(), None | Some("okay") | Some("ok")) {
            reg_ranges(&node.reg, ac, sc, |r| info.memory.push(r));
        }
    } else if depth == 2 && parent_name == Some("reserved-memory") {
        let p = path(parents, &node);
        reg_ranges(&node.reg, ac, sc, |r| info.reserved.push((p.clone(), r)));
    }
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
