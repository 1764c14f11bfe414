/*
 * Borrowing in batches (servers/mem, docs/memory.md "When a node runs
 * dry"): what an instance borrowed from other nodes' instances, a batch at
 * a time, and how big a batch a lender gives. Pure (no system calls):
 * host-tested by tests/host/test_mem_loans.c.
 *
 * A batch is a range the lender takes out of its pool for the borrowing
 * node (counted lent to it at once); the borrower's blocks are carved from
 * it by the lender (a capability cannot change owner core, so the lender's
 * core carves), and the batch goes back to the lender's pool when the
 * last of its blocks is freed.
 */
#ifndef MEM_LOANS_H
#define MEM_LOANS_H

#include <stdbool.h>
#include <stdint.h>

#define MEM_BATCH_BYTES (16ull << 20)   /* a lender's batch, if it has that much in one piece */
#define MEM_BATCH_ALIGN (2ull << 20)
#define MEM_LOANS 16                     /* batches one instance holds at a time */

struct loan {
    bool used;
    bool full;       /* the lender could not carve the last request from it */
    uint32_t lender;
    uint64_t id;     /* the lender's id of the batch */
    uint64_t size;
    uint32_t live;   /* blocks carved from it and not freed */
};

struct loans {
    struct loan l[MEM_LOANS];
    uint64_t batches, returned;   /* batches borrowed and given back, ever */
};

/* A loan at `lender` to carve from (not full), or NULL: ask for a batch. */
struct loan *loans_pick(struct loans *t, uint32_t lender);
/* A batch came: recorded (NULL if the table is full). */
struct loan *loans_add(struct loans *t, uint32_t lender, uint64_t id, uint64_t size);
/* A block of it was freed: true if the batch is now unused and full or
 * not needed (live 0): then the caller gives it back and loans_drop()s it. */
bool loans_block_freed(struct loan *l);
void loans_drop(struct loans *t, struct loan *l);
/* Bytes held in batches from `lender` (all lenders: UINT32_MAX). */
uint64_t loans_bytes(const struct loans *t, uint32_t lender);
uint32_t loans_count(const struct loans *t);

/* The lender's side: the size of a batch for a request of `bytes` when its
 * largest free block is `largest`: MEM_BATCH_BYTES, or the request rounded
 * up to MEM_BATCH_ALIGN if larger; halved (in MEM_BATCH_ALIGN multiples,
 * never below the request) until it fits; 0 if not even the request fits. */
uint64_t batch_bytes(uint64_t bytes, uint64_t largest);

#endif
