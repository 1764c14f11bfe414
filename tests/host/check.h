/*
 * A minimal test harness for the host unit tests: no framework, no
 * registration. A failed check prints file:line and the expression, and the
 * test keeps going so one run reports every failure; main ends with
 * `return check_done();`, which is nonzero when anything failed.
 */
#ifndef ATOLL_TEST_CHECK_H
#define ATOLL_TEST_CHECK_H

#include <stdio.h>
#include <string.h>
#include <atoll/abi/errors.h>

static int check_count;
static int check_failures;

static inline void check_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    check_failures++;
}

/* Any condition. */
#define CHECK(expr)                                                           \
    do {                                                                      \
        check_count++;                                                        \
        if (!(expr))                                                          \
            check_fail(__FILE__, __LINE__, #expr);                            \
    } while (0)

/* Two integers (compared as unsigned 64-bit, shown in decimal and hex). */
#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        unsigned long long check_a_ = (unsigned long long)(a);                \
        unsigned long long check_b_ = (unsigned long long)(b);                \
        check_count++;                                                        \
        if (check_a_ != check_b_) {                                           \
            check_fail(__FILE__, __LINE__, #a " == " #b);                     \
            fprintf(stderr, "    left:  %llu (%#llx)\n    right: %llu (%#llx)\n", \
                    check_a_, check_a_, check_b_, check_b_);                  \
        }                                                                     \
    } while (0)

/* An errval_t, shown by name. */
#define CHECK_ERR(expr, want)                                                 \
    do {                                                                      \
        errval_t check_got_ = (expr);                                         \
        errval_t check_want_ = (want);                                        \
        check_count++;                                                        \
        if (check_got_ != check_want_) {                                      \
            check_fail(__FILE__, __LINE__, #expr " == " #want);               \
            fprintf(stderr, "    got %s, want %s\n", err_name(check_got_),    \
                    err_name(check_want_));                                   \
        }                                                                     \
    } while (0)

/* Two NUL-terminated strings (NULL allowed). */
#define CHECK_STREQ(a, b)                                                     \
    do {                                                                      \
        const char *check_sa_ = (a), *check_sb_ = (b);                        \
        check_count++;                                                        \
        if (!check_sa_ || !check_sb_ ? check_sa_ != check_sb_                 \
                                     : strcmp(check_sa_, check_sb_) != 0) {   \
            check_fail(__FILE__, __LINE__, #a " == " #b);                     \
            fprintf(stderr, "    left:  \"%s\"\n    right: \"%s\"\n",         \
                    check_sa_ ? check_sa_ : "(null)",                         \
                    check_sb_ ? check_sb_ : "(null)");                        \
        }                                                                     \
    } while (0)

/* Print a summary; the exit status for main. */
static inline int check_done(void)
{
    if (check_failures) {
        fprintf(stderr, "FAILED: %d of %d checks\n", check_failures, check_count);
        return 1;
    }
    printf("ok: %d checks passed\n", check_count);
    return 0;
}

#endif
