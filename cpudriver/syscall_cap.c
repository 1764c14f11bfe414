/*
 * System calls on capabilities and address spaces: identify, retype, copy,
 * mint, delete, revoke, move, map, unmap, and re-creating a capability
 * another core exported.
 */
#include <atoll/abi/syscall.h>
#include "syscall.h"
#include "bootinfo.h"
#include "cap.h"
#include "dispatcher.h"
#include "topology.h"
#include "span_flush.h"
#include "uaccess.h"
#include "user_start.h"
#include "vspace.h"

#define RETYPE_MAX_COUNT 4096

errval_t sc_cap_identify(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t slot = f->rdi, out = f->rsi;
    struct cte *c;
    struct cap_identity id;
    errval_t err = user_cap(d, slot, CAP_NULL, 0, &c);
    if (err)
        return err;
    cap_identify(c, &id);
    return copy_to_user(d, out, &id, sizeof id);
}

errval_t sc_cap_retype(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t src_slot = f->rdi, type = f->rsi, size = f->rdx, offset = f->r10, count = f->r8, first = f->r9;
    struct cte *src;
    errval_t err = user_cap(d, src_slot, CAP_RAM, 0, &src);
    if (err)
        return err;
    err = retype_limits(d, type, count);
    if (err)
        return err;
    struct capability cn = user_cspace(d);
    err = cap_retype(src, (enum cap_type)type, size, offset, count, &cn, first);
    if (!err)
        retype_finish(d, type, first, count);
    return err;
}

errval_t retype_limits(struct dispatcher *d, uint64_t type, uint64_t count)
{
    if (count > RETYPE_MAX_COUNT)
        return ERR_RETYPE_OVERFLOW;
    if (type >= CAP_TYPE_COUNT)
        return ERR_CAP_TYPE;
    if (type == CAP_DEVFRAME)
        return ERR_CAP_TYPE;   /* device memory is not RAM */
    if (type == CAP_DISPATCHER && !dispatcher_can_make(d, count))
        return ERR_TOO_MANY;   /* DISPATCHERS_PER_DOMAIN */
    return ERR_OK;
}

void retype_finish(struct dispatcher *d, uint64_t type, uint64_t first, uint64_t count)
{
    /* New objects that the kernel must finish. */
    for (uint64_t i = 0; i < count; i++) {
        struct cte *c;
        if (user_slot(d, first + i, &c))
            break;
        if (type == CAP_VNODE_PML4)
            vspace_init_pml4(c->cap.base);
        else if (type == CAP_DISPATCHER)
            dispatcher_init_inert(dispatcher_of(&c->cap), d);
    }
}

errval_t sc_cap_copy(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t src_slot = f->rdi, dst_slot = f->rsi;
    struct cte *src, *dst;
    errval_t err = user_src_dst(d, src_slot, dst_slot, &src, &dst);
    return err ? err : cap_copy(src, dst);
}

errval_t sc_cap_mint(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t src_slot = f->rdi, dst_slot = f->rsi, rights = f->rdx, badge = f->r10, base = f->r8,
             count = f->r9;
    struct cte *src, *dst;
    errval_t err = user_src_dst(d, src_slot, dst_slot, &src, &dst);
    if (!err && rights > 0xffffffffu)
        err = ERR_INVALID_ARG;
    return err ? err : cap_mint(src, dst, (uint32_t)rights, badge, base, count);
}

errval_t sc_cap_delete(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    struct cte *c;
    errval_t err = user_cap(d, f->rdi, CAP_NULL, 0, &c);
    return err ? err : cap_delete(c);
}

errval_t sc_cap_revoke(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    struct cte *c;
    errval_t err = user_cap(d, f->rdi, CAP_NULL, 0, &c);
    return err ? err : cap_revoke(c);
}

errval_t sc_cap_move(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t src_slot = f->rdi, dst_slot = f->rsi;
    struct cte *src, *dst;
    errval_t err = user_src_dst(d, src_slot, dst_slot, &src, &dst);
    if (!err)
        err = cap_move(src, dst);
    if (!err)
        vspace_cap_moved(dst);
    return err;
}

/* Re-create, as a new root on this core, a capability another core's
 * monitor described (monitor/capops.c). Only types that name memory or a
 * core may cross: RAM, Frames and the page-table types inside some core's
 * user RAM (never kernel memory), DevFrames outside every range the memory
 * map lists, and Notify capabilities. Dispatchers, endpoints, CNodes, the
 * Kernel capability, IRQ and IO ranges stay on the core that made them.
 * The new root is FOREIGN (its owner is the describing core). Ownership
 * never moves here (yet): a non-foreign page table made from another
 * core's memory would be mappable while that core's kernel owns it. */
