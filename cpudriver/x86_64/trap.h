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

#define VEC_TIMER    32
#define VEC_WAKEUP   33
#define VEC_SPURIOUS 255

void idt_init(void);
void trap_dispatch(struct trap_frame *f);
#endif
