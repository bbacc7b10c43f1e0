//! Structural check of a flattened device tree before anything reads it.
//!
//! The `fdt` crate trusts the header's offsets and sizes (it adds them as `u32` and slices with
//! the sums) and treats some malformations as the end of a node, so a truncated or corrupted
//! blob could panic it or read as a smaller tree. Every blob therefore goes through [`check`]
//! first: a bounds-checked walk of the header, the memory reservation block and every token of
//! the structure block. What passes is well-formed in every way the reader relies on.

use core::fmt;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
/// Linux's limit (and vm-fdt's) on node nesting.
pub(crate) const MAX_DEPTH: usize = 64;

/// Why a blob is not a well-formed flattened device tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DtbError {
    /// Shorter than the 40-byte header.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The first word is not 0xd00dfeed.
    BadMagic {
        /// What it is.
        found: u32,
    },
    /// The header's `totalsize` is larger than the bytes given (a truncated file).
    Truncated {
        /// The header's `totalsize`.
        total_size: u32,
        /// Bytes given.
        len: usize,
    },
    /// A format version this reader does not know (it needs version 17, compatible with 16).
    Version {
        /// `version`.
        version: u32,
        /// `last_comp_version`.
        last_comp_version: u32,
    },
    /// A block lies (partly) outside `totalsize`, or is misaligned.
    Block {
        /// "structure", "strings" or "memory reservation".
        block: &'static str,
        /// Its offset.
        offset: u32,
        /// Its size.
        size: u32,
    },
    /// The structure block is malformed at `offset` (from the start of the blob).
    Structure {
        /// Byte offset of the offending token or field.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtbError::TooShort { len } => {
                write!(
                    f,
                    "{len} bytes is shorter than a DTB header ({HEADER_LEN} bytes)"
                )
            }
            DtbError::BadMagic { found } => {
                write!(f, "bad magic {found:#010x} (a DTB starts with 0xd00dfeed)")
            }
            DtbError::Truncated { total_size, len } => write!(
                f,
                "truncated: the header says {total_size} bytes, only {len} are there"
            ),
            DtbError::Version {
                version,
                last_comp_version,
            } => write!(
                f,
                "unsupported format version {version} (last compatible {last_comp_version}); \
                 version 17 is needed"
            ),
            DtbError::Block {
                block,
                offset,
                size,
            } => write!(
                f,
                "the {block} block ({size} bytes at {offset:#x}) is outside the blob or misaligned"
            ),
            DtbError::Structure { offset, what } => {
                write!(f, "structure block at byte {offset:#x}: {what}")
            }
        }
    }
}

/// What [`check`] counted, so the reader can be held to the same tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Counts {
    /// Nodes, the root included.
    pub nodes: usize,
    /// Properties of all nodes.
    pub props: usize,
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    let arr: [u8; 4] = bytes.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}

fn usize_of(v: u32) -> usize {
    // usize is at least 32 bits on every target this crate builds for.
    v as usize
}

/// Checks `data` is a well-formed flattened device tree (see the module docs).
pub(crate) fn check(data: &[u8]) -> Result<Counts, DtbError> {
    if data.len() < HEADER_LEN {
        return Err(DtbError::TooShort { len: data.len() });
    }
    let word = |i: usize| be32(data, i.saturating_mul(4)).unwrap_or(0);
    let magic = word(0);
    if magic != MAGIC {
        return Err(DtbError::BadMagic { found: magic });
    }
    let total_size = word(1);
    let off_struct = word(2);
    let off_strings = word(3);
    let off_rsvmap = word(4);
    let version = word(5);
    let last_comp_version = word(6);
    let size_strings = word(8);
    let size_struct = word(9);
    if usize_of(total_size) > data.len() {
        return Err(DtbError::Truncated {
            total_size,
            len: data.len(),
        });
    }
    if version < 17 || last_comp_version > 17 {
        return Err(DtbError::Version {
            version,
            last_comp_version,
        });
    }
    let total = usize_of(total_size);
    let block = |name: &'static str, offset: u32, size: u32, align: u32| {
        let end = offset.checked_add(size);
        match end {
            Some(end)
                if usize_of(end) <= total
                    && offset.is_multiple_of(align)
                    && usize_of(offset) >= HEADER_LEN =>
            {
                Ok((usize_of(offset), usize_of(end)))
            }
            _ => Err(DtbError::Block {
                block: name,
                offset,
                size,
            }),
        }
    };
    let (s_start, s_end) = block("structure", off_struct, size_struct, 4)?;
    let (str_start, str_end) = block("strings", off_strings, size_strings, 1)?;
    let strings = data.get(str_start..str_end).unwrap_or_default();

    // Memory reservation block: 16-byte entries up to a (0, 0) terminator, inside the blob.
    let (rsv_start, _) = block("memory reservation", off_rsvmap, 16, 8)?;
    let mut at = rsv_start;
    loop {
        let entry = data
            .get(at..at.saturating_add(16))
            .filter(|_| at.saturating_add(16) <= total);
        match entry {
            Some(e) if e.iter().all(|&b| b == 0) => break,
            Some(_) => at = at.saturating_add(16),
            None => {
                return Err(DtbError::Block {
                    block: "memory reservation",
                    offset: off_rsvmap,
                    size: u32::try_from(at.saturating_sub(rsv_start)).unwrap_or(u32::MAX),
                });
            }
        }
    }

    walk(data, s_start, s_end, strings)
}

