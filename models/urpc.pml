/*
 * The URPC channel protocol (lib/urpc/urpc.c, docs/urpc.md) as a Promela
 * model for spin: two sides of one duplex channel, each sending its own
 * list of messages and receiving the peer's. docs/models.md explains the
 * model, what it leaves out and how it is run (tools/check-models).
 *
 * The sizes come from a generated header (tools/atoll_models.py writes it
 * from lib/include/atoll/urpc.h and lib/urpc/urpc.c): NSLOTS, ACK_MOD (the
 * header's 16-bit ack field, scaled down with the C's rule that a ring is
 * at most half the ack range), BATCH (the C's nslots / 2), and the
 * scenario: each side's messages (lengths in slots; 0 for a small message,
 * which shares a slot with the small ones next to it in its batch), how
 * many messages one send call takes (1: urpc_send; more: urpc_send_batch,
 * which wakes the peer once, after its last), whether it sends blocking,
 * whether it sleeps when idle. PACK: at most this many small messages
 * share a slot (the C packs as many as fit in 56 bytes, at least two).
 *
 * What is checked, exhaustively for the scenario's messages:
 *   - every fragment arrives once, in order, as part of the right message,
 *     and a packed slot's messages all at once, between messages
 *     (assertions in take_slot);
 *   - no slot is rewritten before the peer took it (the ghost `unread`,
 *     asserted in put_slot);
 *   - an honest peer never looks corrupt (seq neither next nor empty, an
 *     ack above what was sent), and a piggy-backed ack widens to exactly
 *     the count its writer had (the ghost `ack_true`);
 *   - no deadlock and no lost wake-up: the only valid end is both sides
 *     finished, every message delivered;
 *   - a hang-up (urpc_close, a side that `closes`): the peer still takes
 *     every message sent before it, whole, then learns of it; a sender
 *     blocked for room on a closed peer, or a peer asleep, learns of it too. A side polling with non-blocking
 *     calls that can change nothing is a blocked process here, so two sides
 *     spinning on full rings show up as a deadlock (an invalid end state).
 *
 * Memory model: each labelled step is one atomic access (or an access and
 * the local work around it), interleaved sequentially consistently. That
 * is what the C's release/acquire pairs and the two full fences of the
 * sleeping protocol give the accesses that matter; the bug variants below
 * put back the reorderings that a missing fence would allow.
 *
 * Bug variants (-D on the spin command line), each one the check must
 * catch (tests/test_models.py):
 *   BUG_EARLY_ACK     the receiver counts a slot consumed (and may publish
 *                     it) before copying it: the sender overwrites it.
 *   BUG_LOST_WAKEUP   the sender looks at the sleeping flag before its
 *                     header is visible (no fence between the store and the
 *                     load): the receiver sleeps on a message.
 *   BUG_NO_STREAM_WAKE  a sender waits for space without waking the
 *                     sleeping receiver first (a message longer than the
 *                     ring: its first fragments wait unseen).
 *   BUG_NO_BATCH_WAKE a sender wakes the receiver before a wait for space
 *                     only in the middle of a message (urpc.c before
 *                     batches): a blocking batch that filled the ring with
 *                     its first messages waits on a receiver asleep.
 *   BUG_NO_IDLE_FLUSH the receiver does not publish its count when it finds
 *                     its ring empty, even when the peer waits for room: a
 *                     sender waiting for more than half a ring waits on an
 *                     idle receiver forever.
 *   BUG_IDLE_FLUSH_TOLD  the idle flush skips a count that a header of
 *                     ours already carried (urpc.c before issue 16): a
 *                     sender blocked for space reads only the control line,
 *                     never those headers, and waits forever on a receiver
 *                     that replied and then went idle.
 *   BUG_ASK_AFTER_WAKE  a sender raises its `waiting` flag after it looked
 *                     at the peer's sleeping flag (the fence no longer
 *                     orders the two): a receiver that looked at `waiting`
 *                     just before falls asleep, unwoken, on acks the
 *                     sender waits for.
 *   BUG_NONBLOCK_NO_ASK  only a blocking send asks: a non-blocking one that
 *                     finds no room returns without raising `waiting`, and
 *                     polls forever on an idle receiver.
 *   BUG_ASK_IGNORES_REPLIES  a sender asks only when it needs more than the
 *                     peer's half-ring batches promise, not when a reply is
 *                     unread in its ring: the peer told its acks in the
 *                     replies' headers, so its batch mark moved out of the
 *                     sender's sight, and it never publishes them.
 *   BUG_CLOSE_EARLY   the receiver reads the hang-up before its ring: the
 *                     last messages sent before urpc_close are lost.
 *   BUG_CLOSE_NO_WAKE urpc_close does not wake a sleeping peer: it sleeps
 *                     forever on a closed channel.
 *   BUG_CLOSE_SENDER_WAITS  a blocking send waits for room from a peer that
 *                     hung up (wait_space does not look at `closed`).
 *   BUG_ACK_WRAP      headers carry the consumed count however far it ran
 *                     ahead of the previous header's (urpc.c before issue
 *                     16): after a one-way stream of ACK_MOD slots the peer
 *                     widens it 2^16 too low, and every later one too
 *                     (safe, but the batched path must then carry every
 *                     ack; with BUG_IDLE_FLUSH_TOLD too, traffic stops).
 */
