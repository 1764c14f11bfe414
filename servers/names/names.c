/*
 * The name server: one domain on core 0, service 0 of its monitor (so
 * every domain can reach it without a name). Services register an
 * interface under a name; clients look a name up, get the service id, and
 * connect to it through their monitor. Each client talks to it over its own
 * URPC channel (if/nameservice.if); the server polls them all and sleeps
 * when none has anything. docs/names.md.
 */
#include <atoll/lib.h>
#include <if/nameservice_if.h>
#include "../../monitor/client.h"

#define MAX_NAMES 256
#define MAX_CLIENTS 512
#define SPIN_NS 50000ull

struct entry {
    char name[64];
    char iface[32];
    uint64_t service;
    uint32_t owner_core;
    uint64_t owner;
};
static struct entry names[MAX_NAMES];
static uint32_t nnames;
static struct service_chan *clients[MAX_CLIENTS];
static uint32_t nclients;
static uint64_t served;

static struct service_chan *client_of(struct idl_chan *ch) { return ch->state; }

static struct entry *find(const char *name)
{
    for (uint32_t i = 0; i < nnames; i++)
        if (!strcmp(names[i].name, name))
            return &names[i];
    return 0;
}

static errval_t on_register(struct idl_chan *ch, const struct nameservice_register_call_args *a)
{
    errval_t err = ERR_OK;
    if (!a->name[0])
        err = ERR_INVALID_ARG;
    else if (find(a->name))
        err = ERR_NAME_TAKEN;
    else if (nnames == MAX_NAMES)
        err = ERR_TOO_MANY;
    if (!err) {
        struct entry *e = &names[nnames++];
        snprintf(e->name, sizeof e->name, "%s", a->name);
        snprintf(e->iface, sizeof e->iface, "%s", a->iface);
        e->service = a->service;
        e->owner_core = client_of(ch)->peer_core;
        e->owner = client_of(ch)->peer;
    }
    return nameservice_register_reply_send(ch, err);
}

static errval_t on_lookup(struct idl_chan *ch, const struct nameservice_lookup_call_args *a)
{
    struct entry *e = find(a->name);
    return nameservice_lookup_reply_send(ch, e ? ERR_OK : ERR_NOT_FOUND, e ? e->iface : "", e ? e->service : 0);
}

static errval_t on_unregister(struct idl_chan *ch, const struct nameservice_unregister_call_args *a)
{
    struct entry *e = find(a->name);
    struct service_chan *c = client_of(ch);
    errval_t err = ERR_OK;
    if (!e)
        err = ERR_NOT_FOUND;
    else if (e->owner_core != c->peer_core || e->owner != c->peer)
        err = ERR_CAP_RIGHTS;   /* only who registered a name may remove it */
    else
        *e = names[--nnames];
    return nameservice_unregister_reply_send(ch, err);
}

static errval_t on_list(struct idl_chan *ch, const struct nameservice_list_call_args *a)
{
    static char text[2001];
    size_t len = 0;
    text[0] = 0;
    for (uint32_t i = a->first; i < nnames; i++) {
        const struct entry *e = &names[i];
        int n = snprintf(text + len, sizeof text - len, "%s %s %u\n", e->name, e->iface,
                         (unsigned)(e->service >> 32));
        if (n < 0 || len + (size_t)n >= sizeof text) {
            text[len] = 0;
            break;
        }
        len += (size_t)n;
    }
    return nameservice_list_reply_send(ch, ERR_OK, nnames, text);
}

static const struct nameservice_handlers handlers = {
    .register_call = on_register,
    .lookup_call = on_lookup,
    .unregister_call = on_unregister,
    .list_call = on_list,
};

/* Replies never wait: a client with a full reply ring has stopped taking
 * its replies (one call at a time never fills it), and waiting for it
 * would stall every other client. It is dropped instead. */
static errval_t reply_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    (void)flags;
    errval_t err = urpc_send(&((struct service_chan *)ch->state)->ch, msg, len, URPC_NONBLOCK);
    return err == ERR_WOULD_BLOCK ? ERR_TIMEOUT : err;
}

static bool accept_clients(void)
{
    bool any = false;
    while (nclients < MAX_CLIENTS) {
        struct service_chan *c = malloc(sizeof *c);
        if (!c)
            return any;
        errval_t err = service_accept(c);
        if (err) {
            free(c);
            if (err != ERR_WOULD_BLOCK)
                printf("names: accept: %s\n", err_name(err));
            return any;
        }
        c->idl.send = reply_send;
        clients[nclients++] = c;
        any = true;
    }
    return any;
}

static bool serve_clients(void)
{
    bool any = false;
    for (uint32_t i = 0; i < nclients; i++) {
        errval_t err = nameservice_serve_one(&clients[i]->idl, &handlers, URPC_NONBLOCK);
        if (err == ERR_WOULD_BLOCK)
            continue;
        any = true;
        if (!err) {
            served++;
            continue;
        }
        printf("names: client on core %u: %s\n", clients[i]->peer_core, err_name(err));
        if (err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED || err == ERR_MSG_TOO_LONG)
            continue;   /* one bad message: the channel itself is fine */
        /* A broken channel stays broken, a client that takes no replies is
         * gone: drop it, or it is reported (and polled) forever. */
        printf("@atoll {\"event\":\"names_drop\",\"client_core\":%u,\"client\":%llu,\"error\":\"%s\"}\n",
               clients[i]->peer_core, (unsigned long long)clients[i]->peer, err_name(err));
        free(clients[i]);
        clients[i--] = clients[--nclients];
    }
    return any;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char *text;
    uint64_t id;
    errval_t err = monitor_connect(&text);
    if (!err)
        err = service_register_self(&id);
    if (err || id != NAMES_SERVICE) {
        printf("names: cannot become service %llu: %s\n", (unsigned long long)NAMES_SERVICE, err_name(err));
        return 1;
    }
    uint64_t idle_since = 0;
    for (;;) {
        bool busy = serve_clients();
        if (!idle_since || busy)
            busy |= accept_clients();   /* once per idle spell, and while busy */
        if (busy) {
            idle_since = 0;
            continue;
        }
        uint64_t now = urpc_os_now_ns();
        if (!idle_since)
            idle_since = now;
        if (now - idle_since < SPIN_NS)
            continue;
        uint64_t token = sys_notify_gen();
        bool pending = false;
        for (uint32_t i = 0; i < nclients; i++)
            urpc_set_sleeping(&clients[i]->ch, true);
        for (uint32_t i = 0; i < nclients && !pending; i++)
            pending = urpc_pending(&clients[i]->ch);
        if (!pending)
            sys_notify_wait(token, 20000, 0);
        for (uint32_t i = 0; i < nclients; i++)
            urpc_set_sleeping(&clients[i]->ch, false);
        idle_since = 0;
        accept_clients();
    }
}
