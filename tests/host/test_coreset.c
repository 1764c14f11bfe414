/* The owner's record of holder cores (monitor/coreset.c): inline while
 * small, a pooled bitmap past CORESET_INLINE, back inline when it shrinks. */
#include "check.h"
#include "coreset.h"

#define NMAPS 2
static uint64_t maps[NMAPS][CORESET_WORDS];
static uint8_t used[NMAPS];
static struct coreset_pool pool = { maps, used, NMAPS, 0 };

/* The members, by coreset_next, must be exactly `want` (ascending). */
static void check_members(const struct coreset *s, const int *want, int n)
{
    int k = 0;
    for (int c = coreset_next(&pool, s, -1); c >= 0; c = coreset_next(&pool, s, c)) {
        CHECK(k < n && c == want[k]);
        k++;
    }
    CHECK(k == n);
    CHECK((int)coreset_count(s) == n);
}

int main(void)
{
    struct coreset a = { 0 }, b = { 0 }, c = { 0 };
    check_members(&a, 0, 0);
    CHECK(!coreset_has(&pool, &a, 0));
    CHECK_ERR(coreset_add(&pool, &a, 256), ERR_INVALID_ARG);
    CHECK(!coreset_has(&pool, &a, 300));

    /* Inline, kept sorted, duplicates ignored. */
    CHECK_ERR(coreset_add(&pool, &a, 9), ERR_OK);
    CHECK_ERR(coreset_add(&pool, &a, 3), ERR_OK);
    CHECK_ERR(coreset_add(&pool, &a, 3), ERR_OK);
    CHECK_ERR(coreset_add(&pool, &a, 254), ERR_OK);
    int w1[] = { 3, 9, 254 };
    check_members(&a, w1, 3);
    CHECK(!a.wide && pool.in_use == 0);

    /* Past CORESET_INLINE: a bitmap from the pool. */
    for (uint32_t core = 100; core < 104; core++)
        CHECK_ERR(coreset_add(&pool, &a, core), ERR_OK);
    CHECK(a.wide && pool.in_use == 1);
    int w2[] = { 3, 9, 100, 101, 102, 103, 254 };
    check_members(&a, w2, 7);
    CHECK(coreset_has(&pool, &a, 254) && coreset_has(&pool, &a, 3) && !coreset_has(&pool, &a, 4));

    /* Every core of a 255-core machine. */
    for (uint32_t core = 0; core < 255; core++)
        CHECK_ERR(coreset_add(&pool, &b, core), ERR_OK);
    CHECK(coreset_count(&b) == 255 && pool.in_use == 2);
    CHECK(coreset_next(&pool, &b, 253) == 254 && coreset_next(&pool, &b, 254) == -1);

    /* A third wide set: the pool is full, the set unchanged. */
    for (uint32_t core = 0; core < CORESET_INLINE; core++)
        CHECK_ERR(coreset_add(&pool, &c, core), ERR_OK);
    CHECK_ERR(coreset_add(&pool, &c, 200), ERR_TOO_MANY);
    CHECK(coreset_count(&c) == CORESET_INLINE && !coreset_has(&pool, &c, 200));

    /* Shrinking gives the bitmap back, members kept in order. */
    coreset_del(&pool, &a, 101);
    CHECK(!a.wide && pool.in_use == 1);
    int w3[] = { 3, 9, 100, 102, 103, 254 };
    check_members(&a, w3, 6);
    coreset_del(&pool, &a, 77);   /* not a member: nothing */
    check_members(&a, w3, 6);
    CHECK_ERR(coreset_add(&pool, &c, 200), ERR_OK);   /* the freed bitmap serves another set */
    CHECK(c.wide && pool.in_use == 2);

    coreset_clear(&pool, &b);
    coreset_clear(&pool, &c);
    coreset_clear(&pool, &a);
    CHECK(pool.in_use == 0 && coreset_count(&a) == 0 && coreset_count(&b) == 0);
    for (uint32_t core = 0; core < 255; core++)
        coreset_del(&pool, &b, core);
    CHECK(coreset_count(&b) == 0);
    return check_done();
}
