/*
 * Building the mesh (mesh_plan.h) and the handlers of the monitors'
 * protocol (if/monitor.if).
 *
 * Core 0 attaches its boot channels as side 0 and sends each core the
 * plan; core N attaches its boot channel as side 1 and waits for it. Then
 * the lower core of every planned pair that has no boot channel allocates
 * a frame from its own RAM and offers it (link_offer, routed through core
 * 0 while the mesh is not up); the higher core re-creates the frame
 * (captransfer.c), attaches and answers on the new channel itself. Each
 * core tells core 0 when its part is up; core 0 reports `mesh_up`.
 */
#include "monitor.h"

struct mesh_plan plan;
bool plan_known;

static uint32_t links_expected, links_up;   /* mesh links, boot channels aside */
static bool down[MESH_MAX_CORES];           /* cores that never came up */
static uint32_t ncores_up;
static uint64_t mesh_t0;
static uint32_t cores_ready;                /* core 0: cores whose mesh is up */
static uint64_t channels_total;
static bool mesh_complete;
static int waiters[8];
static uint32_t nwaiters;
static bool ready[MESH_MAX_CORES];          /* core 0: cores that reported their part up */
static bool linked_with[MESH_MAX_CORES];    /* our mesh links that are up, by peer */
static bool reported;                        /* we told core 0 our part is up */

static void mesh_check_complete(void);

void mesh_wait(int client)
{
    if (mesh_complete || my_core != 0)
        client_mesh_wait_reply(client, my_core ? ERR_NOT_SUPPORTED : ERR_OK, channels_total);
    else if (nwaiters < ARRAY_SIZE(waiters))
        waiters[nwaiters++] = client;
    else
        client_mesh_wait_reply(client, ERR_TOO_MANY, 0);
}

/* A core whose monitor never reports (it failed to start, or lost its
 * channel) must not keep the shell from starting: after this long the
 * waiters hear ERR_TIMEOUT (and `mesh` shows what is up). */
#define MESH_WAIT_NS 120000000000ull

void mesh_wait_expire(void)
{
    if (mesh_complete || !nwaiters || now_ns() - mesh_t0 < MESH_WAIT_NS)
        return;
    printf("monitor: only %u of %u cores reported their mesh up\n", cores_ready, ncores_up);
    for (uint32_t i = 0; i < nwaiters; i++)
        client_mesh_wait_reply(waiters[i], ERR_TIMEOUT, channels_total);
    nwaiters = 0;
}

static void mesh_completed(uint64_t channels)
{
    mesh_complete = true;
    channels_total = channels;
    for (uint32_t i = 0; i < nwaiters; i++)
        client_mesh_wait_reply(waiters[i], ERR_OK, channels);
    nwaiters = 0;
}

/* The plan core 0 chooses (its module arguments mesh=... cluster=N; the
 * others learn it from core 0). */
static enum mesh_kind plan_kind = MESH_CLUSTER;
static uint32_t plan_cluster = MESH_DEFAULT_CLUSTER;

errval_t mesh_configure(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "mesh=cluster"))
            plan_kind = MESH_CLUSTER;
        else if (!strcmp(a, "mesh=all"))
            plan_kind = MESH_ALL;
        else if (!strcmp(a, "mesh=star"))
            plan_kind = MESH_STAR;
        else if (!strncmp(a, "cluster=", 8)) {
            uint32_t v = 0;
            const char *p = a + 8;
            for (; *p >= '0' && *p <= '9' && v < 1000; p++)
                v = v * 10 + (uint32_t)(*p - '0');
            if (*p || v == 0 || v > MESH_MAX_CORES)
                return ERR_INVALID_ARG;
            plan_cluster = v;
        } else {
            return ERR_INVALID_ARG;
        }
    }
    return ERR_OK;
}

static void report_ready(void);

bool core_alive(uint32_t core) { return core < ncores && !down[core]; }

void mesh_core_dead(uint32_t core)
{
    if (core < ncores && core < MESH_MAX_CORES)
        down[core] = true;
}

