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
 * sleeping protocol (urpc_set_sleeping and wake_if_sleeping).
 *
 * Everything read from the peer's half is checked before it is used: a bad
 * value breaks the channel (ERR_URPC_CORRUPT, then ERR_URPC_BROKEN) and no
 * value from the peer ever becomes an index or a length unchecked, so a
 * faulty peer cannot make us write outside our own half or our buffers.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/string.h>
#include <atoll/urpc.h>

#define LEN_MASK 0x3fu
#define FRAG_MASK 0x3fu
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

errval_t urpc_init(struct urpc_chan *c, void *frame, size_t bytes, int side)
{
    if (!c || !frame || (side != 0 && side != 1) || (uintptr_t)frame % URPC_LINE ||
        bytes < URPC_MIN_FRAME)
        return ERR_INVALID_ARG;
    size_t lines = bytes / 2 / URPC_LINE;          /* per half, control line first */
    uint32_t nslots = lines - 1 > MAX_SLOTS ? MAX_SLOTS : (uint32_t)(lines - 1);
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

/* An ack carried by a header: the low 16 bits of the peer's consumed count.
 * It is widened from the previous header's ack, never from `acked`: the
 * control line may have told us more since this header was written, and
 * headers arrive in order, so the previous header's value is a lower bound
 * of this one. The widened value is then never above the true one, and above
 * `sent` only if the peer lies. */
static bool take_header_ack(struct urpc_chan *c, uint16_t ack16)
{
    uint64_t a = c->hdr_acked + (uint16_t)(ack16 - (uint16_t)c->hdr_acked);
    if (a > c->sent)
        return false;
    c->hdr_acked = a;
    if (a > c->acked)
        c->acked = a;
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

static uint64_t free_slots(const struct urpc_chan *c)
{
    return c->nslots - (c->sent - c->acked);
}

/* -- sending ----------------------------------------------------------------- */

static void wake_if_sleeping(struct urpc_chan *c)
{
    /* Pairs with the fence in urpc_set_sleeping: either the peer sees our
     * header in its last check, or we see its flag here. With asymmetric
     * fences the sleeper's heavy fence stands for ours; the compiler must
     * still not move the load above the header store. */
    if (c->asym_fence)
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    else
        full_fence();
    if (__atomic_load_n(&c->peer_ctrl->sleeping, __ATOMIC_RELAXED)) {
        urpc_os_wake_peer(c);
        c->stats.wakeups_sent++;
    }
}

/* One send's waiting for space: the clock is read only once it must wait. */
struct send_wait {
    bool full;                      /* found the ring full (counted once) */
    bool timed;                     /* deadline is set */
    uint64_t deadline;              /* 0: never */
};

/* Until `need` slots are free. ERR_WOULD_BLOCK (non-blocking), ERR_TIMEOUT,
 * ERR_URPC_CORRUPT. */
static errval_t wait_space(struct urpc_chan *c, uint64_t need, bool nonblock, struct send_wait *w)
{
    if (free_slots(c) >= need)
        return ERR_OK;
    if (!read_peer_consumed(c))
        return corrupt(c);
    if (free_slots(c) >= need)
        return ERR_OK;
    if (!w->full) {
        w->full = true;
        c->stats.full_waits++;
    }
    if (urpc_peer_closed(c))
        return peer_gone(c);   /* it will never make room */
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
            return ERR_OK;
        if (n % POLLS_PER_CLOCK == 0 && urpc_peer_closed(c))
            return peer_gone(c);
        if (w->deadline && n % POLLS_PER_CLOCK == 0 && urpc_os_now_ns() >= w->deadline)
            return ERR_TIMEOUT;
    }
}

static void put_slot(struct urpc_chan *c, const uint8_t *p, uint32_t len, uint32_t frag, bool last)
{
    struct urpc_slot *s = &c->tx[c->tx_next];
    if (len)
        memcpy(s->payload, p, len);
    c->sent++;
    /* Piggy-backed: what we consumed, but never more than ACK_SPAN past our
     * previous header's ack, or the peer would widen the 16 bits to a value
     * 2^16 too low, and from then on every later one too (after a one-way
     * stream of 2^16 slots, say: models/urpc.pml, BUG_ACK_WRAP). */
    uint64_t ack = c->received - c->hdr_told > ACK_SPAN ? c->hdr_told + ACK_SPAN : c->received;
    uint64_t h = (uint64_t)(uint32_t)c->sent << URPC_HDR_SEQ_SHIFT |
                 (uint64_t)(uint16_t)ack << URPC_HDR_ACK_SHIFT |
                 (uint64_t)len << URPC_HDR_LEN_SHIFT | (uint64_t)frag << URPC_HDR_FRAG_SHIFT |
                 (last ? URPC_HDR_LAST : 0);
    store_release(&s->header, h);
    c->hdr_told = ack;
    if (ack > c->ack_told)
        c->ack_told = ack;
    if (++c->tx_next == c->nslots)
        c->tx_next = 0;
    c->stats.slots_sent++;
}

errval_t urpc_send(struct urpc_chan *c, const void *msg, size_t len, unsigned flags)
{
    if (c->broken)
        return c->broken;
    if (len > URPC_MSG_MAX)
        return ERR_MSG_TOO_LONG;
    bool nonblock = flags & URPC_NONBLOCK;
    uint32_t k = len ? (uint32_t)((len + URPC_PAYLOAD - 1) / URPC_PAYLOAD) : 1;
    /* All or nothing: a non-blocking send that can never find k free
     * slots would report "try again" forever. */
    if (nonblock && k > c->nslots)
        return ERR_MSG_TOO_LONG;
    struct send_wait w = { false, false, 0 };
    /* Wait for the whole message when it fits, so a timeout sends nothing. */
    errval_t err = wait_space(c, k < c->nslots ? k : c->nslots, nonblock, &w);
    if (err)
        return err;
    const uint8_t *p = msg;
    for (uint32_t f = 0; f < k; f++) {
        if (free_slots(c) == 0) {
            /* Longer than the ring: the peer may sleep through what we
             * published so far unless we wake it before waiting. */
            wake_if_sleeping(c);
            err = wait_space(c, 1, false, &w);
            if (err == ERR_TIMEOUT)
                c->broken = ERR_URPC_BROKEN;    /* the peer holds half a message */
            if (err)
                return err;
        }
        uint32_t n = f + 1 < k ? URPC_PAYLOAD : (uint32_t)(len - (size_t)f * URPC_PAYLOAD);
        put_slot(c, p + (size_t)f * URPC_PAYLOAD, n, f, f + 1 == k);
    }
    c->stats.msgs_sent++;
    wake_if_sleeping(c);
    return ERR_OK;
}

/* -- receiving --------------------------------------------------------------- */

/* The header a slot holds while the next one we expect is not there yet:
 * never written (first lap) or last lap's. */
static uint32_t empty_seq(const struct urpc_chan *c)
{
    uint64_t k = c->received + 1;
    return k > c->nslots ? (uint32_t)(k - c->nslots) : 0;
}

bool urpc_pending(const struct urpc_chan *c)
{
    if (c->broken)
        return true;                /* so a waiter calls urpc_recv and learns it */
    uint64_t h = load_acquire(&c->rx[c->rx_next].header);
    /* A hang-up counts too, but only once the ring is dry (it is read
     * after the header: what was sent before it is taken first). */
    return (uint32_t)(h >> URPC_HDR_SEQ_SHIFT) != empty_seq(c) || urpc_peer_closed(c);
}

/* Take slots until a whole message is in; ERR_WOULD_BLOCK when the ring
 * runs dry first (what was taken stays in c->rbuf). */
static errval_t take(struct urpc_chan *c, void *buf, size_t size, size_t *len)
{
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
            /* Idle: tell the peer everything we took, so a sender waiting
             * for more than half a ring never waits on us while we sleep. */
            urpc_flush_acks(c);
            return ERR_WOULD_BLOCK;
        }
        uint32_t n = (h >> URPC_HDR_LEN_SHIFT) & LEN_MASK;
        uint32_t frag = (h >> URPC_HDR_FRAG_SHIFT) & FRAG_MASK;
        bool last = h & URPC_HDR_LAST;
        if ((h & URPC_HDR_RESERVED) || n > URPC_PAYLOAD || frag != c->frag ||
            (!last && (n != URPC_PAYLOAD || frag + 1 == URPC_MAX_FRAGS)))
            return corrupt(c);
        if (!take_header_ack(c, (uint16_t)(h >> URPC_HDR_ACK_SHIFT)))
            return corrupt(c);
        /* Bounded: frag < URPC_MAX_FRAGS and every earlier fragment was
         * exactly URPC_PAYLOAD, so rlen + n <= sizeof(c->rbuf). A lone slot
         * that fits goes straight to the caller. */
        bool direct = frag == 0 && last && n <= size;
        if (n)
            memcpy(direct ? buf : c->rbuf + c->rlen, s->payload, n);
        c->rlen += n;
        c->received++;
        if (++c->rx_next == c->nslots)
            c->rx_next = 0;
        c->stats.slots_received++;
        if (c->received - c->ack_told >= c->nslots / 2)
            publish_consumed(c);
        if (!last) {
            c->frag++;
            continue;
        }
        size_t total = c->rlen;
        c->frag = 0;
        c->rlen = 0;
        c->stats.msgs_received++;
        if (total > size)
            return ERR_MSG_TOO_LONG;    /* consumed and dropped */
        if (!direct && total)
            memcpy(buf, c->rbuf, total);
        if (len)
            *len = total;
        return ERR_OK;
    }
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
    __atomic_store_n(&c->my_ctrl->sleeping, sleeping ? 1 : 0, __ATOMIC_RELAXED);
    /* Pairs with the fence in wake_if_sleeping (see there). Lowering the
     * flag needs no heavy fence: a late wake-up is only a spurious one. */
    if (c->asym_fence && sleeping)
        urpc_os_heavy_fence();
    else
        full_fence();
}

errval_t urpc_recv(struct urpc_chan *c, void *buf, size_t size, size_t *len, unsigned flags)
{
    if (c->broken)
        return c->broken;
    errval_t err = take(c, buf, size, len);
    if (err != ERR_WOULD_BLOCK || (flags & URPC_NONBLOCK))
        return err;
    uint64_t start = urpc_os_now_ns();
    uint64_t deadline = deadline_after(c, start);
    bool spin = c->spin_ns != 0;
    for (;;) {
        if (spin) {
            /* Poll: one load per round while nothing comes; the clock is
             * read only between rounds. */
            for (uint32_t n = 0; n < POLLS_PER_CLOCK && !urpc_pending(c); n++)
                urpc_os_relax();
        } else {
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
            err = take(c, buf, size, len);
            if (err != ERR_WOULD_BLOCK)
                return err;
        }
        uint64_t now = urpc_os_now_ns();
        if (deadline && now >= deadline)
            return ERR_TIMEOUT;
        spin = now - start < c->spin_ns;
    }
}
