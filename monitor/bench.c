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
 * pipelined one-way messages (24 bytes; 8 and 56 bytes one per call; 8
 * bytes through urpc_send_batch, several to a slot), and the round trip
 * when the receiver sleeps and must be woken by a notification IPI.
 * Synchronous: both monitors do nothing else meanwhile. docs/monitor.md
 * describes the output.
 *
 * Two measurements of one pair must not cross (each side would wait for
 * the other's echo): before it starts, the measuring monitor locks its
 * peer over the mesh (bench_lock). When two lock each other at once, the
 * lower core wins and the higher one serves it, then tries again. Every
 * message carries the run's number, so whatever a run that timed out left
 * in a channel is skipped, never taken for an answer.
 *
 * Each of the three phases is a measured region for the cost model
 * (docs/costmodel.md): markers that cost nothing without it.
 */
#include <atoll/costmodel.h>

#include "monitor.h"
#include <if/monclient_if.h>

#define MAX_ROUNDS 10000
#define SPIN_FOREVER 1000000000000ull
#define BENCH_TIMEOUT_NS 10000000000ull   /* a peer silent this long is gone (TCG on a loaded host stalls for seconds) */

enum bench_op { B_PING = 1, B_TPUT, B_DATA, B_SLEEPY, B_STOP, B_START };
struct bench_msg {
    uint64_t op, value;
    uint64_t run;
};
_Static_assert(sizeof(struct bench_msg) <= URPC_PAYLOAD, "one slot per message");
#define LOCK_TRIES_NS 60000000000ull   /* a busy peer is waited for this long */
#define BATCH 32u                       /* messages per urpc_*_batch call */

/* B_TPUT's value: how many data messages follow, their size, and whether
 * they come in batches. A data message's first word is data_word(run), the
 * rest its index, as far as its size allows (8 bytes: the first word only). */
#define TPUT_VALUE(n, bytes, batched) ((uint64_t)(n) | (uint64_t)(bytes) << 32 | (uint64_t)(batched) << 48)
#define TPUT_COUNT(v) ((uint32_t)(v))
#define TPUT_BYTES(v) ((uint32_t)((v) >> 32) & 0xffffu)
#define TPUT_BATCHED(v) (((v) >> 48) & 1u)
static uint64_t data_word(uint64_t run) { return run << 8 | B_DATA; }

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
    struct asker req;
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
    struct idl_chan ch;
    reply_chan(&ch, &pp.req);
    monclient_ping_reply_send(&ch, err, median, min, route_hops(pp.peer));
}

errval_t bench_pingpair_start(uint32_t peer, uint32_t rounds, const struct asker *requester)
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

static uint64_t run_number;

/* Send one message of this run and wait for its echo, skipping anything
 * left over from an earlier run. */
static errval_t exchange(struct link *l, uint64_t op, uint64_t value, struct bench_msg *reply)
{
    struct bench_msg m = { op, value, run_number };
    size_t len;
    errval_t err = urpc_send(&l->ch, &m, sizeof m, 0);
    while (!err) {
        err = urpc_recv(&l->ch, reply, sizeof *reply, &len, 0);
        if (!err && len == sizeof *reply && reply->run == run_number)
            break;
    }
    if (!err && reply->op != op)
        err = ERR_MSG_MALFORMED;
    return err;
}

/* -- who measures whom ---------------------------------------------------------- */
static uint32_t acquiring = ~0u;   /* the peer we are locking */
static errval_t lock_answer;
static bool lock_answered;
static uint32_t locked_by = ~0u;   /* the monitor measuring us */
static uint64_t locked_since;

void bench_lock_asked(uint32_t from, uint32_t tag)
{
    errval_t err = ERR_OK;
    if (locked_by != ~0u && locked_by != from && now_ns() - locked_since < BENCH_TIMEOUT_NS * 4)
        err = ERR_WOULD_BLOCK;             /* someone else measures us */
    else if (acquiring == from && my_core < from)
        err = ERR_WOULD_BLOCK;             /* we asked first, or tie: the lower core wins */
    if (!err) {
        locked_by = from;
        locked_since = now_ns();
    }
    struct idl_chan *back = route(from);
    if (back)
        monitor_bench_lock_reply_send(back, (uint16_t)from, (uint16_t)my_core, tag, err);
}

