/*
 * The CPU driver's start: bsp_main on the boot core, ap_main on every other.
 *
 * The boot core, on the boot page tables: reads the multiboot2 information
 * and ACPI, builds the topology, takes stock of physical memory, measures
 * the TSC and APIC timer, carves every core's kernel block from that core's
 * node and builds every core's page tables. Then it moves its own writable
 * state into its own block, switches to its own tables, starts the other
 * cores, waits for them to check in and prints the boot report.
 */
#include <atoll/abi/domain.h>
#include <atoll/abi/errors.h>
#include "acpi.h"
#include "bootinfo.h"
#include "cap.h"
#include "capkern.h"
#include "console.h"
#include "core.h"
#include "dispatcher.h"
#include "domain.h"
#include "lib.h"
#include "linechan.h"
#include "multiboot2.h"
#include "panic.h"
#include "percore.h"
#include "pmem.h"
#include "report.h"
#include "smp.h"
#include "topology.h"
#include "topo_report.h"
#include "x86_64/apic.h"
#include "x86_64/cpu.h"
#include "x86_64/gdt.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/paging.h"
#include "x86_64/serial.h"
#include "x86_64/trap.h"
#include "x86_64/usermode.h"

/* From boot/multiboot2_entry.S (identity-mapped; gone after the switch). */
extern uint64_t boot_tsc0, boot_mbi;
extern uint32_t boot_magic;
extern char boot_pml4[];
void percore_switch(void *dst, uint64_t size, uint64_t cr3);

#define GiB (1ull << 30)
#define DEFAULT_TIMER_HZ 100
#define DEFAULT_SMP_TIMEOUT_MS 10000

/* Boot-time tables: written before the other cores start, read-only after. */
BOOTSHARED static struct mb2_info mb;
BOOTSHARED static struct acpi_madt_info madt;
BOOTSHARED static struct acpi_srat_info srat;
BOOTSHARED static struct acpi_slit_info slit;
BOOTSHARED static struct topology topo;
BOOTSHARED static struct core_block blocks[TOPO_MAX_CPUS];
BOOTSHARED static char cmdline[256];

/* How much of physical memory the boot tables' direct map covers. */
static uint64_t boot_mapped_top = 4 * GiB;
static int warnings;
static uint64_t boot_core_up_tsc;

struct boot_options {
    bool poweroff;
    bool no_x2apic;
    uint64_t smp_timeout_ms;
    uint32_t timer_hz;
    uint32_t fault_core, probe_core, unlisted_apic;
    bool panic_selftest;
};

static void warn(const char *msg)
{
    warnings++;
    kprintf("warning: %s\n", msg);
    struct event e;
    event_begin(&e, "warning");
    event_str(&e, "msg", msg);
    event_end(&e);
}

static void warn_cb(void *ctx, const char *msg)
{
    (void)ctx;
    warn(msg);
}

static const void *map_phys(void *ctx, uint64_t phys, size_t len)
{
    (void)ctx;
    if (phys + len < phys || phys + len > boot_mapped_top)
        return 0;
    return phys_to_virt(phys);
}

/* Decimal number at s (n bytes); false if empty or not all digits. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (~0ull - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool value_u64(const char *key, uint64_t *out)
{
    const char *v;
    size_t n;
    if (!cmdline_get(cmdline, key, &v, &n))
        return false;
    if (!parse_u64(v, n, out)) {
        char msg[96];
        snprintf(msg, sizeof msg, "kernel command line: %s needs a decimal number; ignored", key);
        warn(msg);
        return false;
    }
    return true;
}

/* "selftest=fault:N", "probe:N", "unlisted:APIC" or "panic". */
static void parse_selftest(struct boot_options *o)
{
    const char *v;
    size_t n;
    if (!cmdline_get(cmdline, "selftest", &v, &n))
        return;
    static const struct { const char *name; size_t off; } kinds[] = {
        { "fault:", __builtin_offsetof(struct boot_options, fault_core) },
        { "probe:", __builtin_offsetof(struct boot_options, probe_core) },
        { "unlisted:", __builtin_offsetof(struct boot_options, unlisted_apic) },
    };
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        size_t k = strlen(kinds[i].name);
        uint64_t num;
        if (n > k && !strncmp(v, kinds[i].name, k) && parse_u64(v + k, n - k, &num) && num < NO_CORE) {
            *(uint32_t *)((char *)o + kinds[i].off) = (uint32_t)num;
            return;
        }
    }
    if (n == 5 && !strncmp(v, "panic", 5)) {
        o->panic_selftest = true;
        return;
    }
    warn("kernel command line: unknown selftest (fault:N, probe:N, unlisted:APIC, panic); ignored");
}

