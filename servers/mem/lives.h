/* mem's spawn/exit cycles (lives.c): memory from the service comes back. */
#ifndef MEM_LIVES_H
#define MEM_LIVES_H
#include <stdint.h>
int lives_run(uint32_t lives, uint32_t par);
int life_run(uint32_t i);
#endif
