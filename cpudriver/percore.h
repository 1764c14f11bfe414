/*
 * Each core's kernel memory block, and the page tables that make it private.
 *
 * A block holds, in this order: the core's copy of the per-core range
 * (.data and .bss: every writable kernel variable), the pool its page tables
 * are built from, and a small arena. The blocks of the cores of one NUMA node
 * are carved from one contiguous region of that node's memory.
 *
 * A core's page tables map: kernel text read+execute, read-only data
 * read-only and non-executable, the per-core range onto its own copy, the
 * .bootshared range read-only, the local APIC uncached, and a direct map of
 * RAM with holes where the kernel image and every *other* core's block lie.
 * So after the switch, the only way one core could reach another's kernel
 * state is through a page fault (tests/test_boot.py checks that it faults).
 */
#ifndef ATOLL_PERCORE_H
#define ATOLL_PERCORE_H

#include <stdint.h>
#include <atoll/abi/errors.h>
#include "multiboot2.h"
#include "topology.h"

#define PERCORE_ARENA_SIZE (64 * 1024)

struct core_block {
    uint64_t base, size;       /* the whole block, physical */
    uint64_t percore_phys;     /* = base: the copy of the per-core range */
    uint64_t pool, pool_end;   /* page-table pages */
    uint64_t arena, arena_end;
    uint32_t node;             /* node the memory came from */
    uint64_t pml4;             /* set by percore_build_tables */
};

/* Bytes of the per-core range (.data + .bss), page-aligned. */
uint64_t percore_size(void);

/* Carve a block for every core in `t` from its node's memory (pmem.h).
 * A node without enough memory borrows from the nearest node that has it,
 * with a warning. `blocks` has t->ncpus entries. */
errval_t percore_plan(const struct topology *t, const struct mb2_info *mb, struct core_block *blocks,
                      void (*warn)(const char *msg));

/* Build core `c`'s page tables in its block; sets blocks[c].pml4. */
errval_t percore_build_tables(const struct topology *t, const struct mb2_info *mb, struct core_block *blocks,
                              uint32_t c, uint64_t lapic_phys);

/* Start core `c`'s copy of the per-core range from the pristine .data
 * template and a zeroed .bss (APs; the boot core copies its live state). */
void percore_init_copy(const struct core_block *b);

#endif
