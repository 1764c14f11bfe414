/*
 * greeter: the service of docs/writing-a-service.md, placed per node by the
 * boot manifest, and its client.
 *
 *   greeter serve NAME KEY       an instance: join group NAME with the
 *                                starter's KEY, answer greet calls
 *   greeter call NAME [ROUNDS]   look NAME up (the nearest instance), greet
 *                                it ROUNDS times, print the median round trip
 *
 * The client prints one event: greeter_call {core, node, server_core,
 * server_node, rounds, lookup_ns (the name server's answer), median_ns and
 * min_ns (the greet round trip), greeting}.
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/waitset.h>
#include <if/greeter_if.h>
#include <if/nameservice_if.h>

static struct service_chan names;
static struct core_info machine;

/* -- the service ----------------------------------------------------------------- */

static errval_t on_greet(struct idl_chan *ch, const struct greeter_greet_call_args *a)
{
    char greeting[64];
    uint32_t core = startup()->core_id;
    snprintf(greeting, sizeof greeting, "hello, %s, from core %u", a->who, core);
    return greeter_greet_reply_send(ch, greeting, core, machine.core_node[core]);
}

static const struct greeter_handlers handlers = { .greet_call = on_greet };
static struct waitset ws;

/* One call from one client; a client that hung up (or ended) goes. */
static bool serve_client(struct ws_source *s)
{
    struct service_chan *c = s->arg;
    errval_t err = greeter_serve_one(&c->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err && err != ERR_MSG_UNKNOWN && err != ERR_MSG_MALFORMED) {
        service_chan_close(c, ERR_OK);
        free(c);
    }
    return true;
}

static void accepted(struct service_acceptor *a, struct service_chan *c)
{
    (void)a;
    service_chan_source(c, serve_client, c);
    waitset_add(&ws, &c->src);
}

static uint64_t parse_hex(const char *s)
{
    uint64_t v = 0;
    for (; *s; s++)
        v = v * 16 + (uint64_t)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
    return v;
}

static int serve(const char *name, const char *key)
{
    static struct service_acceptor acceptor;
    uint64_t service;
    errval_t rerr = ERR_OK, err = service_register_self(&service);
    if (!err && !(err = nameservice_join_rpc(&names.idl, name, parse_hex(key), service, &rerr)))
        err = rerr;
    if (err)
        return printf("greeter: cannot serve %s: %s\n", name, err_name(err)), 1;
    waitset_init(&ws);
    service_acceptor_init(&acceptor, accepted, 0);
    waitset_add(&ws, &acceptor.src);
    waitset_run(&ws);
    return 0;
}

/* -- the client ------------------------------------------------------------------ */

static int call(const char *name, uint32_t rounds)
{
    static uint8_t buf[nameservice_size_max + greeter_size_max];
    static uint64_t rt[1000];
    const char *iface, *greeting = "";
    uint64_t service;
    uint32_t core = 0, node = 0;
    uint64_t l0 = now_ns();
    errval_t rerr = ERR_OK, err = nameservice_lookup_rpc(&names.idl, name, &rerr, &iface, &service, buf, sizeof buf);
    uint64_t lookup_ns = now_ns() - l0;
    struct service_chan chan;
    if (!err && !(err = rerr))
        err = service_connect(service, &chan);
    for (uint32_t i = 0; !err && i < rounds; i++) {
        uint64_t t0 = now_ns();
        err = greeter_greet_rpc(&chan.idl, "tutorial", &greeting, &core, &node, buf, sizeof buf);
        rt[i] = now_ns() - t0;
    }
    if (err)
        return printf("greeter: %s: %s\n", name, err_name(err)), 1;
    for (uint32_t i = 1; i < rounds; i++)   /* insertion sort: a few hundred samples */
        for (uint32_t j = i; j > 0 && rt[j - 1] > rt[j]; j--) {
            uint64_t t = rt[j];
            rt[j] = rt[j - 1];
            rt[j - 1] = t;
        }
    uint32_t me = startup()->core_id;
    printf("greeter: \"%s\" (%u calls, median %llu ns)\n", greeting, rounds, (unsigned long long)rt[rounds / 2]);
    printf("@atoll {\"event\":\"greeter_call\",\"core\":%u,\"node\":%u,\"server_core\":%u,\"server_node\":%u,"
           "\"rounds\":%u,\"lookup_ns\":%llu,\"median_ns\":%llu,\"min_ns\":%llu,\"greeting\":\"%s\"}\n",
           me, machine.core_node[me], core, node, rounds, (unsigned long long)lookup_ns,
           (unsigned long long)rt[rounds / 2], (unsigned long long)rt[0], greeting);
    service_chan_close(&chan, ERR_OK);
    return 0;
}

int main(int argc, char **argv)
{
    sys_core_info(&machine);
    errval_t err = monitor_connect();
    if (!err)
        err = names_connect(&names);
    if (err)
        return printf("greeter: cannot reach the name server: %s\n", err_name(err)), 1;
    if (argc == 4 && !strcmp(argv[1], "serve"))
        return serve(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "call")) {
        uint32_t rounds = argc > 3 ? arg_number(argv[3], 100) : 100;
        return call(argv[2], rounds > 1000 ? 1000 : rounds);
    }
    printf("usage: greeter serve NAME KEY | greeter call NAME [ROUNDS]\n");
    return 2;
}
