/* Unmap and protect in a spanning domain; see <atoll/span.h>. */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/span.h>
#include <atoll/thread.h>
#include <if/monlmp_if.h>

static const char *const names[] = { [TLB_UNICAST] = "unicast", [TLB_BROADCAST] = "broadcast",
                                     [TLB_MULTICAST] = "multicast", [TLB_NUMA_MULTICAST] = "numa-multicast",
                                     [TLB_IPI] = "ipi" };

const char *tlb_protocol_name(uint32_t protocol)
{
    return protocol < ARRAY_SIZE(names) && names[protocol] ? names[protocol] : "?";
}

uint32_t tlb_protocol_parse(const char *name)
{
    for (uint32_t p = 1; p < ARRAY_SIZE(names); p++)
        if (!strcmp(name, names[p]))
            return p;
    return 0;
}

static errval_t shootdown(uint64_t vaddr, uint64_t bytes, uint32_t protocol, uint32_t *cores)
{
    uint64_t pages = (bytes + 4095) / 4096;
    if (pages > 0xffffffffu)
        return ERR_INVALID_ARG;
    errval_t err = monitor_lmp() ? ERR_OK : monitor_connect();
    errval_t rerr = ERR_OK;
    uint32_t n = 0;
    if (!err)
        err = monlmp_tlb_shootdown_rpc(monitor_lmp(), vaddr, (uint32_t)pages, protocol, &rerr, &n);
    if (cores)
        *cores = n;
    return err ? err : rerr;
}

/* One call, as the home runs it: the home's CPU driver changes its tables,
 * then its monitor has every other core that ran the domain forget. */
struct span_op {
    capslot_t frame;
    uint32_t flags;
    bool protect;
    uint64_t vaddr, bytes;
    uint32_t protocol, cores;
};

static errval_t span_op_run(void *arg)
{
    struct span_op *o = arg;
    errval_t err = o->protect ? sys_protect(o->frame, o->flags) : sys_unmap(o->frame);
    return err ? err : shootdown(o->vaddr, o->bytes, o->protocol, &o->cores);
}

/* A thread on another core has neither the home's capabilities nor its
 * monitor channel: the home runs the call for it (thread_at_home), and the
 * shootdown includes the caller's core as any that ran the domain. */
static errval_t span_op(struct span_op *o, uint32_t *cores)
{
    errval_t err = thread_at_home(span_op_run, o);
    if (cores)
        *cores = o->cores;
    return err;
}

errval_t span_unmap(capslot_t frame, uint64_t vaddr, uint64_t bytes, uint32_t protocol, uint32_t *cores)
{
    struct span_op o = { .frame = frame, .vaddr = vaddr, .bytes = bytes, .protocol = protocol };
    return span_op(&o, cores);
}

errval_t span_protect(capslot_t frame, uint32_t flags, uint64_t vaddr, uint64_t bytes, uint32_t protocol,
                      uint32_t *cores)
{
    struct span_op o = { .frame = frame, .flags = flags, .protect = true, .vaddr = vaddr, .bytes = bytes,
                         .protocol = protocol };
    return span_op(&o, cores);
}
