/*
 * The machine as the CPU driver found it at boot, handed to user space as
 * binary data: the ABI between the kernel, which learns the machine, and the
 * topology service (servers/topo), which builds the model and answers
 * questions about it (docs/topology.md).
 *
 * Two sources:
 *  - ACPI, read by the boot core: the CPUs (MADT), NUMA nodes and their
 *    memory (SRAT) and distances (SLIT), as `struct topology`;
 *  - CPUID, read by every CPU on itself: where it sits (package, core,
 *    thread from the APIC id layout) and its caches, as `struct cpu_place`.
 *    An application core sends its record to the boot core with its
 *    check-in (a binary message on its console channel).
 *
 * After every core has checked in, and before any user domain runs, the
 * boot core writes both into one frame, `struct machine`. Every domain finds
 * a read-only capability to it in SLOT_MACHINE (<atoll/abi/domain.h>); the
 * frame is never written again, so no core's kernel shares writable state.
 *
 * Data only, plus cpu_place_derive (the rule both sides must agree on);
 * includes nothing above <stdint.h>/<stdbool.h>.
 */
#ifndef ATOLL_ABI_MACHINE_H
#define ATOLL_ABI_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

/* ---- ACPI: CPUs, NUMA nodes, memory, distances ------------------------------- */

#define TOPO_MAX_CPUS    512   /* = ACPI_MAX_CPUS */
#define TOPO_MAX_NODES   64    /* = ACPI_MAX_DOMAINS (SLIT localities) */
#define TOPO_MAX_RANGES  64    /* = ACPI_MAX_MEM (SRAT memory ranges) */

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
     * mem_bytes is then all RAM the memory map lists. */
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

/* ---- CPUID: where one logical CPU sits ------------------------------------------ */

#define CPU_MAX_CACHES 6

enum cache_type { CACHE_DATA = 1, CACHE_INSTRUCTION = 2, CACHE_UNIFIED = 3 };

/* How the CPU's place was found (the CPUID leaf that gave the APIC id layout). */
enum cpu_place_source {
    CPU_SOURCE_NONE = 0,     /* not reported: derived from the APIC id */
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
    uint8_t shift;      /* sharers: same APIC id above this bit (32: the whole machine) */
};

struct cpu_place {
    uint32_t apic_id;        /* this CPU's own (x2)APIC id, from CPUID */
    uint32_t package;        /* apic_id >> package_shift */
    uint32_t core;           /* core number within the package */
    uint32_t thread;         /* thread number within the core */
    uint8_t smt_shift;       /* APIC id bits that number the threads of a core */
    uint8_t package_shift;   /* APIC id bits below the package number (<= 32) */
    uint8_t source;          /* enum cpu_place_source */
    uint8_t ncaches;
    struct cpu_cache caches[CPU_MAX_CACHES];   /* by level, then data/instruction/unified */
};

/* Vendor and model, from the boot core's CPUID. */
struct cpuid_ident {
    char vendor[13];      /* "GenuineIntel", "AuthenticAMD", ... */
    char brand[49];       /* 0x80000002..4, leading spaces dropped; "" if absent */
    uint32_t family, model, stepping;   /* display values from leaf 1 */
};

/* Fill package/core/thread from apic_id and the two shifts (a smt_shift
 * above package_shift is lowered to it). */
static inline void cpu_place_derive(struct cpu_place *p)
{
    uint32_t ps = p->package_shift, ss = p->smt_shift;
    if (ss > ps)
        ss = p->smt_shift = (uint8_t)ps;
    uint64_t id = p->apic_id;
    p->package = ps >= 32 ? 0 : (uint32_t)(id >> ps);
    p->core = (uint32_t)((id & ((1ull << ps) - 1)) >> ss);
    p->thread = (uint32_t)(id & ((1ull << ss) - 1));
}

/* ---- the frame ------------------------------------------------------------------ */

#define MACHINE_MAGIC   0x31454e494843414dull   /* "MACHINE1" */
#define MACHINE_VERSION 1u

struct machine_record {
    uint32_t reported;       /* 1: `place` is the core's own CPUID record; 0: the
                                core never checked in (place is all zero) */
    uint32_t reserved;
    struct cpu_place place;
};

struct machine {
    uint64_t magic;              /* MACHINE_MAGIC */
    uint32_t version;            /* MACHINE_VERSION */
    uint32_t bytes;              /* MACHINE_BYTES(ncpus): what is valid of the frame */
    uint32_t ncpus;              /* = topo.ncpus: records[] has this many */
    uint32_t reserved;
    struct cpuid_ident ident;    /* the boot core's CPU */
    struct topology topo;        /* ACPI */
    struct machine_record records[];   /* by core id */
};

#define MACHINE_BYTES(ncpus) (sizeof(struct machine) + (uint64_t)(ncpus) * sizeof(struct machine_record))

_Static_assert(sizeof(struct cpu_cache) == 24, "struct cpu_cache is part of the machine ABI");
_Static_assert(sizeof(struct cpu_place) == 168, "struct cpu_place is part of the machine ABI");
_Static_assert(sizeof(struct machine_record) == 176, "struct machine_record is part of the machine ABI");

#endif
