/*
 * What the boot core reads before anything else: the multiboot2
 * information and kernel command line, ACPI's tables and the topology built
 * from them, and the stock of physical memory. All of it is kept in
 * .bootshared: written before the other cores start, read-only after
 * (bootinfo.h).
 */
#include <atoll/abi/errors.h>
#include "acpi.h"
#include "boot_report.h"
#include "bootinfo.h"
#include "lib.h"
#include "multiboot2.h"
#include "panic.h"
#include "pmem.h"
#include "topology.h"
#include "x86_64/kernel_layout.h"


/* From boot/multiboot2_entry.S (identity-mapped; gone after the switch). */
extern uint64_t boot_mbi;
extern uint32_t boot_magic;

BOOTSHARED static struct mb2_info mb;
BOOTSHARED static struct acpi_madt_info madt;
BOOTSHARED static struct acpi_srat_info srat;
BOOTSHARED static struct acpi_slit_info slit;
BOOTSHARED static struct topology topo;
BOOTSHARED static char cmdline[256];

const struct mb2_info *boot_info(void) { return &mb; }
const struct topology *boot_topology(void) { return &topo; }
const struct acpi_madt_info *boot_madt(void) { return &madt; }
const char *boot_cmdline(void) { return cmdline; }

/* ACPI is read on the entry code's tables, which map the first 4 GiB. */
static const void *map_phys(void *ctx, uint64_t phys, size_t len)
{
    (void)ctx;
    if (phys + len < phys || phys + len > 4 * GiB)
        return 0;
    return phys_to_virt(phys);
}

void bootinfo_read(void)
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
        boot_warn("kernel command line longer than 255 bytes; truncated");
        n = sizeof cmdline - 1;
    }
    memcpy(cmdline, mb.cmdline, n);
    cmdline[n] = 0;
}

void bootinfo_read_acpi(uint32_t boot_apic)
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
            boot_warn(msg);
        } else {
            sp = &srat;
        }
    }
    if (tables.slit_phys && sp) {
        err = acpi_parse_slit(map_phys(0, tables.slit_phys, tables.slit_len), tables.slit_len, &slit);
        if (err) {
            snprintf(msg, sizeof msg, "ACPI: bad SLIT: %s (%s); using distances 10 local, 20 remote",
                     err_name(err), err_text(err));
            boot_warn(msg);
        } else {
            lp = &slit;
        }
    }
    err = topo_build(&madt, sp, lp, boot_apic, &topo, boot_warn_cb, 0);
    if (err == ERR_OVERLAP && sp) {
        boot_warn("ACPI: SRAT memory ranges of different nodes overlap; treating the machine as one NUMA node");
        err = topo_build(&madt, 0, 0, boot_apic, &topo, boot_warn_cb, 0);
    }
    if (err)
        panic("cannot build the machine topology from MADT/SRAT/SLIT: %s (%s)", err_name(err), err_text(err));
}

void bootinfo_take_stock_of_memory(void)
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
