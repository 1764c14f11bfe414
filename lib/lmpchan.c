/*
 * Typed channels over local messages; the design is in <atoll/lmpchan.h>.
 * Fragment word 0: | payload bytes 0-3 (high 32 bits) | reserved:8 |
 * offset:8 | total:8 | magic:8 (low byte) |; words 1-3: payload bytes 4-27.
 */
#include <atoll/lib.h>
#include <atoll/lmpchan.h>
#include <atoll/urpc.h>

#define HDR_MAGIC(w) ((uint32_t)((w) & 0xff))
#define HDR_TOTAL(w) ((uint32_t)(((w) >> 8) & 0xff))
#define HDR_OFFSET(w) ((uint32_t)(((w) >> 16) & 0xff))
#define HDR_RESERVED(w) ((uint32_t)(((w) >> 24) & 0xff))

static void put_bytes(uint64_t *words, const uint8_t *p, size_t n)
{
    /* 28 bytes: 4 in the high half of word 0, then words 1-3. */
    uint8_t tmp[LMPCHAN_FRAG_BYTES] = { 0 };
    memcpy(tmp, p, n);
    uint32_t first;
    memcpy(&first, tmp, 4);
    words[0] |= (uint64_t)first << 32;
    memcpy(&words[1], tmp + 4, 24);
}

static void get_bytes(const uint64_t *words, uint8_t *p, size_t n)
{
    uint8_t tmp[LMPCHAN_FRAG_BYTES];
    uint32_t first = (uint32_t)(words[0] >> 32);
    memcpy(tmp, &first, 4);
    memcpy(tmp + 4, &words[1], 24);
    memcpy(p, tmp, n);
}

unsigned lmpchan_split(const void *msg, size_t len, uint64_t frag[][4], unsigned max)
{
    if (len > LMPCHAN_MSG_MAX || len == 0)
        return 0;
    unsigned n = 0;
    for (size_t off = 0; off < len && n < max; off += LMPCHAN_FRAG_BYTES, n++) {
        size_t take = len - off < LMPCHAN_FRAG_BYTES ? len - off : LMPCHAN_FRAG_BYTES;
        frag[n][0] = LMPCHAN_MAGIC | (uint64_t)len << 8 | (uint64_t)off << 16;
        frag[n][1] = frag[n][2] = frag[n][3] = 0;
        put_bytes(frag[n], (const uint8_t *)msg + off, take);
    }
    return n * LMPCHAN_FRAG_BYTES >= len ? n : 0;
}

static void drop_partial(struct lmp_chan *c)
{
    if (c->cap_in_set) {
        cap_free(c->cap_in);
        c->cap_in_set = false;
    }
    c->have = c->total = 0;
}

errval_t lmpchan_feed(struct lmp_chan *c, const struct lmp_msg *m, capslot_t cap, size_t *len)
{
    uint64_t w0 = m->w[0];
    uint32_t total = HDR_TOTAL(w0), off = HDR_OFFSET(w0);
    /* A first fragment always starts a message (a sender that gave up on
     * one starts again); any other must be the next of the one under way. */
    bool fits = HDR_MAGIC(w0) == LMPCHAN_MAGIC && !HDR_RESERVED(w0) && total > 0 && off < total &&
                (off == 0 || (off == c->have && total == c->total)) && off % LMPCHAN_FRAG_BYTES == 0 &&
                !(cap && off != 0);   /* a capability only with the first fragment */
    if (!fits) {
        if (cap)
            cap_free(cap);
        c->dropped++;
        drop_partial(c);
        return ERR_MSG_MALFORMED;
    }
    if (off == 0) {
        drop_partial(c);
        c->total = total;
        if (cap) {
            c->cap_in = cap;
            c->cap_in_set = true;
        }
    }
    uint32_t take = total - off < LMPCHAN_FRAG_BYTES ? total - off : LMPCHAN_FRAG_BYTES;
    get_bytes(m->w, c->buf + off, take);
    c->have = off + take;
    if (c->have < c->total)
        return ERR_WOULD_BLOCK;
    *len = c->total;
    c->have = c->total = 0;
    return ERR_OK;
}

/* -- the transport -------------------------------------------------------------------- */

static errval_t send_fragment(struct lmp_chan *c, const uint64_t *w, uint64_t cap)
{
    uint64_t start = 0;
    for (;;) {
        errval_t err = sys_lmp_send(c->ep, w[0], w[1], w[2], w[3], cap);
        if (err != ERR_WOULD_BLOCK && err != ERR_NO_RECV_SLOT)
            return err;
        /* The peer has not taken the last one yet: let it run. */
        uint64_t now = urpc_os_now_ns();
        if (!start)
            start = now;
        else if (c->send_timeout_ns && now - start > c->send_timeout_ns)
            return ERR_TIMEOUT;
        sys_yield();
    }
}

