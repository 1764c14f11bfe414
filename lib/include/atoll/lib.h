/*
 * Everything a user program usually needs, in one include: the shared
 * interfaces (errors, capabilities, system calls, domain layout, formatting,
 * strings) and the user library (lib/): start-up, console output, system
 * call wrappers, slots/RAM/mappings and malloc. docs/userlib.md describes
 * it all.
 */
#ifndef ATOLL_LIB_H
#define ATOLL_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/caps.h>
#include <atoll/abi/domain.h>
#include <atoll/abi/errors.h>
#include <atoll/fmt.h>
#include <atoll/string.h>
#include <atoll/abi/syscall.h>
#include <atoll/lib/caps.h>
#include <atoll/lib/heap.h>
#include <atoll/lib/malloc.h>
#include <atoll/lib/startup.h>
#include <atoll/lib/stdio.h>
#include <atoll/lib/syscall.h>
#include <atoll/lib/time.h>

#include <atoll/util.h>

#endif
