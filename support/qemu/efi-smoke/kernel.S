/*
 * A stand-in for seL4's kernel.elf, for the EFI loader's smoke test (efi-smoke.sh): linked
 * where seL4 for QEMU virt is (virtual 0x80_6000_0000, physical 0x6000_0000), entered the way
 * seL4 is. Every core records what it was given; core 0 waits for all four, checks them,
 * prints a report on the PL011 and powers the machine off with PSCI SYSTEM_OFF.
 *
 * Checked: EL2; TPIDR_EL1 = logical core ID (seL4's _start picks the core's stack with it);
 * each core's MPIDR is a different one; x0..x5 the same on every core; x0 < x1, both page
 * aligned; the root task's entry bytes at x0 + (x3 - ROOT_VBASE) (pv_offset applied); the
 * device tree's magic at x4 and its size in x5; TCR_EL2 = seL4's TCR_EL2_DEFAULT (44-bit PA);
 * MAIR_EL2 as seL4 numbers its types; the MMU and caches on; running at the linked address.
 */
    .equ UART, 0x09000000
    .equ CORES, 4
    .equ ROOT_VBASE, 0x400000
    .equ ROOT_MAGIC, 0x5341542d544f4f52  /* "ROOT-TAS", little-endian */
    .equ TCR_WANT, 0x80843510
    .equ MAIR_WANT, 0x0000aaff440c0400

    .section .text.start, "ax"
    .global _start
