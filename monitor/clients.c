/*
 * The domains of this core, as clients of their monitor. A domain first
 * says hello in a local message (if/monlmp.if: typed, in fragments, one
 * capability at most, lib/lmpchan.c); then it gets a URPC channel for its
 * typed requests (if/monclient.if, served in requests.c), and asks here,
 * in local messages, for what moves capabilities: services, connections,
 * Notify and I/O capabilities, peers.
 *
 * Every client has a slot, named by a handle that stops naming anything
 * when the client ends (lifetimes.c releases the slot): answers still on
 * their way never reach the next domain given the same slot.
 */
#include "monitor.h"
#include <atoll/lmpchan.h>
#include <if/monlmp_if.h>

#define HANDLE(i, gen) ((int)((gen) << 8 | (i)))
_Static_assert(MON_MAX_CLIENTS <= 256, "a slot fits in a handle's low byte");

struct client {
    capslot_t ep;               /* endpoint to the client, from its dispatcher (monitor badge) */
    uint64_t badge;             /* the client's domain id: the badge of its messages */
    uint32_t gen;               /* bumped whenever the slot changes hands */
    struct lmp_chan lmp;        /* monlmp: fragments in, replies out */
    capslot_t chan_frame;       /* the request channel (we are side 1) */
    void *chan_map;
    struct urpc_chan *uc;
    struct ws_source requests;
};
static struct client clients[MON_MAX_CLIENTS];
uint64_t shell_id = ~0ull;   /* core 0: the shell's domain id */
uint64_t starter_id = ~0ull; /* core 0: the starter's (the restart service) */
static capslot_t recv;       /* where the next capability sent to us lands */
static uint64_t clients_served, clients_refused, lmp_refused;

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

static struct client *client_at(int handle)
{
    uint32_t i = (uint32_t)handle & 0xff, gen = (uint32_t)handle >> 8;
    if (handle < 0 || i >= MON_MAX_CLIENTS || !clients[i].ep || clients[i].gen != gen)
        return 0;
    return &clients[i];
}

static int handle_of(const struct client *c) { return HANDLE((int)(c - clients), c->gen); }

bool client_handle_valid(int handle) { return client_at(handle) != 0; }

bool client_is_shell(int handle)
{
    struct client *c = client_at(handle);
    return c && my_core == 0 && c->badge == shell_id;
}

bool client_may_kill(int handle)
{
    struct client *c = client_at(handle);
    return c && my_core == 0 && (c->badge == shell_id || c->badge == starter_id);
}

errval_t client_request_reply(int handle, const void *msg, size_t len)
{
    struct client *c = client_at(handle);
    if (!c || !c->uc)
        return ERR_DOMAIN_ENDED;
    return urpc_send(c->uc, msg, len, URPC_NONBLOCK);
}

/* Everything the monitor held for a client goes; the slot is clean for the
 * next. The request channel is freed, not handed on: the next client gets
 * a fresh zeroed one, and copies anyone kept die with it. */
static void release_client(struct client *c)
{
    pending_forget_client(handle_of(c));
    if (c->requests.ws)
        waitset_remove(&c->requests);
    if (c->uc)
        urpc_close(c->uc, ERR_DOMAIN_ENDED);
    if (c->chan_frame)
        frame_release(c->chan_frame, c->chan_map);
    free(c->uc);
    if (c->lmp.cap_in_set)
        cap_free(c->lmp.cap_in);
    if (c->ep)
        cap_free(c->ep);
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof *c);
    c->gen = gen & 0xffffff;
}

void clients_domain_ended(uint64_t domain)
{
    int i = client_of(domain);
    if (i >= 0)
        release_client(&clients[i]);
}

/* A message that came while we named the next receive slot (another
 * domain of this core ran between our two calls: the next part of a
 * request, say): handled next, not lost (it was, and its sender waited for
 * ever: seen under 4,000 give/delete cycles). */
static struct lmp_msg stashed;
static capslot_t stashed_cap;
static bool have_stashed;

