/* Per-core GDT, TSS and interrupt stacks. */
#ifndef ATOLL_GDT_H
#define ATOLL_GDT_H
#include <stdbool.h>
#include <stdint.h>

enum { IST_DOUBLE_FAULT = 1, IST_NMI = 2, IST_MACHINE_CHECK = 3, IST_COUNT = 3 };

void gdt_init(void);
/* Is addr on one of this core's IST stacks? Gives the stack's bounds. */
bool on_ist_stack(uint64_t addr, uint64_t *lo, uint64_t *hi);
#endif
