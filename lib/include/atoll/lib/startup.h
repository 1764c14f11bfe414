/*
 * Program start and end. crt0's _start receives the start-up page
 * (struct startup_info in <atoll/abi/domain.h>, at USER_STARTUP_VA), splits its
 * argument string into argv, calls main and exits with main's result.
 *
 * argv[0] is the program's name; argv[1..argc-1] are the words of
 * startup_info.args, split at spaces and tabs. A backslash makes the next
 * character literal (GRUB writes \\ \' \" for those characters in module
 * command lines), and '...' or "..." group words with spaces in them.
 * argv[argc] is NULL. At most STARTUP_MAX_ARGS words.
 */
#ifndef ATOLL_LIB_STARTUP_H
#define ATOLL_LIB_STARTUP_H

#include <stdint.h>

#include <atoll/abi/domain.h>

#define STARTUP_MAX_ARGS 64

int main(int argc, char **argv);

/* This domain's start-up page (core, domain id, name, arguments). */
const struct startup_info *startup(void);

/* Flush stdout and end the domain with `status` (main's return does this). */
_Noreturn void exit(int status);

/* Split `args` (at most `len` bytes, stopping at a NUL) into words as crt0
 * does, writing the words NUL-terminated into buf[0..bufsize) and pointers to
 * them into argv[0..max_args) after `first` entries already there. Returns
 * the new argc; argv[argc] = NULL. Words that do not fit are dropped. */
int startup_split_args(const char *args, unsigned long len, char *buf, unsigned long bufsize, char **argv,
                       int first, int max_args);

/* A program's numeric argument: its value, or `dflt` when it is not a
 * positive decimal number (below 10^8). */
uint32_t arg_number(const char *s, uint32_t dflt);

#endif
