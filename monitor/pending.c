/* Requests this monitor sent to another core and still waits for, by tag. */
#include "monitor.h"

#define MAX_PENDING 256
/* Longer than anything a monitor does for another (under TCG on a loaded
 * host a vCPU can stall for seconds). */
#define PENDING_TIMEOUT_NS 30000000000ull

static struct pending table[MAX_PENDING];

errval_t pending_add(const struct pending *p, uint32_t *tag)
{
    uint32_t mine = 0;
    int free_entry = -1;
    for (int i = 0; i < MAX_PENDING; i++) {
        if (!table[i].tag && free_entry < 0)
            free_entry = i;
        mine += table[i].tag && table[i].client == p->client;
    }
    if (mine >= MON_PENDING_PER_CLIENT)
        return ERR_QUOTA;
    if (free_entry < 0)
        return ERR_TOO_MANY;
    table[free_entry] = *p;
    table[free_entry].tag = new_tag();
    table[free_entry].since = now_ns();
    *tag = table[free_entry].tag;
    return ERR_OK;
}

uint32_t pending_count(void)
{
    uint32_t n = 0;
    for (int i = 0; i < MAX_PENDING; i++)
        n += table[i].tag != 0;
    return n;
}

void pending_forget_client(int client)
{
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &table[i];
        if (!p->tag || p->client != client)
            continue;
        /* A connection keeps its entry: the answer still decides what
         * becomes of the frame (conns.c), though nobody waits for it. */
        if (p->kind != PEND_CONNECT)
            p->tag = 0;
    }
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
        if (p->kind == PEND_CONNECT) {
            conn_connect_timed_out(p->conn);   /* the frame waits for a late answer */
        } else {
            struct asker who = { .handle = p->client };
            struct idl_chan ch;
            reply_chan(&ch, &who);
            reply_error(&ch, p->call, ERR_TIMEOUT);
        }
    }
}

uint32_t pending_fail_core(uint32_t core)
{
    uint32_t n = 0;
    for (int i = 0; i < MAX_PENDING; i++) {
        struct pending *p = &table[i];
        if (!p->tag || p->to != core)
            continue;
        p->tag = 0;
        n++;
        if (p->kind == PEND_CONNECT) {
            conn_connect_answered(p->conn, ERR_CORE_DOWN);   /* nothing there holds the frame */
        } else {
            struct asker who = { .handle = p->client };
            struct idl_chan ch;
            reply_chan(&ch, &who);
            reply_error(&ch, p->call, ERR_CORE_DOWN);
        }
    }
    return n;
}
