/*
 * Capabilities across cores: the monitors' side of ownership, copies on
 * other cores, delete, revoke and retype (docs/capabilities.md, "Across
 * cores"; the protocol is modelled in models/capops.pml, which names the
 * functions here).
 *
 * Owner. The core where an object's original lives owns it. When one of
 * its domains gives a capability to a domain on another core (capops_give),
 * the monitor asks its kernel for an anchor (CAPOPS_ANCHOR: a copy of the
 * original, marked REMOTE, in the monitor's CSpace), numbers the object and
 * records the cores that hold copies in a core set (coreset.h). The anchor
 * makes any delete or revoke on this core that would remove it fail with
 * ERR_CAP_REMOTE: such operations come here (capops_request) and are done
 * with the holder cores alone, never with every core.
 *
 * Holder. The receiving monitor re-creates the capability from its
 * description (SYS_CAP_CREATE: a FOREIGN root, which destroys nothing when
 * deleted and cannot be retyped without the owner's agreement), watches it
 * (CAP_REL_WATCH), and keeps one root per object however many copies its
 * domains take (capops_take gives a copy, a child of the root). When the
 * root loses its last child (a notice from the kernel), no copy is left
 * here: the root goes and the owner hears cap_released.
 *
 * The rules the model checks:
 *  - A core is in the owner's set before any copy exists there (the owner
 *    adds it, then sends the grant) and leaves it only when it says it holds
 *    none. A release and a grant can cross on the wire: the owner counts the
 *    grants it sent to each core that are not answered yet (every grant is
 *    answered), and a release from a core with grants still unanswered
 *    leaves it in the set (the answer, and a later release, follow in
 *    order on the same route).
 *  - Revoke locks the object at the owner (no new grant, no retype
 *    agreement: ERR_CAP_LOCKED), sends cap_revoke_call to the holders only,
 *    and waits at most CAPOPS_WAIT_NS for their answers; then the anchor
 *    goes (with the reservations below it) and the caller's own revoke runs
 *    on this core. A holder that did not answer in time stays in the set and
 *    the caller gets ERR_TIMEOUT.
 *  - A holder's revoke (cap_revoke_ask) is the same revoke, skipping the
 *    asker; before it answers OK the owner core's copies go too, the
 *    original handed over to its anchor (owner_copies_go), and ownership
 *    then moves to the asker, the only holder left (move_try, after the
 *    answer on the same route).
 *  - Retype of a FOREIGN capability: the holder asks the owner for the
 *    whole pages it would carve; the owner reserves them by retyping its
 *    anchor (so its own kernel refuses any overlap, ERR_OVERLAP, on this
 *    core or for any other holder), and the holder's kernel carves the
 *    objects inside an envelope (CAPOPS_RETYPE).
 */
#include "monitor.h"
#include "coreset.h"

#define MAX_OBJECTS 256       /* objects this core owns with copies elsewhere */
#define MAX_HELD 256          /* objects of other cores with copies here */
#define MAX_MAIL 256          /* copies waiting for their domain to take them */
#define MAX_GRANTS 128        /* (object, core) pairs with unanswered grants */
#define MAX_RESERVED 256      /* ranges reserved for holders' retypes */
#define MAX_ENVELOPES 256     /* agreed retypes done here */
#define MAX_RECLAIM MON_MAX_CHILDREN  /* RAM of ended domains waiting for remote copies to go (spawn.c keeps room) */
/* Bitmaps of wide core sets (more than CORESET_INLINE cores): at most half
 * for objects' holder sets (MAX_WIDE_OBJECTS), so that a revoke of each of
 * them always finds one for the set of holders it waits for. */
#define WIDE_SETS 64
#define MAX_WIDE_OBJECTS (WIDE_SETS / 2)
/* How long an owner waits for holders, and a holder for its owner. */
#define CAPOPS_WAIT_NS 5000000000ull
/* A grant not answered in this time was lost (a holder's answer it could
 * not send): the count goes, the core stays a holder until a revoke's
 * answer says otherwise (grant_expire). */
#define GRANT_WAIT_NS (2 * CAPOPS_WAIT_NS)

/* -- the owner's records ------------------------------------------------------- */

/* O_MOVING: ownership moves to a holder core (move_try); locked as for a
 * revoke, on both the old owner and the new one until every holder knows. */
enum obj_state { O_FREE = 0, O_IDLE, O_REVOKING, O_MOVING };

/* Moving ownership, on the old owner: M_WANTED (its last copy here went:
 * move when a holder can take over), M_ASKED (the new owner was sent the
 * records, waits for its MOVE_SYNC answer), M_TELLING (the other holders
 * are told, each answers), M_DONE (a tombstone: the anchor keeps the range
 * taken in the RAM it came from, the new owner is its only holder). On the
 * new owner: M_IN until MOVE_DONE. */
enum move_state { M_NONE = 0, M_WANTED, M_ASKED, M_TELLING, M_DONE, M_IN };
/* cap_move_part's kinds (if/monitor.if). */
enum { MOVE_HOLDER = 1, MOVE_RESERVE, MOVE_SYNC, MOVE_GONE, MOVE_DONE };

/* Who waits for a revoke to end: a client of this core, a holder's revoke
 * of an object of ours carved there (holder_revoke), or a holder core
 * that asked for its siblings' copies to go (W_ASKER: cap_revoke_ask). */
enum waiter_kind { W_NONE = 0, W_CLIENT, W_HOLDER, W_ASKER };
#define NO_CORE UINT32_MAX
struct waiter {
    uint8_t kind;
    uint8_t req;              /* W_CLIENT: CAPREQ_REVOKE or CAPREQ_DELETE */
    uint8_t broadcast;        /* ask every core (CAPOPS_BROADCAST: the benchmark's baseline) */
    uint8_t with_copies;      /* W_CLIENT delete: the copies elsewhere go too (CAPOPS_WITH_COPIES) */
    uint8_t local_ask;        /* W_CLIENT revoke of a copy of a moved-in object: answered when the others go */
    uint8_t take;             /* W_ASKER: its copy has CAP_RIGHT_GRANT: the owner core's copies go too */
    int handle;               /* W_CLIENT */
    uint64_t domain, slot;    /* W_CLIENT: the operation to run again */
    uint32_t held;            /* W_HOLDER, local_ask: the index of the held record (local_ask: NO_CORE if none) */
    uint32_t core, tag;       /* W_ASKER: the asking core (its copies stay) and its ask's tag */
};

struct object {
    uint8_t state;            /* enum obj_state */
    uint16_t gen;
    uint64_t domain;          /* whose give made the record: its quotas (docs/limits.md) */
    uint32_t type, rights;    /* the original's: a holder's root gets them */
    uint64_t base, bytes;
    capslot_t anchor;
    struct coreset holders;   /* cores that may hold copies */
    struct coreset waiting;   /* O_REVOKING: holders that have not answered */
    uint64_t deadline;
    uint32_t revoke_tag;      /* O_REVOKING: the calls' tag; an answer with another is late */
    uint64_t retry_after;     /* a reclaim's revoke that failed: not again before this */
    struct waiter waiter;
    /* Moving ownership (move_try): */
    uint8_t move;             /* enum move_state */
    errval_t move_err;        /* M_IN: a part that could not be recorded (the sync answers it) */
    uint16_t peer;            /* old owner: the new owner; M_IN: the old owner */
    uint32_t peer_obj;        /* ... and the object's number there */
    uint32_t held;            /* M_IN: the held record whose root becomes the original */
    uint32_t move_tag;
    uint64_t move_at;         /* M_WANTED: not before; M_ASKED, M_TELLING: send again then */
};
static struct object objects[MAX_OBJECTS];
static uint64_t wide_maps[WIDE_SETS][CORESET_WORDS];
static uint8_t wide_used[WIDE_SETS];
static struct coreset_pool pool = { wide_maps, wide_used, WIDE_SETS, 0 };

struct grant_count {
    uint32_t obj;             /* 0: free */
    uint16_t core;
    uint16_t count;
    bool lost;                /* a grant went unanswered: only a revoke's answer removes the core */
    uint64_t domain;          /* the giver whose grant made the entry (its quota) */
    uint64_t deadline;        /* count > 0: the last grant's answer is due by then */
};
static struct grant_count grants[MAX_GRANTS];

struct reserved {
    uint32_t obj;             /* 0: free */
    uint16_t core;
    uint64_t domain;          /* the object's (its quota) */
    uint64_t base, bytes;
    capslot_t slot;           /* the RAM retyped from the anchor */
};
static struct reserved reserved[MAX_RESERVED];

static capslot_t reclaim[MAX_RECLAIM];
/* What goes when reclaim[i] has gone (capops_reclaim_lent): the slot of
 * RAM carved from it, and a lent RAM's return to tell its instance. */
static struct reclaim_then {
    capslot_t also;
    uint64_t back_domain, back_base;
} reclaim_then[MAX_RECLAIM];

/* -- the holder's records ------------------------------------------------------ */

struct held {
    bool used, revoking;
    uint16_t owner;
    uint32_t obj;             /* the owner's number */
    uint64_t domain;          /* the grant's that made the record (its quota) */
    capslot_t root;           /* the FOREIGN root, watched */
    uint32_t mail;            /* copies waiting in the mailbox */
    uint32_t revoke_tag;      /* revoking: the owner's call's, for the answer */
};
static struct held held[MAX_HELD];

struct mail {
    bool used;
    bool untracked;           /* a Notify (nobody owns it), or a RAM or Frame given on this core: `root` is the capability */
    uint32_t held;
    capslot_t root;
    uint16_t from_core;
    uint32_t rights;          /* the copy's: minted from the root at take */
    uint64_t domain, from;
    uint64_t since;           /* when it came: the monitor's own (MONITOR_MAIL) expire */
};
static struct mail mailbox[MAX_MAIL];

/* RAM the memory service lent to a monitor (capops_ram_lend) that came
 * back: no core holds a copy any more. Its instance reads them
 * (capops_ram_returned) and puts the range back in its pool. */
#define MAX_RETURNED 64
struct returned {
    uint64_t domain, base;    /* domain 0: free */
};
static struct returned returned[MAX_RETURNED];

struct envelope {
    capslot_t slot;           /* 0: free */
    uint32_t held;
    uint64_t domain;          /* whose retype (its quota) */
};
static struct envelope envelopes[MAX_ENVELOPES];

/* A retype's answer: to the client, or (handle OWN_RETYPE) to spawn.c. */
#define OWN_RETYPE (-1)
static void retype_answer(int handle, errval_t err)
{
    if (handle == OWN_RETYPE)
        spawn_lent_retyped(err);
    else
        client_cap_reply(handle, CAPREQ_RETYPE, err);
}

/* A retype waiting for its owner's agreement (one per client at a time). */
struct retype_wait {
    bool used;
    int handle;
    uint64_t domain;
    struct capreq_args a;
    uint32_t held;
    uint16_t owner;           /* held[held].owner and .obj when asked: the record must still be that */
    uint32_t obj;             /* object's, and the answer must come from its owner */
    capslot_t root;           /* the FOREIGN root, and the whole pages, the owner was asked about */
    uint64_t base, bytes;
    uint32_t tag;
    uint64_t deadline;
};
static struct retype_wait retypes[MON_MAX_CLIENTS];

/* A client's revoke of a copy held from another core, waiting for the
 * owner to have every other holder core's copies removed, or its give of
 * such a copy on to a third core, waiting for the owner to have recorded
 * that core and sent the grant (one per client at a time: a client waits
 * for its answer). */
struct ask_wait {
    bool used;
    uint8_t req;              /* CAPREQ_REVOKE (cap_revoke_ask) or CAPREQ_GIVE (cap_give_on) */
    int handle;
    uint64_t domain;
    uint16_t owner;
    uint32_t obj, tag;
    uint64_t slot;            /* CAPREQ_REVOKE: the domain's revoked copy (its siblings here go when answered) */
    uint64_t deadline;
};
static struct ask_wait asks[MON_MAX_CLIENTS];

static struct {
    uint64_t given, taken, released, revokes, revoke_msgs, revoke_timeouts, retypes_agreed, retypes_refused,
        refused, forged, reclaimed, quota, grants_lost, handed_over, asked, asks_served, given_on, dead_holders,
        moved_out, moved_in, rehomed, siblings_kept, owner_revoked, owner_kept, lent, returned_lost;
} st;

/* -- small helpers --------------------------------------------------------------- */

