# seL4 16.0.0 kernel settings for the VMM on the Jetson AGX Orin devkit (AArch64, EL2, GICv3,
# 12 cores). Needs the orinagx platform installed into the seL4 tree first (install.sh).
# Use with: cmake -C support/sel4/orin-agx/orin-agx.cmake -DCROSS_COMPILER_PREFIX=aarch64-linux-gnu- \
#             -DCMAKE_INSTALL_PREFIX=$SEL4_PREFIX -G Ninja -S <seL4 source> -B <build dir>
# (see support/sel4/README-orin.md).

set(KernelPlatform "orinagx" CACHE STRING "")
set(KernelArch "arm" CACHE STRING "")
set(KernelSel4Arch "aarch64" CACHE STRING "")
# The kernel runs at EL2 and offers VCPU objects. (The platform itself selects GICv3 and the
# Cortex-A76 CPU settings: src/plat/orinagx/config.cmake.)
set(KernelArmHypervisorSupport ON CACHE BOOL "")
# All of Tegra234's cores (3 clusters of 4). Needs the GICv3 changes install.sh applies;
# an unpatched seL4 16.0.0 tree must use 4 (cluster 0 only).
set(KernelMaxNumNodes "12" CACHE STRING "")
# Guest WFI/WFE execute natively: each vCPU has a core of its own (4 of 12), so an idle vCPU
# waits in hardware for its next interrupt instead of trapping to the VMM.
set(KernelArmDisableWFIWFETraps ON CACHE BOOL "")
# EL0 may read the virtual counter: the VMM times the guest's run with it, on a core of its
# own (crates/root-task/src/clock.rs says why only there).
set(KernelArmExportVCNTUser ON CACHE BOOL "")
# Room for the caps of every 2 MiB guest RAM block (mapped twice) and page tables.
set(KernelRootCNodeSizeBits "16" CACHE STRING "")
# No debug build: a guest's HVC is taken as an seL4 system call, and a debug kernel's system
# calls need no capability (see support/sel4/qemu-arm-virt.cmake). The root task prints on
# UARTA itself. -DKernelDebugBuild=ON -DKernelPrinting=ON for kernel bring-up only.
set(KernelVerificationBuild OFF CACHE BOOL "")
set(KernelDebugBuild OFF CACHE BOOL "")
set(KernelPrinting OFF CACHE BOOL "")
# Non-MCS: faults are replied to with the caller's reply cap.
set(KernelIsMCS OFF CACHE BOOL "")
