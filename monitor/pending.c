/* Requests this monitor sent to another core and still waits for, by tag. */
#include "monitor.h"

#define MAX_PENDING 256
/* Longer than anything a monitor does for another (a URPC benchmark of
 * 10,000 rounds under TCG takes a few seconds). */
#define PENDING_TIMEOUT_NS 30000000000ull

static struct pending table[MAX_PENDING];

uint32_t pending_add(const struct pending *p)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (!table[i].tag) {
            table[i] = *p;
            table[i].tag = new_tag();
            table[i].since = now_ns();
            return table[i].tag;
        }
    return 0;   /* full: the caller answers ERR_TOO_MANY */
}

bool pending_take(uint32_t tag, uint32_t from, struct pending *out)
{
    for (int i = 0; i < MAX_PENDING && tag; i++)
        if (table[i].tag == tag && (from == ANY_CORE || table[i].to == from)) {
            *out = table[i];
            table[i].tag = 0;
            return true;
        }
    return false;
}

void pending_expire(void)
{
    uint64_t now = now_ns();
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &table[i];
        if (!p->tag || now - p->since < PENDING_TIMEOUT_NS)
            continue;
        p->tag = 0;
        if (p->kind != PEND_CLIENT)
            continue;
        /* A connection's frame stays ours: the other core may hold a copy
         * we cannot revoke, so its memory must never be reused. */
        client_answer(p->client, p->chan, p->op, ERR_TIMEOUT, 0, 0, "");
    }
}
