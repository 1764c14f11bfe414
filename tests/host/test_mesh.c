/* The monitor mesh plan (monitor/mesh_plan.c): links, routes, sizes. */
#include "check.h"
#include "mesh_plan.h"

static uint16_t nodes[MESH_MAX_CORES];

/* Every pair routes along plan links, in at most `max_hops`, without loops. */
static void check_routes(const struct mesh_plan *p, uint32_t max_hops)
{
    uint32_t worst = 0;
    for (uint32_t a = 0; a < p->ncores; a++)
        for (uint32_t b = 0; b < p->ncores; b++) {
            if (p->down[a] || p->down[b])
                continue;
            uint32_t at = a, hops = 0;
            while (at != b && hops <= max_hops) {
                uint32_t next = mesh_next_hop(p, at, b);
                if (!mesh_linked(p, at, next)) {
                    CHECK(!"next hop is not a linked neighbour");
                    fprintf(stderr, "    %u -> %u: at %u next %u\n", a, b, at, next);
                    return;
                }
                if (p->down[next]) {
                    CHECK(!"a route passes through a core that is down");
                    return;
                }
                at = next;
                hops++;
            }
            CHECK(at == b);
            if (hops > worst)
                worst = hops;
        }
    CHECK(worst <= max_hops);
}

static void check_symmetric(const struct mesh_plan *p)
{
    for (uint32_t a = 0; a < p->ncores; a++) {
        CHECK(!mesh_linked(p, a, a));
        for (uint32_t b = 0; b < p->ncores; b++)
            if (mesh_linked(p, a, b) != mesh_linked(p, b, a)) {
                CHECK(!"asymmetric link");
                return;
            }
    }
}

static void one_node(uint32_t n)
{
    for (uint32_t c = 0; c < n; c++)
        nodes[c] = 0;
}

/* Cores spread over k nodes, round-robin (interleaved ids). */
static void interleaved(uint32_t n, uint32_t k)
{
    for (uint32_t c = 0; c < n; c++)
        nodes[c] = (uint16_t)(c % k);
}

static void blocks(uint32_t n, uint32_t k)
{
    for (uint32_t c = 0; c < n; c++)
        nodes[c] = (uint16_t)(c * k / n);
}

