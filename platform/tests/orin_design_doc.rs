//! The design document's Orin numbers that the `orin-agx` table does not take, each as a test:
//! the table's value, the document's value, and why (the full reasons are next to the values in
//! `src/orin_agx.rs`). A test fails when the table drifts back to the document or away from the
//! board; `tests/orin_board.rs` holds the table against the board's device tree itself.
//!
//! The document is `shared/seed/orin-agx-port-design.md` ("Porting vm-image-minimal to NVIDIA
//! Orin AGX"); its numbers come from `devices.camkes` and the `orinagx.dts` excerpts. Where a
//! document value is a device-tree value the guest gets from the board (not from the table),
//! the test holds the document against the board's DTB instead.

mod common;

use common::Board;
use vmm_platform::*;

fn passthrough(name: &str) -> &'static Passthrough {
    ORIN_AGX
        .passthrough
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no pass-through region {name}"))
}

fn passes_through(addr: u64) -> Option<&'static Passthrough> {
    ORIN_AGX
        .passthrough
        .iter()
        .find(|p| p.range.contains_range(GuestPhysAddr(addr), 1))
}

fn irq_spis() -> Vec<u32> {
    ORIN_AGX.passthrough_irqs.iter().map(|i| i.spi.0).collect()
}

/// Document: `VM_INITRD_ADDR 0x9D000000` with `VM_INITRD_MAX_SIZE 0x2000000` and
/// `VM_DTB_ADDR 0x9E000000`: the initrd would overlap the DTB.
#[test]
fn initrd_moves_below_the_dtb() {
    const DOC_INITRD: u64 = 0x9d00_0000;
    const DOC_INITRD_MAX: u64 = 0x0200_0000;
    const DOC_DTB: u64 = 0x9e00_0000;
    const {
        assert!(
            DOC_INITRD + DOC_INITRD_MAX > DOC_DTB,
            "the document's initrd overlaps its DTB"
        )
    };
    assert_eq!(
        ORIN_AGX.initrd.addr.0, 0x9c00_0000,
        "document: {DOC_INITRD:#x}"
    );
    assert_eq!(ORIN_AGX.initrd.max_size, DOC_INITRD_MAX);
    assert_eq!(
        ORIN_AGX.dtb.addr.0, DOC_DTB,
        "the DTB stays where the document put it"
    );
    const { assert!(ORIN_AGX.initrd.addr.0 + ORIN_AGX.initrd.max_size <= ORIN_AGX.dtb.addr.0) };
}

/// Document: `"linux_stdout" : "/serial@c168000"` and `{"path": "/serial@c168000"}`. The
/// board's TCU node is `/serial` with no `reg`; 0x0c168000 is HSP AON's shared mailbox 1.
#[test]
fn tcu_is_slash_serial_and_its_mailbox_is_inside_hsp_aon() {
    const DOC_TCU_PATH: &str = "/serial@c168000";
    const DOC_TCU_ADDR: u64 = 0x0c16_8000;
    assert_eq!(
        ORIN_AGX.stdout_path, "/serial:115200n8",
        "document: {DOC_TCU_PATH}"
    );
    assert!(!ORIN_AGX.stdout_path.starts_with(DOC_TCU_PATH));
    // The address itself is kept: it is the earlycon's, and it is HSP AON + 64 KiB + 1 * 32 KiB.
    let aon = passthrough("hsp-aon");
    assert_eq!(DOC_TCU_ADDR, aon.range.base.0 + 0x1_0000 + 0x8000);
    assert_eq!(
        passes_through(DOC_TCU_ADDR).map(|p| p.name),
        Some("hsp-aon")
    );
    assert!(
        ORIN_AGX
            .bootargs
            .contains("earlycon=tegra_comb_uart,mmio32,0x0c168000"),
        "{}",
        ORIN_AGX.bootargs
    );
    assert!(ORIN_AGX.bootargs.contains("console=ttyTCU0,115200"));
}

/// Document: `{"path": "/tegra-hsp@3c00000"}` (and `hsp_top0: tegra-hsp@3c00000` at the root).
/// The board: `/bus@0/hsp@3c00000`. Address and size agree with the document.
#[test]
fn hsp_top0_path_is_under_bus0() {
    const DOC_PATH: &str = "/tegra-hsp@3c00000";
    let p = passthrough("hsp-top0");
    assert_eq!(p.dt_path, "/bus@0/hsp@3c00000", "document: {DOC_PATH}");
    assert_eq!(
        p.range,
        GuestRange::new(0x03c0_0000, 0xa_0000),
        "document agrees"
    );
    assert_eq!(p.attrs, MemAttrs::DeviceNGnRE);
}

/// Document: `{"path": "/tegra-hsp@c150000"}`. The board: `/bus@0/hsp@c150000`.
#[test]
fn hsp_aon_path_is_under_bus0() {
    const DOC_PATH: &str = "/tegra-hsp@c150000";
    let p = passthrough("hsp-aon");
    assert_eq!(p.dt_path, "/bus@0/hsp@c150000", "document: {DOC_PATH}");
    assert_eq!(
        p.range,
        GuestRange::new(0x0c15_0000, 0x9_0000),
        "document agrees"
    );
    assert_eq!(p.attrs, MemAttrs::DeviceNGnRE);
}

