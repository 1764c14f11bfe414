/* This core's state (see core.h) and its kernel memory arena. */
#include "core.h"
#include "lib.h"
#include "x86_64/kernel_layout.h"

struct core_state core;

void *core_arena_alloc(uint64_t size)
{
    size = ALIGN_UP(size, 4096);
    if (core.arena_end - core.arena_next < size)
        return 0;
    void *p = phys_to_virt(core.arena_next);
    core.arena_next += size;
    memset(p, 0, size);
    return p;
}
