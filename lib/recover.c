/*
 * Living through restarts: the name server's channel made again after it
 * was restarted, registrations kept and made again, clients that reconnect
 * by name, and heartbeats to the restart service. <atoll/recover.h>,
 * docs/restart.md.
 */
#include <atoll/lib.h>
#include <atoll/recover.h>
#include <if/nameservice_if.h>
#include <if/starter_if.h>

/* -- the name server ----------------------------------------------------------------- */

/* A name or interface into a fixed field (longer ones are refused by the
 * name server anyway: the field holds more than its bound). */
static void copy_word(char *out, size_t size, const char *s)
{
    size_t n = strnlen(s, size - 1);
    memcpy(out, s, n);
    out[n] = 0;
}

static struct service_chan ns;
static bool ns_up, ns_restarted;
static uint32_t ns_reconnects;
static uint64_t ns_back_ns;   /* when this domain reached the name server again after its restart */

uint32_t names_reconnects(void) { return ns_reconnects; }

static void beat_while_waiting(void);

/* While the name server is being restarted, an instance waits for it here
 * (its kept names replayed, a lookup): it beats meanwhile, or it would be
 * ended as hung after HEARTBEAT_HANG_MS when the restart is slow (a fault
 * campaign saw several instances ended at once so). */
static errval_t ns_connect(void)
{
    if (ns_up)
        return ERR_OK;
    uint64_t start = now_ns();
    errval_t err;
    while ((err = names_connect_wait(&ns, 100)) == ERR_NOT_FOUND &&
           now_ns() - start < NAMES_CONNECT_WAIT_MS * 1000000ull)
        beat_while_waiting();
    ns_up = !err;
    if (ns_up && ns_restarted) {
        ns_restarted = false;
        ns_back_ns = now_ns();
    }
    return err;
}

/* Within NAMES_REJOIN_MS of reaching a restarted name server: the names
 * it lacks may be on their way back (their registrants re-join). */
static bool ns_rejoining(void)
{
    return ns_back_ns && now_ns() - ns_back_ns < NAMES_REJOIN_MS * 1000000ull;
}

static void kept_all_pending(void);

/* The name server hung up (it ended; its monitor starts it again): forget
 * the channel, and have the kept registrations done again, whoever noticed
 * first (names_watch, or any call). */
static void ns_hung_up(void)
{
    if (!ns_up)
        return;
    service_chan_close(&ns, ERR_OK);
    ns_up = false;
    ns_restarted = true;
    ns_reconnects++;
    kept_all_pending();
}

struct idl_chan *names_idl(void)
{
    if (ns_up && urpc_peer_closed(&ns.ch))
        ns_hung_up();
    return ns_connect() ? 0 : &ns.idl;
}

static bool lost(errval_t err)
{
    return err == ERR_CHAN_CLOSED || err == ERR_URPC_BROKEN || err == ERR_URPC_CORRUPT;
}

/* A channel made just as the old name server ends may reach it still
 * (the monitor's alias names it until the monitor has read its end) and
 * hang up at once: a few more tries, a little apart (seen in a fault
 * campaign as a client's rare ERR_CHAN_CLOSED, docs/faults.md). */
errval_t names_call(errval_t (*call)(struct idl_chan *ch, void *arg), void *arg)
{
    errval_t err = ERR_OK;
    for (int attempt = 0; attempt < NAMES_CALL_TRIES; attempt++) {
        if (attempt > 1)
            sys_notify_wait(sys_notify_gen(), 20000, 0);
        if ((err = ns_connect()))
            return err;
        err = call(&ns.idl, arg);
        if (!lost(err))
            return err;
        /* A full name server hangs up with its reason (ERR_TOO_MANY): say
         * that, not a bare ERR_CHAN_CLOSED, if no try gets through. */
        errval_t why = urpc_peer_closed(&ns.ch);
        if (why && why != ERR_CHAN_CLOSED)
            err = why;
        ns_hung_up();
    }
    return err;
}

struct lookup_args {
    const char *name;
    errval_t rerr;
    const char *iface;
    uint64_t service;
};

static errval_t lookup_call(struct idl_chan *ch, void *arg)
{
    static uint8_t buf[nameservice_size_max];
    struct lookup_args *a = arg;
    a->rerr = ERR_OK;
    return nameservice_lookup_rpc(ch, a->name, &a->rerr, &a->iface, &a->service, buf, sizeof buf);
}

/* A lookup changes nothing: repeating it is always safe. A name missing
 * from a name server restarted a moment ago is not known to be gone (its
 * registrants re-join within NAMES_REJOIN_MS; a group's instances only
 * after the starter made the group again): a lookup that may wait waits
 * at least until that window ends. */
