//! The Jetson AGX Orin guest tree, from the devkit's DTB (`platform/testdata`, Linux 6.1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Dt, ORIN_DTB, board, dtc, dtc_clean, without_node};
use guest_dtb::{Error, Initrd, Output, build_with, verify};
use vmm_platform::{
    Access, GuestRange, MemAttrs, ORIN_AGX, Passthrough, PassthroughIrq, Platform, Spi, Trigger,
};

const GIC: &str = "/intc@f400000";

fn orin(extra: &[&str]) -> (Output, Dt) {
    let p = &ORIN_AGX;
    let out = build_with(
        p,
        &board(ORIN_DTB),
        Some(Initrd::at_load_region(p, 0x80_0000)),
        extra,
    )
    .unwrap();
    let dt = Dt::read(&out.dtb);
    (out, dt)
}

const EMULATED: [&str; 13] = [
    "/",
    "/aliases",
    "/chosen",
    "/cpus",
    "/cpus/cpu@0",
    "/cpus/cpu@1",
    "/cpus/cpu@2",
    "/cpus/cpu@3",
    GIC,
    "/memory@90000000",
    "/pcie@70000000",
    "/psci",
    "/timer",
];

const FROM_TABLE: [&str; 10] = [
    "/bus@0",
    "/bus@0/misc@100000",
    "/bus@0/hsp@3c00000",
    "/bus@0/hsp@c150000",
    "/sram@40000000",
    "/sram@40000000/sram@70000",
    "/sram@40000000/sram@71000",
    "/bpmp",
    "/bpmp/i2c",
    "/serial",
];

#[test]
fn dtc_decompiles_it_without_warnings() {
    let (out, _) = orin(&[]);
    dtc_clean(&out.dtb, "orin-guest");
    // Naming a node the table names already changes nothing.
    let (again, _) = orin(&["/bpmp"]);
    assert_eq!(again.dtb, out.dtb);
}

#[test]
fn it_holds_the_emulated_nodes_and_exactly_what_the_table_names() {
    let (out, dt) = orin(&[]);
    let mut want: Vec<&str> = EMULATED.iter().chain(&FROM_TABLE).copied().collect();
    want.sort();
    let got: Vec<&str> = dt.nodes.keys().map(String::as_str).collect();
    assert_eq!(got, want);
    assert_eq!(
        out.nodes,
        [
            "/bus@0/hsp@3c00000",
            "/bus@0/hsp@c150000",
            "/sram@40000000/sram@70000",
            "/sram@40000000/sram@71000",
            "/bus@0/misc@100000",
            "/bpmp",
            "/bpmp/i2c",
            "/serial",
        ]
    );
}

/// The reg-less nodes come from the table (`board_nodes`), not from `--node`: the default
/// guest tree has the BPMP (minus its SMMU and interconnect references) and the TCU.
#[test]
fn the_default_tree_has_the_bpmp_and_the_tcu() {
    let (out, dt) = orin(&[]);
    let names: Vec<&str> = ORIN_AGX.board_nodes.iter().map(|n| n.dt_path).collect();
    assert_eq!(names, ["/bpmp", "/bpmp/i2c", "/serial"]);
    assert_eq!(
        dt.strs("/bpmp", "compatible"),
        ["nvidia,tegra234-bpmp", "nvidia,tegra186-bpmp"]
    );
    for cells in ["#clock-cells", "#reset-cells", "#power-domain-cells"] {
        assert_eq!(dt.u32("/bpmp", cells), 1, "{cells}");
    }
    assert_eq!(
        dt.strs("/bpmp/i2c", "compatible"),
        ["nvidia,tegra186-bpmp-i2c"]
    );
    assert_eq!(
        dt.strs("/serial", "compatible"),
        ["nvidia,tegra234-tcu", "nvidia,tegra194-tcu"]
    );
    for gone in ["iommus", "interconnects", "interconnect-names"] {
        assert!(!dt.has("/bpmp", gone), "{gone}");
    }
    for prop in ["iommus", "interconnects"] {
        let note = format!("/bpmp: {prop} left out");
        assert!(
            out.notes.iter().any(|n| n.starts_with(&note)),
            "{note}: {:#?}",
            out.notes
        );
    }
    if let Some((dts, stderr)) = dtc(&out.dtb, "orin-guest-default") {
        assert!(stderr.trim().is_empty(), "dtc warns:\n{stderr}");
        assert!(dts.contains("\tbpmp {"), "{dts}");
        assert!(dts.contains("\tserial {"), "{dts}");
    }
}

