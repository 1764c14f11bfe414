/*
 * Boot core entry from GRUB (multiboot2): 32-bit protected mode, paging off,
 * EAX = magic, EBX = physical address of the boot information.
 *
 * Takes the first timestamp, builds boot page tables (identity map of the
 * first 4 GiB, the same 4 GiB at the direct map's base, and the kernel's
 * top-2-GiB window onto the first GiB), enters long mode and jumps to the
 * higher-half entry in cpudriver/x86_64/entry64.S.
 * The AP trampoline reuses these boot tables for its own switch to long mode.
 */
#include "x86_64/kernel_layout.h"

#define MB2_MAGIC     0xe85250d6
#define MB2_ARCH_I386 0

    .section .multiboot, "a"
    .balign 8
mb2_header:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    /* end tag */
    .balign 8
    .word 0, 0
    .long 8
mb2_header_end:

    .section .boot.text, "ax"
    .code32
    .globl multiboot_entry
multiboot_entry:
    movl %eax, %edi            /* GRUB's magic; rdtsc clobbers EAX */
    /* The boot time is measured from here. */
    rdtsc
    movl %eax, boot_tsc0
    movl %edx, boot_tsc0 + 4
    movl %edi, boot_magic
    movl %ebx, boot_mbi
    movl $boot_stack_top, %esp

    /* Long mode available? */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 29), %edx
    jz no_long_mode
    /* Remember NX support for EFER.NXE. */
    xorl %edi, %edi
    testl $(1 << 20), %edx
    jz 1f
    movl $(1 << 11), %edi
1:
    /* Boot PML4: [0] -> identity PDPT, [256] -> the same PDPT as the start
     * of the direct map (DIRECT_MAP_BASE), [511] -> kernel PDPT. */
    movl $boot_pdpt_low, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    movl %eax, boot_pml4 + 256 * 8
    movl $boot_pdpt_high, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4 + 511 * 8
    /* Identity PDPT: four PDs covering 0..4 GiB with 2 MiB pages. */
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt_low
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 8
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 16
    addl $4096, %eax
    movl %eax, boot_pdpt_low + 24
    /* Kernel PDPT entry 510 (0xffffffff80000000) -> first GiB's PD. */
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt_high + 510 * 8
    /* Fill the 2048 PD entries: phys = i * 2 MiB, present|writable|huge. */
    movl $boot_pd, %edx
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, (%edx, %ecx, 8)
    movl %ecx, %eax
    shrl $11, %eax             /* high dword: (i * 2 MiB) >> 32 */
    movl %eax, 4(%edx, %ecx, 8)
    incl %ecx
    cmpl $2048, %ecx
    jb 2b

    /* PAE, PGE; CR3; EFER.LME (+NXE); paging + write protect. */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7)), %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    orl %edi, %eax
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16)), %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

no_long_mode:
    /* Say why on COM1, then stop. */
    movl $no_lm_msg, %esi
3:  movb (%esi), %al
    testb %al, %al
    jz 4f
    movw $0x3f8, %dx
    outb %al, %dx
    incl %esi
    jmp 3b
4:  cli
    hlt
    jmp 4b

    .code64
long_mode_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $bsp_entry64, %rax
    jmp *%rax

    .section .boot.data, "aw"
    .balign 16
    .globl boot_gdt
boot_gdt:
    .quad 0
    .quad 0x00af9b000000ffff   /* 0x08: 64-bit code, accessed bit preset */
    .quad 0x00cf93000000ffff   /* 0x10: data, accessed bit preset */
    .quad 0x00cf9b000000ffff   /* 0x18: 32-bit code (AP trampoline) */
boot_gdt_end:
    .globl boot_gdt_ptr
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt
    .globl boot_tsc0, boot_mbi
    .balign 8
boot_tsc0: .quad 0
boot_mbi:  .quad 0
    .globl boot_magic
boot_magic: .long 0
no_lm_msg: .asciz "atoll: this CPU has no long mode (x86-64); cannot boot\r\n"

    .section .boot.bss, "aw", @nobits
    .balign 4096
    .globl boot_pml4
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4 * 4096
boot_stack:     .skip 4096
boot_stack_top:
