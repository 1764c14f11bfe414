/* The machine model at boot; see topo_report.h. */
#include "topo_report.h"
#include "console.h"
#include "core.h"
#include "lib.h"
#include "report.h"
#include "topo_xml.h"
#include "x86_64/cpuid_topo.h"

/* The boot core's private state (every core has a copy; only core 0's is used). */
static struct topo_model *model;     /* in the boot core's arena */
static bool finished;

static void warn(void *ctx, const char *msg)
{
    (void)ctx;
    kprintf("warning: %s\n", msg);
    struct event e;
    event_begin(&e, "warning");
    event_str(&e, "msg", msg);
    event_end(&e);
}

static void print_place(const struct cpu_place *p)
{
    char line[CPU_PLACE_EVENT_MAX];
    size_t n = cpu_place_format_event(p, core.core_id, line, sizeof line);
    if (n)
        console_write(line, n);
}

void cputopo_report_self(void)
{
    struct cpu_place p;
    cpuid_topo_self(&p, 0);
    print_place(&p);
}

void cputopo_boot_start(const struct topology *t)
{
    struct cpu_place p;
    struct cpuid_ident id;
    cpuid_topo_self(&p, &id);
    uint64_t size = sizeof(struct topo_model) + (uint64_t)t->ncpus * sizeof(struct topo_cpu_info);
    model = core_arena_alloc(size);
    if (!model) {
        warn(0, "no memory in the boot core's arena for the topology model; no topology summary or XML");
    } else {
        topo_model_init(model, t, (struct topo_cpu_info *)(model + 1));
        memcpy(model->vendor, id.vendor, sizeof model->vendor);
        memcpy(model->brand, id.brand, sizeof model->brand);
        model->family = id.family;
        model->model = id.model;
        model->stepping = id.stepping;
        topo_model_set(model, 0, &p, warn, 0);
    }
    print_place(&p);
}

void cputopo_note_line(uint32_t core_id, const char *line, size_t len)
{
    struct cpu_place p;
    uint32_t said;
    if (!model || finished || !cpu_place_parse_event(line, len, &said, &p))
        return;
    if (said != core_id) {
        char msg[128];
        snprintf(msg, sizeof msg, "core %u sent a CPUID topology report for core %u; ignored", core_id, said);
        warn(0, msg);
        return;
    }
    topo_model_set(model, core_id, &p, warn, 0);
}

const struct topo_model *cputopo_model(void)
{
    return finished ? model : 0;
}

/* "64 KiB", "16 MiB" */
static int fmt_bytes(char *buf, size_t size, uint64_t v)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB" };
    int u = 0;
    while (u < 3 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    return snprintf(buf, size, "%llu %s", (unsigned long long)v, units[u]);
}

/* Instances of core 0's cache i across the machine. */
static uint32_t cache_instances(const struct topo_model *m, const struct cpu_cache *c)
{
    uint32_t n = 0;
    for (uint32_t a = 0; a < m->ncpus; a++) {
        const struct cpu_cache *ca = topo_cache_of(m, a, c->level, c->type);
        if (!ca)
            continue;
        bool first = true;
        for (uint32_t b = 0; b < a && first; b++) {
            const struct cpu_cache *cb = topo_cache_of(m, b, c->level, c->type);
            if (cb && cb->shift == ca->shift &&
                (ca->shift >= 32 || (m->cpus[a].apic_id >> ca->shift) == (m->cpus[b].apic_id >> cb->shift)))
                first = false;
        }
        n += first;
    }
    return n;
}

static const char *cache_suffix(uint8_t type)
{
    return type == CACHE_DATA ? "d" : type == CACHE_INSTRUCTION ? "i" : "";
}

static void print_summary(const struct topo_model *m)
{
    const struct topo_cache_set *s = &m->sets[m->cpus[0].cache_set];
    char caches[256];
    size_t len = 0;
    caches[0] = 0;
    for (uint32_t i = 0; i < s->ncaches && len < sizeof caches - 40; i++) {
        const struct cpu_cache *c = &s->caches[i];
        char size[24];
        fmt_bytes(size, sizeof size, c->size);
        len += (size_t)snprintf(caches + len, sizeof caches - len, "%sL%u%s %s x%u", i ? ", " : "", c->level,
                                cache_suffix(c->type), size, cache_instances(m, c));
    }
    const char *src = m->cpus[0].source == CPU_SOURCE_LEAF_1F ? "cpuid.0x1f"
                      : m->cpus[0].source == CPU_SOURCE_LEAF_B ? "cpuid.0xb"
                      : m->cpus[0].source == CPU_SOURCE_LEAF1  ? "cpuid.1"
                                                               : "none";
    kprintf("topology: %u package%s, %u core%s, %u PU%s, %u NUMA node%s (%s %s, %s); caches %s\n",
            m->npackages, m->npackages == 1 ? "" : "s", m->ncores, m->ncores == 1 ? "" : "s", m->ncpus,
            m->ncpus == 1 ? "" : "s", m->acpi->nnodes, m->acpi->nnodes == 1 ? "" : "s", m->vendor, m->brand,
            src, len ? caches : "none reported");
    struct event e;
    event_begin(&e, "topology");
    event_u64(&e, "packages", m->npackages);
    event_u64(&e, "cores", m->ncores);
    event_u64(&e, "pus", m->ncpus);
    event_u64(&e, "nodes", m->acpi->nnodes);
    event_str(&e, "source", src);
    event_str(&e, "vendor", m->vendor);
    event_str(&e, "brand", m->brand);
    event_array_begin(&e, "caches");
    for (uint32_t i = 0; i < s->ncaches; i++) {
        const struct cpu_cache *c = &s->caches[i];
        event_array_begin(&e, 0);
        event_elem_u64(&e, c->level);
        event_elem_u64(&e, c->type);
        event_elem_u64(&e, c->size);
        event_elem_u64(&e, cache_instances(m, c));
        event_array_end(&e);
    }
    event_array_end(&e);
    event_end(&e);
}

struct xml_count {
    uint64_t bytes, lines;
};

static void count_sink(void *ctx, const char *s, size_t n)
{
    struct xml_count *c = ctx;
    c->bytes += n;
    for (size_t i = 0; i < n; i++)
        c->lines += s[i] == '\n';
}

static void console_sink(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    console_write(s, n);
}

static void xml_marker(const char *name, const struct xml_count *c)
{
    struct event e;
    event_begin(&e, name);
    event_u64(&e, "bytes", c->bytes);
    event_u64(&e, "lines", c->lines);
    event_end(&e);
}

void cputopo_boot_finish(bool xml)
{
    if (!model || finished)
        return;
    topo_model_finish(model, warn, 0);
    finished = true;
    print_summary(model);
    if (!xml)
        return;
    /* A dry run first: its warnings go out before the XML, not inside it,
     * and the markers can say how long the XML is. */
    struct xml_count c = { 0, 0 };
    topo_xml_write(model, count_sink, &c, warn, 0);
    xml_marker("topology_xml_begin", &c);
    topo_xml_write(model, console_sink, 0, 0, 0);
    xml_marker("topology_xml_end", &c);
}