/// A node the table names that the board tree lacks stops the build, naming the node and
/// who named it; nothing is silently left out.
#[test]
fn a_board_without_a_named_node_is_an_error() {
    for (name, path, by) in [
        ("bpmp", "/bpmp", "bpmp"),
        ("i2c", "/bpmp/i2c", "bpmp-i2c"),
        ("serial", "/serial", "tcu"),
    ] {
        let bad = without_node(&board(ORIN_DTB), name);
        assert!(!Dt::read(&bad).has_node(path));
        let e = build_with(&ORIN_AGX, &bad, None, &[]).unwrap_err();
        assert_eq!(
            e,
            Error::MissingNode {
                path: path.into(),
                named_by: format!("board node {by} of the platform table"),
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "{path} (named by board node {by} of the platform table) is not in the board DTB"
            )
        );
    }
    // The same board tree with the node is fine (the NOP blanking is what removes it).
    let whole = without_node(&board(ORIN_DTB), "sound");
    build_with(&ORIN_AGX, &whole, None, &[]).unwrap();
}

/// PITFALLS.md #6: the guest must not switch off the clocks and power domains it did not
/// claim (UARTA's among them, seL4's console).
#[test]
fn bootargs_keep_unused_clocks_and_power_domains_on() {
    let (_, dt) = orin(&[]);
    let bootargs = dt.str("/chosen", "bootargs");
    let words: Vec<&str> = bootargs.split(' ').collect();
    for w in ["clk_ignore_unused", "pd_ignore_unused"] {
        assert!(words.contains(&w), "{w} missing from {bootargs:?}");
    }
    assert_eq!(bootargs, ORIN_AGX.bootargs);
}

/// APB MISC: both `reg` entries, read-only in the table, the node copied as the board has it.
#[test]
fn apb_misc_is_in_the_guest_read_only() {
    let host = Dt::read(&board(ORIN_DTB));
    let (_, dt) = orin(&[]);
    let misc = "/bus@0/misc@100000";
    assert_eq!(dt.props(misc), host.props(misc));
    assert_eq!(dt.strs(misc, "compatible"), ["nvidia,tegra234-misc"]);
    assert_eq!(
        dt.cells(misc, "reg"),
        [0x10_0000, 0xf000, 0x10_f000, 0x1000]
    );
    let regions: Vec<_> = ORIN_AGX
        .passthrough
        .iter()
        .filter(|p| p.dt_path == misc)
        .map(|p| (p.range, p.access))
        .collect();
    assert_eq!(
        regions,
        [
            (GuestRange::new(0x10_0000, 0xf000), Access::ReadOnly),
            (GuestRange::new(0x10_f000, 0x1000), Access::ReadOnly),
        ]
    );
}

/// Copied nodes carry the board's properties byte for byte, except the interrupts the table
/// does not pass through (HSP) and the SMMU / interconnect references (BPMP).
#[test]
fn copied_nodes_keep_the_boards_properties() {
    let host = Dt::read(&board(ORIN_DTB));
    let (_, dt) = orin(&[]);
    for path in FROM_TABLE {
        let changed: &[&str] = match path {
            "/bus@0/hsp@3c00000" | "/bus@0/hsp@c150000" => &["interrupts", "interrupt-names"],
            "/bpmp" => &["iommus", "interconnects", "interconnect-names"],
            _ => &[],
        };
        let board: Vec<_> = host
            .props(path)
            .iter()
            .filter(|(n, _)| !changed.contains(&n.as_str()))
            .collect();
        let guest: Vec<_> = dt
            .props(path)
            .iter()
            .filter(|(n, _)| !changed.contains(&n.as_str()))
            .collect();
        assert_eq!(guest, board, "{path}");
    }
    // The parents the paths need: cells and ranges of /bus@0 and /sram@40000000.
    for (bus, ac, sc) in [("/bus@0", 1, 1), ("/sram@40000000", 1, 1)] {
        assert_eq!(dt.u32(bus, "#address-cells"), ac);
        assert_eq!(dt.u32(bus, "#size-cells"), sc);
        assert_eq!(dt.cells(bus, "ranges"), host.cells(bus, "ranges"));
    }
    assert_eq!(
        dt.strs("/sram@40000000", "compatible"),
        ["nvidia,tegra234-sysram", "mmio-sram"]
    );
    assert!(dt.has("/sram@40000000", "no-memory-wc"));
    // Only the two pool children of SYSRAM.
    assert_eq!(
        dt.children("/sram@40000000"),
        ["/sram@40000000/sram@70000", "/sram@40000000/sram@71000"]
    );
    assert!(host.children("/bus@0").len() > 50);
    assert_eq!(
        dt.children("/bus@0"),
        [
            "/bus@0/hsp@3c00000",
            "/bus@0/hsp@c150000",
            "/bus@0/misc@100000"
        ]
    );
}

