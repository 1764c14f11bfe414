/* local: the round trip between two address spaces on one core.
 *
 * The yardstick for Atoll's local message passing (LMP, user/lmpbench): two
 * processes (fork, so two address spaces, as two Atoll domains), both pinned
 * to the same CPU, pass a message back and forth; every message is a switch
 * from one process to the other. Protocols:
 *   pipe     1-byte write/read on two pipes
 *   eventfd  8-byte write/read on two eventfds
 *   futex    a word in a shared mapping, FUTEX_WAIT/FUTEX_WAKE
 * A sample is `batch` round trips timed together, divided by batch. Per core
 * and protocol two results, metric "round_trip", unit "cycles" and "ns",
 * params protocol, core, batch.
 *
 * Arguments (key=value): samples=20 batch=20 warmup=BATCH
 *   protocols=pipe,eventfd,futex cpus=0 (the cores to measure on). */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "local"
#define MAX_CPUS 1024

enum proto { PIPE, EVENTFD, FUTEX, NPROTO };
static const char *const proto_names[NPROTO] = {"pipe", "eventfd", "futex"};
static const uint32_t proto_words[NPROTO] = {CM_WORD_pipe, CM_WORD_eventfd, CM_WORD_futex};

static int ab[2], ba[2];          /* pipe ends, or eventfds in both slots */
static uint32_t *word;            /* shared between the processes (futex) */

