/*
 * The cost model's self-test guest: entry points. QEMU's own multiboot
 * loader (-kernel) starts the boot CPU here in 32-bit protected mode with
 * paging off; the other CPUs start in real mode at the trampoline, which
 * selftest.c copies to TRAMPOLINE (below 1 MiB) before it sends INIT/SIPI.
 */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003          /* page-aligned modules, memory info */
#define TRAMPOLINE 0x8000
#define STACK 8192

.section .multiboot, "a"
.align 4
.long MB_MAGIC
.long MB_FLAGS
.long -(MB_MAGIC + MB_FLAGS)

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
    push %ebx                       /* the multiboot information */
    call bsp_main
2:  hlt
    jmp 2b

/* -- the other CPUs ------------------------------------------------------------- */
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
    mov %ax, %es
    mov %ax, %ss
    mov $1, %eax
    lock xadd %eax, ap_started      /* this CPU's stack: by order of arrival */
    inc %eax
    imul $STACK, %eax
    lea ap_stacks(%eax), %esp
    call ap_main
3:  hlt
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
.global ap_started
.align 4
ap_started:
    .skip 4
.align 16
ap_stacks:
    .skip STACK * 64
