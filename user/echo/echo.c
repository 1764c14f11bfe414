/*
 * echo: a service and its client across cores, through the name service.
 *
 *   echo serve NAME [CALLS] [key=K] [update]  register NAME (or, with the
 *                            key the starter gave, join the group NAME as one
 *                            of its instances: docs/services.md) and answer
 *                            echo calls (forever, or until CALLS echo calls);
 *                            `update`: a new version started by `svc update`,
 *                            which takes the old one's state first
 *                            (docs/restart.md; echo2 is this file built with
 *                            state format 2)
 *   echo call NAME [ROUNDS] [LOOKUPS]  look NAME up (LOOKUPS times, timed;
 *                            default 1), connect (the channel's frame goes
 *                            to the server's core), call it ROUNDS times
 *   echo nscheck             register "nscheck.<core>", look it up, check
 *   echo hold PREFIX N       register N names PREFIX.0 .. PREFIX.N-1 for a
 *                            service of ours, then stay (until killed)
 *   echo life MODE NAME      one client lifetime: register and look up a
 *                            name of our own, call service NAME once, then
 *                            end: MODE exit (status 0) or fault (a null write)
 *   echo loop NAME N [EVERY] [plain] [until=NAME2]
 *                            call service NAME N times through a
 *                            channel that reconnects by name
 *                            (<atoll/recover.h>), looking the name up again
 *                            every EVERY calls (default 10; 0: never): across
 *                            restarts of the server and of the name server
 *                            it should see no error. `plain`: as if echo were
 *                            not idempotent: each restart is one
 *                            ERR_RESTARTED, and the loop goes on. `until=`:
 *                            stop early once NAME2 is in the name server
 *                            (tools/inject: `campaign.over`, docs/faults.md)
 *   echo group NAME KEY DELAY_MS LIFE_MS
 *                            make the group NAME with key KEY (hex) at once,
 *                            and after each restart of the name server again
 *                            only DELAY_MS after it noticed: a slow starter,
 *                            whose instances must wait for their group
 *                            (docs/restart.md); end after LIFE_MS, once
 *                            the group has no instance
 *   echo ghost NAME KEY LIFE_MS  join the group NAME with a service never
 *                            registered with our monitor (an instance that
 *                            ended before the name server read its hang-up);
 *                            end after LIFE_MS
 *   echo crash               fault at once (a service that cannot start:
 *                            its restarts stop at its limit, docs/restart.md)
 *   echo hang                never get going (yield forever): a service that
 *                            hangs before its first heartbeat (heartbeat=yes
 *                            in the manifest, docs/restart.md)
 *
 * Each run prints one `@atoll` event (echo_served, echo_call, ns_check,
 * ns_hold) that tests assert on; `life` prints one only if it fails.
 * docs/names.md.
 */
#include <atoll/costmodel.h>
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <atoll/waitset.h>
#include <if/echo_if.h>
#include <if/nameservice_if.h>

/* The lib's channel to the name server (<atoll/recover.h>): one per domain,
 * shared with the kept registrations, made again after a restart. */
static struct idl_chan *names;
static uint32_t my_core;

static int fail(const char *what, errval_t err)
{
    printf("echo: %s: %s\n", what, err_name(err));
    printf("@atoll {\"event\":\"echo_error\",\"core\":%u,\"what\":\"%s\",\"error\":\"%s\"}\n", my_core, what,
           err_name(err));
    return 1;
}

/* -- server ------------------------------------------------------------------------ */
static uint64_t my_id;   /* this domain's id on its core */

static uint64_t calls_answered, accepted, dropped, refused;
static bool quitting;
#define MAX_ECHO_CLIENTS 64
static struct service_chan *clients[MAX_ECHO_CLIENTS];
static uint32_t nclients;

static errval_t on_echo(struct idl_chan *ch, const struct echo_echo_call_args *a)
{
    calls_answered++;
    return echo_echo_reply_send(ch, a->stamp, a->data, a->data_len);
}

static errval_t on_whoami(struct idl_chan *ch, const struct echo_whoami_call_args *a)
{
    (void)a;
    return echo_whoami_reply_send(ch, my_core, my_id);
}

static errval_t on_stats(struct idl_chan *ch, const struct echo_stats_call_args *a)
{
    (void)a;
    struct heap *h = malloc_heap();
    return echo_stats_reply_send(ch, nclients, accepted, dropped, refused, calls_answered, slot_free_count(),
                                 ram_free_bytes(), h->bytes_in_use);
}

