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

#include <atoll/util.h>     /* ARRAY_SIZE, ALIGN_UP/DOWN, MIN, MAX */

#endif
