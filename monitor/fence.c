/*
 * A dead core fenced (docs/restart.md, "A dead core"). A core whose CPU
 * driver panics, or whose monitor stops running, says nothing more; before
 * this file every monitor that waited for it waited forever.
 *
 * Heartbeats. A monitor watches the cores its mesh plan links it to (its
 * cluster and, for a leader, the other leaders: mesh_plan.h; with mesh=all
 * only those the cluster plan would link), never all cores; a core left with no live plan neighbour (its cluster's other
 * cores died) is watched by core 0 over its boot channel, and watches it
 * (both sides compute the same watch set: watched()). Anything that arrives on such a link counts as life (links.c
 * stamps heard_ns); a `beat` goes on a link only when nothing else was
 * sent on it for MESH_BEAT_MS, so a busy link carries no extra messages.
 *
 * Suspicion and confirmation. A watched link silent for MESH_SUSPECT_MS
 * makes its monitor tell core 0 (`core_suspect`): one monitor's silence
 * may be its own link's or its own lateness. Core 0 probes the suspect
 * over its boot channel (every core has one to core 0) every beat period;
 * if nothing comes from it for MESH_CONFIRM_MS, it is dead: core 0 fences
 * it and tells every live core (`core_dead`), which fences it too. One
 * decider, so every monitor fences the same cores; core 0 cannot be
 * fenced (it runs the name server, the starter and the shell: its death is
 * the machine's).
 *
 * Fencing, on every live core: the core is down (core_alive false: a
 * request about it is answered ERR_CORE_DOWN at once), its links are
 * closed (outboxes dropped; routes go around it through core 0), requests
 * waiting for its answer are answered ERR_CORE_DOWN, and every connection
 * with an end on it is hung up for that end (conns.c), so servers and
 * clients here read ERR_CHAN_CLOSED at once: the name server forgets its
 * names, the restart service (servers/starter) sees its instances end and
 * starts them on the nearest live core. A fence is never undone: a core
 * told it is dead while it still runs stops its monitor.
 */
#include "monitor.h"

#define MS 1000000ull

static struct ws_timer beat_timer;
static uint64_t told_at[MESH_MAX_CORES];   /* when we last told core 0 about that core */
static struct suspect {                    /* core 0: suspicions being checked */
    bool on;
    uint16_t by;
    uint32_t silent_ms;
    uint64_t since_ns;
} suspects[MESH_MAX_CORES];
static uint64_t beats_sent, beats_heard, fenced;
/* Do we and `c` watch each other? The plan's links; and core 0's boot
 * channel to a core with no live plan neighbour. Recomputed after a fence. */
static bool watch[MESH_MAX_CORES], watch_known;

static void fence(uint32_t core, uint32_t by)
{
    if (!core_alive(core) || core == my_core || core == 0)
        return;
    mesh_core_dead(core);
    mesh_core_fenced(core);
    watch_known = false;   /* a core whose plan neighbours are all dead is watched by core 0 now */
    links_fence(core);
    uint32_t answered = pending_fail_core(core);
    uint32_t hung_up = conns_core_dead(core);
    uint32_t holders = capops_core_dead(core);
    fenced++;
    printf("@atoll {\"event\":\"core_fenced\",\"core\":%u,\"dead\":%u,\"by\":%u,\"requests_failed\":%u,"
           "\"connections_closed\":%u,\"cap_holders_dropped\":%u}\n",
           my_core, core, by, answered, hung_up, holders);
}

/* Core 0: `core` answered nothing for MESH_CONFIRM_MS after the probe. */
static void declare_dead(uint32_t core, struct suspect *s, uint64_t now)
{
    uint32_t silent = s->silent_ms + (uint32_t)((now - s->since_ns) / MS);
    s->on = false;
    printf("monitor 0: core %u answers nothing (silent %u ms, told by core %u): dead, fenced\n", core, silent,
           s->by);
    printf("@atoll {\"event\":\"core_dead\",\"core\":%u,\"by\":%u,\"silent_ms\":%u}\n", core, s->by, silent);
    /* The suspect itself first, while its boot channel is open: if it was
     * only late, it stops (fence_on_dead) rather than run on beside the
     * services started again elsewhere. After the fence nothing reaches it. */
    struct link *l = link_direct(core);
    if (l)
        monitor_core_dead_send(&l->idl, (uint16_t)core, 0, new_tag(), (uint16_t)core, s->by, silent);
    fence(core, 0);
    for (uint32_t k = 1; k < ncores; k++) {
        struct idl_chan *to = core_alive(k) ? route(k) : 0;
        if (to && monitor_core_dead_send(to, (uint16_t)k, 0, new_tag(), (uint16_t)core, s->by, silent))
            printf("monitor 0: cannot tell core %u that core %u is dead\n", k, core);
    }
}