/* Put a fresh slot in place for the next capability a client sends. */
static capslot_t take_recv(void)
{
    capslot_t got = recv;
    struct lmp_msg m;
    errval_t err = slot_alloc(&recv);
    if (!err && (err = sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &m)) == ERR_OK && !have_stashed) {
        stashed = m;
        stashed_cap = 0;
        have_stashed = true;
        if (m.has_cap) {   /* it is in the slot just named: name another */
            stashed_cap = recv;
            err = slot_alloc(&recv);
            if (!err && (err = sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &m)) == ERR_OK)
                err = ERR_TOO_MANY;   /* a third at once cannot be: the sender waits for its slot */
        } else {
            err = ERR_WOULD_BLOCK;
        }
    }
    if (err != ERR_WOULD_BLOCK)
        printf("monitor %u: cannot name a receive slot: %s\n", my_core, err_name(err));
    return got;
}

/* -- the handlers of if/monlmp.if --------------------------------------------------------- */

static struct client *client_of_chan(struct idl_chan *ch) { return ch->user; }

/* A reply that moves a capability: if it cannot go, the capability is freed. */
static errval_t cap_sent(errval_t sent, capslot_t cap)
{
    if (sent && cap)
        cap_free(cap);
    return sent;
}

static errval_t copy_of(capslot_t from, capslot_t *copy)
{
    errval_t err = slot_alloc(copy);
    if (!err && (err = sys_cap_copy(from, *copy)))
        slot_free(*copy);
    return err;
}

static errval_t on_hello(struct idl_chan *ch, const struct monlmp_hello_call_args *a)
{
    (void)a;
    return monlmp_hello_reply_send(ch, ERR_OK);   /* again: it is a client already */
}

/* The request channel: a URPC channel in a frame of ours; the client gets a copy. */
static errval_t on_channel(struct idl_chan *ch, const struct monlmp_channel_call_args *a)
{
    (void)a;
    struct client *c = client_of_chan(ch);
    capslot_t frame = 0, copy = 0;
    void *p = 0;
    struct urpc_chan *uc = 0;
    errval_t err = c->uc ? ERR_DUPLICATE : (uc = malloc(sizeof *uc)) ? ERR_OK : ERR_NO_MEMORY;
    if (!err && !(err = frame_alloc(MON_CHANNEL_BYTES, &frame)) &&
        (err = vspace_map_frame(frame, MAP_WRITE, &p)))
        cap_free(frame);
    if (!err) {
        memset(p, 0, MON_CHANNEL_BYTES);
        urpc_init(uc, p, MON_CHANNEL_BYTES, 1);
        uc->wake_arg = notify_cap_for(my_core);   /* the client sleeps on this core */
        if ((err = copy_of(frame, &copy)))
            frame_release(frame, p);
    }
    if (err) {
        free(uc);
        return monlmp_channel_reply_send(ch, err, 0);
    }
    c->uc = uc;
    c->chan_frame = frame;
    c->chan_map = p;
    request_source(&c->requests, uc, handle_of(c));
    waitset_add(&monitor_ws, &c->requests);
    return cap_sent(monlmp_channel_reply_send(ch, ERR_OK, copy), copy);
}

static errval_t on_serve(struct idl_chan *ch, const struct monlmp_serve_call_args *a)
{
    (void)a;
    uint64_t id = 0;
    errval_t err = service_register(client_of_chan(ch)->badge, &id);
    return monlmp_serve_reply_send(ch, err, id);
}

static errval_t on_connect(struct idl_chan *ch, const struct monlmp_connect_call_args *a)
{
    struct client *c = client_of_chan(ch);
    conn_open(handle_of(c), c->badge, a->service);   /* answered by client_connect_reply */
    return ERR_OK;
}

void client_connect_reply(int handle, errval_t err, capslot_t frame)
{
    struct client *c = client_at(handle);
    if (!c) {
        if (frame)
            cap_free(frame);
        return;
    }
    cap_sent(monlmp_connect_reply_send(&c->lmp.idl, err, err ? 0 : frame), err ? 0 : frame);
    if (err && frame)
        cap_free(frame);
}

