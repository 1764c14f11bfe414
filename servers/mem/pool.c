/*
 * A node's pool of physical memory (pool.h). A few hundred ranges at most:
 * linear scans are the simplest correct thing and fast enough beside a
 * capability transfer across cores.
 */
#include <stdbool.h>
#include "pool.h"

void pool_init(struct pool *p, uint64_t base, uint64_t bytes)
{
    p->base = base;
    p->end = base + bytes;
    p->free_bytes = bytes;
    p->n = 0;
    if (bytes)
        p->free[p->n++] = (struct pool_range){ base, bytes };
}

static void remove_at(struct pool *p, unsigned i)
{
    for (unsigned j = i + 1; j < p->n; j++)
        p->free[j - 1] = p->free[j];
    p->n--;
}

static void insert_at(struct pool *p, unsigned i, struct pool_range r)
{
    for (unsigned j = p->n; j > i; j--)
        p->free[j] = p->free[j - 1];
    p->free[i] = r;
    p->n++;
}

errval_t pool_take(struct pool *p, uint64_t bytes, uint64_t align, uint64_t *addr)
{
    if (bytes == 0 || bytes % POOL_PAGE || align < POOL_PAGE || (align & (align - 1)))
        return ERR_INVALID_ARG;
    errval_t why = ERR_NO_MEMORY;
    for (unsigned i = 0; i < p->n; i++) {
        struct pool_range *r = &p->free[i];
        uint64_t end = r->start + r->len;
        uint64_t at = (r->start + align - 1) & ~(align - 1);
        if (at < r->start || at > end || end - at < bytes)
            continue;
        bool before = at > r->start, after = at + bytes < end;
        if (before && after && p->n == POOL_RANGES) {
            why = ERR_TOO_MANY;
            continue;
        }
        if (before && after) {
            insert_at(p, i + 1, (struct pool_range){ at + bytes, end - at - bytes });
            p->free[i].len = at - p->free[i].start;
        } else if (before) {
            r->len = at - r->start;
        } else if (after) {
            r->start = at + bytes;
            r->len = end - r->start;
        } else {
            remove_at(p, i);
        }
        p->free_bytes -= bytes;
        *addr = at;
        return ERR_OK;
    }
    return why;
}

errval_t pool_put(struct pool *p, uint64_t addr, uint64_t bytes)
{
    if (bytes == 0 || addr < p->base || addr > p->end || p->end - addr < bytes || (addr | bytes) % POOL_PAGE)
        return ERR_OVERLAP;
    unsigned i = 0;
    while (i < p->n && p->free[i].start < addr)
        i++;
    /* i: the first range at or after addr; neither it nor the one before may overlap. */
    if (i < p->n && p->free[i].start < addr + bytes)
        return ERR_OVERLAP;
    if (i > 0 && p->free[i - 1].start + p->free[i - 1].len > addr)
        return ERR_OVERLAP;
    bool join_prev = i > 0 && p->free[i - 1].start + p->free[i - 1].len == addr;
    bool join_next = i < p->n && addr + bytes == p->free[i].start;
    if (join_prev && join_next) {
        p->free[i - 1].len += bytes + p->free[i].len;
        remove_at(p, i);
    } else if (join_prev) {
        p->free[i - 1].len += bytes;
    } else if (join_next) {
        p->free[i].start = addr;
        p->free[i].len += bytes;
    } else if (p->n == POOL_RANGES) {
        return ERR_TOO_MANY;
    } else {
        insert_at(p, i, (struct pool_range){ addr, bytes });
    }
    p->free_bytes += bytes;
    return ERR_OK;
}

uint64_t pool_largest(const struct pool *p)
{
    uint64_t best = 0;
    for (unsigned i = 0; i < p->n; i++)
        if (p->free[i].len > best)
            best = p->free[i].len;
    return best;
}
