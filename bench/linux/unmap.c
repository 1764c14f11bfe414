/* unmap: TLB shootdown cost, the multikernel paper's experiment.
 *
 * One process, one thread pinned to each of N CPUs (the first N of the CPU
 * list). Every iteration the main thread (on the first CPU) maps a fresh
 * page and writes it; every other thread reads it, so each CPU holds a TLB
 * entry for it, and acknowledges; the workers then spin in user mode on a
 * control line (so they stay in the address space and must be interrupted).
 * The main thread then times one call:
 *   op=munmap    munmap() of the page
 *   op=mprotect  mprotect() of the page from read-write to read-only
 *                (the page is made writable again, untimed, before the
 *                next iteration)
 * For each op and N it prints two results, metric "latency", unit "cycles"
 * and "ns" (one call per sample), params op, cores (= N) and pages.
 * N = 1 is the baseline without any other CPU to interrupt.
 *
 * Arguments (key=value): iters=20 warmup=3 ops=munmap,mprotect pages=1
 *   n=all|LIST (values of N, e.g. 1-4,8,16; default every N from 1 to the
 *   CPU count) cpus=LIST (default: every CPU). */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NAME "unmap"
#define MAX_CPUS 1024

static _Alignas(128) uint64_t gen;      /* bumped by the main thread per iteration */
static _Alignas(128) char *volatile page;
static _Alignas(128) int stop;
static struct {
    _Alignas(128) uint64_t seen;
} ack[MAX_CPUS];

struct worker {
    int idx, cpu, failed;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    if (pin_self(w->cpu) != 0) {
        w->failed = errno;
        __atomic_store_n(&ack[w->idx].seen, UINT64_MAX, __ATOMIC_RELEASE);
        return NULL;
    }
    uint64_t last = __atomic_load_n(&gen, __ATOMIC_ACQUIRE);
    __atomic_store_n(&ack[w->idx].seen, last, __ATOMIC_RELEASE);
    for (;;) {
        uint64_t g = __atomic_load_n(&gen, __ATOMIC_ACQUIRE);
        if (g == last) {
            cpu_relax();
            continue;
        }
        if (__atomic_load_n(&stop, __ATOMIC_ACQUIRE))
            return NULL;
        (void)*(volatile char *)page;     /* load a TLB entry for the page */
        __atomic_store_n(&ack[w->idx].seen, g, __ATOMIC_RELEASE);
        last = g;
    }
}

static int wait_acks(int nworkers, uint64_t g, struct worker *ws)
{
    for (int i = 1; i <= nworkers; i++) {
        uint64_t v;
        while ((v = __atomic_load_n(&ack[i].seen, __ATOMIC_ACQUIRE)) != g) {
            if (v == UINT64_MAX) {
                emit_error(NAME, "worker on CPU %d cannot pin: %s", ws[i].cpu,
                           strerror(ws[i].failed));
                return -1;
            }
            cpu_relax();
        }
    }
    return 0;
}

