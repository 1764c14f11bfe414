/* What lib/thread needs of an Atoll domain: memory from malloc, the core
 * from the start-up page, an end with a message, and for threads on other
 * cores: spans through the monitor, notifications, and a heap they may use
 * too (malloc's guard). */
#include <atoll/lib.h>
#include <atoll/lib/malloc.h>
#include <atoll/lib/startup.h>
#include <atoll/monitor_client.h>
#include <atoll/thread.h>
#include <if/monlmp_if.h>
#include "thread_internal.h"

void *thread_os_alloc(size_t bytes) { return malloc(bytes); }
void thread_os_free(void *p) { free(p); }
/* The start-up page is the home's: span dispatchers share the address space. */
uint32_t thread_os_core(void) { return startup()->core_id; }

_Noreturn void thread_os_fatal(const char *msg, uint32_t id)
{
    printf("@atoll {\"event\":\"thread_fatal\",\"thread\":%u,\"msg\":\"%s\"}\n", id, msg);
    exit(70);
}

_Noreturn void thread_os_exit(int status) { exit(status); }

/* -- the heap, once threads run on other cores ------------------------------- */

static uint32_t heap_lock;
static void heap_enter(void) { thread_spin_lock(&heap_lock); }
static void heap_leave(void) { thread_spin_unlock(&heap_lock); }
/* Growing maps Frames with the home's capabilities: the home does it (a
 * remote thread holding the heap's lock waits; the home serves it even while
 * one of its threads waits for that lock, thread_spin_lock). */
static const struct malloc_guard heap_guard = { .enter = heap_enter, .leave = heap_leave, .grow = thread_at_home };

errval_t thread_os_span(uint32_t core, uint64_t rip, uint64_t rsp, uint64_t arg)
{
    if (core >= startup()->ncores)
        return ERR_INVALID_ARG;
    errval_t err = monitor_lmp() ? ERR_OK : monitor_connect();
    /* The Notify we wake that core with, now rather than in a wake-up. */
    capslot_t notify;
    if (!err)
        err = monitor_notify_cap(core, &notify);
    uint64_t id = 0;
    errval_t rerr = ERR_OK;
    malloc_set_guard(&heap_guard);
    if (!err)
        err = monlmp_span_rpc(monitor_lmp(), core, rip, rsp, arg, &rerr, &id);
    return err ? err : rerr;
}

void thread_os_notify(uint32_t core, bool from_span)
{
    capslot_t notify;
    if (from_span)
        sys_notify_core(SLOT_SPAN_NOTIFY, core);   /* every core (docs/spanning.md) */
    else if (core != startup()->core_id && !monitor_notify_cap(core, &notify))
        sys_notify(notify);
}

/* The last instructions of a remote thread's dispatcher: no stack (the
 * joiner may free it as soon as `finished` is set), registers only. */
_Noreturn void thread_os_remote_end(uint32_t *finished, uint32_t core)
{
    __asm__ volatile("movl $1, (%[f])\n\t"
                     "mov %[slot], %%rdi\n\t"
                     "mov %[core], %%rsi\n\t"
                     "mov %[notify], %%eax\n\t"
                     "syscall\n\t"
                     "xor %%edi, %%edi\n\t"
                     "mov %[exit], %%eax\n\t"
                     "syscall\n\t"
                     "ud2"
                     :
                     : [f] "r"(finished), [core] "r"((uint64_t)core), [slot] "i"((uint64_t)SLOT_SPAN_NOTIFY),
                       [notify] "i"(SYS_NOTIFY), [exit] "i"(SYS_EXIT)
                     : "memory", "rax", "rdi", "rsi", "rdx", "rcx", "r11");
    __builtin_unreachable();
}

uint64_t thread_os_wait_token(void) { return sys_notify_gen(); }

void thread_os_wait(uint64_t token)
{
    uint64_t gen;
    sys_notify_wait(token, 10000, &gen);   /* 10 ms at most */
}

void thread_os_relax(void) { sys_yield(); }
