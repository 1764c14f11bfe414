/*
 * Mutexes, condition variables and barriers for a domain's threads
 * (<atoll/thread.h>), on its home core and on others alike.
 *
 * Each object has a lock of its own, held for a few instructions while its
 * fields and its queue of waiters change, never while anybody waits: a
 * waiter puts itself on the queue under the lock, lets it go, and then
 * waits (thread_block_on: another home thread runs, or its dispatcher
 * sleeps until its core is notified). A released mutex goes straight to its
 * longest waiter (no thread can overtake a waiter that was woken but has
 * not run yet), whichever core either runs on.
 */
#include <atoll/thread.h>
#include "thread_internal.h"

/* Put self on q (lock held on entry, released here) and wait. */
static errval_t wait_on(struct thread_queue *q, uint32_t *lock, struct thread *self, uint32_t *undo)
{
    thread_prepare_wait(self);
    thread_enqueue(q, self);
    thread_spin_unlock(lock);
    return thread_block_on(q, lock, self, undo);
}

errval_t thread_mutex_lock(struct thread_mutex *m)
{
    if (!m)
        return ERR_INVALID_ARG;
    struct thread *me = thread_me();
    thread_spin_lock(&m->lock);
    if (!m->owner) {
        m->owner = me;
        thread_spin_unlock(&m->lock);
        return ERR_OK;
    }
    if (m->owner == me) {
        thread_spin_unlock(&m->lock);
        return ERR_DEADLOCK;   /* not recursive: it would wait for itself */
    }
    /* The unlocker hands m over: when we run again it is ours. */
    return wait_on(&m->waiters, &m->lock, me, NULL);
}

bool thread_mutex_trylock(struct thread_mutex *m)
{
    if (!m)
        return false;
    struct thread *me = thread_me();
    thread_spin_lock(&m->lock);
    bool got = !m->owner;
    if (got)
        m->owner = me;
    thread_spin_unlock(&m->lock);
    return got;
}

static errval_t unlock_as(struct thread_mutex *m, struct thread *me)
{
    thread_spin_lock(&m->lock);
    if (m->owner != me) {
        thread_spin_unlock(&m->lock);
        return ERR_NOT_PERMITTED;
    }
    struct thread *next = thread_dequeue(&m->waiters);
    m->owner = next;
    thread_spin_unlock(&m->lock);
    if (next)
        thread_wake(next);
    return ERR_OK;
}

errval_t thread_mutex_unlock(struct thread_mutex *m)
{
    if (!m)
        return ERR_INVALID_ARG;
    return unlock_as(m, thread_me());
}

errval_t thread_cond_wait(struct thread_cond *c, struct thread_mutex *m)
{
    if (!c || !m)
        return ERR_INVALID_ARG;
    struct thread *me = thread_me();
    if (__atomic_load_n(&m->owner, __ATOMIC_RELAXED) != me)
        return ERR_NOT_PERMITTED;
    /* On c's queue before m goes: a signal sent as soon as m is free finds us. */
    thread_spin_lock(&c->lock);
    thread_prepare_wait(me);
    thread_enqueue(&c->waiters, me);
    thread_spin_unlock(&c->lock);
    unlock_as(m, me);
    errval_t err = thread_block_on(&c->waiters, &c->lock, me, NULL);
    /* Signalled or not, the caller holds m again when this returns. */
    errval_t relock = thread_mutex_lock(m);
    return err != ERR_OK ? err : relock;
}

void thread_cond_signal(struct thread_cond *c)
{
    if (!c)
        return;
    thread_spin_lock(&c->lock);
    struct thread *t = thread_dequeue(&c->waiters);
    thread_spin_unlock(&c->lock);
    if (t)
        thread_wake(t);
}

/* Wake every thread of a list taken off a queue (t->next is reused by the
 * run queue, so read it first). */
static void wake_all(struct thread_queue all)
{
    for (struct thread *t; (t = thread_dequeue(&all));)
        thread_wake(t);
}

void thread_cond_broadcast(struct thread_cond *c)
{
    if (!c)
        return;
    thread_spin_lock(&c->lock);
    struct thread_queue all = c->waiters;
    c->waiters = (struct thread_queue){ 0 };
    thread_spin_unlock(&c->lock);
    wake_all(all);
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
    struct thread *me = thread_me();
    thread_spin_lock(&b->lock);
    if (++b->arrived == b->count) {
        /* The round is over: the next one starts empty, and only then are
         * this round's waiters let go. */
        b->arrived = 0;
        b->round++;
        struct thread_queue all = b->waiters;
        b->waiters = (struct thread_queue){ 0 };
        thread_spin_unlock(&b->lock);
        wake_all(all);
        if (last)
            *last = true;
        return ERR_OK;
    }
    if (last)
        *last = false;
    /* One that never got through is taken off the count: the others still
     * wait for it. */
    return wait_on(&b->waiters, &b->lock, me, &b->arrived);
}
