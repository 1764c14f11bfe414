/*
 * Host tests for the code tools/idlc generates (build/include/if/test_if.h
 * from if/test.if) and its runtime (lib/include/atoll/idl.h): the exact
 * wire bytes, a round trip of every message, every kind of malformed input
 * (short, reserved bits, unknown types, truncation in every field, strings
 * without their NUL or with one inside or over their bound, bool 2,
 * trailing bytes), encoder limits, and the transport stubs (_send, _rpc,
 * dispatch, serve_one) over a loopback pair of channels with fake
 * capability hooks, and over one without them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/idl.h>
#include <if/test_if.h>
#include "check.h"

static const struct cap_wire WIRE_A = {1, 3, 0x100000, 0x2000, 7};
static const struct cap_wire WIRE_B = {2, 0xf, 0xfee00000, 0x1000, 0};

/* ---- wire format ----------------------------------------------------------- */

static void test_wire_bytes(void)
{
    uint8_t buf[64];
    size_t len = 0;
    CHECK_ERR(test_ints_encode(buf, sizeof buf, &len, 0x11, 0x2233, 0x44556677, 0x8899aabbccddeeffull,
                               -2, -3, true, ERR_NOT_FOUND), ERR_OK);
    static const uint8_t want[] = {
        test_ints, 0, 0, 0,
        0x11,
        0x33, 0x22,
        0x77, 0x66, 0x55, 0x44,
        0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88,
        0xfe, 0xff, 0xff, 0xff,
        0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        1,
        ERR_NOT_FOUND, 0, 0, 0,
    };
    CHECK_EQ(len, sizeof want);
    CHECK(memcmp(buf, want, sizeof want) == 0);
    CHECK_EQ(len, test_ints_size_max);

    CHECK_ERR(test_lookup_call_encode(buf, sizeof buf, &len, "ab"), ERR_OK);
    static const uint8_t want2[] = {test_lookup_call, 0, 0, 0, 2, 0, 'a', 'b', 0};
    CHECK_EQ(len, sizeof want2);
    CHECK(memcmp(buf, want2, sizeof want2) == 0);

    CHECK_ERR(test_give_encode(buf, sizeof buf, &len, &WIRE_A, 5), ERR_OK);
    static const uint8_t want3[] = {
        test_give, 0, 0, 0,
        1, 0, 0, 0,  3, 0, 0, 0,
        0, 0, 0x10, 0, 0, 0, 0, 0,
        0, 0x20, 0, 0, 0, 0, 0, 0,
        7, 0, 0, 0, 0, 0, 0, 0,
        5, 0, 0, 0, 0, 0, 0, 0,
    };
    CHECK_EQ(len, sizeof want3);
    CHECK(memcmp(buf, want3, sizeof want3) == 0);

    /* Numbering: declaration order, an rpc's call then its reply. */
    CHECK_EQ(test_ints, 1);
    CHECK_EQ(test_lookup_call, 7);
    CHECK_EQ(test_lookup_reply, 8);
    CHECK_EQ(test_register_reply, test_msg_count);
    CHECK_STREQ(test_msg_name(test_echo_reply), "echo_reply");
    CHECK_STREQ(test_msg_name(0), "(unknown)");
    CHECK_STREQ(test_msg_name(test_msg_count + 1), "(unknown)");
    CHECK_EQ(test_big_size_max, IDL_MSG_MAX);
    CHECK_EQ(sizeof(struct cap_wire), 32);
}

/* ---- one valid encoding of every message -------------------------------- */

static uint8_t bigblob[3578];
static const uint8_t B3[] = {1, 2, 0, 3};

