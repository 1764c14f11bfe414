/*
 * The client side of monitor requests (protocol.h), for programs that talk
 * to their monitor: header-only, so lib/ stays free of any particular
 * server.
 */
#ifndef ATOLL_MONITOR_CLIENT_H
#define ATOLL_MONITOR_CLIENT_H

#include <atoll/lib.h>
#include "protocol.h"

/* A call to this domain's monitor, retried while it is busy or not yet
 * receiving. Returns the transport error, else the monitor's (word 0). */
static inline errval_t monitor_call4(uint64_t op, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t cap,
                                     struct lmp_msg *reply)
{
    for (;;) {
        errval_t err = sys_lmp_call(SLOT_MONITOR_EP, op, w1, w2, w3, cap, reply);
        if (err != ERR_WOULD_BLOCK && err != ERR_NO_RECV_SLOT)
            return err ? err : (errval_t)reply->w[0];
        sys_yield();
    }
}

static inline errval_t monitor_call(uint64_t op, uint64_t w1, uint64_t w2, uint64_t cap, struct lmp_msg *reply)
{
    return monitor_call4(op, w1, w2, 0, cap, reply);
}

/* A fresh slot, named as where the next capability sent to us arrives. */
static inline errval_t name_recv_slot(capslot_t *s)
{
    struct lmp_msg none;
    errval_t err = slot_alloc(s);
    if (!err && sys_lmp_recv(*s, LMP_RECV_NONBLOCK, &none) != ERR_WOULD_BLOCK)
        err = ERR_INCONSISTENT;
    return err;
}

/* A request whose reply carries a capability: it lands in a fresh slot,
 * *cap (given back on error). */
static inline errval_t monitor_call_cap(uint64_t op, uint64_t w1, capslot_t *cap, struct lmp_msg *reply)
{
    errval_t err = name_recv_slot(cap);
    if (err)
        return err;
    err = monitor_call(op, w1, 0, LMP_NO_CAP, reply);
    if (!err && !reply->has_cap)
        err = ERR_CAP_EMPTY;
    if (err)
        slot_free(*cap);
    return err;
}

/* Register with the monitor (it makes an endpoint to us for its replies)
 * and get a copy of a page for texts both ways, mapped at *text. */
static inline errval_t monitor_connect(char **text)
{
    capslot_t frame;
    struct lmp_msg m;
    errval_t err = monitor_call(MON_HELLO, 0, 0, LMP_NO_CAP, &m);
    if (!err)
        err = monitor_call_cap(MON_SHARE, 0, &frame, &m);
    if (!err)
        err = vspace_map_frame(frame, MAP_WRITE, (void **)text);
    return err;
}

#endif

/* -- services and their channels ------------------------------------------------
 * A client connects to a service (on any core) by giving it a frame through
 * the monitors (MON_CONNECT): the frame becomes a URPC channel between the
 * two, the client side 0, the service side 1. Each side holds a Notify
 * capability for the other's core, so a sleeping peer is woken. */
#include <atoll/urpc.h>
#include <atoll/idl.h>

struct service_chan {
    struct urpc_chan ch;
    struct idl_chan idl;
    uint32_t peer_core;
    uint64_t peer;          /* the client's domain id (service side) */
    capslot_t frame;        /* our copy of the channel's frame, mapped at `map` */
    void *map;
    capslot_t notify;       /* wakes the peer's core */
};

static inline errval_t service_chan_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    return urpc_send(&((struct service_chan *)ch->state)->ch, msg, len, flags);
}

static inline errval_t service_chan_recv(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags)
{
    return urpc_recv(&((struct service_chan *)ch->state)->ch, buf, size, len, flags);
}

/* Attach `sc` to a mapped frame of `bytes` and fetch a Notify capability
 * for `peer_core`. */
static inline errval_t service_chan_init_bytes(struct service_chan *sc, void *frame, size_t bytes, int side,
                                              uint32_t peer_core)
{
    struct lmp_msg m;
    capslot_t notify;
    errval_t err = urpc_init(&sc->ch, frame, bytes, side);
    if (!err)
        err = monitor_call_cap(MON_NOTIFY_CAP, peer_core, &notify, &m);
    if (err)
        return err;
    sc->ch.wake_arg = notify;
    sc->ch.timeout_ns = 10000000000ull;   /* a peer silent for 10 s is gone */
    sc->peer_core = peer_core;
    sc->notify = notify;
    sc->map = frame;
    sc->idl = (struct idl_chan){ .send = service_chan_send, .recv = service_chan_recv, .state = sc };
    return ERR_OK;
}