_start:
    mrs x9, tpidr_el1
    cmp x9, #CORES
    b.hs hang
    adrp x10, slots
    add x10, x10, :lo12:slots
    lsl x11, x9, #7              /* 128 bytes a slot */
    add x10, x10, x11
    stp x0, x1, [x10, #0]
    stp x2, x3, [x10, #16]
    stp x4, x5, [x10, #32]
    mrs x12, mpidr_el1
    and x12, x12, #0xffffff
    mrs x13, CurrentEL
    stp x12, x13, [x10, #48]
    mrs x12, tcr_el2
    mrs x13, mair_el2
    stp x12, x13, [x10, #64]
    mrs x12, sctlr_el2
    str x12, [x10, #80]
    mov x12, #1
    add x13, x10, #88
    stlr x12, [x13]              /* checked in */
    cbnz x9, hang

    /* Core 0: a stack of its own, then wait for the others. */
    adrp x0, stack_top
    add x0, x0, :lo12:stack_top
    mov sp, x0
    mov x20, #0
wait:
    adrp x10, slots
    add x10, x10, :lo12:slots
    mov x21, #1
    mov x22, #0
1:  lsl x11, x21, #7
    add x11, x10, x11
    add x11, x11, #88
    ldar x12, [x11]
    add x22, x22, x12
    add x21, x21, #1
    cmp x21, #CORES
    b.lo 1b
    cmp x22, #(CORES - 1)
    b.eq report
    add x20, x20, #1
    ldr x23, =100000000
    cmp x20, x23
    b.lo wait
    adr x0, msg_missing
    bl puts
    b fail

report:
    mov x19, #0                  /* failures */
    mov x21, #0
2:  adr x0, msg_core
    bl puts
    mov x0, x21
    bl puthex
    lsl x11, x21, #7
    add x24, x10, x11
    adr x0, msg_mpidr
    bl puts
    ldr x0, [x24, #48]
    bl puthex
    adr x0, msg_el
    bl puts
    ldr x0, [x24, #56]
    lsr x0, x0, #2
    bl puthex
    mov x25, #0
3:  adr x0, msg_arg
    bl puts
    ldr x0, [x24, x25, lsl #3]
    bl puthex
    ldr x1, [x10, x25, lsl #3]   /* core 0's */
    cmp x0, x1
    b.eq 4f
    add x19, x19, #1
4:  add x25, x25, #1
    cmp x25, #6
    b.lo 3b
    ldr x0, [x24, #56]
    cmp x0, #(2 << 2)
    b.eq 5f
    add x19, x19, #1
5:  ldr x0, [x24, #48]           /* MPIDR Aff0 = core on QEMU virt */
    cmp x0, x21
    b.eq 6f
    add x19, x19, #1
6:  ldr x0, [x24, #64]
    ldr x1, =TCR_WANT
    cmp x0, x1
    b.eq 7f
    adr x0, msg_tcr
    bl puts
    add x19, x19, #1
7:  ldr x0, [x24, #72]
    ldr x1, =MAIR_WANT
    cmp x0, x1
    b.eq 8f
    adr x0, msg_mair
    bl puts
    add x19, x19, #1
8:  ldr x0, [x24, #80]
    tst x0, #1                   /* M */
    b.eq 10f
    tst x0, #4                   /* C */
    b.ne 9f
10: adr x0, msg_mmu
    bl puts
    add x19, x19, #1
9:  adr x0, msg_nl
    bl puts
    add x21, x21, #1
    cmp x21, #CORES
    b.lo 2b

    /* The arguments themselves (core 0's; the loop above compared the others with them). */
    ldp x0, x1, [x10, #0]
    ldp x2, x3, [x10, #16]
    ldp x4, x5, [x10, #32]
    orr x6, x0, x1
    tst x6, #0xfff
    b.ne bad_ui
    cmp x0, x1
    b.hs bad_ui
    sub x6, x3, #ROOT_VBASE
    add x6, x6, x0               /* entry's physical address */
    cmp x6, x1
    b.hs bad_ui
    ldr x7, [x6]
    ldr x8, =ROOT_MAGIC
    cmp x7, x8
    b.ne bad_ui
    adr x0, msg_ui_ok
    bl puts
    ldp x4, x5, [x10, #32]
    ldr w7, [x4]
    ldr w8, =0xedfe0dd0          /* 0xd00dfeed, big-endian in memory */
    cmp w7, w8
    b.ne bad_dtb
    ldr w7, [x4, #4]
    rev w7, w7
    cmp x7, x5
    b.ne bad_dtb
    adr x0, msg_dtb_ok
    bl puts
    adr x0, _start
    ldr x1, =_start
    cmp x0, x1
    b.ne bad_va
    adr x0, msg_va_ok
    bl puts
    cbnz x19, fail
    adr x0, msg_pass
    bl puts
    b off

bad_ui:
    adr x0, msg_bad_ui
    bl puts
    b fail
bad_dtb:
    adr x0, msg_bad_dtb
    bl puts
    b fail
bad_va:
    adr x0, msg_bad_va
    bl puts
fail:
    adr x0, msg_fail
    bl puts
off:
    ldr x0, =0x84000008          /* PSCI SYSTEM_OFF */
    smc #0
hang:
    wfe
    b hang

/* puts(x0): NUL-terminated string. Clobbers x0-x3. */
puts:
    ldr x1, =UART
1:  ldrb w2, [x0], #1
    cbz w2, 3f
2:  ldr w3, [x1, #0x18]
    tbnz w3, #5, 2b
    str w2, [x1]
    b 1b
3:  ret

/* puthex(x0): "0x" and 16 hex digits. Clobbers x0-x5. */
puthex:
    ldr x1, =UART
    mov x4, x0
    mov w2, #'0'
    str w2, [x1]
    mov w2, #'x'
    str w2, [x1]
    mov x5, #60
1:  lsr x2, x4, x5
    and x2, x2, #0xf
    cmp x2, #10
    add x3, x2, #'0'
    add x2, x2, #('a' - 10)
    csel x2, x3, x2, lo
2:  ldr w3, [x1, #0x18]
    tbnz w3, #5, 2b
    str w2, [x1]
    subs x5, x5, #4
    b.ge 1b
    ret

msg_core:    .asciz "fake-sel4: core "
msg_mpidr:   .asciz " mpidr "
msg_el:      .asciz " EL "
msg_arg:     .asciz " "
msg_tcr:     .asciz " TCR_EL2-WRONG"
msg_mair:    .asciz " MAIR_EL2-WRONG"
msg_mmu:     .asciz " MMU-OFF"
msg_nl:      .asciz "\r\n"
msg_missing: .asciz "fake-sel4: not every core entered\r\n"
msg_ui_ok:   .asciz "fake-sel4: root task image ok (entry bytes at x0 + x3 - vbase)\r\n"
msg_dtb_ok:  .asciz "fake-sel4: device tree ok (magic at x4, totalsize = x5)\r\n"
msg_va_ok:   .asciz "fake-sel4: running at the linked virtual address\r\n"
msg_bad_ui:  .asciz "fake-sel4: root task image WRONG\r\n"
msg_bad_dtb: .asciz "fake-sel4: device tree WRONG\r\n"
msg_bad_va:  .asciz "fake-sel4: not at the linked address\r\n"
msg_pass:    .asciz "fake-sel4: PASS\r\n"
msg_fail:    .asciz "fake-sel4: FAIL\r\n"
    .balign 8
    .ltorg

    .bss
    .balign 4096
slots:  .space 128 * CORES
    .balign 16
stack:  .space 4096
stack_top:
