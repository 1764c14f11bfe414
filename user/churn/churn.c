/*
 * churn: many short client lifetimes against the name server and an echo
 * service, then a check that nothing they used stayed behind.
 *
 *   churn LIVES [PAR]
 *
 * It starts `echo serve churn.echo` on core 1 (core 0 on one core), then
 * runs `echo life exit|fault churn.echo` LIVES times, spread over every
 * core, at most PAR (default 4) at once; every fourth life ends by a fault.
 * After a warm-up of two lives per core it records what every monitor, the
 * name server and the echo server hold (their `stats`); after the last
 * life it waits for the monitors' sweeps to settle and records them again.
 * One event says how it went:
 *
 *   @atoll {"event":"churn_done","lives":N,"failed":F,"ok":true|false,
 *           "ns_heap_grew_bytes":B,"echo_heap_grew_bytes":B,"diff":"what differs, or empty"}
 *   (a server heap's growth by a few frames with nothing more in use is a
 *   high-water mark, not a diff: see heap_grew)
 *
 * and it stops the echo server, so a shell `wait` after it returns.
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <if/echo_if.h>
#include <if/monclient_if.h>
#include <if/nameservice_if.h>

#define MAX_CORES 64
#define SETTLE_MS 20000

static const struct startup_info *si;
static struct service_chan names, echo;
static struct idl_chan *mon;
static uint8_t replybuf[monclient_size_max + nameservice_size_max + echo_size_max];
static uint32_t ncores;

static uint64_t now_ms(void) { return urpc_os_now_ns() / 1000000; }

static int fail(const char *what, errval_t err)
{
    printf("@atoll {\"event\":\"churn_done\",\"lives\":0,\"failed\":0,\"ok\":false,\"diff\":\"%s: %s\"}\n", what,
           err_name(err));
    return 1;
}

/* Domains our monitors count as started and still alive, on every core. */
static errval_t busy_total(uint64_t *total)
{
    *total = 0;
    for (uint32_t c = 0; c < ncores; c++) {
        uint64_t n = 0;
        errval_t rerr = ERR_OK, err = monclient_busy_rpc(mon, c, &rerr, &n);
        if (err || rerr)
            return err ? err : rerr;
        *total += n;
    }
    return ERR_OK;
}

/* -- what everyone holds ------------------------------------------------------------ */
struct snapshot {
    char monitor[MAX_CORES][400];   /* each monitor's stats, minus its running counters */
    uint32_t ns_clients, ns_names, ns_slots, echo_clients, echo_slots;
    uint64_t ns_ram, ns_heap, echo_ram, echo_heap;
};

/* Keep the keys that must come back ("children":2 ...) and drop the
 * counters that only grow (spawned, served, opened, freed, ends_seen). */
static void steady_part(const char *json, char *out, size_t size)
{
    static const char *const keep[] = { "\"children\"", "\"clients\"", "\"conns\"", "\"conns_owned\"",
                                        "\"services\"", "\"pending\"", "\"slots_free\"", "\"ram_free\"",
                                        "\"heap_in_use\"", "\"heap_chunks\"" };
    size_t len = 0;
    out[0] = 0;
    for (size_t k = 0; k < ARRAY_SIZE(keep); k++) {
        const char *p = strstr(json, keep[k]);
        if (!p)
            continue;
        const char *end = p;
        while (*end && *end != ',' && *end != '}')
            end++;
        int n = snprintf(out + len, size - len, "%.*s ", (int)(end - p), p);
        if (n > 0 && (size_t)n < size - len)
            len += (size_t)n;
    }
}

