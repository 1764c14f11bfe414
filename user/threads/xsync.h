/* threads xsync (xsync.c): threads on every core sharing lock, conditions, barrier, heap. */
#ifndef THREADS_XSYNC_H
#define THREADS_XSYNC_H
#include <stdint.h>
int xsync_main(uint32_t core, uint32_t nrounds);
#endif
