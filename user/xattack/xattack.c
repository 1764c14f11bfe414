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
 *   xattack lmpjunk       local messages the monitor must refuse: bad
 *                         fragment headers, a message cut short, a capability
 *                         on a later fragment, unknown types, a spawn_peer
 *                         whose string runs past its bound
 *   xattack hello         a hello carrying an endpoint to the monitor itself
 *                         (the monitor ignores it: it makes its own), then
 *                         one carrying a Frame, then a proper one
 *   xattack connect N     N connects to a service that does not exist (here
 *                         and on another core), then requests that need the
 *                         monitor's slots
 *   xattack nscorrupt     scribble on our half of a name-server channel
 *   xattack nsflood       requests to the name server, replies never read
 *   xattack serve         serve until the monitor says no
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
 *   xattack pagekeep      hand our request channel's frame to a peer domain
 *                         (`xattack pagespy`), then end
 *   xattack pagespy       receive it, watch it for 5 s for what the next
 *                         client of our monitor writes
 *   xattack victim        a client that sends SECRET in a request
 *   xattack nsregister    register a name for a service that is not ours
 *   xattack lateaccept C  accept a connection only after its client (on
 *                         core C: `xattack oneshot`, which sends one message
 *                         and ends) is gone: the message must still arrive
 *   xattack kill C ID     ask our monitor to end domain ID on core C
 *   xattack broadcast     revoke our own RAM with CAPOPS_BROADCAST (the caps
 *                         benchmark's baseline: every monitor asked):
 *                         refused, the plain revoke works
 *   xattack spin          run forever (for `kill`)
 *   xattack pslist C S R MS   S domains on core C that sleep MS ms (`xattack
 *                         sleep MS`), then R rounds of: two domains there
 *                         that end at once (`xattack quick`) and a `ps` of
 *                         core C, each listing checked for every sleeper and
 *                         the monitor (a walk that a domain's end cut short
 *                         once missed a live domain: the restart service
 *                         then started a second instance of a live service)
 */
#include <atoll/lib.h>
#include <atoll/lmpchan.h>
#include <atoll/monitor_client.h>
#include <if/monclient_if.h>
#include <if/monlmp_if.h>
#include <if/nameservice_if.h>

#define TIMEOUT_NS 5000000000ull   /* every request to the monitor gives up after 5 s */

static uint32_t my_core, ncores;

static uint64_t now_ms(void) { return urpc_os_now_ns() / 1000000; }

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

/* Become a client the usual way, but with timeouts. */
static errval_t hello(void)
{
    monitor_set_timeout(TIMEOUT_NS);
    return monitor_connect();
}

/* One raw local message to our monitor, retried while its buffer is full. */
static errval_t raw_send(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t cap)
{
    uint64_t t0 = now_ms();
    errval_t err;
    while ((err = sys_lmp_send(SLOT_MONITOR_EP, w0, w1, w2, w3, cap)) == ERR_WOULD_BLOCK && now_ms() - t0 < 3000)
        sys_yield();
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

static int attack_lmpjunk(void)
{
    errval_t err = hello();
    if (err) {
        report("lmpjunk", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    uint32_t sent = 0;
    /* Fragments whose headers are impossible: wrong magic, reserved bits,
     * length 0, an offset that is not the next, a first fragment that says
     * 200 bytes and then nothing more, a second one out of nowhere. */
    static const uint64_t junk[][4] = {
        { 0x55 | 5 << 8, 1, 2, 3 },
        { LMPCHAN_MAGIC | 5 << 8 | 1 << 24, 1, 2, 3 },
        { LMPCHAN_MAGIC, 0, 0, 0 },
        { LMPCHAN_MAGIC | 60 << 8 | 28 << 16, 1, 2, 3 },
        { LMPCHAN_MAGIC | 200 << 8, 1, 2, 3 },
        { LMPCHAN_MAGIC | 200 << 8 | 56 << 16, 1, 2, 3 },
        { LMPCHAN_MAGIC | 4 << 8 | (uint64_t)0xfe00fe << 32, 0, 0, 0 },   /* an unknown type */
    };
    for (size_t i = 0; i < ARRAY_SIZE(junk); i++)
        sent += raw_send(junk[i][0], junk[i][1], junk[i][2], junk[i][3], LMP_NO_CAP) == ERR_OK;
    /* A capability with a later fragment. */
    capslot_t frame;
    if (!frame_alloc(4096, &frame)) {
        sent += raw_send(LMPCHAN_MAGIC | 56 << 8, 0, 0, 0, LMP_NO_CAP) == ERR_OK;
        sent += raw_send(LMPCHAN_MAGIC | 56 << 8 | 28 << 16, 0, 0, 0, frame | LMP_SEND_MOVE) == ERR_OK;
    }
    /* A spawn_peer whose string says it is longer than its bound (160): the
     * generated decoder must refuse it. */
    uint8_t msg[40] = { monlmp_spawn_peer_call, 0, 0, 0, 250, 0 };
    uint64_t frag[2][4];
    unsigned n = lmpchan_split(msg, sizeof msg, frag, 2);
    for (unsigned i = 0; i < n; i++)
        sent += raw_send(frag[i][0], frag[i][1], frag[i][2], frag[i][3], LMP_NO_CAP) == ERR_OK;
    /* The monitor still serves: a typed local request and a typed one on the channel. */
    pause_ms(200);
    capslot_t notify;
    errval_t lmp = monitor_notify_cap((my_core + 1) % ncores, &notify);
    uint64_t free_bytes = 0;
    uint32_t node = 0;
    errval_t rerr = ERR_OK, mem = monclient_mem_rpc(monitor_chan(), my_core, &rerr, &free_bytes, &node);
    mem = mem ? mem : rerr;
    bool ok = lmp == ERR_OK && mem == ERR_OK;
    report("lmpjunk", ok, "\"sent\":%u,\"lmp\":\"%s\",\"mem\":\"%s\"", sent, err_name(lmp), err_name(mem));
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
    /* A hello carrying an endpoint to the monitor: replies to us would go to
     * the monitor itself, if it used what we hand it. */
    uint8_t msg[4] = { monlmp_hello_call, 0, 0, 0 };
    uint64_t frag[1][4];
    lmpchan_split(msg, sizeof msg, frag, 1);
    errval_t sent_self = raw_send(frag[0][0], frag[0][1], frag[0][2], frag[0][3], mon | LMP_SEND_MOVE);
    pause_ms(300);
    uint64_t ticks0 = monitor_ticks(), t1 = now_ms();
    pause_ms(1000);
    uint64_t busy = monitor_ticks() - ticks0, took = now_ms() - t1;
    /* A capability that is no endpoint at all. */
    errval_t sent_frame = raw_send(frag[0][0], frag[0][1], frag[0][2], frag[0][3], frame | LMP_SEND_MOVE);
    pause_ms(100);
    /* The bogus hellos registered us (the monitor makes its own endpoint to
     * us whatever we send): take the answers they got, then the proper way. */
    struct lmp_msg stale;
    for (int i = 0; i < 50; i++) {
        while (sys_lmp_recv(LMP_NO_CAP, LMP_RECV_NONBLOCK, &stale) == ERR_OK)
            ;
        sys_yield();
    }
    errval_t reg = hello();
    uint64_t free_bytes;
    uint32_t node;
    errval_t rerr = ERR_OK, mem = reg ? reg : monclient_mem_rpc(monitor_chan(), my_core, &rerr, &free_bytes, &node);
    mem = mem ? mem : rerr;
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
    uint32_t not_found = 0, other = 0;
    errval_t first_other = ERR_OK;
    uint32_t far = (my_core + 1) % ncores;
    for (uint32_t i = 0; i < n; i++) {
        /* Service 60 of domain 9999 exists nowhere; one in eight asks another core. */
        uint64_t service = SERVICE_ID(i % 8 == 7 ? far : my_core, 9999, 60);
        capslot_t frame = 0;
        errval_t rerr = ERR_OK;
        err = monlmp_connect_rpc(monitor_lmp(), service, &rerr, &frame);
        err = err ? err : rerr;
        if (err == ERR_NOT_FOUND)
            not_found++;
        else if (!other++)
            first_other = err;
    }
    /* Requests that need slots in the monitor. */
    capslot_t notify = 0, chan = 0;
    errval_t rerr = ERR_OK, nerr = monlmp_notify_cap_rpc(monitor_lmp(), far, &rerr, &notify);
    nerr = nerr ? nerr : rerr ? rerr : notify ? ERR_OK : ERR_CAP_EMPTY;
    errval_t cerr = monlmp_channel_rpc(monitor_lmp(), &rerr, &chan);
    cerr = cerr ? cerr : rerr;   /* we have one already: ERR_DUPLICATE, answered at once */
    bool ok = not_found == n && nerr == ERR_OK && cerr == ERR_DUPLICATE;
    report("connect", ok, "\"tries\":%u,\"not_found\":%u,\"other\":%u,\"first_other\":\"%s\",\"notify\":\"%s\","
           "\"channel\":\"%s\"",
           n, not_found, other, err_name(first_other), err_name(nerr), err_name(cerr));
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
    uint32_t got = 0;
    uint64_t id;
    while ((err = service_register_self(&id)) == ERR_OK && got < 1000)
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
    pause_ms(8000);   /* hold them while others look at this core (the shell's `ps` may come seconds later on a loaded host) */
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
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < ms) {
        uint64_t n = 0;
        errval_t rerr = ERR_OK;
        if (monclient_busy_rpc(monitor_chan(), my_core, &rerr, &n) == ERR_OK && !rerr && n <= 1)
            return true;
        pause_ms(20);
    }
    return false;
}

static errval_t spawn_here(const char *cmd)
{
    uint64_t id;
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(monitor_chan(), my_core, cmd, 0, false, 0, &rerr, &id);
    return err ? err : rerr;
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
        capslot_t frame = 0;
        errval_t rerr = ERR_OK, e = monlmp_connect_rpc(monitor_lmp(), NAMES_SERVICE, &rerr, &frame);
        e = e ? e : rerr ? rerr : frame ? ERR_OK : ERR_CAP_EMPTY;
        if (!e) {
            made++;
            cap_free(frame);   /* dropped: no hang-up, no word to anyone */
            continue;
        }
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
    errval_t err = hello(), rerr = ERR_OK;
    uint64_t free_bytes;
    uint32_t node;
    if (!err && !(err = monclient_mem_rpc(monitor_chan(), my_core, &rerr, &free_bytes, &node)))
        err = rerr;
    report("idle", err == ERR_OK, "\"domain\":%u,\"error\":\"%s\"", startup()->domain_id, err_name(err));
    pause_ms(3000);
    return 0;
}

/* -- a `ps` while domains end ----------------------------------------------------------- */
#define PSLIST_MAX_SLEEPERS 32

/* Is domain `id` a row of a `ps` listing of `core`? Rows: "%4u %4u  name ...". */
static bool listed_in(const char *text, uint32_t core, uint64_t id)
{
    for (const char *p = text; *p;) {
        uint64_t c = 0, d = 0;
        while (*p == ' ')
            p++;
        while (*p >= '0' && *p <= '9')
            c = c * 10 + (uint64_t)(*p++ - '0');
        while (*p == ' ')
            p++;
        while (*p >= '0' && *p <= '9')
            d = d * 10 + (uint64_t)(*p++ - '0');
        if (c == core && d == id)
            return true;
        while (*p && *p != '\n')
            p++;
        if (*p)
            p++;
    }
    return false;
}

static int attack_pslist(uint32_t core, uint32_t nsleepers, uint32_t rounds, uint32_t ms)
{
    static uint8_t buf[monclient_size_max];
    uint64_t sleepers[PSLIST_MAX_SLEEPERS];
    char cmd[48];
    errval_t err = hello(), rerr = ERR_OK;
    uint32_t made = 0, quick = 0, listings = 0, missing = 0, list_errors = 0, r = 0;
    nsleepers = nsleepers > PSLIST_MAX_SLEEPERS ? PSLIST_MAX_SLEEPERS : nsleepers;
    snprintf(cmd, sizeof cmd, "xattack sleep %u", ms);
    uint64_t t0 = now_ms();
    for (; !err && made < nsleepers; made++)
        if (!(err = monclient_spawn_rpc(monitor_chan(), core, cmd, 0, false, 0, &rerr, &sleepers[made])))
            err = rerr;
    /* Stop well before the sleepers end: each listing must hold them all. */
    for (; !err && r < rounds && now_ms() - t0 < ms * 3 / 4; r++) {
        uint64_t id;
        for (int k = 0; k < 2; k++)
            if (!monclient_spawn_rpc(monitor_chan(), core, "xattack quick", 0, false, 0, &rerr, &id) && !rerr)
                quick++;
        const char *text;
        errval_t perr = monclient_ps_rpc(monitor_chan(), core, &rerr, &text, buf, sizeof buf);
        if (perr || rerr) {
            list_errors++;   /* refused (the list kept changing) is no wrong answer */
            continue;
        }
        listings++;
        bool whole = listed_in(text, core, 1);
        for (uint32_t i = 0; i < made; i++)
            whole &= listed_in(text, core, sleepers[i]);
        missing += !whole;
    }
    bool ok = !err && made == nsleepers && listings > 0 && missing == 0;
    report("pslist", ok, "\"target\":%u,\"sleepers\":%u,\"rounds\":%u,\"quick\":%u,\"listings\":%u,"
           "\"missing\":%u,\"list_errors\":%u,\"error\":\"%s\"", core, made, r, quick, listings, missing, list_errors,
           err_name(err));
    return ok ? 0 : 1;
}

static int sleeper(uint32_t ms)
{
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < ms)
        sys_notify_wait(sys_notify_gen(), 100000, 0);
    return 0;
}

/* naps N MS: N sleeps of MS ms each (a notification timeout, as the
 * library's waits use); how late each wake-up came (a probe for an idle
 * core's one-shot timer, not a test: the lateness is host time). */
static int naps(uint32_t n, uint32_t ms)
{
    uint64_t worst = 0, total = 0, over100 = 0, woke = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t t0 = urpc_os_now_ns(), want = t0 + ms * 1000000ull, t;
        while ((t = urpc_os_now_ns()) < want) {
            sys_notify_wait(sys_notify_gen(), (want - t + 999) / 1000, 0);
            woke++;
        }
        uint64_t late = t - want;
        worst = late > worst ? late : worst;
        total += late;
        over100 += late > 100000000ull;
    }
    printf("@atoll {\"event\":\"naps\",\"core\":%u,\"naps\":%u,\"ms\":%u,\"wakes\":%llu,\"late_max_us\":%llu,"
           "\"late_mean_us\":%llu,\"late_over_100ms\":%llu}\n", startup()->core_id, n, ms, (unsigned long long)woke,
           (unsigned long long)(worst / 1000), (unsigned long long)(n ? total / n / 1000 : 0),
           (unsigned long long)over100);
    return 0;
}

/* -- a text page that outlives its client ------------------------------------------------ */
static int attack_pagekeep(void)
{
    /* Our own conversation with the monitor, to hold our request channel's
     * frame ourselves (lib/'s keeps it private). */
    struct lmp_chan lmp;
    lmpchan_init(&lmp, SLOT_MONITOR_EP, LMPCHAN_MONITOR_BADGE);
    lmp.recv_timeout_ns = lmp.send_timeout_ns = TIMEOUT_NS;
    capslot_t frame = 0, spy = 0;
    uint64_t spy_id;
    errval_t rerr = ERR_OK, err = monlmp_hello_rpc(&lmp.idl, &rerr);
    if (!err && !rerr)
        err = monlmp_channel_rpc(&lmp.idl, &rerr, &frame);
    if (!err && !rerr)
        err = monlmp_spawn_peer_rpc(&lmp.idl, "xattack pagespy", &rerr, &spy_id, &spy);
    err = err ? err : rerr;
    /* The frame itself moves to the spy (a copy would die with ours): it
     * outlives us, a direct child of the monitor's root. */
    uint64_t t0 = now_ms();
    while (!err && (err = sys_lmp_send(spy, 0x5e, 0, 0, 0, frame | LMP_SEND_MOVE)) == ERR_WOULD_BLOCK &&
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
    struct cap_identity fid;
    size_t bytes = !err && sys_cap_identify(got, &fid) == ERR_OK ? fid.bytes : 0;
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
        for (size_t k = 0; k + 6 <= bytes && !saw_secret; k++)
            saw_secret = !memcmp(page + k, "SECRET", 6);
        pause_ms(50);
    }
    report("pagespy", !err && !saw_secret, "\"saw_secret\":%s,\"copy_gone\":%s,\"error\":\"%s\"",
           saw_secret ? "true" : "false", copy_gone ? "true" : "false", err_name(err));
    return 0;
}

static int victim(void)
{
    errval_t err = hello(), rerr = ERR_OK;
    uint64_t id;
    /* A request whose text says SECRET: it sits in our request channel. */
    if (!err)
        monclient_spawn_rpc(monitor_chan(), my_core, "SECRET-no-such-program", 0, false, 0, &rerr, &id);
    report("victim", !err && rerr == ERR_NOT_FOUND, "\"error\":\"%s\",\"spawn\":\"%s\"", err_name(err),
           err_name(rerr));
    pause_ms(3000);
    return 0;
}

/* -- names for services that are not ours --------------------------------------------------- */
static int ns_register_other(void)
{
    static struct service_chan sc;
    errval_t err = hello(), theirs = ERR_OK, fake = ERR_OK, mine = ERR_OK;
    uint64_t own = 0;
    if (!err)
        err = names_connect(&sc);
    if (!err)
        err = service_register_self(&own);
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
    errval_t err = hello(), kill = ERR_OK, rerr = ERR_OK;
    if (!err && !(kill = monclient_kill_rpc(monitor_chan(), core, id, &rerr)))
        kill = rerr;
    bool ok = !err && kill == ERR_NOT_PERMITTED;
    report("kill", ok, "\"kill\":\"%s\",\"error\":\"%s\"", err_name(kill), err_name(err));
    return ok ? 0 : 1;
}

static int attack_broadcast(void)
{
    capslot_t ram = 0;
    errval_t err = hello(), wide = err, plain = err;
    if (!err)
        err = ram_alloc(4096, &ram);
    if (!err) {
        errval_t rerr = ERR_OK;
        if (!(wide = monlmp_cap_revoke_rpc(monitor_lmp(), ram, CAPOPS_BROADCAST, &rerr)))
            wide = rerr;
        if (!(plain = monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &rerr)))
            plain = rerr;
    }
    bool ok = !err && wide == ERR_NOT_PERMITTED && plain == ERR_OK;
    report("broadcast", ok, "\"broadcast\":\"%s\",\"plain\":\"%s\",\"error\":\"%s\"", err_name(wide),
           err_name(plain), err_name(err));
    return ok ? 0 : 1;
}

