/*
 * Connections between a client domain and a service, on any two cores, and
 * the lifetime of the frame each one lives in.
 *
 * The client's monitor (the owner) makes a zeroed frame from its own RAM,
 * keeps the original and a mapping of it, and hands a copy to the client.
 * The service's monitor, if it is another, re-creates the frame from the
 * owner's description (captransfer.c) and keeps that root; the service gets
 * its own copy when it accepts. So every domain holds a copy, and the two
 * monitors hold the roots. No copy can outlive its root's monitor deciding
 * to free it, and the frame is reused only when no copy is left anywhere:
 *
 *   - An end goes away when its domain ends (obituaries, lifetimes.c) or
 *     when it hangs up and deletes its copy. When a domain ends, the owner
 *     hangs up the channel for it (it maps the frame: it writes the dead
 *     side's `closed` word, <atoll/urpc.h>), so the other end learns at
 *     once, drops the channel and deletes its copy.
 *   - The service's monitor deletes its root once no copy of it is left
 *     and no accept waits for it, and tells the owner (conn_released).
 *   - The owner frees the frame once no copy of its original is left and
 *     the other monitor has released its root.
 *
 * The monitors learn that a copy is gone from identify (CAP_ID_HAS_CHILDREN):
 * at once when they are told an end went away, and by a slow round-robin
 * sweep for ends that hung up on their own. A domain that keeps the copy of
 * a closed connection keeps it counted against its own limit
 * (MON_CONNS_PER_CLIENT, MON_CONNS_PER_SERVICE), never against others'.
 */
#include "monitor.h"

#define CONN_FRAME_BYTES 4096
/* A monitor keeps this many slots for its own work: past it, new
 * connections are refused at once (ERR_TOO_MANY) instead of failing later
 * in the middle of something. */
#define SLOT_RESERVE 128
/* Records checked per sweep (lifetimes.c calls it when idle). */
#define SWEEP_BATCH 16

enum conn_state { C_FREE = 0, C_CONNECTING, C_OPEN };

struct conn {
    uint8_t state;
    bool owner;               /* we made the frame (the client's core) */
    bool queued;              /* waits in its service's accept queue here */
    bool client_gone, service_gone;   /* that end ended (or hung up) */
    bool remote_held;         /* owner, service elsewhere: its monitor holds a root */
    uint16_t gen;             /* owner: makes the connection number unique */
    uint16_t owner_core, client_core, service_core;
    uint32_t number;          /* the owner's number for it (ours if owner) */
    uint64_t client;          /* domain ids */
    uint64_t service_domain;
    uint64_t service;
    capslot_t root;           /* owner: the original; otherwise the re-created root */
    void *map;                /* owner: our mapping */
    int waiter;               /* owner: the client handle waiting for the answer */
};
static struct conn conns[MON_MAX_CONNS];
static uint32_t sweep_at;
static uint64_t opened, freed;

static uint32_t number_of(uint32_t i) { return (uint32_t)conns[i].gen << 16 | i; }

static struct conn *owned(uint32_t number)
{
    uint32_t i = number & 0xffff;
    if (i >= MON_MAX_CONNS || conns[i].state == C_FREE || !conns[i].owner || number_of(i) != number)
        return 0;
    return &conns[i];
}

static struct conn *imported(uint32_t owner_core, uint32_t number)
{
    for (uint32_t i = 0; i < MON_MAX_CONNS; i++)
        if (conns[i].state != C_FREE && !conns[i].owner && conns[i].owner_core == owner_core &&
            conns[i].number == number)
            return &conns[i];
    return 0;
}

static uint32_t index_of(const struct conn *c) { return (uint32_t)(c - conns); }

static errval_t new_record(struct conn **out)
{
    if (slot_free_count() < SLOT_RESERVE)
        return ERR_TOO_MANY;
    for (uint32_t i = 0; i < MON_MAX_CONNS; i++)
        if (conns[i].state == C_FREE) {
            uint16_t gen = (uint16_t)(conns[i].gen + 1);
            conns[i] = (struct conn){ .gen = gen ? gen : 1, .waiter = -1 };
            *out = &conns[i];
            return ERR_OK;
        }
    return ERR_TOO_MANY;
}

