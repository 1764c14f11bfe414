/*
 * The domains of this core, as clients of their monitor: LMP requests
 * (protocol.h), which carry capabilities, and typed requests over a URPC
 * channel each client may ask for (MON_CHANNEL, if/monclient.if). A request
 * about another core goes on over the mesh and the client waits until the
 * answer comes back (pending.c); the monitor serves others meanwhile.
 */
#include "monitor.h"
#include <if/monclient_if.h>

/* A client is named by a handle: its slot and the slot's generation, so
 * that an answer for a client that ended never reaches the next domain
 * given the same slot. */
#define HANDLE(i, gen) ((int)((gen) << 8 | (i)))
_Static_assert(MON_MAX_CLIENTS <= 256, "a slot fits in a handle's low byte");

struct client {
    capslot_t ep;       /* endpoint to the client, its badge = its domain id */
    uint64_t badge;
    uint32_t gen;       /* bumped whenever the slot changes hands */
    capslot_t page;     /* the page we share with it (MON_SHARE): ours, it has a copy */
    char *text;         /* our mapping of it */
    capslot_t chan_frame;       /* MON_CHANNEL: typed requests (we are side 1) */
    void *chan_map;
    struct urpc_chan *uc;
    struct idl_chan idl;
};
static struct client clients[MON_MAX_CLIENTS];
uint64_t shell_id = ~0ull;   /* core 0: the shell's domain id */
static capslot_t recv;       /* where the next capability sent to us lands */
static uint64_t clients_served, clients_refused;

void clients_init(void)
{
    struct lmp_msg none;
    /* Name the receive slot before any client can send a capability. */
    if (slot_alloc(&recv) || sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &none) != ERR_WOULD_BLOCK)
        printf("monitor %u: cannot name a receive slot\n", my_core);
}

static int client_of(uint64_t badge)
{
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        if (clients[i].ep && clients[i].badge == badge)
            return i;
    return -1;
}

/* The client a handle names, if it is still that client. */
static struct client *client_at(int handle)
{
    uint32_t i = (uint32_t)handle & 0xff, gen = (uint32_t)handle >> 8;
    if (handle < 0 || i >= MON_MAX_CLIENTS || !clients[i].ep || clients[i].gen != gen)
        return 0;
    return &clients[i];
}

bool client_handle_valid(int handle) { return client_at(handle) != 0; }

static int handle_of(int i) { return HANDLE(i, clients[i].gen); }

/* Everything the monitor held for client `i` goes; the slot is clean for
 * the next. The page and the channel are freed, not handed on: the next
 * client gets fresh zeroed ones, and the copies anyone kept die with them. */
static void release_client(int i)
{
    struct client *c = &clients[i];
    pending_forget_client(handle_of(i));
    if (c->uc)
        urpc_close(c->uc, ERR_DOMAIN_ENDED);
    if (c->chan_frame)
        frame_release(c->chan_frame, c->chan_map);
    free(c->uc);
    if (c->page)
        frame_release(c->page, c->text);
    if (c->ep)
        cap_free(c->ep);
    uint32_t gen = c->gen + 1;
    *c = (struct client){ .gen = gen & 0xffffff };
}

void clients_domain_ended(uint64_t domain)
{
    int i = client_of(domain);
    if (i >= 0)
        release_client(i);
}

/* A slot for a new client: a free one (ended clients were released when
 * their obituary came). */
static int new_client(void)
{
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        if (!clients[i].ep)
            return i;
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
    case MON_KILL: monclient_kill_reply_send(ch, err); break;
    case MON_STATS: monclient_stats_reply_send(ch, err, t); break;
    default: break;
    }
}

void client_answer(int handle, bool chan, uint32_t op, errval_t err, uint64_t v, uint64_t v2, const char *text)
{
    struct client *c = client_at(handle);
    if (!c)
        return;   /* it ended meanwhile */
    if (chan && c->uc)
        answer_on_channel((int)(c - clients), op, err, v, v2, text);
    else if (!chan)
        client_reply(handle, err, v, v2, text);
}

