/*
 * A deterministic fuzzer for the decoder and dispatcher that tools/idlc
 * generates (if/test.if -> <if/test_if.h>). Each round makes a random valid
 * message of a random type, checks that it decodes, then mutates it (bit
 * flips, byte overwrites, truncation, extension, a random type, a random
 * length field) and feeds the result, in a heap block of exactly its
 * length, to test_decode and test_dispatch. ASan fails the run on any read
 * outside the block; anything the decoder accepts must re-encode to the same
 * bytes, and every handler checks that its strings and bytes lie inside the
 * message.
 *
 *     build/host/if/fuzz_idl [ROUNDS [SEED]]     (default 500000 rounds, seed 1)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/idl.h>
#include <if/test_if.h>
#include "check.h"
#include "rng.h"


/* Integers biased towards the edges. */
static uint64_t rint_(void)
{
    switch (below(4)) {
    case 0: return below(3);
    case 1: return UINT64_MAX - below(3);
    default: return next();
    }
}

static char strs[4][1100];
static uint8_t bytes[4][3600];

/* A string of 0..bound characters, none NUL. */
static const char *rstr(int i, size_t bound)
{
    size_t n = below(4) == 0 ? bound : below(bound + 1);
    if (n > 40 && below(2))
        n = below(41);
    for (size_t k = 0; k < n; k++)
        strs[i][k] = (char)(1 + below(255));
    strs[i][n] = 0;
    return strs[i];
}

static const uint8_t *rbytes(int i, size_t bound, size_t *n)
{
    *n = below(4) == 0 ? bound : below(bound + 1);
    if (*n > 40 && below(2))
        *n = below(41);
    for (size_t k = 0; k < *n; k++)
        bytes[i][k] = (uint8_t)next();
    return bytes[i];
}

static struct cap_wire rcap(void)
{
    return (struct cap_wire){(uint32_t)rint_(), (uint32_t)rint_(), rint_(), rint_(), rint_()};
}

/* A random valid message of a random type. */
static errval_t random_valid(uint8_t *buf, size_t size, size_t *len)
{
    size_t n1, n2;
    struct cap_wire c1 = rcap(), c2 = rcap();
    const uint8_t *b1, *b2;
    switch (1 + below(test_msg_count)) {
    case test_ints:
        return test_ints_encode(buf, size, len, (uint8_t)rint_(), (uint16_t)rint_(),
                                (uint32_t)rint_(), rint_(), (int32_t)rint_(), (int64_t)rint_(),
                                below(2), (errval_t)(uint32_t)rint_());
    case test_text:
        b1 = rbytes(0, 1024, &n1);
        b2 = rbytes(1, 4, &n2);
        return test_text_encode(buf, size, len, rstr(0, 1024), rstr(1, 8), b1, n1, b2, n2);
    case test_give:
        return test_give_encode(buf, size, len, &c1, rint_());
    case test_two_caps:
        return test_two_caps_encode(buf, size, len, &c1, (uint32_t)rint_(), &c2);
    case test_empty:
        return test_empty_encode(buf, size, len);
    case test_big:
        b1 = rbytes(0, 3578, &n1);
        return test_big_encode(buf, size, len, b1, n1);
    case test_lookup_call:
        return test_lookup_call_encode(buf, size, len, rstr(0, 64));
    case test_lookup_reply:
        return test_lookup_reply_encode(buf, size, len, (errval_t)(uint32_t)rint_(),
                                        (uint32_t)rint_(), rint_());
    case test_echo_call:
        b1 = rbytes(0, 1024, &n1);
        return test_echo_call_encode(buf, size, len, b1, n1, rstr(0, 16));
    case test_echo_reply:
        b1 = rbytes(0, 1024, &n1);
        return test_echo_reply_encode(buf, size, len, b1, n1, rstr(0, 16));
    case test_get_cap_call:
        return test_get_cap_call_encode(buf, size, len, (uint32_t)rint_());
    case test_get_cap_reply:
        return test_get_cap_reply_encode(buf, size, len, (errval_t)(uint32_t)rint_(), &c1);
    case test_register_call:
        return test_register_call_encode(buf, size, len);
    case test_register_reply:
        return test_register_reply_encode(buf, size, len);
    }
    return ERR_INVALID_ARG;
}

static void mutate(uint8_t *buf, size_t *len, size_t cap)
{
    unsigned rounds = 1 + (unsigned)below(3);
    for (unsigned r = 0; r < rounds; r++) {
        switch (below(7)) {
        case 0:   /* flip a bit */
            if (*len)
                buf[below(*len)] ^= (uint8_t)(1u << below(8));
            break;
        case 1:   /* overwrite a byte, often with 0 or 0xff */
            if (*len)
                buf[below(*len)] = below(2) ? (uint8_t)next() : (below(2) ? 0 : 0xff);
            break;
        case 2:   /* truncate */
            *len = below(*len + 1);
            break;
        case 3: { /* extend */
            size_t add = 1 + below(8);
            while (add-- && *len < cap)
                buf[(*len)++] = below(2) ? 0 : (uint8_t)next();
            break;
        }
        case 4:   /* another type, including 0 and past the last */
            if (*len >= 2) {
                uint64_t t = below(test_msg_count + 3);
                buf[0] = (uint8_t)t;
                buf[1] = below(16) ? 0 : (uint8_t)next();
            }
            break;
        case 5:   /* a 16-bit length-looking field somewhere */
            if (*len >= 6) {
                size_t at = 4 + below(*len - 5);
                uint16_t v = (uint16_t)(below(2) ? below(64) : next());
                buf[at] = (uint8_t)v;
                buf[at + 1] = (uint8_t)(v >> 8);
            }
            break;
        case 6:   /* reserved bytes */
            if (*len >= 4)
                buf[2 + below(2)] = (uint8_t)(1u << below(8));
            break;
        }
    }
}