static errval_t on_accept(struct idl_chan *ch, const struct monlmp_accept_call_args *a)
{
    (void)a;
    capslot_t frame = 0;
    uint32_t core = 0;
    uint64_t client = 0, service = 0;
    errval_t err = service_accept(client_of_chan(ch)->badge, &frame, &core, &client, &service);
    return cap_sent(monlmp_accept_reply_send(ch, err, err ? 0 : frame, core, client, (uint16_t)service),
                    err ? 0 : frame);
}

static errval_t on_notify_cap(struct idl_chan *ch, const struct monlmp_notify_cap_call_args *a)
{
    capslot_t out = 0;
    struct cap_identity id = { .type = CAP_NOTIFY, .rights = CAP_RIGHT_WRITE, .base = a->core, .bytes = 1 };
    errval_t err = a->core < ncores ? slot_alloc(&out) : ERR_INVALID_ARG;
    if (!err && (err = sys_cap_create(SLOT_KERNEL, &id, out)))
        slot_free(out);
    return cap_sent(monlmp_notify_cap_reply_send(ch, err, err ? 0 : out), err ? 0 : out);
}

/* The machine and the serial line are the shell's alone. */
static errval_t on_iocap(struct idl_chan *ch, const struct monlmp_iocap_call_args *a)
{
    (void)a;
    capslot_t out = 0;
    errval_t err = client_is_shell(handle_of(client_of_chan(ch))) ? slot_alloc(&out) : ERR_NOT_PERMITTED;
    if (!err && (err = sys_cap_mint(SLOT_IO, out, CAP_RIGHTS_ALL, 0, 0x3f8, 8)))
        slot_free(out);
    return cap_sent(monlmp_iocap_reply_send(ch, err, err ? 0 : out), err ? 0 : out);
}

static errval_t on_poweroff(struct idl_chan *ch, const struct monlmp_poweroff_call_args *a)
{
    if (!client_is_shell(handle_of(client_of_chan(ch))))
        return monlmp_poweroff_reply_send(ch, ERR_NOT_PERMITTED);
    stdout_flush();
    return monlmp_poweroff_reply_send(ch, sys_poweroff(SLOT_KERNEL, a->status));
}

static errval_t on_spawn_peer(struct idl_chan *ch, const struct monlmp_spawn_peer_call_args *a)
{
    capslot_t disp, out = 0;
    uint64_t id = 0;
    errval_t err = spawn_local(a->cmd, 0, &id, &disp);
    if (!err && !(err = slot_alloc(&out)) && (err = sys_cap_mint(disp, out, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, id, 0, 0)))
        slot_free(out);
    return cap_sent(monlmp_spawn_peer_reply_send(ch, err, id, err ? 0 : out), err ? 0 : out);
}

static errval_t on_mesh_wait(struct idl_chan *ch, const struct monlmp_mesh_wait_call_args *a)
{
    (void)a;
    mesh_wait(handle_of(client_of_chan(ch)));   /* answered by client_mesh_wait_reply */
    return ERR_OK;
}

void client_mesh_wait_reply(int handle, errval_t err, uint64_t channels)
{
    struct client *c = client_at(handle);
    if (c)
        monlmp_mesh_wait_reply_send(&c->lmp.idl, err, channels);
}

/* The memory service's instance here takes our spare RAM (spawn.c). */
static errval_t on_ram_donate(struct idl_chan *ch, const struct monlmp_ram_donate_call_args *a)
{
    (void)a;
    capslot_t out = 0;
    errval_t err = spawn_donate(client_of_chan(ch)->badge, &out);
    return cap_sent(monlmp_ram_donate_reply_send(ch, err, err ? 0 : out), err ? 0 : out);
}

/* Its RAM for a domain a monitor spawns, and what came back (capops.c). */
static errval_t on_ram_lend(struct idl_chan *ch, const struct monlmp_ram_lend_call_args *a)
{
    return monlmp_ram_lend_reply_send(ch, capops_ram_lend(client_of_chan(ch)->badge, a->ram, a->core));
}

static errval_t on_ram_returned(struct idl_chan *ch, const struct monlmp_ram_returned_call_args *a)
{
    (void)a;
    uint64_t base = 0;
    errval_t err = capops_ram_returned(client_of_chan(ch)->badge, &base);
    return monlmp_ram_returned_reply_send(ch, err, base);
}

