#!/usr/bin/env python3
"""Makes seL4 16.0.0's GICv3 driver work on all 12 cores of Tegra234 (3 clusters of 4).

seL4 16.0.0 assumes at most 8 cores and one level of CPU affinity, and Orin breaks both:

1. Redistributors. `src/arch/arm/machine/gic_v3.c` searches for a core's redistributor in the
   first GICR_SIZE = 1 MiB (8 frames of 128 KiB), and `tools/hardware.yml` maps only 1 MiB of
   the GICR region into the kernel. Cores 8..11 would halt at boot with "GICv3: GICR base for
   CPU ... not found". The board's GICR region is 2 MiB (`reg = <0x0f440000 0x200000>`): both
   become 2 MiB.

2. IPIs. `ipi_send_target` groups the targets by MPIDR.Aff1 and never sets Aff2 in
   ICC_SGI1R_EL1. Orin's MPIDRs are cluster << 16 | core << 8 (cpu@0, cpu@100, ..., cpu@10000,
   ..., cpu@20300), so an IPI meant for cluster 1 or 2 lands on the core of cluster 0 with the
   same Aff1: remote TLB shootdowns and reschedule requests go to the wrong core. The
   replacement writes one ICC_SGI1R_EL1 per target core with its Aff3, Aff2, Aff1 and Aff0.

Our code, applied by pattern (not a diff), checked before and after. Idempotent.
"""
import re
import sys

NEW_IPI = """void ipi_send_target(irq_t irq, word_t cpuTargetList)
{
    /* orinagx: one ICC_SGI1R_EL1 write per target, with all four affinity levels. Tegra234's
     * MPIDRs differ in Aff2 (cluster) as well as Aff1 (core), which grouping by Aff1 alone
     * cannot address. */
    uint64_t sgi1r_base = ((word_t) IRQT_TO_IRQ(irq)) << ICC_SGI1R_INTID_SHIFT;

    for (word_t i = 0; i < CONFIG_MAX_NUM_NODES; i++) {
        if (cpuTargetList & BIT(i)) {
            word_t mpidr = mpidr_map[i];
            uint64_t sgi1r = sgi1r_base |
                             ((uint64_t)MPIDR_AFF3(mpidr) << ICC_SGI1R_AFF3_SHIFT) |
                             ((uint64_t)MPIDR_AFF2(mpidr) << ICC_SGI1R_AFF2_SHIFT) |
                             ((uint64_t)MPIDR_AFF1(mpidr) << ICC_SGI1R_AFF1_SHIFT) |
                             ((uint64_t)1 << MPIDR_AFF0(mpidr));
            SYSTEM_WRITE_64(ICC_SGI1R_EL1, sgi1r);
        }
    }
    isb();
}
"""
MARK = "orinagx: one ICC_SGI1R_EL1 write per target"


def die(msg):
    print("patch-sel4-16: " + msg, file=sys.stderr)
    sys.exit(1)


def patch_gic(path):
    src = open(path).read()
    changed = False
    size_re = re.compile(r"^#define GICR_SIZE(\s+)\(0x100000\)", re.M)
    if size_re.search(src):
        src = size_re.sub(r"#define GICR_SIZE\1(0x200000)", src)
        changed = True
    elif not re.search(r"^#define GICR_SIZE\s+\(0x200000\)", src, re.M):
        die(path + ": no GICR_SIZE definition of 0x100000 or 0x200000")
    if MARK not in src:
        start = src.find("void ipi_send_target(irq_t irq, word_t cpuTargetList)\n{")
        if start < 0:
            die(path + ": ipi_send_target not found")
        # The function ends at the first line that is a lone closing brace.
        end = src.find("\n}\n", start)
        if end < 0:
            die(path + ": end of ipi_send_target not found")
        src = src[:start] + NEW_IPI + src[end + 3:]
        changed = True
    if changed:
        open(path, "w").write(src)
    print(("patched " if changed else "already patched ") + path)


def patch_yml(path):
    src = open(path).read()
    gicr_re = re.compile(r"(kernel: GICR_PPTR\n(?:\s*#[^\n]*\n)*\s*kernel_size: )0x100000")
    if gicr_re.search(src):
        src = gicr_re.sub(r"\g<1>0x200000", src)
        open(path, "w").write(src)
        print("patched " + path)
    elif re.search(r"kernel: GICR_PPTR\n(?:\s*#[^\n]*\n)*\s*kernel_size: 0x200000", src):
        print("already patched " + path)
    else:
        die(path + ": the GICR_PPTR region's kernel_size is not 0x100000")


def main():
    if len(sys.argv) != 2:
        die("usage: patch-sel4-16.py SEL4_SOURCE_DIR")
    tree = sys.argv[1]
    if open(tree + "/VERSION").read().strip() != "16.0.0":
        die(tree + " is not seL4 16.0.0")
    patch_gic(tree + "/src/arch/arm/machine/gic_v3.c")
    patch_yml(tree + "/tools/hardware.yml")


if __name__ == "__main__":
    main()