// Positions below are offsets into `block` plus a few bytes, and `depth` stays under
// MAX_DEPTH: the saturating operations never saturate; they only say no sum can wrap.
fn walk(data: &[u8], start: usize, end: usize, strings: &[u8]) -> Result<Counts, DtbError> {
    let block = data.get(start..end).unwrap_or_default();
    let err = |at: usize, what: &'static str| DtbError::Structure {
        offset: start.saturating_add(at),
        what,
    };
    let mut counts = Counts::default();
    let mut at = 0usize;
    let mut depth = 0usize;
    // Whether the current node has had a child yet (properties must come first).
    let mut had_child = false;
    let mut root_done = false;
    loop {
        let token = be32(block, at).ok_or_else(|| err(at, "ends without an END token"))?;
        let here = at;
        at = at.saturating_add(4);
        match token {
            NOP => {}
            BEGIN_NODE => {
                if root_done {
                    return Err(err(here, "a second root node"));
                }
                let rest = block.get(at..).unwrap_or_default();
                let len = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| err(here, "node name without its NUL terminator"))?;
                let name = rest.get(..len).unwrap_or_default();
                let name =
                    core::str::from_utf8(name).map_err(|_| err(here, "node name is not UTF-8"))?;
                if depth == 0 && !name.is_empty() {
                    return Err(err(here, "the root node has a name"));
                }
                if depth > 0 && (name.is_empty() || name.contains('/')) {
                    return Err(err(here, "node name is empty or contains '/'"));
                }
                at = align4(at.saturating_add(len).saturating_add(1));
                depth = depth.saturating_add(1);
                if depth > MAX_DEPTH {
                    return Err(err(here, "nodes nested deeper than 64"));
                }
                had_child = false;
                counts.nodes = counts.nodes.saturating_add(1);
            }
            END_NODE => {
                if depth == 0 {
                    return Err(err(here, "END_NODE without a node"));
                }
                depth = depth.saturating_sub(1);
                had_child = true;
                if depth == 0 {
                    root_done = true;
                }
            }
            PROP => {
                if depth == 0 {
                    return Err(err(here, "property outside any node"));
                }
                if had_child {
                    return Err(err(here, "property after a child node"));
                }
                let len = be32(block, at).ok_or_else(|| err(here, "truncated property"))?;
                let nameoff = be32(block, at.saturating_add(4))
                    .ok_or_else(|| err(here, "truncated property"))?;
                at = at.saturating_add(8);
                let value_end = at
                    .checked_add(usize_of(len))
                    .filter(|&e| e <= block.len())
                    .ok_or_else(|| err(here, "property value runs past the structure block"))?;
                let name = strings
                    .get(usize_of(nameoff)..)
                    .and_then(|s| s.iter().position(|&b| b == 0).map(|n| s.get(..n)))
                    .flatten()
                    .ok_or_else(|| err(here, "property name offset outside the strings block"))?;
                if name.is_empty() || core::str::from_utf8(name).is_err() {
                    return Err(err(here, "property name is empty or not UTF-8"));
                }
                at = align4(value_end);
                counts.props = counts.props.saturating_add(1);
            }
            END => {
                if !root_done || depth != 0 {
                    return Err(err(here, "END inside a node"));
                }
                if at != block.len() {
                    return Err(err(here, "data after the END token"));
                }
                if counts.nodes == 0 {
                    return Err(err(here, "no root node"));
                }
                return Ok(counts);
            }
            _ => return Err(err(here, "unknown token")),
        }
    }
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}
