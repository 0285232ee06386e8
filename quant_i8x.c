// SPDX-License-Identifier: MIT
// quant_i8x.c - Linear over int8 weights (one scale per tensor or per output channel) whose scheme quantises the
// input to int8 per token as well (W8A8: compressed-tensors int-quantized with dynamic "token" input_activations;
// pack-quantized 8-bit weights with them). transformers computes
//   x' = round(clamp(x / sx, -128, 127)) * sx   (compressed_tensors forward_quantize: sx = absmax / 127.5, per token)
//   w' = float(qw) * sw                         (decompressed weight; pack-quantized stores qw + 128)
//   y  = x' . w'^T (+ b)
// and the same real number is float(sum_k qx[k] * qw[k]) * sx * sw (+ b), whose sum is an integer: computed exactly
// (int32 lanes, int64 total), it rounds once when converted to fp32, so y differs from transformers' by fp32
// rounding only and its bits depend on nothing but the codes: not the order, the batch, the threads or the ISA.
// AVX512_VNNI: vpdpbusd multiplies 64 unsigned by 64 signed bytes into 16 int32 lanes per instruction, so
//   DT_I8 (signed weights): the activations enter biased, u = qx + 128:   sum qx qw = sum u qw - 128 sum qw
//                           (sum qw by a second vpdpbusd of all-ones bytes with the same weights)
//   DT_Q8 (stored qw + 128, unsigned): sum qx qw = sum (qw + 128) qx - 128 sum qx   (sum qx once per token)
// AVX2 widens both to 16 bits and uses vpmaddwd (exact: no saturation); portable C sums in int64.
#include "quant_i8x.h"
#include "quant.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IX_LONG 2048 // rows of fewer bytes run four per pass, longer ones eight (as quant.c's QK_LONG)
#define IX_NS 5      // decode: weight streams of dot_vnni_5 (as quant_fp8x.c's FX_NS)
#define IX_BLOCK 16  // batches: weight rows per pass over the activation rows (they stay in L1 / L2)

static inline int64_t kp64(int64_t K) { return (K + 63) & ~(int64_t)63; }

// (K <= 65536: the int32 lanes and their sum cannot overflow, |sum| <= K * 255 * 128)
int i8x_applies(const Tensor *W) {
    return (W->dtype == DT_I8 || W->dtype == DT_Q8) && W->act == ACT_INT8_TOKEN && quant_act_enabled && !W->zero &&
           W->cols > 0 && W->cols <= 65536 && W->group >= W->cols && (W->block_rows == 1 || W->block_rows >= W->rows);
}

// a prepared row: Kp code bytes, then float sx, then int32 sum of the codes
size_t i8x_row_floats(int K) { return (size_t)kp64(K) / 4 + 2; }

static int8_t *ix_q;   // per thread: i8x_prepare's codes of one row (grows, never shrinks)
static size_t ix_qcap; // bytes
#pragma omp threadprivate(ix_q, ix_qcap)

void i8x_prepare(float *dst, int64_t ldq, const float *x, int64_t ldx, int n, const Tensor *W) {
    const int K = (int)W->cols, Kp = (int)kp64(K), bias = W->dtype == DT_I8 ? 128 : 0;
    // rows in parallel for prompts (each row its own codes, scale and place)
#pragma omp parallel for schedule(static) if (n >= 8)
    for (int i = 0; i < n; i++) {
        if (ix_qcap < (size_t)K) {
            free(ix_q);
            ix_q = xmalloc((size_t)K), ix_qcap = (size_t)K;
        }
        float *row = dst + (int64_t)i * ldq;
        uint8_t *c = (uint8_t *)row;
        const float sx = quant_act_int8_codes(ix_q, x + (int64_t)i * ldx, K);
        int32_t sum = 0;
        for (int k = 0; k < K; k++) c[k] = (uint8_t)(ix_q[k] + bias), sum += ix_q[k];
        memset(c + K, bias, (size_t)(Kp - K)); // (code 0; the weights past K are read as zero)
        memcpy(row + Kp / 4, &sx, 4);
        memcpy(row + Kp / 4 + 1, &sum, 4);
    }
}

// ---------------------------------------------------------------------------- kernels: out[j] = sum qx qw, exact

