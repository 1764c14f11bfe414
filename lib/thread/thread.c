/*
 * Threads of a domain, taking turns on its dispatcher (<atoll/thread.h>),
 * and threads on other cores, each alone on a span dispatcher of the
 * domain there (docs/spanning.md).
 *
 * The home dispatcher's run queue is a FIFO of runnable threads; the
 * running thread is on no queue. Switching saves the callee-saved
 * registers on the old stack and its stack pointer in the thread
 * (switch.S), so a thread's whole state between turns is its stack. A
 * thread that ends cannot free the stack it is running on: it is
 * `finished` once it has left it for good (at home: the next thread to run
 * says so; on another core: the dispatcher's last instructions, which use
 * no stack), and only then may its joiner (or, detached, the library) free
 * it.
 *
 * Across cores: the scheduler's state (current, the run queue) belongs to
 * the home dispatcher. A thread on another core waits by sleeping its
 * dispatcher until its `woken` flag is set (thread_os_wait, woken by a
 * notification of its core); a home thread woken from another core is put
 * on the home's inbox and the home core is notified. Which thread is
 * calling is found from the stack pointer: a remote thread's stack is in
 * the table of remote stacks, anything else is the home's current thread.
 */
#include <atoll/thread.h>
#include "thread_internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

#define STACK_CANARY 0x5afe57ac4ca9a7e5ull
#define RECORD_BYTES ((sizeof(struct thread) + 15) & ~(size_t)15)
#define REMOTE_PAGE 4096u    /* remote stack blocks: whole pages (remote_key) */
#define SPINS_BEFORE_RELAX 64

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
    uint32_t core;
    bool remote;                  /* alone on a span dispatcher of `core` */
    uint32_t slot;                /* remote: its entry in remote_key */
    uint32_t woken;               /* remote: set by its waker (atomics) */
    uint32_t finished;            /* off its stack for good (atomics) */
};

/* Switch stacks: save ours into *save_rsp, run from new_rsp (switch.S). */
void thread_switch(uint64_t *save_rsp, uint64_t new_rsp);
/* Where a new thread's first switch returns to (switch.S): calls thread_entry. */
void thread_trampoline(void);
_Noreturn void thread_entry(void);

/* The home dispatcher's. */
static struct thread first = { .state = T_RUNNING, .id = 0 };
static struct thread *current = &first;
static struct thread_queue runq;
static struct thread *leaving;       /* ended at home: finished once we are off its stack */
static uint32_t next_id = 1;
static thread_idle_fn *idle_fn;
static void *idle_ctx;

/* Shared by every dispatcher of the domain (atomics or a lock). */
static uint32_t alive = 1;
static uint32_t life_lock;           /* joiner, detached and finished of every thread */
static uint32_t inbox_lock;
static struct thread_queue inbox;    /* home threads woken from other cores */
static uint32_t inbox_count;
/* Remote threads' stacks, each one word (atomic): (block address >> 4) << 12
 * | block pages. Written by any maker (create, compare-and-swap) and the
 * joiner (cleared);
 * read by anyone asking who it is. */
static uint64_t remote_key[THREAD_MAX];
static uint32_t remote_hw;           /* entries below this may be in use */
/* thread_at_home: one request at a time (its own lock). */
static uint32_t ask_lock;
static struct {
    errval_t (*fn)(void *);
    void *arg;
    errval_t err;
    uint32_t pending, done;
    struct thread *asker;
    uint64_t served;
} ask;

/* -- queues ---------------------------------------------------------------- */

void thread_enqueue(struct thread_queue *q, struct thread *t)
{
    t->next = NULL;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
}

struct thread *thread_dequeue(struct thread_queue *q)
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
#define enqueue thread_enqueue
#define dequeue thread_dequeue

/* Take t off q if it is there. */
static bool unqueue(struct thread_queue *q, struct thread *t)
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
        return true;
    }
    return false;
}

/* -- who is calling, and locks ----------------------------------------------- */

