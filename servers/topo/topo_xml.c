/*
 * hwloc 2.x XML from the machine model; see topo_xml.h.
 *
 * The tree is a chain of levels (Package, caches from the largest down,
 * Core, PU, and where needed a Group level for NUMA nodes); every level is a
 * partition of the CPUs given by a key function, and the chain is valid when
 * each level's classes nest inside the level above. Objects are written by
 * walking the chain recursively, splitting each parent's CPUs by the next
 * level's key. Keys are global, so "the ancestor at level a of CPU c" is
 * simply the class of key_a(c).
 */
#include "topo_xml.h"

#define SET_WORDS (TOPO_MAX_CPUS / 64)
#define MAX_LEVELS (4 + CPU_MAX_CACHES)
#define ATTACH_MACHINE (-1)

struct cpuset {
    uint64_t w[SET_WORDS];
};

enum { LV_PACKAGE, LV_CACHE, LV_GROUP, LV_CORE, LV_PU };

struct level {
    uint8_t kind, cache_level, cache_type;
};

struct xw {
    const struct topo_model *m;
    topo_xml_write_fn write;
    void *ctx;
    topo_warn_fn warn;
    void *warn_ctx;
    struct level lv[MAX_LEVELS];
    int nlv;
    int attach[TOPO_MAX_NODES];       /* level index, or ATTACH_MACHINE */
    uint32_t rep[TOPO_MAX_NODES];     /* a CPU of the node (if it has any) */
    bool has_cpus[TOPO_MAX_NODES];
    bool grouped[TOPO_MAX_NODES];     /* gets a Group object of its own */
    uint32_t nnodes;
    uint64_t gp;                      /* next gp_index */
};

/* ---- small helpers ---------------------------------------------------------- */

static bool in_set(const struct cpuset *s, uint32_t c) { return (s->w[c / 64] >> (c % 64)) & 1; }
static void set_add(struct cpuset *s, uint32_t c) { s->w[c / 64] |= 1ull << (c % 64); }

static void set_clear(struct cpuset *s)
{
    for (int i = 0; i < SET_WORDS; i++)
        s->w[i] = 0;
}

static size_t slen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static void w(struct xw *x, const char *s) { x->write(x->ctx, s, slen(s)); }

static size_t fmt_dec(char *buf, uint64_t v)   /* buf: 21 bytes; returns length */
{
    char d[20];
    size_t n = 0, len = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        buf[len++] = d[--n];
    buf[len] = 0;
    return len;
}

static void wdec(struct xw *x, uint64_t v)
{
    char b[21];
    x->write(x->ctx, b, fmt_dec(b, v));
}

static void wattr_dec(struct xw *x, const char *name, uint64_t v)
{
    w(x, " ");
    w(x, name);
    w(x, "=\"");
    wdec(x, v);
    w(x, "\"");
}

/* A bitmap of `nwords` 32-bit words (least significant first) the way
 * hwloc_bitmap_snprintf writes it: most significant non-zero word first as
 * 0x%08x, zero words after it empty except the last ("0x0"). */
static void wbitmap(struct xw *x, const uint32_t *words, int nwords)
{
    static const char hex[] = "0123456789abcdef";
    int top = nwords - 1;
    while (top > 0 && !words[top])
        top--;
    for (int i = top; i >= 0; i--) {
        if (i != top)
            w(x, ",");
        if (words[i] || (i == top && top > 0)) {
            char b[11] = "0x";
            for (int k = 0; k < 8; k++)
                b[2 + k] = hex[(words[i] >> (28 - 4 * k)) & 0xf];
            b[10] = 0;
            w(x, b);
        } else if (i == 0) {
            w(x, "0x0");
        }
    }
}

static void wcpuset(struct xw *x, const char *name, const struct cpuset *s)
{
    uint32_t words[SET_WORDS * 2];
    for (int i = 0; i < SET_WORDS; i++) {
        words[2 * i] = (uint32_t)s->w[i];
        words[2 * i + 1] = (uint32_t)(s->w[i] >> 32);
    }
    w(x, " ");
    w(x, name);
    w(x, "=\"");
    wbitmap(x, words, SET_WORDS * 2);
    w(x, "\"");
}