void client_reply(int handle, errval_t err, uint64_t value, uint64_t value2, const char *text)
{
    struct client *c = client_at(handle);
    if (!c)
        return;
    if (text && c->text)
        snprintf(c->text, 4096, "%s", text);
    sys_lmp_send(c->ep, err, value, value2, 0, LMP_NO_CAP);
}

/* Reply with a capability, which moves to the client (or is freed if the
 * client cannot take it). */
void client_reply_cap(int handle, errval_t err, uint64_t v, uint64_t v2, capslot_t cap)
{
    struct client *c = client_at(handle);
    if (err || !c) {
        if (c)
            sys_lmp_send(c->ep, err, 0, 0, 0, LMP_NO_CAP);
        if (!err && cap)
            cap_free(cap);
        return;
    }
    err = sys_lmp_send(c->ep, ERR_OK, v, v2, 0, cap | LMP_SEND_MOVE);
    if (err)
        cap_free(cap);
    else
        slot_free(cap);
}

static errval_t share_page(int i, capslot_t *copy)
{
    /* The page is ours, the client gets a copy: a client deleting its copy
     * cannot pull the page from under us. */
    struct client *c = &clients[i];
    errval_t err = ERR_OK;
    if (!c->page) {
        capslot_t frame;
        void *p = 0;
        err = frame_alloc(4096, &frame);
        if (!err && (err = vspace_map_frame(frame, MAP_WRITE, &p)))
            cap_free(frame);
        if (err)
            return err;
        c->page = frame;
        c->text = p;
    }
    err = slot_alloc(copy);
    if (!err && (err = sys_cap_copy(c->page, *copy)))
        slot_free(*copy);
    return err;
}

/* The client's text as an argument: the client writes the page as it
 * likes, NUL or not, so never read past what fits in `out`. */
static void text_arg(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%.*s", (int)(size - 1), text);
}

/* Requests about a core that never came up, or that does not exist,
 * are answered at once. */
static errval_t check_core(uint32_t core)
{
    if (core >= ncores)
        return ERR_INVALID_ARG;
    return core_alive(core) ? ERR_OK : ERR_CORE_DOWN;
}

/* Send a request on, remembering who waits for it. */
static errval_t forward(struct pending *p, uint32_t core, errval_t (*send)(struct idl_chan *, uint32_t tag,
                                                                           const void *arg), const void *arg)
{
    struct idl_chan *via = route(core);
    uint32_t tag = 0;
    errval_t err = via ? pending_add(p, &tag) : ERR_NO_ROUTE;
    if (!err && (err = send(via, tag, arg)))
        pending_take(tag, ANY_CORE, p);
    return err;
}

struct ask_args {
    uint32_t core, op;
    uint64_t arg;
    const char *cmd;
};

static errval_t send_ask(struct idl_chan *via, uint32_t tag, const void *x)
{
    const struct ask_args *a = x;
    if (a->op == MON_SPAWN)
        return monitor_spawn_call_send(via, (uint16_t)a->core, (uint16_t)my_core, tag, a->cmd, a->arg);
    if (a->op == MON_KILL)
        return monitor_kill_call_send(via, (uint16_t)a->core, (uint16_t)my_core, tag, a->arg);
    return monitor_info_call_send(via, (uint16_t)a->core, (uint16_t)my_core, tag, a->op);
}

/* A request about core `core`: here, or sent on (the reply comes later).
 * `cmd`: MON_SPAWN's "program args". chan: answer on the client's channel. */
