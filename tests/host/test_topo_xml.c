/*
 * Host unit tests for servers/topo/topo_xml.c: machine models as the
 * topology service builds them (QEMU-like and firmware that disagrees with itself) written as
 * hwloc XML, checked for the objects, attributes, warnings and fallbacks.
 *
 *   test_topo_xml               run the checks
 *   test_topo_xml --dump DIR    also write every case's XML to DIR/<case>.xml
 *                               (tests/test_topology_spec.py feeds them to lstopo)
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "model.h"
#include "topo_xml.h"

static struct topology topo;
static struct topo_cpu_info infos[TOPO_MAX_CPUS];
static struct topo_model model;
static char xml[1 << 20];
static size_t xml_len;
static const char *dump_dir;

static struct {
    char text[8][240];
    int n;
} warnings;

static void record_warning(void *ctx, const char *msg)
{
    (void)ctx;
    if (warnings.n < 8)
        snprintf(warnings.text[warnings.n], sizeof warnings.text[0], "%s", msg);
    warnings.n++;
}

static void sink(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    if (xml_len + n < sizeof xml) {
        memcpy(xml + xml_len, s, n);
        xml_len += n;
        xml[xml_len] = 0;
    }
}

/* A machine of `ncpus` CPUs with APIC id = index, `smt`/`pkg` shifts, and
 * QEMU's legacy caches (L1d, L1i, L2 per core, L3 per package); nodes and
 * distances are set by the caller afterwards. */
static void machine(uint32_t ncpus)
{
    memset(&topo, 0, sizeof topo);
    topo.ncpus = ncpus;
    for (uint32_t c = 0; c < ncpus; c++)
        topo.cpus[c] = (struct topo_cpu){ .apic_id = c, .node = 0 };
    topo.nnodes = 1;
    topo.nodes[0] = (struct topo_node){ .domain = 0, .ncpus = ncpus, .mem_bytes = 1 << 30 };
    topo.dist[0][0] = 10;
    topo_model_init(&model, &topo, infos);
    snprintf(model.vendor, sizeof model.vendor, "AuthenticAMD");
    snprintf(model.brand, sizeof model.brand, "QEMU TCG CPU <&\"'>");
    model.family = 15;
    model.model = 107;
    model.stepping = 1;
}

static void report(uint32_t c, uint8_t smt, uint8_t pkg, bool l3, uint8_t l3_shift)
{
    struct cpu_place p = { .apic_id = c, .smt_shift = smt, .package_shift = pkg, .source = CPU_SOURCE_LEAF_B };
    cpu_place_derive(&p);
    p.caches[p.ncaches++] = (struct cpu_cache){ 65536, 64, 2, 1, CACHE_DATA, smt };
    p.caches[p.ncaches++] = (struct cpu_cache){ 65536, 64, 2, 1, CACHE_INSTRUCTION, smt };
    p.caches[p.ncaches++] = (struct cpu_cache){ 524288, 64, 16, 2, CACHE_UNIFIED, smt };
    if (l3)
        p.caches[p.ncaches++] = (struct cpu_cache){ 16 << 20, 64, 16, 3, CACHE_UNIFIED, l3_shift };
    topo_model_set(&model, c, &p, record_warning, 0);
}

static void report_all(uint8_t smt, uint8_t pkg)
{
    for (uint32_t c = 0; c < topo.ncpus; c++)
        report(c, smt, pkg, true, pkg);
}

static void nodes(uint32_t n, const uint32_t *node_of_cpu, const uint64_t *mem, bool slit)
{
    topo.nnodes = n;
    topo.numa_from_srat = true;
    topo.dist_from_slit = slit;
    for (uint32_t i = 0; i < n; i++)
        topo.nodes[i] = (struct topo_node){ .domain = i, .ncpus = 0, .mem_bytes = mem[i] };
    for (uint32_t c = 0; c < topo.ncpus; c++) {
        topo.cpus[c].node = node_of_cpu[c];
        topo.nodes[node_of_cpu[c]].ncpus++;
    }
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            topo.dist[i][j] = i == j ? 10 : (uint8_t)(20 + i + j);
}

/* Finish the model and write the XML; warnings of both steps are recorded.
 * Checks that objects nest (every <object> closed) and dumps if asked. */
