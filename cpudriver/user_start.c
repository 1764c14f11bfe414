/*
 * User space's start on each core (user_start.h).
 */
#include <atoll/abi/domain.h>
#include "boot_report.h"
#include "bootinfo.h"
#include "cap.h"
#include "capkern.h"
#include "console.h"
#include "core.h"
#include "dispatcher.h"
#include "domain.h"
#include "lib.h"
#include "panic.h"
#include "pmem.h"
#include "report.h"
#include "topology.h"
#include "user_start.h"
#include "x86_64/apic.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/paging.h"

/* Each core's share of RAM for user space, from its own node: given to
 * its monitor as one RAM capability. */
struct core_ram {
    uint64_t base, bytes;
};
BOOTSHARED static struct core_ram core_ram[TOPO_MAX_CPUS];

bool boot_core_has_user_ram(uint32_t c) { return c < TOPO_MAX_CPUS && core_ram[c].bytes > 0; }
/* One page per core N > 0 shared by core 0's monitor and core N's: the
 * user-space channel they start with (monitor/boot_channel.h). */
BOOTSHARED static uint64_t boot_channel[TOPO_MAX_CPUS];

#define MIN_CORE_RAM (4ull << 20)
#define BOOT_CORE_EXTRA_RAM (16ull << 20)

void user_ram_plan(void)
{
    const struct topology *t = boot_topology();
    uint32_t node_arg = 0;
    /* The boot channels first, while the RAM next to the kernel's is free:
     * what the shares leave is the top of the RAM below 4 GiB, where the
     * boot loader ran its own code, and under emulation the first write to
     * such a page throws away its translations, at a cost that grows with
     * the number of vCPUs (docs/bench.md, Boot time). */
    for (uint32_t c = 1; c < t->ncpus; c++) {
        node_arg = t->numa_from_srat ? t->cpus[c].node : PMEM_ANY_NODE;
        boot_channel[c] = pmem_alloc(4096, 4096, node_arg, ~0ull);
        if (!boot_channel[c])
            boot_channel[c] = pmem_alloc(4096, 4096, PMEM_ANY_NODE, ~0ull);
        if (boot_channel[c])
            memset(phys_to_virt(boot_channel[c]), 0, 4096);
    }
    uint32_t without = 0, first_without = 0, last_without = 0;
    for (uint32_t n = 0; n < t->nnodes; n++) {
        uint32_t count = topo_cpus_on_node(t, n);
        if (!count)
            continue;
        node_arg = t->numa_from_srat ? n : PMEM_ANY_NODE;
        /* Leave a little for the kernel's own later needs. */
        uint64_t free = pmem_free_bytes(node_arg);
        free = free > (1ull << 20) ? free - (1ull << 20) : 0;
        /* The boot core's monitor also starts the system's servers (names,
         * starter, shell): on a machine of many cores an even share would
         * not hold them. At most a quarter of its node goes to that. */
        uint64_t extra = n == t->cpus[0].node ? MIN(BOOT_CORE_EXTRA_RAM, ALIGN_DOWN(free / 4, PAGE_2M)) : 0;
        /* Below the minimum, the first cores get the minimum and the last
         * none (said once, below), rather than every core too little. */
        uint64_t share = MAX(ALIGN_DOWN((free - extra) / count, PAGE_2M), MIN_CORE_RAM);
        for (uint32_t c = 0; c < t->ncpus; c++) {
            if (t->cpus[c].node != n)
                continue;
            uint64_t want = share + (c == 0 ? extra : 0), base = 0;
            while (want >= MIN_CORE_RAM && !base) {
                base = pmem_alloc(want, PAGE_2M, node_arg, ~0ull);
                if (!base)
                    want /= 2;
            }
            if (!base && node_arg != PMEM_ANY_NODE) {
                want = MIN_CORE_RAM;
                base = pmem_alloc(want, 4096, PMEM_ANY_NODE, ~0ull);
                if (base) {
                    char msg[120];
                    snprintf(msg, sizeof msg, "core %u: no RAM left on node %u for user space; took 4 MiB from node %u",
                             c, n, topo_node_of_addr(t, base));
                    boot_warn(msg);
                }
            }
            core_ram[c] = (struct core_ram){ base, base ? want : 0 };
            if (!base) {
                if (!without++)
                    first_without = c;
                last_without = c;
            }
        }
    }
    if (without) {
        char msg[200], who[48];
        if (without == 1)
            snprintf(who, sizeof who, "1 of %u cores (%u) has", t->ncpus, first_without);
        else
            snprintf(who, sizeof who, "%u of %u cores (%u to %u) have", without, t->ncpus, first_without, last_without);
        snprintf(msg, sizeof msg, "%s no RAM left for user space, so no monitor: "
                 "give the machine more memory (4 MiB a core at least)", who);
        boot_warn(msg);
    }
}

