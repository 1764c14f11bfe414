/* Notifications between cores; see notify.h. All state here is this core's. */
#include "notify.h"
#include "core.h"
#include "dispatcher.h"
#include "smp.h"
#include "bootinfo.h"
#include "topology.h"
#include "x86_64/apic.h"

static uint64_t generation;   /* notifications this core has taken */
static uint32_t waiters;      /* dispatchers sleeping in notify_wait */

static void finish_wait(struct dispatcher *d, errval_t result)
{
    d->notify_waiting = false;
    d->regs.rax = result;
    d->regs.rdx = generation;
    waiters--;
    dispatcher_make_runnable(d);
}

errval_t notify_send(uint32_t core_id)
{
    const struct topology *t = boot_topology();
    if (core_id >= t->ncpus)
        return ERR_INVALID_ARG;
    if (core_id == core.core_id)
        notify_arrived();
    else
        apic_send_ipi(t->cpus[core_id].apic_id, APIC_IPI_FIXED, VEC_NOTIFY);
    return ERR_OK;
}

errval_t notify_send_from(struct dispatcher *d, uint32_t core_id)
{
    if (core_id != core.core_id && !d->is_monitor) {
        if (d->notify_tick != core.ticks) {
            d->notify_tick = core.ticks;
            d->notify_sent = 0;
        }
        if (d->notify_sent >= NOTIFY_PER_TICK)
            return ERR_QUOTA;
        d->notify_sent++;
    }
    return notify_send(core_id);
}

bool notify_arrived(void)
{
    generation++;
    bool woke = false;
    for (struct dispatcher *d = dispatcher_first(); d && waiters; d = d->next)
        if (d->notify_waiting) {
            finish_wait(d, ERR_OK);
            woke = true;
        }
    return woke;
}

errval_t notify_wait(struct dispatcher *d, uint64_t token, uint64_t timeout_us, uint64_t *gen)
{
    *gen = generation;
    if (token != generation || d->msg_full)
        return ERR_OK;   /* something came since the caller last looked */
    uint64_t hz = boot_params.timer_hz;
    /* Clamp: a huge timeout must not wrap around to a short one. */
    uint64_t ticks = timeout_us > 1000000ull * 1000000 ? 1000000ull * hz : timeout_us * hz / 1000000;
    d->notify_deadline = timeout_us ? core.ticks + 1 + ticks : 0;
    d->notify_waiting = true;
    waiters++;
    dispatcher_block(d);
    return ERR_WOULD_BLOCK;
}

void notify_forget(struct dispatcher *d)
{
    if (d->notify_waiting) {
        d->notify_waiting = false;
        waiters--;
    }
}

void notify_wake(struct dispatcher *d)
{
    if (d->notify_waiting)
        finish_wait(d, ERR_OK);
}

uint64_t notify_next_deadline(void)
{
    uint64_t next = 0;
    for (struct dispatcher *d = dispatcher_first(); d && waiters; d = d->next)
        if (d->notify_waiting && d->notify_deadline && (!next || d->notify_deadline < next))
            next = d->notify_deadline;
    return next;
}

void notify_expire(void)
{
    for (struct dispatcher *d = dispatcher_first(); d && waiters; d = d->next)
        if (d->notify_waiting && d->notify_deadline && core.ticks >= d->notify_deadline)
            finish_wait(d, ERR_TIMEOUT);
}
