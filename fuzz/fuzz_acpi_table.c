/*
 * Fuzz target: one ACPI table straight into its parser (cpudriver/acpi.c):
 * MADT ("APIC"), SRAT or SLIT by the signature in its first four bytes; any
 * other table is given to all three, which must refuse it without harm.
 * The corpus holds every MADT, SRAT and SLIT of the QEMU machines in the
 * acpi target's corpus, as QEMU built them (tools/fuzz-corpus).
 */
#include <string.h>
#include "acpi.h"
#include "fuzz.h"

int fuzz_one(const uint8_t *data, size_t size)
{
    static struct acpi_madt_info madt;
    static struct acpi_srat_info srat;
    static struct acpi_slit_info slit;
    int ok = 0;
    bool any = size < 4 || (memcmp(data, "APIC", 4) && memcmp(data, "SRAT", 4) && memcmp(data, "SLIT", 4));
    if (any || !memcmp(data, "APIC", 4)) {
        if (acpi_parse_madt(data, size, &madt) == ERR_OK) {
            ok = 1;
            FUZZ_ASSERT(madt.ncpus <= ACPI_MAX_CPUS && madt.nioapics <= ACPI_MAX_IOAPICS);
            FUZZ_ASSERT(size >= 44);
        }
    }
    if (any || !memcmp(data, "SRAT", 4)) {
        if (acpi_parse_srat(data, size, &srat) == ERR_OK) {
            ok = 1;
            /* Zero-length ranges may be kept: topo_build skips them. */
            FUZZ_ASSERT(srat.ncpus <= ACPI_MAX_CPUS && srat.nmem <= ACPI_MAX_MEM);
        }
    }
    if (any || !memcmp(data, "SLIT", 4)) {
        if (acpi_parse_slit(data, size, &slit) == ERR_OK) {
            ok = 1;
            FUZZ_ASSERT(slit.n >= 1 && slit.n <= ACPI_MAX_DOMAINS);
            FUZZ_ASSERT(size >= 44 + (size_t)slit.n * slit.n);
        }
    }
    return ok && acpi_checksum_ok(data, size);
}