/// Document: SRAM "0x40000000", `reg = <0x0 0x40000000 0x0 0x80000>`, the whole node passed
/// through (`{"path": "/sram@40000000"}`). The table passes only the two BPMP pages Linux maps
/// (`tegra_sysram_config.map_only_reserved`), Device-nGnRE (`no-memory-wc`).
#[test]
fn sram_is_only_the_two_bpmp_pages_as_device_memory() {
    const DOC_SRAM: u64 = 0x4000_0000;
    const DOC_SRAM_SIZE: u64 = 0x8_0000;
    assert!(
        ORIN_AGX.passthrough.iter().all(|p| p.name != "sram"),
        "document: all of SYSRAM, {DOC_SRAM:#x} + {DOC_SRAM_SIZE:#x}"
    );
    let tx = passthrough("sram-bpmp-tx");
    let rx = passthrough("sram-bpmp-rx");
    assert_eq!(tx.range, GuestRange::new(0x4007_0000, 0x1000));
    assert_eq!(rx.range, GuestRange::new(0x4007_1000, 0x1000));
    assert_eq!(tx.dt_path, "/sram@40000000/sram@70000");
    assert_eq!(rx.dt_path, "/sram@40000000/sram@71000");
    for p in [tx, rx] {
        assert_eq!(
            p.attrs,
            MemAttrs::DeviceNGnRE,
            "{}: what sram.c maps",
            p.name
        );
        assert_ne!(
            p.attrs,
            MemAttrs::NormalCacheable,
            "the BPMP's replies bypass the caches"
        );
    }
    // The first 256 KiB are the secure world's, and the rest of SYSRAM is not the guest's.
    for addr in (DOC_SRAM..DOC_SRAM + DOC_SRAM_SIZE).step_by(0x1000) {
        let expected = match addr {
            0x4007_0000 => Some("sram-bpmp-tx"),
            0x4007_1000 => Some("sram-bpmp-rx"),
            _ => None,
        };
        assert_eq!(passes_through(addr).map(|p| p.name), expected, "{addr:#x}");
    }
}

/// Document: HSP top0 `interrupts` doorbell 176 and shared0..7 = 120..127, HSP AON shared1..4
/// = 133..136, all level (`0x4`), all given to the guest. The board agrees on numbers and
/// triggers; the table gives the guest only the three `tegra-hsp.c` requests.
#[test]
fn only_the_hsp_interrupts_linux_requests_pass_through() {
    const DOC_TOP0: [u32; 9] = [176, 120, 121, 122, 123, 124, 125, 126, 127];
    const DOC_AON: [u32; 4] = [133, 134, 135, 136];
    assert_eq!(
        irq_spis(),
        [176, 120, 133],
        "document: {DOC_TOP0:?} and {DOC_AON:?}"
    );
    for spi in DOC_TOP0.iter().chain(&DOC_AON) {
        let passed = irq_spis().contains(spi);
        assert_eq!(passed, matches!(spi, 176 | 120 | 133), "SPI {spi}");
    }
    for irq in ORIN_AGX.passthrough_irqs {
        assert_eq!(
            irq.trigger,
            Trigger::Level,
            "{} (document: 0x4, level)",
            irq.name
        );
    }
    let names: Vec<_> = ORIN_AGX.passthrough_irqs.iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        ["hsp-top0-doorbell", "hsp-top0-shared0", "hsp-aon-shared1"]
    );
}

/// The document's pass-through list (`vm0.dtb`) has five nodes, two of them without `reg`
/// (`/bpmp` and the TCU): nodes with a range are [`Passthrough`] entries, the two others
/// [`BoardNode`]s (the TCU at its board path, `/serial`). The table adds APB MISC.
#[test]
fn every_region_names_a_real_board_path() {
    const DOC_PATHS: [&str; 5] = [
        "/serial@c168000",
        "/tegra-hsp@3c00000",
        "/tegra-hsp@c150000",
        "/sram@40000000",
        "/bpmp",
    ];
    let paths: Vec<_> = ORIN_AGX.passthrough.iter().map(|p| p.dt_path).collect();
    assert_eq!(
        paths,
        [
            "/bus@0/hsp@3c00000",
            "/bus@0/hsp@c150000",
            "/sram@40000000/sram@70000",
            "/sram@40000000/sram@71000",
            "/bus@0/misc@100000",
            "/bus@0/misc@100000",
        ],
        "document: {DOC_PATHS:?}"
    );
    for doc in DOC_PATHS {
        assert!(!paths.contains(&doc) || doc == "/sram@40000000", "{doc}");
    }
    let nodes: Vec<_> = ORIN_AGX.board_nodes.iter().map(|n| n.dt_path).collect();
    assert_eq!(
        nodes,
        ["/bpmp", "/bpmp/i2c", "/serial"],
        "document: /bpmp and /serial@c168000"
    );
    assert!(!nodes.contains(&"/serial@c168000"));
}

