/*
 * capholder: what holder cores do with copies of other cores' objects
 * (monitor/capops.c, docs/capabilities.md "Across cores";
 * tests/test_capops.py). Not in the default image (every program there
 * takes guest memory: tests/test_boot_failures.py): the tests boot it with
 * user_modules(extra=("capholder",)).
 *
 *   capholder sibling C1 C2  RAM given to a domain on C1 (`capholder
 *                       sibling-revoke`) and one on C2 (`capholder
 *                       sibling-keep`, which carves a Frame from it);
 *                       the one on C1 (given two copies) revokes one
 *                       through its monitor: the copy and Frame on C2 go,
 *                       and the other copy on C1, and the giver's original
 *                       on core 0; the revoked copy stays, and C1 becomes
 *                       the owner (it retypes its copy alone); the owner's
 *                       records (before, after) show C2 gone; then C1
 *                       deletes its copy and core 0 keeps no record
 *   capholder ownerrev C1 C2  RAM with a second copy and a Frame carved
 *                       from that copy on core 0, given to a domain on C1
 *                       (`capholder ownerrev-revoke`) and one on C2
 *                       (`capholder ownerrev-keep`, which carves a Frame);
 *                       the one on C1 revokes its copy through its monitor:
 *                       core 0's original, copy and Frame go, C2's copy and
 *                       Frame go, C1's copy stays and C1 is the owner (the
 *                       records of all three); C1 deletes it: no record
 *   capholder ownerrev C1 C2 lent  the same, but C1's copy was given without
 *                       CAP_RIGHT_GRANT (a lent copy, as the memory service
 *                       gives): its revoke takes C2's copies only; core 0's
 *                       stay and core 0 stays the owner; then core 0
 *                       revokes its RAM, which takes C1's copy: no record
 *   capholder giveon C1 C2  RAM given to a domain on C1 (`capholder giveon-mid`),
 *                       which gives it on to one on C2 (`capholder
 *                       giveon-end`) through the owner (and, refused, back
 *                       to the owner core); the one on C2 carves from it
 *                       with the owner's agreement; the owner's records
 *                       show both cores; the giver's revoke takes both
 *   capholder deadholder DEAD LIVE  RAM given to a domain on DEAD and one on
 *                       LIVE (`capxfer keep`); when DEAD has been fenced
 *                       (the test makes it panic) the owner's records name
 *                       LIVE alone, and the giver's revoke waits for it
 *                       only
 *   capholder caught DEAD LIVE  operations caught at the fence: RAM given
 *                       to a domain on DEAD and one on LIVE, and RAM a
 *                       domain on DEAD (`capholder caught-owner`) gives to
 *                       one on LIVE (`capholder caught-holder`); once core
 *                       0 suspects DEAD (the test makes it panic; not
 *                       fenced yet) our revoke waits for DEAD and ends at
 *                       the fence (ERR_OK), and LIVE's revoke through the
 *                       dead owner ends there with ERR_CORE_DOWN
 *   capholder move C1 C2  RAM carved from the giver's RAM given to a domain on
 *                       C1 (`capholder move-owner`) and one on C2 (`capholder
 *                       move-keep`, which carves a Frame from its first
 *                       page with the owner's agreement); the giver deletes
 *                       its original through its monitor, and nothing of
 *                       it is left on core 0: ownership moves to C1. The
 *                       records of all three before and after; the range
 *                       stays taken in the giver's RAM; on C1 the domain
 *                       then retypes its copy without asking anyone (the
 *                       page carved on C2 refused: ERR_OVERLAP), revokes
 *                       it through its monitor (C2's copy and Frame go),
 *                       deletes it: the range in the giver's RAM is free
 */
#include <atoll/lib.h>
#include <atoll/monitor_client.h>
#include <if/monclient_if.h>
#include <if/monlmp_if.h>

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

static errval_t give(capslot_t cap, uint32_t core, uint64_t to)
{
    errval_t rerr = ERR_OK, err = monlmp_cap_give_rpc(monitor_lmp(), cap, core, to, &rerr);
    return err ? err : rerr;
}

/* Take one capability (a holder's word) and delete it. */
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

/* -- a holder's revoke reaches its siblings on other cores ---------------------------------- */

#define SIBLING_BYTES (16u << 10)

/* A fresh block of RAM given to two keepers (`capxfer keep`, domains da on
 * core a and db on core b), once each has said it holds it. */
static errval_t give_to_keepers(capslot_t *ram, uint32_t a, uint64_t da, uint32_t b, uint64_t db)
{
    errval_t err = ram_alloc(SIBLING_BYTES, ram);
    if (!err)
        err = give(*ram, a, da);
    if (!err)
        err = give(*ram, b, db);
    if (!err)
        err = take_and_drop();
    if (!err)
        err = take_and_drop();
    return err;
}

