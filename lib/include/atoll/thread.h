/*
 * Threads of a domain (lib/thread/): several flows of control in one
 * address space, with join, mutexes, condition variables and barriers.
 *
 * A domain's threads on its home core take turns cooperatively on its
 * dispatcher: a thread runs until it yields, blocks (lock, wait, join,
 * barrier) or ends. There is no preemption among them, so a thread that
 * spins without yielding keeps the others of that core waiting (the CPU
 * driver still preempts the domain as a whole). thread_create_on() another
 * core puts the thread on a dispatcher of the domain there (the domain
 * spans that core, docs/spanning.md): it runs in parallel with the other
 * cores' threads, alone on its dispatcher, until it returns.
 *
 * Every call of this library works from every core: mutexes, condition
 * variables, barriers and joins between threads of different cores, and
 * malloc. A thread on another core that must wait sleeps its dispatcher
 * until it is woken by a notification of its core (no spinning beyond a
 * few microseconds); a home thread woken from another core runs at the
 * home's next turn. Any thread creates threads on any core (one made
 * from another core is started by the home at its next blocking point);
 * only the home sets the idle hook (ERR_NOT_SUPPORTED elsewhere); a thread
 * on another core cannot be detached (ERR_NOT_SUPPORTED: join it). What
 * needs the home's capabilities or its monitor channel, a remote thread
 * asks of the home with thread_at_home (malloc does, to grow the heap;
 * thread_create_on does, to start the thread). printf works from every
 * core (one line buffer under a lock, lib/printf.c). ERR_DEADLOCK is
 * only detected among home threads with no thread of another core still
 * running (one of those could still wake them).
 *
 * Threads share the domain's memory: what they share is the program's
 * business. The OS's own state still moves only through channels.
 *
 * When the running thread blocks and no other thread can run, the library
 * calls the idle hook (thread_set_idle), which may wait for outside events
 * (one round of the domain's event loop, say) that wake a thread. Without
 * a hook, or when the hook returns an error, the blocking call returns
 * ERR_DEADLOCK (or the hook's error): every thread waits for another and
 * nothing else can wake them.
 *
 * Limits: THREAD_MAX threads alive at once per domain (ERR_TOO_MANY beyond);
 * stacks of THREAD_STACK_MIN..THREAD_STACK_MAX bytes (ERR_INVALID_ARG
 * otherwise). A stack has no guard page: a canary at its far end is checked
 * at every switch, and a thread found to have overrun it ends the domain
 * with a message naming the thread.
 */
#ifndef ATOLL_THREAD_H
#define ATOLL_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define THREAD_MAX          256
#define THREAD_STACK_MIN    (8u << 10)
#define THREAD_STACK_MAX    (8u << 20)
#define THREAD_STACK_DEFAULT (64u << 10)

struct thread;
typedef int thread_fn(void *arg);

/* A FIFO of blocked threads (the library's; zero-initialised is empty). */
struct thread_queue {
    struct thread *head, *tail;
};

/* Start fn(arg) in a new thread on the home core with a stack of
 * `stack_bytes` (0: the default); it becomes runnable and runs at the
 * home's next turn (when a home caller next yields or blocks). *out names
 * it for join and detach. */
errval_t thread_create(struct thread **out, thread_fn *fn, void *arg, size_t stack_bytes);
/* The same on core `core`: another core spans the domain there (above);
 * ERR_INVALID_ARG for a core that does not exist, ERR_CORE_DOWN, or the
 * monitor's error. From a thread on another core than the home, the
 * caller allocates the thread and the home starts it (thread_at_home):
 * the call returns once the home has, so it waits for the home's next
 * blocking point. */
errval_t thread_create_on(struct thread **out, uint32_t core, thread_fn *fn, void *arg,
                          size_t stack_bytes);

/* Wait for t to end; its return value (or thread_exit's) into *retval if
 * not NULL. Frees t. ERR_INVALID_ARG for the caller itself, a detached
 * thread or one another thread already joins. */
errval_t thread_join(struct thread *t, int *retval);
/* t is freed by the library when it ends (no join). */
errval_t thread_detach(struct thread *t);
/* End the calling thread. The domain's first thread ending this way ends
 * the domain, as returning from main does. */
