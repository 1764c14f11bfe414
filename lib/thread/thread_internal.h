/* What lib/thread's synchronisation objects need of its scheduler. */
#ifndef ATOLL_THREAD_INTERNAL_H
#define ATOLL_THREAD_INTERNAL_H

#include <atoll/thread.h>

/* The calling thread, wherever it runs (the home dispatcher's current
 * thread, or a thread alone on a span dispatcher). */
struct thread *thread_me(void);

/* An object's lock: held only for a few instructions, never across a
 * switch or a sleep, so a waiter spins briefly, then lets its core go
 * (and at home serves what other cores asked of it meanwhile). */
void thread_spin_lock(uint32_t *lock);
void thread_spin_unlock(uint32_t *lock);

/* Waiting: with `lock` held, thread_prepare_wait(self), put self on the
 * object's queue, release `lock`, then thread_block_on. It returns ERR_OK
 * once a thread_wake took self off the queue (whichever core that ran on).
 * On an error (at home only: ERR_DEADLOCK, or the idle hook's) self is
 * back off q, and *undo (if not NULL) was decremented under `lock`. */
void thread_prepare_wait(struct thread *self);
errval_t thread_block_on(struct thread_queue *q, uint32_t *lock, struct thread *self, uint32_t *undo);
/* Make a thread taken off a wait queue run again (its own core notified
 * when it is another). */
void thread_wake(struct thread *t);

void thread_enqueue(struct thread_queue *q, struct thread *t);
struct thread *thread_dequeue(struct thread_queue *q);

#endif
