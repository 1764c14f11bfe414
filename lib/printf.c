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

static char line[STDOUT_BUFSIZE];
static size_t used;
static errval_t pending_err;   /* first SYS_PRINT error since the last flush */

errval_t stdout_flush(void)
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

static void emit(char c, void *ctx)
{
    (void)ctx;
    line[used++] = c;
    if (c == '\n' || used == sizeof line) {
        errval_t err = sys_print(line, used);
        if (err && !pending_err)
            pending_err = err;
        used = 0;
    }
}

int vprintf(const char *fmt, va_list ap)
{
    return fmt_vformat(emit, NULL, fmt, ap);
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
    emit((char)c, NULL);
    return (unsigned char)c;
}

int puts(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        emit(s[i], NULL);
    emit('\n', NULL);
    return (int)n + 1;
}
