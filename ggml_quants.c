// SPDX-License-Identifier: MIT
// ggml_quants.c - ggml's type table, exact dequantisation (mirrors ggml/src/ggml-quants.c dequantize_row_* and the
// block layouts of ggml/src/ggml-common.h; the numpy twin is gguf-py's gguf/quants.py), and matrix-vector products
// that read the quantised blocks directly with fp32 activations (see ggml_quants.h for the order of operations).
// All arithmetic is plain fp32 with no contraction (-ffp-contract=off): each dequantised weight is rounded exactly as
// ggml rounds it (d * q, or (d * sc) * q, or d * q - m, in ggml's order), so the weights equal gguf-py's bit for bit.
#include "ggml_quants.h"
#include "tree16.h"

#include "base.h" // f16_to_f32, bf16_to_f32: the one conversion of each

#include <immintrin.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------- type table

// ggml/src/ggml.c type_traits (blck_size, type_size); gguf-py constants.GGML_QUANT_SIZES
static const GQType types[GQ_TYPE_COUNT] = {
    [GQ_F32] = {"F32", 1, 4, 1},          [GQ_F16] = {"F16", 1, 2, 1},
    [GQ_Q4_0] = {"Q4_0", 32, 18, 1},      [GQ_Q4_1] = {"Q4_1", 32, 20, 1},
    [GQ_Q5_0] = {"Q5_0", 32, 22, 1},      [GQ_Q5_1] = {"Q5_1", 32, 24, 1},
    [GQ_Q8_0] = {"Q8_0", 32, 34, 1},      [GQ_Q8_1] = {"Q8_1", 32, 36, 0},
    [GQ_Q2_K] = {"Q2_K", 256, 84, 1},     [GQ_Q3_K] = {"Q3_K", 256, 110, 1},
    [GQ_Q4_K] = {"Q4_K", 256, 144, 1},    [GQ_Q5_K] = {"Q5_K", 256, 176, 1},
    [GQ_Q6_K] = {"Q6_K", 256, 210, 1},    [GQ_Q8_K] = {"Q8_K", 256, 292, 0},
    [GQ_IQ2_XXS] = {"IQ2_XXS", 256, 66, 0}, [GQ_IQ2_XS] = {"IQ2_XS", 256, 74, 0},
    [GQ_IQ3_XXS] = {"IQ3_XXS", 256, 98, 0}, [GQ_IQ1_S] = {"IQ1_S", 256, 50, 0},
    [GQ_IQ4_NL] = {"IQ4_NL", 32, 18, 0},  [GQ_IQ3_S] = {"IQ3_S", 256, 110, 0},
    [GQ_IQ2_S] = {"IQ2_S", 256, 82, 0},   [GQ_IQ4_XS] = {"IQ4_XS", 256, 136, 0},
    [GQ_I8] = {"I8", 1, 1, 0},            [GQ_I16] = {"I16", 1, 2, 0},
    [GQ_I32] = {"I32", 1, 4, 0},          [GQ_I64] = {"I64", 1, 8, 0},
    [GQ_F64] = {"F64", 1, 8, 0},          [GQ_IQ1_M] = {"IQ1_M", 256, 56, 0},
    [GQ_BF16] = {"BF16", 1, 2, 1},        [GQ_TQ1_0] = {"TQ1_0", 256, 54, 0},
    [GQ_TQ2_0] = {"TQ2_0", 256, 66, 0},   [GQ_MXFP4] = {"MXFP4", 32, 17, 0},
    [GQ_NVFP4] = {"NVFP4", 64, 36, 0},    [GQ_Q1_0] = {"Q1_0", 128, 18, 0},
};

const GQType *gq_type(uint32_t id) { return id < GQ_TYPE_COUNT && types[id].name ? &types[id] : NULL; }

const char *gq_type_name(uint32_t id) { return gq_type(id) ? types[id].name : "?"; }

size_t gq_row_bytes(uint32_t id, int64_t n) {
    const GQType *t = gq_type(id);
    if (!t || n < 0 || n % t->block) return 0;
    return (size_t)(n / t->block) * (size_t)t->bytes;
}

// ---------------------------------------------------------------------------- scalars

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static float fp16_at(const uint8_t *p) { return f16_to_f32(rd16(p)); }

// ---------------------------------------------------------------------------- dequantisation of one block
// Block layouts (ggml-common.h), byte offsets:
//   Q4_0 {f16 d; u8 qs[16]}            Q4_1 {f16 d, m; u8 qs[16]}
//   Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}  Q5_1 {f16 d, m; u8 qh[4]; u8 qs[16]}      Q8_0 {f16 d; i8 qs[32]}
//   Q2_K {u8 scales[16]; u8 qs[64]; f16 d, dmin}          Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}
//   Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]}         Q5_K {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
//   Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}

static void dq_q4_0(const uint8_t *b, float *y) {
    const float d = fp16_at(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; ++j) {
        // const int x0 = (x[i].qs[j] & 0x0F) - 8; const int x1 = (x[i].qs[j] >> 4) - 8;
        const int x0 = (qs[j] & 0x0F) - 8, x1 = (qs[j] >> 4) - 8;
        // y[i*qk + j + 0] = x0*d; y[i*qk + j + qk/2] = x1*d;
        y[j] = x0 * d;
        y[j + 16] = x1 * d;
    }
}

static void dq_q4_1(const uint8_t *b, float *y) {
    const float d = fp16_at(b), m = fp16_at(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; ++j) {
        const int x0 = qs[j] & 0x0F, x1 = qs[j] >> 4;
        // y[i*qk + j + 0] = x0*d + m;
        y[j] = x0 * d + m;
        y[j + 16] = x1 * d + m;
    }
}

static void dq_q5_0(const uint8_t *b, float *y) {
    const float d = fp16_at(b);
    uint32_t qh;
    memcpy(&qh, b + 2, 4); // little-endian host
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; ++j) {
        // const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10; const uint8_t xh_1 = ((qh >> (j + 12))) & 0x10;
        const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10, xh_1 = ((qh >> (j + 12))) & 0x10;
        // const int32_t x0 = ((x[i].qs[j] & 0x0F) | xh_0) - 16;
        const int32_t x0 = ((qs[j] & 0x0F) | xh_0) - 16, x1 = ((qs[j] >> 4) | xh_1) - 16;
        y[j] = x0 * d;
        y[j + 16] = x1 * d;
    }
}

static void dq_q5_1(const uint8_t *b, float *y) {
    const float d = fp16_at(b), m = fp16_at(b + 2);
    uint32_t qh;
    memcpy(&qh, b + 4, 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; ++j) {
        const uint8_t xh_0 = ((qh >> (j + 0)) << 4) & 0x10, xh_1 = ((qh >> (j + 12))) & 0x10;
        const int x0 = (qs[j] & 0x0F) | xh_0, x1 = (qs[j] >> 4) | xh_1;
        y[j] = x0 * d + m;
        y[j + 16] = x1 * d + m;
    }
}

static void dq_q8_0(const uint8_t *b, float *y) {
    const float d = fp16_at(b);
    const int8_t *qs = (const int8_t *)(b + 2);
    // y[i*qk + j] = x[i].qs[j]*d;
    for (int j = 0; j < 32; ++j) y[j] = qs[j] * d;
}

static void dq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *scales = b, *q = b + 16;
    const float d = fp16_at(b + 80), min = fp16_at(b + 82);
    int is = 0;
    for (int n = 0; n < GQ_QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            uint8_t sc = scales[is++];
            // float dl = d * (sc & 0xF), ml = min * (sc >> 4);
            float dl = d * (sc & 0xF), ml = min * (sc >> 4);
            // *y++ = dl * ((int8_t)((q[l] >> shift) & 3)) - ml;
            for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l] >> shift) & 3)) - ml;
            sc = scales[is++];
            dl = d * (sc & 0xF), ml = min * (sc >> 4);
            for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3)) - ml;
            shift += 2;
        }
        q += 32;
    }
}

// the 16 signed 6-bit scales of the Q3_K super-block at p (ggml's kmask1 / kmask2 unpacking of its 12 bytes)
static inline void k3_scales(const uint8_t *p, int8_t scales[16]) {
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t aux[4];
    memcpy(aux, p + 96, 12);
    uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    memcpy(scales, aux, 16);
}

static void dq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *q = b + 32;
    const float d_all = fp16_at(b + 108);
    int8_t scales[16];
    k3_scales(b, scales);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < GQ_QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            // dl = d_all * (scales[is++] - 32);
            float dl = d_all * (scales[is++] - 32);
            // *y++ = dl * ((int8_t)((q[l+ 0] >> shift) & 3) - ((hm[l+ 0] & m) ? 0 : 4));
            for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
            dl = d_all * (scales[is++] - 32);
            for (int l = 0; l < 16; ++l) *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
            shift += 2;
            m <<= 1;
        }
        q += 32;
    }
}

// ggml get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