bool cap_crosses(uint32_t type)
{
    switch (type) {
    case CAP_RAM:
    case CAP_FRAME:
    case CAP_DEVFRAME:
    case CAP_NOTIFY:
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
        return true;
    default:
        return false;
    }
}

static errval_t capops(uint32_t op, capslot_t disp, uint64_t slot, struct capops_call *c)
{
    c->op = op;
    c->disp = (uint32_t)disp;
    c->slot = slot;
    return sys_capops(SLOT_KERNEL, c);
}

static uint32_t obj_number(const struct object *o) { return (uint32_t)o->gen << 16 | (uint32_t)(o - objects); }

static struct object *obj_find(uint32_t number)
{
    uint32_t i = number & 0xffff;
    if (i >= MAX_OBJECTS || objects[i].state == O_FREE || obj_number(&objects[i]) != number)
        return 0;
    return &objects[i];
}

static struct object *obj_by_anchor(capslot_t anchor)
{
    for (uint32_t i = 0; i < MAX_OBJECTS; i++)
        if (objects[i].state != O_FREE && objects[i].anchor && objects[i].anchor == anchor)
            return &objects[i];
    return 0;
}

static struct grant_count *grant_of(uint32_t obj, uint32_t core, bool make)
{
    struct grant_count *free_one = 0;
    for (uint32_t i = 0; i < MAX_GRANTS; i++) {
        if (grants[i].obj == obj && grants[i].core == core)
            return &grants[i];
        if (!grants[i].obj && !free_one)
            free_one = &grants[i];
    }
    if (!make || !free_one)
        return 0;
    *free_one = (struct grant_count){ .obj = obj, .core = (uint16_t)core };
    return free_one;
}

static uint32_t grants_unanswered(uint32_t obj)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_GRANTS; i++)
        n += grants[i].obj == obj ? grants[i].count : 0;
    return n;
}

static struct held *held_find(uint32_t owner, uint32_t obj)
{
    for (uint32_t i = 0; i < MAX_HELD; i++)
        if (held[i].used && held[i].owner == owner && held[i].obj == obj)
            return &held[i];
    return 0;
}

static struct held *held_by_root(capslot_t root)
{
    for (uint32_t i = 0; i < MAX_HELD; i++)
        if (held[i].used && held[i].root == root)
            return &held[i];
    return 0;
}

static uint32_t held_index(const struct held *h) { return (uint32_t)(h - held); }

/* A copy whose original here is a root we took over (ownership moved
 * here): no longer FOREIGN, and still our held record's root (its old
 * owner's anchor keeps the range until it goes). */
static bool moved_here(const struct capops_call *lin)
{
    return lin->root != CAPOPS_NO_SLOT && !(lin->root_flags & CAP_ID_FOREIGN) && held_by_root(lin->root);
}

/* What may change owner: memory no kernel object lives in. */
static bool movable(uint32_t type) { return type == CAP_RAM || type == CAP_FRAME || type == CAP_DEVFRAME; }

/* -- per-domain quotas (MON_CAPS_*_PER_DOMAIN, docs/limits.md) ------------------------ */
/* Every table is shared by the core's domains; a domain past its own share
 * gets ERR_QUOTA at once, and the others still find room. */

static uint32_t objects_of(uint64_t domain, bool wide_only)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_OBJECTS; i++)
        n += objects[i].state != O_FREE && (domain == UINT64_MAX || objects[i].domain == domain) &&
             (!wide_only || objects[i].holders.wide);
    return n;
}

static uint32_t grants_of(uint64_t domain)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_GRANTS; i++)
        n += grants[i].obj && grants[i].domain == domain;
    return n;
}

static uint32_t reserved_of(uint64_t domain)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_RESERVED; i++)
        n += reserved[i].obj && reserved[i].domain == domain;
    return n;
}

static uint32_t held_of(uint64_t domain)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_HELD; i++)
        n += held[i].used && held[i].domain == domain;
    return n;
}

static uint32_t envelopes_of(uint64_t domain)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_ENVELOPES; i++)
        n += envelopes[i].slot && envelopes[i].domain == domain;
    return n;
}

static errval_t quota(bool over)
{
    st.quota += over;
    return over ? ERR_QUOTA : ERR_OK;
}

static bool has_children(capslot_t slot)
{
    struct cap_identity id;
    return sys_cap_identify(slot, &id) == ERR_OK && (id.flags & CAP_ID_HAS_CHILDREN);
}

/* -- the owner ------------------------------------------------------------------- */

/* Forget an object whose anchor is gone (or never was): its reservations,
 * counts and set go too. */
static void obj_forget(struct object *o)
{
    uint32_t n = obj_number(o);
    for (uint32_t i = 0; i < MAX_RESERVED; i++)
        if (reserved[i].obj == n) {
            if (reserved[i].slot)
                cap_free(reserved[i].slot);   /* empty already when the anchor went */
            reserved[i] = (struct reserved){ 0 };
        }
    for (uint32_t i = 0; i < MAX_GRANTS; i++)
        if (grants[i].obj == n)
            grants[i] = (struct grant_count){ 0 };
    coreset_clear(&pool, &o->holders);
    coreset_clear(&pool, &o->waiting);
    uint16_t gen = o->gen;
    *o = (struct object){ .gen = (uint16_t)(gen + 1 ? gen + 1 : 1) };
}

/* No core holds a copy: the anchor goes (with the reservations under it),
 * and the object lives on only in what this core holds. */
static void obj_drop_anchor(struct object *o)
{
    if (o->domain & LENT_BIT)
        capops_ram_came_back(o->domain & ~LENT_BIT, o->base);
    struct capops_call c = { .clear = CAP_REL_REMOTE | CAP_REL_WATCH | CAP_REL_ORPHAN };
    capops(CAPOPS_RELATE, 0, o->anchor, &c);
    sys_cap_revoke(o->anchor);
    cap_free(o->anchor);
    obj_forget(o);
}

/* Does a core other than `keep` hold copies, or have a grant unanswered? */
static bool others_hold(struct object *o, uint32_t keep)
{
    for (int c = coreset_next(&pool, &o->holders, -1); c >= 0; c = coreset_next(&pool, &o->holders, c))
        if ((uint32_t)c != keep)
            return true;
    for (uint32_t i = 0; i < MAX_GRANTS; i++)
        if (grants[i].obj == obj_number(o) && grants[i].count && grants[i].core != keep)
            return true;
    return false;
}

static void start_revoke(struct object *o, const struct waiter *w);
static void move_gone(struct object *o, uint32_t core);
static void siblings_go(uint64_t domain, uint64_t slot, struct held *h);
static void move_try(struct object *o);
static void client_retry(const struct waiter *w);
static void holder_revoke(struct held *h);
static void reclaim_kick(void);
static void reclaim_scan(void);

/* A holder's revoke (W_ASKER) removed the copies on every other holder
 * core: the copies on this core go too, the original among them (a revoke
 * leaves only the revoked copy, as on one core). The original is handed
 * over (CAPOPS_HAND_OVER_ANCHOR: the anchor takes its place, so the
 * object's range stays taken in the RAM it came from, and its local copies
 * and what was carved from them go), and for memory ownership then moves
 * to the asker, the only holder left (move_try, after the answer, on the
 * same route). Kept, and counted (owner_kept): every copy when the revoked
 * one was lent (no CAP_RIGHT_GRANT: `take` is false; its giver keeps the
 * original to take the memory back, as the memory service does), a type
 * that does not move (page tables: a domain may run on one), an original the monitor holds
 * itself (ownership moved here: its root; a second move is not built), a
 * hand-over the kernel refuses (something carved from the original has
 * copies elsewhere, or is a CNode), an asker no longer recorded (it let
 * go, or was fenced, meanwhile). */
static void owner_copies_go(struct object *o, uint32_t asker, bool take)
{
    struct capops_call lin = { 0 }, c = { 0 };
    if ((o->move != M_NONE && o->move != M_WANTED) || capops(CAPOPS_LINEAGE, 0, o->anchor, &lin))
        return;   /* a tombstone: nothing of it is here */
    bool asker_holds = coreset_has(&pool, &o->holders, asker);
    if (lin.root == o->anchor) {
        /* Handed over already (the domain deleted the original through
         * us), or adopted (its domain ended: the reclaim revokes it). */
        if (lin.root_flags & CAP_ID_ORPHAN)
            return;
    } else if (!take || !movable(o->type) || lin.root != CAPOPS_NO_SLOT || !asker_holds ||
               capops(CAPOPS_HAND_OVER_ANCHOR, 0, o->anchor, &c)) {
        st.owner_kept++;
        return;
    } else {
        st.owner_revoked++;
    }
    if (movable(o->type) && o->move == M_NONE && asker_holds)
        o->move = M_WANTED;
}

/* Every holder answered (or the wait ended): unlock, and go on with
 * whatever waited. */
static void revoke_done(struct object *o, errval_t err)
{
    struct waiter w = o->waiter;
    uint32_t number = obj_number(o);
    o->waiter = (struct waiter){ 0 };
    o->state = O_IDLE;
    /* An asker's copies stay: done when no other core holds one. */
    uint32_t keep = w.kind == W_ASKER ? w.core : NO_CORE;
    if (!err && !others_hold(o, keep)) {
        if (coreset_count(&o->holders) == 0 && grants_unanswered(number) == 0)
            obj_drop_anchor(o);
    } else if (!err) {
        err = ERR_CAP_LOCKED;   /* a grant crossed the revoke: try again */
    }
    if (err)
        st.revoke_timeouts += err == ERR_TIMEOUT;
    if (err && w.kind == W_NONE)
        o->retry_after = now_ns() + CAPOPS_WAIT_NS;   /* reclaim_kick tries again later, not at once */
    if (w.kind == W_CLIENT) {
        if (!err && w.local_ask)
            siblings_go(w.domain, w.slot, w.held == NO_CORE ? 0 : &held[w.held]);
        if (err || w.local_ask)
            client_cap_reply(w.handle, w.req, err);
        else
            client_retry(&w);
    } else if (w.kind == W_ASKER) {
        bool kept = obj_find(number) == o;   /* the anchor stays: the asker holds copies */
        if (!err && kept)
            owner_copies_go(o, w.core, w.take);   /* before the answer: the revoke is whole when it returns */
        struct idl_chan *back = route(w.core);
        if (back)
            monitor_cap_revoke_ask_reply_send(back, (uint16_t)w.core, (uint16_t)my_core, w.tag, err, number);
        if (!err && kept && o->move == M_WANTED)
            move_try(o);   /* after the answer, on the same route: the asker hears it first */
    } else if (w.kind == W_HOLDER) {
        struct held *h = &held[w.held];
        if (h->used && h->revoking) {
            if (err) {
                h->revoking = false;
                struct idl_chan *back = route(h->owner);
                if (back)
                    monitor_cap_revoke_reply_send(back, h->owner, (uint16_t)my_core, h->revoke_tag, err, h->obj);
            } else {
                holder_revoke(h);
            }
        }
    }
    reclaim_kick();
}

static void revoke_check_done(struct object *o)
{
    if (o->state == O_REVOKING && coreset_count(&o->waiting) == 0)
        revoke_done(o, ERR_OK);
}

/* Lock the object and ask each holder, and only the holders, to remove
 * every copy (the model's Revoke). */
static void start_revoke(struct object *o, const struct waiter *w)
{
    o->state = O_REVOKING;
    o->waiter = w ? *w : (struct waiter){ 0 };
    o->deadline = now_ns() + CAPOPS_WAIT_NS;
    st.revokes++;
    o->revoke_tag = new_tag();
    coreset_clear(&pool, &o->waiting);
    /* The set of holders to wait for may need a bitmap of its own: there is
     * one for each wide object (MAX_WIDE_OBJECTS); the broadcast baseline
     * may find none, and says so at once rather than wait for nobody. */
    bool wide = w && w->broadcast ? ncores - 1 > CORESET_INLINE : o->holders.wide;
    if (wide && pool.in_use >= pool.nmaps) {
        revoke_done(o, ERR_TOO_MANY);
        return;
    }
    if (w && w->broadcast) {
        /* The baseline: every other live core, as a plain loop would. */
        for (uint32_t c = 0; c < ncores; c++) {
            struct idl_chan *to = c == my_core || !core_alive(c) ? 0 : route(c);
            if (!to || coreset_add(&pool, &o->waiting, c))
                continue;
            st.revoke_msgs++;
            monitor_cap_revoke_call_send(to, (uint16_t)c, (uint16_t)my_core, o->revoke_tag, obj_number(o));
        }
    } else {
        uint32_t keep = w && w->kind == W_ASKER ? w->core : NO_CORE;
        for (int c = coreset_next(&pool, &o->holders, -1); c >= 0; c = coreset_next(&pool, &o->holders, c)) {
            if ((uint32_t)c == keep)
                continue;   /* the asker: its copies stay */
            struct idl_chan *to = route((uint32_t)c);
            if (!to || coreset_add(&pool, &o->waiting, (uint32_t)c))
                continue;   /* unreachable: it stays a holder, the wait times out */
            st.revoke_msgs++;
            monitor_cap_revoke_call_send(to, (uint16_t)c, (uint16_t)my_core, o->revoke_tag, obj_number(o));
        }
    }
    uint32_t keep = w && w->kind == W_ASKER ? w->core : NO_CORE;
    if (coreset_count(&o->waiting) == 0 && coreset_count(&o->holders) > coreset_has(&pool, &o->holders, keep)) {
        revoke_done(o, ERR_NO_ROUTE);
        return;
    }
    revoke_check_done(o);
}