/* Encodes sample number `which` (0 .. NSAMPLES-1) into buf. */
#define NSAMPLES 20
static errval_t sample(int which, uint8_t *buf, size_t size, size_t *len)
{
    switch (which) {
    case 0: return test_ints_encode(buf, size, len, 0, 0, 0, 0, 0, 0, false, ERR_OK);
    case 1: return test_ints_encode(buf, size, len, 255, 65535, UINT32_MAX, UINT64_MAX, INT32_MIN,
                                    INT64_MIN, true, ERR_CAP_NOT_TRANSFERABLE);
    case 2: return test_ints_encode(buf, size, len, 1, 2, 3, 4, INT32_MAX, INT64_MAX, false,
                                    (errval_t)12345);
    case 3: return test_text_encode(buf, size, len, "hello", "12345678", B3, sizeof B3,
                                    (const uint8_t *)"wxyz", 4);
    case 4: return test_text_encode(buf, size, len, "", "", NULL, 0, NULL, 0);
    case 5: return test_give_encode(buf, size, len, &WIRE_A, 4096);
    case 6: return test_two_caps_encode(buf, size, len, &WIRE_A, 99, &WIRE_B);
    case 7: return test_empty_encode(buf, size, len);
    case 8: return test_big_encode(buf, size, len, bigblob, sizeof bigblob);
    case 9: return test_big_encode(buf, size, len, bigblob, 0);
    case 10: return test_lookup_call_encode(buf, size, len, "nameservice");
    case 11: return test_lookup_reply_encode(buf, size, len, ERR_NOT_FOUND, 3, 0x123456789ull);
    case 12: return test_echo_call_encode(buf, size, len, B3, sizeof B3, "tag");
    case 13: return test_echo_reply_encode(buf, size, len, B3, 2, "0123456789abcdef");
    case 14: return test_get_cap_call_encode(buf, size, len, 42);
    case 15: return test_get_cap_reply_encode(buf, size, len, ERR_OK, &WIRE_B);
    case 16: return test_register_call_encode(buf, size, len);
    case 17: return test_register_reply_encode(buf, size, len);
    case 18: return test_text_encode(buf, size, len, "\x01\xff~", "a", B3, 1, B3, 0);
    case 19: return test_echo_call_encode(buf, size, len, bigblob, 1024, "");
    }
    return ERR_INVALID_ARG;
}

static void test_round_trips(void)
{
    for (size_t i = 0; i < sizeof bigblob; i++)
        bigblob[i] = (uint8_t)(i * 7 + 1);
    static uint8_t buf[IDL_MSG_MAX], again[IDL_MSG_MAX];
    bool seen[test_msg_count + 1] = {false};
    for (int s = 0; s < NSAMPLES; s++) {
        size_t len = 0, len2 = 0;
        CHECK_ERR(sample(s, buf, sizeof buf, &len), ERR_OK);
        struct test_msg m;
        CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
        CHECK_EQ(m.type, buf[0]);
        seen[m.type] = true;
        CHECK_ERR(test_encode(again, sizeof again, &len2, &m), ERR_OK);
        CHECK_EQ(len2, len);
        CHECK(memcmp(buf, again, len) == 0);
        /* Every size below the real one is refused, the buffer never overrun. */
        for (size_t small = 0; small < len; small += (len > 200 ? 97 : 1))
            CHECK_ERR(sample(s, again, small, &len2), ERR_MSG_TOO_LONG);
    }
    for (unsigned t = 1; t <= test_msg_count; t++)
        CHECK(seen[t]);

    /* Field values come back as sent, pointers into the buffer. */
    size_t len;
    struct test_msg m;
    CHECK_ERR(sample(1, buf, sizeof buf, &len), ERR_OK);
    CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
    CHECK_EQ(m.u.ints.u8, 255);
    CHECK_EQ(m.u.ints.u16, 65535);
    CHECK_EQ(m.u.ints.u32, UINT32_MAX);
    CHECK_EQ(m.u.ints.u64, UINT64_MAX);
    CHECK(m.u.ints.i32 == INT32_MIN);
    CHECK(m.u.ints.i64 == INT64_MIN);
    CHECK(m.u.ints.flag == true);
    CHECK_ERR(m.u.ints.err, ERR_CAP_NOT_TRANSFERABLE);

    CHECK_ERR(sample(3, buf, sizeof buf, &len), ERR_OK);
    CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
    CHECK_STREQ(m.u.text.s, "hello");
    CHECK_STREQ(m.u.text.short_s, "12345678");
    CHECK(m.u.text.s > (const char *)buf && m.u.text.s < (const char *)buf + len);
    CHECK_EQ(m.u.text.b_len, 4);
    CHECK(memcmp(m.u.text.b, B3, 4) == 0);
    CHECK_EQ(m.u.text.tiny_len, 4);
    CHECK(memcmp(m.u.text.tiny, "wxyz", 4) == 0);

    CHECK_ERR(sample(6, buf, sizeof buf, &len), ERR_OK);
    CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
    CHECK(memcmp(&m.caps[0], &WIRE_A, sizeof WIRE_A) == 0);
    CHECK(memcmp(&m.caps[1], &WIRE_B, sizeof WIRE_B) == 0);
    CHECK_EQ(m.u.two_caps.between, 99);
    CHECK_EQ(m.u.two_caps.first, 0);

    CHECK_ERR(sample(8, buf, sizeof buf, &len), ERR_OK);
    CHECK_EQ(len, IDL_MSG_MAX);
    CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
    CHECK_EQ(m.u.big.blob_len, sizeof bigblob);
    CHECK(memcmp(m.u.big.blob, bigblob, sizeof bigblob) == 0);

    CHECK_ERR(sample(13, buf, sizeof buf, &len), ERR_OK);
    CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
    CHECK_STREQ(m.u.echo_reply.tag_back, "0123456789abcdef");
    CHECK_EQ(m.u.echo_reply.data_back_len, 2);
}

