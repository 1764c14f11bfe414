/*
 * A monitor's capability operations for the cross-core protocols
 * (monitor/capops.c, docs/capabilities.md "Across cores"): look at and act
 * on the capabilities of any domain of its core, named by a Dispatcher
 * capability the monitor holds, and hear which watched capabilities lost
 * their last child. Everything here is this core's: the monitors agree
 * among themselves by messages, and each asks only its own kernel.
 */
#include <atoll/abi/syscall.h>
#include "syscall.h"
#include "cap.h"
#include "capkern.h"
#include "core.h"
#include "dispatcher.h"
#include "uaccess.h"

/* The index of `c` in monitor m's root CNode, or CAPOPS_NO_SLOT. */
static uint64_t monitor_slot(struct dispatcher *m, const struct cte *c)
{
    struct capability cn = user_cspace(m);
    struct cte *slots;
    if (!c || cap_slot(&cn, 0, &slots))
        return CAPOPS_NO_SLOT;
    uint64_t n = 1ull << cn.bits;
    return c >= slots && c < slots + n ? (uint64_t)(c - slots) : CAPOPS_NO_SLOT;
}

static uint32_t flags_of(const struct cte *c)
{
    struct cap_identity id;
    cap_identify(c, &id);
    return id.flags;
}

/* The domain a call is about: the one `disp` names, or the monitor. */
static errval_t target(struct dispatcher *m, uint32_t disp, struct dispatcher **out)
{
    if (disp == 0) {
        *out = m;
        return ERR_OK;
    }
    struct cte *c;
    errval_t err = user_cap(m, disp, CAP_DISPATCHER, 0, &c);
    if (err)
        return err;
    struct dispatcher *t = dispatcher_of(&c->cap);
    if (!t || !t->cnode_base)
        return ERR_DOMAIN_ENDED;
    *out = t;
    return ERR_OK;
}

