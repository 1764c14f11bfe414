/*
 * The shell: a console domain on the boot core. It reads lines from the
 * serial port (through an I/O capability for COM1 its monitor gives it) and
 * runs commands from a table; cross-core work goes through core 0's monitor
 * (typed requests, if/monclient.if and if/monlmp.if, with lib/'s client).
 * Its one event loop (<atoll/waitset.h>) has the serial line as a source:
 * a whole line runs a command. docs/shell.md lists the commands. Every command
 * sets a status (0 success); `poweroff` ends the machine with the status of
 * the command before it, so `tools/run -- cmd1 cmd2` exits with cmd2's.
 */
#include <atoll/lib.h>
#include <atoll/mem.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <atoll/topo.h>
#include <atoll/waitset.h>
#include <if/monclient_if.h>
#include <if/monlmp_if.h>
#include <if/nameservice_if.h>
#include <if/starter_if.h>

#define LINE_MAX 256
#define MAX_ARGS 16

static capslot_t io_slot;
static struct idl_chan *mon;   /* typed requests to the monitor (if/monclient.if) */
static uint8_t replybuf[monclient_size_max];   /* texts of the replies point here */
static const struct startup_info *si;
static int last_status;

static int fail(const char *what, errval_t err)
{
    printf("%s: %s (%s)\n", what, err_name(err), err_text(err));
    return 1;
}

