/* Where the name server's replicas are (<atoll/monitor_proto.h>): the
 * monitors start one there, the replicas take each other from it, and
 * clients connect to the nearest (names_connect). Its own file: the
 * monitor links it without the client half of lib/monitor_client.c. */
#include <atoll/lib.h>
#include <atoll/monitor_proto.h>

uint32_t names_cores(const struct core_info *m, uint32_t *cores, uint32_t max)
{
    uint32_t n = 0;
    bool seen[CORE_INFO_MAX_NODES] = { false };
    for (uint32_t c = 0; c < m->ncores && c < CORE_INFO_MAX_CORES && n < max; c++) {
        uint32_t node = m->core_node[c] < CORE_INFO_MAX_NODES ? m->core_node[c] : 0;
        if (!seen[node]) {
            seen[node] = true;
            cores[n++] = c;
        }
    }
    return n;
}