static void parse_options(struct boot_options *o)
{
    uint64_t v;
    *o = (struct boot_options){
        .smp_timeout_ms = DEFAULT_SMP_TIMEOUT_MS, .timer_hz = DEFAULT_TIMER_HZ,
        .fault_core = NO_CORE, .probe_core = NO_CORE, .unlisted_apic = NO_CORE,
    };
    o->poweroff = cmdline_get(cmdline, "poweroff", 0, 0);
    o->no_x2apic = cmdline_get(cmdline, "nox2apic", 0, 0);
    if (value_u64("smp_timeout_ms", &v))
        o->smp_timeout_ms = v;
    if (value_u64("timer_hz", &v)) {
        if (v >= 1 && v <= 10000)
            o->timer_hz = (uint32_t)v;
        else
            warn("kernel command line: timer_hz must be 1..10000; using 100");
    }
    parse_selftest(o);
}

/* The APIC id of the CPU running this, from CPUID (before the APIC is on). */
static uint32_t cpuid_apic_id(void)
{
    uint32_t a, b, c, d;
    cpuid(0, 0, &a, &b, &c, &d);
    if (a >= 0xb) {
        cpuid(0xb, 0, &a, &b, &c, &d);
        if (b)
            return d;
    }
    cpuid(1, 0, &a, &b, &c, &d);
    return b >> 24;
}

static void read_boot_information(void)
{
    if (boot_magic != MB2_BOOTLOADER_MAGIC)
        panic("not started by a multiboot2 loader (EAX was 0x%x, expected 0x%x)", boot_magic,
              MB2_BOOTLOADER_MAGIC);
    if (boot_mbi == 0 || boot_mbi >= 4 * GiB - 8)
        panic("multiboot2 information at 0x%llx lies outside the first 4 GiB", (unsigned long long)boot_mbi);
    errval_t err = mb2_parse(phys_to_virt(boot_mbi), 4 * GiB - boot_mbi, &mb);
    if (err)
        panic("bad multiboot2 information at 0x%llx: %s (%s)", (unsigned long long)boot_mbi, err_name(err),
              err_text(err));
    size_t n = strlen(mb.cmdline);
    if (n >= sizeof cmdline) {
        warn("kernel command line longer than 255 bytes; truncated");
        n = sizeof cmdline - 1;
    }
    memcpy(cmdline, mb.cmdline, n);
    cmdline[n] = 0;
}

static void read_acpi(uint32_t boot_apic)
{
    struct acpi_mapper mapper = { map_phys, 0 };
    struct acpi_tables tables;
    uint64_t root;
    bool xsdt;
    if (!mb.rsdp)
        panic("no ACPI RSDP in the multiboot2 information (tags 14 and 15 absent)");
    errval_t err = acpi_parse_rsdp(mb.rsdp, mb.rsdp_len, &root, &xsdt);
    if (!err)
        err = acpi_find_tables(&mapper, root, xsdt, &tables);
    if (err)
        panic("ACPI: cannot read the %s at 0x%llx: %s (%s)", xsdt ? "XSDT" : "RSDT", (unsigned long long)root,
              err_name(err), err_text(err));
    if (!tables.madt_phys)
        panic("ACPI: no MADT (APIC table): cannot find the CPUs");
    err = acpi_parse_madt(map_phys(0, tables.madt_phys, tables.madt_len), tables.madt_len, &madt);
    if (err)
        panic("ACPI: bad MADT at 0x%llx: %s (%s)", (unsigned long long)tables.madt_phys, err_name(err),
              err_text(err));
    const struct acpi_srat_info *sp = 0;
    const struct acpi_slit_info *lp = 0;
    char msg[160];
    if (tables.srat_phys) {
        err = acpi_parse_srat(map_phys(0, tables.srat_phys, tables.srat_len), tables.srat_len, &srat);
        if (err) {
            snprintf(msg, sizeof msg, "ACPI: bad SRAT: %s (%s); treating the machine as one NUMA node",
                     err_name(err), err_text(err));
            warn(msg);
        } else {
            sp = &srat;
        }
    }
    if (tables.slit_phys && sp) {
        err = acpi_parse_slit(map_phys(0, tables.slit_phys, tables.slit_len), tables.slit_len, &slit);
        if (err) {
            snprintf(msg, sizeof msg, "ACPI: bad SLIT: %s (%s); using distances 10 local, 20 remote",
                     err_name(err), err_text(err));
            warn(msg);
        } else {
            lp = &slit;
        }
    }
    err = topo_build(&madt, sp, lp, boot_apic, &topo, warn_cb, 0);
    if (err == ERR_OVERLAP && sp) {
        warn("ACPI: SRAT memory ranges of different nodes overlap; treating the machine as one NUMA node");
        err = topo_build(&madt, 0, 0, boot_apic, &topo, warn_cb, 0);
    }
    if (err)
        panic("cannot build the machine topology from MADT/SRAT/SLIT: %s (%s)", err_name(err), err_text(err));
}

