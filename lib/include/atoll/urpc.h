/*
 * URPC: cross-core message channels over shared memory, one 64-byte cache
 * line per message slot, no locks and no atomic read-modify-write on the
 * fast path. The same code builds for the guest (lib/) and for the Linux
 * host (tests, benchmarks); only lib/urpc/urpc_os_*.c differ.
 *
 * A duplex channel lives in one shared frame (normally 4 KiB). The frame is
 * cut in two halves; side 0 writes only the first half and side 1 only the
 * second, so every cache line moves one way:
 *
 *   half = [ control ][ sleeping ][ slot 0 ][ slot 1 ] ... [ slot n-1 ]
 *
 * A slot is seven payload words and, last, a header word published with
 * release order (and read with acquire order). The header holds the slot's
 * sequence number, so a receiver tells a new slot from last lap's by
 * comparing it with the sequence it expects next.
 *
 * Acknowledgements travel back on the reverse direction: every header
 * carries how many of the peer's slots its writer has consumed (piggy-
 * backed), and when a side consumes half a ring without sending it also
 * publishes that count in its own control line (batched). A sender that
 * finds its ring full raises `waiting` in its own control line (it reads
 * only the peer's control line, never the headers in its own ring), and a
 * receiver that finds its ring empty while the peer waits publishes its
 * count there. So a round trip moves two lines, one each way, and control
 * lines move only for batches, waits and wake-ups. A sender never waits
 * for a per-message ack, and needs no space in its own ring to ack, so two
 * full rings cannot deadlock. models/urpc.pml checks this with spin.
 *
 * Messages longer than one slot are cut into fragments (at most
 * URPC_MAX_FRAGS) and reassembled by the receiver. A receiver polls, and
 * when a blocking receive has polled for `spin_ns` it raises its sleeping
 * flag and waits to be woken: by an inter-processor interrupt in the guest,
 * a futex on the host. The sender looks at the flag after publishing and
 * wakes the peer only if it sleeps.
 *
 * Either side may hang up (urpc_close): it raises `closed` in its own
 * control line, with a reason. The peer still receives what was sent
 * before, then ERR_CHAN_CLOSED; a send that waits for room that a closed
 * peer will never make returns ERR_CHAN_CLOSED too. When a domain ends,
 * its monitor hangs up its side for it (the monitor maps every frame it
 * handed out), so the peer learns at once.
 *
 * Bad input from the peer (an impossible sequence, length or fragment
 * number, an ack for slots never sent, reserved bits set) breaks the
 * channel: the call returns ERR_URPC_CORRUPT and every later one
 * ERR_URPC_BROKEN. A peer that stops acknowledging makes a blocking send
 * return ERR_TIMEOUT after `timeout_ns`; a non-blocking one returns
 * ERR_WOULD_BLOCK. Nothing is ever written outside the caller's own half.
 */
#ifndef ATOLL_URPC_H
#define ATOLL_URPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define URPC_LINE 64
#define URPC_PAYLOAD 56                       /* bytes of message per slot */
#define URPC_MAX_FRAGS 64
#define URPC_MSG_MAX (URPC_PAYLOAD * URPC_MAX_FRAGS)   /* 3584 bytes */
#define URPC_CTRL_LINES 2                     /* a half's control block (struct urpc_ctrl) */
#define URPC_MIN_FRAME (2 * (URPC_CTRL_LINES + 2) * URPC_LINE)   /* two halves of control + 2 slots */
/* The slots of each ring of a frame of `bytes` (at most 32767, urpc.c). */
#define URPC_RING_SLOTS(bytes) ((bytes) / 2 / URPC_LINE - URPC_CTRL_LINES)

/* Header word: | seq:32 | ack:16 | len:6 | frag:6 | last:1 | packed:1 | reserved:2 | */
#define URPC_HDR_SEQ_SHIFT 32
#define URPC_HDR_ACK_SHIFT 16
#define URPC_HDR_LEN_SHIFT 10
#define URPC_HDR_FRAG_SHIFT 4
#define URPC_HDR_LAST (1ull << 3)
/* A packed slot holds several whole messages (urpc_send_batch): `len`
 * bytes of records, each a length byte and that many bytes. */
#define URPC_HDR_PACKED (1ull << 2)
#define URPC_HDR_RESERVED 0x3ull
#define URPC_PACK_MAX (URPC_PAYLOAD - 1)      /* longest message a packed slot takes */

struct urpc_slot {
    uint64_t payload[7];
    uint64_t header;          /* written last, release */
} __attribute__((aligned(URPC_LINE)));

