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

/* `ticks` of a clock of `hz` in nanoseconds, exact for any hz: whole
 * seconds, then the rest, whose product with 10^9 needs 128 bits once hz
 * passes 18.4 GHz (`timescale=8` on a 2.6 GHz host makes the kernel's
 * rate that: the product wrapped and time ran backwards within every
 * second). mul leaves the product in rdx:rax and div takes it whole; the
 * quotient is under 10^9, so it cannot fault. hz must not be 0. */
static inline uint64_t ns_of_ticks(uint64_t ticks, uint64_t hz)
{
    uint64_t frac, high;
    __asm__("mulq %3\n\tdivq %4" : "=a"(frac), "=&d"(high) : "a"(ticks % hz), "r"(1000000000ull), "r"(hz) : "cc");
    (void)high;
    return ticks / hz * 1000000000ull + frac;
}

/* Nanoseconds since the TSC started (lib/urpc/urpc_os_atoll.c). */
uint64_t urpc_os_now_ns(void);
static inline uint64_t now_ns(void) { return urpc_os_now_ns(); }

#endif
