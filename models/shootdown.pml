/*
 * TLB shootdown by messages in spanning domains (monitor/span.c,
 * docs/spanning.md) as a Promela model for spin: docs/models.md.
 *
 * Three cores; two domains, one homed on core 0 and one on core 1, each
 * having run on all three cores. Each home unmaps its page once, at any
 * moment, so the two unmaps run concurrently and each home's monitor is
 * also asked by the other (and, in multicast, is the other's leader).
 * One process per monitor (an event loop that never blocks on one
 * conversation, as in C) and one per core's user code. Every pair of
 * monitors talks over a FIFO channel (route() keeps a link's order; the C
 * never waits to send: link_send queues in an outbox, so channels here are
 * large enough and a full one is an assertion failure, not a wait).
 *
 * Steps, and the C they stand for:
 *   Unmap     the home's SYS_UNMAP (vspace_unmap: the entry cleared, this
 *             core's TLB flushed) then monlmp tlb_shootdown -> tlb_request:
 *             the cores that ran the domain but this one (span_cores, then
 *             BITS_CLR(cores, my_core)); unicast asks the lowest, broadcast
 *             all, multicast one leader (the lowest) with the rest as `fwd`;
 *             numa-multicast (two nodes, {0} and {1, 2}: mcast_plan.c)
 *             the other node's leader with the rest of that node as `fwd`
 *             first, then the cores of the home's node directly. (A node
 *             here never has more than MCAST_FANOUT cores to reach, so no
 *             subtree leader arises: one is a leader like a node's, by the
 *             same code, answering when its part has.)
 *   Call      tlb_on_call: SYS_TLB_INVALIDATE first (this core forgets),
 *             then as a leader forward to `fwd`, else answer at once.
 *   Reply     tlb_on_reply: the core leaves `waiting`; unicast asks the
 *             next; when none waits, a leader answers its asker (with the
 *             cores covered) and the home answers its client: the unmap
 *             returns (done).
 *   Access    user code on a core touches the page: a cached translation
 *             is used as it is, else the walk caches it if the entry is
 *             present, else it faults.
 *
 * Checked in every interleaving (-DSAFETY):
 *   no stale use  no core uses a cached translation of a page whose unmap
 *                 has returned;
 *   coverage      the home hears from every core (covered = 2);
 *   no deadlock   both unmaps return, every channel ends empty.
 *
 * Bug variants:
 *   BUG_REPLY_BEFORE_INVALIDATE  a core answers before it forgets: the home
 *                                returns while the core still uses it.
 *   BUG_LEADER_EARLY             a leader answers for its node before its
 *                                node has answered.
 *   BUG_BLOCKING_WAIT            a home waits for its own answers only
 *                                (serving nothing else meanwhile): the two
 *                                concurrent unmaps wait for each other.
 */
#include "shootdown_params.pml"   /* NCORES, QCAP, PROTO and the protocol numbers, from the C */

#define ND 2                       /* domains: d is homed on core d */
#define ALL ((1 << NCORES) - 1)
#define NONE 255
#define IX(c, d) ((c) * ND + (d))
#define ACCESSES 1                 /* per core and domain */
#define NODEMASK(c) ((c) == 0 -> 1 : 6)   /* numa-multicast's nodes: {0}, {1, 2} */

mtype = { CALL, REPLY };
chan q[NCORES] = [QCAP] of { mtype, byte, byte, byte, byte };   /* kind, from, domain, fwd, covered */

bool pte[ND];
bool tlb[NCORES * ND];
bool started[ND], done[ND];
byte tosend[NCORES * ND];    /* a home's cores not asked yet (unicast) */
byte waiting[NCORES * ND];   /* asked and not answered */
byte asker[NCORES * ND];     /* a leader's asker, NONE for none */
byte covered[NCORES * ND];

inline send(sto, sm, sfrom, sd, sfwd, sn)
{
    assert(nfull(q[sto]));   /* the C never waits to send */
    q[sto]!sm(sfrom, sd, sfwd, sn)
}

inline ask(ac, ato, ad, afwd)
{
    waiting[IX(ac, ad)] = waiting[IX(ac, ad)] | (1 << ato);
    tosend[IX(ac, ad)] = tosend[IX(ac, ad)] & ~(1 << ato) & ~(afwd);
    send(ato, CALL, ac, ad, afwd, 0)
}

inline lowest(mask, out)
{
    out = 0;
    do
    :: out < NCORES && !((mask) & (1 << out)) -> out++
    :: else -> break
    od
}

/* A reply for (c, d) from `from`, covering n cores. */
inline answered(c, from, d, n)
{
    assert(waiting[IX(c, d)] & (1 << from));
    waiting[IX(c, d)] = waiting[IX(c, d)] & ~(1 << from);
    covered[IX(c, d)] = covered[IX(c, d)] + n;
    if
    :: PROTO == TLB_UNICAST && tosend[IX(c, d)] != 0 ->
        lowest(tosend[IX(c, d)], to);
        ask(c, to, d, 0)
    :: else -> skip
    fi;
    if
    :: waiting[IX(c, d)] == 0 && asker[IX(c, d)] != NONE ->
#ifndef BUG_LEADER_EARLY
        send(asker[IX(c, d)], REPLY, c, d, 0, covered[IX(c, d)]);
#endif
        asker[IX(c, d)] = NONE
    :: waiting[IX(c, d)] == 0 && asker[IX(c, d)] == NONE && d == c ->
        assert(covered[IX(c, d)] == NCORES - 1);
        done[d] = true
    :: else -> skip
    fi
}