static void dq_q4_k(const uint8_t *b, float *y) {
    const float d = fp16_at(b), min = fp16_at(b + 2);
    const uint8_t *scales = b + 4, *q = b + 16;
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < GQ_QK_K; j += 64) {
        scale_min_k4(is + 0, scales, &sc, &m);
        // const float d1 = d * sc; const float m1 = min * m;
        const float d1 = d * sc, m1 = min * m;
        scale_min_k4(is + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        // *y++ = d1 * (q[l] & 0xF) - m1;  /  *y++ = d2 * (q[l] >> 4) - m2;
        for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

static void dq_q5_k(const uint8_t *b, float *y) {
    const float d = fp16_at(b), min = fp16_at(b + 2);
    const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + 48;
    int is = 0;
    uint8_t sc, m, u1 = 1, u2 = 2;
    for (int j = 0; j < GQ_QK_K; j += 64) {
        scale_min_k4(is + 0, scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        scale_min_k4(is + 1, scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        // *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = fp16_at(b + 208);
    for (int n = 0; n < GQ_QK_K; n += 128) {
        for (int l = 0; l < 32; ++l) {
            int is = l / 16;
            const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            // y[l + 0] = d * sc[is + 0] * q1;
            y[l + 0] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

int gq_dequant(uint32_t id, const void *src, float *y, int64_t n) {
    const GQType *t = gq_type(id);
    if (!t || !t->supported || n < 0 || n % t->block) return -1;
    const uint8_t *b = src;
    switch (id) {
    case GQ_F32: memcpy(y, src, (size_t)n * 4); return 0;
    case GQ_F16: for (int64_t i = 0; i < n; i++) y[i] = f16_to_f32(rd16(b + 2 * i)); return 0;
    case GQ_BF16: for (int64_t i = 0; i < n; i++) y[i] = bf16_to_f32(rd16(b + 2 * i)); return 0;
    default: break;
    }
    void (*f)(const uint8_t *, float *) = NULL;
    switch (id) {
    case GQ_Q4_0: f = dq_q4_0; break;
    case GQ_Q4_1: f = dq_q4_1; break;
    case GQ_Q5_0: f = dq_q5_0; break;
    case GQ_Q5_1: f = dq_q5_1; break;
    case GQ_Q8_0: f = dq_q8_0; break;
    case GQ_Q2_K: f = dq_q2_k; break;
    case GQ_Q3_K: f = dq_q3_k; break;
    case GQ_Q4_K: f = dq_q4_k; break;
    case GQ_Q5_K: f = dq_q5_k; break;
    case GQ_Q6_K: f = dq_q6_k; break;
    default: return -1;
    }
    for (int64_t i = 0; i < n / t->block; i++) f(b + (size_t)i * t->bytes, y + i * t->block);
    return 0;
}

// ---------------------------------------------------------------------------- instruction set

static int isa_cpu = -1, isa_use = -1;

// what the CPU has (once), capped by GLM4V_PORTABLE / GLM4V_ISA
static void isa_init(void) {
    if (isa_cpu >= 0) return;
    int has = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        has = 1;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) has = 2;
    }
#endif
    const char *portable = getenv("GLM4V_PORTABLE"), *isa = getenv("GLM4V_ISA");
    int use = has;
    if (portable && *portable && strcmp(portable, "0") != 0) use = 0;
    else if (isa && strcmp(isa, "avx2") == 0 && use > 1) use = 1;
    isa_cpu = has;
    isa_use = use;
}

int gq_isa(void) {
    isa_init();
    return isa_use;
}

int gq_set_isa(int isa) {
    isa_init();
    isa_use = isa < 0 ? 0 : isa > isa_cpu ? isa_cpu : isa;
    return isa_use;
}

// acc[j] = fma(w[16c+j], x[16c+j], acc[j]) over the chunks of n elements (the last one zero-padded)
static void acc16(float acc[16], const float *w, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16)
        for (int j = 0; j < 16; j++)
            acc[j] = i + j < n ? fmaf(w[i + j], x[i + j], acc[j]) : fmaf(0.0f, 0.0f, acc[j]);
}

int gq_matvec_naive(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y) {
    const GQType *t = gq_type(id);
    if (!t || !t->supported || K < 0 || K % t->block || row_bytes < gq_row_bytes(id, K)) return -1;
    float *w = malloc((size_t)(K ? K : 1) * sizeof *w);
    if (!w) return -1;
    for (int64_t r = 0; r < rows; r++) {
        gq_dequant(id, (const uint8_t *)W + (size_t)r * row_bytes, w, K);
        float acc[16] = {0};
        acc16(acc, w, x, K);
        y[r] = tree16(acc);
    }
    free(w);
    return 0;
}

// ---------------------------------------------------------------------------- fast paths
// A kernel body computes nr rows (GQ_R = 4 or 1) at a time: one 16-lane accumulator chain per row (four independent
// fma chains hide the fma latency, each activation chunk is loaded once for four rows). A row's operations do not
// depend on the rows that share its call, so its bits depend neither on the grouping nor on the thread count. The
// weights are widened in registers exactly as the dequantisation above rounds them (a lookup
// table of the 16 values of a 4-bit sub-block, each computed as ggml computes it, for Q4_0 / Q4_K on AVX-512).
// Every supported type has an AVX-512 and an AVX2 kernel; the portable C dequantises GQ_CH elements per row into a
// buffer (gq_dequant, exact) and sums it with fmaf.
// AVX2 / AVX-512 CPUs are assumed to have F16C (every x86 CPU with AVX2 does).

#define GQ_R 4
#define GQ_CH 256
#define T512 __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))
#define T256 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

// portable: one row, dequantised GQ_CH elements at a time
static float row_generic_c(uint32_t id, const uint8_t *w, int64_t K, const float *x) {
    const GQType *t = gq_type(id);
    float buf[GQ_CH], acc[16] = {0};
    for (int64_t k = 0; k < K; k += GQ_CH) {
        int64_t n = K - k < GQ_CH ? K - k : GQ_CH;
        gq_dequant(id, w + (size_t)(k / t->block) * t->bytes, buf, n);
        acc16(acc, buf, x + k, n);
    }
    return tree16(acc);
}

// the fp16 at p (F16C: exact, subnormals included)
T256 INLINE float h2f(const uint8_t *p) { return _cvtsh_ss(rd16(p)); }
// the fp16 at p in all 8 / 16 lanes (one broadcast load and one conversion: the same value as h2f). Measured in one
// process against the scalar conversion + broadcast (one core, 16 MB, best of 15): AVX2 Q5_0 / Q5_1 2.5x / 2.2x,
// AVX-512 Q4_K 1.06-1.09x, Q5_0 1.04x; AVX-512 Q8_0 0.96x and Q4_1 0.96-1.0x keep the scalar form
T256 INLINE __m256 h2f8(const uint8_t *p) {
    int16_t h;
    memcpy(&h, p, 2);
    return _mm256_cvtph_ps(_mm_set1_epi16(h));
}
T512 INLINE __m512 h2f16(const uint8_t *p) {
    int16_t h;
    memcpy(&h, p, 2);
    return _mm512_cvtph_ps(_mm256_set1_epi16(h));
}

// 16 bytes widened to int32 as two halves of 8
T256 INLINE void widen_u8(const uint8_t *p, __m256i *lo, __m256i *hi) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    *lo = _mm256_cvtepu8_epi32(b);
    *hi = _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(b, b));
}

// Multi-row kernels read GQ_R rows side by side: GQ_R short streams that the hardware prefetcher keeps losing at
// each row's end, so they prefetch GQ_PF bytes ahead of the read in each row, continuing in the same row of the
// next group of nr rows (rows rb apart; the row after it for one row) past the row's end.
#ifndef GQ_PF
#define GQ_PF 1536
#endif
#define IOTA16 _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

// prefetch the line GQ_PF bytes past offset off of row start `row` (a group of nr rows rb apart)
T256 INLINE void pf_ahead(const uint8_t *row, size_t off, size_t rb, int nr) {
    const size_t o = off + GQ_PF;
    _mm_prefetch((const char *)(o < rb ? row + o : row + o + (size_t)(nr - 1) * rb), _MM_HINT_T0);
}

// ---- F32 / F16 / BF16

// 16 weights of float type id at element i of row p
T512 INLINE __m512 flt16(uint32_t id, const uint8_t *p, int64_t i) {
    if (id == GQ_F32) return _mm512_loadu_ps((const float *)(const void *)p + i);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(p + 2 * i));
    if (id == GQ_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// the batch kernels' common steps (M <= 4 activation rows; every output the one-row kernel's chain):
// acc[m] += w0 * x0[m], then w1 * x1[m]
T512 INLINE void fma_pair_m(__m512 acc[4], __m512 w0, __m512 w1, const __m512 x0[4], const __m512 x1[4], const int M) {
#pragma GCC unroll 4
    for (int m = 0; m < M; m++) {
        acc[m] = _mm512_fmadd_ps(w0, x0[m], acc[m]);
        acc[m] = _mm512_fmadd_ps(w1, x1[m], acc[m]);
    }
}
// y[m ldy + r] = the tree of acc[r][m]
T512 INLINE void store_m(float *y, int64_t ldy, __m512 acc[][4], const int nr, const int M) {
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) y[m * ldy + r] = tree16_512(acc[r][m]);
}

// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each weight vector widened once)
T512 INLINE void flt_512m(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y,
                          int64_t ldy, const int nr, const int M) {
    const int es = id == GQ_F32 ? 4 : 2;
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) {
        __m512 xv[4];
#pragma GCC unroll 4
        for (int m = 0; m < M; m++) xv[m] = _mm512_loadu_ps(x + m * ldx + i);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const __m512 wv = flt16(id, w + r * rb, i);
#pragma GCC unroll 4
            for (int m = 0; m < M; m++) acc[r][m] = _mm512_fmadd_ps(wv, xv[m], acc[r][m]);
        }
    }
    if (i < K) { // zero-padded tail: the pad lanes add fma(0, 0, acc)
        for (int r = 0; r < nr; r++) {
            uint8_t wt[64] = {0};
            memcpy(wt, w + r * rb + (size_t)i * es, (size_t)(K - i) * es);
            const __m512 wv = flt16(id, wt, 0);
            for (int m = 0; m < M; m++) {
                float xt[16] = {0};
                memcpy(xt, x + m * ldx + i, (size_t)(K - i) * 4);
                acc[r][m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xt), acc[r][m]);
            }
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void flt_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    flt_512m(id, w, rb, K, x, 0, y, 0, nr, 1);
}

// 8 weights of float type id at element i of row p
T256 INLINE __m256 flt8(uint32_t id, const uint8_t *p, int64_t i) {
    if (id == GQ_F32) return _mm256_loadu_ps((const float *)(const void *)p + i);
    const __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
    if (id == GQ_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

T256 INLINE void flt_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    const int es = id == GQ_F32 ? 4 : 2;
    __m256 lo[GQ_R], hi[GQ_R];
    for (int r = 0; r < nr; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            lo[r] = _mm256_fmadd_ps(flt8(id, w + r * rb, i), x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(flt8(id, w + r * rb, i + 8), x1, hi[r]);
        }
    }
    if (i < K) {
        float xt[16] = {0};
        memcpy(xt, x + i, (size_t)(K - i) * 4);
        const __m256 x0 = _mm256_loadu_ps(xt), x1 = _mm256_loadu_ps(xt + 8);
        for (int r = 0; r < nr; r++) {
            uint8_t wt[64] = {0};
            memcpy(wt, w + r * rb + (size_t)i * es, (size_t)(K - i) * es);
            lo[r] = _mm256_fmadd_ps(flt8(id, wt, 0), x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(flt8(id, wt, 8), x1, hi[r]);
        }
    }
    for (int r = 0; r < nr; r++) y[r] = tree16_256x2(lo[r], hi[r]);
}

// AVX2 batch kernels (a server's 2-4 activation rows): one weight row, each weight vector widened once for the M
// rows; every output the one-row kernel's two chains (lanes 0-7 in lo, 8-15 in hi). 16 registers: one row at a time.
// lo[m] += w0 * x_m[i .. i + 8), hi[m] += w1 * x_m[i + 8 .. i + 16)
T256 INLINE void fma8x2_m(__m256 lo[4], __m256 hi[4], __m256 w0, __m256 w1, const float *x, int64_t ldx, const int M) {
#pragma GCC unroll 4
    for (int m = 0; m < M; m++) {
        lo[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + m * ldx), lo[m]);
        hi[m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + m * ldx + 8), hi[m]);
    }
}
// y[m ldy] = the tree of lo[m], hi[m]
T256 INLINE void store_256m(float *y, int64_t ldy, const __m256 lo[4], const __m256 hi[4], const int M) {
    for (int m = 0; m < M; m++) y[m * ldy] = tree16_256x2(lo[m], hi[m]);
}

// The AVX2 K-quant kernels are written as one part of a super-block (part `part` of np equal shares of its 256
// weights, block at p) against M activation rows xp + m ldx at the part's column, into one row's chains lo[m], hi[m]
// (a constant at every call below, so it is inlined); these two drivers run a part function over rows.
typedef void (*KPart256)(const uint8_t *p, int part, const float *xp, int64_t ldx, __m256 *lo, __m256 *hi, const int M);

// one row of super-blocks of bb bytes against M (<= 4) activation rows x + m ldx: y[m ldy]
T256 INLINE void kparts_256m(KPart256 f, const int bb, const int np, const uint8_t *w, int64_t K, const float *x,
                             int64_t ldx, float *y, int64_t ldy, const int M) {
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++)
        for (int j = 0; j < np; j++) f(w + bb * b, j, x + b * GQ_QK_K + GQ_QK_K / np * j, ldx, lo, hi, M);
    store_256m(y, ldy, lo, hi, M);
}

// nr rows rb apart against one activation row: y[r] (side by side: 2 nr chains hide the fma latency that one row's
// two chains wait on), each row prefetched (pf_ahead) pfl lines a super-block
T256 INLINE void kparts_256r(KPart256 f, const int bb, const int np, const int pfl, const uint8_t *w, size_t rb,
                             int64_t K, const float *x, float *y, const int nr) {
    __m256 lo[GQ_R], hi[GQ_R];
    for (int r = 0; r < nr; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
        for (int r = 0; r < nr; r++)
            for (int l = 0; l < pfl; l++) pf_ahead(w + r * rb, (size_t)(bb * b + 64 * l), rb, nr);
        for (int j = 0; j < np; j++)
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) f(w + r * rb + bb * b, j, x + b * GQ_QK_K + GQ_QK_K / np * j, 0, lo + r, hi + r, 1);
    }
    for (int r = 0; r < nr; r++) y[r] = tree16_256x2(lo[r], hi[r]);
}

