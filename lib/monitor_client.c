/*
 * A domain and its core's monitor, and services through it; see
 * <atoll/monitor_client.h>. One conversation per domain, as domains are
 * single-threaded: the LMP channel to the monitor and the URPC request
 * channel are this file's.
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <if/monlmp_if.h>

#define MAX_NOTIFY_CORES 512

static struct lmp_chan lmp;
static struct service_chan mon;
static bool connected;
static uint64_t timeout_ns;

void monitor_set_timeout(uint64_t ns)
{
    timeout_ns = ns;
    lmp.recv_timeout_ns = lmp.send_timeout_ns = ns;
    mon.ch.timeout_ns = ns;
}
static capslot_t notify_caps[MAX_NOTIFY_CORES];

struct idl_chan *monitor_lmp(void) { return connected ? &lmp.idl : 0; }
struct idl_chan *monitor_chan(void) { return connected ? &mon.idl : 0; }

errval_t monitor_notify_cap(uint32_t core, capslot_t *out)
{
    if (core >= MAX_NOTIFY_CORES)
        return ERR_INVALID_ARG;
    if (!notify_caps[core]) {
        errval_t rerr = ERR_OK, err = monlmp_notify_cap_rpc(&lmp.idl, core, &rerr, &notify_caps[core]);
        if (err || rerr) {
            notify_caps[core] = 0;
            return err ? err : rerr;
        }
    }
    *out = notify_caps[core];
    return ERR_OK;
}

static errval_t service_chan_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    return urpc_send(&((struct service_chan *)ch->state)->ch, msg, len, flags);
}

static errval_t service_chan_recv(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags)
{
    return urpc_recv(&((struct service_chan *)ch->state)->ch, buf, size, len, flags);
}

/* Map `frame` and attach `sc` to it as `side`, the peer on `peer_core`. On
 * error the frame is freed. */
static errval_t attach(struct service_chan *sc, capslot_t frame, size_t bytes, int side, uint32_t peer_core)
{
    void *p = 0;
    capslot_t notify = 0;
    errval_t err = vspace_map_frame(frame, MAP_WRITE, &p);
    if (!err)
        err = urpc_init(&sc->ch, p, bytes, side);
    if (!err)
        err = monitor_notify_cap(peer_core, &notify);
    if (err) {
        frame_release(frame, p);
        return err;
    }
    sc->ch.wake_arg = notify;
    sc->ch.timeout_ns = 10000000000ull;   /* a peer silent for 10 s is gone */
    sc->peer_core = peer_core;
    sc->frame = frame;
    sc->map = p;
    sc->idl = (struct idl_chan){ .send = service_chan_send, .recv = service_chan_recv, .state = sc };
    return ERR_OK;
}

errval_t monitor_connect(void)
{
    if (connected)
        return ERR_OK;
    lmpchan_init(&lmp, SLOT_MONITOR_EP, LMPCHAN_MONITOR_BADGE);
    lmp.recv_timeout_ns = lmp.send_timeout_ns = timeout_ns;
    errval_t rerr = ERR_OK, err = monlmp_hello_rpc(&lmp.idl, &rerr);
    capslot_t frame = 0;
    if (!err && !rerr)
        err = monlmp_channel_rpc(&lmp.idl, &rerr, &frame);
    if (err || rerr)
        return err ? err : rerr;
    connected = true;   /* the LMP half works: attach may ask it for a Notify capability */
    /* The monitor is on this very core: sleep at once rather than spin
     * while it cannot run, and wait as long as it takes (it answers every
     * request, if only with ERR_TIMEOUT). */
    err = attach(&mon, frame, MON_CHANNEL_BYTES, 0, startup()->core_id);
    if (err) {
        connected = false;
        return err;
    }
    mon.ch.spin_ns = 0;
    mon.ch.timeout_ns = timeout_ns;
    return ERR_OK;
}

errval_t service_register_self(uint64_t *id)
{
    errval_t rerr = ERR_OK, err = monitor_connect();
    if (!err)
        err = monlmp_serve_rpc(&lmp.idl, &rerr, id);
    return err ? err : rerr;
}

errval_t service_connect_wait(uint64_t service, struct service_chan *sc, uint64_t wait_ms)
{
    errval_t err = monitor_connect(), rerr = ERR_OK;
    capslot_t frame = 0;
    uint64_t start = urpc_os_now_ns();
    while (!err) {
        err = monlmp_connect_rpc(&lmp.idl, service, &rerr, &frame);
        if (err)
            break;
        /* Not registered yet (for wait_ms), or its accept queue is full (always). */
        if (rerr != ERR_WOULD_BLOCK &&
            (rerr != ERR_NOT_FOUND || urpc_os_now_ns() - start >= wait_ms * 1000000ull))
            break;
        /* Sleep a little, not spin: the service may need this very core
         * (and our monitor) to get as far as registering. */
        sys_notify_wait(sys_notify_gen(), 2000, 0);
    }
    if (err || rerr)
        return err ? err : rerr;
    memset(sc, 0, sizeof *sc);
    return attach(sc, frame, 4096, 0, SERVICE_CORE(service));
}

