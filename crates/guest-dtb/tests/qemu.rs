//! The QEMU virt guest tree, from QEMU's own DTB (`platform/testdata`, dumped by QEMU 7.2).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Dt, QEMU_DTB, board, dtc_clean};
use guest_dtb::{Initrd, build, build_with, verify};
use vmm_platform::{GICD_SIZE, GICR_STRIDE, PAGE_4K, Platform, QEMU_VIRT};

const INITRD_SIZE: u64 = 0x12_3457;

fn guest(initrd: bool) -> (Vec<u8>, Dt) {
    let p = &QEMU_VIRT;
    let initrd = initrd.then(|| Initrd::at_load_region(p, INITRD_SIZE));
    let dtb = build(p, &board(QEMU_DTB), initrd).unwrap();
    let dt = Dt::read(&dtb);
    (dtb, dt)
}

#[test]
fn dtc_decompiles_it_without_warnings() {
    let (dtb, _) = guest(true);
    dtc_clean(&dtb, "qemu-guest");
    let (dtb, _) = guest(false);
    dtc_clean(&dtb, "qemu-guest-no-initrd");
}

#[test]
fn it_holds_exactly_the_emulated_nodes() {
    let (_, dt) = guest(true);
    let nodes: Vec<&str> = dt.nodes.keys().map(String::as_str).collect();
    assert_eq!(
        nodes,
        [
            "/",
            "/aliases",
            "/apb-pclk",
            "/chosen",
            "/cpus",
            "/cpus/cpu@0",
            "/cpus/cpu@1",
            "/cpus/cpu@2",
            "/cpus/cpu@3",
            "/intc@8000000",
            "/memory@40000000",
            "/pcie@3f000000",
            "/pl011@9000000",
            "/psci",
            "/timer",
        ]
    );
}

#[test]
fn root_chosen_memory_and_aliases() {
    let p = &QEMU_VIRT;
    let (_, dt) = guest(true);
    let host = Dt::read(&board(QEMU_DTB));
    assert_eq!(dt.strs("/", "compatible"), host.strs("/", "compatible"));
    assert_eq!(dt.u32("/", "#address-cells"), 2);
    assert_eq!(dt.u32("/", "#size-cells"), 2);
    let gic = dt.resolve(dt.u32("/", "interrupt-parent"), "root interrupt-parent");
    assert_eq!(gic, "/intc@8000000");

    assert_eq!(dt.str("/chosen", "bootargs"), p.bootargs);
    assert_eq!(dt.str("/chosen", "stdout-path"), p.stdout_path);
    assert_eq!(dt.u64("/chosen", "linux,initrd-start"), p.initrd.addr.0);
    assert_eq!(
        dt.u64("/chosen", "linux,initrd-end"),
        p.initrd.addr.0 + INITRD_SIZE
    );
    assert_eq!(dt.str("/aliases", "serial0"), "/pl011@9000000");

    assert_eq!(dt.str("/memory@40000000", "device_type"), "memory");
    assert_eq!(
        dt.cells("/memory@40000000", "reg"),
        [0, 0x4000_0000, 0, 0x2000_0000]
    );
    let (_, no_initrd) = guest(false);
    assert!(!no_initrd.has("/chosen", "linux,initrd-start"));
    assert!(!no_initrd.has("/chosen", "linux,initrd-end"));
    assert_eq!(no_initrd.str("/chosen", "bootargs"), p.bootargs);
}

#[test]
fn cpus_psci_and_timer() {
    let p = &QEMU_VIRT;
    let (_, dt) = guest(true);
    assert_eq!(dt.u32("/cpus", "#address-cells"), 1);
    assert_eq!(dt.u32("/cpus", "#size-cells"), 0);
    assert_eq!(dt.children("/cpus").len(), usize::from(p.vcpus));
    for n in 0..p.vcpus {
        let cpu = format!("/cpus/cpu@{n:x}");
        assert_eq!(u64::from(dt.u32(&cpu, "reg")), Platform::mpidr(n));
        assert_eq!(dt.str(&cpu, "compatible"), "arm,armv8");
        assert_eq!(dt.str(&cpu, "device_type"), "cpu");
        assert_eq!(dt.str(&cpu, "enable-method"), "psci");
    }
    assert_eq!(
        dt.strs("/psci", "compatible"),
        ["arm,psci-1.0", "arm,psci-0.2"]
    );
    assert_eq!(dt.str("/psci", "method"), "smc");

    assert_eq!(dt.str("/timer", "compatible"), "arm,armv8-timer");
    let irqs = dt.cells("/timer", "interrupts");
    assert_eq!(irqs, [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]);
    // The same PPIs and flags as QEMU's own GICv3 tree.
    let host = Dt::read(&board(QEMU_DTB));
    assert_eq!(irqs, host.cells("/timer", "interrupts"));
    assert_eq!(dt.interrupt_parent("/timer"), "/intc@8000000");
}

