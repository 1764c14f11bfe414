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

#if ELECT
/*
 * ---- Elections (scenario "elect"): the same protocol as the replicas in
 * servers/store/replica.c run it across a leader's loss. Each replica is a
 * state (term, log of entry terms, commit index, whom it follows, whether
 * it leads or stands, whether it caught up in its present life), and each
 * step one message handled, atomic: a write at a leader, a follower joining
 * a leader (hello and the snapshot of its committed prefix), an entry sent,
 * an ack and the commit it may bring (only from the leader's own first
 * entry on), the commit index told, a vote asked and answered, a win, a
 * candidate giving up, a crash (everything lost) and a restart (it learns
 * the highest term of the others and neither votes nor stands until it
 * caught up: `caught`), a replica in its first life (`fresh`: never
 * crashed, and no snapshot replaced a log it held) voting, and standing
 * once a leader reached it, without having caught up (so the boot leader's
 * followers elect a successor though it died before a majority caught
 * up), a follower hanging up on its leader for any
 * reason (the leader dead, or only slow: the model lets a live leader be
 * suspected too), and fresh reads at a leader.
 *
 * Checked in every interleaving:
 *  - at most one leader per term (ghost leader_of);
 *  - a new leader holds every entry committed in an earlier term (ghost
 *    ctm[i]: the term of entry i when it was first committed, ctt[i]: the
 *    term of the leader that did; a candidate of an old term may still win
 *    it, as in Raft, and then commits nothing: a majority has moved on),
 *    and no replica commits or is sent in a snapshot an entry other than
 *    the committed one at that index: no acknowledged write is lost;
 *  - a fresh read at a leader sees every write acknowledged before it.
 * Bug variants (each caught):
 *   BUG_VOTE_FORGETFUL    a replica votes before it caught up in this life
 *                         (a restarted replica has forgotten what it held);
 *   BUG_VOTE_ANY_LOG      votes without comparing logs (Raft's up-to-date);
 *   BUG_READ_NO_MAJORITY  a leader answers fresh reads without a majority
 *                         still with it (a leader deposed behind its back);
 *   BUG_READ_BEFORE_FIRST a new leader answers fresh reads before its first
 *                         entry is committed (its commit index may lag);
 *   BUG_CAUGHT_AT_SNAPSHOT a follower votes again as soon as a leader's
 *                         snapshot (its committed prefix) came, before the
 *                         entries after it: the snapshot may be shorter than
 *                         the log it replaced, and an entry committed on a
 *                         majority counting it is lost (found by this model:
 *                         the first version of replica.c did so).
 *   BUG_FRESH_AFTER_REPLACE a replica stays in its first life (may vote before
 *                         it caught up) after a snapshot replaced a log it held
 *                         (found by this model: the first version of the rule
 *                         counted snapshots, and the boot leader, stepping down
 *                         and following another, had its first snapshot replace
 *                         entries it had counted for a commit).
 *   REACH_UNCAUGHT_WIN    not a bug: shows a replica that has not caught up
 *                         can win (the path the liveness fix opened is live).
 */
#define NR 3
#define EMAJ (NR / 2 + 1)          /* the C's nmembers / 2 + 1 */
#define LOGMAX (WRITES + MAXTERM)  /* the writes and a first entry per term */
#define NONE 255

typedef Log { byte t[LOGMAX + 1] };   /* t[i]: the term of entry i (1-based) */
Log lg[NR];
byte ln[NR], cmt[NR], term[NR], tstart[NR];
bool alive[NR], leading[NR], caught[NR], standing[NR];
bool fresh[NR];                   /* the C's first_life: never crashed, no snapshot replaced a log it held */
bool reached[NR];                 /* a leader's snapshot came in this life */
byte follows[NR];                 /* the leader it follows (NONE) */
byte match[NR * NR];              /* the highest index f acked to l */
byte votes[NR], asked[NR];        /* a candidate's votes and requests not yet answered (bits) */
byte snapto[NR];                   /* a follower votes again only once ln >= snapto (the leader's ln at its hello) */
/* Ghosts. */
byte ctm[LOGMAX + 1];             /* the term of committed entry i (0: none yet) */
byte ctt[LOGMAX + 1];             /* the term of the leader that first committed it */
byte acked;                       /* every write up to this index was answered */
byte leader_of[MAXTERM + 2];
byte writes, crashes, restarts, reads, suspects;