/* Written only by the side owning the half it heads. Two lines: `sleeping`
 * changes at every sleep and wake-up and the peer reads it at every send,
 * while the peer reads `consumed` and `waiting` whenever it takes messages
 * it has not told of; on one line, each of a sleeper's wake-ups took the
 * line back from its peer, one more transfer on every round trip's
 * critical path (docs/urpc.md, found by the cost model's chain). */
struct urpc_ctrl {
    uint64_t consumed;        /* slots of the peer's ring this side has taken */
    uint64_t closed;          /* nonzero: this side hung up, for this reason (an errval) */
    uint64_t waiting;         /* 1: this side waits for room: publish `consumed` when idle */
    uint64_t pad[5];
    uint64_t sleeping __attribute__((aligned(URPC_LINE)));   /* 1: this side waits to be woken */
    uint32_t doorbell;        /* host: futex word this side bumps to wake the peer */
    uint32_t pad0;
    uint64_t pad1[6];
} __attribute__((aligned(URPC_LINE)));

_Static_assert(sizeof(struct urpc_slot) == URPC_LINE, "a slot is one cache line");
_Static_assert(sizeof(struct urpc_ctrl) == URPC_CTRL_LINES * URPC_LINE, "the control block is its lines");

struct urpc_stats {
    uint64_t msgs_sent, msgs_received;
    uint64_t slots_sent, slots_received;
    uint64_t acks_published;  /* control-line writes (batched acks) */
    uint64_t full_waits;      /* sends that found the ring full */
    uint64_t wakeups_sent;    /* the peer slept: woken by IPI / futex */
    uint64_t sleeps;          /* blocking receives that went to sleep */
    uint64_t packed_slots_sent, packed_slots_received;  /* slots of several messages */
};

struct urpc_chan {
    /* My half (I write) and the peer's (I only read). */
    struct urpc_ctrl *my_ctrl;
    struct urpc_slot *tx;
    const struct urpc_ctrl *peer_ctrl;
    const struct urpc_slot *rx;
    uint32_t nslots;          /* per direction */
    int side;                 /* 0 or 1 */
    errval_t broken;          /* sticky: ERR_OK while the channel is usable */

    uint64_t sent;            /* slots written to tx */
    uint64_t acked;           /* of those, known consumed by the peer */
    uint64_t received;        /* slots consumed from rx */
    uint64_t ack_told;        /* last consumed count the peer has been told */
    uint64_t ctrl_told;       /* of those, the last written to my control line */
    uint64_t hdr_told;        /* the ack my latest header carried */
    uint64_t hdr_acked;       /* latest ack carried by a header (a lower bound) */
    uint64_t peer_consumed;   /* latest peer_ctrl->consumed read */
    bool asking;              /* my `waiting` flag is raised */
    uint32_t tx_next, rx_next; /* ring index of the next slot to write / read */

    /* Reassembly of the message being received. */
    uint32_t frag;            /* next fragment expected (0: none started) */
    uint32_t rlen;            /* its bytes so far */
    bool rparked;             /* they are in rbuf (else in the caller's buffer) */
    /* The packed slot being delivered is copied out of the ring (and
     * checked) into rbuf, free then: packed slots come only between
     * messages, and no slot is read while records are left. */
    uint16_t pk_len, pk_pos;  /* its bytes; the next record's offset */
    uint8_t rbuf[URPC_MSG_MAX];

    /* The sleeping protocol needs a full barrier between a sender's header
     * store and its look at the peer's sleeping flag. With asym_fence the
     * sleeper pays instead: it forces a barrier on every thread of the
     * process (Linux membarrier) when it goes to sleep, and senders need
     * none on the fast path. Set by urpc_init from the platform; both
     * sides of a channel must run with the same setting. */
    bool asym_fence;
    uint64_t spin_ns;         /* blocking receive: poll this long, then sleep */
    uint64_t timeout_ns;      /* blocking send/receive give up after this (0: never) */
    uintptr_t wake_arg;       /* guest: Notify capability to the peer's core */
    struct urpc_stats stats;
};

#define URPC_NONBLOCK 0x1u
/* Send without waking a sleeping peer: it takes the message when it next
 * wakes for anything else. Only for a peer that wakes on its own timers
 * and a message that may wait that long (a monitor's heartbeat): a waking
 * send costs the peer's core an interrupt and a wake-up. A send that must
 * wait for room still wakes it (the room is its to make). Never toward a
 * receiver whose wait has no bound (a blocking urpc_recv with timeout 0 on
 * the host): nothing else may ever wake it. */
#define URPC_NOWAKE 0x2u

/* Attach to a zeroed shared frame as side 0 or 1 (each peer its own side).
 * Writes nothing to the frame. ERR_INVALID_ARG: bad side, misaligned frame
 * or smaller than URPC_MIN_FRAME. */
