/*
 * mem: the memory service, one instance per NUMA node (docs/memory.md).
 *
 *   mem serve NAME KEY [DESIGN]    an instance (the boot manifest's): takes
 *                                  its monitor's spare RAM as its pool, joins
 *                                  group NAME, answers if/mem.if
 *   mem stats                      every node's total, free, lent, borrowed
 *                                  (the shell's `mem`): mem_stats events
 *   mem alloc ram|frame BYTES ALIGN WHERE COUNT [keep]
 *                                  COUNT allocations (WHERE: a node, nearest,
 *                                  any), one mem_alloc event each, then freed
 *                                  (keep: left for our end to give back)
 *   mem bad                        bad requests: one mem_bad event of errors
 *   mem numa NODE                  numa_alloc_onnode/local, written, freed
 *   mem malloc local|own|NODE|spawn BYTES
 *                                  the heap placed so (mem_heap_place), BYTES
 *                                  malloc'ed in 64 KiB pieces and written: one
 *                                  mem_heap_block event per Frame behind the
 *                                  heap, then a mem_malloc event (spawn: as
 *                                  given at spawn, `mem +mem=WORD malloc ...`)
 *   mem lives N PAR / mem life I   spawn/exit cycles: all memory comes back (lives.c)
 *   mem idle TICKS                 a `mem` region of TICKS ticks doing
 *                                  nothing (protocol idle): each CPU's
 *                                  background, for tools/mem-costmodel
 *   mem bench DESIGN BYTES ROUNDS CORES
 *                                  ROUNDS timed alloc+free of a BYTES Frame
 *                                  (NEAREST) as DESIGN's client, one of CORES
 *                                  cores doing so at once: a mem_bench event
 *
 * DESIGN is `per-node` (what an instance serves without a word), `central` (clients of every core go
 * to the instance on node 0, which has each node's instance carve for
 * them) or `cache` (per-node, and the client library keeps a small cache
 * of 4 KiB frames per domain, refilled and drained in batches: the default
 * manifest's word). The word
 * only changes what `info` answers: the client library acts on it.
 *
 * An allocation is carved from the pool (a RAM capability whose original
 * the monitor keeps: SYS_CAP_RETYPE at an offset), given to the client's
 * domain on its core (monlmp cap_give), and recorded under the client's
 * channel. Free deletes our original through the monitor (monlmp
 * cap_delete: the copies on every core go with it) and puts the range back.
 * A client that ends hangs up its channel: everything it held is freed so.
 *
 * When the pool cannot serve a NEAREST or ANY request, the instance asks
 * the other nodes' instances, nearest by SLIT distance first (lend): the
 * lender carves from its pool and gives to the client directly, counted
 * as lent to the client's node; a free goes back through the borrower to
 * the lender. A capability cannot change owner core yet
 * (docs/capabilities.md), so a node's memory is always carved by its own
 * instance.
 */
#include <atoll/costmodel.h>
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/mem.h>
#include <atoll/recover.h>
#include <atoll/thread.h>
#include <atoll/topo.h>
#include <atoll/waitset.h>
#include <if/mem_if.h>
#include <if/monclient_if.h>
#include <if/monlmp_if.h>
#include <if/nameservice_if.h>
#include "lives.h"
#include "loans.h"
#include "pool.h"

#define MAX_CLIENTS 64
#define MAX_ALLOCS 1024

static struct core_info machine;
static uint32_t my_core, my_node, design;
static struct service_chan names;
static const char *group;
static struct waitset ws;

/* The pool: a RAM capability (our copy; the monitor keeps the original). */
static capslot_t pool_slot;
static struct pool pool;

struct client {
    bool used, closed;
    bool busy;            /* a worker serves its request (or its end) */
    struct service_chan *chan;
    uint32_t node;        /* its core's node */
    uint32_t allocs;      /* records it holds */
    uint64_t bytes;
};
static struct client clients[MAX_CLIENTS];

struct alloc {
    bool used;
    uint16_t gen;
    uint8_t type;
    struct client *owner;
    uint64_t base, size;
    uint32_t lender;      /* the node whose pool it is */
    uint32_t for_node;    /* the node of the domain holding it */
    capslot_t slot;       /* ours (lender == my_node): the original */
    uint64_t lender_id;   /* borrowed: the lender's id */
    bool is_batch;        /* ours: a batch lent to another instance (its RAM given to it) */
    struct loan *loan;    /* carved here from a batch we borrowed (slot: our original) */
};
static struct alloc allocs[MAX_ALLOCS];

/* Batches we lent (loans.h): a RAM capability of the range given to the
 * borrowing instance, which carves it itself. */
#define MAX_BATCHES 16
static struct batch {
    struct alloc *rec;    /* NULL: unused */
} batches[MAX_BATCHES];

/* Batches we borrowed. A lender that refused a block for its quota of
 * capabilities given across cores is not asked for another batch until one
 * of its blocks comes back, or for a second (a new batch would only go
 * back at once). */
#define QUOTA_PAUSE_NS 1000000000ull
static struct loans loans;
/* What we hold of each loan (loans.l[i]): the lender's RAM as given to us
 * (FOREIGN here), the local RAM our monitor carved from it once with the
 * owner core's agreement (an original of this core: carved by us with no
 * further message), and the range's free space. */
static struct loan_caps {
    capslot_t foreign, ram;
    struct pool pool;
    uint32_t carved;      /* blocks carved from it here, ever */
    bool keep;            /* taken to serve the lender's node (central): kept while in use */
    uint64_t idle_since;  /* keep: when its last block was freed */
} loan_caps[MEM_LOANS];
/* Central keeps a batch of each node while its blocks come and go, and
 * gives it back once it has been unused this long. */
#define KEEP_IDLE_NS 100000000ull
static struct ws_timer keep_timer;
static struct loan_caps *caps_of(const struct loan *l) { return &loan_caps[l - loans.l]; }
static uint64_t lender_at_quota[CORE_INFO_MAX_NODES];   /* when it refused; 0: not */
/* When we could give no more across cores ourselves (0: not), until one of
 * the blocks we carved comes back: borrowed blocks are then carved by
 * their lenders (lend), and no batch is taken that we could not use. */
static uint64_t self_at_quota;

/* Channels to the other nodes' instances (we are their client). Calls on
 * one go out without waiting for each other's answers (several of our
 * workers may wait on one peer at once) and the peer answers them in
 * order, so each answer goes to the oldest waiter (`head`). At most
 * PEER_INFLIGHT calls are out at once each way, and a worker past that
 * waits for an answer first: a direction of the channel (30 slots of a
 * 4 KiB frame) then holds at most 6 calls and 6 answers unread, and at
 * most 15 slots read but not yet acknowledged (acknowledgements go back a
 * half ring at a time, lib/urpc): 27 < 30, so a send never waits for
 * room. (It must not: a send that waits blocks our whole event loop, the
 * one that reads the peer's messages, while the peer may wait on us.) */
#define PEER_INFLIGHT 6
_Static_assert(2 * PEER_INFLIGHT + URPC_RING_SLOTS(4096) / 2 < URPC_RING_SLOTS(4096),
               "calls, answers and a half ring unacknowledged fit one direction");
struct peer_wait {
    struct peer_wait *next;
    bool ready;
    errval_t err;
    struct mem_msg m;
    struct thread_mutex mu;
    struct thread_cond done;
};
struct peer {
    bool up;
    uint32_t core;
    struct service_chan chan;
    struct peer_wait *head, *tail;   /* waiting for an answer, oldest first */
    uint32_t inflight;
    uint32_t gen;                    /* connections made */
    struct thread_cond room;
};
static struct peer peers[CORE_INFO_MAX_NODES];

/* Requests that wait for another node's instance are served by a worker
 * thread (lib/thread, same core, cooperative), so the event loop goes on
 * serving every other client meanwhile and many such requests are in
 * flight at once (under `central`, every request of another node's
 * client). The client's answer is deferred until its worker is done; a
 * client's channel carries one request at a time, and `busy` keeps its
 * end (client_end) waiting for the worker. */
#define WORKER_STACK (32u << 10)
enum { JOB_ALLOC, JOB_FREE, JOB_END, JOB_IDLE_LOANS };
struct job {
    int kind;
    struct client *c;
    struct alloc *a;
    struct mem_alloc_call_args q;
    uint64_t align;
    uint32_t order[CORE_INFO_MAX_NODES + 1], n, i;
    errval_t err;
};

static struct {
    uint64_t allocs, frees, refused, lent_to[CORE_INFO_MAX_NODES], borrowed, borrows, stuck, batches_lent;
    uint64_t deferred, workers_now, workers_max, worker_refused, spawned_ever;
} st;

static uint64_t id_of(const struct alloc *a) { return (uint64_t)a->gen << 32 | ((uint64_t)(a - allocs) + 1); }

static struct alloc *alloc_by_id(uint64_t id)
{
    uint64_t i = (id & 0xffffffffu) - 1;
    if (i >= MAX_ALLOCS || !allocs[i].used || allocs[i].gen != id >> 32)
        return 0;
    return &allocs[i];
}

