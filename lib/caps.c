/*
 * Slots, RAM and mappings for user domains; see <atoll/lib/caps.h>.
 *
 * Slots: one bit per slot of the root CNode in [SLOT_FIRST_FREE,
 * SLOT_LOADER_FIRST), lowest first. RAM: offsets into SLOT_RAM, handed out
 * lowest first from a sorted table of free ranges below a watermark, then
 * from the watermark up; every object made here is remembered by slot (its
 * range), so cap_free() can give the range back. Single-threaded, like the
 * domains.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/caps.h>
#include <atoll/abi/domain.h>
#include <atoll/abi/errors.h>
#include <atoll/lib/caps.h>
#include <atoll/lib/syscall.h>

#define PAGE CAP_PAGE_SIZE
#define SLOT_LIMIT SLOT_LOADER_FIRST   /* exclusive */
#define RAM_FREE_RANGES 64
#define FOREIGN_RANGES 32
#define RETYPE_TRIES 64

_Static_assert(SLOT_FIRST_FREE < SLOT_LOADER_FIRST, "the allocator has slots");
_Static_assert(SLOT_LOADER_FIRST <= (1u << DOMAIN_ROOT_CNODE_BITS), "inside the root CNode");

/* ---- slots ----------------------------------------------------------------- */

static uint64_t slot_bits[(SLOT_LIMIT + 63) / 64];
static unsigned slot_low = SLOT_FIRST_FREE;   /* every slot below this is in use */
static unsigned slots_used;

static bool slot_is_used(unsigned s) { return slot_bits[s / 64] >> (s % 64) & 1; }
static void slot_set(unsigned s) { slot_bits[s / 64] |= 1ull << (s % 64); }
static void slot_clear(unsigned s) { slot_bits[s / 64] &= ~(1ull << (s % 64)); }

/* What each slot's object took from SLOT_RAM (pages; page 0 = nothing). */
static struct {
    uint32_t page1;   /* first page + 1 */
    uint32_t pages;
} owned[SLOT_LIMIT];

/* Lowest first: the lowest run of `count` free slots. */
errval_t slot_alloc_range(unsigned count, capslot_t *first)
{
    const unsigned total = SLOT_LIMIT - SLOT_FIRST_FREE;
    if (count == 0 || count > total)
        return count ? ERR_CAP_SLOT_RANGE : ERR_INVALID_ARG;
    while (slot_low < SLOT_LIMIT && slot_is_used(slot_low))
        slot_low++;
    unsigned run = 0;
    for (unsigned s = slot_low; s < SLOT_LIMIT; s++) {
        run = slot_is_used(s) ? 0 : run + 1;
        if (run == count) {
            unsigned f = s + 1 - count;
            for (unsigned i = f; i <= s; i++) {
                slot_set(i);
                owned[i].page1 = owned[i].pages = 0;
            }
            slots_used += count;
            *first = f;
            return ERR_OK;
        }
    }
    return ERR_CAP_SLOT_RANGE;
}

errval_t slot_alloc(capslot_t *out) { return slot_alloc_range(1, out); }

void slot_free(capslot_t slot)
{
    if (slot < SLOT_FIRST_FREE || slot >= SLOT_LIMIT || !slot_is_used((unsigned)slot))
        return;
    slot_clear((unsigned)slot);
    owned[slot].page1 = owned[slot].pages = 0;
    slots_used--;
    if (slot < slot_low)
        slot_low = (unsigned)slot;
}

void slot_free_range(capslot_t first, unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        slot_free(first + i);
}

errval_t slot_reserve(capslot_t slot)
{
    if (slot < SLOT_FIRST_FREE || slot >= SLOT_LIMIT)
        return ERR_CAP_SLOT_RANGE;
    if (slot_is_used((unsigned)slot))
        return ERR_CAP_OCCUPIED;
    slot_set((unsigned)slot);
    owned[slot].page1 = owned[slot].pages = 0;
    slots_used++;
    return ERR_OK;
}

unsigned slot_free_count(void) { return SLOT_LIMIT - SLOT_FIRST_FREE - slots_used; }

/* ---- RAM ------------------------------------------------------------------ */

/* The truth about SLOT_RAM is owned[] (what each slot's object took) plus
 * `foreign`, ranges the kernel called overlapping (someone else's objects).
 * Everything else below the watermark is free. The sorted table of free
 * ranges is a cache of that: allocation takes the lowest range that fits;
 * when none does, or a freed range finds the table full, the table is
 * rebuilt from the truth, so no RAM is lost for good. */

struct range {
    uint64_t off, len;   /* bytes, page multiples */
};

