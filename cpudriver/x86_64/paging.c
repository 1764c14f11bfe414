/* Page-table construction; see paging.h. */
#include "x86_64/paging.h"
#include "lib.h"
#include "x86_64/kernel_layout.h"

static uint64_t *table(uint64_t phys) { return (uint64_t *)phys_to_virt(phys); }

static uint64_t page_alloc(struct pt_space *s)
{
    if (s->pool + 4096 > s->pool_end)
        return 0;
    uint64_t p = s->pool;
    s->pool += 4096;
    memset(table(p), 0, 4096);
    return p;
}

errval_t pt_create(struct pt_space *s, uint64_t pool, uint64_t pool_end, bool nx)
{
    s->pool = pool;
    s->pool_end = pool_end;
    s->nx = nx;
    s->pml4 = page_alloc(s);
    return s->pml4 ? ERR_OK : ERR_NO_MEMORY;
}

/* The entry for `va` at `level` (3 = PDPT, 2 = PD, 1 = PT), creating the
 * intermediate tables. Intermediate entries allow everything; leaves decide. */
static errval_t walk(struct pt_space *s, uint64_t va, int level, uint64_t **entry)
{
    uint64_t *t = table(s->pml4);
    for (int l = 4; l > level; l--) {
        uint64_t *e = &t[(va >> (12 + 9 * (l - 1))) & 511];
        if (!(*e & PTE_P)) {
            uint64_t p = page_alloc(s);
            if (!p)
                return ERR_NO_MEMORY;
            *e = p | PTE_P | PTE_W;
        } else if (*e & PTE_PS) {
            return ERR_OVERLAP;
        }
        t = table(*e & PTE_ADDR);
    }
    *entry = &t[(va >> (12 + 9 * (level - 1))) & 511];
    return ERR_OK;
}

errval_t pt_map(struct pt_space *s, uint64_t va, uint64_t pa, uint64_t size, uint64_t flags)
{
    bool large_ok = flags & PT_LARGE_OK;
    flags &= ~PT_LARGE_OK;
    if (!s->nx)
        flags &= ~PTE_NX;
    if ((va | pa | size) & 4095)
        return ERR_BAD_ALIGNMENT;
    while (size) {
        bool large = large_ok && !(va & (PAGE_2M - 1)) && !(pa & (PAGE_2M - 1)) && size >= PAGE_2M;
        uint64_t *e;
        errval_t err = walk(s, va, large ? 2 : 1, &e);
        if (err)
            return err;
        if (*e & PTE_P)
            return ERR_OVERLAP;
        *e = pa | flags | PTE_P | (large ? PTE_PS : 0);
        uint64_t step = large ? PAGE_2M : 4096;
        va += step;
        pa += step;
        size -= step;
    }
    return ERR_OK;
}

errval_t pt_map_direct(struct pt_space *s, uint64_t top, const struct phys_hole *holes, int nholes)
{
    const uint64_t flags = PTE_W | PTE_NX | PT_LARGE_OK;
    uint64_t pa = 0;
    int h = 0;
    /* Map the stretches between holes; pt_map picks 2 MiB pages inside them. */
    while (pa < top) {
        while (h < nholes && holes[h].end <= pa)
            h++;
        uint64_t stop = h < nholes ? MIN(holes[h].base, top) : top;
        if (stop > pa) {
            /* Up to the next 2 MiB boundary in 4 KiB pages, so the rest of
             * the stretch can use 2 MiB pages. */
            uint64_t head = MIN(ALIGN_UP(pa, PAGE_2M), stop) - pa;
            uint64_t body = ALIGN_DOWN(stop - pa - head, PAGE_2M);
            uint64_t tail = stop - pa - head - body;
            errval_t err = ERR_OK;
            if (head)
                err = pt_map(s, DIRECT_MAP_BASE + pa, pa, head, flags & ~PT_LARGE_OK);
            if (!err && body)
                err = pt_map(s, DIRECT_MAP_BASE + pa + head, pa + head, body, flags);
            if (!err && tail)
                err = pt_map(s, DIRECT_MAP_BASE + pa + head + body, pa + head + body, tail,
                             flags & ~PT_LARGE_OK);
            if (err)
                return err;
        }
        if (h >= nholes)
            break;
        pa = MAX(pa, holes[h].end);
    }
    return ERR_OK;
}

/*
 * One PML4; per 512 GiB of direct map a PDPT and per GiB a PD; a page table
 * for each 2 MiB region a hole boundary cuts (two per hole); for the kernel
 * window a PDPT, a PD and a page table per 2 MiB of image (plus one for a
 * straddle); for the APIC window a PD and a page table; two to spare.
 */
uint64_t pt_pages_bound(uint64_t top, int nholes, uint64_t kernel_bytes)
{
    uint64_t gib = (top + (1ull << 30) - 1) >> 30;
    return 1 + (gib + 511) / 512 + gib + 2ull * (uint64_t)nholes +
           2 + (kernel_bytes + PAGE_2M - 1) / PAGE_2M + 1 + 2 + 2;
}

int holes_normalize(struct phys_hole *h, int n)
{
    for (int i = 1; i < n; i++)   /* insertion sort: n is small */
        for (int j = i; j > 0 && h[j].base < h[j - 1].base; j--) {
            struct phys_hole t = h[j];
            h[j] = h[j - 1];
            h[j - 1] = t;
        }
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (h[i].end <= h[i].base)
            continue;
        if (m && h[i].base <= h[m - 1].end)
            h[m - 1].end = MAX(h[m - 1].end, h[i].end);
        else
            h[m++] = h[i];
    }
    return m;
}
