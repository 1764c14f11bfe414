/*
 * urpcbench: the URPC benchmark between two user domains on two cores; the
 * monitors only set up the channel between them (service_register_self,
 * service_connect, service_accept), as for any service.
 *
 *   urpcbench TO [ROUNDS] [report=SERVICE]   measure from this core to core
 *                            TO: start the echoing side there, measure, print
 *                            the result (or send it to SERVICE, the shell's
 *                            `bench urpc`, which prints it)
 *   urpcbench echo SERVICE   the echoing side: connect to SERVICE (hex) and
 *                            answer until told to stop
 *
 * Measured on the one channel, both sides spinning (docs/monitor.md, "URPC
 * benchmark"): the round trip of a 24-byte message after one lap of the
 * ring, the one-way latency (the TSC is one clock on every core), one-way
 * throughput (24, 8 and 56 bytes one per urpc_send, 8 bytes through
 * urpc_send_batch), the round trip to a receiver that sleeps and is woken by
 * a notification IPI, and a bare cache-line ping-pong on the same frame:
 * one 64-bit word that both sides write in turn, as Linux's `cacheline`
 * (bench/linux/pingpong.c), the physical floor of the same run. Each phase
 * is a cost-model region (docs/costmodel.md).
 *
 * The result is one JSON object: the `urpc_bench` event's fields with
 * "where":"user" and bare_rt_{median,p10,p90,min}_ns.
 */
#include <atoll/costmodel.h>
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <if/monclient_if.h>

#define MAX_ROUNDS 10000
#define SPIN_FOREVER 1000000000000ull
#define TIMEOUT_NS 30000000000ull     /* a silent peer is gone (TCG on a loaded host stalls for seconds) */
#define BATCH 32u                     /* messages per urpc_*_batch call */

enum bench_op { B_PING = 1, B_TPUT, B_SLEEPY, B_BARE, B_STOP };
struct bench_msg {
    uint64_t op, value, spare;
};
_Static_assert(sizeof(struct bench_msg) <= URPC_PAYLOAD, "one slot per message");

/* B_TPUT's value: how many data messages follow, their size, and whether
 * they come in batches. A data message's first word is DATA_WORD. */
#define TPUT_VALUE(n, bytes, batched) ((uint64_t)(n) | (uint64_t)(bytes) << 32 | (uint64_t)(batched) << 48)
#define TPUT_COUNT(v) ((uint32_t)(v))
#define TPUT_BYTES(v) ((uint32_t)((v) >> 32) & 0xffffu)
#define TPUT_BATCHED(v) (((v) >> 48) & 1u)
#define DATA_WORD 0xda7a0000da7a0000ull

/* The bare ping-pong's word: the first payload word of the measuring side's
 * last slot (side 1's half ends the frame). Used only between two round
 * trips of URPC, when every slot was taken: URPC reads a payload only after
 * a new header, and its writer rewrites the payload before the header. Its
 * values start at BARE_BASE, which no message of this program writes. */
#define BARE_OFFSET (4096 - URPC_LINE)
#define BARE_BASE 0xba5e000000000000ull

static uint64_t samples[MAX_ROUNDS];
static uint32_t my_core;

static void sort(uint64_t *a, uint32_t n)
{
    for (uint32_t gap = n / 2; gap > 0; gap /= 2)   /* Shell sort: fine for ten thousand */
        for (uint32_t i = gap; i < n; i++) {
            uint64_t x = a[i];
            uint32_t j = i;
            for (; j >= gap && a[j - gap] > x; j -= gap)
                a[j] = a[j - gap];
            a[j] = x;
        }
}

static uint64_t pct(const uint64_t *sorted, uint32_t n, uint32_t p)
{
    return n ? sorted[(uint64_t)(n - 1) * p / 100] : 0;
}

static uint64_t parse_hex(const char *s)
{
    uint64_t v = 0;
    for (; *s; s++)
        v = v * 16 + (uint64_t)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
    return v;
}

/* A decimal number (0 allowed, unlike arg_number); ~0u if it is not one. */
static uint32_t parse_dec(const char *s)
{
    uint32_t v = 0;
    if (!*s)
        return ~0u;
    for (; *s >= '0' && *s <= '9' && v < 100000000; s++)
        v = v * 10 + (uint32_t)(*s - '0');
    return *s ? ~0u : v;
}

static volatile uint64_t *bare_word(struct service_chan *sc)
{
    return (volatile uint64_t *)((char *)sc->map + BARE_OFFSET);
}

/* -- the measuring side ------------------------------------------------------------ */

