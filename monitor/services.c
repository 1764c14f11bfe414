/*
 * Services of this core: domains that take connections. A connection
 * (conns.c) whose service lives here waits in the service's queue until
 * the service takes it (MON_ACCEPT) and gets its own copy of the frame; the
 * service's core is notified so that a sleeping service wakes.
 *
 * A service ends with its domain: its queue is dropped (conns.c hangs up
 * the clients) and its entry is free again. Its id never comes back (the
 * domain id is in it, protocol.h), so a client holding the old id gets
 * ERR_NOT_FOUND, never another service.
 */
#include "monitor.h"

#define MAX_SERVICES 64
#define QUEUE 16

struct service {
    bool used;
    uint64_t owner;     /* the domain's id (its badge) */
    uint64_t id;        /* SERVICE_ID(my_core, owner, seq) */
    uint64_t order;     /* registrations on this core so far (seq wraps) */
    uint32_t q[QUEUE];  /* connection numbers (conns.c) */
    uint32_t head, count;
};
static struct service services[MAX_SERVICES];
static uint16_t next_seq;
static uint64_t registered;

static struct service *by_id(uint64_t service)
{
    if (SERVICE_CORE(service) != my_core)
        return 0;
    if (NAMES_WELL_KNOWN(service)) {
        /* The name server's replica here: its first service is for the
         * other replicas, its second for clients (registered once it holds
         * the names: until then clients go to another replica). */
        struct service *pick[2] = { 0, 0 };
        for (uint32_t i = 0; i < MAX_SERVICES; i++) {
            struct service *s = &services[i];
            if (!s->used || s->owner != names_id)
                continue;
            if (!pick[0] || s->order < pick[0]->order) {
                pick[1] = pick[0];
                pick[0] = s;
            } else if (!pick[1] || s->order < pick[1]->order) {
                pick[1] = s;
            }
        }
        return pick[service == NAMES_PEER_AT(my_core) ? 0 : 1];
    }
    for (uint32_t i = 0; i < MAX_SERVICES; i++)
        if (services[i].used && services[i].id == service)
            return &services[i];
    return 0;
}

bool services_offered_by(uint64_t owner)
{
    for (uint32_t i = 0; i < MAX_SERVICES; i++)
        if (services[i].used && services[i].owner == owner)
            return true;
    return false;
}

errval_t service_register(uint64_t owner, uint64_t *service)
{
    uint32_t mine = 0;
    struct service *free_entry = 0;
    for (uint32_t i = 0; i < MAX_SERVICES; i++) {
        mine += services[i].used && services[i].owner == owner;
        if (!services[i].used && !free_entry)
            free_entry = &services[i];
    }
    if (mine >= MON_SERVICES_PER_DOMAIN)
        return ERR_QUOTA;
    if (!free_entry)
        return ERR_TOO_MANY;
    *free_entry = (struct service){ .used = true, .owner = owner, .id = SERVICE_ID(my_core, owner, ++next_seq),
                                   .order = ++registered };
    *service = free_entry->id;
    return ERR_OK;
}

errval_t service_owner(uint64_t service, uint64_t *owner)
{
    struct service *s = by_id(service);
    if (!s)
        return ERR_NOT_FOUND;
    *owner = s->owner;
    return ERR_OK;
}

errval_t service_enqueue(uint64_t service, uint32_t conn)
{
    struct service *s = by_id(service);
    if (!s)
        return ERR_NOT_FOUND;
    if (s->count == QUEUE)
        return ERR_WOULD_BLOCK;   /* it has not taken the others yet: try again */
    s->q[(s->head + s->count++) % QUEUE] = conn;
    capslot_t me = notify_cap_for(my_core);
    if (me)
        sys_notify(me);   /* wake the service if it sleeps */
    return ERR_OK;
}

void service_unqueue(uint32_t conn)
{
    for (uint32_t i = 0; i < MAX_SERVICES; i++) {
        struct service *s = &services[i];
        for (uint32_t k = 0; s->used && k < s->count; k++) {
            uint32_t at = (s->head + k) % QUEUE;
            if (s->q[at] != conn)
                continue;
            /* Close the gap: later entries move up by one. */
            for (uint32_t j = k; j + 1 < s->count; j++)
                s->q[(s->head + j) % QUEUE] = s->q[(s->head + j + 1) % QUEUE];
            s->count--;
            return;
        }
    }
}

errval_t service_accept(uint64_t owner, capslot_t *frame, uint32_t *client_core, uint64_t *client, uint64_t *service)
{
    bool any = false;
    for (uint32_t i = 0; i < MAX_SERVICES; i++) {
        struct service *s = &services[i];
        if (!s->used || s->owner != owner)
            continue;
        any = true;
        while (s->count) {
            uint32_t conn = s->q[s->head];
            s->head = (s->head + 1) % QUEUE;
            s->count--;
            /* A connection whose client left meanwhile is skipped. */
            if (conn_hand_to_service(conn, frame, client_core, client) == ERR_OK) {
                *service = s->id;
                return ERR_OK;
            }
        }
    }
    return any ? ERR_WOULD_BLOCK : ERR_NOT_FOUND;
}

void services_domain_ended(uint64_t domain)
{
    for (uint32_t i = 0; i < MAX_SERVICES; i++) {
        struct service *s = &services[i];
        if (!s->used || s->owner != domain)
            continue;
        /* Waiting connections hear that their service is gone (conns.c
         * finds them by their service end: nothing to do per entry here). */
        *s = (struct service){ 0 };
    }
}

uint32_t services_count(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < MAX_SERVICES; i++)
        n += services[i].used;
    return n;
}