static uint32_t count_client(uint64_t domain)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MON_MAX_CONNS; i++)
        n += conns[i].state != C_FREE && conns[i].owner && conns[i].client == domain && !conns[i].client_gone;
    return n;
}

static uint32_t count_service(uint64_t domain)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MON_MAX_CONNS; i++)
        n += conns[i].state != C_FREE && conns[i].service_core == my_core && conns[i].service_domain == domain &&
             !conns[i].service_gone;
    return n;
}

static bool has_copies(capslot_t root)
{
    struct cap_identity id;
    return sys_cap_identify(root, &id) == ERR_OK && (id.flags & CAP_ID_HAS_CHILDREN);
}

static errval_t copy_of(capslot_t frame, capslot_t *copy)
{
    errval_t err = slot_alloc(copy);
    if (!err && (err = sys_cap_copy(frame, *copy)))
        slot_free(*copy);
    return err;
}

/* Owner: hang up side `side` (0 client, 1 service) for its domain, which
 * has gone, unless it hung up itself; the other end is woken on its core. */
static void hang_up_for(struct conn *c, int side, errval_t why)
{
    struct urpc_chan as_gone;
    if (!c->owner || !c->map || urpc_init(&as_gone, c->map, CONN_FRAME_BYTES, side))
        return;
    if (__atomic_load_n(&as_gone.my_ctrl->closed, __ATOMIC_RELAXED))
        return;
    as_gone.wake_arg = notify_cap_for(side ? c->client_core : c->service_core);
    urpc_close(&as_gone, why);
}

static void send_to(uint32_t core, const char *what, errval_t (*send)(struct idl_chan *, uint32_t, struct conn *),
                    struct conn *c)
{
    struct idl_chan *via = route(core);
    errval_t err = via ? send(via, core, c) : ERR_NO_ROUTE;
    if (err)
        printf("monitor %u: cannot tell core %u that a connection %s: %s\n", my_core, core, what, err_name(err));
}

static errval_t send_closed(struct idl_chan *via, uint32_t core, struct conn *c)
{
    int side = c->owner ? 0 : 1;   /* the end that lives here went */
    return monitor_conn_closed_send(via, (uint16_t)core, (uint16_t)my_core, 0, c->owner_core, c->number,
                                    (uint8_t)side);
}

static errval_t send_released(struct idl_chan *via, uint32_t core, struct conn *c)
{
    return monitor_conn_released_send(via, (uint16_t)core, (uint16_t)my_core, 0, c->number);
}

static void forget(struct conn *c)
{
    if (c->queued)
        service_unqueue(index_of(c));
    uint16_t gen = c->gen;
    *c = (struct conn){ .gen = gen };
}

/* Let go of what no one uses any more; see the top of the file. */
static void try_release(struct conn *c)
{
    if (c->state != C_OPEN || c->queued)
        return;
    if (has_copies(c->root))
        return;
    if (!c->owner) {
        cap_free(c->root);
        send_to(c->owner_core, "was released", send_released, c);
    } else if (c->remote_held) {
        return;
    } else {
        frame_release(c->root, c->map);
    }
    forget(c);
    freed++;
}

/* -- the client's side: MON_CONNECT -------------------------------------------- */

/* A zeroed frame of our own RAM, mapped here. */
static errval_t channel_frame(capslot_t *frame, void **map)
{
    errval_t err = frame_alloc(CONN_FRAME_BYTES, frame);
    if (!err && (err = vspace_map_frame(*frame, MAP_WRITE, map)))
        cap_free(*frame);
    if (!err)
        memset(*map, 0, CONN_FRAME_BYTES);
    return err;
}

static void answer_connect(struct conn *c, errval_t err)
{
    int waiter = c->waiter;
    c->waiter = -1;
    capslot_t copy = 0;
    if (!err && !client_handle_valid(waiter))
        err = ERR_DOMAIN_ENDED;
    if (!err)
        err = copy_of(c->root, &copy);
    client_reply_cap(waiter, err, 0, 0, copy);
    if (err) {
        c->client_gone = true;
        hang_up_for(c, 0, ERR_DOMAIN_ENDED);
        if (c->state == C_CONNECTING)
            c->state = C_OPEN;
        try_release(c);
    }
}

