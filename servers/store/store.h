/* The store program's two halves (servers/store, docs/store.md). */
#ifndef ATOLL_STORE_STORE_H
#define ATOLL_STORE_STORE_H

#include <atoll/monitor_client.h>

/* `store serve NAME KEY CORES [LIFE]`: a replica (replica.c); LIFE is the
 * manifest's $life (0: never started before), -1 if not given. */
int replica_main(const char *name, uint64_t key, const char *cores, int life);
/* `store put|get|del|cas|list|state|hist NAME ...`: a client (client.c). */
int client_main(int argc, char **argv);

/* Call `each` for every instance of group `name` (core, service id) until
 * it returns false (instances.c). Through <atoll/recover.h>'s channel to
 * the name server, which is made again after the name server's restart. */
errval_t group_instances(const char *name,
                         bool (*each)(uint32_t core, uint64_t service, void *arg), void *arg);

#endif
