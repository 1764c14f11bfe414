/*
 * The machine model of the topology service: what the CPU driver found at
 * boot (the machine frame, <atoll/abi/machine.h>: ACPI's CPUs, NUMA nodes,
 * memory and distances, and every core's own CPUID record) combined into
 * one `struct topo_model`, and the questions the service answers from it
 * (if/topology.if, docs/topology.md).
 *
 * Building it:
 *   machine_check           is the frame well formed? (header, tables, bounds)
 *   topo_model_from_machine  the whole model from a checked frame
 * or, piece by piece (the host tests do): topo_model_init, topo_model_set for
 * each core's record, topo_model_finish.
 *
 * A core's record says where it sits: package, core within the package and
 * thread within the core, from its APIC id and the two shifts of its CPUID
 * layout; and its caches, each shared by the logical CPUs whose APIC ids
 * agree above the cache's `shift`.
 *
 * Pure code shared with the host tests: no libc, no system calls.
 */
#ifndef ATOLL_TOPO_MODEL_H
#define ATOLL_TOPO_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/abi/machine.h>
#include <atoll/topo.h>     /* struct topo_coreset */

#define TOPO_MAX_CACHE_SETS 8
#define CPU_PLACE_EVENT_MAX 600   /* bytes of one cpu_topology event line, newline included */
#define TOPO_SET_WORDS (TOPO_CORESET_MAX / 64)
_Static_assert(TOPO_CORESET_MAX == TOPO_MAX_CPUS, "a set of cores holds every core");

typedef void (*topo_warn_fn)(void *ctx, const char *msg);

struct topo_cache_set {
    uint32_t ncaches;
    struct cpu_cache caches[CPU_MAX_CACHES];
};

struct topo_cpu_info {
    uint32_t apic_id, package, core, thread;
    uint8_t smt_shift, package_shift, source;
    uint8_t cache_set;       /* index into topo_model.sets */
    bool reported;           /* from the CPU's own CPUID (else derived) */
};

struct topo_model {
    const struct topology *acpi;     /* CPUs (index = core id), nodes, distances */
    uint32_t ncpus;                  /* = acpi->ncpus */
    struct topo_cpu_info *cpus;      /* ncpus entries, owned by the caller */
    struct topo_cache_set sets[TOPO_MAX_CACHE_SETS];   /* distinct cache layouts */
    uint32_t nsets;
    /* After topo_model_finish: */
    uint32_t npackages, ncores;
    char vendor[13];                 /* from the boot core's CPUID */
    char brand[49];
    uint32_t family, model, stepping;
};

/* ---- the frame ---------------------------------------------------------------- */

/* Is `m` (`bytes` of it readable) a machine frame this code understands?
 * ERR_BAD_SIGNATURE (magic), ERR_BAD_VERSION, ERR_TRUNCATED (shorter than
 * its header or its records), ERR_BAD_LENGTH (a count beyond its table, or
 * ncpus disagreeing with the ACPI model), ERR_INCONSISTENT (a CPU on a node
 * that does not exist, a node's CPU count or a range's node wrong, a
 * distance outside the ACPI rules, vendor or brand without their NUL).
 * The records are checked one by one when the model is built. */
errval_t machine_check(const struct machine *m, size_t bytes);

/* Is this record something the model can use? (shifts 0..32 and growing,
 * package/core/thread as the shifts derive them, at most CPU_MAX_CACHES
 * caches of level 1..7, type 1..3, shift 0..32). */
bool cpu_place_valid(const struct cpu_place *p);

/* The model from a frame machine_check accepted; `cpus` has m->ncpus
 * entries. A record that is not valid is left out with a warning (its
 * core is then placed like one that never reported). */
void topo_model_from_machine(struct topo_model *model, const struct machine *m, struct topo_cpu_info *cpus,
                             topo_warn_fn warn, void *warn_ctx);

/* ---- building it piece by piece ----------------------------------------------------- */

/* Start a model over `acpi` with `cpus` (acpi->ncpus entries) all unreported. */
void topo_model_init(struct topo_model *m, const struct topology *acpi, struct topo_cpu_info *cpus);

