/*
 * The memory service's client (servers/mem, if/mem.if, docs/memory.md):
 * RAM and Frames on a NUMA node, and libnuma-style placement on top.
 *
 *   libnuma                    here
 *   numa_alloc_onnode(s, n)    numa_alloc_onnode(s, n)   (s <= 2 MiB)
 *   numa_alloc_local(s)        numa_alloc_local(s)
 *   numa_free(p, s)            numa_free(p, s)
 *   numa_node_of_cpu(c)        numa_node_of_core(c)      (<atoll/topo.h>)
 *   numa_distance(a, b)        numa_distance(a, b)       (<atoll/topo.h>)
 *
 * The first call connects to the nearest instance of "mem" (the name
 * server's lookup); under the `central` design, to the instance on node 0.
 */
#ifndef ATOLL_MEM_H
#define ATOLL_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/lib/caps.h>

#define MEM_NEAREST 0xffffffffu   /* the caller's node, then the nearest by SLIT distance */
#define MEM_ANY     0xfffffffeu   /* wherever the instance serves cheapest: its pool, then nearest */
#define MEM_PAGE      4096ull
#define MEM_MAX_BYTES (1ull << 30)   /* one allocation: larger is ERR_BAD_LENGTH */
#define MEM_MAX_ALIGN (1ull << 30)
/* Per client channel (docs/limits.md): past either, ERR_QUOTA. */
#define MEM_QUOTA_ALLOCS 64   /* = MON_CAPS_HELD_PER_DOMAIN: what a domain may hold from other cores */
#define MEM_QUOTA_BYTES  (256ull << 20)
/* RAM an instance has lent to monitors for the domains they spawn, at
 * once (mem.if spawn_ram): = MON_CAPS_OBJECTS_PER_DOMAIN, the monitor's
 * bound on its lends. */
#define MEM_SPAWN_MAX 32
#define MEM_SPAWN_PER_CLIENT 16   /* of those, asked by one client channel */
#define MEM_SPAWN_DEFAULT_BYTES (4ull << 20)
/* The `cache` design: 4 KiB Frames come from RAM blocks of this many pages. */
#define MEM_CACHE_PAGES 16

enum { MEM_DESIGN_PER_NODE = 0, MEM_DESIGN_CENTRAL = 1, MEM_DESIGN_CACHE = 2, MEM_DESIGN_UNKNOWN = 99 };
static inline uint32_t mem_design_of(const char *w)
{
    const char *names[] = { "per-node", "central", "cache" };
    for (uint32_t i = 0; i < 3; i++) {
        const char *a = names[i], *b = w;
        while (*a && *a == *b)
            a++, b++;
        if (!*a && !*b)
            return i;
    }
    return MEM_DESIGN_UNKNOWN;
}
static inline const char *mem_design_name(uint32_t d)
{
    return d == MEM_DESIGN_PER_NODE ? "per-node" : d == MEM_DESIGN_CENTRAL ? "central" : d == MEM_DESIGN_CACHE ? "cache" : "?";
}

struct mem_block {
    uint64_t id;          /* the service's */
    capslot_t slot;       /* our capability */
    uint64_t base, size;  /* physical */
    uint32_t node;        /* whose memory it is */
};

/* Act as `design` whatever the instances say (before the first call; the
 * `mem` benchmark compares the designs in one boot: the service is the
 * same for all three, only its clients differ). */
void mem_use_design(uint32_t design);
/* Connect (done by the first call of any of these). *design if not NULL. */
errval_t mem_connect(uint32_t *design);
/* type CAP_RAM or CAP_FRAME; align 0: 4 KiB; where: a node, MEM_NEAREST, MEM_ANY. */
errval_t mem_alloc(uint32_t type, uint64_t bytes, uint64_t align, uint32_t where, struct mem_block *out);
/* Give it back: the capability goes (on every core). */
errval_t mem_free(struct mem_block *b);
/* Free by id alone (tests: a double free, someone else's id). */
errval_t mem_free_id(uint64_t id);
/* Requests this domain asked again because the instance answered
 * ERR_WOULD_BLOCK (it could not start a worker for them). */
uint64_t mem_busy_retries(void);

struct mem_node_stats {
    uint64_t total, free, lent, borrowed, base, end, allocs, lent_to;
    uint32_t batches_lent, batches_held;   /* batches of this pool lent, and borrowed, live now */
    uint64_t batches_ever;                 /* batches borrowed by this instance, ever */
    uint64_t deferred;                     /* requests answered once another node's instance had */
    uint32_t workers_max;                  /* the most of those in flight at once */
    uint64_t spawned;                      /* domains' RAM lent to monitors (spawn_ram), live now */
    uint64_t spawned_ever;                 /* such blocks lent, ever */
};
/* Node `node`'s instance's view: its pool; lent_to = what it lent to `to`. */
errval_t mem_stats(uint32_t node, uint32_t to, struct mem_node_stats *out);

