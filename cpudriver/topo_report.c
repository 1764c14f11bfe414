/* The machine frame; see topo_report.h. */
#include "topo_report.h"
#include <atoll/abi/caps.h>
#include "console.h"
#include "core.h"
#include "lib.h"
#include "pmem.h"
#include "report.h"
#include "x86_64/cpuid_topo.h"
#include "x86_64/kernel_layout.h"

/* Where the frame is: set by the boot core before its switch, read-only after. */
BOOTSHARED static uint64_t frame_phys, frame_bytes;

/* The boot core's private state (every core has a copy; only core 0's is used). */
static struct machine *frame;   /* through the boot core's direct map */
static bool finished;

static void warn(const char *msg)
{
    kprintf("warning: %s\n", msg);
    struct event e;
    event_begin(&e, "warning");
    event_str(&e, "msg", msg);
    event_end(&e);
}

void cputopo_plan(const struct topology *t)
{
    uint64_t bytes = ALIGN_UP(MACHINE_BYTES(t->ncpus), CAP_PAGE_SIZE);
    uint32_t node = t->numa_from_srat ? t->cpus[0].node : PMEM_ANY_NODE;
    uint64_t base = pmem_alloc(bytes, CAP_PAGE_SIZE, node, ~0ull);
    if (!base)
        base = pmem_alloc(bytes, CAP_PAGE_SIZE, PMEM_ANY_NODE, ~0ull);
    if (!base) {
        warn("no memory for the machine frame: user space gets no topology");
        return;
    }
    memset(phys_to_virt(base), 0, bytes);
    frame_phys = base;
    frame_bytes = bytes;
}

void cputopo_self(struct cpu_place *out)
{
    cpuid_topo_self(out, 0);
}

void cputopo_boot_start(const struct topology *t)
{
    if (!frame_phys)
        return;
    frame = phys_to_virt(frame_phys);
    frame->magic = MACHINE_MAGIC;
    frame->version = MACHINE_VERSION;
    frame->bytes = (uint32_t)MACHINE_BYTES(t->ncpus);
    frame->ncpus = t->ncpus;
    memcpy(&frame->topo, t, sizeof *t);
    cpuid_topo_self(&frame->records[0].place, &frame->ident);
    frame->records[0].reported = 1;
}

void cputopo_note_checkin(uint32_t core_id, const void *payload, size_t len)
{
    if (!frame || finished)
        return;
    char msg[128];
    if (core_id == 0 || core_id >= frame->ncpus || len != sizeof(struct cpu_place)) {
        snprintf(msg, sizeof msg, "core %u checked in with a CPUID record of %u bytes (want %u); ignored", core_id,
                 (unsigned)len, (unsigned)sizeof(struct cpu_place));
        warn(msg);
        return;
    }
    if (frame->records[core_id].reported) {
        snprintf(msg, sizeof msg, "core %u sent a second CPUID record; the first stands", core_id);
        warn(msg);
        return;
    }
    memcpy(&frame->records[core_id].place, payload, len);
    frame->records[core_id].reported = 1;
}

void cputopo_boot_finish(void)
{
    finished = true;
}

bool cputopo_frame(uint64_t *base, uint64_t *bytes)
{
    *base = frame_phys;
    *bytes = frame_bytes;
    return frame_phys != 0;
}
