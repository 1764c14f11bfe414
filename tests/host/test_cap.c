/*
 * Host unit tests for cpudriver/cap.c: object sizes, retype arithmetic and
 * overlap, copy/mint/move/identify, delete and revoke of deep and wide
 * trees, CNode teardown (nested, self-holding, cyclic), and a randomized run
 * that checks the whole derivation tree after every operation.
 *
 * "Physical memory" is a malloc'd arena at ARENA_BASE. The hooks record every
 * call and check it: unlinked only for a live leaf still in the tree,
 * destroyed only for originals (for a CNode: only once every slot is empty),
 * zero only inside the arena. destroyed poisons the object's memory (except
 * RAM, see cap.c), so reading a dead CNode shows up as garbage.
 *
 * Everything runs on a thread with a small stack: a recursive delete of a
 * 100000-deep tree would overflow it and ASan would report it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cap.h"
#include "check.h"

#define ARENA_BASE 0x80000000ull
#define RECORD_TYPE 0xffu          /* cap.c's internal marker: must never be seen */
#define NK 200000                  /* "kernel" slots outside any CNode */
#define TEST_STACK (256u << 10)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint8_t *arena;
static uint64_t arena_size;
static struct cte *ks;             /* kernel slots: roots live here */
static uint64_t nk_used;           /* ks[0 .. nk_used) are scanned by the validator */
/* Roots moved out of ks (e.g. a CNode's own root capability moved into it):
 * the validator starts from these too. Moves update the list (by hand in the
 * tests), unlinked removes from it. */
#define MAX_EXTRA 64
static struct cte *extra[MAX_EXTRA];

static long slot_index(const struct cte *c);

static void extra_moved(struct cte *from, struct cte *to)
{
    for (int i = 0; i < MAX_EXTRA; i++)
        if (extra[i] == from) {
            extra[i] = to;
            return;
        }
    if (to->parent || (to >= ks && to < ks + NK))
        return;
    for (int i = 0; i < MAX_EXTRA; i++)
        if (!extra[i]) {
            extra[i] = to;
            return;
        }
    fprintf(stderr, "too many extra roots\n");
    abort();
}

/* ---- hooks ------------------------------------------------------------------ */

static struct {
    uint64_t zero_calls, zero_base, zero_bytes;
    uint64_t unlinked;
    uint64_t destroyed;
    struct capability *log;        /* destroyed capabilities, in order */
    size_t nlog, caplog;
    bool checking;                 /* the validator is running: no hook may be called */
    uint64_t notices;
    struct cte *last_notice;
} hk;

static bool in_arena(uint64_t phys, uint64_t bytes)
{
    return phys >= ARENA_BASE && phys - ARENA_BASE <= arena_size &&
           bytes <= arena_size - (phys - ARENA_BASE);
}

static void *h_ptr(uint64_t phys)
{
    if (!in_arena(phys, CAP_CTE_SIZE * 2)) {
        fprintf(stderr, "ptr(%#llx) outside the arena\n", (unsigned long long)phys);
        abort();
    }
    return arena + (phys - ARENA_BASE);
}

static void h_zero(uint64_t phys, uint64_t bytes)
{
    CHECK(!hk.checking);
    CHECK(in_arena(phys, bytes));
    CHECK(bytes > 0);
    hk.zero_calls++;
    hk.zero_base = phys;
    hk.zero_bytes = bytes;
    if (in_arena(phys, bytes))
        memset(arena + (phys - ARENA_BASE), 0, bytes);
}

static bool cte_in_tree(const struct cte *c)
{
    if (!c->parent)
        return c->prev == NULL && c->next == NULL;
    if (c->prev)
        return c->prev->next == c && c->prev->parent == c->parent;
    return c->parent->first_child == c;
}

static void h_unlinked(struct cte *c)
{
    CHECK(!hk.checking);
    CHECK(c->cap.type != CAP_NULL && c->cap.type < CAP_TYPE_COUNT);
    CHECK(c->first_child == NULL);   /* descendants go first */
    CHECK(cte_in_tree(c));           /* still in the tree when told */
    for (int i = 0; i < MAX_EXTRA; i++)
        if (extra[i] == c)
            extra[i] = NULL;
    hk.unlinked++;
}

static void h_destroyed(const struct capability *cap)
{
    CHECK(!hk.checking);
    CHECK(cap->original == 1);
    CHECK(cap->type != CAP_NULL && cap->type < CAP_TYPE_COUNT);
    if (cap->type == CAP_CNODE) {
        const struct cte *s = h_ptr(cap->base);
        bool empty = true;
        for (uint64_t i = 0; i < (1ull << cap->bits); i++)
            empty &= s[i].cap.type == CAP_NULL;
        CHECK(empty);   /* slots are deleted before the CNode dies */
    }
    if (hk.nlog == hk.caplog) {
        hk.caplog = hk.caplog ? 2 * hk.caplog : 1024;
        hk.log = realloc(hk.log, hk.caplog * sizeof *hk.log);
    }
    hk.log[hk.nlog++] = *cap;
    hk.destroyed++;
    /* The object is dead: poison it so later reads by cap.c show up. RAM may
     * still hold CNodes being emptied in this same operation (cap.c). */
    if (cap->type != CAP_RAM && in_arena(cap->base, cap->bytes))
        memset(arena + (cap->base - ARENA_BASE), 0xdd, cap->bytes);
}

/* Notices (a watched capability lost its last child, or an anchor was
 * adopted): counted, the last one kept. */
static void h_notice(struct cte *c)
{
    CHECK(!hk.checking);
    CHECK(c->cap.relations & (CAP_REL_WATCH | CAP_REL_ORPHAN));
    hk.notices++;
    hk.last_notice = c;
    if (!c->parent && slot_index(c) >= NK)
        extra_moved(c, c);   /* adopted as a root inside a CNode: the validator starts there too */
}

static const struct cap_hooks hooks = { h_ptr, h_zero, h_unlinked, h_destroyed, h_notice };

static void hooks_reset(void)
{
    hk.zero_calls = hk.zero_base = hk.zero_bytes = 0;
    hk.unlinked = hk.destroyed = 0;
    hk.nlog = 0;
    hk.notices = 0;
    hk.last_notice = NULL;
}

/* ---- environment --------------------------------------------------------------
 *
 * Arena layout: [ARENA_BASE, +root CNode bytes) the root CNode, installed as a
 * root in ks[0]; the rest from ARENA_BASE + 1 MiB is one root RAM capability
 * in ks[1]. Memory starts as garbage (0xa5): only zeroed objects are clean.
 */
#define ROOT_CN_PHYS ARENA_BASE
#define RAM_PHYS (ARENA_BASE + (1ull << 20))

static struct capability *rootcn;  /* &ks[0].cap */
static struct cte *ram;            /* &ks[1] */
static uint64_t ram_bytes;

static void env_reset(uint64_t size, unsigned root_bits)
{
    if (size > arena_size) {
        free(arena);
        arena = aligned_alloc(4096, size);
        if (!arena)
            abort();
    }
    arena_size = size;
    memset(arena, 0xa5, size);
    memset(ks, 0, (size_t)NK * sizeof *ks);
    memset(extra, 0, sizeof extra);
    nk_used = 64;
    hooks_reset();
    memset(arena, 0, (size_t)CAP_CTE_SIZE << root_bits);
    struct capability cn = { .type = CAP_CNODE, .rights = CAP_RIGHTS_ALL, .bits = (uint8_t)root_bits,
                             .base = ROOT_CN_PHYS };
    CHECK_ERR(cap_install_root(&ks[0], &cn), ERR_OK);
    ram_bytes = size - (1u << 20);
    struct capability r = { .type = CAP_RAM, .rights = CAP_RIGHTS_ALL, .base = RAM_PHYS,
                            .bytes = ram_bytes };
    CHECK_ERR(cap_install_root(&ks[1], &r), ERR_OK);
    rootcn = &ks[0].cap;
    ram = &ks[1];
}

/* Slot i of the root CNode. */
static struct cte *S(uint64_t i)
{
    struct cte *c = NULL;
    CHECK_ERR(cap_slot(rootcn, i, &c), ERR_OK);
    return c;
}

static struct cte *slot_of(const struct capability *cn, uint64_t i)
{
    struct cte *c = NULL;
    CHECK_ERR(cap_slot(cn, i, &c), ERR_OK);
    return c;
}

static errval_t retype(struct cte *src, enum cap_type t, uint64_t size, uint64_t off, uint64_t count,
                       uint64_t first)
{
    return cap_retype(src, t, size, off, count, rootcn, first);
}

static bool is_mem(uint32_t t)
{
    return t == CAP_RAM || t == CAP_FRAME || t == CAP_DEVFRAME || t == CAP_CNODE ||
           (t >= CAP_VNODE_PML4 && t <= CAP_VNODE_PT) || t == CAP_DISPATCHER;
}

/* ---- the validator ------------------------------------------------------------
 *
 * Walks every tree from the roots in ks, checking links (parent, first child,
 * siblings, no cycles) and per-capability rules; then checks that every
 * non-empty slot of every live CNode and of ks was reached, that every
 * reached slot lies in ks or in a live CNode, and that objects (originals)
 * carved from the same RAM never overlap.
 */
struct vstate {
    uint8_t *seen;              /* per slot index */
    uint8_t *live_slot;         /* arena slots inside a live CNode */
    size_t nseen;
    struct cte **caps;          /* every live capability */
    size_t ncaps, capcaps;
    struct orig { const struct cte *owner; uint64_t type, base, bytes; } *origs;
    size_t norigs, caporigs;
    bool bad;
};
static struct vstate vs;

static long slot_index(const struct cte *c)
{
    if (c >= ks && c < ks + NK)
        return c - ks;
    uintptr_t a = (uintptr_t)c, lo = (uintptr_t)arena;
    if (a >= lo && a < lo + arena_size && (a - lo) % CAP_CTE_SIZE == 0)
        return NK + (long)((a - lo) / CAP_CTE_SIZE);
    return -1;
}

