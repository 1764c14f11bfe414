/*
 * Boost.Lockfree's spsc_queue (Debian's libboost-dev, header only) for the
 * host benchmark: the queue most people who know shared-memory queues
 * already use. Fixed-size messages, a compile-time capacity giving the
 * same bytes of buffer as URPC's half frame (peers.h), push and pop one
 * message at a time as an application would. The loops are here, in C++,
 * so that push and pop are inlined: Boost at its best.
 */
#include <boost/lockfree/spsc_queue.hpp>
#include <cstdlib>
#include <cstring>
#include <new>
#include "peers.h"

namespace {

template <std::size_t S> struct msg {
    unsigned char b[S];
};
template <std::size_t S>
using queue = boost::lockfree::spsc_queue<msg<S>, boost::lockfree::capacity<PEER_RING_BYTES / S>>;

inline std::uint64_t tsc()
{
    unsigned aux;
    return __builtin_ia32_rdtscp(&aux);
}

inline void relax() { __builtin_ia32_pause(); }

/* The popped message must really be read: without this the compiler may
 * drop a copy nobody looks at. */
template <std::size_t S> inline void consume(msg<S> &m) { __asm__ volatile("" : : "r"(&m) : "memory"); }

template <std::size_t S> void *make()
{
    void *p = std::aligned_alloc(64, (sizeof(queue<S>) + 63) / 64 * 64);
    return p ? new (p) queue<S>() : nullptr;
}

template <std::size_t S> void destroy(void *p)
{
    static_cast<queue<S> *>(p)->~queue<S>();
    std::free(p);
}

template <std::size_t S> void stream(void *p, int side, std::uint64_t n)
{
    queue<S> *q = static_cast<queue<S> *>(p);
    msg<S> m;
    std::memset(m.b, 0x5a, S);
    for (std::uint64_t i = 0; i < n; i++) {
        if (side == 0) {
            while (!q->push(m))
                relax();
        } else {
            while (!q->pop(m))
                relax();
            consume(m);
        }
    }
}

} // namespace

extern "C" void *boost_queue_new(std::size_t msg_bytes)
{
    switch (msg_bytes) {
    case 8: return make<8>();
    case 56: return make<56>();
    case 512: return make<512>();
    default: return nullptr;
    }
}

extern "C" void boost_queue_free(void *q, std::size_t msg_bytes)
{
    switch (msg_bytes) {
    case 8: destroy<8>(q); break;
    case 56: destroy<56>(q); break;
    case 512: destroy<512>(q); break;
    }
}

extern "C" void boost_round_trip(void *q01, void *q10, int side, std::uint64_t warmup, std::uint64_t n,
                                 std::uint64_t *lat)
{
    queue<8> *to1 = static_cast<queue<8> *>(q01), *to0 = static_cast<queue<8> *>(q10);
    msg<8> m;
    for (std::uint64_t i = 1; i <= warmup + n; i++) {
        if (side == 0) {
            std::uint64_t t0 = tsc();
            std::memcpy(m.b, &i, sizeof i);
            while (!to1->push(m))
                relax();
            while (!to0->pop(m))
                relax();
            consume(m);
            if (i > warmup)
                lat[i - warmup - 1] = tsc() - t0;
        } else {
            while (!to1->pop(m))
                relax();
            while (!to0->push(m))
                relax();
        }
    }
}

extern "C" void boost_stream(void *q, std::size_t msg_bytes, int side, std::uint64_t n)
{
    switch (msg_bytes) {
    case 8: stream<8>(q, side, n); break;
    case 56: stream<56>(q, side, n); break;
    case 512: stream<512>(q, side, n); break;
    }
}
