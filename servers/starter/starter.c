/*
 * The starter: brings up the services of the boot manifest (the "services"
 * module, manifest.h) where their placement says, dependencies first, and
 * then answers `svc` (if/starter.if). Core 0's monitor starts it after the
 * name server and before the shell. docs/services.md.
 *
 * For each service it makes a group in the name server with a fresh key,
 * starts an instance on every core of the placement with the key on its
 * command line ($key), and waits until every instance has joined the group
 * (or failed to start, or a bound passed). Clients then look the service's
 * name up and get the instance nearest them (servers/names). A line of the
 * manifest that is wrong is refused with a message naming it, and so is
 * every service that needs it; the rest comes up.
 *
 * Events: manifest_refused {line, service, why}; service_up {name,
 * instances, joined, ms}; service_failed {name, why}.
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/waitset.h>
#include <if/monclient_if.h>
#include <if/nameservice_if.h>
#include <if/starter_if.h>
#include "manifest.h"

#define MAX_INSTANCES 256
#define JOIN_WAIT_MS 20000
#define MANIFEST_BYTES_MAX 16384

enum state { S_STARTING = 1, S_RUNNING, S_FAILED, S_GONE };

struct instance {
    uint16_t service;    /* index into mf.svc */
    uint16_t state;      /* enum state */
    uint32_t core;
    uint64_t domain;
    errval_t err;        /* S_FAILED: why */
    uint64_t since;      /* restarted at (now_ns); 0: started with the manifest */
};

static struct manifest mf;
static struct machine_shape shape;
static struct instance inst[MAX_INSTANCES];
static uint64_t keys[MANIFEST_MAX_SERVICES];   /* each service's group key, for restarts */
static uint32_t ninst;
static struct service_chan names;
static uint8_t replybuf[nameservice_size_max + monclient_size_max];

static const char *state_name(uint16_t s)
{
    return s == S_STARTING ? "starting" : s == S_RUNNING ? "running" : s == S_GONE ? "gone" : "failed";
}

static errval_t read_manifest(char **text, size_t *len)
{
    uint64_t size = 0, got = 0;
    errval_t err = sys_module_read("services", 8, 0, 0, 0, &size);
    if (err == ERR_NOT_FOUND) {
        *text = 0;
        *len = 0;
        return ERR_OK;   /* no manifest: nothing to start */
    }
    if (!err && size > MANIFEST_BYTES_MAX)
        err = ERR_TOO_MANY;
    char *buf = err ? 0 : malloc(size + 1);
    if (!err && !buf)
        err = ERR_NO_MEMORY;
    if (!err)
        err = sys_module_read("services", 8, 0, buf, size, &got);
    if (err) {
        free(buf);
        return err;
    }
    buf[got] = 0;
    *text = buf;
    *len = got;
    return ERR_OK;
}

static void learn_shape(void)
{
    struct core_info ci;
    sys_core_info(&ci);
    shape.ncores = ci.ncores < MANIFEST_MAX_CORES ? ci.ncores : MANIFEST_MAX_CORES;
    shape.nnodes = ci.nnodes;
    for (uint32_t c = 0; c < shape.ncores; c++)
        shape.core_node[c] = ci.core_node[c];
}

/* Which of service i's instances have joined its group: mark them. */
static uint32_t count_joined(unsigned i)
{
    const char *name = mf.svc[i].name;
    uint32_t first = 0, total = 0, count = 0, joined = 0;
    do {
        const char *text;
        errval_t rerr = ERR_OK;
        errval_t err = nameservice_instances_rpc(&names.idl, name, first, &rerr, &total, &count, &text, replybuf,
                                                 sizeof replybuf);
        if (err || rerr)
            break;
        for (const char *p = text; *p;) {
            uint32_t core = 0;
            uint64_t service = 0;
            while (*p >= '0' && *p <= '9')
                core = core * 10 + (uint32_t)(*p++ - '0');
            if (*p == ' ')
                p++;
            while (*p >= '0' && *p <= '9')
                service = service * 10 + (uint64_t)(*p++ - '0');
            while (*p && *p != '\n')
                p++;
            if (*p)
                p++;
            for (uint32_t k = 0; k < ninst; k++)
                if (inst[k].service == i && inst[k].core == core && inst[k].domain == SERVICE_DOMAIN(service) &&
                    inst[k].state == S_STARTING) {
                    inst[k].state = S_RUNNING;
                    joined++;
                }
        }
        first += count;
    } while (count && first < total);
    return joined;
}

/* Bringing the services up, one step at a time from a timer, so that the
 * starter answers `svc` and `status` meanwhile. */
static struct {
    unsigned next;          /* index into mf.order of the service being started */
    bool spawned;           /* its instances are started, we wait for them to join */
    unsigned started, joined;
    uint64_t since;
    uint64_t key;
    bool done;
} up;