/* A holder says it holds nothing (a release, or its answer to a revoke). */
/* The core leaves the set, and a revoke's wait, only when no grant to it
 * is unanswered: a release sent before a later grant arrived there says
 * nothing of that grant's copy (models/capops.pml found a revoke that
 * ended early on such a release). */
/* A core whose grant went unanswered (grant_expire) leaves only on a
 * revoke's answer (`revoked`): a release it sent may be older than the
 * grant whose answer was lost. */
static void holder_gone(struct object *o, uint32_t core, bool revoked)
{
    struct grant_count *g = grant_of(obj_number(o), core, false);
    if (!g || (g->count == 0 && (!g->lost || revoked))) {
        if (g)
            *g = (struct grant_count){ 0 };
        coreset_del(&pool, &o->holders, core);
        coreset_del(&pool, &o->waiting, core);
    }
    if (o->state == O_REVOKING)
        revoke_check_done(o);
    else if (o->state != O_MOVING && coreset_count(&o->holders) == 0 && grants_unanswered(obj_number(o)) == 0)
        obj_drop_anchor(o);   /* (a move decides at its end: move_finish, MOVE_DONE) */
}

/* The model's Give, at the owner: record the core, then send the grant. */
/* giver, giver_core: who gave (a holder's domain for a give on); quotas
 * are the object's domain's then (`payer`), else the giver's. */
static errval_t give_owned(capslot_t cap, const struct cap_wire *w, const struct capops_call *lin, uint32_t core,
                           uint64_t to, uint64_t giver, uint32_t giver_core, uint64_t payer)
{
    struct object *o = 0;
    errval_t err;
    if (lin->anchor != CAPOPS_NO_SLOT) {
        o = obj_by_anchor(lin->anchor);
        if (!o)
            return ERR_CAP_REMOTE;   /* an anchor we do not know: adopted, being reclaimed */
    } else {
        if ((err = quota(objects_of(payer, false) >= MON_CAPS_OBJECTS_PER_DOMAIN)))
            return err;
        for (uint32_t i = 0; i < MAX_OBJECTS && !o; i++)
            if (objects[i].state == O_FREE)
                o = &objects[i];
        if (!o)
            return ERR_TOO_MANY;
        capslot_t anchor;
        struct capops_call c = { 0 };
        if ((err = slot_alloc(&anchor)))
            return err;
        c.dst = anchor;
        if ((err = capops(CAPOPS_ANCHOR, 0, cap, &c))) {
            slot_free(anchor);
            return err;
        }
        struct cap_identity id;
        sys_cap_identify(anchor, &id);
        uint16_t gen = o->gen ? o->gen : 1;
        *o = (struct object){ .state = O_IDLE, .gen = gen, .domain = payer, .type = id.type, .rights = id.rights,
                              .base = id.base, .bytes = id.bytes, .anchor = anchor };
    }
    if (o->state == O_REVOKING)
        return ERR_CAP_LOCKED;
    if (o->state == O_MOVING)
        return ERR_CAP_LOCKED;
    if (o->move == M_DONE)
        return ERR_NOT_PERMITTED;   /* a tombstone: its new owner gives */
    /* The core may hold copies already (its grants all answered): an undo
     * below must not remove it then (the model's BUG_UNDO_DROPS_HOLDER). */
    bool was_holder = coreset_has(&pool, &o->holders, core);
    /* The set widens past CORESET_INLINE cores: a bitmap from the pool. */
    bool widens = !was_holder && !o->holders.wide && coreset_count(&o->holders) == CORESET_INLINE;
    struct grant_count *g = grant_of(obj_number(o), core, false);
    if (!g && !(err = quota(grants_of(payer) >= MON_CAPS_GRANTS_PER_DOMAIN)) &&
        (g = grant_of(obj_number(o), core, true)))
        g->domain = payer;
    if (!err && widens)
        err = quota(objects_of(o->domain, true) >= MON_CAPS_WIDE_PER_DOMAIN);
    if (!err && widens && objects_of(UINT64_MAX, true) >= MAX_WIDE_OBJECTS)
        err = ERR_TOO_MANY;
    if (!err && (!g || g->count == UINT16_MAX))
        err = ERR_TOO_MANY;
    else if (!err)
        err = coreset_add(&pool, &o->holders, core);
    struct idl_chan *via = route(core);
    if (!err && !via)
        err = ERR_NO_ROUTE;
    /* The object as its original is (the holder's root), this copy's rights
     * for the domain (a read-only mint stays read-only there). */
    if (!err)
        err = monitor_cap_grant_send(via, (uint16_t)core, (uint16_t)my_core, new_tag(), o->type, w->rights,
                                     o->rights, o->base, o->bytes, obj_number(o), to, giver, (uint16_t)giver_core);
    if (!err) {
        g->count++;
        g->deadline = now_ns() + GRANT_WAIT_NS;
        return ERR_OK;
    }
    /* Undo: nothing was sent there. The core leaves the set only if this
     * call put it there; the anchor goes if it stands for nothing. */
    if (g && g->count == 0 && !g->lost)
        *g = (struct grant_count){ 0 };
    if (!was_holder)
        coreset_del(&pool, &o->holders, core);
    if (coreset_count(&o->holders) == 0 && grants_unanswered(obj_number(o)) == 0) {
        o->domain &= ~LENT_BIT;   /* its lender hears the error, not a return */
        obj_drop_anchor(o);
    }
    return err;
}

/* A RAM or Frame the memory service (servers/mem) gives to a domain of
 * this core, one of its clients: our copy waits in the mailbox as it is (no
 * anchor: nothing crosses) and moves to the domain at take; the giver's
 * revoke or delete reaches it wherever it is, as any local copy. */
static errval_t give_here(capslot_t cap, uint64_t to, uint64_t giver)
{
    uint32_t per_domain = 0;
    struct mail *m = 0;
    for (uint32_t i = 0; i < MAX_MAIL; i++) {
        if (mailbox[i].used)
            per_domain += mailbox[i].domain == to;
        else if (!m)
            m = &mailbox[i];
    }
    if (per_domain >= MON_CAPS_WAITING_PER_DOMAIN)
        return ERR_QUOTA;
    if (!m)
        return ERR_TOO_MANY;
    *m = (struct mail){ .used = true, .untracked = true, .root = cap, .from_core = (uint16_t)my_core,
                        .domain = to, .from = giver, .since = now_ns() };
    st.given += to != MONITOR_MAIL;   /* (a lend is counted apart: lent) */
    return ERR_OK;
}

static errval_t give_to(capslot_t cap, uint32_t core, uint64_t to, uint64_t domain, uint64_t payer);

errval_t capops_give_to(capslot_t cap, uint32_t core, uint64_t to, uint64_t domain)
{
    return give_to(cap, core, to, domain, domain);
}

/* `payer`: whose quotas the object's record counts against (LENT_BY for a
 * lend, else the giver). */
static errval_t give_to(capslot_t cap, uint32_t core, uint64_t to, uint64_t domain, uint64_t payer)
{
    struct cap_identity id;
    struct capops_call lin = { 0 };
    errval_t err = sys_cap_identify(cap, &id);
    capslot_t to_disp;
    if (!err && core == my_core && (id.type == CAP_RAM || id.type == CAP_FRAME) && spawn_is_mem(domain) &&
        !child_dispatcher(to, &to_disp)) {
        if ((err = give_here(cap, to, domain)))
            cap_free(cap);
        return err;
    }
    if (!err && !cap_crosses(id.type))
        err = ERR_CAP_NOT_TRANSFERABLE;
    else if (!err && (core >= ncores || core == my_core))
        err = ERR_INVALID_ARG;
    else if (!err && !core_alive(core))
        err = ERR_CORE_DOWN;
    struct idl_chan *via = err ? 0 : route(core);
    struct cap_wire w = { 0 };
    if (!err && !via)
        err = ERR_NO_ROUTE;
    if (!err)
        err = cap_export(via, cap, &w);   /* the description, recorded as sent */
    if (!err && id.type == CAP_NOTIFY) {
        /* A Notify names a core, no memory: nothing to own or take back. */
        err = monitor_cap_grant_send(via, (uint16_t)core, (uint16_t)my_core, new_tag(), w.type, w.rights, w.rights,
                                     w.base, w.bytes, 0, to, domain, (uint16_t)my_core);
    } else if (!err && !(err = capops(CAPOPS_LINEAGE, 0, cap, &lin))) {
        /* A holder does not give again: the owner alone records holders.
         * A copy of something whose original is the monitor's own (a
         * channel's frame) does not cross: the monitor frees that original
         * as its own (frame_release), and an anchor under it would keep it
         * for ever. */
        if (lin.root_flags & CAP_ID_FOREIGN)
            err = ERR_CAP_FOREIGN;
        else if (lin.root != CAPOPS_NO_SLOT && lin.root != cap && !moved_here(&lin))
            err = ERR_NOT_PERMITTED;
        else
            err = give_owned(cap, &w, &lin, core, to, domain, my_core, payer);
    }
    cap_free(cap);   /* our copy: the anchor stands for the object now */
    if (err)
        st.refused += err == ERR_CAP_NOT_TRANSFERABLE;
    else
        st.given += to != MONITOR_MAIL;
    return err;
}

/* An owner we cannot reach: a core fenced as dead says so (the asker can
 * act on it: what it holds stays usable, nothing can be asked of the
 * owner again), any other missing route is ERR_NO_ROUTE. */
static errval_t no_route_to(uint32_t owner)
{
    return core_alive(owner) ? ERR_NO_ROUTE : ERR_CORE_DOWN;
}

/* A domain gives on a copy it holds from another core (the model's
 * GiveOn): the owner records the new holder core and sends it the grant
 * itself (capops_on_give_on), so no copy is usable anywhere before its
 * owner records it; we answer the domain when the owner answers us. */
static void give_on(int handle, uint64_t domain, capslot_t cap, const struct cap_identity *id,
                    const struct capops_call *lin, uint32_t core, uint64_t to)
{
    struct held *h = lin->root == CAPOPS_NO_SLOT ? 0 : held_by_root(lin->root);
    struct ask_wait *q = 0;
    for (uint32_t i = 0; i < MON_MAX_CLIENTS && !q; i++)
        if (!asks[i].used)
            q = &asks[i];
    errval_t err = ERR_OK;
    if (!h)
        err = ERR_CAP_FOREIGN;   /* a root we do not record: cannot happen but by a bug */
    else if (h->revoking)
        err = ERR_CAP_LOCKED;
    else if (core >= ncores || core == my_core)
        err = ERR_INVALID_ARG;
    else if (core == h->owner)
        err = ERR_NOT_PERMITTED;   /* its owner's domains use the original's copies */
    else if (!core_alive(core))
        err = ERR_CORE_DOWN;
    else if (!q)
        err = ERR_TOO_MANY;
    struct idl_chan *to_owner = err ? 0 : route(h->owner);
    if (!err && !to_owner)
        err = no_route_to(h->owner);
    if (!err) {
        *q = (struct ask_wait){ .used = true, .req = CAPREQ_GIVE, .handle = handle, .domain = domain,
                                .owner = h->owner, .obj = h->obj, .tag = new_tag(),
                                .deadline = now_ns() + CAPOPS_WAIT_NS };
        if ((err = monitor_cap_give_on_send(to_owner, h->owner, (uint16_t)my_core, q->tag, h->obj, id->rights,
                                            (uint16_t)core, to, domain)))
            *q = (struct ask_wait){ 0 };
    }
    cap_free(cap);   /* our copy of the domain's: the grant comes from the owner */
    if (err)
        client_cap_reply(handle, CAPREQ_GIVE, err);
    else
        st.given_on++;
}

