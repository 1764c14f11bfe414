/*
 * Host unit tests for the URPC channel library (lib/urpc/urpc.c), single-
 * threaded: both sides of a channel live in this thread and take turns, so
 * every step is deterministic. The second half plays a deliberately faulty
 * peer by writing raw slots and control words into its half; every bad
 * value must give ERR_URPC_CORRUPT and then ERR_URPC_BROKEN, and the side
 * under test must never write outside its own half (canaries around the
 * frame, snapshots of the peer's half).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/urpc.h>
#include "check.h"

#define GUARD 4096
/* A frame whose rings have 31 slots each (a page's have 30: two control
 * lines head each half). */
#define F31 (2 * (31 + URPC_CTRL_LINES) * URPC_LINE)
#define CANARY 0xa5

/* One frame with canary guards on both sides. */
struct frame {
    uint8_t *mem;     /* GUARD + bytes + GUARD */
    uint8_t *base;    /* the frame proper */
    size_t bytes;
};

static struct frame frame_new(size_t bytes)
{
    struct frame f;
    f.bytes = bytes;
    f.mem = aligned_alloc(URPC_LINE, GUARD * 2 + bytes + URPC_LINE);
    if (!f.mem) {
        perror("aligned_alloc");
        exit(2);
    }
    memset(f.mem, CANARY, GUARD * 2 + bytes + URPC_LINE);
    f.base = f.mem + GUARD;
    memset(f.base, 0, bytes);
    return f;
}

static bool guards_intact(const struct frame *f)
{
    for (size_t i = 0; i < GUARD; i++)
        if (f->mem[i] != CANARY || f->base[f->bytes + i] != CANARY)
            return false;
    return true;
}

/* Side s's half: its control line, then its slots. */
static uint8_t *half(const struct frame *f, int s)
{
    return f->base + (size_t)s * (f->bytes / 2 / URPC_LINE) * URPC_LINE;
}
static size_t half_bytes(const struct frame *f) { return f->bytes / 2 / URPC_LINE * URPC_LINE; }
static struct urpc_ctrl *ctrl_of(const struct frame *f, int s) { return (struct urpc_ctrl *)half(f, s); }
static struct urpc_slot *slot_of(const struct frame *f, int s, uint32_t i)
{
    return (struct urpc_slot *)(half(f, s) + URPC_LINE * (URPC_CTRL_LINES + (size_t)i));
}

static uint64_t hdr(uint32_t seq, uint16_t ack, uint32_t len, uint32_t frag, bool last)
{
    return (uint64_t)seq << URPC_HDR_SEQ_SHIFT | (uint64_t)ack << URPC_HDR_ACK_SHIFT |
           (uint64_t)len << URPC_HDR_LEN_SHIFT | (uint64_t)frag << URPC_HDR_FRAG_SHIFT |
           (last ? URPC_HDR_LAST : 0);
}

static uint64_t free_slots_of(const struct urpc_chan *c) { return c->nslots - (c->sent - c->acked); }

/* A message body that says where it came from. */
static void fill(uint8_t *p, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(tag * 131u + i * 7u + (i >> 8));
}
static bool same(const uint8_t *p, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(tag * 131u + i * 7u + (i >> 8)))
            return false;
    return true;
}

static uint8_t out[URPC_MSG_MAX + 64], in[URPC_MSG_MAX + 64];

static void pair(struct frame *f, struct urpc_chan *a, struct urpc_chan *b)
{
    CHECK_ERR(urpc_init(a, f->base, f->bytes, 0), ERR_OK);
    CHECK_ERR(urpc_init(b, f->base, f->bytes, 1), ERR_OK);
}

/* Send a tagged message of n bytes; receive it on the other side and check it. */
static void roundtrip(struct urpc_chan *tx, struct urpc_chan *rx, size_t n, uint32_t tag)
{
    fill(out, n, tag);
    CHECK_ERR(urpc_send(tx, out, n, URPC_NONBLOCK), ERR_OK);
    size_t got = ~(size_t)0;
    memset(in, 0, n);
    CHECK_ERR(urpc_recv(rx, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, n);
    CHECK(same(in, n, tag));
}

static struct urpc_chan a, b;

static void test_init(void)
{
    struct frame f = frame_new(F31);
    memset(f.base, 0x3c, f.bytes);
    CHECK_ERR(urpc_init(&a, f.base, F31, 2), ERR_INVALID_ARG);
    CHECK_ERR(urpc_init(&a, f.base, F31, -1), ERR_INVALID_ARG);
    CHECK_ERR(urpc_init(&a, NULL, F31, 0), ERR_INVALID_ARG);
    CHECK_ERR(urpc_init(NULL, f.base, F31, 0), ERR_INVALID_ARG);
    CHECK_ERR(urpc_init(&a, f.base + 8, 4000, 0), ERR_INVALID_ARG);
    CHECK_ERR(urpc_init(&a, f.base, URPC_MIN_FRAME - 1, 0), ERR_INVALID_ARG);
    CHECK_ERR(urpc_init(&a, f.base, URPC_MIN_FRAME, 0), ERR_OK);
    CHECK_EQ(a.nslots, 2);
    CHECK_ERR(urpc_init(&a, f.base, F31, 1), ERR_OK);
    CHECK_EQ(a.nslots, 31);
    CHECK_EQ(a.side, 1);
    CHECK((void *)a.my_ctrl == f.base + F31 / 2);
    CHECK((void *)a.tx == f.base + F31 / 2 + 128);
    CHECK((const void *)a.peer_ctrl == f.base);
    CHECK((const void *)a.rx == f.base + 128);
    /* `sleeping` on a line of its own, apart from what a receive reads. */
    CHECK(offsetof(struct urpc_ctrl, sleeping) / URPC_LINE != offsetof(struct urpc_ctrl, waiting) / URPC_LINE);
    CHECK(offsetof(struct urpc_ctrl, waiting) / URPC_LINE == offsetof(struct urpc_ctrl, consumed) / URPC_LINE);
    CHECK(URPC_RING_SLOTS(4096) == 30 && URPC_RING_SLOTS(F31) == 31);
    CHECK_EQ(a.spin_ns, 20000);
    CHECK_EQ(a.timeout_ns, 0);
    CHECK_ERR(a.broken, ERR_OK);
    /* An odd size: both sides agree on the halves, the tail is unused. */
    CHECK_ERR(urpc_init(&a, f.base, F31 - 64, 1), ERR_OK);
    CHECK_EQ(a.nslots, 30);
    CHECK((void *)a.my_ctrl == f.base + 32 * 64);
    /* urpc_init writes nothing to the frame. */
    bool untouched = true;
    for (size_t i = 0; i < f.bytes; i++)
        untouched &= f.base[i] == 0x3c;
    CHECK(untouched);
    CHECK(guards_intact(&f));
    free(f.mem);
}

static void test_one_slot(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got = 99;
    CHECK(!urpc_pending(&b));
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(got, 99);
    fill(out, 8, 1);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK(urpc_pending(&b));
    CHECK(!urpc_pending(&a));
    CHECK_EQ(slot_of(&f, 0, 0)->header, hdr(1, 0, 8, 0, true));
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 8);
    CHECK(same(in, 8, 1));
    CHECK(!urpc_pending(&b));
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(a.stats.msgs_sent, 1);
    CHECK_EQ(a.stats.slots_sent, 1);
    CHECK_EQ(b.stats.msgs_received, 1);
    CHECK_EQ(b.stats.slots_received, 1);
    /* Blocking calls that need not wait behave the same. */
    roundtrip(&b, &a, 0, 2);
    fill(out, 56, 3);
    CHECK_ERR(urpc_send(&a, out, 56, 0), ERR_OK);
    CHECK_ERR(urpc_recv(&b, in, 56, &got, 0), ERR_OK);
    CHECK_EQ(got, 56);
    CHECK(same(in, 56, 3));
    /* A NULL buffer is fine for an empty message, and len may be NULL. */
    CHECK_ERR(urpc_send(&a, NULL, 0, 0), ERR_OK);
    CHECK_ERR(urpc_recv(&b, NULL, 0, NULL, 0), ERR_OK);
    CHECK(guards_intact(&f));
    free(f.mem);
}

