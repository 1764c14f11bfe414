/*
 * The topology service, started by the boot manifest (on core 0 in the
 * default one, servers/starter/default.services). It maps the machine
 * frame the CPU driver filled at boot (SLOT_MACHINE, <atoll/abi/machine.h>),
 * builds the model (model.h), prints it the way the boot report used to
 * (on core 0: each core's cpu_topology event, the model's warnings, a
 * summary line and a `topology` event), joins its
 * group in the name server ("topology") and answers the questions of
 * if/topology.if: cores, nodes, caches, distances, nearest-first orders and
 * the hwloc XML. docs/topology.md; clients use lib/'s <atoll/topo.h>.
 */
#include <atoll/lib.h>
#include <if/topology_if.h>
#include "model.h"
#include "service.h"
#include "topo_xml.h"

#define XML_CHUNK 1500   /* string<1500> in if/topology.if */

static struct topo_model model;
static struct topo_cpu_info infos[TOPO_MAX_CPUS];
static const struct topology *acpi;

/* ---- printing ------------------------------------------------------------------ */

/* A JSON string's contents: quotes, backslashes and control characters escaped. */
static void json_text(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
}

static void warn(void *ctx, const char *msg)
{
    (void)ctx;
    char esc[512];
    json_text(esc, sizeof esc, msg);
    printf("topo: warning: %s\n", msg);
    printf("@atoll {\"event\":\"warning\",\"msg\":\"%s\"}\n", esc);
}

static const char *cache_suffix(uint8_t type)
{
    return type == CACHE_DATA ? "d" : type == CACHE_INSTRUCTION ? "i" : "";
}

/* What the boot report printed when the model was the kernel's. */
static void print_model(const struct machine *m)
{
    char line[CPU_PLACE_EVENT_MAX];
    for (uint32_t c = 0; c < m->ncpus; c++)
        if (infos[c].reported && cpu_place_format_event(&m->records[c].place, c, line, sizeof line))
            printf("%s", line);
    uint32_t n;
    const struct cpu_cache *caches = topo_caches_of(&model, 0, &n);
    char text[256];
    size_t len = 0;
    text[0] = 0;
    for (uint32_t i = 0; i < n && len < sizeof text - 40; i++) {
        char size[24];
        fmt_bytes(size, sizeof size, caches[i].size);
        len += (size_t)snprintf(text + len, sizeof text - len, "%sL%u%s %s x%u", i ? ", " : "", caches[i].level,
                                cache_suffix(caches[i].type), size, topo_cache_instances(&model, &caches[i]));
    }
    const char *src = cpu_place_source_name(infos[0].source);
    printf("topology: %u package%s, %u core%s, %u PU%s, %u NUMA node%s (%s %s, %s); caches %s\n",
           model.npackages, model.npackages == 1 ? "" : "s", model.ncores, model.ncores == 1 ? "" : "s",
           model.ncpus, model.ncpus == 1 ? "" : "s", acpi->nnodes, acpi->nnodes == 1 ? "" : "s", model.vendor,
           model.brand, src, len ? text : "none reported");
    char vendor[80], brand[300];
    json_text(vendor, sizeof vendor, model.vendor);
    json_text(brand, sizeof brand, model.brand);
    len = 0;
    text[0] = 0;
    for (uint32_t i = 0; i < n && len < sizeof text - 80; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%s[%u,%u,%llu,%u]", i ? "," : "", caches[i].level,
                                caches[i].type, (unsigned long long)caches[i].size,
                                topo_cache_instances(&model, &caches[i]));
    printf("@atoll {\"event\":\"topology\",\"packages\":%u,\"cores\":%u,\"pus\":%u,\"nodes\":%u,\"source\":\"%s\","
           "\"vendor\":\"%s\",\"brand\":\"%s\",\"caches\":[%s]}\n",
           model.npackages, model.ncores, model.ncpus, acpi->nnodes, src, vendor, brand, text);
    stdout_flush();
}

/* ---- answers ---------------------------------------------------------------------- */

/* A set of cores or nodes as the wire's bitmap: (count + 7) / 8 bytes. */
static size_t bitmap_bytes(const struct topo_coreset *s, uint32_t count, uint8_t *out)
{
    size_t n = (count + 7) / 8;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(s->w[i / 8] >> (8 * (i % 8)));
    return n;
}

