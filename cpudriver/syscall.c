/*
 * System calls: decode, check every argument, act, resume. Argument rules
 * and errors are in docs/syscalls.md; the register convention is in
 * include/atoll/syscall.h.
 */
#include <atoll/domain.h>
#include <atoll/syscall.h>
#include "bootinfo.h"
#include "cap.h"
#include "console.h"
#include "core.h"
#include "dispatcher.h"
#include "domain.h"
#include "lib.h"
#include "lmp.h"
#include "notify.h"
#include "obituary.h"
#include "smp.h"
#include "panic.h"
#include "report.h"
#include "vspace.h"
#include "x86_64/cpu.h"
#include "x86_64/kernel_layout.h"

#define PRINT_MAX 1024
#define RETYPE_MAX_COUNT 4096

/* User memory is touched only between these (SMAP). */
static inline void user_access_begin(void)
{
    if (core.smap)
        __asm__ volatile("stac" ::: "memory");
}
static inline void user_access_end(void)
{
    if (core.smap)
        __asm__ volatile("clac" ::: "memory");
}

static errval_t copy_from_user(struct dispatcher *d, void *dst, uint64_t src, uint64_t n)
{
    if (!vspace_user_range_ok(d->pml4, src, n, false))
        return ERR_BAD_ADDRESS;
    user_access_begin();
    memcpy(dst, (const void *)src, n);
    user_access_end();
    return ERR_OK;
}

static errval_t copy_to_user(struct dispatcher *d, uint64_t dst, const void *src, uint64_t n)
{
    if (!vspace_user_range_ok(d->pml4, dst, n, true))
        return ERR_BAD_ADDRESS;
    user_access_begin();
    memcpy((void *)dst, src, n);
    user_access_end();
    return ERR_OK;
}

static struct capability root_of(struct dispatcher *d)
{
    return (struct capability){ .type = CAP_CNODE, .bits = d->cnode_bits, .base = d->cnode_base };
}

/* Slot `i` of the caller's CSpace, any content. */
static errval_t any_slot(struct dispatcher *d, uint64_t i, struct cte **out)
{
    struct capability cn = root_of(d);
    return cap_slot(&cn, i, out);
}

/* Slot `i`, which must hold a capability of `type` (CAP_NULL: any) with
 * `rights`. */
static errval_t lookup(struct dispatcher *d, uint64_t i, enum cap_type type, uint32_t rights, struct cte **out)
{
    errval_t err = any_slot(d, i, out);
    if (err)
        return err;
    if ((*out)->cap.type == CAP_NULL)
        return ERR_CAP_EMPTY;
    if (type != CAP_NULL && (*out)->cap.type != type)
        return ERR_CAP_TYPE;
    if (((*out)->cap.rights & rights) != rights)
        return ERR_CAP_RIGHTS;
    return ERR_OK;
}

static errval_t sys_print(struct dispatcher *d, uint64_t buf, uint64_t len)
{
    static char text[PRINT_MAX];
    if (len > PRINT_MAX)
        return ERR_INVALID_ARG;
    errval_t err = copy_from_user(d, text, buf, len);
    if (!err)
        console_write_user(d->id, text, len);
    if (!err && core.is_bsp)
        console_flush();   /* the boot core owns the line: prompts show at once */
    return err;
}

static errval_t sys_retype(struct dispatcher *d, const struct trap_frame *f)
{
    struct cte *src;
    errval_t err = lookup(d, f->rdi, CAP_RAM, 0, &src);
    uint64_t type = f->rsi, count = f->r8;
    if (err)
        return err;
    if (count > RETYPE_MAX_COUNT)
        return ERR_RETYPE_OVERFLOW;
    if (type >= CAP_TYPE_COUNT)
        return ERR_CAP_TYPE;
    if (type == CAP_DEVFRAME)
        return ERR_CAP_TYPE;   /* device memory is not RAM */
    if (type == CAP_DISPATCHER && !dispatcher_can_make(d, count))
        return ERR_TOO_MANY;   /* DISPATCHERS_PER_DOMAIN */
    struct capability cn = root_of(d);
    err = cap_retype(src, (enum cap_type)type, f->rdx, f->r10, count, &cn, f->r9);
    if (err)
        return err;
    /* New objects that the kernel must finish. */
    for (uint64_t i = 0; i < count; i++) {
        struct cte *c;
        if (any_slot(d, f->r9 + i, &c))
            break;
        if (type == CAP_VNODE_PML4)
            vspace_init_pml4(c->cap.base);
        else if (type == CAP_DISPATCHER)
            dispatcher_init_inert(dispatcher_of(&c->cap), d);
    }
    return ERR_OK;
}

