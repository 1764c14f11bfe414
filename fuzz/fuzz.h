/*
 * A fuzz target: one parser or decoder fed one input. Every harness in
 * fuzz/ defines fuzz_one(); two drivers call it:
 *   fuzz/replay.c    every file of the seed corpus (fuzz/corpus/<target>/),
 *                    built by hake with ASan and UBSan and run by make test;
 *   fuzz/afl_main.c  AFL++'s persistent loop, built by tools/fuzz with
 *                    afl-clang-fast (and ASan/UBSan), run by make fuzz.
 * The input always lies in a heap block of exactly its size, so ASan sees a
 * read one byte past it. A harness checks what the parser promises (not just
 * that it does not crash) with FUZZ_ASSERT, which aborts: a crash to AFL.
 * docs/fuzzing.md lists the targets.
 */
#ifndef ATOLL_FUZZ_H
#define ATOLL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* 1 when the parser accepted the input all the way, 0 when it refused it
 * (the replay counts both: real seeds are expected to be accepted). */
int fuzz_one(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                 \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* Little-endian reads from the input (the harnesses' own framing). */
static inline uint32_t fuzz_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t fuzz_le64(const uint8_t *p)
{
    return (uint64_t)fuzz_le32(p) | (uint64_t)fuzz_le32(p + 4) << 32;
}

#endif
