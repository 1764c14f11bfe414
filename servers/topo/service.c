/*
 * The topology service's clients; see service.h. Each client talks over its
 * own URPC channel, which its monitor set up. Replies never wait: every
 * message of if/topology.if fits in one ring, so a client whose reply ring
 * is full has stopped taking replies, and is dropped rather than waited for
 * (as the name server does, docs/names.md).
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <atoll/waitset.h>
#include <if/topology_if.h>
#include "service.h"

#define MAX_CLIENTS 64

_Static_assert(topology_size_max <= URPC_RING_SLOTS(4096) * URPC_PAYLOAD,
               "every topology message fits in one ring: replies never wait");

static struct waitset ws;
static bool instance;   /* started by the starter (a key): beats to it */
static struct service_acceptor acceptor;
static serve_one_fn serve;
static uint32_t nclients;

errval_t service_start(const char *name, const char *iface, uint64_t key)
{
    /* Our name lives as long as the lib's channel to the name server, and
     * is made again after a restart of the name server (names_watch). */
    uint64_t id;
    errval_t err = service_register_self(&id);
    instance = key != 0;
    waitset_init(&ws);
    /* An instance beats from the start: a join that waits for its group
     * (after a restart of the name server) is not a hang. */
    errval_t hb = instance ? heartbeat_start(&ws) : ERR_OK;
    if (hb)
        printf("topo: no heartbeats: %s\n", err_name(hb));
    if (!err && key)
        err = names_keep_join(name, key, id);
    else if (!err)
        err = names_keep_register(name, iface, id);
    return err;
}

static errval_t reply_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    (void)flags;
    errval_t err = urpc_send(&((struct service_chan *)ch->state)->ch, msg, len, URPC_NONBLOCK);
    return err == ERR_WOULD_BLOCK ? ERR_TIMEOUT : err;
}

/* One question of one client; a client whose channel is gone is dropped. */
static bool serve_client(struct ws_source *s)
{
    struct service_chan *c = s->arg;
    errval_t err = serve(&c->idl, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED || err == ERR_MSG_TOO_LONG) {
        printf("topo: client on core %u: %s\n", c->peer_core, err_name(err));   /* the channel is fine */
    } else if (err) {
        if (err != ERR_CHAN_CLOSED)
            printf("topo: client on core %u: %s\n", c->peer_core, err_name(err));
        service_chan_close(c, err == ERR_CHAN_CLOSED ? ERR_OK : err);
        free(c);
        nclients--;
    }
    return true;
}

static void accepted(struct service_acceptor *a, struct service_chan *c)
{
    (void)a;
    if (nclients == MAX_CLIENTS) {   /* full: the client hears why at once */
        service_chan_close(c, ERR_TOO_MANY);
        free(c);
        return;
    }
    c->idl.send = reply_send;
    service_chan_source(c, serve_client, c);
    waitset_add(&ws, &c->src);
    nclients++;
}

void service_run(serve_one_fn serve_one)
{
    serve = serve_one;
    service_acceptor_init(&acceptor, accepted, 0);
    waitset_add(&ws, &acceptor.src);
    names_watch(&ws);
    waitset_run(&ws);
    exit(1);   /* waitset_run does not return */
}
