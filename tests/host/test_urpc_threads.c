/*
 * URPC between two threads on two CPUs, built with ThreadSanitizer: the
 * release/acquire pairs of lib/urpc/urpc.c must order every payload access,
 * and no message may be lost, duplicated, reordered or damaged. Every
 * message's length and bytes follow from (sender, index), so the receiver
 * regenerates and compares the whole message.
 *
 *   duplex      both directions at once, varying sizes up to a whole ring,
 *               non-blocking sends and receives interleaved (a blocking send
 *               on both sides with both rings full would wait forever)
 *   long        one direction, blocking, messages up to URPC_MSG_MAX: longer
 *               than the ring, so the sender waits inside a message
 *   batched     one direction, blocking urpc_send_batch of 1..40 mostly small
 *               messages (so they share slots) against urpc_recv_batch of
 *               1..32; the last quarter with a receiver that sleeps at once,
 *               so the batch's single wake-up must reach it
 *   sleepy      ping-pong with spin_ns = 0: every blocking receive that finds
 *               nothing sleeps on the futex and is woken by the sender
 *   asked       a sender blocked for room whose acks came only in the
 *               headers of replies it has not read: it must ask (its
 *               `waiting` flag) and the receiver, spinning or asleep, publish
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <atoll/urpc.h>
#include "check.h"

#define FRAME 4096
#define DUPLEX_MSGS 100000u     /* per direction */
#define LONG_MSGS 3000u
#define BATCH_MSGS 60000u
#define BATCH_MAX 40u           /* messages per send_batch call */
#define BATCH_LEN_MAX 300u
#define SLEEPY_ROUNDS 20000u
#define ASKED_ROUNDS 2000u
/* The asked phase's send and receive timeout: a lost ask waits forever;
 * a host loaded far past its CPUs (as make test's can be) must not look
 * like one. */
#define ASKED_STUCK_NS 60000000000ull
/* Liveness, not speed: a lost wake-up would leave a receive asleep for
 * good; no correct receive under any load waits this long. */
#define STUCK_NS 5000000000ull

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Mostly one slot, some a few, a few up to `max`. */
static size_t msg_len(int from, uint32_t i, size_t max)
{
    uint64_t r = mix((uint64_t)from << 40 | i);
    unsigned kind = r % 100;
    size_t n = kind < 70 ? 57 : kind < 95 ? 8 * URPC_PAYLOAD + 1 : max + 1;
    return (r >> 8) % n;
}

static void msg_fill(uint8_t *p, size_t n, int from, uint32_t i)
{
    uint64_t x = mix((uint64_t)from << 48 | (uint64_t)i << 1 | 1);
    for (size_t j = 0; j < n; j++)
        p[j] = (uint8_t)((x >> (j % 8 * 8)) + j);
}

struct side {
    struct urpc_chan c;
    int id;
    int cpu;                 /* -1: not pinned */
    uint32_t bad;            /* messages that differed from the expected */
    uint32_t errors;         /* unexpected error codes */
    errval_t last_error;
    uint8_t out[URPC_MSG_MAX], in[URPC_MSG_MAX], want[URPC_MSG_MAX];
    uint8_t bufs[BATCH_MAX][BATCH_LEN_MAX];
};

static struct side sides[2];
static uint8_t *frame;
static pthread_barrier_t phase;

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);   /* best effort */
}

static void note_error(struct side *s, errval_t e)
{
    s->errors++;
    s->last_error = e;
}

static void expect_at(struct side *s, const uint8_t *p, size_t got, int from, uint32_t i, size_t n)
{
    msg_fill(s->want, n, from, i);
    if (got != n || memcmp(p, s->want, n) != 0)
        s->bad++;
}

static void expect(struct side *s, size_t got, int from, uint32_t i, size_t max)
{
    expect_at(s, s->in, got, from, i, msg_len(from, i, max));
}

/* Batched messages: mostly a few bytes, some up to a slot, a few longer. */
static size_t batch_len(uint32_t i)
{
    uint64_t r = mix((uint64_t)5 << 40 | i);
    unsigned kind = r % 100;
    size_t n = kind < 70 ? 21 : kind < 95 ? URPC_PAYLOAD + 1 : BATCH_LEN_MAX + 1;
    return (r >> 8) % n;
}

/* Interleaved non-blocking sends and receives until both directions are done. */
static void duplex(struct side *s)
{
    struct urpc_chan *c = &s->c;
    size_t max = c->nslots * URPC_PAYLOAD;
    uint32_t tx = 0, rx = 0, idle = 0;
    while (tx < DUPLEX_MSGS || rx < DUPLEX_MSGS) {
        bool moved = false;
        if (tx < DUPLEX_MSGS) {
            size_t n = msg_len(s->id, tx, max);
            msg_fill(s->out, n, s->id, tx);
            errval_t e = urpc_send(c, s->out, n, URPC_NONBLOCK);
            if (e == ERR_OK) {
                tx++;
                moved = true;
            } else if (e != ERR_WOULD_BLOCK) {
                note_error(s, e);
                return;
            }
        }
        size_t got;
        errval_t e = urpc_recv(c, s->in, sizeof s->in, &got, URPC_NONBLOCK);
        if (e == ERR_OK) {
            expect(s, got, !s->id, rx++, max);
            moved = true;
        } else if (e != ERR_WOULD_BLOCK) {
            note_error(s, e);
            return;
        }
        /* On one CPU the peer needs the processor to make progress. */
        if (moved)
            idle = 0;
        else if (++idle % 1024 == 0)
            sched_yield();
    }
}

