/* 64-bit entry points of the CPU driver, for the boot core and for APs. */
#include "x86_64/kernel_layout.h"

    .text
    /* From boot/multiboot2_entry.S, on the boot page tables. */
    .globl bsp_entry64
bsp_entry64:
    movabsq $kstack_top, %rsp
    xorl %ebp, %ebp
    /* Keep a pristine copy of .data before any C code writes it: every
     * other core's private .data starts as this copy. */
    movabsq $__data_start, %rsi
    movabsq $__data_template, %rdi
    movabsq $__data_end, %rcx
    subq %rsi, %rcx
    rep movsb
    call bsp_main
1:  cli
    hlt
    jmp 1b

    /* From boot/ap_trampoline.S: rdi = this core's CR3, rsi = stack top. */
    .globl ap_enter_kernel
ap_enter_kernel:
    movq %rdi, %cr3
    movq %rsi, %rsp
    xorl %ebp, %ebp
    call ap_main
1:  cli
    hlt
    jmp 1b

    /* Each core's stack: in .bss, so private to the core like all writable
     * kernel state. */
    .bss
    .balign 4096
    .globl kstack, kstack_top
kstack:
    .skip KSTACK_SIZE
kstack_top:
    .section .note.GNU-stack, "", @progbits
