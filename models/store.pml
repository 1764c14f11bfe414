/*
 * The replicated store's protocol (servers/store/replica.c, docs/store.md)
 * as a Promela model for spin: three replicas, the leader (replica 0) and
 * two followers, one of which crashes, losing everything it held, and is
 * started again. docs/models.md says how it is checked.
 *
 * The leader sequences writes (a client sends WRITES of them, one at a
 * time, as the C client does) into a log, sends each entry to every
 * follower it knows, and commits an entry once MAJORITY replicas, itself
 * included, have it (acks are cumulative); it answers the write then. A
 * follower applies committed entries in order. A (re)starting follower
 * says HELLO; the leader answers with its state at `applied` (SNAP: the
 * state of a prefix of the log is the prefix's length here) and every
 * entry after it, then streams. A fresh read at follower 1 asks the leader
 * for its commit index (read index) and answers once it has applied that
 * far.
 *
 * Channels are FIFO, as a URPC channel is. A crash hangs the follower's
 * channels up: what was in them is gone, and what the leader sends on the
 * old channel later never reaches the new incarnation (`inc`: each
 * incarnation has channels of its own in the C). Here the leader's sends
 * wait for room when a channel is full; the C's leader sends only what
 * fits and keeps each follower's next entry (`pump`), so it never waits:
 * the same entries in the same order, and a leader that waits is the
 * harder case for deadlock. A follower never waits to send to the leader
 * (acks and read-index calls wait in `ack_due` / `ri_due` until there is
 * room: the C's `flush`).
 *
 * Checked in every interleaving:
 *  - a write is answered only once a majority of replicas has held it
 *    (ghost `heldby`: a bit per replica that ever stored the entry);
 *  - a follower gets entries with no gap (the snapshot and the tail after
 *    it join up);
 *  - a fresh read sees every write answered before the read began (ghost
 *    `answered`) and nothing beyond what the leader has committed;
 *  - no deadlock (the only valid end: every write answered, every read
 *    done), and at the end every live replica holds the whole log.
 *
 * Tied to the C by tools/atoll_models.py (STORE_RULES: the majority, the
 * tail after the snapshot, the gap check, the read index, the
 * non-blocking acks). The bug variants:
 *   BUG_MAJORITY_HALF  the majority counted as N/2 (1 of 3): a write is
 *                      answered while only the leader holds it;
 *   BUG_STALE_READ     a follower answers a fresh read from its own state
 *                      without asking the leader: a stale read;
 *   BUG_NO_TAIL        a joining follower gets the snapshot but not the
 *                      uncommitted entries after it: a gap;
 *   BUG_BLOCKING_ACK   a follower waits for room to send its ack while the
 *                      leader waits for room to send it entries: deadlock.
 */
#include "store_params.pml"

#define N 3
#define TRUE_MAJ (N / 2 + 1)       /* the C's nmembers / 2 + 1 */
#ifdef BUG_MAJORITY_HALF
#define MAJ (N / 2)
#else
#define MAJ TRUE_MAJ
#endif

mtype = { HELLO, ACK, RI_CALL, APPEND, COMMIT, SNAP, RI_REPLY };

/* down[k]: leader -> follower k; up[k]: follower k -> leader. Fields: type,
 * index, commit (or read-index tag), the follower's incarnation. */
chan down[N] = [QCAP] of { mtype, byte, byte, byte };
chan up[N] = [QCAP] of { mtype, byte, byte, byte };

/* The leader. */
byte last, commit;                 /* its log holds 1..last; applied == commit */
bool peer[N];                      /* followers it streams to */
byte peer_inc[N], acked[N];

/* The followers (ghost-readable by the checks). */
bool alive[N];
byte inc[N];
byte flast[N], fcommit[N], fapplied[N];
bool snapping[N];

