/*
 * Host unit tests for the event loop (lib/waitset/waitset.c): fairness (a
 * source that always has work never starves another), sources removed
 * while a round runs, timers, and the sleep: flags raised before the last
 * look, no sleep when work came meanwhile, never longer than the next timer
 * or max_sleep_ns. The clock and the sleep are fakes: sleeping moves the
 * clock, so every step is deterministic. A last test drives real URPC
 * channels through ws_urpc_source.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/urpc.h>
#include <atoll/waitset.h>
#include "check.h"

/* -- the fake platform ----------------------------------------------------------- */
static uint64_t clock_ns = 1000000;
static uint64_t token_now = 1;
static uint64_t slept_ns, sleeps, relaxes;
static uint64_t last_sleep_token, last_sleep_timeout;
static void (*on_sleep)(void);   /* something that "arrives" while asleep */

uint64_t waitset_os_now_ns(void) { return clock_ns; }
void waitset_os_relax(void)
{
    relaxes++;
    clock_ns += 1000;   /* a spin takes a microsecond */
}
uint64_t waitset_os_token(void) { return token_now; }
void waitset_os_sleep(uint64_t token, uint64_t timeout_ns)
{
    sleeps++;
    last_sleep_token = token;
    last_sleep_timeout = timeout_ns;
    if (token != token_now)
        return;   /* a notification came after the token was read */
    slept_ns += timeout_ns;
    clock_ns += timeout_ns;
    if (on_sleep)
        on_sleep();
}

/* -- sources that count ------------------------------------------------------------ */
struct counter {
    int work;          /* pieces of work waiting (-1: always) */
    int polls, done;
    int raised, lowered;
    bool flag;         /* the "sleeping" flag */
    int remove_after;  /* remove itself after this much work (0: never) */
    struct ws_source *remove_other;   /* ...or remove that one on its first poll */
    int order[64];
};

static int poll_log[4096];
static int npoll_log;

static bool counter_poll(struct ws_source *s)
{
    struct counter *c = s->arg;
    c->polls++;
    if (npoll_log < 4096)
        poll_log[npoll_log++] = (int)(intptr_t)s->name[0];
    if (c->remove_other) {
        waitset_remove(c->remove_other);
        c->remove_other = NULL;
    }
    if (c->work == 0)
        return false;
    if (c->work > 0)
        c->work--;
    c->done++;
    if (c->remove_after && c->done == c->remove_after)
        waitset_remove(s);
    return true;
}

static void counter_sleeping(struct ws_source *s, bool sleeping)
{
    struct counter *c = s->arg;
    c->flag = sleeping;
    if (sleeping)
        c->raised++;
    else
        c->lowered++;
}

static bool counter_pending(struct ws_source *s) { return ((struct counter *)s->arg)->work != 0; }

static void source(struct ws_source *s, struct counter *c, const char *name)
{
    *s = (struct ws_source){ .poll = counter_poll, .set_sleeping = counter_sleeping, .pending = counter_pending,
                             .arg = c, .name = name };
}

static void test_fairness(void)
{
    struct waitset ws;
    struct ws_source a, b, c;
    struct counter ca = { .work = -1 }, cb = { .work = 50 }, cc = { .work = 1 };
    waitset_init(&ws);
    source(&a, &ca, "a");
    source(&b, &cb, "b");
    source(&c, &cc, "c");
    waitset_add(&ws, &a);
    waitset_add(&ws, &b);
    waitset_add(&ws, &c);
    npoll_log = 0;
    for (int i = 0; i < 100; i++)
        CHECK(waitset_round(&ws));
    /* Every source is polled once per round, whatever a always has. */
    CHECK_EQ(ca.polls, 100);
    CHECK_EQ(cb.polls, 100);
    CHECK_EQ(cc.polls, 100);
    CHECK_EQ(ca.done, 100);
    CHECK_EQ(cb.done, 50);
    CHECK_EQ(cc.done, 1);
    CHECK_EQ(a.served, 100);
    CHECK_EQ(c.served, 1);
    /* ...in turn: a b c a b c ... */
    bool in_turn = true;
    for (int i = 0; i < npoll_log; i++)
        in_turn &= poll_log[i] == "abc"[i % 3];
    CHECK(in_turn);
    /* waitset_dispatch returns after one round that did work: it never
     * sleeps while a source has work. */
    uint64_t s0 = sleeps;
    for (int i = 0; i < 1000; i++)
        waitset_dispatch(&ws);
    CHECK_EQ(sleeps, s0);
    CHECK_EQ(cb.polls, 1100);
}

