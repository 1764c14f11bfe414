/*
 * The store's client (docs/store.md): reads go to the nearest replica (the
 * name server's lookup), writes to the leader (its `leader` answer).
 *
 *   store put NAME KEY VALUE
 *   store putn NAME KEY N             a value of N bytes ('v'): the bound
 *   store get NAME KEY [stale]        fresh (linearizable) unless "stale"
 *   store del NAME KEY
 *   store cas NAME KEY OLD|- NEW      "-": expect the key absent
 *   store list NAME [PREFIX]
 *   store watch NAME KEY COUNT        print the next COUNT changes of KEY
 *   store flood NAME N                N channels to the nearest replica at
 *                                     once, a call on each: how many it took
 *   store state NAME                  every replica's table: keys, applied
 *                                     index and a digest of its contents
 *   store bench NAME CLIENT OPS READ KEYS ROUND N [stale]
 *                                     the store benchmark's client (docs/bench.md)
 *   store hist NAME CLIENT OPS KEYS [reads]
 *                                     OPS random operations on KEYS keys,
 *                                     each printed with its start and end
 *                                     time for tools/linearize ("reads":
 *                                     fresh gets only, of each key in turn)
 *
 * Events: store_result {op, key, err, value, version}; store_state {core,
 * leader, keys, applied, commit, digest}; store_op {c, i, op, k, v, x, r,
 * t0, t1, at} (hist; docs/store.md says what the fields mean); store_hist
 * {c, ops, errors, reconnects}; store_watching {key, version, core};
 * store_changed {key, version, deleted}.
 */
#include <atoll/costmodel.h>
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <if/nameservice_if.h>
#include <if/store_if.h>
#include "kv.h"
#include "store.h"

static const char *name;
static uint8_t buf[store_size_max + nameservice_size_max];

struct conn {
    struct service_chan local, leader;
    bool open, leader_open;    /* leader_open false: the local replica leads */
    bool no_leader;            /* the local replica has lost its leader: reads only */
    uint32_t local_core;
};

static void conn_close(struct conn *c)
{
    if (c->leader_open)
        service_chan_close(&c->leader, ERR_OK);
    if (c->open)
        service_chan_close(&c->local, ERR_OK);
    c->open = c->leader_open = false;
}

/* The nearest replica, and the leader if it is another. */
static errval_t conn_open(struct conn *c)
{
    uint64_t service, leader, term;
    uint32_t leader_core;
    errval_t rerr = ERR_OK, err = names_lookup(name, 0, &service);   /* a channel remade if the name server restarted */
    if (!err)
        err = service_connect(service, &c->local);
    if (err)
        return err;
    c->open = true;
    c->local_core = SERVICE_CORE(service);
    err = store_leader_rpc(&c->local.idl, &rerr, &leader_core, &leader, &term);
    errval_t why = err == ERR_CHAN_CLOSED ? urpc_peer_closed(&c->local.ch) : ERR_OK;
    if (why)
        err = why;   /* the replica's reason: ERR_TOO_MANY, ERR_QUOTA */
    c->no_leader = !err && rerr == ERR_NO_LEADER;
    if (!err && !(err = rerr) && leader != service && !(err = service_connect(leader, &c->leader)))
        c->leader_open = true;
    if (c->no_leader)
        err = ERR_OK;   /* reads still work */
    if (err)
        conn_close(c);
    return err;
}

static struct idl_chan *writes(struct conn *c) { return c->leader_open ? &c->leader.idl : &c->local.idl; }

static void result(const char *op, const char *key, errval_t err, const uint8_t *v, size_t vlen, uint64_t version)
{
    printf("@atoll {\"event\":\"store_result\",\"op\":\"%s\",\"key\":\"%s\",\"err\":\"%s\",\"value\":\"%.*s\","
           "\"version\":%llu}\n", op, key, err_name(err), (int)vlen, v ? (const char *)v : "", (unsigned long long)version);
}

