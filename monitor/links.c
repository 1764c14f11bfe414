/*
 * The monitor's channels to other monitors: boot channels (core 0 to each
 * core, frames the CPU drivers made) and mesh channels (frames the lower
 * core of a pair gave the higher). Every message starts
 * with its destination core (if/monitor.if), so a message for another core
 * is passed on by its first bytes; only messages for this core are decoded.
 */
#include "monitor.h"

#define MAX_LINKS 1024
#define BACKLOG_MAX 4096
#define SEND_TIMEOUT_NS 5000000000ull   /* a peer that takes nothing for 5 s is gone */

static capslot_t notify_all_cap;   /* every core: for span dispatchers */
static struct link *links[MAX_LINKS];
static uint32_t nlinks;
static struct link *by_core[MESH_MAX_CORES];     /* boot and mesh links */
static capslot_t notify_caps[MESH_MAX_CORES];

/* Messages taken off a ring while this monitor waited to send (link_send):
 * handled by the next links_poll, in arrival order. */
struct held {
    struct held *next;
    struct link *from;
    size_t len;
    uint8_t msg[];
};
static struct held *held_head, *held_tail;
static uint32_t held_count;
static uint64_t dropped;   /* malformed or unroutable */

capslot_t notify_cap_for(uint32_t core)
{
    if (core >= MESH_MAX_CORES)
        return 0;
    if (!notify_caps[core]) {
        capslot_t s;
        struct cap_identity id = { .type = CAP_NOTIFY, .rights = CAP_RIGHT_WRITE, .base = core, .bytes = 1 };
        if (slot_alloc(&s))
            return 0;
        if (sys_cap_create(SLOT_KERNEL, &id, s)) {
            slot_free(s);
            return 0;
        }
        notify_caps[core] = s;
    }
    return notify_caps[core];
}

/* A Notify for every core of the machine (SYS_NOTIFY names one): what a
 * span dispatcher gets, so that a domain's threads on different cores can
 * wake each other (lib/thread, docs/spanning.md). No new authority: any
 * domain may ask its monitor for a Notify of any core. */
capslot_t notify_cap_all(void)
{
    if (!notify_all_cap) {
        capslot_t s;
        struct cap_identity id = { .type = CAP_NOTIFY, .rights = CAP_RIGHT_WRITE, .base = 0, .bytes = ncores };
        if (slot_alloc(&s))
            return 0;
        if (sys_cap_create(SLOT_KERNEL, &id, s)) {
            slot_free(s);
            return 0;
        }
        notify_all_cap = s;
    }
    return notify_all_cap;
}

static errval_t link_recv(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags)
{
    struct link *l = ch->state;
    return urpc_recv(&l->ch, buf, size, len, flags);
}

errval_t link_attach(uint32_t peer, uint32_t purpose, capslot_t frame, int side, struct link **out)
{
    if (nlinks >= MAX_LINKS || peer >= ncores)
        return ERR_TOO_MANY;
    struct link *l = malloc(sizeof *l);
    if (!l)
        return ERR_NO_MEMORY;
    memset(l, 0, sizeof *l);
    void *p = 0;
    errval_t err = vspace_map_frame(frame, MAP_WRITE, &p);
    if (!err && (err = urpc_init(&l->ch, p, 4096, side)))
        vspace_unmap_frame(frame, p);   /* the frame stays the caller's */
    if (err) {
        free(l);
        return err;
    }
    l->peer = peer;
    l->purpose = purpose;
    l->frame = frame;
    l->base = p;
    l->ch.wake_arg = notify_cap_for(peer);
    l->ch.spin_ns = 0;
    l->heard_ns = l->sent_ns = now_ns();
    l->idl = (struct idl_chan){ .send = link_send, .recv = link_recv, .cap_export = cap_export,
                                .cap_import = cap_import, .state = l };
    links[nlinks++] = l;
    if (!by_core[peer])
        by_core[peer] = l;
    *out = l;
    return ERR_OK;
}