void capops_give(int handle, uint64_t domain, capslot_t cap, uint32_t core, uint64_t to)
{
    struct cap_identity id;
    struct capops_call lin = { 0 };
    if (to >= MONITOR_MAIL) {
        /* The monitors' own mailboxes (a span's page tables, RAM lent for
         * a spawn) take only what the monitors put there. */
        cap_free(cap);
        client_cap_reply(handle, CAPREQ_GIVE, ERR_INVALID_ARG);
        return;
    }
    if (!sys_cap_identify(cap, &id) && cap_crosses(id.type) && id.type != CAP_NOTIFY &&
        !capops(CAPOPS_LINEAGE, 0, cap, &lin) && (lin.root_flags & CAP_ID_FOREIGN)) {
        give_on(handle, domain, cap, &id, &lin, core, to);
        return;
    }
    client_cap_reply(handle, CAPREQ_GIVE, capops_give_to(cap, core, to, domain));
}

/* A holder's domain gives its copy on (cap_give_on): as a give of our own,
 * the core joins the set before the grant goes; refused while revoking,
 * or from a core that is no holder (its copies went: nothing to give). */
errval_t capops_on_give_on(const struct monitor_cap_give_on_args *a)
{
    struct object *o = obj_find(a->obj);
    errval_t err = ERR_OK;
    if (!o || !coreset_has(&pool, &o->holders, a->src))
        err = ERR_NOT_PERMITTED;
    else if (o->state == O_REVOKING)
        err = ERR_CAP_LOCKED;
    else if (o->state == O_MOVING)
        err = ERR_CAP_LOCKED;   /* asked again of the new owner once told */
    else if (a->core >= ncores || a->core == my_core || a->core == a->src)
        err = ERR_INVALID_ARG;
    else if (!core_alive(a->core))
        err = ERR_CORE_DOWN;
    if (!err) {
        /* Rights never grow: the holder's copy's, within the original's. */
        struct cap_wire w = { .type = o->type, .rights = a->rights & o->rights, .base = o->base, .bytes = o->bytes };
        struct capops_call lin = { .anchor = o->anchor, .root = CAPOPS_NO_SLOT };
        err = give_owned(0, &w, &lin, a->core, a->domain, a->giver, a->src, o->domain);
        st.given += !err;
    }
    struct idl_chan *back = route(a->src);
    return back ? monitor_cap_give_on_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->obj)
                : ERR_NO_ROUTE;
}

errval_t capops_on_grant_reply(const struct monitor_cap_grant_reply_args *a)
{
    struct object *o = obj_find(a->obj);
    struct grant_count *g = o ? grant_of(a->obj, a->src, false) : 0;
    if (!g || !g->count) {
        if (!a->obj || (g && g->lost))
            return ERR_OK;   /* untracked (Notify), or later than grant_expire waited */
        st.forged++;   /* no grant of ours waits for this answer */
        return ERR_INVALID_ARG;
    }
    if (--g->count == 0 && !g->lost)
        *g = (struct grant_count){ 0 };
    /* A refused grant is followed by a release if nothing is held there. */
    if (o->state == O_IDLE && coreset_count(&o->holders) == 0 && grants_unanswered(a->obj) == 0)
        obj_drop_anchor(o);
    return ERR_OK;
}

errval_t capops_on_released(const struct monitor_cap_released_args *a)
{
    struct object *o = obj_find(a->obj);
    if (!o)
        return ERR_OK;   /* late: a revoke removed it first */
    if (!coreset_has(&pool, &o->holders, a->src)) {
        st.forged++;   /* not a holder: refused and counted */
        return ERR_INVALID_ARG;
    }
    st.released += !(o->domain & LENT_BIT);
    if ((o->move == M_ASKED || o->move == M_TELLING) && a->src != o->peer) {
        move_gone(o, a->src);   /* released before it heard of the move: the new owner forgets it */
        return ERR_OK;
    }
    holder_gone(o, a->src, false);
    return ERR_OK;
}

errval_t capops_on_revoke_reply(const struct monitor_cap_revoke_reply_args *a)
{
    struct object *o = obj_find(a->obj);
    /* Asked by the revoke under way: an answer to an earlier one (its wait
     * ended) has another tag. */
    bool asked = o && o->state == O_REVOKING && a->tag == o->revoke_tag && coreset_has(&pool, &o->waiting, a->src);
    if (!o || (!asked && !coreset_has(&pool, &o->holders, a->src)))
        return ERR_OK;   /* it answered by a release already */
    if (a->err) {
        if (asked)
            revoke_done(o, a->err);
        return ERR_OK;
    }
    /* An answer to the revoke under way says the core holds nothing (no
     * grant could follow the call); a late one only what a release says:
     * a grant may have gone there since. */
    holder_gone(o, a->src, asked);   /* late too (the wait ended): it holds nothing, as a release says */
    return ERR_OK;
}

/* A holder's domain revoked its copy (the model's Ask): the copies on every
 * other holder core go, as in the owner's own revoke (locked, holders
 * only, each answers before the asker hears); the asker's stay. */
errval_t capops_on_revoke_ask(const struct monitor_cap_revoke_ask_args *a)
{
    struct object *o = obj_find(a->obj);
    errval_t err = ERR_OK;
    if (!o || !coreset_has(&pool, &o->holders, a->src))
        err = ERR_NOT_PERMITTED;   /* not a holder (it released meanwhile, or a forgery) */
    else if (o->state == O_REVOKING)
        err = ERR_CAP_LOCKED;
    else if (o->state == O_MOVING)
        err = ERR_CAP_LOCKED;
    else if (o->move == M_DONE)
        err = ERR_NOT_PERMITTED;   /* a tombstone: its one holder is the owner now, and asks nobody */
    if (!err) {
        struct waiter w = { .kind = W_ASKER, .core = a->src, .tag = a->tag, .take = a->take != 0 };
        st.asks_served++;
        start_revoke(o, &w);   /* revoke_done answers */
        return ERR_OK;
    }
    struct idl_chan *back = route(a->src);
    return back ? monitor_cap_revoke_ask_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->obj)
                : ERR_NO_ROUTE;
}

/* A holder wants to carve [base, base+bytes): reserve it by retyping the
 * anchor (the model's Agree). */
errval_t capops_on_retype_call(const struct monitor_cap_retype_call_args *a)
{
    struct object *o = obj_find(a->obj);
    errval_t err = ERR_OK;
    if (!o || !coreset_has(&pool, &o->holders, a->src))
        err = ERR_NOT_PERMITTED;
    else if (o->state == O_REVOKING || o->state == O_MOVING)
        err = ERR_CAP_LOCKED;
    else if (a->bytes == 0 || a->base < o->base || a->base - o->base > o->bytes ||
             a->bytes > o->bytes - (a->base - o->base))
        err = ERR_RETYPE_OVERFLOW;
    bool inside = false;
    for (uint32_t i = 0; !err && i < MAX_RESERVED && !inside; i++)
        inside = reserved[i].obj == a->obj && reserved[i].core == a->src && a->base >= reserved[i].base &&
                 a->base + a->bytes <= reserved[i].base + reserved[i].bytes;
    if (!err && !inside) {
        struct reserved *r = 0;
        capslot_t s = 0;
        for (uint32_t i = 0; i < MAX_RESERVED && !r; i++)
            if (!reserved[i].obj)
                r = &reserved[i];
        if (!r)
            err = ERR_TOO_MANY;
        else if ((err = quota(reserved_of(o->domain) >= MON_CAPS_RESERVED_PER_DOMAIN)))
            ;
        else if (!(err = slot_alloc(&s)) &&
                 (err = sys_cap_retype(o->anchor, CAP_RAM, a->bytes, a->base - o->base, 1, s)))
            slot_free(s);
        if (!err)
            *r = (struct reserved){ .obj = a->obj, .core = a->src, .domain = o->domain, .base = a->base,
                                    .bytes = a->bytes, .slot = s };
    }
    /* (A monitor's own carve of RAM lent to it is not a client's retype.) */
    if (o && (o->domain & LENT_BIT))
        ;
    else if (err)
        st.retypes_refused++;
    else
        st.retypes_agreed++;
    struct idl_chan *back = route(a->src);
    return back ? monitor_cap_retype_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->obj)
                : ERR_NO_ROUTE;
}

/* -- moving ownership (issue 10, item 5) ------------------------------------------ */
/*
 * When nothing of an object is left on its owner core but the anchor (its
 * original was deleted while copies live elsewhere: the hand-over), the
 * owner O makes one holder core N the owner, agreeing with the holder
 * cores only (the model is models/capmove.pml):
 *   1. O locks the object (O_MOVING: no grant, give-on, ask or retype
 *      agreement meanwhile, ERR_CAP_LOCKED) and sends N, in order on one
 *      route, cap_move_call, one MOVE_HOLDER per other holder core, one
 *      MOVE_RESERVE per range reserved for one's retypes, and MOVE_SYNC.
 *   2. N's kernel makes its FOREIGN root the original (CAPOPS_TAKE_OVER),
 *      N anchors it and reserves those ranges again under its anchor (so
 *      its kernel refuses any overlap from now on), records the holders,
 *      keeps the object locked, and answers cap_move_reply. On any error
 *      it undoes all that and O unlocks (and tries again later).
 *   3. O tells each other holder K (cap_moved): K's record names N from
 *      then on, and K answers (cap_moved_reply); what K sent O before
 *      (a release, a retype or give-on asked) arrives first on the same
 *      route: a release is forwarded to N (MOVE_GONE), the rest refused
 *      as locked, to be asked again of N.
 *   4. When every K has answered, O sends MOVE_DONE: N unlocks. O keeps a
 *      tombstone: its anchor, whose only holder is N. N's root has N's
 *      anchor as a child while any core holds a copy, so N releases the
 *      tombstone (cap_released, as any holder) only when the last copy
 *      anywhere is gone: then O drops its anchor and the range is free in
 *      the RAM it came from. A revoke of that RAM on O reaches N, which
 *      revokes its holders first (holder_revoke, W_HOLDER), as for any
 *      object carved from a copy.
 * Unanswered messages are sent again every CAPOPS_WAIT_NS (the answers
 * are idempotent); only a fenced core ends a move early (capops_core_dead).
 */

static void move_send(struct object *o)
{
    uint32_t n = o->peer, num = obj_number(o);
    struct idl_chan *to = route(n);
    errval_t err = to ? ERR_OK : ERR_NO_ROUTE;
    if (!err)
        err = monitor_cap_move_call_send(to, (uint16_t)n, (uint16_t)my_core, o->move_tag, num, o->type, o->rights,
                                         o->base, o->bytes);
    for (int c = coreset_next(&pool, &o->holders, -1); !err && c >= 0; c = coreset_next(&pool, &o->holders, c))
        if ((uint32_t)c != n)
            err = monitor_cap_move_part_send(to, (uint16_t)n, (uint16_t)my_core, o->move_tag, num, MOVE_HOLDER,
                                             (uint16_t)c, 0, 0);
    for (uint32_t i = 0; !err && i < MAX_RESERVED; i++)
        if (reserved[i].obj == num && reserved[i].core != n && coreset_has(&pool, &o->holders, reserved[i].core))
            err = monitor_cap_move_part_send(to, (uint16_t)n, (uint16_t)my_core, o->move_tag, num, MOVE_RESERVE,
                                             reserved[i].core, reserved[i].base, reserved[i].bytes);
    if (!err)
        monitor_cap_move_part_send(to, (uint16_t)n, (uint16_t)my_core, o->move_tag, num, MOVE_SYNC, 0, 0, 0);
    o->move_at = now_ns() + CAPOPS_WAIT_NS;   /* no answer by then: all of it again */
}

/* The model's Move: lock, and send the records to a holder core that can
 * take over: one whose grants are all answered (it has its root). */
static void move_try(struct object *o)
{
    uint32_t num = obj_number(o);
    if (o->state != O_IDLE || o->move != M_WANTED || now_ns() < o->move_at)
        return;
    for (uint32_t i = 0; i < MAX_GRANTS; i++)
        if (grants[i].obj == num)
            return;   /* an answer would come here: not yet (a lost one: never) */
    int n = -1;
    for (int c = coreset_next(&pool, &o->holders, -1); c >= 0 && n < 0; c = coreset_next(&pool, &o->holders, c))
        if (core_alive((uint32_t)c) && route((uint32_t)c))
            n = c;
    if (n < 0)
        return;
    o->state = O_MOVING;
    o->move = M_ASKED;
    o->peer = (uint16_t)n;
    o->move_tag = new_tag();
    move_send(o);
}