/* ---- encoder limits ------------------------------------------------------------ */

static void test_encode_errors(void)
{
    static uint8_t buf[IDL_MSG_MAX];
    size_t len = 12345;
    CHECK_ERR(test_text_encode(buf, sizeof buf, &len, "x", "123456789", NULL, 0, NULL, 0),
              ERR_MSG_TOO_LONG);
    CHECK_ERR(test_text_encode(buf, sizeof buf, &len, "x", "y", NULL, 0, B3, 5), ERR_MSG_TOO_LONG);
    CHECK_ERR(test_text_encode(buf, sizeof buf, &len, NULL, "y", NULL, 0, NULL, 0), ERR_INVALID_ARG);
    CHECK_ERR(test_text_encode(buf, sizeof buf, &len, "x", "y", NULL, 3, NULL, 0), ERR_INVALID_ARG);
    CHECK_ERR(test_big_encode(buf, sizeof buf, &len, bigblob, sizeof bigblob + 1), ERR_MSG_TOO_LONG);
    CHECK_ERR(test_give_encode(buf, sizeof buf, &len, NULL, 1), ERR_INVALID_ARG);
    CHECK_EQ(len, 12345);   /* untouched on failure */
    /* A string of exactly the default bound goes; one more byte does not. */
    static char s[1026];
    memset(s, 'a', 1025);
    CHECK_ERR(test_text_encode(buf, sizeof buf, &len, s, "", NULL, 0, NULL, 0), ERR_MSG_TOO_LONG);
    s[1024] = 0;
    CHECK_ERR(test_text_encode(buf, sizeof buf, &len, s, "", NULL, 0, NULL, 0), ERR_OK);
    struct test_msg m;
    CHECK_ERR(test_decode(buf, len, &m), ERR_OK);
    CHECK_EQ(strlen(m.u.text.s), 1024);
    m.type = (enum test_msg_type)0;
    CHECK_ERR(test_encode(buf, sizeof buf, &len, &m), ERR_MSG_UNKNOWN);
}

/* ---- malformed input ------------------------------------------------------------- */

/* Decode a copy of exactly len bytes on the heap, so ASan sees any read past it. */
static errval_t decode_exact(const uint8_t *msg, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, msg, len);
    struct test_msg m;
    errval_t err = test_decode(copy, len, &m);
    free(copy);
    return err;
}

/* Build a message by hand: header, then raw fields. */
struct hand { uint8_t b[IDL_MSG_MAX + 16]; size_t n; };
static void h_start(struct hand *h, unsigned type)
{
    h->n = 0;
    idl_put_header(h->b, sizeof h->b, &h->n, type);
}
static void h_uint(struct hand *h, uint64_t v, unsigned n) { idl_put_uint(h->b, sizeof h->b, &h->n, v, n); }
static void h_raw(struct hand *h, const void *p, size_t n) { idl_put_raw(h->b, sizeof h->b, &h->n, p, n); }

