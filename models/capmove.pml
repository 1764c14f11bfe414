/*
 * Moving ownership of an object between cores (monitor/capops.c, "moving
 * ownership"; docs/capabilities.md) as a Promela model for spin:
 * docs/models.md. Core 0 owned the object; its original was deleted while
 * copies live on cores 1 and 2 (the hand-over: only core 0's anchor is
 * left, which keeps the object's range taken in the RAM it came from), and
 * core 2 had carved range 0 with core 0's agreement (a reservation). Core
 * 0 moves ownership to core 1 while the holders' domains go on using
 * their copies. One process per monitor (it also plays its core's
 * domains); a FIFO channel per direction (models/mesh.pml checks route
 * order).
 *
 * Steps, and the C they stand for:
 *   Move      move_try -> move_send: core 0 locks (O_MOVING) and sends core 1
 *             cap_move_call, a MOVE_HOLDER per other holder, a MOVE_RESERVE
 *             per range reserved for one, MOVE_SYNC (here one message: they
 *             follow on one FIFO and nothing else reaches core 1 between).
 *   TakeOver  capops_on_move_part(MOVE_SYNC) -> take_over: core 1's root is
 *             the original (CAPOPS_TAKE_OVER), anchored, the reservations
 *             made again under its anchor, the object locked; cap_move_reply.
 *             Refused (ERR_NOT_FOUND) if core 1 released its root meanwhile:
 *             core 0 unlocks and tries again (capops_on_move_reply).
 *   Tell      capops_on_move_reply -> move_tell: cap_moved to every other
 *             holder, which re-homes its record (capops_on_moved) and answers
 *             (cap_moved_reply); a release it sent before arrives first and
 *             is forwarded to core 1 (capops_on_released -> move_gone,
 *             MOVE_GONE), and so is one that arrives while the take-over
 *             is asked (the records sent name that holder: the model found
 *             the first version, which forwarded only while telling, left
 *             core 1 recording a core that held nothing); a retype asked of core 0 meanwhile is refused
 *             (ERR_CAP_LOCKED) and asked of core 1 next time.
 *   Finish    move_finish: every holder answered: MOVE_DONE unlocks core 1;
 *             core 0 keeps its anchor (a tombstone) held by core 1 alone.
 *   Release   maybe_release: a holder with no copy left (and, on core 1
 *             after the take-over, no anchor under its root: obj_drop_anchor
 *             when its own holders are gone) tells the owner it knows.
 *   Carve     core 2's domain retypes its copy: retype_request asks the owner
 *             its record names (capops_on_retype_call reserves, or refuses
 *             while locked); core 1's domain, after the take-over, retypes
 *             alone: its kernel refuses reserved or carved ranges
 *             (lineage_overlaps under the new original).
 *   Revoke    core 1's domain revokes its copy through its monitor after the
 *             move (revoke_moved -> start_revoke): core 2 removes everything
 *             and answers (holder_revoke); refused while locked.
 *
 * Checked in every interleaving (-DSAFETY):
 *   one owner        core 1 is unlocked as an owner only once core 0 is a
 *                    tombstone (or gone): never two owners at once;
 *   no dangling copy a core holding anything is recorded by the owner its
 *                    record names (or by core 0 while it is being told);
 *   memory back      core 0 drops its anchor (the range is free again) only
 *                    when no core holds anything of the object;
 *   no overlap       a range is carved at most once;
 *   termination      every run ends with the channels empty, nothing locked,
 *                    every record exact, and the anchor gone when nothing
 *                    is held.
 *
 * Bug variants:
 *   BUG_DONE_EARLY   core 0 unlocks core 1 as soon as it took over, before the
 *                    other holders have answered: core 1 revokes core 2 by
 *                    the new number, which core 2 does not know yet (it
 *                    answers that it holds nothing): a dangling copy.
 *   BUG_NO_FORWARD   a release from a holder not told yet is dropped by core 0:
 *                    core 1 records core 2 for ever (and the memory never
 *                    comes back).
 *   BUG_NO_RESERVE   the reservations do not move: core 1 carves the range
 *                    core 2 carved.
 */
#include "capmove_params.pml"

#define NCORES 3
#define MAXQ 6
#define NONE 255
#define NEW 1                /* the new owner */
#define K 2                  /* the other holder */

mtype = { MOVE, MOVE_REPLY, MOVE_GONE, MOVE_DONE, MOVED, MOVED_REPLY, RELEASED, RETYPE_CALL, RETYPE_REPLY,
          REVOKE_CALL, REVOKE_REPLY };