static void test_fragments(void)
{
    static const size_t sizes[] = {0, 1, 55, 56, 57, 111, 112, 113, 1000, 31 * 56,
                                   31 * 56 + 1, URPC_MSG_MAX - 1, URPC_MSG_MAX};
    struct frame f = frame_new(16384);      /* 126 slots: every message fits */
    pair(&f, &a, &b);
    uint64_t slots = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        roundtrip(&a, &b, n, (uint32_t)i);
        roundtrip(&b, &a, n, (uint32_t)i + 100);
        slots += n ? (n + URPC_PAYLOAD - 1) / URPC_PAYLOAD : 1;
    }
    CHECK_EQ(a.stats.slots_sent, slots);
    CHECK_EQ(b.stats.slots_received, slots);
    /* The fragments of the longest message: 64 slots, 56 bytes each, in order. */
    fill(out, URPC_MSG_MAX, 7);
    uint64_t first = a.sent;
    CHECK_ERR(urpc_send(&a, out, URPC_MSG_MAX, 0), ERR_OK);
    for (uint32_t i = 0; i < URPC_MAX_FRAGS; i++) {
        uint64_t h = slot_of(&f, 0, (uint32_t)((first + i) % a.nslots))->header;
        CHECK_EQ(h >> 32, (uint32_t)(first + i + 1));
        CHECK_EQ((h >> URPC_HDR_LEN_SHIFT) & 63, 56);
        CHECK_EQ((h >> URPC_HDR_FRAG_SHIFT) & 63, i);
        CHECK_EQ(!!(h & URPC_HDR_LAST), i == URPC_MAX_FRAGS - 1);
    }
    size_t got;
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, 0), ERR_OK);
    CHECK_EQ(got, URPC_MSG_MAX);
    CHECK(same(in, URPC_MSG_MAX, 7));
    /* Too long: refused, nothing sent. */
    uint64_t sent = a.sent;
    CHECK_ERR(urpc_send(&a, out, URPC_MSG_MAX + 1, 0), ERR_MSG_TOO_LONG);
    CHECK_ERR(urpc_send(&a, out, (size_t)-1, URPC_NONBLOCK), ERR_MSG_TOO_LONG);
    CHECK_EQ(a.sent, sent);
    CHECK_ERR(a.broken, ERR_OK);
    fill(out, 200, 8);
    CHECK_ERR(urpc_send(&a, out, 200, 0), ERR_OK);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 200);
    CHECK(same(in, 200, 8));
    CHECK(guards_intact(&f));
    free(f.mem);
}

/* A message longer than the caller's buffer is consumed and dropped. */
static void test_small_buffer(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got = 77;
    fill(out, 40, 1);
    CHECK_ERR(urpc_send(&a, out, 40, 0), ERR_OK);
    memset(in, 0xee, 600);
    CHECK_ERR(urpc_recv(&b, in, 39, &got, 0), ERR_MSG_TOO_LONG);
    CHECK_EQ(got, 77);
    CHECK_EQ(in[39], 0xee);     /* nothing past the buffer */
    fill(out, 500, 2);
    CHECK_ERR(urpc_send(&a, out, 500, 0), ERR_OK);
    CHECK_ERR(urpc_recv(&b, in, 499, &got, 0), ERR_MSG_TOO_LONG);
    CHECK_EQ(in[499], 0xee);
    roundtrip(&a, &b, 300, 3);          /* the channel goes on */
    CHECK_EQ(b.stats.msgs_received, 3);
    CHECK_ERR(b.broken, ERR_OK);
    free(f.mem);
}

/* Many laps of a small and a normal ring, both directions, every size mix. */
static void test_wrap(size_t bytes)
{
    struct frame f = frame_new(bytes);
    pair(&f, &a, &b);
    uint32_t seed = 1;
    size_t maxlen = a.nslots * URPC_PAYLOAD;
    for (uint32_t i = 0; i < 50000; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 8) % (i % 3 ? 57 : maxlen + 1);
        if (i & 1)
            roundtrip(&a, &b, n, i);
        else
            roundtrip(&b, &a, n, i);
    }
    CHECK(a.sent > 10ull * a.nslots);
    CHECK_EQ(a.sent, b.received);
    CHECK_EQ(b.sent, a.received);
    CHECK_ERR(a.broken, ERR_OK);
    CHECK_ERR(b.broken, ERR_OK);
    CHECK(guards_intact(&f));
    free(f.mem);
}

/* Batched acks every half ring; piggy-backed ones in every header; the
 * control line otherwise only when the peer waits for room. */