/* Leader l counts f's acks while f follows it in its term (the C counts a
 * follower until it notices the channel gone, a little longer: no safer). */
#define PEER(l, f) (follows[f] == (l) && term[f] == term[l])
#define M(l, f) match[(l) * NR + (f)]
#define BIT(b, k) (((b) >> (k)) & 1)
#define COUNT3(b) (BIT(b, 0) + BIT(b, 1) + BIT(b, 2))
#define LASTT(r) lg[r].t[ln[r]]
/* Is c's log at least as up to date as v's? (Raft 5.4.1: up_to_date) */
#define UPTODATE(c, v) (LASTT(c) > LASTT(v) || (LASTT(c) == LASTT(v) && ln[c] >= ln[v]))
#define MIN(a, b) ((a) < (b) -> (a) : (b))
/* may_vote(), may_stand(): caught up in this life, or in its first life
 * (to stand, once a leader reached it). */
#define MAYVOTE(r) (caught[r] || fresh[r])
#define MAYSTAND(r) (caught[r] || (fresh[r] && reached[r]))
/* may_answer_reads(): its first entry committed and a majority with it
 * (followers that have not hung up: a dead one counts until its hang-up). */
#define WITH(l) (1 + (l != 0 && follows[0] == l) + (l != 1 && follows[1] == l) + (l != 2 && follows[2] == l))
#ifdef BUG_READ_NO_MAJORITY
#define MAJ_OK(l) true
#else
#define MAJ_OK(l) (WITH(l) >= EMAJ)
#endif
#ifdef BUG_READ_BEFORE_FIRST
#define MAY_READ(l) (leading[l] && MAJ_OK(l))
#else
#define MAY_READ(l) (leading[l] && cmt[l] >= tstart[l] && MAJ_OK(l))
#endif

/* Replica r commits up to n: every entry must be the one committed there. */
inline commit_to(r, n) {
    i = cmt[r] + 1;
    do
    :: i <= n ->
        if
        :: ctm[i] == 0 -> ctm[i] = lg[r].t[i]; ctt[i] = term[r]
        :: else -> assert(ctm[i] == lg[r].t[i])   /* no committed entry replaced */
        fi;
        i++
    :: else -> break
    od;
    cmt[r] = n
}

/* How many hold entry n, the leader l included (the acks it counts). */
#define HELD(l, n) (1 + (l != 0 && PEER(l, 0) && M(l, 0) >= n) + (l != 1 && PEER(l, 1) && M(l, 1) >= n) + (l != 2 && PEER(l, 2) && M(l, 2) >= n))

/* The leader commits the highest index a majority holds, from its own
 * first entry on (advance_commit), and answers those writes. */
inline advance(l) {
    n = ln[l];
    do
    :: n > cmt[l] && n >= tstart[l] ->
        if
        :: HELD(l, n) >= EMAJ ->
            commit_to(l, n);
            if
            :: n > acked -> acked = n
            :: else -> skip
            fi;
            break
        :: else -> n--
        fi
    :: else -> break
    od
}

/* A leader learns of a later term: it leads no more, hangs its followers up. */
inline step_down(l) {
    leading[l] = false;
    j = 0;
    do
    :: j < NR ->
        if
        :: follows[j] == l -> follows[j] = NONE
        :: else -> skip
        fi;
        M(l, j) = 0;
        j++
    :: else -> break
    od
}

inline write(l) {
    writes < WRITES && alive[l] && leading[l] ->
    ln[l]++; lg[l].t[ln[l]] = term[l]; writes++
}

