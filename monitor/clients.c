/*
 * The domains of this core, as clients of their monitor: LMP requests
 * (protocol.h), which carry capabilities, and typed requests over a URPC
 * channel each client may ask for (MON_CHANNEL, if/monclient.if). A request
 * about another core goes on over the mesh and the client waits until the
 * answer comes back (pending.c); the monitor serves others meanwhile.
 */
#include "monitor.h"
#include <if/monclient_if.h>

#define MAX_CLIENTS 32

struct client {
    capslot_t ep;       /* endpoint to the client, its badge = its domain id */
    uint64_t badge;
    capslot_t page;     /* the page we share with it (MON_SHARE): ours, it has a copy */
    char *text;         /* our mapping of it */
    struct urpc_chan *uc;   /* MON_CHANNEL: typed requests (we are side 1) */
    struct idl_chan idl;
};
static struct client clients[MAX_CLIENTS];
uint64_t shell_id = ~0ull;   /* core 0: the shell's domain id */
static capslot_t recv;       /* where the next capability sent to us lands */

void clients_init(void)
{
    struct lmp_msg none;
    /* Name the receive slot before any client can send a capability. */
    if (slot_alloc(&recv) || sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &none) != ERR_WOULD_BLOCK)
        printf("monitor %u: cannot name a receive slot\n", my_core);
}

static int client_of(uint64_t badge)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].ep && clients[i].badge == badge)
            return i;
    return -1;
}

static bool endpoint_alive(capslot_t ep)
{
    struct cap_identity id;
    return ep && sys_cap_identify(ep, &id) == ERR_OK && id.type == CAP_ENDPOINT;
}

bool client_alive(uint64_t badge)
{
    int c = client_of(badge);
    return c >= 0 && endpoint_alive(clients[c].ep);
}

/* A slot for a new client: a free one, or one whose domain has ended. */
static int new_client(void)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (!clients[i].ep)
            return i;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (!endpoint_alive(clients[i].ep)) {
            cap_free(clients[i].ep);
            clients[i].ep = 0;
            /* Its channel's frame stays mapped here, unused: 4 KiB. */
            free(clients[i].uc);
            clients[i].uc = 0;
            return i;   /* its page stays ours: the next client gets a copy of it */
        }
    }
    return -1;
}

/* Put a fresh slot in place for the next capability a client sends. */
static capslot_t take_recv(void)
{
    capslot_t got = recv;
    struct lmp_msg none;
    if (slot_alloc(&recv) || sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &none) != ERR_WOULD_BLOCK)
        printf("monitor %u: cannot name a receive slot\n", my_core);
    return got;
}

/* The answer to request `op` on the client's channel, in that request's
 * reply message. */
static void answer_on_channel(int c, uint32_t op, errval_t err, uint64_t v, uint64_t v2, const char *text)
{
    struct idl_chan *ch = &clients[c].idl;
    const char *t = text ? text : "";
    uint32_t hops = 0;
    switch (op) {
    case MON_PS: monclient_ps_reply_send(ch, err, t); break;
    case MON_SPAWN: monclient_spawn_reply_send(ch, err, v); break;
    case MON_MEM: monclient_mem_reply_send(ch, err, v, (uint32_t)v2); break;
    case MON_CORE: monclient_describe_reply_send(ch, err, t); break;
    case MON_BUSY: monclient_busy_reply_send(ch, err, v); break;
    case MON_MESH: monclient_mesh_reply_send(ch, err, v, t); break;
    case MON_PING:
        for (const char *p = t; *p; p++)   /* "hops N" */
            if (*p >= '0' && *p <= '9')
                hops = hops * 10 + (uint32_t)(*p - '0');
        monclient_ping_reply_send(ch, err, v, v2, hops);
        break;
    case MON_BENCH: monclient_bench_reply_send(ch, err, t); break;
    default: break;
    }
}

void client_answer(int c, bool chan, uint32_t op, errval_t err, uint64_t v, uint64_t v2, const char *text)
{
    if (c < 0 || c >= MAX_CLIENTS || !clients[c].ep)
        return;
    if (chan && clients[c].uc)
        answer_on_channel(c, op, err, v, v2, text);
    else if (!chan)
        client_reply(c, err, v, v2, text);
}

