/*
 * AFL++'s persistent-mode driver for a fuzz target (tools/fuzz builds it
 * with afl-clang-fast): one process runs many inputs, each copied into a
 * heap block of exactly its size so that ASan sees overreads.
 */
#include <string.h>
#include <unistd.h>
#include "fuzz.h"

__AFL_FUZZ_INIT();

int main(void)
{
#ifdef __AFL_HAVE_MANUAL_CONTROL
    __AFL_INIT();
#endif
    const uint8_t *buf = __AFL_FUZZ_TESTCASE_BUF;
    while (__AFL_LOOP(10000)) {
        size_t n = (size_t)__AFL_FUZZ_TESTCASE_LEN;
        uint8_t *exact = malloc(n ? n : 1);
        memcpy(exact, buf, n);
        fuzz_one(exact, n);
        free(exact);
    }
    return 0;
}
