/*
 * The monitor's parts and what they share. One monitor runs on every core
 * (main.c); it talks to the other monitors over URPC channels (links.c) in
 * the mesh its plan gives (mesh_plan.c, mesh.c), in the protocol of
 * if/monitor.if; it serves the domains of its core (clients.c: typed local
 * messages, if/monlmp.if; requests.c: typed requests, if/monclient.if, here
 * or on the core they are about), spawns them (spawn.c), moves
 * capabilities between cores (captransfer.c),
 * passes connections to services (services.c, conns.c), releases what its
 * domains held when they end (lifetimes.c) and pings other monitors over
 * the mesh (ping.c). docs/monitor.md tells the whole story.
 */
#ifndef ATOLL_MONITOR_H
#define ATOLL_MONITOR_H

#include <atoll/lib.h>
#include <atoll/idl.h>
#include <atoll/monitor_proto.h>
#include <atoll/urpc.h>
#include <atoll/waitset.h>
#include <if/monitor_if.h>
#include "mesh_plan.h"

/* -- main.c ------------------------------------------------------------------ */
extern const struct startup_info *si;
extern uint32_t my_core, ncores;
extern struct core_info machine;
extern uint64_t names_id;   /* the name server's replica on this core (if any): its domain id */
/* Core 0: the name server ended; start it again (main.c). */
void names_ended(bool started);
uint32_t new_tag(void);
/* The monitor's event loop (every source of work: links, clients,
 * obituaries; timers for what expires). */
extern struct waitset monitor_ws;
/* A message waits in an outbox: look again within a millisecond. */
void outbox_kick(void);

/* -- links.c: channels to other monitors -------------------------------------- */
enum link_purpose { LINK_BOOT = 0, LINK_MESH = 1 };

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
    uint64_t heard_ns, sent_ns;   /* last message in, out (fence.c's heartbeats) */
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
/* All the links as one source of the event loop (sleeping flags included). */
void links_source(struct ws_source *s);
/* "peer kind sent received forwarded" per link, as text; *count links. */
size_t links_describe(char *out, size_t size, uint64_t *count);
/* A Notify capability for `core` (made once, kept). */
capslot_t notify_cap_for(uint32_t core);
capslot_t notify_cap_all(void);
/* Send on a link's channel. Never waits: when the ring is full the message
 * joins the link's outbox, sent in order as the peer makes room (so two
 * monitors sending to each other never wait for each other). */
errval_t link_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags);
/* Some outbox is not empty: do not sleep long. */
bool links_backlogged(void);
/* `core` is dead: its links are closed for good, their outboxes dropped. */
void links_fence(uint32_t core);

/* -- mesh.c: building the mesh, the handlers of if/monitor.if ----------------- */
extern struct mesh_plan plan;
extern bool plan_known;
/* The core came up at boot (core 0 knows; the others learn it with the plan)
 * and has not been fenced as dead since (fence.c). */
bool core_alive(uint32_t core);
/* fence.c: `core` is dead from now on. */
void mesh_core_dead(uint32_t core);
/* A core fenced before the mesh was up (fence.c): nobody waits for its
 * links; core 0 completes the mesh without it. */
void mesh_core_fenced(uint32_t core);
/* Core 0, while the mesh is being built: has `core` reported its part up?
 * (true once the mesh is up); and when the building started. */
bool mesh_core_ready(uint32_t core);
uint64_t mesh_started_ns(void);
/* Core 0: mesh=cluster|all|star, cluster=N from the monitor's arguments. */
errval_t mesh_configure(int argc, char **argv);
void mesh_start(void);
void mesh_link_up(struct link *l);
/* Core 0: answer `client` (monlmp mesh_wait) when the whole mesh is up (at
 * once if it is); after 120 s, ERR_TIMEOUT. */
void mesh_wait(int client);
void mesh_wait_expire(void);
/* How many channels this monitor holds, and one line about each. */
size_t mesh_describe(char *out, size_t size, uint64_t *count);
extern const struct monitor_handlers monitor_handlers;

/* -- fence.c: heartbeats between monitors; a dead core fenced ------------------ */
/* A beat goes on a watched link (a link of the mesh plan) that carried
 * nothing out for MESH_BEAT_MS; one that brought nothing in for
 * MESH_SUSPECT_MS makes its monitor tell core 0, which probes the suspect
 * over its boot channel and, after MESH_CONFIRM_MS more of silence,
 * declares it dead and tells every live core. So a dead core is fenced
 * everywhere within MESH_SUSPECT_MS + MESH_CONFIRM_MS + 2 beat periods of
 * its last message, plus the time a message takes to cross the mesh
 * (docs/restart.md). */