static void wnodeset(struct xw *x, const char *name, uint64_t nodes)
{
    uint32_t words[2] = { (uint32_t)nodes, (uint32_t)(nodes >> 32) };
    w(x, " ");
    w(x, name);
    w(x, "=\"");
    wbitmap(x, words, 2);
    w(x, "\"");
}

/* hwloc's own XML reader knows &amp; &lt; &gt; &quot; but not &apos; (an
 * info holding it is dropped); a ' needs no escape inside "...". */
static void wesc(struct xw *x, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': w(x, "&amp;"); break;
        case '<': w(x, "&lt;"); break;
        case '>': w(x, "&gt;"); break;
        case '"': w(x, "&quot;"); break;
        default:
            if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f)
                x->write(x->ctx, s, 1);
            else
                w(x, "?");
        }
    }
}

static void windent(struct xw *x, int depth)
{
    for (int i = 0; i < depth; i++)
        w(x, "  ");
}

static void winfo(struct xw *x, int depth, const char *name, const char *value)
{
    windent(x, depth);
    w(x, "<info name=\"");
    wesc(x, name);
    w(x, "\" value=\"");
    wesc(x, value);
    w(x, "\"/>\n");
}

/* Warnings: a short sentence built from pieces. */
struct msg {
    char buf[200];
    size_t len;
};

static void m_put(struct msg *m, const char *s)
{
    while (*s && m->len < sizeof m->buf - 1)
        m->buf[m->len++] = *s++;
    m->buf[m->len] = 0;
}

static void m_dec(struct msg *m, uint64_t v)
{
    char b[21];
    fmt_dec(b, v);
    m_put(m, b);
}

static void m_send(struct xw *x, struct msg *m)
{
    if (x->warn)
        x->warn(x->warn_ctx, m->buf);
}

/* ---- levels and their keys ------------------------------------------------------- */

static uint64_t key(const struct xw *x, struct level l, uint32_t c)
{
    const struct topo_cpu_info *i = &x->m->cpus[c];
    switch (l.kind) {
    case LV_PACKAGE: return i->package;
    case LV_CORE: return ((uint64_t)i->package << 32) | i->core;
    case LV_PU: return c;
    case LV_GROUP: return x->m->acpi->cpus[c].node;
    default: {
        const struct cpu_cache *k = topo_cache_of(x->m, c, l.cache_level, l.cache_type);
        if (!k)
            return (1ull << 63) | c;
        return k->shift >= 32 ? 0 : (uint64_t)(i->apic_id >> k->shift);
    }
    }
}

/* Does every class of `lower` lie inside one class of `upper`? */
static bool nests(const struct xw *x, struct level upper, struct level lower)
{
    for (uint32_t a = 0; a < x->m->ncpus; a++)
        for (uint32_t b = a + 1; b < x->m->ncpus; b++)
            if (key(x, lower, a) == key(x, lower, b) && key(x, upper, a) != key(x, upper, b))
                return false;
    return true;
}

static void cache_name(struct msg *m, struct level l)
{
    m_put(m, "L");
    m_dec(m, l.cache_level);
    m_put(m, l.cache_type == CACHE_DATA ? "d" : l.cache_type == CACHE_INSTRUCTION ? "i" : "");
}

static int type_rank(uint8_t t) { return t == CACHE_UNIFIED ? 0 : t == CACHE_DATA ? 1 : 2; }

static void remove_level(struct xw *x, int i)
{
    for (int j = i; j + 1 < x->nlv; j++)
        x->lv[j] = x->lv[j + 1];
    x->nlv--;
}