/* Start service i's instance on `core`, with the group's key. */
static errval_t spawn_one(unsigned i, uint32_t core, uint64_t *domain)
{
    char cmd[MANIFEST_ARGS_MAX + MANIFEST_NAME_MAX + 16];
    errval_t rerr = ERR_OK, err = manifest_command(&mf.svc[i], &shape, core, keys[i], cmd, sizeof cmd);
    if (!err && !(err = monclient_spawn_rpc(monitor_chan(), core, cmd, 0, true, &rerr, domain)))
        err = rerr;
    return err;
}

static void spawn_instances(unsigned i)
{
    struct manifest_service *s = &mf.svc[i];
    up.since = now_ns();
    up.started = up.joined = 0;
    up.key = ((read_tsc() * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i << 56) ^ startup()->domain_id) | 1;
    keys[i] = up.key;
    errval_t rerr = ERR_OK, err = nameservice_group_rpc(&names.idl, s->name, s->program, up.key, &rerr);
    if (err || rerr) {
        printf("starter: %s: cannot make its group: %s\n", s->name, err_name(err ? err : rerr));
        return;
    }
    uint32_t cores[MANIFEST_MAX_CORES];
    unsigned n = manifest_cores(s, &shape, cores, MANIFEST_MAX_CORES);
    for (unsigned k = 0; k < n && ninst < MAX_INSTANCES; k++) {
        struct instance *x = &inst[ninst++];
        *x = (struct instance){ .service = (uint16_t)i, .state = S_STARTING, .core = cores[k], .since = 0 };
        err = spawn_one(i, cores[k], &x->domain);
        if (err) {
            x->state = S_FAILED;
            x->err = err;
            printf("starter: manifest line %u: %s on core %u: %s\n", s->line, s->name, cores[k], err_name(err));
        } else {
            up.started++;
        }
    }
}

static void service_done(unsigned i)
{
    const struct manifest_service *s = &mf.svc[i];
    if (!up.started)
        printf("@atoll {\"event\":\"service_failed\",\"name\":\"%s\",\"line\":%u}\n", s->name, s->line);
    else
        printf("@atoll {\"event\":\"service_up\",\"name\":\"%s\",\"instances\":%u,\"joined\":%u,"
               "\"placement\":\"%s\",\"ms\":%llu}\n",
               s->name, up.started, up.joined, s->placement, (unsigned long long)((now_ns() - up.since) / 1000000));
    stdout_flush();
}

/* One step: start the next service, or see whether the one started has
 * joined; true when every service is up (or given up on). */
static bool step(void)
{
    while (up.next < mf.norder) {
        unsigned i = mf.order[up.next];
        if (!up.spawned) {
            spawn_instances(i);
            up.spawned = true;
        }
        up.joined += count_joined(i);
        if (up.joined < up.started && now_ns() - up.since < JOIN_WAIT_MS * 1000000ull)
            return false;   /* look again at the next tick */
        service_done(i);
        up.next++;
        up.spawned = false;
    }
    if (!up.done) {
        up.done = true;
        printf("@atoll {\"event\":\"starter_done\",\"services\":%u,\"refused\":%u,\"instances\":%u}\n",
               mf.norder, mf.refused, ninst);
        stdout_flush();
    }
    return true;
}

static void tick(struct ws_timer *t)
{
    if (!step())
        waitset_timer_arm(t->ws, t, now_ns() + 5000000);
}

/* -- svc -------------------------------------------------------------------------- */

/* Row r of the listing: the instances, then the refused services. */
static int format_row(uint32_t r, char *out, size_t size)
{
    if (r < ninst) {
        const struct instance *x = &inst[r];
        const struct manifest_service *s = &mf.svc[x->service];
        return snprintf(out, size, "%s %s %u %llu %s%s%s\n", s->name, s->placement, x->core,
                        (unsigned long long)x->domain, state_name(x->state), x->state == S_FAILED ? " " : "",
                        x->state == S_FAILED ? err_name(x->err) : "");
    }
    r -= ninst;
    for (unsigned i = 0; i < mf.n; i++)
        if (mf.svc[i].refused && r-- == 0)
            return snprintf(out, size, "%s - - - refused: %s\n", mf.svc[i].name, mf.svc[i].why);
    return -1;
}

/* Instances now in the name server are running, the others gone (those
 * restarted less than JOIN_WAIT_MS ago are still starting). */
static void refresh_states(void)
{
    for (uint32_t k = 0; k < ninst; k++)
        if (inst[k].state == S_RUNNING)
            inst[k].state = S_STARTING;
    for (unsigned i = 0; i < mf.n; i++)
        if (!mf.svc[i].refused)
            count_joined(i);
    for (uint32_t k = 0; k < ninst; k++)
        if (inst[k].state == S_STARTING && (!inst[k].since || now_ns() - inst[k].since >= JOIN_WAIT_MS * 1000000ull))
            inst[k].state = S_GONE;
}