static struct alloc *alloc_new(void)
{
    for (uint32_t i = 0; i < MAX_ALLOCS; i++)
        if (!allocs[i].used) {
            uint16_t gen = (uint16_t)(allocs[i].gen + 1) ? (uint16_t)(allocs[i].gen + 1) : 1;
            allocs[i] = (struct alloc){ .used = true, .gen = gen };
            return &allocs[i];
        }
    return 0;
}

static void alloc_drop(struct alloc *a)
{
    if (a->owner) {
        a->owner->allocs--;
        a->owner->bytes -= a->size;
    }
    uint16_t gen = a->gen;
    *a = (struct alloc){ .gen = gen };
}

static struct client *client_of(struct idl_chan *ch)
{
    for (uint32_t i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].used && &clients[i].chan->idl == ch)
            return &clients[i];
    return 0;
}

/* -- our pool ------------------------------------------------------------------ */

/* Carve [type, bytes, align] from the pool and give it to `domain` on `core`. */
/* Give a client (or another node's instance) on another core a copy of
 * `s` without the right to pass capabilities on (CAP_RIGHT_GRANT): its
 * revoke through its monitor removes the copies on other cores, never
 * this service's original (docs/capabilities.md, a holder's revoke), which
 * this service keeps to take the memory back. On this core the copy waits
 * in the monitor's mailbox as a child of what was sent, so `s` itself is
 * given (a revoke on one core reaches only what lies below the copy). */
static errval_t give_lent(capslot_t s, uint32_t core, uint64_t domain)
{
    capslot_t lent;
    errval_t rerr = ERR_OK, err;
    if (core == my_core) {
        err = monlmp_cap_give_rpc(monitor_lmp(), s, core, domain, &rerr);
        return err ? err : rerr;
    }
    if ((err = slot_alloc(&lent)))
        return err;
    if (!(err = sys_cap_mint(s, lent, CAP_RIGHTS_ALL & ~CAP_RIGHT_GRANT, 0, 0, 0)) &&
        !(err = monlmp_cap_give_rpc(monitor_lmp(), lent, core, domain, &rerr)))
        err = rerr;
    sys_cap_delete(lent);   /* (the copy given lives on where it went: its monitor anchored the original) */
    slot_free(lent);
    return err;
}

static errval_t carve_and_give_from(capslot_t ram, struct pool *from, uint32_t type, uint64_t bytes, uint64_t align,
                                    uint32_t core, uint64_t domain, struct alloc *a)
{
    uint64_t at;
    capslot_t s;
    errval_t err = pool_take(from, bytes, align, &at);
    if (err)
        return err == ERR_TOO_MANY ? ERR_NO_MEMORY : err;
    if ((err = slot_alloc(&s))) {
        pool_put(from, at, bytes);
        return err;
    }
    if (!(err = sys_cap_retype(ram, type, bytes, at - from->base, 1, s)))
        err = give_lent(s, core, domain);
    if (err) {
        sys_cap_delete(s);
        slot_free(s);
        pool_put(from, at, bytes);
        return err;
    }
    a->type = (uint8_t)type;
    a->base = at;
    a->size = bytes;
    a->lender = my_node;
    a->slot = s;
    return ERR_OK;
}

static errval_t carve_and_give(struct pool *from, uint32_t type, uint64_t bytes, uint64_t align, uint32_t core,
                               uint64_t domain, struct alloc *a)
{
    return carve_and_give_from(pool_slot, from, type, bytes, align, core, domain, a);
}

/* Our original `slot` goes, with its copies on every core, and the slot
 * is free. Revoke first: every copy, on every core, goes (a delete of an
 * original with copies elsewhere would hand the object over instead). */
static errval_t original_go(capslot_t slot)
{
    errval_t rerr = ERR_OK, err = monlmp_cap_revoke_rpc(monitor_lmp(), slot, 0, &rerr);
    if (!err && !(err = rerr))
        err = monlmp_cap_delete_rpc(monitor_lmp(), slot, 0, &rerr);
    if (!err)
        err = rerr;
    if (err && err != ERR_CAP_EMPTY) {
        st.stuck++;   /* a copy may live on: the range is never used again */
        return err;
    }
    slot_free(slot);
    return ERR_OK;
}

/* Our original goes, with its copies on every core; then the range. */
static errval_t uncarve(struct alloc *a)
{
    errval_t err = original_go(a->slot);
    if (err)
        return err;
    self_at_quota = 0;
    return pool_put(a->loan ? &caps_of(a->loan)->pool : &pool, a->base, a->size);
}

/* -- other nodes' instances ------------------------------------------------------ */

static bool peer_ready(struct ws_source *s);

/* The instance of `node` (its group member whose core is on that node). */
static struct peer *peer_of(uint32_t node)
{
    struct peer *p = &peers[node];
    if (p->up)
        return p;
    static uint8_t buf[nameservice_size_max];
    uint32_t total = 0, count = 0;
    const char *text = "";
    errval_t rerr = ERR_OK;
    if (nameservice_instances_rpc(&names.idl, group, 0, &rerr, &total, &count, &text, buf, sizeof buf) || rerr)
        return 0;
    for (const char *l = text; *l;) {
        const char *was = l;
        uint32_t core = (uint32_t)mem_number(&l);
        uint64_t service = mem_number(&l);
        if (l == was)
            break;
        if (core < machine.ncores && machine.core_node[core] == node && core != my_core) {
            if (service_connect_wait(service, &p->chan, 2000))
                return 0;
            p->up = true;
            p->core = core;
            p->head = p->tail = 0;
            p->inflight = 0;
            p->gen++;
            service_chan_source(&p->chan, peer_ready, p);
            waitset_add(&ws, &p->chan.src);
            return p;
        }
    }
    return 0;
}

/* The peer's channel is no good any more: every waiter gets `err`, and
 * the next call connects again. */
static void peer_down(struct peer *p, errval_t err)
{
    if (!p->up)
        return;
    waitset_remove(&p->chan.src);
    service_chan_close(&p->chan, ERR_OK);
    p->up = false;
    for (struct peer_wait *w = p->head; w; w = w->next) {
        w->err = err ? err : ERR_CHAN_CLOSED;
        w->ready = true;
        thread_cond_signal(&w->done);
    }
    p->head = p->tail = 0;
    p->inflight = 0;
    thread_cond_broadcast(&p->room);
}

