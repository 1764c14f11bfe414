/*
 * Machine topology from MADT, SRAT and SLIT; see topology.h.
 *
 * Firmware tables often disagree with each other in small ways. Only what
 * makes any model impossible is an error; everything else becomes a warning
 * sentence plus a documented fallback, so the machine still boots and the
 * log says what the firmware got wrong.
 *
 * The result lives in the caller's struct topology; this file keeps nothing
 * large on the stack (the CPU driver runs on 16 KiB stacks).
 */
#include <stdarg.h>
#include "topology.h"

#define LOCAL_DISTANCE  10
#define REMOTE_DISTANCE 20
#define MSG_MAX         160
#define FALLBACK_DIST   "; using distances 10 local, 20 remote"

/* ---- warnings ----------------------------------------------------------- */

struct warner {
    topo_warn_fn fn;
    void *ctx;
};

struct msg {
    char buf[MSG_MAX];
    size_t len;
};

static void msg_char(struct msg *m, char c)
{
    if (m->len < MSG_MAX - 1)   /* truncate rather than overflow; keep the NUL */
        m->buf[m->len++] = c;
}

static void msg_dec(struct msg *m, uint64_t v)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        msg_char(m, digits[--n]);
}

static void msg_hex(struct msg *m, uint64_t v)
{
    msg_char(m, '0');
    msg_char(m, 'x');
    int shift = 60;
    while (shift > 0 && !(v >> shift))
        shift -= 4;
    for (; shift >= 0; shift -= 4)
        msg_char(m, "0123456789abcdef"[(v >> shift) & 0xf]);
}

/*
 * Format and report one warning. Only two conversions, enough for our
 * sentences: %u takes an unsigned int (uint32_t), %x a uint64_t printed as
 * 0x-prefixed hex.
 */
static void warnf(const struct warner *w, const char *fmt, ...)
{
    if (!w->fn)
        return;
    struct msg m = { .len = 0 };
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        if (f[0] == '%' && f[1] == 'u') {
            msg_dec(&m, va_arg(ap, unsigned int));
            f++;
        } else if (f[0] == '%' && f[1] == 'x') {
            msg_hex(&m, va_arg(ap, uint64_t));
            f++;
        } else {
            msg_char(&m, *f);
        }
    }
    va_end(ap);
    m.buf[m.len] = '\0';
    w->fn(w->ctx, m.buf);
}

/* ---- CPUs ---------------------------------------------------------------- */

/* A count from the caller is trusted only up to the array it describes. */
static size_t madt_count(const struct acpi_madt_info *madt)
{
    return madt->ncpus < ACPI_MAX_CPUS ? madt->ncpus : ACPI_MAX_CPUS;
}

static errval_t add_cpu(struct topology *out, uint32_t apic_id)
{
    for (uint32_t i = 0; i < out->ncpus; i++)
        if (out->cpus[i].apic_id == apic_id)
            return ERR_DUPLICATE;
    out->cpus[out->ncpus++] = (struct topo_cpu){ .apic_id = apic_id, .node = 0 };
    return ERR_OK;
}

/* Enabled MADT CPUs, the boot CPU first so that it is core 0. */
static errval_t collect_cpus(const struct acpi_madt_info *madt, uint32_t boot_apic_id,
                             struct topology *out)
{
    size_t n = madt_count(madt);
    bool any = false, boot = false;
    for (size_t i = 0; i < n; i++) {
        if (!madt->cpus[i].enabled)
            continue;
        any = true;
        boot |= madt->cpus[i].apic_id == boot_apic_id;
    }
    if (!any)
        return ERR_TOPO_NO_CPUS;
    if (!boot)
        return ERR_TOPO_NO_BOOT_CPU;
    out->cpus[0] = (struct topo_cpu){ .apic_id = boot_apic_id, .node = 0 };
    out->ncpus = 1;
    bool boot_seen = false;   /* its own MADT entry is not a duplicate; a second one is */
    for (size_t i = 0; i < n; i++) {
        const struct acpi_cpu *c = &madt->cpus[i];
        if (!c->enabled)
            continue;
        if (c->apic_id == boot_apic_id && !boot_seen) {
            boot_seen = true;
            continue;
        }
        errval_t err = add_cpu(out, c->apic_id);
        if (err)
            return err;
    }
    return ERR_OK;
}

