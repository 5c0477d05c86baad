/* A small test harness: each test file defines a table of named tests and
 * calls rv_test_main(). CHECK macros print file:line and, for RV_* codes,
 * rv_strerror() plus the errmsg in scope, then fail the current test.
 *
 *   static void test_x(void) { CHECK(1 + 1 == 2); }
 *   static const struct rv_test tests[] = {{"x", test_x}, {NULL, NULL}};
 *   int main(int argc, char **argv) { return rv_test_main(argc, argv, tests); }
 *
 * Running a file with a test name as argument runs only that test. The last
 * line printed is "N passed, N failed". */
#ifndef RV_TESTS_HARNESS_H
#define RV_TESTS_HARNESS_H

#include "base/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct rv_test {
    const char *name;
    void (*fn)(void);
};

/* Set when a CHECK fails; the runner resets it per test. Test state only. */
extern int rv_test_failed;

int rv_test_main(int argc, char **argv, const struct rv_test *tests);

/* A fresh temporary directory under $TMPDIR (or /tmp), made with mkdtemp.
 * Returns a malloc'd path; rv_test_rmdir() removes it recursively. */
char *rv_test_tmpdir(const char *tag);
void rv_test_rmdir(char *path); /* Also frees path. */

/* The seed for randomised tests: $RV_TEST_SEED, or the given default. */
uint64_t rv_test_seed(uint64_t dflt);

#define RV_CHECK_FAIL(...)                              \
    do {                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fprintf(stderr, "\n");                          \
        rv_test_failed = 1;                             \
    } while (0)

/* Fail and return from the test function if cond is false. */
#define CHECK(cond)                                   \
    do {                                              \
        if (!(cond)) {                                \
            RV_CHECK_FAIL("CHECK(%s) failed", #cond); \
            return;                                   \
        }                                             \
    } while (0)

/* Expect an RV_* code; on mismatch print both codes and errmsg. */
#define CHECK_RC(expr, want, errmsg)                                          \
    do {                                                                      \
        int rv_rc_ = (expr);                                                  \
        if (rv_rc_ != (want)) {                                               \
            RV_CHECK_FAIL("%s = %s, want %s (%s)", #expr, rv_errname(rv_rc_), \
                          rv_errname(want), (errmsg));                        \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_OK(expr, errmsg) CHECK_RC(expr, RV_OK, errmsg)

#define CHECK_EQ_U64(a, b)                                     \
    do {                                                       \
        uint64_t rv_a_ = (uint64_t)(a), rv_b_ = (uint64_t)(b); \
        if (rv_a_ != rv_b_) {                                  \
            RV_CHECK_FAIL("%s = %llu, want %llu", #a,          \
                          (unsigned long long)rv_a_,           \
                          (unsigned long long)rv_b_);          \
            return;                                            \
        }                                                      \
    } while (0)

#endif /* RV_TESTS_HARNESS_H */
