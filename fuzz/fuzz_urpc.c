/*
 * Fuzz target: a URPC channel end (lib/urpc/urpc.c) whose peer is honest
 * until the input says otherwise. The input is a script; each byte is an
 * operation, some followed by arguments:
 *   0 len       the peer (side 1) sends a message of len * 15 % 600 bytes
 *   1 size      side 0 receives non-blocking into a buffer of size * 16 bytes
 *   2 len       side 0 sends len * 15 % 600 bytes non-blocking
 *   3           the peer receives non-blocking
 *   4 w v[8]    the peer's half, word w % 64, is overwritten with v
 *   5           side 0: urpc_pending and urpc_flush_acks
 *   6           the peer hangs up (urpc_close)
 *   7 k         the peer sends a batch (urpc_send_batch) of k % 8 + 1 messages,
 *               mostly small enough to share packed slots
 *   8 k         side 0 receives a batch (urpc_recv_batch) into k % 5 + 1
 *               buffers of sizes taken from k
 * Side 0 must never write into the peer's half or outside its buffers (a
 * snapshot and canaries), must return only documented codes, and while no
 * word was overwritten must receive exactly what the peer sent, in order,
 * and after an honest hang-up every message sent before it, then
 * ERR_CHAN_CLOSED. After a corruption (ERR_URPC_CORRUPT, then
 * ERR_URPC_BROKEN) or a hang-up the pair starts over on a zeroed frame. The corpus holds scripts of real traffic
 * and scripts that write real halves, word by word, as the library left
 * them after real sends (tools/fuzz-corpus runs `replay_urpc --make-corpus`).
 */
#include <string.h>
#include <atoll/urpc.h>
#include "fuzz.h"

#define FRAME 1024              /* 6 slots per side: laps come quickly */
#define GUARD 256
#define HALF (FRAME / 2)
#define MAXQ 64

static uint8_t mem[GUARD + FRAME + GUARD] __attribute__((aligned(64)));
static uint8_t *const frame = mem + GUARD;
static struct urpc_chan a, b;
static uint8_t out[URPC_MSG_MAX], peer_buf[URPC_MSG_MAX], snap[HALF];
static uint8_t batch_buf[8][URPC_MSG_MAX];
static size_t sent_len[MAXQ];
static unsigned q_head, q_tail;
static bool honest, b_closed;

static void fresh(void)
{
    memset(mem, 0xa5, sizeof mem);
    memset(frame, 0, FRAME);
    FUZZ_ASSERT(urpc_init(&a, frame, FRAME, 0) == ERR_OK);
    FUZZ_ASSERT(urpc_init(&b, frame, FRAME, 1) == ERR_OK);
    q_head = q_tail = 0;
    honest = true;
    b_closed = false;
}

static void fill(uint8_t *p, size_t n, size_t tag)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(tag * 29 + i * 7);
}

/* Around every call of side 0: it writes nothing of the peer's half. */
static void before(void) { memcpy(snap, frame + HALF, HALF); }
static void after(void)
{
    FUZZ_ASSERT(memcmp(snap, frame + HALF, HALF) == 0);
    for (size_t i = 0; i < GUARD; i++)
        FUZZ_ASSERT(mem[i] == 0xa5 && mem[GUARD + FRAME + i] == 0xa5);
}

static bool documented(errval_t e)
{
    return e == ERR_OK || e == ERR_WOULD_BLOCK || e == ERR_MSG_TOO_LONG || e == ERR_URPC_CORRUPT ||
           e == ERR_URPC_BROKEN || e == ERR_CHAN_CLOSED;
}

