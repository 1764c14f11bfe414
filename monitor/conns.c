/*
 * Connections between a client domain and a service, on any two cores, and
 * the lifetime of the frame each one lives in.
 *
 * The client's monitor (the owner) makes a zeroed frame from its own RAM
 * and keeps the original and a mapping of it. Every end gets its copy
 * through a copy the monitor keeps for that end (an end's root), so the
 * monitor can tell, by identify (CAP_ID_HAS_CHILDREN), whether that end
 * still holds the frame:
 *
 *   owner:     frame --+-- client root -- the client's copy
 *                      +-- service root -- the service's copy (service here)
 *   other:     re-created frame (captransfer.c) = service root -- the service's copy
 *
 * An end goes away when its domain ends (obituaries, lifetimes.c) or when
 * it lets go of its copy. Either way its monitor hangs up for it if it did
 * not (the owner maps the frame and raises the end's `closed` word,
 * <atoll/urpc.h>), so the other end learns at once, drops the channel and
 * lets go of its own copy; a monitor whose end went tells the other
 * monitor (conn_closed). When the service's end is gone, its root goes;
 * if that was on another core, its monitor says so (conn_released). The
 * owner frees the frame only when both ends are gone: no copy is left on
 * any core, so memory is never reused while someone maps it.
 *
 * Ends that let go on their own are found by a slow round-robin sweep.
 * A domain that keeps the copy of a closed connection keeps it counted
 * against its own limit (MON_CONNS_PER_CLIENT, MON_CONNS_PER_SERVICE),
 * never against anyone else's.
 */
#include "monitor.h"

#define CONN_FRAME_BYTES 4096
/* A monitor keeps this many slots for its own work: past it, new
 * connections are refused at once (ERR_TOO_MANY) instead of failing later
 * in the middle of something. A connection takes up to three. */
#define SLOT_RESERVE 128
/* Connections checked per sweep (lifetimes.c calls it when idle). */
#define SWEEP_BATCH 16

enum conn_state { C_FREE = 0, C_CONNECTING, C_OPEN };

struct conn {
    uint8_t state;
    bool owner;               /* we made the frame (the client's core) */
    bool queued;              /* waits in its service's accept queue here */
    bool client_gone, service_gone;   /* that end ended or let go */
    bool remote_held;         /* owner, service elsewhere: its monitor holds a root */
    uint16_t gen;             /* owner: makes the connection number unique */
    uint16_t owner_core, client_core, service_core;
    uint32_t number;          /* the owner's number for it (ours if owner) */
    uint64_t client;          /* domain ids */
    uint64_t service_domain;
    uint64_t service;
    capslot_t frame;          /* owner: the original */
    void *map;                /* owner: our mapping */
    capslot_t client_root;    /* owner: parent of the client's copy */
    capslot_t service_root;   /* parent of the service's copy (service on this core) */
    int waiter;               /* owner: the client handle waiting for the answer */
};
static struct conn conns[MON_MAX_CONNS];
static uint32_t sweep_at;
static uint64_t opened, freed;

static uint32_t number_of(uint32_t i) { return (uint32_t)conns[i].gen << 16 | i; }
static uint32_t index_of(const struct conn *c) { return (uint32_t)(c - conns); }

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

