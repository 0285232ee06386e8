// SPDX-License-Identifier: MIT
// bench_stream.h - the STREAM-style read bandwidth that the bench programs measure beside their decode windows
// (bench.c, bench_quant.c), and the paired ratio: a window's weight bytes/s over the mean of the STREAM passes just
// before and just after it, so both sides of a ratio see the same moment of a shared machine (whose read bandwidth
// here moves between about 35 and 60 GB/s from one second to the next). Header-only, as bench_util.h.
#ifndef GLM4V_BENCH_STREAM_H
#define GLM4V_BENCH_STREAM_H

#include "../ops.h"
#include "bench_util.h"

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define STREAM_N ((size_t)1 << 28) // 1 GiB of floats

// STREAM-style read: every byte of the array loaded once (vector adds into 8 accumulators, 2 lines a step)
__attribute__((target("avx512f"))) static inline float sum512(const float *p, size_t n) {
    __m512 a[8];
    for (int j = 0; j < 8; j++) a[j] = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 128)
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) a[j] = _mm512_add_ps(a[j], _mm512_load_ps(p + i + 16 * j));
    for (int j = 1; j < 8; j++) a[0] = _mm512_add_ps(a[0], a[j]);
    return _mm512_reduce_add_ps(a[0]);
}

__attribute__((target("avx2"))) static inline float sum256(const float *p, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    }
    float f[8], s = 0;
    _mm256_storeu_ps(f, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (int j = 0; j < 8; j++) s += f[j];
    return s;
}

// a STREAM array of n floats on 2 MB pages where the kernel gives them (as the weights' mapping asks for, see
// sf_open), first touched by the threads that read it
static inline float *stream_alloc(size_t n, int nthr) {
    float *buf = aligned_alloc(2 << 20, n * sizeof(float));
    if (!buf) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(buf, n * sizeof(float), MADV_HUGEPAGE);
#endif
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
    return buf;
}

// one pass over buf[n] by nthr threads, each reading a contiguous share: GB/s
static inline double stream_pass(const float *buf, size_t n, int nthr) {
    float sink = 0;
    double t0 = now_s();
#pragma omp parallel num_threads(nthr) reduction(+ : sink)
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const size_t per = (n / 128 / T) * 128, lo = per * t, hi = t == T - 1 ? n : lo + per;
        sink += cpu.avx512f ? sum512(buf + lo, hi - lo) : sum256(buf + lo, hi - lo);
    }
    double gbs = n * sizeof(float) / (now_s() - t0) / 1e9;
    if (sink == 1.0f) printf("#\n");
    return gbs;
}

// median of x[n] (sorts x)
static inline int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static inline double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}
static inline double maxof(const double *x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

// the paired ratios of n windows: gbs[i] over the mean of before[i] and after[i] (the STREAM passes either side of
// window i) into r[i]; returns their median, and in *fast the median over the windows whose two passes both reached
// 0.9 of `best` (the best pass of the run): the machine at its full read bandwidth, the hardest case for a decode
// kernel (0 when no window was)
static inline double paired_ratio(const double *gbs, const double *before, const double *after, int n, double best,
                                  double *r, double *fast) {
    double tmp[256], f[256];
    int nf = 0;
    for (int i = 0; i < n && i < 256; i++) {
        r[i] = tmp[i] = gbs[i] / (0.5 * (before[i] + after[i]));
        if (before[i] >= 0.9 * best && after[i] >= 0.9 * best) f[nf++] = r[i];
    }
    *fast = nf ? median(f, nf) : 0;
    return n > 0 ? median(tmp, n < 256 ? n : 256) : 0;
}

// "a,b,c" of x[n] with one decimal (or three: prec) into buf
static inline void csv_of(char *buf, size_t cap, const double *x, int n, int prec) {
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        const size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%.*f", i ? "," : "", prec, x[i]);
    }
}

#endif
