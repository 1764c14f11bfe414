/*
 * Host unit tests for cpudriver/x86_64/cpuid_topo.c and the topology
 * service's model (servers/topo/model.c): CPUID as QEMU's TCG "max" CPU, an
 * Intel CPU with leaf 0x1f and leaf 4, an AMD CPU with only leaf 1 and the
 * 0x8000001x leaves, CPUs with broken or missing leaves; the cpu_topology
 * event line; and the model built from the records (reports, fallbacks,
 * queries). tests/host/test_topo_model.c has the machine frame and the
 * service's questions.
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "model.h"
#include "x86_64/cpuid_topo.h"

/* ---- a fake CPU --------------------------------------------------------------- */

#define ANY 0xffffffffu
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct leaf {
    uint32_t leaf, sub;
    uint32_t r[4];
};

struct fake {
    const struct leaf *leaves;
    size_t n;
    uint32_t apic;          /* patched into leaf 1 EBX[31:24] and 0xb/0x1f EDX */
    int calls;
};

static void fake_cpuid(void *ctx, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    struct fake *f = ctx;
    f->calls++;
    for (size_t i = 0; i < f->n; i++) {
        const struct leaf *l = &f->leaves[i];
        if (l->leaf == leaf && (l->sub == sub || l->sub == ANY)) {
            memcpy(r, l->r, 16);
            if (leaf == 1)
                r[1] = (r[1] & 0x00ffffffu) | f->apic << 24;
            if (leaf == 0xb || leaf == 0x1f)
                r[3] = f->apic;
            return;
        }
    }
    r[0] = r[1] = r[2] = r[3] = 0;
}

static void decode(const struct leaf *l, size_t n, uint32_t apic, struct cpu_place *p, struct cpuid_ident *id)
{
    struct fake f = { l, n, apic, 0 };
    memset(p, 0xa5, sizeof *p);     /* nothing may depend on a zeroed result */
    cpuid_topo_decode(fake_cpuid, &f, p, id);
    CHECK(f.calls < 200);
}

#define STR4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* QEMU 7.2 TCG, -cpu max, -smp 8,sockets=2,cores=2,threads=2 (read from a
 * real boot): vendor AuthenticAMD, leaf 4 all zero, no TOPOEXT. */
static const struct leaf qemu_tcg[] = {
    { 0, ANY, { 0xd, 0x68747541, 0x444d4163, 0x69746e65 } },
    { 1, ANY, { 0x60fb1, 0x40800, 0xf6d8320b, 0x1fcbfbfd } },
    { 0xb, 0, { 1, 2, 0x100, 0 } },
    { 0xb, 1, { 2, 4, 0x201, 0 } },
    { 0xb, 2, { 0, 0, 2, 0 } },
    { 0x80000000, ANY, { 0x8000000a, 0x68747541, 0x444d4163, 0x69746e65 } },
    { 0x80000001, ANY, { 0x60fb1, 0, 0x77, 0xedd3fbfd } },
    { 0x80000002, ANY, { STR4('Q', 'E', 'M', 'U'), STR4(' ', 'T', 'C', 'G'), STR4(' ', 'C', 'P', 'U'),
                         STR4(' ', 'v', 'e', 'r') } },
    { 0x80000003, ANY, { STR4('s', 'i', 'o', 'n'), STR4(' ', '2', '.', '5'), STR4('+', 0, 0, 0), 0 } },
    { 0x80000004, ANY, { 0, 0, 0, 0 } },
    { 0x80000005, ANY, { 0x1ff01ff, 0x1ff01ff, 0x40020140, 0x40020140 } },
    { 0x80000006, ANY, { 0, 0x42004200, 0x02008140, 0x00808140 } },
    { 0x80000008, ANY, { 0x3928, 0, 0x2003, 0 } },
};

static void check_cache(const struct cpu_cache *c, unsigned level, unsigned type, uint64_t size, unsigned line,
                        unsigned ways, unsigned shift)
{
    CHECK_EQ(c->level, level);
    CHECK_EQ(c->type, type);
    CHECK_EQ(c->size, size);
    CHECK_EQ(c->line, line);
    CHECK_EQ(c->ways, ways);
    CHECK_EQ(c->shift, shift);
}

