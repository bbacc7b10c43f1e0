//! NVIDIA Jetson AGX Orin devkit (Tegra234, P3737-0000 carrier + P3701-0000 module).
//!
//! Starts from the design document (`shared/seed/orin-agx-port-design.md`); every value is
//! checked against the devkit's real device tree (`testdata/tegra234-p3737-0000+p3701-0000.dtb`,
//! Linux 6.1 `arch/arm64/boot/dts/nvidia/tegra234-p3737-0000+p3701-0000.dts`) by
//! `tests/orin_board.rs`. Where the two disagree the board wins, and the difference is recorded
//! next to the value; `tests/orin_design_doc.rs` turns each recorded difference into a test.
//! `support/orin/dtb_survey.py BOARD.dtb --node PATH` prints what the board says about a node.
//!
//! # What the guest gets, and why
//!
//! The guest runs the two Tegra drivers everything else depends on: the BPMP driver
//! (`drivers/firmware/tegra/bpmp*.c`: clocks, resets, power domains) and the TCU console
//! (`drivers/tty/serial/tegra-tcu.c`). Both are mailbox clients of `drivers/mailbox/tegra-hsp.c`:
//!
//! * BPMP: `/bpmp` has no `reg`. It rings the BPMP through HSP top0's doorbell
//!   (`mboxes = <&hsp_top0 TEGRA_HSP_MBOX_TYPE_DB TEGRA_HSP_DB_MASTER_BPMP>`), gets the answer
//!   through HSP top0's `doorbell` interrupt, and exchanges the messages through two 4 KiB SRAM
//!   pools (`shmem = <&cpu_bpmp_tx>, <&cpu_bpmp_rx>`, the children of `/sram@40000000`).
//! * TCU: `/serial` (no `reg` either) receives on HSP top0 shared mailbox 0 and transmits on
//!   HSP AON shared mailbox 1 (`mboxes = <&hsp_top0 SM RX(0)>, <&hsp_aon SM TX(1)>`); each HSP
//!   signals its shared mailboxes through one shared interrupt.
//!
//! So the regions are the two HSP instances and the two SRAM pages; the interrupts are the
//! three the HSP driver requests (see `PASSTHROUGH_IRQS`). The guest device tree must also carry
//! the two `reg`-less nodes, which no [`Passthrough`] entry can name because they have no range;
//! the table names them in `board_nodes` (`BOARD_NODES`), so `vmmctl dtb orin-agx` copies them
//! by default and fails, naming the node, on a board tree without one:
//!
//! * `/bpmp` (with its `i2c` child), minus `iommus` and `interconnects` (they point at the
//!   SMMU and memory controller the guest does not get; `crates/guest-dtb` leaves out those
//!   two properties, and says so, for any copied node whose SMMU or interconnect provider
//!   stays behind);
//! * `/serial` (the TCU), also the `/chosen/stdout-path` below.
//!
//! and the SRAM pages' parent `/sram@40000000` with its properties (`compatible`, `reg`,
//! `ranges`, `no-memory-wc`, the cells), because the children's addresses are relative to it.
//!
//! One more region, read-only: APB MISC (`/bus@0/misc@100000`, `nvidia,tegra234-misc`). Linux
//! reads the chip ID and revision (HIDREV) and the boot straps from it at early_initcall
//! (`drivers/soc/tegra/fuse/tegra-apbmisc.c`, `tegra_init_apbmisc`, from `tegra_init_fuse`);
//! without the node `tegra_read_chipid()` finds 0 and WARNs, with a backtrace ("Tegra Chip ID
//! not yet available", "Tegra APB MISC not yet available" in later kernels), each time a driver
//! asks `tegra_is_silicon()` or the chip ID, as the HSP / BPMP path does when the BPMP channels
//! start. On Tegra234 Linux never writes
//! there (its one write, `tegra194_miscreg_mask_serror`, is Tegra194's), and the guest has no
//! business changing the SoC's straps: the stage-2 mapping has no write permission.
//!
//! # Memory attributes
//!
//! Every pass-through region is Device-nGnRE, which is what the guest's drivers map:
//!
//! * `tegra-hsp.c`, `tegra_hsp_probe`: `hsp->regs = devm_ioremap_resource(&pdev->dev, res)`
//!   (Device-nGnRE).
//! * `sram.c`: `nvidia,tegra234-sysram` uses `tegra_sysram_config` (`map_only_reserved = true`:
//!   "SYSRAM contains areas that are not accessible by the kernel, such as the first 256K that
//!   is reserved for TZ. Accesses to those areas (including speculative accesses) trigger
//!   SErrors. As such we must map only the areas of SYSRAM specified in the device tree."), and
//!   `sram_add_partition` maps each child with `devm_ioremap_resource` because the node has
//!   `no-memory-wc` (Device-nGnRE; without it, `devm_ioremap_resource_wc`, Normal-NC).
//! * `bpmp-tegra186.c`, `tegra186_bpmp_init`: the IVC queues live in those mappings
//!   (`gen_pool_dma_alloc(priv->tx.pool, 4096, &priv->tx.phys)` from the `shmem` pools).
//!
//! Never cacheable: the BPMP writes its replies into SRAM behind the CPU's caches, and public
//! reports of this port (CAmkES, SRAM mapped cacheable in stage 2) saw the BPMP driver get no
//! replies. seL4 16's stage 2 knows only Normal write-back and Device-nGnRnE, so the root task
//! maps all of these as Device-nGnRnE: stricter than the guest's Device-nGnRE, never weaker.

