/* What lib/thread needs of an Atoll domain: memory from malloc, the core
 * from the start-up page, and an end with a message. */
#include <atoll/lib.h>
#include <atoll/lib/malloc.h>
#include <atoll/lib/startup.h>
#include <atoll/monitor_client.h>
#include <atoll/thread.h>
#include <if/monlmp_if.h>

void *thread_os_alloc(size_t bytes) { return malloc(bytes); }
void thread_os_free(void *p) { free(p); }
uint32_t thread_os_core(void) { return startup()->core_id; }

_Noreturn void thread_os_fatal(const char *msg, uint32_t id)
{
    printf("@atoll {\"event\":\"thread_fatal\",\"thread\":%u,\"msg\":\"%s\"}\n", id, msg);
    exit(70);
}

_Noreturn void thread_os_exit(int status) { exit(status); }

errval_t thread_os_span(uint32_t core, uint64_t rip, uint64_t rsp, uint64_t arg)
{
    if (core >= startup()->ncores)
        return ERR_INVALID_ARG;
    errval_t err = monitor_lmp() ? ERR_OK : monitor_connect();
    uint64_t id = 0;
    errval_t rerr = ERR_OK;
    if (!err)
        err = monlmp_span_rpc(monitor_lmp(), core, rip, rsp, arg, &rerr, &id);
    return err ? err : rerr;
}

_Noreturn void thread_os_remote_end(void)
{
    sys_notify(SLOT_SPAN_NOTIFY);
    sys_exit(0);
}

uint64_t thread_os_wait_token(void) { return sys_notify_gen(); }

void thread_os_wait(uint64_t token)
{
    uint64_t gen;
    sys_notify_wait(token, 10000, &gen);   /* 10 ms at most */
}