#[test]
fn hsp_interrupts_are_the_three_passed_through_at_the_emulated_gic() {
    let (out, dt) = orin(&[]);
    let top0 = "/bus@0/hsp@3c00000";
    let aon = "/bus@0/hsp@c150000";
    assert_eq!(dt.cells(top0, "interrupts"), [0, 176, 4, 0, 120, 4]);
    assert_eq!(dt.strs(top0, "interrupt-names"), ["doorbell", "shared0"]);
    assert_eq!(dt.cells(aon, "interrupts"), [0, 133, 4]);
    assert_eq!(dt.strs(aon, "interrupt-names"), ["shared1"]);
    for node in [top0, aon] {
        assert_eq!(dt.interrupt_parent(node), GIC, "{node}");
    }
    // Every GIC_SPI cell in the guest is a pass-through interrupt with the table's trigger.
    let mut spis = Vec::new();
    for node in [top0, aon] {
        for spec in dt.cells(node, "interrupts").chunks(3) {
            let irq = ORIN_AGX
                .passthrough_irqs
                .iter()
                .find(|q| q.spi.0 == spec[1])
                .unwrap();
            assert_eq!(spec[0], 0);
            assert_eq!(spec[2], irq.trigger.dt_flags());
            spis.push(spec[1]);
        }
    }
    spis.sort();
    let mut table: Vec<u32> = ORIN_AGX.passthrough_irqs.iter().map(|q| q.spi.0).collect();
    table.sort();
    assert_eq!(spis, table);
    // What was left out is said.
    let left_out: Vec<&String> = out
        .notes
        .iter()
        .filter(|n| n.contains(": SPI ") && n.contains("left out"))
        .collect();
    assert_eq!(left_out.len(), 7 + 3, "{left_out:#?}");
}

#[test]
fn pass_through_regs_are_the_tables_regions() {
    let (_, dt) = orin(&[]);
    for e in ORIN_AGX.passthrough {
        let reg = dt.cells(e.dt_path, "reg");
        // Both parents map their children 1:1 from 0 (bus@0) or from 0x4000_0000 (SYSRAM).
        let base = if e.dt_path.starts_with("/sram@40000000/") {
            0x4000_0000
        } else {
            0
        };
        let regions: Vec<(u64, u64)> = reg
            .chunks(2)
            .map(|r| (base + u64::from(r[0]), u64::from(r[1])))
            .collect();
        assert!(
            regions.contains(&(e.range.base.0, e.range.size)),
            "{}: {regions:x?}",
            e.name
        );
    }
}

#[test]
fn bpmp_and_tcu_references_resolve_to_the_copied_nodes() {
    let host = Dt::read(&board(ORIN_DTB));
    let (_, dt) = orin(&[]);
    let mboxes = dt.cells("/bpmp", "mboxes");
    assert_eq!(dt.resolve(mboxes[0], "bpmp mboxes"), "/bus@0/hsp@3c00000");
    let shmem = dt.cells("/bpmp", "shmem");
    assert_eq!(
        shmem
            .iter()
            .map(|&p| dt.resolve(p, "bpmp shmem"))
            .collect::<Vec<_>>(),
        ["/sram@40000000/sram@70000", "/sram@40000000/sram@71000"]
    );
    for gone in ["iommus", "interconnects", "interconnect-names"] {
        assert!(host.has("/bpmp", gone));
        assert!(!dt.has("/bpmp", gone), "{gone}");
    }
    let tcu = dt.cells("/serial", "mboxes");
    assert_eq!(dt.resolve(tcu[0], "tcu rx"), "/bus@0/hsp@3c00000");
    assert_eq!(dt.resolve(tcu[3], "tcu tx"), "/bus@0/hsp@c150000");
    // Phandles are the board's.
    for path in FROM_TABLE {
        assert_eq!(
            dt.prop(path, "phandle"),
            host.prop(path, "phandle"),
            "{path}"
        );
    }
    assert_eq!(dt.str("/chosen", "stdout-path"), ORIN_AGX.stdout_path);
    assert_eq!(dt.str("/aliases", "serial0"), "/serial");
}

#[test]
fn every_phandle_resolves_to_exactly_one_node() {
    let host = Dt::read(&board(ORIN_DTB));
    let (out, dt) = orin(&[]);
    let followed = dt.check_references();
    assert!(followed >= 16 + 3, "{followed}");
    verify(&out.dtb).unwrap();
    // The emulated GIC took a phandle no board node has, and no copied node points at the
    // board's GIC any more.
    let gic = dt.u32(GIC, "phandle");
    assert!(!host.phandles().contains_key(&gic));
    let board_gic = host.u32("/bus@0/interrupt-controller@f400000", "phandle");
    assert!(!dt.phandles().contains_key(&board_gic));
    assert_eq!(dt.u32("/", "interrupt-parent"), gic);
}

