/*
 * Local message passing (LMP) between dispatchers on one core: four words
 * and at most one capability per message, sent through an Endpoint
 * capability (minted from the receiver's Dispatcher, with a badge that tells
 * the receiver who sent it). Each dispatcher buffers one message; a send to a
 * full buffer fails with ERR_WOULD_BLOCK (the sender decides: retry, yield).
 * A blocked receiver is woken by the send. lmp_call sends and then waits
 * for the reply, switching straight to the receiver, which makes a round
 * trip two system calls per side and no scheduler decision.
 */
#ifndef ATOLL_LMP_H
#define ATOLL_LMP_H

#include <stdint.h>
#include <atoll/abi/errors.h>
#include "dispatcher.h"

struct lmp_msg {
    uint64_t words[4];
    uint64_t cap;   /* sender's slot, LMP_NO_CAP, optionally | LMP_SEND_MOVE */
};

/* Deliver to the dispatcher behind endpoint slot `ep` of `from`. On success
 * *woken is the receiver if it was waiting (now runnable), else NULL. */
errval_t lmp_send(struct dispatcher *from, uint64_t ep, const struct lmp_msg *m, struct dispatcher **woken);

/* Receive into d's registers if a message is buffered (returns ERR_OK);
 * else ERR_WOULD_BLOCK, with d marked waiting unless `nonblock`. */
errval_t lmp_recv(struct dispatcher *d, uint64_t recv_slot, bool nonblock);

#endif
