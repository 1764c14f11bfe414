/*
 * The boot floor's entry points. GRUB's multiboot2 loader starts the boot
 * CPU here in 32-bit protected mode, paging off, EBX = the boot information;
 * the other CPUs start in real mode at the trampoline, which floor.c copies
 * to TRAMPOLINE (below 1 MiB) before its INIT/SIPI broadcast. An AP only
 * counts itself in and halts.
 */
#define MB2_MAGIC 0xe85250d6
#define TRAMPOLINE 0x8000
#define STACK 4096

.section .multiboot, "a"
.align 8
mb2_header:
.long MB2_MAGIC
.long 0                             /* i386 */
.long mb2_header_end - mb2_header
.long -(MB2_MAGIC + (mb2_header_end - mb2_header))
.word 0, 0                          /* the end tag */
.long 8
mb2_header_end:

.section .text
.code32
.global _start
_start:
    cli
    lgdt gdtr
    ljmp $0x08, $1f
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $bsp_stack + STACK, %esp
    push %ebx                       /* the multiboot2 information */
    call bsp_main
2:  hlt
    jmp 2b

.code16
.global trampoline_start, trampoline_end
trampoline_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    lgdtl TRAMPOLINE + (tramp_gdtr - trampoline_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $ap_entry
.align 8
tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff        /* 0x08: code, flat 4 GiB */
    .quad 0x00cf92000000ffff        /* 0x10: data, flat 4 GiB */
tramp_gdtr:
    .word 23
    .long TRAMPOLINE + (tramp_gdt - trampoline_start)
trampoline_end:

.code32
ap_entry:
    mov $0x10, %ax
    mov %ax, %ds
    lock incl aps_up
3:  cli
    hlt
    jmp 3b

.section .data
.align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
gdtr:
    .word 23
    .long gdt

.section .bss
.align 16
bsp_stack:
    .skip STACK
.global aps_up
.align 4
aps_up:
    .skip 4
