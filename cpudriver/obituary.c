/* The ends of this core's domains, for its monitor; see obituary.h. All
 * state here is this core's. */
#include "obituary.h"
#include "dispatcher.h"
#include "notify.h"

#define OBITUARIES 64

static struct domain_end queue[OBITUARIES];
static uint32_t head, count;
static bool lost;

void obituary_note(struct dispatcher *d, uint32_t reason, int64_t status)
{
    d->end_reason = reason;
    d->end_status = status;
}

void obituary_record(struct dispatcher *d)
{
    if (d->end_reported || d->is_monitor)
        return;
    d->end_reported = true;
    if (count == OBITUARIES) {
        lost = true;
    } else {
        queue[(head + count++) % OBITUARIES] = (struct domain_end){
            .id = d->id, .reason = d->end_reason ? d->end_reason : DOMAIN_END_DELETED, .status = d->end_status };
    }
    notify_arrived();   /* the monitor sleeps among the notification waiters */
}

errval_t obituary_peek(struct domain_end *out)
{
    if (lost) {
        lost = false;
        return ERR_TOO_MANY;
    }
    if (!count)
        return ERR_WOULD_BLOCK;
    *out = queue[head];
    return ERR_OK;
}

void obituary_pop(void)
{
    if (count) {
        head = (head + 1) % OBITUARIES;
        count--;
    }
}
