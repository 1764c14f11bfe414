/* Borrowing in batches; see loans.h. Pure and freestanding. */
#include "loans.h"

struct loan *loans_pick(struct loans *t, uint32_t lender)
{
    for (unsigned i = 0; i < MEM_LOANS; i++)
        if (t->l[i].used && !t->l[i].full && t->l[i].lender == lender)
            return &t->l[i];
    return 0;
}

struct loan *loans_add(struct loans *t, uint32_t lender, uint64_t id, uint64_t size)
{
    for (unsigned i = 0; i < MEM_LOANS; i++)
        if (!t->l[i].used) {
            t->l[i] = (struct loan){ .used = true, .lender = lender, .id = id, .size = size };
            t->batches++;
            return &t->l[i];
        }
    return 0;
}

bool loans_block_freed(struct loan *l)
{
    if (l->live)
        l->live--;
    return l->live == 0;
}

void loans_drop(struct loans *t, struct loan *l)
{
    if (l->used)
        t->returned++;
    *l = (struct loan){ 0 };
}

uint64_t loans_bytes(const struct loans *t, uint32_t lender)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < MEM_LOANS; i++)
        if (t->l[i].used && (lender == UINT32_MAX || t->l[i].lender == lender))
            sum += t->l[i].size;
    return sum;
}

uint32_t loans_count(const struct loans *t)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < MEM_LOANS; i++)
        n += t->l[i].used;
    return n;
}

uint64_t batch_bytes(uint64_t bytes, uint64_t largest)
{
    if (bytes == 0 || bytes > largest)
        return 0;
    uint64_t want = (bytes + MEM_BATCH_ALIGN - 1) & ~(MEM_BATCH_ALIGN - 1);
    if (want < bytes)   /* the rounding wrapped */
        return 0;
    if (want < MEM_BATCH_BYTES)
        want = MEM_BATCH_BYTES;
    while (want > largest && want / 2 >= bytes && want / 2 >= MEM_BATCH_ALIGN)
        want = (want / 2) & ~(MEM_BATCH_ALIGN - 1);
    /* Not even one aligned piece of the request's rounded size: the request itself. */
    return want <= largest ? want : bytes;
}