static int usage(void)
{
    printf("usage: store put NAME KEY VALUE | putn NAME KEY N | get NAME KEY [stale] | del NAME KEY | cas NAME KEY OLD|- NEW |\n"
           "       list NAME [PREFIX] | watch NAME KEY COUNT | flood NAME N | state NAME | hist NAME CLIENT OPS KEYS [reads] |\n"
           "       acked NAME CLIENT ROUNDS EVERY_MS |\n"
           "       bench NAME CLIENT OPS READ KEYS ROUND N [stale] | serve NAME KEY CORES\n");
    return 2;
}

/* -- one call from the shell ---------------------------------------------------------------- */

#define WRITE_WAIT_NS 5000000000ull

static int one(int argc, char **argv)
{
    struct conn c = { 0 };
    errval_t err = conn_open(&c), rerr = ERR_OK;
    if (err)
        return printf("store: %s: %s\n", name, err_name(err)), 1;
    const char *op = argv[1], *key = argc > 3 ? argv[3] : "";
    const uint8_t *v = 0;
    size_t vlen = 0;
    uint64_t version = 0;
    bool write = !strcmp(op, "put") || !strcmp(op, "putn") || !strcmp(op, "del") || !strcmp(op, "cas");
    /* A write while the nearest replica has no leader (it has not found the
     * boot leader yet, or an election is under way): look again every 5 ms
     * for up to WRITE_WAIT_NS, then answer ERR_NO_LEADER. */
    for (uint64_t until = now_ns() + WRITE_WAIT_NS; write && c.no_leader && now_ns() < until;) {
        conn_close(&c);
        sys_notify_wait(sys_notify_gen(), 5000, 0);
        if ((err = conn_open(&c)))
            return printf("store: %s: %s\n", name, err_name(err)), 1;
    }
    if (write && c.no_leader && argc >= 5 - !strcmp(op, "del")) {
        rerr = ERR_NO_LEADER;
    } else if (!strcmp(op, "put") && argc == 5) {
        err = store_put_rpc(writes(&c), key, (const uint8_t *)argv[4], strlen(argv[4]), &rerr, &version);
    } else if (!strcmp(op, "putn") && argc == 5) {
        static uint8_t big[STORE_VALUE_MAX + 16];
        size_t n = arg_number(argv[4], 0);
        n = n > sizeof big ? sizeof big : n;
        memset(big, 'v', n);
        err = store_put_rpc(writes(&c), key, big, n, &rerr, &version);
    } else if (!strcmp(op, "get") && (argc == 4 || argc == 5)) {
        err = store_get_rpc(&c.local.idl, key, argc == 4, &rerr, &v, &vlen, &version, buf, sizeof buf);
    } else if (!strcmp(op, "del") && argc == 4) {
        err = store_del_rpc(writes(&c), key, &rerr, &version);
    } else if (!strcmp(op, "cas") && argc == 6) {
        bool present = strcmp(argv[4], "-") != 0;
        err = store_cas_rpc(writes(&c), key, present, (const uint8_t *)(present ? argv[4] : ""),
                            present ? strlen(argv[4]) : 0, (const uint8_t *)argv[5], strlen(argv[5]), &rerr, &version);
    } else if (!strcmp(op, "list") && (argc == 3 || argc == 4)) {
        uint32_t first = 0, total = 0, count = 0;
        do {
            const char *text;
            err = store_list_rpc(&c.local.idl, key, first, &rerr, &total, &count, &text, buf, sizeof buf);
            if (!err && !rerr)
                printf("%s", text);
            first += count;
        } while (!err && !rerr && count && first < total);
        printf("@atoll {\"event\":\"store_list\",\"prefix\":\"%s\",\"err\":\"%s\",\"keys\":%u}\n", key,
               err_name(err ? err : rerr), total);
        conn_close(&c);
        return err || rerr;
    } else {
        conn_close(&c);
        return usage();
    }
    if (err)
        printf("store: %s: %s\n", op, err_name(err));
    else
        result(op, key, rerr, v, vlen, version);
    conn_close(&c);
    return err || rerr;
}

