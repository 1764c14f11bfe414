/*
 * The monitor's parts and what they share. One monitor runs on every core
 * (main.c); it talks to the other monitors over URPC channels (links.c) in
 * the mesh its plan gives (mesh_plan.c, mesh.c), in the protocol of
 * if/monitor.if; it serves the domains of its core over LMP (clients.c),
 * spawns them (spawn.c), moves capabilities between cores (captransfer.c),
 * passes connections to services (services.c) and measures channels
 * (bench.c). docs/monitor.md tells the whole story.
 */
#ifndef ATOLL_MONITOR_H
#define ATOLL_MONITOR_H

#include <atoll/lib.h>
#include <atoll/urpc.h>
#include <atoll/idl.h>
#include <if/monitor_if.h>
#include "mesh_plan.h"
#include "protocol.h"

/* -- main.c ------------------------------------------------------------------ */
extern const struct startup_info *si;
extern uint32_t my_core, ncores;
extern struct core_info machine;
extern uint64_t names_id;   /* core 0: the name server's domain id */
uint32_t new_tag(void);
uint64_t now_ns(void);

/* -- links.c: channels to other monitors -------------------------------------- */
enum link_purpose { LINK_BOOT = 0, LINK_MESH = 1, LINK_BENCH = 2 };

struct link {
    struct urpc_chan ch;
    struct idl_chan idl;
    uint32_t peer;
    uint32_t purpose;       /* enum link_purpose */
    bool up;                /* both sides attached: usable for routing */
    bool closed;            /* the peer broke it (corrupt slot): never used again */
    capslot_t frame;
    void *base;             /* the frame, mapped here */
    uint64_t forwarded;     /* messages passed on through it for other cores */
    struct outmsg *out_head, *out_tail;   /* waiting for room in the ring */
    uint32_t out_count;
};

/* A channel to `peer` in the frame in `frame` (mapped here), as `side`. */
errval_t link_attach(uint32_t peer, uint32_t purpose, capslot_t frame, int side, struct link **out);
/* A new channel to `peer` in a frame of our own RAM (we are side 0),
 * offered in a link_offer message; it is up when the peer's link_ready
 * arrives on it. */
errval_t link_offer(uint32_t peer, uint32_t purpose, struct link **out);
/* The boot or mesh link to `core`, if it is up. */
struct link *link_direct(uint32_t core);
/* The channel a message for `dst` leaves by (NULL: dst is this core or
 * unreachable). */
struct idl_chan *route(uint32_t dst);
/* Cores a message from here to `dst` passes through, by the plan. */
uint32_t route_hops(uint32_t dst);
/* Receive what has arrived on every link: handle it or forward it. True
 * when something was done. */
bool links_poll(void);
/* Before sleeping: raise (or lower) the sleeping flag of every link; then
 * links_pending() tells whether something came meanwhile. */
void links_set_sleeping(bool sleeping);
bool links_pending(void);
/* "peer kind sent received forwarded" per link, as text; *count links. */
size_t links_describe(char *out, size_t size, uint64_t *count);
/* A Notify capability for `core` (made once, kept). */
capslot_t notify_cap_for(uint32_t core);
/* Send on a link's channel. Never waits: when the ring is full the message
 * joins the link's outbox, sent in order as the peer makes room (so two
 * monitors sending to each other never wait for each other). */
errval_t link_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags);
/* Some outbox is not empty: do not sleep long. */
bool links_backlogged(void);

/* -- mesh.c: building the mesh, the handlers of if/monitor.if ----------------- */
extern struct mesh_plan plan;
extern bool plan_known;
/* Core 0: mesh=cluster|all|star, cluster=N from the monitor's arguments. */
errval_t mesh_configure(int argc, char **argv);
void mesh_start(void);
void mesh_link_up(struct link *l);
/* Core 0: answer `client` when the whole mesh is up (at once if it is). */
void mesh_wait(int client);
void mesh_wait_expire(void);
/* The answer of a request this monitor made for a client (or itself). */
extern const struct monitor_handlers monitor_handlers;