static void move_tell(struct object *o)
{
    for (int c = coreset_next(&pool, &o->waiting, -1); c >= 0; c = coreset_next(&pool, &o->waiting, c)) {
        struct idl_chan *to = route((uint32_t)c);
        if (to)
            monitor_cap_moved_send(to, (uint16_t)c, (uint16_t)my_core, o->move_tag, obj_number(o), o->peer,
                                   o->peer_obj);
    }
    o->move_at = now_ns() + CAPOPS_WAIT_NS;
}

/* Every other holder knows the new owner: it unlocks; we keep a tombstone
 * (the anchor, held by the new owner alone). */
static void move_finish(struct object *o)
{
    struct idl_chan *to = route(o->peer);
    if (to)
        monitor_cap_move_part_send(to, o->peer, (uint16_t)my_core, o->move_tag, obj_number(o), MOVE_DONE, 0, 0, 0);
    o->move = M_DONE;
    o->state = O_IDLE;
    st.moved_out++;
    if (coreset_count(&o->holders) == 0 && grants_unanswered(obj_number(o)) == 0)
        obj_drop_anchor(o);
}

/* A holder not told yet released: the new owner, which was sent it as a
 * holder (move_send), forgets it. Also while the take-over is asked: the
 * records sent already name it (models/capmove.pml found a release then
 * left the new owner recording a core that held nothing, for ever). */
static void move_gone(struct object *o, uint32_t core)
{
    coreset_del(&pool, &o->holders, core);
    coreset_del(&pool, &o->waiting, core);
    struct idl_chan *to = route(o->peer);
    if (to)
        monitor_cap_move_part_send(to, o->peer, (uint16_t)my_core, o->move_tag, obj_number(o), MOVE_GONE,
                                   (uint16_t)core, 0, 0);
    if (o->move == M_TELLING && coreset_count(&o->waiting) == 0)
        move_finish(o);
}

errval_t capops_on_move_reply(const struct monitor_cap_move_reply_args *a)
{
    struct object *o = obj_find(a->obj);
    if (!o || o->move != M_ASKED || a->src != o->peer || a->tag != o->move_tag)
        return ERR_OK;   /* an answer to a sync sent again */
    if (a->err) {
        /* It could not take over (it released meanwhile, or is full): as we were. */
        o->state = O_IDLE;
        o->move = M_WANTED;
        o->move_at = now_ns() + CAPOPS_WAIT_NS;
        if (coreset_count(&o->holders) == 0 && grants_unanswered(a->obj) == 0)
            obj_drop_anchor(o);
        return ERR_OK;
    }
    o->peer_obj = a->new_obj;
    o->move = M_TELLING;
    coreset_clear(&pool, &o->waiting);
    for (int c = coreset_next(&pool, &o->holders, -1); c >= 0; c = coreset_next(&pool, &o->holders, c))
        if ((uint32_t)c != o->peer && coreset_add(&pool, &o->waiting, (uint32_t)c))
            printf("monitor %u: no core set to tell core %d of a move\n", my_core, c);   /* cannot happen: one per wide object */
    move_tell(o);
    if (coreset_count(&o->waiting) == 0)
        move_finish(o);
    return ERR_OK;
}

errval_t capops_on_moved_reply(const struct monitor_cap_moved_reply_args *a)
{
    struct object *o = obj_find(a->obj);
    if (!o || o->move != M_TELLING || !coreset_has(&pool, &o->waiting, a->src))
        return ERR_OK;   /* an answer to a message sent again */
    /* It is the new owner's holder from now on. */
    coreset_del(&pool, &o->waiting, a->src);
    coreset_del(&pool, &o->holders, a->src);
    if (coreset_count(&o->waiting) == 0)
        move_finish(o);
    return ERR_OK;
}

/* A holder: the object is another core's now. */
errval_t capops_on_moved(const struct monitor_cap_moved_args *a)
{
    struct held *h = held_find(a->src, a->obj);
    if (h) {
        h->owner = a->owner;
        h->obj = a->new_obj;
        st.rehomed++;
    }
    struct idl_chan *back = route(a->src);
    return back ? monitor_cap_moved_reply_send(back, a->src, (uint16_t)my_core, a->tag, a->obj) : ERR_NO_ROUTE;
}

/* The new owner's record of an object moving here from `from`. */
static struct object *moving_in(uint32_t from, uint32_t obj)
{
    for (uint32_t i = 0; i < MAX_OBJECTS; i++)
        if (objects[i].state != O_FREE && objects[i].move == M_IN && objects[i].peer == from &&
            objects[i].peer_obj == obj)
            return &objects[i];
    return 0;
}

errval_t capops_on_move_call(const struct monitor_cap_move_call_args *a)
{
    struct object *o = moving_in(a->src, a->obj);
    if (o && o->anchor)
        return ERR_OK;   /* taken over already (our answer was lost): the sync answers again */
    if (o)
        obj_forget(o);   /* a half-sent earlier try: again from the start */
    struct held *h = held_find(a->src, a->obj);
    struct cap_identity id;
    if (!h || h->revoking || !movable(a->type) || sys_cap_identify(h->root, &id) || id.type != a->type ||
        id.base != a->base || id.bytes != a->bytes)
        return ERR_OK;   /* nothing recorded: the sync says no */
    for (uint32_t i = 0; i < MAX_OBJECTS && !o; i++)
        if (objects[i].state == O_FREE)
            o = &objects[i];
    if (!o)
        return ERR_OK;
    uint16_t gen = o->gen ? o->gen : 1;
    *o = (struct object){ .state = O_MOVING, .gen = gen, .domain = h->domain, .type = a->type, .rights = id.rights,
                          .base = a->base, .bytes = a->bytes, .move = M_IN, .peer = a->src, .peer_obj = a->obj,
                          .held = held_index(h), .move_tag = a->tag };
    return ERR_OK;
}

/* The model's TakeOver: the root becomes the original, anchored, with the
 * other holders' reserved ranges reserved again; all or nothing. */
static errval_t take_over(struct object *o)
{
    struct held *h = &held[o->held];
    errval_t err = o->move_err;
    if (!err && (!h->used || h->owner != o->peer || h->obj != o->peer_obj))
        err = ERR_NOT_FOUND;   /* released meanwhile */
    else if (!err && h->revoking)
        err = ERR_CAP_LOCKED;
    struct capops_call c = { 0 };
    capslot_t anchor = 0;
    if (!err)
        err = capops(CAPOPS_TAKE_OVER, 0, h->root, &c);
    if (!err) {
        if (!(err = slot_alloc(&anchor))) {
            c = (struct capops_call){ .dst = anchor };
            if ((err = capops(CAPOPS_ANCHOR, 0, h->root, &c))) {
                slot_free(anchor);
                anchor = 0;
            }
        }
        if (err) {
            c = (struct capops_call){ .count = 1 };
            capops(CAPOPS_TAKE_OVER, 0, h->root, &c);
        }
    }
    for (uint32_t i = 0; !err && i < MAX_RESERVED; i++) {
        struct reserved *r = &reserved[i];
        if (r->obj != obj_number(o) || r->slot)
            continue;
        capslot_t s;
        if (!(err = slot_alloc(&s)) && (err = sys_cap_retype(anchor, CAP_RAM, r->bytes, r->base - o->base, 1, s)))
            slot_free(s);
        else if (!err)
            r->slot = s;
    }
    if (err && anchor) {
        c = (struct capops_call){ .clear = CAP_REL_REMOTE | CAP_REL_WATCH };
        capops(CAPOPS_RELATE, 0, anchor, &c);
        sys_cap_revoke(anchor);   /* the reservations */
        cap_free(anchor);
        c = (struct capops_call){ .count = 1 };
        capops(CAPOPS_TAKE_OVER, 0, h->root, &c);
    }
    if (!err)
        o->anchor = anchor;
    return err;
}

errval_t capops_on_move_part(const struct monitor_cap_move_part_args *a)
{
    struct object *o = moving_in(a->src, a->obj);
    if (!o) {
        struct idl_chan *back = a->kind == MOVE_SYNC ? route(a->src) : 0;
        if (back)   /* nothing recorded for it */
            monitor_cap_move_reply_send(back, a->src, (uint16_t)my_core, a->tag, ERR_NOT_FOUND, a->obj, 0);
        return ERR_OK;
    }
    errval_t err;
    switch (a->kind) {
    case MOVE_HOLDER:
        if (!o->anchor && !o->move_err && (a->core == my_core || coreset_add(&pool, &o->holders, a->core)))
            o->move_err = ERR_TOO_MANY;
        return ERR_OK;
    case MOVE_RESERVE:
        if (!o->anchor && !o->move_err) {
            struct reserved *r = 0;
            for (uint32_t i = 0; i < MAX_RESERVED && !r; i++)
                if (!reserved[i].obj)
                    r = &reserved[i];
            if (!r || a->base < o->base || a->bytes > o->bytes || a->base - o->base > o->bytes - a->bytes)
                o->move_err = r ? ERR_INVALID_ARG : ERR_TOO_MANY;
            else
                *r = (struct reserved){ .obj = obj_number(o), .core = a->core, .domain = o->domain, .base = a->base,
                                        .bytes = a->bytes };
        }
        return ERR_OK;
    case MOVE_SYNC: {
        uint32_t number = obj_number(o);
        err = o->anchor ? ERR_OK : take_over(o);
        struct idl_chan *back = route(a->src);
        if (back)
            monitor_cap_move_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->obj, err ? 0 : number);
        if (err)
            obj_forget(o);
        return ERR_OK;
    }
    case MOVE_GONE:
        coreset_del(&pool, &o->holders, a->core);
        return ERR_OK;
    case MOVE_DONE:
        if (!o->anchor)
            return ERR_INVALID_ARG;
        o->state = O_IDLE;
        o->move = M_NONE;
        st.moved_in++;
        if (coreset_count(&o->holders) == 0 && grants_unanswered(obj_number(o)) == 0)
            obj_drop_anchor(o);   /* every other holder let go meanwhile */
        return ERR_OK;
    default:
        return ERR_INVALID_ARG;
    }
}

/* -- the holder ------------------------------------------------------------------ */

static void envelopes_free(uint32_t h)
{
    for (uint32_t i = 0; i < MAX_ENVELOPES; i++)
        if (envelopes[i].slot && envelopes[i].held == h) {
            cap_free(envelopes[i].slot);   /* empty when its root has no children left */
            envelopes[i] = (struct envelope){ 0 };
        }
}

/* No copy left here, and none waiting: the root goes, the owner hears it
 * (the model's Release). */
static void maybe_release(struct held *h)
{
    if (!h->used || h->revoking || h->mail || has_children(h->root))
        return;
    envelopes_free(held_index(h));
    cap_free(h->root);
    struct idl_chan *to = route(h->owner);
    if (to)
        monitor_cap_released_send(to, h->owner, (uint16_t)my_core, new_tag(), h->obj);
    *h = (struct held){ 0 };
}

/* Every grant is answered, whatever happens here (a grant left unanswered
 * keeps the owner's count up, and the object locked against revokes, for
 * ever): so the object comes as data and is imported here, not before. */