static errval_t exchange(struct urpc_chan *c, uint64_t op, uint64_t value, struct bench_msg *reply)
{
    struct bench_msg m = { op, value, 0 };
    size_t len;
    errval_t err = urpc_send(c, &m, sizeof m, 0);
    if (!err)
        err = urpc_recv(c, reply, sizeof *reply, &len, 0);
    if (!err && (len != sizeof *reply || reply->op != op))
        err = ERR_MSG_MALFORMED;
    return err;
}

struct result {
    uint64_t rt_median, rt_p10, rt_p90, rt_min, oneway_median, wake_median;
    uint64_t tput, tput8, tput56, tput8_batch;
    uint64_t bare_median, bare_p10, bare_p90, bare_min;
};

static void region_begin(uint32_t word, uint32_t peer)
{
    cm_arg(protocol, word);
    cm_arg(src, my_core);
    cm_arg(dst, peer);
    cm_begin(pingpong);
}

static void region_end(uint32_t ops)
{
    cm_arg(ops, ops);
    cm_end(pingpong);
}

/* n one-way messages of `bytes` back to back, one urpc_send each or BATCH
 * per urpc_send_batch, until the peer has counted them all. A nonzero
 * cm_word makes it a cost-model region (the request, the data, the answer). */
static errval_t stream(struct urpc_chan *c, uint32_t peer, uint32_t n, uint32_t bytes, bool batched,
                       uint32_t cm_word, uint64_t *msgs_per_s)
{
    static uint64_t data[BATCH][URPC_PAYLOAD / 8];
    static struct urpc_out batch[BATCH];
    struct bench_msg m = { B_TPUT, TPUT_VALUE(n, bytes, batched), 0 }, r;
    uint64_t t0 = now_ns();
    if (cm_word)
        region_begin(cm_word, peer);
    errval_t err = urpc_send(c, &m, sizeof m, 0);
    for (uint32_t i = 0; i < n && !err;) {
        uint32_t k = !batched ? 1 : n - i < BATCH ? n - i : BATCH;
        for (uint32_t j = 0; j < k; j++) {
            data[j][0] = DATA_WORD;
            for (uint32_t w = 1; w < URPC_PAYLOAD / 8; w++)
                data[j][w] = i + j;
            batch[j] = (struct urpc_out){ data[j], bytes };
        }
        size_t sent = 1;
        err = batched ? urpc_send_batch(c, batch, k, &sent, 0) : urpc_send(c, data[0], bytes, 0);
        i += (uint32_t)sent;
    }
    size_t len;
    if (!err)
        err = urpc_recv(c, &r, sizeof r, &len, 0);
    if (cm_word)
        region_end(n);
    uint64_t took = now_ns() - t0;
    if (!err && (len != sizeof r || r.op != B_TPUT || r.value != n))
        err = ERR_MSG_MALFORMED;
    if (!err)
        *msgs_per_s = took ? (uint64_t)n * 1000000000ull / took : 0;
    return err;
}

/* Round trips on one word of the shared frame: we write BARE_BASE + 2k + 1,
 * the peer answers BARE_BASE + 2k + 2. The first `warm` are not timed. */
static void bare_pingpong(volatile uint64_t *w, uint32_t warm, uint32_t rounds, uint32_t peer)
{
    for (uint32_t k = 0; k < warm + rounds; k++) {
        if (k == warm)
            region_begin(CM_WORD_cacheline, peer);
        uint64_t t = now_ns();
        __atomic_store_n(w, BARE_BASE + 2 * (uint64_t)k + 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != BARE_BASE + 2 * (uint64_t)k + 2)
            urpc_os_relax();
        if (k >= warm)
            samples[k - warm] = now_ns() - t;
    }
    region_end(rounds);
}

