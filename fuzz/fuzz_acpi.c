/*
 * Fuzz target: the CPU driver's whole ACPI path (cpudriver/main.c,
 * read_acpi): RSDP, RSDT/XSDT walk with checksums, MADT, SRAT, SLIT, then
 * the topology built from them (cpudriver/topology.c).
 *
 * The input is a small physical memory: the RSDP at address 0 and every
 * physical address p at input[p]; the mapper refuses what lies outside.
 * The corpus holds the tables of QEMU 7.2 machines of several shapes
 * (q35 and pc, 1 to 64 CPUs, 1 to 8 NUMA nodes, with distances), dumped
 * from the guest's memory and relocated into that layout with their
 * pointers and checksums fixed (tools/fuzz-corpus).
 */
#include <string.h>
#include "acpi.h"
#include "topology.h"
#include "fuzz.h"

struct window {
    const uint8_t *p;
    size_t n;
};

static const void *map(void *ctx, uint64_t phys, size_t len)
{
    const struct window *w = ctx;
    if (phys > w->n || len > w->n - phys)
        return NULL;
    return w->p + phys;
}

int fuzz_one(const uint8_t *data, size_t size)
{
    static struct acpi_madt_info madt;
    static struct acpi_srat_info srat;
    static struct acpi_slit_info slit;
    static struct topology topo;
    struct window w = { data, size };
    struct acpi_mapper m = { map, &w };
    uint64_t root;
    bool xsdt;
    if (acpi_parse_rsdp(data, size < 36 ? size : 36, &root, &xsdt) != ERR_OK)
        return 0;
    struct acpi_tables t;
    if (acpi_find_tables(&m, root, xsdt, &t) != ERR_OK || !t.madt_phys)
        return 0;
    const void *p = map(&w, t.madt_phys, t.madt_len);
    FUZZ_ASSERT(p != NULL);     /* acpi_find_tables mapped it */
    if (acpi_parse_madt(p, t.madt_len, &madt) != ERR_OK)
        return 0;
    FUZZ_ASSERT(madt.ncpus <= ACPI_MAX_CPUS && madt.nioapics <= ACPI_MAX_IOAPICS);
    const struct acpi_srat_info *sp = 0;
    const struct acpi_slit_info *lp = 0;
    if (t.srat_phys && (p = map(&w, t.srat_phys, t.srat_len)) && acpi_parse_srat(p, t.srat_len, &srat) == ERR_OK)
        sp = &srat;
    if (sp && t.slit_phys && (p = map(&w, t.slit_phys, t.slit_len)) &&
        acpi_parse_slit(p, t.slit_len, &slit) == ERR_OK) {
        FUZZ_ASSERT(slit.n >= 1 && slit.n <= ACPI_MAX_DOMAINS);
        lp = &slit;
    }
    /* The boot CPU: the first enabled one, as on a real machine. */
    uint32_t boot = 0;
    for (size_t i = 0; i < madt.ncpus; i++)
        if (madt.cpus[i].enabled) {
            boot = madt.cpus[i].apic_id;
            break;
        }
    errval_t err = topo_build(&madt, sp, lp, boot, &topo, 0, 0);
    if (err == ERR_OVERLAP && sp)
        err = topo_build(&madt, 0, 0, boot, &topo, 0, 0);
    if (err)
        return 0;
    FUZZ_ASSERT(topo.ncpus >= 1 && topo.ncpus <= TOPO_MAX_CPUS);
    FUZZ_ASSERT(topo.nnodes >= 1 && topo.nnodes <= TOPO_MAX_NODES);
    FUZZ_ASSERT(topo.cpus[0].apic_id == boot);
    for (uint32_t i = 0; i < topo.nnodes; i++)
        FUZZ_ASSERT(topo.dist[i][i] == 10);
    for (uint32_t i = 0; i < topo.ncpus; i++)
        FUZZ_ASSERT(topo_core_of_apic(&topo, topo.cpus[i].apic_id) == (int)i);
    for (uint32_t i = 0; i < topo.nranges; i++) {
        const struct topo_range *r = &topo.ranges[i];
        FUZZ_ASSERT(r->len > 0 && r->len - 1 <= UINT64_MAX - r->base && r->node < topo.nnodes);
        if (i)  /* sorted, disjoint */
            FUZZ_ASSERT(topo.ranges[i - 1].base + (topo.ranges[i - 1].len - 1) < r->base);
        FUZZ_ASSERT(topo_node_of_addr(&topo, r->base) == r->node);
    }
    return 1;
}