/* The event loop's: an answer from a peer goes to its oldest waiter. */
static bool peer_ready(struct ws_source *s)
{
    struct peer *p = s->arg;
    uint8_t buf[mem_size_max];
    size_t len = 0;
    errval_t err = p->chan.idl.recv(&p->chan.idl, buf, sizeof buf, &len, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    struct peer_wait *w = p->head;
    if (err || !w) {   /* broken, hung up, or an answer nobody asked for */
        peer_down(p, err ? err : ERR_MSG_UNKNOWN);
        return true;
    }
    p->head = w->next;
    if (!p->head)
        p->tail = 0;
    p->inflight--;
    thread_cond_signal(&p->room);
    w->err = mem_decode(buf, len, &w->m);
    w->ready = true;
    thread_cond_signal(&w->done);
    if (w->err)
        peer_down(p, w->err);   /* out of step: every later answer would be someone else's */
    return true;
}

/* Node `node`'s instance, with room for one more call (a worker's: it may
 * wait), or NULL. The caller sends at once (no yield in between) and then
 * waits with peer_reply, so waiters queue in the order the calls went. */
static struct peer *peer_enter(uint32_t node)
{
    struct thread_mutex mu = { 0 };
    struct peer *p = peer_of(node);
    thread_mutex_lock(&mu);
    while (p && p->inflight >= PEER_INFLIGHT) {
        thread_cond_wait(&p->room, &mu);
        p = peer_of(node);   /* it may have gone down meanwhile */
    }
    thread_mutex_unlock(&mu);
    if (p)
        p->inflight++;
    return p;
}

/* The answer to the call just sent to `p` (`err`: the send's), of type
 * `want`. A worker's: it waits while the event loop serves the rest. */
static errval_t peer_reply(struct peer *p, errval_t err, int want, struct mem_msg *m)
{
    if (err) {
        p->inflight--;
        peer_down(p, err);
        return err;
    }
    struct peer_wait w = { 0 };
    uint32_t gen = p->gen;
    if (p->tail)
        p->tail->next = &w;
    else
        p->head = &w;
    p->tail = &w;
    thread_mutex_lock(&w.mu);
    while (!w.ready)
        thread_cond_wait(&w.done, &w.mu);
    thread_mutex_unlock(&w.mu);
    if (!w.err && (int)w.m.type != want) {
        w.err = ERR_MSG_UNKNOWN;
        if (p->gen == gen)
            peer_down(p, w.err);   /* not another worker's new connection */
    }
    *m = w.m;
    return w.err;
}

static errval_t borrow(uint32_t node, uint32_t type, uint64_t bytes, uint64_t align, uint32_t core,
                       uint64_t domain, uint32_t for_node, uint64_t batch, struct alloc *a)
{
    struct peer *p = peer_enter(node);
    if (!p)
        return ERR_NOT_FOUND;
    struct mem_msg m;
    errval_t err = peer_reply(p, mem_lend_call_send(&p->chan.idl, type, bytes, align, core, domain, for_node, batch),
                              mem_lend_reply, &m);
    if (err)
        return err;
    if (m.u.lend_reply.err)
        return m.u.lend_reply.err;
    a->type = (uint8_t)type;
    a->base = m.u.lend_reply.base;
    a->size = m.u.lend_reply.size;
    a->lender = node;
    a->lender_id = m.u.lend_reply.id;
    st.borrowed += a->size;
    st.borrows++;
    return ERR_OK;
}

static errval_t peer_free(uint32_t node, uint64_t id)
{
    struct peer *p = peer_enter(node);
    if (!p)
        return ERR_NOT_FOUND;
    struct mem_msg m;
    errval_t err = peer_reply(p, mem_free_call_send(&p->chan.idl, id), mem_free_reply, &m);
    return err ? err : m.u.free_reply.err;
}

/* `keep`: central's batch to serve the lender's own node's clients, not a
 * fallback of a node run dry. */
static void loan_event(const char *what, const struct loan *l, uint32_t carved, bool keep)
{
    printf("@atoll {\"event\":\"mem_batch\",\"node\":%u,\"what\":\"%s\",\"lender\":%u,\"size\":%llu,"
           "\"held\":%u,\"carved\":%u,\"for\":\"%s\"}\n",
           my_node, what, l->lender, (unsigned long long)l->size, loans_count(&loans), carved,
           keep ? "its_node" : "fallback");
}

/* A capability given to us (a batch's RAM, by its lender before its
 * answer), from our monitor's mailbox. Workers take in turn, so one may
 * find another's first: kept for it, never dropped. */
#define TAKE_WAIT_NS 30000000000ull
static struct { capslot_t slot; uint64_t base; } taken[MEM_LOANS];

static errval_t take_given(uint64_t base, capslot_t *out)
{
    for (uint32_t i = 0; i < MEM_LOANS; i++)
        if (taken[i].slot && taken[i].base == base) {
            *out = taken[i].slot;
            taken[i].slot = 0;
            return ERR_OK;
        }
    for (uint64_t t0 = now_ns();;) {
        capslot_t c = 0;
        uint32_t core = 0;
        uint64_t from = 0;
        struct cap_identity id;
        errval_t rerr = ERR_OK, err = monlmp_cap_take_rpc(monitor_lmp(), &rerr, &c, &core, &from);
        if (!err)
            err = rerr;
        if (!err && !(err = sys_cap_identify(c, &id))) {
            if (id.base == base) {
                *out = c;
                return ERR_OK;
            }
            uint32_t i = 0;
            while (i < MEM_LOANS && taken[i].slot)
                i++;
            if (i < MEM_LOANS)
                taken[i].slot = c, taken[i].base = id.base;
            else
                cap_free(c);   /* more than we ever wait for: not ours */
            continue;
        }
        if (err != ERR_WOULD_BLOCK || now_ns() - t0 > TAKE_WAIT_NS)
            return err == ERR_WOULD_BLOCK ? ERR_TIMEOUT : err;
        sys_yield();
    }
}

/* A loan goes back to its lender: our caps of it first (nothing is carved
 * from it any more), then the lender's free of the batch, which revokes
 * whatever copy is left. Kept if the lender is gone meanwhile (its pool
 * went with it; the channel's end frees the record there). */
static void loan_return(struct loan *l)
{
    /* Out of the table before the call waits: no other worker picks it. */
    struct loan was = *l;
    struct loan_caps *lc = caps_of(l);
    uint32_t carved = lc->carved;
    bool keep = lc->keep;
    if (lc->ram && !sys_cap_delete(lc->ram))
        slot_free(lc->ram);
    if (lc->foreign && !sys_cap_delete(lc->foreign))
        slot_free(lc->foreign);
    *lc = (struct loan_caps){ 0 };
    loans_drop(&loans, l);
    errval_t err = peer_free(was.lender, was.id);
    if (err)
        printf("mem: node %u: batch back to node %u: %s\n", my_node, was.lender, err_name(err));
    loan_event("returned", &was, carved, keep);
}

/* Memory borrowed a block at a time (lend): back through its lender. */
static errval_t give_back(struct alloc *a)
{
    errval_t err = peer_free(a->lender, a->lender_id);
    if (err)
        return err;
    st.borrowed -= a->size;
    lender_at_quota[a->lender] = 0;
    return ERR_OK;
}

/* An unused loan goes back if the lender could not serve from it any
 * more, or (a fallback's) if our own pool has as much free again. */
static bool loan_goes_back(const struct loan *l)
{
    return l->full || (!caps_of(l)->keep && pool.free_bytes >= l->size);
}

/* A block carved here from a loan: our original goes (every copy with it),
 * the range back to the loan, and the loan back to its lender with its
 * last block if the lender could not serve from it any more or our own
 * pool has as much free again. */
static errval_t loan_block_free(struct alloc *a)
{
    struct loan *l = a->loan;
    errval_t err = uncarve(a);
    if (err)
        return err;
    st.borrowed -= a->size;
    if (loans_block_freed(l) && loan_goes_back(l)) {
        loan_return(l);
    } else if (l->live == 0 && caps_of(l)->keep) {
        caps_of(l)->idle_since = now_ns();
        if (!keep_timer.armed)
            waitset_timer_arm(&ws, &keep_timer, now_ns() + KEEP_IDLE_NS);
    }
    return ERR_OK;
}

/* A new batch from `node`: the lender takes it out of its pool and gives
 * us its RAM (FOREIGN here); our monitor carves it once, with the owner
 * core's agreement, into RAM of this core (docs/capabilities.md "Retype"),
 * from which we carve every block ourselves. */
static struct loan *loan_new(uint32_t node, uint64_t bytes, uint32_t for_node, errval_t *errp)
{
    struct peer *p = peer_enter(node);
    if (!p)
        return *errp = ERR_NOT_FOUND, (struct loan *)0;
    struct mem_msg m;
    /* Central's batch to serve the lender's own node's clients: lent to us. */
    bool keep = for_node == node;
    if (keep)
        for_node = my_node;
    errval_t rerr = ERR_OK, err = peer_reply(p, mem_lend_batch_call_send(&p->chan.idl, bytes, for_node),
                                             mem_lend_batch_reply, &m);
    if (!err)
        err = m.u.lend_batch_reply.err;
    if (err)
        return *errp = err, (struct loan *)0;
    uint64_t id = m.u.lend_batch_reply.id, base = m.u.lend_batch_reply.base, size = m.u.lend_batch_reply.size;
    capslot_t foreign = 0, ram = 0;
    struct loan *l = 0;
    if (!(err = take_given(base, &foreign)) && !(err = slot_alloc(&ram)) &&
        !(err = monlmp_cap_retype_rpc(monitor_lmp(), foreign, CAP_RAM, size, 0, 1, ram, &rerr)) && !(err = rerr) &&
        !(l = loans_add(&loans, node, id, size)))
        err = ERR_TOO_MANY;
    if (err) {
        if (ram)
            cap_free(ram);   /* carved or still empty: the slot goes either way */
        if (foreign)
            cap_free(foreign);
        peer_free(node, id);
        return *errp = err, (struct loan *)0;
    }
    struct loan_caps *lc = caps_of(l);
    lc->foreign = foreign;
    lc->ram = ram;
    lc->keep = keep;
    pool_init(&lc->pool, base, size);
    loan_event("borrowed", l, 0, keep);
    return l;
}

/* A dry node borrows from `node` a batch at a time and carves its blocks
 * itself: no message per block. Past our own quota of capabilities given
 * across cores (our monitor's, per domain), the lender carves the block
 * for us (one lend, counted against its quota instead). */
static errval_t borrow_batched(uint32_t node, uint32_t type, uint64_t bytes, uint64_t align, uint32_t core,
                               uint64_t domain, uint32_t for_node, struct alloc *a)
{
    if (self_at_quota && now_ns() - self_at_quota < QUOTA_PAUSE_NS) {
        errval_t err = borrow(node, type, bytes, align, core, domain, for_node, 0, a);
        if (err == ERR_QUOTA)
            lender_at_quota[node] = now_ns();
        return err;
    }
    for (int tries = 0; tries < 2; tries++) {
        struct loan *l = loans_pick(&loans, node);
        errval_t err = ERR_OK;
        if (!l && lender_at_quota[node] && now_ns() - lender_at_quota[node] < QUOTA_PAUSE_NS)
            return ERR_QUOTA;
        if (!l && !(l = loan_new(node, bytes, for_node, &err)))
            return err;
        struct loan_caps *lc = caps_of(l);
        err = carve_and_give_from(lc->ram, &lc->pool, type, bytes, align, core, domain, a);
        if (err == ERR_NO_MEMORY) {
            l->full = true;   /* a new batch next; this one goes back once empty */
            if (l->live == 0)
                loan_return(l);
            continue;
        }
        if (err == ERR_QUOTA) {
            self_at_quota = now_ns();
            if (l->live == 0)
                loan_return(l);   /* nothing carved from it: no use to us now */
            if ((err = borrow(node, type, bytes, align, core, domain, for_node, 0, a)) == ERR_QUOTA)
                lender_at_quota[node] = now_ns();
            return err;
        }
        if (err)
            return err;
        l->live++;
        lc->carved++;
        a->loan = l;
        a->lender = node;
        st.borrowed += a->size;
        st.borrows++;
        return ERR_OK;
    }
    return ERR_NO_MEMORY;
}

/* -- requests -------------------------------------------------------------------- */

static errval_t check_request(uint32_t type, uint64_t bytes, uint64_t *align, uint32_t where)
{
    if (type != CAP_RAM && type != CAP_FRAME)
        return ERR_CAP_TYPE;
    if (bytes == 0)
        return ERR_BAD_LENGTH;
    if (*align == 0)
        *align = MEM_PAGE;
    if (bytes > UINT64_MAX - *align)
        return ERR_RETYPE_OVERFLOW;
    if (bytes > MEM_MAX_BYTES)
        return ERR_BAD_LENGTH;
    if (bytes % MEM_PAGE || *align < MEM_PAGE || *align > MEM_MAX_ALIGN || (*align & (*align - 1)))
        return ERR_BAD_ALIGNMENT;
    if (where != MEM_NEAREST && where != MEM_ANY && where >= machine.nnodes)
        return ERR_NO_SUCH_NODE;
    return ERR_OK;
}

/* Nodes nearest first from `from` (by SLIT distance, then number). */
static uint32_t nodes_by_distance(uint32_t from, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < machine.nnodes; i++)
        if (i != from)
            out[n++] = i;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0; j--) {
            uint32_t a = out[j - 1], b = out[j];
            if (machine.node_distance[from][a] < machine.node_distance[from][b] ||
                (machine.node_distance[from][a] == machine.node_distance[from][b] && a < b))
                break;
            out[j - 1] = b;
            out[j] = a;
        }
    return n;
}

