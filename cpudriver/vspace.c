/* User address spaces; see vspace.h. */
#include "vspace.h"
#include <atoll/abi/domain.h>
#include <atoll/abi/syscall.h>
#include "core.h"
#include "lib.h"
#include "x86_64/cpu.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/paging.h"

#define PTE_U (1ull << 2)
#define SHADOW_OFFSET 4096   /* the shadow page follows the table */

static uint64_t *table(uint64_t phys) { return (uint64_t *)phys_to_virt(phys); }
static struct cte **shadow(uint64_t table_phys) { return (struct cte **)phys_to_virt(table_phys + SHADOW_OFFSET); }

void vspace_init_pml4(uint64_t pml4_phys)
{
    const uint64_t *kernel = table(core.pml4_phys);
    uint64_t *t = table(pml4_phys);
    for (int i = 256; i < 512; i++)
        t[i] = kernel[i];
}

/* The level a capability type maps at: the level of the table whose entry
 * points at it (1 = PT entry ... 4 = PML4 entry), and the bytes one entry of
 * that level covers. */
static int map_level(uint8_t type)
{
    switch (type) {
    case CAP_FRAME:
    case CAP_DEVFRAME: return 1;
    case CAP_VNODE_PT: return 2;
    case CAP_VNODE_PD: return 3;
    case CAP_VNODE_PDPT: return 4;
    default: return 0;
    }
}

static uint64_t index_at(uint64_t vaddr, int level) { return (vaddr >> (12 + 9 * (level - 1))) & 511; }

/* The table of `level` covering vaddr, or 0 with *missing set. */
static uint64_t walk_to(uint64_t pml4_phys, uint64_t vaddr, int level, int *missing)
{
    uint64_t t = pml4_phys;
    for (int l = 4; l > level; l--) {
        uint64_t e = table(t)[index_at(vaddr, l)];
        if (!(e & PTE_P)) {
            *missing = l - 1;
            return 0;
        }
        t = e & PTE_ADDR;
    }
    return t;
}

static void flush_tlb(void) { write_cr3(read_cr3()); }

errval_t vspace_map(uint64_t pml4_phys, uint64_t vaddr, struct cte *c, uint32_t flags, int *missing_level)
{
    struct capability *cap = &c->cap;
    int level = map_level(cap->type);
    if (!level)
        return ERR_CAP_TYPE;
    if (flags & ~(uint32_t)(MAP_WRITE | MAP_EXEC))
        return ERR_INVALID_ARG;
    if (cap->mapped)
        return ERR_ALREADY_MAPPED;
    uint64_t span = 1ull << (12 + 9 * (level - 1));   /* bytes one entry covers */
    uint64_t entries = level == 1 ? cap->bytes / CAP_PAGE_SIZE : 1;
    if (vaddr & (span - 1))
        return ERR_BAD_ALIGNMENT;
    if (vaddr >= USER_MAX || entries == 0 || entries > USER_MAX / span ||
        vaddr + entries * span > USER_MAX || vaddr + entries * span < vaddr)
        return ERR_BAD_ADDRESS;
    if (index_at(vaddr, level) + entries > 512)
        return ERR_INVALID_ARG;   /* one mapping stays inside one table */
    if (level == 1) {
        if (!(cap->rights & CAP_RIGHT_READ) || ((flags & MAP_WRITE) && !(cap->rights & CAP_RIGHT_WRITE)) ||
            ((flags & MAP_EXEC) && !(cap->rights & CAP_RIGHT_EXEC)))
            return ERR_CAP_RIGHTS;
    }
    int missing = 0;
    uint64_t t = walk_to(pml4_phys, vaddr, level, &missing);
    if (!t) {
        if (missing_level)
            *missing_level = missing;
        return ERR_MAP_NO_TABLE;
    }
    uint64_t *pte = &table(t)[index_at(vaddr, level)];
    for (uint64_t i = 0; i < entries; i++)
        if (pte[i] & PTE_P)
            return ERR_MAP_PRESENT;

    uint64_t bits = PTE_P | PTE_U;
    if (level == 1) {
        if (flags & MAP_WRITE)
            bits |= PTE_W;
        if (!(flags & MAP_EXEC) && core.nx)
            bits |= PTE_NX;
        if (cap->type == CAP_DEVFRAME)
            bits |= PTE_PCD | PTE_PWT;
    } else {
        bits |= PTE_W;   /* tables allow everything; the leaves decide */
    }
    struct cte **sh = shadow(t) + index_at(vaddr, level);
    for (uint64_t i = 0; i < entries; i++) {
        pte[i] = (cap->base + i * CAP_PAGE_SIZE) | bits;
        sh[i] = c;
    }
    cap->mapped = (uint64_t)pte - DIRECT_MAP_BASE;
    return ERR_OK;
}

