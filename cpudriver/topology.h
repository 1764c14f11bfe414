/*
 * The machine as the CPU driver understands it: CPUs, NUMA nodes, their
 * memory and distances, combined from MADT, SRAT and SLIT.
 *
 * The types live in <atoll/abi/machine.h>: user space gets the same model in
 * the machine frame (topo_report.h).
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
#include <atoll/abi/machine.h>
#include "acpi.h"

/* The model's types (struct topology and its parts) are shared with user
 * space, which receives the model in the machine frame. */
_Static_assert(TOPO_MAX_CPUS == ACPI_MAX_CPUS, "one CPU table size for ACPI and the model");
_Static_assert(TOPO_MAX_NODES == ACPI_MAX_DOMAINS, "one node table size for ACPI and the model");
_Static_assert(TOPO_MAX_RANGES == ACPI_MAX_MEM, "one range table size for ACPI and the model");

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
/* How many CPUs node `node` has (0 for a memory-only node). */
uint32_t topo_cpus_on_node(const struct topology *t, uint32_t node);

/* Core id of `apic_id`, or -1. */
int topo_core_of_apic(const struct topology *t, uint32_t apic_id);

#endif