static bool parse_number(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

static bool parse_core(const char *s, uint64_t *core)
{
    return parse_number(s, core) && *core < si->ncores;
}

static int cmd_help(int argc, char **argv);

/* The cores that had come up when the shell started (the kernel's boot
 * record): one the monitors call down later has died and been fenced. */
static struct core_info at_start;

static int cmd_cores(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int status = 0;
    for (uint64_t c = 0; c < si->ncores; c++) {
        const char *text;
        errval_t err, rerr = ERR_OK;
        err = monclient_describe_rpc(mon, (uint32_t)c, &rerr, &text, replybuf, sizeof replybuf);
        if (!err && rerr == ERR_CORE_DOWN) {
            bool was_up = c < CORE_INFO_MAX_CORES && (!at_start.cores_known || at_start.core_up[c]);
            printf("core %llu: %s\n", (unsigned long long)c,
                   was_up ? "dead (it stopped answering: fenced by the monitors)" : "down (never came up)");
            printf("@atoll {\"event\":\"core_state\",\"core\":%llu,\"state\":\"%s\"}\n", (unsigned long long)c,
                   was_up ? "dead" : "down");
            status = 1;
        } else if (err || rerr) {
            printf("core %llu: %s\n", (unsigned long long)c, err_name(err ? err : rerr));
            status = 1;
        } else {
            printf("%s", text);
            printf("@atoll {\"event\":\"core_state\",\"core\":%llu,\"state\":\"up\"}\n", (unsigned long long)c);
        }
    }
    return status;
}

static int cmd_ps(int argc, char **argv)
{
    uint64_t first = 0, last = si->ncores - 1;
    if (argc > 1) {
        if (!parse_core(argv[1], &first))
            return printf("ps: no core %s\n", argv[1]), 1;
        last = first;
    }
    printf("core   id  name          state prio    ticks        RAM\n");
    int status = 0;
    for (uint64_t c = first; c <= last; c++) {
        const char *text;
        errval_t err, rerr = ERR_OK;
        err = monclient_ps_rpc(mon, (uint32_t)c, &rerr, &text, replybuf, sizeof replybuf);
        if (err || rerr)
            status = fail("ps", err ? err : rerr);
        else
            printf("%s", text);
    }
    return status;
}

static int cmd_mem(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct core_info ci;
    errval_t err = sys_core_info(&ci);
    if (err)
        return fail("mem", err);
    uint64_t free_bytes[CORE_INFO_MAX_NODES] = { 0 };
    for (uint64_t c = 0; c < si->ncores; c++) {
        uint64_t value = 0;
        uint32_t node = 0;
        errval_t rerr = ERR_OK;
        err = monclient_mem_rpc(mon, (uint32_t)c, &rerr, &value, &node);
        if (err || rerr)
            return fail("mem", err ? err : rerr);
        if (node < CORE_INFO_MAX_NODES)
            free_bytes[node] += value;
    }
    printf("node  cores    total MiB   free user MiB\n");
    for (uint32_t n = 0; n < ci.nnodes; n++)
        printf("%4u  %5u  %11llu  %14llu\n", n, ci.node_cores[n], (unsigned long long)(ci.node_mem_bytes[n] >> 20),
               (unsigned long long)(free_bytes[n] >> 20));
    /* The memory service's pools, if the manifest started one (docs/memory.md). */
    static struct mem_node_stats ms[CORE_INFO_MAX_NODES];
    static uint64_t borrowed[CORE_INFO_MAX_NODES];
    uint32_t nnodes = 0;
    if (mem_present() == ERR_OK) {
        if ((err = mem_table(ms, borrowed, &nnodes)))
            return fail("mem", err);
        mem_table_print(ms, borrowed, nnodes);
    }
    return 0;
}

static int run_on(uint64_t core, int argc, char **argv)
{
    uint64_t id;
    char cmd[240];
    size_t len = 0;
    for (int i = 2; i < argc && len < sizeof cmd; i++)
        len += (size_t)snprintf(cmd + len, sizeof cmd - len, "%s%s", i > 2 ? " " : "", argv[i]);
    if (len >= sizeof cmd)
        return printf("run: command line too long\n"), 1;
    /* Its RAM from the memory service of the core's node, else the
     * core's monitor's (docs/memory.md, "A spawned domain's memory"). */
    struct mem_spawned how;
    errval_t err = mem_spawn((uint32_t)core, cmd, &id, &how);
    if (err)
        return fail("run", err);
    printf("started %s as domain %llu on core %llu\n", argv[2], (unsigned long long)id, (unsigned long long)core);
    printf("@atoll {\"event\":\"run_ram\",\"core\":%llu,\"domain\":%llu,\"from\":\"%s\",\"why\":\"%s\","
           "\"node\":%u,\"base\":%llu,\"size\":%llu}\n",
           (unsigned long long)core, (unsigned long long)id, how.from_service ? "service" : "monitor",
           how.from_service ? "" : err_name(how.why), how.node, (unsigned long long)how.base,
           (unsigned long long)how.size);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    uint64_t core;
    if (argc >= 3 && !strcmp(argv[1], "all")) {
        int status = 0;
        for (core = 0; core < si->ncores; core++)
            status |= run_on(core, argc, argv);
        return status;
    }
    if (argc < 3 || !parse_core(argv[1], &core))
        return printf("usage: run CORE|all PROGRAM [ARGS...]\n"), 1;
    return run_on(core, argc, argv);
}

static int cmd_mesh(int argc, char **argv)
{
    uint64_t first = 0, last = si->ncores - 1, total = 0;
    if (argc > 1) {
        if (!parse_core(argv[1], &first))
            return printf("mesh: no core %s\n", argv[1]), 1;
        last = first;
    }
    printf("core peer  kind  state      sent  received forwarded\n");
    for (uint64_t c = first; c <= last; c++) {
        uint64_t n = 0;
        const char *text;
        errval_t err, rerr = ERR_OK;
        err = monclient_mesh_rpc(mon, (uint32_t)c, &rerr, &n, &text, replybuf, sizeof replybuf);
        if (err || rerr)
            return fail("mesh", err ? err : rerr);
        printf("%s", text);
        total += n;
    }
    printf("%llu channel ends on %llu cores\n", (unsigned long long)total, (unsigned long long)(last - first + 1));
    return 0;
}

static int cmd_ping(int argc, char **argv)
{
    uint64_t from, to, rounds = MON_DEFAULT_ROUNDS;
    if (argc < 3 || !parse_core(argv[1], &from) || !parse_core(argv[2], &to) || from == to ||
        (argc > 3 && (!parse_number(argv[3], &rounds) || !rounds || rounds > 10000)))
        return printf("usage: ping FROM TO [ROUNDS]   (two different cores, 1..10000 rounds)\n"), 1;
    uint64_t median, min;
    uint32_t hops;
    errval_t err, rerr = ERR_OK;
    err = monclient_ping_rpc(mon, (uint32_t)from, (uint32_t)to, (uint32_t)rounds, &rerr, &median, &min, &hops);
    if (err || rerr)
        return fail("ping", err ? err : rerr);
    printf("ping core %llu -> core %llu: %llu rounds, median %llu ns, min %llu ns, hops %u\n",
           (unsigned long long)from, (unsigned long long)to, (unsigned long long)rounds,
           (unsigned long long)median, (unsigned long long)min, hops);
    printf("@atoll {\"event\":\"ping\",\"from\":%llu,\"to\":%llu,\"rounds\":%llu,\"median_ns\":%llu,"
           "\"min_ns\":%llu,\"hops\":%u}\n",
           (unsigned long long)from, (unsigned long long)to, (unsigned long long)rounds,
           (unsigned long long)median, (unsigned long long)min, hops);
    return 0;
}

/* One user-space URPC benchmark (user/urpcbench): started on `from`, it
 * starts its echoing side on `to` and connects to our report service, and
 * sends its result there when done. Meanwhile we sleep on that channel:
 * nothing of ours runs or crosses cores while it measures. */
static errval_t bench_user_pair(uint64_t from, uint64_t to, uint64_t rounds, char *json, size_t size)
{
    static uint64_t report;
    errval_t err = ERR_OK, rerr = ERR_OK;
    if (!report && (err = service_register_self(&report)))
        return err;
    char cmd[80];
    uint64_t id;
    snprintf(cmd, sizeof cmd, "urpcbench %llu %llu report=%llx", (unsigned long long)to,
             (unsigned long long)rounds, (unsigned long long)report);
    err = monclient_spawn_rpc(mon, (uint32_t)from, cmd, 0, false, 0, &rerr, &id);
    if (err || rerr)
        return err ? err : rerr;
    static struct service_chan sc;
    for (uint64_t t0 = urpc_os_now_ns();;) {   /* it connects first thing */
        uint64_t token = sys_notify_gen();
        err = service_accept(&sc);
        if (err != ERR_WOULD_BLOCK)
            break;
        if (urpc_os_now_ns() - t0 > 60000000000ull)
            return ERR_TIMEOUT;
        sys_notify_wait(token, 20000, 0);
    }
    if (err)
        return err;
    sc.ch.spin_ns = 0;                       /* sleep at once: the benchmark may share our core */
    sc.ch.timeout_ns = 600000000000ull;      /* TCG on a loaded host: minutes for a large matrix */
    size_t len = 0;
    err = urpc_recv(&sc.ch, json, size - 1, &len, 0);
    service_chan_close(&sc, ERR_OK);
    if (!err && (len < 2 || json[0] != '{'))
        err = ERR_MSG_MALFORMED;
    if (!err)
        json[len] = 0;
    return err;
}

/* bench urpc [ROUNDS] [CORES] [row]: every ordered pair of the first CORES
 * cores, or with `row` core 0 to every other (what a large machine can
 * afford, e.g. under the cost model), measured by a pair of user domains. */
static int cmd_bench(int argc, char **argv)
{
    static char json[URPC_MSG_MAX];
    uint64_t rounds = 500, n = si->ncores;
    bool row = argc > 4 && !strcmp(argv[4], "row");
    if (argc < 2 || strcmp(argv[1], "urpc") ||
        (argc > 2 && (!parse_number(argv[2], &rounds) || !rounds || rounds > 10000)) ||
        (argc > 3 && (!parse_number(argv[3], &n) || n < 2 || n > si->ncores)) ||
        (argc > 4 && !row) || argc > 5)
        return printf("usage: bench urpc [ROUNDS] [CORES] [row]\n"), 1;
    int status = 0;
    for (uint64_t from = 0; from < (row ? 1 : n); from++)
        for (uint64_t to = 0; to < n; to++) {
            if (from == to)
                continue;
            errval_t err = bench_user_pair(from, to, rounds, json, sizeof json);
            if (err || json[0] != '{') {
                /* A pair that gives no result is an event too: a sweep
                 * must see the gap, not a shorter list of results. */
                err = err ? err : ERR_MSG_MALFORMED;
                printf("@atoll {\"event\":\"urpc_bench\",\"where\":\"user\",\"from\":%llu,\"to\":%llu,"
                       "\"rounds\":%llu,\"error\":\"%s\"}\n", (unsigned long long)from, (unsigned long long)to, (unsigned long long)rounds,
                       err_name(err));
                status = fail("bench", err);
                continue;
            }
            /* The text is a JSON object: make it an event. */
            printf("@atoll {\"event\":\"urpc_bench\",%s\n", json + 1);
            stdout_flush();
            if (strstr(json, "\"error\":\"ERR_OK\"") == 0)
                status = 1;
        }
    return status;
}

/* Timer ticks since boot, by the clock (the scheduler's tick rate from
 * the kernel): what `sleep` and `wait` count in. */
static uint64_t ticks_now(void)
{
    static uint32_t hz;
    if (!hz) {
        struct core_info ci;
        hz = sys_core_info(&ci) == ERR_OK && ci.timer_hz ? ci.timer_hz : 100;
    }
    return urpc_os_now_ns() / (1000000000ull / hz);
}

/* Sleep until about `ticks` timer ticks from now, letting others run. */
static void sleep_ticks(uint64_t ticks)
{
    uint64_t until = ticks_now() + ticks;
    while (ticks_now() < until)
        sys_notify_wait(sys_notify_gen(), 10000, 0);
}

/* The starter (the services of the boot manifest): a channel to it. */
static struct service_chan starter;
static bool starter_connected;
static uint8_t starter_buf[nameservice_size_max + starter_size_max];

static errval_t starter_connect(void)
{
    static struct service_chan ns;
    const char *iface;
    uint64_t service = 0;
    errval_t rerr = ERR_OK, err = ERR_OK;
    if (starter_connected)
        return ERR_OK;
    err = names_connect(&ns);
    for (int tries = 0; !err && tries < 500; tries++) {   /* it registers as soon as it starts */
        err = nameservice_lookup_rpc(&ns.idl, "starter", &rerr, &iface, &service, starter_buf, sizeof starter_buf);
        if (err || rerr != ERR_NOT_FOUND)
            break;
        sleep_ticks(1);
    }
    if (!err)
        service_chan_close(&ns, ERR_OK);
    if (!err && !(err = rerr))
        err = service_connect(service, &starter);
    starter_connected = !err;
    return err;
}

/* Until the starter has brought up every service of the manifest. */
static errval_t wait_for_services(uint32_t *services, uint32_t *refused)
{
    errval_t err = starter_connect(), rerr = ERR_OK;
    bool done = false;
    uint32_t instances;
    for (uint64_t t0 = ticks_now(); !err && !done && ticks_now() - t0 < 12000;) {
        err = starter_status_rpc(&starter.idl, &rerr, &done, services, refused, &instances);
        if (!err && !done)
            sleep_ticks(1);
    }
    return err ? err : rerr ? rerr : done ? ERR_OK : ERR_TIMEOUT;
}

/* The services of the boot manifest and their instances (the starter's). */
static int cmd_svc(int argc, char **argv)
{
    errval_t err = starter_connect(), rerr = ERR_OK;
    if (err)
        return fail("svc", err);
    if (argc == 4 && !strcmp(argv[1], "update")) {
        /* svc update NAME PROGRAM: every instance replaced by PROGRAM with
         * its state, or the one that failed rolled back (docs/restart.md). */
        uint32_t updated = 0, version = 0;
        /* Each step of each instance is bounded by the starter (UPDATE_STEP_MS),
         * not the whole: wait for its answer however long (a starter that
         * ends hangs up, which ends the wait too). */
        uint64_t bound = starter.ch.timeout_ns;
        starter.ch.timeout_ns = 0;
        err = starter_update_rpc(&starter.idl, argv[2], argv[3], &rerr, &updated, &version);
        starter.ch.timeout_ns = bound;
        if (err || rerr)
            printf("svc update %s %s: %u updated, then rolled back: %s\n", argv[2], argv[3], updated,
                   err_name(err ? err : rerr));
        else
            printf("svc update %s %s: %u instance%s updated, state format %u\n", argv[2], argv[3], updated,
                   updated == 1 ? "" : "s", version);
        printf("@atoll {\"event\":\"svc_update\",\"name\":\"%s\",\"program\":\"%s\",\"updated\":%u,\"version\":%u,"
               "\"error\":\"%s\"}\n", argv[2], argv[3], updated, version, err_name(err ? err : rerr));
        return err || rerr ? 1 : 0;
    }
    if (argc > 1) {
        /* svc restart NAME CORE: the instance on CORE again (it must be gone). */
        uint64_t core, domain = 0;
        if (argc != 4 || strcmp(argv[1], "restart") || !parse_core(argv[3], &core))
            return printf("usage: svc | svc restart NAME CORE | svc update NAME PROGRAM\n"), 1;
        err = starter_restart_rpc(&starter.idl, argv[2], (uint32_t)core, &rerr, &domain);
        if (err || rerr)
            return fail("svc restart", err ? err : rerr);
        printf("restarted %s on core %llu: domain %llu\n", argv[2], (unsigned long long)core,
               (unsigned long long)domain);
        return 0;
    }
    printf("service placement core domain state\n");
    uint32_t first = 0, total = 0, count = 0;
    do {
        const char *text;
        err = starter_services_rpc(&starter.idl, first, &rerr, &total, &count, &text, starter_buf,
                                   sizeof starter_buf);
        if (err || rerr)
            return fail("svc", err ? err : rerr);
        printf("%s", text);
        first += count;
    } while (count && first < total);
    printf("@atoll {\"event\":\"svc_list\",\"rows\":%u}\n", total);
    return 0;
}

static int cmd_sleep(int argc, char **argv)
{
    uint64_t n = 10;
    if (argc > 1 && !parse_number(argv[1], &n))
        return printf("usage: sleep TICKS\n"), 1;
    sleep_ticks(n);
    return 0;
}

static int cmd_wait(int argc, char **argv)
{
    /* Until every domain started with `run` has ended (the shell itself is
     * core 0's monitor's child too), or TICKS timer ticks have passed. */
    uint64_t limit = 6000;
    if (argc > 1 && !parse_number(argv[1], &limit))
        return printf("usage: wait [TICKS]\n"), 1;
    /* One busy core is enough to wait on: each tick asks the core found
     * busy last first, and the others only once it is idle. Asking every
     * core every tick was a round of messages through all of them a tick,
     * from core 0, which ran into what the benchmarks measure there (the
     * cost model's regions counted it: docs/costmodel.md). */
    static uint32_t busy_core;
    uint64_t end = ticks_now() + limit;
    for (;;) {
        uint64_t busy = 0;
        for (uint64_t i = 0; i < si->ncores && !busy; i++) {
            uint32_t c = (uint32_t)((busy_core + i) % si->ncores);
            errval_t err, rerr = ERR_OK;
            err = monclient_busy_rpc(mon, c, &rerr, &busy);
            if (rerr == ERR_CORE_DOWN) {
                busy = 0;
                continue;   /* nothing runs there */
            }
            if (err || rerr)
                return fail("wait", err ? err : rerr);
            if (busy)   /* the monitors leave out the shell and the name server */
                busy_core = c;
        }
        if (!busy)
            return 0;
        if (ticks_now() >= end)
            break;
        sleep_ticks(1);
    }
    printf("wait: domains still running\n");
    return 1;
}

static int cmd_kill(int argc, char **argv)
{
    uint64_t core, id;
    if (argc != 3 || !parse_core(argv[1], &core) || !parse_number(argv[2], &id))
        return printf("usage: kill CORE ID\n"), 1;
    errval_t rerr = ERR_OK, err = monclient_kill_rpc(mon, (uint32_t)core, id, &rerr);
    if (err || rerr)
        return fail("kill", err ? err : rerr);
    printf("killed domain %llu on core %llu\n", (unsigned long long)id, (unsigned long long)core);
    return 0;
}

/* fault KIND NAME CORE [SEED]: the restart service injects a fault into an
 * instance (docs/restart.md). */
/* fault campaign N SEED [PACE_MS] [KIND,KIND...]: the restart service runs
 * a campaign of N faults and classifies each (docs/faults.md). */
static int fault_campaign(int argc, char **argv)
{
    uint64_t n, seed, pace = 0;
    uint32_t kinds = 0;
    if (argc >= 6)
        for (char *p = argv[5]; *p;) {
            char *end = p;
            while (*end && *end != ',')
                end++;
            char c = *end;
            *end = 0;
            uint32_t k = 1;
            while (k < FAULT_KINDS && strcmp(p, fault_name(k)))
                k++;
            if (k == FAULT_KINDS)
                return printf("fault campaign: no fault kind %s\n", p), 1;
            kinds |= 1u << k;
            p = c ? end + 1 : end;
        }
    else
        kinds = ((1u << FAULT_KINDS) - 1) & ~1u & ~(1u << FAULT_STALL);   /* a stall only when named */
    if (argc < 4 || argc > 6 || !parse_number(argv[2], &n) || !parse_number(argv[3], &seed) || !n ||
        n > 0xffffffffu || (argc >= 5 && !parse_number(argv[4], &pace)))
        return printf("usage: fault campaign N SEED [PACE_MS] [KIND,KIND...]\n"), 1;
    uint32_t injected = 0, contained = 0, restarted = 0, recovered = 0, failed = 0;
    errval_t rerr = ERR_OK, err = starter_connect();
    if (!err) {
        /* A campaign runs for hours: wait for its answer as long as it
         * takes (the channel's hang-up still ends the wait). */
        uint64_t bound = starter.ch.timeout_ns;
        starter.ch.timeout_ns = 0;
        err = starter_campaign_rpc(&starter.idl, (uint32_t)n, seed, (uint32_t)pace, kinds, &rerr, &injected,
                                   &contained, &restarted, &recovered, &failed);
        starter.ch.timeout_ns = bound;
    }
    if (err || rerr)
        return fail("fault campaign", err ? err : rerr);
    printf("fault campaign: %u faults: %u contained, %u restarted, %u recovered state, %u failed\n", injected,
           contained, restarted, recovered, failed);
    return failed != 0;
}

static int cmd_fault(int argc, char **argv)
{
    uint64_t core, seed = 1;
    uint32_t kind = 0;
    if (argc > 1 && !strcmp(argv[1], "campaign"))
        return fault_campaign(argc, argv);
    for (uint32_t k = 1; argc > 1 && k < FAULT_KINDS; k++)
        if (!strcmp(argv[1], fault_name(k)))
            kind = k;
    if (argc < 4 || argc > 5 || !kind || !parse_core(argv[3], &core) || (argc == 5 && !parse_number(argv[4], &seed)))
        return printf("usage: fault kill|hang|crash|garble|bitflip|badbeat|regs|stall NAME CORE [SEED]\n"), 1;
    uint64_t domain = 0;
    errval_t rerr = ERR_OK, err = starter_connect();
    if (!err)
        err = starter_inject_rpc(&starter.idl, argv[2], (uint32_t)core, kind, seed, &rerr, &domain);
    if (err || rerr)
        return fail("fault", err ? err : rerr);
    printf("%s: domain %llu of %s on core %llu\n", argv[1], (unsigned long long)domain, argv[2],
           (unsigned long long)core);
    return 0;
}

static int cmd_stats(int argc, char **argv)
{
    uint64_t first = 0, last = si->ncores - 1;
    if (argc > 1) {
        if (!parse_core(argv[1], &first))
            return printf("stats: no core %s\n", argv[1]), 1;
        last = first;
    }
    int status = 0;
    for (uint64_t c = first; c <= last; c++) {
        const char *json;
        errval_t rerr = ERR_OK, err = monclient_stats_rpc(mon, (uint32_t)c, &rerr, &json, replybuf,
                                                          sizeof replybuf);
        if (err || rerr || json[0] != '{') {
            printf("core %llu: %s\n", (unsigned long long)c, err_name(err ? err : rerr ? rerr : ERR_MSG_MALFORMED));
            status = 1;
            continue;
        }
        printf("@atoll {\"event\":\"monitor_stats\",%s\n", json + 1);
    }
    return status;
}

/* The name server's names, a reply at a time. */
static int cmd_names(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static uint8_t nsbuf[nameservice_size_max];
    errval_t err = ERR_OK, rerr = ERR_OK;
    uint32_t first = 0, total = 0, count = 0, shown = 0;
    do {
        const char *text;
        /* The lib's channel: made again if the name server was restarted. */
        struct idl_chan *ns = names_idl();
        err = ns ? nameservice_list_rpc(ns, first, &rerr, &total, &count, &text, nsbuf, sizeof nsbuf)
                 : ERR_CHAN_CLOSED;
        if (err || rerr)
            return fail("names", err ? err : rerr);
        printf("%s", text);
        first += count;
        shown += count;
    } while (count && first < total);
    printf("%u names\n", shown);
    printf("@atoll {\"event\":\"names_list\",\"total\":%u,\"shown\":%u}\n", total, shown);
    return shown == total ? 0 : 1;
}

/* ---- topo: the topology service's model ------------------------------------------ */

/* "0-3,8,10-11" (at most TOPO_CORESET_MAX); false if malformed. */
static bool parse_set(const char *s, struct topo_coreset *set)
{
    topo_coreset_clear(set);
    while (*s) {
        uint64_t a = 0, b;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9' && a < TOPO_CORESET_MAX)
            a = a * 10 + (uint64_t)(*s++ - '0');
        b = a;
        if (*s == '-') {
            s++;
            if (*s < '0' || *s > '9')
                return false;
            b = 0;
            while (*s >= '0' && *s <= '9' && b < TOPO_CORESET_MAX)
                b = b * 10 + (uint64_t)(*s++ - '0');
        }
        if (a > b || b >= TOPO_CORESET_MAX || (*s && *s++ != ','))
            return false;
        for (uint64_t i = a; i <= b; i++)
            topo_coreset_add(set, (uint32_t)i);
    }
    return true;
}

/* The set as "0-3,8" (text) or "0,1,2,3,8" (json: a JSON array's inside). */
static void format_set(const struct topo_coreset *set, char *buf, size_t size, bool json)
{
    size_t len = 0;
    buf[0] = 0;
    for (uint32_t c = 0; c < TOPO_CORESET_MAX && len + 12 < size; c++) {
        if (!topo_coreset_has(set, c))
            continue;
        uint32_t last = c;
        while (!json && last + 1 < TOPO_CORESET_MAX && topo_coreset_has(set, last + 1))
            last++;
        len += (size_t)snprintf(buf + len, size - len, last == c ? "%s%u" : "%s%u-%u", len ? "," : "", c, last);
        c = last;
    }
}

static int topo_fail(const char *what, uint64_t which, errval_t err)
{
    printf("topo: %s %llu: %s (%s)\n", what, (unsigned long long)which, err_name(err), err_text(err));
    printf("@atoll {\"event\":\"topo_error\",\"query\":\"%s\",\"arg\":%llu,\"error\":\"%s\"}\n", what,
           (unsigned long long)which, err_name(err));
    return 1;
}

static const char *cache_name(const struct topo_cache_info *k, char *buf, size_t size)
{
    snprintf(buf, size, "L%u%s", k->level, k->type == 1 ? "d" : k->type == 2 ? "i" : "");
    return buf;
}

static const char *const core_header = "core  apic  pkg  core thread  node   caches (the cores sharing each)\n";
static const char *const node_header = "node domain        MiB  cores        distances\n";

/* One core: a table row (after the header, if asked) and a topo_core event. */
static int topo_show_core(uint32_t c, bool header)
{
    struct topo_core_info ci;
    errval_t err = topo_core(c, &ci);
    if (err)
        return topo_fail("core", c, err);
    char text[512], json[2048], name[8], size[24], set[200], jset[1200];
    size_t tl = 0, jl = 0;
    text[0] = json[0] = 0;
    for (uint32_t i = 0; i < ci.caches; i++) {
        struct topo_cache_info k;
        if ((err = topo_cache(c, i, &k)))
            return topo_fail("cache of core", c, err);
        fmt_bytes(size, sizeof size, k.size);
        format_set(&k.sharers, set, sizeof set, false);
        format_set(&k.sharers, jset, sizeof jset, true);
        if (tl < sizeof text)
            tl += (size_t)snprintf(text + tl, sizeof text - tl, "%s%s %s (%s)", i ? ", " : "",
                                   cache_name(&k, name, sizeof name), size, set);
        if (jl < sizeof json)
            jl += (size_t)snprintf(json + jl, sizeof json - jl, "%s[%u,%u,%llu,[%s]]", i ? "," : "", k.level, k.type,
                                   (unsigned long long)k.size, jset);
    }
    printf("%s%4u %5u %4u %5u %6u %5u%s  %s\n", header ? core_header : "", c, ci.apic, ci.package,
           ci.package_core, ci.thread, ci.node, ci.reported ? " " : "*", text);
    printf("@atoll {\"event\":\"topo_core\",\"core\":%u,\"apic\":%u,\"package\":%u,\"package_core\":%u,"
           "\"thread\":%u,\"node\":%u,\"reported\":%s,\"caches\":[%s]}\n",
           c, ci.apic, ci.package, ci.package_core, ci.thread, ci.node, ci.reported ? "true" : "false", json);
    return 0;
}

/* One node: a table row (after the header, if asked) and a topo_node event. */
static int topo_show_node(uint32_t n, uint32_t nnodes, bool header)
{
    struct topo_node_info ni;
    errval_t err = topo_node(n, &ni);
    if (err)
        return topo_fail("node", n, err);
    char set[200], jset[2400], dist[4 * TOPO_NODES_MAX + 1], jdist[4 * TOPO_NODES_MAX + 1];
    size_t dl = 0, jl = 0;
    dist[0] = jdist[0] = 0;
    for (uint32_t m = 0; m < nnodes && m < TOPO_NODES_MAX; m++) {
        dl += (size_t)snprintf(dist + dl, sizeof dist - dl, "%s%u", m ? " " : "", ni.distance[m]);
        jl += (size_t)snprintf(jdist + jl, sizeof jdist - jl, "%s%u", m ? "," : "", ni.distance[m]);
    }
    format_set(&ni.cores, set, sizeof set, false);
    format_set(&ni.cores, jset, sizeof jset, true);
    printf("%s%4u %6u %10llu  %-12s %s\n", header ? node_header : "", n, ni.domain,
           (unsigned long long)(ni.mem_bytes >> 20), set[0] ? set : "-", dist);
    printf("@atoll {\"event\":\"topo_node\",\"node\":%u,\"domain\":%u,\"mem_bytes\":%llu,\"cores\":[%s],"
           "\"distances\":[%s]}\n",
           n, ni.domain, (unsigned long long)ni.mem_bytes, jset, jdist);
    return 0;
}

static int topo_show_all(void)
{
    struct topo_machine_info mi;
    errval_t err = topo_machine(&mi);
    if (err)
        return fail("topo", err);
    printf("%u cores (logical CPUs) in %u package%s, %u physical cores, %u NUMA node%s; %s %s\n", mi.cores,
           mi.packages, mi.packages == 1 ? "" : "s", mi.physical_cores, mi.nodes, mi.nodes == 1 ? "" : "s",
           mi.vendor, mi.brand);
    printf("layout from %s; NUMA nodes from %s; distances from %s\n", mi.source,
           mi.numa_from_srat ? "ACPI SRAT" : "nowhere (no SRAT: one node)",
           mi.dist_from_slit ? "ACPI SLIT" : mi.nodes > 1 ? "nowhere (no usable SLIT: 10 local, 20 remote)" : "-");
    printf("@atoll {\"event\":\"topo_machine\",\"cores\":%u,\"nodes\":%u,\"packages\":%u,\"physical_cores\":%u,"
           "\"source\":\"%s\",\"numa_from_srat\":%s,\"dist_from_slit\":%s}\n",
           mi.cores, mi.nodes, mi.packages, mi.physical_cores, mi.source, mi.numa_from_srat ? "true" : "false",
           mi.dist_from_slit ? "true" : "false");
    int status = 0;
    printf("%s", node_header);
    for (uint32_t n = 0; n < mi.nodes; n++)
        status |= topo_show_node(n, mi.nodes, false);
    printf("%s", core_header);
    bool derived = false;
    for (uint32_t c = 0; c < mi.cores; c++) {
        struct topo_core_info ci;
        derived |= topo_core(c, &ci) == ERR_OK && !ci.reported;
        status |= topo_show_core(c, false);
    }
    if (derived)
        printf("* did not report its own CPUID: placed by its APIC id\n");
    return status;
}

/* topo nearest core|node FROM [SET]: the set nearest first. */
static int topo_nearest(int argc, char **argv)
{
    uint64_t from;
    bool cores = argc > 2 && !strcmp(argv[2], "core");
    struct topo_coreset set;
    if (argc < 4 || argc > 5 || (!cores && strcmp(argv[2], "node")) || !parse_number(argv[3], &from) ||
        (argc == 5 && !parse_set(argv[4], &set)))
        return printf("usage: topo nearest core|node FROM [SET]   (SET: 0-3,8; default all)\n"), 1;
    if (argc == 4) {
        struct topo_machine_info mi;
        errval_t err = topo_machine(&mi);
        if (err)
            return fail("topo", err);
        topo_coreset_clear(&set);
        for (uint32_t i = 0; i < (cores ? mi.cores : mi.nodes); i++)
            topo_coreset_add(&set, i);
    }
    static uint32_t order[TOPO_CORESET_MAX];
    uint32_t n = 0;
    errval_t err = cores ? topo_nearest_cores((uint32_t)from, &set, order, TOPO_CORESET_MAX, &n)
                         : set.w[1] || set.w[2] || set.w[3] || set.w[4] || set.w[5] || set.w[6] || set.w[7]
                             ? ERR_NO_SUCH_NODE
                             : topo_nearest_nodes((uint32_t)from, set.w[0], order, TOPO_CORESET_MAX, &n);
    if (err)
        return topo_fail(cores ? "nearest core" : "nearest node", from, err);
    static char text[TOPO_CORESET_MAX * 5], json[TOPO_CORESET_MAX * 5];
    size_t tl = 0, jl = 0;
    text[0] = json[0] = 0;
    for (uint32_t i = 0; i < n && i < TOPO_CORESET_MAX; i++) {
        tl += (size_t)snprintf(text + tl, sizeof text - tl, " %u", order[i]);
        jl += (size_t)snprintf(json + jl, sizeof json - jl, "%s%u", i ? "," : "", order[i]);
    }
    printf("nearest to %s %llu:%s\n", argv[2], (unsigned long long)from, text);
    printf("@atoll {\"event\":\"topo_nearest\",\"kind\":\"%s\",\"from\":%llu,\"order\":[%s]}\n", argv[2],
           (unsigned long long)from, json);
    return 0;
}

/* The hwloc XML between two marker events (tools/topo-view takes it from
 * there: topology.extract_guest_xml). */
static int topo_print_xml(void)
{
    const char *text;
    uint32_t total = 0, lines = 0, done = 0;
    errval_t err = topo_xml(0, &text, &total, &lines);
    if (err)
        return fail("topo xml", err);
    printf("@atoll {\"event\":\"topology_xml_begin\",\"bytes\":%u,\"lines\":%u}\n", total, lines);
    while (!err && *text) {
        printf("%s", text);
        done += (uint32_t)strlen(text);
        if (done >= total)
            break;
        err = topo_xml(done, &text, &total, &lines);
    }
    printf("@atoll {\"event\":\"topology_xml_end\",\"bytes\":%u,\"lines\":%u}\n", done, lines);
    if (err || done != total)
        return fail("topo xml", err ? err : ERR_TRUNCATED);
    return 0;
}

static int cmd_topo(int argc, char **argv)
{
    uint64_t a, b;
    if (argc == 1)
        return topo_show_all();
    const char *sub = argv[1];
    if (!strcmp(sub, "core") && argc == 3 && parse_number(argv[2], &a))
        return topo_show_core((uint32_t)a, true);
    if (!strcmp(sub, "node") && argc == 3 && parse_number(argv[2], &a)) {
        struct topo_machine_info mi;
        errval_t err = topo_machine(&mi);
        if (err)
            return fail("topo", err);
        return topo_show_node((uint32_t)a, mi.nodes, true);
    }
    if (!strcmp(sub, "distance") && argc == 4 && parse_number(argv[2], &a) && parse_number(argv[3], &b)) {
        uint32_t d;
        errval_t err = topo_distance((uint32_t)a, (uint32_t)b, &d);
        if (err)
            return topo_fail("distance from node", a, err);
        printf("distance node %llu -> node %llu: %u\n", (unsigned long long)a, (unsigned long long)b, d);
        printf("@atoll {\"event\":\"topo_distance\",\"from\":%llu,\"to\":%llu,\"distance\":%u}\n",
               (unsigned long long)a, (unsigned long long)b, d);
        return 0;
    }
    if (!strcmp(sub, "shared") && argc == 4 && parse_number(argv[2], &a) && parse_number(argv[3], &b)) {
        uint32_t level;
        errval_t err = topo_shared_cache((uint32_t)a, (uint32_t)b, &level);
        if (err)
            return topo_fail("shared cache of core", a, err);
        if (level)
            printf("cores %llu and %llu share their L%u cache\n", (unsigned long long)a, (unsigned long long)b, level);
        else
            printf("cores %llu and %llu share no cache\n", (unsigned long long)a, (unsigned long long)b);
        printf("@atoll {\"event\":\"topo_shared\",\"a\":%llu,\"b\":%llu,\"level\":%u}\n", (unsigned long long)a,
               (unsigned long long)b, level);
        return 0;
    }
    if (!strcmp(sub, "nearest"))
        return topo_nearest(argc, argv);
    if (!strcmp(sub, "xml") && argc == 2)
        return topo_print_xml();
    printf("usage: topo [core N | node N | distance A B | shared A B | nearest core|node FROM [SET] | xml]\n");
    return 1;
}

static int cmd_status(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("%d\n", last_status);
    return last_status;
}

static int cmd_poweroff(int argc, char **argv)
{
    int status = last_status;
    if (argc > 1)
        status = argv[1][0] == '0' && !argv[1][1] ? 0 : 1;
    stdout_flush();
    errval_t rerr = ERR_OK, err = monlmp_poweroff_rpc(monitor_lmp(), (uint32_t)status, &rerr);
    return fail("poweroff", err ? err : rerr);
}

struct command {
    const char *name;
    const char *usage;
    int (*run)(int argc, char **argv);
};

/* Every command, in the order `help` lists them. */
static const struct command commands[] = {
    { "help", "help                     this list", cmd_help },
    { "cores", "cores                    every core: APIC id, node, domains, free RAM", cmd_cores },
    { "ps", "ps [CORE]                domains on every core (or one)", cmd_ps },
    { "mem", "mem                      memory per NUMA node (and the memory service's pools)", cmd_mem },
    { "run", "run CORE|all PROGRAM [ARGS]  start a boot module as a domain on CORE (or every core)", cmd_run },
    { "mesh", "mesh [CORE]              the monitors' channels: peer, kind, messages sent/received/forwarded",
      cmd_mesh },
    { "ping", "ping FROM TO [ROUNDS]    round trip between two cores' monitors over the mesh", cmd_ping },
    { "bench", "bench urpc [ROUNDS] [N] [row]  URPC matrix of the first N cores (JSON events)",
      cmd_bench },
    { "kill", "kill CORE ID             end domain ID on CORE (what it held is released)", cmd_kill },
    { "fault", "fault KIND NAME CORE [SEED]  inject kill|hang|crash|garble|bitflip|badbeat|regs|stall into a service's instance;"
               " fault campaign N SEED [PACE_MS] [KINDS]  N faults, each classified (docs/faults.md)",
      cmd_fault },
    { "stats", "stats [CORE]             what each monitor holds (JSON events)", cmd_stats },
    { "names", "names                    every name the name server holds", cmd_names },
    { "svc", "svc [restart NAME CORE | update NAME PROGRAM]  the boot manifest's services; start one again; replace one live", cmd_svc },
    { "topo", "topo [core N|node N|distance A B|shared A B|nearest core|node FROM [SET]|xml]  the machine's model",
      cmd_topo },
    { "sleep", "sleep [TICKS]            let others run for TICKS timer ticks", cmd_sleep },
    { "wait", "wait [TICKS]             until every domain started with run has ended (at most TICKS ticks)",
      cmd_wait },
    { "status", "status                   the previous command's status", cmd_status },
    { "poweroff", "poweroff [STATUS]        end the machine (default: previous status)", cmd_poweroff },
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        printf("  %s\n", commands[i].usage);
    return 0;
}

static int run_line(char *line)
{
    char *argv[MAX_ARGS];
    int argc = 0;
    for (char *p = line; *p && argc < MAX_ARGS;) {
        while (*p == ' ' || *p == '\t')
            *p++ = 0;
        if (!*p)
            break;
        argv[argc++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    if (argc == 0)
        return last_status;
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (!strcmp(argv[0], commands[i].name))
            return commands[i].run(argc, argv);
    printf("%s: unknown command (try help)\n", argv[0]);
    return 127;
}

/* -- the serial line, a character at a time, as a waitset source ------------------------- */
static char line[LINE_MAX];
static size_t line_len;

static void prompt(void)
{
    printf("atoll> ");
    stdout_flush();
}

static bool serial_poll(struct ws_source *s)
{
    (void)s;
    uint8_t c;
    errval_t err = sys_console_read(io_slot, &c);
    if (err)
        return false;
    if (c == '\r' || c == '\n') {
        putchar('\n');
        line[line_len] = 0;
        line_len = 0;
        last_status = run_line(line);
        prompt();
        return true;
    }
    if ((c == 8 || c == 127) && line_len) {
        line_len--;
        printf("\b \b");
    } else if (c >= 32 && c < 127 && line_len < sizeof line - 1) {
        line[line_len++] = (char)c;
        putchar(c);
    }
    stdout_flush();
    return true;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    si = startup();
    sys_core_info(&at_start);
    /* Our monitor: typed requests, and the serial port's I/O capability. */
    errval_t rerr = ERR_OK, err = monitor_connect();
    if (!err)
        err = monlmp_iocap_rpc(monitor_lmp(), &rerr, &io_slot);
    if (err || rerr) {
        printf("shell: cannot reach the monitor: %s\n", err_name(err ? err : rerr));
        return 1;
    }
    mon = monitor_chan();
    /* Commands may reach any core: first let the monitors finish their mesh. */
    uint64_t channels = 0;
    err = monlmp_mesh_wait_rpc(monitor_lmp(), &rerr, &channels);
    if (err || rerr)
        printf("shell: the monitors' mesh is not up: %s\n", err_name(err ? err : rerr));
    /* ...and the services of the boot manifest. */
    uint32_t services = 0, refused = 0;
    err = wait_for_services(&services, &refused);
    if (err)
        printf("shell: the services are not all up: %s\n", err_name(err));
    /* `run` takes a domain's RAM from the memory service of its core's
     * node: its channels now, not in the middle of what a test counts. */
    if ((err = mem_spawn_ready()) && err != ERR_NOT_FOUND)
        printf("shell: the memory service does not answer: %s (run uses the monitors' RAM)\n", err_name(err));
    printf("Atoll shell on core %u: %u cores, %llu channels between their monitors, %u services%s. Type help.\n",
           si->core_id, si->ncores, (unsigned long long)channels, services, refused ? " (some refused: svc)" : "");
    /* The serial line interrupts nobody (no IRQ reaches user space yet):
     * it is polled, every timer tick at the least. */
    static struct waitset ws;
    static struct ws_source serial = { .poll = serial_poll, .name = "serial line" };
    waitset_init(&ws);
    ws.spin_ns = 0;
    ws.max_sleep_ns = 10000000;
    waitset_add(&ws, &serial);
    prompt();
    waitset_run(&ws);
    return 0;
}