static bool ram_known;
static uint64_t ram_size;   /* bytes of SLOT_RAM */
static uint64_t ram_mark;   /* everything from here up is free */
static struct range ram_free_list[RAM_FREE_RANGES];   /* below the mark, sorted, never adjacent */
static unsigned ram_nfree;
static bool ram_list_stale;   /* some free range is missing from the table */
static struct range foreign[FOREIGN_RANGES];
static unsigned nforeign;
static struct range scratch[SLOT_LIMIT + FOREIGN_RANGES];   /* for rebuilding */

static errval_t ram_learn(void)
{
    if (ram_known)
        return ERR_OK;
    struct cap_identity id;
    errval_t err = sys_cap_identify(SLOT_RAM, &id);
    if (err)
        return err;
    if (id.type != CAP_RAM)
        return ERR_CAP_TYPE;
    ram_size = id.bytes & ~(uint64_t)(PAGE - 1);
    ram_known = true;
    return ERR_OK;
}

uint64_t ram_free_bytes(void)
{
    uint64_t used = 0;
    for (unsigned s = SLOT_FIRST_FREE; s < SLOT_LIMIT; s++)
        used += (uint64_t)owned[s].pages * PAGE;
    for (unsigned i = 0; i < nforeign; i++)
        used += foreign[i].len;
    return used < ram_size ? ram_size - used : 0;
}

static void remove_free(unsigned i)
{
    for (unsigned j = i + 1; j < ram_nfree; j++)
        ram_free_list[j - 1] = ram_free_list[j];
    ram_nfree--;
}

/* Rebuild the table of free ranges (and the watermark) from owned[] and
 * foreign[]. If there are more gaps than the table holds, the largest are
 * kept and the table stays marked stale. */
static void ram_rebuild(void)
{
    unsigned n = 0;
    for (unsigned s = SLOT_FIRST_FREE; s < SLOT_LIMIT; s++)
        if (owned[s].page1)
            scratch[n++] = (struct range){ (uint64_t)(owned[s].page1 - 1) * PAGE, (uint64_t)owned[s].pages * PAGE };
    for (unsigned i = 0; i < nforeign; i++)
        scratch[n++] = foreign[i];
    /* Shell sort by offset. */
    for (unsigned gap = n / 2; gap; gap /= 2)
        for (unsigned i = gap; i < n; i++)
            for (unsigned j = i; j >= gap && scratch[j - gap].off > scratch[j].off; j -= gap) {
                struct range t = scratch[j];
                scratch[j] = scratch[j - gap];
                scratch[j - gap] = t;
            }
    ram_nfree = 0;
    ram_list_stale = false;
    uint64_t at = 0;
    for (unsigned i = 0; i < n; i++) {
        if (scratch[i].off > at) {
            struct range g = { at, scratch[i].off - at };
            if (ram_nfree < RAM_FREE_RANGES) {
                ram_free_list[ram_nfree++] = g;
            } else {
                /* Full: replace the smallest if this one is bigger. */
                ram_list_stale = true;
                unsigned smallest = 0;
                for (unsigned j = 1; j < ram_nfree; j++)
                    if (ram_free_list[j].len < ram_free_list[smallest].len)
                        smallest = j;
                if (ram_free_list[smallest].len < g.len) {
                    remove_free(smallest);
                    ram_free_list[ram_nfree++] = g;
                }
            }
        }
        if (scratch[i].off + scratch[i].len > at)
            at = scratch[i].off + scratch[i].len;
    }
    ram_mark = at;
}

/* The lowest free range of `bytes` in the table. */
static bool take_from_table(uint64_t bytes, uint64_t *off)
{
    for (unsigned i = 0; i < ram_nfree; i++) {
        struct range *r = &ram_free_list[i];
        if (r->len < bytes)
            continue;
        *off = r->off;
        r->off += bytes;
        r->len -= bytes;
        if (r->len == 0)
            remove_free(i);
        return true;
    }
    return false;
}

/* Lowest first: a free range below the watermark (rebuilding the table if
 * it misses some), else at the watermark. */
static errval_t ram_take(uint64_t bytes, uint64_t *off)
{
    if (take_from_table(bytes, off))
        return ERR_OK;
    if (ram_list_stale) {
        ram_rebuild();
        if (take_from_table(bytes, off))
            return ERR_OK;
    }
    if (bytes > ram_size - ram_mark)
        return ERR_NO_MEMORY;
    *off = ram_mark;
    ram_mark += bytes;
    return ERR_OK;
}

