/*
 * A node's pool of physical memory in the memory service (servers/mem):
 * free ranges of one RAM capability, sorted, never adjacent; allocation
 * takes the lowest range that holds an aligned block. Pure (no system
 * calls): host-tested by tests/host/test_mem_pool.c.
 */
#ifndef MEM_POOL_H
#define MEM_POOL_H

#include <stdint.h>
#include <atoll/abi/errors.h>

#define POOL_RANGES 256
#define POOL_PAGE 4096ull

struct pool_range {
    uint64_t start, len;   /* physical, page multiples */
};

struct pool {
    uint64_t base, end;           /* what the pool covers: [base, end) */
    uint64_t free_bytes;
    unsigned n;
    struct pool_range free[POOL_RANGES];
};

/* An empty pool (bytes 0), or one free range [base, base + bytes). */
void pool_init(struct pool *p, uint64_t base, uint64_t bytes);
/* The lowest block of `bytes` (page multiple, > 0) at a multiple of `align`
 * (a power of two >= 4096): ERR_NO_MEMORY if no free range holds one
 * (ERR_TOO_MANY if only a split the table has no room for would). */
errval_t pool_take(struct pool *p, uint64_t bytes, uint64_t align, uint64_t *addr);
/* [addr, addr + bytes) is free again: ERR_OVERLAP if any of it is free
 * already or outside the pool (nothing changes then), ERR_TOO_MANY if the
 * table is full and the range touches no free range. */
errval_t pool_put(struct pool *p, uint64_t addr, uint64_t bytes);
/* The largest free block. */
uint64_t pool_largest(const struct pool *p);

#endif
