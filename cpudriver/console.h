/*
 * Kernel console. The boot core owns COM1 and writes to it; every other core
 * sends whole lines to the boot core over its console channel (linechan.h),
 * and the boot core prints them, so lines from different cores never mix and
 * no lock is shared between cores. A panicking core writes COM1 directly:
 * getting the message out matters more than tidiness then.
 */
#ifndef ATOLL_CONSOLE_H
#define ATOLL_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);
/* Write text that ends in a newline as one line (or several). */
void console_write(const char *s, size_t n);
/* The same for a user domain's text: it may continue a line (a prompt). */
void console_write_user(uint32_t writer, const char *s, size_t n);
/* Write out a partial line now (a prompt). */
void console_flush(void);
/* From now on this core writes COM1 directly (panic path). */
void console_emergency(void);
/* Boot core: print every complete line waiting on the APs' channels.
 * Returns the number of messages taken. */
int console_drain(void);

#endif
