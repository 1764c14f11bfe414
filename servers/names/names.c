/*
 * The name server: one domain on core 0, reachable by every domain without
 * a name (its monitor answers NAMES_SERVICE with it). Services register an
 * interface under a name; clients look a name up, get the service id, and
 * connect to it through their monitor. Each client talks to it over its own
 * URPC channel (if/nameservice.if); the server polls them all and sleeps
 * when none has anything. docs/names.md.
 *
 * Groups. A service placed on several cores (docs/services.md) is a group:
 * one name, an instance per core, each joining with the key the starter
 * gave it. A lookup returns the instance nearest the caller: on its core,
 * on its node, then by the SLIT distance between the nodes (the kernel's
 * core_info), equal candidates in turn.
 *
 * Lifetimes. A name belongs to the channel it was registered on: when that
 * channel closes (its domain ended, and its monitor hung up for it, or the
 * domain hung up itself), its names go with it and the channel's frame,
 * mapping and memory are given back. A domain registers only services of
 * its own (the id names its domain, monitor/protocol.h), so a name can
 * never lead to another domain's service. Limits: NAMES_PER_CLIENT names
 * per channel, MAX_NAMES in all, MAX_CLIENTS channels (one more is hung up
 * at once with ERR_TOO_MANY); docs/limits.md.
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/waitset.h>
#include <if/nameservice_if.h>

#define MAX_NAMES 1024
/* A client costs about 4 KiB of the server's own RAM (its channel state);
 * the server has 2 MiB (monitor/main.c). */
#define MAX_CLIENTS 256
#define NAMESERVICE_LIST_TEXT 1500   /* string<1500> in if/nameservice.if */
#define NAMES_PER_CLIENT 16

_Static_assert(nameservice_size_max <= URPC_RING_SLOTS(4096) * URPC_PAYLOAD,
               "every name-service message fits in one ring: replies never wait");

struct client {
    struct service_chan *sc;
    uint32_t names;         /* registered through this channel */
};

struct entry {
    char name[64];
    char iface[32];
    uint64_t service;
    struct client *owner;   /* the channel it was registered on */
    bool instance;          /* one of a group's */
};
static struct entry names[MAX_NAMES];
static uint32_t nnames;

#define MAX_GROUPS 64
struct group {
    char name[64];
    char iface[32];
    uint64_t key;
    struct client *owner;   /* the starter's channel: the group goes with it */
    uint32_t turn;          /* ties are taken in turn */
};
static struct group groups[MAX_GROUPS];
static struct core_info machine;
static struct client *clients[MAX_CLIENTS];
static uint32_t nclients;
static uint64_t served, accepted, dropped, refused;
static struct waitset ws;
static struct service_acceptor acceptor;

static struct client *client_of(struct idl_chan *ch) { return ch->user; }

static struct entry *find(const char *name)
{
    for (uint32_t i = 0; i < nnames; i++)
        if (!strcmp(names[i].name, name))
            return &names[i];
    return 0;
}

static struct group *find_group(const char *name)
{
    for (uint32_t i = 0; i < MAX_GROUPS; i++)
        if (groups[i].owner && !strcmp(groups[i].name, name))
            return &groups[i];
    return 0;
}

/* How far an instance on core `to` is from a caller on core `from`. */
static uint32_t distance(uint32_t from, uint32_t to)
{
    if (from == to)
        return 0;
    if (from >= machine.ncores || to >= machine.ncores || from >= CORE_INFO_MAX_CORES || to >= CORE_INFO_MAX_CORES)
        return ~0u;
    uint32_t a = machine.core_node[from], b = machine.core_node[to];
    if (a == b)
        return 1;
    if (a >= CORE_INFO_MAX_NODES || b >= CORE_INFO_MAX_NODES)
        return ~0u;
    return 10 + machine.node_distance[a][b];
}

/* The entry a lookup from `core` gets: a single name's, or the nearest
 * instance of a group (NULL: none). */
static struct entry *nearest(const char *name, uint32_t core)
{
    struct entry *e = find(name);
    if (!e || !e->instance)
        return e;
    struct group *g = find_group(name);
    uint32_t best = ~0u, ties = 0;
    for (uint32_t i = 0; i < nnames; i++)
        if (names[i].instance && !strcmp(names[i].name, name)) {
            uint32_t d = distance(core, SERVICE_CORE(names[i].service));
            if (d < best) {
                best = d;
                ties = 1;
            } else if (d == best) {
                ties++;
            }
        }
    uint32_t pick = g ? g->turn++ % ties : 0;
    for (uint32_t i = 0; i < nnames; i++)
        if (names[i].instance && !strcmp(names[i].name, name) &&
            distance(core, SERVICE_CORE(names[i].service)) == best && pick-- == 0)
            return &names[i];
    return e;
}

