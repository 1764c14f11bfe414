/*
 * A one-way channel of cache-line messages from one core to another, used by
 * every AP's CPU driver to send its console output and its check-in to the
 * boot core, which owns the serial port.
 *
 * Each 64-byte slot is written only by the sender and carries a fragment of a
 * line; its sequence word is written last, with release order, so a reader
 * that sees the new sequence number (acquire) sees the whole slot. The reader
 * writes only the separate ack line, so every cache line moves one way. This
 * is the kernel's cut-down cousin of lib/urpc: no blocking, no capability
 * transfer, and the sender spins when the ring is full (all a boot-time
 * check-in and console line need).
 */
#ifndef ATOLL_LINECHAN_H
#define ATOLL_LINECHAN_H

#include <stdbool.h>
#include <stdint.h>

#define LINECHAN_SLOTS 63
#define LINECHAN_TEXT  52

enum linechan_kind {
    LINECHAN_TEXT_FRAGMENT = 1,   /* part of a message, more follows */
    LINECHAN_TEXT_END = 2,        /* last fragment of a line */
    LINECHAN_CHECKIN = 3,         /* the sender's CPU driver is up; carries its
                                     CPUID record, binary (topo_report.h) */
    LINECHAN_PANIC = 4,           /* the sender's CPU driver has stopped */
    LINECHAN_IDLE = 5,            /* the sender's monitor waited for the first time */
};

struct linechan_slot {
    char text[LINECHAN_TEXT];
    uint16_t len;
    uint8_t kind;
    uint8_t reserved;
    uint64_t seq;    /* written last; 0 = never written */
} __attribute__((aligned(64)));

struct linechan {
    struct linechan_slot slot[LINECHAN_SLOTS];
    /* Written only by the receiver: the highest sequence number consumed. */
    struct {
        uint64_t acked;
        uint8_t pad[56];
    } ack __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct linechan_slot) == 64, "slot is one cache line");
_Static_assert(sizeof(struct linechan) == 4096, "channel is one page");

/* Sender side: `*seq` is the sender's private next sequence number (from 1). */
void linechan_send(struct linechan *c, uint64_t *seq, enum linechan_kind kind,
                   const char *text, uint16_t len);

/* Receiver side: if a complete message (a whole line, or a check-in or
 * panic) is waiting at `*next`, hand its text fragments to `out` in order,
 * advance `*next`, acknowledge, and return its kind; else return 0. */
typedef void (*linechan_out_fn)(const char *text, uint16_t len);
int linechan_receive(struct linechan *c, uint64_t *next, linechan_out_fn out);

#endif