static void test_acks(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got;
    for (uint32_t i = 0; i < 31; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(a.stats.full_waits, 2);
    CHECK_EQ(a.sent, 31);
    CHECK_EQ(ctrl_of(&f, 0)->waiting, 0);       /* one slot: the batches will do */
    for (uint32_t i = 0; i < 14; i++)
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(b.stats.acks_published, 0);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 0);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(b.stats.acks_published, 1);        /* 15 = nslots / 2 */
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 15);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(a.acked, 15);
    CHECK_EQ(a.peer_consumed, 15);
    for (uint32_t i = 0; i < 17; i++)
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(b.stats.acks_published, 2);        /* at 30 */
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 30);
    /* Found empty while nobody waits: nothing written (a stream that keeps
     * up moves no control line between batches). */
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(b.stats.acks_published, 2);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 30);
    CHECK(!urpc_pending(&b));
    /* a wants the whole ring at once: 29 free, and more than the batches
     * promise (17), so it asks; found empty again, b publishes the rest,
     * once. */
    CHECK_ERR(urpc_send(&a, out, 31 * URPC_PAYLOAD, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(ctrl_of(&f, 0)->waiting, 1);
    CHECK_EQ(a.acked, 30);
    CHECK(urpc_pending(&b));                    /* asked: a receive has work */
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(b.stats.acks_published, 3);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 32);
    CHECK(!urpc_pending(&b));
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(b.stats.acks_published, 3);

    /* Piggy-backed: b takes 10 and replies; the reply carries the ack. */
    for (uint32_t i = 0; i < 10; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    for (uint32_t i = 0; i < 10; i++)
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_send(&b, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(ctrl_of(&f, 0)->waiting, 0);       /* the first send found room */
    CHECK_EQ(b.ack_told, 42);
    CHECK_EQ(a.acked, 30);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(a.acked, 42);
    CHECK_EQ(a.peer_consumed, 30);
    /* The reply told a; the control line still says 32, and stays so while
     * a does not wait for room (test_idle_flush_after_reply: when it does). */
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(b.stats.acks_published, 3);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 32);
    urpc_flush_acks(&b);                        /* on demand (urpc_close does) */
    CHECK_EQ(b.stats.acks_published, 4);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 42);
    urpc_flush_acks(&b);
    CHECK_EQ(b.stats.acks_published, 4);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    urpc_flush_acks(&b);
    CHECK_EQ(b.stats.acks_published, 5);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 43);
    free(f.mem);
}

/* An old reply read long after the control line told more, and 16-bit acks
 * that wrapped: never taken for corruption, never for more than the truth. */
static void test_stale_acks(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got;
    CHECK_ERR(urpc_send(&b, out, 8, 0), ERR_OK);        /* carries ack 0 */
    for (uint32_t i = 0; i < 70000; i++) {
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
        if (i % 3 == 0)
            CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    }
    uint64_t acked = a.acked;           /* from the control line */
    CHECK(acked > 70000 - 31 && acked <= 70000);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(a.broken, ERR_OK);
    CHECK_EQ(a.acked, acked);
    CHECK_ERR(urpc_send(&b, out, 8, 0), ERR_OK);        /* at most 0xffff past ack 0 */
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(a.broken, ERR_OK);
    CHECK_EQ(a.hdr_acked, 0xffff);              /* exact: what that header said */
    CHECK_EQ(a.acked, acked);
    free(f.mem);
}

/* Found by models/urpc.pml (BUG_IDLE_FLUSH_TOLD): b consumes and replies,
 * so its header carried the ack, and goes idle. a, waiting in a send for
 * space, reads only b's control line, never the reply waiting in its ring.
 * Before issue 16 b's idle flush skipped a count a header had told, and a
 * waited forever; then b wrote its control line whenever it went idle (in
 * a round trip: every time). Now a asks (its `waiting` flag) and b writes
 * what its control line does not show yet only then. One thread here:
 * non-blocking sends; test_urpc_threads blocks a sender on a live peer. */
