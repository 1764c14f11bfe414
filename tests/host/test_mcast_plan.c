/*
 * Host unit test for monitor/mcast_plan.c: the numa-multicast shootdown's
 * tree from distances and measured costs (docs/spanning.md).
 */
#include <string.h>
#include "check.h"
#include "mcast_plan.h"

#define HAS(b, c) (((b)[(c) / 64] >> ((c) % 64)) & 1)

static uint16_t core_node[MCAST_MAX_CORES];
static uint16_t dist[MCAST_MAX_NODES][MCAST_MAX_NODES];
static uint64_t core_cost[MCAST_MAX_CORES], node_cost[MCAST_MAX_NODES];
static uint64_t targets[4];
static struct mcast_send out[MCAST_MAX_CORES];

/* 4 nodes of 4 cores (0-3, 4-7, 8-11, 12-15); node 0 is 10 from itself,
 * 20 from node 1, 30 from node 2, 40 from node 3 (and symmetric). */
static void machine4(void)
{
    memset(core_cost, 0, sizeof core_cost);
    memset(node_cost, 0, sizeof node_cost);
    memset(targets, 0, sizeof targets);
    for (uint32_t c = 0; c < 16; c++)
        core_node[c] = (uint16_t)(c / 4);
    for (uint32_t a = 0; a < 4; a++)
        for (uint32_t b = 0; b < 4; b++)
            dist[a][b] = (uint16_t)(a == b ? 10 : 10 + 10 * (a > b ? a - b : b - a));
}

static struct mcast_in in_for(uint32_t home)
{
    return (struct mcast_in){ .ncores = 16, .nnodes = 4, .home = home, .core_node = core_node, .distance = dist,
                              .core_cost = core_cost, .node_cost = node_cost, .targets = targets };
}

static uint32_t count_bits(const uint64_t b[4])
{
    uint32_t n = 0;
    for (int i = 0; i < 4; i++)
        n += (uint32_t)__builtin_popcountll(b[i]);
    return n;
}

/* Every target reached exactly once (as a send or a forward), never home. */
static void check_covers(uint32_t n, uint32_t home)
{
    uint64_t seen[4] = { 0 };
    uint32_t reached = 0;
    for (uint32_t i = 0; i < n; i++) {
        CHECK(out[i].core != home && HAS(targets, out[i].core) && !HAS(seen, out[i].core));
        seen[out[i].core / 64] |= 1ull << (out[i].core % 64);
        reached++;
        for (uint32_t c = 0; c < 256; c++)
            if (HAS(out[i].fwd, c)) {
                CHECK(c != home && HAS(targets, c) && !HAS(seen, c));
                CHECK(core_node[c] == core_node[out[i].core]);
                seen[c / 64] |= 1ull << (c % 64);
                reached++;
            }
    }
    uint64_t want[4];
    memcpy(want, targets, sizeof want);
    want[home / 64] &= ~(1ull << (home % 64));
    CHECK_EQ(reached, count_bits(want));
}

static void test_by_distance_then_home_node_directly(void)
{
    machine4();
    for (uint32_t c = 0; c < 16; c++)
        targets[0] |= 1ull << c;
    struct mcast_in in = in_for(1);
    bool by_cost = true;
    uint32_t n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    CHECK(!by_cost);
    /* Nodes 3, 2, 1 (farthest first) by their lowest core, then 0, 2, 3. */
    CHECK_EQ(n, 6);
    CHECK_EQ(out[0].core, 12);
    CHECK_EQ(out[1].core, 8);
    CHECK_EQ(out[2].core, 4);
    CHECK_EQ(count_bits(out[0].fwd), 3);
    CHECK(HAS(out[0].fwd, 13) && HAS(out[0].fwd, 14) && HAS(out[0].fwd, 15));
    CHECK(out[3].core == 0 && out[4].core == 2 && out[5].core == 3);
    CHECK(count_bits(out[3].fwd) == 0 && count_bits(out[5].fwd) == 0);
    check_covers(n, 1);
}

