/*
 * Services of this core: domains that take connections. A connection is a
 * frame (normally a URPC channel) a client on any core handed over with
 * MON_CONNECT; it waits here until the service takes it (MON_ACCEPT), and
 * the service's core is notified so that a sleeping service wakes.
 */
#include "monitor.h"

#define MAX_SERVICES 64
#define QUEUE 16

struct connection {
    capslot_t frame;
    uint32_t client_core;
    uint64_t client;
};

struct service {
    bool used;
    uint64_t owner;     /* the domain's id (its badge) */
    struct connection q[QUEUE];
    uint32_t head, count;
};
static struct service services[MAX_SERVICES];

#define SERVICES_PER_DOMAIN 4

/* A service whose domain has ended: its waiting connections go, and so
 * does the entry (service ids are reused). */
static void reclaim(struct service *s)
{
    for (uint32_t k = 0; k < s->count; k++)
        cap_free(s->q[(s->head + k) % QUEUE].frame);
    *s = (struct service){ 0 };
}

errval_t service_register(uint64_t owner, uint64_t *service)
{
    uint32_t mine = 0;
    for (uint32_t i = 0; i < MAX_SERVICES; i++) {
        if (services[i].used && !client_alive(services[i].owner))
            reclaim(&services[i]);
        mine += services[i].used && services[i].owner == owner;
    }
    if (mine >= SERVICES_PER_DOMAIN)
        return ERR_TOO_MANY;
    /* Service 0 of core 0 is the name server's (NAMES_SERVICE), whoever
     * asks first: nobody else may take it, even after it ended. */
    bool names = my_core == 0 && owner == names_id;
    for (uint32_t i = names ? 0 : my_core == 0; i < MAX_SERVICES && !(names && i > 0); i++)
        if (!services[i].used) {
            services[i] = (struct service){ .used = true, .owner = owner };
            *service = (uint64_t)my_core << 32 | i;
            return ERR_OK;
        }
    return ERR_TOO_MANY;
}

errval_t service_connect(uint64_t service, capslot_t frame, uint32_t client_core, uint64_t client)
{
    uint64_t i = service & 0xffffffffu;
    if (service >> 32 != my_core || i >= MAX_SERVICES || !services[i].used)
        return ERR_NOT_FOUND;
    struct service *s = &services[i];
    if (s->count == QUEUE)
        return ERR_TOO_MANY;
    s->q[(s->head + s->count++) % QUEUE] = (struct connection){ frame, client_core, client };
    capslot_t me = notify_cap_for(my_core);
    if (me)
        sys_notify(me);   /* wake the service if it sleeps */
    return ERR_OK;
}

errval_t service_accept(uint64_t owner, capslot_t *frame, uint32_t *client_core, uint64_t *client)
{
    for (uint32_t i = 0; i < MAX_SERVICES; i++) {
        struct service *s = &services[i];
        if (!s->used || s->owner != owner)
            continue;
        if (!s->count)
            return ERR_WOULD_BLOCK;
        struct connection *c = &s->q[s->head];
        s->head = (s->head + 1) % QUEUE;
        s->count--;
        *frame = c->frame;
        *client_core = c->client_core;
        *client = c->client;
        return ERR_OK;
    }
    return ERR_NOT_FOUND;
}