struct thread *thread_me(void)
{
    uint32_t hw = __atomic_load_n(&remote_hw, __ATOMIC_ACQUIRE);
    if (!hw)
        return current;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    for (uint32_t i = 0; i < hw; i++) {
        uint64_t k = __atomic_load_n(&remote_key[i], __ATOMIC_ACQUIRE);
        uintptr_t lo = (uintptr_t)(k >> 12) << 4, hi = lo + (uintptr_t)(k & 0xfff) * REMOTE_PAGE;
        if (k && sp >= lo && sp < hi)
            return (struct thread *)(hi - RECORD_BYTES);
    }
    return current;
}

bool thread_on_home(void) { return !thread_me()->remote; }

static void serve_home(void);

void thread_spin_lock(uint32_t *lock)
{
    for (uint32_t spins = 0; __atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE); spins++) {
        __builtin_ia32_pause();
        if (spins >= SPINS_BEFORE_RELAX) {
            /* The holder's dispatcher was preempted, or waits for us. */
            if (!thread_me()->remote)
                serve_home();
            thread_os_relax();
            spins = 0;
        }
    }
}

void thread_spin_unlock(uint32_t *lock) { __atomic_store_n(lock, 0, __ATOMIC_RELEASE); }

/* -- waking across cores ------------------------------------------------------ */

/* The home's inbox into its run queue (home only). */
static void drain_inbox(void)
{
    if (!__atomic_load_n(&inbox_count, __ATOMIC_ACQUIRE))
        return;
    thread_spin_lock(&inbox_lock);
    for (struct thread *t; (t = dequeue(&inbox));) {
        t->state = T_RUNNABLE;
        enqueue(&runq, t);
    }
    __atomic_store_n(&inbox_count, 0, __ATOMIC_RELEASE);
    thread_spin_unlock(&inbox_lock);
}

void thread_wake(struct thread *t)
{
    struct thread *self = thread_me();
    if (t->remote) {
        uint32_t core = t->core;   /* once woken, t may end and be freed */
        __atomic_store_n(&t->woken, 1, __ATOMIC_SEQ_CST);
        thread_os_notify(core, self->remote);
    } else if (!self->remote) {
        t->state = T_RUNNABLE;
        enqueue(&runq, t);
    } else {
        thread_spin_lock(&inbox_lock);
        enqueue(&inbox, t);
        __atomic_add_fetch(&inbox_count, 1, __ATOMIC_RELEASE);
        thread_spin_unlock(&inbox_lock);
        thread_os_notify(thread_os_core(), true);
    }
}

/* Remote threads not finished yet: while there are some, a home thread
 * that waits may still be woken, so waiting is not a deadlock. */
static bool remote_running(void)
{
    uint32_t hw = __atomic_load_n(&remote_hw, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < hw; i++) {
        uint64_t k = __atomic_load_n(&remote_key[i], __ATOMIC_ACQUIRE);
        if (!k)
            continue;
        uintptr_t hi = ((uintptr_t)(k >> 12) << 4) + (uintptr_t)(k & 0xfff) * REMOTE_PAGE;
        struct thread *t = (struct thread *)(hi - RECORD_BYTES);
        if (!__atomic_load_n(&t->finished, __ATOMIC_ACQUIRE))
            return true;
    }
    return false;
}