static void ask(int handle, bool chan, uint32_t op, uint32_t core, uint64_t arg, const char *cmd)
{
    errval_t err = check_core(core);
    if (err) {
        client_answer(handle, chan, op, err, 0, 0, "");
        return;
    }
    if (core == my_core) {
        uint64_t v = 0, v2 = 0;
        static char out[MON_TEXT_MAX + 1];
        out[0] = 0;
        if (op == MON_SPAWN)
            err = spawn_local(cmd, arg, &v, 0);
        else if (op == MON_KILL)
            err = kill_local(arg);
        else
            err = serve_info(op, out, sizeof out, &v, &v2);
        client_answer(handle, chan, op, err, v, v2, out);
        return;
    }
    struct pending p = { .kind = PEND_CLIENT, .client = handle, .chan = chan, .op = op, .to = core };
    struct ask_args a = { core, op, arg, cmd };
    err = forward(&p, core, send_ask, &a);
    if (err)
        client_answer(handle, chan, op, err, 0, 0, "");
}

struct pair_args {
    uint32_t from, to, rounds, op;
};

static errval_t send_pair(struct idl_chan *via, uint32_t tag, const void *x)
{
    const struct pair_args *a = x;
    if (a->op == MON_PING)
        return monitor_pingpair_call_send(via, (uint16_t)a->from, (uint16_t)my_core, tag, (uint16_t)a->to,
                                          a->rounds);
    return monitor_bench_call_send(via, (uint16_t)a->from, (uint16_t)my_core, tag, (uint16_t)a->to, a->rounds);
}

static void ping_or_bench(int handle, bool chan, uint32_t op, uint32_t from, uint32_t to, uint32_t rounds)
{
    errval_t err = from == to || rounds == 0 || rounds > 10000 ? ERR_INVALID_ARG : check_core(from);
    if (!err)
        err = check_core(to);
    if (err) {
        client_answer(handle, chan, op, err, 0, 0, "");
        return;
    }
    struct pending p = { .kind = PEND_CLIENT, .client = handle, .chan = chan, .op = op, .peer = to, .to = from };
    if (from == my_core && op == MON_PING) {
        err = bench_pingpair_start(to, rounds, &p);
        if (err)
            client_answer(handle, chan, op, err, 0, 0, "");
        return;
    }
    if (from == my_core) {
        struct monitor_bench_reply_args r = { 0 };
        static char out[512];
        err = bench_urpc(to, rounds, &r);
        bench_describe(out, sizeof out, from, to, &r);
        client_answer(handle, chan, op, err, 0, 0, out);
        return;
    }
    struct pair_args a = { from, to, rounds, op };
    err = forward(&p, from, send_pair, &a);
    if (err)
        client_answer(handle, chan, op, err, 0, 0, "");
}

/* -- typed requests on the client's channel (if/monclient.if) ------------------ */
_Static_assert(monclient_size_max <= (MON_CHANNEL_BYTES / 2 / URPC_LINE - 1) * URPC_PAYLOAD,
               "every monclient message fits in the channel's ring");
static int chan_client(struct idl_chan *ch) { return handle_of((int)(intptr_t)ch->user); }

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

static bool is_shell(struct idl_chan *ch)
{
    return my_core == 0 && clients[(intptr_t)ch->user].badge == shell_id;
}

static errval_t on_kill(struct idl_chan *ch, const struct monclient_kill_call_args *a)
{
    if (!is_shell(ch))   /* only the shell (and the monitors themselves) may end others */
        client_answer(chan_client(ch), true, MON_KILL, ERR_NOT_PERMITTED, 0, 0, "");
    else
        ask(chan_client(ch), true, MON_KILL, a->core, a->domain, "");
    return ERR_OK;
}

static errval_t on_stats(struct idl_chan *ch, const struct monclient_stats_call_args *a)
{
    ask(chan_client(ch), true, MON_STATS, a->core, 0, "");
    return ERR_OK;
}

static const struct monclient_handlers chan_handlers = {
    .ps_call = on_ps, .spawn_call = on_spawn, .mem_call = on_mem, .describe_call = on_describe,
    .busy_call = on_busy, .mesh_call = on_mesh, .ping_call = on_ping, .bench_call = on_bench,
    .kill_call = on_kill, .stats_call = on_stats,
};

