/* Interrupt and exception handling on this core. */
#ifndef ATOLL_TRAP_H
#define ATOLL_TRAP_H
#include <stdint.h>

struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;   /* pushed by the CPU */
};

_Static_assert(sizeof(struct trap_frame) == 22 * 8, "isr.S TRAP_FRAME_SIZE");

#define VEC_TIMER    32
#define VEC_WAKEUP   33
#define VEC_NOTIFY   34   /* another core (or this one) notified a waiting domain */
#define VEC_SHOOTDOWN 35  /* the ipi shootdown protocol: forget user translations (tlb_ipi.h) */
#define VEC_SPURIOUS 255
#define VEC_SYSCALL  0x100   /* pseudo-vector of a system call frame (isr.S) */

void idt_init(void);
void trap_dispatch(struct trap_frame *f);
/* Leave the kernel for user mode with the registers in *f (isr.S). */
_Noreturn void resume_user(const struct trap_frame *f);
#endif