/* chans[a * NCORES + b]: from a to b. Fields: type, a, b. */
chan chans[NCORES * NCORES] = [MAXQ] of { mtype, byte, byte };
#define C(a, b) chans[(a) * NCORES + (b)]

/* -- core 0, the old owner -- */
bool anchor0 = true;         /* its anchor (the range taken in its RAM) */
bool locked0;                /* O_MOVING */
byte phase0;                 /* 0 M_WANTED, 1 M_ASKED, 2 M_TELLING, 3 M_DONE */
bool holders0[NCORES];
bool waiting0[NCORES];
byte reserved0[2];           /* the core a range is reserved for, NONE */

/* -- core 1, the new owner once it took over -- */
bool owner1;                 /* took over: its root is the original, anchored */
bool locked1;                /* O_MOVING until MOVE_DONE */
bool anchor1;
bool holders1[NCORES];
byte reserved1[2];
bool revoking1;

/* -- what each holder core has -- */
bool root[NCORES];           /* its root (core 1's becomes the original) */
byte copies[NCORES];
bool carved[NCORES * 2];
#define CARVED(c, r) carved[(c) * 2 + (r)]
byte owner_of[NCORES];       /* the owner its record names */
bool retype_waiting;         /* core 2's domain waits for an agreement */

#define HOLDS(c) (root[c] || copies[c] > 0)

inline check_overlap(r) {
    assert(CARVED(1, r) + CARVED(2, r) <= 1)
}

/* obj_drop_anchor on core 0: the range is free again. */
inline drop0() {
    assert(!HOLDS(1) && !HOLDS(2));
    anchor0 = false;
    reserved0[0] = NONE;
    reserved0[1] = NONE
}

inline finish0() {
    /* move_finish */
#ifndef BUG_DONE_EARLY
    C(0, NEW) ! MOVE_DONE, 0, 0;
#endif
    phase0 = 3;
    locked0 = false;
    if
    :: !holders0[1] && !holders0[2] -> drop0()
    :: else -> skip
    fi
}

/* maybe_release on core 1: no copy, and no anchor under the root. */
inline release1() {
    if
    :: root[1] && copies[1] == 0 && !anchor1 && !CARVED(1, 0) && !CARVED(1, 1) ->
        root[1] = false;
        C(NEW, 0) ! RELEASED, 0, 0
    :: else -> skip
    fi
}

/* obj_drop_anchor on core 1 (not while locked: MOVE_DONE decides). */
inline drop1() {
    if
    :: owner1 && anchor1 && !locked1 && !revoking1 && !holders1[2] ->
        assert(!HOLDS(2));
        anchor1 = false;
        reserved1[0] = NONE;
        reserved1[1] = NONE;
        release1()
    :: else -> skip
    fi
}