/* Capabilities across cores (capops.c): answered by client_cap_reply. */
static errval_t on_cap_give(struct idl_chan *ch, const struct monlmp_cap_give_call_args *a)
{
    struct client *c = client_of_chan(ch);
    capops_give(handle_of(c), c->badge, a->c, a->core, a->domain);   /* a->c is ours: capops_give frees it */
    return ERR_OK;
}

static errval_t on_cap_take(struct idl_chan *ch, const struct monlmp_cap_take_call_args *a)
{
    (void)a;
    capslot_t cap = 0;
    uint32_t core = 0;
    uint64_t from = 0;
    errval_t err = capops_take(client_of_chan(ch)->badge, &cap, &core, &from);
    return cap_sent(monlmp_cap_take_reply_send(ch, err, err ? 0 : cap, core, from), err ? 0 : cap);
}

static errval_t on_cap_revoke(struct idl_chan *ch, const struct monlmp_cap_revoke_call_args *a)
{
    struct client *c = client_of_chan(ch);
    struct capreq_args r = { .slot = a->slot, .flags = a->flags };
    capops_request(handle_of(c), c->badge, CAPREQ_REVOKE, &r);
    return ERR_OK;
}

static errval_t on_cap_delete(struct idl_chan *ch, const struct monlmp_cap_delete_call_args *a)
{
    struct client *c = client_of_chan(ch);
    struct capreq_args r = { .slot = a->slot, .flags = a->flags };
    capops_request(handle_of(c), c->badge, CAPREQ_DELETE, &r);
    return ERR_OK;
}

static errval_t on_cap_retype(struct idl_chan *ch, const struct monlmp_cap_retype_call_args *a)
{
    struct client *c = client_of_chan(ch);
    struct capreq_args r = { .slot = a->slot, .type = a->type, .count = a->count, .size = a->size,
                             .offset = a->offset, .first = a->first };
    capops_request(handle_of(c), c->badge, CAPREQ_RETYPE, &r);
    return ERR_OK;
}

void client_cap_reply(int handle, unsigned req, errval_t err)
{
    struct client *c = client_at(handle);
    if (!c)
        return;
    struct idl_chan *ch = &c->lmp.idl;
    switch (req) {
    case CAPREQ_GIVE: monlmp_cap_give_reply_send(ch, err); break;
    case CAPREQ_REVOKE: monlmp_cap_revoke_reply_send(ch, err); break;
    case CAPREQ_DELETE: monlmp_cap_delete_reply_send(ch, err); break;
    case CAPREQ_RETYPE: monlmp_cap_retype_reply_send(ch, err); break;
    default: break;
    }
}

/* Spanning (span.c): answered by client_span_reply. */
static errval_t on_span(struct idl_chan *ch, const struct monlmp_span_call_args *a)
{
    struct client *c = client_of_chan(ch);
    span_request(handle_of(c), c->badge, a->core, a->rip, a->rsp, a->arg);
    return ERR_OK;
}

void client_span_reply(int handle, errval_t err, uint64_t id)
{
    struct client *c = client_at(handle);
    if (c)
        monlmp_span_reply_send(&c->lmp.idl, err, id);
}

static errval_t on_tlb_shootdown(struct idl_chan *ch, const struct monlmp_tlb_shootdown_call_args *a)
{
    struct client *c = client_of_chan(ch);
    tlb_request(handle_of(c), c->badge, a->vaddr, a->pages, a->protocol);
    return ERR_OK;
}

void client_tlb_reply(int handle, errval_t err, uint32_t cores)
{
    struct client *c = client_at(handle);
    if (c)
        monlmp_tlb_shootdown_reply_send(&c->lmp.idl, err, cores);
}