// one row of float type id against M (<= 4) activation rows x + m ldx: y[m ldy] (flt_256's chains)
T256 INLINE void flt_256m(uint32_t id, const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                          const int M) {
    const int es = id == GQ_F32 ? 4 : 2;
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= K; i += 16) fma8x2_m(lo, hi, flt8(id, w, i), flt8(id, w, i + 8), x + i, ldx, M);
    if (i < K) { // the tail, zero-padded
        float xt[4][16] = {{0}};
        uint8_t wt[64] = {0};
        for (int m = 0; m < M; m++) memcpy(xt[m], x + m * ldx + i, (size_t)(K - i) * 4);
        memcpy(wt, w + (size_t)i * es, (size_t)(K - i) * es);
        fma8x2_m(lo, hi, flt8(id, wt, 0), flt8(id, wt, 8), xt[0], 16, M);
    }
    store_256m(y, ldy, lo, hi, M);
}

// ---- Q8_0: w = q * d

// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each block dequantised once for them)
T512 INLINE void q8_0_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        __m512 x0[4], x1[4];
#pragma GCC unroll 4
        for (int m = 0; m < M; m++) x0[m] = _mm512_loadu_ps(x + m * ldx + 32 * b), x1[m] = _mm512_loadu_ps(x + m * ldx + 32 * b + 16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 34 * b;
            if ((b & 1) == 0) pf_ahead(w + r * rb, (size_t)(34 * b), rb, nr); // a line per 64 bytes read
            const __m512 d = _mm512_set1_ps(h2f(p)); // (h2f16 measured 4 % slower here)
            const __m512 w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)))), d);
            const __m512 w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 18)))), d);
            fma_pair_m(acc[r], w0, w1, x0, x1, M);
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q8_0_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q8_0_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// the 32 weights q * d of the Q8_0 block at p, 8 at a time
T256 INLINE void q8_0_w256(const uint8_t *p, __m256 q[4]) {
    const __m256 d = h2f8(p);
    const __m128i b0 = _mm_loadu_si128((const __m128i *)(p + 2)), b1 = _mm_loadu_si128((const __m128i *)(p + 18));
    q[0] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b0)), d);
    q[1] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b0, b0))), d);
    q[2] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b1)), d);
    q[3] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(b1, b1))), d);
}

T256 INLINE void q8_0_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    __m256 lo[GQ_R], hi[GQ_R];
    for (int r = 0; r < nr; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const float *xb = x + 32 * b;
        const __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8), x2 = _mm256_loadu_ps(xb + 16),
                     x3 = _mm256_loadu_ps(xb + 24);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 34 * b;
            if ((b & 1) == 0) pf_ahead(w + r * rb, (size_t)(34 * b), rb, nr);
            __m256 q[4];
            q8_0_w256(p, q);
            lo[r] = _mm256_fmadd_ps(q[0], x0, lo[r]);
            hi[r] = _mm256_fmadd_ps(q[1], x1, hi[r]);
            lo[r] = _mm256_fmadd_ps(q[2], x2, lo[r]);
            hi[r] = _mm256_fmadd_ps(q[3], x3, hi[r]);
        }
    }
    for (int r = 0; r < nr; r++) y[r] = tree16_256x2(lo[r], hi[r]);
}

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (q8_0_256's chains)
T256 INLINE void q8_0_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        __m256 q[4];
        q8_0_w256(w + 34 * b, q);
        fma8x2_m(lo, hi, q[0], q[1], x + 32 * b, ldx, M);
        fma8x2_m(lo, hi, q[2], q[3], x + 32 * b + 16, ldx, M);
    }
    store_256m(y, ldy, lo, hi, M);
}

// ---- Q4_0: w = (q - 8) * d; AVX-512 looks the 16 values up in a table of (i - 8) * d

// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each weight vector looked up once)
T512 INLINE void q4_0_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    const __m512 im8 = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        __m512 x0[4], x1[4];
#pragma GCC unroll 4
        for (int m = 0; m < M; m++) x0[m] = _mm512_loadu_ps(x + m * ldx + 32 * b), x1[m] = _mm512_loadu_ps(x + m * ldx + 32 * b + 16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 18 * b;
            const __m512 lut = _mm512_mul_ps(im8, h2f16(p));
            const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)));
            // permutexvar reads the low 4 bits of each index: the low nibble as it is
            const __m512 w0 = _mm512_permutexvar_ps(q, lut), w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), lut);
            fma_pair_m(acc[r], w0, w1, x0, x1, M);
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q4_0_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q4_0_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each block's weights widened once for them)
T256 INLINE void q4_0_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    const __m256i m4 = _mm256_set1_epi32(0xF), eight = _mm256_set1_epi32(8);
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *p = w + 18 * b;
        const __m256 d = h2f8(p);
        __m256i b0, b1;
        widen_u8(p + 2, &b0, &b1);
        // y[i*qk + j + 0] = x0*d, x0 = (q & 0x0F) - 8; then the high nibbles (elements 16..31)
        const __m256 a0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b0, m4), eight));
        const __m256 a1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b1, m4), eight));
        fma8x2_m(lo, hi, _mm256_mul_ps(a0, d), _mm256_mul_ps(a1, d), x + 32 * b, ldx, M);
        const __m256 c0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b0, 4), eight));
        const __m256 c1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b1, 4), eight));
        fma8x2_m(lo, hi, _mm256_mul_ps(c0, d), _mm256_mul_ps(c1, d), x + 32 * b + 16, ldx, M);
    }
    store_256m(y, ldy, lo, hi, M);
}

T256 INLINE void q4_0_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    (void)rb, (void)nr; // (one row: INSTANCE1)
    q4_0_256m(w, K, x, 0, y, 0, 1);
}

// ---- Q4_K: w = (d * sc) * q - (dmin * m) per 32-element sub-block; AVX-512 looks it up in a table of the 16 values

// the 6-bit sc_j, m_j of scale_min_k4 for the 8 sub-blocks of the Q4_K / Q5_K super-block at p at once, as ggml's
// own kernels unpack them (kmask1..3): bytes of u[0..1] = sc_0..7, bytes of u[2..3] = m_0..7
INLINE void k4_unpack(const uint8_t *p, uint32_t u[4]) {
    memcpy(u, p + 4, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    const uint32_t m03 = u[1] & 0x3f3f3f3f;
    u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    u[2] = m03;
    u[0] &= 0x3f3f3f3f;
}

// d * sc and dmin * m of the 8 sub-blocks of the super-block at p: dm[j] = d * sc_j, dm[8 + j] = dmin * m_j
// (ggml: const float d1 = d * sc; const float m1 = min * m; each product exact in fp32)
T512 INLINE void k4_scales_512(const uint8_t *p, float dm[16]) {
    uint32_t u[4];
    k4_unpack(p, u);
    const __m512 sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)u)));
    const __m512 dd = _mm512_mask_blend_ps(0xFF00, h2f16(p), h2f16(p + 2));
    _mm512_storeu_ps(dm, _mm512_mul_ps(dd, sm));
}

// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each weight vector looked up once for them)
T512 INLINE void q4_k_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    const __m512 iota = IOTA16;
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
        float dm[GQ_R][16];
        for (int r = 0; r < nr; r++) {
            const uint8_t *row = w + r * rb;
            k4_scales_512(row + 144 * b, dm[r]);
            for (int l = 0; l < 3; l++) pf_ahead(row, (size_t)(144 * b + 64 * l), rb, nr);
        }
        for (int j = 0; j < 4; j++) {
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                // *y++ = d1 * (q[l] & 0xF) - m1;  /  *y++ = d2 * (q[l] >> 4) - m2: the tables of the 16 values
                const __m512 t1 = _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dm[r][2 * j]), iota), _mm512_set1_ps(dm[r][8 + 2 * j]));
                const __m512 t2 = _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dm[r][2 * j + 1]), iota),
                                                _mm512_set1_ps(dm[r][9 + 2 * j]));
                const uint8_t *q = w + r * rb + 144 * b + 16 + 32 * j;
                const __m512i b0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q));
                const __m512i b1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 16)));
                // permutexvar reads the low 4 bits of each index: the low nibble as it is
                const __m512 w0 = _mm512_permutexvar_ps(b0, t1), w1 = _mm512_permutexvar_ps(b1, t1);
                const __m512 w2 = _mm512_permutexvar_ps(_mm512_srli_epi32(b0, 4), t2);
                const __m512 w3 = _mm512_permutexvar_ps(_mm512_srli_epi32(b1, 4), t2);
#pragma GCC unroll 4
                for (int m = 0; m < M; m++) {
                    const float *xb = x + m * ldx + b * GQ_QK_K + 64 * j;
                    acc[r][m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xb), acc[r][m]);
                    acc[r][m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), acc[r][m]);
                    acc[r][m] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xb + 32), acc[r][m]);
                    acc[r][m] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xb + 48), acc[r][m]);
                }
            }
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q4_k_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q4_k_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// acc[m] += w * x_m[0 .. 8) for the M (<= 4) activation rows x + m ldx
T256 INLINE void fma8_m(__m256 acc[4], __m256 w, const float *x, int64_t ldx, const int M) {
#pragma GCC unroll 4
    for (int m = 0; m < M; m++) acc[m] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + m * ldx), acc[m]);
}

// the 64 weights of sub-blocks 2j and 2j + 1 of the Q4_K super-block at p against M (<= 4) activation rows
// xb + m ldx (at the sub-blocks' column), into the row's chains lo[m] (lanes 0-7) and hi[m] (8-15). The two sub-blocks
// are the low and high nibbles of the same 32 bytes; lo takes bytes 0-7 and 16-23 of them, hi bytes 8-15 and 24-31:
// each 8 bytes are widened once (vpmovzxbd from memory) for both nibbles of their chain, and d1 * q - m1 is one fmsub
// (d1 * q is exact: d1 = d * sc has at most 17 significant bits, q 4)
T256 INLINE void q4_k_chunk256(const uint8_t *p, int j, const float *xb, int64_t ldx, __m256 *lo, __m256 *hi, const int M) {
    const __m256i m4 = _mm256_set1_epi32(0xF);
    const float d = h2f(p), min = h2f(p + 2);
    uint8_t sc, mn;
    scale_min_k4(2 * j, p + 4, &sc, &mn);
    const __m256 d1 = _mm256_set1_ps(d * sc), m1 = _mm256_set1_ps(min * mn);
    scale_min_k4(2 * j + 1, p + 4, &sc, &mn);
    const __m256 d2 = _mm256_set1_ps(d * sc), m2 = _mm256_set1_ps(min * mn);
    const uint8_t *q = p + 16 + 32 * j;
#pragma GCC unroll 2
    for (int c = 0; c < 2; c++) { // c = 0: the lo chain (bytes 0-7, 16-23), 1: hi (bytes 8-15, 24-31)
        __m256 *acc = c ? hi : lo;
        const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8 * c)));
        const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + 16 + 8 * c)));
        // *y++ = d1 * (q[l] & 0xF) - m1;  then  *y++ = d2 * (q[l] >> 4) - m2
        fma8_m(acc, _mm256_fmsub_ps(d1, _mm256_cvtepi32_ps(_mm256_and_si256(a, m4)), m1), xb + 8 * c, ldx, M);
        fma8_m(acc, _mm256_fmsub_ps(d1, _mm256_cvtepi32_ps(_mm256_and_si256(e, m4)), m1), xb + 16 + 8 * c, ldx, M);
        fma8_m(acc, _mm256_fmsub_ps(d2, _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 4)), m2), xb + 32 + 8 * c, ldx, M);
        fma8_m(acc, _mm256_fmsub_ps(d2, _mm256_cvtepi32_ps(_mm256_srli_epi32(e, 4)), m2), xb + 48 + 8 * c, ldx, M);
    }
}

// one row against M (<= 4) activation rows x + m ldx: y[m ldy]
T256 INLINE void q4_k_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    kparts_256m(q4_k_chunk256, 144, 4, w, K, x, ldx, y, ldy, M);
}

// nr rows rb apart against one activation row: y[r]
T256 INLINE void q4_k_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    kparts_256r(q4_k_chunk256, 144, 4, 3, w, rb, K, x, y, nr);
}

// ---- AVX-512 table-lookup kernels of the smaller types: each weight is read from a table of the values its few
// bits can take, each entry computed with ggml's operations (so the same rounding as the dequantisation above)


// Q4_1: w = q * d + m
// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each weight vector looked up once)
T512 INLINE void q4_1_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    const __m512 iota = IOTA16;
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        __m512 x0[4], x1[4];
#pragma GCC unroll 4
        for (int m = 0; m < M; m++) x0[m] = _mm512_loadu_ps(x + m * ldx + 32 * b), x1[m] = _mm512_loadu_ps(x + m * ldx + 32 * b + 16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 20 * b;
            // y[i*qk + j + 0] = x0*d + m
            const __m512 lut = _mm512_add_ps(_mm512_mul_ps(iota, _mm512_set1_ps(h2f(p))), _mm512_set1_ps(h2f(p + 2)));
            const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 4)));
            const __m512 w0 = _mm512_permutexvar_ps(q, lut), w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), lut);
            fma_pair_m(acc[r], w0, w1, x0, x1, M);
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q4_1_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q4_1_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// Q5_0 / Q5_1: q = low nibble + 16 * bit j (j + 16 for the second half) of qh; w = (q - 16) * d, or q * d + m
// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each weight vector looked up once)
T512 INLINE void q5_x_512m(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y,
                           int64_t ldy, const int nr, const int M) {
    const int q51 = id == GQ_Q5_1, bs = q51 ? 24 : 22, qh_at = q51 ? 4 : 2;
    const __m512 iota = IOTA16, iota16 = _mm512_add_ps(iota, _mm512_set1_ps(16.0f));
    const __m512 ilo = q51 ? iota : _mm512_sub_ps(iota, _mm512_set1_ps(16.0f)), ihi = q51 ? iota16 : iota;
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        __m512 x0[4], x1[4];
#pragma GCC unroll 4
        for (int m = 0; m < M; m++) x0[m] = _mm512_loadu_ps(x + m * ldx + 32 * b), x1[m] = _mm512_loadu_ps(x + m * ldx + 32 * b + 16);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + bs * b;
            if ((b & 1) == 0) pf_ahead(w + r * rb, (size_t)(bs * b), rb, nr); // a line per 44 / 48 bytes read
            const __m512 d = h2f16(p);
            __m512 ta, tb;
            if (q51) { // x0*d + m
                const __m512 m = h2f16(p + 2);
                ta = _mm512_add_ps(_mm512_mul_ps(ilo, d), m);
                tb = _mm512_add_ps(_mm512_mul_ps(ihi, d), m);
            } else { // x0*d, x0 = q - 16
                ta = _mm512_mul_ps(ilo, d);
                tb = _mm512_mul_ps(ihi, d);
            }
            // bit j of qh is the fifth bit of element j, bit j + 16 that of element j + 16: lanes with it set take
            // their nibble's entry of tb (values 16..31), the others that of ta (permutexvar reads 4 index bits)
            uint32_t qh;
            memcpy(&qh, p + qh_at, 4);
            const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + qh_at + 4)));
            const __m512i hi = _mm512_srli_epi32(q, 4);
            const __m512 wl = _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(q, ta), (__mmask16)qh, q, tb);
            const __m512 wh = _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(hi, ta), (__mmask16)(qh >> 16), hi, tb);
            fma_pair_m(acc[r], wl, wh, x0, x1, M);
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q5_x_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q5_x_512m(id, w, rb, K, x, 0, y, 0, nr, 1);
}

// Q2_K: 16-element sub-block s (= 8n + 2j + h) of 128-element half n: bits 2j of qs[32n + 16h + l], scale byte s;
// w = (d * (sc & 0xF)) * q - dmin * (sc >> 4)
// acc[m] += w * x_m[0 .. 16) for the M (<= 4) activation rows x + m ldx
T512 INLINE void fma16_m(__m512 acc[4], __m512 w, const float *x, int64_t ldx, const int M) {
#pragma GCC unroll 4
    for (int m = 0; m < M; m++) acc[m] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + m * ldx), acc[m]);
}

// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each weight vector looked up once for
// them). Per super-block the 16 sub-blocks' d * (sc & 0xF) and dmin * (sc >> 4) are two vector products (the
// scalar ones of ggml, exact) kept on the stack, from where each sub-block's pair is broadcast by a load; its table
// lut[i] = dl * (i & 3) - ml is one fmsub (dl * i is exact, so ggml's dl * q - ml), periodic in 4 so that the index
// is qs >> 2j as it is (permutexvar reads 4 bits: the next value's 2 bits above q pick the same entry)
T512 INLINE void q2_k_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    const __m512 i4 = _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
    const __m512i m0f = _mm512_set1_epi32(0xF);
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
        float dl[GQ_R][16], ml[GQ_R][16];
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 84 * b;
            if (nr > 1) pf_ahead(w + r * rb, (size_t)(84 * b), rb, nr), pf_ahead(w + r * rb, (size_t)(84 * b + 64), rb, nr);
            // float dl = d * (sc & 0xF), ml = min * (sc >> 4)
            const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
            _mm512_storeu_ps(dl[r], _mm512_mul_ps(h2f16(p + 80), _mm512_cvtepi32_ps(_mm512_and_si512(sc, m0f))));
            _mm512_storeu_ps(ml[r], _mm512_mul_ps(h2f16(p + 82), _mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 4))));
        }
        for (int n = 0; n < 2; n++)
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const uint8_t *qs = w + r * rb + 84 * b + 16 + 32 * n;
                const __m512i q[2] = {_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs)),
                                      _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)))};
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
#pragma GCC unroll 2
                    for (int h = 0; h < 2; h++) {
                        const int sb = 8 * n + 2 * j + h; // *y++ = dl * q - ml
                        const __m512 lut = _mm512_fmsub_ps(_mm512_set1_ps(dl[r][sb]), i4, _mm512_set1_ps(ml[r][sb]));
                        const __m512i idx = j ? _mm512_srli_epi32(q[h], 2 * j) : q[h];
                        fma16_m(acc[r], _mm512_permutexvar_ps(idx, lut), x + b * GQ_QK_K + 128 * n + 32 * j + 16 * h, ldx, M);
                    }
            }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q2_k_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q2_k_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// Q3_K: the same walk; q = bits 2j of qs + 4 * bit (4n + j) of hmask[16h + l], w = (d * (scale - 32)) * (q - 4).
