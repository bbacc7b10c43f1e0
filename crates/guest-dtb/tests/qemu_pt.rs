//! The QEMU virt pass-through guest tree (`qemu-virt-pt`): QEMU's own PL031 and virtio-mmio
//! transport 31 copied from QEMU's DTB, guest RAM identity-mapped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Dt, QEMU_DTB, board, cells, dtc_clean, without_node};
use guest_dtb::{Error, Initrd, build, verify};
use vmm_platform::{GuestRange, Passthrough, Platform, QEMU_VIRT_PT};

fn guest(p: &Platform) -> Result<Vec<u8>, Error> {
    build(
        p,
        &board(QEMU_DTB),
        Some(Initrd::at_load_region(p, 0x10_0000)),
    )
}

#[test]
fn the_devices_come_from_qemus_tree_with_their_interrupts() {
    let dtb = guest(&QEMU_VIRT_PT).unwrap();
    dtc_clean(&dtb, "qemu-pt-guest");
    verify(&dtb).unwrap();
    let dt = Dt::read(&dtb);
    // The transport's own 0x200 bytes (the region maps their whole page) and QEMU's edge flag.
    let rng = dt.props("/virtio_mmio@a003e00");
    let get = |props: &[(String, Vec<u8>)], n: &str| {
        props
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(cells(&get(rng, "reg")), [0, 0x0a00_3e00, 0, 0x200]);
    assert_eq!(cells(&get(rng, "interrupts")), [0, 47, 1]);
    let rtc = dt.props("/pl031@9010000");
    assert_eq!(cells(&get(rtc, "interrupts")), [0, 2, 4]);
    // Its `clocks` point at the VMM's own 24 MHz apb-pclk (the one the emulated PL011 uses).
    let clk = get(dt.props("/apb-pclk"), "phandle");
    assert_eq!(cells(&get(rtc, "clocks")), cells(&clk));
    assert_eq!(
        cells(&get(dt.props("/memory@80000000"), "reg")),
        [0, 0x8000_0000, 0, 0x2000_0000]
    );
    // No other transport of QEMU's 32.
    let transports = dt
        .nodes
        .keys()
        .filter(|k| k.starts_with("/virtio_mmio@"))
        .count();
    assert_eq!(transports, 1);
}

#[test]
fn a_region_that_does_not_hold_the_nodes_registers_is_refused() {
    const WRONG: [Passthrough; 1] = [Passthrough {
        range: GuestRange::new(0x0a00_2000, 0x1000),
        ..QEMU_VIRT_PT.passthrough[1]
    }];
    let p = Platform {
        passthrough: &WRONG,
        passthrough_irqs: &QEMU_VIRT_PT.passthrough_irqs[1..],
        ..QEMU_VIRT_PT
    };
    match guest(&p) {
        Err(Error::RegMismatch { node, region, .. }) => {
            assert_eq!(
                (node.as_str(), region),
                ("/virtio_mmio@a003e00", "virtio-rng")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_region_absent_from_the_board_is_named() {
    let board = without_node(&board(QEMU_DTB), "pl031@9010000");
    let p = &QEMU_VIRT_PT;
    let e = build(p, &board, None).unwrap_err();
    assert!(e.to_string().contains("/pl031@9010000"), "{e}");
}
