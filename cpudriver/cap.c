/*
 * Capabilities: slots, the derivation tree and its operations (cap.h).
 * docs/capabilities.md gives the rules and the reasons for them.
 *
 * Pure logic, built both into the freestanding kernel and into the host unit
 * tests (tests/host/test_cap.c): no libc, and every touch of memory outside
 * the slots passed in goes through struct cap_hooks.
 *
 * Stack use. Kernel stacks are 16 KiB and every depth here is chosen by user
 * code (a copy of a copy of a copy..., CNodes holding the originals of other
 * CNodes holding...), so nothing recurses. Tree walks use the parent, child
 * and sibling links. Tearing down CNodes uses a worklist whose nodes live in
 * the slots themselves; see "Deleting" below.
 *
 * Derivation tree. Every capability in a slot is linked to its parent
 * (NULL for a root) and its children: a doubly linked sibling list that
 * starts at parent->first_child (the first child's prev is NULL). Roots have
 * no siblings, and every root is an original. New children go to the front
 * of the list.
 *
 * Across cores. The tree knows nothing of other cores but three marks
 * (relations) the monitors' protocols rely on: FOREIGN roots (re-created
 * from another core's description: retyping them needs the owner's
 * agreement, removing them destroys nothing here), anchors (REMOTE: a
 * monitor's copy of an original that stands for the object's copies on other
 * cores; no delete or revoke removes one, see "Deleting"), and WATCH (the
 * monitor hears, through the notice hook, when such a capability loses its
 * last child).
 */
#include "cap.h"

#include <stddef.h>
#include <stdint.h>

/* A pending CNode teardown ("record", see below). Never visible outside one
 * cap_delete or cap_revoke call: every record is consumed before it returns. */
#define CAP_RECORD 0xffu

static struct cap_hooks hooks;

void cap_set_hooks(const struct cap_hooks *h)
{
    if (h)
        hooks = *h;
}

/* ---- small helpers ------------------------------------------------------- */

static void cte_clear(struct cte *c)
{
    c->cap.type = CAP_NULL;
    c->cap.rights = 0;
    c->cap.original = 0;
    c->cap.bits = 0;
    c->cap.relations = 0;
    c->cap.flush_owed = c->cap.reserved[0] = c->cap.reserved[1] = 0;
    c->cap.base = 0;
    c->cap.bytes = 0;
    c->cap.badge = 0;
    c->parent = NULL;
    c->first_child = NULL;
    c->next = NULL;
    c->prev = NULL;
}

static bool cte_empty(const struct cte *c)
{
    return c->cap.type == CAP_NULL;
}

/* Types whose capability names a range of RAM that retype made (or the
 * kernel installed): everything retype can produce. */
static bool is_memory_type(uint32_t t)
{
    switch (t) {
    case CAP_RAM:
    case CAP_FRAME:
    case CAP_DEVFRAME:
    case CAP_CNODE:
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
    case CAP_DISPATCHER:
        return true;
    default:
        return false;
    }
}

/* Types whose union member is `mapped` (a copy is never mapped). */
static bool is_mappable_type(uint32_t t)
{
    switch (t) {
    case CAP_FRAME:
    case CAP_DEVFRAME:
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
        return true;
    default:
        return false;
    }
}

/* [a, a+an) and [b, b+bn) share a byte (no sum overflows: callers pass
 * ranges that were checked to end at or below 2^64). */
static bool ranges_overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
    if (an == 0 || bn == 0)
        return false;
    return a < b ? b - a < an : a - b < bn;
}

static bool is_anchor(const struct cte *c) { return c->cap.relations & CAP_REL_REMOTE; }

/* Put `c`, with its own children, among the children of `parent` (NULL: it
 * becomes a root): an anchor first, anything else first behind the anchors,
 * which always lead the list (a walk that removes a subtree must meet an
 * object's anchor before anything carved from it: see "Anchors" below). */
static void insert_child(struct cte *parent, struct cte *c)
{
    struct cte *after = NULL;
    if (parent && !is_anchor(c))
        for (struct cte *x = parent->first_child; x && is_anchor(x); x = x->next)
            after = x;
    c->parent = parent;
    c->prev = after;
    c->next = after ? after->next : parent ? parent->first_child : NULL;
    if (c->next)
        c->next->prev = c;
    if (after)
        after->next = c;
    else if (parent)
        parent->first_child = c;
}

/* Make `c` (already filled in) the newest child of `parent`. */
static void link_child(struct cte *parent, struct cte *c)
{
    c->first_child = NULL;
    insert_child(parent, c);
}

/* Take `c` out of its sibling list, nothing else. */
static void list_remove(struct cte *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->parent)
        c->parent->first_child = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Take `c` out of its parent's child list (its own children stay). A
 * watched parent left with no children is noticed. */
static void unlink_from_parent(struct cte *c)
{
    struct cte *parent = c->parent;
    list_remove(c);
    c->parent = NULL;
    if (parent && !parent->first_child && (parent->cap.relations & CAP_REL_WATCH) && hooks.notice)
        hooks.notice(parent);
}

