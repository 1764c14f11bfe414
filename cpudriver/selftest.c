/*
 * Self-tests that fail on purpose (selftest.h).
 */
#include "selftest.h"
#include "console.h"
#include "panic.h"
#include "report.h"
#include "core.h"
#include "lib.h"
#include "smp.h"
#include "x86_64/cpu.h"
#include "x86_64/kernel_layout.h"

static void __attribute__((noinline)) selftest_fault(void)
{
    /* Nothing is mapped at the bottom of the address space on any core. */
    kprintf("core %u: selftest: reading unmapped address 0x1000\n", core.core_id);
    (void)*(volatile uint64_t *)0x1000;
}

static void __attribute__((noinline)) selftest_probe(void)
{
    /* Core 0's kernel block is a hole in every other core's direct map. */
    kprintf("core %u: selftest: reading core 0's kernel memory at 0x%llx\n", core.core_id,
            (unsigned long long)boot_params.probe_phys);
    (void)*(volatile uint64_t *)phys_to_virt(boot_params.probe_phys);
}

void selftest_run(void)
{
    if (boot_params.fault_core == core.core_id)
        selftest_fault();
    if (boot_params.probe_core == core.core_id)
        selftest_probe();
}

void selftest_before_user(void)
{
    if (boot_params.die_core != core.core_id || boot_params.die_ms != 0)
        return;
    /* Silent, not a panic: the boot core would learn of a panic and leave
     * the core out of every monitor's plan (sys_core_info), so the path
     * under test (a core the monitors count on that never speaks) would
     * depend on whether the panic came before core 0's monitor asked. */
    struct event e;
    event_begin(&e, "selftest_stop");
    event_u64(&e, "core", core.core_id);
    event_end(&e);
    irq_disable();
    for (;;)
        halt();
}

void selftest_tick(void)
{
    if (boot_params.die_core != core.core_id || boot_params.die_ms == 0 ||
        core.ticks * 1000 < (uint64_t)boot_params.die_ms * boot_params.timer_hz)
        return;
    panic("selftest: core %u dies %u ms after its timer started (selftest=die)", core.core_id,
          boot_params.die_ms);
}
