/*
 * Fuzz target: the ELF checker the CPU driver runs on every module before
 * it loads a domain (cpudriver/elf.c). The corpus holds ELF files from the
 * build: the CPU driver and user programs, stripped and not
 * (tools/fuzz-corpus).
 *
 * What elf_check promises is checked: an accepted image has 1 to
 * ELF_MAX_SEGMENTS segments, each with its file bytes inside the image, no
 * more file bytes than memory, and never writable and executable at once;
 * a refused one leaves nseg = 0 and entry = 0.
 */
#include "elf.h"
#include "fuzz.h"

int fuzz_one(const uint8_t *data, size_t size)
{
    static struct elf_info info;
    if (elf_check(data, size, &info) != ERR_OK) {
        FUZZ_ASSERT(info.nseg == 0 && info.entry == 0);
        return 0;
    }
    FUZZ_ASSERT(info.nseg >= 1 && info.nseg <= ELF_MAX_SEGMENTS);
    for (unsigned i = 0; i < info.nseg; i++) {
        const struct elf_segment *s = &info.seg[i];
        FUZZ_ASSERT(s->memsz > 0 && s->filesz <= s->memsz);
        FUZZ_ASSERT(s->offset <= size && s->filesz <= size - s->offset);
        FUZZ_ASSERT(!((s->flags & PF_W) && (s->flags & PF_X)));
        FUZZ_ASSERT(s->vaddr + s->memsz >= s->vaddr);
    }
    return 1;
}