static errval_t add_entry(struct client *c, const char *name, const char *iface, uint64_t service, bool instance)
{
    if (c->names >= NAMES_PER_CLIENT)
        return ERR_QUOTA;
    if (nnames == MAX_NAMES)
        return ERR_TOO_MANY;
    struct entry *e = &names[nnames++];
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->iface, sizeof e->iface, "%s", iface);
    e->service = service;
    e->owner = c;
    e->instance = instance;
    c->names++;
    return ERR_OK;
}

static void remove_entry(struct entry *e)
{
    e->owner->names--;
    *e = names[--nnames];
    names[nnames] = (struct entry){ 0 };   /* nothing of it stays behind */
}

static errval_t on_register(struct idl_chan *ch, const struct nameservice_register_call_args *a)
{
    struct client *c = client_of(ch);
    errval_t err = ERR_OK;
    if (!a->name[0])
        err = ERR_INVALID_ARG;
    else if (SERVICE_CORE(a->service) != c->sc->peer_core || SERVICE_DOMAIN(a->service) != c->sc->peer)
        err = ERR_NOT_PERMITTED;   /* only a service of the caller's own */
    else if (find(a->name) || find_group(a->name))
        err = ERR_NAME_TAKEN;
    else
        err = add_entry(c, a->name, a->iface, a->service, false);
    return nameservice_register_reply_send(ch, err);
}

static errval_t on_lookup(struct idl_chan *ch, const struct nameservice_lookup_call_args *a)
{
    struct entry *e = nearest(a->name, client_of(ch)->sc->peer_core);
    return nameservice_lookup_reply_send(ch, e ? ERR_OK : ERR_NOT_FOUND, e ? e->iface : "", e ? e->service : 0);
}

static errval_t on_group(struct idl_chan *ch, const struct nameservice_group_call_args *a)
{
    struct group *g = 0;
    errval_t err = ERR_OK;
    if (!a->name[0] || !a->key)
        err = ERR_INVALID_ARG;
    else if (find(a->name) || find_group(a->name))
        err = ERR_NAME_TAKEN;
    for (uint32_t i = 0; !err && i < MAX_GROUPS && !g; i++)
        if (!groups[i].owner)
            g = &groups[i];
    if (!err && !g)
        err = ERR_TOO_MANY;
    if (!err) {
        *g = (struct group){ .key = a->key, .owner = client_of(ch) };
        snprintf(g->name, sizeof g->name, "%s", a->name);
        snprintf(g->iface, sizeof g->iface, "%s", a->iface);
    }
    return nameservice_group_reply_send(ch, err);
}

static errval_t on_join(struct idl_chan *ch, const struct nameservice_join_call_args *a)
{
    struct client *c = client_of(ch);
    struct group *g = find_group(a->name);
    errval_t err = ERR_OK;
    if (!g)
        err = ERR_NOT_FOUND;
    else if (a->key != g->key)
        err = ERR_NOT_PERMITTED;   /* only the instances the starter started */
    else if (SERVICE_CORE(a->service) != c->sc->peer_core || SERVICE_DOMAIN(a->service) != c->sc->peer)
        err = ERR_NOT_PERMITTED;
    else
        err = add_entry(c, a->name, g->iface, a->service, true);
    return nameservice_join_reply_send(ch, err);
}

static errval_t on_instances(struct idl_chan *ch, const struct nameservice_instances_call_args *a)
{
    static char text[1201];
    size_t len = 0;
    uint32_t total = 0, count = 0;
    text[0] = 0;
    for (uint32_t i = 0; i < nnames; i++) {
        if (strcmp(names[i].name, a->name))
            continue;
        if (total++ < a->first)
            continue;
        int n = snprintf(text + len, sizeof text - len, "%u %llu\n", SERVICE_CORE(names[i].service),
                         (unsigned long long)names[i].service);
        if (n < 0 || len + (size_t)n >= sizeof text) {
            text[len] = 0;
            continue;   /* counted in total, not shown: ask again from first + count */
        }
        len += (size_t)n;
        count++;
    }
    return nameservice_instances_reply_send(ch, total ? ERR_OK : ERR_NOT_FOUND, total, count, text);
}