bool boot_user_memory(uint64_t base, uint64_t bytes)
{
    const struct topology *t = boot_topology();
    if (bytes == 0 || base + bytes < base)
        return false;
    for (uint32_t c = 0; c < t->ncpus; c++) {
        const struct core_ram *r = &core_ram[c];
        if (r->bytes && base >= r->base && base + bytes <= r->base + r->bytes)
            return true;
        if (boot_channel[c] && base >= boot_channel[c] && base + bytes <= boot_channel[c] + 4096)
            return true;
    }
    return false;
}

static bool touches_page(uint64_t base, uint64_t bytes, uint64_t page)
{
    page &= ~(uint64_t)4095;
    return base < page + 4096 && page < base + bytes;
}

bool boot_device_memory(uint64_t base, uint64_t bytes)
{
    const struct mb2_info *mb = boot_info();
    if (bytes == 0 || base + bytes < base)
        return false;
    for (size_t i = 0; i < mb->mmap_count; i++) {
        const struct mb2_mmap_entry *e = &mb->mmap[i];
        if (base < e->base + e->len && e->base < base + bytes)
            return false;
    }
    /* The interrupt controllers' registers are the kernels' alone: a user
     * mapping of them could send IPIs or reroute interrupts. */
    const struct acpi_madt_info *m = boot_madt();
    if (touches_page(base, bytes, m->lapic_addr) || touches_page(base, bytes, apic_mmio_phys()))
        return false;
    for (size_t i = 0; i < m->nioapics; i++)
        if (touches_page(base, bytes, m->ioapics[i].addr))
            return false;
    return true;
}

/* Give a new monitor its boot channel frames. */
static void install_boot_channels(const struct dispatcher *d)
{
    const struct topology *t = boot_topology();
    struct capability cn = { .type = CAP_CNODE, .bits = d->cnode_bits, .base = d->cnode_base };
    for (uint32_t c = 1; c < t->ncpus; c++) {
        if (!boot_channel[c] || (core.core_id != 0 && core.core_id != c))
            continue;
        struct capability f = { .type = CAP_FRAME, .rights = CAP_RIGHT_READ | CAP_RIGHT_WRITE, .original = 1,
                                .base = boot_channel[c], .bytes = 4096 };
        struct cte *s;
        if (!cap_slot(&cn, SLOT_BOOT_CHANNELS + (core.core_id ? 0 : c), &s))
            cap_install_root(s, &f);
    }
}

/* The boot core cannot start user space: say why, and end the machine
 * with status 1 at once rather than leave a runner waiting for a prompt. */
_Noreturn static void boot_cannot_go_on(const char *why, errval_t err)
{
    kprintf("boot: %s: %s (%s); the machine stops\n", why, err_name(err), err_text(err));
    struct event e;
    event_begin(&e, "boot_failed");
    event_str(&e, "why", why);
    event_str(&e, "error", err_name(err));
    event_end(&e);
    machine_exit(1);
}

/* Root capabilities of this core: all its user RAM. The monitor's objects
 * and the rest of the RAM all descend from it. */
static struct cte ram_root;

_Noreturn void user_start(void)
{
    capkern_init();
    const struct core_ram *r = &core_ram[core.core_id];
    struct capability ram = { .type = CAP_RAM, .rights = CAP_RIGHTS_ALL, .original = 1, .base = r->base,
                              .bytes = r->bytes };
    const void *image;
    size_t len;
    bool have_monitor = boot_module_find("monitor", 7, &image, &len) == ERR_OK;
    if (have_monitor && !r->bytes && core.is_bsp)
        boot_cannot_go_on("the boot core has no RAM left for user space (give the machine more memory)",
                          ERR_NO_MEMORY);
    if (r->bytes && have_monitor) {
        cap_install_root(&ram_root, &ram);
        /* The monitor gets its module's arguments (say, mesh=all). */
        char cmd[200];
        const char *args = boot_module_args("monitor", 7);
        int n = snprintf(cmd, sizeof cmd, "monitor%s%s", *args ? " " : "", args);
        size_t cmd_len = n < 0 ? 7 : (size_t)n < sizeof cmd ? (size_t)n : sizeof cmd - 1;
        struct spawn_args a = { .cmd = cmd, .cmd_len = cmd_len, .ram = &ram_root, .monitor = true };
        struct dispatcher *d;
        errval_t err = domain_spawn(&a, &d, 0);
        if (err && core.is_bsp)
            boot_cannot_go_on("cannot start the monitor", err);
        if (err)
            kprintf("core %u: cannot start the monitor: %s (%s)\n", core.core_id, err_name(err), err_text(err));
        else
            install_boot_channels(d);
    }
    schedule();
}
