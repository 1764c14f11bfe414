/*
 * How a domain talks to its own core's monitor: LMP requests, 4 words and
 * at most one capability each way, plus a 4 KiB page both map for texts
 * (MON_SHARE). Word 0 of a request is the op, of a reply the error.
 * Requests about another core go on from the monitor over the mesh
 * (if/monitor.if); the client only waits a little longer.
 * docs/monitor.md lists every op with its arguments.
 */
#ifndef ATOLL_MONITOR_PROTOCOL_H
#define ATOLL_MONITOR_PROTOCOL_H

enum mon_op {
    MON_HELLO = 1,   /* become a client (the monitor makes the endpoint for its replies) */
    MON_SHARE,       /* reply carries a copy of a 4 KiB frame for texts */
    MON_PS,          /* w1 = core: the domains on it, as text */
    MON_SPAWN,       /* w1 = core, w2 = RAM bytes (0: default), text = "program args" -> value = domain id */
    MON_MEM,         /* w1 = core: value = free user RAM, value2 = node */
    MON_CORE,        /* w1 = core: one line about it, as text */
    MON_IOCAP,       /* the serial port capability (the shell only) */
    MON_POWEROFF,    /* w1 = status: end the machine (the shell only, core 0) */
    MON_BUSY,        /* w1 = core: value = domains started by MON_SPAWN there, still alive */
    MON_SPAWN_PEER,  /* text = "program args": start it here, reply with an endpoint to it */
    MON_MESH,        /* w1 = core: that monitor's channels as text, value = how many */
    MON_PING,        /* w1 = from core, w2 = to core, w3 = rounds: value = median round trip ns,
                        value2 = minimum, text = "hops N" */
    MON_BENCH,       /* w1 = from core, w2 = to core, w3 = rounds: URPC benchmark over a
                        direct channel, text = one JSON object */
    MON_SERVE,       /* become a service: value = service id ((core << 32) | index) */
    MON_CONNECT,     /* w1 = service id, cap = a frame: hand it to that service (any core) */
    MON_ACCEPT,      /* a service takes its next frame: cap, value = client core,
                        value2 = client domain; ERR_WOULD_BLOCK when none waits */
    MON_NOTIFY_CAP,  /* w1 = core: a Notify capability for it (to wake a peer there) */
    MON_MESH_WAIT,   /* core 0: answered once every monitor's channels are up (value =
                        channels); the shell waits for it before its first prompt */
    MON_CHANNEL,     /* cap: a frame of MON_CHANNEL_BYTES holding a URPC channel to the
                        monitor (the client is side 0) for the typed requests of
                        if/monclient.if */
    MON_KILL,        /* w1 = core, w2 = domain id: end that domain (the shell only) */
    MON_STATS,       /* w1 = core: that monitor's resources as text "key value ..." */
};

#define MON_TEXT_MAX 3000      /* longest text of a reply */
/* 63 slots each way: every monclient message (3,019 bytes at most) fits in
 * the ring, so the monitor never waits on a client to answer it. */
#define MON_CHANNEL_BYTES 8192
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
/* The name server, wherever it is: core 0's monitor knows its real id. */
#define NAMES_SERVICE 0ull

/* Limits per domain and per monitor (docs/limits.md). Past one, the request
 * fails at once with ERR_QUOTA (a domain's own limit) or ERR_TOO_MANY (a
 * table of the monitor's), and nothing else is affected. */
#define MON_MAX_CLIENTS 64            /* domains of one core talking to its monitor */
#define MON_PENDING_PER_CLIENT 16     /* a client's requests waiting for another core */
#define MON_CONNS_PER_CLIENT 64       /* connections a domain holds as client */
#define MON_CONNS_PER_SERVICE 512     /* connections a domain holds as a service */
#define MON_SERVICES_PER_DOMAIN 4
#define MON_MAX_CONNS 1024            /* connection records one monitor keeps */

#endif
