/*
 * The monitor: the first domain on every core, holding the core's Kernel
 * capability and its RAM. It starts the mesh of channels to the other
 * monitors, then serves, in one loop: messages from other monitors (which
 * it handles or forwards), and requests of its core's domains. When
 * nothing has come for a while it sleeps until a notification (another
 * monitor's send, a local message) wakes it. Core 0's monitor also starts
 * the name server and the shell.
 */
#include "monitor.h"

const struct startup_info *si;
uint32_t my_core, ncores;
struct core_info machine;

/* Poll this long after the last work before sleeping: a reply that comes
 * soon costs no wake-up. */
#define SPIN_NS 50000ull
/* Sleep at most this long: a lost wake-up costs no more. */
#define SLEEP_US 20000ull
/* RAM for the name server and the shell. */
#define SYSTEM_DOMAIN_RAM (2ull << 20)

static uint32_t tag_counter;
uint64_t names_id = ~0ull;
uint32_t new_tag(void) { return ++tag_counter ? tag_counter : ++tag_counter; }
uint64_t now_ns(void) { return urpc_os_now_ns(); }

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

static void start_servers(void)
{
    uint64_t id;
    /* Small: at 255 cores on 2 GiB a core has about 6 MiB of user RAM,
     * and core 0's monitor keeps a channel to every core. */
    errval_t err = spawn_system("names", SYSTEM_DOMAIN_RAM, &id);
    if (err)
        cannot_go_on("the name server", err);
    names_id = id;
    err = spawn_system("shell", SYSTEM_DOMAIN_RAM, &id);
    if (err)
        cannot_go_on("the shell", err);
    shell_id = id;
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
    printf("monitor: core %u up, %llu KiB of RAM\n", my_core,
           sys_cap_identify(SLOT_RAM, &ram) ? 0ull : (unsigned long long)(ram.bytes >> 10));
    if (my_core == 0 && mesh_configure(argc, argv))
        printf("monitor: bad arguments (want mesh=cluster|all|star, cluster=N): default mesh\n");
    mesh_start();
    if (my_core == 0)
        start_servers();
    uint64_t idle_since = 0;
    for (;;) {
        bool busy = links_poll();
        busy |= clients_poll();
        busy |= lifetimes_poll();
        if (busy) {
            idle_since = 0;
            continue;
        }
        uint64_t now = now_ns();
        if (!idle_since)
            idle_since = now;
        if (now - idle_since < SPIN_NS) {
            urpc_os_relax();
            continue;
        }
        pending_expire();
        mesh_wait_expire();
        uint64_t token = sys_notify_gen();
        links_set_sleeping(true);
        clients_set_sleeping(true);
        /* Messages waiting for room in a full ring: look again soon (the
         * peer's taking them wakes nobody). */
        if (!links_pending() && !clients_pending())
            sys_notify_wait(token, links_backlogged() ? 1000 : SLEEP_US, 0);
        links_set_sleeping(false);
        clients_set_sleeping(false);
        idle_since = 0;
    }
}