static errval_t on_quit(struct idl_chan *ch, const struct echo_quit_call_args *a)
{
    (void)a;
    quitting = true;
    return echo_quit_reply_send(ch, ERR_OK);
}

static const struct echo_handlers handlers = { .echo_call = on_echo, .whoami_call = on_whoami,
                                               .stats_call = on_stats, .quit_call = on_quit };

/* A client that hung up or ended (its monitor hung up for it), or broke
 * its channel: everything we kept for it goes. */
static void drop(struct service_chan *c, errval_t why)
{
    if (why != ERR_CHAN_CLOSED)
        printf("echo: client on core %u: %s\n", c->peer_core, err_name(why));
    service_chan_close(c, why == ERR_CHAN_CLOSED ? ERR_OK : why);
    for (uint32_t i = 0; i < nclients; i++)
        if (clients[i] == c) {
            clients[i] = clients[--nclients];
            break;
        }
    free(c);
    dropped++;
}

static struct waitset ws;
static uint64_t max_calls;

static bool serve_client(struct ws_source *s)
{
    struct service_chan *c = s->arg;
    errval_t err = echo_serve_one(&c->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED || err == ERR_MSG_TOO_LONG)
        printf("echo: client on core %u: %s\n", c->peer_core, err_name(err));
    else if (err)
        drop(c, err);
    if (quitting || (max_calls && calls_answered >= max_calls))
        ws.stop = true;
    return true;
}

static void accepted_one(struct service_acceptor *a, struct service_chan *c)
{
    (void)a;
    if (nclients == MAX_ECHO_CLIENTS) {   /* full: it hears why at once */
        service_chan_close(c, ERR_TOO_MANY);
        free(c);
        refused++;
        return;
    }
    clients[nclients++] = c;
    accepted++;
    service_chan_source(c, serve_client, c);
    waitset_add(&ws, &c->src);
    printf("@atoll {\"event\":\"echo_accept\",\"core\":%u,\"client_core\":%u,\"client\":%llu}\n", my_core,
           c->peer_core, (unsigned long long)c->peer);
    stdout_flush();
}

static uint64_t hex(const char *s)
{
    uint64_t v = 0;
    for (; *s; s++)
        v = v * 16 + (uint64_t)(*s >= 'a' ? *s - 'a' + 10 : *s >= 'A' ? *s - 'A' + 10 : *s - '0');
    return v;
}

/* -- live update (docs/restart.md): two builds of this file, echo (state
 * format 1: the calls answered) and echo2 (format 2: the calls answered
 * and the clients accepted). echo2 reads format 1 (clients unknown: 0);
 * echo cannot read format 2, so an update from echo2 back to echo is
 * rolled back. --------------------------------------------------------------------- */
#ifndef ECHO_STATE_VERSION
#define ECHO_STATE_VERSION 1
#endif

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static errval_t echo_export(void *buf, size_t size, size_t *len)
{
    size_t need = ECHO_STATE_VERSION == 1 ? 8 : 16;
    if (size < need)
        return ERR_MSG_TOO_LONG;
    put64(buf, calls_answered);
    if (ECHO_STATE_VERSION >= 2)
        put64((uint8_t *)buf + 8, accepted);
    *len = need;
    printf("@atoll {\"event\":\"echo_exported\",\"core\":%u,\"domain\":%llu,\"version\":%u,\"calls\":%llu,"
           "\"clients\":%llu}\n",
           my_core, (unsigned long long)my_id, ECHO_STATE_VERSION, (unsigned long long)calls_answered,
           (unsigned long long)accepted);
    return ERR_OK;
}

static errval_t echo_import(uint32_t version, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    errval_t err = ERR_OK;
    if (version == 1 && len == 8)
        calls_answered = get64(p);   /* format 1 says nothing of clients */
    else if (version == 2 && len == 16 && ECHO_STATE_VERSION >= 2)
        calls_answered = get64(p), accepted = get64(p + 8);
    else
        err = version > ECHO_STATE_VERSION ? ERR_NOT_SUPPORTED : ERR_MSG_MALFORMED;
    printf("@atoll {\"event\":\"echo_imported\",\"core\":%u,\"domain\":%llu,\"version\":%u,\"from_version\":%u,"
           "\"calls\":%llu,\"clients\":%llu,\"err\":\"%s\"}\n",
           my_core, (unsigned long long)my_id, ECHO_STATE_VERSION, version, (unsigned long long)calls_answered,
           (unsigned long long)accepted, err_name(err));
    return err;
}