void bench_lock_answered(uint32_t from, errval_t err)
{
    if (from == acquiring) {
        lock_answer = err;
        lock_answered = true;
    }
}

static errval_t lock_peer(uint32_t peer)
{
    uint64_t start = now_ns();
    for (;;) {
        struct idl_chan *via = route(peer);
        if (!via)
            return ERR_NO_ROUTE;
        acquiring = peer;
        lock_answered = false;
        errval_t err = monitor_bench_lock_send(via, (uint16_t)peer, (uint16_t)my_core, new_tag());
        /* Serve everyone meanwhile: the peer may be measuring us. */
        while (!err && !lock_answered) {
            if (!links_poll())
                urpc_os_relax();
            if (now_ns() - start > LOCK_TRIES_NS)
                err = ERR_TIMEOUT;
        }
        acquiring = ~0u;
        if (!err)
            err = lock_answer;
        if (err != ERR_WOULD_BLOCK || now_ns() - start > LOCK_TRIES_NS)
            return err;
        uint64_t pause = now_ns() + 1000000;   /* it is busy: let it finish */
        while (now_ns() < pause)
            if (!links_poll())
                urpc_os_relax();
    }
}

struct bench_result {
    uint32_t rounds;
    uint64_t rt_median_ns, rt_p10_ns, rt_p90_ns, rt_min_ns, oneway_median_ns, tput_msgs_per_s, wake_rt_median_ns;
    uint64_t tput8_msgs_per_s, tput56_msgs_per_s, tput8_batch_msgs_per_s;
};

/* n one-way messages of `bytes` (8..56) back to back, one urpc_send each or
 * BATCH per urpc_send_batch, until the peer has counted them all. A nonzero
 * `cm_word` makes it a cost-model region of that protocol (the request, the
 * data and the answer). */
static errval_t stream(struct link *l, uint32_t peer, uint32_t n, uint32_t bytes, bool batched,
                       uint32_t cm_word, uint64_t *msgs_per_s)
{
    static uint64_t data[BATCH][URPC_PAYLOAD / 8];
    static struct urpc_out batch[BATCH];
    struct bench_msg m = { B_TPUT, TPUT_VALUE(n, bytes, batched), run_number }, r;
    uint64_t t0 = now_ns();
    if (cm_word) {
        cm_arg(protocol, cm_word);
        cm_arg(src, my_core);
        cm_arg(dst, peer);
        cm_begin(pingpong);
    }
    errval_t err = urpc_send(&l->ch, &m, sizeof m, 0);
    for (uint32_t i = 0; i < n && !err;) {
        uint32_t k = !batched ? 1 : n - i < BATCH ? n - i : BATCH;
        for (uint32_t j = 0; j < k; j++) {
            data[j][0] = data_word(run_number);
            for (uint32_t w = 1; w < URPC_PAYLOAD / 8; w++)
                data[j][w] = i + j;
            batch[j] = (struct urpc_out){ data[j], bytes };
        }
        size_t sent = 1;
        err = batched ? urpc_send_batch(&l->ch, batch, k, &sent, 0) : urpc_send(&l->ch, data[0], bytes, 0);
        i += (uint32_t)sent;
    }
    size_t len;
    while (!err) {
        err = urpc_recv(&l->ch, &r, sizeof r, &len, 0);
        if (!err && len == sizeof r && r.run == run_number)
            break;
    }
    if (cm_word) {
        cm_arg(ops, n);
        cm_end(pingpong);
    }
    uint64_t took = now_ns() - t0;
    if (!err && (r.op != B_TPUT || r.value != n))
        err = ERR_MSG_MALFORMED;
    if (!err)
        *msgs_per_s = took ? (uint64_t)n * 1000000000ull / took : 0;
    return err;
}

/* Our heartbeats, due while we spin in a benchmark's send or receive: a
 * starved peer can keep us there for seconds, longer than the mesh waits
 * before it suspects a silent core (fence.c). */
static void beat_while_spinning(void)
{
    fence_keepalive(now_ns());
}

static bool measuring;   /* in bench_urpc (which may serve a peer's run meanwhile) */

