/*
 * Host unit tests for the user library's capability helpers (lib/caps.c:
 * slots, RAM carving and reuse, vspace_map making page tables) and argument
 * splitting (lib/args.c). The system calls lib/caps.c makes go to a fake
 * kernel here that follows the CPU driver's rules: retype refuses overlaps,
 * misalignment and occupied slots; SYS_MAP walks four levels of tables,
 * reports the first missing level and keeps one mapping inside one table.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/abi/caps.h>
#include <atoll/abi/domain.h>
#include <atoll/lib/caps.h>
#include <atoll/lib/startup.h>
#include <atoll/lib/syscall.h>
#include <atoll/lib/time.h>
#include "check.h"

/* ---- the fake kernel --------------------------------------------------------- */

#define NSLOTS (1u << DOMAIN_ROOT_CNODE_BITS)
#define RAM_BYTES (64ull << 20)
#define RAM_BASE 0x10000000ull

struct fslot {
    uint32_t type;
    uint64_t off, bytes;   /* RAM children: offset into SLOT_RAM */
    bool child;            /* a retyped child of SLOT_RAM */
    bool mapped;
    uint64_t map_va;
    uint32_t map_flags;
};
static struct fslot slots[NSLOTS];

/* Present tables and pages, as sets of (level, index) in small hash-free arrays. */
#define MAXT 4096
static struct { int level; uint64_t key; } tables[MAXT];
static unsigned ntables;
#define MAXP 65536
static uint64_t pages[MAXP];   /* vaddr >> 12 of mapped pages */
static unsigned npages;

static unsigned nretype, nmap, nmap_table, nmap_leaf, ndelete;
static uint64_t map_calls_va[1024], map_calls_bytes[1024];

static void fake_reset(void)
{
    memset(slots, 0, sizeof slots);
    slots[SLOT_RAM].type = CAP_RAM;
    slots[SLOT_RAM].bytes = RAM_BYTES;
    slots[SLOT_PML4].type = CAP_VNODE_PML4;
    ntables = npages = 0;
    nretype = nmap = nmap_table = nmap_leaf = ndelete = 0;
}

static bool table_present(int level, uint64_t vaddr)
{
    uint64_t key = vaddr >> (12 + 9 * level);
    for (unsigned i = 0; i < ntables; i++)
        if (tables[i].level == level && tables[i].key == key)
            return true;
    return false;
}

static bool page_present(uint64_t vpn)
{
    for (unsigned i = 0; i < npages; i++)
        if (pages[i] == vpn)
            return true;
    return false;
}

static uint64_t kernel_object_bytes(uint32_t type, uint64_t size)
{
    switch (type) {
    case CAP_RAM:
    case CAP_FRAME:
        return size && size % CAP_PAGE_SIZE == 0 ? size : 0;
    case CAP_CNODE:
        return size >= 1 && size <= 16 ? (uint64_t)CAP_CTE_SIZE << size : 0;
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
        return size == 0 ? CAP_VNODE_SIZE : 0;
    case CAP_DISPATCHER:
        return size == 0 ? CAP_DISPATCHER_SIZE : 0;
    default:
        return 0;
    }
}

errval_t sys_cap_identify(capslot_t s, struct cap_identity *out)
{
    if (s >= NSLOTS)
        return ERR_CAP_SLOT_RANGE;
    if (slots[s].type == CAP_NULL)
        return ERR_CAP_EMPTY;
    memset(out, 0, sizeof *out);
    out->type = slots[s].type;
    out->rights = CAP_RIGHTS_ALL;
    out->base = RAM_BASE + slots[s].off;
    out->bytes = slots[s].type == CAP_CNODE ? slots[s].bytes / CAP_CTE_SIZE : slots[s].bytes;
    return ERR_OK;
}