static void make_plan(uint32_t kind, uint32_t cluster)
{
    ncores_up = 0;
    for (uint32_t c = 0; c < ncores; c++)
        ncores_up += !down[c];
    if (!mesh_plan_init(&plan, ncores, machine.core_node, (enum mesh_kind)kind, cluster, down)) {
        printf("monitor %u: bad mesh plan (kind %u, cluster %u)\n", my_core, kind, cluster);
        return;
    }
    plan_known = true;
}

/* Offer a channel to every planned higher peer without a boot channel. */
static void offer_links(void)
{
    for (uint32_t peer = 0; peer < ncores; peer++) {
        if (peer == my_core || peer == 0 || my_core == 0 || !core_alive(peer) || !mesh_linked(&plan, my_core, peer))
            continue;
        links_expected++;
        if (peer < my_core)
            continue;   /* the lower core offers */
        struct link *l;
        errval_t err = link_offer(peer, LINK_MESH, &l);
        if (err)
            printf("monitor %u: cannot offer a channel to core %u: %s\n", my_core, peer, err_name(err));
    }
}

void mesh_link_up(struct link *l)
{
    l->up = true;
    if (l->peer < MESH_MAX_CORES)
        linked_with[l->peer] = true;
    if (l->purpose == LINK_MESH && ++links_up == links_expected)
        report_ready();
}

static void report_ready(void)
{
    uint64_t took = now_ns() - mesh_t0;
    if (reported)
        return;
    reported = true;
    if (my_core == 0) {
        ready[0] = true;
        cores_ready++;
        channels_total += links_up;
        return;
    }
    struct idl_chan *to0 = route(0);
    if (to0)
        monitor_mesh_ready_send(to0, 0, (uint16_t)my_core, new_tag(), links_up, took);
}

void mesh_start(void)
{
    mesh_t0 = now_ns();
    struct link *l;
    if (my_core != 0) {
        errval_t err = link_attach(0, LINK_BOOT, SLOT_BOOT_CHANNELS, 1, &l);
        if (err)
            printf("monitor %u: no boot channel: %s\n", my_core, err_name(err));
        else
            l->up = true;
        return;   /* the rest when the plan arrives */
    }
    /* Only the boot core saw which cores checked in: the others learn it
     * with the plan, and nobody waits for (or routes through) a dead one. */
    uint8_t down_bits[64] = { 0 };
    for (uint32_t c = 1; c < ncores && c < MESH_MAX_CORES; c++) {
        down[c] = machine.cores_known && !machine.core_up[c];
        if (down[c]) {
            down_bits[c / 8] |= (uint8_t)(1u << (c % 8));
            printf("monitor 0: core %u never came up: left out of the mesh\n", c);
            printf("@atoll {\"event\":\"core_down\",\"core\":%u}\n", c);
        }
    }
    make_plan(plan_kind, plan_cluster);
    channels_total = ncores_up - 1;   /* the boot channels */
    for (uint32_t c = 1; c < ncores; c++) {
        if (down[c])
            continue;
        errval_t err = link_attach(c, LINK_BOOT, SLOT_BOOT_CHANNELS + c, 0, &l);
        if (!err) {
            l->up = true;
            err = monitor_plan_send(&l->idl, (uint16_t)c, 0, new_tag(), plan.kind, plan.cluster, down_bits,
                                    sizeof down_bits);
        }
        if (err)
            printf("monitor 0: boot channel to core %u: %s\n", c, err_name(err));
    }
    if (ncores_up == 1) {
        printf("@atoll {\"event\":\"mesh_up\",\"cores\":1,\"channels\":0,\"planned\":0,\"kind\":\"%s\","
               "\"cluster\":%u,\"ms\":0}\n", mesh_kind_name(plan.kind), plan.cluster);
        mesh_completed(0);
        return;
    }
    report_ready();   /* core 0 has no mesh links of its own to wait for */
}

/* -- handlers ---------------------------------------------------------------- */

