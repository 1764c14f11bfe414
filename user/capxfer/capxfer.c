/*
 * capxfer: RAM across cores and back (monitor/capops.c, docs/capabilities.md
 * "Across cores"; tests/test_capops.py).
 *
 *   capxfer CORE        the giver, here: starts `capxfer take` on CORE
 *   capxfer take        the receiver (started by the giver)
 *   capxfer bench [ROUNDS] [MAXH]  the `caps` benchmark (docs/bench.md), below
 *   capxfer sink [keep] a holder that takes what it is given and lets go at
 *                       once (`keep`: until it is revoked, for the benchmark)
 *   capxfer orphan CORE [exit|fault]  the giver ends (or faults) while the
 *                       receiver on CORE (`capxfer keep`) holds its RAM: the
 *                       copy must go before the giver's RAM is reused
 *   capxfer keep        that receiver
 *   capxfer chanframe CORE  a copy of a channel's frame (the monitor's own)
 *                       given to CORE: refused (ERR_NOT_PERMITTED)
 *   capxfer quota CORE  a domain gives RAM to one on CORE (`capxfer hoard`,
 *                       which keeps it) until its own limit of objects with
 *                       copies elsewhere: ERR_QUOTA at once; meanwhile
 *                       another domain (`capxfer quota-other`) gives and
 *                       revokes as usual (docs/limits.md)
 *   capxfer handover CORE  a Frame given to CORE (`capxfer handover-take`),
 *                       then its original deleted through the monitor: the
 *                       copy there lives on (and reads what was written),
 *                       the Frame's range stays taken in the giver's RAM
 *                       until that copy goes, then it is free again
 *   capxfer chaos ROUNDS WORKERS SEED  randomized give/take/delete/revoke/
 *                       retype between a domain on core 0 and one
 *                       (`capxfer chaos-worker`) on each of cores
 *                       1..WORKERS, all at once; then, everyone paused,
 *                       every monitor's records (monclient caps) for the
 *                       test to check; then everything let go
 *   capxfer cycles N CORE  N give/take/delete cycles of a page of RAM to a
 *                       sink on CORE, 8 in flight at a time
 *   capxfer rights CORE a Frame given twice to one domain on CORE (`capxfer
 *                       rights-take`), in full and read-only, and another
 *                       read-only first: each copy there has the rights
 *                       it was given with (a write mapping of a read-only
 *                       one is refused), whatever came first
 *
 * The giver carves 64 KiB of RAM of its own and gives it to the receiver on
 * CORE. The receiver takes it, finds that it cannot retype it alone
 * (ERR_CAP_REMOTE: the RAM belongs to the giver's core), retypes it into
 * four Frames with the owner's agreement, and writes into each. Meanwhile
 * the giver tries to carve the same RAM into a Frame of its own: refused
 * (ERR_OVERLAP) once the owner has reserved the range for the receiver.
 * Then the giver revokes its RAM: the receiver's copy and Frames are gone,
 * on its core, before the revoke returns, and the giver carves the whole
 * range again. Second round, delete: the giver gives a Frame; the receiver
 * takes and deletes it; the giver's own delete, refused while a copy lives
 * elsewhere, then works. Last, what may not cross is refused.
 *
 * Events (tests/test_capops.py checks every field):
 *   @atoll {"event":"capxfer_take", ...}   the receiver, per step
 *   @atoll {"event":"capxfer_give", ...}   the giver, at the end
 */
#include <atoll/costmodel.h>
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <if/monclient_if.h>
#include <if/monlmp_if.h>

#define RAM_BYTES (64u << 10)
#define FRAMES 4
#define WAIT_MS 60000

static const struct startup_info *si;
static uint32_t si_core(void) { return si->core_id; }
static uint64_t now_ms(void) { return urpc_os_now_ns() / 1000000; }
static void nap(void) { sys_notify_wait(sys_notify_gen(), 1000, 0); }

static uint32_t type_of(capslot_t s)
{
    struct cap_identity id;
    return sys_cap_identify(s, &id) ? CAP_NULL : id.type;
}

/* -- the receiver ------------------------------------------------------------------- */

static errval_t take(capslot_t *cap, uint32_t *core, uint64_t *from)
{
    uint64_t t0 = now_ms();
    for (;;) {
        errval_t rerr = ERR_OK, err = monlmp_cap_take_rpc(monitor_lmp(), &rerr, cap, core, from);
        if (err || rerr != ERR_WOULD_BLOCK)
            return err ? err : rerr;
        if (now_ms() - t0 > WAIT_MS)
            return ERR_TIMEOUT;
        nap();
    }
}

static int receiver(void)
{
    capslot_t ram, frames;
    uint32_t core = 0;
    uint64_t from = 0;
    errval_t err = take(&ram, &core, &from);
    if (err) {
        printf("@atoll {\"event\":\"capxfer_take\",\"step\":\"take\",\"error\":\"%s\"}\n", err_name(err));
        return 1;
    }
    struct cap_identity id;
    sys_cap_identify(ram, &id);
    /* Alone: refused, the owner must agree. */
    errval_t alone = slot_alloc_range(FRAMES, &frames);
    if (!alone)
        alone = sys_cap_retype(ram, CAP_FRAME, RAM_BYTES / FRAMES, 0, FRAMES, frames);
    /* Agreed: the owner reserves the range. The giver may hold it for a
     * moment (it tries to carve the same RAM): then try again. */
    errval_t rerr = ERR_OK;
    uint64_t t0 = now_ms();
    do {
        err = monlmp_cap_retype_rpc(monitor_lmp(), ram, CAP_FRAME, RAM_BYTES / FRAMES, 0, FRAMES, frames, &rerr);
        if (!err && rerr == ERR_OVERLAP)
            nap();
    } while (!err && rerr == ERR_OVERLAP && now_ms() - t0 < WAIT_MS);
    if (!err)
        err = rerr;
    uint32_t written = 0;
    for (uint32_t i = 0; !err && i < FRAMES; i++) {
        void *p;
        if (vspace_map_frame(frames + i, MAP_WRITE, &p) == ERR_OK) {
            memset(p, 0x5a, 4096);
            written += ((volatile uint8_t *)p)[4095] == 0x5a;
            vspace_unmap_frame(frames + i, p);
        }
    }
    /* Tell the giver we are done, by giving it a Frame of ours: this
     * core owns that one. */
    capslot_t back;
    errval_t gave_back = frame_alloc(4096, &back);
    if (!gave_back) {
        errval_t e2 = ERR_OK;
        gave_back = monlmp_cap_give_rpc(monitor_lmp(), back, core, from, &e2);
        if (!gave_back)
            gave_back = e2;
    }
    printf("@atoll {\"event\":\"capxfer_take\",\"step\":\"retype\",\"core\":%u,\"from_core\":%u,\"type\":\"%s\","
           "\"flags\":%u,\"bytes\":%llu,\"alone\":\"%s\",\"agreed\":\"%s\",\"written\":%u,"
           "\"gave_back\":\"%s\"}\n",
           si_core(), core, cap_type_name(id.type), id.flags, (unsigned long long)id.bytes, err_name(alone),
           err_name(err), written, err_name(gave_back));
    /* Now the giver revokes: wait until our copy and Frames are gone. */
    t0 = now_ms();
    while (type_of(ram) != CAP_NULL && now_ms() - t0 < WAIT_MS)
        nap();
    uint32_t left = type_of(ram) != CAP_NULL;
    for (uint32_t i = 0; i < FRAMES; i++)
        left += type_of(frames + i) != CAP_NULL;
    printf("@atoll {\"event\":\"capxfer_take\",\"step\":\"revoked\",\"left\":%u}\n", left);
    /* Round two: a Frame, deleted here. */
    capslot_t frame;
    err = take(&frame, &core, &from);
    uint32_t type = err ? CAP_NULL : type_of(frame);
    errval_t del = err ? err : sys_cap_delete(frame);
    printf("@atoll {\"event\":\"capxfer_take\",\"step\":\"delete\",\"type\":\"%s\",\"error\":\"%s\"}\n",
           cap_type_name(type), err_name(del));
    return 0;
}