void conn_open(int handle, uint64_t client, uint64_t service)
{
    uint32_t core = SERVICE_CORE(service);
    struct conn *c = 0;
    errval_t err = core < ncores ? ERR_OK : ERR_NOT_FOUND;
    if (!err && !core_alive(core))
        err = ERR_CORE_DOWN;
    if (!err && count_client(client) >= MON_CONNS_PER_CLIENT)
        err = ERR_QUOTA;
    if (!err)
        err = new_record(&c);
    if (!err)
        err = channel_frame(&c->root, &c->map);
    if (err) {
        if (c)
            forget(c);
        client_reply(handle, err, 0, 0, 0);
        return;
    }
    *c = (struct conn){ .state = C_CONNECTING, .owner = true, .gen = c->gen, .owner_core = (uint16_t)my_core,
                        .client_core = (uint16_t)my_core, .service_core = (uint16_t)core,
                        .number = number_of(index_of(c)), .client = client, .service = service,
                        .root = c->root, .map = c->map, .waiter = handle };
    opened++;
    if (core == my_core) {
        uint64_t owner = 0;
        err = service_owner(service, &owner);
        if (!err && count_service(owner) >= MON_CONNS_PER_SERVICE)
            err = ERR_QUOTA;
        if (!err)
            err = service_enqueue(service, index_of(c));
        c->queued = !err;
        c->service_domain = owner;
        c->state = C_OPEN;
        if (err)
            c->service_gone = true;
        answer_connect(c, err);
        return;
    }
    struct idl_chan *via = route(core);
    struct pending p = { .kind = PEND_CLIENT, .client = handle, .op = MON_CONNECT, .to = core,
                         .conn = c->number };
    uint32_t tag = 0;
    err = via ? pending_add(&p, &tag) : ERR_NO_ROUTE;
    if (!err)
        err = monitor_connect_call_send(via, (uint16_t)core, (uint16_t)my_core, tag, service, c->root, client,
                                        c->number);
    if (err) {
        if (tag)
            pending_take(tag, ANY_CORE, &p);
        c->state = C_OPEN;
        c->service_gone = true;
        answer_connect(c, err);
        return;
    }
    c->remote_held = true;   /* until the other monitor says it holds nothing */
}

void conn_connect_answered(uint32_t number, errval_t err)
{
    struct conn *c = owned(number);
    if (!c)
        return;
    if (c->state != C_CONNECTING) {
        /* Late, after the client heard ERR_TIMEOUT: a refusal means the
         * other monitor holds nothing; an acceptance is undone by the hang-up
         * the client's side already got (conn_released comes later). */
        if (err) {
            c->remote_held = false;
            try_release(c);
        }
        return;
    }
    c->state = C_OPEN;
    if (err) {
        c->remote_held = false;   /* it deleted its root when it refused */
        c->service_gone = true;
    }
    answer_connect(c, err);
}

void conn_connect_timed_out(uint32_t number)
{
    struct conn *c = owned(number);
    if (!c || c->state != C_CONNECTING)
        return;
    /* The other core may still hold a root: the frame stays ours until it
     * says so (a late answer or conn_released), never reused before. */
    c->state = C_OPEN;
    answer_connect(c, ERR_TIMEOUT);
}

/* -- the service's side ----------------------------------------------------------- */

errval_t conn_import(uint32_t from, uint32_t number, uint64_t service, capslot_t frame, uint64_t client)
{
    struct conn *c;
    uint64_t owner = 0;
    errval_t err = service_owner(service, &owner);
    if (!err && count_service(owner) >= MON_CONNS_PER_SERVICE)
        err = ERR_QUOTA;
    if (!err && imported(from, number))
        err = ERR_DUPLICATE;
    if (!err)
        err = new_record(&c);
    if (err)
        return err;
    *c = (struct conn){ .state = C_OPEN, .gen = c->gen, .owner_core = (uint16_t)from, .client_core = (uint16_t)from,
                        .service_core = (uint16_t)my_core, .number = number, .client = client,
                        .service_domain = owner, .service = service, .root = frame, .waiter = -1 };
    err = service_enqueue(service, index_of(c));
    if (err) {
        forget(c);
        return err;
    }
    c->queued = true;
    opened++;
    return ERR_OK;
}

