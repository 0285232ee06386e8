// SPDX-License-Identifier: MIT
// tree16.h - the 16-lane sum every dot product of glm4v.c ends with, in one place for every kernel file (ops.c,
// ops_bf16.c, quant.c, quant_fp8x.c, ggml_quants.c): a 16-lane accumulator (lane j summed one chain over the
// chunks) is reduced as s[j] = a[j] + a[j + 8], then + 4, + 2, + 1. The scalar, AVX2 (two 8-lane halves) and
// AVX-512 forms make the same additions in the same order, so every instruction set gives the same bits.
#ifndef GLM4V_TREE16_H
#define GLM4V_TREE16_H

#include <immintrin.h>

// the tree over a[16] (portable C)
static inline float tree16(const float a[16]) {
    float s8[8], s4[4], s2[2];
    for (int j = 0; j < 8; j++) s8[j] = a[j] + a[j + 8];
    for (int j = 0; j < 4; j++) s4[j] = s8[j] + s8[j + 4];
    for (int j = 0; j < 2; j++) s2[j] = s4[j] + s4[j + 2];
    return s2[0] + s2[1];
}

// the tree over lanes 0-7 (lo) and 8-15 (hi) of two AVX2 accumulators
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) float tree16_256x2(__m256 lo, __m256 hi) {
    const __m256 s8 = _mm256_add_ps(lo, hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// the tree over the 16 lanes of an AVX-512 accumulator
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) float tree16_512(__m512 v) {
    return tree16_256x2(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

#endif