/* The original c descends from through copies (c itself if it is one). */
static struct cte *original_of(struct cte *c)
{
    while (!c->cap.original && c->parent)
        c = c->parent;
    return c;
}

static struct cte *cnode_slots(const struct capability *cnode)
{
    return (struct cte *)hooks.ptr(cnode->base);
}

static uint64_t cnode_nslots(const struct capability *cnode)
{
    return (uint64_t)1 << cnode->bits;
}

static bool cnode_valid(const struct capability *cnode)
{
    return cnode && cnode->type == CAP_CNODE && cnode->bits >= CAP_CNODE_MIN_BITS &&
           cnode->bits <= CAP_CNODE_MAX_BITS;
}

/* ---- sizes and slots ----------------------------------------------------- */

uint64_t cap_object_bytes(enum cap_type type, uint64_t size)
{
    switch (type) {
    case CAP_RAM:
    case CAP_FRAME:
    case CAP_DEVFRAME:
        return size != 0 && size % CAP_PAGE_SIZE == 0 ? size : 0;
    case CAP_CNODE:
        return size >= CAP_CNODE_MIN_BITS && size <= CAP_CNODE_MAX_BITS
                   ? (uint64_t)CAP_CTE_SIZE << size
                   : 0;
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
        return size == 0 || size == CAP_VNODE_SIZE ? CAP_VNODE_SIZE : 0;
    case CAP_DISPATCHER:
        return size == 0 || size == CAP_DISPATCHER_SIZE ? CAP_DISPATCHER_SIZE : 0;
    default:
        return 0;
    }
}

errval_t cap_slot(const struct capability *cnode, uint64_t index, struct cte **out)
{
    if (!cnode || !out)
        return ERR_INVALID_ARG;
    if (!cnode_valid(cnode))
        return ERR_CAP_TYPE;
    if (index >= cnode_nslots(cnode))
        return ERR_CAP_SLOT_RANGE;
    *out = cnode_slots(cnode) + index;
    return ERR_OK;
}

/* ---- retype -------------------------------------------------------------- */

static bool is_retypable(uint32_t t)
{
    /* DevFrame is memory-backed but not RAM: the kernel installs those. */
    return is_memory_type(t) && t != CAP_DEVFRAME;
}

/* The node after `cur` in a preorder walk of root's subtree (root itself
 * excluded), not entering cur's children unless `descend`; NULL at the end.
 * Iterative: trees can be arbitrarily deep. */
static const struct cte *subtree_next(const struct cte *cur, const struct cte *root, bool descend)
{
    if (descend && cur->first_child)
        return cur->first_child;
    while (cur != root && !cur->next)
        cur = cur->parent;
    return cur == root ? 0 : cur->next;
}

/*
 * Does any object carved from the RAM that `src` names overlap
 * [base, base+bytes)? The objects are the *original* capabilities made by
 * retype; copies and mints of RAM only name the same RAM again. A RAM
 * capability that is not original descends (through copies and mints, all
 * RAM with the same range) from the original `o` that owns that RAM, and
 * every object ever carved from it, through any of those aliases, descends
 * from `o`. So: walk o's subtree, check every original, and do not look
 * inside an original (what it holds lies within its own range). Checking
 * only src's own children would let two copies of one RAM capability hand
 * out the same bytes twice.
 */
static bool lineage_overlaps(const struct cte *src, uint64_t base, uint64_t bytes)
{
    const struct cte *o = src;
    while (!o->cap.original && o->parent)
        o = o->parent;

    for (const struct cte *cur = o->first_child; cur; cur = subtree_next(cur, o, !cur->cap.original))
        if (cur->cap.original && is_memory_type(cur->cap.type) &&
            ranges_overlap(cur->cap.base, cur->cap.bytes, base, bytes))
            return true;
    return false;
}

/* Every check of a retype, in cap_retype's order, but the owner's agreement
 * and the overlap check: *base and *total give the objects' range, *slots
 * the first destination slot. */
static errval_t retype_args(struct cte *src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                            const struct capability *dest_cnode, uint64_t first, uint64_t *base, uint64_t *total,
                            struct cte **slots)
{
    if (!src || cte_empty(src))
        return ERR_CAP_EMPTY;
    if (src->cap.type != CAP_RAM)
        return ERR_CAP_TYPE;
    if (!is_retypable(type))
        return ERR_CAP_TYPE;
    if (!(src->cap.rights & CAP_RIGHT_WRITE))
        return ERR_CAP_RIGHTS;
    uint64_t bytes = cap_object_bytes(type, size);
    if (bytes == 0)
        return ERR_RETYPE_SIZE;
    if (count == 0)
        return ERR_INVALID_ARG;

