/* Requests this monitor sent to another core and still waits for, by tag. */
#include "monitor.h"

#define MAX_PENDING 256

static struct pending table[MAX_PENDING];

uint32_t pending_add(const struct pending *p)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (!table[i].tag) {
            table[i] = *p;
            table[i].tag = new_tag();
            return table[i].tag;
        }
    return 0;   /* full: the caller answers ERR_TOO_MANY */
}

bool pending_take(uint32_t tag, struct pending *out)
{
    for (int i = 0; i < MAX_PENDING && tag; i++)
        if (table[i].tag == tag) {
            *out = table[i];
            table[i].tag = 0;
            return true;
        }
    return false;
}
