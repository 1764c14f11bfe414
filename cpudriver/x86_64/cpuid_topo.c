/*
 * CPUID topology and cache decoding; see cpuid_topo.h. References: Intel SDM
 * vol. 2A (CPUID leaves 1, 4, 0xb, 0x1f), AMD APM vol. 3 appendix E (leaves
 * 0x80000005/6/8, 0x8000001d/e).
 *
 * Nothing the CPU says is trusted blindly: level walks are bounded, shifts
 * must grow and stay below 32, and a layout that makes no sense falls back
 * to the next source.
 */
#include "cpuid_topo.h"

#define LEAF_EXT 0x80000000u

static void q(cpuid_fn fn, void *ctx, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    r[0] = r[1] = r[2] = r[3] = 0;
    fn(ctx, leaf, sub, r);
}

/* Smallest s with (1 << s) >= n (0 for n <= 1). */
static uint8_t log2_ceil(uint64_t n)
{
    uint8_t s = 0;
    while (s < 63 && (1ull << s) < n)
        s++;
    return s;
}

static void copy_regs(char *dst, const uint32_t *regs, int n)
{
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 4; b++)
            dst[4 * i + b] = (char)(regs[i] >> (8 * b));
}

static bool vendor_is(const struct cpuid_ident *id, const char *v)
{
    for (int i = 0; i < 12; i++)
        if (id->vendor[i] != v[i])
            return false;
    return true;
}

/* x2APIC topology leaf (0xb or 0x1f). False when absent or inconsistent. */
static bool layout_from_leaf(cpuid_fn fn, void *ctx, uint32_t leaf, struct cpu_place *p)
{
    uint32_t r[4];
    int smt = -1, last = -1;
    uint32_t apic = 0;
    for (uint32_t sub = 0; sub < 8; sub++) {
        q(fn, ctx, leaf, sub, r);
        uint32_t type = (r[2] >> 8) & 0xff;
        uint32_t shift = r[0] & 0x1f;
        if (sub == 0) {
            if ((r[1] & 0xffff) == 0 || type == 0)
                return false;        /* leaf not implemented */
            apic = r[3];
        }
        if (type == 0)
            break;
        if ((int)shift < last)
            return false;            /* shifts must grow level by level */
        if (type == 1 && smt < 0)
            smt = (int)shift;
        last = (int)shift;
    }
    if (last < 0)
        return false;
    p->apic_id = apic;
    p->smt_shift = (uint8_t)(smt < 0 ? 0 : smt);
    p->package_shift = (uint8_t)last;
    p->source = (uint8_t)leaf;
    return true;
}

/* Leaf 1 and the vendors' core counts. */
static void layout_from_leaf1(cpuid_fn fn, void *ctx, const struct cpuid_ident *id, uint32_t max_basic,
                              uint32_t max_ext, struct cpu_place *p)
{
    uint32_t r[4];
    q(fn, ctx, 1, 0, r);
    bool htt = r[3] & (1u << 28);
    uint32_t logical = htt ? (r[1] >> 16) & 0xff : 1;
    if (logical == 0)
        logical = 1;
    p->apic_id = r[1] >> 24;
    p->source = CPU_SOURCE_LEAF1;
    uint8_t pkg = log2_ceil(logical), smt = 0;
    if (vendor_is(id, "AuthenticAMD") || vendor_is(id, "HygonGenuine")) {
        if (max_ext >= 0x80000008) {
            q(fn, ctx, 0x80000008, 0, r);
            uint32_t size = (r[2] >> 12) & 0xf, nc = (r[2] & 0xff) + 1;
            uint8_t core_bits = size ? (uint8_t)size : log2_ceil(nc);
            if (htt && core_bits)
                pkg = core_bits;
        }
        q(fn, ctx, 0x80000001, 0, r);
        if (max_ext >= 0x8000001e && (r[2] & (1u << 22))) {      /* TOPOEXT */
            q(fn, ctx, 0x8000001e, 0, r);
            smt = log2_ceil(((r[1] >> 8) & 0xff) + 1);
        }
    } else if (max_basic >= 4) {
        q(fn, ctx, 4, 0, r);
        uint32_t cores = ((r[0] >> 26) & 0x3f) + 1;
        if ((r[0] & 0x1f) && logical > cores)
            smt = log2_ceil((logical + cores - 1) / cores);
    }
    p->package_shift = pkg > 31 ? 31 : pkg;
    p->smt_shift = smt > p->package_shift ? p->package_shift : smt;
}

