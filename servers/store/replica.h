/*
 * A replica of the store as a library (replica.c, docs/store.md): the
 * store program's `serve` and the name server (servers/names) each embed
 * one. The program owns the event loop, its services and its acceptor;
 * the replica adds its sources to the loop, takes the channels that come
 * for it (replica_accepted), and lets the program read its table and, at
 * the leader, sequence writes of its own.
 */
#ifndef ATOLL_STORE_REPLICA_H
#define ATOLL_STORE_REPLICA_H

#include <atoll/monitor_client.h>
#include <atoll/waitset.h>
#include "kv.h"

struct replica_config {
    const char *name;    /* the group's (events, and group_instances) */
    const char *events;  /* its events' prefix: "store" (NULL) makes store_peer, store_elected, ... */
    const char *cores;   /* the members: "0,4" or "0-7" */
    int life;            /* 0: never started before; 1: started again; -1: unknown */
    /* The other replicas: each(core, service id, arg) until it returns
     * false. NULL: the group's instances from the name server. */
    errval_t (*peers)(const char *name, bool (*each)(uint32_t core, uint64_t service, void *arg), void *arg);
    /* Told when the replica starts or stops holding the state (leading,
     * or following a leader whose whole log it has); NULL: nobody. */
    void (*holds)(bool holds, uint64_t index);
};

/* Join the group: ask the others whether it has been running (boot, or a
 * new life); call before the replica's service is registered. */
errval_t replica_init(const struct replica_config *config);
/* Serve on `loop` as `service` (what the other replicas connect to). */
void replica_attach(struct waitset *loop, uint64_t service);
/* A channel that came for the replica's service. */
void replica_accepted(struct service_chan *sc);
/* The table as this replica has applied it (stale at a follower). */
const struct kv *replica_table(void);
/* The index of the last entry this replica applied. */
uint64_t replica_applied(void);
/* Where the leader is: true and *core if this replica leads or follows one. */
bool replica_leader(uint32_t *core);
/* At the leader: is `domain` on `core` a follower of ours? Is any domain
 * on `core` one? */
bool replica_has_peer_on(uint32_t core);
bool replica_is_peer(uint32_t core, uint64_t domain);
/* At the leader: sequence write `w`; done(arg, result, index) once it is
 * committed and applied (the kv_apply result), or with ERR_NO_LEADER if
 * this replica steps down first (the outcome is then unknown). `done` may
 * run before replica_write returns (a group of one commits at once).
 * ERR_NOT_LEADER at a follower, a kv_check_write error, or ERR_WOULD_BLOCK
 * (the log is full: only right after an election). */
errval_t replica_write(const struct kv_write *w, void (*done)(void *arg, errval_t res, uint64_t index), void *arg);
/* Forget `arg`: no write of its is reported any more. */
void replica_forget(void *arg);

#endif