/* -- watching a key ------------------------------------------------------------------------ */

static int watch(const char *key, uint32_t count)
{
    struct conn c = { 0 };
    uint64_t version = 0;
    errval_t rerr = ERR_OK, err = conn_open(&c);
    if (!err)
        err = store_watch_rpc(&c.local.idl, key, &rerr, &version);
    if (err || rerr) {
        printf("store: watch %s: %s\n", key, err_name(err ? err : rerr));
        conn_close(&c);
        return 1;
    }
    printf("@atoll {\"event\":\"store_watching\",\"key\":\"%s\",\"version\":%llu,\"core\":%u}\n", key,
           (unsigned long long)version, c.local_core);
    stdout_flush();
    c.local.ch.timeout_ns = 0;   /* a change may be long in coming */
    for (uint32_t i = 0; i < count && !err; i++) {
        size_t len = 0;
        struct store_msg m;
        if (!(err = c.local.idl.recv(&c.local.idl, buf, sizeof buf, &len, 0)) && !(err = store_decode(buf, len, &m)) &&
            m.type != store_changed)
            err = ERR_MSG_UNKNOWN;
        if (!err)
            printf("@atoll {\"event\":\"store_changed\",\"key\":\"%s\",\"version\":%llu,\"deleted\":%s}\n",
                   m.u.changed.key, (unsigned long long)m.u.changed.version, m.u.changed.deleted ? "true" : "false");
    }
    if (err)
        printf("store: watch %s: %s\n", key, err_name(err));
    conn_close(&c);
    return err != ERR_OK;
}

/* -- one domain opening many channels --------------------------------------------------------- */

static int flood(uint32_t n)
{
    static struct service_chan ch[32];
    uint64_t service;
    uint32_t ok = 0, quota = 0, other = 0, opened = 0;
    errval_t err = names_lookup(name, 0, &service);
    n = n > 32 ? 32 : n;
    for (; !err && opened < n; opened++)
        if ((err = service_connect(service, &ch[opened])))
            break;
    for (uint32_t i = 0; i < opened; i++) {
        uint32_t core, keys, peers, clients;
        bool leader;
        uint64_t applied, commit, nops;
        uint64_t term;
        errval_t e = store_stats_rpc(&ch[i].idl, &core, &leader, &keys, &applied, &commit, &peers, &clients, &nops,
                                     &term);
        if (e == ERR_CHAN_CLOSED && urpc_peer_closed(&ch[i].ch))
            e = urpc_peer_closed(&ch[i].ch);   /* why it hung up */
        e == ERR_OK ? ok++ : e == ERR_QUOTA ? quota++ : other++;
    }
    for (uint32_t i = 0; i < opened; i++)
        service_chan_close(&ch[i], ERR_OK);
    printf("@atoll {\"event\":\"store_flood\",\"channels\":%u,\"served\":%u,\"quota\":%u,\"other\":%u,"
           "\"err\":\"%s\"}\n", opened, ok, quota, other, err_name(err));
    return err != ERR_OK;
}

/* -- every replica's state ------------------------------------------------------------------- */

