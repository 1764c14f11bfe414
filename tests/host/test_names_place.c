/* Where the name server's replicas go (lib/names_place.c): the first core
 * of each node, and a third with exactly two nodes. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <atoll/abi/syscall.h>
#include <atoll/monitor_proto.h>
#include "check.h"

static struct core_info machine(const uint16_t *nodes, uint32_t ncores)
{
    struct core_info m;
    memset(&m, 0, sizeof m);
    m.ncores = ncores;
    for (uint32_t c = 0; c < ncores; c++) {
        m.core_node[c] = nodes[c];
        if (nodes[c] + 1u > m.nnodes)
            m.nnodes = nodes[c] + 1u;
        m.node_mem_bytes[nodes[c]] = 1u << 28;
    }
    return m;
}

static void expect(const uint16_t *nodes, uint32_t ncores, const uint32_t *want, uint32_t nwant)
{
    struct core_info m = machine(nodes, ncores);
    uint32_t got[CORE_INFO_MAX_NODES];
    uint32_t n = names_cores(&m, got, CORE_INFO_MAX_NODES);
    CHECK_EQ(n, nwant);
    for (uint32_t i = 0; i < n && i < nwant; i++)
        CHECK_EQ(got[i], want[i]);
}

int main(void)
{
    /* One node: core 0 alone. */
    expect((const uint16_t[]){ 0, 0, 0, 0 }, 4, (const uint32_t[]){ 0 }, 1);
    /* Four nodes of four: each node's first. */
    expect((const uint16_t[]){ 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 }, 16,
           (const uint32_t[]){ 0, 4, 8, 12 }, 4);
    /* Two nodes: the second node's second core too. */
    expect((const uint16_t[]){ 0, 0, 0, 0, 1, 1, 1, 1 }, 8, (const uint32_t[]){ 0, 4, 5 }, 3);
    expect((const uint16_t[]){ 0, 0, 1, 1 }, 4, (const uint32_t[]){ 0, 2, 3 }, 3);
    /* Two nodes interleaved (cores 1 and 3 on node 1): in core order. */
    expect((const uint16_t[]){ 0, 1, 0, 1 }, 4, (const uint32_t[]){ 0, 1, 3 }, 3);
    /* The second node has one core: the first node's second. */
    expect((const uint16_t[]){ 0, 0, 0, 1 }, 4, (const uint32_t[]){ 0, 1, 3 }, 3);
    /* Two nodes of one core each: no third to have. */
    expect((const uint16_t[]){ 0, 1 }, 2, (const uint32_t[]){ 0, 1 }, 2);
    /* Three nodes, uneven: no extra. */
    expect((const uint16_t[]){ 0, 1, 1, 2, 2, 2 }, 6, (const uint32_t[]){ 0, 1, 3 }, 3);
    /* A node with CPUs but no memory has no replica; core 0's always does. */
    struct core_info u = machine((const uint16_t[]){ 0, 0, 1, 1, 2, 2, 3, 3 }, 8);
    u.node_mem_bytes[2] = 0;
    uint32_t got[CORE_INFO_MAX_NODES];
    CHECK_EQ(names_cores(&u, got, CORE_INFO_MAX_NODES), 3u);
    CHECK(got[0] == 0 && got[1] == 2 && got[2] == 6);
    u.node_mem_bytes[0] = 0;
    CHECK_EQ(names_cores(&u, got, CORE_INFO_MAX_NODES), 3u);
    /* No SRAT (no memory known anywhere): every node counts. */
    struct core_info z = machine((const uint16_t[]){ 0, 1, 2 }, 3);
    memset(z.node_mem_bytes, 0, sizeof z.node_mem_bytes);
    CHECK_EQ(names_cores(&z, got, CORE_INFO_MAX_NODES), 3u);
    /* At most `max`. */
    struct core_info m = machine((const uint16_t[]){ 0, 1, 2, 3 }, 4);
    uint32_t two[2];
    CHECK_EQ(names_cores(&m, two, 2), 2u);
    CHECK_EQ(two[1], 1u);
    return check_done();
}