static void forget(struct conn *c)
{
    if (c->queued)
        service_unqueue(index_of(c));
    uint16_t gen = c->gen;
    *c = (struct conn){ .gen = gen };
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

static bool holds_copy(capslot_t root)
{
    struct cap_identity id;
    return root && sys_cap_identify(root, &id) == ERR_OK && (id.flags & CAP_ID_HAS_CHILDREN);
}

static errval_t copy_of(capslot_t from, capslot_t *copy)
{
    errval_t err = slot_alloc(copy);
    if (!err && (err = sys_cap_copy(from, *copy)))
        slot_free(*copy);
    return err;
}

static bool service_here(const struct conn *c) { return c->service_core == my_core; }

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

static void tell(uint32_t core, struct conn *c, bool released)
{
    if (!core_alive(core))
        return;   /* fenced (fence.c): nobody there to tell */
    struct idl_chan *via = route(core);
    errval_t err = !via ? ERR_NO_ROUTE
                 : released ? monitor_conn_released_send(via, (uint16_t)core, (uint16_t)my_core, 0, c->number)
                            : monitor_conn_closed_send(via, (uint16_t)core, (uint16_t)my_core, 0, c->owner_core,
                                                       c->number, (uint8_t)(c->owner ? 0 : 1));
    if (err)
        printf("monitor %u: cannot tell core %u about connection %x: %s\n", my_core, core, c->number,
               err_name(err));
}

/* The client's end is gone (`why`: it ended, or it let go). */
static void client_went(struct conn *c, errval_t why)
{
    if (c->client_gone)
        return;
    c->client_gone = true;
    hang_up_for(c, 0, why);
    /* A connection still in its service's accept queue stays there: what
     * the client sent before it went is delivered, then the hang-up (as a
     * socket's data outlives its writer). The queue is the service's, and
     * bounded (MON_CONNS_PER_SERVICE). */
    if (!service_here(c) && c->state == C_OPEN)
        tell(c->service_core, c, false);
}

/* The service's end is gone. */
static void service_went(struct conn *c, errval_t why)
{
    if (c->service_gone)
        return;
    c->service_gone = true;
    if (c->queued) {
        service_unqueue(index_of(c));
        c->queued = false;
    }
    if (c->owner)
        hang_up_for(c, 1, why);
    else
        tell(c->owner_core, c, false);
}

/* Let go of what nobody uses any more; see the top of the file. */
static void settle(struct conn *c)
{
    if (c->state != C_OPEN)
        return;
    /* Ends that let go of their copy without a word. */
    if (c->owner && !c->client_gone && !holds_copy(c->client_root))
        client_went(c, ERR_CHAN_CLOSED);
    if (service_here(c) && !c->service_gone && !c->queued && !holds_copy(c->service_root))
        service_went(c, ERR_CHAN_CLOSED);
    if (!c->owner) {
        if (!c->service_gone)
            return;
        cap_free(c->service_root);
        tell(c->owner_core, c, true);
    } else {
        if (!c->client_gone || !c->service_gone || c->remote_held)
            return;
        if (c->client_root)
            cap_free(c->client_root);
        if (c->service_root)
            cap_free(c->service_root);
        frame_release(c->frame, c->map);
    }
    forget(c);
    freed++;
}

/* -- the client's side: MON_CONNECT -------------------------------------------- */

/* A zeroed frame of our own RAM, mapped here, and the client's root. */
static errval_t channel_frame(struct conn *c)
{
    errval_t err = frame_alloc(CONN_FRAME_BYTES, &c->frame);
    if (err)
        return err;
    if (!(err = vspace_map_frame(c->frame, MAP_WRITE, &c->map))) {
        memset(c->map, 0, CONN_FRAME_BYTES);
        if (!(err = copy_of(c->frame, &c->client_root)))
            return ERR_OK;
        vspace_unmap_frame(c->frame, c->map);
    }
    cap_free(c->frame);
    return err;
}

/* The client hears how its connect went: on success, its copy. */
static void answer_connect(struct conn *c, errval_t err)
{
    int waiter = c->waiter;
    c->waiter = -1;
    if (c->state == C_CONNECTING)
        c->state = C_OPEN;
    capslot_t copy = 0;
    if (!err && !client_handle_valid(waiter))
        err = ERR_DOMAIN_ENDED;
    if (!err)
        err = copy_of(c->client_root, &copy);
    client_connect_reply(waiter, err, copy);
    if (err) {
        client_went(c, ERR_DOMAIN_ENDED);
        settle(c);
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
    if (!err && (err = channel_frame(c)))
        forget(c);
    if (err) {
        client_connect_reply(handle, err, 0);
        return;
    }
    c->state = C_CONNECTING;
    c->owner = true;
    c->owner_core = c->client_core = (uint16_t)my_core;
    c->service_core = (uint16_t)core;
    c->number = number_of(index_of(c));
    c->client = client;
    c->service = service;
    c->waiter = handle;
    opened++;
    if (core == my_core) {
        uint64_t owner = 0;
        err = service_owner(service, &owner);
        if (!err && count_service(owner) >= MON_CONNS_PER_SERVICE)
            err = ERR_QUOTA;
        if (!err)
            err = copy_of(c->frame, &c->service_root);
        if (!err && (err = service_enqueue(service, index_of(c)))) {
            cap_free(c->service_root);
            c->service_root = 0;
        }
        c->queued = !err;
        c->service_domain = owner;
        c->service_gone = err != ERR_OK;
        answer_connect(c, err);
        return;
    }
    struct idl_chan *via = route(core);
    struct pending p = { .kind = PEND_CONNECT, .client = handle, .to = core, .conn = c->number };
    uint32_t tag = 0;
    err = via ? pending_add(&p, &tag) : ERR_NO_ROUTE;
    if (!err && (err = monitor_connect_call_send(via, (uint16_t)core, (uint16_t)my_core, tag, service, c->frame,
                                                 client, c->number)))
        pending_take(tag, ANY_CORE, &p);
    if (err) {
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
         * other monitor holds nothing; an acceptance is undone by the
         * hang-up the client's side already got (conn_released follows). */
        if (err) {
            c->remote_held = false;
            c->service_gone = true;
            settle(c);
        }
        return;
    }
    if (err) {
        c->remote_held = false;   /* it deleted its root when it refused */
        c->service_gone = true;
    }
    answer_connect(c, err);
}

void conn_connect_timed_out(uint32_t number)
{
    struct conn *c = owned(number);
    /* The other core may still hold a root: the frame stays ours until it
     * says otherwise (a late answer or conn_released), never reused before. */
    if (c && c->state == C_CONNECTING)
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
    c->state = C_OPEN;
    c->owner_core = c->client_core = (uint16_t)from;
    c->service_core = (uint16_t)my_core;
    c->number = number;
    c->client = client;
    c->service_domain = owner;
    c->service = service;
    c->service_root = frame;
    if ((err = service_enqueue(service, index_of(c)))) {
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
    errval_t err = copy_of(c->service_root, frame);
    if (err) {
        service_went(c, ERR_CHAN_CLOSED);
        settle(c);
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
        bool mine = false;
        if (c->owner && c->client == domain) {
            client_went(c, ERR_DOMAIN_ENDED);
            mine = true;
        }
        if (service_here(c) && c->service_domain == domain) {
            service_went(c, ERR_DOMAIN_ENDED);
            mine = true;
        }
        if (mine)
            settle(c);
    }
}

void conn_closed(uint32_t from, uint32_t owner_core, uint32_t number, uint32_t side)
{
    struct conn *c = owner_core == my_core ? owned(number) : imported(owner_core, number);
    if (!c || (c->owner ? from != c->service_core : from != c->owner_core))
        return;   /* not ours to hear about, or long gone */
    if (side == 1 && c->owner)
        service_went(c, ERR_CHAN_CLOSED);
    else if (side == 0 && !c->owner)
        c->client_gone = true;   /* queued or not, the service reads what was sent, then the hang-up */
    settle(c);
}

void conn_released(uint32_t from, uint32_t number)
{
    struct conn *c = owned(number);
    if (!c || from != c->service_core)
        return;
    if (c->state == C_CONNECTING)   /* an answer that never came: nobody waits now */
        answer_connect(c, ERR_TIMEOUT);
    c->remote_held = false;
    service_went(c, ERR_CHAN_CLOSED);   /* if it let go without a word, the client hears it */
    settle(c);
}

void conns_sweep(void)
{
    uint32_t checked = 0;
    for (uint32_t n = 0; n < MON_MAX_CONNS && checked < SWEEP_BATCH; n++) {
        struct conn *c = &conns[sweep_at];
        sweep_at = (sweep_at + 1) % MON_MAX_CONNS;
        if (c->state == C_OPEN) {
            checked++;
            settle(c);
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

/* The service's side, whose client's core is dead: hang up for the client
 * through our copy of the frame (we are not its owner, and the owner will
 * never do it), so the service reads what was sent, then ERR_CHAN_CLOSED. */
static void hang_up_for_dead_client(struct conn *c)
{
    void *p = 0;
    struct urpc_chan as_gone;
    if (!c->service_root || vspace_map_frame(c->service_root, MAP_WRITE, &p))
        return;
    if (!urpc_init(&as_gone, p, CONN_FRAME_BYTES, 0) && !__atomic_load_n(&as_gone.my_ctrl->closed, __ATOMIC_RELAXED)) {
        as_gone.wake_arg = notify_cap_for(my_core);
        urpc_close(&as_gone, ERR_CORE_DOWN);
    }
    vspace_unmap_frame(c->service_root, p);
}

uint32_t conns_core_dead(uint32_t core)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MON_MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->state == C_FREE)
            continue;
        if (c->owner && c->service_core == core) {
            /* The dead core's root of our frame is never given back; nothing
             * there runs to use it, so the frame is ours to free. */
            n++;
            c->remote_held = false;
            if (c->state == C_CONNECTING) {
                c->service_gone = true;
                answer_connect(c, ERR_CORE_DOWN);
                continue;
            }
            service_went(c, ERR_CORE_DOWN);
            settle(c);
        } else if (!c->owner && c->owner_core == core && !c->client_gone) {
            n++;
            hang_up_for_dead_client(c);
            c->client_gone = true;
            settle(c);
        }
    }
    return n;
}
