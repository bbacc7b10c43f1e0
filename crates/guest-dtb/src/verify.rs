//! The re-check every built tree goes through: well-formed, unique phandles, and every
//! reference the crate knows of resolving to exactly one node with the cells it needs.

use alloc::format;
use alloc::string::ToString;

use crate::Error;
use crate::refs::{self, RefError};
use crate::tree::{self, Tree};

/// What [`verify`] looked at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Verified {
    /// Nodes, the root included.
    pub nodes: usize,
    /// Nodes with a phandle.
    pub phandles: usize,
    /// Phandle references resolved (interrupt parents, specifiers, map entries, aliases and
    /// `stdout-path` included).
    pub references: usize,
}

/// Checks `dtb`: a well-formed blob; no two nodes share a phandle; every phandle in a
/// property this crate knows to hold phandles (`interrupt-parent`, `interrupts-extended`,
/// `interrupt-map`, `clocks`, `mboxes`, `shmem`, ... see the crate docs) resolves to one node
/// with the `#*-cells` its entry needs; every node with `interrupts` has an interrupt parent
/// whose `#interrupt-cells` divides them; every alias and `/chosen/stdout-path` names a node.
pub fn verify(dtb: &[u8]) -> Result<Verified, Error> {
    let t = Tree::read(dtb)?;
    let mut references = 0usize;
    let mut phandles = 0usize;
    for i in 0..t.nodes.len() {
        let props = t.node(i).map(|n| n.props.clone()).unwrap_or_default();
        if t.has(i, "phandle") || t.has(i, "linux,phandle") {
            phandles = phandles.saturating_add(1);
        }
        for (name, value) in props {
            let err = |e: RefError| match e {
                RefError::Dangling(phandle) => Error::DanglingPhandle {
                    node: t.path(i),
                    property: name.to_string(),
                    phandle,
                },
                RefError::MissingCells { target, cells } => Error::BadProperty {
                    node: t.path(target),
                    property: cells.to_string(),
                    why: format!("missing, and {} {name} needs it", t.path(i)),
                },
                RefError::Shape(why) => Error::BadProperty {
                    node: t.path(i),
                    property: name.to_string(),
                    why,
                },
            };
            if let Some((layout, _)) = refs::classify(name) {
                let (_, rs) = refs::walk(&t, layout, value).map_err(err)?;
                references = references.saturating_add(rs.len());
            } else if name == "interrupt-map" {
                references =
                    references.saturating_add(refs::interrupt_map(&t, i).map_err(err)?.len());
            } else if name == "interrupts" {
                let parent = match t.interrupt_parent(i) {
                    Ok(Some(p)) => p,
                    Ok(None) => {
                        return Err(Error::BadInterrupt {
                            node: t.path(i),
                            property: name.into(),
                            why: "no interrupt parent".into(),
                        });
                    }
                    Err((n, phandle)) => {
                        return Err(Error::DanglingPhandle {
                            node: t.path(n),
                            property: "interrupt-parent".into(),
                            phandle,
                        });
                    }
                };
                let ic = t.cell(parent, "#interrupt-cells").unwrap_or(0) as usize;
                let n = tree::cells(value).map(|c| c.len());
                if ic == 0 || n.is_none_or(|n| !n.is_multiple_of(ic)) {
                    return Err(Error::BadInterrupt {
                        node: t.path(i),
                        property: name.into(),
                        why: format!("not a multiple of #interrupt-cells {ic}"),
                    });
                }
                references = references.saturating_add(1);
            }
        }
    }
    fn path_of(value: &[u8]) -> Option<&str> {
        tree::strings(value)
            .filter(|v| v.len() == 1)
            .and_then(|v| v.first().copied())
    }
    if let Some(a) = t.find("/aliases") {
        for (name, value) in t.node(a).map(|n| n.props.clone()).unwrap_or_default() {
            if name == "phandle" || name == "linux,phandle" {
                continue;
            }
            if path_of(value).and_then(|p| t.find(p)).is_none() {
                return Err(Error::BadProperty {
                    node: "/aliases".into(),
                    property: name.into(),
                    why: "names no node".into(),
                });
            }
            references = references.saturating_add(1);
        }
    }
    if let Some(sp) = t.find("/chosen").and_then(|c| t.prop(c, "stdout-path")) {
        let target = path_of(sp).and_then(|s| {
            let path = s.split(':').next().unwrap_or_default();
            if path.starts_with('/') {
                t.find(path)
            } else {
                t.find("/aliases")
                    .and_then(|a| t.prop(a, path))
                    .and_then(path_of)
                    .and_then(|p| t.find(p))
            }
        });
        if target.is_none() {
            return Err(Error::BadProperty {
                node: "/chosen".into(),
                property: "stdout-path".into(),
                why: "names no node".into(),
            });
        }
        references = references.saturating_add(1);
    }
    Ok(Verified {
        nodes: t.nodes.len(),
        phandles,
        references,
    })
}