use crate::{
    Access, BoardNode, Device, GicLayout, GuestPhysAddr, GuestRange, Host, HostReserved, HostUart,
    LoadRegion, MemAttrs, Passthrough, PassthroughIrq, PciHost, PciLayout, Platform, Ram, Spi,
    Trigger, VirtioKind, assert_valid,
};

/// The Orin AGX platform.
pub const ORIN_AGX: Platform = Platform {
    name: "orin-agx",
    // Identity-mapped: the guest's BPMP driver hands the BPMP physical buffer addresses.
    // The board's DRAM starts at 0x8000_0000 (the bootloader fills in `/memory`; the devkit DTB
    // has none); 0x9000_0000..0xa000_0000 must be RAM seL4 gives the root task as untyped, so
    // the seL4 kernel, the loader and the root task image (which embeds the guest images) must
    // all end below 0x9000_0000: see support/sel4/README-orin.md.
    ram: Ram {
        range: GuestRange::new(0x9000_0000, 0x1000_0000),
        identity: true,
    },
    kernel: LoadRegion {
        addr: GuestPhysAddr(0x9000_0000),
        max_size: 0x0c00_0000,
    },
    // Design document: initrd at 0x9D00_0000 with up to 32 MiB, DTB at 0x9E00_0000. That
    // initrd would run to 0x9F00_0000 over the DTB (the validator reports the overlap), so the
    // initrd moves down 16 MiB and keeps its 32 MiB; the DTB stays where the document put it.
    initrd: LoadRegion {
        addr: GuestPhysAddr(0x9c00_0000),
        max_size: 0x0200_0000,
    },
    dtb: LoadRegion {
        addr: GuestPhysAddr(0x9e00_0000),
        max_size: 0x0020_0000,
    },
    vcpus: 4,
    // `arm64.nopauth`: seL4 leaves HCR_EL2.API/APK clear, so the A78AE's pointer-authentication
    // instructions would trap to EL2; the guest is told not to use them.
    // `earlycon=tegra_comb_uart,mmio32,0x0c168000`: 0x0c16_8000 is not a device of its own but
    // HSP AON shared mailbox 1, the TCU's TX mailbox (`tegra-hsp.c`: `hsp->regs + SZ_64K +
    // i * SZ_32K` = 0x0c15_0000 + 0x1_0000 + 1 * 0x8000), inside the `hsp-aon` region below.
    // `tegra_comb_uart` exists only in NVIDIA's L4T kernel (mainline 6.1 has no such earlycon
    // and ignores the option); it polls the mailbox until the real TCU driver takes over.
    // `clk_ignore_unused pd_ignore_unused`: the guest runs the BPMP driver, so every clock and
    // power domain of the SoC is registered in the guest's clock and genpd frameworks, and at
    // late_initcall Linux turns off each one it found on but no guest driver claimed
    // (`clk_disable_unused`, `genpd_power_off_unused`). The guest has drivers for a few of
    // them; the rest belong to seL4 (UARTA, the console of seL4 and the VMM, whose clock
    // L4T's own driver keeps on and nothing in the guest claims) or to the firmware. The two
    // options leave them as the firmware left them.
    bootargs: "console=ttyTCU0,115200 earlycon=tegra_comb_uart,mmio32,0x0c168000 arm64.nopauth clk_ignore_unused pd_ignore_unused debug init=/sbin/init",
    // Design document: `linux_stdout` "/serial@c168000". The board has no such node: the TCU is
    // `/serial` (compatible "nvidia,tegra234-tcu", no `reg`; the board's `serial0` alias points
    // at it). A full path rather than the alias, so it resolves whether or not the guest DTB
    // carries `/aliases`.
    stdout_path: "/serial:115200n8",
    passthrough: PASSTHROUGH,
    board_nodes: BOARD_NODES,
    passthrough_irqs: PASSTHROUGH_IRQS,
    // The emulated GIC sits where the board's GIC-600 is (`/bus@0/interrupt-controller@f400000`:
    // GICD 0x0f40_0000 + 64 KiB, GICR 0x0f44_0000 + 2 MiB), so the addresses look familiar; it
    // is emulated, never mapped.
    gic: GicLayout {
        dist: GuestPhysAddr(0x0f40_0000),
        redist: GuestPhysAddr(0x0f44_0000),
    },
    // Not in the design document (it only asks for VmPCISupport). The previous windows, ECAM at
    // 0x3000_0000 and BARs at 0x2000_0000..0x3000_0000, lie on the board's PCIe controllers:
    // `/pcie@14100000` has registers at 0x3000_0000 (+256 KiB) and `/pcie@140a0000`,
    // `/pcie@140c0000`, `/pcie@140e0000` at 0x2a00_0000, 0x2c00_0000, 0x2e00_0000 (the eleven
    // controllers fill 0x2a00_0000..0x3e20_0000). Nothing on the board uses
    // 0x6000_0000..0x7010_0000: MMIO ends at 0x3e20_0000, SYSRAM is 0x4000_0000 + 512 KiB, the
    // secure monitor's TZDRAM is reported at 0x5000_0000 + 4 MiB, DRAM starts at 0x8000_0000.
    // INTA..INTD are SPIs 416..419: the board's DTB uses SPIs up to 408, then 448..455.
    // No PL011: the guest's console is the board's TCU (`/serial`, passed through), and
    // `hvc0` on virtio-console.
    devices: &[Device::Pci(PciHost {
        layout: PciLayout {
            ecam: GuestRange::new(0x7000_0000, 0x0010_0000),
            mmio: GuestRange::new(0x6000_0000, 0x1000_0000),
            intx: [Spi(416), Spi(417), Spi(418), Spi(419)],
        },
        functions: &[VirtioKind::Console, VirtioKind::Block, VirtioKind::Net],
    })],
    // seL4's console is UARTA (support/sel4/README-orin.md): 16550 registers 4 bytes apart.
    host: Host {
        uart: HostUart::Ns16550 {
            base: 0x0310_0000,
            reg_shift: 2,
        },
        reserved: &[HostReserved {
            // Public Orin ports of seL4 and other hypervisors report RAS (uncorrectable ECC)
            // errors from the 64 MiB at 0xbe00_0000 and keep it out of the kernel's memory;
            // support/sel4/orin-agx/overlay-orinagx.dts leaves it out of seL4's memory too.
            name: "RAS-error region",
            range: GuestRange::new(0xbe00_0000, 0x0400_0000),
        }],
    },
};