/* `fallback`: the node asked for had none, this is borrowing (in batches,
 * unless the alignment is more than a batch's); else a request for that
 * node (a given node, or central's carving for a node's clients): one lend.
 * Another node's: a worker's only (it waits for that node's instance). */
static errval_t alloc_on(uint32_t node, uint32_t type, uint64_t bytes, uint64_t align, uint32_t core,
                         uint64_t domain, uint32_t for_node, bool fallback, struct alloc *a)
{
    if (node == my_node)
        return carve_and_give(&pool, type, bytes, align, core, domain, a);
    /* A client of another node (central's: the client library chose the
     * design, mem_use_design may differ from ours) has that node's memory
     * carved here, from batches its instance lent us: one server carves
     * for the machine, as Barrelfish's central one. */
    if ((fallback || for_node != my_node) && align <= MEM_BATCH_ALIGN)
        return borrow_batched(node, type, bytes, align, core, domain, for_node, a);
    return borrow(node, type, bytes, align, core, domain, for_node, 0, a);
}

/* The nodes of j->order from j->i on, nearest first: past a node that has
 * none (or whose instance is gone) to the next; any other answer is the
 * answer. A node whose instance may give no more across cores now (its
 * monitor's per-domain quota, MON_CAPS_OBJECTS_PER_DOMAIN) counts as one
 * without memory: the next nearest is asked. `inline_only` (the event
 * loop's turn): stop at the first node that is not ours, ERR_WOULD_BLOCK
 * with j->i there, for a worker to go on. */
static errval_t alloc_steps(struct job *j, bool inline_only)
{
    for (; j->i < j->n; j->i++) {
        uint32_t node = j->order[j->i];
        if (inline_only && node != my_node)
            return ERR_WOULD_BLOCK;
        errval_t e = alloc_on(node, j->q.type, j->q.bytes, j->align, j->c->chan->peer_core, j->c->chan->peer,
                              j->c->node, j->i > 0, j->a);
        if (e == ERR_QUOTA || e == ERR_TOO_MANY) {
            j->err = e;
            continue;
        }
        if (e != ERR_NO_MEMORY && e != ERR_NOT_FOUND)
            return e;
    }
    return j->err;
}

/* The client's answer: the allocation recorded under it, or the error. */
static errval_t alloc_answer(struct client *c, struct alloc *a, errval_t err)
{
    if (err) {
        if (a)
            alloc_drop(a);
        st.refused++;
        return mem_alloc_reply_send(&c->chan->idl, err, 0, 0, 0, 0);
    }
    a->owner = c;
    a->for_node = c->node;
    c->allocs++;
    c->bytes += a->size;
    st.allocs++;
    if (a->lender == my_node)
        st.lent_to[a->for_node] += a->size;
    return mem_alloc_reply_send(&c->chan->idl, ERR_OK, id_of(a), a->base, a->size, a->lender);
}

static void client_end(struct client *c);
static void closed_sweep(void);
static errval_t free_one(struct alloc *a);

/* A worker: one deferred request, or a client's end, then the answer. */
static int job_run(void *arg)
{
    struct job *j = arg;
    struct client *c = j->c;
    if (j->kind == JOB_IDLE_LOANS) {
        /* Checked here, not when started: a block may have been carved since. */
        for (uint32_t i = 0; i < MEM_LOANS; i++) {
            struct loan *l = &loans.l[i];
            if (l->used && l->live == 0 &&
                (loan_caps[i].keep ? now_ns() - loan_caps[i].idle_since >= KEEP_IDLE_NS : loan_goes_back(l)))
                loan_return(l);
        }
        free(j);
        st.workers_now--;
        return 0;
    }
    if (j->kind == JOB_ALLOC)
        alloc_answer(c, j->a, alloc_steps(j, false));
    else if (j->kind == JOB_FREE)
        mem_free_reply_send(&c->chan->idl, free_one(j->a));
    if (j->kind == JOB_END || c->closed)
        client_end(c);   /* busy until its end is done (client_end clears it) */
    else
        c->busy = false;
    free(j);
    st.workers_now--;
    return 0;
}

/* The job in a worker of its own: ERR_OK, or the error (nothing started). */
static errval_t job_start(struct job *j)
{
    struct job *copy = malloc(sizeof *copy);
    struct thread *t = 0;
    errval_t err = copy ? ERR_OK : ERR_NO_MEMORY;
    if (!err) {
        *copy = *j;
        err = thread_create(&t, job_run, copy, WORKER_STACK);
    }
    if (err) {
        free(copy);
        st.worker_refused++;
        return err;
    }
    thread_detach(t);
    if (j->c)
        j->c->busy = true;
    st.deferred++;
    if (++st.workers_now > st.workers_max)
        st.workers_max = st.workers_now;
    return ERR_OK;
}

/* Central's kept batches unused for KEEP_IDLE_NS go back (a worker's: it
 * waits for the lenders); one still in use, or not idle long enough, is
 * looked at again later. */
static void keep_timer_fire(struct ws_timer *t)
{
    bool idle = false, later = false;
    for (uint32_t i = 0; i < MEM_LOANS; i++) {
        if (!loans.l[i].used || !loan_caps[i].keep || loans.l[i].live)
            continue;
        if (now_ns() - loan_caps[i].idle_since >= KEEP_IDLE_NS)
            idle = true;
        else
            later = true;
    }
    struct job j = { .kind = JOB_IDLE_LOANS };
    if ((idle && job_start(&j)) || later)
        waitset_timer_arm(t->ws, t, now_ns() + KEEP_IDLE_NS);   /* again (no worker now, or not yet idle) */
}

static errval_t on_alloc(struct idl_chan *ch, const struct mem_alloc_call_args *q)
{
    struct client *c = client_of(ch);
    struct job j = { .kind = JOB_ALLOC, .c = c, .q = *q, .align = q->align, .err = ERR_NO_MEMORY };
    errval_t err = c ? check_request(q->type, q->bytes, &j.align, q->where) : ERR_NOT_FOUND;
    if (!c)
        return mem_alloc_reply_send(ch, err, 0, 0, 0, 0);
    if (!err && (c->allocs >= MEM_QUOTA_ALLOCS || c->bytes + q->bytes > MEM_QUOTA_BYTES))
        err = ERR_QUOTA;
    if (!err && !(j.a = alloc_new()))
        err = ERR_TOO_MANY;
    if (!err) {
        /* NEAREST: the caller's node first; ANY: ours (no hop) first; a node: that one. */
        uint32_t first = q->where < machine.nnodes ? q->where : q->where == MEM_NEAREST ? c->node : my_node;
        j.order[j.n++] = first;
        if (q->where >= machine.nnodes)
            j.n += nodes_by_distance(first, j.order + 1);
        /* Our own pool here and now; another node's instance in a worker,
         * whose answer comes when that instance's does. */
        if ((err = alloc_steps(&j, true)) == ERR_WOULD_BLOCK) {
            if (!(err = job_start(&j)))
                return ERR_OK;   /* answered by the worker */
            err = ERR_WOULD_BLOCK;   /* no worker: the client library asks again */
        }
    }
    return alloc_answer(c, j.a, err);
}

/* Another instance asks for its client: from our pool only. */
static errval_t on_lend(struct idl_chan *ch, const struct mem_lend_call_args *q)
{
    struct client *c = client_of(ch);
    uint64_t align = q->align;
    struct alloc *a = 0;
    errval_t err = c ? check_request(q->type, q->bytes, &align, my_node) : ERR_NOT_FOUND;
    if (!err && (q->for_node >= machine.nnodes || q->core >= machine.ncores))
        err = ERR_INVALID_ARG;
    /* A batch is carved by its borrower now (it holds the batch's RAM). */
    if (!err && q->batch)
        err = ERR_NOT_SUPPORTED;
    if (!err && !(a = alloc_new()))
        err = ERR_TOO_MANY;
    if (!err && (err = carve_and_give(&pool, q->type, q->bytes, align, q->core, q->domain, a)))
        alloc_drop(a);
    if (err) {
        st.refused++;
        return mem_lend_reply_send(ch, err, 0, 0, 0);
    }
    a->owner = c;
    a->for_node = q->for_node;
    c->allocs++;
    c->bytes += a->size;
    st.allocs++;
    st.lent_to[a->for_node] += a->size;
    return mem_lend_reply_send(ch, ERR_OK, id_of(a), a->base, a->size);
}