errval_t names_lookup_iface(const char *name, uint64_t wait_ms, const char **iface, uint64_t *service)
{
    uint64_t start = now_ns();
    for (;;) {
        struct lookup_args a = { .name = name };
        errval_t err = names_call(lookup_call, &a);
        if (!err && !a.rerr) {
            if (iface)
                *iface = a.iface;
            *service = a.service;
            return ERR_OK;
        }
        bool waited = (now_ns() - start) / 1000000 >= wait_ms && !(wait_ms && ns_rejoining());
        if (err || a.rerr != ERR_NOT_FOUND || waited)
            return err ? err : a.rerr;
        sys_notify_wait(sys_notify_gen(), 10000, 0);   /* 10 ms: a restarted instance joins soon */
    }
}

errval_t names_lookup(const char *name, uint64_t wait_ms, uint64_t *service)
{
    return names_lookup_iface(name, wait_ms, 0, service);
}

/* What this domain registered, to register again after a restart. */
enum kept_kind { KEPT_GROUP = 1, KEPT_REGISTER, KEPT_JOIN };
static struct kept {
    uint8_t kind;
    bool pending;            /* to do again (the name server was restarted) */
    char name[64], iface[32];
    uint64_t key, service;
} kept[NAMES_KEPT];

static errval_t kept_call(struct idl_chan *ch, void *arg)
{
    struct kept *k = arg;
    errval_t rerr = ERR_OK, err;
    if (k->kind == KEPT_GROUP)
        err = nameservice_group_rpc(ch, k->name, k->iface, k->key, &rerr);
    else if (k->kind == KEPT_REGISTER)
        err = nameservice_register_rpc(ch, k->name, k->iface, k->service, &rerr);
    else
        err = nameservice_join_rpc(ch, k->name, k->key, k->service, &rerr);
    return err ? err : rerr;
}

static errval_t keep(struct kept *proto)
{
    struct kept *k = 0;
    for (unsigned i = 0; i < NAMES_KEPT && !k; i++)
        if (!kept[i].kind)
            k = &kept[i];
    /* A first join waits for its group as a re-join does: an instance
     * started while the name server is being restarted finds its group
     * only once the starter has made it again. */
    uint64_t start = now_ns();
    errval_t err;
    while ((err = names_call(kept_call, proto)) == ERR_NOT_FOUND && proto->kind == KEPT_JOIN &&
           now_ns() - start < NAMES_JOIN_WAIT_MS * 1000000ull) {
        sys_notify_wait(sys_notify_gen(), 20000, 0);
        beat_while_waiting();
    }
    if (err)
        return err;
    if (!k)
        return ERR_TOO_MANY;   /* done, but not kept */
    *k = *proto;
    return ERR_OK;
}

errval_t names_keep_group(const char *name, const char *iface, uint64_t key)
{
    struct kept k = { .kind = KEPT_GROUP, .key = key };
    copy_word(k.name, sizeof k.name, name);
    copy_word(k.iface, sizeof k.iface, iface);
    return keep(&k);
}

errval_t names_keep_register(const char *name, const char *iface, uint64_t service)
{
    struct kept k = { .kind = KEPT_REGISTER, .service = service };
    copy_word(k.name, sizeof k.name, name);
    copy_word(k.iface, sizeof k.iface, iface);
    return keep(&k);
}

errval_t names_keep_join(const char *name, uint64_t key, uint64_t service)
{
    struct kept k = { .kind = KEPT_JOIN, .key = key, .service = service };
    copy_word(k.name, sizeof k.name, name);
    return keep(&k);
}

static struct ws_source ns_watch;
static struct ws_timer rejoin;
static uint64_t rejoin_since;

/* Do the kept registrations that are still to do, groups first (a join
 * needs its group, which the starter makes again); true when all are done. */
static bool replay(void)
{
    bool all = true;
    for (int kind = KEPT_GROUP; kind <= KEPT_JOIN; kind++)
        for (unsigned i = 0; i < NAMES_KEPT; i++) {
            struct kept *k = &kept[i];
            if (k->kind != kind || !k->pending)
                continue;
            errval_t err = names_call(kept_call, k);
            if (!err || err == ERR_NAME_TAKEN || err == ERR_DUPLICATE)
                k->pending = false;
            else if (err == ERR_NOT_FOUND && kind == KEPT_JOIN && now_ns() - rejoin_since < NAMES_REJOIN_MS * 1000000ull)
                all = false;   /* its group is not back yet */
            else {
                k->pending = false;
                printf("recover: cannot register %s again: %s\n", k->name, err_name(err));
            }
        }
    return all;
}

