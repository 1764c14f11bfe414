/*
 * Domains that span cores (docs/spanning.md).
 *
 * A domain asks its monitor (the home monitor) for a dispatcher on another
 * core. The home monitor copies the domain's PML4 capability (CAPOPS_VSPACE:
 * only the table the domain runs on), gives it to that core's monitor as any
 * capability crosses (capops.c: the owner records the holder, and revokes
 * the copy when the domain ends), then asks with span_call. That monitor
 * takes the copy from its own mailbox (SPAN_MAIL), makes the dispatcher from
 * its own RAM with SYS_SPAN, keeps it as a child (spawn.c: its RAM comes
 * back when it ends) and answers with span_reply.
 *
 * The home monitor records every core that has run each of its domains:
 * those, and only those, must hear of an unmap (issue 12's shootdown).
 */
#include "monitor.h"
#include "mcast_plan.h"

#define MAX_SPAN_WAITS MON_MAX_CLIENTS   /* one request at a time per client */
#define MAX_SPANNERS 64                  /* domains of this core that span */
#define SPAN_WAIT_NS 5000000000ull       /* a core that does not answer: ERR_TIMEOUT */

struct span_wait {
    bool used;
    int handle;
    uint64_t domain;
    uint32_t core, tag;
    uint64_t deadline;
};
static struct span_wait waits[MAX_SPAN_WAITS];

struct spanner {
    uint64_t domain;      /* 0: free (domain ids start at 1) */
    uint64_t cores[4];    /* a bit per core that has run it (256 cores) */
};
static struct spanner spanners[MAX_SPANNERS];

static struct {
    uint64_t asked, made_here, refused;
} st;

static struct spanner *spanner_of(uint64_t domain, bool make)
{
    struct spanner *free_one = 0;
    for (int i = 0; i < MAX_SPANNERS; i++) {
        if (spanners[i].domain == domain)
            return &spanners[i];
        if (!spanners[i].domain && !free_one)
            free_one = &spanners[i];
    }
    if (make && free_one)
        *free_one = (struct spanner){ .domain = domain };
    return make ? free_one : 0;
}

bool span_cores(uint64_t domain, uint64_t cores[4])
{
    struct spanner *s = spanner_of(domain, false);
    if (!s)
        return false;
    memcpy(cores, s->cores, sizeof s->cores);
    return true;
}

/* -- the home monitor -------------------------------------------------------------- */

void span_request(int handle, uint64_t domain, uint32_t core, uint64_t rip, uint64_t rsp, uint64_t arg)
{
    struct span_wait *w = 0;
    capslot_t disp, pml4 = 0;
    errval_t err = ERR_OK;
    st.asked++;
    if (core >= ncores || core >= 256 || core == my_core)
        err = ERR_INVALID_ARG;
    else if (!core_alive(core))
        err = ERR_CORE_DOWN;
    else if (!route(core))
        err = ERR_NO_ROUTE;
    for (int i = 0; !err && i < MAX_SPAN_WAITS && !w; i++)
        if (!waits[i].used)
            w = &waits[i];
    if (!err && !w)
        err = ERR_TOO_MANY;
    /* Room to record the core before anything is sent. */
    if (!err && !spanner_of(domain, true))
        err = ERR_TOO_MANY;
    if (!err)
        err = child_dispatcher(domain, &disp);
    if (!err)
        err = slot_alloc(&pml4);
    if (!err) {
        struct capops_call c = { .op = CAPOPS_VSPACE, .disp = (uint32_t)disp, .slot = SLOT_PML4, .dst = pml4,
                                   .count = core };
        err = sys_capops(SLOT_KERNEL, &c);
        if (err)
            slot_free(pml4);
    }
    if (!err)
        err = capops_give_to(pml4, core, SPAN_MAIL(my_core, domain), domain);   /* frees our copy */
    uint32_t tag = new_tag();
    if (!err)
        err = monitor_span_call_send(route(core), (uint16_t)core, (uint16_t)my_core, tag, domain, rip, rsp, arg);
    if (err) {
        st.refused++;
        client_span_reply(handle, err, 0);
        return;
    }
    /* Recorded now: from here on the dispatcher may run there. */
    struct spanner *s = spanner_of(domain, true);
    s->cores[core / 64] |= 1ull << (core % 64);
    *w = (struct span_wait){ .used = true, .handle = handle, .domain = domain, .core = core, .tag = tag,
                             .deadline = now_ns() + SPAN_WAIT_NS };
}

