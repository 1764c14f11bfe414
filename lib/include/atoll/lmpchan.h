/*
 * Typed channels over local messages (LMP): the transport of interfaces
 * declared `transport lmp` (docs/interfaces.md), which is how a domain asks
 * its own core's monitor for what moves capabilities.
 *
 * An LMP message is four words and at most one capability. An interface
 * message (at most LMPCHAN_MSG_MAX bytes, one capability: tools/idlc checks)
 * is cut into fragments of LMPCHAN_FRAG_BYTES: word 0 holds a header
 * (magic, the message's length, the fragment's offset) and the first four
 * bytes, words 1-3 the next 24. The capability travels with the first
 * fragment; the generated code's cap_export/cap_import hooks hand it over
 * (its 32-byte description on the wire is left empty). The receiver checks
 * every header and drops a message whose fragments do not fit together.
 *
 * A client (one conversation, with its monitor) sends with lmpchan_send and
 * receives with the channel's recv; a server that hears many senders in one
 * receive loop feeds each fragment to that sender's channel (lmpchan_feed)
 * and dispatches whole messages itself.
 */
#ifndef ATOLL_LMPCHAN_H
#define ATOLL_LMPCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>
#include <atoll/idl.h>
#include <atoll/lib/syscall.h>

#define LMPCHAN_MSG_MAX 255u
#define LMPCHAN_FRAG_BYTES 28u
#define LMPCHAN_MAGIC 0xa7u
/* The badge of the endpoint a monitor answers its clients through: only a
 * monitor can make an endpoint with a badge of its choosing to a domain,
 * so a client takes replies only from messages with this badge. */
#define LMPCHAN_MONITOR_BADGE 0x4d4f4e49544f52ull   /* "MONITOR" */

struct lmp_chan {
    struct idl_chan idl;
    capslot_t ep;               /* where our messages go */
    uint64_t peer_badge;        /* recv: only messages with this badge (client side) */
    bool move_caps;             /* send a capability by moving it (we keep no copy) */
    bool cap_out_set;           /* cap_export stashed one for the next send */
    capslot_t cap_out;
    bool cap_in_set;            /* the message being taken came with one... */
    capslot_t cap_in;           /* ...in this slot */
    capslot_t recv_slot;        /* named for the next capability (0: none yet) */
    uint32_t have, total;       /* reassembly */
    uint8_t buf[LMPCHAN_MSG_MAX];
    uint64_t send_timeout_ns;   /* a peer that takes nothing this long: ERR_TIMEOUT (0: never) */
    uint64_t recv_timeout_ns;   /* a blocking recv gives up after this: ERR_TIMEOUT (0: never) */
    uint64_t dropped;           /* fragments refused, or from someone else */
};

/* A channel to the endpoint in slot `ep`, taking replies with badge
 * `peer_badge`. */
void lmpchan_init(struct lmp_chan *c, capslot_t ep, uint64_t peer_badge);

/* Feed one received fragment (and the capability that came with it, or 0):
 * ERR_OK when a whole message is now in c->buf (*len its length; the next
 * feed starts a new one), ERR_WOULD_BLOCK when more fragments must come,
 * ERR_MSG_MALFORMED when the fragment does not fit (the partial message and
 * its capability are dropped). */
errval_t lmpchan_feed(struct lmp_chan *c, const struct lmp_msg *m, capslot_t cap, size_t *len);

/* Split one encoded message into fragments (the pure half of send, for
 * tests): frag[i] gets words 0-3 of fragment i; returns how many (0 if the
 * message is too long). */
unsigned lmpchan_split(const void *msg, size_t len, uint64_t frag[][4], unsigned max);

#endif
