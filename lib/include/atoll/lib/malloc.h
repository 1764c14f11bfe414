/*
 * malloc and friends for user domains (lib/malloc.c): the allocator of
 * <atoll/lib/heap.h> growing at USER_HEAP_BASE, frames from SLOT_RAM.
 * All return NULL when memory runs out; free(NULL) does nothing; a bad or
 * double free() ends the domain with a message.
 */
#ifndef ATOLL_LIB_MALLOC_H
#define ATOLL_LIB_MALLOC_H

#include <stddef.h>
#include <atoll/lib/heap.h>

void *malloc(size_t bytes);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t bytes);

/* The heap itself (statistics, heap_check). */
struct heap *malloc_heap(void);

#endif