    /* Page-sized objects (and bigger) on page boundaries; small CNodes on
     * their own size (a power of two). RAM bases are page-aligned
     * (cap_install_root and retype ensure it), so aligning the offset aligns
     * every object: each one's size is a multiple of the alignment. */
    uint64_t align = bytes < CAP_PAGE_SIZE ? bytes : CAP_PAGE_SIZE;
    if (offset % align != 0 || (src->cap.base + offset) % align != 0)
        return ERR_BAD_ALIGNMENT;

    if (count > UINT64_MAX / bytes)
        return ERR_RETYPE_OVERFLOW;
    *total = count * bytes;
    if (offset > src->cap.bytes || *total > src->cap.bytes - offset)
        return ERR_RETYPE_OVERFLOW;
    *base = src->cap.base + offset;   /* cannot wrap: src's range was checked */

    if (!dest_cnode)
        return ERR_INVALID_ARG;
    if (!cnode_valid(dest_cnode))
        return ERR_CAP_TYPE;
    uint64_t nslots = cnode_nslots(dest_cnode);
    if (first >= nslots || count > nslots - first)
        return ERR_CAP_SLOT_RANGE;
    *slots = cnode_slots(dest_cnode) + first;
    for (uint64_t i = 0; i < count; i++)
        if (!cte_empty(&(*slots)[i]))
            return ERR_CAP_OCCUPIED;
    return ERR_OK;
}

/* Everything checked: make the objects. The destination slots are not
 * inside the new range (the destination CNode is an existing object, and
 * existing objects do not overlap the range), so zeroing first is safe.
 * RAM is not zeroed: nobody can read it as RAM, and it is zeroed when it
 * becomes an object (zeroing a monitor's whole share took seconds). */
static void make_objects(struct cte *src, enum cap_type type, uint64_t size, uint64_t base, uint64_t total,
                         uint64_t count, struct cte *slots)
{
    uint64_t bytes = total / count;
    if (type != CAP_RAM)
        hooks.zero(base, total);
    for (uint64_t i = 0; i < count; i++) {
        struct cte *d = &slots[i];
        cte_clear(d);
        d->cap.type = (uint8_t)type;
        d->cap.rights = src->cap.rights;   /* never more than the RAM had */
        d->cap.original = 1;
        d->cap.bits = type == CAP_CNODE ? (uint8_t)size : 0;
        d->cap.base = base + i * bytes;
        d->cap.bytes = bytes;
        link_child(src, d);
    }
}

errval_t cap_retype(struct cte *src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                    const struct capability *dest_cnode, uint64_t first)
{
    uint64_t base = 0, total = 0;
    struct cte *slots = NULL;
    errval_t err = retype_args(src, type, size, offset, count, dest_cnode, first, &base, &total, &slots);
    if (err)
        return err;
    if (lineage_overlaps(src, base, total))
        return ERR_OVERLAP;
    /* RAM of another core is carved only where its owner agreed. */
    if (original_of(src)->cap.relations & CAP_REL_FOREIGN)
        return ERR_CAP_REMOTE;
    make_objects(src, type, size, base, total, count, slots);
    return ERR_OK;
}

/* The whole pages [*pbase, *pbase + *pbytes) that [base, base+total) lies in. */
static void whole_pages(uint64_t base, uint64_t total, uint64_t *pbase, uint64_t *pbytes)
{
    uint64_t first = base & ~(uint64_t)(CAP_PAGE_SIZE - 1);
    uint64_t end = base + total;   /* inside a RAM range: no wrap */
    end = (end + CAP_PAGE_SIZE - 1) & ~(uint64_t)(CAP_PAGE_SIZE - 1);
    *pbase = first;
    *pbytes = end - first;
}

errval_t cap_retype_check(struct cte *src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                          const struct capability *dest_cnode, uint64_t first, uint64_t *base, uint64_t *bytes,
                          struct cte **original)
{
    uint64_t b = 0, total = 0;
    struct cte *slots = NULL;
    errval_t err = retype_args(src, type, size, offset, count, dest_cnode, first, &b, &total, &slots);
    if (err)
        return err;
    uint64_t pb, pn;
    whole_pages(b, total, &pb, &pn);
    if (lineage_overlaps(src, pb, pn))
        return ERR_OVERLAP;
    if (base)
        *base = pb;
    if (bytes)
        *bytes = pn;
    if (original)
        *original = original_of(src);
    return ERR_OK;
}