errval_t sys_cap_retype(capslot_t src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                        capslot_t first)
{
    nretype++;
    if (src >= NSLOTS || first >= NSLOTS || count > NSLOTS - first)
        return ERR_CAP_SLOT_RANGE;
    if (slots[src].type != CAP_RAM || src != SLOT_RAM)
        return ERR_CAP_TYPE;
    uint64_t bytes = kernel_object_bytes(type, size);
    if (!bytes)
        return ERR_RETYPE_SIZE;
    if (count == 0)
        return ERR_INVALID_ARG;
    uint64_t align = bytes < CAP_PAGE_SIZE ? bytes : CAP_PAGE_SIZE;
    if (offset % align)
        return ERR_BAD_ALIGNMENT;
    if (offset > RAM_BYTES || bytes * count > RAM_BYTES - offset)
        return ERR_RETYPE_OVERFLOW;
    for (unsigned i = 0; i < NSLOTS; i++)
        if (slots[i].child && slots[i].off < offset + bytes * count && offset < slots[i].off + slots[i].bytes)
            return ERR_OVERLAP;
    for (uint64_t i = 0; i < count; i++)
        if (slots[first + i].type != CAP_NULL)
            return ERR_CAP_OCCUPIED;
    for (uint64_t i = 0; i < count; i++)
        slots[first + i] = (struct fslot){ .type = type, .off = offset + i * bytes, .bytes = bytes, .child = true };
    return ERR_OK;
}

errval_t sys_cap_delete(capslot_t s)
{
    ndelete++;
    if (s >= NSLOTS)
        return ERR_CAP_SLOT_RANGE;
    if (slots[s].type == CAP_NULL)
        return ERR_CAP_EMPTY;
    if (slots[s].mapped && slots[s].type == CAP_FRAME) {
        for (uint64_t va = slots[s].map_va; va < slots[s].map_va + slots[s].bytes; va += CAP_PAGE_SIZE)
            for (unsigned i = 0; i < npages; i++)
                if (pages[i] == va >> 12)
                    pages[i] = pages[--npages];
    }
    slots[s] = (struct fslot){ 0 };
    return ERR_OK;
}

static int level_of(uint32_t type)
{
    switch (type) {
    case CAP_FRAME: return 1;
    case CAP_VNODE_PT: return 2;
    case CAP_VNODE_PD: return 3;
    case CAP_VNODE_PDPT: return 4;
    default: return 0;
    }
}

errval_t sys_map(capslot_t pml4, uint64_t vaddr, capslot_t src, uint32_t flags, int *missing_level)
{
    nmap++;
    if (pml4 != SLOT_PML4 || src >= NSLOTS)
        return ERR_CAP_SLOT_RANGE;
    struct fslot *c = &slots[src];
    if (c->type == CAP_NULL)
        return ERR_CAP_EMPTY;
    int level = level_of(c->type);
    if (!level)
        return ERR_CAP_TYPE;
    if (flags & ~(uint32_t)(MAP_WRITE | MAP_EXEC))
        return ERR_INVALID_ARG;
    if (c->mapped)
        return ERR_ALREADY_MAPPED;
    uint64_t span = 1ull << (12 + 9 * (level - 1));
    uint64_t entries = level == 1 ? c->bytes / CAP_PAGE_SIZE : 1;
    if (vaddr & (span - 1))
        return ERR_BAD_ALIGNMENT;
    if (vaddr >= USER_MAX || entries * span > USER_MAX - vaddr)
        return ERR_BAD_ADDRESS;
    if (((vaddr >> (12 + 9 * (level - 1))) & 511) + entries > 512)
        return ERR_INVALID_ARG;
    /* The tables from the PML4 down to the one holding the entry. */
    for (int l = 3; l >= level; l--) {
        if (!table_present(l, vaddr)) {
            if (missing_level)
                *missing_level = l;
            return ERR_MAP_NO_TABLE;
        }
    }
    if (level == 1) {
        for (uint64_t i = 0; i < entries; i++)
            if (page_present((vaddr >> 12) + i))
                return ERR_MAP_PRESENT;
        for (uint64_t i = 0; i < entries; i++)
            pages[npages++] = (vaddr >> 12) + i;
        if (nmap_leaf < 1024) {
            map_calls_va[nmap_leaf] = vaddr;
            map_calls_bytes[nmap_leaf] = c->bytes;
        }
        nmap_leaf++;
    } else {
        if (table_present(level - 1, vaddr))
            return ERR_MAP_PRESENT;
        tables[ntables].level = level - 1;
        tables[ntables].key = vaddr >> (12 + 9 * (level - 1));
        ntables++;
        nmap_table++;
    }
    c->mapped = true;
    c->map_va = vaddr;
    c->map_flags = flags;
    return ERR_OK;
}

