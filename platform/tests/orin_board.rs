//! The `orin-agx` table held against the devkit's real device tree
//! (`testdata/tegra234-p3737-0000+p3701-0000.dtb`, see `testdata/PROVENANCE.md`): every
//! pass-through region is a `reg` region of its node (translated through the parents'
//! `ranges`), every pass-through interrupt is an SPI of a pass-through node with the table's
//! trigger, and the emulated windows and INTx SPIs are free on the board.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Board, cells, number, parent};
use vmm_platform::{Access, GuestRange, MemAttrs, ORIN_AGX, Platform};

#[test]
fn every_pass_through_region_is_a_reg_region_of_its_node() {
    let board = Board::read();
    for p in ORIN_AGX.passthrough {
        assert!(
            board.nodes.contains_key(p.dt_path),
            "{}: {} is not in the board DTB",
            p.name,
            p.dt_path
        );
        let regions = board.regions(p.dt_path);
        assert!(
            regions.contains(&p.range),
            "{}: table {:#x}+{:#x}, board {} reg {:x?}",
            p.name,
            p.range.base.0,
            p.range.size,
            p.dt_path,
            regions
                .iter()
                .map(|r| (r.base.0, r.size))
                .collect::<Vec<_>>()
        );
        // And the node has no registers the guest would not get.
        for r in &regions {
            assert!(
                ORIN_AGX
                    .passthrough
                    .iter()
                    .any(|q| q.range.contains_range(r.base, r.size)),
                "{}: reg {:#x}+{:#x} is in no pass-through region",
                p.dt_path,
                r.base.0,
                r.size
            );
        }
    }
}