/* -- the giver ----------------------------------------------------------------------- */

/* Carve our RAM into one Frame: ERR_OK (then undone) while the receiver
 * has not reserved it, ERR_OVERLAP once it has. */
static errval_t carve(capslot_t ram)
{
    capslot_t f;
    errval_t err = slot_alloc(&f);
    if (err)
        return err;
    err = sys_cap_retype(ram, CAP_FRAME, RAM_BYTES, 0, 1, f);
    if (!err)
        sys_cap_delete(f);
    slot_free(f);
    return err;
}

static errval_t give(capslot_t cap, uint32_t core, uint64_t to)
{
    errval_t rerr = ERR_OK, err = monlmp_cap_give_rpc(monitor_lmp(), cap, core, to, &rerr);
    return err ? err : rerr;
}

static int giver(uint32_t core)
{
    struct idl_chan *mon = monitor_chan();
    capslot_t ram = 0, frame = 0;
    uint64_t peer = 0;
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, core, "capxfer take", 0, false, 0, &rerr, &peer);
    if (!err)
        err = rerr;
    if (!err)
        err = ram_alloc(RAM_BYTES, &ram);
    errval_t given = err ? err : give(ram, core, peer);
    /* Until the receiver's retype is agreed our own carve works. */
    errval_t overlap = ERR_OK;
    uint64_t t0 = now_ms();
    while (!given && (overlap = carve(ram)) == ERR_OK && now_ms() - t0 < WAIT_MS)
        nap();
    /* The receiver gives us a Frame of its core's when it has written:
     * we hold a FOREIGN copy; deleting it tells its owner core. */
    capslot_t back = 0;
    uint32_t back_core = 0;
    uint64_t back_from = 0;
    errval_t back_err = given ? given : take(&back, &back_core, &back_from);
    uint32_t back_type = back_err ? CAP_NULL : type_of(back);
    uint32_t back_flags = 0;
    if (!back_err) {
        struct cap_identity bid;
        sys_cap_identify(back, &bid);
        back_flags = bid.flags;
        back_err = sys_cap_delete(back);
    }
    errval_t alone = given ? given : sys_cap_revoke(ram);   /* refused: copies elsewhere */
    errval_t revoked = ERR_OK;
    if (!given)
        monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &revoked);
    errval_t again = given ? given : carve(ram);   /* the RAM is ours alone again */

    /* Round two: a Frame, deleted by the receiver. */
    errval_t fgiven = frame_alloc(4096, &frame);
    if (!fgiven)
        fgiven = give(frame, core, peer);
    errval_t fdel = fgiven;
    t0 = now_ms();
    while (!fgiven && (fdel = sys_cap_delete(frame)) == ERR_CAP_REMOTE && now_ms() - t0 < WAIT_MS)
        nap();

    /* What may not cross. */
    errval_t disp = give(SLOT_DISPATCHER, core, peer), cnode = give(SLOT_ROOT_CNODE, core, peer);
    errval_t self = ram_alloc(4096, &ram) ? ERR_NO_MEMORY : give(ram, si_core(), peer);
    printf("@atoll {\"event\":\"capxfer_give\",\"core\":%u,\"to_core\":%u,\"given\":\"%s\",\"overlap\":\"%s\","
           "\"revoke_alone\":\"%s\",\"revoked\":\"%s\",\"again\":\"%s\",\"frame_given\":\"%s\","
           "\"frame_deleted\":\"%s\",\"dispatcher\":\"%s\",\"cnode\":\"%s\",\"same_core\":\"%s\","
           "\"back\":\"%s\",\"back_core\":%u,\"back_flags\":%u,\"back_deleted\":\"%s\"}\n",
           si_core(), core, err_name(given), err_name(overlap), err_name(alone), err_name(revoked), err_name(again),
           err_name(fgiven), err_name(fdel), err_name(disp), err_name(cnode), err_name(self), cap_type_name(back_type),
           back_core, back_flags, err_name(back_err));
    return 0;
}


/* -- the `caps` benchmark ---------------------------------------------------------------- */
/*
 * On core 0: a sink on every other core; then, for H = 1, 2, 4 ... (and
 * every core but this one), ROUNDS times after one untimed round: a page of RAM given to the sinks
 * of cores 1..H, then revoked (or its original deleted) through the monitor,
 * timed from the call to its answer; once with the holders-only protocol,
 * once with the broadcast baseline (CAPOPS_BROADCAST: every core asked).
 * One event per (operation, protocol, H):
 *   @atoll {"event":"caps_bench","op":"revoke"|"delete","protocol":"holders"|"broadcast",
 *           "holders":H,"cores":N,"rounds":R,"median_ns":..,"min_ns":..,"max_ns":..,"failed":F}
 * The sinks take what they are given (so the copies are real), and end
 * when they take a Frame (the end of the run).
 */
#define BENCH_MAX_ROUNDS 101
#define BENCH_MAX_CORES 256

#define SINK_KEEP 64

/* Take what comes and let go at once (capxfer cycles), or with `keep`
 * every copy until it is revoked (its slot empties): for the benchmark, a
 * copy dropped at once would be released before the operation timed,
 * which would then find no holder at all (it measured that at first). */
static int sink(bool keep)
{
    static capslot_t kept[SINK_KEEP];
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < 30 * 60 * 1000) {
        for (uint32_t i = 0; i < SINK_KEEP; i++)
            if (kept[i] && type_of(kept[i]) == CAP_NULL) {
                slot_free(kept[i]);
                kept[i] = 0;
            }
        capslot_t c;
        uint32_t core;
        uint64_t from;
        errval_t rerr = ERR_OK, err = monlmp_cap_take_rpc(monitor_lmp(), &rerr, &c, &core, &from);
        if (err)
            return 1;
        if (rerr == ERR_WOULD_BLOCK) {
            sys_notify_wait(sys_notify_gen(), 2000, 0);
            continue;
        }
        if (rerr)
            continue;
        uint32_t type = type_of(c);
        if (type == CAP_FRAME) {
            cap_free(c);
            return 0;   /* the end; what is still kept goes with our CSpace */
        }
        uint32_t i = 0;
        while (i < SINK_KEEP && kept[i])
            i++;
        if (keep && i < SINK_KEEP && type != CAP_NULL)
            kept[i] = c;   /* until the benchmark's revoke or delete removes it */
        else
            cap_free(c);
    }
    return 1;
}

