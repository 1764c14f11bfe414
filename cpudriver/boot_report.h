/*
 * The boot report (docs/boot-report.md): warnings, each core's "up" line,
 * the boot event, and the summary after every core has checked in, each as
 * a console line and a machine-readable event.
 */
#ifndef ATOLL_BOOT_REPORT_H
#define ATOLL_BOOT_REPORT_H
#include <stdint.h>

/* A problem the boot works around; counted in the summary. */
void boot_warn(const char *msg);
/* The same, as a callback for parsers that take one. */
void boot_warn_cb(void *ctx, const char *msg);
/* This core is up: its ids, node, kernel memory and APIC mode. */
void boot_report_core_up(void);
/* The boot core's facts once its tables are built: command line, loader,
 * RAM, clocks. */
void boot_report_start(void);
/* Cores that failed, every node, and how long the boot took up to the last
 * check-in (or the boot core's own start, at `boot_core_up_tsc`). Returns
 * how many cores failed. */
int boot_report_summary(uint32_t aps_up, uint64_t boot_core_up_tsc);
#endif
