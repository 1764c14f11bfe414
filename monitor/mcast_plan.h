/*
 * The numa-multicast shootdown's tree (docs/spanning.md): which cores the
 * home monitor asks, in which order, and what each node leader forwards.
 * Pure: the host test tests/host/test_mcast_plan.c runs it.
 *
 * Farthest first, as in the multikernel paper: the other nodes' leaders
 * are asked first, the one whose answer takes longest first, so the long
 * round trips overlap; the cores of the home's own node are asked last and
 * directly (a leader there would add a hop to the cheapest messages).
 * "Longest" is measured: the monitor keeps the round trip of every answer
 * it got (a node leader's answer covers its node; another core's, itself).
 * Until every node to reach has a measure the SLIT distances order the
 * nodes (the first shootdowns), measured costs breaking ties. A node's
 * leader is its core with the cheapest measured round trip (the lowest
 * core when none is measured).
 */
#ifndef ATOLL_MCAST_PLAN_H
#define ATOLL_MCAST_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#define MCAST_MAX_CORES 256
#define MCAST_MAX_NODES 16

struct mcast_in {
    uint32_t ncores, nnodes, home;
    const uint16_t *core_node;                        /* [ncores] */
    const uint16_t (*distance)[MCAST_MAX_NODES];      /* SLIT, [nnodes][nnodes] */
    const uint64_t *core_cost;                        /* [ncores] ns, 0: not measured */
    const uint64_t *node_cost;                        /* [nnodes] ns, 0: not measured */
    const uint64_t *targets;                          /* a bit per core, [4] */
};

struct mcast_send {
    uint32_t core;
    uint64_t fwd[4];   /* what it forwards to (a node leader) */
};

/* The sends in order into out[0..max); returns how many. *by_cost: the
 * nodes were ordered by measured costs (not by distances). */
uint32_t mcast_plan(const struct mcast_in *in, struct mcast_send *out, uint32_t max, bool *by_cost);

/* A new round trip into a running measure (an average weighted 1/8 to the
 * newest; the first one as it is). */
uint64_t mcast_cost_update(uint64_t old, uint64_t sample);

#endif
