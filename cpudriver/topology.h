/*
 * The machine as the CPU driver understands it: CPUs, NUMA nodes, their
 * memory and distances, combined from MADT, SRAT and SLIT.
 *
 * Pure code shared with the host tests. Inconsistent firmware never crashes
 * the build of the model: each problem is reported through the warn callback
 * with a sentence naming it, and the model falls back to something safe
 * (see topo_build).
 */
#ifndef ATOLL_TOPOLOGY_H
#define ATOLL_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include "acpi.h"

#define TOPO_MAX_CPUS    ACPI_MAX_CPUS
#define TOPO_MAX_NODES   ACPI_MAX_DOMAINS
#define TOPO_MAX_RANGES  ACPI_MAX_MEM

struct topo_cpu {
    uint32_t apic_id;
    uint32_t node;      /* dense node index */
};

struct topo_range {
    uint64_t base, len;
    uint32_t node;
};

struct topo_node {
    uint32_t domain;     /* ACPI proximity domain */
    uint32_t ncpus;
    uint64_t mem_bytes;  /* sum of this node's ranges */
};

struct topology {
    /* Enabled CPUs only. Core id = index; the boot CPU is core 0, the others
     * follow in MADT order. */
    struct topo_cpu cpus[TOPO_MAX_CPUS];
    uint32_t ncpus;
    /* Nodes sorted by proximity domain; node index = position. A machine
     * without SRAT has one node (domain 0) holding everything; its
     * mem_bytes is then 0, as no range is known. */
    struct topo_node nodes[TOPO_MAX_NODES];
    uint32_t nnodes;
    /* Memory ranges from SRAT (enabled, non-hotplug), sorted by base. Without
     * SRAT: empty, meaning "all memory is node 0". */
    struct topo_range ranges[TOPO_MAX_RANGES];
    uint32_t nranges;
    /* dist[i][j] between node indices; from SLIT when it is present and
     * consistent, else 10 on the diagonal and 20 elsewhere. */
    uint8_t dist[TOPO_MAX_NODES][TOPO_MAX_NODES];
    bool dist_from_slit;
    bool numa_from_srat;
};

typedef void (*topo_warn_fn)(void *ctx, const char *msg);

/*
 * Build the model. `srat` and `slit` may be NULL (table absent).
 * Errors (no model possible): no enabled CPU (ERR_TOPO_NO_CPUS), boot CPU
 * absent from MADT or disabled there (ERR_TOPO_NO_BOOT_CPU), duplicate APIC
 * ids among enabled CPUs (ERR_DUPLICATE), more domains than TOPO_MAX_NODES
 * (ERR_TOO_MANY), overlapping SRAT memory ranges of different domains
 * (ERR_OVERLAP).
 * Nodes are the domains SRAT gives the enabled CPUs and the enabled,
 * non-hotplug, non-empty memory ranges.
 * Warnings, each with its fallback:
 *  - a CPU in SRAT that MADT lacks (a disabled MADT entry, a CPU that may be
 *    hot-added, counts as present): ignored;
 *  - a CPU listed twice in SRAT with different domains: the first wins;
 *  - an enabled MADT CPU without an SRAT entry: placed on the first node;
 *  - a node with CPUs but no memory, or memory but no CPUs: kept as is;
 *  - overlapping SRAT memory ranges of one domain: merged;
 *  - an SRAT that yields no node at all: one node, as without SRAT;
 *  - a SLIT whose size differs from the number of SRAT domains (its
 *    localities are proximity domains, so it must cover 0 .. the highest
 *    domain; without SRAT, exactly 1), whose diagonal is not 10, or with an
 *    off-diagonal entry below 11 or 255 (unreachable): distances fall back
 *    to 10 local / 20 remote.
 * `warn` may be NULL.
 */
errval_t topo_build(const struct acpi_madt_info *madt, const struct acpi_srat_info *srat,
                    const struct acpi_slit_info *slit, uint32_t boot_apic_id,
                    struct topology *out, topo_warn_fn warn, void *warn_ctx);

/* Node index of the memory at `phys` (0 when SRAT is absent or the address
 * lies in no range). */
uint32_t topo_node_of_addr(const struct topology *t, uint64_t phys);

/* Core id of `apic_id`, or -1. */
int topo_core_of_apic(const struct topology *t, uint32_t apic_id);

#endif