errval_t sc_cap_create(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t kernel_slot = f->rdi, identity = f->rsi, dst_slot = f->rdx;
    struct cte *kernel, *dst;
    struct cap_identity id;
    errval_t err = user_cap(d, kernel_slot, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = copy_from_user(d, &id, identity, sizeof id);
    if (!err)
        err = user_slot(d, dst_slot, &dst);
    if (err)
        return err;
    if (id.rights & ~CAP_RIGHTS_ALL)
        return ERR_INVALID_ARG;
    if (id.flags)
        return ERR_INVALID_ARG;
    struct capability c = { .type = (uint8_t)id.type, .rights = (uint8_t)id.rights, .base = id.base,
                            .bytes = id.bytes };
    switch (id.type) {
    case CAP_RAM:
    case CAP_FRAME:
    case CAP_VNODE_PML4:
    case CAP_VNODE_PDPT:
    case CAP_VNODE_PD:
    case CAP_VNODE_PT:
        if (id.badge || id.base % CAP_PAGE_SIZE || id.bytes % CAP_PAGE_SIZE)
            return ERR_BAD_ALIGNMENT;
        if (!boot_user_memory(id.base, id.bytes))
            return ERR_BAD_ADDRESS;
        break;
    case CAP_DEVFRAME:
        if (id.badge || id.base % CAP_PAGE_SIZE || id.bytes % CAP_PAGE_SIZE)
            return ERR_BAD_ALIGNMENT;
        if (!boot_device_memory(id.base, id.bytes))
            return ERR_BAD_ADDRESS;
        break;
    case CAP_NOTIFY:
        /* The cores [base, base + bytes): one, or a range (span dispatchers). */
        if (id.badge || id.bytes == 0 || id.base >= boot_topology()->ncpus ||
            id.bytes > boot_topology()->ncpus - id.base)
            return ERR_INVALID_ARG;
        break;
    default:
        return ERR_CAP_NOT_TRANSFERABLE;
    }
    /* A Notify capability names a core, not an object: it has no owner. */
    if (id.type == CAP_NOTIFY)
        return cap_install_root(dst, &c);
    return cap_install_foreign(dst, &c);
}

/* On ERR_MAP_NO_TABLE, value = the level of the missing table (3 PDPT,
 * 2 PD, 1 PT): the caller supplies it and maps again. */
errval_t sc_map(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    uint64_t pml4_slot = f->rdi, vaddr = f->rsi, src_slot = f->rdx, flags = f->r10;
    struct cte *pml4, *src;
    errval_t err = user_cap(d, pml4_slot, CAP_VNODE_PML4, 0, &pml4);
    if (!err)
        err = user_cap(d, src_slot, CAP_NULL, 0, &src);
    if (err)
        return err;
    /* A span dispatcher's tables are its home core's to change. */
    if (d->span_home)
        return ERR_NOT_SUPPORTED;
    /* Another core's page tables: their shadow pages hold that kernel's
     * pointers, which this one must never follow or write (issue 12 decides
     * how a spanning domain shares tables). Frames of any core map. */
    if ((cap_original_of(pml4)->cap.relations & CAP_REL_FOREIGN) ||
        (src->cap.type != CAP_FRAME && src->cap.type != CAP_DEVFRAME &&
         (cap_original_of(src)->cap.relations & CAP_REL_FOREIGN)))
        return ERR_CAP_FOREIGN;
    if (flags > 0xffffffffu)
        return ERR_INVALID_ARG;
    int missing = 0;
    err = vspace_map(pml4->cap.base, vaddr, src, (uint32_t)flags, &missing);
    *value = (uint64_t)missing;
    return err;
}

errval_t sc_unmap(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    struct cte *c;
    errval_t err = user_cap(d, f->rdi, CAP_NULL, 0, &c);
    if (!err && !c->cap.mapped)
        err = ERR_NOT_MAPPED;
    if (err)
        return err;
    vspace_unmap(c);
    /* The caller shoots down with the protocol it chose (span_unmap), or
     * not at all; the memory must not be reused before some flush has run
     * everywhere: the removal of this capability does one (span_flush.h). */
    if (span_flush_spanning())
        c->cap.flush_owed = 1;
    return ERR_OK;
}

errval_t sc_protect(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    struct cte *c;
    errval_t err = user_cap(d, f->rdi, CAP_NULL, 0, &c);
    if (!err && d->span_home)
        err = ERR_NOT_SUPPORTED;   /* the home core changes the tables */
    if (!err && f->rsi > 0xffffffffu)
        err = ERR_INVALID_ARG;
    return err ? err : vspace_protect(c, (uint32_t)f->rsi);
}
