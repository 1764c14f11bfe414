/*
 * ACPI tables the CPU driver needs: RSDP, RSDT/XSDT, MADT, SRAT, SLIT.
 *
 * Pure, bounds-checked parsers shared by the CPU driver and the host tests.
 * Tables are found at physical addresses, so the caller passes a mapper that
 * turns (phys, len) into a readable pointer or NULL; the kernel's mapper uses
 * its direct map, the tests' mapper a buffer standing in for memory.
 */
#ifndef ATOLL_ACPI_H
#define ATOLL_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define ACPI_MAX_CPUS     512
#define ACPI_MAX_IOAPICS  16
#define ACPI_MAX_MEM      64   /* SRAT memory ranges */
#define ACPI_MAX_DOMAINS  64   /* SLIT localities */

struct acpi_mapper {
    /* Return a pointer through which `len` bytes at physical `phys` can be
     * read, or NULL if that range is not accessible. */
    const void *(*map)(void *ctx, uint64_t phys, size_t len);
    void *ctx;
};

/* Where the tables we care about live (phys == 0: absent). */
struct acpi_tables {
    uint64_t madt_phys; uint32_t madt_len;
    uint64_t srat_phys; uint32_t srat_len;
    uint64_t slit_phys; uint32_t slit_len;
    int revision;   /* 0 if found through an RSDT, 2 through an XSDT (the
                     * RSDP's own revision is not passed to acpi_find_tables) */
};

struct acpi_cpu {
    uint32_t apic_id;
    uint32_t uid;          /* ACPI processor UID */
    bool enabled;          /* flags bit 0 */
    bool online_capable;   /* flags bit 1 (hot-pluggable, not enabled now) */
    bool from_x2apic;      /* came from a type-9 (x2APIC) entry */
};

struct acpi_ioapic {
    uint32_t id;
    uint32_t addr;
    uint32_t gsi_base;
};

struct acpi_madt_info {
    uint64_t lapic_addr;   /* after any type-5 address override */
    bool pcat_compat;      /* dual 8259s present (flags bit 0) */
    struct acpi_cpu cpus[ACPI_MAX_CPUS];
    size_t ncpus;          /* every processor entry, enabled or not */
    struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS];
    size_t nioapics;
};

struct acpi_srat_cpu {
    uint32_t apic_id;
    uint32_t domain;       /* proximity domain (all 32 bits assembled) */
};

struct acpi_srat_mem {
    uint64_t base;
    uint64_t len;
    uint32_t domain;
    bool hotplug;
};

struct acpi_srat_info {
    struct acpi_srat_cpu cpus[ACPI_MAX_CPUS];  /* enabled entries only */
    size_t ncpus;
    struct acpi_srat_mem mem[ACPI_MAX_MEM];    /* enabled entries only */
    size_t nmem;
};

struct acpi_slit_info {
    uint32_t n;  /* number of localities */
    uint8_t dist[ACPI_MAX_DOMAINS][ACPI_MAX_DOMAINS];
};

/* Validate an RSDP (signature, checksum, extended checksum for revision >= 2,
 * length) of which `len` bytes are readable, and return the physical address
 * of the root table (XSDT if revision >= 2 and its address is non-zero, else
 * RSDT) and whether it is an XSDT. Revision 1 (never defined) is
 * ERR_BAD_VERSION; an RSDP with neither address is ERR_ACPI_NO_ROOT. */
errval_t acpi_parse_rsdp(const void *rsdp, size_t len, uint64_t *root_phys, bool *is_xsdt);

/* Walk the RSDT/XSDT, validating each referenced table's header (length at
 * least the header size, checksum) before recording MADT, SRAT and SLIT.
 * A table with a bad checksum is an error, not skipped silently, even one we
 * do not use. Zero entries are skipped; a second MADT, SRAT or SLIT is
 * ERR_DUPLICATE; a range the mapper cannot map is ERR_ACPI_UNMAPPED; no MADT
 * is ERR_ACPI_NO_MADT. */
errval_t acpi_find_tables(const struct acpi_mapper *m, uint64_t root_phys, bool is_xsdt,
                          struct acpi_tables *out);

/* Parse whole tables (header included); `len` is the table's length as the
 * caller mapped it, and the header's own length must not exceed it. Entries
 * whose length field is 0, runs past the table, or is too short for its type
 * are errors (ERR_BAD_LENGTH / ERR_TRUNCATED); unknown entry types are
 * skipped by their length. More entries than the fixed arrays hold is
 * ERR_TOO_MANY. A SLIT's length must be exactly 44 + n * n. */
errval_t acpi_parse_madt(const void *table, size_t len, struct acpi_madt_info *out);
errval_t acpi_parse_srat(const void *table, size_t len, struct acpi_srat_info *out);
errval_t acpi_parse_slit(const void *table, size_t len, struct acpi_slit_info *out);

/* Standard ACPI checksum: the bytes sum to 0 mod 256. */
bool acpi_checksum_ok(const void *p, size_t len);

#endif
