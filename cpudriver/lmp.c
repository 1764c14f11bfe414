/* Local messages; see lmp.h. */
#include "lmp.h"
#include "lib.h"
#include "notify.h"
#include "vspace.h"

/* Slot `i` of d's root CNode, or NULL if out of range. */
static struct cte *slot_of(struct dispatcher *d, uint64_t i)
{
    struct capability cn = { .type = CAP_CNODE, .bits = d->cnode_bits, .base = d->cnode_base };
    struct cte *c;
    return d->cnode_base && !cap_slot(&cn, i, &c) ? c : 0;
}

/* Hand the buffered message to d in its saved registers (see syscall.h).
 * A capability that arrived before the receiver named a different slot
 * moves there, so it is always where the receiver last asked. */
static void deliver(struct dispatcher *d)
{
    if (d->msg_cap && d->recv_slot != d->msg_cap_slot && d->recv_slot != LMP_NO_CAP) {
        struct cte *from = slot_of(d, d->msg_cap_slot), *to = slot_of(d, d->recv_slot);
        if (from && to && to->cap.type == CAP_NULL && cap_move(from, to) == ERR_OK)
            vspace_cap_moved(to);
    }
    d->regs.rax = ERR_OK;
    d->regs.rdx = d->msg_cap;
    d->regs.rsi = d->msg_words[0];
    d->regs.rdi = d->msg_words[1];
    d->regs.r8 = d->msg_words[2];
    d->regs.r10 = d->msg_words[3];
    d->regs.r9 = d->msg_badge;
    d->msg_full = false;
    d->msg_cap = false;
}

errval_t lmp_send(struct dispatcher *from, uint64_t ep, const struct lmp_msg *m, struct dispatcher **woken)
{
    *woken = 0;
    struct cte *e = slot_of(from, ep);
    if (!e)
        return ERR_CAP_SLOT_RANGE;
    if (e->cap.type == CAP_NULL)
        return ERR_CAP_EMPTY;
    if (e->cap.type != CAP_ENDPOINT)
        return ERR_CAP_TYPE;
    if (!(e->cap.rights & CAP_RIGHT_WRITE))
        return ERR_CAP_RIGHTS;
    struct dispatcher *to = dispatcher_of(&e->cap);
    /* Read the endpoint now: the capability sent may be this very endpoint,
     * moved away below. */
    uint64_t badge = e->cap.badge;
    if (to->msg_full || to->state == DOMAIN_STOPPED)
        return ERR_WOULD_BLOCK;

    bool with_cap = (m->cap & ~LMP_SEND_MOVE) != LMP_NO_CAP;
    if (with_cap) {
        if (!(e->cap.rights & CAP_RIGHT_GRANT))
            return ERR_CAP_RIGHTS;
        struct cte *src = slot_of(from, m->cap & ~LMP_SEND_MOVE);
        if (!src)
            return ERR_CAP_SLOT_RANGE;
        if (src->cap.type == CAP_NULL)
            return ERR_CAP_EMPTY;
        struct cte *dst = to->recv_slot == LMP_NO_CAP ? 0 : slot_of(to, to->recv_slot);
        if (!dst || dst->cap.type != CAP_NULL)
            return ERR_NO_RECV_SLOT;
        errval_t err;
        if (m->cap & LMP_SEND_MOVE) {
            err = cap_move(src, dst);
            if (!err)
                vspace_cap_moved(dst);
        } else {
            err = cap_copy(src, dst);
        }
        if (err)
            return err;
    }
    memcpy(to->msg_words, m->words, sizeof to->msg_words);
    to->msg_badge = badge;
    to->msg_cap = with_cap;
    to->msg_cap_slot = to->recv_slot;
    to->msg_full = true;
    if (to->waiting) {
        deliver(to);
        dispatcher_make_runnable(to);
        *woken = to;
    } else {
        /* A domain that sleeps for its channels also wakes for a local
         * message (a monitor waits for both). */
        notify_wake(to);
    }
    return ERR_OK;
}

errval_t lmp_recv(struct dispatcher *d, uint64_t recv_slot, bool nonblock)
{
    if (recv_slot != LMP_NO_CAP && !slot_of(d, recv_slot))
        return ERR_CAP_SLOT_RANGE;
    d->recv_slot = recv_slot;
    if (d->msg_full) {
        deliver(d);
        return ERR_OK;
    }
    if (nonblock)
        return ERR_WOULD_BLOCK;
    d->waiting = true;
    dispatcher_block(d);
    return ERR_WOULD_BLOCK;
}
