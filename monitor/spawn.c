/*
 * The domains this monitor starts on its core, and what it tells about its
 * core (MON_PS, MON_MEM, MON_CORE, MON_BUSY, MON_MESH).
 */
#include "monitor.h"

#define DEFAULT_DOMAIN_RAM (4ull << 20)
#define MAX_CHILDREN 64

/* Domains this monitor spawned: the RAM it gave each, and a copy of its
 * dispatcher capability, which disappears when the domain ends. */
struct child {
    capslot_t ram, disp;
    uint64_t id;    /* its domain id: the badge of its messages to us */
    bool used;
    bool system;    /* the name server, the shell: not counted by MON_BUSY */
};
static bool spawning_system;
static struct child children[MAX_CHILDREN];

static bool domain_alive(capslot_t disp)
{
    struct cap_identity id;
    return sys_cap_identify(disp, &id) == ERR_OK && id.type == CAP_DISPATCHER;
}

/* Spawn "program args" on this core with `ram_bytes` of RAM; *disp (if
 * asked) names the child's dispatcher capability, kept by the monitor. */
errval_t spawn_local(const char *cmd, uint64_t ram_bytes, uint64_t *id, capslot_t *disp)
{
    if (!ram_bytes)
        ram_bytes = DEFAULT_DOMAIN_RAM;
    /* Reuse the RAM of a domain that has ended: the kernel took everything
     * derived from it back, so it has no children left. */
    struct child *c = 0;
    for (int i = 0; i < MAX_CHILDREN && !c; i++)
        if (children[i].used && !domain_alive(children[i].disp)) {
            struct cap_identity rid;
            /* Revoke first: a domain that hid its root CNode or deleted its
             * own dispatcher is stopped but not yet taken back. */
            if (sys_cap_identify(children[i].ram, &rid) == ERR_OK && rid.bytes == ram_bytes &&
                sys_cap_revoke(children[i].ram) == ERR_OK)
                c = &children[i];
            else {
                cap_free(children[i].ram);
                slot_free(children[i].disp);
                children[i].used = false;
            }
        }
    for (int i = 0; i < MAX_CHILDREN && !c; i++)
        if (!children[i].used) {
            c = &children[i];
            errval_t err = ram_alloc(ram_bytes, &c->ram);
            if (err)
                return err;
            err = slot_alloc(&c->disp);
            if (err) {
                cap_free(c->ram);
                return err;
            }
            c->used = true;
        }
    if (!c)
        return ERR_TOO_MANY;
    if (disp)
        *disp = c->disp;
    c->system = spawning_system;
    errval_t err = sys_spawn(SLOT_KERNEL, cmd, strlen(cmd), c->ram, c->disp, id);
    c->id = err ? ~0ull : *id;
    return err;
}

errval_t child_endpoint(uint64_t id, capslot_t *ep)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].used && children[i].id == id && domain_alive(children[i].disp)) {
            errval_t err = slot_alloc(ep);
            if (!err && (err = sys_cap_mint(children[i].disp, *ep, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, 0, 0, 0)))
                slot_free(*ep);
            return err;
        }
    return ERR_NOT_FOUND;
}

errval_t spawn_system(const char *cmd, uint64_t ram_bytes, uint64_t *id)
{
    spawning_system = true;
    errval_t err = spawn_local(cmd, ram_bytes, id, 0);
    spawning_system = false;
    return err;
}

static const char *state_name(uint32_t s)
{
    return s == DOMAIN_RUNNABLE ? "runnable" : s == DOMAIN_BLOCKED ? "blocked" : "stopped";
}

/* This core's domains as text, one per line. */
static void list_domains(char *out, size_t size)
{
    size_t len = 0;
    out[0] = 0;
    struct domain_info d;
    for (uint64_t i = 0; sys_domain_info(i, &d) == ERR_OK && len < size - 1; i++)
        len += (size_t)snprintf(out + len, size - len, "%4u %4u  %-10s %8s %4u %8llu %6llu KiB\n", d.core, d.id,
                                d.name, state_name(d.state), d.priority, (unsigned long long)d.cpu_ticks,
                                (unsigned long long)(d.ram_bytes >> 10));
}

static void describe_core(char *out, size_t size)
{
    struct domain_info d;
    unsigned n = 0;
    while (sys_domain_info(n, &d) == ERR_OK)
        n++;
    snprintf(out, size, "core %u: APIC id %u, node %u, %u domains, %llu KiB free RAM\n", machine.core_id,
             machine.apic_id, machine.node, n, (unsigned long long)(ram_free_bytes() >> 10));
}

errval_t serve_info(uint32_t what, char *out, size_t size, uint64_t *value, uint64_t *value2)
{
    out[0] = 0;
    switch (what) {
    case MON_PS:
        list_domains(out, size);
        return ERR_OK;
    case MON_MEM:
        *value = ram_free_bytes();
        *value2 = machine.node;
        return ERR_OK;
    case MON_CORE:
        describe_core(out, size);
        return ERR_OK;
    case MON_BUSY:
        *value = 0;
        for (int i = 0; i < MAX_CHILDREN; i++)
            *value += children[i].used && !children[i].system && domain_alive(children[i].disp);
        return ERR_OK;
    case MON_MESH: {
        size_t n = links_describe(out, size, value);
        captransfer_describe(out + n, size - n);
        return ERR_OK;
    }
    default:
        return ERR_INVALID_ARG;
    }
}
