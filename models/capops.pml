/*
 * Capabilities across cores (monitor/capops.c) as a Promela model for spin:
 * docs/models.md. One object, owned by core 0; cores 1 and 2 may hold
 * copies. One process per monitor, which also plays its core's domains
 * (a monitor serves its domains' requests one at a time, as in C). Every
 * pair of monitors talks over a FIFO channel per direction (route() is
 * fixed and a link keeps its order: models/mesh.pml checks that).
 *
 * Steps, and the C they stand for:
 *   Give       capops_give -> give_owned: the core joins the holder set
 *              (coreset_add) and its unanswered-grant count goes up
 *              *before* cap_grant is sent; refused while revoking. If the
 *              grant cannot be sent the undo removes the core only if this
 *              give added it.
 *   Grant      capops_on_grant: the holder keeps one root per object and
 *              a mailbox entry, or refuses (its domain ended, quota) and
 *              keeps nothing; always answers cap_grant_reply.
 *   Take       capops_take: a copy, a child of the root.
 *   Delete     the domain deletes its copy (what it carved goes with it);
 *              the kernel's notice makes maybe_release send cap_released
 *              once no copy and no mail is left.
 *   Carve      a holder domain's retype: retype_request sends
 *              cap_retype_call; capops_on_retype_call reserves the range by
 *              retyping the anchor (refused if it overlaps what core 0 or
 *              another holder carved, or while revoking);
 *              capops_on_retype_reply carves if the copy still exists,
 *              and (CAPOPS_RETYPE, cap_retype_agreed) only the pages of
 *              the original the owner was asked about: the domain may
 *              move another capability into the slot meanwhile (Swap).
 *   OwnCarve   a domain of core 0 retypes its original: the kernel refuses
 *              ranges reserved for holders (lineage_overlaps).
 *   Revoke     client_retry -> start_revoke: lock (O_REVOKING), send
 *              cap_revoke_call to the holders only; holder_revoke removes
 *              every copy and carve there and answers; holder_gone on
 *              each answer; revoke_done drops the anchor (obj_drop_anchor,
 *              which frees the reservations) once no holder is left.
 *   Release    capops_on_released / holder_gone: a core leaves the set only
 *              if no grant to it is unanswered (a release and a grant can
 *              cross on the wire; the grant's answer then follows the
 *              release, and a later release removes it).
 *   Timeout    (scenario "timeout") capops_expire: the revoke gives up and
 *              unlocks; holders that did not answer stay in the set; a late
 *              answer counts as a release.
 *   Drop       (scenario "lost3") a holder's monitor cannot send its
 *              cap_grant_reply (capops_on_grant ignores the send's error).
 *   Ask        (scenario "ask3") a holder's domain revokes its copy through
 *              its monitor: client_retry -> ask_owner sends cap_revoke_ask;
 *              capops_on_revoke_ask locks the object and start_revoke asks
 *              every holder but the asker (W_ASKER); revoke_done answers
 *              cap_revoke_ask_reply OK only when no other core holds a copy
 *              or has a grant unanswered (others_hold), and drops the anchor
 *              only if the asker holds nothing either. Refused (LOCKED)
 *              while another revoke runs; a timeout answers it too. On
 *              an OK answer the asker's monitor removes the revoked copy's
 *              siblings on its own core too (ask_answered -> siblings_go,
 *              CAPOPS_REVOKE_SIBLINGS): the other copies, what was carved
 *              from them, the mail; the revoked copy stays.
 *   OwnerGo    (ask3) before that OK answer, the owner core's copies go too
 *              (revoke_done -> owner_copies_go): the original is handed over
 *              to the anchor (CAPOPS_HAND_OVER_ANCHOR, cap_hand_over_anchor)
 *              with its local copies and what was carved from them, if the
 *              asker is still recorded; a hand-over the kernel refuses (a
 *              carved object with copies elsewhere, a CNode) keeps them
 *              (owner_kept: HANDOVER_REFUSES lets it happen once).
 *   Move       then, after the answer and on the same FIFO, ownership moves
 *              to the asker, the only holder left (move_try: not while a
 *              grant is unanswered, then later; cap_move_call ... sync); the
 *              asker takes over if it still has its root (take_over), else
 *              refuses (it let go meanwhile: its release comes first); the
 *              old owner keeps a tombstone (move_finish: no other holder to
 *              tell) or, refused with nobody left, drops its anchor
 *              (capops_on_move_reply). The move with other holders to tell
 *              is models/capmove.pml's.
 *   GiveOn     (scenario "giveon3") a holder's domain gives its copy on to the
 *              other holder core: capops_give -> give_on sends cap_give_on
 *              to the owner; capops_on_give_on refuses it while revoking
 *              or from a core that is no holder, else give_owned records
 *              the new core and sends the grant, as for its own Give.
 *   Die, Fence (scenario "dead3") core 2 halts for good at any moment; once
 *              fenced (fence.c -> capops_core_dead) it leaves the holder
 *              set and any revoke's wait, its grants and reservations go,
 *              and nothing from it counts any more (links_fence). What it
 *              holds can never be used: the checks below ignore it.
 *   Expire     grant_expire (called by capops_expire): a grant not answered
 *              in GRANT_WAIT_NS no longer counts (grants[c] = 0), so it
 *              locks no revoke for ever; the core is marked `lost` and
 *              then leaves the set only on an answer to the revoke under
 *              way (holder_gone(o, c, asked)), never on a release or a
 *              late answer, which may be older than the grant. Time is not modelled: Expire may
 *              come at any moment, even before a late answer.
 *
 * Checked in every interleaving (-DSAFETY: assertions, invalid end states):
 *   no dangling copy   when a revoke completes, and whenever the anchor is
 *                      dropped, no core holds a copy, a root or mail of it;
 *   no overlap         a range is carved at most once across all cores;
 *   no lost descendant a revoke that completes leaves no carve on a holder;
 *   termination        every run ends with all channels empty, no revoke
 *                      locked, and no core recorded that holds nothing (the
 *                      owner's records come back to none once copies go).
 *
 * Bug variants:
 *   BUG_RELEASE_IGNORES_GRANTS  a release removes the core even with a grant
 *                               to it in flight: a dangling copy.
 *   BUG_NO_RESERVE              the owner agrees to a carve without
 *                               reserving the range: two cores carve it.
 *   BUG_REFUSE_SILENT           a holder refuses a grant and says nothing
 *                               more: the owner records it for ever.
 *   BUG_UNDO_DROPS_HOLDER       a give whose grant cannot be sent removes the
 *                               core from the set although it holds copies
 *                               (scenario sendfail3): a dangling copy.
 *   BUG_RETYPE_SWAP             the agreed retype carves whatever the slot
 *                               names when the answer comes (scenario swap3):
 *                               pages the owner never reserved for it.
 *   BUG_EXPIRE_FORGETS          grant_expire forgets the grant without
 *                               marking the core lost (scenario lost3): a
 *                               release sent before the grant arrived then
 *                               removes a core that holds its copy.
 *   BUG_LATE_ANSWER_CLEARS_LOST a late answer to a revoke removes a lost
 *                               grant's core (scenario lost3): the grant
 *                               may have gone after that answer.
 *   BUG_FENCE_KEEPS_WAITING     the fence takes a dead core out of the set but
 *                               not out of a revoke's wait (scenario dead3):
 *                               the revoke never ends (without a timeout).
 *   BUG_GIVE_ON_DIRECT          a holder gives its copy on to the third core
 *                               itself (scenario giveon3): a copy there the
 *                               owner does not record.
 *   BUG_ASK_EARLY               the owner answers a holder's ask as soon as
 *                               it has sent its revoke calls, not when every
 *                               other holder has answered (scenario ask3):
 *                               the asker is told while a sibling copy lives.
 *   BUG_ASK_REVOKES_ASKER       the ask's revoke asks the asker too (an
 *                               owner's plain revoke): the copy the domain
 *                               revoked, which must stay, goes.
 *   BUG_OWNER_KEEPS             the owner answers a holder's ask OK with its
 *                               own copies in place (the behaviour before
 *                               owner_copies_go): the asker is told while
 *                               the original lives.
 *   BUG_NO_MOVE                 the original is handed over but ownership
 *                               never moves: the run ends with the asker
 *                               holding an object nobody owns.
 */
