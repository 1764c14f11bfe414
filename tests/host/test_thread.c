/*
 * Host unit tests for lib/thread (<atoll/thread.h>): the same scheduler,
 * switch and synchronisation code as in the guest, run on Linux under ASan
 * and UBSan (the switch tells ASan about every change of stack). Every
 * test leaves no thread alive behind it; LeakSanitizer checks at exit that
 * every stack and thread was freed.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucontext.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atoll/thread.h>
#include "check.h"

/* -- the platform, as the guest's lib/thread/thread_os_atoll.c is --------- *
 * A span dispatcher on "core" C is a host thread that runs on the stack the
 * library gave it (a ucontext), so threads "on other cores" really run in
 * parallel with the home's. Each core has a notification generation, as a
 * CPU driver has: thread_os_wait sleeps while it is the token's. */
#define HOME_CORE 3
#define HOST_CORES 8

static pthread_mutex_t gen_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gen_cv = PTHREAD_COND_INITIALIZER;
static uint64_t gen[HOST_CORES];
static __thread uint32_t my_core = HOME_CORE;
static int spans_made, spans_ended, notify_misuse;

struct host_span {
    uint64_t rip, rsp, arg;
    uint32_t core;
    ucontext_t back, go;
    uint32_t *finished;   /* set by thread_os_remote_end, done back on our own stack */
    uint32_t notify;
};
static __thread struct host_span *my_span;

void *thread_os_alloc(size_t bytes) { return malloc(bytes); }
void thread_os_free(void *p) { free(p); }
uint32_t thread_os_core(void) { return HOME_CORE; }
_Noreturn void thread_os_fatal(const char *msg, uint32_t id)
{
    fprintf(stderr, "thread %u: %s\n", id, msg);
    _exit(70);
}
_Noreturn void thread_os_exit(int status) { exit(status); }

static void span_start(void)
{
    struct host_span *h = my_span;
    ((void (*)(void *))(uintptr_t)h->rip)((void *)(uintptr_t)h->arg);
    abort();   /* thread_remote_entry never returns */
}

static void *host_dispatcher(void *p)
{
    struct host_span *h = p;
    my_core = h->core;
    my_span = h;
    getcontext(&h->go);
    /* The library's stack: it starts at rsp + 8, the thread's record. */
    h->go.uc_stack.ss_sp = (void *)(uintptr_t)(h->rsp + 8 - 4096);
    h->go.uc_stack.ss_size = 4096;
    h->go.uc_link = NULL;
    makecontext(&h->go, span_start, 0);
    swapcontext(&h->back, &h->go);
    /* Back on this host thread's own stack: now the library's may go. */
    __atomic_store_n(h->finished, 1, __ATOMIC_SEQ_CST);
    thread_os_notify(h->notify, true);
    __atomic_add_fetch(&spans_ended, 1, __ATOMIC_SEQ_CST);
    free(h);
    return NULL;
}

errval_t thread_os_span(uint32_t core, uint64_t rip, uint64_t rsp, uint64_t arg)
{
    if (core >= HOST_CORES)
        return ERR_INVALID_ARG;
    struct host_span *h = calloc(1, sizeof *h);
    *h = (struct host_span){ .rip = rip, .rsp = rsp, .arg = arg, .core = core };
    pthread_t pt;
    if (pthread_create(&pt, NULL, host_dispatcher, h)) {
        free(h);
        return ERR_NO_MEMORY;
    }
    pthread_detach(pt);
    spans_made++;
    return ERR_OK;
}

_Noreturn void thread_os_remote_end(uint32_t *finished, uint32_t core)
{
    my_span->finished = finished;
    my_span->notify = core;
    setcontext(&my_span->back);
    abort();
}

void thread_os_notify(uint32_t core, bool from_span)
{
    if (from_span != (my_core != HOME_CORE) || core >= HOST_CORES)
        __atomic_add_fetch(&notify_misuse, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&gen_mu);
    gen[core % HOST_CORES]++;
    pthread_cond_broadcast(&gen_cv);
    pthread_mutex_unlock(&gen_mu);
}