void client_reply(int c, errval_t err, uint64_t value, uint64_t value2, const char *text)
{
    if (c < 0 || c >= MAX_CLIENTS || !clients[c].ep)
        return;
    if (text && clients[c].text)
        snprintf(clients[c].text, 4096, "%s", text);
    sys_lmp_send(clients[c].ep, err, value, value2, 0, LMP_NO_CAP);
}

/* Reply with a capability, which moves to the client. */
void client_reply_cap(int c, errval_t err, uint64_t v, uint64_t v2, capslot_t cap)
{
    if (err) {
        sys_lmp_send(clients[c].ep, err, 0, 0, 0, LMP_NO_CAP);
        return;
    }
    err = sys_lmp_send(clients[c].ep, ERR_OK, v, v2, 0, cap | LMP_SEND_MOVE);
    if (err)
        cap_free(cap);
    else
        slot_free(cap);
}

static errval_t share_page(int c, capslot_t *copy)
{
    /* The page is ours, the client gets a copy: a client deleting its copy
     * cannot pull the page from under us. */
    errval_t err = ERR_OK;
    if (!clients[c].page) {
        capslot_t frame;
        void *p = 0;
        err = frame_alloc(4096, &frame);
        if (!err)
            err = vspace_map_frame(frame, MAP_WRITE, &p);
        if (err)
            return err;
        clients[c].page = frame;
        clients[c].text = p;
    }
    err = slot_alloc(copy);
    if (!err)
        err = sys_cap_copy(clients[c].page, *copy);
    return err;
}

/* The client's text as an argument: the client writes the page as it
 * likes, NUL or not, so never read past what fits in `out`. */
static void text_arg(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%.*s", (int)(size - 1), text);
}

/* A request about core `core`: here, or sent on (the reply comes later).
 * `cmd`: MON_SPAWN's "program args". chan: answer on the client's channel. */
static void ask(int c, bool chan, uint32_t op, uint32_t core, uint64_t arg, const char *cmd)
{
    if (core >= ncores) {
        client_answer(c, chan, op, ERR_INVALID_ARG, 0, 0, "");
        return;
    }
    if (core == my_core) {
        uint64_t v = 0, v2 = 0;
        static char out[MON_TEXT_MAX + 1];
        errval_t err;
        out[0] = 0;
        if (op == MON_SPAWN)
            err = spawn_local(cmd, arg, &v, 0);
        else
            err = serve_info(op, out, sizeof out, &v, &v2);
        client_answer(c, chan, op, err, v, v2, out);
        return;
    }
    struct idl_chan *via = route(core);
    struct pending p = { .kind = PEND_CLIENT, .client = c, .chan = chan, .op = op, .to = core };
    uint32_t tag = via ? pending_add(&p) : 0;
    errval_t err = !via ? ERR_NO_ROUTE : !tag ? ERR_TOO_MANY : ERR_OK;
    if (!err && op == MON_SPAWN)
        err = monitor_spawn_call_send(via, (uint16_t)core, (uint16_t)my_core, tag, cmd, arg);
    else if (!err)
        err = monitor_info_call_send(via, (uint16_t)core, (uint16_t)my_core, tag, op);
    if (err) {
        pending_take(tag, ANY_CORE, &p);
        client_answer(c, chan, op, err, 0, 0, "");
    }
}

static void ping_or_bench(int c, bool chan, uint32_t op, uint32_t from, uint32_t to, uint32_t rounds)
{
    if (from >= ncores || to >= ncores || from == to || rounds == 0 || rounds > 10000) {
        client_answer(c, chan, op, ERR_INVALID_ARG, 0, 0, "");
        return;
    }
    struct pending p = { .kind = PEND_CLIENT, .client = c, .chan = chan, .op = op, .peer = to, .to = from };
    if (from == my_core && op == MON_PING) {
        errval_t err = bench_pingpair_start(to, rounds, &p);
        if (err)
            client_answer(c, chan, op, err, 0, 0, "");
        return;
    }
    if (from == my_core) {
        struct monitor_bench_reply_args r = { 0 };
        static char out[512];
        errval_t err = bench_urpc(to, rounds, &r);
        bench_describe(out, sizeof out, from, to, &r);
        client_answer(c, chan, op, err, 0, 0, out);
        return;
    }
    struct idl_chan *via = route(from);
    uint32_t tag = via ? pending_add(&p) : 0;
    errval_t err = !via ? ERR_NO_ROUTE : !tag ? ERR_TOO_MANY : ERR_OK;
    if (!err && op == MON_PING)
        err = monitor_pingpair_call_send(via, (uint16_t)from, (uint16_t)my_core, tag, (uint16_t)to, rounds);
    else if (!err)
        err = monitor_bench_call_send(via, (uint16_t)from, (uint16_t)my_core, tag, (uint16_t)to, rounds);
    if (err) {
        pending_take(tag, ANY_CORE, &p);
        client_answer(c, chan, op, err, 0, 0, "");
    }
}