/* [off, off+bytes) is free again (its owner's record is already gone). */
static void ram_give_back(uint64_t off, uint64_t bytes)
{
    if (bytes == 0)
        return;
    if (off + bytes == ram_mark) {
        ram_mark = off;
        /* The range just below may now touch the mark. */
        while (ram_nfree && ram_free_list[ram_nfree - 1].off + ram_free_list[ram_nfree - 1].len == ram_mark) {
            ram_mark = ram_free_list[ram_nfree - 1].off;
            ram_nfree--;
        }
        return;
    }
    unsigned i = 0;
    while (i < ram_nfree && ram_free_list[i].off < off)
        i++;
    bool join_prev = i > 0 && ram_free_list[i - 1].off + ram_free_list[i - 1].len == off;
    bool join_next = i < ram_nfree && off + bytes == ram_free_list[i].off;
    if (join_prev && join_next) {
        ram_free_list[i - 1].len += bytes + ram_free_list[i].len;
        remove_free(i);
    } else if (join_prev) {
        ram_free_list[i - 1].len += bytes;
    } else if (join_next) {
        ram_free_list[i].off = off;
        ram_free_list[i].len += bytes;
    } else if (ram_nfree == RAM_FREE_RANGES) {
        ram_list_stale = true;   /* found again by the next rebuild */
    } else {
        for (unsigned j = ram_nfree; j > i; j--)
            ram_free_list[j] = ram_free_list[j - 1];
        ram_free_list[i] = (struct range){ off, bytes };
        ram_nfree++;
    }
}

/* The kernel says [off, off+bytes) overlaps an object we did not make. */
static void ram_foreign(uint64_t off, uint64_t bytes)
{
    if (nforeign == FOREIGN_RANGES) {
        /* Forget the oldest: at worst the kernel refuses it once more. */
        for (unsigned i = 1; i < nforeign; i++)
            foreign[i - 1] = foreign[i];
        nforeign--;
    }
    foreign[nforeign++] = (struct range){ off, bytes };
}

/* Bytes of SLOT_RAM one object takes (page multiples), 0 if `size` is
 * invalid for `type`; *arg gets the size argument for retype. */
static uint64_t object_bytes(enum cap_type type, uint64_t size, uint64_t *arg)
{
    *arg = size;
    switch (type) {
    case CAP_RAM:
    case CAP_FRAME:
    case CAP_DEVFRAME:
        if (size == 0 || size > UINT64_MAX - PAGE)
            return 0;
        *arg = (size + PAGE - 1) & ~(uint64_t)(PAGE - 1);
        return *arg;
    case CAP_CNODE:
        if (size < CAP_CNODE_MIN_BITS || size > CAP_CNODE_MAX_BITS)
            return 0;
        return ((uint64_t)CAP_CTE_SIZE << size) < PAGE ? PAGE : (uint64_t)CAP_CTE_SIZE << size;
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
        return CAP_VNODE_SIZE;
    case CAP_DISPATCHER:
        return CAP_DISPATCHER_SIZE;
    default:
        return 0;
    }
}

errval_t ram_retype(enum cap_type type, uint64_t size, capslot_t *out)
{
    uint64_t arg;
    uint64_t bytes = object_bytes(type, size, &arg);
    if (!bytes)
        return type < CAP_TYPE_COUNT && type != CAP_NULL ? ERR_RETYPE_SIZE : ERR_CAP_TYPE;
    errval_t err = ram_learn();
    if (err)
        return err;
    if (bytes / PAGE > UINT32_MAX)
        return ERR_NO_MEMORY;
    capslot_t s;
    err = slot_alloc(&s);
    if (err)
        return err;
    for (int tries = 0; tries < RETYPE_TRIES; tries++) {
        uint64_t off;
        err = ram_take(bytes, &off);
        if (err)
            break;
        err = sys_cap_retype(SLOT_RAM, type, arg, off, 1, s);
        if (err == ERR_OK) {
            owned[s].page1 = (uint32_t)(off / PAGE + 1);
            owned[s].pages = (uint32_t)(bytes / PAGE);
            *out = s;
            return ERR_OK;
        }
        if (err != ERR_OVERLAP) {
            ram_give_back(off, bytes);
            break;
        }
        /* Someone else's object lies there: leave that range alone. */
        ram_foreign(off, bytes);
    }
    slot_free(s);
    return err;
}

errval_t ram_alloc(uint64_t bytes, capslot_t *out) { return ram_retype(CAP_RAM, bytes, out); }

errval_t frame_alloc(uint64_t bytes, capslot_t *out) { return ram_retype(CAP_FRAME, bytes, out); }

