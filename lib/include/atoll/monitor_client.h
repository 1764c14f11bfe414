/*
 * A domain and its core's monitor, and services through it (lib/monitor_client.c):
 * the client side of if/monlmp.if (local messages, for what moves
 * capabilities) and if/monclient.if (a URPC channel, for the rest), and
 * the channels between clients and services on any core.
 *
 *   monitor_connect()            once, before the rest
 *   monitor_lmp(), monitor_chan()   the two typed channels, for the
 *                                generated stubs: monlmp_*_rpc, monclient_*_rpc
 *   service_register_self()      become a service
 *   service_connect(), service_accept(), service_chan_close()
 *   names_connect()              a channel to the name server
 *
 * A connection is a frame the client's monitor owns: each side maps its
 * copy and attaches a URPC channel to it (client side 0), with a Notify
 * capability for the other's core so that a sleeping peer is woken. When
 * either side's domain ends, its monitor hangs the channel up for it
 * (docs/limits.md).
 */
#ifndef ATOLL_MONITOR_CLIENT_H
#define ATOLL_MONITOR_CLIENT_H

#include <atoll/idl.h>
#include <atoll/lmpchan.h>
#include <atoll/monitor_proto.h>
#include <atoll/urpc.h>
#include <atoll/waitset.h>

/* -- this domain's monitor ----------------------------------------------------------- */
/* Become a client of our monitor (monlmp hello) and open the typed request
 * channel (monlmp channel). Idempotent. */
errval_t monitor_connect(void);
/* The two typed channels (NULL before monitor_connect). */
struct idl_chan *monitor_lmp(void);
struct idl_chan *monitor_chan(void);
/* Give up on the monitor after `ns` in every later call (0, the default:
 * wait as long as it takes; the monitor answers everything, if only with
 * ERR_TIMEOUT). For programs that must never hang, whatever the monitor does. */
void monitor_set_timeout(uint64_t ns);
/* A Notify capability for `core`, kept: one per core for the whole domain. */
errval_t monitor_notify_cap(uint32_t core, capslot_t *out);

/* -- services and their channels -------------------------------------------------------- */
struct service_chan {
    struct urpc_chan ch;
    struct idl_chan idl;
    uint32_t peer_core;
    uint64_t peer;          /* service side: the client's domain id */
    uint64_t service;       /* service side: which of ours it connected to (its id; monlmp
                               accept carries the last 16 bits, the rest are ours) */
    capslot_t frame;        /* our copy of the channel's frame, mapped at `map` */
    void *map;
    struct ws_source src;   /* for a waitset (service_chan_source) */
};

/* Become a service: *id is what clients connect to (SERVICE_ID). */
errval_t service_register_self(uint64_t *id);
/* Connect to `service`, waiting up to `wait_ms` while it is not registered
 * yet, and as long as its accept queue is full. */
errval_t service_connect_wait(uint64_t service, struct service_chan *sc, uint64_t wait_ms);
errval_t service_connect(uint64_t service, struct service_chan *sc);
/* Take the next connection to one of our services (ERR_WOULD_BLOCK: none). */
errval_t service_accept(struct service_chan *sc);
/* Hang up (the peer reads `reason`, ERR_OK: ERR_CHAN_CLOSED) and give back
 * the frame and its mapping. */
void service_chan_close(struct service_chan *sc, errval_t reason);
/* sc as a waitset source: `ready` serves one message when one waits (or
 * learns that the peer hung up); sc->src.arg = arg. */
void service_chan_source(struct service_chan *sc, bool (*ready)(struct ws_source *s), void *arg);

/* Connect to the nearest replica of the name server that is up (NAMES_AT
 * of its core: this node's first, then by SLIT distance), waiting while
 * none is (up to NAMES_CONNECT_WAIT_MS; names_connect_wait: up to wait_ms). */
#define NAMES_CONNECT_WAIT_MS 60000
errval_t names_connect(struct service_chan *sc);
errval_t names_connect_wait(struct service_chan *sc, uint64_t wait_ms);

/* A waitset source that takes new connections: `accepted` is called with
 * each (it owns the channel from then on); it asks the monitor only when a
 * notification came since it last asked, at most once a millisecond. */
struct service_acceptor {
    struct ws_source src;
    void (*accepted)(struct service_acceptor *a, struct service_chan *sc);
    void *arg;
    uint64_t last_token, last_ns;
    uint64_t accepted_count, failed;
};
void service_acceptor_init(struct service_acceptor *a,
                           void (*accepted)(struct service_acceptor *a, struct service_chan *sc), void *arg);

#endif
