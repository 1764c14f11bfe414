/*
 * Which monitors hold a direct URPC channel to which, and how a message
 * for a core without one is forwarded. Pure functions of the machine's
 * shape, so every monitor computes the same plan on its own, and the host
 * tests check it (tests/host/test_mesh.c). docs/monitor.md justifies it.
 *
 * MESH_CLUSTER (the default): the cores of each NUMA node are cut, in core
 * order, into clusters of at most `cluster` cores; the cores of a cluster
 * are all linked to each other, and the first core of every cluster (its
 * leader) is linked to every other leader. A message takes at most three
 * hops (core -> its leader -> the destination's leader -> destination), and
 * at 255 cores on one node in clusters of 8 the machine needs 1,601
 * channels (boot channels included) instead of 32,385.
 * MESH_ALL: every pair linked (for comparison). MESH_STAR: nothing beyond
 * the boot channels, everything through core 0.
 *
 * Independently of the plan, core 0 holds a boot channel to every core;
 * a plan link between core 0 and another core is that boot channel.
 */
#ifndef ATOLL_MONITOR_MESH_PLAN_H
#define ATOLL_MONITOR_MESH_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#define MESH_MAX_CORES 512
#define MESH_DEFAULT_CLUSTER 8

enum mesh_kind { MESH_CLUSTER = 0, MESH_ALL = 1, MESH_STAR = 2 };

struct mesh_plan {
    uint32_t ncores;
    enum mesh_kind kind;
    uint32_t cluster;                  /* MESH_CLUSTER: cores per cluster */
    uint16_t leader[MESH_MAX_CORES];   /* first core of each core's cluster */
    bool down[MESH_MAX_CORES];         /* never came up: in no cluster, linked to none */
};

/* Plan for `ncores` cores, core c on node node_of[c]; cores with down[c]
 * set (down may be NULL) are left out, so no route passes through them.
 * False on bad arguments (no cores, too many, cluster 0, unknown kind, core
 * 0 down). */
bool mesh_plan_init(struct mesh_plan *p, uint32_t ncores, const uint16_t *node_of, enum mesh_kind kind,
                    uint32_t cluster, const bool *down);
/* Should a and b hold a direct channel (a != b, both up)? */
bool mesh_linked(const struct mesh_plan *p, uint32_t a, uint32_t b);
/* The core a message at `from` for `to` goes to next (to itself if
 * linked; from == to gives to). Both must be up. */
uint32_t mesh_next_hop(const struct mesh_plan *p, uint32_t from, uint32_t to);
/* Channels the plan needs, boot channels included. */
uint32_t mesh_channel_count(const struct mesh_plan *p);
const char *mesh_kind_name(enum mesh_kind k);

#endif
