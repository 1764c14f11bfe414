/*
 * The allocator behind malloc; see <atoll/lib/heap.h> for the design.
 * Pure: memory comes only from h->morecore, so this file also runs on the
 * host (tests/host/test_malloc.c).
 *
 * A chunk: {prev_size, head} then the payload. head = size | flags; sizes
 * are multiples of 16 with the low bits for flags. A free chunk also holds
 * the links of its bin's list in its payload. Every region ends with a
 * FENCE_SIZE in-use fence chunk that points at the next region's first
 * chunk, so heap_check can walk them all.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/string.h>
#include <atoll/lib/heap.h>

#define HDR 16u                 /* chunk header bytes */
#define MIN_CHUNK 32u           /* header + the two free-list links */
#define FENCE_SIZE 32u
#define F_INUSE 0x1u
#define F_FENCE 0x2u
#define FLAGS 0xfu
#define CORE_UNIT 4096u
#define DEFAULT_GROW (64u * 1024)

struct heap_chunk {
    size_t prev_size;           /* size of the chunk below; 0: first of its region */
    size_t head;                /* size | flags */
    struct heap_chunk *next;    /* free: bin list; fence: next region's first chunk */
    struct heap_chunk *prev;    /* free: bin list */
};

_Static_assert(sizeof(struct heap_chunk) == MIN_CHUNK, "a free chunk's bookkeeping fits the minimum");

static size_t csize(const struct heap_chunk *c) { return c->head & ~(size_t)FLAGS; }
static bool inuse(const struct heap_chunk *c) { return c->head & F_INUSE; }
static struct heap_chunk *at(void *p, size_t off) { return (struct heap_chunk *)((char *)p + off); }
static struct heap_chunk *after(struct heap_chunk *c) { return at(c, csize(c)); }

static void fail(struct heap *h, const char *what, const void *p)
{
    if (h->panic)
        h->panic(h, what, p);
    __builtin_trap();
}

static unsigned bin_of(size_t size)
{
    unsigned log2 = 63u - (unsigned)__builtin_clzll((unsigned long long)size);
    unsigned b = log2 - 5;   /* 32 bytes: bin 0 */
    return b < HEAP_NBINS ? b : HEAP_NBINS - 1;
}

static void bin_insert(struct heap *h, struct heap_chunk *c)
{
    unsigned b = bin_of(csize(c));
    c->prev = NULL;
    c->next = h->bins[b];
    if (c->next)
        c->next->prev = c;
    h->bins[b] = c;
}