errval_t sys_unmap(capslot_t s)
{
    if (s >= NSLOTS)
        return ERR_CAP_SLOT_RANGE;
    if (slots[s].type == CAP_NULL)
        return ERR_CAP_EMPTY;
    if (!slots[s].mapped)
        return ERR_NOT_MAPPED;
    if (slots[s].type == CAP_FRAME) {
        for (uint64_t va = slots[s].map_va; va < slots[s].map_va + slots[s].bytes; va += CAP_PAGE_SIZE)
            for (unsigned i = 0; i < npages; i++)
                if (pages[i] == va >> 12)
                    pages[i] = pages[--npages];
    } else {
        int level = level_of(slots[s].type) - 1;
        for (unsigned i = 0; i < ntables; i++)
            if (tables[i].level == level && tables[i].key == slots[s].map_va >> (12 + 9 * level)) {
                tables[i] = tables[--ntables];
                break;
            }
    }
    slots[s].mapped = false;
    return ERR_OK;
}

/* ---- slots -------------------------------------------------------------------- */

static void test_slots(void)
{
    unsigned total = SLOT_LOADER_FIRST - SLOT_FIRST_FREE;
    CHECK_EQ(slot_free_count(), total);
    capslot_t a, b;
    CHECK_ERR(slot_alloc(&a), ERR_OK);
    CHECK_EQ(a, SLOT_FIRST_FREE);
    CHECK_ERR(slot_alloc(&b), ERR_OK);
    CHECK_EQ(b, SLOT_FIRST_FREE + 1);
    slot_free(a);
    CHECK_ERR(slot_alloc(&a), ERR_OK);
    CHECK_EQ(a, SLOT_FIRST_FREE);   /* lowest first after a free */
    capslot_t r;
    CHECK_ERR(slot_alloc_range(10, &r), ERR_OK);
    CHECK_EQ(r, SLOT_FIRST_FREE + 2);
    slot_free(r + 3);   /* a hole of one: a range of 2 must go elsewhere */
    capslot_t r2;
    CHECK_ERR(slot_alloc_range(2, &r2), ERR_OK);
    CHECK(r2 >= r + 10);
    CHECK_ERR(slot_alloc(&a), ERR_OK);
    CHECK_EQ(a, r + 3);   /* the hole */
    CHECK_ERR(slot_alloc_range(0, &r2), ERR_INVALID_ARG);
    CHECK_ERR(slot_alloc_range(total + 1, &r2), ERR_CAP_SLOT_RANGE);
    CHECK_ERR(slot_reserve(SLOT_RAM), ERR_CAP_SLOT_RANGE);
    CHECK_ERR(slot_reserve(SLOT_LOADER_FIRST), ERR_CAP_SLOT_RANGE);
    CHECK_ERR(slot_reserve(r), ERR_CAP_OCCUPIED);
    CHECK_ERR(slot_reserve(1000), ERR_OK);
    CHECK_ERR(slot_reserve(1000), ERR_CAP_OCCUPIED);
    /* Exhaust, then free everything. */
    unsigned n = 0;
    capslot_t s;
    while (slot_alloc(&s) == ERR_OK) {
        CHECK(s >= SLOT_FIRST_FREE && s < SLOT_LOADER_FIRST);
        n++;
    }
    CHECK_EQ(slot_free_count(), 0);
    CHECK_ERR(slot_alloc(&s), ERR_CAP_SLOT_RANGE);
    slot_free_range(SLOT_FIRST_FREE, total);
    slot_free(SLOT_RAM);            /* ignored: not the allocator's */
    slot_free(SLOT_LOADER_FIRST);   /* ignored */
    CHECK_EQ(slot_free_count(), total);
}

/* ---- RAM -------------------------------------------------------------------------- */

