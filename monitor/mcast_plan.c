/* The numa-multicast tree; see mcast_plan.h. */
#include "mcast_plan.h"

#define HAS(b, c) (((b)[(c) / 64] >> ((c) % 64)) & 1)
#define SET(b, c) ((b)[(c) / 64] |= 1ull << ((c) % 64))

uint64_t mcast_cost_update(uint64_t old, uint64_t sample)
{
    if (!sample)
        sample = 1;   /* 0 means "not measured" */
    return old ? (old * 7 + sample) / 8 : sample;
}

/* How long node n's answer is expected to take: its leader's measured
 * answers, else the slowest measured core of those to reach there. */
static uint64_t node_estimate(const struct mcast_in *in, uint32_t n)
{
    if (in->node_cost[n])
        return in->node_cost[n];
    uint64_t worst = 0;
    for (uint32_t c = 0; c < in->ncores; c++)
        if (HAS(in->targets, c) && in->core_node[c] == n && in->core_cost[c] > worst)
            worst = in->core_cost[c];
    return worst;
}

uint32_t mcast_split(const uint64_t set[4], uint32_t fanout, struct mcast_send *out, uint32_t max)
{
    uint32_t cores[MCAST_MAX_CORES], n = 0;
    for (uint32_t c = 0; c < MCAST_MAX_CORES; c++)
        if (HAS(set, c))
            cores[n++] = c;
    if (!fanout)
        fanout = 1;
    uint32_t groups = n < fanout ? n : fanout, sends = 0, at = 0;
    if (groups > max)
        groups = max;   /* fewer, larger subtrees: no core left out */
    for (uint32_t g = 0; g < groups && sends < max; g++) {
        uint32_t size = n / groups + (g < n % groups);   /* the first n % groups one larger */
        struct mcast_send *s = &out[sends++];
        *s = (struct mcast_send){ .core = cores[at] };
        for (uint32_t i = 1; i < size; i++)
            SET(s->fwd, cores[at + i]);
        if (size > 1)
            s->fanout = fanout;
        at += size;
    }
    return sends;
}

/* The cluster a core is in: its leader's number (all one cluster without a
 * mesh plan; a core alone if the plan names no core there could be). */
static uint32_t cluster_of(const uint16_t *cluster_leader, uint32_t ncores, uint32_t c)
{
    if (!cluster_leader)
        return 0;
    uint32_t k = c < ncores ? cluster_leader[c] : c;
    return k < MCAST_MAX_CORES * 2 ? k : c;
}

uint32_t mcast_split_linked(const uint64_t set[4], uint32_t fanout, uint32_t asker, const uint16_t *cluster_leader,
                            uint32_t ncores, struct mcast_send *out, uint32_t max)
{
    if (!fanout)
        fanout = 1;
    uint32_t slots = max < fanout ? max : fanout;
    uint32_t mine = cluster_of(cluster_leader, ncores, asker);
    uint64_t own[4] = { 0 }, seen[MCAST_MAX_CORES / 64 * 2] = { 0 };
    uint32_t clusters[MCAST_MAX_CORES], nclusters = 0;
    bool has_own = false;
    for (uint32_t c = 0; c < MCAST_MAX_CORES; c++) {
        if (!HAS(set, c))
            continue;
        uint32_t k = cluster_of(cluster_leader, ncores, c);
        if (k == mine) {
            SET(own, c);
            has_own = true;
        } else if (!HAS(seen, k)) {
            SET(seen, k);
            clusters[nclusters++] = k;
        }
    }
    if (!nclusters || slots < 2)
        return mcast_split(set, fanout, out, max);   /* one cluster, or one subtree for all */
    /* m subtrees of whole clusters, as even as they divide, each led by
     * its first cluster's leader (or, that one not asked, its first core). */
    uint32_t m = nclusters < slots - has_own ? nclusters : slots - has_own, sends = m;
    uint8_t subtree_of[MCAST_MAX_CORES * 2];   /* by cluster, for the clusters in the set */
    for (uint32_t g = 0, at = 0; g < m; g++) {
        uint32_t size = nclusters / m + (g < nclusters % m);
        for (uint32_t i = at; i < at + size; i++)
            subtree_of[clusters[i]] = (uint8_t)g;
        out[g] = (struct mcast_send){ .core = clusters[at] };
        at += size;
    }
    for (uint32_t c = 0; c < MCAST_MAX_CORES; c++) {
        uint32_t k = cluster_of(cluster_leader, ncores, c);
        if (HAS(set, c) && k != mine)
            SET(out[subtree_of[k]].fwd, c);
    }
    for (uint32_t g = 0; g < m; g++) {
        struct mcast_send *s = &out[g];
        if (s->core >= MCAST_MAX_CORES || !HAS(s->fwd, s->core))
            for (s->core = 0; !HAS(s->fwd, s->core); s->core++)
                ;
        s->fwd[s->core / 64] &= ~(1ull << (s->core % 64));
        s->fanout = (s->fwd[0] | s->fwd[1] | s->fwd[2] | s->fwd[3]) ? fanout : 0;
    }
    if (has_own) {
        uint32_t n = mcast_split(own, slots - m, out + sends, slots - m);
        for (uint32_t i = sends; i < sends + n; i++)
            if (out[i].fanout)
                out[i].fanout = fanout;   /* its own subtrees as wide as ours */
        sends += n;
    }
    return sends;
}

