/* pingpong: core-to-core round trip for every pair of cores.
 *
 * For each pair (src, dst) the main thread, pinned to src, sends a message to
 * a responder thread pinned to dst and waits for the reply; one round trip
 * is one message each way. Protocols:
 *   cacheline  both threads spin on one shared 64-byte line (the physical
 *              floor: one cache-line transfer each way, no kernel)
 *   pipe       1-byte write/read on two pipes (blocking)
 *   eventfd    8-byte write/read on two eventfds (blocking)
 *   futex      one shared word, FUTEX_WAIT/FUTEX_WAKE (blocking)
 * A sample is `batch` round trips timed together (rdtsc and CLOCK_MONOTONIC),
 * divided by batch. Per pair and protocol it prints two results, metric
 * "round_trip", unit "cycles" and "ns", with params protocol, src, dst, batch.
 *
 * Arguments (key=value): samples=20 batch=20 warmup=BATCH pairs=half|all|row
 *   protocols=cacheline,pipe,eventfd,futex cpus=LIST (default: every CPU)
 * pairs: half = every unordered pair once (src < dst), all = every ordered
 * pair, row = src 0 (the first listed CPU) to every other. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NAME "pingpong"
#define MAX_CPUS 1024

enum proto { CACHELINE, PIPE, EVENTFD, FUTEX, NPROTO };
static const char *const proto_names[NPROTO] = {"cacheline", "pipe", "eventfd", "futex"};
static const uint32_t proto_words[NPROTO] = {CM_WORD_cacheline, CM_WORD_pipe, CM_WORD_eventfd,
                                             CM_WORD_futex};

/* Shared between the two threads of a pair; each hot word on its own lines. */
static _Alignas(128) uint64_t line;
static _Alignas(128) uint32_t fword;
static int fd_ab[2], fd_ba[2];    /* pipe ends or eventfds (both slots the same) */

struct responder {
    enum proto proto;
    int cpu;
    long rounds;
    int failed;
};