static void take_stock_of_memory(void)
{
    struct pmem_reserved reserved[2 + MB2_MAX_MODULES];
    int n = 0;
    uint32_t mbi_size = *(const uint32_t *)phys_to_virt(boot_mbi);
    reserved[n++] = (struct pmem_reserved){ (uint64_t)__kernel_phys_start, (uint64_t)__kernel_phys_end,
                                            "kernel image" };
    reserved[n++] = (struct pmem_reserved){ boot_mbi, boot_mbi + mbi_size, "boot information" };
    for (size_t i = 0; i < mb.module_count; i++)
        reserved[n++] = (struct pmem_reserved){ mb.modules[i].start, mb.modules[i].end, "module" };
    errval_t err = pmem_init(&mb, &topo, reserved, n);
    if (err)
        panic("physical memory: %s (%s)", err_name(err), err_text(err));
    if (pmem_free_bytes(PMEM_ANY_NODE) == 0)
        panic("physical memory: the memory map lists no usable RAM above 1 MiB");
    if (!topo.numa_from_srat) {
        /* One node holds everything: its memory is all RAM the map lists. */
        topo.nodes[0].mem_bytes = 0;
        for (size_t i = 0; i < mb.mmap_count; i++)
            if (mb.mmap[i].type == MB2_MEM_AVAILABLE)
                topo.nodes[0].mem_bytes += mb.mmap[i].len;
    }
}

/* Extend the boot tables: direct map of all RAM (the entry code mapped only
 * the first 4 GiB) and the local APIC window. */
static void extend_boot_map(uint64_t lapic_phys)
{
    uint64_t top = ALIGN_UP(pmem_top(), PAGE_2M);
    uint64_t pages = 4 + 2 * ((top >> 30) + 1);
    uint64_t pool = pmem_alloc(pages * 4096, 4096, PMEM_ANY_NODE, 4 * GiB);
    if (!pool)
        panic("no memory below 4 GiB for the boot page tables");
    struct pt_space s = { .pml4 = (uint64_t)boot_pml4, .pool = pool, .pool_end = pool + pages * 4096,
                          .nx = core.nx };
    errval_t err = ERR_OK;
    if (top > 4 * GiB)
        err = pt_map(&s, DIRECT_MAP_BASE + 4 * GiB, 4 * GiB, top - 4 * GiB, PTE_W | PTE_NX | PT_LARGE_OK);
    if (!err)
        err = pt_map(&s, LAPIC_VA, lapic_phys, 4096, PTE_W | PTE_NX | PTE_PCD | PTE_PWT);
    if (err)
        panic("extending the boot page tables: %s", err_name(err));
    write_cr3(read_cr3());
    boot_mapped_top = top;
}