static errval_t sys_map(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    struct cte *pml4, *src;
    errval_t err = lookup(d, f->rdi, CAP_VNODE_PML4, 0, &pml4);
    if (!err)
        err = lookup(d, f->rdx, CAP_NULL, 0, &src);
    if (err)
        return err;
    int missing = 0;
    if (f->r10 > 0xffffffffu)
        return ERR_INVALID_ARG;
    err = vspace_map(pml4->cap.base, f->rsi, src, (uint32_t)f->r10, &missing);
    *value = (uint64_t)missing;
    return err;
}

static errval_t sys_spawn(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    struct cte *kernel, *ram, *self, *dest = 0;
    char cmd[256];
    errval_t err = lookup(d, f->rdi, CAP_KERNEL, 0, &kernel);
    if (err)
        return err;
    if (f->rdx == 0 || f->rdx >= sizeof cmd)
        return ERR_INVALID_ARG;
    err = copy_from_user(d, cmd, f->rsi, f->rdx);
    if (!err)
        err = lookup(d, f->r10, CAP_RAM, CAP_RIGHT_WRITE, &ram);
    if (!err && f->r8 != LMP_NO_CAP) {
        err = any_slot(d, f->r8, &dest);
        if (!err && dest->cap.type != CAP_NULL)
            err = ERR_CAP_OCCUPIED;
    }
    if (!err)
        err = lookup(d, SLOT_DISPATCHER, CAP_DISPATCHER, 0, &self);
    if (err)
        return err;
    struct spawn_args a = { .cmd = cmd, .cmd_len = f->rdx, .ram = ram, .parent_disp = self, .monitor = false };
    struct dispatcher *child;
    struct cte *child_disp;
    err = domain_spawn(&a, &child, &child_disp);
    if (err)
        return err;
    if (dest)
        cap_copy(child_disp, dest);
    *value = child->id;
    return ERR_OK;
}

/* `ps` asks for index 0, 1, 2, ...: remember where the last answer was so
 * that a whole listing walks the list once. Any change to the list makes
 * the walk start over (the generation moves). */
static struct {
    uint64_t index;
    struct dispatcher *at;
    const struct dispatcher *first;
} info_cursor;

static errval_t sys_domain_info(struct dispatcher *d, uint64_t index, uint64_t out)
{
    if (index > 0xffffffffu)
        return ERR_NOT_FOUND;
    struct dispatcher *x = dispatcher_first();
    uint64_t i = 0;
    if (info_cursor.at && info_cursor.at->live && info_cursor.first == x && info_cursor.index <= index) {
        x = info_cursor.at;
        i = info_cursor.index;
    }
    for (; x && i < index; i++)
        x = x->next;
    if (!x)
        return ERR_NOT_FOUND;
    info_cursor.index = index;
    info_cursor.at = x;
    info_cursor.first = dispatcher_first();
    struct domain_info info = { .id = x->id, .core = core.core_id, .state = x->state, .priority = x->priority,
                                .cpu_ticks = x->ticks, .ram_bytes = x->ram_bytes };
    memcpy(info.name, x->name, sizeof info.name);
    return copy_to_user(d, out, &info, sizeof info);
}

static errval_t sys_core_info(struct dispatcher *d, uint64_t out)
{
    const struct topology *t = boot_topology();
    struct core_info info = { .core_id = core.core_id, .apic_id = core.apic_id, .node = core.node,
                              .ncores = t->ncpus, .nnodes = MIN(t->nnodes, CORE_INFO_MAX_NODES),
                              .tsc_hz = core.tsc_hz, .timer_hz = boot_params.timer_hz };
    for (uint32_t n = 0; n < info.nnodes; n++) {
        info.node_mem_bytes[n] = t->nodes[n].mem_bytes;
        info.node_cores[n] = t->nodes[n].ncpus;
        for (uint32_t m = 0; m < info.nnodes; m++)
            info.node_distance[n][m] = t->dist[n][m];
    }
    for (uint32_t c = 0; c < t->ncpus && c < CORE_INFO_MAX_CORES; c++)
        info.core_node[c] = (uint16_t)t->cpus[c].node;
    /* Only the boot core saw every core check in (or not). */
    if (core.is_bsp) {
        info.cores_known = 1;
        info.core_up[0] = 1;
        for (uint32_t i = 0; i < smp_ap_count(); i++) {
            const struct ap_info *ap = smp_ap(i);
            if (ap->core_id < CORE_INFO_MAX_CORES)
                info.core_up[ap->core_id] = ap->up && !ap->panicked && boot_core_has_user_ram(ap->core_id);
        }
    }
    return copy_to_user(d, out, &info, sizeof info);
}

