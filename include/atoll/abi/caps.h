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
    CAP_NOTIFY,        /* send notifications (wake-up IPIs) to one core: base = core */
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
