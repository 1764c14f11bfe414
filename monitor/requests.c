/*
 * The typed requests of a monitor's clients (if/monclient.if). Each is
 * about one core. A request about this core is served here; one about
 * another goes on to that core's monitor as the client encoded it (`ask`,
 * if/monitor.if), is served there by these same handlers, and its reply
 * comes back as that monitor encoded it (`answer`) and goes to the client
 * unchanged. So every request has one typed form, from the client to
 * whichever monitor serves it and back, and no monitor ever turns an answer
 * into text or back.
 *
 * A handler replies through the channel it is given (reply_chan): the
 * client's own request channel, or one that wraps the reply in an `answer`.
 * A handler that answers later (ping) keeps the asker and makes the channel
 * again when it is done.
 */
#include "monitor.h"
#include <if/monclient_if.h>

_Static_assert(monclient_size_max <= URPC_RING_SLOTS(MON_CHANNEL_BYTES) * URPC_PAYLOAD,
               "every monclient message fits in the channel's ring");
_Static_assert(monclient_size_max <= 3100, "a reply fits an answer (if/monitor.if)");

/* -- replying ---------------------------------------------------------------------- */

static errval_t reply_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    (void)flags;
    const struct asker *who = ch->user;
    if (who->handle >= 0)
        return client_request_reply(who->handle, msg, len);
    struct idl_chan *back = route(who->core);
    return back ? monitor_answer_send(back, (uint16_t)who->core, (uint16_t)my_core, who->tag, msg, len)
                : ERR_NO_ROUTE;
}

void reply_chan(struct idl_chan *ch, struct asker *who)
{
    *ch = (struct idl_chan){ .send = reply_send, .user = who };
}

void reply_error(struct idl_chan *ch, unsigned call, errval_t err)
{
    switch (call) {
    case monclient_ps_call: monclient_ps_reply_send(ch, err, ""); break;
    case monclient_spawn_call: monclient_spawn_reply_send(ch, err, 0); break;
    case monclient_mem_call: monclient_mem_reply_send(ch, err, 0, 0); break;
    case monclient_describe_call: monclient_describe_reply_send(ch, err, ""); break;
    case monclient_busy_call: monclient_busy_reply_send(ch, err, 0); break;
    case monclient_mesh_call: monclient_mesh_reply_send(ch, err, 0, ""); break;
    case monclient_ping_call: monclient_ping_reply_send(ch, err, 0, 0, 0); break;
    case monclient_kill_call: monclient_kill_reply_send(ch, err); break;
    case monclient_stats_call: monclient_stats_reply_send(ch, err, ""); break;
    case monclient_caps_call: monclient_caps_reply_send(ch, err, ""); break;
    default: break;   /* not a call: nobody to answer */
    }
}

/* -- the handlers (every one runs on the core the request is about) ----------------- */

static char text[MON_TEXT_MAX + 1];

static errval_t on_ps(struct idl_chan *ch, const struct monclient_ps_call_args *a)
{
    (void)a;
    errval_t err = list_domains(text, sizeof text);
    return monclient_ps_reply_send(ch, err, err ? "" : text);
}

static errval_t on_spawn(struct idl_chan *ch, const struct monclient_spawn_call_args *a)
{
    uint64_t id = 0;
    if (a->ram_base) {
        /* RAM the memory service lent us: answered when the domain is made. */
        errval_t err = spawn_lent(a->cmd, a->service, a->ram_base, ch->user);
        return err ? monclient_spawn_reply_send(ch, err, 0) : ERR_OK;
    }
    errval_t err = spawn_child(a->cmd, a->ram_bytes, a->service, &id);
    return monclient_spawn_reply_send(ch, err, id);
}

static errval_t on_mem(struct idl_chan *ch, const struct monclient_mem_call_args *a)
{
    (void)a;
    return monclient_mem_reply_send(ch, ERR_OK, ram_free_bytes(), machine.node);
}

static errval_t on_describe(struct idl_chan *ch, const struct monclient_describe_call_args *a)
{
    (void)a;
    describe_core(text, sizeof text);
    return monclient_describe_reply_send(ch, ERR_OK, text);
}

static errval_t on_busy(struct idl_chan *ch, const struct monclient_busy_call_args *a)
{
    (void)a;
    return monclient_busy_reply_send(ch, ERR_OK, busy_children());
}

static errval_t on_mesh(struct idl_chan *ch, const struct monclient_mesh_call_args *a)
{
    (void)a;
    uint64_t n = 0;
    size_t len = links_describe(text, sizeof text, &n);
    len += fence_describe(text + len, sizeof text - len);
    captransfer_describe(text + len, sizeof text - len);
    return monclient_mesh_reply_send(ch, ERR_OK, n, text);
}

static errval_t on_ping(struct idl_chan *ch, const struct monclient_ping_call_args *a)
{
    /* Answered when the last round trip is back (ping.c). */
    errval_t err = ping_start(a->to, a->rounds, ch->user);
    return err ? monclient_ping_reply_send(ch, err, 0, 0, 0) : ERR_OK;
}

static errval_t on_kill(struct idl_chan *ch, const struct monclient_kill_call_args *a)
{
    /* The shell's and the restart service's (the starter) alone: asked by
     * one of them here, or by core 0's monitor for them (which checked). */
    const struct asker *who = ch->user;
    bool allowed = who->handle >= 0 ? client_may_kill(who->handle) : who->core == 0;
    return monclient_kill_reply_send(ch, allowed ? kill_local(a->domain) : ERR_NOT_PERMITTED);
}