static errval_t chan_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    (void)flags;
    struct urpc_chan *uc = clients[(intptr_t)ch->user].uc;
    /* Never wait on a client: one that takes no replies loses them. */
    return urpc_send(uc, msg, len, URPC_NONBLOCK);
}

static errval_t chan_recv(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags)
{
    return urpc_recv(clients[(intptr_t)ch->user].uc, buf, size, len, flags);
}

/* MON_CHANNEL: a URPC channel in a frame of ours; the client gets a copy. */
static errval_t open_channel(int i, capslot_t *copy)
{
    struct client *c = &clients[i];
    if (c->uc)
        return ERR_DUPLICATE;
    capslot_t frame = 0;
    void *p = 0;
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
        if (err)
            frame_release(frame, p);
    }
    if (err) {
        free(uc);
        return err;
    }
    c->uc = uc;
    c->chan_frame = frame;
    c->chan_map = p;
    c->idl = (struct idl_chan){ .send = chan_send, .recv = chan_recv, .user = (void *)(intptr_t)i };
    return ERR_OK;
}

static bool poll_channels(void)
{
    bool did = false;
    for (int i = 0; i < MON_MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (!c->ep || !c->uc || c->uc->broken)
            continue;
        errval_t err = monclient_serve_one(&c->idl, &chan_handlers, URPC_NONBLOCK);
        if (err == ERR_WOULD_BLOCK)
            continue;
        did = true;
        if (err && err != ERR_CHAN_CLOSED)
            printf("monitor %u: request from domain %llu refused: %s\n", my_core, (unsigned long long)c->badge,
                   err_name(err));
    }
    return did;
}

void clients_set_sleeping(bool sleeping)
{
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        if (clients[i].ep && clients[i].uc && !clients[i].uc->broken)
            urpc_set_sleeping(clients[i].uc, sleeping);
}

bool clients_pending(void)
{
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        if (clients[i].ep && clients[i].uc && !clients[i].uc->broken && urpc_pending(clients[i].uc))
            return true;
    return false;
}