#define MESH_BEAT_MS 250
#define MESH_SUSPECT_MS 5000
#define MESH_CONFIRM_MS 2000
void fence_start(struct waitset *ws);
/* Send the beats that are due, from loops that keep the monitor away from
 * its event loop for long (links_poll): a busy monitor is not a dead one.
 * Cheap when none is due. */
void fence_keepalive(uint64_t now);
errval_t fence_on_beat(const struct monitor_beat_args *a);
errval_t fence_on_suspect(const struct monitor_core_suspect_args *a);
errval_t fence_on_dead(const struct monitor_core_dead_args *a);
/* One line of counts (for `mesh`). */
size_t fence_describe(char *out, size_t size);

/* Domains a monitor starts on its core (spawn.c); as many ended domains' RAM
 * may wait for copies on other cores to go (capops.c). */
#define MON_MAX_CHILDREN 64

/* -- captransfer.c: capabilities between cores -------------------------------- */
/* RAM, Frame, DevFrame, Notify and the page-table types may cross cores. */
bool cap_crosses(uint32_t type);
errval_t cap_export(struct idl_chan *ch, uint64_t slot, struct cap_wire *out);
errval_t cap_import(struct idl_chan *ch, const struct cap_wire *in, uint64_t *slot);
size_t captransfer_describe(char *out, size_t size);

/* -- spawn.c: domains of this core -------------------------------------------- */
errval_t spawn_local(const char *cmd, uint64_t ram_bytes, uint64_t *id, capslot_t *disp);
/* Spawn from the memory service's RAM lent to us with object base `base`:
 * answered to `who` (a monclient spawn reply) when the domain is made, or
 * the error returned at once (nothing answered then). */
struct asker;
errval_t spawn_lent(const char *cmd, bool service, uint64_t base, const struct asker *who);
/* Lent RAM arrived in our mailbox (capops.c); and now and then, for a
 * spawn whose RAM never came (ERR_NOT_FOUND after 5 s). */
void spawn_lent_arrived(void);
void spawn_lent_expire(void);
/* End our child with this domain id (kill). */
errval_t kill_local(uint64_t id);
/* A child ended: take its RAM back, free its entry. */
void children_domain_ended(uint64_t id);
/* Obituaries were lost: call `ended` for every child that has ended. */
void children_rescan(void (*ended)(uint64_t id));
/* An endpoint to our live child with this domain id (for replies to it),
 * with the badge only a monitor gives (LMPCHAN_MONITOR_BADGE). */
errval_t child_endpoint(uint64_t id, capslot_t *ep);
/* The dispatcher capability of our live child with this domain id
 * (ERR_DOMAIN_ENDED: none). */
errval_t child_dispatcher(uint64_t id, capslot_t *disp);
/* May domain `id` ask for CAPOPS_BROADCAST (the caps benchmark's baseline)? */
bool child_may_broadcast(uint64_t id);
/* spawn for a client: a service instance (the starter's) is not busy. */
errval_t spawn_child(const char *cmd, uint64_t ram_bytes, bool service, uint64_t *id);
/* A server the monitor starts itself (name server, shell): busy leaves it out. */
errval_t spawn_system(const char *cmd, uint64_t ram_bytes, uint64_t *id);
/* A memory-service instance of ours asks for our spare RAM: *copy is its copy. */
errval_t spawn_donate(uint64_t domain, capslot_t *copy);
/* Is `domain` an instance of the memory service (it may give to its own core)? */
bool spawn_is_mem(uint64_t domain);
/* This core's domains, one per line; one line about the core; how many
 * domains started by spawn are still alive; what the monitor holds (JSON). */
errval_t list_domains(char *out, size_t size);
void describe_core(char *out, size_t size);
uint64_t busy_children(void);
void describe_stats(char *out, size_t size);

/* -- clients.c: the domains of this core, over typed local messages ------------ */
/* A client is named by a handle (an int) that stops naming anything when
 * the client ends, so late answers never reach the next domain in its slot. */
void clients_init(void);
/* Local messages (if/monlmp.if) as a source of the event loop. */
void clients_source(struct ws_source *s);
bool client_handle_valid(int client);
bool client_is_shell(int client);
/* The shell or the starter (the restart service): may end domains (kill). */
bool client_may_kill(int client);
extern uint64_t starter_id;
/* Send a monclient reply (already encoded) on the client's request channel:
 * never waits (a client that takes no replies loses them). */
