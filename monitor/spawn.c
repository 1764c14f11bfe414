/*
 * The domains this monitor starts on its core, and what it tells about its
 * core (requests.c serves it: ps, describe, busy, stats).
 */
#include "monitor.h"
#include <atoll/lmpchan.h>
#include <if/monclient_if.h>

#define DEFAULT_DOMAIN_RAM (4ull << 20)
#define MAX_CHILDREN MON_MAX_CHILDREN

/* Domains this monitor spawned: the RAM it gave each, and a copy of its
 * dispatcher capability. When the domain ends (lifetimes.c), its RAM is
 * revoked (which takes back anything the kernel could not: a domain that
 * hid its root CNode) and freed, and the entry is free again. */
struct child {
    capslot_t ram, disp;
    /* RAM lent by the memory service for this domain (spawn_lent): our
     * copy, deleted after `ram` (carved from it) when the domain ends, so
     * that its instance hears the RAM came back; and for RAM lent on this
     * core (no copy crossed, nobody else to tell), the instance and base. */
    capslot_t lent;
    uint64_t lent_from, lent_base;
    capslot_t pool;  /* the memory service's instance: the RAM handed to it (spawn_donate), or 0 */
    uint64_t id;    /* its domain id: the badge of its messages to us */
    bool used;
    bool system;    /* the name server, the shell: not counted as busy, not killed */
    bool service;   /* an instance of a service (the starter's): not counted as busy */
    bool baseline;  /* may ask for the benchmark's broadcast baseline (CAPOPS_BROADCAST) */
    bool mem;       /* an instance of the memory service (servers/mem): may ask for spawn_donate */
};
static bool spawning_system, spawning_service;
static struct child children[MAX_CHILDREN];
static uint64_t spawned, reclaimed;

static bool program_in(const char *cmd, const char *const *names, size_t count)
{
    size_t n = 0;
    while (cmd[n] && cmd[n] != ' ')
        n++;
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == n && !strncmp(cmd, names[i], n))
            return true;
    return false;
}

/* Programs that only the monitors start: a second monitor or name server
 * on a core would fight the first for its resources. */
static bool system_program(const char *cmd)
{
    static const char *const names[] = { "monitor", "names", "shell", "starter" };
    return program_in(cmd, names, ARRAY_SIZE(names));
}

/* Programs that may ask for the `caps` benchmark's broadcast baseline (a
 * revoke sent to every core): any other domain could make every monitor
 * of the machine work for each of its revokes (docs/limits.md). */
static bool baseline_program(const char *cmd)
{
    static const char *const names[] = { "capxfer" };
    return program_in(cmd, names, ARRAY_SIZE(names));
}

/* The memory service's program: its instances get this monitor's spare RAM. */
static bool mem_program(const char *cmd)
{
    static const char *const names[] = { "mem" };
    return program_in(cmd, names, ARRAY_SIZE(names));
}

static void free_ram(capslot_t ram)
{
    if (sys_cap_revoke(ram) == ERR_CAP_REMOTE)
        capops_reclaim(ram);
    else
        cap_free(ram);
}

static void free_child(struct child *c)
{
    /* An instance's lent RAM that comes back as its pool goes is nobody's
     * to hear of (capops_ram_came_back asks spawn_is_mem). */
    c->mem = false;
    /* The pool handed to a memory-service instance: every Frame it carved
     * and gave away (on any core) goes with it. */
    if (c->pool)
        free_ram(c->pool);
    /* Objects of its RAM with copies on other cores (an anchor among the
     * descendants): capops revokes those copies first, then the RAM. RAM
     * lent by the memory service goes the same way, whole, and only then
     * back to its instance: our copy of another core's, with the RAM
     * carved from it; or on the lender's core, its copy itself. */
    if (c->lent)
        capops_reclaim_lent(c->lent, c->ram, 0, 0);
    else if (c->lent_from)
        capops_reclaim_lent(c->ram, 0, c->lent_from, c->lent_base);
    else
        free_ram(c->ram);
    cap_free(c->disp);
    *c = (struct child){ 0 };
    reclaimed++;
}

void children_domain_ended(uint64_t id)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && children[i].id == id) {
            free_child(&children[i]);
            return;
        }
}

/* After lost obituaries: every child whose dispatcher is gone, or that is
 * stopped for good, has ended. */
static bool child_ended(const struct child *c);