errval_t span_on_reply(const struct monitor_span_reply_args *a)
{
    for (int i = 0; i < MAX_SPAN_WAITS; i++) {
        struct span_wait *w = &waits[i];
        if (w->used && w->tag == a->tag && w->core == a->src && w->domain == a->domain) {
            client_span_reply(w->handle, a->err, a->id);
            *w = (struct span_wait){ 0 };
            return ERR_OK;
        }
    }
    return ERR_OK;   /* late: the client heard ERR_TIMEOUT */
}

void tlb_expire(void);
void tlb_domain_ended(uint64_t domain);

void span_expire(void)
{
    tlb_expire();
    uint64_t now = now_ns();
    for (int i = 0; i < MAX_SPAN_WAITS; i++)
        if (waits[i].used && now > waits[i].deadline) {
            client_span_reply(waits[i].handle, ERR_TIMEOUT, 0);
            waits[i] = (struct span_wait){ 0 };
        }
}

void span_domain_ended(uint64_t domain)
{
    /* Its dispatchers elsewhere stop when their copies of its PML4 are
     * revoked (capops_reclaim, before its RAM comes back). */
    struct spanner *s = spanner_of(domain, false);
    if (s)
        *s = (struct spanner){ 0 };
    tlb_domain_ended(domain);
    for (int i = 0; i < MAX_SPAN_WAITS; i++)
        if (waits[i].used && waits[i].domain == domain)
            waits[i] = (struct span_wait){ 0 };
}

/* -- the other core ------------------------------------------------------------------- */

errval_t span_on_call(const struct monitor_span_call_args *a)
{
    capslot_t pml4 = 0, ram = 0, disp = 0;
    uint32_t from_core;
    uint64_t from;
    struct span_args s = { .rip = a->rip, .rsp = a->rsp, .arg = a->arg, .home_core = a->src,
                           .home_domain = (uint32_t)a->domain };
    errval_t err = capops_take(SPAN_MAIL(a->src, a->domain), &pml4, &from_core, &from);
    if (!err && (from_core != a->src || from != a->domain))
        err = ERR_NOT_PERMITTED;
    if (!err)
        err = ram_alloc(SPAN_RAM_BYTES, &ram);
    if (!err)
        err = slot_alloc(&disp);
    if (!err) {
        snprintf(s.name, sizeof s.name, "span:%u.%llu", a->src, (unsigned long long)a->domain);
        s.ram = ram;
        s.home_pml4 = pml4;
        s.notify = notify_cap_all();
        s.disp_dest = disp;
        err = s.notify ? sys_span(SLOT_KERNEL, &s) : ERR_NO_MEMORY;
    }
    if (!err)
        err = child_add_span(ram, disp, s.id);
    if (pml4 && !err)
        slot_free(pml4);   /* SYS_SPAN moved it into the dispatcher's CSpace */
    else if (pml4)
        cap_free(pml4);
    if (err) {
        if (disp)
            cap_free(disp);
        if (ram) {
            sys_cap_revoke(ram);   /* what SYS_SPAN made of it, if anything */
            cap_free(ram);
        }
    } else {
        st.made_here++;
    }
    struct idl_chan *back = route(a->src);
    return back ? monitor_span_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->domain, err ? 0 : s.id)
                : ERR_NO_ROUTE;
}

/* -- shootdowns (docs/spanning.md) ------------------------------------------------------ */

#define BITS_HAS(b, c) (((b)[(c) / 64] >> ((c) % 64)) & 1)
#define BITS_SET(b, c) ((b)[(c) / 64] |= 1ull << ((c) % 64))
#define BITS_CLR(b, c) ((b)[(c) / 64] &= ~(1ull << ((c) % 64)))

/* A shootdown this monitor runs: for a client (the home core), or as a
 * node leader for another monitor (multicast). One per client at a time
 * (its call is an RPC); MAX_FORWARDS as a leader. */
#define MAX_FORWARDS 16
struct shoot {
    bool used;
    int handle;               /* the client; -1: a leader's, answered to `from` */
    uint32_t from, from_tag;  /* a leader's: who asked, and its tag */
    uint32_t home;            /* the domain's home core */
    uint64_t domain, vaddr;
    uint32_t pages, protocol;
    uint64_t to_send[4];      /* unicast: cores not asked yet */
    uint64_t waiting[4];      /* asked, not answered */
    uint32_t found, covered;  /* from the answers (a leader counts itself) */
    uint32_t tag;             /* every core is asked with it; its reply repeats it */
    errval_t err;
    uint64_t deadline;
};
static struct shoot shoots[MON_MAX_CLIENTS + MAX_FORWARDS];
static struct {
    uint64_t shootdowns, messages, forwarded, timeouts;
    uint64_t by_cost, by_distance;   /* numa-multicast trees ordered so */
} tst;