static errval_t lmp_send_msg(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    (void)flags;
    struct lmp_chan *c = ch->state;
    uint64_t frag[(LMPCHAN_MSG_MAX + LMPCHAN_FRAG_BYTES - 1) / LMPCHAN_FRAG_BYTES][4];
    unsigned n = lmpchan_split(msg, len, frag, sizeof frag / sizeof frag[0]);
    bool with_cap = c->cap_out_set;
    c->cap_out_set = false;
    if (!n)
        return ERR_MSG_TOO_LONG;
    for (unsigned i = 0; i < n; i++) {
        uint64_t cap = LMP_NO_CAP;
        if (i == 0 && with_cap)
            cap = c->cap_out | (c->move_caps ? LMP_SEND_MOVE : 0);
        errval_t err = send_fragment(c, frag[i], cap);
        if (err)
            return err;
        if (i == 0 && with_cap && c->move_caps)
            slot_free(c->cap_out);   /* it moved: the slot is empty */
    }
    return ERR_OK;
}

/* Name a fresh slot for the next capability that comes. */
static errval_t name_recv_slot(struct lmp_chan *c)
{
    if (c->recv_slot)
        return ERR_OK;
    return slot_alloc(&c->recv_slot);
}

static errval_t lmp_recv_msg(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags)
{
    struct lmp_chan *c = ch->state;
    uint64_t start = c->recv_timeout_ns ? urpc_os_now_ns() : 0;
    for (;;) {
        errval_t err = name_recv_slot(c);
        if (err)
            return err;
        struct lmp_msg m;
        /* With a timeout, poll (the kernel's receive waits forever). */
        bool poll = (flags & URPC_NONBLOCK) || c->recv_timeout_ns;
        err = sys_lmp_recv(c->recv_slot, poll ? LMP_RECV_NONBLOCK : 0, &m);
        if (err == ERR_WOULD_BLOCK && !(flags & URPC_NONBLOCK) && c->recv_timeout_ns) {
            if (urpc_os_now_ns() - start > c->recv_timeout_ns)
                return ERR_TIMEOUT;
            sys_yield();
            continue;
        }
        if (err)
            return err;
        capslot_t cap = 0;
        if (m.has_cap) {
            cap = c->recv_slot;
            c->recv_slot = 0;
        }
        if (m.badge != c->peer_badge) {   /* not our peer's: not a reply */
            if (cap)
                cap_free(cap);
            c->dropped++;
            continue;
        }
        size_t got;
        err = lmpchan_feed(c, &m, cap, &got);
        if (err == ERR_WOULD_BLOCK) {
            flags &= ~URPC_NONBLOCK;   /* the rest of a message we started: wait for it */
            continue;
        }
        if (err)
            return err;
        if (got > size) {
            drop_partial(c);
            return ERR_MSG_TOO_LONG;
        }
        memcpy(buf, c->buf, got);
        *len = got;
        return ERR_OK;
    }
}

/* The capability goes with the message itself: its description stays
 * empty. Slot 0 sends none (a reply that carries an error instead). */
static errval_t lmp_cap_export(struct idl_chan *ch, uint64_t slot, struct cap_wire *out)
{
    struct lmp_chan *c = ch->state;
    *out = (struct cap_wire){ 0 };
    if (!slot)
        return ERR_OK;
    if (c->cap_out_set)
        return ERR_CAP_NOT_TRANSFERABLE;   /* one per message (idlc checks it) */
    c->cap_out = slot;
    c->cap_out_set = true;
    return ERR_OK;
}

/* The slot the capability landed in, or 0 when none came with the message
 * (a reply carrying an error): the receiver checks the error first. */
static errval_t lmp_cap_import(struct idl_chan *ch, const struct cap_wire *in, uint64_t *slot)
{
    (void)in;
    struct lmp_chan *c = ch->state;
    *slot = c->cap_in_set ? c->cap_in : 0;
    c->cap_in_set = false;
    return ERR_OK;
}

void lmpchan_init(struct lmp_chan *c, capslot_t ep, uint64_t peer_badge)
{
    *c = (struct lmp_chan){ .ep = ep, .peer_badge = peer_badge };
    c->idl = (struct idl_chan){ .send = lmp_send_msg, .recv = lmp_recv_msg, .cap_export = lmp_cap_export,
                                .cap_import = lmp_cap_import, .state = c };
}