uint64_t thread_os_wait_token(void)
{
    pthread_mutex_lock(&gen_mu);
    uint64_t g = gen[my_core];
    pthread_mutex_unlock(&gen_mu);
    return g;
}

void thread_os_wait(uint64_t token)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 10 * 1000 * 1000;   /* 10 ms at most, as the guest's */
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&gen_mu);
    if (gen[my_core] == token)
        pthread_cond_timedwait(&gen_cv, &gen_mu, &until);
    pthread_mutex_unlock(&gen_mu);
}

void thread_os_relax(void) { sched_yield(); }

/* -- a log of what ran, in order -------------------------------------------- */
static int trail[4096];
static int ntrail;
static void note(int v)
{
    if (ntrail < (int)(sizeof trail / sizeof trail[0]))
        trail[ntrail++] = v;
}

static int returns_arg(void *arg)
{
    note((int)(intptr_t)arg);
    return (int)(intptr_t)arg * 10;
}

static void test_create_join(void)
{
    ntrail = 0;
    struct thread *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_ERR(thread_create(&t[i], returns_arg, (void *)(intptr_t)(i + 1), 0), ERR_OK);
    CHECK_EQ(thread_count(), 4);
    CHECK_EQ(ntrail, 0);   /* nothing runs before the creator yields or blocks */
    CHECK(thread_id(t[0]) != 0 && thread_id(t[0]) != thread_id(t[1]));
    CHECK_EQ(thread_id(thread_self()), 0);
    int rv = 0;
    CHECK_ERR(thread_join(t[1], &rv), ERR_OK);
    CHECK_EQ(rv, 20);
    /* Joining t[1] ran the queue in order: t[1]'s end made the joiner
     * runnable behind t[2], which had been queued first. */
    CHECK_EQ(ntrail, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(trail[i], i + 1);
    CHECK_ERR(thread_join(t[0], &rv), ERR_OK);   /* already done */
    CHECK_EQ(rv, 10);
    CHECK_ERR(thread_join(t[2], NULL), ERR_OK);
    CHECK_EQ(thread_count(), 1);
}

static int yielder(void *arg)
{
    for (int i = 0; i < 3; i++) {
        note((int)(intptr_t)arg);
        thread_yield();
    }
    return 0;
}

static void test_yield_takes_turns(void)
{
    ntrail = 0;
    struct thread *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_ERR(thread_create(&t[i], yielder, (void *)(intptr_t)(i + 1), 0), ERR_OK);
    for (int i = 0; i < 3; i++)
        CHECK_ERR(thread_join(t[i], NULL), ERR_OK);
    int want[] = { 1, 2, 3, 1, 2, 3, 1, 2, 3 };
    CHECK_EQ(ntrail, 9);
    for (int i = 0; i < 9; i++)
        CHECK_EQ(trail[i], want[i]);
    thread_yield();   /* alone: returns at once */
}

static int exits_early(void *arg)
{
    (void)arg;
    thread_exit(77);
}

static int deep(int n)
{
    volatile char pad[256];
    pad[0] = (char)n;
    return n ? deep(n - 1) + pad[0] - (char)n + 1 : 0;
}

static int uses_its_stack(void *arg)
{
    *(int *)arg = deep(100);   /* about 30 KiB of a 64 KiB stack */
    return 0;
}

static void test_exit_stack_and_shared_memory(void)
{
    struct thread *t;
    int rv = 0, shared = 0;
    CHECK_ERR(thread_create(&t, exits_early, NULL, 0), ERR_OK);
    CHECK_ERR(thread_join(t, &rv), ERR_OK);
    CHECK_EQ(rv, 77);
    CHECK_ERR(thread_create(&t, uses_its_stack, &shared, 0), ERR_OK);
    CHECK_ERR(thread_join(t, NULL), ERR_OK);
    CHECK_EQ(shared, 100);   /* written through a pointer to the creator's stack */
}

static struct thread_mutex mx;
static int in_section, most_in_section, counter;

static int locker(void *arg)
{
    for (int i = 0; i < 50; i++) {
        CHECK_ERR(thread_mutex_lock(&mx), ERR_OK);
        note((int)(intptr_t)arg);
        in_section++;
        if (in_section > most_in_section)
            most_in_section = in_section;
        int c = counter;
        thread_yield();   /* others run and queue for the lock meanwhile */
        counter = c + 1;
        in_section--;
        CHECK_ERR(thread_mutex_unlock(&mx), ERR_OK);
    }
    return 0;
}

static void test_mutex(void)
{
    ntrail = 0;
    counter = most_in_section = 0;
    struct thread *t[4];
    for (int i = 0; i < 4; i++)
        CHECK_ERR(thread_create(&t[i], locker, (void *)(intptr_t)(i + 1), 0), ERR_OK);
    for (int i = 0; i < 4; i++)
        CHECK_ERR(thread_join(t[i], NULL), ERR_OK);
    CHECK_EQ(counter, 200);
    CHECK_EQ(most_in_section, 1);
    /* Handed over in FIFO order: with everyone queued, turns go round. */
    for (int i = 4; i < 40; i++)
        CHECK_EQ(trail[i], trail[i - 4]);
    /* Misuse. */
    CHECK_ERR(thread_mutex_unlock(&mx), ERR_NOT_PERMITTED);
    CHECK(thread_mutex_trylock(&mx));
    CHECK(!thread_mutex_trylock(&mx));
    CHECK_ERR(thread_mutex_lock(&mx), ERR_DEADLOCK);   /* not recursive */
    CHECK_ERR(thread_mutex_unlock(&mx), ERR_OK);
    CHECK(mx.owner == NULL);
    CHECK_ERR(thread_mutex_lock(NULL), ERR_INVALID_ARG);
}

/* A bounded buffer: producers and consumers on two condition variables. */
#define RING 4
static struct thread_mutex bm;
static struct thread_cond not_full, not_empty;
static int ring[RING], rhead, rcount;
static long consumed_sum;
static int consumed_n;

static int producer(void *arg)
{
    int base = (int)(intptr_t)arg * 1000;
    for (int i = 1; i <= 250; i++) {
        CHECK_ERR(thread_mutex_lock(&bm), ERR_OK);
        while (rcount == RING)
            CHECK_ERR(thread_cond_wait(&not_full, &bm), ERR_OK);
        CHECK(bm.owner == thread_self());
        ring[(rhead + rcount++) % RING] = base + i;
        thread_cond_signal(&not_empty);
        CHECK_ERR(thread_mutex_unlock(&bm), ERR_OK);
    }
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    for (;;) {
        CHECK_ERR(thread_mutex_lock(&bm), ERR_OK);
        while (rcount == 0 && consumed_n < 1000)
            CHECK_ERR(thread_cond_wait(&not_empty, &bm), ERR_OK);
        if (consumed_n == 1000) {
            thread_cond_broadcast(&not_empty);
            CHECK_ERR(thread_mutex_unlock(&bm), ERR_OK);
            return 0;
        }
        consumed_sum += ring[rhead];
        rhead = (rhead + 1) % RING;
        rcount--;
        consumed_n++;
        thread_cond_signal(&not_full);
        if (consumed_n == 1000)
            thread_cond_broadcast(&not_empty);
        CHECK_ERR(thread_mutex_unlock(&bm), ERR_OK);
        if (consumed_n % 3 == 0)
            thread_yield();
    }
}

static void test_condition_variables(void)
{
    struct thread *t[7];
    for (int i = 0; i < 4; i++)
        CHECK_ERR(thread_create(&t[i], producer, (void *)(intptr_t)(i + 1), 0), ERR_OK);
    for (int i = 4; i < 7; i++)
        CHECK_ERR(thread_create(&t[i], consumer, NULL, 0), ERR_OK);
    for (int i = 0; i < 7; i++)
        CHECK_ERR(thread_join(t[i], NULL), ERR_OK);
    CHECK_EQ(consumed_n, 1000);
    /* Sum over producers p=1..4 of (1000p * 250 + 250*251/2). */
    CHECK_EQ(consumed_sum, 1000L * 250 * 10 + 4L * 31375);
    CHECK_EQ(rcount, 0);
    CHECK_ERR(thread_cond_wait(&not_full, &bm), ERR_NOT_PERMITTED);   /* m not held */
}

static struct thread_barrier bar;
static int arrivals[10], lasts[10];

static int meets(void *arg)
{
    (void)arg;
    for (int r = 0; r < 10; r++) {
        arrivals[r]++;
        bool last = false;
        CHECK_ERR(thread_barrier_wait(&bar, &last), ERR_OK);
        CHECK_EQ(arrivals[r], 5);   /* nobody passes before all five came */
        lasts[r] += last;
    }
    return 0;
}

static void test_barrier(void)
{
    CHECK_ERR(thread_barrier_init(&bar, 0), ERR_INVALID_ARG);
    CHECK_ERR(thread_barrier_init(&bar, 5), ERR_OK);
    struct thread *t[5];
    for (int i = 0; i < 5; i++)
        CHECK_ERR(thread_create(&t[i], meets, NULL, 0), ERR_OK);
    for (int i = 0; i < 5; i++)
        CHECK_ERR(thread_join(t[i], NULL), ERR_OK);
    for (int r = 0; r < 10; r++)
        CHECK_EQ(lasts[r], 1);
    CHECK_EQ(bar.round, 10);
    /* Alone at a barrier of two: nobody can come. */
    CHECK_ERR(thread_barrier_init(&bar, 2), ERR_OK);
    CHECK_ERR(thread_barrier_wait(&bar, NULL), ERR_DEADLOCK);
    CHECK_EQ(bar.arrived, 0);
}

static struct thread_mutex held;
static errval_t wants_held_got;

static int wants_held(void *arg)
{
    (void)arg;
    /* The main thread holds `held` and waits to join us: when we block,
     * nobody is left to run, and the last to block is told. */
    wants_held_got = thread_mutex_lock(&held);
    CHECK(held.owner != thread_self());
    CHECK(held.waiters.head == NULL);
    return 5;
}

static void test_deadlock_is_an_error(void)
{
    struct thread *t;
    CHECK_ERR(thread_mutex_lock(&held), ERR_OK);
    CHECK_ERR(thread_create(&t, wants_held, NULL, 0), ERR_OK);
    int rv = 0;
    CHECK_ERR(thread_join(t, &rv), ERR_OK);
    CHECK_EQ(rv, 5);
    CHECK_ERR(wants_held_got, ERR_DEADLOCK);
    CHECK_ERR(thread_mutex_unlock(&held), ERR_OK);
    CHECK(held.owner == NULL);
    /* Alone, waiting for a signal nobody can send. */
    struct thread_cond never = { 0 };
    CHECK_ERR(thread_mutex_lock(&held), ERR_OK);
    CHECK_ERR(thread_cond_wait(&never, &held), ERR_DEADLOCK);
    CHECK(held.owner == thread_self());
    CHECK_ERR(thread_mutex_unlock(&held), ERR_OK);
}

/* The idle hook stands for the outside world: after a few calls an "event"
 * signals the waiting thread. */
static struct thread_mutex im;
static struct thread_cond ic;
static int idle_calls, event_came;

static errval_t idle_world(void *ctx)
{
    (void)ctx;
    if (++idle_calls == 3) {
        event_came = 1;
        thread_cond_signal(&ic);
    }
    return idle_calls > 10 ? ERR_TIMEOUT : ERR_OK;
}

static int waits_for_event(void *arg)
{
    (void)arg;
    CHECK_ERR(thread_mutex_lock(&im), ERR_OK);
    while (!event_came)
        CHECK_ERR(thread_cond_wait(&ic, &im), ERR_OK);
    CHECK_ERR(thread_mutex_unlock(&im), ERR_OK);
    return 9;
}

static void test_idle_hook(void)
{
    thread_set_idle(idle_world, NULL);
    struct thread *t;
    CHECK_ERR(thread_create(&t, waits_for_event, NULL, 0), ERR_OK);
    int rv = 0;
    CHECK_ERR(thread_join(t, &rv), ERR_OK);
    CHECK_EQ(rv, 9);
    CHECK_EQ(idle_calls, 3);
    /* The main thread itself waiting on the world: woken by the hook. */
    event_came = 0;
    idle_calls = 0;
    CHECK_ERR(thread_mutex_lock(&im), ERR_OK);
    while (!event_came)
        CHECK_ERR(thread_cond_wait(&ic, &im), ERR_OK);
    CHECK_ERR(thread_mutex_unlock(&im), ERR_OK);
    CHECK_EQ(idle_calls, 3);
    /* A hook that gives up: its error comes back, and m is held again. */
    idle_calls = 4;
    CHECK_ERR(thread_mutex_lock(&im), ERR_OK);
    CHECK_ERR(thread_cond_wait(&ic, &im), ERR_TIMEOUT);
    CHECK(im.owner == thread_self());
    CHECK(ic.waiters.head == NULL);
    CHECK_ERR(thread_mutex_unlock(&im), ERR_OK);
    thread_set_idle(NULL, NULL);
}

static int detached_done;

static int detached(void *arg)
{
    (void)arg;
    thread_yield();
    detached_done++;
    return 0;
}

static void test_detach_and_limits(void)
{
    struct thread *t;
    for (int i = 0; i < 5; i++) {
        CHECK_ERR(thread_create(&t, detached, NULL, 0), ERR_OK);
        CHECK_ERR(thread_detach(t), ERR_OK);
        CHECK_ERR(thread_detach(t), ERR_INVALID_ARG);
        CHECK_ERR(thread_join(t, NULL), ERR_INVALID_ARG);
    }
    while (thread_count() > 1)
        thread_yield();
    CHECK_EQ(detached_done, 5);

    CHECK_ERR(thread_create(&t, detached, NULL, THREAD_STACK_MIN - 16), ERR_INVALID_ARG);
    CHECK_ERR(thread_create(&t, detached, NULL, THREAD_STACK_MAX + 16), ERR_INVALID_ARG);
    CHECK_ERR(thread_create(NULL, detached, NULL, 0), ERR_INVALID_ARG);
    CHECK_ERR(thread_create(&t, NULL, NULL, 0), ERR_INVALID_ARG);
    CHECK_ERR(thread_create_on(&t, HOST_CORES, detached, NULL, 0), ERR_INVALID_ARG);
    CHECK_ERR(thread_join(thread_self(), NULL), ERR_INVALID_ARG);

    static struct thread *many[THREAD_MAX];
    int n = 0;
    errval_t err;
    while ((err = thread_create(&many[n], returns_arg, (void *)(intptr_t)n, THREAD_STACK_MIN)) == ERR_OK)
        n++;
    CHECK_ERR(err, ERR_TOO_MANY);
    CHECK_EQ(n, THREAD_MAX - 1);
    CHECK_EQ(thread_count(), THREAD_MAX);
    for (int i = n - 1; i >= 0; i--) {
        int rv = -1;
        CHECK_ERR(thread_join(many[i], &rv), ERR_OK);
        CHECK_EQ(rv, i * 10);
    }
    CHECK_EQ(thread_count(), 1);
}

/* Writes every byte of a frame as large as the whole stack, unseen by
 * ASan (which would stop at the first byte past the block), so that the
 * library's own canary is what catches it, as in the guest. */
__attribute__((no_sanitize_address, noinline)) static int overruns(void *arg)
{
    (void)arg;
    volatile char big[THREAD_STACK_MIN];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    return big[7];
}

/* In a child process: the overrun ends it with the message. */
static void test_stack_overrun_is_caught(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct thread *t;
        if (thread_create(&t, overruns, NULL, THREAD_STACK_MIN) != ERR_OK)
            _exit(1);
        thread_join(t, NULL);
        _exit(0);   /* not caught */
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 70);
}