static void bin_remove(struct heap *h, struct heap_chunk *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        h->bins[bin_of(csize(c))] = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

/* Set c's size (keeping flags) and tell the chunk after it. */
static void set_size(struct heap_chunk *c, size_t size)
{
    c->head = size | (c->head & FLAGS);
    after(c)->prev_size = size;
}

/* Free chunk c: merge with free neighbours, put it in its bin. */
static void release(struct heap *h, struct heap_chunk *c)
{
    c->head &= ~(size_t)F_INUSE;
    struct heap_chunk *n = after(c);
    if (!inuse(n)) {
        bin_remove(h, n);
        set_size(c, csize(c) + csize(n));
    }
    if (c->prev_size) {
        struct heap_chunk *p = at(c, 0 - c->prev_size);
        if (!inuse(p)) {
            bin_remove(h, p);
            set_size(p, csize(p) + csize(c));
            c = p;
        }
    }
    bin_insert(h, c);
}

/* Cut in-use chunk c down to `need` bytes if the rest makes a chunk. */
static void trim(struct heap *h, struct heap_chunk *c, size_t need)
{
    size_t size = csize(c);
    if (size - need < MIN_CHUNK)
        return;
    set_size(c, need);
    struct heap_chunk *rest = after(c);
    rest->head = F_INUSE;
    set_size(rest, size - need);
    h->bytes_in_use -= size - need;
    release(h, rest);
}

void heap_init(struct heap *h, heap_morecore_fn *morecore, heap_panic_fn *panic)
{
    memset(h, 0, sizeof *h);
    h->morecore = morecore;
    h->panic = panic;
    h->grow_min = DEFAULT_GROW;
}

/* Add `got` bytes at p: extend the last region if p is right after it, else
 * start a new one. */
static void add_core(struct heap *h, char *p, size_t got)
{
    struct heap_chunk *c, *last_fence = h->region_end ? at(h->region_end, 0 - (size_t)FENCE_SIZE) : NULL;
    size_t size;
    if (p == h->region_end) {
        /* The old fence becomes the bottom of a free chunk. */
        c = last_fence;
        c->head = F_INUSE;
        size = got;   /* old fence + new memory - new fence */
    } else {
        c = (struct heap_chunk *)p;
        c->prev_size = 0;
        c->head = F_INUSE;
        size = got - FENCE_SIZE;
        if (last_fence)
            last_fence->next = c;
        else
            h->first = c;
        h->regions++;
    }
    struct heap_chunk *fence = at(c, size);
    fence->head = FENCE_SIZE | F_INUSE | F_FENCE;
    fence->next = NULL;
    fence->prev = NULL;
    set_size(c, size);
    h->region_end = p + got;
    h->bytes_from_core += got;
    release(h, c);
}

static size_t chunk_need(size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return 0;
    size_t need = (bytes + HDR + 15) & ~(size_t)15;
    return need < MIN_CHUNK ? MIN_CHUNK : need;
}

static struct heap_chunk *find(struct heap *h, size_t need)
{
    for (unsigned b = bin_of(need); b < HEAP_NBINS; b++)
        for (struct heap_chunk *c = h->bins[b]; c; c = c->next)
            if (csize(c) >= need)
                return c;
    return NULL;
}

void *heap_alloc(struct heap *h, size_t bytes)
{
    size_t need = chunk_need(bytes);
    if (!need)
        return NULL;
    struct heap_chunk *c = find(h, need);
    if (!c) {
        if (!h->morecore)
            return NULL;
        size_t ask = need + FENCE_SIZE;
        ask = ask < h->grow_min ? h->grow_min : ask;
        if (ask > SIZE_MAX - CORE_UNIT)
            return NULL;
        ask = (ask + CORE_UNIT - 1) & ~(size_t)(CORE_UNIT - 1);
        size_t got = 0;
        char *p = h->morecore(h, ask, &got);
        if (!p || got < ask || ((uintptr_t)p & (HEAP_ALIGN - 1)) || (got & (HEAP_ALIGN - 1)))
            return NULL;
        add_core(h, p, got);
        c = find(h, need);
        if (!c)
            return NULL;
    }
    bin_remove(h, c);
    c->head |= F_INUSE;
    h->bytes_in_use += csize(c);
    h->chunks_in_use++;
    trim(h, c, need);
    return at(c, HDR);
}

/* The chunk of payload p, after checking it is one we handed out. */
static struct heap_chunk *chunk_of(struct heap *h, void *p, const char *op)
{
    struct heap_chunk *c = at(p, 0 - (size_t)HDR);
    if (((uintptr_t)p & (HEAP_ALIGN - 1)) || !inuse(c) || (c->head & F_FENCE) || csize(c) < MIN_CHUNK ||
        after(c)->prev_size != csize(c))
        fail(h, op, p);
    return c;
}

void heap_free(struct heap *h, void *p)
{
    if (!p)
        return;
    struct heap_chunk *c = chunk_of(h, p, "free: not an allocated block (double free?)");
    h->bytes_in_use -= csize(c);
    h->chunks_in_use--;
    release(h, c);
}

void *heap_calloc(struct heap *h, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = heap_alloc(h, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *heap_realloc(struct heap *h, void *p, size_t bytes)
{
    if (!p)
        return heap_alloc(h, bytes);
    if (bytes == 0) {
        heap_free(h, p);
        return NULL;
    }
    struct heap_chunk *c = chunk_of(h, p, "realloc: not an allocated block");
    size_t need = chunk_need(bytes);
    if (!need)
        return NULL;
    size_t size = csize(c);
    if (need <= size) {
        trim(h, c, need);
        return p;
    }
    struct heap_chunk *n = after(c);
    if (!inuse(n) && size + csize(n) >= need) {
        bin_remove(h, n);
        h->bytes_in_use += csize(n);
        set_size(c, size + csize(n));
        trim(h, c, need);
        return p;
    }
    void *q = heap_alloc(h, bytes);
    if (!q)
        return NULL;   /* p stays valid */
    memcpy(q, p, size - HDR);
    heap_free(h, p);
    return q;
}

size_t heap_usable_size(const void *p)
{
    const struct heap_chunk *c = (const struct heap_chunk *)((const char *)p - HDR);
    return csize(c) - HDR;
}

const char *heap_check(struct heap *h)
{
    size_t free_chunks = 0, used_chunks = 0, used_bytes = 0, total = 0;
    unsigned regions = 0;
    for (struct heap_chunk *c = h->first; c;) {
        regions++;
        if (c->prev_size != 0)
            return "a region's first chunk has a chunk below it";
        size_t prev_size = 0;
        bool prev_free = false;
        for (;;) {
            size_t s = csize(c);
            if (c->prev_size != prev_size)
                return "prev_size disagrees with the chunk below";
            if ((uintptr_t)c & (HEAP_ALIGN - 1) || s & (HEAP_ALIGN - 1))
                return "misaligned chunk";
            total += s;
            if (c->head & F_FENCE) {
                if (s != FENCE_SIZE || !inuse(c))
                    return "bad fence";
                c = c->next;
                break;
            }
            if (s < MIN_CHUNK)
                return "chunk below the minimum size";
            if (inuse(c)) {
                used_chunks++;
                used_bytes += s;
                prev_free = false;
            } else {
                if (prev_free)
                    return "two free chunks side by side";
                free_chunks++;
                prev_free = true;
            }
            prev_size = s;
            c = after(c);
        }
    }
    if (regions != h->regions)
        return "region count wrong";
    if (total != h->bytes_from_core)
        return "regions do not add up to what morecore gave";
    if (used_chunks != h->chunks_in_use || used_bytes != h->bytes_in_use)
        return "in-use statistics wrong";
    size_t listed = 0;
    for (unsigned b = 0; b < HEAP_NBINS; b++) {
        struct heap_chunk *prev = NULL;
        for (struct heap_chunk *c = h->bins[b]; c; c = c->next) {
            if (inuse(c))
                return "in-use chunk on a free list";
            if (bin_of(csize(c)) != b)
                return "chunk in the wrong bin";
            if (c->prev != prev)
                return "broken free-list links";
            prev = c;
            if (++listed > free_chunks)
                return "free lists hold more chunks than the heap (a cycle?)";
        }
    }
    if (listed != free_chunks)
        return "a free chunk is on no list";
    return NULL;
}
