/*
 * This core's CPU driver state.
 *
 * `core` is an ordinary global, and that is the point: every writable
 * kernel variable lives between __percore_start and __percore_end, which each
 * core maps to its own private copy in its own node's memory. So `core` (and
 * any other global) always means *this* core's instance; there is no way to
 * name another core's, and no CPU driver reads or writes another's state
 * after it has checked in.
 */
#ifndef ATOLL_CORE_H
#define ATOLL_CORE_H

#include <stdbool.h>
#include <stdint.h>

struct linechan;

struct core_state {
    uint32_t core_id;      /* dense id; the boot core is 0 */
    uint32_t apic_id;      /* as firmware listed it; checked against the hardware */
    uint32_t node;         /* NUMA node index */
    bool is_bsp;
    bool x2apic;           /* local APIC in x2APIC mode */
    bool nx;               /* EFER.NXE on: NX bits allowed in page tables */
    bool smep, smap;       /* supervisor mode execution/access prevention on */
    uint64_t tsc_hz;       /* calibrated once by the boot core, handed over */
    uint64_t apic_timer_hz;/* APIC timer input clock after the divider */
    uint64_t boot_tsc0;    /* TSC at the boot core's first instruction */
    uint64_t kmem_phys;    /* this core's kernel memory block */
    uint64_t kmem_size;
    uint32_t kmem_node;    /* NUMA node the block came from */
    uint64_t pml4_phys;    /* this core's page tables (inside the block) */
    uint64_t arena_next;   /* bump allocator inside the block (phys) */
    uint64_t arena_end;
    /* Scheduler ticks: one a timer interrupt, and those an idle core slept
     * through with its timer stopped, counted by the TSC (idle.c). */
    volatile uint64_t ticks;
    uint64_t timer_irqs;        /* APIC timer interrupts taken */
    uint64_t idle_stops;        /* idle waits with the periodic timer stopped */
    uint64_t idle_rest_tsc;     /* TSC cycles slept short of a whole tick */
    volatile bool woken;        /* a wake-up IPI arrived */
    struct linechan *console;   /* APs: channel to the boot core's console */
    uint64_t console_seq;       /* next sequence number to send on it */
    bool said_idle;             /* told the boot core its monitor waited once (smp.c) */
    bool poweroff_after_boot;
};

extern struct core_state core;

/* Allocate zeroed, page-aligned memory from this core's own block. */
void *core_arena_alloc(uint64_t size);

#endif