/* One monitor's records (monclient caps), as JSON, or "null". */
static void records_of(uint32_t core, char *out, size_t size)
{
    static uint8_t replybuf[monclient_caps_reply_size_max];
    errval_t rerr = ERR_OK;
    const char *json = 0;
    snprintf(out, size, "null");
    if (!monclient_caps_rpc(monitor_chan(), core, &rerr, &json, replybuf, sizeof replybuf) && !rerr && json)
        snprintf(out, size, "%s", json);
}

/* Wait until slot `s` is empty (a revoke elsewhere removed it). */
static errval_t wait_gone(capslot_t s)
{
    uint64_t t0 = now_ms();
    while (type_of(s) != CAP_NULL)
        if (now_ms() - t0 > WAIT_MS)
            return ERR_TIMEOUT;
        else
            nap();
    return ERR_OK;
}

/* Ownership of our copy's object moved here (a holder's revoke took the
 * owner core's copies, then moved it): the copy retypes without asking
 * anyone (a Frame of its first page, deleted at once); ERR_CAP_REMOTE
 * until the move is done. */
static errval_t wait_owner(capslot_t ram)
{
    capslot_t f;
    errval_t err = slot_alloc(&f);
    if (err)
        return err;
    uint64_t t0 = now_ms();
    while ((err = sys_cap_retype(ram, CAP_FRAME, 4096, 0, 1, f)) == ERR_CAP_REMOTE && now_ms() - t0 < WAIT_MS)
        nap();
    if (!err)
        err = sys_cap_delete(f);
    slot_free(f);
    return err;
}

static errval_t wait_records(uint32_t core, const char *want, bool present, char *recs, size_t size);

/* Take the RAM, carve a Frame from it with the owner's agreement, say so (a
 * Frame of ours to whoever gave it), then wait for both to go; one event
 * `name` with what happened (capxfer sibling's core C2, giveon's end). */
static int carve_and_wait(const char *name)
{
    capslot_t ram = 0, f = 0, back = 0;
    uint32_t core = 0;
    uint64_t from = 0;
    errval_t err = take(&ram, &core, &from), rerr = ERR_OK;
    uint32_t type = err ? CAP_NULL : type_of(ram);
    errval_t carved = err ? err : slot_alloc(&f);
    if (!carved && !(carved = monlmp_cap_retype_rpc(monitor_lmp(), ram, CAP_FRAME, 4096, 0, 1, f, &rerr)))
        carved = rerr;
    errval_t told = err ? err : frame_alloc(4096, &back);
    if (!told)
        told = give(back, core, from);
    errval_t gone = told ? told : wait_gone(ram);
    errval_t frame_gone = told || carved ? ERR_NOT_FOUND : wait_gone(f);
    printf("@atoll {\"event\":\"%s\",\"core\":%u,\"took\":\"%s\",\"from_core\":%u,\"from\":%llu,"
           "\"type\":\"%s\",\"carved\":\"%s\",\"told\":\"%s\",\"gone\":\"%s\",\"frame_gone\":\"%s\"}\n",
           name, si_core(), err_name(err), core, (unsigned long long)from, cap_type_name(type), err_name(carved),
           err_name(told), err_name(gone), err_name(frame_gone));
    return 0;
}

/* On core C1: take the RAM twice (two copies, siblings), say so; at the
 * giver's word (a Frame), revoke the first through our monitor: the copies
 * on other cores go, and its sibling here, the revoked one stays; say so;
 * then wait for the giver's own revoke to take ours. */
/* Tell our giver we hold `ram` (a Frame of ours), wait for its word, then
 * revoke `ram` through our monitor (a holder's revoke). */
static errval_t revoke_at_word(capslot_t ram, uint32_t core, uint64_t from)
{
    capslot_t back = 0, go = 0;
    uint32_t gcore;
    uint64_t gfrom;
    errval_t rerr = ERR_OK, err = frame_alloc(4096, &back);
    if (!err)
        err = give(back, core, from);
    if (!err && !(err = take(&go, &gcore, &gfrom)))
        sys_cap_delete(go);
    if (!err && !(err = monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &rerr)))
        err = rerr;
    return err;
}

