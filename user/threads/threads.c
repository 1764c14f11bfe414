/*
 * threads: a domain's threads at work (<atoll/thread.h>), checked.
 *
 *   threads [N] [ROUNDS]   N threads (default 8, at most THREAD_MAX - 1)
 *                          meet at a barrier ROUNDS times (default 20); in
 *                          each round every thread adds to a counter under a
 *                          mutex, yielding inside it, and a bounded buffer
 *                          carries N items from producers to consumers on
 *                          two condition variables. Prints one event:
 *     @atoll {"event":"threads","core":C,"threads":N,"rounds":R,
 *             "counter":..,"counter_want":..,"items":..,"sum":..,"sum_want":..,
 *             "lasts":..,"most_in_section":1,"other_core":"ERR_INVALID_ARG",
 *             "deadlock":"ERR_DEADLOCK","yield_ns":..,"ok":true}
 *   threads overrun        a thread overruns its stack: the library ends the
 *                          domain with a thread_fatal event naming it.
 *   threads makers [LAPS]  a chain of threads around every core, LAPS times:
 *                          each thread, on another core than the home, makes
 *                          the next one (on the next core) and a thread on its
 *                          own core that grows the heap, and joins both
 *                          (thread_makers {ncores, links, depth, ran, grown,
 *                          home_served, threads_left, ok})
 *   threads span [ROUNDS]  the domain spans every core (docs/spanning.md):
 *                          ROUNDS times (default 2) a thread on each core of
 *                          the machine (this one included) reads what the
 *                          first thread wrote, asks the kernel where it runs
 *                          and counts itself; all are joined. One event:
 *     @atoll {"event":"span_threads","core":C,"ncores":N,"rounds":R,
 *             "ran_on":[0,1,..],"joined":N*R,"hits":N*R,"ok":true}
 *   threads unmap PROTOCOL [CORE]  (CORE: the call is made by the thread on
 *                          that other core, which touches the page after too)
 *                          a thread on every other core reads a page over
 *   threads protect PROTOCOL  and over (and writes it, for protect); then the
 *                          page is unmapped (write-protected) with the
 *                          shootdown PROTOCOL (<atoll/span.h>) and each
 *                          thread touches it (writes it) again: that must
 *                          fault (the test reads the domain_fault events).
 *                          Unmapping it again is ERR_NOT_MAPPED. One event:
 *     @atoll {"event":"span_unmap","op":"unmap","protocol":"unicast","core":C,
 *             "cores":N-1,"err":"ERR_OK","again":"ERR_NOT_MAPPED","addr":A,
 *             "ready":N-1,"touched":T,"survived":0,"ok":true}
 *                          (touched: threads that got past their loop to the
 *                          last touch; the others faulted in the loop, after
 *                          their core's step of the shootdown)
 *   threads bench ITERS WARMUP NS OPS PROTOCOLS
 *                          the `unmap` benchmark's Atoll half (tools/bench,
 *                          docs/bench.md): for each N of NS (comma list,
 *                          `all`: 1..cores), a thread on each of N-1 other
 *                          cores reads the page once per iteration (caching
 *                          its translation), acknowledges and spins on a
 *                          control word; this thread times one span_unmap
 *                          (re-mapped untimed) or span_protect to read-only
 *                          (made writable again untimed), per op of OPS
 *                          (unmap,protect) and protocol of PROTOCOLS. One
 *                          event per (N, op, protocol):
 *     @atoll {"event":"unmap_bench","op":"unmap","protocol":"unicast",
 *             "cores":N,"iters":I,"median_ns":..,"min_ns":..,"max_ns":..,"failed":0}
 *   threads reuse          a thread on every other core reads a page; this
 *                          one deletes the page's Frame (no span_unmap),
 *                          makes a new Frame of the same RAM and writes
 *                          there: every reader must fault at the page.
 *     @atoll {"event":"span_reuse","core":C,"cores":N,"ready":N,"delete":"ERR_OK",
 *             "retype":"ERR_OK","addr":A,"survived":0,"ok":true}
 *   threads xsync [ROUNDS] a thread on every core shares a mutex, condition
 *                          variables, a barrier and the heap (xsync.c).
 *   threads abandon CORE [probe]  a thread on CORE spins for ever; once it
 *                          has started, the domain ends without joining it
 *                          (its dispatcher there must stop: span_stopped).
 *                          With `probe` it checks the page tables it runs on
 *                          at every turn (a system call) and reads a page
 *                          never cached on its core as soon as they fail.
 */
#include <atoll/costmodel.h>
#include <atoll/lib.h>
#include <atoll/lib/time.h>
#include <atoll/span.h>
#include <atoll/thread.h>
#include "xsync.h"

#define RING 4

static uint32_t nthreads = 8, rounds = 20;
static struct thread_barrier barrier;
static struct thread_mutex lock;
static struct thread_cond not_full, not_empty;
static uint64_t counter, in_section, most_in_section;
static uint64_t ring[RING], rhead, rcount, items, sum;
static uint32_t lasts;
static uint32_t failures;

