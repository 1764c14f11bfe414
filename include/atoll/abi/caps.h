/*
 * Capability types and rights, shared by the CPU driver and user space.
 *
 * A capability names a kernel object or a range of physical memory; user code
 * holds only slot numbers in its CNode, never the capability itself, so it
 * cannot forge one. docs/capabilities.md describes every type and operation.
 */
#ifndef ATOLL_ABI_CAPS_H
#define ATOLL_ABI_CAPS_H

#include <stdint.h>

enum cap_type {
    CAP_NULL = 0,      /* empty slot */
    CAP_RAM,           /* untyped physical RAM: retype it into objects */
    CAP_FRAME,         /* mappable RAM, a multiple of 4 KiB */
    CAP_DEVFRAME,      /* mappable device memory (not RAM), mapped uncached */
    CAP_CNODE,         /* a table of 2^bits capability slots */
    CAP_VNODE_PML4,    /* x86-64 page-table levels, one 4 KiB table each */
    CAP_VNODE_PDPT,
    CAP_VNODE_PD,
    CAP_VNODE_PT,
    CAP_DISPATCHER,    /* a schedulable context: registers, CSpace, VSpace */
    CAP_ENDPOINT,      /* send local messages to a dispatcher (with a badge) */
    CAP_IRQ,           /* a range of interrupt vectors */
    CAP_IO,            /* a range of I/O ports */
    CAP_KERNEL,        /* the monitor's: operations on the core itself */
    CAP_NOTIFY,        /* send notifications (wake-up IPIs) to cores [base, base + bytes) */
    CAP_TYPE_COUNT
};

/* Rights. Copy keeps them, mint can only take some away. */
#define CAP_RIGHT_READ  0x1u   /* read a frame, receive on a dispatcher */
#define CAP_RIGHT_WRITE 0x2u   /* write a frame, send on an endpoint */
#define CAP_RIGHT_EXEC  0x4u   /* map a frame executable */
#define CAP_RIGHT_GRANT 0x8u   /* pass capabilities through an endpoint */
#define CAP_RIGHTS_ALL  0xfu

#define CAP_PAGE_SIZE     4096u
#define CAP_CTE_SIZE      64u       /* bytes per CNode slot */
#define CAP_CNODE_MIN_BITS 1u
#define CAP_CNODE_MAX_BITS 16u
#define CAP_DISPATCHER_SIZE 4096u
/* A VNode is its 4 KiB hardware table followed by a 4 KiB shadow the kernel
 * keeps: for each entry, the capability mapped there (so a dying table can
 * tell its mappings, and a dying mapping its table). */
#define CAP_VNODE_SIZE    8192u

/* What identify reports about a capability. */
struct cap_identity {
    uint32_t type;      /* enum cap_type */
    uint32_t rights;
    uint64_t base;      /* physical address, first port or vector, or 0 */
    uint64_t bytes;     /* size in bytes, ports or vectors, or slots for a CNode */
    uint64_t badge;     /* endpoints */
    uint32_t flags;     /* CAP_ID_*: what identify saw (ignored by SYS_CAP_CREATE) */
    uint32_t reserved;
};
#define CAP_ID_ORIGINAL      0x1u   /* made by retype: deleting it destroys the object */
#define CAP_ID_HAS_CHILDREN  0x2u   /* copies or objects derive from it on this core */
#define CAP_ID_FOREIGN       0x4u   /* re-created from another core's description (CAP_REL_FOREIGN) */
#define CAP_ID_REMOTE        0x8u   /* a monitor's anchor for copies on other cores (CAP_REL_REMOTE) */
#define CAP_ID_WATCH         0x10u  /* its monitor hears when it loses its last child (CAP_REL_WATCH) */
#define CAP_ID_ORPHAN        0x20u  /* an anchor kept when what it hung from was removed (CAP_REL_ORPHAN) */

/* How a capability relates to other cores (docs/capabilities.md, "Across
 * cores"). The kernel sets FOREIGN (SYS_CAP_CREATE) and ORPHAN; a monitor
 * sets REMOTE and WATCH on its own slots (SYS_CAPOPS). */
#define CAP_REL_FOREIGN 0x1u   /* the object belongs to another core: removing this destroys nothing,
                                  retyping it (or a copy) needs the owner's agreement */
#define CAP_REL_REMOTE  0x2u   /* an anchor: stands for the object's copies on other cores; a delete or
                                  revoke that would remove it is refused (ERR_CAP_REMOTE) */