static errval_t on_stats(struct idl_chan *ch, const struct monclient_stats_call_args *a)
{
    (void)a;
    describe_stats(text, sizeof text);
    return monclient_stats_reply_send(ch, ERR_OK, text);
}

static errval_t on_caps(struct idl_chan *ch, const struct monclient_caps_call_args *a)
{
    (void)a;
    capops_dump(text, sizeof text);
    return monclient_caps_reply_send(ch, ERR_OK, text);
}

static const struct monclient_handlers handlers = {
    .ps_call = on_ps, .spawn_call = on_spawn, .mem_call = on_mem, .describe_call = on_describe,
    .busy_call = on_busy, .mesh_call = on_mesh, .ping_call = on_ping,
    .kill_call = on_kill, .stats_call = on_stats, .caps_call = on_caps,
};

/* -- where a request goes ---------------------------------------------------------- */

/* The core a request is about, and checks that need no core: false when the
 * message is not a request at all. */
static bool target(const struct monclient_msg *m, uint32_t *core, errval_t *bad)
{
    *bad = ERR_OK;
    switch (m->type) {
    case monclient_ps_call: *core = m->u.ps_call.core; return true;
    case monclient_spawn_call: *core = m->u.spawn_call.core; return true;
    case monclient_mem_call: *core = m->u.mem_call.core; return true;
    case monclient_describe_call: *core = m->u.describe_call.core; return true;
    case monclient_busy_call: *core = m->u.busy_call.core; return true;
    case monclient_mesh_call: *core = m->u.mesh_call.core; return true;
    case monclient_kill_call: *core = m->u.kill_call.core; return true;
    case monclient_stats_call: *core = m->u.stats_call.core; return true;
    case monclient_caps_call: *core = m->u.caps_call.core; return true;
    case monclient_ping_call: {
        uint32_t from = m->u.ping_call.from, to = m->u.ping_call.to, rounds = m->u.ping_call.rounds;
        *core = from;
        if (from == to || rounds == 0 || rounds > 10000 || to >= ncores)
            *bad = ERR_INVALID_ARG;
        else if (!core_alive(to))
            *bad = ERR_CORE_DOWN;
        return true;
    }
    default:
        return false;
    }
}

static uint64_t refused_requests;

void request_serve(const struct asker *who, const uint8_t *msg, size_t len)
{
    struct monclient_msg m;
    uint32_t core = 0;
    errval_t bad;
    struct asker me = *who;
    struct idl_chan ch;
    reply_chan(&ch, &me);
    if (monclient_decode(msg, len, &m) != ERR_OK || !target(&m, &core, &bad)) {
        refused_requests++;   /* not a request of monclient: nothing to answer */
        return;
    }
    if (!bad && core >= ncores)
        bad = ERR_INVALID_ARG;
    else if (!bad && !core_alive(core))
        bad = ERR_CORE_DOWN;
    else if (!bad && m.type == monclient_kill_call && who->handle >= 0 && !client_may_kill(who->handle))
        bad = ERR_NOT_PERMITTED;
    if (bad) {
        reply_error(&ch, m.type, bad);
        return;
    }
    if (core == my_core) {
        errval_t err = monclient_dispatch(&ch, &handlers, msg, len);
        if (err)
            reply_error(&ch, m.type, err);
        return;
    }
    if (who->handle < 0) {   /* an ask is always sent to the core it is about */
        reply_error(&ch, m.type, ERR_INVALID_ARG);
        return;
    }
    struct pending p = { .kind = PEND_ASK, .client = who->handle, .call = m.type, .to = core };
    struct idl_chan *via = route(core);
    uint32_t tag = 0;
    errval_t err = via ? pending_add(&p, &tag) : ERR_NO_ROUTE;
    if (!err && (err = monitor_ask_send(via, (uint16_t)core, (uint16_t)my_core, tag, msg, len)))
        pending_take(tag, ANY_CORE, &p);
    if (err)
        reply_error(&ch, m.type, err);
}

void request_answered(uint32_t from, uint32_t tag, const uint8_t *reply, size_t len)
{
    struct pending p;
    struct monclient_msg m;
    if (!pending_take(tag, from, &p) || p.kind != PEND_ASK)
        return;   /* late, after the client heard ERR_TIMEOUT, or never ours */
    struct asker who = { .handle = p.client };
    struct idl_chan ch;
    reply_chan(&ch, &who);
    /* What another monitor says goes on only if it is the reply asked for. */
    if (monclient_decode(reply, len, &m) != ERR_OK || m.type != p.call + 1) {
        reply_error(&ch, p.call, ERR_MSG_MALFORMED);
        return;
    }
    client_request_reply(p.client, reply, len);
}

/* -- a client's request channel as a source --------------------------------------- */

static bool request_ready(struct ws_source *s)
{
    static uint8_t buf[monclient_size_max];
    size_t len;
    struct asker who = { .handle = (int)(intptr_t)s->arg };
    errval_t err = urpc_recv(s->obj, buf, sizeof buf, &len, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err) {
        /* Broken or hung up: nothing more comes; the client's end (or its
         * obituary) releases the channel. */
        waitset_remove(s);
        return true;
    }
    request_serve(&who, buf, len);
    return true;
}

void request_source(struct ws_source *s, struct urpc_chan *ch, int client)
{
    ws_urpc_source(s, ch, request_ready, (void *)(intptr_t)client);
    s->name = "client requests";
}