static void test_qemu_tcg(void)
{
    struct cpu_place p;
    struct cpuid_ident id;
    decode(qemu_tcg, N(qemu_tcg), 5, &p, &id);
    CHECK_EQ(p.apic_id, 5);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF_B);
    CHECK_EQ(p.smt_shift, 1);
    CHECK_EQ(p.package_shift, 2);
    CHECK_EQ(p.package, 1);
    CHECK_EQ(p.core, 0);
    CHECK_EQ(p.thread, 1);
    CHECK_STREQ(id.vendor, "AuthenticAMD");
    CHECK_STREQ(id.brand, "QEMU TCG CPU version 2.5+");
    CHECK_EQ(id.family, 15);
    CHECK_EQ(id.model, 107);
    CHECK_EQ(id.stepping, 1);
    /* QEMU's legacy AMD cache values: L1 and L2 per core, L3 per package. */
    CHECK_EQ(p.ncaches, 4);
    check_cache(&p.caches[0], 1, CACHE_DATA, 64 << 10, 64, 2, 1);
    check_cache(&p.caches[1], 1, CACHE_INSTRUCTION, 64 << 10, 64, 2, 1);
    check_cache(&p.caches[2], 2, CACHE_UNIFIED, 512 << 10, 64, 16, 1);
    check_cache(&p.caches[3], 3, CACHE_UNIFIED, 16 << 20, 64, 16, 2);

    decode(qemu_tcg, N(qemu_tcg), 2, &p, 0);     /* id may be NULL */
    CHECK_EQ(p.package, 0);
    CHECK_EQ(p.core, 1);
    CHECK_EQ(p.thread, 0);
}

/* Intel, leaf 0x1f with a die level (SMT 1 bit, core 4 bits, die 6 bits);
 * leaf 4: L1d 48K/12-way shared by 2, L1i 32K/8-way, L2 1.25M/10-way, L3
 * 30M/12-way shared by 64 logical CPUs. */
#define L4(type, level, sharing) ((type) | (level) << 5 | 1u << 8 | ((sharing) - 1u) << 14)
#define L4B(ways, line) (((ways) - 1u) << 22 | ((line) - 1u))
static const struct leaf intel[] = {
    { 0, ANY, { 0x1f, STR4('G', 'e', 'n', 'u'), STR4('n', 't', 'e', 'l'), STR4('i', 'n', 'e', 'I') } },
    { 1, ANY, { 0x806f8, 0x800, 0x7ffafbff, 0xbfebfbff } },
    { 4, 0, { L4(1, 1, 2), L4B(12, 64), 63, 0 } },
    { 4, 1, { L4(2, 1, 2), L4B(8, 64), 63, 0 } },
    { 4, 2, { L4(3, 2, 2), L4B(10, 64), 2047, 0 } },
    { 4, 3, { L4(3, 3, 64), L4B(12, 64), 40959, 0 } },
    { 4, 4, { 0, 0, 0, 0 } },
    { 0xb, 0, { 1, 2, 0x100, 0 } },        /* 0x1f wins: 0xb must not be read */
    { 0xb, 1, { 7, 64, 0x201, 0 } },
    { 0x1f, 0, { 1, 2, 0x100, 0 } },
    { 0x1f, 1, { 4, 16, 0x201, 0 } },
    { 0x1f, 2, { 6, 64, 0x502, 0 } },
    { 0x1f, 3, { 0, 0, 3, 0 } },
    { 0x80000000, ANY, { 0x80000008, 0, 0, 0 } },
};

static void test_intel_leaf_1f(void)
{
    struct cpu_place p;
    struct cpuid_ident id;
    decode(intel, N(intel), 0x57, &p, &id);
    CHECK_STREQ(id.vendor, "GenuineIntel");
    CHECK_STREQ(id.brand, "");
    CHECK_EQ(id.family, 6);
    CHECK_EQ(id.model, 0x8f);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF_1F);
    CHECK_EQ(p.apic_id, 0x57);
    CHECK_EQ(p.smt_shift, 1);
    CHECK_EQ(p.package_shift, 6);
    CHECK_EQ(p.package, 1);
    CHECK_EQ(p.core, 11);     /* die and core bits together: cores of the package */
    CHECK_EQ(p.thread, 1);
    CHECK_EQ(p.ncaches, 4);
    check_cache(&p.caches[0], 1, CACHE_DATA, 48 << 10, 64, 12, 1);
    check_cache(&p.caches[1], 1, CACHE_INSTRUCTION, 32 << 10, 64, 8, 1);
    check_cache(&p.caches[2], 2, CACHE_UNIFIED, 1280 << 10, 64, 10, 1);
    check_cache(&p.caches[3], 3, CACHE_UNIFIED, 30 << 20, 64, 12, 6);
}