/* FNV-1a over every key, value and version, in key order. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
    return h;
}

static errval_t replica_state(uint32_t core, uint64_t service)
{
    static char keys[STORE_KEYS_MAX][STORE_KEY_MAX + 1];
    static uint8_t lbuf[store_size_max];
    struct service_chan ch;
    errval_t rerr = ERR_OK, err = service_connect(service, &ch);
    if (err)
        return err;
    uint32_t n = 0, first = 0, total = 0, count = 0;
    do {
        const char *text;
        if ((err = store_list_rpc(&ch.idl, "", first, &rerr, &total, &count, &text, lbuf, sizeof lbuf)) || (err = rerr))
            break;
        for (const char *p = text; *p && n < STORE_KEYS_MAX; n++) {
            size_t k = 0;
            while (*p && *p != '\n' && k < STORE_KEY_MAX)
                keys[n][k++] = *p++;
            keys[n][k] = 0;
            if (*p == '\n')
                p++;
        }
        first += count;
    } while (count && first < total);
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; !err && i < n; i++) {
        const uint8_t *v;
        size_t vlen;
        uint64_t version;
        if ((err = store_get_rpc(&ch.idl, keys[i], false, &rerr, &v, &vlen, &version, lbuf, sizeof lbuf)) || (err = rerr))
            break;
        h = fnv(fnv(fnv(h, keys[i], strlen(keys[i]) + 1), v, vlen), &version, sizeof version);
    }
    uint32_t score = 0, skeys = 0, peers = 0, clients = 0;
    bool leader = false;
    uint64_t applied = 0, commit = 0, ops = 0, term = 0;
    if (!err)
        err = store_stats_rpc(&ch.idl, &score, &leader, &skeys, &applied, &commit, &peers, &clients, &ops, &term);
    if (!err)
        printf("@atoll {\"event\":\"store_state\",\"core\":%u,\"leader\":%s,\"keys\":%u,\"applied\":%llu,"
               "\"commit\":%llu,\"peers\":%u,\"term\":%llu,\"digest\":\"%016llx\"}\n", core,
               leader ? "true" : "false", skeys, (unsigned long long)applied, (unsigned long long)commit, peers,
               (unsigned long long)term, (unsigned long long)h);
    service_chan_close(&ch, ERR_OK);
    return err;
}

static bool state_of(uint32_t core, uint64_t service, void *arg)
{
    errval_t *err = arg;
    return !(*err = replica_state(core, service));
}

static int state(void)
{
    errval_t err2 = ERR_OK, err = group_instances(name, state_of, &err2);
    if (!err)
        err = err2;
    if (err)
        printf("store: state %s: %s\n", name, err_name(err));
    return err != ERR_OK;
}

/* -- a recorded history ------------------------------------------------------------------------ */

static uint64_t rng;
static uint32_t rand32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Did the call reach a verdict? Transport errors leave a write's outcome
 * unknown ("r":"?": the checker lets it take effect or not). */
static bool transport_error(errval_t err) { return err != ERR_OK; }

