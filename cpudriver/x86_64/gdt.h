/* Per-core GDT, TSS and interrupt stacks. */
#ifndef ATOLL_GDT_H
#define ATOLL_GDT_H
#include <stdbool.h>
#include <stdint.h>

enum { IST_DOUBLE_FAULT = 1, IST_NMI = 2, IST_MACHINE_CHECK = 3, IST_COUNT = 3 };

/* Segment selectors (gdt.c lays the GDT out in this order; sysret takes the
 * user ones from SEL_SYSRET_BASE, usermode.c). The user selectors carry
 * RPL 3. isr.S has the same numbers: keep them in step. */
#define SEL_KERNEL_CODE 0x08
#define SEL_KERNEL_DATA 0x10
#define SEL_SYSRET_BASE 0x18       /* 32-bit user code: kernel-only, a compat syscall stops its caller */
#define SEL_USER_DATA   (0x20 | 3)
#define SEL_USER_CODE   (0x28 | 3)

/* RFLAGS. */
#define RFLAGS_RESERVED1 0x002ull  /* always set */
#define RFLAGS_IF        0x200ull
#define RFLAGS_TF        0x100ull
#define RFLAGS_DF        0x400ull
#define RFLAGS_NT        0x4000ull
#define RFLAGS_AC        0x40000ull
/* What a domain starts with and always has: interrupts on. */
#define RFLAGS_USER_INITIAL (RFLAGS_IF | RFLAGS_RESERVED1)
/* Flags a domain may keep: the arithmetic ones, TF, DF, AC; IF is always
 * on, and IOPL, NT and the rest are never the domain's to set. */
#define RFLAGS_USER_MASK 0x40dd5ull

void gdt_init(void);
/* Is addr on one of this core's IST stacks? Gives the stack's bounds. */
bool on_ist_stack(uint64_t addr, uint64_t *lo, uint64_t *hi);
#endif