/* ---- dispatch: handlers that check where their arguments point ----------- */

static const uint8_t *cur_msg;
static size_t cur_len;
static long handled;

static void inside(const void *p, size_t n)
{
    const uint8_t *q = p;
    CHECK(q >= cur_msg && q + n <= cur_msg + cur_len);
}

static void str_inside(const char *s, size_t bound)
{
    size_t n = strlen(s);
    CHECK(n <= bound);
    inside(s, n + 1);
}

#define ANY(name)                                                                  \
    static errval_t h_##name(struct idl_chan *ch, const struct test_##name##_args *a)  \
    {                                                                              \
        (void)ch;                                                                  \
        (void)a;                                                                   \
        handled++;                                                                 \
        return ERR_OK;                                                             \
    }
ANY(ints)
ANY(two_caps)
ANY(big)
ANY(get_cap_reply)
ANY(register_call)

static errval_t h_text(struct idl_chan *ch, const struct test_text_args *a)
{
    (void)ch;
    handled++;
    str_inside(a->s, 1024);
    str_inside(a->short_s, 8);
    inside(a->b, a->b_len);
    CHECK(a->b_len <= 1024);
    inside(a->tiny, a->tiny_len);
    CHECK(a->tiny_len <= 4);
    return ERR_OK;
}

static errval_t h_echo_call(struct idl_chan *ch, const struct test_echo_call_args *a)
{
    (void)ch;
    handled++;
    inside(a->data, a->data_len);
    str_inside(a->tag, 16);
    return ERR_OK;
}

static errval_t h_lookup(struct idl_chan *ch, const struct test_lookup_call_args *a)
{
    (void)ch;
    handled++;
    str_inside(a->name, 64);
    return ERR_OK;
}

static errval_t h_give(struct idl_chan *ch, const struct test_give_args *a)
{
    (void)ch;
    handled++;
    CHECK_EQ(a->frame, 1000);
    return ERR_OK;
}

static errval_t imp(struct idl_chan *ch, const struct cap_wire *in, uint64_t *slot)
{
    (void)ch;
    if (in->type == 0)
        return ERR_CAP_TYPE;
    *slot = 1000;
    return ERR_OK;
}

/* Some handlers missing (ERR_MSG_UNKNOWN for those), some checking. */
static const struct test_handlers handlers = {
    .ints = h_ints, .text = h_text, .give = h_give, .two_caps = h_two_caps, .big = h_big,
    .lookup_call = h_lookup, .echo_call = h_echo_call, .get_cap_reply = h_get_cap_reply,
    .register_call = h_register_call,
};

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 500000;
    rng = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
    if (!rng)
        rng = 1;
    static uint8_t buf[IDL_MSG_MAX + 64], again[IDL_MSG_MAX];
    struct idl_chan with_caps = {NULL, NULL, NULL, imp, NULL, NULL};
    struct idl_chan no_caps = {NULL, NULL, NULL, NULL, NULL, NULL};
    long accepted = 0, malformed = 0, unknown = 0, by_type[test_msg_count + 1] = {0};
    for (long i = 0; i < rounds; i++) {
        size_t len = 0;
        errval_t err = random_valid(buf, IDL_MSG_MAX, &len);
        CHECK_ERR(err, ERR_OK);
        struct test_msg m;
        CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
        if (below(8))
            mutate(buf, &len, sizeof buf);

        uint8_t *msg = malloc(len ? len : 1);
        memcpy(msg, buf, len);
        err = test_decode(msg, len, &m);
        if (err == ERR_OK) {
            accepted++;
            by_type[m.type]++;
            size_t len2 = 0;
            CHECK_ERR(test_encode(again, sizeof again, &len2, &m), ERR_OK);
            CHECK_EQ(len2, len);
            CHECK(len2 == len && memcmp(again, msg, len) == 0);
        } else if (err == ERR_MSG_MALFORMED) {
            malformed++;
        } else {
            CHECK_ERR(err, ERR_MSG_UNKNOWN);
            unknown++;
        }
        cur_msg = msg;
        cur_len = len;
        errval_t d = test_dispatch(below(2) ? &with_caps : &no_caps, &handlers, msg, len);
        if (err)
            CHECK_ERR(d, err);
        else
            CHECK(d == ERR_OK || d == ERR_MSG_UNKNOWN || d == ERR_CAP_NOT_TRANSFERABLE ||
                  d == ERR_CAP_TYPE);
        free(msg);
        if (check_failures > 20) {
            fprintf(stderr, "stopping after round %ld\n", i);
            break;
        }
    }
    printf("%ld rounds: %ld accepted, %ld malformed, %ld unknown type; %ld handled\n", rounds,
           accepted, malformed, unknown, handled);
    for (unsigned t = 1; t <= test_msg_count; t++)
        CHECK(by_type[t] > 0);
    return check_done();
}