/* -- threads on other cores (host threads, really in parallel) ------------- */

#define XROUNDS 2000
static struct thread_mutex xm;
static uint64_t xcounter;
static int x_in, x_most, x_errors;
static int x_where[HOST_CORES];

static void x_note_error(errval_t err)
{
    if (err != ERR_OK)
        __atomic_add_fetch(&x_errors, 1, __ATOMIC_SEQ_CST);
}

/* A counter under the mutex, with a window between its read and its write
 * that a missing lock would lose increments in. */
static int x_locker(void *arg)
{
    int rounds = (int)(intptr_t)arg;
    __atomic_add_fetch(&x_where[my_core], 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < rounds; i++) {
        x_note_error(thread_mutex_lock(&xm));
        int in = __atomic_add_fetch(&x_in, 1, __ATOMIC_SEQ_CST);
        if (in > __atomic_load_n(&x_most, __ATOMIC_SEQ_CST))
            __atomic_store_n(&x_most, in, __ATOMIC_SEQ_CST);
        uint64_t c = __atomic_load_n(&xcounter, __ATOMIC_RELAXED);
        if (i % 64 == 0)
            thread_yield();
        else
            for (volatile int k = 0; k < 20; k++)
                ;
        __atomic_store_n(&xcounter, c + 1, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&x_in, 1, __ATOMIC_SEQ_CST);
        x_note_error(thread_mutex_unlock(&xm));
    }
    return thread_self() ? 7 : 0;
}

