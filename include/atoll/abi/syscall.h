/*
 * The system-call interface between user domains and the CPU driver.
 *
 * Calling convention (the `syscall` instruction):
 *   rax = number (enum syscall_nr), arguments in rdi, rsi, rdx, r10, r8, r9.
 *   Returns rax = errval_t, rdx = a result value; lmp_recv and lmp_call also
 *   return a message in rsi, rdi, r8, r10 (words 0-3) and r9 (badge).
 *   rcx and r11 are clobbered (the CPU uses them); all else is preserved.
 * Capability arguments are slot numbers in the caller's root CNode.
 * docs/syscalls.md gives each call's arguments and errors.
 */
#ifndef ATOLL_ABI_SYSCALL_H
#define ATOLL_ABI_SYSCALL_H

#include <stdint.h>

enum syscall_nr {
    SYS_YIELD = 0,        /* () let others run */
    SYS_PRINT,            /* (const char *buf, len) write to the console */
    SYS_EXIT,             /* (status) end this domain */
    SYS_CAP_IDENTIFY,     /* (slot, struct cap_identity *out) */
    SYS_CAP_RETYPE,       /* (src, type, size, offset, count, first_dest) */
    SYS_CAP_COPY,         /* (src, dst) */
    SYS_CAP_MINT,         /* (src, dst, rights, badge, base, count) */
    SYS_CAP_DELETE,       /* (slot) */
    SYS_CAP_REVOKE,       /* (slot) */
    SYS_CAP_MOVE,         /* (src, dst) */
    SYS_MAP,              /* (pml4 slot, vaddr, src slot, flags) map a Frame/DevFrame/VNode */
    SYS_UNMAP,            /* (src slot) undo that capability's mapping */
    SYS_LMP_SEND,         /* (endpoint, w0, w1, w2, w3, cap slot or LMP_NO_CAP) */
    SYS_LMP_RECV,         /* (recv slot or LMP_NO_CAP, flags) block for a message */
    SYS_LMP_CALL,         /* (endpoint, w0, w1, w2, w3, cap) send, then receive the reply */
    SYS_SPAWN,            /* (kernel cap, const char *cmd, len, ram slot, disp dest slot) cmd = "module args" */
    SYS_DOMAIN_INFO,      /* (index, struct domain_info *out) domains on this core */
    SYS_CORE_INFO,        /* (struct core_info *out) this core and the machine */
    SYS_IO_IN,            /* (io slot, port, width 1/2/4) -> value */
    SYS_IO_OUT,           /* (io slot, port, width, value) */
    SYS_CONSOLE_READ,     /* (io slot) -> next byte from the serial line, or ERR_WOULD_BLOCK */
    SYS_POWEROFF,         /* (kernel cap, status) end the whole machine (boot core only) */
    SYS_SET_PRIORITY,     /* (dispatcher slot, priority 1..100) share of the core */
    SYS_NOTIFY,           /* (notify slot) wake the domains waiting on that core */
    SYS_NOTIFY_WAIT,      /* (token, timeout us or 0) sleep unless token is stale -> generation */
    SYS_CAP_CREATE,       /* (kernel cap, const struct cap_identity *, dst slot) re-create a
                             capability another core's monitor described (RAM, Frame, DevFrame,
                             the page-table types, Notify): FOREIGN (moving ownership is not
                             built: no flags) */
    SYS_DOMAIN_ENDED,     /* (kernel cap, struct domain_end *out) the next domain of this core
                             that ended: ERR_WOULD_BLOCK when none, ERR_TOO_MANY once if some
                             were lost (rescan) */
    SYS_DOMAIN_KILL,      /* (kernel cap, dispatcher slot) end that domain now */
    SYS_MODULE_READ,      /* (const char *name, name len, offset, buf, len) -> bytes copied
                             (len 0: the module's size) from a boot module */
    SYS_CAPOPS,           /* (kernel cap, struct capops_call *) a monitor's capability operations
                             on a domain of its core (<atoll/abi/caps.h>) */
    SYS_CAP_NOTICE,       /* (kernel cap) -> the monitor's slot of the next watched capability that
                             lost its last child or was adopted: ERR_WOULD_BLOCK when none,
                             ERR_TOO_MANY once if some were lost (look at every one) */
    SYS_SPAN,             /* (kernel cap, struct span_args *) a dispatcher here for a domain of
                             another core, on that domain's page tables (<atoll/abi/domain.h>) */
    SYS_PROTECT,          /* (src slot, flags) change a mapped Frame's MAP_WRITE / MAP_EXEC; this core's
                             TLB only (a spanning domain asks its monitor for the others') */
    SYS_TLB_INVALIDATE,   /* (kernel cap, home core, home domain, vaddr, pages) this core forgets
                             translations of that domain (its span dispatchers here): the shootdown's
                             step on each core (docs/spanning.md) -> span dispatchers found */
    SYS_TLB_IPI,          /* (kernel cap, const uint64_t cores[4], timeout us) the ipi protocol:
                             interrupt those cores, wait until each has flushed -> cores interrupted */
    SYS_COUNT
};