static void probe(uint32_t core)
{
    struct link *l = link_direct(core);
    if (l)
        monitor_beat_send(&l->idl, (uint16_t)core, 0, 0, 1);
}

/* `by` has heard nothing from `core` for silent_ms. */
static void suspect(uint32_t core, uint32_t by, uint32_t silent_ms, uint64_t now)
{
    if (!core_alive(core) || core == 0 || core == my_core)
        return;
    if (my_core != 0) {
        struct idl_chan *to0 = route(0);
        printf("monitor %u: nothing from core %u for %u ms: told core 0\n", my_core, core, silent_ms);
        if (to0)
            monitor_core_suspect_send(to0, 0, (uint16_t)my_core, new_tag(), (uint16_t)core, silent_ms);
        return;
    }
    struct suspect *s = &suspects[core];
    if (s->on)
        return;
    *s = (struct suspect){ .on = true, .by = (uint16_t)by, .silent_ms = silent_ms, .since_ns = now };
    printf("@atoll {\"event\":\"core_suspected\",\"core\":%u,\"by\":%u,\"silent_ms\":%u}\n", core, by, silent_ms);
    probe(core);
}

/* Core 0: each suspect has answered (anything heard on its boot channel
 * since the probe), or is dead once MESH_CONFIRM_MS passed. */
static void confirm(uint64_t now)
{
    for (uint32_t c = 1; c < ncores && c < MESH_MAX_CORES; c++) {
        struct suspect *s = &suspects[c];
        if (!s->on)
            continue;
        struct link *l = link_direct(c);
        if (!core_alive(c)) {
            s->on = false;
        } else if (l && l->heard_ns > s->since_ns) {
            s->on = false;
            printf("@atoll {\"event\":\"core_suspect_cleared\",\"core\":%u,\"by\":%u}\n", c, s->by);
        } else if (now > s->since_ns && now - s->since_ns >= MESH_CONFIRM_MS * MS) {
            declare_dead(c, s, now);
        } else {
            probe(c);   /* again each period: one probe may wait in a full ring */
        }
    }
}

/* Whose links are watched: the plan's, but with mesh=all (every pair
 * linked) only the pairs the default cluster plan would link (all of
 * which exist), so that the heartbeats stay a few per core, never
 * all-to-all. */
static struct mesh_plan cluster_plan;
static const struct mesh_plan *wp;

/* Core k has no live core the watch plan links it to. */
static bool lonely(uint32_t k)
{
    for (uint32_t j = 0; j < ncores; j++)
        if (j != k && core_alive(j) && mesh_linked(wp, k, j))
            return false;
    return true;
}

static void compute_watch(void)
{
    wp = &plan;
    if (plan.kind == MESH_ALL &&
        mesh_plan_init(&cluster_plan, plan.ncores, machine.core_node, MESH_CLUSTER, plan.cluster, plan.down))
        wp = &cluster_plan;
    for (uint32_t c = 0; c < ncores && c < MESH_MAX_CORES; c++)
        watch[c] = c != my_core && core_alive(c) &&
                   (mesh_linked(wp, my_core, c) || (my_core == 0 && lonely(c)) || (c == 0 && lonely(my_core)));
    watch_known = true;
}

/* A beat on every watched link that sent nothing for a period. It wakes
 * nobody (URPC_NOWAKE): the peer's monitor takes it when its own timers
 * wake it (lifetimes.c's sweep, every 20 ms), long before MESH_SUSPECT_MS;
 * waking it would cost its core an interrupt per beat and link, a few
 * hundred a second on an idle 32-core machine (docs/costmodel.md, "an idle
 * core"). A probe (above) and a probe's answer still wake: core 0 waits
 * for them. */
static void send_due_beats(uint64_t now)
{
    uint8_t buf[monitor_beat_size_max];
    for (uint32_t c = 0; watch_known && c < ncores && c < MESH_MAX_CORES; c++) {
        struct link *l = watch[c] && core_alive(c) ? link_direct(c) : 0;
        size_t len;
        if (l && now > l->sent_ns && now - l->sent_ns >= MESH_BEAT_MS * MS &&
            !monitor_beat_encode(buf, sizeof buf, &len, (uint16_t)c, (uint16_t)my_core, 0, 0) &&
            !link_send(&l->idl, buf, len, URPC_NOWAKE))
            beats_sent++;
    }
}

void fence_keepalive(uint64_t now)
{
    static uint64_t next;
    if (now < next || !watch_known)
        return;
    next = now + MESH_BEAT_MS * MS / 2;
    send_due_beats(now);
}

