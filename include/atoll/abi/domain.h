/*
 * What every user domain finds when it starts: well-known capability slots
 * in its root CNode, its virtual address layout, and the start-up page.
 * Shared by the CPU driver (which builds domains) and lib/ (crt0, heap).
 */
#ifndef ATOLL_ABI_DOMAIN_H
#define ATOLL_ABI_DOMAIN_H

#include <stdint.h>

/* Well-known slots in a domain's root CNode. */
enum {
    SLOT_NULL = 0,
    SLOT_ROOT_CNODE = 1,   /* this CNode itself */
    SLOT_PML4 = 2,         /* this domain's address space */
    SLOT_DISPATCHER = 3,   /* itself */
    SLOT_RAM = 4,          /* RAM for its heap and anything it builds */
    SLOT_KERNEL = 5,       /* monitors only */
    SLOT_IO = 6,           /* I/O ports it may use (monitor: all; shell: COM1) */
    SLOT_STARTUP = 7,      /* the start-up page (read-only frame) */
    SLOT_MONITOR_EP = 8,   /* endpoint to this core's monitor (not for monitors) */
    SLOT_MACHINE = 9,      /* the machine as the CPU driver found it at boot: a
                              read-only frame, struct machine of <atoll/abi/machine.h> */
    SLOT_SPAN_NOTIFY = 10, /* a span dispatcher (below): a Notify capability
                              for every core (SYS_NOTIFY names one) */
    SLOT_SPAN_HOME = 11,   /* a span dispatcher: the home domain's PML4 (a
                              FOREIGN copy); it runs while it holds it */
    SLOT_FIRST_FREE = 32,  /* lib/'s slot allocator starts here... */
    SLOT_BOOT_CHANNELS = 3072, /* ...and stops below. Monitors: the boot
                                 channel frames shared between core 0's
                                 monitor and core N's (core 0's monitor has
                                 one per core at +N, the others one at +0) */
    SLOT_LOADER_FIRST = 3840, /* the CPU driver's loader puts the program's
                                 frames and page tables here */
};

#define DOMAIN_ROOT_CNODE_BITS 12   /* 4096 slots */

/* Virtual layout (all below the canonical hole). */
#define USER_MIN          0x0000000000400000ull   /* programs link at 4 MiB */
#define USER_MAX          0x0000800000000000ull   /* exclusive */
#define USER_STARTUP_VA   0x0000000000200000ull   /* start-up page, read-only */
#define USER_HEAP_BASE    0x0000100000000000ull   /* lib/'s heap grows up from here */
#define USER_HEAP_MAX     0x0000200000000000ull
#define USER_MAP_BASE     0x0000200000000000ull   /* lib/'s other mappings */
#define USER_STACK_TOP    0x00007fffffff0000ull
#define USER_STACK_SIZE   (64 * 1024)

/* The start-up page at USER_STARTUP_VA; crt0 gets its address in rdi. */
#define STARTUP_MAGIC 0x41544f4c4c5354ull   /* "ATOLLST" */
struct startup_info {
    uint64_t magic;
    uint32_t core_id;
    uint32_t ncores;
    uint32_t domain_id;
    uint32_t is_monitor;
    uint64_t ram_bytes;         /* size of the RAM capability in SLOT_RAM */
    uint64_t tsc_hz;
    char name[32];
    char args[256];             /* the module's command line after its name */
};

/* SYS_SPAN: a *span dispatcher*, a domain's dispatcher on a core other than
 * its home core (docs/spanning.md). A monitor makes it from SPAN_RAM_BYTES
 * of its RAM: a root CNode of 2^SPAN_CNODE_BITS slots (SLOT_ROOT_CNODE,
 * SLOT_DISPATCHER, SLOT_PML4: this core's root table for it, SLOT_MONITOR_EP,
 * SLOT_MACHINE, SLOT_SPAN_NOTIFY, SLOT_SPAN_HOME), the dispatcher and its
 * root table, whose user half points at the home domain's tables. Slots
 * named here are the monitor's. */
#define SPAN_CNODE_BITS 4
#define SPAN_RAM_BYTES (16u * 1024)
struct span_args {
    uint64_t ram;           /* RAM, SPAN_RAM_BYTES exactly, no children */
    uint64_t home_pml4;     /* the home domain's PML4 (FOREIGN: another core's): moved in */
    uint64_t notify;        /* a Notify capability whose cores include the home core */
    uint64_t disp_dest;     /* an empty slot: a copy of the new dispatcher */
    uint64_t rip, rsp, arg; /* where it starts; arg in rdi */
    uint32_t home_core, home_domain;
    char name[32];
    uint64_t id;            /* out: its domain id on this core */
};

#endif
