/*
 * Capabilities inside one CPU driver: slots (CTEs), the derivation tree, and
 * the operations on them. Pure logic: everything the kernel must do to memory
 * or objects (zeroing, unmapping, stopping a dispatcher) goes through
 * struct cap_hooks, so the same code runs in the host unit tests.
 *
 * Derivation. Every capability but the boot-time roots has a parent: retype
 * makes objects children of the RAM they came from; copy and mint make
 * children of their source. The tree is per core. What crosses cores does
 * so through the monitors (monitor/capops.c), and the tree only carries
 * marks for it (relations, below): a capability re-created from another
 * core's description is FOREIGN, and a monitor's anchor (REMOTE) stands in
 * the tree for the object's copies on other cores, so that a delete or
 * revoke that would reach them is refused (ERR_CAP_REMOTE) and done by the
 * monitors instead.
 *
 * Rules (docs/capabilities.md):
 *  - revoke(c): every descendant of c is deleted, c stays.
 *  - delete(c): revoke(c), then c goes. If c was the *original* capability
 *    of an object (made by retype), the object is destroyed: every other
 *    capability to it descends from c, so none can dangle.
 *  - retype(ram, ...): the new objects must lie inside the RAM capability and
 *    must not overlap any object already carved from that RAM (through it or
 *    through any copy of it); RAM is reusable once those objects are gone.
 *  - move(src, dst): the capability changes slot, keeping its place in the
 *    tree (used to hand a capability over without keeping a copy).
 */
#ifndef ATOLL_CAP_H
#define ATOLL_CAP_H

#include <stdbool.h>
#include <stdint.h>
#include <atoll/abi/caps.h>
#include <atoll/abi/errors.h>

struct capability {
    uint8_t type;        /* enum cap_type */
    uint8_t rights;      /* CAP_RIGHT_* */
    uint8_t original;    /* made by retype (or at boot): owns its object */
    uint8_t bits;        /* CNode: log2(slots) */
    uint8_t relations;   /* CAP_REL_*: how it relates to other cores */
    uint8_t flush_owed;  /* unmapped by SYS_UNMAP in a core with spanning domains: its
                            removal shoots down (span_flush.h) */
    uint8_t reserved[2];
    uint64_t base;       /* physical address; first port; first vector; object */
    uint64_t bytes;      /* bytes; port count; vector count */
    union {
        uint64_t badge;  /* Endpoint */
        uint64_t mapped; /* Frame, DevFrame, VNode: physical address of the
                            first page-table entry mapping it, 0 if unmapped */
    };
};

struct cte {
    struct capability cap;
    struct cte *parent;
    struct cte *first_child;
    struct cte *next, *prev;   /* siblings */
};
_Static_assert(sizeof(struct cte) == CAP_CTE_SIZE, "CNode slots are 64 bytes");

/* How cap.c reaches memory and objects. ptr and zero are required; unlinked
 * and destroyed may be NULL. Hooks must not call cap_* operations (delete and
 * revoke keep a worklist in the slots while they run). */
struct cap_hooks {
    /* Kernel pointer to `bytes` at physical `phys` (CNode slots). */
    void *(*ptr)(uint64_t phys);
    /* Fill new objects' memory with zeros (no data leaks between users): one
     * call per retype, for all the objects it makes. Not called for RAM
     * children: RAM is never readable as RAM, only the objects made from it,
     * and those are zeroed when they are made. */
    void (*zero)(uint64_t phys, uint64_t bytes);
    /* A capability is about to leave its slot for good (delete, revoke; not
     * move): undo its mapping. It has no children left and is still linked. */
    void (*unlinked)(struct cte *c);
    /* The object of original capability `cap` is destroyed: stop it, free
     * what it holds. Called after its descendants are gone; for a CNode after
     * all its slots were deleted. A RAM capability's call may come before
     * CNodes carved from it have been emptied within the same operation: no
     * memory is reused until the operation returns. */
    void (*destroyed)(const struct capability *cap);
    /* A CAP_REL_WATCH capability lost its last child, or an anchor was
     * adopted (CAP_REL_ORPHAN): tell its monitor. May be NULL. */
    void (*notice)(struct cte *c);
};

/* Copies *h (per core: every core calls it once). */
void cap_set_hooks(const struct cap_hooks *h);

/* Bytes one object of `type` takes; for RAM/Frame/DevFrame `size` itself,
 * for a CNode 64 << bits (`size` = bits); VNodes and dispatchers have a fixed
 * size (CAP_VNODE_SIZE, CAP_DISPATCHER_SIZE) and `size` must be 0 or exactly
 * that. 0 if invalid (bad type, size not a positive multiple of 4 KiB, bits
 * out of range, wrong fixed size). */
uint64_t cap_object_bytes(enum cap_type type, uint64_t size);

/* Slot `index` of CNode capability `cnode`: ERR_CAP_TYPE, ERR_CAP_SLOT_RANGE,
 * ERR_INVALID_ARG (NULL). Rights on the CNode are the caller's business. */
errval_t cap_slot(const struct capability *cnode, uint64_t index, struct cte **out);

