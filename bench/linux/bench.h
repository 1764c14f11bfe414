/* Common helpers for the Linux halves of Atoll's benchmarks: timing (rdtsc
 * and CLOCK_MONOTONIC), pinning, sample statistics and the `@bench ` JSON
 * result lines (docs/bench.md lists every field).
 *
 * Every program is a static binary run by /init inside the Linux guest; its
 * arguments are key=value words (from the kernel command line's
 * `NAME.key=value`), its results go to stdout, one line per result. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

/* The cost model's measured-region markers (docs/costmodel.md): no-ops
 * without it. The same header as Atoll's. */
#include <atoll/costmodel.h>

#define BENCH_PREFIX "@bench "

/* rdtsc fenced so that earlier instructions finish before it reads the
 * counter (start of an interval) ... */
static inline uint64_t tsc_begin(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

/* ... and after everything before it (end of an interval). */
static inline uint64_t tsc_end(void)
{
    uint32_t lo, hi;
    __asm__ volatile("mfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
}

/* In every spin loop: the CPU's hint, and under single-threaded TCG (the
 * cost model) what lets the next virtual CPU run. */
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

uint64_t now_ns(void);                   /* CLOCK_MONOTONIC */
int pin_self(int cpu);                   /* 0 or -1 (errno set) */
int online_cpus(void);                   /* CPUs this process may run on */

/* Summary of n samples (n >= 1); the array is sorted in place. */
struct stats {
    int n;
    double median, p25, p75, min, max, mean;
};
void stats_of(double *v, int n, struct stats *s);

/* One result line:
 *   @bench {"benchmark":B,"metric":M,"unit":U,"value":median,"samples":n,
 *           "median":..,"spread":p75-p25,"p25":..,"p75":..,"min":..,"max":..,
 *           "mean":..,"params":{PARAMS}}
 * params_json is the inside of the params object (may be ""). */
void emit_result(const char *benchmark, const char *metric, const char *unit,
                 const struct stats *s, const char *params_json);
/* A free-form line: @bench {"event":EVENT,"benchmark":B, FIELDS}. fields_json
 * is more members, without the leading comma (may be ""). */
void emit_event(const char *event, const char *benchmark, const char *fields_json);
/* An error line for this benchmark; printf-style reason. */
void emit_error(const char *benchmark, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes the whole line with one write(2), so lines from different
 * processes never interleave. */
void write_line(const char *s);

/* key=value arguments. arg_int/arg_str return the default when the key is
 * absent; arg_check reports (to stderr and as an error line) any key not in
 * `known` (a NULL-terminated list) and returns -1. */
long arg_int(int argc, char **argv, const char *key, long def);
const char *arg_str(int argc, char **argv, const char *key, const char *def);
int arg_check(const char *benchmark, int argc, char **argv, const char *const *known);

/* Parses a CPU/count list "1-4,8,16" into out[] (at most max values, in
 * order, duplicates dropped). Returns the count or -1 on bad syntax. */
int parse_list(const char *text, int *out, int max);

/* The CPUs to use: the `cpus=` argument, else every CPU this process may
 * run on. Returns how many (at most max), or -1 after emitting an error for
 * benchmark `name` when `cpus=` does not parse. */
int bench_cpus(int argc, char **argv, const char *name, int *cpus, int max);

/* Does the comma-separated list contain word? */
int list_has(const char *list, const char *word);

#endif