errval_t service_connect(uint64_t service, struct service_chan *sc)
{
    return service_connect_wait(service, sc, 0);
}

errval_t service_accept(struct service_chan *sc)
{
    capslot_t frame = 0;
    uint32_t core = 0;
    uint64_t client = 0;
    uint16_t seq = 0;
    errval_t err = monitor_connect(), rerr = ERR_OK;
    if (!err)
        err = monlmp_accept_rpc(&lmp.idl, &rerr, &frame, &core, &client, &seq);
    if (err || rerr)
        return err ? err : rerr;
    memset(sc, 0, sizeof *sc);
    err = attach(sc, frame, 4096, 1, core);
    if (!err) {
        sc->peer = client;
        sc->service = SERVICE_ID(startup()->core_id, startup()->domain_id, seq);
    }
    return err;
}

void service_chan_close(struct service_chan *sc, errval_t reason)
{
    urpc_close(&sc->ch, reason);
    if (sc->src.ws)
        waitset_remove(&sc->src);
    if (sc->frame)
        frame_release(sc->frame, sc->map);
    sc->frame = 0;
    sc->map = 0;
}

void service_chan_source(struct service_chan *sc, bool (*ready)(struct ws_source *s), void *arg)
{
    ws_urpc_source(&sc->src, &sc->ch, ready, arg);
    sc->src.name = "service channel";
}

/* How far core `to` is from core `from`, for the nearest replica. */
static uint32_t core_distance(const struct core_info *m, uint32_t from, uint32_t to)
{
    uint32_t a = m->core_node[from], b = m->core_node[to];
    if (from == to)
        return 0;
    if (a == b)
        return 1;
    return a < CORE_INFO_MAX_NODES && b < CORE_INFO_MAX_NODES ? 10u + m->node_distance[a][b] : ~0u;
}

errval_t names_connect_wait(struct service_chan *sc, uint64_t wait_ms)
{
    static struct core_info m;
    static uint32_t order[CORE_INFO_MAX_NODES], n;
    if (!n) {
        if (sys_core_info(&m) || !(n = names_cores(&m, order, CORE_INFO_MAX_NODES))) {
            order[0] = 0;   /* no topology: core 0's, as ever */
            n = 1;
        }
        uint32_t me = m.core_id < CORE_INFO_MAX_CORES ? m.core_id : 0;
        for (uint32_t i = 1; i < n; i++)   /* nearest first; a handful of nodes */
            for (uint32_t j = i; j > 0 && core_distance(&m, me, order[j]) < core_distance(&m, me, order[j - 1]); j--) {
                uint32_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    }
    uint64_t start = urpc_os_now_ns();
    for (;;) {
        errval_t err = ERR_NOT_FOUND;
        for (uint32_t i = 0; i < n; i++)   /* any error (not up yet, core down): the next */
            if (!(err = service_connect(NAMES_AT(order[i]), sc)))
                return ERR_OK;
        if (urpc_os_now_ns() - start >= wait_ms * 1000000ull)
            return err;
        sys_notify_wait(sys_notify_gen(), 2000, 0);   /* none is up yet (boot, or all restarting) */
    }
}

errval_t names_connect(struct service_chan *sc)
{
    return names_connect_wait(sc, NAMES_CONNECT_WAIT_MS);
}

/* -- taking connections in an event loop ------------------------------------------------- */

static bool acceptor_poll(struct ws_source *s)
{
    struct service_acceptor *a = s->arg;
    uint64_t now = urpc_os_now_ns();
    if (a->last_ns && now - a->last_ns < 1000000)
        return false;
    a->last_ns = now;
    uint64_t token = sys_notify_gen();
    if (token == a->last_token)
        return false;
    a->last_token = token;
    bool any = false;
    for (;;) {
        struct service_chan *sc = malloc(sizeof *sc);
        if (!sc)
            return any;
        errval_t err = service_accept(sc);
        if (err) {
            free(sc);
            if (err != ERR_WOULD_BLOCK)
                a->failed++;
            return any;
        }
        any = true;
        a->accepted_count++;
        a->accepted(a, sc);
    }
}

void service_acceptor_init(struct service_acceptor *a,
                           void (*accepted)(struct service_acceptor *a, struct service_chan *sc), void *arg)
{
    *a = (struct service_acceptor){ .accepted = accepted, .arg = arg, .last_token = ~0ull };
    a->src = (struct ws_source){ .poll = acceptor_poll, .arg = a, .name = "acceptor" };
}
