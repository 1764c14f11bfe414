/*
 * memset, memcpy, memmove, memcmp and the string routines, compiled into
 * both the CPU driver and user domains (include/atoll/string.h).
 *
 * gcc turns byte loops like these into calls to memset/memcpy/memmove
 * ("loop distribution"), which inside memset itself would recurse forever;
 * the attribute below forbids that for this file's functions.
 */
#include <stddef.h>
#include <stdint.h>
#include <atoll/string.h>

#define NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* Eight bytes a step, then the rest byte by byte. On hardware with fast
 * strings `rep stosb` alone would do as well, but an emulator runs a rep
 * string instruction one element at a time (QEMU's TCG: a loop through the
 * translated block per element), so bytes cost eight times as many steps:
 * zeroing a monitor's .bss and copying every core's kernel state were a
 * good part of a 64-core boot under TCG. */
#define WORDWISE_MIN 64

NO_LIBCALLS void *memset(void *d, int c, size_t n)
{
    void *p = d;
    if (n >= WORDWISE_MIN) {
        uint64_t v = 0x0101010101010101ull * (unsigned char)c;
        size_t q = n / 8;
        __asm__ volatile("rep stosq" : "+D"(p), "+c"(q) : "a"(v) : "memory");
        n %= 8;
    }
    __asm__ volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
    return d;
}

NO_LIBCALLS void *memcpy(void *d, const void *s, size_t n)
{
    void *p = d;
    if (n >= WORDWISE_MIN) {
        size_t q = n / 8;
        __asm__ volatile("rep movsq" : "+D"(p), "+S"(s), "+c"(q) : : "memory");
        n %= 8;
    }
    __asm__ volatile("rep movsb" : "+D"(p), "+S"(s), "+c"(n) : : "memory");
    return d;
}

/* Forward copy is right when d is below s (rep movsb copies byte by byte,
 * lowest first); otherwise copy backwards in C. No `std`: an interrupt in
 * the kernel must never see the direction flag set. */
NO_LIBCALLS void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp == sp || n == 0)
        return d;
    if ((uintptr_t)dp < (uintptr_t)sp || (uintptr_t)dp >= (uintptr_t)sp + n)
        return memcpy(d, s, n);
    while (n--)
        dp[n] = sp[n];
    return d;
}

NO_LIBCALLS int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

NO_LIBCALLS size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

NO_LIBCALLS size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

NO_LIBCALLS int strcmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
}

NO_LIBCALLS int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

char *strstr(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; *haystack; haystack++)
        if (!strncmp(haystack, needle, n))
            return (char *)haystack;
    return n ? NULL : (char *)haystack;
}