static void add_cache(struct cpu_place *p, uint32_t level, uint32_t type, uint64_t size, uint32_t line,
                      uint32_t ways, uint8_t shift)
{
    if (p->ncaches == CPU_MAX_CACHES || level == 0 || level > 7 || type == 0 || type > 3 || size == 0)
        return;
    /* Keep them sorted: by level, then data, instruction, unified. */
    uint32_t i = p->ncaches;
    while (i > 0 && (p->caches[i - 1].level > level ||
                     (p->caches[i - 1].level == level && p->caches[i - 1].type > type))) {
        p->caches[i] = p->caches[i - 1];
        i--;
    }
    p->caches[i] = (struct cpu_cache){
        .size = size, .line = line, .ways = ways, .level = (uint8_t)level, .type = (uint8_t)type,
        .shift = shift > 32 ? 32 : shift,
    };
    p->ncaches++;
}

/* Intel leaf 4 and AMD 0x8000001d share one format. Returns caches found. */
static int caches_deterministic(cpuid_fn fn, void *ctx, uint32_t leaf, struct cpu_place *p)
{
    uint32_t r[4];
    int found = 0;
    for (uint32_t sub = 0; sub < 16; sub++) {
        q(fn, ctx, leaf, sub, r);
        uint32_t type = r[0] & 0x1f;
        if (type == 0 || type > 3)
            break;
        uint32_t level = (r[0] >> 5) & 7;
        bool full = r[0] & (1u << 9);
        uint32_t sharing = ((r[0] >> 14) & 0xfff) + 1;
        uint32_t ways = ((r[1] >> 22) & 0x3ff) + 1;
        uint32_t parts = ((r[1] >> 12) & 0x3ff) + 1;
        uint32_t line = (r[1] & 0xfff) + 1;
        uint64_t sets = (uint64_t)r[2] + 1;
        add_cache(p, level, type, (uint64_t)ways * parts * line * sets, line, full ? 0 : ways,
                  log2_ceil(sharing));
        found++;
    }
    return found;
}

/* Leaf 4's sharing counts are in APIC-id units of the package that leaf 4
 * itself describes: EAX[31:26] + 1 addressable core ids. When that package is
 * not the one the layout found (log2 of it must be the package's core bits),
 * the counts belong to another machine: Bochs 2.7 copies leaf 4 from the real
 * chip its CPU model names (2 threads per core, 8 cores), whatever topology it
 * emulates, so under `count=1:4:1` two single-thread cores would "share" an L1.
 * Then fall back to the convention (L1 and L2 per core, the rest per package). */
static bool leaf4_fits_layout(cpuid_fn fn, void *ctx, const struct cpu_place *p)
{
    uint32_t r[4];
    q(fn, ctx, 4, 0, r);
    return log2_ceil(((r[0] >> 26) & 0x3f) + 1) == p->package_shift - p->smt_shift;
}

static void caches_by_convention(struct cpu_place *p)
{
    for (uint32_t i = 0; i < p->ncaches; i++)
        p->caches[i].shift = p->caches[i].level <= 2 ? p->smt_shift : p->package_shift;
}

/* Leaf 1's EBX[23:16] (with HTT) counts the addressable logical CPUs of a
 * package; an x2APIC topology leaf whose package is smaller contradicts it.
 * Bochs 2.7 gives each level of leaf 0xb its own bit count where the SDM
 * wants the running total (threads 1 bit, cores 1 bit: package "1" instead of
 * 2), so with `count=1:2:2` both cores would land in different packages. */
static void widen_to_leaf1(cpuid_fn fn, void *ctx, struct cpu_place *p)
{
    uint32_t r[4];
    q(fn, ctx, 1, 0, r);
    if (!(r[3] & (1u << 28)))
        return;
    uint8_t need = log2_ceil((r[1] >> 16) & 0xff);
    if (need > p->package_shift)
        p->package_shift = need;
}

/* AMD's 4-bit associativity code in 0x80000006 (APM vol. 3, E.4.5). */
static uint32_t amd_ways(uint32_t code)
{
    static const uint32_t ways[16] = { 0, 1, 2, 3, 4, 6, 8, 0, 16, 0, 32, 48, 64, 96, 128, 0 };
    return ways[code & 0xf];
}

