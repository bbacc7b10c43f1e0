/* A stand-in for the root task: an ELF at 0x400000 whose entry holds known bytes, plus bss. */
    .section .text, "ax"
    .global _start
_start:
    .ascii "ROOT-TASK"
    .balign 4096
    .bss
    .space 0x3000