errval_t capops_on_grant(struct idl_chan *ch, const struct monitor_cap_grant_args *a)
{
    capslot_t root = 0;
    capslot_t disp;
    /* A span's page tables go to the monitor itself (span.c takes them). */
    errval_t err = SPAN_MAIL_IS(a->domain) || a->domain == MONITOR_MAIL ? ERR_OK : child_dispatcher(a->domain, &disp);
    uint32_t per_domain = 0;
    struct mail *m = 0;
    for (uint32_t i = 0; i < MAX_MAIL; i++) {
        if (mailbox[i].used)
            per_domain += mailbox[i].domain == a->domain;
        else if (!m)
            m = &mailbox[i];
    }
    if (!err && per_domain >= MON_CAPS_WAITING_PER_DOMAIN)
        err = quota(true);
    else if (!err && !m)
        err = ERR_TOO_MANY;
    /* The root: the original as it is (its rights), FOREIGN; a Notify is
     * the capability itself. */
    struct cap_wire w = { .type = a->type, .rights = a->obj ? a->root_rights : a->rights, .base = a->base,
                          .bytes = a->bytes };
    struct held *h = 0;
    if (!err && a->domain == MONITOR_MAIL && (!a->obj || a->type != CAP_RAM)) {
        err = ERR_INVALID_ARG;   /* only RAM an instance lent, recorded by its owner */
        st.forged++;
    }
    if (!err && !a->obj && a->type != CAP_NOTIFY) {
        err = ERR_INVALID_ARG;   /* only a Notify goes untracked */
        st.forged++;
    }
    if (!err && a->obj) {
        h = held_find(a->src, a->obj);
        if (h) {
            root = h->root;
        } else {
            for (uint32_t i = 0; i < MAX_HELD && !h; i++)
                if (!held[i].used)
                    h = &held[i];
            struct capops_call c = { .set = CAP_REL_WATCH };
            if ((err = quota(held_of(a->domain) >= MON_CAPS_HELD_PER_DOMAIN)))
                h = 0;
            else if (!h)
                err = ERR_TOO_MANY;
            else if (!(err = cap_import(ch, &w, &root)) && (err = capops(CAPOPS_RELATE, 0, root, &c)))
                cap_free(root);
            if (!err)
                *h = (struct held){ .used = true, .owner = a->src, .obj = a->obj, .domain = a->domain, .root = root };
            else
                h = 0;
        }
    } else if (!err) {
        err = cap_import(ch, &w, &root);
    }
    if (err) {
        st.refused++;
    } else {
        *m = (struct mail){ .used = true, .untracked = !a->obj, .held = h ? held_index(h) : 0, .root = root,
                            .from_core = a->giver_core, .rights = a->rights, .domain = a->domain, .from = a->giver,
                            .since = now_ns() };
        if (h)
            h->mail++;
    }
    struct idl_chan *back = route(a->src);
    if (back)
        monitor_cap_grant_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->obj);
    if (!err && a->domain == MONITOR_MAIL)
        spawn_lent_arrived();   /* a spawn may wait for it */
    /* Refused with nothing of the object kept here: a release, or the
     * owner would record this core for ever (the model's BUG_REFUSE_SILENT). */
    if (err && a->obj && !held_find(a->src, a->obj) && back)
        monitor_cap_released_send(back, a->src, (uint16_t)my_core, new_tag(), a->obj);
    return ERR_OK;
}

static errval_t take_mail(struct mail *m, capslot_t *cap, uint32_t *from_core, uint64_t *from);

errval_t capops_take(uint64_t domain, capslot_t *cap, uint32_t *from_core, uint64_t *from)
{
    for (uint32_t i = 0; i < MAX_MAIL; i++)
        if (mailbox[i].used && mailbox[i].domain == domain)
            return take_mail(&mailbox[i], cap, from_core, from);
    return ERR_WOULD_BLOCK;
}

/* The RAM lent to us whose object starts at `base` (spawn.c). */
errval_t capops_take_lent(uint64_t base, capslot_t *cap, uint32_t *from_core, uint64_t *from)
{
    struct cap_identity id;
    for (uint32_t i = 0; i < MAX_MAIL; i++)
        if (mailbox[i].used && mailbox[i].domain == MONITOR_MAIL && !sys_cap_identify(mailbox[i].root, &id) &&
            id.type == CAP_RAM && id.base == base)
            return take_mail(&mailbox[i], cap, from_core, from);
    return ERR_NOT_FOUND;
}

static errval_t take_mail(struct mail *m, capslot_t *cap, uint32_t *from_core, uint64_t *from)
{
    errval_t err = ERR_OK;
    if (m->untracked) {
        *cap = m->root;   /* the capability itself moves */
    } else if (!(err = slot_alloc(cap)) && (err = sys_cap_mint(m->root, *cap, m->rights, 0, 0, 0))) {
        slot_free(*cap);
    }
    if (err)
        return err;
    *from_core = m->from_core;
    *from = m->from;
    struct held *h = m->untracked ? 0 : &held[m->held];
    st.taken += m->domain != MONITOR_MAIL;
    *m = (struct mail){ 0 };
    /* The copy is a child of the root from now on: released when the
     * domain lets go (or if the reply cannot go, at once). */
    if (h)
        h->mail--;
    return ERR_OK;
}

/* After a take whose reply could not go, or a domain that ended. */
static void mail_drop(struct mail *m)
{
    if (m->untracked) {
        /* RAM its instance lent us on this core comes back as it goes. */
        struct cap_identity id;
        if (m->domain == MONITOR_MAIL && m->from_core == my_core && !sys_cap_identify(m->root, &id))
            capops_ram_came_back(m->from, id.base);
        cap_free(m->root);
        *m = (struct mail){ 0 };
        return;
    }
    struct held *h = &held[m->held];
    *m = (struct mail){ 0 };
    h->mail--;
    maybe_release(h);
}

static void mail_drop_domain(uint64_t domain)
{
    for (uint32_t i = 0; i < MAX_MAIL; i++)
        if (mailbox[i].used && mailbox[i].domain == domain)
            mail_drop(&mailbox[i]);
}

/* RAM lent to us for a spawn that never asked for it (the spawner gave up
 * or died before its spawn request): back to its lender. */
#define LENT_MAIL_WAIT_NS 30000000000ull
static void lent_mail_expire(uint64_t now)
{
    for (uint32_t i = 0; i < MAX_MAIL; i++)
        if (mailbox[i].used && mailbox[i].domain == MONITOR_MAIL && now - mailbox[i].since > LENT_MAIL_WAIT_NS)
            mail_drop(&mailbox[i]);
}

/* -- RAM the memory service lends monitors for the domains they spawn ------------- */

static errval_t count_lent(errval_t err)
{
    st.lent += !err;
    return err;
}

errval_t capops_ram_lend(uint64_t domain, capslot_t cap, uint32_t core)
{
    struct cap_identity id;
    errval_t err = sys_cap_identify(cap, &id);
    if (!err && !spawn_is_mem(domain))
        err = ERR_NOT_PERMITTED;
    else if (!err && id.type != CAP_RAM)
        err = ERR_CAP_TYPE;
    else if (!err && core != my_core)
        return count_lent(give_to(cap, core, MONITOR_MAIL, domain, LENT_BY(domain)));   /* frees cap */
    else if (!err)
        err = give_here(cap, MONITOR_MAIL, domain);   /* ours at once, as it is */
    if (err)
        cap_free(cap);
    return count_lent(err);
}

void capops_ram_came_back(uint64_t domain, uint64_t base)
{
    if (!spawn_is_mem(domain))
        return;   /* its instance ended: its pool went with it */
    for (uint32_t i = 0; i < MAX_RETURNED; i++)
        if (!returned[i].domain) {
            returned[i] = (struct returned){ .domain = domain, .base = base };
            return;
        }
    st.returned_lost++;   /* the instance reads them every 100 ms: 64 at once means it no longer does */
}

errval_t capops_ram_returned(uint64_t domain, uint64_t *base)
{
    for (uint32_t i = 0; i < MAX_RETURNED; i++)
        if (returned[i].domain == domain) {
            *base = returned[i].base;
            returned[i] = (struct returned){ 0 };
            return ERR_OK;
        }
    return ERR_WOULD_BLOCK;
}

void capops_domain_ended(uint64_t domain)
{
    mail_drop_domain(domain);
    for (uint32_t i = 0; i < MAX_RETURNED; i++)
        if (returned[i].domain == domain)
            returned[i] = (struct returned){ 0 };
    for (uint32_t i = 0; i < MON_MAX_CLIENTS; i++) {
        if (retypes[i].used && retypes[i].domain == domain)
            retypes[i] = (struct retype_wait){ 0 };
        if (asks[i].used && asks[i].domain == domain)
            asks[i] = (struct ask_wait){ 0 };   /* the owner's answer finds nobody */
    }
}

/* Remove every copy here (the model's HolderRevoke). An anchor under the
 * root (a holder's domain gave what it carved) is revoked first, as its
 * owner: this core is that object's owner. */
static void holder_revoke(struct held *h)
{
    h->revoking = true;
    for (uint32_t i = 0; i < MAX_MAIL; i++)
        if (mailbox[i].used && !mailbox[i].untracked && mailbox[i].held == held_index(h)) {
            mailbox[i] = (struct mail){ 0 };
            h->mail--;
        }
    errval_t err = sys_cap_revoke(h->root);
    if (err == ERR_CAP_REMOTE) {
        struct capops_call c = { .count = 0 };
        struct object *o = 0;
        if (!capops(CAPOPS_FIND_REMOTE, 0, h->root, &c))
            o = obj_by_anchor(c.anchor);
        if (o && o->state == O_IDLE) {
            struct waiter w = { .kind = W_HOLDER, .held = held_index(h) };
            start_revoke(o, &w);
            return;   /* holder_revoke again when it is done */
        }
        /* else: one being revoked already: its end calls reclaim_kick; say
         * locked and let the owner try again */
        err = ERR_CAP_LOCKED;
    }
    struct idl_chan *back = route(h->owner);
    uint32_t obj = h->obj, tag = h->revoke_tag;
    uint16_t owner = h->owner;
    if (!err) {
        envelopes_free(held_index(h));
        cap_free(h->root);
        *h = (struct held){ 0 };
    } else {
        h->revoking = false;
    }
    if (back)
        monitor_cap_revoke_reply_send(back, owner, (uint16_t)my_core, tag, err, obj);
}

errval_t capops_on_revoke_call(const struct monitor_cap_revoke_call_args *a)
{
    struct held *h = held_find(a->src, a->obj);
    if (!h) {
        /* Released already (the release is on its way), or never held. */
        struct idl_chan *back = route(a->src);
        return back ? monitor_cap_revoke_reply_send(back, a->src, (uint16_t)my_core, a->tag, ERR_OK, a->obj)
                    : ERR_NO_ROUTE;
    }
    /* Under way already (waiting for an object of ours below the root): its
     * answer, sent after this call came, answers this one. */
    h->revoke_tag = a->tag;
    if (!h->revoking)
        holder_revoke(h);
    return ERR_OK;
}

errval_t capops_on_retype_reply(const struct monitor_cap_retype_reply_args *a)
{
    struct retype_wait *r = 0;
    for (uint32_t i = 0; i < MON_MAX_CLIENTS && !r; i++)
        if (retypes[i].used && retypes[i].tag == a->tag && retypes[i].owner == a->src && retypes[i].obj == a->obj)
            r = &retypes[i];
    if (!r)
        return ERR_OK;   /* it timed out, or its domain ended */
    struct retype_wait w = *r;
    *r = (struct retype_wait){ 0 };
    errval_t err = a->err;
    capslot_t disp, env = 0;
    struct envelope *e = 0;
    for (uint32_t i = 0; i < MAX_ENVELOPES && !e; i++)
        if (!envelopes[i].slot)
            e = &envelopes[i];
    if (!err && !e)
        err = ERR_TOO_MANY;
    /* The record asked about must still be there, the same object, not
     * being revoked (a revoke that began meanwhile removes what we carve). */
    struct held *h = &held[w.held];
    if (!err && (!h->used || h->owner != w.owner || h->obj != w.obj || h->root != w.root))
        err = ERR_CAP_FOREIGN;
    else if (!err && h->revoking)
        err = ERR_CAP_LOCKED;
    if (!err && w.domain == MONITOR_MAIL)
        disp = 0;   /* our own retype (capops_retype_own) */
    else if (!err)
        err = child_dispatcher(w.domain, &disp);
    if (!err && !(err = slot_alloc(&env))) {
        /* The kernel carves only in the agreed original and pages: the
         * domain may have moved another capability into the slot. */
        struct capops_call c = { .type = w.a.type, .count = w.a.count, .size = w.a.size, .offset = w.a.offset,
                                 .first = w.a.first, .dst = env, .root = w.root, .base = w.base,
                                 .bytes = w.bytes };
        if ((err = capops(CAPOPS_RETYPE, disp, w.a.slot, &c)))
            slot_free(env);
        else
            *e = (struct envelope){ .slot = env, .held = w.held, .domain = w.domain };
    }
    retype_answer(w.handle, err);
    return ERR_OK;
}

/* -- clients' requests ------------------------------------------------------------- */