static void expect(bool ok, const char *what)
{
    if (!ok) {
        printf("threads: FAILED: %s\n", what);
        failures++;
    }
}

/* Even threads produce one item a round, odd ones consume one (N even:
 * as many of each; N odd: the last thread does both). */
static void produce(uint64_t v)
{
    expect(thread_mutex_lock(&lock) == ERR_OK, "lock to produce");
    while (rcount == RING)
        expect(thread_cond_wait(&not_full, &lock) == ERR_OK, "wait not full");
    ring[(rhead + rcount++) % RING] = v;
    thread_cond_signal(&not_empty);
    expect(thread_mutex_unlock(&lock) == ERR_OK, "unlock after produce");
}

static void consume(void)
{
    expect(thread_mutex_lock(&lock) == ERR_OK, "lock to consume");
    while (rcount == 0)
        expect(thread_cond_wait(&not_empty, &lock) == ERR_OK, "wait not empty");
    sum += ring[rhead];
    rhead = (rhead + 1) % RING;
    rcount--;
    items++;
    thread_cond_signal(&not_full);
    expect(thread_mutex_unlock(&lock) == ERR_OK, "unlock after consume");
}

static int worker(void *arg)
{
    uint32_t me = (uint32_t)(uintptr_t)arg;
    for (uint32_t r = 0; r < rounds; r++) {
        expect(thread_mutex_lock(&lock) == ERR_OK, "lock");
        in_section++;
        if (in_section > most_in_section)
            most_in_section = in_section;
        uint64_t c = counter;
        thread_yield();   /* the others queue for the lock meanwhile */
        counter = c + 1;
        in_section--;
        expect(thread_mutex_unlock(&lock) == ERR_OK, "unlock");

        bool both = (nthreads % 2) && me == nthreads - 1;
        if (me % 2 == 0 || both)
            produce((uint64_t)r * 1000 + me);
        if (me % 2 == 1 || both)
            consume();

        bool last = false;
        expect(thread_barrier_wait(&barrier, &last) == ERR_OK, "barrier");
        lasts += last;
    }
    return (int)me;
}

/* A frame as large as the stack: written from the top down, it reaches the
 * canary at the stack's far end. */
static int overrun(void *arg)
{
    (void)arg;
    volatile char big[THREAD_STACK_MIN];
    for (size_t i = sizeof big; i-- > 0;)
        big[i] = (char)i;
    return big[0];
}

static volatile bool stop_yielding;

static int yields_back(void *arg)
{
    (void)arg;
    while (!stop_yielding)
        thread_yield();
    return 0;
}

/* Two threads yielding to each other: two switches a turn. */
static uint64_t yield_cost_ns(void)
{
    struct thread *t;
    stop_yielding = false;
    if (thread_create(&t, yields_back, NULL, 0) != ERR_OK)
        return 0;
    thread_yield();
    uint64_t t0 = now_ns();
    for (int i = 0; i < 1000; i++)
        thread_yield();
    uint64_t t1 = now_ns();
    stop_yielding = true;
    expect(thread_join(t, NULL) == ERR_OK, "join the yielder");
    return (t1 - t0) / 2000;
}

/* -- makers: threads made by threads on other cores --------------------------- */

/* A chain around the machine: the thread on core c makes the next one on
 * core c+1 (the home's included: the home queues it), and a grower on its
 * own core that mallocs enough to grow the heap (the home grows it) while
 * the chain is being made (the home starts each new dispatcher). Each
 * joins what it made; a link returns the cores of the rest of the chain. */
#define MAKER_GROW_BLOCKS 4
#define MAKER_GROW_BYTES (32u << 10)
static uint32_t maker_ncores, maker_home, maker_ran[CORE_INFO_MAX_CORES], maker_grown;

static uint32_t this_core(void)
{
    struct core_info ci;
    return sys_core_info(&ci) == ERR_OK ? ci.core_id : ~0u;
}

static int grower(void *arg)
{
    (void)arg;
    uint8_t *blocks[MAKER_GROW_BLOCKS];
    int bad = 0;
    for (uint32_t i = 0; i < MAKER_GROW_BLOCKS; i++) {
        blocks[i] = malloc(MAKER_GROW_BYTES);
        if (blocks[i])
            memset(blocks[i], (int)i + 1, MAKER_GROW_BYTES);
        bad += !blocks[i];
    }
    for (uint32_t i = 0; i < MAKER_GROW_BLOCKS; i++) {
        bad += blocks[i] && (blocks[i][0] != i + 1 || blocks[i][MAKER_GROW_BYTES - 1] != i + 1);
        free(blocks[i]);
    }
    if (!bad)
        __atomic_fetch_add(&maker_grown, 1, __ATOMIC_SEQ_CST);
    return bad;
}

