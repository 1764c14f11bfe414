/*
 * URPC channels; the design is in <atoll/urpc.h> and docs/urpc.md. Portable
 * and freestanding: the platform (clock, spin hint, sleep and wake) comes
 * from lib/urpc/urpc_os_{atoll,host}.c.
 *
 * Memory order: payload words are plain stores, then the header is stored
 * with release; a reader loads the header with acquire and only then copies
 * the payload. A slot is rewritten only after its writer learned, through
 * an acquire load of a header or of the peer's control line, that the peer
 * consumed it, and the peer publishes that only after its copy: every
 * payload access is ordered by those release/acquire pairs (so
 * ThreadSanitizer sees them too). The only full fences are the two of the
 * sleeping protocol (urpc_set_sleeping and wake_if_sleeping), which also
 * order a sender's `waiting` flag against a sleeper's last look at it.
 *
 * Everything read from the peer's half is checked before it is used: a bad
 * value breaks the channel (ERR_URPC_CORRUPT, then ERR_URPC_BROKEN) and no
 * value from the peer ever becomes an index or a length unchecked, so a
 * faulty peer cannot make us write outside our own half or our buffers.
 *
 * Speed: a message of one slot, sent or received, takes the short paths
 * (send_lone, and the first test in take_slot), a few dozen instructions
 * and no calls; everything else (fragments, packed slots, full rings,
 * waiting) goes the long way. docs/urpc.md says what made the difference.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/string.h>
#include <atoll/urpc.h>

#define LEN_MASK 0x3fu
#define FRAG_MASK 0x3fu
/* The low header bits of a message that is one slot: fragment 0, last,
 * not packed, reserved zero. */
#define LONE_FLAGS URPC_HDR_LAST
#define LOW_FLAGS_MASK ((FRAG_MASK << URPC_HDR_FRAG_SHIFT) | URPC_HDR_LAST | URPC_HDR_PACKED | \
                        URPC_HDR_RESERVED)
/* 16-bit acks stay unambiguous only while a ring is much shorter than 2^16
 * slots; a larger frame simply leaves its tail unused. */
#define MAX_SLOTS 32767u
/* A header's ack may run at most this far ahead of the one its writer's
 * previous header carried: the peer widens it from that one. */
#define ACK_SPAN 0xffffu
/* Poll this many times between two reads of the clock while spinning. */
#define POLLS_PER_CLOCK 32u

/* A full fence, for the sleeping protocol. ThreadSanitizer does not model
 * fences (gcc refuses them under -fsanitize=thread), so there a seq_cst
 * read-modify-write of one shared word stands in: any two are totally
 * ordered and the later synchronizes with the earlier, which gives the
 * same guarantee between a sleeper and a sender. */
#if defined(__SANITIZE_THREAD__)
static uint64_t tsan_fence_word;
static void full_fence(void) { __atomic_fetch_add(&tsan_fence_word, 0, __ATOMIC_SEQ_CST); }
#else
static void full_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
#endif

static uint64_t load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* -- copying payloads -------------------------------------------------------
 * A slot holds at most 56 bytes, and a call to memcpy for so few costs more
 * than the copy: in the guest (-fno-builtin) it is a real call to a
 * `rep movsb`. copy_small copies n <= 56 bytes as two blocks of a power of
 * two that overlap in the middle ([0, b) and [n - b, n) with b <= n < 2b),
 * so it has no loop, and never touches a byte outside [0, n) of either
 * side. __builtin_memcpy of a constant size is inline moves even under
 * -fno-builtin (general registers in the guest, SSE on the host). */
static inline void move4(uint8_t *d, const uint8_t *s) { __builtin_memcpy(d, s, 4); }
static inline void move8(uint8_t *d, const uint8_t *s) { __builtin_memcpy(d, s, 8); }
static inline void move16(uint8_t *d, const uint8_t *s) { __builtin_memcpy(d, s, 16); }
static inline void move32(uint8_t *d, const uint8_t *s) { __builtin_memcpy(d, s, 32); }

