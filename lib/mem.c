/*
 * The memory service's client (<atoll/mem.h>, docs/memory.md): a channel to
 * the nearest instance (to node 0's under the `central` design), and one to
 * each node's instance for stats; the capability of an allocation is taken
 * from our monitor (monlmp cap_take) once the service answers.
 */
#include <atoll/lib.h>
#include <atoll/mem.h>
#include <atoll/monitor_client.h>
#include <atoll/topo.h>
#include <if/mem_if.h>
#include <if/monlmp_if.h>
#include <if/nameservice_if.h>

#define MEM_NAME "mem"
#define TAKE_WAIT_NS 5000000000ull
#define BUSY_TRIES 1000

static struct service_chan names, home;
static bool names_up, home_up;
static uint32_t home_design;
static struct service_chan per_node[CORE_INFO_MAX_NODES];
static bool per_node_up[CORE_INFO_MAX_NODES];
static struct core_info machine;

uint64_t mem_number(const char **s)
{
    const char *p = *s;
    uint64_t v = 0, base = 10;
    if (p[0] == '0' && (p[1] | 32) == 'x')
        p += 2, base = 16;
    for (;; p++) {
        uint64_t d = *p >= '0' && *p <= '9' ? (uint64_t)(*p - '0')
                   : base == 16 && (*p | 32) >= 'a' && (*p | 32) <= 'f' ? (uint64_t)((*p | 32) - 'a' + 10) : 99;
        if (d >= base)
            break;
        v = v * base + d;
    }
    while (*p == ' ' || *p == '\n')
        p++;
    *s = p;
    return v;
}

static errval_t instance_of_node(uint32_t node, struct service_chan *out)
{
    static uint8_t buf[nameservice_size_max];
    uint32_t total = 0, count = 0;
    const char *text = "";
    errval_t rerr = ERR_OK, err = nameservice_instances_rpc(&names.idl, MEM_NAME, 0, &rerr, &total, &count, &text,
                                                            buf, sizeof buf);
    if (err || (err = rerr))
        return err;
    for (const char *l = text; *l;) {
        const char *was = l;
        uint32_t core = (uint32_t)mem_number(&l);
        uint64_t service = mem_number(&l);
        if (l == was)
            break;
        if (core < machine.ncores && machine.core_node[core] == node)
            return service_connect_wait(service, out, 2000);
    }
    return ERR_NOT_FOUND;
}

errval_t mem_connect(uint32_t *design)
{
    errval_t err = ERR_OK, rerr = ERR_OK;
    if (!home_up) {
        static uint8_t buf[nameservice_size_max];
        const char *iface;
        uint64_t service;
        uint32_t node, core, nodes;
        sys_core_info(&machine);
        if (!names_up && !(err = names_connect(&names)))
            names_up = true;
        /* The instance starts with the starter: wait for it a while. */
        for (int i = 0; !err && i < 200; i++) {
            err = nameservice_lookup_rpc(&names.idl, MEM_NAME, &rerr, &iface, &service, buf, sizeof buf);
            if (err || (err = rerr) != ERR_NOT_FOUND)
                break;
            err = ERR_OK;
            sys_notify_wait(sys_notify_gen(), 100000, 0);
        }
        if (err || (err = service_connect_wait(service, &home, 2000)))
            return err;
        if ((err = mem_info_rpc(&home.idl, &rerr, &node, &core, &home_design, &nodes)) || (err = rerr)) {
            service_chan_close(&home, ERR_OK);
            return err;
        }
        if (home_design == MEM_DESIGN_CENTRAL && node != 0) {
            service_chan_close(&home, ERR_OK);
            if ((err = instance_of_node(0, &home)))
                return err;
        }
        home_up = true;
    }
    if (design)
        *design = home_design;
    return ERR_OK;
}

/* The capability the service gave us: from our monitor's mailbox. */
static errval_t take(uint64_t base, capslot_t *out)
{
    uint64_t t0 = now_ns();
    for (;;) {
        capslot_t c = 0;
        uint32_t core = 0;
        uint64_t from = 0;
        errval_t rerr = ERR_OK, err = monlmp_cap_take_rpc(monitor_lmp(), &rerr, &c, &core, &from);
        if (!err)
            err = rerr;
        if (!err) {
            struct cap_identity id;
            if (sys_cap_identify(c, &id) == ERR_OK && id.base == base) {
                *out = c;
                return ERR_OK;
            }
            cap_free(c);   /* not ours to keep: something else given to us */
            continue;
        }
        if (err != ERR_WOULD_BLOCK || now_ns() - t0 > TAKE_WAIT_NS)
            return err == ERR_WOULD_BLOCK ? ERR_TIMEOUT : err;
        sys_yield();
    }
}

