/*
 * Console output for user domains: printf-style formatting (the same
 * formatter as the kernel's, common/fmt.c; see <atoll/fmt.h> for what it
 * understands) into a line buffer that goes to SYS_PRINT when it holds a
 * newline, when it is full, on stdout_flush() and on exit. A line of one
 * domain is therefore never interleaved with another's (up to
 * STDOUT_BUFSIZE bytes per line).
 */
#ifndef ATOLL_LIB_STDIO_H
#define ATOLL_LIB_STDIO_H

#include <stdarg.h>
#include <atoll/abi/errors.h>
#include <atoll/fmt.h>   /* snprintf, vsnprintf */

#define STDOUT_BUFSIZE 1024   /* = the kernel's SYS_PRINT limit: an event line goes in one piece */

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
int puts(const char *s);   /* s and a newline */
int putchar(int c);

/* Write out what the line buffer holds; the first error of SYS_PRINT since
 * the last flush, if any. */
errval_t stdout_flush(void);

#endif