static errval_t snapshot(struct snapshot *s)
{
    for (uint32_t c = 0; c < ncores && c < MAX_CORES; c++) {
        const char *json;
        errval_t rerr = ERR_OK, err = monclient_stats_rpc(mon, c, &rerr, &json, replybuf, sizeof replybuf);
        if (err || rerr)
            return err ? err : rerr;
        steady_part(json, s->monitor[c], sizeof s->monitor[c]);
    }
    uint64_t accepted, dropped, refused, served, calls, chunks;
    errval_t err = nameservice_stats_rpc(&names.idl, &s->ns_clients, &s->ns_names, &accepted, &dropped, &refused,
                                         &served, &s->ns_slots, &s->ns_ram, &s->ns_heap, &chunks);
    if (!err)
        err = echo_stats_rpc(&echo.idl, &s->echo_clients, &accepted, &dropped, &refused, &calls, &s->echo_slots,
                             &s->echo_ram, &s->echo_heap);
    return err;
}

/* A server's heap keeps the frames it grew by (malloc never unmaps), so a
 * server that once had more clients at a time than during the warm-up
 * holds a frame or two more RAM afterwards with nothing in use: a high-water
 * mark, not a leak. It counts as that when the heap's bytes in use are back
 * exactly and at most HEAP_GROWTH_FRAMES more slots hold at most that many
 * 64 KiB frames; a leak of anything a client held shows in the heap in use
 * or grows with the number of lives, far past this bound. */
#define HEAP_GROWTH_FRAMES 4
static uint32_t heap_growths;   /* times the bound was used (reported) */

static bool heap_grew(uint64_t heap_a, uint64_t heap_b, uint32_t slots_a, uint32_t slots_b, uint64_t ram_a,
                      uint64_t ram_b)
{
    if (heap_a != heap_b || slots_b > slots_a || ram_b > ram_a)
        return false;
    uint32_t frames = slots_a - slots_b;
    if (frames == 0 && ram_a == ram_b)
        return false;   /* nothing differs */
    if (frames > HEAP_GROWTH_FRAMES || ram_a - ram_b > (uint64_t)frames * (64u << 10))
        return false;
    heap_growths++;
    return true;
}

/* What differs between two snapshots, as text (empty: nothing). */
static void compare(const struct snapshot *a, const struct snapshot *b, char *out, size_t size)
{
    size_t len = 0;
    out[0] = 0;
#define ADD(...)                                                          \
    do {                                                                  \
        int n_ = snprintf(out + len, size - len, __VA_ARGS__);           \
        if (n_ > 0 && (size_t)n_ < size - len)                            \
            len += (size_t)n_;                                            \
    } while (0)
    for (uint32_t c = 0; c < ncores && c < MAX_CORES; c++)
        if (strcmp(a->monitor[c], b->monitor[c]))
            ADD("monitor %u: %s-> %s; ", c, a->monitor[c], b->monitor[c]);
#define FIELD(f)                                                                                      \
    if (a->f != b->f)                                                                                 \
        ADD(#f " %llu -> %llu; ", (unsigned long long)a->f, (unsigned long long)b->f);
    FIELD(ns_clients) FIELD(ns_names) FIELD(ns_heap) FIELD(echo_clients) FIELD(echo_heap)
    if (!heap_grew(a->ns_heap, b->ns_heap, a->ns_slots, b->ns_slots, a->ns_ram, b->ns_ram)) {
        FIELD(ns_slots) FIELD(ns_ram)
    }
    if (!heap_grew(a->echo_heap, b->echo_heap, a->echo_slots, b->echo_slots, a->echo_ram, b->echo_ram)) {
        FIELD(echo_slots) FIELD(echo_ram)
    }
#undef FIELD
#undef ADD
    for (char *p = out; *p; p++)   /* it goes into a JSON string */
        if (*p == '"')
            *p = '\'';
}

/* -- the lives ------------------------------------------------------------------------ */
static uint32_t failed;

static errval_t run_lives(uint32_t first, uint32_t count, uint32_t par, uint64_t base_busy)
{
    for (uint32_t i = first; i < first + count; i++) {
        for (;;) {   /* at most `par` alive at once */
            uint64_t busy;
            errval_t err = busy_total(&busy);
            if (err)
                return err;
            if (busy < base_busy + par)
                break;
            sys_notify_wait(sys_notify_gen(), 1000, 0);
        }
        char cmd[64];
        snprintf(cmd, sizeof cmd, "echo life %s churn.echo", i % 4 == 3 ? "fault" : "exit");
        uint64_t id;
        errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, i % ncores, cmd, 0, false, 0, &rerr, &id);
        if (err)
            return err;
        if (rerr) {
            failed++;
            printf("churn: life %u on core %u: %s\n", i, i % ncores, err_name(rerr));
        }
    }
    for (;;) {   /* and wait for the last ones */
        uint64_t busy;
        errval_t err = busy_total(&busy);
        if (err || busy <= base_busy)
            return err;
        sys_notify_wait(sys_notify_gen(), 1000, 0);
    }
}