int main(void)
{
    struct mesh_plan p;

    CHECK(!mesh_plan_init(&p, 0, nodes, MESH_CLUSTER, 8, 0));
    CHECK(!mesh_plan_init(&p, MESH_MAX_CORES + 1, nodes, MESH_CLUSTER, 8, 0));
    CHECK(!mesh_plan_init(&p, 4, nodes, MESH_CLUSTER, 0, 0));
    CHECK(!mesh_plan_init(&p, 4, nodes, (enum mesh_kind)7, 8, 0));
    CHECK(!mesh_plan_init(&p, 4, 0, MESH_CLUSTER, 8, 0));

    /* One core: nothing to link. */
    one_node(1);
    CHECK(mesh_plan_init(&p, 1, nodes, MESH_CLUSTER, 8, 0));
    CHECK_EQ(mesh_channel_count(&p), 0);
    CHECK_EQ(mesh_next_hop(&p, 0, 0), 0);

    /* Up to one cluster: the same as all-to-all. */
    one_node(8);
    CHECK(mesh_plan_init(&p, 8, nodes, MESH_CLUSTER, 8, 0));
    CHECK_EQ(mesh_channel_count(&p), 28);
    check_routes(&p, 1);

    /* 255 cores on one node: clusters of 8 keep it small, three hops. */
    one_node(255);
    CHECK(mesh_plan_init(&p, 255, nodes, MESH_CLUSTER, 8, 0));
    uint32_t cluster255 = mesh_channel_count(&p);
    CHECK(cluster255 < 2000);
    check_symmetric(&p);
    check_routes(&p, 3);
    CHECK_EQ(p.leader[0], 0);
    CHECK_EQ(p.leader[7], 0);
    CHECK_EQ(p.leader[8], 8);
    CHECK_EQ(p.leader[254], 248);
    CHECK(mesh_linked(&p, 8, 248));    /* leaders */
    CHECK(!mesh_linked(&p, 9, 250));   /* members of different clusters */
    CHECK_EQ(mesh_next_hop(&p, 9, 250), 8);
    CHECK_EQ(mesh_next_hop(&p, 8, 250), 248);
    CHECK_EQ(mesh_next_hop(&p, 248, 250), 250);
    CHECK(mesh_plan_init(&p, 255, nodes, MESH_ALL, 8, 0));
    CHECK_EQ(mesh_channel_count(&p), 255 * 254 / 2);
    check_routes(&p, 1);
    printf("255 cores: cluster-8 mesh %u channels, all-to-all %u\n", cluster255, mesh_channel_count(&p));

    /* Star: everything through core 0, two hops. */
    CHECK(mesh_plan_init(&p, 255, nodes, MESH_STAR, 8, 0));
    CHECK_EQ(mesh_channel_count(&p), 254);
    check_routes(&p, 2);

    /* 64 cores, 4 nodes in blocks: clusters never span nodes. */
    blocks(64, 4);
    CHECK(mesh_plan_init(&p, 64, nodes, MESH_CLUSTER, 8, 0));
    check_symmetric(&p);
    check_routes(&p, 3);
    for (uint32_t c = 0; c < 64; c++)
        CHECK_EQ(nodes[p.leader[c]], nodes[c]);
    CHECK_EQ(p.leader[16], 16);   /* node 1 starts a cluster */

    /* Interleaved nodes (core ids alternate): still per node. */
    interleaved(32, 2);
    CHECK(mesh_plan_init(&p, 32, nodes, MESH_CLUSTER, 4, 0));
    check_symmetric(&p);
    check_routes(&p, 3);
    for (uint32_t c = 0; c < 32; c++)
        CHECK_EQ(nodes[p.leader[c]], nodes[c]);
    CHECK_EQ(p.leader[1], 1);
    CHECK_EQ(p.leader[9], 9);    /* node 1's 5th core: a new cluster of 4 */
    CHECK_EQ(p.leader[7], 1);

    /* Cores that never came up are in no cluster and on no route, leaders
     * included: the next live core of their node leads instead. */
    static bool down[MESH_MAX_CORES];
    blocks(32, 2);
    down[8] = down[9] = down[17] = down[31] = true;
    CHECK(!mesh_plan_init(&p, 32, nodes, MESH_CLUSTER, 8, (bool[MESH_MAX_CORES]){ [0] = true }));
    CHECK(mesh_plan_init(&p, 32, nodes, MESH_CLUSTER, 8, down));
    check_symmetric(&p);
    check_routes(&p, 3);
    CHECK(!mesh_linked(&p, 0, 8));
    CHECK(!mesh_linked(&p, 10, 9));
    CHECK_EQ(p.leader[10], 10);   /* 8 and 9 are down: 10 is the first of node 0's second cluster */
    CHECK_EQ(p.leader[15], 10);
    CHECK_EQ(p.leader[16], 16);
    CHECK_EQ(p.leader[25], 25);   /* node 1's 9th live core */
    for (uint32_t c = 0; c < 32; c++)
        CHECK(down[c] || nodes[p.leader[c]] == nodes[c]);
    CHECK(mesh_plan_init(&p, 32, nodes, MESH_ALL, 8, down));
    CHECK_EQ(mesh_channel_count(&p), 28 * 27 / 2);
    check_routes(&p, 1);
    CHECK(mesh_plan_init(&p, 32, nodes, MESH_STAR, 8, down));
    check_routes(&p, 2);

    /* Every shape from 1 to 64 cores, 1 to 4 nodes, clusters 1 to 9. */
    for (uint32_t n = 1; n <= 64; n += 3)
        for (uint32_t k = 1; k <= 4; k++)
            for (uint32_t cl = 1; cl <= 9; cl += 4) {
                blocks(n, k);
                CHECK(mesh_plan_init(&p, n, nodes, MESH_CLUSTER, cl, 0));
                check_symmetric(&p);
                check_routes(&p, 3);
                /* ...and with every third core but core 0 down. */
                for (uint32_t c = 0; c < n; c++)
                    down[c] = c && c % 3 == 1;
                CHECK(mesh_plan_init(&p, n, nodes, MESH_CLUSTER, cl, down));
                check_symmetric(&p);
                check_routes(&p, 3);
            }
    return check_done();
}