#[test]
fn every_pass_through_interrupt_is_an_spi_of_a_pass_through_node_with_its_trigger() {
    let board = Board::read();
    for irq in ORIN_AGX.passthrough_irqs {
        let owners: Vec<(&str, u32, Option<String>)> = ORIN_AGX
            .passthrough
            .iter()
            .flat_map(|p| {
                board
                    .spis(p.dt_path)
                    .into_iter()
                    .filter(|&(spi, _, _)| spi == irq.spi.0)
                    .map(|(_, flags, name)| (p.dt_path, flags, name))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            !owners.is_empty(),
            "{}: SPI {} is not an interrupt of any pass-through node",
            irq.name,
            irq.spi.0
        );
        for (node, flags, _) in &owners {
            assert_eq!(
                flags & 0xf,
                irq.trigger.dt_flags(),
                "{}: SPI {} on {node} has flags {flags:#x}, the table says {:?}",
                irq.name,
                irq.spi.0,
                irq.trigger
            );
        }
        // Where the name is `<region>-<interrupt-name>`, it names this very interrupt.
        for p in ORIN_AGX.passthrough {
            if let Some(iname) = irq
                .name
                .strip_prefix(p.name)
                .and_then(|r| r.strip_prefix('-'))
            {
                let named: Vec<u32> = board
                    .spis(p.dt_path)
                    .into_iter()
                    .filter(|(_, _, n)| n.as_deref() == Some(iname))
                    .map(|(spi, _, _)| spi)
                    .collect();
                assert_eq!(
                    named,
                    [irq.spi.0],
                    "{}: {} calls SPI {:?} {iname:?}",
                    irq.name,
                    p.dt_path,
                    named
                );
            }
        }
    }
}

fn emulated(p: &Platform) -> Vec<(&'static str, GuestRange)> {
    p.devices
        .iter()
        .flat_map(|d| d.windows().map(|w| (w.name, w.range)))
        .collect()
}

#[test]
fn the_emulated_windows_and_intx_spis_are_free_on_the_board() {
    let board = Board::read();
    let mut used = Vec::new();
    for path in board.nodes.keys() {
        for r in board.regions(path) {
            used.push((path.clone(), r));
        }
        // PCIe controllers' apertures.
        if board.prop(path, "device_type") == Some(b"pci\0") {
            let ranges = cells(board.prop(path, "ranges").unwrap());
            let pa = board.cell(parent(path).unwrap(), "#address-cells").unwrap() as usize;
            for e in ranges.chunks(3 + pa + 2) {
                let base = number(&e[3..3 + pa]);
                used.push((path.clone(), GuestRange::new(base, number(&e[3 + pa..]))));
            }
        }
    }
    for (name, w) in emulated(&ORIN_AGX) {
        for (path, r) in &used {
            assert!(
                !w.overlaps(r),
                "{name} {:#x}+{:#x} overlaps {path} {:#x}+{:#x}",
                w.base.0,
                w.size,
                r.base.0,
                r.size
            );
        }
    }
    let all_spis: Vec<u32> = board
        .nodes
        .keys()
        .flat_map(|p| board.spis(p).into_iter().map(|(s, _, _)| s))
        .collect();
    let spis: Vec<_> = ORIN_AGX.devices.iter().flat_map(|d| d.spis()).collect();
    assert_eq!(spis.len(), 4, "INTA..INTD");
    for (name, spi) in spis {
        assert!(
            !all_spis.contains(&spi.0),
            "{name}: SPI {} is used on the board",
            spi.0
        );
    }
    // The emulated GIC sits exactly where the board's is.
    let gic = "/bus@0/interrupt-controller@f400000";
    assert!(board.is_gic(gic));
    let regions = board.regions(gic);
    assert_eq!(regions[0], ORIN_AGX.gicd_range());
    assert!(regions[1].contains_range(ORIN_AGX.gicr_range().base, ORIN_AGX.gicr_range().size));
}

/// APB MISC (`/bus@0/misc@100000`): the guest reads the chip ID and straps there. Both of the
/// node's `reg` entries are pass-through regions, on 4 KiB boundaries (stage 2's granule; the
/// first is 0xf000, 15 pages, not 64 KiB), read-only; nothing else of the table is.
#[test]
fn apb_misc_passes_through_read_only_with_both_reg_entries() {
    let board = Board::read();
    let misc = "/bus@0/misc@100000";
    assert_eq!(board.strs(misc, "compatible"), ["nvidia,tegra234-misc"]);
    assert_eq!(board.strs(misc, "status"), ["okay"]);
    let regions = board.regions(misc);
    assert_eq!(
        regions,
        [
            GuestRange::new(0x0010_0000, 0xf000),
            GuestRange::new(0x0010_f000, 0x1000),
        ]
    );
    let table: Vec<_> = ORIN_AGX
        .passthrough
        .iter()
        .filter(|p| p.dt_path == misc)
        .collect();
    assert_eq!(
        table.iter().map(|p| p.range).collect::<Vec<_>>(),
        regions,
        "one table entry per reg entry, in order"
    );
    for p in &table {
        assert_eq!(p.access, Access::ReadOnly, "{}", p.name);
        assert_eq!(p.attrs, MemAttrs::DeviceNGnRE, "{}", p.name);
        assert_eq!(p.range.base.0 % 0x1000, 0, "{}", p.name);
        assert_eq!(p.range.size % 0x1000, 0, "{}", p.name);
    }
    for p in ORIN_AGX.passthrough.iter().filter(|p| p.dt_path != misc) {
        assert_eq!(p.access, Access::ReadWrite, "{}", p.name);
    }
    // No other node of the board has registers in those pages (the guest sees only MISC).
    for path in board.nodes.keys() {
        if path == misc {
            continue;
        }
        for r in board.regions(path) {
            for p in &table {
                assert!(
                    !p.range.overlaps(&r),
                    "{path} {:#x}+{:#x} shares a page with {}",
                    r.base.0,
                    r.size,
                    p.name
                );
            }
        }
    }
}

/// The reg-less nodes the table names exist on the board, have no registers, and refer only
/// to what the guest gets (besides the SMMU and interconnect references the guest DTB drops).
#[test]
fn every_board_node_is_a_regless_node_of_the_board() {
    let board = Board::read();
    let paths: Vec<&str> = ORIN_AGX.board_nodes.iter().map(|n| n.dt_path).collect();
    assert_eq!(paths, ["/bpmp", "/bpmp/i2c", "/serial"]);
    for n in ORIN_AGX.board_nodes {
        assert!(
            board.nodes.contains_key(n.dt_path),
            "{}: {} is not in the board DTB",
            n.name,
            n.dt_path
        );
        assert!(board.prop(n.dt_path, "reg").is_none(), "{}", n.dt_path);
    }
    assert_eq!(
        board.strs("/bpmp", "compatible"),
        ["nvidia,tegra234-bpmp", "nvidia,tegra186-bpmp"]
    );
    assert_eq!(
        board.strs("/bpmp/i2c", "compatible"),
        ["nvidia,tegra186-bpmp-i2c"]
    );
    assert_eq!(
        board.strs("/serial", "compatible"),
        ["nvidia,tegra234-tcu", "nvidia,tegra194-tcu"]
    );
    // The BPMP's mailbox and shared memory, and the TCU's mailboxes, are pass-through nodes.
    let passed = |path: &str| ORIN_AGX.passthrough.iter().any(|p| p.dt_path == path);
    let mboxes = board.cells("/bpmp", "mboxes");
    assert!(passed(&board.by_phandle(mboxes[0])));
    for ph in board.cells("/bpmp", "shmem") {
        assert!(passed(&board.by_phandle(ph)));
    }
    let tcu = board.cells("/serial", "mboxes");
    assert!(passed(&board.by_phandle(tcu[0])));
    assert!(passed(&board.by_phandle(tcu[3])));
    // The TCU is the guest's console.
    assert!(ORIN_AGX.stdout_path.starts_with("/serial:"));
}
