/*
 * Host unit tests for cpudriver/topology.c: QEMU 7.2 machines end to end
 * (tables built as QEMU builds them, parsed by acpi.c), then hand-made
 * inconsistent firmware, checking each error and each warning's text.
 */
#include <stdlib.h>
#include <string.h>
#include "acpi.h"
#include "topology.h"
#include "check.h"
#include "qemu_acpi.h"

static struct acpi_madt_info madt;
static struct acpi_srat_info srat;
static struct acpi_slit_info slit;
static struct topology topo;

/* ---- warnings ---------------------------------------------------------------- */

#define MAX_WARNINGS 16

static struct {
    char text[MAX_WARNINGS][200];
    int n;
} warnings;

static void record_warning(void *ctx, const char *msg)
{
    CHECK(ctx == &warnings);
    if (warnings.n < MAX_WARNINGS)
        snprintf(warnings.text[warnings.n], sizeof warnings.text[0], "%s", msg);
    warnings.n++;
}

static errval_t build(const struct acpi_srat_info *s, const struct acpi_slit_info *d, uint32_t boot)
{
    warnings.n = 0;
    memset(&topo, 0xa5, sizeof topo);   /* nothing may depend on a zeroed result */
    return topo_build(&madt, s, d, boot, &topo, record_warning, &warnings);
}

/* The warnings of the last build must be exactly `want` (NULL-terminated). */
#define CHECK_WARNINGS(...) check_warnings(__FILE__, __LINE__, (const char *[]){ __VA_ARGS__, NULL })
#define CHECK_NO_WARNINGS() check_warnings(__FILE__, __LINE__, (const char *[]){ NULL })

static void check_warnings(const char *file, int line, const char **want)
{
    int n = 0;
    while (want[n])
        n++;
    bool same = n == warnings.n;
    for (int i = 0; same && i < n; i++)
        same = strcmp(want[i], warnings.text[i]) == 0;
    check_count++;
    if (same)
        return;
    check_fail(file, line, "warnings as expected");
    for (int i = 0; i < n; i++)
        fprintf(stderr, "    want: %s\n", want[i]);
    for (int i = 0; i < warnings.n && i < MAX_WARNINGS; i++)
        fprintf(stderr, "    got:  %s\n", warnings.text[i]);
}

/* ---- QEMU machines end to end ------------------------------------------------- */

/* Build QEMU's tables for `m` and parse them the way the CPU driver does. */
static void parse_qemu(const struct qemu_machine *m, bool *have_srat, bool *have_slit)
{
    struct phys ph = { 0 };
    struct acpi_mapper map = { phys_map, &ph };
    struct acpi_tables tabs;
    uint8_t rsdp[36];
    uint64_t root;
    bool xsdt;

    build_rsdp(rsdp, 0, (uint32_t)phys_qemu(&ph, m), 0);
    CHECK_ERR(acpi_parse_rsdp(rsdp, 20, &root, &xsdt), ERR_OK);
    CHECK_ERR(acpi_find_tables(&map, root, xsdt, &tabs), ERR_OK);
    CHECK_ERR(acpi_parse_madt(map.map(&ph, tabs.madt_phys, tabs.madt_len), tabs.madt_len, &madt),
              ERR_OK);
    *have_srat = tabs.srat_phys != 0;
    *have_slit = tabs.slit_phys != 0;
    if (*have_srat)
        CHECK_ERR(acpi_parse_srat(map.map(&ph, tabs.srat_phys, tabs.srat_len), tabs.srat_len,
                                  &srat), ERR_OK);
    if (*have_slit)
        CHECK_ERR(acpi_parse_slit(map.map(&ph, tabs.slit_phys, tabs.slit_len), tabs.slit_len,
                                  &slit), ERR_OK);
    phys_free(&ph);
}

static errval_t build_qemu(const struct qemu_machine *m, uint32_t boot)
{
    bool have_srat, have_slit;
    parse_qemu(m, &have_srat, &have_slit);
    return build(have_srat ? &srat : NULL, have_slit ? &slit : NULL, boot);
}