static void report_core_up(void)
{
    uint64_t base = core.kmem_phys, size = core.kmem_size;
    uint32_t kmem_node = core.kmem_node;
    kprintf("core %u up: APIC id %u, node %u, kernel memory 0x%llx-0x%llx (%llu KiB, node %u), %s\n",
            core.core_id, core.apic_id, core.node, (unsigned long long)base,
            (unsigned long long)(base + size), (unsigned long long)(size >> 10), kmem_node,
            core.x2apic ? "x2APIC" : "xAPIC");
    struct event e;
    event_begin(&e, "core_up");
    event_u64(&e, "core", core.core_id);
    event_u64(&e, "apic", core.apic_id);
    event_u64(&e, "node", core.node);
    event_u64(&e, "kmem_base", base);
    event_u64(&e, "kmem_size", size);
    event_u64(&e, "kmem_node", kmem_node);
    event_bool(&e, "x2apic", core.x2apic);
    event_bool(&e, "smep", core.smep);
    event_bool(&e, "smap", core.smap);
    event_end(&e);
}

/* Self-tests that make this core fail on purpose (see parse_selftest). */
static void __attribute__((noinline)) selftest_fault(void)
{
    /* Nothing is mapped at the bottom of the address space on any core. */
    kprintf("core %u: selftest: reading unmapped address 0x1000\n", core.core_id);
    (void)*(volatile uint64_t *)0x1000;
}

static void __attribute__((noinline)) selftest_probe(void)
{
    /* Core 0's kernel block is a hole in every other core's direct map. */
    kprintf("core %u: selftest: reading core 0's kernel memory at 0x%llx\n", core.core_id,
            (unsigned long long)boot_params.probe_phys);
    (void)*(volatile uint64_t *)phys_to_virt(boot_params.probe_phys);
}

static void run_selftests(void)
{
    if (boot_params.fault_core == core.core_id)
        selftest_fault();
    if (boot_params.probe_core == core.core_id)
        selftest_probe();
}

static void print_boot_event(void)
{
    struct event e;
    event_begin(&e, "boot");
    event_str(&e, "cmdline", cmdline);
    event_str(&e, "bootloader", mb.bootloader);
    event_u64(&e, "ram_bytes", pmem_free_bytes(PMEM_ANY_NODE));
    event_u64(&e, "tsc_hz", boot_params.tsc_hz);
    event_u64(&e, "apic_timer_hz", boot_params.apic_timer_hz);
    event_bool(&e, "x2apic", boot_params.x2apic);
    event_bool(&e, "numa_from_srat", topo.numa_from_srat);
    event_bool(&e, "dist_from_slit", topo.dist_from_slit);
    event_end(&e);
}

/* The cores of node n as a compact list of ranges: "0-3,8,10-11". */
static void format_cpuset(char *buf, size_t size, uint32_t n)
{
    size_t len = 0;
    buf[0] = 0;
    for (uint32_t c = 0; c < topo.ncpus; c++) {
        if (topo.cpus[c].node != n)
            continue;
        uint32_t last = c;
        while (last + 1 < topo.ncpus && topo.cpus[last + 1].node == n)
            last++;
        int w = last == c ? snprintf(buf + len, size - len, "%s%u", len ? "," : "", c)
                          : snprintf(buf + len, size - len, "%s%u-%u", len ? "," : "", c, last);
        if (w < 0 || (size_t)w >= size - len) {
            snprintf(buf + (size > 4 ? size - 4 : 0), 4, "...");
            return;
        }
        len += (size_t)w;
        c = last;
    }
}

static void print_node(uint32_t n)
{
    const struct topo_node *nd = &topo.nodes[n];
    char cpus[256];
    format_cpuset(cpus, sizeof cpus, n);
    char dist[512];
    size_t dl = 0;
    dist[0] = 0;
    for (uint32_t m = 0; m < topo.nnodes && dl < sizeof dist - 8; m++)
        dl += (size_t)snprintf(dist + dl, sizeof dist - dl, "%s%u", m ? " " : "", topo.dist[n][m]);
    kprintf("node %u (proximity domain %u): %u cores %s, %llu MiB, distances [%s]\n", n, nd->domain,
            nd->ncpus, cpus[0] ? cpus : "none", (unsigned long long)(nd->mem_bytes >> 20), dist);

    struct event e;
    event_begin(&e, "numa_node");
    event_u64(&e, "node", n);
    event_u64(&e, "domain", nd->domain);
    event_array_begin(&e, "cpus");
    for (uint32_t c = 0; c < topo.ncpus; c++)
        if (topo.cpus[c].node == n)
            event_elem_u64(&e, c);
    event_array_end(&e);
    event_array_begin(&e, "apic_ids");
    for (uint32_t c = 0; c < topo.ncpus; c++)
        if (topo.cpus[c].node == n)
            event_elem_u64(&e, topo.cpus[c].apic_id);
    event_array_end(&e);
    event_u64(&e, "mem_bytes", nd->mem_bytes);
    event_array_begin(&e, "ranges");
    for (uint32_t r = 0; r < topo.nranges; r++)
        if (topo.ranges[r].node == n) {
            event_array_begin(&e, 0);
            event_elem_u64(&e, topo.ranges[r].base);
            event_elem_u64(&e, topo.ranges[r].base + topo.ranges[r].len);
            event_array_end(&e);
        }
    event_array_end(&e);
    event_array_begin(&e, "distances");
    for (uint32_t m = 0; m < topo.nnodes; m++)
        event_elem_u64(&e, topo.dist[n][m]);
    event_array_end(&e);
    event_end(&e);
}

