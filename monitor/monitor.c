/*
 * The monitor: the first domain on every core, holding the core's Kernel
 * capability and its RAM.
 *
 * Core 0's monitor starts the shell and answers its requests (LMP); for a
 * request about another core it asks that core's monitor over their boot
 * channel (protocol.h) and waits for the answer. Every other monitor serves
 * its boot channel: list its domains, spawn a program, report its memory.
 */
#include <atoll/lib.h>
#include "protocol.h"

#define DEFAULT_DOMAIN_RAM (4ull << 20)
#define MAX_CHILDREN 64

/* Domains this monitor spawned: the RAM it gave each, and a copy of its
 * dispatcher capability, which disappears when the domain ends. */
struct child {
    capslot_t ram, disp;
    bool used;
};
static struct child children[MAX_CHILDREN];
static const struct startup_info *si;
static capslot_t last_child_disp;   /* dispatcher copy of the last spawn */
static uint64_t shell_id = ~0ull;   /* core 0: the shell's domain id (its badge) */

static bool domain_alive(capslot_t disp)
{
    struct cap_identity id;
    return sys_cap_identify(disp, &id) == ERR_OK && id.type == CAP_DISPATCHER;
}

/* Spawn "program args" on this core with `ram_bytes` of RAM. */
static errval_t spawn_local(const char *cmd, uint64_t ram_bytes, uint64_t *id)
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
    last_child_disp = c->disp;
    return sys_spawn(SLOT_KERNEL, cmd, strlen(cmd), c->ram, c->disp, id);
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
    struct core_info ci;
    struct domain_info d;
    unsigned n = 0;
    while (sys_domain_info(n, &d) == ERR_OK)
        n++;
    if (sys_core_info(&ci) == ERR_OK)
        snprintf(out, size, "core %u: APIC id %u, node %u, %u domains, %llu KiB free RAM\n", ci.core_id,
                 ci.apic_id, ci.node, n, (unsigned long long)(ram_free_bytes() >> 10));
    else
        snprintf(out, size, "core %u: no information\n", si->core_id);
}

/* Do one request on this core. */
static errval_t serve(uint32_t op, uint64_t arg, const char *text, char *out, size_t size, uint64_t *value,
                      uint64_t *value2)
{
    struct core_info ci;
    out[0] = 0;
    switch (op) {
    case MON_PS:
        list_domains(out, size);
        return ERR_OK;
    case MON_SPAWN:
        return spawn_local(text, arg, value);
    case MON_MEM:
        *value = ram_free_bytes();
        *value2 = sys_core_info(&ci) == ERR_OK ? ci.node : 0;
        return ERR_OK;
    case MON_CORE:
        describe_core(out, size);
        return ERR_OK;
    case MON_BUSY:
        *value = 0;
        for (int i = 0; i < MAX_CHILDREN; i++)
            *value += children[i].used && domain_alive(children[i].disp);
        return ERR_OK;
    default:
        return ERR_INVALID_ARG;
    }
}

/* -- core N > 0: serve the boot channel ------------------------------------ */
static struct boot_channel *map_channel(capslot_t slot)
{
    void *p;
    return vspace_map_frame(slot, MAP_WRITE, &p) == ERR_OK ? p : 0;
}

static struct boot_channel *my_channel;
static uint64_t channel_done;

/* Answer core 0's monitor if it has asked something. */
static void poll_boot_channel(void)
{
    struct boot_channel *bc = my_channel;
    uint64_t seq = __atomic_load_n(&bc->req.seq, __ATOMIC_ACQUIRE);
    if (seq == channel_done)
        return;
    char text[sizeof bc->req.text];
    memcpy(text, bc->req.text, sizeof text);
    text[sizeof text - 1] = 0;
    uint64_t value = 0, value2 = 0;
    errval_t err = serve(bc->req.op, bc->req.arg, text, bc->rep.text, sizeof bc->rep.text, &value, &value2);
    bc->rep.err = err;
    bc->rep.value = value;
    bc->rep.value2 = value2;
    __atomic_store_n(&bc->rep.seq, seq, __ATOMIC_RELEASE);
    channel_done = seq;
}

/* Start "program args" here and make an endpoint to it in peer_ep. */
static capslot_t peer_ep;

static errval_t spawn_peer(const char *cmd, uint64_t *id)
{
    char line[240];
    snprintf(line, sizeof line, "%s", cmd);
    errval_t err = spawn_local(line, 0, id);
    if (err)
        return err;
    err = slot_alloc(&peer_ep);
    if (!err)
        err = sys_cap_mint(last_child_disp, peer_ep, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, *id, 0, 0);
    return err;
}

/* -- core 0: the shell's requests ------------------------------------------ */
static struct boot_channel *channels[512];
static uint64_t channel_seq[512];

static errval_t ask_core(uint32_t core, uint32_t op, uint64_t arg, const char *text, char *out, size_t size,
                         uint64_t *value, uint64_t *value2)
{
    if (core == si->core_id)
        return serve(op, arg, text, out, size, value, value2);
    if (core >= si->ncores || core >= 512)
        return ERR_INVALID_ARG;
    if (!channels[core] && !(channels[core] = map_channel(SLOT_BOOT_CHANNELS + core)))
        return ERR_NOT_FOUND;
    struct boot_channel *bc = channels[core];
    uint64_t seq = ++channel_seq[core];
    bc->req.op = op;
    bc->req.arg = arg;
    snprintf(bc->req.text, sizeof bc->req.text, "%s", text ? text : "");
    __atomic_store_n(&bc->req.seq, seq, __ATOMIC_RELEASE);
    /* Core N's monitor looks at its channel at least once per timer tick. */
    for (unsigned tries = 0; __atomic_load_n(&bc->rep.seq, __ATOMIC_ACQUIRE) != seq; tries++) {
        if (tries > 3000)
            return ERR_TIMEOUT;
        sys_yield();
    }
    snprintf(out, size, "%s", bc->rep.text);
    *value = bc->rep.value;
    *value2 = bc->rep.value2;
    return (errval_t)bc->rep.err;
}

