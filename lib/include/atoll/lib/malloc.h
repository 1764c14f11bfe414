/*
 * malloc and friends for user domains (lib/malloc.c): the allocator of
 * <atoll/lib/heap.h> growing at USER_HEAP_BASE, frames from SLOT_RAM.
 * All return NULL when memory runs out; free(NULL) does nothing; a bad or
 * double free() ends the domain with a message.
 */
#ifndef ATOLL_LIB_MALLOC_H
#define ATOLL_LIB_MALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/lib/heap.h>

void *malloc(size_t bytes);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t bytes);

/* Where the heap grows from. A backing maps [at, end) read-write (it may
 * map on up to `limit`, the next 2 MiB boundary) and sets *done to how far
 * it mapped; NULL (the default): frames from SLOT_RAM. <atoll/mem.h>'s
 * numa_set_localalloc and numa_set_preferred set one. */
typedef errval_t malloc_backing_fn(uint64_t at, uint64_t end, uint64_t limit, uint64_t *done);
void malloc_set_backing(malloc_backing_fn *fn);

/* A domain whose threads run on several cores at once (lib/thread) makes
 * the heap safe for them: `enter`/`leave` around every call, and `grow`
 * runs the mapping that grows the heap (fn(arg)) where the domain's
 * capabilities are, its home dispatcher, and returns its result. NULL:
 * none (one dispatcher). */
struct malloc_guard {
    void (*enter)(void);
    void (*leave)(void);
    errval_t (*grow)(errval_t (*fn)(void *arg), void *arg);
};
void malloc_set_guard(const struct malloc_guard *g);

/* The heap itself (statistics, heap_check). */
struct heap *malloc_heap(void);

#endif