static const struct updatable echo_updatable = { ECHO_STATE_VERSION, echo_export, echo_import };

static int serve(const char *name, uint64_t calls, const char *key, bool update)
{
    uint64_t service;
    errval_t err;
    static struct service_acceptor acceptor;
    max_calls = calls;
    waitset_init(&ws);
    if (key)
        heartbeat_updatable(&echo_updatable);
    if (update) {
        /* A new version: the old one's state first, before we serve; if it
         * does not come or we cannot read it, we end and the update is
         * rolled back. */
        if ((err = heartbeat_start(&ws)) || (err = heartbeat_import_wait(5000)))
            return fail("update: import", err);
    } else if (key && (err = heartbeat_start(&ws))) {
        /* An instance the starter started beats from the start, so that a
         * hang is noticed, and a join that waits for its group (after a
         * restart of the name server) is not taken for one. */
        printf("echo: no heartbeats: %s\n", err_name(err));
    }
    err = service_register_self(&service);
    if (err)
        return fail("serve", err);
    uint64_t t_join = now_ns();
    /* Kept: registered again if the name server is restarted. A join
     * waits for its group (NAMES_JOIN_WAIT_MS). */
    if (key)
        err = names_keep_join(name, hex(key), service);
    else
        err = names_keep_register(name, "echo", service);
    if (err)
        return fail(key ? "join" : "register", err);
    printf("@atoll {\"event\":\"echo_served\",\"core\":%u,\"name\":\"%s\",\"service\":%llu,\"join_ms\":%llu,"
           "\"beats\":%llu}\n",
           my_core, name, (unsigned long long)service, (unsigned long long)((now_ns() - t_join) / 1000000),
           (unsigned long long)heartbeats_sent());
    stdout_flush();
    service_acceptor_init(&acceptor, accepted_one, 0);
    waitset_add(&ws, &acceptor.src);
    names_watch(&ws);
    waitset_run(&ws);
    printf("@atoll {\"event\":\"echo_done\",\"core\":%u,\"name\":\"%s\",\"calls\":%llu,\"clients\":%llu}\n",
           my_core, name, (unsigned long long)calls_answered, (unsigned long long)accepted);
    return 0;
}

/* -- client ------------------------------------------------------------------------ */
static uint64_t samples[10000];
#define MAX_LOOKUPS 101   /* lookups `call` may time */

static void sort(uint64_t *a, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && a[j - 1] > a[j]; j--) {
            uint64_t t = a[j];
            a[j] = a[j - 1];
            a[j - 1] = t;
        }
}

/* Where an instance on `server` is from us, in the cost model's words
 * (the lookup benchmark's relations, docs/bench.md). */
static uint32_t cm_relation(uint32_t server)
{
    struct core_info machine;
    if (server == my_core)
        return CM_WORD_same_core;
    if (!sys_core_info(&machine) && server < CORE_INFO_MAX_CORES && server < machine.ncores &&
        machine.core_node[server] == machine.node)
        return CM_WORD_same_node;
    return CM_WORD_remote_node;
}

/* The cost model's region around one timed operation of `call`
 * (docs/costmodel.md): the lookup benchmark's lookups, connect and calls,
 * each its own `lookup` region, as each of the ping-pong's samples is. */
static void cm_lookup_begin(uint32_t protocol, uint32_t dst, uint32_t relation)
{
    cm_arg(protocol, protocol);
    cm_arg(relation, relation);
    cm_arg(src, my_core);
    cm_arg(dst, dst);
    cm_arg(ops, 1);
    cm_begin(lookup);
}