/* Leaf 0xb present but unimplemented (EBX = 0 at subleaf 0), or with shifts
 * that shrink: both fall back to leaf 1. */
static void test_broken_leaf_b(void)
{
    struct leaf l[] = {
        { 0, ANY, { 0xb, STR4('G', 'e', 'n', 'u'), STR4('n', 't', 'e', 'l'), STR4('i', 'n', 'e', 'I') } },
        { 1, ANY, { 0x306a9, 0x00080800, 0, 1u << 28 } },   /* HTT, 8 logical per package */
        { 4, 0, { L4(1, 1, 2) | 3u << 26, L4B(8, 64), 63, 0 } },   /* 4 cores per package */
        { 4, 1, { 0, 0, 0, 0 } },
        { 0xb, 0, { 1, 0, 0x100, 0 } },
    };
    struct cpu_place p;
    decode(l, N(l), 7, &p, 0);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF1);
    CHECK_EQ(p.apic_id, 7);
    CHECK_EQ(p.package_shift, 3);
    CHECK_EQ(p.smt_shift, 1);
    CHECK_EQ(p.package, 0);
    CHECK_EQ(p.core, 3);
    CHECK_EQ(p.thread, 1);
    CHECK_EQ(p.ncaches, 1);

    struct leaf shrink[] = {
        l[0], l[1], l[2], l[3],
        { 0xb, 0, { 4, 2, 0x100, 0 } },
        { 0xb, 1, { 2, 8, 0x201, 0 } },
        { 0xb, 2, { 0, 0, 2, 0 } },
    };
    decode(shrink, N(shrink), 9, &p, 0);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF1);
    CHECK_EQ(p.apic_id, 9);
    CHECK_EQ(p.package, 1);
}

/* AMD without leaf 0xb: leaf 1, 0x80000008 and TOPOEXT's 0x8000001d/e. */
static void test_amd_topoext(void)
{
    static const struct leaf l[] = {
        { 0, ANY, { 0xa, 0x68747541, 0x444d4163, 0x69746e65 } },
        { 1, ANY, { 0x800f12, 0x00100800, 0, 1u << 28 } },   /* 16 logical per package */
        { 0x80000000, ANY, { 0x8000001e, 0, 0, 0 } },
        { 0x80000001, ANY, { 0, 0, 1u << 22, 0 } },
        { 0x80000008, ANY, { 0, 0, 4u << 12 | 15, 0 } },      /* 4 bits of core id, 16 threads */
        { 0x8000001d, 0, { L4(1, 1, 2), L4B(8, 64), 63, 0 } },
        { 0x8000001d, 1, { L4(2, 1, 2), L4B(4, 64), 255, 0 } },
        { 0x8000001d, 2, { L4(3, 2, 2), L4B(8, 64), 1023, 0 } },
        { 0x8000001d, 3, { L4(3, 3, 8) | 1u << 9, L4B(16, 64), 8191, 0 } },  /* fully associative */
        { 0x8000001d, 4, { 0, 0, 0, 0 } },
        { 0x8000001e, ANY, { 0, 1u << 8, 0, 0 } },              /* 2 threads per core */
    };
    struct cpu_place p;
    decode(l, N(l), 0x1d, &p, 0);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF1);
    CHECK_EQ(p.package_shift, 4);
    CHECK_EQ(p.smt_shift, 1);
    CHECK_EQ(p.package, 1);
    CHECK_EQ(p.core, 6);
    CHECK_EQ(p.thread, 1);
    CHECK_EQ(p.ncaches, 4);
    check_cache(&p.caches[1], 1, CACHE_INSTRUCTION, 64 << 10, 64, 4, 1);
    check_cache(&p.caches[3], 3, CACHE_UNIFIED, 8 << 20, 64, 0, 3);
}