static errval_t bench_urpc(uint32_t peer, uint32_t rounds, struct bench_result *out)
{
    if (peer == my_core || peer >= ncores || rounds == 0 || rounds > MAX_ROUNDS)
        return ERR_INVALID_ARG;
    if (measuring)
        return ERR_WOULD_BLOCK;   /* asked again while we wait for a peer: one at a time */
    measuring = true;
    errval_t err = lock_peer(peer);
    struct link *l;
    if (!err)
        err = bench_link(peer, &l);
    if (err) {
        measuring = false;
        return err;
    }
    l->ch.spin_ns = SPIN_FOREVER;
    l->ch.timeout_ns = BENCH_TIMEOUT_NS;
    urpc_os_set_spin_hook(beat_while_spinning);
    run_number = (uint64_t)my_core << 32 | new_tag();
    struct bench_msg r;
    out->rounds = rounds;
    err = exchange(l, B_START, 0, &r);

    /* Round trips, both sides polling, after one lap of the ring so every
     * slot has been used once (a fresh channel's first lap finds its lines
     * where the frame was zeroed, not where the peer left them). */
    for (uint32_t i = 0; i < l->ch.nslots && !err; i++)
        err = exchange(l, B_PING, now_ns(), &r);
    cm_arg(protocol, CM_WORD_urpc);
    cm_arg(src, my_core);
    cm_arg(dst, peer);
    cm_begin(pingpong);
    for (uint32_t i = 0; i < rounds && !err; i++) {
        uint64_t t = now_ns();
        err = exchange(l, B_PING, t, &r);
        samples[i] = now_ns() - t;
    }
    cm_arg(ops, rounds);
    cm_end(pingpong);
    if (!err) {
        sort(samples, rounds);
        out->rt_median_ns = pct(samples, rounds, 50);
        out->rt_p10_ns = pct(samples, rounds, 10);
        out->rt_p90_ns = pct(samples, rounds, 90);
        out->rt_min_ns = samples[0];
    }

    /* Throughput: one-way messages as fast as the ring takes them. (Between
     * the phases, the beats that are due: fence.c.) */
    fence_keepalive(now_ns());
    uint32_t n = rounds * 4 < 20000 ? rounds * 4 : 20000;
    if (!err)
        err = stream(l, peer, n, sizeof(struct bench_msg), false, CM_WORD_urpc_stream,
                     &out->tput_msgs_per_s);
    fence_keepalive(now_ns());
    if (!err)
        err = stream(l, peer, n, 8, false, 0, &out->tput8_msgs_per_s);
    fence_keepalive(now_ns());
    if (!err)
        err = stream(l, peer, n, URPC_PAYLOAD, false, 0, &out->tput56_msgs_per_s);
    fence_keepalive(now_ns());
    if (!err)
        err = stream(l, peer, n, 8, true, 0, &out->tput8_batch_msgs_per_s);
    fence_keepalive(now_ns());

    /* The wake-up path: the receiver sleeps as soon as its ring is empty. */
    uint32_t wakes = rounds / 4 < 5 ? 5 : rounds / 4 > 200 ? 200 : rounds / 4;
    if (!err)
        err = exchange(l, B_SLEEPY, 1, &r);
    cm_arg(protocol, CM_WORD_urpc_wake);
    cm_arg(src, my_core);
    cm_arg(dst, peer);
    cm_begin(pingpong);
    for (uint32_t i = 0; i < wakes && !err; i++) {
        uint64_t until = now_ns() + 200000;   /* give it time to fall asleep */
        while (now_ns() < until)
            urpc_os_relax();
        uint64_t t = now_ns();
        err = exchange(l, B_PING, t, &r);
        samples[i] = now_ns() - t;
    }
    cm_arg(ops, wakes);
    cm_end(pingpong);
    if (!err) {
        sort(samples, wakes);
        out->wake_rt_median_ns = pct(samples, wakes, 50);
        err = exchange(l, B_SLEEPY, 0, &r);
    }
    if (!err)
        err = exchange(l, B_STOP, 0, &r);
    if (!err)
        out->oneway_median_ns = r.value;
    urpc_os_set_spin_hook(0);
    measuring = false;
    return err;
}

/* -- the other side: echo until told to stop -------------------------------------- */
static uint64_t oneway[MAX_ROUNDS + 16];

/* Count the data messages of this run that B_TPUT announced (value: count,
 * size, batched), stopping at the first that is not one. */
