/* Fatal errors in this core's CPU driver: report, then stop this core only. */
#ifndef ATOLL_PANIC_H
#define ATOLL_PANIC_H
#include <stdint.h>
struct trap_frame;
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void panic_frame(struct trap_frame *f);
/* Print a symbolized backtrace starting at frame pointer `rbp`. */
void backtrace(uint64_t rbp);
/* The boot core ends the run: flush the console and exit QEMU (isa-debug-exit)
 * with status 0 (success) or 1 (failure); where there is no such device,
 * just stop. */
_Noreturn void machine_exit(int status);
#endif