// nr rows rb apart against M (<= 4) activation rows: y[m ldy + r]. The 16 dl of a super-block are one vector product
// on the stack, each broadcast by a load; the index is qs >> 2j (bits 0-1) merged with hmask shifted so that bit
// 4n + j lands on bit 2 (one vpternlogd), and the table lut[i] = dl * ((i & 7) - 4) is periodic in 8 (bit 3 of the
// index belongs to another value)
T512 INLINE void q3_k_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    const __m512 im4 = _mm512_setr_ps(-4, -3, -2, -1, 0, 1, 2, 3, -4, -3, -2, -1, 0, 1, 2, 3);
    const __m512i m3 = _mm512_set1_epi32(3), c32 = _mm512_set1_epi32(32);
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
        float dl[GQ_R][16];
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 110 * b;
            if (nr > 1) pf_ahead(w + r * rb, (size_t)(110 * b), rb, nr), pf_ahead(w + r * rb, (size_t)(110 * b + 64), rb, nr);
            int8_t scales[16];
            k3_scales(p, scales);
            // dl = d_all * (scales[is++] - 32)
            const __m512i sv = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)scales)), c32);
            _mm512_storeu_ps(dl[r], _mm512_mul_ps(h2f16(p + 108), _mm512_cvtepi32_ps(sv)));
        }
        for (int n = 0; n < 2; n++)
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const uint8_t *p = w + r * rb + 110 * b, *qs = p + 32 + 32 * n;
                const __m512i q[2] = {_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)qs)),
                                      _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16)))};
                const __m512i hv[2] = {_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)),
                                       _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 16)))};
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
#pragma GCC unroll 2
                    for (int h = 0; h < 2; h++) {
                        const int sb = 8 * n + 2 * j + h, t = 4 * n + j; // *y++ = dl * (q2 - (hm & m ? 0 : 4))
                        const __m512 lut = _mm512_mul_ps(_mm512_set1_ps(dl[r][sb]), im4);
                        const __m512i qj = j ? _mm512_srli_epi32(q[h], 2 * j) : q[h];
                        const __m512i hb = t > 2 ? _mm512_srli_epi32(hv[h], t - 2) : t < 2 ? _mm512_slli_epi32(hv[h], 2 - t) : hv[h];
                        // (qj & 3) | (hb & ~3): q2 in bits 0-1, the hmask bit in bit 2
                        const __m512i idx = _mm512_ternarylogic_epi32(qj, hb, m3, 0xE4);
                        fma16_m(acc[r], _mm512_permutexvar_ps(idx, lut), x + b * GQ_QK_K + 128 * n + 32 * j + 16 * h, ldx, M);
                    }
            }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q3_k_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q3_k_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// ---- AVX2 twins of the table-lookup kernels: the same values by arithmetic (8 lanes: no 16-entry permute)

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each block's weights computed once for them)
T256 INLINE void q4_1_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    const __m256i m4 = _mm256_set1_epi32(0xF);
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *p = w + 20 * b;
        const __m256 d = h2f8(p), m = h2f8(p + 2);
        __m256i q[2];
        widen_u8(p + 4, &q[0], &q[1]);
        for (int h = 0; h < 2; h++) { // h = 0: low nibbles (elements 0..15), 1: high nibbles (16..31)
            __m256 wv[2];
            for (int k = 0; k < 2; k++) { // y[i*qk + j + 0] = x0*d + m
                const __m256i v = h ? _mm256_srli_epi32(q[k], 4) : _mm256_and_si256(q[k], m4);
                wv[k] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), d), m);
            }
            fma8x2_m(lo, hi, wv[0], wv[1], x + 32 * b + 16 * h, ldx, M);
        }
    }
    store_256m(y, ldy, lo, hi, M);
}

T256 INLINE void q4_1_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    (void)rb, (void)nr;
    q4_1_256m(w, K, x, 0, y, 0, 1);
}

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each block's weights computed once for them)
T256 INLINE void q5_x_256m(uint32_t id, const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int M) {
    const int q51 = id == GQ_Q5_1, bs = q51 ? 24 : 22, qh_at = q51 ? 4 : 2;
    const __m256i m4 = _mm256_set1_epi32(0xF), one = _mm256_set1_epi32(1), c16 = _mm256_set1_epi32(q51 ? 0 : 16);
    const __m256i sh0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const uint8_t *p = w + bs * b;
        const __m256 d = h2f8(p), m = q51 ? h2f8(p + 2) : _mm256_setzero_ps();
        uint32_t qh;
        memcpy(&qh, p + qh_at, 4);
        const __m256i qhv = _mm256_set1_epi32((int)qh);
        __m256i q[2];
        widen_u8(p + qh_at + 4, &q[0], &q[1]);
        for (int h = 0; h < 2; h++) {
            __m256 wv[2];
            for (int k = 0; k < 2; k++) {
                // element e = 16h + 8k + lane: nibble of byte 8k + lane, high bit e of qh
                __m256i v = h ? _mm256_srli_epi32(q[k], 4) : _mm256_and_si256(q[k], m4);
                const __m256i sh = _mm256_add_epi32(sh0, _mm256_set1_epi32(16 * h + 8 * k));
                v = _mm256_or_si256(v, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(qhv, sh), one), 4));
                v = _mm256_sub_epi32(v, c16);
                wv[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(v), d);
                if (q51) wv[k] = _mm256_add_ps(wv[k], m); // x0*d + m
            }
            fma8x2_m(lo, hi, wv[0], wv[1], x + 32 * b + 16 * h, ldx, M);
        }
    }
    store_256m(y, ldy, lo, hi, M);
}

T256 INLINE void q5_x_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    (void)rb, (void)nr;
    q5_x_256m(id, w, K, x, 0, y, 0, 1);
}

// 8 bytes widened to int32
T256 INLINE __m256i widen8_u8(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each weight vector computed once for them). As
// q2_k_512m: the 16 scale pairs as vector products on the stack, each sub-block's 8-entry table one fmsub (periodic
// in 4: vpermps reads 3 index bits, the shifted codes need no mask)
T256 INLINE void q2_k_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    const __m256 i4 = _mm256_setr_ps(0, 1, 2, 3, 0, 1, 2, 3);
    const __m256i m0f = _mm256_set1_epi32(0xF);
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
        const uint8_t *p = w + 84 * b;
        float dl[16], ml[16];
        for (int k = 0; k < 2; k++) { // float dl = d * (sc & 0xF), ml = min * (sc >> 4)
            const __m256i sc = widen8_u8(p + 8 * k);
            _mm256_storeu_ps(dl + 8 * k, _mm256_mul_ps(h2f8(p + 80), _mm256_cvtepi32_ps(_mm256_and_si256(sc, m0f))));
            _mm256_storeu_ps(ml + 8 * k, _mm256_mul_ps(h2f8(p + 82), _mm256_cvtepi32_ps(_mm256_srli_epi32(sc, 4))));
        }
        for (int n = 0; n < 2; n++) {
            const uint8_t *qs = p + 16 + 32 * n;
            const __m256i q[4] = {widen8_u8(qs), widen8_u8(qs + 8), widen8_u8(qs + 16), widen8_u8(qs + 24)};
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const int sb = 8 * n + 2 * j + h; // *y++ = dl * q - ml
                    const __m256 lut = _mm256_fmsub_ps(_mm256_set1_ps(dl[sb]), i4, _mm256_set1_ps(ml[sb]));
                    const __m256i q0 = j ? _mm256_srli_epi32(q[2 * h], 2 * j) : q[2 * h];
                    const __m256i q1 = j ? _mm256_srli_epi32(q[2 * h + 1], 2 * j) : q[2 * h + 1];
                    fma8x2_m(lo, hi, _mm256_permutevar8x32_ps(lut, q0), _mm256_permutevar8x32_ps(lut, q1),
                             x + b * GQ_QK_K + 128 * n + 32 * j + 16 * h, ldx, M);
                }
        }
    }
    store_256m(y, ldy, lo, hi, M);
}