static void test_remove_during_round(void)
{
    struct waitset ws;
    struct ws_source a, b, c, d;
    struct counter ca = { .work = -1, .remove_after = 3 }, cb = { .work = -1 }, cc = { .work = -1 },
                   cd = { .work = -1 };
    waitset_init(&ws);
    source(&a, &ca, "a");
    source(&b, &cb, "b");
    source(&c, &cc, "c");
    source(&d, &cd, "d");
    waitset_add(&ws, &a);
    waitset_add(&ws, &b);
    waitset_add(&ws, &c);
    waitset_add(&ws, &d);
    for (int i = 0; i < 10; i++)
        waitset_round(&ws);
    CHECK_EQ(ca.done, 3);            /* removed itself after its third */
    CHECK_EQ(cb.polls, 10);          /* the others were not skipped */
    CHECK_EQ(cc.polls, 10);
    CHECK_EQ(ws.nsources, 3);
    /* b removes d, which comes later in the same round: d is not polled. */
    cb.remove_other = &d;
    int d_before = cd.polls;
    waitset_round(&ws);
    CHECK_EQ(cd.polls, d_before);
    CHECK_EQ(ws.nsources, 2);
    /* The cursor's own source removed from outside a round. */
    waitset_remove(ws.cursor);
    CHECK_EQ(ws.nsources, 1);
    waitset_round(&ws);
    waitset_remove(ws.cursor);
    CHECK(ws.cursor == NULL);
    CHECK(!waitset_round(&ws));      /* nothing left: nothing done, no crash */
    /* A source added during a round waits for the next one. */
    struct counter ce = { .work = -1 };
    struct ws_source e;
    source(&e, &ce, "e");
    waitset_add(&ws, &e);
    waitset_round(&ws);
    CHECK_EQ(ce.polls, 1);
}

static struct waitset *timer_ws;
static int fired;
static uint64_t fired_at[8];

static void tick(struct ws_timer *t)
{
    if (fired < 8)
        fired_at[fired] = waitset_os_now_ns();
    fired++;
    if (fired < 3)   /* periodic: every 5 ms, three times */
        waitset_timer_arm(timer_ws, t, t->deadline_ns + 5000000);
}

static void test_timers_and_sleep(void)
{
    struct waitset ws;
    struct ws_source a;
    struct counter ca = { .work = 0 };
    waitset_init(&ws);
    timer_ws = &ws;
    source(&a, &ca, "a");
    waitset_add(&ws, &a);
    struct ws_timer t = { .fire = tick };
    uint64_t start = clock_ns;
    waitset_timer_arm(&ws, &t, start + 10000000);
    /* Idle: spins spin_ns, then sleeps exactly until the timer. */
    waitset_dispatch(&ws);
    CHECK_EQ(fired, 1);
    CHECK_EQ(fired_at[0], start + 10000000);
    /* Raised for the sleep and left up: a timer is no work of the source's,
     * and only a source's own poll lowers its flag (<atoll/waitset.h>). */
    CHECK(ca.raised >= 1 && ca.lowered == 0 && ca.flag);
    CHECK(relaxes >= ws.spin_ns / 1000);
    /* Woken for a timer, nothing else came: back to sleep without spinning. */
    uint64_t relaxed = relaxes;
    waitset_dispatch(&ws);
    CHECK_EQ(relaxes, relaxed);
    waitset_dispatch(&ws);
    CHECK_EQ(fired, 3);
    CHECK_EQ(fired_at[1], start + 15000000);
    CHECK_EQ(fired_at[2], start + 20000000);
    CHECK(!t.armed);
    /* No timer: sleeps at most max_sleep_ns per sleep. */
    waitset_timer_arm(&ws, &t, clock_ns + 100000000);
    ws.max_sleep_ns = 7000000;
    sleeps = 0;
    waitset_dispatch(&ws);
    CHECK(sleeps > 5);
    CHECK(last_sleep_timeout <= 7000000);
    /* Cancel: it never fires. */
    waitset_timer_arm(&ws, &t, clock_ns + 1000);
    waitset_timer_cancel(&t);
    int before = fired;
    clock_ns += 10000;
    waitset_round(&ws);
    CHECK_EQ(fired, before);
    /* Two timers fire in deadline order in one round. */
    struct ws_timer t1 = { .fire = tick }, t2 = { .fire = tick };
    fired = 10;   /* no re-arming */
    waitset_timer_arm(&ws, &t2, clock_ns + 200);
    waitset_timer_arm(&ws, &t1, clock_ns + 100);
    CHECK(ws.timers == &t1 && t1.next == &t2);
    clock_ns += 1000;
    CHECK(waitset_round(&ws));
    CHECK_EQ(fired, 12);
    CHECK(ws.timers == NULL);
}