#include "urpc_params.pml"

#define IDX(s, i) ((s) * NSLOTS + (i))

/* Each side's half of the frame: its slots' headers and payloads. */
byte h_seq[2 * NSLOTS];     /* seq; 0: never written */
byte h_ack[2 * NSLOTS];     /* piggy-backed ack, modulo ACK_MOD */
byte h_frag[2 * NSLOTS];    /* fragment number */
bool h_last[2 * NSLOTS];    /* last fragment of its message */
byte pay_msg[2 * NSLOTS];   /* payload: which message of its sender (packed: the first) */
byte h_cnt[2 * NSLOTS];     /* payload: how many messages (more than 1: a packed slot) */
bool unread[2 * NSLOTS];    /* ghost: written and not yet taken */
byte ack_true[2 * NSLOTS];  /* ghost: the ack before it was cut to ACK_MOD */
/* Each side's control line. */
byte consumed[2];
bool sleeping[2];
byte doorbell[2];           /* bumped by its side to wake the peer (host futex) */
bool closed[2];             /* urpc_close: this side hung up */
bool waiting[2];            /* this side waits for room: the peer publishes when idle */
byte txd[2];                /* ghost: messages each side has sent whole */

/* The scenario's messages (filled by init from the generated header). */
#define MIDX(s, i) ((s) * MAXMSG + (i))
byte msg_len[2 * MAXMSG];
byte after[2 * MAXMSG];     /* message i is sent once this many were received */
byte nmsg[2];
byte bsize[2];              /* messages per send call (1: urpc_send) */
bool blocking[2];
bool sleeper[2];
bool closes[2];             /* hangs up (urpc_close) once it has sent everything */

#define MAX(a, b) ((a) > (b) -> (a) : (b))
/* A receiver waits for more while the peer has more to send, or, when the
 * peer hangs up, for the hang-up (it cannot know that nothing follows). */
#define MORE_TO_COME (rx_msg < nmsg[peer] || closes[peer])
/* A message is ready to go (the scenario's request/response order). */
#define READY (tx_msg < nmsg[me] && rx_msg >= after[MIDX(me, tx_msg)])
/* The slots of the next message alone (a small one: 1). */
#define UNIT_SLOTS (msg_len[MIDX(me, tx_msg)] == 0 -> 1 : msg_len[MIDX(me, tx_msg)])
/* free_slots() after reading the peer's consumed count (wait_space). */
#define FREE_NOW (NSLOTS - (sent - MAX(acked, consumed[peer])))

