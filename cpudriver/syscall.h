/*
 * System-call handlers. Each one decodes its arguments from the caller's
 * registers (the convention is in include/atoll/abi/syscall.h), checks them,
 * and acts; it returns the error for rax and may set *value for rdx. A
 * handler that blocks or switches domains does not return.
 *
 * Handlers are named sc_<call>, apart from the library's sys_<call>
 * wrappers that user space calls.
 */
#ifndef ATOLL_SYSCALL_H
#define ATOLL_SYSCALL_H
#include <atoll/abi/errors.h>
#include <stdint.h>
#include "dispatcher.h"
#include "x86_64/trap.h"

typedef errval_t syscall_fn(struct dispatcher *d, const struct trap_frame *f, uint64_t *value);

/* Capabilities and address spaces (syscall_cap.c). */
syscall_fn sc_cap_identify, sc_cap_retype, sc_cap_copy, sc_cap_mint, sc_cap_delete, sc_cap_revoke,
    sc_cap_move, sc_cap_create, sc_map, sc_unmap;
/* What every retype checks first and finishes after (syscall_cap.c): the
 * count and type limits for domain d, and the kernel's part of new
 * page tables and dispatchers in d's slots first.. */
errval_t retype_limits(struct dispatcher *d, uint64_t type, uint64_t count);
void retype_finish(struct dispatcher *d, uint64_t type, uint64_t first, uint64_t count);
/* The monitors' capability operations for the cross-core protocols (syscall_capops.c). */
syscall_fn sc_capops, sc_cap_notice;
syscall_fn sc_span, sc_protect, sc_tlb_invalidate, sc_tlb_ipi;
/* Domains, cores and the machine (syscall_domain.c). */
syscall_fn sc_exit, sc_spawn, sc_domain_info, sc_core_info, sc_set_priority, sc_domain_kill,
    sc_domain_ended, sc_module_read, sc_poweroff;
/* Messages, notifications and the scheduler (syscall_msg.c). */
syscall_fn sc_yield, sc_lmp_send, sc_lmp_recv, sc_lmp_call, sc_notify, sc_notify_wait;
/* The console and I/O ports (syscall_io.c). */
syscall_fn sc_print, sc_io_in, sc_io_out, sc_console_read;

/* The entry from x86_64/isr.S; never returns. */
void syscall_handler(struct trap_frame *f);
#endif
