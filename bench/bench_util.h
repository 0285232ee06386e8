// SPDX-License-Identifier: MIT
// bench_util.h - the clock and the random numbers every bench program uses (bench.c, bench_quant.c, linear_bench.c,
// quant_kernel_bench.c, gguf_decode_bench.c). Header-only, as fma_loop.h: the bench programs are single files linked
// against the library, which has no place for bench code.
#ifndef GLM4V_BENCH_UTIL_H
#define GLM4V_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>

static int use_cpu_time; // count process CPU time (all threads) instead of wall-clock time (the programs' `cpu` arg)

// wall-clock seconds, or CPU seconds of the process with use_cpu_time
static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint32_t bench_rng = 12345; // LCG state of the synthetic weights
// the next 32 bits of the LCG (Numerical Recipes' constants)
static inline uint32_t next_u32(void) { return bench_rng = bench_rng * 1664525u + 1013904223u; }

// the index of the largest of x[n] (the greedy token; the first of equals)
static inline int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

#endif
