/*
 * System-call wrappers for user domains: one C function per call in
 * <atoll/abi/syscall.h>, with the same arguments in the same order. Each returns
 * the kernel's errval_t; results come back through pointer arguments, which
 * may be NULL when unwanted. docs/syscalls.md gives every call's arguments,
 * results and errors.
 *
 * Capability arguments are slot numbers in the domain's root CNode
 * (capslot_t); the well-known ones are in <atoll/abi/domain.h>.
 */
#ifndef ATOLL_LIB_SYSCALL_H
#define ATOLL_LIB_SYSCALL_H

#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/caps.h>
#include <atoll/abi/errors.h>
#include <atoll/abi/domain.h>
#include <atoll/abi/syscall.h>

/* A slot number in this domain's root CNode. */
typedef uint64_t capslot_t;

/* A message as SYS_LMP_RECV and SYS_LMP_CALL deliver it. */
struct lmp_msg {
    uint64_t w[4];    /* words 0-3 (rsi, rdi, r8, r10) */
    uint64_t badge;   /* the badge of the endpoint it came through (r9) */
    uint64_t has_cap; /* rdx: 1 if a capability arrived in the receive slot */
};

/* The raw call: nr and up to six arguments in; rax (the errval_t), rdx and
 * the five message registers out. Every wrapper below is built on it; use it
 * directly only for a call that has no wrapper yet. */
struct syscall_regs {
    uint64_t rax, rdi, rsi, rdx, r10, r8, r9;
};

static inline void syscall_raw(struct syscall_regs *r)
{
    register uint64_t rax __asm__("rax") = r->rax;
    register uint64_t rdi __asm__("rdi") = r->rdi;
    register uint64_t rsi __asm__("rsi") = r->rsi;
    register uint64_t rdx __asm__("rdx") = r->rdx;
    register uint64_t r10 __asm__("r10") = r->r10;
    register uint64_t r8 __asm__("r8") = r->r8;
    register uint64_t r9 __asm__("r9") = r->r9;
    __asm__ volatile("syscall"
                     : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8), "+r"(r9)
                     :
                     : "rcx", "r11", "memory");
    *r = (struct syscall_regs){ rax, rdi, rsi, rdx, r10, r8, r9 };
}

errval_t sys_yield(void);
errval_t sys_print(const char *buf, size_t len);
_Noreturn void sys_exit(uint64_t status);

errval_t sys_cap_identify(capslot_t slot, struct cap_identity *out);
/* `count` objects of `type` from RAM capability `src`, starting `offset`
 * bytes into it, into slots first_dest .. first_dest+count-1. `size` is the
 * object size in bytes for RAM/Frame/DevFrame, log2(slots) for a CNode, and
 * 0 for the fixed-size types (VNodes, Dispatcher). */
errval_t sys_cap_retype(capslot_t src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                        capslot_t first_dest);
errval_t sys_cap_copy(capslot_t src, capslot_t dst);
errval_t sys_cap_mint(capslot_t src, capslot_t dst, uint32_t rights, uint64_t badge, uint64_t base,
                      uint64_t count);
errval_t sys_cap_delete(capslot_t slot);
errval_t sys_cap_revoke(capslot_t slot);
errval_t sys_cap_move(capslot_t src, capslot_t dst);

/* Map Frame/DevFrame/VNode `src` at vaddr in the address space of `pml4`
 * (flags MAP_WRITE, MAP_EXEC). ERR_MAP_NO_TABLE sets *missing_level to the
 * level of the missing table (3 PDPT, 2 PD, 1 PT). vspace_map() in
 * <atoll/lib/caps.h> makes the tables for you. */
errval_t sys_map(capslot_t pml4, uint64_t vaddr, capslot_t src, uint32_t flags, int *missing_level);
errval_t sys_unmap(capslot_t src);

/* `cap` is a slot, LMP_NO_CAP, or a slot | LMP_SEND_MOVE. */
errval_t sys_lmp_send(capslot_t ep, uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t cap);
/* `recv_slot`: an empty slot for a capability that may come with the
 * message, or LMP_NO_CAP. flags: LMP_RECV_NONBLOCK. */
errval_t sys_lmp_recv(uint64_t recv_slot, uint32_t flags, struct lmp_msg *msg);
errval_t sys_lmp_call(capslot_t ep, uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t cap,
                      struct lmp_msg *reply);

