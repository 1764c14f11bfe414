/*
 * System calls on domains, this core and the machine: exit, spawn, list,
 * core and machine facts, priority, kill, obituaries, boot modules, power
 * off.
 */
#include <stddef.h>
#include <atoll/abi/domain.h>
#include <atoll/abi/syscall.h>
#include "syscall.h"
#include "bootinfo.h"
#include "core.h"
#include "dispatcher.h"
#include "domain.h"
#include "lib.h"
#include "obituary.h"
#include "panic.h"
#include "smp.h"
#include "topology.h"
#include "uaccess.h"
#include "user_start.h"
#include "vspace.h"
#include "tlb_ipi.h"
#include "x86_64/cpu.h"

errval_t sc_exit(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    int64_t status = (int64_t)f->rdi;
    char why[40];
    snprintf(why, sizeof why, "exit status %lld", (long long)status);
    obituary_note(d, DOMAIN_END_EXIT, status);
    domain_kill(d, why);
    schedule();
}

/* value = the child's domain id. */
errval_t sc_spawn(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    uint64_t kernel_slot = f->rdi, cmd_addr = f->rsi, cmd_len = f->rdx, ram_slot = f->r10,
             disp_dest = f->r8;
    struct cte *kernel, *ram, *self, *dest = 0;
    char cmd[256];
    errval_t err = user_cap(d, kernel_slot, CAP_KERNEL, 0, &kernel);
    if (err)
        return err;
    if (cmd_len == 0 || cmd_len >= sizeof cmd)
        return ERR_INVALID_ARG;
    err = copy_from_user(d, cmd, cmd_addr, cmd_len);
    if (!err)
        err = user_cap(d, ram_slot, CAP_RAM, CAP_RIGHT_WRITE, &ram);
    if (!err && disp_dest != LMP_NO_CAP) {
        err = user_slot(d, disp_dest, &dest);
        if (!err && dest->cap.type != CAP_NULL)
            err = ERR_CAP_OCCUPIED;
    }
    if (!err)
        err = user_cap(d, SLOT_DISPATCHER, CAP_DISPATCHER, 0, &self);
    if (err)
        return err;
    struct spawn_args a = { .cmd = cmd, .cmd_len = cmd_len, .ram = ram, .parent_disp = self, .monitor = false };
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

/* A monitor makes a span dispatcher (docs/spanning.md). */
errval_t sc_span(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t kernel_slot = f->rdi, args_addr = f->rsi;
    struct cte *kernel, *dest;
    struct span_args a;
    struct span_build b = { .a = &a };
    errval_t err = user_cap(d, kernel_slot, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = copy_from_user(d, &a, args_addr, sizeof a);
    if (!err)
        err = user_cap(d, a.ram, CAP_RAM, CAP_RIGHT_WRITE, &b.ram);
    if (!err)
        err = user_cap(d, a.home_pml4, CAP_VNODE_PML4, 0, &b.home_pml4);
    /* Only another core's tables: this core's domains run on their own. */
    if (!err && !(cap_original_of(b.home_pml4)->cap.relations & CAP_REL_FOREIGN))
        err = ERR_INVALID_ARG;
    if (!err)
        err = user_cap(d, a.notify, CAP_NOTIFY, 0, &b.notify);
    if (!err && (a.home_core < b.notify->cap.base || a.home_core - b.notify->cap.base >= b.notify->cap.bytes))
        err = ERR_INVALID_ARG;
    if (!err)
        err = user_slot(d, a.disp_dest, &dest);
    if (!err && dest->cap.type != CAP_NULL)
        err = ERR_CAP_OCCUPIED;
    if (!err)
        err = user_cap(d, SLOT_DISPATCHER, CAP_DISPATCHER, 0, &b.parent_disp);
    if (err)
        return err;
    struct dispatcher *x;
    struct cte *xcte;
    err = domain_span(&b, &x, &xcte);
    if (err)
        return err;
    cap_copy(xcte, dest);
    a.id = x->id;
    return copy_to_user(d, args_addr + offsetof(struct span_args, id), &a.id, sizeof a.id);
}

/* One core's step of a shootdown (docs/spanning.md): the monitor, asked by
 * the home core's monitor, has this CPU driver forget the home domain's
 * translations. Its span dispatchers here copy the home's root entries
 * again (a table may have gone), and the TLB forgets the pages. Without
 * PCIDs the switch to the monitor has flushed the user translations
 * already; the invalidation is still done, so the step stays right with
 * tagged TLBs. value = span dispatchers of that domain here. */
errval_t sc_tlb_invalidate(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    uint64_t kernel_slot = f->rdi, home_core = f->rsi, home_domain = f->rdx, vaddr = f->r10, pages = f->r8;
    struct cte *kernel;
    errval_t err = user_cap(d, kernel_slot, CAP_KERNEL, 0, &kernel);
    if (err)
        return err;
    uint64_t found = 0;
    for (struct dispatcher *x = dispatcher_first(); x; x = x->next)
        if (x->span_home && x->pml4 && x->home_core == home_core && x->home_domain == home_domain) {
            vspace_span_copy(x->pml4, x->span_home);
            found++;
        }
    vspace_invalidate(vaddr, pages);
    *value = found;
    return ERR_OK;
}

/* The ipi protocol (tlb_ipi.h), for the home core's monitor. */
errval_t sc_tlb_ipi(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    struct cte *kernel;
    uint64_t cores[4];
    errval_t err = user_cap(d, f->rdi, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = copy_from_user(d, cores, f->rsi, sizeof cores);
    if (!err && (f->rdx == 0 || f->rdx > 10000000))
        err = ERR_INVALID_ARG;   /* at most 10 s with interrupts on in here */
    return err ? err : tlb_ipi_shootdown(cores, f->rdx, value);
}

/* `ps` asks for index 0, 1, 2, ...: remember where the last answer was so
 * that a whole listing walks the list once. Any change to the list makes
 * the walk start over (the generation moves): the remembered dispatcher may
 * have ended, and its memory been given to someone else, so nothing of it
 * is read then. A listing that spans a change sees it in `list_gen`
 * (<atoll/abi/syscall.h>): indices shift under it, so an entry may be
 * missing or twice, and the caller walks again (lib: domain_list). */
static struct {
    uint64_t index;
    struct dispatcher *at;
    uint64_t gen;
} info_cursor;

errval_t sc_domain_info(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t index = f->rdi, out = f->rsi;
    if (index > 0xffffffffu)
        return ERR_NOT_FOUND;
    struct dispatcher *x = dispatcher_first();
    uint64_t i = 0, gen = dispatcher_list_gen();
    if (info_cursor.at && info_cursor.gen == gen && info_cursor.index <= index) {
        x = info_cursor.at;
        i = info_cursor.index;
    }
    for (; x && i < index; i++)
        x = x->next;
    if (!x)
        return ERR_NOT_FOUND;
    info_cursor.index = index;
    info_cursor.at = x;
    info_cursor.gen = gen;
    struct domain_info info = { .id = x->id, .core = core.core_id, .state = x->state, .priority = x->priority,
                                .cpu_ticks = x->ticks, .ram_bytes = x->ram_bytes, .list_gen = gen };
    memcpy(info.name, x->name, sizeof info.name);
    return copy_to_user(d, out, &info, sizeof info);
}

errval_t sc_core_info(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t out = f->rdi;
    const struct topology *t = boot_topology();
    struct core_info info = { .core_id = core.core_id, .apic_id = core.apic_id, .node = core.node,
                              .ncores = t->ncpus, .nnodes = MIN(t->nnodes, CORE_INFO_MAX_NODES),
                              .tsc_hz = core.tsc_hz, .timer_hz = boot_params.timer_hz,
                              .ticks = core.ticks, .timer_irqs = core.timer_irqs, .idle_stops = core.idle_stops,
                              .periodic = boot_params.periodic };
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

errval_t sc_set_priority(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t disp_slot = f->rdi, priority = f->rsi;
    struct cte *c;
    errval_t err = user_cap(d, disp_slot, CAP_DISPATCHER, 0, &c);
    if (err)
        return err;
    if (priority < 1 || priority > PRIORITY_MAX)
        return ERR_INVALID_ARG;
    struct dispatcher *x = dispatcher_of(&c->cap);
    /* Anyone may give up shares; only a monitor may hand out more. */
    if (priority > x->priority && !d->is_monitor)
        return ERR_CAP_RIGHTS;
    x->priority = (uint32_t)priority;
    return ERR_OK;
}

/* A monitor ends one of its core's domains. */
errval_t sc_domain_kill(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t kernel_slot = f->rdi, disp_slot = f->rsi;
    struct cte *kernel, *disp;
    errval_t err = user_cap(d, kernel_slot, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = user_cap(d, disp_slot, CAP_DISPATCHER, 0, &disp);
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

/* The monitor takes the next obituary of its core. */
errval_t sc_domain_ended(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t kernel_slot = f->rdi, out = f->rsi;
    struct cte *kernel;
    struct domain_end e;
    errval_t err = user_cap(d, kernel_slot, CAP_KERNEL, 0, &kernel);
    if (!err)
        err = obituary_peek(&e);
    if (!err)
        err = copy_to_user(d, out, &e, sizeof e);
    if (!err)
        obituary_pop();   /* only once the monitor has it */
    return err;
}

/* Bytes of a boot module (the image is public: programs and the service
 * manifest). value = the bytes copied, or the module's size when asked for
 * 0 bytes. */
errval_t sc_module_read(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    uint64_t name_addr = f->rdi, name_len = f->rsi, offset = f->rdx, buf = f->r10, len = f->r8;
    char name[64];
    if (name_len == 0 || name_len >= sizeof name || len > (1u << 20))
        return ERR_INVALID_ARG;
    errval_t err = copy_from_user(d, name, name_addr, name_len);
    const void *image;
    size_t size;
    /* "cmdline": the kernel command line (services read their words from it,
     * e.g. mem=DESIGN, docs/boot-report.md); no module is named so. */
    if (!err && name_len == 7 && !strncmp(name, "cmdline", 7)) {
        image = boot_cmdline();
        size = strlen(boot_cmdline());
    } else if (!err) {
        err = boot_module_find(name, name_len, &image, &size);
    }
    if (err)
        return err;
    if (offset > size)
        return ERR_INVALID_ARG;
    if (len == 0) {
        *value = size;
        return ERR_OK;
    }
    uint64_t n = MIN(len, size - offset);
    err = copy_to_user(d, buf, (const uint8_t *)image + offset, n);
    if (!err)
        *value = n;
    return err;
}

errval_t sc_poweroff(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t kernel_slot = f->rdi, status = f->rsi;
    struct cte *kernel;
    errval_t err = user_cap(d, kernel_slot, CAP_KERNEL, 0, &kernel);
    if (err)
        return err;
    if (!core.is_bsp)
        return ERR_NOT_SUPPORTED;
    machine_exit(status ? 1 : 0);
}