errval_t cap_retype_agreed(struct cte *src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                           const struct capability *dest_cnode, uint64_t first, const struct retype_agreement *agreed,
                           struct cte *envelope)
{
    uint64_t base = 0, total = 0, pb, pn;
    struct cte *slots = NULL;
    errval_t err = retype_args(src, type, size, offset, count, dest_cnode, first, &base, &total, &slots);
    if (err)
        return err;
    if (!envelope || !agreed)
        return ERR_INVALID_ARG;
    if (!cte_empty(envelope))
        return ERR_CAP_OCCUPIED;
    for (uint64_t i = 0; i < count; i++)
        if (&slots[i] == envelope)
            return ERR_CAP_SAME_SLOT;
    whole_pages(base, total, &pb, &pn);
    /* Another object swapped into src's slot, or other pages: not agreed. */
    if (original_of(src) != agreed->original || pb != agreed->base || pn != agreed->bytes)
        return ERR_CAP_REMOTE;
    if (lineage_overlaps(src, pb, pn))
        return ERR_OVERLAP;
    /* The envelope: RAM, an original child of src, holding the range. */
    cte_clear(envelope);
    envelope->cap.type = CAP_RAM;
    envelope->cap.rights = src->cap.rights;
    envelope->cap.original = 1;
    envelope->cap.base = pb;
    envelope->cap.bytes = pn;
    link_child(src, envelope);
    make_objects(envelope, type, size, base, total, count, slots);
    return ERR_OK;
}

/* ---- copy, mint, move, install -------------------------------------------- */

/* The checks copy, mint and move share. */
static errval_t check_src_dst(const struct cte *src, const struct cte *dst)
{
    if (!src || cte_empty(src))
        return ERR_CAP_EMPTY;
    if (!dst)
        return ERR_INVALID_ARG;
    if (src == dst)
        return ERR_CAP_SAME_SLOT;
    if (!cte_empty(dst))
        return ERR_CAP_OCCUPIED;
    return ERR_OK;
}

/* `cap` as a new child of `src` in `dst`: not original, not mapped. */
static void place_child(struct cte *src, struct cte *dst, const struct capability *cap)
{
    cte_clear(dst);
    dst->cap = *cap;
    dst->cap.original = 0;
    dst->cap.relations = 0;
    dst->cap.flush_owed = dst->cap.reserved[0] = dst->cap.reserved[1] = 0;
    if (is_mappable_type(cap->type))
        dst->cap.mapped = 0;
    link_child(src, dst);
}

errval_t cap_copy(struct cte *src, struct cte *dst)
{
    errval_t err = check_src_dst(src, dst);
    if (err)
        return err;
    struct capability cap = src->cap;
    place_child(src, dst, &cap);
    return ERR_OK;
}

errval_t cap_mint(struct cte *src, struct cte *dst, uint32_t rights, uint64_t badge, uint64_t base,
                  uint64_t count)
{
    errval_t err = check_src_dst(src, dst);
    if (err)
        return err;
    if (rights & ~(uint32_t)CAP_RIGHTS_ALL)
        return ERR_INVALID_ARG;

    struct capability cap = src->cap;
    cap.rights = (uint8_t)(src->cap.rights & rights);

    switch (src->cap.type) {
    case CAP_DISPATCHER:
        /* An endpoint to the dispatcher, with `badge` (0: unbadged). */
        if (base != 0 || count != 0)
            return ERR_INVALID_ARG;
        cap.type = CAP_ENDPOINT;
        cap.bits = 0;
        cap.base = src->cap.base;   /* the dispatcher object */
        cap.bytes = 0;
        cap.badge = badge;
        break;
    case CAP_ENDPOINT:
        if (base != 0 || count != 0)
            return ERR_INVALID_ARG;
        if (badge != 0) {
            if (src->cap.badge != 0)
                return ERR_CAP_RIGHTS;   /* a badge, once set, is fixed */
            cap.badge = badge;
        }
        break;
    case CAP_IO:
    case CAP_IRQ:
        if (badge != 0)
            return ERR_INVALID_ARG;
        if (count == 0) {
            if (base != 0)
                return ERR_INVALID_ARG;
            break;   /* keep the range */
        }
        if (base < src->cap.base || base - src->cap.base > src->cap.bytes ||
            count > src->cap.bytes - (base - src->cap.base))
            return ERR_PORT_RANGE;
        cap.base = base;
        cap.bytes = count;
        break;
    default:
        /* RAM, frames, CNodes, VNodes, Kernel: rights reduction only. */
        if (badge != 0 || base != 0 || count != 0)
            return ERR_INVALID_ARG;
        break;
    }
    place_child(src, dst, &cap);
    return ERR_OK;
}

errval_t cap_move(struct cte *src, struct cte *dst)
{
    errval_t err = check_src_dst(src, dst);
    if (err)
        return err;
    if (src->cap.relations & (CAP_REL_REMOTE | CAP_REL_WATCH))
        return ERR_CAP_REMOTE;   /* its monitor names it by its slot */
    *dst = *src;
    if (dst->prev)
        dst->prev->next = dst;
    else if (dst->parent)
        dst->parent->first_child = dst;
    if (dst->next)
        dst->next->prev = dst;
    for (struct cte *ch = dst->first_child; ch; ch = ch->next)
        ch->parent = dst;
    cte_clear(src);
    return ERR_OK;
}

