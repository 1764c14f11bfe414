/* Sets of cores, inline when small, a pooled bitmap when not; coreset.h. */
#include "coreset.h"

static uint64_t *bitmap(const struct coreset_pool *p, const struct coreset *s) { return p->maps[s->map]; }

bool coreset_has(const struct coreset_pool *p, const struct coreset *s, uint32_t core)
{
    if (core >= CORESET_MAX_CORES)
        return false;
    if (s->wide)
        return bitmap(p, s)[core / 64] >> (core % 64) & 1;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->ids[i] == core)
            return true;
    return false;
}

/* Move an inline set into a bitmap of the pool. */
static errval_t widen(struct coreset_pool *p, struct coreset *s)
{
    for (uint16_t m = 0; m < p->nmaps; m++) {
        if (p->used[m])
            continue;
        p->used[m] = 1;
        p->in_use++;
        uint64_t *b = p->maps[m];
        for (uint32_t w = 0; w < CORESET_WORDS; w++)
            b[w] = 0;
        for (uint32_t i = 0; i < s->n; i++)
            b[s->ids[i] / 64] |= 1ull << (s->ids[i] % 64);
        s->wide = 1;
        s->map = m;
        return ERR_OK;
    }
    return ERR_TOO_MANY;
}

errval_t coreset_add(struct coreset_pool *p, struct coreset *s, uint32_t core)
{
    if (core >= CORESET_MAX_CORES)
        return ERR_INVALID_ARG;
    if (coreset_has(p, s, core))
        return ERR_OK;
    if (!s->wide && s->n == CORESET_INLINE) {
        errval_t err = widen(p, s);
        if (err)
            return err;
    }
    if (s->wide) {
        bitmap(p, s)[core / 64] |= 1ull << (core % 64);
    } else {
        uint32_t i = s->n;
        while (i > 0 && s->ids[i - 1] > core) {
            s->ids[i] = s->ids[i - 1];
            i--;
        }
        s->ids[i] = (uint8_t)core;
    }
    s->n++;
    return ERR_OK;
}

void coreset_del(struct coreset_pool *p, struct coreset *s, uint32_t core)
{
    if (!coreset_has(p, s, core))
        return;
    if (!s->wide) {
        uint32_t i = 0;
        while (s->ids[i] != core)
            i++;
        for (; i + 1 < s->n; i++)
            s->ids[i] = s->ids[i + 1];
        s->n--;
        return;
    }
    uint64_t *b = bitmap(p, s);
    b[core / 64] &= ~(1ull << (core % 64));
    if (--s->n > CORESET_INLINE)
        return;
    /* Small again: back inline, the bitmap to the pool. */
    uint16_t m = s->map;
    uint32_t k = 0;
    uint8_t ids[CORESET_INLINE];
    for (uint32_t c = 0; c < CORESET_MAX_CORES && k < s->n; c++)
        if (b[c / 64] >> (c % 64) & 1)
            ids[k++] = (uint8_t)c;
    p->used[m] = 0;
    p->in_use--;
    s->wide = 0;
    for (uint32_t i = 0; i < k; i++)
        s->ids[i] = ids[i];
}

void coreset_clear(struct coreset_pool *p, struct coreset *s)
{
    if (s->wide) {
        p->used[s->map] = 0;
        p->in_use--;
    }
    *s = (struct coreset){ 0 };
}

int coreset_next(const struct coreset_pool *p, const struct coreset *s, int after)
{
    if (!s->wide) {
        for (uint32_t i = 0; i < s->n; i++)
            if ((int)s->ids[i] > after)
                return s->ids[i];
        return -1;
    }
    const uint64_t *b = bitmap(p, s);
    for (uint32_t c = (uint32_t)(after + 1); c < CORESET_MAX_CORES; c++) {
        uint64_t w = b[c / 64] >> (c % 64);
        if (!w) {
            c = (c / 64 + 1) * 64 - 1;   /* the rest of this word is empty */
            continue;
        }
        return (int)(c + (uint32_t)__builtin_ctzll(w));
    }
    return -1;
}