proctype Core0()
{
    mtype t;
    byte a, b, c;
    byte tries = MOVE_TRIES;
end:
    do
    /* Move: lock, send the records to core 1 */
    :: atomic { tries > 0 && phase0 == 0 && !locked0 && anchor0 && holders0[NEW] ->
        tries--;
        locked0 = true;
        phase0 = 1;
        C(0, NEW) ! MOVE, holders0[2], (reserved0[0] == K) + 2 * (reserved0[1] == K) }
    :: C(NEW, 0) ? t, a, b ->
        atomic {
            if
            :: t == MOVE_REPLY && phase0 == 1 ->
                if
                :: a == 0 ->
                    /* refused: as we were */
                    locked0 = false;
                    phase0 = 0;
                    if
                    :: !holders0[1] && !holders0[2] -> drop0()
                    :: else -> skip
                    fi
                :: else ->
                    phase0 = 2;
                    waiting0[2] = holders0[2];
                    if
                    :: waiting0[2] -> C(0, K) ! MOVED, 0, 0
                    :: else -> skip
                    fi;
#ifdef BUG_DONE_EARLY
                    C(0, NEW) ! MOVE_DONE, 0, 0;
#endif
                    if
                    :: !waiting0[2] -> finish0()
                    :: else -> skip
                    fi
                fi
            :: t == RELEASED ->
                /* holder_gone (no drop while locked) */
                holders0[1] = false;
                if
                :: !locked0 && !holders0[1] && !holders0[2] -> drop0()
                :: else -> skip
                fi
            :: else -> skip
            fi
        }
    :: C(K, 0) ? t, a, b ->
        atomic {
            if
            :: t == RELEASED && holders0[2] ->
                if
                :: phase0 == 1 || phase0 == 2 ->
                    /* move_gone: not told yet (the records sent name it);
                     * core 1 forgets it */
                    holders0[2] = false;
                    waiting0[2] = false;
#ifndef BUG_NO_FORWARD
                    C(0, NEW) ! MOVE_GONE, K, 0;
#endif
                    if
                    :: phase0 == 2 -> finish0()
                    :: else -> skip
                    fi
                :: else ->
                    holders0[2] = false;
                    if
                    :: !locked0 && !holders0[1] && !holders0[2] -> drop0()
                    :: else -> skip
                    fi
                fi
            :: t == RELEASED && !holders0[2] -> skip   /* late or forged: counted */
            :: t == MOVED_REPLY && phase0 == 2 && waiting0[2] ->
                waiting0[2] = false;
                holders0[2] = false;
                finish0()
            :: t == MOVED_REPLY && !(phase0 == 2 && waiting0[2]) -> skip
            :: t == RETYPE_CALL ->
                /* capops_on_retype_call: locked while moving, or not a holder (a tombstone) */
                if
                :: !locked0 && holders0[2] && reserved0[a] == NONE -> reserved0[a] = K; C(0, K) ! RETYPE_REPLY, 1, a
                :: !locked0 && holders0[2] && reserved0[a] == K -> C(0, K) ! RETYPE_REPLY, 1, a
                :: else -> C(0, K) ! RETYPE_REPLY, 0, a
                fi
            :: t == REVOKE_REPLY -> skip
            fi
        }
    od
}

proctype Core1()
{
    mtype t;
    byte a, b, r;
    byte deletes = DELETES, carves = OWN_CARVES, revokes = REVOKES;
end:
    do
    :: C(0, NEW) ? t, a, b ->
        atomic {
            if
            :: t == MOVE ->
                /* take_over: all or nothing */
                if
                :: root[1] && !owner1 ->
                    owner1 = true;
                    anchor1 = true;
                    locked1 = true;
                    holders1[2] = a;
#ifndef BUG_NO_RESERVE
                    if :: b & 1 -> reserved1[0] = K :: else -> skip fi;
                    if :: b & 2 -> reserved1[1] = K :: else -> skip fi;
#endif
                    C(NEW, 0) ! MOVE_REPLY, 1, 0
                :: else -> C(NEW, 0) ! MOVE_REPLY, 0, 0
                fi
            :: t == MOVE_GONE -> holders1[2] = false
            :: t == MOVE_DONE ->
                locked1 = false;
                drop1()
            fi
        }
    :: C(K, NEW) ? t, a, b ->
        atomic {
            if
            :: t == RELEASED ->
                holders1[2] = false;
                if
                :: revoking1 -> revoking1 = false
                :: else -> skip
                fi;
                drop1()
            :: t == REVOKE_REPLY ->
                /* holder_gone: the answer to the revoke says it holds nothing */
                holders1[2] = false;
                revoking1 = false;
                drop1()
            :: t == RETYPE_CALL ->
                if
                :: owner1 && !locked1 && !revoking1 && holders1[2] && reserved1[a] == NONE && !CARVED(1, a) ->
                    reserved1[a] = K; C(NEW, K) ! RETYPE_REPLY, 1, a
                :: owner1 && !locked1 && !revoking1 && holders1[2] && reserved1[a] == K -> C(NEW, K) ! RETYPE_REPLY, 1, a
                :: else -> C(NEW, K) ! RETYPE_REPLY, 0, a
                fi
            fi
        }
    /* the domain deletes its copy (and what it carved) */
    :: atomic { deletes > 0 && copies[1] > 0 ->
        deletes--;
        copies[1]--;
        CARVED(1, 0) = false;
        CARVED(1, 1) = false;
        if
        :: !owner1 -> if :: copies[1] == 0 -> root[1] = false; C(NEW, 0) ! RELEASED, 0, 0 :: else -> skip fi
        :: else -> release1()
        fi }
    /* the domain carves alone, once ownership is here (SYS_CAP_RETYPE) */
    :: atomic { carves > 0 && owner1 && copies[1] > 0 ->
        carves--;
        if :: r = 0 :: r = 1 fi;
        if
        :: reserved1[r] == NONE && !CARVED(1, r) -> CARVED(1, r) = true; check_overlap(r)
        :: else -> skip   /* ERR_OVERLAP */
        fi }
    /* the domain revokes its copy through the monitor (revoke_moved) */
    :: atomic { revokes > 0 && owner1 && !locked1 && !revoking1 && copies[1] > 0 ->
        revokes--;
        if
        :: holders1[2] -> revoking1 = true; C(NEW, K) ! REVOKE_CALL, 0, 0
        :: else -> skip
        fi }
    od
}

