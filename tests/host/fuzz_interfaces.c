/*
 * A seeded fuzzer of the decoders generated for the interfaces the system
 * speaks (if/monitor.if, if/monclient.if, if/monlmp.if, if/nameservice.if,
 * if/echo.if, if/topology.if, if/store.if): a corpus of valid
 * messages, each mutated (bit flips, byte overwrites, truncation, extension,
 * another type) and fed, in a heap block of exactly its length, to the
 * interface's decoder. ASan fails the run on any read outside the block;
 * whatever a decoder accepts must re-encode to the very same bytes.
 *
 *     build/host/tests/host/fuzz_interfaces [ROUNDS [SEED]]   (default 300000, 1)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/idl.h>
#include <if/echo_if.h>
#include <if/monclient_if.h>
#include <if/monitor_if.h>
#include <if/monlmp_if.h>
#include <if/nameservice_if.h>
#include <if/store_if.h>
#include <if/topology_if.h>
#include "check.h"
#include "rng.h"


enum iface { MON, NS, ECHO, MONC, MLMP, TOPO, STORE };
struct sample {
    enum iface which;
    uint8_t buf[IDL_MSG_MAX];
    size_t len;
};
static struct sample corpus[48];
static int ncorpus;

static void add(enum iface which, errval_t err, const uint8_t *buf, size_t len)
{
    CHECK_EQ(err, ERR_OK);
    struct sample *s = &corpus[ncorpus++];
    s->which = which;
    memcpy(s->buf, buf, len);
    s->len = len;
}

static void build_corpus(void)
{
    static uint8_t b[IDL_MSG_MAX];
    static char text[3001];
    size_t n = 0;
    errval_t err;
    struct cap_wire frame = { .type = 2, .rights = 3, .base = 0x200000, .bytes = 4096 };
    memset(text, 'x', 3000);
    text[3000] = 0;
    static const uint8_t down[64] = { 0x06 };
    err = monitor_plan_encode(b, sizeof b, &n, 3, 0, 7, 0, 8, down, sizeof down);
    add(MON, err, b, n);
    err = monitor_conn_closed_encode(b, sizeof b, &n, 3, 2, 0, 2, 0x10005, 1);
    add(MON, err, b, n);
    err = monitor_conn_released_encode(b, sizeof b, &n, 2, 3, 0, 0x10005);
    add(MON, err, b, n);
    static uint8_t call[64];
    size_t call_len = 0;
    err = monclient_spawn_call_encode(call, sizeof call, &call_len, 3, "echo serve x", 0, true, 0);
    add(MONC, err, call, call_len);
    err = monitor_ask_encode(b, sizeof b, &n, 1, 0, 15, call, call_len);
    add(MON, err, b, n);
    err = monclient_ps_reply_encode(b, sizeof b, &n, ERR_OK, text);
    add(MONC, err, b, n);
    err = monitor_answer_encode(b, sizeof b, &n, 0, 1, 15, call, call_len);
    add(MON, err, b, n);
    err = monclient_ping_reply_encode(b, sizeof b, &n, ERR_OK, 900, 850, 2);
    add(MONC, err, b, n);
    err = monlmp_connect_call_encode(b, sizeof b, &n, 5ull << 48 | 9ull << 16 | 1);
    add(MLMP, err, b, n);
    err = monlmp_accept_reply_encode(b, sizeof b, &n, ERR_OK, &frame, 3, 7, 1);
    add(MLMP, err, b, n);
    err = monlmp_spawn_peer_call_encode(b, sizeof b, &n, "lmpbench server");
    add(MLMP, err, b, n);
    err = monitor_link_offer_encode(b, sizeof b, &n, 5, 1, 9, &frame, 1);
    add(MON, err, b, n);
    err = monitor_connect_call_encode(b, sizeof b, &n, 6, 2, 13, 6ull << 48 | 3ull << 16 | 1, &frame, 4, 0x20003);
    add(MON, err, b, n);
    err = nameservice_register_call_encode(b, sizeof b, &n, "echo.one", "echo", 5ull << 48 | 9ull << 16 | 1);
    add(NS, err, b, n);
    err = nameservice_lookup_reply_encode(b, sizeof b, &n, ERR_OK, "echo", 5ull << 48 | 9ull << 16 | 1);
    add(NS, err, b, n);
    err = nameservice_list_reply_encode(b, sizeof b, &n, ERR_OK, 2, 2, "a echo 1\nb none 2\n");
    add(NS, err, b, n);
    static const uint8_t data[32] = { 1, 2, 3 };
    err = echo_echo_call_encode(b, sizeof b, &n, 42, data, sizeof data);
    add(ECHO, err, b, n);
    err = echo_whoami_reply_encode(b, sizeof b, &n, 3, 9);
    add(ECHO, err, b, n);
    static const uint8_t among[2] = { 0xff, 0x0f };
    static const uint8_t order[8] = { 3, 0, 1, 0, 2, 0, 0, 0 };
    err = topology_nearest_cores_call_encode(b, sizeof b, &n, 3, among, sizeof among);
    add(TOPO, err, b, n);
    err = topology_nearest_cores_reply_encode(b, sizeof b, &n, ERR_OK, order, sizeof order);
    add(TOPO, err, b, n);
    err = topology_core_reply_encode(b, sizeof b, &n, ERR_OK, 6, 1, 1, 0, 1, true, 4);
    add(TOPO, err, b, n);
    err = topology_machine_reply_encode(b, sizeof b, &n, ERR_OK, 16, 4, 2, 8, true, true, "cpuid.0xb",
                                        "AuthenticAMD", "QEMU TCG CPU");
    add(TOPO, err, b, n);
    err = topology_xml_reply_encode(b, sizeof b, &n, ERR_OK, 9000, 120, "<topology>\n</topology>\n");
    add(TOPO, err, b, n);
    err = store_append_encode(b, sizeof b, &n, 7, 2, 6, 3, "k1", true, (const uint8_t *)"old", 3,
                              (const uint8_t *)"new", 3);
    add(STORE, err, b, n);
    err = store_cas_call_encode(b, sizeof b, &n, "key", false, (const uint8_t *)"", 0, (const uint8_t *)"v", 1);
    add(STORE, err, b, n);
    err = store_get_reply_encode(b, sizeof b, &n, ERR_OK, (const uint8_t *)"value", 5, 41);
    add(STORE, err, b, n);
    err = store_snap_kv_encode(b, sizeof b, &n, "k2", (const uint8_t *)"x", 1, 12);
    add(STORE, err, b, n);
    err = store_vote_call_encode(b, sizeof b, &n, 3, 2, 2, 41);
    add(STORE, err, b, n);
    err = store_list_reply_encode(b, sizeof b, &n, ERR_OK, 3, 2, "a\nab\n");
    add(STORE, err, b, n);
}

/* Decode; if accepted, the message must re-encode to the same bytes. */
static int try_decode(enum iface which, const uint8_t *msg, size_t len)
{
    static uint8_t again[IDL_MSG_MAX];
    size_t n = 0;
    errval_t err, back;
    if (which == MON) {
        struct monitor_msg m;
        err = monitor_decode(msg, len, &m);
        back = err ? ERR_OK : monitor_encode(again, sizeof again, &n, &m);
    } else if (which == NS) {
        struct nameservice_msg m;
        err = nameservice_decode(msg, len, &m);
        back = err ? ERR_OK : nameservice_encode(again, sizeof again, &n, &m);
    } else if (which == MONC) {
        struct monclient_msg m;
        err = monclient_decode(msg, len, &m);
        back = err ? ERR_OK : monclient_encode(again, sizeof again, &n, &m);
    } else if (which == MLMP) {
        struct monlmp_msg m;
        err = monlmp_decode(msg, len, &m);
        back = err ? ERR_OK : monlmp_encode(again, sizeof again, &n, &m);
    } else if (which == ECHO) {
        struct echo_msg m;
        err = echo_decode(msg, len, &m);
        back = err ? ERR_OK : echo_encode(again, sizeof again, &n, &m);
    } else if (which == STORE) {
        struct store_msg m;
        err = store_decode(msg, len, &m);
        back = err ? ERR_OK : store_encode(again, sizeof again, &n, &m);
    } else {
        struct topology_msg m;
        err = topology_decode(msg, len, &m);
        back = err ? ERR_OK : topology_encode(again, sizeof again, &n, &m);
    }
    if (err) {
        CHECK(err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED);
        return 0;
    }
    CHECK_EQ(back, ERR_OK);
    CHECK_EQ(n, len);
    if (n == len && memcmp(again, msg, len)) {
        CHECK(!"accepted message re-encodes differently");
    }
    return 1;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 300000;
    rng = argc > 2 ? strtoull(argv[2], 0, 0) | 1 : 1;
    build_corpus();
    for (int i = 0; i < ncorpus; i++)
        CHECK_EQ(try_decode(corpus[i].which, corpus[i].buf, corpus[i].len), 1);
    long accepted = 0;
    for (long r = 0; r < rounds; r++) {
        const struct sample *s = &corpus[below(ncorpus)];
        size_t len = s->len;
        static uint8_t work[IDL_MSG_MAX + 64];
        memcpy(work, s->buf, len);
        int muts = 1 + (int)below(4);
        for (int k = 0; k < muts; k++) {
            switch (below(6)) {
            case 0: work[below(len)] ^= (uint8_t)(1u << below(8)); break;
            case 1: work[below(len)] = (uint8_t)next(); break;
            case 2: len = below(len + 1); break;
            case 3: if (len < sizeof work) work[len++] = (uint8_t)next(); break;
            case 4: if (len >= 2) { work[0] = (uint8_t)below(40); work[1] = (uint8_t)below(2); } break;
            default: if (len >= 8) work[4 + below(4)] = (uint8_t)next(); break;
            }
            if (!len)
                break;
        }
        uint8_t *heap = malloc(len ? len : 1);
        memcpy(heap, work, len);
        accepted += try_decode(s->which, heap, len);
        free(heap);
    }
    printf("fuzz_interfaces: %ld rounds, %ld mutants accepted (and re-encoded identically)\n", rounds, accepted);
    return check_done();
}
