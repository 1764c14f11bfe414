/*
 * A dead core fenced (monitor/fence.c, docs/restart.md "A dead core") as a
 * Promela model for spin: docs/models.md. Four monitors: core 0 (the one
 * that decides), cores 1 and 3 (each waits for an answer from core 2, and
 * may suspect it: its neighbours in the mesh), and core 2 (which serves
 * their requests and runs a service; it may die at any moment, or only be
 * late). tests/test_fence.py boots the same shape.
 *
 * Time is not modelled: "silent long enough" is a choice the model may make
 * at any moment, so a core that is only late can be suspected, and core 0's
 * confirmation may come before the probe's answer arrives: false positives
 * are part of the search. Core 1 suspects core 2 while it waits (again
 * after core 0 cleared a suspicion: MESH_SUSPECT_MS passed again). Core 0
 * probes; a beat from core 2 clears; else it declares core 2 dead: it tells
 * core 2 itself first (over its boot channel), fences it (the service moves
 * to a live core) and tells cores 1 and 3. A monitor that fences core 2 answers
 * what waits for it (ERR_CORE_DOWN). Core 2, told it is dead while it
 * runs, stops.
 *
 * Checked when nothing can move any more: nobody waits for core 2 for ever
 * (its answer came, or the fence failed the request); every monitor fenced
 * exactly what core 0 declared; core 2 and the service's new instance are
 * never both left running (a late core stops).
 *
 * The bug variants:
 *   BUG_NO_FAIL_PENDING  fencing leaves the requests waiting for the dead core.
 *   BUG_LOCAL_DECIDE     a neighbour fences on its own suspicion, without core 0.
 *   BUG_NO_TELL_SUSPECT  core 0 does not tell the suspect it was declared dead.
 *   BUG_NO_SELF_STOP     a core told it was declared dead runs on.
 */
#include "fence_params.pml"   /* generated: the rules checked in the C */

mtype = { REQ, ANS, PROBE, BEAT, SUSPECT, DEAD };

chan to0 = [4] of { mtype, byte };   /* (message, the core it is from) */
chan to1 = [2] of { mtype };
chan to3 = [2] of { mtype };
chan to2 = [4] of { mtype, byte };

bool dead2;          /* core 2's CPU driver stopped: it does nothing more */
bool stopped2;       /* core 2's monitor stopped itself (declared dead while alive) */
bool declared;       /* core 0 declared core 2 dead (and fenced it) */
bool moved;          /* the service of core 2 was started again on a live core */
bool fenced[4];      /* cores 1 and 3 fenced core 2 */
bool pending[4];     /* cores 1 and 3 wait for core 2's answer */
bool probing;        /* core 0 checks a suspicion */
bool may_suspect[4] = true;   /* silent again since its last suspicion was cleared */

active proctype core2()
{
    bool will_die;   /* chosen once: a run where it never dies can end quiet */
    if
    :: will_die = true
    :: skip
    fi;
end:
    do
    :: will_die && !dead2 && !stopped2 -> dead2 = true   /* its CPU driver panics */
    :: !dead2 && !stopped2 && to2?[REQ, 1] -> to2?REQ, 1; to1!ANS
    :: !dead2 && !stopped2 && to2?[REQ, 3] -> to2?REQ, 3; to3!ANS
    :: !dead2 && !stopped2 && to2?[PROBE, 0] -> to2?PROBE, 0; to0!BEAT, 2
    :: !dead2 && !stopped2 && to2?[DEAD, 0] ->
        to2?DEAD, 0;
#ifndef BUG_NO_SELF_STOP
        stopped2 = true   /* fence_on_dead: this monitor stops */
#else
        skip
#endif
    od
}

inline fence_here() {
    fenced[me] = true;
#ifndef BUG_NO_FAIL_PENDING
    pending[me] = false   /* pending_fail_core: ERR_CORE_DOWN */
#endif
}

/* Core 1 or 3: asks core 2 once, suspects it while it waits. */
proctype neighbour(byte me; chan inbox)
{
    pending[me] = true;
    to2!REQ, me;
end:
    do
    :: inbox?ANS -> pending[me] = false
    :: inbox?DEAD -> fence_here()
    :: pending[me] && !fenced[me] && may_suspect[me] ->
        may_suspect[me] = false;
#ifdef BUG_LOCAL_DECIDE
        fence_here()
#else
        to0!SUSPECT, me
#endif
    od
}

active proctype core0()
{
    byte from;
end:
    do
    :: to0?SUSPECT, from ->
        if
        :: !probing && !declared -> probing = true; to2!PROBE, 0
        :: else -> skip   /* being checked: this suspicion joins it (a cleared one comes again) */
        fi
    :: to0?BEAT, from ->
        if
        :: probing -> probing = false; may_suspect[1] = true; may_suspect[3] = true   /* core_suspect_cleared */
        :: else -> skip
        fi
    :: probing ->   /* MESH_CONFIRM_MS passed (perhaps with the answer on its way) */
        probing = false;
        declared = true;
#ifndef BUG_NO_TELL_SUSPECT
        to2!DEAD, 0;
#endif
        moved = true;   /* fenced here: the starter moves the service */
        to1!DEAD;
        to3!DEAD
    od
}

/* Start the neighbours; when nothing can move: the properties. */
init {
    atomic { run neighbour(1, to1); run neighbour(3, to3) }
    timeout ->
    assert(!pending[1] && !pending[3]);
    assert(fenced[1] == declared && fenced[3] == declared);
    assert(!(moved && !dead2 && !stopped2))
}