static void request(int i, const struct lmp_msg *m, capslot_t cap)
{
    struct client *c = &clients[i];
    int handle = handle_of(i);
    uint64_t op = m->w[0];
    if (cap)   /* a capability nobody asked for: drop it */
        cap_free(cap);
    capslot_t out = 0;
    errval_t err;
    uint64_t v = 0;
    uint32_t core32 = 0;
    switch (op) {
    case MON_HELLO:   /* again: it is a client already */
        client_reply(handle, ERR_OK, 0, 0, 0);
        return;
    case MON_SHARE:
        err = share_page(i, &out);
        client_reply_cap(handle, err, 0, 0, out);
        return;
    case MON_IOCAP:
    case MON_POWEROFF:
        /* The machine and the serial line are the shell's alone. */
        if (m->badge != shell_id || my_core != 0) {
            client_reply(handle, ERR_CAP_RIGHTS, 0, 0, 0);
            return;
        }
        if (op == MON_POWEROFF) {
            stdout_flush();
            client_reply(handle, sys_poweroff(SLOT_KERNEL, m->w[1]), 0, 0, 0);
            return;
        }
        err = slot_alloc(&out);
        if (!err && (err = sys_cap_mint(SLOT_IO, out, CAP_RIGHTS_ALL, 0, 0x3f8, 8)))
            slot_free(out);
        client_reply_cap(handle, err, 0, 0, out);
        return;
    case MON_SPAWN_PEER: {
        char cmd[240];
        capslot_t disp;
        if (!c->text) {
            client_reply(handle, ERR_INVALID_ARG, 0, 0, 0);
            return;
        }
        text_arg(cmd, sizeof cmd, c->text);
        err = spawn_local(cmd, 0, &v, &disp);
        if (!err)
            err = slot_alloc(&out);
        if (!err && (err = sys_cap_mint(disp, out, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, v, 0, 0)))
            slot_free(out);
        client_reply_cap(handle, err, v, 0, out);
        return;
    }
    case MON_PS:
    case MON_SPAWN:
    case MON_MEM:
    case MON_CORE:
    case MON_BUSY:
    case MON_MESH:
    case MON_STATS: {
        char cmd[240];
        if (!c->text) {
            client_reply(handle, ERR_INVALID_ARG, 0, 0, 0);
            return;
        }
        text_arg(cmd, sizeof cmd, c->text);
        ask(handle, false, (uint32_t)op, (uint32_t)m->w[1], m->w[2], cmd);
        return;
    }
    case MON_KILL:
        if (m->badge != shell_id || my_core != 0)
            client_reply(handle, ERR_NOT_PERMITTED, 0, 0, 0);
        else
            ask(handle, false, MON_KILL, (uint32_t)m->w[1], m->w[2], "");
        return;
    case MON_PING:
    case MON_BENCH:
        ping_or_bench(handle, false, (uint32_t)op, (uint32_t)m->w[1], (uint32_t)m->w[2], (uint32_t)m->w[3]);
        return;
    case MON_CHANNEL:
        err = open_channel(i, &out);
        client_reply_cap(handle, err, 0, 0, out);
        return;
    case MON_SERVE:
        err = service_register(m->badge, &v);
        client_reply(handle, err, v, 0, 0);
        return;
    case MON_CONNECT:
        conn_open(handle, c->badge, m->w[1]);
        return;
    case MON_ACCEPT: {
        uint64_t client = 0;
        err = service_accept(m->badge, &out, &core32, &client);
        client_reply_cap(handle, err, core32, client, out);
        return;
    }
    case MON_MESH_WAIT:
        mesh_wait(handle);
        return;
    case MON_NOTIFY_CAP: {
        struct cap_identity id = { .type = CAP_NOTIFY, .rights = CAP_RIGHT_WRITE, .base = m->w[1], .bytes = 1 };
        err = m->w[1] < ncores ? slot_alloc(&out) : ERR_INVALID_ARG;
        if (!err && (err = sys_cap_create(SLOT_KERNEL, &id, out)))
            slot_free(out);
        client_reply_cap(handle, err, 0, 0, out);
        return;
    }
    default:
        client_reply(handle, ERR_INVALID_ARG, 0, 0, 0);
    }
}

bool clients_poll(void)
{
    struct lmp_msg m;
    bool did = poll_channels();
    if (sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &m) != ERR_OK)
        return did;
    capslot_t cap = m.has_cap ? take_recv() : 0;
    int i = client_of(m.badge);
    if (m.w[0] == MON_HELLO && i < 0) {
        /* Replies go to an endpoint we make from the sender's own
         * dispatcher (the badge names it), never to one it hands us: it
         * could name another domain, or this monitor (our replies would
         * come back as requests, forever). */
        capslot_t ep;
        if (cap)
            cap_free(cap);
        if (child_endpoint(m.badge, &ep))
            return true;   /* not a domain of ours: nobody to tell */
        i = new_client();
        if (i < 0) {
            /* Full: say so, never leave it waiting. */
            sys_lmp_send(ep, ERR_TOO_MANY, 0, 0, 0, LMP_NO_CAP);
            cap_free(ep);
            clients_refused++;
            return true;
        }
        clients[i].ep = ep;
        clients[i].badge = m.badge;
        clients_served++;
        sys_lmp_send(ep, ERR_OK, 0, 0, 0, LMP_NO_CAP);
        return true;
    }
    if (i < 0) {   /* not a client: ignore, never act on it */
        if (cap)
            cap_free(cap);
        return true;
    }
    request(i, &m, cap);
    return true;
}

void clients_stats(uint32_t *live, uint64_t *served, uint64_t *refused)
{
    *live = 0;
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        *live += clients[i].ep != 0;
    *served = clients_served;
    *refused = clients_refused;
}
