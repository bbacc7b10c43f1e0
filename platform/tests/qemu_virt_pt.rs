//! The pass-through QEMU table: what it holds, and each wrong change to it refused by name.

use vmm_platform::*;

fn err(p: Platform) -> PlatformError {
    p.validate().expect_err("the table should be refused")
}

#[test]
fn identity_ram_and_real_devices() {
    let p = &QEMU_VIRT_PT;
    assert!(p.ram.identity);
    assert_eq!(p.ram.range, GuestRange::new(0x8000_0000, 0x2000_0000));
    let names: Vec<_> = p
        .passthrough
        .iter()
        .map(|r| (r.name, r.range.base.0))
        .collect();
    assert_eq!(
        names,
        [("pl031-rtc", 0x0901_0000), ("virtio-rng", 0x0a00_3000)]
    );
    let irqs: Vec<_> = p
        .passthrough_irqs
        .iter()
        .map(|i| (i.name, i.spi.0, i.trigger))
        .collect();
    assert_eq!(
        irqs,
        [
            ("pl031-rtc", 2, Trigger::Level),
            ("virtio-rng", 47, Trigger::Edge)
        ]
    );
    assert!(
        p.bootargs
            .contains("selftest.passthrough=virtio-rng,pl031-rtc")
    );
}

#[test]
fn a_passthrough_region_inside_guest_ram_is_refused() {
    const IN_RAM: [Passthrough; 1] = [Passthrough {
        range: GuestRange::new(0x9000_0000, 0x1000),
        ..QEMU_VIRT_PT.passthrough[0]
    }];
    let e = err(Platform {
        passthrough: &IN_RAM,
        ..QEMU_VIRT_PT
    });
    assert_eq!(
        e,
        PlatformError::Overlap {
            a: "ram",
            a_range: GuestRange::new(0x8000_0000, 0x2000_0000),
            b: "pl031-rtc",
            b_range: GuestRange::new(0x9000_0000, 0x1000),
        }
    );
}

#[test]
fn a_passthrough_region_over_an_emulated_window_is_refused() {
    // The PL011 page is emulated (the guest's console).
    const ON_UART: [Passthrough; 1] = [Passthrough {
        range: GuestRange::new(0x0900_0000, 0x1000),
        ..QEMU_VIRT_PT.passthrough[0]
    }];
    match err(Platform {
        passthrough: &ON_UART,
        ..QEMU_VIRT_PT
    }) {
        PlatformError::Overlap {
            a: "pl011",
            b: "pl031-rtc",
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_interrupt_the_platform_already_uses_is_refused() {
    // SPI 1 is the emulated PL011's; SPI 3 is PCI INTA.
    for (spi, user) in [(1, "pl011"), (3, "pci-inta")] {
        let irqs = [PassthroughIrq {
            name: "virtio-rng",
            spi: Spi(spi),
            trigger: Trigger::Edge,
        }];
        let irqs: &'static [PassthroughIrq] = Box::leak(Box::new(irqs));
        let e = err(Platform {
            passthrough_irqs: irqs,
            ..QEMU_VIRT_PT
        });
        assert_eq!(
            e,
            PlatformError::DuplicateSpi {
                a: "virtio-rng",
                b: user,
                spi: Spi(spi),
            }
        );
    }
}
