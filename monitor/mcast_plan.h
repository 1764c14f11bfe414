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
 * core when none is measured) among those that lead a cluster of the
 * mesh, when one of them is to be asked.
 *
 * Within a node the tree goes deeper: a core that must ask more than
 * MCAST_FANOUT others (a leader, or the home for its own node) asks
 * MCAST_FANOUT subtree leaders instead, each of which asks the rest of its
 * subtree (splitting again when that is still too many), along the
 * monitors' mesh (mesh_plan.h): another cluster of the node is reached
 * through its leader, so that every send has a direct channel
 * (mcast_split_linked). A core's sends
 * and its reads of the answers are one after another, so a flat node of k
 * cores costs the asker about 2k transfers on its critical path, a tree
 * about 2 * MCAST_FANOUT per level (docs/spanning.md, measured by the cost
 * model's chain).
 */
#ifndef ATOLL_MCAST_PLAN_H
#define ATOLL_MCAST_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#define MCAST_MAX_CORES 256
#define MCAST_MAX_NODES 16
#define MCAST_FANOUT 4     /* subtrees a core asks at most, within a node */

struct mcast_in {
    uint32_t ncores, nnodes, home;
    const uint16_t *core_node;                        /* [ncores] */
    const uint16_t (*distance)[MCAST_MAX_NODES];      /* SLIT, [nnodes][nnodes] */
    const uint64_t *core_cost;                        /* [ncores] ns, 0: not measured */
    const uint64_t *node_cost;                        /* [nnodes] ns, 0: not measured */
    const uint64_t *targets;                          /* a bit per core, [4] */
    const uint16_t *cluster_leader;                   /* [ncores] the mesh's (mesh_plan.h); NULL: all linked */
};

struct mcast_send {
    uint32_t core;
    uint64_t fwd[4];   /* what it forwards to (a node or subtree leader) */
    uint32_t fanout;   /* how it forwards: 0 asks each core of fwd; else
                          at most this many subtrees (mcast_split) */
};

/* The sends in order into out[0..max); returns how many. *by_cost: the
 * nodes were ordered by measured costs (not by distances). */
uint32_t mcast_plan(const struct mcast_in *in, struct mcast_send *out, uint32_t max, bool *by_cost);

/* `set` (a bit per core) in at most `fanout` (>= 1) subtrees of cores next
 * to each other, as even as they divide: out[i].core leads one, out[i].fwd
 * is the rest of it, to be split again by the same rule (out[i].fanout =
 * fanout). A set of at most `fanout` cores is asked core by core (each
 * out[i] a leaf). Returns how many: at most max, in fewer and larger
 * subtrees when max is below fanout (every core is in one). */
uint32_t mcast_split(const uint64_t set[4], uint32_t fanout, struct mcast_send *out, uint32_t max);

/* mcast_split for an `asker` on a mesh of clusters (cluster_leader[c],
 * mesh_plan.h; NULL: every pair linked, as mcast_split): every send of the
 * tree goes over a direct channel where the mesh has one. The asker's own
 * cluster (all linked to it) is split as mcast_split does; each other
 * cluster in the set is reached through its leader (linked to every other
 * leader), which asks the rest of it; when there are more such clusters
 * than subtrees to spare, a subtree leader takes several and asks the
 * other clusters' leaders in turn. Without this, a subtree of cores next
 * to each other across two clusters cost every message to the far one two
 * or three mesh hops (a forward through each cluster leader on the way). */
uint32_t mcast_split_linked(const uint64_t set[4], uint32_t fanout, uint32_t asker, const uint16_t *cluster_leader,
                            uint32_t ncores, struct mcast_send *out, uint32_t max);

/* A new round trip into a running measure (an average weighted 1/8 to the
 * newest; the first one as it is). */
uint64_t mcast_cost_update(uint64_t old, uint64_t sample);

#endif