#[test]
fn gic_pci_and_memory_follow_the_table() {
    let p = &ORIN_AGX;
    let (_, dt) = orin(&[]);
    assert_eq!(
        dt.cells(GIC, "reg"),
        [0, 0x0f40_0000, 0, 0x1_0000, 0, 0x0f44_0000, 0, 0x8_0000]
    );
    assert_eq!(
        dt.cells("/memory@90000000", "reg"),
        [0, 0x9000_0000, 0, 0x1000_0000]
    );
    let pci = "/pcie@70000000";
    assert_eq!(dt.cells(pci, "reg"), [0, 0x7000_0000, 0, 0x10_0000]);
    assert_eq!(
        dt.cells(pci, "ranges"),
        [0x0200_0000, 0, 0x6000_0000, 0, 0x6000_0000, 0, 0x1000_0000]
    );
    // PITFALLS.md #1: every slot and pin decodes to SPIs 416..419 through the map, never
    // through the 8-bit interrupt_line.
    for slot in 0..32u32 {
        for pin in 1..=4u32 {
            let (parent, spec) = dt.pci_intx(pci, slot, pin);
            assert_eq!(parent, GIC);
            let line = virtio_pci::PciBus::intx_line(slot as u8, pin as u8);
            assert_eq!(line, ((slot + pin - 1) % 4) as usize);
            assert_eq!(
                spec,
                [0, p.pci().unwrap().layout.intx[line].0, 4],
                "slot {slot} pin {pin}"
            );
            assert!(spec[1] > 255);
        }
    }
    assert_eq!(dt.u64("/chosen", "linux,initrd-start"), 0x9c00_0000);
    assert_eq!(dt.u64("/chosen", "linux,initrd-end"), 0x9c80_0000);
    assert!(!dt.has_node("/pl011@9000000"));
    assert_eq!(dt.children("/cpus").len(), usize::from(p.vcpus));
    for n in 0..p.vcpus {
        let cpu = format!("/cpus/cpu@{n:x}");
        assert_eq!(u64::from(dt.u32(&cpu, "reg")), Platform::mpidr(n));
        assert_eq!(dt.str(&cpu, "enable-method"), "psci");
    }
    assert_eq!(dt.str("/psci", "method"), "smc");
    assert_eq!(
        dt.cells("/timer", "interrupts"),
        [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
    );
    assert_eq!(dt.str("/chosen", "bootargs"), p.bootargs);
}

static MMC_PASSTHROUGH: [Passthrough; 7] = [
    ORIN_AGX.passthrough[0],
    ORIN_AGX.passthrough[1],
    ORIN_AGX.passthrough[2],
    ORIN_AGX.passthrough[3],
    ORIN_AGX.passthrough[4],
    ORIN_AGX.passthrough[5],
    Passthrough {
        name: "sdmmc4",
        dt_path: "/bus@0/mmc@3460000",
        range: GuestRange::new(0x0346_0000, 0x2_0000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
];
static MMC_IRQS: [PassthroughIrq; 4] = [
    ORIN_AGX.passthrough_irqs[0],
    ORIN_AGX.passthrough_irqs[1],
    ORIN_AGX.passthrough_irqs[2],
    PassthroughIrq {
        name: "sdmmc4",
        spi: Spi(65),
        trigger: Trigger::Level,
    },
];
static WITH_MMC: Platform = Platform {
    passthrough: &MMC_PASSTHROUGH,
    passthrough_irqs: &MMC_IRQS,
    ..ORIN_AGX
};

/// A board node with clocks and resets from the BPMP and property names longer than 31
/// characters is copied whole (the BPMP is in the guest).
#[test]
fn a_node_with_bpmp_clocks_and_long_property_names_copies_whole() {
    let host = Dt::read(&board(ORIN_DTB));
    let out = build_with(&WITH_MMC, &board(ORIN_DTB), None, &[]).unwrap();
    dtc_clean(&out.dtb, "orin-guest-mmc");
    let dt = Dt::read(&out.dtb);
    let mmc = "/bus@0/mmc@3460000";
    let long = "nvidia,pad-autocal-pull-up-offset-3v3-timeout";
    assert!(long.len() > 31);
    assert_eq!(dt.prop(mmc, long), host.prop(mmc, long));
    assert_eq!(
        dt.resolve(dt.cells(mmc, "clocks")[0], "mmc clocks"),
        "/bpmp"
    );
    assert_eq!(
        dt.resolve(dt.cells(mmc, "resets")[0], "mmc resets"),
        "/bpmp"
    );
    assert_eq!(dt.cells(mmc, "interrupts"), [0, 65, 4]);
    assert!(!dt.has(mmc, "iommus") && !dt.has(mmc, "interconnects"));
    dt.check_references();
}