static void build_levels(struct xw *x)
{
    const struct topo_model *m = x->m;
    struct level caches[TOPO_MAX_CACHE_SETS * CPU_MAX_CACHES];
    int nc = 0;
    for (uint32_t s = 0; s < m->nsets; s++)
        for (uint32_t i = 0; i < m->sets[s].ncaches && i < CPU_MAX_CACHES; i++) {
            struct level l = { LV_CACHE, m->sets[s].caches[i].level, m->sets[s].caches[i].type };
            bool dup = false;
            for (int j = 0; j < nc; j++)
                dup |= caches[j].cache_level == l.cache_level && caches[j].cache_type == l.cache_type;
            if (!dup)
                caches[nc++] = l;
        }
    /* Largest level first; at one level unified, then data above instruction. */
    for (int i = 1; i < nc; i++)
        for (int j = i; j > 0; j--) {
            struct level a = caches[j - 1], b = caches[j];
            if (a.cache_level > b.cache_level ||
                (a.cache_level == b.cache_level && type_rank(a.cache_type) <= type_rank(b.cache_type)))
                break;
            caches[j - 1] = b;
            caches[j] = a;
        }
    x->nlv = 0;
    x->lv[x->nlv++] = (struct level){ LV_PACKAGE, 0, 0 };
    for (int i = 0; i < nc && x->nlv < MAX_LEVELS - 2; i++) {
        bool everyone = true;
        for (uint32_t c = 0; c < m->ncpus && everyone; c++)
            everyone = topo_cache_of(m, c, caches[i].cache_level, caches[i].cache_type) != 0;
        if (!everyone) {
            struct msg g = { .len = 0 };
            m_put(&g, "topology XML: not every CPU reports an ");
            cache_name(&g, caches[i]);
            m_put(&g, " cache; left out");
            m_send(x, &g);
            continue;
        }
        x->lv[x->nlv++] = caches[i];
    }
    x->lv[x->nlv++] = (struct level){ LV_CORE, 0, 0 };
    x->lv[x->nlv++] = (struct level){ LV_PU, 0, 0 };
    /* Drop caches whose sharing does not nest in the chain. */
    for (int i = 1; i < x->nlv;) {
        if (nests(x, x->lv[i - 1], x->lv[i])) {
            i++;
            continue;
        }
        int bad = x->lv[i].kind == LV_CACHE ? i : i - 1;   /* cores always nest in packages */
        struct msg g = { .len = 0 };
        m_put(&g, "topology XML: the ");
        cache_name(&g, x->lv[bad]);
        m_put(&g, " cache's sharing from CPUID does not nest with packages, other caches and cores; left out");
        m_send(x, &g);
        remove_level(x, bad);
        i = 1;
    }
}

/* ---- NUMA nodes -------------------------------------------------------------------- */

/* Are node n's CPUs exactly one object of level l? */
static bool is_object(const struct xw *x, struct level l, uint32_t n)
{
    uint64_t k = key(x, l, x->rep[n]);
    for (uint32_t c = 0; c < x->m->ncpus; c++)
        if ((key(x, l, c) == k) != (x->m->acpi->cpus[c].node == n))
            return false;
    return true;
}