/* f joins leader l (hello; l's snapshot at its commit index). */
inline follow(f, l) {
    alive[f] && alive[l] && leading[l] && !leading[f] && !standing[f] && follows[f] == NONE &&
    term[l] >= term[f] ->
    term[f] = term[l];
#ifndef BUG_FRESH_AFTER_REPLACE
    fresh[f] = fresh[f] && ln[f] == 0;   /* a log it held is replaced, perhaps by less */
#endif
    i = 1;
    do
    :: i <= LOGMAX -> lg[f].t[i] = (i <= cmt[l] -> lg[l].t[i] : 0); i++
    :: else -> break
    od;
    ln[f] = cmt[l];
    i = 0;
    do   /* a snapshot is of committed entries */
    :: i < cmt[l] -> i++; assert(ctm[i] == lg[f].t[i])
    :: else -> break
    od;
    cmt[f] = cmt[l];
    reached[f] = true;
#ifdef BUG_CAUGHT_AT_SNAPSHOT
    caught[f] = true;
#else
    snapto[f] = ln[l];
    caught[f] = ln[f] >= snapto[f];
#endif
    follows[f] = l;
    M(l, f) = 0;
    i = 0
}

inline append(l, f) {
    alive[l] && alive[f] && leading[l] && follows[f] == l && term[f] == term[l] && ln[f] < ln[l] ->
    ln[f]++;
    lg[f].t[ln[f]] = lg[l].t[ln[f]];
#ifndef BUG_CAUGHT_AT_SNAPSHOT
    if
    :: ln[f] >= snapto[f] -> caught[f] = true
    :: else -> skip
    fi;
#endif
    i = 0
}

inline tell(l, f) {
    alive[l] && alive[f] && leading[l] && follows[f] == l && term[f] == term[l] &&
    cmt[f] < MIN(cmt[l], ln[f]) ->
    n = MIN(cmt[l], ln[f]);
    commit_to(f, n);
    i = 0; n = 0
}

inline ack(l, f) {
    alive[l] && alive[f] && leading[l] && follows[f] == l && term[f] == term[l] && M(l, f) < ln[f] ->
    M(l, f) = ln[f];
    advance(l);
    i = 0; n = 0
}


/* c stands in the next term whose candidate it is (members[t % n]). */
inline stand(c) {
    alive[c] && MAYSTAND(c) && !leading[c] && !standing[c] && follows[c] == NONE &&
    term[c] + 1 + (c + NR - (term[c] + 1) % NR) % NR <= MAXTERM ->
    term[c] = term[c] + 1 + (c + NR - (term[c] + 1) % NR) % NR;
    standing[c] = true;
    votes[c] = 1 << c;
    asked[c] = 7 - (1 << c)
}

/* v answers c's vote_call. A later term ends what v had (a leader steps
 * down, a follower hangs up) before it answers. */
inline vote(v, c) {
    standing[c] && BIT(asked[c], v) ->
    asked[c] = asked[c] - (1 << v);
    if
    :: alive[v] && term[c] > term[v] ->
        term[v] = term[c];
        if
        :: leading[v] -> step_down(v)
        :: else -> skip
        fi;
        follows[v] = NONE;
        standing[v] = false;
        if
#if defined(BUG_VOTE_FORGETFUL)
        :: UPTODATE(c, v) -> votes[c] = votes[c] | (1 << v)
#elif defined(BUG_VOTE_ANY_LOG)
        :: MAYVOTE(v) -> votes[c] = votes[c] | (1 << v)
#else
        :: MAYVOTE(v) && UPTODATE(c, v) -> votes[c] = votes[c] | (1 << v)
#endif
        :: else -> skip
        fi
    :: alive[v] && term[v] > term[c] ->   /* a later term under way: not ours */
        term[c] = term[v];
        standing[c] = false
    :: else -> skip
    fi;
    j = 0
}

/* Won: lead, with a first entry of its own term. */
inline win(c) {
    alive[c] && standing[c] && COUNT3(votes[c]) >= EMAJ ->
#ifdef REACH_UNCAUGHT_WIN
    /* Not a bug: "violated" shows the path exists (the liveness fix): the
     * boot leader dies before its followers caught up, and one of them,
     * in its first life, still stands and wins. */
    assert(caught[c]);
#endif
    assert(leader_of[term[c]] == NONE);   /* one leader a term */
    leader_of[term[c]] = c;
    standing[c] = false;
    i = 1;
    do   /* it holds every entry committed in an earlier term (Raft's leader completeness) */
    :: i <= LOGMAX ->
        assert(ctm[i] == 0 || ctt[i] > term[c] || (i <= ln[c] && lg[c].t[i] == ctm[i]));
        i++
    :: else -> break
    od;
    leading[c] = true;
    ln[c]++;
    lg[c].t[ln[c]] = term[c];
    tstart[c] = ln[c];
    i = 0
}

