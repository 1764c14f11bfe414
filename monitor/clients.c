/*
 * The domains of this core, as clients of their monitor: LMP requests
 * (protocol.h). A request about another core goes on over the mesh and the
 * client waits in its call until the answer comes back (pending.c); the
 * monitor serves others meanwhile.
 */
#include "monitor.h"

#define MAX_CLIENTS 32

struct client {
    capslot_t ep;       /* endpoint to the client, its badge = its domain id */
    uint64_t badge;
    capslot_t page;     /* the page we share with it (MON_SHARE): ours, it has a copy */
    char *text;         /* our mapping of it */
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

/* A request about core `core`: here, or sent on (the reply comes later). */
static void ask(int c, uint32_t op, uint32_t core, uint64_t arg)
{
    char *text = clients[c].text;
    if (core >= ncores) {
        client_reply(c, ERR_INVALID_ARG, 0, 0, "");
        return;
    }
    if (core == my_core) {
        uint64_t v = 0, v2 = 0;
        static char out[MON_TEXT_MAX + 1];
        errval_t err;
        if (op == MON_SPAWN) {
            char cmd[240];
            text_arg(cmd, sizeof cmd, text);
            err = spawn_local(cmd, arg, &v, 0);
            out[0] = 0;
        } else {
            err = serve_info(op, out, sizeof out, &v, &v2);
        }
        client_reply(c, err, v, v2, out);
        return;
    }
    struct idl_chan *via = route(core);
    struct pending p = { .kind = PEND_CLIENT, .client = c, .op = op, .to = core };
    uint32_t tag = via ? pending_add(&p) : 0;
    errval_t err = !via ? ERR_NO_ROUTE : !tag ? ERR_TOO_MANY : ERR_OK;
    if (!err && op == MON_SPAWN) {
        char cmd[240];
        text_arg(cmd, sizeof cmd, text);
        err = monitor_spawn_call_send(via, (uint16_t)core, (uint16_t)my_core, tag, cmd, arg);
    } else if (!err) {
        err = monitor_info_call_send(via, (uint16_t)core, (uint16_t)my_core, tag, op);
    }
    if (err) {
        pending_take(tag, ANY_CORE, &p);
        client_reply(c, err, 0, 0, "");
    }
}

static void ping_or_bench(int c, uint32_t op, uint32_t from, uint32_t to, uint32_t rounds)
{
    if (from >= ncores || to >= ncores || from == to || rounds == 0 || rounds > 10000) {
        client_reply(c, ERR_INVALID_ARG, 0, 0, "");
        return;
    }
    struct pending p = { .kind = PEND_CLIENT, .client = c, .op = to, .to = from };
    if (from == my_core && op == MON_PING) {
        errval_t err = bench_pingpair_start(to, rounds, &p);
        if (err)
            client_reply(c, err, 0, 0, "");
        return;
    }
    if (from == my_core) {
        struct monitor_bench_reply_args r = { 0 };
        static char out[512];
        errval_t err = bench_urpc(to, rounds, &r);
        bench_describe(out, sizeof out, from, to, &r);
        client_reply(c, err, 0, 0, out);
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
        client_reply(c, err, 0, 0, "");
    }
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
    case MON_MESH:
        if (!clients[c].text) {
            client_reply(c, ERR_INVALID_ARG, 0, 0, 0);
            return;
        }
        ask(c, (uint32_t)op, (uint32_t)m->w[1], m->w[2]);
        return;
    case MON_PING:
    case MON_BENCH:
        ping_or_bench(c, (uint32_t)op, (uint32_t)m->w[1], (uint32_t)m->w[2], (uint32_t)m->w[3]);
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
    if (sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &m) != ERR_OK)
        return false;
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