#define VCHECK(cond)                                                          \
    do {                                                                      \
        check_count++;                                                        \
        if (!(cond)) {                                                        \
            if (!vs.bad)                                                      \
                check_fail(file, line, #cond);                                \
            vs.bad = true;                                                    \
        }                                                                     \
    } while (0)

static bool vmark(const char *file, int line, struct cte *c)
{
    long i = slot_index(c);
    VCHECK(i >= 0);
    if (i < 0)
        return false;
    VCHECK(!vs.seen[i]);
    if (vs.seen[i])
        return false;
    vs.seen[i] = 1;
    if (vs.ncaps == vs.capcaps) {
        vs.capcaps = vs.capcaps ? 2 * vs.capcaps : 4096;
        vs.caps = realloc(vs.caps, vs.capcaps * sizeof *vs.caps);
    }
    vs.caps[vs.ncaps++] = c;
    return true;
}

static bool within(uint64_t b, uint64_t n, uint64_t pb, uint64_t pn)
{
    return b >= pb && b - pb <= pn && n <= pn - (b - pb);
}

static void vcap(const char *file, int line, const struct cte *c)
{
    const struct capability *k = &c->cap;
    VCHECK(k->type != CAP_NULL && k->type < CAP_TYPE_COUNT);
    VCHECK((k->rights & ~CAP_RIGHTS_ALL) == 0);
    VCHECK(k->original <= 1);
    VCHECK(k->flush_owed <= 1 && k->reserved[0] == 0 && k->reserved[1] == 0);
    if (k->type == CAP_CNODE) {
        VCHECK(k->bits >= CAP_CNODE_MIN_BITS && k->bits <= CAP_CNODE_MAX_BITS);
        VCHECK(k->bytes == (uint64_t)CAP_CTE_SIZE << k->bits);
    }
    if (is_mem(k->type) && k->type != CAP_CNODE)
        VCHECK(k->bytes > 0 && k->bytes % CAP_PAGE_SIZE == 0 && k->base % CAP_PAGE_SIZE == 0);
    if (k->type == CAP_RAM)
        VCHECK(k->badge == 0);   /* (cap.c forwards adoptions through it within one walk) */
    /* Anchors lead their siblings. */
    if (c->prev && (k->relations & CAP_REL_REMOTE))
        VCHECK(c->prev->cap.relations & CAP_REL_REMOTE);
    VCHECK((k->relations & ~(CAP_REL_FOREIGN | CAP_REL_REMOTE | CAP_REL_WATCH | CAP_REL_ORPHAN)) == 0);
    const struct cte *p = c->parent;
    if (k->relations & CAP_REL_FOREIGN)   /* re-created from another core: a root */
        VCHECK(!p && k->original);
    if ((k->relations & CAP_REL_REMOTE) && !(k->relations & CAP_REL_ORPHAN) && !k->original) {
        /* an anchor hangs from the original of its object (or, handed over
         * by cap_hand_over, is that original: checked as any original) */
        VCHECK(p && p->cap.original && p->cap.type == k->type && p->cap.base == k->base &&
               p->cap.bytes == k->bytes);
    }
    if (!p) {
        VCHECK(k->original == 1);
        return;
    }
    const struct capability *pk = &p->cap;
    VCHECK((k->rights & ~pk->rights) == 0);   /* rights never grow */
    if (k->original) {
        VCHECK(pk->type == CAP_RAM);
        VCHECK(is_mem(k->type) && k->type != CAP_DEVFRAME);
        VCHECK(within(k->base, k->bytes, pk->base, pk->bytes));
    } else if (k->type == CAP_ENDPOINT && pk->type == CAP_DISPATCHER) {
        VCHECK(k->base == pk->base);
    } else {
        VCHECK(k->type == pk->type);
        if (k->type == CAP_IO || k->type == CAP_IRQ)
            VCHECK(k->bytes > 0 && within(k->base, k->bytes, pk->base, pk->bytes));
        else
            VCHECK(k->base == pk->base && k->bytes == pk->bytes && k->bits == pk->bits);
        if (k->type == CAP_ENDPOINT && pk->badge)
            VCHECK(k->badge == pk->badge);
        if (is_mem(k->type) && k->type != CAP_RAM && k->type != CAP_CNODE &&
            k->type != CAP_DISPATCHER)
            VCHECK(k->mapped == 0);
    }
}

/* Iterative pre-order walk of one tree. */
static void vwalk(const char *file, int line, struct cte *root)
{
    if (!vmark(file, line, root))
        return;
    vcap(file, line, root);
    VCHECK(root->prev == NULL && root->next == NULL);
    struct cte *cur = root;
    for (;;) {
        if (vs.bad)
            return;
        struct cte *ch = cur->first_child;
        if (ch) {
            VCHECK(ch->parent == cur);
            VCHECK(ch->prev == NULL);
            if (vs.bad || !vmark(file, line, ch))
                return;
            vcap(file, line, ch);
            cur = ch;
            continue;
        }
        while (cur != root && !cur->next)
            cur = cur->parent;
        if (cur == root)
            return;
        struct cte *nx = cur->next;
        VCHECK(nx->prev == cur);
        VCHECK(nx->parent == cur->parent);
        if (vs.bad || !vmark(file, line, nx))
            return;
        vcap(file, line, nx);
        cur = nx;
    }
}

static int orig_cmp(const void *a, const void *b)
{
    const struct orig *x = a, *y = b;
    if (x->owner != y->owner)
        return (uintptr_t)x->owner < (uintptr_t)y->owner ? -1 : 1;
    if (x->base != y->base)
        return x->base < y->base ? -1 : 1;
    return 0;
}

/* Returns false (and has reported) if anything is wrong; fills vs. */
static bool validate_at(const char *file, int line)
{
    hk.checking = true;
    size_t n = NK + arena_size / CAP_CTE_SIZE;
    if (n != vs.nseen) {
        free(vs.seen);
        free(vs.live_slot);
        vs.seen = calloc(n, 1);
        vs.live_slot = calloc(n, 1);
        vs.nseen = n;
    } else {
        memset(vs.seen, 0, n);
        memset(vs.live_slot, 0, n);
    }
    vs.ncaps = vs.norigs = 0;
    vs.bad = false;

    for (uint64_t i = 0; i < nk_used && !vs.bad; i++)
        if (ks[i].cap.type != CAP_NULL && ks[i].parent == NULL && !vs.seen[i])
            vwalk(file, line, &ks[i]);
    for (int i = 0; i < MAX_EXTRA && !vs.bad; i++) {
        struct cte *r = extra[i];
        if (!r)
            continue;
        long idx = slot_index(r);
        VCHECK(idx >= 0 && r->cap.type != CAP_NULL && r->parent == NULL);
        if (!vs.bad && !vs.seen[idx])
            vwalk(file, line, r);
    }
    for (uint64_t i = 0; i < nk_used && !vs.bad; i++) {
        VCHECK(ks[i].cap.type != RECORD_TYPE);
        if (ks[i].cap.type != CAP_NULL)
            VCHECK(vs.seen[i]);   /* every capability descends from a root */
        else
            VCHECK(ks[i].parent == NULL && ks[i].first_child == NULL);
    }
    /* Live CNodes' slots: every capability reached, every reached one inside. */
    for (size_t i = 0; i < vs.ncaps && !vs.bad; i++) {
        const struct cte *c = vs.caps[i];
        if (c->cap.type != CAP_CNODE || !c->cap.original)
            continue;
        VCHECK(in_arena(c->cap.base, c->cap.bytes));
        if (vs.bad)
            break;
        struct cte *s = h_ptr(c->cap.base);
        for (uint64_t j = 0; j < (1ull << c->cap.bits); j++) {
            long idx = slot_index(&s[j]);
            VCHECK(idx >= NK);
            if (vs.bad)
                break;
            VCHECK(!vs.live_slot[idx]);   /* live CNodes do not overlap */
            vs.live_slot[idx] = 1;
            VCHECK(s[j].cap.type != RECORD_TYPE);
            if (s[j].cap.type != CAP_NULL)
                VCHECK(vs.seen[idx]);
        }
    }
    for (size_t i = 0; i < vs.ncaps && !vs.bad; i++) {
        long idx = slot_index(vs.caps[i]);
        if (idx >= NK)
            VCHECK(vs.live_slot[idx]);   /* no capability in a dead CNode */
    }
    /* Objects carved from the same RAM never overlap. */
    for (size_t i = 0; i < vs.ncaps && !vs.bad; i++) {
        const struct cte *c = vs.caps[i];
        if (!c->cap.original || !c->parent || !is_mem(c->cap.type))
            continue;
        const struct cte *o = c->parent;
        while (!o->cap.original)
            o = o->parent;
        if (vs.norigs == vs.caporigs) {
            vs.caporigs = vs.caporigs ? 2 * vs.caporigs : 1024;
            vs.origs = realloc(vs.origs, vs.caporigs * sizeof *vs.origs);
        }
        vs.origs[vs.norigs++] = (struct orig){ o, c->cap.type, c->cap.base, c->cap.bytes };
    }
    if (vs.norigs)
        qsort(vs.origs, vs.norigs, sizeof *vs.origs, orig_cmp);
    for (size_t i = 1; i < vs.norigs && !vs.bad; i++)
        if (vs.origs[i].owner == vs.origs[i - 1].owner)
            VCHECK(vs.origs[i - 1].base + vs.origs[i - 1].bytes <= vs.origs[i].base);
    hk.checking = false;
    return !vs.bad;
}
#define VALIDATE() validate_at(__FILE__, __LINE__)

/* Number of live capabilities (after VALIDATE). */
static size_t live_caps(void)
{
    return vs.ncaps;
}

/* A hash of all slot memory (ks and every live CNode), for "nothing changed". */
static uint64_t state_hash(void)
{
    uint64_t h = 1469598103934665603ull;
    const uint8_t *p = (const uint8_t *)ks;
    for (size_t i = 0; i < nk_used * sizeof *ks; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    for (size_t i = 0; i < vs.ncaps; i++) {
        const struct cte *c = vs.caps[i];
        if (c->cap.type != CAP_CNODE || !c->cap.original)
            continue;
        p = h_ptr(c->cap.base);
        uint64_t sum = 1469598103934665603ull;
        for (uint64_t j = 0; j < c->cap.bytes; j++)
            sum = (sum ^ p[j]) * 1099511628211ull;
        h += sum * (c->cap.base | 1);   /* order-independent over CNodes */
    }
    return h;
}

/* ---- object sizes and slots ----------------------------------------------------- */

static void test_object_bytes(void)
{
    static const uint32_t sized[] = { CAP_RAM, CAP_FRAME, CAP_DEVFRAME };
    for (size_t i = 0; i < ARRAY_LEN(sized); i++) {
        enum cap_type t = (enum cap_type)sized[i];
        CHECK_EQ(cap_object_bytes(t, 0), 0);
        CHECK_EQ(cap_object_bytes(t, 1), 0);
        CHECK_EQ(cap_object_bytes(t, 4095), 0);
        CHECK_EQ(cap_object_bytes(t, 4096), 4096);
        CHECK_EQ(cap_object_bytes(t, 4097), 0);
        CHECK_EQ(cap_object_bytes(t, 8192), 8192);
        CHECK_EQ(cap_object_bytes(t, 6144), 0);
        CHECK_EQ(cap_object_bytes(t, 1ull << 40), 1ull << 40);
        CHECK_EQ(cap_object_bytes(t, UINT64_MAX & ~4095ull), UINT64_MAX & ~4095ull);
        CHECK_EQ(cap_object_bytes(t, UINT64_MAX), 0);
    }
    CHECK_EQ(cap_object_bytes(CAP_CNODE, 0), 0);
    for (uint64_t b = CAP_CNODE_MIN_BITS; b <= CAP_CNODE_MAX_BITS; b++)
        CHECK_EQ(cap_object_bytes(CAP_CNODE, b), 64ull << b);
    CHECK_EQ(cap_object_bytes(CAP_CNODE, 1), 128);
    CHECK_EQ(cap_object_bytes(CAP_CNODE, 16), 4u << 20);
    CHECK_EQ(cap_object_bytes(CAP_CNODE, 17), 0);
    CHECK_EQ(cap_object_bytes(CAP_CNODE, 64), 0);
    CHECK_EQ(cap_object_bytes(CAP_CNODE, UINT64_MAX), 0);
    CHECK_EQ(cap_object_bytes(CAP_CNODE, (1ull << 32) + 4), 0);
    /* Fixed sizes: `size` must be 0 or exactly that size. */
    for (uint32_t t = CAP_VNODE_PML4; t <= CAP_DISPATCHER; t++) {
        uint64_t fixed = t == CAP_DISPATCHER ? CAP_DISPATCHER_SIZE : CAP_VNODE_SIZE;
        CHECK_EQ(cap_object_bytes((enum cap_type)t, 0), fixed);
        CHECK_EQ(cap_object_bytes((enum cap_type)t, fixed), fixed);
        CHECK_EQ(cap_object_bytes((enum cap_type)t, 1), 0);
        CHECK_EQ(cap_object_bytes((enum cap_type)t, fixed + 4096), 0);
        if (fixed > 4096)
            CHECK_EQ(cap_object_bytes((enum cap_type)t, fixed - 4096), 0);
        CHECK_EQ(cap_object_bytes((enum cap_type)t, fixed << 32), 0);
    }
    static const uint32_t none[] = { CAP_NULL, CAP_ENDPOINT, CAP_IRQ, CAP_IO, CAP_KERNEL,
                                     CAP_TYPE_COUNT, 99, 0xff };
    for (size_t i = 0; i < ARRAY_LEN(none); i++) {
        CHECK_EQ(cap_object_bytes((enum cap_type)none[i], 0), 0);
        CHECK_EQ(cap_object_bytes((enum cap_type)none[i], 4096), 0);
        CHECK_EQ(cap_object_bytes((enum cap_type)none[i], 4), 0);
    }
}

static void test_slot(void)
{
    env_reset(4u << 20, 8);
    struct cte *c = (struct cte *)0x1;
    CHECK_ERR(cap_slot(rootcn, 0, &c), ERR_OK);
    CHECK(c == (struct cte *)arena);
    CHECK_ERR(cap_slot(rootcn, 255, &c), ERR_OK);
    CHECK(c == (struct cte *)arena + 255);
    c = (struct cte *)0x1;
    CHECK_ERR(cap_slot(rootcn, 256, &c), ERR_CAP_SLOT_RANGE);
    CHECK_ERR(cap_slot(rootcn, UINT64_MAX, &c), ERR_CAP_SLOT_RANGE);
    CHECK_ERR(cap_slot(rootcn, 1ull << 32, &c), ERR_CAP_SLOT_RANGE);
    CHECK_ERR(cap_slot(&ram->cap, 0, &c), ERR_CAP_TYPE);
    CHECK_ERR(cap_slot(&ks[5].cap, 0, &c), ERR_CAP_TYPE);   /* empty */
    CHECK_ERR(cap_slot(NULL, 0, &c), ERR_INVALID_ARG);
    CHECK_ERR(cap_slot(rootcn, 0, NULL), ERR_INVALID_ARG);
    CHECK(c == (struct cte *)0x1);   /* untouched on error */
    struct capability bad = *rootcn;
    bad.bits = 40;
    CHECK_ERR(cap_slot(&bad, 0, &c), ERR_CAP_TYPE);
    bad.bits = 0;
    CHECK_ERR(cap_slot(&bad, 0, &c), ERR_CAP_TYPE);
    VALIDATE();
}

static void test_install_root(void)
{
    env_reset(4u << 20, 8);
    struct cte *d = &ks[10];
    struct capability c = { .type = CAP_FRAME, .rights = CAP_RIGHTS_ALL, .base = 0x1000,
                            .bytes = 0x2000, .mapped = 0x55 };
    CHECK_ERR(cap_install_root(NULL, &c), ERR_INVALID_ARG);
    CHECK_ERR(cap_install_root(d, NULL), ERR_INVALID_ARG);
    CHECK_ERR(cap_install_root(&ks[0], &c), ERR_CAP_OCCUPIED);
    c.type = CAP_NULL;
    CHECK_ERR(cap_install_root(d, &c), ERR_CAP_TYPE);
    c.type = CAP_TYPE_COUNT;
    CHECK_ERR(cap_install_root(d, &c), ERR_CAP_TYPE);
    c.type = CAP_DEVFRAME;
    c.rights = 0x10;
    CHECK_ERR(cap_install_root(d, &c), ERR_INVALID_ARG);
    c.rights = CAP_RIGHT_READ | CAP_RIGHT_WRITE;
    c.bytes = 0;
    CHECK_ERR(cap_install_root(d, &c), ERR_RETYPE_SIZE);
    c.bytes = 0x1800;
    CHECK_ERR(cap_install_root(d, &c), ERR_RETYPE_SIZE);
    c.bytes = 0x2000;
    c.base = 0x1800;
    CHECK_ERR(cap_install_root(d, &c), ERR_BAD_ALIGNMENT);
    c.base = UINT64_MAX & ~4095ull;
    CHECK_ERR(cap_install_root(d, &c), ERR_RETYPE_OVERFLOW);
    CHECK(d->cap.type == CAP_NULL);
    c.base = 0xfee00000;
    c.original = 0;
    c.reserved[1] = 7;
    c.relations = CAP_REL_REMOTE;   /* a root carries no relations */
    CHECK_ERR(cap_install_root(d, &c), ERR_OK);
    CHECK_EQ(d->cap.type, CAP_DEVFRAME);
    CHECK_EQ(d->cap.original, 1);
    CHECK_EQ(d->cap.reserved[1], 0);
    CHECK_EQ(d->cap.relations, 0);
    CHECK_EQ(d->cap.mapped, 0);
    CHECK_EQ(d->cap.rights, CAP_RIGHT_READ | CAP_RIGHT_WRITE);
    CHECK(d->parent == NULL && d->first_child == NULL);

    /* VNodes and dispatchers: exactly 4 KiB. */
    struct capability v = { .type = CAP_VNODE_PT, .rights = CAP_RIGHTS_ALL, .base = 0x5000, .bytes = 0 };
    CHECK_ERR(cap_install_root(&ks[11], &v), ERR_RETYPE_SIZE);
    v.bytes = CAP_VNODE_SIZE + 4096;
    CHECK_ERR(cap_install_root(&ks[11], &v), ERR_RETYPE_SIZE);
    v.bytes = CAP_VNODE_SIZE;
    CHECK_ERR(cap_install_root(&ks[11], &v), ERR_OK);

    /* CNode: bits decide the size; small ones aligned to their size. */
    memset(arena + 0x10000, 0, 0x20000);   /* CNode roots below the RAM: zeroed first */
    struct capability cn = { .type = CAP_CNODE, .rights = CAP_RIGHTS_ALL, .bits = 0,
                             .base = ARENA_BASE + 0x10000 };
    CHECK_ERR(cap_install_root(&ks[12], &cn), ERR_RETYPE_SIZE);
    cn.bits = 17;
    CHECK_ERR(cap_install_root(&ks[12], &cn), ERR_RETYPE_SIZE);
    cn.bits = 2;
    cn.base = ARENA_BASE + 0x10080;
    CHECK_ERR(cap_install_root(&ks[12], &cn), ERR_BAD_ALIGNMENT);
    cn.base = ARENA_BASE + 0x10100;
    cn.bytes = 12345;   /* ignored: derived from bits */
    CHECK_ERR(cap_install_root(&ks[12], &cn), ERR_OK);
    CHECK_EQ(ks[12].cap.bytes, 256);
    cn.bits = 7;   /* 8 KiB: page alignment is enough */
    cn.base = ARENA_BASE + 0x21000;
    CHECK_ERR(cap_install_root(&ks[13], &cn), ERR_OK);

    /* IO ports and IRQ vectors: non-empty ranges inside 64 Ki / 256. */
    struct capability io = { .type = CAP_IO, .rights = CAP_RIGHTS_ALL, .base = 0, .bytes = 0 };
    CHECK_ERR(cap_install_root(&ks[14], &io), ERR_PORT_RANGE);
    io.bytes = 0x10001;
    CHECK_ERR(cap_install_root(&ks[14], &io), ERR_PORT_RANGE);
    io.base = 0xffff;
    io.bytes = 2;
    CHECK_ERR(cap_install_root(&ks[14], &io), ERR_PORT_RANGE);
    io.base = UINT64_MAX;
    io.bytes = 2;
    CHECK_ERR(cap_install_root(&ks[14], &io), ERR_PORT_RANGE);
    io.base = 0;
    io.bytes = 0x10000;
    CHECK_ERR(cap_install_root(&ks[14], &io), ERR_OK);
    struct capability irq = { .type = CAP_IRQ, .rights = CAP_RIGHTS_ALL, .base = 32, .bytes = 225 };
    CHECK_ERR(cap_install_root(&ks[15], &irq), ERR_PORT_RANGE);
    irq.bytes = 224;
    CHECK_ERR(cap_install_root(&ks[15], &irq), ERR_OK);
    struct capability kern = { .type = CAP_KERNEL, .rights = CAP_RIGHTS_ALL };
    CHECK_ERR(cap_install_root(&ks[16], &kern), ERR_OK);
    CHECK_EQ(hk.zero_calls + hk.unlinked + hk.destroyed, 0);
    VALIDATE();
}

/* ---- retype ------------------------------------------------------------------------ */

static void test_retype_basic(void)
{
    env_reset(4u << 20, 8);
    struct cap_identity id;

    CHECK_ERR(retype(ram, CAP_FRAME, 8192, 4096, 3, 10), ERR_OK);
    CHECK_EQ(hk.zero_calls, 1);
    CHECK_EQ(hk.zero_base, RAM_PHYS + 4096);
    CHECK_EQ(hk.zero_bytes, 3 * 8192);
    for (int i = 0; i < 3; i++) {
        struct cte *f = S(10 + i);
        CHECK_EQ(f->cap.type, CAP_FRAME);
        CHECK_EQ(f->cap.original, 1);
        CHECK_EQ(f->cap.rights, CAP_RIGHTS_ALL);
        CHECK_EQ(f->cap.base, RAM_PHYS + 4096 + 8192 * i);
        CHECK_EQ(f->cap.bytes, 8192);
        CHECK_EQ(f->cap.mapped, 0);
        CHECK(f->parent == ram);
        cap_identify(f, &id);
        CHECK_EQ(id.type, CAP_FRAME);
        CHECK_EQ(id.base, f->cap.base);
        CHECK_EQ(id.bytes, 8192);
        const uint8_t *mem = h_ptr(f->cap.base);
        bool zero = true;
        for (int j = 0; j < 8192; j++)
            zero &= mem[j] == 0;
        CHECK(zero);
    }
    CHECK(S(9)->cap.type == CAP_NULL && S(13)->cap.type == CAP_NULL);
    CHECK_EQ(cap_descendants(ram), 3);
    VALIDATE();

    /* Every retypable type, rights inherited from a reduced RAM capability. */
    CHECK_ERR(cap_mint(ram, &ks[2], CAP_RIGHT_WRITE | CAP_RIGHT_READ, 0, 0, 0), ERR_OK);
    uint64_t off = 1u << 20;
    static const struct { uint32_t type; uint64_t size, bytes; } t[] = {
        { CAP_RAM, 16384, 16384 },        { CAP_FRAME, 4096, 4096 },
        { CAP_CNODE, 3, 512 },            { CAP_CNODE, 6, 4096 },
        { CAP_CNODE, 9, 32768 },
        { CAP_VNODE_PML4, 0, CAP_VNODE_SIZE },
        { CAP_VNODE_PDPT, CAP_VNODE_SIZE, CAP_VNODE_SIZE },
        { CAP_VNODE_PD, 0, CAP_VNODE_SIZE },
        { CAP_VNODE_PT, 0, CAP_VNODE_SIZE },
        { CAP_DISPATCHER, CAP_DISPATCHER_SIZE, CAP_DISPATCHER_SIZE },
    };
    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        hooks_reset();
        struct cte *d = S(20 + i);
        CHECK_ERR(retype(&ks[2], (enum cap_type)t[i].type, t[i].size, off, 1, 20 + i), ERR_OK);
        /* RAM is not zeroed (it cannot be read as RAM); objects are. */
        CHECK_EQ(hk.zero_calls, t[i].type == CAP_RAM ? 0 : 1);
        CHECK_EQ(hk.zero_bytes, t[i].type == CAP_RAM ? 0 : t[i].bytes);
        CHECK_EQ(d->cap.type, t[i].type);
        CHECK_EQ(d->cap.rights, CAP_RIGHT_WRITE | CAP_RIGHT_READ);
        CHECK_EQ(d->cap.bytes, t[i].bytes);
        CHECK_EQ(d->cap.base, RAM_PHYS + off);
        CHECK_EQ(d->cap.bits, t[i].type == CAP_CNODE ? t[i].size : 0);
        CHECK(d->parent == &ks[2]);
        cap_identify(d, &id);
        CHECK_EQ(id.bytes, t[i].type == CAP_CNODE ? 1ull << t[i].size : t[i].bytes);
        if (t[i].type == CAP_CNODE) {   /* zeroed: every slot empty */
            for (uint64_t j = 0; j < (1ull << t[i].size); j++)
                CHECK_EQ(slot_of(&d->cap, j)->cap.type, CAP_NULL);
        }
        off += t[i].bytes < 4096 ? 4096 : t[i].bytes;
        VALIDATE();
    }
    /* A child RAM can be retyped in turn. */
    CHECK_ERR(retype(S(20), CAP_FRAME, 4096, 12288, 1, 40), ERR_OK);
    CHECK_EQ(S(40)->cap.base, S(20)->cap.base + 12288);
    const uint8_t *fm = h_ptr(S(40)->cap.base);   /* garbage before: zero now */
    bool fz = true;
    for (int j = 0; j < 4096; j++)
        fz &= fm[j] == 0;
    CHECK(fz);
    CHECK_ERR(retype(S(20), CAP_FRAME, 4096, 16384, 1, 41), ERR_RETYPE_OVERFLOW);
    VALIDATE();

    /* Small CNodes: packed at their own alignment. */
    CHECK_ERR(retype(ram, CAP_CNODE, 1, 2u << 20, 32, 100), ERR_OK);
    for (int i = 0; i < 32; i++) {
        CHECK_EQ(S(100 + i)->cap.base, RAM_PHYS + (2u << 20) + 128 * i);
        CHECK_EQ(S(100 + i)->cap.bits, 1);
    }
    CHECK_ERR(retype(ram, CAP_CNODE, 1, (2u << 20) + 4096 + 64, 1, 140), ERR_BAD_ALIGNMENT);
    CHECK_ERR(retype(ram, CAP_CNODE, 2, (2u << 20) + 4096 + 128, 1, 140), ERR_BAD_ALIGNMENT);
    CHECK_ERR(retype(ram, CAP_CNODE, 2, (2u << 20) + 4096 + 256, 1, 140), ERR_OK);
    CHECK_ERR(retype(ram, CAP_CNODE, 7, (2u << 20) + 8192 + 4096, 1, 141), ERR_OK);  /* 8 KiB: page-aligned */
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, (2u << 20) + 4096 + 512, 1, 142), ERR_BAD_ALIGNMENT);
    VALIDATE();
}

