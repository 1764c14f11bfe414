/*
 * xattack: what a malicious domain tries against its monitor and the name
 * server. One attack per run; each prints one event
 *
 *   @atoll {"event":"xattack","core":C,"attack":"...","ok":true|false,...}
 *
 * where "ok" means the attack was refused and the target still serves.
 * Nothing here waits forever: every request to the monitor has a timeout,
 * so a monitor that stops answering shows as ERR_TIMEOUT.
 *
 *   xattack text          an unterminated text page with MON_SPAWN (local
 *                         and remote) and MON_SPAWN_PEER
 *   xattack hello         MON_HELLO with an endpoint to the monitor itself
 *                         (the monitor ignores it: it makes its own),
 *                         then with a Frame, then a proper registration
 *   xattack connect N     N MON_CONNECTs to a service that does not exist
 *                         (here and on another core), then requests that
 *                         need the monitor's slots
 *   xattack nscorrupt     scribble on our half of a name-server channel
 *   xattack nsflood       requests to the name server, replies never read
 *   xattack serve         MON_SERVE until the monitor says no
 *   xattack dispatchers   retype our RAM into Dispatcher objects until the
 *                         kernel says no, then hold them for 2 s
 *   xattack zombies N     N times: spawn `xattack zombie exit|fault` here and
 *                         wait until it is gone (each hides its root CNode)
 *   xattack zombie exit|fault   move our root CNode out of slot 1, then end
 *   xattack conns N       N connections to the name server, each dropped
 *                         without hanging up (a careless client)
 *   xattack clients N     N domains here that each become a client of our
 *                         monitor and stay for 3 s (`xattack idle`)
 *   xattack idle          become a client, report, stay 3 s
 *   xattack pagekeep      hand a copy of our text page to a peer domain
 *                         (`xattack pagespy`), then end
 *   xattack pagespy       receive that copy, watch it for 5 s for what the
 *                         next client writes
 *   xattack victim        a client that writes SECRET into its text page
 *   xattack benchcross P  three URPC benchmarks from here to core P
 *   xattack nsregister    register a name for a service that is not ours
 *   xattack kill C ID     ask our monitor to end domain ID on core C
 *   xattack spin          run forever (for `kill`)
 */
#include <atoll/lib.h>
#include <if/nameservice_if.h>
#include "../../monitor/client.h"

static uint32_t my_core, ncores;
static char *text;
static capslot_t text_slot;   /* our copy of the monitor's text page */

static uint64_t now_ms(void) { return urpc_os_now_ns() / 1000000; }

/* A request to our monitor that never waits more than `ms`: send, then
 * poll for the reply. ERR_TIMEOUT if none came. */
static errval_t mcall(uint64_t op, uint64_t w1, uint64_t w2, uint64_t w3, capslot_t recv, struct lmp_msg *m,
                      uint64_t ms)
{
    uint64_t t0 = now_ms();
    errval_t err;
    for (;;) {
        err = sys_lmp_send(SLOT_MONITOR_EP, op, w1, w2, w3, LMP_NO_CAP);
        if (err != ERR_WOULD_BLOCK)
            break;
        if (now_ms() - t0 > ms)
            return ERR_TIMEOUT;
        sys_yield();
    }
    if (err)
        return err;
    for (;;) {
        err = sys_lmp_recv(recv ? recv : LMP_NO_CAP, LMP_RECV_NONBLOCK, m);
        if (err != ERR_WOULD_BLOCK)
            return err ? err : (errval_t)m->w[0];
        if (now_ms() - t0 > ms)
            return ERR_TIMEOUT;
        sys_yield();
    }
}

static void pause_ms(uint64_t ms)
{
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < ms)
        sys_yield();
}

