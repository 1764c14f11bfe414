/*
 * Host unit tests for common/fmt.c and common/string.c, the formatting and
 * string routines shared by the CPU driver and user domains. The Hakefile
 * builds this file and those sources with every public name renamed
 * (-Dsnprintf=atoll_snprintf, ...), so the host C library's own functions
 * stay untouched and serve as the reference: each format is checked against
 * glibc's sprintf.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/fmt.h>
#include <atoll/string.h>
#include "check.h"

/* No format attribute: lets the tests pass formats gcc would warn about. */
static int ours(char *buf, size_t n, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vsnprintf(buf, n, f, ap);
    va_end(ap);
    return r;
}

static int theirs(char *buf, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = vsprintf(buf, f, ap);
    va_end(ap);
    return r;
}

/* Same output and return value as glibc. */
#define SAME(...)                                                             \
    do {                                                                      \
        char a_[512], b_[512];                                                \
        int ra_ = ours(a_, sizeof a_, __VA_ARGS__);                           \
        int rb_ = theirs(b_, __VA_ARGS__);                                    \
        CHECK_STREQ(a_, b_);                                                  \
        CHECK_EQ(ra_, rb_);                                                   \
    } while (0)

static void test_against_glibc(void)
{
    static const char *const int_fmts[] = {
        "%d", "%i", "%5d", "%-5d|", "%05d", "%+d", "% d", "%.3d", "%8.3d", "%-8.3d|", "%08.3d",
        "%.0d", "%+.0d", "%u", "%x", "%X", "%#x", "%#X", "%#o", "%o", "%#.0o", "%#08x", "%#-8x|",
        "%0*d", "%*d", "%-*d|",
    };
    static const int ints[] = { 0, 1, -1, 7, 42, -42, 255, 4096, INT_MAX, INT_MIN };
    for (size_t f = 0; f < sizeof int_fmts / sizeof *int_fmts; f++) {
        for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
            if (strchr(int_fmts[f], '*'))
                SAME(int_fmts[f], 7, ints[i]);
            else
                SAME(int_fmts[f], ints[i]);
        }
    }
    static const long long lls[] = { 0, 1, -1, LLONG_MAX, LLONG_MIN, 0x123456789abcdefll };
    static const char *const ll_fmts[] = { "%lld", "%llu", "%llx", "%016llx", "%#llx", "%llo", "%20lld",
                                           "%-20lld|", "%+lld", "%ld", "%lx", "%jd", "%zd", "%td", "%zx" };
    for (size_t f = 0; f < sizeof ll_fmts / sizeof *ll_fmts; f++)
        for (size_t i = 0; i < sizeof lls / sizeof *lls; i++)
            SAME(ll_fmts[f], lls[i]);
    SAME("%hhd %hhu %hhx", 300, 300, -1);
    SAME("%hd %hu %hx", 70000, 70000, -1);
    SAME("%zu %zx", (size_t)-1, (size_t)12345);
    SAME("%s|%10s|%-10s|%.2s|%10.2s|%.*s|%*s", "abc", "abc", "abc", "abc", "abc", 1, "abc", -6, "ab");
    SAME("%c%c%3c%-3c|", 'a', 'b', 'c', 'd');
    SAME("100%%|%%%d%%", 5);
    SAME("%.*d|%*.*d", -1, 5, 6, 2, 3);
    SAME("%p", (void *)0x1234);
    SAME("%20p|%-20p|", (void *)0xffff800000000000ull, (void *)0x10);
    SAME("plain text, no conversions");
    SAME("");
}

static void test_own_behaviour(void)
{
    char b[64];
    /* Where glibc differs or the standard leaves it open. */
    CHECK_EQ(ours(b, sizeof b, "%p", (void *)0), 3);
    CHECK_STREQ(b, "0x0");
    CHECK_EQ(ours(b, sizeof b, "%s", (char *)NULL), 6);
    CHECK_STREQ(b, "(null)");
    ours(b, sizeof b, "a%yb");
    CHECK_STREQ(b, "a%yb");
    ours(b, sizeof b, "a%-5qb");
    CHECK_STREQ(b, "a%-5qb");
    ours(b, sizeof b, "end%");
    CHECK_STREQ(b, "end%");
    ours(b, sizeof b, "end%08l");
    CHECK_STREQ(b, "end%08l");
    /* The forms the CPU driver uses. */
    ours(b, sizeof b, "%016llx %03llu %04x", 0xabcull, 7ull, 0xbeefu);
    CHECK_STREQ(b, "0000000000000abc 007 beef");
}