/* Every node's stats (nnodes of them), and what each node borrowed from the
 * others; then printed as a table with one mem_stats event per node. */
errval_t mem_table(struct mem_node_stats *s, uint64_t *borrowed, uint32_t *nnodes);
void mem_table_print(const struct mem_node_stats *s, const uint64_t *borrowed, uint32_t nnodes);
/* The service id of the instance we call (tests open a second channel to it). */
errval_t mem_home(uint64_t *service);
/* Is there a memory service (one lookup, no waiting)? */
errval_t mem_present(void);
/* A domain's RAM for a spawn on `core`, from the instance of that core's
 * node, lent to that core's monitor (mem.if spawn_ram): pass *base as
 * monclient spawn's ram_base. `bytes` 0: 4 MiB. */
errval_t mem_spawn_ram(uint32_t core, uint64_t bytes, uint64_t *base, uint64_t *size, uint32_t *node);
/* Spawn "program args" on `core` with its RAM from the memory service
 * (mem_spawn_ram, then monclient spawn), or, when the service cannot give
 * it (none, no block, its limit), from the core's monitor as before.
 * *id: the domain; *how: where its RAM came from. The error is the
 * spawn's (the service's only says why the monitor's RAM was used). */
struct mem_spawned {
    bool from_service;
    errval_t why;         /* from the monitor: why not the service's */
    uint64_t base, size;  /* from the service: the RAM */
    uint32_t node;
};
errval_t mem_spawn(uint32_t core, const char *cmd, uint64_t *id, struct mem_spawned *how);
/* Open now the channels mem_spawn uses (to every node's instance), so that
 * a spawner's footprint is the same before its first spawn as after
 * (the shell does it at start). ERR_NOT_FOUND: no memory service. */
errval_t mem_spawn_ready(void);

/* A number in decimal or 0x hex from *s, which moves past it (and past
 * spaces and newlines after it). */
uint64_t mem_number(const char **s);

/* Where this domain's malloc heap grows from (a policy per domain, as
 * libnuma's numa_set_localalloc / numa_set_preferred): from the memory
 * service, in Frames of at most 2 MiB (the rest of the heap's current
 * 2 MiB), on `where` (MEM_NEAREST: this core's node first, then by SLIT
 * distance; a node: that node first, then as MEM_NEAREST; MEM_HEAP_OWN:
 * the domain's own RAM again, for growth from now on). Without a memory
 * service (one lookup, no waiting), or when it refuses a piece (quota, no
 * memory), the heap grows from the domain's own RAM as before: the call
 * says ERR_NOT_FOUND and prints one line, mem_heap_stats counts each piece
 * so grown and the error why. The heap's Frames go back when the domain
 * ends (its channel hangs up), like anything it held. */
#define MEM_HEAP_OWN 0xfffffffdu
errval_t mem_heap_place(uint32_t where);
struct mem_heap_stats {
    uint32_t where;           /* the policy (MEM_HEAP_OWN, MEM_NEAREST, a node) */
    uint32_t blocks;          /* Frames from the service */
    uint64_t service_bytes;   /* heap bytes they back */
    uint64_t own_bytes;       /* heap bytes backed from the domain's own RAM since the policy */
    uint32_t fallbacks;       /* pieces backed from own RAM although the policy said the service */
    errval_t why;             /* the last fallback's error */
    bool from_spawn;          /* the policy was given at spawn (+mem=WORD) */
};
void mem_heap_stats(struct mem_heap_stats *out);
/* The policy by word: nearest (or local), any, own, or a node's number
 * (ERR_INVALID_ARG otherwise). The start-up code calls it for a program
 * spawned with `+mem=WORD` as its first argument (docs/memory.md). */
errval_t mem_heap_place_word(const char *word);
/* The i-th Frame behind the heap (ERR_NOT_FOUND past the last). */
errval_t mem_heap_block(uint32_t i, struct mem_block *out);
void numa_set_localalloc(void);      /* mem_heap_place(MEM_NEAREST); numa_error() says a fallback */
void numa_set_preferred(int node);   /* mem_heap_place(node) */

/* libnuma style: mapped, zeroed by the kernel's retype; NULL on error
 * (numa_error() says why: <atoll/topo.h>). At most 2 MiB a call. */
void *numa_alloc_onnode(uint64_t bytes, int node);
void *numa_alloc_local(uint64_t bytes);
void numa_free(void *p, uint64_t bytes);

#endif