static void check_range(uint32_t i, uint64_t base, uint64_t len, uint32_t node)
{
    CHECK(i < topo.nranges);
    if (i >= topo.nranges)
        return;
    CHECK_EQ(topo.ranges[i].base, base);
    CHECK_EQ(topo.ranges[i].len, len);
    CHECK_EQ(topo.ranges[i].node, node);
}

static void test_qemu_two_nodes(void)
{
    /* make run: -M q35 -smp 4 -m 1G, two nodes, -numa dist ... val=21 */
    struct qemu_machine m;
    qm_simple(&m, true, 4, 2, 1ull << 30);
    m.have_dist = true;
    m.dist[0][0] = m.dist[1][1] = 10;
    m.dist[0][1] = m.dist[1][0] = 21;
    CHECK_ERR(build_qemu(&m, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK(topo.numa_from_srat);
    CHECK(topo.dist_from_slit);
    CHECK_EQ(topo.ncpus, 4);
    CHECK_EQ(topo.nnodes, 2);
    for (uint32_t i = 0; i < 4; i++) {
        CHECK_EQ(topo.cpus[i].apic_id, i);
        CHECK_EQ(topo.cpus[i].node, i / 2);
    }
    CHECK_EQ(topo.nodes[0].domain, 0);
    CHECK_EQ(topo.nodes[0].ncpus, 2);
    CHECK_EQ(topo.nodes[0].mem_bytes, 0xa0000 + 0x20000000 - 0x100000);
    CHECK_EQ(topo.nodes[1].domain, 1);
    CHECK_EQ(topo.nodes[1].ncpus, 2);
    CHECK_EQ(topo.nodes[1].mem_bytes, 0x20000000);
    CHECK_EQ(topo.nranges, 3);
    check_range(0, 0, 0xa0000, 0);
    check_range(1, 0x100000, 0x1ff00000, 0);
    check_range(2, 0x20000000, 0x20000000, 1);
    CHECK_EQ(topo.dist[0][0], 10);
    CHECK_EQ(topo.dist[0][1], 21);
    CHECK_EQ(topo.dist[1][0], 21);
    CHECK_EQ(topo.dist[1][1], 10);

    CHECK_EQ(topo_node_of_addr(&topo, 0), 0);
    CHECK_EQ(topo_node_of_addr(&topo, 0x9ffff), 0);
    CHECK_EQ(topo_node_of_addr(&topo, 0xa0000), 0);       /* hole: node 0 by default */
    CHECK_EQ(topo_node_of_addr(&topo, 0x1fffffff), 0);
    CHECK_EQ(topo_node_of_addr(&topo, 0x20000000), 1);
    CHECK_EQ(topo_node_of_addr(&topo, 0x3fffffff), 1);
    CHECK_EQ(topo_node_of_addr(&topo, 0x40000000), 0);    /* past the end */
    CHECK_EQ(topo_node_of_addr(&topo, UINT64_MAX), 0);
    CHECK_EQ(topo_core_of_apic(&topo, 3), 3);
    CHECK_EQ(topo_core_of_apic(&topo, 4), -1);

    /* Without -numa dist QEMU emits no SLIT: 10 local, 20 remote, silently. */
    m.have_dist = false;
    CHECK_ERR(build_qemu(&m, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK(!topo.dist_from_slit);
    CHECK_EQ(topo.dist[0][1], 20);
    CHECK_EQ(topo.dist[1][1], 10);
}

static void test_qemu_four_nodes(void)
{
    /* -M q35 -smp 8 -m 8G,maxmem=16G, four nodes of 2 GiB, a ring of distances. */
    struct qemu_machine m;
    qm_simple(&m, true, 8, 4, 8ull << 30);
    m.hotplug_base = 0x300000000ull;
    m.hotplug_len = 8ull << 30;
    m.have_dist = true;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            m.dist[i][j] = i == j ? 10 : (i - j + 4) % 4 == 2 ? 30 : 20;
    CHECK_ERR(build_qemu(&m, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK_EQ(topo.ncpus, 8);
    CHECK_EQ(topo.nnodes, 4);
    for (uint32_t i = 0; i < 4; i++) {
        CHECK_EQ(topo.nodes[i].domain, i);
        CHECK_EQ(topo.nodes[i].ncpus, 2);
        CHECK_EQ(topo.nodes[i].mem_bytes, i ? 2ull << 30 : (2ull << 30) - 0x60000);
    }
    for (uint32_t i = 0; i < 8; i++)
        CHECK_EQ(topo.cpus[i].node, i / 2);
    /* The hot-plug area is not memory yet. */
    CHECK_EQ(topo.nranges, 5);
    check_range(0, 0, 0xa0000, 0);
    check_range(1, 0x100000, 0x7ff00000, 0);
    check_range(2, 0x100000000ull, 2ull << 30, 1);
    check_range(3, 0x180000000ull, 2ull << 30, 2);
    check_range(4, 0x200000000ull, 2ull << 30, 3);
    CHECK_EQ(topo_node_of_addr(&topo, 0x90000000), 0);         /* PCI hole */
    CHECK_EQ(topo_node_of_addr(&topo, 0x100000000ull), 1);
    CHECK_EQ(topo_node_of_addr(&topo, 0x1ffffffffull), 2);
    CHECK_EQ(topo_node_of_addr(&topo, 0x27fffffffull), 3);
    CHECK_EQ(topo_node_of_addr(&topo, 0x300000000ull), 0);     /* hot-plug area */
    CHECK(topo.dist_from_slit);
    CHECK_EQ(topo.dist[0][2], 30);
    CHECK_EQ(topo.dist[3][0], 20);
    CHECK_EQ(topo.dist[2][2], 10);
}

static void test_qemu_no_numa(void)
{
    /* -M pc -smp 2: no SRAT. One node, all memory implicitly on it. */
    struct qemu_machine m;
    qm_simple(&m, false, 2, 0, 0);
    CHECK_ERR(build_qemu(&m, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK(!topo.numa_from_srat);
    CHECK(!topo.dist_from_slit);
    CHECK_EQ(topo.ncpus, 2);
    CHECK_EQ(topo.nnodes, 1);
    CHECK_EQ(topo.nodes[0].domain, 0);
    CHECK_EQ(topo.nodes[0].ncpus, 2);
    CHECK_EQ(topo.nranges, 0);
    CHECK_EQ(topo.cpus[1].node, 0);
    CHECK_EQ(topo.dist[0][0], 10);
    CHECK_EQ(topo_node_of_addr(&topo, 0x12345678), 0);
}

static void test_qemu_hotplug_cpus(void)
{
    /* -smp 2,maxcpus=4: MADT lists 4 with two disabled; SRAT lists all 4
     * as enabled (as QEMU does). The disabled two are simply not cores. */
    struct qemu_machine m;
    qm_simple(&m, true, 4, 2, 1ull << 30);
    m.present = 2;
    m.cpu_node[1] = 1;   /* cpus=0,2 on node 0 and 1,3 on node 1 */
    m.cpu_node[2] = 0;
    CHECK_ERR(build_qemu(&m, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK_EQ(topo.ncpus, 2);
    CHECK_EQ(topo.cpus[0].apic_id, 0);
    CHECK_EQ(topo.cpus[1].apic_id, 1);
    CHECK_EQ(topo.cpus[1].node, 1);
    CHECK_EQ(topo.nodes[0].ncpus, 1);
    CHECK_EQ(topo.nodes[1].ncpus, 1);
    CHECK_EQ(topo_core_of_apic(&topo, 2), -1);
}

/* ---- hand-made tables ----------------------------------------------------------- */

static void madt_set(const uint32_t *ids, size_t n)
{
    memset(&madt, 0, sizeof madt);
    madt.lapic_addr = 0xfee00000;
    for (size_t i = 0; i < n; i++)
        madt.cpus[i] = (struct acpi_cpu){ .apic_id = ids[i], .uid = (uint32_t)i, .enabled = true };
    madt.ncpus = n;
}

static void srat_clear(void)
{
    memset(&srat, 0, sizeof srat);
}

static void add_srat_cpu(uint32_t apic_id, uint32_t domain)
{
    srat.cpus[srat.ncpus++] = (struct acpi_srat_cpu){ .apic_id = apic_id, .domain = domain };
}

static void add_srat_mem(uint64_t base, uint64_t len, uint32_t domain, bool hotplug)
{
    srat.mem[srat.nmem++] = (struct acpi_srat_mem){
        .base = base, .len = len, .domain = domain, .hotplug = hotplug,
    };
}

/* Four CPUs (APIC ids 0-3), two per domain, 1 GiB per domain. */
static void two_domains(void)
{
    static const uint32_t ids[] = { 0, 1, 2, 3 };
    madt_set(ids, 4);
    srat_clear();
    for (uint32_t i = 0; i < 4; i++)
        add_srat_cpu(i, i / 2);
    add_srat_mem(0, 1ull << 30, 0, false);
    add_srat_mem(1ull << 30, 1ull << 30, 1, false);
}

static void slit_set(uint32_t n, uint8_t local, uint8_t remote)
{
    memset(&slit, 0, sizeof slit);
    slit.n = n;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            slit.dist[i][j] = i == j ? local : remote;
}

static void check_fallback_distances(void)
{
    CHECK(!topo.dist_from_slit);
    for (uint32_t i = 0; i < topo.nnodes; i++)
        for (uint32_t j = 0; j < topo.nnodes; j++)
            CHECK_EQ(topo.dist[i][j], i == j ? 10 : 20);
}

static void test_cpu_errors(void)
{
    static const uint32_t ids[] = { 0, 1, 2, 3 };

    madt_set(ids, 4);
    CHECK_ERR(build(NULL, NULL, 4), ERR_TOPO_NO_BOOT_CPU);
    madt.cpus[2].enabled = false;
    CHECK_ERR(build(NULL, NULL, 2), ERR_TOPO_NO_BOOT_CPU);
    for (int i = 0; i < 4; i++)
        madt.cpus[i].enabled = false;
    CHECK_ERR(build(NULL, NULL, 0), ERR_TOPO_NO_CPUS);
    madt.ncpus = 0;
    CHECK_ERR(build(NULL, NULL, 0), ERR_TOPO_NO_CPUS);

    /* Duplicate APIC ids among enabled CPUs, also of the boot CPU. */
    static const uint32_t dup[] = { 0, 1, 2, 1 };
    madt_set(dup, 4);
    CHECK_ERR(build(NULL, NULL, 0), ERR_DUPLICATE);
    static const uint32_t dup_boot[] = { 5, 1, 5 };
    madt_set(dup_boot, 3);
    CHECK_ERR(build(NULL, NULL, 5), ERR_DUPLICATE);
    /* ... but a disabled entry may repeat an id. */
    madt.cpus[2].enabled = false;
    CHECK_ERR(build(NULL, NULL, 5), ERR_OK);
    CHECK_EQ(topo.ncpus, 2);

    CHECK_ERR(topo_build(NULL, NULL, NULL, 0, &topo, NULL, NULL), ERR_INVALID_ARG);
    CHECK_ERR(topo_build(&madt, NULL, NULL, 0, NULL, NULL, NULL), ERR_INVALID_ARG);
    CHECK_EQ(topo_node_of_addr(NULL, 0), 0);
    CHECK_EQ(topo_core_of_apic(NULL, 0), -1);
}

static void test_boot_cpu_first(void)
{
    /* The firmware lists the boot CPU third; it still becomes core 0 and
     * the rest keep MADT order. Disabled CPUs are not cores. */
    static const uint32_t ids[] = { 0, 1, 6, 3, 4 };
    madt_set(ids, 5);
    madt.cpus[3].enabled = false;
    CHECK_ERR(build(NULL, NULL, 6), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK_EQ(topo.ncpus, 4);
    CHECK_EQ(topo.cpus[0].apic_id, 6);
    CHECK_EQ(topo.cpus[1].apic_id, 0);
    CHECK_EQ(topo.cpus[2].apic_id, 1);
    CHECK_EQ(topo.cpus[3].apic_id, 4);
    CHECK_EQ(topo_core_of_apic(&topo, 6), 0);
    CHECK_EQ(topo_core_of_apic(&topo, 0), 1);
    CHECK_EQ(topo_core_of_apic(&topo, 4), 3);
    CHECK_EQ(topo_core_of_apic(&topo, 3), -1);   /* disabled */
    CHECK_EQ(topo.nodes[0].ncpus, 4);

    /* Also with NUMA: the boot CPU's node comes from SRAT like any other. */
    two_domains();
    CHECK_ERR(build(&srat, NULL, 3), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK_EQ(topo.cpus[0].apic_id, 3);
    CHECK_EQ(topo.cpus[0].node, 1);
    CHECK_EQ(topo.cpus[1].apic_id, 0);
    CHECK_EQ(topo.cpus[1].node, 0);
}

static void test_srat_vs_madt(void)
{
    /* SRAT lists a CPU the MADT does not have at all. */
    two_domains();
    add_srat_cpu(7, 1);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_WARNINGS("SRAT lists CPU with APIC id 7 that MADT lacks; ignored");
    CHECK_EQ(topo.ncpus, 4);
    CHECK_EQ(topo.nodes[1].ncpus, 2);
    CHECK_EQ(topo_core_of_apic(&topo, 7), -1);

    /* An enabled MADT CPU has no SRAT entry: first node. */
    two_domains();
    srat.cpus[0].apic_id = 9;      /* APIC 0's entry now names a phantom */
    CHECK_ERR(build(&srat, NULL, 1), ERR_OK);
    CHECK_WARNINGS("SRAT lists CPU with APIC id 9 that MADT lacks; ignored",
                   "MADT lists CPU with APIC id 0 that SRAT lacks; placed on node 0 (domain 0)");
    CHECK_EQ(topo.cpus[topo_core_of_apic(&topo, 0)].node, 0);
    CHECK_EQ(topo.nodes[0].ncpus, 2);

    /* The same CPU twice in SRAT, in different domains: the first wins. */
    two_domains();
    add_srat_cpu(2, 0);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_WARNINGS("SRAT places CPU with APIC id 2 in domains 1 and 0; using domain 1");
    CHECK_EQ(topo.cpus[2].node, 1);

    /* An SRAT naming nothing we can use: one node, with a warning. */
    two_domains();
    srat_clear();
    add_srat_cpu(42, 3);
    add_srat_mem(0, 1ull << 30, 2, true);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_WARNINGS("SRAT lists CPU with APIC id 42 that MADT lacks; ignored",
                   "SRAT gives no domain for any enabled CPU or memory; treating the machine as one node");
    CHECK(!topo.numa_from_srat);
    CHECK_EQ(topo.nnodes, 1);
    CHECK_EQ(topo.nodes[0].ncpus, 4);
    CHECK_EQ(topo.nranges, 0);
}

static void test_nodes_without(void)
{
    /* Domain 1 has CPUs but no memory (-numa node,cpus=2-3 without mem). */
    two_domains();
    srat.nmem = 1;
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_WARNINGS("NUMA node 1 (domain 1) has CPUs but no memory; kept as is");
    CHECK_EQ(topo.nnodes, 2);
    CHECK_EQ(topo.nodes[1].ncpus, 2);
    CHECK_EQ(topo.nodes[1].mem_bytes, 0);

    /* Domain 2 has memory but no CPUs. */
    two_domains();
    add_srat_mem(2ull << 30, 1ull << 30, 2, false);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_WARNINGS("NUMA node 2 (domain 2) has memory but no CPUs; kept as is");
    CHECK_EQ(topo.nnodes, 3);
    CHECK_EQ(topo.nodes[2].ncpus, 0);
    CHECK_EQ(topo.nodes[2].mem_bytes, 1ull << 30);
    CHECK_EQ(topo_node_of_addr(&topo, (2ull << 30) + 5), 2);

    /* A domain whose only CPUs are disabled and which has no memory is no node. */
    two_domains();
    add_srat_cpu(8, 5);
    madt.cpus[madt.ncpus++] = (struct acpi_cpu){ .apic_id = 8, .uid = 4, .enabled = false };
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK_EQ(topo.nnodes, 2);
}

static void test_memory_ranges(void)
{
    /* Out-of-order ranges are sorted; hot-pluggable and empty ones dropped. */
    two_domains();
    srat_clear();
    for (uint32_t i = 0; i < 4; i++)
        add_srat_cpu(i, i / 2);
    add_srat_mem(3ull << 30, 1ull << 30, 1, false);
    add_srat_mem(8ull << 30, 1ull << 30, 1, true);
    add_srat_mem(1ull << 30, 1ull << 30, 0, false);
    add_srat_mem(5ull << 30, 0, 1, false);
    add_srat_mem(0, 0xa0000, 0, false);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK_EQ(topo.nranges, 3);
    check_range(0, 0, 0xa0000, 0);
    check_range(1, 1ull << 30, 1ull << 30, 0);
    check_range(2, 3ull << 30, 1ull << 30, 1);
    CHECK_EQ(topo.nodes[0].mem_bytes, (1ull << 30) + 0xa0000);
    CHECK_EQ(topo.nodes[1].mem_bytes, 1ull << 30);
    CHECK_EQ(topo_node_of_addr(&topo, (3ull << 30) + 4096), 1);
    CHECK_EQ(topo_node_of_addr(&topo, 8ull << 30), 0);

    /* Overlap across domains: no model. */
    two_domains();
    add_srat_mem((1ull << 30) - 4096, 8192, 1, false);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OVERLAP);
    two_domains();
    add_srat_mem(0x1000, 0x1000, 1, false);          /* inside domain 0's range */
    CHECK_ERR(build(&srat, NULL, 0), ERR_OVERLAP);

    /* Overlap within one domain: merged, counted once. */
    two_domains();
    add_srat_mem(0x3ff00000, 0x200000, 0, false);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OVERLAP);   /* runs into domain 1 */
    two_domains();
    add_srat_mem(0x30000000, 0x10000000, 0, false);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_WARNINGS("SRAT memory ranges at 0x0 and 0x30000000 of domain 0 overlap; merged");
    CHECK_EQ(topo.nranges, 2);
    check_range(0, 0, 1ull << 30, 0);
    CHECK_EQ(topo.nodes[0].mem_bytes, 1ull << 30);
}

static void test_too_many_domains(void)
{
    static uint32_t ids[TOPO_MAX_NODES + 1];
    for (uint32_t i = 0; i <= TOPO_MAX_NODES; i++)
        ids[i] = i;
    madt_set(ids, TOPO_MAX_NODES);
    srat_clear();
    for (uint32_t i = 0; i < TOPO_MAX_NODES; i++)
        add_srat_cpu(i, i * 3);
    CHECK_ERR(build(&srat, NULL, 0), ERR_OK);
    CHECK_EQ(topo.nnodes, TOPO_MAX_NODES);
    CHECK_EQ(topo.nodes[TOPO_MAX_NODES - 1].domain, (TOPO_MAX_NODES - 1) * 3);
    /* All nodes lack memory: one warning each. */
    CHECK_EQ(warnings.n, TOPO_MAX_NODES);

    madt_set(ids, TOPO_MAX_NODES + 1);
    add_srat_cpu(TOPO_MAX_NODES, 1000);
    CHECK_ERR(build(&srat, NULL, 0), ERR_TOO_MANY);
}

static void test_slit_checks(void)
{
    /* Right size: used. */
    two_domains();
    slit_set(2, 10, 17);
    CHECK_ERR(build(&srat, &slit, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK(topo.dist_from_slit);
    CHECK_EQ(topo.dist[0][1], 17);

    /* Wrong size: fall back. */
    slit_set(3, 10, 17);
    CHECK_ERR(build(&srat, &slit, 0), ERR_OK);
    CHECK_WARNINGS("SLIT has 3 localities but SRAT domains run from 0 to 1; "
                   "using distances 10 local, 20 remote");
    check_fallback_distances();
    slit_set(1, 10, 17);
    CHECK_ERR(build(&srat, &slit, 0), ERR_OK);
    CHECK_WARNINGS("SLIT has 1 localities but SRAT domains run from 0 to 1; "
                   "using distances 10 local, 20 remote");
    check_fallback_distances();

    /* Bad diagonal; remote too close; unreachable. */
    slit_set(2, 10, 17);
    slit.dist[1][1] = 12;
    CHECK_ERR(build(&srat, &slit, 0), ERR_OK);
    CHECK_WARNINGS("SLIT gives locality 1 a distance of 12 to itself, not 10; "
                   "using distances 10 local, 20 remote");
    check_fallback_distances();
    slit_set(2, 10, 10);
    CHECK_ERR(build(&srat, &slit, 0), ERR_OK);
    CHECK_WARNINGS("SLIT distance from locality 0 to 1 is 10, outside 11..254; "
                   "using distances 10 local, 20 remote");
    check_fallback_distances();
    slit_set(2, 10, 20);
    slit.dist[1][0] = 255;
    CHECK_ERR(build(&srat, &slit, 0), ERR_OK);
    CHECK_WARNINGS("SLIT distance from locality 1 to 0 is 255, outside 11..254; "
                   "using distances 10 local, 20 remote");
    check_fallback_distances();

    /* Sparse domains 0 and 2: the SLIT covers 0..2 and is indexed by domain. */
    two_domains();
    for (uint32_t i = 0; i < srat.ncpus; i++)
        srat.cpus[i].domain *= 2;
    srat.mem[1].domain = 2;
    slit_set(3, 10, 20);
    slit.dist[0][2] = slit.dist[2][0] = 31;
    CHECK_ERR(build(&srat, &slit, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK_EQ(topo.nnodes, 2);
    CHECK_EQ(topo.nodes[1].domain, 2);
    CHECK(topo.dist_from_slit);
    CHECK_EQ(topo.dist[0][1], 31);
    CHECK_EQ(topo.dist[1][0], 31);
    CHECK_EQ(topo.dist[1][1], 10);

    /* No SRAT: a one-locality SLIT is fine, anything else is ignored. */
    static const uint32_t ids[] = { 0, 1 };
    madt_set(ids, 2);
    slit_set(1, 10, 0);
    CHECK_ERR(build(NULL, &slit, 0), ERR_OK);
    CHECK_NO_WARNINGS();
    CHECK(topo.dist_from_slit);
    slit_set(2, 10, 20);
    CHECK_ERR(build(NULL, &slit, 0), ERR_OK);
    CHECK_WARNINGS("SLIT has 2 localities but without SRAT the machine is one node; "
                   "using distances 10 local, 20 remote");
    check_fallback_distances();

    /* A NULL warn callback is allowed. */
    CHECK_ERR(topo_build(&madt, NULL, &slit, 0, &topo, NULL, NULL), ERR_OK);
}

int main(void)
{
    test_qemu_two_nodes();
    test_qemu_four_nodes();
    test_qemu_no_numa();
    test_qemu_hotplug_cpus();
    test_cpu_errors();
    test_boot_cpu_first();
    test_srat_vs_madt();
    test_nodes_without();
    test_memory_ranges();
    test_too_many_domains();
    test_slit_checks();
    return check_done();
}
