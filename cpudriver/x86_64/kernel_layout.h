/* Kernel virtual layout constants and the linker symbols that delimit it
 * (see kernel.lds). Shared by C and assembly. */
#ifndef ATOLL_KERNEL_LAYOUT_H
#define ATOLL_KERNEL_LAYOUT_H

#define KERNEL_VMA      0xffffffff80000000
#define DIRECT_MAP_BASE 0xffff800000000000   /* all RAM, phys + base */
#define LAPIC_VA        0xffffffffffe00000   /* uncached local APIC window */
#define TRAMPOLINE_ADDR 0x8000

#define KSTACK_SIZE     (16 * 1024)
#define IST_STACK_SIZE  (8 * 1024)
#define AP_START_ENTRY_SIZE 64       /* struct ap_start, see smp.h */

#ifndef __ASSEMBLER__
#include <stdint.h>
extern char __kernel_phys_start[], __kernel_phys_end[];
extern char __text_start[], __text_end[], __rodata_start[], __rodata_end[];
extern char __percore_start[], __percore_end[], __data_start[], __data_end[];
extern char __bss_start[], __bss_end[];
extern char __bootshared_start[], __bootshared_end[], __bootshared_vars[], __data_template[];
extern char __trampoline_lma[], __trampoline_start[], __trampoline_end[];

/* Boot core data written only before the other cores start, read-only on
 * every core afterwards (kernel.lds). */
#define BOOTSHARED __attribute__((section(".bootshared")))

static inline uint64_t kvirt_to_phys(const void *p) { return (uint64_t)p - KERNEL_VMA; }
static inline void *phys_to_virt(uint64_t phys) { return (void *)(phys + DIRECT_MAP_BASE); }
#endif
#endif