static errval_t capops(struct dispatcher *m, struct capops_call *a)
{
    struct dispatcher *t;
    struct cte *c = 0, *o, *x;
    errval_t err = target(m, a->disp, &t);
    if (err)
        return err;
    /* RETYPE's inputs: the agreed original (the monitor's slot) and pages. */
    uint64_t agreed_root = a->root, agreed_base = a->base, agreed_bytes = a->bytes;
    a->root = a->anchor = CAPOPS_NO_SLOT;
    a->root_flags = a->rights = 0;
    if (a->op != CAPOPS_RETYPE_CHECK && a->op != CAPOPS_RETYPE && (err = user_cap(t, a->slot, CAP_NULL, 0, &c)))
        return err;
    switch (a->op) {
    case CAPOPS_LINEAGE:
        a->rights = c->cap.rights;
        o = cap_original_of(c);
        a->root = monitor_slot(m, o);
        a->root_flags = flags_of(o);
        a->anchor = monitor_slot(m, cap_anchor_of(o));
        return ERR_OK;
    case CAPOPS_FIND_REMOTE:
        x = cap_find_remote(c, a->count != 0);
        a->anchor = monitor_slot(m, x);
        return x ? ERR_OK : ERR_NOT_FOUND;
    case CAPOPS_REVOKE:
    case CAPOPS_DELETE:
        err = a->op == CAPOPS_REVOKE ? cap_revoke(c) : cap_delete(c);
        if (err == ERR_CAP_REMOTE)
            a->anchor = monitor_slot(m, cap_find_remote(c, a->op == CAPOPS_DELETE));
        return err;
    case CAPOPS_RETYPE_CHECK:
    case CAPOPS_RETYPE: {
        struct capability cn = user_cspace(t);
        struct cte *env = 0;
        if ((err = user_cap(t, a->slot, CAP_RAM, 0, &c)) || (err = retype_limits(t, a->type, a->count)))
            return err;
        err = cap_retype_check(c, (enum cap_type)a->type, a->size, a->offset, a->count, &cn, a->first, &a->base,
                               &a->bytes, &o);
        if (err)
            return err;
        a->root = monitor_slot(m, o);
        a->root_flags = flags_of(o);
        if (a->op == CAPOPS_RETYPE_CHECK)
            return ERR_OK;
        /* The owner agreed to these pages of this original, nothing else:
         * the domain may have moved another capability into the slot since. */
        struct cte *agreed_original;
        if ((err = user_slot(m, agreed_root, &agreed_original)) || (err = user_slot(m, a->dst, &env)))
            return err;
        struct retype_agreement agreed = { agreed_original, agreed_base, agreed_bytes };
        err = cap_retype_agreed(c, (enum cap_type)a->type, a->size, a->offset, a->count, &cn, a->first, &agreed,
                                env);
        if (err)
            return err;
        cap_relate(env, CAP_REL_WATCH, 0);   /* the monitor hears when the objects are gone */
        retype_finish(t, a->type, a->first, a->count);
        return ERR_OK;
    }
    case CAPOPS_ANCHOR:
        if ((err = user_slot(m, a->dst, &x)))
            return err;
        if ((err = cap_anchor(c, x)))
            return err;
        a->anchor = a->dst;
        return ERR_OK;
    case CAPOPS_VSPACE:
        if (c->cap.type != CAP_VNODE_PML4 || c->cap.base != t->pml4 || t->span_home)
            return ERR_CAP_TYPE;
        if ((err = user_slot(m, a->dst, &x)))
            return err;
        if (x->cap.type != CAP_NULL)
            return ERR_CAP_OCCUPIED;
        if (a->count >= 256 || a->count == core.core_id)
            return ERR_INVALID_ARG;
        if ((err = cap_copy(c, x)))
            return err;
        t->span_cores[a->count / 64] |= 1ull << (a->count % 64);
        return ERR_OK;
    case CAPOPS_HAND_OVER:
        err = cap_hand_over(c, &x);
        if (err == ERR_CAP_REMOTE)
            a->anchor = monitor_slot(m, x);
        return err;
    case CAPOPS_HAND_OVER_ANCHOR:
        if (t != m)
            return ERR_NOT_PERMITTED;   /* anchors live in the monitor's own slots */
        err = cap_hand_over_anchor(c, &x);
        if (err == ERR_CAP_REMOTE)
            a->anchor = monitor_slot(m, x);
        return err;
    case CAPOPS_TAKE_OVER:
        if (t != m)
            return ERR_NOT_PERMITTED;   /* the monitor's own roots */
        return cap_take_over(c, a->count == 1);
    case CAPOPS_REVOKE_SIBLINGS: {
        uint64_t kept = 0;
        err = cap_revoke_siblings(c, &kept);
        a->count = (uint32_t)kept;
        return err;
    }
    case CAPOPS_RELATE:
        if (t != m)
            return ERR_NOT_PERMITTED;   /* marks live in the monitor's own slots */
        return cap_relate(c, a->set, a->clear);
    default:
        return ERR_INVALID_ARG;
    }
}

errval_t sc_capops(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    struct cte *kernel;
    struct capops_call a;
    errval_t err = user_cap(d, f->rdi, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = copy_from_user(d, &a, f->rsi, sizeof a);
    if (err)
        return err;
    err = capops(d, &a);
    errval_t out = copy_to_user(d, f->rsi, &a, sizeof a);
    return err ? err : out;
}

errval_t sc_cap_notice(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    struct cte *kernel, *c;
    errval_t err = user_cap(d, f->rdi, CAP_KERNEL, 0, &kernel);
    if (err)
        return err;
    /* Notices of slots outside the caller's CNode are not its own: skip. */
    while ((err = capkern_notice_take(&c)) == ERR_OK) {
        uint64_t slot = monitor_slot(d, c);
        if (slot != CAPOPS_NO_SLOT) {
            *value = slot;
            return ERR_OK;
        }
    }
    return err;
}