/* -- typed requests on the client's channel (if/monclient.if) ------------------ */
_Static_assert(monclient_size_max <= (MON_CHANNEL_BYTES / 2 / URPC_LINE - 1) * URPC_PAYLOAD,
               "every monclient message fits in the channel's ring");
static int chan_client(struct idl_chan *ch) { return (int)(intptr_t)ch->user; }

static errval_t on_ps(struct idl_chan *ch, const struct monclient_ps_call_args *a)
{
    ask(chan_client(ch), true, MON_PS, a->core, 0, "");
    return ERR_OK;
}

static errval_t on_spawn(struct idl_chan *ch, const struct monclient_spawn_call_args *a)
{
    ask(chan_client(ch), true, MON_SPAWN, a->core, a->ram_bytes, a->cmd);
    return ERR_OK;
}

static errval_t on_mem(struct idl_chan *ch, const struct monclient_mem_call_args *a)
{
    ask(chan_client(ch), true, MON_MEM, a->core, 0, "");
    return ERR_OK;
}

static errval_t on_describe(struct idl_chan *ch, const struct monclient_describe_call_args *a)
{
    ask(chan_client(ch), true, MON_CORE, a->core, 0, "");
    return ERR_OK;
}

static errval_t on_busy(struct idl_chan *ch, const struct monclient_busy_call_args *a)
{
    ask(chan_client(ch), true, MON_BUSY, a->core, 0, "");
    return ERR_OK;
}

static errval_t on_mesh(struct idl_chan *ch, const struct monclient_mesh_call_args *a)
{
    ask(chan_client(ch), true, MON_MESH, a->core, 0, "");
    return ERR_OK;
}

static errval_t on_ping(struct idl_chan *ch, const struct monclient_ping_call_args *a)
{
    ping_or_bench(chan_client(ch), true, MON_PING, a->from, a->to, a->rounds);
    return ERR_OK;
}

static errval_t on_bench(struct idl_chan *ch, const struct monclient_bench_call_args *a)
{
    ping_or_bench(chan_client(ch), true, MON_BENCH, a->from, a->to, a->rounds);
    return ERR_OK;
}

static const struct monclient_handlers chan_handlers = {
    .ps_call = on_ps, .spawn_call = on_spawn, .mem_call = on_mem, .describe_call = on_describe,
    .busy_call = on_busy, .mesh_call = on_mesh, .ping_call = on_ping, .bench_call = on_bench,
};

static errval_t chan_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    (void)flags;
    struct urpc_chan *uc = clients[chan_client(ch)].uc;
    /* Never wait on a client: one that takes no replies loses them. */
    return urpc_send(uc, msg, len, URPC_NONBLOCK);
}

static errval_t chan_recv(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags)
{
    return urpc_recv(clients[chan_client(ch)].uc, buf, size, len, flags);
}

/* MON_CHANNEL: a URPC channel in a frame of ours; the client gets a copy. */
static errval_t open_channel(int c, capslot_t *copy)
{
    if (clients[c].uc)
        return ERR_DUPLICATE;
    capslot_t frame;
    void *p;
    struct urpc_chan *uc = malloc(sizeof *uc);
    errval_t err = uc ? frame_alloc(MON_CHANNEL_BYTES, &frame) : ERR_NO_MEMORY;
    if (!err && (err = vspace_map_frame(frame, MAP_WRITE, &p)))
        cap_free(frame);
    if (!err) {
        memset(p, 0, MON_CHANNEL_BYTES);
        urpc_init(uc, p, MON_CHANNEL_BYTES, 1);
        uc->wake_arg = notify_cap_for(my_core);   /* the client sleeps on this core */
        err = slot_alloc(copy);
        if (!err && (err = sys_cap_copy(frame, *copy)))
            slot_free(*copy);
    }
    if (err) {
        free(uc);
        return err;
    }
    clients[c].uc = uc;
    clients[c].idl = (struct idl_chan){ .send = chan_send, .recv = chan_recv, .user = (void *)(intptr_t)c };
    return ERR_OK;
}