#include "capops_params.pml"

#define OWNER 0
#define RANGES 2
#define MAXQ 6
#define NONE 255
#ifdef BUG_EXPIRE_FORGETS
#define BUG_EXPIRE_FORGETS_ON 1
#else
#define BUG_EXPIRE_FORGETS_ON 0
#endif

/* The messages of if/monitor.if that the protocol uses (capops_params.pml
 * checks they are there): mtype names follow them. */
mtype = { GRANT, GRANT_REPLY, RELEASED, REVOKE_CALL, REVOKE_REPLY, RETYPE_CALL, RETYPE_REPLY, REVOKE_ASK,
          REVOKE_ASK_REPLY, GIVE_ON, MOVE, MOVE_REPLY };

/* chans[a * NCORES + b]: from a to b. Fields: type, ok, range. */
chan chans[NCORES * NCORES] = [MAXQ] of { mtype, bool, byte };
#define C(a, b) chans[(a) * NCORES + (b)]

/* -- the owner (core 0) -- */
bool anchor;                 /* the object has copies elsewhere recorded */
bool revoking;
bool holders[NCORES];
bool waiting[NCORES];
byte grants[NCORES];         /* unanswered grants per core */
bool lost[NCORES];           /* a grant to the core expired unanswered */
byte reserved[RANGES];       /* the holder core a range is reserved for, NONE */
bool carved0[RANGES];        /* core 0's own carves */
bool revoke_returned;        /* the domain's revoke came back (OK) */
byte asker = NONE;           /* O_REVOKING for a holder's ask (W_ASKER): its core */
bool own0 = true;            /* the owner core's original, its copies and carves (the domain's) */
bool kept0;                  /* a hand-over was refused: the owner's copies stayed (owner_kept) */
bool handed;                 /* owner_copies_go handed the original over */
bool want_move;              /* M_WANTED */
bool moving;                 /* O_MOVING, M_ASKED: cap_move_call sent, no answer yet */
bool tomb;                   /* M_DONE: ownership moved out, the anchor a tombstone */
byte refusals = HANDOVER_REFUSES;

