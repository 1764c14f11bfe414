/*
 * Switching between a domain's threads (lib/thread/thread.c): the System V
 * callee-saved registers go on the old stack, the stack pointer into the
 * thread; the caller-saved ones are the compiler's business at the call.
 * The same code runs in the guest and in the host's unit tests.
 */
    .text
    .globl thread_switch
    .type thread_switch, @function
/* void thread_switch(uint64_t *save_rsp, uint64_t new_rsp) */
thread_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size thread_switch, . - thread_switch

    .globl thread_trampoline
    .type thread_trampoline, @function
/* A new thread's first switch returns here; thread_entry never returns.
 * The stack is aligned for the call (16 bytes before it, as the ABI asks)
 * and %rbp is zero so that a debugger's backtrace stops here. */
thread_trampoline:
    xorl %ebp, %ebp
    andq $-16, %rsp
    call thread_entry
    ud2
    .size thread_trampoline, . - thread_trampoline

    .section .note.GNU-stack, "", @progbits