static void place_nodes(struct xw *x)
{
    const struct topology *t = x->m->acpi;
    x->nnodes = t->nnodes < TOPO_MAX_NODES ? t->nnodes : TOPO_MAX_NODES;
    for (uint32_t n = 0; n < x->nnodes; n++) {
        x->attach[n] = ATTACH_MACHINE;
        x->has_cpus[n] = false;
        x->grouped[n] = false;
    }
    for (uint32_t c = x->m->ncpus; c-- > 0;) {
        uint32_t n = t->cpus[c].node;
        if (n < x->nnodes) {
            x->rep[n] = c;
            x->has_cpus[n] = true;
        }
    }
    const struct level g = { LV_GROUP, 0, 0 };
    /* A level whose objects are exactly the nodes: attach there (highest). */
    for (int i = 0; i < x->nlv; i++) {
        if (nests(x, x->lv[i], g) && nests(x, g, x->lv[i])) {
            for (uint32_t n = 0; n < x->nnodes; n++)
                if (x->has_cpus[n])
                    x->attach[n] = i;
            return;
        }
    }
    /* One node holding every CPU of several packages: the Machine. */
    bool one = true;
    for (uint32_t c = 1; c < x->m->ncpus; c++)
        one &= t->cpus[c].node == t->cpus[0].node;
    if (one)
        return;
    /* Else a Group level for the nodes, as high as it fits; a node that is
     * exactly one object of another level hangs off the highest such object
     * instead and gets no Group. */
    for (int i = 0; i < x->nlv; i++) {
        if ((i == 0 || nests(x, x->lv[i - 1], g)) && nests(x, g, x->lv[i])) {
            for (int j = x->nlv; j > i; j--)
                x->lv[j] = x->lv[j - 1];
            x->lv[i] = g;
            x->nlv++;
            for (uint32_t n = 0; n < x->nnodes; n++) {
                if (!x->has_cpus[n])
                    continue;
                x->attach[n] = i;
                x->grouped[n] = true;
                for (int l = 0; l < x->nlv; l++) {
                    if (l != i && is_object(x, x->lv[l], n)) {
                        x->attach[n] = l;
                        x->grouped[n] = false;
                        break;
                    }
                }
            }
            return;
        }
    }
    /* The nodes cut across the hierarchy: each goes to the smallest object
     * holding all its CPUs. */
    for (uint32_t n = 0; n < x->nnodes; n++) {
        if (!x->has_cpus[n])
            continue;
        for (int i = x->nlv - 1; i >= 0; i--) {
            bool all = true;
            for (uint32_t c = 0; c < x->m->ncpus && all; c++)
                if (t->cpus[c].node == n)
                    all = key(x, x->lv[i], c) == key(x, x->lv[i], x->rep[n]);
            if (all) {
                x->attach[n] = i;
                break;
            }
        }
        struct msg m = { .len = 0 };
        m_put(&m, "topology XML: the CPUs of NUMA node ");
        m_dec(&m, n);
        m_put(&m, " cut across packages, caches or cores; the node is attached to the smallest object holding them");
        m_send(x, &m);
    }
}

/* ---- writing ---------------------------------------------------------------------------- */

static const char *type_name(struct level l, char *buf)
{
    switch (l.kind) {
    case LV_PACKAGE: return "Package";
    case LV_GROUP: return "Group";
    case LV_CORE: return "Core";
    case LV_PU: return "PU";
    default: {
        /* L<n>Cache, L<n>iCache */
        size_t k = 0;
        buf[k++] = 'L';
        buf[k++] = (char)('0' + l.cache_level);
        if (l.cache_type == CACHE_INSTRUCTION)
            buf[k++] = 'i';
        const char *rest = "Cache";
        while (*rest)
            buf[k++] = *rest++;
        buf[k] = 0;
        return buf;
    }
    }
}

static uint64_t all_nodes(const struct xw *x)
{
    return x->nnodes >= 64 ? ~0ull : (1ull << x->nnodes) - 1;
}

static void write_node(struct xw *x, int depth, uint32_t n, const struct cpuset *cpus)
{
    windent(x, depth);
    w(x, "<object type=\"NUMANode\"");
    wattr_dec(x, "os_index", n);
    wcpuset(x, "cpuset", cpus);
    wcpuset(x, "complete_cpuset", cpus);
    wnodeset(x, "nodeset", 1ull << n);
    wnodeset(x, "complete_nodeset", 1ull << n);
    wattr_dec(x, "gp_index", x->gp++);
    if (x->m->acpi->nodes[n].mem_bytes)
        wattr_dec(x, "local_memory", x->m->acpi->nodes[n].mem_bytes);
    w(x, "/>\n");
}