/* Record core `core`'s own report. Warns (and ignores it) if the core does
 * not exist, reported twice, or its APIC id differs from the one ACPI gives.
 * Of two caches of one level and type the first counts. A cache layout
 * beyond TOPO_MAX_CACHE_SETS distinct ones uses the first. */
void topo_model_set(struct topo_model *m, uint32_t core, const struct cpu_place *p,
                    topo_warn_fn warn, void *warn_ctx);

/* Place every CPU that did not report (it never came up, or its report was
 * lost) by its ACPI APIC id with the boot core's shifts and caches, warning
 * once per such CPU; then count packages and cores. */
void topo_model_finish(struct topo_model *m, topo_warn_fn warn, void *warn_ctx);

/* ---- questions (core ids as everywhere: dense, boot core 0) ------------------------- */

bool topo_same_package(const struct topo_model *m, uint32_t a, uint32_t b);
bool topo_same_core(const struct topo_model *m, uint32_t a, uint32_t b);
/* Do a and b share a data or unified cache of `level`? */
bool topo_share_cache(const struct topo_model *m, uint32_t a, uint32_t b, uint32_t level);
/* The cache of core c at (level, type), or NULL. */
const struct cpu_cache *topo_cache_of(const struct topo_model *m, uint32_t c, uint32_t level, uint32_t type);
/* The caches of core c (NULL for a core that does not exist; *n = 0). */
const struct cpu_cache *topo_caches_of(const struct topo_model *m, uint32_t c, uint32_t *n);
/* The cores sharing core c's cache `k` (of topo_caches_of), c included. */
void topo_cache_sharers(const struct topo_model *m, uint32_t c, const struct cpu_cache *k, struct topo_coreset *out);
/* How many instances of `k` (a cache of some core) the machine has. */
uint32_t topo_cache_instances(const struct topo_model *m, const struct cpu_cache *k);

/* Each of these: ERR_NO_SUCH_CORE for a core, ERR_NO_SUCH_NODE for a node
 * that does not exist; nothing is written then. */
errval_t topo_model_node_of_core(const struct topo_model *m, uint32_t core, uint32_t *node);
errval_t topo_model_distance(const struct topo_model *m, uint32_t from, uint32_t to, uint32_t *distance);
/* The lowest cache level a and b share (data or unified), 0 if none. */
errval_t topo_model_shared_level(const struct topo_model *m, uint32_t a, uint32_t b, uint32_t *level);
/* The cores of `among` (every core in it must exist), nearest first as seen
 * from core `from`: by NUMA distance between their nodes, then by how much
 * of the hierarchy they share (the core itself, a thread of the same core,
 * a shared cache from the lowest level up, the same package, nothing), then
 * by core id. *n = how many (the size of `among`); `out` has room for
 * TOPO_MAX_CPUS. */
errval_t topo_model_nearest_cores(const struct topo_model *m, uint32_t from, const struct topo_coreset *among,
                            uint16_t *out, uint32_t *n);
/* The nodes of `among` (bit n: node n; each must exist), nearest first from
 * node `from` by distance, then by node index. `out` has room for
 * TOPO_MAX_NODES. */
errval_t topo_model_nearest_nodes(const struct topo_model *m, uint32_t from, uint64_t among, uint8_t *out, uint32_t *n);

/* ---- printing ------------------------------------------------------------------------ */

/* "cpuid.0xb", "cpuid.0x1f", "cpuid.1", "none" */
const char *cpu_place_source_name(uint8_t source);

/* The cpu_topology event of core `core_id` (docs/topology.md) into buf
 * (NUL-terminated, ending in "\n"); returns its length, or 0 if it does not
 * fit:
 *
 *   @atoll {"event":"cpu_topology","core":3,"apic":3,"package":1,
 *           "package_core":0,"thread":1,"smt_shift":1,"package_shift":2,
 *           "source":"cpuid.0xb","caches":[[1,1,65536,64,2,1],...]}
 *
 * Each cache is [level, type, size in bytes, line size, ways, shift]. */
size_t cpu_place_format_event(const struct cpu_place *p, uint32_t core_id, char *buf, size_t size);

#endif
