/*
 * The seeded pseudo-random numbers of the host fuzzers: xorshift64*, so a
 * run is the same on every machine for a given seed. (Older tests keep
 * their own small generators.)
 */
#ifndef ATOLL_TEST_RNG_H
#define ATOLL_TEST_RNG_H

#include <stdint.h>

static uint64_t rng = 1;   /* the seed; never 0 */

static inline uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

/* 0..n-1 (0 when n is 0). */
static inline uint64_t below(uint64_t n) { return n ? next() % n : 0; }

#endif
