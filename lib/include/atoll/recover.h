/*
 * Living through restarts (lib/recover.c, docs/restart.md).
 *
 * The name server: one channel per domain, made on first use and made
 * again after the name server hung up (it was restarted); names_call runs
 * a call on it and, after a hang-up, once more on the new one. What a
 * service registers through names_keep_* is registered again after every
 * restart of the name server (names_watch notices the hang-up at once).
 *
 * Clients: a named_chan is a channel to a service found by name. When the
 * server hangs up (it ended, or was restarted), named_call looks the name
 * up again, reconnects, and repeats the call if the interface marks it
 * idempotent (`idempotent rpc` in if/NAME.if: the constant
 * NAME_CALL_idempotent); otherwise it returns ERR_RESTARTED: the call may
 * or may not have been carried out, and the channel is new.
 *
 * Services: heartbeat_start sends the restart service (the starter) a beat
 * every HEARTBEAT_MS; one missing for HEARTBEAT_HANG_MS is a hang, and the
 * instance is ended and started again. The same channel brings injected
 * faults (FAULT_*).
 */
#ifndef ATOLL_RECOVER_H
#define ATOLL_RECOVER_H

#include <atoll/monitor_client.h>

/* -- the name server, across its restarts ------------------------------------------ */
/* The domain's channel to the name server, connected if need be (NULL: it
 * cannot be reached). */
struct idl_chan *names_idl(void);
/* Run `call` on the name server; if the name server hung up, reconnect
 * and run it again, up to NAMES_CALL_TRIES times in all, 20 ms apart after
 * the second (after a restart it has forgotten everything, so repeating
 * any call is safe). */
#define NAMES_CALL_TRIES 5
errval_t names_call(errval_t (*call)(struct idl_chan *ns, void *arg), void *arg);
/* lookup through names_call; waits up to wait_ms while the name is unknown
 * (0: asks once). A wait is stretched to the end of the re-registration
 * window (NAMES_REJOIN_MS after this domain reached the name server again
 * after a restart): a name missing then may be on its way back. */
errval_t names_lookup(const char *name, uint64_t wait_ms, uint64_t *service);
/* The same, and the interface the name was registered with (*iface: valid
 * until the next lookup). */
errval_t names_lookup_iface(const char *name, uint64_t wait_ms, const char **iface, uint64_t *service);
/* Register, join or make a group now, and again after each restart of the
 * name server (at most NAMES_KEPT of them). A join waits for its group up
 * to NAMES_JOIN_WAIT_MS (the group may not be made again yet after a
 * restart of the name server), then fails with ERR_NOT_FOUND. */
/* The starter's: a group for each of a manifest's 32 services, and its own
 * name. (The name server bounds a channel's registrations and joins itself,
 * NAMES_PER_CLIENT, ERR_QUOTA; groups count against its 64 groups.) */
#define NAMES_KEPT 33
errval_t names_keep_group(const char *name, const char *iface, uint64_t key);
errval_t names_keep_register(const char *name, const char *iface, uint64_t service);
errval_t names_keep_join(const char *name, uint64_t key, uint64_t service);
/* A waitset source that notices the name server's hang-up and does the
 * kept registrations again (joins are retried while their group is not
 * back yet, for up to NAMES_REJOIN_MS). */
#define NAMES_REJOIN_MS 20000
#define NAMES_JOIN_WAIT_MS NAMES_REJOIN_MS
void names_watch(struct waitset *ws);
/* How many times this domain reconnected to the name server. */
uint32_t names_reconnects(void);

/* -- clients that reconnect by name -------------------------------------------------- */
struct named_chan {
    char name[64];
    struct service_chan sc;
    bool up;
    uint64_t service;       /* the instance connected to */
    uint64_t wait_ms;       /* how long a reconnection may wait for the name (and the instance) */
    uint32_t reconnects;    /* after hang-ups */
    uint32_t retries;       /* idempotent calls repeated */
};
/* Connect to the service `name` (the nearest instance), waiting up to wait_ms
 * (stretched as names_lookup's is after a restart of the name server). An
 * instance the name server names but its monitor does not know has ended:
 * after NAMED_GONE_MS the name is looked up again. */
