/* Unmap and protect in a spanning domain; see <atoll/span.h>. */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/span.h>
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

errval_t span_unmap(capslot_t frame, uint64_t vaddr, uint64_t bytes, uint32_t protocol, uint32_t *cores)
{
    errval_t err = sys_unmap(frame);
    return err ? err : shootdown(vaddr, bytes, protocol, cores);
}

errval_t span_protect(capslot_t frame, uint32_t flags, uint64_t vaddr, uint64_t bytes, uint32_t protocol,
                      uint32_t *cores)
{
    errval_t err = sys_protect(frame, flags);
    return err ? err : shootdown(vaddr, bytes, protocol, cores);
}
