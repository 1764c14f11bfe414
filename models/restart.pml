/*
 * The restart service (servers/starter/starter.c, docs/restart.md) as a
 * Promela model for spin: docs/models.md. One instance of one service, the
 * starter that watches it, and the instance's monitor, on another core.
 *
 * An incarnation of the instance (a domain) starts, may join its group,
 * beats on its heartbeat channel, and at any moment may end (exit, fault,
 * kill), hang (stop beating), or break its own end of the heartbeat
 * channel while it lives (a wild write: the starter then reads a hang-up).
 * When a domain ends, its monitor, in one step as the single-threaded
 * monitor does (monitor/lifetimes.c), hangs up its channels and stops
 * listing it. The starter learns of an end by the hang-up (client_lost),
 * by its monitor's list (`ps`, for an incarnation not beating yet), or
 * ends a hung one itself (kill), and starts a new incarnation under the
 * policy: an incarnation that ended before it joined is a failed start;
 * after RESTART_LIMIT failed starts in a row no more are made.
 *
 * Checked: never two live incarnations at once (the starter starts a new
 * one only when the old is no longer listed by its monitor); no end goes
 * unnoticed, and restarts stop after exactly RESTART_LIMIT + 1 failed
 * starts in a row (when nothing can move, the starter has given up, or the
 * model's bound on incarnations was reached with a restart due). Not
 * checked (spin runs for safety only): that a hang is noticed; one before
 * the first beat is not (docs/restart.md).
 *
 * The bug variants:
 *   BUG_TRUST_HANGUP  client_lost takes a hang-up as an end without asking
 *                     the monitor: an incarnation that broke its channel
 *                     lives on beside the new one.
 *   BUG_NO_PS_WATCH   ends are learned by hang-ups alone: an incarnation
 *                     that ends before its first beat is never noticed.
 */
#include "restart_params.pml"   /* RESTART_LIMIT, INCARNATIONS (from the C) */

/* The current incarnation, as the world sees it. */
bool alive = true;   /* the domain runs (the first is started with the others) */
bool listed = true;  /* its monitor lists it (ps) */
bool hb_open;        /* its heartbeat channel is up (the starter sees no hang-up) */
bool hb_seen;        /* the starter has had a beat on it */
bool joined;         /* it joined its group */
bool hung;           /* it stopped beating */
byte incarnations = 1;   /* started so far */
byte lives = 1;          /* live incarnations: never more than one */

/* The starter's record (struct instance). */
mtype = { STARTING, RUNNING, RESTARTING, FAILED };
mtype state = STARTING;
byte failed_in_row;
bool kill_asked;

/* The monitor: a domain's end, in one step (hang up, unlist, reclaim). */
inline monitor_end() {
    atomic {
        if
        :: alive -> alive = false; lives--; listed = false; hb_open = false
        :: else -> skip
        fi
    }
}

/* instance_ended(): count the failed start, restart or give up. */
inline ended() {
    if
    :: state == STARTING -> failed_in_row++
    :: else -> failed_in_row = 0
    fi;
    if
    :: failed_in_row > RESTART_LIMIT -> state = FAILED
    :: else -> state = RESTARTING
    fi
}

/* restart(): a new incarnation (spawn). Its monitor lists it at once. */
inline restart() {
    assert(!listed);                 /* the old one is gone from its monitor */
    atomic {
        lives++;
        assert(lives == 1);          /* never two at once */
        alive = true; listed = true; hb_open = false; hb_seen = false; joined = false; hung = false;
        kill_asked = false;
        incarnations++;
        state = STARTING
    }
}

active proctype instance() {
end_idle:
    do
    :: alive && !hung && !joined -> atomic { if :: alive -> joined = true :: else -> skip fi }
    :: alive && !hung && !hb_open && !hb_seen -> atomic { if :: alive -> hb_open = true :: else -> skip fi }
    :: alive -> monitor_end()                              /* exit, fault */
    :: alive && !hung -> hung = true                       /* stops beating */
    :: alive && hb_open -> hb_open = false                 /* breaks its own end of the channel */
    od
}

active proctype starter() {
end_watch:
    do
    /* A beat on an open channel: known to be alive; joined: running. */
    :: atomic { state == STARTING && hb_open && !hb_seen -> hb_seen = true }
    :: atomic { state == STARTING && joined -> state = RUNNING }
    /* The heartbeat channel hung up (client_lost). */
    :: atomic { (state == STARTING || state == RUNNING) && hb_seen && !hb_open ->
        hb_seen = false;
#ifdef BUG_TRUST_HANGUP
        ended()
#else
        if
        :: listed -> kill_asked = true      /* still there: end it, the ps watch sees it go */
        :: else -> ended()
        fi
#endif
       }
    /* The ps watch, for one not beating (or whose channel broke). */
#ifndef BUG_NO_PS_WATCH
    :: atomic { (state == STARTING || state == RUNNING) && !hb_seen && !listed -> ended() }
#endif
    /* No beat for HEARTBEAT_HANG_MS: end it. */
    :: atomic { (state == STARTING || state == RUNNING) && hb_seen && hung && !kill_asked -> kill_asked = true }
    /* The monitor carries out a kill. */
    :: kill_asked && alive -> monitor_end()
    /* The back-off has run. */
    :: state == RESTARTING && incarnations < INCARNATIONS -> restart()
    od
}

/* When nothing can move any more (every incarnation has ended: while one
 * lives it may still end), the starter knows: it gave up after exactly
 * RESTART_LIMIT + 1 failed starts in a row, or the model's bound on
 * incarnations stopped it with a restart due. No end went unnoticed. */
active proctype check() {
    timeout ->
    assert(lives == 0 && !alive && !listed);
    assert((state == FAILED && failed_in_row == RESTART_LIMIT + 1) ||
           (state == RESTARTING && incarnations == INCARNATIONS))
}
