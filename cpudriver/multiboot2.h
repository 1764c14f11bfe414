/*
 * Multiboot2 boot information: a bounds-checked parser.
 *
 * Pure code (no kernel state, freestanding headers only), so the same source
 * is linked into the CPU driver and into the host unit tests. Every length and
 * offset in the block is checked against `avail` before it is read; pointers in
 * the result point into the caller's block.
 */
#ifndef ATOLL_MULTIBOOT2_H
#define ATOLL_MULTIBOOT2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define MB2_BOOTLOADER_MAGIC 0x36d76289u

#define MB2_MAX_MMAP    128
#define MB2_MAX_MODULES 32

enum mb2_mem_type {
    MB2_MEM_AVAILABLE = 1,
    MB2_MEM_RESERVED = 2,
    MB2_MEM_ACPI_RECLAIMABLE = 3,
    MB2_MEM_NVS = 4,
    MB2_MEM_BADRAM = 5,
};

struct mb2_mmap_entry {
    uint64_t base;
    uint64_t len;
    uint32_t type; /* enum mb2_mem_type; unknown values are kept as is */
};

struct mb2_module {
    uint64_t start; /* physical, inclusive */
    uint64_t end;   /* physical, exclusive */
    const char *cmdline; /* NUL-terminated, inside the info block */
};

struct mb2_info {
    const char *cmdline;    /* "" when the tag is absent */
    const char *bootloader; /* "" when the tag is absent */
    struct mb2_mmap_entry mmap[MB2_MAX_MMAP]; /* sorted by base */
    size_t mmap_count;
    struct mb2_module modules[MB2_MAX_MODULES];
    size_t module_count;
    const void *rsdp;  /* copy of the RSDP inside the block, NULL if absent */
    size_t rsdp_len;   /* bytes available at rsdp */
    int rsdp_tag;      /* 14 (ACPI 1.0 RSDP) or 15 (ACPI 2.0+ RSDP), 0 if absent */
};

/*
 * Parse the boot information block at `info`, of which `avail` bytes may be
 * read. Fails with a specific error on: a block shorter than its header, a
 * total_size larger than `avail` or below 8, a tag running past total_size, a
 * tag size below 8, a missing end tag, a missing memory map, a memory-map
 * entry_size below 24 or not a multiple of 8, more entries than the tables
 * hold, memory-map entries that overlap, an unterminated string.
 * Also rejected: a second memory-map tag (ERR_DUPLICATE), a partial last
 * memory-map entry (ERR_TRUNCATED), a module that ends before it starts or a
 * memory range that wraps past 2^64 (ERR_BAD_LENGTH). Zero-length memory-map
 * entries are dropped. If both RSDP tags are present, the ACPI 2.0+ one (15)
 * is kept. Tags after the end tag are not read.
 * On error, *out is left in an unspecified but safe state.
 */
errval_t mb2_parse(const void *info, size_t avail, struct mb2_info *out);

/* Look up `key` in a command line of space-separated words `key` or
 * `key=value`. Returns true if present; *value and *value_len describe the value
 * ("" for a bare key). Either pointer may be NULL. If the key appears more
 * than once, the last occurrence wins, so a word appended to a default
 * command line overrides it. */
bool cmdline_get(const char *cmdline, const char *key, const char **value, size_t *value_len);

#endif