/* -- holders -- */
bool held[NCORES];           /* the root */
byte mail[NCORES];
byte copies[NCORES];
bool carved[NCORES * RANGES];
bool retype_waiting[NCORES];
byte slot_range[NCORES];     /* the range the domain's retype slot would carve now */
byte asked_range[NCORES];    /* the range the owner was asked to reserve */
bool dead[NCORES];           /* the core's CPU driver halted for good (selftest=die) */
bool fenced[NCORES];         /* ... and the owner fenced it (fence -> capops_core_dead) */
bool asking[NCORES];         /* a holder's ask waits for its answer */
bool ask_kept[NCORES];       /* the copy the asking domain revoked (it must stay) */
bool took_over[NCORES];      /* ownership moved here (take_over): the root is the original */
byte ask_ok;                 /* asks answered OK */

#define CARVED(c, r) carved[(c) * RANGES + (r)]

/* What a fenced core holds can never be used: it does not count. */
#define NOTHING_AT(c) (fenced[c] || (!held[c] && mail[c] == 0 && copies[c] == 0 && !CARVED(c, 0) && !CARVED(c, 1)))
inline no_copies_anywhere() {
    assert(NOTHING_AT(1) && NOTHING_AT(2))
}

/* When an asker is told OK: no core but the asker holds anything. */
inline no_copies_but(a) {
    assert(a == 1 || NOTHING_AT(1));
    assert(a == 2 || NOTHING_AT(2))
}

/* others_hold(o, keep) */
#define OTHERS_HOLD(a) ((a != 1 && (holders[1] || grants[1] > 0)) || (a != 2 && (holders[2] || grants[2] > 0)))

/* A give from a holder's word: the object must still stand for copies
 * elsewhere (obj_find in capops_on_give_on), or it gives what a revoke
 * has taken back. */
inline anchor_ok() {
    assert(anchor)
}

inline check_overlap(r) {
    assert((carved0[r] + (CARVED(1, r) && !fenced[1]) + (CARVED(2, r) && !fenced[2])) <= 1)
}

inline drop_anchor() {
    /* obj_drop_anchor: nobody holds a copy, grants all answered. */
    no_copies_anywhere();
    anchor = false;
    want_move = false;
    reserved[0] = NONE;
    reserved[1] = NONE
}

/* move_try: to the only holder left, not while a grant is unanswered
 * (its answer would come here); after the ask's answer on the same FIFO. */
