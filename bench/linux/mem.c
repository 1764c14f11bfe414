/* mem: memory allocation from 1, 2, 4 ... N cores at once, Linux's half of
 * Atoll's `mem` benchmark (docs/bench.md, docs/memory.md).
 *
 * One process, a thread pinned to each of the first N CPUs. Each thread
 * binds its memory to its own node (set_mempolicy(MPOL_BIND) with the node
 * getcpu() names, raw system calls: no libnuma), waits for the start, then
 * times `rounds` times: mmap() of BYTES, a write to every 4 KiB page (the
 * first touch allocates it), munmap(). Before the munmap of each round it
 * asks which node the first page is on (get_mempolicy MPOL_F_NODE |
 * MPOL_F_ADDR), to count local allocations.
 *
 * Results per (bytes, N), params bytes and cores (N) as Atoll's:
 *   alloc_free_latency  ns     every round of every thread (median, p25..p75)
 *   throughput          ops/s  N * rounds / the span from the first thread's first timed round
 *                              to the last one's end (the threads start together, after a warm-up)
 *   local_share         %      rounds whose page was on the thread's node
 *
 * A thread alone (N = 1) marks its timed rounds as one cost-model region
 * (docs/costmodel.md), as Atoll's `mem bench ... 1` does: `mem`, protocol
 * mmap_local, src its CPU, pages per block, ops the rounds.
 *
 * Arguments (key=value): rounds=50 warmup=3 sizes=4096,2097152
 *   n=LIST (default 1, 2, 4 ... and the CPU count) cpus=LIST. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NAME "mem"
#define MAX_CPUS 1024
#define MAX_ROUNDS 10000
#define MPOL_BIND 2
#define MPOL_F_NODE (1 << 0)
#define MPOL_F_ADDR (1 << 1)

static _Alignas(128) int go;
static size_t bytes;
static int rounds, warmup;

struct worker {
    int cpu, failed, local;
    int alone;            /* N = 1: its timed rounds are a cost-model region */
    uint64_t start_ns, end_ns;   /* the timed rounds' span */
    double *lat;          /* rounds of them */
    pthread_t th;
};

static int node_of_self(void)
{
    unsigned cpu = 0, node = 0;
    if (syscall(SYS_getcpu, &cpu, &node, NULL) != 0)
        return -1;
    return (int)node;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    int node;
    if (pin_self(w->cpu) != 0 || (node = node_of_self()) < 0) {
        w->failed = errno ? errno : EINVAL;
        return NULL;
    }
    unsigned long mask[16] = { 0 };
    mask[node / 64] |= 1ul << (node % 64);
    if (syscall(SYS_set_mempolicy, MPOL_BIND, mask, (unsigned long)sizeof mask * 8) != 0) {
        w->failed = errno;
        return NULL;
    }
    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        cpu_relax();
    for (int i = 0; i < warmup + rounds; i++) {
        if (i == warmup && w->alone) {
            cm_arg(protocol, CM_WORD_mmap_local);
            cm_arg(src, w->cpu);
            cm_arg(pages, bytes / 4096);
            cm_begin(mem);
        }
        uint64_t t0 = now_ns();
        if (i == warmup)
            w->start_ns = t0;
        volatile char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            w->failed = errno;
            return NULL;
        }
        for (size_t off = 0; off < bytes; off += 4096)
            p[off] = (char)i;
        int where = -1;
        if (i >= warmup && syscall(SYS_get_mempolicy, &where, NULL, 0, (void *)p, MPOL_F_NODE | MPOL_F_ADDR) == 0)
            w->local += where == node;
        munmap((void *)p, bytes);
        if (i >= warmup)
            w->lat[i - warmup] = (double)(now_ns() - t0);
    }
    w->end_ns = now_ns();
    if (w->alone) {
        cm_arg(ops, rounds);
        cm_end(mem);
    }
    return NULL;
}