errval_t client_request_reply(int client, const void *msg, size_t len);
/* The domain ended: everything held for it as a client goes. */
void clients_domain_ended(uint64_t domain);
void clients_stats(uint32_t *live, uint64_t *served, uint64_t *refused);
/* Deferred answers to monlmp requests: connect (the frame moves to the
 * client, or is freed if it cannot go) and mesh_wait. */
void client_connect_reply(int client, errval_t err, capslot_t frame);
void client_mesh_wait_reply(int client, errval_t err, uint64_t channels);
/* The answer to a capops request (CAPREQ_*) of client `handle`. */
void client_cap_reply(int client, unsigned req, errval_t err);
extern uint64_t shell_id;

/* -- capops.c: capabilities across cores: owners, holders, revoke, retype ------ */
/* What a client asked (answered by client_cap_reply). */
enum capreq { CAPREQ_GIVE = 1, CAPREQ_REVOKE, CAPREQ_DELETE, CAPREQ_RETYPE };
struct capreq_args {
    uint64_t slot;          /* in the client's CSpace */
    uint32_t type, count;   /* retype */
    uint64_t size, offset, first;
    uint32_t flags;         /* revoke, delete: CAPOPS_BROADCAST */
};
/* Client `handle` (domain `domain`) gives our copy `cap` (we hold it now)
 * to domain `to` on `core`. */
void capops_give(int handle, uint64_t domain, capslot_t cap, uint32_t core, uint64_t to);
/* The same for the monitor's own use: our copy `cap` (freed here) goes to
 * domain `to` on `core` as given by our domain `domain`. */
errval_t capops_give_to(capslot_t cap, uint32_t core, uint64_t to, uint64_t domain);
/* The next capability given to `domain` (moved to *cap: ours until sent). */
errval_t capops_take(uint64_t domain, capslot_t *cap, uint32_t *from_core, uint64_t *from);
/* The memory service's RAM for the domains a monitor spawns (docs/memory.md,
 * "A spawned domain's memory"): an instance (`domain`) lends RAM `cap`
 * (freed here) to `core`'s monitor, which takes it by its base
 * (capops_take_lent) for a spawn, retypes it with the owner's agreement
 * (capops_retype_own, answered by spawn_lent_retyped), and lets go of it
 * when the domain ends; its instance then hears (capops_ram_returned). The
 * object's record counts against the instance's quotas as LENT_BY(domain),
 * apart from what it gives its clients. */
#define MONITOR_MAIL (1ull << 62)   /* the monitor itself as the recipient of a give */
#define LENT_BIT (1ull << 61)
#define LENT_BY(domain) ((domain) | LENT_BIT)
errval_t capops_ram_lend(uint64_t domain, capslot_t cap, uint32_t core);
errval_t capops_take_lent(uint64_t base, capslot_t *cap, uint32_t *from_core, uint64_t *from);
void capops_retype_own(const struct capreq_args *a);
void spawn_lent_retyped(errval_t err);
/* A lent RAM that no core holds any more (or that never reached a spawn). */
void capops_ram_came_back(uint64_t domain, uint64_t base);
errval_t capops_ram_returned(uint64_t domain, uint64_t *base);
/* Revoke, delete or retype for a client, with the cores that hold copies. */
void capops_request(int handle, uint64_t domain, enum capreq req, const struct capreq_args *a);
/* A domain's RAM that could not be revoked (ERR_CAP_REMOTE): revoke the
 * copies elsewhere first, then it, then free the slot. */
void capops_reclaim(capslot_t ram);
/* The same for RAM lent to us (spawn.c): `ram` and everything carved from
 * it go (at once when no copy of any of it is on another core); then the
 * slot `also` (carved from it) is freed, and if `back_domain`, that
 * instance hears RAM `back_base` came back. */
void capops_reclaim_lent(capslot_t ram, capslot_t also, uint64_t back_domain, uint64_t back_base);
/* RAM of ended domains waiting in capops_reclaim (spawn.c keeps room). */
uint32_t capops_reclaim_pending(void);
void capops_domain_ended(uint64_t domain);
/* Notices of watched capabilities, as a source of the event loop. */
void capops_source(struct ws_source *s);
/* Operations that waited too long for other cores (called now and then). */
void capops_expire(void);
/* One JSON fragment of counts ("\"caps\":{...}"). */
size_t capops_describe(char *out, size_t size);
/* Every record as JSON ({"core":..,"owned":[[obj,[holder cores],lost],..],
 * "held":[[owner core,obj],..],"truncated":..}): monclient caps. */