/* Measured channel costs (numa-multicast's tree, mcast_plan.h): when the
 * last tlb_call to each core left, and the running round trip of a core's
 * own answers and of each node leader's (its whole node). */
static uint64_t sent_ns[256];
static uint64_t core_cost[256], node_cost[MCAST_MAX_NODES];

static bool bits_empty(const uint64_t b[4]) { return !(b[0] | b[1] | b[2] | b[3]); }

static int bits_next(const uint64_t b[4], int after)
{
    for (int c = after + 1; c < 256; c++)
        if (BITS_HAS(b, c))
            return c;
    return -1;
}

static int bits_first(const uint64_t b[4]) { return bits_next(b, -1); }

/* Ask `core` (and, as leader, the cores in `fwd`, in at most `fanout`
 * subtrees, or each itself for 0). A leaf's call carries no forwarding set
 * (fwd NULL: none sent), so that it fits one slot of the channel: with the
 * set's 32 bytes it took two, one more line moved for every core reached. */
static errval_t shoot_send(struct shoot *s, uint32_t core, const uint64_t fwd[4], uint32_t fanout)
{
    struct idl_chan *via = route(core);
    errval_t err = via ? monitor_tlb_call_send(via, (uint16_t)core, (uint16_t)my_core, s->tag, s->domain, s->vaddr,
                                               s->pages, (uint16_t)s->home, fwd ? (uint8_t)fanout : 0,
                                               (const uint8_t *)fwd, fwd ? 32 : 0)
                       : ERR_NO_ROUTE;
    BITS_CLR(s->to_send, core);
    if (!err) {
        sent_ns[core] = now_ns();
        BITS_SET(s->waiting, core);
        tst.messages++;
    }
    return err;
}

static void shoot_done(struct shoot *s, errval_t err)
{
    if (s->handle >= 0) {
        client_tlb_reply(s->handle, err, s->covered);
    } else {
        struct idl_chan *back = route(s->from);
        if (back)
            monitor_tlb_reply_send(back, (uint16_t)s->from, (uint16_t)my_core, s->from_tag, err, s->domain, s->found,
                                   s->covered);
    }
    *s = (struct shoot){ 0 };
}

/* Multicast: one message per node, to a leader (the lowest core of the
 * node among those to reach) that forwards to the others of its node.
 * numa-multicast builds its tree from the distances and the measured
 * costs (mcast_plan.h): the farthest node first, the home's node last and
 * directly. */
/* The mesh's clusters, for trees whose every send has a direct channel
 * (mcast_split_linked); NULL when every pair is linked or no plan is known. */
static const uint16_t *mesh_clusters(void)
{
    return plan_known && plan.kind == MESH_CLUSTER ? plan.leader : 0;
}

static errval_t shoot_multicast(struct shoot *s)
{
    uint32_t nnodes = machine.nnodes ? machine.nnodes : 1;
    if (s->protocol == TLB_NUMA_MULTICAST) {
        static struct mcast_send plan[MCAST_MAX_CORES];
        struct mcast_in in = { .ncores = ncores < 256 ? ncores : 256, .nnodes = nnodes, .home = my_core,
                               .core_node = machine.core_node, .distance = machine.node_distance,
                               .core_cost = core_cost, .node_cost = node_cost, .targets = s->to_send,
                               .cluster_leader = mesh_clusters() };
        bool by_cost = false;
        uint32_t n = mcast_plan(&in, plan, MCAST_MAX_CORES, &by_cost);
        if (by_cost)
            tst.by_cost++;
        else
            tst.by_distance++;
        errval_t err = ERR_OK;
        for (uint32_t i = 0; i < n && !err; i++) {
            for (int c = bits_first(plan[i].fwd); c >= 0; c = bits_next(plan[i].fwd, c))
                BITS_CLR(s->to_send, c);
            err = shoot_send(s, plan[i].core, bits_empty(plan[i].fwd) ? 0 : plan[i].fwd, plan[i].fanout);
        }
        return err;
    }
    errval_t err = ERR_OK;
    for (uint32_t node = 0; node < nnodes && !err; node++) {
        uint64_t fwd[4] = { 0 };
        int leader = -1;
        for (int c = bits_first(s->to_send); c >= 0; c = bits_next(s->to_send, c)) {
            if ((nnodes > 1 ? machine.core_node[c] : 0) != node)
                continue;
            if (leader < 0)
                leader = c;
            else
                BITS_SET(fwd, c);
        }
        if (leader >= 0) {
            for (int c = bits_first(fwd); c >= 0; c = bits_next(fwd, c))
                BITS_CLR(s->to_send, c);
            err = shoot_send(s, (uint32_t)leader, bits_empty(fwd) ? 0 : fwd, 0);
        }
    }
    return err;
}