/* Another instance's node is dry: a batch of our pool for it, its RAM
 * given to that instance (which carves it: one capability given across
 * cores per batch, not per block). */
static errval_t on_lend_batch(struct idl_chan *ch, const struct mem_lend_batch_call_args *q)
{
    struct client *c = client_of(ch);
    struct batch *b = 0;
    struct alloc *a = 0;
    uint64_t size = 0, at = 0, align = MEM_PAGE;
    errval_t err = !c ? ERR_NOT_FOUND : q->for_node >= machine.nnodes || q->for_node == my_node ? ERR_INVALID_ARG
                 : q->bytes == 0 || q->bytes > MEM_MAX_BYTES ? ERR_BAD_LENGTH
                 : q->bytes % MEM_PAGE ? ERR_BAD_ALIGNMENT : ERR_OK;
    for (uint32_t i = 0; i < MAX_BATCHES && !err && !b; i++)
        if (!batches[i].rec)
            b = &batches[i];
    if (!err && !b)
        err = ERR_TOO_MANY;
    if (!err && !(size = batch_bytes(q->bytes, pool_largest(&pool))))
        err = ERR_NO_MEMORY;
    if (!err && size % MEM_BATCH_ALIGN == 0)
        align = MEM_BATCH_ALIGN;
    /* The largest block may not be 2 MiB aligned: then any alignment. */
    if (!err && (err = pool_take(&pool, size, align, &at)) && align != MEM_PAGE)
        err = pool_take(&pool, size, align = MEM_PAGE, &at);
    if (err == ERR_TOO_MANY)
        err = ERR_NO_MEMORY;
    if (!err && !(a = alloc_new())) {
        pool_put(&pool, at, size);
        err = ERR_TOO_MANY;
    }
    capslot_t s = 0;
    if (!err && !(err = slot_alloc(&s))) {
        if (!(err = sys_cap_retype(pool_slot, CAP_RAM, size, at - pool.base, 1, s)))
            err = give_lent(s, c->chan->peer_core, c->chan->peer);
        if (err) {
            sys_cap_delete(s);
            slot_free(s);
        }
    }
    if (err && a) {
        pool_put(&pool, at, size);
        alloc_drop(a);
    }
    if (err) {
        st.refused++;
        return mem_lend_batch_reply_send(ch, err, 0, 0, 0);
    }
    a->is_batch = true;
    a->type = CAP_RAM;
    a->slot = s;
    a->base = at;
    a->size = size;
    a->lender = my_node;
    a->for_node = q->for_node;
    a->owner = c;
    c->allocs++;
    c->bytes += size;
    b->rec = a;
    st.lent_to[a->for_node] += size;
    st.batches_lent++;
    return mem_lend_batch_reply_send(ch, ERR_OK, id_of(a), at, size);
}

/* A batch comes back: our original goes, with the borrower's copy and
 * anything still carved from it there (a borrower that ended). */
static errval_t batch_free(struct alloc *a)
{
    for (uint32_t i = 0; i < MAX_BATCHES; i++)
        if (batches[i].rec == a) {
            errval_t err = uncarve(a);
            if (err)
                return err;
            batches[i].rec = 0;
            st.lent_to[a->for_node] -= a->size;
            st.frees++;
            alloc_drop(a);
            return ERR_OK;
        }
    return ERR_INCONSISTENT;
}

static errval_t free_one(struct alloc *a)
{
    if (a->is_batch)
        return batch_free(a);
    errval_t err = a->loan ? loan_block_free(a) : a->lender == my_node ? uncarve(a) : give_back(a);
    if (err)
        return err;
    if (a->lender == my_node)
        st.lent_to[a->for_node] -= a->size;
    st.frees++;
    alloc_drop(a);
    return ERR_OK;
}

/* Does freeing it wait for another node's instance: a block it carved,
 * or the last block of a loan that then goes back? */
static bool waits_for_lender(const struct alloc *a)
{
    if (a->is_batch || a->lender == my_node)
        return false;
    const struct loan *l = a->loan;
    return !l || (l->live == 1 && loan_goes_back(l));
}

static errval_t on_free(struct idl_chan *ch, const struct mem_free_call_args *q)
{
    struct client *c = client_of(ch);
    struct alloc *a = alloc_by_id(q->id);
    errval_t err = !c ? ERR_NOT_FOUND : !a ? ERR_NOT_FOUND : a->owner != c ? ERR_NOT_PERMITTED : ERR_OK;
    /* Borrowed memory goes back through its lender: a worker waits for it. */
    if (!err && waits_for_lender(a)) {
        struct job j = { .kind = JOB_FREE, .c = c, .a = a };
        if (!(err = job_start(&j)))
            return ERR_OK;   /* answered by the worker */
        err = ERR_WOULD_BLOCK;
    }
    if (!err)
        err = free_one(a);
    return mem_free_reply_send(ch, err);
}

static void spawn_returns(void);
static uint64_t spawn_bytes_out(void);

static errval_t on_stats(struct idl_chan *ch, const struct mem_stats_call_args *q)
{
    struct client *c = client_of(ch);
    spawn_returns();   /* what came back, in the pool before it is counted */
    uint64_t lent = 0;
    for (uint32_t n = 0; n < machine.nnodes; n++)
        if (n != my_node)
            lent += st.lent_to[n];
    if (q->node >= machine.nnodes)
        return mem_stats_reply_send(ch, ERR_NO_SUCH_NODE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    /* total, free, lent and the range are our pool's; `borrowed` what our
     * clients hold of other pools; held: this channel's. `allocs`:
     * records held for node q->node's domains (of our pool). */
    uint32_t lent_batches = 0;
    for (uint32_t i = 0; i < MAX_BATCHES; i++)
        lent_batches += batches[i].rec != 0;
    return mem_stats_reply_send(ch, ERR_OK, pool.end - pool.base, pool.free_bytes, lent, st.borrowed, pool.base,
                                pool.end, st.allocs, st.lent_to[q->node], c ? c->allocs : 0, c ? c->bytes : 0,
                                lent_batches, loans_count(&loans), loans.batches, st.deferred,
                                (uint32_t)st.workers_max, spawn_bytes_out(), st.spawned_ever);
}

static errval_t on_info(struct idl_chan *ch, const struct mem_info_call_args *q)
{
    (void)q;
    return mem_info_reply_send(ch, ERR_OK, my_node, my_core, design, machine.nnodes);
}

/* -- RAM for the domains the monitors of our node spawn --------------------------- */
/* The shell's `run` asks the instance of the core's node for the domain's
 * RAM, lent to that core's monitor (monlmp ram_lend), which makes the
 * domain from it. It is not the asker's: it comes back when that core has
 * let go of every copy (the domain ended, or its spawn never came), which
 * our monitor says (ram_returned, read every SPAWN_POLL_NS while any is
 * out, and before every stats answer), and the range goes back to the pool. */
#define SPAWN_POLL_NS 100000000ull
static struct spawn_block {
    capslot_t slot;       /* our original; 0: unused */
    uint64_t base, size;
    uint32_t core;
    struct client *asker; /* who asked (its share: MEM_SPAWN_PER_CLIENT); it may be gone */
} spawn_blocks[MEM_SPAWN_MAX];
static struct ws_timer spawn_timer;

static uint32_t spawn_blocks_out(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MEM_SPAWN_MAX; i++)
        n += spawn_blocks[i].slot != 0;
    return n;
}

static uint64_t spawn_bytes_out(void)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < MEM_SPAWN_MAX; i++)
        n += spawn_blocks[i].slot ? spawn_blocks[i].size : 0;
    return n;
}

static void spawn_blocks_forget(const struct client *c)
{
    for (uint32_t i = 0; i < MEM_SPAWN_MAX; i++)
        if (spawn_blocks[i].asker == c)
            spawn_blocks[i].asker = 0;
}

static void spawn_block_event(const char *what, const struct spawn_block *b)
{
    printf("@atoll {\"event\":\"mem_spawn_ram\",\"what\":\"%s\",\"node\":%u,\"core\":%u,\"base\":%llu,"
           "\"size\":%llu,\"out\":%u,\"free\":%llu}\n",
           what, my_node, b->core, (unsigned long long)b->base, (unsigned long long)b->size, spawn_blocks_out(),
           (unsigned long long)pool.free_bytes);
}

static void idle_loans_check(void);

/* What our monitor says came back: our original goes, the range is free. */
static void spawn_returns(void)
{
    uint64_t base;
    errval_t rerr = ERR_OK;
    while (!monlmp_ram_returned_rpc(monitor_lmp(), &rerr, &base) && !rerr) {
        for (uint32_t i = 0; i < MEM_SPAWN_MAX; i++) {
            struct spawn_block *b = &spawn_blocks[i];
            if (!b->slot || b->base != base)
                continue;
            if (!original_go(b->slot))
                pool_put(&pool, b->base, b->size);   /* (else stuck: never used again) */
            b->slot = 0;
            spawn_block_event("returned", b);
        }
        idle_loans_check();
    }
}