static long futex(uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static int xread(int fd, void *buf, size_t n)
{
    for (;;) {
        ssize_t r = read(fd, buf, n);
        if (r == (ssize_t)n)
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

static int xwrite(int fd, const void *buf, size_t n)
{
    for (;;) {
        ssize_t r = write(fd, buf, n);
        if (r == (ssize_t)n)
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/* The initiator's half of round trip k (k counts from 0). */
static inline int send_and_wait(enum proto p, long k)
{
    char c = 0;
    uint64_t one = 1, v;
    switch (p) {
    case CACHELINE:
        __atomic_store_n(&line, 2 * (uint64_t)k + 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&line, __ATOMIC_ACQUIRE) != 2 * (uint64_t)k + 2)
            cpu_relax();
        return 0;
    case PIPE:
        return xwrite(fd_ab[1], &c, 1) || xread(fd_ba[0], &c, 1);
    case EVENTFD:
        return xwrite(fd_ab[0], &one, 8) || xread(fd_ba[0], &v, 8);
    case FUTEX:
        __atomic_store_n(&fword, 1, __ATOMIC_RELEASE);
        futex(&fword, FUTEX_WAKE, 1);
        while (__atomic_load_n(&fword, __ATOMIC_ACQUIRE) == 1)
            futex(&fword, FUTEX_WAIT, 1);
        return 0;
    default:
        return -1;
    }
}

static void *respond(void *arg)
{
    struct responder *r = arg;
    char c;
    uint64_t one = 1, v;
    if (pin_self(r->cpu) != 0) {
        r->failed = errno;
        return NULL;
    }
    for (long k = 0; k < r->rounds; k++) {
        int bad = 0;
        switch (r->proto) {
        case CACHELINE:
            while (__atomic_load_n(&line, __ATOMIC_ACQUIRE) != 2 * (uint64_t)k + 1)
                cpu_relax();
            __atomic_store_n(&line, 2 * (uint64_t)k + 2, __ATOMIC_RELEASE);
            break;
        case PIPE:
            bad = xread(fd_ab[0], &c, 1) || xwrite(fd_ba[1], &c, 1);
            break;
        case EVENTFD:
            bad = xread(fd_ab[0], &v, 8) || xwrite(fd_ba[0], &one, 8);
            break;
        case FUTEX:
            while (__atomic_load_n(&fword, __ATOMIC_ACQUIRE) == 0)
                futex(&fword, FUTEX_WAIT, 0);
            __atomic_store_n(&fword, 0, __ATOMIC_RELEASE);
            futex(&fword, FUTEX_WAKE, 1);
            break;
        default:
            bad = 1;
        }
        if (bad) {
            r->failed = errno ? errno : EIO;
            return NULL;
        }
    }
    return NULL;
}

static int open_channel(enum proto p)
{
    if (p == PIPE)
        return pipe(fd_ab) || pipe(fd_ba);
    if (p == EVENTFD) {
        fd_ab[0] = fd_ab[1] = eventfd(0, 0);
        fd_ba[0] = fd_ba[1] = eventfd(0, 0);
        return fd_ab[0] < 0 || fd_ba[0] < 0;
    }
    line = 0;
    fword = 0;
    return 0;
}

static void close_channel(enum proto p)
{
    if (p == PIPE) {
        close(fd_ab[0]), close(fd_ab[1]), close(fd_ba[0]), close(fd_ba[1]);
    } else if (p == EVENTFD) {
        close(fd_ab[0]), close(fd_ba[0]);
    }
}

/* Measures one pair and protocol; prints two results. 0 or -1. */
static int measure(enum proto p, int src, int dst, int samples, int batch, int warmup,
                   double *cyc, double *ns)
{
    if (pin_self(src) != 0) {
        emit_error(NAME, "cannot pin to CPU %d: %s", src, strerror(errno));
        return -1;
    }
    if (open_channel(p) != 0) {
        emit_error(NAME, "cannot open a %s channel: %s", proto_names[p], strerror(errno));
        return -1;
    }
    struct responder r = {.proto = p, .cpu = dst,
                          .rounds = warmup + (long)samples * batch};
    pthread_t th;
    pthread_attr_t attr;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(dst, &set);
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof set, &set);
    int err = pthread_create(&th, &attr, respond, &r);
    pthread_attr_destroy(&attr);
    if (err) {
        emit_error(NAME, "pthread_create: %s", strerror(err));
        close_channel(p);
        return -1;
    }
    long k = 0;
    int bad = 0;
    for (; k < warmup && !bad; k++)
        bad = send_and_wait(p, k);
    for (int s = 0; s < samples && !bad; s++) {
        uint64_t n0 = now_ns();
        uint64_t t0 = tsc_begin();
        /* Each sample's round trips are a cost-model region (docs/costmodel.md). */
        cm_arg(protocol, proto_words[p]);
        cm_arg(src, src);
        cm_arg(dst, dst);
        cm_begin(pingpong);
        for (int b = 0; b < batch && !bad; b++, k++)
            bad = send_and_wait(p, k);
        cm_arg(ops, batch);
        cm_end(pingpong);
        uint64_t t1 = tsc_end();
        uint64_t n1 = now_ns();
        cyc[s] = (double)(t1 - t0) / batch;
        ns[s] = (double)(n1 - n0) / batch;
    }
    if (bad) {
        /* The responder may be blocked; it dies with the process. */
        emit_error(NAME, "%s round trip %d->%d failed: %s", proto_names[p], src, dst,
                   strerror(errno));
        return -1;
    }
    pthread_join(th, NULL);
    close_channel(p);
    if (r.failed) {
        emit_error(NAME, "%s responder on CPU %d failed: %s", proto_names[p], dst,
                   strerror(r.failed));
        return -1;
    }
    struct stats sc, sn;
    stats_of(cyc, samples, &sc);
    stats_of(ns, samples, &sn);
    char params[200];
    snprintf(params, sizeof params, "\"protocol\":\"%s\",\"src\":%d,\"dst\":%d,\"batch\":%d",
             proto_names[p], src, dst, batch);
    emit_result(NAME, "round_trip", "cycles", &sc, params);
    emit_result(NAME, "round_trip", "ns", &sn, params);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"samples", "batch", "warmup", "pairs", "protocols",
                                        "cpus", NULL};
    if (arg_check(NAME, argc, argv, known))
        return 2;
    int samples = (int)arg_int(argc, argv, "samples", 20);
    int batch = (int)arg_int(argc, argv, "batch", 20);
    int warmup = (int)arg_int(argc, argv, "warmup", batch);
    const char *pairs = arg_str(argc, argv, "pairs", "half");
    const char *protos = arg_str(argc, argv, "protocols", "cacheline,pipe,eventfd,futex");
    if (samples < 1 || batch < 1 || warmup < 0) {
        emit_error(NAME, "samples and batch must be at least 1, warmup at least 0");
        return 2;
    }
    if (strcmp(pairs, "half") && strcmp(pairs, "all") && strcmp(pairs, "row")) {
        emit_error(NAME, "pairs=%s: use half, all or row", pairs);
        return 2;
    }
    int use[NPROTO] = {0}, nuse = 0;
    for (int p = 0; p < NPROTO; p++)
        nuse += use[p] = list_has(protos, proto_names[p]);
    if (!nuse) {
        emit_error(NAME, "protocols=%s: use some of cacheline,pipe,eventfd,futex", protos);
        return 2;
    }
    static int cpus[MAX_CPUS];
    int ncpu = bench_cpus(argc, argv, NAME, cpus, MAX_CPUS);
    if (ncpu < 0)
        return 2;
    if (ncpu < 2) {
        emit_error(NAME, "needs at least two CPUs (have %d)", ncpu);
        return 1;
    }
    char info[300];
    snprintf(info, sizeof info,
             "\"cpus\":%d,\"pairs\":\"%s\",\"protocols\":\"%s\",\"samples\":%d,\"batch\":%d",
             ncpu, pairs, protos, samples, batch);
    emit_event("info", NAME, info);

    double *cyc = calloc((size_t)samples, sizeof *cyc);
    double *ns = calloc((size_t)samples, sizeof *ns);
    if (!cyc || !ns)
        return 1;
    for (int p = 0; p < NPROTO; p++) {
        if (!use[p])
            continue;
        for (int i = 0; i < ncpu; i++) {
            if (!strcmp(pairs, "row") && i > 0)
                break;
            for (int j = 0; j < ncpu; j++) {
                if (i == j || (!strcmp(pairs, "half") && j < i))
                    continue;
                /* A failed pair may leave its responder blocked: stop. */
                if (measure((enum proto)p, cpus[i], cpus[j], samples, batch, warmup, cyc,
                            ns) != 0)
                    return 1;
            }
        }
    }
    return 0;
}
