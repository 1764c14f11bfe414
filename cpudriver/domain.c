/* Building, ending and reporting domains; see domain.h. */
#include "domain.h"
#include <atoll/abi/domain.h>
#include "bootinfo.h"
#include "console.h"
#include "core.h"
#include "elf.h"
#include "lib.h"
#include "notify.h"
#include "obituary.h"
#include "report.h"
#include "smp.h"
#include "span_flush.h"
#include "topo_report.h"
#include "vspace.h"
#include "x86_64/cpu.h"
#include "x86_64/gdt.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/paging.h"

static uint32_t next_domain_id = 1;

/* A CNode of a few slots in this core's .bss: where a new domain's root
 * CNode is born before it can hold itself. */
static struct cte scratch[4] __attribute__((aligned(256)));

static uint64_t percore_var_phys(const void *va)
{
    return core.kmem_phys + ((uint64_t)va - (uint64_t)__percore_start);
}

struct builder {
    struct cte *ram;
    uint64_t offset;            /* next free byte of ram */
    struct capability cnode;    /* the new root CNode */
    uint64_t pml4;
    uint64_t next_loader_slot;
};

static struct cte *slot(struct builder *b, uint64_t i)
{
    struct cte *c = 0;
    cap_slot(&b->cnode, i, &c);
    return c;
}

/* Retype one object from the builder's RAM into slot `dest`. */
static errval_t take(struct builder *b, enum cap_type type, uint64_t size, uint64_t dest)
{
    uint64_t bytes = cap_object_bytes(type, size);
    if (!bytes)
        return ERR_RETYPE_SIZE;
    uint64_t align = bytes < CAP_PAGE_SIZE ? bytes : CAP_PAGE_SIZE;
    b->offset = ALIGN_UP(b->offset, align);
    errval_t err = cap_retype(b->ram, type, size, b->offset, 1, &b->cnode, dest);
    if (!err)
        b->offset += bytes;
    return err;
}

static errval_t loader_slot(struct builder *b, uint64_t *s)
{
    if (b->next_loader_slot >= (1ull << DOMAIN_ROOT_CNODE_BITS))
        return ERR_TOO_MANY;
    *s = b->next_loader_slot++;
    return ERR_OK;
}

/* Map the capability in slot s at vaddr, making page tables as needed. */
static errval_t map_slot(struct builder *b, uint64_t vaddr, uint64_t s, uint32_t flags)
{
    for (int tries = 0; tries < 4; tries++) {
        int missing = 0;
        errval_t err = vspace_map(b->pml4, vaddr, slot(b, s), flags, &missing);
        if (err != ERR_MAP_NO_TABLE)
            return err;
        static const enum cap_type vnode_of_level[] = { 0, CAP_VNODE_PT, CAP_VNODE_PD, CAP_VNODE_PDPT };
        uint64_t t;
        err = loader_slot(b, &t);
        if (!err)
            err = take(b, vnode_of_level[missing], 0, t);
        if (err)
            return err;
        uint64_t span = 1ull << (12 + 9 * missing);   /* what the new table covers */
        err = vspace_map(b->pml4, ALIGN_DOWN(vaddr, span), slot(b, t), 0, 0);
        if (err)
            return err;
    }
    return ERR_MAP_NO_TABLE;
}

/* Frames for [va, va+bytes) (page-aligned), holding the n bytes at `src`
 * from offset `skip` into the range (zeros elsewhere). A frame never
 * crosses a page table, so each maps as one capability. */
static errval_t load_range(struct builder *b, uint64_t va, uint64_t bytes, const uint8_t *src, uint64_t skip,
                           uint64_t n, uint32_t flags)
{
    for (uint64_t pos = 0; pos < bytes;) {
        uint64_t at = va + pos;
        uint64_t chunk = MIN(va + bytes, ALIGN_DOWN(at, PAGE_2M) + PAGE_2M) - at;
        uint64_t s;
        errval_t err = loader_slot(b, &s);
        if (!err)
            err = take(b, CAP_FRAME, chunk, s);
        if (err)
            return err;
        uint64_t lo = MAX(skip, pos), hi = MIN(skip + n, pos + chunk);
        if (hi > lo)
            memcpy((uint8_t *)phys_to_virt(slot(b, s)->cap.base) + (lo - pos), src + (lo - skip), hi - lo);
        err = map_slot(b, at, s, flags);
        if (err)
            return err;
        pos += chunk;
    }
    return ERR_OK;
}