static void sort_u64(uint64_t *v, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

static int bench(uint32_t rounds, uint32_t maxh)
{
    static uint64_t sinks[BENCH_MAX_CORES], t[BENCH_MAX_ROUNDS];
    uint32_t n = si->ncores < BENCH_MAX_CORES ? si->ncores : BENCH_MAX_CORES;
    if (rounds < 1 || rounds > BENCH_MAX_ROUNDS)
        rounds = 21;
    if (maxh == 0 || maxh > n - 1)
        maxh = n - 1;
    struct idl_chan *mon = monitor_chan();
    for (uint32_t c = 1; c < n; c++) {
        errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, c, "capxfer sink keep", 0, false, 0, &rerr, &sinks[c]);
        if (err || rerr) {
            printf("capxfer bench: no sink on core %u: %s\n", c, err_name(err ? err : rerr));
            return 1;
        }
    }
    uint32_t hs[16], nh = 0;
    for (uint32_t h = 1; h < maxh && nh < 15; h *= 2)
        hs[nh++] = h;
    hs[nh++] = maxh;
    for (uint32_t op = 0; op < 2; op++)
        for (uint32_t i = 0; i < nh; i++)
            for (uint32_t proto = 0; proto < 2; proto++) {
                uint32_t h = hs[i], failed = 0, got = 0;
                for (uint32_t r = 0; r <= rounds; r++) {   /* round 0 warms up, untimed */
                    capslot_t ram;
                    errval_t err = ram_alloc(4096, &ram);
                    for (uint32_t c = 1; !err && c <= h; c++)
                        err = give(ram, c, sinks[c]);
                    errval_t rerr = ERR_OK;
                    /* The cost model's region (docs/costmodel.md): what
                     * every core moved for this one operation. */
                    if (op == 0)
                        cm_arg(op, CM_WORD_revoke);
                    else
                        cm_arg(op, CM_WORD_delete);
                    if (proto)
                        cm_arg(protocol, CM_WORD_broadcast);
                    else
                        cm_arg(protocol, CM_WORD_holders_only);
                    cm_arg(holders, h);
                    cm_arg(cores, n);
                    if (r > 0 && !err)
                        cm_begin(caps);
                    uint64_t t0 = urpc_os_now_ns();
                    if (!err)
                        err = op == 0 ? monlmp_cap_revoke_rpc(monitor_lmp(), ram, proto ? CAPOPS_BROADCAST : 0, &rerr)
                                      : monlmp_cap_delete_rpc(monitor_lmp(), ram,
                                                              (proto ? CAPOPS_BROADCAST : 0) | CAPOPS_WITH_COPIES,
                                                              &rerr);
                    uint64_t t1 = urpc_os_now_ns();
                    if (r > 0 && !err) {
                        cm_arg(ops, 1);
                        cm_end(caps);
                    }
                    if (err || rerr)
                        failed += r > 0;
                    else if (r > 0)
                        t[got++] = t1 - t0;
                    cap_free(ram);   /* after revoke: the original; after delete: an empty slot */
                }
                sort_u64(t, got);
                printf("@atoll {\"event\":\"caps_bench\",\"op\":\"%s\",\"protocol\":\"%s\",\"holders\":%u,"
                       "\"cores\":%u,\"rounds\":%u,\"median_ns\":%llu,\"min_ns\":%llu,\"max_ns\":%llu,"
                       "\"failed\":%u}\n",
                       op ? "delete" : "revoke", proto ? "broadcast" : "holders", h, n, got,
                       (unsigned long long)(got ? t[got / 2] : 0), (unsigned long long)(got ? t[0] : 0),
                       (unsigned long long)(got ? t[got - 1] : 0), failed);
            }
    /* The end: a Frame to every sink, and we wait until each has taken
     * and dropped it (our delete works again), since ending first would
     * revoke a Frame not taken yet and leave its sink waiting. */
    static capslot_t ends[BENCH_MAX_CORES];
    for (uint32_t c = 1; c < n; c++)
        if (!frame_alloc(4096, &ends[c]) && give(ends[c], c, sinks[c]))
            cap_free(ends[c]), ends[c] = 0;
    uint64_t t0 = now_ms();
    for (uint32_t c = 1; c < n; c++)
        while (ends[c] && sys_cap_delete(ends[c]) == ERR_CAP_REMOTE && now_ms() - t0 < WAIT_MS)
            nap();
    return 0;
}

/* -- a giver that ends with its RAM on another core ------------------------------------ */

/* Take one capability, say so by giving back a Frame, then wait until the
 * copy is gone (the giver's core reclaimed its RAM). */
static int keep(void)
{
    capslot_t ram, back;
    uint32_t core = 0;
    uint64_t from = 0;
    errval_t err = take(&ram, &core, &from);
    uint32_t type = err ? CAP_NULL : type_of(ram);
    if (!err && !(err = frame_alloc(4096, &back)))
        err = give(back, core, from);
    uint64_t t0 = now_ms();
    while (!err && type_of(ram) != CAP_NULL && now_ms() - t0 < WAIT_MS)
        nap();
    printf("@atoll {\"event\":\"capxfer_keep\",\"type\":\"%s\",\"error\":\"%s\",\"gone\":%s,\"ms\":%llu}\n",
           cap_type_name(type), err_name(err), !err && type_of(ram) == CAP_NULL ? "true" : "false",
           (unsigned long long)(now_ms() - t0));
    return 0;
}

static int orphan(uint32_t core, bool fault)
{
    struct idl_chan *mon = monitor_chan();
    capslot_t ram = 0, back = 0;
    uint32_t bcore = 0;
    uint64_t peer = 0, bfrom = 0;
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, core, "capxfer keep", 0, false, 0, &rerr, &peer);
    if (!err)
        err = rerr;
    if (!err)
        err = ram_alloc(RAM_BYTES, &ram);
    if (!err)
        err = give(ram, core, peer);
    if (!err)
        err = take(&back, &bcore, &bfrom);   /* the receiver holds its copy now */
    printf("@atoll {\"event\":\"capxfer_orphan\",\"error\":\"%s\",\"ends_by\":\"%s\"}\n", err_name(err),
           fault ? "fault" : "exit");
    stdout_flush();
    if (fault)
        *(volatile int *)0 = 1;
    return 0;   /* with the RAM and the Frame from the receiver still ours */
}

/* -- rights: every copy keeps its own ------------------------------------------------------ */

#define RIGHTS_GIVES 4

static int rights_take(void)
{
    char out[512];
    size_t n = 0;
    for (uint32_t i = 0; i < RIGHTS_GIVES; i++) {
        capslot_t c;
        uint32_t core;
        uint64_t from;
        errval_t err = take(&c, &core, &from);
        struct cap_identity id = { 0 };
        errval_t map = err;
        if (!err) {
            void *p;
            sys_cap_identify(c, &id);
            if (!(map = vspace_map_frame(c, MAP_WRITE, &p)))
                vspace_unmap_frame(c, p);
            sys_cap_delete(c);
        }
        n += (size_t)snprintf(out + n, sizeof out - n, "%s{\"error\":\"%s\",\"base\":%llu,\"rights\":%u,"
                              "\"map_write\":\"%s\"}", i ? "," : "", err_name(err), (unsigned long long)id.base,
                              id.rights, err_name(map));
    }
    printf("@atoll {\"event\":\"capxfer_rights_take\",\"core\":%u,\"took\":[%s]}\n", si_core(), out);
    return 0;
}

