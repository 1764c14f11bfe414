/*
 * Ping over the mesh (shell `ping`): round trips of monitor messages to
 * another core's monitor, forwarded where the plan has no direct channel:
 * what a request to another core's monitor costs. Asynchronous: the
 * monitor serves others between rounds. (The URPC channel itself is
 * measured by a pair of user domains, user/urpcbench, shell `bench urpc`:
 * the monitor only sets up their channel.)
 */
#include "monitor.h"
#include <if/monclient_if.h>

#define MAX_ROUNDS 10000
#define PING_TIMEOUT_NS 10000000000ull   /* a peer silent this long is gone (TCG on a loaded host stalls for seconds) */

static void sort(uint64_t *a, uint32_t n)
{
    /* Shell sort: no recursion, fine for ten thousand round trips. */
    for (uint32_t gap = n / 2; gap > 0; gap /= 2)
        for (uint32_t i = gap; i < n; i++) {
            uint64_t x = a[i];
            uint32_t j = i;
            for (; j >= gap && a[j - gap] > x; j -= gap)
                a[j] = a[j - gap];
            a[j] = x;
        }
}

static uint64_t pct(const uint64_t *sorted, uint32_t n, uint32_t p) { return n ? sorted[(uint64_t)(n - 1) * p / 100] : 0; }

/* -- ping over the mesh --------------------------------------------------------- */
static struct {
    bool active;
    uint32_t peer, rounds, done, tag;
    uint64_t started;       /* a ping lost on the way must not block pings forever */
    struct asker req;
    uint64_t rt[MAX_ROUNDS];
} pp;

static errval_t ping_next(void)
{
    struct idl_chan *via = route(pp.peer);
    if (!via)
        return ERR_NO_ROUTE;
    pp.tag = new_tag();
    return monitor_ping_call_send(via, (uint16_t)pp.peer, (uint16_t)my_core, pp.tag, now_ns(), route_hops(pp.peer));
}

static void ping_finish(errval_t err)
{
    pp.active = false;
    sort(pp.rt, pp.done);
    uint64_t median = pct(pp.rt, pp.done, 50), min = pp.done ? pp.rt[0] : 0;
    struct idl_chan ch;
    reply_chan(&ch, &pp.req);
    monclient_ping_reply_send(&ch, err, median, min, route_hops(pp.peer));
}

errval_t ping_start(uint32_t peer, uint32_t rounds, const struct asker *requester)
{
    if (peer == my_core || peer >= ncores || rounds == 0 || rounds > MAX_ROUNDS)
        return ERR_INVALID_ARG;
    if (pp.active && now_ns() - pp.started < PING_TIMEOUT_NS)
        return ERR_WOULD_BLOCK;
    if (pp.active)
        ping_finish(ERR_TIMEOUT);   /* the requester learns, late */
    pp.active = true;
    pp.started = now_ns();
    pp.peer = peer;
    pp.rounds = rounds;
    pp.done = 0;
    pp.req = *requester;
    errval_t err = ping_next();
    if (err)
        pp.active = false;
    return err;
}

bool ping_reply(const struct monitor_ping_reply_args *a)
{
    if (!pp.active || a->tag != pp.tag || a->src != pp.peer)
        return false;
    pp.rt[pp.done++] = now_ns() - a->stamp;
    if (pp.done < pp.rounds) {
        errval_t err = ping_next();
        if (err)
            ping_finish(err);
    } else {
        ping_finish(ERR_OK);
    }
    return true;
}