int main(int argc, char **argv)
{
    static struct snapshot before, after;
    static char diff[600];   /* the event line stays within one print */
    si = startup();
    ncores = si->ncores < MAX_CORES ? si->ncores : MAX_CORES;
    uint32_t lives = argc > 1 ? arg_number(argv[1], 100) : 100, par = argc > 2 ? arg_number(argv[2], 4) : 4;
    errval_t err = monitor_connect(), rerr = ERR_OK;
    mon = monitor_chan();
    if (!err)
        err = names_connect(&names);
    if (err)
        return fail("connect", err);

    /* The service every life calls. */
    uint64_t id, service = 0;
    const char *iface;
    err = monclient_spawn_rpc(mon, ncores > 1 ? 1 : 0, "echo serve churn.echo", 0, false, 0, &rerr, &id);
    for (int tries = 0; !err && !rerr && tries < 2000; tries++) {
        err = nameservice_lookup_rpc(&names.idl, "churn.echo", &rerr, &iface, &service, replybuf, sizeof replybuf);
        if (rerr != ERR_NOT_FOUND)
            break;
        rerr = ERR_OK;
        sys_yield();
    }
    if (!err && !rerr)
        err = service_connect(service, &echo);
    if (err || rerr)
        return fail("the echo service", err ? err : rerr);
    uint64_t base_busy;
    err = busy_total(&base_busy);   /* we and the echo server */

    uint32_t warm = 2 * ncores;
    if (!err)
        err = run_lives(0, warm, par, base_busy);
    /* The baseline once the warm-up's connections are freed: the same
     * snapshot three times in a row, 100 ms apart. */
    for (int same = 0; !err && same < 3;) {
        static struct snapshot prev;
        err = snapshot(&before);
        compare(&prev, &before, diff, sizeof diff);
        same = diff[0] ? 0 : same + 1;
        prev = before;
        sys_notify_wait(sys_notify_gen(), 100000, 0);
    }
    uint64_t t0 = now_ms();
    if (!err)
        err = run_lives(warm, lives, par, base_busy);
    uint64_t took = now_ms() - t0;
    /* Connections are freed by the monitors' sweeps: give them time. */
    uint64_t settle0 = now_ms();
    while (!err) {
        err = snapshot(&after);
        if (err)
            break;
        compare(&before, &after, diff, sizeof diff);
        if (!diff[0] || now_ms() - settle0 > SETTLE_MS)
            break;
        sys_notify_wait(sys_notify_gen(), 100000, 0);
    }
    if (err)
        return fail("stats", err);
    printf("@atoll {\"event\":\"churn_done\",\"lives\":%u,\"failed\":%u,\"ok\":%s,\"ms\":%llu,\"settle_ms\":%llu,"
           "\"ns_clients\":%u,\"ns_names\":%u,\"echo_clients\":%u,\"ns_heap_grew_bytes\":%llu,"
           "\"echo_heap_grew_bytes\":%llu,\"diff\":\"%s\"}\n",
           lives, failed, !diff[0] && !failed ? "true" : "false", (unsigned long long)took,
           (unsigned long long)(now_ms() - settle0), after.ns_clients, after.ns_names, after.echo_clients,
           (unsigned long long)(before.ns_ram - after.ns_ram), (unsigned long long)(before.echo_ram - after.echo_ram),
           diff);
    stdout_flush();
    errval_t qerr;
    echo_quit_rpc(&echo.idl, &qerr);
    return !diff[0] && !failed ? 0 : 1;
}
