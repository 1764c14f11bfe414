/*
 * The `ipi` shootdown protocol: the baseline the message protocols are
 * measured against (docs/spanning.md). As Linux does, the CPU driver that
 * changed a mapping interrupts the others directly and waits for them.
 *
 * An interrupt carries no data, so this is the one place where CPU drivers
 * look at each other's writes: a board, one page of RAM set aside at boot
 * (its address is read-only after boot), with one 64-byte line per core,
 * each written by its own core only: a count of the TLB flushes it has
 * begun and ended (odd while one runs). A requester reads the counts of
 * the cores it asks, interrupts them (VEC_SHOOTDOWN), and waits, with
 * interrupts on, until each has run a whole flush that began after it
 * looked. The message protocols need none of this; the kernel's shootdown
 * of implicit unmaps (span_flush.h) uses it, since it must wait in place.
 */
#ifndef ATOLL_TLB_IPI_H
#define ATOLL_TLB_IPI_H

#include <stdint.h>
#include <atoll/abi/errors.h>
#include "topology.h"

/* The boot core, before the others start: set the board aside. */
void tlb_ipi_plan(const struct topology *t);
/* VEC_SHOOTDOWN arrived: forget every user translation (span dispatchers
 * copy their home's root entries again), counted on our line. */
void tlb_ipi_arrived(void);
/* Interrupt the cores in `cores` (a bit per core, 256) and wait at most
 * timeout_us until each has flushed: ERR_OK, ERR_TIMEOUT, ERR_NO_MEMORY
 * (no board), ERR_INVALID_ARG. *asked: cores interrupted. */
errval_t tlb_ipi_shootdown(const uint64_t cores[4], uint64_t timeout_us, uint64_t *asked);

#endif
