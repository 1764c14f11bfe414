/*
 * The boot manifest: which services to start, where, and in what order
 * (docs/services.md). A text module in the image ("services"), one service
 * a line:
 *
 *     NAME PROGRAM PLACEMENT [after=DEP,DEP...] [restart=N] [backoff=MS] [heartbeat=yes|no] [ARGS...]
 *
 * PLACEMENT is core:K, per-node (one instance on the first core of every
 * NUMA node that has cores), per-node:last (on the last core of every node:
 * away from core 0, which runs the boot core's own servers), per-node:spare
 * (the last core of a node of MANIFEST_SPARE_CORES or more, the first of a
 * smaller one: off core 0 only where the node has cores to spare), per-core, or
 * nodes:LIST (the first core of each listed node: "0,2" or "1-3"). ARGS go to every instance, with $name
 * (the service's name), $key (its group's key), $core (the instance's
 * core) and $cores (all the placement's cores, "0,4" or "0-7") filled in. '#' starts a comment.
 *
 * Parsing is pure (host-tested, tests/host/test_manifest.c): a line that is
 * wrong is refused with a message naming it, and so is every service that
 * needs it (after=); the others still start. Refused: too few words, a name
 * or program that is not a plain word, a duplicate name, an unknown
 * placement, a core or node the machine does not have (or a node without
 * cores), an unknown dependency, a dependency cycle, too many services.
 */
#ifndef ATOLL_MANIFEST_H
#define ATOLL_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

/* The starter makes a group in the name server for each service and keeps
 * it (lib/recover.c, NAMES_KEPT, asserted in starter.c), beside its own
 * name "starter". With 8 kept, an 8th service was accepted and never
 * started (its group not kept: ERR_TOO_MANY). */
#define MANIFEST_MAX_SERVICES 32
#define MANIFEST_MAX_DEPS 4
#define MANIFEST_NAME_MAX 40
#define MANIFEST_ARGS_MAX 160
#define MANIFEST_WHY_MAX 120
#define MANIFEST_MAX_CORES 512
#define MANIFEST_MAX_NODES 16
/* per-node:spare: a node of this many cores has one to spare for a service
 * (4 cores a node is the memory benchmark's 16-core machine); on a smaller
 * one, the last core is the one a benchmark or a test uses beside core 0. */
#define MANIFEST_SPARE_CORES 4
/* Restart policy (docs/restart.md): an instance that ends is started again
 * after backoff= ms, doubled after each failed start in a row (one that
 * ends before it joined its group), until restart= failed starts in a row. */
#define MANIFEST_RESTART_DEFAULT 3
#define MANIFEST_RESTART_MAX 100
#define MANIFEST_BACKOFF_DEFAULT_MS 100
#define MANIFEST_BACKOFF_MAX_MS 60000

enum placement_kind { PLACE_CORE = 1, PLACE_PER_NODE, PLACE_PER_CORE, PLACE_NODES };
/* Which core of a node a PLACE_PER_NODE instance takes. */
enum node_core { NODE_FIRST, NODE_LAST, NODE_SPARE /* last if the node has MANIFEST_SPARE_CORES */ };

/* What the manifest needs to know of the machine. */
struct machine_shape {
    uint32_t ncores, nnodes;
    uint16_t core_node[MANIFEST_MAX_CORES];
};

struct manifest_service {
    char name[MANIFEST_NAME_MAX];
    char program[MANIFEST_NAME_MAX];
    char args[MANIFEST_ARGS_MAX];
    enum placement_kind kind;
    uint32_t core;                     /* PLACE_CORE */
    enum node_core node_core;          /* PLACE_PER_NODE */
    uint64_t nodes;                    /* PLACE_NODES: a bit per node */
    char placement[MANIFEST_NAME_MAX]; /* as written */
    char deps[MANIFEST_MAX_DEPS][MANIFEST_NAME_MAX];
    unsigned ndeps;
    uint32_t restart_limit;            /* restart=: failed starts in a row before giving up (0: never) */
    uint32_t backoff_ms;               /* backoff=: the first delay before a restart */
    bool heartbeat;                    /* heartbeat=yes: an instance beats from its start (docs/restart.md) */
    unsigned line;
    bool refused;
    char why[MANIFEST_WHY_MAX];        /* "line N: ..." */
};

struct manifest {
    struct manifest_service svc[MANIFEST_MAX_SERVICES];
    unsigned n;
    unsigned order[MANIFEST_MAX_SERVICES];   /* the accepted ones, dependencies first */
    unsigned norder;
    unsigned refused;
    unsigned beyond;                   /* lines refused for coming after MANIFEST_MAX_SERVICES */
    unsigned first_beyond;             /* the first of them */
};

/* Parse `len` bytes of manifest text for machine `m`. Never fails as a
 * whole: what is wrong is refused line by line (svc[i].refused, .why). */
void manifest_parse(const char *text, size_t len, const struct machine_shape *m, struct manifest *out);

/* The cores service `s` runs on, in core order: how many (at most max). */
unsigned manifest_cores(const struct manifest_service *s, const struct machine_shape *m, uint32_t *cores,
                        unsigned max);

/* `s`'s command line for an instance on `core` of machine `m`: "PROGRAM
 * ARGS" with $name, $key, $core, $cores (every core of the placement, as
 * runs: "0,4", "0-7") and $life (how many times this instance was started
 * before: 0 the first time; a replica that was never started before held
 * nothing it could have forgotten, docs/store.md) filled in.
 * ERR_MSG_TOO_LONG if it does not fit. */
errval_t manifest_command(const struct manifest_service *s, const struct machine_shape *m, uint32_t core,
                          uint64_t key, uint32_t life, char *out, size_t size);

#endif
