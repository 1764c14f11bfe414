/*
 * User space's start on each core: every core's share of RAM from its own
 * node, the boot channel pages between core 0's monitor and each other
 * core's, and the monitor itself.
 */
#ifndef ATOLL_USER_START_H
#define ATOLL_USER_START_H
#include <stdbool.h>
#include <stdint.h>

/* The boot core, before the other cores start: give each core its RAM
 * and its boot channel page. */
void user_ram_plan(void);
/* Start this core's monitor (if it has RAM and the image has one) and run
 * the scheduler. */
_Noreturn void user_start(void);

/* [base, base+bytes) lies inside one core's user RAM or one boot channel
 * page: memory some monitor may hand out as a Frame, never kernel memory. */
bool boot_user_memory(uint64_t base, uint64_t bytes);
/* [base, base+bytes) touches no RAM nor anything else the memory map lists:
 * device memory, which may be handed out as a DevFrame. */
bool boot_device_memory(uint64_t base, uint64_t bytes);
/* Core c was given RAM for user space (a core without any runs no monitor). */
bool boot_core_has_user_ram(uint32_t c);
#endif