/* A leader crashes (the case a follower's crash adds nothing to: the
 * other scenarios crash followers): everything it held is gone, its
 * channels are hung up. */
inline crash(r) {
    crashes < CRASHES && alive[r] && leading[r] ->
    crashes++;
    alive[r] = false;
    if
    :: leading[r] -> step_down(r)
    :: else -> skip
    fi;
    standing[r] = false; snapto[r] = 0;
    i = 1;
    do
    :: i <= LOGMAX -> lg[r].t[i] = 0; i++
    :: else -> break
    od;
    ln[r] = 0; cmt[r] = 0; caught[r] = false; follows[r] = NONE;
    fresh[r] = false; reached[r] = false;   /* started again, it is in a later life */
    i = 0; j = 0
}

/* Started again: it learns the highest term of the others, follows
 * whoever leads (follow), and votes only once it caught up. */
inline restart(r) {
    !alive[r] && restarts < crashes ->
    restarts++;
    alive[r] = true;
    term[r] = (alive[(r + 1) % NR] -> term[(r + 1) % NR] : 0);
    if
    :: alive[(r + 2) % NR] && term[(r + 2) % NR] > term[r] -> term[r] = term[(r + 2) % NR]
    :: else -> skip
    fi
}

/* A follower hangs up on its leader: it died or leads no more (always),
 * or it only seems to have (a live leader suspected: SUSPECTS times). */
inline hang_up(f) {
    follows[f] != NONE && (!alive[follows[f]] || !leading[follows[f]] || term[follows[f]] != term[f] ||
                           suspects < SUSPECTS) ->
    if
    :: alive[follows[f]] && leading[follows[f]] && term[follows[f]] == term[f] -> suspects++
    :: else -> skip
    fi;
    follows[f] = NONE
}

/* A fresh read at a leader: answered at once if it may. (A follower's read
 * index asks the same of its leader: the other scenarios model it.) */
inline read_leader(l) {
    reads < READS && alive[l] && MAY_READ(l) ->
    assert(cmt[l] >= acked);   /* sees every write acknowledged before it */
    reads++
}

#define PAIR(A, a, b) :: atomic { A(a, b) }
#define PAIRS(A) PAIR(A, 0, 1) PAIR(A, 0, 2) PAIR(A, 1, 0) PAIR(A, 1, 2) PAIR(A, 2, 0) PAIR(A, 2, 1)
#define EACH(A) :: atomic { A(0) } :: atomic { A(1) } :: atomic { A(2) }

proctype System() {
    byte i, j, n;
end:
    do
    EACH(write)
    PAIRS(follow)
    PAIRS(append)
    PAIRS(tell)
    PAIRS(ack)
    EACH(stand)
    PAIRS(vote)
    EACH(win)
    :: atomic { standing[0] -> standing[0] = false }   /* gave up: too few votes in time */
    :: atomic { standing[1] -> standing[1] = false }
    :: atomic { standing[2] -> standing[2] = false }
    EACH(crash)
    EACH(restart)
    EACH(hang_up)
    EACH(read_leader)
    od
}

init {
    byte k;
    atomic {
        /* Boot: replica 0 leads term 1 (members[0], no term known). */
        k = 0;
        do
        :: k < NR -> alive[k] = true; follows[k] = NONE; fresh[k] = true; k++
        :: else -> break
        od;
        k = 0;
        do
        :: k <= MAXTERM + 1 -> leader_of[k] = NONE; k++
        :: else -> break
        od;
        term[0] = 1; leading[0] = true; caught[0] = true; leader_of[1] = 0;
        run System()
    }
}

#else

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
#endif   /* ELECT */