errval_t vnode_alloc(enum cap_type type, capslot_t *out)
{
    if (type != CAP_VNODE_PML4 && type != CAP_VNODE_PDPT && type != CAP_VNODE_PD && type != CAP_VNODE_PT)
        return ERR_CAP_TYPE;
    return ram_retype(type, 0, out);
}

errval_t cap_free(capslot_t slot)
{
    errval_t err = sys_cap_delete(slot);
    if (err && err != ERR_CAP_EMPTY)
        return err;
    if (slot >= SLOT_FIRST_FREE && slot < SLOT_LIMIT && owned[slot].page1) {
        uint64_t off = (uint64_t)(owned[slot].page1 - 1) * PAGE, bytes = (uint64_t)owned[slot].pages * PAGE;
        owned[slot].page1 = owned[slot].pages = 0;
        ram_give_back(off, bytes);
    }
    slot_free(slot);
    return ERR_OK;
}

/* ---- the address space ------------------------------------------------------ */

static uint64_t map_next = USER_MAP_BASE;   /* vspace_alloc / vspace_map_frame */
#define MAP_LIMIT (USER_STACK_TOP - USER_STACK_SIZE)

/* Page tables of the mapping region, with how many frames each maps: when
 * vspace_unmap_frame empties one, it goes back to SLOT_RAM, so a domain
 * that maps many frames for a while (a server at its busiest) does not
 * keep the tables for good. Tables of the heap and of vspace_alloc stay. */
#define MAP_TABLES 64
static struct {
    uint64_t region;   /* 2 MiB aligned; 0: unused entry */
    capslot_t slot;
    uint32_t frames;
} map_tables[MAP_TABLES];

static bool in_map_region(uint64_t va) { return va >= USER_MAP_BASE && va < MAP_LIMIT; }

static int map_table_of(uint64_t va)
{
    for (int i = 0; i < MAP_TABLES; i++)
        if (map_tables[i].region && map_tables[i].region == (va & ~(LARGE_PAGE_SIZE - 1)))
            return i;
    return -1;
}

/* vspace_map made table `slot` for `va`'s 2 MiB (a PT): remember it. */
static void map_table_made(uint64_t va, capslot_t slot)
{
    if (!in_map_region(va))
        return;
    for (int i = 0; i < MAP_TABLES; i++)
        if (!map_tables[i].region) {
            map_tables[i].region = va & ~(LARGE_PAGE_SIZE - 1);
            map_tables[i].slot = slot;
            map_tables[i].frames = 0;
            return;
        }
}

static void map_count(uint64_t va, int delta)
{
    int i = in_map_region(va) ? map_table_of(va) : -1;
    if (i < 0)
        return;
    map_tables[i].frames += (uint32_t)delta;
    if (map_tables[i].frames == 0 && sys_unmap(map_tables[i].slot) == ERR_OK) {
        cap_free(map_tables[i].slot);
        map_tables[i].region = 0;
    }
}

errval_t vspace_map(uint64_t vaddr, capslot_t frame, uint32_t flags)
{
    /* At most one table per level is missing; one more try for luck. */
    for (int tries = 0; tries < 5; tries++) {
        int level = 0;
        errval_t err = sys_map(SLOT_PML4, vaddr, frame, flags, &level);
        if (err != ERR_MAP_NO_TABLE)
            return err;
        enum cap_type type = level == 3 ? CAP_VNODE_PDPT : level == 2 ? CAP_VNODE_PD
                           : level == 1 ? CAP_VNODE_PT : CAP_NULL;
        if (type == CAP_NULL)
            return ERR_MAP_NO_TABLE;
        capslot_t table;
        err = vnode_alloc(type, &table);
        if (err)
            return err;
        uint64_t span = 1ull << (12 + 9 * level);   /* what one entry above it covers */
        err = sys_map(SLOT_PML4, vaddr & ~(span - 1), table, 0, NULL);
        if (err) {
            cap_free(table);
            return err;
        }
        if (type == CAP_VNODE_PT)
            map_table_made(vaddr, table);
    }
    return ERR_MAP_NO_TABLE;
}

errval_t vspace_back(uint64_t vaddr, uint64_t bytes, uint32_t flags)
{
    if ((vaddr | bytes) & (PAGE - 1))
        return ERR_BAD_ALIGNMENT;
    if (vaddr >= USER_MAX || bytes > USER_MAX - vaddr)
        return ERR_BAD_ADDRESS;
    for (uint64_t at = vaddr, end = vaddr + bytes; at < end;) {
        uint64_t boundary = (at & ~(LARGE_PAGE_SIZE - 1)) + LARGE_PAGE_SIZE;
        uint64_t chunk = (end < boundary ? end : boundary) - at;
        capslot_t f;
        errval_t err = frame_alloc(chunk, &f);
        if (err)
            return err;
        err = vspace_map(at, f, flags);
        if (err) {
            cap_free(f);
            return err;
        }
        map_count(at, 1);   /* for good: its table stays */
        at += chunk;
    }
    return ERR_OK;
}

