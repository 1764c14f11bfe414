/* The boot-time console channel; see linechan.h for the protocol. */
#include "linechan.h"
#include "lib.h"
#include "x86_64/cpu.h"

static uint64_t load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

void linechan_send(struct linechan *c, uint64_t *seq, enum linechan_kind kind,
                   const char *text, uint16_t len)
{
    do {
        uint16_t n = len > LINECHAN_TEXT ? LINECHAN_TEXT : len;
        /* Ring full: wait for the receiver's acknowledgement. */
        while (*seq - load_acquire(&c->ack.acked) > LINECHAN_SLOTS)
            cpu_relax();
        struct linechan_slot *s = &c->slot[(*seq - 1) % LINECHAN_SLOTS];
        memcpy(s->text, text, n);
        s->len = n;
        s->kind = n < len ? LINECHAN_TEXT_FRAGMENT : kind;   /* the kind goes with the last fragment */
        store_release(&s->seq, *seq);
        (*seq)++;
        text += n;
        len -= n;
    } while (len);
}

int linechan_receive(struct linechan *c, uint64_t *next, linechan_out_fn out)
{
    /* Find the end of the first complete message without consuming it. */
    uint64_t s = *next;
    int kind = 0;
    for (uint64_t i = 0; i < LINECHAN_SLOTS; i++, s++) {
        struct linechan_slot *slot = &c->slot[(s - 1) % LINECHAN_SLOTS];
        if (load_acquire(&slot->seq) != s)
            return 0;
        if (slot->kind != LINECHAN_TEXT_FRAGMENT) {
            kind = slot->kind;
            break;
        }
    }
    if (!kind)
        return 0;  /* a line longer than the ring: cannot happen, senders cap lines */
    for (uint64_t q = *next; q <= s; q++) {
        struct linechan_slot *slot = &c->slot[(q - 1) % LINECHAN_SLOTS];
        uint16_t n = slot->len > LINECHAN_TEXT ? LINECHAN_TEXT : slot->len;
        if (n && out)
            out(slot->text, n);
    }
    *next = s + 1;
    store_release(&c->ack.acked, s);
    return kind;
}
