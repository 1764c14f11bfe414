/*
 * The machine's topology, from the topology service (servers/topo,
 * if/topology.if), in the style of libnuma and hwloc: how many nodes, which
 * node a core is on, the distance between two nodes, and the cores or
 * nodes of a set ordered nearest first. docs/topology.md.
 *
 * Every call is one round trip to the service (on core 0), over a channel
 * made by the first call (it waits up to 20 s for the service to start).
 * Ask once and keep what you need: the machine never changes.
 *
 *   libnuma / hwloc                       here
 *   numa_num_configured_nodes()           numa_num_nodes()
 *   numa_num_configured_cpus()            numa_num_cores()
 *   numa_node_of_cpu(cpu)                 numa_node_of_core(core)
 *   numa_distance(a, b)                   numa_distance(a, b)
 *   hwloc_get_closest_objs()              topo_nearest_cores(), topo_nearest_nodes()
 *   hwloc_get_shared_cache_covering_obj() topo_shared_cache()
 *
 * The numa_* functions return numbers as libnuma's do: -1 on any error
 * (numa_distance: 0, as libnuma), with the error from numa_error(). The
 * topo_* functions return the error itself: ERR_NO_SUCH_CORE or
 * ERR_NO_SUCH_NODE for a core or node the machine does not have, or the
 * channel's.
 */
#ifndef ATOLL_TOPO_H
#define ATOLL_TOPO_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define TOPO_CORESET_MAX 512   /* cores a set can hold (= the CPU driver's limit) */

/* A set of cores: bit c of w[c / 64]. */
struct topo_coreset {
    uint64_t w[TOPO_CORESET_MAX / 64];
};

static inline void topo_coreset_clear(struct topo_coreset *s)
{
    for (unsigned i = 0; i < TOPO_CORESET_MAX / 64; i++)
        s->w[i] = 0;
}

static inline void topo_coreset_add(struct topo_coreset *s, uint32_t core)
{
    if (core < TOPO_CORESET_MAX)
        s->w[core / 64] |= 1ull << (core % 64);
}

static inline bool topo_coreset_has(const struct topo_coreset *s, uint32_t core)
{
    return core < TOPO_CORESET_MAX && (s->w[core / 64] >> (core % 64)) & 1;
}

struct topo_machine_info {
    uint32_t cores;            /* logical CPUs: Atoll's cores */
    uint32_t nodes;            /* NUMA nodes */
    uint32_t packages;
    uint32_t physical_cores;
    bool numa_from_srat;       /* else one node holding everything */
    bool dist_from_slit;       /* else distances are 10 local, 20 remote */
    char source[16];           /* "cpuid.0xb", ...: where the layout came from */
    char vendor[13];
    char brand[49];
};

struct topo_core_info {
    uint32_t apic;
    uint32_t package;          /* number from the APIC id */
    uint32_t package_core;     /* core within the package */
    uint32_t thread;           /* thread within the core */
    uint32_t node;
    bool reported;             /* from the core's own CPUID (else placed by its APIC id) */
    uint32_t caches;           /* topo_cache() index 0 .. caches-1 */
};

struct topo_cache_info {
    uint32_t level;            /* 1, 2, 3 ... */
    uint32_t type;             /* 1 data, 2 instruction, 3 unified */
    uint64_t size;             /* bytes (0: unknown) */
    uint32_t line, ways;       /* ways 0: unknown or fully associative */
    uint32_t instances;        /* of this cache in the machine */
    struct topo_coreset sharers;   /* the cores sharing this one */
};

#define TOPO_NODES_MAX 64

struct topo_node_info {
    uint32_t domain;           /* ACPI proximity domain */
    uint64_t mem_bytes;
    uint32_t ncores;
    struct topo_coreset cores;
    uint8_t distance[TOPO_NODES_MAX];   /* to every node, 10 = local */
};

errval_t topo_machine(struct topo_machine_info *out);
errval_t topo_core(uint32_t core, struct topo_core_info *out);
/* ERR_NOT_FOUND for an index past the core's last cache. */
errval_t topo_cache(uint32_t core, uint32_t index, struct topo_cache_info *out);
/* The lowest level of a data or unified cache cores a and b share; 0: none. */
errval_t topo_shared_cache(uint32_t a, uint32_t b, uint32_t *level);
errval_t topo_node(uint32_t node, struct topo_node_info *out);
errval_t topo_distance(uint32_t from, uint32_t to, uint32_t *distance);
/* The cores of `among`, nearest first as seen from core `from`: by the
 * distance between their nodes, then by what of the hierarchy they share
 * (the core itself, a thread of the same core, the lowest shared cache,
 * the same package), then by number. Up to `max` into out; *n = how many
 * `among` has. */
errval_t topo_nearest_cores(uint32_t from, const struct topo_coreset *among, uint32_t *out, uint32_t max,
                            uint32_t *n);
/* The nodes of `among` (bit n: node n), nearest first from node `from`. */
errval_t topo_nearest_nodes(uint32_t from, uint64_t among, uint32_t *out, uint32_t max, uint32_t *n);
/* A piece of the hwloc XML from byte `offset`: whole lines, *text valid
 * until the next call; *total bytes and *lines in all. "" at the end. */
errval_t topo_xml(uint32_t offset, const char **text, uint32_t *total, uint32_t *lines);

/* libnuma style. */
int numa_num_nodes(void);
int numa_num_cores(void);
int numa_node_of_core(uint32_t core);
int numa_distance(uint32_t a, uint32_t b);
/* The nearest node of `among` to `node`, the nearest core of `among` to `core`. */
int numa_nearest_node(uint32_t node, uint64_t among);
int numa_nearest_core(uint32_t core, const struct topo_coreset *among);
/* Why the last numa_* call failed. */
errval_t numa_error(void);
/* For the other numa_* calls (<atoll/mem.h>): what numa_error() says next. */
void numa_set_error(errval_t err);

#endif
