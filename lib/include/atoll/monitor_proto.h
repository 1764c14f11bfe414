/*
 * What a monitor and the domains of its core agree on, besides the
 * interfaces themselves (if/monlmp.if over local messages, if/monclient.if
 * over a URPC channel): how a service id is made, the well-known name
 * server, the request channel's size and the limits every domain has
 * (docs/limits.md). Included by the monitor and by lib/'s client side.
 */
#ifndef ATOLL_MONITOR_PROTO_H
#define ATOLL_MONITOR_PROTO_H

#include <stdint.h>

/* The request channel (monlmp `channel`): 63 slots each way, so that every
 * monclient message (3,019 bytes at most) fits in the ring and the monitor
 * never waits on a client to answer it. */
#define MON_CHANNEL_BYTES 8192
#define MON_TEXT_MAX 3000      /* longest text of a reply */
#define MON_DEFAULT_ROUNDS 100

/* A service id names the service's core, the domain that registered it
 * and a number the monitor gave it: | core:16 | domain:32 | seq:16 |. The
 * monitor makes it; anyone can tell whose service it is, so the name
 * server takes registrations of a domain's own services only; and since a
 * core never reuses a domain id, a dead service's id never names another. */
#define SERVICE_ID(core, domain, seq) \
    (((uint64_t)(core) << 48) | ((uint64_t)(uint32_t)(domain) << 16) | (uint64_t)(uint16_t)(seq))
#define SERVICE_CORE(id) ((uint32_t)((uint64_t)(id) >> 48))
#define SERVICE_DOMAIN(id) ((uint32_t)((uint64_t)(id) >> 16))
/* The name server is a group of replicas, one on the first core of each
 * NUMA node (names_cores(), lib/monitor_client.c; docs/names.md). Each is
 * reached without a name: the monitor of core K answers NAMES_PEER_AT(K)
 * with the replica on K (the service it registered first, for the other
 * replicas) and NAMES_AT(K) with its end for clients (its second,
 * registered once it holds the names): domain 0 is never a real domain,
 * so these ids never name another service.
 * NAMES_SERVICE is core 0's. */
#define NAMES_AT(core) SERVICE_ID(core, 0, 0)
#define NAMES_PEER_AT(core) SERVICE_ID(core, 0, 1)
#define NAMES_SERVICE NAMES_AT(0)
#define NAMES_WELL_KNOWN(id) (SERVICE_DOMAIN(id) == 0 && (uint16_t)(id) <= 1)
/* The cores of the name server's replicas, in core order: the first core
 * of each NUMA node (with two nodes, a third: lib/names_place.c says
 * where and why). Returns how many (at most `max`). lib/names_place.c. */
struct core_info;
uint32_t names_cores(const struct core_info *m, uint32_t *cores, uint32_t max);

/* Limits per domain and per monitor (docs/limits.md). Past one, the request
 * fails at once with ERR_QUOTA (a domain's own limit) or ERR_TOO_MANY (a
 * table of the monitor's), and nothing else is affected. */
#define MON_MAX_CLIENTS 64            /* domains of one core talking to its monitor */
#define MON_PENDING_PER_CLIENT 16     /* a client's requests waiting for another core */
#define MON_CONNS_PER_CLIENT 64       /* connections a domain holds as client */
#define MON_CONNS_PER_SERVICE 512     /* connections a domain holds as a service */
#define MON_SERVICES_PER_DOMAIN 4
#define MON_MAX_CONNS 1024            /* connection records one monitor keeps */
#define MON_CAPS_WAITING_PER_DOMAIN 16 /* capabilities given to a domain, not taken yet */
/* Capabilities across cores (monitor/capops.c), per domain: at the owner
 * core, charged to the domain whose give made the record; at a holder
 * core, to the domain the grant was for (or that asked to retype). */
#define MON_CAPS_OBJECTS_PER_DOMAIN 32 /* objects it gave with copies on other cores */
#define MON_CAPS_GRANTS_PER_DOMAIN 16  /* (object, core) pairs with grants not answered yet */
#define MON_CAPS_RESERVED_PER_DOMAIN 32 /* ranges reserved for holders' retypes, in its objects */
#define MON_CAPS_WIDE_PER_DOMAIN 4     /* of its objects, those held on more than 6 cores */
#define MON_CAPS_HELD_PER_DOMAIN 64    /* objects of other cores held here for it (roots) */
#define MON_CAPS_ENVELOPES_PER_DOMAIN 32 /* its agreed retypes of other cores' RAM, alive */

/* monlmp cap_revoke / cap_delete flags: ask every core, not only the cores
 * that hold copies (the `caps` benchmark's baseline, docs/bench.md). */
#define CAPOPS_BROADCAST 0x1u
/* monlmp cap_delete flag: the original and every copy, on every core, go
 * (as on one core); without it, deleting an original whose object has
 * copies on other cores leaves the object to them until the last goes. */
#define CAPOPS_WITH_COPIES 0x2u

/* monlmp tlb_shootdown: how the home monitor reaches the cores that have
 * run a spanning domain (docs/spanning.md). */
enum tlb_protocol {
    TLB_UNICAST = 1,        /* one core after another */
    TLB_BROADCAST,          /* one message to every core at once */
    TLB_MULTICAST,          /* one message per NUMA node, to a leader that forwards within it */
    TLB_NUMA_MULTICAST,     /* the same, farthest node first (by the SLIT distances) */
    TLB_IPI,                /* the CPU drivers interrupt each other (the baseline) */
};
#define TLB_WAIT_NS 5000000000ull   /* a core that does not answer: ERR_TIMEOUT */

#endif