static int sibling_revoke(void)
{
    capslot_t ram = 0, twin = 0, done = 0;
    uint32_t core = 0, tcore;
    uint64_t from = 0, tfrom;
    errval_t err = take(&ram, &core, &from);
    if (!err)
        err = take(&twin, &tcore, &tfrom);
    errval_t revoked = err ? err : revoke_at_word(ram, core, from);
    uint32_t kept = type_of(ram), sibling = type_of(twin);
    errval_t owner = revoked ? revoked : wait_owner(ram);
    errval_t said = revoked ? revoked : frame_alloc(4096, &done);
    if (!said)
        said = give(done, core, from);
    errval_t gone = said ? said : take_and_drop();   /* the giver's word: let go */
    if (!gone)
        gone = sys_cap_delete(ram);
    printf("@atoll {\"event\":\"capxfer_sibling_revoke\",\"core\":%u,\"took\":\"%s\",\"revoked\":\"%s\","
           "\"kept\":\"%s\",\"sibling\":\"%s\",\"owner\":\"%s\",\"gone\":\"%s\"}\n",
           si_core(), err_name(err), err_name(revoked), cap_type_name(kept), cap_type_name(sibling),
           err_name(owner), err_name(gone));
    return 0;
}

/* Start a part of ours (`capholder ...` in `args`) on `core`; its domain id in *id. */
static errval_t start_part(uint32_t core, const char *args, uint64_t *id)
{
    errval_t rerr = ERR_OK, err = monclient_spawn_rpc(monitor_chan(), core, args, 0, false, 0, &rerr, id);
    return err ? err : rerr;
}

/* On core 0: RAM given to a domain on C1 and one on C2; once both hold it,
 * the owner's records, then the one on C1 revokes its copy, then the
 * records again; last, our own revoke (the copy on C1 goes). */
static int sibling(uint32_t c1, uint32_t c2)
{
    static char before[3000], after[3000], end[3000];
    capslot_t ram = 0, go = 0;
    uint64_t p1 = 0, p2 = 0;
    errval_t rerr = ERR_OK, err = start_part(c1, "capholder sibling-revoke", &p1);
    if (!err)
        err = start_part(c2, "capholder sibling-keep", &p2);
    if (!err)
        err = ram_alloc(SIBLING_BYTES, &ram);
    if (!err)
        err = give(ram, c1, p1);
    if (!err)
        err = give(ram, c1, p1);   /* a second copy there: a sibling of the first */
    if (!err)
        err = give(ram, c2, p2);
    if (!err)
        err = take_and_drop();   /* both hold it (the one on C2 carved too) */
    if (!err)
        err = take_and_drop();
    records_of(0, before, sizeof before);
    errval_t asked = err ? err : frame_alloc(4096, &go);
    if (!asked)
        asked = give(go, c1, p1);
    errval_t done = asked ? asked : take_and_drop();   /* its revoke returned, it is the owner */
    records_of(0, after, sizeof after);
    uint32_t original = type_of(ram);   /* the revoke took it */
    errval_t told = done ? done : frame_alloc(4096, &go);
    if (!told)
        told = give(go, c1, p1);
    errval_t clean = told ? told : wait_records(0, "\"owned\":[]", true, end, sizeof end);
    (void)rerr;
    printf("@atoll {\"event\":\"capxfer_sibling\",\"error\":\"%s\",\"asked\":\"%s\",\"done\":\"%s\","
           "\"original\":\"%s\",\"told\":\"%s\",\"clean\":\"%s\",\"before\":%s,\"after\":%s}\n",
           err_name(err), err_name(asked), err_name(done), cap_type_name(original), err_name(told), err_name(clean),
           before, after);
    return 0;
}

/* -- a holder's revoke takes the owner core's copies, and ownership moves ---------------- */

/* On core C1: take the RAM, say so; at the giver's word revoke it through
 * our monitor; once we are the owner (our copy retypes alone) say so; at
 * the giver's word delete it. Lent (no CAP_RIGHT_GRANT): we never become
 * the owner; say so at once, and wait for the giver's revoke to take it. */
static int ownerrev_revoke(bool lent)
{
    capslot_t ram = 0, done = 0;
    uint32_t core = 0;
    uint64_t from = 0;
    errval_t err = take(&ram, &core, &from);
    errval_t revoked = err ? err : revoke_at_word(ram, core, from);
    uint32_t kept = type_of(ram);
    errval_t owner = revoked ? revoked : lent ? ERR_OK : wait_owner(ram);
    errval_t said = owner ? owner : frame_alloc(4096, &done);
    if (!said)
        said = give(done, core, from);
    errval_t gone = said;
    if (!gone && lent)
        gone = wait_gone(ram);   /* the owner's revoke takes it */
    else if (!gone && !(gone = take_and_drop()))   /* the giver's word: let go */
        gone = sys_cap_delete(ram);
    printf("@atoll {\"event\":\"capxfer_ownerrev_revoke\",\"core\":%u,\"took\":\"%s\",\"revoked\":\"%s\","
           "\"kept\":\"%s\",\"owner\":\"%s\",\"gone\":\"%s\"}\n",
           si_core(), err_name(err), err_name(revoked), cap_type_name(kept), err_name(owner), err_name(gone));
    return 0;
}

