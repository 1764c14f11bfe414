/*
 * The coherence directory (directory.h): guest pages found through an
 * open-addressing hash table, each page's 64 lines stored together; the
 * page each CPU touched last is remembered, since most accesses fall on it.
 */
#include "directory.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_SHIFT 12
#define LINES_PER_PAGE (1u << (PAGE_SHIFT - CM_LINE_SHIFT))

struct page {
    uint64_t pageno;
    uint16_t writer[LINES_PER_PAGE];    /* last writer + 1; 0: never written */
    /* The chain (directory.h): the clock of the line's last write, valid
     * when written in the present epoch (0 before any). */
    uint32_t epoch[LINES_PER_PAGE];
    uint32_t hops[LINES_PER_PAGE], weighted10[LINES_PER_PAGE];
    uint64_t holders[];                 /* LINES_PER_PAGE * words bitmaps */
};

struct clock {
    uint32_t epoch;
    uint64_t hops, weighted10;
};

struct cm_dir {
    const struct cm_machine *m;
    struct cm_counts *c;
    unsigned n;                 /* CPUs */
    unsigned words;             /* 64-bit words per holder set */
    struct page **table;        /* open addressing; NULL = empty */
    uint64_t cap;               /* power of two */
    uint64_t used;
    struct cm_log *log;
    struct page *last[CM_MAX_CPUS];
    uint32_t epoch;             /* starts at 1: a fresh line's 0 is older */
    struct clock clock[CM_MAX_CPUS];
};

static uint64_t slot_of(uint64_t pageno, uint64_t cap)
{
    return (pageno * 0x9e3779b97f4a7c15ull >> 17) & (cap - 1);
}

struct cm_dir *cm_dir_new(const struct cm_machine *m, struct cm_counts *c)
{
    if (!m || !c || m->ncpus == 0 || m->ncpus > CM_MAX_CPUS || c->n != m->ncpus)
        return NULL;
    struct cm_dir *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->m = m;
    d->c = c;
    d->n = m->ncpus;
    d->words = (m->ncpus + 63) / 64;
    d->epoch = 1;
    d->cap = 1u << 16;
    d->table = calloc(d->cap, sizeof *d->table);
    if (!d->table) {
        free(d);
        return NULL;
    }
    return d;
}

void cm_dir_free(struct cm_dir *d)
{
    if (!d)
        return;
    for (uint64_t i = 0; i < d->cap; i++)
        free(d->table[i]);
    free(d->table);
    free(d);
}

uint64_t cm_dir_pages(const struct cm_dir *d) { return d->used; }

void cm_dir_chain_restart(struct cm_dir *d)
{
    if (++d->epoch == 0)
        d->epoch = 1;   /* after 2^32 regions a 0 stamp would pass for fresh */
}

uint32_t cm_dir_chain_epoch(const struct cm_dir *d) { return d->epoch; }

static struct clock clock_of(const struct cm_dir *d, unsigned cpu)
{
    struct clock c = d->clock[cpu];
    return c.epoch == d->epoch ? c : (struct clock){ d->epoch, 0, 0 };
}