static int hist(uint32_t client, uint32_t nops, uint32_t nkeys, bool reads_only)
{
    struct conn c = { 0 };
    uint32_t errors = 0, reconnects = 0;
    char last[8][32];   /* what this client last saw of each key: a cas's expectation */
    bool seen[8] = { false };
    rng = 0x9e3779b97f4a7c15ull * (client + 1) ^ read_tsc();
    if (nkeys < 1 || nkeys > 8)
        nkeys = 3;
    for (uint32_t i = 0; i < nops; i++) {
        if (!c.open) {
            errval_t err = conn_open(&c);
            if (err) {
                errors++;
                sys_notify_wait(sys_notify_gen(), 5000, 0);   /* 5 ms, then look again */
                i--;   /* this operation again (at 0 it wraps, and the loop's i++ brings it back: op 0 was skipped) */
                if (errors > 2000)
                    break;
                continue;
            }
            reconnects++;
        }
        uint32_t k = reads_only ? i % nkeys : rand32() % nkeys, dice = reads_only ? 50 : rand32() % 100;
        char key[8], val[32];
        snprintf(key, sizeof key, "k%u", k);
        snprintf(val, sizeof val, "c%u.%u", client, i);
        const char *op;
        const uint8_t *out = (const uint8_t *)"";
        size_t outlen = 0;
        uint64_t version = 0;
        errval_t rerr = ERR_OK, err;
        char expect[32] = "";
        bool present = false;
        if (c.no_leader && (dice < 35 || dice >= 75)) {
            /* A write while there is no leader (an election): look for one
             * again in 5 ms and do this operation then. */
            conn_close(&c);
            errors++;
            sys_notify_wait(sys_notify_gen(), 5000, 0);
            i--;
            if (errors > 2000)
                break;
            continue;
        }
        uint32_t at = c.local_core;   /* the replica a read goes to (a write: the leader) */
        uint64_t t0 = now_ns();
        if (dice < 35) {
            op = "put";
            err = store_put_rpc(writes(&c), key, (const uint8_t *)val, strlen(val), &rerr, &version);
        } else if (dice < 75) {
            op = "get";
            val[0] = 0;
            err = store_get_rpc(&c.local.idl, key, true, &rerr, &out, &outlen, &version, buf, sizeof buf);
        } else if (dice < 90) {
            op = "cas";
            present = seen[k];
            if (present)
                snprintf(expect, sizeof expect, "%s", last[k]);
            err = store_cas_rpc(writes(&c), key, present, (const uint8_t *)expect, strlen(expect),
                                (const uint8_t *)val, strlen(val), &rerr, &version);
        } else {
            op = "del";
            val[0] = 0;
            err = store_del_rpc(writes(&c), key, &rerr, &version);
        }
        uint64_t t1 = now_ns();
        if (transport_error(err)) {
            errors++;
            conn_close(&c);
        } else if (rerr == ERR_NO_LEADER || rerr == ERR_NOT_LEADER) {
            conn_close(&c);   /* the leader changed: look it up again at the next */
        }
        /* What the client learnt of the key, for its next cas. */
        if (!err && !rerr && !strcmp(op, "get") && outlen < sizeof last[k]) {
            memcpy(last[k], out, outlen);
            last[k][outlen] = 0;
            seen[k] = true;
        } else if (!err && rerr == ERR_NOT_FOUND && !strcmp(op, "get")) {
            seen[k] = false;
        } else if (!err && !rerr && op[0] != 'd') {
            snprintf(last[k], sizeof last[k], "%s", val);
            seen[k] = true;
        } else if (!err && !rerr) {
            seen[k] = false;
        }
        printf("@atoll {\"event\":\"store_op\",\"c\":%u,\"i\":%u,\"op\":\"%s\",\"k\":\"%s\",\"v\":\"%s\",\"x\":%s%s%s,"
               "\"r\":\"%s\",\"out\":\"%.*s\",\"ver\":%llu,\"t0\":%llu,\"t1\":%llu,\"at\":%u}\n",
               client, i, op, key, val, present ? "\"" : "", present ? expect : "null", present ? "\"" : "",
               err ? "?" : err_name(rerr), (int)outlen, (const char *)out, (unsigned long long)version,
               (unsigned long long)t0, (unsigned long long)t1, at);
    }
    conn_close(&c);
    printf("@atoll {\"event\":\"store_hist\",\"c\":%u,\"ops\":%u,\"errors\":%u,\"reconnects\":%u}\n", client, nops,
           errors, reconnects);
    return 0;
}

/* -- acknowledged writes kept (the fault campaign, docs/faults.md) --------------------------------- */

/* `store acked NAME CLIENT ROUNDS EVERY_MS`: ROUNDS rounds (or until the
 * name `campaign.over` is registered: the starter's campaign is over), one
 * every EVERY_MS: a put of the round's number
 * to one of ACKED_KEYS keys of its own (a<CLIENT>.<k>), then a fresh get of
 * one of them. The client is the keys' only writer and its values only
 * grow, so a read below the last value acknowledged for that key is an
 * acknowledged write lost (store_lost), and one above the last value
 * tried is a value nobody wrote. At the end every key is read once more.
 * One store_acked event. */
#define ACKED_KEYS 8

static uint64_t value_of(const uint8_t *v, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n && v[i] >= '0' && v[i] <= '9'; i++)
        x = x * 10 + (uint64_t)(v[i] - '0');
    return x;
}

struct acked_run {
    struct conn c;
    uint32_t client;
    uint64_t acked[ACKED_KEYS], tried[ACKED_KEYS];
    uint32_t writes, acks, checks, lost, wrong, errors, reconnects;
};

