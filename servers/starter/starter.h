/* The starter's restart service, shared with its fault-injection campaign
 * (campaign.c, docs/faults.md). */
#ifndef STARTER_H
#define STARTER_H
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include "manifest.h"

#define MAX_INSTANCES 256

enum state { S_STARTING = 1, S_RUNNING, S_FAILED, S_GONE, S_RESTARTING };

struct client;

struct instance {
    uint16_t service;    /* index into mf.svc */
    uint16_t state;      /* enum state */
    uint32_t core;
    uint64_t domain;
    uint64_t service_id; /* its service in the name server, as seen when it joined (0: not seen) */
    errval_t err;        /* S_FAILED: why */
    /* The restart service's. */
    struct client *hb;           /* its heartbeat channel, once it beats */
    uint64_t last_beat_ns, started_ns, polled_ns, restart_at_ns, ended_ns;
    uint32_t restarts;           /* in all */
    uint32_t failed_in_row;      /* starts that ended before joining, in a row */
    uint32_t garbled;            /* messages on its heartbeat channel that did not decode */
    bool killed_hung;            /* we ended it: it stopped beating */
    bool hang_kept;              /* a hang verdict held back: its group needs it (starter.c hang_held) */
    bool killed_injected;        /* we ended it: a FAULT_KILL */
    bool updating;               /* a new version on trial (svc update): never restarted */
    bool recovered;              /* it said it holds its state again (a server with state) */
};

/* A channel to us: the shell's `svc`, or an instance's heartbeats. */
struct client {
    struct service_chan *sc;
    int inst;                    /* the instance beating on it, or -1 */
};

extern struct manifest mf;
extern struct instance inst[MAX_INSTANCES];
extern uint32_t ninst;
extern uint64_t starter_service;   /* our own service (`svc`) */
/* Services one of whose instances said `recovered`: a restarted instance
 * of these is back only once it says so too. */
extern bool stateful[MANIFEST_MAX_SERVICES];

/* Where the restart service's time goes (campaign_progress and
 * campaign_done, docs/faults.md): its watch timer's work, and within it
 * the calls it waits for (a monitor's ps, a spawn, the name server's list
 * of a group, an injection); and the messages it serves (beats, mostly). */
struct starter_profile {
    uint64_t watch_ns, ps_ns, spawn_ns, join_ns, inject_ns, serve_ns;
    uint32_t ticks, ps, spawns, joins, injects, msgs;
};
extern struct starter_profile prof;

errval_t inject(const char *name, uint32_t core, uint32_t kind, uint64_t seed, uint64_t *domain);
errval_t ps_find(uint32_t core, uint64_t id, const char *name, uint64_t *found);

/* The campaign (campaign.c): its rpc, a step from the watch timer, and an
 * instance's end (one not caused by a fault of the campaign is counted). */
errval_t campaign_start(struct client *shell, uint32_t faults, uint64_t seed, uint32_t pace_ms, uint32_t kinds);
void campaign_step(uint64_t now);
void campaign_instance_ended(const struct instance *x);
void campaign_shell_gone(struct client *c);

#endif
