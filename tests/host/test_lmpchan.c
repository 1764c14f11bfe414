/*
 * Host unit tests of typed channels over local messages (lib/lmpchan.c)
 * with the generated stubs of if/monlmp.if: a fake kernel delivers LMP
 * messages (four words, one capability) between two channels, so rpcs
 * with and without capabilities round-trip; then every malformed fragment
 * a peer could send is refused (bad magic, reserved bits, no length, an
 * offset that is not the next, a length that changes, a capability on a
 * later fragment), a refused message never leaks a capability, and what
 * the decoder is then given never extends past what was sent.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/lmpchan.h>
#include <atoll/urpc.h>
#include <if/monlmp_if.h>
#include "check.h"

/* -- a fake kernel: one queue of messages per direction ---------------------------- */
struct fake_msg {
    uint64_t w[4];
    uint64_t badge;
    uint64_t cap;      /* 0: none; else a "capability" number */
};
#define QLEN 64
struct queue {
    struct fake_msg m[QLEN];
    unsigned head, count;
};
static struct queue to_server, to_client;
static int caps_alive;          /* capabilities in slots right now */
static capslot_t next_slot = 100;
static uint64_t client_badge = 7;

/* Which side is calling the fake syscalls. */
static bool as_server;

errval_t slot_alloc(capslot_t *out)
{
    *out = next_slot++;
    return ERR_OK;
}
void slot_free(capslot_t s) { (void)s; }
errval_t cap_free(capslot_t s)
{
    (void)s;
    caps_alive--;
    return ERR_OK;
}
errval_t sys_yield(void) { return ERR_OK; }
uint64_t urpc_os_now_ns(void)
{
    static uint64_t t;
    return t += 1000;
}

errval_t sys_lmp_send(capslot_t ep, uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t cap)
{
    (void)ep;
    struct queue *q = as_server ? &to_client : &to_server;
    if (q->count == QLEN)
        return ERR_WOULD_BLOCK;
    struct fake_msg *m = &q->m[(q->head + q->count++) % QLEN];
    *m = (struct fake_msg){ { w0, w1, w2, w3 }, as_server ? LMPCHAN_MONITOR_BADGE : client_badge,
                            cap == LMP_NO_CAP ? 0 : (cap & ~LMP_SEND_MOVE) };
    if (cap != LMP_NO_CAP && !(cap & LMP_SEND_MOVE))
        caps_alive++;   /* a copy: one more */
    return ERR_OK;
}

errval_t sys_lmp_recv(uint64_t recv_slot, uint32_t flags, struct lmp_msg *out)
{
    (void)flags;
    struct queue *q = as_server ? &to_server : &to_client;
    if (!q->count)
        return ERR_WOULD_BLOCK;
    struct fake_msg *m = &q->m[q->head];
    q->head = (q->head + 1) % QLEN;
    q->count--;
    *out = (struct lmp_msg){ .badge = m->badge, .has_cap = m->cap != 0 };
    memcpy(out->w, m->w, sizeof m->w);
    (void)recv_slot;
    return ERR_OK;
}

/* -- a tiny server: the fake monitor ---------------------------------------------- */
static struct lmp_chan srv;
static int connects;

static errval_t on_connect(struct idl_chan *ch, const struct monlmp_connect_call_args *a)
{
    connects++;
    if (a->service == 0)
        return monlmp_connect_reply_send(ch, ERR_NOT_FOUND, 0);
    caps_alive++;   /* a frame the server makes for the reply */
    return monlmp_connect_reply_send(ch, ERR_OK, 555);
}

static errval_t on_spawn_peer(struct idl_chan *ch, const struct monlmp_spawn_peer_call_args *a)
{
    uint64_t id = strlen(a->cmd);
    return monlmp_spawn_peer_reply_send(ch, ERR_OK, id, 0);
}

static const struct monlmp_handlers handlers = { .connect_call = on_connect, .spawn_peer_call = on_spawn_peer };