static bool acked_open(struct acked_run *r)
{
    for (uint32_t tries = 0; !r->c.open || r->c.no_leader; tries++) {
        if (r->c.open)
            conn_close(&r->c);
        if (!conn_open(&r->c) && !r->c.no_leader) {
            r->reconnects++;
            return true;
        }
        if (tries == 20000)
            return false;   /* no leader for minutes: give up (counted in errors) */
        sys_notify_wait(sys_notify_gen(), 5000, 0);
    }
    return true;
}

/* A fresh read of key k, checked: true if it got an answer. */
static bool acked_check(struct acked_run *r, uint32_t k)
{
    char key[24];
    snprintf(key, sizeof key, "a%u.%u", r->client, k);
    const uint8_t *out = 0;
    size_t outlen = 0;
    uint64_t version = 0;
    errval_t rerr = ERR_OK, err = store_get_rpc(&r->c.local.idl, key, true, &rerr, &out, &outlen, &version, buf,
                                                sizeof buf);
    if (err || (rerr && rerr != ERR_NOT_FOUND)) {
        if (err || rerr == ERR_NO_LEADER || rerr == ERR_NOT_LEADER)
            conn_close(&r->c);
        return false;
    }
    uint64_t v = rerr == ERR_NOT_FOUND ? 0 : value_of(out, outlen);
    r->checks++;
    if (v < r->acked[k]) {
        r->lost++;
        printf("@atoll {\"event\":\"store_lost\",\"c\":%u,\"key\":\"%s\",\"acked\":%llu,\"read\":%llu,\"err\":\"%s\"}\n",
               r->client, key, (unsigned long long)r->acked[k], (unsigned long long)v, err_name(rerr));
    } else if (v > r->tried[k]) {
        r->wrong++;
        printf("@atoll {\"event\":\"store_wrong\",\"c\":%u,\"key\":\"%s\",\"tried\":%llu,\"read\":%llu}\n", r->client,
               key, (unsigned long long)r->tried[k], (unsigned long long)v);
    }
    return true;
}

static int acked(uint32_t client, uint32_t rounds, uint32_t every_ms)
{
    static struct acked_run r;
    r = (struct acked_run){ .client = client };
    rng = 0x9e3779b97f4a7c15ull * (client + 1) ^ read_tsc();
    bool done = false;
    for (uint32_t i = 1; i <= rounds && !done; i++) {
        if (!acked_open(&r)) {
            r.errors++;
            break;
        }
        uint32_t k = i % ACKED_KEYS;
        char key[24], val[16];
        snprintf(key, sizeof key, "a%u.%u", client, k);
        snprintf(val, sizeof val, "%u", i);
        uint64_t version = 0;
        errval_t rerr = ERR_OK, err = store_put_rpc(writes(&r.c), key, (const uint8_t *)val, strlen(val), &rerr, &version);
        r.writes++;
        r.tried[k] = i;   /* unknown outcome on a transport error: it may have been applied */
        if (!err && !rerr) {
            r.acked[k] = i;
            r.acks++;
        } else {
            r.errors++;
            if (err || rerr == ERR_NO_LEADER || rerr == ERR_NOT_LEADER)
                conn_close(&r.c);
        }
        if (r.c.open)
            acked_check(&r, rand32() % ACKED_KEYS);
        uint64_t over;
        if (i % 16 == 0)
            done = !names_lookup("campaign.over", 0, &over);
        if (every_ms)
            sys_notify_wait(sys_notify_gen(), every_ms * 1000ull, 0);
    }
    /* Every key once more, each until a read gets an answer. */
    for (uint32_t k = 0; k < ACKED_KEYS; k++)
        for (uint32_t tries = 0; tries < 2000; tries++) {
            if (acked_open(&r) && acked_check(&r, k))
                break;
            sys_notify_wait(sys_notify_gen(), 5000, 0);
        }
    conn_close(&r.c);
    printf("@atoll {\"event\":\"store_acked\",\"c\":%u,\"writes\":%u,\"acked\":%u,\"checks\":%u,\"lost\":%u,"
           "\"wrong\":%u,\"errors\":%u,\"reconnects\":%u}\n",
           client, r.writes, r.acks, r.checks, r.lost, r.wrong, r.errors, r.reconnects);
    return r.lost || r.wrong;
}