static void rejoin_fire(struct ws_timer *t)
{
    if (!replay())
        waitset_timer_arm(t->ws, t, now_ns() + 20000000ull);
}

static void kept_all_pending(void)
{
    bool any = false;
    for (unsigned i = 0; i < NAMES_KEPT; i++)
        any |= kept[i].pending = kept[i].kind != 0;
    rejoin_since = now_ns();
    if (any && rejoin.ws)
        waitset_timer_arm(rejoin.ws, &rejoin, rejoin_since);   /* names_watch's loop does them */
}

static bool ns_watch_poll(struct ws_source *s)
{
    if (!ns_up || !urpc_pending(&ns.ch))
        return false;
    /* The name server sends nothing unasked: this is its hang-up. */
    (void)s;
    ns_hung_up();
    ns_connect();
    return true;
}

void names_watch(struct waitset *ws)
{
    rejoin = (struct ws_timer){ .fire = rejoin_fire };
    rejoin.ws = ws;
    ns_watch = (struct ws_source){ .poll = ns_watch_poll, .name = "names watch" };
    waitset_add(ws, &ns_watch);
}

/* -- clients that reconnect by name ---------------------------------------------------- */

static errval_t named_reconnect(struct named_chan *nc)
{
    uint64_t start = now_ns();
    for (;;) {
        uint64_t waited = (now_ns() - start) / 1000000ull;
        uint64_t left = waited < nc->wait_ms ? nc->wait_ms - waited : 0;
        errval_t err = names_lookup(nc->name, left, &nc->service);
        /* A service the name server gave out was registered with its
         * monitor before it was named: not found now, it has ended.
         * Waiting for it would spend the whole window on it (a fault
         * campaign's rare ERR_NOT_FOUND, docs/faults.md): look again. */
        if (!err)
            err = service_connect_wait(nc->service, &nc->sc, left < NAMED_GONE_MS ? left : NAMED_GONE_MS);
        if (!err) {
            nc->up = true;
            return ERR_OK;
        }
        /* The name may still point at the instance that ended (its group
         * drops it a moment later), or at one on a core just fenced as
         * dead (ERR_CORE_DOWN: its names go as soon as the name server
         * reads the hang-up): look again while there is time. A name
         * missing from a name server restarted a moment ago is not known
         * to be gone, even once this channel's own wait is spent (as in
         * names_lookup). */
        if ((err != ERR_NOT_FOUND && err != ERR_CORE_DOWN) || (!left && !ns_rejoining()))
            return err;
        sys_notify_wait(sys_notify_gen(), 5000, 0);
    }
}

errval_t named_connect(struct named_chan *nc, const char *name, uint64_t wait_ms)
{
    memset(nc, 0, sizeof *nc);
    copy_word(nc->name, sizeof nc->name, name);
    nc->wait_ms = wait_ms;
    return named_reconnect(nc);
}

void named_close(struct named_chan *nc)
{
    if (nc->up)
        service_chan_close(&nc->sc, ERR_OK);
    nc->up = false;
}

errval_t named_call(struct named_chan *nc, bool idempotent, errval_t (*call)(struct idl_chan *ch, void *arg),
                    void *arg)
{
    for (unsigned attempt = 0;; attempt++) {
        errval_t err = nc->up ? ERR_OK : named_reconnect(nc);
        if (err)
            return err;
        err = call(&nc->sc.idl, arg);
        /* No answer within the channel's bound (10 s): the server hangs
         * (the restart service ends it within HEARTBEAT_HANG_MS of its
         * last beat) or serves no more though it beats (a fault that broke
         * its request path). The channel may yet deliver the late answer,
         * out of step: it is dropped, as a hung-up one is. */
        bool timed_out = err == ERR_TIMEOUT;
        if (!lost(err) && !timed_out)
            return err;
        named_close(nc);
        nc->reconnects++;
        if (!idempotent) {
            named_reconnect(nc);   /* a fresh channel for the caller's next call */
            return timed_out ? ERR_TIMEOUT : ERR_RESTARTED;
        }
        if (attempt == NAMED_RETRIES)
            return err;
        nc->retries++;
    }
}

/* -- heartbeats ---------------------------------------------------------------------- */

static struct service_chan hb;
static bool hb_on;   /* beating (heartbeat_start) */
static struct ws_timer hb_timer;
static uint64_t hb_seq;

const char *fault_name(uint32_t kind)
{
    static const char *const names[] = { "none", "kill", "hang", "crash", "garble", "bitflip", "badbeat", "regs", "stall" };
    _Static_assert(sizeof names / sizeof names[0] == FAULT_KINDS, "a name per fault kind");
    return kind < FAULT_KINDS ? names[kind] : "unknown";
}