static errval_t measure(struct service_chan *sc, uint32_t peer, uint32_t rounds, struct result *out)
{
    struct urpc_chan *c = &sc->ch;
    struct bench_msg r;
    errval_t err = ERR_OK;
    c->spin_ns = SPIN_FOREVER;
    c->timeout_ns = TIMEOUT_NS;

    /* Round trips, both sides polling, after one lap of the ring so that
     * every slot has been used once (a fresh channel's first lap finds its
     * lines where the frame was zeroed, not where the peer left them). */
    for (uint32_t i = 0; i < c->nslots && !err; i++)
        err = exchange(c, B_PING, now_ns(), &r);
    region_begin(CM_WORD_urpc, peer);
    for (uint32_t i = 0; i < rounds && !err; i++) {
        uint64_t t = now_ns();
        err = exchange(c, B_PING, t, &r);
        samples[i] = now_ns() - t;
    }
    region_end(rounds);
    if (err)
        return err;
    sort(samples, rounds);
    out->rt_median = pct(samples, rounds, 50);
    out->rt_p10 = pct(samples, rounds, 10);
    out->rt_p90 = pct(samples, rounds, 90);
    out->rt_min = samples[0];
    /* The peer's one-way latencies of those round trips (its receive time
     * minus our send time), median. */
    err = exchange(c, B_STOP, 0, &r);
    if (err)
        return err;
    out->oneway_median = r.value;

    /* Throughput: one-way messages as fast as the ring takes them. */
    uint32_t n = rounds * 4 < 20000 ? rounds * 4 : 20000;
    err = stream(c, peer, n, sizeof(struct bench_msg), false, CM_WORD_urpc_stream, &out->tput);
    if (!err)
        err = stream(c, peer, n, 8, false, 0, &out->tput8);
    if (!err)
        err = stream(c, peer, n, URPC_PAYLOAD, false, 0, &out->tput56);
    if (!err)
        err = stream(c, peer, n, 8, true, 0, &out->tput8_batch);

    /* The wake-up path: the peer sleeps as soon as its ring is empty. */
    uint32_t wakes = rounds / 4 < 5 ? 5 : rounds / 4 > 200 ? 200 : rounds / 4;
    if (!err)
        err = exchange(c, B_SLEEPY, 1, &r);
    if (!err)
        region_begin(CM_WORD_urpc_wake, peer);
    for (uint32_t i = 0; i < wakes && !err; i++) {
        uint64_t until = now_ns() + 200000;   /* give it time to fall asleep */
        while (now_ns() < until)
            urpc_os_relax();
        uint64_t t = now_ns();
        err = exchange(c, B_PING, t, &r);
        samples[i] = now_ns() - t;
    }
    if (!err) {
        region_end(wakes);
        sort(samples, wakes);
        out->wake_median = pct(samples, wakes, 50);
        err = exchange(c, B_SLEEPY, 0, &r);
    }

    /* The floor: a bare cache line on the same frame, the same rounds. */
    if (!err)
        err = exchange(c, B_BARE, c->nslots + rounds, &r);
    if (!err) {
        bare_pingpong(bare_word(sc), c->nslots, rounds, peer);
        sort(samples, rounds);
        out->bare_median = pct(samples, rounds, 50);
        out->bare_p10 = pct(samples, rounds, 10);
        out->bare_p90 = pct(samples, rounds, 90);
        out->bare_min = samples[0];
    }
    return err;
}

/* Until the peer connects to our service (it has just been started). */
static errval_t accept_one(struct service_chan *sc)
{
    uint64_t start = now_ns();
    for (;;) {
        uint64_t token = sys_notify_gen();
        errval_t err = service_accept(sc);
        if (err != ERR_WOULD_BLOCK)
            return err;
        if (now_ns() - start > TIMEOUT_NS)
            return ERR_TIMEOUT;
        sys_notify_wait(token, 20000, 0);
    }
}

static int measuring(uint32_t peer, uint32_t rounds, uint64_t report)
{
    static struct service_chan sc, shell;
    static char json[700];
    struct result r = { 0 };
    uint64_t me = 0, id = 0;
    char cmd[64];
    errval_t rerr = ERR_OK, err = service_register_self(&me);
    if (!err && report)
        err = service_connect(report, &shell);
    if (!err) {
        snprintf(cmd, sizeof cmd, "urpcbench echo %llx", (unsigned long long)me);
        err = monclient_spawn_rpc(monitor_chan(), peer, cmd, 0, false, 0, &rerr, &id);
    }
    if (!err)
        err = rerr;
    if (!err)
        err = accept_one(&sc);
    if (!err)
        err = measure(&sc, peer, rounds, &r);
    if (!err)
        err = exchange(&sc.ch, B_STOP, 1, &(struct bench_msg){ 0 });   /* the echoing side ends */
    snprintf(json, sizeof json,
             "{\"where\":\"user\",\"from\":%u,\"to\":%u,\"rounds\":%u,\"error\":\"%s\",\"rt_median_ns\":%llu,"
             "\"rt_p10_ns\":%llu,\"rt_p90_ns\":%llu,\"rt_min_ns\":%llu,\"oneway_median_ns\":%llu,"
             "\"tput_msgs_per_s\":%llu,\"wake_rt_median_ns\":%llu,\"tput8_msgs_per_s\":%llu,"
             "\"tput56_msgs_per_s\":%llu,\"tput8_batch_msgs_per_s\":%llu,\"bare_rt_median_ns\":%llu,"
             "\"bare_rt_p10_ns\":%llu,\"bare_rt_p90_ns\":%llu,\"bare_rt_min_ns\":%llu}",
             my_core, peer, rounds, err_name(err), (unsigned long long)r.rt_median, (unsigned long long)r.rt_p10,
             (unsigned long long)r.rt_p90, (unsigned long long)r.rt_min, (unsigned long long)r.oneway_median,
             (unsigned long long)r.tput, (unsigned long long)r.wake_median, (unsigned long long)r.tput8,
             (unsigned long long)r.tput56, (unsigned long long)r.tput8_batch, (unsigned long long)r.bare_median,
             (unsigned long long)r.bare_p10, (unsigned long long)r.bare_p90, (unsigned long long)r.bare_min);
    if (report && shell.map) {
        shell.ch.timeout_ns = TIMEOUT_NS;
        errval_t e = urpc_send(&shell.ch, json, strlen(json) + 1, 0);
        if (e)
            printf("urpcbench: cannot report: %s\n", err_name(e));
        service_chan_close(&shell, ERR_OK);
    } else {
        printf("@atoll {\"event\":\"urpc_bench\",%s\n", json + 1);
    }
    if (sc.map)
        service_chan_close(&sc, ERR_OK);
    return err ? 1 : 0;
}