errval_t urpc_init(struct urpc_chan *c, void *frame, size_t bytes, int side);

/* Send len bytes (0..URPC_MSG_MAX). Blocking unless URPC_NONBLOCK; a
 * non-blocking send of a message that needs k slots sends nothing unless k
 * slots are free (ERR_WOULD_BLOCK). ERR_MSG_TOO_LONG, ERR_TIMEOUT,
 * ERR_URPC_CORRUPT / ERR_URPC_BROKEN. */
errval_t urpc_send(struct urpc_chan *c, const void *msg, size_t len, unsigned flags);

/* Receive one whole message into buf (size bytes); *len is its length.
 * ERR_WOULD_BLOCK (non-blocking, no whole message yet), ERR_TIMEOUT,
 * ERR_CHAN_CLOSED (the peer hung up and everything it sent was taken),
 * ERR_MSG_TOO_LONG (the message was consumed and dropped: it did not fit),
 * ERR_URPC_CORRUPT / ERR_URPC_BROKEN. */
errval_t urpc_recv(struct urpc_chan *c, void *buf, size_t size, size_t *len, unsigned flags);

/* Batches: several messages per call. Small ones travel several to a slot
 * (the receiver takes them apart, with urpc_recv or urpc_recv_batch). */
struct urpc_out {
    const void *data;
    size_t len;
};
struct urpc_in {
    void *data;
    size_t size;              /* room at data */
    size_t len;               /* set: the message's length */
};

/* Send msgs[0..n) in order; consecutive messages of at most URPC_PACK_MAX
 * bytes share slots, longer ones go as urpc_send sends them; the peer is
 * woken once. *sent: how many went. Blocking: all of them, or an error
 * (ERR_TIMEOUT, ...) after *sent. URPC_NONBLOCK: as many as there is room
 * for now; ERR_WOULD_BLOCK only when none went. */
errval_t urpc_send_batch(struct urpc_chan *c, const struct urpc_out *msgs, size_t n, size_t *sent,
                         unsigned flags);

/* Receive up to n messages: the first as urpc_recv does (blocking unless
 * URPC_NONBLOCK), then those already there, without waiting. *got: how many
 * were delivered (msgs[i].len set). An error met after the first (a
 * message too long for msgs[*got], which is dropped; corruption) is
 * returned with the messages before it in *got. */
errval_t urpc_recv_batch(struct urpc_chan *c, struct urpc_in *msgs, size_t n, size_t *got,
                         unsigned flags);

/* True when urpc_recv has something to do: a slot waits in rx (a message
 * may still be incomplete), the peer hung up, the channel broke, or the
 * peer waits for room and our consumed count is not published yet (a
 * receive publishes it, and may then return ERR_WOULD_BLOCK). */
bool urpc_pending(const struct urpc_chan *c);

/* For waiting on many channels at once: raise (or lower) this side's
 * sleeping flag, with a full fence, so that a sender that publishes after
 * it sees the flag and wakes us. After raising, check every channel with
 * urpc_pending() once more before blocking. */
void urpc_set_sleeping(struct urpc_chan *c, bool sleeping);

/* Hang up: raise `closed` in our control line with `reason` (ERR_OK means
 * ERR_CHAN_CLOSED), wake the peer if it sleeps. Every later call on `c`
 * returns ERR_CHAN_CLOSED. */
void urpc_close(struct urpc_chan *c, errval_t reason);
/* ERR_OK while the peer has not hung up; else its reason (ERR_CHAN_CLOSED
 * when the reason it wrote is not an error code). */
errval_t urpc_peer_closed(const struct urpc_chan *c);

/* Publish the consumed count now (normally done every half ring, and when
 * a receive finds the ring empty while the peer waits for room). */
void urpc_flush_acks(struct urpc_chan *c);

/* -- what each platform supplies (lib/urpc/urpc_os_{atoll,host}.c) ------- */
uint64_t urpc_os_now_ns(void);
void urpc_os_relax(void);                                  /* in a spin loop */
/* A value that changes whenever this side may have been woken, read before
 * the last check of the rings: urpc_os_wait() returns at once if it moved. */
uint64_t urpc_os_wait_token(struct urpc_chan *c);
void urpc_os_wait(struct urpc_chan *c, uint64_t token, uint64_t deadline_ns);
void urpc_os_wake_peer(struct urpc_chan *c);
/* Asymmetric fences: true if urpc_os_heavy_fence() works here (once known). */
bool urpc_os_asym_fence(void);
/* A full barrier on every other thread that may send to us (membarrier). */
void urpc_os_heavy_fence(void);

#endif
