/*
 * Obituaries: how a core's monitor learns, at once, that a domain of its
 * core has ended, whichever way it ended (exit, fault, killed, or it deleted
 * its own dispatcher or CSpace). The monitor must release what it and the
 * servers hold for that domain; polling every child would cost a system
 * call per child per look, so the kernel keeps a short queue of ends and
 * wakes the core's notification waiters (the monitor sleeps there).
 *
 * A domain's end is queued once: when its live dispatcher is destroyed, or
 * when it is stopped without being reclaimed (its root CNode was not in
 * slot 1: a zombie, which the monitor reclaims by revoking its RAM). If
 * the queue overflows, the monitor is told so (SYS_DOMAIN_ENDED returns
 * ERR_TOO_MANY once) and rescans its children.
 */
#ifndef ATOLL_OBITUARY_H
#define ATOLL_OBITUARY_H

#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/abi/syscall.h>

struct dispatcher;

/* How `d` is about to end (before it is killed): kept until its end is
 * queued. Without a note the end reads DOMAIN_END_DELETED. */
void obituary_note(struct dispatcher *d, uint32_t reason, int64_t status);
/* `d` has ended (or is a stopped zombie): queue its end once, wake the
 * monitor. */
void obituary_record(struct dispatcher *d);
/* SYS_DOMAIN_ENDED: the oldest end not yet taken (peek, then pop once it
 * reached the monitor). ERR_WOULD_BLOCK when none; ERR_TOO_MANY once after
 * ends were lost to a full queue (peek clears that). */
errval_t obituary_peek(struct domain_end *out);
void obituary_pop(void);

#endif
