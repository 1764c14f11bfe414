/*
 * The machine model (model.h) as hwloc 2.x XML, so that `lstopo --input
 * FILE.xml` draws the machine Atoll believes it runs on (docs/topology.md).
 *
 * Objects: Machine; Package; L3/L2/L1d/L1i caches (whatever CPUID reported,
 * with sizes); Core; PU (os_index = Atoll core id); NUMANode memory children
 * (os_index = dense node index, local_memory from SRAT) attached to the
 * highest object whose CPUs are exactly the node's, or to a Group made for
 * the node where no object matches; memory-only nodes hang off the Machine.
 * Every object carries cpuset, complete_cpuset, nodeset and complete_nodeset
 * in hwloc's bitmap syntax. The SLIT, when ACPI gave a usable one, becomes a
 * `<distances2>` NUMALatency matrix; without one no distances are written
 * (the 10/20 fallback is Atoll's guess, not the firmware's word).
 *
 * What does not fit hwloc's tree is reported through `warn` and simplified,
 * never invented: a cache level that not every CPU has, or whose sharing
 * does not nest inside packages and cores, is left out; a NUMA node whose
 * CPUs cut across packages or caches is attached to the smallest object
 * holding all of them.
 *
 * Pure code shared with the host tests; output goes through `write`.
 */
#ifndef ATOLL_TOPO_XML_H
#define ATOLL_TOPO_XML_H

#include <stddef.h>
#include "model.h"

typedef void (*topo_xml_write_fn)(void *ctx, const char *s, size_t n);

void topo_xml_write(const struct topo_model *m, topo_xml_write_fn write, void *ctx, topo_warn_fn warn,
                    void *warn_ctx);

#endif