/* Is `apic_id` in the MADT at all, enabled or not? A disabled entry is a
 * CPU that may be hot-added later, which SRAT legitimately describes. */
static bool madt_has(const struct acpi_madt_info *madt, uint32_t apic_id)
{
    for (size_t i = 0; i < madt_count(madt); i++)
        if (madt->cpus[i].apic_id == apic_id)
            return true;
    return false;
}

/* The first SRAT entry for `apic_id`, or NULL. */
static const struct acpi_srat_cpu *srat_cpu(const struct acpi_srat_info *srat, uint32_t apic_id)
{
    size_t n = srat->ncpus < ACPI_MAX_CPUS ? srat->ncpus : ACPI_MAX_CPUS;
    for (size_t i = 0; i < n; i++)
        if (srat->cpus[i].apic_id == apic_id)
            return &srat->cpus[i];
    return NULL;
}

static void check_srat_cpus(const struct acpi_madt_info *madt, const struct acpi_srat_info *srat,
                            const struct warner *w)
{
    size_t n = srat->ncpus < ACPI_MAX_CPUS ? srat->ncpus : ACPI_MAX_CPUS;
    for (size_t i = 0; i < n; i++) {
        const struct acpi_srat_cpu *c = &srat->cpus[i];
        const struct acpi_srat_cpu *first = srat_cpu(srat, c->apic_id);
        if (!madt_has(madt, c->apic_id))
            warnf(w, "SRAT lists CPU with APIC id %u that MADT lacks; ignored", c->apic_id);
        else if (first != c && first->domain != c->domain)
            warnf(w, "SRAT places CPU with APIC id %u in domains %u and %u; using domain %u",
                  c->apic_id, first->domain, c->domain, first->domain);
    }
}

/* ---- nodes and memory ---------------------------------------------------- */

/* Memory that counts for the model: SRAT already dropped disabled entries;
 * hot-pluggable ranges describe memory that is not there yet. */
static bool mem_usable(const struct acpi_srat_mem *m)
{
    return !m->hotplug && m->len > 0;
}

static size_t srat_nmem(const struct acpi_srat_info *srat)
{
    return srat->nmem < ACPI_MAX_MEM ? srat->nmem : ACPI_MAX_MEM;
}

/* Insert `domain` into the sorted node list unless it is there already. */
static errval_t add_domain(struct topology *out, uint32_t domain)
{
    uint32_t i = 0;
    while (i < out->nnodes && out->nodes[i].domain < domain)
        i++;
    if (i < out->nnodes && out->nodes[i].domain == domain)
        return ERR_OK;
    if (out->nnodes == TOPO_MAX_NODES)
        return ERR_TOO_MANY;
    for (uint32_t j = out->nnodes; j > i; j--)
        out->nodes[j] = out->nodes[j - 1];
    out->nodes[i] = (struct topo_node){ .domain = domain };
    out->nnodes++;
    return ERR_OK;
}

/* Node index of a domain that add_domain has seen. */
static uint32_t node_of_domain(const struct topology *out, uint32_t domain)
{
    for (uint32_t i = 0; i < out->nnodes; i++)
        if (out->nodes[i].domain == domain)
            return i;
    return 0;
}

/* Nodes are the domains of the enabled CPUs and of the usable memory. */
static errval_t collect_domains(const struct acpi_srat_info *srat, struct topology *out)
{
    for (uint32_t i = 0; i < out->ncpus; i++) {
        const struct acpi_srat_cpu *c = srat_cpu(srat, out->cpus[i].apic_id);
        errval_t err = c ? add_domain(out, c->domain) : ERR_OK;
        if (err)
            return err;
    }
    for (size_t i = 0; i < srat_nmem(srat); i++) {
        if (!mem_usable(&srat->mem[i]))
            continue;
        errval_t err = add_domain(out, srat->mem[i].domain);
        if (err)
            return err;
    }
    return ERR_OK;
}

/* Usable SRAT ranges sorted by base. Overlaps within one domain are merged
 * (harmless duplication); across domains the same byte would belong to two
 * nodes, which no fallback can repair. */