#define NAMED_GONE_MS 100
errval_t named_connect(struct named_chan *nc, const char *name, uint64_t wait_ms);
/* Run `call` (one RPC on ch). If the server hung up, or gave no answer
 * within the channel's bound (ERR_TIMEOUT): reconnect by name and, when
 * `idempotent`, repeat the call (up to NAMED_RETRIES times); when not,
 * ERR_RESTARTED (ERR_TIMEOUT for no answer). Other errors are returned as
 * they are. */
#define NAMED_RETRIES 8
errval_t named_call(struct named_chan *nc, bool idempotent, errval_t (*call)(struct idl_chan *ch, void *arg),
                    void *arg);
void named_close(struct named_chan *nc);

/* -- heartbeats to the restart service ------------------------------------------------ */
#define HEARTBEAT_MS 100
#define HEARTBEAT_HANG_MS 5000
/* Faults the restart service can make an instance commit (docs/restart.md). */
enum fault_kind {
    FAULT_KILL = 1,   /* the monitor ends the domain (the starter asks; not sent to the instance) */
    FAULT_HANG,       /* the event loop stops turning: no beats, no answers */
    FAULT_CRASH,      /* a wild store: a page fault */
    FAULT_GARBLE,     /* a garbled message on a channel to the instance (sent by the starter) */
    FAULT_BITFLIP,    /* flip a bit of the instance's heap */
    FAULT_BADBEAT,    /* a garbled message on its heartbeat channel: counted, not taken as a beat */
    FAULT_REGS,       /* flip a bit of a register (rbx, rbp, r12-r15, rsp) */
    FAULT_STALL,      /* the event loop stops for FAULT_STALL_MS, then goes on: slow, not dead */
    FAULT_KINDS
};
/* A stall outlasts the hang bound by a second: the restart service judges
 * the instance hung although it would have gone on (a domain starved on a
 * loaded host does that), unless it keeps it (docs/restart.md, Hangs). */
#define FAULT_STALL_MS (HEARTBEAT_HANG_MS + 1000)
const char *fault_name(uint32_t kind);
/* Find the starter by name and beat every HEARTBEAT_MS from `ws`, and
 * during a first join that waits for its group (names_keep_join) too: an
 * instance beats from its start, before it joins. */
errval_t heartbeat_start(struct waitset *ws);
/* How many beats this domain has sent. */
uint64_t heartbeats_sent(void);
/* A server with state: it holds its state (after a restart, once it
 * recovered it; at boot, once it has it), or no longer does (it is fetching
 * it again). The restart service counts a restarted instance as back only
 * once it holds it (docs/restart.md). Said before heartbeat_start: sent
 * when it starts. */
void heartbeat_recovered(bool holds, uint64_t index);

/* -- live update (`svc update`, docs/restart.md) ------------------------------------- */
/* A server that can be replaced by a new version with its state gives
 * these, before or after heartbeat_start. The starter asks the running
 * version for its state through its heartbeat channel, from its event loop,
 * so between two requests (a safe point); from then on that version serves
 * nothing (it only beats) until it is ended (updated) or told to go on
 * (rolled back). The new version is given the state before it serves.
 * `version` numbers the state format, so a new version can read an old
 * format (or refuse it: ERR_NOT_SUPPORTED, and the update is rolled back). */
#define UPDATE_STATE_MAX 512
struct updatable {
    uint32_t version;
    errval_t (*export_state)(void *buf, size_t size, size_t *len);
    errval_t (*import_state)(uint32_t version, const void *buf, size_t len);
};
void heartbeat_updatable(const struct updatable *u);
/* A new version is started with its instance's command line and the word
 * `update` at the end: it calls heartbeat_start, then this, before it
 * serves (joins its group): it waits up to wait_ms for the state and
 * imports it (the import's error; ERR_TIMEOUT if none came). */
errval_t heartbeat_import_wait(uint64_t wait_ms);

#endif
