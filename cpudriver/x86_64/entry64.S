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

    /* From boot/ap_trampoline.S: rdi = this core's CR3, rsi = stack top,
     * rdx = its start table entry. */
    .globl ap_enter_kernel
ap_enter_kernel:
    movq %rdi, %cr3
    movq %rsi, %rsp
    xorl %ebp, %ebp
    movq %rdx, %rdi
    call ap_main
1:  cli
    hlt
    jmp 1b

    /*
     * percore_switch(dst, size, cr3): the boot core moves its writable
     * kernel state to its own block and switches to its own page tables,
     * which map the per-core range onto that block. Nothing may write the
     * state between the copy and the switch, so both happen here, without
     * touching the stack (interrupts are off). The return address is part
     * of the copied stack.
     */
    .globl percore_switch
percore_switch:
    movq %rdx, %r8
    movq %rsi, %rcx
    shrq $3, %rcx                   /* a multiple of 4096: eight bytes a step (string.c) */
    movabsq $__percore_start, %rsi
    rep movsq
    movq %r8, %cr3
    ret

    /* Each core's stack: in .bss, so private to the core like all writable
     * kernel state. */
    .bss
    .balign 4096
    .globl kstack, kstack_top
kstack:
    .skip KSTACK_SIZE
kstack_top:
    .section .note.GNU-stack, "", @progbits
