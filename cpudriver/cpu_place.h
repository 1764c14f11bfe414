/*
 * Where a logical CPU sits: its package, core and thread, and the caches it
 * uses with the set of logical CPUs sharing each. Every CPU works this out
 * from its own CPUID (x86_64/cpuid_topo.h) and reports it to the boot core as
 * one console event line (format below), because the boot core never reads
 * another core's kernel memory. The boot core combines the records with what
 * ACPI says (topology.h) into one machine model, struct topo_model, that the
 * XML writer (topo_xml.h) and every later service can query.
 *
 * The event line (docs/topology.md):
 *
 *   @atoll {"event":"cpu_topology","core":3,"apic":3,"package":1,
 *           "package_core":0,"thread":1,"smt_shift":1,"package_shift":2,
 *           "source":"cpuid.0xb","caches":[[1,1,65536,64,2,1],...]}
 *
 * Each cache is [level, type, size in bytes, line size, ways, shift]: type 1
 * data, 2 instruction, 3 unified; ways 0 means unknown or fully associative;
 * logical CPUs share the cache when their APIC ids agree above bit `shift`.
 *
 * Pure code shared with the host tests: no libc, no kernel services.
 */
#ifndef ATOLL_CPU_PLACE_H
#define ATOLL_CPU_PLACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "topology.h"

#define CPU_MAX_CACHES 6
#define TOPO_MAX_CACHE_SETS 8
#define CPU_PLACE_EVENT_MAX 600   /* bytes of one event line, newline included */

enum cache_type { CACHE_DATA = 1, CACHE_INSTRUCTION = 2, CACHE_UNIFIED = 3 };

/* How the CPU's place was found (the CPUID leaf that gave the APIC id layout). */
enum cpu_place_source {
    CPU_SOURCE_NONE = 0,     /* not reported: derived by the boot core */
    CPU_SOURCE_LEAF1 = 1,    /* leaf 1 (and AMD 0x80000008 / Intel leaf 4 counts) */
    CPU_SOURCE_LEAF_B = 0xb, /* x2APIC topology leaf */
    CPU_SOURCE_LEAF_1F = 0x1f,
};

struct cpu_cache {
    uint64_t size;      /* bytes; 0 = unknown */
    uint32_t line;      /* bytes; 0 = unknown */
    uint32_t ways;      /* 0 = unknown or fully associative */
    uint8_t level;      /* 1..7 */
    uint8_t type;       /* enum cache_type */
    uint8_t shift;      /* sharers: same APIC id above this bit */
};

struct cpu_place {
    uint32_t apic_id;        /* this CPU's own (x2)APIC id, from CPUID */
    uint32_t package;        /* apic_id >> package_shift */
    uint32_t core;           /* core number within the package */
    uint32_t thread;         /* thread number within the core */
    uint8_t smt_shift;       /* APIC id bits that number the threads of a core */
    uint8_t package_shift;   /* APIC id bits below the package number */
    uint8_t source;          /* enum cpu_place_source */
    uint8_t ncaches;
    struct cpu_cache caches[CPU_MAX_CACHES];   /* by level, then data/instruction/unified */
};

/* Fill package/core/thread from apic_id and the two shifts. */
void cpu_place_derive(struct cpu_place *p);

/* The cpu_topology event line of core `core_id` into buf (NUL-terminated,
 * ending in "\n"); returns its length, or 0 if it does not fit. */
size_t cpu_place_format_event(const struct cpu_place *p, uint32_t core_id, char *buf, size_t size);

/* Parse one console line (without or with its newline). True only for a
 * complete, well-formed cpu_topology event; *core_id and *out are then set.
 * Any other line, or a malformed one, gives false. */
bool cpu_place_parse_event(const char *line, size_t len, uint32_t *core_id, struct cpu_place *out);

/* ---- the machine model (boot core) ----------------------------------------- */

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

/* Start a model over `acpi` with `cpus` (acpi->ncpus entries) all unreported. */
void topo_model_init(struct topo_model *m, const struct topology *acpi, struct topo_cpu_info *cpus);

/* Record core `core`'s own report. Warns (and ignores it) if the core does
 * not exist, reported twice, or its APIC id differs from the one ACPI gives.
 * A cache layout beyond TOPO_MAX_CACHE_SETS distinct ones uses the first. */
void topo_model_set(struct topo_model *m, uint32_t core, const struct cpu_place *p,
                    topo_warn_fn warn, void *warn_ctx);

/* Place every CPU that did not report (it never came up, or its report was
 * lost) by its ACPI APIC id with the boot core's shifts and caches, warning
 * once per such CPU; then count packages and cores. */
void topo_model_finish(struct topo_model *m, topo_warn_fn warn, void *warn_ctx);

/* Queries (core ids as everywhere: dense, boot core 0). */
bool topo_same_package(const struct topo_model *m, uint32_t a, uint32_t b);
bool topo_same_core(const struct topo_model *m, uint32_t a, uint32_t b);
/* Do a and b share a data or unified cache of `level`? */
bool topo_share_cache(const struct topo_model *m, uint32_t a, uint32_t b, uint32_t level);
/* The cache of core c at (level, type), or NULL. */
const struct cpu_cache *topo_cache_of(const struct topo_model *m, uint32_t c, uint32_t level, uint32_t type);

#endif
