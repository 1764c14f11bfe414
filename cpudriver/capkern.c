/* What capability operations do to this core's memory and objects: the
 * kernel side of cap.c's hooks. */
#include "capkern.h"
#include "cap.h"
#include "dispatcher.h"
#include "lib.h"
#include "notify.h"
#include "obituary.h"
#include "vspace.h"
#include "x86_64/cpu.h"
#include "x86_64/kernel_layout.h"

static void *ptr(uint64_t phys) { return phys_to_virt(phys); }

static void zero(uint64_t phys, uint64_t bytes) { memset(phys_to_virt(phys), 0, bytes); }

static void unlinked(struct cte *c) { vspace_unmap(c); }

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
            obituary_record(d);   /* it can never run again */
        }
    }
}

static void destroyed(const struct capability *cap)
{
    switch (cap->type) {
    case CAP_DISPATCHER:
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
        vspace_vnode_destroyed(cap);
        break;
    case CAP_CNODE:
        orphan_dispatchers(cap);
        break;
    default:
        break;
    }
}

static const struct cap_hooks hooks = { ptr, zero, unlinked, destroyed };

void capkern_init(void) { cap_set_hooks(&hooks); }