static int maker(void *arg)
{
    uint32_t left = (uint32_t)(uintptr_t)arg, core = this_core();
    if (core < CORE_INFO_MAX_CORES)
        __atomic_fetch_add(&maker_ran[core], 1, __ATOMIC_SEQ_CST);
    if (left == 0)
        return 0;
    struct thread *next = NULL, *grow = NULL;
    errval_t err = thread_create_on(&next, (core + 1) % maker_ncores, maker, (void *)(uintptr_t)(left - 1), 0);
    errval_t gerr = core == maker_home ? ERR_OK : thread_create_on(&grow, core, grower, NULL, 0);
    int rv = -1, grv = 0;
    if (!err && thread_join(next, &rv) != ERR_OK)
        rv = -1;
    if (!gerr && grow && thread_join(grow, &grv) != ERR_OK)
        grv = 1;
    if (err || gerr || grv || rv < 0)
        return -1;
    return rv + 1;
}

static int makers_main(uint32_t home, uint32_t laps)
{
    maker_ncores = startup()->ncores;
    maker_home = home;
    uint32_t links = laps * maker_ncores;   /* every core made `laps` times */
    struct thread *first_link;
    int rv = -1;
    errval_t err = thread_create_on(&first_link, (home + 1) % maker_ncores, maker, (void *)(uintptr_t)(links - 1), 0);
    if (!err)
        err = thread_join(first_link, &rv);
    uint32_t every = 0;
    char list[1024];
    size_t at = 0;
    for (uint32_t c = 0; c < maker_ncores && at + 16 < sizeof list; c++) {
        every += maker_ran[c] == laps;
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%u", c ? "," : "", maker_ran[c]);
    }
    list[at] = 0;
    bool ok = !err && rv == (int)links - 1 && every == maker_ncores && thread_count() == 1;
    printf("@atoll {\"event\":\"thread_makers\",\"core\":%u,\"ncores\":%u,\"links\":%u,\"error\":\"%s\","
           "\"depth\":%d,\"ran\":[%s],\"grown\":%u,\"home_served\":%llu,\"threads_left\":%u,\"ok\":%s}\n",
           home, maker_ncores, links, err_name(err), rv, list, maker_grown,
           (unsigned long long)thread_at_home_served(), thread_count(), ok ? "true" : "false");
    return ok ? 0 : 1;
}

/* -- span: a thread on every core ------------------------------------------- */

struct span_slot {
    uint32_t index, ran_on;
    uint64_t seen;
};
static uint64_t span_magic, span_hits;

/* Runs on its own core (or this one): no malloc, no printf, no blocking
 * call of the library there (<atoll/thread.h>). */
static int on_core(void *arg)
{
    struct span_slot *s = arg;
    struct core_info ci;
    s->ran_on = sys_core_info(&ci) == ERR_OK ? ci.core_id : ~0u;
    s->seen = __atomic_load_n(&span_magic, __ATOMIC_ACQUIRE);
    __atomic_fetch_add(&span_hits, 1, __ATOMIC_SEQ_CST);
    return (int)s->index + 100;
}

static int span_main(uint32_t core, uint32_t nrounds)
{
    uint32_t n = startup()->ncores;
    struct span_slot *slots = malloc(n * sizeof *slots);
    struct thread **ts = malloc(n * sizeof *ts);
    uint32_t *ran_on = malloc(n * sizeof *ran_on);
    uint32_t joined = 0;
    if (!slots || !ts || !ran_on)
        return 1;
    for (uint32_t r = 0; r < nrounds; r++) {
        __atomic_store_n(&span_magic, 0x5ba11ed00ull + r, __ATOMIC_RELEASE);
        uint32_t made = 0;
        for (; made < n; made++) {
            slots[made] = (struct span_slot){ .index = made, .ran_on = ~0u };
            errval_t err = thread_create_on(&ts[made], made, on_core, &slots[made], 0);
            if (err) {
                printf("threads: span to core %u: %s\n", made, err_name(err));
                failures++;
                break;
            }
        }
        for (uint32_t i = 0; i < made; i++) {
            int rv = -1;
            expect(thread_join(ts[i], &rv) == ERR_OK && rv == (int)i + 100, "join a span thread");
            expect(slots[i].seen == 0x5ba11ed00ull + r, "a span thread saw the first thread's memory");
            ran_on[i] = slots[i].ran_on;
            expect(ran_on[i] == i, "a span thread ran on its core");
            joined++;
        }
    }
    char list[1024];
    size_t at = 0;
    for (uint32_t i = 0; i < n && at + 16 < sizeof list; i++)
        at += (size_t)snprintf(list + at, sizeof list - at, "%s%d", i ? "," : "", (int)ran_on[i]);
    list[at] = 0;
    uint64_t hits = __atomic_load_n(&span_hits, __ATOMIC_SEQ_CST);
    bool ok = failures == 0 && joined == n * nrounds && hits == joined && thread_count() == 1;
    printf("@atoll {\"event\":\"span_threads\",\"core\":%u,\"ncores\":%u,\"rounds\":%u,\"ran_on\":[%s],"
           "\"joined\":%u,\"hits\":%llu,\"ok\":%s}\n",
           core, n, nrounds, list, joined, (unsigned long long)hits, ok ? "true" : "false");
    return ok ? 0 : 1;
}

