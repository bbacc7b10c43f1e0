//! An in-memory device tree and its flattened (DTB, version 17) form.
//!
//! Not `vm-fdt`: its writer refuses property names longer than 31 characters (the spec's
//! recommendation, which `dtc` and Linux do not enforce), and the board trees this crate copies
//! nodes from use longer ones: the Tegra234 PCIe controllers carry
//! `nvidia,aspm-l0s-entrance-latency-us`, the SDMMC controllers
//! `nvidia,pad-autocal-pull-up-offset-3v3-timeout`. A pass-through node must be copied with all
//! its properties, so the crate writes the blob itself (the format is four token types and two
//! tables); [`crate::verify`] and the tests (`dtc`, the `fdt` crate) read every blob back.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::Error;

/// A node of the tree being built.
#[derive(Clone, Debug, Default)]
pub(crate) struct ONode {
    pub name: String,
    pub props: Vec<(String, Vec<u8>)>,
    pub children: Vec<ONode>,
}

impl ONode {
    pub fn new(name: impl Into<String>) -> Self {
        ONode {
            name: name.into(),
            ..ONode::default()
        }
    }

    pub fn bytes(&mut self, name: &str, value: Vec<u8>) -> &mut Self {
        self.props.push((name.to_string(), value));
        self
    }

    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.bytes(name, Vec::new())
    }

    pub fn string(&mut self, name: &str, value: &str) -> &mut Self {
        self.strings(name, &[value])
    }

    pub fn strings(&mut self, name: &str, values: &[&str]) -> &mut Self {
        let mut v = Vec::new();
        for s in values {
            v.extend_from_slice(s.as_bytes());
            v.push(0);
        }
        self.bytes(name, v)
    }

    pub fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        self.bytes(name, crate::tree::to_bytes(cells))
    }

    pub fn u64(&mut self, name: &str, value: u64) -> &mut Self {
        self.bytes(name, value.to_be_bytes().to_vec())
    }

    pub fn child(&mut self, node: ONode) -> &mut Self {
        self.children.push(node);
        self
    }
}

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const RSVMAP_LEN: usize = 16;

struct Writer {
    structs: Vec<u8>,
    strings: Vec<u8>,
    offsets: BTreeMap<String, u32>,
}

fn too_large(at: &str) -> Error {
    Error::Write {
        at: at.to_string(),
        why: "larger than 4 GiB".into(),
    }
}

impl Writer {
    fn word(&mut self, w: u32) {
        self.structs.extend_from_slice(&w.to_be_bytes());
    }

    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }

    fn node(&mut self, n: &ONode, path: &str, depth: usize) -> Result<(), Error> {
        if depth > crate::blob::MAX_DEPTH {
            return Err(Error::Write {
                at: path.to_string(),
                why: "nodes nested deeper than 64".into(),
            });
        }
        let bad_name = if depth == 0 {
            !n.name.is_empty()
        } else {
            n.name.is_empty() || n.name.contains(['/', '\0'])
        };
        if bad_name {
            return Err(Error::Write {
                at: path.to_string(),
                why: "invalid node name".into(),
            });
        }
        self.word(1);
        self.structs.extend_from_slice(n.name.as_bytes());
        self.structs.push(0);
        self.pad();
        for (name, value) in &n.props {
            if name.is_empty() || name.contains('\0') {
                return Err(Error::Write {
                    at: path.to_string(),
                    why: "invalid property name".into(),
                });
            }
            let off = match self.offsets.get(name) {
                Some(&o) => o,
                None => {
                    let o = u32::try_from(self.strings.len()).map_err(|_| too_large(path))?;
                    self.strings.extend_from_slice(name.as_bytes());
                    self.strings.push(0);
                    self.offsets.insert(name.clone(), o);
                    o
                }
            };
            let len = u32::try_from(value.len()).map_err(|_| too_large(path))?;
            self.word(3);
            self.word(len);
            self.word(off);
            self.structs.extend_from_slice(value);
            self.pad();
        }
        for c in &n.children {
            let child_path = if depth == 0 {
                alloc::format!("/{}", c.name)
            } else {
                alloc::format!("{path}/{}", c.name)
            };
            self.node(c, &child_path, depth.saturating_add(1))?;
        }
        self.word(2);
        Ok(())
    }
}

/// The blob of the tree rooted at `root` (whose name must be empty).
pub(crate) fn flatten(root: &ONode) -> Result<Vec<u8>, Error> {
    let mut w = Writer {
        structs: Vec::new(),
        strings: Vec::new(),
        offsets: BTreeMap::new(),
    };
    w.node(root, "/", 0)?;
    w.word(9);
    let off_struct = HEADER_LEN + RSVMAP_LEN;
    let off_strings = off_struct
        .checked_add(w.structs.len())
        .ok_or_else(|| too_large("/"))?;
    let total = off_strings
        .checked_add(w.strings.len())
        .ok_or_else(|| too_large("/"))?;
    let u = |v: usize| u32::try_from(v).map_err(|_| too_large("/"));
    let header = [
        MAGIC,
        u(total)?,
        u(off_struct)?,
        u(off_strings)?,
        u(HEADER_LEN)?,
        17,
        16,
        0,
        u(w.strings.len())?,
        u(w.structs.len())?,
    ];
    let mut out = Vec::with_capacity(total);
    for h in header {
        out.extend_from_slice(&h.to_be_bytes());
    }
    out.extend_from_slice(&[0u8; RSVMAP_LEN]);
    out.extend_from_slice(&w.structs);
    out.extend_from_slice(&w.strings);
    Ok(out)
}