static void test_malformed(void)
{
    static uint8_t buf[IDL_MSG_MAX + 1];
    size_t len;
    /* Shorter than a header. */
    const uint8_t hdr[4] = {test_empty, 0, 0, 0};
    for (size_t n = 0; n < 4; n++)
        CHECK_ERR(decode_exact(hdr, n), ERR_MSG_MALFORMED);
    CHECK_ERR(decode_exact(hdr, 4), ERR_OK);
    /* Reserved bytes. */
    for (int bit = 0; bit < 16; bit++) {
        uint8_t r[4] = {test_empty, 0, 0, 0};
        r[2 + bit / 8] = (uint8_t)(1u << (bit % 8));
        CHECK_ERR(decode_exact(r, 4), ERR_MSG_MALFORMED);
    }
    /* Unknown types: 0, N+1, high byte set. */
    const uint8_t t0[4] = {0, 0, 0, 0}, tn[4] = {test_msg_count + 1, 0, 0, 0},
                  thi[4] = {test_empty, 1, 0, 0}, tff[4] = {0xff, 0xff, 0, 0};
    CHECK_ERR(decode_exact(t0, 4), ERR_MSG_UNKNOWN);
    CHECK_ERR(decode_exact(tn, 4), ERR_MSG_UNKNOWN);
    CHECK_ERR(decode_exact(thi, 4), ERR_MSG_UNKNOWN);
    CHECK_ERR(decode_exact(tff, 4), ERR_MSG_UNKNOWN);

    /* Every sample: truncated anywhere (so in each field), one byte too many. */
    for (int s = 0; s < NSAMPLES; s++) {
        CHECK_ERR(sample(s, buf, sizeof buf, &len), ERR_OK);
        for (size_t n = 4; n < len; n++) {
            errval_t e = decode_exact(buf, n);
            if (e != ERR_MSG_MALFORMED) {
                fprintf(stderr, "sample %d truncated to %zu of %zu\n", s, n, len);
                CHECK_ERR(e, ERR_MSG_MALFORMED);
            }
        }
        buf[len] = 0;
        CHECK_ERR(decode_exact(buf, len + 1), ERR_MSG_MALFORMED);
    }

    struct hand h;
    /* Strings: no NUL at the end, a NUL inside, over the bound, length past the end. */
    h_start(&h, test_lookup_call);
    h_uint(&h, 3, 2);
    h_raw(&h, "abcd", 4);                            /* 'd' where the NUL belongs */
    CHECK_ERR(decode_exact(h.b, h.n), ERR_MSG_MALFORMED);
    h_start(&h, test_lookup_call);
    h_uint(&h, 3, 2);
    h_raw(&h, "a\0c", 4);                            /* inner NUL, final NUL */
    CHECK_ERR(decode_exact(h.b, h.n), ERR_MSG_MALFORMED);
    h_start(&h, test_lookup_call);
    h_uint(&h, 3, 2);
    h_raw(&h, "abc", 4);                             /* the good one */
    CHECK_ERR(decode_exact(h.b, h.n), ERR_OK);
    h_start(&h, test_lookup_call);
    h_uint(&h, 65, 2);                               /* string<64> */
    for (int i = 0; i < 65; i++)
        h_raw(&h, "a", 1);
    h_raw(&h, "", 1);
    CHECK_ERR(decode_exact(h.b, h.n), ERR_MSG_MALFORMED);
    h_start(&h, test_lookup_call);
    h_uint(&h, 64, 2);
    for (int i = 0; i < 64; i++)
        h_raw(&h, "a", 1);
    h_raw(&h, "", 1);
    CHECK_ERR(decode_exact(h.b, h.n), ERR_OK);
    h_start(&h, test_lookup_call);
    h_uint(&h, 0xffff, 2);                           /* length far past the end */
    h_raw(&h, "ab", 3);
    CHECK_ERR(decode_exact(h.b, h.n), ERR_MSG_MALFORMED);

    /* bytes<4> with 5; bytes<3578> fills a whole message. */
    h_start(&h, test_text);
    h_uint(&h, 0, 2); h_raw(&h, "", 1);              /* s = "" */
    h_uint(&h, 0, 2); h_raw(&h, "", 1);              /* short_s = "" */
    h_uint(&h, 0, 2);                                /* b = {} */
    h_uint(&h, 5, 2); h_raw(&h, "12345", 5);         /* tiny: 5 > 4 */
    CHECK_ERR(decode_exact(h.b, h.n), ERR_MSG_MALFORMED);
    h.n -= 7;
    h_uint(&h, 4, 2); h_raw(&h, "1234", 4);
    CHECK_ERR(decode_exact(h.b, h.n), ERR_OK);
    h_start(&h, test_big);
    h_uint(&h, 3579, 2);
    h_raw(&h, bigblob, 3578); h_raw(&h, "", 1);
    CHECK_ERR(decode_exact(h.b, h.n), ERR_MSG_MALFORMED);

    /* bool: only 0 and 1. */
    CHECK_ERR(sample(1, buf, sizeof buf, &len), ERR_OK);
    size_t flag_at = 4 + 1 + 2 + 4 + 8 + 4 + 8;
    CHECK_EQ(buf[flag_at], 1);
    for (unsigned v = 2; v < 256; v++) {
        buf[flag_at] = (uint8_t)v;
        CHECK_ERR(decode_exact(buf, len), ERR_MSG_MALFORMED);
    }
    buf[flag_at] = 0;
    CHECK_ERR(decode_exact(buf, len), ERR_OK);

    /* An empty message with a trailing byte. */
    const uint8_t trail[5] = {test_empty, 0, 0, 0, 0};
    CHECK_ERR(decode_exact(trail, 5), ERR_MSG_MALFORMED);
}