void children_rescan(void (*ended)(uint64_t id))
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && child_ended(&children[i]))
            ended(children[i].id);
}

errval_t child_add_span(capslot_t ram, capslot_t disp, uint64_t id)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (!children[i].used) {
            /* Counted as busy as any domain that runs here. */
            children[i] = (struct child){ .ram = ram, .disp = disp, .id = id, .used = true };
            spawned++;
            return ERR_OK;
        }
    return ERR_TOO_MANY;
}

/* A free entry, with room left for every child's RAM to wait in
 * capops_reclaim (copies on other cores to go) when it ends. */
static struct child *child_free_entry(void)
{
    struct child *c = 0;
    uint32_t live = 0;
    for (int i = 0; i < MAX_CHILDREN; i++) {
        live += children[i].used;
        if (!children[i].used && !c)
            c = &children[i];
    }
    return c && live + capops_reclaim_pending() < MAX_CHILDREN ? c : 0;
}

/* The domain from RAM `ram` (ours now: the child's, or freed on error). */
static errval_t spawn_from(struct child *c, const char *cmd, capslot_t ram, uint64_t *id)
{
    c->ram = ram;
    errval_t err = slot_alloc(&c->disp);
    if (!err)
        err = sys_spawn(SLOT_KERNEL, cmd, strlen(cmd), c->ram, c->disp, id);
    if (err) {
        slot_free(c->disp);
        cap_free(c->ram);
        *c = (struct child){ 0 };
        return err;
    }
    c->used = true;
    c->system = spawning_system;
    c->service = spawning_service;
    c->baseline = spawning_system || baseline_program(cmd);
    c->mem = spawning_service && mem_program(cmd);
    c->id = *id;
    spawned++;
    return ERR_OK;
}

/* Spawn "program args" on this core with `ram_bytes` of our RAM; *disp (if
 * asked) names the child's dispatcher capability, kept by the monitor. */
errval_t spawn_local(const char *cmd, uint64_t ram_bytes, uint64_t *id, capslot_t *disp)
{
    if (!ram_bytes)
        ram_bytes = DEFAULT_DOMAIN_RAM;
    if (!spawning_system && system_program(cmd))
        return ERR_NOT_PERMITTED;
    struct child *c = child_free_entry();
    if (!c)
        return ERR_TOO_MANY;
    capslot_t ram;
    errval_t err = ram_alloc(ram_bytes, &ram);
    if (!err)
        err = spawn_from(c, cmd, ram, id);
    if (!err && disp)
        *disp = c->disp;
    return err;
}

/* -- a domain from the memory service's RAM ------------------------------------------ */
/* The spawner asked the service of the core's node for RAM lent to us
 * (mem.if spawn_ram, monlmp ram_lend) and names it by its base. RAM from
 * another core is FOREIGN here: we carve it once, with its owner core's
 * agreement, into one RAM object of this core (capops_retype_own), as a
 * borrowing instance carves a batch, and the domain is made from that.
 * One such spawn at a time: the agreement is a message to another core,
 * and the request is answered when the domain is made. */
/* The RAM's grant from the instance's core may come after the spawn
 * request (another route): waited for this long. */
#define LENT_ARRIVAL_NS 5000000000ull
static struct lent_spawn {
    bool active;
    bool retyping;        /* the owner core was asked to agree */
    struct asker who;
    char cmd[240];
    bool service;
    uint64_t base, deadline;
    capslot_t lent, ram;
} lent_spawn;

/* Lent RAM we will not use (or whose domain could not be made from it)
 * goes back to its instance: our copy of another core's RAM is released to
 * its owner as it goes; RAM lent on this core we say came back ourselves. */
static void lent_give_back(capslot_t lent, uint32_t from_core, uint64_t from, uint64_t base)
{
    cap_free(lent);
    if (from_core == my_core)
        capops_ram_came_back(from, base);
}

static void lent_spawn_answer(errval_t err, uint64_t id)
{
    struct idl_chan ch;
    reply_chan(&ch, &lent_spawn.who);
    monclient_spawn_reply_send(&ch, err, id);
    lent_spawn.active = false;
}