static const struct monlmp_handlers handlers = {
    .hello_call = on_hello, .channel_call = on_channel, .serve_call = on_serve, .connect_call = on_connect,
    .accept_call = on_accept, .notify_cap_call = on_notify_cap, .iocap_call = on_iocap,
    .poweroff_call = on_poweroff, .spawn_peer_call = on_spawn_peer, .mesh_wait_call = on_mesh_wait,
    .cap_give_call = on_cap_give, .cap_take_call = on_cap_take, .cap_revoke_call = on_cap_revoke,
    .cap_delete_call = on_cap_delete, .cap_retype_call = on_cap_retype, .span_call = on_span,
    .tlb_shootdown_call = on_tlb_shootdown, .ram_donate_call = on_ram_donate, .ram_lend_call = on_ram_lend,
    .ram_returned_call = on_ram_returned,
};

/* -- local messages in ---------------------------------------------------------------------- */

/* A first message from a domain of ours that is not a client yet: only a
 * whole hello counts. Replies go to an endpoint we make from the sender's
 * own dispatcher (the badge names it), never to one it hands us: it could
 * name another domain, or this monitor (our replies would come back as
 * requests, forever). */
static void hello(const struct lmp_msg *m)
{
    struct lmp_chan probe;
    size_t len;
    struct monlmp_msg msg;
    capslot_t ep;
    lmpchan_init(&probe, 0, 0);
    if (lmpchan_feed(&probe, m, 0, &len) != ERR_OK || monlmp_decode(probe.buf, len, &msg) != ERR_OK ||
        msg.type != monlmp_hello_call) {
        lmp_refused++;
        return;
    }
    if (child_endpoint(m->badge, &ep))
        return;   /* not a domain of ours: nobody to tell */
    int i = -1;
    for (int k = 0; k < MON_MAX_CLIENTS && i < 0; k++)
        if (!clients[k].ep)
            i = k;
    if (i < 0) {
        /* Full: say so at once, never leave it waiting. */
        struct lmp_chan once;
        lmpchan_init(&once, ep, 0);
        once.send_timeout_ns = 1000000;
        monlmp_hello_reply_send(&once.idl, ERR_TOO_MANY);
        cap_free(ep);
        clients_refused++;
        return;
    }
    struct client *c = &clients[i];
    c->ep = ep;
    c->badge = m->badge;
    lmpchan_init(&c->lmp, ep, 0);
    c->lmp.move_caps = true;
    c->lmp.send_timeout_ns = 1000000000ull;   /* a client that takes no replies loses them */
    c->lmp.idl.user = c;
    clients_served++;
    monlmp_hello_reply_send(&c->lmp.idl, ERR_OK);
}

static bool clients_lmp_poll(struct ws_source *s)
{
    (void)s;
    struct lmp_msg m;
    capslot_t cap = 0;
    if (have_stashed) {
        m = stashed;
        cap = stashed_cap;
        have_stashed = false;
    } else if (sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &m) != ERR_OK) {
        return false;
    } else if (m.has_cap) {
        cap = take_recv();
    }
    int i = client_of(m.badge);
    if (i < 0) {
        if (cap)
            cap_free(cap);   /* a capability from a stranger: drop it */
        hello(&m);
        return true;
    }
    struct client *c = &clients[i];
    size_t len;
    errval_t err = lmpchan_feed(&c->lmp, &m, cap, &len);
    if (err == ERR_WOULD_BLOCK)
        return true;
    if (!err)
        err = monlmp_dispatch(&c->lmp.idl, &handlers, c->lmp.buf, len);
    if (c->lmp.cap_in_set) {   /* sent with a request that takes none */
        cap_free(c->lmp.cap_in);
        c->lmp.cap_in_set = false;
    }
    if (err) {
        lmp_refused++;
        printf("monitor %u: local message from domain %llu refused: %s\n", my_core, (unsigned long long)c->badge,
               err_name(err));
    }
    return true;
}

void clients_source(struct ws_source *s)
{
    /* Local messages wake a monitor that sleeps in notify_wait (the kernel
     * does it), so there is no flag to raise. */
    *s = (struct ws_source){ .poll = clients_lmp_poll, .name = "local messages" };
}

void clients_stats(uint32_t *live, uint64_t *served, uint64_t *refused)
{
    *live = 0;
    for (int i = 0; i < MON_MAX_CLIENTS; i++)
        *live += clients[i].ep != 0;
    *served = clients_served;
    *refused = clients_refused;
}
