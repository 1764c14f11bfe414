/*
 * How the topology service meets its clients: become a service, make its
 * name known to the name server (joining the group the starter made for
 * it, or registering the name itself when started by hand), then serve
 * every client in one event loop (<atoll/waitset.h>).
 *
 * The only file of the service that knows the monitor and the name server
 * (through lib's <atoll/monitor_client.h>).
 */
#ifndef ATOLL_TOPO_SERVICE_H
#define ATOLL_TOPO_SERVICE_H

#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/idl.h>

/* Serve one message waiting on `ch` (the flags go to recv: URPC_NONBLOCK). */
typedef errval_t (*serve_one_fn)(struct idl_chan *ch, unsigned flags);

/* Become a service known as `name`: with `key` (the starter's, non-zero)
 * join that group; without, register the name (interface `iface`). */
errval_t service_start(const char *name, const char *iface, uint64_t key);

/* Accept and serve clients for ever. */
_Noreturn void service_run(serve_one_fn serve_one);

#endif