/* Core 0, while the mesh is being built: a core that has not reported its
 * part up and has sent nothing on its boot channel for MESH_SUSPECT_MS
 * (since the building started, if ever) is suspected like any silent
 * core: probed, then declared dead and fenced, so that a core dying
 * before the mesh is up does not keep the shell waiting (mesh.c's bound,
 * MESH_WAIT_NS, is for a monitor that answers but cannot link). */
static void early_deaths(uint64_t now)
{
    uint64_t t0 = mesh_started_ns();
    for (uint32_t c = 1; t0 && c < ncores && c < MESH_MAX_CORES; c++) {
        struct link *l = link_direct(c);
        if (!core_alive(c) || mesh_core_ready(c) || !l)
            continue;
        uint64_t last = l->heard_ns > t0 ? l->heard_ns : t0;
        uint64_t silent = now > last ? now - last : 0;
        if (silent >= MESH_SUSPECT_MS * MS && now - told_at[c] >= MESH_SUSPECT_MS * MS) {
            told_at[c] = now;
            suspect(c, 0, (uint32_t)(silent / MS), now);
        }
    }
}

static void beat_due(struct ws_timer *t)
{
    uint64_t now = now_ns();
    if (plan_known && !watch_known)
        compute_watch();
    send_due_beats(now);
    for (uint32_t c = 0; watch_known && c < ncores && c < MESH_MAX_CORES; c++) {
        if (!watch[c] || !core_alive(c))
            continue;
        struct link *l = link_direct(c);
        if (!l)
            continue;   /* not up yet: nothing to watch */
        uint64_t silent = now > l->heard_ns ? now - l->heard_ns : 0;
        if (l->heard_ns && silent >= MESH_SUSPECT_MS * MS && now - told_at[c] >= MESH_SUSPECT_MS * MS) {
            told_at[c] = now;
            suspect(c, my_core, (uint32_t)(silent / MS), now);
        }
    }
    if (my_core == 0) {
        early_deaths(now);
        confirm(now);
    }
    waitset_timer_arm(t->ws, t, now + MESH_BEAT_MS * MS);
}

void fence_start(struct waitset *ws)
{
    beat_timer = (struct ws_timer){ .fire = beat_due };
    waitset_timer_arm(ws, &beat_timer, now_ns() + MESH_BEAT_MS * MS);
}

errval_t fence_on_beat(const struct monitor_beat_args *a)
{
    beats_heard++;
    if (!a->probe)
        return ERR_OK;
    struct idl_chan *back = route(a->src);
    return back ? monitor_beat_send(back, a->src, (uint16_t)my_core, a->tag, 0) : ERR_NO_ROUTE;
}

errval_t fence_on_suspect(const struct monitor_core_suspect_args *a)
{
    if (my_core != 0 || a->core >= ncores || a->src >= ncores)
        return ERR_INVALID_ARG;
    suspect(a->core, a->src, a->silent_ms, now_ns());
    return ERR_OK;
}

errval_t fence_on_dead(const struct monitor_core_dead_args *a)
{
    if (a->src != 0 || a->core == 0 || a->core >= ncores)
        return ERR_INVALID_ARG;
    if (a->core != my_core) {
        fence(a->core, 0);
        return ERR_OK;
    }
    /* We were only late, and the others have fenced us and started our
     * services elsewhere: running on would make two of them. Stop here
     * for good (our domains can reach nobody: every channel to them is
     * hung up). */
    printf("monitor %u: declared dead by core 0 (silent %u ms): this monitor stops\n", my_core, a->silent_ms);
    printf("@atoll {\"event\":\"core_fenced_alive\",\"core\":%u}\n", my_core);
    stdout_flush();
    for (;;)
        sys_notify_wait(sys_notify_gen(), 1000000, 0);   /* 1 s, then again */
}

size_t fence_describe(char *out, size_t size)
{
    int n = snprintf(out, size, "%4u  beats sent %llu heard %llu, cores fenced %llu\n", my_core,
                     (unsigned long long)beats_sent, (unsigned long long)beats_heard, (unsigned long long)fenced);
    size_t len = n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
    /* Core 0: the suspicions it is checking (a core silent for
     * MESH_SUSPECT_MS, declared dead MESH_CONFIRM_MS later unless it
     * answers): a test can act while a core is dead and not fenced yet. */
    for (uint32_t c = 0; c < MESH_MAX_CORES && len < size; c++)
        if (suspects[c].on) {
            n = snprintf(out + len, size - len, "%4u  suspect %u (by %u, silent %u ms)\n", my_core, c,
                         suspects[c].by, suspects[c].silent_ms);
            len += n < 0 ? 0 : (size_t)n < size - len ? (size_t)n : size - len - 1;
        }
    return len;
}