/* The summary after every core has checked in (or the wait timed out). */
static int print_summary(uint32_t aps_up)
{
    int failed = 0;
    for (uint32_t i = 0; i < smp_ap_count(); i++) {
        struct ap_info *ap = smp_ap(i);
        if (ap->up && !ap->panicked)
            continue;
        failed++;
        kprintf("core %u (APIC id %u) %s\n", ap->core_id, ap->apic_id,
                ap->panicked ? "stopped with a panic" : "did not answer its startup IPIs (no check-in)");
        struct event e;
        event_begin(&e, ap->panicked ? "core_failed" : "core_timeout");
        event_u64(&e, "core", ap->core_id);
        event_u64(&e, "apic", ap->apic_id);
        event_end(&e);
    }
    for (uint32_t n = 0; n < topo.nnodes; n++)
        print_node(n);
    uint64_t last = MAX(smp_last_checkin_tsc(), boot_core_up_tsc);
    uint64_t ticks = last - boot_params.boot_tsc0;
    uint64_t us = ticks / (boot_params.tsc_hz / 1000000 ? boot_params.tsc_hz / 1000000 : 1);
    uint32_t up = aps_up + 1;
    kprintf("boot: %u of %u cores up, %u NUMA node%s, all up %llu.%03llu ms after the first instruction\n", up,
            topo.ncpus, topo.nnodes, topo.nnodes == 1 ? "" : "s", (unsigned long long)(us / 1000),
            (unsigned long long)(us % 1000));
    struct event e;
    event_begin(&e, "boot_summary");
    event_u64(&e, "cores_up", up);
    event_u64(&e, "cores_found", topo.ncpus);
    event_u64(&e, "nodes", topo.nnodes);
    event_fixed3(&e, "boot_ms", us);
    event_u64(&e, "warnings", (uint64_t)warnings);
    event_end(&e);
    return failed;
}

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

static void plan_user_ram(void)
{
    for (uint32_t n = 0; n < topo.nnodes; n++) {
        uint32_t count = 0;
        for (uint32_t c = 0; c < topo.ncpus; c++)
            count += topo.cpus[c].node == n;
        if (!count)
            continue;
        /* Leave a little for the kernel's own later needs. */
        uint64_t free = pmem_free_bytes(topo.numa_from_srat ? n : PMEM_ANY_NODE);
        uint64_t share = free > (1ull << 20) ? ALIGN_DOWN((free - (1ull << 20)) / count, PAGE_2M) : 0;
        for (uint32_t c = 0; c < topo.ncpus; c++) {
            if (topo.cpus[c].node != n)
                continue;
            uint64_t want = share, base = 0;
            while (want >= MIN_CORE_RAM && !base) {
                base = pmem_alloc(want, PAGE_2M, topo.numa_from_srat ? n : PMEM_ANY_NODE, ~0ull);
                if (!base)
                    want /= 2;
            }
            if (!base) {
                want = MIN_CORE_RAM;
                base = pmem_alloc(want, 4096, PMEM_ANY_NODE, ~0ull);
                char msg[120];
                snprintf(msg, sizeof msg, "core %u: no RAM left on node %u for user space%s", c, n,
                         base ? "; took 4 MiB from another node" : "");
                warn(msg);
            }
            core_ram[c] = (struct core_ram){ base, base ? want : 0 };
            if (c == 0)
                continue;
            boot_channel[c] = pmem_alloc(4096, 4096, topo.numa_from_srat ? n : PMEM_ANY_NODE, ~0ull);
            if (!boot_channel[c])
                boot_channel[c] = pmem_alloc(4096, 4096, PMEM_ANY_NODE, ~0ull);
            if (boot_channel[c])
                memset(phys_to_virt(boot_channel[c]), 0, 4096);
        }
    }
}