static long futex(uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static int xfer(int fd, void *buf, size_t n, int writing)
{
    for (;;) {
        ssize_t r = writing ? write(fd, buf, n) : read(fd, buf, n);
        if (r == (ssize_t)n)
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/* One message from this side (to_other) and the answer (from_other).
 * The initiator sets the futex word to 1, the responder back to 0. */
static int ping(enum proto p)
{
    char c = 0;
    uint64_t one = 1, v;
    switch (p) {
    case PIPE:
        return xfer(ab[1], &c, 1, 1) || xfer(ba[0], &c, 1, 0);
    case EVENTFD:
        return xfer(ab[0], &one, 8, 1) || xfer(ba[0], &v, 8, 0);
    case FUTEX:
        __atomic_store_n(word, 1, __ATOMIC_RELEASE);
        futex(word, FUTEX_WAKE, 1);
        while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == 1)
            futex(word, FUTEX_WAIT, 1);
        return 0;
    default:
        return -1;
    }
}

static int pong(enum proto p)
{
    char c;
    uint64_t one = 1, v;
    switch (p) {
    case PIPE:
        return xfer(ab[0], &c, 1, 0) || xfer(ba[1], &c, 1, 1);
    case EVENTFD:
        return xfer(ab[0], &v, 8, 0) || xfer(ba[0], &one, 8, 1);
    case FUTEX:
        while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == 0)
            futex(word, FUTEX_WAIT, 0);
        __atomic_store_n(word, 0, __ATOMIC_RELEASE);
        futex(word, FUTEX_WAKE, 1);
        return 0;
    default:
        return -1;
    }
}

static int measure(enum proto p, int cpu, int samples, int batch, int warmup, double *cyc,
                   double *ns)
{
    if (pin_self(cpu) != 0) {
        emit_error(NAME, "cannot pin to CPU %d: %s", cpu, strerror(errno));
        return -1;
    }
    if (p == PIPE && (pipe(ab) || pipe(ba))) {
        emit_error(NAME, "pipe: %s", strerror(errno));
        return -1;
    }
    if (p == EVENTFD) {
        ab[0] = ab[1] = eventfd(0, 0);
        ba[0] = ba[1] = eventfd(0, 0);
        if (ab[0] < 0 || ba[0] < 0) {
            emit_error(NAME, "eventfd: %s", strerror(errno));
            return -1;
        }
    }
    *word = 0;
    long rounds = warmup + (long)samples * batch;
    pid_t pid = fork();
    if (pid < 0) {
        emit_error(NAME, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {               /* the responder: same CPU (inherited affinity) */
        for (long k = 0; k < rounds; k++)
            if (pong(p))
                _exit(1);
        _exit(0);
    }
    int bad = 0;
    for (long k = 0; k < warmup && !bad; k++)
        bad = ping(p);
    for (int s = 0; s < samples && !bad; s++) {
        uint64_t n0 = now_ns();
        uint64_t t0 = tsc_begin();
        /* Each sample's round trips are a cost-model region (docs/costmodel.md). */
        cm_arg(protocol, proto_words[p]);
        cm_arg(src, cpu);
        cm_begin(local);
        for (int b = 0; b < batch && !bad; b++)
            bad = ping(p);
        cm_arg(ops, batch);
        cm_end(local);
        uint64_t t1 = tsc_end();
        uint64_t n1 = now_ns();
        cyc[s] = (double)(t1 - t0) / batch;
        ns[s] = (double)(n1 - n0) / batch;
    }
    if (bad)
        kill(pid, SIGKILL);
    int ws = 0;
    waitpid(pid, &ws, 0);
    if (p == PIPE) {
        close(ab[0]), close(ab[1]), close(ba[0]), close(ba[1]);
    } else if (p == EVENTFD) {
        close(ab[0]), close(ba[0]);
    }
    if (bad || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        emit_error(NAME, "%s round trip on CPU %d failed", proto_names[p], cpu);
        return -1;
    }
    struct stats sc, sn;
    stats_of(cyc, samples, &sc);
    stats_of(ns, samples, &sn);
    char params[160];
    snprintf(params, sizeof params, "\"protocol\":\"%s\",\"core\":%d,\"batch\":%d",
             proto_names[p], cpu, batch);
    emit_result(NAME, "round_trip", "cycles", &sc, params);
    emit_result(NAME, "round_trip", "ns", &sn, params);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"samples", "batch", "warmup", "protocols", "cpus", NULL};
    if (arg_check(NAME, argc, argv, known))
        return 2;
    int samples = (int)arg_int(argc, argv, "samples", 20);
    int batch = (int)arg_int(argc, argv, "batch", 20);
    int warmup = (int)arg_int(argc, argv, "warmup", batch);
    const char *protos = arg_str(argc, argv, "protocols", "pipe,eventfd,futex");
    const char *cpulist = arg_str(argc, argv, "cpus", "0");
    if (samples < 1 || batch < 1 || warmup < 0) {
        emit_error(NAME, "samples and batch must be at least 1, warmup at least 0");
        return 2;
    }
    static int cpus[MAX_CPUS];
    int ncpu = parse_list(cpulist, cpus, MAX_CPUS);
    if (ncpu < 1) {
        emit_error(NAME, "cpus=%s: use a list such as 0-1", cpulist);
        return 2;
    }
    int use[NPROTO], nuse = 0;
    for (int p = 0; p < NPROTO; p++)
        nuse += use[p] = list_has(protos, proto_names[p]);
    if (!nuse) {
        emit_error(NAME, "protocols=%s: use some of pipe,eventfd,futex", protos);
        return 2;
    }
    word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double *cyc = calloc((size_t)samples, sizeof *cyc);
    double *ns = calloc((size_t)samples, sizeof *ns);
    if (word == MAP_FAILED || !cyc || !ns) {
        emit_error(NAME, "out of memory");
        return 1;
    }
    char info[200];
    snprintf(info, sizeof info, "\"cpus\":\"%s\",\"protocols\":\"%s\",\"samples\":%d,\"batch\":%d",
             cpulist, protos, samples, batch);
    emit_event("info", NAME, info);
    for (int i = 0; i < ncpu; i++)
        for (int p = 0; p < NPROTO; p++)
            if (use[p] && measure((enum proto)p, cpus[i], samples, batch, warmup, cyc, ns) != 0)
                return 1;
    return 0;
}
