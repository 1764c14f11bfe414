/* Per-core kernel memory blocks and page tables; see percore.h. */
#include "percore.h"
#include "lib.h"
#include "pmem.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/paging.h"

#define MAX_HOLES (TOPO_MAX_CPUS + MB2_MAX_MMAP + 4)

/* Scratch for building one core's hole list at a time (boot core only). */
BOOTSHARED static struct phys_hole holes[MAX_HOLES];

uint64_t percore_size(void)
{
    return ALIGN_UP((uint64_t)(__percore_end - __percore_start), 4096);
}

/* Bytes of kernel image mapped in the top 2 GiB window. */
static uint64_t kernel_window_bytes(void)
{
    return (uint64_t)(__bootshared_end - __text_start);
}

/* Addresses below `top` that no memory-map entry describes (the PCI hole,
 * for instance) stay out of the direct map: they are not RAM. */
static int ram_gaps(const struct mb2_info *mb, uint64_t top, struct phys_hole *out, int max)
{
    int n = 0;
    uint64_t covered = 0;
    for (size_t i = 0; i < mb->mmap_count && n < max; i++) {
        const struct mb2_mmap_entry *m = &mb->mmap[i];
        uint64_t base = ALIGN_DOWN(m->base, 4096), end = ALIGN_UP(m->base + m->len, 4096);
        if (base >= top)
            break;
        if (base > covered)
            out[n++] = (struct phys_hole){ covered, base };
        covered = MAX(covered, end);
    }
    if (covered < top && n < max)
        out[n++] = (struct phys_hole){ covered, top };
    return n;
}

static int gap_count(const struct mb2_info *mb)
{
    return ram_gaps(mb, pmem_top(), holes, MAX_HOLES);
}

/* Nodes by distance from `n`, nearest first (n itself first). */
static uint32_t nodes_by_distance(const struct topology *t, uint32_t n, uint32_t *order)
{
    uint32_t k = 0;
    for (uint32_t m = 0; m < t->nnodes; m++)
        order[k++] = m;
    for (uint32_t i = 1; i < k; i++)
        for (uint32_t j = i; j > 0; j--) {
            uint32_t a = order[j - 1], b = order[j];
            uint32_t da = a == n ? 0 : t->dist[n][a], db = b == n ? 0 : t->dist[n][b];
            if (db >= da)
                break;
            order[j - 1] = b;
            order[j] = a;
        }
    return k;
}

errval_t percore_plan(const struct topology *t, const struct mb2_info *mb, struct core_block *blocks,
                      void (*warn)(const char *msg))
{
    /* Every core's direct map has holes for: the RAM gaps, the kernel image,
     * and the other cores' blocks, which merge into at most two holes per
     * node region. */
    int nholes = gap_count(mb) + 1 + 2 * (int)t->nnodes + 2;
    uint64_t pool = pt_pages_bound(pmem_top(), nholes, kernel_window_bytes()) * 4096;
    uint64_t block = percore_size() + pool + PERCORE_ARENA_SIZE;

    for (uint32_t n = 0; n < t->nnodes; n++) {
        uint32_t count = topo_cpus_on_node(t, n);
        if (!count)
            continue;
        uint64_t need = block * count, region = 0;
        uint32_t order[TOPO_MAX_NODES], from = n;
        uint32_t k = nodes_by_distance(t, n, order);
        for (uint32_t i = 0; i < k && !region; i++) {
            from = order[i];
            region = pmem_alloc(need, 4096, from, ~0ull);
        }
        if (!region)
            return ERR_NO_MEMORY;
        if (from != n) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "node %u has no room for its %u cores' kernel memory (%llu KiB); using node %u", n,
                     count, (unsigned long long)(need >> 10), from);
            warn(msg);
        }
        for (uint32_t c = 0; c < t->ncpus; c++) {
            if (t->cpus[c].node != n)
                continue;
            struct core_block *b = &blocks[c];
            b->base = region;
            b->size = block;
            b->percore_phys = region;
            b->pool = region + percore_size();
            b->pool_end = b->pool + pool;
            b->arena = b->pool_end;
            b->arena_end = region + block;
            b->node = from;
            b->pml4 = 0;
            region += block;
        }
    }
    return ERR_OK;
}

/* This core's view of physical memory: everything but the holes. */
static int core_holes(const struct topology *t, const struct mb2_info *mb, const struct core_block *blocks,
                      uint32_t c)
{
    int n = ram_gaps(mb, pmem_top(), holes, MAX_HOLES);
    holes[n++] = (struct phys_hole){ ALIGN_DOWN((uint64_t)__kernel_phys_start, 4096),
                                     ALIGN_UP((uint64_t)__kernel_phys_end, 4096) };
    for (uint32_t d = 0; d < t->ncpus && n < MAX_HOLES; d++)
        if (d != c)
            holes[n++] = (struct phys_hole){ blocks[d].base, blocks[d].base + blocks[d].size };
    return holes_normalize(holes, n);
}

errval_t percore_build_tables(const struct topology *t, const struct mb2_info *mb, struct core_block *blocks,
                              uint32_t c, uint64_t lapic_phys)
{
    struct core_block *b = &blocks[c];
    struct pt_space s;
    errval_t err = pt_create(&s, b->pool, b->pool_end, true);
    if (err)
        return err;
    /* W^X: code is never writable, data never executable. */
    uint64_t text = (uint64_t)__text_start, rodata = (uint64_t)__rodata_start;
    uint64_t percore = (uint64_t)__percore_start, shared = (uint64_t)__bootshared_start;
    err = pt_map(&s, text, kvirt_to_phys(__text_start), rodata - text, 0);
    if (!err)
        err = pt_map(&s, rodata, kvirt_to_phys(__rodata_start), percore - rodata, PTE_NX);
    if (!err)
        err = pt_map(&s, percore, b->percore_phys, percore_size(), PTE_W | PTE_NX);
    if (!err)
        err = pt_map(&s, shared, kvirt_to_phys(__bootshared_start),
                     (uint64_t)__bootshared_end - shared, PTE_NX);
    if (!err)
        err = pt_map(&s, LAPIC_VA, lapic_phys, 4096, PTE_W | PTE_NX | PTE_PCD | PTE_PWT);
    if (!err)
        err = pt_map_direct(&s, pmem_top(), holes, core_holes(t, mb, blocks, c));
    if (err)
        return err;
    b->pml4 = s.pml4;
    return ERR_OK;
}

void percore_init_copy(const struct core_block *b)
{
    char *copy = phys_to_virt(b->percore_phys);
    uint64_t data = (uint64_t)(__data_end - __data_start);
    uint64_t at = (uint64_t)(__data_start - __percore_start);
    memset(copy, 0, percore_size());
    memcpy(copy + at, __data_template, data);
}
