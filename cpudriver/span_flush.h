/*
 * Implicit unmaps in spanning domains (docs/spanning.md, "Deletes and
 * revokes"): a Frame or page table that leaves a domain's tables because
 * its capability is deleted or revoked (the domain's own delete, a revoke
 * by whoever lent it, the domain's end) is unmapped by this core's CPU
 * driver, which flushes only its own TLB. Other cores where the domain
 * runs may still hold the old translation, and the memory may be retyped
 * as soon as the operation returns. So the operation notes it here, and
 * before the system call (or the domain's end) returns, the cores the
 * domains of this core span to are interrupted and waited for
 * (tlb_ipi.h's board): nothing is reused before they forgot it.
 *
 * Which cores: the union of span_cores of this core's dispatchers (the
 * cores their monitors made span dispatchers for), plus those of any
 * dispatcher destroyed in the operation. Coarse on purpose: the page-table
 * entry being cleared does not say whose tables it is in, and spanning
 * domains are few.
 */
#ifndef ATOLL_SPAN_FLUSH_H
#define ATOLL_SPAN_FLUSH_H

#include <stdbool.h>
#include <stdint.h>

/* A mapped Frame, DevFrame or VNode is leaving its tables (or a table dies). */
void span_flush_note(void);
/* A dispatcher with these span cores is destroyed. */
void span_flush_note_cores(const uint64_t cores[4]);
/* Whether some dispatcher of this core spans (an explicit SYS_UNMAP then
 * leaves its Frame owing a flush: flush_owed). */
bool span_flush_spanning(void);
/* Shoot down what was noted, and wait (at most TLB_FLUSH_WAIT_US). */
void span_flush_settle(void);

#define TLB_FLUSH_WAIT_US 5000000ull   /* as TLB_WAIT_NS: a core that does not answer */

#endif