errval_t conn_hand_to_service(uint32_t i, capslot_t *frame, uint32_t *client_core, uint64_t *client)
{
    if (i >= MON_MAX_CONNS || conns[i].state != C_OPEN || !conns[i].queued)
        return ERR_NOT_FOUND;
    struct conn *c = &conns[i];
    c->queued = false;
    errval_t err = c->client_gone ? ERR_CHAN_CLOSED : copy_of(c->root, frame);
    if (err) {
        try_release(c);
        return err;
    }
    *client_core = c->client_core;
    *client = c->client;
    return ERR_OK;
}

/* -- ends going away ---------------------------------------------------------------- */

void conns_domain_ended(uint64_t domain)
{
    for (uint32_t i = 0; i < MON_MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->state == C_FREE)
            continue;
        bool client_here = c->client_core == my_core && c->client == domain && !c->client_gone;
        bool service_here = c->service_core == my_core && c->service_domain == domain && !c->service_gone;
        if (client_here) {
            c->client_gone = true;
            hang_up_for(c, 0, ERR_DOMAIN_ENDED);
            if (c->service_core != my_core && c->state == C_OPEN)
                send_to(c->service_core, "lost its client", send_closed, c);
            if (c->queued) {
                service_unqueue(i);
                c->queued = false;
            }
        }
        if (service_here) {
            c->service_gone = true;
            if (c->queued) {
                service_unqueue(i);
                c->queued = false;
            }
            if (c->owner)
                hang_up_for(c, 1, ERR_DOMAIN_ENDED);
            else
                send_to(c->owner_core, "lost its service", send_closed, c);
        }
        if (client_here || service_here)
            try_release(c);
    }
}

void conn_closed(uint32_t from, uint32_t owner_core, uint32_t number, uint32_t side)
{
    struct conn *c = owner_core == my_core ? owned(number) : imported(owner_core, number);
    if (!c || (c->owner ? from != c->service_core : from != c->owner_core))
        return;   /* not ours to hear about, or long gone */
    if (side == 1 && c->owner) {
        c->service_gone = true;
        hang_up_for(c, 1, ERR_DOMAIN_ENDED);
    } else if (side == 0 && !c->owner) {
        c->client_gone = true;
        if (c->queued) {
            service_unqueue(index_of(c));
            c->queued = false;
        }
    }
    try_release(c);
}

void conn_released(uint32_t from, uint32_t number)
{
    struct conn *c = owned(number);
    if (!c || from != c->service_core)
        return;
    if (c->state == C_CONNECTING) {   /* a late answer to a connect that timed out */
        c->state = C_OPEN;
        c->service_gone = true;
    }
    c->remote_held = false;
    if (!c->service_gone) {   /* it let go without a word: tell the client */
        c->service_gone = true;
        hang_up_for(c, 1, ERR_CHAN_CLOSED);
    }
    try_release(c);
}

void conns_sweep(void)
{
    uint32_t checked = 0;
    for (uint32_t n = 0; n < MON_MAX_CONNS && checked < SWEEP_BATCH; n++) {
        struct conn *c = &conns[sweep_at];
        sweep_at = (sweep_at + 1) % MON_MAX_CONNS;
        if (c->state == C_OPEN) {
            checked++;
            try_release(c);
        }
    }
}

void conns_stats(struct conn_stats *s)
{
    *s = (struct conn_stats){ .opened = opened, .freed = freed };
    for (uint32_t i = 0; i < MON_MAX_CONNS; i++)
        if (conns[i].state != C_FREE) {
            s->live++;
            s->owned += conns[i].owner;
        }
}