T256 INLINE void q2_k_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    (void)rb, (void)nr;
    q2_k_256m(w, K, x, 0, y, 0, 1);
}

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each block's weights computed once for them). As
// q3_k_512m: the 16 dl as vector products on the stack, each sub-block's table dl * (i - 4) (i = q2 + 4 * hmask
// bit: 8 entries, vpermps), the index (qs >> 2j & 3) | (the hmask bit moved to bit 2)
T256 INLINE void q3_k_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    const __m256 im4 = _mm256_setr_ps(-4, -3, -2, -1, 0, 1, 2, 3);
    const __m256i m3 = _mm256_set1_epi32(3), m4 = _mm256_set1_epi32(4), c32 = _mm256_set1_epi32(32);
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
        const uint8_t *p = w + 110 * b;
        int8_t scales[16];
        k3_scales(p, scales);
        float dl[16];
        for (int k = 0; k < 2; k++) { // dl = d_all * (scales[is++] - 32)
            const __m256i sv = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(scales + 8 * k))), c32);
            _mm256_storeu_ps(dl + 8 * k, _mm256_mul_ps(h2f8(p + 108), _mm256_cvtepi32_ps(sv)));
        }
        const __m256i hv[4] = {widen8_u8(p), widen8_u8(p + 8), widen8_u8(p + 16), widen8_u8(p + 24)};
        for (int n = 0; n < 2; n++) {
            const uint8_t *qs = p + 32 + 32 * n;
            const __m256i q[4] = {widen8_u8(qs), widen8_u8(qs + 8), widen8_u8(qs + 16), widen8_u8(qs + 24)};
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const int sb = 8 * n + 2 * j + h, t = 4 * n + j; // *y++ = dl * (q2 - (hm & m ? 0 : 4))
                    const __m256 lut = _mm256_mul_ps(_mm256_set1_ps(dl[sb]), im4);
                    __m256 wv[2];
#pragma GCC unroll 2
                    for (int k = 0; k < 2; k++) {
                        const __m256i qj = j ? _mm256_srli_epi32(q[2 * h + k], 2 * j) : q[2 * h + k];
                        const __m256i hv2 = hv[2 * h + k];
                        const __m256i hb = t > 2 ? _mm256_srli_epi32(hv2, t - 2) : t < 2 ? _mm256_slli_epi32(hv2, 2 - t) : hv2;
                        const __m256i idx = _mm256_or_si256(_mm256_and_si256(qj, m3), _mm256_and_si256(hb, m4));
                        wv[k] = _mm256_permutevar8x32_ps(lut, idx);
                    }
                    fma8x2_m(lo, hi, wv[0], wv[1], x + b * GQ_QK_K + 128 * n + 32 * j + 16 * h, ldx, M);
                }
        }
    }
    store_256m(y, ldy, lo, hi, M);
}

T256 INLINE void q3_k_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    (void)rb, (void)nr;
    q3_k_256m(w, K, x, 0, y, 0, 1);
}

// ---- Q5_K: w = (d * sc) * q - (dmin * m), q = low nibble + 16 * high bit (0..31); AVX-512 looks it up in a table
// of the 32 values (permutex2var)

// nr rows rb apart against M (<= 4) activation rows x + m ldx: y[m ldy + r] (each weight vector looked up once). Per
// super-block the 8 d * sc and dmin * m as one vector product on the stack (k4_scales_512) and qh widened once; per
// 64 weights the two 32-entry tables are fmsubs (d1 * q exact), and each index is the nibble with qh's bit moved to
// bit 4 by one shift, merged by one vpternlogd (permutex2var reads 5 index bits: qh's other bits above are ignored)
T512 INLINE void q5_k_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    const __m512 iota = IOTA16, iota16 = _mm512_add_ps(iota, _mm512_set1_ps(16.0f));
    const __m512i m0f = _mm512_set1_epi32(0xF);
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
        float dm[GQ_R][16];
        __m512i hb[GQ_R][2];
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 176 * b;
            if (nr > 1)
                for (int l = 0; l < 3; l++) pf_ahead(w + r * rb, (size_t)(176 * b + 64 * l), rb, nr);
            k4_scales_512(p, dm[r]);
            hb[r][0] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 16)));
            hb[r][1] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(p + 32)));
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const int64_t xo = b * GQ_QK_K + 64 * j;
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const uint8_t *ql = w + r * rb + 176 * b + 48 + 32 * j;
                // *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1: the tables of the 32 values
                const __m512 d1 = _mm512_set1_ps(dm[r][2 * j]), m1 = _mm512_set1_ps(dm[r][8 + 2 * j]);
                const __m512 d2 = _mm512_set1_ps(dm[r][2 * j + 1]), m2 = _mm512_set1_ps(dm[r][9 + 2 * j]);
                const __m512 t1a = _mm512_fmsub_ps(d1, iota, m1), t1b = _mm512_fmsub_ps(d1, iota16, m1);
                const __m512 t2a = _mm512_fmsub_ps(d2, iota, m2), t2b = _mm512_fmsub_ps(d2, iota16, m2);
                __m512i l[2], i1[2], i2[2];
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) { // qh bit 2j (sub-block 2j) and 2j + 1 (2j + 1) moved to bit 4
                    l[h] = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ql + 16 * h)));
                    const __m512i hv = hb[r][h];
                    const __m512i b1 = 2 * j < 4 ? _mm512_slli_epi32(hv, 4 - 2 * j) : 2 * j > 4 ? _mm512_srli_epi32(hv, 2 * j - 4) : hv;
                    const __m512i b2 = 2 * j + 1 < 4 ? _mm512_slli_epi32(hv, 3 - 2 * j) : _mm512_srli_epi32(hv, 2 * j - 3);
                    // (nibble & 0xF) | (shifted qh & ~0xF)
                    i1[h] = _mm512_ternarylogic_epi32(l[h], b1, m0f, 0xE4);
                    i2[h] = _mm512_ternarylogic_epi32(_mm512_srli_epi32(l[h], 4), b2, m0f, 0xE4);
                }
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++)
                    fma16_m(acc[r], _mm512_permutex2var_ps(t1a, i1[h], t1b), x + xo + 16 * h, ldx, M);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++)
                    fma16_m(acc[r], _mm512_permutex2var_ps(t2a, i2[h], t2b), x + xo + 32 + 16 * h, ldx, M);
            }
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q5_k_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q5_k_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// AVX2: the 64 five-bit values of sub-blocks 2j and 2j + 1 as bytes, 32 per instruction (the nibbles of ql[32j ..];
// bit 2j / 2j + 1 of qh[l] by a 16-bit shift, masked, moved to bit 4), then per 8 values a zero extension,
// vcvtdq2ps and fmsub(d1, q, m1) (d1 * q exact: ggml's d1 * q - m1)
// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each weight vector computed once for them)
// sub-blocks 2j and 2j + 1 (64 weights) of the Q5_K super-block at p against M (<= 4) activation rows xb + m ldx (at
// the sub-blocks' column), into the row's chains lo[m] (lanes 0-7) and hi[m] (8-15)
T256 INLINE void q5_k_chunk256(const uint8_t *p, int j, const float *xb, int64_t ldx, __m256 *lo, __m256 *hi, const int M) {
    const __m256i m0f = _mm256_set1_epi8(0x0F), b1 = _mm256_set1_epi8(1);
    const float d = h2f(p), min = h2f(p + 2);
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 16));
    const __m256i l = _mm256_loadu_si256((const __m256i *)(p + 48 + 32 * j));
    // (ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0), then (ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)
    __m256i q[2];
    q[0] = _mm256_or_si256(_mm256_and_si256(l, m0f), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), b1), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l, 4), m0f),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), b1), 4));
#pragma GCC unroll 2
    for (int half = 0; half < 2; half++) { // sub-block 2j + half
        uint8_t sc, m;
        scale_min_k4(2 * j + half, p + 4, &sc, &m);
        const __m256 dd = _mm256_set1_ps(d * sc), mm = _mm256_set1_ps(min * m);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m128i v = h ? _mm256_extracti128_si256(q[half], 1) : _mm256_castsi256_si128(q[half]);
            const __m256 a0 = _mm256_fmsub_ps(dd, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), mm);
            const __m256 a1 = _mm256_fmsub_ps(dd, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8))), mm);
            fma8x2_m(lo, hi, a0, a1, xb + 32 * half + 16 * h, ldx, M);
        }
    }
}

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each weight vector computed once for them)
// (its own loop, unrolled so that the four chunks can share qh's load and the scale conversions: through
// kparts_256m, whose loop is not unrolled because that made Q4_K's batched step 0.8-0.96x, it measured 0.89-1.02x)
T256 INLINE void q5_k_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    __m256 lo[4], hi[4];
    for (int m = 0; m < M; m++) lo[m] = hi[m] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) q5_k_chunk256(w + 176 * b, j, x + b * GQ_QK_K + 64 * j, ldx, lo, hi, M);
    store_256m(y, ldy, lo, hi, M);
}

T256 INLINE void q5_k_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    (void)rb, (void)nr; // (one row: INSTANCE1; 4 rows side by side measured slower, 7.4 -> 4.6-6.5 GB/s on one core)
    q5_k_256m(w, K, x, 0, y, 0, 1);
}

// ---- Q6_K: w = (d * sc) * (q - 32). Output chunk c (0..7) of a 128-element half: ql + (c & 3) * 16 (>> 4 when
// c >= 4), qh + (c & 1) * 16 (>> 2 * (c >> 1)), scale c.

// 128-bit lane k (0..3) of v (a switch: the immediate must be a constant for every compiler)
T512 INLINE __m128i lane128(__m512i v, const int k) {
    switch (k) {
    case 0: return _mm512_castsi512_si128(v);
    case 1: return _mm512_extracti32x4_epi32(v, 1);
    case 2: return _mm512_extracti32x4_epi32(v, 2);
    default: return _mm512_extracti32x4_epi32(v, 3);
    }
}

// AVX-512 builds the 128 six-bit values of a half as bytes, 64 at a time (ql read as one vector, qh broadcast to
// both halves): chunks 0-3 are ql & 0xF with bits (0, 1) of qh[0..31] (chunks 0-1) or (2, 3) (chunks 2-3) at bits 4-5,
// chunks 4-7 ql >> 4 with bits (4, 5) / (6, 7): one per-word shift of qh per 64 (vpsllvw / vpsrlvw: the other byte of
// a word only reaches bits that the mask 0x30 clears), the nibble mask, one vpternlogd merge, minus 32; then per 16
// values a sign-extension from the register, vcvtdq2ps and the product with d * sc (the same exact product)
T512 INLINE void q6_k_512m(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int nr, const int M) {
    const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30), c32 = _mm512_set1_epi8(32);
    // word shift counts: qh bits (0, 1) / (2, 3) to bits 4-5 (left 4 / 2), bits (4, 5) / (6, 7) (right 0 / 2)
    const __m512i sla = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i srb = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512 acc[GQ_R][4];
    for (int r = 0; r < nr; r++)
        for (int m = 0; m < M; m++) acc[r][m] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / GQ_QK_K; b++) {
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = w + r * rb + 210 * b;
            const float d = h2f(p + 208);
            for (int half = 0; half < 2; half++) {
                const __m512i ql = _mm512_loadu_si512((const void *)(p + 64 * half));
                const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p + 128 + 32 * half)));
                // d * sc of the 8 chunks (each exact), as the lanes of ds
                const __m512 ds = _mm512_castps256_ps512(_mm256_mul_ps(
                    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 192 + 8 * half)))), _mm256_set1_ps(d)));
                const int64_t xo = b * GQ_QK_K + 128 * half;
                // q - 32 as signed bytes: (qh part & 0x30) | nibble (vpternlogd 0xEC: (a & c) | b), minus 32
                __m512i q[2];
                q[0] = _mm512_sub_epi8(_mm512_ternarylogic_epi32(_mm512_sllv_epi16(qh, sla), _mm512_and_si512(ql, m0f), m30, 0xEC), c32);
                q[1] = _mm512_sub_epi8(
                    _mm512_ternarylogic_epi32(_mm512_srlv_epi16(qh, srb), _mm512_and_si512(_mm512_srli_epi16(ql, 4), m0f), m30, 0xEC), c32);
