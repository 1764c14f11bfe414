/*
 * When a domain of this core ends, everything held for it goes: the
 * kernel queues its end (an obituary, cpudriver/obituary.h) and wakes us;
 * here every part of the monitor lets go of what it kept for that domain,
 * in an order where nothing points at what was freed before it:
 *
 *   connections (hang up its channels, so the other ends learn at once),
 *   services it offered (their accept queues), the client slot (its
 *   endpoint, text page and request channel; answers still on their way
 *   stop naming it), requests it was waiting for, and last its RAM as our
 *   child (revoked, which also takes back a zombie the kernel could only
 *   stop).
 *
 * Servers learn the same way one level up: their client's channel reads
 * ERR_CHAN_CLOSED, and they drop whatever they kept for it.
 */
#include "monitor.h"

/* Connections are swept this often (conns.c): ends that let go on their own. */
#define SWEEP_NS 20000000ull

static uint64_t seen;

uint64_t ends_seen(void) { return seen; }

static void domain_ended(uint64_t id, uint32_t reason)
{
    seen++;
    /* Asked before its services go: had the name server started? */
    bool names = id == names_id;
    bool names_started = names && (reason == DOMAIN_END_KILLED || services_offered_by(id));
    conns_domain_ended(id);
    services_domain_ended(id);
    clients_domain_ended(id);
    capops_domain_ended(id);
    span_domain_ended(id);
    children_domain_ended(id);
    if (names)
        names_ended(names_started);   /* main.c: it comes back at once */
}

static void ended_unknown(uint64_t id) { domain_ended(id, 0); }

static bool obituaries_poll(struct ws_source *src)
{
    (void)src;
    struct domain_end e;
    errval_t err = sys_domain_ended(SLOT_KERNEL, &e);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err == ERR_TOO_MANY)   /* the kernel's queue overflowed */
        children_rescan(ended_unknown);
    else if (err)
        printf("monitor %u: cannot read the ends of domains: %s\n", my_core, err_name(err));
    else
        domain_ended(e.id, e.reason);
    conns_sweep();   /* an end often lets go of a connection's other side */
    return true;
}

static struct ws_source obituaries;
static struct ws_timer sweeper;

static void sweep(struct ws_timer *t)
{
    conns_sweep();
    waitset_timer_arm(t->ws, t, now_ns() + SWEEP_NS);
}

void lifetimes_start(struct waitset *ws)
{
    /* An end queued by the kernel wakes a sleeping monitor (it notifies
     * the core): nothing to raise before sleeping. */
    obituaries = (struct ws_source){ .poll = obituaries_poll, .name = "obituaries" };
    waitset_add(ws, &obituaries);
    sweeper = (struct ws_timer){ .fire = sweep };
    waitset_timer_arm(ws, &sweeper, now_ns() + SWEEP_NS);
}