static void test_remote_mutex(void)
{
    struct thread *t[6];
    xcounter = 0;
    x_most = x_errors = 0;
    /* Cores 0, 1, 2 and 5, and two more threads at home (core 3). */
    uint32_t cores[6] = { 0, 1, 2, 5, HOME_CORE, HOME_CORE };
    for (int i = 0; i < 6; i++)
        CHECK_ERR(thread_create_on(&t[i], cores[i], x_locker, (void *)(intptr_t)XROUNDS, THREAD_STACK_MIN), ERR_OK);
    x_locker((void *)(intptr_t)XROUNDS);   /* and the first thread */
    for (int i = 0; i < 6; i++) {
        int rv = 0;
        CHECK_ERR(thread_join(t[i], &rv), ERR_OK);
        CHECK_EQ(rv, 7);
    }
    CHECK_EQ(xcounter, 7 * XROUNDS);
    CHECK_EQ(x_most, 1);
    CHECK_EQ(x_errors, 0);
    CHECK(x_where[0] == 1 && x_where[1] == 1 && x_where[2] == 1 && x_where[5] == 1);
    CHECK(xm.owner == NULL && xm.waiters.head == NULL);
    CHECK_EQ(thread_count(), 1);
}

/* A barrier's phases never overlap: in round r every thread has arrived
 * before any leaves, and none has arrived at round r + 1 yet. */