/* On core 0: RAM, a second copy of it, a Frame carved from that copy (page
 * 2); the RAM given to a domain on C1 and one on C2 (which carves page 0
 * with our agreement); the one on C1 revokes its copy: everything of ours
 * goes, and C2's; C1 is the owner. The records before and after; then C1
 * lets go, and core 0 keeps nothing. */
static int ownerrev(uint32_t c1, uint32_t c2, bool lent)
{
    static char before[3000], after0[3000], after1[3000], after2[3000], end[3000];
    capslot_t ram = 0, copy = 0, f = 0, go = 0, last = 0, lend = 0;
    uint64_t p1 = 0, p2 = 0;
    errval_t err = start_part(c1, lent ? "capholder ownerrev-revoke lent" : "capholder ownerrev-revoke", &p1);
    if (!err)
        err = start_part(c2, "capholder ownerrev-keep", &p2);
    if (!err)
        err = ram_alloc(SIBLING_BYTES, &ram);
    if (!err && !(err = slot_alloc(&copy)))
        err = sys_cap_copy(ram, copy);
    if (!err && !(err = slot_alloc(&f)))
        err = sys_cap_retype(copy, CAP_FRAME, 4096, 8192, 1, f);
    if (!err && lent && !(err = slot_alloc(&lend)))
        err = sys_cap_mint(ram, lend, CAP_RIGHTS_ALL & ~CAP_RIGHT_GRANT, 0, 0, 0);
    if (!err)
        err = give(lent ? lend : ram, c1, p1);
    if (!err)
        err = give(ram, c2, p2);
    if (!err)
        err = take_and_drop();   /* both hold it (the one on C2 carved too) */
    if (!err)
        err = take_and_drop();
    uint32_t had[3] = { type_of(ram), type_of(copy), type_of(f) };
    records_of(0, before, sizeof before);
    errval_t asked = err ? err : frame_alloc(4096, &go);
    if (!asked)
        asked = give(go, c1, p1);
    errval_t done = asked ? asked : take_and_drop();   /* its revoke returned, it is the owner */
    uint32_t has[3] = { type_of(ram), type_of(copy), type_of(f) };
    records_of(0, after0, sizeof after0);
    records_of(c1, after1, sizeof after1);
    records_of(c2, after2, sizeof after2);
    errval_t told = done;
    if (!told && lent) {
        /* Still the owner: our revoke takes C1's copy (before it returns),
         * and our copy and Frame. */
        errval_t rerr = ERR_OK;
        if (!(told = monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &rerr)))
            told = rerr;
        if (!told)
            told = sys_cap_delete(ram);
    } else if (!told && !(told = frame_alloc(4096, &last))) {
        told = give(last, c1, p1);
    }
    errval_t clean = told ? told : wait_records(0, "\"owned\":[]", true, end, sizeof end);
    printf("@atoll {\"event\":\"capxfer_ownerrev\",\"lent\":%s,\"error\":\"%s\",\"had\":[\"%s\",\"%s\",\"%s\"],"
           "\"asked\":\"%s\",\"done\":\"%s\",\"has\":[\"%s\",\"%s\",\"%s\"],\"told\":\"%s\","
           "\"clean\":\"%s\",\"before\":%s,\"after\":[%s,%s,%s]}\n",
           lent ? "true" : "false", err_name(err), cap_type_name(had[0]), cap_type_name(had[1]),
           cap_type_name(had[2]), err_name(asked),
           err_name(done), cap_type_name(has[0]), cap_type_name(has[1]), cap_type_name(has[2]), err_name(told),
           err_name(clean), before, after0, after1, after2);
    return 0;
}

/* -- a holder gives its copy on to a third core ------------------------------------------- */

/* On core C1: take the RAM, give it on to domain TO of core C2 (and, refused,
 * back to its owner core), wait for that domain's word, tell our giver;
 * then wait for the owner's revoke to take our copy. */
static int giveon_mid(uint32_t c2, uint64_t to)
{
    capslot_t ram = 0, back = 0, heard = 0;
    uint32_t core = 0, hcore;
    uint64_t from = 0, hfrom;
    errval_t err = take(&ram, &core, &from);
    errval_t gave = err ? err : give(ram, c2, to);
    errval_t home = err ? err : give(ram, core, from);   /* to its owner core: refused */
    errval_t word = gave ? gave : take(&heard, &hcore, &hfrom);
    if (!word)
        sys_cap_delete(heard);
    errval_t told = word ? word : frame_alloc(4096, &back);
    if (!told)
        told = give(back, core, from);
    errval_t gone = told ? told : wait_gone(ram);
    printf("@atoll {\"event\":\"capxfer_giveon_mid\",\"core\":%u,\"took\":\"%s\",\"gave\":\"%s\",\"home\":\"%s\","
           "\"word\":\"%s\",\"word_core\":%u,\"told\":\"%s\",\"gone\":\"%s\"}\n",
           si_core(), err_name(err), err_name(gave), err_name(home), err_name(word), word ? 0 : hcore,
           err_name(told), err_name(gone));
    return 0;
}

