/*
 * Capability slots, memory and mappings for user domains.
 *
 * Slots. The allocator hands out slots of the root CNode from
 * SLOT_FIRST_FREE up to (not including) SLOT_LOADER_FIRST; the slots below
 * are the well-known ones of <atoll/abi/domain.h>, those above hold what the
 * kernel's loader made (the program's frames and page tables).
 *
 * RAM. The domain's RAM capability (SLOT_RAM) is carved up by retype: each
 * object gets the lowest free page-aligned range of it. cap_free() deletes a
 * capability made here and, when it was the object's original capability,
 * makes its RAM reusable. Code that retypes SLOT_RAM itself must not also
 * use these functions (they would both try the same offsets; the library
 * then skips ranges the kernel calls overlapping, but wastes them).
 *
 * Address space. vspace_map() maps a frame at a chosen address and makes the
 * page tables (VNodes, from SLOT_RAM) it needs on the way. One mapping never
 * crosses a 2 MiB boundary (the kernel maps one capability inside one page
 * table); vspace_alloc() and the heap split larger ranges into several
 * frames. Mappings made by vspace_alloc/vspace_map_frame come from
 * [USER_MAP_BASE, USER_STACK_TOP - USER_STACK_SIZE); the heap uses
 * [USER_HEAP_BASE, USER_HEAP_MAX).
 */
#ifndef ATOLL_LIB_CAPS_H
#define ATOLL_LIB_CAPS_H

#include <stdint.h>
#include <atoll/abi/caps.h>
#include <atoll/abi/domain.h>
#include <atoll/abi/errors.h>
#include <atoll/lib/syscall.h>

#define LARGE_PAGE_SIZE (2ull << 20)   /* what one page table covers */

/* ---- slots ---------------------------------------------------------------- */

/* A free slot: ERR_CAP_SLOT_RANGE when none is left. */
errval_t slot_alloc(capslot_t *out);
/* `count` consecutive free slots (retype and spawn fill ranges). */
errval_t slot_alloc_range(unsigned count, capslot_t *first);
/* Give slots back (their capabilities must be gone already: see cap_free).
 * Slots outside the allocator's range are ignored. */
void slot_free(capslot_t slot);
void slot_free_range(capslot_t first, unsigned count);
/* Mark one particular slot in the allocator's range as used (a slot that a
 * protocol fixes): ERR_CAP_OCCUPIED if it is taken, ERR_CAP_SLOT_RANGE if
 * outside the range. */
errval_t slot_reserve(capslot_t slot);
/* How many slots are free. */
unsigned slot_free_count(void);

/* ---- RAM and objects -------------------------------------------------------- */

/* One new object of `type` made from SLOT_RAM in a new slot. `size` as for
 * retype: bytes for RAM, Frame and DevFrame (rounded up to 4 KiB here),
 * log2(slots) for a CNode, 0 for VNodes and dispatchers. Errors:
 * ERR_NO_MEMORY (SLOT_RAM exhausted), ERR_CAP_SLOT_RANGE (no slot),
 * ERR_RETYPE_SIZE, or what the kernel's retype says. */
errval_t ram_retype(enum cap_type type, uint64_t size, capslot_t *out);
/* A RAM capability of `bytes` (rounded up to 4 KiB): to give to a domain
 * (SYS_SPAWN) or to retype yourself. */
errval_t ram_alloc(uint64_t bytes, capslot_t *out);
/* A Frame of `bytes` (rounded up to 4 KiB), zeroed by the kernel. */
errval_t frame_alloc(uint64_t bytes, capslot_t *out);
/* A VNode of `type` (CAP_VNODE_PDPT, _PD or _PT). */
errval_t vnode_alloc(enum cap_type type, capslot_t *out);
/* Delete the capability in `slot` and free the slot; if the library made it
 * with ram_retype (or the functions above), its RAM is reused later. */
errval_t cap_free(capslot_t slot);
/* Bytes of SLOT_RAM not yet handed out (0 before the first allocation
 * asks the kernel how big SLOT_RAM is). */
uint64_t ram_free_bytes(void);

/* ---- the address space ------------------------------------------------------ */

/* Map Frame/DevFrame `frame` at `vaddr` (4 KiB aligned; the frame must not
 * cross a 2 MiB boundary there) with flags MAP_WRITE / MAP_EXEC, making any
 * missing page tables from SLOT_RAM. Errors as SYS_MAP (ERR_MAP_PRESENT,
 * ERR_BAD_ADDRESS, ERR_CAP_RIGHTS, ...) or of making a table. */
errval_t vspace_map(uint64_t vaddr, capslot_t frame, uint32_t flags);
/* Map `frame` (of any size up to 2 MiB) at a fresh address in the mapping
 * region; *out gets the address. For frames received from other domains. */
errval_t vspace_map_frame(capslot_t frame, uint32_t flags, void **out);
/* Undo vspace_map_frame: unmap `frame`, which is mapped at `at`, and keep
 * the address for the next frame of the same size. */
errval_t vspace_unmap_frame(capslot_t frame, void *at);
/* Unmap `frame` from `at` (if not NULL) and free it (cap_free). */
errval_t frame_release(capslot_t frame, void *at);
/* `bytes` (rounded up to 4 KiB) of fresh zeroed memory at a fresh address in
 * the mapping region, in frames of at most 2 MiB; *out gets the address.
 * The memory stays for the domain's lifetime. */
errval_t vspace_alloc(uint64_t bytes, uint32_t flags, void **out);
/* Map frames for [vaddr, vaddr + bytes) (both 4 KiB aligned; nothing mapped
 * there yet), at most 2 MiB each and never across a 2 MiB boundary. The heap
 * grows with this; vspace_alloc uses it too. */
errval_t vspace_back(uint64_t vaddr, uint64_t bytes, uint32_t flags);

#endif