static bool poll_channels(void)
{
    bool did = false;
    for (int c = 0; c < MAX_CLIENTS; c++) {
        if (!clients[c].ep || !clients[c].uc || clients[c].uc->broken)
            continue;
        errval_t err = monclient_serve_one(&clients[c].idl, &chan_handlers, URPC_NONBLOCK);
        if (err == ERR_WOULD_BLOCK)
            continue;
        did = true;
        if (err)
            printf("monitor %u: request from domain %llu refused: %s\n", my_core,
                   (unsigned long long)clients[c].badge, err_name(err));
    }
    return did;
}

void clients_set_sleeping(bool sleeping)
{
    for (int c = 0; c < MAX_CLIENTS; c++)
        if (clients[c].ep && clients[c].uc && !clients[c].uc->broken)
            urpc_set_sleeping(clients[c].uc, sleeping);
}

bool clients_pending(void)
{
    for (int c = 0; c < MAX_CLIENTS; c++)
        if (clients[c].ep && clients[c].uc && !clients[c].uc->broken && urpc_pending(clients[c].uc))
            return true;
    return false;
}

/* A zeroed 4 KiB frame from the monitor's own RAM (it stays mapped here:
 * the copies handed out are capabilities of their own). */
static errval_t channel_frame(capslot_t *frame)
{
    void *p;
    errval_t err = frame_alloc(4096, frame);
    if (!err)
        err = vspace_map_frame(*frame, MAP_WRITE, &p);
    if (!err)
        memset(p, 0, 4096);
    return err;
}

/* A copy of `frame` to hand out (the monitor keeps the original). */
static errval_t copy_of(capslot_t frame, capslot_t *copy)
{
    errval_t err = slot_alloc(copy);
    if (!err && (err = sys_cap_copy(frame, *copy)))
        slot_free(*copy);
    return err;
}

/* MON_CONNECT: a channel frame for the client and for the service, here or
 * on another core. The frame comes from the monitor's RAM, not the
 * client's: a client that ends (and has its RAM revoked) must not pull the
 * page from under the service. The monitor keeps the original. */
static void connect(int c, uint64_t service)
{
    uint32_t core = (uint32_t)(service >> 32);
    capslot_t frame, copy;
    errval_t err = core < ncores ? channel_frame(&frame) : ERR_NOT_FOUND;
    if (err) {
        client_reply(c, err, 0, 0, 0);
        return;
    }
    if (core == my_core) {
        err = copy_of(frame, &copy);
        if (!err && (err = service_connect(service, copy, my_core, clients[c].badge)))
            cap_free(copy);
        if (!err)
            err = copy_of(frame, &copy);
        if (err)
            cap_free(frame);   /* nobody holds a copy: do not keep it */
        client_reply_cap(c, err, 0, 0, copy);
        return;
    }
    struct idl_chan *via = route(core);
    struct pending p = { .kind = PEND_CLIENT, .client = c, .op = MON_CONNECT, .frame = frame, .to = core };
    uint32_t tag = via ? pending_add(&p) : 0;
    err = !via ? ERR_NO_ROUTE : !tag ? ERR_TOO_MANY : ERR_OK;
    if (!err)
        err = monitor_connect_call_send(via, (uint16_t)core, (uint16_t)my_core, tag, service, frame,
                                        clients[c].badge);
    if (err) {
        pending_take(tag, ANY_CORE, &p);
        cap_free(frame);
        client_reply(c, err, 0, 0, 0);
    }
}

/* The service's monitor took the frame (or refused it, and deleted its
 * copy): the client gets its copy. */
void client_connected(int c, errval_t err, capslot_t frame)
{
    capslot_t copy = 0;
    if (!err)
        err = copy_of(frame, &copy);
    if (err)
        cap_free(frame);
    client_reply_cap(c, err, 0, 0, copy);
}

