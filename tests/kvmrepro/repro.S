/*
 * The nested-KVM reproducer (tools/kvm-repro, docs/kvm.md): a bare guest of
 * one file that does, in order, only what Atoll's CPU driver does up to the
 * point where its user space stopped under this host's /dev/kvm ("KVM
 * internal error: emulation failure" at a `clac`), and says on the serial
 * port before and after each step where it is:
 *
 *   cpuid       leaf 7: does the virtual CPU offer SMEP and SMAP?
 *   long        64-bit mode, paging (the first 2 MiB supervisor-only, the
 *               next 2 MiB user), a 64-bit GDT, TSS and IDT
 *   smap        CR4.SMEP/SMAP set as the CPUID said (Atoll: usermode.c)
 *   stac, clac  in ring 0, outside any interrupt (Atoll: uaccess.c)
 *   user        iretq to ring 3, whose code does `int $0x80`
 *   trap        the gate's handler in ring 0, whose first instruction is
 *               `clac` when SMAP is on (Atoll's syscall/interrupt path)
 *
 * It ends through isa-debug-exit with status 0 after the last step, or 1
 * from a fault handler (vector printed). QEMU's -kernel multiboot loader
 * starts it in 32-bit protected mode, paging off, at _start.
 *
 * Every step is architecturally valid where CPUID offers the feature: an
 * emulator that stops on one of them is wrong, not the guest.
 */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003
#define COM1 0x3f8
#define USER_BASE 0x200000          /* the user page: 2-4 MiB, US=1 */
#define KSTACK 8192

.section .multiboot, "a"
.align 4
.long MB_MAGIC
.long MB_FLAGS
.long -(MB_MAGIC + MB_FLAGS)

/* print the NUL-terminated string at \str (32- or 64-bit code alike) */
.macro SAY str
    lea \str, %esi
    call say32
.endm
.macro SAY64 str
    lea \str(%rip), %rsi
    call say64
.endm

.section .text
.code32
.global _start
_start:
    cli
    mov $kstack + KSTACK, %esp
    SAY m_start

    /* cpuid: leaf 7 sub 0, EBX bit 7 SMEP, bit 20 SMAP */
    SAY m_cpuid
    xor %eax, %eax
    cpuid
    cmp $7, %eax
    jb 1f
    mov $7, %eax
    xor %ecx, %ecx
    cpuid
    mov %ebx, %eax
    shr $7, %eax
    and $1, %eax
    mov %eax, has_smep
    shr $20, %ebx
    and $1, %ebx
    mov %ebx, has_smap
1:  SAY m_smep
    mov has_smep, %eax
    call digit32
    SAY m_smap
    mov has_smap, %eax
    call digit32
    SAY m_nl

    /* long: PML4[0] -> PDPT[0] -> PD; PD[0] = 0-2 MiB supervisor, PD[1] = 2-4 MiB user */
    SAY m_long
    movl $pdpt + 0x7, pml4          /* present, writable, user (the leaf decides) */
    movl $pd + 0x7, pdpt
    movl $0x000083, pd              /* 2 MiB page, present, writable, supervisor */
    movl $USER_BASE + 0x87, pd + 8  /* 2 MiB page, present, writable, user */
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax              /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx           /* EFER.LME */
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax            /* PG, PE */
    mov %eax, %cr0
    lgdt gdtr
    ljmp $0x08, $long_mode

/* say32: print the string at %esi on COM1 */
say32:
    push %eax
    push %edx
1:  movb (%esi), %al
    test %al, %al
    jz 2f
    mov $COM1, %dx
    outb %al, %dx
    inc %esi
    jmp 1b
2:  pop %edx
    pop %eax
    ret

/* digit32: print %eax (0..9) as a digit */
digit32:
    push %edx
    add $'0', %al
    mov $COM1, %dx
    outb %al, %dx
    pop %edx
    ret

.code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    lea kstack + KSTACK(%rip), %rsp
    /* the TSS descriptor (0x28): base and limit of tss */
    lea tss(%rip), %rax
    mov %ax, gdt + 0x28 + 2(%rip)
    shr $16, %rax
    mov %al, gdt + 0x28 + 4(%rip)
    mov %ah, gdt + 0x28 + 7(%rip)
    shr $16, %rax
    mov %eax, gdt + 0x28 + 8(%rip)
    lea kstack + KSTACK(%rip), %rax
    mov %rax, tss + 4(%rip)         /* RSP0 */
    mov $0x28, %ax
    ltr %ax
    /* the IDT: vectors 0-31 to `fault`, 0x80 (DPL 3) to `trap` */
    lea idt(%rip), %rdi
    xor %ecx, %ecx
2:  lea faults(%rip), %rax
    imul $16, %rcx, %rdx
    add %rdx, %rax                  /* faults + 16 * vector */
    xor %edx, %edx
    call set_gate
    inc %ecx
    cmp $32, %ecx
    jb 2b
    mov $0x80, %ecx
    lea trap(%rip), %rax
    mov $3, %edx
    call set_gate
    lidt idtr(%rip)
    /* the user code to the user page, before SMAP forbids ring 0 to write it */
    lea user_code(%rip), %rsi
    mov $USER_BASE, %rdi
    mov $(user_code_end - user_code), %rcx
    rep movsb
    SAY64 m_ok

    /* smap: CR4.SMEP and CR4.SMAP as offered */
    SAY64 m_cr4
    mov %cr4, %rax
    cmpl $0, has_smep(%rip)
    je 3f
    or $(1 << 20), %rax
