/*
 * The allocator behind malloc (lib/heap.c): boundary-tagged chunks with
 * immediate coalescing and segregated free lists (one per power of two),
 * first fit within a list, 16-byte aligned payloads. Memory comes from a
 * morecore hook, so the same code runs on the host in tests/host/test_malloc.c;
 * in a domain, lib/malloc.c maps frames at USER_HEAP_BASE upward.
 *
 * Layout: every chunk starts with a 16-byte header {prev_size, size|flags};
 * the payload follows. prev_size is the size of the chunk just below (0 for
 * the first chunk of a region). Each region ends with a 32-byte in-use
 * fence (linking to the next region), so coalescing never runs off its end;
 * when morecore returns memory right after the previous region, the fence
 * becomes an ordinary chunk and the regions merge. Overhead: 16 bytes per
 * block; the smallest block holds 16 bytes.
 */
#ifndef ATOLL_LIB_HEAP_H
#define ATOLL_LIB_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_ALIGN 16u
#define HEAP_NBINS 48

struct heap_chunk;

struct heap;
/* At least `bytes` (a multiple of 4 KiB) of new memory, 16-byte aligned;
 * *got gets how much (>= bytes). NULL when there is no more. */
typedef void *heap_morecore_fn(struct heap *h, size_t bytes, size_t *got);
/* A corrupted heap or a bad free(): does not return. */
typedef void heap_panic_fn(struct heap *h, const char *what, const void *ptr);

struct heap {
    heap_morecore_fn *morecore;
    heap_panic_fn *panic;          /* NULL: trap (ud2 in a domain, abort on the host) */
    size_t grow_min;               /* ask morecore for at least this much (default 64 KiB) */
    struct heap_chunk *bins[HEAP_NBINS];
    struct heap_chunk *first;      /* the first region's first chunk */
    char *region_end;              /* end of the last region: its fence ends here */
    /* statistics */
    size_t bytes_from_core;        /* all memory morecore gave */
    size_t bytes_in_use;           /* sum of in-use chunk sizes (with headers) */
    size_t chunks_in_use;
    unsigned regions;              /* separate (non-adjacent) regions */
};

/* An empty heap growing through `morecore`. */
void heap_init(struct heap *h, heap_morecore_fn *morecore, heap_panic_fn *panic);

void *heap_alloc(struct heap *h, size_t bytes);
void heap_free(struct heap *h, void *p);
void *heap_calloc(struct heap *h, size_t n, size_t size);
void *heap_realloc(struct heap *h, void *p, size_t bytes);
/* Bytes usable at p (>= what was asked for). */
size_t heap_usable_size(const void *p);

/* Walk every region and free list; the first inconsistency found, or NULL.
 * For tests and debugging: O(heap size). */
const char *heap_check(struct heap *h);

#endif