/* A CPU with no leaf beyond 0 (or a hostile one whose leaf 4 never ends). */
static void test_minimal_and_hostile(void)
{
    static const struct leaf none[] = { { 0, ANY, { 0, 0, 0, 0 } } };
    struct cpu_place p;
    decode(none, N(none), 3, &p, 0);
    CHECK_EQ(p.source, CPU_SOURCE_NONE);
    CHECK_EQ(p.apic_id, 0);
    CHECK_EQ(p.ncaches, 0);
    CHECK_EQ(p.package, 0);

    static const struct leaf endless[] = {
        { 0, ANY, { 4, 0, 0, 0 } },
        { 1, ANY, { 0, 0, 0, 0 } },                  /* no HTT: one CPU per package */
        { 4, ANY, { L4(1, 1, 4096), L4B(1024, 4096), 0xffffffffu, 0 } },
    };
    decode(endless, N(endless), 200, &p, 0);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF1);
    CHECK_EQ(p.apic_id, 200);
    CHECK_EQ(p.package, 200);
    CHECK_EQ(p.package_shift, 0);
    CHECK_EQ(p.ncaches, CPU_MAX_CACHES);          /* bounded walk, bounded table */
    CHECK_EQ(p.caches[0].shift, 0);               /* "4096 share it", but a package is one CPU */
    CHECK_EQ(p.caches[0].size, 1024ull * 4096 * 0x100000000ull);
}

/* ---- Bochs 2.7 ------------------------------------------------------------------------ */

static struct topology topo;
static struct topo_cpu_info infos[TOPO_MAX_CPUS];

/* Bochs 2.7 (Debian 12's), `cpu: model=corei7_skylake_x, count=P:C:T`, core
 * 0's leaves as a boot printed them (the brand leaves left out). Leaf 4 is
 * the real i7-7800X's whatever the count (sharing 2 for L1/L2, 16 for L3, 8
 * cores per package); leaf 1 EBX[23:16] is cores * threads; leaf 0xb gives
 * each level its own bit count, and with several packages sub 0 has no type. */
#define BOCHS_SKX(ebx1, b0, b1)                                                                              \
    { { 0, ANY, { 0x16, 0x756e6547, 0x6c65746e, 0x49656e69 } },                                              \
      { 1, ANY, { 0x50654, ebx1, 0x77faf3bf, 0xbfebfbff } },                                                 \
      { 4, 0, { 0x1c004121, 0x1c0003f, 0x3f, 0 } },                                                          \
      { 4, 1, { 0x1c004122, 0x1c0003f, 0x3f, 0 } },                                                          \
      { 4, 2, { 0x1c004143, 0x3c0003f, 0x3ff, 0 } },                                                         \
      { 4, 3, { 0x1c03c163, 0x280003f, 0x2fff, 4 } },                                                        \
      { 4, 4, { 0, 0, 0, 0 } },                                                                              \
      { 0xb, 0, b0 },                                                                                        \
      { 0xb, 1, b1 },                                                                                        \
      { 0xb, 2, { 0, 0, 2, 0 } },                                                                            \
      { 0x80000000, ANY, { 0x80000008, 0, 0, 0 } },                                                          \
      { 0x80000001, ANY, { 0, 0, 0x121, 0x2c100800 } },                                                      \
      { 0x80000006, ANY, { 0, 0, 0x1006040, 0 } },                                                           \
      { 0x80000008, ANY, { 0x3028, 0, 0, 0 } } }
#define R4(a, b, c, d) { a, b, c, d }
static const struct leaf bochs_1x4x1[] = BOCHS_SKX(0x40800, R4(2, 4, 0x200, 0), R4(0, 0, 1, 0));
static const struct leaf bochs_2x2x1[] = BOCHS_SKX(0x20800, R4(1, 2, 0x200, 0), R4(1, 2, 1, 0));
static const struct leaf bochs_1x2x2[] = BOCHS_SKX(0x40800, R4(1, 2, 0x100, 0), R4(1, 2, 0x201, 0));
static const struct leaf bochs_4x1x1[] = BOCHS_SKX(0x10800, R4(2, 4, 0, 0), R4(0, 0, 1, 0));

/* Bochs 2.7, `cpu: model=ryzen, count=4`: no leaf 0xb; 0x8000001d is the real
 * Ryzen 7 1700's (L1/L2 shared by 2, L3 by 8). */