#pragma GCC unroll 8
                for (int c = 0; c < 8; c++) {
                    const __m128i v = lane128(q[c / 4], c % 4);
                    // y[l] = d * sc[is] * q: (d * sc) first
                    const __m512 wv = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_set1_epi32(c), ds), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)));
#pragma GCC unroll 4
                    for (int m = 0; m < M; m++)
                        acc[r][m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + m * ldx + xo + 16 * c), acc[r][m]);
                }
            }
        }
    }
    store_m(y, ldy, acc, nr, M);
}

T512 INLINE void q6_k_512(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    q6_k_512m(w, rb, K, x, 0, y, 0, nr, 1);
}

// AVX2: the 128 values of a half as bytes, 32 per instruction as on AVX-512 (q6_k_512m; fixed 16-bit shifts of qh,
// one per 32: left 4 / 2, none, right 2), then per 8 values a sign extension, vcvtdq2ps and the product with d * sc
// half `half` (128 weights) of the Q6_K super-block at p against M (<= 4) activation rows xh + m ldx (at the half's
// column), into the row's chains lo[m] (lanes 0-7) and hi[m] (8-15)
T256 INLINE void q6_k_half256(const uint8_t *p, int half, const float *xh, int64_t ldx, __m256 *lo, __m256 *hi, const int M) {
    const __m256i m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), c32 = _mm256_set1_epi8(32);
    const float d = h2f(p + 208);
    const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(p + 64 * half));
    const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(p + 64 * half + 32));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * half));
    __m256i q[4]; // values 0-31, 32-63, 64-95, 96-127 of the half, minus 32, as signed bytes
    q[0] = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(ql0, m0f), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)), c32);
    q[1] = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(ql1, m0f), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)), c32);
    q[2] = _mm256_sub_epi8(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m0f), _mm256_and_si256(qh, m30)), c32);
    q[3] = _mm256_sub_epi8(
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m0f), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)), c32);
    // d * sc of the 8 chunks (each exact)
    float ds[8];
    _mm256_storeu_ps(ds, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 192 + 8 * half)))),
                                       _mm256_set1_ps(d)));
#pragma GCC unroll 8
    for (int c = 0; c < 8; c++) {
        const __m128i v = c % 2 ? _mm256_extracti128_si256(q[c / 2], 1) : _mm256_castsi256_si128(q[c / 2]);
        const __m256 dv = _mm256_set1_ps(ds[c]);
        // y[l] = d * sc[is] * q: (d * sc) first
        fma8x2_m(lo, hi, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))),
                 _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)))), xh + 16 * c, ldx, M);
    }
}

// one row against M (<= 4) activation rows x + m ldx: y[m ldy] (each weight vector computed once for them)
T256 INLINE void q6_k_256m(const uint8_t *w, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy, const int M) {
    kparts_256m(q6_k_half256, 210, 2, w, K, x, ldx, y, ldy, M);
}

// nr rows rb apart against one activation row: y[r]
T256 INLINE void q6_k_256(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y, const int nr) {
    kparts_256r(q6_k_half256, 210, 2, 4, w, rb, K, x, y, nr);
}

// ---------------------------------------------------------------------------- dispatch

// a kernel: nr (GQ_R or 1) rows row_bytes apart
typedef void (*RowsFn)(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y);

// the GQ_R-row and 1-row instances of a kernel body (ID: the type it is specialised for, or id)
#define INSTANCES(name, tgt, body, ID)                                                                                 \
    tgt static void name##_r4(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y) {         \
        body(ID, w, rb, K, x, y, GQ_R);                                                                                \
    }                                                                                                                  \
    tgt static void name##_r1(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y) {         \
        body(ID, w, rb, K, x, y, 1);                                                                                   \
    }
INSTANCES(f32_512, T512, flt_512, GQ_F32)
INSTANCES(f16_512, T512, flt_512, GQ_F16)
INSTANCES(bf16_512, T512, flt_512, GQ_BF16)
INSTANCES(f32_256, T256, flt_256, GQ_F32)
INSTANCES(f16_256, T256, flt_256, GQ_F16)
INSTANCES(bf16_256, T256, flt_256, GQ_BF16)
// quantised types with 4-row kernels that prefetch (pf_ahead: without it they were slower than one row at a time)
INSTANCES(q8_0_512, T512, q8_0_512, GQ_Q8_0)
INSTANCES(q8_0_256, T256, q8_0_256, GQ_Q8_0)
INSTANCES(q4_k_512, T512, q4_k_512, GQ_Q4_K)
// 4 rows side by side for the latency of the fma chains: AVX2 Q4_K and Q6_K, once their operations were cut, waited
// on one row's two chains, AVX-512 Q4_0, Q4_1, Q2_K, Q3_K and Q5_K on their one (2 threads Q4_0 13.4-13.8 -> 18.5-19.0
// GB/s, no prefetch needed; one thread Q4_1 1.32x, Q2_K 1.17x, Q3_K 1.34x, Q5_K 1.12x over one row of the same kernel)
INSTANCES(q4_k_256, T256, q4_k_256, GQ_Q4_K)
INSTANCES(q6_k_256, T256, q6_k_256, GQ_Q6_K)
INSTANCES(q4_0_512, T512, q4_0_512, GQ_Q4_0)
INSTANCES(q2_k_512, T512, q2_k_512, GQ_Q2_K)
INSTANCES(q3_k_512, T512, q3_k_512, GQ_Q3_K)
INSTANCES(q5_k_512, T512, q5_k_512, GQ_Q5_K)
INSTANCES(q4_1_512, T512, q4_1_512, GQ_Q4_1)
// the 1-row instance only: for these types 4 rows at a time measured slower here, or no faster (AMD EPYC, AVX-512:
// Q6_K 2x slower before its byte-building kernel, equal after it; AVX2 Q5_K 7.4 -> 4.6-6.5 GB/s)
#define INSTANCE1(name, tgt, body)                                                                                     \
    tgt static void name##_r1(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y) {         \
        body(id, w, rb, K, x, y, 1);                                                                                   \
    }
INSTANCE1(q4_0_256, T256, q4_0_256)
INSTANCE1(q6_k_512, T512, q6_k_512)
INSTANCE1(q5_k_256, T256, q5_k_256)
// AVX-512 Q5_0 / Q5_1: GQ_R rows as pairs (measured faster than four rows side by side once the weights come from
// memory: 8.6-8.8 against 8.2 GB/s on one core)
T512 static void q5_x_512_r4(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y) {
    for (int r = 0; r < GQ_R; r += 2) q5_x_512(id, w + r * rb, rb, K, x, y + r, 2);
}
INSTANCE1(q5_x_512, T512, q5_x_512)
INSTANCE1(q4_1_256, T256, q4_1_256)
INSTANCE1(q5_x_256, T256, q5_x_256)
INSTANCE1(q2_k_256, T256, q2_k_256)
INSTANCE1(q3_k_256, T256, q3_k_256)

static void portable_r1(uint32_t id, const uint8_t *w, size_t rb, int64_t K, const float *x, float *y) {
    *y = row_generic_c(id, w, K, x);
}

// the weight rows kernels_m gives (*nr: GQ_R, or 1) x M (2-4) activation rows: y[m ldy + r]
typedef void (*RowsMFn)(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y, int64_t ldy);
// name_m2, name_m3, name_m4 for target tgt: `call` with M = 2, 3, 4 (M and the arguments of RowsMFn in scope)
#define INSTANCE_M(tgt, name, MV, call)                                                                                \
    tgt static void name##_m##MV(const uint8_t *w, size_t rb, int64_t K, const float *x, int64_t ldx, float *y,        \
                                 int64_t ldy) {                                                                        \
        enum { M = MV };                                                                                               \
        (void)rb;                                                                                                      \
        call;                                                                                                          \
    }
#define INSTANCES_M_T(tgt, name, call) INSTANCE_M(tgt, name, 2, call) INSTANCE_M(tgt, name, 3, call) INSTANCE_M(tgt, name, 4, call)
#define INSTANCES_M(name, call) INSTANCES_M_T(T512, name, call)
#define INSTANCES_M256(name, call) INSTANCES_M_T(T256, name, call)
// GQ_R rows side by side (Q8_0, Q4_K, the float types), one row at a time (Q6_K, Q5_K, Q4_0, Q4_1: 4 rows side by
// side measured slower than one, see INSTANCE1), or GQ_R rows as pairs (Q5_0 / Q5_1, as q5_x_512_r4)
INSTANCES_M(q8_0_512, q8_0_512m(w, rb, K, x, ldx, y, ldy, GQ_R, M))
INSTANCES_M(q4_k_512, q4_k_512m(w, rb, K, x, ldx, y, ldy, GQ_R, M))
INSTANCES_M(f32_512, flt_512m(GQ_F32, w, rb, K, x, ldx, y, ldy, GQ_R, M))
INSTANCES_M(f16_512, flt_512m(GQ_F16, w, rb, K, x, ldx, y, ldy, GQ_R, M))
INSTANCES_M(bf16_512, flt_512m(GQ_BF16, w, rb, K, x, ldx, y, ldy, GQ_R, M))
INSTANCES_M(q6_k_512, q6_k_512m(w, rb, K, x, ldx, y, ldy, 1, M))
INSTANCES_M(q5_k_512, q5_k_512m(w, rb, K, x, ldx, y, ldy, 1, M))
INSTANCES_M(q4_0_512, q4_0_512m(w, rb, K, x, ldx, y, ldy, 1, M))
INSTANCES_M(q4_1_512, q4_1_512m(w, rb, K, x, ldx, y, ldy, 1, M))
INSTANCES_M(q2_k_512, q2_k_512m(w, rb, K, x, ldx, y, ldy, 1, M))
INSTANCES_M(q3_k_512, q3_k_512m(w, rb, K, x, ldx, y, ldy, 1, M))
INSTANCES_M(q5_0_512, for (int r = 0; r < GQ_R; r += 2) q5_x_512m(GQ_Q5_0, w + r * rb, rb, K, x, ldx, y + r, ldy, 2, M))
INSTANCES_M(q5_1_512, for (int r = 0; r < GQ_R; r += 2) q5_x_512m(GQ_Q5_1, w + r * rb, rb, K, x, ldx, y + r, ldy, 2, M))