static void write_package_info(struct xw *x, int depth)
{
    const struct topo_model *m = x->m;
    char b[21];
    if (m->vendor[0])
        winfo(x, depth, "CPUVendor", m->vendor);
    fmt_dec(b, m->family);
    winfo(x, depth, "CPUFamilyNumber", b);
    fmt_dec(b, m->model);
    winfo(x, depth, "CPUModelNumber", b);
    if (m->brand[0])
        winfo(x, depth, "CPUModel", m->brand);
    fmt_dec(b, m->stepping);
    winfo(x, depth, "CPUStepping", b);
}

/* The objects of level k inside `parent` (CPUs), at XML depth `depth`;
 * `inherited`: nodes attached to the ancestors. */
static void write_level(struct xw *x, int k, const struct cpuset *parent, int depth, uint64_t inherited)
{
    const struct level l = x->lv[k];
    struct cpuset done, s;
    set_clear(&done);
    for (uint32_t c0 = 0; c0 < x->m->ncpus; c0++) {
        if (!in_set(parent, c0) || in_set(&done, c0))
            continue;
        uint64_t k0 = key(x, l, c0);
        set_clear(&s);
        for (uint32_t c = c0; c < x->m->ncpus; c++)
            if (in_set(parent, c) && !in_set(&done, c) && key(x, l, c) == k0) {
                set_add(&s, c);
                set_add(&done, c);
            }
        if (l.kind == LV_GROUP && (k0 >= x->nnodes || !x->grouped[k0])) {
            /* This node hangs off another object: no Group here. */
            write_level(x, k + 1, &s, depth, inherited);
            continue;
        }
        uint64_t here = 0, below = 0;
        for (uint32_t n = 0; n < x->nnodes; n++) {
            if (!x->has_cpus[n] || !in_set(&s, x->rep[n]))
                continue;
            if (x->attach[n] == k)
                here |= 1ull << n;
            else if (x->attach[n] > k)
                below |= 1ull << n;
        }
        uint64_t nodes = inherited | here | below;
        char tb[16];
        windent(x, depth);
        w(x, "<object type=\"");
        w(x, type_name(l, tb));
        w(x, "\"");
        const struct topo_cpu_info *ci = &x->m->cpus[c0];
        if (l.kind == LV_PACKAGE)
            wattr_dec(x, "os_index", ci->package);
        else if (l.kind == LV_CORE)
            wattr_dec(x, "os_index", ci->core);
        else if (l.kind == LV_PU)
            wattr_dec(x, "os_index", c0);
        wcpuset(x, "cpuset", &s);
        wcpuset(x, "complete_cpuset", &s);
        wnodeset(x, "nodeset", nodes);
        wnodeset(x, "complete_nodeset", nodes);
        wattr_dec(x, "gp_index", x->gp++);
        if (l.kind == LV_CACHE) {
            const struct cpu_cache *cc = topo_cache_of(x->m, c0, l.cache_level, l.cache_type);
            wattr_dec(x, "cache_size", cc->size);
            wattr_dec(x, "depth", cc->level);
            wattr_dec(x, "cache_linesize", cc->line);
            wattr_dec(x, "cache_associativity", cc->ways);
            wattr_dec(x, "cache_type", cc->type == CACHE_UNIFIED ? 0 : cc->type);
        }
        if (l.kind == LV_PU) {
            w(x, "/>\n");
            continue;
        }
        w(x, ">\n");
        if (l.kind == LV_PACKAGE)
            write_package_info(x, depth + 1);
        for (uint32_t n = 0; n < x->nnodes; n++)
            if (here & (1ull << n))
                write_node(x, depth + 1, n, &s);
        write_level(x, k + 1, &s, depth + 1, inherited | here);
        windent(x, depth);
        w(x, "</object>\n");
    }
}

/* hwloc writes number lists in chunks of ten, each tagged with its length
 * in characters. */
static void write_numbers(struct xw *x, const char *tag, uint32_t count, uint64_t (*val)(const struct xw *, uint32_t))
{
    for (uint32_t i = 0; i < count; i += 10) {
        char line[10 * 21 + 1];
        size_t len = 0;
        for (uint32_t j = i; j < count && j < i + 10; j++) {
            len += fmt_dec(line + len, val(x, j));
            line[len++] = ' ';
        }
        line[len] = 0;
        w(x, "    <");
        w(x, tag);
        wattr_dec(x, "length", len);
        w(x, ">");
        w(x, line);
        w(x, "</");
        w(x, tag);
        w(x, ">\n");
    }
}

