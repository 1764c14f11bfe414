/*
 * Host unit tests of the memory service's pool (servers/mem/pool.c):
 * lowest aligned fit, splits and joins, bad frees refused with nothing
 * changed, a full table, and a random run that ends with the pool whole.
 */
#include <stdlib.h>
#include "check.h"
#include "pool.h"

#define MB (1ull << 20)
static struct pool p;

static void test_take_and_put(void)
{
    pool_init(&p, 0x1001000, 8 * MB);   /* not 2 MiB aligned */
    uint64_t a, b, c;
    CHECK_ERR(pool_take(&p, 4096, 4096, &a), ERR_OK);
    CHECK_EQ(a, 0x1001000);
    CHECK_ERR(pool_take(&p, 2 * MB, 2 * MB, &b), ERR_OK);
    CHECK_EQ(b, 0x1200000);   /* the first 2 MiB boundary above: a gap stays below */
    CHECK_EQ(p.n, 2);
    CHECK_ERR(pool_take(&p, 8192, 4096, &c), ERR_OK);
    CHECK_EQ(c, 0x1002000);   /* lowest first: from the gap */
    CHECK_EQ(p.free_bytes, 8 * MB - 4096 - 2 * MB - 8192);
    /* Bad input. */
    CHECK_ERR(pool_take(&p, 0, 4096, &c), ERR_INVALID_ARG);
    CHECK_ERR(pool_take(&p, 100, 4096, &c), ERR_INVALID_ARG);
    CHECK_ERR(pool_take(&p, 4096, 3 * 4096, &c), ERR_INVALID_ARG);
    CHECK_ERR(pool_take(&p, 4096, 2048, &c), ERR_INVALID_ARG);
    CHECK_ERR(pool_take(&p, 64 * MB, 4096, &c), ERR_NO_MEMORY);
    CHECK_ERR(pool_take(&p, 4096, 1ull << 63, &c), ERR_NO_MEMORY);
    /* Double free and frees outside: refused, nothing changes. */
    uint64_t before = p.free_bytes;
    CHECK_ERR(pool_put(&p, a, 4096), ERR_OK);
    CHECK_ERR(pool_put(&p, a, 4096), ERR_OVERLAP);
    CHECK_ERR(pool_put(&p, b - 4096, 8192), ERR_OVERLAP);   /* half of it is free */
    CHECK_ERR(pool_put(&p, 0x1000, 4096), ERR_OVERLAP);
    CHECK_ERR(pool_put(&p, p.end, 4096), ERR_OVERLAP);
    CHECK_ERR(pool_put(&p, b, 1ull << 63), ERR_OVERLAP);
    CHECK_EQ(p.free_bytes, before + 4096);
    CHECK_ERR(pool_put(&p, c, 8192), ERR_OK);
    CHECK_ERR(pool_put(&p, b, 2 * MB), ERR_OK);
    CHECK_EQ(p.n, 1);
    CHECK_EQ(p.free_bytes, 8 * MB);
    CHECK_EQ(pool_largest(&p), 8 * MB);
}

static void test_full_table(void)
{
    pool_init(&p, 0, (uint64_t)POOL_RANGES * 2 * 8192);
    uint64_t at[POOL_RANGES * 2];
    unsigned n = 0;
    while (pool_take(&p, 8192, 4096, &at[n]) == ERR_OK)
        n++;
    CHECK_EQ(n, POOL_RANGES * 2);
    /* Every other block back: POOL_RANGES ranges, the table full. */
    for (unsigned i = 0; i < n; i += 2)
        CHECK_ERR(pool_put(&p, at[i], 8192), ERR_OK);
    CHECK_EQ(p.n, POOL_RANGES);
    /* A 4 KiB block from the middle of a range at a 8 KiB... the lowest
     * fit needs no split: ok. A split would need a new entry: refused. */
    uint64_t x;
    CHECK_ERR(pool_take(&p, 4096, 4096, &x), ERR_OK);
    CHECK_ERR(pool_put(&p, x, 4096), ERR_OK);
    CHECK_EQ(p.n, POOL_RANGES);
    for (unsigned i = 1; i < n; i += 2)
        CHECK_ERR(pool_put(&p, at[i], 8192), ERR_OK);
    CHECK_EQ(p.n, 1);
}

static void test_random(void)
{
    srand(11);
    pool_init(&p, 0x40000000, 64 * MB);
    static struct { uint64_t at, len; } live[512];
    unsigned n = 0;
    for (int round = 0; round < 20000; round++) {
        if (n && (rand() % 2 || n == 512)) {
            unsigned i = (unsigned)rand() % n;
            CHECK_ERR(pool_put(&p, live[i].at, live[i].len), ERR_OK);
            live[i] = live[--n];
        } else {
            uint64_t len = (uint64_t)(1 + rand() % 64) * 4096, align = 4096ull << (rand() % 10), at;
            if (pool_take(&p, len, align, &at) == ERR_OK) {
                CHECK_EQ(at % align, 0);
                CHECK(at >= p.base && at + len <= p.end);
                for (unsigned i = 0; i < n; i++)
                    CHECK(at + len <= live[i].at || live[i].at + live[i].len <= at);
                live[n].at = at;
                live[n++].len = len;
            }
        }
    }
    for (; n; n--)
        CHECK_ERR(pool_put(&p, live[n - 1].at, live[n - 1].len), ERR_OK);
    CHECK_EQ(p.free_bytes, 64 * MB);
    CHECK_EQ(p.n, 1);
}

int main(void)
{
    test_take_and_put();
    test_full_table();
    test_random();
    return check_done();
}
