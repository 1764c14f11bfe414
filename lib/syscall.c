/*
 * One wrapper per system call (<atoll/lib/syscall.h>), all through
 * syscall_raw: rax = number, arguments in rdi, rsi, rdx, r10, r8, r9;
 * rax = errval_t and rdx = the value come back, and for LMP the message in
 * rsi, rdi, r8, r10 with the badge in r9.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/lib/syscall.h>

static struct syscall_regs call(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
                                uint64_t a4, uint64_t a5)
{
    struct syscall_regs r = { .rax = nr, .rdi = a0, .rsi = a1, .rdx = a2, .r10 = a3, .r8 = a4, .r9 = a5 };
    syscall_raw(&r);
    return r;
}

#define CALL(nr, a0, a1, a2, a3, a4, a5)                                                             \
    call((nr), (uint64_t)(a0), (uint64_t)(a1), (uint64_t)(a2), (uint64_t)(a3), (uint64_t)(a4),       \
         (uint64_t)(a5))

static errval_t err_of(const struct syscall_regs *r) { return (errval_t)r->rax; }

errval_t sys_yield(void)
{
    struct syscall_regs r = CALL(SYS_YIELD, 0, 0, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_print(const char *buf, size_t len)
{
    struct syscall_regs r = CALL(SYS_PRINT, buf, len, 0, 0, 0, 0);
    return err_of(&r);
}

_Noreturn void sys_exit(uint64_t status)
{
    CALL(SYS_EXIT, status, 0, 0, 0, 0, 0);
    for (;;)
        __asm__ volatile("ud2");   /* the kernel never returns here */
}