static void test_idle_flush_after_reply(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got;
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_send(&b, out, 8, URPC_NONBLOCK), ERR_OK);       /* carries ack 1 */
    CHECK_EQ(b.ack_told, 1);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 0);      /* nobody asked: the header told a */
    CHECK_EQ(b.stats.acks_published, 0);
    /* The whole ring at once: 31 slots, only 30 free unless a learns of 1. */
    fill(out, 31 * URPC_PAYLOAD, 7);
    CHECK_ERR(urpc_send(&a, out, 31 * URPC_PAYLOAD, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(ctrl_of(&f, 0)->waiting, 1);
    CHECK_EQ(a.stats.full_waits, 1);
    CHECK_ERR(urpc_send(&a, out, 31 * URPC_PAYLOAD, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK(urpc_pending(&b));                    /* a sleeper's last look sees the ask */
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 1);      /* idle and asked: published */
    CHECK(!urpc_pending(&b));
    CHECK_ERR(urpc_send(&a, out, 31 * URPC_PAYLOAD, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(ctrl_of(&f, 0)->waiting, 0);       /* room: the flag comes down */
    CHECK(!a.asking);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 31 * URPC_PAYLOAD);
    CHECK(same(in, got, 7));
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 31);     /* the half-ring batches (16, 31) */
    /* Nobody waits now: empty receives write nothing more. */
    uint64_t published = b.stats.acks_published;
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(b.stats.acks_published, published);
    CHECK_EQ(ctrl_of(&f, 1)->consumed, 31);
    /* b's first reply, unread, is in a's ring: a blocking send of one slot
     * asks too (that header may tell what b's control line does not), and
     * lowers its flag when it gives up (b took 32, its control line says
     * 31: room for 30). */
    for (uint32_t i = 0; i < 30; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    a.timeout_ns = 1000000;
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_TIMEOUT);
    CHECK_EQ(ctrl_of(&f, 0)->waiting, 0);
    CHECK(!a.asking);
    free(f.mem);
}

/* Round trips, each side finding its ring empty while it waits for the
 * answer (as a blocking receive does): requests and replies tell each
 * other's acks in their headers, and neither control line is written,
 * however many laps (the cost model's two lines a round trip). */
static void test_roundtrip_quiet(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got;
    for (uint32_t i = 0; i < 1000; i++) {
        CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_OK);
        CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
        CHECK_ERR(urpc_send(&b, out, 8, 0), ERR_OK);
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
        CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    }
    CHECK_EQ(a.received, 1000);
    CHECK_EQ(b.received, 1000);
    CHECK_EQ(a.stats.acks_published + b.stats.acks_published, 0);
    CHECK_EQ(ctrl_of(&f, 0)->consumed + ctrl_of(&f, 1)->consumed, 0);
    CHECK_EQ(a.stats.full_waits + b.stats.full_waits, 0);
    free(f.mem);
}

/* Found by models/urpc.pml (BUG_ACK_WRAP): after a one-way stream of more
 * than 2^16 slots, b's first reply carried its count cut to 16 bits, which a
 * widens from the last header it saw (0) to a value 2^16 too low, and every
 * later one too. Headers now carry at most 0xffff more than the previous
 * one, so a's widening stays exact; request/response then goes on. */
static void test_ack_wrap_then_replies(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got;
    for (uint32_t i = 0; i < 70000; i++) {
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    }
    CHECK_EQ(a.hdr_acked, 0);
    CHECK_ERR(urpc_send(&b, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(b.hdr_told, 0xffff);               /* not 70000: a widens from 0 */
    CHECK_EQ(a.hdr_acked, 0xffff);              /* exact */
    CHECK_ERR(urpc_send(&b, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(a.hdr_acked, 70000);               /* the truth, from then on */
    bool ok = true;
    /* Request/response, each side reading the other's messages: far more
     * than a ring's worth, none of it waiting on a control line. */
    for (uint32_t i = 0; i < 200 && ok; i++) {
        ok &= urpc_send(&a, out, 8, URPC_NONBLOCK) == ERR_OK;
        ok &= urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK) == ERR_OK;
        ok &= urpc_send(&b, out, 8, URPC_NONBLOCK) == ERR_OK;
        ok &= urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK) == ERR_OK;
    }
    CHECK(ok);
    CHECK_EQ(a.hdr_acked, 70200);
    CHECK_ERR(a.broken, ERR_OK);
    CHECK_ERR(b.broken, ERR_OK);
    free(f.mem);
}

/* Both rings full, both sides alternate non-blocking send and receive:
 * acks need no ring space, so everything still gets through. */
static void test_full_rings(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    struct urpc_chan *side[2] = {&a, &b};
    uint32_t next_tx[2] = {0, 0}, next_rx[2] = {0, 0};
    size_t got;
    for (int s = 0; s < 2; s++)
        for (;;) {
            size_t n = next_tx[s] % 5 == 4 ? 200 : 8;
            fill(out, n, next_tx[s] + 1000u * s);
            if (urpc_send(side[s], out, n, URPC_NONBLOCK) != ERR_OK)
                break;
            next_tx[s]++;
        }
    CHECK(next_tx[0] >= 10);
    bool ok = true;
    for (uint32_t round = 0; round < 20000 && ok; round++) {
        for (int s = 0; s < 2; s++) {
            size_t n = next_tx[s] % 5 == 4 ? 200 : 8;
            fill(out, n, next_tx[s] + 1000u * s);
            errval_t e = urpc_send(side[s], out, n, URPC_NONBLOCK);
            if (e == ERR_OK)
                next_tx[s]++;
            else
                ok &= e == ERR_WOULD_BLOCK;
            e = urpc_recv(side[s], in, sizeof in, &got, URPC_NONBLOCK);
            if (e == ERR_OK) {
                uint32_t k = next_rx[s]++;
                ok &= got == (k % 5 == 4 ? 200u : 8u) && same(in, got, k + 1000u * !s);
            } else {
                ok &= e == ERR_WOULD_BLOCK;
            }
        }
    }
    CHECK(ok);
    CHECK(next_rx[0] > 15000 && next_rx[1] > 15000);
    CHECK(next_tx[1] - next_rx[0] < 31 && next_tx[0] - next_rx[1] < 31);
    free(f.mem);
}

/* A non-blocking send of k slots with fewer free sends nothing. */
static void test_all_or_nothing(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    for (uint32_t i = 0; i < 29; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_send(&a, out, 3 * 56, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(a.sent, 29);
    CHECK_EQ(slot_of(&f, 0, 29)->header, 0);
    CHECK_ERR(urpc_send(&a, out, 2 * 56, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(a.sent, 31);
    /* Longer than the whole ring: never possible without waiting. */
    struct frame g = frame_new(URPC_MIN_FRAME);
    pair(&g, &a, &b);
    CHECK_ERR(urpc_send(&a, out, 3 * 56, URPC_NONBLOCK), ERR_MSG_TOO_LONG);
    CHECK_EQ(a.sent, 0);
    free(f.mem);
    free(g.mem);
}

/* A peer that never acknowledges or never sends: every wait is bounded. */
static void test_silent_peer(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got;
    a.timeout_ns = 2000000;
    for (uint32_t i = 0; i < 31; i++)
        CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_OK);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_TIMEOUT);
    CHECK_ERR(urpc_send(&a, out, 100, 0), ERR_TIMEOUT);
    CHECK_EQ(a.sent, 31);
    CHECK_ERR(a.broken, ERR_OK);            /* nothing half sent: still usable */
    /* Blocking receive on nothing: polls, sleeps on the futex, times out. */
    a.spin_ns = 100000;
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, 0), ERR_TIMEOUT);
    CHECK(a.stats.sleeps >= 1);
    CHECK_EQ(ctrl_of(&f, 0)->sleeping, 0);
    a.spin_ns = 0;
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, 0), ERR_TIMEOUT);
    /* The peer takes them all: a can go on. */
    for (uint32_t i = 0; i < 31; i++)
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, 0), ERR_OK);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_OK);
    /* A message longer than the ring that times out half sent: the peer
     * holds a partial message, so the channel cannot go on. */
    struct frame g = frame_new(URPC_MIN_FRAME);
    pair(&g, &a, &b);
    a.timeout_ns = 1000000;
    CHECK_ERR(urpc_send(&a, out, 3 * 56, 0), ERR_TIMEOUT);
    CHECK_EQ(a.sent, 2);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_URPC_BROKEN);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    free(f.mem);
    free(g.mem);
}

/* Batches: small messages share slots (packed), longer ones go alone; a
 * packed slot is taken apart by urpc_recv and urpc_recv_batch alike. */
static uint8_t bout[64][URPC_MSG_MAX], bin[64][URPC_MSG_MAX];

static void batch_fill(struct urpc_out *m, const size_t *lens, size_t n, uint32_t tag)
{
    for (size_t i = 0; i < n; i++) {
        fill(bout[i], lens[i], tag + (uint32_t)i);
        m[i] = (struct urpc_out){bout[i], lens[i]};
    }
}

static void batch_rooms(struct urpc_in *m, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++)
        m[i] = (struct urpc_in){bin[i], size, 999};
}

