/*
 * Host unit tests for lib/heap.c, the allocator behind user-space malloc.
 * A fake morecore hands out memory from one big arena: contiguously (regions
 * merge), with gaps (separate regions), or not at all past a limit. After
 * every step heap_check() walks the whole heap and every free list.
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/lib/heap.h>
#include "check.h"

#define ARENA_SIZE (256u << 20)

static char *arena;
static size_t arena_used;
static size_t arena_limit;      /* morecore fails past this */
static size_t gap;              /* bytes skipped before each new region */
static size_t extra;            /* morecore gives this much more than asked */
static unsigned morecore_calls;

static void *fake_morecore(struct heap *h, size_t bytes, size_t *got)
{
    (void)h;
    morecore_calls++;
    CHECK_EQ(bytes % 4096, 0);
    size_t give = bytes + extra;
    if (arena_used + gap + give > arena_limit)
        return NULL;
    arena_used += gap;
    void *p = arena + arena_used;
    arena_used += give;
    *got = give;
    return p;
}

static jmp_buf panic_jump;
static int panics;
static const char *panic_what;

static void fake_panic(struct heap *h, const char *what, const void *ptr)
{
    (void)h;
    (void)ptr;
    panics++;
    panic_what = what;
    longjmp(panic_jump, 1);
}

static void fresh(struct heap *h, size_t limit, size_t gap_bytes)
{
    arena_used = 0;
    arena_limit = limit;
    gap = gap_bytes;
    extra = 0;
    morecore_calls = 0;
    heap_init(h, fake_morecore, fake_panic);
}

#define HEAP_OK(h)                                                            \
    do {                                                                      \
        const char *bad_ = heap_check(h);                                     \
        if (bad_)                                                             \
            fprintf(stderr, "heap_check: %s\n", bad_);                        \
        CHECK(bad_ == NULL);                                                  \
    } while (0)

static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 7 + i * 13);
}

static int intact(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed * 7 + i * 13))
            return 0;
    return 1;
}

static void test_basic(void)
{
    struct heap h;
    fresh(&h, ARENA_SIZE, 0);
    HEAP_OK(&h);
    CHECK_EQ(h.regions, 0);
    static const size_t sizes[] = { 0, 1, 15, 16, 17, 31, 32, 33, 100, 4000, 4096, 65536, 100000 };
    void *p[sizeof sizes / sizeof *sizes];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        p[i] = heap_alloc(&h, sizes[i]);
        CHECK(p[i] != NULL);
        CHECK_EQ((uintptr_t)p[i] % HEAP_ALIGN, 0);
        CHECK(heap_usable_size(p[i]) >= sizes[i]);
        fill(p[i], sizes[i], (unsigned)i);
        HEAP_OK(&h);
    }
    CHECK_EQ(h.chunks_in_use, sizeof sizes / sizeof *sizes);
    CHECK_EQ(h.regions, 1);   /* contiguous growth merges */
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        CHECK(intact(p[i], sizes[i], (unsigned)i));
        heap_free(&h, p[i]);
        HEAP_OK(&h);
    }
    CHECK_EQ(h.chunks_in_use, 0);
    CHECK_EQ(h.bytes_in_use, 0);
    heap_free(&h, NULL);   /* a no-op */
    HEAP_OK(&h);
}

/* Freed neighbours merge: after freeing everything, the whole region is
 * one chunk again, and a block of nearly its size fits without growing. */
static void test_coalescing(void)
{
    struct heap h;
    fresh(&h, ARENA_SIZE, 0);
    h.grow_min = 64 * 1024;
    void *a = heap_alloc(&h, 1000), *b = heap_alloc(&h, 1000), *c = heap_alloc(&h, 1000);
    void *d = heap_alloc(&h, 1000);
    CHECK_EQ(morecore_calls, 1);
    heap_free(&h, a);
    heap_free(&h, c);
    HEAP_OK(&h);
    heap_free(&h, b);   /* joins a and c */
    HEAP_OK(&h);
    void *big = heap_alloc(&h, 3000);   /* fits where a, b, c were */
    CHECK(big == a);
    heap_free(&h, big);
    heap_free(&h, d);
    HEAP_OK(&h);
    size_t region = h.bytes_from_core;
    void *all = heap_alloc(&h, region - 64);   /* everything but header and fence */
    CHECK(all != NULL);
    CHECK_EQ(morecore_calls, 1);
    heap_free(&h, all);
    HEAP_OK(&h);
}