/* On core 0: RAM given to a domain on C1, which gives it on to one on C2;
 * once that one has carved from it, the owner's records; then our revoke
 * takes both copies. */
static int giveon(uint32_t c1, uint32_t c2)
{
    static char recs[3000];
    char cmd[64];
    capslot_t ram = 0;
    uint64_t mid = 0, end = 0;
    errval_t rerr = ERR_OK, err = start_part(c2, "capholder giveon-end", &end);
    snprintf(cmd, sizeof cmd, "capholder giveon-mid %u %llu", c2, (unsigned long long)end);
    if (!err)
        err = start_part(c1, cmd, &mid);
    if (!err)
        err = ram_alloc(SIBLING_BYTES, &ram);
    if (!err)
        err = give(ram, c1, mid);
    errval_t word = err ? err : take_and_drop();   /* the one on C2 holds and carved */
    records_of(0, recs, sizeof recs);
    errval_t revoked = word;
    if (!word && !(revoked = monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &rerr)))
        revoked = rerr;
    printf("@atoll {\"event\":\"capxfer_giveon\",\"error\":\"%s\",\"word\":\"%s\",\"revoked\":\"%s\",\"mid\":%llu,"
           "\"records\":%s}\n",
           err_name(err), err_name(word), err_name(revoked), (unsigned long long)mid, recs);
    return 0;
}

/* -- a dead holder core ------------------------------------------------------------------- */

/* On core 0: RAM given to a domain on DEAD (which the test's
 * selftest=die makes panic) and one on LIVE (`capxfer keep` both); once
 * both hold it, wait until the owner's records name LIVE alone (the fence
 * of DEAD took it out of the set), then revoke: LIVE's copy goes, and the
 * revoke waits for nobody else. */
static int deadholder(uint32_t dead, uint32_t live)
{
    static char recs[3000];
    char want[32];
    capslot_t ram = 0;
    uint64_t pd = 0, pl = 0;
    errval_t rerr = ERR_OK, err = start_part(dead, "capxfer keep", &pd);
    if (!err)
        err = start_part(live, "capxfer keep", &pl);
    if (!err)
        err = give_to_keepers(&ram, dead, pd, live, pl);
    records_of(0, recs, sizeof recs);
    printf("@atoll {\"event\":\"capxfer_deadholder_given\",\"error\":\"%s\",\"records\":%s}\n", err_name(err), recs);
    stdout_flush();
    /* The fence: the set names LIVE alone. */
    snprintf(want, sizeof want, ",[%u],", live);
    uint64_t t0 = now_ms();
    errval_t fenced = err;
    while (!err && (fenced = strstr(recs, want) ? ERR_OK : ERR_TIMEOUT) && now_ms() - t0 < 3 * WAIT_MS) {
        nap();
        records_of(0, recs, sizeof recs);
    }
    uint64_t r0 = now_ms();
    errval_t revoked = fenced;
    if (!fenced && !(revoked = monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &rerr)))
        revoked = rerr;
    uint64_t revoke_ms = now_ms() - r0;
    printf("@atoll {\"event\":\"capxfer_deadholder\",\"error\":\"%s\",\"fenced\":\"%s\",\"revoked\":\"%s\","
           "\"revoke_ms\":%llu,\"records\":%s}\n",
           err_name(err), err_name(fenced), err_name(revoked), (unsigned long long)revoke_ms, recs);
    return 0;
}

/* -- operations caught at the fence ------------------------------------------------------------ */

/* The test makes core DEAD panic (selftest=die). Core 0's monitor
 * suspects it after MESH_SUSPECT_MS of silence and declares it dead
 * MESH_CONFIRM_MS (2 s) later, and the monitors fence it: an operation
 * started when the suspicion shows (core 0's `mesh` text) waits for a
 * core that has died and is not fenced yet. */

static errval_t wait_suspected(uint32_t dead)
{
    static uint8_t replybuf[monclient_mesh_reply_size_max];
    char want[32];
    snprintf(want, sizeof want, "suspect %u (", dead);
    uint64_t t0 = now_ms();
    for (;;) {
        const char *text = 0;
        uint64_t n = 0;
        errval_t rerr = ERR_OK, err = monclient_mesh_rpc(monitor_chan(), 0, &rerr, &n, &text, replybuf,
                                                          sizeof replybuf);
        if (!err && !rerr && text && strstr(text, want))
            return ERR_OK;
        if (now_ms() - t0 > 3 * WAIT_MS)
            return ERR_TIMEOUT;
        nap();
    }
}

