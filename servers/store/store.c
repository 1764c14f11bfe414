/*
 * store: a replica of the replicated store, or a client of it
 * (docs/store.md).
 *
 *   store serve NAME KEY CORES LIFE   a replica (the manifest's
 *                                     "kv store per-node serve $name $key $cores $life")
 *   store put NAME KEY VALUE          and get, del, cas, list, state, hist:
 *                                     client.c says what each does
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include "store.h"

static uint64_t parse_hex(const char *s)
{
    uint64_t v = 0;
    for (; *s; s++)
        v = v * 16 + (uint64_t)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
    return v;
}

int main(int argc, char **argv)
{
    /* The name server is reached through <atoll/recover.h>'s one channel
     * (remade after its restart): a second one per domain took a name-server
     * client slot each, and at 64 CPUs the store benchmark's replicas and
     * clients filled its 256. */
    errval_t err = monitor_connect();
    if (!err && !names_idl())
        err = ERR_CHAN_CLOSED;
    if (err)
        return printf("store: cannot reach the name server: %s\n", err_name(err)), 1;
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "serve"))
        return replica_main(argv[2], parse_hex(argv[3]), argv[4],
                            argc == 6 ? (argv[5][0] == '0' && !argv[5][1] ? 0 : 1) : -1);
    return client_main(argc, argv);
}
