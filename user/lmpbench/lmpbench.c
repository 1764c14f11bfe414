/*
 * lmpbench: the round trip of a local message (LMP) between two domains on
 * one core, in TSC cycles: a null message, and one carrying a capability.
 *
 *   lmpbench [ROUNDS]      the client: asks its monitor to start the server
 *                          next to it, then measures
 *   lmpbench server        the server: answers every call
 *
 * Prints one line for people and one machine-readable line:
 *   @atoll {"event":"lmp_bench","core":C,"rounds":N,"null_median":..,"null_min":..,
 *           "cap_median":..,"cap_min":..}
 */
#include <atoll/lib.h>
#include <atoll/costmodel.h>
#include <atoll/monitor_client.h>
#include <if/monlmp_if.h>

enum { BENCH_HELLO = 1, BENCH_NULL, BENCH_CAP, BENCH_STOP };


static int server(void)
{
    capslot_t in, client;
    struct lmp_msg m;
    if (slot_alloc(&in))
        return 1;
    /* The first message brings the client's endpoint. */
    errval_t err = sys_lmp_recv(in, 0, &m);
    if (err || m.w[0] != BENCH_HELLO || !m.has_cap)
        return printf("lmpbench server: bad hello\n"), 1;
    client = in;
    if (slot_alloc(&in) || sys_lmp_recv(in, LMP_RECV_NONBLOCK, &m) != ERR_WOULD_BLOCK)
        return 1;
    uint64_t reply = BENCH_HELLO;
    for (;;) {
        /* Reply to the last request and wait for the next, in one call. */
        err = sys_lmp_call(client, reply, 0, 0, 0, LMP_NO_CAP, &m);
        if (err)
            return printf("lmpbench server: %s\n", err_name(err)), 1;
        if (m.has_cap)
            sys_cap_delete(in);   /* free the slot for the next one */
        if (m.w[0] == BENCH_STOP)
            break;
        reply = m.w[0];
    }
    sys_lmp_send(client, BENCH_STOP, 0, 0, 0, LMP_NO_CAP);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void sort(uint64_t *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && cmp(&v[j - 1], &v[j]) > 0; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

#define MAX_ROUNDS 4096

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "server"))
        return server();
    unsigned rounds = 1000;
    if (argc > 1) {
        rounds = 0;
        for (const char *p = argv[1]; *p >= '0' && *p <= '9'; p++)
            rounds = rounds * 10 + (unsigned)(*p - '0');
        if (rounds == 0 || rounds > MAX_ROUNDS)
            return printf("usage: lmpbench [ROUNDS <= %d]\n", MAX_ROUNDS), 2;
    }
    capslot_t self, server_ep = 0, extra;
    struct lmp_msg m;
    uint64_t server_id;
    errval_t rerr = ERR_OK, err = monitor_connect();
    /* An endpoint to ourselves, for the server's replies. */
    if (!err)
        err = slot_alloc(&self);
    if (!err)
        err = sys_cap_mint(SLOT_DISPATCHER, self, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, 0, 0, 0);
    if (!err && !(err = monlmp_spawn_peer_rpc(monitor_lmp(), "lmpbench server", &rerr, &server_id, &server_ep)))
        err = rerr;
    /* The server may not have reached its first receive yet. */
    while (!err && (err = sys_lmp_call(server_ep, BENCH_HELLO, 0, 0, 0, self, &m)) == ERR_NO_RECV_SLOT)
        err = sys_yield();
    if (!err)
        err = frame_alloc(4096, &extra);
    if (err)
        return printf("lmpbench: setup failed: %s\n", err_name(err)), 1;

    static uint64_t null_rt[MAX_ROUNDS], cap_rt[MAX_ROUNDS];
    for (unsigned i = 0; i < 100; i++)   /* warm up */
        sys_lmp_call(server_ep, BENCH_NULL, 0, 0, 0, LMP_NO_CAP, &m);
    unsigned core = startup()->core_id;
    /* Each loop is a cost-model region (docs/costmodel.md): on one core a
     * round trip should move no line between cores at all. */
    cm_arg(protocol, CM_WORD_lmp);
    cm_arg(src, core);
    cm_begin(local);
    for (unsigned i = 0; i < rounds; i++) {
        uint64_t t0 = read_tsc();
        err = sys_lmp_call(server_ep, BENCH_NULL, i, 0, 0, LMP_NO_CAP, &m);
        null_rt[i] = read_tsc() - t0;
        if (err)
            return printf("lmpbench: null call: %s\n", err_name(err)), 1;
    }
    cm_arg(ops, rounds);
    cm_end(local);
    cm_arg(protocol, CM_WORD_lmp_cap);
    cm_arg(src, core);
    cm_begin(local);
    for (unsigned i = 0; i < rounds; i++) {
        uint64_t t0 = read_tsc();
        err = sys_lmp_call(server_ep, BENCH_CAP, i, 0, 0, extra, &m);
        cap_rt[i] = read_tsc() - t0;
        if (err)
            return printf("lmpbench: call with a capability: %s\n", err_name(err)), 1;
    }
    cm_arg(ops, rounds);
    cm_end(local);
    sys_lmp_call(server_ep, BENCH_STOP, 0, 0, 0, LMP_NO_CAP, &m);
    sort(null_rt, rounds);
    sort(cap_rt, rounds);
    printf("lmpbench on core %u: round trip median %llu cycles (min %llu), with a capability %llu (min %llu), "
           "%u rounds\n",
           core, (unsigned long long)null_rt[rounds / 2], (unsigned long long)null_rt[0],
           (unsigned long long)cap_rt[rounds / 2], (unsigned long long)cap_rt[0], rounds);
    printf("@atoll {\"event\":\"lmp_bench\",\"core\":%u,\"rounds\":%u,\"null_median\":%llu,\"null_min\":%llu,"
           "\"cap_median\":%llu,\"cap_min\":%llu,\"tsc_hz\":%llu}\n",
           core, rounds, (unsigned long long)null_rt[rounds / 2], (unsigned long long)null_rt[0],
           (unsigned long long)cap_rt[rounds / 2], (unsigned long long)cap_rt[0],
           (unsigned long long)startup()->tsc_hz);
    return 0;
}
