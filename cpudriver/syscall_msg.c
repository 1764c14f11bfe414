/*
 * System calls that pass the core between domains: yield, local messages
 * (send, receive, call), and notifications (wake a core's waiters, sleep
 * until woken or a timeout).
 */
#include <atoll/abi/syscall.h>
#include "syscall.h"
#include "dispatcher.h"
#include "lmp.h"
#include "notify.h"
#include "uaccess.h"

errval_t sc_yield(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)f, (void)value;
    d->regs.rax = ERR_OK;
    dispatcher_yield(d);
}

errval_t sc_lmp_send(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t endpoint = f->rdi;
    struct lmp_msg m = { { f->rsi, f->rdx, f->r10, f->r8 }, f->r9 };
    struct dispatcher *woken = 0;
    return lmp_send(d, endpoint, &m, &woken);
}

/* The message arrives in the caller's registers (lmp.c: deliver). */
errval_t sc_lmp_recv(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t recv_slot = f->rdi, flags = f->rsi;
    errval_t err = lmp_recv(d, recv_slot, flags & LMP_RECV_NONBLOCK);
    if (err == ERR_OK)
        dispatcher_run(d);
    if (err == ERR_WOULD_BLOCK && d->waiting)
        schedule();   /* resumed by the send that wakes it */
    return err;
}

/* Send, then wait for the reply; run the receiver at once if it was
 * waiting, so a round trip costs two switches. */
errval_t sc_lmp_call(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t endpoint = f->rdi;
    struct lmp_msg m = { { f->rsi, f->rdx, f->r10, f->r8 }, f->r9 };
    struct dispatcher *woken = 0;
    errval_t err = lmp_send(d, endpoint, &m, &woken);
    if (err)
        return err;
    err = lmp_recv(d, d->recv_slot, false);
    if (err == ERR_OK)
        dispatcher_run(d);
    if (err != ERR_WOULD_BLOCK)
        return err;   /* sent, but no reply can be taken */
    if (woken)
        dispatcher_run(woken);
    schedule();
}

errval_t sc_notify(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    struct cte *c;
    errval_t err = user_cap(d, f->rdi, CAP_NOTIFY, CAP_RIGHT_WRITE, &c);
    if (err)
        return err;
    /* A Notify for a range of cores (a span dispatcher's): the caller names
     * one of them in rsi. One for a single core ignores rsi. */
    uint64_t target = c->cap.base;
    if (c->cap.bytes > 1) {
        if (f->rsi < c->cap.base || f->rsi - c->cap.base >= c->cap.bytes)
            return ERR_INVALID_ARG;
        target = f->rsi;
    }
    return notify_send_from(d, (uint32_t)target);
}

/* value = the notification generation now, for the next wait. */
errval_t sc_notify_wait(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    uint64_t token = f->rdi, timeout_us = f->rsi;
    errval_t err = notify_wait(d, token, timeout_us, value);
    if (err == ERR_WOULD_BLOCK)
        schedule();   /* resumed by notify_arrived or notify_expire */
    return err;
}