/* Every error, and that nothing changed (slots, hooks) after each. */
static void test_retype_errors(void)
{
    env_reset(4u << 20, 8);
    uint64_t R = ram_bytes;
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 1, 200), ERR_OK);   /* something to overlap */
    CHECK_ERR(cap_mint(ram, &ks[2], CAP_RIGHT_READ | CAP_RIGHT_EXEC, 0, 0, 0), ERR_OK);
    struct capability frame_cn = S(200)->cap;   /* not a CNode */
    S(250)->cap.type = CAP_NULL;
    VALIDATE();
    hooks_reset();
    uint64_t h = state_hash();

#define RETYPE_FAILS(want, ...)                                               \
    do {                                                                      \
        CHECK_ERR(cap_retype(__VA_ARGS__), want);                             \
        CHECK_EQ(hk.zero_calls + hk.unlinked + hk.destroyed, 0);              \
        CHECK_EQ(state_hash(), h);                                            \
    } while (0)

    RETYPE_FAILS(ERR_CAP_EMPTY, NULL, CAP_FRAME, 4096, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_CAP_EMPTY, &ks[30], CAP_FRAME, 4096, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_CAP_TYPE, S(200), CAP_FRAME, 4096, 4096, 1, rootcn, 10);      /* src a frame */
    RETYPE_FAILS(ERR_CAP_TYPE, &ks[0], CAP_FRAME, 4096, 4096, 1, rootcn, 10);      /* src a CNode */
    static const uint32_t bad_types[] = { CAP_NULL, CAP_DEVFRAME, CAP_ENDPOINT, CAP_IRQ, CAP_IO,
                                          CAP_KERNEL, CAP_TYPE_COUNT, 77 };
    for (size_t i = 0; i < ARRAY_LEN(bad_types); i++)
        RETYPE_FAILS(ERR_CAP_TYPE, ram, (enum cap_type)bad_types[i], 4096, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_CAP_RIGHTS, &ks[2], CAP_FRAME, 4096, 4096, 1, rootcn, 10);   /* no WRITE */
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_FRAME, 0, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_FRAME, 100, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_RAM, 4096 + 1, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_CNODE, 0, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_CNODE, 17, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_VNODE_PT, 1, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_VNODE_PD, CAP_VNODE_SIZE + 4096, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_SIZE, ram, CAP_DISPATCHER, 8192, 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_INVALID_ARG, ram, CAP_FRAME, 4096, 4096, 0, rootcn, 10);
    RETYPE_FAILS(ERR_BAD_ALIGNMENT, ram, CAP_FRAME, 4096, 4095, 1, rootcn, 10);
    RETYPE_FAILS(ERR_BAD_ALIGNMENT, ram, CAP_FRAME, 4096, 2048, 1, rootcn, 10);
    RETYPE_FAILS(ERR_BAD_ALIGNMENT, ram, CAP_DISPATCHER, 0, 4096 + 8, 1, rootcn, 10);
    RETYPE_FAILS(ERR_BAD_ALIGNMENT, ram, CAP_CNODE, 2, 4096 + 128, 1, rootcn, 10);
    RETYPE_FAILS(ERR_BAD_ALIGNMENT, ram, CAP_FRAME, 4096, UINT64_MAX, 1, rootcn, 10);

    /* Arithmetic: count * bytes and offset + total overflow 64 bits. */
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 4096, 4096, UINT64_MAX, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 4096, 4096, (UINT64_MAX >> 12) + 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 1ull << 63, 0, 2, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_CNODE, 16, 0, 1ull << 42, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 4096, UINT64_MAX & ~4095ull, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 4096, (UINT64_MAX & ~4095ull) - R + 4096, 1,
                 rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, UINT64_MAX & ~4095ull, 4096, 1, rootcn, 10);
    /* Sizes: one past the end, offset at the end, too big by one page. */
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 4096, R, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 4096, R + 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 8192, R - 4096, 1, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_FRAME, 4096, 4096, R / 4096, rootcn, 10);
    RETYPE_FAILS(ERR_RETYPE_OVERFLOW, ram, CAP_RAM, R + 4096, 0, 1, rootcn, 10);

    /* Destination. */
    RETYPE_FAILS(ERR_INVALID_ARG, ram, CAP_FRAME, 4096, 4096, 1, NULL, 10);
    RETYPE_FAILS(ERR_CAP_TYPE, ram, CAP_FRAME, 4096, 4096, 1, &frame_cn, 10);
    RETYPE_FAILS(ERR_CAP_TYPE, ram, CAP_FRAME, 4096, 4096, 1, &S(250)->cap, 10);
    RETYPE_FAILS(ERR_CAP_SLOT_RANGE, ram, CAP_FRAME, 4096, 4096, 1, rootcn, 256);
    RETYPE_FAILS(ERR_CAP_SLOT_RANGE, ram, CAP_FRAME, 4096, 4096, 2, rootcn, 255);
    RETYPE_FAILS(ERR_CAP_SLOT_RANGE, ram, CAP_FRAME, 4096, 4096, 257, rootcn, 0);
    RETYPE_FAILS(ERR_CAP_SLOT_RANGE, ram, CAP_FRAME, 4096, 4096, 2, rootcn, UINT64_MAX);
    RETYPE_FAILS(ERR_CAP_SLOT_RANGE, ram, CAP_FRAME, 4096, 4096, 1, rootcn, UINT64_MAX);
    RETYPE_FAILS(ERR_CAP_OCCUPIED, ram, CAP_FRAME, 4096, 4096, 10, rootcn, 195);   /* 200 in range */
    RETYPE_FAILS(ERR_CAP_OCCUPIED, ram, CAP_FRAME, 4096, 4096, 1, rootcn, 200);
    /* Overlap with the frame at offset 0. */
    RETYPE_FAILS(ERR_OVERLAP, ram, CAP_FRAME, 4096, 0, 1, rootcn, 10);
    RETYPE_FAILS(ERR_OVERLAP, ram, CAP_FRAME, 8192, 0, 1, rootcn, 10);
    RETYPE_FAILS(ERR_OVERLAP, ram, CAP_CNODE, 1, 4096 - 128, 1, rootcn, 10);
    RETYPE_FAILS(ERR_OVERLAP, ram, CAP_RAM, R, 0, 1, rootcn, 10);
#undef RETYPE_FAILS
    VALIDATE();

    /* Exactly fitting: the last page, then the whole rest in one go. */
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, R - 4096, 1, 11), ERR_OK);
    CHECK_EQ(S(11)->cap.base + S(11)->cap.bytes, RAM_PHYS + R);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 4096, R / 4096 - 2, 11), ERR_CAP_SLOT_RANGE);
    CHECK_ERR(retype(ram, CAP_RAM, R - 8192, 4096, 1, 12), ERR_OK);
    CHECK_ERR(retype(S(12), CAP_FRAME, 4096, 0, 256 - 13, 13), ERR_CAP_OCCUPIED);   /* slot 200 */
    CHECK_ERR(retype(S(12), CAP_FRAME, 4096, 0, 200 - 13, 13), ERR_OK);
    CHECK_EQ(cap_descendants(S(12)), 187);
    VALIDATE();
}

static void test_retype_overlap(void)
{
    env_reset(4u << 20, 8);
    /* Frame F at [16K, 24K); each overlapping shape fails, neighbours fit. */
    CHECK_ERR(retype(ram, CAP_FRAME, 8192, 16384, 1, 1), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 16384, 1, 2), ERR_OVERLAP);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 20480, 1, 2), ERR_OVERLAP);
    CHECK_ERR(retype(ram, CAP_FRAME, 8192, 12288, 1, 2), ERR_OVERLAP);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 12288, 3, 2), ERR_OVERLAP);
    CHECK_ERR(retype(ram, CAP_FRAME, 65536, 0, 1, 2), ERR_OVERLAP);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 12288, 1, 2), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 24576, 1, 3), ERR_OK);
    VALIDATE();

    /* Copies of the frame are its children, not the RAM's: still one object. */
    CHECK_ERR(cap_copy(S(1), S(4)), ERR_OK);
    CHECK_ERR(cap_delete(S(1)), ERR_OK);   /* the original: its copy goes too */
    CHECK(S(4)->cap.type == CAP_NULL);
    CHECK_EQ(hk.destroyed, 1);
    CHECK_ERR(retype(ram, CAP_FRAME, 8192, 16384, 1, 1), ERR_OK);   /* reusable */
    CHECK_ERR(cap_revoke(ram), ERR_OK);
    CHECK_EQ(cap_descendants(ram), 0);
    CHECK_ERR(retype(ram, CAP_FRAME, 65536, 0, 1, 1), ERR_OK);
    CHECK_ERR(cap_delete(S(1)), ERR_OK);
    VALIDATE();

    /* Copies of RAM name the same bytes: objects carved through any of them
     * must not overlap objects carved through another, in either order. */
    CHECK_ERR(cap_copy(ram, &ks[2]), ERR_OK);
    CHECK_ERR(cap_copy(ram, &ks[3]), ERR_OK);
    CHECK_ERR(cap_copy(&ks[3], &ks[4]), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 1, 1), ERR_OK);   /* copies are no obstacle */
    CHECK_ERR(retype(&ks[2], CAP_FRAME, 4096, 0, 1, 2), ERR_OVERLAP);
    CHECK_ERR(retype(&ks[4], CAP_FRAME, 4096, 0, 1, 2), ERR_OVERLAP);
    CHECK_ERR(retype(&ks[4], CAP_FRAME, 4096, 4096, 1, 2), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 8192, 0, 1, 3), ERR_OVERLAP);
    CHECK_ERR(retype(&ks[2], CAP_FRAME, 4096, 4096, 1, 3), ERR_OVERLAP);
    CHECK_ERR(retype(&ks[3], CAP_FRAME, 4096, 8192, 1, 3), ERR_OK);
    CHECK_ERR(retype(&ks[2], CAP_FRAME, 12288, 0, 1, 4), ERR_OVERLAP);
    VALIDATE();
    /* Revoking a copy takes what was carved through it. */
    hooks_reset();
    CHECK_ERR(cap_revoke(&ks[3]), ERR_OK);   /* ks[4] and the frames in slots 2 and 3 */
    CHECK_EQ(hk.unlinked, 3);
    CHECK_EQ(hk.destroyed, 2);
    CHECK_ERR(retype(&ks[2], CAP_FRAME, 8192, 4096, 1, 2), ERR_OK);
    VALIDATE();

    /* A RAM child owns its range: the parent cannot hand it out again,
     * the child (and copies of it) can, once. */
    CHECK_ERR(cap_revoke(ram), ERR_OK);
    CHECK_ERR(retype(ram, CAP_RAM, 65536, 65536, 1, 10), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 65536 + 4096 * 15, 1, 11), ERR_OVERLAP);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 65536 * 2, 1, 11), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 65536 - 4096, 1, 12), ERR_OK);
    CHECK_ERR(cap_copy(S(10), S(13)), ERR_OK);
    CHECK_ERR(retype(S(13), CAP_FRAME, 4096, 0, 1, 14), ERR_OK);
    CHECK_ERR(retype(S(10), CAP_FRAME, 4096, 0, 1, 15), ERR_OVERLAP);
    CHECK_ERR(retype(S(10), CAP_RAM, 8192, 8192, 1, 15), ERR_OK);
    CHECK_ERR(retype(S(15), CAP_FRAME, 4096, 4096, 1, 16), ERR_OK);
    CHECK_ERR(retype(S(13), CAP_FRAME, 4096, 12288, 1, 17), ERR_OVERLAP);   /* inside S(15) */
    CHECK_ERR(retype(S(10), CAP_FRAME, 4096, 8192, 1, 17), ERR_OVERLAP);
    VALIDATE();
    /* Endpoints minted from a dispatcher are not memory. */
    CHECK_ERR(retype(ram, CAP_DISPATCHER, 0, 65536 * 4, 1, 20), ERR_OK);
    CHECK_ERR(cap_mint(S(20), S(21), CAP_RIGHTS_ALL, 5, 0, 0), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 65536 * 4, 1, 22), ERR_OVERLAP);
    CHECK_ERR(cap_delete(S(20)), ERR_OK);
    CHECK(S(21)->cap.type == CAP_NULL);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 65536 * 4, 1, 22), ERR_OK);
    VALIDATE();
}

/* ---- copy, mint, move, identify ------------------------------------------------------- */

