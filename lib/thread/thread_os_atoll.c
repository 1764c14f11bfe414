/* What lib/thread needs of an Atoll domain: memory from malloc, the core
 * from the start-up page, and an end with a message. */
#include <atoll/lib.h>
#include <atoll/lib/malloc.h>
#include <atoll/lib/startup.h>
#include <atoll/thread.h>

void *thread_os_alloc(size_t bytes) { return malloc(bytes); }
void thread_os_free(void *p) { free(p); }
uint32_t thread_os_core(void) { return startup()->core_id; }

_Noreturn void thread_os_fatal(const char *msg, uint32_t id)
{
    printf("@atoll {\"event\":\"thread_fatal\",\"thread\":%u,\"msg\":\"%s\"}\n", id, msg);
    exit(70);
}

_Noreturn void thread_os_exit(int status) { exit(status); }
