/*
 * Fuzz target: the topology service's reading of the machine frame
 * (servers/topo/model.c: machine_check, topo_model_from_machine) and what
 * it does with what it accepted: every question of if/topology.if for
 * every core and node, and the hwloc XML (servers/topo/topo_xml.c). The
 * input is a frame as the CPU driver writes it (<atoll/abi/machine.h>).
 *
 * Beyond not crashing: a frame machine_check accepts gives a model of
 * exactly its CPUs, every core on an existing node, every question about a
 * core or node the machine has answered and every other refused, the
 * nearest-first orders permutations of what was asked, nearest first by
 * distance, and the XML well nested. The corpus holds frames of the
 * machines the host tests use (`replay_machine --make-corpus`).
 */
#include <string.h>
#include "model.h"
#include "topo_xml.h"
#include "fuzz.h"

static struct topo_model model;
static struct topo_cpu_info infos[TOPO_MAX_CPUS];

static void check_warning(void *ctx, const char *msg)
{
    (void)ctx;
    FUZZ_ASSERT(msg && *msg && strlen(msg) < 240);
}

struct nesting {
    long depth, bytes;
    char last;
};

static void sink(void *ctx, const char *s, size_t n)
{
    struct nesting *x = ctx;
    for (size_t i = 0; i < n; i++) {
        FUZZ_ASSERT(s[i] != 0);
        if (x->last == '<' && s[i] == '/')
            x->depth -= 2;        /* "</x>": the '<' counted, and an element closed */
        else if (x->last == '<' && (s[i] == '?' || s[i] == '!'))
            x->depth--;           /* "<?xml", "<!DOCTYPE": open nothing */
        if (s[i] == '<')
            x->depth++;
        if (x->last == '/' && s[i] == '>')
            x->depth--;           /* "/>": closes itself */
        FUZZ_ASSERT(x->depth >= 0);
        x->last = s[i];
    }
    x->bytes += (long)n;
}

int fuzz_one(const uint8_t *data, size_t size)
{
    const struct machine *m = (const struct machine *)data;
    if (machine_check(m, size) != ERR_OK)
        return 0;
    topo_model_from_machine(&model, m, infos, check_warning, 0);
    const struct topology *t = model.acpi;
    FUZZ_ASSERT(model.ncpus == m->ncpus && model.npackages >= 1 && model.npackages <= model.ncpus);
    FUZZ_ASSERT(model.ncores >= model.npackages && model.ncores <= model.ncpus);
    struct topo_coreset all = { { 0 } };
    for (uint32_t c = 0; c < model.ncpus; c++)
        topo_coreset_add(&all, c);
    static uint16_t order[TOPO_MAX_CPUS];
    uint32_t v, n;
    for (uint32_t c = 0; c < model.ncpus; c += 1 + model.ncpus / 16) {
        FUZZ_ASSERT(topo_model_node_of_core(&model, c, &v) == ERR_OK && v < t->nnodes);
        FUZZ_ASSERT(topo_model_shared_level(&model, c, c, &v) == ERR_OK);
        FUZZ_ASSERT(topo_model_nearest_cores(&model, c, &all, order, &n) == ERR_OK && n == model.ncpus);
        FUZZ_ASSERT(order[0] == c);
        uint32_t home = t->cpus[c].node;
        for (uint32_t i = 1; i < n; i++)
            FUZZ_ASSERT(t->dist[home][t->cpus[order[i - 1]].node] <= t->dist[home][t->cpus[order[i]].node]);
        uint32_t ncaches;
        const struct cpu_cache *k = topo_caches_of(&model, c, &ncaches);
        for (uint32_t i = 0; i < ncaches; i++) {
            struct topo_coreset sharers;
            topo_cache_sharers(&model, c, &k[i], &sharers);
            FUZZ_ASSERT(topo_coreset_has(&sharers, c));
            FUZZ_ASSERT(topo_cache_instances(&model, &k[i]) >= 1);
        }
    }
    FUZZ_ASSERT(topo_model_node_of_core(&model, model.ncpus, &v) == ERR_NO_SUCH_CORE);
    FUZZ_ASSERT(topo_model_distance(&model, 0, t->nnodes, &v) == ERR_NO_SUCH_NODE);
    static uint8_t nodes[TOPO_MAX_NODES];
    uint64_t every = t->nnodes >= 64 ? ~0ull : (1ull << t->nnodes) - 1;
    FUZZ_ASSERT(topo_model_nearest_nodes(&model, t->nnodes - 1, every, nodes, &n) == ERR_OK && n == t->nnodes);
    FUZZ_ASSERT(nodes[0] == t->nnodes - 1);
    struct nesting x = { 0, 0, 0 };
    topo_xml_write(&model, sink, &x, check_warning, 0);
    FUZZ_ASSERT(x.depth == 0 && x.bytes > 0);
    return 1;
}

