/*
 * Physical memory at boot: the usable RAM from the multiboot2 memory map,
 * minus what is taken (low 1 MiB, the kernel image, the boot information and
 * modules), split by NUMA node along SRAT's ranges. Only the boot core uses
 * it, to carve each core's kernel memory from that core's own node before the
 * others start; afterwards the rest is RAM for user space, which
 * user_start.c gives each core's monitor as one RAM capability.
 */
#ifndef ATOLL_PMEM_H
#define ATOLL_PMEM_H

#include <stdint.h>
#include <atoll/abi/errors.h>
#include "multiboot2.h"
#include "topology.h"

#define PMEM_ANY_NODE 0xffffffffu

struct pmem_reserved {
    uint64_t base, end;
    const char *what;
};

errval_t pmem_init(const struct mb2_info *mb, const struct topology *t,
                   const struct pmem_reserved *reserved, int nreserved);
/* Allocate `size` bytes aligned to `align` from `node` (PMEM_ANY_NODE: any),
 * lowest address first, above 4 GiB before below (pmem.c says why),
 * entirely below `limit`. Returns the physical address, or 0. */
uint64_t pmem_alloc(uint64_t size, uint64_t align, uint32_t node, uint64_t limit);
/* Free bytes left on `node`, and the end of the highest RAM range. */
uint64_t pmem_free_bytes(uint32_t node);
uint64_t pmem_top(void);

#endif
