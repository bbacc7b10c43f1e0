#
# Copyright 2026, the sel4-vmm authors
#
# SPDX-License-Identifier: GPL-2.0-only
#
# seL4 16.0.0 platform: NVIDIA Jetson AGX Orin devkit (Tegra234; P3737-0000 carrier with a
# P3701-0000 module). Install as src/plat/orinagx/config.cmake; support/sel4/README-orin.md
# says where the other files go and how to configure the kernel.
#
# Every number here is checked against the devkit's device tree by check.sh (next to this file).

declare_platform(orinagx KernelPlatformOrinAGX PLAT_ORINAGX KernelSel4ArchAarch64)

if(KernelPlatformOrinAGX)
    declare_seL4_arch(aarch64)
    # The CPUs are 12 Cortex-A78AE (the DTB's cpus are "arm,cortex-a78ae"). seL4 16.0.0 knows no
    # A78 of any kind (its list: A7, A8, A9, A15, A35, A53, A55, A57, A72, A76). The Cortex-A76
    # is the A78AE's direct ancestor: both ARMv8.2-A, both 40-bit physical addresses (so seL4
    # gives the hypervisor a 40-bit IPA with stage 2 starting at level 1, and the whole 64 GiB
    # of Orin DRAM, 0x8000_0000..0x10_8000_0000, fits), both PIPT-behaving instruction caches
    # (A76 leaves KernelArmICacheVIPT off), and the same 6 breakpoints and 4 watchpoints
    # (libsel4's constants_cortex_a76.h). The choice only sets those three things and the
    # -mcpu the kernel is compiled for (cortex-a76, whose code runs on an A78AE).
    set(KernelArmCortexA76 ON)
    set(KernelArchArmV8a ON)
    # GIC-600 (GICv3): /bus@0/interrupt-controller@f400000, compatible "arm,gic-v3".
    set(KernelArmGicV3 ON)
    config_set(KernelARMPlatform ARM_PLAT orinagx)
    # As for the other NVIDIA platforms (tk1, tx1, tx2); only user-level libraries read it.
    config_set(KernelArmMach MACH "nvidia")
    list(APPEND KernelDTSList "tools/dts/orinagx.dts")
    list(APPEND KernelDTSList "src/plat/orinagx/overlay-orinagx.dts")
    # TIMER_FREQUENCY: the ARM generic timer runs at 31.25 MHz on Tegra234 as on Tegra186/194
    #   (TX2 uses the same value); the DTB's /timer has no clock-frequency, so CNTFRQ_EL0 as set
    #   by the firmware is the authority: Linux prints "arch_timer: cp15 timer(s) running at
    #   31.25MHz" on this board, and BRINGUP.md says how to check it.
    # CLK_SHIFT/CLK_MAGIC: `tools/reciprocal.py --divisor 31250000` (magic 4611686019, shift
    #   57; TX2 has the same frequency and values). Only MCS kernels use them.
    # MAX_IRQ: 1019, the largest GICv3 SPI INTID. The devkit DTB uses SPIs up to 455
    #   (INTID 487); the GIC-600's ITLinesNumber is not in the DTB, so the kernel accepts any
    #   SPI the GIC can have rather than guess (costs a 1024-slot IRQ CNode).
    # NUM_PPI: 32 (GICv3: SGIs 0-15 and PPIs 16-31 are per CPU).
    declare_default_headers(
        TIMER_FREQUENCY 31250000
        MAX_IRQ 1019
        NUM_PPI 32
        INTERRUPT_CONTROLLER arch/machine/gic_v3.h
        TIMER drivers/timer/arm_generic.h
        CLK_SHIFT 57u
        CLK_MAGIC 4611686019u
        KERNEL_WCET 10u
    )
endif()

add_sources(
    DEP "KernelPlatformOrinAGX"
    CFILES src/arch/arm/machine/gic_v3.c src/arch/arm/machine/l2c_nop.c
)
