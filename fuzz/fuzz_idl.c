/*
 * Fuzz target: the decoders tools/idlc generates for every interface
 * (if/NAME.if -> <if/NAME_if.h>: monitor, nameservice, echo, monclient,
 * test, monlmp, starter, greeter, topology). The first input byte picks
 * the interface (modulo 9),
 * the rest is the message. Whatever a decoder accepts must re-encode to the
 * very same bytes (so no field is read from outside the message and no two
 * encodings mean the same); a refusal must be ERR_MSG_UNKNOWN or
 * ERR_MSG_MALFORMED. The corpus holds messages the generated encoders made
 * (tools/fuzz-corpus runs `replay_idl --make-corpus`).
 */
#include <string.h>
#include <atoll/idl.h>
#include <if/echo_if.h>
#include <if/monclient_if.h>
#include <if/monitor_if.h>
#include <if/monlmp_if.h>
#include <if/nameservice_if.h>
#include <if/starter_if.h>
#include <if/greeter_if.h>
#include <if/test_if.h>
#include <if/topology_if.h>
#include "fuzz.h"

#define ROUNDTRIP(prefix, msg, len)                                                 \
    do {                                                                            \
        static struct prefix##_msg m;                                               \
        static uint8_t again[IDL_MSG_MAX];                                          \
        size_t n = 0;                                                               \
        errval_t err = prefix##_decode(msg, len, &m);                               \
        if (err) {                                                                  \
            FUZZ_ASSERT(err == ERR_MSG_UNKNOWN || err == ERR_MSG_MALFORMED);        \
            return 0;                                                               \
        }                                                                           \
        FUZZ_ASSERT(prefix##_encode(again, sizeof again, &n, &m) == ERR_OK);        \
        FUZZ_ASSERT(n == len && memcmp(again, msg, len) == 0);                      \
        return 1;                                                                   \
    } while (0)

static int roundtrip(unsigned which, const uint8_t *msg, size_t len)
{
    switch (which % 9) {
    case 0: ROUNDTRIP(monitor, msg, len);
    case 1: ROUNDTRIP(nameservice, msg, len);
    case 2: ROUNDTRIP(echo, msg, len);
    case 3: ROUNDTRIP(monclient, msg, len);
    case 4: ROUNDTRIP(test, msg, len);
    case 5: ROUNDTRIP(monlmp, msg, len);
    case 6: ROUNDTRIP(starter, msg, len);
    case 7: ROUNDTRIP(greeter, msg, len);
    default: ROUNDTRIP(topology, msg, len);
    }
}

int fuzz_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The message alone in a block of its own size, for ASan. */
    uint8_t *msg = malloc(size - 1 ? size - 1 : 1);
    memcpy(msg, data + 1, size - 1);
    int ok = roundtrip(data[0], msg, size - 1);
    free(msg);
    return ok;
}

#ifdef FUZZ_MAKE_CORPUS
/* tools/fuzz-corpus: write messages the encoders make into DIR. */
static void save(const char *dir, const char *name, unsigned which, const uint8_t *b, size_t n, errval_t err)
{
    FUZZ_ASSERT(err == ERR_OK);
    FUZZ_ASSERT(roundtrip(which, b, n) == 1);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_ASSERT(f != NULL);
    uint8_t w = (uint8_t)which;
    fwrite(&w, 1, 1, f);
    fwrite(b, 1, n, f);
    fclose(f);
}

