/*
 * The monitor: the first domain on every core, holding the core's Kernel
 * capability and its RAM. It starts the mesh of channels to the other
 * monitors, then serves, in one event loop (<atoll/waitset.h>): messages
 * from other monitors (which it handles or forwards), requests of its
 * core's domains, and the ends of those domains. When nothing has come for
 * a while it sleeps until a notification (another monitor's send, a local
 * message, a domain's end) wakes it. Core 0's monitor also starts the name
 * server and the shell.
 */
#include "monitor.h"

const struct startup_info *si;
uint32_t my_core, ncores;
struct core_info machine;

/* Poll this long after the last work before sleeping: a reply that comes
 * soon costs no wake-up. */
#define SPIN_NS 50000ull
/* Sleep at most this long: a lost wake-up costs no more. */
#define SLEEP_NS 20000000ull
/* Messages waiting for room in a full ring are tried again this often
 * (the peer's taking them wakes nobody). */
#define OUTBOX_NS 1000000ull
/* Requests that waited too long, and the shell waiting for the mesh, are
 * looked at this often. */
#define EXPIRE_NS 100000000ull
/* RAM for the name server (about 4 KiB per client, docs/limits.md) and the
 * shell. Small: at 255 cores on 2 GiB core 0 has about 5 MiB of user RAM,
 * and its monitor keeps a channel to every core. */
#define NAMES_RAM (3ull << 20)
#define STARTER_RAM (1ull << 20)
#define SHELL_RAM (1ull << 20)

struct waitset monitor_ws;
static struct ws_source links, clients, notices;
static struct ws_timer outbox, expiry;
static uint32_t tag_counter;
uint64_t names_id = ~0ull;
uint32_t new_tag(void) { return ++tag_counter ? tag_counter : ++tag_counter; }

/* Without the name server or the shell the system cannot go on: say so
 * and end the machine with status 1, rather than leave it waiting. */
static void cannot_go_on(const char *what, errval_t err)
{
    printf("monitor: cannot start %s: %s (%s); the machine stops\n", what, err_name(err), err_text(err));
    printf("@atoll {\"event\":\"boot_failed\",\"why\":\"cannot start %s\",\"error\":\"%s\"}\n", what,
           err_name(err));
    stdout_flush();
    sys_poweroff(SLOT_KERNEL, 1);
}

/* Is this core one of the name server's (the first of its node)? */
static bool names_core(void)
{
    uint32_t cores[CORE_INFO_MAX_NODES];
    uint32_t n = names_cores(&machine, cores, CORE_INFO_MAX_NODES);
    for (uint32_t i = 0; i < n; i++)
        if (cores[i] == my_core)
            return true;
    return my_core == 0;
}

/* The name server's replica on this core; `life` 0 at boot (it may lead
 * the first term), 1 after (it has lost what it held: it catches up). */
static errval_t start_names(int life, uint64_t *id)
{
    return spawn_system(life ? "names 1" : "names 0", NAMES_RAM, id);
}

static void start_servers(void)
{
    uint64_t id;
    errval_t err = start_names(0, &id);
    if (err)
        cannot_go_on("the name server", err);
    names_id = id;
    if (my_core != 0)
        return;
    /* The services of the boot manifest (servers/starter), then the shell. */
    err = spawn_system("starter", STARTER_RAM, &id);
    if (err)
        cannot_go_on("the starter", err);
    starter_id = id;
    err = spawn_system("shell", SHELL_RAM, &id);
    if (err)
        cannot_go_on("the shell", err);
    shell_id = id;
}

/* The name server's replica here ended: start it again at once. Everything else,
 * the restart service among them, finds services through it, so its own
 * monitor restarts it rather than the starter (docs/restart.md). Its
 * clients' channels were hung up with it; the client library reconnects
 * and every service's library registers its names again. A name server
 * that ends NAMES_FAILED_MAX times in a row before it offered its service
 * (`started` false) cannot be kept up: the machine stops, as when it could
 * not start. An end after it served, or a kill, is not its start failing:
 * the campaign's kills, at most a second apart, had stopped the machine
 * by the old rule (ended within 1 s of its start 5 times in a row), after
 * 385 restarts of 36,554 faults. */
