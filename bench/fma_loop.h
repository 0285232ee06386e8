// SPDX-License-Identifier: MIT
// fma_loop.h - the fp32 FMA ceiling both bench programs measure (bench.c's fma_peak_gflops, linear_bench.c's ratios):
// a register-only loop of 12 independent FMAs (enough to cover the FMA latency), 2 FLOPs per lane. Header-only:
// the bench programs are single files linked against the library, which has no place for bench code.
#ifndef GLM4V_BENCH_FMA_LOOP_H
#define GLM4V_BENCH_FMA_LOOP_H

#include "../ops.h"

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

// 12 AVX-512 accumulators, iters rounds; the sum is returned so the loop is not optimised away
__attribute__((target("avx512f"))) static float fma_loop512(long iters) {
    __m512 a[12];
    const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

// the same with 8-lane vectors (AVX2 machines)
__attribute__((target("avx2,fma"))) static float fma_loop256(long iters) {
    __m256 a[12];
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    float f[8], s = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(f, a[i]);
        for (int j = 0; j < 8; j++) s += f[j];
    }
    return s;
}

// GFLOP/s of one run of the loop on nthr threads, timed by now (wall-clock or CPU time: the caller's clock)
static double fma_loop_gflops(long iters, int nthr, double (*now)(void)) {
    const int w512 = cpu.avx512f;
    float sink = 0;
    const double t0 = now();
#pragma omp parallel num_threads(nthr) reduction(+ : sink)
    sink += w512 ? fma_loop512(iters) : fma_loop256(iters);
    const double t = now() - t0;
    if (sink == 12345.0f) printf("#\n");
    return (double)nthr * iters * 12 * (w512 ? 32 : 16) / t / 1e9;
}

#endif