errval_t cap_install_root(struct cte *dst, const struct capability *cap)
{
    if (!dst || !cap)
        return ERR_INVALID_ARG;
    if (!cte_empty(dst))
        return ERR_CAP_OCCUPIED;
    if (cap->type == CAP_NULL || cap->type >= CAP_TYPE_COUNT)
        return ERR_CAP_TYPE;
    if (cap->rights & ~CAP_RIGHTS_ALL)
        return ERR_INVALID_ARG;

    struct capability c = *cap;
    c.original = 1;
    c.relations = 0;
    c.flush_owed = c.reserved[0] = c.reserved[1] = 0;
    switch (c.type) {
    case CAP_RAM:
    case CAP_FRAME:
    case CAP_DEVFRAME:
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
    case CAP_DISPATCHER:
        if (c.bytes == 0 || cap_object_bytes(c.type, c.bytes) != c.bytes)
            return ERR_RETYPE_SIZE;
        if (c.base % CAP_PAGE_SIZE != 0)
            return ERR_BAD_ALIGNMENT;
        if (c.base + c.bytes < c.base)
            return ERR_RETYPE_OVERFLOW;
        c.bits = 0;
        if (is_mappable_type(c.type))
            c.mapped = 0;
        else
            c.badge = 0;
        break;
    case CAP_CNODE:
        if (c.bits < CAP_CNODE_MIN_BITS || c.bits > CAP_CNODE_MAX_BITS)
            return ERR_RETYPE_SIZE;
        c.bytes = (uint64_t)CAP_CTE_SIZE << c.bits;
        if (c.base % (c.bytes < CAP_PAGE_SIZE ? c.bytes : CAP_PAGE_SIZE) != 0)
            return ERR_BAD_ALIGNMENT;
        if (c.base + c.bytes < c.base)
            return ERR_RETYPE_OVERFLOW;
        c.badge = 0;
        break;
    case CAP_IO:
    case CAP_IRQ: {
        uint64_t limit = c.type == CAP_IO ? 0x10000 : 256;
        if (c.bytes == 0 || c.base >= limit || c.bytes > limit - c.base)
            return ERR_PORT_RANGE;
        c.bits = 0;
        c.badge = 0;
        break;
    }
    case CAP_ENDPOINT:
        c.bits = 0;
        c.bytes = 0;
        break;
    default:   /* CAP_KERNEL */
        c.bits = 0;
        c.badge = 0;
        break;
    }
    cte_clear(dst);
    dst->cap = c;
    return ERR_OK;
}

/* ---- deleting -------------------------------------------------------------
 *
 * Removing a capability with no children is simple: tell the kernel
 * (unlinked), take it out of its parent's list, empty the slot, and if it was
 * an original, its object is dead (destroyed). A CNode's death is the hard
 * part: every slot in it must be deleted first, those may hold originals of
 * other CNodes, which hold more, ... to any depth, and the CNodes may even
 * hold each other's originals (a cycle). Recursing is out of the question, and
 * there is no heap.
 *
 * So a dying CNode is not torn down where it dies: its capability is
 * replaced, in the slot it just left, by a *record* (type CAP_RECORD, not
 * linked into the tree) holding that capability and a cursor, and the record
 * is pushed on a worklist threaded through the records' `parent` fields.
 * Tree walks never meet records (nothing links to them). When the tree part
 * of the operation is done, drain() pops records one at a time and empties
 * that CNode slot by slot (each slot: revoke, then remove; that may add more
 * records anywhere), then calls destroyed. No nesting, so constant stack.
 *
 * One hazard: a record lives in some slot, and that slot may be inside a
 * CNode that dies and is destroyed before the record is popped. That cannot
 * happen, because a CNode is only destroyed after drain has walked all its
 * slots, and when the walk meets a record R in slot k of the CNode D it is
 * emptying, it swaps: R's content goes to local variables (R's CNode becomes
 * the one being emptied), and D's own state (its capability, cursor k) is
 * written into slot k in R's place - in D's own memory, and at the same place
 * in the worklist, so no list surgery is needed. A record in its own CNode's
 * memory can never be met by another CNode's walk (objects do not overlap),
 * and a CNode's own record is consumed (its slot emptied) when it is popped.
 * Each step removes a capability, advances a cursor, or turns a record in
 * foreign memory into one in its own, so the loop ends.
 *
 * Consequences: destroyed() for a CNode comes after all its slots are empty;
 * for every other original it comes when its capability is removed (its
 * descendants are gone by then). destroyed() for a RAM capability can come
 * while CNodes carved from it are still being emptied later in the same
 * operation: the kernel must not reuse memory from inside a hook (it cannot
 * anyway: memory is only reused by a later retype). Hooks must not call
 * cap_* operations (the worklist is live while they run).
 *
 * Anchors. A monitor's anchor (CAP_REL_REMOTE, a copy of an original)
 * stands for the object's copies on other cores, which this core cannot
 * delete. So no walk removes one. cap_delete and cap_revoke look first and
 * refuse (ERR_CAP_REMOTE) if the tree walk would meet one; the monitor
 * revokes the copies elsewhere, drops the anchor and calls again. Inside a
 * dying CNode there is no refusing: there the walk *adopts* the anchor
 * instead: it is unlinked from the dying subtree (with its own children)
 * and linked under the capability the walk keeps (revoke's `top`, or the
 * parent of what is deleted; none: it becomes a root). If the object's
 * original dies in the walk, the anchor becomes the original (so the
 * object is not destroyed, and its range stays taken in the RAM it came
 * from), and it is marked CAP_REL_ORPHAN for its monitor, which revokes
 * the copies elsewhere and then deletes it. Records live in the cursor
 * field `badge`, which a CNode does not use.
 */

