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
 * It is also the restart service (docs/restart.md): an instance that ends
 * (its heartbeat channel hangs up, or its monitor no longer lists it) or
 * hangs (no heartbeat for HEARTBEAT_HANG_MS) is started again on the same
 * core (the nearest live core if that one is gone), under its service's
 * policy (restart=, backoff=), with the same group key, so it joins the
 * same group and clients find it by the same name. The shell's `svc
 * restart NAME CORE` (rpc restart) uses the same restart, at once, with
 * the failed starts in a row forgotten.
 *
 * Events: manifest_refused {line, service, why}; service_up {name,
 * instances, joined, ms}; service_failed {name, why}; service_ended {name,
 * core, domain, why}; service_restarted {name, core, old, domain, why,
 * restarts, failed_in_row}; restart_limit {name, core, failed_in_row,
 * limit}; fault_injected {name, core, domain, kind}.
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <atoll/waitset.h>
#include <if/monclient_if.h>
#include <if/nameservice_if.h>

#include <if/starter_if.h>
#include "manifest.h"
#include "starter.h"

/* A group kept for every service, and the starter's own name. */
_Static_assert(MANIFEST_MAX_SERVICES + 1 <= NAMES_KEPT, "the starter cannot keep a group for every service");

#define JOIN_WAIT_MS 20000
#define MANIFEST_BYTES_MAX 16384

/* A hang verdict on an instance of a server with state is held back while
 * its group needs it (hang_held), at most this long. */
#define HANG_HOLD_MS 20000

/* A domain its monitor does not list is looked for this often (one
 * without a heartbeat channel: it has not connected yet, or never will).
 * Each look is a call to its core's monitor; a restarted instance beats
 * within a few hundred ms, and looking every 200 ms made these looks the
 * restart service's largest cost in a campaign (docs/faults.md, Speed):
 * an instance that ends before its first beat is seen within a second. */
#define PS_POLL_NS 1000000000ull
#define WATCH_NS 20000000ull
/* The back-off doubles with each failed start in a row, up to this. */
#define BACKOFF_CAP_MS 10000

struct manifest mf;
struct starter_profile prof;
static struct machine_shape shape;
struct instance inst[MAX_INSTANCES];
uint32_t ninst;
uint64_t starter_service;
bool stateful[MANIFEST_MAX_SERVICES];
static uint64_t keys[MANIFEST_MAX_SERVICES];   /* each group's key, to start instances again */
/* The service's instances beat (heartbeat=yes, or one of them has): an
 * instance with no first beat HEARTBEAT_HANG_MS after its start is hung. */
static bool beats[MANIFEST_MAX_SERVICES];
/* The program a live update put in place of the manifest's (restarts use it). */
static char program_of[MANIFEST_MAX_SERVICES][MANIFEST_NAME_MAX];

/* The command line of instance x: the manifest's, with the program a live
 * update installed, and ` update` at the end for a new version on trial. */
static errval_t instance_command(const struct instance *x, const char *program, bool update, char *cmd, size_t size)
{
    const struct manifest_service *s = &mf.svc[x->service];
    char base[MANIFEST_ARGS_MAX + MANIFEST_NAME_MAX + 16];
    /* Every start but the first (a restart, a new version on trial): $life >= 1. */
    errval_t err = manifest_command(s, &shape, x->core, keys[x->service], x->restarts + 1, base, sizeof base);
    if (err)
        return err;
    const char *args = base + strlen(s->program);   /* "" or " args..." */
    if (!program)
        program = program_of[x->service][0] ? program_of[x->service] : s->program;
    int n = snprintf(cmd, size, "%s%s%s", program, args, update ? " update" : "");
    return n < 0 || (size_t)n >= size ? ERR_MSG_TOO_LONG : ERR_OK;
}
static uint8_t replybuf[nameservice_size_max + monclient_size_max];

static const char *state_name(uint16_t s)
{
    return s == S_STARTING     ? "starting"
           : s == S_RUNNING    ? "running"
           : s == S_GONE       ? "gone"
           : s == S_RESTARTING ? "restarting"
                               : "failed";
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

/* The two leading numbers of a line of text ("core service ...", "core id
 * ..."), and where the next line starts. */
static const char *line_numbers(const char *p, uint64_t *a, uint64_t *b, const char **rest)
{
    *a = *b = 0;
    while (*p == ' ')
        p++;
    while (*p >= '0' && *p <= '9')
        *a = *a * 10 + (uint64_t)(*p++ - '0');
    while (*p == ' ')
        p++;
    while (*p >= '0' && *p <= '9')
        *b = *b * 10 + (uint64_t)(*p++ - '0');
    while (*p == ' ')
        p++;
    *rest = p;
    while (*p && *p != '\n')
        p++;
    return *p ? p + 1 : p;
}

/* Which of service i's instances have joined its group: mark them. */
static uint32_t count_joined(unsigned i)
{
    uint64_t t0 = now_ns();
    const char *name = mf.svc[i].name;
    uint32_t first = 0, total = 0, count = 0, joined = 0;
    do {
        const char *text;
        errval_t rerr = ERR_OK;
        struct idl_chan *ns = names_idl();
        errval_t err = ns ? nameservice_instances_rpc(ns, name, first, &rerr, &total, &count, &text, replybuf,
                                                      sizeof replybuf)
                          : ERR_CHAN_CLOSED;
        if (err || rerr)
            break;
        for (const char *p = text, *rest; *p;) {
            uint64_t core, service;
            p = line_numbers(p, &core, &service, &rest);
            for (uint32_t k = 0; k < ninst; k++)
                if (inst[k].service == i && inst[k].core == core && inst[k].domain == SERVICE_DOMAIN(service) &&
                    inst[k].state == S_STARTING) {
                    inst[k].state = S_RUNNING;
                    inst[k].service_id = service;
                    joined++;
                }
        }
        first += count;
    } while (count && first < total);
    prof.joins++;
    prof.join_ns += now_ns() - t0;
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

static errval_t spawn_near(struct instance *x, const char *cmd, uint64_t *domain);

static void spawn_instances(unsigned i)
{
    struct manifest_service *s = &mf.svc[i];
    up.since = now_ns();
    up.started = up.joined = 0;
    up.key = ((read_tsc() * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i << 56) ^ startup()->domain_id) | 1;
    keys[i] = up.key;
    /* Kept: made again after a restart of the name server. */
    errval_t err = names_keep_group(s->name, s->program, up.key);
    if (err) {
        printf("starter: %s: cannot make its group: %s\n", s->name, err_name(err));
        return;
    }
    uint32_t cores[MANIFEST_MAX_CORES];
    unsigned n = manifest_cores(s, &shape, cores, MANIFEST_MAX_CORES);
    for (unsigned k = 0; k < n && ninst < MAX_INSTANCES; k++) {
        struct instance *x = &inst[ninst++];
        char cmd[MANIFEST_ARGS_MAX + MANIFEST_NAME_MAX + 16];
        *x = (struct instance){ .service = (uint16_t)i, .state = S_STARTING, .core = cores[k], .started_ns = now_ns() };
        err = manifest_command(s, &shape, cores[k], up.key, 0, cmd, sizeof cmd);
        if (!err)
            err = spawn_near(x, cmd, &x->domain);   /* a core that is down: the nearest live one */
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
        /* Wait while an instance is starting (or, after it ended at once,
         * starting again), up to JOIN_WAIT_MS. */
        bool waiting = false;
        for (uint32_t k = 0; k < ninst; k++)
            waiting |= inst[k].service == i && (inst[k].state == S_STARTING || inst[k].state == S_RESTARTING);
        if (waiting && now_ns() - up.since < JOIN_WAIT_MS * 1000000ull)
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

/* -- the restart service ------------------------------------------------------------- */

static struct core_info machine;

/* Look through `core`'s domains (its monitor's `ps`) for domain `id`, or,
 * with a `name`, for a live domain of that program: ERR_OK with *found, or
 * ERR_NOT_FOUND (a stopped domain never runs again: it has ended). */
errval_t ps_find(uint32_t core, uint64_t id, const char *name, uint64_t *found)
{
    static char text[3001];
    const char *t;
    uint64_t t0 = now_ns();
    errval_t rerr = ERR_OK, err = monclient_ps_rpc(monitor_chan(), core, &rerr, &t, replybuf, sizeof replybuf);
    prof.ps++;
    prof.ps_ns += now_ns() - t0;
    if (err || rerr)
        return err ? err : rerr;
    size_t n = strnlen(t, sizeof text - 1), namelen = name ? strlen(name) : 0;
    memcpy(text, t, n);
    text[n] = 0;
    /* Rows: "%4u %4u  %-10s %8s ...": core, id, program, state. */
    for (const char *p = text, *line; *p;) {
        uint64_t c, d;
        const char *next = line_numbers(p, &c, &d, &line);
        bool named = name && !strncmp(line, name, namelen) && line[namelen] == ' ';
        bool stopped = false;
        for (const char *q = line; q + 8 <= next; q++)
            if (!strncmp(q, " stopped", 8))
                stopped = true;
        p = next;
        if (c == core && !stopped && (name ? named : d == id)) {
            *found = d;
            return ERR_OK;
        }
    }
    return ERR_NOT_FOUND;
}

/* Is domain `id` still on `core`? (True also when its monitor cannot be
 * asked, but not when the core is down: a core fenced as dead runs
 * nothing, fence.c. *dead says which.) We do not restart what we cannot see. */
static bool still_listed(uint32_t core, uint64_t id, bool *dead)
{
    uint64_t found;
    errval_t err = ps_find(core, id, 0, &found);
    if (dead)
        *dead = err == ERR_CORE_DOWN;
    return err != ERR_NOT_FOUND && err != ERR_CORE_DOWN;
}

static void instance_ended(struct instance *x, const char *why);

/* The core to start instance x on again: its own, or, if its monitor does
 * not answer, the nearest (by SLIT distance) core that does. */
static errval_t spawn_near(struct instance *x, const char *cmd, uint64_t *domain)
{
    uint64_t t0 = now_ns();
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(monitor_chan(), x->core, cmd, 0, true, 0, &rerr, domain);
    prof.spawns++;
    prof.spawn_ns += now_ns() - t0;
    if (!err)
        err = rerr;
    if (err != ERR_CORE_DOWN && err != ERR_NO_ROUTE && err != ERR_TIMEOUT)
        return err;
    /* Nearest first: by SLIT distance from the core's node, then by core number. */
    uint32_t from = machine.core_node[x->core], last = 0;
    for (uint32_t tried = 0; tried + 1 < machine.ncores && tried < CORE_INFO_MAX_CORES; tried++) {
        uint32_t best = ~0u, best_core = 0;
        for (uint32_t c = 0; c < machine.ncores && c < CORE_INFO_MAX_CORES; c++) {
            uint32_t rank = machine.node_distance[from][machine.core_node[c]] * 1024u + c;
            if (c != x->core && (!tried || rank > last) && rank < best)
                best = rank, best_core = c;
        }
        if (best == ~0u)
            break;
        last = best;
        err = monclient_spawn_rpc(monitor_chan(), best_core, cmd, 0, true, 0, &rerr, domain);
        if (!err && !(err = rerr)) {
            printf("starter: core %u is down; %s moves to core %u\n", x->core, mf.svc[x->service].name, best_core);
            printf("@atoll {\"event\":\"service_moved\",\"name\":\"%s\",\"from\":%u,\"to\":%u,\"domain\":%llu}\n",
                   mf.svc[x->service].name, x->core, best_core, (unsigned long long)*domain);
            x->core = best_core;
            return ERR_OK;
        }
    }
    return err;
}

static void restart(struct instance *x, const char *by)
{
    const struct manifest_service *s = &mf.svc[x->service];
    char cmd[MANIFEST_ARGS_MAX + MANIFEST_NAME_MAX + 16];
    uint64_t old = x->domain, domain = 0;
    errval_t err = instance_command(x, 0, false, cmd, sizeof cmd);
    if (!err)
        err = spawn_near(x, cmd, &domain);
    x->restart_at_ns = 0;
    if (err) {
        x->state = S_FAILED;
        x->err = err;
        printf("starter: %s on core %u: cannot start it again: %s\n", s->name, x->core, err_name(err));
        return;
    }
    x->restarts++;
    x->domain = domain;
    x->state = S_STARTING;
    x->hb = 0;
    x->started_ns = x->polled_ns = now_ns();
    x->killed_hung = x->killed_injected = x->recovered = x->hang_kept = false;
    printf("@atoll {\"event\":\"service_restarted\",\"name\":\"%s\",\"core\":%u,\"old\":%llu,\"domain\":%llu,"
           "\"restarts\":%u,\"failed_in_row\":%u,\"down_ms\":%llu,\"by\":\"%s\"}\n",
           s->name, x->core, (unsigned long long)old, (unsigned long long)domain, x->restarts, x->failed_in_row,
           (unsigned long long)((now_ns() - x->ended_ns) / 1000000), by);
    stdout_flush();
}

/* Instance x ended (why: "ended", "hang", "injected"): start it again after
 * its back-off, unless its policy says no more. */
static void instance_ended(struct instance *x, const char *why)
{
    const struct manifest_service *s = &mf.svc[x->service];
    if (x->state != S_STARTING && x->state != S_RUNNING)
        return;
    bool failed_start = x->state == S_STARTING;   /* it never joined its group */
    x->failed_in_row = failed_start ? x->failed_in_row + 1 : 0;
    x->ended_ns = now_ns();
    if (x->hb)
        x->hb->inst = -1;
    x->hb = 0;
    campaign_instance_ended(x);
    if (x->updating) {
        x->state = S_GONE;   /* a new version that failed its trial: the update rolls back */
        printf("@atoll {\"event\":\"update_candidate_ended\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,"
               "\"why\":\"%s\"}\n", s->name, x->core, (unsigned long long)x->domain, why);
        return;
    }
    printf("@atoll {\"event\":\"service_ended\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,\"why\":\"%s\","
           "\"joined\":%s}\n",
           s->name, x->core, (unsigned long long)x->domain, why, failed_start ? "false" : "true");
    if (!s->restart_limit) {
        x->state = S_GONE;   /* restart=0: never started again */
    } else if (x->failed_in_row > s->restart_limit) {
        x->state = S_FAILED;
        x->err = ERR_TOO_MANY;
        printf("starter: %s on core %u failed to start %u times in a row (restart=%u): not started again\n",
               s->name, x->core, x->failed_in_row, s->restart_limit);
        printf("@atoll {\"event\":\"restart_limit\",\"name\":\"%s\",\"core\":%u,\"failed_in_row\":%u,"
               "\"limit\":%u}\n",
               s->name, x->core, x->failed_in_row, s->restart_limit);
    } else {
        uint64_t ms = s->backoff_ms;
        for (uint32_t k = 0; k < x->failed_in_row && ms < BACKOFF_CAP_MS; k++)
            ms *= 2;
        if (ms > BACKOFF_CAP_MS)
            ms = BACKOFF_CAP_MS;
        x->state = S_RESTARTING;
        x->restart_at_ns = now_ns() + ms * 1000000ull;
    }
    stdout_flush();
}

static struct instance *instance_of(uint32_t core, uint64_t domain)
{
    for (uint32_t k = 0; k < ninst; k++)
        if (inst[k].core == core && inst[k].domain == domain &&
            (inst[k].state == S_STARTING || inst[k].state == S_RUNNING))
            return &inst[k];
    return 0;
}

static void update_step(uint64_t now);

/* Instance x of a server with state is back and holds it (a majority of
 * such instances is what its group needs to go on). */
static bool holds_state(const struct instance *x, uint64_t now)
{
    return x->state == S_RUNNING && x->hb && x->recovered && !x->killed_hung && !x->updating &&
           now - x->last_beat_ns <= HEARTBEAT_HANG_MS * 1000000ull;
}

/* Instance x of a server with state sent no beat for HEARTBEAT_HANG_MS:
 * end it now, or hold the verdict back? A replicated server goes on while
 * a majority of its replicas hold the state; ending x loses what x holds
 * (it comes back empty and must catch up from a leader before it votes,
 * store.md). If the others that hold it are fewer than a majority, x may
 * be one the group needs: a slow replica (a starved vCPU on a loaded host
 * goes seconds without running), not a dead one, and ending it then can
 * leave the group with no majority that can elect a leader, for good. The
 * 10,000-fault campaign lost its store so: a kill of one replica met this
 * verdict on another. Held back, a slow replica beats again and nothing is
 * lost; a hung one is ended HANG_HOLD_MS later (it votes for nothing
 * meanwhile, so waiting costs the group nothing it had). */
static bool hang_held(struct instance *x, uint64_t now)
{
    if (!stateful[x->service] || now - x->last_beat_ns > (HEARTBEAT_HANG_MS + HANG_HOLD_MS) * 1000000ull)
        return false;
    uint32_t n = 0, holding = 0;
    for (uint32_t k = 0; k < ninst; k++) {
        const struct instance *y = &inst[k];
        if (y->service != x->service || y->updating || y->state == S_GONE || y->state == S_FAILED)
            continue;
        n++;
        holding += y != x && holds_state(y, now);
    }
    if (n < 2 || holding >= n / 2 + 1)
        return false;   /* alone (nothing to keep a majority of), or the others are a majority */
    if (!x->hang_kept)
        printf("@atoll {\"event\":\"service_hang_held\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,"
               "\"silent_ms\":%llu,\"holding\":%u,\"instances\":%u}\n",
               mf.svc[x->service].name, x->core, (unsigned long long)x->domain,
               (unsigned long long)((now - x->last_beat_ns) / 1000000), holding, n);
    x->hang_kept = true;
    return true;
}

/* Every WATCH_NS: hangs, ends not seen on a heartbeat channel, restarts
 * due, and restarted instances that joined. */
static void watch(struct ws_timer *t)
{
    uint64_t now = now_ns();
    prof.ticks++;
    bool joining[MANIFEST_MAX_SERVICES] = { 0 };
    for (uint32_t k = 0; k < ninst; k++) {
        struct instance *x = &inst[k];
        if (x->state == S_RESTARTING && now >= x->restart_at_ns)
            restart(x, "starter");
        if (x->state != S_STARTING && x->state != S_RUNNING)
            continue;
        if (x->hb && now - x->last_beat_ns > HEARTBEAT_HANG_MS * 1000000ull && !x->killed_hung) {
            if (!hang_held(x, now)) {   /* never for one instance alone (models/restart.pml's case) */
                errval_t rerr = ERR_OK, err = monclient_kill_rpc(monitor_chan(), x->core, x->domain, &rerr);
                printf("starter: %s on core %u (domain %llu) sent no heartbeat for %u ms: ended (%s)\n",
                       mf.svc[x->service].name, x->core, (unsigned long long)x->domain, HEARTBEAT_HANG_MS,
                       err_name(err ? err : rerr));
                x->killed_hung = true;   /* its channel's hang-up follows */
            }
        } else if (!x->hb && !x->killed_hung && (beats[x->service] || mf.svc[x->service].heartbeat) &&
                   now > x->started_ns && now - x->started_ns > HEARTBEAT_HANG_MS * 1000000ull) {
            /* Hung before its first beat (at start, or never got going). */
            errval_t rerr = ERR_OK, err = monclient_kill_rpc(monitor_chan(), x->core, x->domain, &rerr);
            printf("starter: %s on core %u (domain %llu) sent no first heartbeat in %u ms: ended (%s)\n",
                   mf.svc[x->service].name, x->core, (unsigned long long)x->domain, HEARTBEAT_HANG_MS,
                   err_name(err ? err : rerr));
            printf("@atoll {\"event\":\"service_hung\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,\"first_beat\":false,"
                   "\"ms\":%llu}\n",
                   mf.svc[x->service].name, x->core, (unsigned long long)x->domain,
                   (unsigned long long)((now - x->started_ns) / 1000000));
            x->killed_hung = true;
            x->polled_ns = 0;   /* its end is seen by the ps watch */
        } else if (!x->hb && now - x->polled_ns > PS_POLL_NS) {
            bool dead = false;
            x->polled_ns = now;
            if (!still_listed(x->core, x->domain, &dead))
                instance_ended(x, dead ? "core_dead" : x->killed_hung ? "hang" : "ended");
        }
        if (x->state == S_STARTING && up.done)
            joining[x->service] = true;
    }
    for (unsigned i = 0; i < mf.n; i++)
        if (joining[i])
            count_joined(i);
    update_step(now);
    campaign_step(now);
    uint64_t end = now_ns();
    prof.watch_ns += end - now;
    /* The next tick WATCH_NS after this one began, or at once if it took
     * longer (a tick never waits behind its own work). */
    waitset_timer_arm(t->ws, t, now + WATCH_NS);
}

static errval_t on_beat(struct idl_chan *ch, const struct starter_beat_args *a)
{
    (void)a;
    struct client *c = ch->user;
    if (c->inst < 0) {
        struct instance *x = instance_of(c->sc->peer_core, c->sc->peer);
        if (!x)
            return ERR_OK;   /* not one of ours (or one we gave up on) */
        c->inst = (int)(x - inst);
        x->hb = c;
        beats[x->service] = true;
    }
    struct instance *x = &inst[c->inst];
    uint64_t now = now_ns();
    if (x->hang_kept) {   /* slow, not dead: it goes on with its state */
        printf("@atoll {\"event\":\"service_hang_over\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,"
               "\"silent_ms\":%llu}\n",
               mf.svc[x->service].name, x->core, (unsigned long long)x->domain,
               (unsigned long long)((now - x->last_beat_ns) / 1000000));
        x->hang_kept = false;
    }
    x->last_beat_ns = now;
    return ERR_OK;
}

/* A server with state holds it again (if/starter.if `recovered`). */
static errval_t on_recovered(struct idl_chan *ch, const struct starter_recovered_args *a)
{
    struct client *c = ch->user;
    if (c->inst < 0)
        return ERR_OK;   /* it beats first (heartbeat_start), so this is not one of ours */
    inst[c->inst].recovered = a->holds;
    stateful[inst[c->inst].service] = true;
    return ERR_OK;
}

static errval_t on_campaign(struct idl_chan *ch, const struct starter_campaign_call_args *a)
{
    errval_t err = campaign_start(ch->user, a->faults, a->seed, a->pace_ms, a->kinds);
    return err ? starter_campaign_reply_send(ch, err, 0, 0, 0, 0, 0) : ERR_OK;   /* else answered at its end */
}

/* A channel hung up: if an instance beat on it, that instance most likely
 * ended (its monitor hangs up every channel of a domain that ends). But a
 * live instance may break its own end (a wild write into the channel's
 * frame): starting another beside it would make two. So it must be gone
 * from its monitor's list first; if it is not, it is ended now, and the
 * `ps` watch sees it go. */
static void client_lost(struct client *c)
{
    if (c->inst < 0)
        return;
    struct instance *x = &inst[c->inst];
    x->hb = 0;
    c->inst = -1;
    bool dead = false;
    if (still_listed(x->core, x->domain, &dead)) {
        errval_t rerr = ERR_OK, err = monclient_kill_rpc(monitor_chan(), x->core, x->domain, &rerr);
        printf("starter: %s on core %u (domain %llu) broke its heartbeat channel: ended (%s)\n",
               mf.svc[x->service].name, x->core, (unsigned long long)x->domain, err_name(err ? err : rerr));
        x->polled_ns = 0;   /* look for its end at the next watch */
        return;
    }
    instance_ended(x, dead ? "core_dead" : x->killed_hung ? "hang" : x->killed_injected ? "injected" : "ended");
}

/* -- fault injection (the shell's `fault`, tools/inject) ----------------------------- */

errval_t inject(const char *name, uint32_t core, uint32_t kind, uint64_t seed, uint64_t *domain)
{
    if (!strcmp(name, "names") && core == 0 && kind == FAULT_KILL) {
        /* The name server: not ours (core 0's monitor restarts it), but it
         * is a server to hit like any other. */
        errval_t rerr = ERR_OK, err = ps_find(0, 0, "names", domain);
        if (!err && !(err = monclient_kill_rpc(monitor_chan(), 0, *domain, &rerr)))
            err = rerr;
        return err;
    }
    struct instance *x = 0;
    for (uint32_t k = 0; k < ninst && !x; k++)
        if (!strcmp(mf.svc[inst[k].service].name, name) && inst[k].core == core &&
            (inst[k].state == S_RUNNING || inst[k].state == S_STARTING))
            x = &inst[k];
    if (!x)
        return ERR_NOT_FOUND;
    if (kind == 0 || kind >= FAULT_KINDS)
        return ERR_INVALID_ARG;
    *domain = x->domain;
    errval_t err = ERR_OK, rerr = ERR_OK;
    if (kind == FAULT_KILL) {
        x->killed_injected = true;
        err = monclient_kill_rpc(monitor_chan(), x->core, x->domain, &rerr);
        err = err ? err : rerr;
    } else if (kind == FAULT_GARBLE) {
        /* A message of random bytes on a fresh channel to the instance:
         * its decoder must refuse it (or hang up on us), nothing more. */
        /* Its service as seen when it joined (count_joined), else asked
         * of the name server (a campaign's garbles cost one call less). */
        uint64_t service = x->service_id && SERVICE_DOMAIN(x->service_id) == x->domain ? x->service_id : 0;
        struct service_chan sc;
        uint8_t junk[96];
        for (size_t i = 0; i < sizeof junk; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            junk[i] = (uint8_t)(seed >> 56);
        }
        if (!service) {
            uint32_t first = 0, total = 0, count = 0;
            const char *text;
            errval_t r2 = ERR_OK;
            struct idl_chan *ns = names_idl();
            err = ns ? nameservice_instances_rpc(ns, name, first, &r2, &total, &count, &text, replybuf,
                                                 sizeof replybuf)
                     : ERR_CHAN_CLOSED;
            err = err ? err : r2;
            for (const char *p = err ? "" : text, *rest; *p && !service;) {
                uint64_t c, sv;
                p = line_numbers(p, &c, &sv, &rest);
                if (c == core && SERVICE_DOMAIN(sv) == x->domain)
                    service = sv;
            }
        }
        if (!err && !service)
            err = ERR_NOT_FOUND;   /* not joined (yet) */
        if (!err && !(err = service_connect_wait(service, &sc, 100))) {
            err = urpc_send(&sc.ch, junk, 4 + (seed & 63), URPC_NONBLOCK);
            sys_notify_wait(sys_notify_gen(), 2000, 0);   /* let it read before we hang up */
            service_chan_close(&sc, ERR_OK);
        }
    } else {
        if (!x->hb)
            return ERR_WOULD_BLOCK;   /* not beating yet: nothing to send it on */
        err = starter_fault_send(&x->hb->sc->idl, kind, seed);
    }
    return err;
}

/* Every fault asked for is an event, injected (err ERR_OK) or not (say
 * ERR_NOT_FOUND: the instance is being restarted; ERR_WOULD_BLOCK: it
 * has not beaten yet, so a fault cannot be sent to it). */
static errval_t on_inject(struct idl_chan *ch, const struct starter_inject_call_args *a)
{
    uint64_t domain = 0;
    errval_t err = inject(a->name, a->core, a->kind, a->seed, &domain);
    printf("@atoll {\"event\":\"fault_injected\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,\"kind\":\"%s\","
           "\"err\":\"%s\"}\n",
           a->name, a->core, (unsigned long long)domain, fault_name(a->kind), err_name(err));
    stdout_flush();
    return starter_inject_reply_send(ch, err, domain);
}

/* -- live update (`svc update NAME PROGRAM`, docs/restart.md) ------------------------ */

/* Each step of an instance's update waits at most this long: the old
 * version's state, then the new one's first beat and import, then its
 * joining its group (the health check). Past it, the update rolls back. */
#define UPDATE_STEP_MS 10000

enum update_step { U_NEXT = 1, U_EXPORT, U_IMPORT, U_HEALTH };

static struct {
    bool on;
    unsigned service;
    char program[MANIFEST_NAME_MAX];
    struct client *shell;            /* answered when done (0: it went away) */
    enum update_step step;
    uint32_t next;                   /* instances before it are done */
    int old, fresh;                  /* the instance being replaced, its new version (-1: none) */
    uint64_t since, t0;
    uint32_t tag;
    bool got_state, import_sent, got_import;
    errval_t state_err, import_err;
    uint32_t version, new_version, len, updated;
    uint8_t state[UPDATE_STATE_MAX];
} upd;

static void update_finish(errval_t err)
{
    if (upd.shell)
        starter_update_reply_send(&upd.shell->sc->idl, err, upd.updated, upd.new_version);
    if (upd.updated && !err)
        memcpy(program_of[upd.service], upd.program, sizeof upd.program);
    upd.on = false;
    stdout_flush();
}

/* Drop the new version's record (it was appended last, unless a restart
 * appended since: then it stays, as gone). */
static void forget_fresh(void)
{
    if (upd.fresh >= 0 && (uint32_t)upd.fresh == ninst - 1 && inst[upd.fresh].state == S_GONE)
        ninst--;
    upd.fresh = -1;
}

/* The instance being updated keeps running: the new version (if any) is
 * ended, the old one serves again. */
static void update_roll_back(errval_t why)
{
    struct instance *x = &inst[upd.old];
    if (upd.fresh >= 0) {
        struct instance *y = &inst[upd.fresh];
        if (y->state == S_STARTING || y->state == S_RUNNING) {
            errval_t rerr = ERR_OK;
            monclient_kill_rpc(monitor_chan(), y->core, y->domain, &rerr);
            if (y->hb)
                y->hb->inst = -1;
            y->hb = 0;
            y->state = S_GONE;
        }
        forget_fresh();
    }
    if (x->hb)
        starter_resume_send(&x->hb->sc->idl, upd.tag);
    printf("starter: update of %s on core %u to %s rolled back: %s\n", mf.svc[upd.service].name, x->core,
           upd.program, err_name(why));
    printf("@atoll {\"event\":\"update_rolled_back\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,\"program\":\"%s\","
           "\"error\":\"%s\"}\n",
           mf.svc[upd.service].name, x->core, (unsigned long long)x->domain, upd.program, err_name(why));
    update_finish(why);
}

/* The new version passed: the old one ends, the new one takes its record
 * (svc shows the same row with the new domain). */
static void update_done(uint64_t now)
{
    struct instance *x = &inst[upd.old], *y = &inst[upd.fresh];
    uint64_t old = x->domain;
    if (x->hb)
        x->hb->inst = -1;   /* its hang-up is not an end to restart */
    errval_t rerr = ERR_OK, err = monclient_kill_rpc(monitor_chan(), x->core, old, &rerr);
    x->domain = y->domain;
    x->hb = y->hb;
    if (x->hb)
        x->hb->inst = upd.old;
    x->state = y->state;
    x->last_beat_ns = y->last_beat_ns;
    x->started_ns = y->started_ns;
    x->failed_in_row = 0;
    x->killed_hung = x->killed_injected = false;
    y->hb = 0;
    y->state = S_GONE;
    forget_fresh();
    upd.updated++;
    printf("@atoll {\"event\":\"service_updated\",\"name\":\"%s\",\"core\":%u,\"old\":%llu,\"domain\":%llu,"
           "\"program\":\"%s\",\"from_version\":%u,\"version\":%u,\"state_bytes\":%u,\"ms\":%llu,\"old_end\":\"%s\"}\n",
           mf.svc[upd.service].name, x->core, (unsigned long long)old, (unsigned long long)x->domain, upd.program,
           upd.version, upd.new_version, upd.len, (unsigned long long)((now - upd.t0) / 1000000),
           err_name(err ? err : rerr));
    upd.next = (uint32_t)upd.old + 1;
    upd.step = U_NEXT;
}

/* One step of the update in progress (from the watch timer). */
static void update_step(uint64_t now)
{
    if (!upd.on)
        return;
    bool late = now - upd.since > UPDATE_STEP_MS * 1000000ull;
    if (upd.step == U_NEXT) {
        uint32_t k = upd.next;
        while (k < ninst && !(inst[k].service == upd.service && inst[k].state == S_RUNNING && inst[k].hb))
            k++;
        if (k >= ninst) {
            update_finish(upd.updated ? ERR_OK : ERR_NOT_FOUND);
            return;
        }
        upd.old = (int)k;
        upd.fresh = -1;
        upd.tag++;
        upd.got_state = upd.import_sent = upd.got_import = false;
        upd.since = upd.t0 = now;
        upd.step = U_EXPORT;
        errval_t err = starter_state_export_send(&inst[k].hb->sc->idl, upd.tag);
        if (err)
            update_roll_back(err);
        return;
    }
    struct instance *x = &inst[upd.old];
    if (x->state != S_RUNNING || !x->hb) {
        /* The old version ended meanwhile: its restart (by policy) uses the
         * manifest's program; this update stops here. */
        if (upd.fresh >= 0)
            update_roll_back(ERR_DOMAIN_ENDED);
        else
            update_finish(ERR_DOMAIN_ENDED);
        return;
    }
    if (upd.step == U_EXPORT) {
        if (!upd.got_state) {
            if (late)
                update_roll_back(ERR_TIMEOUT);
            return;
        }
        if (upd.state_err) {
            update_roll_back(upd.state_err);
            return;
        }
        /* The new version, on the same core, with the same command line. */
        if (ninst >= MAX_INSTANCES) {
            update_roll_back(ERR_TOO_MANY);
            return;
        }
        char cmd[MANIFEST_ARGS_MAX + MANIFEST_NAME_MAX + 16];
        struct instance *y = &inst[ninst];
        *y = (struct instance){ .service = x->service, .state = S_STARTING, .core = x->core, .started_ns = now,
                                .polled_ns = now, .updating = true };
        uint64_t domain = 0;
        errval_t rerr = ERR_OK, err = instance_command(x, upd.program, true, cmd, sizeof cmd);
        if (!err && !(err = monclient_spawn_rpc(monitor_chan(), x->core, cmd, 0, true, 0, &rerr, &domain)))
            err = rerr;
        if (err) {
            update_roll_back(err);   /* not a program, not an image, no room: the old one goes on */
            return;
        }
        y->domain = domain;
        upd.fresh = (int)ninst++;
        upd.since = now;
        upd.step = U_IMPORT;
        return;
    }
    struct instance *y = &inst[upd.fresh];
    if (y->state != S_STARTING && y->state != S_RUNNING) {
        update_roll_back(upd.import_sent && upd.got_import && upd.import_err ? upd.import_err : ERR_DOMAIN_ENDED);
        return;
    }
    if (upd.step == U_IMPORT) {
        if (y->hb && !upd.import_sent) {
            errval_t err = starter_state_import_send(&y->hb->sc->idl, upd.tag, upd.version, upd.state, upd.len);
            if (err) {
                update_roll_back(err);
                return;
            }
            upd.import_sent = true;
        }
        if (upd.got_import && upd.import_err) {
            update_roll_back(upd.import_err);
        } else if (upd.got_import) {
            upd.since = now;
            upd.step = U_HEALTH;
        } else if (late) {
            update_roll_back(ERR_TIMEOUT);
        }
        return;
    }
    /* U_HEALTH: it joined its group and beats. */
    if (y->state == S_RUNNING && y->hb && now - y->last_beat_ns < HEARTBEAT_HANG_MS * 1000000ull)
        update_done(now);
    else if (late)
        update_roll_back(ERR_TIMEOUT);
}

static errval_t on_state(struct idl_chan *ch, const struct starter_state_args *a)
{
    struct client *c = ch->user;
    if (!upd.on || upd.step != U_EXPORT || c->inst != upd.old || a->tag != upd.tag || upd.got_state)
        return ERR_OK;   /* late, or not asked */
    upd.got_state = true;
    upd.state_err = a->err;
    upd.version = a->version;
    upd.len = (uint32_t)a->data_len;
    memcpy(upd.state, a->data, a->data_len);
    return ERR_OK;
}

static errval_t on_imported(struct idl_chan *ch, const struct starter_imported_args *a)
{
    struct client *c = ch->user;
    if (!upd.on || upd.step != U_IMPORT || upd.fresh < 0 || c->inst != upd.fresh || a->tag != upd.tag)
        return ERR_OK;
    upd.got_import = true;
    upd.import_err = a->err;
    upd.new_version = a->version;
    return ERR_OK;
}

/* svc update NAME PROGRAM: answered when every running instance was
 * updated or one was rolled back. */
static errval_t on_update(struct idl_chan *ch, const struct starter_update_call_args *a)
{
    unsigned i = 0;
    while (i < mf.n && (mf.svc[i].refused || strcmp(mf.svc[i].name, a->name)))
        i++;
    errval_t err = i == mf.n || !keys[i] ? ERR_NOT_FOUND : upd.on ? ERR_WOULD_BLOCK : ERR_OK;
    size_t n = strnlen(a->program, sizeof upd.program);
    for (size_t k = 0; k < n && !err; k++)
        if (a->program[k] == ' ')
            err = ERR_INVALID_ARG;   /* one word: the program, never arguments */
    if (!err && (n == 0 || n >= sizeof upd.program))
        err = ERR_INVALID_ARG;
    if (err)
        return starter_update_reply_send(ch, err, 0, 0);
    memset(&upd, 0, sizeof upd);
    upd.on = true;
    upd.service = i;
    memcpy(upd.program, a->program, n);
    upd.shell = ch->user;
    upd.step = U_NEXT;
    upd.fresh = upd.old = -1;
    printf("@atoll {\"event\":\"update_started\",\"name\":\"%s\",\"program\":\"%s\"}\n", a->name, upd.program);
    return ERR_OK;   /* the answer comes from update_step */
}

/* -- svc -------------------------------------------------------------------------- */

/* Row r of the listing: the instances, then the refused services. */
static int format_row(uint32_t r, char *out, size_t size)
{
    if (r < ninst) {
        const struct instance *x = &inst[r];
        const struct manifest_service *s = &mf.svc[x->service];
        char restarts[48] = "";
        int k = 0;
        if (x->restarts)
            k = snprintf(restarts, sizeof restarts, " restarts=%u", x->restarts);
        if (x->garbled && k >= 0)
            snprintf(restarts + k, sizeof restarts - (size_t)k, " garbled=%u", x->garbled);
        return snprintf(out, size, "%s %s %u %llu %s%s%s%s\n", s->name, s->placement, x->core,
                        (unsigned long long)x->domain, state_name(x->state), x->state == S_FAILED ? " " : "",
                        x->state == S_FAILED ? err_name(x->err) : "", restarts);
    }
    r -= ninst;
    for (unsigned i = 0; i < mf.n; i++)
        if (mf.svc[i].refused && r-- == 0)
            return snprintf(out, size, "%s - - - refused: %s\n", mf.svc[i].name, mf.svc[i].why);
    return -1;
}

static errval_t on_services(struct idl_chan *ch, const struct starter_services_call_args *a)
{
    static char text[1501];
    size_t len = 0;
    uint32_t count = 0, total = ninst + mf.refused;
    text[0] = 0;
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

/* `svc restart NAME CORE`: start NAME's instance on CORE again now, by the
 * restart service's own restart(): the instance must have ended (else
 * ERR_DUPLICATE); its failed starts in a row are forgotten, so an instance
 * given up on (restart_limit) or never restarted (restart=0) gets a new try. */
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
    struct instance *x = 0;
    for (uint32_t j = 0; j < ninst && !x; j++)
        if (inst[j].service == i && inst[j].core == a->core)
            x = &inst[j];
    if (!x)
        return starter_restart_reply_send(ch, ERR_NOT_FOUND, 0);
    /* Its end may not be seen yet (no heartbeat channel: the ps watch). */
    if ((x->state == S_STARTING || x->state == S_RUNNING) && !x->hb && !still_listed(x->core, x->domain, 0))
        instance_ended(x, "ended");
    if (x->state == S_STARTING || x->state == S_RUNNING)
        return starter_restart_reply_send(ch, ERR_DUPLICATE, x->domain);
    if (x->state == S_FAILED && !x->domain)
        x->ended_ns = now_ns();   /* never started: down since now */
    x->failed_in_row = 0;
    restart(x, "svc");
    if (x->state != S_STARTING)
        return starter_restart_reply_send(ch, x->err, 0);
    return starter_restart_reply_send(ch, ERR_OK, x->domain);
}

static const struct starter_handlers handlers = {
    .services_call = on_services, .status_call = on_status, .beat = on_beat, .inject_call = on_inject,
    .restart_call = on_restart, .state = on_state, .imported = on_imported, .update_call = on_update,
    .recovered = on_recovered, .campaign_call = on_campaign
};
static struct waitset ws;

static bool serve_client(struct ws_source *src)
{
    struct client *c = src->arg;
    uint64_t t0 = now_ns();
    errval_t err = starter_serve_one(&c->sc->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    prof.msgs++;
    prof.serve_ns += now_ns() - t0;
    if ((err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED || err == ERR_MSG_TOO_LONG) && c->inst >= 0) {
        /* A garbled heartbeat: counted, never taken as a beat (a hung
         * instance does not stay alive by sending garbage). */
        struct instance *x = &inst[c->inst];
        x->garbled++;
        printf("@atoll {\"event\":\"heartbeat_garbled\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,"
               "\"error\":\"%s\",\"count\":%u}\n",
               mf.svc[x->service].name, x->core, (unsigned long long)x->domain, err_name(err), x->garbled);
    }
    if (err && err != ERR_MSG_UNKNOWN && err != ERR_MSG_MALFORMED && err != ERR_MSG_TOO_LONG) {
        client_lost(c);
        if (upd.shell == c)
            upd.shell = 0;   /* nobody to answer */
        campaign_shell_gone(c);
        service_chan_close(c->sc, ERR_OK);
        free(c->sc);
        free(c);
    }
    return true;
}

static void accepted(struct service_acceptor *a, struct service_chan *sc)
{
    (void)a;
    struct client *c = malloc(sizeof *c);
    if (!c) {
        service_chan_close(sc, ERR_NO_MEMORY);
        free(sc);
        return;
    }
    c->sc = sc;
    c->inst = -1;
    sc->idl.user = c;   /* the handlers find the client from the channel */
    service_chan_source(sc, serve_client, c);
    waitset_add(&ws, &sc->src);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char *text = 0;
    size_t len = 0;
    uint64_t service;
    const char *step = "reach the monitor";
    errval_t err = monitor_connect();
    if (!err && (step = "reach the name server"))
        err = names_idl() ? ERR_OK : ERR_CHAN_CLOSED;
    if (!err && (step = "read the manifest"))
        err = read_manifest(&text, &len);
    if (err) {
        printf("starter: cannot %s: %s\n", step, err_name(err));
        return 1;
    }
    learn_shape();
    sys_core_info(&machine);
    manifest_parse(text ? text : "", len, &shape, &mf);
    free(text);
    for (unsigned i = 0; i < mf.n; i++)
        if (mf.svc[i].refused) {
            printf("starter: manifest %s\n", mf.svc[i].why);
            printf("@atoll {\"event\":\"manifest_refused\",\"line\":%u,\"service\":\"%s\",\"why\":\"%s\"}\n",
                   mf.svc[i].line, mf.svc[i].name, mf.svc[i].why);
        }
    if (mf.beyond) {
        printf("starter: manifest line %u: more than %u services (%u lines refused)\n", mf.first_beyond,
               MANIFEST_MAX_SERVICES, mf.beyond);
        printf("@atoll {\"event\":\"manifest_refused\",\"line\":%u,\"service\":\"\",\"why\":\"line %u: "
               "more than %u services\",\"lines\":%u}\n", mf.first_beyond, mf.first_beyond, MANIFEST_MAX_SERVICES,
               mf.beyond);
    }
    /* `svc` first (a service of our own named "starter"), so that it
     * answers while the services come up; kept, so that it is registered
     * again after a restart of the name server. */
    err = service_register_self(&service);
    starter_service = service;
    if (!err)
        err = names_keep_register("starter", "starter", service);
    if (err) {
        printf("starter: cannot serve svc: %s\n", err_name(err));
        return 1;
    }
    static struct service_acceptor acceptor;
    static struct ws_timer stepper = { .fire = tick }, watcher = { .fire = watch };
    waitset_init(&ws);
    service_acceptor_init(&acceptor, accepted, 0);
    waitset_add(&ws, &acceptor.src);
    names_watch(&ws);
    waitset_timer_arm(&ws, &stepper, now_ns());
    waitset_timer_arm(&ws, &watcher, now_ns() + WATCH_NS);
    waitset_run(&ws);
    return 0;
}
