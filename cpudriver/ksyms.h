/* Kernel symbol lookup for backtraces (table made by hake/ksyms.py). */
#ifndef ATOLL_KSYMS_H
#define ATOLL_KSYMS_H
#include <stdint.h>
/* Name of the function containing addr, or NULL; *offset is addr - start. */
const char *ksym_lookup(uint64_t addr, uint64_t *offset);
#endif
