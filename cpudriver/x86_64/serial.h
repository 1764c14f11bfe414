/* COM1 serial port. Only the boot core writes it, except in a panic. */
#ifndef ATOLL_SERIAL_H
#define ATOLL_SERIAL_H
#include <stddef.h>
void serial_init(void);
void serial_write(const char *s, size_t n);
#endif
