/* System-call MSRs, SMEP and SMAP on this core. */
#ifndef ATOLL_USERMODE_H
#define ATOLL_USERMODE_H
void usermode_init(void);
#endif
