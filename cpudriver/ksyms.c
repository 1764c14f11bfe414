/* Binary search in the symbol table the second kernel link embeds. */
#include "ksyms.h"
#include "x86_64/kernel_layout.h"

struct ksym {
    uint64_t addr;
    uint32_t name;
    uint32_t pad;
};
extern const uint64_t ksyms_count;
extern const struct ksym ksyms_table[];
extern const char ksyms_names[];

const char *ksym_lookup(uint64_t addr, uint64_t *offset)
{
    if (addr < (uint64_t)__text_start || addr >= (uint64_t)__text_end || ksyms_count == 0)
        return 0;
    uint64_t lo = 0, hi = ksyms_count;   /* find the last symbol <= addr */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (ksyms_table[mid].addr <= addr)
            lo = mid;
        else
            hi = mid;
    }
    if (ksyms_table[lo].addr > addr)
        return 0;
    *offset = addr - ksyms_table[lo].addr;
    return ksyms_names + ksyms_table[lo].name;
}