uint32_t mcast_plan(const struct mcast_in *in, struct mcast_send *out, uint32_t max, bool *by_cost)
{
    uint32_t nnodes = in->nnodes ? in->nnodes : 1;
    if (nnodes > MCAST_MAX_NODES)
        nnodes = MCAST_MAX_NODES;
    uint32_t ncores = in->ncores > MCAST_MAX_CORES ? MCAST_MAX_CORES : in->ncores;
    uint32_t home_node = in->home < ncores && nnodes > 1 ? in->core_node[in->home] : 0;
    /* The other nodes that have cores to reach. */
    uint32_t order[MCAST_MAX_NODES], n_order = 0;
    uint64_t est[MCAST_MAX_NODES] = { 0 };
    bool all_measured = true;
    for (uint32_t n = 0; n < nnodes; n++) {
        if (n == home_node)
            continue;
        bool any = false;
        for (uint32_t c = 0; c < ncores && !any; c++)
            any = HAS(in->targets, c) && c != in->home && in->core_node[c] == n;
        if (!any)
            continue;
        est[n] = node_estimate(in, n);
        all_measured &= est[n] != 0;
        order[n_order++] = n;
    }
    /* Insertion sort, the longest first: by measure when every node has
     * one, else by distance from the home's node (measures break ties). */
    for (uint32_t i = 1; i < n_order; i++)
        for (uint32_t j = i; j > 0; j--) {
            uint32_t a = order[j], b = order[j - 1];
            uint16_t da = in->distance[home_node][a], db = in->distance[home_node][b];
            bool before = all_measured ? est[a] > est[b] : (da > db || (da == db && est[a] > est[b]));
            if (!before)
                break;
            order[j] = b;
            order[j - 1] = a;
        }
    *by_cost = all_measured && n_order > 0;
    uint32_t sends = 0;
    for (uint32_t i = 0; i < n_order && sends < max; i++) {
        uint32_t n = order[i];
        /* The cheapest of the node's cluster leaders (linked to the other
         * clusters' leaders, so that what it forwards goes direct), or of
         * all its cores when no cluster leader is to be asked. */
        int leader = -1;
        for (int leaders_only = 1; leaders_only >= 0 && leader < 0; leaders_only--)
            for (uint32_t c = 0; c < ncores; c++) {
                if (!HAS(in->targets, c) || c == in->home || in->core_node[c] != n)
                    continue;
                if (leaders_only && in->cluster_leader && in->cluster_leader[c] != c)
                    continue;
                bool cheaper = leader >= 0 && in->core_cost[c] &&
                               (!in->core_cost[leader] || in->core_cost[c] < in->core_cost[leader]);
                if (leader < 0 || cheaper)
                    leader = (int)c;
            }
        struct mcast_send *s = &out[sends++];
        *s = (struct mcast_send){ .core = (uint32_t)leader, .fanout = MCAST_FANOUT };
        for (uint32_t c = 0; c < ncores; c++)
            if (HAS(in->targets, c) && c != in->home && c != (uint32_t)leader && in->core_node[c] == n)
                SET(s->fwd, c);
    }
    /* The home's own node last, each core directly, or in subtrees when
     * there are more than MCAST_FANOUT. */
    uint64_t own[4] = { 0 };
    for (uint32_t c = 0; c < ncores; c++)
        if (HAS(in->targets, c) && c != in->home && (nnodes == 1 || in->core_node[c] == home_node))
            SET(own, c);
    if (sends < max)
        sends += mcast_split_linked(own, MCAST_FANOUT, in->home, in->cluster_leader, ncores, out + sends,
                                    max - sends);
    return sends;
}