#define NAMES_FAILED_MAX 5

void names_ended(bool started)
{
    static uint64_t restarts;
    static unsigned failed;
    uint64_t id, old = names_id;
    failed = started ? 0 : failed + 1;
    if (failed >= NAMES_FAILED_MAX && my_core != 0) {
        /* Another node's replica: the group goes on without it (its
         * clients use the nearest); only core 0's is the machine's. */
        printf("@atoll {\"event\":\"names_given_up\",\"core\":%u,\"failed\":%u}\n", my_core, failed);
        names_id = ~0ull;
        return;
    }
    if (failed >= NAMES_FAILED_MAX)
        cannot_go_on("the name server again (it ended before serving 5 times in a row)", ERR_TOO_MANY);
    errval_t err = start_names(1, &id);
    if (err)
        cannot_go_on("the name server again", err);
    names_id = id;
    restarts++;
    printf("@atoll {\"event\":\"service_restarted\",\"name\":\"names\",\"core\":%u,\"old\":%llu,"
           "\"domain\":%llu,\"why\":\"ended\",\"restarts\":%llu,\"by\":\"monitor\"}\n", my_core,
           (unsigned long long)old, (unsigned long long)id, (unsigned long long)restarts);
}

/* Nothing to do but to make the loop go round (links_poll flushes the
 * outboxes), every millisecond while something waits in one. */
static void outbox_due(struct ws_timer *t)
{
    if (links_backlogged())
        waitset_timer_arm(t->ws, t, now_ns() + OUTBOX_NS);
}

void outbox_kick(void)
{
    if (!outbox.armed || outbox.deadline_ns > now_ns() + OUTBOX_NS)
        waitset_timer_arm(&monitor_ws, &outbox, now_ns() + OUTBOX_NS);
}

static void expire_due(struct ws_timer *t)
{
    pending_expire();
    mesh_wait_expire();
    capops_expire();
    span_expire();
    waitset_timer_arm(t->ws, t, now_ns() + EXPIRE_NS);
}

int main(int argc, char **argv)
{
    si = startup();
    my_core = si->core_id;
    if (sys_core_info(&machine) != ERR_OK)
        return 1;
    ncores = machine.ncores;
    struct cap_identity ram;
    clients_init();
    notify_cap_for(my_core);   /* kept for good: made now, it is in every count of what we hold */
    notify_cap_all();          /* the same (span dispatchers get copies) */
    printf("monitor: core %u up, %llu KiB of RAM\n", my_core,
           sys_cap_identify(SLOT_RAM, &ram) ? 0ull : (unsigned long long)(ram.bytes >> 10));
    if (my_core == 0 && mesh_configure(argc, argv))
        printf("monitor: bad arguments (want mesh=cluster|all|star, cluster=N): default mesh\n");
    waitset_init(&monitor_ws);
    monitor_ws.spin_ns = SPIN_NS;
    monitor_ws.max_sleep_ns = SLEEP_NS;
    links_source(&links);
    clients_source(&clients);
    waitset_add(&monitor_ws, &links);
    waitset_add(&monitor_ws, &clients);
    capops_source(&notices);
    waitset_add(&monitor_ws, &notices);
    lifetimes_start(&monitor_ws);
    outbox = (struct ws_timer){ .fire = outbox_due };
    expiry = (struct ws_timer){ .fire = expire_due };
    waitset_timer_arm(&monitor_ws, &expiry, now_ns() + EXPIRE_NS);
    fence_start(&monitor_ws);
    mesh_start();
    if (names_core())
        start_servers();
    waitset_run(&monitor_ws);
    return 0;
}