static errval_t revoke_through_monitor(capslot_t c, uint64_t *ms)
{
    uint64_t t0 = now_ms();
    errval_t rerr = ERR_OK, err = monlmp_cap_revoke_rpc(monitor_lmp(), c, 0, &rerr);
    *ms = now_ms() - t0;
    return err ? err : rerr;
}

/* On DEAD: RAM of ours given to a domain on LIVE (`capholder
 * caught-holder`); then we stay, and die with our core. */
static __attribute__((noreturn)) int caught_owner(uint32_t live, uint32_t dead)
{
    char args[48];
    capslot_t ram = 0;
    uint64_t id = 0;
    snprintf(args, sizeof args, "capholder caught-holder %u", dead);
    errval_t err = start_part(live, args, &id);
    if (!err)
        err = ram_alloc(SIBLING_BYTES, &ram);
    if (!err)
        err = give(ram, live, id);
    printf("@atoll {\"event\":\"capxfer_caught_owner\",\"core\":%u,\"error\":\"%s\"}\n", si_core(), err_name(err));
    stdout_flush();
    for (;;)
        sys_notify_wait(sys_notify_gen(), 1000000, 0);
}

/* On LIVE: a copy of RAM owned by DEAD. When DEAD is suspected we revoke
 * it through our monitor, which asks the dead owner: the ask ends at the
 * fence with ERR_CORE_DOWN (not at its 10 s bound); asked again, at once.
 * Then the copy is deleted: our monitor's record of it goes. */
static int caught_holder(uint32_t dead)
{
    static char before[3000], after[3000];
    capslot_t ram = 0;
    uint32_t owner = 0;
    uint64_t from = 0, ms = 0, again_ms = 0;
    errval_t err = take(&ram, &owner, &from);
    printf("@atoll {\"event\":\"capxfer_caught_taken\",\"core\":%u,\"owner\":%u,\"error\":\"%s\"}\n", si_core(),
           owner, err_name(err));
    stdout_flush();
    if (!err)
        err = wait_suspected(dead);
    records_of(si_core(), before, sizeof before);
    errval_t revoked = err ? err : revoke_through_monitor(ram, &ms);
    errval_t again = err ? err : revoke_through_monitor(ram, &again_ms);
    errval_t deleted = err ? err : sys_cap_delete(ram);
    errval_t clean = err ? err : wait_records(si_core(), "\"held\":[]", true, after, sizeof after);
    printf("@atoll {\"event\":\"capxfer_caught_holder\",\"core\":%u,\"owner\":%u,\"error\":\"%s\",\"revoked\":\"%s\","
           "\"revoke_ms\":%llu,\"again\":\"%s\",\"again_ms\":%llu,\"deleted\":\"%s\",\"clean\":\"%s\","
           "\"before\":%s,\"after\":%s}\n",
           si_core(), owner, err_name(err), err_name(revoked), (unsigned long long)ms, err_name(again),
           (unsigned long long)again_ms, err_name(deleted), err_name(clean), before, after);
    return 0;
}

/* On core 0: RAM given to a domain on DEAD and one on LIVE (`capxfer
 * keep`), and a domain on DEAD that gives RAM of its own to LIVE (above).
 * When DEAD is suspected (not fenced yet: the records still name it) we
 * revoke: the revoke waits for DEAD until the fence takes it out of the
 * wait (LIVE answered at once), and returns ERR_OK then (not ERR_TIMEOUT
 * at its 5 s bound); the object is gone from our records, nothing of it
 * locked or waited for. */
static int caught(uint32_t dead, uint32_t live)
{
    static char given[3000], before[3000], after[3000];
    char args[48], both[32];
    capslot_t ram = 0;
    uint64_t pd = 0, pl = 0, po = 0, ms = 0;
    snprintf(args, sizeof args, "capholder caught-owner %u %u", live, dead);
    errval_t err = start_part(dead, "capxfer keep", &pd);
    if (!err)
        err = start_part(live, "capxfer keep", &pl);
    if (!err)
        err = start_part(dead, args, &po);
    if (!err)
        err = give_to_keepers(&ram, dead, pd, live, pl);
    records_of(0, given, sizeof given);
    printf("@atoll {\"event\":\"capxfer_caught_given\",\"error\":\"%s\",\"records\":%s}\n", err_name(err), given);
    stdout_flush();
    if (!err)
        err = wait_suspected(dead);
    records_of(0, before, sizeof before);
    snprintf(both, sizeof both, ",[%u,%u],", dead < live ? dead : live, dead < live ? live : dead);
    bool named = strstr(before, both) != 0;   /* not fenced yet: the revoke will wait for it */
    errval_t revoked = err ? err : revoke_through_monitor(ram, &ms);
    records_of(0, after, sizeof after);
    printf("@atoll {\"event\":\"capxfer_caught\",\"error\":\"%s\",\"caught\":%s,\"revoked\":\"%s\",\"revoke_ms\":%llu,"
           "\"before\":%s,\"after\":%s}\n",
           err_name(err), named ? "true" : "false", err_name(revoked), (unsigned long long)ms, before, after);
    return 0;
}

