/* System-call MSRs, SMEP and SMAP on this core. */
#ifndef ATOLL_USERMODE_H
#define ATOLL_USERMODE_H
#include <stdbool.h>
/* smap: turn SMAP on where the CPU has it (the command line's nosmap says no). */
void usermode_init(bool smap);
#endif