#define BROUNDS 300
#define BTHREADS 6
static struct thread_barrier xb;
static uint32_t b_arrived[BROUNDS + 1], b_lasts[BROUNDS];
static int b_overlaps;

static int b_meets(void *arg)
{
    (void)arg;
    for (int r = 0; r < BROUNDS; r++) {
        __atomic_add_fetch(&b_arrived[r], 1, __ATOMIC_SEQ_CST);
        bool last = false;
        x_note_error(thread_barrier_wait(&xb, &last));
        if (last)
            __atomic_add_fetch(&b_lasts[r], 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&b_arrived[r], __ATOMIC_SEQ_CST) != BTHREADS)
            __atomic_add_fetch(&b_overlaps, 1, __ATOMIC_SEQ_CST);
        /* Nobody can be past round r + 1's barrier while we are here. */
        if (r + 2 <= BROUNDS && __atomic_load_n(&b_lasts[r + 1], __ATOMIC_SEQ_CST))
            __atomic_add_fetch(&b_overlaps, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

static void test_remote_barrier(void)
{
    CHECK_ERR(thread_barrier_init(&xb, BTHREADS), ERR_OK);
    x_errors = 0;
    uint32_t cores[BTHREADS - 1] = { 0, 1, 2, HOME_CORE, 6 };
    struct thread *t[BTHREADS - 1];
    for (int i = 0; i < BTHREADS - 1; i++)
        CHECK_ERR(thread_create_on(&t[i], cores[i], b_meets, NULL, THREAD_STACK_MIN), ERR_OK);
    b_meets(NULL);
    for (int i = 0; i < BTHREADS - 1; i++)
        CHECK_ERR(thread_join(t[i], NULL), ERR_OK);
    int bad_lasts = 0;
    for (int r = 0; r < BROUNDS; r++)
        bad_lasts += b_lasts[r] != 1 || b_arrived[r] != BTHREADS;
    CHECK_EQ(bad_lasts, 0);
    CHECK_EQ(b_overlaps, 0);
    CHECK_EQ(x_errors, 0);
    CHECK(xb.waiters.head == NULL && xb.arrived == 0);
}

/* Producers and consumers on different cores over a 4-slot ring, on two
 * condition variables: every item arrives once. */
#define XITEMS 3000
static struct thread_mutex rm;
static struct thread_cond r_not_full, r_not_empty;
static uint64_t r_ring[4], r_head, r_count, r_sum, r_got;

static int r_producer(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 1; i <= XITEMS / 2; i++) {
        x_note_error(thread_mutex_lock(&rm));
        while (r_count == 4)
            x_note_error(thread_cond_wait(&r_not_full, &rm));
        r_ring[(r_head + r_count++) % 4] = base + i;
        thread_cond_signal(&r_not_empty);
        x_note_error(thread_mutex_unlock(&rm));
    }
    return 0;
}

static int r_consumer(void *arg)
{
    (void)arg;
    for (;;) {
        x_note_error(thread_mutex_lock(&rm));
        while (r_count == 0 && r_got < XITEMS)
            x_note_error(thread_cond_wait(&r_not_empty, &rm));
        if (r_got == XITEMS) {
            thread_cond_broadcast(&r_not_empty);   /* the other consumer is done too */
            x_note_error(thread_mutex_unlock(&rm));
            return 0;
        }
        r_sum += r_ring[r_head];
        r_head = (r_head + 1) % 4;
        r_count--;
        r_got++;
        if (r_got == XITEMS)
            thread_cond_broadcast(&r_not_empty);
        thread_cond_signal(&r_not_full);
        x_note_error(thread_mutex_unlock(&rm));
    }
}

static void test_remote_conditions(void)
{
    x_errors = 0;
    struct thread *p1, *p2, *c1, *c2;
    CHECK_ERR(thread_create_on(&p1, 0, r_producer, (void *)(uintptr_t)0, 0), ERR_OK);
    CHECK_ERR(thread_create_on(&p2, HOME_CORE, r_producer, (void *)(uintptr_t)1000000, 0), ERR_OK);
    CHECK_ERR(thread_create_on(&c1, 1, r_consumer, NULL, 0), ERR_OK);
    CHECK_ERR(thread_create_on(&c2, 2, r_consumer, NULL, 0), ERR_OK);
    CHECK_ERR(thread_join(p1, NULL), ERR_OK);
    CHECK_ERR(thread_join(p2, NULL), ERR_OK);
    CHECK_ERR(thread_join(c1, NULL), ERR_OK);
    CHECK_ERR(thread_join(c2, NULL), ERR_OK);
    uint64_t half = (uint64_t)(XITEMS / 2) * (XITEMS / 2 + 1) / 2;
    CHECK_EQ(r_got, XITEMS);
    CHECK_EQ(r_sum, 2 * half + 1000000ull * (XITEMS / 2));
    CHECK_EQ(x_errors, 0);
}

/* Joins across cores, both ways; a remote thread's self; work only the home
 * can do, asked from another core. */
static struct thread *home_worker;
static int at_home_core = -1, at_home_calls;

static int sleeper(void *arg)
{
    for (int i = 0; i < 50; i++)
        thread_yield();
    return (int)(intptr_t)arg;
}

static errval_t on_the_home(void *arg)
{
    at_home_core = (int)my_core;
    at_home_calls++;
    return *(errval_t *)arg;
}

static int remote_joiner(void *arg)
{
    (void)arg;
    int rv = 0, bad = 0;
    bad += thread_join(home_worker, &rv) != ERR_OK || rv != 11;   /* a home thread */
    /* A home thread made from here: the home queues it. */
    struct thread *made = NULL;
    bad += thread_create(&made, sleeper, (void *)(intptr_t)12, 0) != ERR_OK;
    bad += !made || thread_join(made, &rv) != ERR_OK || rv != 12;
    errval_t want = ERR_TIMEOUT;
    bad += thread_at_home(on_the_home, &want) != ERR_TIMEOUT;
    return bad ? -1 : 21;
}

static int remote_of_remote(void *arg)
{
    struct thread *other = arg;
    int rv = 0;
    if (thread_join(other, &rv) != ERR_OK)
        return -1;
    return rv + 1;
}

/* Threads made by threads on other cores, on other cores again (a chain
 * 4 -> 5 -> 6, each joining the one it made) and at home, while the home
 * itself waits in a join. */
static int chain(void *arg)
{
    int depth = (int)(intptr_t)arg, rv = 0;
    if (depth == 0)
        return (int)my_core;
    struct thread *next = NULL, *home = NULL;
    if (thread_create_on(&next, my_core + 1, chain, (void *)(intptr_t)(depth - 1), THREAD_STACK_MIN) != ERR_OK ||
        thread_create_on(&home, HOME_CORE, sleeper, (void *)(intptr_t)depth, 0) != ERR_OK)
        return -1;
    int at_home = 0;
    if (thread_join(next, &rv) != ERR_OK || thread_join(home, &at_home) != ERR_OK || at_home != depth)
        return -1;
    return rv * 100 + (int)my_core;
}

static void test_remote_threads_make_threads(void)
{
    struct thread *t;
    int made_before = spans_made;
    CHECK_ERR(thread_create_on(&t, 4, chain, (void *)(intptr_t)2, 0), ERR_OK);
    int rv = 0;
    CHECK_ERR(thread_join(t, &rv), ERR_OK);
    CHECK_EQ(rv, (6 * 100 + 5) * 100 + 4);   /* each ran on its own core */
    CHECK_EQ(spans_made - made_before, 3);
    CHECK_EQ(thread_count(), 1);
    /* A core that does not exist: refused, and nothing is left counted. */
    CHECK_ERR(thread_create_on(&t, HOST_CORES, chain, NULL, 0), ERR_INVALID_ARG);
    CHECK_EQ(thread_count(), 1);
}

static void test_remote_joins(void)
{
    struct thread *r, *rr, *leaf;
    CHECK_ERR(thread_create(&home_worker, sleeper, (void *)(intptr_t)11, 0), ERR_OK);
    CHECK_ERR(thread_create_on(&r, 4, remote_joiner, NULL, 0), ERR_OK);
    CHECK_ERR(thread_create_on(&leaf, 6, sleeper, (void *)(intptr_t)40, 0), ERR_OK);
    CHECK_ERR(thread_create_on(&rr, 7, remote_of_remote, leaf, 0), ERR_OK);
    int rv = 0;
    CHECK_ERR(thread_join(r, &rv), ERR_OK);
    CHECK_EQ(rv, 21);
    CHECK_EQ(at_home_core, HOME_CORE);
    CHECK_EQ(at_home_calls, 1);
    CHECK_ERR(thread_join(rr, &rv), ERR_OK);
    CHECK_EQ(rv, 41);
    CHECK_EQ(thread_count(), 1);
    /* Every span dispatcher ended, and every wake-up went the right way. */
    for (int i = 0; i < 1000 && __atomic_load_n(&spans_ended, __ATOMIC_SEQ_CST) != spans_made; i++)
        usleep(1000);
    CHECK_EQ(spans_ended, spans_made);
    CHECK_EQ(notify_misuse, 0);
}

int main(void)
{
    test_create_join();
    test_yield_takes_turns();
    test_exit_stack_and_shared_memory();
    test_mutex();
    test_condition_variables();
    test_barrier();
    test_deadlock_is_an_error();
    test_idle_hook();
    test_detach_and_limits();
    test_stack_overrun_is_caught();
    test_remote_mutex();
    test_remote_barrier();
    test_remote_conditions();
    test_remote_joins();
    test_remote_threads_make_threads();
    return check_done();
}