/* Make `count` objects of `type` (and size/bits `size`) from RAM capability
 * `src`, starting `offset` bytes into it, placed in the empty slots
 * dest[first .. first+count) of CNode capability `dest_cnode`. They are
 * originals, children of src, with src's rights (never more than the RAM
 * had); src needs CAP_RIGHT_WRITE.
 * Errors, checked in this order: ERR_CAP_EMPTY (src NULL or empty),
 * ERR_CAP_TYPE (src not RAM; type not retypable: Null, DevFrame, Endpoint,
 * IRQ, IO, Kernel), ERR_CAP_RIGHTS (src lacks WRITE), ERR_RETYPE_SIZE,
 * ERR_INVALID_ARG (count 0), ERR_BAD_ALIGNMENT (offset not a multiple of
 * min(object bytes, 4 KiB): objects are aligned to their size up to 4 KiB),
 * ERR_RETYPE_OVERFLOW (past the end of src, or arithmetic overflow),
 * ERR_INVALID_ARG (dest_cnode NULL), ERR_CAP_TYPE (dest_cnode not a CNode),
 * ERR_CAP_SLOT_RANGE, ERR_CAP_OCCUPIED, ERR_OVERLAP (an object already carved
 * from the same RAM overlaps), ERR_CAP_REMOTE (src descends from a FOREIGN
 * root: the RAM's owner core must agree, cap_retype_agreed). Nothing changes
 * on error. */
errval_t cap_retype(struct cte *src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                    const struct capability *dest_cnode, uint64_t first);

/* Copy, mint and move: ERR_CAP_EMPTY (src NULL or empty), ERR_INVALID_ARG
 * (dst NULL), ERR_CAP_SAME_SLOT, ERR_CAP_OCCUPIED; nothing changes on error.
 * Copies never carry relations (a copy of an anchor is a plain copy); an
 * anchor or a watched capability cannot move (ERR_CAP_REMOTE): its monitor
 * names it by its slot. */

/* A child of `src` in empty slot `dst` with the same rights; never original,
 * never mapped. */
errval_t cap_copy(struct cte *src, struct cte *dst);

/* A child of `src` in `dst` with rights src.rights & rights. Endpoint from a
 * Dispatcher (with `badge`, 0 for none), or an Endpoint with a new badge if
 * src has none (badge 0 keeps src's); IO and IRQ capabilities can be narrowed
 * to [base, base+count) inside theirs (count 0: keep the range, base must be
 * 0). Every other type: rights reduction only. ERR_INVALID_ARG for rights
 * bits outside CAP_RIGHTS_ALL or a badge/base/count the type does not take;
 * ERR_CAP_RIGHTS if a badge is set on an already badged endpoint;
 * ERR_PORT_RANGE if the narrowed range leaves src. */
errval_t cap_mint(struct cte *src, struct cte *dst, uint32_t rights, uint64_t badge, uint64_t base,
                  uint64_t count);

/* ERR_CAP_EMPTY if c is NULL or empty; ERR_CAP_REMOTE, with nothing
 * changed, if an anchor (CAP_REL_REMOTE) is among the capabilities the tree
 * walk would remove (c itself too, for delete): copies on other cores
 * descend from it, and the monitors must remove them first. An anchor met
 * inside a CNode that dies in the operation cannot be refused: it is
 * adopted instead (moved up to the nearest capability that survives, made
 * the object's original if its original dies, marked CAP_REL_ORPHAN, its
 * monitor told), so the object outlives the operation until the monitors
 * revoke its copies. Neither recurses: any depth of tree or of CNodes
 * inside CNodes is fine. If c lives in a CNode that revoke destroys (c was
 * an ancestor of its original), c goes too. */
errval_t cap_delete(struct cte *c);
errval_t cap_revoke(struct cte *c);
/* The capability changes slot with everything in it (mapped too) and keeps
 * its place in the tree; the caller tells the kernel (vspace_cap_moved). */
errval_t cap_move(struct cte *src, struct cte *dst);

/* Install a root capability (boot time) in an empty slot, with no parent.
 * It is made original; checked: RAM/Frame/DevFrame page-aligned with a size
 * that cap_object_bytes accepts, VNode/Dispatcher bytes the fixed size,
 * CNode bits in range (bytes derived) and aligned, IO within 64 Ki ports and
 * IRQ within 256 vectors (non-empty). ERR_INVALID_ARG, ERR_CAP_OCCUPIED,
 * ERR_CAP_TYPE, ERR_RETYPE_SIZE, ERR_BAD_ALIGNMENT, ERR_RETYPE_OVERFLOW,
 * ERR_PORT_RANGE. Roots must not overlap each other: cap.c cannot check. */
errval_t cap_install_root(struct cte *dst, const struct capability *cap);

/* ---- across cores (docs/capabilities.md, "Across cores") ------------------ */

/* A root re-created from another core's description (SYS_CAP_CREATE): as
 * cap_install_root, marked CAP_REL_FOREIGN. Removing it destroys nothing;
 * cap_retype from it or from anything copied from it is ERR_CAP_REMOTE
 * (cap_retype_agreed, after its owner agreed, is not). */