static const struct leaf bochs_ryzen_4x1x1[] = {
    { 0, ANY, { 0xd, 0x68747541, 0x444d4163, 0x69746e65 } },
    { 1, ANY, { 0x800f11, 0x10800, 0x76d8320b, 0x178bfbff } },
    { 0x80000000, ANY, { 0x8000001f, 0x68747541, 0x444d4163, 0x69746e65 } },
    { 0x80000001, ANY, { 0x800f11, 0x20000000, 0x35c223ff, 0x2fd3fbff } },
    { 0x80000005, ANY, { 0xff40ff40, 0xff40ff40, 0x20080140, 0x40040140 } },
    { 0x80000006, ANY, { 0x26006400, 0x66006400, 0x2006140, 0x808140 } },
    { 0x80000008, ANY, { 0x3028, 0x1, 0, 0 } },
    { 0x8000001d, 0, { 0x4121, 0x1c0003f, 0x3f, 0 } },
    { 0x8000001d, 1, { 0x4122, 0xc0003f, 0xff, 0 } },
    { 0x8000001d, 2, { 0x4143, 0x1c0003f, 0x3ff, 2 } },
    { 0x8000001d, 3, { 0x1c163, 0x3c0003f, 0x1fff, 1 } },
    { 0x8000001d, 4, { 0, 0, 0, 0 } },
    { 0x8000001e, ANY, { 0, 0, 0, 0 } },
};

/* Four CPUs with APIC ids 0..3 (Bochs numbers them in order), each decoding
 * its own CPUID, in one model; then the counts and who shares what. */
static void bochs_model(const struct leaf *l, size_t n, struct topo_model *m)
{
    memset(&topo, 0, sizeof topo);
    topo.ncpus = 4;
    topo.nnodes = 1;
    for (uint32_t i = 0; i < 4; i++)
        topo.cpus[i] = (struct topo_cpu){ .apic_id = i, .node = 0 };
    topo_model_init(m, &topo, infos);
    for (uint32_t c = 0; c < 4; c++) {
        struct cpu_place p;
        decode(l, n, c, &p, 0);
        CHECK_EQ(p.apic_id, c);
        topo_model_set(m, c, &p, 0, 0);
    }
    topo_model_finish(m, 0, 0);
    CHECK_EQ(m->nsets, 1);
}