static uint64_t hb_last_ns;

uint64_t heartbeats_sent(void) { return hb_seq; }

static bool send_beat(void)
{
    if (starter_beat_send(&hb.idl, ++hb_seq) == ERR_CHAN_CLOSED)
        return false;   /* the restart service is gone: nothing more to tell */
    hb_last_ns = now_ns();
    return true;
}

static void beat(struct ws_timer *t)
{
    if (send_beat())
        waitset_timer_arm(t->ws, t, hb_last_ns + HEARTBEAT_MS * 1000000ull);
}

/* A wait outside the event loop (a first join waiting for its group, up
 * to NAMES_JOIN_WAIT_MS) beats on time: the instance is not hung, and
 * would otherwise be ended as hung after HEARTBEAT_HANG_MS (a new version
 * started by `svc update` beats before it joins). */
static void beat_while_waiting(void)
{
    /* A beat only: the heartbeat timer keeps its own schedule (an extra
     * beat is harmless), and this may run inside another timer's callback. */
    if (hb_on && now_ns() - hb_last_ns >= HEARTBEAT_MS * 1000000ull)
        send_beat();
}

/* FAULT_REGS: one bit of one register flipped, as a transient hardware
 * fault would: a callee-saved one (rbx, rbp, r12-r15), deliberately not
 * declared clobbered, so that the flipped bit reaches the callers that
 * keep a value there (unless a function between saved and restores it:
 * many such flips are masked, as in hardware), or the stack pointer (one
 * of bits 3-10: the return goes astray). The server may crash, answer
 * wrongly or never notice; the restart service copes with each. */
static void __attribute__((noinline)) flip_register(uint64_t seed)
{
    uint64_t bit = 1ull << (seed & 63);
    switch ((seed >> 6) % 7) {
    case 6: __asm__ volatile("xorq %0, %%rsp" : : "r"(1ull << (3 + (seed & 7)))); break;
    case 0: __asm__ volatile("xorq %0, %%rbx" : : "r"(bit)); break;
    case 1: __asm__ volatile("xorq %0, %%rbp" : : "r"(bit)); break;
    case 2: __asm__ volatile("xorq %0, %%r12" : : "r"(bit)); break;
    case 3: __asm__ volatile("xorq %0, %%r13" : : "r"(bit)); break;
    case 4: __asm__ volatile("xorq %0, %%r14" : : "r"(bit)); break;
    default: __asm__ volatile("xorq %0, %%r15" : : "r"(bit)); break;
    }
}

/* Injected faults: what a real bug would do (docs/restart.md). */
static errval_t on_fault(struct idl_chan *ch, const struct starter_fault_args *a)
{
    (void)ch;
    printf("@atoll {\"event\":\"fault_taken\",\"core\":%u,\"domain\":%llu,\"kind\":\"%s\"}\n", startup()->core_id,
           (unsigned long long)startup()->domain_id, fault_name(a->kind));
    stdout_flush();
    if (a->kind == FAULT_HANG)
        for (;;)
            sys_yield();   /* never back to the event loop: no beats, no answers */
    if (a->kind == FAULT_STALL) {
        /* Neither beats nor serves for a while, then goes on with all it
         * held: what a starved domain looks like from outside. */
        uint64_t until = now_ns() + FAULT_STALL_MS * 1000000ull;
        for (uint64_t t = now_ns(); t < until; t = now_ns())
            sys_notify_wait(sys_notify_gen(), (until - t) / 1000 + 1, 0);   /* asleep: it costs the core nothing */
    }
    if (a->kind == FAULT_CRASH)
        *(volatile uint64_t *)(uintptr_t)(0x10 + (a->seed & 0xff0)) = a->seed;   /* the first page is never mapped */
    if (a->kind == FAULT_BADBEAT) {
        /* A beat whose type is none of the interface's, then one cut short. */
        uint8_t junk[12] = { 0xee, 0xee };
        for (size_t i = 2; i < sizeof junk; i++)
            junk[i] = (uint8_t)(a->seed >> (i * 5));
        urpc_send(&hb.ch, junk, sizeof junk, URPC_NONBLOCK);
        uint8_t cut[6] = { starter_beat, 0, 1, 2, 3, 4 };
        urpc_send(&hb.ch, cut, sizeof cut, URPC_NONBLOCK);
    }
    if (a->kind == FAULT_REGS)
        flip_register(a->seed);
    if (a->kind == FAULT_BITFLIP) {
        struct heap *h = malloc_heap();
        char *base = (char *)h->first, *end = h->region_end;
        if (base && end > base) {
            size_t off = (size_t)(a->seed % (uint64_t)(end - base));
            base[off] ^= (char)(1u << ((a->seed >> 32) & 7));
        }
    }
    return ERR_OK;
}

