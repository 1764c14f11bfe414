/* The event loop's clock and sleep in an Atoll domain (<atoll/waitset.h>):
 * the TSC, and the core's notifications. */
#include <atoll/lib.h>
#include <atoll/urpc.h>
#include <atoll/waitset.h>

uint64_t waitset_os_now_ns(void) { return urpc_os_now_ns(); }
void waitset_os_relax(void) { urpc_os_relax(); }
uint64_t waitset_os_token(void) { return sys_notify_gen(); }

void waitset_os_sleep(uint64_t token, uint64_t timeout_ns)
{
    uint64_t us = timeout_ns / 1000;
    sys_notify_wait(token, us ? us : 1, 0);
}