/* Give a copy of `frame` with `rights` (a copy if all, else a mint). */
static errval_t give_with(capslot_t frame, uint32_t rights, uint32_t core, uint64_t to)
{
    capslot_t s;
    errval_t err = slot_alloc(&s);
    if (!err && (err = rights == CAP_RIGHTS_ALL ? sys_cap_copy(frame, s) : sys_cap_mint(frame, s, rights, 0, 0, 0)))
        slot_free(s);
    return err ? err : give(s, core, to);
}

static int rights(uint32_t core)
{
    struct idl_chan *mon = monitor_chan();
    capslot_t f[2] = { 0, 0 };
    uint64_t peer = 0;
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, core, "capxfer rights-take", 0, false, 0, &rerr, &peer);
    if (!err)
        err = rerr;
    for (uint32_t i = 0; !err && i < 2; i++)
        err = frame_alloc(4096, &f[i]);
    /* f[0] in full then read-only; f[1] read-only then in full. */
    const uint32_t ro = CAP_RIGHT_READ;
    errval_t g[RIGHTS_GIVES] = { err, err, err, err };
    if (!err) {
        g[0] = give_with(f[0], CAP_RIGHTS_ALL, core, peer);
        g[1] = give_with(f[0], ro, core, peer);
        g[2] = give_with(f[1], ro, core, peer);
        g[3] = give_with(f[1], CAP_RIGHTS_ALL, core, peer);
    }
    uint64_t base[2] = { 0, 0 };
    errval_t del[2] = { err, err };
    for (uint32_t i = 0; !err && i < 2; i++) {
        struct cap_identity id;
        sys_cap_identify(f[i], &id);
        base[i] = id.base;
        uint64_t t0 = now_ms();
        while ((del[i] = sys_cap_delete(f[i])) == ERR_CAP_REMOTE && now_ms() - t0 < WAIT_MS)
            nap();
    }
    printf("@atoll {\"event\":\"capxfer_rights_give\",\"bases\":[%llu,%llu],\"given\":[\"%s\",\"%s\",\"%s\",\"%s\"],"
           "\"deleted\":[\"%s\",\"%s\"]}\n",
           (unsigned long long)base[0], (unsigned long long)base[1], err_name(g[0]), err_name(g[1]), err_name(g[2]),
           err_name(g[3]), err_name(del[0]), err_name(del[1]));
    return 0;
}

/* -- quotas: one domain at its limit, another unaffected ------------------------------------ */

#define QUOTA_BATCH 8   /* gives before the hoard's answers: under its mailbox's limit */
#define QUOTA_MAX (MON_CAPS_OBJECTS_PER_DOMAIN + 2 * QUOTA_BATCH)

/* Take one capability (an answer of the hoard's) and delete it. */
static errval_t take_and_drop(void)
{
    capslot_t c;
    uint32_t core;
    uint64_t from;
    errval_t err = take(&c, &core, &from);
    if (!err)
        err = sys_cap_delete(c);
    return err;
}

/* Keep every RAM given, answer each with a Frame of ours to its giver; end
 * at the first Frame. */
static int hoard(void)
{
    uint32_t kept = 0;
    for (;;) {
        capslot_t c, back;
        uint32_t core;
        uint64_t from;
        errval_t err = take(&c, &core, &from);
        if (err)
            break;
        if (type_of(c) == CAP_FRAME)
            break;
        kept++;
        if (!(err = frame_alloc(4096, &back))) {
            err = give(back, core, from);
            cap_free(back);   /* ours goes: the copy there keeps the Frame until its holder lets go */
        }
        if (err)
            printf("capxfer hoard: answer to %llu on core %u: %s\n", (unsigned long long)from, core,
                   err_name(err));
    }
    printf("@atoll {\"event\":\"capxfer_hoard\",\"kept\":%u}\n", kept);
    return 0;   /* what we kept goes with our CSpace: each owner hears it */
}

/* The other domain, on the hog's core: one RAM to the hoard (answered),
 * revoked, deleted; then it ends (the hog waits for that). */
static int quota_other(uint32_t core, uint64_t hoarder)
{
    capslot_t ram = 0;
    errval_t given = ram_alloc(4096, &ram);
    if (!given)
        given = give(ram, core, hoarder);
    errval_t answered = given ? given : take_and_drop();
    errval_t rerr = given, revoked = given ? given : monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &rerr);
    if (!revoked)
        revoked = rerr;
    errval_t deleted = given ? given : sys_cap_delete(ram);
    printf("@atoll {\"event\":\"capxfer_quota_other\",\"given\":\"%s\",\"answered\":\"%s\","
           "\"revoked\":\"%s\",\"deleted\":\"%s\"}\n",
           err_name(given), err_name(answered), err_name(revoked), err_name(deleted));
    return 0;
}

/* Until no domain of this core but us is left (monclient busy), at most WAIT_MS. */
static errval_t wait_alone(void)
{
    uint64_t t0 = now_ms();
    for (;;) {
        uint64_t n = 0;
        errval_t rerr = ERR_OK, err = monclient_busy_rpc(monitor_chan(), si_core(), &rerr, &n);
        if (err || rerr)
            return err ? err : rerr;
        if (n <= 1)
            return ERR_OK;
        if (now_ms() - t0 > WAIT_MS)
            return ERR_TIMEOUT;
        nap();
    }
}

static int quota_hog(uint32_t core)
{
    static capslot_t rams[QUOTA_MAX];
    struct idl_chan *mon = monitor_chan();
    uint64_t peer = 0, other = 0;
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, core, "capxfer hoard", 0, false, 0, &rerr, &peer);
    if (!err)
        err = rerr;
    uint32_t given = 0, answers = 0;
    errval_t refused = ERR_OK, answer_err = ERR_OK;
    while (!err && given < QUOTA_MAX) {
        capslot_t ram;
        if ((err = ram_alloc(4096, &ram)))
            break;
        if ((refused = give(ram, core, peer))) {
            cap_free(ram);
            break;
        }
        rams[given++] = ram;
        /* Wait for the hoard's answers now and then: the copies are taken
         * and kept there, so each object stays recorded here. */
        while (given - answers >= QUOTA_BATCH && !answer_err && !(answer_err = take_and_drop()))
            answers++;
    }
    while (!err && answers < given && !answer_err && !(answer_err = take_and_drop()))
        answers++;
    /* Another domain of this core works as usual meanwhile. */
    char cmd[96];
    snprintf(cmd, sizeof cmd, "capxfer quota-other %u %llu", core, (unsigned long long)peer);
    errval_t other_err = err ? err : monclient_spawn_rpc(mon, si_core(), cmd, 0, false, 0, &rerr, &other);
    if (!other_err)
        other_err = rerr;
    errval_t other_done = other_err ? other_err : wait_alone();
    /* One of ours revoked: the record goes, and a give works again. */
    errval_t freed = given ? ERR_OK : ERR_NOT_FOUND, again = ERR_NOT_FOUND;
    if (given && !(err = monlmp_cap_revoke_rpc(monitor_lmp(), rams[0], 0, &freed)) && !freed &&
        !(again = give(rams[0], core, peer)))
        again = take_and_drop();
    /* The end: a Frame to the hoard (room for it: rams[0] revoked once
     * more), which ends; its copies go with it, and then our deletes work. */
    capslot_t end;
    errval_t ended = again ? again : monlmp_cap_revoke_rpc(monitor_lmp(), rams[0], 0, &rerr);
    if (!ended)
        ended = rerr;
    if (!ended)
        ended = frame_alloc(4096, &end);
    if (!ended && !(ended = give(end, core, peer)))
        cap_free(end);
    uint32_t left = given;
    uint64_t t0 = now_ms();
    for (uint32_t i = 0; i < given; i++) {
        while (sys_cap_delete(rams[i]) == ERR_CAP_REMOTE && now_ms() - t0 < WAIT_MS)
            nap();
        left -= type_of(rams[i]) == CAP_NULL;
    }
    printf("@atoll {\"event\":\"capxfer_quota\",\"core\":%u,\"to_core\":%u,\"error\":\"%s\",\"given\":%u,"
           "\"refused\":\"%s\",\"answers\":%u,\"answer_error\":\"%s\",\"other\":\"%s\",\"other_done\":\"%s\","
           "\"freed\":\"%s\",\"again\":\"%s\",\"ended\":\"%s\",\"left\":%u}\n",
           si_core(), core, err_name(err), given, err_name(refused), answers, err_name(answer_err),
           err_name(other_err), err_name(other_done), err_name(freed), err_name(again), err_name(ended), left);
    return 0;
}

