/* The topology service's client; see <atoll/topo.h>. */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <atoll/topo.h>
#include <if/topology_if.h>

/* ---- reaching the service ----------------------------------------------------------
 * Look "topology" up with the name server (the nearest instance) and
 * connect through our monitor (<atoll/monitor_client.h>). */

#define WAIT_FOR_SERVICE_MS 20000   /* it starts with the system */

static struct service_chan chan;
static bool connected;

static errval_t topology_chan(struct idl_chan **out)
{
    if (connected) {
        *out = &chan.idl;
        return ERR_OK;
    }
    /* Through the domain's one channel to the name server (<atoll/recover.h>). */
    const char *iface = "";
    uint64_t service = 0;
    errval_t err = names_lookup_iface("topology", WAIT_FOR_SERVICE_MS, &iface, &service);
    if (err)
        return err;
    if (strcmp(iface, "topo"))
        return ERR_MSG_UNKNOWN;   /* a "topology" of another program: not ours to talk to */
    err = service_connect(service, &chan);
    if (err)
        return err;
    connected = true;
    *out = &chan.idl;
    return ERR_OK;
}

/* A broken channel is not kept: the next call connects again. */
static errval_t settle(errval_t transport)
{
    if (transport && connected) {
        service_chan_close(&chan, ERR_OK);
        memset(&chan, 0, sizeof chan);
        connected = false;
    }
    return transport;
}

/* ---- the calls ----------------------------------------------------------------------- */

static uint8_t replybuf[topology_size_max];

static void copy_text(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; i + 1 < size && src[i]; i++)
        dst[i] = src[i];
    dst[i] = 0;
}

static void bits_to_set(const uint8_t *bits, size_t n, struct topo_coreset *s)
{
    topo_coreset_clear(s);
    for (size_t i = 0; i < n && i < TOPO_CORESET_MAX / 8; i++)
        s->w[i / 8] |= (uint64_t)bits[i] << (8 * (i % 8));
}

errval_t topo_machine(struct topo_machine_info *out)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    const char *source, *vendor, *brand;
    bool srat = false, slit = false;
    if (!err)
        err = settle(topology_machine_rpc(ch, &rerr, &out->cores, &out->nodes, &out->packages,
                                          &out->physical_cores, &srat, &slit, &source, &vendor, &brand, replybuf,
                                          sizeof replybuf));
    if (err || rerr)
        return err ? err : rerr;
    out->numa_from_srat = srat;
    out->dist_from_slit = slit;
    copy_text(out->source, sizeof out->source, source);
    copy_text(out->vendor, sizeof out->vendor, vendor);
    copy_text(out->brand, sizeof out->brand, brand);
    return ERR_OK;
}

errval_t topo_core(uint32_t core, struct topo_core_info *out)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    bool reported = false;
    if (!err)
        err = settle(topology_core_rpc(ch, core, &rerr, &out->apic, &out->package, &out->package_core,
                                       &out->thread, &out->node, &reported, &out->caches));
    out->reported = reported;
    return err ? err : rerr;
}

errval_t topo_cache(uint32_t core, uint32_t index, struct topo_cache_info *out)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    const uint8_t *bits = 0;
    size_t n = 0;
    if (!err)
        err = settle(topology_cache_rpc(ch, core, index, &rerr, &out->level, &out->type, &out->size, &out->line,
                                        &out->ways, &out->instances, &bits, &n, replybuf, sizeof replybuf));
    if (err || rerr)
        return err ? err : rerr;
    bits_to_set(bits, n, &out->sharers);
    return ERR_OK;
}

errval_t topo_shared_cache(uint32_t a, uint32_t b, uint32_t *level)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    if (!err)
        err = settle(topology_shared_cache_rpc(ch, a, b, &rerr, level));
    return err ? err : rerr;
}