/* Start the boot module named by the first word of cmd[0..len) (the rest is
 * its argument string) with RAM capability `ram`; its dispatcher capability
 * lands in `disp_dest`; *value gets the kernel's result (the domain id). */
errval_t sys_spawn(capslot_t kernel, const char *cmd, size_t len, capslot_t ram, capslot_t disp_dest,
                   uint64_t *value);
errval_t sys_domain_info(uint64_t index, struct domain_info *out);
/* Every domain of this core as one consistent picture (the list did not
 * change during the walk): up to `max` entries in out[], *count of them;
 * ERR_TOO_MANY if there were more (out[] holds the first max),
 * ERR_WOULD_BLOCK if the list kept changing. Use it, not a loop over
 * sys_domain_info, to decide that a domain has ended. */
errval_t domain_list(struct domain_info *out, uint32_t max, uint32_t *count);
errval_t sys_core_info(struct core_info *out);
/* A monitor makes a span dispatcher (docs/spanning.md); a->id is set. */
errval_t sys_span(capslot_t kernel, struct span_args *a);
/* Change a mapped frame's MAP_WRITE / MAP_EXEC (this core's TLB only). */
errval_t sys_protect(capslot_t frame, uint32_t flags);
/* A monitor's step of a shootdown: *found = span dispatchers of that domain here. */
errval_t sys_tlb_invalidate(capslot_t kernel, uint32_t home_core, uint64_t home_domain, uint64_t vaddr,
                            uint64_t pages, uint64_t *found);
/* The ipi protocol: interrupt `cores` (a bit per core), wait until each
 * flushed (at most timeout_us); *asked = cores interrupted. */
errval_t sys_tlb_ipi(capslot_t kernel, const uint64_t cores[4], uint64_t timeout_us, uint64_t *asked);

errval_t sys_io_in(capslot_t io, uint64_t port, unsigned width, uint32_t *value);
errval_t sys_io_out(capslot_t io, uint64_t port, unsigned width, uint32_t value);
/* The next byte from the serial line, or ERR_WOULD_BLOCK. */
errval_t sys_console_read(capslot_t io, uint8_t *byte);
errval_t sys_poweroff(capslot_t kernel, uint64_t status);
errval_t sys_set_priority(capslot_t dispatcher, uint32_t priority);
/* Wake the domains sleeping in sys_notify_wait on the core a Notify
 * capability names. */
errval_t sys_notify(capslot_t notify);
/* The same with a Notify for a range of cores: wake `core`, one of them. */
errval_t sys_notify_core(capslot_t notify, uint32_t core);
/* Sleep until a notification reaches this core or timeout_us passes (0:
 * no timeout), unless `token` differs from the core's notification
 * generation; *gen is the generation after. ERR_TIMEOUT when it timed out. */
errval_t sys_notify_wait(uint64_t token, uint64_t timeout_us, uint64_t *gen);
/* The current generation (never sleeps). */
uint64_t sys_notify_gen(void);
/* Re-create a capability described by another core's monitor (Frame of
 * user memory, Notify) as a new root in `dst`; needs the Kernel cap. */
errval_t sys_cap_create(capslot_t kernel, const struct cap_identity *desc, capslot_t dst);
/* Monitors: the next domain of this core that ended (ERR_WOULD_BLOCK: none;
 * ERR_TOO_MANY: some were lost, rescan), and ending one. */
errval_t sys_domain_ended(capslot_t kernel, struct domain_end *out);
errval_t sys_domain_kill(capslot_t kernel, capslot_t dispatcher);
/* Read `len` bytes of boot module `name` from `offset` (*got: how many;
 * len 0: *got is the module's size). ERR_NOT_FOUND: no such module. */
errval_t sys_module_read(const char *name, size_t name_len, uint64_t offset, void *buf, size_t len, uint64_t *got);
/* Monitors: capability operations on a domain of this core for the
 * cross-core protocols (struct capops_call, <atoll/abi/caps.h>), and the
 * next watched capability that lost its last child or was adopted
 * (*slot; ERR_WOULD_BLOCK: none; ERR_TOO_MANY: some notices were lost). */
errval_t sys_capops(capslot_t kernel, struct capops_call *op);
errval_t sys_cap_notice(capslot_t kernel, capslot_t *slot);

#endif