/* -- the object lives until its last copy goes ---------------------------------------------- */

#define PATTERN 0xa5

static errval_t carve_frame(capslot_t ram, capslot_t *f)
{
    errval_t err = slot_alloc(f);
    if (!err && (err = sys_cap_retype(ram, CAP_FRAME, 4096, 0, 1, *f)))
        slot_free(*f);
    return err;
}

static int handover_take(void)
{
    capslot_t f = 0, back = 0, go = 0;
    uint32_t core = 0, gcore;
    uint64_t from = 0, gfrom;
    errval_t err = take(&f, &core, &from);
    /* Say we hold it: a Frame of ours, deleted by the giver. */
    if (!err && !(err = frame_alloc(4096, &back)))
        err = give(back, core, from);
    /* The giver deleted its original when it gives us the next one. */
    errval_t went = err ? err : take(&go, &gcore, &gfrom);
    uint32_t read = 0;
    errval_t mapped = went;
    if (!went) {
        sys_cap_delete(go);
        void *p;
        if (!(mapped = vspace_map_frame(f, MAP_WRITE, &p))) {
            for (uint32_t i = 0; i < 4096; i++)
                read += ((volatile uint8_t *)p)[i] == PATTERN;
            vspace_unmap_frame(f, p);
        }
    }
    errval_t deleted = err ? err : sys_cap_delete(f);   /* the last copy: the object goes on its core */
    printf("@atoll {\"event\":\"capxfer_handover_take\",\"error\":\"%s\",\"went\":\"%s\",\"mapped\":\"%s\","
           "\"read\":%u,\"deleted\":\"%s\"}\n",
           err_name(err), err_name(went), err_name(mapped), read, err_name(deleted));
    return 0;
}

static int handover(uint32_t core)
{
    struct idl_chan *mon = monitor_chan();
    capslot_t ram = 0, f = 0, f2 = 0, go = 0;
    uint64_t peer = 0;
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, core, "capxfer handover-take", 0, false, 0, &rerr, &peer);
    if (!err)
        err = rerr;
    if (!err)
        err = ram_alloc(4096, &ram);
    if (!err)
        err = carve_frame(ram, &f);
    if (!err) {
        void *p;
        if (!(err = vspace_map_frame(f, MAP_WRITE, &p))) {
            memset(p, PATTERN, 4096);
            vspace_unmap_frame(f, p);
        }
    }
    if (!err)
        err = give(f, core, peer);
    if (!err)
        err = take_and_drop();   /* it holds its copy */
    /* Alone the kernel refuses (a copy lives elsewhere); through the monitor
     * the original goes at once, the object stays. */
    errval_t alone = err ? err : sys_cap_delete(f);
    errval_t deleted = err, gone = err;
    if (!err && !(deleted = monlmp_cap_delete_rpc(monitor_lmp(), f, 0, &rerr)))
        deleted = rerr;
    if (!deleted)
        gone = type_of(f) == CAP_NULL ? ERR_OK : ERR_CAP_OCCUPIED;
    if (!deleted)
        slot_free(f);
    /* Its range is still taken in our RAM: the copy there holds it. */
    errval_t held = deleted ? deleted : carve_frame(ram, &f2);
    if (!held)
        cap_free(f2);
    errval_t told = deleted;
    if (!deleted && !(told = frame_alloc(4096, &go)))
        told = give(go, core, peer);
    /* Once the copy there goes, the object goes here, and the range is free. */
    errval_t freed = told;
    uint64_t t0 = now_ms();
    while (!told && (freed = carve_frame(ram, &f2)) == ERR_OVERLAP && now_ms() - t0 < WAIT_MS)
        nap();
    if (!freed)
        cap_free(f2);
    t0 = now_ms();
    while (go && sys_cap_delete(go) == ERR_CAP_REMOTE && now_ms() - t0 < WAIT_MS)
        nap();
    printf("@atoll {\"event\":\"capxfer_handover\",\"error\":\"%s\",\"alone\":\"%s\",\"deleted\":\"%s\","
           "\"gone\":\"%s\",\"held\":\"%s\",\"told\":\"%s\",\"freed\":\"%s\"}\n",
           err_name(err), err_name(alone), err_name(deleted), err_name(gone), err_name(held), err_name(told),
           err_name(freed));
    return 0;
}

/* -- randomized operations from several cores --------------------------------------------- */

#define CHAOS_OWN 8      /* objects a domain owns and gives at a time */
#define CHAOS_HELD 16    /* copies (and carves) a domain keeps at a time */
#define PAUSED_BYTES 8192
#define END_BYTES 12288

static uint64_t rnd_state;
static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 6364136223846793005ull + 1442695040888963407ull;
    return n ? (uint32_t)(rnd_state >> 33) % n : 0;
}

static uint32_t bytes_of(capslot_t s)
{
    struct cap_identity id;
    return sys_cap_identify(s, &id) ? 0 : (uint32_t)id.bytes;
}

/* *_locked: ERR_CAP_LOCKED, the right answer while another core's revoke,
 * ask or move of the object is under way; *_err: any other error. */
struct chaos_counts {
    uint32_t gives, give_err, give_locked, takes, deletes, revokes, revoke_err, revoke_locked, handovers, retypes,
        retype_err, hrevokes, hrevoke_err, hrevoke_locked, giveons, giveon_err, giveon_refused, taken_away, steps;
    errval_t last_err;   /* the last error counted in *_err, for the reader */
    uint64_t t0, rounds_ms;   /* when the steps began; how long its rounds took (0: not done yet) */
};

/* Whether this domain has done every kind of operation at least once. A
 * held step can only act on what others have given by then, and on a slow
 * host a domain may run all its rounds before much has arrived: it then
 * goes on until it has, so the test sees every kind whatever the host's
 * speed, but no longer than its rounds took (a kind the others, paused
 * by then, can no longer make possible must not keep it for minutes) and
 * CHAOS_MORE_ROUNDS times its rounds at most. */
