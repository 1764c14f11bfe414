/*
 * Measuring channels between monitors.
 *
 * Ping (MON_PING, shell `ping`): round trips of monitor messages over the
 * mesh, forwarded where the plan has no direct channel: what a request to
 * another core's monitor costs. Asynchronous: the monitor serves others
 * between rounds.
 *
 * URPC benchmark (MON_BENCH, shell `bench urpc`): a fresh direct channel
 * between two monitors (kept for later runs), both sides spinning on it
 * alone: round trip, one-way latency (the sender's clock against the
 * receiver's: the TSC is the same clock on every core), throughput of
 * pipelined one-way messages, and the round trip when the receiver sleeps
 * and must be woken by a notification IPI. Synchronous: both monitors do
 * nothing else meanwhile. docs/bench.md describes the output.
 */
#include "monitor.h"

#define MAX_ROUNDS 10000
#define SPIN_FOREVER 1000000000000ull
#define BENCH_TIMEOUT_NS 5000000000ull

enum bench_op { B_PING = 1, B_TPUT, B_DATA, B_SLEEPY, B_STOP };
struct bench_msg {
    uint64_t op, value;
};

static uint64_t samples[MAX_ROUNDS];

static void sort(uint64_t *a, uint32_t n)
{
    /* Shell sort: no recursion, fine for ten thousand samples. */
    for (uint32_t gap = n / 2; gap > 0; gap /= 2)
        for (uint32_t i = gap; i < n; i++) {
            uint64_t x = a[i];
            uint32_t j = i;
            for (; j >= gap && a[j - gap] > x; j -= gap)
                a[j] = a[j - gap];
            a[j] = x;
        }
}

static uint64_t pct(const uint64_t *sorted, uint32_t n, uint32_t p) { return n ? sorted[(uint64_t)(n - 1) * p / 100] : 0; }

/* -- ping over the mesh --------------------------------------------------------- */
static struct {
    bool active;
    uint32_t peer, rounds, done, tag;
    uint64_t started;       /* a ping lost on the way must not block pings forever */
    struct pending req;
    uint64_t rt[MAX_ROUNDS];
} pp;

static errval_t ping_next(void)
{
    struct idl_chan *via = route(pp.peer);
    if (!via)
        return ERR_NO_ROUTE;
    pp.tag = new_tag();
    return monitor_ping_call_send(via, (uint16_t)pp.peer, (uint16_t)my_core, pp.tag, now_ns(), route_hops(pp.peer));
}

static void ping_finish(errval_t err)
{
    pp.active = false;
    sort(pp.rt, pp.done);
    uint64_t median = pct(pp.rt, pp.done, 50), min = pp.done ? pp.rt[0] : 0;
    uint32_t hops = route_hops(pp.peer);
    if (pp.req.kind == PEND_CLIENT) {
        char t[24];
        snprintf(t, sizeof t, "hops %u", hops);
        client_answer(pp.req.client, pp.req.chan, MON_PING, err, median, min, t);
        return;
    }
    struct idl_chan *back = route(pp.req.req_core);
    if (back)
        monitor_pingpair_reply_send(back, (uint16_t)pp.req.req_core, (uint16_t)my_core, pp.req.req_tag, err, median,
                                    min, hops);
}

errval_t bench_pingpair_start(uint32_t peer, uint32_t rounds, const struct pending *requester)
{
    if (peer == my_core || peer >= ncores || rounds == 0 || rounds > MAX_ROUNDS)
        return ERR_INVALID_ARG;
    if (pp.active && now_ns() - pp.started < BENCH_TIMEOUT_NS)
        return ERR_WOULD_BLOCK;
    if (pp.active)
        ping_finish(ERR_TIMEOUT);   /* the requester learns, late */
    pp.active = true;
    pp.started = now_ns();
    pp.peer = peer;
    pp.rounds = rounds;
    pp.done = 0;
    pp.req = *requester;
    errval_t err = ping_next();
    if (err)
        pp.active = false;
    return err;
}

bool bench_ping_reply(const struct monitor_ping_reply_args *a)
{
    if (!pp.active || a->tag != pp.tag || a->src != pp.peer)
        return false;
    pp.rt[pp.done++] = now_ns() - a->stamp;
    if (pp.done < pp.rounds) {
        errval_t err = ping_next();
        if (err)
            ping_finish(err);
    } else {
        ping_finish(ERR_OK);
    }
    return true;
}

/* -- URPC benchmark: the measuring side ------------------------------------------ */
static struct link *bench_links[MESH_MAX_CORES];

static errval_t bench_link(uint32_t peer, struct link **out)
{
    if (bench_links[peer]) {
        *out = bench_links[peer];
        return ERR_OK;
    }
    struct link *l;
    errval_t err = link_offer(peer, LINK_BENCH, &l);
    if (err)
        return err;
    /* The answer comes on the new channel; serve the others meanwhile. */
    uint64_t start = now_ns();
    static uint8_t buf[URPC_MSG_MAX];
    while (!l->up) {
        size_t len;
        err = urpc_recv(&l->ch, buf, sizeof buf, &len, URPC_NONBLOCK);
        if (err == ERR_OK)
            err = monitor_dispatch(&l->idl, &monitor_handlers, buf, len);
        else if (err == ERR_WOULD_BLOCK)
            err = ERR_OK, links_poll();
        if (err)
            return err;
        if (now_ns() - start > BENCH_TIMEOUT_NS)
            return ERR_TIMEOUT;
    }
    bench_links[peer] = l;
    *out = l;
    return ERR_OK;
}

