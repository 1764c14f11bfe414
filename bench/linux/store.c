/* store: the Linux half of the `store` benchmark (docs/bench.md): the
 * workload of Atoll's replicated store (servers/store, docs/store.md) as one
 * multi-threaded process over one shared hash map, the way a Linux service
 * would hold it.
 *
 * One thread pinned to each of N CPUs (the first N of the CPU list). The map
 * holds `keys` keys (k0, k1, ...) of values up to 32 bytes, in open
 * addressing, behind one lock:
 *   lock=rwlock  a pthread readers-writer lock (gets share it, puts do not)
 *   lock=mutex   a pthread mutex (every operation alone)
 * Each thread does `ops` operations on random keys: a get (copy the value
 * out) with probability read/100, else a put (copy a value in). Per
 * (lock, N, read) it prints, over `samples` runs:
 *   throughput, unit "ops/s": all threads' operations / the run's wall time
 *   latency, unit "ns": the run's wall time * N / its operations (the mean
 *     time a thread spends per operation)
 * with params lock, cores (= N) and read_pct.
 *
 * Arguments (key=value): ops=20000 samples=5 keys=512 reads=100,95,50
 *   locks=rwlock,mutex n=LIST (values of N; default every N up to the CPU
 *   count) cpus=LIST. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME "store"
#define MAX_CPUS 1024
#define VALUE_MAX 32
#define SLOTS 2048          /* open addressing: at least twice the keys */

struct slot {
    char key[16];
    uint8_t len;
    char value[VALUE_MAX];
};

static struct slot map[SLOTS];
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int use_rwlock, read_pct, nkeys;
static long ops_per_thread;
static _Alignas(128) int go;
static _Alignas(128) int ready;

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The slot of key (inserted if absent: only while filling, single-threaded). */
static struct slot *find(const char *key, int insert)
{
    for (uint32_t i = hash(key) % SLOTS;; i = (i + 1) % SLOTS) {
        if (!map[i].key[0]) {
            if (!insert)
                return NULL;
            snprintf(map[i].key, sizeof map[i].key, "%s", key);
            return &map[i];
        }
        if (!strcmp(map[i].key, key))
            return &map[i];
    }
}

