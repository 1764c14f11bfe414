/*
 * Host unit tests for lib/thread (<atoll/thread.h>): the same scheduler,
 * switch and synchronisation code as in the guest, run on Linux under ASan
 * and UBSan (the switch tells ASan about every change of stack). Every
 * test leaves no thread alive behind it; LeakSanitizer checks at exit that
 * every stack and thread was freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atoll/thread.h>
#include "check.h"

/* -- the platform, as the guest's lib/thread/thread_os_atoll.c is --------- */
void *thread_os_alloc(size_t bytes) { return malloc(bytes); }
void thread_os_free(void *p) { free(p); }
uint32_t thread_os_core(void) { return 3; }
_Noreturn void thread_os_fatal(const char *msg, uint32_t id)
{
    fprintf(stderr, "thread %u: %s\n", id, msg);
    _exit(70);
}
_Noreturn void thread_os_exit(int status) { exit(status); }
errval_t thread_os_span(uint32_t core, uint64_t rip, uint64_t rsp, uint64_t arg)
{
    (void)core, (void)rip, (void)rsp, (void)arg;
    return ERR_NOT_SUPPORTED;   /* one process: no other core to span */
}
_Noreturn void thread_os_remote_end(void) { abort(); }
uint64_t thread_os_wait_token(void) { return 0; }
void thread_os_wait(uint64_t token) { (void)token; }

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
    CHECK_ERR(thread_create_on(&t, 4, detached, NULL, 0), ERR_NOT_SUPPORTED);
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
    return check_done();
}