/* Ghosts. */
byte heldby[WRITES + 1];           /* bit k: replica k held entry i at some time */
byte answered;                     /* writes answered to the client */
byte requested;                    /* writes the client sent */
byte reads_done;
bool crashed, restarted;

chan wreq = [1] of { byte };

#define HOLD(k, i) heldby[i] = heldby[i] | (1 << (k))
#define COUNT(b) (((b) & 1) + (((b) >> 1) & 1) + (((b) >> 2) & 1))

/* Commit what a majority holds (the leader holds all up to last). Ack
 * counts: the leader and every follower it streams to with acked >= i. */
inline advance() {
    c = commit;
    i = commit + 1;
    do
    :: i <= last ->
        n = 1 + (peer[1] && acked[1] >= i) + (peer[2] && acked[2] >= i);
        if
        :: n >= MAJ ->
            assert(COUNT(heldby[i]) >= TRUE_MAJ);   /* durable on a majority before it is answered */
            commit = i;
            answered++;
            i++
        :: else -> break
        fi
    :: else -> break
    od;
    /* Tell the followers (the C sends commit on every advance). */
    j = 1;
    do
    :: j < N ->
        if
        :: peer[j] && commit > c -> down[j]!COMMIT(0, commit, peer_inc[j])
        :: else -> skip
        fi;
        j++
    :: else -> break
    od
}

/* The leader. Each step (a write taken, a message handled) is atomic: its
 * effects on the others go through channels (a send that waits for room
 * gives the others their turn). */
inline handle(k) {
    if
    :: m == HELLO ->
        peer[k] = true;
        peer_inc[k] = in;
        acked[k] = 0;
        down[k]!SNAP(commit, commit, in);
#ifndef BUG_NO_TAIL
        i = commit + 1;
        do
        :: i <= last -> down[k]!APPEND(i, commit, in); i++
        :: else -> break
        od;
#endif
        skip
    :: m == ACK ->
        if
        :: peer[k] && in == peer_inc[k] ->
            if
            :: ix > acked[k] -> acked[k] = ix
            :: else -> skip
            fi;
            advance()
        :: else -> skip   /* an old incarnation's */
        fi
    :: m == RI_CALL ->
        if
        :: peer[k] && in == peer_inc[k] -> down[k]!RI_REPLY(0, commit, in)
        :: else -> skip
        fi
    fi;
    i = 0; n = 0; j = 0; ix = 0; c = 0; in = 0; m = 0
}

proctype Leader() {
    byte i, n, j, t, ix, c, in;
    mtype m;
end:
    do
    /* A write from the client: append it, send it to every follower. */
    :: atomic {
        wreq?t ->
        last++;
        HOLD(0, last);
        j = 1;
        do
        :: j < N ->
            if
            :: peer[j] -> down[j]!APPEND(last, commit, peer_inc[j])
            :: else -> skip
            fi;
            j++
        :: else -> break
        od;
        advance();
        i = 0; n = 0; j = 0; t = 0; c = 0
       }
    /* A follower's message. */
    :: atomic { up[1]?m, ix, c, in -> handle(1) }
    :: atomic { up[2]?m, ix, c, in -> handle(2) }
    /* A follower's channel hung up: stop streaming to it (a failed send
     * or the next poll of the channel, in the C). */
    :: atomic { peer[2] && !alive[2] -> peer[2] = false; acked[2] = 0 }
    od
}

/* The client: WRITES writes, one at a time. */
proctype Client() {
    do
    :: requested < WRITES && answered == requested -> wreq!requested; requested++
    :: requested == WRITES -> break
    od
}