/* Side 0 sends blocking, side 1 receives blocking: messages up to
 * URPC_MSG_MAX, so up to 64 slots through a ring of 30. */
static void long_messages(struct side *s)
{
    struct urpc_chan *c = &s->c;
    for (uint32_t i = 0; i < LONG_MSGS; i++) {
        errval_t e;
        if (s->id == 0) {
            size_t n = msg_len(2, i, URPC_MSG_MAX);
            msg_fill(s->out, n, 2, i);
            e = urpc_send(c, s->out, n, 0);
        } else {
            size_t got;
            e = urpc_recv(c, s->in, sizeof s->in, &got, 0);
            if (e == ERR_OK)
                expect(s, got, 2, i, URPC_MSG_MAX);
        }
        if (e) {
            note_error(s, e);
            return;
        }
    }
}

static void batched(struct side *s)
{
    struct urpc_chan *c = &s->c;
    uint32_t i = 0;
    if (s->id == 0) {
        struct urpc_out o[BATCH_MAX];
        while (i < BATCH_MSGS) {
            uint32_t k = 1 + (uint32_t)(mix(i) % BATCH_MAX);
            if (k > BATCH_MSGS - i)
                k = BATCH_MSGS - i;
            for (uint32_t j = 0; j < k; j++) {
                size_t n = batch_len(i + j);
                msg_fill(s->bufs[j], n, 5, i + j);
                o[j] = (struct urpc_out){s->bufs[j], n};
            }
            size_t sent;
            errval_t e = urpc_send_batch(c, o, k, &sent, 0);
            if (e || sent != k) {
                note_error(s, e);
                return;
            }
            i += k;
        }
        return;
    }
    struct urpc_in r[BATCH_MAX];
    while (i < BATCH_MSGS) {
        if (i >= BATCH_MSGS / 4 * 3)
            c->spin_ns = 0;
        uint32_t k = 1 + (uint32_t)(mix(i + 7) % 32);
        for (uint32_t j = 0; j < k; j++)
            r[j] = (struct urpc_in){s->bufs[j], BATCH_LEN_MAX, 0};
        size_t got;
        errval_t e = urpc_recv_batch(c, r, k, &got, 0);
        for (uint32_t j = 0; j < got; j++)
            expect_at(s, s->bufs[j], r[j].len, 5, i + j, batch_len(i + j));
        i += (uint32_t)got;
        if (e) {
            note_error(s, e);
            return;
        }
    }
    c->spin_ns = 20000;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Ping-pong where each receive sleeps at once; side 0 sometimes pauses
 * before sending so side 1 is surely asleep when the message comes. */
static uint64_t slowest_recv_ns[2];

static void sleepy(struct side *s)
{
    struct urpc_chan *c = &s->c;
    c->spin_ns = 0;
    for (uint32_t i = 0; i < SLEEPY_ROUNDS; i++) {
        size_t n = msg_len(3 + s->id, i, 3 * URPC_PAYLOAD), got;
        if (s->id == 0) {
            if (i % 256 == 0)
                nanosleep(&(struct timespec){0, 200000}, NULL);
            msg_fill(s->out, n, 3, i);
            errval_t e = urpc_send(c, s->out, n, 0);
            if (e) {
                note_error(s, e);
                return;
            }
        }
        uint64_t t0 = now_ns();
        errval_t e = urpc_recv(c, s->in, sizeof s->in, &got, 0);
        uint64_t dt = now_ns() - t0;
        if (dt > slowest_recv_ns[s->id])
            slowest_recv_ns[s->id] = dt;
        if (e) {
            note_error(s, e);
            return;
        }
        expect(s, got, 3 + !s->id, i, 3 * URPC_PAYLOAD);
        if (s->id == 1) {
            n = msg_len(4, i, 3 * URPC_PAYLOAD);
            msg_fill(s->out, n, 4, i);
            e = urpc_send(c, s->out, n, 0);
            if (e) {
                note_error(s, e);
                return;
            }
        }
    }
}

/* Side 1 takes a one-slot request and replies (the reply's header carries
 * its ack), then waits in a blocking receive: spinning on even rounds,
 * asleep at once on odd ones. Side 0 does not read the reply: it sends a
 * message as long as the whole ring, which needs that ack, so it blocks
 * for room reading only side 1's control line, where the ack is not (no
 * half ring yet). Only its `waiting` flag makes side 1 publish; a lost ask
 * would hold it until its timeout (an error here). Then side 0 reads both
 * replies, which tell it every ack for the next round. */
static uint64_t asked_waits;

static void asked(struct side *s)
{
    struct urpc_chan *c = &s->c;
    size_t whole = c->nslots * URPC_PAYLOAD, got;
    uint64_t waits = c->stats.full_waits;
    c->timeout_ns = ASKED_STUCK_NS;
    for (uint32_t i = 0; i < ASKED_ROUNDS; i++) {
        errval_t e;
        if (s->id == 0) {
            msg_fill(s->out, 8, 6, 2 * i);
            e = urpc_send(c, s->out, 8, 0);
            if (!e) {
                msg_fill(s->out, whole, 6, 2 * i + 1);
                e = urpc_send(c, s->out, whole, 0);
            }
            for (uint32_t k = 0; k < 2 && !e; k++) {
                e = urpc_recv(c, s->in, sizeof s->in, &got, 0);
                if (!e)
                    expect_at(s, s->in, got, 7, 2 * i + k, 8);
            }
        } else {
            c->spin_ns = i % 2 ? 0 : 20000;
            e = ERR_OK;
            for (uint32_t k = 0; k < 2 && !e; k++) {
                e = urpc_recv(c, s->in, sizeof s->in, &got, 0);
                if (!e) {
                    expect_at(s, s->in, got, 6, 2 * i + k, k ? whole : 8);
                    msg_fill(s->out, 8, 7, 2 * i + k);
                    e = urpc_send(c, s->out, 8, 0);
                }
            }
        }
        if (e) {
            note_error(s, e);
            fprintf(stderr, "asked: side %d, round %u: %s\n", s->id, i, err_name(e));
            return;
        }
    }
    c->timeout_ns = 0;
    if (s->id == 0)
        asked_waits = c->stats.full_waits - waits;
}

static void *run(void *arg)
{
    struct side *s = arg;
    pin(s->cpu);
    duplex(s);
    pthread_barrier_wait(&phase);
    long_messages(s);
    pthread_barrier_wait(&phase);
    batched(s);
    pthread_barrier_wait(&phase);
    sleepy(s);
    pthread_barrier_wait(&phase);
    asked(s);
    return NULL;
}

int main(void)
{
    frame = aligned_alloc(URPC_LINE, FRAME);
    if (!frame)
        return 2;
    memset(frame, 0, FRAME);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_barrier_init(&phase, NULL, 2);
    for (int i = 0; i < 2; i++) {
        sides[i].id = i;
        sides[i].cpu = cpus >= 2 ? i : -1;
        CHECK_ERR(urpc_init(&sides[i].c, frame, FRAME, i), ERR_OK);
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, run, &sides[i]) != 0) {
            perror("pthread_create");
            return 2;
        }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);

    for (int i = 0; i < 2; i++) {
        struct side *s = &sides[i];
        struct urpc_stats *st = &s->c.stats;
        printf("side %d: %llu msgs / %llu slots sent, %llu / %llu received, %llu acks published, "
               "%llu full waits, %llu sleeps, %llu wake-ups sent, %llu packed slots received, "
               "slowest sleepy recv %llu us\n",
               i, (unsigned long long)st->msgs_sent, (unsigned long long)st->slots_sent,
               (unsigned long long)st->msgs_received, (unsigned long long)st->slots_received,
               (unsigned long long)st->acks_published, (unsigned long long)st->full_waits,
               (unsigned long long)st->sleeps, (unsigned long long)st->wakeups_sent,
               (unsigned long long)st->packed_slots_received,
               (unsigned long long)slowest_recv_ns[i] / 1000);
        CHECK_EQ(s->errors, 0);
        if (s->errors)
            fprintf(stderr, "side %d: last error %s\n", i, err_name(s->last_error));
        CHECK_EQ(s->bad, 0);
        CHECK_ERR(s->c.broken, ERR_OK);
        CHECK(slowest_recv_ns[i] < STUCK_NS);
    }
    uint64_t msgs = DUPLEX_MSGS + SLEEPY_ROUNDS + 2 * ASKED_ROUNDS;
    CHECK_EQ(sides[0].c.stats.msgs_sent, msgs + LONG_MSGS + BATCH_MSGS);
    CHECK_EQ(sides[1].c.stats.msgs_received, msgs + LONG_MSGS + BATCH_MSGS);
    CHECK(sides[1].c.stats.packed_slots_received > BATCH_MSGS / 10);   /* they shared slots */
    CHECK_EQ(sides[1].c.stats.msgs_sent, msgs);
    CHECK_EQ(sides[0].c.stats.msgs_received, msgs);
    CHECK(sides[0].c.stats.full_waits > 0);             /* long messages waited */
    CHECK(sides[1].c.stats.sleeps > 0);                 /* the futex path ran */
    CHECK(sides[0].c.stats.wakeups_sent > 0);
    CHECK(sides[0].c.stats.sleeps > 0);
    CHECK(sides[1].c.stats.wakeups_sent > 0);
    CHECK_EQ(asked_waits, ASKED_ROUNDS);                /* every whole-ring send waited */
    printf("asked: %llu waits for room, each answered\n", (unsigned long long)asked_waits);
    free(frame);
    return check_done();
}