static void lent_spawn_finish(errval_t err)
{
    uint64_t id = 0;
    /* The entry is chosen now: others may have been taken meanwhile. */
    struct child *c = err ? 0 : child_free_entry();
    if (!err && !c) {
        err = ERR_TOO_MANY;
        cap_free(lent_spawn.ram);
    } else if (!err) {
        spawning_service = lent_spawn.service;
        err = spawn_from(c, lent_spawn.cmd, lent_spawn.ram, &id);
        spawning_service = false;
        if (!err)
            c->lent = lent_spawn.lent;
    } else if (lent_spawn.ram != lent_spawn.lent) {
        slot_free(lent_spawn.ram);   /* the retype put nothing there */
    }
    if (err)
        cap_free(lent_spawn.lent);   /* back to the instance */
    lent_spawn_answer(err, id);
}

void spawn_lent_retyped(errval_t err)
{
    if (lent_spawn.active)
        lent_spawn_finish(err);
}

/* The lent RAM, once it is in our mailbox: the domain from it. */
static void lent_spawn_take(void)
{
    capslot_t lent;
    uint32_t from_core;
    uint64_t from, base = lent_spawn.base;
    struct cap_identity id;
    struct child *c = 0;
    errval_t err = capops_take_lent(base, &lent, &from_core, &from);
    if (err == ERR_NOT_FOUND && now_ns() < lent_spawn.deadline)
        return;   /* its grant is still on its way (lent_spawn_arrived) */
    if (err) {
        lent_spawn_answer(err, 0);
        return;
    }
    /* Refused: the RAM goes back to its instance at once (the spawner
     * uses ours, or gives up). */
    if (system_program(lent_spawn.cmd))
        err = ERR_NOT_PERMITTED;
    else if (!(c = child_free_entry()))
        err = ERR_TOO_MANY;
    else
        err = sys_cap_identify(lent, &id);
    if (err) {
        lent_give_back(lent, from_core, from, base);
        lent_spawn_answer(err, 0);
        return;
    }
    lent_spawn.lent = lent;
    if (from_core == my_core) {
        /* Lent on this core: its original is local, the kernel builds from
         * it as it is; the instance is told when the domain ends. */
        uint64_t spawned_id = 0;
        spawning_service = lent_spawn.service;
        err = spawn_from(c, lent_spawn.cmd, lent, &spawned_id);
        spawning_service = false;
        if (!err) {
            c->lent_from = from;
            c->lent_base = base;
        } else {
            capops_ram_came_back(from, base);   /* spawn_from freed our copy */
        }
        lent_spawn_answer(err, spawned_id);
        return;
    }
    if ((err = slot_alloc(&lent_spawn.ram))) {
        lent_spawn.ram = lent;
        lent_spawn_finish(err);
        return;
    }
    lent_spawn.retyping = true;
    struct capreq_args a = { .slot = lent, .type = CAP_RAM, .size = id.bytes, .offset = 0, .count = 1,
                             .first = lent_spawn.ram };
    capops_retype_own(&a);   /* answered by spawn_lent_retyped, perhaps at once */
}

errval_t spawn_lent(const char *cmd, bool service, uint64_t base, const struct asker *who)
{
    if (lent_spawn.active) {
        /* Its RAM goes back now if it is here (else when it has waited
         * LENT_MAIL_WAIT_NS, capops.c): the spawner uses ours. */
        capslot_t lent;
        uint32_t from_core;
        uint64_t from;
        if (!capops_take_lent(base, &lent, &from_core, &from))
            lent_give_back(lent, from_core, from, base);
        return ERR_WOULD_BLOCK;
    }
    lent_spawn = (struct lent_spawn){ .active = true, .who = *who, .service = service, .base = base,
                                 .deadline = now_ns() + LENT_ARRIVAL_NS };
    snprintf(lent_spawn.cmd, sizeof lent_spawn.cmd, "%s", cmd);
    lent_spawn_take();
    return ERR_OK;
}

/* RAM lent to us arrived (capops_on_grant): the spawn that waits for it. */
void spawn_lent_arrived(void)
{
    if (lent_spawn.active && !lent_spawn.retyping)
        lent_spawn_take();
}

/* Now and then: a spawn whose RAM never came ends with ERR_NOT_FOUND. */
void spawn_lent_expire(void)
{
    if (lent_spawn.active && !lent_spawn.retyping && now_ns() >= lent_spawn.deadline)
        lent_spawn_take();
}

bool spawn_is_mem(uint64_t domain)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && children[i].id == domain)
            return children[i].mem;
    return false;
}

