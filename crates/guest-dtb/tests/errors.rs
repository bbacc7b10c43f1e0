//! Bad input: each gives its typed error naming the node or value, never a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{ORIN_DTB, QEMU_DTB, board};
use guest_dtb::{DtbError, Error, Initrd, build, build_with, verify};
use vmm_platform::{
    Access, GuestPhysAddr, GuestRange, MemAttrs, ORIN_AGX, Passthrough, PassthroughIrq, Platform,
    QEMU_VIRT, Spi, Trigger,
};

fn orin_with(p: &Platform, extra: &[&str]) -> Result<guest_dtb::Output, Error> {
    build_with(p, &board(ORIN_DTB), None, extra)
}

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// Offset of the property value `value` of the property named `name` (a PROP token whose
/// name offset is `name`'s), asserting it occurs exactly once.
fn find_prop(dtb: &[u8], name: &str, value: &[u8]) -> usize {
    let word = |i: usize| u32::from_be_bytes(dtb[i * 4..i * 4 + 4].try_into().unwrap());
    let (strings, size) = (word(3) as usize, word(8) as usize);
    let block = &dtb[strings..strings + size];
    let mut nameoff = None;
    let mut off = 0;
    for s in block.split(|&b| b == 0) {
        if s == name.as_bytes() {
            nameoff = Some(off as u32);
            break;
        }
        off += s.len() + 1;
    }
    let nameoff = nameoff.unwrap();
    let mut needle = Vec::new();
    needle.extend(be(3));
    needle.extend(be(value.len() as u32));
    needle.extend(be(nameoff));
    needle.extend(value);
    let hits: Vec<usize> = dtb
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i + 12)
        .collect();
    assert_eq!(hits.len(), 1, "{name} = {value:x?}");
    hits[0]
}

fn cells(c: &[u32]) -> Vec<u8> {
    c.iter().flat_map(|v| v.to_be_bytes()).collect()
}

// --- the table against the board -------------------------------------------------------------

static MISSING: [Passthrough; 1] = [Passthrough {
    name: "hsp-top0",
    dt_path: "/bus@0/hsp@3c00001",
    range: GuestRange::new(0x03c0_0000, 0x000a_0000),
    attrs: MemAttrs::DeviceNGnRE,
    access: Access::ReadWrite,
}];

#[test]
fn a_dt_path_missing_from_the_board() {
    let p = Platform {
        passthrough: &MISSING,
        passthrough_irqs: &[],
        ..ORIN_AGX
    };
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::MissingNode {
            path: "/bus@0/hsp@3c00001".into(),
            named_by: "pass-through region hsp-top0".into()
        }
    );
    assert!(e.to_string().contains("/bus@0/hsp@3c00001"), "{e}");
    let e = orin_with(&ORIN_AGX, &["/bpmp@0"]).unwrap_err();
    assert!(
        matches!(e, Error::MissingNode { ref path, .. } if path == "/bpmp@0"),
        "{e}"
    );
    let p = Platform {
        stdout_path: "/serial@c168000:115200n8",
        ..ORIN_AGX
    };
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::MissingNode {
            path: "/serial@c168000".into(),
            named_by: "stdout-path".into()
        }
    );
}

static SMALL_HSP: [Passthrough; 4] = [
    Passthrough {
        range: GuestRange::new(0x03c0_0000, 0x0009_0000),
        ..ORIN_AGX.passthrough[0]
    },
    ORIN_AGX.passthrough[1],
    ORIN_AGX.passthrough[2],
    ORIN_AGX.passthrough[3],
];
static MOVED_SRAM: [Passthrough; 4] = [
    ORIN_AGX.passthrough[0],
    ORIN_AGX.passthrough[1],
    Passthrough {
        range: GuestRange::new(0x4007_2000, 0x1000),
        ..ORIN_AGX.passthrough[2]
    },
    ORIN_AGX.passthrough[3],
];

#[test]
fn a_reg_that_disagrees_with_the_table() {
    let p = Platform {
        passthrough: &SMALL_HSP,
        ..ORIN_AGX
    };
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::RegMismatch {
            node: "/bus@0/hsp@3c00000".into(),
            region: "hsp-top0",
            table: GuestRange::new(0x03c0_0000, 0x9_0000),
            board: vec![GuestRange::new(0x03c0_0000, 0xa_0000)],
        }
    );
    // Translated through /sram@40000000's ranges: the board says 0x4007_0000.
    let p = Platform {
        passthrough: &MOVED_SRAM,
        ..ORIN_AGX
    };
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::RegMismatch {
            node: "/sram@40000000/sram@70000".into(),
            region: "sram-bpmp-tx",
            table: GuestRange::new(0x4007_2000, 0x1000),
            board: vec![GuestRange::new(0x4007_0000, 0x1000)],
        }
    );
    assert!(e.to_string().contains("0x40070000+0x1000"), "{e}");
}