// AVX512_VNNI: NR rows rs bytes apart (rows of ld bytes) against one prepared row (bytes xc; DT_I8: biased
// activations). Prefetch: rs = ld, rows of IX_LONG bytes or more: 512 bytes ahead in each row, or past its end in the
// next pass's row; shorter rows: the next pass's rows as one block; rs > ld: NR decode streams (each row's stream
// goes on into its next row), 512 bytes ahead and 2 KB ahead into L2
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static inline __attribute__((always_inline)) void
dot_vnni(int64_t *out, const uint8_t *xc, const uint8_t *w, int64_t ld, int64_t rs, int K, int is_i8, int32_t xsum,
         const int NR) {
    __m512i acc[8], accw[8];
    const __m512i ones = _mm512_set1_epi8(1);
    _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) acc[j] = accw[j] = _mm512_setzero_si512();
    for (int c = 0; c < K; c += 64) {
        const int n = K - c;
        const __mmask64 m = n >= 64 ? ~0ull : (1ull << n) - 1;
        const __m512i xv = _mm512_loadu_si512((const void *)(xc + c));
        _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) {
            if (rs > ld) {
                _mm_prefetch((const char *)(w + j * rs + c + 512), _MM_HINT_T0);
                _mm_prefetch((const char *)(w + j * rs + c + 2048), _MM_HINT_T1);
            } else if (ld >= IX_LONG) _mm_prefetch((const char *)(w + j * ld + (c + 512 < ld ? c + 512 : c + 512 + (NR - 1) * ld)), _MM_HINT_T0);
            else _mm_prefetch((const char *)(w + NR * ld + (int64_t)c * NR + 64 * j), _MM_HINT_T0);
            const __m512i wv = _mm512_maskz_loadu_epi8(m, w + j * rs + c);
            if (is_i8) { // sum (qx + 128) qw, and sum qw
                acc[j] = _mm512_dpbusd_epi32(acc[j], xv, wv);
                accw[j] = _mm512_dpbusd_epi32(accw[j], ones, wv);
            } else // sum (qw + 128) qx
                acc[j] = _mm512_dpbusd_epi32(acc[j], wv, xv);
        }
    }
    _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) {
        const int64_t d = _mm512_reduce_add_epi32(acc[j]);
        out[j] = is_i8 ? d - 128 * (int64_t)_mm512_reduce_add_epi32(accw[j]) : d - 128 * (int64_t)xsum;
    }
}
#define DOTV(NR)                                                                                                       \
    __attribute__((target("avx512f,avx512bw,avx512vnni"))) static void dot_vnni_##NR(                                 \
        int64_t *out, const uint8_t *xc, const uint8_t *w, int64_t ld, int64_t rs, int K, int is_i8, int32_t xsum) {   \
        dot_vnni(out, xc, w, ld, rs, K, is_i8, xsum, NR);                                                              \
    }
DOTV(1)
DOTV(4)
DOTV(8)
DOTV(5) // (IX_NS streams)
_Static_assert(IX_NS == 5, "dot_vnni_5 runs the IX_NS decode streams");

// AVX2: one row, 32 bytes at a time widened to 16 bits, vpmaddwd pairs into int32 lanes (exact)
__attribute__((target("avx2"))) static int64_t dot_avx2(const uint8_t *xc, const uint8_t *w, int K, int is_i8) {
    __m256i acc = _mm256_setzero_si256();
    const __m256i b128 = _mm256_set1_epi16(128);
    int c = 0;
    for (; c + 16 <= K; c += 16) {
        const __m128i xb = _mm_loadu_si128((const __m128i *)(xc + c)), wb = _mm_loadu_si128((const __m128i *)(w + c));
        // the activations' codes (DT_I8: unbiased again) and the weights' (DT_Q8: qw + 128 less 128)
        const __m256i xv = is_i8 ? _mm256_sub_epi16(_mm256_cvtepu8_epi16(xb), b128) : _mm256_cvtepi8_epi16(xb);
        const __m256i wv = is_i8 ? _mm256_cvtepi8_epi16(wb) : _mm256_sub_epi16(_mm256_cvtepu8_epi16(wb), b128);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, wv));
    }
    int32_t l[8];
    _mm256_storeu_si256((__m256i *)l, acc);
    int64_t s = 0;
    for (int j = 0; j < 8; j++) s += l[j];
    for (; c < K; c++) s += (int64_t)(is_i8 ? (int)xc[c] - 128 : (int8_t)xc[c]) * (is_i8 ? (int8_t)w[c] : (int)w[c] - 128);
    return s;
}