_Noreturn void thread_exit(int retval);
/* Let every other runnable thread run once. */
void thread_yield(void);

struct thread *thread_self(void);
uint32_t thread_id(const struct thread *t);   /* 0: the domain's first thread */
uint32_t thread_count(void);                  /* threads alive, the caller included */

/* Remote threads: true on the domain's home dispatcher. What only the home
 * can do (map memory with its capabilities, talk to its monitor, grow the
 * heap) a remote thread asks of it with thread_at_home: fn(arg) runs on the
 * home dispatcher at its next blocking point (a blocked or joining home
 * thread, a lock's wait), and its result comes back. At home it is a call. */
bool thread_on_home(void);
errval_t thread_at_home(errval_t (*fn)(void *arg), void *arg);
/* How many requests of other cores the home has run so far. */
uint64_t thread_at_home_served(void);

/* Called when the running thread blocks and no thread is runnable: wait
 * for something outside that may wake a thread, then return ERR_OK (the
 * library looks again), or an error that the blocking call returns. */
typedef errval_t thread_idle_fn(void *ctx);
void thread_set_idle(thread_idle_fn *idle, void *ctx);

/* -- synchronisation -------------------------------------------------------
 * Zero-initialised objects are ready to use (unlocked, no waiters). Handing
 * a lock to a waiter is FIFO: the longest waiter gets it next. */
struct thread_mutex {
    uint32_t lock;         /* the object's own (threads on other cores) */
    struct thread *owner;
    struct thread_queue waiters;
};
errval_t thread_mutex_lock(struct thread_mutex *m);
bool thread_mutex_trylock(struct thread_mutex *m);
/* ERR_NOT_PERMITTED if the caller does not hold m. */
errval_t thread_mutex_unlock(struct thread_mutex *m);

struct thread_cond {
    uint32_t lock;
    struct thread_queue waiters;
};
/* Release m, wait for a signal, hold m again. The caller must hold m. */
errval_t thread_cond_wait(struct thread_cond *c, struct thread_mutex *m);
void thread_cond_signal(struct thread_cond *c);
void thread_cond_broadcast(struct thread_cond *c);

struct thread_barrier {
    uint32_t lock;
    uint32_t count;        /* threads that meet */
    uint32_t arrived;
    uint64_t round;
    struct thread_queue waiters;
};
errval_t thread_barrier_init(struct thread_barrier *b, uint32_t count);
/* Wait until `count` threads have arrived; exactly one of them gets
 * *last = true (if last is not NULL). */
errval_t thread_barrier_wait(struct thread_barrier *b, bool *last);

/* -- what each platform supplies (lib/thread/thread_os_atoll.c; the host
 * tests their own) -- */
void *thread_os_alloc(size_t bytes);          /* 16-byte aligned, or NULL */
void thread_os_free(void *p);
uint32_t thread_os_core(void);                /* the home core */
_Noreturn void thread_os_fatal(const char *msg, uint32_t id);
_Noreturn void thread_os_exit(int status);
/* Threads on other cores (ERR_NOT_SUPPORTED where a domain cannot span):
 * start a dispatcher of ours on `core` at rip, with rsp and rdi = arg. */
errval_t thread_os_span(uint32_t core, uint64_t rip, uint64_t rsp, uint64_t arg);
/* On that dispatcher, once its thread is done: *finished = 1 (after which
 * its stack is the joiner's to free: not touched again), wake `core`, end. */
_Noreturn void thread_os_remote_end(uint32_t *finished, uint32_t core);
/* Wake whoever of the domain sleeps in thread_os_wait on `core`; from_span:
 * the caller runs on a span dispatcher (not the home one). */
void thread_os_notify(uint32_t core, bool from_span);
/* A token read before looking at shared state, and a sleep that ends at
 * once if a wake-up came after the token (or after a short time). */
uint64_t thread_os_wait_token(void);
void thread_os_wait(uint64_t token);
/* Let the core run something else for a moment (a lock held elsewhere). */
void thread_os_relax(void);

#endif