proctype Core2()
{
    mtype t;
    byte a, b, r;
    byte deletes = DELETES, carves = HOLDER_CARVES;
end:
    do
    :: C(0, K) ? t, a, b ->
        atomic {
            if
            :: t == MOVED ->
                /* capops_on_moved: the record names core 1 from now on */
                if :: root[2] -> owner_of[2] = NEW :: else -> skip fi;
                C(K, 0) ! MOVED_REPLY, 0, 0
            :: t == RETYPE_REPLY ->
                retype_waiting = false;
                if
                :: a && root[2] && !CARVED(2, b) -> CARVED(2, b) = true; check_overlap(b)
                :: else -> skip
                fi
            fi
        }
    :: C(NEW, K) ? t, a, b ->
        atomic {
            if
            :: t == REVOKE_CALL ->
                /* holder_revoke: a record under this owner and number goes */
                if
                :: root[2] && owner_of[2] == NEW ->
                    root[2] = false; copies[2] = 0; CARVED(2, 0) = false; CARVED(2, 1) = false
                :: else -> skip   /* none: "released already" */
                fi;
                C(K, NEW) ! REVOKE_REPLY, 0, 0
            :: t == RETYPE_REPLY ->
                retype_waiting = false;
                if
                :: a && root[2] && !CARVED(2, b) -> CARVED(2, b) = true; check_overlap(b)
                :: else -> skip
                fi
            fi
        }
    /* the domain deletes its copy: with the last one its carves and root go */
    :: atomic { deletes > 0 && copies[2] > 0 ->
        deletes--;
        copies[2]--;
        if
        :: copies[2] == 0 ->
            CARVED(2, 0) = false; CARVED(2, 1) = false; root[2] = false;
            C(K, owner_of[2]) ! RELEASED, 0, 0
        :: else -> skip
        fi }
    /* the domain carves range 1, asking the owner its record names */
    :: atomic { carves > 0 && copies[2] > 0 && !retype_waiting ->
        carves--;
        retype_waiting = true;
        C(K, owner_of[2]) ! RETYPE_CALL, 1, 0 }
    od
}

/* Safety at every step. */
#define KNOWN(c) (!HOLDS(c) || (owner_of[c] == 0 && holders0[c]) || (owner_of[c] == NEW && owner1 && holders1[c]))
#define INV (KNOWN(2) && (!HOLDS(1) || holders0[1]) && (!owner1 || locked1 || phase0 == 3 || !anchor0) && \
             (!HOLDS(1) && !HOLDS(2) || anchor0))

proctype Invariant()
{
end:
    do
    :: atomic { !(INV) -> assert(INV) }
    od
}

/* When nothing can move any more: nothing locked, every message handled,
 * the records exact, the memory back when nothing is held. */
proctype Final()
{
    timeout ->
    assert(!locked0 && !locked1 && !revoking1);
    assert(empty(C(0, 1)) && empty(C(0, 2)) && empty(C(1, 0)) && empty(C(1, 2)) && empty(C(2, 0)) && empty(C(2, 1)));
    assert(anchor0 == (HOLDS(1) || HOLDS(2)));
    assert(!owner1 || !HOLDS(2) || owner_of[2] == NEW);
    assert(!anchor1 || holders1[2]);
    assert(holders1[2] == (owner1 && HOLDS(2) && owner_of[2] == NEW));
    assert(holders0[2] == (HOLDS(2) && owner_of[2] == 0))
}

init {
    /* The start: core 0's original handed over; copies on cores 1 and 2;
     * core 2 carved range 0 with core 0's agreement. */
    reserved0[0] = K;
    reserved0[1] = NONE;
    reserved1[0] = NONE;
    reserved1[1] = NONE;
    holders0[1] = true;
    holders0[2] = true;
    root[1] = true;
    root[2] = true;
    copies[1] = 1;
    copies[2] = 1;
    CARVED(2, 0) = true;
    atomic {
        run Core0();
        run Core1();
        run Core2();
        run Invariant();
        run Final()
    }
}