static void test_regions(void)
{
    struct heap h;
    /* Separate regions (a gap before each). */
    fresh(&h, ARENA_SIZE, 4096);
    h.grow_min = 4096;
    void *p[40];
    for (int i = 0; i < 40; i++) {
        p[i] = heap_alloc(&h, 3000);
        CHECK(p[i] != NULL);
        fill(p[i], 3000, (unsigned)i);
    }
    CHECK(h.regions >= 20);
    HEAP_OK(&h);
    for (int i = 0; i < 40; i += 2)
        heap_free(&h, p[i]);
    HEAP_OK(&h);
    for (int i = 1; i < 40; i += 2) {
        CHECK(intact(p[i], 3000, (unsigned)i));
        heap_free(&h, p[i]);
    }
    HEAP_OK(&h);
    /* morecore giving more than asked. */
    fresh(&h, ARENA_SIZE, 0);
    extra = 12288;
    void *q = heap_alloc(&h, 10);
    CHECK(q != NULL);
    CHECK_EQ(h.bytes_from_core, 64 * 1024 + 12288);
    heap_free(&h, q);
    HEAP_OK(&h);
}

static void test_realloc(void)
{
    struct heap h;
    fresh(&h, ARENA_SIZE, 0);
    char *p = heap_realloc(&h, NULL, 100);   /* = alloc */
    CHECK(p != NULL);
    fill(p, 100, 1);
    char *q = heap_realloc(&h, p, 50);       /* shrink: in place */
    CHECK(q == p);
    CHECK(intact(q, 50, 1));
    HEAP_OK(&h);
    q = heap_realloc(&h, q, 400);            /* grow into the free space after it */
    CHECK(q == p);
    CHECK(intact(q, 50, 1));
    HEAP_OK(&h);
    fill(q, 400, 2);
    char *blocker = heap_alloc(&h, 10);      /* right after q */
    char *r = heap_realloc(&h, q, 5000);     /* must move */
    CHECK(r != NULL && r != q);
    CHECK(intact(r, 400, 2));
    HEAP_OK(&h);
    CHECK(heap_realloc(&h, r, 0) == NULL);   /* = free */
    heap_free(&h, blocker);
    CHECK_EQ(h.chunks_in_use, 0);
    HEAP_OK(&h);
    /* A failed realloc keeps the old block. */
    fresh(&h, 128 * 1024, 0);
    p = heap_alloc(&h, 1000);
    fill(p, 1000, 3);
    CHECK(heap_realloc(&h, p, 1 << 20) == NULL);
    CHECK(intact(p, 1000, 3));
    heap_free(&h, p);
    HEAP_OK(&h);
}

static void test_calloc_and_limits(void)
{
    struct heap h;
    fresh(&h, 1 << 20, 0);
    unsigned char *p = heap_alloc(&h, 5000);
    memset(p, 0xff, 5000);
    heap_free(&h, p);
    unsigned char *z = heap_calloc(&h, 100, 50);   /* reuses the dirty memory */
    CHECK(z != NULL);
    int zero = 1;
    for (int i = 0; i < 5000; i++)
        zero &= z[i] == 0;
    CHECK(zero);
    heap_free(&h, z);
    CHECK(heap_calloc(&h, SIZE_MAX / 2, 3) == NULL);   /* n * size overflows */
    void *empty = heap_calloc(&h, 0, 10);   /* a valid, freeable block */
    CHECK(empty != NULL);
    heap_free(&h, empty);
    CHECK(heap_alloc(&h, SIZE_MAX) == NULL);
    CHECK(heap_alloc(&h, SIZE_MAX - 15) == NULL);
    CHECK(heap_alloc(&h, SIZE_MAX / 2 + 1) == NULL);
    CHECK(heap_alloc(&h, 2 << 20) == NULL);   /* more than morecore has */
    HEAP_OK(&h);
    /* Fill up to the limit: NULL, then everything still works. */
    void *blocks[1000];
    int n = 0;
    while (n < 1000 && (blocks[n] = heap_alloc(&h, 4000)) != NULL)
        n++;
    CHECK(n > 100 && n < 1000);
    HEAP_OK(&h);
    for (int i = 0; i < n; i++)
        heap_free(&h, blocks[i]);
    HEAP_OK(&h);
    CHECK_EQ(h.chunks_in_use, 0);
    /* No morecore at all. */
    struct heap none;
    heap_init(&none, NULL, NULL);
    CHECK(heap_alloc(&none, 1) == NULL);
}