static bool is_record(const struct cte *c)
{
    return c->cap.type == CAP_RECORD;
}

/* Remove `c`, which has no children; a dying CNode becomes a record in `c`. */
static void remove_leaf(struct cte *c, struct cte **worklist)
{
    if (hooks.unlinked)
        hooks.unlinked(c);
    struct capability cap = c->cap;
    unlink_from_parent(c);
    cte_clear(c);
    if (!cap.original || (cap.relations & CAP_REL_FOREIGN))
        return;   /* a copy, or another core's object: nothing dies here */
    if (cap.type == CAP_CNODE) {
        c->cap = cap;
        c->cap.type = CAP_RECORD;
        c->cap.badge = 0;   /* cursor */
        c->parent = *worklist;
        *worklist = c;
        return;
    }
    if (hooks.destroyed)
        hooks.destroyed(&cap);
}

/* Anchor `m` (with its children) leaves a subtree that dies, for
 * `survivor`, the capability the walk keeps above it (NULL: none). If a
 * RAM object above m was taken over by its own anchor earlier in this walk,
 * m goes under that anchor instead (the dying RAM's `badge`, which RAM does
 * not otherwise use, points at it): what was carved from the RAM stays
 * inside what holds the RAM's range. */
static void adopt(struct cte *m, struct cte *survivor)
{
    struct cte *o = NULL, *keep = survivor;
    for (struct cte *y = m->parent; y && y != survivor; y = y->parent) {
        if (y->cap.type == CAP_RAM && y->cap.badge) {
            keep = (struct cte *)(uintptr_t)y->cap.badge;
            break;
        }
        if (!o && y->cap.original)
            o = y;
    }
    if (!m->cap.original && o) {
        /* The object's original dies here: the anchor owns the object now.
         * (An anchor adopted before owns it already; o is then the RAM it
         * came from, which dies as usual.) */
        o->cap.original = 0;
        m->cap.original = 1;
        if (o->cap.type == CAP_RAM)
            o->cap.badge = (uint64_t)(uintptr_t)m;
    }
    unlink_from_parent(m);
    insert_child(keep, m);
    if (!keep)
        m->cap.original = 1;   /* every root is an original */
    m->cap.relations |= CAP_REL_ORPHAN;
    if (hooks.notice)
        hooks.notice(m);
}

/* Remove every descendant of `top`, deepest first, without recursion: go
 * down first_child to a leaf, remove it, step back to its parent. Anchors
 * on the way are adopted for `survivor` (top itself when top stays, its
 * parent when it goes next): callers that must not adopt look first. */
static void revoke_tree(struct cte *top, struct cte *survivor, struct cte **worklist)
{
    struct cte *cur = top;
    for (;;) {
        struct cte *ch = cur->first_child;
        if (ch && is_anchor(ch)) {
            /* Anchors lead their siblings: met before anything carved
             * from the same object. Never when top stays (cap_revoke
             * looked first): it would come back under top. */
            adopt(ch, survivor);
            continue;
        }
        if (ch) {
            cur = ch;
            continue;
        }
        if (cur == top)
            return;
        struct cte *parent = cur->parent;
        remove_leaf(cur, worklist);
        cur = parent;
    }
}

/* Empty and destroy every CNode on the worklist (and those that die on the way). */
static void drain(struct cte **worklist)
{
    while (*worklist) {
        struct cte *rec = *worklist;
        *worklist = rec->parent;
        struct capability cn = rec->cap;
        uint64_t k = cn.badge;
        cn.type = CAP_CNODE;
        cn.badge = 0;
        cte_clear(rec);

        struct cte *slots = cnode_slots(&cn);
        uint64_t n = cnode_nslots(&cn);
        while (k < n) {
            struct cte *s = &slots[k];
            if (cte_empty(s)) {
                k++;
            } else if (is_record(s)) {
                if (ranges_overlap(s->cap.base, s->cap.bytes, cn.base, cn.bytes)) {
                    /* Only with overlapping CNodes from the kernel: cannot
                     * make progress by swapping, leave it to its own turn. */
                    k++;
                    continue;
                }
                struct capability other = s->cap;
                s->cap = cn;                 /* this CNode waits here, in its */
                s->cap.type = CAP_RECORD;    /* own memory, in the other's  */
                s->cap.badge = k;            /* place on the worklist */
                cn = other;
                k = cn.badge;
                cn.type = CAP_CNODE;
                cn.badge = 0;
                slots = cnode_slots(&cn);
                n = cnode_nslots(&cn);
            } else {
                revoke_tree(s, s->parent, worklist);
                remove_leaf(s, worklist);   /* s may now hold a record */
            }
        }
        if (hooks.destroyed)
            hooks.destroyed(&cn);
    }
}