static void test_copy(void)
{
    env_reset(4u << 20, 8);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 1, 1), ERR_OK);
    S(1)->cap.mapped = 0x1234;   /* the kernel mapped it */
    CHECK_ERR(cap_copy(S(1), S(2)), ERR_OK);
    CHECK_EQ(S(2)->cap.type, CAP_FRAME);
    CHECK_EQ(S(2)->cap.original, 0);
    CHECK_EQ(S(2)->cap.mapped, 0);
    CHECK_EQ(S(2)->cap.base, S(1)->cap.base);
    CHECK_EQ(S(2)->cap.rights, CAP_RIGHTS_ALL);
    CHECK(S(2)->parent == S(1));
    CHECK_EQ(S(1)->cap.mapped, 0x1234);
    S(1)->cap.mapped = 0;
    CHECK_ERR(cap_copy(S(2), S(3)), ERR_OK);
    CHECK(S(3)->parent == S(2));
    CHECK_ERR(cap_copy(S(1), S(4)), ERR_OK);
    CHECK_EQ(cap_descendants(S(1)), 3);
    CHECK_EQ(cap_descendants(S(2)), 1);
    VALIDATE();
    uint64_t h = state_hash();
    CHECK_ERR(cap_copy(S(1), S(1)), ERR_CAP_SAME_SLOT);
    CHECK_ERR(cap_copy(S(1), S(2)), ERR_CAP_OCCUPIED);
    CHECK_ERR(cap_copy(S(9), S(10)), ERR_CAP_EMPTY);
    CHECK_ERR(cap_copy(S(9), S(9)), ERR_CAP_EMPTY);
    CHECK_ERR(cap_copy(NULL, S(10)), ERR_CAP_EMPTY);
    CHECK_ERR(cap_copy(S(1), NULL), ERR_INVALID_ARG);
    CHECK_EQ(state_hash(), h);
    /* Every kind copies, badges and ranges included. */
    CHECK_ERR(retype(ram, CAP_DISPATCHER, 0, 4096, 1, 20), ERR_OK);
    CHECK_ERR(cap_mint(S(20), S(21), CAP_RIGHT_WRITE, 42, 0, 0), ERR_OK);
    CHECK_ERR(cap_copy(S(21), S(22)), ERR_OK);
    CHECK_EQ(S(22)->cap.badge, 42);
    CHECK_EQ(S(22)->cap.type, CAP_ENDPOINT);
    CHECK_EQ(S(22)->cap.rights, CAP_RIGHT_WRITE);
    CHECK_ERR(cap_copy(&ks[0], S(23)), ERR_OK);   /* the root CNode, into itself */
    CHECK_ERR(cap_copy(S(20), S(24)), ERR_OK);
    CHECK_EQ(S(24)->cap.type, CAP_DISPATCHER);
    VALIDATE();
}

static void test_mint(void)
{
    env_reset(4u << 20, 8);
    struct capability io = { .type = CAP_IO, .rights = CAP_RIGHTS_ALL, .base = 0x100, .bytes = 0x100 };
    struct capability irq = { .type = CAP_IRQ, .rights = CAP_RIGHTS_ALL, .base = 32, .bytes = 16 };
    struct capability kern = { .type = CAP_KERNEL, .rights = CAP_RIGHTS_ALL };
    CHECK_ERR(cap_install_root(&ks[2], &io), ERR_OK);
    CHECK_ERR(cap_install_root(&ks[3], &irq), ERR_OK);
    CHECK_ERR(cap_install_root(&ks[4], &kern), ERR_OK);
    CHECK_ERR(retype(ram, CAP_DISPATCHER, 0, 0, 1, 1), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 4096, 1, 2), ERR_OK);
    VALIDATE();
    uint64_t h = state_hash();
    hooks_reset();

    /* Errors first, each leaving everything as it was. */
    CHECK_ERR(cap_mint(S(1), S(1), CAP_RIGHTS_ALL, 0, 0, 0), ERR_CAP_SAME_SLOT);
    CHECK_ERR(cap_mint(S(1), S(2), CAP_RIGHTS_ALL, 0, 0, 0), ERR_CAP_OCCUPIED);
    CHECK_ERR(cap_mint(S(9), S(10), CAP_RIGHTS_ALL, 0, 0, 0), ERR_CAP_EMPTY);
    CHECK_ERR(cap_mint(NULL, S(10), CAP_RIGHTS_ALL, 0, 0, 0), ERR_CAP_EMPTY);
    CHECK_ERR(cap_mint(S(1), NULL, CAP_RIGHTS_ALL, 0, 0, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(S(1), S(10), 0x10, 0, 0, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(S(1), S(10), 0xffffffff, 0, 0, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(S(1), S(10), CAP_RIGHTS_ALL, 1, 4, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(S(1), S(10), CAP_RIGHTS_ALL, 1, 0, 4), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(S(2), S(10), CAP_RIGHT_READ, 1, 0, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(S(2), S(10), CAP_RIGHT_READ, 0, 4096, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(S(2), S(10), CAP_RIGHT_READ, 0, 0, 1), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 9, 0, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 0, 0x100, 0), ERR_INVALID_ARG);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 0, 0xff, 1), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 0, 0x100, 0x101), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 0, 0x1ff, 2), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 0, 0x200, 1), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 0, 0x180, UINT64_MAX), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[2], S(10), CAP_RIGHTS_ALL, 0, UINT64_MAX, 2), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[3], S(10), CAP_RIGHTS_ALL, 0, 31, 1), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[3], S(10), CAP_RIGHTS_ALL, 0, 40, 9), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(&ks[4], S(10), CAP_RIGHTS_ALL, 1, 0, 0), ERR_INVALID_ARG);
    CHECK_EQ(state_hash(), h);
    CHECK_EQ(hk.zero_calls + hk.unlinked + hk.destroyed, 0);

    /* Dispatcher -> endpoint, rights reduced, badge set. */
    CHECK_ERR(cap_mint(S(1), S(10), CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, 0, 0, 0), ERR_OK);
    CHECK_EQ(S(10)->cap.type, CAP_ENDPOINT);
    CHECK_EQ(S(10)->cap.badge, 0);
    CHECK_EQ(S(10)->cap.base, S(1)->cap.base);
    CHECK_EQ(S(10)->cap.rights, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT);
    CHECK_EQ(S(10)->cap.original, 0);
    CHECK(S(10)->parent == S(1));
    CHECK_ERR(cap_mint(S(1), S(11), CAP_RIGHT_WRITE, 0xbadbad, 0, 0), ERR_OK);
    struct cap_identity id;
    cap_identify(S(11), &id);
    CHECK_EQ(id.type, CAP_ENDPOINT);
    CHECK_EQ(id.badge, 0xbadbad);
    CHECK_EQ(id.rights, CAP_RIGHT_WRITE);
    CHECK_EQ(id.bytes, 0);
    /* Unbadged endpoint -> badged; badged stays badged. */
    CHECK_ERR(cap_mint(S(10), S(12), CAP_RIGHTS_ALL, 7, 0, 0), ERR_OK);
    CHECK_EQ(S(12)->cap.badge, 7);
    CHECK_EQ(S(12)->cap.rights, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT);   /* never more than src */
    CHECK(S(12)->parent == S(10));
    CHECK_ERR(cap_mint(S(12), S(13), CAP_RIGHTS_ALL, 8, 0, 0), ERR_CAP_RIGHTS);
    CHECK_ERR(cap_mint(S(12), S(13), CAP_RIGHTS_ALL, 7, 0, 0), ERR_CAP_RIGHTS);
    CHECK_ERR(cap_mint(S(12), S(13), CAP_RIGHT_WRITE, 0, 0, 0), ERR_OK);
    CHECK_EQ(S(13)->cap.badge, 7);
    CHECK_EQ(S(13)->cap.rights, CAP_RIGHT_WRITE);
    CHECK_ERR(cap_mint(S(10), S(14), CAP_RIGHT_WRITE, 0, 0, 0), ERR_OK);   /* still unbadged */
    CHECK_EQ(S(14)->cap.badge, 0);
    CHECK_ERR(cap_mint(S(13), S(15), 0, 0, 0, 0), ERR_OK);   /* no rights at all: allowed */
    CHECK_EQ(S(15)->cap.rights, 0);
    VALIDATE();

    /* IO and IRQ: narrowing, edges included; count 0 keeps the range. */
    CHECK_ERR(cap_mint(&ks[2], S(20), CAP_RIGHT_READ, 0, 0x100, 0x100), ERR_OK);
    CHECK_EQ(S(20)->cap.base, 0x100);
    CHECK_EQ(S(20)->cap.bytes, 0x100);
    CHECK_ERR(cap_mint(&ks[2], S(21), CAP_RIGHTS_ALL, 0, 0x1ff, 1), ERR_OK);
    CHECK_ERR(cap_mint(&ks[2], S(22), CAP_RIGHTS_ALL, 0, 0, 0), ERR_OK);
    CHECK_EQ(S(22)->cap.base, 0x100);
    CHECK_EQ(S(22)->cap.bytes, 0x100);
    CHECK_ERR(cap_mint(S(22), S(23), CAP_RIGHTS_ALL, 0, 0x3f8, 8), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(S(22), S(23), CAP_RIGHTS_ALL, 0, 0x1f8, 8), ERR_OK);
    CHECK_ERR(cap_mint(S(23), S(24), CAP_RIGHTS_ALL, 0, 0x1f8, 9), ERR_PORT_RANGE);
    CHECK_ERR(cap_mint(S(23), S(24), CAP_RIGHTS_ALL, 0, 0x1fc, 4), ERR_OK);
    cap_identify(S(24), &id);
    CHECK_EQ(id.type, CAP_IO);
    CHECK_EQ(id.base, 0x1fc);
    CHECK_EQ(id.bytes, 4);
    CHECK_ERR(cap_mint(&ks[3], S(25), CAP_RIGHTS_ALL, 0, 47, 1), ERR_OK);
    CHECK_EQ(S(25)->cap.base, 47);
    CHECK_ERR(cap_mint(&ks[3], S(26), CAP_RIGHTS_ALL, 0, 32, 16), ERR_OK);
    VALIDATE();

    /* Everything else: rights reduction only. */
    S(2)->cap.mapped = 0x9000;
    CHECK_ERR(cap_mint(S(2), S(30), CAP_RIGHT_READ | CAP_RIGHT_EXEC, 0, 0, 0), ERR_OK);
    CHECK_EQ(S(30)->cap.rights, CAP_RIGHT_READ | CAP_RIGHT_EXEC);
    CHECK_EQ(S(30)->cap.mapped, 0);
    CHECK_EQ(S(30)->cap.base, S(2)->cap.base);
    S(2)->cap.mapped = 0;
    CHECK_ERR(cap_mint(S(30), S(31), CAP_RIGHTS_ALL, 0, 0, 0), ERR_OK);
    CHECK_EQ(S(31)->cap.rights, CAP_RIGHT_READ | CAP_RIGHT_EXEC);
    CHECK_ERR(cap_mint(&ks[0], S(32), CAP_RIGHT_READ, 0, 0, 0), ERR_OK);   /* CNode */
    CHECK_EQ(S(32)->cap.type, CAP_CNODE);
    CHECK_EQ(S(32)->cap.bits, 8);
    CHECK_ERR(cap_mint(&ks[4], S(33), CAP_RIGHT_READ, 0, 0, 0), ERR_OK);   /* Kernel */
    CHECK_EQ(S(33)->cap.type, CAP_KERNEL);
    CHECK_ERR(cap_mint(ram, S(34), CAP_RIGHT_READ, 0, 0, 0), ERR_OK);       /* RAM */
    CHECK_ERR(retype(S(34), CAP_FRAME, 4096, 65536, 1, 35), ERR_CAP_RIGHTS);
    VALIDATE();

    /* Deleting the dispatcher takes every endpoint with it. */
    hooks_reset();
    CHECK_ERR(cap_delete(S(1)), ERR_OK);
    CHECK_EQ(hk.unlinked, 7);
    CHECK_EQ(hk.destroyed, 1);
    CHECK_EQ(hk.log[0].type, CAP_DISPATCHER);
    for (int i = 10; i <= 15; i++)
        CHECK_EQ(S(i)->cap.type, CAP_NULL);
    VALIDATE();
}

static void test_move(void)
{
    env_reset(4u << 20, 8);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 3, 1), ERR_OK);   /* siblings 1, 2, 3 */
    CHECK_ERR(cap_copy(S(2), S(10)), ERR_OK);
    CHECK_ERR(cap_copy(S(2), S(11)), ERR_OK);
    CHECK_ERR(cap_copy(S(10), S(12)), ERR_OK);
    S(2)->cap.mapped = 0x777;
    uint64_t h;
    VALIDATE();
    h = state_hash();
    CHECK_ERR(cap_move(S(2), S(2)), ERR_CAP_SAME_SLOT);
    CHECK_ERR(cap_move(S(2), S(3)), ERR_CAP_OCCUPIED);
    CHECK_ERR(cap_move(S(50), S(51)), ERR_CAP_EMPTY);
    CHECK_ERR(cap_move(NULL, S(51)), ERR_CAP_EMPTY);
    CHECK_ERR(cap_move(S(2), NULL), ERR_INVALID_ARG);
    CHECK_EQ(state_hash(), h);

    /* The middle sibling, with children, to another slot. */
    struct capability before = S(2)->cap;
    CHECK_ERR(cap_move(S(2), S(40)), ERR_OK);
    CHECK_EQ(S(2)->cap.type, CAP_NULL);
    CHECK(memcmp(&S(40)->cap, &before, sizeof before) == 0);   /* mapped kept */
    CHECK(S(10)->parent == S(40) && S(11)->parent == S(40));
    CHECK(S(40)->parent == ram);
    CHECK_EQ(cap_descendants(S(40)), 3);
    CHECK_EQ(cap_descendants(ram), 6);
    VALIDATE();
    S(40)->cap.mapped = 0;
    /* First child, last child, a leaf, a root. */
    CHECK_ERR(cap_move(S(3), S(41)), ERR_OK);
    CHECK_ERR(cap_move(S(1), S(42)), ERR_OK);
    CHECK_ERR(cap_move(S(12), S(43)), ERR_OK);
    CHECK(S(43)->parent == S(10));
    CHECK_ERR(cap_move(ram, &ks[5]), ERR_OK);
    ram = &ks[5];
    CHECK(S(41)->parent == ram);
    VALIDATE();
    CHECK_ERR(cap_move(ram, &ks[1]), ERR_OK);
    ram = &ks[1];
    VALIDATE();

    /* A CNode capability into a slot of that CNode, and back out. */
    CHECK_ERR(retype(ram, CAP_CNODE, 4, 65536, 1, 60), ERR_OK);
    struct capability k = S(60)->cap;
    CHECK_ERR(cap_copy(S(60), S(61)), ERR_OK);
    CHECK_ERR(cap_move(S(60), slot_of(&k, 3)), ERR_OK);
    CHECK(S(61)->parent == slot_of(&k, 3));
    VALIDATE();
    CHECK_ERR(cap_move(slot_of(&k, 3), slot_of(&k, 15)), ERR_OK);
    VALIDATE();
    /* The root CNode's own capability into itself. */
    struct cte *self = S(255);
    CHECK_ERR(cap_move(&ks[0], self), ERR_OK);
    rootcn = &self->cap;   /* same memory, the capability now lives in it */
    CHECK_EQ(ks[0].cap.type, CAP_NULL);
    CHECK(S(255) == self);
    extra_moved(&ks[0], self);
    VALIDATE();
    CHECK_ERR(cap_copy(self, S(254)), ERR_OK);
    CHECK_ERR(cap_move(self, &ks[0]), ERR_OK);
    extra_moved(self, &ks[0]);
    rootcn = &ks[0].cap;
    CHECK(S(254)->parent == &ks[0]);
    VALIDATE();
    /* Moved capabilities still delete properly. */
    hooks_reset();
    CHECK_ERR(cap_delete(S(40)), ERR_OK);
    CHECK_EQ(hk.unlinked, 4);
    CHECK_EQ(hk.destroyed, 1);
    CHECK_ERR(cap_delete(slot_of(&k, 15)), ERR_OK);
    CHECK_EQ(S(61)->cap.type, CAP_NULL);
    VALIDATE();
}

static void test_identify(void)
{
    env_reset(4u << 20, 8);
    struct cap_identity id;
    memset(&id, 0x5a, sizeof id);
    cap_identify(S(7), &id);
    CHECK_EQ(id.type, CAP_NULL);
    CHECK_EQ(id.rights, 0);
    CHECK_EQ(id.base, 0);
    CHECK_EQ(id.bytes, 0);
    CHECK_EQ(id.badge, 0);
    memset(&id, 0x5a, sizeof id);
    cap_identify(NULL, &id);
    CHECK_EQ(id.type, CAP_NULL);
    CHECK_EQ(id.badge, 0);
    cap_identify(S(7), NULL);   /* no crash */
    cap_identify(ram, &id);
    CHECK_EQ(id.type, CAP_RAM);
    CHECK_EQ(id.rights, CAP_RIGHTS_ALL);
    CHECK_EQ(id.base, RAM_PHYS);
    CHECK_EQ(id.bytes, ram_bytes);
    CHECK_EQ(id.badge, 0);
    cap_identify(&ks[0], &id);
    CHECK_EQ(id.type, CAP_CNODE);
    CHECK_EQ(id.bytes, 256);
    CHECK_EQ(id.base, ROOT_CN_PHYS);
    CHECK_ERR(retype(ram, CAP_FRAME, 8192, 0, 1, 1), ERR_OK);
    S(1)->cap.mapped = 0xabc000;   /* mapped is not a badge */
    cap_identify(S(1), &id);
    CHECK_EQ(id.badge, 0);
    CHECK_EQ(id.bytes, 8192);
    S(1)->cap.mapped = 0;
    CHECK_ERR(retype(ram, CAP_VNODE_PML4, 0, 8192, 1, 2), ERR_OK);
    cap_identify(S(2), &id);
    CHECK_EQ(id.type, CAP_VNODE_PML4);
    CHECK_EQ(id.bytes, CAP_VNODE_SIZE);
    CHECK_STREQ(cap_type_name(id.type), "PML4");
}