static errval_t exchange(struct link *l, uint64_t op, uint64_t value, struct bench_msg *reply)
{
    struct bench_msg m = { op, value };
    size_t len;
    errval_t err = urpc_send(&l->ch, &m, sizeof m, 0);
    if (!err)
        err = urpc_recv(&l->ch, reply, sizeof *reply, &len, 0);
    if (!err && (len != sizeof *reply || reply->op != op))
        err = ERR_MSG_MALFORMED;
    return err;
}

errval_t bench_urpc(uint32_t peer, uint32_t rounds, struct monitor_bench_reply_args *out)
{
    if (peer == my_core || peer >= ncores || rounds == 0 || rounds > MAX_ROUNDS)
        return ERR_INVALID_ARG;
    struct link *l;
    errval_t err = bench_link(peer, &l);
    if (err)
        return err;
    l->ch.spin_ns = SPIN_FOREVER;
    l->ch.timeout_ns = BENCH_TIMEOUT_NS;
    struct bench_msg r;
    out->rounds = rounds;

    /* Round trips, both sides polling. */
    for (uint32_t i = 0; i < 10 && !err; i++)
        err = exchange(l, B_PING, now_ns(), &r);
    for (uint32_t i = 0; i < rounds && !err; i++) {
        uint64_t t = now_ns();
        err = exchange(l, B_PING, t, &r);
        samples[i] = now_ns() - t;
    }
    if (!err) {
        sort(samples, rounds);
        out->rt_median_ns = pct(samples, rounds, 50);
        out->rt_p10_ns = pct(samples, rounds, 10);
        out->rt_p90_ns = pct(samples, rounds, 90);
        out->rt_min_ns = samples[0];
    }

    /* Throughput: one-way messages as fast as the ring takes them. */
    uint32_t n = rounds * 4 < 20000 ? rounds * 4 : 20000;
    struct bench_msg m = { B_TPUT, n };
    uint64_t t0 = now_ns();
    if (!err)
        err = urpc_send(&l->ch, &m, sizeof m, 0);
    for (uint32_t i = 0; i < n && !err; i++) {
        m = (struct bench_msg){ B_DATA, i };
        err = urpc_send(&l->ch, &m, sizeof m, 0);
    }
    size_t len;
    if (!err)
        err = urpc_recv(&l->ch, &r, sizeof r, &len, 0);
    uint64_t took = now_ns() - t0;
    if (!err && (r.op != B_TPUT || r.value != n))
        err = ERR_MSG_MALFORMED;
    if (!err)
        out->tput_msgs_per_s = took ? (uint64_t)n * 1000000000ull / took : 0;

    /* The wake-up path: the receiver sleeps as soon as its ring is empty. */
    uint32_t wakes = rounds / 4 < 5 ? 5 : rounds / 4 > 200 ? 200 : rounds / 4;
    if (!err)
        err = exchange(l, B_SLEEPY, 1, &r);
    for (uint32_t i = 0; i < wakes && !err; i++) {
        uint64_t until = now_ns() + 200000;   /* give it time to fall asleep */
        while (now_ns() < until)
            urpc_os_relax();
        uint64_t t = now_ns();
        err = exchange(l, B_PING, t, &r);
        samples[i] = now_ns() - t;
    }
    if (!err) {
        sort(samples, wakes);
        out->wake_rt_median_ns = pct(samples, wakes, 50);
        err = exchange(l, B_SLEEPY, 0, &r);
    }
    if (!err)
        err = exchange(l, B_STOP, 0, &r);
    if (!err)
        out->oneway_median_ns = r.value;
    return err;
}

/* -- the other side: echo until told to stop -------------------------------------- */
static uint64_t oneway[MAX_ROUNDS + 16];

void bench_serve(struct link *l)
{
    uint32_t n = 0;
    l->ch.spin_ns = SPIN_FOREVER;
    l->ch.timeout_ns = BENCH_TIMEOUT_NS;
    for (;;) {
        struct bench_msg m;
        size_t len;
        if (urpc_recv(&l->ch, &m, sizeof m, &len, 0) || len != sizeof m)
            return;   /* the measuring side went away: back to work */
        uint64_t now = now_ns();
        switch (m.op) {
        case B_PING:
            if (n < MAX_ROUNDS + 16 && now >= m.value)
                oneway[n++] = now - m.value;
            break;
        case B_TPUT: {
            uint64_t got = 0;
            struct bench_msg d;
            while (got < m.value && urpc_recv(&l->ch, &d, sizeof d, &len, 0) == ERR_OK && d.op == B_DATA)
                got++;
            m.value = got;
            break;
        }
        case B_SLEEPY:
            break;
        case B_STOP:
            sort(oneway, n);
            m.value = pct(oneway, n, 50);
            break;
        default:
            return;
        }
        if (urpc_send(&l->ch, &m, sizeof m, 0))
            return;
        if (m.op == B_SLEEPY)
            l->ch.spin_ns = m.value ? 0 : SPIN_FOREVER;
        if (m.op == B_STOP) {
            l->ch.spin_ns = 0;
            return;
        }
    }
}