/* -- unmap / protect: touching threads on every other core -------------------- */

struct toucher {
    uint32_t index, state;    /* 1: translation cached, 2: touching after, 9: survived it */
    uint64_t before;
    bool caller;              /* `by`: this thread makes the call, then touches */
};
static volatile uint64_t *shared_page;
static uint32_t touch_phase;  /* 1: read, 2: touch after the change */
static bool touch_writes;     /* protect: write before and after */
/* The call made by a thread on another core (`threads unmap PROTOCOL CORE`). */
static struct {
    capslot_t frame;
    uint32_t protocol, asked, go, done;
    errval_t err;
} by_call;

static errval_t do_call(capslot_t frame, uint32_t protocol, uint32_t *asked)
{
    void *p = (void *)(uintptr_t)shared_page;
    return touch_writes ? span_protect(frame, 0, (uint64_t)(uintptr_t)p, 4096, protocol, asked)
                        : span_unmap(frame, (uint64_t)(uintptr_t)p, 4096, protocol, asked);
}

static int touch(void *arg)
{
    struct toucher *t = arg;
    while (__atomic_load_n(&touch_phase, __ATOMIC_ACQUIRE) < 1)
        __builtin_ia32_pause();
    t->before = shared_page[0];
    if (touch_writes)
        shared_page[1 + t->index] = t->index;   /* a writable translation cached */
    __atomic_store_n(&t->state, 1, __ATOMIC_RELEASE);
    if (t->caller) {
        /* The caller: from another core, with its own translation cached. */
        while (!__atomic_load_n(&by_call.go, __ATOMIC_ACQUIRE))
            (void)shared_page[0];
        by_call.err = do_call(by_call.frame, by_call.protocol, &by_call.asked);
        __atomic_store_n(&by_call.done, 1, __ATOMIC_RELEASE);
    }
    while (__atomic_load_n(&touch_phase, __ATOMIC_ACQUIRE) < 2)
        (void)shared_page[0];   /* keep the translation in this core's TLB */
    __atomic_store_n(&t->state, 2, __ATOMIC_RELEASE);
    if (touch_writes)
        shared_page[1 + t->index] = 2;   /* must fault: write-protected */
    else
        (void)shared_page[0];            /* must fault: unmapped */
    __atomic_store_n(&t->state, 9, __ATOMIC_RELEASE);
    for (;;)
        __builtin_ia32_pause();   /* never returns: its failure is state 9 */
    return 0;
}

static bool all_states(struct toucher *t, uint32_t n, uint32_t at_least, uint64_t wait_ns)
{
    uint64_t end = now_ns() + wait_ns;
    for (;;) {
        bool all = true;
        for (uint32_t i = 0; i < n && all; i++)
            all = __atomic_load_n(&t[i].state, __ATOMIC_ACQUIRE) >= at_least;
        if (all)
            return true;
        if (now_ns() > end)
            return false;
        sys_yield();
    }
}