/* A follower. k == 2 crashes once (if CRASH) and is started again. */
proctype Follower(byte k) {
    mtype m;
    byte ix, c, in;
    bool ack_due, ri_due, reading, ri_answered;
    byte ri_index, read_before, reads_left;
    reads_left = (k == 1 -> READS : 0);
start:
    up[k]!HELLO(0, 0, inc[k]);
    snapping[k] = true;
end:
    do
    :: atomic { down[k]?m, ix, c, in ->
        if
        :: in != inc[k] -> skip   /* sent to an earlier incarnation */
        :: in == inc[k] && m == SNAP ->
            assert(snapping[k]);
            flast[k] = ix; fcommit[k] = ix; fapplied[k] = ix;
            /* the state transfer gives it entries 1..ix */
            c = 1;
            do
            :: c <= ix -> HOLD(k, c); c++
            :: else -> break
            od;
            snapping[k] = false;
            ack_due = true
        :: in == inc[k] && m == APPEND ->
            assert(!snapping[k]);
            if
            :: ix <= flast[k] -> skip
            :: else ->
                assert(ix == flast[k] + 1);   /* no gap */
                flast[k] = ix;
                HOLD(k, ix);
                ack_due = true
            fi;
            if
            :: c > fcommit[k] -> fcommit[k] = c
            :: else -> skip
            fi;
            fapplied[k] = (fcommit[k] < flast[k] -> fcommit[k] : flast[k])
        :: in == inc[k] && m == COMMIT ->
            if
            :: c > fcommit[k] -> fcommit[k] = c
            :: else -> skip
            fi;
            fapplied[k] = (fcommit[k] < flast[k] -> fcommit[k] : flast[k])
        :: in == inc[k] && m == RI_REPLY ->
            assert(reading && !ri_answered);
            ri_index = c;
            ri_answered = true
        fi;
        m = 0; ix = 0; c = 0; in = 0
       }
    /* The flush: an ack when there is room, never waiting for it. */
#ifdef BUG_BLOCKING_ACK
    :: ack_due && !snapping[k] -> up[k]!ACK(flast[k], 0, inc[k]); ack_due = false
#else
    :: ack_due && !snapping[k] && nfull(up[k]) -> up[k]!ACK(flast[k], 0, inc[k]); ack_due = false
#endif
    /* A fresh read begins: it must see every write answered by now. */
    :: reads_left > 0 && !reading && !snapping[k] ->
        reading = true;
        read_before = answered;
#ifdef BUG_STALE_READ
        ri_index = 0;
        ri_answered = true
#else
        ri_due = true;
        ri_answered = false
#endif
    :: ri_due && nfull(up[k]) -> up[k]!RI_CALL(0, 0, inc[k]); ri_due = false
    :: reading && ri_answered && fapplied[k] >= ri_index ->
        assert(fapplied[k] >= read_before);   /* linearizable: not stale */
        assert(fapplied[k] <= commit);        /* nothing uncommitted */
        reading = false;
        ri_index = 0;
        read_before = 0;
        ri_answered = false;
        reads_left--;
        reads_done++
    /* A crash: everything it held is gone, its channels hung up. */
    :: k == 2 && CRASH && !crashed ->
        atomic {
            crashed = true;
            alive[k] = false;
            flast[k] = 0; fcommit[k] = 0; fapplied[k] = 0;
            ack_due = false; ri_due = false;
            do
            :: down[k]?_, _, _, _
            :: up[k]?_, _, _, _
            :: empty(down[k]) && empty(up[k]) -> break
            od
        };
        /* ... and, later, started again (svc restart). */
        atomic { restarted = true; inc[k]++; alive[k] = true };
        goto start
    od
}

/* Once nothing can move: every write answered, every read done, every
 * live replica holds the whole log and has applied it. */
proctype Watcher() {
    timeout ->
    assert(answered == WRITES && requested == WRITES);
    assert(reads_done == READS);
    assert(commit == WRITES && last == WRITES);
    assert(fapplied[1] == WRITES && (!alive[2] || fapplied[2] == WRITES))
}

init {
    atomic {
        alive[1] = true; alive[2] = true;
        run Leader();
        run Follower(1);
        run Follower(2);
        run Client();
        run Watcher()
    }
}