/* ---- the loopback channel ------------------------------------------------------ */

#define QMAX 8
struct fake {
    uint8_t q[QMAX][IDL_MSG_MAX];
    size_t qlen[QMAX];
    unsigned head, count;
    struct fake *peer;               /* where send puts messages */
    const struct test_handlers *serve;  /* if set: serve each message as it arrives */
    errval_t served;                 /* result of the last such dispatch */
    errval_t send_err;               /* forced send result */
    int sent;
    uint64_t next_slot;              /* cap_import hands out slots from here */
    struct cap_wire imported[8];     /* by slot - 100 */
    struct idl_chan ch;
};

static errval_t fake_send(struct idl_chan *ch, const void *msg, size_t len, unsigned flags)
{
    struct fake *f = ch->state, *p = f->peer;
    CHECK_EQ(flags, 0);
    if (f->send_err)
        return f->send_err;
    if (len > IDL_MSG_MAX)
        return ERR_MSG_TOO_LONG;
    CHECK(p->count < QMAX);
    unsigned i = (p->head + p->count++) % QMAX;
    memcpy(p->q[i], msg, len);
    p->qlen[i] = len;
    f->sent++;
    if (p->serve)
        p->served = test_serve_one(&p->ch, p->serve, 0);
    return ERR_OK;
}

static errval_t fake_recv(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags)
{
    struct fake *f = ch->state;
    (void)flags;
    if (!f->count)
        return ERR_WOULD_BLOCK;
    unsigned i = f->head;
    f->head = (f->head + 1) % QMAX;
    f->count--;
    if (f->qlen[i] > size)
        return ERR_MSG_TOO_LONG;
    memcpy(buf, f->q[i], f->qlen[i]);
    *len = f->qlen[i];
    return ERR_OK;
}

/* Capabilities: slot s exports as a wire naming it; slot 0 is empty. */
static errval_t fake_export(struct idl_chan *ch, uint64_t slot, struct cap_wire *out)
{
    (void)ch;
    if (slot == 0)
        return ERR_CAP_EMPTY;
    *out = (struct cap_wire){(uint32_t)(slot & 0xf), 3, slot << 12, 4096, slot};
    return ERR_OK;
}

