/*
 * An idle core and its timer (idle.c).
 */
#ifndef ATOLL_IDLE_H
#define ATOLL_IDLE_H

/* Halt until an interrupt, interrupts off before and after. An AP with
 * nothing to run stops its periodic timer meanwhile and wakes for its
 * earliest timed wait, unless the command line says `periodic`. */
void idle_wait(void);

#endif
