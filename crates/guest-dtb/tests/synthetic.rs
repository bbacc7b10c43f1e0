//! Small boards written with `vm-fdt` for what the real trees do not exercise: interrupts to
//! a passed-through interrupt controller, `interrupts-extended`, a board root whose
//! `interrupt-parent` is not the GIC, empty phandle slots, PPIs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Dt, dtc_clean};
use guest_dtb::{Error, build_with, verify};
use vm_fdt::FdtWriter;
use vmm_platform::{
    Access, GuestRange, MemAttrs, Passthrough, PassthroughIrq, Platform, QEMU_VIRT, Spi, Trigger,
};

const GIC: u32 = 1;
const GPIO: u32 = 2;
const CLK: u32 = 3;

/// A board with a GIC, a GPIO controller that is also an interrupt controller, three devices
/// and a clock. `root_irq_parent`: what the root's `interrupt-parent` points at.
fn board(root_irq_parent: u32, ppi_device: bool) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_string("compatible", "test,board").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_u32("interrupt-parent", root_irq_parent).unwrap();

    let gic = w.begin_node("interrupt-controller@8000000").unwrap();
    w.property_string("compatible", "arm,gic-v3").unwrap();
    w.property_null("interrupt-controller").unwrap();
    w.property_u32("#interrupt-cells", 3).unwrap();
    w.property_u32("#address-cells", 0).unwrap();
    w.property_array_u32("reg", &[0, 0x0800_0000, 0, 0x1_0000])
        .unwrap();
    w.property_phandle(GIC).unwrap();
    w.end_node(gic).unwrap();

    let clk = w.begin_node("clk").unwrap();
    w.property_string("compatible", "fixed-clock").unwrap();
    w.property_u32("#clock-cells", 1).unwrap();
    w.property_phandle(CLK).unwrap();
    w.end_node(clk).unwrap();

    let soc = w.begin_node("bus@0").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_array_u32("ranges", &[0, 0, 0x0a00_0000, 0x10_0000])
        .unwrap();

    let gpio = w.begin_node("gpio@1000").unwrap();
    w.property_array_u32("reg", &[0x1000, 0x1000]).unwrap();
    w.property_u32("interrupt-parent", GIC).unwrap();
    w.property_array_u32("interrupts", &[0, 10, 4, 0, 12, 4])
        .unwrap();
    w.property_null("gpio-controller").unwrap();
    w.property_u32("#gpio-cells", 2).unwrap();
    w.property_null("interrupt-controller").unwrap();
    w.property_u32("#interrupt-cells", 2).unwrap();
    w.property_u32("#address-cells", 0).unwrap();
    w.property_phandle(GPIO).unwrap();
    w.end_node(gpio).unwrap();

    let dev = w.begin_node("dev@2000").unwrap();
    w.property_array_u32("reg", &[0x2000, 0x1000]).unwrap();
    if root_irq_parent == GIC {
        w.property_u32("interrupt-parent", GPIO).unwrap();
    }
    w.property_array_u32("interrupts", &[5, 8]).unwrap();
    w.property_array_u32("reset-gpios", &[GPIO, 3, 0]).unwrap();
    w.end_node(dev).unwrap();

    let dev = w.begin_node("dev@3000").unwrap();
    w.property_array_u32("reg", &[0x3000, 0x1000]).unwrap();
    w.property_array_u32("interrupts-extended", &[GIC, 0, 11, 4, GPIO, 6, 8])
        .unwrap();
    w.property_string_list("interrupt-names", vec!["a".into(), "b".into()])
        .unwrap();
    w.property_array_u32("clocks", &[CLK, 0]).unwrap();
    w.property_array_u32("assigned-clock-parents", &[0, CLK, 1])
        .unwrap();
    w.end_node(dev).unwrap();

    if ppi_device {
        let dev = w.begin_node("dev@4000").unwrap();
        w.property_array_u32("reg", &[0x4000, 0x1000]).unwrap();
        w.property_u32("interrupt-parent", GIC).unwrap();
        w.property_array_u32("interrupts", &[1, 7, 4]).unwrap();
        w.end_node(dev).unwrap();
    }
    w.end_node(soc).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