/* Hang up (the peer reads `reason`) and give back the frame, its mapping
 * and the Notify capability: what a channel held is gone. */
static inline void service_chan_close(struct service_chan *sc, errval_t reason)
{
    urpc_close(&sc->ch, reason);
    if (sc->frame)
        frame_release(sc->frame, sc->map);
    if (sc->notify)
        cap_free(sc->notify);
    sc->frame = sc->notify = 0;
    sc->map = 0;
}

/* The same for a 4 KiB frame (every service channel). */
static inline errval_t service_chan_init(struct service_chan *sc, void *frame, int side, uint32_t peer_core)
{
    return service_chan_init_bytes(sc, frame, 4096, side, peer_core);
}

/* Connect to `service` (monitor/protocol.h SERVICE_ID), retrying for up to
 * `wait_ms` while it is not (yet) registered, and while its accept queue is
 * full. The channel's frame comes from our monitor, which keeps it (our RAM
 * may be revoked when we end; the service's mapping must stay). Call
 * monitor_connect first. */
static inline errval_t service_connect_retry(uint64_t service, struct service_chan *sc, uint64_t wait_ms)
{
    capslot_t frame;
    void *p;
    struct lmp_msg m;
    errval_t err = name_recv_slot(&frame);
    if (err)
        return err;
    uint64_t start = urpc_os_now_ns();
    for (;;) {
        err = monitor_call(MON_CONNECT, service, 0, LMP_NO_CAP, &m);
        /* Not registered yet (for wait_ms), or its accept queue is full (always). */
        if (err != ERR_WOULD_BLOCK &&
            (err != ERR_NOT_FOUND || urpc_os_now_ns() - start >= wait_ms * 1000000ull))
            break;
        sys_yield();
    }
    if (!err && !m.has_cap)
        err = ERR_CAP_EMPTY;
    if (err) {
        slot_free(frame);
        return err;
    }
    if ((err = vspace_map_frame(frame, MAP_WRITE, &p)))
        cap_free(frame);
    if (!err && (err = service_chan_init(sc, p, 0, SERVICE_CORE(service))))
        frame_release(frame, p);
    if (!err)
        sc->frame = frame;
    return err;
}

static inline errval_t service_connect(uint64_t service, struct service_chan *sc)
{
    return service_connect_retry(service, sc, 0);
}

/* Become a service: *id is what clients connect to. */
static inline errval_t service_register_self(uint64_t *id)
{
    struct lmp_msg m;
    errval_t err = monitor_call(MON_SERVE, 0, 0, LMP_NO_CAP, &m);
    if (!err)
        *id = m.w[1];
    return err;
}

/* Take the next connection, if one waits (else ERR_WOULD_BLOCK). */
static inline errval_t service_accept(struct service_chan *sc)
{
    capslot_t frame;
    struct lmp_msg m;
    void *p;
    errval_t err = monitor_call_cap(MON_ACCEPT, 0, &frame, &m);
    if (err)
        return err;
    if ((err = vspace_map_frame(frame, MAP_WRITE, &p)))
        cap_free(frame);
    if (!err && (err = service_chan_init(sc, p, 1, (uint32_t)m.w[1])))
        frame_release(frame, p);
    if (!err) {
        sc->frame = frame;
        sc->peer = m.w[2];
    }
    return err;
}

/* A URPC channel to our own monitor for the typed requests of
 * if/monclient.if (MON_CHANNEL). The monitor is on this very core: sleep
 * at once rather than spin while it cannot run, and wait as long as it
 * takes (it answers every request, if only with ERR_TIMEOUT). */
static inline errval_t monitor_channel_open(struct service_chan *mon)
{
    struct lmp_msg reply;
    capslot_t frame;
    void *page;
    errval_t err = monitor_call_cap(MON_CHANNEL, 0, &frame, &reply);
    if (err)
        return err;
    if ((err = vspace_map_frame(frame, MAP_WRITE, &page)))
        cap_free(frame);
    if (!err && (err = service_chan_init_bytes(mon, page, MON_CHANNEL_BYTES, 0, startup()->core_id)))
        frame_release(frame, page);
    if (err)
        return err;
    mon->frame = frame;
    mon->ch.spin_ns = 0;
    mon->ch.timeout_ns = 0;
    return ERR_OK;
}

/* Connect to the name server (service 0 on core 0), waiting while it starts. */
static inline errval_t names_connect(struct service_chan *sc)
{
    return service_connect_retry(NAMES_SERVICE, sc, 20000);
}
