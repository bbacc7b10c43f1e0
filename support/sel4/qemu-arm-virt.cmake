# seL4 16.0.0 kernel settings for the VMM on QEMU virt (AArch64, EL2, GICv3, 4 cores).
# Use with: cmake -C support/sel4/qemu-arm-virt.cmake -DCROSS_COMPILER_PREFIX=aarch64-linux-gnu- \
#             -DCMAKE_INSTALL_PREFIX=$SEL4_PREFIX -G Ninja -S <seL4 source> -B <build dir>
# (see support/sel4/README.md).

set(KernelPlatform "qemu-arm-virt" CACHE STRING "")
set(KernelArch "arm" CACHE STRING "")
set(KernelSel4Arch "aarch64" CACHE STRING "")
# The CPU and machine options support/qemu/run.sh boots with.
set(ARM_CPU "cortex-a57" CACHE STRING "")
set(QEMU_GIC_VERSION "3" CACHE STRING "")
set(QEMU_MEMORY "2048" CACHE STRING "")
# The kernel runs at EL2 and offers VCPU objects.
set(KernelArmHypervisorSupport ON CACHE BOOL "")
# One core per guest vCPU.
set(KernelMaxNumNodes "4" CACHE STRING "")
# Guest WFI/WFE execute natively: an idle vCPU waits in hardware for its next (virtual)
# interrupt instead of trapping to the VMM on every idle loop iteration.
set(KernelArmDisableWFIWFETraps ON CACHE BOOL "")
# Room for the caps of every 2 MiB guest RAM block (mapped twice) and page tables.
set(KernelRootCNodeSizeBits "16" CACHE STRING "")
# Debug output for the VMM's log and the guest's console, and readable kernel errors.
set(KernelVerificationBuild OFF CACHE BOOL "")
set(KernelDebugBuild ON CACHE BOOL "")
set(KernelPrinting ON CACHE BOOL "")
# Non-MCS: faults are replied to with the caller's reply cap.
set(KernelIsMCS OFF CACHE BOOL "")