const PASSTHROUGH: &[Passthrough] = &[
    // Design document: path "/tegra-hsp@3c00000". The board: `/bus@0/hsp@3c00000`, reg
    // 0x03c0_0000 + 0xa_0000 (the document's address and size agree).
    Passthrough {
        name: "hsp-top0",
        dt_path: "/bus@0/hsp@3c00000",
        range: GuestRange::new(0x03c0_0000, 0x000a_0000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
    // Design document: path "/tegra-hsp@c150000". The board: `/bus@0/hsp@c150000`, reg
    // 0x0c15_0000 + 0x9_0000 (agrees). Holds the TCU's TX mailbox at 0x0c16_8000.
    Passthrough {
        name: "hsp-aon",
        dt_path: "/bus@0/hsp@c150000",
        range: GuestRange::new(0x0c15_0000, 0x0009_0000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
    // Design document (and this table before): all of `/sram@40000000`, 0x4000_0000 +
    // 512 KiB, Normal non-cacheable. The board's SYSRAM starts with 256 KiB reserved for the
    // secure world, and Linux maps only the two `pool` children the BPMP uses
    // (`tegra_sysram_config.map_only_reserved`), Device-nGnRE (`no-memory-wc`): the guest gets
    // exactly those two pages. `/sram@40000000/sram@70000` is reg <0x70000 0x1000> through
    // `ranges = <0x0 0x0 0x40000000 0x80000>`.
    Passthrough {
        name: "sram-bpmp-tx",
        dt_path: "/sram@40000000/sram@70000",
        range: GuestRange::new(0x4007_0000, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
    Passthrough {
        name: "sram-bpmp-rx",
        dt_path: "/sram@40000000/sram@71000",
        range: GuestRange::new(0x4007_1000, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadWrite,
    },
    // Not in the design document. APB MISC, `/bus@0/misc@100000`: reg <0x100000 0xf000>
    // (the chip ID register, HIDREV, at +4) and <0x10f000 0x1000> (the straps), both 4 KiB
    // multiples; one entry per `reg` entry, as the guest DTB builder matches each table range
    // to one. Read-only (module docs, "What the guest gets, and why").
    Passthrough {
        name: "apb-misc",
        dt_path: "/bus@0/misc@100000",
        range: GuestRange::new(0x0010_0000, 0xf000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadOnly,
    },
    Passthrough {
        name: "apb-misc-straps",
        dt_path: "/bus@0/misc@100000",
        range: GuestRange::new(0x0010_f000, 0x1000),
        attrs: MemAttrs::DeviceNGnRE,
        access: Access::ReadOnly,
    },
];

// The `reg`-less nodes (module docs). Design document: its `vm0.dtb` pass-through list names
// "/bpmp" and "/serial@c168000" (the TCU's path on the board is `/serial`). `/bpmp/i2c`
// (`nvidia,tegra186-bpmp-i2c`, an I2C bus the BPMP firmware owns and the guest reaches through
// BPMP messages) comes with `/bpmp` anyway; it is named too so that a board tree without it is
// an error.
const BOARD_NODES: &[BoardNode] = &[
    BoardNode {
        name: "bpmp",
        dt_path: "/bpmp",
    },
    BoardNode {
        name: "bpmp-i2c",
        dt_path: "/bpmp/i2c",
    },
    BoardNode {
        name: "tcu",
        dt_path: "/serial",
    },
];

// Design document: every interrupt of both HSP nodes, HSP top0 doorbell (176) and shared0..7
// (120..127), HSP AON shared1..4 (133..136), all level-high. The board agrees on the numbers
// and triggers (IRQ_TYPE_LEVEL_HIGH). But `tegra_hsp_probe` requests the `doorbell` interrupt
// and, in `tegra_hsp_request_shared_irq`, only the *first* `sharedN` interrupt it can get
// (`break;` after the first success): shared0 on HSP top0, shared1 on HSP AON (whose shared0
// "is routed only to AON/SPE"). The guest receives those three; the other ten stay with
// nobody (seL4 never enables them), so a stray level from an HSP interrupt-enable register the
// firmware left set cannot reach the guest as an interrupt it never asked for.
//
// All three are level-triggered: the shared-mailbox EMPTY/FULL conditions stay asserted until
// the guest's handler clears them (`tegra_hsp_shared_irq`: "These interrupts are level-
// triggered"), so the VMM acknowledges the physical interrupt only after the guest's EOI.
const PASSTHROUGH_IRQS: &[PassthroughIrq] = &[
    PassthroughIrq {
        name: "hsp-top0-doorbell",
        spi: Spi(176),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-top0-shared0",
        spi: Spi(120),
        trigger: Trigger::Level,
    },
    PassthroughIrq {
        name: "hsp-aon-shared1",
        spi: Spi(133),
        trigger: Trigger::Level,
    },
];

const _: () = assert_valid(&ORIN_AGX);
