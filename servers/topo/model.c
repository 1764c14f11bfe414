/*
 * The topology service's machine model; see model.h. No libc: small
 * writers for the warnings and the event line.
 */
#include "model.h"

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

const char *cpu_place_source_name(uint8_t s)
{
    switch (s) {
    case CPU_SOURCE_LEAF1: return "cpuid.1";
    case CPU_SOURCE_LEAF_B: return "cpuid.0xb";
    case CPU_SOURCE_LEAF_1F: return "cpuid.0x1f";
    default: return "none";
    }
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
    put(&o, cpu_place_source_name(p->source));
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

/* The caches of a record as the model keeps them: the first of each level
 * and type (a CPU that reports one twice, as a hostile CPUID leaf may, has
 * one cache there as far as anyone can tell). */
static void distinct_caches(const struct cpu_place *p, struct topo_cache_set *out)
{
    out->ncaches = 0;
    for (uint32_t i = 0; i < p->ncaches && i < CPU_MAX_CACHES; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < out->ncaches && !seen; j++)
            seen = out->caches[j].level == p->caches[i].level && out->caches[j].type == p->caches[i].type;
        if (!seen)
            out->caches[out->ncaches++] = p->caches[i];
    }
}

static uint8_t cache_set_of(struct topo_model *m, const struct cpu_place *p)
{
    struct topo_cache_set mine;
    distinct_caches(p, &mine);
    for (uint32_t s = 0; s < m->nsets; s++) {
        const struct topo_cache_set *cs = &m->sets[s];
        bool same = cs->ncaches == mine.ncaches;
        for (uint32_t i = 0; same && i < mine.ncaches; i++)
            same = same_cache(&cs->caches[i], &mine.caches[i]);
        if (same)
            return (uint8_t)s;
    }
    if (m->nsets == TOPO_MAX_CACHE_SETS)
        return 0;
    m->sets[m->nsets] = mine;
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

const struct cpu_cache *topo_caches_of(const struct topo_model *m, uint32_t c, uint32_t *n)
{
    *n = 0;
    if (c >= m->ncpus || m->cpus[c].cache_set >= m->nsets)
        return 0;
    const struct topo_cache_set *s = &m->sets[m->cpus[c].cache_set];
    *n = s->ncaches <= CPU_MAX_CACHES ? s->ncaches : CPU_MAX_CACHES;
    return s->caches;
}

/* Do cores a and b (with caches ca, cb of one level and type) share it? */
static bool same_instance(const struct topo_model *m, uint32_t a, const struct cpu_cache *ca, uint32_t b,
                          const struct cpu_cache *cb)
{
    if (ca->shift != cb->shift)
        return false;
    return ca->shift >= 32 || (m->cpus[a].apic_id >> ca->shift) == (m->cpus[b].apic_id >> cb->shift);
}

void topo_cache_sharers(const struct topo_model *m, uint32_t c, const struct cpu_cache *k, struct topo_coreset *out)
{
    for (uint32_t i = 0; i < TOPO_SET_WORDS; i++)
        out->w[i] = 0;
    if (c >= m->ncpus)
        return;
    for (uint32_t b = 0; b < m->ncpus; b++) {
        const struct cpu_cache *kb = topo_cache_of(m, b, k->level, k->type);
        if (kb && same_instance(m, c, k, b, kb))
            topo_coreset_add(out, b);
    }
}

uint32_t topo_cache_instances(const struct topo_model *m, const struct cpu_cache *k)
{
    uint32_t n = 0;
    for (uint32_t a = 0; a < m->ncpus; a++) {
        const struct cpu_cache *ka = topo_cache_of(m, a, k->level, k->type);
        if (!ka)
            continue;
        bool first = true;
        for (uint32_t b = 0; b < a && first; b++) {
            const struct cpu_cache *kb = topo_cache_of(m, b, k->level, k->type);
            if (kb && same_instance(m, a, ka, b, kb))
                first = false;
        }
        n += first;
    }
    return n;
}

/* ---- the frame ---------------------------------------------------------------------- */

/* A bool of the frame as its byte: reading a stored 2 as bool is undefined. */
static bool byte_is_bool(const bool *b) { return *(const uint8_t *)b <= 1; }

static bool has_nul(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i])
            return true;
    return false;
}

