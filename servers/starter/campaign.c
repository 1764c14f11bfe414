/*
 * A fault-injection campaign run by the restart service itself
 * (`fault campaign N SEED [PACE_MS] [KINDS]` in the shell, tools/inject,
 * docs/faults.md). Typing one shell command a fault (the first version of
 * tools/inject) managed about 5 faults a second; here the starter, which
 * knows every instance and what became of it, injects the faults from its
 * watch timer, many at once (one pending fault per instance), and
 * classifies each one's outcome itself:
 *
 *   contained  the instance did not end and beat again after the fault
 *              (within CONTAIN_MS): the fault was refused or masked;
 *   restarted  it ended (crashed, was killed, was ended as hung) and its
 *              new incarnation joined its group and beats;
 *   recovered  the same, for a server with state (it says `recovered`
 *              once it holds its state again: the store's replica when it
 *              has caught up with its leader);
 *   failed     it was not back within FAIL_MS, or its restart limit was
 *              reached: a system failure.
 *
 * A service with state gets one fault at a time, and only while all its
 * instances hold their state, and only fail-stop faults (kill, crash,
 * hang, garble, badbeat): majority replication survives a minority that
 * stops, not a replica whose table was silently changed by a flipped bit.
 * Kernel panics and lost acknowledged writes are counted outside (the
 * console's `panic` events; the store clients' `store_acked`).
 *
 * Events: fault_outcome {n, kind, name, core, domain, outcome, ms} per
 * fault, campaign_progress every 1000, campaign_done at the end.
 */
#include <atoll/lib.h>
#include <atoll/recover.h>
#include <if/nameservice_if.h>
#include <if/starter_if.h>
#include "starter.h"

/* A fault that left its instance running, and a beat after it: contained. */
#define CONTAIN_MS 500
/* Not back this long after its fault: a failure. */
#define FAIL_MS 60000
/* One in this many kills hits the name server (core 0's monitor restarts it). */
#define NAMES_EVERY 20
/* The name server is looked for this often while a kill of it is pending
 * (each look is a call to core 0's monitor, which the restart service
 * waits for; its restart takes a second or more under TCG). */
#define NAMES_POLL_NS 200000000ull

enum outcome { O_CONTAINED, O_RESTARTED, O_RECOVERED, O_FAILED, O_OUTCOMES };
static const char *const outcome_names[O_OUTCOMES] = { "contained", "restarted", "recovered", "failed" };
/* The weights of tools/inject's first version: hangs cost HEARTBEAT_HANG_MS each. */
static const uint32_t weight[FAULT_KINDS] = { 0, 30, 4, 25, 20, 16, 5, 10, 4 };
/* A server with state is hit only while each instance beat this recently:
 * one that is late may be judged hung next (hang_held in starter.c). */
#define LATE_BEAT_MS 1000

struct pending {
    bool on;
    uint32_t n, kind;
    uint64_t domain, t0;
};

struct campaign {
    bool on;
    struct client *shell;
    uint32_t total, issued, resolved, pace_ms, kinds;
    uint64_t rng, next_ns, names_polled, t0;
    uint32_t count[FAULT_KINDS][O_OUTCOMES];
    uint32_t skipped, late_ends;
    bool names_due;                  /* a kill of the name server waits for the store */
    struct pending p[MAX_INSTANCES];
    struct pending names;
};
static struct campaign cp;

static uint64_t next_rand(void)
{
    cp.rng ^= cp.rng << 13;
    cp.rng ^= cp.rng >> 7;
    cp.rng ^= cp.rng << 17;
    return cp.rng;
}

static bool fail_stop(uint32_t kind)
{
    return kind == FAULT_KILL || kind == FAULT_CRASH || kind == FAULT_HANG || kind == FAULT_GARBLE ||
           kind == FAULT_BADBEAT || kind == FAULT_STALL;   /* a stall: late, with its state intact */
}

/* A kill, a crash and a hang always end the instance: never contained. */
static bool must_end(uint32_t kind)
{
    return kind == FAULT_KILL || kind == FAULT_CRASH || kind == FAULT_HANG;
}

