/*
 * The boot report, as the boot core and each other core print it
 * (boot_report.h).
 */
#include <atoll/costmodel.h>

#include "boot_report.h"
#include "bootinfo.h"
#include "console.h"
#include "core.h"
#include "lib.h"
#include "pmem.h"
#include "report.h"
#include "smp.h"
#include "topology.h"

static int warnings;

void boot_warn(const char *msg)
{
    warnings++;
    kprintf("warning: %s\n", msg);
    struct event e;
    event_begin(&e, "warning");
    event_str(&e, "msg", msg);
    event_end(&e);
}

void boot_warn_cb(void *ctx, const char *msg)
{
    (void)ctx;
    boot_warn(msg);
}

void boot_report_core_up(void)
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

void boot_report_start(void)
{
    struct event e;
    event_begin(&e, "boot");
    event_str(&e, "cmdline", boot_cmdline());
    event_str(&e, "bootloader", boot_info()->bootloader);
    event_u64(&e, "ram_bytes", pmem_free_bytes(PMEM_ANY_NODE));
    event_u64(&e, "tsc_hz", boot_params.tsc_hz);
    event_u64(&e, "tsc_hz_measured", boot_params.tsc_hz_measured);
    event_u64(&e, "timescale", boot_params.timescale);
    event_u64(&e, "apic_timer_hz", boot_params.apic_timer_hz);
    event_bool(&e, "x2apic", boot_params.x2apic);
    event_bool(&e, "numa_from_srat", boot_topology()->numa_from_srat);
    event_bool(&e, "dist_from_slit", boot_topology()->dist_from_slit);
    event_end(&e);
}

/* The cores of node n as a compact list of ranges: "0-3,8,10-11". */
static void format_cpuset(char *buf, size_t size, uint32_t n)
{
    const struct topology *t = boot_topology();
    size_t len = 0;
    buf[0] = 0;
    for (uint32_t c = 0; c < t->ncpus; c++) {
        if (t->cpus[c].node != n)
            continue;
        uint32_t last = c;
        while (last + 1 < t->ncpus && t->cpus[last + 1].node == n)
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
    const struct topology *t = boot_topology();
    const struct topo_node *nd = &t->nodes[n];
    char cpus[256];
    format_cpuset(cpus, sizeof cpus, n);
    char dist[512];
    size_t dl = 0;
    dist[0] = 0;
    for (uint32_t m = 0; m < t->nnodes && dl < sizeof dist - 8; m++)
        dl += (size_t)snprintf(dist + dl, sizeof dist - dl, "%s%u", m ? " " : "", t->dist[n][m]);
    kprintf("node %u (proximity domain %u): %u cores %s, %llu MiB, distances [%s]\n", n, nd->domain,
            nd->ncpus, cpus[0] ? cpus : "none", (unsigned long long)(nd->mem_bytes >> 20), dist);

    struct event e;
    event_begin(&e, "numa_node");
    event_u64(&e, "node", n);
    event_u64(&e, "domain", nd->domain);
    event_array_begin(&e, "cpus");
    for (uint32_t c = 0; c < t->ncpus; c++)
        if (t->cpus[c].node == n)
            event_elem_u64(&e, c);
    event_array_end(&e);
    event_array_begin(&e, "apic_ids");
    for (uint32_t c = 0; c < t->ncpus; c++)
        if (t->cpus[c].node == n)
            event_elem_u64(&e, t->cpus[c].apic_id);
    event_array_end(&e);
    event_u64(&e, "mem_bytes", nd->mem_bytes);
    event_array_begin(&e, "ranges");
    for (uint32_t r = 0; r < t->nranges; r++)
        if (t->ranges[r].node == n) {
            event_array_begin(&e, 0);
            event_elem_u64(&e, t->ranges[r].base);
            event_elem_u64(&e, t->ranges[r].base + t->ranges[r].len);
            event_array_end(&e);
        }
    event_array_end(&e);
    event_array_begin(&e, "distances");
    for (uint32_t m = 0; m < t->nnodes; m++)
        event_elem_u64(&e, t->dist[n][m]);
    event_array_end(&e);
    event_end(&e);
}

/* The summary after every core has checked in (or the wait timed out). */
int boot_report_summary(uint32_t aps_up, uint64_t boot_core_up_tsc)
{
    /* The cost model's boot region runs from reset to here (docs/costmodel.md). */
    cm_arg(cores, aps_up + 1);
    cm_arg(ops, aps_up + 1);     /* counts per core brought up */
    cm_end(boot);
    const struct topology *t = boot_topology();
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
    for (uint32_t n = 0; n < t->nnodes; n++)
        print_node(n);
    uint64_t last = MAX(smp_last_checkin_tsc(), boot_core_up_tsc);
    uint64_t ticks = last - boot_params.boot_tsc0;
    uint64_t us = ticks / (boot_params.tsc_hz / 1000000 ? boot_params.tsc_hz / 1000000 : 1);
    uint32_t up = aps_up + 1;
    kprintf("boot: %u of %u cores up, %u NUMA node%s, all up %llu.%03llu ms after the first instruction\n", up,
            t->ncpus, t->nnodes, t->nnodes == 1 ? "" : "s", (unsigned long long)(us / 1000),
            (unsigned long long)(us % 1000));
    struct event e;
    event_begin(&e, "boot_summary");
    event_u64(&e, "cores_up", up);
    event_u64(&e, "cores_found", t->ncpus);
    event_u64(&e, "nodes", t->nnodes);
    event_fixed3(&e, "boot_ms", us);
    event_u64(&e, "warnings", (uint64_t)warnings);
    event_end(&e);
    return failed;
}