static void test_measured_costs_order_nodes_and_pick_leaders(void)
{
    machine4();
    for (uint32_t c = 0; c < 16; c++)
        targets[0] |= 1ull << c;
    /* Measured: node 1's answers are the slowest (a loaded node), node 3's
     * the fastest, whatever the distances say. */
    node_cost[1] = 9000;
    node_cost[2] = 5000;
    core_cost[13] = 700;   /* only one core of node 3 measured: its estimate */
    core_cost[6] = 300;    /* node 1's cheapest core leads it */
    core_cost[5] = 800;
    struct mcast_in in = in_for(0);
    bool by_cost = false;
    uint32_t n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    CHECK(by_cost);
    CHECK_EQ(n, 6);
    CHECK_EQ(out[0].core, 6);    /* node 1, by its cheapest core */
    CHECK(HAS(out[0].fwd, 4) && HAS(out[0].fwd, 5) && HAS(out[0].fwd, 7) && !HAS(out[0].fwd, 6));
    CHECK_EQ(out[1].core, 8);    /* node 2 */
    CHECK_EQ(out[2].core, 13);   /* node 3: its one measured core leads */
    CHECK(out[3].core == 1 && out[4].core == 2 && out[5].core == 3);
    check_covers(n, 0);
    /* One node not measured yet: distances again, measures only break ties. */
    node_cost[2] = 0;
    n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    CHECK(!by_cost);
    CHECK(out[0].core == 13 && out[1].core == 8 && out[2].core == 6);
    check_covers(n, 0);
}

static void test_only_cores_that_ran_the_domain(void)
{
    machine4();
    /* Cores 2 (home's node), 9 (node 2 alone) and 14, 15 (node 3). */
    targets[0] = 1ull << 2 | 1ull << 9 | 1ull << 14 | 1ull << 15 | 1ull << 0;
    struct mcast_in in = in_for(0);
    bool by_cost;
    uint32_t n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    CHECK_EQ(n, 3);
    CHECK(out[0].core == 14 && HAS(out[0].fwd, 15) && count_bits(out[0].fwd) == 1);
    CHECK(out[1].core == 9 && count_bits(out[1].fwd) == 0);
    CHECK(out[2].core == 2);
    check_covers(n, 0);
    /* Nothing to reach but the home itself. */
    targets[0] = 1;
    CHECK_EQ(mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost), 0);
    /* One node, 4 cores to reach: each directly (a broadcast). */
    in.nnodes = 1;
    for (uint32_t c = 0; c < 16; c++)
        core_node[c] = 0;
    targets[0] = 0x1f;
    n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    CHECK_EQ(n, 4);
    for (uint32_t i = 0; i < n; i++)
        CHECK(count_bits(out[i].fwd) == 0 && out[i].fanout == 0);
    check_covers(n, 0);
    /* 7: more than MCAST_FANOUT, so 4 subtrees of cores next to each other
     * (1-2, 3-4, 5-6, 7), each leader asking the rest of its own. */
    targets[0] = 0xff;
    n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    CHECK_EQ(n, 4);
    CHECK(out[0].core == 1 && HAS(out[0].fwd, 2) && count_bits(out[0].fwd) == 1 && out[0].fanout == MCAST_FANOUT);
    CHECK(out[2].core == 5 && HAS(out[2].fwd, 6));
    CHECK(out[3].core == 7 && count_bits(out[3].fwd) == 0 && out[3].fanout == 0);
    check_covers(n, 0);
    /* max bounds the plan. */
    CHECK_EQ(mcast_plan(&in, out, 3, &by_cost), 3);
}

/* Every core of `set` reached once through the tree mcast_split makes,
 * splitting each subtree again as a leader would; returns its depth. */
static uint32_t walk(const uint64_t set[4], uint32_t fanout, uint64_t seen[4])
{
    struct mcast_send sub[MCAST_FANOUT + 1];
    uint32_t n = mcast_split(set, fanout, sub, MCAST_FANOUT + 1), depth = 0;
    CHECK(n <= fanout);
    for (uint32_t i = 0; i < n; i++) {
        CHECK(HAS(set, sub[i].core) && !HAS(seen, sub[i].core) && !HAS(sub[i].fwd, sub[i].core));
        seen[sub[i].core / 64] |= 1ull << (sub[i].core % 64);
        uint32_t d = count_bits(sub[i].fwd) ? walk(sub[i].fwd, sub[i].fanout, seen) : 0;
        CHECK((sub[i].fanout != 0) == (count_bits(sub[i].fwd) != 0));
        if (d > depth)
            depth = d;
    }
    return depth + 1;
}

