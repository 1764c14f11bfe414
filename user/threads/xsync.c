/*
 * threads xsync [ROUNDS]: a spanning domain's threads on every core of the
 * machine share a mutex, two condition variables and a barrier, and use
 * malloc (lib/thread, docs/spanning.md "Threads on several cores"). One
 * thread per core (this one included):
 *   - ROUNDS times (default 200) adds 1 to a counter under the mutex, with
 *     a window between its read and its write (a yield every 16th turn, a
 *     short loop otherwise) in which a missing lock loses increments;
 *   - meets the others at the barrier ROUNDS / 4 times (and as often again
 *     at the end): in round r every thread has arrived before any leaves,
 *     and none has finished round r + 1; exactly one is told it was last;
 *   - half the cores produce and half consume ITEMS items each over a
 *     4-slot ring on two condition variables;
 *   - mallocs blocks (up to 384 KiB, more than the heap has spare: it
 *     must grow, and for a thread on another core the home grows it,
 *     home_grew), fills and checks them, frees them; the threads on cores
 *     0 and 1 free theirs only once every thread has allocated;
 *   - prints XS_LINES lines (events thread_line {core, i, pad}), one
 *     printf each, all threads at once: each comes out whole.
 * One event:
 *   @atoll {"event":"thread_xsync","core":C,"ncores":N,"rounds":R,
 *           "counter":..,"counter_want":..,"most_in_section":1,
 *           "barrier_rounds":..,"overlaps":0,"bad_lasts":0,"items":..,
 *           "sum":..,"sum_want":..,"mallocs":..,"malloc_bad":0,"home_grew":G,
 *           "ran_on":[..],"errors":0,"ok":true}
 */
#include <atoll/lib.h>
#include <atoll/lib/heap.h>
#include <atoll/lib/malloc.h>
#include <atoll/thread.h>
#include "xsync.h"

#define XS_MAX_CORES 64
#define XS_ITEMS 200
#define XS_BIG (384u << 10)

static struct thread_mutex xm;
static struct thread_cond not_full, not_empty;
static struct thread_barrier xb;
static uint32_t xrounds, brounds, ncores;
static uint64_t counter;
static uint32_t in_section, most_in_section, errors, overlaps;
static uint32_t *b_arrived, *b_lasts;
static uint64_t ring[4], rhead, rcount, got, sum, items_want;
static uint32_t mallocs, malloc_bad;
static uint32_t ran_on[XS_MAX_CORES];

static void note(errval_t err)
{
    if (err != ERR_OK)
        __atomic_add_fetch(&errors, 1, __ATOMIC_SEQ_CST);
}

static uint32_t where(void)
{
    struct core_info *ci = malloc(sizeof *ci);   /* big: not on a small stack */
    uint32_t c = ~0u;
    if (ci && !sys_core_info(ci))
        c = ci->core_id;
    free(ci);
    return c;
}

static void count_under_the_lock(void)
{
    for (uint32_t i = 0; i < xrounds; i++) {
        note(thread_mutex_lock(&xm));
        uint32_t in = __atomic_add_fetch(&in_section, 1, __ATOMIC_SEQ_CST);
        if (in > __atomic_load_n(&most_in_section, __ATOMIC_SEQ_CST))
            __atomic_store_n(&most_in_section, in, __ATOMIC_SEQ_CST);
        uint64_t c = __atomic_load_n(&counter, __ATOMIC_RELAXED);
        if (i % 16 == 0)
            thread_yield();
        else
            for (volatile int k = 0; k < 200; k++)
                ;
        __atomic_store_n(&counter, c + 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&in_section, 1, __ATOMIC_SEQ_CST);
        note(thread_mutex_unlock(&xm));
    }
}