static void test_batch(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    struct urpc_out o[64];
    struct urpc_in r[64];
    size_t sent, got;

    /* Ten 8-byte messages: six (9 bytes each with the length byte) fill a
     * slot, four the next. */
    size_t eights[10] = {8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
    batch_fill(o, eights, 10, 100);
    CHECK_ERR(urpc_send_batch(&a, o, 10, &sent, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(sent, 10);
    CHECK_EQ(a.sent, 2);
    CHECK_EQ(a.stats.msgs_sent, 10);
    CHECK_EQ(a.stats.packed_slots_sent, 2);
    uint64_t h0 = slot_of(&f, 0, 0)->header, h1 = slot_of(&f, 0, 1)->header;
    CHECK_EQ(h0, hdr(1, 0, 54, 0, true) | URPC_HDR_PACKED);
    CHECK_EQ(h1, hdr(2, 0, 36, 0, true) | URPC_HDR_PACKED);
    const uint8_t *p0 = (const uint8_t *)slot_of(&f, 0, 0)->payload;
    CHECK_EQ(p0[0], 8);
    CHECK(memcmp(p0 + 1, bout[0], 8) == 0);
    CHECK_EQ(p0[9], 8);
    CHECK(memcmp(p0 + 10, bout[1], 8) == 0);
    /* One by one with urpc_recv: the first takes the slot apart. */
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
        CHECK_EQ(got, 8);
        CHECK(same(in, 8, 100 + i));
    }
    CHECK_EQ(b.received, 1);
    CHECK_EQ(b.stats.packed_slots_received, 1);
    /* The rest with urpc_recv_batch: across the slot boundary, then dry. */
    batch_rooms(r, 64, 8);
    CHECK_ERR(urpc_recv_batch(&b, r, 64, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 7);
    for (uint32_t i = 0; i < 7; i++)
        CHECK(r[i].len == 8 && same(bin[i], 8, 103 + i));
    CHECK_EQ(r[7].len, 999);
    CHECK_EQ(b.stats.msgs_received, 10);
    CHECK(!urpc_pending(&b));
    CHECK_ERR(urpc_recv_batch(&b, r, 64, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(got, 0);
    CHECK_ERR(urpc_recv_batch(&b, r, 0, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 0);

    /* Every size a batch meets, in order: empty ones, the longest that
     * packs (55), one slot (56), fragments, and a lone small one (no
     * neighbour to share with goes as urpc_send sends it). */
    size_t mix[12] = {0, 1, 55, 56, 57, 200, 8, 8, 55, 0, 30, 20};
    batch_fill(o, mix, 12, 200);
    uint64_t before = a.sent;
    CHECK_ERR(urpc_send_batch(&a, o, 12, &sent, 0), ERR_OK);
    CHECK_EQ(sent, 12);
    /* {0, 1} packed; 55 alone; 56; 57 (2 slots); 200 (4); {8, 8}; {55}
     * cannot take a neighbour ({55, 0} needs 57 bytes), so alone;
     * {0, 30, 20} packed. */
    CHECK_EQ(a.sent - before, 1 + 1 + 1 + 2 + 4 + 1 + 1 + 1);
    CHECK_EQ(a.stats.packed_slots_sent, 2 + 3);
    batch_rooms(r, 64, sizeof bin[0]);
    size_t total = 0;
    while (total < 12) {
        CHECK_ERR(urpc_recv_batch(&b, r + total, 12 - total, &got, 0), ERR_OK);
        CHECK(got >= 1);
        total += got;
    }
    for (uint32_t i = 0; i < 12; i++)
        CHECK(r[i].len == mix[i] && same(bin[i], mix[i], 200 + i));

    /* A message too long for its room in a batch receive: the ones before
     * are delivered, it is dropped, the next call goes on after it. */
    size_t three[3] = {8, 20, 8};
    batch_fill(o, three, 3, 300);
    CHECK_ERR(urpc_send_batch(&a, o, 3, &sent, 0), ERR_OK);
    batch_rooms(r, 3, 10);
    memset(bin[1], 0xee, 32);
    CHECK_ERR(urpc_recv_batch(&b, r, 3, &got, URPC_NONBLOCK), ERR_MSG_TOO_LONG);
    CHECK_EQ(got, 1);
    CHECK(same(bin[0], 8, 300));
    CHECK_EQ(bin[1][10], 0xee);         /* nothing past the room */
    CHECK(urpc_pending(&b));            /* the last record waits outside the ring */
    CHECK_ERR(urpc_recv(&b, in, 8, &got, URPC_NONBLOCK), ERR_OK);
    CHECK(got == 8 && same(in, 8, 302));
    CHECK(!urpc_pending(&b));
    CHECK_ERR(b.broken, ERR_OK);
    urpc_flush_acks(&b);                /* a learns of all 15 when its ring looks full */

    /* Non-blocking: as many as there is room for, whole messages only. */
    for (uint32_t i = 0; i < 29; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    size_t big[2] = {200, 200};
    batch_fill(o, big, 2, 400);
    before = a.sent;
    CHECK_ERR(urpc_send_batch(&a, o, 2, &sent, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(sent, 0);
    CHECK_EQ(a.sent, before);
    size_t small[13] = {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 200};
    batch_fill(o, small, 13, 500);
    CHECK_ERR(urpc_send_batch(&a, o, 13, &sent, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(sent, 12);                 /* two packed slots; the 200 bytes wait */
    CHECK_EQ(free_slots_of(&a), 0);
    /* Blocking, with a peer that takes nothing: bounded, and says how far. */
    a.timeout_ns = 1000000;
    CHECK_ERR(urpc_send_batch(&a, o + 12, 1, &sent, 0), ERR_TIMEOUT);
    CHECK_EQ(sent, 0);
    CHECK_ERR(a.broken, ERR_OK);
    a.timeout_ns = 0;
    for (uint32_t i = 0; i < 29; i++)
        CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    batch_rooms(r, 12, 8);
    CHECK_ERR(urpc_recv_batch(&b, r, 12, &got, 0), ERR_OK);
    CHECK_EQ(got, 12);
    for (uint32_t i = 0; i < 12; i++)
        CHECK(r[i].len == 8 && same(bin[i], 8, 500 + i));
    CHECK_ERR(urpc_send_batch(&a, NULL, 0, &sent, 0), ERR_OK);
    CHECK_EQ(sent, 0);
    CHECK(guards_intact(&f));
    free(f.mem);
}

/* Laps of batches of random sizes and counts, received by either call. */
static void test_batch_laps(size_t bytes)
{
    struct frame f = frame_new(bytes);
    pair(&f, &a, &b);
    static size_t lens[64];
    struct urpc_out o[64];
    struct urpc_in r[64];
    uint32_t seed = 7, tag = 0, tx_tag = 0;     /* next to receive, next to send */
    bool ok = true;
    for (uint32_t round = 0; round < 20000 && ok; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % 12, sent = 0, got;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            lens[i] = (seed >> 8) % 10 ? (seed >> 16) % 40 : (seed >> 16) % (a.nslots * 56 + 1);
        }
        batch_fill(o, lens, n, tx_tag);
        tx_tag += (uint32_t)n;
        while (sent < n && ok) {
            size_t k = 0;
            errval_t e = urpc_send_batch(&a, o + sent, n - sent, &k, URPC_NONBLOCK);
            ok &= e == ERR_OK || e == ERR_WOULD_BLOCK;
            sent += k;
            /* Take what is there, by batch or one at a time. */
            batch_rooms(r, 64, sizeof bin[0]);
            if (round & 1) {
                e = urpc_recv_batch(&b, r, 1 + round % 64, &got, URPC_NONBLOCK);
                ok &= e == ERR_OK || e == ERR_WOULD_BLOCK;
                for (size_t i = 0; i < got; i++, tag++)
                    ok &= same(bin[i], r[i].len, tag);
            } else {
                while ((e = urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK)) == ERR_OK)
                    ok &= same(in, got, tag++);
                ok &= e == ERR_WOULD_BLOCK;
            }
        }
    }
    size_t got;
    errval_t e;
    while ((e = urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK)) == ERR_OK)
        ok &= same(in, got, tag++);
    CHECK(ok);
    CHECK_ERR(e, ERR_WOULD_BLOCK);
    CHECK_EQ(b.stats.msgs_received, a.stats.msgs_sent);
    CHECK(a.stats.packed_slots_sent > 1000);
    CHECK(a.sent > 10ull * a.nslots);
    CHECK_ERR(b.broken, ERR_OK);
    CHECK(guards_intact(&f));
    free(f.mem);
}

/* A message of fragments taken over several non-blocking calls, each with
 * another buffer: it waits in rbuf between calls, whole in the last one. */
static void test_fragment_polls(void)
{
    struct frame f = frame_new(URPC_MIN_FRAME);     /* 2 slots */
    pair(&f, &a, &b);
    static uint8_t buf1[400], buf2[400], buf3[400];
    size_t got;
    fill(out, 150, 9);
    a.timeout_ns = 1;           /* 3 slots through 2: the sender stops half way */
    CHECK_ERR(urpc_send(&a, out, 150, 0), ERR_TIMEOUT);
    CHECK_EQ(a.sent, 2);
    /* Half a message is all there is: b keeps it in rbuf. Write the last
     * fragment by hand, as a's next slot would be. */
    CHECK_ERR(urpc_recv(&b, buf1, sizeof buf1, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(b.rlen, 112);
    CHECK(b.rparked && same(b.rbuf, 112, 9));
    CHECK_ERR(urpc_recv(&b, buf2, sizeof buf2, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    struct urpc_slot *s = slot_of(&f, 0, 0);
    memcpy(s->payload, out + 112, 38);
    s->header = hdr(3, 0, 38, 2, true);
    CHECK_ERR(urpc_recv(&b, buf3, sizeof buf3, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 150);
    CHECK(same(buf3, 150, 9));
    CHECK(!b.rparked && b.rlen == 0);
    /* Gathered in a small buffer first, then a big one that fits it. */
    struct frame g = frame_new(URPC_MIN_FRAME);
    pair(&g, &a, &b);
    a.timeout_ns = 1;
    CHECK_ERR(urpc_send(&a, out, 150, 0), ERR_TIMEOUT);
    CHECK_ERR(urpc_recv(&b, buf1, 60, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    s = slot_of(&g, 0, 0);
    memcpy(s->payload, out + 112, 38);
    s->header = hdr(3, 0, 38, 2, true);
    CHECK_ERR(urpc_recv(&b, buf2, sizeof buf2, &got, URPC_NONBLOCK), ERR_OK);
    CHECK(got == 150 && same(buf2, 150, 9));
    free(f.mem);
    free(g.mem);
}

/* -- the faulty peer: side 1 is written by hand, side 0 is under test ------ */

struct faulty {
    struct frame f;
    uint8_t snap[16384];    /* side 1's half when the bad data was in place */
};

static void faulty_start(struct faulty *t, size_t bytes)
{
    t->f = frame_new(bytes);
    CHECK_ERR(urpc_init(&a, t->f.base, bytes, 0), ERR_OK);
}

/* Peer slot i of its ring, written as a real sender would (payload first). */
static void peer_slot(struct faulty *t, uint32_t i, uint64_t h)
{
    struct urpc_slot *s = slot_of(&t->f, 1, i);
    for (int w = 0; w < 7; w++)
        s->payload[w] = 0x1111111111111111ull * (uint64_t)(w + 1);
    s->header = h;
}

/* Peer slot i as a packed slot: payload bytes, then the header (len = n,
 * fragment 0, last, packed, unless `h` says otherwise). */
static void peer_packed(struct faulty *t, uint32_t i, uint64_t h, const uint8_t *bytes, size_t n)
{
    struct urpc_slot *s = slot_of(&t->f, 1, i);
    memset(s->payload, 0x77, sizeof s->payload);
    memcpy(s->payload, bytes, n);
    s->header = h;
}

static uint64_t packed_hdr(uint32_t seq, uint32_t len) { return hdr(seq, 0, len, 0, true) | URPC_HDR_PACKED; }

static void faulty_snapshot(struct faulty *t)
{
    memcpy(t->snap, half(&t->f, 1), half_bytes(&t->f));
}

/* The call that meets the bad value says CORRUPT (checked by the caller);
 * every later one BROKEN; the peer's half and the guards are untouched. */
static void faulty_end(struct faulty *t, const char *what)
{
    size_t got;
    int fails = check_failures;
    CHECK_ERR(a.broken, ERR_URPC_BROKEN);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_BROKEN);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, 0), ERR_URPC_BROKEN);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_URPC_BROKEN);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_URPC_BROKEN);
    CHECK(urpc_pending(&a));
    CHECK(memcmp(t->snap, half(&t->f, 1), half_bytes(&t->f)) == 0);
    CHECK(guards_intact(&t->f));
    if (check_failures != fails)
        fprintf(stderr, "    (faulty peer case: %s)\n", what);
    free(t->f.mem);
}

/* One bad slot at the head of the peer's ring, met by a receive. */
static void bad_slot(const char *what, uint64_t h)
{
    struct faulty t;
    size_t got;
    faulty_start(&t, F31);
    peer_slot(&t, 0, h);
    faulty_snapshot(&t);
    CHECK(urpc_pending(&a));
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    faulty_end(&t, what);
}

static void test_faulty_peer(void)
{
    struct faulty t;
    size_t got;

    bad_slot("len > 56", hdr(1, 0, 57, 0, true));
    bad_slot("len 63", hdr(1, 0, 63, 0, true));
    bad_slot("short non-last fragment", hdr(1, 0, 10, 0, false));
    bad_slot("first fragment numbered 5", hdr(1, 0, 56, 5, true));
    bad_slot("seq from the future", hdr(2, 0, 8, 0, true));
    bad_slot("seq far ahead", hdr(0x80000001u, 0, 8, 0, true));
    bad_slot("seq of a lap never run", hdr((uint32_t)(1 - 31), 0, 8, 0, true));
    for (uint64_t r = 1; r <= URPC_HDR_RESERVED; r <<= 1)
        bad_slot("reserved bit", hdr(1, 0, 8, 0, true) | r);
    bad_slot("ack for slots never sent", hdr(1, 1, 8, 0, true));
    bad_slot("ack 0xffff", hdr(1, 0xffff, 8, 0, true));

    /* Packed slots: records must tile the slot's length exactly; packed
     * only as a whole slot between messages. Nothing of a bad slot is
     * delivered. */
    {
        static const uint8_t two[] = {3, 'a', 'b', 'c', 0, 2, 'x', 'y'};   /* 3 records, 8 bytes */
        static const uint8_t over[] = {3, 'a', 'b', 'c', 4, 'x', 'y'};     /* the last runs past 7 */
        static const uint8_t huge[] = {200, 1, 2, 3};
        struct { const char *what; uint64_t h; const uint8_t *p; size_t n; } bad[] = {
            {"packed record past the end", packed_hdr(1, 7), over, sizeof over},
            {"packed slot cut inside its last record", packed_hdr(1, 7), two, 8},
            {"packed record longer than a slot", packed_hdr(1, 4), huge, sizeof huge},
            {"packed slot of nothing", packed_hdr(1, 0), two, 0},
            {"packed, not last", (hdr(1, 0, 8, 0, false) | URPC_HDR_PACKED), two, 8},
            {"packed, not last, full", (hdr(1, 0, 56, 0, false) | URPC_HDR_PACKED), two, 8},
            {"packed fragment 1", (hdr(1, 0, 8, 1, true) | URPC_HDR_PACKED), two, 8},
            {"packed, len 57", packed_hdr(1, 57), two, 8},
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            faulty_start(&t, F31);
            peer_packed(&t, 0, bad[i].h, bad[i].p, bad[i].n);
            faulty_snapshot(&t);
            memset(in, 0xee, 64);
            CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
            CHECK_EQ(in[0], 0xee);
            CHECK_EQ(a.stats.msgs_received, 0);
            faulty_end(&t, bad[i].what);
        }

        /* A packed slot in the middle of a message of fragments. */
        faulty_start(&t, F31);
        peer_slot(&t, 0, hdr(1, 0, 56, 0, false));
        peer_packed(&t, 1, hdr(2, 0, 8, 1, true) | URPC_HDR_PACKED, two, 8);
        faulty_snapshot(&t);
        CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
        faulty_end(&t, "packed slot as fragment 1");
        faulty_start(&t, F31);
        peer_slot(&t, 0, hdr(1, 0, 56, 0, false));
        peer_packed(&t, 1, packed_hdr(2, 8), two, 8);
        faulty_snapshot(&t);
        CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
        faulty_end(&t, "packed slot before the message ended");

        /* Legal: "abc", "", "xy". What the peer writes to the slot after
         * it was taken changes nothing: the records were copied out. */
        faulty_start(&t, F31);
        peer_packed(&t, 0, packed_hdr(1, 8), two, 8);
        CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
        CHECK(got == 3 && memcmp(in, "abc", 3) == 0);
        memset(slot_of(&t.f, 1, 0)->payload, 0xff, 56);
        slot_of(&t.f, 1, 0)->header = ~0ull;
        CHECK(urpc_pending(&a));
        CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
        CHECK_EQ(got, 0);
        CHECK_ERR(urpc_recv(&a, in, 1, &got, URPC_NONBLOCK), ERR_MSG_TOO_LONG);  /* "xy": dropped */
        CHECK_EQ(a.stats.msgs_received, 3);
        CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
        CHECK_ERR(a.broken, ERR_OK);
        CHECK(guards_intact(&t.f));
        free(t.f.mem);
    }

    /* Fragment gap: 0 then 2. The first is taken, the second breaks. */
    faulty_start(&t, F31);
    peer_slot(&t, 0, hdr(1, 0, 56, 0, false));
    peer_slot(&t, 1, hdr(2, 0, 56, 2, true));
    faulty_snapshot(&t);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    CHECK_EQ(a.received, 1);
    faulty_end(&t, "fragment gap");

    /* A repeated fragment number. */
    faulty_start(&t, F31);
    peer_slot(&t, 0, hdr(1, 0, 56, 0, false));
    peer_slot(&t, 1, hdr(2, 0, 56, 0, true));
    faulty_snapshot(&t);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    faulty_end(&t, "fragment repeated");

    /* A new message that starts before the last one ended. */
    faulty_start(&t, F31);
    peer_slot(&t, 0, hdr(1, 0, 56, 0, false));
    faulty_snapshot(&t);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_ERR(a.broken, ERR_OK);
    peer_slot(&t, 1, hdr(2, 0, 30, 0, true));
    faulty_snapshot(&t);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    faulty_end(&t, "unfinished message");

    /* Legal, by hand: a message whose fragments come in separate polls
     * waits in rbuf; an empty last fragment is fine. */
    faulty_start(&t, F31);
    peer_slot(&t, 0, hdr(1, 0, 56, 0, false));
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    peer_slot(&t, 1, hdr(2, 0, 56, 1, false));
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    peer_slot(&t, 2, hdr(3, 0, 0, 2, true));
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 112);
    CHECK_EQ(in[56], 0x11);
    CHECK_ERR(a.broken, ERR_OK);
    free(t.f.mem);

    /* More than URPC_MAX_FRAGS fragments: the 64th may not promise more. */
    faulty_start(&t, 16384);
    for (uint32_t i = 0; i < URPC_MAX_FRAGS; i++)
        peer_slot(&t, i, hdr(i + 1, 0, 56, i, false));
    faulty_snapshot(&t);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    CHECK_EQ(a.received, URPC_MAX_FRAGS - 1);
    faulty_end(&t, "65 fragments");

    /* A slot rewritten with an old sequence after it was taken. */
    faulty_start(&t, URPC_MIN_FRAME);        /* 2 slots */
    peer_slot(&t, 0, hdr(1, 0, 8, 0, true));
    peer_slot(&t, 1, hdr(2, 0, 8, 0, true));
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    peer_slot(&t, 0, hdr(0, 0, 8, 0, true));       /* expected 3 or (empty) 1 */
    faulty_snapshot(&t);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    faulty_end(&t, "slot zeroed after a lap");

    /* Acks: a piggy-backed ack for one more slot than was sent. */
    faulty_start(&t, F31);
    for (int i = 0; i < 3; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    peer_slot(&t, 0, hdr(1, 3, 8, 0, true));
    peer_slot(&t, 1, hdr(2, 4, 8, 0, true));
    faulty_snapshot(&t);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(a.acked, 3);
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    faulty_end(&t, "ack past sent");

    /* Control line: consumed beyond what was sent. */
    faulty_start(&t, F31);
    for (int i = 0; i < 31; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    ctrl_of(&t.f, 1)->consumed = 32;
    faulty_snapshot(&t);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_URPC_CORRUPT);
    CHECK_EQ(a.sent, 31);
    faulty_end(&t, "consumed > sent");

    /* Control line: consumed going backwards. */
    faulty_start(&t, F31);
    for (int i = 0; i < 31; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    ctrl_of(&t.f, 1)->consumed = 20;
    for (int i = 0; i < 20; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    ctrl_of(&t.f, 1)->consumed = 19;
    faulty_snapshot(&t);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_URPC_CORRUPT);   /* blocking: no hang */
    faulty_end(&t, "consumed backwards");

    /* ... while blocked: the blocking send sees it in its wait loop. */
    faulty_start(&t, F31);
    for (int i = 0; i < 31; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    ctrl_of(&t.f, 1)->consumed = 1u << 20;
    faulty_snapshot(&t);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_URPC_CORRUPT);
    faulty_end(&t, "consumed far ahead, blocking");

    /* A control line behind a piggy-backed ack is legal (it is batched),
     * as long as it never goes backwards itself. */
    faulty_start(&t, F31);
    for (int i = 0; i < 31; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    peer_slot(&t, 0, hdr(1, 20, 8, 0, true));
    ctrl_of(&t.f, 1)->consumed = 15;
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    for (int i = 0; i < 20; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_ERR(a.broken, ERR_OK);
    CHECK_EQ(a.acked, 20);
    CHECK(guards_intact(&t.f));
    free(t.f.mem);

    /* The receiver never writes the peer's half, even while a peer fills
     * every byte of it with a pattern and the receiver keeps polling. */
    faulty_start(&t, F31);
    memset(half(&t.f, 1), 0x5a, half_bytes(&t.f));
    faulty_snapshot(&t);
    CHECK(urpc_pending(&a));
    CHECK_ERR(urpc_recv(&a, in, sizeof in, &got, 0), ERR_URPC_CORRUPT);
    faulty_end(&t, "peer half full of 0x5a");
}

/* Hanging up: what was sent before still arrives, then ERR_CHAN_CLOSED;
 * a sender waiting for room a closed peer will never make learns it; the
 * reason travels; a bogus reason reads as ERR_CHAN_CLOSED; closing writes
 * only the closer's own control line. */
static void test_close(void)
{
    struct frame f = frame_new(F31);
    pair(&f, &a, &b);
    size_t got;
    CHECK_ERR(urpc_peer_closed(&b), ERR_OK);
    fill(out, 100, 7);
    CHECK_ERR(urpc_send(&a, out, 100, 0), ERR_OK);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_OK);
    uint8_t before[F31];
    memcpy(before, f.base, f.bytes);
    urpc_close(&a, ERR_DOMAIN_ENDED);
    /* Only the closed word of a's control line (and its acks) changed. */
    bool only_ctrl = true;
    for (size_t i = 0; i < f.bytes; i++)
        if (before[i] != f.base[i] && (i < offsetof(struct urpc_ctrl, closed) ||
                                       i >= offsetof(struct urpc_ctrl, closed) + 8))
            only_ctrl = false;
    CHECK(only_ctrl);
    CHECK_ERR(urpc_peer_closed(&b), ERR_DOMAIN_ENDED);
    CHECK(urpc_pending(&b));
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(got, 100);
    CHECK(same(in, 100, 7));
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, 0), ERR_OK);
    CHECK_EQ(got, 8);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_CHAN_CLOSED);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, 0), ERR_CHAN_CLOSED);   /* blocking: no wait */
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_CHAN_CLOSED);              /* the closer, too */
    CHECK(guards_intact(&f));
    free(f.mem);

    /* A sender whose ring is full, the peer gone: no wait, no timeout. */
    f = frame_new(F31);
    pair(&f, &a, &b);
    for (int i = 0; i < 31; i++)
        CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_OK);
    CHECK_ERR(urpc_send(&a, out, 8, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    urpc_close(&b, ERR_OK);
    CHECK_ERR(urpc_peer_closed(&a), ERR_CHAN_CLOSED);
    CHECK_ERR(urpc_send(&a, out, 8, 0), ERR_CHAN_CLOSED);
    CHECK_ERR(a.broken, ERR_CHAN_CLOSED);
    free(f.mem);

    /* A monitor hangs up for a dead side by attaching as that side. */
    f = frame_new(F31);
    pair(&f, &a, &b);
    struct urpc_chan proxy;
    CHECK_ERR(urpc_init(&proxy, f.base, F31, 0), ERR_OK);
    urpc_close(&proxy, ERR_DOMAIN_ENDED);
    CHECK_ERR(urpc_recv(&b, in, sizeof in, &got, URPC_NONBLOCK), ERR_CHAN_CLOSED);
    /* Whatever a faulty peer writes there reads as a hang-up, never as an
     * error code we would act on. */
    ctrl_of(&f, 0)->closed = 0xdeadbeef;
    CHECK_ERR(urpc_peer_closed(&b), ERR_CHAN_CLOSED);
    CHECK(guards_intact(&f));
    free(f.mem);
}

int main(void)
{
    test_init();
    test_one_slot();
    test_fragments();
    test_small_buffer();
    test_wrap(URPC_MIN_FRAME);
    test_wrap(4096);
    test_acks();
    test_stale_acks();
    test_idle_flush_after_reply();
    test_roundtrip_quiet();
    test_ack_wrap_then_replies();
    test_full_rings();
    test_all_or_nothing();
    test_silent_peer();
    test_batch();
    test_batch_laps(URPC_MIN_FRAME);
    test_batch_laps(4096);
    test_fragment_polls();
    test_faulty_peer();
    test_close();
    return check_done();
}