/* -- the store benchmark (docs/bench.md) --------------------------------------------------------- */

/* OPS operations on random keys of KEYS (k0..): a get (fresh, or stale with
 * `stale`) with probability READ/100, else a put. One store_bench event:
 * the loop's start and end (the guest's clock, comparable across cores),
 * the operations, errors, and the median latency of one operation. The
 * sweep (tools/atoll_bench.py) runs N of these at once, one a core, and
 * adds them up. */
/* The round's N clients start together: each adds itself to the count in
 * key b<ROUND> (cas), then waits until the count is N. (The shell starts
 * them one after another, often slower than a client's whole loop.)
 * *last: this client's cas made the count N. With wait false it only
 * counts itself in (the end of the round: key e<ROUND>). */
static errval_t barrier(struct conn *c, char prefix, uint32_t round, uint32_t n, bool wait, bool *last)
{
    char key[16], now[16], next[16];
    snprintf(key, sizeof key, "%c%u", prefix, round);
    bool joined = false;
    *last = false;
    for (uint32_t tries = 0; tries < 100000; tries++) {
        const uint8_t *out;
        size_t outlen = 0;
        uint64_t version;
        errval_t rerr = ERR_OK, err = store_get_rpc(&c->local.idl, key, true, &rerr, &out, &outlen, &version, buf,
                                                    sizeof buf);
        /* Right after boot the local replica may not follow its leader yet
         * (it joins once the group's instances are in the name server):
         * the first barrier waits for it, up to 5 s, 10 ms a try. */
        if (!err && rerr == ERR_NO_LEADER && !joined && tries < 500) {
            sys_notify_wait(sys_notify_gen(), 10000, 0);
            continue;
        }
        if (err || (rerr && rerr != ERR_NOT_FOUND))
            return err ? err : rerr;
        uint32_t count = 0;
        for (size_t i = 0; !rerr && i < outlen && out[i] >= '0' && out[i] <= '9'; i++)
            count = count * 10 + (uint32_t)(out[i] - '0');
        if (joined && (count >= n || !wait))
            return ERR_OK;
        if (!joined) {
            snprintf(now, sizeof now, "%u", count);
            snprintf(next, sizeof next, "%u", count + 1);
            err = store_cas_rpc(writes(c), key, rerr == ERR_OK, (const uint8_t *)now, rerr ? 0 : strlen(now),
                                (const uint8_t *)next, strlen(next), &rerr, &version);
            if (err)
                return err;
            joined = rerr == ERR_OK;
            *last = joined && count + 1 == n;
        } else {
            sys_notify_wait(sys_notify_gen(), 1000, 0);   /* 1 ms */
        }
    }
    return ERR_TIMEOUT;
}

static bool count_instance(uint32_t core, uint64_t service, void *arg)
{
    (void)core, (void)service;
    ++*(uint32_t *)arg;
    return true;
}