/* -- the echoing side ---------------------------------------------------------------- */
static uint64_t oneway[MAX_ROUNDS + 64];

/* Count the data messages B_TPUT announced, stopping at the first that is
 * not one. */
static uint64_t stream_in(struct urpc_chan *c, uint64_t value)
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
        errval_t err = k > 1 ? urpc_recv_batch(c, batch, k, &n, 0)
                             : urpc_recv(c, data[0], sizeof data[0], &batch[0].len, 0);
        if (k == 1 && !err)
            n = 1;
        for (size_t j = 0; j < n; j++) {
            if (batch[j].len != bytes || bytes < 8 || data[j][0] != DATA_WORD)
                return got;
            got++;
        }
        if (err)
            return got;
    }
    return got;
}

static int echoing(uint64_t service)
{
    static struct service_chan sc;
    errval_t err = service_connect_wait(service, &sc, 10000);
    if (err)
        return printf("urpcbench echo: cannot connect: %s\n", err_name(err)), 1;
    struct urpc_chan *c = &sc.ch;
    c->spin_ns = SPIN_FOREVER;
    c->timeout_ns = TIMEOUT_NS;
    uint32_t n = 0;
    for (;;) {
        struct bench_msg m;
        size_t len;
        err = urpc_recv(c, &m, sizeof m, &len, 0);
        if (!err && len != sizeof m)
            err = ERR_MSG_MALFORMED;
        if (err)
            break;
        uint64_t now = now_ns();
        bool bare = false, last = false;
        switch (m.op) {
        case B_PING:
            if (n < MAX_ROUNDS + 64 && now >= m.value)
                oneway[n++] = now - m.value;
            break;
        case B_TPUT:
            m.value = stream_in(c, m.value);
            break;
        case B_SLEEPY:
            break;
        case B_BARE:
            bare = true;
            break;
        case B_STOP:
            last = m.value != 0;
            sort(oneway, n);
            m.value = pct(oneway, n, 50);
            n = 0;
            break;
        default:
            err = ERR_MSG_UNKNOWN;
            break;
        }
        if (err || (err = urpc_send(c, &m, sizeof m, 0)))
            break;
        if (m.op == B_SLEEPY)
            c->spin_ns = m.value ? 0 : SPIN_FOREVER;
        if (bare) {
            volatile uint64_t *w = bare_word(&sc);
            for (uint64_t k = 0; k < m.value; k++) {
                while (__atomic_load_n(w, __ATOMIC_ACQUIRE) != BARE_BASE + 2 * k + 1)
                    urpc_os_relax();
                __atomic_store_n(w, BARE_BASE + 2 * k + 2, __ATOMIC_RELEASE);
            }
        }
        if (last)
            break;
    }
    service_chan_close(&sc, ERR_OK);
    if (err)
        printf("urpcbench echo: %s\n", err_name(err));
    return err ? 1 : 0;
}

int main(int argc, char **argv)
{
    my_core = startup()->core_id;
    errval_t err = monitor_connect();
    if (err)
        return printf("urpcbench: no monitor: %s\n", err_name(err)), 1;
    if (argc == 3 && !strcmp(argv[1], "echo"))
        return echoing(parse_hex(argv[2]));
    uint32_t peer = argc > 1 ? parse_dec(argv[1]) : ~0u, rounds = 500;
    uint64_t report = 0;
    for (int i = 2; i < argc; i++) {
        if (!strncmp(argv[i], "report=", 7))
            report = parse_hex(argv[i] + 7);
        else
            rounds = arg_number(argv[i], 0);
    }
    if (peer == ~0u || peer == my_core || peer >= startup()->ncores || rounds == 0 || rounds > MAX_ROUNDS)
        return printf("usage: urpcbench TO [ROUNDS <= %d] [report=SERVICE] | urpcbench echo SERVICE\n",
                      MAX_ROUNDS), 2;
    return measuring(peer, rounds, report);
}
