/*
 * Application processor start code. The boot core copies this page to
 * TRAMPOLINE_ADDR (0x8000) and sends INIT-SIPI-SIPI with vector 0x08; every
 * AP starts here in real mode, all of them possibly at once, so the code uses
 * no stack and writes no memory until it owns its own.
 *
 * real mode -> 32-bit protected mode -> long mode on the shared boot page
 * tables -> look up this CPU's APIC id in ap_start_table (filled in by the
 * boot core) -> jump to the higher half, where ap_enter_kernel switches to
 * the core's own page tables and stack.
 */
#include "x86_64/kernel_layout.h"

    .section .trampoline, "ax"
    .code16
    .globl ap_trampoline
ap_trampoline:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl tramp_gdt_ptr
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $tramp32

    .code32
tramp32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7)), %eax     /* PAE, PGE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    /* NX supported? (same test as the boot core) */
    xorl %edi, %edi
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 20), %edx
    jz 1f
    movl $(1 << 11), %edi
1:  movl $0xc0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax                  /* LME */
    orl %edi, %eax
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16)), %eax   /* PG, WP */
    movl %eax, %cr0
    ljmp $0x08, $tramp64

    .code64
tramp64:
    /* Our APIC id: x2APIC id from leaf 0xb when the CPU has that leaf,
     * else the 8-bit id from leaf 1. */
    xorl %eax, %eax
    cpuid
    cmpl $0xb, %eax
    jb 2f
    movl $0xb, %eax
    xorl %ecx, %ecx
    cpuid
    testl %ebx, %ebx             /* leaf 0xb present but empty: use leaf 1 */
    jz 2f
    movl %edx, %r8d
    jmp 3f
2:  movl $1, %eax
    cpuid
    shrl $24, %ebx
    movl %ebx, %r8d
3:  /* Find our entry; rsi walks the table, rcx counts down. */
    movabsq $ap_start_count, %rax
    movl (%rax), %ecx
    movabsq $ap_start_table, %rsi
4:  testl %ecx, %ecx
    jz not_listed
    cmpl (%rsi), %r8d
    je found
    addq $AP_START_ENTRY_SIZE, %rsi
    decl %ecx
    jmp 4b
found:
    movq %rsi, %rdx              /* the entry itself, for ap_main */
    movq 8(%rsi), %rdi           /* this core's page tables */
    movq 16(%rsi), %rsi          /* this core's stack top (higher half) */
    movabsq $ap_enter_kernel, %rax
    jmp *%rax
not_listed:
    /* The boot core did not expect us: stay parked; it reports the missing
     * check-in by APIC id. */
    cli
    hlt
    jmp not_listed

    .balign 8
tramp_gdt_ptr:
    .word 31
    .long boot_gdt