/* Undo link_attach for a link nobody else has seen yet: it leaves the
 * tables and its frame is unmapped (and freed: it was ours). */
static void link_discard(struct link *l)
{
    for (uint32_t i = 0; i < nlinks; i++)
        if (links[i] == l) {
            links[i] = links[--nlinks];
            break;
        }
    if (l->peer < MESH_MAX_CORES && by_core[l->peer] == l)
        by_core[l->peer] = 0;
    frame_release(l->frame, l->base);
    free(l);
}

errval_t link_offer(uint32_t peer, uint32_t purpose, struct link **out)
{
    capslot_t frame;
    struct link *l = 0;
    *out = 0;
    errval_t err = frame_alloc(4096, &frame);
    if (err)
        return err;
    if ((err = link_attach(peer, purpose, frame, 0, &l))) {
        cap_free(frame);
        return err;
    }
    memset(l->base, 0, 4096);   /* before the peer may look */
    struct idl_chan *via = route(peer);
    err = via ? monitor_link_offer_send(via, (uint16_t)peer, (uint16_t)my_core, new_tag(), frame, purpose)
              : ERR_NO_ROUTE;
    if (err) {
        /* Never offered, or the offer was never queued: nobody holds a
         * copy, so the link and its frame go. */
        link_discard(l);
        return err;
    }
    *out = l;
    return ERR_OK;
}

struct link *link_direct(uint32_t core)
{
    struct link *l = core < MESH_MAX_CORES ? by_core[core] : 0;
    return l && l->up ? l : 0;
}

struct idl_chan *route(uint32_t dst)
{
    if (dst == my_core || dst >= ncores || !core_alive(dst))
        return 0;   /* a dead core (fence.c) is reached by nothing */
    struct link *l = link_direct(dst);
    if (!l && plan_known)
        l = link_direct(mesh_next_hop(&plan, my_core, dst));
    if (!l)   /* the mesh is still being built: core 0 reaches everyone */
        l = link_direct(my_core == 0 ? dst : 0);
    return l ? &l->idl : 0;
}

uint32_t route_hops(uint32_t dst)
{
    uint32_t at = my_core, hops = 0;
    while (at != dst && hops < 8) {
        at = plan_known ? mesh_next_hop(&plan, at, dst) : (at == 0 ? dst : 0);
        hops++;
    }
    return hops;
}

/* Take every whole message waiting on every link into the held queue. */
static void hold_incoming(void)
{
    static uint8_t buf[URPC_MSG_MAX];
    for (uint32_t i = 0; i < nlinks && held_count < BACKLOG_MAX; i++) {
        struct link *l = links[i];
        size_t len;
        if (l->closed)
            continue;
        while (held_count < BACKLOG_MAX && urpc_recv(&l->ch, buf, sizeof buf, &len, URPC_NONBLOCK) == ERR_OK) {
            struct held *h = malloc(sizeof *h + len);
            if (!h) {
                dropped++;
                return;
            }
            h->next = 0;
            h->from = l;
            h->len = len;
            memcpy(h->msg, buf, len);
            if (held_tail)
                held_tail->next = h;
            else
                held_head = h;
            held_tail = h;
            held_count++;
        }
    }
}

/* Messages a full ring could not take yet, per link, in order. */
struct outmsg {
    struct outmsg *next;
    size_t len;
    uint8_t msg[];
};
#define OUTBOX_MAX 8192
static uint32_t queued;   /* in every outbox */

static errval_t enqueue(struct link *l, const void *msg, size_t len)
{
    struct outmsg *o = queued < OUTBOX_MAX ? malloc(sizeof *o + len) : 0;
    if (!o) {
        dropped++;
        return ERR_TOO_MANY;
    }
    o->next = 0;
    o->len = len;
    memcpy(o->msg, msg, len);
    if (l->out_tail)
        l->out_tail->next = o;
    else
        l->out_head = o;
    l->out_tail = o;
    l->out_count++;
    queued++;
    outbox_kick();
    return ERR_OK;
}

