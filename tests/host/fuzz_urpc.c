/*
 * A seeded, deterministic fuzz loop for lib/urpc/urpc.c, under ASan and
 * UBSan. Side 1 is a real channel whose half is also scribbled on between
 * calls: plausible headers (a sequence number near the expected one, any
 * length, fragment and flags, packed or not), records of packed slots,
 * acks near the truth, control words, random bytes. Side 0 receives and
 * sends non-blocking, one message or a batch at a time. It must never crash, never
 * write outside its own half or its buffer (a buffer of the exact size
 * asked, so ASan sees an overflow), and only ever return the documented
 * codes; after a corruption the pair starts over on a fresh frame.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/urpc.h>
#include "check.h"

#define ITERATIONS 300000u
#define FRAME 1024              /* 6 slots per side: laps come quickly */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint8_t *mem, *frame;    /* mem: guard, frame, guard */
static struct urpc_chan a, b;
static uint8_t snap[FRAME / 2];

static void fresh(void)
{
    memset(frame, 0, FRAME);
    CHECK_ERR(urpc_init(&a, frame, FRAME, 0), ERR_OK);
    CHECK_ERR(urpc_init(&b, frame, FRAME, 1), ERR_OK);
}

static uint64_t *peer_word(unsigned i) { return (uint64_t *)(frame + FRAME / 2) + i; }

/* One scribble on side 1's half. */
static void scribble(void)
{
    unsigned nslots = a.nslots;
    uint64_t r = next();
    unsigned slot = (unsigned)(r >> 8) % nslots;
    uint64_t *h = peer_word(8 * (1 + slot) + 7);
    switch (r % 8) {
    case 0: case 1: case 2: {     /* a plausible header at the slot a reads next */
        h = peer_word(8 * (1 + a.rx_next) + 7);
        uint64_t x = next();
        uint32_t seq = (uint32_t)(a.received + 1 + (x % 4 == 0 ? (x >> 2) % 5 - 2 : 0));
        uint16_t ack = (uint16_t)(b.received + (x >> 8) % 3 - 1);
        uint64_t len = x % 16 == 1 ? (x >> 12) % 64 : 56 - (x >> 12) % 3 * 20;
        uint64_t frag = x % 8 == 2 ? (x >> 20) % 64 : a.frag;
        *h = (uint64_t)seq << URPC_HDR_SEQ_SHIFT | (uint64_t)ack << URPC_HDR_ACK_SHIFT |
             len << URPC_HDR_LEN_SHIFT | frag << URPC_HDR_FRAG_SHIFT |
             ((x >> 30) & 1 ? URPC_HDR_LAST : 0) | (x % 64 == 3 ? (x >> 40) & 7 : 0) |
             (x % 8 == 5 ? URPC_HDR_PACKED : 0);
        break;
    }
    case 3:                        /* flip a bit of a header */
        *h ^= 1ull << (next() % 64);
        break;
    case 4:                        /* the batched ack, near the truth or not */
        *peer_word(0) = r % 3 ? a.sent - next() % 4 : next();
        break;
    case 5:                        /* any payload word */
        *peer_word(8 * (1 + slot) + (unsigned)(next() % 7)) = next();
        break;
    case 6: {                      /* records of a packed slot, nearly right */
        uint8_t *p = (uint8_t *)peer_word(8 * (1 + slot));
        unsigned pos = 0;
        while (pos < URPC_PAYLOAD) {
            unsigned n = (unsigned)(next() % 12);
            p[pos] = (uint8_t)(next() % 16 ? n : next());
            pos += 1 + n;
        }
        break;
    }
    default:                       /* no scribble: let real traffic flow */
        break;
    }
}