/* ---- delete and revoke --------------------------------------------------------------- */

static void test_delete_basic(void)
{
    env_reset(4u << 20, 8);
    CHECK_ERR(cap_delete(S(5)), ERR_CAP_EMPTY);
    CHECK_ERR(cap_revoke(S(5)), ERR_CAP_EMPTY);
    CHECK_ERR(cap_delete(NULL), ERR_CAP_EMPTY);
    CHECK_ERR(cap_revoke(NULL), ERR_CAP_EMPTY);
    CHECK_EQ(hk.unlinked + hk.destroyed, 0);

    /* F with copies C1 (with child C3) and C2. */
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 1, 1), ERR_OK);
    CHECK_ERR(cap_copy(S(1), S(2)), ERR_OK);
    CHECK_ERR(cap_copy(S(1), S(3)), ERR_OK);
    CHECK_ERR(cap_copy(S(2), S(4)), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(S(2)), ERR_OK);   /* a copy: it and its child */
    CHECK_EQ(hk.unlinked, 2);
    CHECK_EQ(hk.destroyed, 0);
    CHECK(S(2)->cap.type == CAP_NULL && S(4)->cap.type == CAP_NULL && S(3)->cap.type == CAP_FRAME);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_revoke(S(1)), ERR_OK);   /* F stays */
    CHECK_EQ(hk.unlinked, 1);
    CHECK_EQ(hk.destroyed, 0);
    CHECK_EQ(S(1)->cap.type, CAP_FRAME);
    CHECK_ERR(cap_revoke(S(1)), ERR_OK);   /* nothing to do */
    CHECK_EQ(hk.unlinked, 1);
    CHECK_ERR(cap_copy(S(1), S(2)), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(S(1)), ERR_OK);   /* the original: object destroyed once */
    CHECK_EQ(hk.unlinked, 2);
    CHECK_EQ(hk.destroyed, 1);
    CHECK_EQ(hk.log[0].type, CAP_FRAME);
    CHECK_EQ(hk.log[0].base, RAM_PHYS);
    CHECK_EQ(S(2)->cap.type, CAP_NULL);
    VALIDATE();

    /* Deleting a root RAM takes everything carved from it. */
    CHECK_ERR(retype(ram, CAP_RAM, 65536, 0, 2, 10), ERR_OK);
    CHECK_ERR(retype(S(10), CAP_FRAME, 4096, 0, 16, 20), ERR_OK);
    CHECK_ERR(retype(S(11), CAP_DISPATCHER, 0, 0, 1, 40), ERR_OK);
    CHECK_ERR(cap_mint(S(40), S(41), CAP_RIGHTS_ALL, 3, 0, 0), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(ram), ERR_OK);
    CHECK_EQ(hk.unlinked, 1 + 2 + 16 + 2);
    CHECK_EQ(hk.destroyed, 1 + 2 + 16 + 1);
    CHECK_EQ(hk.log[hk.nlog - 1].type, CAP_RAM);   /* the root last */
    CHECK_EQ(hk.log[hk.nlog - 1].base, RAM_PHYS);
    VALIDATE();
    for (uint64_t i = 0; i < 256; i++)
        CHECK_EQ(S(i)->cap.type, CAP_NULL);
}

/* 100000-deep chains of copies (and mints, and nested RAM) on a small stack. */
static void test_deep(void)
{
    const uint64_t N = 100000;
    env_reset(4u << 20, 8);
    nk_used = N + 16;
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 1, 1), ERR_OK);
    struct cte *prev = S(1);
    for (uint64_t i = 0; i < N; i++) {
        struct cte *d = &ks[16 + i];
        if (i % 3 == 2)
            CHECK_ERR(cap_mint(prev, d, CAP_RIGHTS_ALL, 0, 0, 0), ERR_OK);
        else
            CHECK_ERR(cap_copy(prev, d), ERR_OK);
        prev = d;
    }
    CHECK_EQ(cap_descendants(S(1)), N);
    CHECK_EQ(cap_descendants(&ks[16 + N / 2]), N - N / 2 - 1);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_revoke(&ks[16 + N / 2]), ERR_OK);
    CHECK_EQ(hk.unlinked, N - N / 2 - 1);
    CHECK_EQ(hk.destroyed, 0);
    CHECK_EQ(cap_descendants(S(1)), N / 2 + 1);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_delete(S(1)), ERR_OK);
    CHECK_EQ(hk.unlinked, N / 2 + 2);
    CHECK_EQ(hk.destroyed, 1);
    VALIDATE();

    /* Retype through the deepest of a chain of RAM copies, then delete. */
    prev = ram;
    for (uint64_t i = 0; i < N; i++) {
        CHECK_ERR(cap_copy(prev, &ks[16 + i]), ERR_OK);
        prev = &ks[16 + i];
    }
    CHECK_ERR(retype(prev, CAP_FRAME, 4096, 0, 1, 1), ERR_OK);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 1, 2), ERR_OVERLAP);
    CHECK_ERR(retype(&ks[20], CAP_FRAME, 4096, 4096, 1, 2), ERR_OK);
    CHECK_ERR(retype(prev, CAP_FRAME, 4096, 4096, 1, 3), ERR_OVERLAP);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_revoke(ram), ERR_OK);
    CHECK_EQ(hk.unlinked, N + 2);
    CHECK_EQ(hk.destroyed, 2);
    VALIDATE();

    /* 20000 nested RAM originals, each the whole of its parent. */
    const uint64_t M = 20000;
    prev = ram;
    for (uint64_t i = 0; i < M; i++) {
        CHECK_ERR(cap_retype(prev, CAP_RAM, 65536, 0, 1, &ks[0].cap, 0), ERR_OK);
        CHECK_ERR(cap_move(S(0), &ks[16 + i]), ERR_OK);
        prev = &ks[16 + i];
    }
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 0, 1, 1), ERR_OVERLAP);
    CHECK_ERR(retype(&ks[16 + M / 2], CAP_FRAME, 4096, 0, 1, 1), ERR_OVERLAP);
    CHECK_ERR(retype(prev, CAP_FRAME, 4096, 0, 1, 1), ERR_OK);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_delete(&ks[16]), ERR_OK);
    CHECK_EQ(hk.unlinked, M + 1);
    CHECK_EQ(hk.destroyed, M + 1);
    CHECK_EQ(hk.log[0].type, CAP_FRAME);
    CHECK_EQ(hk.log[M].type, CAP_RAM);
    bool order = true;   /* deepest first */
    for (uint64_t i = 1; i < M; i++)
        order &= hk.log[i].type == CAP_RAM;
    CHECK(order);
    VALIDATE();
    nk_used = 64;
}

/* Wide: 60000 children of one capability, and a bushy tree. */
static void test_wide(void)
{
    const uint64_t N = 60000;
    env_reset(4u << 20, 8);
    nk_used = N + 16;
    CHECK_ERR(retype(ram, CAP_DISPATCHER, 0, 0, 1, 1), ERR_OK);
    for (uint64_t i = 0; i < N; i++)
        CHECK_ERR(cap_mint(S(1), &ks[16 + i], CAP_RIGHT_WRITE, i, 0, 0), ERR_OK);
    CHECK_EQ(cap_descendants(S(1)), N);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_delete(&ks[16 + N / 3]), ERR_OK);   /* one in the middle */
    CHECK_EQ(hk.unlinked, 1);
    CHECK_ERR(cap_revoke(S(1)), ERR_OK);
    CHECK_EQ(hk.unlinked, N);
    CHECK_EQ(hk.destroyed, 0);
    CHECK_EQ(cap_descendants(S(1)), 0);
    VALIDATE();
    /* A tree where node i's parent is node (i-1)/4. */
    struct cte *node[4096];
    node[0] = S(1);
    for (uint64_t i = 1; i < 4096; i++) {
        node[i] = &ks[16 + i];
        CHECK_ERR(cap_copy(node[(i - 1) / 4], node[i]), ERR_OK);
    }
    CHECK_EQ(cap_descendants(S(1)), 4095);
    uint64_t want = 0;
    for (uint64_t i = 2; i < 4096; i++) {
        uint64_t j = i;
        while (j > 1)
            j = (j - 1) / 4;
        want += j == 1;
    }
    CHECK_EQ(cap_descendants(node[1]), want);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_delete(node[2]), ERR_OK);
    uint64_t gone = hk.unlinked;
    CHECK_EQ(cap_descendants(S(1)), 4095 - gone);
    CHECK_ERR(cap_delete(S(1)), ERR_OK);
    CHECK_EQ(hk.unlinked, 4096);
    CHECK_EQ(hk.destroyed, 1);
    VALIDATE();
    nk_used = 64;
}

/* ---- CNode teardown -------------------------------------------------------------------- */

/* Originals as (type, base, bytes), sorted: to compare before and after. */
struct okey { uint64_t type, base, bytes; };
static int okey_cmp(const void *a, const void *b)
{
    const struct okey *x = a, *y = b;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    if (x->base != y->base)
        return x->base < y->base ? -1 : 1;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? -1 : 1;
    return 0;
}

/* Count destroyed objects of `type` in the log. */
static uint64_t destroyed_of(uint32_t type)
{
    uint64_t n = 0;
    for (size_t i = 0; i < hk.nlog; i++)
        n += hk.log[i].type == type;
    return n;
}

/* No object destroyed twice (same type and base). */
static void check_destroyed_once(const char *file, int line)
{
    /* Sorted by (type, base, bytes), equal neighbours are one object twice
     * (RAM excepted: a RAM child may name exactly its parent's range). */
    struct okey *l = malloc((hk.nlog + 1) * sizeof *l);
    for (size_t i = 0; i < hk.nlog; i++)
        l[i] = (struct okey){ hk.log[i].type, hk.log[i].base, hk.log[i].bytes };
    qsort(l, hk.nlog, sizeof *l, okey_cmp);
    bool dup = false;
    for (size_t i = 1; i < hk.nlog; i++)
        dup |= okey_cmp(&l[i], &l[i - 1]) == 0 && l[i].type != CAP_RAM;
    check_count++;
    if (dup)
        check_fail(file, line, "an object was destroyed twice");
    free(l);
}
#define CHECK_DESTROYED_ONCE() check_destroyed_once(__FILE__, __LINE__)

static void test_cnode_delete(void)
{
    env_reset(8u << 20, 8);
    /* K (16 slots) holds: a frame original, two copies of it, a copy of K,
     * a dispatcher with an endpoint, and K2 (original) holding K3 (original)
     * holding a frame; K3 also holds a copy of K2 and one of itself. */
    CHECK_ERR(retype(ram, CAP_CNODE, 4, 0, 1, 1), ERR_OK);
    struct capability K = S(1)->cap;
    CHECK_ERR(cap_retype(ram, CAP_FRAME, 4096, 4096, 1, &K, 0), ERR_OK);
    CHECK_ERR(cap_copy(slot_of(&K, 0), slot_of(&K, 1)), ERR_OK);
    CHECK_ERR(cap_copy(slot_of(&K, 0), S(2)), ERR_OK);   /* outside K: goes too */
    CHECK_ERR(cap_copy(S(1), slot_of(&K, 2)), ERR_OK);
    CHECK_ERR(cap_retype(ram, CAP_DISPATCHER, 0, 8192, 1, &K, 3), ERR_OK);
    CHECK_ERR(cap_mint(slot_of(&K, 3), S(3), CAP_RIGHT_WRITE, 1, 0, 0), ERR_OK);
    CHECK_ERR(cap_retype(ram, CAP_CNODE, 2, 12288, 1, &K, 4), ERR_OK);
    struct capability K2 = slot_of(&K, 4)->cap;
    CHECK_ERR(cap_retype(ram, CAP_CNODE, 1, 12288 + 256, 1, &K2, 0), ERR_OK);
    struct capability K3 = slot_of(&K2, 0)->cap;
    CHECK_ERR(cap_retype(ram, CAP_FRAME, 4096, 16384, 1, &K3, 0), ERR_OK);
    CHECK_ERR(cap_copy(slot_of(&K, 4), slot_of(&K3, 1)), ERR_OK);
    CHECK_ERR(cap_copy(slot_of(&K2, 0), slot_of(&K2, 1)), ERR_OK);
    VALIDATE();
    uint64_t before = live_caps();
    hooks_reset();
    CHECK_ERR(cap_delete(S(1)), ERR_OK);
    VALIDATE();
    CHECK_EQ(hk.unlinked, before - live_caps());
    CHECK_EQ(hk.unlinked, 12);
    CHECK_EQ(hk.destroyed, 6);   /* K, frame, dispatcher, K2, K3, frame */
    CHECK_EQ(destroyed_of(CAP_CNODE), 3);
    CHECK_EQ(destroyed_of(CAP_FRAME), 2);
    CHECK_EQ(destroyed_of(CAP_DISPATCHER), 1);
    CHECK_DESTROYED_ONCE();
    CHECK(S(2)->cap.type == CAP_NULL && S(3)->cap.type == CAP_NULL);
    CHECK_EQ(cap_descendants(ram), 0);

    /* A CNode holding its own original (and a copy of it), deleted from
     * inside, and revoked from the RAM. */
    CHECK_ERR(retype(ram, CAP_CNODE, 3, 0, 1, 1), ERR_OK);
    K = S(1)->cap;
    CHECK_ERR(cap_move(S(1), slot_of(&K, 5)), ERR_OK);
    CHECK_ERR(cap_copy(slot_of(&K, 5), slot_of(&K, 2)), ERR_OK);
    CHECK_ERR(cap_copy(slot_of(&K, 5), S(7)), ERR_OK);
    CHECK_ERR(cap_retype(ram, CAP_FRAME, 4096, 4096, 2, &K, 6), ERR_OK);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_delete(slot_of(&K, 5)), ERR_OK);
    CHECK_EQ(hk.unlinked, 5);
    CHECK_EQ(hk.destroyed, 3);
    CHECK_EQ(hk.log[hk.nlog - 1].type, CAP_CNODE);   /* after its slots */
    CHECK_EQ(S(7)->cap.type, CAP_NULL);
    VALIDATE();

    /* The RAM a CNode came from, kept inside that CNode: revoking... */
    CHECK_ERR(retype(ram, CAP_RAM, 1u << 20, 1u << 20, 1, 1), ERR_OK);
    CHECK_ERR(retype(S(1), CAP_CNODE, 2, 0, 1, 2), ERR_OK);
    K = S(2)->cap;
    CHECK_ERR(cap_move(S(1), slot_of(&K, 0)), ERR_OK);   /* the RAM inside K */
    CHECK_ERR(cap_copy(S(2), S(3)), ERR_OK);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_revoke(slot_of(&K, 0)), ERR_OK);   /* kills K, and with it the RAM itself */
    CHECK_EQ(hk.unlinked, 3);
    CHECK_EQ(hk.destroyed, 2);
    CHECK(S(2)->cap.type == CAP_NULL && S(3)->cap.type == CAP_NULL);
    VALIDATE();
    CHECK_EQ(cap_descendants(ram), 0);
}