static errval_t collect_ranges(const struct acpi_srat_info *srat, struct topology *out,
                               const struct warner *w)
{
    out->nranges = 0;
    for (size_t i = 0; i < srat_nmem(srat); i++) {
        const struct acpi_srat_mem *m = &srat->mem[i];
        if (!mem_usable(m))
            continue;
        if (m->len - 1 > UINT64_MAX - m->base)
            return ERR_INVALID_ARG;   /* acpi_parse_srat never produces this */
        uint32_t j = out->nranges;
        for (; j > 0 && out->ranges[j - 1].base > m->base; j--)
            out->ranges[j] = out->ranges[j - 1];
        out->ranges[j] = (struct topo_range){
            .base = m->base, .len = m->len, .node = node_of_domain(out, m->domain),
        };
        out->nranges++;
    }

    uint32_t kept = 0;
    for (uint32_t i = 0; i < out->nranges; i++) {
        struct topo_range r = out->ranges[i];
        struct topo_range *prev = kept ? &out->ranges[kept - 1] : NULL;
        uint64_t prev_last = prev ? prev->base + (prev->len - 1) : 0;
        if (!prev || r.base > prev_last) {
            out->ranges[kept++] = r;
            continue;
        }
        if (r.node != prev->node)
            return ERR_OVERLAP;
        uint32_t domain = out->nodes[r.node].domain;
        warnf(w, "SRAT memory ranges at %x and %x of domain %u overlap; merged",
              prev->base, r.base, domain);
        uint64_t last = r.base + (r.len - 1);
        if (last > prev_last)
            prev->len = last - prev->base + 1;
    }
    out->nranges = kept;
    return ERR_OK;
}

static void place_cpus(const struct acpi_srat_info *srat, struct topology *out,
                       const struct warner *w)
{
    for (uint32_t i = 0; i < out->ncpus; i++) {
        struct topo_cpu *c = &out->cpus[i];
        const struct acpi_srat_cpu *s = srat_cpu(srat, c->apic_id);
        if (s) {
            c->node = node_of_domain(out, s->domain);
        } else {
            c->node = 0;
            warnf(w, "MADT lists CPU with APIC id %u that SRAT lacks; placed on node 0 (domain %u)",
                  c->apic_id, out->nodes[0].domain);
        }
        out->nodes[c->node].ncpus++;
    }
}

static void count_memory(struct topology *out, const struct warner *w)
{
    for (uint32_t i = 0; i < out->nranges; i++)
        out->nodes[out->ranges[i].node].mem_bytes += out->ranges[i].len;
    for (uint32_t i = 0; i < out->nnodes; i++) {
        const struct topo_node *n = &out->nodes[i];
        if (n->ncpus && !n->mem_bytes)
            warnf(w, "NUMA node %u (domain %u) has CPUs but no memory; kept as is", i, n->domain);
        else if (!n->ncpus && n->mem_bytes)
            warnf(w, "NUMA node %u (domain %u) has memory but no CPUs; kept as is", i, n->domain);
    }
}

/* NUMA from SRAT. Leaves out->nnodes at 0 when SRAT describes nothing the
 * model can use, so the caller falls back to a single node. */
static errval_t build_numa(const struct acpi_madt_info *madt, const struct acpi_srat_info *srat,
                           struct topology *out, const struct warner *w)
{
    check_srat_cpus(madt, srat, w);
    errval_t err = collect_domains(srat, out);
    if (err)
        return err;
    if (out->nnodes == 0) {
        warnf(w, "SRAT gives no domain for any enabled CPU or memory; treating the machine as one node");
        return ERR_OK;
    }
    err = collect_ranges(srat, out, w);
    if (err)
        return err;
    place_cpus(srat, out, w);
    count_memory(out, w);
    out->numa_from_srat = true;
    return ERR_OK;
}

/* No usable SRAT: one node, domain 0, with every CPU and (implicitly, as
 * nranges is 0) all memory; mem_bytes stays 0 because no range is known. */
static void single_node(struct topology *out)
{
    out->nnodes = 1;
    out->nodes[0] = (struct topo_node){ .domain = 0, .ncpus = out->ncpus, .mem_bytes = 0 };
    out->nranges = 0;
    for (uint32_t i = 0; i < out->ncpus; i++)
        out->cpus[i].node = 0;
}