/* The RAM this monitor does not keep for itself, handed once to the memory
 * service's instance on this core (docs/memory.md): half of what is free,
 * keeping at least MEM_MONITOR_KEEP for the domains it spawns, in 2 MiB
 * multiples. The monitor keeps the original (taken back when the instance
 * ends, with everything carved from it on any core); *copy is the
 * instance's copy, to be sent. */
#define MEM_MONITOR_KEEP (32ull << 20)
errval_t spawn_donate(uint64_t domain, capslot_t *copy)
{
    struct child *c = 0;
    for (int i = 0; i < MAX_CHILDREN && !c; i++)
        if (children[i].used && children[i].id == domain)
            c = &children[i];
    if (!c || !c->mem)
        return ERR_NOT_PERMITTED;
    if (c->pool)
        return ERR_DUPLICATE;
    uint64_t free = ram_free_bytes(), keep = free / 2 > MEM_MONITOR_KEEP ? free / 2 : MEM_MONITOR_KEEP;
    uint64_t want = free > keep ? (free - keep) & ~((2ull << 20) - 1) : 0;
    errval_t err = ERR_NO_MEMORY;
    while (want >= (2ull << 20) && (err = ram_alloc(want, &c->pool)))
        want = (want / 2) & ~((2ull << 20) - 1);
    if (err) {
        c->pool = 0;
        return err;
    }
    if ((err = slot_alloc(copy)) == ERR_OK && (err = sys_cap_copy(c->pool, *copy)))
        slot_free(*copy);
    if (err) {
        cap_free(c->pool);
        c->pool = 0;
    }
    return err;
}

errval_t kill_local(uint64_t id)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && children[i].id == id) {
            /* The shell and the starter stay; the name server may go, as
             * its monitor restarts it (names_ended). */
            if (children[i].system && children[i].id != names_id)
                return ERR_NOT_PERMITTED;
            return sys_domain_kill(SLOT_KERNEL, children[i].disp);
        }
    return ERR_NOT_FOUND;
}

/* This core's domains, one consistent listing (lib: domain_list): a walk
 * that a domain's end cut short once missed a live one, which then read
 * as ended. More than the kernel lets live on a core at once never fit. */
#define MAX_LISTED 256
static struct domain_info listed[MAX_LISTED];

static errval_t list_all(uint32_t *n)
{
    errval_t err = domain_list(listed, MAX_LISTED, n);
    return err == ERR_TOO_MANY ? ERR_OK : err;   /* the first MAX_LISTED: shown, never searched (below) */
}

static bool child_ended(const struct child *c)
{
    struct cap_identity id;
    uint32_t n = 0;
    if (sys_cap_identify(c->disp, &id) != ERR_OK || id.type != CAP_DISPATCHER)
        return true;
    /* We never take for ended what we could not see whole. */
    if (domain_list(listed, MAX_LISTED, &n))
        return false;
    /* A live domain is runnable or blocked; a stopped one never runs again. */
    for (uint32_t i = 0; i < n; i++)
        if (listed[i].id == c->id)
            return listed[i].state == DOMAIN_STOPPED;
    return true;   /* no longer among the core's domains */
}

bool child_may_broadcast(uint64_t id)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && children[i].id == id)
            return children[i].baseline;
    return false;
}

errval_t child_dispatcher(uint64_t id, capslot_t *disp)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && children[i].id == id && !child_ended(&children[i])) {
            *disp = children[i].disp;
            return ERR_OK;
        }
    return ERR_DOMAIN_ENDED;
}

errval_t child_endpoint(uint64_t id, capslot_t *ep)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && children[i].id == id) {
            errval_t err = slot_alloc(ep);
            if (!err && (err = sys_cap_mint(children[i].disp, *ep, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT,
                                            LMPCHAN_MONITOR_BADGE, 0, 0)))
                slot_free(*ep);
            return err;
        }
    return ERR_NOT_FOUND;
}

errval_t spawn_child(const char *cmd, uint64_t ram_bytes, bool service, uint64_t *id)
{
    spawning_service = service;
    errval_t err = spawn_local(cmd, ram_bytes, id, 0);
    spawning_service = false;
    return err;
}

errval_t spawn_system(const char *cmd, uint64_t ram_bytes, uint64_t *id)
{
    spawning_system = true;
    errval_t err = spawn_local(cmd, ram_bytes, id, 0);
    spawning_system = false;
    return err;
}

/* stats: what this monitor holds, as one JSON object. After every
 * client has ended and a sweep has run, each count is back where it was
 * (tests/test_lifetimes.py holds the monitor to that). */