proctype side(byte me)
{
    byte peer = 1 - me;
    /* struct urpc_chan */
    byte sent, acked, received, ack_told, ctrl_told, hdr_acked, hdr_told, tx_next, rx_next, rfrag;
    byte tx_msg, rx_msg;     /* next message to send / expected */
    byte k, f, need, a, token;
    byte bend, cnt;          /* a send call's end (message index); a slot's messages */

/* put_slot(): payload, then the header (release). The slot must have been
 * taken by the peer: the protocol's whole point. */
#ifdef BUG_ACK_WRAP
#define HDR_ACK_VALUE  received
#else
/* At most ACK_SPAN above the previous header's ack, which is where the
 * peer widens from (urpc.c: put_slot). */
#define HDR_ACK_VALUE  (received - hdr_told > ACK_SPAN -> hdr_told + ACK_SPAN : received)
#endif

/* A non-blocking send that finds no room asks too (wait_space), and looks
 * at the sleeping flag after its fence: a sleeper must learn of the ask. */
#ifdef BUG_NONBLOCK_NO_ASK
#define NB_ASK(n) skip
#else
#define NB_ASK(n) ASK_EARLY(n); wake_if_sleeping(); ASK_LATE(n)
#endif

#define put_slot(fr, lst, n) \
    atomic { \
        assert(!unread[IDX(me, tx_next)]); \
        sent++; \
        a = HDR_ACK_VALUE; \
        h_seq[IDX(me, tx_next)] = sent; \
        h_ack[IDX(me, tx_next)] = a % ACK_MOD; \
        ack_true[IDX(me, tx_next)] = a; \
        h_frag[IDX(me, tx_next)] = fr; \
        h_last[IDX(me, tx_next)] = lst; \
        pay_msg[IDX(me, tx_next)] = tx_msg; \
        h_cnt[IDX(me, tx_next)] = n; \
        unread[IDX(me, tx_next)] = 1; \
        hdr_told = a; \
        ack_told = MAX(ack_told, a); \
        tx_next = (tx_next + 1) % NSLOTS; \
        a = 0 \
    }

/* wake_if_sleeping(): after the header store and a full fence. */
#define wake_if_sleeping() \
    if \
    :: sleeping[peer] -> doorbell[me]++ \
    :: else -> skip \
    fi

/* wait_space(n) in a blocking send: the peer is woken before the wait, so
 * that what this call published so far (earlier messages of a batch, the
 * first fragments of a message) never waits on a sleeper; a peer that hung
 * up will never make room. `mid`: in the middle of a message. */
#ifdef BUG_NO_STREAM_WAKE
#define WAKE_BEFORE_WAIT(mid) skip
#elif defined(BUG_NO_BATCH_WAKE)
#define WAKE_BEFORE_WAIT(mid) if :: mid -> wake_if_sleeping() :: else -> skip fi
#else
#define WAKE_BEFORE_WAIT(mid) wake_if_sleeping()
#endif
#ifdef BUG_CLOSE_SENDER_WAITS
#define GIVE_UP(n) false
#else
#define GIVE_UP(n) (FREE_NOW < (n) && closed[peer])
#endif
/* ASK: a sender that finds no room raises its `waiting` flag when the
 * peer's half-ring batches may not bring enough (must_ask): it needs more
 * than they promise (NSLOTS - BATCH + 1), or a slot is unread in its own
 * rx ring (whose header may carry acks its control line never will). The
 * flag goes up before the fence and the look at the peer's sleeping flag;
 * a wait re-checks, as replies may come meanwhile. */
#ifdef BUG_ASK_IGNORES_REPLIES
#define ASK_NEEDED(n) ((n) > NSLOTS - BATCH + 1)
#else
#define ASK_NEEDED(n) ((n) > NSLOTS - BATCH + 1 || PENDING)
#endif
#define ASK_IF_NEEDED(n) \
    if \
    :: !waiting[me] && ASK_NEEDED(n) -> waiting[me] = 1 \
    :: else -> skip \
    fi
#ifdef BUG_ASK_AFTER_WAKE
#define ASK_EARLY(n) skip
#define ASK_LATE(n) ASK_IF_NEEDED(n)
#else
#define ASK_EARLY(n) ASK_IF_NEEDED(n)
#define ASK_LATE(n) skip
#endif
/* room(): a send that finds room lowers the flag. */
#define STOP_ASKING waiting[me] = 0
#define wait_space(n, mid) \
    if \
    :: atomic { FREE_NOW >= (n) -> acked = MAX(acked, consumed[peer]) } \
    :: atomic { FREE_NOW < (n) } -> \
        ASK_EARLY(n); \
        WAKE_BEFORE_WAIT(mid); \
        ASK_LATE(n); \
        do \
        :: atomic { FREE_NOW >= (n) -> acked = MAX(acked, consumed[peer]) }; break \
        :: atomic { GIVE_UP(n) } -> goto gone \
        :: atomic { !waiting[me] && ASK_NEEDED(n) } -> \
            ASK_EARLY(n); wake_if_sleeping(); ASK_LATE(n) \
        od \
    fi; \
    STOP_ASKING

/* publish_consumed() */
#define publish() atomic { consumed[me] = received; ack_told = received; ctrl_told = received }

/* The header a slot holds while the expected one is not there (empty_seq). */
#define EMPTY_SEQ (received + 1 > NSLOTS -> received + 1 - NSLOTS : 0)
#define RX_SEQ h_seq[IDX(peer, rx_next)]
#define PENDING (RX_SEQ == received + 1)
/* What the idle flush compares the count with: the control line's value
 * (urpc_flush_acks), or what headers told too (urpc.c before issue 16). */
#ifdef BUG_IDLE_FLUSH_TOLD
#define UNFLUSHED (received != ack_told)
#else
#define UNFLUSHED (received != ctrl_told)
#endif
/* The peer waits for room and our control line lags (peer_asks): a
 * receive that finds the ring empty publishes, and urpc_pending says so. */
#define ASKED (waiting[peer] && UNFLUSHED)
/* A receive that found the ring empty has answered an ask first; a
 * sleeper's last look (urpc_pending) counts one. */
#ifdef BUG_NO_IDLE_FLUSH
#define FLUSHED true
#define LAST_LOOK_ASKED false
#else
#define FLUSHED (!ASKED)
#define LAST_LOOK_ASKED ASKED
#endif

/* One slot of take(): check the header, widen its ack, copy the payload. */
#define check_slot() \
        assert(h_frag[IDX(peer, rx_next)] == rfrag); \
        assert(h_cnt[IDX(peer, rx_next)] == 1 || h_last[IDX(peer, rx_next)]); \
        assert(pay_msg[IDX(peer, rx_next)] == rx_msg); \
        a = hdr_acked + (h_ack[IDX(peer, rx_next)] + ACK_MOD - hdr_acked % ACK_MOD) % ACK_MOD; \
        assert(a <= sent); \
        assert(a == ack_true[IDX(peer, rx_next)]); \
        hdr_acked = a; \
        acked = MAX(acked, a); \
        a = 0

#define next_slot() \
        if \
        :: h_last[IDX(peer, rx_next)] -> rx_msg = rx_msg + h_cnt[IDX(peer, rx_next)]; rfrag = 0 \
        :: else -> rfrag++ \
        fi; \
        received++; \
        rx_next = (rx_next + 1) % NSLOTS

    do
    /* -- urpc_send (bsize 1) / urpc_send_batch: the next bsize messages -----
     * A call goes unit by unit: a packed slot of consecutive small messages
     * (up to PACK), or one message of k slots. Non-blocking: a unit goes
     * whole or the call ends (a call that can send nothing sends nothing:
     * ERR_WOULD_BLOCK); blocking: wait for min(k, nslots) free slots, then
     * stream. The peer is woken once, after the call's last unit. */
    :: atomic { READY && (blocking[me] || FREE_NOW >= UNIT_SLOTS) ->
            bend = (tx_msg + bsize[me] < nmsg[me] -> tx_msg + bsize[me] : nmsg[me]) };
#ifdef BUG_LOST_WAKEUP
        wake_if_sleeping();
#endif
        do
        :: tx_msg < bend ->
            atomic {
                k = msg_len[MIDX(me, tx_msg)];
                cnt = 1;
                if
                :: k == 0 ->
                    k = 1;
                    do
                    :: cnt < PACK && tx_msg + cnt < bend && msg_len[MIDX(me, tx_msg + cnt)] == 0 -> cnt++
                    :: else -> break
                    od
                :: else -> skip
                fi;
                need = (k < NSLOTS -> k : NSLOTS)
            };
            if
            :: blocking[me] -> wait_space(need, false)
            :: !blocking[me] ->
                if
                :: atomic { FREE_NOW >= k -> acked = MAX(acked, consumed[peer]) }; STOP_ASKING
                :: atomic { FREE_NOW < k } -> NB_ASK(k); break
                fi
            fi;
            f = 0;
            do
            :: f < k ->
                if
                :: NSLOTS - (sent - acked) == 0 -> wait_space(1, true)
                :: else -> skip
                fi;
                put_slot(f, f + 1 == k, (f + 1 == k -> cnt : 1));
                f++
            :: else -> break
            od;
            atomic { tx_msg = tx_msg + cnt; txd[me] = tx_msg; f = 0; k = 0; cnt = 0; need = 0 }
        :: else -> break
        od;
#ifndef BUG_LOST_WAKEUP
        wake_if_sleeping();
#endif
        atomic { bend = 0; k = 0; cnt = 0; need = 0; f = 0 }

    /* -- urpc_send, non-blocking, no room: it asks if it must (once; later
     *    tries that still find no room change nothing) --------------------- */
#ifndef BUG_NONBLOCK_NO_ASK
    :: atomic { !blocking[me] && READY && FREE_NOW < UNIT_SLOTS && !closed[peer] && !waiting[me] &&
                ASK_NEEDED(UNIT_SLOTS) } ->
        NB_ASK(UNIT_SLOTS)
#endif

    /* -- urpc_send, non-blocking, no room, and the peer hung up ------------- */
    :: atomic { !blocking[me] && READY && FREE_NOW < UNIT_SLOTS && closed[peer] } -> goto gone

    /* -- take(): one slot, then the batched ack ----------------------------- */
    :: PENDING ->
#ifdef BUG_EARLY_ACK
        /* Counted (and maybe published) before the copy. */
        atomic { received++; rx_next = (rx_next + 1) % NSLOTS;
                 if
                 :: received - ack_told >= BATCH -> consumed[me] = received; ack_told = received
                 :: else -> skip
                 fi };
        atomic {
            rx_next = (rx_next + NSLOTS - 1) % NSLOTS; received--;
            check_slot();
            unread[IDX(peer, rx_next)] = 0;
            next_slot()
        };
#else
        atomic {
            check_slot();
            unread[IDX(peer, rx_next)] = 0;
            next_slot()
        };
        if
        :: received - ack_told >= BATCH -> publish()
        :: else -> skip
        fi
#endif

    /* -- take() finds the ring empty: the idle flush, when the peer asks ---- */
#ifndef BUG_NO_IDLE_FLUSH
    :: atomic { !PENDING && ASKED -> assert(RX_SEQ == EMPTY_SEQ) };
        publish()
#endif

    /* -- urpc_recv, blocking with spin_ns = 0: sleep until woken ------------ */
    :: atomic { sleeper[me] && !READY && MORE_TO_COME && !PENDING && FLUSHED && !closed[peer] ->
                assert(RX_SEQ == EMPTY_SEQ); token = doorbell[peer] };
        sleeping[me] = 1;              /* and a full fence */
        if
        :: PENDING || closed[peer] || LAST_LOOK_ASKED -> skip    /* urpc_pending() once more (a hang-up and an ask count) */
        :: else -> (doorbell[peer] != token)   /* urpc_os_wait(token) */
        fi;
        token = 0         /* the flag stays up: lowered below when this side is busy (lib/waitset) */

    /* -- awake with the flag up: lowered at any time, as a waitset source
     *    does when its channel brings work (urpc_recv's own wait lowers it
     *    at once: one of these interleavings) -------------------------------- */
    :: sleeping[me] -> sleeping[me] = 0

    /* -- take() finds the ring dry and the peer hung up: ERR_CHAN_CLOSED ------ */
#ifdef BUG_CLOSE_EARLY
    :: closed[peer] ->                  /* the hang-up read before the ring */
#else
    :: atomic { !PENDING && closed[peer] } ->
#endif
        assert(rx_msg == txd[peer] && rfrag == 0);   /* everything sent before it, whole */
        goto gone

    /* -- urpc_close once everything is sent --------------------------------- */
    :: closes[me] && tx_msg == nmsg[me] ->
        if
        :: UNFLUSHED -> publish()      /* urpc_flush_acks */
        :: else -> skip
        fi;
        closed[me] = 1;                /* store release, then a full fence */
#ifndef BUG_CLOSE_NO_WAKE
        wake_if_sleeping();
#endif
        goto gone

    /* -- everything sent and received (a peer that hangs up: and that learnt) - */
    :: !closes[me] && !closes[peer] && tx_msg == nmsg[me] && rx_msg == nmsg[peer] -> break
    od;
gone:
    skip
}

init {
    atomic {
        SCENARIO;
        run side(0);
        run side(1)
    }
}
