/*
 * The kernel command line's options (docs/boot-report.md lists them): read
 * once by the boot core; a value it cannot use is a warning, never a stop.
 */
#ifndef ATOLL_BOOT_OPTIONS_H
#define ATOLL_BOOT_OPTIONS_H
#include <stdbool.h>
#include <stdint.h>

struct boot_options {
    bool poweroff;            /* poweroff: end the machine after the boot report */
    bool no_x2apic;           /* nox2apic: stay in xAPIC mode */
    bool no_smap;             /* nosmap: leave SMAP off (hosts whose KVM cannot run stac/clac) */
    uint64_t smp_timeout_ms;  /* smp_timeout_ms=N: how long to wait for check-ins */
    uint32_t timer_hz;        /* timer_hz=N: scheduler ticks per second, 1..10000 */
    bool periodic;            /* periodic: an idle core's timer ticks too (idle.c) */
    uint32_t timescale;       /* timescale=N: guest time runs N times slower than the host's, 1..1000 */
    /* selftest=...: make a core fail on purpose (selftest.h); NO_CORE if not */
    uint32_t fault_core, probe_core, unlisted_apic;
    bool panic_selftest;
    /* selftest=die:N@MS: core N's CPU driver panics (interrupts off, halted
     * for good) MS ms after its timer started: a dead core (docs/restart.md) */
    uint32_t die_core, die_ms;
};

void boot_options_parse(struct boot_options *o);
#endif