/* A read-only segment whose pages lie whole in the boot module (page-aligned
 * in memory and in the file, nothing to zero) is not copied: every domain of
 * that program maps the module's own pages, read-only. The modules stay
 * reserved for the machine's life (bootinfo.c), and they are never written.
 * Besides memory, this saves an emulator's work: QEMU's TCG translates code
 * per physical page, so 255 monitors running 255 private copies of the same
 * text cost 255 translations of it (most of a 255-core boot under TCG). */
static errval_t share_range(struct builder *b, uint64_t va, uint64_t bytes, uint64_t phys, uint32_t flags)
{
    for (uint64_t pos = 0; pos < bytes;) {
        uint64_t at = va + pos;
        uint64_t chunk = MIN(va + bytes, ALIGN_DOWN(at, PAGE_2M) + PAGE_2M) - at;
        uint64_t s;
        errval_t err = loader_slot(b, &s);
        if (err)
            return err;
        struct capability f = { .type = CAP_FRAME, .rights = CAP_RIGHT_READ | CAP_RIGHT_EXEC,
                                .base = phys + pos, .bytes = chunk };
        err = cap_install_root(slot(b, s), &f);
        if (!err)
            err = map_slot(b, at, s, flags);
        if (err)
            return err;
        pos += chunk;
    }
    return ERR_OK;
}

static errval_t load_program(struct builder *b, const uint8_t *image, size_t image_len,
                             const struct elf_info *info)
{
    uint64_t image_phys = (uint64_t)image - DIRECT_MAP_BASE;
    for (unsigned i = 0; i < info->nseg; i++) {
        const struct elf_segment *g = &info->seg[i];
        uint64_t va = ALIGN_DOWN(g->vaddr, CAP_PAGE_SIZE);
        uint64_t bytes = ALIGN_UP(g->vaddr + g->memsz, CAP_PAGE_SIZE) - va;
        uint32_t flags = (g->flags & PF_W ? MAP_WRITE : 0) | (g->flags & PF_X ? MAP_EXEC : 0);
        errval_t err;
        if (!(g->flags & PF_W) && g->vaddr == va && g->filesz == g->memsz &&
            (image_phys + g->offset) % CAP_PAGE_SIZE == 0 && g->offset + bytes <= image_len)
            err = share_range(b, va, bytes, image_phys + g->offset, flags);
        else
            err = load_range(b, va, bytes, image + g->offset, g->vaddr - va, g->filesz, flags);
        if (err)
            return err;
    }
    return ERR_OK;
}

