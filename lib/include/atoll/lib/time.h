/*
 * Time for user domains: the timestamp counter (the same clock on every
 * core; its rate is startup()->tsc_hz) and nanoseconds from it.
 */
#ifndef ATOLL_LIB_TIME_H
#define ATOLL_LIB_TIME_H

#include <stdint.h>

static inline uint64_t read_tsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Nanoseconds since the TSC started (lib/urpc/urpc_os_atoll.c). */
uint64_t urpc_os_now_ns(void);
static inline uint64_t now_ns(void) { return urpc_os_now_ns(); }

#endif