static void test_ram(void)
{
    fake_reset();
    /* Someone retyped the first pages of SLOT_RAM behind the library's back:
     * it must skip them. */
    slots[SLOT_LOADER_FIRST] = (struct fslot){ .type = CAP_FRAME, .off = 0, .bytes = 8192, .child = true };
    capslot_t f1, f2, r, v;
    CHECK_ERR(frame_alloc(100, &f1), ERR_OK);
    CHECK_EQ(slots[f1].type, CAP_FRAME);
    CHECK_EQ(slots[f1].bytes, 4096);
    CHECK(slots[f1].off >= 8192);
    CHECK_ERR(frame_alloc(3 * 4096, &f2), ERR_OK);
    CHECK_EQ(slots[f2].off, slots[f1].off + 4096);
    CHECK_ERR(ram_alloc(1 << 20, &r), ERR_OK);
    CHECK_EQ(slots[r].type, CAP_RAM);
    CHECK_EQ(slots[r].bytes, 1 << 20);
    CHECK_ERR(vnode_alloc(CAP_VNODE_PT, &v), ERR_OK);
    CHECK_EQ(slots[v].bytes, CAP_VNODE_SIZE);
    CHECK_ERR(vnode_alloc(CAP_FRAME, &v), ERR_CAP_TYPE);
    capslot_t c, cn;
    CHECK_ERR(ram_retype(CAP_CNODE, 8, &cn), ERR_OK);
    CHECK_EQ(slots[cn].bytes, 64 << 8);
    CHECK_ERR(ram_retype(CAP_CNODE, 0, &c), ERR_RETYPE_SIZE);
    CHECK_ERR(ram_retype(CAP_CNODE, 17, &c), ERR_RETYPE_SIZE);
    CHECK_ERR(ram_retype(CAP_FRAME, 0, &c), ERR_RETYPE_SIZE);
    CHECK_ERR(ram_retype(CAP_NULL, 0, &c), ERR_CAP_TYPE);
    CHECK_ERR(ram_retype(CAP_DISPATCHER, 0, &c), ERR_OK);
    CHECK_EQ(slots[c].bytes, CAP_DISPATCHER_SIZE);

    /* Freed RAM is used again, lowest first. */
    uint64_t f1_off = slots[f1].off;
    unsigned before = slot_free_count();
    uint64_t free_before = ram_free_bytes();
    CHECK_ERR(cap_free(f1), ERR_OK);
    CHECK_EQ(slots[f1].type, CAP_NULL);
    CHECK_EQ(slot_free_count(), before + 1);
    CHECK_EQ(ram_free_bytes(), free_before + 4096);
    capslot_t f3;
    CHECK_ERR(frame_alloc(4096, &f3), ERR_OK);
    CHECK_EQ(slots[f3].off, f1_off);
    CHECK_ERR(cap_free(f2), ERR_OK);
    CHECK_ERR(cap_free(f3), ERR_OK);   /* joins f2's range */
    capslot_t f4;
    CHECK_ERR(frame_alloc(4 * 4096, &f4), ERR_OK);
    CHECK_EQ(slots[f4].off, f1_off);
    CHECK_ERR(cap_free(f4), ERR_OK);
    CHECK_ERR(cap_free(f4), ERR_OK);   /* empty now: the slot is just freed again */

    /* Everything given back: the free ranges melt into the watermark, so
     * all but the two pages someone else holds is one range again. */
    CHECK_ERR(cap_free(r), ERR_OK);
    CHECK_ERR(cap_free(v), ERR_OK);
    CHECK_ERR(cap_free(c), ERR_OK);
    CHECK_ERR(cap_free(cn), ERR_OK);
    uint64_t left = ram_free_bytes();
    CHECK_EQ(left, RAM_BYTES - 8192);
    /* Out of RAM: an error, no slot lost. */
    before = slot_free_count();
    capslot_t big;
    CHECK_ERR(ram_alloc(RAM_BYTES, &big), ERR_NO_MEMORY);
    CHECK_EQ(slot_free_count(), before);
    CHECK_ERR(ram_alloc(left, &big), ERR_OK);
    CHECK_EQ(ram_free_bytes(), 0);
    CHECK_ERR(frame_alloc(4096, &f1), ERR_NO_MEMORY);
    CHECK_ERR(cap_free(big), ERR_OK);
    CHECK_EQ(ram_free_bytes(), left);

    /* Many frees in random order: every byte comes back. */
    capslot_t many[300];
    for (int i = 0; i < 300; i++)
        CHECK_ERR(frame_alloc((uint64_t)(1 + i % 7) * 4096, &many[i]), ERR_OK);
    for (int i = 0; i < 300; i += 3)
        CHECK_ERR(cap_free(many[i]), ERR_OK);
    for (int i = 299; i >= 0; i--)
        if (i % 3)
            CHECK_ERR(cap_free(many[i]), ERR_OK);
    CHECK_EQ(ram_free_bytes(), left);

    /* More holes than the table of free ranges holds (64): nothing is lost,
     * every hole is found again when needed. */
    static capslot_t pages[1200];
    for (int i = 0; i < 1200; i++)
        CHECK_ERR(frame_alloc(8192, &pages[i]), ERR_OK);
    for (int i = 0; i < 1200; i += 2)
        CHECK_ERR(cap_free(pages[i]), ERR_OK);   /* 600 holes of two pages */
    CHECK_EQ(ram_free_bytes(), left - 600 * 8192ull);
    /* Fill every hole, then the rest: exactly all of it. */
    static capslot_t refill[600];
    for (int i = 0; i < 600; i++)
        CHECK_ERR(frame_alloc(8192, &refill[i]), ERR_OK);
    uint64_t rest = ram_free_bytes();
    CHECK_EQ(rest, left - 1200 * 8192ull);
    capslot_t all;
    CHECK_ERR(ram_alloc(rest, &all), ERR_OK);
    CHECK_EQ(ram_free_bytes(), 0);
    for (int i = 0; i < 600; i++)
        if (slots[refill[i]].off >= slots[all].off)
            CHECK(!"a hole was not reused");
    CHECK_ERR(cap_free(all), ERR_OK);
    for (int i = 0; i < 600; i++)
        CHECK_ERR(cap_free(refill[i]), ERR_OK);
    for (int i = 1; i < 1200; i += 2)
        CHECK_ERR(cap_free(pages[i]), ERR_OK);
    CHECK_EQ(ram_free_bytes(), left);
    CHECK_ERR(ram_alloc(left, &all), ERR_OK);   /* one piece again */
    CHECK_ERR(cap_free(all), ERR_OK);
}