inline move_try() {
    if
    :: want_move && !revoking && !moving && grants[1] == 0 && grants[2] == 0 && !lost[1] && !lost[2] &&
       (holders[1] || holders[2]) ->
        want_move = false;
        moving = true;
        if
        :: holders[1] -> C(OWNER, 1) ! MOVE, true, 0
        :: !holders[1] -> C(OWNER, 2) ! MOVE, true, 0
        fi
    :: else -> skip
    fi
}

inline revoke_check_done() {
    if
    :: revoking && !waiting[1] && !waiting[2] && asker != NONE ->
        /* revoke_done for W_ASKER */
        revoking = false;
        if
        :: !OTHERS_HOLD(asker) ->
            no_copies_but(asker);
            ask_ok++;
            if
            :: !holders[1] && !holders[2] && grants[1] == 0 && grants[2] == 0 -> drop_anchor()
            :: else ->
                /* owner_copies_go: the asker still recorded (kept: the anchor stays) */
                if
                :: !holders[asker] || !own0 || tomb -> skip
                :: holders[asker] && own0 && !tomb && refusals > 0 -> refusals--; kept0 = true   /* refused */
#ifndef BUG_OWNER_KEEPS
                :: holders[asker] && own0 && !tomb ->
                    own0 = false;
                    carved0[0] = false;
                    carved0[1] = false;
                    handed = true;
#ifndef BUG_NO_MOVE
                    want_move = true
#else
                    skip
#endif
#else
                :: holders[asker] && own0 && !tomb -> skip   /* kept, and not even counted */
#endif
                fi
            fi;
#ifndef BUG_ASK_EARLY
            C(OWNER, asker) ! REVOKE_ASK_REPLY, true, 0;
#endif
            move_try()
        :: else ->
#ifndef BUG_ASK_EARLY
            C(OWNER, asker) ! REVOKE_ASK_REPLY, false, 0
#else
            skip
#endif
        fi;
        asker = NONE
    :: revoking && !waiting[1] && !waiting[2] && asker == NONE ->
        revoking = false;
        if
        :: !holders[1] && !holders[2] && grants[1] == 0 && grants[2] == 0 ->
            drop_anchor();
            revoke_returned = true
        :: else -> skip   /* ERR_CAP_LOCKED to the caller */
        fi
    :: else -> skip
    fi
}

/* holder_gone(o, core): a release or an answer to a revoke. The core
 * leaves the set (and the revoke's wait) only if no grant to it is
 * unanswered: a release sent before a later grant arrived says nothing
 * about that grant's copy. */
inline holder_gone(c, revoked) {
#ifdef BUG_RELEASE_IGNORES_GRANTS
    holders[c] = false;
    waiting[c] = false;
#else
    if
    :: grants[c] == 0 && (!lost[c] || revoked) -> holders[c] = false; waiting[c] = false; lost[c] = false
    :: else -> skip
    fi;
#endif
    if
    :: revoking -> revoke_check_done()
    :: !revoking && !moving && anchor && !holders[1] && !holders[2] && grants[1] == 0 && grants[2] == 0 -> drop_anchor()
    :: else -> skip
    fi
}