size_t capops_dump(char *out, size_t size);
/* The handlers of if/monitor.if's cap_* messages. */
errval_t capops_on_grant(struct idl_chan *ch, const struct monitor_cap_grant_args *a);
errval_t capops_on_grant_reply(const struct monitor_cap_grant_reply_args *a);
errval_t capops_on_released(const struct monitor_cap_released_args *a);
errval_t capops_on_revoke_call(const struct monitor_cap_revoke_call_args *a);
errval_t capops_on_revoke_reply(const struct monitor_cap_revoke_reply_args *a);
errval_t capops_on_retype_call(const struct monitor_cap_retype_call_args *a);
errval_t capops_on_retype_reply(const struct monitor_cap_retype_reply_args *a);
errval_t capops_on_revoke_ask(const struct monitor_cap_revoke_ask_args *a);
errval_t capops_on_revoke_ask_reply(const struct monitor_cap_revoke_ask_reply_args *a);
errval_t capops_on_give_on(const struct monitor_cap_give_on_args *a);
/* A core fenced as dead: it leaves every holder set (revokes stop waiting
 * for it); what waits for it as an owner fails. Returns the objects it held. */
uint32_t capops_core_dead(uint32_t core);
errval_t capops_on_give_on_reply(const struct monitor_cap_give_on_reply_args *a);
errval_t capops_on_move_call(const struct monitor_cap_move_call_args *a);
errval_t capops_on_move_part(const struct monitor_cap_move_part_args *a);
errval_t capops_on_move_reply(const struct monitor_cap_move_reply_args *a);
errval_t capops_on_moved(const struct monitor_cap_moved_args *a);
errval_t capops_on_moved_reply(const struct monitor_cap_moved_reply_args *a);

/* -- span.c: domains that span cores (docs/spanning.md) ------------------------ */
/* Where a span's PML4 waits on the core it goes to: a mailbox of the
 * monitor's, not a domain's. */
#define SPAN_MAIL(core, domain) (1ull << 63 | (uint64_t)(core) << 40 | ((domain) & 0xffffffffffull))
#define SPAN_MAIL_IS(x) (((x) >> 63) != 0)
/* Client `handle` (domain `domain`) asks for a dispatcher on `core`. */
void span_request(int handle, uint64_t domain, uint32_t core, uint64_t rip, uint64_t rsp, uint64_t arg);
void client_span_reply(int handle, errval_t err, uint64_t id);
errval_t span_on_call(const struct monitor_span_call_args *a);
/* After the client's own unmap or protect: the other cores that ran it
 * forget [vaddr, +pages) by `protocol`; answered by client_tlb_reply. */
void tlb_request(int handle, uint64_t domain, uint64_t vaddr, uint32_t pages, uint32_t protocol);
void client_tlb_reply(int handle, errval_t err, uint32_t cores);
errval_t tlb_on_call(const struct monitor_tlb_call_args *a);
errval_t tlb_on_reply(const struct monitor_tlb_reply_args *a);
errval_t span_on_reply(const struct monitor_span_reply_args *a);
void span_domain_ended(uint64_t domain);
/* One JSON fragment of counts ("\"span\":{...}"). */
size_t span_describe(char *out, size_t size);
void span_expire(void);
/* Cores that have run domain `domain` of ours (bit per core; false if none). */
bool span_cores(uint64_t domain, uint64_t cores[4]);
/* A span dispatcher made here becomes our child (spawn.c frees its RAM). */
errval_t child_add_span(capslot_t ram, capslot_t disp, uint64_t id);

/* -- requests.c: typed requests (if/monclient.if), here or where they belong -- */
/* Who asked: a client of ours, or another core's monitor for its client. */
struct asker {
    int handle;          /* a client of ours; -1 when remote */
    uint32_t core, tag;  /* remote: the monitor that asked, and its tag */
};
/* Serve one request (a whole monclient call as encoded) from `who`: here
 * when it is about this core, else sent on to the core it is about. */
void request_serve(const struct asker *who, const uint8_t *msg, size_t len);
/* A channel for replies to `who` (ch->user points at *who). */
void reply_chan(struct idl_chan *ch, struct asker *who);
/* Answer a request of monclient type `call` with only an error. */
void reply_error(struct idl_chan *ch, unsigned call, errval_t err);
/* Another core served a request of ours: its reply, as encoded. */
void request_answered(uint32_t from, uint32_t tag, const uint8_t *reply, size_t len);
/* A client's request channel as a source of the event loop. */
void request_source(struct ws_source *s, struct urpc_chan *ch, int client);

