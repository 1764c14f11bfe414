/* What the boot core learnt at boot, readable (never writable) on every core:
 * it lives in .bootshared. */
#ifndef ATOLL_BOOTINFO_H
#define ATOLL_BOOTINFO_H

#include <stddef.h>
#include "multiboot2.h"
#include "topology.h"

/* The boot core, in this order, before anything else: */
void bootinfo_read(void);                       /* multiboot2 and command line */
void bootinfo_read_acpi(uint32_t boot_apic);    /* MADT, SRAT, SLIT: topology */
void bootinfo_take_stock_of_memory(void);       /* pmem, less what is in use */

const struct mb2_info *boot_info(void);
const struct topology *boot_topology(void);
/* The MADT as read at boot (the local and I/O APICs' registers). */
const struct acpi_madt_info *boot_madt(void);
const char *boot_cmdline(void);

/* The boot module whose command line's first word is `name` (n bytes):
 * its image through the direct map. ERR_NOT_FOUND if none. */
errval_t boot_module_find(const char *name, size_t n, const void **image, size_t *len);
/* The words after that module's name on its command line ("" if none). */
const char *boot_module_args(const char *name, size_t n);

#endif