proctype OwnerLoop()
{
    byte c, r;
    byte gives = OWNER_GIVES, own_carves = OWN_CARVES, send_fails = SEND_FAILS, expires = EXPIRES;
    bool do_revoke = DO_REVOKE, timeouts = TIMEOUTS;
    byte dies = DIES;
end:
    do
    /* Give (give_owned) */
    :: atomic { gives > 0 && !revoking && own0 ->
        gives--;
        if :: c = 1 :: !fenced[2] -> c = 2 fi;   /* capops_give_to: a fenced core is ERR_CORE_DOWN */
        anchor = true;
        holders[c] = true;
        grants[c]++;
        C(OWNER, c) ! GRANT, true, 0 }
    /* A give whose grant cannot be sent (outbox full, no route): give_owned
     * undoes what it recorded, and only that */
    :: atomic { gives > 0 && send_fails > 0 && !revoking && own0 ->
        gives--;
        send_fails--;
        if :: c = 1 :: c = 2 fi;
#ifdef BUG_UNDO_DROPS_HOLDER
        /* holder_gone(o, core) as the undo: out if no grant is unanswered */
        if
        :: grants[c] == 0 -> holders[c] = false
        :: else -> skip
        fi;
#endif
        /* was_holder: the set is as it was */
        if
        :: anchor && !holders[1] && !holders[2] && grants[1] == 0 && grants[2] == 0 -> drop_anchor()
        :: else -> skip
        fi }
    /* Revoke (start_revoke), once */
    :: atomic { do_revoke && !revoking && own0 ->
        do_revoke = false;
        if
        :: !anchor -> revoke_returned = true   /* no copy elsewhere: local only */
        :: else ->
            revoking = true;
            c = 1;
            do
            :: c < NCORES ->
                if
                :: holders[c] -> waiting[c] = true; C(OWNER, c) ! REVOKE_CALL, true, 0
                :: else -> skip
                fi;
                c++
            :: else -> break
            od;
            revoke_check_done()
        fi }
    /* OwnCarve: the kernel refuses a reserved range (ERR_OVERLAP) */
    :: atomic { own_carves > 0 && own0 ->
        own_carves--;
        if :: r = 0 :: r = 1 fi;
        if
        :: reserved[r] == NONE && !carved0[r] -> carved0[r] = true; check_overlap(r)
        :: else -> skip
        fi }
    /* Expire (grant_expire): an unanswered grant no longer counts */
    :: atomic { expires > 0 && (grants[1] > 0 || grants[2] > 0) ->
        expires--;
        if :: grants[1] > 0 -> c = 1 :: grants[2] > 0 -> c = 2 fi;
        grants[c] = 0;
#ifndef BUG_EXPIRE_FORGETS
        lost[c] = true;
#endif
        skip }
    /* move_try again (capops_expire): a grant was unanswered */
    :: atomic { want_move && !revoking && !moving && grants[1] == 0 && grants[2] == 0 -> move_try() }
    /* Die: core 2's CPU driver halts for good (selftest=die), at any moment */
    :: atomic { dies > 0 -> dies--; dead[2] = true }
    /* Fence (fence.c -> capops_core_dead): core 2 leaves the set and the
     * revoke's wait, its grants and reservations go (holder_gone with no
     * grant left); the revoke may end, the anchor go */
    :: atomic { dead[2] && !fenced[2] ->
        fenced[2] = true;
        grants[2] = 0;
        lost[2] = false;
        if :: reserved[0] == 2 -> reserved[0] = NONE :: else -> skip fi;
        if :: reserved[1] == 2 -> reserved[1] = NONE :: else -> skip fi;
        holders[2] = false;
#ifndef BUG_FENCE_KEEPS_WAITING
        waiting[2] = false;
#endif
        if
        :: revoking -> revoke_check_done()
        :: !revoking && anchor && !holders[1] && !holders[2] && grants[1] == 0 && grants[2] == 0 -> drop_anchor()
        :: else -> skip
        fi }
    /* Timeout (capops_expire): unlock; who did not answer stays a holder */
    :: atomic { timeouts && revoking ->
        timeouts = false;
        revoking = false;
        waiting[1] = false;
        waiting[2] = false;
        if
        :: asker != NONE ->
#ifndef BUG_ASK_EARLY
            C(OWNER, asker) ! REVOKE_ASK_REPLY, false, 0;
#endif
            asker = NONE
        :: else -> skip
        fi }
    od
}

/* The owner's message loop, a process of its own in the same monitor:
 * its steps are atomic as the monitor's handlers are. */
