/*
 * URPC on the Linux host beside the physical limit, two shared-memory
 * queues people already use, and the kernel's own mechanisms: two threads
 * pinned to two CPUs, one JSON line per measurement on stdout. Built and
 * run by tools/bench-host (gcc/g++ -O2, no sanitizer); docs/urpc.md
 * describes every field.
 *
 * Round trips (bench "host_rt"; per-sample median, p10, p90, min in ns), 8 bytes:
 *   bare          each thread writes its own cache line, spins on the other's
 *   bare_1line    both threads flip one word in one shared line
 *   urpc          urpc_send + spinning urpc_recv
 *   ring          the minimal SPSC ring of spsc_ring.h, one each way
 *   boost         Boost.Lockfree spsc_queue, one each way (boost_spsc.cpp)
 *   urpc_sleep    URPC with spin_ns = 0: every receive sleeps on the futex
 *   pipe, eventfd, futex   blocking Linux round trips (two of each)
 * One-way throughput (bench "host_tput"), messages of 8, 56 and 512 bytes,
 * the sender never waiting for replies, only for space:
 *   urpc          urpc_send / urpc_recv, one message per call
 *   urpc_batch    urpc_send_batch / urpc_recv_batch, up to 32 per call
 *   ring, boost   push / pop, one message per call
 * Every queue has the same buffer per direction (PEER_RING_BYTES, half of
 * URPC's 4 KiB frame).
 *
 * Interleaved: each measurement is cut into `rounds` parts, and every
 * round runs one part of every measurement (starting one further along
 * the list each round), so a noisy moment of a shared host hits all of
 * them alike.
 *
 *   urpc_bench [--cpus A,B] [--samples N] [--msgs M] [--rounds R] [--commit C]
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <atoll/urpc.h>
#include "peers.h"
#include "spsc_ring.h"

#define FRAME 4096
#define BATCH 32u                 /* messages per urpc_*_batch call */

_Static_assert(PEER_RING_BYTES == FRAME / 2, "every queue gets what URPC gets per direction");

static int cpus[2] = {0, 1};
static unsigned samples = 20000;
static unsigned tput_msgs = 1000000;
static unsigned rounds = 5;
static const char *commit = "unknown";
static char host[65];
static char loadavg[64] = "null";
static double tsc_per_ns;
static bool pinned = true;

/* -- time ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* rdtscp waits for the instructions before it: a sample starts after
 * the previous round trip really ended. */
static inline uint64_t tsc(void)
{
    unsigned aux;
    return __builtin_ia32_rdtscp(&aux);
}

static void calibrate(void)
{
    uint64_t t0 = now_ns(), c0 = tsc();
    while (now_ns() - t0 < 50000000u)
        ;
    uint64_t t1 = now_ns(), c1 = tsc();
    tsc_per_ns = (double)(c1 - c0) / (double)(t1 - t0);
}

/* The host's load when the run started, as a JSON array. */
static void read_loadavg(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a, b, c;
    if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(loadavg, sizeof loadavg, "[%.2f,%.2f,%.2f]", a, b, c);
    if (f)
        fclose(f);
}

/* -- two pinned threads ------------------------------------------------------ */

struct pair;
typedef void side_fn(struct pair *p, int side);

struct pair {
    side_fn *fn;
    pthread_barrier_t start;
    uint64_t warmup, n;      /* round trips: unmeasured, measured; throughput: messages */
    uint64_t *lat;           /* samples, in TSC ticks (side 0 fills it) */
    size_t bytes;            /* throughput: message size */
    uint64_t t_begin, t_end; /* throughput: first send, last receive (ns) */
    void *arg;
};

struct runner {
    struct pair *p;
    int side;
};

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        pinned = false;
}

static void *thread_main(void *arg)
{
    struct runner *r = arg;
    pin(cpus[r->side]);
    pthread_barrier_wait(&r->p->start);
    r->p->fn(r->p, r->side);
    return NULL;
}

static void run_pair(struct pair *p)
{
    pthread_t t[2];
    struct runner r[2] = {{p, 0}, {p, 1}};
    pthread_barrier_init(&p->start, NULL, 2);
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, thread_main, &r[i]) != 0) {
            perror("pthread_create");
            exit(1);
        }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&p->start);
}

static inline void relax(void) { __builtin_ia32_pause(); }

static void check(errval_t e, const char *what)
{
    if (e) {
        fprintf(stderr, "urpc_bench: %s: %s\n", what, err_name(e));
        exit(1);
    }
}

/* A message nobody reads after it arrived must still be copied. */
static inline void consume(void *m) { __asm__ volatile("" : : "r"(m) : "memory"); }

/* -- round trips ------------------------------------------------------------- */

struct lines {
    _Alignas(64) uint64_t ping;
    _Alignas(64) uint64_t pong;
};

static void rt_bare(struct pair *p, int side)
{
    struct lines *l = p->arg;
    for (uint64_t i = 1; i <= p->warmup + p->n; i++) {
        if (side == 0) {
            uint64_t t0 = tsc();
            __atomic_store_n(&l->ping, i, __ATOMIC_RELEASE);
            while (__atomic_load_n(&l->pong, __ATOMIC_ACQUIRE) != i)
                relax();
            if (i > p->warmup)
                p->lat[i - p->warmup - 1] = tsc() - t0;
        } else {
            while (__atomic_load_n(&l->ping, __ATOMIC_ACQUIRE) != i)
                relax();
            __atomic_store_n(&l->pong, i, __ATOMIC_RELEASE);
        }
    }
}

static void rt_bare_1line(struct pair *p, int side)
{
    struct lines *l = p->arg;
    for (uint64_t i = 1; i <= p->warmup + p->n; i++) {
        if (side == 0) {
            uint64_t t0 = tsc();
            __atomic_store_n(&l->ping, 2 * i - 1, __ATOMIC_RELEASE);
            while (__atomic_load_n(&l->ping, __ATOMIC_ACQUIRE) != 2 * i)
                relax();
            if (i > p->warmup)
                p->lat[i - p->warmup - 1] = tsc() - t0;
        } else {
            while (__atomic_load_n(&l->ping, __ATOMIC_ACQUIRE) != 2 * i - 1)
                relax();
            __atomic_store_n(&l->ping, 2 * i, __ATOMIC_RELEASE);
        }
    }
}

static void rt_urpc(struct pair *p, int side)
{
    struct urpc_chan *c = &((struct urpc_chan *)p->arg)[side];
    uint64_t msg = 0;
    size_t len;
    for (uint64_t i = 1; i <= p->warmup + p->n; i++) {
        if (side == 0) {
            uint64_t t0 = tsc();
            msg = i;
            check(urpc_send(c, &msg, sizeof msg, 0), "send");
            check(urpc_recv(c, &msg, sizeof msg, &len, 0), "recv");
            if (i > p->warmup)
                p->lat[i - p->warmup - 1] = tsc() - t0;
        } else {
            check(urpc_recv(c, &msg, sizeof msg, &len, 0), "recv");
            check(urpc_send(c, &msg, sizeof msg, 0), "send");
        }
    }
}

/* rings[0] carries side 0's messages, rings[1] side 1's. */
static void rt_ring(struct pair *p, int side)
{
    struct spsc_ring **r = p->arg;
    uint64_t msg = 0;
    for (uint64_t i = 1; i <= p->warmup + p->n; i++) {
        if (side == 0) {
            uint64_t t0 = tsc();
            msg = i;
            while (!spsc_push(r[0], &msg, sizeof msg))
                relax();
            while (!spsc_pop(r[1], &msg, sizeof msg))
                relax();
            consume(&msg);
            if (i > p->warmup)
                p->lat[i - p->warmup - 1] = tsc() - t0;
        } else {
            while (!spsc_pop(r[0], &msg, sizeof msg))
                relax();
            while (!spsc_push(r[1], &msg, sizeof msg))
                relax();
        }
    }
}

static void rt_boost(struct pair *p, int side)
{
    void **q = p->arg;
    boost_round_trip(q[0], q[1], side, p->warmup, p->n, p->lat);
}

/* fds[s] carries side s's messages: [read end, write end] (an eventfd is
 * both). 8 bytes each way. */
static void rt_fds(struct pair *p, int side)
{
    int (*fds)[2] = p->arg;
    int rd = fds[!side][0], wr = fds[side][1];
    uint64_t v = 1;
    for (uint64_t i = 1; i <= p->warmup + p->n; i++) {
        uint64_t t0 = tsc();
        if (side == 0 && write(wr, &v, sizeof v) != sizeof v)
            exit(1);
        if (read(rd, &v, sizeof v) != sizeof v)
            exit(1);
        if (side == 1 && write(wr, &v, sizeof v) != sizeof v)
            exit(1);
        if (side == 0 && i > p->warmup)
            p->lat[i - p->warmup - 1] = tsc() - t0;
    }
}

static long futex(uint32_t *w, int op, uint32_t val)
{
    return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

/* Side s writes word s (a cache line apart from the other); shared, not
 * FUTEX_PRIVATE, futexes like URPC's host platform. */
struct futex_words {
    _Alignas(64) uint32_t w0;
    _Alignas(64) uint32_t w1;
};

static void rt_futex(struct pair *p, int side)
{
    struct futex_words *fw = p->arg;
    uint32_t *w[2] = {&fw->w0, &fw->w1};
    for (uint32_t i = 1; i <= p->warmup + p->n; i++) {
        uint64_t t0 = tsc();
        if (side == 1) {
            uint32_t v;
            while ((v = __atomic_load_n(w[0], __ATOMIC_ACQUIRE)) != i)
                futex(w[0], FUTEX_WAIT, v);
        }
        __atomic_store_n(w[side], i, __ATOMIC_RELEASE);
        futex(w[side], FUTEX_WAKE, 1);
        if (side == 0) {
            uint32_t v;
            while ((v = __atomic_load_n(w[1], __ATOMIC_ACQUIRE)) != i)
                futex(w[1], FUTEX_WAIT, v);
            if (i > p->warmup)
                p->lat[i - p->warmup - 1] = tsc() - t0;
        }
    }
}

/* -- one-way throughput -------------------------------------------------------- */

static void tput_urpc(struct pair *p, int side)
{
    struct urpc_chan *c = &((struct urpc_chan *)p->arg)[side];
    static uint8_t out[URPC_MSG_MAX], in[URPC_MSG_MAX];
    size_t len;
    if (side == 0) {
        memset(out, 0x5a, p->bytes);
        p->t_begin = now_ns();
        for (uint64_t i = 0; i < p->n; i++)
            check(urpc_send(c, out, p->bytes, 0), "send");
    } else {
        for (uint64_t i = 0; i < p->n; i++)
            check(urpc_recv(c, in, sizeof in, &len, 0), "recv");
        p->t_end = now_ns();
    }
}

/* The same stream through the batched calls: BATCH messages of p->bytes
 * from one buffer per call (the last call fewer). */
static void tput_urpc_batch(struct pair *p, int side)
{
    struct urpc_chan *c = &((struct urpc_chan *)p->arg)[side];
    static uint8_t out[BATCH * 512], in[BATCH * 512];
    static struct urpc_out tx[BATCH];
    static struct urpc_in rx[BATCH];
    if (side == 0) {
        memset(out, 0x5a, sizeof out);
        for (unsigned j = 0; j < BATCH; j++)
            tx[j] = (struct urpc_out){out + j * p->bytes, p->bytes};
        p->t_begin = now_ns();
        for (uint64_t i = 0; i < p->n;) {
            size_t want = p->n - i < BATCH ? p->n - i : BATCH, sent;
            check(urpc_send_batch(c, tx, want, &sent, 0), "send_batch");
            i += sent;
        }
    } else {
        for (unsigned j = 0; j < BATCH; j++)
            rx[j] = (struct urpc_in){in + j * p->bytes, p->bytes, 0};
        for (uint64_t i = 0; i < p->n;) {
            size_t got;
            check(urpc_recv_batch(c, rx, BATCH, &got, 0), "recv_batch");
            i += got;
        }
        p->t_end = now_ns();
    }
}

static void tput_ring(struct pair *p, int side)
{
    struct spsc_ring *r = p->arg;
    static uint8_t out[512], in[512];
    uint32_t size = (uint32_t)p->bytes;
    if (side == 0) {
        memset(out, 0x5a, size);
        p->t_begin = now_ns();
        /* A constant size per loop, as Boost's templates get. */
        for (uint64_t i = 0; i < p->n; i++)
            switch (size) {
            case 8: while (!spsc_push(r, out, 8)) relax(); break;
            case 56: while (!spsc_push(r, out, 56)) relax(); break;
            default: while (!spsc_push(r, out, 512)) relax(); break;
            }
    } else {
        for (uint64_t i = 0; i < p->n; i++) {
            switch (size) {
            case 8: while (!spsc_pop(r, in, 8)) relax(); break;
            case 56: while (!spsc_pop(r, in, 56)) relax(); break;
            default: while (!spsc_pop(r, in, 512)) relax(); break;
            }
            consume(in);
        }
        p->t_end = now_ns();
    }
}

static void tput_boost(struct pair *p, int side)
{
    if (side == 0)
        p->t_begin = now_ns();
    boost_stream(p->arg, p->bytes, side, p->n);
    if (side == 1)
        p->t_end = now_ns();
}

/* -- the measurements ------------------------------------------------------------ */

enum transport { T_NONE, T_URPC_SPIN, T_URPC_SLEEP, T_URPC_TPUT, T_RING, T_BOOST, T_PIPE,
                 T_EVENTFD, T_FUTEX, T_LINES };

struct measurement {
    const char *method;
    bool tput;               /* host_tput, else host_rt */
    size_t bytes;            /* message size */
    side_fn *fn;
    enum transport t;
    uint64_t warmup;         /* round trips per part before measuring */
    /* Results, over all rounds of one run. */
    uint64_t *lat;           /* samples so far (host_rt) */
    uint64_t nlat;
    double rate[64];         /* host_tput: msgs/s of each round */
    struct urpc_stats tx, rx;
};

#define RT(name, f, tr, w) {.method = name, .bytes = 8, .fn = f, .t = tr, .warmup = w}
#define TPUT(name, size, f, tr) {.method = name, .tput = true, .bytes = size, .fn = f, .t = tr}
static struct measurement list[] = {
    RT("bare", rt_bare, T_LINES, 1000),
    RT("bare_1line", rt_bare_1line, T_LINES, 1000),
    RT("urpc", rt_urpc, T_URPC_SPIN, 1000),
    RT("ring", rt_ring, T_RING, 1000),
    RT("boost", rt_boost, T_BOOST, 1000),
    RT("urpc_sleep", rt_urpc, T_URPC_SLEEP, 100),
    RT("pipe", rt_fds, T_PIPE, 100),
    RT("eventfd", rt_fds, T_EVENTFD, 100),
    RT("futex", rt_futex, T_FUTEX, 100),
#define TPUT_ALL(size)                                                                             \
    TPUT("urpc", size, tput_urpc, T_URPC_TPUT), TPUT("urpc_batch", size, tput_urpc_batch, T_URPC_TPUT), \
    TPUT("ring", size, tput_ring, T_RING), TPUT("boost", size, tput_boost, T_BOOST)
    TPUT_ALL(8),
    TPUT_ALL(56),
    TPUT_ALL(512),
};
#define NMEAS (sizeof list / sizeof list[0])

/* Fresh shared state for one part of a measurement. */
struct transport_state {
    _Alignas(4096) uint8_t frame[FRAME];
    struct urpc_chan urpc[2];
    struct lines lines;
    struct futex_words fw;
    struct spsc_ring *ring[2];
    void *boost[2];
    int fds[2][2];
};

static void *setup(struct transport_state *s, const struct measurement *m)
{
    switch (m->t) {
    case T_LINES:
        memset(&s->lines, 0, sizeof s->lines);
        return &s->lines;
    case T_URPC_SPIN:
    case T_URPC_SLEEP:
    case T_URPC_TPUT:
        memset(s->frame, 0, sizeof s->frame);
        for (int side = 0; side < 2; side++) {
            check(urpc_init(&s->urpc[side], s->frame, sizeof s->frame, side), "init");
            s->urpc[side].spin_ns = m->t == T_URPC_SPIN ? UINT64_MAX : m->t == T_URPC_SLEEP ? 0 : 20000;
        }
        return s->urpc;
    case T_RING:
        for (int i = 0; i < 2; i++) {
            s->ring[i] = aligned_alloc(64, sizeof(struct spsc_ring) + PEER_RING_BYTES);
            if (!s->ring[i])
                exit(1);
            spsc_ring_init(s->ring[i], PEER_RING_BYTES, (uint32_t)m->bytes);
        }
        return m->tput ? (void *)s->ring[0] : (void *)s->ring;
    case T_BOOST:
        for (int i = 0; i < 2; i++)
            if (!(s->boost[i] = boost_queue_new(m->bytes)))
                exit(1);
        return m->tput ? s->boost[0] : (void *)s->boost;
    case T_PIPE:
        if (pipe(s->fds[0]) || pipe(s->fds[1]))
            exit(1);
        return s->fds;
    case T_EVENTFD:
        for (int i = 0; i < 2; i++)
            if ((s->fds[i][0] = s->fds[i][1] = eventfd(0, 0)) < 0)
                exit(1);
        return s->fds;
    case T_FUTEX:
        memset(&s->fw, 0, sizeof s->fw);
        return &s->fw;
    case T_NONE:
        break;
    }
    return NULL;
}

static void teardown(struct transport_state *s, struct measurement *m)
{
    switch (m->t) {
    case T_URPC_SPIN:
    case T_URPC_SLEEP:
    case T_URPC_TPUT:
        for (int side = 0; side < 2; side++) {
            const struct urpc_stats *a = &s->urpc[side].stats;
            struct urpc_stats *to = side == 0 ? &m->tx : &m->rx;
            to->full_waits += a->full_waits;
            to->acks_published += a->acks_published;
            to->sleeps += a->sleeps;
            to->wakeups_sent += a->wakeups_sent;
            to->packed_slots_sent += a->packed_slots_sent;
        }
        break;
    case T_RING:
        free(s->ring[0]);
        free(s->ring[1]);
        break;
    case T_BOOST:
        boost_queue_free(s->boost[0], m->bytes);
        boost_queue_free(s->boost[1], m->bytes);
        break;
    case T_PIPE:
        for (int i = 0; i < 2; i++) {
            close(s->fds[i][0]);
            close(s->fds[i][1]);
        }
        break;
    case T_EVENTFD:
        close(s->fds[0][0]);
        close(s->fds[1][0]);
        break;
    default:
        break;
    }
}

/* Round r's part of m: its share of the samples or messages. */
static void run_part(struct measurement *m, unsigned r)
{
    static struct transport_state s;
    uint64_t total = m->tput ? tput_msgs : samples;
    uint64_t n = total / rounds + (r < total % rounds);
    struct pair p = {.fn = m->fn, .warmup = m->warmup, .n = n, .bytes = m->bytes};
    p.arg = setup(&s, m);
    if (!m->tput)
        p.lat = m->lat + m->nlat;
    run_pair(&p);
    if (m->tput)
        m->rate[r] = (double)n / ((double)(p.t_end - p.t_begin) / 1e9);
    else
        m->nlat += n;
    teardown(&s, m);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double ns(uint64_t ticks) { return (double)ticks / tsc_per_ns; }

static void print_common(void)
{
    printf("\"rounds\":%u,\"cpus\":[%d,%d],\"pinned\":%s,\"loadavg\":%s,\"host\":\"%s\",\"commit\":\"%s\"}\n",
           rounds, cpus[0], cpus[1], pinned ? "true" : "false", loadavg, host, commit);
    fflush(stdout);
}

static void report(struct measurement *m)
{
    if (!m->tput) {
        uint64_t n = m->nlat;
        qsort(m->lat, n, sizeof *m->lat, cmp_u64);
        printf("{\"bench\":\"host_rt\",\"method\":\"%s\",\"msg_bytes\":%zu,\"samples\":%llu,"
               "\"median_ns\":%.1f,\"p10_ns\":%.1f,\"p90_ns\":%.1f,\"min_ns\":%.1f,",
               m->method, m->bytes, (unsigned long long)n, ns(m->lat[n / 2]), ns(m->lat[n / 10]),
               ns(m->lat[n * 9 / 10]), ns(m->lat[0]));
        print_common();
        return;
    }
    double sorted[64];
    memcpy(sorted, m->rate, rounds * sizeof *sorted);
    qsort(sorted, rounds, sizeof *sorted, cmp_double);
    double med = sorted[rounds / 2];
    printf("{\"bench\":\"host_tput\",\"method\":\"%s\",\"msg_bytes\":%zu,\"msgs\":%u,"
           "\"msgs_per_s\":%.0f,\"mbytes_per_s\":%.1f,\"min_msgs_per_s\":%.0f,\"max_msgs_per_s\":%.0f,",
           m->method, m->bytes, tput_msgs, med, med * (double)m->bytes / 1e6, sorted[0],
           sorted[rounds - 1]);
    if (m->t == T_URPC_TPUT)
        printf("\"full_waits\":%llu,\"acks_published\":%llu,\"sleeps\":%llu,\"packed_slots\":%llu,",
               (unsigned long long)m->tx.full_waits, (unsigned long long)m->rx.acks_published,
               (unsigned long long)m->rx.sleeps, (unsigned long long)m->tx.packed_slots_sent);
    print_common();
}

/* -- main ---------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: urpc_bench [--cpus A,B] [--samples N] [--msgs M] [--rounds R] "
                    "[--commit C]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--cpus")) {
            if (sscanf(argv[++i], "%d,%d", &cpus[0], &cpus[1]) != 2)
                usage();
        } else if (!strcmp(argv[i], "--samples")) {
            samples = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--msgs")) {
            tput_msgs = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--rounds")) {
            rounds = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--commit")) {
            commit = argv[++i];
        } else {
            usage();
        }
    }
    if (rounds < 1 || rounds > 64 || samples < 10 * rounds || tput_msgs < rounds)
        usage();
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(host, sizeof host, "%s", u.nodename);
    read_loadavg();
    calibrate();

    for (size_t i = 0; i < NMEAS; i++)
        if (!list[i].tput && !(list[i].lat = calloc(samples, sizeof *list[i].lat)))
            return 1;
    for (unsigned r = 0; r < rounds; r++)
        for (size_t i = 0; i < NMEAS; i++)
            run_part(&list[(i + r) % NMEAS], r);
    for (size_t i = 0; i < NMEAS; i++)
        report(&list[i]);
    return 0;
}
