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
# Guest WFI/WFE trap (the option's OFF value keeps HCR_EL2.TWI/TWE set): on QEMU the vCPUs
# usually share seL4 cores (VMM_CORES, build/README.md), and a trapped WFI or WFE lets the
# core's other vCPUs run instead of idling or spinning out a time slice. Measured on a 2-core
# host, 4 vCPUs on 2 cores: self-test PASS at 103 s with traps, 204 s without
# (support/sel4/README.md). Orin, with a core per vCPU, keeps them off (orin-agx/).
set(KernelArmDisableWFIWFETraps OFF CACHE BOOL "")
# EL0 may read the virtual counter: the VMM times the guest's run with it, on a core of its
# own (crates/root-task/src/clock.rs says why only there).
set(KernelArmExportVCNTUser ON CACHE BOOL "")
# Room for the caps of every 2 MiB guest RAM block (mapped twice) and page tables.
set(KernelRootCNodeSizeBits "16" CACHE STRING "")
# Debug output for the VMM's log and the guest's console, and readable kernel errors.
set(KernelVerificationBuild OFF CACHE BOOL "")
# No debug build: a guest's HVC is taken as an seL4 system call, and a debug kernel's
# system calls need no capability (seL4_DebugHalt stops the machine, seL4_DebugPutChar prints
# unprefixed text, seL4_DebugSendIPI sends any SGI). The root task prints on the UART itself
# (crates/root-task/src/uart.rs). -DKernelDebugBuild=ON -DKernelPrinting=ON for kernel work
# only, never with an untrusted guest.
set(KernelDebugBuild OFF CACHE BOOL "")
set(KernelPrinting OFF CACHE BOOL "")
# Non-MCS: faults are replied to with the caller's reply cap.
set(KernelIsMCS OFF CACHE BOOL "")
