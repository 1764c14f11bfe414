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

/* Connections are swept at most this often when idle (conns.c). */
#define SWEEP_NS 20000000ull

static uint64_t seen, last_sweep;

uint64_t ends_seen(void) { return seen; }

static void domain_ended(uint64_t id)
{
    seen++;
    conns_domain_ended(id);
    services_domain_ended(id);
    clients_domain_ended(id);
    children_domain_ended(id);
}

bool lifetimes_poll(void)
{
    bool did = false;
    for (;;) {
        struct domain_end e;
        errval_t err = sys_domain_ended(SLOT_KERNEL, &e);
        if (err == ERR_WOULD_BLOCK)
            break;
        did = true;
        if (err == ERR_TOO_MANY) {   /* the kernel's queue overflowed */
            children_rescan(domain_ended);
            continue;
        }
        if (err) {
            printf("monitor %u: cannot read the ends of domains: %s\n", my_core, err_name(err));
            break;
        }
        domain_ended(e.id);
    }
    uint64_t now = now_ns();
    if (did || now - last_sweep > SWEEP_NS) {
        last_sweep = now;
        conns_sweep();
    }
    return did;
}