#define CAP_REL_WATCH   0x4u   /* the monitor gets a notice (SYS_CAP_NOTICE) when it loses its last
                                  child or is adopted */
#define CAP_REL_ORPHAN  0x8u   /* an anchor the kernel kept when the capabilities above it died with a
                                  CNode: its monitor must revoke the copies elsewhere */

/* SYS_CAPOPS: what a monitor does to the capabilities of the domains of its
 * core for the cross-core protocols (monitor/capops.c). Slots named `slot`
 * and `first` are in the domain's CSpace, `dst` and the results in the
 * monitor's own. */
enum capops_op {
    CAPOPS_LINEAGE = 1,   /* slot's object: its original here (root), and the monitor's anchor */
    CAPOPS_FIND_REMOTE,   /* the first anchor in slot's subtree (anchor); count 1: slot included */
    CAPOPS_REVOKE,        /* SYS_CAP_REVOKE for the domain; ERR_CAP_REMOTE names the anchor in the way */
    CAPOPS_DELETE,        /* SYS_CAP_DELETE for the domain; the same */
    CAPOPS_RETYPE_CHECK,  /* every check of SYS_CAP_RETYPE but the owner's agreement: root, base, bytes */
    CAPOPS_RETYPE,        /* the retype, agreed: the range (whole pages) becomes a RAM envelope in dst,
                             the objects its children in the domain's slots first..; in: root, base, bytes
                             as RETYPE_CHECK gave them when the owner was asked (else ERR_CAP_REMOTE) */
    CAPOPS_ANCHOR,        /* dst = a copy of slot's original (a child of it), CAP_REL_REMOTE | WATCH */
    CAPOPS_RELATE,        /* the monitor's slot: relations |= set, &= ~clear (REMOTE, WATCH, ORPHAN) */
    CAPOPS_VSPACE,        /* dst = a copy of slot, which must be the PML4 the domain runs on (spanning:
                             docs/spanning.md); else ERR_CAP_TYPE. count = the core the copy is for
                             (recorded by the kernel: the domain's end and unmaps take it into account) */
    CAPOPS_HAND_OVER,     /* delete the domain's original slot, its anchor becoming the object's original
                             (the object lives while copies elsewhere do); ERR_CAP_REMOTE names another
                             anchor in the way (anchor), nothing changed */
    CAPOPS_TAKE_OVER,     /* the monitor's own FOREIGN root of a RAM, Frame or DevFrame becomes this core's
                             original (ownership moved here: monitor/capops.c); count 1: back to FOREIGN
                             (an undo: only with no anchor under it) */
    CAPOPS_REVOKE_SIBLINGS, /* the domain's slot is a copy: every other copy of its parent (the monitor's
                             root of an object from another core), with what descends from it, goes, but
                             those with an anchor below (count: how many were kept for that) */
    CAPOPS_HAND_OVER_ANCHOR, /* the monitor's own anchor slot: its original, wherever it lives on this core,
                             is handed over as CAPOPS_HAND_OVER does (a holder's revoke takes the owner
                             core's copies); ERR_INVALID_ARG if the anchor is the original already */
};
#define CAPOPS_NO_SLOT (~0ull)

struct capops_call {
    uint32_t op;          /* enum capops_op */
    uint32_t disp;        /* the monitor's slot of a Dispatcher capability naming the domain; 0: itself */
    uint64_t slot;
    uint32_t type, count; /* retype */
    uint64_t size, offset, first;
    uint64_t dst;
    uint32_t set, clear;  /* relate */
    /* out */
    uint64_t root;        /* the monitor's slot of the object's original here (CAPOPS_NO_SLOT: not its) */
    uint64_t anchor;      /* the monitor's slot of an anchor (CAPOPS_NO_SLOT: none) */
    uint32_t root_flags;  /* CAP_ID_* of that original */
    uint32_t rights;      /* LINEAGE: the rights of the capability asked about */
    uint64_t base, bytes; /* RETYPE_CHECK, RETYPE: the whole pages the objects lie in */
};

/* Readable names, "RAM", "Frame", ... */
static inline const char *cap_type_name(uint32_t t)
{
    static const char *const names[CAP_TYPE_COUNT] = {
        "Null", "RAM", "Frame", "DevFrame", "CNode", "PML4", "PDPT", "PD", "PT",
        "Dispatcher", "Endpoint", "IRQ", "IO", "Kernel", "Notify",
    };
    return t < CAP_TYPE_COUNT ? names[t] : "Invalid";
}

#endif