static void copy_word(char *dst, size_t size, const char *src, size_t n)
{
    n = MIN(n, size - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

errval_t domain_spawn(const struct spawn_args *a, struct dispatcher **out, struct cte **disp_cte)
{
    uint64_t t0 = rdtsc();
    /* The program first: a malformed module is refused before anything is
     * taken. */
    size_t name_len = 0;
    while (name_len < a->cmd_len && a->cmd[name_len] != ' ')
        name_len++;
    const void *image;
    size_t image_len;
    errval_t err = boot_module_find(a->cmd, name_len, &image, &image_len);
    if (err)
        return err;
    static struct elf_info info;
    err = elf_check(image, image_len, &info);
    if (err)
        return err;
    if (a->ram->cap.type != CAP_RAM)
        return ERR_CAP_TYPE;
    if (a->ram->first_child)
        return ERR_CAP_HAS_CHILDREN;

    struct builder b = { .ram = a->ram, .next_loader_slot = SLOT_LOADER_FIRST };
    /* The root CNode is born in the scratch CNode, then moves into itself. */
    struct capability scratch_cnode = { .type = CAP_CNODE, .rights = CAP_RIGHTS_ALL, .bits = 2,
                                        .base = percore_var_phys(scratch) };
    memset(scratch, 0, sizeof scratch);
    uint64_t cbytes = cap_object_bytes(CAP_CNODE, DOMAIN_ROOT_CNODE_BITS);
    err = cap_retype(a->ram, CAP_CNODE, DOMAIN_ROOT_CNODE_BITS, 0, 1, &scratch_cnode, 0);
    if (err)
        return err;
    b.offset = cbytes;
    b.cnode = scratch[0].cap;
    struct cte *root = slot(&b, SLOT_ROOT_CNODE);
    cap_move(&scratch[0], root);

    struct cte *dcte;
    struct dispatcher *d = 0;
    err = take(&b, CAP_DISPATCHER, 0, SLOT_DISPATCHER);
    if (!err) {
        dcte = slot(&b, SLOT_DISPATCHER);
        d = dispatcher_of(&dcte->cap);
        char name[DOMAIN_NAME_MAX];
        copy_word(name, sizeof name, a->cmd, name_len);
        dispatcher_init(d, name, next_domain_id++);
        err = take(&b, CAP_VNODE_PML4, 0, SLOT_PML4);
    }
    if (!err) {
        b.pml4 = slot(&b, SLOT_PML4)->cap.base;
        vspace_init_pml4(b.pml4);
        err = load_program(&b, image, image_len, &info);
    }
    if (!err)
        err = load_range(&b, USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_SIZE, 0, 0, 0, MAP_WRITE);
    if (!err)
        err = take(&b, CAP_FRAME, CAP_PAGE_SIZE, SLOT_STARTUP);
    if (!err) {
        struct startup_info *si = phys_to_virt(slot(&b, SLOT_STARTUP)->cap.base);
        si->magic = STARTUP_MAGIC;
        si->core_id = core.core_id;
        si->ncores = boot_topology()->ncpus;
        si->domain_id = d->id;
        si->is_monitor = a->monitor;
        si->tsc_hz = core.tsc_hz;
        copy_word(si->name, sizeof si->name, a->cmd, name_len);
        if (name_len < a->cmd_len)
            copy_word(si->args, sizeof si->args, a->cmd + name_len + 1, a->cmd_len - name_len - 1);
        err = map_slot(&b, USER_STARTUP_VA, SLOT_STARTUP, 0);
    }
    if (!err && a->monitor) {
        struct capability kernel = { .type = CAP_KERNEL, .rights = CAP_RIGHTS_ALL, .original = 1 };
        struct capability io = { .type = CAP_IO, .rights = CAP_RIGHTS_ALL, .original = 1, .base = 0,
                                 .bytes = 65536 };
        err = cap_install_root(slot(&b, SLOT_KERNEL), &kernel);
        if (!err)
            err = cap_install_root(slot(&b, SLOT_IO), &io);
    }
    uint64_t machine_base, machine_bytes;
    if (!err && cputopo_frame(&machine_base, &machine_bytes)) {
        /* Every domain may read the machine frame (topo_report.h). */
        struct capability m = { .type = CAP_FRAME, .rights = CAP_RIGHT_READ, .base = machine_base,
                                .bytes = machine_bytes };
        err = cap_install_root(slot(&b, SLOT_MACHINE), &m);
    }
    if (!err && a->parent_disp)
        err = cap_mint(a->parent_disp, slot(&b, SLOT_MONITOR_EP), CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, d->id, 0, 0);
    /* What is left is the domain's own RAM. */
    b.offset = ALIGN_UP(b.offset, CAP_PAGE_SIZE);
    uint64_t rest = a->ram->cap.bytes > b.offset ? a->ram->cap.bytes - b.offset : 0;
    if (!err && rest)
        err = cap_retype(a->ram, CAP_RAM, rest, b.offset, 1, &b.cnode, SLOT_RAM);
    if (err) {
        /* Everything made so far lives in the new CNode: one delete frees it. */
        cap_delete(root);
        return err;
    }
    d->pml4 = b.pml4;
    d->cnode_base = b.cnode.base;
    d->cnode_bits = DOMAIN_ROOT_CNODE_BITS;
    d->is_monitor = a->monitor;
    d->ram_bytes = a->ram->cap.bytes;
    d->created_tsc = rdtsc();
    d->regs = (struct trap_frame){ .rip = info.entry, .cs = SEL_USER_CODE, .rflags = RFLAGS_USER_INITIAL,
                                   .rsp = USER_STACK_TOP, .ss = SEL_USER_DATA, .rdi = USER_STARTUP_VA };
    dispatcher_make_runnable(d);
    struct event e;
    event_begin(&e, "domain_spawn");
    event_u64(&e, "core", core.core_id);
    event_u64(&e, "domain", d->id);
    event_str(&e, "name", d->name);
    event_u64(&e, "cycles", rdtsc() - t0);
    event_u64(&e, "ram_bytes", d->ram_bytes);
    event_u64(&e, "ram_base", a->ram->cap.base);
    event_end(&e);
    if (out)
        *out = d;
    if (disp_cte)
        *disp_cte = dcte;
    return ERR_OK;
}

errval_t domain_span(const struct span_build *sb, struct dispatcher **out, struct cte **disp_cte)
{
    const struct span_args *a = sb->a;
    if (sb->ram->cap.type != CAP_RAM || sb->ram->cap.bytes != SPAN_RAM_BYTES)
        return ERR_RETYPE_SIZE;
    if (sb->ram->first_child)
        return ERR_CAP_HAS_CHILDREN;
    if (a->rip >= USER_MAX || a->rsp > USER_MAX)
        return ERR_BAD_ADDRESS;
    struct builder b = { .ram = sb->ram };
    struct capability scratch_cnode = { .type = CAP_CNODE, .rights = CAP_RIGHTS_ALL, .bits = 2,
                                        .base = percore_var_phys(scratch) };
    memset(scratch, 0, sizeof scratch);
    errval_t err = cap_retype(sb->ram, CAP_CNODE, SPAN_CNODE_BITS, 0, 1, &scratch_cnode, 0);
    if (err)
        return err;
    b.offset = cap_object_bytes(CAP_CNODE, SPAN_CNODE_BITS);
    b.cnode = scratch[0].cap;
    struct cte *root = slot(&b, SLOT_ROOT_CNODE);
    cap_move(&scratch[0], root);

    struct cte *dcte = 0;
    struct dispatcher *d = 0;
    err = take(&b, CAP_DISPATCHER, 0, SLOT_DISPATCHER);
    if (!err) {
        dcte = slot(&b, SLOT_DISPATCHER);
        d = dispatcher_of(&dcte->cap);
        char name[DOMAIN_NAME_MAX];
        copy_word(name, sizeof name, a->name, strnlen(a->name, sizeof a->name));
        dispatcher_init(d, name, next_domain_id++);
        err = take(&b, CAP_VNODE_PML4, 0, SLOT_PML4);
    }
    /* Moved, not copied: a copy would be the monitor's copy's child, and go
     * when the monitor lets go of its own. */
    if (!err)
        err = cap_move(sb->home_pml4, slot(&b, SLOT_SPAN_HOME));
    if (!err)
        err = cap_copy(sb->notify, slot(&b, SLOT_SPAN_NOTIFY));
    uint64_t machine_base, machine_bytes;
    if (!err && cputopo_frame(&machine_base, &machine_bytes)) {
        struct capability m = { .type = CAP_FRAME, .rights = CAP_RIGHT_READ, .base = machine_base,
                                .bytes = machine_bytes };
        err = cap_install_root(slot(&b, SLOT_MACHINE), &m);
    }
    if (!err)
        err = cap_mint(sb->parent_disp, slot(&b, SLOT_MONITOR_EP), CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, d->id, 0, 0);
    if (err) {
        cap_delete(root);
        return err;
    }
    uint64_t pml4 = slot(&b, SLOT_PML4)->cap.base, home = slot(&b, SLOT_SPAN_HOME)->cap.base;
    vspace_init_pml4(pml4);
    vspace_span_copy(pml4, home);
    d->pml4 = pml4;
    d->span_home = home;
    d->home_core = a->home_core;
    d->home_domain = a->home_domain;
    d->cnode_base = b.cnode.base;
    d->cnode_bits = SPAN_CNODE_BITS;
    d->ram_bytes = SPAN_RAM_BYTES;
    d->created_tsc = rdtsc();
    d->regs = (struct trap_frame){ .rip = a->rip, .cs = SEL_USER_CODE, .rflags = RFLAGS_USER_INITIAL,
                                   .rsp = a->rsp, .ss = SEL_USER_DATA, .rdi = a->arg };
    dispatcher_make_runnable(d);
    struct event e;
    event_begin(&e, "domain_span");
    event_u64(&e, "core", core.core_id);
    event_u64(&e, "domain", d->id);
    event_str(&e, "name", d->name);
    event_u64(&e, "home_core", a->home_core);
    event_u64(&e, "home_domain", a->home_domain);
    event_end(&e);
    *out = d;
    *disp_cte = dcte;
    return ERR_OK;
}

void domain_span_home_lost(const struct cte *c)
{
    for (struct dispatcher *d = dispatcher_first(); d; d = d->next) {
        if (!d->span_home || !d->cnode_base)
            continue;
        if (c->cap.base != d->span_home)
            continue;
        /* It runs on those tables while its CSpace holds a capability to
         * them other than the one leaving (wherever it moved or copied
         * it; one it sent away no longer counts). A span's CNode is 16
         * slots. */
        struct capability cn = { .type = CAP_CNODE, .bits = d->cnode_bits, .base = d->cnode_base };
        bool holds = false;
        for (uint64_t i = 0; i < (1ull << d->cnode_bits) && !holds; i++) {
            struct cte *x = 0;
            holds = !cap_slot(&cn, i, &x) && x != c && x->cap.type == CAP_VNODE_PML4 &&
                    x->cap.base == d->span_home;
        }
        if (holds)
            continue;
        /* Its tables may be freed once this goes: never run on them again. */
        if ((read_cr3() & PTE_ADDR) == d->pml4)
            write_cr3(core.pml4_phys);
        d->span_home = 0;
        d->pml4 = 0;
        notify_forget(d);
        d->state = DOMAIN_STOPPED;
        if (!d->end_reported) {
            /* Not its own end (that is domain_kill's): its home took the
             * tables back, as when the home domain ends. */
            struct event e;
            event_begin(&e, "span_stopped");
            event_u64(&e, "core", core.core_id);
            event_u64(&e, "domain", d->id);
            event_u64(&e, "home_core", d->home_core);
            event_u64(&e, "home_domain", d->home_domain);
            event_end(&e);
        }
        obituary_record(d);
    }
}

/* Every end's event: who, and why (the caller adds `reclaimed`). */
static void exit_event_begin(struct event *e, const struct dispatcher *d, const char *why)
{
    event_begin(e, "domain_exit");
    event_u64(e, "core", core.core_id);
    event_u64(e, "domain", d->id);
    event_str(e, "name", d->name);
    event_str(e, "why", why);
}

void domain_ended_under(struct dispatcher *d, const char *why)
{
    /* Exits, faults and kills are said by domain_kill (their reason is
     * noted first); the memory service's instance that lent a domain its
     * RAM ending is one of these. */
    if (d->end_reported || d->end_reason || d->is_monitor)
        return;
    struct event e;
    exit_event_begin(&e, d, why);
    event_bool(&e, "reclaimed", true);
    event_end(&e);
}

void domain_kill(struct dispatcher *d, const char *why)
{
    struct event e;
    exit_event_begin(&e, d, why);
    /* The root CNode's original capability normally sits in the CNode
     * itself; deleting it deletes all the domain holds, the dispatcher too. */
    struct capability cn = { .type = CAP_CNODE, .bits = d->cnode_bits, .base = d->cnode_base };
    struct cte *root = 0;
    bool reclaimed = false;
    /* A domain with span dispatchers on other cores: they run on its page
     * tables until their cores' monitors revoke their copies of its root
     * (capops_reclaim, when our monitor frees its RAM). Deleting its
     * CSpace here would empty the tables under them first (each Frame and
     * table unmapped as its capability goes), and they would fault at
     * their own code instead of stopping (span_stopped). So it is only
     * stopped here, as a domain that hid its root CNode is: the monitor's
     * revoke of its RAM takes everything back once the copies are gone. */
    bool spanned = d->span_cores[0] | d->span_cores[1] | d->span_cores[2] | d->span_cores[3];
    if (!spanned && d->cnode_base && !cap_slot(&cn, SLOT_ROOT_CNODE, &root) && root->cap.type == CAP_CNODE &&
        root->cap.original && root->cap.base == d->cnode_base) {
        cap_delete(root);
        span_flush_settle();   /* not in a system call, maybe (a fault) */
        reclaimed = true;
    } else {
        /* It spans, or hid its root CNode: stop it here; its monitor, told
         * at once, takes it back by revoking the RAM it was built from. */
        dispatcher_block(d);
        notify_forget(d);
        d->state = DOMAIN_STOPPED;
        obituary_record(d);
    }
    event_bool(&e, "reclaimed", reclaimed);
    event_end(&e);
}

static const char *const fault_names[32] = {
    [0] = "divide error", [1] = "debug trap", [3] = "breakpoint", [4] = "overflow",
    [5] = "bound range exceeded", [6] = "invalid opcode", [7] = "device not available",
    [10] = "invalid TSS", [11] = "segment not present", [12] = "stack fault",
    [13] = "general protection fault", [14] = "page fault", [16] = "x87 floating-point error",
    [17] = "alignment check", [19] = "SIMD floating-point error",
};

void domain_fault(struct dispatcher *d, const struct trap_frame *f)
{
    const char *what = f->vector < 32 && fault_names[f->vector] ? fault_names[f->vector] : "exception";
    uint64_t addr = f->vector == 14 ? read_cr2() : f->rip;
    char name[DOMAIN_NAME_MAX];
    memcpy(name, d->name, sizeof name);
    kprintf("domain %s (id %u) on core %u: %s at rip 0x%llx, address 0x%llx (error 0x%llx); stopped\n", name,
            d->id, core.core_id, what, (unsigned long long)f->rip, (unsigned long long)addr,
            (unsigned long long)f->error);
    struct event e;
    event_begin(&e, "domain_fault");
    event_u64(&e, "core", core.core_id);
    event_u64(&e, "domain", d->id);
    event_str(&e, "name", name);
    event_str(&e, "what", what);
    event_u64(&e, "vector", f->vector);
    event_u64(&e, "rip", f->rip);
    event_u64(&e, "addr", addr);
    event_end(&e);
    obituary_note(d, DOMAIN_END_FAULT, (int64_t)f->vector);
    domain_kill(d, what);
}
