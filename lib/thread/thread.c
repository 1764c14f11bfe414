/*
 * Threads of a domain, taking turns on its dispatcher (<atoll/thread.h>).
 *
 * The run queue is a FIFO of runnable threads; the running thread is on no
 * queue. Switching saves the callee-saved registers on the old stack and
 * its stack pointer in the thread (switch.S), so a thread's whole state
 * between turns is its stack. A thread that ends cannot free the stack it
 * is running on: the next thread to run frees it (detached) or the joiner
 * does.
 */
#include <atoll/thread.h>
#include "thread_internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

#define STACK_CANARY 0x5afe57ac4ca9a7e5ull

enum thread_state { T_RUNNABLE, T_RUNNING, T_BLOCKED, T_DONE };

struct thread {
    uint64_t rsp;                 /* saved while not running */
    enum thread_state state;
    uint32_t id;
    thread_fn *fn;
    void *arg;
    int retval;
    bool detached;
    struct thread *joiner;        /* the thread waiting in thread_join */
    struct thread *next;          /* on the run queue or a wait queue */
    uint64_t *stack;              /* lowest address: the canary; NULL for thread 0 */
    size_t stack_bytes;
    /* A thread on another core runs alone on a dispatcher of the domain
     * there (a span dispatcher, docs/spanning.md), not on this scheduler:
     * it ends by setting `done` and notifying the home core. */
    uint32_t core;
    bool remote;
    uint32_t done;                /* remote: written there, read here (atomics) */
};

/* Switch stacks: save ours into *save_rsp, run from new_rsp (switch.S). */
void thread_switch(uint64_t *save_rsp, uint64_t new_rsp);
/* Where a new thread's first switch returns to (switch.S): calls thread_entry. */
void thread_trampoline(void);
_Noreturn void thread_entry(void);

static struct thread first = { .state = T_RUNNING, .id = 0 };
static struct thread *current = &first;
static struct thread_queue runq;
static struct thread *reap;          /* ended and detached: free at the next turn */
static uint32_t alive = 1, next_id = 1;
static thread_idle_fn *idle_fn;
static void *idle_ctx;

/* -- queues ---------------------------------------------------------------- */

static void enqueue(struct thread_queue *q, struct thread *t)
{
    t->next = NULL;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
}

static struct thread *dequeue(struct thread_queue *q)
{
    struct thread *t = q->head;
    if (t) {
        q->head = t->next;
        if (!q->head)
            q->tail = NULL;
        t->next = NULL;
    }
    return t;
}

/* Make a blocked thread runnable (a lock handed over, a signal, a join). */
static void wake(struct thread *t)
{
    t->state = T_RUNNABLE;
    enqueue(&runq, t);
}

/* -- switching ------------------------------------------------------------- */

#ifdef __SANITIZE_ADDRESS__
static const void *first_bottom;
static size_t first_size;
static struct thread *switched_from;

static void asan_arrived(void *fake)
{
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(fake, &bottom, &size);
    if (switched_from == &first) {
        first_bottom = bottom;
        first_size = size;
    }
}
#endif

/* A thread lives at the top of its own stack block: one allocation. */
static void free_thread(struct thread *t)
{
    thread_os_free(t->stack);
}

static void check_canary(const struct thread *t)
{
    if (t->stack && t->stack[0] != STACK_CANARY)
        thread_os_fatal("thread overran its stack", t->id);
}

/* Run `to` instead of the current thread, which has already been put where
 * it belongs (run queue, a wait queue, or nowhere when it ended). */
static void switch_to(struct thread *to)
{
    struct thread *from = current;
    check_canary(from);
    if (to == from) {
        to->state = T_RUNNING;
        return;
    }
    current = to;
    to->state = T_RUNNING;
#ifdef __SANITIZE_ADDRESS__
    /* Tell ASan which stack we move to (the first thread's as ASan told us
     * when we first left it), and learn where we came from. */
    void *fake;
    __sanitizer_start_switch_fiber(from->state == T_DONE ? NULL : &fake,
                                   to->stack ? (const void *)to->stack : first_bottom,
                                   to->stack ? to->stack_bytes : first_size);
    switched_from = from;
    thread_switch(&from->rsp, to->rsp);
    asan_arrived(fake);
#else
    thread_switch(&from->rsp, to->rsp);
#endif
    /* Back on `from`'s stack: a detached thread that ended before us can go. */
    if (reap && reap != current) {
        free_thread(reap);
        reap = NULL;
    }
}

