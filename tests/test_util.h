// SPDX-License-Identifier: MIT
// test_util.h - tiny TAP-style helpers: every check prints "ok - ..." or "not ok - ..."; the runner counts them.
#ifndef TEST_UTIL_H
#define TEST_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

// xorshift64 random numbers on the caller's state *s; a float in [-1, 1); the bits of a float and back
static inline uint64_t t_rnd(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}
static inline float t_frand(uint64_t *s) { return (float)((t_rnd(s) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }
static inline uint32_t t_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float t_fbits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
#endif
