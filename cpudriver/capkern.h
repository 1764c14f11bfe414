/* The CPU driver's implementation of the capability hooks (cap.h). */
#ifndef ATOLL_CAPKERN_H
#define ATOLL_CAPKERN_H
#include <stdint.h>
#include <atoll/abi/errors.h>
#include "core.h"

#define PTE_ADDR_MASK 0x000ffffffffff000ull

static inline uint64_t core_kernel_pml4(void) { return core.pml4_phys; }

/* Install the hooks on this core (each core has its own copy of cap.c's
 * hook pointer, like all kernel state). */
void capkern_init(void);

struct cte;
/* The next watched capability (CAP_REL_WATCH) that lost its last child or
 * was adopted, oldest first: ERR_WOULD_BLOCK when none; ERR_TOO_MANY once
 * after notices were lost to a full queue (the monitor then looks at every
 * capability it watches). */
errval_t capkern_notice_take(struct cte **out);
#endif
