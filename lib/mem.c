/*
 * The memory service's client (<atoll/mem.h>, docs/memory.md): a channel to
 * the nearest instance (to node 0's under the `central` design), and one to
 * each node's instance for stats; the capability of an allocation is taken
 * from our monitor (monlmp cap_take) once the service answers.
 */
#include <atoll/lib.h>
#include <atoll/lib/malloc.h>
#include <atoll/mem.h>
#include <atoll/monitor_client.h>
#include <atoll/recover.h>
#include <atoll/topo.h>
#include <if/mem_if.h>
#include <if/monclient_if.h>
#include <if/monlmp_if.h>
#include <if/nameservice_if.h>

#define MEM_NAME "mem"
#define TAKE_WAIT_NS 30000000000ull   /* as long as a monitor waits for another core (monitor/pending.c) */
#define BUSY_WAIT_NS 20000000000ull   /* an instance busy waiting for another node's: ask again this long */

/* The name server through <atoll/recover.h>'s channel, the domain's one
 * (remade after a restart): a channel of its own here took a second
 * name-server client slot for every domain using the memory service. */
static struct service_chan home;
static bool home_up;
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

static uint64_t home_service;

struct instances { errval_t rerr; uint32_t total, count; const char *text; };

static errval_t instances_call(struct idl_chan *ns, void *arg)
{
    static uint8_t buf[nameservice_size_max];
    struct instances *a = arg;
    return nameservice_instances_rpc(ns, MEM_NAME, 0, &a->rerr, &a->total, &a->count, &a->text, buf, sizeof buf);
}

static errval_t instance_of_node(uint32_t node, struct service_chan *out, uint64_t *id)
{
    struct instances a = { .rerr = ERR_OK, .text = "" };
    errval_t err = names_call(instances_call, &a);   /* remade if the name server was restarted */
    if (err || (err = a.rerr))
        return err;
    const char *text = a.text;
    for (const char *l = text; *l;) {
        const char *was = l;
        uint32_t core = (uint32_t)mem_number(&l);
        uint64_t service = mem_number(&l);
        if (l == was)
            break;
        if (core < machine.ncores && machine.core_node[core] == node)
        {
            if (id)
                *id = service;
            return service_connect_wait(service, out, 2000);
        }
    }
    return ERR_NOT_FOUND;
}

/* One lookup, no waiting: is there a memory service at all? */
errval_t mem_present(void)
{
    uint64_t service;
    return home_up ? ERR_OK : names_lookup(MEM_NAME, 0, &service);
}

static uint32_t forced_design = MEM_DESIGN_UNKNOWN;

void mem_use_design(uint32_t design) { forced_design = design; }

