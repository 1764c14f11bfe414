/* Starting the application processors; see smp.h. */
#include "smp.h"
#include "console.h"
#include "core.h"
#include "lib.h"
#include "linechan.h"
#include "percore.h"
#include "pmem.h"
#include "x86_64/apic.h"
#include "user_start.h"
#include "x86_64/cpu.h"
#include "x86_64/trap.h"

/* Read by boot/ap_trampoline.S through the boot page tables. */
BOOTSHARED struct ap_start ap_start_table[TOPO_MAX_CPUS];
BOOTSHARED uint32_t ap_start_count;
BOOTSHARED struct boot_params boot_params;

/* The boot core's own records (its private .bss). */
static struct ap_info aps[TOPO_MAX_CPUS];
static uint32_t naps;
static uint64_t last_checkin_tsc;

uint32_t smp_ap_count(void) { return naps; }
struct ap_info *smp_ap(uint32_t i) { return &aps[i]; }
uint64_t smp_last_checkin_tsc(void) { return last_checkin_tsc ? last_checkin_tsc : boot_params.boot_tsc0; }

void smp_note_checkin(struct ap_info *ap)
{
    ap->up = true;
    ap->checkin_tsc = rdtsc();
    last_checkin_tsc = ap->checkin_tsc;
}

errval_t smp_prepare(const struct topology *t, const struct core_block *blocks, uint32_t unlisted_apic)
{
    extern char kstack_top[];
    naps = 0;
    ap_start_count = 0;
    for (uint32_t c = 1; c < t->ncpus; c++) {
        const struct core_block *b = &blocks[c];
        /* The channel lies outside every block: it is shared by design. */
        uint64_t chan = pmem_alloc(sizeof(struct linechan), 4096, t->cpus[c].node, ~0ull);
        if (!chan)
            chan = pmem_alloc(sizeof(struct linechan), 4096, PMEM_ANY_NODE, ~0ull);
        if (!chan)
            return ERR_NO_MEMORY;
        memset(phys_to_virt(chan), 0, sizeof(struct linechan));
        percore_init_copy(b);

        struct ap_info *ap = &aps[naps++];
        *ap = (struct ap_info){
            .apic_id = t->cpus[c].apic_id, .core_id = c, .node = t->cpus[c].node,
            .kmem_phys = b->base, .kmem_size = b->size, .kmem_node = b->node,
            .console = phys_to_virt(chan), .console_next = 1,
            .listed = t->cpus[c].apic_id != unlisted_apic,
        };
        if (!ap->listed)
            continue;
        ap_start_table[ap_start_count++] = (struct ap_start){
            .apic_id = ap->apic_id, .core_id = c, .cr3 = b->pml4,
            .stack_top = (uint64_t)kstack_top, .kmem_phys = b->base, .kmem_size = b->size,
            .console_phys = chan, .node = ap->node, .kmem_node = b->node,
        };
    }
    /* The trampoline must run below 1 MiB; copy it while the kernel image is
     * still mapped (the boot core's own tables leave the image out of the
     * direct map). */
    memcpy(phys_to_virt(TRAMPOLINE_ADDR), (const void *)(uint64_t)__trampoline_lma,
           (uint64_t)(__trampoline_end - __trampoline_start));
    return ERR_OK;
}

/* Drain the cores' reports until every AP in [first, last) has checked in
 * or panicked, or the deadline passes. */
static void wait_checkins(uint32_t first, uint32_t last, uint64_t deadline)
{
    for (;;) {
        console_drain();
        uint32_t done = 0;
        for (uint32_t i = first; i < last; i++)
            done += aps[i].up || aps[i].panicked;
        if (done == last - first || rdtsc() > deadline)
            return;
        cpu_relax();
    }
}

/* SIPI, 200 us, SIPI to the APs in [first, last). */
static void send_sipis(uint32_t first, uint32_t last)
{
    for (int round = 0; round < 2 && first < last; round++) {
        for (uint32_t i = first; i < last; i++)
            apic_send_ipi(aps[i].apic_id, APIC_IPI_STARTUP, TRAMPOLINE_ADDR >> 12);
        udelay(200);
    }
}

/* How long the other cores wait for the pilot before starting anyway. */
#define PILOT_WAIT_MS 100

uint32_t smp_start_all(uint64_t timeout_ms)
{
    /* INIT, 10 ms, SIPI, 200 us, SIPI (Intel SDM vol. 3, 8.4.4.1). A core
     * that is already running ignores the second SIPI. One core, the pilot,
     * gets its SIPIs first and the others wait in wait-for-SIPI until it
     * has checked in; then they start in parallel, each finding its own
     * entry in the start table. On hardware that costs one core's start;
     * under emulation it is what keeps the boot fast at many cores: the
     * first run of any code is translated, and TCG's vCPU threads that run
     * new code at once contend for the translator's page locks (QEMU 7.2,
     * tb_link_page: most of the boot's CPU time at 255 vCPUs before). */
    uint64_t deadline = rdtsc() + core.tsc_hz / 1000 * timeout_ms;
    for (uint32_t i = 0; i < naps; i++)
        apic_send_ipi(aps[i].apic_id, APIC_IPI_INIT, 0);
    udelay(10000);
    uint64_t pilot_deadline = rdtsc() + core.tsc_hz / 1000 * PILOT_WAIT_MS;
    /* An AP the firmware did not list never checks in: no pilot then. */
    uint32_t pilots = naps && aps[0].listed ? 1 : 0;
    send_sipis(0, pilots);
    wait_checkins(0, pilots, MIN(pilot_deadline, deadline));
    send_sipis(pilots, naps);
    /* The pilot too: on a loaded host it may take longer than its 100 ms. */
    wait_checkins(0, naps, deadline);
    uint32_t up = 0;
    for (uint32_t i = 0; i < naps; i++)
        up += aps[i].up;
    return up;
}

void smp_start_user(void)
{
    /* As at the cores' start: the pilot's monitor runs first, alone, until
     * it waits for the first time (its start-up code translated once), then
     * every other core's monitor starts (the boot core's last). */
    int32_t pilot = -1;
    for (uint32_t i = 0; i < naps && pilot < 0; i++)
        if (aps[i].up && boot_core_has_user_ram(aps[i].core_id))
            pilot = (int32_t)i;
    if (pilot >= 0) {
        apic_send_ipi(aps[pilot].apic_id, APIC_IPI_FIXED, VEC_WAKEUP);
        uint64_t deadline = rdtsc() + core.tsc_hz / 1000 * PILOT_WAIT_MS;
        while (!aps[pilot].user_idle && !aps[pilot].panicked && rdtsc() < deadline) {
            console_drain();
            cpu_relax();
        }
    }
    for (uint32_t i = 0; i < naps; i++)
        if ((int32_t)i != pilot && aps[i].up && boot_core_has_user_ram(aps[i].core_id))
            apic_send_ipi(aps[i].apic_id, APIC_IPI_FIXED, VEC_WAKEUP);
}