/* A callback that arms or cancels another timer due in the same round
 * (lib/recover.c's rejoin timer replaying names while the heartbeat timer
 * is due too): the lists stay whole, every armed timer fires once, a
 * cancelled one never, and one re-armed for now waits for the next round. */
static struct ws_timer *other_of[3];
static int other_fired[3];
static bool other_cancel;

static void other(struct ws_timer *t)
{
    int me = t == other_of[0] ? 0 : t == other_of[1] ? 1 : 2;
    other_fired[me]++;
    if (me == 0 && other_fired[0] == 1) {
        waitset_timer_arm(timer_ws, other_of[1], clock_ns);   /* due, and waiting behind us */
        if (other_cancel)
            waitset_timer_cancel(other_of[2]);
    }
}

static void test_a_callback_may_arm_or_cancel_another_due_timer(void)
{
    for (int cancel = 0; cancel < 2; cancel++) {
        struct waitset ws;
        waitset_init(&ws);
        timer_ws = &ws;
        struct ws_timer a = { .fire = other }, b = { .fire = other }, c = { .fire = other };
        other_of[0] = &a, other_of[1] = &b, other_of[2] = &c;
        other_fired[0] = other_fired[1] = other_fired[2] = 0;
        other_cancel = cancel;
        waitset_timer_arm(&ws, &a, clock_ns + 100);
        waitset_timer_arm(&ws, &b, clock_ns + 200);
        waitset_timer_arm(&ws, &c, clock_ns + 300);
        clock_ns += 1000;
        CHECK(waitset_round(&ws));
        CHECK_EQ(other_fired[0], 1);
        CHECK_EQ(other_fired[1], 0);             /* re-armed for now: next round */
        CHECK_EQ(other_fired[2], cancel ? 0 : 1);
        CHECK(ws.timers == &b && b.next == NULL && b.armed && !c.armed);
        CHECK(waitset_round(&ws));
        CHECK_EQ(other_fired[1], 1);
        CHECK(ws.timers == NULL && !a.armed && !b.armed && !c.armed);
        CHECK(!waitset_round(&ws));
        CHECK_EQ(other_fired[0] + other_fired[1] + other_fired[2], cancel ? 2 : 3);
    }
}

/* Work that arrives after the flags are raised but before the sleep is
 * seen by the last look: no sleep. Work that arrives while asleep (the
 * fake delivers a notification) wakes it. */
static struct counter *late;
static void arrive(void)
{
    late->work = 1;
    token_now++;
}

static bool poll_and_arrive_on_raise(struct ws_source *s)
{
    return counter_poll(s);
}

static void raise_and_arrive(struct ws_source *s, bool sleeping)
{
    counter_sleeping(s, sleeping);
    if (sleeping)
        ((struct counter *)s->arg)->work = 1;   /* a sender published just now */
}

static void test_no_lost_wakeup(void)
{
    struct waitset ws;
    struct ws_source a;
    struct counter ca = { .work = 0 };
    waitset_init(&ws);
    source(&a, &ca, "a");
    a.poll = poll_and_arrive_on_raise;
    a.set_sleeping = raise_and_arrive;
    waitset_add(&ws, &a);
    sleeps = 0;
    waitset_dispatch(&ws);
    CHECK_EQ(sleeps, 0);   /* the last look saw it */
    CHECK_EQ(ca.done, 1);
    /* Asleep, then woken by a notification. */
    struct waitset ws2;
    struct ws_source b;
    struct counter cb = { .work = 0 };
    waitset_init(&ws2);
    source(&b, &cb, "b");
    waitset_add(&ws2, &b);
    late = &cb;
    on_sleep = arrive;
    sleeps = 0;
    waitset_dispatch(&ws2);
    on_sleep = NULL;
    CHECK_EQ(sleeps, 1);
    CHECK_EQ(cb.done, 1);
    /* A stale token (a notification between reading it and sleeping)
     * returns at once: the fake does not advance the clock then. */
    uint64_t t0 = clock_ns;
    waitset_os_sleep(token_now - 1, 5000000);
    CHECK_EQ(clock_ns, t0);
}