#define CHAOS_MORE_ROUNDS 8
static bool chaos_covered(const struct chaos_counts *c)
{
    return c->gives && c->takes && c->deletes && c->revokes && c->handovers && c->retypes && c->hrevokes &&
           c->giveons;
}

static bool chaos_go_on(uint32_t rounds, struct chaos_counts *c)
{
    if (!c->t0)
        c->t0 = now_ms() | 1;
    if (c->steps < rounds)
        return true;
    if (!c->rounds_ms)
        c->rounds_ms = (now_ms() - c->t0) | 1;
    return !chaos_covered(c) && c->steps < CHAOS_MORE_ROUNDS * rounds && now_ms() - c->t0 < 2 * c->rounds_ms;
}

static void counts_print(const char *who, uint32_t core, const struct chaos_counts *c)
{
    printf("@atoll {\"event\":\"capxfer_chaos_%s\",\"core\":%u,\"gives\":%u,\"give_err\":%u,"
           "\"give_locked\":%u,\"takes\":%u,\"deletes\":%u,\"revokes\":%u,\"revoke_err\":%u,"
           "\"revoke_locked\":%u,\"handovers\":%u,\"retypes\":%u,\"retype_err\":%u,\"hrevokes\":%u,"
           "\"hrevoke_err\":%u,\"hrevoke_locked\":%u,\"giveons\":%u,\"giveon_err\":%u,\"giveon_refused\":%u,"
           "\"taken_away\":%u,\"steps\":%u,\"last_err\":\"%s\"}\n",
           who, core, c->gives, c->give_err, c->give_locked, c->takes, c->deletes, c->revokes, c->revoke_err,
           c->revoke_locked, c->handovers, c->retypes, c->retype_err, c->hrevokes, c->hrevoke_err, c->hrevoke_locked,
           c->giveons, c->giveon_err, c->giveon_refused, c->taken_away, c->steps, err_name(c->last_err));
}

/* One step on what this domain owns (its own RAM, given to other cores). */
static void chaos_own_step(capslot_t *own, uint32_t ncores_to, const uint32_t *cores, const uint64_t *ids,
                           struct chaos_counts *k)
{
    uint32_t i = rnd(CHAOS_OWN), what = rnd(10);
    if (own[i] && type_of(own[i]) == CAP_NULL) {
        /* A holder's revoke took the original (every copy but the one
         * revoked goes, ours too): ownership moved to that core. */
        slot_free(own[i]);
        own[i] = 0;
        k->taken_away++;
    }
    if (!own[i]) {
        if (ram_alloc(rnd(2) ? 4096 : 16384, &own[i]))
            own[i] = 0;
        return;
    }
    errval_t rerr = ERR_OK, err;
    if (what < 6) {
        uint32_t t = rnd(ncores_to);
        err = give(own[i], cores[t], ids[t]);
        k->gives++;
        /* ERR_CAP_EMPTY: a holder's revoke took it since we looked */
        bool fine = err == ERR_OK || err == ERR_CAP_LOCKED || err == ERR_CAP_EMPTY;
        k->give_locked += err == ERR_CAP_LOCKED;
        k->give_err += !fine;
        k->last_err = !fine ? err : k->last_err;
    } else if (what < 8) {
        err = monlmp_cap_revoke_rpc(monitor_lmp(), own[i], 0, &rerr);
        k->revokes++;
        k->revoke_locked += !err && rerr == ERR_CAP_LOCKED;
        k->revoke_err += err || (rerr && rerr != ERR_CAP_LOCKED && rerr != ERR_CAP_EMPTY);
    } else {
        /* Delete: handed over (the copies live on) or with every copy. */
        uint32_t flags = rnd(2) ? CAPOPS_WITH_COPIES : 0;
        err = monlmp_cap_delete_rpc(monitor_lmp(), own[i], flags, &rerr);
        if (!err && !rerr) {
            k->handovers += !flags;
            k->deletes++;
            slot_free(own[i]);   /* empty now; its pages stay with the object until it goes */
            own[i] = 0;
        } else if (!err && rerr == ERR_CAP_LOCKED) {
            k->revoke_locked++;
        } else if (!err && rerr == ERR_CAP_EMPTY) {
            ;   /* a holder's revoke took it since we looked: the next step sweeps it */
        } else {
            k->revoke_err++;
        }
    }
}

/* Copies a revoke elsewhere (or ours) emptied: their slots are free again. */
static void chaos_sweep(capslot_t *held_copies)
{
    for (uint32_t i = 0; i < CHAOS_HELD; i++)
        if (held_copies[i] && type_of(held_copies[i]) == CAP_NULL) {
            slot_free(held_copies[i]);
            held_copies[i] = 0;
        }
}

/* One step on what others gave this domain: take, delete, retype through
 * the owner, revoke through our monitor (the copies on the other cores go;
 * a copy of an object that moved here: every holder's), give on to the
 * domain `to` of core `to_core` (through the owner; refused to the owner
 * core itself, ERR_NOT_PERMITTED, and while the object is locked). */
static void chaos_held_step(capslot_t *held_copies, struct chaos_counts *k, uint32_t *paused, uint32_t *ended,
                            uint32_t to_core, uint64_t to)
{
    uint32_t what = rnd(14);
    if (what >= 10) {
        uint32_t i = rnd(CHAOS_HELD);
        if (!held_copies[i] || type_of(held_copies[i]) == CAP_NULL)
            return;
        errval_t rerr = ERR_OK, err;
        if (what < 12) {
            err = monlmp_cap_revoke_rpc(monitor_lmp(), held_copies[i], 0, &rerr);
            err = err ? err : rerr;
            k->hrevokes++;
            k->hrevoke_locked += err == ERR_CAP_LOCKED;
            /* ERR_CAP_EMPTY: an owner's revoke took it since we looked */
            if (err && err != ERR_CAP_LOCKED && err != ERR_CAP_EMPTY) {
                k->hrevoke_err++;
                k->last_err = err;
            }
            chaos_sweep(held_copies);
        } else {
            uint32_t type = type_of(held_copies[i]);
            if (type != CAP_RAM && type != CAP_FRAME)
                return;
            err = give(held_copies[i], to_core, to);
            k->giveons++;
            /* ERR_QUOTA: the grants the object's domain has waiting for
             * their answers (it pays for a give-on: MON_CAPS_GRANTS_PER_DOMAIN);
             * ERR_CAP_EMPTY: a revoke elsewhere took the copy since we looked
             * (as for an owner's give, chaos_own_step) */
            bool refused = err == ERR_CAP_LOCKED || err == ERR_NOT_PERMITTED || err == ERR_QUOTA ||
                           err == ERR_CAP_EMPTY;
            k->giveon_refused += refused;
            if (err && !refused) {
                k->giveon_err++;
                k->last_err = err;
            }
        }
        return;
    }
    if (what < 5) {
        capslot_t c;
        uint32_t core;
        uint64_t from;
        errval_t rerr = ERR_OK, err = monlmp_cap_take_rpc(monitor_lmp(), &rerr, &c, &core, &from);
        if (err || rerr)
            return;
        k->takes++;
        uint32_t b = type_of(c) == CAP_FRAME ? bytes_of(c) : 0;
        if (b == PAUSED_BYTES || b == END_BYTES) {
            *(b == PAUSED_BYTES ? paused : ended) += 1;
            sys_cap_delete(c);
            slot_free(c);
            return;
        }
        uint32_t i = rnd(CHAOS_HELD);
        if (held_copies[i] && !sys_cap_delete(held_copies[i]))
            slot_free(held_copies[i]);
        held_copies[i] = c;
    } else if (what < 8) {
        uint32_t i = rnd(CHAOS_HELD);
        if (held_copies[i] && !sys_cap_delete(held_copies[i])) {
            slot_free(held_copies[i]);
            held_copies[i] = 0;
            k->deletes++;
        }
    } else {
        /* Retype a held RAM copy through the monitor: a page at random. */
        uint32_t i = rnd(CHAOS_HELD), j = rnd(CHAOS_HELD);
        if (!held_copies[i] || type_of(held_copies[i]) != CAP_RAM || held_copies[j])
            return;
        capslot_t f;
        if (slot_alloc(&f))
            return;
        errval_t rerr = ERR_OK;
        uint64_t off = (uint64_t)rnd(bytes_of(held_copies[i]) / 4096) * 4096;
        errval_t err = monlmp_cap_retype_rpc(monitor_lmp(), held_copies[i], CAP_FRAME, 4096, off, 1, f, &rerr);
        k->retypes++;
        if (err || rerr) {
            k->retype_err++;
            slot_free(f);
        } else {
            held_copies[j] = f;
        }
    }
}

