/*
 * System calls: find the handler for the number in rax, run it, resume the
 * caller with its error in rax and its value in rdx. Argument rules and
 * errors are in docs/syscalls.md; the handlers are in syscall_*.c.
 */
#include <atoll/abi/syscall.h>
#include "syscall.h"
#include "dispatcher.h"
#include "panic.h"
#include "span_flush.h"

static syscall_fn *const syscalls[SYS_COUNT] = {
    [SYS_YIELD] = sc_yield,
    [SYS_PRINT] = sc_print,
    [SYS_EXIT] = sc_exit,
    [SYS_CAP_IDENTIFY] = sc_cap_identify,
    [SYS_CAP_RETYPE] = sc_cap_retype,
    [SYS_CAP_COPY] = sc_cap_copy,
    [SYS_CAP_MINT] = sc_cap_mint,
    [SYS_CAP_DELETE] = sc_cap_delete,
    [SYS_CAP_REVOKE] = sc_cap_revoke,
    [SYS_CAP_MOVE] = sc_cap_move,
    [SYS_MAP] = sc_map,
    [SYS_UNMAP] = sc_unmap,
    [SYS_LMP_SEND] = sc_lmp_send,
    [SYS_LMP_RECV] = sc_lmp_recv,
    [SYS_LMP_CALL] = sc_lmp_call,
    [SYS_SPAWN] = sc_spawn,
    [SYS_DOMAIN_INFO] = sc_domain_info,
    [SYS_CORE_INFO] = sc_core_info,
    [SYS_IO_IN] = sc_io_in,
    [SYS_IO_OUT] = sc_io_out,
    [SYS_CONSOLE_READ] = sc_console_read,
    [SYS_POWEROFF] = sc_poweroff,
    [SYS_SET_PRIORITY] = sc_set_priority,
    [SYS_NOTIFY] = sc_notify,
    [SYS_NOTIFY_WAIT] = sc_notify_wait,
    [SYS_CAP_CREATE] = sc_cap_create,
    [SYS_DOMAIN_ENDED] = sc_domain_ended,
    [SYS_DOMAIN_KILL] = sc_domain_kill,
    [SYS_MODULE_READ] = sc_module_read,
    [SYS_CAPOPS] = sc_capops,
    [SYS_CAP_NOTICE] = sc_cap_notice,
    [SYS_SPAN] = sc_span,
    [SYS_PROTECT] = sc_protect,
    [SYS_TLB_INVALIDATE] = sc_tlb_invalidate,
    [SYS_TLB_IPI] = sc_tlb_ipi,
};

/* What a capability operation did to the caller itself. */
static bool caller_gone(struct dispatcher *d) { return dispatcher_current() != d || !d->pml4 || !d->cnode_base; }

void syscall_handler(struct trap_frame *f)
{
    struct dispatcher *d = dispatcher_current();
    if (!d)
        panic("system call with no current dispatcher");
    d->regs = *f;
    uint64_t value = 0;
    errval_t err = ERR_BAD_SYSCALL;
    if (f->rax < SYS_COUNT && syscalls[f->rax])
        err = syscalls[f->rax](d, f, &value);
    /* What it unmapped in a spanning domain is forgotten everywhere before
     * anything can reuse the memory (span_flush.h). */
    span_flush_settle();
    if (caller_gone(d))
        schedule();   /* it deleted its own dispatcher, CSpace or VSpace */
    d->regs.rax = err;
    d->regs.rdx = value;
    dispatcher_run(d);
}
