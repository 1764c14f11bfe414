/* The `ipi` shootdown baseline; see tlb_ipi.h. */
#include "tlb_ipi.h"
#include "bootinfo.h"
#include "core.h"
#include "dispatcher.h"
#include "lib.h"
#include "pmem.h"
#include "vspace.h"
#include "x86_64/apic.h"
#include "x86_64/cpu.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/trap.h"

#define LINE 64

BOOTSHARED static uint64_t board_phys;

void tlb_ipi_plan(const struct topology *t)
{
    uint64_t bytes = ALIGN_UP((uint64_t)t->ncpus * LINE, CAP_PAGE_SIZE);
    uint64_t base = pmem_alloc(bytes, CAP_PAGE_SIZE, PMEM_ANY_NODE, ~0ull);
    if (!base)
        return;   /* the ipi protocol then says ERR_NO_MEMORY */
    memset(phys_to_virt(base), 0, bytes);
    board_phys = base;
}

static uint64_t *count_of(uint32_t core_id) { return phys_to_virt(board_phys + (uint64_t)core_id * LINE); }

void tlb_ipi_arrived(void)
{
    if (!board_phys)
        return;
    uint64_t *mine = count_of(core.core_id);
    __atomic_store_n(mine, *mine + 1, __ATOMIC_SEQ_CST);   /* begun (odd) */
    for (struct dispatcher *d = dispatcher_first(); d; d = d->next)
        if (d->span_home && d->pml4)
            vspace_span_copy(d->pml4, d->span_home);
    write_cr3(read_cr3());
    __atomic_store_n(mine, *mine + 1, __ATOMIC_RELEASE);   /* ended (even) */
}

errval_t tlb_ipi_shootdown(const uint64_t cores[4], uint64_t timeout_us, uint64_t *asked)
{
    const struct topology *t = boot_topology();
    static uint64_t want[256];   /* this core's: the count each core must reach */
    *asked = 0;
    if (!board_phys)
        return ERR_NO_MEMORY;
    for (uint32_t c = 0; c < 256; c++) {
        if (!(cores[c / 64] >> (c % 64) & 1) || c == core.core_id)
            continue;
        if (c >= t->ncpus)
            return ERR_INVALID_ARG;
        /* A flush already running may have begun before the change: wait
         * for the next whole one. */
        uint64_t s = __atomic_load_n(count_of(c), __ATOMIC_SEQ_CST);
        want[c] = s + 2 + (s & 1);
    }
    for (uint32_t c = 0; c < 256 && c < t->ncpus; c++)
        if ((cores[c / 64] >> (c % 64) & 1) && c != core.core_id) {
            apic_send_ipi(t->cpus[c].apic_id, APIC_IPI_FIXED, VEC_SHOOTDOWN);
            (*asked)++;
        }
    uint64_t deadline = rdtsc() + timeout_us * (core.tsc_hz / 1000000);
    errval_t err = ERR_OK;
    /* Interrupts on while we wait: another core may be waiting for us. */
    __asm__ volatile("sti" ::: "memory");
    for (uint32_t c = 0; c < 256 && c < t->ncpus && !err; c++) {
        if (!(cores[c / 64] >> (c % 64) & 1) || c == core.core_id)
            continue;
        while (__atomic_load_n(count_of(c), __ATOMIC_ACQUIRE) < want[c] && !err) {
            if (rdtsc() > deadline)
                err = ERR_TIMEOUT;
            __builtin_ia32_pause();
        }
    }
    __asm__ volatile("cli" ::: "memory");
    return err;
}