int fuzz_one(const uint8_t *data, size_t size)
{
    fresh();
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++] % 9;
        uint8_t arg = i < size ? data[i] : 0;
        errval_t e;
        switch (op) {
        case 0: {
            i++;
            size_t n = (size_t)arg * 15 % 600;
            fill(peer_buf, n, q_tail);
            if (urpc_send(&b, peer_buf, n, URPC_NONBLOCK) == ERR_OK && q_tail - q_head < MAXQ)
                sent_len[q_tail++ % MAXQ] = n;
            else if (q_tail - q_head >= MAXQ)
                honest = false;     /* lost track: only safety is checked from here */
            break;
        }
        case 1: {
            i++;
            size_t cap = (size_t)arg * 16;
            uint8_t *buf = malloc(cap ? cap : 1);
            size_t got = 0;
            before();
            e = urpc_recv(&a, buf, cap, &got, URPC_NONBLOCK);
            after();
            FUZZ_ASSERT(documented(e));
            if (honest && (e == ERR_OK || e == ERR_MSG_TOO_LONG)) {
                FUZZ_ASSERT(q_head != q_tail);
                size_t want = sent_len[q_head % MAXQ];
                if (e == ERR_OK) {
                    FUZZ_ASSERT(got == want && got <= cap);
                    fill(peer_buf, want, q_head);
                    FUZZ_ASSERT(memcmp(buf, peer_buf, want) == 0);
                } else {
                    FUZZ_ASSERT(want > cap);
                }
                q_head++;
            }
            if (honest)
                FUZZ_ASSERT(e != ERR_URPC_CORRUPT && e != ERR_URPC_BROKEN);
            if (honest && e == ERR_CHAN_CLOSED)
                FUZZ_ASSERT(b_closed && q_head == q_tail);  /* only after everything sent before it */
            free(buf);
            if (e == ERR_URPC_BROKEN || e == ERR_CHAN_CLOSED)
                fresh();
            break;
        }
        case 2: {
            i++;
            size_t n = (size_t)arg * 15 % 600;
            fill(out, n, 1000 + arg);
            before();
            e = urpc_send(&a, out, n, URPC_NONBLOCK);
            after();
            FUZZ_ASSERT(documented(e));
            if (e == ERR_URPC_BROKEN || e == ERR_CHAN_CLOSED)
                fresh();
            break;
        }
        case 3: {
            size_t got;
            /* The honest peer may find side 0's traffic fine only. */
            e = urpc_recv(&b, peer_buf, sizeof peer_buf, &got, URPC_NONBLOCK);
            FUZZ_ASSERT(e == ERR_OK || e == ERR_WOULD_BLOCK || (b_closed && e == ERR_CHAN_CLOSED) || !honest);
            break;
        }
        case 4: {
            if (size - i < 9) {
                i = size;
                break;
            }
            unsigned w = data[i] % (HALF / 8);
            uint64_t v = fuzz_le64(data + i + 1);
            i += 9;
            uint64_t *word = (uint64_t *)(frame + HALF) + w;
            if (*word != v)
                honest = false;
            *word = v;
            break;
        }
        case 5:
            before();
            (void)urpc_pending(&a);
            urpc_flush_acks(&a);
            after();
            break;
        case 6:
            urpc_close(&b, ERR_OK);
            b_closed = true;
            break;
        case 7: {
            /* Lengths 0..56 pack (URPC_PACK_MAX is 55; 56 takes a slot of its
             * own); with the top bit, the first is long enough to fragment. */
            i++;
            struct urpc_out o[8];
            size_t k = arg % 8 + 1, sent = 0;
            for (size_t j = 0; j < k; j++) {
                size_t n = (j == 0 && (arg & 0x80)) ? (size_t)arg * 15 % 600 : ((size_t)arg + j * 11) % 57;
                fill(batch_buf[j], n, q_tail + j);
                o[j] = (struct urpc_out){ batch_buf[j], n };
            }
            e = urpc_send_batch(&b, o, k, &sent, URPC_NONBLOCK);
            FUZZ_ASSERT(sent <= k);
            for (size_t j = 0; j < sent; j++) {
                if (q_tail - q_head >= MAXQ) {
                    honest = false;
                    break;
                }
                sent_len[q_tail++ % MAXQ] = o[j].len;
            }
            break;
        }
        case 8: {
            /* Buffers of exact sizes, each its own allocation (ASan sees a
             * byte written past one); some too small for what comes. */
            i++;
            struct urpc_in r[5];
            size_t k = arg % 5 + 1, got = 99;
            for (size_t j = 0; j < k; j++) {
                size_t room = (arg & 0x20) ? ((size_t)arg * 3 + j * 17) % 70 : URPC_MSG_MAX;
                r[j] = (struct urpc_in){ malloc(room ? room : 1), room, 12345 };
            }
            before();
            e = urpc_recv_batch(&a, r, k, &got, URPC_NONBLOCK);
            after();
            FUZZ_ASSERT(documented(e));
            FUZZ_ASSERT(got <= k && (e != ERR_OK || got > 0));
            for (size_t j = got + 1; j < k; j++)
                FUZZ_ASSERT(r[j].len == 12345);     /* nothing past the first it could not fill */
            if (honest) {
                FUZZ_ASSERT(e != ERR_URPC_CORRUPT && e != ERR_URPC_BROKEN);
                for (size_t j = 0; j < got; j++) {
                    FUZZ_ASSERT(q_head != q_tail);
                    size_t want = sent_len[q_head % MAXQ];
                    FUZZ_ASSERT(r[j].len == want && want <= r[j].size);
                    fill(peer_buf, want, q_head);
                    FUZZ_ASSERT(memcmp(r[j].data, peer_buf, want) == 0);
                    q_head++;
                }
                if (e == ERR_MSG_TOO_LONG) {        /* the next was dropped */
                    FUZZ_ASSERT(q_head != q_tail && sent_len[q_head % MAXQ] > r[got].size);
                    q_head++;
                }
                if (e == ERR_CHAN_CLOSED)
                    FUZZ_ASSERT(b_closed && q_head == q_tail);
            }
            for (size_t j = 0; j < k; j++)
                free(r[j].data);
            if (e == ERR_URPC_BROKEN || e == ERR_CHAN_CLOSED)
                fresh();
            break;
        }
        }
    }
    return honest;      /* 1: every message checked end to end */
}

