/*
 * The CPU driver's start: bsp_main on the boot core, ap_main on every other.
 *
 * The boot core, on the boot page tables: reads the multiboot2 information
 * and ACPI, builds the topology, takes stock of physical memory (bootinfo.c),
 * measures the TSC and APIC timer, carves every core's kernel block from
 * that core's node and builds every core's page tables (percore.c). Then it
 * moves its own writable state into its own block, switches to its own
 * tables, starts the other cores, waits for them to check in, prints the
 * boot report (boot_report.c) and starts user space (user_start.c).
 */
#include <atoll/abi/errors.h>
#include "boot_options.h"
#include "boot_report.h"
#include "bootinfo.h"
#include "console.h"
#include "core.h"
#include "lib.h"
#include "linechan.h"
#include "multiboot2.h"
#include "panic.h"
#include "percore.h"
#include "pmem.h"
#include "selftest.h"
#include "smp.h"
#include "topology.h"
#include "topo_report.h"
#include "tlb_ipi.h"
#include "user_start.h"
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
extern char boot_pml4[];
void percore_switch(void *dst, uint64_t size, uint64_t cr3);


/* Every core's kernel block: planned by the boot core, read-only after. */
BOOTSHARED static struct core_block blocks[TOPO_MAX_CPUS];

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
}

void bsp_main(void)
{
    struct boot_options opt;
    serial_init();
    core.is_bsp = true;
    core.nx = rdmsr(MSR_EFER) & EFER_NXE;
    gdt_init();
    idt_init();   /* from here on, any exception is reported */
    kprintf("\natoll: CPU driver starting on the boot core\n");

    bootinfo_read();
    boot_options_parse(&opt);
    usermode_init(!opt.no_smap);
    core.poweroff_after_boot = opt.poweroff;
    uint32_t boot_apic = cpuid_apic_id();
    bootinfo_read_acpi(boot_apic);
    bootinfo_take_stock_of_memory();
    const struct topology *topo = boot_topology();
    const struct mb2_info *mb = boot_info();
    uint64_t lapic_phys = apic_mmio_phys();
    extend_boot_map(lapic_phys);

    /* The local APIC, in x2APIC mode where the CPU has it. */
    apic_init(apic_has_x2apic() && !opt.no_x2apic);
    core.apic_id = apic_read_id();
    if (core.apic_id != boot_apic)
        panic("local APIC says id %u, CPUID says %u", core.apic_id, boot_apic);
    core.core_id = 0;
    core.node = topo->cpus[0].node;
    apic_calibrate(&core.tsc_hz, &core.apic_timer_hz);
    if (core.tsc_hz == 0 || core.apic_timer_hz == 0)
        panic("TSC or APIC timer did not advance during calibration against the PIT");
    /* timescale=N: every clock of the machine, the kernel's and (through
     * tsc_hz) every domain's, counts N ticks of the hardware's as one, so
     * guest time runs N times slower than the host's. For a machine whose
     * vCPUs take turns on one host thread (the cost model's single-threaded
     * TCG): bounds written for cores that run at once then hold
     * (docs/costmodel.md). Times the guest reports are in its own time. */
    uint64_t tsc_hz_measured = core.tsc_hz;
    core.tsc_hz *= opt.timescale;
    core.apic_timer_hz *= opt.timescale;

    boot_params = (struct boot_params){
        .tsc_hz = core.tsc_hz, .tsc_hz_measured = tsc_hz_measured, .timescale = opt.timescale,
        .apic_timer_hz = core.apic_timer_hz, .boot_tsc0 = boot_tsc0,
        .x2apic = core.x2apic, .no_smap = opt.no_smap, .timer_hz = opt.timer_hz, .periodic = opt.periodic,
        .fault_core = opt.fault_core,
        .probe_core = opt.probe_core, .probe_phys = 0, .die_core = opt.die_core, .die_ms = opt.die_ms,
    };
    core.boot_tsc0 = boot_tsc0;

    /* Every core's kernel block on its own node, and its page tables. */
    errval_t err = percore_plan(topo, mb, blocks, boot_warn);
    if (err)
        panic("no memory for %u cores' kernel blocks: %s", topo->ncpus, err_name(err));
    for (uint32_t c = 0; c < topo->ncpus; c++) {
        err = percore_build_tables(topo, mb, blocks, c, lapic_phys);
        if (err)
            panic("building core %u's page tables: %s (%s)", c, err_name(err), err_text(err));
    }
    boot_params.probe_phys = blocks[0].base;
    user_ram_plan();
    cputopo_plan(topo);
    tlb_ipi_plan(topo);
    err = smp_prepare(topo, blocks, opt.unlisted_apic);
    if (err)
        panic("preparing the other cores: %s (%s)", err_name(err), err_text(err));
    boot_report_start();

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

    uint64_t boot_core_up_tsc = rdtsc();
    boot_report_core_up();
    cputopo_boot_start(topo);
    selftest_run();
    uint32_t up = smp_start_all(opt.smp_timeout_ms);
    int failed = boot_report_summary(up, boot_core_up_tsc);
    cputopo_boot_finish();
    apic_timer_start(boot_params.timer_hz);
    /* The report is out: the other cores may start their monitors now
     * (earlier, under emulation, they would slow the boot they wait for). */
    smp_start_user();
    if (opt.panic_selftest)
        panic("selftest: panic requested on the kernel command line");
    if (opt.poweroff)
        machine_exit(failed ? 1 : 0);
    user_start();
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
    usermode_init(!boot_params.no_smap);
    apic_init(boot_params.x2apic);
    uint32_t id = apic_read_id();
    if (id != s->apic_id)
        panic("started as APIC id %u but the local APIC says %u", s->apic_id, id);
    boot_report_core_up();
    struct cpu_place place;
    cputopo_self(&place);
    selftest_run();
    /* The check-in carries this core's CPUID record to the boot core. */
    linechan_send(core.console, &core.console_seq, LINECHAN_CHECKIN, (const char *)&place, sizeof place);
    /* Wait for the boot core's go (a wake-up IPI after its boot report). */
    while (!core.woken)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    apic_timer_start(boot_params.timer_hz);
    selftest_before_user();
    user_start();
}