proctype OwnerRx(byte c)
{
    mtype t;
    bool ok;
    byte r;
end:
    do
    :: C(c, OWNER) ? t, ok, r ->
        atomic {
            if
            :: fenced[c] -> skip   /* links_fence: nothing from a fenced core counts */
            :: else ->
            if
            :: t == GRANT_REPLY ->
                /* capops_on_grant_reply: later than grant_expire waited, or not */
                if
                :: grants[c] > 0 -> grants[c]--
                :: else -> assert(lost[c] || BUG_EXPIRE_FORGETS_ON)
                fi;
                if
                :: !revoking && anchor && !holders[1] && !holders[2] && grants[1] == 0 && grants[2] == 0 ->
                    drop_anchor()
                :: else -> skip
                fi
            :: t == RELEASED ->
                if
                :: holders[c] -> holder_gone(c, false)
                :: else -> skip
                fi
            :: t == REVOKE_REPLY ->
                /* an answer to the revoke under way says the core holds
                 * nothing (no grant can follow the call: locked), so a
                 * lost grant's core leaves too; a late one (the wait
                 * ended, new grants may have gone since) counts only as a
                 * release */
                if
#ifdef BUG_LATE_ANSWER_CLEARS_LOST
                :: holders[c] -> holder_gone(c, true)
#else
                :: holders[c] -> holder_gone(c, revoking && waiting[c])
#endif
                :: else -> skip
                fi
            :: t == GIVE_ON ->
                /* capops_on_give_on: to the other holder core */
                r = NCORES - c;
                /* A holder sends it only while it holds a copy, and
                 * leaves the set only by its own messages, which follow on
                 * the same FIFO (or a timeout, which keeps it): so an
                 * honest holder is always still recorded here, and the
                 * object still anchored (anchor_ok); the C refuses a core
                 * it does not record (a forgery) all the same. */
                if
                :: revoking || fenced[r] -> skip   /* refused: cap_give_on_reply (ERR_CORE_DOWN for a fenced core) */
                :: !revoking && !fenced[r] ->
                    assert(holders[c]);
                    /* give_owned: the core joins before the grant goes */
                    anchor_ok(); holders[r] = true; grants[r]++; C(OWNER, r) ! GRANT, true, 0
                fi
            :: t == REVOKE_ASK ->
                /* capops_on_revoke_ask: a holder's domain revoked its copy */
                if
                :: revoking || moving || tomb || !holders[c] -> C(OWNER, c) ! REVOKE_ASK_REPLY, false, 0
                :: else ->
                    /* start_revoke with a W_ASKER waiter: every holder but c */
                    revoking = true;
                    asker = c;
                    r = 1;
                    do
                    :: r < NCORES ->
                        if
#ifndef BUG_ASK_REVOKES_ASKER
                        :: holders[r] && r != c -> waiting[r] = true; C(OWNER, r) ! REVOKE_CALL, true, 1
#else
                        :: holders[r] -> waiting[r] = true; C(OWNER, r) ! REVOKE_CALL, true, 1
#endif
                        :: else -> skip
                        fi;
                        r++
                    :: else -> break
                    od;
#ifdef BUG_ASK_EARLY
                    /* told at once: the others have not answered */
                    no_copies_but(c);
                    C(OWNER, c) ! REVOKE_ASK_REPLY, true, 0;
#endif
                    revoke_check_done()
                fi
            :: t == MOVE_REPLY ->
                /* capops_on_move_reply: taken over, a tombstone here (no
                 * other holder to tell: move_finish); refused (it let go,
                 * its release came first): as we were, the anchor gone if
                 * nobody holds */
                moving = false;
                if
                :: ok -> tomb = true
                :: else ->
                    if
                    :: !holders[1] && !holders[2] && grants[1] == 0 && grants[2] == 0 -> drop_anchor()
                    :: else -> want_move = true
                    fi
                fi
            :: t == RETYPE_CALL ->
                /* capops_on_retype_call */
                if
                :: revoking || !holders[c] -> C(OWNER, c) ! RETYPE_REPLY, false, r
                :: !revoking && holders[c] && reserved[r] == c -> C(OWNER, c) ! RETYPE_REPLY, true, r
                :: !revoking && holders[c] && reserved[r] != c && (reserved[r] != NONE || carved0[r]) ->
#ifdef BUG_NO_RESERVE
                    C(OWNER, c) ! RETYPE_REPLY, true, r
#else
                    C(OWNER, c) ! RETYPE_REPLY, false, r
#endif
                :: !revoking && holders[c] && reserved[r] == NONE && !carved0[r] ->
#ifndef BUG_NO_RESERVE
                    reserved[r] = c;
#endif
                    C(OWNER, c) ! RETYPE_REPLY, true, r
                fi
            fi
            fi
        }
    od
}

/* maybe_release */
inline maybe_release(me) {
    if
    :: held[me] && mail[me] == 0 && copies[me] == 0 ->
        held[me] = false;
        took_over[me] = false;
        C(me, OWNER) ! RELEASED, true, 0
    :: else -> skip
    fi
}

