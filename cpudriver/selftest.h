/*
 * Self-tests that make a core fail on purpose, chosen on the kernel command
 * line (selftest=fault:N, probe:N, die:N@MS): they show that a fault is reported and
 * that another core's kernel memory is not mapped (tests/test_boot.py).
 */
#ifndef ATOLL_SELFTEST_H
#define ATOLL_SELFTEST_H
/* Run this core's self-test, if the command line chose it. */
void selftest_run(void);
/* At every timer tick: selftest=die:N@MS makes core N panic once MS ms of
 * its timer have passed (interrupts off, halted for good: what a CPU
 * driver's panic leaves for the others to notice, docs/restart.md). */
void selftest_tick(void);
/* Before user space starts on this core: selftest=die:N@0 makes core N's
 * CPU driver stop answering here, silently (a `selftest_stop` event, no
 * panic), so its monitor never runs: a core the others count on that
 * dies before the mesh is up, whatever the host's scheduling (dying at
 * its first tick, its monitor may already have linked). */
void selftest_before_user(void);
#endif