/* Its monitor still lists it, running: the end of an instance reaches us
 * on its heartbeat channel after the beats it sent before, so a recent
 * beat alone does not prove it lives. */
static bool still_running(const struct instance *x)
{
    uint64_t found = 0;
    return ps_find(x->core, x->domain, 0, &found) == ERR_OK;
}

/* Running and beating (not being ended as hung), and for a server with
 * state holding it. */
static bool back(const struct instance *x)
{
    return x->state == S_RUNNING && x->hb && !x->killed_hung && (!stateful[x->service] || x->recovered);
}

/* Service i may take a fault now: every instance of a service with state
 * holds it, beat within LATE_BEAT_MS (none is about to be judged hung by
 * the restart service itself), and none has a fault pending. Stateless
 * services: any. */
static bool service_ready(unsigned i, uint64_t now)
{
    if (!stateful[i])
        return true;
    for (uint32_t k = 0; k < ninst; k++)
        if (inst[k].service == i &&
            (cp.p[k].on || (inst[k].state != S_GONE && (!back(&inst[k]) || inst[k].hang_kept ||
                                                         now - inst[k].last_beat_ns > LATE_BEAT_MS * 1000000ull))))
            return false;
    return true;
}

static void counts_json(char *out, size_t size)
{
    size_t n = 0;
    for (uint32_t o = 0; o < O_OUTCOMES && n < size; o++) {
        uint32_t sum = 0;
        for (uint32_t k = 1; k < FAULT_KINDS; k++)
            sum += cp.count[k][o];
        n += (size_t)snprintf(out + n, size - n, "%s\"%s\":%u", o ? "," : "", outcome_names[o], sum);
    }
}

/* The restart service's profile since the campaign began (starter.h). */
static void profile_json(char *out, size_t size)
{
    const uint64_t ms = 1000000;
    snprintf(out, size,
             "\"starter\":{\"busy_ms\":%llu,\"ticks\":%u,\"ps_ms\":%llu,\"ps\":%u,\"spawn_ms\":%llu,"
             "\"spawns\":%u,\"join_ms\":%llu,\"joins\":%u,\"inject_ms\":%llu,\"injects\":%u,\"serve_ms\":%llu,"
             "\"msgs\":%u}",
             (unsigned long long)(prof.watch_ns / ms), prof.ticks, (unsigned long long)(prof.ps_ns / ms), prof.ps,
             (unsigned long long)(prof.spawn_ns / ms), prof.spawns, (unsigned long long)(prof.join_ns / ms),
             prof.joins, (unsigned long long)(prof.inject_ns / ms), prof.injects,
             (unsigned long long)(prof.serve_ns / ms), prof.msgs);
}

static void resolve(struct pending *p, const char *name, uint32_t core, enum outcome o, uint64_t now)
{
    p->on = false;
    cp.count[p->kind][o]++;
    cp.resolved++;
    printf("@atoll {\"event\":\"fault_outcome\",\"n\":%u,\"kind\":\"%s\",\"name\":\"%s\",\"core\":%u,\"domain\":%llu,"
           "\"outcome\":\"%s\",\"ms\":%llu}\n",
           p->n, fault_name(p->kind), name, core, (unsigned long long)p->domain, outcome_names[o],
           (unsigned long long)((now - p->t0) / 1000000));
    if (o == O_FAILED)
        printf("campaign: fault %u (%s) of %s on core %u: not back in %u ms\n", p->n, fault_name(p->kind), name,
               core, FAIL_MS);
    if (cp.resolved % 1000 == 0) {
        char c[160], pr[320];
        counts_json(c, sizeof c);
        profile_json(pr, sizeof pr);
        printf("@atoll {\"event\":\"campaign_progress\",\"resolved\":%u,\"of\":%u,%s,\"late_ends\":%u,"
               "\"ms\":%llu,%s}\n",
               cp.resolved, cp.total, c, cp.late_ends, (unsigned long long)((now - cp.t0) / 1000000), pr);
    }
}

/* The name `campaign.over` (the starter's own service): registered at the
 * campaign's end, so that the client loops of tools/inject stop. */
