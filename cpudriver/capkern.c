/* What capability operations do to this core's memory and objects: the
 * kernel side of cap.c's hooks. */
#include "capkern.h"
#include "cap.h"
#include "dispatcher.h"
#include "domain.h"
#include "lib.h"
#include "notify.h"
#include "obituary.h"
#include "span_flush.h"
#include "vspace.h"
#include "x86_64/cpu.h"
#include "x86_64/kernel_layout.h"

static void *ptr(uint64_t phys) { return phys_to_virt(phys); }

static void zero(uint64_t phys, uint64_t bytes) { memset(phys_to_virt(phys), 0, bytes); }

static bool mappable(uint8_t type)
{
    return type == CAP_FRAME || type == CAP_DEVFRAME || type == CAP_VNODE_PDPT || type == CAP_VNODE_PD ||
           type == CAP_VNODE_PT;
}

static void unlinked(struct cte *c)
{
    /* Another core running a spanning domain of ours may still cache it. */
    if (mappable(c->cap.type) && (c->cap.mapped || c->cap.flush_owed))
        span_flush_note();
    vspace_unmap(c);
    if (c->cap.type == CAP_VNODE_PML4)
        domain_span_home_lost(c);   /* a span dispatcher's hold on its home tables */
}

/* Stop every dispatcher whose CSpace or VSpace is the dying object. */
static void orphan_dispatchers(const struct capability *cap)
{
    for (struct dispatcher *d = dispatcher_first(); d; d = d->next) {
        if ((cap->type == CAP_CNODE && d->cnode_base == cap->base) ||
            (cap->type == CAP_VNODE_PML4 && d->pml4 == cap->base)) {
            d->cnode_base = cap->type == CAP_CNODE ? 0 : d->cnode_base;
            d->pml4 = cap->type == CAP_VNODE_PML4 ? 0 : d->pml4;
            notify_forget(d);
            d->state = DOMAIN_STOPPED;
            domain_ended_under(d, cap->type == CAP_CNODE ? "its CSpace was deleted" : "its address space was deleted");
            obituary_record(d);   /* it can never run again */
        }
    }
}

static void destroyed(const struct capability *cap)
{
    switch (cap->type) {
    case CAP_DISPATCHER:
        /* Its address space may be emptied later in the same operation. */
        span_flush_note_cores(dispatcher_of(cap)->span_cores);
        dispatcher_destroyed(dispatcher_of(cap));
        break;
    case CAP_VNODE_PML4:
        /* Never run on page tables that are about to be reused. */
        if ((read_cr3() & PTE_ADDR_MASK) == cap->base)
            write_cr3(core_kernel_pml4());
        orphan_dispatchers(cap);
        vspace_vnode_destroyed(cap);
        break;
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
        span_flush_note();   /* its entries go: the translations through it too */
        vspace_vnode_destroyed(cap);
        break;
    case CAP_CNODE:
        orphan_dispatchers(cap);
        break;
    default:
        break;
    }
}

/* Notices for the monitor: which watched capabilities lost their last child
 * (or were adopted). Kept as the slots themselves; the monitor's call finds
 * their numbers (syscall_capops.c). A full queue remembers that it lost
 * some, and the monitor then looks at everything it watches. */
#define NOTICES 256
static struct cte *notices[NOTICES];
static uint32_t notice_head, notice_count;
static bool notices_lost;

static void notice(struct cte *c)
{
    if (notice_count && notices[(notice_head + notice_count - 1) % NOTICES] == c)
        return;   /* told already */
    if (notice_count == NOTICES)
        notices_lost = true;
    else
        notices[(notice_head + notice_count++) % NOTICES] = c;
    notify_arrived();   /* the monitor sleeps among the notification waiters */
}

errval_t capkern_notice_take(struct cte **out)
{
    if (notices_lost) {
        notices_lost = false;
        return ERR_TOO_MANY;
    }
    if (!notice_count)
        return ERR_WOULD_BLOCK;
    *out = notices[notice_head];
    notice_head = (notice_head + 1) % NOTICES;
    notice_count--;
    return ERR_OK;
}

static const struct cap_hooks hooks = { ptr, zero, unlinked, destroyed, notice };

void capkern_init(void) { cap_set_hooks(&hooks); }