proctype Holder(byte me; byte takes; byte deletes; byte carves; byte swaps; bool refuse; byte drops; byte asks;
                byte giveons)
{
    mtype t;
    bool ok;
    byte r;
end:
    do
    :: atomic { !dead[me] && nempty(C(OWNER, me)) -> C(OWNER, me) ? t, ok, r }
        atomic {
            if
            :: t == GRANT ->
                /* capops_on_grant: refused (domain ended, quota) or kept */
                if
                :: refuse ->
                    refuse = false;
                    C(me, OWNER) ! GRANT_REPLY, false, 0;
#ifndef BUG_REFUSE_SILENT
                    /* nothing kept for the object here: say so */
                    if
                    :: !held[me] -> C(me, OWNER) ! RELEASED, true, 0
                    :: else -> skip
                    fi
#endif
                :: true ->
                    held[me] = true;
                    mail[me]++;
                    if
                    :: drops > 0 -> drops--   /* the answer cannot be sent */
                    :: true -> C(me, OWNER) ! GRANT_REPLY, true, 0
                    fi
                fi
            :: t == REVOKE_ASK_REPLY ->
                /* capops_on_revoke_ask_reply: the client hears; the copy it
                 * revoked is kept unless the owner's own revoke took it;
                 * its siblings here go (siblings_go: the other copies,
                 * what was carved from them, the mail) */
                asking[me] = false;
                if
                :: ok -> assert(!ask_kept[me] || copies[me] > 0);
                    /* every copy but the revoked one: the owner core's too */
                    assert(!ask_kept[me] || !own0 || kept0);
                    if
                    :: ask_kept[me] ->
                        copies[me] = 1;
                        mail[me] = 0;
                        CARVED(me, 0) = false;
                        CARVED(me, 1) = false
                    :: else -> skip
                    fi
                :: else -> skip
                fi;
                ask_kept[me] = false
            :: t == MOVE ->
                /* capops_on_move_call ... take_over: the root becomes the original */
                if
                :: held[me] -> took_over[me] = true; C(me, OWNER) ! MOVE_REPLY, true, 0
                :: else -> C(me, OWNER) ! MOVE_REPLY, false, 0
                fi
            :: t == REVOKE_CALL ->
                /* holder_revoke: every copy, carve and mail goes */
                /* an owner's own revoke (range field 0; an ask's is 1)
                 * takes the asker's kept copy too: its ask is refused */
                if
                :: r == 0 -> ask_kept[me] = false
                :: else -> skip
                fi;
                mail[me] = 0;
                copies[me] = 0;
                CARVED(me, 0) = false;
                CARVED(me, 1) = false;
                held[me] = false;
                C(me, OWNER) ! REVOKE_REPLY, true, 0
            :: t == RETYPE_REPLY ->
                /* capops_on_retype_reply: CAPOPS_RETYPE needs the copy still */
                retype_waiting[me] = false;
#ifdef BUG_RETYPE_SWAP
                /* the kernel carves whatever the slot names now */
                r = slot_range[me];
#else
                /* ERR_CAP_REMOTE unless the slot still names what was agreed */
                if
                :: slot_range[me] != asked_range[me] -> ok = false
                :: else -> skip
                fi;
#endif
                if
                :: ok && copies[me] > 0 && !CARVED(me, r) -> CARVED(me, r) = true; check_overlap(r)
                :: else -> skip
                fi
            fi
        }
    /* Take */
    :: atomic { !dead[me] && takes > 0 && mail[me] > 0 -> takes--; mail[me]--; copies[me]++ }
    /* GiveOn: the domain gives its copy on to the other holder core */
    :: atomic { !dead[me] && giveons > 0 && copies[me] > 0 ->
        giveons--;
#ifndef BUG_GIVE_ON_DIRECT
        C(me, OWNER) ! GIVE_ON, true, 0
#else
        held[NCORES - me] = true;
        mail[NCORES - me]++
#endif
        }
    /* Ask: the domain revokes one of its copies through the monitor (its
     * descendants here go, not modelled: they are this core's); the copy
     * itself stays, and is not deleted while the ask waits */
    :: atomic { !dead[me] && asks > 0 && copies[me] > 0 && !asking[me] ->
        asks--;
        asking[me] = true;
        ask_kept[me] = true;
        C(me, OWNER) ! REVOKE_ASK, true, 0 }
    /* Delete a copy: with the last one its carves go; the notice releases */
    :: atomic { !dead[me] && deletes > 0 && copies[me] > ask_kept[me] ->
        deletes--;
        copies[me]--;
        if
        :: copies[me] == 0 -> CARVED(me, 0) = false; CARVED(me, 1) = false
        :: else -> skip
        fi;
        maybe_release(me) }
    /* Carve: ask the owner */
    :: atomic { !dead[me] && carves > 0 && copies[me] > 0 && !retype_waiting[me] ->
        carves--;
        retype_waiting[me] = true;
        if :: r = 0 :: r = 1 fi;
        slot_range[me] = r;
        asked_range[me] = r;
        C(me, OWNER) ! RETYPE_CALL, true, r }
    /* Swap: while the owner is asked, the domain moves another capability
     * (other pages) into the slot it asked to retype */
    :: atomic { !dead[me] && swaps > 0 && retype_waiting[me] ->
        swaps--;
        slot_range[me] = 1 - slot_range[me] }
    od
}