/* The current thread cannot go on (already on a wait queue, state set):
 * run another. With none runnable, ask the idle hook (which may wake the
 * caller itself: then switch_to finds it is already running); without
 * one, every thread waits for another: ERR_DEADLOCK. */
static errval_t block(void)
{
    for (;;) {
        struct thread *t = dequeue(&runq);
        if (t) {
            switch_to(t);
            return ERR_OK;
        }
        if (!idle_fn)
            return ERR_DEADLOCK;
        errval_t err = idle_fn(idle_ctx);
        if (err != ERR_OK)
            return err;
    }
}

/* A blocked caller that got ERR_DEADLOCK is still on the wait queue it
 * joined: take it off again. */
static void unqueue(struct thread_queue *q, struct thread *t)
{
    struct thread *prev = NULL;
    for (struct thread *i = q->head; i; prev = i, i = i->next) {
        if (i != t)
            continue;
        if (prev)
            prev->next = i->next;
        else
            q->head = i->next;
        if (q->tail == i)
            q->tail = prev;
        i->next = NULL;
        return;
    }
}

/* -- for the synchronisation objects (thread_internal.h) -------------------- */

errval_t thread_wait_on(struct thread_queue *q)
{
    current->state = T_BLOCKED;
    enqueue(q, current);
    errval_t err = block();
    if (err != ERR_OK) {
        unqueue(q, current);
        current->state = T_RUNNING;
    }
    return err;
}

struct thread *thread_wake_one(struct thread_queue *q)
{
    struct thread *t = dequeue(q);
    if (t)
        wake(t);
    return t;
}

void thread_yield(void)
{
    if (!runq.head)
        return;
    current->state = T_RUNNABLE;
    enqueue(&runq, current);
    switch_to(dequeue(&runq));
}

/* -- life ------------------------------------------------------------------ */

_Noreturn void thread_entry(void)
{
#ifdef __SANITIZE_ADDRESS__
    asan_arrived(NULL);
#endif
    if (reap && reap != current) {
        free_thread(reap);
        reap = NULL;
    }
    thread_exit(current->fn(current->arg));
}

/* Where a thread on another core starts (its dispatcher's first
 * instruction, rdi = the thread): it runs, publishes its value, wakes the
 * home core and ends its dispatcher. Nothing here touches the scheduler's
 * state, which is the home dispatcher's. */
_Noreturn void thread_remote_entry(struct thread *t);
_Noreturn void thread_remote_entry(struct thread *t)
{
    t->retval = t->fn(t->arg);
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    thread_os_remote_end();
}