static void report(const char *attack, bool ok, const char *fmt, ...)
{
    char extra[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(extra, sizeof extra, fmt, ap);
    va_end(ap);
    printf("@atoll {\"event\":\"xattack\",\"core\":%u,\"attack\":\"%s\",\"ok\":%s%s%s}\n", my_core, attack,
           ok ? "true" : "false", extra[0] ? "," : "", extra);
    stdout_flush();
}

/* Register the usual way, but with timeouts. */
static errval_t hello(void)
{
    capslot_t self, frame;
    struct lmp_msg m;
    errval_t err = slot_alloc(&self);
    if (!err)
        err = sys_cap_mint(SLOT_DISPATCHER, self, CAP_RIGHT_WRITE | CAP_RIGHT_GRANT, 0, 0, 0);
    uint64_t t0 = now_ms();
    while (!err && (err = sys_lmp_send(SLOT_MONITOR_EP, MON_HELLO, 0, 0, 0, self)) == ERR_WOULD_BLOCK) {
        if (now_ms() - t0 > 3000)
            return ERR_TIMEOUT;
        sys_yield();
    }
    for (; !err;) {
        err = sys_lmp_recv(LMP_NO_CAP, LMP_RECV_NONBLOCK, &m);
        if (err != ERR_WOULD_BLOCK) {
            err = err ? err : (errval_t)m.w[0];
            break;
        }
        err = now_ms() - t0 > 3000 ? ERR_TIMEOUT : ERR_OK;
        sys_yield();
    }
    if (!err)
        err = slot_alloc(&frame);
    if (!err)
        err = mcall(MON_SHARE, 0, 0, 0, frame, &m, 3000);
    if (!err && !m.has_cap)
        err = ERR_CAP_EMPTY;
    if (!err)
        err = vspace_map_frame(frame, MAP_WRITE, (void **)&text);
    if (!err)
        text_slot = frame;
    return err;
}

/* Ticks the monitor of this core has run so far. */
static uint64_t monitor_ticks(void)
{
    struct domain_info d;
    for (uint64_t i = 0; sys_domain_info(i, &d) == ERR_OK; i++)
        if (d.id == 1)
            return d.cpu_ticks;
    return 0;
}

static int attack_text(void)
{
    errval_t err = hello();
    if (err) {
        report("text", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    struct lmp_msg m;
    capslot_t recv;
    memset(text, 'A', 4096);   /* no NUL anywhere on the page */
    errval_t local = mcall(MON_SPAWN, my_core, 0, 0, 0, &m, 5000);
    memset(text, 'A', 4096);
    errval_t remote = mcall(MON_SPAWN, (my_core + 1) % ncores, 0, 0, 0, &m, 5000);
    memset(text, 'A', 4096);
    errval_t peer = slot_alloc(&recv);
    if (!peer)
        peer = mcall(MON_SPAWN_PEER, 0, 0, 0, recv, &m, 5000);
    errval_t mem = mcall(MON_MEM, my_core, 0, 0, 0, &m, 5000);
    bool ok = local && local != ERR_TIMEOUT && remote && remote != ERR_TIMEOUT && peer && peer != ERR_TIMEOUT &&
              mem == ERR_OK;
    report("text", ok, "\"spawn\":\"%s\",\"spawn_remote\":\"%s\",\"spawn_peer\":\"%s\",\"mem\":\"%s\"",
           err_name(local), err_name(remote), err_name(peer), err_name(mem));
    return ok ? 0 : 1;
}

static int attack_hello(void)
{
    capslot_t mon, frame;
    errval_t err = slot_alloc(&mon);
    if (!err)
        err = sys_cap_copy(SLOT_MONITOR_EP, mon);
    if (!err)
        err = frame_alloc(4096, &frame);
    if (err) {
        report("hello", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    /* Replies to us would go to the monitor itself. */
    uint64_t t0 = now_ms();
    while ((err = sys_lmp_send(SLOT_MONITOR_EP, MON_HELLO, 0, 0, 0, mon | LMP_SEND_MOVE)) == ERR_WOULD_BLOCK &&
           now_ms() - t0 < 3000)
        sys_yield();
    errval_t sent_self = err;
    pause_ms(300);
    uint64_t ticks0 = monitor_ticks(), t1 = now_ms();
    pause_ms(1000);
    uint64_t busy = monitor_ticks() - ticks0, took = now_ms() - t1;
    /* A capability that is no endpoint at all. */
    t0 = now_ms();
    while ((err = sys_lmp_send(SLOT_MONITOR_EP, MON_HELLO, 0, 0, 0, frame | LMP_SEND_MOVE)) == ERR_WOULD_BLOCK &&
           now_ms() - t0 < 3000)
        sys_yield();
    errval_t sent_frame = err;
    pause_ms(100);
    /* The monitor makes its own endpoint to us whatever we send, so the
     * bogus HELLOs registered us: take the answers they got (and those
     * the full buffer made the monitor drop), then the proper way. */
    struct lmp_msg stale;
    for (int i = 0; i < 50; i++) {
        while (sys_lmp_recv(LMP_NO_CAP, LMP_RECV_NONBLOCK, &stale) == ERR_OK)
            ;
        sys_yield();
    }
    errval_t reg = hello();
    struct lmp_msg m;
    errval_t mem = reg ? reg : mcall(MON_MEM, my_core, 0, 0, 0, &m, 3000);
    bool ok = reg == ERR_OK && mem == ERR_OK && busy * 1000 < took * 50 / 2;   /* monitor mostly idle */
    report("hello", ok,
           "\"sent_self\":\"%s\",\"sent_frame\":\"%s\",\"register\":\"%s\",\"mem\":\"%s\","
           "\"monitor_ticks\":%llu,\"ms\":%llu",
           err_name(sent_self), err_name(sent_frame), err_name(reg), err_name(mem), (unsigned long long)busy,
           (unsigned long long)took);
    return ok ? 0 : 1;
}

static int attack_connect(uint32_t n)
{
    errval_t err = hello();
    if (err) {
        report("connect", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    struct lmp_msg m;
    uint32_t not_found = 0, other = 0;
    errval_t first_other = ERR_OK;
    uint32_t far = (my_core + 1) % ncores;
    for (uint32_t i = 0; i < n; i++) {
        /* Service 60 of domain 9999 exists nowhere; one in eight asks another core. */
        uint64_t service = SERVICE_ID(i % 8 == 7 ? far : my_core, 9999, 60);
        err = mcall(MON_CONNECT, service, 0, 0, 0, &m, 5000);
        if (err == ERR_NOT_FOUND)
            not_found++;
        else if (!other++)
            first_other = err;
    }
    /* Requests that need slots in the monitor. */
    capslot_t recv;
    errval_t notify = slot_alloc(&recv);
    if (!notify)
        notify = mcall(MON_NOTIFY_CAP, far, 0, 0, recv, &m, 5000);
    if (!notify && !m.has_cap)
        notify = ERR_CAP_EMPTY;
    errval_t share = slot_alloc(&recv);
    if (!share)
        share = mcall(MON_SHARE, 0, 0, 0, recv, &m, 5000);
    bool ok = not_found == n && notify == ERR_OK && share == ERR_OK;
    report("connect", ok, "\"tries\":%u,\"not_found\":%u,\"other\":%u,\"first_other\":\"%s\",\"notify\":\"%s\","
           "\"share\":\"%s\"",
           n, not_found, other, err_name(first_other), err_name(notify), err_name(share));
    return ok ? 0 : 1;
}

/* A fresh channel to the name server, and how long one lookup takes on it. */
static errval_t ns_lookup_ms(const char *name, uint64_t *ms, errval_t *reply_err)
{
    static struct service_chan sc2;
    static uint8_t replybuf[nameservice_size_max];
    const char *iface;
    uint64_t service, t0 = now_ms();
    errval_t err = names_connect(&sc2);
    if (!err)
        err = nameservice_lookup_rpc(&sc2.idl, name, reply_err, &iface, &service, replybuf, sizeof replybuf);
    *ms = now_ms() - t0;
    return err;
}

static int attack_nscorrupt(void)
{
    static struct service_chan sc;
    errval_t err = hello();
    if (!err)
        err = names_connect(&sc);
    if (err) {
        report("nscorrupt", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    /* A header whose sequence number is neither the next one nor last lap's. */
    __atomic_store_n(&sc.ch.tx[0].header, (uint64_t)0xdead << URPC_HDR_SEQ_SHIFT, __ATOMIC_RELEASE);
    sys_notify(sc.ch.wake_arg);
    pause_ms(2000);
    uint64_t ms;
    errval_t reply_err = ERR_OK;
    err = ns_lookup_ms("no.such.name", &ms, &reply_err);
    bool ok = !err && reply_err == ERR_NOT_FOUND;
    report("nscorrupt", ok, "\"lookup\":\"%s\",\"reply\":\"%s\",\"ms\":%llu", err_name(err), err_name(reply_err),
           (unsigned long long)ms);
    return ok ? 0 : 1;
}

static int attack_nsflood(void)
{
    static struct service_chan sc;
    errval_t err = hello();
    if (!err)
        err = names_connect(&sc);
    if (err) {
        report("nsflood", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    /* Requests as fast as the ring takes them, for a second; no reply read. */
    uint32_t sent = 0;
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < 1000) {
        uint8_t buf[nameservice_lookup_call_size_max];
        size_t len;
        /* Our library learns the server's acks only from replies we take:
         * peek at the reply headers instead, never taking a reply. */
        uint32_t best_seq = 0;
        uint16_t ack16 = 0;
        for (uint32_t i = 0; i < sc.ch.nslots; i++) {
            uint64_t h = __atomic_load_n(&sc.ch.rx[i].header, __ATOMIC_ACQUIRE);
            if ((uint32_t)(h >> URPC_HDR_SEQ_SHIFT) > best_seq) {
                best_seq = (uint32_t)(h >> URPC_HDR_SEQ_SHIFT);
                ack16 = (uint16_t)(h >> URPC_HDR_ACK_SHIFT);
            }
        }
        uint64_t acked = (sc.ch.acked & ~0xffffull) | ack16;
        if (acked > sc.ch.acked && acked <= sc.ch.sent)
            sc.ch.acked = acked;
        err = nameservice_lookup_call_encode(buf, sizeof buf, &len, "x");
        if (!err)
            err = urpc_send(&sc.ch, buf, len, URPC_NONBLOCK);
        if (!err)
            sent++;
        else if (err != ERR_WOULD_BLOCK)
            break;
        sys_yield();
    }
    uint64_t ms;
    errval_t reply_err = ERR_OK;
    errval_t look = ns_lookup_ms("no.such.name", &ms, &reply_err);
    bool ok = !look && reply_err == ERR_NOT_FOUND && ms < 3000;
    report("nsflood", ok, "\"sent\":%u,\"lookup\":\"%s\",\"reply\":\"%s\",\"ms\":%llu", sent, err_name(look),
           err_name(reply_err), (unsigned long long)ms);
    return ok ? 0 : 1;
}

static int attack_serve(void)
{
    errval_t err = hello();
    if (err) {
        report("serve", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    struct lmp_msg m;
    uint32_t got = 0;
    while ((err = mcall(MON_SERVE, 0, 0, 0, 0, &m, 3000)) == ERR_OK && got < 1000)
        got++;
    bool ok = got < 64;
    report("serve", ok, "\"services\":%u,\"then\":\"%s\"", got, err_name(err));
    return ok ? 0 : 1;
}

/* -- kernel objects a domain may make for itself ----------------------------------- */
static int attack_dispatchers(void)
{
    uint32_t made = 0;
    errval_t err = ERR_OK;
    while (made < 1000) {
        capslot_t d;
        err = ram_retype(CAP_DISPATCHER, 0, &d);
        if (err)
            break;
        made++;
    }
    uint32_t domains = 0;
    struct domain_info info;
    bool inert_listed = false;
    for (uint64_t i = 0; sys_domain_info(i, &info) == ERR_OK; i++, domains++)
        inert_listed |= !info.id;
    bool ok = made == 16 && err == ERR_TOO_MANY && !inert_listed;
    report("dispatchers", ok, "\"made\":%u,\"then\":\"%s\",\"domains_listed\":%u", made, err_name(err), domains);
    pause_ms(2000);   /* hold them while others look at this core */
    return ok ? 0 : 1;
}

/* -- domains that end without their root CNode in slot 1 ---------------------------- */
static int zombie(const char *how)
{
    capslot_t s;
    if (slot_alloc(&s) || sys_cap_move(SLOT_ROOT_CNODE, s))
        return 1;
    if (!strcmp(how, "fault"))
        __asm__ volatile("movl $1, 8" ::: "memory");   /* a write to an unmapped page */
    return 0;
}

/* Until our monitor counts no child but us (ms at most): true if so. */
static bool wait_alone(uint64_t ms)
{
    struct lmp_msg m;
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < ms) {
        if (mcall(MON_BUSY, my_core, 0, 0, 0, &m, 3000) == ERR_OK && m.w[1] <= 1)
            return true;
        pause_ms(20);
    }
    return false;
}

static errval_t spawn_here(const char *cmd)
{
    struct lmp_msg m;
    snprintf(text, 4096, "%s", cmd);
    return mcall(MON_SPAWN, my_core, 0, 0, 0, &m, 5000);
}

static int attack_zombies(uint32_t n)
{
    errval_t err = hello();
    uint32_t spawned = 0, gone = 0;
    errval_t first_err = ERR_OK;
    for (uint32_t i = 0; !err && i < n; i++) {
        errval_t e = spawn_here(i % 2 ? "xattack zombie fault" : "xattack zombie exit");
        if (e) {
            first_err = first_err ? first_err : e;
            continue;
        }
        spawned++;
        gone += wait_alone(5000);
    }
    bool ok = !err && spawned == n && gone == n;
    report("zombies", ok, "\"spawned\":%u,\"gone\":%u,\"error\":\"%s\"", spawned, gone,
           err_name(err ? err : first_err));
    return ok ? 0 : 1;
}

/* -- connections a careless client drops ---------------------------------------------- */
static int attack_conns(uint32_t n)
{
    errval_t err = hello();
    uint32_t made = 0, quota = 0, other = 0;
    errval_t first_other = ERR_OK;
    uint64_t t0 = now_ms();
    for (uint32_t i = 0; !err && made < n && now_ms() - t0 < 600000; i++) {
        capslot_t frame;
        struct lmp_msg m;
        errval_t e = slot_alloc(&frame);
        if (!e)
            e = mcall(MON_CONNECT, NAMES_SERVICE, 0, 0, frame, &m, 10000);
        if (!e && !m.has_cap)
            e = ERR_CAP_EMPTY;
        if (!e) {
            made++;
            cap_free(frame);   /* dropped: no hang-up, no word to anyone */
            continue;
        }
        slot_free(frame);
        if (e == ERR_QUOTA || e == ERR_WOULD_BLOCK) {   /* our own limit, or a full accept queue */
            quota++;
            pause_ms(20);
            continue;
        }
        if (!other++)
            first_other = e;
        if (other > 20)
            break;
    }
    bool ok = !err && made == n && other == 0;
    report("conns", ok, "\"made\":%u,\"quota\":%u,\"other\":%u,\"first_other\":\"%s\"", made, quota, other,
           err_name(err ? err : first_other));
    return ok ? 0 : 1;
}

/* -- many live clients ------------------------------------------------------------------ */
static int attack_clients(uint32_t n)
{
    errval_t err = hello();
    uint32_t spawned = 0;
    for (uint32_t i = 0; !err && i < n; i++)
        spawned += spawn_here("xattack idle") == ERR_OK;
    report("clients", !err && spawned == n, "\"spawned\":%u", spawned);
    return 0;
}

static int idle_client(void)
{
    errval_t err = hello();
    struct lmp_msg m;
    if (!err)
        err = mcall(MON_MEM, my_core, 0, 0, 0, &m, 5000);
    report("idle", err == ERR_OK, "\"domain\":%u,\"error\":\"%s\"", startup()->domain_id, err_name(err));
    pause_ms(3000);
    return 0;
}

/* -- a text page that outlives its client ------------------------------------------------ */
static int attack_pagekeep(void)
{
    capslot_t spy, copy = 0;
    struct lmp_msg m;
    errval_t err = hello();
    if (!err)
        err = slot_alloc(&spy);
    if (!err) {
        snprintf(text, 4096, "xattack pagespy");
        err = mcall(MON_SPAWN_PEER, 0, 0, 0, spy, &m, 5000);
    }
    /* Our copy of the page itself moves to the spy (a copy of it would die
     * with ours): it outlives us, a direct child of the monitor's page. */
    snprintf(text, 4096, "OLD-CLIENT-TEXT");
    (void)copy;
    uint64_t t0 = now_ms();
    while (!err && (err = sys_lmp_send(spy, 0x5e, 0, 0, 0, text_slot | LMP_SEND_MOVE)) == ERR_WOULD_BLOCK &&
           now_ms() - t0 < 3000)
        sys_yield();
    report("pagekeep", !err, "\"error\":\"%s\"", err_name(err));
    return 0;
}

static int page_spy(void)
{
    capslot_t got;
    struct lmp_msg m;
    errval_t err = slot_alloc(&got);
    if (!err && sys_lmp_recv(got, LMP_RECV_NONBLOCK, &m) == ERR_OK)
        err = ERR_INVALID_ARG;   /* something came before we named the slot */
    uint64_t t0 = now_ms();
    while (!err && (err = sys_lmp_recv(got, LMP_RECV_NONBLOCK, &m)) == ERR_WOULD_BLOCK && now_ms() - t0 < 5000)
        err = ERR_OK, sys_yield();
    char *page = 0;
    bool saw_secret = false, copy_gone = false;
    if (!err && !m.has_cap)
        err = ERR_CAP_EMPTY;
    if (!err && (err = vspace_map_frame(got, 0, (void **)&page)) == ERR_CAP_EMPTY) {
        copy_gone = true;   /* revoked with its client before we could even map it */
        err = ERR_OK;
    }
    t0 = now_ms();
    while (!err && !copy_gone && now_ms() - t0 < 5000 && !saw_secret) {
        struct cap_identity id;
        if (sys_cap_identify(got, &id) != ERR_OK || id.type != CAP_FRAME) {
            copy_gone = true;   /* revoked with its client: nothing to read any more */
            break;
        }
        saw_secret = !strncmp(page, "SECRET", 6);
        pause_ms(50);
    }
    report("pagespy", !err && !saw_secret, "\"saw_secret\":%s,\"copy_gone\":%s,\"error\":\"%s\"",
           saw_secret ? "true" : "false", copy_gone ? "true" : "false", err_name(err));
    return 0;
}

static int victim(void)
{
    struct lmp_msg m;
    errval_t err = hello();
    if (!err) {
        snprintf(text, 4096, "SECRET of domain %u", startup()->domain_id);
        err = mcall(MON_MEM, my_core, 0, 0, 0, &m, 5000);
    }
    report("victim", !err, "\"error\":\"%s\"", err_name(err));
    pause_ms(3000);
    snprintf(text, 4096, "SECRET again");
    return 0;
}

/* -- benchmarks that cross ---------------------------------------------------------------- */
static int bench_cross(uint32_t peer)
{
    errval_t err = hello(), e[3] = { ERR_OK, ERR_OK, ERR_OK };
    struct lmp_msg m;
    for (int i = 0; !err && i < 3; i++)
        e[i] = mcall(MON_BENCH, my_core, peer, 50, 0, &m, 180000);
    bool ok = !err && !e[0] && !e[1] && !e[2];
    report("benchcross", ok, "\"peer\":%u,\"runs\":[\"%s\",\"%s\",\"%s\"]", peer, err_name(e[0]),
           err_name(e[1]), err_name(e[2]));
    return ok ? 0 : 1;
}

/* -- names for services that are not ours --------------------------------------------------- */
static int ns_register_other(void)
{
    static struct service_chan sc;
    errval_t err = hello(), theirs = ERR_OK, fake = ERR_OK, mine = ERR_OK;
    uint64_t own = 0;
    struct lmp_msg m;
    if (!err)
        err = names_connect(&sc);
    if (!err && !(err = mcall(MON_SERVE, 0, 0, 0, 0, &m, 3000)))
        own = m.w[1];
    if (!err) {
        /* Another domain's service on this core (the monitor's own id 1), a
         * made-up one on another core, then ours. */
        nameservice_register_rpc(&sc.idl, "x.theirs", "echo", SERVICE_ID(my_core, 1, 1), &theirs);
        nameservice_register_rpc(&sc.idl, "x.fake", "echo", SERVICE_ID((my_core + 1) % ncores, 7, 3), &fake);
        nameservice_register_rpc(&sc.idl, "x.mine", "echo", own, &mine);
    }
    bool ok = !err && theirs == ERR_NOT_PERMITTED && fake == ERR_NOT_PERMITTED && mine == ERR_OK;
    report("nsregister", ok, "\"theirs\":\"%s\",\"fake\":\"%s\",\"mine\":\"%s\",\"error\":\"%s\"",
           err_name(theirs), err_name(fake), err_name(mine), err_name(err));
    return ok ? 0 : 1;
}

static int attack_kill(uint32_t core, uint32_t id)
{
    struct lmp_msg m;
    errval_t err = hello(), kill = ERR_OK;
    if (!err)
        kill = mcall(MON_KILL, core, id, 0, 0, &m, 5000);
    bool ok = !err && kill == ERR_NOT_PERMITTED;
    report("kill", ok, "\"kill\":\"%s\",\"error\":\"%s\"", err_name(kill), err_name(err));
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct core_info info;
    my_core = startup()->core_id;
    ncores = sys_core_info(&info) == ERR_OK ? info.ncores : 1;
    const char *a = argc >= 2 ? argv[1] : "";
    if (!strcmp(a, "text"))
        return attack_text();
    if (!strcmp(a, "hello"))
        return attack_hello();
    if (!strcmp(a, "connect"))
        return attack_connect(argc >= 3 ? arg_number(argv[2], 4000) : 4000);
    if (!strcmp(a, "nscorrupt"))
        return attack_nscorrupt();
    if (!strcmp(a, "nsflood"))
        return attack_nsflood();
    if (!strcmp(a, "serve"))
        return attack_serve();
    if (!strcmp(a, "dispatchers"))
        return attack_dispatchers();
    if (!strcmp(a, "zombies"))
        return attack_zombies(argc >= 3 ? arg_number(argv[2], 70) : 70);
    if (!strcmp(a, "zombie"))
        return zombie(argc >= 3 ? argv[2] : "exit");
    if (!strcmp(a, "conns"))
        return attack_conns(argc >= 3 ? arg_number(argv[2], 3500) : 3500);
    if (!strcmp(a, "clients"))
        return attack_clients(argc >= 3 ? arg_number(argv[2], 40) : 40);
    if (!strcmp(a, "idle"))
        return idle_client();
    if (!strcmp(a, "pagekeep"))
        return attack_pagekeep();
    if (!strcmp(a, "pagespy"))
        return page_spy();
    if (!strcmp(a, "victim"))
        return victim();
    if (!strcmp(a, "benchcross") && argc >= 3)
        return bench_cross(arg_number(argv[2], 0) % ncores);
    if (!strcmp(a, "nsregister"))
        return ns_register_other();
    if (!strcmp(a, "kill") && argc >= 4)
        return attack_kill(arg_number(argv[2], 0), arg_number(argv[3], 1));
    if (!strcmp(a, "spin"))
        for (;;)
            __asm__ volatile("pause");
    printf("usage: xattack text|hello|connect [N]|nscorrupt|nsflood|serve|dispatchers|zombies [N]|conns [N]|"
           "clients [N]|pagekeep|victim|benchcross CORE|nsregister|kill CORE ID|spin\n");
    return 2;
}
