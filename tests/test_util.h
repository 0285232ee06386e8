// SPDX-License-Identifier: MIT
// test_util.h - tiny TAP-style helpers: every check prints "ok - ..." or "not ok - ..."; the runner counts them.
#ifndef TEST_UTIL_H
#define TEST_UTIL_H
#include <stdio.h>
#include <stdlib.h>

static int t_failed = 0, t_passed = 0;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            t_passed++;                                                                                                \
            printf("ok - ");                                                                                           \
        } else {                                                                                                       \
            t_failed++;                                                                                                \
            printf("not ok - ");                                                                                       \
        }                                                                                                              \
        printf(__VA_ARGS__);                                                                                           \
        printf("\n");                                                                                                  \
        fflush(stdout);                                                                                                \
    } while (0)

// data directory (tests/data), overridable with GLM4V_TEST_DATA
static inline const char *test_data_dir(void) {
    const char *d = getenv("GLM4V_TEST_DATA");
    return d ? d : "tests/data";
}

static inline int test_done(void) { return t_failed ? 1 : 0; }
#endif