errval_t machine_check(const struct machine *m, size_t bytes)
{
    if (bytes < sizeof *m)
        return ERR_TRUNCATED;
    if (m->magic != MACHINE_MAGIC)
        return ERR_BAD_SIGNATURE;
    if (m->version != MACHINE_VERSION)
        return ERR_BAD_VERSION;
    const struct topology *t = &m->topo;
    if (m->ncpus == 0 || m->ncpus > TOPO_MAX_CPUS || m->ncpus != t->ncpus)
        return ERR_BAD_LENGTH;
    if (MACHINE_BYTES(m->ncpus) > bytes)
        return ERR_TRUNCATED;
    if (m->bytes != MACHINE_BYTES(m->ncpus) || t->nnodes == 0 || t->nnodes > TOPO_MAX_NODES ||
        t->nranges > TOPO_MAX_RANGES)
        return ERR_BAD_LENGTH;
    uint32_t count[TOPO_MAX_NODES] = { 0 };
    for (uint32_t c = 0; c < t->ncpus; c++) {
        if (t->cpus[c].node >= t->nnodes)
            return ERR_INCONSISTENT;
        count[t->cpus[c].node]++;
    }
    for (uint32_t n = 0; n < t->nnodes; n++) {
        if (t->nodes[n].ncpus != count[n])
            return ERR_INCONSISTENT;
        for (uint32_t k = 0; k < t->nnodes; k++) {
            uint8_t d = t->dist[n][k];
            if (n == k ? d != 10 : (d < 11 || d > 254))
                return ERR_INCONSISTENT;
        }
    }
    for (uint32_t r = 0; r < t->nranges; r++)
        if (t->ranges[r].node >= t->nnodes || t->ranges[r].base + t->ranges[r].len < t->ranges[r].base)
            return ERR_INCONSISTENT;
    if (!byte_is_bool(&t->dist_from_slit) || !byte_is_bool(&t->numa_from_srat) ||
        !has_nul(m->ident.vendor, sizeof m->ident.vendor) || !has_nul(m->ident.brand, sizeof m->ident.brand))
        return ERR_INCONSISTENT;
    return ERR_OK;
}

bool cpu_place_valid(const struct cpu_place *p)
{
    if (p->smt_shift > p->package_shift || p->package_shift > 32 || p->ncaches > CPU_MAX_CACHES)
        return false;
    if (p->source != CPU_SOURCE_NONE && p->source != CPU_SOURCE_LEAF1 && p->source != CPU_SOURCE_LEAF_B &&
        p->source != CPU_SOURCE_LEAF_1F)
        return false;
    for (uint32_t i = 0; i < p->ncaches; i++) {
        const struct cpu_cache *c = &p->caches[i];
        if (c->level < 1 || c->level > 7 || c->type < CACHE_DATA || c->type > CACHE_UNIFIED || c->shift > 32)
            return false;
    }
    struct cpu_place q = *p;
    cpu_place_derive(&q);
    return q.package == p->package && q.core == p->core && q.thread == p->thread;
}

static void copy_text(char *dst, const char *src, size_t size)
{
    size_t i = 0;
    for (; i + 1 < size && src[i]; i++)
        dst[i] = src[i];
    dst[i] = 0;
}

void topo_model_from_machine(struct topo_model *model, const struct machine *m, struct topo_cpu_info *cpus,
                             topo_warn_fn warn, void *warn_ctx)
{
    topo_model_init(model, &m->topo, cpus);
    copy_text(model->vendor, m->ident.vendor, sizeof model->vendor);
    copy_text(model->brand, m->ident.brand, sizeof model->brand);
    model->family = m->ident.family;
    model->model = m->ident.model;
    model->stepping = m->ident.stepping;
    for (uint32_t c = 0; c < m->ncpus; c++) {
        const struct machine_record *r = &m->records[c];
        if (r->reported == 0)
            continue;
        if (r->reported != 1 || !cpu_place_valid(&r->place)) {
            struct msg w;
            msg_start(&w);
            put(&w.o, "core ");
            put_u64(&w.o, c);
            put(&w.o, "'s CPUID record is malformed; ignored");
            msg_send(&w, warn, warn_ctx);
            continue;
        }
        topo_model_set(model, c, &r->place, warn, warn_ctx);
    }
    topo_model_finish(model, warn, warn_ctx);
}