/* Feed everything queued for the server; dispatch whole messages. */
static int serve_all(int *refused)
{
    int served = 0;
    struct lmp_msg m;
    as_server = true;
    while (sys_lmp_recv(0, 0, &m) == ERR_OK) {
        capslot_t cap = 0;
        if (m.has_cap) {
            slot_alloc(&cap);
        }
        size_t len;
        errval_t err = lmpchan_feed(&srv, &m, cap, &len);
        if (err == ERR_WOULD_BLOCK)
            continue;
        if (!err)
            err = monlmp_dispatch(&srv.idl, &handlers, srv.buf, len);
        if (srv.cap_in_set) {
            cap_free(srv.cap_in);
            srv.cap_in_set = false;
        }
        if (err)
            (*refused)++;
        else
            served++;
    }
    as_server = false;
    return served;
}

static void test_round_trips(void)
{
    struct lmp_chan cli;
    lmpchan_init(&cli, 8, LMPCHAN_MONITOR_BADGE);
    lmpchan_init(&srv, 9, 0);
    srv.move_caps = true;
    int refused = 0;
    /* A call, served, answered with a capability. */
    CHECK_ERR(monlmp_connect_call_send(&cli.idl, 42), ERR_OK);
    CHECK_EQ(serve_all(&refused), 1);
    uint8_t buf[monlmp_size_max];
    size_t len;
    CHECK_ERR(cli.idl.recv(&cli.idl, buf, sizeof buf, &len, 0), ERR_OK);
    struct monlmp_msg m;
    CHECK_ERR(monlmp_decode(buf, len, &m), ERR_OK);
    CHECK_EQ(m.type, monlmp_connect_reply);
    uint64_t slot = 0;
    CHECK_ERR(cli.idl.cap_import(&cli.idl, &m.caps[0], &slot), ERR_OK);
    CHECK(slot != 0);   /* it came, in a slot of ours */
    /* An error reply carries no capability, and none is imported. */
    CHECK_ERR(monlmp_connect_call_send(&cli.idl, 0), ERR_OK);
    serve_all(&refused);
    CHECK_ERR(cli.idl.recv(&cli.idl, buf, sizeof buf, &len, 0), ERR_OK);
    CHECK_ERR(monlmp_decode(buf, len, &m), ERR_OK);
    CHECK_EQ(m.u.connect_reply.err, ERR_NOT_FOUND);
    CHECK_ERR(cli.idl.cap_import(&cli.idl, &m.caps[0], &slot), ERR_OK);
    CHECK_EQ(slot, 0);
    /* A long call: 160 characters in six fragments, reassembled. */
    char cmd[161];
    memset(cmd, 'x', 160);
    cmd[160] = 0;
    CHECK_ERR(monlmp_spawn_peer_call_send(&cli.idl, cmd), ERR_OK);
    CHECK_EQ(to_server.count, (monlmp_spawn_peer_call_size_max + LMPCHAN_FRAG_BYTES - 1) / LMPCHAN_FRAG_BYTES);
    CHECK_EQ(serve_all(&refused), 1);
    CHECK_ERR(cli.idl.recv(&cli.idl, buf, sizeof buf, &len, 0), ERR_OK);
    CHECK_ERR(monlmp_decode(buf, len, &m), ERR_OK);
    CHECK_EQ(m.u.spawn_peer_reply.domain, 160);
    CHECK_EQ(refused, 0);
    /* A reply from someone else (another badge) is not taken for ours. */
    as_server = true;
    client_badge = 7;
    sys_lmp_send(0, LMPCHAN_MAGIC | 8 << 8, 0, 0, 0, LMP_NO_CAP);
    to_client.m[(to_client.head + to_client.count - 1) % QLEN].badge = 99;
    as_server = false;
    CHECK_ERR(cli.idl.recv(&cli.idl, buf, sizeof buf, &len, URPC_NONBLOCK), ERR_WOULD_BLOCK);
    CHECK_EQ(cli.dropped, 1);
    /* Too long to send. */
    static uint8_t big[LMPCHAN_MSG_MAX + 1];
    CHECK_ERR(cli.idl.send(&cli.idl, big, sizeof big, 0), ERR_MSG_TOO_LONG);
}

/* One fragment, fed to a fresh channel: what it gives. */
static errval_t feed_one(struct lmp_chan *c, uint64_t w0, capslot_t cap)
{
    struct lmp_msg m = { .w = { w0, 0, 0, 0 } };
    size_t len;
    return lmpchan_feed(c, &m, cap, &len);
}