errval_t mem_connect(uint32_t *design)
{
    errval_t err = ERR_OK, rerr = ERR_OK;
    if (!home_up) {
        uint64_t service = 0;
        uint32_t node, core, nodes;
        sys_core_info(&machine);
        /* The instance starts with the starter: wait for it up to 20 s. */
        err = names_lookup(MEM_NAME, 20000, &service);
        home_service = service;
        if (err || (err = service_connect_wait(service, &home, 2000)))
            return err;
        if ((err = mem_info_rpc(&home.idl, &rerr, &node, &core, &home_design, &nodes)) || (err = rerr)) {
            service_chan_close(&home, ERR_OK);
            return err;
        }
        if (forced_design != MEM_DESIGN_UNKNOWN)
            home_design = forced_design;
        if (home_design == MEM_DESIGN_CENTRAL && node != 0) {
            service_chan_close(&home, ERR_OK);
            if ((err = instance_of_node(0, &home, &home_service)))
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

static errval_t service_free(uint64_t id);

/* Answers ERR_WOULD_BLOCK (the instance had no worker free): asked again. */
static uint64_t busy_retries;
uint64_t mem_busy_retries(void) { return busy_retries; }

static void busy_nap(void)
{
    busy_retries++;
    sys_notify_wait(sys_notify_gen(), 200, 0);
}

static errval_t service_alloc(uint32_t type, uint64_t bytes, uint64_t align, uint32_t where, struct mem_block *out)
{
    errval_t rerr = ERR_OK, err = mem_connect(0);
    for (uint64_t t0 = now_ns(); !err;) {
        err = mem_alloc_rpc(&home.idl, type, bytes, align, where, &rerr, &out->id, &out->base, &out->size, &out->node);
        if (err || (err = rerr) != ERR_WOULD_BLOCK || now_ns() - t0 > BUSY_WAIT_NS)
            break;
        err = ERR_OK;
        busy_nap();   /* the instance waits for another node's: ask again */
    }
    if (err)
        return err;
    if ((err = take(out->base, &out->slot)))
        service_free(out->id);
    return err;
}

static errval_t service_free(uint64_t id)
{
    errval_t rerr = ERR_OK, err = mem_connect(0);
    for (uint64_t t0 = now_ns(); !err;) {
        err = mem_free_rpc(&home.idl, id, &rerr);
        if (err || (err = rerr) != ERR_WOULD_BLOCK || now_ns() - t0 > BUSY_WAIT_NS)
            break;
        err = ERR_OK;
        busy_nap();
    }
    return err;
}

/* -- the per-core cache (the `cache` design) ------------------------------------------ */
/*
 * 4 KiB Frames asked for NEAREST come from blocks of RAM this domain got
 * from the service MEM_CACHE_PAGES pages at a time (one call: the refill
 * batch), carved here (our own retype; a block the service gave from
 * another core is FOREIGN here, so the retype is agreed with its owner
 * core through our monitor, never the service). A block whose pages are
 * all free again goes back to the service (the drain batch) unless it is
 * the only one. A domain runs on one core: the cache is per core.
 */
#define CACHE_BLOCKS 32
#define CACHE_ID_FLAG (1ull << 63)
/* Each page of a block is carved once: a block from another core is
 * FOREIGN here, and its owner core keeps the range it agreed to carve
 * reserved as long as the block lives (docs/capabilities.md, Retype), so
 * carving it again would overlap. A block whose pages were all carved and
 * freed goes back to the service; a fresh one comes next. */
static struct cache_block {
    struct mem_block ram;   /* ram.id 0: unused */
    uint32_t next;          /* pages carved so far */
    uint32_t live;          /* bit i: page i is a Frame we handed out */
    capslot_t frames[MEM_CACHE_PAGES];
} cache[CACHE_BLOCKS];

static bool cached_request(uint32_t type, uint64_t bytes, uint64_t align, uint32_t where)
{
    return home_design == MEM_DESIGN_CACHE && type == CAP_FRAME && bytes == MEM_PAGE && align <= MEM_PAGE &&
           where == MEM_NEAREST;
}

static errval_t cache_alloc(struct mem_block *out)
{
    struct cache_block *b = 0;
    for (int i = 0; i < CACHE_BLOCKS && !b; i++)
        if (cache[i].ram.id && cache[i].next < MEM_CACHE_PAGES)
            b = &cache[i];
    for (int i = 0; i < CACHE_BLOCKS && !b; i++)
        if (!cache[i].ram.id) {
            /* Refill: one call for MEM_CACHE_PAGES pages. */
            errval_t err = service_alloc(CAP_RAM, MEM_CACHE_PAGES * MEM_PAGE, MEM_CACHE_PAGES * MEM_PAGE,
                                         MEM_NEAREST, &cache[i].ram);
            if (err) {
                cache[i].ram.id = 0;
                return err;
            }
            cache[i].next = cache[i].live = 0;
            b = &cache[i];
        }
    if (!b)
        return ERR_QUOTA;
    uint32_t page;
    capslot_t f;
    errval_t rerr = ERR_OK, err = slot_alloc(&f);
    if (err)
        return err;
    /* A retype agreed with another core that timed out may still have been
     * reserved there (then ERR_OVERLAP): that page is skipped, not retried. */
    do {
        page = b->next++;
        err = sys_cap_retype(b->ram.slot, CAP_FRAME, MEM_PAGE, page * MEM_PAGE, 1, f);
        if (err == ERR_CAP_REMOTE && !(err = monlmp_cap_retype_rpc(monitor_lmp(), b->ram.slot, CAP_FRAME, MEM_PAGE,
                                                                   page * MEM_PAGE, 1, f, &rerr)))
            err = rerr;
    } while ((err == ERR_TIMEOUT || err == ERR_OVERLAP) && b->next < MEM_CACHE_PAGES);
    if (err) {
        slot_free(f);
        return err;
    }
    b->live |= 1u << page;
    b->frames[page] = f;
    *out = (struct mem_block){ .id = CACHE_ID_FLAG | (uint64_t)(b - cache) << 8 | page, .slot = f,
                               .base = b->ram.base + page * MEM_PAGE, .size = MEM_PAGE, .node = b->ram.node };
    return ERR_OK;
}

static errval_t cache_free(uint64_t id)
{
    uint64_t i = (id & ~CACHE_ID_FLAG) >> 8, page = id & 0xff;
    if (i >= CACHE_BLOCKS || page >= MEM_CACHE_PAGES || !cache[i].ram.id || !(cache[i].live >> page & 1))
        return ERR_NOT_FOUND;
    struct cache_block *b = &cache[i];
    sys_cap_delete(b->frames[page]);
    slot_free(b->frames[page]);
    b->live &= ~(1u << page);
    if (b->live || b->next < MEM_CACHE_PAGES)
        return ERR_OK;
    /* Drain: every page was carved and is free again: the block goes back. */
    errval_t err = service_free(b->ram.id);
    if (!err)
        cap_free(b->ram.slot);
    b->ram.id = 0;
    return err;
}

errval_t mem_alloc(uint32_t type, uint64_t bytes, uint64_t align, uint32_t where, struct mem_block *out)
{
    errval_t err = mem_connect(0);
    if (err)
        return err;
    if (cached_request(type, bytes, align, where))
        return cache_alloc(out);
    return service_alloc(type, bytes, align, where, out);
}

errval_t mem_free_id(uint64_t id)
{
    if (id & CACHE_ID_FLAG)
        return cache_free(id);
    return service_free(id);
}

errval_t mem_free(struct mem_block *b)
{
    if (b->id & CACHE_ID_FLAG)
        return cache_free(b->id);
    /* Our copy goes first: then the service's delete of its original seldom
     * has to ask our core for it (its monitor may have heard we let go),
     * and the instance's loop is not held up by a busy core. */
    cap_free(b->slot);
    return service_free(b->id);
}

errval_t mem_home(uint64_t *service)
{
    errval_t err = mem_connect(0);
    if (!err)
        *service = home_service;
    return err;
}

/* Our channel to node n's instance, connected the first time. */
static errval_t node_chan(uint32_t n)
{
    errval_t err = ERR_OK;
    if (!per_node_up[n] && !(err = instance_of_node(n, &per_node[n], 0)))
        per_node_up[n] = true;
    return err;
}

errval_t mem_stats(uint32_t node, uint32_t to, struct mem_node_stats *s)
{
    errval_t err = mem_connect(0);
    if (err)
        return err;
    if (node >= machine.nnodes || node >= CORE_INFO_MAX_NODES)
        return ERR_NO_SUCH_NODE;
    if ((err = node_chan(node)))
        return err;
    errval_t rerr = ERR_OK;
    uint32_t held;
    uint64_t held_bytes;
    if ((err = mem_stats_rpc(&per_node[node].idl, to, &rerr, &s->total, &s->free, &s->lent, &s->borrowed, &s->base,
                             &s->end, &s->allocs, &s->lent_to, &held, &held_bytes, &s->batches_lent,
                             &s->batches_held, &s->batches_ever, &s->deferred, &s->workers_max, &s->spawned,
                             &s->spawned_ever)))
        return err;
    return rerr;
}

errval_t mem_spawn_ram(uint32_t core, uint64_t bytes, uint64_t *base, uint64_t *size, uint32_t *node)
{
    errval_t err = mem_connect(0), rerr = ERR_OK;
    if (err)
        return err;
    if (core >= machine.ncores)
        return ERR_INVALID_ARG;
    uint32_t n = machine.core_node[core];
    if (n >= CORE_INFO_MAX_NODES)
        return ERR_NO_SUCH_NODE;
    /* A channel that broke (its instance ended, and was started again)
     * is made again, once. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!(err = node_chan(n)))
            err = mem_spawn_ram_rpc(&per_node[n].idl, core, bytes, &rerr, base, size, node);
        if (!err || !per_node_up[n])
            break;
        service_chan_close(&per_node[n], ERR_OK);
        per_node_up[n] = false;
    }
    return err ? err : rerr;
}

errval_t mem_spawn_ready(void)
{
    errval_t err = mem_present();
    if (!err)
        err = mem_connect(0);
    for (uint32_t n = 0; !err && n < machine.nnodes && n < CORE_INFO_MAX_NODES; n++)
        err = node_chan(n);
    return err;
}

errval_t mem_spawn(uint32_t core, const char *cmd, uint64_t *id, struct mem_spawned *how)
{
    errval_t err, rerr = ERR_OK;
    *how = (struct mem_spawned){ 0 };
    /* One lookup, no waiting, while no instance answered yet. */
    errval_t why = mem_present();
    if (!why)
        why = mem_spawn_ram(core, 0, &how->base, &how->size, &how->node);
    if (!why) {
        err = monclient_spawn_rpc(monitor_chan(), core, cmd, 0, false, how->base, &rerr, id);
        why = err ? err : rerr;
        /* A monitor that did not use it gives it back: at once, or after
         * 30 s if it had not arrived when the monitor said no. */
    }
    if (!why) {
        how->from_service = true;
        return ERR_OK;
    }
    *how = (struct mem_spawned){ .why = why };
    rerr = ERR_OK;
    err = monclient_spawn_rpc(monitor_chan(), core, cmd, 0, false, 0, &rerr, id);
    return err ? err : rerr;
}

errval_t mem_table(struct mem_node_stats *s, uint64_t *borrowed, uint32_t *nnodes)
{
    errval_t err = mem_connect(0);
    for (uint32_t n = 0; n < machine.nnodes && !err; n++) {
        borrowed[n] = 0;
        err = mem_stats(n, n, &s[n]);
    }
    /* Node X borrowed what the other nodes' pools hold for X's domains. */
    for (uint32_t y = 0; y < machine.nnodes && !err; y++)
        for (uint32_t x = 0; x < machine.nnodes && !err; x++) {
            struct mem_node_stats t;
            if (x != y && !(err = mem_stats(y, x, &t)))
                borrowed[x] += t.lent_to;
        }
    *nnodes = machine.nnodes;
    return err;
}

void mem_table_print(const struct mem_node_stats *s, const uint64_t *borrowed, uint32_t nnodes)
{
    printf("node  pool KiB   free KiB   lent KiB   borrowed KiB   domains KiB\n");
    for (uint32_t n = 0; n < nnodes; n++) {
        printf("%4u %9llu %10llu %10llu %14llu %13llu\n", n, (unsigned long long)(s[n].total >> 10),
               (unsigned long long)(s[n].free >> 10), (unsigned long long)(s[n].lent >> 10),
               (unsigned long long)(borrowed[n] >> 10), (unsigned long long)(s[n].spawned >> 10));
        printf("@atoll {\"event\":\"mem_stats\",\"node\":%u,\"total\":%llu,\"free\":%llu,\"lent\":%llu,"
               "\"borrowed\":%llu,\"base\":%llu,\"end\":%llu,\"batches_lent\":%u,\"batches_held\":%u,"
               "\"batches_ever\":%llu,\"deferred\":%llu,\"workers_max\":%u,\"spawned\":%llu,"
               "\"spawned_ever\":%llu}\n",
               n, (unsigned long long)s[n].total, (unsigned long long)s[n].free, (unsigned long long)s[n].lent,
               (unsigned long long)borrowed[n], (unsigned long long)s[n].base, (unsigned long long)s[n].end,
               s[n].batches_lent, s[n].batches_held, (unsigned long long)s[n].batches_ever,
               (unsigned long long)s[n].deferred, s[n].workers_max, (unsigned long long)s[n].spawned,
               (unsigned long long)s[n].spawned_ever);
    }
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

/* -- the heap's placement (malloc's backing) ------------------------------------------- */

#define HEAP_BLOCKS MEM_QUOTA_ALLOCS
static struct mem_block heap_blocks[HEAP_BLOCKS];
static struct mem_heap_stats heap_st = { .where = MEM_HEAP_OWN };

static errval_t heap_from_own(uint64_t at, uint64_t end, uint64_t *done, errval_t why)
{
    heap_st.fallbacks++;
    heap_st.why = why;
    heap_st.own_bytes += end - at;
    *done = end;
    return vspace_back(at, end - at, MAP_WRITE);
}

/* malloc's backing: the rest of the heap's 2 MiB in one Frame from the
 * service (one call per 2 MiB of heap, not per page), else our own RAM. */
static errval_t heap_backing(uint64_t at, uint64_t end, uint64_t limit, uint64_t *done)
{
    if (heap_st.where == MEM_HEAP_OWN) {
        heap_st.own_bytes += end - at;
        *done = end;
        return vspace_back(at, end - at, MAP_WRITE);
    }
    if (heap_st.blocks == HEAP_BLOCKS)
        return heap_from_own(at, end, done, ERR_QUOTA);
    struct mem_block *b = &heap_blocks[heap_st.blocks];
    errval_t err = mem_alloc(CAP_FRAME, limit - at, 0, heap_st.where, b);
    if ((err == ERR_NO_MEMORY || err == ERR_QUOTA) && heap_st.where != MEM_NEAREST)
        err = mem_alloc(CAP_FRAME, limit - at, 0, MEM_NEAREST, b);   /* preferred, not bound */
    if (err)
        return heap_from_own(at, end, done, err);
    if ((err = vspace_map(at, b->slot, MAP_WRITE))) {
        mem_free(b);
        return heap_from_own(at, end, done, err);
    }
    heap_st.blocks++;
    heap_st.service_bytes += limit - at;
    *done = limit;
    return ERR_OK;
}

errval_t mem_heap_place(uint32_t where)
{
    static bool said;
    errval_t err = ERR_OK;
    if (where != MEM_HEAP_OWN && where != MEM_NEAREST && where != MEM_ANY) {
        sys_core_info(&machine);
        if (where >= machine.nnodes)
            return ERR_NO_SUCH_NODE;
    }
    /* Connect now, not from inside malloc: the heap never grows while it grows. */
    if (where != MEM_HEAP_OWN && !(err = mem_present()))
        err = mem_connect(0);
    if (err) {
        heap_st.why = err;
        if (!said)
            printf("malloc: no memory service (%s): the heap grows from this domain's own RAM\n", err_name(err));
        said = true;
        where = MEM_HEAP_OWN;
    }
    heap_st.where = where;
    malloc_set_backing(heap_backing);
    return err;
}

/* A policy given at spawn (`+mem=WORD`, lib/start.c): nearest (or local),
 * any, own, or a node's number. */
errval_t mem_heap_place_word(const char *w)
{
    uint32_t where = 0;
    if (!strcmp(w, "nearest") || !strcmp(w, "local"))
        where = MEM_NEAREST;
    else if (!strcmp(w, "any"))
        where = MEM_ANY;
    else if (!strcmp(w, "own"))
        where = MEM_HEAP_OWN;
    else if (*w >= '0' && *w <= '9' && strlen(w) <= 3) {
        for (; *w >= '0' && *w <= '9'; w++)
            where = where * 10 + (uint32_t)(*w - '0');
        if (*w)
            return ERR_INVALID_ARG;
    } else {
        return ERR_INVALID_ARG;
    }
    heap_st.from_spawn = true;
    errval_t err = where == MEM_HEAP_OWN ? ERR_OK : monitor_connect();
    return err ? err : mem_heap_place(where);
}

void mem_heap_stats(struct mem_heap_stats *out) { *out = heap_st; }

errval_t mem_heap_block(uint32_t i, struct mem_block *out)
{
    if (i >= heap_st.blocks)
        return ERR_NOT_FOUND;
    *out = heap_blocks[i];
    return ERR_OK;
}

void numa_set_localalloc(void) { numa_set_error(mem_heap_place(MEM_NEAREST)); }

void numa_set_preferred(int node) { numa_set_error(node < 0 ? ERR_NO_SUCH_NODE : mem_heap_place((uint32_t)node)); }
