/*
 * How domains talk to monitors, until the interface compiler (issue #4)
 * generates this: the boot channels between monitors, and the requests a
 * client (the shell) makes of core 0's monitor over LMP.
 *
 * Boot channel: one page per core N > 0, shared by core 0's monitor and
 * core N's (the CPU driver gives both a Frame capability to it). The first
 * half is written only by core 0's monitor (a request), the second only by
 * core N's (the reply); each is published by its `seq` word, written last
 * with release order and read with acquire order, so every cache line moves
 * one way. One request is outstanding at a time.
 */
#ifndef ATOLL_MONITOR_PROTOCOL_H
#define ATOLL_MONITOR_PROTOCOL_H

#include <stdint.h>

enum mon_op {
    MON_HELLO = 1,   /* client -> monitor 0 over LMP: cap = endpoint to the client */
    MON_SHARE,       /* client -> monitor: reply carries a copy of a 4 KiB frame for texts */
    MON_PS,          /* w1 = core: the domains on it, as text */
    MON_SPAWN,       /* w1 = core, w2 = RAM bytes (0: default): text = "program args" */
    MON_MEM,         /* w1 = core: value = free user RAM, w2 of the reply = node */
    MON_CORE,        /* w1 = core: one line about it, as text */
    MON_IOCAP,       /* client asks for the serial port capability (console domains) */
    MON_POWEROFF,    /* w1 = status: end the machine (core 0's monitor holds the Kernel cap) */
    MON_BUSY,        /* w1 = core: value = domains that core's monitor started, still alive */
    MON_SPAWN_PEER,  /* text = "program args": start it on the monitor's own core and
                        reply with an endpoint to it (for tests and benchmarks) */
};

#define MON_TEXT_MAX 2000

struct bc_request {
    uint32_t op;           /* enum mon_op */
    uint32_t reserved;
    uint64_t arg;
    char text[240];
    uint64_t seq;          /* written last */
};

struct bc_reply {
    int64_t err;           /* errval_t */
    uint64_t value;
    uint64_t value2;
    char text[MON_TEXT_MAX];
    uint64_t seq;          /* = the request's seq, written last */
};

struct boot_channel {
    struct bc_request req __attribute__((aligned(64)));
    uint8_t pad0[2048 - sizeof(struct bc_request)];
    struct bc_reply rep __attribute__((aligned(64)));
};
_Static_assert(sizeof(struct boot_channel) <= 4096, "one page");

#endif
