/*
 * Building the monitors' mesh (monitor/mesh.c, monitor/links.c) as a
 * Promela model for spin: docs/models.md. One process per monitor; every
 * URPC channel between two monitors is a FIFO Promela channel per
 * direction (URPC delivers in order, and a link's outbox keeps the order
 * behind what waits: link_send). The plan (which pairs are linked, the
 * next hop towards a core) comes from the monitor's own mesh_plan.c,
 * printed by models/mesh_plan_dump.c into mesh_params.pml.
 *
 * The protocol: core 0 sends every core the plan on its boot channel;
 * each core offers a channel to every planned higher peer (link_offer,
 * routed: route() in links.c, through core 0 while nothing else is up); the
 * higher core attaches and answers `link_ready` on the new channel; a core
 * whose planned links are all up tells core 0 (mesh_ready), which reports
 * mesh_up when every core has. Messages for another core are forwarded by
 * route() (links.c: handle).
 *
 * Cores that never came up (main.c's down[], sent with the plan) have no
 * monitor: nobody offers them a link, routes through them or waits for
 * them.
 *
 * Checked: the mesh always comes up (when nothing can move any more, core
 * 0 has reported mesh_up, every channel is empty and every planned link is
 * up at both ends); no plan arrives twice; no message is refused.
 *
 * Correctness depends on order: a core learns how many links to expect
 * from the plan, so an offer must not overtake the plan. It cannot, as the
 * first offer to reach a core must come through core 0 on the same boot
 * channel, behind the plan. The bug variant:
 *   BUG_FORWARD_OVERTAKES  core 0 forwards on a second queue that the
 *                          receiver may read first: an offer overtakes the
 *                          plan, that core counts its links before it knows
 *                          how many it needs, never reports, and mesh_up
 *                          never comes.
 */
#include "mesh_params.pml"

#define MAXQ 4
mtype = { PLAN, OFFER, READY, MESH_READY };

/* chans[a * NCORES + b]: messages from a to b. */
chan chans[NCORES * NCORES] = [MAXQ] of { mtype, byte, byte };    /* type, dst, src */
#ifdef BUG_FORWARD_OVERTAKES
chan fwd[NCORES] = [MAXQ] of { mtype, byte, byte };    /* core 0's forwarded traffic to each core */
#endif

bool linked[NCORES * NCORES];
bool down[NCORES];                  /* never came up: no monitor, left out of the plan */
byte hop[NCORES * NCORES];
bool up[NCORES * NCORES];           /* up[me * NCORES + peer]: me's link to peer (link_direct) */
bool attached[NCORES * NCORES];     /* me polls the channel from peer */
bool plan_known[NCORES];
bool mesh_up;
byte cores_ready;

#define L(a, b) ((a) * NCORES + (b))

/* route(): the core a message at `me` for `dst` goes to next. */
#define ROUTE(me, dst, out) \
    if \
    :: up[L(me, dst)] -> out = dst \
    :: else -> \
        if \
        :: plan_known[me] && up[L(me, hop[L(me, dst)])] -> out = hop[L(me, dst)] \
        :: else -> out = (me == 0 -> dst : 0) \
        fi \
    fi

proctype monitor(byte me)
{
    byte links_expected, links_up, nxt, src, dst, i;
    mtype t;

    /* mesh_start */
    atomic {
        if
        :: me == 0 ->
            plan_known[0] = 1;
            for (i : 1 .. NCORES - 1) {
                if
                :: !down[i] ->
                    attached[L(0, i)] = 1; up[L(0, i)] = 1;
                    chans[L(0, i)] ! PLAN, i, 0
                :: else -> skip
                fi
            }
            cores_ready++       /* report_ready: core 0 has no mesh links to wait for */
        :: else -> attached[L(me, 0)] = 1; up[L(me, 0)] = 1
        fi
    };

end_poll:
    do
    :: if
       RECV_ANY(me)      /* links_poll: any attached channel with a message */
       fi;
handle:
        if
        :: dst != me ->                     /* forward */
            ROUTE(me, dst, nxt);
#ifdef BUG_FORWARD_OVERTAKES
            if
            :: me == 0 -> fwd[nxt] ! t, dst, src
            :: else -> chans[L(me, nxt)] ! t, dst, src
            fi
#else
            chans[L(me, nxt)] ! t, dst, src
#endif
        :: else ->
            if
            :: t == PLAN ->
                assert(!plan_known[me] && src == 0);
                plan_known[me] = 1;
                /* offer_links */
                for (i : 1 .. NCORES - 1) {
                    if
                    :: i != me && me != 0 && !down[i] && linked[L(me, i)] ->
                        links_expected++;
                        if
                        :: i > me ->            /* the lower core offers (link_offer) */
                            attached[L(me, i)] = 1;
                            ROUTE(me, i, nxt);
                            chans[L(me, nxt)] ! OFFER, i, me
                        :: else -> skip
                        fi
                    :: else -> skip
                    fi
                }
                if
                :: links_expected == 0 -> ROUTE(me, 0, nxt); chans[L(me, nxt)] ! MESH_READY, 0, me
                :: else -> skip
                fi
            :: t == OFFER ->                    /* on_link_offer: attach, answer on the new channel */
                attached[L(me, src)] = 1;
                chans[L(me, src)] ! READY, src, me;
                up[L(me, src)] = 1;             /* mesh_link_up */
                links_up++;
                if
                :: links_up == links_expected -> ROUTE(me, 0, nxt); chans[L(me, nxt)] ! MESH_READY, 0, me
                :: else -> skip
                fi
            :: t == READY ->                    /* on_link_ready */
                assert(!up[L(me, src)]);
                up[L(me, src)] = 1;
                links_up++;
                if
                :: links_up == links_expected -> ROUTE(me, 0, nxt); chans[L(me, nxt)] ! MESH_READY, 0, me
                :: else -> skip
                fi
            :: t == MESH_READY ->               /* on_mesh_ready */
                assert(me == 0);
                cores_ready++;
                if
                :: cores_ready == NUP -> mesh_up = 1
                :: else -> skip
                fi
            fi
        fi;
        t = 0; dst = 0; src = 0; nxt = 0; i = 0
#ifdef BUG_FORWARD_OVERTAKES
    :: atomic { me != 0 && nempty(fwd[me]) -> fwd[me] ? t, dst, src };
        goto handle
#endif
    od
}

/* When nothing can move any more: the mesh is up, everywhere. */
proctype watcher()
{
    byte a, b;
    timeout ->
    assert(mesh_up);
    for (a : 0 .. NCORES - 1) {
        for (b : 0 .. NCORES - 1) {
            assert(empty(chans[L(a, b)]));
            assert(!linked[L(a, b)] || (up[L(a, b)] && up[L(b, a)]))
        }
    }
}

init {
    atomic {
        PLAN_INIT;
        DOWN_INIT;
        run watcher();
        byte c;
        for (c : 0 .. NCORES - 1) {
            if
            :: !down[c] -> run monitor(c)
            :: else -> skip
            fi
        }
    }
}