/* Two CNodes holding each other's originals; the kernel holds copies. */
static void test_cnode_cycle(void)
{
    env_reset(8u << 20, 8);
    CHECK_ERR(retype(ram, CAP_CNODE, 2, 0, 2, 1), ERR_OK);
    struct capability A = S(1)->cap, B = S(2)->cap;
    CHECK_ERR(cap_copy(S(1), &ks[2]), ERR_OK);
    CHECK_ERR(cap_copy(S(2), &ks[3]), ERR_OK);
    CHECK_ERR(cap_move(S(1), slot_of(&B, 1)), ERR_OK);   /* A's original in B */
    CHECK_ERR(cap_move(S(2), slot_of(&A, 3)), ERR_OK);   /* B's original in A */
    CHECK_ERR(cap_retype(ram, CAP_FRAME, 4096, 4096, 1, &A, 0), ERR_OK);
    CHECK_ERR(cap_retype(ram, CAP_FRAME, 4096, 8192, 1, &B, 0), ERR_OK);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_delete(slot_of(&ks[3].cap, 1)), ERR_OK);   /* A's original, through B */
    CHECK_EQ(hk.destroyed, 4);
    CHECK_EQ(destroyed_of(CAP_CNODE), 2);
    CHECK_EQ(hk.unlinked, 6);
    CHECK(ks[2].cap.type == CAP_NULL && ks[3].cap.type == CAP_NULL);
    CHECK_DESTROYED_ONCE();
    VALIDATE();

    /* Unreachable cycle: only revoking the RAM reclaims it. */
    CHECK_ERR(retype(ram, CAP_CNODE, 2, 0, 2, 1), ERR_OK);
    A = S(1)->cap;
    B = S(2)->cap;
    CHECK_ERR(cap_move(S(1), slot_of(&B, 1)), ERR_OK);
    CHECK_ERR(cap_move(S(2), slot_of(&A, 3)), ERR_OK);
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_revoke(ram), ERR_OK);
    CHECK_EQ(hk.destroyed, 2);
    CHECK_EQ(hk.unlinked, 2);
    VALIDATE();
}

/* Chains of N CNodes: each holding the next's original (then the previous'). */
static void test_cnode_chains(void)
{
    const uint64_t N = 8000;
    for (int dir = 0; dir < 2; dir++) {
        env_reset(16u << 20, 8);
        CHECK_ERR(retype(ram, CAP_CNODE, 13, 0, 1, 1), ERR_OK);   /* holder, 8192 slots */
        struct capability H = S(1)->cap;
        CHECK_ERR(cap_retype(ram, CAP_CNODE, 1, 1u << 20, N, &H, 0), ERR_OK);
        struct capability *k = malloc(N * sizeof *k);
        for (uint64_t i = 0; i < N; i++)
            k[i] = slot_of(&H, i)->cap;
        for (uint64_t i = 0; i + 1 < N; i++) {
            uint64_t from = dir == 0 ? i + 1 : i, to = dir == 0 ? i : i + 1;
            CHECK_ERR(cap_move(slot_of(&H, from), slot_of(&k[to], 0)), ERR_OK);
            /* Slot 1: a copy of itself. */
            CHECK_ERR(cap_copy(slot_of(&k[to], 0), slot_of(&k[from], 1)), ERR_OK);
        }
        VALIDATE();
        uint64_t before = live_caps();
        hooks_reset();
        CHECK_ERR(cap_delete(slot_of(&H, dir == 0 ? 0 : N - 1)), ERR_OK);
        VALIDATE();
        CHECK_EQ(hk.destroyed, N);
        CHECK_EQ(hk.unlinked, before - live_caps());
        CHECK_EQ(hk.unlinked, 2 * N - 1);
        CHECK_DESTROYED_ONCE();
        free(k);
    }
}

/* Random nesting: originals of N CNodes scattered over each other's slots. */
static void test_cnode_random_nesting(void)
{
    const uint64_t N = 3000;
    srand(12345);
    for (int round = 0; round < 4; round++) {
        env_reset(16u << 20, 8);
        nk_used = 64;
        CHECK_ERR(retype(ram, CAP_CNODE, 12, 0, 1, 1), ERR_OK);   /* holder */
        struct capability H = S(1)->cap;
        CHECK_ERR(cap_retype(ram, CAP_CNODE, 2, 1u << 20, N, &H, 0), ERR_OK);
        struct capability *k = malloc(N * sizeof *k);
        for (uint64_t i = 0; i < N; i++)
            k[i] = slot_of(&H, i)->cap;
        /* Frames and copies in some slots, then move originals around. */
        CHECK_ERR(cap_retype(ram, CAP_FRAME, 4096, 2u << 20, 100, &k[0], 0), ERR_CAP_SLOT_RANGE);
        for (uint64_t i = 0; i < N; i += 7)
            CHECK_ERR(cap_retype(ram, CAP_FRAME, 4096, (2u << 20) + 4096 * i, 1, &k[i], 3), ERR_OK);
        for (uint64_t i = 0; i < N; i++) {
            uint64_t j = (uint64_t)rand() % N;
            struct cte *dst = NULL;
            for (int s = 0; s < 4 && !dst; s++)
                if (slot_of(&k[j], s)->cap.type == CAP_NULL)
                    dst = slot_of(&k[j], s);
            if (dst && rand() % 4 != 0)
                CHECK_ERR(cap_move(slot_of(&H, i), dst), ERR_OK);
            j = (uint64_t)rand() % N;
            for (int s = 0; s < 4; s++)
                if (slot_of(&k[j], s)->cap.type == CAP_NULL) {
                    struct cte *src = slot_of(&H, i)->cap.type ? slot_of(&H, i) : dst;
                    CHECK_ERR(cap_copy(src, slot_of(&k[j], s)), ERR_OK);
                    break;
                }
        }
        VALIDATE();
        uint64_t before = live_caps();
        hooks_reset();
        switch (round) {
        case 0:   /* everything, through the RAM */
            CHECK_ERR(cap_revoke(ram), ERR_OK);
            CHECK_EQ(hk.destroyed, N + 1 + (N + 6) / 7);
            break;
        case 1:   /* the holder: what it holds goes, the rest stays */
            CHECK_ERR(cap_delete(S(1)), ERR_OK);
            break;
        default:  /* some of the CNodes, one by one */
            for (uint64_t i = 0; i < N; i += 97) {
                struct cte *c = slot_of(&H, i);
                if (c->cap.type != CAP_NULL)
                    CHECK_ERR(cap_delete(c), ERR_OK);
                if (!VALIDATE())
                    break;
            }
            break;
        }
        VALIDATE();
        CHECK_EQ(hk.unlinked, before - live_caps());
        CHECK_DESTROYED_ONCE();
        /* Whatever is left, the RAM takes back. */
        CHECK_ERR(cap_revoke(ram), ERR_OK);
        VALIDATE();
        CHECK_EQ(live_caps(), 2);
        CHECK_DESTROYED_ONCE();
        free(k);
    }
}

/* ---- randomized ------------------------------------------------------------------------- */

/* ---- across cores ---------------------------------------------------------------- */

#define FOREIGN_PHYS (RAM_PHYS + (2ull << 20))   /* "another core's RAM": ram's top, left unused */

/* A FOREIGN RAM root (another core's RAM re-created here): it cannot be
 * carved without its owner's agreement, and agreed carving goes through an
 * envelope; removing it destroys nothing, removing what was carved does. */
static void test_foreign(void)
{
    env_reset(4u << 20, 8);
    ram->cap.bytes = 2u << 20;   /* ram below, "foreign" RAM above */
    struct capability f = { .type = CAP_RAM, .rights = CAP_RIGHTS_ALL, .base = FOREIGN_PHYS, .bytes = 256u << 10 };
    CHECK_ERR(cap_install_foreign(&ks[2], &f), ERR_OK);
    struct cte *F = &ks[2];
    struct cap_identity id;
    cap_identify(F, &id);
    CHECK_EQ(id.flags, CAP_ID_ORIGINAL | CAP_ID_FOREIGN);
    CHECK_ERR(cap_copy(F, S(1)), ERR_OK);
    cap_identify(S(1), &id);
    CHECK_EQ(id.flags, 0);   /* a copy carries no relations */
    VALIDATE();
    uint64_t h = state_hash();
    hooks_reset();
    CHECK_ERR(retype(F, CAP_FRAME, 4096, 0, 1, 10), ERR_CAP_REMOTE);
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 0, 1, 10), ERR_CAP_REMOTE);
    CHECK_ERR(retype(S(1), CAP_FRAME, 4095, 0, 1, 10), ERR_RETYPE_SIZE);   /* other errors first */
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 0, 1, 100000), ERR_CAP_SLOT_RANGE);
    CHECK_EQ(state_hash(), h);
    CHECK_EQ(hk.zero_calls, 0);

    /* What the monitor checks before asking the owner: whole pages. */
    uint64_t base = 0, bytes = 0;
    struct cte *orig = NULL;
    CHECK_ERR(cap_retype_check(S(1), CAP_CNODE, 1, 4096 + 128, 3, rootcn, 10, &base, &bytes, &orig), ERR_OK);
    CHECK_EQ(base, FOREIGN_PHYS + 4096);
    CHECK_EQ(bytes, 4096);
    CHECK(orig == F);
    CHECK_ERR(cap_retype_check(S(1), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &base, &bytes, &orig), ERR_OK);
    CHECK_EQ(base, FOREIGN_PHYS + 8192);
    CHECK_EQ(bytes, 16384);
    CHECK_EQ(state_hash(), h);

    /* Agreed: the envelope (S(9)) takes the whole pages, the objects are its children. */
    struct retype_agreement agreed = { F, FOREIGN_PHYS + 8192, 16384 };
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &agreed, S(10)), ERR_CAP_SAME_SLOT);
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &agreed, S(1)), ERR_CAP_OCCUPIED);
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &agreed, NULL), ERR_INVALID_ARG);
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 8192, 8192, 2, rootcn, 10, NULL, S(9)), ERR_INVALID_ARG);
    /* The agreement is for F's pages [8 KiB, 24 KiB): other pages of F, or
     * another foreign RAM moved into the slot meanwhile (the review's swap),
     * are refused, whatever the request's other arguments. */
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 8192, 0, 2, rootcn, 10, &agreed, S(9)), ERR_CAP_REMOTE);
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 8192, 8192, 1, rootcn, 10, &agreed, S(9)), ERR_CAP_REMOTE);
    struct capability g = { .type = CAP_RAM, .rights = CAP_RIGHTS_ALL, .base = FOREIGN_PHYS + (256u << 10),
                            .bytes = 256u << 10 };
    CHECK_ERR(cap_install_foreign(&ks[3], &g), ERR_OK);
    CHECK_ERR(cap_copy(&ks[3], S(2)), ERR_OK);
    uint64_t h2 = state_hash();
    struct cte *origG = NULL;
    CHECK_ERR(cap_retype_check(S(2), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &base, &bytes, &origG), ERR_OK);
    CHECK(origG == &ks[3]);
    struct retype_agreement g_pages_as_f = { F, base, bytes };
    CHECK_ERR(cap_retype_agreed(S(2), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &agreed, S(9)), ERR_CAP_REMOTE);
    CHECK_ERR(cap_retype_agreed(S(2), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &g_pages_as_f, S(9)), ERR_CAP_REMOTE);
    CHECK_EQ(state_hash(), h2);
    CHECK_EQ(hk.zero_calls, 0);
    CHECK_ERR(cap_delete(S(2)), ERR_OK);
    CHECK_ERR(cap_delete(&ks[3]), ERR_OK);
    CHECK_EQ(state_hash(), h);
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 8192, 8192, 2, rootcn, 10, &agreed, S(9)), ERR_OK);
    CHECK_EQ(hk.zero_calls, 1);
    CHECK_EQ(hk.zero_base, FOREIGN_PHYS + 8192);
    CHECK_EQ(hk.zero_bytes, 16384);
    CHECK(S(9)->parent == S(1) && S(9)->cap.type == CAP_RAM && S(9)->cap.original);
    CHECK_EQ(S(9)->cap.base, FOREIGN_PHYS + 8192);
    CHECK_EQ(S(9)->cap.bytes, 16384);
    CHECK(S(10)->parent == S(9) && S(11)->parent == S(9));
    CHECK(S(10)->cap.original && S(10)->cap.bytes == 8192 && S(11)->cap.base == FOREIGN_PHYS + 16384);
    /* The envelope's objects are this core's: from it, and from them, no agreement. */
    struct retype_agreement third = { F, FOREIGN_PHYS + 12288, 4096 };
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 4096, 12288, 1, rootcn, 20, &third, S(19)), ERR_OVERLAP);
    struct retype_agreement second = { F, FOREIGN_PHYS + 4096, 4096 };
    CHECK_ERR(cap_retype_agreed(S(1), CAP_CNODE, 1, 4096 + 128, 3, rootcn, 20, &second, S(19)), ERR_OK);
    CHECK_EQ(S(19)->cap.bytes, 4096);
    CHECK(S(20)->cap.type == CAP_CNODE && S(20)->cap.base == FOREIGN_PHYS + 4096 + 128 && S(22)->parent == S(19));
    VALIDATE();

    /* Watching the envelope: its monitor hears when its objects are gone. */
    CHECK_ERR(cap_relate(S(9), CAP_REL_WATCH, 0), ERR_OK);
    CHECK_ERR(cap_relate(S(9), CAP_REL_FOREIGN, 0), ERR_INVALID_ARG);
    hooks_reset();
    CHECK_ERR(cap_delete(S(10)), ERR_OK);
    CHECK_EQ(hk.notices, 0);
    CHECK_EQ(hk.destroyed, 1);   /* a frame of this core's */
    CHECK_ERR(cap_delete(S(11)), ERR_OK);
    CHECK_EQ(hk.notices, 1);
    CHECK(hk.last_notice == S(9));
    CHECK_ERR(cap_move(S(9), S(30)), ERR_CAP_REMOTE);   /* watched: stays where its monitor looks */

    /* The FOREIGN root goes: everything carved from it dies here, it does not. */
    hooks_reset();
    CHECK_ERR(cap_delete(F), ERR_OK);
    CHECK_EQ(hk.unlinked, 1 + 1 + 1 + 1 + 3);   /* F, its copy, two envelopes, three CNodes */
    CHECK_EQ(hk.destroyed, 2 + 3);   /* envelopes and CNodes: not F */
    for (size_t i = 0; i < hk.nlog; i++)
        CHECK(!(hk.log[i].type == CAP_RAM && hk.log[i].base == FOREIGN_PHYS));
    VALIDATE();

    /* Notify and Frame roots re-created from a description. */
    struct capability fr = { .type = CAP_FRAME, .rights = CAP_RIGHT_READ, .base = FOREIGN_PHYS, .bytes = 4096 };
    CHECK_ERR(cap_install_foreign(&ks[3], &fr), ERR_OK);
    CHECK_ERR(cap_install_foreign(&ks[3], &fr), ERR_CAP_OCCUPIED);
    fr.bytes = 100;
    CHECK_ERR(cap_install_foreign(&ks[4], &fr), ERR_RETYPE_SIZE);
    hooks_reset();
    CHECK_ERR(cap_delete(&ks[3]), ERR_OK);
    CHECK_EQ(hk.destroyed, 0);
    VALIDATE();
}

/* Anchors: a monitor's copy of an original standing for the copies on other
 * cores. No delete or revoke that would remove one goes ahead. */
/* Deleting an original whose object has copies elsewhere (cap_hand_over):
 * the anchor takes its place, the object lives (its range stays taken)
 * until the anchor goes. */
static void test_hand_over(void)
{
    env_reset(4u << 20, 8);
    CHECK_ERR(retype(ram, CAP_RAM, 65536, 0, 1, 1), ERR_OK);       /* R */
    CHECK_ERR(retype(S(1), CAP_RAM, 16384, 0, 1, 2), ERR_OK);      /* Q, in R */
    CHECK_ERR(retype(S(2), CAP_FRAME, 4096, 0, 1, 3), ERR_OK);     /* F, carved from Q */
    CHECK_ERR(cap_copy(S(2), S(4)), ERR_OK);                       /* a local copy of Q */
    struct cte *none;
    CHECK_ERR(cap_hand_over(S(2), &none), ERR_NOT_FOUND);          /* no anchor: a plain delete does */
    CHECK_ERR(cap_anchor(S(2), S(5)), ERR_OK);                     /* Q's anchor */
    CHECK_ERR(cap_anchor(S(3), S(6)), ERR_OK);                     /* F's: copies elsewhere too */
    CHECK_ERR(cap_hand_over(S(4), &none), ERR_INVALID_ARG);        /* a copy */
    CHECK_ERR(cap_hand_over(S(5), &none), ERR_INVALID_ARG);        /* the anchor itself */
    uint64_t h = state_hash();
    struct cte *blocking = NULL;
    CHECK_ERR(cap_hand_over(S(2), &blocking), ERR_CAP_REMOTE);     /* F's anchor is in the way */
    CHECK(blocking == S(6));
    CHECK_EQ(state_hash(), h);
    CHECK_ERR(cap_relate(S(6), 0, CAP_REL_REMOTE | CAP_REL_WATCH), ERR_OK);   /* F's copies revoked */
    CHECK_ERR(cap_delete(S(6)), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_hand_over(S(2), &blocking), ERR_OK);
    CHECK(S(2)->cap.type == CAP_NULL && S(4)->cap.type == CAP_NULL && S(3)->cap.type == CAP_NULL);
    CHECK_EQ(hk.destroyed, 1);                                     /* F; Q lives in its anchor */
    CHECK(S(5)->parent == S(1) && S(5)->cap.original && S(1)->first_child == S(5));
    struct cap_identity id;
    cap_identify(S(5), &id);
    CHECK_EQ(id.flags, CAP_ID_ORIGINAL | CAP_ID_REMOTE | CAP_ID_WATCH);
    VALIDATE();
    /* Q's range is still taken in R; the rest is not. */
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 0, 1, 7), ERR_OVERLAP);
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 16384, 1, 7), ERR_OK);
    CHECK_ERR(cap_delete(S(7)), ERR_OK);
    /* The last copy elsewhere went: the monitor drops the anchor, Q dies. */
    CHECK_ERR(cap_relate(S(5), 0, CAP_REL_REMOTE | CAP_REL_WATCH), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(S(5)), ERR_OK);
    CHECK_EQ(hk.destroyed, 1);
    CHECK_DESTROYED_ONCE();
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 0, 1, 7), ERR_OK);
    VALIDATE();
}