void tlb_request(int handle, uint64_t domain, uint64_t vaddr, uint32_t pages, uint32_t protocol)
{
    uint64_t cores[4] = { 0 };
    /* Only the cores that have run it (span_request recorded them); SYS_UNMAP
     * did this core's part. */
    span_cores(domain, cores);
    BITS_CLR(cores, my_core);
    if (protocol == TLB_IPI) {
        /* The baseline: this core's CPU driver interrupts the others. */
        uint64_t asked = 0;
        tst.shootdowns++;
        errval_t err = sys_tlb_ipi(SLOT_KERNEL, cores, TLB_WAIT_NS / 1000, &asked);
        client_tlb_reply(handle, err, (uint32_t)asked);
        return;
    }
    if (protocol < TLB_UNICAST || protocol > TLB_NUMA_MULTICAST) {
        client_tlb_reply(handle, ERR_INVALID_ARG, 0);
        return;
    }
    struct shoot *s = 0;
    for (int i = 0; i < MON_MAX_CLIENTS && !s; i++)
        if (!shoots[i].used)
            s = &shoots[i];
    if (!s) {
        client_tlb_reply(handle, ERR_TOO_MANY, 0);
        return;
    }
    *s = (struct shoot){ .used = true, .handle = handle, .home = my_core, .domain = domain, .vaddr = vaddr,
                         .pages = pages, .protocol = protocol, .tag = new_tag(),
                         .deadline = now_ns() + TLB_WAIT_NS };
    memcpy(s->to_send, cores, sizeof cores);
    tst.shootdowns++;
    errval_t err = ERR_OK;
    if (protocol == TLB_BROADCAST) {
        for (int c; !err && (c = bits_first(s->to_send)) >= 0;)
            err = shoot_send(s, (uint32_t)c, 0, 0);
    } else if (protocol == TLB_UNICAST) {
        if (!bits_empty(s->to_send))
            err = shoot_send(s, (uint32_t)bits_first(s->to_send), 0, 0);
    } else {
        err = shoot_multicast(s);
    }
    /* A core that could not be asked is an error; the ones asked still answer
     * (their late replies find no shootdown and are dropped). */
    if (err || bits_empty(s->waiting))
        shoot_done(s, err);
}

errval_t tlb_on_reply(const struct monitor_tlb_reply_args *a)
{
    uint32_t core = a->src;
    if (core >= 256)
        return ERR_INVALID_ARG;
    for (unsigned i = 0; i < ARRAY_SIZE(shoots); i++) {
        struct shoot *s = &shoots[i];
        if (!s->used || s->domain != a->domain || !BITS_HAS(s->waiting, core) || s->tag != a->tag)
            continue;
        BITS_CLR(s->waiting, core);
        /* A measure of the channel: a core's own answer, or a leader's for
         * its whole node. */
        uint64_t rtt = now_ns() - sent_ns[core];
        uint32_t node = machine.nnodes > 1 ? machine.core_node[core] : 0;
        if (a->covered > 1 && node < MCAST_MAX_NODES)
            node_cost[node] = mcast_cost_update(node_cost[node], rtt);
        else if (a->covered == 1)
            core_cost[core] = mcast_cost_update(core_cost[core], rtt);
        s->found += a->found;
        s->covered += a->covered;
        if (a->err && !s->err)
            s->err = a->err;
        if (!s->err && s->protocol == TLB_UNICAST && !bits_empty(s->to_send))
            s->err = shoot_send(s, (uint32_t)bits_first(s->to_send), 0, 0);
        if (bits_empty(s->waiting))
            shoot_done(s, s->err);
        return ERR_OK;
    }
    return ERR_OK;   /* late: that shootdown timed out */
}