static int unmap_main(uint32_t core, bool protect, const char *proto_name, int by)
{
    uint32_t protocol = tlb_protocol_parse(proto_name);
    uint32_t n = startup()->ncores, others = 0;
    capslot_t frame;
    void *p = 0;
    if (!protocol || frame_alloc(4096, &frame) || vspace_map_frame(frame, MAP_WRITE, &p))
        return 1;
    shared_page = p;
    shared_page[0] = 0x70c4ed;
    touch_writes = protect;
    struct toucher *ts = malloc(n * sizeof *ts);
    struct thread *t;
    for (uint32_t c = 0; ts && c < n; c++) {
        if (c == core)
            continue;
        ts[others] = (struct toucher){ .index = others, .caller = (int)c == by };
        errval_t err = thread_create_on(&t, c, touch, &ts[others], 0);
        if (err) {
            printf("threads: span to core %u: %s\n", c, err_name(err));
            failures++;
            break;
        }
        others++;
    }
    __atomic_store_n(&touch_phase, 1, __ATOMIC_RELEASE);
    bool ready = all_states(ts, others, 1, 20000000000ull);
    uint32_t asked = 0;
    errval_t err;
    if (by >= 0) {
        /* The thread on core `by` calls; the home runs it for it
         * (thread_at_home) at a blocking point: thread_yield here. */
        by_call.frame = frame;
        by_call.protocol = protocol;
        __atomic_store_n(&by_call.go, 1, __ATOMIC_RELEASE);
        uint64_t end = now_ns() + 20000000000ull;
        while (!__atomic_load_n(&by_call.done, __ATOMIC_ACQUIRE) && now_ns() < end)
            thread_yield();
        err = __atomic_load_n(&by_call.done, __ATOMIC_ACQUIRE) ? by_call.err : ERR_TIMEOUT;
        asked = by_call.asked;
    } else {
        err = do_call(frame, protocol, &asked);
    }
    __atomic_store_n(&touch_phase, 2, __ATOMIC_RELEASE);
    /* A thread faults in its loop as soon as its core forgot the page (the
     * protocol's step there), or at its touch after this point. One that
     * survived its touch says so at once (state 9); give it time. */
    uint64_t until = now_ns() + 500000000ull;
    while (now_ns() < until)
        sys_yield();
    uint32_t nready = 0, ntouched = 0, survived = 0, before_ok = 0;
    for (uint32_t i = 0; i < others; i++) {
        uint32_t st = __atomic_load_n(&ts[i].state, __ATOMIC_ACQUIRE);
        nready += st >= 1;
        ntouched += st >= 2;
        survived += st == 9;
        before_ok += ts[i].before == 0x70c4ed;
    }
    errval_t again = protect ? span_protect(frame, 0, (uint64_t)(uintptr_t)p, 4096, protocol, 0)
                             : span_unmap(frame, (uint64_t)(uintptr_t)p, 4096, protocol, 0);
    uint64_t after_read = protect ? shared_page[0] : 0x70c4ed;   /* reading a protected page still works */
    bool ok = failures == 0 && ready && err == ERR_OK && asked == others && survived == 0 &&
              before_ok == others && after_read == 0x70c4ed &&
              again == (protect ? ERR_OK : ERR_NOT_MAPPED);
    printf("@atoll {\"event\":\"span_unmap\",\"op\":\"%s\",\"protocol\":\"%s\",\"core\":%u,\"by\":%d,\"cores\":%u,"
           "\"err\":\"%s\",\"again\":\"%s\",\"addr\":%llu,\"ready\":%u,\"touched\":%u,\"survived\":%u,"
           "\"ok\":%s}\n",
           protect ? "protect" : "unmap", tlb_protocol_name(protocol), core, by < 0 ? (int)core : by, asked, err_name(err), err_name(again),
           (unsigned long long)(uintptr_t)p, nready, ntouched, survived, ok ? "true" : "false");
    return ok ? 0 : 1;
}

/* -- reuse: a Frame deleted under threads on other cores --------------------------- */

#define REUSE_MAGIC 0x5eed1e55ull
#define REUSE_NEW   0xbad0bad0ull

static volatile uint64_t *reuse_page;
static uint32_t reuse_phase;

struct reuser {
    uint32_t state;   /* 1: translation cached; 9: read something else there */
    uint64_t seen;
};

static int reuse_reader(void *arg)
{
    struct reuser *r = arg;
    while (__atomic_load_n(&reuse_phase, __ATOMIC_ACQUIRE) < 1)
        __builtin_ia32_pause();
    uint64_t v = reuse_page[0];
    __atomic_store_n(&r->state, 1, __ATOMIC_RELEASE);
    while (v == REUSE_MAGIC)
        v = reuse_page[0];   /* until it faults: the page is gone */
    r->seen = v;
    __atomic_store_n(&r->state, 9, __ATOMIC_RELEASE);
    for (;;)
        __builtin_ia32_pause();
    return 0;
}

/* The home deletes a mapped Frame (no span_unmap) while threads on the
 * other cores read it, then makes a new Frame of the very same RAM and
 * writes there. Every reader must fault at the page: none may read the
 * new Frame through a translation its core kept. */
static int reuse_main(uint32_t core)
{
    uint32_t n = startup()->ncores, others = 0;
    capslot_t ram, frame, again;
    void *p = 0, *q = 0;
    if (ram_alloc(4096, &ram) || slot_alloc(&frame) || slot_alloc(&again) ||
        sys_cap_retype(ram, CAP_FRAME, 4096, 0, 1, frame) || vspace_map_frame(frame, MAP_WRITE, &p))
        return 1;
    reuse_page = p;
    reuse_page[0] = REUSE_MAGIC;
    struct reuser *rs = malloc(n * sizeof *rs);
    struct thread *t;
    for (uint32_t c = 0; rs && c < n; c++) {
        if (c == core)
            continue;
        rs[others] = (struct reuser){ 0 };
        errval_t err = thread_create_on(&t, c, reuse_reader, &rs[others], 0);
        if (err) {
            printf("threads: span to core %u: %s\n", c, err_name(err));
            failures++;
            break;
        }
        others++;
    }
    __atomic_store_n(&reuse_phase, 1, __ATOMIC_RELEASE);
    bool ready = true;
    uint64_t end = now_ns() + 20000000000ull;
    for (uint32_t i = 0; i < others && ready; i++)
        while (__atomic_load_n(&rs[i].state, __ATOMIC_ACQUIRE) < 1 && (ready = now_ns() < end))
            sys_yield();
    errval_t del = sys_cap_delete(frame);
    errval_t retype = sys_cap_retype(ram, CAP_FRAME, 4096, 0, 1, again);
    if (!retype)
        retype = vspace_map_frame(again, MAP_WRITE, &q);
    if (!retype)
        *(volatile uint64_t *)q = REUSE_NEW;   /* the same memory, a new object */
    uint64_t until = now_ns() + 500000000ull;
    while (now_ns() < until)
        sys_yield();
    uint32_t nready = 0, survived = 0;
    for (uint32_t i = 0; i < others; i++) {
        uint32_t st = __atomic_load_n(&rs[i].state, __ATOMIC_ACQUIRE);
        nready += st >= 1;
        survived += st == 9;
    }
    bool ok = failures == 0 && ready && del == ERR_OK && retype == ERR_OK && survived == 0;
    printf("@atoll {\"event\":\"span_reuse\",\"core\":%u,\"cores\":%u,\"ready\":%u,\"delete\":\"%s\","
           "\"retype\":\"%s\",\"addr\":%llu,\"survived\":%u,\"ok\":%s}\n",
           core, others, nready, err_name(del), err_name(retype), (unsigned long long)(uintptr_t)p, survived,
           ok ? "true" : "false");
    return ok ? 0 : 1;
}