static void test_subtrees(void)
{
    uint64_t set[4] = { 0 }, seen[4] = { 0 };
    struct mcast_send sub[8];
    CHECK_EQ(mcast_split(set, 4, sub, 8), 0);
    /* 15 cores (1-15): subtrees of 4, 4, 4 and 3, in order. */
    set[0] = 0xfffe;
    CHECK_EQ(mcast_split(set, 4, sub, 8), 4);
    CHECK(sub[0].core == 1 && count_bits(sub[0].fwd) == 3 && HAS(sub[0].fwd, 4));
    CHECK(sub[1].core == 5 && sub[2].core == 9 && sub[3].core == 13 && count_bits(sub[3].fwd) == 2);
    CHECK_EQ(walk(set, 4, seen), 2);
    CHECK(!memcmp(seen, set, sizeof set));
    /* Every core of the largest machine: log4(255) levels, each once. */
    memset(set, 0xff, sizeof set);
    set[3] &= ~(1ull << 63);
    memset(seen, 0, sizeof seen);
    CHECK_EQ(walk(set, 4, seen), 4);
    CHECK(!memcmp(seen, set, sizeof set));
    /* A fanout of 1 is a chain; 0 is taken as 1; max bounds the answer. */
    set[0] = 0xe;
    set[1] = set[2] = set[3] = 0;
    memset(seen, 0, sizeof seen);
    CHECK_EQ(walk(set, 1, seen), 3);
    CHECK_EQ(mcast_split(set, 0, sub, 8), 1);
    /* max below fanout: fewer, larger subtrees, no core left out. */
    set[0] = 0xfffe;
    CHECK_EQ(mcast_split(set, 4, sub, 2), 2);
    CHECK(sub[0].core == 1 && count_bits(sub[0].fwd) == 7 && sub[1].core == 9 && count_bits(sub[1].fwd) == 6);
}

/* 64 cores in 4 nodes of 16, in clusters of 8 (the mesh's default:
 * leaders 0, 8, 16, ...). */
static uint16_t cluster_leader[MCAST_MAX_CORES];

static bool linked(uint32_t a, uint32_t b)
{
    return a == 0 || b == 0 || cluster_leader[a] == cluster_leader[b] || (cluster_leader[a] == a && cluster_leader[b] == b);
}

/* As walk, for mcast_split_linked: every send over a direct channel. */
static uint32_t walk_linked(uint32_t asker, const uint64_t set[4], uint32_t fanout, uint64_t seen[4])
{
    struct mcast_send sub[MCAST_FANOUT];
    uint32_t n = mcast_split_linked(set, fanout, asker, cluster_leader, 64, sub, MCAST_FANOUT), depth = 0;
    CHECK(n <= fanout);
    for (uint32_t i = 0; i < n; i++) {
        CHECK(HAS(set, sub[i].core) && !HAS(seen, sub[i].core) && !HAS(sub[i].fwd, sub[i].core));
        CHECK(linked(asker, sub[i].core));
        seen[sub[i].core / 64] |= 1ull << (sub[i].core % 64);
        uint32_t d = count_bits(sub[i].fwd) ? walk_linked(sub[i].core, sub[i].fwd, sub[i].fanout, seen) : 0;
        CHECK((sub[i].fanout != 0) == (count_bits(sub[i].fwd) != 0));
        if (d > depth)
            depth = d;
    }
    return depth + 1;
}