static errval_t over_call(struct idl_chan *ch, void *arg)
{
    errval_t rerr = ERR_OK, err = arg ? nameservice_register_rpc(ch, "campaign.over", "starter", *(uint64_t *)arg, &rerr)
                                      : nameservice_unregister_rpc(ch, "campaign.over", &rerr);
    return err ? err : rerr;
}

static void finish(void)
{
    uint32_t sum[O_OUTCOMES] = { 0 };
    char c[160], pr[320];
    for (uint32_t k = 1; k < FAULT_KINDS; k++)
        for (uint32_t o = 0; o < O_OUTCOMES; o++)
            sum[o] += cp.count[k][o];
    counts_json(c, sizeof c);
    profile_json(pr, sizeof pr);
    printf("@atoll {\"event\":\"campaign_done\",\"faults\":%u,%s,\"skipped\":%u,\"late_ends\":%u,\"ms\":%llu,"
           "%s}\n",
           cp.resolved, c, cp.skipped, cp.late_ends, (unsigned long long)((now_ns() - cp.t0) / 1000000), pr);
    if (cp.shell)
        starter_campaign_reply_send(&cp.shell->sc->idl, ERR_OK, cp.resolved, sum[O_CONTAINED], sum[O_RESTARTED],
                                    sum[O_RECOVERED], sum[O_FAILED]);
    cp.on = false;
    names_call(over_call, &starter_service);
    stdout_flush();
}

/* The pending fault of instance k: resolved yet? */
static void watch_instance(uint32_t k, uint64_t now)
{
    struct pending *p = &cp.p[k];
    const struct instance *x = &inst[k];
    const char *name = mf.svc[x->service].name;
    bool ended = x->domain != p->domain || (x->state != S_RUNNING && x->state != S_STARTING);
    if (x->state == S_FAILED || x->state == S_GONE)
        resolve(p, name, x->core, O_FAILED, now);
    else if (ended && back(x))
        resolve(p, name, x->core, stateful[x->service] ? O_RECOVERED : O_RESTARTED, now);
    else if (!ended && !must_end(p->kind) && now - p->t0 > CONTAIN_MS * 1000000ull && x->last_beat_ns > p->t0 &&
             still_running(x))
        resolve(p, name, x->core, O_CONTAINED, now);
    else if (now - p->t0 > FAIL_MS * 1000000ull)
        resolve(p, name, x->core, O_FAILED, now);
}

static void watch_names(uint64_t now)
{
    if (now - cp.names_polled < NAMES_POLL_NS)
        return;
    cp.names_polled = now;
    uint64_t d = 0;
    if (!ps_find(0, 0, "names", &d) && d != cp.names.domain)
        resolve(&cp.names, "names", 0, O_RESTARTED, now);
    else if (now - cp.names.t0 > FAIL_MS * 1000000ull)
        resolve(&cp.names, "names", 0, O_FAILED, now);
}

static uint32_t pick_kind(void)
{
    uint32_t total = 0;
    for (uint32_t k = 1; k < FAULT_KINDS; k++)
        total += cp.kinds & (1u << k) ? weight[k] : 0;
    uint32_t r = (uint32_t)(next_rand() % total);
    for (uint32_t k = 1; k < FAULT_KINDS; k++) {
        uint32_t w = cp.kinds & (1u << k) ? weight[k] : 0;
        if (r < w)
            return k;
        r -= w;
    }
    return FAULT_KILL;
}