void vspace_unmap(struct cte *c)
{
    struct capability *cap = &c->cap;
    if (!cap->mapped || !map_level(cap->type))
        return;
    uint64_t entries = map_level(cap->type) == 1 ? cap->bytes / CAP_PAGE_SIZE : 1;
    uint64_t *pte = table(cap->mapped);
    struct cte **sh = (struct cte **)phys_to_virt(cap->mapped + SHADOW_OFFSET);
    for (uint64_t i = 0; i < entries; i++)
        if (sh[i] == c) {
            pte[i] = 0;
            sh[i] = 0;
        }
    cap->mapped = 0;
    flush_tlb();
}

errval_t vspace_protect(struct cte *c, uint32_t flags)
{
    struct capability *cap = &c->cap;
    if (cap->type != CAP_FRAME && cap->type != CAP_DEVFRAME)
        return ERR_CAP_TYPE;
    if (flags & ~(uint32_t)(MAP_WRITE | MAP_EXEC))
        return ERR_INVALID_ARG;
    if (!cap->mapped)
        return ERR_NOT_MAPPED;
    if (((flags & MAP_WRITE) && !(cap->rights & CAP_RIGHT_WRITE)) ||
        ((flags & MAP_EXEC) && !(cap->rights & CAP_RIGHT_EXEC)))
        return ERR_CAP_RIGHTS;
    uint64_t entries = cap->bytes / CAP_PAGE_SIZE;
    uint64_t *pte = table(cap->mapped);
    struct cte **sh = (struct cte **)phys_to_virt(cap->mapped + SHADOW_OFFSET);
    for (uint64_t i = 0; i < entries; i++) {
        if (sh[i] != c)
            continue;
        uint64_t e = pte[i] & ~(PTE_W | PTE_NX);
        if (flags & MAP_WRITE)
            e |= PTE_W;
        if (!(flags & MAP_EXEC) && core.nx)
            e |= PTE_NX;
        pte[i] = e;
    }
    flush_tlb();
    return ERR_OK;
}

void vspace_vnode_destroyed(const struct capability *cap)
{
    uint64_t *t = table(cap->base);
    struct cte **sh = shadow(cap->base);
    int n = cap->type == CAP_VNODE_PML4 ? 256 : 512;   /* never the kernel half */
    for (int i = 0; i < n; i++) {
        if (sh[i])
            sh[i]->cap.mapped = 0;
        sh[i] = 0;
        t[i] = 0;
    }
    flush_tlb();
}

void vspace_cap_moved(struct cte *to)
{
    struct capability *cap = &to->cap;
    if (!cap->mapped || !map_level(cap->type))
        return;
    uint64_t entries = map_level(cap->type) == 1 ? cap->bytes / CAP_PAGE_SIZE : 1;
    struct cte **sh = (struct cte **)phys_to_virt(cap->mapped + SHADOW_OFFSET);
    for (uint64_t i = 0; i < entries; i++)
        sh[i] = to;
}

bool vspace_user_range_ok(uint64_t pml4_phys, uint64_t addr, uint64_t len, bool write)
{
    if (len == 0)
        return addr < USER_MAX;
    if (addr >= USER_MAX || len > USER_MAX - addr)
        return false;
    for (uint64_t page = ALIGN_DOWN(addr, 4096); page < addr + len; page += 4096) {
        uint64_t t = pml4_phys;
        for (int l = 4; l >= 1; l--) {
            uint64_t e = table(t)[index_at(page, l)];
            if (!(e & PTE_P) || !(e & PTE_U) || (write && !(e & PTE_W)))
                return false;
            t = e & PTE_ADDR;
        }
    }
    return true;
}

void vspace_span_copy(uint64_t pml4_phys, uint64_t home_phys)
{
    const volatile uint64_t *home = table(home_phys);
    uint64_t *t = table(pml4_phys);
    for (int i = 0; i < 256; i++)
        t[i] = home[i] & ~(uint64_t)PTE_A;   /* the home writes its own: one load per entry */
    flush_tlb();
}

bool vspace_span_fault(uint64_t pml4_phys, uint64_t home_phys, uint64_t addr)
{
    if (addr >= USER_MAX)
        return false;
    uint64_t i = index_at(addr, 4);
    uint64_t want = ((const volatile uint64_t *)table(home_phys))[i] & ~(uint64_t)PTE_A;
    uint64_t *t = table(pml4_phys);
    if (!(want & PTE_P) || (t[i] & ~(uint64_t)PTE_A) == want)
        return false;
    t[i] = want;
    flush_tlb();
    return true;
}

void vspace_invalidate(uint64_t vaddr, uint64_t pages)
{
    if (pages > 64 || vaddr >= USER_MAX || pages > (USER_MAX - vaddr) / 4096) {
        flush_tlb();   /* past a few pages one flush is cheaper */
        return;
    }
    for (uint64_t i = 0; i < pages; i++)
        __asm__ volatile("invlpg (%0)" ::"r"(vaddr + i * 4096) : "memory");
}