static void test_subtrees_on_the_mesh(void)
{
    for (uint32_t c = 0; c < 64; c++)
        cluster_leader[c] = (uint16_t)(c - c % 8);
    uint64_t set[4] = { 0 }, seen[4] = { 0 };
    struct mcast_send sub[MCAST_FANOUT];
    /* Node 1's leader 16 asks 17-31: the other cluster through its leader
     * 24 first, its own cluster in the 3 subtrees left. */
    set[0] = 0xfffeull << 16;
    CHECK_EQ(mcast_split_linked(set, 4, 16, cluster_leader, 64, sub, MCAST_FANOUT), 4);
    CHECK(sub[0].core == 24 && count_bits(sub[0].fwd) == 7 && sub[0].fanout == 4);
    CHECK(sub[1].core == 17 && count_bits(sub[1].fwd) == 2 && sub[1].fanout == 4);
    CHECK(sub[2].core == 20 && sub[3].core == 22 && count_bits(sub[3].fwd) == 1);
    CHECK_EQ(walk_linked(16, set, 4, seen), 3);
    CHECK(!memcmp(seen, set, sizeof set));
    /* Without clusters, as mcast_split. */
    CHECK_EQ(mcast_split_linked(set, 4, 16, 0, 64, sub, MCAST_FANOUT), 4);
    CHECK(sub[0].core == 17 && sub[1].core == 21 && sub[2].core == 25 && sub[3].core == 29);
    /* One node of 64 from core 0: seven other clusters, three subtrees of
     * them (3, 2 and 2 clusters), core 0's own cluster in the fourth. */
    memset(set, 0xff, 8);
    set[0] &= ~1ull;
    memset(seen, 0, sizeof seen);
    CHECK_EQ(mcast_split_linked(set, 4, 0, cluster_leader, 64, sub, MCAST_FANOUT), 4);
    CHECK(sub[0].core == 8 && count_bits(sub[0].fwd) == 23 && sub[1].core == 32 && sub[2].core == 48);
    CHECK(sub[3].core == 1 && count_bits(sub[3].fwd) == 6);
    CHECK_EQ(walk_linked(0, set, 4, seen), 4);
    CHECK(!memcmp(seen, set, sizeof set));
    /* A cluster whose leader is not asked: led by its first core asked. */
    set[0] = (0xfeull << 8) | 0x6;   /* 9-15 and 1-2, asked by 0 */
    CHECK_EQ(mcast_split_linked(set, 4, 0, cluster_leader, 64, sub, MCAST_FANOUT), 3);
    CHECK(sub[0].core == 9 && count_bits(sub[0].fwd) == 6 && sub[1].core == 1 && sub[2].core == 2);
    /* One subtree only: everything under the first core. */
    CHECK_EQ(mcast_split_linked(set, 4, 0, cluster_leader, 64, sub, 1), 1);
    CHECK(sub[0].core == 1 && count_bits(sub[0].fwd) == 8);
}

/* A node's leader is one of its cluster leaders, the cheapest measured,
 * even when another of its cores measured cheaper. */
static void test_node_leaders_are_cluster_leaders(void)
{
    machine4();
    targets[0] = 0xffff;
    uint16_t leaders[16];
    for (uint32_t c = 0; c < 16; c++)
        leaders[c] = (uint16_t)(c - c % 2);   /* clusters of 2 */
    core_cost[5] = 10;
    core_cost[4] = 50;
    core_cost[6] = 40;
    struct mcast_in in = in_for(0);
    bool by_cost;
    uint32_t n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    bool node1 = false;
    for (uint32_t i = 0; i < n; i++)
        node1 |= out[i].core == 5;
    CHECK(node1);   /* without clusters, the cheapest core */
    in.cluster_leader = leaders;
    n = mcast_plan(&in, out, MCAST_MAX_CORES, &by_cost);
    node1 = false;
    for (uint32_t i = 0; i < n; i++) {
        CHECK(out[i].core != 5);
        if (out[i].core == 6)
            node1 = HAS(out[i].fwd, 4) && HAS(out[i].fwd, 5) && HAS(out[i].fwd, 7);
    }
    CHECK(node1);
}

static void test_cost_update(void)
{
    CHECK_EQ(mcast_cost_update(0, 800), 800);
    CHECK_EQ(mcast_cost_update(800, 1600), 900);
    CHECK_EQ(mcast_cost_update(0, 0), 1);   /* measured, if fast */
}

int main(void)
{
    test_by_distance_then_home_node_directly();
    test_measured_costs_order_nodes_and_pick_leaders();
    test_only_cores_that_ran_the_domain();
    test_subtrees();
    test_subtrees_on_the_mesh();
    test_node_leaders_are_cluster_leaders();
    test_cost_update();
    return check_done();
}