/* ---- mappings --------------------------------------------------------------------- */

static void test_vspace(void)
{
    capslot_t f;
    CHECK_ERR(frame_alloc(3 * 4096, &f), ERR_OK);
    unsigned t0 = nmap_table;
    uint64_t va = 0x40000000000ull;
    CHECK_ERR(vspace_map(va, f, MAP_WRITE), ERR_OK);
    CHECK_EQ(nmap_table - t0, 3);   /* PDPT, PD and PT made */
    CHECK(slots[f].mapped && slots[f].map_va == va && slots[f].map_flags == MAP_WRITE);
    CHECK(page_present(va >> 12) && page_present((va >> 12) + 2));
    capslot_t g;
    CHECK_ERR(frame_alloc(4096, &g), ERR_OK);
    CHECK_ERR(vspace_map(va + 3 * 4096, g, 0), ERR_OK);
    CHECK_EQ(nmap_table - t0, 3);   /* same PT */
    capslot_t h;
    CHECK_ERR(frame_alloc(4096, &h), ERR_OK);
    CHECK_ERR(vspace_map(va, h, 0), ERR_MAP_PRESENT);
    CHECK_ERR(vspace_map(va + (2 << 20), h, MAP_EXEC), ERR_OK);   /* next 2 MiB: one new PT */
    CHECK_EQ(nmap_table - t0, 4);
    capslot_t two;
    CHECK_ERR(frame_alloc(8192, &two), ERR_OK);
    CHECK_ERR(vspace_map(va + (2 << 20) - 4096, two, 0), ERR_INVALID_ARG);   /* crosses a table */
    CHECK_ERR(vspace_map(va + 1, two, 0), ERR_BAD_ALIGNMENT);
    CHECK_ERR(vspace_map(USER_MAX, two, 0), ERR_BAD_ADDRESS);
    CHECK_ERR(cap_free(two), ERR_OK);

    /* vspace_back: a 5 MiB range starting 1 MiB into a 2 MiB page, in
     * frames that never cross a 2 MiB boundary. */
    unsigned m0 = nmap_leaf;
    uint64_t start = 0x50000100000ull, bytes = 5 << 20;
    CHECK_ERR(vspace_back(start, bytes, MAP_WRITE), ERR_OK);
    unsigned frames = nmap_leaf - m0;
    CHECK_EQ(frames, 3);   /* 1 MiB up to the boundary, then 2 MiB and 2 MiB */
    uint64_t covered = 0;
    for (unsigned i = m0; i < m0 + frames; i++) {
        uint64_t a = map_calls_va[i], n = map_calls_bytes[i];
        CHECK(n <= (2 << 20));
        CHECK_EQ(a >> 21, (a + n - 1) >> 21);
        covered += n;
    }
    CHECK_EQ(covered, bytes);
    for (uint64_t a = start; a < start + bytes; a += 4096)
        if (!page_present(a >> 12)) {
            CHECK(!"vspace_back left a hole");
            break;
        }
    CHECK_ERR(vspace_back(start, 4096, 0), ERR_MAP_PRESENT);
    CHECK_ERR(vspace_back(start + 1, 4096, 0), ERR_BAD_ALIGNMENT);

    /* vspace_alloc and vspace_map_frame: in the mapping region, apart. */
    void *p, *q;
    CHECK_ERR(vspace_alloc(10000, MAP_WRITE, &p), ERR_OK);
    CHECK_EQ((uint64_t)(uintptr_t)p, USER_MAP_BASE);
    CHECK_ERR(vspace_alloc(4096, MAP_WRITE, &q), ERR_OK);
    CHECK((uint64_t)(uintptr_t)q >= USER_MAP_BASE + 12288 + 4096);   /* a guard page between */
    CHECK_ERR(vspace_alloc(0, 0, &q), ERR_INVALID_ARG);
    CHECK_ERR(vspace_alloc(UINT64_MAX, 0, &q), ERR_NO_MEMORY);
    capslot_t fr;
    CHECK_ERR(frame_alloc(1 << 20, &fr), ERR_OK);
    CHECK_ERR(vspace_map_frame(fr, MAP_WRITE, &q), ERR_OK);
    uint64_t qa = (uint64_t)(uintptr_t)q;
    CHECK_EQ(qa >> 21, (qa + (1 << 20) - 1) >> 21);
    CHECK(qa >= USER_MAP_BASE);
    CHECK_ERR(vspace_map_frame(fr, MAP_WRITE, &q), ERR_ALREADY_MAPPED);
    capslot_t r;
    CHECK_ERR(ram_alloc(4096, &r), ERR_OK);
    CHECK_ERR(vspace_map_frame(r, 0, &q), ERR_CAP_TYPE);
    CHECK_ERR(vspace_map_frame(SLOT_FIRST_FREE + 3000, 0, &q), ERR_CAP_EMPTY);

    /* Unmapped frames give their address back to the next frame of the
     * same size: a server that maps a channel per client keeps its page
     * tables at a steady count. */
    unsigned tables_before = ntables;
    void *first = 0;
    for (int round = 0; round < 600; round++) {
        capslot_t ch;
        void *at;
        CHECK_ERR(frame_alloc(4096, &ch), ERR_OK);
        CHECK_ERR(vspace_map_frame(ch, MAP_WRITE, &at), ERR_OK);
        if (round == 0)
            first = at;
        else if (at != first) {
            CHECK(!"an unmapped address was not reused");
            break;
        }
        CHECK_ERR(frame_release(ch, at), ERR_OK);
    }
    CHECK(ntables <= tables_before + 1);   /* at most the one the first mapping needed */
    /* Many at once, over several 2 MiB tables, then all let go: the tables
     * the peak needed go back too (the one the reuse lands in stays only
     * while something is mapped there). */
    static capslot_t many[700];
    static void *where[700];
    unsigned peak = 0;
    for (int i = 0; i < 700; i++) {
        CHECK_ERR(frame_alloc(4096, &many[i]), ERR_OK);
        CHECK_ERR(vspace_map_frame(many[i], MAP_WRITE, &where[i]), ERR_OK);
    }
    peak = ntables;
    CHECK(peak >= tables_before + 3);
    for (int i = 0; i < 700; i++)
        CHECK_ERR(frame_release(many[i], where[i]), ERR_OK);
    CHECK(ntables <= tables_before + 1);
    capslot_t ch8;
    void *at8;
    CHECK_ERR(frame_alloc(8192, &ch8), ERR_OK);
    CHECK_ERR(vspace_map_frame(ch8, MAP_WRITE, &at8), ERR_OK);
    CHECK(at8 != first);   /* another size: another range */
    CHECK_ERR(vspace_unmap_frame(ch8, at8), ERR_OK);
    CHECK_ERR(vspace_unmap_frame(ch8, at8), ERR_NOT_MAPPED);
    CHECK_ERR(cap_free(ch8), ERR_OK);

    /* A frame that is freed is unmapped and its RAM comes back. */
    uint64_t free_before = ram_free_bytes();
    CHECK_ERR(cap_free(g), ERR_OK);
    CHECK(!page_present((va >> 12) + 3));
    CHECK_EQ(ram_free_bytes(), free_before + 4096);
}