struct worker {
    int cpu, failed;
    uint64_t rng, done;
    pthread_t th;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    if (pin_self(w->cpu) != 0)
        w->failed = errno;
    __atomic_add_fetch(&ready, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        cpu_relax();
    char key[16], out[VALUE_MAX];
    for (long i = 0; i < ops_per_thread && !w->failed; i++) {
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 7;
        w->rng ^= w->rng << 17;
        snprintf(key, sizeof key, "k%u", (unsigned)(w->rng >> 20) % (unsigned)nkeys);
        int read = (int)((w->rng >> 8) % 100) < read_pct;
        if (use_rwlock)
            read ? pthread_rwlock_rdlock(&rw) : pthread_rwlock_wrlock(&rw);
        else
            pthread_mutex_lock(&mu);
        struct slot *s = find(key, 0);
        if (s && read)
            memcpy(out, s->value, s->len);
        else if (s)
            s->len = (uint8_t)snprintf(s->value, sizeof s->value, "c%d.%ld", w->cpu, i);
        if (use_rwlock)
            pthread_rwlock_unlock(&rw);
        else
            pthread_mutex_unlock(&mu);
        w->done++;
    }
    __asm__ volatile("" : : "r"(out) : "memory");
    return NULL;
}

/* One run with n threads: its wall time in ns, or 0 on error. */
static uint64_t run(const int *cpus, int n)
{
    static struct worker ws[MAX_CPUS];
    __atomic_store_n(&go, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&ready, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < n; i++) {
        ws[i] = (struct worker){ .cpu = cpus[i], .rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) };
        int err = pthread_create(&ws[i].th, NULL, work, &ws[i]);
        if (err) {
            emit_error(NAME, "pthread_create: %s", strerror(err));
            __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
            for (int j = 0; j < i; j++)
                pthread_join(ws[j].th, NULL);
            return 0;
        }
    }
    while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) < n)
        cpu_relax();
    /* The region's arguments are spelled by markers on the CPU that runs
     * them, and BEGIN takes that CPU's spelling: this thread, which no
     * worker pins, stays where it is from the first marker to BEGIN (a
     * migration in between left a sweep's region without arguments), and
     * may move again once the region has ended. */
    cpu_set_t anywhere;
    bool pinned = sched_getaffinity(0, sizeof anywhere, &anywhere) == 0 && pin_self(sched_getcpu()) == 0;
    cm_arg(protocol, use_rwlock ? CM_WORD_rwlock : CM_WORD_mutex);
    cm_arg(cores, n);
    cm_arg(reads, (uint64_t)read_pct);
    cm_arg(ops, (uint64_t)ops_per_thread * (uint64_t)n);
    uint64_t t0 = now_ns();
    cm_begin(store);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(ws[i].th, NULL);
        if (ws[i].failed) {
            emit_error(NAME, "cannot pin to CPU %d: %s", ws[i].cpu, strerror(ws[i].failed));
            failed = 1;
        }
    }
    cm_end(store);
    uint64_t t1 = now_ns();
    if (pinned)
        sched_setaffinity(0, sizeof anywhere, &anywhere);
    return failed ? 0 : (t1 > t0 ? t1 - t0 : 1);
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"ops", "samples", "keys", "reads", "locks", "n", "cpus", NULL};
    if (arg_check(NAME, argc, argv, known))
        return 2;
    ops_per_thread = arg_int(argc, argv, "ops", 20000);
    int samples = (int)arg_int(argc, argv, "samples", 5);
    nkeys = (int)arg_int(argc, argv, "keys", 512);
    const char *locks = arg_str(argc, argv, "locks", "rwlock,mutex");
    if (ops_per_thread < 1 || samples < 1 || samples > 1000 || nkeys < 1 || nkeys > SLOTS / 2) {
        emit_error(NAME, "ops and samples (at most 1000) must be at least 1, keys 1..%d", SLOTS / 2);
        return 2;
    }
    static int cpus[MAX_CPUS], ns_list[MAX_CPUS], reads[16];
    int ncpu = bench_cpus(argc, argv, NAME, cpus, MAX_CPUS);
    if (ncpu < 0)
        return 2;
    int nreads = parse_list(arg_str(argc, argv, "reads", "100,95,50"), reads, 16);
    if (nreads < 1) {
        emit_error(NAME, "reads=%s: a list of percentages such as 100,95,50", arg_str(argc, argv, "reads", ""));
        return 2;
    }
    const char *nspec = arg_str(argc, argv, "n", "all");
    int nn;
    if (!strcmp(nspec, "all")) {
        nn = ncpu;
        for (int i = 0; i < ncpu; i++)
            ns_list[i] = i + 1;
    } else if ((nn = parse_list(nspec, ns_list, MAX_CPUS)) < 1) {
        emit_error(NAME, "n=%s: use all or a list such as 1-4,8", nspec);
        return 2;
    }
    for (int k = 0; k < nkeys; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", k);
        struct slot *s = find(key, 1);
        s->len = (uint8_t)snprintf(s->value, sizeof s->value, "initial");
    }
    static double tput[1000], lat[1000];
    for (int l = 0; l < 2; l++) {
        const char *lock = l ? "mutex" : "rwlock";
        if (!strstr(locks, lock))
            continue;
        use_rwlock = !l;
        for (int r = 0; r < nreads; r++) {
            read_pct = reads[r] < 0 ? 0 : reads[r] > 100 ? 100 : reads[r];
            for (int j = 0; j < nn; j++) {
                int n = ns_list[j];
                if (n > ncpu)
                    continue;
                for (int s = 0; s < samples; s++) {
                    uint64_t ns = run(cpus, n);
                    if (!ns)
                        return 1;
                    double total = (double)ops_per_thread * n;
                    tput[s] = total * 1e9 / (double)ns;
                    lat[s] = (double)ns * n / total;
                }
                struct stats st, sl;
                stats_of(tput, samples, &st);
                stats_of(lat, samples, &sl);
                char params[160];
                snprintf(params, sizeof params, "\"lock\":\"%s\",\"cores\":%d,\"read_pct\":%d", lock, n, read_pct);
                emit_result(NAME, "throughput", "ops/s", &st, params);
                emit_result(NAME, "latency", "ns", &sl, params);
            }
        }
    }
    return 0;
}