void describe_stats(char *out, size_t size)
{
    uint32_t clients = 0, nchildren = 0;
    uint64_t served = 0, refused = 0;
    struct conn_stats cs;
    clients_stats(&clients, &served, &refused);
    conns_stats(&cs);
    for (int i = 0; i < MAX_CHILDREN; i++)
        nchildren += children[i].used;
    struct heap *h = malloc_heap();
    snprintf(out, size,
             "{\"core\":%u,\"children\":%u,\"spawned\":%llu,\"reclaimed\":%llu,\"clients\":%u,"
             "\"clients_served\":%llu,\"clients_refused\":%llu,\"conns\":%u,\"conns_owned\":%u,"
             "\"conns_opened\":%llu,\"conns_freed\":%llu,\"services\":%u,\"pending\":%u,"
             "\"slots_free\":%u,\"ram_free\":%llu,\"heap_in_use\":%llu,\"heap_chunks\":%llu,"
             "\"ends_seen\":%llu}",
             my_core, nchildren, (unsigned long long)spawned, (unsigned long long)reclaimed, clients,
             (unsigned long long)served, (unsigned long long)refused, cs.live, cs.owned,
             (unsigned long long)cs.opened, (unsigned long long)cs.freed, services_count(), pending_count(),
             slot_free_count(), (unsigned long long)ram_free_bytes(), (unsigned long long)h->bytes_in_use,
             (unsigned long long)h->chunks_in_use, (unsigned long long)ends_seen());
    /* The capabilities across cores (capops.c), inside the same object. */
    size_t n = strlen(out);
    if (n > 0 && n + 2 < size) {
        out[n - 1] = ',';
        n += capops_describe(out + n, size - n);
        if (n + 1 < size) {
            out[n++] = ',';
            n += span_describe(out + n, size - n);
        }
        if (n + 2 <= size) {
            out[n] = '}';
            out[n + 1] = 0;
        }
    }
}

static const char *state_name(uint32_t s)
{
    return s == DOMAIN_RUNNABLE ? "runnable" : s == DOMAIN_BLOCKED ? "blocked" : "stopped";
}

/* This core's domains as text, one per line (`ps`; the restart service
 * takes a live domain missing from it for ended). */
errval_t list_domains(char *out, size_t size)
{
    size_t len = 0;
    uint32_t n = 0;
    out[0] = 0;
    errval_t err = list_all(&n);
    for (uint32_t i = 0; !err && i < n && len < size - 1; i++) {
        const struct domain_info *d = &listed[i];
        len += (size_t)snprintf(out + len, size - len, "%4u %4u  %-10s %8s %4u %8llu %6llu KiB\n", d->core, d->id,
                                d->name, state_name(d->state), d->priority, (unsigned long long)d->cpu_ticks,
                                (unsigned long long)(d->ram_bytes >> 10));
    }
    return err;
}

void describe_core(char *out, size_t size)
{
    uint32_t n = 0;
    struct domain_info d;
    if (domain_list(listed, MAX_LISTED, &n) == ERR_WOULD_BLOCK)   /* a description, not a decision: */
        for (n = 0; sys_domain_info(n, &d) == ERR_OK; n++)           /* a count taken as it changes */
            ;
    int len = snprintf(out, size, "core %u: APIC id %u, node %u, %u domains, %llu KiB free RAM\n", machine.core_id,
                       machine.apic_id, machine.node, n, (unsigned long long)(ram_free_bytes() >> 10));
    /* The core's timer: how often an idle core was woken (the kernel's idle.c). */
    struct core_info ci;
    if (len > 0 && (size_t)len < size && sys_core_info(&ci) == ERR_OK)
        snprintf(out + len, size - (size_t)len,
                 "@atoll {\"event\":\"core_timer\",\"core\":%u,\"ticks\":%llu,\"timer_irqs\":%llu,"
                 "\"idle_stops\":%llu,\"periodic\":%s}\n", machine.core_id, (unsigned long long)ci.ticks,
                 (unsigned long long)ci.timer_irqs, (unsigned long long)ci.idle_stops, ci.periodic ? "true" : "false");
}

uint64_t busy_children(void)
{
    uint64_t n = 0;
    for (int i = 0; i < MAX_CHILDREN; i++)
        n += children[i].used && !children[i].system && !children[i].service;
    return n;
}
