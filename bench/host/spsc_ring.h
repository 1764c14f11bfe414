/*
 * A minimal single-producer single-consumer ring of fixed-size messages,
 * the second reference beside Boost.Lockfree in the host benchmark
 * (bench/host/urpc_bench.c). The textbook design: a producer count and a
 * consumer count, each on its own cache line, and each side keeping a
 * private copy of the other's count that it refreshes only when the ring
 * looks full (producer) or empty (consumer). Messages are packed back to
 * back, so eight 8-byte messages share a line. No sleeping, no checks on
 * what the other side wrote: what URPC must not be slower than.
 */
#ifndef SPSC_RING_H
#define SPSC_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct spsc_ring {
    /* The producer's line: it writes head, reads its copy of tail. */
    _Alignas(64) uint64_t head;       /* messages pushed */
    uint64_t tail_seen;               /* tail when the producer last looked */
    uint32_t p_pos, p_cap, p_size;    /* next index; capacity; message bytes */
    /* The consumer's line. */
    _Alignas(64) uint64_t tail;       /* messages popped */
    uint64_t head_seen;
    uint32_t c_pos, c_cap, c_size;
    _Alignas(64) uint8_t buf[];       /* cap * size bytes */
};

/* A ring of `bytes` of buffer for messages of `size` bytes, zeroed. */
static inline void spsc_ring_init(struct spsc_ring *r, size_t bytes, uint32_t size)
{
    memset(r, 0, sizeof *r + bytes);
    r->p_cap = r->c_cap = (uint32_t)(bytes / size);
    r->p_size = r->c_size = size;
}

static inline __attribute__((always_inline)) bool spsc_push(struct spsc_ring *r, const void *m,
                                                            uint32_t size)
{
    uint64_t h = r->head;
    if (h - r->tail_seen == r->p_cap) {
        r->tail_seen = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
        if (h - r->tail_seen == r->p_cap)
            return false;
    }
    memcpy(r->buf + (size_t)r->p_pos * size, m, size);
    if (++r->p_pos == r->p_cap)
        r->p_pos = 0;
    __atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
    return true;
}

static inline __attribute__((always_inline)) bool spsc_pop(struct spsc_ring *r, void *m,
                                                           uint32_t size)
{
    uint64_t t = r->tail;
    if (t == r->head_seen) {
        r->head_seen = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        if (t == r->head_seen)
            return false;
    }
    memcpy(m, r->buf + (size_t)r->c_pos * size, size);
    if (++r->c_pos == r->c_cap)
        r->c_pos = 0;
    __atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
    return true;
}

#endif
