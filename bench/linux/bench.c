/* Common helpers for the Linux benchmark programs (see bench.h). */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int online_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    return CPU_COUNT(&set);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear interpolation between closest ranks (numpy's default). */
static double quantile(const double *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo >= n - 1)
        return sorted[n - 1];
    return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (pos - lo);
}

void stats_of(double *v, int n, struct stats *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    if (n <= 0)
        return;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    s->mean = sum / n;
    s->min = v[0];
    s->max = v[n - 1];
    s->median = quantile(v, n, 0.5);
    s->p25 = quantile(v, n, 0.25);
    s->p75 = quantile(v, n, 0.75);
}

void write_line(const char *s)
{
    size_t len = strlen(s), done = 0;
    while (done < len) {
        ssize_t w = write(1, s + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        done += (size_t)w;
    }
}

void emit_result(const char *benchmark, const char *metric, const char *unit,
                 const struct stats *s, const char *params_json)
{
    char line[1024];
    snprintf(line, sizeof line,
             BENCH_PREFIX "{\"benchmark\":\"%s\",\"metric\":\"%s\",\"unit\":\"%s\","
             "\"value\":%.9g,\"samples\":%d,\"median\":%.9g,\"spread\":%.9g,"
             "\"p25\":%.9g,\"p75\":%.9g,\"min\":%.9g,\"max\":%.9g,\"mean\":%.9g,"
             "\"params\":{%s}}\n",
             benchmark, metric, unit, s->median, s->n, s->median, s->p75 - s->p25,
             s->p25, s->p75, s->min, s->max, s->mean, params_json ? params_json : "");
    write_line(line);
}

void emit_event(const char *event, const char *benchmark, const char *fields_json)
{
    char line[2048];
    snprintf(line, sizeof line, BENCH_PREFIX "{\"event\":\"%s\",\"benchmark\":\"%s\"%s%s}\n",
             event, benchmark, fields_json && *fields_json ? "," : "",
             fields_json ? fields_json : "");
    write_line(line);
}

void emit_error(const char *benchmark, const char *fmt, ...)
{
    char reason[512], clean[512], fields[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    /* Keep it valid JSON: no quotes, backslashes or control characters. */
    size_t j = 0;
    for (size_t i = 0; reason[i] && j + 1 < sizeof clean; i++) {
        char c = reason[i];
        clean[j++] = (c == '"' || c == '\\' || (unsigned char)c < 0x20) ? '\'' : c;
    }
    clean[j] = 0;
    snprintf(fields, sizeof fields, "\"reason\":\"%s\"", clean);
    emit_event("error", benchmark, fields);
    fprintf(stderr, "%s: %s\n", benchmark, reason);
}

static const char *arg_find(int argc, char **argv, const char *key)
{
    size_t k = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
            return argv[i] + k + 1;
    return NULL;
}

long arg_int(int argc, char **argv, const char *key, long def)
{
    const char *v = arg_find(argc, argv, key);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    return *end ? def : n;
}

const char *arg_str(int argc, char **argv, const char *key, const char *def)
{
    const char *v = arg_find(argc, argv, key);
    return v ? v : def;
}

int arg_check(const char *benchmark, int argc, char **argv, const char *const *known)
{
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t len = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            if (strlen(*k) == len && strncmp(*k, argv[i], len) == 0)
                ok = 1;
        if (!ok || !eq) {
            emit_error(benchmark, "unknown argument %s (use key=value)", argv[i]);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

int parse_list(const char *text, int *out, int max)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p || a < 0)
            return -1;
        p = end;
        b = a;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || b < a)
                return -1;
            p = end;
        }
        for (long v = a; v <= b; v++) {
            int dup = 0;
            for (int i = 0; i < n; i++)
                dup |= out[i] == v;
            if (!dup) {
                if (n == max)
                    return -1;
                out[n++] = (int)v;
            }
        }
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n;
}

int list_has(const char *list, const char *word)
{
    size_t w = strlen(word);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == w && strncmp(p, word, w) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

int bench_cpus(int argc, char **argv, const char *name, int *cpus, int max)
{
    const char *cpulist = arg_str(argc, argv, "cpus", NULL);
    if (cpulist) {
        int n = parse_list(cpulist, cpus, max);
        if (n < 1)
            emit_error(name, "cpus=%s: use a list such as 0-3,8", cpulist);
        return n < 1 ? -1 : n;
    }
    cpu_set_t set;
    int n = 0;
    sched_getaffinity(0, sizeof set, &set);
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n;
}