static void chaos_drop_all(capslot_t *own, capslot_t *held_copies)
{
    for (uint32_t i = 0; i < CHAOS_HELD; i++)
        if (held_copies[i] && !sys_cap_delete(held_copies[i])) {
            slot_free(held_copies[i]);
            held_copies[i] = 0;
        }
    for (uint32_t i = 0; i < CHAOS_OWN; i++)
        if (own[i]) {
            errval_t rerr = ERR_OK;
            if (!monlmp_cap_delete_rpc(monitor_lmp(), own[i], CAPOPS_WITH_COPIES, &rerr) && !rerr) {
                slot_free(own[i]);
                own[i] = 0;
            }
        }
}

static int chaos_worker(uint32_t rounds, uint32_t seed, uint64_t coordinator)
{
    static capslot_t own[CHAOS_OWN], held_copies[CHAOS_HELD];
    struct chaos_counts k = { 0 };
    uint32_t paused = 0, ended = 0;
    rnd_state = seed * 2654435761ull + si_core();
    const uint32_t to_core = 0;
    for (; chaos_go_on(rounds, &k); k.steps++) {
        if (rnd(2))
            chaos_own_step(own, 1, &to_core, &coordinator, &k);
        else
            chaos_held_step(held_copies, &k, &paused, &ended, to_core, coordinator);
    }
    /* Paused: tell the coordinator (a Frame it knows by its size) until it
     * answers with one (a grant may be refused when its mailbox is full),
     * keep everything until it has ended (core 0 has no domain of ours
     * left): an end told by a capability could be refused, the
     * coordinator being at its own limit with what we keep. */
    uint64_t t0 = now_ms(), told = 0;
    bool acked = false;
    while (!ended && now_ms() - t0 < 10 * WAIT_MS) {
        if (now_ms() - told > 1000) {
            capslot_t mark;
            uint64_t busy = 1;
            errval_t rerr = ERR_OK;
            if (!acked && !frame_alloc(PAUSED_BYTES, &mark) && give(mark, 0, coordinator))
                cap_free(mark);
            if (acked && !monclient_busy_rpc(monitor_chan(), 0, &rerr, &busy) && !rerr && busy == 0)
                ended++;
            told = now_ms();
        }
        capslot_t c;
        uint32_t core;
        uint64_t from;
        errval_t rerr = ERR_OK, err = monlmp_cap_take_rpc(monitor_lmp(), &rerr, &c, &core, &from);
        if (err)
            break;
        if (rerr == ERR_WOULD_BLOCK) {
            nap();
            continue;
        }
        if (rerr)
            continue;
        if (type_of(c) == CAP_FRAME && bytes_of(c) == END_BYTES)
            ended++;
        if (type_of(c) == CAP_FRAME && bytes_of(c) == PAUSED_BYTES)
            acked = true;
        sys_cap_delete(c);   /* given while paused: not kept */
        slot_free(c);
    }
    chaos_drop_all(own, held_copies);
    counts_print("worker", si_core(), &k);
    return 0;   /* the rest (the pause mark, anything still refused) goes with our CSpace */
}

static int chaos(uint32_t rounds, uint32_t workers, uint32_t seed)
{
    static capslot_t own[CHAOS_OWN], held_copies[CHAOS_HELD];
    static uint64_t ids[BENCH_MAX_CORES];
    static uint32_t cores[BENCH_MAX_CORES];
    static char dump[2][BENCH_MAX_CORES][3001];
    struct idl_chan *mon = monitor_chan();
    struct chaos_counts k = { 0 };
    uint32_t paused = 0, ended = 0;
    if (workers < 1 || workers >= si->ncores)
        workers = si->ncores - 1;
    rnd_state = seed * 2654435761ull;
    for (uint32_t w = 0; w < workers; w++) {
        char cmd[96];
        cores[w] = w + 1;
        snprintf(cmd, sizeof cmd, "capxfer chaos-worker %u %u %u", rounds, seed + w, si->domain_id);
        errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, cores[w], cmd, 0, false, 0, &rerr, &ids[w]);
        if (err || rerr) {
            printf("capxfer chaos: no worker on core %u: %s\n", cores[w], err_name(err ? err : rerr));
            return 1;
        }
    }
    for (; chaos_go_on(rounds, &k); k.steps++) {
        if (rnd(2))
            chaos_own_step(own, workers, cores, ids, &k);
        else {
            uint32_t t = rnd(workers);
            chaos_held_step(held_copies, &k, &paused, &ended, cores[t], ids[t]);
        }
    }
    /* Until every worker has paused: each says so until we answer. */
    static bool worker_paused[BENCH_MAX_CORES];
    paused = 0;
    uint64_t t0 = now_ms();
    while (paused < workers && now_ms() - t0 < 5 * WAIT_MS) {
        capslot_t c;
        uint32_t core;
        uint64_t from;
        errval_t rerr = ERR_OK, err = monlmp_cap_take_rpc(monitor_lmp(), &rerr, &c, &core, &from);
        if (err)
            break;
        if (rerr) {
            nap();
            continue;
        }
        uint32_t b = type_of(c) == CAP_FRAME ? bytes_of(c) : 0;
        if (b == PAUSED_BYTES && core < BENCH_MAX_CORES) {
            capslot_t ack;
            paused += !worker_paused[core];
            worker_paused[core] = true;
            if (!frame_alloc(PAUSED_BYTES, &ack) && give(ack, core, from))
                cap_free(ack);
        }
        uint32_t i = rnd(CHAOS_HELD);
        if (b != PAUSED_BYTES && !held_copies[i])
            held_copies[i] = c;   /* kept: part of what is checked */
        else {
            sys_cap_delete(c);
            slot_free(c);
        }
    }
    /* Everyone paused: the monitors' records, until two rounds agree (what
     * was in flight has landed). */
    uint32_t n = workers + 1, tries = 0, cur = 0;
    bool settled = false;
    while (!settled && tries++ < 40) {
        cur = tries & 1;
        for (uint32_t c = 0; c < n; c++) {
            static uint8_t replybuf[monclient_caps_reply_size_max];
            errval_t rerr = ERR_OK;
            const char *json = 0;
            dump[cur][c][0] = 0;
            if (!monclient_caps_rpc(mon, c, &rerr, &json, replybuf, sizeof replybuf) && !rerr && json)
                snprintf(dump[cur][c], sizeof dump[cur][c], "%s", json);
        }
        settled = tries > 1;
        for (uint32_t c = 0; c < n && settled; c++)
            settled = dump[cur][c][0] && !strcmp(dump[0][c], dump[1][c]);
        if (!settled)
            nap();
    }
    for (uint32_t c = 0; c < n; c++)
        printf("@atoll {\"event\":\"capxfer_chaos_records\",\"records\":%s}\n",
               dump[cur][c][0] ? dump[cur][c] : "null");
    printf("@atoll {\"event\":\"capxfer_chaos_paused\",\"workers\":%u,\"paused\":%u,\"settled\":%s,"
           "\"tries\":%u}\n", workers, paused, settled ? "true" : "false", tries);
    stdout_flush();
    /* The end: our copies go, then a mark to each worker, then ours. */
    for (uint32_t i = 0; i < CHAOS_HELD; i++)
        if (held_copies[i] && !sys_cap_delete(held_copies[i])) {
            slot_free(held_copies[i]);
            held_copies[i] = 0;
        }
    chaos_drop_all(own, held_copies);   /* then we end, and the workers with us */
    counts_print("coordinator", si_core(), &k);
    return 0;
}