static int call(const char *name, uint32_t rounds, uint32_t nlookups)
{
    static uint8_t replybuf[echo_size_max];
    const char *iface;
    uint64_t service = 0;
    errval_t err, reply_err = ERR_OK;
    /* The server may still be starting: wait for its name up to 2 s,
     * asleep between tries (a spinning client can starve it). */
    uint64_t give_up = urpc_os_now_ns() + 2000000000ull;
    static uint64_t lookups[MAX_LOOKUPS];
    for (;;) {
        uint64_t t = urpc_os_now_ns();
        err = nameservice_lookup_rpc(names, name, &reply_err, &iface, &service, replybuf, sizeof replybuf);
        lookups[0] = urpc_os_now_ns() - t;
        if (err || reply_err != ERR_NOT_FOUND || urpc_os_now_ns() > give_up)
            break;
        sys_notify_wait(sys_notify_gen(), 1000, 0);
    }
    if (err || reply_err)
        return fail("lookup", err ? err : reply_err);
    /* More lookups of the name, timed, if asked (the lookup benchmark). A
     * group's answer may be another instance each time (ties between the
     * nearest are taken in turn): the first answer is the one used. */
    uint32_t relation = cm_relation(SERVICE_CORE(service));
    for (uint32_t i = 1; i < nlookups && !err && !reply_err; i++) {
        /* At the name server's replica this domain is connected to (its node's). */
        cm_lookup_begin(CM_WORD_name_lookup, ((struct service_chan *)names->state)->peer_core, relation);
        uint64_t t = urpc_os_now_ns(), again = 0;
        err = nameservice_lookup_rpc(names, name, &reply_err, &iface, &again, replybuf, sizeof replybuf);
        lookups[i] = urpc_os_now_ns() - t;
        cm_end(lookup);
    }
    if (err || reply_err)
        return fail("lookup", err ? err : reply_err);
    sort(lookups, nlookups);
    cm_lookup_begin(CM_WORD_connect, SERVICE_CORE(service), relation);
    uint64_t t1 = urpc_os_now_ns();
    struct service_chan *sc = malloc(sizeof *sc);
    err = sc ? service_connect(service, sc) : ERR_NO_MEMORY;
    if (err)
        return fail("connect", err);
    uint32_t server_core;
    uint64_t server_id;
    err = echo_whoami_rpc(&sc->idl, &server_core, &server_id);
    if (err)
        return fail("whoami", err);
    uint64_t t2 = urpc_os_now_ns();
    cm_end(lookup);
    uint8_t data[32];
    for (uint32_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(my_core + i);
    for (uint32_t i = 0; i < rounds; i++) {
        cm_lookup_begin(CM_WORD_echo_call, server_core, relation);
        uint64_t stamp = urpc_os_now_ns(), back;
        const uint8_t *got;
        size_t got_len;
        err = echo_echo_rpc(&sc->idl, stamp, data, sizeof data, &back, &got, &got_len, replybuf, sizeof replybuf);
        cm_end(lookup);
        if (!err && (back != stamp || got_len != sizeof data || memcmp(got, data, sizeof data)))
            err = ERR_INCONSISTENT;
        if (err)
            return fail("echo", err);
        samples[i] = urpc_os_now_ns() - stamp;
    }
    sort(samples, rounds);
    struct core_info machine;
    uint32_t node = 0, server_node = 0;
    if (!sys_core_info(&machine) && server_core < CORE_INFO_MAX_CORES) {
        node = machine.node;
        server_node = machine.core_node[server_core];
    }
    printf("echo: %s on core %u answered %u calls from core %u, median %llu ns\n", name, server_core, rounds,
           my_core, (unsigned long long)samples[rounds / 2]);
    printf("@atoll {\"event\":\"echo_call\",\"core\":%u,\"node\":%u,\"name\":\"%s\",\"server_core\":%u,"
           "\"server_node\":%u,\"server\":%llu,\"rounds\":%u,\"lookups\":%u,\"lookup_ns\":%llu,"
           "\"lookup_min_ns\":%llu,\"connect_ns\":%llu,\"rt_median_ns\":%llu,\"rt_min_ns\":%llu}\n",
           my_core, node, name, server_core, server_node, (unsigned long long)server_id, rounds, nlookups,
           (unsigned long long)lookups[nlookups / 2], (unsigned long long)lookups[0],
           (unsigned long long)(t2 - t1), (unsigned long long)samples[rounds / 2], (unsigned long long)samples[0]);
    return 0;
}

/* -- a name-service round trip ------------------------------------------------------ */
static int nscheck(void)
{
    static uint8_t replybuf[nameservice_size_max];
    char name[64];
    snprintf(name, sizeof name, "nscheck.%u.%llu", my_core, (unsigned long long)startup()->domain_id);
    uint64_t service, found = 0;
    const char *iface = "";
    errval_t err, reply_err;
    err = service_register_self(&service);
    if (err)
        return fail("serve", err);
    uint64_t t0 = urpc_os_now_ns();
    err = nameservice_register_rpc(names, name, "none", service, &reply_err);
    if (err || reply_err)
        return fail("register", err ? err : reply_err);
    uint64_t t1 = urpc_os_now_ns();
    err = nameservice_lookup_rpc(names, name, &reply_err, &iface, &found, replybuf, sizeof replybuf);
    if (err || reply_err)
        return fail("lookup", err ? err : reply_err);
    uint64_t t2 = urpc_os_now_ns();
    bool ok = found == service && !strcmp(iface, "none");
    err = nameservice_unregister_rpc(names, name, &reply_err);
    ok = ok && !err && !reply_err;
    printf("@atoll {\"event\":\"ns_check\",\"core\":%u,\"name\":\"%s\",\"service\":%llu,\"found\":%llu,"
           "\"ok\":%s,\"register_ns\":%llu,\"lookup_ns\":%llu}\n",
           my_core, name, (unsigned long long)service, (unsigned long long)found, ok ? "true" : "false",
           (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1));
    return ok ? 0 : 1;
}

/* -- names that stay while we do ------------------------------------------------- */
static int hold(const char *prefix, uint32_t n)
{
    uint64_t service;
    errval_t err = service_register_self(&service), reply_err = ERR_OK;
    if (err)
        return fail("serve", err);
    uint32_t done = 0;
    for (; done < n; done++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%u", prefix, done);
        err = nameservice_register_rpc(names, name, "none", service, &reply_err);
        if (err || reply_err)
            break;
    }
    printf("@atoll {\"event\":\"ns_hold\",\"core\":%u,\"domain\":%llu,\"prefix\":\"%s\",\"registered\":%u,"
           "\"error\":\"%s\"}\n",
           my_core, (unsigned long long)my_id, prefix, done, err_name(err ? err : reply_err));
    stdout_flush();
    for (;;)
        sys_notify_wait(sys_notify_gen(), 1000000, 0);
}

/* -- a slow group maker ------------------------------------------------------------ */
struct group_args {
    const char *name;
    uint64_t key;
    errval_t rerr;
};

static errval_t group_call(struct idl_chan *ch, void *arg)
{
    struct group_args *g = arg;
    g->rerr = ERR_OK;
    return nameservice_group_rpc(ch, g->name, "echo", g->key, &g->rerr);
}

static int group(const char *name, uint64_t key, uint64_t delay_ms, uint64_t life_ms)
{
    uint64_t start = now_ns(), due = start;   /* the first time at once */
    uint32_t seen = names_reconnects(), made = 0;
    for (;;) {
        /* Past its life, the maker stays while the group it made last has
         * an instance: its end takes the group along, and a client's
         * lookup must not depend on how fast the host ran the test. */
        uint64_t any;
        if (now_ns() - start >= life_ms * 1000000ull && !due && names_lookup(name, 0, &any) == ERR_NOT_FOUND &&
            names_reconnects() == seen)
            break;   /* (not a name server restarted a moment ago: the group is to be made again) */
        if (!names_idl())   /* notices the name server's hang-up (and reconnects) */
            return fail("group: name server", ERR_CHAN_CLOSED);
        if (names_reconnects() != seen) {
            seen = names_reconnects();
            due = now_ns() + delay_ms * 1000000ull;
            printf("@atoll {\"event\":\"echo_group_lost\",\"core\":%u,\"name\":\"%s\",\"names_reconnects\":%u}\n",
                   my_core, name, seen);
            stdout_flush();
        }
        if (due && now_ns() >= due) {
            struct group_args g = { .name = name, .key = key };
            errval_t err = names_call(group_call, &g);
            if (err || g.rerr)
                return fail("group", err ? err : g.rerr);
            due = 0;
            printf("@atoll {\"event\":\"echo_group\",\"core\":%u,\"name\":\"%s\",\"made\":%u,\"ms\":%llu}\n",
                   my_core, name, ++made, (unsigned long long)((now_ns() - start) / 1000000));
            stdout_flush();
        }
        sys_notify_wait(sys_notify_gen(), 20000, 0);
    }
    return 0;
}

/* -- an instance gone but still named ----------------------------------------------- */
/* Join the group NAME with a service our monitor does not know (never
 * registered): what the name server gives out for an instance that ended
 * before it read the hang-up. Stay LIFE_MS, then end (the name goes). */
static int ghost(const char *name, uint64_t key, uint64_t life_ms)
{
    uint64_t service = SERVICE_ID(my_core, my_id, 0xffff);
    errval_t rerr = ERR_OK, err = nameservice_join_rpc(names, name, key, service, &rerr);
    if (err || rerr)
        return fail("ghost: join", err ? err : rerr);
    printf("@atoll {\"event\":\"echo_ghost\",\"core\":%u,\"name\":\"%s\",\"service\":%llu}\n", my_core, name,
           (unsigned long long)service);
    stdout_flush();
    for (uint64_t end = now_ns() + life_ms * 1000000ull; now_ns() < end;)
        sys_notify_wait(sys_notify_gen(), 20000, 0);
    return 0;
}

/* -- one client's whole life, for the endurance test ------------------------------- */
static int life(const char *mode, const char *name)
{
    static uint8_t replybuf[(size_t)nameservice_size_max + (size_t)echo_size_max];
    uint64_t service, found;
    const char *iface;
    errval_t err, reply_err = ERR_OK;
    char mine[64];
    snprintf(mine, sizeof mine, "life.%u.%llu", my_core, (unsigned long long)my_id);
    err = service_register_self(&service);
    if (!err)
        err = nameservice_register_rpc(names, mine, "none", service, &reply_err);
    if (!err && !reply_err)
        err = nameservice_lookup_rpc(names, mine, &reply_err, &iface, &found, replybuf, sizeof replybuf);
    if (!err && !reply_err && found != service)
        err = ERR_INCONSISTENT;
    if (!err && !reply_err)
        err = nameservice_lookup_rpc(names, name, &reply_err, &iface, &found, replybuf, sizeof replybuf);
    if (err || reply_err)
        return fail("life: names", err ? err : reply_err);
    struct service_chan *sc = malloc(sizeof *sc);
    err = sc ? service_connect(found, sc) : ERR_NO_MEMORY;
    uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint64_t back;
    const uint8_t *got;
    size_t got_len;
    if (!err)
        err = echo_echo_rpc(&sc->idl, 42, data, sizeof data, &back, &got, &got_len, replybuf, sizeof replybuf);
    if (!err && (back != 42 || got_len != sizeof data))
        err = ERR_INCONSISTENT;
    if (err)
        return fail("life: call", err);
    if (!strcmp(mode, "fault"))
        *(volatile uint64_t *)0 = 1;   /* ends us: the monitor cleans up all the same */
    return 0;
}

/* -- a client that lives through restarts ------------------------------------------------ */

struct echo_args {
    uint64_t stamp, back;
    uint8_t data[16];
};

static errval_t echo_once(struct idl_chan *ch, void *arg)
{
    struct echo_args *a = arg;
    static uint8_t buf[echo_size_max];
    const uint8_t *back = 0;
    size_t len = 0;
    errval_t err = echo_echo_rpc(ch, a->stamp, a->data, sizeof a->data, &a->back, &back, &len, buf, sizeof buf);
    if (!err && (a->back != a->stamp || len != sizeof a->data || memcmp(back, a->data, len)))
        err = ERR_INCONSISTENT;
    return err;
}

static int loop(const char *name, uint32_t n, uint32_t every, bool plain, const char *until)
{
    static struct named_chan nc;
    uint32_t errors = 0, lookups = 0;
    errval_t first = ERR_OK;
    uint64_t t0 = now_ns();
    errval_t err = named_connect(&nc, name, 10000);
    if (err)
        return fail("loop: connect", err);
    uint64_t connect_ms = (now_ns() - t0) / 1000000;
    for (uint32_t i = 0; i < n; i++) {
        struct echo_args a = { .stamp = ((uint64_t)my_core << 48) | i };
        memset(a.data, (int)(i & 0xff), sizeof a.data);
        /* The lookup comes before the call: a server that ends after
         * answering its last call may be gone by the time of a lookup after it. */
        const char *what = "lookup";
        err = ERR_OK;
        if (every && i % every == 0) {
            uint64_t service;
            err = names_lookup(name, 10000, &service);
            lookups++;
        }
        if (!err) {
            what = "call";
            err = named_call(&nc, echo_echo_idempotent && !plain, echo_once, &a);
        }
        if (err) {
            if (!errors++)
                first = err;
            /* When, and after which name-server restart: to match it
             * with the campaign's events (a rare ERR_NOT_FOUND, docs/faults.md). */
            printf("echo: loop call %u: %s\n", i, err_name(err));
            printf("@atoll {\"event\":\"echo_loop_error\",\"core\":%u,\"call\":%u,\"error\":\"%s\",\"what\":\"%s\","
                   "\"ms\":%llu,\"names_reconnects\":%u}\n",
                   my_core, i, err_name(err), what,
                   (unsigned long long)((now_ns() - t0) / 1000000), names_reconnects());
        }
        /* Let the others (and the restarts) run: about 100 calls a second. */
        sys_notify_wait(sys_notify_gen(), 10000, 0);
        uint64_t over;
        if (until && i % 64 == 63 && !names_lookup(until, 0, &over)) {
            n = i + 1;   /* the name appeared (the campaign's end): stop here */
            break;
        }
    }
    printf("@atoll {\"event\":\"echo_loop\",\"core\":%u,\"name\":\"%s\",\"plain\":%s,\"calls\":%u,\"errors\":%u,"
           "\"first_error\":\"%s\",\"lookups\":%u,\"reconnects\":%u,\"retries\":%u,\"names_reconnects\":%u,"
           "\"connect_ms\":%llu,\"ms\":%llu}\n",
           my_core, name, plain ? "true" : "false", n, errors, err_name(first), lookups, nc.reconnects, nc.retries, names_reconnects(),
           (unsigned long long)connect_ms, (unsigned long long)((now_ns() - t0) / 1000000));
    named_close(&nc);
    return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "crash"))
        *(volatile uint64_t *)0 = 1;   /* a server that cannot start */
    if (argc >= 2 && !strcmp(argv[1], "hang"))
        for (;;)
            sys_yield();   /* a server that hangs at start: never a heartbeat */
    my_core = startup()->core_id;
    my_id = startup()->domain_id;
    errval_t err = monitor_connect();
    if (!err)
        err = (names = names_idl()) ? ERR_OK : ERR_CHAN_CLOSED;
    if (err)
        return fail("connect to the name server", err);
    if (argc >= 3 && !strcmp(argv[1], "serve"))
        return serve(argv[2], argc >= 4 ? arg_number(argv[3], 0) : 0,
                     argc >= 5 && !strncmp(argv[4], "key=", 4) ? argv[4] + 4 : 0,
                     argc >= 6 && !strcmp(argv[argc - 1], "update"));
    if (argc >= 3 && !strcmp(argv[1], "call")) {
        uint32_t rounds = argc >= 4 ? arg_number(argv[3], 100) : 100;
        uint32_t nlookups = argc >= 5 ? arg_number(argv[4], 1) : 1;
        return call(argv[2], rounds > 10000 ? 10000 : rounds,
                    nlookups < 1 ? 1 : nlookups > MAX_LOOKUPS ? MAX_LOOKUPS : nlookups);
    }
    if (argc >= 2 && !strcmp(argv[1], "nscheck"))
        return nscheck();
    if (argc >= 4 && !strcmp(argv[1], "hold"))
        return hold(argv[2], arg_number(argv[3], 1));
    if (argc >= 6 && !strcmp(argv[1], "group"))
        return group(argv[2], hex(argv[3]), arg_number(argv[4], 0), arg_number(argv[5], 0));
    if (argc >= 4 && !strcmp(argv[1], "life"))
        return life(argv[2], argv[3]);
    if (argc >= 5 && !strcmp(argv[1], "ghost"))
        return ghost(argv[2], hex(argv[3]), arg_number(argv[4], 0));
    if (argc >= 4 && !strcmp(argv[1], "loop")) {
        const char *until = 0;
        bool plain = false;
        for (int i = 5; i < argc; i++) {
            plain |= !strcmp(argv[i], "plain");
            if (!strncmp(argv[i], "until=", 6))
                until = argv[i] + 6;
        }
        return loop(argv[2], arg_number(argv[3], 100),
                    argc < 5 ? 10 : !strcmp(argv[4], "0") ? 0 : arg_number(argv[4], 10), plain, until);
    }
    printf("usage: echo serve NAME [CALLS] [key=K] | echo call NAME [ROUNDS] [LOOKUPS] | echo nscheck | echo hold PREFIX N |"
           " echo group NAME KEY DELAY_MS LIFE_MS | echo ghost NAME KEY LIFE_MS | echo life exit|fault NAME | echo loop NAME N [EVERY] [plain] [until=NAME2] | echo crash | echo hang\n");
    return 2;
}