errval_t cap_revoke(struct cte *c)
{
    if (!c || cte_empty(c))
        return ERR_CAP_EMPTY;
    if (cap_find_remote(c, false))
        return ERR_CAP_REMOTE;
    struct cte *worklist = NULL;
    revoke_tree(c, c, &worklist);
    drain(&worklist);
    return ERR_OK;
}

errval_t cap_delete(struct cte *c)
{
    if (!c || cte_empty(c))
        return ERR_CAP_EMPTY;
    if (cap_find_remote(c, true))
        return ERR_CAP_REMOTE;
    struct cte *worklist = NULL;
    revoke_tree(c, c->parent, &worklist);
    remove_leaf(c, &worklist);
    drain(&worklist);
    return ERR_OK;
}

/* ---- queries --------------------------------------------------------------- */

void cap_identify(const struct cte *c, struct cap_identity *out)
{
    if (!out)
        return;
    out->type = CAP_NULL;
    out->rights = 0;
    out->base = 0;
    out->bytes = 0;
    out->badge = 0;
    out->flags = 0;
    out->reserved = 0;
    if (!c || cte_empty(c))
        return;
    uint32_t rel = c->cap.relations;
    out->flags = (c->cap.original ? CAP_ID_ORIGINAL : 0) | (c->first_child ? CAP_ID_HAS_CHILDREN : 0) |
                 (rel & CAP_REL_FOREIGN ? CAP_ID_FOREIGN : 0) | (rel & CAP_REL_REMOTE ? CAP_ID_REMOTE : 0) |
                 (rel & CAP_REL_WATCH ? CAP_ID_WATCH : 0) | (rel & CAP_REL_ORPHAN ? CAP_ID_ORPHAN : 0);
    out->type = c->cap.type;
    out->rights = c->cap.rights;
    out->base = c->cap.base;
    out->bytes = c->cap.type == CAP_CNODE ? cnode_nslots(&c->cap) : c->cap.bytes;
    out->badge = c->cap.type == CAP_ENDPOINT ? c->cap.badge : 0;
}

uint64_t cap_descendants(const struct cte *c)
{
    if (!c)
        return 0;
    uint64_t n = 0;
    for (const struct cte *cur = c->first_child; cur; cur = subtree_next(cur, c, true))
        n++;
    return n;
}

/* ---- across cores ----------------------------------------------------------- */

errval_t cap_install_foreign(struct cte *dst, const struct capability *cap)
{
    errval_t err = cap_install_root(dst, cap);
    if (!err)
        dst->cap.relations = CAP_REL_FOREIGN;
    return err;
}

struct cte *cap_original_of(struct cte *c) { return c ? original_of(c) : NULL; }

struct cte *cap_anchor_of(const struct cte *o)
{
    if (!o)
        return NULL;
    for (struct cte *ch = o->first_child; ch && is_anchor(ch); ch = ch->next)
        if (!ch->cap.original && ch->cap.type == o->cap.type && ch->cap.base == o->cap.base &&
            ch->cap.bytes == o->cap.bytes)
            return ch;
    return NULL;
}

struct cte *cap_find_remote(struct cte *c, bool self)
{
    if (!c || cte_empty(c))
        return NULL;
    if (self && (c->cap.relations & CAP_REL_REMOTE))
        return c;
    for (const struct cte *cur = c->first_child; cur; cur = subtree_next(cur, c, true))
        if (cur->cap.relations & CAP_REL_REMOTE)
            return (struct cte *)cur;
    return NULL;
}

errval_t cap_anchor(struct cte *src, struct cte *dst)
{
    errval_t err = check_src_dst(src, dst);
    if (err)
        return err;
    struct cte *o = original_of(src);
    if (o->cap.relations & CAP_REL_FOREIGN)
        return ERR_CAP_FOREIGN;   /* its owner is another core: that one anchors */
    if (cap_anchor_of(o))
        return ERR_DUPLICATE;
    cte_clear(dst);
    dst->cap = o->cap;
    dst->cap.original = 0;
    dst->cap.relations = CAP_REL_REMOTE | CAP_REL_WATCH;
    dst->cap.flush_owed = dst->cap.reserved[0] = dst->cap.reserved[1] = 0;
    if (is_mappable_type(dst->cap.type))
        dst->cap.mapped = 0;
    insert_child(o, dst);   /* first: anchors lead their siblings */
    return ERR_OK;
}

