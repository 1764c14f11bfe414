/*
 * Per-CPU places, their event lines, and the boot core's machine model; see
 * cpu_place.h. No libc: small writers and a strict little reader for the one
 * line format this file itself writes.
 */
#include "cpu_place.h"

/* ---- output buffer -------------------------------------------------------- */

struct out {
    char *buf;
    size_t size, len;
    bool overflow;
};

static void put(struct out *o, const char *s)
{
    for (; *s; s++) {
        if (o->len + 1 >= o->size) {
            o->overflow = true;
            return;
        }
        o->buf[o->len++] = *s;
    }
}

static void put_u64(struct out *o, uint64_t v)
{
    char d[21];
    int n = 20;
    d[n] = 0;
    do {
        d[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, d + n);
}

static void put_key(struct out *o, const char *key, uint64_t v)
{
    put(o, ",\"");
    put(o, key);
    put(o, "\":");
    put_u64(o, v);
}

static const char *source_name(uint8_t s)
{
    switch (s) {
    case CPU_SOURCE_LEAF1: return "cpuid.1";
    case CPU_SOURCE_LEAF_B: return "cpuid.0xb";
    case CPU_SOURCE_LEAF_1F: return "cpuid.0x1f";
    default: return "none";
    }
}

void cpu_place_derive(struct cpu_place *p)
{
    uint32_t ps = p->package_shift, ss = p->smt_shift;
    if (ss > ps)
        ss = p->smt_shift = (uint8_t)ps;
    uint64_t id = p->apic_id;
    p->package = ps >= 32 ? 0 : (uint32_t)(id >> ps);
    p->core = (uint32_t)((id & ((1ull << ps) - 1)) >> ss);
    p->thread = (uint32_t)(id & ((1ull << ss) - 1));
}

size_t cpu_place_format_event(const struct cpu_place *p, uint32_t core_id, char *buf, size_t size)
{
    struct out o = { buf, size, 0, false };
    if (!size)
        return 0;
    put(&o, "@atoll {\"event\":\"cpu_topology\"");
    put_key(&o, "core", core_id);
    put_key(&o, "apic", p->apic_id);
    put_key(&o, "package", p->package);
    put_key(&o, "package_core", p->core);
    put_key(&o, "thread", p->thread);
    put_key(&o, "smt_shift", p->smt_shift);
    put_key(&o, "package_shift", p->package_shift);
    put(&o, ",\"source\":\"");
    put(&o, source_name(p->source));
    put(&o, "\",\"caches\":[");
    for (uint32_t i = 0; i < p->ncaches && i < CPU_MAX_CACHES; i++) {
        const struct cpu_cache *c = &p->caches[i];
        put(&o, i ? ",[" : "[");
        put_u64(&o, c->level);
        put(&o, ",");
        put_u64(&o, c->type);
        put(&o, ",");
        put_u64(&o, c->size);
        put(&o, ",");
        put_u64(&o, c->line);
        put(&o, ",");
        put_u64(&o, c->ways);
        put(&o, ",");
        put_u64(&o, c->shift);
        put(&o, "]");
    }
    put(&o, "]}\n");
    buf[o.len < size ? o.len : size - 1] = 0;
    return o.overflow ? 0 : o.len;
}

/* ---- reading the line back ---------------------------------------------------- */

struct in {
    const char *s;
    size_t len, pos;
};

static bool lit(struct in *in, const char *s)
{
    size_t p = in->pos;
    for (; *s; s++, p++)
        if (p >= in->len || in->s[p] != *s)
            return false;
    in->pos = p;
    return true;
}

static bool num(struct in *in, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;
    size_t start = in->pos;
    while (in->pos < in->len && in->s[in->pos] >= '0' && in->s[in->pos] <= '9') {
        uint64_t d = (uint64_t)(in->s[in->pos] - '0');
        if (d > max || x > (max - d) / 10)
            return false;
        x = x * 10 + d;
        in->pos++;
    }
    if (in->pos == start || in->pos - start > 20)
        return false;
    *v = x;
    return true;
}

/* ,"key":number with number <= max. */
static bool field(struct in *in, const char *key, uint64_t max, uint64_t *v)
{
    return lit(in, ",\"") && lit(in, key) && lit(in, "\":") && num(in, max, v);
}

bool cpu_place_parse_event(const char *line, size_t len, uint32_t *core_id, struct cpu_place *out)
{
    struct in in = { line, len, 0 };
    while (in.len && (in.s[in.len - 1] == '\n' || in.s[in.len - 1] == '\r'))
        in.len--;
    if (!lit(&in, "@atoll {\"event\":\"cpu_topology\""))
        return false;
    struct cpu_place p = { 0 };
    uint64_t core, apic, pkg, pcore, thr, ss, ps;
    if (!field(&in, "core", 0xffffffffu, &core) || !field(&in, "apic", 0xffffffffu, &apic) ||
        !field(&in, "package", 0xffffffffu, &pkg) || !field(&in, "package_core", 0xffffffffu, &pcore) ||
        !field(&in, "thread", 0xffffffffu, &thr) || !field(&in, "smt_shift", 32, &ss) ||
        !field(&in, "package_shift", 32, &ps) || ss > ps)
        return false;
    p.apic_id = (uint32_t)apic;
    p.smt_shift = (uint8_t)ss;
    p.package_shift = (uint8_t)ps;
    if (!lit(&in, ",\"source\":\""))
        return false;
    static const uint8_t sources[] = { CPU_SOURCE_LEAF_1F, CPU_SOURCE_LEAF_B, CPU_SOURCE_LEAF1, CPU_SOURCE_NONE };
    bool known = false;
    for (size_t i = 0; i < sizeof sources && !known; i++) {
        struct in try = in;
        if (lit(&try, source_name(sources[i])) && lit(&try, "\"")) {
            p.source = sources[i];
            in = try;
            known = true;
        }
    }
    if (!known || !lit(&in, ",\"caches\":["))
        return false;
    while (!lit(&in, "]")) {
        if (p.ncaches == CPU_MAX_CACHES || (p.ncaches && !lit(&in, ",")) || !lit(&in, "["))
            return false;
        uint64_t lv, ty, sz, ln, wy, sh;
        if (!num(&in, 7, &lv) || !lit(&in, ",") || !num(&in, 3, &ty) || !lit(&in, ",") ||
            !num(&in, 1ull << 40, &sz) || !lit(&in, ",") || !num(&in, 0xffffffffu, &ln) ||
            !lit(&in, ",") || !num(&in, 0xffffffffu, &wy) || !lit(&in, ",") || !num(&in, 32, &sh) ||
            !lit(&in, "]") || lv == 0 || ty == 0)
            return false;
        p.caches[p.ncaches++] = (struct cpu_cache){
            .size = sz, .line = (uint32_t)ln, .ways = (uint32_t)wy,
            .level = (uint8_t)lv, .type = (uint8_t)ty, .shift = (uint8_t)sh,
        };
    }
    if (!lit(&in, "}") || in.pos != in.len)
        return false;
    cpu_place_derive(&p);
    /* The derived numbers must be the ones the line states. */
    if (p.package != pkg || p.core != pcore || p.thread != thr)
        return false;
    *core_id = (uint32_t)core;
    *out = p;
    return true;
}

/* ---- the model ------------------------------------------------------------------- */

struct msg {
    char buf[160];
    struct out o;
};

static void msg_start(struct msg *m)
{
    m->o = (struct out){ m->buf, sizeof m->buf, 0, false };
    m->buf[0] = 0;
}

static void msg_send(struct msg *m, topo_warn_fn warn, void *ctx)
{
    m->buf[m->o.len] = 0;
    if (warn)
        warn(ctx, m->buf);
}

void topo_model_init(struct topo_model *m, const struct topology *acpi, struct topo_cpu_info *cpus)
{
    /* No memset in pure code: clear field by field. */
    m->acpi = acpi;
    m->ncpus = acpi->ncpus;
    m->cpus = cpus;
    m->nsets = 0;
    m->npackages = m->ncores = 0;
    m->vendor[0] = m->brand[0] = 0;
    m->family = m->model = m->stepping = 0;
    for (uint32_t i = 0; i < m->ncpus; i++)
        cpus[i] = (struct topo_cpu_info){ .apic_id = acpi->cpus[i].apic_id };
}

static bool same_cache(const struct cpu_cache *a, const struct cpu_cache *b)
{
    return a->size == b->size && a->line == b->line && a->ways == b->ways && a->level == b->level &&
           a->type == b->type && a->shift == b->shift;
}

static uint8_t cache_set_of(struct topo_model *m, const struct cpu_place *p)
{
    for (uint32_t s = 0; s < m->nsets; s++) {
        const struct topo_cache_set *cs = &m->sets[s];
        bool same = cs->ncaches == p->ncaches;
        for (uint32_t i = 0; same && i < p->ncaches; i++)
            same = same_cache(&cs->caches[i], &p->caches[i]);
        if (same)
            return (uint8_t)s;
    }
    if (m->nsets == TOPO_MAX_CACHE_SETS)
        return 0;
    struct topo_cache_set *cs = &m->sets[m->nsets];
    cs->ncaches = p->ncaches <= CPU_MAX_CACHES ? p->ncaches : CPU_MAX_CACHES;
    for (uint32_t i = 0; i < cs->ncaches; i++)
        cs->caches[i] = p->caches[i];
    return (uint8_t)m->nsets++;
}

void topo_model_set(struct topo_model *m, uint32_t core, const struct cpu_place *p, topo_warn_fn warn,
                    void *warn_ctx)
{
    struct msg w;
    msg_start(&w);
    if (core >= m->ncpus) {
        put(&w.o, "CPUID topology report from core ");
        put_u64(&w.o, core);
        put(&w.o, ", which ACPI does not list; ignored");
        msg_send(&w, warn, warn_ctx);
        return;
    }
    struct topo_cpu_info *c = &m->cpus[core];
    if (c->reported || p->apic_id != c->apic_id) {
        put(&w.o, "core ");
        put_u64(&w.o, core);
        if (c->reported) {
            put(&w.o, " reported its CPUID topology twice; the first report stands");
        } else {
            put(&w.o, ": CPUID says APIC id ");
            put_u64(&w.o, p->apic_id);
            put(&w.o, " but MADT says ");
            put_u64(&w.o, c->apic_id);
            put(&w.o, "; placed by the MADT id with the boot core's CPUID layout");
        }
        msg_send(&w, warn, warn_ctx);
        return;
    }
    *c = (struct topo_cpu_info){
        .apic_id = p->apic_id, .package = p->package, .core = p->core, .thread = p->thread,
        .smt_shift = p->smt_shift, .package_shift = p->package_shift, .source = p->source,
        .cache_set = cache_set_of(m, p), .reported = true,
    };
}

void topo_model_finish(struct topo_model *m, topo_warn_fn warn, void *warn_ctx)
{
    /* The layout that unreported CPUs borrow: the boot core's, else the
     * first reported one, else one package of single-thread cores. */
    const struct topo_cpu_info *ref = 0;
    for (uint32_t i = 0; i < m->ncpus && !ref; i++)
        if (m->cpus[i].reported)
            ref = &m->cpus[i];
    uint8_t ss = ref ? ref->smt_shift : 0, ps = ref ? ref->package_shift : 32;
    if (!m->nsets) {
        m->sets[0].ncaches = 0;
        m->nsets = 1;
    }
    for (uint32_t i = 0; i < m->ncpus; i++) {
        struct topo_cpu_info *c = &m->cpus[i];
        if (c->reported)
            continue;
        struct cpu_place p = { .apic_id = c->apic_id, .smt_shift = ss, .package_shift = ps };
        cpu_place_derive(&p);
        *c = (struct topo_cpu_info){
            .apic_id = p.apic_id, .package = p.package, .core = p.core, .thread = p.thread,
            .smt_shift = ss, .package_shift = ps, .source = CPU_SOURCE_NONE,
            .cache_set = ref ? ref->cache_set : 0, .reported = false,
        };
        struct msg w;
        msg_start(&w);
        put(&w.o, "core ");
        put_u64(&w.o, i);
        put(&w.o, " (APIC id ");
        put_u64(&w.o, c->apic_id);
        put(&w.o, ") did not report its CPUID topology; placed by its APIC id with ");
        put(&w.o, ref ? "the layout of core " : "one package of single-thread cores");
        if (ref)
            put_u64(&w.o, (uint64_t)(ref - m->cpus));
        msg_send(&w, warn, warn_ctx);
    }
    m->npackages = m->ncores = 0;
    for (uint32_t i = 0; i < m->ncpus; i++) {
        bool new_pkg = true, new_core = true;
        for (uint32_t j = 0; j < i; j++) {
            if (topo_same_package(m, i, j))
                new_pkg = false;
            if (topo_same_core(m, i, j))
                new_core = false;
        }
        m->npackages += new_pkg;
        m->ncores += new_core;
    }
}

bool topo_same_package(const struct topo_model *m, uint32_t a, uint32_t b)
{
    return a < m->ncpus && b < m->ncpus && m->cpus[a].package == m->cpus[b].package;
}

bool topo_same_core(const struct topo_model *m, uint32_t a, uint32_t b)
{
    return topo_same_package(m, a, b) && m->cpus[a].core == m->cpus[b].core;
}

const struct cpu_cache *topo_cache_of(const struct topo_model *m, uint32_t c, uint32_t level, uint32_t type)
{
    if (c >= m->ncpus || m->cpus[c].cache_set >= m->nsets)
        return 0;
    const struct topo_cache_set *s = &m->sets[m->cpus[c].cache_set];
    for (uint32_t i = 0; i < s->ncaches && i < CPU_MAX_CACHES; i++)
        if (s->caches[i].level == level && s->caches[i].type == type)
            return &s->caches[i];
    return 0;
}

bool topo_share_cache(const struct topo_model *m, uint32_t a, uint32_t b, uint32_t level)
{
    for (uint32_t type = CACHE_DATA; type <= CACHE_UNIFIED; type += CACHE_UNIFIED - CACHE_DATA) {
        const struct cpu_cache *ca = topo_cache_of(m, a, level, type);
        const struct cpu_cache *cb = topo_cache_of(m, b, level, type);
        if (ca && cb && ca->shift == cb->shift && ca->shift < 32 &&
            (m->cpus[a].apic_id >> ca->shift) == (m->cpus[b].apic_id >> cb->shift))
            return true;
        if (ca && cb && ca->shift >= 32 && cb->shift >= 32)
            return true;
    }
    return false;
}
