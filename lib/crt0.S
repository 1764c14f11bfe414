/*
 * The entry point of every user program (lib/user.lds: ENTRY(_start)).
 * The kernel starts a domain here with rsp = USER_STACK_TOP (a valid,
 * mapped stack) and rdi = USER_STARTUP_VA (struct startup_info); nothing
 * else is set up. __atoll_start (lib/start.c) parses the arguments, calls
 * main and exits with its result.
 */
    .text
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp          /* the outermost frame: backtraces stop here */
    andq $-16, %rsp          /* the ABI's alignment at a call */
    call __atoll_start       /* (rdi: the start-up page); never returns */
    ud2
    .size _start, . - _start
