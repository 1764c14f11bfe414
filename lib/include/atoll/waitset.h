/*
 * The event loop of a dispatcher (Barrelfish calls it a waitset): every
 * source of work a domain waits on, served in turn, and one place where it
 * sleeps when none has work.
 *
 * A source is anything with a `poll` that does at most one piece of work
 * (take one message, serve one request) and says whether it did: a URPC
 * channel becoming readable, local messages (LMP), the kernel's obituaries,
 * a serial line. One round polls every source once, from where the last
 * round stopped, then fires the timers that are due: a source that always
 * has work gets one turn per round like every other, so none starves.
 *
 * When a round did nothing, the loop polls on for `spin_ns` (a reply that
 * comes soon costs no wake-up; not after a sleep that brought no source
 * work: a loop woken for its timers has nothing coming, and an idle
 * monitor's 50 timer wake-ups a second each spun 50 us, most of what an
 * idle core executed), then sleeps on the core's notifications:
 * it reads the notification generation, raises every source's sleeping
 * flag (a URPC channel's, so that a sender wakes it), looks at every source
 * once more, and only then sleeps, until a notification or the next timer
 * (at most `max_sleep_ns`, so a wake-up that was lost costs no more). The
 * token closes the race between that last look and the sleep.
 *
 * Waking lowers no flag: a source lowers its own when it has work (its
 * senders then stop ringing). A core that wakes only for its timers thus
 * writes no shared line at all, where lowering and raising every flag at
 * each wake-up cost every peer two line transfers (docs/costmodel.md,
 * "an idle core"); a flag left up only costs a sender a wake-up we did not
 * need, never one we did.
 *
 * The same code builds on the Linux host, where tests give it a clock and
 * a sleep of their own (waitset_os_* below).
 */
#ifndef ATOLL_WAITSET_H
#define ATOLL_WAITSET_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

struct urpc_chan;
struct waitset;

struct ws_source {
    /* At most one piece of work: true if it did some. */
    bool (*poll)(struct ws_source *s);
    /* Before sleeping: raise (true) whatever makes a sender wake us (NULL:
     * nothing to raise; the source is polled only). The waitset never
     * lowers it: the source's poll does when it has work (ws_urpc_source
     * before handling it; the monitor's links after, unless it was a lone
     * heartbeat), so that senders stop waking a loop that is awake. */
    void (*set_sleeping)(struct ws_source *s, bool sleeping);
    /* After raising: is work already there? (NULL: never.) */
    bool (*pending)(struct ws_source *s);
    void *arg;                       /* the owner's */
    void *obj;                       /* helpers' (ws_urpc_source: the channel) */
    bool (*on_ready)(struct ws_source *s);   /* helpers': the owner's handler */
    const char *name;
    uint64_t served;                 /* polls that did work */
    /* The waitset's own. */
    struct waitset *ws;
    struct ws_source *prev, *next;   /* a ring, in the order added */
};

struct ws_timer {
    uint64_t deadline_ns;
    void (*fire)(struct ws_timer *t);   /* may arm or cancel any timer, itself too */
    void *arg;
    struct waitset *ws;
    struct ws_timer *next;              /* armed timers, soonest first */
    uint64_t gen;                       /* when it was armed (ws->arm_gen) */
    bool armed;
};

struct waitset {
    struct ws_source *cursor;   /* where the next round starts (NULL: no source) */
    uint32_t nsources;
    struct ws_timer *timers;
    uint64_t arm_gen;           /* timers armed so far */
    uint64_t spin_ns;           /* poll this long after the last work (default 50 us) */
    uint64_t max_sleep_ns;      /* sleep at most this long (default 20 ms) */
    uint64_t idle_since;        /* when the last round that did work ended (0: busy) */
    bool slept;                 /* slept since a source last did work: sleep again without spinning */
    bool stop;                  /* waitset_run returns at the end of this round */
    /* Statistics. */
    uint64_t rounds, sleeps, timers_fired;
};

void waitset_init(struct waitset *ws);
/* Add or remove a source. Removing one during a round (say, a source's
 * poll removing itself when its peer hung up) is safe. */
void waitset_add(struct waitset *ws, struct ws_source *s);
void waitset_remove(struct ws_source *s);
/* Fire `t` at `deadline_ns` (waitset_os_now_ns's clock); again re-arms. */
void waitset_timer_arm(struct waitset *ws, struct ws_timer *t, uint64_t deadline_ns);
void waitset_timer_cancel(struct ws_timer *t);

/* One round: poll every source once, then fire due timers. True if any
 * source did work or a timer fired. */
bool waitset_round(struct waitset *ws);
/* Rounds until one does work, spinning and then sleeping as above; returns
 * after that round (or at once when a timer fires). */
void waitset_dispatch(struct waitset *ws);
/* waitset_dispatch until ws->stop. */
void waitset_run(struct waitset *ws);

/* A URPC channel as a source: `ready` takes (and handles) one message when
 * the channel has one (urpc_pending, true also once the peer hung up or the
 * channel broke, so `ready` learns it), with the channel's sleeping flag. */
void ws_urpc_source(struct ws_source *s, struct urpc_chan *ch, bool (*ready)(struct ws_source *s), void *arg);

/* -- what each platform supplies (lib/waitset_os_atoll.c; tests their own) -- */
uint64_t waitset_os_now_ns(void);
void waitset_os_relax(void);
/* A value that moves whenever a notification may have come (read before
 * the last look), and the sleep that returns at once if it moved. */
uint64_t waitset_os_token(void);
void waitset_os_sleep(uint64_t token, uint64_t timeout_ns);

#endif