static errval_t io_check(struct dispatcher *d, uint64_t slot, uint64_t port, uint64_t width)
{
    struct cte *io;
    errval_t err = lookup(d, slot, CAP_IO, 0, &io);
    if (err)
        return err;
    if (width != 1 && width != 2 && width != 4)
        return ERR_INVALID_ARG;
    if (port >= 65536 || port < io->cap.base || port - io->cap.base + width > io->cap.bytes)
        return ERR_PORT_RANGE;
    return ERR_OK;
}

static errval_t sys_io(struct dispatcher *d, const struct trap_frame *f, bool out, uint64_t *value)
{
    errval_t err = io_check(d, f->rdi, f->rsi, f->rdx);
    if (err)
        return err;
    uint16_t port = (uint16_t)f->rsi;
    if (out) {
        if (f->rdx == 1)
            __asm__ volatile("outb %b0, %w1" ::"a"(f->r10), "Nd"(port));
        else if (f->rdx == 2)
            __asm__ volatile("outw %w0, %w1" ::"a"(f->r10), "Nd"(port));
        else
            __asm__ volatile("outl %k0, %w1" ::"a"(f->r10), "Nd"(port));
    } else {
        uint32_t v = 0;
        if (f->rdx == 1) {
            uint8_t b;
            __asm__ volatile("inb %w1, %b0" : "=a"(b) : "Nd"(port));
            v = b;
        } else if (f->rdx == 2) {
            uint16_t w;
            __asm__ volatile("inw %w1, %w0" : "=a"(w) : "Nd"(port));
            v = w;
        } else {
            __asm__ volatile("inl %w1, %k0" : "=a"(v) : "Nd"(port));
        }
        *value = v;
    }
    return ERR_OK;
}

static errval_t sys_console_read(struct dispatcher *d, uint64_t slot, uint64_t *value)
{
    errval_t err = io_check(d, slot, 0x3f8, 1);
    if (!err)
        err = io_check(d, slot, 0x3fd, 1);
    if (err)
        return err;
    if (!core.is_bsp)
        return ERR_NOT_SUPPORTED;   /* the serial line belongs to the boot core */
    if (!(inb(0x3fd) & 1))
        return ERR_WOULD_BLOCK;
    *value = inb(0x3f8);
    return ERR_OK;
}

/* Re-create, as a new root on this core, a capability another core's
 * monitor exported (monitor/captransfer). Only types that name no kernel
 * object may cross: a Frame of user memory (shared memory for channels) and
 * a Notify capability. Kernel objects stay on the core that made them. */