static errval_t fake_import(struct idl_chan *ch, const struct cap_wire *in, uint64_t *slot)
{
    struct fake *f = ch->state;
    if (in->type == 0xf)
        return ERR_CAP_TYPE;
    CHECK(f->next_slot - 100 < 8);
    f->imported[f->next_slot - 100] = *in;
    *slot = f->next_slot++;
    return ERR_OK;
}

static void fake_init(struct fake *f, struct fake *peer, bool caps)
{
    memset(f, 0, sizeof *f);
    f->peer = peer;
    f->next_slot = 100;
    f->ch = (struct idl_chan){fake_send, fake_recv, caps ? fake_export : NULL,
                              caps ? fake_import : NULL, f, NULL};
}

/* The server's handlers. */
static int calls;
static struct test_ints_args got_ints;
static struct test_give_args got_give;
static uint64_t got_first, got_second;
static int reply_mode;    /* 0 right reply, 1 wrong type, 2 malformed, 3 none */

static errval_t on_ints(struct idl_chan *ch, const struct test_ints_args *a)
{
    (void)ch;
    calls++;
    got_ints = *a;
    return a->u8 == 66 ? ERR_NAME_TAKEN : ERR_OK;
}

static errval_t on_give(struct idl_chan *ch, const struct test_give_args *a)
{
    (void)ch;
    calls++;
    got_give = *a;
    return ERR_OK;
}

static errval_t on_two_caps(struct idl_chan *ch, const struct test_two_caps_args *a)
{
    (void)ch;
    calls++;
    got_first = a->first;
    got_second = a->second;
    return ERR_OK;
}

static errval_t on_lookup(struct idl_chan *ch, const struct test_lookup_call_args *a)
{
    calls++;
    if (reply_mode == 1)
        return test_echo_reply_send(ch, NULL, 0, "x");
    if (reply_mode == 2) {
        const uint8_t bad[5] = {test_lookup_reply, 0, 0, 0, 1};
        return ch->send(ch, bad, sizeof bad, 0);
    }
    if (reply_mode == 3)
        return ERR_OK;
    if (strcmp(a->name, "ns") == 0)
        return test_lookup_reply_send(ch, ERR_OK, 3, 0xabcdef0123ull);
    return test_lookup_reply_send(ch, ERR_NOT_FOUND, 0, 0);
}

static errval_t on_echo(struct idl_chan *ch, const struct test_echo_call_args *a)
{
    calls++;
    uint8_t rev[1024];
    for (size_t i = 0; i < a->data_len; i++)
        rev[i] = a->data[a->data_len - 1 - i];
    return test_echo_reply_send(ch, rev, a->data_len, a->tag);
}

static errval_t on_get_cap(struct idl_chan *ch, const struct test_get_cap_call_args *a)
{
    calls++;
    return test_get_cap_reply_send(ch, ERR_OK, a->which);
}

static errval_t on_register(struct idl_chan *ch, const struct test_register_call_args *a)
{
    (void)a;
    calls++;
    return test_register_reply_send(ch);
}

static const struct test_handlers server = {
    .ints = on_ints, .give = on_give, .two_caps = on_two_caps, .lookup_call = on_lookup,
    .echo_call = on_echo, .get_cap_call = on_get_cap, .register_call = on_register,
};