errval_t topo_node(uint32_t node, struct topo_node_info *out)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    const uint8_t *bits = 0, *dist = 0;
    size_t nbits = 0, ndist = 0;
    if (!err)
        err = settle(topology_node_rpc(ch, node, &rerr, &out->domain, &out->mem_bytes, &out->ncores, &bits, &nbits,
                                       &dist, &ndist, replybuf, sizeof replybuf));
    if (err || rerr)
        return err ? err : rerr;
    bits_to_set(bits, nbits, &out->cores);
    for (size_t i = 0; i < TOPO_NODES_MAX; i++)
        out->distance[i] = i < ndist ? dist[i] : 0;
    return ERR_OK;
}

errval_t topo_distance(uint32_t from, uint32_t to, uint32_t *distance)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    if (!err)
        err = settle(topology_distance_rpc(ch, from, to, &rerr, distance));
    return err ? err : rerr;
}

errval_t topo_nearest_cores(uint32_t from, const struct topo_coreset *among, uint32_t *out, uint32_t max,
                            uint32_t *n)
{
    uint8_t bits[TOPO_CORESET_MAX / 8];
    size_t nbits = 0;
    for (size_t i = 0; i < sizeof bits; i++) {
        bits[i] = (uint8_t)(among->w[i / 8] >> (8 * (i % 8)));
        if (bits[i])
            nbits = i + 1;
    }
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    const uint8_t *order = 0;
    size_t len = 0;
    if (!err)
        err = settle(topology_nearest_cores_rpc(ch, from, bits, nbits, &rerr, &order, &len, replybuf,
                                                sizeof replybuf));
    if (err || rerr)
        return err ? err : rerr;
    *n = (uint32_t)(len / 2);
    for (uint32_t i = 0; i < *n && i < max; i++)
        out[i] = (uint32_t)order[2 * i] | (uint32_t)order[2 * i + 1] << 8;
    return ERR_OK;
}

errval_t topo_nearest_nodes(uint32_t from, uint64_t among, uint32_t *out, uint32_t max, uint32_t *n)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    const uint8_t *order = 0;
    size_t len = 0;
    if (!err)
        err = settle(topology_nearest_nodes_rpc(ch, from, among, &rerr, &order, &len, replybuf, sizeof replybuf));
    if (err || rerr)
        return err ? err : rerr;
    *n = (uint32_t)len;
    for (uint32_t i = 0; i < *n && i < max; i++)
        out[i] = order[i];
    return ERR_OK;
}

errval_t topo_xml(uint32_t offset, const char **text, uint32_t *total, uint32_t *lines)
{
    struct idl_chan *ch;
    errval_t rerr = ERR_OK, err = topology_chan(&ch);
    if (!err)
        err = settle(topology_xml_rpc(ch, offset, &rerr, total, lines, text, replybuf, sizeof replybuf));
    return err ? err : rerr;
}

/* ---- libnuma style ------------------------------------------------------------------- */

static errval_t last_error;

static int fail(errval_t err)
{
    last_error = err;
    return -1;
}

errval_t numa_error(void) { return last_error; }

void numa_set_error(errval_t err) { last_error = err; }

int numa_num_nodes(void)
{
    struct topo_machine_info m;
    errval_t err = topo_machine(&m);
    return err ? fail(err) : (int)m.nodes;
}

int numa_num_cores(void)
{
    struct topo_machine_info m;
    errval_t err = topo_machine(&m);
    return err ? fail(err) : (int)m.cores;
}

int numa_node_of_core(uint32_t core)
{
    struct topo_core_info c;
    errval_t err = topo_core(core, &c);
    return err ? fail(err) : (int)c.node;
}

int numa_distance(uint32_t a, uint32_t b)
{
    uint32_t d;
    errval_t err = topo_distance(a, b, &d);
    if (err) {
        last_error = err;
        return 0;   /* as libnuma */
    }
    return (int)d;
}

int numa_nearest_node(uint32_t node, uint64_t among)
{
    uint32_t first, n = 0;
    errval_t err = topo_nearest_nodes(node, among, &first, 1, &n);
    return err ? fail(err) : n ? (int)first : fail(ERR_NOT_FOUND);
}

int numa_nearest_core(uint32_t core, const struct topo_coreset *among)
{
    uint32_t first, n = 0;
    errval_t err = topo_nearest_cores(core, among, &first, 1, &n);
    return err ? fail(err) : n ? (int)first : fail(ERR_NOT_FOUND);
}
