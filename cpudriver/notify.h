/*
 * Notifications: the wake-up path of cross-core channels (URPC).
 *
 * A domain that has found its channels empty for a while sleeps in
 * SYS_NOTIFY_WAIT; a sender on any core that sees its flag raises a
 * notification with SYS_NOTIFY on a Notify capability naming the sleeper's
 * core, which becomes a VEC_NOTIFY IPI (or a local call on the same core).
 * An IPI carries no payload, so the receiving core wakes every domain that
 * waits and each re-checks its own channels. A per-core generation number,
 * read before the last check, closes the race between that check and the
 * sleep: a wait whose token is stale returns at once.
 */
#ifndef ATOLL_NOTIFY_H
#define ATOLL_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

struct dispatcher;

/* Notifications one domain may send to other cores per timer tick
 * (monitors: no limit). Past it SYS_NOTIFY says ERR_QUOTA and sends no
 * interrupt, so a domain cannot flood other cores with IPIs: about 12,800 a
 * second at 100 Hz, far more than a channel that sleeps only after polling
 * for tens of microseconds ever needs. */
#define NOTIFY_PER_TICK 128

/* Notify core `core_id` (this one included). */
errval_t notify_send(uint32_t core_id);
/* SYS_NOTIFY for `d`: notify_send within d's rate limit. */
errval_t notify_send_from(struct dispatcher *d, uint32_t core_id);
/* A notification reached this core: bump the generation, wake the waiters.
 * True when some dispatcher was woken. */
bool notify_arrived(void);
/* SYS_NOTIFY_WAIT: block `d` unless `token` is stale. ERR_OK with *gen set
 * when it returns at once; ERR_WOULD_BLOCK when `d` now sleeps (its result
 * registers are filled in when it wakes or its timeout passes). */
errval_t notify_wait(struct dispatcher *d, uint64_t token, uint64_t timeout_us, uint64_t *gen);
/* `d` is stopped or destroyed: it waits for nothing any more. */
void notify_forget(struct dispatcher *d);
/* Wake `d` if it sleeps in notify_wait (a local message arrived for it). */
void notify_wake(struct dispatcher *d);
/* Wake waiters whose timeout has passed (the scheduler calls it). */
void notify_expire(void);
/* The earliest tick at which a timed wait on this core ends (0: none). */
uint64_t notify_next_deadline(void);

#endif