#[test]
fn a_node_with_registers_outside_every_pass_through_region() {
    let e = orin_with(&ORIN_AGX, &["/bus@0/serial@3100000"]).unwrap_err();
    assert_eq!(
        e,
        Error::RegNotPassedThrough {
            node: "/bus@0/serial@3100000".into(),
            range: GuestRange::new(0x0310_0000, 0x1_0000),
        }
    );
}

static EDGE_DOORBELL: [PassthroughIrq; 3] = [
    PassthroughIrq {
        trigger: Trigger::Edge,
        ..ORIN_AGX.passthrough_irqs[0]
    },
    ORIN_AGX.passthrough_irqs[1],
    ORIN_AGX.passthrough_irqs[2],
];
static EXTRA_IRQ: [PassthroughIrq; 4] = [
    ORIN_AGX.passthrough_irqs[0],
    ORIN_AGX.passthrough_irqs[1],
    ORIN_AGX.passthrough_irqs[2],
    PassthroughIrq {
        name: "nobody",
        spi: Spi(200),
        trigger: Trigger::Level,
    },
];

#[test]
fn interrupts_that_disagree_with_the_table() {
    let p = Platform {
        passthrough_irqs: &EDGE_DOORBELL,
        ..ORIN_AGX
    };
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::IrqMismatch {
            node: "/bus@0/hsp@3c00000".into(),
            spi: 176,
            board_flags: 4,
            irq: "hsp-top0-doorbell",
            table: Trigger::Edge,
        }
    );
    let p = Platform {
        passthrough_irqs: &EXTRA_IRQ,
        ..ORIN_AGX
    };
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::IrqNotInGuest {
            irq: "nobody",
            spi: 200
        }
    );
}

#[test]
fn nodes_that_cannot_be_passed_through() {
    for (path, why) in [
        ("/cpus", "writes that node"),
        ("/bus@0/interrupt-controller@f400000", "GIC"),
        ("/bus@0", "GIC"),
        ("/chosen", "writes that node"),
    ] {
        let e = orin_with(&ORIN_AGX, &[path]).unwrap_err();
        assert!(
            matches!(e, Error::NotPassable { path: ref p, why: w } if p == path && w.contains(why)),
            "{path}: {e}"
        );
    }
}

// --- phandles ------------------------------------------------------------------------------

#[test]
fn a_dangling_phandle_on_the_board() {
    // /serial's mboxes = <&hsp_top0 1 0>, <&hsp_aon 1 0x80000001>: point the second at nothing.
    let mut dtb = board(ORIN_DTB);
    let at = find_prop(&dtb, "mboxes", &cells(&[0xf5, 1, 0, 0x113, 1, 0x8000_0001]));
    dtb[at + 12..at + 16].copy_from_slice(&be(0x7777));
    let e = build(&ORIN_AGX, &dtb, None).unwrap_err();
    assert_eq!(
        e,
        Error::DanglingPhandle {
            node: "/serial".into(),
            property: "mboxes".into(),
            phandle: 0x7777
        }
    );
}

static NO_AON: [Passthrough; 3] = [
    ORIN_AGX.passthrough[0],
    ORIN_AGX.passthrough[2],
    ORIN_AGX.passthrough[3],
];

#[test]
fn a_reference_to_a_node_the_guest_does_not_get() {
    // The TCU (stdout-path) transmits through HSP AON, which this table leaves out.
    let p = Platform {
        passthrough: &NO_AON,
        passthrough_irqs: &EDGE_DOORBELL[1..2],
        ..ORIN_AGX
    };
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::UnkeptReference {
            node: "/serial".into(),
            property: "mboxes".into(),
            target: "/bus@0/hsp@c150000".into(),
            phandle: 0x113
        }
    );
    assert!(
        e.to_string()
            .contains("/serial: mboxes refers to /bus@0/hsp@c150000"),
        "{e}"
    );
}

