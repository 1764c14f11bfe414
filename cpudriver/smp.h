/*
 * Starting the other cores, and what the boot core knows about them.
 *
 * The boot core prepares, for every application processor (AP), a private
 * kernel memory block on the AP's NUMA node (its copy of all writable kernel
 * state, its page tables), a console channel, and an entry in the AP start
 * table; then it sends INIT-SIPI-SIPI and waits for each AP to check in over
 * its console channel. The start table and boot_params live in .bootshared:
 * written by the boot core only before any AP starts, read-only afterwards
 * on every core.
 */
#ifndef ATOLL_SMP_H
#define ATOLL_SMP_H

#include <stdbool.h>
#include <stdint.h>
#include "topology.h"
#include "x86_64/kernel_layout.h"

struct linechan;

/* One AP start table entry; boot/ap_trampoline.S reads apic_id, cr3 and
 * stack_top at fixed offsets (0, 8, 16), so the layout is part of the ABI. */
struct ap_start {
    uint32_t apic_id;
    uint32_t core_id;
    uint64_t cr3;          /* this core's page tables */
    uint64_t stack_top;    /* kernel virtual; the core's own copy of kstack */
    uint64_t kmem_phys;    /* the core's kernel memory block */
    uint64_t kmem_size;
    uint64_t console_phys; /* its console channel to the boot core */
    uint32_t node;         /* NUMA node of the CPU */
    uint32_t kmem_node;    /* NUMA node of kmem_phys, as SRAT says */
    uint64_t reserved;
};
_Static_assert(sizeof(struct ap_start) == AP_START_ENTRY_SIZE, "trampoline ABI");
_Static_assert(__builtin_offsetof(struct ap_start, cr3) == 8, "trampoline ABI");
_Static_assert(__builtin_offsetof(struct ap_start, stack_top) == 16, "trampoline ABI");

/* Facts every core needs, measured or decided once by the boot core. */
struct boot_params {
    uint64_t tsc_hz;        /* what one guest second is in TSC ticks: measured x timescale */
    uint64_t tsc_hz_measured;   /* against the PIT */
    uint32_t timescale;     /* "timescale=N": guest time N times slower than the host's */
    uint64_t apic_timer_hz; /* also x timescale */
    uint64_t boot_tsc0;
    bool x2apic;            /* every core puts its local APIC in x2APIC mode */
    bool no_smap;           /* "nosmap": no core turns SMAP on (docs/kvm.md) */
    uint32_t timer_hz;      /* periodic APIC timer rate on every core */
    bool periodic;          /* "periodic": idle cores tick too (idle.c) */
    /* Self-tests (kernel command line "selftest=..."), see main.c. */
    uint32_t fault_core;    /* "fault:N": core N takes a page fault when up */
    uint64_t probe_phys;    /* "probe:N": core N reads this (core 0's block) */
    uint32_t probe_core;
    uint32_t die_core;      /* "die:N@MS": core N panics MS ms after its timer started */
    uint32_t die_ms;
};
#define NO_CORE 0xffffffffu

/* Written by the boot core before it relocates itself; mapped read-only on
 * every core afterwards, so a late write faults. */
extern struct boot_params boot_params;

/* The boot core's record of each AP (its own .bss). */
struct ap_info {
    uint32_t apic_id;
    uint32_t core_id;
    uint32_t node;
    uint64_t kmem_phys, kmem_size;
    uint32_t kmem_node;
    struct linechan *console;   /* direct-map pointer */
    uint64_t console_next;      /* next sequence number to receive */
    bool listed;                /* in the start table (false: selftest) */
    bool up;                    /* checked in */
    bool panicked;
    bool user_idle;             /* its monitor has started and waited once */
    uint64_t checkin_tsc;
};

uint32_t smp_ap_count(void);
struct ap_info *smp_ap(uint32_t i);
void smp_note_checkin(struct ap_info *ap);

/* Prepare every AP from its planned kernel block (percore.h): its private
 * copy of the kernel state, console channel and start table entry. Runs on
 * the boot tables before the boot core relocates itself. `unlisted_apic` (or
 * NO_CORE) is left out of the start table, to test the report of a core that
 * never checks in. */
struct core_block;
errval_t smp_prepare(const struct topology *t, const struct core_block *blocks, uint32_t unlisted_apic);

/* Copy the AP trampoline to low memory and send INIT-SIPI-SIPI to every AP,
 * then wait up to `timeout_ms` for all to check in, printing their console
 * lines meanwhile. Returns the number of APs up. */
uint32_t smp_start_all(uint64_t timeout_ms);

/* After the boot report: start user space on every AP that has RAM for it,
 * the pilot first (smp.c says why). */
void smp_start_user(void);

/* TSC of the last check-in (boot_tsc0 if none). */
uint64_t smp_last_checkin_tsc(void);

#endif