static void retype_request(int handle, uint64_t domain, capslot_t disp, const struct capreq_args *a)
{
    struct capops_call c = { .type = a->type, .count = a->count, .size = a->size, .offset = a->offset,
                             .first = a->first };
    errval_t err = capops(CAPOPS_RETYPE_CHECK, disp, a->slot, &c);
    struct held *h = 0;
    if (!err && !(c.root_flags & CAP_ID_FOREIGN))
        err = ERR_INVALID_ARG;   /* its own: SYS_CAP_RETYPE needs nobody */
    if (!err && (c.root == CAPOPS_NO_SLOT || !(h = held_by_root(c.root)) || h->revoking))
        err = h && h->revoking ? ERR_CAP_LOCKED : ERR_CAP_FOREIGN;
    struct retype_wait *r = 0;
    for (uint32_t i = 0; !err && i < MON_MAX_CLIENTS && !r; i++)
        if (!retypes[i].used)
            r = &retypes[i];
    for (uint32_t i = 0; !err && i < MON_MAX_CLIENTS; i++)
        if (retypes[i].used && retypes[i].domain == domain)
            err = quota(true);   /* one at a time per domain */
    if (!err)
        err = quota(envelopes_of(domain) >= MON_CAPS_ENVELOPES_PER_DOMAIN);
    if (!err && !r)
        err = ERR_TOO_MANY;
    struct idl_chan *to = err ? 0 : route(h->owner);
    if (!err && !to)
        err = no_route_to(h->owner);
    if (err) {
        retype_answer(handle, err);
        return;
    }
    *r = (struct retype_wait){ .used = true, .handle = handle, .domain = domain, .a = *a, .held = held_index(h),
                               .owner = h->owner, .obj = h->obj, .root = c.root, .base = c.base, .bytes = c.bytes,
                               .tag = new_tag(), .deadline = now_ns() + CAPOPS_WAIT_NS };
    err = monitor_cap_retype_call_send(to, h->owner, (uint16_t)my_core, r->tag, h->obj, c.base, c.bytes);
    if (err) {
        *r = (struct retype_wait){ 0 };
        retype_answer(handle, err);
    }
}

/* The monitor's own retype of a FOREIGN RAM it holds (lent to it for a
 * spawn): agreed with the owner as a client's; answered by
 * spawn_lent_retyped. One at a time, as for a client. */
void capops_retype_own(const struct capreq_args *a)
{
    retype_request(OWN_RETYPE, MONITOR_MAIL, 0, a);
}

/* The copies on every other holder core are gone: a client's revoke of its
 * copy takes the copy's siblings on this core too (other copies of the
 * root, any domain's, with what was carved from them, and copies waiting
 * in the mailbox); the revoked copy stays. A sibling with copies
 * elsewhere below it (it gave what it carved) stays, counted. */
static void siblings_go(uint64_t domain, uint64_t slot, struct held *h)
{
    capslot_t disp;
    struct capops_call c = { 0 };
    if (child_dispatcher(domain, &disp) || capops(CAPOPS_REVOKE_SIBLINGS, disp, slot, &c))
        return;   /* the domain let go of the copy meanwhile: nothing to keep it from */
    st.siblings_kept += c.count;
    for (uint32_t i = 0; h && i < MAX_MAIL; i++)
        if (mailbox[i].used && !mailbox[i].untracked && mailbox[i].held == held_index(h)) {
            mailbox[i] = (struct mail){ 0 };
            h->mail--;
        }
}

/* A client revoked a copy whose object another core owns (its descendants
 * here are gone): the copies on every other holder core go too, through
 * the owner (cap_revoke_ask, answered by capops_on_revoke_ask_reply).
 * False if the copy is not from another core (the revoke was local, and
 * done). */
static bool ask_owner(const struct waiter *w)
{
    capslot_t disp;
    struct capops_call lin = { 0 };
    if (child_dispatcher(w->domain, &disp) || capops(CAPOPS_LINEAGE, disp, w->slot, &lin) ||
        !(lin.root_flags & CAP_ID_FOREIGN))
        return false;
    struct held *h = lin.root == CAPOPS_NO_SLOT ? 0 : held_by_root(lin.root);
    errval_t err = ERR_OK;
    struct ask_wait *q = 0;
    for (uint32_t i = 0; i < MON_MAX_CLIENTS && !q; i++)
        if (!asks[i].used)
            q = &asks[i];
    struct idl_chan *to = h ? route(h->owner) : 0;
    if (!h)
        err = ERR_CAP_FOREIGN;   /* a root we do not record: cannot happen but by a bug */
    else if (h->revoking)
        err = ERR_CAP_LOCKED;    /* the owner is revoking it already */
    else if (!q)
        err = ERR_TOO_MANY;
    else if (!to)
        err = no_route_to(h->owner);
    if (!err) {
        *q = (struct ask_wait){ .used = true, .req = CAPREQ_REVOKE, .handle = w->handle, .domain = w->domain, .owner = h->owner,
                                .obj = h->obj, .tag = new_tag(), .slot = w->slot,
                                .deadline = now_ns() + 2 * CAPOPS_WAIT_NS };
        /* Only a copy with the right to pass capabilities on may take the
         * owner core's copies, and the ownership, with it: a service that
         * lends memory gives copies without it, and keeps its original. */
        uint32_t take = (lin.rights & CAP_RIGHT_GRANT) != 0;
        if ((err = monitor_cap_revoke_ask_send(to, h->owner, (uint16_t)my_core, q->tag, h->obj, take)))
            *q = (struct ask_wait){ 0 };
        else
            st.asked++;
    }
    if (err)
        client_cap_reply(w->handle, w->req, err);
    return true;
}

static void ask_answered(uint32_t req, uint32_t src, uint32_t tag, uint32_t obj, errval_t err)
{
    for (uint32_t i = 0; i < MON_MAX_CLIENTS; i++)
        if (asks[i].used && asks[i].req == req && asks[i].tag == tag && asks[i].owner == src &&
            asks[i].obj == obj) {
            struct ask_wait q = asks[i];
            asks[i] = (struct ask_wait){ 0 };
            if (!err && req == CAPREQ_REVOKE)
                siblings_go(q.domain, q.slot, held_find(src, obj));
            client_cap_reply(q.handle, req, err);
            return;
        }
    /* else it timed out, or its domain ended */
}

errval_t capops_on_revoke_ask_reply(const struct monitor_cap_revoke_ask_reply_args *a)
{
    ask_answered(CAPREQ_REVOKE, a->src, a->tag, a->obj, a->err);
    return ERR_OK;
}

errval_t capops_on_give_on_reply(const struct monitor_cap_give_on_reply_args *a)
{
    ask_answered(CAPREQ_GIVE, a->src, a->tag, a->obj, a->err);
    return ERR_OK;
}

/* A client revoked a copy of an object whose ownership moved here (its
 * descendants here are gone): the copies on every holder core go too, as
 * for a holder's ask; the client's copy and its siblings here stay. False
 * if it is not such a copy, or no copy elsewhere is recorded. */
static bool revoke_moved(const struct waiter *w)
{
    capslot_t disp;
    struct capops_call lin = { 0 };
    if (child_dispatcher(w->domain, &disp) || capops(CAPOPS_LINEAGE, disp, w->slot, &lin) || !moved_here(&lin) ||
        lin.anchor == CAPOPS_NO_SLOT)
        return false;
    struct object *o = obj_by_anchor(lin.anchor);
    if (!o)
        return false;
    if (o->state != O_IDLE) {
        client_cap_reply(w->handle, w->req, ERR_CAP_LOCKED);
        return true;
    }
    struct waiter x = *w;
    x.local_ask = 1;
    struct held *h = held_by_root(lin.root);
    x.held = h ? held_index(h) : NO_CORE;
    start_revoke(o, &x);
    return true;
}

/* Revoke or delete for a client: on this core if no copy elsewhere is in
 * the way, else the object of the anchor in the way first (the model's
 * Revoke), then again. */
static void client_retry(const struct waiter *w)
{
    capslot_t disp;
    struct capops_call c = { 0 };
    errval_t err = child_dispatcher(w->domain, &disp);
    if (!err)
        err = capops(w->req == CAPREQ_DELETE ? CAPOPS_DELETE : CAPOPS_REVOKE, disp, w->slot, &c);
    if (err == ERR_CAP_REMOTE && w->req == CAPREQ_DELETE && !w->with_copies && !w->broadcast) {
        /* The original goes, the object stays while copies elsewhere do:
         * its anchor becomes its original (issue 10, item 2). Another
         * object in the way (carved from this one, with copies elsewhere)
         * is revoked first, as before. */
        struct capops_call h = { 0 }, lin = { 0 };
        capops(CAPOPS_LINEAGE, disp, w->slot, &lin);
        errval_t herr = capops(CAPOPS_HAND_OVER, disp, w->slot, &h);
        if (herr == ERR_OK || herr == ERR_CAP_REMOTE) {
            err = herr;
            c.anchor = h.anchor;
            st.handed_over += herr == ERR_OK;
        }
        /* Nothing of it is left here: ownership moves to a holder core
         * (issue 10, item 5), which then revokes and agrees to retypes;
         * the anchor here keeps the range until the object is gone. */
        struct object *o = herr == ERR_OK && lin.anchor != CAPOPS_NO_SLOT ? obj_by_anchor(lin.anchor) : 0;
        if (o && movable(o->type) && o->move == M_NONE) {
            o->move = M_WANTED;
            move_try(o);
        }
    }
    if (err == ERR_CAP_REMOTE) {
        struct object *o = c.anchor == CAPOPS_NO_SLOT ? 0 : obj_by_anchor(c.anchor);
        if (o && o->state == O_IDLE) {
            start_revoke(o, w);
            return;
        }
        err = o ? ERR_CAP_LOCKED : ERR_CAP_REMOTE;
    }
    if (!err && w->req == CAPREQ_REVOKE && ask_owner(w))
        return;   /* a copy from another core: the owner answers */
    if (!err && w->req == CAPREQ_REVOKE && !w->local_ask && revoke_moved(w))
        return;   /* a copy of an object that moved here: revoke_done answers */
    client_cap_reply(w->handle, w->req, err);
}

void capops_request(int handle, uint64_t domain, enum capreq req, const struct capreq_args *a)
{
    capslot_t disp;
    errval_t err = child_dispatcher(domain, &disp);
    if (err) {
        client_cap_reply(handle, req, err);
        return;
    }
    if (req == CAPREQ_RETYPE) {
        retype_request(handle, domain, disp, a);
        return;
    }
    if ((a->flags & CAPOPS_BROADCAST) && !child_may_broadcast(domain)) {
        client_cap_reply(handle, req, ERR_NOT_PERMITTED);   /* the benchmark's baseline only */
        return;
    }
    struct waiter w = { .kind = W_CLIENT, .req = (uint8_t)req, .broadcast = (a->flags & CAPOPS_BROADCAST) != 0,
                        .with_copies = (a->flags & CAPOPS_WITH_COPIES) != 0,
                        .handle = handle, .domain = domain, .slot = a->slot };
    client_retry(&w);
}

/* -- reclaiming the RAM of ended domains ------------------------------------------- */

/* Revoke the objects with copies elsewhere that keep an ended domain's RAM.
 * A revoke may end at once (no route to a holder), and revoke_done kicks
 * again: not re-entered (the outer call goes round once more), and an
 * object whose revoke failed waits until retry_after (capops_expire kicks
 * every tick), so neither recursion nor a busy loop. */
static void reclaim_kick(void)
{
    static bool kicking, again;
    if (kicking) {
        again = true;
        return;
    }
    kicking = true;
    do {
        again = false;
        reclaim_scan();
    } while (again);
    kicking = false;
}

static void reclaim_scan(void)
{
    uint64_t now = now_ns();
    for (uint32_t i = 0; i < MAX_RECLAIM; i++) {
        if (!reclaim[i])
            continue;
        struct capops_call c = { .count = 1 };
        /* Done when nothing below has copies elsewhere, or when the slot
         * is empty already (a revoke from the owner's core took it: the
         * memory service's instance ended with its block lent to us). */
        if (capops(CAPOPS_FIND_REMOTE, 0, reclaim[i], &c) != ERR_OK) {
            struct reclaim_then t = reclaim_then[i];
            sys_cap_revoke(reclaim[i]);
            cap_free(reclaim[i]);
            reclaim[i] = 0;
            reclaim_then[i] = (struct reclaim_then){ 0 };
            st.reclaimed += !t.also && !t.back_domain;   /* (a lent RAM's is not an ended domain's to count) */
            if (t.also)
                cap_free(t.also);   /* emptied by the revoke: its slot */
            if (t.back_domain)
                capops_ram_came_back(t.back_domain, t.back_base);
            continue;
        }
        struct object *o = obj_by_anchor(c.anchor);
        if (o && o->state == O_IDLE && now >= o->retry_after)
            start_revoke(o, 0);   /* its end kicks us again */
        else if (!o) {
            /* An anchor nobody records (cannot happen but by a bug): let
             * the kernel have it, rather than keep the RAM for ever. */
            struct capops_call r = { .clear = CAP_REL_REMOTE | CAP_REL_WATCH | CAP_REL_ORPHAN };
            capops(CAPOPS_RELATE, 0, c.anchor, &r);
        }
    }
}