/* ---- argument splitting --------------------------------------------------------------- */

static int split(const char *args, char **argv, char *buf, size_t bufsize)
{
    argv[0] = "prog";
    return startup_split_args(args, strlen(args) + 1, buf, bufsize, argv, 1, 8);
}

static void test_args(void)
{
    CHECK_EQ(arg_number("42", 7), 42);
    CHECK_EQ(arg_number("0", 7), 7);
    CHECK_EQ(arg_number("", 7), 7);
    CHECK_EQ(arg_number("12x", 7), 7);
    CHECK_EQ(arg_number("-3", 7), 7);
    CHECK_EQ(arg_number("99999999999", 7), 7);
    char *argv[10];
    char buf[256];
    CHECK_EQ(split("", argv, buf, sizeof buf), 1);
    CHECK(argv[1] == NULL);
    CHECK_EQ(split("   \t ", argv, buf, sizeof buf), 1);
    CHECK_EQ(split("a bc  def", argv, buf, sizeof buf), 4);
    CHECK_STREQ(argv[0], "prog");
    CHECK_STREQ(argv[1], "a");
    CHECK_STREQ(argv[2], "bc");
    CHECK_STREQ(argv[3], "def");
    CHECK(argv[4] == NULL);
    /* GRUB's escapes and quotes */
    CHECK_EQ(split("x\\\"y 'a b' \"c\\\"d\" e\\\\f it\\'s", argv, buf, sizeof buf), 6);
    CHECK_STREQ(argv[1], "x\"y");
    CHECK_STREQ(argv[2], "a b");
    CHECK_STREQ(argv[3], "c\"d");
    CHECK_STREQ(argv[4], "e\\f");
    CHECK_STREQ(argv[5], "it's");
    CHECK_EQ(split("'' x", argv, buf, sizeof buf), 3);   /* an empty word */
    CHECK_STREQ(argv[1], "");
    /* At most max_args (8 here, with argv[0]): the rest is dropped. */
    CHECK_EQ(split("1 2 3 4 5 6 7 8 9 10", argv, buf, sizeof buf), 8);
    CHECK_STREQ(argv[7], "7");
    CHECK(argv[8] == NULL);
    /* A buffer too small: words that do not fit are dropped whole. */
    char small[8];
    CHECK_EQ(split("abc defgh ij", argv, small, sizeof small), 3);
    CHECK_STREQ(argv[1], "abc");
    CHECK_STREQ(argv[2], "ij");
    /* Not NUL-terminated within len: stops at len. */
    const char raw[6] = { 'a', 'b', ' ', 'c', 'd', 'e' };
    argv[0] = "prog";
    CHECK_EQ(startup_split_args(raw, 4, buf, sizeof buf, argv, 1, 8), 3);
    CHECK_STREQ(argv[2], "c");
}