/* One message now, or ERR_WOULD_BLOCK. A message longer than the ring (a
 * long text) can only be streamed, the peer taking slots while we write:
 * take what waits for us first, then send blocking, bounded (two monitors
 * streaming long messages at each other wait for each other until then). */
static errval_t send_now(struct link *l, const void *msg, size_t len, unsigned flags)
{
    errval_t err;
    if (len <= (size_t)l->ch.nslots * URPC_PAYLOAD) {
        err = urpc_send(&l->ch, msg, len, URPC_NONBLOCK | (flags & URPC_NOWAKE));
    } else {
        hold_incoming();
        uint64_t old = l->ch.timeout_ns;
        l->ch.timeout_ns = SEND_TIMEOUT_NS;
        err = urpc_send(&l->ch, msg, len, 0);
        l->ch.timeout_ns = old;
    }
    if (!err)
        l->sent_ns = now_ns();
    return err;
}

/* Send what the outbox holds while the ring has room. */
static bool flush_outbox(struct link *l)
{
    bool did = false;
    while (l->out_head) {
        struct outmsg *o = l->out_head;
        errval_t err = send_now(l, o->msg, o->len, 0);
        if (err == ERR_WOULD_BLOCK)
            break;
        if (err)
            dropped++;   /* a broken channel: nothing more will go */
        l->out_head = o->next;
        if (!l->out_head)
            l->out_tail = 0;
        l->out_count--;
        queued--;
        free(o);
        did = true;
    }
    return did;
}

/* flags: URPC_NOWAKE for a message the peer may take at its next wake-up
 * (fence.c's heartbeats); one that waits in the outbox wakes it when it goes. */
errval_t link_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    struct link *l = ch->state;
    if (l->closed && !core_alive(l->peer))
        return ERR_CORE_DOWN;   /* fenced: nothing there takes it */
    if (l->out_head)
        flush_outbox(l);
    if (l->out_head)   /* keep the order: behind what waits */
        return enqueue(l, msg, len);
    errval_t err = send_now(l, msg, len, flags);
    return err == ERR_WOULD_BLOCK ? enqueue(l, msg, len) : err;
}

bool links_backlogged(void) { return queued > 0; }

/* The peer is dead: nothing more is read from, written to or queued for
 * its links (its frames stay mapped: the memory of a dead core's channels
 * is never reused, so nothing it might still write lands elsewhere). */
void links_fence(uint32_t core)
{
    for (uint32_t i = 0; i < nlinks; i++) {
        struct link *l = links[i];
        if (l->peer != core)
            continue;
        l->closed = true;
        l->up = false;
        while (l->out_head) {
            struct outmsg *o = l->out_head;
            l->out_head = o->next;
            free(o);
            queued--;
            dropped++;
        }
        l->out_tail = 0;
        l->out_count = 0;
    }
}

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* One message that came in on `from`: ours, or to pass on. */
static void handle(struct link *from, const uint8_t *msg, size_t len)
{
    from->heard_ns = now_ns();   /* any message is a sign of life (fence.c) */
    if (len < IDL_HEADER_SIZE + 4) {
        dropped++;
        return;
    }
    uint32_t dst = le16(msg + IDL_HEADER_SIZE);
    if (dst != my_core) {
        struct idl_chan *next = route(dst);
        if (!next || link_send(next, msg, len, 0) != ERR_OK) {
            dropped++;
            return;
        }
        ((struct link *)next->state)->forwarded++;
        return;
    }
    errval_t err = monitor_dispatch(&from->idl, &monitor_handlers, msg, len);
    if (err) {
        dropped++;
        printf("monitor %u: message from core %u refused: %s\n", my_core, from->peer, err_name(err));
    }
}