/* One op at N CPUs: iters timed calls. 0 or -1. */
static int run(const char *op, int n, const int *cpus, int iters, int warmup, int pages,
               double *cyc, double *ns)
{
    long psz = sysconf(_SC_PAGESIZE);
    size_t len = (size_t)pages * (size_t)psz;
    int is_munmap = !strcmp(op, "munmap");
    static struct worker ws[MAX_CPUS];
    static pthread_t th[MAX_CPUS];
    char *fixed = NULL;
    int rc = 0, started = 0;

    if (pin_self(cpus[0]) != 0) {
        emit_error(NAME, "cannot pin to CPU %d: %s", cpus[0], strerror(errno));
        return -1;
    }
    if (!is_munmap) {
        fixed = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (fixed == MAP_FAILED) {
            emit_error(NAME, "mmap: %s", strerror(errno));
            return -1;
        }
    }
    __atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
    uint64_t g = __atomic_load_n(&gen, __ATOMIC_ACQUIRE);
    for (int i = 1; i < n; i++) {
        ws[i] = (struct worker){.idx = i, .cpu = cpus[i]};
        __atomic_store_n(&ack[i].seen, g + 1, __ATOMIC_RELEASE);   /* not yet started */
        pthread_attr_t attr;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[i], &set);
        pthread_attr_init(&attr);
        pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        int err = pthread_create(&th[i], &attr, work, &ws[i]);
        pthread_attr_destroy(&attr);
        if (err) {
            emit_error(NAME, "pthread_create: %s", strerror(err));
            rc = -1;
            break;
        }
        started = i;
    }
    if (rc == 0)
        rc = wait_acks(started, g, ws);        /* every worker is running */

    for (int it = 0; rc == 0 && it < warmup + iters; it++) {
        char *p = fixed;
        if (is_munmap) {
            p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                emit_error(NAME, "mmap: %s", strerror(errno));
                rc = -1;
                break;
            }
        } else if (mprotect(p, len, PROT_READ | PROT_WRITE) != 0) {
            emit_error(NAME, "mprotect: %s", strerror(errno));
            rc = -1;
            break;
        }
        for (size_t off = 0; off < len; off += (size_t)psz)
            p[off] = (char)it;
        page = p;
        g = __atomic_add_fetch(&gen, 1, __ATOMIC_ACQ_REL);
        if (wait_acks(started, g, ws) != 0) {
            rc = -1;
            break;
        }
        /* Each timed call is a cost-model region (docs/costmodel.md). */
        if (it >= warmup) {
            cm_arg(protocol, is_munmap ? CM_WORD_munmap : CM_WORD_mprotect);
            cm_arg(cores, n);
            cm_arg(pages, pages);
            cm_arg(ops, 1);
            cm_begin(unmap);
        }
        uint64_t n0 = now_ns();
        uint64_t t0 = tsc_begin();
        int r = is_munmap ? munmap(p, len) : mprotect(p, len, PROT_READ);
        uint64_t t1 = tsc_end();
        uint64_t n1 = now_ns();
        if (it >= warmup)
            cm_end(unmap);
        if (r != 0) {
            emit_error(NAME, "%s: %s", op, strerror(errno));
            rc = -1;
            break;
        }
        if (it >= warmup) {
            cyc[it - warmup] = (double)(t1 - t0);
            ns[it - warmup] = (double)(n1 - n0);
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&gen, 1, __ATOMIC_ACQ_REL);
    for (int i = 1; i <= started; i++)
        pthread_join(th[i], NULL);
    if (fixed)
        munmap(fixed, len);
    if (rc != 0)
        return -1;
    struct stats sc, sn;
    stats_of(cyc, iters, &sc);
    stats_of(ns, iters, &sn);
    char params[160];
    snprintf(params, sizeof params, "\"op\":\"%s\",\"cores\":%d,\"pages\":%d", op, n, pages);
    emit_result(NAME, "latency", "cycles", &sc, params);
    emit_result(NAME, "latency", "ns", &sn, params);
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"iters", "warmup", "ops", "pages", "n", "cpus", NULL};
    if (arg_check(NAME, argc, argv, known))
        return 2;
    int iters = (int)arg_int(argc, argv, "iters", 20);
    int warmup = (int)arg_int(argc, argv, "warmup", 3);
    int pages = (int)arg_int(argc, argv, "pages", 1);
    const char *ops = arg_str(argc, argv, "ops", "munmap,mprotect");
    if (iters < 1 || warmup < 0 || pages < 1) {
        emit_error(NAME, "iters and pages must be at least 1, warmup at least 0");
        return 2;
    }
    int do_munmap = list_has(ops, "munmap"), do_mprotect = list_has(ops, "mprotect");
    if (!do_munmap && !do_mprotect) {
        emit_error(NAME, "ops=%s: use munmap, mprotect or both", ops);
        return 2;
    }
    static int cpus[MAX_CPUS], ns_list[MAX_CPUS];
    int ncpu = bench_cpus(argc, argv, NAME, cpus, MAX_CPUS);
    if (ncpu < 0)
        return 2;
    const char *nspec = arg_str(argc, argv, "n", "all");
    int nn;
    if (!strcmp(nspec, "all")) {
        nn = ncpu;
        for (int i = 0; i < ncpu; i++)
            ns_list[i] = i + 1;
    } else {
        nn = parse_list(nspec, ns_list, MAX_CPUS);
        if (nn < 1) {
            emit_error(NAME, "n=%s: use all or a list such as 1-4,8", nspec);
            return 2;
        }
    }
    char info[200];
    snprintf(info, sizeof info, "\"cpus\":%d,\"ops\":\"%s\",\"iters\":%d,\"pages\":%d", ncpu,
             ops, iters, pages);
    emit_event("info", NAME, info);

    double *cyc = calloc((size_t)iters, sizeof *cyc);
    double *ns = calloc((size_t)iters, sizeof *ns);
    if (!cyc || !ns)
        return 1;
    int failed = 0;
    for (int k = 0; k < nn; k++) {
        int n = ns_list[k];
        if (n < 1 || n > ncpu) {
            emit_error(NAME, "n=%d: this machine has %d CPUs", n, ncpu);
            failed = 1;
            continue;
        }
        if (do_munmap && run("munmap", n, cpus, iters, warmup, pages, cyc, ns) != 0)
            return 1;
        if (do_mprotect && run("mprotect", n, cpus, iters, warmup, pages, cyc, ns) != 0)
            return 1;
    }
    return failed;
}