/* ---- distances ----------------------------------------------------------- */

/* Is the SLIT usable for our nodes? SLIT localities are proximity domains,
 * so it must cover domains 0 .. highest exactly (with dense domains, as QEMU
 * and most firmware number them, that is the number of SRAT domains). */
static bool slit_ok(const struct acpi_slit_info *slit, const struct topology *out,
                    const struct warner *w)
{
    uint64_t need = (uint64_t)out->nodes[out->nnodes - 1].domain + 1;
    if (!out->numa_from_srat && slit->n != 1) {
        warnf(w, "SLIT has %u localities but without SRAT the machine is one node" FALLBACK_DIST,
              slit->n);
        return false;
    }
    if (slit->n != need || slit->n > ACPI_MAX_DOMAINS) {
        warnf(w, "SLIT has %u localities but SRAT domains run from 0 to %u" FALLBACK_DIST,
              slit->n, (unsigned)(need - 1));
        return false;
    }
    for (uint32_t i = 0; i < slit->n; i++) {
        for (uint32_t j = 0; j < slit->n; j++) {
            unsigned d = slit->dist[i][j];
            if (i == j && d != LOCAL_DISTANCE) {
                warnf(w, "SLIT gives locality %u a distance of %u to itself, not 10" FALLBACK_DIST,
                      i, d);
                return false;
            }
            if (i != j && (d < LOCAL_DISTANCE + 1 || d == 255)) {
                warnf(w, "SLIT distance from locality %u to %u is %u, outside 11..254" FALLBACK_DIST,
                      i, j, d);
                return false;
            }
        }
    }
    return true;
}

static void build_distances(const struct acpi_slit_info *slit, struct topology *out,
                            const struct warner *w)
{
    out->dist_from_slit = slit && slit_ok(slit, out, w);
    for (uint32_t i = 0; i < out->nnodes; i++) {
        for (uint32_t j = 0; j < out->nnodes; j++) {
            if (out->dist_from_slit)
                out->dist[i][j] = slit->dist[out->nodes[i].domain][out->nodes[j].domain];
            else
                out->dist[i][j] = i == j ? LOCAL_DISTANCE : REMOTE_DISTANCE;
        }
    }
}

/* ---- interface ----------------------------------------------------------- */

errval_t topo_build(const struct acpi_madt_info *madt, const struct acpi_srat_info *srat,
                    const struct acpi_slit_info *slit, uint32_t boot_apic_id,
                    struct topology *out, topo_warn_fn warn, void *warn_ctx)
{
    if (!madt || !out)
        return ERR_INVALID_ARG;
    const struct warner w = { .fn = warn, .ctx = warn_ctx };
    out->ncpus = 0;
    out->nnodes = 0;
    out->nranges = 0;
    out->dist_from_slit = false;
    out->numa_from_srat = false;

    errval_t err = collect_cpus(madt, boot_apic_id, out);
    if (err)
        return err;
    if (srat) {
        err = build_numa(madt, srat, out, &w);
        if (err)
            return err;
    }
    if (out->nnodes == 0)
        single_node(out);
    build_distances(slit, out, &w);
    return ERR_OK;
}

uint32_t topo_node_of_addr(const struct topology *t, uint64_t phys)
{
    if (!t)
        return 0;
    for (uint32_t i = 0; i < t->nranges && i < TOPO_MAX_RANGES; i++) {
        const struct topo_range *r = &t->ranges[i];
        if (phys >= r->base && phys - r->base < r->len)
            return r->node;
    }
    return 0;
}

int topo_core_of_apic(const struct topology *t, uint32_t apic_id)
{
    if (!t)
        return -1;
    for (uint32_t i = 0; i < t->ncpus && i < TOPO_MAX_CPUS; i++)
        if (t->cpus[i].apic_id == apic_id)
            return (int)i;
    return -1;
}

uint32_t topo_cpus_on_node(const struct topology *t, uint32_t node)
{
    uint32_t count = 0;
    for (uint32_t c = 0; c < t->ncpus; c++)
        count += t->cpus[c].node == node;
    return count;
}