const fn region(name: &'static str, dt_path: &'static str, base: u64) -> Passthrough {
    Passthrough {
        name,
        dt_path,
        range: GuestRange::new(base, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    }
}

static REGIONS: [Passthrough; 4] = [
    region("gpio", "/bus@0/gpio@1000", 0x0a00_1000),
    region("dev2", "/bus@0/dev@2000", 0x0a00_2000),
    region("dev3", "/bus@0/dev@3000", 0x0a00_3000),
    region("dev4", "/bus@0/dev@4000", 0x0a00_4000),
];
static IRQS: [PassthroughIrq; 2] = [
    PassthroughIrq {
        name: "gpio",
        spi: Spi(10),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "dev3",
        spi: Spi(11),
        trigger: Trigger::Level,
    },
];
static TEST: Platform = Platform {
    name: "test",
    passthrough: REGIONS.split_at(3).0,
    passthrough_irqs: &IRQS,
    ..QEMU_VIRT
};

fn check(dtb: &[u8], tag: &str) -> Dt {
    verify(dtb).unwrap();
    dtc_clean(dtb, tag);
    let dt = Dt::read(dtb);
    dt.check_references();
    dt
}

#[test]
fn kept_interrupt_controllers_keep_their_phandles_and_the_gic_is_replaced() {
    let out = build_with(&TEST, &board(GIC, false), None, &["/clk"]).unwrap();
    let dt = check(&out.dtb, "synthetic");
    let gic = dt.u32("/intc@8000000", "phandle");
    assert_ne!(gic, GIC);
    // The GPIO controller's own SPIs: 10 passed through, 12 left out.
    assert_eq!(dt.cells("/bus@0/gpio@1000", "interrupts"), [0, 10, 4]);
    assert_eq!(dt.u32("/bus@0/gpio@1000", "interrupt-parent"), gic);
    assert!(
        out.notes.iter().any(|n| n.contains("SPI 12 left out")),
        "{:?}",
        out.notes
    );
    // dev@2000 interrupts through the GPIO controller, which the guest gets as it is.
    assert_eq!(dt.interrupt_parent("/bus@0/dev@2000"), "/bus@0/gpio@1000");
    assert_eq!(dt.cells("/bus@0/dev@2000", "interrupts"), [5, 8]);
    assert_eq!(dt.cells("/bus@0/dev@2000", "reset-gpios"), [GPIO, 3, 0]);
    // interrupts-extended: the GIC entry rewritten, the GPIO entry kept.
    assert_eq!(
        dt.cells("/bus@0/dev@3000", "interrupts-extended"),
        [gic, 0, 11, 4, GPIO, 6, 8]
    );
    assert_eq!(dt.strs("/bus@0/dev@3000", "interrupt-names"), ["a", "b"]);
    // An empty slot (phandle 0) in assigned-clock-parents stays.
    assert_eq!(
        dt.cells("/bus@0/dev@3000", "assigned-clock-parents"),
        [0, CLK, 1]
    );
    assert_eq!(dt.resolve(CLK, "clk"), "/clk");
}

#[test]
fn a_board_root_interrupt_parent_that_is_not_the_gic_is_spelled_out() {
    // On this board dev@2000 inherits the GPIO controller from the root; in the guest the root
    // points at the emulated GIC, so the builder gives dev@2000 its own interrupt-parent.
    let out = build_with(&TEST, &board(GPIO, false), None, &["/clk"]).unwrap();
    let dt = check(&out.dtb, "synthetic-root-gpio");
    assert_eq!(dt.u32("/bus@0/dev@2000", "interrupt-parent"), GPIO);
    assert_eq!(dt.interrupt_parent("/bus@0/dev@2000"), "/bus@0/gpio@1000");
    assert_eq!(dt.interrupt_parent("/bus@0/gpio@1000"), "/intc@8000000");
}

#[test]
fn a_clock_the_guest_does_not_get() {
    let e = build_with(&TEST, &board(GIC, false), None, &[]).unwrap_err();
    assert_eq!(
        e,
        Error::UnkeptReference {
            node: "/bus@0/dev@3000".into(),
            property: "clocks".into(),
            target: "/clk".into(),
            phandle: CLK
        }
    );
}

static WITH_PPI: Platform = Platform {
    passthrough: &REGIONS,
    ..TEST
};

#[test]
fn a_ppi_cannot_be_passed_through() {
    let e = build_with(&WITH_PPI, &board(GIC, true), None, &["/clk"]).unwrap_err();
    assert!(
        matches!(e, Error::BadInterrupt { ref node, ref why, .. }
            if node == "/bus@0/dev@4000" && why.contains("PPI 7")),
        "{e}"
    );
}