static errval_t sys_cap_create(struct dispatcher *d, const struct trap_frame *f)
{
    struct cte *kernel, *dst;
    struct cap_identity id;
    errval_t err = lookup(d, f->rdi, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = copy_from_user(d, &id, f->rsi, sizeof id);
    if (!err)
        err = any_slot(d, f->rdx, &dst);
    if (err)
        return err;
    if (id.rights & ~CAP_RIGHTS_ALL)
        return ERR_INVALID_ARG;
    struct capability c = { .type = (uint8_t)id.type, .rights = (uint8_t)id.rights, .base = id.base,
                            .bytes = id.bytes };
    switch (id.type) {
    case CAP_FRAME:
        if (id.badge || id.base % CAP_PAGE_SIZE || id.bytes % CAP_PAGE_SIZE)
            return ERR_BAD_ALIGNMENT;
        if (!boot_user_memory(id.base, id.bytes))
            return ERR_BAD_ADDRESS;
        break;
    case CAP_NOTIFY:
        if (id.badge || id.base >= boot_topology()->ncpus || id.bytes != 1)
            return ERR_INVALID_ARG;
        break;
    default:
        return ERR_CAP_NOT_TRANSFERABLE;
    }
    return cap_install_root(dst, &c);
}

/* SYS_MODULE_READ: bytes of a boot module (the image is public: programs
 * and the service manifest). rdx = the bytes copied; the module's size when
 * asked for 0 bytes. */
static errval_t sys_module_read(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    char name[64];
    uint64_t name_len = f->rsi, offset = f->rdx, buf = f->r10, len = f->r8;
    if (name_len == 0 || name_len >= sizeof name || len > (1u << 20))
        return ERR_INVALID_ARG;
    errval_t err = copy_from_user(d, name, f->rdi, name_len);
    const void *image;
    size_t size;
    if (!err)
        err = boot_module_find(name, name_len, &image, &size);
    if (err)
        return err;
    if (offset > size)
        return ERR_INVALID_ARG;
    uint64_t n = MIN(len, size - offset);
    if (len == 0) {
        *value = size;
        return ERR_OK;
    }
    err = copy_to_user(d, buf, (const uint8_t *)image + offset, n);
    if (!err)
        *value = n;
    return err;
}

/* SYS_DOMAIN_KILL: a monitor ends one of its core's domains. */
static errval_t sys_domain_kill(struct dispatcher *d, const struct trap_frame *f)
{
    struct cte *kernel, *disp;
    errval_t err = lookup(d, f->rdi, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = lookup(d, f->rsi, CAP_DISPATCHER, 0, &disp);
    if (err)
        return err;
    struct dispatcher *x = dispatcher_of(&disp->cap);
    if (x == d || x->is_monitor)
        return ERR_INVALID_ARG;
    if (!x->live || x->end_reported)
        return ERR_DISP_STATE;   /* inert, or already ended */
    obituary_note(x, DOMAIN_END_KILLED, 0);
    domain_kill(x, "killed by its monitor");
    return ERR_OK;
}

static errval_t sys_domain_ended(struct dispatcher *d, const struct trap_frame *f)
{
    struct cte *kernel;
    struct domain_end e;
    errval_t err = lookup(d, f->rdi, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = obituary_peek(&e);
    if (!err)
        err = copy_to_user(d, f->rsi, &e, sizeof e);
    if (!err)
        obituary_pop();   /* only once the monitor has it */
    return err;
}

/* What a capability operation did to the caller itself. */
static bool caller_gone(struct dispatcher *d) { return dispatcher_current() != d || !d->pml4 || !d->cnode_base; }

void syscall_handler(struct trap_frame *f)
{
    struct dispatcher *d = dispatcher_current();
    if (!d)
        panic("system call with no current dispatcher");
    d->regs = *f;
    uint64_t value = 0;
    errval_t err = ERR_OK;
    struct cte *a, *b;
    struct dispatcher *woken = 0;
    switch (f->rax) {
    case SYS_YIELD:
        d->regs.rax = ERR_OK;
        dispatcher_yield(d);
    case SYS_PRINT:
        err = sys_print(d, f->rdi, f->rsi);
        break;
    case SYS_EXIT: {
        char why[40];
        snprintf(why, sizeof why, "exit status %lld", (long long)f->rdi);
        obituary_note(d, DOMAIN_END_EXIT, (int64_t)f->rdi);
        domain_kill(d, why);
        schedule();
    }
    case SYS_CAP_IDENTIFY: {
        struct cap_identity id;
        err = lookup(d, f->rdi, CAP_NULL, 0, &a);
        if (!err) {
            cap_identify(a, &id);
            err = copy_to_user(d, f->rsi, &id, sizeof id);
        }
        break;
    }
    case SYS_CAP_RETYPE:
        err = sys_retype(d, f);
        break;
    case SYS_CAP_COPY:
        err = lookup(d, f->rdi, CAP_NULL, 0, &a);
        if (!err)
            err = any_slot(d, f->rsi, &b);
        if (!err)
            err = cap_copy(a, b);
        break;
    case SYS_CAP_MINT:
        err = lookup(d, f->rdi, CAP_NULL, 0, &a);
        if (!err)
            err = any_slot(d, f->rsi, &b);
        if (!err && f->rdx > 0xffffffffu)
            err = ERR_INVALID_ARG;
        if (!err)
            err = cap_mint(a, b, (uint32_t)f->rdx, f->r10, f->r8, f->r9);
        break;
    case SYS_CAP_DELETE:
        err = lookup(d, f->rdi, CAP_NULL, 0, &a);
        if (!err)
            err = cap_delete(a);
        break;
    case SYS_CAP_REVOKE:
        err = lookup(d, f->rdi, CAP_NULL, 0, &a);
        if (!err)
            err = cap_revoke(a);
        break;
    case SYS_CAP_MOVE:
        err = lookup(d, f->rdi, CAP_NULL, 0, &a);
        if (!err)
            err = any_slot(d, f->rsi, &b);
        if (!err)
            err = cap_move(a, b);
        if (!err)
            vspace_cap_moved(b);
        break;
    case SYS_MAP:
        err = sys_map(d, f, &value);
        break;
    case SYS_UNMAP:
        err = lookup(d, f->rdi, CAP_NULL, 0, &a);
        if (!err && !a->cap.mapped)
            err = ERR_NOT_MAPPED;
        if (!err)
            vspace_unmap(a);
        break;
    case SYS_LMP_SEND: {
        struct lmp_msg m = { { f->rsi, f->rdx, f->r10, f->r8 }, f->r9 };
        err = lmp_send(d, f->rdi, &m, &woken);
        break;
    }
    case SYS_LMP_RECV:
        err = lmp_recv(d, f->rdi, f->rsi & LMP_RECV_NONBLOCK);
        if (err == ERR_OK)
            dispatcher_run(d);   /* the message is in its registers */
        if (err == ERR_WOULD_BLOCK && d->waiting)
            schedule();          /* resumed by the send that wakes it */
        break;
    case SYS_LMP_CALL: {
        struct lmp_msg m = { { f->rsi, f->rdx, f->r10, f->r8 }, f->r9 };
        err = lmp_send(d, f->rdi, &m, &woken);
        if (err)
            break;
        /* Wait for the reply; run the receiver now if it was waiting. */
        err = lmp_recv(d, d->recv_slot, false);
        if (err == ERR_OK)
            dispatcher_run(d);
        if (woken)
            dispatcher_run(woken);
        schedule();
    }
    case SYS_SPAWN:
        err = sys_spawn(d, f, &value);
        break;
    case SYS_DOMAIN_INFO:
        err = sys_domain_info(d, f->rdi, f->rsi);
        break;
    case SYS_CORE_INFO:
        err = sys_core_info(d, f->rdi);
        break;
    case SYS_IO_IN:
        err = sys_io(d, f, false, &value);
        break;
    case SYS_IO_OUT:
        err = sys_io(d, f, true, &value);
        break;
    case SYS_CONSOLE_READ:
        err = sys_console_read(d, f->rdi, &value);
        break;
    case SYS_POWEROFF:
        err = lookup(d, f->rdi, CAP_KERNEL, 0, &a);
        if (!err && !core.is_bsp)
            err = ERR_NOT_SUPPORTED;
        if (!err)
            machine_exit(f->rsi ? 1 : 0);
        break;
    case SYS_SET_PRIORITY:
        err = lookup(d, f->rdi, CAP_DISPATCHER, 0, &a);
        if (!err && (f->rsi < 1 || f->rsi > PRIORITY_MAX))
            err = ERR_INVALID_ARG;
        /* Anyone may give up shares; only a monitor may hand out more. */
        if (!err && f->rsi > dispatcher_of(&a->cap)->priority && !d->is_monitor)
            err = ERR_CAP_RIGHTS;
        if (!err)
            dispatcher_of(&a->cap)->priority = (uint32_t)f->rsi;
        break;
    case SYS_NOTIFY:
        err = lookup(d, f->rdi, CAP_NOTIFY, CAP_RIGHT_WRITE, &a);
        if (!err)
            err = notify_send_from(d, (uint32_t)a->cap.base);
        break;
    case SYS_NOTIFY_WAIT:
        err = notify_wait(d, f->rdi, f->rsi, &value);
        if (err == ERR_WOULD_BLOCK)
            schedule();   /* resumed by notify_arrived or notify_expire */
        break;
    case SYS_CAP_CREATE:
        err = sys_cap_create(d, f);
        break;
    case SYS_DOMAIN_ENDED:
        err = sys_domain_ended(d, f);
        break;
    case SYS_DOMAIN_KILL:
        err = sys_domain_kill(d, f);
        break;
    case SYS_MODULE_READ:
        err = sys_module_read(d, f, &value);
        break;
    default:
        err = ERR_BAD_SYSCALL;
        break;
    }
    if (caller_gone(d))
        schedule();   /* it deleted its own dispatcher, CSpace or VSpace */
    d->regs.rax = err;
    d->regs.rdx = value;
    dispatcher_run(d);
}
