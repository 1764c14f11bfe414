/*
 * What bench/host/urpc_bench.c needs from the C++ half of the host
 * benchmark (bench/host/boost_spsc.cpp): Boost.Lockfree's spsc_queue, with
 * the same buffer as the others, driven by loops compiled as C++ so that
 * Boost's push and pop are inlined as its users get them.
 */
#ifndef BENCH_PEERS_H
#define BENCH_PEERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of buffer per direction for every queue in the benchmark: half of
 * URPC's 4 KiB frame (its two control lines and 30 slots). */
#define PEER_RING_BYTES 2048

/* A zeroed queue of 8-, 56- or 512-byte messages with PEER_RING_BYTES of
 * buffer (NULL for any other size), and its end. */
void *boost_queue_new(size_t msg_bytes);
void boost_queue_free(void *q, size_t msg_bytes);

/* One side of a round trip of 8-byte messages over q01 (side 0 to side 1)
 * and q10: `warmup` rounds, then `n` whose times (rdtscp ticks) side 0
 * writes to lat. Spins with pause. */
void boost_round_trip(void *q01, void *q10, int side, uint64_t warmup, uint64_t n, uint64_t *lat);

/* One side of a one-way stream of n messages of msg_bytes: side 0 pushes,
 * side 1 pops (each waits with pause while the queue is full / empty). */
void boost_stream(void *q, size_t msg_bytes, int side, uint64_t n);

#ifdef __cplusplus
}
#endif

#endif