/* Safety at every step: a core holding anything of the object is in the
 * owner's set; a holder carves only what the owner reserved for it. */
#define HOLDS(c) (held[c] || mail[c] > 0 || copies[c] > 0)
#ifdef BUG_NO_RESERVE
#define RESERVED_OK 1
#else
#define RESERVED_OK ((!CARVED(1, 0) || reserved[0] == 1 || fenced[1]) && (!CARVED(1, 1) || reserved[1] == 1 || fenced[1]) && \
                     (!CARVED(2, 0) || reserved[0] == 2 || fenced[2]) && (!CARVED(2, 1) || reserved[1] == 2 || fenced[2]))
#endif
/* One owner: a core that took over has no original on core 0 beside it,
 * and core 0 is a tombstone once the answer came. */
#define ONE_OWNER ((!took_over[1] && !took_over[2]) || (!own0 && !(took_over[1] && took_over[2])))
#define INV ((!HOLDS(1) || holders[1] || fenced[1]) && (!HOLDS(2) || holders[2] || fenced[2]) && RESERVED_OK && \
             (!holders[1] && !holders[2] || anchor) && ONE_OWNER && (!tomb || !own0))

proctype Invariant()
{
end:
    do
    :: atomic { !(INV) -> assert(INV) }
    od
}

/* When nothing can move any more: no revoke locked, every message handled,
 * every grant answered, and the owner records exactly the cores that hold
 * something (none left over: no leak), the anchor only if one does. */
proctype Final()
{
    timeout ->
    assert(!revoking);
    assert(empty(C(0, 1)) && (empty(C(0, 2)) || dead[2]) && empty(C(1, 0)) && empty(C(2, 0)));
    assert(grants[1] == 0 && grants[2] == 0);
    assert(!asking[1] && (!asking[2] || dead[2]) && asker == NONE);   /* every ask answered */
    assert(!dead[2] || fenced[2]);
    /* A core whose grant was lost stays recorded until a revoke's answer. */
    assert(holders[1] == HOLDS(1) || (lost[1] && holders[1]));
    assert(holders[2] == HOLDS(2) || (lost[2] && holders[2]) || (fenced[2] && !holders[2]));
    assert(anchor == (holders[1] || holders[2]));
    /* A handed-over original ends owned by the asker (a tombstone here),
     * or gone with the last copy. */
    assert(!moving && !want_move);
    assert(!handed || tomb || !anchor);
    assert(!tomb || (holders[1] && took_over[1]) || (holders[2] && took_over[2]) || !anchor);
#if !TIMEOUTS
    assert(!DO_REVOKE || revoke_returned || holders[1] || holders[2] || !own0)
#endif
}

init {
    reserved[0] = NONE;
    reserved[1] = NONE;
    atomic {
        run OwnerLoop();
        run OwnerRx(1);
        run OwnerRx(2);
        run Holder(1, HOLDER_TAKES, HOLDER_DELETES, HOLDER_CARVES, HOLDER_SWAPS, HOLDER_REFUSES, HOLDER_DROPS,
                   HOLDER_ASKS, HOLDER_GIVEONS);
        run Holder(2, HOLDER_TAKES, HOLDER_DELETES, HOLDER_CARVES, HOLDER_SWAPS, false, HOLDER_DROPS, 0, 0);
        run Invariant();
        run Final()
    }
}