static int run(const int *cpus, int n)
{
    static struct worker ws[MAX_CPUS];
    double *lat = calloc((size_t)n * (size_t)rounds, sizeof *lat);
    if (!lat) {
        emit_error(NAME, "out of memory");
        return -1;
    }
    __atomic_store_n(&go, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < n; i++) {
        ws[i] = (struct worker){ .cpu = cpus[i], .alone = n == 1, .lat = lat + (size_t)i * (size_t)rounds };
        if (pthread_create(&ws[i].th, NULL, work, &ws[i]) != 0) {
            emit_error(NAME, "pthread_create: %s", strerror(errno));
            n = i;
            break;
        }
    }
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    int failed = 0, local = 0;
    uint64_t start = UINT64_MAX, end = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ws[i].th, NULL);
        if (ws[i].failed)
            failed = ws[i].failed;
        local += ws[i].local;
        if (ws[i].end_ns > end)
            end = ws[i].end_ns;
        if (ws[i].start_ns < start)
            start = ws[i].start_ns;
    }
    if (!failed && end <= start)
        failed = EINVAL;
    if (failed) {
        emit_error(NAME, "%zu bytes on %d cores: %s", bytes, n, strerror(failed));
        free(lat);
        return -1;
    }
    char params[96];
    snprintf(params, sizeof params, "\"bytes\":%zu,\"cores\":%d", bytes, n);
    struct stats s;
    stats_of(lat, n * rounds, &s);
    emit_result(NAME, "alloc_free_latency", "ns", &s, params);
    struct stats t = { .n = n, .median = (double)n * rounds * 1e9 / (double)(end - start) };
    t.p25 = t.p75 = t.min = t.max = t.mean = t.median;
    emit_result(NAME, "throughput", "ops/s", &t, params);
    struct stats l = { .n = n * rounds, .median = 100.0 * local / (n * rounds) };
    l.p25 = l.p75 = l.min = l.max = l.mean = l.median;
    emit_result(NAME, "local_share", "%", &l, params);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const known[] = { "rounds", "warmup", "sizes", "n", "cpus", NULL };
    if (arg_check(NAME, argc, argv, known))
        return 2;
    rounds = (int)arg_int(argc, argv, "rounds", 50);
    warmup = (int)arg_int(argc, argv, "warmup", 3);
    if (rounds < 1 || rounds > MAX_ROUNDS || warmup < 0) {
        emit_error(NAME, "rounds must be 1..%d, warmup at least 0", MAX_ROUNDS);
        return 2;
    }
    static int cpus[MAX_CPUS], ns[MAX_CPUS], sizes[8];
    int ncpu = bench_cpus(argc, argv, NAME, cpus, MAX_CPUS);
    if (ncpu < 0)
        return 2;
    int nsizes = parse_list(arg_str(argc, argv, "sizes", "4096,2097152"), sizes, 8);
    int nn = 0;
    const char *nspec = arg_str(argc, argv, "n", "");
    if (*nspec) {
        nn = parse_list(nspec, ns, MAX_CPUS);
    } else {
        for (int k = 1; k < ncpu; k *= 2)
            ns[nn++] = k;
        ns[nn++] = ncpu;
    }
    if (nn < 1 || nsizes < 1) {
        emit_error(NAME, "n= and sizes= take lists such as 1-4,8");
        return 2;
    }
    int rc = 0;
    for (int z = 0; z < nsizes; z++) {
        if (sizes[z] < 4096 || sizes[z] % 4096) {
            emit_error(NAME, "size %d: a multiple of 4096", sizes[z]);
            rc = 1;
            continue;
        }
        bytes = (size_t)sizes[z];
        for (int i = 0; i < nn; i++) {
            if (ns[i] < 1 || ns[i] > ncpu) {
                emit_error(NAME, "n=%d: this machine has %d CPUs", ns[i], ncpu);
                rc = 1;
                continue;
            }
            if (run(cpus, ns[i]) != 0)
                rc = 1;
        }
    }
    return rc;
}