/* -- bench: the unmap benchmark ------------------------------------------------- */
/* The cost model's name of a shootdown protocol. */
static uint32_t cm_protocol_word(uint32_t proto)
{
    switch (proto) {
    case TLB_UNICAST: return CM_WORD_unicast;
    case TLB_BROADCAST: return CM_WORD_broadcast;
    case TLB_MULTICAST: return CM_WORD_multicast;
    case TLB_NUMA_MULTICAST: return CM_WORD_numa_multicast;
    default: return CM_WORD_ipi;
    }
}

static volatile uint64_t *bench_page;
static uint64_t bench_gen, bench_stop;
struct reader {
    uint64_t ack, sum;
} __attribute__((aligned(64)));   /* a line each: acks do not share lines */

static int bench_reader(void *arg)
{
    struct reader *r = arg;
    uint64_t g = 0;
    for (;;) {
        uint64_t now;
        while ((now = __atomic_load_n(&bench_gen, __ATOMIC_ACQUIRE)) == g &&
               !__atomic_load_n(&bench_stop, __ATOMIC_ACQUIRE))
            __builtin_ia32_pause();
        if (__atomic_load_n(&bench_stop, __ATOMIC_ACQUIRE))
            return 0;
        g = now;
        r->sum += bench_page[0];   /* this core caches the translation */
        __atomic_store_n(&r->ack, g, __ATOMIC_RELEASE);
    }
}

static void sort_u64(uint64_t *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && v[j] < v[j - 1]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

static bool in_list(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        const char *e = p;
        while (*e && *e != ',')
            e++;
        if ((size_t)(e - p) == n && !strncmp(p, word, n))
            return true;
        p = *e ? e + 1 : e;
    }
    return false;
}