/* Inject one fault: false if no instance can take one now. */
static bool inject_one(uint64_t now)
{
    uint32_t kind = pick_kind();
    uint64_t seed = next_rand() % 1000000000ull + 1, domain = 0;
    bool ready[MANIFEST_MAX_SERVICES], all_ready = true;
    for (unsigned i = 0; i < mf.n && i < MANIFEST_MAX_SERVICES; i++)
        all_ready &= ready[i] = service_ready(i, now);
    /* The name server's restart and a service with state recovering are
     * kept apart: each needs the other (elections look the replicas up).
     * A kill of the name server that falls due meanwhile waits for both. */
    if (kind == FAULT_KILL && next_rand() % NAMES_EVERY == 0)
        cp.names_due = true;
    if (kind == FAULT_KILL && cp.names_due && !cp.names.on && all_ready) {
        cp.names_due = false;
        if (inject("names", 0, FAULT_KILL, seed, &domain))
            return cp.skipped++, true;
        cp.names = (struct pending){ .on = true, .n = cp.issued++, .kind = kind, .domain = domain, .t0 = now };
        cp.names_polled = now;
        return true;
    }
    uint32_t cand[MAX_INSTANCES], n = 0;
    for (uint32_t k = 0; k < ninst; k++) {
        const struct instance *x = &inst[k];
        if (!cp.p[k].on && !x->updating && back(x) && ready[x->service] &&
            (!stateful[x->service] || (fail_stop(kind) && !cp.names.on)))
            cand[n++] = k;
    }
    if (!n)
        return false;
    uint32_t k = cand[next_rand() % n];
    const struct instance *x = &inst[k];
    uint64_t was = x->domain;
    uint64_t t0 = now_ns();
    errval_t err = inject(mf.svc[x->service].name, x->core, kind, seed, &domain);
    prof.injects++;
    prof.inject_ns += now_ns() - t0;
    if (err) {
        cp.skipped++;
        printf("@atoll {\"event\":\"fault_skipped\",\"kind\":\"%s\",\"name\":\"%s\",\"core\":%u,\"err\":\"%s\"}\n",
               fault_name(kind), mf.svc[x->service].name, x->core, err_name(err));
        return true;
    }
    cp.p[k] = (struct pending){ .on = true, .n = cp.issued++, .kind = kind, .domain = was, .t0 = now };
    return true;
}

errval_t campaign_start(struct client *shell, uint32_t faults, uint64_t seed, uint32_t pace_ms, uint32_t kinds)
{
    kinds &= ((1u << FAULT_KINDS) - 1) & ~1u;
    if (cp.on)
        return ERR_WOULD_BLOCK;   /* one campaign at a time */
    if (!faults || !kinds || pace_ms > 60000)
        return ERR_INVALID_ARG;
    cp = (struct campaign){ .on = true, .shell = shell, .total = faults, .pace_ms = pace_ms, .kinds = kinds,
                       .rng = seed * 0x9e3779b97f4a7c15ull | 1, .next_ns = now_ns(),
                           .t0 = now_ns() };
    prof = (struct starter_profile){ 0 };
    names_call(over_call, 0);   /* an earlier campaign's */
    printf("@atoll {\"event\":\"campaign_started\",\"faults\":%u,\"seed\":%llu,\"pace_ms\":%u,\"kinds\":%u}\n", faults,
           (unsigned long long)seed, pace_ms, kinds);
    stdout_flush();
    return ERR_OK;
}

void campaign_step(uint64_t now)
{
    if (!cp.on)
        return;
    for (uint32_t k = 0; k < ninst; k++)
        if (cp.p[k].on)
            watch_instance(k, now);
    if (cp.names.on)
        watch_names(now);
    /* Faults due now; with a pace of 0, as many as there are free instances. */
    for (uint32_t tries = 0; cp.issued < cp.total && now >= cp.next_ns && tries < MAX_INSTANCES; tries++) {
        if (!inject_one(now))
            break;
        cp.next_ns = cp.pace_ms ? cp.next_ns + cp.pace_ms * 1000000ull : now;
        if (cp.next_ns + 1000000000ull < now)
            cp.next_ns = now;   /* behind by more than a second: do not burst to catch up */
    }
    if (cp.issued == cp.total && cp.resolved == cp.total)
        finish();
    stdout_flush();
}

/* An end the campaign did not cause (a latent effect of an earlier fault,
 * say a bitflip that crashes later): counted. */
void campaign_instance_ended(const struct instance *x)
{
    uint32_t k = (uint32_t)(x - inst);
    if (cp.on && k < MAX_INSTANCES && !cp.p[k].on)
        cp.late_ends++;
}

void campaign_shell_gone(struct client *c)
{
    if (cp.shell == c)
        cp.shell = 0;
}