/* -- moving ownership ----------------------------------------------------------------------- */

/* On core C1: take the RAM (a retype alone needs the owner: ERR_CAP_REMOTE),
 * say so; at the giver's word (ownership moved here) retype it alone (the
 * page carved on C2 refused, the next one not), revoke it through our
 * monitor (C2's copy goes; ours stays), delete it (the giver sees its
 * range free: no word, as what we give would go with us when we end). */
static int move_owner(void)
{
    capslot_t ram = 0, back = 0, go = 0, f = 0;
    uint32_t core = 0, gcore;
    uint64_t from = 0, gfrom;
    errval_t err = take(&ram, &core, &from), rerr = ERR_OK;
    errval_t before = err ? err : slot_alloc(&f);
    if (!before && (before = sys_cap_retype(ram, CAP_FRAME, 4096, 4096, 1, f)) == ERR_OK)
        sys_cap_delete(f);
    errval_t told = err ? err : frame_alloc(4096, &back);
    if (!told)
        told = give(back, core, from);
    errval_t went = told ? told : take(&go, &gcore, &gfrom);
    if (!went)
        sys_cap_delete(go);
    errval_t reserved = went ? went : sys_cap_retype(ram, CAP_FRAME, 4096, 0, 1, f);
    if (!reserved)
        sys_cap_delete(f);
    errval_t retyped = went ? went : sys_cap_retype(ram, CAP_FRAME, 4096, 4096, 1, f);
    errval_t revoked = retyped;   /* the Frame goes with the revoke */
    if (!retyped && !(revoked = monlmp_cap_revoke_rpc(monitor_lmp(), ram, 0, &rerr)))
        revoked = rerr;
    uint32_t kept = type_of(ram), frame = type_of(f);
    static char recs[3000];
    records_of(si_core(), recs, sizeof recs);
    errval_t deleted = revoked ? revoked : sys_cap_delete(ram);
    printf("@atoll {\"event\":\"capxfer_move_owner\",\"core\":%u,\"took\":\"%s\",\"before\":\"%s\",\"told\":\"%s\","
           "\"went\":\"%s\",\"reserved\":\"%s\",\"retyped\":\"%s\",\"revoked\":\"%s\",\"kept\":\"%s\","
           "\"frame\":\"%s\",\"deleted\":\"%s\",\"records\":%s}\n",
           si_core(), err_name(err), err_name(before), err_name(told), err_name(went), err_name(reserved),
           err_name(retyped), err_name(revoked), cap_type_name(kept), cap_type_name(frame), err_name(deleted), recs);
    return 0;
}

/* Wait until core `core`'s records contain `want` (or not, `present` false). */
static errval_t wait_records(uint32_t core, const char *want, bool present, char *recs, size_t size)
{
    uint64_t t0 = now_ms();
    for (;;) {
        records_of(core, recs, size);
        if ((strstr(recs, want) != 0) == present)
            return ERR_OK;
        if (now_ms() - t0 > WAIT_MS)
            return ERR_TIMEOUT;
        nap();
    }
}

/* On core 0: 8 KiB of RAM carved from 16 KiB of ours, given to C1 and C2;
 * once both hold it, our original goes through the monitor: ownership
 * moves to C1. The records of the three, the range still taken here, the
 * word to C1; when its copy is gone, the range is free again. */
