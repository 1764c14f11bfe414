/* Boot-time physical memory allocator; see pmem.h. */
#include "pmem.h"
#include "lib.h"

#define MAX_RANGES 256

struct range {
    uint64_t base, end;   /* [base, end) */
    uint32_t node;
};

static struct range ranges[MAX_RANGES];
static int nranges;
static uint64_t top;

static errval_t insert(int at, uint64_t base, uint64_t end, uint32_t node)
{
    if (nranges == MAX_RANGES)
        return ERR_TOO_MANY;
    for (int i = nranges; i > at; i--)
        ranges[i] = ranges[i - 1];
    ranges[at] = (struct range){ base, end, node };
    nranges++;
    return ERR_OK;
}

static void remove_at(int at)
{
    for (int i = at; i < nranges - 1; i++)
        ranges[i] = ranges[i + 1];
    nranges--;
}

/* Take [base, end) out of the free ranges. */
static errval_t carve(uint64_t base, uint64_t end)
{
    for (int i = 0; i < nranges; i++) {
        struct range *r = &ranges[i];
        if (end <= r->base || base >= r->end)
            continue;
        if (base > r->base && end < r->end) {           /* split in two */
            errval_t err = insert(i + 1, end, r->end, r->node);
            if (err)
                return err;
            ranges[i].end = base;
            return ERR_OK;
        }
        if (base <= r->base && end >= r->end) {         /* whole range */
            remove_at(i--);
        } else if (base <= r->base) {
            r->base = end;
        } else {
            r->end = base;
        }
    }
    return ERR_OK;
}

/* Split ranges at `addr` so no range straddles it. */
static errval_t split_at(uint64_t addr)
{
    for (int i = 0; i < nranges; i++)
        if (addr > ranges[i].base && addr < ranges[i].end) {
            errval_t err = insert(i + 1, addr, ranges[i].end, ranges[i].node);
            if (err)
                return err;
            ranges[i].end = addr;
            return ERR_OK;
        }
    return ERR_OK;
}

errval_t pmem_init(const struct mb2_info *mb, const struct topology *t,
                   const struct pmem_reserved *reserved, int nreserved)
{
    nranges = 0;
    top = 0;
    for (size_t i = 0; i < mb->mmap_count; i++) {
        const struct mb2_mmap_entry *m = &mb->mmap[i];
        if (m->type != MB2_MEM_AVAILABLE || m->len == 0)
            continue;
        /* Whole pages only; the first MiB stays untouched (real-mode code,
         * BIOS data, the AP trampoline). */
        uint64_t base = MAX(ALIGN_UP(m->base, 4096), 0x100000ull);
        uint64_t end = ALIGN_DOWN(m->base + m->len, 4096);
        if (m->base + m->len > top)
            top = m->base + m->len;
        if (end <= base)
            continue;
        errval_t err = insert(nranges, base, end, 0);   /* mmap is sorted */
        if (err)
            return err;
    }
    for (int i = 0; i < nreserved; i++) {
        errval_t err = carve(ALIGN_DOWN(reserved[i].base, 4096), ALIGN_UP(reserved[i].end, 4096));
        if (err)
            return err;
    }
    errval_t err4 = split_at(4 * GiB);   /* pmem_alloc tries above, then below */
    if (err4)
        return err4;
    for (uint32_t i = 0; i < t->nranges; i++) {
        errval_t err = split_at(t->ranges[i].base);
        if (!err)
            err = split_at(t->ranges[i].base + t->ranges[i].len);
        if (err)
            return err;
    }
    for (int i = 0; i < nranges; i++)
        ranges[i].node = topo_node_of_addr(t, ranges[i].base);
    return ERR_OK;
}

/* Which free range a request tries first. Memory above 4 GiB before memory
 * below (devices that can only reach 32-bit addresses may need it later),
 * and within each, the lowest address first: the bootloader keeps its heap,
 * where it ran its own modules, at the top of the RAM below 4 GiB. Under
 * QEMU's emulation the first write to a page that held executed code
 * invalidates every translated block in it, at a cost that grows with the
 * number of virtual CPUs (about 10 ms per such page at 64); the boot's own
 * structures, written at once, must not land there. */
uint64_t pmem_alloc(uint64_t size, uint64_t align, uint32_t node, uint64_t limit)
{
    size = ALIGN_UP(size, 4096);
    /* The ranges are sorted by address and none straddles 4 GiB (pmem_init):
     * the high ones in order, then the low ones in order. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < nranges; i++) {
            struct range *r = &ranges[i];
            if ((r->base >= 4 * GiB) != (pass == 0))
                continue;
            if (node != PMEM_ANY_NODE && r->node != node)
                continue;
            uint64_t a = ALIGN_UP(r->base, align);
            if (a < r->base || a + size < a || a + size > MIN(r->end, limit))
                continue;
            if (carve(a, a + size) != ERR_OK)
                return 0;   /* table full: treat as out of memory */
            return a;
        }
    return 0;
}

uint64_t pmem_free_bytes(uint32_t node)
{
    uint64_t sum = 0;
    for (int i = 0; i < nranges; i++)
        if (node == PMEM_ANY_NODE || ranges[i].node == node)
            sum += ranges[i].end - ranges[i].base;
    return sum;
}

uint64_t pmem_top(void) { return top; }