/* Phase 0 or 1: its own rounds' records (b_arrived, b_lasts). */
static void meet(uint32_t phase)
{
    for (uint32_t r = phase * brounds; r < (phase + 1) * brounds; r++) {
        __atomic_add_fetch(&b_arrived[r], 1, __ATOMIC_SEQ_CST);
        bool last = false;
        note(thread_barrier_wait(&xb, &last));
        if (last)
            __atomic_add_fetch(&b_lasts[r], 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&b_arrived[r], __ATOMIC_SEQ_CST) != ncores)
            __atomic_add_fetch(&overlaps, 1, __ATOMIC_SEQ_CST);
        if (r + 1 < (phase + 1) * brounds && __atomic_load_n(&b_lasts[r + 1], __ATOMIC_SEQ_CST))
            __atomic_add_fetch(&overlaps, 1, __ATOMIC_SEQ_CST);
    }
}

static void produce(uint32_t me)
{
    for (uint64_t i = 1; i <= XS_ITEMS; i++) {
        note(thread_mutex_lock(&xm));
        while (rcount == 4)
            note(thread_cond_wait(&not_full, &xm));
        ring[(rhead + rcount++) % 4] = (uint64_t)me * 100000 + i;
        thread_cond_signal(&not_empty);
        note(thread_mutex_unlock(&xm));
    }
}

static void consume(void)
{
    for (;;) {
        note(thread_mutex_lock(&xm));
        while (rcount == 0 && got < items_want)
            note(thread_cond_wait(&not_empty, &xm));
        if (got == items_want) {
            note(thread_mutex_unlock(&xm));
            return;
        }
        sum += ring[rhead];
        rhead = (rhead + 1) % 4;
        rcount--;
        if (++got == items_want)
            thread_cond_broadcast(&not_empty);   /* the other consumers are done too */
        thread_cond_signal(&not_full);
        note(thread_mutex_unlock(&xm));
    }
}

#define XS_SIZES 5
static const uint32_t xs_sizes[XS_SIZES] = { 24, 200, 4096, 70000, XS_BIG };

static void check_and_free(uint32_t me, uint8_t *p[XS_SIZES])
{
    for (uint32_t i = 0; i < XS_SIZES; i++) {
        if (!p[i])
            continue;
        bool same = true;
        for (uint32_t k = 0; k < xs_sizes[i]; k += 97)
            same &= p[i][k] == (uint8_t)(me + i);
        same &= p[i][xs_sizes[i] - 1] == (uint8_t)(me + i);
        if (!same)
            __atomic_add_fetch(&malloc_bad, 1, __ATOMIC_SEQ_CST);
        free(p[i]);
    }
}