errval_t cap_install_foreign(struct cte *dst, const struct capability *cap);

/* The original `c` descends from through copies and mints (c itself if it
 * is one): the capability that owns c's object on this core. */
struct cte *cap_original_of(struct cte *c);
/* The anchor (a CAP_REL_REMOTE child) of original `o`, or NULL. */
struct cte *cap_anchor_of(const struct cte *o);
/* The first anchor in c's subtree (c itself too if `self`), or NULL. */
struct cte *cap_find_remote(struct cte *c, bool self);
/* Delete the original `c` while copies of its object live on other cores:
 * its anchor (c's first child, CAP_REL_REMOTE) becomes the object's
 * original in c's place (under c's parent), so the object lives until the
 * monitor drops the anchor, when the last copy elsewhere is gone; then c
 * is deleted as a copy (its local copies and what was carved from it go,
 * as on one core). ERR_INVALID_ARG unless c is an original of this core
 * (not FOREIGN, not an anchor); ERR_NOT_FOUND if it has no anchor;
 * ERR_NOT_PERMITTED if a CNode was carved from it (the anchor could live
 * in memory that dies: the monitor revokes the copies instead);
 * ERR_CAP_REMOTE, nothing changed, with *blocking naming another anchor the
 * delete would meet (an object carved from c with copies elsewhere). */
errval_t cap_hand_over(struct cte *c, struct cte **blocking);
/* cap_hand_over of the original whose anchor is `a` (the monitor's slot;
 * the original lives in some domain's CSpace): a holder core's revoke
 * takes the owner core's copies too (monitor/capops.c, owner_copies_go).
 * ERR_INVALID_ARG unless `a` is an anchor directly under its original (an
 * anchor that is the original already, handed over or adopted, has nothing
 * left to hand over); otherwise cap_hand_over's errors. */
errval_t cap_hand_over_anchor(struct cte *a, struct cte **blocking);
/* Ownership of a FOREIGN root (a RAM, Frame or DevFrame with no parent here)
 * moves to this core: it becomes an ordinary original (retyped here without
 * asking anyone); back: FOREIGN again (an undo; ERR_CAP_REMOTE with an
 * anchor under it). */
errval_t cap_take_over(struct cte *c, bool back);
/* Remove every other child of c's parent (c's siblings, with what descends
 * from them), but anchors and siblings with an anchor below them (*kept
 * counts those): a holder's revoke of its copy takes its siblings on its
 * own core too. */
errval_t cap_revoke_siblings(struct cte *c, uint64_t *kept);

/* dst = a copy of src's original, a child of it, marked CAP_REL_REMOTE |
 * CAP_REL_WATCH: the monitor's anchor for the object's copies elsewhere.
 * ERR_CAP_EMPTY, ERR_INVALID_ARG, ERR_CAP_OCCUPIED; ERR_CAP_FOREIGN if the
 * original is FOREIGN (the owner anchors, not a holder); ERR_DUPLICATE if
 * it has an anchor already. */
errval_t cap_anchor(struct cte *src, struct cte *dst);
/* relations |= set & ~clear; only CAP_REL_REMOTE, _WATCH and _ORPHAN
 * (ERR_INVALID_ARG otherwise). ERR_CAP_EMPTY. */
errval_t cap_relate(struct cte *c, uint32_t set, uint32_t clear);

/* cap_retype's checks, all but ERR_CAP_REMOTE (the owner's agreement, which
 * is what this is for): on success *base and *bytes give the whole pages
 * the objects would lie in, and *original src's original (a FOREIGN root
 * when agreement is needed). */
errval_t cap_retype_check(struct cte *src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                          const struct capability *dest_cnode, uint64_t first, uint64_t *base, uint64_t *bytes,
                          struct cte **original);
/* What the owner agreed to: the original the request was about and the
 * whole pages it reserved. Between the check and the agreement the domain
 * may have moved another capability into src's slot; the agreement holds
 * only for the same original and the same pages. */
struct retype_agreement {
    const struct cte *original;
    uint64_t base, bytes;
};
/* The retype, once its owner agreed: the whole pages the objects lie in
 * become a RAM object in `envelope` (an empty slot: the monitor's, which
 * watches it), a child of src, and the objects are made from the envelope.
 * Errors as cap_retype_check, ERR_INVALID_ARG/ERR_CAP_OCCUPIED for the
 * envelope slot, ERR_INVALID_ARG for no agreement, and ERR_CAP_REMOTE when
 * src's original or the whole pages are not the agreed ones (the owner never
 * agreed to this retype); nothing changes on error. */
errval_t cap_retype_agreed(struct cte *src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                           const struct capability *dest_cnode, uint64_t first, const struct retype_agreement *agreed,
                           struct cte *envelope);

/* An empty (or NULL) slot reads as type Null with all fields 0. bytes is the
 * slot count for a CNode, badge is set only for endpoints. */
void cap_identify(const struct cte *c, struct cap_identity *out);

/* Number of descendants (for tests and the shell). */
uint64_t cap_descendants(const struct cte *c);

#endif
