/*
 * A hostile guest for the seL4 VMM (support/qemu/hostile-guest.sh): an arm64 "kernel" Image
 * that the VMM boots like Linux (x0 = DTB) at guest EL1 and that uses the one route out of its
 * VM it has besides faults: HVC, which seL4 takes as a system call (x7 = the call, x0 = cptr).
 * It tries seL4's debug calls (a debug kernel needs no capability for them) and every endpoint
 * call on slot 1 of its CSpace (its fault endpoint), prints each result on the PL011 (the
 * VMM's emulated one, so every line comes out as "[guest ttyAMA0] ...") and powers off
 * through PSCI. Linked where the qemu-virt table loads the kernel (0x4000_0000): it runs
 * with its MMU off, so its pointers are physical.
 */
    .equ UART, 0x09000000

    .section .text
    .global _head
_head:
    /* arm64 Image header: code0/1, text_offset, image_size, flags, res, magic, res */
    b       start
    .word   0
    .quad   0
    .quad   _end - _head
    .quad   0xa                  /* LE, 4K pages, anywhere */
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .word   0

start:
    msr     daifset, #0xf
    adr     x0, stack_top
    mov     sp, x0
    ldr     x1, =UART
    mov     w2, #0x301                  /* UARTCR: UARTEN, TXE, RXE */
    str     w2, [x1, #0x30]
    adr     x0, m_start
    bl      puts

    /* seL4 16 system call numbers (libsel4 syscall.xml, debug build):
     * -9 DebugPutChar, -10 DebugDumpScheduler, -11 DebugHalt, -12 DebugCapIdentify,
     * -13 DebugSnapshot, -14 DebugNameThread, -15 DebugSendIPI. */
    mov     x19, #0
1:  adr     x0, m_try
    bl      puts
    adr     x20, calls
    add     x20, x20, x19, lsl #5       /* this call's entry: number, name, x0, x1 */
    ldr     x0, [x20, #8]
    bl      puts
    ldr     x7, [x20]
    ldr     x0, [x20, #16]              /* cptr 1 (the fault endpoint), or the argument */
    ldr     x1, [x20, #24]              /* message info (label, length), or the argument */
    mov     x2, #0
    mov     x3, #0
    mov     x6, #1
    hvc     #0
    mov     x22, x0
    adr     x0, m_x0
    bl      puts
    mov     x0, x22
    bl      puthex
    adr     x0, m_nl
    bl      puts
    add     x19, x19, #1
    cmp     x19, #NCALLS
    b.lo    1b

    adr     x0, m_done
    bl      puts
    ldr     x0, =0x84000008             /* PSCI SYSTEM_OFF over SMC */
    smc     #0
2:  wfi
    b       2b

puts:
    ldr     x1, =UART
1:  ldrb    w2, [x0], #1
    cbz     w2, 2f
    str     w2, [x1]
    b       1b
2:  ret

puthex:
    ldr     x1, =UART
    mov     x4, x0
    mov     x5, #60
1:  lsr     x2, x4, x5
    and     x2, x2, #0xf
    cmp     x2, #10
    add     x3, x2, #'0'
    add     x2, x2, #('a' - 10)
    csel    x2, x3, x2, lo
    str     w2, [x1]
    subs    x5, x5, #4
    b.ge    1b
    ret

    .balign 8
calls:
    /* number, name, x0, x1 */
    .quad -9,  n_putchar, 'F', 0
    .quad -10, n_dumpsched, 0, 0
    .quad -13, n_snapshot, 0, 0
    .quad -15, n_sendipi, 1, 1          /* DebugSendIPI(target core 1, SGI 1) */
    .quad -12, n_capidentify, 1, 0
    .quad -14, n_namethread, 1, 0
    .quad -5,  n_recv, 1, 0             /* Recv on cptr 1: the fault endpoint, no read right */
    .quad -8,  n_nbrecv, 1, 0
    .quad -7,  n_yield, 0, 0
    .quad -3,  n_send, 1, 0x1           /* Send on it: label 0, one word: not a fault */
    .quad -4,  n_nbsend, 1, 0x1
    .quad -1,  n_call, 1, 0x1           /* Call on it: the guest waits for a reply */
    .quad -11, n_halt, 0, 0             /* last: on a debug kernel this stops the whole machine */
    .equ NCALLS, 13

m_start:      .asciz "HOSTILE: start\r\n"
m_try:        .asciz "HOSTILE: hvc "
m_x0:         .asciz ": returned, x0 = 0x"
m_nl:         .asciz "\r\n"
m_done:       .asciz "HOSTILE: done, all calls returned\r\n"
n_putchar:    .asciz "seL4_DebugPutChar('F')"
n_dumpsched:  .asciz "seL4_DebugDumpScheduler"
n_snapshot:   .asciz "seL4_DebugSnapshot"
n_sendipi:    .asciz "seL4_DebugSendIPI(core 1, SGI 1)"
n_capidentify: .asciz "seL4_DebugCapIdentify(1)"
n_namethread: .asciz "seL4_DebugNameThread(1)"
n_recv:       .asciz "seL4_Recv(fault endpoint)"
n_nbrecv:     .asciz "seL4_NBRecv(fault endpoint)"
n_yield:      .asciz "seL4_Yield"
n_send:       .asciz "seL4_Send(fault endpoint, label 0)"
n_nbsend:     .asciz "seL4_NBSend(fault endpoint, label 0)"
n_call:       .asciz "seL4_Call(fault endpoint, label 0)"
n_halt:       .asciz "seL4_DebugHalt"
    .balign 8
    .ltorg
    .balign 16
    .space 4096
stack_top:
_end:
