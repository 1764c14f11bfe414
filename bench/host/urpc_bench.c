/*
 * URPC on the Linux host beside the physical limit and the kernel's own
 * mechanisms: two threads pinned to two CPUs, one JSON line per
 * measurement on stdout. Built and run by tools/bench-host (gcc -O2, no
 * sanitizer); docs/urpc.md describes every field.
 *
 * Round trips (bench "host_rt"; per-sample median, p10, p90, min in ns):
 *   bare          each thread writes its own cache line, spins on the other's
 *   bare_1line    both threads flip one word in one shared line
 *   urpc          urpc_send + spinning urpc_recv, 8-byte messages
 *   urpc_sleep    the same with spin_ns = 0: every receive sleeps on the futex
 *   pipe, eventfd, futex   blocking Linux round trips (two of each)
 * One-way throughput (bench "host_tput"): the sender never waits for
 * replies, only for ring space; messages of 8, 56 and 512 bytes.
 *
 *   urpc_bench [--cpus A,B] [--samples N] [--msgs M] [--commit C]
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

#define WARMUP 1000u
#define FRAME 4096

static int cpus[2] = {0, 1};
static unsigned samples = 20000;
static unsigned tput_msgs = 1000000;
static const char *commit = "unknown";
static char host[65];
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

/* -- two pinned threads ------------------------------------------------------ */

struct pair;
typedef void side_fn(struct pair *p, int side);

struct pair {
    side_fn *fn;
    pthread_barrier_t start;
    uint64_t *lat;           /* samples, in TSC ticks (side 0 fills it) */
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

/* -- round trips ------------------------------------------------------------- */

static inline void relax(void) { __builtin_ia32_pause(); }

struct lines {
    _Alignas(64) uint64_t ping;
    _Alignas(64) uint64_t pong;
};

static void rt_bare(struct pair *p, int side)
{
    struct lines *l = p->arg;
    for (uint64_t i = 1; i <= WARMUP + samples; i++) {
        if (side == 0) {
            uint64_t t0 = tsc();
            __atomic_store_n(&l->ping, i, __ATOMIC_RELEASE);
            while (__atomic_load_n(&l->pong, __ATOMIC_ACQUIRE) != i)
                relax();
            if (i > WARMUP)
                p->lat[i - WARMUP - 1] = tsc() - t0;
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
    for (uint64_t i = 1; i <= WARMUP + samples; i++) {
        if (side == 0) {
            uint64_t t0 = tsc();
            __atomic_store_n(&l->ping, 2 * i - 1, __ATOMIC_RELEASE);
            while (__atomic_load_n(&l->ping, __ATOMIC_ACQUIRE) != 2 * i)
                relax();
            if (i > WARMUP)
                p->lat[i - WARMUP - 1] = tsc() - t0;
        } else {
            while (__atomic_load_n(&l->ping, __ATOMIC_ACQUIRE) != 2 * i - 1)
                relax();
            __atomic_store_n(&l->ping, 2 * i, __ATOMIC_RELEASE);
        }
    }
}

struct urpc_pair {
    struct urpc_chan c[2];
};

static void check(errval_t e, const char *what)
{
    if (e) {
        fprintf(stderr, "urpc_bench: %s: %s\n", what, err_name(e));
        exit(1);
    }
}

static void rt_urpc(struct pair *p, int side)
{
    struct urpc_chan *c = &((struct urpc_pair *)p->arg)->c[side];
    uint64_t msg = 0;
    size_t len;
    for (uint64_t i = 1; i <= WARMUP + samples; i++) {
        if (side == 0) {
            uint64_t t0 = tsc();
            msg = i;
            check(urpc_send(c, &msg, sizeof msg, 0), "send");
            check(urpc_recv(c, &msg, sizeof msg, &len, 0), "recv");
            if (i > WARMUP)
                p->lat[i - WARMUP - 1] = tsc() - t0;
        } else {
            check(urpc_recv(c, &msg, sizeof msg, &len, 0), "recv");
            check(urpc_send(c, &msg, sizeof msg, 0), "send");
        }
    }
}

/* fds[s] carries side s's messages: [read end, write end] (an eventfd is
 * both). 8 bytes each way. */
static void rt_fds(struct pair *p, int side)
{
    int (*fds)[2] = p->arg;
    int rd = fds[!side][0], wr = fds[side][1];
    uint64_t v = 1;
    for (uint64_t i = 1; i <= WARMUP + samples; i++) {
        uint64_t t0 = tsc();
        if (side == 0 && write(wr, &v, sizeof v) != sizeof v)
            exit(1);
        if (read(rd, &v, sizeof v) != sizeof v)
            exit(1);
        if (side == 1 && write(wr, &v, sizeof v) != sizeof v)
            exit(1);
        if (side == 0 && i > WARMUP)
            p->lat[i - WARMUP - 1] = tsc() - t0;
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
    for (uint32_t i = 1; i <= WARMUP + samples; i++) {
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
            if (i > WARMUP)
                p->lat[i - WARMUP - 1] = tsc() - t0;
        }
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double ns(uint64_t ticks) { return (double)ticks / tsc_per_ns; }

static void print_common(void)
{
    printf("\"cpus\":[%d,%d],\"pinned\":%s,\"host\":\"%s\",\"commit\":\"%s\"}\n", cpus[0], cpus[1],
           pinned ? "true" : "false", host, commit);
    fflush(stdout);
}

static void round_trip(const char *method, side_fn *fn, void *arg)
{
    struct pair p = {.fn = fn, .arg = arg};
    p.lat = calloc(samples, sizeof *p.lat);
    if (!p.lat)
        exit(1);
    run_pair(&p);
    qsort(p.lat, samples, sizeof *p.lat, cmp_u64);
    printf("{\"bench\":\"host_rt\",\"method\":\"%s\",\"samples\":%u,\"median_ns\":%.1f,"
           "\"p10_ns\":%.1f,\"p90_ns\":%.1f,\"min_ns\":%.1f,",
           method, samples, ns(p.lat[samples / 2]), ns(p.lat[samples / 10]),
           ns(p.lat[samples * 9 / 10]), ns(p.lat[0]));
    print_common();
    free(p.lat);
}

static struct urpc_pair *new_urpc(uint64_t spin_ns)
{
    static _Alignas(4096) uint8_t frame[FRAME];
    static struct urpc_pair u;
    memset(frame, 0, sizeof frame);
    for (int s = 0; s < 2; s++) {
        check(urpc_init(&u.c[s], frame, sizeof frame, s), "init");
        u.c[s].spin_ns = spin_ns;
    }
    return &u;
}

/* -- one-way throughput -------------------------------------------------------- */

struct tput {
    struct urpc_pair *u;
    size_t bytes;
};

static void tput_urpc(struct pair *p, int side)
{
    struct tput *t = p->arg;
    struct urpc_chan *c = &t->u->c[side];
    static uint8_t out[URPC_MSG_MAX], in[URPC_MSG_MAX];
    size_t len;
    if (side == 0) {
        memset(out, 0x5a, t->bytes);
        p->t_begin = now_ns();
        for (unsigned i = 0; i < tput_msgs; i++)
            check(urpc_send(c, out, t->bytes, 0), "send");
    } else {
        for (unsigned i = 0; i < tput_msgs; i++)
            check(urpc_recv(c, in, sizeof in, &len, 0), "recv");
        p->t_end = now_ns();
    }
}

static void throughput(size_t bytes)
{
    struct tput t = {new_urpc(20000), bytes};
    struct pair p = {.fn = tput_urpc, .arg = &t};
    run_pair(&p);
    double secs = (double)(p.t_end - p.t_begin) / 1e9;
    const struct urpc_stats *tx = &t.u->c[0].stats, *rx = &t.u->c[1].stats;
    printf("{\"bench\":\"host_tput\",\"method\":\"urpc\",\"msg_bytes\":%zu,\"msgs\":%u,"
           "\"msgs_per_s\":%.0f,\"mbytes_per_s\":%.1f,\"full_waits\":%llu,\"acks_published\":%llu,"
           "\"sleeps\":%llu,",
           bytes, tput_msgs, tput_msgs / secs, tput_msgs * (double)bytes / secs / 1e6,
           (unsigned long long)tx->full_waits, (unsigned long long)rx->acks_published,
           (unsigned long long)rx->sleeps);
    print_common();
}

/* -- main ---------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: urpc_bench [--cpus A,B] [--samples N] [--msgs M] [--commit C]\n");
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
        } else if (!strcmp(argv[i], "--commit")) {
            commit = argv[++i];
        } else {
            usage();
        }
    }
    if (samples < 10 || tput_msgs < 1)
        usage();
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(host, sizeof host, "%s", u.nodename);
    calibrate();

    static struct lines l;
    memset(&l, 0, sizeof l);
    round_trip("bare", rt_bare, &l);
    memset(&l, 0, sizeof l);
    round_trip("bare_1line", rt_bare_1line, &l);
    round_trip("urpc", rt_urpc, new_urpc(UINT64_MAX));
    round_trip("urpc_sleep", rt_urpc, new_urpc(0));
    int fds[2][2];
    if (pipe(fds[0]) || pipe(fds[1]))
        return 1;
    round_trip("pipe", rt_fds, fds);
    for (int i = 0; i < 2; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
        fds[i][0] = fds[i][1] = eventfd(0, 0);
        if (fds[i][0] < 0)
            return 1;
    }
    round_trip("eventfd", rt_fds, fds);
    static struct futex_words fw;
    round_trip("futex", rt_futex, &fw);
    static const size_t sizes[] = {8, 56, 512};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        throughput(sizes[i]);
    return 0;
}
