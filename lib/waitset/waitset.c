/*
 * The event loop of a dispatcher; the design is in <atoll/waitset.h>.
 * Portable: the clock and the sleep come from waitset_os_* (the guest's in
 * waitset_os_atoll.c, the host tests' their own).
 */
#include <stddef.h>
#include <atoll/urpc.h>
#include <atoll/waitset.h>

#define DEFAULT_SPIN_NS 50000ull
#define DEFAULT_MAX_SLEEP_NS 20000000ull

void waitset_init(struct waitset *ws)
{
    *ws = (struct waitset){ .spin_ns = DEFAULT_SPIN_NS, .max_sleep_ns = DEFAULT_MAX_SLEEP_NS };
}

void waitset_add(struct waitset *ws, struct ws_source *s)
{
    s->ws = ws;
    if (!ws->cursor) {
        s->prev = s->next = s;
        ws->cursor = s;
    } else {
        /* Just before the cursor: the last to be polled in this round. */
        s->next = ws->cursor;
        s->prev = ws->cursor->prev;
        s->prev->next = s;
        ws->cursor->prev = s;
    }
    ws->nsources++;
}

void waitset_remove(struct ws_source *s)
{
    struct waitset *ws = s->ws;
    if (!ws)
        return;
    if (s->next == s) {
        ws->cursor = NULL;
    } else {
        s->prev->next = s->next;
        s->next->prev = s->prev;
        if (ws->cursor == s)
            ws->cursor = s->next;
    }
    ws->nsources--;
    s->ws = NULL;
    s->prev = s->next = NULL;
}

void waitset_timer_arm(struct waitset *ws, struct ws_timer *t, uint64_t deadline_ns)
{
    waitset_timer_cancel(t);
    t->ws = ws;
    t->deadline_ns = deadline_ns;
    t->gen = ws->arm_gen++;
    t->armed = true;
    struct ws_timer **p = &ws->timers;
    while (*p && (*p)->deadline_ns <= deadline_ns)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
}

void waitset_timer_cancel(struct ws_timer *t)
{
    if (!t->armed)
        return;
    for (struct ws_timer **p = &t->ws->timers; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    t->armed = false;
    t->next = NULL;
}

/* Fire what is due, one timer at a time, each off the armed list before
 * it fires: a callback may arm or cancel any timer (a batch taken off the
 * list first was corrupted when a callback re-armed a timer still waiting
 * in it). Only timers armed before this call fire in it: one (re-)armed
 * meanwhile for now fires next round. */
static bool fire_timers(struct waitset *ws, uint64_t now)
{
    uint64_t before = ws->arm_gen;
    bool any = false;
    while (ws->timers && ws->timers->deadline_ns <= now && ws->timers->gen < before) {
        struct ws_timer *t = ws->timers;
        ws->timers = t->next;
        t->armed = false;
        t->next = NULL;
        ws->timers_fired++;
        any = true;
        t->fire(t);
    }
    return any;
}

bool waitset_round(struct waitset *ws)
{
    bool did = false;
    ws->rounds++;
    /* Each source once: the count is taken now, so sources added meanwhile
     * wait for the next round, and one that removes itself is not skipped
     * over (the cursor has already moved past it). */
    for (uint32_t n = ws->nsources; n > 0 && ws->cursor; n--) {
        struct ws_source *s = ws->cursor;
        ws->cursor = s->next;
        if (s->poll(s)) {
            s->served++;
            did = true;
        }
    }
    bool fired = ws->timers && fire_timers(ws, waitset_os_now_ns());
    /* Only work from a source makes the loop spin again before it sleeps:
     * a wake-up for timers alone (or for nothing) sleeps again at once, and
     * a timer that fires while the loop spins after real work leaves the
     * spin as it was. */
    if (did)
        ws->slept = false;
    return did || fired;
}

static uint64_t sleep_for(const struct waitset *ws, uint64_t now)
{
    uint64_t t = ws->max_sleep_ns;
    if (ws->timers) {
        uint64_t until = ws->timers->deadline_ns > now ? ws->timers->deadline_ns - now : 0;
        if (until < t)
            t = until;
    }
    return t;
}

static void set_sleeping(struct waitset *ws, bool sleeping)
{
    struct ws_source *s = ws->cursor;
    for (uint32_t n = 0; s && n < ws->nsources; n++, s = s->next)
        if (s->set_sleeping)
            s->set_sleeping(s, sleeping);
}

static bool any_pending(struct waitset *ws)
{
    struct ws_source *s = ws->cursor;
    for (uint32_t n = 0; s && n < ws->nsources; n++, s = s->next)
        if (s->pending && s->pending(s))
            return true;
    return false;
}

void waitset_dispatch(struct waitset *ws)
{
    for (;;) {
        if (waitset_round(ws)) {
            ws->idle_since = 0;
            return;
        }
        uint64_t now = waitset_os_now_ns();
        if (!ws->idle_since)
            ws->idle_since = now;
        if (!ws->slept && now - ws->idle_since < ws->spin_ns) {
            waitset_os_relax();
            continue;
        }
        uint64_t timeout = sleep_for(ws, now);
        if (timeout) {
            uint64_t token = waitset_os_token();
            set_sleeping(ws, true);
            if (!any_pending(ws)) {
                ws->sleeps++;
                ws->slept = true;
                waitset_os_sleep(token, timeout);
            }
            /* The flags stay up: the source that has work lowers its own
             * when it is polled (waitset_round). */
        }
        ws->idle_since = 0;
    }
}

void waitset_run(struct waitset *ws)
{
    while (!ws->stop)
        waitset_dispatch(ws);
}

/* -- URPC channels as sources -------------------------------------------------- */

static bool urpc_poll(struct ws_source *s)
{
    struct urpc_chan *ch = s->obj;
    if (!urpc_pending(ch))
        return false;
    if (!ch->broken)
        urpc_set_sleeping(ch, false);   /* busy: its sender need not ring (a no-op if lowered) */
    return s->on_ready(s);
}

static void urpc_sleeping(struct ws_source *s, bool sleeping)
{
    struct urpc_chan *ch = s->obj;
    if (!ch->broken)
        urpc_set_sleeping(ch, sleeping);
}

static bool urpc_has(struct ws_source *s) { return urpc_pending(s->obj); }

void ws_urpc_source(struct ws_source *s, struct urpc_chan *ch, bool (*ready)(struct ws_source *s), void *arg)
{
    *s = (struct ws_source){ .poll = urpc_poll, .set_sleeping = urpc_sleeping, .pending = urpc_has, .arg = arg,
                             .obj = ch, .on_ready = ready, .name = "urpc" };
}