void cm_dir_chain_of(const struct cm_dir *d, unsigned cpu, uint64_t *hops, uint64_t *weighted10)
{
    struct clock c = cpu < d->n ? clock_of(d, cpu) : (struct clock){ 0 };
    *hops = c.hops;
    *weighted10 = c.weighted10;
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* A read miss: the line's data reaches `cpu` from `src`'s cache one hop
 * after it was written there, or after cpu asked, whichever is later. */
static void hop(struct cm_dir *d, struct page *p, unsigned idx, unsigned src, unsigned cpu)
{
    struct clock c = clock_of(d, cpu);
    if (p->epoch[idx] == d->epoch) {
        c.hops = max64(c.hops, p->hops[idx]);
        c.weighted10 = max64(c.weighted10, p->weighted10[idx]);
    }
    c.hops += 1;
    c.weighted10 += cm_cpu_dist(d->m, src, cpu);
    d->clock[cpu] = c;
}

/* A write: the line's data is as new as its writer's clock. */
static void stamp(struct cm_dir *d, struct page *p, unsigned idx, unsigned cpu)
{
    struct clock c = clock_of(d, cpu);
    p->epoch[idx] = d->epoch;
    p->hops[idx] = c.hops > UINT32_MAX ? UINT32_MAX : (uint32_t)c.hops;
    p->weighted10[idx] = c.weighted10 > UINT32_MAX ? UINT32_MAX : (uint32_t)c.weighted10;
}

void cm_dir_set_log(struct cm_dir *d, struct cm_log *log) { d->log = log; }

static void note(struct cm_dir *d, uint64_t line, unsigned from, unsigned to, uint8_t kind)
{
    struct cm_log *log = d->log;
    if (!log)
        return;
    if (log->len == log->cap) {
        log->truncated = true;
        return;
    }
    log->ev[log->len++] = (struct cm_event){ line, (uint16_t)from, (uint16_t)to, kind };
}

static bool grow(struct cm_dir *d)
{
    uint64_t cap = d->cap * 2;
    struct page **t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (uint64_t i = 0; i < d->cap; i++) {
        struct page *p = d->table[i];
        if (!p)
            continue;
        uint64_t s = slot_of(p->pageno, cap);
        while (t[s])
            s = (s + 1) & (cap - 1);
        t[s] = p;
    }
    free(d->table);
    d->table = t;
    d->cap = cap;
    return true;
}

static struct page *find_page(struct cm_dir *d, uint64_t pageno)
{
    uint64_t s = slot_of(pageno, d->cap);
    for (;;) {
        struct page *p = d->table[s];
        if (!p)
            break;
        if (p->pageno == pageno)
            return p;
        s = (s + 1) & (d->cap - 1);
    }
    /* Not there: a fresh page, every line held by nobody. */
    if ((d->used + 1) * 2 > d->cap) {
        if (!grow(d))
            return NULL;
        s = slot_of(pageno, d->cap);
        while (d->table[s])
            s = (s + 1) & (d->cap - 1);
    }
    struct page *p = calloc(1, sizeof *p + (size_t)LINES_PER_PAGE * d->words * sizeof(uint64_t));
    if (!p)
        return NULL;
    p->pageno = pageno;
    d->table[s] = p;
    d->used++;
    return p;
}

/* Of the holders in h other than `except`, the nearest to `to` (lowest
 * number among equals); -1 when there is none. */
static int nearest_holder(const struct cm_dir *d, const uint64_t *h, unsigned except, unsigned to)
{
    int best = -1;
    unsigned best_dist = 0;
    for (unsigned w = 0; w < d->words; w++) {
        uint64_t bits = h[w];
        while (bits) {
            unsigned cpu = w * 64 + (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (cpu == except)
                continue;
            unsigned dist = cm_cpu_dist(d->m, cpu, to);
            if (best < 0 || dist < best_dist) {
                best = (int)cpu;
                best_dist = dist;
            }
        }
    }
    return best;
}

static void access_line(struct cm_dir *d, struct page *p, uint64_t line, unsigned cpu, bool write)
{
    unsigned idx = (unsigned)(line & (LINES_PER_PAGE - 1));
    uint64_t *h = p->holders + (size_t)idx * d->words;
    unsigned wi = cpu / 64;
    uint64_t bit = 1ull << (cpu % 64);
    bool mine = h[wi] & bit;
    unsigned n = d->n;

    if (!write) {
        if (mine)
            return;
        if (p->writer[idx]) {
            d->c->xfer[(size_t)(p->writer[idx] - 1) * n + cpu]++;
            note(d, line, p->writer[idx] - 1u, cpu, CM_EV_TRANSFER);
            hop(d, p, idx, p->writer[idx] - 1u, cpu);
        }
        h[wi] |= bit;
        return;
    }

    bool others = (h[wi] & ~bit) != 0;
    for (unsigned w = 0; w < d->words && !others; w++)
        others = w != wi && h[w];
    if (others) {
        if (!mine) {
            /* The last writer holds the line whenever there is one. */
            int src = p->writer[idx] ? p->writer[idx] - 1 : nearest_holder(d, h, cpu, cpu);
            d->c->xfer[(size_t)src * n + cpu]++;
            note(d, line, (unsigned)src, cpu, CM_EV_TRANSFER);
        }
        for (unsigned w = 0; w < d->words; w++) {
            uint64_t bits = h[w];
            while (bits) {
                unsigned o = w * 64 + (unsigned)__builtin_ctzll(bits);
                bits &= bits - 1;
                if (o != cpu) {
                    d->c->inval[(size_t)o * n + cpu]++;
                    note(d, line, o, cpu, CM_EV_INVALIDATION);
                }
            }
            h[w] = 0;
        }
    }
    h[wi] = bit;
    p->writer[idx] = (uint16_t)(cpu + 1);
    stamp(d, p, idx, cpu);
}

bool cm_dir_access(struct cm_dir *d, unsigned cpu, uint64_t phys, unsigned size, bool write)
{
    if (cpu >= d->n || size == 0)
        return true;
    uint64_t first = phys >> CM_LINE_SHIFT, last = (phys + size - 1) >> CM_LINE_SHIFT;
    for (uint64_t line = first; line <= last; line++) {
        uint64_t pageno = line >> (PAGE_SHIFT - CM_LINE_SHIFT);
        struct page *p = d->last[cpu];
        if (!p || p->pageno != pageno) {
            p = find_page(d, pageno);
            if (!p)
                return false;
            d->last[cpu] = p;
        }
        access_line(d, p, line, cpu, write);
    }
    return true;
}