3:  cmpl $0, has_smap(%rip)
    je 4f
    or $(1 << 21), %rax
4:  mov %rax, %cr4
    SAY64 m_ok

    cmpl $0, has_smap(%rip)
    je 5f
    SAY64 m_stac
    stac
    SAY64 m_ok
    SAY64 m_clac
    clac
    SAY64 m_ok
5:
    /* user: copy the user code to the user page and iretq to it in ring 3 */
    SAY64 m_user
    pushq $0x23                     /* SS: user data, RPL 3 */
    pushq $USER_BASE + 0x1000       /* RSP */
    pushq $0x2                      /* RFLAGS: interrupts off (the BIOS's PIC is live) */
    pushq $0x1b                     /* CS: user code, RPL 3 */
    pushq $USER_BASE                /* RIP */
    iretq

/* set_gate: IDT entry %ecx -> handler %rax, DPL %edx, an interrupt gate on CS 0x08 */
set_gate:
    push %rbx
    imul $16, %rcx, %rbx
    add %rdi, %rbx
    mov %ax, (%rbx)
    movw $0x08, 2(%rbx)
    shl $5, %edx
    or $0x8e, %edx                  /* present, 64-bit interrupt gate */
    movb $0, 4(%rbx)
    mov %dl, 5(%rbx)
    shr $16, %rax
    mov %ax, 6(%rbx)
    shr $16, %rax
    mov %eax, 8(%rbx)
    movl $0, 12(%rbx)
    pop %rbx
    ret

/* The gate user mode calls: Atoll's entry path starts with clac. */
trap:
    cmpl $0, has_smap(%rip)
    je 1f
    clac
1:  SAY64 m_trap
    SAY64 m_done
    mov $0, %al
    jmp finish

/* faults: 32 stubs of 16 bytes, each loading its vector */
.align 16
faults:
.set v, 0
.rept 32
    .align 16
    mov $v, %bl
    jmp fault
.set v, v + 1
.endr
fault:
    SAY64 m_fault
    movzbl %bl, %eax
    call hex64
    SAY64 m_nl
    mov $1, %al
finish:
    mov $0xf4, %dx                  /* isa-debug-exit: QEMU exits (al << 1) | 1 */
    outb %al, %dx
6:  hlt
    jmp 6b

/* say64: print the string at %rsi */
say64:
    push %rax
    push %rdx
1:  movb (%rsi), %al
    test %al, %al
    jz 2f
    mov $COM1, %dx
    outb %al, %dx
    inc %rsi
    jmp 1b
2:  pop %rdx
    pop %rax
    ret

/* hex64: print %eax (a byte) as two hex digits */
hex64:
    push %rcx
    mov $2, %ecx
    rol $24, %eax
1:  rol $4, %eax
    push %rax
    and $0xf, %al
    add $'0', %al
    cmp $'9', %al
    jbe 2f
    add $('a' - '9' - 1), %al
2:  mov $COM1, %dx
    outb %al, %dx
    pop %rax
    loop 1b
    pop %rcx
    ret

/* The user code, copied to USER_BASE: one system call, then nothing. */
user_code:
    int $0x80
1:  jmp 1b
user_code_end:

.section .rodata
m_start: .asciz "repro: start\n"
m_cpuid: .asciz "repro: step cpuid: "
m_smep:  .asciz "smep="
m_smap:  .asciz " smap="
m_nl:    .asciz "\n"
m_long:  .asciz "repro: step long ... "
m_cr4:   .asciz "repro: step smap (CR4.SMEP/SMAP as offered) ... "
m_stac:  .asciz "repro: step stac (ring 0) ... "
m_clac:  .asciz "repro: step clac (ring 0) ... "
m_user:  .asciz "repro: step user (iretq to ring 3, int $0x80) ... "
m_trap:  .asciz "ok\nrepro: step trap (clac first in the gate from ring 3) ... ok\n"
m_ok:    .asciz "ok\n"
m_done:  .asciz "repro: done\n"
m_fault: .asciz "\nrepro: fault, vector 0x"

.section .data
.align 8
gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: kernel code, 64-bit */
    .quad 0x00cf92000000ffff        /* 0x10: kernel data */
    .quad 0x00affa000000ffff        /* 0x18: user code, 64-bit, DPL 3 */
    .quad 0x00cff2000000ffff        /* 0x20: user data, DPL 3 */
    .quad 0x0000890000000067        /* 0x28: TSS (base filled in), 16 bytes */
    .quad 0
gdtr:
    .word gdtr - gdt - 1
    .long gdt
    .long 0
.align 8
idtr:
    .word 256 * 16 - 1
    .long idt                       /* below 4 GiB: the upper half is 0 */
    .long 0
has_smep: .long 0
has_smap: .long 0

.section .bss
.align 4096
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 4096
idt:  .skip 256 * 16
.align 16
tss:  .skip 104
.align 16
kstack: .skip KSTACK
