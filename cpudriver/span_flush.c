/* Implicit unmaps in spanning domains; see span_flush.h. */
#include "span_flush.h"
#include "core.h"
#include "dispatcher.h"
#include "lib.h"
#include "report.h"
#include "tlb_ipi.h"

static uint64_t pending[4];   /* this core's: cores to shoot down before returning */

static void add_spanned(uint64_t out[4])
{
    for (struct dispatcher *d = dispatcher_first(); d; d = d->next)
        for (int i = 0; i < 4; i++)
            out[i] |= d->span_cores[i];
}

void span_flush_note(void) { add_spanned(pending); }

void span_flush_note_cores(const uint64_t cores[4])
{
    for (int i = 0; i < 4; i++)
        pending[i] |= cores[i];
}

bool span_flush_spanning(void)
{
    uint64_t c[4] = { 0 };
    add_spanned(c);
    return c[0] | c[1] | c[2] | c[3];
}

void span_flush_settle(void)
{
    if (!(pending[0] | pending[1] | pending[2] | pending[3]))
        return;
    uint64_t cores[4], asked = 0;
    memcpy(cores, pending, sizeof cores);
    memset(pending, 0, sizeof pending);
    errval_t err = tlb_ipi_shootdown(cores, TLB_FLUSH_WAIT_US, &asked);
    if (err) {
        /* A core that did not answer (stopped, or fenced as dead): nothing
         * to undo; say so. */
        struct event e;
        event_begin(&e, "span_flush_failed");
        event_u64(&e, "core", core.core_id);
        event_u64(&e, "asked", asked);
        event_str(&e, "err", err_name(err));
        event_end(&e);
    }
}