static void test_truncation(void)
{
    char b[16];
    memset(b, 'x', sizeof b);
    CHECK_EQ(snprintf(b, 5, "hello %s", "world"), 11);
    CHECK_STREQ(b, "hell");
    CHECK_EQ(b[5], 'x');
    CHECK_EQ(snprintf(b, 1, "abc"), 3);
    CHECK_EQ(b[0], '\0');
    CHECK_EQ(snprintf(NULL, 0, "%d", 12345), 5);
    memset(b, 'x', sizeof b);
    CHECK_EQ(snprintf(b, 6, "%5d", 1), 5);
    CHECK_STREQ(b, "    1");
    CHECK_EQ(snprintf(b, sizeof b, "%*d", 100, 1), 100);
    CHECK_EQ(strlen(b), sizeof b - 1);
}

static void test_bytes(void)
{
    char b[32];
    fmt_bytes(b, sizeof b, 0);
    CHECK_STREQ(b, "0 B");
    fmt_bytes(b, sizeof b, 1536);
    CHECK_STREQ(b, "1536 B");   /* not a whole KiB: stays exact */
    fmt_bytes(b, sizeof b, 64 << 10);
    CHECK_STREQ(b, "64 KiB");
    fmt_bytes(b, sizeof b, 3ull << 29);
    CHECK_STREQ(b, "1536 MiB");
    fmt_bytes(b, sizeof b, 1ull << 50);
    CHECK_STREQ(b, "1024 TiB");
    CHECK_EQ(fmt_bytes(b, 4, 16 << 20), 6);
    CHECK_STREQ(b, "16 ");
}

struct collect {
    char buf[64];
    int n;
};

static void collect_emit(char c, void *ctx)
{
    struct collect *k = ctx;
    if (k->n < (int)sizeof k->buf - 1)
        k->buf[k->n] = c;
    k->n++;
}

static int via_callback(struct collect *k, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int r = fmt_vformat(collect_emit, k, f, ap);
    va_end(ap);
    k->buf[k->n < (int)sizeof k->buf ? k->n : (int)sizeof k->buf - 1] = '\0';
    return r;
}

static void test_callback(void)
{
    struct collect k = { { 0 }, 0 };
    CHECK_EQ(via_callback(&k, "x=%d y=%s\n", 3, "z"), 8);
    CHECK_EQ(k.n, 8);
    CHECK_STREQ(k.buf, "x=3 y=z\n");
}

static void test_string(void)
{
    unsigned char a[64], ref[64];
    for (int i = 0; i < 64; i++)
        a[i] = ref[i] = (unsigned char)i;
    /* memmove both ways, every small overlap. */
    for (int shift = -9; shift <= 9; shift++) {
        for (int n = 0; n < 20; n++) {
            for (int i = 0; i < 64; i++)
                a[i] = ref[i] = (unsigned char)(i * 7);
            int src = 20, dst = 20 + shift;
            CHECK(memmove(a + dst, a + src, (size_t)n) == a + dst);
            for (int i = 0; i < n; i++)
                CHECK_EQ(a[dst + i], ref[src + i]);
            for (int i = 0; i < 64; i++)
                if (i < dst || i >= dst + n)
                    CHECK_EQ(a[i], ref[i]);
        }
    }
    CHECK(memset(a, 0xab, 10) == a);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(a[i], 0xab);
    CHECK(memcpy(a, ref, 64) == a);
    CHECK_EQ(memcmp(a, ref, 64), 0);
    a[5]++;
    CHECK(memcmp(a, ref, 64) > 0);
    CHECK(memcmp(ref, a, 64) < 0);
    CHECK_EQ(memcmp(a, ref, 5), 0);
    CHECK_EQ(memcmp(a, ref, 0), 0);
    unsigned char hi = 0xff, lo = 0x01;
    CHECK(memcmp(&hi, &lo, 1) > 0);   /* unsigned comparison */

    CHECK_EQ(strlen(""), 0);
    CHECK_EQ(strlen("abc"), 3);
    CHECK_EQ(strnlen("abc", 2), 2);
    CHECK_EQ(strnlen("abc", 10), 3);
    CHECK_EQ(strnlen("abc", 0), 0);
    char nul_free[4] = { 'a', 'b', 'c', 'd' };   /* strnlen must not read past max */
    CHECK_EQ(strnlen(nul_free, sizeof nul_free), 4);
    CHECK_EQ(strcmp("abc", "abc"), 0);
    CHECK(strcmp("abc", "abd") < 0);
    CHECK(strcmp("abd", "abc") > 0);
    CHECK(strcmp("ab", "abc") < 0);
    CHECK(strcmp("abc", "ab") > 0);
    CHECK(strcmp("\xff", "a") > 0);   /* unsigned char order */
    CHECK_EQ(strncmp("abcx", "abcy", 3), 0);
    CHECK(strncmp("abcx", "abcy", 4) < 0);
    CHECK_EQ(strncmp("ab", "ab", 10), 0);
    CHECK_EQ(strncmp("a", "b", 0), 0);
}

int main(void)
{
    test_against_glibc();
    test_own_behaviour();
    test_truncation();
    test_bytes();
    test_callback();
    test_string();
    return check_done();
}