static errval_t on_machine(struct idl_chan *ch, const struct topology_machine_call_args *a)
{
    (void)a;
    return topology_machine_reply_send(ch, ERR_OK, model.ncpus, acpi->nnodes, model.npackages, model.ncores,
                                       acpi->numa_from_srat, acpi->dist_from_slit,
                                       cpu_place_source_name(infos[0].source), model.vendor, model.brand);
}

static errval_t on_core(struct idl_chan *ch, const struct topology_core_call_args *a)
{
    uint32_t node, ncaches;
    errval_t err = topo_model_node_of_core(&model, a->core, &node);
    if (err)
        return topology_core_reply_send(ch, err, 0, 0, 0, 0, 0, false, 0);
    const struct topo_cpu_info *c = &infos[a->core];
    topo_caches_of(&model, a->core, &ncaches);
    return topology_core_reply_send(ch, ERR_OK, c->apic_id, c->package, c->core, c->thread, node, c->reported,
                                    ncaches);
}

static errval_t on_cache(struct idl_chan *ch, const struct topology_cache_call_args *a)
{
    uint32_t n;
    const struct cpu_cache *caches = topo_caches_of(&model, a->core, &n);
    errval_t err = a->core >= model.ncpus ? ERR_NO_SUCH_CORE : a->index >= n ? ERR_NOT_FOUND : ERR_OK;
    if (err)
        return topology_cache_reply_send(ch, err, 0, 0, 0, 0, 0, 0, 0, 0);
    const struct cpu_cache *k = &caches[a->index];
    struct topo_coreset sharers;
    uint8_t bits[TOPO_MAX_CPUS / 8];
    topo_cache_sharers(&model, a->core, k, &sharers);
    return topology_cache_reply_send(ch, ERR_OK, k->level, k->type, k->size, k->line, k->ways,
                                     topo_cache_instances(&model, k), bits,
                                     bitmap_bytes(&sharers, model.ncpus, bits));
}

static errval_t on_shared_cache(struct idl_chan *ch, const struct topology_shared_cache_call_args *a)
{
    uint32_t level = 0;
    errval_t err = topo_model_shared_level(&model, a->a, a->b, &level);
    return topology_shared_cache_reply_send(ch, err, level);
}

static errval_t on_node(struct idl_chan *ch, const struct topology_node_call_args *a)
{
    if (a->node >= acpi->nnodes)
        return topology_node_reply_send(ch, ERR_NO_SUCH_NODE, 0, 0, 0, 0, 0, 0, 0);
    struct topo_coreset cores = { { 0 } };
    uint32_t ncores = 0;
    for (uint32_t c = 0; c < acpi->ncpus; c++)
        if (acpi->cpus[c].node == a->node) {
            topo_coreset_add(&cores, c);
            ncores++;
        }
    uint8_t bits[TOPO_MAX_CPUS / 8];
    size_t nbits = bitmap_bytes(&cores, model.ncpus, bits);
    const struct topo_node *nd = &acpi->nodes[a->node];
    return topology_node_reply_send(ch, ERR_OK, nd->domain, nd->mem_bytes, ncores, bits, nbits,
                                    acpi->dist[a->node], acpi->nnodes);
}

static errval_t on_distance(struct idl_chan *ch, const struct topology_distance_call_args *a)
{
    uint32_t d = 0;
    errval_t err = topo_model_distance(&model, a->from, a->to, &d);
    return topology_distance_reply_send(ch, err, d);
}

static errval_t on_nearest_cores(struct idl_chan *ch, const struct topology_nearest_cores_call_args *a)
{
    struct topo_coreset among = { { 0 } };
    for (size_t i = 0; i < a->among_len; i++)
        among.w[i / 8] |= (uint64_t)a->among[i] << (8 * (i % 8));
    uint16_t order[TOPO_MAX_CPUS];
    uint8_t wire[2 * TOPO_MAX_CPUS];
    uint32_t n = 0;
    errval_t err = topo_model_nearest_cores(&model, a->from, &among, order, &n);
    for (uint32_t i = 0; !err && i < n; i++) {
        wire[2 * i] = (uint8_t)order[i];
        wire[2 * i + 1] = (uint8_t)(order[i] >> 8);
    }
    return topology_nearest_cores_reply_send(ch, err, wire, err ? 0 : 2 * n);
}

static errval_t on_nearest_nodes(struct idl_chan *ch, const struct topology_nearest_nodes_call_args *a)
{
    uint8_t order[TOPO_MAX_NODES];
    uint32_t n = 0;
    errval_t err = topo_model_nearest_nodes(&model, a->from, a->among, order, &n);
    return topology_nearest_nodes_reply_send(ch, err, order, err ? 0 : n);
}