static void test_malformed_fragments(void)
{
    struct lmp_chan c;
    lmpchan_init(&c, 1, 0);
    CHECK_ERR(feed_one(&c, 0x55 | 4 << 8, 0), ERR_MSG_MALFORMED);                     /* magic */
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 4 << 8 | 1 << 24, 0), ERR_MSG_MALFORMED);   /* reserved */
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC, 0), ERR_MSG_MALFORMED);                      /* no length */
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 60 << 8 | 28 << 16, 0), ERR_MSG_MALFORMED); /* not the first */
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 60 << 8 | 30 << 16, 0), ERR_MSG_MALFORMED); /* off the grid */
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 20 << 8 | 20 << 16, 0), ERR_MSG_MALFORMED); /* offset >= length */
    /* A message started, then a fragment that skips one, or changes its length. */
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 100 << 8, 0), ERR_WOULD_BLOCK);
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 100 << 8 | 56 << 16, 0), ERR_MSG_MALFORMED);
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 100 << 8, 0), ERR_WOULD_BLOCK);
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 99 << 8 | 28 << 16, 0), ERR_MSG_MALFORMED);
    /* A capability with a later fragment: refused, and freed. */
    int alive = caps_alive;
    caps_alive++;
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 100 << 8, 0), ERR_WOULD_BLOCK);
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 100 << 8 | 28 << 16, 77), ERR_MSG_MALFORMED);
    CHECK_EQ(caps_alive, alive);
    /* A capability with a first fragment whose message is then abandoned:
     * freed when the next message starts. */
    caps_alive++;
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 100 << 8, 78), ERR_WOULD_BLOCK);
    CHECK_ERR(feed_one(&c, LMPCHAN_MAGIC | 4 << 8, 0), ERR_OK);
    CHECK_EQ(caps_alive, alive);
    /* Random words: never accepted beyond what was sent, never a crash
     * (ASan watches c.buf). */
    uint64_t x = 88172645463325252ull;
    int whole = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Mostly plausible headers (no reserved bits, often a first
         * fragment), some wholly random. */
        uint64_t w0 = x;
        if (i % 3) {
            uint64_t off = i % 2 ? 0 : ((x >> 16) & 0xff);
            w0 = (x & 0xffffffff0000ff00ull) | off << 16 | LMPCHAN_MAGIC;
        }
        struct lmp_msg m = { .w = { w0, x * 3, x * 5, x * 7 } };
        size_t len = 0;
        errval_t err = lmpchan_feed(&c, &m, 0, &len);
        if (!err) {
            whole++;
            CHECK(len >= 1 && len <= LMPCHAN_MSG_MAX);
            struct monlmp_msg dm;
            monlmp_decode(c.buf, len, &dm);   /* whatever it says, within the buffer */
        }
    }
    CHECK(whole > 0);
    printf("random fragments: %d whole messages, %llu dropped\n", whole, (unsigned long long)c.dropped);
}

static void test_split(void)
{
    uint8_t msg[100];
    for (int i = 0; i < 100; i++)
        msg[i] = (uint8_t)(i * 7);
    uint64_t frag[8][4];
    unsigned n = lmpchan_split(msg, sizeof msg, frag, 8);
    CHECK_EQ(n, 4);
    struct lmp_chan c;
    lmpchan_init(&c, 1, 0);
    size_t len = 0;
    for (unsigned i = 0; i < n; i++) {
        struct lmp_msg m;
        memcpy(m.w, frag[i], sizeof m.w);
        errval_t err = lmpchan_feed(&c, &m, 0, &len);
        CHECK_ERR(err, i + 1 < n ? ERR_WOULD_BLOCK : ERR_OK);
    }
    CHECK_EQ(len, 100);
    CHECK(!memcmp(c.buf, msg, 100));
    CHECK_EQ(lmpchan_split(msg, 0, frag, 8), 0);
    CHECK_EQ(lmpchan_split(msg, sizeof msg, frag, 3), 0);   /* does not fit the caller's array */
}

int main(void)
{
    test_split();
    test_round_trips();
    test_malformed_fragments();
    return check_done();
}