/* -- captransfer.c: capabilities between cores -------------------------------- */
errval_t cap_export(struct idl_chan *ch, uint64_t slot, struct cap_wire *out);
errval_t cap_import(struct idl_chan *ch, const struct cap_wire *in, uint64_t *slot);
size_t captransfer_describe(char *out, size_t size);

/* -- spawn.c: domains of this core -------------------------------------------- */
errval_t spawn_local(const char *cmd, uint64_t ram_bytes, uint64_t *id, capslot_t *disp);
/* An endpoint to our live child with this domain id (for replies to it). */
errval_t child_endpoint(uint64_t id, capslot_t *ep);
/* A server the monitor starts itself (name server, shell): MON_BUSY leaves it out. */
errval_t spawn_system(const char *cmd, uint64_t ram_bytes, uint64_t *id);
/* Do an information request (MON_PS, MON_MEM, MON_CORE, MON_BUSY, MON_MESH)
 * about this core. */
errval_t serve_info(uint32_t what, char *out, size_t size, uint64_t *value, uint64_t *value2);

/* -- clients.c: the domains of this core, over LMP ----------------------------- */
void clients_init(void);
bool clients_poll(void);
/* Answer a client that waits (the pending request it made). */
void client_reply(int client, errval_t err, uint64_t value, uint64_t value2, const char *text);
/* The answer to request `op`: by LMP, or on the client's channel (chan). */
void client_answer(int client, bool chan, uint32_t op, errval_t err, uint64_t v, uint64_t v2, const char *text);
/* The client channels: poll, raise/lower sleeping flags, anything waiting. */
void clients_set_sleeping(bool sleeping);
bool clients_pending(void);
/* ...with a capability, which moves to it (error: the capability is freed). */
void client_reply_cap(int client, errval_t err, uint64_t value, uint64_t value2, capslot_t cap);
/* A connection the client asked for is made (or failed): its copy of the frame. */
void client_connected(int client, errval_t err, capslot_t frame);
extern uint64_t shell_id;
/* The client with this badge (domain id) is registered and its domain lives. */
bool client_alive(uint64_t badge);

/* -- pending.c: requests waiting for an answer from another core --------------- */
enum pending_kind { PEND_CLIENT = 1, PEND_FORWARD };
struct pending {
    uint32_t tag;
    uint32_t kind;          /* enum pending_kind */
    int client;             /* PEND_CLIENT: who waits */
    bool chan;              /* ...for the answer on its channel, not by LMP */
    uint32_t op;
    uint32_t peer;          /* MON_BENCH: the measured peer */
    uint32_t to;                  /* the core asked: only its answer counts */
    uint32_t req_core, req_tag;   /* PEND_FORWARD: the remote requester */
    capslot_t frame;              /* MON_CONNECT: the channel's frame */
    uint64_t since;               /* when it was sent (pending_expire) */
};
uint32_t pending_add(const struct pending *p);
/* Take (and forget) the request with this tag sent to core `from` (ANY_CORE:
 * whichever): false if none. */
#define ANY_CORE (~0u)
bool pending_take(uint32_t tag, uint32_t from, struct pending *out);
/* Answer ERR_TIMEOUT to clients whose request has waited too long (a core
 * that never answers must not hang its callers). */
void pending_expire(void);

/* -- services.c: connections handed to services -------------------------------- */
errval_t service_register(uint64_t owner, uint64_t *service);
errval_t service_connect(uint64_t service, capslot_t frame, uint32_t client_core, uint64_t client);
/* The next connection for a service `owner` registered. */
errval_t service_accept(uint64_t owner, capslot_t *frame, uint32_t *client_core, uint64_t *client);

/* -- bench.c: channel measurements ---------------------------------------------- */
errval_t bench_pingpair_start(uint32_t peer, uint32_t rounds, const struct pending *requester);
bool bench_ping_reply(const struct monitor_ping_reply_args *a);
errval_t bench_urpc(uint32_t peer, uint32_t rounds, struct monitor_bench_reply_args *out);
void bench_serve(struct link *l);
void bench_describe(char *out, size_t size, uint32_t from, uint32_t to, const struct monitor_bench_reply_args *r);

#endif
