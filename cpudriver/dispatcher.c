/* Dispatchers and this core's scheduler; see dispatcher.h. */
#include "dispatcher.h"
#include "idle.h"
#include "linechan.h"
#include <atoll/abi/domain.h>
#include "domain.h"
#include "console.h"
#include "core.h"
#include "notify.h"
#include "obituary.h"
#include "lib.h"
#include "x86_64/cpu.h"
#include "x86_64/gdt.h"
#include "x86_64/kernel_layout.h"

#define STRIDE1 (1u << 20)

static struct dispatcher *all;       /* this core's domains (live dispatchers) */
static uint64_t list_gen;            /* moves whenever `all` gains or loses one */
static struct dispatcher *current;
static uint64_t global_pass;         /* pass of the last dispatcher run */

struct dispatcher *dispatcher_current(void) { return current; }
struct dispatcher *dispatcher_of(const struct capability *cap) { return phys_to_virt(cap->base); }
struct dispatcher *dispatcher_first(void) { return all; }
uint64_t dispatcher_list_gen(void) { return list_gen; }

static void set_name(struct dispatcher *d, const char *name)
{
    size_t n = strlen(name);
    if (n >= sizeof d->name)
        n = sizeof d->name - 1;
    memcpy(d->name, name, n);
    d->name[n] = 0;
}

void dispatcher_init(struct dispatcher *d, const char *name, uint32_t id)
{
    set_name(d, name);
    d->id = id;
    d->state = DOMAIN_STOPPED;
    d->priority = PRIORITY_DEFAULT;
    d->recv_slot = LMP_NO_CAP;
    d->pass = global_pass;
    d->live = true;
    d->prev = 0;
    d->next = all;
    if (all)
        all->prev = d;
    all = d;
    list_gen++;
}

void dispatcher_init_inert(struct dispatcher *d, struct dispatcher *maker)
{
    set_name(d, "(inert)");
    d->state = DOMAIN_STOPPED;
    d->priority = PRIORITY_DEFAULT;
    d->recv_slot = LMP_NO_CAP;
    d->maker = maker;
    d->made_next = maker->made;
    maker->made = d;
    maker->nmade++;
}

bool dispatcher_can_make(const struct dispatcher *maker, uint64_t count)
{
    return count <= DISPATCHERS_PER_DOMAIN && maker->nmade + count <= DISPATCHERS_PER_DOMAIN;
}

void dispatcher_destroyed(struct dispatcher *d)
{
    if (d->live) {
        domain_ended_under(d, "its memory was revoked");
        obituary_record(d);
        if (d->prev)
            d->prev->next = d->next;
        else
            all = d->next;
        if (d->next)
            d->next->prev = d->prev;
        d->live = false;
        d->next = d->prev = 0;
        list_gen++;
    }
    /* An inert one leaves its maker's count; a maker's inert ones forget it
     * (at most DISPATCHERS_PER_DOMAIN either way). */
    if (d->maker) {
        for (struct dispatcher **p = &d->maker->made; *p; p = &(*p)->made_next)
            if (*p == d) {
                *p = d->made_next;
                d->maker->nmade--;
                break;
            }
        d->maker = 0;
    }
    for (struct dispatcher *m = d->made; m; m = m->made_next)
        m->maker = 0;
    d->made = 0;
    notify_forget(d);
    d->state = DOMAIN_STOPPED;
    if (current == d)
        current = 0;
}

void dispatcher_make_runnable(struct dispatcher *d)
{
    if (d->pass < global_pass)
        d->pass = global_pass;   /* no banked credit from sleeping */
    /* The monitor woken (a message from another core, a local request)
     * runs before whoever has the core, as an interrupt handler would: at
     * an equal pass a domain that spins kept the core until the next timer
     * tick, and every message to this core's monitor waited that long (a
     * TLB shootdown to a core running the domain's thread took a tick a
     * hop: 10 ms). One unit of pass ahead is enough to be picked. */
    if (d->is_monitor && current && current != d && d->pass >= current->pass)
        d->pass = current->pass ? current->pass - 1 : 0;
    d->state = DOMAIN_RUNNABLE;
    d->waiting = false;
}

void dispatcher_block(struct dispatcher *d) { d->state = DOMAIN_BLOCKED; }

static struct dispatcher *pick(void)
{
    struct dispatcher *best = 0;
    for (struct dispatcher *d = all; d; d = d->next)
        if (d->state == DOMAIN_RUNNABLE && d->pml4 && (!best || d->pass < best->pass))
            best = d;
    return best;
}


static bool canonical(uint64_t a) { return a < (1ull << 47) || a >= 0xffff800000000000ull; }

void dispatcher_run(struct dispatcher *d)
{
    d->regs.rflags = (d->regs.rflags & RFLAGS_USER_MASK) | RFLAGS_USER_INITIAL;
    d->regs.cs = SEL_USER_CODE;
    d->regs.ss = SEL_USER_DATA;
    if (d->regs.rip >= USER_MAX || !canonical(d->regs.rsp)) {
        /* iretq to a non-canonical address faults in ring 0 on real CPUs
         * (a `syscall` in the last user page returns to 0x800000000000). */
        obituary_note(d, DOMAIN_END_FAULT, 0);
        domain_kill(d, "non-canonical return address or stack");
        schedule();
    }
    current = d;
    global_pass = d->pass;
    if (read_cr3() != d->pml4)
        write_cr3(d->pml4);
    resume_user(&d->regs);
}

void schedule(void)
{
    for (;;) {
        notify_expire();
        struct dispatcher *d = pick();
        if (d)
            dispatcher_run(d);
        /* Idle: nothing to run until an interrupt makes something runnable. */
        current = 0;
        if (core.is_bsp)
            console_drain();
        else if (!core.said_idle && all) {
            /* The boot core waits for the pilot's monitor to wait once
             * before it starts the others' (smp.c). */
            core.said_idle = true;
            linechan_send(core.console, &core.console_seq, LINECHAN_IDLE, "", 0);
        }
        idle_wait();
    }
}

void dispatcher_tick(void)
{
    if (current) {
        current->ticks++;
        current->pass += STRIDE1 / current->priority;
    }
    schedule();
}

void dispatcher_charge(struct dispatcher *d)
{
    d->pass += STRIDE1 / d->priority;
}

void dispatcher_yield(struct dispatcher *d)
{
    dispatcher_charge(d);
    d->yield_tick = core.ticks + 1;
    /* Pollers that yield to each other would keep the core busy forever:
     * when every runnable dispatcher has yielded since the last timer tick,
     * the core sleeps until the next interrupt. */
    bool all_yielded = true;
    for (struct dispatcher *x = all; x && all_yielded; x = x->next)
        if (x->state == DOMAIN_RUNNABLE && x->pml4 && x->yield_tick <= core.ticks)
            all_yielded = false;
    if (all_yielded) {
        current = 0;
        if (core.is_bsp)
            console_drain();
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
    schedule();
}

/* A `syscall` from compatibility mode (x86_64/isr.S): stop the caller. */
void syscall_compat_handler(void)
{
    if (current) {
        obituary_note(current, DOMAIN_END_FAULT, 0);
        domain_kill(current, "system call from 32-bit mode");
        current = 0;
    }
    schedule();
}
