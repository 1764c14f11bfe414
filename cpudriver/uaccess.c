/*
 * User memory and CSpace slots as system calls reach them (uaccess.h).
 */
#include "uaccess.h"
#include "core.h"
#include "lib.h"
#include "vspace.h"

/* User memory is touched only between these (SMAP). */
static inline void user_access_begin(void)
{
    if (core.smap)
        __asm__ volatile("stac" ::: "memory");
}
static inline void user_access_end(void)
{
    if (core.smap)
        __asm__ volatile("clac" ::: "memory");
}

errval_t copy_from_user(struct dispatcher *d, void *dst, uint64_t src, uint64_t n)
{
    if (!vspace_user_range_ok(d->pml4, src, n, false))
        return ERR_BAD_ADDRESS;
    user_access_begin();
    memcpy(dst, (const void *)src, n);
    user_access_end();
    return ERR_OK;
}

errval_t copy_to_user(struct dispatcher *d, uint64_t dst, const void *src, uint64_t n)
{
    if (!vspace_user_range_ok(d->pml4, dst, n, true))
        return ERR_BAD_ADDRESS;
    user_access_begin();
    memcpy((void *)dst, src, n);
    user_access_end();
    return ERR_OK;
}

struct capability user_cspace(struct dispatcher *d)
{
    return (struct capability){ .type = CAP_CNODE, .bits = d->cnode_bits, .base = d->cnode_base };
}

errval_t user_slot(struct dispatcher *d, uint64_t i, struct cte **out)
{
    struct capability cn = user_cspace(d);
    return cap_slot(&cn, i, out);
}

errval_t user_cap(struct dispatcher *d, uint64_t i, enum cap_type type, uint32_t rights, struct cte **out)
{
    errval_t err = user_slot(d, i, out);
    if (err)
        return err;
    if ((*out)->cap.type == CAP_NULL)
        return ERR_CAP_EMPTY;
    if (type != CAP_NULL && (*out)->cap.type != type)
        return ERR_CAP_TYPE;
    if (((*out)->cap.rights & rights) != rights)
        return ERR_CAP_RIGHTS;
    return ERR_OK;
}

errval_t user_src_dst(struct dispatcher *d, uint64_t src_slot, uint64_t dst_slot, struct cte **src,
                      struct cte **dst)
{
    errval_t err = user_cap(d, src_slot, CAP_NULL, 0, src);
    return err ? err : user_slot(d, dst_slot, dst);
}
