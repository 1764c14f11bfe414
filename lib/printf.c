/*
 * Console output (<atoll/lib/stdio.h>): the shared formatter writes into a
 * line buffer that goes to the kernel with SYS_PRINT on each newline, when
 * full, and on stdout_flush()/exit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <atoll/fmt.h>
#include <atoll/string.h>
#include <atoll/lib/stdio.h>
#include <atoll/lib/syscall.h>
#include <atoll/lib/time.h>

static char line[STDOUT_BUFSIZE];
static size_t used;
static errval_t pending_err;   /* first SYS_PRINT error since the last flush */

/* The threads of a spanning domain print from several cores at once, into
 * this one buffer: unguarded, lines came out garbled and twice, and two
 * cores' `used++` could run past the end. One printf's output is written
 * under a spin lock, so it also stays together. Threads at home switch only
 * when they block, never inside printf, so the holder is on another
 * dispatcher: a waiter yields its core now and then (two of a domain's
 * dispatchers may share one), and after OUT_LOCK_WAIT_NS takes the lock
 * over, since a thread on another core may fault and end alone while
 * holding it, and exit() must still flush. A lock taken over may let two
 * writers meet (garbled text, never a write past the buffer: emit). */
#define OUT_LOCK_WAIT_NS 1000000000ull
#define OUT_SPINS_BEFORE_YIELD 64
static uint32_t out_lock;

static void lock_out(void)
{
    uint64_t since = 0;
    for (uint32_t spins = 0; __atomic_exchange_n(&out_lock, 1, __ATOMIC_ACQUIRE); spins++) {
        __asm__ volatile("pause");
        if (spins < OUT_SPINS_BEFORE_YIELD)
            continue;
        spins = 0;
        uint64_t now = now_ns();
        if (!since)
            since = now;
        else if (now - since > OUT_LOCK_WAIT_NS)
            return;   /* taken over: it stays set, ours now */
        sys_yield();
    }
}

static void unlock_out(void) { __atomic_store_n(&out_lock, 0, __ATOMIC_RELEASE); }

static errval_t flush_locked(void)
{
    if (used) {
        errval_t err = sys_print(line, used);
        if (err && !pending_err)
            pending_err = err;
        used = 0;
    }
    errval_t err = pending_err;
    pending_err = ERR_OK;
    return err;
}

errval_t stdout_flush(void)
{
    lock_out();
    errval_t err = flush_locked();
    unlock_out();
    return err;
}

static void emit(char c, void *ctx)
{
    (void)ctx;
    size_t u = used;   /* read once: never past the end, even after a take-over */
    if (u >= sizeof line)
        u = 0;
    line[u++] = c;
    used = u;
    if (c == '\n' || used == sizeof line) {
        errval_t err = sys_print(line, used);
        if (err && !pending_err)
            pending_err = err;
        used = 0;
    }
}

int vprintf(const char *fmt, va_list ap)
{
    lock_out();
    int n = fmt_vformat(emit, NULL, fmt, ap);
    unlock_out();
    return n;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int putchar(int c)
{
    lock_out();
    emit((char)c, NULL);
    unlock_out();
    return (unsigned char)c;
}

int puts(const char *s)
{
    size_t n = strlen(s);
    lock_out();
    for (size_t i = 0; i < n; i++)
        emit(s[i], NULL);
    emit('\n', NULL);
    unlock_out();
    return (int)n + 1;
}