static void test_bad_free(void)
{
    struct heap h;
    fresh(&h, ARENA_SIZE, 0);
    char *p = heap_alloc(&h, 100);
    char *keep = heap_alloc(&h, 100);
    heap_free(&h, p);
    panics = 0;
    if (!setjmp(panic_jump))
        heap_free(&h, p);   /* double free */
    CHECK_EQ(panics, 1);
    if (!setjmp(panic_jump))
        heap_free(&h, keep + 8);   /* not a block start */
    CHECK_EQ(panics, 2);
    if (!setjmp(panic_jump))
        heap_realloc(&h, keep + 16, 10);
    CHECK_EQ(panics, 3);
    CHECK(panic_what != NULL);
    HEAP_OK(&h);
    heap_free(&h, keep);
    HEAP_OK(&h);
}

/* Random operations against a shadow list of live blocks. */
static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t random_size(void)
{
    switch (rnd() % 16) {
    case 0: return rnd() % (256 << 10);
    case 1:
    case 2: return rnd() % 65536;
    case 3: return 0;
    default: return rnd() % 512;
    }
}

static void stress(size_t gap_bytes, size_t grow_min, int ops)
{
    struct heap h;
    fresh(&h, ARENA_SIZE, gap_bytes);
    h.grow_min = grow_min;
    enum { LIVE = 600 };
    static struct { char *p; size_t n; unsigned seed; } live[LIVE];
    memset(live, 0, sizeof live);
    unsigned seed = 0;
    for (int op = 0; op < ops; op++) {
        unsigned i = (unsigned)(rnd() % LIVE);
        unsigned kind = (unsigned)(rnd() % 10);
        if (!live[i].p) {
            size_t n = random_size();
            live[i].p = kind == 0 ? heap_calloc(&h, 1, n) : heap_alloc(&h, n);
            CHECK(live[i].p != NULL);
            if (kind == 0)
                for (size_t k = 0; k < n; k++)
                    if (live[i].p[k]) {
                        CHECK(!"calloc memory not zero");
                        break;
                    }
            live[i].n = n;
            live[i].seed = ++seed;
            fill(live[i].p, n, live[i].seed);
        } else if (kind < 3) {
            size_t n = random_size();
            char *q = heap_realloc(&h, live[i].p, n);
            size_t keep = n < live[i].n ? n : live[i].n;
            if (n == 0) {
                CHECK(q == NULL);
                live[i].p = NULL;
                continue;
            }
            CHECK(q != NULL);
            CHECK(intact(q, keep, live[i].seed));
            live[i].p = q;
            live[i].n = n;
            live[i].seed = ++seed;
            fill(q, n, live[i].seed);
        } else {
            CHECK(intact(live[i].p, live[i].n, live[i].seed));
            heap_free(&h, live[i].p);
            live[i].p = NULL;
        }
        if (op % 2000 == 0)
            HEAP_OK(&h);
    }
    HEAP_OK(&h);
    for (unsigned i = 0; i < LIVE; i++) {
        if (live[i].p) {
            CHECK(intact(live[i].p, live[i].n, live[i].seed));
            heap_free(&h, live[i].p);
        }
    }
    HEAP_OK(&h);
    CHECK_EQ(h.chunks_in_use, 0);
    CHECK_EQ(h.bytes_in_use, 0);
    /* Everything free: each region is a single free chunk again. */
    size_t free_chunks = 0;
    for (unsigned b = 0; b < HEAP_NBINS; b++)
        for (struct heap_chunk *c = h.bins[b]; c; c = *(struct heap_chunk **)((char *)c + 16))
            free_chunks++;
    CHECK_EQ(free_chunks, h.regions);
}

int main(void)
{
    arena = aligned_alloc(4096, ARENA_SIZE);
    if (!arena)
        return 2;
    test_basic();
    test_coalescing();
    test_regions();
    test_realloc();
    test_calloc_and_limits();
    test_bad_free();
    stress(0, 64 * 1024, 60000);
    stress(4096, 4096, 30000);
    stress(0, 4096, 30000);
    free(arena);
    return check_done();
}
