/*
 * Host unit tests for the topology service's model (servers/topo/model.c)
 * built from the machine frame (<atoll/abi/machine.h>): every way a frame can be
 * malformed, records that are wrong or missing, and the questions the
 * service answers (node of a core, distances, shared caches, nearest-first
 * orders of cores and nodes), with the errors for cores and nodes the
 * machine does not have.
 *
 * The machine: 16 logical CPUs as QEMU numbers them for -smp
 * 16,sockets=2,cores=4,threads=2 (APIC id = core id; SMT shift 1, package
 * shift 3), QEMU TCG's caches (L1d, L1i, L2 per core, L3 per package), and
 * four nodes of four CPUs with a non-default, partly asymmetric SLIT.
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "model.h"

#define NCPUS 16
#define NNODES 4

static struct machine *frame;
static size_t frame_bytes;
static struct topo_model model;
static struct topo_cpu_info infos[TOPO_MAX_CPUS];

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

/*            to: 0   1   2   3 */
static const uint8_t slit[NNODES][NNODES] = {
    { 10, 30, 15, 40 },
    { 30, 10, 25, 12 },
    { 15, 25, 10, 35 },
    { 40, 36, 35, 10 },   /* 3 -> 1 is 36, but 1 -> 3 is 12 */
};

static struct cpu_place place_of(uint32_t apic)
{
    struct cpu_place p = { .apic_id = apic, .smt_shift = 1, .package_shift = 3, .source = CPU_SOURCE_LEAF_B };
    cpu_place_derive(&p);
    p.caches[p.ncaches++] = (struct cpu_cache){ 65536, 64, 2, 1, CACHE_DATA, 1 };
    p.caches[p.ncaches++] = (struct cpu_cache){ 65536, 64, 2, 1, CACHE_INSTRUCTION, 1 };
    p.caches[p.ncaches++] = (struct cpu_cache){ 524288, 64, 16, 2, CACHE_UNIFIED, 1 };
    p.caches[p.ncaches++] = (struct cpu_cache){ 16 << 20, 64, 16, 3, CACHE_UNIFIED, 3 };
    return p;
}

/* A well-formed frame of the machine above, every core reported. */
static void make_frame(void)
{
    free(frame);
    frame_bytes = MACHINE_BYTES(NCPUS);
    frame = calloc(1, frame_bytes);
    frame->magic = MACHINE_MAGIC;
    frame->version = MACHINE_VERSION;
    frame->bytes = (uint32_t)frame_bytes;
    frame->ncpus = NCPUS;
    snprintf(frame->ident.vendor, sizeof frame->ident.vendor, "AuthenticAMD");
    snprintf(frame->ident.brand, sizeof frame->ident.brand, "QEMU TCG CPU version 2.5+");
    frame->ident.family = 15;
    struct topology *t = &frame->topo;
    t->ncpus = NCPUS;
    t->nnodes = NNODES;
    t->numa_from_srat = t->dist_from_slit = true;
    for (uint32_t c = 0; c < NCPUS; c++) {
        t->cpus[c] = (struct topo_cpu){ .apic_id = c, .node = c / 4 };
        frame->records[c].reported = 1;
        frame->records[c].place = place_of(c);
    }
    for (uint32_t n = 0; n < NNODES; n++) {
        t->nodes[n] = (struct topo_node){ .domain = n, .ncpus = 4, .mem_bytes = 256ull << 20 };
        t->ranges[t->nranges++] = (struct topo_range){ .base = (uint64_t)n << 28, .len = 256ull << 20, .node = n };
        for (uint32_t k = 0; k < NNODES; k++)
            t->dist[n][k] = slit[n][k];
    }
}

static void build(void)
{
    warnings.n = 0;
    CHECK_ERR(machine_check(frame, frame_bytes), ERR_OK);
    topo_model_from_machine(&model, frame, infos, record_warning, &warnings);
}