/* A borrowed batch with no block out stays while our own pool is short
 * (loan_goes_back); a domain's RAM that came back may end that: it goes
 * back then, from a worker (it waits for its lender). */
static void idle_loans_check(void)
{
    for (uint32_t i = 0; i < MEM_LOANS; i++)
        if (loans.l[i].used && loans.l[i].live == 0 && !loan_caps[i].keep && loan_goes_back(&loans.l[i])) {
            struct job j = { .kind = JOB_IDLE_LOANS };
            job_start(&j);   /* (no worker now: the next return tries again) */
            return;
        }
}

static void spawn_timer_fire(struct ws_timer *t)
{
    spawn_returns();
    if (spawn_blocks_out())
        waitset_timer_arm(t->ws, t, now_ns() + SPAWN_POLL_NS);
}

static errval_t on_spawn_ram(struct idl_chan *ch, const struct mem_spawn_ram_call_args *q)
{
    uint64_t bytes = q->bytes ? q->bytes : MEM_SPAWN_DEFAULT_BYTES, align = 0, at = 0;
    struct spawn_block *b = 0;
    errval_t err = client_of(ch) ? check_request(CAP_RAM, bytes, &align, my_node) : ERR_NOT_FOUND;
    if (!err && (q->core >= machine.ncores || machine.core_node[q->core] != my_node))
        err = ERR_INVALID_ARG;
    spawn_returns();   /* room for it, perhaps */
    uint32_t mine = 0;
    for (uint32_t i = 0; !err && i < MEM_SPAWN_MAX; i++) {
        mine += spawn_blocks[i].slot && spawn_blocks[i].asker == client_of(ch);
        if (!spawn_blocks[i].slot && !b)
            b = &spawn_blocks[i];
    }
    if (!err && (!b || mine >= MEM_SPAWN_PER_CLIENT))
        err = ERR_QUOTA;
    /* The pool is for allocations first: a domain's RAM only while half
     * of it stays free (else the monitor's own, which the spawner uses). */
    if (!err && (!pool_slot || pool.free_bytes < bytes || pool.free_bytes - bytes < (pool.end - pool.base) / 2))
        err = ERR_NO_MEMORY;
    if (!err && (err = pool_take(&pool, bytes, POOL_PAGE, &at)) == ERR_TOO_MANY)
        err = ERR_NO_MEMORY;
    capslot_t s = 0;
    if (!err && (err = slot_alloc(&s)))
        pool_put(&pool, at, bytes);
    else if (!err && (err = sys_cap_retype(pool_slot, CAP_RAM, bytes, at - pool.base, 1, s))) {
        slot_free(s);
        pool_put(&pool, at, bytes);
    } else if (!err) {
        /* With every right (unlike a client's copy, give_lent): the domain's
         * CNode and dispatcher are made from it, and its monitor mints
         * from those what the domain passes capabilities through. The
         * monitor revokes nothing of ours: it only carves and deletes. */
        errval_t rerr = ERR_OK;
        if (!(err = monlmp_ram_lend_rpc(monitor_lmp(), s, q->core, &rerr)))
            err = rerr;
        if (err) {
            sys_cap_delete(s);
            slot_free(s);
            pool_put(&pool, at, bytes);
        }
    }
    if (err)
        return mem_spawn_ram_reply_send(ch, err, 0, 0, 0);
    *b = (struct spawn_block){ .slot = s, .base = at, .size = bytes, .core = q->core, .asker = client_of(ch) };
    st.spawned_ever++;
    spawn_block_event("lent", b);
    if (!spawn_timer.armed)
        waitset_timer_arm(&ws, &spawn_timer, now_ns() + SPAWN_POLL_NS);
    return mem_spawn_ram_reply_send(ch, ERR_OK, at, bytes, my_node);
}

static const struct mem_handlers handlers = {
    .info_call = on_info, .alloc_call = on_alloc, .free_call = on_free, .stats_call = on_stats,
    .lend_call = on_lend, .lend_batch_call = on_lend_batch, .spawn_ram_call = on_spawn_ram,
};

/* -- clients ---------------------------------------------------------------------- */

static void spawn_blocks_forget(const struct client *c);

/* A client that hung up (or ended): everything it holds comes back. */
static void client_end(struct client *c)
{
    spawn_blocks_forget(c);   /* the domains' RAM it asked for stays theirs */
    /* Blocks first, then the batches they were carved from. */
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < MAX_ALLOCS; i++)
            if (allocs[i].used && allocs[i].owner == c && allocs[i].is_batch == (pass == 1) && free_one(&allocs[i])) {
                if (allocs[i].is_batch)   /* a block of it stuck: the range stays out of the pool */
                    for (uint32_t k = 0; k < MAX_BATCHES; k++)
                        if (batches[k].rec == &allocs[i])
                            batches[k].rec = 0;
                alloc_drop(&allocs[i]);   /* counted stuck (ours) or the lender's to reclaim */
            }
    waitset_remove(&c->chan->src);
    service_chan_close(c->chan, ERR_OK);
    free(c->chan);
    *c = (struct client){ 0 };
    printf("@atoll {\"event\":\"mem_client_end\",\"core\":%u,\"node\":%u,\"free\":%llu,\"total\":%llu}\n", my_core,
           my_node, (unsigned long long)pool.free_bytes, (unsigned long long)(pool.end - pool.base));
}