// portable C (and the reference twin's sum): sum qx qw in int64
static int64_t dot_c(const uint8_t *xc, const uint8_t *w, int K, int is_i8) {
    int64_t s = 0;
    for (int k = 0; k < K; k++)
        s += (int64_t)(is_i8 ? (int)xc[k] - 128 : (int8_t)xc[k]) * (is_i8 ? (int8_t)w[k] : (int)w[k] - 128);
    return s;
}

// rows [r0, r1) of W against one prepared row xc: sums[r - r0]
static void dot_rows(int64_t *sums, const uint8_t *xc, const Tensor *W, int r0, int r1, int32_t xsum) {
    const int K = (int)W->cols, is_i8 = W->dtype == DT_I8;
    const uint8_t *w = (const uint8_t *)W->data;
    const int64_t ld = W->ld;
    int r = r0;
    if (cpu.avx512bw && cpu.avx512vnni) {
        for (; r + 8 <= r1 && ld >= IX_LONG; r += 8) dot_vnni_8(sums + (r - r0), xc, w + r * ld, ld, ld, K, is_i8, xsum);
        for (; r + 4 <= r1; r += 4) dot_vnni_4(sums + (r - r0), xc, w + r * ld, ld, ld, K, is_i8, xsum);
        for (; r < r1; r++) dot_vnni_1(sums + (r - r0), xc, w + r * ld, ld, ld, K, is_i8, xsum);
    } else if (cpu.avx2)
        for (; r < r1; r++) sums[r - r0] = dot_avx2(xc, w + r * ld, K, is_i8);
    else
        for (; r < r1; r++) sums[r - r0] = dot_c(xc, w + r * ld, K, is_i8);
}

void i8x_rows(float *y, int64_t ldy, const float *xq, int64_t ldq, const Tensor *W, int n, int r0, int r1) {
    const int Kp = (int)kp64(W->cols);
    int64_t sums[IX_BLOCK];
    if (n == 1 && cpu.avx512bw && cpu.avx512vnni) { // decode: the rows of the task as IX_NS streams, then the rest
        const int part = (r1 - r0) / IX_NS; // stream j: rows [r0 + j part, r0 + (j + 1) part)
        float sx;
        int32_t xsum;
        memcpy(&sx, xq + Kp / 4, 4), memcpy(&xsum, xq + Kp / 4 + 1, 4);
        for (int r = r0; r < r0 + part; r++) {
            dot_vnni_5(sums, (const uint8_t *)xq, (const uint8_t *)W->data + r * W->ld, W->ld, part * W->ld,
                       (int)W->cols, W->dtype == DT_I8, xsum);
            for (int j = 0; j < IX_NS; j++) y[r + j * part] = (float)sums[j] * sx * quant_scale(W, r + j * part, 0);
        }
        r0 += IX_NS * part;
    }
    for (int rb = r0; rb < r1; rb += IX_BLOCK) {
        const int re = rb + IX_BLOCK < r1 ? rb + IX_BLOCK : r1;
        float sw[IX_BLOCK];
        for (int r = rb; r < re; r++) sw[r - rb] = quant_scale(W, r, 0);
        for (int i = 0; i < n; i++) {
            const float *row = xq + (int64_t)i * ldq;
            float sx;
            int32_t xsum;
            memcpy(&sx, row + Kp / 4, 4), memcpy(&xsum, row + Kp / 4 + 1, 4);
            dot_rows(sums, (const uint8_t *)row, W, rb, re, xsum);
            // y = float(sum qx qw) * sx * sw
            for (int r = rb; r < re; r++) y[(int64_t)i * ldy + r] = (float)sums[r - rb] * sx * sw[r - rb];
        }
    }
}

void i8x_linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    const int64_t O = W->rows, K = W->cols;
    int8_t *q = xmalloc((size_t)K);
    for (int i = 0; i < n; i++) {
        // x' = round(clamp(x / sx)): the codes and the scale of the row
        const float sx = quant_act_int8_codes(q, x + i * K, (int)K);
        for (int64_t o = 0; o < O; o++) {
            const uint8_t *row = (const uint8_t *)W->data + o * W->ld;
            int64_t s = 0;
            for (int64_t k = 0; k < K; k++) s += (int64_t)q[k] * (W->dtype == DT_I8 ? (int8_t)row[k] : (int)row[k] - 128);
            float v = (float)s * sx * quant_scale(W, o, 0);
            if (b && b->data) v += tensor_get(b, o);
            y[i * O + o] = v;
        }
    }
    free(q);
}