/* Ownership moves here (monitor/capops.c, "moving ownership"): the FOREIGN
 * root becomes an original, retyped without anyone's agreement, anchored;
 * what was carved from copies before (agreed envelopes) still counts. */
static void test_take_over(void)
{
    env_reset(4u << 20, 8);
    ram->cap.bytes = 2u << 20;
    struct capability f = { .type = CAP_RAM, .rights = CAP_RIGHTS_ALL, .base = FOREIGN_PHYS, .bytes = 64u << 10 };
    CHECK_ERR(cap_install_foreign(&ks[2], &f), ERR_OK);
    struct cte *F = &ks[2];
    CHECK_ERR(cap_copy(F, S(1)), ERR_OK);
    /* Before: an agreed retype of pages 0..1 (an envelope under the copy). */
    struct retype_agreement agreed = { F, FOREIGN_PHYS, 8192 };
    CHECK_ERR(cap_retype_agreed(S(1), CAP_FRAME, 4096, 0, 2, rootcn, 10, &agreed, S(20)), ERR_OK);
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 16384, 1, 12), ERR_CAP_REMOTE);
    CHECK_ERR(cap_take_over(S(1), false), ERR_INVALID_ARG);        /* a copy */
    CHECK_ERR(cap_take_over(F, true), ERR_INVALID_ARG);            /* FOREIGN already */
    CHECK_ERR(cap_take_over(ram, false), ERR_INVALID_ARG);         /* not a FOREIGN root */
    struct cte *none;
    CHECK_ERR(cap_anchor(S(1), S(5)), ERR_CAP_FOREIGN);
    (void)none;
    CHECK_ERR(cap_take_over(F, false), ERR_OK);
    struct cap_identity id;
    cap_identify(F, &id);
    CHECK_EQ(id.flags, CAP_ID_ORIGINAL | CAP_ID_HAS_CHILDREN);
    CHECK_ERR(cap_anchor(S(1), S(5)), ERR_OK);                     /* the new owner's anchor */
    CHECK_ERR(cap_take_over(F, true), ERR_CAP_REMOTE);             /* no undo under an anchor */
    /* The new owner's kernel checks the range itself now. */
    CHECK_ERR(retype(S(5), CAP_RAM, 8192, 8192, 1, 13), ERR_OK);   /* a holder's range reserved again */
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 0, 1, 12), ERR_OVERLAP);     /* the old envelope */
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 8192, 1, 12), ERR_OVERLAP);  /* the reservation */
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 16384, 1, 12), ERR_OK);      /* no agreement needed */
    VALIDATE();
    /* Undo (a move that failed after the take-over): FOREIGN again. */
    CHECK_ERR(cap_relate(S(5), 0, CAP_REL_REMOTE | CAP_REL_WATCH), ERR_OK);
    CHECK_ERR(cap_revoke(S(5)), ERR_OK);
    CHECK_ERR(cap_delete(S(5)), ERR_OK);
    CHECK_ERR(cap_delete(S(12)), ERR_OK);
    CHECK_ERR(cap_take_over(F, true), ERR_OK);
    cap_identify(F, &id);
    CHECK_EQ(id.flags, CAP_ID_ORIGINAL | CAP_ID_FOREIGN | CAP_ID_HAS_CHILDREN);
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 16384, 1, 12), ERR_CAP_REMOTE);
    /* Only memory no kernel object lives in. */
    CHECK_ERR(retype(ram, CAP_VNODE_PT, 0, 0, 1, 14), ERR_OK);
    CHECK_ERR(cap_take_over(S(14), false), ERR_CAP_TYPE);
    VALIDATE();
}

/* A holder's revoke takes its copy's siblings on its core: every other
 * child of the root with what descends from it, but anchors and siblings
 * with an anchor below them. */
static void test_revoke_siblings(void)
{
    env_reset(4u << 20, 8);
    ram->cap.bytes = 2u << 20;
    struct capability f = { .type = CAP_RAM, .rights = CAP_RIGHTS_ALL, .base = FOREIGN_PHYS, .bytes = 64u << 10 };
    CHECK_ERR(cap_install_foreign(&ks[2], &f), ERR_OK);
    struct cte *F = &ks[2];
    CHECK_ERR(cap_copy(F, S(1)), ERR_OK);                          /* the revoked copy */
    CHECK_ERR(cap_copy(F, S(2)), ERR_OK);                          /* a sibling, which carved */
    CHECK_ERR(cap_copy(F, S(3)), ERR_OK);                          /* a sibling that gave what it carved */
    CHECK_ERR(cap_copy(S(2), S(4)), ERR_OK);                       /* a copy of a sibling */
    struct retype_agreement a2 = { F, FOREIGN_PHYS, 4096 }, a3 = { F, FOREIGN_PHYS + 4096, 4096 };
    CHECK_ERR(cap_retype_agreed(S(2), CAP_FRAME, 4096, 0, 1, rootcn, 10, &a2, S(20)), ERR_OK);
    CHECK_ERR(cap_retype_agreed(S(3), CAP_FRAME, 4096, 4096, 1, rootcn, 11, &a3, S(21)), ERR_OK);
    CHECK_ERR(cap_anchor(S(11), S(12)), ERR_OK);                   /* S(11) has copies elsewhere */
    uint64_t kept = 0;
    CHECK_ERR(cap_revoke_siblings(F, &kept), ERR_INVALID_ARG);     /* not a copy */
    CHECK_ERR(cap_revoke_siblings(S(50), &kept), ERR_CAP_EMPTY);
    hooks_reset();
    CHECK_ERR(cap_revoke_siblings(S(1), &kept), ERR_OK);
    CHECK_EQ(kept, 1);
    CHECK(S(1)->cap.type == CAP_RAM && S(1)->parent == F);
    CHECK(S(2)->cap.type == CAP_NULL && S(4)->cap.type == CAP_NULL && S(10)->cap.type == CAP_NULL &&
          S(20)->cap.type == CAP_NULL);
    CHECK(S(3)->cap.type == CAP_RAM && S(11)->cap.type == CAP_FRAME && S(12)->cap.type == CAP_FRAME);
    CHECK_EQ(hk.destroyed, 2);                                     /* S(10)'s Frame, its envelope */
    VALIDATE();
    CHECK_ERR(cap_revoke_siblings(S(1), &kept), ERR_OK);           /* again: nothing more */
    CHECK_EQ(kept, 1);
    VALIDATE();
}

/* A holder core's revoke takes the owner core's copies (monitor/capops.c,
 * owner_copies_go): the monitor names only its anchor; the original it
 * hangs from, in a domain's CSpace, is handed over with its copies and
 * what was carved from it, the anchor taking its place. */
static void test_hand_over_anchor(void)
{
    env_reset(4u << 20, 8);
    CHECK_ERR(retype(ram, CAP_RAM, 65536, 0, 1, 1), ERR_OK);       /* R */
    CHECK_ERR(retype(S(1), CAP_RAM, 16384, 0, 1, 2), ERR_OK);      /* Q, in R: the original */
    CHECK_ERR(cap_copy(S(2), S(3)), ERR_OK);                       /* a second copy of Q */
    CHECK_ERR(retype(S(3), CAP_FRAME, 4096, 0, 1, 4), ERR_OK);     /* F, carved from that copy */
    struct cte *blocking = NULL;
    CHECK_ERR(cap_hand_over_anchor(S(2), &blocking), ERR_INVALID_ARG);   /* not an anchor */
    CHECK_ERR(cap_hand_over_anchor(S(50), &blocking), ERR_CAP_EMPTY);
    CHECK_ERR(cap_anchor(S(3), S(5)), ERR_OK);                     /* Q's anchor, under the original */
    CHECK_ERR(retype(S(5), CAP_RAM, 4096, 8192, 1, 6), ERR_OK);    /* a range reserved for a holder */
    CHECK_ERR(cap_anchor(S(4), S(7)), ERR_OK);                     /* F has copies elsewhere too */
    uint64_t h = state_hash();
    CHECK_ERR(cap_hand_over_anchor(S(5), &blocking), ERR_CAP_REMOTE);   /* F's anchor is in the way */
    CHECK(blocking == S(7));
    CHECK_EQ(state_hash(), h);
    CHECK_ERR(cap_relate(S(7), 0, CAP_REL_REMOTE | CAP_REL_WATCH), ERR_OK);   /* F's copies revoked */
    CHECK_ERR(cap_delete(S(7)), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_hand_over_anchor(S(5), &blocking), ERR_OK);
    CHECK(S(2)->cap.type == CAP_NULL && S(3)->cap.type == CAP_NULL && S(4)->cap.type == CAP_NULL);
    CHECK_EQ(hk.destroyed, 1);                                     /* F; Q lives in its anchor */
    CHECK(S(5)->parent == S(1) && S(5)->cap.original && S(6)->parent == S(5));
    VALIDATE();
    /* Nothing more to hand over: the anchor is the original now. */
    CHECK_ERR(cap_hand_over_anchor(S(5), &blocking), ERR_INVALID_ARG);
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 0, 1, 8), ERR_OVERLAP);   /* Q's range stays taken in R */
    /* A CNode carved from the original: refused, as cap_hand_over. */
    CHECK_ERR(retype(S(1), CAP_RAM, 16384, 32768, 1, 9), ERR_OK);
    CHECK_ERR(retype(S(9), CAP_CNODE, 6, 0, 1, 10), ERR_OK);     /* 4 KiB of slots */
    CHECK_ERR(cap_anchor(S(9), S(11)), ERR_OK);
    h = state_hash();
    CHECK_ERR(cap_hand_over_anchor(S(11), &blocking), ERR_NOT_PERMITTED);
    CHECK_EQ(state_hash(), h);
    VALIDATE();
}

static void test_anchor(void)
{
    env_reset(4u << 20, 8);
    CHECK_ERR(retype(ram, CAP_RAM, 65536, 0, 1, 1), ERR_OK);       /* R */
    CHECK_ERR(retype(S(1), CAP_FRAME, 4096, 0, 2, 2), ERR_OK);     /* F, G */
    CHECK_ERR(cap_copy(S(2), S(4)), ERR_OK);                       /* C: a copy of F */
    CHECK_ERR(cap_mint(S(4), S(5), CAP_RIGHT_READ, 0, 0, 0), ERR_OK);
    CHECK_ERR(cap_anchor(S(5), S(6)), ERR_OK);                     /* from a mint of a copy... */
    CHECK(S(6)->parent == S(2));                                   /* ...a child of the original */
    CHECK_EQ(S(6)->cap.rights, S(2)->cap.rights);
    struct cap_identity id;
    cap_identify(S(6), &id);
    CHECK_EQ(id.flags, CAP_ID_REMOTE | CAP_ID_WATCH);
    CHECK_ERR(cap_anchor(S(4), S(7)), ERR_DUPLICATE);
    CHECK_ERR(cap_anchor(S(4), S(4)), ERR_CAP_SAME_SLOT);
    CHECK_ERR(cap_anchor(S(50), S(7)), ERR_CAP_EMPTY);
    CHECK(cap_anchor_of(S(2)) == S(6) && cap_anchor_of(S(3)) == NULL && cap_anchor_of(NULL) == NULL);
    CHECK(cap_original_of(S(5)) == S(2) && cap_original_of(S(2)) == S(2));
    CHECK(cap_find_remote(ram, false) == S(6) && cap_find_remote(S(4), false) == NULL);
    CHECK(cap_find_remote(S(6), true) == S(6) && cap_find_remote(S(6), false) == NULL);
    VALIDATE();

    uint64_t h = state_hash();
    hooks_reset();
    CHECK_ERR(cap_delete(S(2)), ERR_CAP_REMOTE);
    CHECK_ERR(cap_revoke(S(2)), ERR_CAP_REMOTE);
    CHECK_ERR(cap_revoke(S(1)), ERR_CAP_REMOTE);
    CHECK_ERR(cap_delete(S(1)), ERR_CAP_REMOTE);
    CHECK_ERR(cap_revoke(ram), ERR_CAP_REMOTE);
    CHECK_ERR(cap_delete(S(6)), ERR_CAP_REMOTE);
    CHECK_ERR(cap_move(S(6), S(8)), ERR_CAP_REMOTE);
    CHECK_EQ(state_hash(), h);
    CHECK_EQ(hk.unlinked + hk.destroyed, 0);
    /* What does not reach the anchor goes on. */
    CHECK_ERR(cap_revoke(S(4)), ERR_OK);   /* C's mint */
    CHECK_ERR(cap_delete(S(3)), ERR_OK);   /* G */
    CHECK_ERR(cap_copy(S(6), S(8)), ERR_OK);
    cap_identify(S(8), &id);
    CHECK_EQ(id.flags, 0);
    CHECK_ERR(cap_delete(S(8)), ERR_OK);
    VALIDATE();
    /* Its monitor has revoked the copies elsewhere: it clears the mark. */
    CHECK_ERR(cap_relate(S(6), 0, CAP_REL_REMOTE | CAP_REL_WATCH), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(S(1)), ERR_OK);
    CHECK_EQ(hk.destroyed, 2);   /* F, R */
    VALIDATE();
    CHECK_EQ(cap_descendants(ram), 0);

    /* A FOREIGN original is anchored by its owner, not here. */
    struct capability f = { .type = CAP_FRAME, .rights = CAP_RIGHTS_ALL, .base = FOREIGN_PHYS, .bytes = 4096 };
    CHECK_ERR(cap_install_foreign(&ks[2], &f), ERR_OK);
    CHECK_ERR(cap_copy(&ks[2], S(1)), ERR_OK);
    CHECK_ERR(cap_anchor(S(1), S(2)), ERR_CAP_FOREIGN);
    CHECK_ERR(cap_relate(S(1), CAP_REL_WATCH, 0), ERR_OK);
    CHECK_ERR(cap_relate(S(40), CAP_REL_WATCH, 0), ERR_CAP_EMPTY);
}

