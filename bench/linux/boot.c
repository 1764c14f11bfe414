/* boot: how long Linux takes to reach its first user program.
 *
 * /init takes rdtsc and CLOCK_BOOTTIME as the first thing in main() and
 * passes them here (init_tsc=, init_boottime_ns=). Results (benchmark
 * "boot", one sample each):
 *   kernel_to_init    ns      the kernel's own clock (printk's local_clock,
 *                             read from /dev/kmsg) at "Run /init as init
 *                             process": from the start of the kernel's
 *                             clock (early in start_kernel, after the
 *                             bzImage has decompressed itself) to the exec
 *                             of /init
 *   smp_bringup       ns      from "smp: Bringing up secondary CPUs" to
 *                             "smp: Brought up ..." (starting every other core)
 *   kernel_to_all_cores  ns   the kernel's clock at "smp: Brought up ...":
 *                             from the start of its clock to every core up
 *                             (Atoll's boot_summary boot_ms is the same span)
 *   boottime_at_init  ns      CLOCK_BOOTTIME at /init's main()
 *   reset_to_init     cycles  rdtsc at /init's main(): QEMU starts the TSC
 *                             at 0 at machine reset, so this includes the
 *                             firmware, loading and decompressing the kernel
 *   reset_to_init     ns      the same, converted with tsc_mhz
 *   tsc_mhz           MHz     the TSC's rate, measured here against
 *                             CLOCK_MONOTONIC over 50 ms */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NAME "boot"

static void emit1(const char *metric, const char *unit, double v)
{
    struct stats s;
    stats_of(&v, 1, &s);
    emit_result(NAME, metric, unit, &s, "");
}

/* Timestamp (microseconds) of the first /dev/kmsg record whose text
 * contains `needle`, or -1. */
static long long kmsg_time(const char *needle)
{
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    char rec[2048];
    long long found = -1;
    for (;;) {
        ssize_t n = read(fd, rec, sizeof rec - 1);
        if (n < 0) {
            if (errno == EPIPE || errno == EINTR)   /* overwritten record: go on */
                continue;
            break;                                   /* EAGAIN: the end */
        }
        rec[n] = 0;
        char *semi = strchr(rec, ';');
        if (!semi)
            continue;
        *semi = 0;
        unsigned prio;
        unsigned long long seq, ts;
        if (sscanf(rec, "%u,%llu,%llu", &prio, &seq, &ts) != 3)
            continue;
        char *nl = strchr(semi + 1, '\n');
        if (nl)
            *nl = 0;
        if (strstr(semi + 1, needle)) {
            found = (long long)ts;
            break;
        }
    }
    close(fd);
    return found;
}

int main(int argc, char **argv)
{
    static const char *const known[] = {"init_tsc", "init_boottime_ns", NULL};
    if (arg_check(NAME, argc, argv, known))
        return 2;
    const char *tsc_s = arg_str(argc, argv, "init_tsc", NULL);
    const char *bt_s = arg_str(argc, argv, "init_boottime_ns", NULL);
    int failed = 0;

    long long run_init = kmsg_time("Run /init as init process");
    if (run_init < 0) {
        emit_error(NAME, "no 'Run /init as init process' in /dev/kmsg");
        failed = 1;
    } else {
        emit1("kernel_to_init", "ns", (double)run_init * 1000.0);
    }
    long long smp0 = kmsg_time("smp: Bringing up secondary CPUs");
    long long smp1 = kmsg_time("smp: Brought up");
    if (smp0 >= 0 && smp1 >= smp0)
        emit1("smp_bringup", "ns", (double)(smp1 - smp0) * 1000.0);
    if (smp1 >= 0)
        emit1("kernel_to_all_cores", "ns", (double)smp1 * 1000.0);

    if (bt_s)
        emit1("boottime_at_init", "ns", strtod(bt_s, NULL));

    /* TSC rate against CLOCK_MONOTONIC. */
    uint64_t n0 = now_ns(), t0 = tsc_begin();
    struct timespec d = {0, 50 * 1000 * 1000};
    nanosleep(&d, NULL);
    uint64_t n1 = now_ns(), t1 = tsc_end();
    double mhz = (double)(t1 - t0) * 1000.0 / (double)(n1 - n0);
    emit1("tsc_mhz", "MHz", mhz);
    if (tsc_s) {
        double cycles = strtod(tsc_s, NULL);
        emit1("reset_to_init", "cycles", cycles);
        emit1("reset_to_init", "ns", cycles * 1000.0 / mhz);
    }
    return failed;
}