static void use_the_heap(uint32_t me)
{
    uint8_t *p[XS_SIZES];
    for (uint32_t i = 0; i < XS_SIZES; i++) {
        p[i] = malloc(xs_sizes[i]);
        __atomic_add_fetch(&mallocs, 1, __ATOMIC_SEQ_CST);
        if (!p[i]) {
            __atomic_add_fetch(&malloc_bad, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        memset(p[i], (int)(me + i), xs_sizes[i]);
        thread_yield();   /* the others allocate meanwhile */
    }
    /* The threads on cores 0 and 1 (one of them the home's) hold their
     * blocks until every thread has allocated: the heap must hold both at
     * once, so the one on the other core must have had it grown by the
     * home (home_grew). Without the wait, threads that ran one after the
     * other reused each other's freed blocks and only the home's own
     * thread grew it (a fresh clone's make test saw 0). Only two hold:
     * all eight of an 8-core run at once are more than the domain's RAM. */
    bool hold = me < 2, last;
    if (!hold)
        check_and_free(me, p);
    note(thread_barrier_wait(&xb, &last));
    if (hold)
        check_and_free(me, p);
}

/* Every thread prints XS_LINES lines with printf at once: each line is
 * one printf call and must come out whole (lib/printf.c's buffer is the
 * domain's, written from every core). */
#define XS_LINES 20
static void print_lines(uint32_t me)
{
    for (uint32_t i = 0; i < XS_LINES; i++)
        printf("@atoll {\"event\":\"thread_line\",\"core\":%u,\"i\":%u,\"pad\":\"%s\"}\n", me, i,
               "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789");
}

static int on_core(void *arg)
{
    uint32_t me = (uint32_t)(uintptr_t)arg;
    ran_on[me] = where();
    count_under_the_lock();
    meet(0);
    if (me % 2 == 0)
        produce(me);
    else
        consume();
    use_the_heap(me);
    print_lines(me);
    meet(1);   /* the same barrier again, after everything else */
    return (int)me + 1;
}

int xsync_main(uint32_t core, uint32_t nrounds)
{
    ncores = startup()->ncores;
    if (ncores > XS_MAX_CORES || ncores < 2) {
        printf("threads: xsync needs 2 to %u cores\n", XS_MAX_CORES);
        return 1;
    }
    xrounds = nrounds;
    brounds = nrounds / 4 ? nrounds / 4 : 1;
    b_arrived = calloc(2 * brounds, sizeof *b_arrived);
    b_lasts = calloc(2 * brounds, sizeof *b_lasts);
    if (!b_arrived || !b_lasts || thread_barrier_init(&xb, ncores) != ERR_OK)
        return 1;
    /* Thread c runs on core c; producers are the even ones, and the home
     * core's thread is the first thread itself. */
    uint32_t producers = (ncores + 1) / 2;
    items_want = (uint64_t)producers * XS_ITEMS;
    uint64_t sum_want = 0;
    for (uint32_t c = 0; c < ncores; c += 2)
        sum_want += (uint64_t)c * 100000 * XS_ITEMS + (uint64_t)XS_ITEMS * (XS_ITEMS + 1) / 2;
    struct thread *t[XS_MAX_CORES] = { 0 };
    uint32_t made = 0;
    for (uint32_t c = 0; c < ncores; c++) {
        if (c == core)
            continue;
        errval_t err = thread_create_on(&t[c], c, on_core, (void *)(uintptr_t)c, 0);
        if (err) {
            printf("threads: xsync on core %u: %s\n", c, err_name(err));
            return 1;   /* the barrier would wait for it for ever */
        }
        made++;
    }
    int mine = on_core((void *)(uintptr_t)core);
    uint32_t joined = 0;
    for (uint32_t c = 0; c < ncores; c++) {
        int rv = 0;
        if (c != core && thread_join(t[c], &rv) == ERR_OK && rv == (int)c + 1)
            joined++;
    }
    uint32_t bad_lasts = 0;
    for (uint32_t r = 0; r < 2 * brounds; r++)
        bad_lasts += b_lasts[r] != 1 || b_arrived[r] != ncores;
    char list[512];
    size_t at = 0;
    for (uint32_t i = 0; i < ncores && at + 16 < sizeof list; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%d", i ? "," : "", (int)ran_on[i]);
    list[at] = 0;
    bool placed = true;
    for (uint32_t i = 0; i < ncores; i++)
        placed &= ran_on[i] == i;
    const char *heap = heap_check(malloc_heap());
    bool ok = made == ncores - 1 && joined == made && mine == (int)core + 1 && placed &&
              counter == (uint64_t)ncores * xrounds && most_in_section == 1 && overlaps == 0 &&
              bad_lasts == 0 && got == items_want && sum == sum_want && malloc_bad == 0 && !heap &&
              thread_at_home_served() > 0 && errors == 0 && thread_count() == 1;
    printf("@atoll {\"event\":\"thread_xsync\",\"core\":%u,\"ncores\":%u,\"rounds\":%u,"
           "\"counter\":%llu,\"counter_want\":%llu,\"most_in_section\":%u,\"barrier_rounds\":%u,"
           "\"overlaps\":%u,\"bad_lasts\":%u,\"items\":%llu,\"sum\":%llu,\"sum_want\":%llu,"
           "\"mallocs\":%u,\"malloc_bad\":%u,\"home_grew\":%llu,\"heap\":\"%s\",\"ran_on\":[%s],\"errors\":%u,\"ok\":%s}\n",
           core, ncores, xrounds, (unsigned long long)counter, (unsigned long long)ncores * xrounds,
           most_in_section, brounds, overlaps, bad_lasts, (unsigned long long)got, (unsigned long long)sum,
           (unsigned long long)sum_want, mallocs, malloc_bad, (unsigned long long)thread_at_home_served(), heap ? heap : "ok", list, errors,
           ok ? "true" : "false");
    return ok ? 0 : 1;
}