static inline void copy_small(void *dst, const void *src, uint32_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (n >= 16) {
        if (n >= 32) {
            move32(d, s);
            move32(d + n - 32, s + n - 32);
        } else {
            move16(d, s);
            move16(d + n - 16, s + n - 16);
        }
    } else if (n >= 8) {
        move8(d, s);
        move8(d + n - 8, s + n - 8);
    } else if (n >= 4) {
        move4(d, s);
        move4(d + n - 4, s + n - 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/* The same, called: for the long paths, so that the copy is inlined only
 * where it is hot (the library stays small: every domain links it). */
static __attribute__((noinline)) void copy_small_call(void *dst, const void *src, uint32_t n)
{
    copy_small(dst, src, n);
}

/* A whole slot's payload (every fragment but a message's last). */
static inline void copy_payload(void *dst, const void *src) { __builtin_memcpy(dst, src, URPC_PAYLOAD); }

errval_t urpc_init(struct urpc_chan *c, void *frame, size_t bytes, int side)
{
    if (!c || !frame || (side != 0 && side != 1) || (uintptr_t)frame % URPC_LINE ||
        bytes < URPC_MIN_FRAME)
        return ERR_INVALID_ARG;
    size_t lines = bytes / 2 / URPC_LINE;          /* per half, control lines first */
    size_t ring = URPC_RING_SLOTS(bytes);
    uint32_t nslots = ring > MAX_SLOTS ? MAX_SLOTS : (uint32_t)ring;
    struct urpc_ctrl *half[2] = {
        (struct urpc_ctrl *)frame,
        (struct urpc_ctrl *)((char *)frame + lines * URPC_LINE),
    };
    memset(c, 0, sizeof(*c));
    c->my_ctrl = half[side];
    c->tx = (struct urpc_slot *)(half[side] + 1);
    c->peer_ctrl = half[!side];
    c->rx = (const struct urpc_slot *)(half[!side] + 1);
    c->nslots = nslots;
    c->side = side;
    c->broken = ERR_OK;
    c->spin_ns = 20000;
    c->timeout_ns = 0;
    c->asym_fence = urpc_os_asym_fence();
    return ERR_OK;
}

/* Remember the first corruption; every later call reports the channel broken. */
static errval_t corrupt(struct urpc_chan *c)
{
    c->broken = ERR_URPC_BROKEN;
    return ERR_URPC_CORRUPT;
}

static uint64_t deadline_after(const struct urpc_chan *c, uint64_t now)
{
    return c->timeout_ns ? now + c->timeout_ns : 0;
}

/* -- hanging up ------------------------------------------------------------ */

errval_t urpc_peer_closed(const struct urpc_chan *c)
{
    uint64_t why = load_acquire(&c->peer_ctrl->closed);
    if (!why)
        return ERR_OK;
    return why < ERR__COUNT ? (errval_t)why : ERR_CHAN_CLOSED;
}

/* The peer hung up: sticky, like a break, but not a corruption. */
static errval_t peer_gone(struct urpc_chan *c)
{
    c->broken = ERR_CHAN_CLOSED;
    return ERR_CHAN_CLOSED;
}

/* -- acknowledgements ------------------------------------------------------ */

static void publish_consumed(struct urpc_chan *c)
{
    store_release(&c->my_ctrl->consumed, c->received);
    c->ack_told = c->received;
    c->ctrl_told = c->received;
    c->stats.acks_published++;
}

/* Compared with what the control line shows, not with what headers told:
 * a peer blocked in a send for space reads only the control line, never
 * the replies waiting in its ring (models/urpc.pml, BUG_IDLE_FLUSH_TOLD). */
void urpc_flush_acks(struct urpc_chan *c)
{
    if (!c->broken && c->received != c->ctrl_told)
        publish_consumed(c);
}

/* The peer waits for room, and our control line does not show all we took:
 * an idle receiver must publish (models/urpc.pml: ASKED). Otherwise it
 * stays quiet: in a round trip the replies' headers carry the acks, and a
 * control line that does not change does not move. */
static inline bool peer_asks(const struct urpc_chan *c)
{
    return c->received != c->ctrl_told && __atomic_load_n(&c->peer_ctrl->waiting, __ATOMIC_RELAXED);
}

/* An ack carried by a header: the low 16 bits of the peer's consumed count.
 * It is widened from the previous header's ack, never from `acked`: the
 * control line may have told us more since this header was written, and
 * headers arrive in order, so the previous header's value is a lower bound
 * of this one. The widened value is then never above the true one, and above
 * `sent` only if the peer lies. */
static inline uint64_t header_ack(const struct urpc_chan *c, uint64_t h)
{
    uint16_t ack16 = (uint16_t)(h >> URPC_HDR_ACK_SHIFT);
    return c->hdr_acked + (uint16_t)(ack16 - (uint16_t)c->hdr_acked);
}

/* Learn a widened header ack, checked (a <= sent). */
static inline void note_header_ack(struct urpc_chan *c, uint64_t a)
{
    c->hdr_acked = a;
    if (a > c->acked)
        c->acked = a;
}

static inline bool take_header_ack(struct urpc_chan *c, uint64_t h)
{
    uint64_t a = header_ack(c, h);
    if (a > c->sent)
        return false;
    note_header_ack(c, a);
    return true;
}

/* The peer's batched ack: never backwards, never past what we sent. */
static bool read_peer_consumed(struct urpc_chan *c)
{
    uint64_t v = load_acquire(&c->peer_ctrl->consumed);
    if (v < c->peer_consumed || v > c->sent)
        return false;
    c->peer_consumed = v;
    if (v > c->acked)
        c->acked = v;
    return true;
}

static inline uint64_t free_slots(const struct urpc_chan *c)
{
    return c->nslots - (c->sent - c->acked);
}

/* -- sending ----------------------------------------------------------------- */

/* Out of line: the send paths then need no registers saved for a call
 * they almost never make. */
static __attribute__((noinline)) void wake_peer(struct urpc_chan *c)
{
    urpc_os_wake_peer(c);
    c->stats.wakeups_sent++;
}

static inline void wake_if_sleeping(struct urpc_chan *c)
{
    /* Pairs with the fence in urpc_set_sleeping: either the peer sees our
     * header (or our `waiting` flag) in its last check, or we see its flag
     * here. With asymmetric
     * fences the sleeper's heavy fence stands for ours; the compiler must
     * still not move the load above the header store. */
    if (c->asym_fence)
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    else
        full_fence();
    if (__atomic_load_n(&c->peer_ctrl->sleeping, __ATOMIC_RELAXED))
        wake_peer(c);
}

/* One send's waiting for space: the clock is read only once it must wait. */
struct send_wait {
    bool full;                      /* found the ring full (counted once) */
    bool timed;                     /* deadline is set */
    uint64_t deadline;              /* 0: never */
};

/* Raise or lower our `waiting` flag: the peer publishes its consumed count
 * when it finds its ring empty only while the flag is up. */
static void set_asking(struct urpc_chan *c, bool asking)
{
    __atomic_store_n(&c->my_ctrl->waiting, asking ? 1 : 0, __ATOMIC_RELAXED);
    c->asking = asking;
}

/* Room: a flag raised by an earlier wait comes down (the first send after a
 * wait takes this path: urpc_send's short path is closed while it is up). */
static inline errval_t room(struct urpc_chan *c)
{
    if (c->asking)
        set_asking(c, false);
    return ERR_OK;
}

/* Whether a sender that needs `need` free slots must ask for acks (raise
 * its `waiting` flag) rather than wait for the peer's half-ring batches.
 * When every ack the peer told is known to us (no unread slot in our rx
 * ring, whose headers may carry acks, and its control line read), the
 * peer, taking what is in our ring, publishes whenever it has taken half a
 * ring since it last told us, so at most nslots / 2 - 1 stay untold: room
 * for nslots - nslots / 2 + 1 comes without asking. A longer need (a
 * message of more slots) or an unread reply (the peer may have told acks
 * only there, and then its batch mark is out of our sight) needs the ask.
 * In a stream the sender then never asks, and its control line stays put
 * (models/urpc.pml: ASK_NEEDED). */
static inline bool must_ask(const struct urpc_chan *c, uint64_t need)
{
    uint64_t h = __atomic_load_n(&c->rx[c->rx_next].header, __ATOMIC_RELAXED);
    return need > c->nslots - c->nslots / 2 + 1 ||
           (uint32_t)(h >> URPC_HDR_SEQ_SHIFT) == (uint32_t)(c->received + 1);
}

/* Until `need` slots are free. ERR_WOULD_BLOCK (non-blocking), ERR_TIMEOUT,
 * ERR_URPC_CORRUPT. */
static errval_t wait_space(struct urpc_chan *c, uint64_t need, bool nonblock, struct send_wait *w)
{
    if (free_slots(c) >= need)
        return room(c);
    if (!read_peer_consumed(c))
        return corrupt(c);
    if (free_slots(c) >= need)
        return room(c);
    if (!w->full) {
        w->full = true;
        c->stats.full_waits++;
    }
    if (urpc_peer_closed(c))
        return peer_gone(c);   /* it will never make room */
    /* Ask for acks when the batches may not bring enough (must_ask): the
     * peer then publishes when it finds its ring empty. The flag, and
     * whatever this call published so far (the first fragments of a
     * message longer than the ring, the first slots of a batch), must not
     * wait on a peer that sleeps without knowing of them: the fence in
     * wake_if_sleeping orders them before our look at its sleeping flag, as
     * its fence orders its flag before its last look at ours.
     * Non-blocking, the flag stays up: the next try finds room sooner. */
    if (!c->asking && must_ask(c, need))
        set_asking(c, true);
    wake_if_sleeping(c);
    if (nonblock)
        return ERR_WOULD_BLOCK;
    if (!w->timed) {
        w->timed = true;
        w->deadline = deadline_after(c, urpc_os_now_ns());
    }
    for (uint32_t n = 1;; n++) {
        urpc_os_relax();
        if (!read_peer_consumed(c))
            return corrupt(c);
        if (free_slots(c) >= need)
            return room(c);
        if (!c->asking && must_ask(c, need)) {
            /* A reply came meanwhile (its header may tell what the peer's
             * control line will not): ask, and wake it as above. */
            set_asking(c, true);
            wake_if_sleeping(c);
        }
        if (n % POLLS_PER_CLOCK == 0 && urpc_peer_closed(c))
            return peer_gone(c);
        if (w->deadline && n % POLLS_PER_CLOCK == 0 && urpc_os_now_ns() >= w->deadline) {
            set_asking(c, false);
            return ERR_TIMEOUT;
        }
    }
}

/* Publish the next slot: its payload (already written by the caller) and
 * then its header. `low` is the header's low 16 bits (len, frag, flags). */
static inline void publish_slot(struct urpc_chan *c, struct urpc_slot *s, uint64_t low)
{
    c->sent++;
    /* Piggy-backed: what we consumed, but never more than ACK_SPAN past our
     * previous header's ack, or the peer would widen the 16 bits to a value
     * 2^16 too low, and from then on every later one too (after a one-way
     * stream of 2^16 slots, say: models/urpc.pml, BUG_ACK_WRAP). */
    uint64_t ack = c->received - c->hdr_told > ACK_SPAN ? c->hdr_told + ACK_SPAN : c->received;
    uint64_t h = (uint64_t)(uint32_t)c->sent << URPC_HDR_SEQ_SHIFT |
                 (uint64_t)(uint16_t)ack << URPC_HDR_ACK_SHIFT | low;
    store_release(&s->header, h);
    c->hdr_told = ack;
    if (ack > c->ack_told)
        c->ack_told = ack;
    if (++c->tx_next == c->nslots)
        c->tx_next = 0;
    c->stats.slots_sent++;
}

static inline uint64_t low_bits(uint32_t len, uint32_t frag, uint64_t flags)
{
    return (uint64_t)len << URPC_HDR_LEN_SHIFT | (uint64_t)frag << URPC_HDR_FRAG_SHIFT | flags;
}

/* A message of at most one slot into a free slot. */
static inline void send_lone(struct urpc_chan *c, const void *msg, uint32_t len)
{
    struct urpc_slot *s = &c->tx[c->tx_next];
    copy_small(s->payload, msg, len);
    publish_slot(c, s, low_bits(len, 0, URPC_HDR_LAST));
    c->stats.msgs_sent++;
}

/* One message, any length, without the final wake-up: all or nothing when
 * it fits the ring (a timeout sends nothing); a message longer than the
 * ring is streamed, and a timeout in its middle breaks the channel. */
static errval_t send_one(struct urpc_chan *c, const void *msg, size_t len, bool nonblock,
                         struct send_wait *w)
{
    if (len > URPC_MSG_MAX)
        return ERR_MSG_TOO_LONG;
    uint32_t k = len ? (uint32_t)((len + URPC_PAYLOAD - 1) / URPC_PAYLOAD) : 1;
    /* All or nothing: a non-blocking send that can never find k free
     * slots would report "try again" forever. */
    if (nonblock && k > c->nslots)
        return ERR_MSG_TOO_LONG;
    /* Wait for the whole message when it fits, so a timeout sends nothing. */
    errval_t err = wait_space(c, k < c->nslots ? k : c->nslots, nonblock, w);
    if (err)
        return err;
    if (k == 1) {
        send_lone(c, msg, (uint32_t)len);
        return ERR_OK;
    }
    const uint8_t *p = msg;
    for (uint32_t f = 0; f < k; f++) {
        if (free_slots(c) == 0) {
            /* Longer than the ring: wait_space wakes the peer first, which
             * may sleep through what we published so far. */
            err = wait_space(c, 1, false, w);
            if (err == ERR_TIMEOUT)
                c->broken = ERR_URPC_BROKEN;    /* the peer holds half a message */
            if (err)
                return err;
        }
        struct urpc_slot *s = &c->tx[c->tx_next];
        if (f + 1 < k) {
            copy_payload(s->payload, p + (size_t)f * URPC_PAYLOAD);
            publish_slot(c, s, low_bits(URPC_PAYLOAD, f, 0));
        } else {
            uint32_t n = (uint32_t)(len - (size_t)f * URPC_PAYLOAD);
            copy_small_call(s->payload, p + (size_t)f * URPC_PAYLOAD, n);
            publish_slot(c, s, low_bits(n, f, URPC_HDR_LAST));
        }
    }
    c->stats.msgs_sent++;
    return ERR_OK;
}

static __attribute__((noinline)) errval_t send_slow(struct urpc_chan *c, const void *msg, size_t len,
                                                    unsigned flags)
{
    if (c->broken)
        return c->broken;
    struct send_wait w = { false, false, 0 };
    errval_t err = send_one(c, msg, len, flags & URPC_NONBLOCK, &w);
    if (!err && !(flags & URPC_NOWAKE))
        wake_if_sleeping(c);
    return err;
}

/* A side that sends is awake, and an answer may come: its own flag, if a
 * waitset left it up through a wake-up for its timers (<atoll/waitset.h>),
 * goes down, or every answer would ring a core that is not asleep. Not
 * for URPC_NOWAKE: such a message (a heartbeat) expects no answer. */
static inline void sender_awake(struct urpc_chan *c, unsigned flags)
{
    if (!c->broken && !(flags & URPC_NOWAKE) && __atomic_load_n(&c->my_ctrl->sleeping, __ATOMIC_RELAXED))
        urpc_set_sleeping(c, false);
}

errval_t urpc_send(struct urpc_chan *c, const void *msg, size_t len, unsigned flags)
{
    sender_awake(c, flags);
    /* The common case: one slot, the ring known to have room, and no
     * `waiting` flag to lower (wait_space does that). */
    if (c->broken || c->asking || len > URPC_PAYLOAD || c->sent - c->acked >= c->nslots)
        return send_slow(c, msg, len, flags);
    send_lone(c, msg, (uint32_t)len);
    if (!(flags & URPC_NOWAKE))
        wake_if_sleeping(c);
    return ERR_OK;
}

/* Whether a and b can share a slot (a packed slot carries at least two). */
static inline bool packable(const struct urpc_out *a, const struct urpc_out *b)
{
    return a->len <= URPC_PACK_MAX && b->len <= URPC_PACK_MAX &&
           2 + a->len + b->len <= URPC_PAYLOAD;
}

/* As many of msgs[0..n) as fit (at least two: the caller checked) into
 * one packed slot, for which the caller made room. Returns how many. */
static size_t send_packed(struct urpc_chan *c, const struct urpc_out *msgs, size_t n)
{
    struct urpc_slot *s = &c->tx[c->tx_next];
    uint8_t *p = (uint8_t *)s->payload;
    uint32_t used = 0;
    size_t i = 0;
    for (; i < n && msgs[i].len <= URPC_PACK_MAX && used + 1 + msgs[i].len <= URPC_PAYLOAD; i++) {
        uint32_t len = (uint32_t)msgs[i].len;
        p[used] = (uint8_t)len;
        copy_small(p + used + 1, msgs[i].data, len);
        used += 1 + len;
    }
    publish_slot(c, s, low_bits(used, 0, URPC_HDR_LAST | URPC_HDR_PACKED));
    c->stats.msgs_sent += i;
    c->stats.packed_slots_sent++;
    return i;
}

errval_t urpc_send_batch(struct urpc_chan *c, const struct urpc_out *msgs, size_t n, size_t *sent,
                         unsigned flags)
{
    size_t i = 0;
    errval_t err = c->broken;
    bool nonblock = flags & URPC_NONBLOCK;
    struct send_wait w = { false, false, 0 };
    sender_awake(c, flags);
    while (!err && i < n) {
        if (i + 1 < n && packable(&msgs[i], &msgs[i + 1])) {
            err = wait_space(c, 1, nonblock, &w);
            if (!err)
                i += send_packed(c, msgs + i, n - i);
        } else if (msgs[i].len <= URPC_PAYLOAD && free_slots(c) && !c->asking) {
            send_lone(c, msgs[i].data, (uint32_t)msgs[i].len);
            i++;
        } else {
            err = send_one(c, msgs[i].data, msgs[i].len, nonblock, &w);
            if (!err)
                i++;
        }
    }
    if (i)
        wake_if_sleeping(c);
    if (sent)
        *sent = i;
    /* Non-blocking: a part sent is success; nothing sent says why. */
    return err == ERR_WOULD_BLOCK && i ? ERR_OK : err;
}

/* -- receiving --------------------------------------------------------------- */

/* The header a slot holds while the next one we expect is not there yet:
 * never written (first lap) or last lap's. */
static inline uint32_t empty_seq(const struct urpc_chan *c)
{
    uint64_t k = c->received + 1;
    return k > c->nslots ? (uint32_t)(k - c->nslots) : 0;
}

bool urpc_pending(const struct urpc_chan *c)
{
    if (c->broken || c->pk_pos < c->pk_len)
        return true;                /* broken: so a waiter calls urpc_recv and learns it */
    uint64_t h = load_acquire(&c->rx[c->rx_next].header);
    /* A hang-up counts too, but only once the ring is dry (it is read
     * after the header: what was sent before it is taken first); and so
     * does a peer waiting for acks we hold (a receive publishes them: this
     * is a sleeper's last look at the peer's `waiting` flag). */
    return (uint32_t)(h >> URPC_HDR_SEQ_SHIFT) != empty_seq(c) || urpc_peer_closed(c) ||
           peer_asks(c);
}

/* The slot at rx_next is taken: count it, and tell the peer every half
 * ring (the batched ack). */
static inline void consume_slot(struct urpc_chan *c)
{
    c->received++;
    if (++c->rx_next == c->nslots)
        c->rx_next = 0;
    c->stats.slots_received++;
    if (c->received - c->ack_told >= c->nslots / 2)
        publish_consumed(c);
}

/* The next record of the packed slot copied to c->rbuf (checked when it
 * was taken: every record lies inside pk_len). */
static inline errval_t take_record(struct urpc_chan *c, void *buf, size_t size, size_t *len)
{
    uint32_t n = c->rbuf[c->pk_pos];
    const uint8_t *p = c->rbuf + c->pk_pos + 1;
    c->pk_pos = (uint16_t)(c->pk_pos + 1 + n);
    c->stats.msgs_received++;
    if (n > size)
        return ERR_MSG_TOO_LONG;    /* consumed and dropped */
    copy_small(buf, p, n);
    if (len)
        *len = n;
    return ERR_OK;
}

/* A packed slot: copy its records to our own c->rbuf (the peer can change
 * its half under us; our copy it cannot) and check that they tile exactly
 * its n bytes, before the slot is taken. rbuf is free: no message of
 * fragments is under way (the caller checked the fragment number). */
static bool take_packed(struct urpc_chan *c, const struct urpc_slot *s, uint32_t n)
{
    copy_small_call(c->rbuf, s->payload, n);
    uint32_t pos = 0;
    while (pos < n)
        pos += 1 + (uint32_t)c->rbuf[pos];
    if (pos != n)
        return false;
    c->pk_len = (uint16_t)n;
    c->pk_pos = 0;
    c->stats.packed_slots_received++;
    return true;
}

/* A part of a message still coming goes to our c->rbuf, where the next call
 * finds it (its buffer may be another). */
static void park(struct urpc_chan *c, const uint8_t *at)
{
    if (c->rlen && at != c->rbuf)
        __builtin_memcpy(c->rbuf, at, c->rlen);
    c->rparked = c->rlen != 0;
}

/* Take slots until a whole message is in; ERR_WOULD_BLOCK when the ring
 * runs dry first (what was taken stays in c->rbuf).
 *
 * A message of fragments is gathered straight into the caller's buffer
 * while it fits; it moves to c->rbuf when it outgrows the buffer (to be
 * dropped whole at the end, as ERR_MSG_TOO_LONG) or when the ring runs dry
 * in its middle. Bounded: frag < URPC_MAX_FRAGS and every fragment but the
 * last is exactly URPC_PAYLOAD, so rlen + n <= sizeof(c->rbuf). */
static __attribute__((noinline)) errval_t take_slow(struct urpc_chan *c, void *buf, size_t size,
                                                    size_t *len)
{
    if (c->pk_pos < c->pk_len)
        return take_record(c, buf, size, len);
    uint8_t *acc = c->rparked ? c->rbuf : buf;   /* where this message's bytes gather */
    for (;;) {
        const struct urpc_slot *s = &c->rx[c->rx_next];
        uint64_t h = load_acquire(&s->header);
        uint32_t seq = (uint32_t)(h >> URPC_HDR_SEQ_SHIFT);
        if (seq != (uint32_t)(c->received + 1)) {
            if (seq != empty_seq(c))
                return corrupt(c);
            /* Dry. A peer that hung up published `closed` after its last
             * header: read it now, and every slot it sent is behind us. */
            if (urpc_peer_closed(c) && load_acquire(&s->header) == h)
                return peer_gone(c);
            park(c, acc);
            /* Idle: a sender waiting for room learns everything we took
             * (it reads only our control line), so it never waits on us
             * while we sleep; a sender that does not wait learns it from
             * our next header or batch. */
            if (peer_asks(c))
                publish_consumed(c);
            return ERR_WOULD_BLOCK;
        }
        uint32_t n = (h >> URPC_HDR_LEN_SHIFT) & LEN_MASK;
        if (n > URPC_PAYLOAD || !take_header_ack(c, h))
            return corrupt(c);
        uint32_t frag = (h >> URPC_HDR_FRAG_SHIFT) & FRAG_MASK;
        bool last = h & URPC_HDR_LAST;
        if ((h & URPC_HDR_RESERVED) || frag != c->frag ||
            (!last && (n != URPC_PAYLOAD || frag + 1 == URPC_MAX_FRAGS)))
            return corrupt(c);
        if (h & URPC_HDR_PACKED) {
            /* Several whole messages: only between messages, in one slot. */
            if (frag != 0 || !last || n == 0 || !take_packed(c, s, n))
                return corrupt(c);
            consume_slot(c);
            return take_record(c, buf, size, len);
        }
        if (acc == buf && c->rlen + n > size) {
            /* Too long for the caller: keep it whole in rbuf, drop it at the end. */
            if (c->rlen)
                __builtin_memcpy(c->rbuf, buf, c->rlen);
            acc = c->rbuf;
        }
        if (last)
            copy_small_call(acc + c->rlen, s->payload, n);
        else
            copy_payload(acc + c->rlen, s->payload);
        c->rlen += n;
        consume_slot(c);
        if (!last) {
            c->frag++;
            continue;
        }
        size_t total = c->rlen;
        c->frag = 0;
        c->rlen = 0;
        c->rparked = false;
        c->stats.msgs_received++;
        if (total > size)
            return ERR_MSG_TOO_LONG;    /* consumed and dropped */
        if (acc != buf)
            __builtin_memcpy(buf, acc, total);
        if (len)
            *len = total;
        return ERR_OK;
    }
}

/* The short path: the next slot is a whole message that fits, and no
 * message is half taken (nor a packed slot: the caller looked). Every check is made before anything changes, so
 * anything else (including anything wrong) is left to take_slow. */
static inline bool take_lone(struct urpc_chan *c, void *buf, size_t size, size_t *len)
{
    if (c->frag)
        return false;
    const struct urpc_slot *s = &c->rx[c->rx_next];
    uint64_t h = load_acquire(&s->header);
    uint32_t n = (h >> URPC_HDR_LEN_SHIFT) & LEN_MASK;
    uint64_t a = header_ack(c, h);
    if ((uint32_t)(h >> URPC_HDR_SEQ_SHIFT) != (uint32_t)(c->received + 1) ||
        (h & LOW_FLAGS_MASK) != LONE_FLAGS || n > URPC_PAYLOAD || n > size || a > c->sent)
        return false;
    note_header_ack(c, a);
    copy_small(buf, s->payload, n);
    consume_slot(c);
    c->stats.msgs_received++;
    if (len)
        *len = n;
    return true;
}

static inline errval_t take(struct urpc_chan *c, void *buf, size_t size, size_t *len)
{
    if (c->pk_pos < c->pk_len)
        return take_record(c, buf, size, len);
    return take_lone(c, buf, size, len) ? ERR_OK : take_slow(c, buf, size, len);
}

void urpc_close(struct urpc_chan *c, errval_t reason)
{
    if (c->broken == ERR_CHAN_CLOSED && c->my_ctrl->closed)
        return;
    urpc_flush_acks(c);
    store_release(&c->my_ctrl->closed, reason ? (uint64_t)reason : (uint64_t)ERR_CHAN_CLOSED);
    wake_if_sleeping(c);
    c->broken = ERR_CHAN_CLOSED;
}

void urpc_set_sleeping(struct urpc_chan *c, bool sleeping)
{
    /* A flag that already says so is not written again: the peer reads
     * this line at every send (to know whether to wake us), so each store
     * would move it to us and back, and an idle core that wakes for its
     * timers would cost every peer that sends to it a line transfer per
     * wake-up. A flag raised before
     * was fenced then; the checks after it are still ordered behind it. */
    if (__atomic_load_n(&c->my_ctrl->sleeping, __ATOMIC_RELAXED) == (sleeping ? 1u : 0u))
        return;
    __atomic_store_n(&c->my_ctrl->sleeping, sleeping ? 1 : 0, __ATOMIC_RELAXED);
    /* Pairs with the fence in wake_if_sleeping (see there). Lowering the
     * flag needs no heavy fence: a late wake-up is only a spurious one. */
    if (c->asym_fence && sleeping)
        urpc_os_heavy_fence();
    else
        full_fence();
}

/* A blocking receive that found nothing: poll, then sleep, until a whole
 * message is in. The clock is first read after one round of polls, so a
 * message that comes at once (the round trip) costs no clock read. */
static __attribute__((noinline)) errval_t recv_wait(struct urpc_chan *c, void *buf, size_t size,
                                                   size_t *len)
{
    uint64_t start = 0, deadline = 0;
    bool started = false;
    bool spin = c->spin_ns != 0;
    for (;;) {
        if (spin) {
            /* Poll: one load per round while nothing comes. */
            for (uint32_t n = 0; n < POLLS_PER_CLOCK && !urpc_pending(c); n++)
                urpc_os_relax();
        } else {
            if (!started) {
                start = urpc_os_now_ns();
                deadline = deadline_after(c, start);
                started = true;
            }
            /* Sleep. The token is read before the last check, so a wake
             * that comes after it makes urpc_os_wait return at once. */
            uint64_t token = urpc_os_wait_token(c);
            urpc_set_sleeping(c, true);
            if (!urpc_pending(c)) {
                c->stats.sleeps++;
                urpc_os_wait(c, token, deadline);
            }
            urpc_set_sleeping(c, false);
        }
        if (urpc_pending(c)) {
            errval_t err = take(c, buf, size, len);
            if (err != ERR_WOULD_BLOCK)
                return err;
        }
        uint64_t now = urpc_os_now_ns();
        if (!started) {
            start = now;
            deadline = deadline_after(c, start);
            started = true;
        }
        if (deadline && now >= deadline)
            return ERR_TIMEOUT;
        spin = now - start < c->spin_ns;
    }
}

static __attribute__((noinline)) errval_t recv_slow(struct urpc_chan *c, void *buf, size_t size,
                                                    size_t *len, unsigned flags)
{
    if (c->broken)
        return c->broken;
    errval_t err = take_slow(c, buf, size, len);
    if (err != ERR_WOULD_BLOCK || (flags & URPC_NONBLOCK))
        return err;
    return recv_wait(c, buf, size, len);
}

errval_t urpc_recv(struct urpc_chan *c, void *buf, size_t size, size_t *len, unsigned flags)
{
    if (!c->broken) {
        if (c->pk_pos < c->pk_len)
            return take_record(c, buf, size, len);
        if (take_lone(c, buf, size, len))
            return ERR_OK;
    }
    return recv_slow(c, buf, size, len, flags);
}

errval_t urpc_recv_batch(struct urpc_chan *c, struct urpc_in *msgs, size_t n, size_t *got,
                         unsigned flags)
{
    if (n == 0) {
        if (got)
            *got = 0;
        return c->broken;
    }
    size_t i = 0;
    errval_t err = urpc_recv(c, msgs[0].data, msgs[0].size, &msgs[0].len, flags);
    if (!err)
        for (i = 1; i < n; i++) {
            err = take(c, msgs[i].data, msgs[i].size, &msgs[i].len);
            if (err)
                break;
        }
    if (got)
        *got = i;
    /* What is there was taken: the ring running dry after it is no error. */
    return err == ERR_WOULD_BLOCK && i ? ERR_OK : err;
}
