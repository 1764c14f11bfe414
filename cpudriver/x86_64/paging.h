/*
 * Building 4-level x86-64 page tables. Page-table pages come from a pool of
 * physical memory (each core's tables from its own kernel block) and are
 * written through the direct map, which must be mapped when these run.
 */
#ifndef ATOLL_PAGING_H
#define ATOLL_PAGING_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define PTE_P    (1ull << 0)
#define PTE_W    (1ull << 1)
#define PTE_PWT  (1ull << 3)
#define PTE_PCD  (1ull << 4)
#define PTE_A    (1ull << 5)
#define PTE_PS   (1ull << 7)
#define PTE_G    (1ull << 8)
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull
/* Not a hardware bit: lets pt_map use 2 MiB pages where alignment allows. */
#define PT_LARGE_OK (1ull << 9)

#define PAGE_2M (2ull << 20)

struct pt_space {
    uint64_t pml4;            /* physical */
    uint64_t pool, pool_end;  /* page-table pages still free, physical */
    bool nx;                  /* NX allowed (EFER.NXE set) */
};

struct phys_hole {
    uint64_t base, end;
};

errval_t pt_create(struct pt_space *s, uint64_t pool, uint64_t pool_end, bool nx);
/* Map [va, va+size) to [pa, pa+size) with `flags` (PTE_* and PT_LARGE_OK).
 * Mapping over an existing entry is ERR_OVERLAP. */
errval_t pt_map(struct pt_space *s, uint64_t va, uint64_t pa, uint64_t size, uint64_t flags);
/* The direct map: DIRECT_MAP_BASE + [0, top) -> [0, top), read/write, not
 * executable, except the pages in `holes` (sorted, disjoint), which stay
 * unmapped so that this core cannot touch them. */
errval_t pt_map_direct(struct pt_space *s, uint64_t top, const struct phys_hole *holes, int nholes);
/* Page-table pages a core's tables can need at most (see paging.c). */
uint64_t pt_pages_bound(uint64_t top, int nholes, uint64_t kernel_bytes);
/* Sort holes by base and merge overlapping or touching ones; returns the count. */
int holes_normalize(struct phys_hole *h, int n);

#endif