/* The XML, written again for each piece asked for: the model never
 * changes, and no copy of the whole text has to fit in our RAM. */
struct xml_piece {
    uint64_t pos, from;      /* bytes written so far; where the piece starts */
    uint64_t lines;
    char text[XML_CHUNK + 1];
    size_t len;
};

static void take_piece(void *ctx, const char *s, size_t n)
{
    struct xml_piece *p = ctx;
    for (size_t i = 0; i < n; i++, p->pos++) {
        p->lines += s[i] == '\n';
        if (p->pos >= p->from && p->len < XML_CHUNK)
            p->text[p->len++] = s[i];
    }
}

static errval_t on_xml(struct idl_chan *ch, const struct topology_xml_call_args *a)
{
    static struct xml_piece p;
    static uint64_t total, lines;
    static bool counted;
    if (!counted) {
        /* The first time: the size, and the writer's warnings (only now,
         * before the client prints a byte). */
        p = (struct xml_piece){ .from = ~0ull };
        topo_xml_write(&model, take_piece, &p, warn, 0);
        stdout_flush();
        total = p.pos;
        lines = p.lines;
        counted = true;
    }
    if (a->offset > total)
        return topology_xml_reply_send(ch, ERR_INVALID_ARG, (uint32_t)total, (uint32_t)lines, "");
    p = (struct xml_piece){ .from = a->offset };
    topo_xml_write(&model, take_piece, &p, 0, 0);
    /* Whole lines, unless one line is longer than a piece. */
    size_t len = p.len;
    if (a->offset + len < total)
        while (len > 0 && p.text[len - 1] != '\n')
            len--;
    if (len == 0)
        len = p.len;
    p.text[len] = 0;
    return topology_xml_reply_send(ch, ERR_OK, (uint32_t)total, (uint32_t)lines, p.text);
}

static const struct topology_handlers handlers = {
    .machine_call = on_machine,
    .core_call = on_core,
    .cache_call = on_cache,
    .shared_cache_call = on_shared_cache,
    .node_call = on_node,
    .distance_call = on_distance,
    .nearest_cores_call = on_nearest_cores,
    .nearest_nodes_call = on_nearest_nodes,
    .xml_call = on_xml,
};

static errval_t serve_one(struct idl_chan *ch, unsigned flags)
{
    return topology_serve_one(ch, &handlers, flags);
}

/* ---- start ---------------------------------------------------------------------------- */

static int give_up(const char *what, errval_t err)
{
    printf("topo: %s: %s (%s)\n", what, err_name(err), err_text(err));
    printf("@atoll {\"event\":\"topo_failed\",\"what\":\"%s\",\"error\":\"%s\"}\n", what, err_name(err));
    return 1;
}

/* The starter's key: hexadecimal; 0 if malformed (then we register instead). */
static uint64_t parse_key(const char *s)
{
    uint64_t v = 0;
    for (int n = 0; *s; s++, n++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0' : (*s | 32) >= 'a' && (*s | 32) <= 'f' ? (*s | 32) - 'a' + 10 : -1;
        if (d < 0 || n == 16)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    return v;
}

/* topo [NAME KEY]: as the boot manifest starts it, join group NAME with the
 * starter's KEY; alone, register "topology". */
int main(int argc, char **argv)
{
    const char *name = argc == 3 ? argv[1] : "topology";
    uint64_t key = argc == 3 ? parse_key(argv[2]) : 0;
    struct cap_identity id;
    void *frame;
    errval_t err = sys_cap_identify(SLOT_MACHINE, &id);
    if (!err)
        err = id.type == CAP_FRAME ? vspace_map_frame(SLOT_MACHINE, 0, &frame) : ERR_CAP_TYPE;
    if (err)
        return give_up("cannot map the machine frame", err);
    const struct machine *m = frame;
    err = machine_check(m, id.bytes);
    if (err)
        return give_up("the machine frame is malformed", err);
    /* The instance on the boot core speaks for the machine, as the boot
     * report did; others (a per-node placement) keep quiet. */
    bool speak = startup()->core_id == 0;
    topo_model_from_machine(&model, m, infos, speak ? warn : 0, 0);
    acpi = model.acpi;
    if (speak)
        print_model(m);
    err = service_start(name, "topo", key);   /* the interface by the program's name, as the starter does */
    if (err)
        return give_up("cannot become a service", err);
    service_run(serve_one);
}
