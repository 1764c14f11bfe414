/* Where the name server's replicas are (<atoll/monitor_proto.h>): the
 * monitors start one there, the replicas take each other from it, and
 * clients connect to the nearest (names_connect). Its own file: the
 * monitor links it without the client half of lib/monitor_client.c. */
#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/syscall.h>
#include <atoll/monitor_proto.h>

static uint32_t node_of(const struct core_info *m, uint32_t core)
{
    return m->core_node[core] < CORE_INFO_MAX_NODES ? m->core_node[core] : 0;
}

/* The first core of each node, in core order. With exactly two nodes, one
 * more: the second core of the second node (of the first if the second
 * has one core; none if neither has two), away from core 0's servers and
 * from the first node's second core, where benchmarks put what they
 * measure; so that a
 * majority (2 of 3) outlives any one replica; of two replicas, one that
 * died could not be replaced (a restarted replica votes only once it has
 * caught up, which needs a leader, which needs its vote). With one node,
 * one replica: a restart loses its names, which their registrants
 * register again (<atoll/recover.h>). */
uint32_t names_cores(const struct core_info *m, uint32_t *cores, uint32_t max)
{
    uint32_t n = 0, extra = 0;
    bool seen[CORE_INFO_MAX_NODES] = { false }, any_memory = false;
    /* A node without memory of its own (SRAT) gets no replica: its cores
     * use the nearest (a replica there would live on another node's RAM,
     * and its monitor has little to spare). Core 0's node always has one. */
    for (uint32_t k = 0; k < CORE_INFO_MAX_NODES; k++)
        any_memory |= m->node_mem_bytes[k] != 0;
    for (uint32_t k = 0; any_memory && k < CORE_INFO_MAX_NODES; k++)
        seen[k] = m->node_mem_bytes[k] == 0 && (m->ncores == 0 || k != node_of(m, 0));
    for (uint32_t c = 0; c < m->ncores && c < CORE_INFO_MAX_CORES && n < max; c++)
        if (!seen[node_of(m, c)]) {
            seen[node_of(m, c)] = true;
            cores[n++] = c;
        }
    if (n != 2 || n == max)
        return n;
    for (int k = 1; k >= 0 && !extra; k--)
        for (uint32_t c = cores[k] + 1; c < m->ncores && c < CORE_INFO_MAX_CORES; c++)
            if (node_of(m, c) == node_of(m, cores[k])) {
                extra = c;
                break;
            }
    if (!extra)
        return n;
    cores[n++] = extra;
    for (uint32_t i = n - 1; i > 0 && cores[i] < cores[i - 1]; i--) {   /* in core order */
        uint32_t t = cores[i];
        cores[i] = cores[i - 1];
        cores[i - 1] = t;
    }
    return n;
}