#[test]
fn gic_is_the_emulated_gicv3_where_qemu_has_its_gic() {
    let p = &QEMU_VIRT;
    let (_, dt) = guest(true);
    let g = "/intc@8000000";
    assert_eq!(dt.str(g, "compatible"), "arm,gic-v3");
    assert_eq!(dt.u32(g, "#interrupt-cells"), 3);
    assert_eq!(dt.u32(g, "#redistributor-regions"), 1);
    assert_eq!(dt.prop(g, "interrupt-controller"), Some(&[][..]));
    let reg = dt.cells(g, "reg");
    let redist = GICR_STRIDE * u64::from(p.vcpus);
    assert_eq!(
        reg,
        [
            0,
            0x0800_0000,
            0,
            GICD_SIZE as u32,
            0,
            0x080a_0000,
            0,
            redist as u32
        ]
    );
    assert_eq!(dt.cells(g, "interrupts"), [1, 9, 4], "maintenance PPI 9");
    // QEMU's distributor and redistributors are at the same addresses.
    let host = Dt::read(&board(QEMU_DTB));
    let host_reg = host.cells("/intc@8000000", "reg");
    assert_eq!(&host_reg[..2], &reg[..2]);
    assert_eq!(&host_reg[4..6], &reg[4..6]);
}

#[test]
fn pci_host_bridge() {
    let p = &QEMU_VIRT;
    let (_, dt) = guest(true);
    let pci = "/pcie@3f000000";
    assert_eq!(dt.str(pci, "compatible"), "pci-host-ecam-generic");
    assert_eq!(dt.str(pci, "device_type"), "pci");
    assert_eq!(dt.cells(pci, "reg"), [0, 0x3f00_0000, 0, 0x10_0000]);
    assert_eq!(dt.u32(pci, "#address-cells"), 3);
    assert_eq!(dt.u32(pci, "#size-cells"), 2);
    let m = p.pci().unwrap().layout.mmio;
    assert_eq!(
        dt.cells(pci, "ranges"),
        [
            0x0200_0000,
            0,
            m.base.0 as u32,
            0,
            m.base.0 as u32,
            0,
            m.size as u32
        ]
    );
    assert_eq!(dt.cells(pci, "bus-range"), [0, 0]);
    assert_eq!(dt.u32(pci, "#interrupt-cells"), 1);
    assert_eq!(dt.cells(pci, "interrupt-map-mask"), [0x1800, 0, 0, 7]);
    assert!(dt.has(pci, "dma-coherent"));
    assert!(dt.interrupt_map_routes_every_slot(pci, p));
}

trait Routes {
    fn interrupt_map_routes_every_slot(&self, pci: &str, p: &Platform) -> bool;
}

impl Routes for Dt {
    /// INTA..INTD of every one of the 32 slots reaches the table's SPI by the swizzle, the
    /// same line the PCI bus model drives.
    fn interrupt_map_routes_every_slot(&self, pci: &str, p: &Platform) -> bool {
        for slot in 0..32u32 {
            for pin in 1..=4u32 {
                let (parent, spec) = self.pci_intx(pci, slot, pin);
                assert_eq!(parent, "/intc@8000000");
                let line = ((slot + pin - 1) % 4) as usize;
                assert_eq!(
                    virtio_pci::PciBus::intx_line(slot as u8, pin as u8),
                    line,
                    "the bus model routes slot {slot} pin {pin} the same way"
                );
                assert_eq!(
                    spec,
                    [0, p.pci().unwrap().layout.intx[line].0, 4],
                    "slot {slot} pin {pin}: SPI, level-high"
                );
            }
        }
        true
    }
}

#[test]
fn pl011_and_its_clock_like_qemus() {
    let p = &QEMU_VIRT;
    let uart = p.pl011().unwrap();
    let (_, dt) = guest(true);
    let u = "/pl011@9000000";
    assert_eq!(dt.strs(u, "compatible"), ["arm,pl011", "arm,primecell"]);
    assert_eq!(
        dt.cells(u, "reg"),
        [0, uart.base.0 as u32, 0, PAGE_4K as u32]
    );
    assert_eq!(dt.cells(u, "interrupts"), [0, uart.spi.0, 4]);
    assert_eq!(dt.strs(u, "clock-names"), ["uartclk", "apb_pclk"]);
    let clocks = dt.cells(u, "clocks");
    assert_eq!(clocks.len(), 2);
    for c in clocks {
        assert_eq!(dt.resolve(c, "pl011 clocks"), "/apb-pclk");
    }
    assert_eq!(dt.str("/apb-pclk", "compatible"), "fixed-clock");
    assert_eq!(dt.u32("/apb-pclk", "#clock-cells"), 0);
    assert_eq!(dt.u32("/apb-pclk", "clock-frequency"), 24_000_000);
    let host = Dt::read(&board(QEMU_DTB));
    assert_eq!(
        host.u32("/apb-pclk", "clock-frequency"),
        24_000_000,
        "QEMU's"
    );
    assert_eq!(host.cells(u, "interrupts"), dt.cells(u, "interrupts"));
    assert_eq!(dt.interrupt_parent(u), "/intc@8000000");
}

#[test]
fn every_phandle_resolves_to_exactly_one_node() {
    let (dtb, dt) = guest(true);
    let followed = dt.check_references();
    // root interrupt-parent, pl011 clocks x2, 16 interrupt-map entries, three `interrupts`.
    assert!(followed >= 1 + 2 + 16 + 3, "{followed}");
    let v = verify(&dtb).unwrap();
    assert_eq!(v.phandles, 2, "the GIC and the clock");
    assert_eq!(v.nodes, dt.nodes.len());
}

#[test]
fn fits_the_dtb_region_and_copies_nothing_of_qemus_devices() {
    let p = &QEMU_VIRT;
    let out = build_with(p, &board(QEMU_DTB), Some(Initrd::at_load_region(p, 1)), &[]).unwrap();
    assert!(out.dtb.len() as u64 <= p.dtb.max_size);
    assert!(out.nodes.is_empty());
    assert!(out.notes.is_empty(), "{:?}", out.notes);
}