errval_t vspace_alloc(uint64_t bytes, uint32_t flags, void **out)
{
    if (bytes == 0)
        return ERR_INVALID_ARG;
    if (bytes > MAP_LIMIT - map_next)
        return ERR_NO_MEMORY;
    bytes = (bytes + PAGE - 1) & ~(uint64_t)(PAGE - 1);
    if (bytes > MAP_LIMIT - map_next)
        return ERR_NO_MEMORY;
    uint64_t va = map_next;
    /* Whatever happens, the range is used up (part may be mapped); a page
     * of nothing after it catches overruns. */
    map_next += bytes + PAGE < MAP_LIMIT - map_next ? bytes + PAGE : MAP_LIMIT - map_next;
    errval_t err = vspace_back(va, bytes, flags);
    if (!err)
        *out = (void *)(uintptr_t)va;
    return err;
}

/* Address ranges that vspace_unmap_frame gave back, reused by frames of
 * the same size: a server that maps and unmaps a channel per client keeps
 * its page tables (and its RAM) at a steady size. When the table is full a
 * range is forgotten: address space is plentiful, only tables cost RAM. */
#define MAP_REUSE 256
static struct range map_reuse[MAP_REUSE];
static unsigned map_nreuse;

/* The lowest free range of that size: mappings gather low, so the tables
 * of ranges no longer used empty out and go. */
static bool reuse_range(uint64_t bytes, uint64_t *va)
{
    int best = -1;
    for (unsigned i = 0; i < map_nreuse; i++)
        if (map_reuse[i].len == bytes && (best < 0 || map_reuse[i].off < map_reuse[best].off))
            best = (int)i;
    if (best < 0)
        return false;
    *va = map_reuse[best].off;
    map_reuse[best] = map_reuse[--map_nreuse];
    return true;
}

errval_t vspace_map_frame(capslot_t frame, uint32_t flags, void **out)
{
    struct cap_identity id;
    errval_t err = sys_cap_identify(frame, &id);
    if (err)
        return err;
    if (id.type != CAP_FRAME && id.type != CAP_DEVFRAME)
        return ERR_CAP_TYPE;
    if (id.bytes == 0 || id.bytes > LARGE_PAGE_SIZE || (id.bytes & (PAGE - 1)))
        return ERR_INVALID_ARG;   /* the kernel maps one capability inside one page table */
    uint64_t va;
    if (reuse_range(id.bytes, &va)) {
        err = vspace_map(va, frame, flags);
        if (err) {
            map_reuse[map_nreuse++] = (struct range){ va, id.bytes };
        } else {
            map_count(va, 1);
            *out = (void *)(uintptr_t)va;
        }
        return err;
    }
    va = map_next;
    if ((va & (LARGE_PAGE_SIZE - 1)) + id.bytes > LARGE_PAGE_SIZE)
        va = (va & ~(LARGE_PAGE_SIZE - 1)) + LARGE_PAGE_SIZE;
    if (va >= MAP_LIMIT || id.bytes > MAP_LIMIT - va)
        return ERR_NO_MEMORY;
    err = vspace_map(va, frame, flags);
    if (err)
        return err;
    map_count(va, 1);
    map_next = va + id.bytes + PAGE < MAP_LIMIT ? va + id.bytes + PAGE : MAP_LIMIT;
    *out = (void *)(uintptr_t)va;
    return ERR_OK;
}

errval_t vspace_unmap_frame(capslot_t frame, void *at)
{
    struct cap_identity id;
    errval_t err = sys_cap_identify(frame, &id);
    if (!err)
        err = sys_unmap(frame);
    if (err)
        return err;
    uint64_t va = (uint64_t)(uintptr_t)at;
    if (in_map_region(va) && map_nreuse < MAP_REUSE)
        map_reuse[map_nreuse++] = (struct range){ va, id.bytes };
    map_count(va, -1);
    return ERR_OK;
}

errval_t frame_release(capslot_t frame, void *at)
{
    errval_t err = at ? vspace_unmap_frame(frame, at) : ERR_OK;
    if (err && err != ERR_NOT_MAPPED)
        return err;
    return cap_free(frame);
}