int main(void)
{
    mem = aligned_alloc(URPC_LINE, FRAME + 2 * 4096);
    if (!mem)
        return 2;
    memset(mem, 0xa5, FRAME + 2 * 4096);
    frame = mem + 4096;
    fresh();
    uint64_t ok_recv = 0, corrupt = 0, too_long = 0, sends = 0, packed = 0;
    static uint8_t msg[URPC_MSG_MAX];
    for (unsigned i = 0; i < ITERATIONS; i++) {
        /* The honest half of the peer. */
        if (next() % 4 == 0) {
            /* A batch: mostly small messages, so they pack. */
            struct urpc_out o[8];
            size_t k = 1 + next() % 8, sent;
            for (size_t j = 0; j < k; j++)
                o[j] = (struct urpc_out){msg, next() % 8 ? next() % 30 : next() % 200};
            urpc_send_batch(&b, o, k, &sent, URPC_NONBLOCK);
            sends += sent;
        } else if (next() % 2) {
            size_t n = next() % 200;
            if (urpc_send(&b, msg, n, URPC_NONBLOCK) == ERR_OK)
                sends++;
        }
        if (next() % 4 == 0) {
            size_t got;
            urpc_recv(&b, msg, sizeof msg, &got, URPC_NONBLOCK);
        }
        if (next() % 3 == 0)
            scribble();

        /* Side 0 under test: nothing outside its half may change. */
        memcpy(snap, frame + FRAME / 2, FRAME / 2);
        errval_t e;
        uint64_t op = next() % 16;
        if (op < 3) {
            e = urpc_send(&a, msg, next() % 300, URPC_NONBLOCK);
            CHECK(e == ERR_OK || e == ERR_WOULD_BLOCK || e == ERR_URPC_CORRUPT ||
                  e == ERR_MSG_TOO_LONG);
        } else if (op == 3) {
            struct urpc_out o[6];
            size_t k = 1 + next() % 6, sent = 99;
            for (size_t j = 0; j < k; j++)
                o[j] = (struct urpc_out){msg, next() % 4 ? next() % 40 : next() % 300};
            e = urpc_send_batch(&a, o, k, &sent, URPC_NONBLOCK);
            CHECK(e == ERR_OK || e == ERR_WOULD_BLOCK || e == ERR_URPC_CORRUPT ||
                  e == ERR_MSG_TOO_LONG);
            CHECK(sent <= k && (e != ERR_OK || sent > 0) && (e != ERR_WOULD_BLOCK || sent == 0));
        } else if (op < 6) {
            /* Rooms of exact sizes, each its own allocation: ASan sees any
             * byte written past one. */
            struct urpc_in r[5];
            size_t k = 1 + next() % 5, got = 99;
            for (size_t j = 0; j < k; j++) {
                size_t size = next() % 2 ? next() % 60 : next() % 260;
                r[j] = (struct urpc_in){malloc(size ? size : 1), size, 12345};
            }
            e = urpc_recv_batch(&a, r, k, &got, URPC_NONBLOCK);
            CHECK(e == ERR_OK || e == ERR_WOULD_BLOCK || e == ERR_URPC_CORRUPT ||
                  e == ERR_MSG_TOO_LONG);
            CHECK(got <= k && (e != ERR_OK || got > 0));
            for (size_t j = 0; j < k; j++) {
                if (j < got)
                    CHECK(r[j].len <= r[j].size);
                else
                    CHECK_EQ(r[j].len, 12345);
                free(r[j].data);
            }
            ok_recv += got;
            too_long += e == ERR_MSG_TOO_LONG;
        } else {
            size_t size = next() % 260, got = 0;
            uint8_t *buf = malloc(size ? size : 1);
            e = urpc_recv(&a, buf, size, &got, URPC_NONBLOCK);
            free(buf);
            CHECK(e == ERR_OK || e == ERR_WOULD_BLOCK || e == ERR_URPC_CORRUPT ||
                  e == ERR_MSG_TOO_LONG);
            if (e == ERR_OK) {
                CHECK(got <= size);
                ok_recv++;
            }
            too_long += e == ERR_MSG_TOO_LONG;
        }
        (void)urpc_pending(&a);
        if (next() % 16 == 0)
            urpc_flush_acks(&a);
        CHECK(memcmp(snap, frame + FRAME / 2, FRAME / 2) == 0);
        if (e == ERR_URPC_CORRUPT) {
            packed += a.stats.packed_slots_received;
            corrupt++;
            CHECK_ERR(urpc_recv(&a, msg, sizeof msg, NULL, URPC_NONBLOCK), ERR_URPC_BROKEN);
            fresh();
        }
        if (b.broken) {
            packed += a.stats.packed_slots_received;
            fresh();
        }
    }
    for (unsigned i = 0; i < 4096; i++)
        CHECK(mem[i] == 0xa5 && mem[4096 + FRAME + i] == 0xa5);
    printf("fuzz: %llu messages received, %llu too long, %llu corruptions, %llu honest sends, "
           "%llu packed slots taken\n",
           (unsigned long long)ok_recv, (unsigned long long)too_long, (unsigned long long)corrupt,
           (unsigned long long)sends, (unsigned long long)packed);
    CHECK(ok_recv > 1000 && corrupt > 1000);      /* both paths were exercised */
    CHECK(packed > 1000);
    return check_done();
}