static UARTA: [Passthrough; 5] = [
    ORIN_AGX.passthrough[0],
    ORIN_AGX.passthrough[1],
    ORIN_AGX.passthrough[2],
    ORIN_AGX.passthrough[3],
    Passthrough {
        name: "uarta",
        dt_path: "/bus@0/serial@3100000",
        range: GuestRange::new(0x0310_0000, 0x1_0000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
];
static UARTA_IRQS: [PassthroughIrq; 4] = [
    ORIN_AGX.passthrough_irqs[0],
    ORIN_AGX.passthrough_irqs[1],
    ORIN_AGX.passthrough_irqs[2],
    PassthroughIrq {
        name: "uarta",
        spi: Spi(112),
        trigger: Trigger::Level,
    },
];

#[test]
fn a_clock_provider_the_guest_does_not_get_fails_unless_passed_through() {
    // The table without its BPMP node (the TCU only).
    let p = Platform {
        passthrough: &UARTA,
        passthrough_irqs: &UARTA_IRQS,
        board_nodes: &ORIN_AGX.board_nodes[2..],
        ..ORIN_AGX
    };
    assert_eq!(p.board_nodes[0].dt_path, "/serial");
    let e = orin_with(&p, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::UnkeptReference {
            node: "/bus@0/serial@3100000".into(),
            property: "clocks".into(),
            target: "/bpmp".into(),
            phandle: 2
        }
    );
    // With the BPMP in the guest, its clocks and resets resolve.
    let out = orin_with(&p, &["/bpmp"]).unwrap();
    verify(&out.dtb).unwrap();
}

#[test]
fn two_board_nodes_with_one_phandle() {
    // hsp@c150000 gets hsp@3c00000's phandle.
    let mut dtb = board(ORIN_DTB);
    let at = find_prop(&dtb, "phandle", &be(0x113));
    dtb[at..at + 4].copy_from_slice(&be(0xf5));
    let e = build(&ORIN_AGX, &dtb, None).unwrap_err();
    assert!(
        matches!(e, Error::DuplicatePhandle { phandle: 0xf5, ref first, ref second }
            if first == "/bus@0/hsp@3c00000" && second == "/bus@0/hsp@c150000"),
        "{e}"
    );
}

#[test]
fn verify_catches_a_dangling_phandle_in_a_guest_tree() {
    let mut dtb = build(&ORIN_AGX, &board(ORIN_DTB), None).unwrap();
    verify(&dtb).unwrap();
    let at = find_prop(&dtb, "mboxes", &cells(&[0xf5, 1, 0, 0x113, 1, 0x8000_0001]));
    dtb[at..at + 4].copy_from_slice(&be(0x4242));
    assert_eq!(
        verify(&dtb).unwrap_err(),
        Error::DanglingPhandle {
            node: "/serial".into(),
            property: "mboxes".into(),
            phandle: 0x4242
        }
    );
}

// --- initrd --------------------------------------------------------------------------------

#[test]
fn an_initrd_outside_its_load_region() {
    let p = &QEMU_VIRT;
    let q = board(QEMU_DTB);
    let too_big = Initrd::at_load_region(p, p.initrd.max_size + 1);
    assert!(matches!(
        build(p, &q, Some(too_big)),
        Err(Error::Initrd { .. })
    ));
    let empty = Initrd::at_load_region(p, 0);
    assert!(matches!(
        build(p, &q, Some(empty)),
        Err(Error::Initrd { .. })
    ));
    let below = Initrd {
        start: GuestPhysAddr(p.initrd.addr.0 - 0x1000),
        end: GuestPhysAddr(p.initrd.addr.0 + 0x1000),
    };
    assert!(matches!(
        build(p, &q, Some(below)),
        Err(Error::Initrd { .. })
    ));
    let full = Initrd::at_load_region(p, p.initrd.max_size);
    build(p, &q, Some(full)).unwrap();
}

// --- malformed blobs -----------------------------------------------------------------------

#[test]
fn every_truncation_of_both_boards_is_an_error() {
    for (name, p) in [(ORIN_DTB, &ORIN_AGX), (QEMU_DTB, &QEMU_VIRT)] {
        let dtb = board(name);
        // QEMU pads its blob to 1 MiB; every length up to the end of its strings and then a
        // sample of the padding.
        let lens: Vec<usize> = (0..dtb.len().min(0x1_c000))
            .chain((0x1_c000..dtb.len()).step_by(4093))
            .collect();
        for len in lens {
            let e = build(p, &dtb[..len], None).unwrap_err();
            let want = if len < 40 {
                Error::Malformed(DtbError::TooShort { len })
            } else {
                Error::Malformed(DtbError::Truncated {
                    total_size: dtb.len() as u32,
                    len,
                })
            };
            assert_eq!(e, want, "{name} cut at {len}");
        }
    }
}

#[test]
fn broken_headers_and_structure_are_errors() {
    let good = board(ORIN_DTB);
    let set = |word: usize, v: u32| {
        let mut d = good.clone();
        d[word * 4..word * 4 + 4].copy_from_slice(&be(v));
        build(&ORIN_AGX, &d, None).unwrap_err()
    };
    assert_eq!(
        set(0, 0xfeed_d00d),
        Error::Malformed(DtbError::BadMagic { found: 0xfeed_d00d })
    );
    assert!(matches!(
        set(2, 0xffff_fff0),
        Error::Malformed(DtbError::Block {
            block: "structure",
            ..
        })
    ));
    assert!(matches!(
        set(3, u32::MAX),
        Error::Malformed(DtbError::Block {
            block: "strings",
            ..
        })
    ));
    assert!(matches!(
        set(8, u32::MAX),
        Error::Malformed(DtbError::Block {
            block: "strings",
            ..
        })
    ));
    assert!(matches!(
        set(9, 3),
        Error::Malformed(DtbError::Structure { .. })
    ));
    assert!(matches!(
        set(4, 0x000f_fff8),
        Error::Malformed(DtbError::Block { .. })
    ));
    assert!(matches!(
        set(5, 1),
        Error::Malformed(DtbError::Version { .. })
    ));
    // The END token overwritten.
    let mut d = good.clone();
    let word = |d: &[u8], i: usize| u32::from_be_bytes(d[i * 4..i * 4 + 4].try_into().unwrap());
    let end = (word(&d, 2) + word(&d, 9)) as usize - 4;
    assert_eq!(&d[end..end + 4], &be(9));
    d[end..end + 4].copy_from_slice(&be(7));
    assert!(matches!(
        build(&ORIN_AGX, &d, None).unwrap_err(),
        Error::Malformed(DtbError::Structure {
            what: "unknown token",
            ..
        })
    ));
    // A property name offset past the strings block.
    let mut d = good.clone();
    let first_prop = word(&d, 2) as usize + 8; // after BEGIN_NODE and the root's empty name
    assert_eq!(&d[first_prop..first_prop + 4], &be(3));
    d[first_prop + 8..first_prop + 12].copy_from_slice(&be(0x00ff_ffff));
    assert!(matches!(
        build(&ORIN_AGX, &d, None).unwrap_err(),
        Error::Malformed(DtbError::Structure { .. })
    ));
}

/// A small deterministic generator for the fuzz loops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn corrupted_blobs_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (name, p) in [(ORIN_DTB, &ORIN_AGX), (QEMU_DTB, &QEMU_VIRT)] {
        let good = board(name);
        // The interesting bytes: the header, and the structure and strings blocks.
        let word = |i: usize| u32::from_be_bytes(good[i * 4..i * 4 + 4].try_into().unwrap());
        let end = (word(3) + word(8)) as usize;
        let (mut ok, mut err) = (0, 0);
        for round in 0..400 {
            let mut d = good.clone();
            for _ in 0..1 + rng.below(4) {
                let at = if round % 4 == 0 {
                    rng.below(40)
                } else {
                    rng.below(end)
                };
                match rng.below(3) {
                    0 => d[at] ^= 1 << rng.below(8),
                    1 => d[at] = rng.next() as u8,
                    _ => {
                        // A plausible token or small number.
                        let at = at & !3;
                        let v = [1u32, 2, 3, 4, 9, 0, 0xffff_ffff][rng.below(7)];
                        if at + 4 <= d.len() {
                            d[at..at + 4].copy_from_slice(&be(v));
                        }
                    }
                }
            }
            match build_with(p, &d, None, &[]) {
                Ok(out) => {
                    verify(&out.dtb).unwrap();
                    ok += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
            }
        }
        assert!(err > 0 && ok > 0, "{name}: {ok} built, {err} refused");
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..2000 {
        let len = rng.below(512);
        let mut d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half of them with a believable header.
        if len >= 40 && rng.below(2) == 0 {
            d[..4].copy_from_slice(&be(0xd00d_feed));
            d[4..8].copy_from_slice(&be(len as u32));
            for w in [2usize, 3, 4, 8, 9] {
                let v = rng.below(len) as u32;
                d[w * 4..w * 4 + 4].copy_from_slice(&be(v));
            }
            d[20..24].copy_from_slice(&be(17));
            d[24..28].copy_from_slice(&be(16));
        }
        assert!(build(&QEMU_VIRT, &d, None).is_err());
        let _ = verify(&d);
    }
}