static void caches_amd_legacy(cpuid_fn fn, void *ctx, uint32_t max_ext, struct cpu_place *p)
{
    uint32_t r[4];
    uint8_t core = p->smt_shift, pkg = p->package_shift;
    if (max_ext >= 0x80000005) {
        q(fn, ctx, 0x80000005, 0, r);
        for (int i = 0; i < 2; i++) {          /* ECX: L1d, EDX: L1i */
            uint32_t v = r[2 + i], assoc = (v >> 16) & 0xff;
            add_cache(p, 1, i ? CACHE_INSTRUCTION : CACHE_DATA, (uint64_t)(v >> 24) << 10, v & 0xff,
                      assoc == 0xff ? 0 : assoc, core);
        }
    }
    if (max_ext >= 0x80000006) {
        q(fn, ctx, 0x80000006, 0, r);
        uint32_t c = r[2], d = r[3];
        if ((c >> 12) & 0xf)
            add_cache(p, 2, CACHE_UNIFIED, (uint64_t)(c >> 16) << 10, c & 0xff, amd_ways(c >> 12), core);
        if ((d >> 12) & 0xf)
            add_cache(p, 3, CACHE_UNIFIED, (uint64_t)(d >> 18) << 19, d & 0xff, amd_ways(d >> 12), pkg);
    }
}

void cpuid_topo_decode(cpuid_fn fn, void *ctx, struct cpu_place *out, struct cpuid_ident *id_out)
{
    uint32_t r[4];
    struct cpuid_ident id = { .vendor = { 0 } };
    *out = (struct cpu_place){ .package_shift = 0 };
    q(fn, ctx, 0, 0, r);
    uint32_t max_basic = r[0];
    uint32_t vend[3] = { r[1], r[3], r[2] };
    copy_regs(id.vendor, vend, 3);
    id.vendor[12] = 0;
    q(fn, ctx, LEAF_EXT, 0, r);
    uint32_t max_ext = (r[0] & 0xffff0000u) == LEAF_EXT ? r[0] : 0;
    if (max_basic >= 1) {
        q(fn, ctx, 1, 0, r);
        uint32_t fam = (r[0] >> 8) & 0xf, mod = (r[0] >> 4) & 0xf;
        if (fam == 0xf)
            fam += (r[0] >> 20) & 0xff;
        if (fam == 0x6 || fam >= 0xf)
            mod += ((r[0] >> 16) & 0xf) << 4;
        id.family = fam;
        id.model = mod;
        id.stepping = r[0] & 0xf;
    }
    if (max_ext >= 0x80000004) {
        char b[48];
        for (uint32_t i = 0; i < 3; i++) {
            q(fn, ctx, 0x80000002 + i, 0, r);
            copy_regs(b + 16 * i, r, 4);
        }
        int s = 0, n = 0;
        while (s < 48 && b[s] == ' ')
            s++;
        while (s < 48 && b[s])
            id.brand[n++] = b[s++];
        while (n > 0 && id.brand[n - 1] == ' ')
            n--;
        id.brand[n] = 0;
    }

    bool ok = (max_basic >= 0x1f && layout_from_leaf(fn, ctx, 0x1f, out)) ||
              (max_basic >= 0xb && layout_from_leaf(fn, ctx, 0xb, out));
    if (!ok && max_basic >= 1)
        layout_from_leaf1(fn, ctx, &id, max_basic, max_ext, out);
    else if (!ok)
        out->source = CPU_SOURCE_NONE;
    else
        widen_to_leaf1(fn, ctx, out);
    cpu_place_derive(out);

    bool amd = vendor_is(&id, "AuthenticAMD") || vendor_is(&id, "HygonGenuine");
    int found = 0;
    if (max_basic >= 4 && !amd) {
        found = caches_deterministic(fn, ctx, 4, out);
        if (found && !leaf4_fits_layout(fn, ctx, out))
            caches_by_convention(out);
    }
    if (!found && max_ext >= 0x8000001d) {
        q(fn, ctx, 0x80000001, 0, r);
        if (r[2] & (1u << 22))
            found = caches_deterministic(fn, ctx, 0x8000001d, out);
    }
    if (!found && amd)
        caches_amd_legacy(fn, ctx, max_ext, out);
    /* No cache spans packages, whatever the sharing count says (Bochs's
     * leaf 4 under `count=4`, four single-core packages: "16 share the L3"). */
    for (uint32_t i = 0; i < out->ncaches; i++)
        if (out->caches[i].shift > out->package_shift)
            out->caches[i].shift = out->package_shift;
    if (id_out)
        *id_out = id;
}

#if defined(__x86_64__)
static void real_cpuid(void *ctx, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    (void)ctx;
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

void cpuid_topo_self(struct cpu_place *out, struct cpuid_ident *id)
{
    cpuid_topo_decode(real_cpuid, 0, out, id);
}
#endif