errval_t mem_alloc(uint32_t type, uint64_t bytes, uint64_t align, uint32_t where, struct mem_block *out)
{
    errval_t rerr = ERR_OK, err = mem_connect(0);
    for (int tries = 0; !err && tries < BUSY_TRIES; tries++) {
        err = mem_alloc_rpc(&home.idl, type, bytes, align, where, &rerr, &out->id, &out->base, &out->size, &out->node);
        if (!err && (err = rerr) != ERR_WOULD_BLOCK)
            break;
        sys_yield();   /* the instance waits for another node's: ask again */
    }
    if (err)
        return err;
    if ((err = take(out->base, &out->slot)))
        mem_free_id(out->id);
    return err;
}

errval_t mem_free_id(uint64_t id)
{
    errval_t rerr = ERR_OK, err = mem_connect(0);
    for (int tries = 0; !err && tries < BUSY_TRIES; tries++) {
        if (!(err = mem_free_rpc(&home.idl, id, &rerr)) && (err = rerr) != ERR_WOULD_BLOCK)
            break;
        sys_yield();
    }
    return err;
}

errval_t mem_free(struct mem_block *b)
{
    errval_t err = mem_free_id(b->id);
    /* The service deleted the capability everywhere: our slot is empty now. */
    if (!err)
        cap_free(b->slot);
    return err;
}

errval_t mem_stats(uint32_t node, uint32_t to, struct mem_node_stats *s)
{
    errval_t err = mem_connect(0);
    if (err)
        return err;
    if (node >= machine.nnodes || node >= CORE_INFO_MAX_NODES)
        return ERR_NO_SUCH_NODE;
    if (!per_node_up[node] && !(err = instance_of_node(node, &per_node[node])))
        per_node_up[node] = true;
    if (err)
        return err;
    errval_t rerr = ERR_OK;
    uint32_t held;
    uint64_t held_bytes;
    if ((err = mem_stats_rpc(&per_node[node].idl, to, &rerr, &s->total, &s->free, &s->lent, &s->borrowed, &s->base,
                             &s->end, &s->allocs, &s->lent_to, &held, &held_bytes)))
        return err;
    return rerr;
}

/* -- libnuma style ------------------------------------------------------------------------ */

/* What we mapped, to find the block again at numa_free. */
#define NUMA_MAPS 256
static struct {
    void *at;
    struct mem_block b;
} maps[NUMA_MAPS];

static void *numa_alloc_where(uint64_t bytes, uint32_t where)
{
    bytes = (bytes + MEM_PAGE - 1) & ~(MEM_PAGE - 1);
    int i = 0;
    while (i < NUMA_MAPS && maps[i].at)
        i++;
    errval_t err = i == NUMA_MAPS ? ERR_TOO_MANY : bytes > (2ull << 20) ? ERR_NOT_SUPPORTED : ERR_OK;
    if (!err)
        err = mem_alloc(CAP_FRAME, bytes, 0, where, &maps[i].b);
    if (!err && (err = vspace_map_frame(maps[i].b.slot, MAP_WRITE, &maps[i].at))) {
        mem_free(&maps[i].b);
        maps[i].at = 0;
    }
    if (err) {
        numa_set_error(err);
        return 0;
    }
    return maps[i].at;
}

void *numa_alloc_onnode(uint64_t bytes, int node)
{
    if (node < 0) {
        numa_set_error(ERR_NO_SUCH_NODE);
        return 0;
    }
    return numa_alloc_where(bytes, (uint32_t)node);
}

void *numa_alloc_local(uint64_t bytes) { return numa_alloc_where(bytes, MEM_NEAREST); }

void numa_free(void *p, uint64_t bytes)
{
    (void)bytes;
    for (int i = 0; i < NUMA_MAPS; i++)
        if (p && maps[i].at == p) {
            vspace_unmap_frame(maps[i].b.slot, p);
            mem_free(&maps[i].b);
            maps[i].at = 0;
            return;
        }
    numa_set_error(ERR_NOT_FOUND);
}
