/*
 * User address spaces built from VNode capabilities (seL4 style: user code
 * creates each page-table level from its own RAM and maps it). A VNode object
 * is its hardware table followed by a shadow page that records, per entry,
 * the capability mapped there; a capability records the entry that maps it
 * (capability.mapped). So unmapping a frame, or a table dying under its
 * mappings, never needs a search and never touches freed memory.
 */
#ifndef ATOLL_VSPACE_H
#define ATOLL_VSPACE_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include "cap.h"

/* Fill a new PML4's kernel half (entries 256-511) from this core's tables:
 * the kernel is mapped in every address space, supervisor-only. */
void vspace_init_pml4(uint64_t pml4_phys);

/* Map capability `c` (Frame, DevFrame or a lower VNode) at `vaddr` in the
 * address space of PML4 object `pml4_phys`. flags: MAP_WRITE, MAP_EXEC.
 * ERR_MAP_NO_TABLE sets *missing_level (3 PDPT, 2 PD, 1 PT). */
errval_t vspace_map(uint64_t pml4_phys, uint64_t vaddr, struct cte *c, uint32_t flags, int *missing_level);

/* Undo c's mapping, if any. */
void vspace_unmap(struct cte *c);

/* Change the leaf flags (MAP_WRITE, MAP_EXEC) of c's mapping, a Frame or
 * DevFrame mapped here; this core's TLB forgets the old ones.
 * ERR_NOT_MAPPED, ERR_CAP_TYPE, ERR_CAP_RIGHTS, ERR_INVALID_ARG. */
errval_t vspace_protect(struct cte *c, uint32_t flags);

/* A VNode object is dying: forget every mapping it holds. */
void vspace_vnode_destroyed(const struct capability *cap);

/* A capability moved from `from` to `to`: keep the shadow pointing at it. */
void vspace_cap_moved(struct cte *to);

/* Is [addr, addr+len) mapped user-accessible (and writable if `write`) in
 * the address space of `pml4_phys`? The kernel checks this before touching
 * user memory, so a bad pointer is an error, not a kernel page fault. */
bool vspace_user_range_ok(uint64_t pml4_phys, uint64_t addr, uint64_t len, bool write);

/* Spanning domains (docs/spanning.md). A span dispatcher's root table has
 * this core's kernel half and, in its user half, the home PML4's entries:
 * the tables below are the home domain's, shared, written only by the home
 * core's CPU driver. Copy the home's user half into `pml4_phys` (the home
 * table is the domain's memory, read here through the direct map). */
void vspace_span_copy(uint64_t pml4_phys, uint64_t home_phys);
/* A page fault at `addr` in a span dispatcher: true when the home table has
 * an entry for it that ours lacked (a table mapped after we copied): now
 * copied, the access can be retried. */
bool vspace_span_fault(uint64_t pml4_phys, uint64_t home_phys, uint64_t addr);
/* This core forgets translations of [vaddr, vaddr + pages * 4 KiB). */
void vspace_invalidate(uint64_t vaddr, uint64_t pages);

#endif