static int move(uint32_t c1, uint32_t c2)
{
    static char own[3000], mid[3000], rec1[3000], rec2[3000], rec0[3000];
    char want[32];
    capslot_t big = 0, ram = 0, f = 0, go = 0;
    uint64_t p1 = 0, p2 = 0;
    errval_t rerr = ERR_OK, err = start_part(c1, "capholder move-owner", &p1);
    if (!err)
        err = start_part(c2, "capholder move-keep", &p2);
    if (!err)
        err = ram_alloc(16384, &big);
    if (!err && !(err = slot_alloc(&ram)) && (err = sys_cap_retype(big, CAP_RAM, 8192, 0, 1, ram)))
        slot_free(ram);
    if (!err)
        err = give(ram, c1, p1);
    if (!err)
        err = take_and_drop();   /* C1 holds it */
    if (!err)
        err = give(ram, c2, p2);
    if (!err)
        err = take_and_drop();   /* C2 holds it and carved its first page */
    records_of(0, own, sizeof own);
    errval_t deleted = err;
    if (!err && !(deleted = monlmp_cap_delete_rpc(monitor_lmp(), ram, 0, &rerr)))
        deleted = rerr;
    if (!deleted)
        slot_free(ram);
    /* Moved when C2's record names C1 as the owner. */
    snprintf(want, sizeof want, "\"held\":[[%u,", c1);
    errval_t moved = deleted ? deleted : wait_records(c2, want, true, rec2, sizeof rec2);
    records_of(0, mid, sizeof mid);
    records_of(c1, rec1, sizeof rec1);
    errval_t held = moved ? moved : slot_alloc(&f);
    if (!held && !(held = sys_cap_retype(big, CAP_FRAME, 4096, 0, 1, f)))
        sys_cap_delete(f);
    errval_t word = moved ? moved : frame_alloc(4096, &go);
    if (!word)
        word = give(go, c1, p1);
    /* Free once its copy there is gone. */
    errval_t freed = word;
    uint64_t t0 = now_ms();
    while (!word && (freed = sys_cap_retype(big, CAP_FRAME, 4096, 0, 1, f)) == ERR_OVERLAP && now_ms() - t0 < WAIT_MS)
        nap();
    if (!freed)
        sys_cap_delete(f);
    errval_t clean = freed ? freed : wait_records(0, "\"owned\":[]", true, rec0, sizeof rec0);
    printf("@atoll {\"event\":\"capxfer_move\",\"error\":\"%s\",\"deleted\":\"%s\",\"moved\":\"%s\",\"held\":\"%s\","
           "\"word\":\"%s\",\"freed\":\"%s\",\"clean\":\"%s\",\"before\":%s,\"after\":[%s,%s,%s]}\n",
           err_name(err), err_name(deleted), err_name(moved), err_name(held), err_name(word), err_name(freed), err_name(clean), own, mid, rec1, rec2);
    return 0;
}

int main(int argc, char **argv)
{
    si = startup();
    errval_t err = monitor_connect();
    if (err) {
        printf("capholder: no monitor: %s\n", err_name(err));
        return 1;
    }
    if (argc > 3 && !strcmp(argv[1], "caught"))
        return caught(arg_number(argv[2], 2), arg_number(argv[3], 3));
    if (argc > 3 && !strcmp(argv[1], "caught-owner"))
        return caught_owner(arg_number(argv[2], 3), arg_number(argv[3], 2));
    if (argc > 2 && !strcmp(argv[1], "caught-holder"))
        return caught_holder(arg_number(argv[2], 2));
    if (argc > 3 && !strcmp(argv[1], "deadholder"))
        return deadholder(arg_number(argv[2], 2), arg_number(argv[3], 3));
    if (argc > 1 && !strcmp(argv[1], "giveon-end"))
        return carve_and_wait("capxfer_giveon_end");
    if (argc > 3 && !strcmp(argv[1], "giveon-mid"))
        return giveon_mid(arg_number(argv[2], 3), arg_number(argv[3], 0));
    if (argc > 3 && !strcmp(argv[1], "giveon"))
        return giveon(arg_number(argv[2], 2), arg_number(argv[3], 3));
    if (argc > 1 && !strcmp(argv[1], "sibling-keep"))
        return carve_and_wait("capxfer_sibling_keep");
    if (argc > 1 && !strcmp(argv[1], "sibling-revoke"))
        return sibling_revoke();
    if (argc > 3 && !strcmp(argv[1], "sibling"))
        return sibling(arg_number(argv[2], 2), arg_number(argv[3], 3));
    if (argc > 1 && !strcmp(argv[1], "ownerrev-revoke"))
        return ownerrev_revoke(argc > 2 && !strcmp(argv[2], "lent"));
    if (argc > 1 && !strcmp(argv[1], "ownerrev-keep"))
        return carve_and_wait("capxfer_ownerrev_keep");
    if (argc > 3 && !strcmp(argv[1], "ownerrev"))
        return ownerrev(arg_number(argv[2], 2), arg_number(argv[3], 3), argc > 4 && !strcmp(argv[4], "lent"));
    if (argc > 1 && !strcmp(argv[1], "move-owner"))
        return move_owner();
    if (argc > 1 && !strcmp(argv[1], "move-keep"))
        return carve_and_wait("capxfer_move_keep");
    if (argc > 3 && !strcmp(argv[1], "move"))
        return move(arg_number(argv[2], 2), arg_number(argv[3], 3));
    printf("usage: capholder sibling C1 C2 | ownerrev C1 C2 | giveon C1 C2 | deadholder DEAD LIVE | caught DEAD LIVE | move C1 C2\n");
    return 1;
}