static int bench_main(uint32_t home, uint32_t iters, uint32_t warmup, const char *ns, const char *ops,
                      const char *protos)
{
    uint32_t ncores = startup()->ncores;
    capslot_t frame;
    void *p = 0;
    if (iters < 1 || iters > 1000 || frame_alloc(4096, &frame) || vspace_map_frame(frame, MAP_WRITE, &p))
        return 1;
    bench_page = p;
    uint64_t va = (uint64_t)(uintptr_t)p;
    uint64_t *lat = malloc(iters * sizeof *lat);
    struct reader *readers = thread_os_alloc(ncores * sizeof *readers);
    struct thread **ts = malloc(ncores * sizeof *ts);
    uint32_t *others = malloc(ncores * sizeof *others);
    if (!lat || !readers || !ts || !others)
        return 1;
    uint32_t nothers = 0;
    for (uint32_t c = 0; c < ncores; c++)
        if (c != home)
            others[nothers++] = c;
    /* N in increasing order: the home monitor records every core that ran
     * the domain, so at N exactly cores of the first N are recorded. */
    for (uint32_t n = 1; n <= ncores; n++) {
        char word[12];
        snprintf(word, sizeof word, "%u", n);
        if (strcmp(ns, "all") && !in_list(ns, word))
            continue;
        uint32_t made = 0;
        __atomic_store_n(&bench_stop, 0, __ATOMIC_RELEASE);
        for (; made + 1 < n; made++) {
            readers[made] = (struct reader){ .ack = __atomic_load_n(&bench_gen, __ATOMIC_ACQUIRE) };
            /* A reader only spins: 16 KiB of stack, not the default 64, so
             * that 63 of them fit in the domain's 4 MiB with its heap (at
             * 64 CPUs the default's stacks took it all, and N = 64 failed). */
            errval_t err = thread_create_on(&ts[made], others[made], bench_reader, &readers[made], 16u << 10);
            if (err != ERR_OK) {
                printf("threads: bench N=%u: reader on core %u: %s\n", n, others[made], err_name(err));
                break;
            }
        }
        for (uint32_t o = 0; o < 2; o++) {
            const char *op = o ? "protect" : "unmap";
            if (!in_list(ops, op))
                continue;
            for (uint32_t proto = TLB_UNICAST; proto <= TLB_IPI; proto++) {
                if (!in_list(protos, tlb_protocol_name(proto)))
                    continue;
                uint32_t got = 0, failed = made + 1 < n ? 1 : 0;
                for (uint32_t i = 0; i < warmup + iters && !failed; i++) {
                    bench_page[0] = i;
                    uint64_t g = __atomic_add_fetch(&bench_gen, 1, __ATOMIC_ACQ_REL);
                    uint64_t give_up = now_ns() + 10000000000ull;
                    for (uint32_t k = 0; k < made; k++)
                        while (__atomic_load_n(&readers[k].ack, __ATOMIC_ACQUIRE) != g && now_ns() < give_up)
                            __builtin_ia32_pause();
                    /* Each timed call is a cost-model region (docs/costmodel.md),
                     * as each of Linux's munmap/mprotect calls is. */
                    bool timed = i >= warmup;
                    if (timed) {
                        cm_arg(protocol, cm_protocol_word(proto));
                        cm_arg(op, o ? CM_WORD_mprotect : CM_WORD_munmap);
                        cm_arg(cores, n);
                        cm_arg(pages, 1);
                        cm_arg(ops, 1);
                        cm_begin(unmap);
                    }
                    uint64_t t0 = now_ns();
                    errval_t err = o ? span_protect(frame, 0, va, 4096, proto, 0)
                                     : span_unmap(frame, va, 4096, proto, 0);
                    uint64_t t1 = now_ns();
                    if (timed)
                        cm_end(unmap);
                    /* Back as it was, untimed: a wider right needs no shootdown. */
                    errval_t back = o ? sys_protect(frame, MAP_WRITE) : vspace_map(va, frame, MAP_WRITE);
                    if (err || back) {
                        printf("threads: bench %s %s N=%u: %s, %s\n", op, tlb_protocol_name(proto), n,
                               err_name(err), err_name(back));
                        failed++;
                    } else if (i >= warmup) {
                        lat[got++] = t1 - t0;
                    }
                }
                sort_u64(lat, got);
                printf("@atoll {\"event\":\"unmap_bench\",\"op\":\"%s\",\"protocol\":\"%s\",\"cores\":%u,"
                       "\"iters\":%u,\"median_ns\":%llu,\"min_ns\":%llu,\"max_ns\":%llu,\"failed\":%u}\n",
                       op, tlb_protocol_name(proto), n, got, (unsigned long long)(got ? lat[got / 2] : 0),
                       (unsigned long long)(got ? lat[0] : 0), (unsigned long long)(got ? lat[got - 1] : 0),
                       failed);
            }
        }
        __atomic_store_n(&bench_stop, 1, __ATOMIC_RELEASE);
        for (uint32_t k = 0; k < made; k++)
            thread_join(ts[k], NULL);
    }
    return 0;
}

static uint64_t spinning, started;
static volatile uint64_t *probe_page;   /* mapped at home, never touched by the spinner */

/* With `probe`, it asks the kernel about itself all the time: the kernel
 * checks the answer's place (on this thread's stack, in the home's memory)
 * in the page tables this dispatcher runs on. Once that fails, the tables
 * were emptied under a running dispatcher; it then reads a page its core
 * never cached, which faults at once (and the test sees the fault). */
static int spin_for_ever(void *arg)
{
    bool probe = arg != NULL;
    __atomic_fetch_add(&started, 1, __ATOMIC_RELEASE);
    for (;;) {
        __atomic_fetch_add(&spinning, 1, __ATOMIC_RELAXED);
        struct core_info ci;
        if (probe && sys_core_info(&ci) != ERR_OK)
            __atomic_fetch_add(&spinning, probe_page[0], __ATOMIC_RELAXED);
    }
    return 0;
}

static int abandon_main(uint32_t core, uint32_t there, bool probe)
{
    struct thread *t;
    void *p = 0;
    errval_t err = probe ? vspace_alloc(4096, MAP_WRITE, &p) : ERR_OK;
    probe_page = p;
    if (!err)
        err = thread_create_on(&t, there, spin_for_ever, probe ? (void *)1 : NULL, 0);
    while (!err && !__atomic_load_n(&started, __ATOMIC_ACQUIRE))
        sys_yield();
    /* Many pages more, each mapped by its own Frame: the end of the domain
     * has all of them to unmap too, which makes the window wide. */
    for (uint32_t i = 0; probe && !err && i < 200; i++)
        err = vspace_alloc(4096, MAP_WRITE, &p);
    printf("@atoll {\"event\":\"span_abandon\",\"core\":%u,\"there\":%u,\"probe\":%s,\"err\":\"%s\"}\n", core,
           there, probe ? "true" : "false", err_name(err));
    return err ? 1 : 0;
}