/* ---- questions ------------------------------------------------------------------------ */

errval_t topo_model_node_of_core(const struct topo_model *m, uint32_t core, uint32_t *node)
{
    if (core >= m->ncpus)
        return ERR_NO_SUCH_CORE;
    *node = m->acpi->cpus[core].node;
    return ERR_OK;
}

errval_t topo_model_distance(const struct topo_model *m, uint32_t from, uint32_t to, uint32_t *distance)
{
    if (from >= m->acpi->nnodes || to >= m->acpi->nnodes)
        return ERR_NO_SUCH_NODE;
    *distance = m->acpi->dist[from][to];
    return ERR_OK;
}

static uint32_t lowest_shared_level(const struct topo_model *m, uint32_t a, uint32_t b)
{
    for (uint32_t level = 1; level <= 7; level++)
        if (topo_share_cache(m, a, b, level))
            return level;
    return 0;
}

errval_t topo_model_shared_level(const struct topo_model *m, uint32_t a, uint32_t b, uint32_t *level)
{
    if (a >= m->ncpus || b >= m->ncpus)
        return ERR_NO_SUCH_CORE;
    *level = lowest_shared_level(m, a, b);
    return ERR_OK;
}

/* How little of the hierarchy c shares with `from`: 0 itself, 1 a thread
 * of the same core, 1 + L sharing a cache of level L at the lowest, 9 the
 * same package, 10 nothing. */
static uint32_t hierarchy_rank(const struct topo_model *m, uint32_t from, uint32_t c)
{
    if (c == from)
        return 0;
    if (topo_same_core(m, from, c))
        return 1;
    uint32_t level = lowest_shared_level(m, from, c);
    if (level)
        return 1 + level;
    return topo_same_package(m, from, c) ? 9 : 10;
}

/* Sort n keys ascending (n is small: at most TOPO_MAX_CPUS). */
static void sort_keys(uint64_t *k, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && k[j - 1] > k[j]; j--) {
            uint64_t t = k[j];
            k[j] = k[j - 1];
            k[j - 1] = t;
        }
}

errval_t topo_model_nearest_cores(const struct topo_model *m, uint32_t from, const struct topo_coreset *among,
                            uint16_t *out, uint32_t *n)
{
    if (from >= m->ncpus)
        return ERR_NO_SUCH_CORE;
    for (uint32_t c = m->ncpus; c < TOPO_MAX_CPUS; c++)
        if (topo_coreset_has(among, c))
            return ERR_NO_SUCH_CORE;
    uint64_t keys[TOPO_MAX_CPUS];
    uint32_t k = 0;
    uint32_t home = m->acpi->cpus[from].node;
    for (uint32_t c = 0; c < m->ncpus; c++) {
        if (!topo_coreset_has(among, c))
            continue;
        uint64_t dist = m->acpi->dist[home][m->acpi->cpus[c].node];
        keys[k++] = dist << 32 | (uint64_t)hierarchy_rank(m, from, c) << 16 | c;
    }
    sort_keys(keys, k);
    for (uint32_t i = 0; i < k; i++)
        out[i] = (uint16_t)(keys[i] & 0xffff);
    *n = k;
    return ERR_OK;
}

errval_t topo_model_nearest_nodes(const struct topo_model *m, uint32_t from, uint64_t among, uint8_t *out, uint32_t *n)
{
    uint32_t nnodes = m->acpi->nnodes;
    if (from >= nnodes || (nnodes < 64 && among >> nnodes))
        return ERR_NO_SUCH_NODE;
    uint64_t keys[TOPO_MAX_NODES];
    uint32_t k = 0;
    for (uint32_t i = 0; i < nnodes; i++)
        if ((among >> i) & 1)
            keys[k++] = (uint64_t)m->acpi->dist[from][i] << 8 | i;
    sort_keys(keys, k);
    for (uint32_t i = 0; i < k; i++)
        out[i] = (uint8_t)(keys[i] & 0xff);
    *n = k;
    return ERR_OK;
}