proctype Monitor(byte c)
{
    byte from, d, fwd, n, to;
    mtype m;
end:
    do
    :: c < ND && !started[c] ->
        d = c;
        /* SYS_UNMAP: the entry goes, this core forgets. */
        atomic { started[d] = true; pte[d] = false; tlb[IX(c, d)] = false };
        atomic {
        tosend[IX(c, d)] = ALL & ~(1 << c);
        if
        :: PROTO == TLB_UNICAST ->
            lowest(tosend[IX(c, d)], to);
            ask(c, to, d, 0)
        :: PROTO == TLB_BROADCAST ->
            do
            :: tosend[IX(c, d)] != 0 -> lowest(tosend[IX(c, d)], to); ask(c, to, d, 0)
            :: else -> break
            od
        :: PROTO == TLB_MULTICAST ->
            /* One node: its lowest core leads, the others are its fwd. */
            lowest(tosend[IX(c, d)], to);
            fwd = tosend[IX(c, d)] & ~(1 << to);   /* inline arguments are text: evaluate once */
            ask(c, to, d, fwd)
        :: PROTO == TLB_NUMA_MULTICAST ->
            /* Two nodes, {0} and {1, 2} (mcast_plan): the other node's
             * leader first with the rest of its node as fwd, then the
             * home's own node directly, one core at a time. */
            fwd = tosend[IX(c, d)] & ~NODEMASK(c);
            if
            :: fwd != 0 ->
                lowest(fwd, to);
                fwd = fwd & ~(1 << to);
                ask(c, to, d, fwd)
            :: else -> skip
            fi;
            do
            :: tosend[IX(c, d)] != 0 -> lowest(tosend[IX(c, d)], to); ask(c, to, d, 0)
            :: else -> break
            od
        fi
        };
#ifdef BUG_BLOCKING_WAIT
        do
        :: waiting[IX(c, d)] != 0 -> q[c]?REPLY(from, eval(d), fwd, n); answered(c, from, d, n)
        :: else -> break
        od
#endif
    :: q[c]?m(from, d, fwd, n) ->
        /* A handler runs to its end (the monitor is one event loop); user
         * code on other cores runs meanwhile, between the steps shown. */
        if
        :: m == CALL ->
#ifndef BUG_REPLY_BEFORE_INVALIDATE
            tlb[IX(c, d)] = false;   /* SYS_TLB_INVALIDATE */
#endif
            atomic {
            fwd = fwd & ~(1 << c) & ~(1 << from);
            if
            :: fwd != 0 ->
                asker[IX(c, d)] = from;
                covered[IX(c, d)] = 1;
#ifdef BUG_LEADER_EARLY
                send(from, REPLY, c, d, 0, NCORES - 1);
#endif
                do
                :: fwd != 0 -> lowest(fwd, to); fwd = fwd & ~(1 << to); ask(c, to, d, 0)
                :: else -> break
                od
            :: else ->
                send(from, REPLY, c, d, 0, 1)
            fi
            };
#ifdef BUG_REPLY_BEFORE_INVALIDATE
            tlb[IX(c, d)] = false;
#endif
        :: m == REPLY ->
            atomic { answered(c, from, d, n) }
        fi
    od
}

proctype User(byte c)
{
    byte d, k = 0;
    do
    :: k < ACCESSES * ND ->
        d = (k + c) % ND;   /* each domain in turn, the cores in different orders */
        atomic {
            if
            :: tlb[IX(c, d)] -> assert(!done[d])   /* a stale translation after the unmap returned */
            :: !tlb[IX(c, d)] && pte[d] -> tlb[IX(c, d)] = true
            :: else -> skip                        /* a page fault */
            fi
        };
        k++
    :: else -> break
    od;
    /* Both unmaps must return (else: an invalid end state, a deadlock). */
    (done[0] && done[1]);
    assert(!tlb[IX(c, 0)] && !tlb[IX(c, 1)])
}

init
{
    byte i;
    atomic {
        pte[0] = true;
        pte[1] = true;
        i = 0;
        do
        :: i < NCORES * ND -> asker[i] = NONE; i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < NCORES -> run Monitor(i); run User(i); i++
        :: else -> break
        od
    }
    (done[0] && done[1]);
    /* The end: every channel empty, nobody waiting. */
    (len(q[0]) == 0 && len(q[1]) == 0 && len(q[2]) == 0);
    i = 0;
    do
    :: i < NCORES * ND -> assert(waiting[i] == 0 && asker[i] == NONE); i++
    :: else -> break
    od
}