static errval_t on_plan(struct idl_chan *ch, const struct monitor_plan_args *a)
{
    (void)ch;
    if (plan_known || a->src != 0 || a->down_len != 64)
        return ERR_INVALID_ARG;
    for (uint32_t c = 0; c < ncores && c < 64 * 8; c++)
        down[c] = a->down[c / 8] >> (c % 8) & 1;
    if (down[my_core])
        return ERR_INVALID_ARG;
    make_plan(a->kind, a->cluster);
    if (!plan_known)
        return ERR_INVALID_ARG;
    offer_links();
    if (links_expected == 0)
        report_ready();
    return ERR_OK;
}

static errval_t on_link_offer(struct idl_chan *ch, const struct monitor_link_offer_args *a)
{
    (void)ch;
    struct link *l;
    errval_t err = a->purpose == LINK_MESH ? ERR_OK : ERR_INVALID_ARG;
    if (!err)
        err = link_attach(a->src, a->purpose, a->frame, 1, &l);
    if (err) {
        cap_free(a->frame);
        printf("monitor %u: channel from core %u refused: %s\n", my_core, a->src, err_name(err));
        return err;
    }
    /* The answer goes on the new channel: it proves it works both ways. */
    err = monitor_link_ready_send(&l->idl, a->src, (uint16_t)my_core, a->tag, ERR_OK);
    if (!err && a->purpose == LINK_MESH)
        mesh_link_up(l);
    return err;
}

static errval_t on_link_ready(struct idl_chan *ch, const struct monitor_link_ready_args *a)
{
    struct link *l = ch->state;
    if (l->up || l->peer != a->src || a->err)
        return a->err ? a->err : ERR_INVALID_ARG;
    if (l->purpose == LINK_MESH)
        mesh_link_up(l);
    else
        l->up = true;
    return ERR_OK;
}

static errval_t on_mesh_ready(struct idl_chan *ch, const struct monitor_mesh_ready_args *a)
{
    (void)ch;
    if (my_core != 0 || a->src >= MESH_MAX_CORES || ready[a->src] || !core_alive(a->src))
        return ERR_INVALID_ARG;
    ready[a->src] = true;
    cores_ready++;
    channels_total += a->links;
    mesh_check_complete();
    return ERR_OK;
}

bool mesh_core_ready(uint32_t core) { return mesh_complete || (core < MESH_MAX_CORES && ready[core]); }
uint64_t mesh_started_ns(void) { return mesh_t0; }

/* A core that died before the mesh was up was fenced (fence.c found it
 * silent, as it finds any core): its links will never come. Core 0 waits
 * for it no longer, nor does any core that expected a link with it. */
void mesh_core_fenced(uint32_t core)
{
    if (mesh_complete || !plan_known || core >= MESH_MAX_CORES)
        return;
    if (my_core == 0) {
        if (ready[core])
            cores_ready--;
        ready[core] = false;
        ncores_up--;
        mesh_check_complete();
    } else if (mesh_linked(&plan, my_core, core) && !linked_with[core] && links_expected > links_up) {
        links_expected--;
        if (links_up == links_expected)
            report_ready();
    }
}

static void mesh_check_complete(void)
{
    if (mesh_complete)
        return;
    if (cores_ready == ncores_up) {
        /* Each channel was counted by both its cores; the boot channels once. */
        uint64_t boot = ncores_up - 1, mesh = (channels_total - boot) / 2;
        printf("monitor: mesh of %u cores up: %llu channels (%s, clusters of %u), %llu ms\n", ncores_up,
               (unsigned long long)(mesh + boot), mesh_kind_name(plan.kind), plan.cluster,
               (unsigned long long)((now_ns() - mesh_t0) / 1000000));
        printf("@atoll {\"event\":\"mesh_up\",\"cores\":%u,\"channels\":%llu,\"planned\":%u,\"kind\":\"%s\","
               "\"cluster\":%u,\"down\":%u,\"ms\":%llu}\n",
               ncores_up, (unsigned long long)(mesh + boot), mesh_channel_count(&plan),
               mesh_kind_name(plan.kind), plan.cluster, ncores - ncores_up,
               (unsigned long long)((now_ns() - mesh_t0) / 1000000));
        mesh_completed(mesh + boot);
    }
}