static void test_bochs(void)
{
    struct topo_model m;
    struct cpu_place p;

    /* count=1:4:1: one package of four single-thread cores. Leaf 4's L1 and
     * L2 "shared by 2" would have paired cores 0-1 and 2-3. */
    bochs_model(bochs_1x4x1, N(bochs_1x4x1), &m);
    CHECK_EQ(m.npackages, 1);
    CHECK_EQ(m.ncores, 4);
    CHECK(!topo_share_cache(&m, 0, 1, 1));
    CHECK(!topo_share_cache(&m, 2, 3, 2));
    CHECK(topo_share_cache(&m, 0, 3, 3));
    decode(bochs_1x4x1, N(bochs_1x4x1), 2, &p, 0);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF_B);
    CHECK_EQ(p.smt_shift, 0);
    CHECK_EQ(p.package_shift, 2);
    CHECK_EQ(p.ncaches, 4);
    check_cache(&p.caches[0], 1, CACHE_DATA, 32 << 10, 64, 8, 0);
    check_cache(&p.caches[1], 1, CACHE_INSTRUCTION, 32 << 10, 64, 8, 0);
    check_cache(&p.caches[2], 2, CACHE_UNIFIED, 1 << 20, 64, 16, 0);
    check_cache(&p.caches[3], 3, CACHE_UNIFIED, 8448 << 10, 64, 11, 2);

    /* count=2:2:1: two packages of two cores, an L3 each. */
    bochs_model(bochs_2x2x1, N(bochs_2x2x1), &m);
    CHECK_EQ(m.npackages, 2);
    CHECK_EQ(m.ncores, 4);
    CHECK(!topo_share_cache(&m, 0, 1, 1));
    CHECK(topo_share_cache(&m, 0, 1, 3));
    CHECK(topo_share_cache(&m, 2, 3, 3));
    CHECK(!topo_share_cache(&m, 1, 2, 3));

    /* count=1:2:2: one package, two cores of two threads. Leaf 0xb alone
     * (threads 1 bit, cores 1 bit, not 2) made it two packages of one core. */
    bochs_model(bochs_1x2x2, N(bochs_1x2x2), &m);
    CHECK_EQ(m.npackages, 1);
    CHECK_EQ(m.ncores, 2);
    CHECK(topo_same_core(&m, 0, 1));
    CHECK(!topo_same_core(&m, 1, 2));
    CHECK(topo_share_cache(&m, 2, 3, 1));
    CHECK(!topo_share_cache(&m, 1, 2, 2));
    CHECK(topo_share_cache(&m, 0, 3, 3));
    decode(bochs_1x2x2, N(bochs_1x2x2), 3, &p, 0);
    CHECK_EQ(p.smt_shift, 1);
    CHECK_EQ(p.package_shift, 2);
    CHECK_EQ(p.core, 1);
    CHECK_EQ(p.thread, 1);

    /* count=4: four packages of one core (leaf 0xb has no level type at
     * sub 0, so leaf 1 places them). The boot report said "4 packages,
     * 4 cores" (right) and "L1d x2 ... L3 x1" (wrong: an L3 across packages). */
    bochs_model(bochs_4x1x1, N(bochs_4x1x1), &m);
    CHECK_EQ(m.npackages, 4);
    CHECK_EQ(m.ncores, 4);
    for (uint32_t a = 0; a < 4; a++)
        for (uint32_t b = 0; b < 4; b++)
            for (uint32_t level = 1; level <= 3; level++)
                CHECK_EQ(topo_share_cache(&m, a, b, level), a == b);
    decode(bochs_4x1x1, N(bochs_4x1x1), 1, &p, 0);
    CHECK_EQ(p.source, CPU_SOURCE_LEAF1);
    CHECK_EQ(p.package, 1);

    /* The same under the Ryzen model (0x8000001d instead of leaf 4). */
    bochs_model(bochs_ryzen_4x1x1, N(bochs_ryzen_4x1x1), &m);
    CHECK_EQ(m.npackages, 4);
    CHECK_EQ(m.ncores, 4);
    CHECK(!topo_share_cache(&m, 0, 1, 1));
    CHECK(!topo_share_cache(&m, 2, 3, 3));
    decode(bochs_ryzen_4x1x1, N(bochs_ryzen_4x1x1), 3, &p, 0);
    CHECK_EQ(p.ncaches, 4);
    check_cache(&p.caches[0], 1, CACHE_DATA, 32 << 10, 64, 8, 0);
    check_cache(&p.caches[3], 3, CACHE_UNIFIED, 8 << 20, 64, 16, 0);
}

/* ---- the event line ------------------------------------------------------------------ */

static void test_event_line(void)
{
    struct cpu_place p;
    decode(qemu_tcg, N(qemu_tcg), 6, &p, 0);
    char line[CPU_PLACE_EVENT_MAX];
    size_t n = cpu_place_format_event(&p, 6, line, sizeof line);
    CHECK(n > 0 && n == strlen(line));
    CHECK_STREQ(line, "@atoll {\"event\":\"cpu_topology\",\"core\":6,\"apic\":6,\"package\":1,\"package_core\":1,"
                      "\"thread\":0,\"smt_shift\":1,\"package_shift\":2,\"source\":\"cpuid.0xb\",\"caches\":"
                      "[[1,1,65536,64,2,1],[1,2,65536,64,2,1],[2,3,524288,64,16,1],[3,3,16777216,64,16,2]]}\n");

    /* Too small a buffer: 0, still NUL-terminated. */
    char small[40];
    CHECK_EQ(cpu_place_format_event(&p, 6, small, sizeof small), 0);
    CHECK(strlen(small) < sizeof small);

    /* No caches at all. */
    struct cpu_place bare = { .apic_id = 1, .smt_shift = 0, .package_shift = 0, .source = CPU_SOURCE_LEAF1 };
    cpu_place_derive(&bare);
    n = cpu_place_format_event(&bare, 1, line, sizeof line);
    CHECK_STREQ(line, "@atoll {\"event\":\"cpu_topology\",\"core\":1,\"apic\":1,\"package\":1,\"package_core\":0,"
                      "\"thread\":0,\"smt_shift\":0,\"package_shift\":0,\"source\":\"cpuid.1\",\"caches\":[]}\n");
}

/* ---- the model ----------------------------------------------------------------------- */

static struct {
    char text[8][200];
    int n;
} warnings;

