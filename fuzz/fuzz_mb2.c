/*
 * Fuzz target: the multiboot2 information parser (cpudriver/multiboot2.c)
 * and what the CPU driver does next with its result: the command line
 * (cmdline_get) and the RSDP copy (acpi_parse_rsdp). The input is the
 * information block as GRUB leaves it; the corpus holds blocks dumped from
 * GRUB 2.06 booting Atoll in QEMU (tools/fuzz-corpus).
 *
 * Beyond not crashing, what mb2_parse promises is checked: every pointer
 * in the result lies in the block, strings end inside it, the memory map's
 * entries are non-empty, end at or below 2^64, sorted and free of overlaps.
 */
#include <string.h>
#include "acpi.h"
#include "multiboot2.h"
#include "fuzz.h"

static const uint8_t *lo, *hi;

static void string_inside(const char *s)
{
    if (!*s)
        return;     /* "" may be a literal outside the block */
    FUZZ_ASSERT((const uint8_t *)s >= lo && (const uint8_t *)s < hi);
    FUZZ_ASSERT(memchr(s, 0, (size_t)(hi - (const uint8_t *)s)) != NULL);
}

int fuzz_one(const uint8_t *data, size_t size)
{
    static struct mb2_info mb;
    lo = data;
    hi = data + size;
    if (mb2_parse(data, size, &mb) != ERR_OK)
        return 0;
    string_inside(mb.cmdline);
    string_inside(mb.bootloader);
    FUZZ_ASSERT(mb.mmap_count <= MB2_MAX_MMAP && mb.module_count <= MB2_MAX_MODULES);
    for (size_t i = 0; i < mb.mmap_count; i++) {
        const struct mb2_mmap_entry *e = &mb.mmap[i];
        /* Non-empty, not past 2^64 (it may end exactly there), sorted, no
         * overlap: ends compared inclusively, as the parser does. */
        FUZZ_ASSERT(e->len > 0 && e->len - 1 <= UINT64_MAX - e->base);
        if (i)
            FUZZ_ASSERT(mb.mmap[i - 1].base + (mb.mmap[i - 1].len - 1) < e->base);
    }
    for (size_t i = 0; i < mb.module_count; i++) {
        FUZZ_ASSERT(mb.modules[i].start <= mb.modules[i].end);
        string_inside(mb.modules[i].cmdline);
    }
    static const char *keys[] = { "smp", "poweroff", "topology_xml", "shell", "mesh", "" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v;
        size_t vlen;
        if (cmdline_get(mb.cmdline, keys[i], &v, &vlen)) {
            /* A bare key's value is "" (anywhere); any other lies in the line. */
            size_t n = strlen(mb.cmdline);
            FUZZ_ASSERT(vlen == 0 ? *v == 0 || (v >= mb.cmdline && v <= mb.cmdline + n)
                                  : v >= mb.cmdline && v + vlen <= mb.cmdline + n);
        }
    }
    if (mb.rsdp) {
        FUZZ_ASSERT(mb.rsdp_tag == 14 || mb.rsdp_tag == 15);
        FUZZ_ASSERT((const uint8_t *)mb.rsdp >= lo && (const uint8_t *)mb.rsdp + mb.rsdp_len <= hi);
        uint64_t root;
        bool xsdt;
        if (acpi_parse_rsdp(mb.rsdp, mb.rsdp_len, &root, &xsdt) != ERR_OK)
            return 0;
        FUZZ_ASSERT(root != 0);
    }
    return 1;
}