int main(int argc, char **argv)
{
    uint32_t core = startup()->core_id;
    if (argc > 2 && (!strcmp(argv[1], "unmap") || !strcmp(argv[1], "protect")))
        return unmap_main(core, !strcmp(argv[1], "protect"), argv[2],
                          argc > 3 && arg_number(argv[3], core) != core ? (int)arg_number(argv[3], core) : -1);
    if (argc > 6 && !strcmp(argv[1], "bench"))
        return bench_main(core, arg_number(argv[2], 11), arg_number(argv[3], 3), argv[4], argv[5], argv[6]);
    if (argc > 2 && !strcmp(argv[1], "abandon"))
        return abandon_main(core, arg_number(argv[2], 0), argc > 3 && !strcmp(argv[3], "probe"));
    if (argc > 1 && !strcmp(argv[1], "reuse"))
        return reuse_main(core);
    if (argc > 1 && !strcmp(argv[1], "xsync"))
        return xsync_main(core, argc > 2 ? arg_number(argv[2], 200) : 200);
    if (argc > 1 && !strcmp(argv[1], "span"))
        return span_main(core, argc > 2 ? arg_number(argv[2], 2) : 2);
    if (argc > 1 && !strcmp(argv[1], "makers"))
        return makers_main(core, argc > 2 ? arg_number(argv[2], 1) : 1);
    if (argc > 1 && !strcmp(argv[1], "overrun")) {
        /* Heap below the stack, as in a program that has run a while: the
         * overrun lands there, not on the unmapped page below the heap
         * (which would stop the domain with a page fault instead). */
        void *below = malloc(64 << 10);
        struct thread *t;
        if (!below || thread_create(&t, overrun, NULL, THREAD_STACK_MIN) != ERR_OK)
            return 1;
        thread_join(t, NULL);
        printf("threads: the overrun was not caught\n");
        return 1;
    }
    if (argc > 1)
        nthreads = arg_number(argv[1], nthreads);
    if (argc > 2)
        rounds = arg_number(argv[2], rounds);
    if (nthreads < 1 || nthreads > THREAD_MAX - 1) {
        printf("threads: N must be 1 to %u\n", THREAD_MAX - 1);
        return 1;
    }

    struct thread *t;
    errval_t other = thread_create_on(&t, startup()->ncores, worker, NULL, 0);   /* no such core */

    /* The first thread alone waiting for a signal nobody can send. */
    struct thread_cond never = { 0 };
    expect(thread_mutex_lock(&lock) == ERR_OK, "lock alone");
    errval_t alone = thread_cond_wait(&never, &lock);
    expect(thread_mutex_unlock(&lock) == ERR_OK, "unlock alone");

    expect(thread_barrier_init(&barrier, nthreads) == ERR_OK, "barrier init");
    struct thread **all = malloc(nthreads * sizeof *all);
    expect(all != NULL, "malloc");
    uint32_t made = 0;
    for (; all && made < nthreads; made++) {
        errval_t err = thread_create(&all[made], worker, (void *)(uintptr_t)made, 0);
        if (err != ERR_OK) {
            printf("threads: create %u: %s\n", made, err_name(err));
            failures++;
            break;
        }
    }
    uint32_t alive_peak = thread_count();
    for (uint32_t i = 0; i < made; i++) {
        int rv = -1;
        expect(thread_join(all[i], &rv) == ERR_OK && rv == (int)i, "join");
    }
    free(all);

    uint64_t pairs = nthreads / 2 + nthreads % 2;   /* producers (= consumers) */
    uint64_t sum_want = 0;
    for (uint32_t r = 0; r < rounds; r++)
        for (uint32_t me = 0; me < nthreads; me++)
            if (me % 2 == 0 || ((nthreads % 2) && me == nthreads - 1))
                sum_want += (uint64_t)r * 1000 + me;
    uint64_t yield_ns = yield_cost_ns();
    bool ok = failures == 0 && made == nthreads && counter == (uint64_t)nthreads * rounds &&
              items == pairs * rounds && sum == sum_want && lasts == rounds && most_in_section == 1 &&
              other == ERR_INVALID_ARG && alone == ERR_DEADLOCK && thread_count() == 1;
    printf("@atoll {\"event\":\"threads\",\"core\":%u,\"threads\":%u,\"rounds\":%u,\"peak_alive\":%u,"
           "\"counter\":%llu,\"counter_want\":%llu,\"items\":%llu,\"items_want\":%llu,"
           "\"sum\":%llu,\"sum_want\":%llu,\"lasts\":%u,\"most_in_section\":%llu,"
           "\"other_core\":\"%s\",\"deadlock\":\"%s\",\"yield_ns\":%llu,\"ok\":%s}\n",
           core, nthreads, rounds, alive_peak, (unsigned long long)counter,
           (unsigned long long)nthreads * rounds, (unsigned long long)items,
           (unsigned long long)(pairs * rounds), (unsigned long long)sum, (unsigned long long)sum_want,
           lasts, (unsigned long long)most_in_section, err_name(other), err_name(alone),
           (unsigned long long)yield_ns, ok ? "true" : "false");
    return ok ? 0 : 1;
}