static void record_warning(void *ctx, const char *msg)
{
    CHECK(ctx == &warnings);
    if (warnings.n < 8)
        snprintf(warnings.text[warnings.n], sizeof warnings.text[0], "%s", msg);
    warnings.n++;
}

static void test_model(void)
{
    /* 8 CPUs as QEMU numbers them: 2 packages x 2 cores x 2 threads. */
    memset(&topo, 0, sizeof topo);
    topo.ncpus = 8;
    for (uint32_t i = 0; i < 8; i++)
        topo.cpus[i] = (struct topo_cpu){ .apic_id = i, .node = i / 4 };
    topo.nnodes = 2;
    struct topo_model m;
    topo_model_init(&m, &topo, infos);
    warnings.n = 0;
    for (uint32_t c = 0; c < 8; c++) {
        if (c == 6)
            continue;       /* core 6 never reports */
        struct cpu_place p;
        decode(qemu_tcg, N(qemu_tcg), c, &p, 0);
        topo_model_set(&m, c, &p, record_warning, &warnings);
    }
    CHECK_EQ(warnings.n, 0);
    CHECK_EQ(m.nsets, 1);

    struct cpu_place p;
    decode(qemu_tcg, N(qemu_tcg), 3, &p, 0);
    topo_model_set(&m, 3, &p, record_warning, &warnings);      /* twice */
    topo_model_set(&m, 8, &p, record_warning, &warnings);      /* no such core */
    topo_model_set(&m, 6, &p, record_warning, &warnings);      /* APIC id 3 but MADT says 6 */
    CHECK_EQ(warnings.n, 3);
    CHECK_STREQ(warnings.text[0], "core 3 reported its CPUID topology twice; the first report stands");
    CHECK_STREQ(warnings.text[1], "CPUID topology report from core 8, which ACPI does not list; ignored");
    CHECK_STREQ(warnings.text[2], "core 6: CPUID says APIC id 3 but MADT says 6; placed by the MADT id with "
                                  "the boot core's CPUID layout");
    warnings.n = 0;
    topo_model_finish(&m, record_warning, &warnings);
    CHECK_EQ(warnings.n, 1);
    CHECK_STREQ(warnings.text[0], "core 6 (APIC id 6) did not report its CPUID topology; placed by its APIC id "
                                  "with the layout of core 0");
    CHECK(!m.cpus[6].reported);
    CHECK(m.cpus[7].reported);
    CHECK_EQ(m.cpus[6].package, 1);
    CHECK_EQ(m.cpus[6].core, 1);
    CHECK_EQ(m.cpus[6].thread, 0);
    CHECK_EQ(m.npackages, 2);
    CHECK_EQ(m.ncores, 4);
    CHECK(topo_same_package(&m, 0, 3));
    CHECK(!topo_same_package(&m, 3, 4));
    CHECK(topo_same_core(&m, 6, 7));
    CHECK(!topo_same_core(&m, 5, 6));
    CHECK(topo_share_cache(&m, 4, 5, 1));
    CHECK(topo_share_cache(&m, 4, 5, 2));
    CHECK(!topo_share_cache(&m, 4, 6, 2));
    CHECK(topo_share_cache(&m, 4, 6, 3));
    CHECK(!topo_share_cache(&m, 3, 4, 3));
    CHECK(!topo_share_cache(&m, 3, 4, 4));
    CHECK(topo_cache_of(&m, 6, 3, CACHE_UNIFIED) != NULL);
    CHECK(topo_cache_of(&m, 6, 1, CACHE_UNIFIED) == NULL);
    CHECK(topo_cache_of(&m, 9, 1, CACHE_DATA) == NULL);

    /* Nobody reported: one package of single-thread cores. */
    topo_model_init(&m, &topo, infos);
    warnings.n = 0;
    topo_model_finish(&m, record_warning, &warnings);
    CHECK_EQ(warnings.n, 8);
    CHECK_STREQ(warnings.text[0], "core 0 (APIC id 0) did not report its CPUID topology; placed by its APIC id "
                                  "with one package of single-thread cores");
    CHECK_EQ(m.npackages, 1);
    CHECK_EQ(m.ncores, 8);
}

int main(void)
{
    test_qemu_tcg();
    test_intel_leaf_1f();
    test_broken_leaf_b();
    test_amd_topoext();
    test_minimal_and_hostile();
    test_bochs();
    test_event_line();
    test_model();
    return check_done();
}
