/*
 * URPC on Atoll (see <atoll/urpc.h>): time from the TSC, sleeping through
 * the CPU driver's notifications. A channel's wake_arg is a Notify
 * capability naming the peer's core (0: the peer is never woken, so it
 * must poll).
 */
#include <atoll/lib.h>
#include <atoll/urpc.h>


uint64_t urpc_os_now_ns(void)
{
    uint64_t hz = startup()->tsc_hz;
    if (!hz)
        hz = 1000000000ull;
    return ns_of_ticks(read_tsc(), hz);
}

void urpc_os_relax(void) { __asm__ volatile("pause" ::: "memory"); }

uint64_t urpc_os_wait_token(struct urpc_chan *c)
{
    (void)c;
    return sys_notify_gen();
}

/* At most this long asleep: a wake-up the sender's kernel did not send (a
 * domain sends at most NOTIFY_PER_TICK notifications a tick; past that
 * SYS_NOTIFY says ERR_QUOTA and sends none) then costs no more than this,
 * as in the event loop (max_sleep_ns). The callers look again and sleep
 * on until their deadline. */
#define URPC_MAX_SLEEP_US 20000

void urpc_os_wait(struct urpc_chan *c, uint64_t token, uint64_t deadline_ns)
{
    (void)c;
    uint64_t timeout_us = URPC_MAX_SLEEP_US;
    if (deadline_ns) {
        uint64_t now = urpc_os_now_ns();
        timeout_us = deadline_ns > now ? (deadline_ns - now) / 1000 + 1 : 1;
        if (timeout_us > URPC_MAX_SLEEP_US)
            timeout_us = URPC_MAX_SLEEP_US;
    }
    sys_notify_wait(token, timeout_us, 0);
}

void urpc_os_wake_peer(struct urpc_chan *c)
{
    if (c->wake_arg)
        sys_notify((capslot_t)c->wake_arg);
}

/* No asymmetric fences in the guest yet: a sleeper would have to make the
 * sender's core take an interrupt and wait until it did. */
bool urpc_os_asym_fence(void) { return false; }
void urpc_os_heavy_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