/* A request of a client of another core's monitor, about this core. */
static errval_t on_ask(struct idl_chan *ch, const struct monitor_ask_args *a)
{
    (void)ch;
    struct asker who = { .handle = -1, .core = a->src, .tag = a->tag };
    request_serve(&who, a->call, a->call_len);
    return ERR_OK;
}

static errval_t on_answer(struct idl_chan *ch, const struct monitor_answer_args *a)
{
    (void)ch;
    request_answered(a->src, a->tag, a->reply, a->reply_len);
    return ERR_OK;
}

static errval_t on_ping_call(struct idl_chan *ch, const struct monitor_ping_call_args *a)
{
    (void)ch;
    struct idl_chan *back = route(a->src);
    return back ? monitor_ping_reply_send(back, a->src, (uint16_t)my_core, a->tag, a->stamp, a->hops)
                : ERR_NO_ROUTE;
}

static errval_t on_ping_reply(struct idl_chan *ch, const struct monitor_ping_reply_args *a)
{
    (void)ch;
    return ping_reply(a) ? ERR_OK : ERR_INVALID_ARG;
}

static errval_t on_connect_call(struct idl_chan *ch, const struct monitor_connect_call_args *a)
{
    (void)ch;
    errval_t err = conn_import(a->src, a->conn, a->service, a->frame, a->client);
    if (err)
        cap_free(a->frame);
    struct idl_chan *back = route(a->src);
    return back ? monitor_connect_reply_send(back, a->src, (uint16_t)my_core, a->tag, err, a->conn) : ERR_NO_ROUTE;
}

static errval_t on_connect_reply(struct idl_chan *ch, const struct monitor_connect_reply_args *a)
{
    (void)ch;
    struct pending p;
    pending_take(a->tag, a->src, &p);   /* gone if it timed out: the answer still counts */
    conn_connect_answered(a->conn, a->err);
    return ERR_OK;
}

static errval_t on_conn_closed(struct idl_chan *ch, const struct monitor_conn_closed_args *a)
{
    (void)ch;
    if (a->side > 1)
        return ERR_INVALID_ARG;
    conn_closed(a->src, a->owner, a->conn, a->side);
    return ERR_OK;
}

static errval_t on_conn_released(struct idl_chan *ch, const struct monitor_conn_released_args *a)
{
    (void)ch;
    conn_released(a->src, a->conn);
    return ERR_OK;
}

/* Capabilities across cores: capops.c. */
static errval_t on_cap_grant(struct idl_chan *ch, const struct monitor_cap_grant_args *a)
{
    return capops_on_grant(ch, a);
}

static errval_t on_cap_grant_reply(struct idl_chan *ch, const struct monitor_cap_grant_reply_args *a)
{
    (void)ch;
    return capops_on_grant_reply(a);
}

static errval_t on_cap_released(struct idl_chan *ch, const struct monitor_cap_released_args *a)
{
    (void)ch;
    return capops_on_released(a);
}

static errval_t on_cap_revoke_call(struct idl_chan *ch, const struct monitor_cap_revoke_call_args *a)
{
    (void)ch;
    return capops_on_revoke_call(a);
}

static errval_t on_cap_revoke_reply(struct idl_chan *ch, const struct monitor_cap_revoke_reply_args *a)
{
    (void)ch;
    return capops_on_revoke_reply(a);
}

static errval_t on_cap_retype_call(struct idl_chan *ch, const struct monitor_cap_retype_call_args *a)
{
    (void)ch;
    return capops_on_retype_call(a);
}

static errval_t on_cap_retype_reply(struct idl_chan *ch, const struct monitor_cap_retype_reply_args *a)
{
    (void)ch;
    return capops_on_retype_reply(a);
}

static errval_t on_cap_revoke_ask(struct idl_chan *ch, const struct monitor_cap_revoke_ask_args *a)
{
    (void)ch;
    return capops_on_revoke_ask(a);
}

static errval_t on_cap_revoke_ask_reply(struct idl_chan *ch, const struct monitor_cap_revoke_ask_reply_args *a)
{
    (void)ch;
    return capops_on_revoke_ask_reply(a);
}