static void request(int c, const struct lmp_msg *m, capslot_t cap)
{
    uint64_t op = m->w[0];
    if (cap) {   /* a capability nobody asked for: drop it */
        cap_free(cap);
        cap = 0;
    }
    capslot_t out;
    errval_t err;
    uint64_t v = 0;
    uint32_t core32 = 0;
    switch (op) {
    case MON_HELLO:   /* again: it is a client already */
        client_reply(c, ERR_OK, 0, 0, 0);
        return;
    case MON_SHARE:
        err = share_page(c, &out);
        client_reply_cap(c, err, 0, 0, out);
        return;
    case MON_IOCAP:
    case MON_POWEROFF:
        /* The machine and the serial line are the shell's alone. */
        if (m->badge != shell_id || my_core != 0) {
            client_reply(c, ERR_CAP_RIGHTS, 0, 0, 0);
            return;
        }
        if (op == MON_POWEROFF) {
            stdout_flush();
            client_reply(c, sys_poweroff(SLOT_KERNEL, m->w[1]), 0, 0, 0);
            return;
        }
        err = slot_alloc(&out);
        if (!err)
            err = sys_cap_mint(SLOT_IO, out, CAP_RIGHTS_ALL, 0, 0x3f8, 8);
        client_reply_cap(c, err, 0, 0, out);
        return;
    case MON_SPAWN_PEER: {
        char cmd[240];
        capslot_t disp;
        if (!clients[c].text) {
            client_reply(c, ERR_INVALID_ARG, 0, 0, 0);
            return;
        }
        text_arg(cmd, sizeof cmd, clients[c].text);
        err = spawn_local(cmd, 0, &v, &disp);
        if (!err)
            err = slot_alloc(&out);
        if (!err)
            err = sys_cap_mint(disp, out, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, v, 0, 0);
        client_reply_cap(c, err, v, 0, out);
        return;
    }
    case MON_PS:
    case MON_SPAWN:
    case MON_MEM:
    case MON_CORE:
    case MON_BUSY:
    case MON_MESH: {
        char cmd[240];
        if (!clients[c].text) {
            client_reply(c, ERR_INVALID_ARG, 0, 0, 0);
            return;
        }
        text_arg(cmd, sizeof cmd, clients[c].text);
        ask(c, false, (uint32_t)op, (uint32_t)m->w[1], m->w[2], cmd);
        return;
    }
    case MON_PING:
    case MON_BENCH:
        ping_or_bench(c, false, (uint32_t)op, (uint32_t)m->w[1], (uint32_t)m->w[2], (uint32_t)m->w[3]);
        return;
    case MON_CHANNEL:
        err = open_channel(c, &out);
        client_reply_cap(c, err, 0, 0, out);
        return;
    case MON_SERVE:
        err = service_register(m->badge, &v);
        client_reply(c, err, v, 0, 0);
        return;
    case MON_CONNECT:
        connect(c, m->w[1]);
        return;
    case MON_ACCEPT: {
        uint64_t client = 0;
        err = service_accept(m->badge, &out, &core32, &client);
        client_reply_cap(c, err, core32, client, out);
        return;
    }
    case MON_MESH_WAIT:
        mesh_wait(c);
        return;
    case MON_NOTIFY_CAP: {
        struct cap_identity id = { .type = CAP_NOTIFY, .rights = CAP_RIGHT_WRITE, .base = m->w[1], .bytes = 1 };
        err = m->w[1] < ncores ? slot_alloc(&out) : ERR_INVALID_ARG;
        if (!err) {
            err = sys_cap_create(SLOT_KERNEL, &id, out);
            if (err)
                slot_free(out);
        }
        client_reply_cap(c, err, 0, 0, out);
        return;
    }
    default:
        client_reply(c, ERR_INVALID_ARG, 0, 0, 0);
    }
}


bool clients_poll(void)
{
    struct lmp_msg m;
    bool did = poll_channels();
    if (sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &m) != ERR_OK)
        return did;
    capslot_t cap = m.has_cap ? take_recv() : 0;
    int c = client_of(m.badge);
    if (m.w[0] == MON_HELLO && c < 0) {
        /* Replies go to an endpoint we make from the sender's own
         * dispatcher (the badge names it), never to one it hands us: it
         * could name another domain, or this monitor (our replies would
         * come back as requests, forever). */
        capslot_t ep;
        if (cap)
            cap_free(cap);
        if (child_endpoint(m.badge, &ep))
            return true;   /* not a domain of ours: nobody to tell */
        c = new_client();
        if (c < 0) {
            cap_free(ep);
            return true;
        }
        clients[c].ep = ep;
        clients[c].badge = m.badge;
        sys_lmp_send(ep, ERR_OK, 0, 0, 0, LMP_NO_CAP);
        return true;
    }
    if (c < 0) {   /* not a client: ignore, never act on it */
        if (cap)
            cap_free(cap);
        return true;
    }
    request(c, &m, cap);
    return true;
}