static int bench(uint32_t client, uint32_t nops, uint32_t read_pct, uint32_t nkeys, bool fresh, uint32_t round,
                 uint32_t n)
{
    static uint64_t lat[4096];
    struct conn c = { 0 };
    uint32_t errors = 0, done = 0;
    errval_t err = conn_open(&c);
    if (err || c.no_leader)
        return printf("store: bench %s: %s\n", name, err_name(err ? err : ERR_NO_LEADER)), 1;
    rng = 0x9e3779b97f4a7c15ull * (client + 1) ^ read_tsc();
    nkeys = nkeys ? nkeys : 1;
    nops = nops > 4096 ? 4096 : nops;
    uint32_t replicas = 0;
    group_instances(name, count_instance, &replicas);
    bool last = false;
    if ((err = barrier(&c, 'b', round, n, true, &last)))
        return printf("store: bench %s: barrier: %s\n", name, err_name(err)), conn_close(&c), 1;
    /* The cost model's region (docs/costmodel.md): system-wide, so one
     * client begins it, the last to join, and one ends it, the last to
     * finish. It also holds the other clients' last barrier reads (at most
     * one a millisecond each) and the N writes that count the ends. */
    if (last) {
        cm_arg(protocol, fresh ? CM_WORD_store_fresh : CM_WORD_store_stale);
        cm_arg(cores, n);
        cm_arg(replicas, replicas);
        cm_arg(reads, read_pct);
        cm_arg(ops, (uint64_t)n * nops);
        cm_begin(store);
    }
    uint64_t start = now_ns();
    for (uint32_t i = 0; i < nops; i++) {
        char key[16], val[32];
        snprintf(key, sizeof key, "k%u", rand32() % nkeys);
        bool read = rand32() % 100 < read_pct;
        const uint8_t *out;
        size_t outlen;
        uint64_t version, t0 = now_ns();
        errval_t rerr = ERR_OK;
        if (read) {
            err = store_get_rpc(&c.local.idl, key, fresh, &rerr, &out, &outlen, &version, buf, sizeof buf);
        } else {
            snprintf(val, sizeof val, "c%u.%u", client, i);
            err = store_put_rpc(writes(&c), key, (const uint8_t *)val, strlen(val), &rerr, &version);
        }
        lat[done++] = now_ns() - t0;
        if (err || (rerr && rerr != ERR_NOT_FOUND))
            errors++;
        if (err)
            break;
    }
    uint64_t end = now_ns();
    if (!err && !barrier(&c, 'e', round, n, false, &last) && last)
        cm_end(store);
    for (uint32_t i = 1; i < done; i++)   /* insertion sort: a few thousand at most */
        for (uint32_t j = i; j > 0 && lat[j - 1] > lat[j]; j--) {
            uint64_t t = lat[j];
            lat[j] = lat[j - 1];
            lat[j - 1] = t;
        }
    printf("@atoll {\"event\":\"store_bench\",\"name\":\"%s\",\"c\":%u,\"round\":%u,\"n\":%u,\"read_pct\":%u,"
           "\"fresh\":%s,\"replica\":%u,\"ops\":%u,\"errors\":%u,\"t0\":%llu,\"t1\":%llu,\"lat_med_ns\":%llu,"
           "\"lat_p90_ns\":%llu}\n", name, client, round, n, read_pct, fresh ? "true" : "false", c.local_core, done,
           errors, (unsigned long long)start, (unsigned long long)end,
           (unsigned long long)(done ? lat[done / 2] : 0), (unsigned long long)(done ? lat[done * 9 / 10] : 0));
    conn_close(&c);
    return errors != 0;
}

int client_main(int argc, char **argv)
{
    name = argc > 2 ? argv[2] : "";
    if (argc == 3 && !strcmp(argv[1], "state"))
        return state();
    if (argc == 4 && !strcmp(argv[1], "flood"))
        return flood(arg_number(argv[3], 1));
    if (argc == 5 && !strcmp(argv[1], "watch"))
        return watch(argv[3], arg_number(argv[4], 1));
    if ((argc == 9 || argc == 10) && !strcmp(argv[1], "bench"))   /* bench NAME CLIENT OPS READ KEYS ROUND N [stale] */
        return bench(arg_number(argv[3], 0), arg_number(argv[4], 100), arg_number(argv[5], 100),
                     arg_number(argv[6], 64), argc == 9, arg_number(argv[7], 0), arg_number(argv[8], 1));
    if (argc == 6 && !strcmp(argv[1], "acked"))   /* acked NAME CLIENT ROUNDS EVERY_MS */
        return acked(arg_number(argv[3], 0), arg_number(argv[4], 100), arg_number(argv[5], 10));
    if ((argc == 6 || (argc == 7 && !strcmp(argv[6], "reads"))) && !strcmp(argv[1], "hist"))
        return hist(arg_number(argv[3], 0), arg_number(argv[4], 10), arg_number(argv[5], 3), argc == 7);
    return argc < 3 ? usage() : one(argc, argv);
}