uint32_t capops_reclaim_pending(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_RECLAIM; i++)
        n += reclaim[i] != 0;
    return n;
}

/* spawn_local starts no domain while its children and the RAM waiting here
 * would not fit (capops_reclaim_pending): so this never finds the table
 * full but by a bug. */
void capops_reclaim(capslot_t ram)
{
    capops_reclaim_lent(ram, 0, 0, 0);
}

void capops_reclaim_lent(capslot_t ram, capslot_t also, uint64_t back_domain, uint64_t back_base)
{
    for (uint32_t i = 0; i < MAX_RECLAIM; i++)
        if (!reclaim[i]) {
            reclaim[i] = ram;
            reclaim_then[i] = (struct reclaim_then){ .also = also, .back_domain = back_domain, .back_base = back_base };
            reclaim_kick();
            return;
        }
    printf("monitor %u: too many domains' RAM waiting for remote copies to go: slot %llu kept\n", my_core,
           (unsigned long long)ram);
}

/* -- notices and time ----------------------------------------------------------------- */

static void notice(capslot_t slot)
{
    struct held *h = held_by_root(slot);
    if (h) {
        maybe_release(h);
        return;
    }
    struct object *o = obj_by_anchor(slot);
    struct cap_identity id;
    if (o && o->state == O_IDLE && !sys_cap_identify(slot, &id) && (id.flags & CAP_ID_ORPHAN)) {
        start_revoke(o, 0);   /* what the anchor hung from died with a CNode */
        return;
    }
    for (uint32_t i = 0; i < MAX_ENVELOPES; i++)
        if (envelopes[i].slot == slot && !has_children(slot)) {
            cap_free(slot);   /* the carved objects are gone */
            envelopes[i] = (struct envelope){ 0 };
        }
}

static bool notices_poll(struct ws_source *s)
{
    (void)s;
    capslot_t slot;
    errval_t err = sys_cap_notice(SLOT_KERNEL, &slot);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err == ERR_TOO_MANY) {   /* some were lost: look at everything watched */
        for (uint32_t i = 0; i < MAX_HELD; i++)
            maybe_release(&held[i]);
        for (uint32_t i = 0; i < MAX_OBJECTS; i++)
            if (objects[i].state == O_IDLE)
                notice(objects[i].anchor);
        for (uint32_t i = 0; i < MAX_ENVELOPES; i++)
            if (envelopes[i].slot)
                notice(envelopes[i].slot);
    } else if (!err) {
        notice(slot);
    }
    return true;
}

void capops_source(struct ws_source *s)
{
    /* The kernel notifies the core with every notice: nothing to raise. */
    *s = (struct ws_source){ .poll = notices_poll, .name = "capability notices" };
}

/* A grant whose answer never came (the holder's monitor could not send it,
 * or its core stopped): the count goes, so that revokes are not refused
 * for ever (ERR_CAP_LOCKED) and the entry is not kept up; the core stays
 * recorded (it may hold the copy) until a revoke's answer. */
static void grant_expire(uint64_t now)
{
    for (uint32_t i = 0; i < MAX_GRANTS; i++)
        if (grants[i].obj && grants[i].count && now > grants[i].deadline) {
            grants[i].count = 0;
            grants[i].lost = true;
            st.grants_lost++;
        }
}

void capops_expire(void)
{
    uint64_t now = now_ns();
    grant_expire(now);
    lent_mail_expire(now);
    spawn_lent_expire();
    for (uint32_t i = 0; i < MAX_OBJECTS; i++) {
        struct object *o = &objects[i];
        if (o->state == O_REVOKING && now > o->deadline)
            revoke_done(o, ERR_TIMEOUT);
        else if (o->move == M_WANTED)
            move_try(o);
        else if (o->state == O_MOVING && o->move == M_ASKED && now > o->move_at)
            move_send(o);   /* every answer to it is idempotent */
        else if (o->state == O_MOVING && o->move == M_TELLING && now > o->move_at)
            move_tell(o);
    }
    for (uint32_t i = 0; i < MON_MAX_CLIENTS; i++)
        if (retypes[i].used && now > retypes[i].deadline) {
            int handle = retypes[i].handle;
            retypes[i] = (struct retype_wait){ 0 };
            retype_answer(handle, ERR_TIMEOUT);
        }
    for (uint32_t i = 0; i < MON_MAX_CLIENTS; i++)
        if (asks[i].used && now > asks[i].deadline) {
            int handle = asks[i].handle;
            uint32_t req = asks[i].req;
            asks[i] = (struct ask_wait){ 0 };
            client_cap_reply(handle, req, ERR_TIMEOUT);
        }
    reclaim_kick();   /* revokes that failed, once their retry_after passed */
}

/* A core fenced as dead (fence.c): taken to be halted for good, so that no
 * copy there can ever be used again. (A core declared dead while it still
 * ran, its vCPU starved for seconds, stops its monitor when it hears so,
 * but until then its domains run on: docs/capabilities.md says what that
 * leaves open.) As a holder it
 * leaves every object's set, and every revoke's wait (a revoke under way
 * ends as soon as the others have answered), with its grants and the
 * ranges reserved for it; an object it alone held loses its anchor. As an
 * owner: what waits for its answer here fails at once; what we hold of it
 * stays (its memory is not reused: nobody is left to reuse it). */
uint32_t capops_core_dead(uint32_t core)
{
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < MAX_RESERVED; i++)
        if (reserved[i].obj && reserved[i].core == core) {
            cap_free(reserved[i].slot);   /* the range is free in the anchor again */
            reserved[i] = (struct reserved){ 0 };
        }
    for (uint32_t i = 0; i < MAX_GRANTS; i++)
        if (grants[i].obj && grants[i].core == core)
            grants[i] = (struct grant_count){ 0 };
    for (uint32_t i = 0; i < MAX_OBJECTS; i++) {
        struct object *o = &objects[i];
        if (o->state == O_FREE || !coreset_has(&pool, &o->holders, core))
            continue;
        dropped++;
        holder_gone(o, core, true);   /* no grant is left: it leaves; a revoke may end, the anchor go */
    }
    for (uint32_t i = 0; i < MON_MAX_CLIENTS; i++) {
        if (asks[i].used && asks[i].owner == core) {
            int handle = asks[i].handle;
            uint32_t req = asks[i].req;
            asks[i] = (struct ask_wait){ 0 };
            client_cap_reply(handle, req, ERR_CORE_DOWN);
        }
        if (retypes[i].used && retypes[i].owner == core) {
            int handle = retypes[i].handle;
            retypes[i] = (struct retype_wait){ 0 };
            retype_answer(handle, ERR_CORE_DOWN);
        }
    }
    /* Moves: one to a dead core is given up (the object stays here); a
     * dead holder is not waited for; one from a dead core ends here as it
     * stands (taken over: ours; not yet: never). */
    for (uint32_t i = 0; i < MAX_OBJECTS; i++) {
        struct object *o = &objects[i];
        if (o->state == O_MOVING && o->move == M_ASKED && o->peer == core) {
            o->state = O_IDLE;
            o->move = M_WANTED;
            if (coreset_count(&o->holders) == 0 && grants_unanswered(obj_number(o)) == 0)
                obj_drop_anchor(o);
        } else if (o->state == O_MOVING && o->move == M_TELLING) {
            if (o->peer == core) {
                coreset_clear(&pool, &o->waiting);   /* the told ones name a dead owner, as if it had died later */
                move_finish(o);
            } else if (coreset_count(&o->waiting) == 0) {
                move_finish(o);   /* holder_gone above took the dead core out of the wait */
            }
        } else if (o->state == O_MOVING && o->move == M_IN && o->peer == core) {
            if (!o->anchor) {
                obj_forget(o);
            } else {
                o->state = O_IDLE;
                o->move = M_NONE;
                if (coreset_count(&o->holders) == 0)
                    obj_drop_anchor(o);
            }
        }
    }
    st.dead_holders += dropped;
    return dropped;
}

size_t capops_describe(char *out, size_t size)
{
    uint32_t owned = 0, holding = 0, waiting = 0;
    for (uint32_t i = 0; i < MAX_OBJECTS; i++)
        owned += objects[i].state != O_FREE;
    for (uint32_t i = 0; i < MAX_HELD; i++)
        holding += held[i].used;
    for (uint32_t i = 0; i < MAX_MAIL; i++)
        waiting += mailbox[i].used;
    return (size_t)snprintf(out, size,
                            "\"caps\":{\"owned\":%u,\"held\":%u,\"waiting\":%u,\"given\":%llu,\"taken\":%llu,"
                            "\"released\":%llu,\"revokes\":%llu,\"revoke_msgs\":%llu,\"timeouts\":%llu,"
                            "\"retypes_agreed\":%llu,\"retypes_refused\":%llu,\"refused\":%llu,\"forged\":%llu,"
                            "\"reclaimed\":%llu,\"quota\":%llu,\"grants_lost\":%llu,\"reclaim_waiting\":%u,\"handed_over\":%llu,"
                            "\"asked\":%llu,\"asks_served\":%llu,\"given_on\":%llu,\"dead_holders\":%llu,"
                            "\"moved_out\":%llu,\"moved_in\":%llu,\"rehomed\":%llu,\"siblings_kept\":%llu,"
                            "\"owner_revoked\":%llu,\"owner_kept\":%llu,\"lent\":%llu,\"lent_lost\":%llu}",
                            owned, holding, waiting, (unsigned long long)st.given, (unsigned long long)st.taken,
                            (unsigned long long)st.released, (unsigned long long)st.revokes,
                            (unsigned long long)st.revoke_msgs, (unsigned long long)st.revoke_timeouts,
                            (unsigned long long)st.retypes_agreed, (unsigned long long)st.retypes_refused,
                            (unsigned long long)st.refused, (unsigned long long)st.forged,
                            (unsigned long long)st.reclaimed, (unsigned long long)st.quota,
                            (unsigned long long)st.grants_lost, capops_reclaim_pending(),
                            (unsigned long long)st.handed_over, (unsigned long long)st.asked,
                            (unsigned long long)st.asks_served, (unsigned long long)st.given_on,
                            (unsigned long long)st.dead_holders, (unsigned long long)st.moved_out,
                            (unsigned long long)st.moved_in, (unsigned long long)st.rehomed,
                            (unsigned long long)st.siblings_kept, (unsigned long long)st.owner_revoked,
                            (unsigned long long)st.owner_kept, (unsigned long long)st.lent,
                            (unsigned long long)st.returned_lost);
}

/* A validator's view (monclient caps): every object owned with its holder
 * cores (and whether a grant to one was lost), every object held. */
size_t capops_dump(char *out, size_t size)
{
    size_t n = 0;
    bool truncated = false;
    const size_t room = 64;   /* for the end */
#define PUT(...)                                                                             \
    do {                                                                                     \
        if (n < size)                                                                        \
            n += (size_t)snprintf(out + n, size - n, __VA_ARGS__);                           \
    } while (0)
    PUT("{\"core\":%u,\"owned\":[", my_core);
    bool first = true;
    for (uint32_t i = 0; i < MAX_OBJECTS; i++) {
        struct object *o = &objects[i];
        if (o->state == O_FREE)
            continue;
        if (n + room + 16 * (coreset_count(&o->holders) + 2) > size) {
            truncated = true;
            break;
        }
        bool lost = false;
        for (uint32_t g = 0; g < MAX_GRANTS; g++)
            lost |= grants[g].obj == obj_number(o) && grants[g].lost;
        PUT("%s[%u,[", first ? "" : ",", obj_number(o));
        first = false;
        bool f2 = true;
        for (int c = coreset_next(&pool, &o->holders, -1); c >= 0; c = coreset_next(&pool, &o->holders, c)) {
            PUT("%s%d", f2 ? "" : ",", c);
            f2 = false;
        }
        PUT("],%s]", lost ? "true" : "false");
    }
    PUT("],\"held\":[");
    first = true;
    for (uint32_t i = 0; i < MAX_HELD && !truncated; i++) {
        if (!held[i].used)
            continue;
        if (n + room > size) {
            truncated = true;
            break;
        }
        PUT("%s[%u,%u]", first ? "" : ",", held[i].owner, held[i].obj);
        first = false;
    }
    PUT("],\"truncated\":%s}", truncated ? "true" : "false");
#undef PUT
    return n < size ? n : size - 1;
}
