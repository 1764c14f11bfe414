/*
 * Mutexes, condition variables and barriers for a domain's threads
 * (<atoll/thread.h>). Threads take turns cooperatively, so nothing here
 * needs an atomic instruction: between two blocking points a thread runs
 * alone. A released mutex goes straight to its longest waiter (no thread
 * can overtake a waiter that was woken but has not run yet).
 */
#include <atoll/thread.h>
#include "thread_internal.h"

errval_t thread_mutex_lock(struct thread_mutex *m)
{
    if (!m)
        return ERR_INVALID_ARG;
    struct thread *me = thread_self();
    if (!m->owner) {
        m->owner = me;
        return ERR_OK;
    }
    if (m->owner == me)
        return ERR_DEADLOCK;   /* not recursive: it would wait for itself */
    /* The unlocker hands m over: when we run again it is ours. */
    return thread_wait_on(&m->waiters);
}

bool thread_mutex_trylock(struct thread_mutex *m)
{
    if (!m || m->owner)
        return false;
    m->owner = thread_self();
    return true;
}

errval_t thread_mutex_unlock(struct thread_mutex *m)
{
    if (!m)
        return ERR_INVALID_ARG;
    if (m->owner != thread_self())
        return ERR_NOT_PERMITTED;
    m->owner = thread_wake_one(&m->waiters);
    return ERR_OK;
}

errval_t thread_cond_wait(struct thread_cond *c, struct thread_mutex *m)
{
    if (!c || !m)
        return ERR_INVALID_ARG;
    if (m->owner != thread_self())
        return ERR_NOT_PERMITTED;
    m->owner = thread_wake_one(&m->waiters);
    errval_t err = thread_wait_on(&c->waiters);
    /* Signalled or not, the caller holds m again when this returns. */
    errval_t relock = thread_mutex_lock(m);
    return err != ERR_OK ? err : relock;
}

void thread_cond_signal(struct thread_cond *c)
{
    if (c)
        thread_wake_one(&c->waiters);
}

void thread_cond_broadcast(struct thread_cond *c)
{
    while (c && thread_wake_one(&c->waiters))
        ;
}

errval_t thread_barrier_init(struct thread_barrier *b, uint32_t count)
{
    if (!b || count == 0 || count > THREAD_MAX)
        return ERR_INVALID_ARG;
    *b = (struct thread_barrier){ .count = count };
    return ERR_OK;
}

errval_t thread_barrier_wait(struct thread_barrier *b, bool *last)
{
    if (!b || b->count == 0)
        return ERR_INVALID_ARG;
    if (++b->arrived == b->count) {
        b->arrived = 0;
        b->round++;
        while (thread_wake_one(&b->waiters))
            ;
        if (last)
            *last = true;
        return ERR_OK;
    }
    if (last)
        *last = false;
    errval_t err = thread_wait_on(&b->waiters);
    if (err != ERR_OK)
        b->arrived--;   /* it never got through: the others still wait for it */
    return err;
}