#ifdef FUZZ_MAKE_CORPUS
/* A frame of `ncpus` CPUs (APIC id = core id, `smt`/`pkg` shifts, QEMU
 * TCG's caches) on `nnodes` nodes of equal blocks, with distances 10 local
 * and 20 + i + j remote. */
static struct machine *frame(uint32_t ncpus, uint32_t nnodes, uint8_t smt, uint8_t pkg, size_t *bytes)
{
    *bytes = MACHINE_BYTES(ncpus);
    struct machine *m = calloc(1, *bytes);
    *m = (struct machine){ .magic = MACHINE_MAGIC, .version = MACHINE_VERSION, .bytes = (uint32_t)*bytes,
                           .ncpus = ncpus };
    snprintf(m->ident.vendor, sizeof m->ident.vendor, "AuthenticAMD");
    snprintf(m->ident.brand, sizeof m->ident.brand, "QEMU TCG CPU version 2.5+");
    struct topology *t = &m->topo;
    t->ncpus = ncpus;
    t->nnodes = nnodes;
    t->numa_from_srat = t->dist_from_slit = nnodes > 1;
    for (uint32_t c = 0; c < ncpus; c++) {
        uint32_t node = c * nnodes / ncpus;
        t->cpus[c] = (struct topo_cpu){ .apic_id = c, .node = node };
        t->nodes[node].ncpus++;
        struct cpu_place *p = &m->records[c].place;
        *p = (struct cpu_place){ .apic_id = c, .smt_shift = smt, .package_shift = pkg, .source = CPU_SOURCE_LEAF_B };
        cpu_place_derive(p);
        p->caches[p->ncaches++] = (struct cpu_cache){ 65536, 64, 2, 1, CACHE_DATA, smt };
        p->caches[p->ncaches++] = (struct cpu_cache){ 65536, 64, 2, 1, CACHE_INSTRUCTION, smt };
        p->caches[p->ncaches++] = (struct cpu_cache){ 524288, 64, 16, 2, CACHE_UNIFIED, smt };
        p->caches[p->ncaches++] = (struct cpu_cache){ 16 << 20, 64, 16, 3, CACHE_UNIFIED, pkg };
        m->records[c].reported = 1;
    }
    for (uint32_t i = 0; i < nnodes; i++) {
        t->nodes[i].domain = i;
        t->nodes[i].mem_bytes = 256ull << 20;
        for (uint32_t j = 0; j < nnodes; j++)
            t->dist[i][j] = i == j ? 10 : (uint8_t)(20 + i + j);
    }
    return m;
}

static void save(const char *dir, const char *name, struct machine *m, size_t bytes)
{
    FUZZ_ASSERT(fuzz_one((const uint8_t *)m, bytes) == 1);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_ASSERT(f != NULL);
    fwrite(m, 1, bytes, f);
    fclose(f);
    free(m);
}

int fuzz_make_corpus(const char *dir)
{
    size_t bytes;
    struct machine *m = frame(1, 1, 0, 0, &bytes);
    save(dir, "one-cpu", m, bytes);
    m = frame(16, 4, 1, 3, &bytes);
    save(dir, "pack2-core4-pu2-numa4", m, bytes);
    m = frame(8, 2, 0, 2, &bytes);
    m->records[3] = (struct machine_record){ 0 };        /* a core that never checked in */
    m->records[5].place.caches[2].type = 4;               /* a record the service leaves out */
    save(dir, "pack2-core4-unreported", m, bytes);
    m = frame(6, 3, 1, 1, &bytes);
    m->topo.dist[2][0] = 40;                              /* an asymmetric SLIT */
    save(dir, "pack3-core1-pu2-asymmetric", m, bytes);
    return 0;
}
#endif
