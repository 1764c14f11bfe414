/*
 * Domains: a user program running on this core, built from a boot module.
 *
 * domain_spawn turns one RAM capability into a whole domain: its root CNode,
 * dispatcher, page tables, program frames, stack, start-up page and, with
 * what is left, the RAM in its SLOT_RAM. Everything is derived from that RAM
 * capability, so deleting (or revoking) it takes the whole domain back.
 */
#ifndef ATOLL_DOMAIN_KERNEL_H
#define ATOLL_DOMAIN_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include "cap.h"
#include "dispatcher.h"

struct spawn_args {
    const char *cmd;            /* "module arg arg..." */
    size_t cmd_len;
    struct cte *ram;            /* RAM without children: the domain's memory */
    struct cte *parent_disp;    /* mint the domain's SLOT_MONITOR_EP from it (or NULL) */
    bool monitor;               /* gets the Kernel and I/O capabilities */
};

errval_t domain_spawn(const struct spawn_args *a, struct dispatcher **out, struct cte **disp_cte);

/* A span dispatcher (SYS_SPAN, docs/spanning.md) from `ram` (SPAN_RAM_BYTES,
 * no children): its own small CSpace and root table, on the page tables of
 * `home_pml4` (a VNode_PML4 of another core), runnable at a->rip. */
struct span_build {
    struct cte *ram, *home_pml4, *notify, *parent_disp;
    const struct span_args *a;
};
errval_t domain_span(const struct span_build *b, struct dispatcher **out, struct cte **disp_cte);

/* A PML4 capability is leaving the tree: a span dispatcher on that root
 * whose CSpace then holds no capability to it (SYS_SPAN put one in
 * SLOT_SPAN_HOME; it may have moved, copied or sent it) stops for good:
 * it never runs on tables it no longer holds. */
void domain_span_home_lost(const struct cte *c);

/* End a domain: stop it, delete its root CNode (and with it everything the
 * domain holds) and print why. */
void domain_kill(struct dispatcher *d, const char *why);
/* An end nobody asked for (no exit, fault or kill: what it was made of
 * went under it): the same domain_exit event, saying `why`, once, before
 * its obituary. */
void domain_ended_under(struct dispatcher *d, const char *why);

/* A user-mode exception: one report line, then domain_kill. */
void domain_fault(struct dispatcher *d, const struct trap_frame *f);

#endif
