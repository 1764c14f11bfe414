/*
 * Interrupt entry stubs. Each pushes a zero error code where the CPU does
 * not push one, then its vector, so trap_dispatch always sees a struct
 * trap_frame (x86_64/trap.h) of the same shape.
 */
#define TRAP_FRAME_SIZE (22 * 8)
#define VEC_SYSCALL 0x100   /* not a hardware vector: marks a system call */
    .text
/* The general registers, in struct trap_frame's order (x86_64/trap.h). */
.macro SAVE_GPRS
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
.endm

.macro STUB vec, has_error
    .globl isr_\vec
isr_\vec:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vec
    jmp isr_common
.endm

/* Vectors whose exception pushes an error code: 8 10-14 17 21 29 30. */
STUB 0,0;  STUB 1,0;  STUB 2,0;  STUB 3,0;  STUB 4,0;  STUB 5,0;  STUB 6,0;  STUB 7,0
STUB 8,1;  STUB 9,0;  STUB 10,1; STUB 11,1; STUB 12,1; STUB 13,1; STUB 14,1; STUB 15,0
STUB 16,0; STUB 17,1; STUB 18,0; STUB 19,0; STUB 20,0; STUB 21,1; STUB 22,0; STUB 23,0
STUB 24,0; STUB 25,0; STUB 26,0; STUB 27,0; STUB 28,0; STUB 29,1; STUB 30,1; STUB 31,0
STUB 32,0   /* APIC timer */
STUB 33,0   /* wake-up IPI */
STUB 34,0   /* notification IPI (URPC wake-up) */
STUB 35,0   /* shootdown IPI (the ipi protocol) */
STUB 255,0  /* spurious */

isr_common:
    SAVE_GPRS
    cld
    movq %rsp, %rdi
    call trap_dispatch
trap_exit:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

/*
 * resume_user(const struct trap_frame *f): leave the kernel for a user
 * domain. Every kernel entry starts afresh at the top of this core's kernel
 * stack, so whatever the kernel was doing is dropped: copy the domain's saved
 * frame there and return through the common exit.
 */
    .globl resume_user
resume_user:
    movabsq $kstack_top, %rsp
    subq $TRAP_FRAME_SIZE, %rsp
    movq %rdi, %rsi
    movq %rsp, %rdi
    movl $TRAP_FRAME_SIZE, %ecx
    rep movsb
    jmp trap_exit

/*
 * System-call entry (IA32_LSTAR). The CPU left RIP in rcx and RFLAGS in r11,
 * cleared IF, DF and AC (IA32_FMASK), and did not switch stacks: take this
 * core's kernel stack (a per-core variable holds the user rsp meanwhile;
 * every core has its own copy at the same address) and build the same frame
 * an interrupt from user mode would.
 */
    .globl syscall_entry
syscall_entry:
    movq %rsp, syscall_user_rsp(%rip)
    movabsq $kstack_top, %rsp
    pushq $0x23                      /* ss: user data | RPL 3 */
    pushq syscall_user_rsp(%rip)
    pushq %r11                       /* rflags */
    pushq $0x2b                      /* cs: user code 64 | RPL 3 */
    pushq %rcx                       /* rip */
    pushq $0                         /* error */
    pushq $VEC_SYSCALL
    SAVE_GPRS
    cld
    xorl %ebp, %ebp
    movq %rsp, %rdi
    call syscall_handler             /* never returns: ends in resume_user */
    ud2

/* IA32_CSTAR: a `syscall` from 32-bit code. Its stack is the user's, so
 * take ours first and stop the caller. */
    .globl syscall_compat_entry
syscall_compat_entry:
    movabsq $kstack_top, %rsp
    xorl %ebp, %ebp
    call syscall_compat_handler
    ud2

    .bss
    .balign 8
syscall_user_rsp: .quad 0
    .text

    .section .rodata
    .balign 8
    .globl isr_table
isr_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr_\v
    .endr
    .globl isr_timer, isr_wakeup, isr_notify, isr_shootdown, isr_spurious
isr_timer:    .quad isr_32
isr_wakeup:   .quad isr_33
isr_notify:   .quad isr_34
isr_shootdown: .quad isr_35
isr_spurious: .quad isr_255
    .section .note.GNU-stack, "", @progbits