errval_t sys_cap_identify(capslot_t slot, struct cap_identity *out)
{
    struct syscall_regs r = CALL(SYS_CAP_IDENTIFY, slot, out, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_cap_retype(capslot_t src, enum cap_type type, uint64_t size, uint64_t offset, uint64_t count,
                        capslot_t first_dest)
{
    struct syscall_regs r = CALL(SYS_CAP_RETYPE, src, type, size, offset, count, first_dest);
    return err_of(&r);
}

errval_t sys_cap_copy(capslot_t src, capslot_t dst)
{
    struct syscall_regs r = CALL(SYS_CAP_COPY, src, dst, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_cap_mint(capslot_t src, capslot_t dst, uint32_t rights, uint64_t badge, uint64_t base,
                      uint64_t count)
{
    struct syscall_regs r = CALL(SYS_CAP_MINT, src, dst, rights, badge, base, count);
    return err_of(&r);
}

errval_t sys_cap_delete(capslot_t slot)
{
    struct syscall_regs r = CALL(SYS_CAP_DELETE, slot, 0, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_cap_revoke(capslot_t slot)
{
    struct syscall_regs r = CALL(SYS_CAP_REVOKE, slot, 0, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_cap_move(capslot_t src, capslot_t dst)
{
    struct syscall_regs r = CALL(SYS_CAP_MOVE, src, dst, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_map(capslot_t pml4, uint64_t vaddr, capslot_t src, uint32_t flags, int *missing_level)
{
    struct syscall_regs r = CALL(SYS_MAP, pml4, vaddr, src, flags, 0, 0);
    if (missing_level)
        *missing_level = err_of(&r) == ERR_MAP_NO_TABLE ? (int)r.rdx : 0;
    return err_of(&r);
}

errval_t sys_unmap(capslot_t src)
{
    struct syscall_regs r = CALL(SYS_UNMAP, src, 0, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_lmp_send(capslot_t ep, uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t cap)
{
    struct syscall_regs r = CALL(SYS_LMP_SEND, ep, w0, w1, w2, w3, cap);
    return err_of(&r);
}

static void message_of(const struct syscall_regs *r, struct lmp_msg *msg)
{
    if (!msg)
        return;
    msg->w[0] = r->rsi;
    msg->w[1] = r->rdi;
    msg->w[2] = r->r8;
    msg->w[3] = r->r10;
    msg->badge = r->r9;
    msg->has_cap = r->rdx;
}

errval_t sys_lmp_recv(uint64_t recv_slot, uint32_t flags, struct lmp_msg *msg)
{
    struct syscall_regs r = CALL(SYS_LMP_RECV, recv_slot, flags, 0, 0, 0, 0);
    message_of(&r, msg);
    return err_of(&r);
}

errval_t sys_lmp_call(capslot_t ep, uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t cap,
                      struct lmp_msg *reply)
{
    struct syscall_regs r = CALL(SYS_LMP_CALL, ep, w0, w1, w2, w3, cap);
    message_of(&r, reply);
    return err_of(&r);
}

errval_t sys_spawn(capslot_t kernel, const char *cmd, size_t len, capslot_t ram, capslot_t disp_dest,
                   uint64_t *value)
{
    struct syscall_regs r = CALL(SYS_SPAWN, kernel, cmd, len, ram, disp_dest, 0);
    if (value)
        *value = r.rdx;
    return err_of(&r);
}

errval_t sys_domain_info(uint64_t index, struct domain_info *out)
{
    struct syscall_regs r = CALL(SYS_DOMAIN_INFO, index, out, 0, 0, 0, 0);
    return err_of(&r);
}

/* A walk by index is not atomic: a domain of this core may start or end
 * between two calls (the caller is preempted, another domain runs and
 * exits), and then an entry is skipped or seen twice. A domain skipped
 * reads as ended: the restart service started a second instance of a live
 * service so (a `ps` while churn's lives ended on the same core). So the
 * walk is taken again until every entry, and a look at the first one
 * after the last, carry the same list generation. */
#define DOMAIN_LIST_TRIES 32

errval_t domain_list(struct domain_info *out, uint32_t max, uint32_t *count)
{
    for (int t = 0; t < DOMAIN_LIST_TRIES; t++) {
        struct domain_info first = { 0 };
        uint32_t n = 0;
        bool same = true, more = false;
        errval_t err = ERR_OK;
        for (uint64_t i = 0; same; i++) {
            struct domain_info d;
            if ((err = sys_domain_info(i, &d)))
                break;
            if (i == 0)
                first = d;
            same = d.list_gen == first.list_gen;
            if (n < max)
                out[n++] = d;
            else
                more = true;
        }
        if (err != ERR_NOT_FOUND && err != ERR_OK)
            return err;
        if (!same)
            continue;
        struct domain_info again;
        err = sys_domain_info(0, &again);
        if (n == 0 ? err == ERR_NOT_FOUND : err == ERR_OK && again.list_gen == first.list_gen) {
            *count = n;
            return more ? ERR_TOO_MANY : ERR_OK;
        }
    }
    return ERR_WOULD_BLOCK;   /* the list kept changing: no listing is better than a wrong one */
}

errval_t sys_core_info(struct core_info *out)
{
    struct syscall_regs r = CALL(SYS_CORE_INFO, out, 0, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_io_in(capslot_t io, uint64_t port, unsigned width, uint32_t *value)
{
    struct syscall_regs r = CALL(SYS_IO_IN, io, port, width, 0, 0, 0);
    if (value)
        *value = (uint32_t)r.rdx;
    return err_of(&r);
}

errval_t sys_io_out(capslot_t io, uint64_t port, unsigned width, uint32_t value)
{
    struct syscall_regs r = CALL(SYS_IO_OUT, io, port, width, value, 0, 0);
    return err_of(&r);
}

errval_t sys_console_read(capslot_t io, uint8_t *byte)
{
    struct syscall_regs r = CALL(SYS_CONSOLE_READ, io, 0, 0, 0, 0, 0);
    if (byte)
        *byte = (uint8_t)r.rdx;
    return err_of(&r);
}

errval_t sys_poweroff(capslot_t kernel, uint64_t status)
{
    struct syscall_regs r = CALL(SYS_POWEROFF, kernel, status, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_set_priority(capslot_t dispatcher, uint32_t priority)
{
    struct syscall_regs r = CALL(SYS_SET_PRIORITY, dispatcher, priority, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_notify(capslot_t notify)
{
    struct syscall_regs r = CALL(SYS_NOTIFY, notify, 0, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_notify_core(capslot_t notify, uint32_t core)
{
    struct syscall_regs r = CALL(SYS_NOTIFY, notify, core, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_notify_wait(uint64_t token, uint64_t timeout_us, uint64_t *gen)
{
    struct syscall_regs r = CALL(SYS_NOTIFY_WAIT, token, timeout_us, 0, 0, 0, 0);
    if (gen)
        *gen = r.rdx;
    return err_of(&r);
}

uint64_t sys_notify_gen(void)
{
    uint64_t gen = 0;
    /* No generation is ~0 for long, so this token is always stale. */
    sys_notify_wait(~0ull, 0, &gen);
    return gen;
}

errval_t sys_cap_create(capslot_t kernel, const struct cap_identity *desc, capslot_t dst)
{
    struct syscall_regs r = CALL(SYS_CAP_CREATE, kernel, desc, dst, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_domain_ended(capslot_t kernel, struct domain_end *out)
{
    struct syscall_regs r = CALL(SYS_DOMAIN_ENDED, kernel, out, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_domain_kill(capslot_t kernel, capslot_t dispatcher)
{
    struct syscall_regs r = CALL(SYS_DOMAIN_KILL, kernel, dispatcher, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_module_read(const char *name, size_t name_len, uint64_t offset, void *buf, size_t len, uint64_t *got)
{
    struct syscall_regs r = CALL(SYS_MODULE_READ, name, name_len, offset, buf, len, 0);
    if (got)
        *got = r.rdx;
    return err_of(&r);
}

errval_t sys_capops(capslot_t kernel, struct capops_call *op)
{
    struct syscall_regs r = CALL(SYS_CAPOPS, kernel, op, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_cap_notice(capslot_t kernel, capslot_t *slot)
{
    struct syscall_regs r = CALL(SYS_CAP_NOTICE, kernel, 0, 0, 0, 0, 0);
    if (slot)
        *slot = r.rdx;
    return err_of(&r);
}

errval_t sys_span(capslot_t kernel, struct span_args *a)
{
    struct syscall_regs r = CALL(SYS_SPAN, kernel, a, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_protect(capslot_t frame, uint32_t flags)
{
    struct syscall_regs r = CALL(SYS_PROTECT, frame, flags, 0, 0, 0, 0);
    return err_of(&r);
}

errval_t sys_tlb_invalidate(capslot_t kernel, uint32_t home_core, uint64_t home_domain, uint64_t vaddr,
                            uint64_t pages, uint64_t *found)
{
    struct syscall_regs r = CALL(SYS_TLB_INVALIDATE, kernel, home_core, home_domain, vaddr, pages, 0);
    if (found)
        *found = r.rdx;
    return err_of(&r);
}

errval_t sys_tlb_ipi(capslot_t kernel, const uint64_t cores[4], uint64_t timeout_us, uint64_t *asked)
{
    struct syscall_regs r = CALL(SYS_TLB_IPI, kernel, cores, timeout_us, 0, 0, 0);
    if (asked)
        *asked = r.rdx;
    return err_of(&r);
}
