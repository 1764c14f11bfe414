/*
 * A set of cores, kept small at any machine size: the owner of an object
 * records with one which cores hold copies of it (monitor/capops.c).
 *
 * Most objects that cross cores are held by one or two others, a few by
 * many: so up to CORESET_INLINE core numbers live in the set itself (8
 * bytes, sorted), and only a set that grows past that takes a 256-bit
 * bitmap (32 bytes) from a pool the caller owns; it gives it back when it
 * shrinks to CORESET_INLINE again. At 255 cores an object held everywhere
 * costs 8 + 32 bytes, one held by two others 8.
 *
 * Pure: built into the monitor and into the host tests.
 */
#ifndef ATOLL_CORESET_H
#define ATOLL_CORESET_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define CORESET_INLINE 6
#define CORESET_MAX_CORES 256
#define CORESET_WORDS (CORESET_MAX_CORES / 64)

struct coreset {
    uint8_t n;        /* cores in the set */
    uint8_t wide;     /* 1: the cores are in bitmap `map` of the pool */
    union {
        uint8_t ids[CORESET_INLINE];   /* n of them, ascending */
        uint16_t map;
    };
};
_Static_assert(sizeof(struct coreset) == 8, "a core set is one word");

/* The bitmaps of wide sets. `maps` and `used` are the caller's (nmaps of
 * each); a zeroed pool with them filled in is empty. */
struct coreset_pool {
    uint64_t (*maps)[CORESET_WORDS];
    uint8_t *used;
    uint16_t nmaps;
    uint16_t in_use;
};

static inline uint32_t coreset_count(const struct coreset *s) { return s->n; }
bool coreset_has(const struct coreset_pool *p, const struct coreset *s, uint32_t core);
/* ERR_INVALID_ARG (core >= CORESET_MAX_CORES), ERR_TOO_MANY (the set must
 * widen and the pool is full); adding a member again is fine. */
errval_t coreset_add(struct coreset_pool *p, struct coreset *s, uint32_t core);
void coreset_del(struct coreset_pool *p, struct coreset *s, uint32_t core);
/* Empty the set (a wide one gives its bitmap back). */
void coreset_clear(struct coreset_pool *p, struct coreset *s);
/* The smallest member above `after` (-1: the first), or -1 after the last:
 *   for (int c = coreset_next(p, s, -1); c >= 0; c = coreset_next(p, s, c)) */
int coreset_next(const struct coreset_pool *p, const struct coreset *s, int after);

#endif