bool boot_user_memory(uint64_t base, uint64_t bytes)
{
    if (bytes == 0 || base + bytes < base)
        return false;
    for (uint32_t c = 0; c < topo.ncpus; c++) {
        const struct core_ram *r = &core_ram[c];
        if (r->bytes && base >= r->base && base + bytes <= r->base + r->bytes)
            return true;
        if (boot_channel[c] && base >= boot_channel[c] && base + bytes <= boot_channel[c] + 4096)
            return true;
    }
    return false;
}

/* Give a new monitor its boot channel frames. */
static void install_boot_channels(const struct dispatcher *d)
{
    struct capability cn = { .type = CAP_CNODE, .bits = d->cnode_bits, .base = d->cnode_base };
    for (uint32_t c = 1; c < topo.ncpus; c++) {
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

_Noreturn static void start_user_space(void)
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

void bsp_main(void)
{
    struct boot_options opt;
    serial_init();
    core.is_bsp = true;
    core.nx = rdmsr(MSR_EFER) & EFER_NXE;
    gdt_init();
    idt_init();   /* from here on, any exception is reported */
    usermode_init();
    kprintf("\natoll: CPU driver starting on the boot core\n");

    read_boot_information();
    parse_options(&opt);
    core.poweroff_after_boot = opt.poweroff;
    uint32_t boot_apic = cpuid_apic_id();
    read_acpi(boot_apic);
    take_stock_of_memory();
    uint64_t lapic_phys = apic_mmio_phys();
    extend_boot_map(lapic_phys);

    /* The local APIC, in x2APIC mode where the CPU has it. */
    apic_init(apic_has_x2apic() && !opt.no_x2apic);
    core.apic_id = apic_read_id();
    if (core.apic_id != boot_apic)
        panic("local APIC says id %u, CPUID says %u", core.apic_id, boot_apic);
    core.core_id = 0;
    core.node = topo.cpus[0].node;
    apic_calibrate(&core.tsc_hz, &core.apic_timer_hz);
    if (core.tsc_hz == 0 || core.apic_timer_hz == 0)
        panic("TSC or APIC timer did not advance during calibration against the PIT");

    boot_params = (struct boot_params){
        .tsc_hz = core.tsc_hz, .apic_timer_hz = core.apic_timer_hz, .boot_tsc0 = boot_tsc0,
        .x2apic = core.x2apic, .timer_hz = opt.timer_hz, .fault_core = opt.fault_core,
        .probe_core = opt.probe_core, .probe_phys = 0,
    };
    core.boot_tsc0 = boot_tsc0;

    /* Every core's kernel block on its own node, and its page tables. */
    errval_t err = percore_plan(&topo, &mb, blocks, warn);
    if (err)
        panic("no memory for %u cores' kernel blocks: %s", topo.ncpus, err_name(err));
    for (uint32_t c = 0; c < topo.ncpus; c++) {
        err = percore_build_tables(&topo, &mb, blocks, c, lapic_phys);
        if (err)
            panic("building core %u's page tables: %s (%s)", c, err_name(err), err_text(err));
    }
    boot_params.probe_phys = blocks[0].base;
    plan_user_ram();
    err = smp_prepare(&topo, blocks, opt.unlisted_apic);
    if (err)
        panic("preparing the other cores: %s (%s)", err_name(err), err_text(err));
    print_boot_event();

    /* Move into our own block and page tables. From here on, the kernel
     * image and the boot information are no longer mapped, and the
     * .bootshared data is read-only. */
    core.kmem_phys = blocks[0].base;
    core.kmem_size = blocks[0].size;
    core.pml4_phys = blocks[0].pml4;
    core.kmem_node = blocks[0].node;
    core.arena_next = blocks[0].arena;
    core.arena_end = blocks[0].arena_end;
    percore_switch(phys_to_virt(blocks[0].percore_phys), percore_size(), blocks[0].pml4);

    boot_core_up_tsc = rdtsc();
    report_core_up();
    cputopo_boot_start(&topo);
    run_selftests();
    uint32_t up = smp_start_all(opt.smp_timeout_ms);
    int failed = print_summary(up);
    cputopo_boot_finish(cmdline_get(cmdline, "topology_xml", 0, 0));
    apic_timer_start(boot_params.timer_hz);
    /* The report is out: the other cores may start their monitors now
     * (earlier, under emulation, they would slow the boot they wait for). */
    for (uint32_t i = 0; i < smp_ap_count(); i++)
        if (smp_ap(i)->up && boot_core_has_user_ram(smp_ap(i)->core_id))
            apic_send_ipi(smp_ap(i)->apic_id, APIC_IPI_FIXED, VEC_WAKEUP);
    if (opt.panic_selftest)
        panic("selftest: panic requested on the kernel command line");
    if (opt.poweroff)
        machine_exit(failed ? 1 : 0);
    start_user_space();
}

void ap_main(const struct ap_start *s)
{
    core.core_id = s->core_id;
    core.apic_id = s->apic_id;
    core.node = s->node;
    core.kmem_phys = s->kmem_phys;
    core.kmem_size = s->kmem_size;
    core.kmem_node = s->kmem_node;
    core.arena_next = s->kmem_phys + s->kmem_size - PERCORE_ARENA_SIZE;
    core.arena_end = s->kmem_phys + s->kmem_size;
    core.pml4_phys = s->cr3;
    core.nx = rdmsr(MSR_EFER) & EFER_NXE;
    core.tsc_hz = boot_params.tsc_hz;
    core.apic_timer_hz = boot_params.apic_timer_hz;
    core.boot_tsc0 = boot_params.boot_tsc0;
    core.console = phys_to_virt(s->console_phys);
    core.console_seq = 1;
    gdt_init();
    idt_init();
    usermode_init();
    apic_init(boot_params.x2apic);
    uint32_t id = apic_read_id();
    if (id != s->apic_id)
        panic("started as APIC id %u but the local APIC says %u", s->apic_id, id);
    report_core_up();
    cputopo_report_self();
    run_selftests();
    linechan_send(core.console, &core.console_seq, LINECHAN_CHECKIN, "", 0);
    /* Wait for the boot core's go (a wake-up IPI after its boot report). */
    while (!core.woken)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    apic_timer_start(boot_params.timer_hz);
    start_user_space();
}

const struct mb2_info *boot_info(void) { return &mb; }
const struct topology *boot_topology(void) { return &topo; }

/* A module's name: the first word of its command line, without a path or
 * an ".elf" ending ("/boot/monitor.elf args" -> "monitor"). */
static void module_name(const char *cmdline, const char **name, size_t *n)
{
    size_t w = 0, start = 0;
    while (cmdline[w] && cmdline[w] != ' ') {
        if (cmdline[w] == '/')
            start = w + 1;
        w++;
    }
    if (w - start > 4 && !strncmp(cmdline + w - 4, ".elf", 4))
        w -= 4;
    *name = cmdline + start;
    *n = w - start;
}

/* The words after the module's name on its command line ("" if none). */
const char *boot_module_args(const char *name, size_t n)
{
    for (size_t i = 0; i < mb.module_count; i++) {
        const char *m;
        size_t mn;
        module_name(mb.modules[i].cmdline, &m, &mn);
        if (mn == n && !strncmp(m, name, n)) {
            const char *a = mb.modules[i].cmdline;
            while (*a && *a != ' ')
                a++;
            while (*a == ' ')
                a++;
            return a;
        }
    }
    return "";
}

errval_t boot_module_find(const char *name, size_t n, const void **image, size_t *len)
{
    for (size_t i = 0; i < mb.module_count; i++) {
        const char *m;
        size_t mn;
        module_name(mb.modules[i].cmdline, &m, &mn);
        if (mn == n && !strncmp(m, name, n)) {
            *image = phys_to_virt(mb.modules[i].start);
            *len = mb.modules[i].end - mb.modules[i].start;
            return ERR_OK;
        }
    }
    return ERR_NOT_FOUND;
}