static uint64_t node_index(const struct xw *x, uint32_t i) { (void)x; return i; }

static uint64_t dist_value(const struct xw *x, uint32_t i)
{
    return x->m->acpi->dist[i / x->nnodes][i % x->nnodes];
}

void topo_xml_write(const struct topo_model *m, topo_xml_write_fn write, void *ctx, topo_warn_fn warn,
                    void *warn_ctx)
{
    struct xw x = { .m = m, .write = write, .ctx = ctx, .warn = warn, .warn_ctx = warn_ctx, .gp = 1 };
    const struct topology *t = m->acpi;
    build_levels(&x);
    place_nodes(&x);

    struct cpuset all;
    set_clear(&all);
    for (uint32_t c = 0; c < m->ncpus && c < TOPO_MAX_CPUS; c++)
        set_add(&all, c);
    w(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w(&x, "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n");
    w(&x, "<topology version=\"2.0\">\n");
    w(&x, "  <object type=\"Machine\" os_index=\"0\"");
    wcpuset(&x, "cpuset", &all);
    wcpuset(&x, "complete_cpuset", &all);
    wcpuset(&x, "allowed_cpuset", &all);
    wnodeset(&x, "nodeset", all_nodes(&x));
    wnodeset(&x, "complete_nodeset", all_nodes(&x));
    wnodeset(&x, "allowed_nodeset", all_nodes(&x));
    wattr_dec(&x, "gp_index", x.gp++);
    w(&x, ">\n");
    winfo(&x, 2, "Backend", "Atoll");
    winfo(&x, 2, "OSName", "Atoll");
    winfo(&x, 2, "Architecture", "x86_64");
    winfo(&x, 2, "AtollNUMASource", t->numa_from_srat ? "ACPI SRAT" : "none (no SRAT: one node)");
    winfo(&x, 2, "AtollDistanceSource",
          t->nnodes < 2 ? "none (one node)" : t->dist_from_slit ? "ACPI SLIT" : "none (no usable SLIT)");
    const char *src = "CPUID leaf 0xb";
    bool derived = false;
    for (uint32_t c = 0; c < m->ncpus; c++) {
        derived |= !m->cpus[c].reported;
        if (c == 0)
            src = m->cpus[0].source == CPU_SOURCE_LEAF_1F ? "CPUID leaf 0x1f"
                  : m->cpus[0].source == CPU_SOURCE_LEAF_B ? "CPUID leaf 0xb"
                  : m->cpus[0].source == CPU_SOURCE_LEAF1  ? "CPUID leaf 1"
                                                           : "APIC ids (no CPUID report)";
    }
    winfo(&x, 2, "AtollTopologySource", src);
    if (derived)
        winfo(&x, 2, "AtollTopologyNote", "some CPUs did not report; placed by their APIC ids");
    uint64_t mach = 0;
    for (uint32_t n = 0; n < x.nnodes; n++)
        if (x.attach[n] == ATTACH_MACHINE) {
            write_node(&x, 2, n, &all);
            mach |= 1ull << n;
        }
    if (m->ncpus)
        write_level(&x, 0, &all, 2, mach);
    w(&x, "  </object>\n");
    if (t->dist_from_slit && x.nnodes > 1) {
        w(&x, "  <distances2 type=\"NUMANode\"");
        wattr_dec(&x, "nbobjs", x.nnodes);
        w(&x, " kind=\"5\" name=\"NUMALatency\" indexing=\"os\">\n");
        write_numbers(&x, "indexes", x.nnodes, node_index);
        write_numbers(&x, "u64values", x.nnodes * x.nnodes, dist_value);
        w(&x, "  </distances2>\n");
    }
    w(&x, "</topology>\n");
}
