/* minitest.h - a tiny test harness for dsabi's C tests (C99, header only).
 *
 *     TEST(lifecycle_null_destroy) { ds_config_destroy(NULL); CHECK(1); }
 *     int main(void) { RUN(lifecycle_null_destroy); return minitest_report(); }
 *
 * CHECK_* macros print the file, line, both values and keep going; a test fails if any check failed.
 * minitest_report() prints "N passed, M failed" and returns the exit status for ctest.
 */
#ifndef DSABI_MINITEST_H
#define DSABI_MINITEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int minitest_failed_checks = 0;
static int minitest_passed = 0;
static int minitest_failed = 0;

#define TEST(name) static void name(void)

#define RUN(name)                                                              \
    do {                                                                       \
        int before_ = minitest_failed_checks;                                  \
        name();                                                                \
        if (minitest_failed_checks == before_) {                               \
            minitest_passed++;                                                 \
        } else {                                                               \
            minitest_failed++;                                                 \
            fprintf(stderr, "FAILED: %s\n", #name);                            \
        }                                                                      \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            minitest_failed_checks++;                                          \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            minitest_failed_checks++;                                          \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, a_, b_); \
        }                                                                      \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                  \
    do {                                                                       \
        double a_ = (double)(a), b_ = (double)(b);                             \
        if (!(fabs(a_ - b_) <= (tol))) {                                       \
            minitest_failed_checks++;                                          \
            fprintf(stderr, "%s:%d: %s ~= %s failed: %.17g vs %.17g (tol %g)\n", __FILE__, __LINE__, #a, #b, a_, b_, (double)(tol)); \
        }                                                                      \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                     \
    do {                                                                       \
        const char *a_ = (a), *b_ = (b);                                       \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                               \
            minitest_failed_checks++;                                          \
            fprintf(stderr, "%s:%d: \"%s\" == \"%s\" failed\n", __FILE__, __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
        }                                                                      \
    } while (0)

#define CHECK_CONTAINS(haystack, needle)                                       \
    do {                                                                       \
        const char *h_ = (haystack), *n_ = (needle);                           \
        if (!h_ || !n_ || strstr(h_, n_) == NULL) {                            \
            minitest_failed_checks++;                                          \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, h_ ? h_ : "(null)", n_ ? n_ : "(null)"); \
        }                                                                      \
    } while (0)

/* Check a dsabi status; on mismatch also print ds_last_error(). Needs dsabi.h. */
#define CHECK_STATUS(expr, expected)                                           \
    do {                                                                       \
        int st_ = (int)(expr), ex_ = (int)(expected);                          \
        if (st_ != ex_) {                                                      \
            minitest_failed_checks++;                                          \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s); last error: %s\n", __FILE__, __LINE__, #expr, \
                    st_, ds_status_str(st_), ex_, ds_status_str(ex_), ds_last_error()); \
        }                                                                      \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, DS_OK)

static int minitest_report(void) {
    printf("%d passed, %d failed\n", minitest_passed, minitest_failed);
    return minitest_failed == 0 ? 0 : 1;
}

#endif