/* -- a client that is gone before its connection is accepted ------------------------------- */
#define ONESHOT_TEXT "oneshot from core %u"

/* xattack oneshot CORE DOMAIN SEQ: connect to that service, send one
 * message, hang up and end, all before the service accepts. */
static int oneshot(uint32_t core, uint32_t domain, uint32_t seq)
{
    static struct service_chan sc;
    char text[40];
    errval_t err = hello();
    if (!err)
        err = service_connect(SERVICE_ID(core, domain, seq), &sc);
    if (err) {
        report("oneshot", false, "\"error\":\"%s\"", err_name(err));
        return 1;
    }
    snprintf(text, sizeof text, ONESHOT_TEXT, my_core);
    err = urpc_send(&sc.ch, text, strlen(text) + 1, 0);
    service_chan_close(&sc, ERR_OK);
    return err ? 1 : 0;
}

/* xattack lateaccept CORE: a `oneshot` client on CORE connects to our
 * service, sends and ends; only when it is gone do we accept. Its message
 * must still arrive, then the hang-up (a report needs no handshake). */
static int late_accept(uint32_t core)
{
    static struct service_chan sc;
    uint64_t me = 0, before = 0, id = 0, n = ~0ull;
    char cmd[80], got[64] = "", want[40];
    size_t len = 0;
    errval_t rerr = ERR_OK, err = hello(), msg = ERR_NOT_FOUND, end = ERR_NOT_FOUND;
    if (!err)
        err = service_register_self(&me);
    if (!err && !(err = monclient_busy_rpc(monitor_chan(), core, &rerr, &before)))
        err = rerr;
    if (!err) {
        snprintf(cmd, sizeof cmd, "xattack oneshot %u %u %u", SERVICE_CORE(me), SERVICE_DOMAIN(me),
                 (uint32_t)(uint16_t)me);
        if (!(err = monclient_spawn_rpc(monitor_chan(), core, cmd, 0, false, 0, &rerr, &id)))
            err = rerr;
    }
    /* Until it has ended (and its monitor has heard): `busy` is back. */
    for (uint64_t t0 = now_ms(); !err && n > before; pause_ms(20)) {
        if (monclient_busy_rpc(monitor_chan(), core, &rerr, &n) || rerr)
            n = ~0ull;
        if (now_ms() - t0 > 20000)
            err = ERR_TIMEOUT;
    }
    for (uint64_t t0 = now_ms(); !err && (err = service_accept(&sc)) == ERR_WOULD_BLOCK; pause_ms(20))
        if (now_ms() - t0 > 5000)
            err = ERR_TIMEOUT;   /* the connection went with its client */
    if (!err) {
        sc.ch.timeout_ns = TIMEOUT_NS;
        msg = urpc_recv(&sc.ch, got, sizeof got - 1, &len, 0);
        got[msg ? 0 : len < sizeof got ? len : sizeof got - 1] = 0;
        end = urpc_recv(&sc.ch, cmd, sizeof cmd, &len, 0);
        service_chan_close(&sc, ERR_OK);
    }
    snprintf(want, sizeof want, ONESHOT_TEXT, core);
    bool ok = !err && msg == ERR_OK && !strcmp(got, want) && end == ERR_CHAN_CLOSED;
    report("lateaccept", ok, "\"client_core\":%u,\"accept\":\"%s\",\"message\":\"%s\",\"got\":\"%s\","
           "\"then\":\"%s\"", core, err_name(err), err_name(msg), got, err_name(end));
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct core_info info;
    my_core = startup()->core_id;
    ncores = sys_core_info(&info) == ERR_OK ? info.ncores : 1;
    const char *a = argc >= 2 ? argv[1] : "";
    if (!strcmp(a, "lmpjunk"))
        return attack_lmpjunk();
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
    if (!strcmp(a, "nsregister"))
        return ns_register_other();
    if (!strcmp(a, "kill") && argc >= 4)
        return attack_kill(arg_number(argv[2], 0), arg_number(argv[3], 1));
    if (!strcmp(a, "broadcast"))
        return attack_broadcast();
    if (!strcmp(a, "lateaccept") && argc >= 3)
        return late_accept(arg_number(argv[2], 0) % ncores);
    if (!strcmp(a, "oneshot") && argc >= 5)
        return oneshot(arg_number(argv[2], 0), arg_number(argv[3], 0), arg_number(argv[4], 0));
    if (!strcmp(a, "pslist") && argc >= 6)
        return attack_pslist(arg_number(argv[2], 1) % ncores, arg_number(argv[3], 20), arg_number(argv[4], 1000),
                             arg_number(argv[5], 8000));
    if (!strcmp(a, "sleep") && argc >= 3)
        return sleeper(arg_number(argv[2], 8000));
    if (!strcmp(a, "naps") && argc >= 4)
        return naps(arg_number(argv[2], 100), arg_number(argv[3], 10));
    if (!strcmp(a, "quick")) {   /* end after 0-3 ms, so that ends keep coming while the monitor walks */
        uint64_t t0 = urpc_os_now_ns(), ns = (startup()->domain_id % 4) * 1000000ull;
        while (urpc_os_now_ns() - t0 < ns)
            sys_notify_wait(sys_notify_gen(), 500, 0);
        return 0;
    }
    if (!strcmp(a, "spin"))
        for (;;)
            __asm__ volatile("pause");
    printf("usage: xattack lmpjunk|hello|connect [N]|nscorrupt|nsflood|serve|dispatchers|zombies [N]|conns [N]|"
           "clients [N]|pagekeep|victim|nsregister|kill CORE ID|broadcast|lateaccept CORE|spin|"
           "pslist CORE SLEEPERS ROUNDS MS|naps N MS\n");
    return 2;
}