/* An anchor inside a CNode that dies cannot be refused: it is adopted. */
static void test_adoption(void)
{
    env_reset(4u << 20, 8);
    /* K (a CNode) holds F's original and a copy; the anchor A sits outside K. */
    CHECK_ERR(retype(ram, CAP_CNODE, 4, 0, 1, 1), ERR_OK);
    struct capability K = S(1)->cap;
    CHECK_ERR(cap_retype(ram, CAP_FRAME, 8192, 8192, 1, &K, 3), ERR_OK);
    CHECK_ERR(cap_copy(slot_of(&K, 3), slot_of(&K, 4)), ERR_OK);
    CHECK_ERR(cap_anchor(slot_of(&K, 4), S(6)), ERR_OK);
    CHECK_ERR(retype(S(6), CAP_RAM, 4096, 0, 1, 7), ERR_CAP_TYPE);   /* (a frame) */
    VALIDATE();
    hooks_reset();
    CHECK_ERR(cap_delete(S(1)), ERR_OK);   /* K dies, and F's original with it */
    CHECK_EQ(hk.destroyed, 1);             /* K only: F lives on in the anchor */
    CHECK_EQ(hk.log[0].type, CAP_CNODE);
    CHECK(S(6)->parent == ram && S(6)->cap.original);
    CHECK(S(6)->cap.relations == (CAP_REL_REMOTE | CAP_REL_WATCH | CAP_REL_ORPHAN));
    CHECK(hk.notices >= 1 && hk.last_notice == S(6));
    struct cap_identity id;
    cap_identify(S(6), &id);
    CHECK(id.flags & CAP_ID_ORPHAN);
    VALIDATE();
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 12288, 1, 8), ERR_OVERLAP);   /* F's range stays taken */
    CHECK_ERR(cap_revoke(ram), ERR_CAP_REMOTE);
    /* Its monitor revoked the copies elsewhere: the object goes. */
    CHECK_ERR(cap_relate(S(6), 0, CAP_REL_REMOTE | CAP_REL_ORPHAN), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(S(6)), ERR_OK);
    CHECK_EQ(hk.destroyed, 1);
    CHECK_EQ(hk.log[0].type, CAP_FRAME);
    CHECK_EQ(hk.log[0].base, RAM_PHYS + 8192);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 12288, 1, 8), ERR_OK);
    CHECK_ERR(cap_delete(S(8)), ERR_OK);
    VALIDATE();

    /* K holds RAM R; F (carved from R, outside K) has the anchor: R dies
     * with K, F's original goes with R, the anchor takes F over under ram. */
    CHECK_ERR(retype(ram, CAP_CNODE, 2, 0, 1, 1), ERR_OK);
    K = S(1)->cap;
    CHECK_ERR(cap_retype(ram, CAP_RAM, 65536, 65536, 1, &K, 0), ERR_OK);
    CHECK_ERR(retype(slot_of(&K, 0), CAP_FRAME, 4096, 4096, 1, 2), ERR_OK);
    CHECK_ERR(cap_copy(S(2), S(3)), ERR_OK);
    CHECK_ERR(cap_anchor(S(3), S(4)), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(S(1)), ERR_OK);
    CHECK_EQ(hk.destroyed, 2);   /* K, R */
    CHECK(destroyed_of(CAP_FRAME) == 0);
    CHECK(S(2)->cap.type == CAP_NULL && S(3)->cap.type == CAP_NULL);
    CHECK(S(4)->parent == ram && S(4)->cap.original && (S(4)->cap.relations & CAP_REL_ORPHAN));
    VALIDATE();
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 65536 + 4096, 1, 5), ERR_OVERLAP);
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 65536, 1, 5), ERR_OK);   /* the rest of R is free */

    /* The survivor keeps the original: the anchor stays a copy. K holds a
     * copy C of F (F outside K) and the anchor hangs from... F, not C: C
     * dies, nothing else moves. */
    CHECK_ERR(retype(ram, CAP_FRAME, 4096, 1u << 20, 1, 10), ERR_OK);
    CHECK_ERR(retype(ram, CAP_CNODE, 2, 4096 * 200, 1, 11), ERR_OK);
    K = S(11)->cap;
    CHECK_ERR(cap_copy(S(10), slot_of(&K, 1)), ERR_OK);
    CHECK_ERR(cap_anchor(slot_of(&K, 1), S(12)), ERR_OK);
    hooks_reset();
    CHECK_ERR(cap_delete(S(11)), ERR_OK);
    CHECK_EQ(hk.notices, 0);
    CHECK(S(12)->parent == S(10) && !S(12)->cap.original && !(S(12)->cap.relations & CAP_REL_ORPHAN));
    VALIDATE();
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static size_t originals(struct okey **out, size_t *cap)
{
    size_t n = 0;
    for (size_t i = 0; i < vs.ncaps; i++) {
        const struct capability *k = &vs.caps[i]->cap;
        if (!k->original)
            continue;
        if (n == *cap) {
            *cap = *cap ? 2 * *cap : 1024;
            *out = realloc(*out, *cap * sizeof **out);
        }
        (*out)[n++] = (struct okey){ k->type, k->base, k->bytes };
    }
    qsort(*out, n, sizeof **out, okey_cmp);
    return n;
}

/* Any slot: mostly a live capability, else a random slot of ks or a live CNode. */
static struct cte *pick_slot(bool want_live)
{
    if (want_live && vs.ncaps && rnd_below(10) < 8)
        return vs.caps[rnd_below(vs.ncaps)];
    if (rnd_below(4) == 0)
        return &ks[rnd_below(nk_used)];
    /* a slot of a random live CNode */
    for (int tries = 0; tries < 8; tries++) {
        const struct cte *c = vs.caps[rnd_below(vs.ncaps)];
        if (c->cap.type == CAP_CNODE)
            return slot_of(&c->cap, rnd_below(1ull << c->cap.bits));
    }
    return S(rnd_below(1ull << rootcn->bits));
}

static const struct capability *pick_cnode(void)
{
    for (int tries = 0; tries < 16; tries++) {
        const struct cte *c = vs.caps[rnd_below(vs.ncaps)];
        if (c->cap.type == CAP_CNODE)
            return &c->cap;
    }
    return rnd_below(8) ? &ks[0].cap : &vs.caps[rnd_below(vs.ncaps)]->cap;
}

static uint64_t pick_size(uint32_t type)
{
    switch (rnd_below(12)) {
    case 0: return 0;
    case 1: return rnd();
    case 2: return 4096 * (1 + rnd_below(64)) + rnd_below(2) * 2048;
    default: break;
    }
    if (type == CAP_CNODE)
        return rnd_below(10) ? 1 + rnd_below(6) : rnd_below(20);
    if (type == CAP_RAM || type == CAP_FRAME)
        return 4096 * (1 + rnd_below(16));
    return rnd_below(3) == 0 ? 0 : rnd_below(2) ? CAP_VNODE_SIZE : CAP_DISPATCHER_SIZE;
}

/* A free slot in ks, or ks[15] emptied. */
static struct cte *free_kslot(void)
{
    for (uint64_t i = 0; i < nk_used; i++)
        if (ks[i].cap.type == CAP_NULL)
            return &ks[i];
    CHECK_ERR(cap_delete(&ks[nk_used - 1]), ERR_OK);
    return &ks[nk_used - 1];
}

/* Roots gone (deleted, or destroyed with the CNode they were in)? Put them
 * back, and find the root CNode wherever it was moved to. */
static void random_reinstall(void)
{
    struct cte *cn = NULL;
    bool have_ram = false;
    for (size_t i = 0; i < vs.ncaps; i++) {
        struct cte *c = vs.caps[i];
        if (c->parent)
            continue;
        /* An anchor adopted as a root keeps an object of the dead RAM
         * alive: RAM comes back only when nothing of it is left. */
        have_ram |= c->cap.type == CAP_RAM || (is_mem(c->cap.type) && c->cap.base >= RAM_PHYS);
        if (c->cap.type == CAP_CNODE && c->cap.base == ROOT_CN_PHYS)
            cn = c;
    }
    if (!cn) {
        memset(arena, 0, (size_t)CAP_CTE_SIZE << 6);
        struct capability k = { .type = CAP_CNODE, .rights = CAP_RIGHTS_ALL, .bits = 6,
                                .base = ROOT_CN_PHYS };
        cn = free_kslot();
        CHECK_ERR(cap_install_root(cn, &k), ERR_OK);
    }
    rootcn = &cn->cap;
    if (!have_ram) {
        struct capability r = { .type = CAP_RAM, .rights = CAP_RIGHTS_ALL, .base = RAM_PHYS,
                                .bytes = ram_bytes };
        CHECK_ERR(cap_install_root(free_kslot(), &r), ERR_OK);
    }
    hooks_reset();
    VALIDATE();
}

static void test_random(void)
{
    const int OPS = 60000;
    env_reset(2u << 20, 6);   /* 64 root slots, 1 MiB of RAM */
    nk_used = 16;
    struct capability io = { .type = CAP_IO, .rights = CAP_RIGHTS_ALL, .base = 0, .bytes = 0x10000 };
    struct capability irq = { .type = CAP_IRQ, .rights = CAP_RIGHTS_ALL, .base = 32, .bytes = 224 };
    struct capability kern = { .type = CAP_KERNEL, .rights = CAP_RIGHTS_ALL };
    CHECK_ERR(cap_install_root(&ks[2], &io), ERR_OK);
    CHECK_ERR(cap_install_root(&ks[3], &irq), ERR_OK);
    CHECK_ERR(cap_install_root(&ks[4], &kern), ERR_OK);
    CHECK_ERR(cap_copy(&ks[0], S(1)), ERR_OK);
    VALIDATE();

    struct okey *ob = NULL, *oa = NULL;
    size_t cob = 0, coa = 0;
    uint64_t counts[9][2] = { { 0 } };   /* per op: ok, failed */
    uint64_t max_live = 0, cnode_kills = 0, adopted = 0;
    for (int op = 0; op < OPS; op++) {
        size_t live_before = live_caps();
        size_t nob = originals(&ob, &cob);
        uint64_t h = state_hash();
        hooks_reset();
        /* Three phases: growing (few deletions), balanced, shrinking. */
        int phase = op * 3 / OPS;
        int kind = (int)rnd_below(100);
        if (kind >= 80 && kind < 93 && phase == 0 && rnd_below(4))
            kind = (int)rnd_below(80);
        if (kind < 70 && phase == 2 && rnd_below(3) == 0)
            kind = 80 + (int)rnd_below(13);
        errval_t err;
        int which;
        uint32_t rtype = 0;
        struct cte *a = pick_slot(true), *b = pick_slot(false);
        uint64_t count = 0;
        if (kind < 35) {
            which = 0;
            if (rnd_below(3) != 0) {   /* bias towards RAM sources */
                for (int t = 0; t < 8; t++) {
                    struct cte *c = vs.caps[rnd_below(vs.ncaps)];
                    if (c->cap.type == CAP_RAM) {
                        a = c;
                        break;
                    }
                }
            }
            uint32_t type = rnd_below(6) ? (uint32_t)(1 + rnd_below(CAP_TYPE_COUNT - 1))
                                         : (uint32_t)rnd_below(20);
            if (rnd_below(2))
                type = rnd_below(2) ? CAP_FRAME : CAP_CNODE;
            rtype = type;
            uint64_t size = pick_size(type);
            uint64_t offset = rnd_below(8) ? 4096 * rnd_below(260) + (rnd_below(4) ? 0 : 128 * rnd_below(32))
                                           : rnd();
            count = rnd_below(10) ? 1 + rnd_below(4) : (rnd_below(2) ? 0 : rnd());
            const struct capability *dc = pick_cnode();
            uint64_t first = rnd_below(10) ? rnd_below(dc->type == CAP_CNODE ? 1ull << dc->bits : 8)
                                           : rnd();
            err = cap_retype(a, (enum cap_type)type, size, offset, count, dc, first);
        } else if (kind < 55) {
            which = 1;
            err = cap_copy(a, rnd_below(20) ? b : a);
        } else if (kind < 70) {
            which = 2;
            uint32_t rights = (uint32_t)(rnd_below(8) ? rnd_below(16) : rnd_below(64));
            uint64_t badge = rnd_below(2) ? 0 : 1 + rnd_below(1000);
            uint64_t base = 0, cnt = 0;
            if ((a->cap.type == CAP_IO || a->cap.type == CAP_IRQ) && rnd_below(3)) {
                base = a->cap.base + rnd_below(a->cap.bytes + 2) - rnd_below(2);
                cnt = rnd_below(a->cap.bytes + 2);
                badge = rnd_below(5) ? 0 : badge;
            } else if (rnd_below(10) == 0) {
                base = rnd_below(3);
                cnt = rnd_below(3);
            }
            err = cap_mint(a, rnd_below(20) ? b : a, rights, badge, base, cnt);
        } else if (kind < 80) {
            which = 3;
            struct cte *d = rnd_below(20) ? b : a;
            err = cap_move(a, d);
            if (!err)
                extra_moved(a, d);
        } else if (kind < 88) {
            which = 4;   /* a plain delete, or its monitor's hand-over (same accounting) */
            struct cte *blocking, *anchor = cap_anchor_of(a);
            err = rnd_below(4) ? cap_delete(a) : cap_hand_over(a, &blocking);
            if (!err && anchor && anchor->cap.type != CAP_NULL && !anchor->parent && slot_index(anchor) >= NK)
                extra_moved(anchor, anchor);   /* handed over as a root inside a CNode */
        } else if (kind < 93) {
            which = 5;
            err = cap_revoke(a);
        } else if (kind < 96) {
            /* A monitor's anchor: deletes and revokes that reach it are
             * refused, CNodes that die around it leave it adopted. */
            which = 7;
            err = cap_anchor(a, rnd_below(20) ? b : a);
        } else if (kind < 98) {
            which = 8;   /* its monitor is done with it */
            err = cap_relate(a, 0, CAP_REL_REMOTE | CAP_REL_ORPHAN | (rnd_below(2) ? CAP_REL_WATCH : 0));
        } else {
            which = 6;
            struct cap_identity id;
            uint64_t d = cap_descendants(a);
            cap_identify(a, &id);
            CHECK_EQ(id.type, a->cap.type);
            CHECK(d < live_before);
            err = ERR_OK;
        }
        counts[which][err != ERR_OK]++;
        if (!VALIDATE()) {
            fprintf(stderr, "random: op %d (kind %d) returned %s\n", op, which, err_name(err));
            break;
        }
        size_t live_after = live_caps();
        size_t noa = originals(&oa, &coa);
        if (err != ERR_OK) {
            CHECK_EQ(state_hash(), h);
            CHECK_EQ(hk.zero_calls + hk.unlinked + hk.destroyed, 0);
            CHECK_EQ(live_after, live_before);
        } else if (which == 7 || which == 8) {
            CHECK_EQ(hk.zero_calls + hk.unlinked + hk.destroyed, 0);
            CHECK_EQ(live_after, live_before + (which == 7));
            CHECK_EQ(noa, nob);
        } else if (which == 4 || which == 5) {
            CHECK_EQ(hk.zero_calls, 0);
            CHECK_EQ(hk.unlinked, live_before - live_after);
            CHECK_EQ(hk.destroyed, nob - noa);
            /* before == after + destroyed, as multisets */
            if (noa + hk.nlog > coa) {
                coa = noa + hk.nlog;
                oa = realloc(oa, coa * sizeof *oa);
            }
            for (size_t i = 0; i < hk.nlog; i++)
                oa[noa + i] = (struct okey){ hk.log[i].type, hk.log[i].base, hk.log[i].bytes };
            qsort(oa, noa + hk.nlog, sizeof *oa, okey_cmp);
            CHECK_EQ(noa + hk.nlog, nob);
            CHECK(noa + hk.nlog == nob && memcmp(oa, ob, nob * sizeof *ob) == 0);
            for (size_t i = 0; i < hk.nlog; i++)
                cnode_kills += hk.log[i].type == CAP_CNODE;
            adopted += hk.notices;
        } else {
            CHECK_EQ(hk.unlinked + hk.destroyed, 0);
            if (which == 0) {
                CHECK_EQ(hk.zero_calls, rtype != CAP_RAM);
                CHECK_EQ(live_after, live_before + count);
                CHECK_EQ(noa, nob + count);
            } else {
                CHECK_EQ(hk.zero_calls, 0);
                CHECK_EQ(live_after, live_before + (which == 1 || which == 2));
                CHECK_EQ(noa, nob);
            }
        }
        if (live_after > max_live)
            max_live = live_after;
        random_reinstall();
        if (check_failures > 50)
            break;
    }
    printf("random: %d ops; ok/failed: retype %llu/%llu copy %llu/%llu mint %llu/%llu "
           "move %llu/%llu delete %llu/%llu revoke %llu/%llu anchor %llu/%llu; up to %llu live "
           "capabilities, %llu CNodes destroyed, %llu anchors adopted\n",
           OPS, (unsigned long long)counts[0][0], (unsigned long long)counts[0][1],
           (unsigned long long)counts[1][0], (unsigned long long)counts[1][1],
           (unsigned long long)counts[2][0], (unsigned long long)counts[2][1],
           (unsigned long long)counts[3][0], (unsigned long long)counts[3][1],
           (unsigned long long)counts[4][0], (unsigned long long)counts[4][1],
           (unsigned long long)counts[5][0], (unsigned long long)counts[5][1],
           (unsigned long long)counts[7][0], (unsigned long long)counts[7][1],
           (unsigned long long)max_live, (unsigned long long)cnode_kills, (unsigned long long)adopted);
    free(ob);
    free(oa);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void *run_all(void *arg)
{
    (void)arg;
    test_object_bytes();
    test_slot();
    test_install_root();
    test_retype_basic();
    test_retype_errors();
    test_retype_overlap();
    test_copy();
    test_mint();
    test_move();
    test_identify();
    test_delete_basic();
    test_deep();
    test_wide();
    test_cnode_delete();
    test_cnode_cycle();
    test_cnode_chains();
    test_foreign();
    test_anchor();
    test_hand_over();
    test_take_over();
    test_revoke_siblings();
    test_hand_over_anchor();
    test_adoption();
    test_cnode_random_nesting();
    test_random();
    return NULL;
}

int main(void)
{
    ks = calloc(NK, sizeof *ks);
    if (!ks)
        return 1;
    cap_set_hooks(&hooks);
    /* A small stack: any recursion that follows the tree's depth overflows it. */
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, TEST_STACK);
    if (pthread_create(&t, &attr, run_all, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    pthread_join(t, NULL);
    free(ks);
    free(arena);
    return check_done();
}
