/* What lib/thread's synchronisation objects need of its scheduler. */
#ifndef ATOLL_THREAD_INTERNAL_H
#define ATOLL_THREAD_INTERNAL_H

#include <atoll/thread.h>

/* Block the calling thread on q until thread_wake_one takes it off. On an
 * error (ERR_DEADLOCK, or the idle hook's) it is off q and running again. */
errval_t thread_wait_on(struct thread_queue *q);
/* Make q's longest waiter runnable; NULL if q is empty. */
struct thread *thread_wake_one(struct thread_queue *q);

#endif
