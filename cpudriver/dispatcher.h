/*
 * Dispatchers (schedulable user contexts) and this core's scheduler.
 *
 * A dispatcher is a kernel object in RAM its creator retyped; it holds the
 * saved user registers, its CSpace and VSpace, and its local-message state.
 * The scheduler is per core (no run queue is shared): stride scheduling, a
 * proportional-share policy where a dispatcher of priority p gets p shares of
 * the core, preempted by this core's APIC timer.
 *
 * The kernel is event driven with one stack per core: every entry from user
 * mode saves the full user state in the current dispatcher and every exit
 * resumes some dispatcher from its saved state, so a blocked dispatcher
 * needs no kernel stack.
 */
#ifndef ATOLL_DISPATCHER_H
#define ATOLL_DISPATCHER_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/syscall.h>
#include "cap.h"
#include "x86_64/trap.h"

#define PRIORITY_DEFAULT 10
#define PRIORITY_MAX 100

struct dispatcher {
    struct trap_frame regs;     /* user registers while not running */
    uint64_t pml4;              /* VSpace: PML4 object (physical), 0 if none */
    uint64_t cnode_base;        /* CSpace: root CNode object (physical) */
    uint8_t cnode_bits;
    bool is_monitor;
    uint32_t id;                /* unique on this core */
    uint32_t state;             /* enum domain_state */
    uint32_t priority;          /* 1..PRIORITY_MAX shares */
    uint64_t pass;              /* stride scheduling */
    uint64_t ticks;             /* timer ticks spent running */
    uint64_t ram_bytes;
    uint64_t created_tsc;
    uint64_t yield_tick;        /* yielded during tick yield_tick - 1 */
    char name[DOMAIN_NAME_MAX];
    /* This core's domains: dispatchers that SYS_SPAWN made and that run
     * code. Only these are on the list the scheduler, notifications and
     * SYS_DOMAIN_INFO walk; a dispatcher a domain retyped for itself is
     * inert and joins no list, so making many cannot slow the core. */
    bool live;
    bool end_reported;          /* its end is queued (obituary.h) */
    uint32_t end_reason;        /* enum domain_end_reason, once known */
    int64_t end_status;
    struct dispatcher *next, *prev;
    /* Inert dispatchers this domain retyped (at most DISPATCHERS_PER_DOMAIN
     * alive at once), and for an inert one the domain that made it. */
    struct dispatcher *made, *made_next, *maker;
    uint32_t nmade;
    /* Local messages: one buffered message. */
    bool msg_full;
    bool msg_cap;               /* a capability arrived with it... */
    uint64_t msg_cap_slot;      /* ...into this slot */
    uint64_t msg_badge;
    uint64_t msg_words[4];
    uint64_t recv_slot;         /* where an incoming capability goes */
    bool waiting;               /* blocked in receive */
    /* Notifications (notify.h). */
    uint64_t notify_tick;       /* the tick notify_sent counts in */
    uint32_t notify_sent;       /* to other cores, this tick (NOTIFY_PER_TICK) */
    bool notify_waiting;        /* blocked in SYS_NOTIFY_WAIT */
    uint64_t notify_deadline;   /* tick it times out at, 0: never */
    /* A span dispatcher (SYS_SPAN, docs/spanning.md): the home domain's
     * PML4 (physical), whose user half its own root table mirrors; 0 for
     * every other dispatcher. */
    uint64_t span_home;
    uint32_t home_core, home_domain;
    /* A home dispatcher: the cores its monitor made span dispatchers of it
     * for (CAPOPS_VSPACE, a bit per core). Nonzero: its end leaves the
     * address space whole until those are stopped (domain_kill), and an
     * unmap on this core shoots down there (span_flush.h). */
    uint64_t span_cores[4];
};
_Static_assert(sizeof(struct dispatcher) <= 4096, "fits its object");

/* This core's running dispatcher (NULL in the idle loop). */
struct dispatcher *dispatcher_current(void);
struct dispatcher *dispatcher_of(const struct capability *cap);

/* Dispatchers one domain may retype and keep at once (SYS_CAP_RETYPE says
 * ERR_TOO_MANY past it). They are inert: nothing runs them yet. */
#define DISPATCHERS_PER_DOMAIN 16

/* A new dispatcher object (zeroed memory) for a domain: it joins this
 * core's list of domains, stopped. */
void dispatcher_init(struct dispatcher *d, const char *name, uint32_t id);
/* A new dispatcher object that domain `maker` retyped: inert, on no list,
 * counted against its maker (dispatcher_can_make). */
void dispatcher_init_inert(struct dispatcher *d, struct dispatcher *maker);
bool dispatcher_can_make(const struct dispatcher *maker, uint64_t count);
/* The object is dying: leave the scheduler for good. */
void dispatcher_destroyed(struct dispatcher *d);

void dispatcher_make_runnable(struct dispatcher *d);
void dispatcher_block(struct dispatcher *d);

/* Pick a dispatcher and run it; idle (draining the console on the boot
 * core) while none is runnable. Never returns. */
_Noreturn void schedule(void);
/* Run `d` now (a direct switch, for message round trips). */
_Noreturn void dispatcher_run(struct dispatcher *d);

/* Charge `d` one time slice. */
void dispatcher_charge(struct dispatcher *d);
/* `d` gives up the core: others run first; when all runnable dispatchers
 * have yielded since the last tick, the core waits for the next interrupt. */
_Noreturn void dispatcher_yield(struct dispatcher *d);

/* Timer tick while user code ran: account it and maybe preempt. */
_Noreturn void dispatcher_tick(void);

/* This core's domains (live dispatchers), for SYS_DOMAIN_INFO and the
 * walks of notify.c and capkern.c: follow ->next. */
struct dispatcher *dispatcher_first(void);
/* Moves whenever a dispatcher joins or leaves the list (SYS_DOMAIN_INFO). */
uint64_t dispatcher_list_gen(void);

#endif