errval_t cap_hand_over(struct cte *c, struct cte **blocking)
{
    *blocking = NULL;
    if (!c || cte_empty(c))
        return ERR_CAP_EMPTY;
    if (!c->cap.original || (c->cap.relations & (CAP_REL_FOREIGN | CAP_REL_REMOTE)))
        return ERR_INVALID_ARG;
    struct cte *a = cap_anchor_of(c);   /* not an adopted anchor of something carved from c */
    if (!a)
        return ERR_NOT_FOUND;
    /* Any other anchor the delete would meet stays in the way: nothing
     * changes, and the caller deals with that object first. */
    for (const struct cte *cur = c->first_child; cur; cur = subtree_next(cur, c, cur != a))
        if (cur != a && is_anchor(cur)) {
            *blocking = (struct cte *)cur;
            return ERR_CAP_REMOTE;
        }
    /* A CNode that dies with c may hold the anchor itself (its slot is
     * then memory that goes): not handed over, the monitor revokes. */
    if (c->cap.type == CAP_CNODE)
        return ERR_NOT_PERMITTED;
    for (const struct cte *cur = c->first_child; cur; cur = subtree_next(cur, c, cur != a))
        if (cur != a && cur->cap.type == CAP_CNODE && cur->cap.original)
            return ERR_NOT_PERMITTED;
    /* The anchor, with what was reserved under it, takes the original's
     * place in the tree and its part (the object's range stays taken in
     * the RAM it came from); the original, a copy now, goes as any copy,
     * with its other copies and what was carved from it. */
    struct cte *p = c->parent;
    unlink_from_parent(a);
    insert_child(p, a);
    a->cap.original = 1;
    c->cap.original = 0;
    return cap_delete(c);
}

errval_t cap_hand_over_anchor(struct cte *a, struct cte **blocking)
{
    *blocking = NULL;
    if (!a || cte_empty(a))
        return ERR_CAP_EMPTY;
    /* An anchor still under the original it was made from: not one that is
     * the original already (handed over, adopted), not a plain copy. */
    if (!is_anchor(a) || a->cap.original || !a->parent || cap_anchor_of(a->parent) != a)
        return ERR_INVALID_ARG;
    return cap_hand_over(a->parent, blocking);
}

errval_t cap_take_over(struct cte *c, bool back)
{
    if (!c || cte_empty(c))
        return ERR_CAP_EMPTY;
    /* Only memory that no kernel object lives in: nothing is destroyed
     * here when it dies, as nothing was while it was FOREIGN. */
    if (c->cap.type != CAP_RAM && c->cap.type != CAP_FRAME && c->cap.type != CAP_DEVFRAME)
        return ERR_CAP_TYPE;
    if (!c->cap.original || c->parent)
        return ERR_INVALID_ARG;   /* a root re-created from a description */
    if (back) {
        if (c->cap.relations & CAP_REL_FOREIGN)
            return ERR_INVALID_ARG;
        if (cap_anchor_of(c))
            return ERR_CAP_REMOTE;
        c->cap.relations |= CAP_REL_FOREIGN;
        return ERR_OK;
    }
    if (!(c->cap.relations & CAP_REL_FOREIGN))
        return ERR_INVALID_ARG;
    /* Its range in the RAM it came from stays taken on the old owner's
     * core (the old anchor) until this one is gone: this kernel checks
     * only what is carved from it, which the monitors re-reserve here. */
    c->cap.relations &= (uint8_t)~CAP_REL_FOREIGN;
    return ERR_OK;
}

errval_t cap_revoke_siblings(struct cte *c, uint64_t *kept)
{
    if (!c || cte_empty(c))
        return ERR_CAP_EMPTY;
    struct cte *p = c->parent;
    if (c->cap.original || !p)
        return ERR_INVALID_ARG;   /* a copy has a parent */
    *kept = 0;
    struct cte *worklist = NULL;
    struct cte *ch = p->first_child;
    while (ch) {
        if (ch == c || is_anchor(ch) || cap_find_remote(ch, false)) {
            /* c itself; an anchor (copies elsewhere: its monitor's); a
             * sibling with copies elsewhere below: its monitor revokes
             * those first, nothing here adopts them. */
            *kept += ch != c && !is_anchor(ch);
            ch = ch->next;
            continue;
        }
        struct cte *next = ch->next;
        revoke_tree(ch, ch, &worklist);
        remove_leaf(ch, &worklist);
        ch = next;
    }
    drain(&worklist);
    return ERR_OK;
}

errval_t cap_relate(struct cte *c, uint32_t set, uint32_t clear)
{
    const uint32_t settable = CAP_REL_REMOTE | CAP_REL_WATCH | CAP_REL_ORPHAN;
    if (!c || cte_empty(c))
        return ERR_CAP_EMPTY;
    if ((set | clear) & ~settable)
        return ERR_INVALID_ARG;
    uint8_t was = c->cap.relations;
    c->cap.relations = (uint8_t)((was | set) & ~clear);
    if ((was ^ c->cap.relations) & CAP_REL_REMOTE) {
        /* Keep the anchors in front of their siblings. */
        struct cte *parent = c->parent;
        list_remove(c);
        insert_child(parent, c);
    }
    return ERR_OK;
}