/// Document, `/bpmp`: `mboxes = <&hsp_top0 0x2 0x13>; /* DB type, BPMP master */`. The
/// comment is right and the number wrong: in `dt-bindings/mailbox/tegra186-hsp.h` 0x2 is
/// `TEGRA_HSP_MBOX_TYPE_SS` (shared semaphore); the doorbell type is `TEGRA_HSP_MBOX_TYPE_DB`,
/// 0x0, and 0x13 is `TEGRA_HSP_DB_MASTER_BPMP` (19). The board's `/bpmp` has `<&hsp_top0 0x0
/// 0x13>`. `tegra-hsp.c` translates type 0 only in `tegra_hsp_db_xlate` and type 1 only in
/// `tegra_hsp_sm_xlate`, so with the document's value `mbox_request_channel` fails (-ENODEV)
/// and the BPMP driver stops at "failed to get HSP mailbox". The guest's `/bpmp` is the board's
/// node (a [`BoardNode`], copied byte for byte but for `iommus` / `interconnects`), so the guest
/// gets the board's value.
#[test]
fn bpmp_mailbox_is_the_doorbell_type_not_the_documents_shared_semaphore() {
    const TEGRA_HSP_MBOX_TYPE_DB: u32 = 0x0;
    const TEGRA_HSP_MBOX_TYPE_SS: u32 = 0x2;
    const TEGRA_HSP_DB_MASTER_BPMP: u32 = 19;
    const DOC_MBOXES: [u32; 2] = [0x2, 0x13]; // after the &hsp_top0 phandle
    assert_eq!(DOC_MBOXES[0], TEGRA_HSP_MBOX_TYPE_SS, "document: 'DB type'");
    assert_eq!(DOC_MBOXES[1], TEGRA_HSP_DB_MASTER_BPMP);

    let board = Board::read();
    let mboxes = board.cells("/bpmp", "mboxes");
    assert_eq!(mboxes.len(), 3, "one mailbox: phandle, type, id");
    assert_eq!(board.by_phandle(mboxes[0]), "/bus@0/hsp@3c00000");
    assert_eq!(board.cell("/bus@0/hsp@3c00000", "#mbox-cells"), Some(2));
    assert_eq!(
        mboxes[1..],
        [TEGRA_HSP_MBOX_TYPE_DB, TEGRA_HSP_DB_MASTER_BPMP],
        "document: {DOC_MBOXES:x?}"
    );
    assert_ne!(
        mboxes[1], DOC_MBOXES[0],
        "the document's type is not the board's"
    );
    assert_eq!(
        mboxes[2], DOC_MBOXES[1],
        "the document's doorbell id agrees"
    );
    // The guest gets the board's node, so the board's value.
    assert!(ORIN_AGX.board_nodes.iter().any(|n| n.dt_path == "/bpmp"));
    assert_eq!(passthrough("hsp-top0").dt_path, "/bus@0/hsp@3c00000");
}

/// Document: `"linux_bootcmdline" : "console=ttyTCU0,115200
/// earlycon=tegra_comb_uart,mmio32,0x0c168000 debug init=/sbin/init"`. The table adds
/// `arm64.nopauth`: under seL4 (HCR_EL2.API/APK clear) pointer-authentication instructions trap
/// to EL2, and the VMM ends the VM on that trap. And `clk_ignore_unused pd_ignore_unused`: the
/// guest's BPMP driver registers every clock and power domain of the SoC, and at late_initcall
/// Linux would turn off those no guest driver claimed, UARTA's clock (seL4's console) among
/// them (PITFALLS.md #6).
#[test]
fn bootargs_add_arm64_nopauth_and_keep_unused_clocks_on() {
    const DOC_BOOTARGS: &str =
        "console=ttyTCU0,115200 earlycon=tegra_comb_uart,mmio32,0x0c168000 debug init=/sbin/init";
    const ADDED: [&str; 3] = ["arm64.nopauth", "clk_ignore_unused", "pd_ignore_unused"];
    assert_eq!(
        ORIN_AGX.bootargs,
        "console=ttyTCU0,115200 earlycon=tegra_comb_uart,mmio32,0x0c168000 arm64.nopauth clk_ignore_unused pd_ignore_unused debug init=/sbin/init",
        "document: {DOC_BOOTARGS}"
    );
    let doc: Vec<_> = DOC_BOOTARGS.split(' ').collect();
    let words: Vec<_> = ORIN_AGX.bootargs.split(' ').collect();
    for w in ADDED {
        assert_eq!(words.iter().filter(|x| **x == w).count(), 1, "{w}");
    }
    let table: Vec<_> = words
        .iter()
        .copied()
        .filter(|w| !ADDED.contains(w))
        .collect();
    assert_eq!(table, doc, "{ADDED:?} are the only words added");
    // The early console must hand over to ttyTCU0: both write the TCU's one TX mailbox.
    assert!(!ORIN_AGX.bootargs.contains("keep_bootcon"));
}