/* -- many cycles ----------------------------------------------------------------------------- */

#define CYCLES_IN_FLIGHT 8

static int cycles(uint32_t n, uint32_t core)
{
    static capslot_t ram[CYCLES_IN_FLIGHT];
    struct idl_chan *mon = monitor_chan();
    uint64_t peer = 0;
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(mon, core, "capxfer sink", 0, false, 0, &rerr, &peer);
    if (!err)
        err = rerr;
    uint32_t given = 0, done = 0, refused = 0;
    uint64_t t0 = now_ms(), last_move = t0;
    /* Each slot: give a page, and once the sink's copy is gone (our delete
     * works) give the next. Nothing moving for WAIT_MS: stop and say so. */
    while (!err && done < n && now_ms() - last_move < WAIT_MS) {
        bool moved = false;
        for (uint32_t i = 0; i < CYCLES_IN_FLIGHT && !err; i++) {
            if (ram[i]) {
                if (cap_free(ram[i]) == ERR_CAP_REMOTE)   /* the pages go back to our allocator too */
                    continue;
                ram[i] = 0;
                done++;
                moved = true;
            }
            if (given < n) {
                if ((err = ram_alloc(4096, &ram[i])))
                    break;
                errval_t e = give(ram[i], core, peer);
                refused += e != ERR_OK;
                given++;
                moved = true;
            }
        }
        if (!moved)
            sys_notify_wait(sys_notify_gen(), 200, 0);
        else
            last_move = now_ms();
    }
    uint32_t stuck = 0;
    for (uint32_t i = 0; i < CYCLES_IN_FLIGHT; i++)
        stuck += ram[i] != 0;
    uint64_t ms = now_ms() - t0;
    /* The sink ends on a Frame. */
    capslot_t end;
    if (!frame_alloc(4096, &end) && !give(end, core, peer)) {
        uint64_t t1 = now_ms();
        while (sys_cap_delete(end) == ERR_CAP_REMOTE && now_ms() - t1 < WAIT_MS)
            nap();
    }
    printf("@atoll {\"event\":\"capxfer_cycles\",\"error\":\"%s\",\"asked\":%u,\"given\":%u,\"done\":%u,"
           "\"refused\":%u,\"stuck\":%u,\"ms\":%llu}\n",
           err_name(err), n, given, done, refused, stuck, (unsigned long long)ms);
    return 0;
}

/* -- what the monitor owns does not cross ------------------------------------------------- */

/* A copy of our channel's frame (the monitor's own: it frees it when the
 * connection closes) given to another core: refused. */
static int chanframe(uint32_t core)
{
    struct service_chan sc;
    capslot_t s = 0;
    errval_t err = names_connect(&sc);
    errval_t given = err;
    if (!err && !(given = slot_alloc(&s)) && !(given = sys_cap_copy(sc.frame, s)))
        given = give(s, core, 0);
    if (!err)
        service_chan_close(&sc, ERR_OK);
    printf("@atoll {\"event\":\"capxfer_chanframe\",\"connect\":\"%s\",\"given\":\"%s\"}\n", err_name(err),
           err_name(given));
    return 0;
}

int main(int argc, char **argv)
{
    si = startup();
    errval_t err = monitor_connect();
    if (err) {
        printf("capxfer: no monitor: %s\n", err_name(err));
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "take"))
        return receiver();
    if (argc > 1 && !strcmp(argv[1], "sink"))
        return sink(argc > 2 && !strcmp(argv[2], "keep"));
    if (argc > 1 && !strcmp(argv[1], "keep"))
        return keep();
    if (argc > 2 && !strcmp(argv[1], "chanframe"))
        return chanframe(arg_number(argv[2], 1));
    if (argc > 4 && !strcmp(argv[1], "chaos-worker"))
        return chaos_worker(arg_number(argv[2], 100), arg_number(argv[3], 1), arg_number(argv[4], 0));
    if (argc > 1 && !strcmp(argv[1], "chaos"))
        return chaos(argc > 2 ? arg_number(argv[2], 200) : 200, argc > 3 ? arg_number(argv[3], 0) : 0,
                     argc > 4 ? arg_number(argv[4], 1) : 1);
    if (argc > 2 && !strcmp(argv[1], "cycles"))
        return cycles(arg_number(argv[2], 10000), argc > 3 ? arg_number(argv[3], 1) : 1);
    if (argc > 1 && !strcmp(argv[1], "handover-take"))
        return handover_take();
    if (argc > 2 && !strcmp(argv[1], "handover"))
        return handover(arg_number(argv[2], 1));
    if (argc > 1 && !strcmp(argv[1], "hoard"))
        return hoard();
    if (argc > 3 && !strcmp(argv[1], "quota-other"))
        return quota_other(arg_number(argv[2], 1), arg_number(argv[3], 0));
    if (argc > 2 && !strcmp(argv[1], "quota"))
        return quota_hog(arg_number(argv[2], 1));
    if (argc > 1 && !strcmp(argv[1], "rights-take"))
        return rights_take();
    if (argc > 2 && !strcmp(argv[1], "rights"))
        return rights(arg_number(argv[2], 1));
    if (argc > 2 && !strcmp(argv[1], "orphan"))
        return orphan(arg_number(argv[2], 1), argc > 3 && !strcmp(argv[3], "fault"));
    if (argc > 1 && !strcmp(argv[1], "bench"))
        return bench(argc > 2 ? arg_number(argv[2], 21) : 21, argc > 3 ? arg_number(argv[3], 0) : 0);
    if (argc < 2) {
        printf("usage: capxfer CORE\n");
        return 1;
    }
    return giver(arg_number(argv[1], 1));
}