static void test_frame_checks(void)
{
    make_frame();
    CHECK_ERR(machine_check(frame, frame_bytes), ERR_OK);
    CHECK_ERR(machine_check(frame, sizeof *frame - 1), ERR_TRUNCATED);
    CHECK_ERR(machine_check(frame, frame_bytes - 1), ERR_TRUNCATED);     /* the last record cut */

    /* One fault at a time, each on a fresh frame. */
#define BAD(change, want)                                   \
    do {                                                    \
        make_frame();                                       \
        change;                                             \
        CHECK_ERR(machine_check(frame, frame_bytes), want); \
    } while (0)
    BAD(frame->magic ^= 1, ERR_BAD_SIGNATURE);
    BAD(frame->version = 2, ERR_BAD_VERSION);
    BAD(frame->ncpus = 0, ERR_BAD_LENGTH);
    BAD(frame->ncpus = 15, ERR_BAD_LENGTH);                         /* disagrees with ACPI's 16 */
    BAD((frame->ncpus = frame->topo.ncpus = TOPO_MAX_CPUS + 1), ERR_BAD_LENGTH);
    BAD((frame->ncpus = frame->topo.ncpus = 17), ERR_TRUNCATED);    /* records past the end */
    BAD(frame->bytes += 8, ERR_BAD_LENGTH);
    BAD(frame->topo.nnodes = 0, ERR_BAD_LENGTH);
    BAD(frame->topo.nnodes = TOPO_MAX_NODES + 1, ERR_BAD_LENGTH);
    BAD(frame->topo.nranges = TOPO_MAX_RANGES + 1, ERR_BAD_LENGTH);
    BAD(frame->topo.cpus[7].node = 4, ERR_INCONSISTENT);            /* no node 4 */
    BAD(frame->topo.nodes[2].ncpus = 5, ERR_INCONSISTENT);
    BAD(frame->topo.dist[1][1] = 20, ERR_INCONSISTENT);
    BAD(frame->topo.dist[0][3] = 255, ERR_INCONSISTENT);
    BAD(frame->topo.dist[2][0] = 10, ERR_INCONSISTENT);
    BAD(frame->topo.ranges[1].node = 9, ERR_INCONSISTENT);
    BAD(frame->topo.ranges[0].base = ~0ull, ERR_INCONSISTENT);      /* wraps */
    BAD(memset(&frame->topo.dist_from_slit, 2, 1), ERR_INCONSISTENT);
    BAD(memset(frame->ident.vendor, 'A', sizeof frame->ident.vendor), ERR_INCONSISTENT);
    BAD(memset(frame->ident.brand, 'B', sizeof frame->ident.brand), ERR_INCONSISTENT);
#undef BAD
}

static void test_records(void)
{
    make_frame();
    build();
    CHECK_EQ(warnings.n, 0);
    CHECK_EQ(model.ncpus, NCPUS);
    CHECK_EQ(model.npackages, 2);
    CHECK_EQ(model.ncores, 8);
    CHECK_STREQ(model.vendor, "AuthenticAMD");
    CHECK_STREQ(model.brand, "QEMU TCG CPU version 2.5+");
    CHECK_EQ(infos[13].package, 1);
    CHECK_EQ(infos[13].core, 2);
    CHECK_EQ(infos[13].thread, 1);

    /* A core that never checked in, a record that contradicts itself, one
     * with an impossible cache, one with a `reported` word of 7, one whose
     * APIC id is another's: each placed by its MADT APIC id, with a warning
     * for what was wrong and one for the placing. */
    make_frame();
    frame->records[3] = (struct machine_record){ 0 };
    frame->records[5].place.package = 9;
    frame->records[6].place.caches[1].type = 4;
    frame->records[9].reported = 7;
    frame->records[10].place = place_of(11);
    build();
    CHECK_EQ(warnings.n, 9);
    CHECK_STREQ(warnings.text[0], "core 5's CPUID record is malformed; ignored");
    CHECK_STREQ(warnings.text[1], "core 6's CPUID record is malformed; ignored");
    CHECK_STREQ(warnings.text[2], "core 9's CPUID record is malformed; ignored");
    CHECK_STREQ(warnings.text[3], "core 10: CPUID says APIC id 11 but MADT says 10; placed by the MADT id with "
                                  "the boot core's CPUID layout");
    CHECK_STREQ(warnings.text[4], "core 3 (APIC id 3) did not report its CPUID topology; placed by its APIC id "
                                  "with the layout of core 0");
    CHECK_STREQ(warnings.text[5], "core 5 (APIC id 5) did not report its CPUID topology; placed by its APIC id "
                                  "with the layout of core 0");
    for (uint32_t c = 0; c < NCPUS; c++) {
        CHECK_EQ(infos[c].reported, c != 3 && c != 5 && c != 6 && c != 9 && c != 10);
        struct cpu_place p = place_of(c);
        CHECK_EQ(infos[c].package, p.package);       /* the same place, either way */
        CHECK_EQ(infos[c].core, p.core);
        CHECK_EQ(infos[c].thread, p.thread);
        CHECK(topo_share_cache(&model, c, c ^ 1, 2));
    }
    CHECK_EQ(model.npackages, 2);
    CHECK_EQ(model.ncores, 8);

    CHECK(!cpu_place_valid(&(struct cpu_place){ .smt_shift = 3, .package_shift = 2 }));
    CHECK(!cpu_place_valid(&(struct cpu_place){ .package_shift = 33 }));
    CHECK(!cpu_place_valid(&(struct cpu_place){ .source = 7 }));
    CHECK(!cpu_place_valid(&(struct cpu_place){ .ncaches = CPU_MAX_CACHES + 1 }));
    struct cpu_place p = place_of(5);
    CHECK(cpu_place_valid(&p));
    p.caches[3].shift = 33;
    CHECK(!cpu_place_valid(&p));
    p = place_of(5);
    p.caches[0].level = 0;
    CHECK(!cpu_place_valid(&p));
}