errval_t thread_create_on(struct thread **out, uint32_t core, thread_fn *fn, void *arg,
                          size_t stack_bytes)
{
    if (!out || !fn)
        return ERR_INVALID_ARG;
    bool remote = core != thread_os_core();
    if (stack_bytes == 0)
        stack_bytes = THREAD_STACK_DEFAULT;
    if (stack_bytes < THREAD_STACK_MIN || stack_bytes > THREAD_STACK_MAX)
        return ERR_INVALID_ARG;
    stack_bytes &= ~(size_t)15;
    if (alive >= THREAD_MAX)
        return ERR_TOO_MANY;
    /* One block: the canary at its lowest address, the stack growing down
     * towards it, and the thread's record above the stack, where a stack
     * that overruns cannot reach it before the canary says so. */
    uint64_t *stack = thread_os_alloc(stack_bytes);
    if (!stack)
        return ERR_NO_MEMORY;
    size_t record = (sizeof(struct thread) + 15) & ~(size_t)15;
    struct thread *t = (struct thread *)((char *)stack + stack_bytes - record);
    *t = (struct thread){ .state = T_RUNNABLE, .id = next_id++, .fn = fn, .arg = arg,
                          .stack = stack, .stack_bytes = stack_bytes - record };
    stack[0] = STACK_CANARY;
    if (remote) {
        /* Its dispatcher starts at thread_remote_entry on this stack, as
         * if called (the return address slot holds 0). */
        t->remote = true;
        t->core = core;
        uint64_t *top = (uint64_t *)t;
        *--top = 0;   /* rsp = 8 mod 16, as at any function's entry */
        errval_t err = thread_os_span(core, (uint64_t)(uintptr_t)thread_remote_entry, (uint64_t)(uintptr_t)top,
                                      (uint64_t)(uintptr_t)t);
        if (err) {
            thread_os_free(stack);
            return err;
        }
        alive++;
        *out = t;
        return ERR_OK;
    }
    /* The first switch to t pops six callee-saved registers (zero) and
     * returns into the trampoline, which aligns the stack and calls
     * thread_entry. */
    uint64_t *top = (uint64_t *)t;
    *--top = 0;
    *--top = (uint64_t)(uintptr_t)thread_trampoline;
    for (int i = 0; i < 6; i++)
        *--top = 0;
    t->rsp = (uint64_t)(uintptr_t)top;
    alive++;
    enqueue(&runq, t);
    *out = t;
    return ERR_OK;
}

errval_t thread_create(struct thread **out, thread_fn *fn, void *arg, size_t stack_bytes)
{
    return thread_create_on(out, thread_os_core(), fn, arg, stack_bytes);
}

_Noreturn void thread_exit(int retval)
{
    struct thread *me = current;
    if (me == &first) {
        /* The domain's first thread ends the domain, as main's return does. */
        thread_os_exit(retval);
    }
    me->retval = retval;
    me->state = T_DONE;
    alive--;
    if (me->joiner)
        wake(me->joiner);
    else if (me->detached)
        reap = me;   /* freed by the next thread to run (not on its own stack) */
    for (;;) {
        struct thread *t = dequeue(&runq);
        if (t)
            switch_to(t);   /* never comes back: nobody runs a done thread */
        else if (!idle_fn || idle_fn(idle_ctx) != ERR_OK)
            thread_os_fatal("the last runnable thread ended and nothing can wake the others", me->id);
    }
}

/* Wait for a thread on another core: this core's threads run meanwhile;
 * with none runnable, sleep until the remote's notification (or a short
 * timeout: a wake-up that came before the sleep is not lost, the token
 * says so). */
static errval_t join_remote(struct thread *t, int *retval)
{
    t->joiner = current;
    for (;;) {
        uint64_t token = thread_os_wait_token();
        if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
            break;
        if (runq.head)
            thread_yield();
        else
            thread_os_wait(token);
    }
    if (retval)
        *retval = t->retval;
    alive--;
    free_thread(t);
    return ERR_OK;
}

errval_t thread_join(struct thread *t, int *retval)
{
    if (!t || t == current || t->detached || t->joiner || t == &first)
        return ERR_INVALID_ARG;
    if (t->remote)
        return join_remote(t, retval);
    if (t->state != T_DONE) {
        t->joiner = current;
        current->state = T_BLOCKED;
        errval_t err = block();
        if (err != ERR_OK) {
            t->joiner = NULL;
            current->state = T_RUNNING;
            return err;
        }
    }
    if (retval)
        *retval = t->retval;
    free_thread(t);
    return ERR_OK;
}

errval_t thread_detach(struct thread *t)
{
    if (!t || t == &first || t->detached || t->joiner)
        return ERR_INVALID_ARG;
    if (t->remote)
        return ERR_NOT_SUPPORTED;   /* its stack is ours to free, after it ends: join it */
    if (t->state == T_DONE) {
        free_thread(t);
        return ERR_OK;
    }
    t->detached = true;
    return ERR_OK;
}

struct thread *thread_self(void) { return current; }
uint32_t thread_id(const struct thread *t) { return t->id; }
uint32_t thread_count(void) { return alive; }

void thread_set_idle(thread_idle_fn *idle, void *ctx)
{
    idle_fn = idle;
    idle_ctx = ctx;
}