/* SYS_MAP flags. */
#define MAP_WRITE 0x1u
#define MAP_EXEC  0x2u

#define LMP_NO_CAP     0xffffffffull
#define LMP_RECV_NONBLOCK 0x1u   /* SYS_LMP_RECV: ERR_WOULD_BLOCK instead of waiting */
#define LMP_SEND_MOVE  (1ull << 63)  /* or'ed into the cap argument: move, not copy */

#define DOMAIN_NAME_MAX 32

struct domain_info {
    uint32_t id;          /* unique on this core */
    uint32_t core;
    uint32_t state;       /* enum domain_state */
    uint32_t priority;
    uint64_t cpu_ticks;   /* timer ticks spent running */
    uint64_t ram_bytes;   /* RAM it was given */
    char name[DOMAIN_NAME_MAX];
    /* The core's list of domains changes (a domain starts or ends) and this
     * moves: a listing whose entries do not all carry the same value, or
     * whose first entry carries another afterwards, saw the list change
     * under it (an entry may be missing or twice; domain_list retries). */
    uint64_t list_gen;
};

enum domain_state { DOMAIN_RUNNABLE = 1, DOMAIN_BLOCKED = 2, DOMAIN_STOPPED = 3 };

/* How a domain ended (SYS_DOMAIN_ENDED). */
enum domain_end_reason {
    DOMAIN_END_EXIT = 1,     /* SYS_EXIT: status is its exit status */
    DOMAIN_END_FAULT,        /* an exception: status is the vector */
    DOMAIN_END_KILLED,       /* SYS_DOMAIN_KILL */
    DOMAIN_END_DELETED,      /* its dispatcher or CSpace was deleted (by itself or its RAM's holder) */
};

struct domain_end {
    uint32_t id;          /* the domain's id on this core */
    uint32_t reason;      /* enum domain_end_reason */
    int64_t status;
};

#define CORE_INFO_MAX_NODES 16
#define CORE_INFO_MAX_CORES 512
struct core_info {
    uint32_t core_id, apic_id, node;
    uint32_t ncores;          /* cores in the machine */
    uint32_t nnodes;
    uint64_t tsc_hz;
    uint32_t timer_hz;        /* scheduler ticks per second (`wait TICKS`) */
    uint32_t cores_known;     /* 1: core_up says which cores came up (the boot core only) */
    uint64_t node_mem_bytes[CORE_INFO_MAX_NODES];   /* per NUMA node, from SRAT */
    uint32_t node_cores[CORE_INFO_MAX_NODES];
    uint16_t core_node[CORE_INFO_MAX_CORES];        /* node of every core (ncores of them) */
    uint16_t node_distance[CORE_INFO_MAX_NODES][CORE_INFO_MAX_NODES];   /* SLIT, 10 = local */
    uint8_t core_up[CORE_INFO_MAX_CORES];           /* cores_known: 1 if the core checked in at boot */
    /* This core's timer: scheduler ticks, timer interrupts taken, and idle
     * waits with the periodic timer stopped (docs/user-space.md, Idle). */
    uint64_t ticks, timer_irqs, idle_stops;
    uint32_t periodic;        /* 1: the kernel command line's `periodic` (idle cores tick too) */
};

#endif