#ifdef FUZZ_MAKE_CORPUS
static void save(const char *dir, const char *name, const uint8_t *s, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_ASSERT(f != NULL);
    fwrite(s, 1, n, f);
    fclose(f);
    fuzz_one(s, n);     /* every seed runs clean */
}

/* A script that writes the peer's half as real sends left it: word by word. */
static size_t real_half_script(uint8_t *s, const size_t *lens, int nmsgs, int recv_between)
{
    static uint8_t f2[FRAME] __attribute__((aligned(64)));
    static struct urpc_chan x, y;
    memset(f2, 0, sizeof f2);
    FUZZ_ASSERT(urpc_init(&x, f2, FRAME, 0) == ERR_OK && urpc_init(&y, f2, FRAME, 1) == ERR_OK);
    size_t got;
    for (int m = 0; m < nmsgs; m++) {
        fill(peer_buf, lens[m], (size_t)m);
        (void)urpc_send(&y, peer_buf, lens[m], URPC_NONBLOCK);
        if (recv_between)
            (void)urpc_recv(&x, out, sizeof out, &got, URPC_NONBLOCK);
    }
    size_t n = 0;
    for (unsigned w = 0; w < HALF / 8; w++) {
        uint64_t v = ((uint64_t *)(f2 + HALF))[w];
        if (!v)
            continue;
        s[n++] = 4;
        s[n++] = (uint8_t)w;
        for (int k = 0; k < 8; k++)
            s[n++] = (uint8_t)(v >> (8 * k));
    }
    for (int k = 0; k < 10; k++)
        s[n++] = 1, s[n++] = 255;   /* side 0 receives */
    return n;
}

int fuzz_make_corpus(const char *dir)
{
    static uint8_t s[4096];
    size_t n = 0;
    /* Honest traffic: one slot, fragments, both ways, laps. */
    for (int k = 0; k < 12; k++)
        s[n++] = 0, s[n++] = (uint8_t)(k * 3), s[n++] = 1, s[n++] = 255;
    save(dir, "ping-pong", s, n);
    n = 0;
    for (int k = 0; k < 6; k++)
        s[n++] = 0, s[n++] = (uint8_t)(40 + k * 7);     /* 2 to 8 slots each */
    for (int k = 0; k < 8; k++)
        s[n++] = 1, s[n++] = (uint8_t)(k * 32 + 4), s[n++] = 2, s[n++] = (uint8_t)(k * 9), s[n++] = 3;
    save(dir, "fragments-duplex", s, n);
    n = 0;
    for (int k = 0; k < 20; k++)
        s[n++] = 0, s[n++] = 1, s[n++] = 2, s[n++] = 1;   /* both rings fill */
    for (int k = 0; k < 20; k++)
        s[n++] = 1, s[n++] = 255, s[n++] = 3, s[n++] = 5;
    save(dir, "full-rings", s, n);
    n = 0;
    for (int k = 0; k < 3; k++)
        s[n++] = 0, s[n++] = (uint8_t)(k * 20);
    s[n++] = 6;                                         /* the peer hangs up */
    for (int k = 0; k < 5; k++)
        s[n++] = 1, s[n++] = 255;                       /* three messages, then ERR_CHAN_CLOSED */
    save(dir, "hang-up", s, n);
    n = 0;
    for (int k = 0; k < 6; k++)                         /* packed slots both ways */
        s[n++] = 7, s[n++] = (uint8_t)(k * 37 + 3), s[n++] = 8, s[n++] = (uint8_t)(k * 2 + 4);
    s[n++] = 7, s[n++] = 0x87;                          /* a fragmented first message */
    for (int k = 0; k < 4; k++)
        s[n++] = 8, s[n++] = 0x24;                      /* rooms too small for some */
    s[n++] = 7, s[n++] = 5, s[n++] = 6;                 /* a batch, then the hang-up */
    for (int k = 0; k < 3; k++)
        s[n++] = 8, s[n++] = 4;
    save(dir, "batches", s, n);
    static const size_t lens1[] = { 8, 56, 57, 112, 300 };
    save(dir, "real-half-unread", s, real_half_script(s, lens1, 5, 0));
    static const size_t lens2[] = { 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 56, 200 };
    save(dir, "real-half-lapped", s, real_half_script(s, lens2, 12, 1));
    return 0;
}
#endif