bool links_poll(void)
{
    static uint8_t buf[URPC_MSG_MAX];
    bool did = false;
    fence_keepalive(now_ns());
    for (uint32_t i = 0; i < nlinks && queued; i++)
        if (links[i]->out_head && !links[i]->closed)
            did |= flush_outbox(links[i]);
    while (held_head) {
        struct held *h = held_head;
        held_head = h->next;
        if (!held_head)
            held_tail = 0;
        held_count--;
        handle(h->from, h->msg, h->len);
        free(h);
        did = true;
    }
    for (uint32_t i = 0; i < nlinks; i++) {
        struct link *l = links[i];
        if (l->closed)
            continue;
        /* A few messages per link per round, so that no link starves. */
        for (int n = 0; n < 8; n++) {
            size_t len;
            errval_t err = urpc_recv(&l->ch, buf, sizeof buf, &len, URPC_NONBLOCK);
            if (err == ERR_WOULD_BLOCK)
                break;
            if (err) {
                did = true;
                /* A corrupt channel stays broken: close it for good, or
                 * it would look busy forever and keep us from sleeping.
                 * Routes then go around it (through core 0). */
                printf("monitor %u: channel to core %u: %s; closed\n", my_core, l->peer, err_name(err));
                printf("@atoll {\"event\":\"channel_closed\",\"core\":%u,\"peer\":%u,\"error\":\"%s\"}\n",
                       my_core, l->peer, err_name(err));
                l->closed = true;
                l->up = false;
                dropped++;
                break;
            }
            /* Busy: its sender need not ring us while we are awake, so
             * the link's sleeping flag goes down (<atoll/waitset.h>), and
             * the loop counts it as work (it spins before it sleeps). Not
             * a lone heartbeat: it asks for nothing, lowering and raising
             * the flag would move its line twice, and the spin after it
             * was most of what an idle core executed. */
            if (n > 0 || idl_msg_type(buf, len) != monitor_beat) {
                urpc_set_sleeping(&l->ch, false);
                did = true;
            }
            handle(l, buf, len);
        }
    }
    return did;
}

/* Raised before the loop sleeps; each link's is lowered when it brings
 * work (links_poll), not at every wake-up (<atoll/waitset.h>). */
static void links_set_sleeping(struct ws_source *src, bool sleeping)
{
    (void)src;
    for (uint32_t i = 0; i < nlinks; i++)
        if (!links[i]->closed)
            urpc_set_sleeping(&links[i]->ch, sleeping);
}

/* Something waits on a link (or was taken off one while we waited). */
static bool links_pending(struct ws_source *src)
{
    (void)src;
    if (held_head)
        return true;
    for (uint32_t i = 0; i < nlinks; i++)
        if (!links[i]->closed && urpc_pending(&links[i]->ch))
            return true;
    return false;
}

static bool links_poll_source(struct ws_source *src)
{
    (void)src;
    return links_poll();
}

void links_source(struct ws_source *s)
{
    *s = (struct ws_source){ .poll = links_poll_source, .set_sleeping = links_set_sleeping,
                             .pending = links_pending, .name = "links" };
}

static const char *purpose_name(uint32_t p)
{
    return p == LINK_BOOT ? "boot" : p == LINK_MESH ? "mesh" : "?";
}

size_t links_describe(char *out, size_t size, uint64_t *count)
{
    size_t len = 0;
    out[0] = 0;
    *count = nlinks;
    for (uint32_t i = 0; i < nlinks && len + 1 < size; i++) {
        const struct link *l = links[i];
        len += (size_t)snprintf(out + len, size - len, "%4u %4u  %-5s %-4s %9llu %9llu %9llu\n", my_core, l->peer,
                                purpose_name(l->purpose),
                                !core_alive(l->peer) ? "dead" : l->closed ? "closed" : l->up ? "up" : "wait",
                                (unsigned long long)l->ch.stats.msgs_sent,
                                (unsigned long long)l->ch.stats.msgs_received,
                                (unsigned long long)l->forwarded);
        if (len >= size)
            len = size - 1;
    }
    if (dropped && len + 1 < size)
        len += (size_t)snprintf(out + len, size - len, "%4u  dropped %llu\n", my_core,
                                (unsigned long long)dropped);
    return len < size ? len : size - 1;
}
