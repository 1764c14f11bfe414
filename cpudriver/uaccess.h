/*
 * What a system call may touch of its caller: user memory (checked against
 * the caller's page tables, SMAP opened only for the copy) and the slots of
 * its CSpace.
 */
#ifndef ATOLL_UACCESS_H
#define ATOLL_UACCESS_H
#include <atoll/abi/caps.h>
#include <atoll/abi/errors.h>
#include <stdint.h>
#include "cap.h"
#include "dispatcher.h"

errval_t copy_from_user(struct dispatcher *d, void *dst, uint64_t src, uint64_t n);
errval_t copy_to_user(struct dispatcher *d, uint64_t dst, const void *src, uint64_t n);

/* The caller's root CNode, as a capability to look slots up in. */
struct capability user_cspace(struct dispatcher *d);
/* Slot `i` of the caller's CSpace, any content. */
errval_t user_slot(struct dispatcher *d, uint64_t i, struct cte **out);
/* Slot `i`, which must hold a capability of `type` (CAP_NULL: any) with
 * `rights`. */
errval_t user_cap(struct dispatcher *d, uint64_t i, enum cap_type type, uint32_t rights, struct cte **out);
/* The two slots of a copy, mint or move: a full source (any type) and a
 * destination slot of any content (the operation checks it is empty). */
errval_t user_src_dst(struct dispatcher *d, uint64_t src_slot, uint64_t dst_slot, struct cte **src,
                      struct cte **dst);
#endif
