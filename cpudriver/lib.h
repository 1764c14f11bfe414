/* The few C library routines the freestanding CPU driver needs: the shared
 * memory/string routines and printf-style formatting (common/, one copy for
 * kernel and user space), plus a handful of macros. */
#ifndef ATOLL_KLIB_H
#define ATOLL_KLIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/fmt.h>      /* vsnprintf, snprintf, fmt_vformat */
#include <atoll/string.h>   /* memset, memcpy, memmove, memcmp, str*() */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
