/* The monitor mesh plan; see mesh_plan.h. */
#include "mesh_plan.h"

bool mesh_plan_init(struct mesh_plan *p, uint32_t ncores, const uint16_t *node_of, enum mesh_kind kind,
                    uint32_t cluster, const bool *down)
{
    if (!p || !node_of || ncores == 0 || ncores > MESH_MAX_CORES || cluster == 0 || kind > MESH_STAR ||
        (down && down[0]))
        return false;
    p->ncores = ncores;
    p->kind = kind;
    p->cluster = cluster;
    for (uint32_t c = 0; c < ncores; c++)
        p->down[c] = down && down[c];
    /* A core's rank among the live cores of its node decides its cluster:
     * the leader is the live core of the same node whose rank is the
     * multiple of `cluster` at or below it. */
    for (uint32_t c = 0; c < ncores; c++) {
        p->leader[c] = (uint16_t)c;
        if (p->down[c])
            continue;
        uint32_t rank = 0;
        for (uint32_t d = 0; d < c; d++)
            rank += node_of[d] == node_of[c] && !p->down[d];
        uint32_t want = rank - rank % cluster, seen = 0;
        for (uint32_t d = 0; d <= c; d++)
            if (node_of[d] == node_of[c] && !p->down[d] && seen++ == want) {
                p->leader[c] = (uint16_t)d;
                break;
            }
    }
    return true;
}

static bool boot_channel(uint32_t a, uint32_t b) { return a == 0 || b == 0; }

bool mesh_linked(const struct mesh_plan *p, uint32_t a, uint32_t b)
{
    if (a == b || a >= p->ncores || b >= p->ncores || p->down[a] || p->down[b])
        return false;
    switch (p->kind) {
    case MESH_ALL:
        return true;
    case MESH_STAR:
        return boot_channel(a, b);
    default:
        return boot_channel(a, b) || p->leader[a] == p->leader[b] ||
               (p->leader[a] == a && p->leader[b] == b);
    }
}

uint32_t mesh_next_hop(const struct mesh_plan *p, uint32_t from, uint32_t to)
{
    if (from == to || mesh_linked(p, from, to))
        return to;
    if (p->kind == MESH_STAR)
        return 0;
    uint32_t mine = p->leader[from], theirs = p->leader[to];
    if (from != mine)
        return mine;   /* up to my leader, which is linked to every leader */
    return theirs;     /* a leader: over to the destination's leader */
}

uint32_t mesh_channel_count(const struct mesh_plan *p)
{
    uint32_t n = 0;
    for (uint32_t a = 0; a < p->ncores; a++)
        for (uint32_t b = a + 1; b < p->ncores; b++)
            n += mesh_linked(p, a, b);
    return n;
}

const char *mesh_kind_name(enum mesh_kind k)
{
    return k == MESH_ALL ? "all" : k == MESH_STAR ? "star" : "cluster";
}