static errval_t on_services(struct idl_chan *ch, const struct starter_services_call_args *a)
{
    static char text[1501];
    size_t len = 0;
    uint32_t count = 0, total = ninst + mf.refused;
    text[0] = 0;
    if (a->first == 0)
        refresh_states();
    for (uint32_t r = a->first; r < total; r++) {
        int n = format_row(r, text + len, sizeof text - len);
        if (n < 0 || len + (size_t)n >= sizeof text) {
            text[len] = 0;
            break;
        }
        len += (size_t)n;
        count++;
    }
    return starter_services_reply_send(ch, ERR_OK, total, count, text);
}

static errval_t on_status(struct idl_chan *ch, const struct starter_status_call_args *a)
{
    (void)a;
    return starter_status_reply_send(ch, ERR_OK, up.done, mf.norder, mf.refused, ninst);
}

/* `svc restart NAME CORE`: a new instance where one of the placement's is gone. */
static errval_t on_restart(struct idl_chan *ch, const struct starter_restart_call_args *a)
{
    unsigned i = 0;
    while (i < mf.n && (mf.svc[i].refused || strcmp(mf.svc[i].name, a->name)))
        i++;
    if (i == mf.n || !keys[i])
        return starter_restart_reply_send(ch, ERR_NOT_FOUND, 0);
    uint32_t cores[MANIFEST_MAX_CORES];
    unsigned n = manifest_cores(&mf.svc[i], &shape, cores, MANIFEST_MAX_CORES), k = 0;
    while (k < n && cores[k] != a->core)
        k++;
    if (k == n)
        return starter_restart_reply_send(ch, ERR_NO_SUCH_CORE, 0);
    refresh_states();
    for (uint32_t x = 0; x < ninst; x++)
        if (inst[x].service == i && inst[x].core == a->core && (inst[x].state == S_RUNNING || inst[x].state == S_STARTING))
            return starter_restart_reply_send(ch, ERR_DUPLICATE, inst[x].domain);
    if (ninst == MAX_INSTANCES)
        return starter_restart_reply_send(ch, ERR_TOO_MANY, 0);
    struct instance *x = &inst[ninst];
    *x = (struct instance){ .service = (uint16_t)i, .state = S_STARTING, .core = a->core, .since = now_ns() };
    errval_t err = spawn_one(i, a->core, &x->domain);
    if (err)
        return starter_restart_reply_send(ch, err, 0);
    ninst++;
    printf("@atoll {\"event\":\"service_restarted\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu}\n", a->name,
           a->core, (unsigned long long)x->domain);
    return starter_restart_reply_send(ch, ERR_OK, x->domain);
}

static const struct starter_handlers handlers = { .services_call = on_services, .status_call = on_status,
                                                  .restart_call = on_restart };
static struct waitset ws;

static bool serve_client(struct ws_source *src)
{
    struct service_chan *c = src->arg;
    errval_t err = starter_serve_one(&c->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err && err != ERR_MSG_UNKNOWN && err != ERR_MSG_MALFORMED && err != ERR_MSG_TOO_LONG) {
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

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char *text = 0;
    size_t len = 0;
    uint64_t service;
    const char *step = "reach the monitor";
    errval_t rerr = ERR_OK, err = monitor_connect();
    if (!err && (step = "reach the name server"))
        err = names_connect(&names);
    if (!err && (step = "read the manifest"))
        err = read_manifest(&text, &len);
    if (err) {
        printf("starter: cannot %s: %s\n", step, err_name(err));
        return 1;
    }
    learn_shape();
    manifest_parse(text ? text : "", len, &shape, &mf);
    free(text);
    for (unsigned i = 0; i < mf.n; i++)
        if (mf.svc[i].refused) {
            printf("starter: manifest %s\n", mf.svc[i].why);
            printf("@atoll {\"event\":\"manifest_refused\",\"line\":%u,\"service\":\"%s\",\"why\":\"%s\"}\n",
                   mf.svc[i].line, mf.svc[i].name, mf.svc[i].why);
        }
    /* `svc` first (a service of our own named "starter"), so that it
     * answers while the services come up. */
    err = service_register_self(&service);
    if (!err && !(err = nameservice_register_rpc(&names.idl, "starter", "starter", service, &rerr)))
        err = rerr;
    if (err) {
        printf("starter: cannot serve svc: %s\n", err_name(err));
        return 1;
    }
    static struct service_acceptor acceptor;
    static struct ws_timer stepper = { .fire = tick };
    waitset_init(&ws);
    service_acceptor_init(&acceptor, accepted, 0);
    waitset_add(&ws, &acceptor.src);
    waitset_timer_arm(&ws, &stepper, now_ns());
    waitset_run(&ws);
    return 0;
}