static errval_t on_cap_give_on(struct idl_chan *ch, const struct monitor_cap_give_on_args *a)
{
    (void)ch;
    return capops_on_give_on(a);
}

static errval_t on_cap_give_on_reply(struct idl_chan *ch, const struct monitor_cap_give_on_reply_args *a)
{
    (void)ch;
    return capops_on_give_on_reply(a);
}

static errval_t on_cap_move_call(struct idl_chan *ch, const struct monitor_cap_move_call_args *a)
{
    (void)ch;
    return capops_on_move_call(a);
}

static errval_t on_cap_move_part(struct idl_chan *ch, const struct monitor_cap_move_part_args *a)
{
    (void)ch;
    return capops_on_move_part(a);
}

static errval_t on_cap_move_reply(struct idl_chan *ch, const struct monitor_cap_move_reply_args *a)
{
    (void)ch;
    return capops_on_move_reply(a);
}

static errval_t on_cap_moved(struct idl_chan *ch, const struct monitor_cap_moved_args *a)
{
    (void)ch;
    return capops_on_moved(a);
}

static errval_t on_cap_moved_reply(struct idl_chan *ch, const struct monitor_cap_moved_reply_args *a)
{
    (void)ch;
    return capops_on_moved_reply(a);
}

/* Heartbeats and dead cores: fence.c. */
static errval_t on_beat(struct idl_chan *ch, const struct monitor_beat_args *a)
{
    (void)ch;
    return fence_on_beat(a);
}

static errval_t on_core_suspect(struct idl_chan *ch, const struct monitor_core_suspect_args *a)
{
    (void)ch;
    return fence_on_suspect(a);
}

static errval_t on_core_dead(struct idl_chan *ch, const struct monitor_core_dead_args *a)
{
    (void)ch;
    return fence_on_dead(a);
}

static errval_t on_span_call(struct idl_chan *ch, const struct monitor_span_call_args *a)
{
    (void)ch;
    return span_on_call(a);
}

static errval_t on_span_reply(struct idl_chan *ch, const struct monitor_span_reply_args *a)
{
    (void)ch;
    return span_on_reply(a);
}

static errval_t on_tlb_call(struct idl_chan *ch, const struct monitor_tlb_call_args *a)
{
    (void)ch;
    return tlb_on_call(a);
}

static errval_t on_tlb_reply(struct idl_chan *ch, const struct monitor_tlb_reply_args *a)
{
    (void)ch;
    return tlb_on_reply(a);
}

const struct monitor_handlers monitor_handlers = {
    .plan = on_plan,
    .link_offer = on_link_offer,
    .link_ready = on_link_ready,
    .mesh_ready = on_mesh_ready,
    .ask = on_ask,
    .answer = on_answer,
    .ping_call = on_ping_call,
    .ping_reply = on_ping_reply,
    .connect_call = on_connect_call,
    .connect_reply = on_connect_reply,
    .conn_closed = on_conn_closed,
    .conn_released = on_conn_released,
    .cap_grant = on_cap_grant,
    .cap_grant_reply = on_cap_grant_reply,
    .cap_released = on_cap_released,
    .cap_revoke_call = on_cap_revoke_call,
    .cap_revoke_reply = on_cap_revoke_reply,
    .cap_retype_call = on_cap_retype_call,
    .cap_retype_reply = on_cap_retype_reply,
    .cap_revoke_ask = on_cap_revoke_ask,
    .cap_revoke_ask_reply = on_cap_revoke_ask_reply,
    .cap_give_on = on_cap_give_on,
    .cap_give_on_reply = on_cap_give_on_reply,
    .cap_move_call = on_cap_move_call,
    .cap_move_part = on_cap_move_part,
    .cap_move_reply = on_cap_move_reply,
    .cap_moved = on_cap_moved,
    .cap_moved_reply = on_cap_moved_reply,
    .beat = on_beat,
    .core_suspect = on_core_suspect,
    .core_dead = on_core_dead,
    .span_call = on_span_call,
    .span_reply = on_span_reply,
    .tlb_call = on_tlb_call,
    .tlb_reply = on_tlb_reply,
};