#define MAX_CLIENTS 8
static capslot_t client_ep[MAX_CLIENTS];     /* by badge = domain id */
static char *client_text[MAX_CLIENTS];
static uint64_t client_badge[MAX_CLIENTS];

static int client_of(uint64_t badge)
{
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (client_ep[i] && client_badge[i] == badge)
            return i;
    return -1;
}

static capslot_t recv;

/* Take one message from a client, if there is one (or wait for one). */
static void serve_client(bool block)
{
    for (int once = 1; once; once = 0) {
        struct lmp_msg m;
        errval_t err = sys_lmp_recv(recv, block ? 0 : LMP_RECV_NONBLOCK, &m);
        if (err)
            continue;
        int c = client_of(m.badge);
        uint64_t op = m.w[0];
        if (op == MON_HELLO && m.has_cap && c < 0) {
            for (int i = 0; i < MAX_CLIENTS; i++)
                if (!client_ep[i]) {
                    client_ep[i] = recv;
                    client_badge[i] = m.badge;
                    c = i;
                    break;
                }
            if (c < 0 || slot_alloc(&recv))
                continue;
            sys_lmp_send(client_ep[c], ERR_OK, 0, 0, 0, LMP_NO_CAP);
            continue;
        }
        if (c < 0)
            continue;   /* not a client: ignore, never act on it */
        uint64_t value = 0, value2 = 0;
        if (m.has_cap)   /* a capability nobody asked for: drop it */
            sys_cap_delete(recv);
        if (op == MON_SHARE && !client_text[c]) {
            /* The page is ours, the client gets a copy: a client deleting
             * its copy cannot pull the page from under us. */
            capslot_t frame, copy;
            void *p = 0;
            err = frame_alloc(4096, &frame);
            if (!err)
                err = vspace_map_frame(frame, MAP_WRITE, &p);
            if (!err)
                err = slot_alloc(&copy);
            if (!err)
                err = sys_cap_copy(frame, copy);
            if (!err)
                client_text[c] = p;
            sys_lmp_send(client_ep[c], err, 0, 0, 0, err ? LMP_NO_CAP : copy | LMP_SEND_MOVE);
            if (!err)
                slot_free(copy);
            continue;
        }
        /* The machine and the serial line are the shell's alone. */
        if ((op == MON_POWEROFF || op == MON_IOCAP) && m.badge != shell_id) {
            sys_lmp_send(client_ep[c], ERR_CAP_RIGHTS, 0, 0, 0, LMP_NO_CAP);
            continue;
        }
        if (op == MON_IOCAP) {
            capslot_t io;
            err = slot_alloc(&io);
            if (!err)
                err = sys_cap_mint(SLOT_IO, io, CAP_RIGHTS_ALL, 0, 0x3f8, 8);
            sys_lmp_send(client_ep[c], err, 0, 0, 0, err ? LMP_NO_CAP : io | LMP_SEND_MOVE);
            if (!err)
                slot_free(io);
            continue;
        }
        if (op == MON_POWEROFF) {
            stdout_flush();
            err = sys_poweroff(SLOT_KERNEL, m.w[1]);
            sys_lmp_send(client_ep[c], err, 0, 0, 0, LMP_NO_CAP);
            continue;
        }
        if (op == MON_SPAWN_PEER && client_text[c]) {
            err = spawn_peer(client_text[c], &value);
            if (err)
                sys_lmp_send(client_ep[c], err, 0, 0, 0, LMP_NO_CAP);
            else
                sys_lmp_send(client_ep[c], ERR_OK, value, 0, 0, peer_ep | LMP_SEND_MOVE);
            slot_free(peer_ep);
            continue;
        }
        char *text = client_text[c];
        if (!text) {
            sys_lmp_send(client_ep[c], ERR_INVALID_ARG, 0, 0, 0, LMP_NO_CAP);
            continue;
        }
        char arg_text[240];
        snprintf(arg_text, sizeof arg_text, "%s", text);
        err = ask_core((uint32_t)m.w[1], (uint32_t)op, m.w[2], arg_text, text, 4096, &value, &value2);
        sys_lmp_send(client_ep[c], err, value, value2, 0, LMP_NO_CAP);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    si = startup();
    struct lmp_msg none;
    struct cap_identity ram;
    /* Name the receive slot before any client can send a capability. */
    if (slot_alloc(&recv) || sys_lmp_recv(recv, LMP_RECV_NONBLOCK, &none) != ERR_WOULD_BLOCK)
        return 1;
    printf("monitor: core %u up, %llu KiB of RAM\n", si->core_id,
           sys_cap_identify(SLOT_RAM, &ram) ? 0ull : (unsigned long long)(ram.bytes >> 10));
    if (si->core_id == 0) {
        uint64_t id;
        errval_t err = spawn_local("shell", 0, &id);
        if (!err)
            shell_id = id;
        if (err)
            printf("monitor: cannot start the shell: %s\n", err_name(err));
        for (;;)
            serve_client(true);   /* nothing to poll: sleep in receive */
    }
    my_channel = map_channel(SLOT_BOOT_CHANNELS);
    if (!my_channel)
        printf("monitor on core %u: no boot channel\n", si->core_id);
    for (;;) {
        if (my_channel)
            poll_boot_channel();
        serve_client(false);
        sys_yield();
    }
}