static void test_questions(void)
{
    make_frame();
    build();
    uint32_t v = 12345;
    CHECK_ERR(topo_model_node_of_core(&model, 13, &v), ERR_OK);
    CHECK_EQ(v, 3);
    v = 12345;
    CHECK_ERR(topo_model_node_of_core(&model, NCPUS, &v), ERR_NO_SUCH_CORE);
    CHECK_ERR(topo_model_node_of_core(&model, ~0u, &v), ERR_NO_SUCH_CORE);
    CHECK_EQ(v, 12345);
    CHECK_ERR(topo_model_distance(&model, 1, 3, &v), ERR_OK);
    CHECK_EQ(v, 12);
    CHECK_ERR(topo_model_distance(&model, 3, 1, &v), ERR_OK);
    CHECK_EQ(v, 36);
    CHECK_ERR(topo_model_distance(&model, 2, 2, &v), ERR_OK);
    CHECK_EQ(v, 10);
    v = 12345;
    CHECK_ERR(topo_model_distance(&model, 0, NNODES, &v), ERR_NO_SUCH_NODE);
    CHECK_ERR(topo_model_distance(&model, 64, 0, &v), ERR_NO_SUCH_NODE);
    CHECK_EQ(v, 12345);

    /* Shared caches: a thread of the same core shares L1; cores of one
     * package share L3; packages share nothing. */
    CHECK_ERR(topo_model_shared_level(&model, 4, 5, &v), ERR_OK);
    CHECK_EQ(v, 1);
    CHECK_ERR(topo_model_shared_level(&model, 4, 7, &v), ERR_OK);
    CHECK_EQ(v, 3);
    CHECK_ERR(topo_model_shared_level(&model, 7, 8, &v), ERR_OK);
    CHECK_EQ(v, 0);
    CHECK_ERR(topo_model_shared_level(&model, 7, 16, &v), ERR_NO_SUCH_CORE);

    uint32_t n;
    const struct cpu_cache *caches = topo_caches_of(&model, 9, &n);
    CHECK_EQ(n, 4);
    CHECK_EQ(caches[3].level, 3);
    struct topo_coreset sharers;
    topo_cache_sharers(&model, 9, &caches[3], &sharers);
    CHECK_EQ(sharers.w[0], 0xff00);
    topo_cache_sharers(&model, 9, &caches[2], &sharers);
    CHECK_EQ(sharers.w[0], 0x0300);
    CHECK_EQ(topo_cache_instances(&model, &caches[3]), 2);
    CHECK_EQ(topo_cache_instances(&model, &caches[0]), 8);
    CHECK(topo_caches_of(&model, NCPUS, &n) == NULL && n == 0);

    /* Nearest cores from core 5 (node 1, package 0): its own node first
     * (itself, its other thread, then the package's L3), then node 3 at
     * distance 12, node 2 at 25, and node 0 at 30 (which shares the L3). */
    struct topo_coreset all = { { 0 } };
    for (uint32_t c = 0; c < NCPUS; c++)
        topo_coreset_add(&all, c);
    uint16_t order[TOPO_MAX_CPUS];
    static const uint16_t from5[NCPUS] = { 5, 4, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 0, 1, 2, 3 };
    CHECK_ERR(topo_model_nearest_cores(&model, 5, &all, order, &n), ERR_OK);
    CHECK_EQ(n, NCPUS);
    CHECK_EQ(memcmp(order, from5, sizeof from5), 0);
    /* Among some: within one distance, the shared hierarchy decides. */
    struct topo_coreset some = { { 0 } };
    topo_coreset_add(&some, 0);
    topo_coreset_add(&some, 3);
    topo_coreset_add(&some, 2);
    topo_coreset_add(&some, 8);
    CHECK_ERR(topo_model_nearest_cores(&model, 1, &some, order, &n), ERR_OK);
    CHECK_EQ(n, 4);
    CHECK(order[0] == 0 && order[1] == 2 && order[2] == 3 && order[3] == 8);
    struct topo_coreset none = { { 0 } };
    CHECK_ERR(topo_model_nearest_cores(&model, 1, &none, order, &n), ERR_OK);
    CHECK_EQ(n, 0);
    n = 99;
    topo_coreset_add(&some, 16);                 /* a core the machine lacks */
    CHECK_ERR(topo_model_nearest_cores(&model, 1, &some, order, &n), ERR_NO_SUCH_CORE);
    CHECK_ERR(topo_model_nearest_cores(&model, 16, &all, order, &n), ERR_NO_SUCH_CORE);
    CHECK_EQ(n, 99);

    /* Nearest nodes: by the row of the node asked from. */
    uint8_t nodes[TOPO_MAX_NODES];
    CHECK_ERR(topo_model_nearest_nodes(&model, 0, 0xf, nodes, &n), ERR_OK);
    CHECK(n == 4 && nodes[0] == 0 && nodes[1] == 2 && nodes[2] == 1 && nodes[3] == 3);
    CHECK_ERR(topo_model_nearest_nodes(&model, 1, 0xf, nodes, &n), ERR_OK);
    CHECK(n == 4 && nodes[0] == 1 && nodes[1] == 3 && nodes[2] == 2 && nodes[3] == 0);
    CHECK_ERR(topo_model_nearest_nodes(&model, 3, 0xf, nodes, &n), ERR_OK);
    CHECK(n == 4 && nodes[0] == 3 && nodes[1] == 2 && nodes[2] == 1 && nodes[3] == 0);
    CHECK_ERR(topo_model_nearest_nodes(&model, 3, 0x3, nodes, &n), ERR_OK);   /* not itself */
    CHECK(n == 2 && nodes[0] == 1 && nodes[1] == 0);
    frame->topo.dist[2][1] = 15;                  /* a tie: the lower index first */
    CHECK_ERR(topo_model_nearest_nodes(&model, 2, 0xb, nodes, &n), ERR_OK);
    CHECK(n == 3 && nodes[0] == 0 && nodes[1] == 1 && nodes[2] == 3);
    n = 99;
    CHECK_ERR(topo_model_nearest_nodes(&model, 4, 0xf, nodes, &n), ERR_NO_SUCH_NODE);
    CHECK_ERR(topo_model_nearest_nodes(&model, 0, 0x1f, nodes, &n), ERR_NO_SUCH_NODE);
    CHECK_ERR(topo_model_nearest_nodes(&model, 0, 1ull << 63, nodes, &n), ERR_NO_SUCH_NODE);
    CHECK_EQ(n, 99);
}