/* -- live update ------------------------------------------------------------------------ */

static const struct updatable *updatable;
static bool frozen;

void heartbeat_updatable(const struct updatable *u) { updatable = u; }

static errval_t on_resume(struct idl_chan *ch, const struct starter_resume_args *a)
{
    (void)ch;
    (void)a;
    frozen = false;
    return ERR_OK;
}

static const struct starter_handlers frozen_handlers = { .resume = on_resume };

/* Our state goes to the starter; then we serve nothing but beats until we
 * are resumed or ended. Called from the event loop: no request is half
 * served (a safe point). */
static errval_t on_state_export(struct idl_chan *ch, const struct starter_state_export_args *a)
{
    static uint8_t buf[UPDATE_STATE_MAX];
    size_t len = 0;
    errval_t err = updatable ? updatable->export_state(buf, sizeof buf, &len) : ERR_NOT_SUPPORTED;
    if (!err && len > sizeof buf)
        err = ERR_MSG_TOO_LONG;
    errval_t serr = starter_state_send(ch, a->tag, err, updatable ? updatable->version : 0, buf, err ? 0 : len);
    if (err || serr)
        return serr;
    frozen = true;
    while (frozen) {
        errval_t r = starter_serve_one(&hb.idl, &frozen_handlers, URPC_NONBLOCK);
        if (lost(r))
            break;   /* the starter is gone: nobody will decide; serve again */
        if (r == ERR_WOULD_BLOCK) {
            sys_notify_wait(sys_notify_gen(), HEARTBEAT_MS * 1000ull, 0);
            starter_beat_send(&hb.idl, ++hb_seq);   /* frozen, not hung */
        }
    }
    frozen = false;
    return ERR_OK;
}

static bool imported;
static errval_t import_err = ERR_TIMEOUT;

static errval_t on_state_import(struct idl_chan *ch, const struct starter_state_import_args *a)
{
    errval_t err = updatable ? updatable->import_state(a->version, a->data, a->data_len) : ERR_NOT_SUPPORTED;
    imported = true;
    import_err = err;
    return starter_imported_send(ch, a->tag, err, updatable ? updatable->version : 0);
}

static const struct starter_handlers import_handlers = { .state_import = on_state_import };

errval_t heartbeat_import_wait(uint64_t wait_ms)
{
    uint64_t start = now_ns(), last = start;
    while (!imported && now_ns() - start < wait_ms * 1000000ull) {
        errval_t r = starter_serve_one(&hb.idl, &import_handlers, URPC_NONBLOCK);
        if (lost(r))
            return r;
        if (r == ERR_WOULD_BLOCK)
            sys_notify_wait(sys_notify_gen(), 10000, 0);
        if (now_ns() - last >= HEARTBEAT_MS * 1000000ull) {
            last = now_ns();
            starter_beat_send(&hb.idl, ++hb_seq);
        }
    }
    return import_err;
}

static const struct starter_handlers hb_handlers = { .fault = on_fault, .state_export = on_state_export,
                                                      .state_import = on_state_import };

static bool hb_ready(struct ws_source *s)
{
    (void)s;
    errval_t err = starter_serve_one(&hb.idl, &hb_handlers, URPC_NONBLOCK);
    if (err == ERR_WOULD_BLOCK)
        return false;
    if (lost(err)) {
        waitset_remove(&hb.src);
        waitset_timer_cancel(&hb_timer);
        service_chan_close(&hb, ERR_OK);
    }
    return true;
}

static bool recovered_due, recovered_holds;
static uint64_t recovered_index;

void heartbeat_recovered(bool holds, uint64_t index)
{
    recovered_holds = holds;
    recovered_index = index;
    recovered_due = !hb_on || starter_recovered_send(&hb.idl, holds, index) != ERR_OK;
}

errval_t heartbeat_start(struct waitset *ws)
{
    uint64_t service;
    errval_t err = names_lookup("starter", 5000, &service);
    if (!err)
        err = service_connect_wait(service, &hb, 5000);
    if (err)
        return err;
    service_chan_source(&hb, hb_ready, 0);
    waitset_add(ws, &hb.src);
    hb_timer = (struct ws_timer){ .fire = beat };
    hb_timer.ws = ws;
    beat(&hb_timer);
    hb_on = true;
    if (recovered_due)
        heartbeat_recovered(recovered_holds, recovered_index);
    return ERR_OK;
}