static void test_channel(void)
{
    static struct fake cli, srv;
    fake_init(&cli, &srv, true);
    fake_init(&srv, &cli, true);
    srv.serve = &server;

    /* One-way messages: values through, the handler's result back from dispatch. */
    calls = 0;
    CHECK_ERR(test_ints_send(&cli.ch, 7, 8, 9, 10, -11, -12, true, ERR_TIMEOUT), ERR_OK);
    CHECK_ERR(srv.served, ERR_OK);
    CHECK_EQ(calls, 1);
    CHECK_EQ(got_ints.u8, 7);
    CHECK(got_ints.i32 == -11 && got_ints.i64 == -12 && got_ints.flag);
    CHECK_ERR(got_ints.err, ERR_TIMEOUT);
    CHECK_ERR(test_ints_send(&cli.ch, 66, 0, 0, 0, 0, 0, false, ERR_OK), ERR_OK);
    CHECK_ERR(srv.served, ERR_NAME_TAKEN);

    /* No handler: ERR_MSG_UNKNOWN, nothing called. */
    calls = 0;
    CHECK_ERR(test_empty_send(&cli.ch), ERR_OK);
    CHECK_ERR(srv.served, ERR_MSG_UNKNOWN);
    CHECK_EQ(calls, 0);

    /* Capabilities: exported on send, imported into fresh slots before the handler. */
    CHECK_ERR(test_give_send(&cli.ch, 5, 8192), ERR_OK);
    CHECK_ERR(srv.served, ERR_OK);
    CHECK_EQ(got_give.frame, 100);
    CHECK_EQ(got_give.bytes, 8192);
    CHECK_EQ(srv.imported[0].badge, 5);
    CHECK_EQ(srv.imported[0].base, 5 << 12);
    CHECK_ERR(test_two_caps_send(&cli.ch, 6, 1, 7), ERR_OK);
    CHECK_ERR(srv.served, ERR_OK);
    CHECK_EQ(got_first, 101);
    CHECK_EQ(got_second, 102);
    CHECK_EQ(srv.imported[2].badge, 7);
    /* An export that fails sends nothing; an import that fails calls nothing. */
    int sent = cli.sent;
    CHECK_ERR(test_give_send(&cli.ch, 0, 1), ERR_CAP_EMPTY);
    CHECK_ERR(test_two_caps_send(&cli.ch, 1, 1, 0), ERR_CAP_EMPTY);
    CHECK_EQ(cli.sent, sent);
    calls = 0;
    CHECK_ERR(test_give_send(&cli.ch, 0xf, 1), ERR_OK);   /* type 0xf: import refuses */
    CHECK_ERR(srv.served, ERR_CAP_TYPE);
    CHECK_EQ(calls, 0);

    /* RPCs. */
    errval_t rerr = ERR_OK;
    uint32_t core = 0;
    uint64_t sid = 0;
    reply_mode = 0;
    CHECK_ERR(test_lookup_rpc(&cli.ch, "ns", &rerr, &core, &sid), ERR_OK);
    CHECK_ERR(rerr, ERR_OK);
    CHECK_EQ(core, 3);
    CHECK_EQ(sid, 0xabcdef0123ull);
    CHECK_ERR(test_lookup_rpc(&cli.ch, "nobody", &rerr, NULL, NULL), ERR_OK);
    CHECK_ERR(rerr, ERR_NOT_FOUND);
    /* A reply of another type, a malformed one, none at all. */
    reply_mode = 1;
    CHECK_ERR(test_lookup_rpc(&cli.ch, "ns", &rerr, &core, &sid), ERR_MSG_UNKNOWN);
    reply_mode = 2;
    CHECK_ERR(test_lookup_rpc(&cli.ch, "ns", &rerr, &core, &sid), ERR_MSG_MALFORMED);
    reply_mode = 3;
    CHECK_ERR(test_lookup_rpc(&cli.ch, "ns", &rerr, &core, &sid), ERR_WOULD_BLOCK);
    reply_mode = 0;
    /* Arguments the encoder refuses never reach the channel. */
    sent = cli.sent;
    char long_name[70];
    memset(long_name, 'n', 69);
    long_name[69] = 0;
    CHECK_ERR(test_lookup_rpc(&cli.ch, long_name, &rerr, &core, &sid), ERR_MSG_TOO_LONG);
    CHECK_EQ(cli.sent, sent);
    cli.send_err = ERR_TIMEOUT;
    CHECK_ERR(test_lookup_rpc(&cli.ch, "ns", &rerr, &core, &sid), ERR_TIMEOUT);
    cli.send_err = ERR_OK;

    /* Strings and bytes back: into the caller's reply buffer. */
    uint8_t replybuf[test_echo_reply_size_max];
    const uint8_t data[5] = {1, 2, 3, 4, 5};
    const uint8_t *back = NULL;
    size_t back_len = 0;
    const char *tag = NULL;
    CHECK_ERR(test_echo_rpc(&cli.ch, data, 5, "tagged", &back, &back_len, &tag, replybuf,
                            sizeof replybuf), ERR_OK);
    CHECK_EQ(back_len, 5);
    CHECK(back >= replybuf && back + back_len <= replybuf + sizeof replybuf);
    CHECK(back[0] == 5 && back[4] == 1);
    CHECK_STREQ(tag, "tagged");
    CHECK_ERR(test_echo_rpc(&cli.ch, data, 5, "t", NULL, NULL, NULL, replybuf, 8), ERR_MSG_TOO_LONG);
    sent = cli.sent;
    CHECK_ERR(test_echo_rpc(&cli.ch, data, 5, "t", NULL, NULL, NULL, NULL, 0), ERR_INVALID_ARG);
    CHECK_EQ(cli.sent, sent);
    CHECK_EQ(cli.count, 0);

    /* A capability back. */
    uint64_t slot = 0;
    CHECK_ERR(test_get_cap_rpc(&cli.ch, 9, &rerr, &slot), ERR_OK);
    CHECK_ERR(rerr, ERR_OK);
    CHECK_EQ(slot, 100);
    CHECK_EQ(cli.imported[0].badge, 9);
    CHECK_ERR(test_get_cap_rpc(&cli.ch, 0, &rerr, &slot), ERR_WOULD_BLOCK);  /* no reply: */
    CHECK_ERR(srv.served, ERR_CAP_EMPTY);                                 /* cannot export */
    CHECK_ERR(test_register_rpc(&cli.ch), ERR_OK);

    /* serve_one passes on what recv says. */
    CHECK_ERR(test_serve_one(&srv.ch, &server, 0), ERR_WOULD_BLOCK);

    /* Dispatch: decode errors come back without a call. */
    calls = 0;
    const uint8_t bad[5] = {test_ints, 0, 0, 0, 1};
    CHECK_ERR(test_dispatch(&srv.ch, &server, bad, sizeof bad), ERR_MSG_MALFORMED);
    const uint8_t unk[4] = {test_msg_count + 1, 0, 0, 0};
    CHECK_ERR(test_dispatch(&srv.ch, &server, unk, sizeof unk), ERR_MSG_UNKNOWN);
    CHECK_EQ(calls, 0);

    /* A channel without capability hooks. */
    static struct fake plain, plainsrv;
    fake_init(&plain, &plainsrv, false);
    fake_init(&plainsrv, &plain, false);
    plainsrv.serve = &server;
    CHECK_ERR(test_give_send(&plain.ch, 5, 1), ERR_CAP_NOT_TRANSFERABLE);
    CHECK_EQ(plain.sent, 0);
    CHECK_ERR(test_ints_send(&plain.ch, 1, 2, 3, 4, 5, 6, false, ERR_OK), ERR_OK);
    CHECK_ERR(plainsrv.served, ERR_OK);
    uint8_t msg[64];
    size_t len;
    CHECK_ERR(test_give_encode(msg, sizeof msg, &len, &WIRE_A, 1), ERR_OK);
    calls = 0;
    CHECK_ERR(test_dispatch(&plainsrv.ch, &server, msg, len), ERR_CAP_NOT_TRANSFERABLE);
    CHECK_EQ(calls, 0);
    /* The rpc reaches the server, whose reply cannot carry the capability. */
    CHECK_ERR(test_get_cap_rpc(&plain.ch, 9, &rerr, &slot), ERR_WOULD_BLOCK);
    CHECK_ERR(plainsrv.served, ERR_CAP_NOT_TRANSFERABLE);
    /* A reply that carries one, to a client that cannot import it. */
    plainsrv.serve = NULL;
    CHECK_ERR(test_get_cap_reply_encode(msg, sizeof msg, &len, ERR_OK, &WIRE_B), ERR_OK);
    plain.count = 1;
    plain.head = 0;
    memcpy(plain.q[0], msg, len);
    plain.qlen[0] = len;
    plainsrv.count = 0;
    CHECK_ERR(test_get_cap_rpc(&plain.ch, 9, &rerr, &slot), ERR_CAP_NOT_TRANSFERABLE);
}

int main(void)
{
    test_wire_bytes();
    test_round_trips();
    test_encode_errors();
    test_malformed();
    test_channel();
    return check_done();
}