/* One node holding everything, no SLIT: 10 to itself, nothing else. */
static void test_one_node(void)
{
    make_frame();
    struct topology *t = &frame->topo;
    t->nnodes = 1;
    t->nodes[0] = (struct topo_node){ .domain = 0, .ncpus = NCPUS, .mem_bytes = 1ull << 30 };
    t->nranges = 0;
    t->numa_from_srat = t->dist_from_slit = false;
    for (uint32_t c = 0; c < NCPUS; c++)
        t->cpus[c].node = 0;
    build();
    CHECK_EQ(warnings.n, 0);
    uint32_t v, n;
    CHECK_ERR(topo_model_distance(&model, 0, 0, &v), ERR_OK);
    CHECK_EQ(v, 10);
    CHECK_ERR(topo_model_distance(&model, 0, 1, &v), ERR_NO_SUCH_NODE);
    uint8_t nodes[TOPO_MAX_NODES];
    CHECK_ERR(topo_model_nearest_nodes(&model, 0, 1, nodes, &n), ERR_OK);
    CHECK(n == 1 && nodes[0] == 0);
    CHECK_ERR(topo_model_nearest_nodes(&model, 0, 2, nodes, &n), ERR_NO_SUCH_NODE);
}

int main(void)
{
    test_frame_checks();
    test_records();
    test_questions();
    test_one_node();
    free(frame);
    return check_done();
}