/* A remote thread's wait: sleep its dispatcher until *flag is set. */
static void remote_wait_for(uint32_t *flag)
{
    for (;;) {
        uint64_t token = thread_os_wait_token();
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
            return;
        thread_os_wait(token);
    }
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

/* t has left its stack for good: free it (detached), or let its joiner
 * (which may be on another core) have it. */
static void finish(struct thread *t)
{
    thread_spin_lock(&life_lock);
    __atomic_store_n(&t->finished, 1, __ATOMIC_RELEASE);
    struct thread *j = t->joiner;
    bool detached = t->detached;
    thread_spin_unlock(&life_lock);
    if (detached)
        free_thread(t);
    else if (j && j->remote)
        thread_wake(j);   /* a home joiner was woken at the exit already */
}

/* Back on a stack after a switch: a thread that ended before us is off its
 * stack now. */
static void arrived(void)
{
    if (leaving && leaving != current) {
        struct thread *t = leaving;
        leaving = NULL;
        finish(t);
    }
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
    arrived();
}

/* The next runnable home thread, or NULL. */
static struct thread *next_runnable(void)
{
    drain_inbox();
    return dequeue(&runq);
}

/* The current (home) thread cannot go on (already on a wait queue, state
 * set): run another. With none runnable: while remote threads run, one of
 * them may wake us, so sleep until the home core is notified (serving what
 * they ask of the home meanwhile); else ask the idle hook (which may wake
 * the caller itself: then switch_to finds it is already running); without
 * one, every thread waits for another: ERR_DEADLOCK. */
static errval_t block(void)
{
    for (;;) {
        uint64_t token = thread_os_wait_token();
        struct thread *t = next_runnable();
        if (t) {
            switch_to(t);
            return ERR_OK;
        }
        serve_home();
        bool remotes = remote_running();
        if (idle_fn) {
            errval_t err = idle_fn(idle_ctx);
            if (err == ERR_OK)
                continue;
            if (!remotes)
                return err;
        } else if (!remotes) {
            return ERR_DEADLOCK;
        }
        if (!__atomic_load_n(&inbox_count, __ATOMIC_ACQUIRE) && !__atomic_load_n(&ask.pending, __ATOMIC_ACQUIRE))
            thread_os_wait(token);
    }
}

/* -- for the synchronisation objects (thread_internal.h) -------------------- */

void thread_prepare_wait(struct thread *self)
{
    __atomic_store_n(&self->woken, 0, __ATOMIC_RELAXED);
    if (!self->remote)
        self->state = T_BLOCKED;
}

errval_t thread_block_on(struct thread_queue *q, uint32_t *lock, struct thread *self, uint32_t *undo)
{
    if (self->remote) {
        remote_wait_for(&self->woken);
        return ERR_OK;
    }
    errval_t err = block();
    if (err == ERR_OK)
        return ERR_OK;
    thread_spin_lock(lock);
    bool was_waiting = unqueue(q, self);
    if (was_waiting && undo)
        (*undo)--;
    thread_spin_unlock(lock);
    if (!was_waiting) {
        /* Woken from another core while we gave up: what we waited for is
         * ours after all (a lock handed over, a signal). */
        thread_spin_lock(&inbox_lock);
        if (unqueue(&inbox, self))
            __atomic_sub_fetch(&inbox_count, 1, __ATOMIC_RELEASE);
        thread_spin_unlock(&inbox_lock);
        unqueue(&runq, self);
        err = ERR_OK;
    }
    self->state = T_RUNNING;
    return err;
}

void thread_yield(void)
{
    struct thread *self = thread_me();
    if (self->remote) {
        thread_os_relax();
        return;
    }
    serve_home();
    drain_inbox();
    if (!runq.head)
        return;
    current->state = T_RUNNABLE;
    enqueue(&runq, current);
    switch_to(dequeue(&runq));
}

/* -- what only the home can do ----------------------------------------------- */

/* At a home blocking point: run what a remote thread asked (thread_at_home). */
static void serve_home(void)
{
    if (!__atomic_load_n(&ask.pending, __ATOMIC_ACQUIRE))
        return;
    /* Taken before it runs: fn may meet a lock held elsewhere, whose wait
     * serves again, and must not find the same request. */
    __atomic_store_n(&ask.pending, 0, __ATOMIC_RELAXED);
    ask.err = ask.fn(ask.arg);
    ask.served++;
    uint32_t core = ask.asker->core;   /* once done, the asker may end */
    __atomic_store_n(&ask.done, 1, __ATOMIC_SEQ_CST);
    thread_os_notify(core, false);
}

errval_t thread_at_home(errval_t (*fn)(void *arg), void *arg)
{
    struct thread *self = thread_me();
    if (!fn)
        return ERR_INVALID_ARG;
    if (!self->remote)
        return fn(arg);
    thread_spin_lock(&ask_lock);
    ask.fn = fn;
    ask.arg = arg;
    ask.asker = self;
    ask.done = 0;
    __atomic_store_n(&ask.pending, 1, __ATOMIC_SEQ_CST);
    thread_os_notify(thread_os_core(), true);
    remote_wait_for(&ask.done);
    errval_t err = ask.err;
    thread_spin_unlock(&ask_lock);
    return err;
}

/* -- life ------------------------------------------------------------------ */

_Noreturn void thread_entry(void)
{
#ifdef __SANITIZE_ADDRESS__
    asan_arrived(NULL);
#endif
    arrived();
    thread_exit(current->fn(current->arg));
}

/* Where a thread on another core starts (its dispatcher's first
 * instruction, rdi = the thread). */
_Noreturn void thread_remote_entry(struct thread *t);
_Noreturn void thread_remote_entry(struct thread *t)
{
    thread_exit(t->fn(t->arg));
}

/* A remote thread's record and stack: one block of whole pages, named in
 * remote_key from the moment before its dispatcher starts. The home and
 * threads on other cores may register at once: an entry is claimed with a
 * compare-and-swap, and the high-water mark only rises. */
static errval_t remote_register(struct thread *t, uint64_t *block, size_t block_bytes)
{
    uint64_t key = ((uint64_t)(uintptr_t)block >> 4) << 12 | (block_bytes / REMOTE_PAGE);
    for (uint32_t i = 0; i < THREAD_MAX; i++) {
        uint64_t empty = 0;
        if (!__atomic_compare_exchange_n(&remote_key[i], &empty, key, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        t->slot = i;
        uint32_t hw = __atomic_load_n(&remote_hw, __ATOMIC_ACQUIRE);
        while (hw < i + 1 &&
               !__atomic_compare_exchange_n(&remote_hw, &hw, i + 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            ;
        return ERR_OK;
    }
    return ERR_TOO_MANY;
}

/* A thread made on another core than the maker's own: what only the home
 * can do (start a dispatcher through its monitor channel; put a thread on
 * its run queue) the home does, at its next blocking point. The maker has
 * allocated the thread's block itself beforehand: malloc may need the home
 * to grow the heap, and a home asked to allocate could wait for the heap's
 * lock held by a remote thread that waits to ask the home in turn. */
struct span_args {
    uint32_t core;
    struct thread *t;
    uint64_t *top;
};

static errval_t span_at_home(void *arg)
{
    struct span_args *a = arg;
    return thread_os_span(a->core, (uint64_t)(uintptr_t)thread_remote_entry, (uint64_t)(uintptr_t)a->top,
                          (uint64_t)(uintptr_t)a->t);
}

static errval_t enqueue_at_home(void *arg)
{
    enqueue(&runq, arg);
    return ERR_OK;
}

errval_t thread_create_on(struct thread **out, uint32_t core, thread_fn *fn, void *arg,
                          size_t stack_bytes)
{
    if (!out || !fn)
        return ERR_INVALID_ARG;
    bool remote = core != thread_os_core(), at_home = !thread_me()->remote;
    if (at_home)
        first.core = thread_os_core();   /* (a remote maker implies the home made a remote thread before) */
    if (stack_bytes == 0)
        stack_bytes = THREAD_STACK_DEFAULT;
    if (stack_bytes < THREAD_STACK_MIN || stack_bytes > THREAD_STACK_MAX)
        return ERR_INVALID_ARG;
    stack_bytes &= ~(size_t)15;
    if (remote)
        stack_bytes = (stack_bytes + REMOTE_PAGE - 1) & ~(size_t)(REMOTE_PAGE - 1);
    /* Counted before it exists: makers on several cores cannot pass the limit together. */
    if (__atomic_add_fetch(&alive, 1, __ATOMIC_ACQ_REL) > THREAD_MAX) {
        __atomic_sub_fetch(&alive, 1, __ATOMIC_RELAXED);
        return ERR_TOO_MANY;
    }
    /* One block: the canary at its lowest address, the stack growing down
     * towards it, and the thread's record above the stack, where a stack
     * that overruns cannot reach it before the canary says so. */
    uint64_t *stack = thread_os_alloc(stack_bytes);
    if (!stack) {
        __atomic_sub_fetch(&alive, 1, __ATOMIC_RELAXED);
        return ERR_NO_MEMORY;
    }
    struct thread *t = (struct thread *)((char *)stack + stack_bytes - RECORD_BYTES);
    *t = (struct thread){ .state = T_RUNNABLE, .id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED), .fn = fn,
                          .arg = arg, .stack = stack, .stack_bytes = stack_bytes - RECORD_BYTES, .core = core };
    stack[0] = STACK_CANARY;
    if (remote) {
        /* Its dispatcher starts at thread_remote_entry on this stack, as
         * if called (the return address slot holds 0). */
        t->remote = true;
        uint64_t *top = (uint64_t *)t;
        *--top = 0;   /* rsp = 8 mod 16, as at any function's entry */
        struct span_args a = { core, t, top };
        errval_t err = remote_register(t, stack, stack_bytes);
        bool registered = !err;   /* (the monitor may say ERR_TOO_MANY too: its span tables) */
        if (!err)
            err = at_home ? span_at_home(&a) : thread_at_home(span_at_home, &a);
        if (err) {
            if (registered)
                __atomic_store_n(&remote_key[t->slot], 0, __ATOMIC_RELEASE);
            thread_os_free(stack);
            __atomic_sub_fetch(&alive, 1, __ATOMIC_RELAXED);
            return err;
        }
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
    *out = t;   /* before it can run: a home thread may run it as soon as it is queued */
    if (at_home)
        enqueue(&runq, t);
    else
        thread_at_home(enqueue_at_home, t);
    return ERR_OK;
}

errval_t thread_create(struct thread **out, thread_fn *fn, void *arg, size_t stack_bytes)
{
    return thread_create_on(out, thread_os_core(), fn, arg, stack_bytes);
}

/* A remote thread ends: its value and its joiner's wake-up while it still
 * has its stack; then its dispatcher marks it finished and wakes the
 * joiner's core (or the home) with no stack at all, and ends. */
static _Noreturn void remote_exit(struct thread *me, int retval)
{
    me->retval = retval;
    thread_spin_lock(&life_lock);
    me->state = T_DONE;
    struct thread *j = me->joiner;
    thread_spin_unlock(&life_lock);
    uint32_t notify = j ? j->core : thread_os_core();
    thread_os_remote_end(&me->finished, notify);
}

_Noreturn void thread_exit(int retval)
{
    struct thread *me = thread_me();
    if (me->remote)
        remote_exit(me, retval);
    if (me == &first) {
        /* The domain's first thread ends the domain, as main's return does. */
        thread_os_exit(retval);
    }
    me->retval = retval;
    thread_spin_lock(&life_lock);
    me->state = T_DONE;
    struct thread *j = me->joiner;
    thread_spin_unlock(&life_lock);
    /* A home joiner runs only once we left this stack (arrived() finishes
     * us first); one on another core waits for finish(). */
    if (j && !j->remote)
        thread_wake(j);
    __atomic_sub_fetch(&alive, 1, __ATOMIC_RELAXED);
    leaving = me;   /* finished by the next thread to run (not on its own stack) */
    for (;;) {
        struct thread *t = next_runnable();
        if (t)
            switch_to(t);   /* never comes back: nobody runs a done thread */
        serve_home();
        uint64_t token = thread_os_wait_token();
        if (__atomic_load_n(&inbox_count, __ATOMIC_ACQUIRE) || __atomic_load_n(&ask.pending, __ATOMIC_ACQUIRE))
            continue;
        if (remote_running())
            thread_os_wait(token);
        else if (!idle_fn || idle_fn(idle_ctx) != ERR_OK)
            thread_os_fatal("the last runnable thread ended and nothing can wake the others", me->id);
    }
}

/* Wait until t is finished (off its stack). A remote joiner sleeps; a home
 * joiner of a remote thread lets the home's other threads run meanwhile,
 * or sleeps until its core is notified (by t's last instructions; a short
 * timeout covers a wake-up that went elsewhere). */
static void wait_finished(struct thread *self, struct thread *t)
{
    for (;;) {
        uint64_t token = thread_os_wait_token();
        if (__atomic_load_n(&t->finished, __ATOMIC_ACQUIRE))
            return;
        if (self->remote) {
            thread_os_wait(token);
            continue;
        }
        serve_home();
        drain_inbox();
        if (runq.head)
            thread_yield();
        else if (!__atomic_load_n(&ask.pending, __ATOMIC_ACQUIRE))
            thread_os_wait(token);
    }
}

errval_t thread_join(struct thread *t, int *retval)
{
    struct thread *self = thread_me();
    if (!t || t == self || t == &first)
        return ERR_INVALID_ARG;
    thread_spin_lock(&life_lock);
    if (t->detached || t->joiner) {
        thread_spin_unlock(&life_lock);
        return ERR_INVALID_ARG;
    }
    t->joiner = self;
    bool done = __atomic_load_n(&t->finished, __ATOMIC_ACQUIRE);
    bool sleep_here = !done && !t->remote && !self->remote;
    if (sleep_here)
        thread_prepare_wait(self);
    thread_spin_unlock(&life_lock);
    if (sleep_here) {
        /* A home thread joining a home thread: finish() wakes us. */
        errval_t err = block();
        if (err != ERR_OK) {
            thread_spin_lock(&life_lock);
            bool gave_up = !__atomic_load_n(&t->finished, __ATOMIC_ACQUIRE);
            if (gave_up)
                t->joiner = NULL;
            thread_spin_unlock(&life_lock);
            self->state = T_RUNNING;
            if (gave_up)
                return err;
            unqueue(&runq, self);
        }
    }
    /* Otherwise t is remote (its last instructions notify our core), or we
     * are (finish() notifies ours), or it is finished already. */
    wait_finished(self, t);
    if (retval)
        *retval = t->retval;
    if (t->remote) {
        __atomic_store_n(&remote_key[t->slot], 0, __ATOMIC_RELEASE);
        __atomic_sub_fetch(&alive, 1, __ATOMIC_RELAXED);
    }
    free_thread(t);
    return ERR_OK;
}

errval_t thread_detach(struct thread *t)
{
    if (!t || t == &first)
        return ERR_INVALID_ARG;
    if (t->remote)
        return ERR_NOT_SUPPORTED;   /* its stack is ours to free, after it ends: join it */
    thread_spin_lock(&life_lock);
    if (t->detached || t->joiner) {
        thread_spin_unlock(&life_lock);
        return ERR_INVALID_ARG;
    }
    bool done = __atomic_load_n(&t->finished, __ATOMIC_ACQUIRE);
    t->detached = !done;
    thread_spin_unlock(&life_lock);
    if (done)
        free_thread(t);
    return ERR_OK;
}

struct thread *thread_self(void) { return thread_me(); }
uint64_t thread_at_home_served(void) { return __atomic_load_n(&ask.served, __ATOMIC_RELAXED); }
uint32_t thread_id(const struct thread *t) { return t->id; }
uint32_t thread_count(void) { return __atomic_load_n(&alive, __ATOMIC_RELAXED); }

void thread_set_idle(thread_idle_fn *idle, void *ctx)
{
    idle_fn = idle;
    idle_ctx = ctx;
}
