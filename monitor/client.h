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
static inline errval_t monitor_call(uint64_t op, uint64_t w1, uint64_t w2, uint64_t cap, struct lmp_msg *reply)
{
    for (;;) {
        errval_t err = sys_lmp_call(SLOT_MONITOR_EP, op, w1, w2, 0, cap, reply);
        if (err != ERR_WOULD_BLOCK && err != ERR_NO_RECV_SLOT)
            return err ? err : (errval_t)reply->w[0];
        sys_yield();
    }
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

/* Register with the monitor (an endpoint for its replies) and get a copy of
 * a page for texts both ways, mapped at *text. */
static inline errval_t monitor_connect(char **text)
{
    capslot_t self, frame;
    struct lmp_msg m;
    errval_t err = slot_alloc(&self);
    if (!err)
        err = sys_cap_mint(SLOT_DISPATCHER, self, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, 0, 0, 0);
    if (!err)
        err = monitor_call(MON_HELLO, 0, 0, self, &m);
    if (!err)
        err = name_recv_slot(&frame);
    if (!err)
        err = monitor_call(MON_SHARE, 0, 0, LMP_NO_CAP, &m);
    if (!err && !m.has_cap)
        err = ERR_CAP_EMPTY;
    if (!err)
        err = vspace_map_frame(frame, MAP_WRITE, (void **)text);
    return err;
}

#endif