static errval_t on_unregister(struct idl_chan *ch, const struct nameservice_unregister_call_args *a)
{
    struct entry *e = find(a->name);
    errval_t err = ERR_OK;
    if (!e)
        err = ERR_NOT_FOUND;
    else if (e->owner != client_of(ch))
        err = ERR_NOT_PERMITTED;   /* only who registered a name may remove it */
    else
        remove_entry(e);
    return nameservice_unregister_reply_send(ch, err);
}

/* As many whole lines as fit in one reply; the caller asks again from
 * where it stopped (`total` says how many there are). */
static errval_t on_list(struct idl_chan *ch, const struct nameservice_list_call_args *a)
{
    static char text[NAMESERVICE_LIST_TEXT + 1];
    size_t len = 0;
    uint32_t count = 0;
    text[0] = 0;
    for (uint32_t i = a->first; i < nnames; i++) {
        const struct entry *e = &names[i];
        int n = snprintf(text + len, sizeof text - len, "%s %s %u\n", e->name, e->iface,
                         SERVICE_CORE(e->service));
        if (n < 0 || len + (size_t)n >= sizeof text) {
            text[len] = 0;
            break;
        }
        len += (size_t)n;
        count++;
    }
    return nameservice_list_reply_send(ch, ERR_OK, nnames, count, text);
}

static errval_t on_stats(struct idl_chan *ch, const struct nameservice_stats_call_args *a)
{
    (void)a;
    struct heap *h = malloc_heap();
    return nameservice_stats_reply_send(ch, nclients, nnames, accepted, dropped, refused, served,
                                        slot_free_count(), ram_free_bytes(), h->bytes_in_use, h->chunks_in_use);
}

static const struct nameservice_handlers handlers = {
    .register_call = on_register,
    .lookup_call = on_lookup,
    .unregister_call = on_unregister,
    .list_call = on_list,
    .stats_call = on_stats,
    .group_call = on_group,
    .join_call = on_join,
    .instances_call = on_instances,
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

/* A client goes: its names, its channel, its memory. */
static void drop(struct client *c, errval_t why)
{
    for (uint32_t k = 0; k < nnames;)
        if (names[k].owner == c)
            remove_entry(&names[k]);
        else
            k++;
    for (uint32_t k = 0; k < MAX_GROUPS; k++)
        if (groups[k].owner == c)
            groups[k] = (struct group){ 0 };   /* its instances stay until they go */
    if (why != ERR_CHAN_CLOSED) {
        printf("names: client on core %u: %s\n", c->sc->peer_core, err_name(why));
        printf("@atoll {\"event\":\"names_drop\",\"client_core\":%u,\"client\":%llu,\"error\":\"%s\"}\n",
               c->sc->peer_core, (unsigned long long)c->sc->peer, err_name(why));
    }
    service_chan_close(c->sc, why == ERR_CHAN_CLOSED ? ERR_OK : why);
    free(c->sc);
    for (uint32_t i = 0; i < nclients; i++)
        if (clients[i] == c) {
            clients[i] = clients[--nclients];
            clients[nclients] = 0;
            break;
        }
    free(c);
    dropped++;
}

/* One request of one client; a client whose channel is gone is dropped. */
static bool serve_client(struct ws_source *s)
{
    struct client *c = s->arg;
    errval_t err = nameservice_serve_one(&c->sc->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (!err)
        served++;
    else if (err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED || err == ERR_MSG_TOO_LONG)
        printf("names: client on core %u: %s\n", c->sc->peer_core, err_name(err));   /* the channel is fine */
    else
        drop(c, err);   /* hung up, broken, or takes no replies */
    return true;
}

static void accepted_one(struct service_acceptor *a, struct service_chan *sc)
{
    (void)a;
    struct client *c = nclients < MAX_CLIENTS ? malloc(sizeof *c) : 0;
    if (!c) {   /* full (or out of memory): the client hears why at once */
        service_chan_close(sc, nclients < MAX_CLIENTS ? ERR_NO_MEMORY : ERR_TOO_MANY);
        free(sc);
        refused++;
        return;
    }
    *c = (struct client){ .sc = sc };
    sc->idl.send = reply_send;
    sc->idl.user = c;
    service_chan_source(sc, serve_client, c);
    waitset_add(&ws, &sc->src);
    clients[nclients++] = c;
    accepted++;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    uint64_t id;
    errval_t err = service_register_self(&id);
    if (err) {
        printf("names: cannot become a service: %s\n", err_name(err));
        return 1;
    }
    sys_core_info(&machine);
    waitset_init(&ws);
    service_acceptor_init(&acceptor, accepted_one, 0);
    waitset_add(&ws, &acceptor.src);
    waitset_run(&ws);
    return 0;
}