static void write_xml(const char *name)
{
    warnings.n = 0;
    topo_model_finish(&model, record_warning, 0);
    xml_len = 0;
    xml[0] = 0;
    topo_xml_write(&model, sink, 0, record_warning, 0);
    int depth = 0, bad = 0;
    for (const char *l = xml; *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        const char *t = l;
        while (*t == ' ')
            t++;
        if (!strncmp(t, "<object ", 8) && !(n >= 2 && l[n - 2] == '/' && l[n - 1] == '>'))
            depth++;
        else if (!strncmp(t, "</object>", 9))
            bad |= --depth < 0;
        l += n + (e ? 1 : 0);
    }
    CHECK(!bad && depth == 0);
    CHECK(!strncmp(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
                        "<topology version=\"2.0\">\n", 102));
    CHECK(xml_len > 12 && !strcmp(xml + xml_len - 12, "</topology>\n"));
    if (dump_dir) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.xml", dump_dir, name);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (f) {
            fwrite(xml, 1, xml_len, f);
            fclose(f);
        }
    }
}

static int count(const char *needle)
{
    int n = 0;
    for (const char *p = xml; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

#define CHECK_HAS(s) CHECK(strstr(xml, (s)) != NULL)
#define CHECK_LACKS(s) CHECK(strstr(xml, (s)) == NULL)
/* `a` appears, and before `b`. */
#define CHECK_BEFORE(a, b) CHECK(strstr(xml, (a)) && strstr(xml, (b)) && strstr(xml, (a)) < strstr(xml, (b)))

static void test_qemu_numa_by_package(void)
{
    machine(8);
    report_all(1, 2);
    static const uint32_t node_of[] = { 0, 0, 0, 0, 1, 1, 1, 1 };
    static const uint64_t mem[] = { 536477696, 536870912 };
    nodes(2, node_of, mem, true);
    write_xml("qemu_numa_by_package");
    CHECK_EQ(warnings.n, 0);
    CHECK_HAS("<object type=\"Machine\" os_index=\"0\" cpuset=\"0x000000ff\" complete_cpuset=\"0x000000ff\" "
              "allowed_cpuset=\"0x000000ff\" nodeset=\"0x00000003\" complete_nodeset=\"0x00000003\" "
              "allowed_nodeset=\"0x00000003\" gp_index=\"1\">\n");
    CHECK_HAS("<object type=\"Package\" os_index=\"1\" cpuset=\"0x000000f0\" complete_cpuset=\"0x000000f0\" "
              "nodeset=\"0x00000002\" complete_nodeset=\"0x00000002\"");
    /* The node hangs off the package (the highest object with its CPUs), first. */
    CHECK_BEFORE("<object type=\"Package\" os_index=\"1\"", "<object type=\"NUMANode\" os_index=\"1\"");
    CHECK_BEFORE("<object type=\"NUMANode\" os_index=\"1\"", "<object type=\"L3Cache\" cpuset=\"0x000000f0\"");
    CHECK_HAS("<object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x0000000f\" complete_cpuset=\"0x0000000f\" "
              "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"3\" local_memory=\"536477696\"/>");
    CHECK_HAS("cache_size=\"16777216\" depth=\"3\" cache_linesize=\"64\" cache_associativity=\"16\" cache_type=\"0\"");
    CHECK_HAS("<object type=\"L1Cache\" cpuset=\"0x00000030\"");
    CHECK_HAS("cache_size=\"65536\" depth=\"1\" cache_linesize=\"64\" cache_associativity=\"2\" cache_type=\"2\"");
    CHECK_HAS("<object type=\"Core\" os_index=\"1\" cpuset=\"0x000000c0\"");
    CHECK_HAS("<object type=\"PU\" os_index=\"7\" cpuset=\"0x00000080\" complete_cpuset=\"0x00000080\" "
              "nodeset=\"0x00000002\" complete_nodeset=\"0x00000002\"");
    CHECK_EQ(count("<object type=\"Package\""), 2);
    CHECK_EQ(count("<object type=\"L3Cache\""), 2);
    CHECK_EQ(count("<object type=\"L2Cache\""), 4);
    CHECK_EQ(count("<object type=\"Core\""), 4);
    CHECK_EQ(count("<object type=\"PU\""), 8);
    CHECK_EQ(count("<object type=\"Group\""), 0);
    CHECK_HAS("<info name=\"CPUModel\" value=\"QEMU TCG CPU &lt;&amp;&quot;'&gt;\"/>");
    CHECK_HAS("<info name=\"AtollNUMASource\" value=\"ACPI SRAT\"/>");
    CHECK_HAS("  <distances2 type=\"NUMANode\" nbobjs=\"2\" kind=\"5\" name=\"NUMALatency\" indexing=\"os\">\n"
              "    <indexes length=\"4\">0 1 </indexes>\n"
              "    <u64values length=\"12\">10 21 21 10 </u64values>\n"
              "  </distances2>\n</topology>\n");
}

static void test_numa_inside_package(void)
{
    machine(8);
    report_all(0, 3);
    static const uint32_t node_of[] = { 0, 0, 0, 0, 1, 1, 1, 1 };
    static const uint64_t mem[] = { 1 << 29, 1 << 29 };
    nodes(2, node_of, mem, true);
    write_xml("numa_inside_package");
    CHECK_EQ(warnings.n, 0);
    /* Package > L3 > Group (one per node, holding it) > L2 ... */
    CHECK_EQ(count("<object type=\"Group\""), 2);
    CHECK_BEFORE("<object type=\"L3Cache\"", "<object type=\"Group\" cpuset=\"0x0000000f\"");
    CHECK_BEFORE("<object type=\"Group\" cpuset=\"0x000000f0\"", "<object type=\"NUMANode\" os_index=\"1\"");
    CHECK_HAS("<object type=\"Package\" os_index=\"0\" cpuset=\"0x000000ff\" complete_cpuset=\"0x000000ff\" "
              "nodeset=\"0x00000003\"");
    CHECK_HAS("<object type=\"PU\" os_index=\"5\" cpuset=\"0x00000020\" complete_cpuset=\"0x00000020\" "
              "nodeset=\"0x00000002\"");
}

static void test_groups_only_where_needed(void)
{
    machine(8);                  /* two packages of four single-thread cores */
    report_all(0, 2);
    static const uint32_t node_of[] = { 0, 0, 0, 0, 1, 1, 2, 2 };
    static const uint64_t mem[] = { 1 << 29, 1 << 28, 1 << 28 };
    nodes(3, node_of, mem, true);
    write_xml("groups_only_where_needed");
    CHECK_EQ(warnings.n, 0);
    /* Node 0 is package 0: it hangs off it; nodes 1 and 2 get Groups. */
    CHECK_BEFORE("<object type=\"Package\" os_index=\"0\"", "<object type=\"NUMANode\" os_index=\"0\"");
    CHECK_BEFORE("<object type=\"NUMANode\" os_index=\"0\"", "<object type=\"L3Cache\" cpuset=\"0x0000000f\"");
    CHECK_EQ(count("<object type=\"Group\""), 2);
    CHECK_HAS("<object type=\"Group\" cpuset=\"0x00000030\"");
    CHECK_HAS("<object type=\"Group\" cpuset=\"0x000000c0\"");
}

static void test_memory_only_and_cpu_only_nodes(void)
{
    machine(4);
    report_all(0, 2);
    static const uint32_t node_of[] = { 0, 0, 0, 0 };
    static const uint64_t mem[] = { 0, 512 << 20 };
    nodes(2, node_of, mem, true);
    write_xml("memory_only_node");
    CHECK_EQ(warnings.n, 0);
    /* The memory-only node hangs off the Machine with the whole machine's
     * CPUs; the CPU-only node has no local_memory. */
    CHECK_HAS("    <object type=\"NUMANode\" os_index=\"1\" cpuset=\"0x0000000f\" complete_cpuset=\"0x0000000f\" "
              "nodeset=\"0x00000002\" complete_nodeset=\"0x00000002\" gp_index=\"2\" local_memory=\"536870912\"/>");
    CHECK_HAS("<object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x0000000f\" complete_cpuset=\"0x0000000f\" "
              "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"4\"/>");
    /* Every CPU is local to both: the machine's node and its package's. */
    CHECK_HAS("<object type=\"PU\" os_index=\"3\" cpuset=\"0x00000008\" complete_cpuset=\"0x00000008\" "
              "nodeset=\"0x00000003\"");
}

static void test_numa_splits_cores(void)
{
    machine(4);
    report_all(1, 2);
    static const uint32_t node_of[] = { 0, 1, 0, 1 };   /* each core's threads in two nodes */
    static const uint64_t mem[] = { 1 << 29, 1 << 29 };
    nodes(2, node_of, mem, true);
    write_xml("numa_splits_cores");
    CHECK_EQ(warnings.n, 2);
    CHECK_STREQ(warnings.text[0], "topology XML: the CPUs of NUMA node 0 cut across packages, caches or cores; "
                                  "the node is attached to the smallest object holding them");
    CHECK_EQ(count("<object type=\"NUMANode\""), 2);
    CHECK_EQ(count("<object type=\"Group\""), 0);
    CHECK_HAS("<object type=\"NUMANode\" os_index=\"1\" cpuset=\"0x0000000f\"");
}

static void test_no_srat(void)
{
    machine(4);            /* two packages of two cores */
    report_all(0, 1);
    write_xml("no_srat_two_packages");
    CHECK_EQ(warnings.n, 0);
    CHECK_HAS("<info name=\"AtollNUMASource\" value=\"none (no SRAT: one node)\"/>");
    CHECK_HAS("<info name=\"AtollDistanceSource\" value=\"none (one node)\"/>");
    CHECK_HAS("    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x0000000f\"");   /* on the Machine */
    CHECK_LACKS("<distances2");

    machine(2);            /* one package: the node hangs off it */
    report_all(0, 1);
    write_xml("no_srat_one_package");
    CHECK_HAS("      <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x00000003\"");
}

static void test_slit_unusable(void)
{
    machine(4);
    report_all(0, 1);
    static const uint32_t node_of[] = { 0, 0, 1, 1 };
    static const uint64_t mem[] = { 1 << 29, 1 << 29 };
    nodes(2, node_of, mem, false);
    write_xml("slit_unusable");
    CHECK_EQ(warnings.n, 0);
    CHECK_LACKS("<distances2");
    CHECK_HAS("<info name=\"AtollDistanceSource\" value=\"none (no usable SLIT)\"/>");
}

static void test_caches_that_do_not_fit(void)
{
    machine(4);
    for (uint32_t c = 0; c < 4; c++)
        report(c, 0, 1, c < 2, 1);       /* CPUs 2 and 3 report no L3 */
    write_xml("l3_missing_on_some");
    CHECK_EQ(warnings.n, 1);
    CHECK_STREQ(warnings.text[0], "topology XML: not every CPU reports an L3 cache; left out");
    CHECK_EQ(count("<object type=\"L3Cache\""), 0);
    CHECK_EQ(count("<object type=\"L2Cache\""), 4);

    machine(4);
    for (uint32_t c = 0; c < 4; c++)
        report(c, 0, 1, true, 2);        /* an L3 shared across both packages */
    write_xml("l3_across_packages");
    CHECK_EQ(warnings.n, 1);
    CHECK_STREQ(warnings.text[0], "topology XML: the L3 cache's sharing from CPUID does not nest with packages, "
                                  "other caches and cores; left out");
    CHECK_EQ(count("<object type=\"L3Cache\""), 0);
}

static void test_wide(void)
{
    machine(100);
    report_all(0, 7);
    uint32_t node_of[100];
    for (uint32_t c = 0; c < 100; c++)
        node_of[c] = c / 25;
    static const uint64_t mem[] = { 1 << 28, 1 << 28, 1 << 28, 1 << 28 };
    nodes(4, node_of, mem, true);
    write_xml("wide_100_cpus");
    CHECK_EQ(warnings.n, 0);
    CHECK_HAS("cpuset=\"0x0000000f,0xffffffff,0xffffffff,0xffffffff\"");
    CHECK_HAS("<object type=\"PU\" os_index=\"64\" cpuset=\"0x00000001,,0x0\"");
    CHECK_HAS("<object type=\"PU\" os_index=\"32\" cpuset=\"0x00000001,0x0\"");
    CHECK_HAS("<object type=\"Group\" cpuset=\"0x0000000f,0xfffff800,,0x0\"");   /* CPUs 75-99 */
    CHECK_EQ(count("<object type=\"PU\""), 100);
    CHECK_HAS("<u64values length=\"30\">10 21 22 23 21 10 23 24 22 23 </u64values>\n");
    CHECK_HAS("<u64values length=\"18\">10 25 23 24 25 10 </u64values>\n");
}

static void test_unreported_cpus(void)
{
    machine(4);
    report(0, 1, 2, true, 2);            /* only the boot core reports */
    write_xml("unreported_cpus");
    CHECK_EQ(warnings.n, 3);
    CHECK_HAS("<info name=\"AtollTopologyNote\" value=\"some CPUs did not report; placed by their APIC ids\"/>");
    CHECK_EQ(count("<object type=\"Core\""), 2);
    CHECK_EQ(count("<object type=\"L2Cache\""), 2);

    machine(1);                    /* nothing at all reported */
    write_xml("single_cpu_nothing_reported");
    CHECK_EQ(warnings.n, 1);
    CHECK_HAS("<info name=\"AtollTopologySource\" value=\"APIC ids (no CPUID report)\"/>");
    CHECK_EQ(count("<object type=\"PU\" os_index=\"0\" cpuset=\"0x00000001\""), 1);
    CHECK_EQ(count("Cache\""), 0);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--dump"))
        dump_dir = argv[2];
    test_qemu_numa_by_package();
    test_numa_inside_package();
    test_groups_only_where_needed();
    test_memory_only_and_cpu_only_nodes();
    test_numa_splits_cores();
    test_no_srat();
    test_slit_unusable();
    test_caches_that_do_not_fit();
    test_wide();
    test_unreported_cpus();
    return check_done();
}
