/*
 * URPC's platform half on the Linux host (tests and benchmarks): the
 * monotonic clock, the pause instruction, and a futex for sleeping.
 *
 * Each side writes only its own control line, so the futex word a side
 * sleeps on is the PEER's doorbell: the peer bumps its own doorbell to wake
 * us. The futexes are not FUTEX_PRIVATE, so two processes sharing a frame
 * work as well as two threads.
 */
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <atoll/urpc.h>

/* Asymmetric fences with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED):
 * the threads of this process only, so a channel between two processes
 * must not use them (build with -DURPC_NO_ASYM_FENCE then). ThreadSanitizer
 * does not model them: TSan builds keep the symmetric fences. */
#if defined(__SANITIZE_THREAD__) || defined(URPC_NO_ASYM_FENCE)
bool urpc_os_asym_fence(void) { return false; }
void urpc_os_heavy_fence(void) {}   /* never called: asym_fence is false */
#else
static int asym_state;   /* 0 unknown, 1 yes, -1 no */

bool urpc_os_asym_fence(void)
{
    int s = __atomic_load_n(&asym_state, __ATOMIC_ACQUIRE);
    if (!s) {
        s = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : -1;
        __atomic_store_n(&asym_state, s, __ATOMIC_RELEASE);
    }
    return s > 0;
}

void urpc_os_heavy_fence(void)
{
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);   /* registered, so never: but stay safe */
}
#endif

uint64_t urpc_os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void urpc_os_relax(void)
{
    __builtin_ia32_pause();
}

static uint32_t *peer_doorbell(struct urpc_chan *c)
{
    /* futex(2) takes a non-const word; FUTEX_WAIT only reads it. */
    return (uint32_t *)&c->peer_ctrl->doorbell;
}

uint64_t urpc_os_wait_token(struct urpc_chan *c)
{
    return __atomic_load_n(peer_doorbell(c), __ATOMIC_ACQUIRE);
}

void urpc_os_wait(struct urpc_chan *c, uint64_t token, uint64_t deadline_ns)
{
    struct timespec rel, *timeout = NULL;
    if (deadline_ns) {
        uint64_t now = urpc_os_now_ns();
        if (now >= deadline_ns)
            return;
        uint64_t left = deadline_ns - now;
        rel.tv_sec = (time_t)(left / 1000000000u);
        rel.tv_nsec = (long)(left % 1000000000u);
        timeout = &rel;
    }
    /* Returns at once (EAGAIN) if the peer rang since the token was read;
     * EINTR and spurious returns are fine: the caller checks again. */
    syscall(SYS_futex, peer_doorbell(c), FUTEX_WAIT, (uint32_t)token, timeout, NULL, 0);
}

void urpc_os_wake_peer(struct urpc_chan *c)
{
    uint32_t *bell = &c->my_ctrl->doorbell;
    /* Only this side writes its doorbell: no read-modify-write needed. */
    __atomic_store_n(bell, __atomic_load_n(bell, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, bell, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}
