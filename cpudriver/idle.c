/*
 * An idle core and its timer. The periodic tick exists to share a core
 * among runnable domains and to end timed waits; a core with nothing to
 * run needs neither until its earliest timed wait ends. Under emulation
 * every tick of an idle vCPU costs the host a thread's wake-up: a 64-CPU
 * machine left sleeping at 100 Hz used 0.66 host CPU-seconds a second of
 * it (about 75 us a tick on the development host, where 255 idle vCPUs
 * would take both host CPUs), and on hardware an idle core that is woken
 * 100 times a second never sleeps deeply. So an idle AP stops its periodic
 * timer, arms one interrupt for its earliest timed wait (a monitor's
 * heartbeat: 8 a second), and counts the ticks it slept through by the TSC
 * when something wakes it. The boot core keeps ticking: its ticks drain
 * the other cores' console lines, which arrive without an interrupt.
 * `periodic` on the kernel command line keeps every core ticking, to
 * compare (docs/user-space.md, Idle).
 */
#include "idle.h"
#include "core.h"
#include "notify.h"
#include "smp.h"
#include "x86_64/apic.h"
#include "x86_64/cpu.h"

static void halt_until_interrupt(void)
{
    __asm__ volatile("sti; hlt; cli" ::: "memory");
}

void idle_wait(void)
{
    /* selftest=die:N@MS counts the dying core's ticks. */
    if (core.is_bsp || boot_params.periodic || boot_params.die_core == core.core_id) {
        halt_until_interrupt();
        return;
    }
    uint64_t ticks0 = core.ticks, next = notify_next_deadline();
    if (next && next <= ticks0 + 1) {
        halt_until_interrupt();   /* due at the next tick anyway */
        return;
    }
    uint64_t tsc0 = rdtsc();
    apic_timer_oneshot(next ? (next - ticks0) * (core.apic_timer_hz / boot_params.timer_hz) : 0);
    core.idle_stops++;
    halt_until_interrupt();
    /* What is left of a tick carries over, or every stop would lose half a
     * tick on average (a monitor stops 40 times a second). */
    uint64_t period = core.tsc_hz / boot_params.timer_hz;
    uint64_t slept_tsc = rdtsc() - tsc0 + core.idle_rest_tsc;
    uint64_t slept = slept_tsc / period;
    core.idle_rest_tsc = slept_tsc % period;
    if (core.ticks < ticks0 + slept)
        core.ticks = ticks0 + slept;
    apic_timer_start(boot_params.timer_hz);
}
