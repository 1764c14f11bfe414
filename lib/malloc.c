/*
 * malloc, free, calloc, realloc for user domains: the allocator of heap.c,
 * growing upward from USER_HEAP_BASE with frames from SLOT_RAM mapped
 * read-write (never executable). What is mapped stays mapped: freed memory
 * returns to the allocator, not to the system.
 *
 * A domain may have its heap grow from elsewhere (malloc_set_backing: the
 * memory service's client, <atoll/mem.h> numa_set_localalloc, backs it with
 * Frames of a NUMA node). Growth is never re-entered: a malloc made while
 * the heap grows (by the backing itself) gets NULL rather than a heap
 * grown twice over.
 */
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/domain.h>
#include <atoll/abi/errors.h>
#include <atoll/lib/caps.h>
#include <atoll/lib/heap.h>
#include <atoll/lib/malloc.h>
#include <atoll/lib/startup.h>
#include <atoll/lib/stdio.h>
#include <atoll/lib/syscall.h>

static struct heap heap;
static int heap_ready;
static uint64_t heap_given = USER_HEAP_BASE;    /* handed to the allocator up to here */
static uint64_t heap_mapped = USER_HEAP_BASE;   /* mapped up to here (may be ahead after an error) */
static malloc_backing_fn *backing;              /* NULL: frames from SLOT_RAM */
static int growing;
static const struct malloc_guard *guard;        /* threads on several cores */

void malloc_set_backing(malloc_backing_fn *fn) { backing = fn; }
void malloc_set_guard(const struct malloc_guard *g) { guard = g; }

struct grow_piece {
    uint64_t at, end, boundary, done;
};

static errval_t grow_piece(void *arg)
{
    struct grow_piece *p = arg;
    p->done = p->end;
    return backing ? backing(p->at, p->end, p->boundary, &p->done) : vspace_back(p->at, p->end - p->at, MAP_WRITE);
}

/* Map up to heap_given + bytes, in pieces that never cross 2 MiB, so an
 * error part-way keeps what was mapped for the next call. */
static void *morecore(struct heap *h, size_t bytes, size_t *got)
{
    (void)h;
    if (bytes > USER_HEAP_MAX - heap_given || growing)
        return NULL;
    uint64_t want = heap_given + bytes;
    growing = 1;
    while (heap_mapped < want) {
        uint64_t boundary = (heap_mapped & ~(LARGE_PAGE_SIZE - 1)) + LARGE_PAGE_SIZE;
        uint64_t end = want < boundary ? want : boundary;
        /* The backing may map past `end` (up to the boundary): it says how far. */
        struct grow_piece piece = { .at = heap_mapped, .end = end, .boundary = boundary };
        errval_t err = guard && guard->grow ? guard->grow(grow_piece, &piece) : grow_piece(&piece);
        uint64_t done = piece.done;
        if (err || done < end || done > boundary) {
            growing = 0;
            return NULL;
        }
        heap_mapped = done;
    }
    growing = 0;
    void *p = (void *)(uintptr_t)heap_given;
    heap_given = want;
    *got = bytes;
    return p;
}

static void heap_panic(struct heap *h, const char *what, const void *ptr)
{
    (void)h;
    printf("malloc: %s: %p\n", what, ptr);
    exit(134);
}

struct heap *malloc_heap(void)
{
    if (!heap_ready) {
        heap_init(&heap, morecore, heap_panic);
        heap_ready = 1;
    }
    return &heap;
}

static void enter(void)
{
    if (guard)
        guard->enter();
}

static void leave(void)
{
    if (guard)
        guard->leave();
}

void *malloc(size_t bytes)
{
    enter();
    void *p = heap_alloc(malloc_heap(), bytes);
    leave();
    return p;
}

void free(void *p)
{
    enter();
    heap_free(malloc_heap(), p);
    leave();
}

void *calloc(size_t n, size_t size)
{
    enter();
    void *p = heap_calloc(malloc_heap(), n, size);
    leave();
    return p;
}

void *realloc(void *p, size_t bytes)
{
    enter();
    void *q = heap_realloc(malloc_heap(), p, bytes);
    leave();
    return q;
}