/* -- real URPC channels ----------------------------------------------------------- */
static struct urpc_chan tx, rx;
static int got_msgs;

static bool take_one(struct ws_source *s)
{
    uint64_t v;
    size_t len;
    errval_t err = urpc_recv(s->obj, &v, sizeof v, &len, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (!err && len == sizeof v && v == (uint64_t)got_msgs)
        got_msgs++;
    else if (err == ERR_CHAN_CLOSED)
        waitset_remove(s);   /* the peer hung up: drop the source */
    return true;
}

static void test_urpc_source(void)
{
    static uint8_t frame[4096] __attribute__((aligned(64)));
    memset(frame, 0, sizeof frame);
    CHECK_ERR(urpc_init(&tx, frame, sizeof frame, 0), ERR_OK);
    CHECK_ERR(urpc_init(&rx, frame, sizeof frame, 1), ERR_OK);
    struct waitset ws;
    struct ws_source s;
    waitset_init(&ws);
    ws_urpc_source(&s, &rx, take_one, NULL);
    waitset_add(&ws, &s);
    CHECK(!waitset_round(&ws));
    for (uint64_t i = 0; i < 10; i++)
        CHECK_ERR(urpc_send(&tx, &i, sizeof i, URPC_NONBLOCK), ERR_OK);
    for (int i = 0; i < 10; i++)
        waitset_dispatch(&ws);
    CHECK_EQ(got_msgs, 10);
    CHECK_EQ(s.served, 10);
    /* The peer hangs up: the source hears it (a closed channel reads as
     * pending) and removes itself. */
    urpc_close(&tx, ERR_OK);
    waitset_dispatch(&ws);
    CHECK_EQ(ws.nsources, 0);
    CHECK(!rx.my_ctrl->sleeping);   /* never left raised */
}

/* An idle loop woken by its timers writes no flag; a message lowers its
 * channel's, so that the sender stops ringing while the loop is awake. */
static int timer_fired;
static void note_fire(struct ws_timer *t)
{
    (void)t;
    timer_fired++;
}

static void test_flags_stay_up_until_work_comes(void)
{
    static uint8_t frame[4096] __attribute__((aligned(64)));
    memset(frame, 0, sizeof frame);
    CHECK_ERR(urpc_init(&tx, frame, sizeof frame, 0), ERR_OK);
    CHECK_ERR(urpc_init(&rx, frame, sizeof frame, 1), ERR_OK);
    got_msgs = 0;
    struct waitset ws;
    struct ws_source s;
    waitset_init(&ws);
    ws_urpc_source(&s, &rx, take_one, NULL);
    waitset_add(&ws, &s);
    struct ws_timer t = { .fire = note_fire };
    for (int i = 0; i < 3; i++) {   /* three wake-ups for a timer, nothing else */
        waitset_timer_arm(&ws, &t, clock_ns + 10000000);
        waitset_dispatch(&ws);
        CHECK(rx.my_ctrl->sleeping);   /* up through every wake-up: no store */
    }
    CHECK_EQ(timer_fired, 3);
    CHECK_EQ(ws.sleeps, 3);
    uint64_t v = 0;
    CHECK_ERR(urpc_send(&tx, &v, sizeof v, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(tx.stats.wakeups_sent, 1);   /* it looked asleep: rung */
    waitset_dispatch(&ws);
    CHECK_EQ(got_msgs, 1);
    CHECK(!rx.my_ctrl->sleeping);   /* the work lowered it */
    v = 1;
    CHECK_ERR(urpc_send(&tx, &v, sizeof v, URPC_NONBLOCK), ERR_OK);
    CHECK_EQ(tx.stats.wakeups_sent, 1);   /* awake: not rung again */
    waitset_dispatch(&ws);
    CHECK_EQ(got_msgs, 2);
}

int main(void)
{
    test_fairness();
    test_remove_during_round();
    test_timers_and_sleep();
    test_a_callback_may_arm_or_cancel_another_due_timer();
    test_no_lost_wakeup();
    test_urpc_source();
    test_flags_stay_up_until_work_comes();
    return check_done();
}
