/* What the boot core learnt at boot, readable (never writable) on every core:
 * it lives in .bootshared. */
#ifndef ATOLL_BOOTINFO_H
#define ATOLL_BOOTINFO_H

#include <stddef.h>
#include "multiboot2.h"
#include "topology.h"

const struct mb2_info *boot_info(void);
const struct topology *boot_topology(void);

/* The boot module whose command line's first word is `name` (n bytes):
 * its image through the direct map. ERR_NOT_FOUND if none. */
errval_t boot_module_find(const char *name, size_t n, const void **image, size_t *len);
/* The words after that module's name on its command line ("" if none). */
const char *boot_module_args(const char *name, size_t n);

/* [base, base+bytes) lies inside one core's user RAM or one boot channel
 * page: memory some monitor may hand out as a Frame, never kernel memory. */
bool boot_user_memory(uint64_t base, uint64_t bytes);
/* Core c was given RAM for user space (a core without any runs no monitor). */
bool boot_core_has_user_ram(uint32_t c);

#endif