static bool serve_client(struct ws_source *s)
{
    struct client *c = s->arg;
    if (c->closed || c->busy)   /* a worker answers it first */
        return false;
    errval_t err = mem_serve_one(&c->chan->idl, &handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (err && err != ERR_MSG_UNKNOWN && err != ERR_MSG_MALFORMED)
        c->closed = true;
    closed_sweep();
    return true;
}

/* Does c hold memory of another node's pool (whose free waits for it)? */
static bool holds_borrowed(const struct client *c)
{
    for (uint32_t i = 0; i < MAX_ALLOCS; i++)
        if (allocs[i].used && allocs[i].owner == c && !allocs[i].is_batch && allocs[i].lender != my_node)
            return true;   /* (its last block of a loan would give the loan back) */
    return false;
}

/* The channels that hung up: ended here, or by a worker when what they
 * hold must go back through other nodes' instances; one busy with a
 * worker is ended by that worker. */
static void closed_sweep(void)
{
    for (uint32_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (!c->used || !c->closed || c->busy)
            continue;
        struct job j = { .kind = JOB_END, .c = c };
        if (!holds_borrowed(c))
            client_end(c);
        else
            job_start(&j);   /* no worker now: the next sweep tries again */
    }
}

static void accepted(struct service_acceptor *acc, struct service_chan *sc)
{
    (void)acc;
    struct client *c = 0;
    for (uint32_t i = 0; i < MAX_CLIENTS && !c; i++)
        if (!clients[i].used)
            c = &clients[i];
    if (!c) {
        service_chan_close(sc, ERR_TOO_MANY);
        free(sc);
        return;
    }
    *c = (struct client){ .used = true, .chan = sc };
    c->node = sc->peer_core < machine.ncores ? machine.core_node[sc->peer_core] : my_node;
    service_chan_source(sc, serve_client, c);
    waitset_add(&ws, &sc->src);
}

static uint64_t parse_hex(const char *s)
{
    uint64_t v = 0;
    for (; *s; s++)
        v = v * 16 + (uint64_t)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
    return v;
}

/* The kernel command line's mem=WORD (docs/boot-report.md), if any, in out. */
static bool cmdline_design(char *out, size_t size)
{
    static char line[256];
    uint64_t got = 0;
    if (sys_module_read("cmdline", 7, 0, line, sizeof line - 1, &got))
        return false;
    line[got] = 0;
    for (const char *p = line; *p;) {
        while (*p == ' ')
            p++;
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        if (p - w > 4 && !strncmp(w, "mem=", 4)) {
            size_t n = (size_t)(p - w - 4) < size - 1 ? (size_t)(p - w - 4) : size - 1;
            memcpy(out, w + 4, n);
            out[n] = 0;
            return true;
        }
    }
    return false;
}

static int serve(const char *name, const char *key, const char *word)
{
    static struct service_acceptor acceptor;
    static char boot_word[32];
    design = mem_design_of(word);
    if (design == MEM_DESIGN_UNKNOWN)
        return printf("mem: unknown design '%s' (per-node, central, cache)\n", word), 1;
    /* The kernel command line's word wins over the manifest's: one boot
     * option compares the designs without another manifest. */
    const char *from = "manifest";
    if (cmdline_design(boot_word, sizeof boot_word)) {
        uint32_t d = mem_design_of(boot_word);
        if (d == MEM_DESIGN_UNKNOWN)
            printf("mem: unknown design mem=%s on the kernel command line (per-node, central, cache): %s kept\n",
                   boot_word, mem_design_name(design));
        else
            design = d, from = "cmdline";
    }
    group = name;
    /* The pool: what our monitor does not keep. */
    capslot_t ram = 0;
    struct cap_identity id = { 0 };
    errval_t rerr = ERR_OK, err = monlmp_ram_donate_rpc(monitor_lmp(), &rerr, &ram);
    if (!err && !(err = rerr) && !(err = sys_cap_identify(ram, &id))) {
        pool_slot = ram;
        pool_init(&pool, id.base, id.bytes);
    } else {
        pool_init(&pool, 0, 0);
        printf("mem: node %u: no pool (%s): every allocation is borrowed\n", my_node, err_name(err));
    }
    printf("@atoll {\"event\":\"mem_up\",\"core\":%u,\"node\":%u,\"design\":\"%s\",\"design_from\":\"%s\","
           "\"base\":%llu,\"end\":%llu,\"total\":%llu}\n",
           my_core, my_node, mem_design_name(design), from, (unsigned long long)pool.base, (unsigned long long)pool.end,
           (unsigned long long)(pool.end - pool.base));
    /* Everything that opens channels before we join: once the starter
     * counts us up, what we hold stays as it is while we are idle. */
    waitset_init(&ws);
    keep_timer.fire = keep_timer_fire;
    spawn_timer.fire = spawn_timer_fire;
    service_acceptor_init(&acceptor, accepted, 0);
    waitset_add(&ws, &acceptor.src);
    names_watch(&ws);
    /* No heartbeats: a free waits for the core holding the copy (a delete
     * agreed with the holders, up to 5 s, monitor/capops.c), as long as the
     * restart service's hang bound; on a loaded host that wait would be
     * taken for a hang. An instance that ends is started again all the same. */
    uint64_t service;
    if ((err = service_register_self(&service)) || (err = names_keep_join(name, parse_hex(key), service)))
        return printf("mem: cannot serve %s: %s\n", name, err_name(err)), 1;
    /* The event loop, and after each of its rounds that did work, the
     * workers it woke (an answer from another node's instance) or
     * started: they run until they wait again or are done. */
    for (;;) {
        waitset_dispatch(&ws);
        thread_yield();
    }
    return 0;
}


/* -- the client side: tests and the shell's `mem` ----------------------------------- */

static int stats_all(void)
{
    static struct mem_node_stats s[CORE_INFO_MAX_NODES];
    static uint64_t borrowed[CORE_INFO_MAX_NODES];
    uint32_t n = 0;
    errval_t err = mem_table(s, borrowed, &n);
    if (err)
        return printf("mem: stats: %s\n", err_name(err)), 1;
    mem_table_print(s, borrowed, n);
    return 0;
}

static uint64_t num(const char *s) { return mem_number(&s); }

static uint32_t where_of(const char *w)
{
    return !strcmp(w, "nearest") ? MEM_NEAREST : !strcmp(w, "any") ? MEM_ANY : (uint32_t)num(w);
}

static int alloc_run(int argc, char **argv)
{
    static struct mem_block b[MEM_QUOTA_ALLOCS + 8];
    uint32_t type = !strcmp(argv[2], "ram") ? CAP_RAM : CAP_FRAME, design = 0;
    uint64_t bytes = num(argv[3]), align = num(argv[4]);
    uint32_t where = where_of(argv[5]), count = (uint32_t)num(argv[6]), got = 0;
    bool keep = argc > 7 && !strcmp(argv[7], "keep");
    if (count > MEM_QUOTA_ALLOCS + 8)
        count = MEM_QUOTA_ALLOCS + 8;
    errval_t err = mem_connect(&design), last = ERR_OK;
    for (uint32_t i = 0; i < count && !err; i++) {
        struct cap_identity id = { 0 };
        last = mem_alloc(type, bytes, align, where, &b[got]);
        if (!last)
            sys_cap_identify(b[got].slot, &id);
        printf("@atoll {\"event\":\"mem_alloc\",\"core\":%u,\"node\":%u,\"i\":%u,\"err\":\"%s\",\"got_node\":%u,"
               "\"base\":%llu,\"size\":%llu,\"cap_base\":%llu,\"cap_bytes\":%llu,\"cap_type\":%u,\"cached\":%s}\n",
               my_core, my_node, i, err_name(last), last ? 0 : b[got].node, (unsigned long long)(last ? 0 : b[got].base),
               (unsigned long long)(last ? 0 : b[got].size), (unsigned long long)id.base,
               (unsigned long long)id.bytes, id.type, !last && b[got].id >> 63 ? "true" : "false");
        if (!last)
            got++;
        else if (last != ERR_NO_MEMORY && last != ERR_QUOTA)
            break;
    }
    uint32_t freed = 0;
    errval_t ferr = ERR_OK;
    for (uint32_t i = 0; i < got && !keep; i++) {
        errval_t e = mem_free(&b[i]);
        freed += e == ERR_OK;
        if (e)
            ferr = e;
    }
    printf("@atoll {\"event\":\"mem_done\",\"core\":%u,\"design\":\"%s\",\"allocated\":%u,\"freed\":%u,"
           "\"err\":\"%s\",\"last\":\"%s\",\"free_err\":\"%s\"}\n",
           my_core, mem_design_name(design), got, freed, err_name(err), err_name(last), err_name(ferr));
    return 0;
}

/* Bad requests, each answered with a clear error and nothing lost. */
static int bad_run(void)
{
    struct mem_block b, other;
    errval_t zero = mem_alloc(CAP_FRAME, 0, 0, MEM_NEAREST, &b);
    errval_t huge = mem_alloc(CAP_FRAME, 4ull << 30, 0, MEM_NEAREST, &b);
    errval_t odd = mem_alloc(CAP_FRAME, 4096 + 100, 0, MEM_NEAREST, &b);
    errval_t align = mem_alloc(CAP_FRAME, 4096, 3 * 4096, MEM_NEAREST, &b);
    errval_t overflow = mem_alloc(CAP_FRAME, UINT64_MAX - 4095, 1ull << 20, MEM_NEAREST, &b);
    errval_t node = mem_alloc(CAP_FRAME, 4096, 0, machine.nnodes + 3, &b);
    errval_t type = mem_alloc(CAP_DISPATCHER, 4096, 0, MEM_NEAREST, &b);
    errval_t ok = mem_alloc(CAP_FRAME, 4096, 0, MEM_NEAREST, &b);
    errval_t freed = ok ? ok : mem_free(&b);
    errval_t twice = ok ? ok : mem_free_id(b.id);
    errval_t never = mem_free_id(0x7777000000ull);
    /* Someone else's: an allocation on a second channel to our instance, freed on ours. */
    struct service_chan second;
    uint64_t service;
    errval_t rerr = ERR_OK, foreign = mem_home(&service);
    bool second_up = false;
    if (!foreign && !(foreign = service_connect(service, &second))) {
        second_up = true;
        uint32_t n;
        foreign = mem_alloc_rpc(&second.idl, CAP_FRAME, 4096, 0, MEM_NEAREST, &rerr, &other.id, &other.base,
                                &other.size, &n);
        if (!foreign && !(foreign = rerr))
            foreign = mem_free_id(other.id);
    }
    /* A domain's RAM (spawn_ram) asked of that instance badly: for a core
     * of another node, too big, not whole pages; and a spawn naming RAM
     * nobody lent (its monitor waits 5 s for it). */
    errval_t spawn_core = ERR_NOT_FOUND, spawn_huge = ERR_NOT_FOUND, spawn_odd = ERR_NOT_FOUND, spawn_base;
    if (second_up) {
        uint32_t home_node = machine.core_node[SERVICE_CORE(service)], other = 0, n;
        while (other < machine.ncores && machine.core_node[other] == home_node)
            other++;
        uint64_t base, size;
        if (other < machine.ncores && !(spawn_core = mem_spawn_ram_rpc(&second.idl, other, 0, &rerr, &base, &size, &n)))
            spawn_core = rerr;
        if (!(spawn_huge = mem_spawn_ram_rpc(&second.idl, SERVICE_CORE(service), 4ull << 30, &rerr, &base, &size, &n)))
            spawn_huge = rerr;
        if (!(spawn_odd = mem_spawn_ram_rpc(&second.idl, SERVICE_CORE(service), 4096 + 100, &rerr, &base, &size, &n)))
            spawn_odd = rerr;
    }
    uint64_t id;
    errval_t serr = ERR_OK;
    if (!(spawn_base = monclient_spawn_rpc(monitor_chan(), my_core, "hello", 0, false, 0x7777000ull, &serr, &id)))
        spawn_base = serr;
    /* Its capability waits for us in the mailbox: the second channel's end gives it all back. */
    if (second_up)
        service_chan_close(&second, ERR_OK);
    printf("@atoll {\"event\":\"mem_bad\",\"core\":%u,\"zero\":\"%s\",\"huge\":\"%s\",\"odd\":\"%s\",\"align\":\"%s\","
           "\"overflow\":\"%s\",\"node\":\"%s\",\"type\":\"%s\",\"ok\":\"%s\",\"freed\":\"%s\",\"twice\":\"%s\","
           "\"never\":\"%s\",\"foreign\":\"%s\",\"spawn_core\":\"%s\",\"spawn_huge\":\"%s\",\"spawn_odd\":\"%s\","
           "\"spawn_base\":\"%s\"}\n",
           my_core, err_name(zero), err_name(huge), err_name(odd), err_name(align), err_name(overflow), err_name(node),
           err_name(type), err_name(ok), err_name(freed), err_name(twice), err_name(never), err_name(foreign),
           err_name(spawn_core), err_name(spawn_huge), err_name(spawn_odd), err_name(spawn_base));
    return 0;
}

static int numa_run(int node)
{
    volatile uint64_t *p = numa_alloc_onnode(8192, node), *q = numa_alloc_local(4096);
    errval_t pe = p ? ERR_OK : numa_error(), qe = q ? ERR_OK : numa_error();
    uint64_t sum = 0;
    if (p) {
        p[0] = 1, p[511] = 2, p[1023] = 3;   /* both pages */
        sum += p[0] + p[511] + p[1023];
    }
    if (q) {
        q[511] = 4;
        sum += q[511];
    }
    numa_free((void *)p, 8192);
    numa_free((void *)q, 4096);
    printf("@atoll {\"event\":\"mem_numa\",\"core\":%u,\"node\":%d,\"onnode\":\"%s\",\"local\":\"%s\",\"sum\":%llu,"
           "\"node_of_core\":%d,\"distance\":%d}\n",
           my_core, node, err_name(pe), err_name(qe), (unsigned long long)sum, numa_node_of_core(my_core),
           numa_distance(my_node, (uint32_t)node));
    return 0;
}

/* malloc from the service: the heap placed by policy, grown, written, read back. */
static int malloc_run(const char *w, uint64_t bytes)
{
    /* `spawn`: as placed at spawn (+mem=WORD), or not at all. */
    uint32_t where = !strcmp(w, "local") ? MEM_NEAREST : !strcmp(w, "own") ? MEM_HEAP_OWN : (uint32_t)num(w);
    errval_t placed = !strcmp(w, "spawn") ? ERR_OK : mem_heap_place(where);
    uint64_t pieces = bytes / (64 << 10), made = 0, sum = 0;
    static uint8_t *piece[1024];
    for (uint64_t i = 0; i < pieces && i < 1024; i++) {
        if (!(piece[i] = malloc(64 << 10)))
            break;
        made++;
        for (uint64_t k = 0; k < (64 << 10); k += 4096)
            piece[i][k] = (uint8_t)(i + k / 4096);
    }
    for (uint64_t i = 0; i < made; i++)
        for (uint64_t k = 0; k < (64 << 10); k += 4096)
            sum += piece[i][k] == (uint8_t)(i + k / 4096);
    struct mem_heap_stats hs;
    mem_heap_stats(&hs);
    struct mem_block b;
    for (uint32_t i = 0; mem_heap_block(i, &b) == ERR_OK; i++)
        printf("@atoll {\"event\":\"mem_heap_block\",\"core\":%u,\"i\":%u,\"node\":%u,\"base\":%llu,\"size\":%llu}\n",
               my_core, i, b.node, (unsigned long long)b.base, (unsigned long long)b.size);
    printf("@atoll {\"event\":\"mem_malloc\",\"core\":%u,\"node\":%u,\"placed\":\"%s\",\"pieces\":%llu,"
           "\"made\":%llu,\"written\":%llu,\"blocks\":%u,\"service_bytes\":%llu,\"own_bytes\":%llu,"
           "\"fallbacks\":%u,\"why\":\"%s\",\"where\":%d,\"from_spawn\":%s}\n",
           my_core, my_node, err_name(placed), (unsigned long long)pieces, (unsigned long long)made,
           (unsigned long long)sum, hs.blocks, (unsigned long long)hs.service_bytes, (unsigned long long)hs.own_bytes,
           hs.fallbacks, err_name(hs.why), (int)hs.where, hs.from_spawn ? "true" : "false");
    return 0;
}

/* A region in which this client does nothing: what every CPU does anyway
 * (timer ticks, heartbeats, core 0's services) for that long. */
static int idle_run(uint64_t ticks)
{
    cm_arg(protocol, CM_WORD_idle);
    cm_arg(src, my_core);
    cm_arg(pages, 0);
    cm_begin(mem);
    for (uint64_t until = now_ns() + ticks * 10000000ull; now_ns() < until;)
        sys_notify_wait(sys_notify_gen(), 10000, 0);
    cm_arg(ops, 1);
    cm_end(mem);
    printf("@atoll {\"event\":\"mem_idle\",\"core\":%u,\"ticks\":%llu}\n", my_core, (unsigned long long)ticks);
    return 0;
}

#define BENCH_MAX_ROUNDS 2001

static int bench_run(const char *word, uint64_t bytes, uint32_t rounds, uint32_t cores)
{
    static uint64_t t[BENCH_MAX_ROUNDS];
    uint32_t design = mem_design_of(word), local = 0, failed = 0;
    if (design == MEM_DESIGN_UNKNOWN || !bytes || rounds == 0)
        return printf("mem: bench: bad arguments\n"), 1;
    if (rounds > BENCH_MAX_ROUNDS)
        rounds = BENCH_MAX_ROUNDS;
    mem_use_design(design);
    errval_t err = mem_connect(0), first = ERR_OK;
    struct mem_block b;
    uint64_t align = bytes >= (2ull << 20) ? (2ull << 20) : 0;
    /* Warm up: the channel, the cache's first block, the page tables. */
    for (uint32_t i = 0; i < 3 && !err; i++)
        if (!(err = mem_alloc(CAP_FRAME, bytes, align, MEM_NEAREST, &b)))
            err = mem_free(&b);
    /* One client alone (CORES 1): a cost-model region of its rounds
     * (docs/costmodel.md; tools/mem-costmodel adds them up per CPU). */
    if (cores == 1 && !err) {
        if (design == MEM_DESIGN_CENTRAL)
            cm_arg(protocol, CM_WORD_central);
        else if (design == MEM_DESIGN_CACHE)
            cm_arg(protocol, CM_WORD_cache);
        else
            cm_arg(protocol, CM_WORD_per_node);
        cm_arg(src, my_core);
        cm_arg(pages, bytes / MEM_PAGE);
        cm_begin(mem);
    }
    uint64_t start = now_ns();
    for (uint32_t i = 0; i < rounds && !err; i++) {
        uint64_t t0 = now_ns();
        errval_t e = mem_alloc(CAP_FRAME, bytes, align, MEM_NEAREST, &b);
        if (!e) {
            local += b.node == my_node;
            e = mem_free(&b);
        }
        t[i] = now_ns() - t0;
        if (e) {
            failed++;
            first = first ? first : e;
        }
    }
    uint64_t total = now_ns() - start;
    if (cores == 1 && !err) {
        cm_arg(ops, rounds);
        cm_end(mem);
    }
    for (uint32_t i = 1; i < rounds; i++)
        for (uint32_t j = i; j > 0 && t[j - 1] > t[j]; j--) {
            uint64_t x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    printf("@atoll {\"event\":\"mem_bench\",\"core\":%u,\"node\":%u,\"design\":\"%s\",\"bytes\":%llu,\"cores\":%u,"
           "\"rounds\":%u,\"total_ns\":%llu,\"median_ns\":%llu,\"min_ns\":%llu,\"max_ns\":%llu,\"local\":%u,"
           "\"failed\":%u,\"busy\":%llu,\"error\":\"%s\"}\n",
           my_core, my_node, mem_design_name(design), (unsigned long long)bytes, cores, rounds,
           (unsigned long long)total, (unsigned long long)(err ? 0 : t[rounds / 2]), (unsigned long long)(err ? 0 : t[0]),
           (unsigned long long)(err ? 0 : t[rounds - 1]), local, failed, (unsigned long long)mem_busy_retries(),
           err_name(err ? err : first));
    return 0;
}

int main(int argc, char **argv)
{
    sys_core_info(&machine);
    my_core = machine.core_id;
    my_node = machine.node;
    errval_t err = monitor_connect();
    if (!err)
        err = names_connect(&names);
    if (err)
        return printf("mem: cannot reach the name server: %s\n", err_name(err)), 1;
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "serve"))
        return serve(argv[2], argv[3], argc == 5 ? argv[4] : "per-node");
    if (argc == 2 && !strcmp(argv[1], "stats"))
        return stats_all();
    if (argc >= 7 && !strcmp(argv[1], "alloc"))
        return alloc_run(argc, argv);
    if (argc == 2 && !strcmp(argv[1], "bad"))
        return bad_run();
    if (argc == 6 && !strcmp(argv[1], "bench"))
        return bench_run(argv[2], num(argv[3]), (uint32_t)num(argv[4]), (uint32_t)num(argv[5]));
    if (argc == 3 && !strcmp(argv[1], "idle"))
        return idle_run(num(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "lives"))
        return lives_run((uint32_t)num(argv[2]), (uint32_t)num(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "life"))
        return life_run((uint32_t)num(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "malloc"))
        return malloc_run(argv[2], num(argv[3]));
    if (argc == 3 && !strcmp(argv[1], "numa"))
        return numa_run((int)num(argv[2]));
    printf("usage: mem serve NAME KEY [per-node|central|cache] | stats | alloc ram|frame BYTES ALIGN WHERE COUNT [keep]"
           " | bad | numa NODE | idle TICKS | malloc local|own|NODE|spawn BYTES | lives N PAR | bench DESIGN BYTES ROUNDS CORES\n");
    return 1;
}