/* ns_of_ticks against 128-bit arithmetic, at the rates `timescale=K` gives
 * (K x a 2.6 GHz TSC, up to 1024 x): exact, and never backwards. */
static void test_time(void)
{
    static const uint64_t rates[] = { 1000000000ull, 2595671000ull, 8 * 2595671000ull, 64 * 2595671000ull,
                                      1024 * 2595671000ull };
    for (unsigned r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        uint64_t hz = rates[r], last = 0;
        for (uint64_t i = 0; i < 20000; i++) {
            /* Across 10 seconds of the clock, points spread over every second. */
            uint64_t t = i * (hz / 2000) + (i * 7919) % hz;
            uint64_t want = (uint64_t)((unsigned __int128)t * 1000000000ull / hz);
            uint64_t got = ns_of_ticks(t, hz);
            CHECK_EQ(got, want);
            CHECK(got >= last);
            last = got;
        }
        CHECK_EQ(ns_of_ticks(hz - 1, hz), 999999999ull);
        CHECK_EQ(ns_of_ticks(3 * hz, hz), 3000000000ull);
    }
    /* The TSC of a machine up for a month at the highest rate: no wrap. */
    CHECK_EQ(ns_of_ticks(1024 * 2595671000ull * 86400 * 30, 1024 * 2595671000ull), 86400ull * 30 * 1000000000ull);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fake_reset();
    test_slots();
    test_ram();
    test_vspace();
    test_args();
    test_time();
    return check_done();
}