/* How long a leader waits for its part: less than whoever asked it, so that
 * a core that does not answer is reported by the nearest leader, with what
 * the rest of its part covered. A node's leader (asked by the home) has
 * half the home's wait; a subtree leader (asked by another leader) a
 * quarter, the deeper levels of a big node sharing it. */
static uint64_t leader_wait_ns(const struct monitor_tlb_call_args *a)
{
    return a->src == a->home ? TLB_WAIT_NS / 2 : TLB_WAIT_NS / 4;
}

errval_t tlb_on_call(const struct monitor_tlb_call_args *a)
{
    uint64_t found = 0, fwd[4] = { 0 };
    errval_t err = sys_tlb_invalidate(SLOT_KERNEL, a->home, a->domain, a->vaddr, a->pages, &found);
    if (a->fwd_len == sizeof fwd)
        memcpy(fwd, a->fwd, sizeof fwd);
    BITS_CLR(fwd, my_core);
    BITS_CLR(fwd, a->src);
    if (!err && a->fanout > MCAST_FANOUT)
        err = ERR_INVALID_ARG;   /* no subtree of ours asks more */
    struct shoot *s = 0;
    if (!err && !bits_empty(fwd)) {
        for (unsigned i = MON_MAX_CLIENTS; i < ARRAY_SIZE(shoots) && !s; i++)
            if (!shoots[i].used)
                s = &shoots[i];
        if (!s)
            err = ERR_TOO_MANY;
    }
    if (s) {
        /* A node leader: ours is done, now the others of the node. */
        *s = (struct shoot){ .used = true, .handle = -1, .from = a->src, .from_tag = a->tag, .home = a->home,
                             .domain = a->domain, .vaddr = a->vaddr, .pages = a->pages, .protocol = TLB_BROADCAST,
                             .found = (uint32_t)found, .covered = 1, .tag = new_tag(),
                             .deadline = now_ns() + leader_wait_ns(a) };
        if (a->fanout) {
            /* numa-multicast within a node: a subtree leader for each part. */
            struct mcast_send sub[MCAST_FANOUT];
            uint32_t n = mcast_split_linked(fwd, a->fanout, my_core, mesh_clusters(), ncores, sub, MCAST_FANOUT);
            for (uint32_t i = 0; i < n && !s->err; i++) {
                s->err = shoot_send(s, sub[i].core, bits_empty(sub[i].fwd) ? 0 : sub[i].fwd, sub[i].fanout);
                tst.forwarded++;
            }
        } else {
            for (int c = bits_first(fwd); c >= 0 && !s->err; c = bits_next(fwd, c)) {
                s->err = shoot_send(s, (uint32_t)c, 0, 0);
                tst.forwarded++;
            }
        }
        if (s->err || bits_empty(s->waiting))
            shoot_done(s, s->err);
        return ERR_OK;
    }
    struct idl_chan *back = route(a->src);
    return back ? monitor_tlb_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->domain, (uint32_t)found,
                                         err ? 0 : 1)
                : ERR_NO_ROUTE;
}

void tlb_expire(void)
{
    uint64_t now = now_ns();
    for (unsigned i = 0; i < ARRAY_SIZE(shoots); i++)
        if (shoots[i].used && now > shoots[i].deadline) {
            tst.timeouts++;
            shoot_done(&shoots[i], ERR_TIMEOUT);
        }
}

void tlb_domain_ended(uint64_t domain)
{
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        if (shoots[i].used && shoots[i].home == my_core && shoots[i].domain == domain)
            shoots[i] = (struct shoot){ 0 };
}

size_t span_describe(char *out, size_t size)
{
    uint32_t spanning = 0;
    for (int i = 0; i < MAX_SPANNERS; i++)
        spanning += spanners[i].domain != 0;
    return (size_t)snprintf(out, size,
                            "\"span\":{\"spanning\":%u,\"asked\":%llu,\"made_here\":%llu,\"refused\":%llu,"
                            "\"shootdowns\":%llu,\"tlb_msgs\":%llu,\"forwarded\":%llu,\"tlb_timeouts\":%llu,"
                            "\"tree_by_cost\":%llu,\"tree_by_distance\":%llu}",
                            spanning, (unsigned long long)st.asked, (unsigned long long)st.made_here,
                            (unsigned long long)st.refused, (unsigned long long)tst.shootdowns,
                            (unsigned long long)tst.messages, (unsigned long long)tst.forwarded,
                            (unsigned long long)tst.timeouts, (unsigned long long)tst.by_cost,
                            (unsigned long long)tst.by_distance);
}
