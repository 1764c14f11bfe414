/*
 * printf-style formatting shared by the CPU driver and user domains
 * (common/fmt.c). Freestanding: only <stdarg.h> and <stddef.h>.
 *
 * Conversions: %d %i %u %x %X %o %p %s %c %%.
 * Flags: '-' (left-justify), '0' (zero pad), '#' (0x / 0 prefix for x X o),
 * '+' and ' ' (sign of signed conversions). Width and precision, either may
 * be '*' (a negative '*' width means '-'; a negative precision, none).
 * Precision limits %s, and gives %d %u %x %o a minimum number of digits.
 * Length modifiers: hh h l ll z j t. Floating point is not supported (guest
 * code has no FPU state). An unknown conversion is printed as written.
 */
#ifndef ATOLL_FMT_H
#define ATOLL_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* Format into buf (at most size bytes, always NUL-terminated if size > 0);
 * returns the length the whole output would have, like C99. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The formatter itself: hands each output character to emit(c, ctx) and
 * returns how many it emitted. vsnprintf and lib/'s printf are built on it. */
typedef void fmt_emit_fn(char c, void *ctx);
int fmt_vformat(fmt_emit_fn *emit, void *ctx, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* A size in the largest binary unit that divides it exactly ("64 KiB",
 * "16 MiB", "1536 B"): cache and memory sizes in tables. Returns as
 * snprintf does. */
int fmt_bytes(char *buf, size_t size, unsigned long long bytes);

#endif
