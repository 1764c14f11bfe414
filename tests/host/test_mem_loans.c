/*
 * Host unit tests of the memory service's borrowing in batches
 * (servers/mem/loans.c): a batch's size at the lender, and the borrower's
 * table of batches (pick the one to carve from, full ones passed over,
 * given back when their last block is freed).
 */
#include "check.h"
#include "loans.h"

#define MB (1ull << 20)

static void test_batch_bytes(void)
{
    CHECK_EQ(batch_bytes(4096, 100 * MB), MEM_BATCH_BYTES);        /* small requests: a whole batch */
    CHECK_EQ(batch_bytes(2 * MB, 100 * MB), MEM_BATCH_BYTES);
    CHECK_EQ(batch_bytes(40 * MB, 100 * MB), 40 * MB);             /* larger than a batch: itself */
    CHECK_EQ(batch_bytes(39 * MB + 4096, 100 * MB), 40 * MB);      /* rounded up to 2 MiB */
    CHECK_EQ(batch_bytes(4096, 10 * MB), 8 * MB);                  /* halved until it fits */
    CHECK_EQ(batch_bytes(4096, 3 * MB), 2 * MB);
    CHECK_EQ(batch_bytes(4096, 1 * MB), 4096);                     /* under 2 MiB free: the request only */
    CHECK_EQ(batch_bytes(3 * MB, 5 * MB), 4 * MB);
    CHECK_EQ(batch_bytes(5 * MB, 5 * MB), 5 * MB);                 /* the rounded size does not fit: as asked */
    CHECK_EQ(batch_bytes(6 * MB, 5 * MB), 0);                      /* nothing fits */
    CHECK_EQ(batch_bytes(0, 5 * MB), 0);
    CHECK_EQ(batch_bytes(UINT64_MAX - 4095, UINT64_MAX), 0);       /* rounding wraps: refused */
}

static void test_loans(void)
{
    static struct loans t;
    CHECK(loans_pick(&t, 2) == 0);                                 /* nothing yet: ask for a batch */
    struct loan *a = loans_add(&t, 2, 0x11, 16 * MB);
    CHECK(a && loans_pick(&t, 2) == a && loans_pick(&t, 0) == 0);
    a->live = 3;
    CHECK(!loans_block_freed(a));
    a->full = true;                                                /* the lender could not carve from it */
    CHECK(loans_pick(&t, 2) == 0);                                 /* a full one is passed over */
    struct loan *b = loans_add(&t, 2, 0x12, 8 * MB);
    CHECK(b && b != a && loans_pick(&t, 2) == b);
    CHECK_EQ(loans_bytes(&t, 2), 24 * MB);
    CHECK_EQ(loans_bytes(&t, UINT32_MAX), 24 * MB);
    CHECK_EQ(loans_count(&t), 2);
    CHECK(!loans_block_freed(a));
    CHECK(loans_block_freed(a));                                   /* its last block: give it back */
    loans_drop(&t, a);
    CHECK_EQ(loans_count(&t), 1);
    CHECK_EQ(t.batches, 2);
    CHECK_EQ(t.returned, 1);
    CHECK(loans_block_freed(b));                                   /* never carved from: live 0 */
    loans_drop(&t, b);
    loans_drop(&t, b);                                             /* twice: counted once */
    CHECK_EQ(t.returned, 2);
    /* A full table refuses a new batch. */
    for (unsigned i = 0; i < MEM_LOANS; i++)
        CHECK(loans_add(&t, i % 4, i + 1, MB) != 0);
    CHECK(loans_add(&t, 0, 99, MB) == 0);
    CHECK_EQ(loans_count(&t), MEM_LOANS);
}

int main(void)
{
    test_batch_bytes();
    test_loans();
    return check_done();
}