static uint64_t stream_in(struct link *l, uint64_t value, uint64_t run)
{
    static uint64_t data[BATCH][URPC_PAYLOAD / 8];
    static struct urpc_in batch[BATCH];
    uint32_t want = TPUT_COUNT(value), bytes = TPUT_BYTES(value);
    uint64_t got = 0;
    while (got < want) {
        size_t k = TPUT_BATCHED(value) && want - got > 1 ? (want - got < BATCH ? want - got : BATCH) : 1;
        for (size_t j = 0; j < k; j++)
            batch[j] = (struct urpc_in){ data[j], sizeof data[j], 0 };
        size_t n = 0;
        errval_t err = k > 1 ? urpc_recv_batch(&l->ch, batch, k, &n, 0)
                             : urpc_recv(&l->ch, data[0], sizeof data[0], &batch[0].len, 0);
        if (k == 1 && !err)
            n = 1;
        for (size_t j = 0; j < n; j++) {
            if (batch[j].len != bytes || bytes < 8 || data[j][0] != data_word(run))
                return got;
            got++;
        }
        if (err)
            return got;
    }
    return got;
}

void bench_serve(struct link *l)
{
    uint32_t n = 0;
    uint64_t run = 0;
    l->ch.spin_ns = SPIN_FOREVER;
    l->ch.timeout_ns = BENCH_TIMEOUT_NS;
    urpc_os_set_spin_hook(beat_while_spinning);
    for (;;) {
        struct bench_msg m;
        size_t len;
        /* Until a run starts, only take what is there: leftovers of a run
         * that gave up must not keep us here. */
        errval_t err = urpc_recv(&l->ch, &m, sizeof m, &len, run ? 0 : URPC_NONBLOCK);
        if (err || len != sizeof m)
            break;   /* the measuring side went away (or nothing starts): back to work */
        uint64_t now = now_ns();
        if (m.op != B_PING)
            fence_keepalive(now);   /* between phases: the beats that are due (fence.c) */
        if (m.op == B_START) {
            run = m.run;
            n = 0;
        } else if (m.run != run) {
            continue;   /* left over from a run that gave up */
        }
        switch (m.op) {
        case B_START:
            break;
        case B_PING:
            if (n < MAX_ROUNDS + 16 && now >= m.value)
                oneway[n++] = now - m.value;
            break;
        case B_TPUT:
            m.value = stream_in(l, m.value, run);
            break;
        case B_SLEEPY:
            break;
        case B_STOP:
            sort(oneway, n);
            m.value = pct(oneway, n, 50);
            break;
        default:
            goto done;
        }
        if (urpc_send(&l->ch, &m, sizeof m, 0))
            break;
        if (m.op == B_SLEEPY)
            l->ch.spin_ns = m.value ? 0 : SPIN_FOREVER;
        if (m.op == B_STOP)
            break;
    }
done:
    l->ch.spin_ns = 0;
    urpc_os_set_spin_hook(measuring ? beat_while_spinning : 0);
    if (locked_by == l->peer)
        locked_by = ~0u;   /* the run is over: others may measure us */
}

errval_t bench_urpc_json(uint32_t peer, uint32_t rounds, char *out, size_t size)
{
    struct bench_result r = { 0 };
    errval_t err = bench_urpc(peer, rounds, &r);
    snprintf(out, size,
             "{\"from\":%u,\"to\":%u,\"rounds\":%u,\"rt_median_ns\":%llu,\"rt_p10_ns\":%llu,\"rt_p90_ns\":%llu,"
             "\"rt_min_ns\":%llu,\"oneway_median_ns\":%llu,\"tput_msgs_per_s\":%llu,\"wake_rt_median_ns\":%llu,"
             "\"tput8_msgs_per_s\":%llu,\"tput56_msgs_per_s\":%llu,\"tput8_batch_msgs_per_s\":%llu}",
             my_core, peer, r.rounds, (unsigned long long)r.rt_median_ns, (unsigned long long)r.rt_p10_ns,
             (unsigned long long)r.rt_p90_ns, (unsigned long long)r.rt_min_ns,
             (unsigned long long)r.oneway_median_ns, (unsigned long long)r.tput_msgs_per_s,
             (unsigned long long)r.wake_rt_median_ns, (unsigned long long)r.tput8_msgs_per_s,
             (unsigned long long)r.tput56_msgs_per_s, (unsigned long long)r.tput8_batch_msgs_per_s);
    return err;
}
