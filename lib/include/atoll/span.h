/*
 * Unmapping and write-protecting in a domain that spans cores
 * (docs/spanning.md). The home core's CPU driver changes the page tables
 * (SYS_UNMAP, SYS_PROTECT) and forgets the old translation here; then the
 * home monitor has every other core that has run the domain forget it, by
 * the protocol asked for (enum tlb_protocol, <atoll/monitor_proto.h>). When
 * these return ERR_OK no core can use the old translation any more.
 * A thread on another core may call them too (lib/thread): the home
 * dispatcher runs the call for it at its next blocking point
 * (thread_at_home), the caller's core being asked as any that ran it.
 */
#ifndef ATOLL_SPAN_H
#define ATOLL_SPAN_H

#include <stdint.h>
#include <atoll/lib/caps.h>
#include <atoll/monitor_proto.h>

/* Unmap `frame`, mapped at [vaddr, vaddr + bytes). ERR_NOT_MAPPED (nothing
 * asked of any core) when it is not mapped; ERR_TIMEOUT when some core did
 * not answer within TLB_WAIT_NS; ERR_NOT_SUPPORTED for a protocol not built.
 * *cores (if not NULL): how many other cores were asked. */
errval_t span_unmap(capslot_t frame, uint64_t vaddr, uint64_t bytes, uint32_t protocol, uint32_t *cores);
/* The same for a change of flags (MAP_WRITE, MAP_EXEC), as SYS_PROTECT. */
errval_t span_protect(capslot_t frame, uint32_t flags, uint64_t vaddr, uint64_t bytes, uint32_t protocol,
                      uint32_t *cores);

/* "unicast", "broadcast", "multicast", "numa-multicast", "ipi"; and back
 * (0 for a name that is none of these). */
const char *tlb_protocol_name(uint32_t protocol);
uint32_t tlb_protocol_parse(const char *name);

#endif