int fuzz_make_corpus(const char *dir)
{
    static uint8_t b[IDL_MSG_MAX];
    static char text[1201];
    size_t n = 0;
    struct cap_wire frame = { .type = 2, .rights = 3, .base = 0x200000, .bytes = 4096 };
    memset(text, 'x', 1200);
    static uint8_t down[64];
    down[0] = 0x04;     /* core 2 never came up */
    save(dir, "monitor-plan", 0, b, n, monitor_plan_encode(b, sizeof b, &n, 3, 0, 7, 0, 8, down, sizeof down));
    save(dir, "monitor-conn-closed", 0, b, n, monitor_conn_closed_encode(b, sizeof b, &n, 3, 2, 0, 2, 0x10005, 1));
    save(dir, "monitor-link-offer", 0, b, n, monitor_link_offer_encode(b, sizeof b, &n, 5, 1, 9, &frame, 1));
    save(dir, "monitor-connect-call", 0, b, n,
         monitor_connect_call_encode(b, sizeof b, &n, 6, 2, 13, 6ull << 48 | 3ull << 16 | 1, &frame, 4, 0x20003));
    static uint8_t call[64];
    size_t call_len = 0;
    FUZZ_ASSERT(monclient_spawn_call_encode(call, sizeof call, &call_len, 3, "echo serve x", 0, true, 0) == ERR_OK);
    save(dir, "monitor-ask", 0, b, n, monitor_ask_encode(b, sizeof b, &n, 1, 0, 15, call, call_len));
    save(dir, "monitor-answer", 0, b, n, monitor_answer_encode(b, sizeof b, &n, 0, 1, 15, call, call_len));
    save(dir, "ns-register-call", 1, b, n,
         nameservice_register_call_encode(b, sizeof b, &n, "echo.one", "echo", 5ull << 48 | 9ull << 16 | 1));
    save(dir, "ns-lookup-reply", 1, b, n,
         nameservice_lookup_reply_encode(b, sizeof b, &n, ERR_OK, "echo", 5ull << 48 | 9ull << 16 | 1));
    save(dir, "ns-list-reply", 1, b, n,
         nameservice_list_reply_encode(b, sizeof b, &n, ERR_OK, 2, 2, "a echo 1\nb none 2\n"));
    static const uint8_t data[32] = { 1, 2, 3 };
    save(dir, "echo-call", 2, b, n, echo_echo_call_encode(b, sizeof b, &n, 42, data, sizeof data));
    save(dir, "echo-whoami-reply", 2, b, n, echo_whoami_reply_encode(b, sizeof b, &n, 3, 9));
    save(dir, "monclient-spawn-call", 3, call, call_len, ERR_OK);
    save(dir, "monclient-ps-reply", 3, b, n, monclient_ps_reply_encode(b, sizeof b, &n, ERR_OK, text));
    save(dir, "monclient-ping-reply", 3, b, n, monclient_ping_reply_encode(b, sizeof b, &n, ERR_OK, 900, 850, 2));
    save(dir, "test-ints", 4, b, n,
         test_ints_encode(b, sizeof b, &n, 0xfe, 0xfedc, 0xfedcba98u, 0xfedcba9876543210ull, -5, -6, true,
                          ERR_TIMEOUT));
    static const uint8_t tiny[3] = { 9, 8, 7 };
    save(dir, "test-text", 4, b, n,
         test_text_encode(b, sizeof b, &n, "a string", "short", data, sizeof data, tiny, sizeof tiny));
    save(dir, "test-empty", 4, b, n, test_empty_encode(b, sizeof b, &n));
    save(dir, "monlmp-connect-call", 5, b, n, monlmp_connect_call_encode(b, sizeof b, &n, 5ull << 48 | 9ull << 16 | 1));
    save(dir, "monlmp-accept-reply", 5, b, n, monlmp_accept_reply_encode(b, sizeof b, &n, ERR_OK, &frame, 3, 7, 1));
    save(dir, "monlmp-spawn-peer-call", 5, b, n, monlmp_spawn_peer_call_encode(b, sizeof b, &n, "lmpbench server"));
    save(dir, "ns-join-call", 1, b, n, nameservice_join_call_encode(b, sizeof b, &n, "echo.pn", 0x1234567890abcdefull,
                                                                   5ull << 48 | 9ull << 16 | 1));
    save(dir, "ns-instances-reply", 1, b, n,
         nameservice_instances_reply_encode(b, sizeof b, &n, ERR_OK, 2, 2, "echo.pn 0 0\necho.pn 4 1\n"));
    save(dir, "starter-status-reply", 6, b, n, starter_status_reply_encode(b, sizeof b, &n, ERR_OK, true, 3, 1, 7));
    save(dir, "starter-services-reply", 6, b, n,
         starter_services_reply_encode(b, sizeof b, &n, ERR_OK, 2, 2, "names core:0 0 2 up\nbad - - - refused: x\n"));
    save(dir, "greeter-greet-call", 7, b, n, greeter_greet_call_encode(b, sizeof b, &n, "world"));
    save(dir, "greeter-greet-reply", 7, b, n, greeter_greet_reply_encode(b, sizeof b, &n, "hello, world", 4, 1));
    static const uint8_t among[2] = { 0xff, 0x0f };
    static const uint8_t order[8] = { 3, 0, 1, 0, 2, 0, 0, 0 };
    save(dir, "topology-nearest-cores-call", 8, b, n,
         topology_nearest_cores_call_encode(b, sizeof b, &n, 3, among, sizeof among));
    save(dir, "topology-nearest-cores-reply", 8, b, n,
         topology_nearest_cores_reply_encode(b, sizeof b, &n, ERR_OK, order, sizeof order));
    save(dir, "topology-node-reply", 8, b, n,
         topology_node_reply_encode(b, sizeof b, &n, ERR_OK, 1, 256ull << 20, 4, among, 1, order, 4));
    save(dir, "topology-xml-reply", 8, b, n,
         topology_xml_reply_encode(b, sizeof b, &n, ERR_OK, 9000, 120, "<topology>\n</topology>\n"));
    return 0;
}
#endif