// AVX2: one weight row at a time
INSTANCES_M256(q8_0_256, q8_0_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q4_k_256, q4_k_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q4_0_256, q4_0_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q4_1_256, q4_1_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q5_0_256, q5_x_256m(GQ_Q5_0, w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q5_1_256, q5_x_256m(GQ_Q5_1, w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q2_k_256, q2_k_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q3_k_256, q3_k_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q5_k_256, q5_k_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(q6_k_256, q6_k_256m(w, K, x, ldx, y, ldy, M))
INSTANCES_M256(f32_256, flt_256m(GQ_F32, w, K, x, ldx, y, ldy, M))
INSTANCES_M256(f16_256, flt_256m(GQ_F16, w, K, x, ldx, y, ldy, M))
INSTANCES_M256(bf16_256, flt_256m(GQ_BF16, w, K, x, ldx, y, ldy, M))

// the kernel of (id, isa) for M (2-4) activation rows and the weight rows it takes at once (*nr: GQ_R, or 1), or NULL
static RowsMFn kernels_m(uint32_t id, int isa, int M, int *nr) {
#define KM(a) do { const RowsMFn f[3] = {a##_m2, a##_m3, a##_m4}; return f[M - 2]; } while (0)
    *nr = isa == 1 || id == GQ_Q6_K || id == GQ_Q5_K || id == GQ_Q4_0 || id == GQ_Q4_1 || id == GQ_Q2_K ||
                  id == GQ_Q3_K ? 1 : GQ_R;
    if (M < 2 || M > 4) return NULL;
    if (isa == 1) switch (id) { // (AVX2: one weight row at a time)
        case GQ_F32: KM(f32_256);
        case GQ_F16: KM(f16_256);
        case GQ_BF16: KM(bf16_256);
        case GQ_Q8_0: KM(q8_0_256);
        case GQ_Q4_K: KM(q4_k_256);
        case GQ_Q4_0: KM(q4_0_256);
        case GQ_Q4_1: KM(q4_1_256);
        case GQ_Q5_0: KM(q5_0_256);
        case GQ_Q5_1: KM(q5_1_256);
        case GQ_Q2_K: KM(q2_k_256);
        case GQ_Q3_K: KM(q3_k_256);
        case GQ_Q5_K: KM(q5_k_256);
        case GQ_Q6_K: KM(q6_k_256);
        default: return NULL;
        }
    if (isa != 2) return NULL;
    switch (id) {
    case GQ_F32: KM(f32_512);
    case GQ_F16: KM(f16_512);
    case GQ_BF16: KM(bf16_512);
    case GQ_Q8_0: KM(q8_0_512);
    case GQ_Q4_K: KM(q4_k_512);
    case GQ_Q5_K: KM(q5_k_512);
    case GQ_Q6_K: KM(q6_k_512);
    case GQ_Q5_0: KM(q5_0_512);
    case GQ_Q5_1: KM(q5_1_512);
    case GQ_Q4_0: KM(q4_0_512);
    case GQ_Q4_1: KM(q4_1_512);
    case GQ_Q2_K: KM(q2_k_512);
    case GQ_Q3_K: KM(q3_k_512);
    default: return NULL;
    }
#undef KM
}

// the kernels of (id, isa): *r4 (GQ_R rows; NULL: none) and the 1-row one
static RowsFn kernels(uint32_t id, int isa, RowsFn *r4) {
#define K2(a) do { *r4 = a##_r4; return a##_r1; } while (0)
#define K1(a) do { *r4 = NULL; return a##_r1; } while (0)
    if (isa == 2) switch (id) {
        case GQ_F32: K2(f32_512);
        case GQ_F16: K2(f16_512);
        case GQ_BF16: K2(bf16_512);
        case GQ_Q8_0: K2(q8_0_512);
        case GQ_Q4_0: K2(q4_0_512);
        case GQ_Q4_K: K2(q4_k_512);
        case GQ_Q6_K: K1(q6_k_512);
        case GQ_Q5_K: K2(q5_k_512);
        case GQ_Q4_1: K2(q4_1_512);
        case GQ_Q5_0: case GQ_Q5_1: K2(q5_x_512);
        case GQ_Q2_K: K2(q2_k_512);
        case GQ_Q3_K: K2(q3_k_512);
        default: break;
        }
    if (isa == 1) switch (id) {
        case GQ_F32: K2(f32_256);
        case GQ_F16: K2(f16_256);
        case GQ_BF16: K2(bf16_256);
        case GQ_Q8_0: K2(q8_0_256);
        case GQ_Q4_0: K1(q4_0_256);
        case GQ_Q4_K: K2(q4_k_256);
        case GQ_Q6_K: K2(q6_k_256);
        case GQ_Q5_K: K1(q5_k_256);
        case GQ_Q4_1: K1(q4_1_256);
        case GQ_Q5_0: case GQ_Q5_1: K1(q5_x_256);
        case GQ_Q2_K: K1(q2_k_256);
        case GQ_Q3_K: K1(q3_k_256);
        default: break;
        }
#undef K2
#undef K1
    *r4 = NULL;
    return portable_r1;
}

// a supported type, K whole blocks, rows of at least row_bytes: the matvec entry points' common check
static int args_ok(uint32_t id, size_t row_bytes, int64_t rows, int64_t K) {
    const GQType *t = gq_type(id);
    return t && t->supported && K >= 0 && K % t->block == 0 && rows >= 0 && row_bytes >= gq_row_bytes(id, K);
}

// rows [0, rows) in groups of GQ_R (the 4-row kernel where there is one), on this thread
static void matvec_rows(uint32_t id, RowsFn r1, RowsFn r4, const uint8_t *w, size_t row_bytes, int64_t gi,
                        int64_t rows, int64_t K, const float *x, float *y) {
    const int64_t r0 = gi * GQ_R, nr = rows - r0 < GQ_R ? rows - r0 : GQ_R;
    const uint8_t *wr = w + (size_t)r0 * row_bytes;
    if (nr == GQ_R && r4) r4(id, wr, row_bytes, K, x, y + r0);
    else
        for (int64_t r = 0; r < nr; r++) r1(id, wr + (size_t)r * row_bytes, row_bytes, K, x, y + r0 + r);
}

int gq_matvec(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y,
              int nthreads) {
    if (!args_ok(id, row_bytes, rows, K)) return -1;
    RowsFn r4, r1 = kernels(id, gq_isa(), &r4);
    const int64_t ngroups = (rows + GQ_R - 1) / GQ_R;
#ifdef _OPENMP
    const int nt = nthreads > 0 ? nthreads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (ngroups > 1)
#else
    (void)nthreads;
#endif
    for (int64_t gi = 0; gi < ngroups; gi++) matvec_rows(id, r1, r4, W, row_bytes, gi, rows, K, x, y);
    return 0;
}

int gq_matvec_streams(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y) {
    if (!args_ok(id, row_bytes, rows, K)) return -1;
    RowsFn r4, r1 = kernels(id, gq_isa(), &r4);
    const int64_t part = r4 ? rows / GQ_R : 0; // stream i: rows [i part, (i + 1) part)
    const uint8_t *w = W;
    for (int64_t r = 0; r < part; r++) { // a 4-row kernel on rows part apart: each prefetches on into its next row
        float o[GQ_R];
        r4(id, w + (size_t)r * row_bytes, (size_t)part * row_bytes, K, x, o);
        for (int i = 0; i < GQ_R; i++) y[r + i * part] = o[i];
    }
    for (int64_t r = GQ_R * part; r < rows; r++) r1(id, w + (size_t)r * row_bytes, row_bytes, K, x, y + r);
    return 0;
}

int gq_matmul_streams(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, int64_t ldx,
                      int M, float *y, int64_t ldy) {
    if (!args_ok(id, row_bytes, rows, K) || M < 1) return -1;
    int nr;
    const RowsMFn rm = kernels_m(id, gq_isa(), M, &nr);
    if (!rm) { // one activation row at a time
        for (int m = 0; m < M; m++) gq_matvec_streams(id, W, row_bytes, rows, K, x + m * ldx, y + m * ldy);
        return 0;
    }
    const uint8_t *w = W;
    if (nr == 1) { // one weight row at a time, read once for the M activation rows
        for (int64_t r = 0; r < rows; r++) rm(w + (size_t)r * row_bytes, row_bytes, K, x, ldx, y + r, ldy);
        return 0;
    }
    RowsFn r4, r1 = kernels(id, gq_isa(), &r4);
    const int64_t part = rows / GQ_R; // stream i: rows [i part, (i + 1) part)
    for (int64_t r = 0; r < part; r++) {
        float o[4 * GQ_R];
        rm(w + (size_t)r * row_bytes, (size_t)part * row_bytes, K, x, ldx, o, GQ_R);
        for (int m = 0; m < M; m++)
            for (int i = 0; i < GQ_R; i++) y[m * ldy + r + i * part] = o[m * GQ_R + i];
    }
    for (int64_t r = GQ_R * part; r < rows; r++)
        for (int m = 0; m < M; m++) r1(id, w + (size_t)r * row_bytes, row_bytes, K, x + m * ldx, y + m * ldy + r);
    return 0;
}

int gq_matvec_serial(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x, float *y) {
    if (!args_ok(id, row_bytes, rows, K)) return -1;
    RowsFn r4, r1 = kernels(id, gq_isa(), &r4);
    for (int64_t gi = 0; gi < (rows + GQ_R - 1) / GQ_R; gi++) matvec_rows(id, r1, r4, W, row_bytes, gi, rows, K, x, y);
    return 0;
}