/* -- pending.c: requests waiting for an answer from another core --------------- */
enum pending_kind { PEND_ASK = 1, PEND_CONNECT };
struct pending {
    uint32_t tag;
    uint32_t kind;          /* enum pending_kind */
    int client;             /* who waits */
    uint32_t call;          /* PEND_ASK: the monclient call's type */
    uint32_t to;            /* the core asked: only its answer counts */
    uint32_t conn;          /* PEND_CONNECT: the connection's number (conns.c) */
    uint64_t since;         /* when it was sent (pending_expire) */
};
/* Remember a request sent on; *tag goes with it. ERR_QUOTA: the client has
 * MON_PENDING_PER_CLIENT waiting already; ERR_TOO_MANY: the table is full. */
errval_t pending_add(const struct pending *p, uint32_t *tag);
/* Take (and forget) the request with this tag sent to core `from` (ANY_CORE:
 * whichever): false if none. */
#define ANY_CORE (~0u)
bool pending_take(uint32_t tag, uint32_t from, struct pending *out);
uint32_t pending_count(void);
/* The client ended: its requests wait for nobody. */
void pending_forget_client(int client);
/* Answer ERR_TIMEOUT to clients whose request has waited too long (a core
 * that never answers must not hang its callers). */
void pending_expire(void);
/* `core` is dead: answer ERR_CORE_DOWN to everything waiting for it (a
 * connection through conns.c); how many were waiting. */
uint32_t pending_fail_core(uint32_t core);

/* -- services.c: domains that take connections --------------------------------- */
errval_t service_register(uint64_t owner, uint64_t *service);
/* The domain that registered `service` here (NAMES_SERVICE: the name server). */
errval_t service_owner(uint64_t service, uint64_t *owner);
/* Connection `conn` (conns.c) waits for the service to accept it. */
errval_t service_enqueue(uint64_t service, uint32_t conn);
void service_unqueue(uint32_t conn);
/* The next connection for a service `owner` registered: a copy of its frame. */
/* The next connection to one of `owner`'s services; *service: which. */
errval_t service_accept(uint64_t owner, capslot_t *frame, uint32_t *client_core, uint64_t *client, uint64_t *service);
void services_domain_ended(uint64_t domain);
/* Does it offer a service here (asked before its end drops them)? */
bool services_offered_by(uint64_t owner);
uint32_t services_count(void);

/* -- conns.c: connections and the lifetime of their frames ---------------------- */
/* monlmp connect from client `handle` (domain `client`) to `service`. */
void conn_open(int handle, uint64_t client, uint64_t service);
/* The service's monitor answered (or never did) a connection we own. */
void conn_connect_answered(uint32_t number, errval_t err);
void conn_connect_timed_out(uint32_t number);
/* Core `from` hands us connection `number` for `service` here, in `frame`
 * (a root we now hold: the caller frees it on error). */
errval_t conn_import(uint32_t from, uint32_t number, uint64_t service, capslot_t frame, uint64_t client);
/* For service_accept: connection record `i` goes to its service. */
errval_t conn_hand_to_service(uint32_t i, capslot_t *frame, uint32_t *client_core, uint64_t *client);
void conns_domain_ended(uint64_t domain);
void conn_closed(uint32_t from, uint32_t owner_core, uint32_t number, uint32_t side);
void conn_released(uint32_t from, uint32_t number);
/* Check a few connections for ends that hung up on their own. */
void conns_sweep(void);
struct conn_stats {
    uint32_t live, owned;
    uint64_t opened, freed;
};
void conns_stats(struct conn_stats *s);
/* `core` is dead: hang up every connection for its end there; how many. */
uint32_t conns_core_dead(uint32_t core);

/* -- lifetimes.c: ends of this core's domains ------------------------------------ */
/* The kernel's obituaries as a source of the event loop: release what
 * every part of the monitor held for those domains; a timer sweeps the
 * connections now and then. */
void lifetimes_start(struct waitset *ws);
uint64_t ends_seen(void);

/* -- ping.c: round trips over the mesh ------------------------------------------ */
/* Ping `peer` `rounds` times over the mesh; the answer (a monclient ping
 * reply) goes to `who` when done. */
errval_t ping_start(uint32_t peer, uint32_t rounds, const struct asker *who);
bool ping_reply(const struct monitor_ping_reply_args *a);

#endif
