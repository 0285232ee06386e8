// SPDX-License-Identifier: MIT
// ops_bf16.c - the bf16 compute mode (ops_bf16.h): Linear with bf16-rounded input rows and fp32 accumulation, the
// numerics of a PyTorch model in torch.bfloat16 (mkldnn / oneDNN bf16 matmul: vdpbf16ps). Three paths, one chain:
// - AVX512_BF16: vdpbf16ps on register tiles (MR input rows x NR weight rows, 16 fp32 lanes per output);
// - AVX2 (and AVX-512 CPUs without BF16): the instruction's two FMAs per lane in its order (odd pair first), run
//   with MXCSR.DAZ|FTZ set, which is what VDPBF16PS does ("FP32 FMA with DAZ in, FTZ out and RNE rounding");
// - portable C: the same with fmaf and explicit flushes.
// Every output ends with the 16-lane tree of ops.c (ops_tree16), so all three give identical bits (tests/test_bf16.c
// checks them against each other, against the instruction on scalars incl. denormals, and against the naive twin).
// The summation order of an output depends only on K: rows are batch-invariant as in the fp32 kernels.
#include "ops_bf16.h"
#include "ops_amx.h"
#include "ops.h"
#include "tree16.h"

#include <float.h>
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ops_compute = COMPUTE_F32;

#define BC_MR 4   // input rows per tile (the callers' LT_MR)
#define BC_NR 5   // weight rows per tile (AVX512_BF16: 4 x 5 accumulators + 4 inputs + 1 weight of 32 registers)
#ifndef BC_PF_HINT
#define BC_PF_HINT _MM_HINT_T1 // the next block's operand: into L2 (bf16c_block)
#endif
#define BC_CSR_DAZ_FTZ 0x8040u // MXCSR: flush-to-zero (bit 15) | denormals-are-zero (bit 6)

enum { PATH_DP, PATH_AVX2, PATH_PORTABLE };

// the path the CPU features select (cpu: ops_init)
static int bc_path(void) { return cpu.avx512bf16 ? PATH_DP : cpu.avx2 ? PATH_AVX2 : PATH_PORTABLE; }
// the dense Linears on AMX tiles (opt-in, untested: ops_amx.h); inputs prepared as PATH_DP's (ops_init sets
// cpu.amx_bf16 only with AVX512_BF16)
static int bc_amx(void) { return cpu.amx_bf16 && bc_path() == PATH_DP; }

int bf16c_rows_per_block(int dflt) { return bc_amx() ? 32 : dflt; }

// the mode by name (ops_bf16.h)
int ops_set_compute(const char *name) {
    if (!strcmp(name, "f32") || !strcmp(name, "fp32")) ops_compute = COMPUTE_F32;
    else if (!strcmp(name, "bf16")) ops_compute = COMPUTE_BF16;
    else return glm_err("--compute: '%s' is not f32 or bf16", name);
    return 0;
}

const char *ops_compute_name(void) { return ops_compute == COMPUTE_BF16 ? "bf16" : "f32"; }

// the path the CPU features give the bf16 mode
const char *ops_compute_path(void) {
    if (ops_compute != COMPUTE_BF16) return "fp32";
    static const char *names[] = {"avx512bf16", "avx2-emulation", "portable-emulation"};
    return bc_amx() ? (cpu.amx_bf16 == 2 ? "amx-bf16-emulated" : "amx-bf16-untested") : names[bc_path()];
}

static inline int64_t bc_pad32(int64_t k) { return (k + 31) & ~(int64_t)31; }

// ---------------------------------------------------------------------------- scalar chain

// DAZ on an input: a denormal becomes a zero of its sign
static inline float flush(float v) { return fabsf(v) < FLT_MIN ? copysignf(0.0f, v) : v; }

// c + a * b (inputs not denormal) rounded to nearest even with FTZ as x86 does it: a result is tiny (flushed to a
// zero of its sign) when the exact value rounded to 24 bits with an unbounded exponent is below FLT_MIN ("after
// rounding"). fmaf rounds to the denormal grid (ulp u = 2^-149) instead, so |r| == FLT_MIN is ambiguous: tiny iff the
// exact value is more than u/4 below FLT_MIN (a tie rounds up to FLT_MIN: even). There every operand is below 2^-96,
// so c - r (+- u/4) is exact in double, a * b is exact in double (two 8-bit significands), and the one rounded double
// sum keeps the sign of the exact one.
static inline float fma_ftz(float a, float b, float c) {
    const float r = fmaf(a, b, c);
    if (fabsf(r) < FLT_MIN) return copysignf(0.0f, r);
    if (fabsf(r) == FLT_MIN) {
        const double q = 0x1p-151; // u / 4
        const double d = ((double)c - (double)r + (r > 0 ? q : -q)) + (double)a * (double)b;
        if (r > 0 ? d < 0 : d > 0) return copysignf(0.0f, r);
    }
    return r;
}

// make_fp32(bf16)
static inline float bfv(uint16_t h) { return bf16_to_f32(h); }

float bf16c_fma_step(float acc, uint16_t a, uint16_t b) { return fma_ftz(flush(bfv(a)), flush(bfv(b)), flush(acc)); }

// one lane of vdpbf16ps in C (Intel's pseudo-code, x86 DAZ / FTZ)
float bf16c_pair_step(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1) {
    // srcdest.fp32[i] += make_fp32(src1.bf16[2*i+1]) * make_fp32(src2.bf16[2*i+1])
    acc = fma_ftz(flush(bfv(a1)), flush(bfv(b1)), flush(acc));
    // srcdest.fp32[i] += make_fp32(src1.bf16[2*i+0]) * make_fp32(src2.bf16[2*i+0])
    return fma_ftz(flush(bfv(a0)), flush(bfv(b0)), acc);
}

__attribute__((target("avx512f,avx512bf16"))) static float pair_step_dp(float acc, uint16_t a0, uint16_t a1,
                                                                         uint16_t b0, uint16_t b1) {
    const __m512i a = _mm512_set1_epi32((int)((uint32_t)a1 << 16 | a0)), b = _mm512_set1_epi32((int)((uint32_t)b1 << 16 | b0));
    return _mm512_cvtss_f32(_mm512_dpbf16_ps(_mm512_set1_ps(acc), (__m512bh)a, (__m512bh)b));
}

// the instruction where the CPU has it, else the emulation
float bf16c_pair_step_hw(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1) {
    return cpu.avx512bf16 ? pair_step_dp(acc, a0, a1, b0, b1) : bf16c_pair_step(acc, a0, a1, b0, b1);
}

// ---------------------------------------------------------------------------- prepared input rows
// PATH_DP: the bf16 row itself, [Kp] uint16 (Kp / 2 floats of the buffer), zero-padded.
// PATH_AVX2 / PATH_PORTABLE: fp32 [Kp] in pair order, the bf16 values widened: in chunk c, xs[c + j] = x[c + 2j] and
// xs[c + 16 + j] = x[c + 2j + 1] (j < 16), so one 32-byte load of weights splits into even / odd lanes with no
// shuffle; the portable path stores them with denormals already flushed (DAZ).

// (PATH_DP: 64 bytes more than the row, so rows of 4 KB multiples (K = 4096, 12288) do not all fall into the same
// L1 sets: the 4 input rows of a tile then share no set with each other; measured +10-15 % at K = 4096)
size_t bf16c_row_floats(int K) { return (size_t)(bc_path() == PATH_DP ? bc_pad32(K) / 2 + 16 : bc_pad32(K)); }

// x[K] rounded with f32_to_bf16 into dst[pad32(K)] (zero-padded), 16 at a time
__attribute__((target("avx512f,avx512bw"))) static void prepare_dp512(uint16_t *dst, const float *x, int K) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), qnan = _mm512_set1_epi32(0x7fc0);
    const int Kp = (int)bc_pad32(K);
    for (int k = 0; k < Kp; k += 16) {
        const int n = K - k;
        const __mmask16 m = n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        const __m512i u = _mm512_castps_si512(v);
        // (U32 + ((U32 >> 16) & 1) + 0x7FFF) >> 16; NaN -> 0x7fc0
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, bias), _mm512_and_si512(_mm512_srli_epi32(u, 16), one)), 16);
        r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), qnan);
        _mm256_storeu_si256((__m256i *)(dst + k), _mm512_cvtepi32_epi16(r));
    }
}

// one input row in the layout of the current path
void bf16c_prepare_row(float *dst, const float *x, int K) {
    const int path = bc_path(), Kp = (int)bc_pad32(K);
    if (path == PATH_DP) {
        prepare_dp512((uint16_t *)dst, x, K);
        return;
    }
    for (int c = 0; c < Kp; c += 32)
        for (int j = 0; j < 16; j++) {
            const int k = c + 2 * j;
            float e = k < K ? bfv(f32_to_bf16(x[k])) : 0.0f, o = k + 1 < K ? bfv(f32_to_bf16(x[k + 1])) : 0.0f;
            if (path == PATH_PORTABLE) e = flush(e), o = flush(o);
            dst[c + j] = e, dst[c + 16 + j] = o;
        }
}

// ---------------------------------------------------------------------------- AVX512_BF16 tiles

// ops_tree16 on a vector's lanes (s[j] = a[j] + a[j+8], then + 4, + 2, + 1: the same additions in the same order)

// one step of the transposed trees at the end of tile_dp: shuffle(a, b, lo) + shuffle(a, b, hi), lo / hi picking
// the two halves that each output lane adds
#define T4X_F32X4(a, b, lo, hi) _mm512_add_ps(_mm512_shuffle_f32x4(a, b, lo), _mm512_shuffle_f32x4(a, b, hi))
#define T4X_PS(a, b, lo, hi) _mm512_add_ps(_mm512_shuffle_ps(a, b, lo), _mm512_shuffle_ps(a, b, hi))

// MR (<= 4) input rows (bf16, stride ldq) x NR (<= 5) bf16 weight rows: one vdpbf16ps chain per output
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static inline __attribute__((always_inline)) void
tile_dp(float *y, int64_t ldy, const uint16_t *xq, int64_t ldq, const uint16_t *w, int64_t ldw, int K, const char *pf,
        int MR, int NR) {
    __m512 acc[BC_MR][BC_NR];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    const int nfull = K & ~31;
    for (int c = 0; c < nfull; c += 32) {
        __m512i xv[BC_MR];
        _mm_prefetch(pf + 2 * c, BC_PF_HINT); // (one line of the next block's cold operand a chunk: bf16c_block)
#pragma GCC unroll 10
        for (int i = 0; i < MR; i++) xv[i] = _mm512_loadu_si512((const void *)(xq + i * ldq + c));
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const __m512i wv = _mm512_loadu_si512((const void *)(w + j * ldw + c));
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv, (__m512bh)xv[i]);
        }
    }
    if (nfull < K) { // the last chunk: weights masked to zero past K (the prepared rows are zero-padded)
        const __mmask32 m = (__mmask32)((1ull << (K - nfull)) - 1);
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const __m512i wv = _mm512_maskz_loadu_epi16(m, w + j * ldw + nfull);
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++)
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv,
                                             (__m512bh)_mm512_loadu_si512((const void *)(xq + i * ldq + nfull)));
        }
    }
    if (MR == 4 && NR >= 4) {
        // full rows: tree16_512 of 16 accumulators at once, the same additions in the same order (an IEEE sum does
        // not depend on its operands' order), acc[i][p] (p < 4) -> lane 4i + p of t. Step 1 adds the 256-bit halves
        // of two accumulators (a[j] + a[j+8]), step 2 the 128-bit halves of what is left (+ 4), steps 3 and 4 the
        // pairs inside 128-bit blocks (+ 2, + 1): 15 additions and 30 shuffles instead of 16 x (4 and 4)
        __m512 u[4];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            // [acc[0][p].s8 | acc[1][p].s8], [acc[2][p].s8 | acc[3][p].s8] (s8[j] = v[j] + v[j + 8])
            const __m512 s0 = T4X_F32X4(acc[0][p], acc[1][p], _MM_SHUFFLE(1, 0, 1, 0), _MM_SHUFFLE(3, 2, 3, 2));
            const __m512 s1 = T4X_F32X4(acc[2][p], acc[3][p], _MM_SHUFFLE(1, 0, 1, 0), _MM_SHUFFLE(3, 2, 3, 2));
            // 128-bit block i of u[p]: acc[i][p].s4 (s4[j] = s8[j] + s8[j + 4])
            u[p] = T4X_F32X4(s0, s1, _MM_SHUFFLE(2, 0, 2, 0), _MM_SHUFFLE(3, 1, 3, 1));
        }
        // block i: [u0.s2[0], u0.s2[1], u1.s2[0], u1.s2[1]] (s2[j] = s4[j] + s4[j + 2]), the same for u2, u3
        const __m512 v0 = T4X_PS(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0), _MM_SHUFFLE(3, 2, 3, 2));
        const __m512 v1 = T4X_PS(u[2], u[3], _MM_SHUFFLE(1, 0, 1, 0), _MM_SHUFFLE(3, 2, 3, 2));
        // block i: the sums s2[0] + s2[1] of u0, u1, u2, u3
        const __m512 t = T4X_PS(v0, v1, _MM_SHUFFLE(2, 0, 2, 0), _MM_SHUFFLE(3, 1, 3, 1));
        _mm_storeu_ps(y, _mm512_castps512_ps128(t));
        _mm_storeu_ps(y + ldy, _mm512_extractf32x4_ps(t, 1));
        _mm_storeu_ps(y + 2 * ldy, _mm512_extractf32x4_ps(t, 2));
        _mm_storeu_ps(y + 3 * ldy, _mm512_extractf32x4_ps(t, 3));
        if (NR == 5) {
            // the fifth column: the same steps, lane 4i of t1 = tree of acc[i][4]
            const __m512 s0 = T4X_F32X4(acc[0][4], acc[1][4], _MM_SHUFFLE(1, 0, 1, 0), _MM_SHUFFLE(3, 2, 3, 2));
            const __m512 s1 = T4X_F32X4(acc[2][4], acc[3][4], _MM_SHUFFLE(1, 0, 1, 0), _MM_SHUFFLE(3, 2, 3, 2));
            const __m512 u4 = T4X_F32X4(s0, s1, _MM_SHUFFLE(2, 0, 2, 0), _MM_SHUFFLE(3, 1, 3, 1));
            const __m512 v4 = T4X_PS(u4, u4, _MM_SHUFFLE(1, 0, 1, 0), _MM_SHUFFLE(3, 2, 3, 2));
            const __m512 t1 = T4X_PS(v4, v4, _MM_SHUFFLE(2, 0, 2, 0), _MM_SHUFFLE(3, 1, 3, 1));
            y[4] = _mm512_cvtss_f32(t1);
            y[ldy + 4] = _mm_cvtss_f32(_mm512_extractf32x4_ps(t1, 1));
            y[2 * ldy + 4] = _mm_cvtss_f32(_mm512_extractf32x4_ps(t1, 2));
            y[3 * ldy + 4] = _mm_cvtss_f32(_mm512_extractf32x4_ps(t1, 3));
        }
        return;
    }
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) y[i * ldy + j] = tree16_512(acc[i][j]);
}

typedef void (*BcTileFn)(float *, int64_t, const uint16_t *, int64_t, const uint16_t *, int64_t, int, const char *);
#define TDP(MR, NR)                                                                                                    \
    __attribute__((target("avx512f,avx512bw,avx512bf16"))) static void tile_dp_##MR##_##NR(                            \
        float *y, int64_t ldy, const uint16_t *xq, int64_t ldq, const uint16_t *w, int64_t ldw, int K, const char *pf) { \
        tile_dp(y, ldy, xq, ldq, w, ldw, K, pf, MR, NR);                                                               \
    }
#define TDP_ROW(MR) TDP(MR, 1) TDP(MR, 2) TDP(MR, 3) TDP(MR, 4) TDP(MR, 5)
TDP_ROW(1)
TDP_ROW(2)
TDP_ROW(3)
TDP_ROW(4)
#define TDPR(MR) {tile_dp_##MR##_1, tile_dp_##MR##_2, tile_dp_##MR##_3, tile_dp_##MR##_4, tile_dp_##MR##_5}
static const BcTileFn tiles_dp[BC_MR][BC_NR] = {TDPR(1), TDPR(2), TDPR(3), TDPR(4)};

// ---------------------------------------------------------------------------- AVX2 emulation

// MR (<= 2) input rows (split layout, stride ldq floats) x NR (<= 2) bf16 weight rows: per lane and chunk the FMA of
// the odd pair, then of the even pair, under MXCSR.DAZ|FTZ (restored before the tree, which runs with denormals)
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void
tile_emu_avx2(float *y, int64_t ldy, const float *xs, int64_t ldq, const uint16_t *w, int64_t ldw, int K, int MR,
              int NR) {
    const __m256i mhi = _mm256_set1_epi32((int)0xffff0000u);
    const int nfull = K & ~31, Kp = (int)bc_pad32(K);
    uint16_t tail[2][32];
    for (int j = 0; j < NR && nfull < K; j++) { // zero-padded copy of the last chunk
        memset(tail[j], 0, sizeof tail[j]);
        memcpy(tail[j], w + j * ldw + nfull, (size_t)(K - nfull) * 2);
    }
    __m256 acc[2][2][2]; // [row][weight row][half: lanes 0-7, 8-15]
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) acc[i][j][0] = acc[i][j][1] = _mm256_setzero_ps();
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | BC_CSR_DAZ_FTZ);
    for (int c = 0; c < Kp; c += 32)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const uint16_t *wr = c < nfull ? w + j * ldw + c : tail[j];
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const __m256i a = _mm256_loadu_si256((const __m256i *)(wr + 16 * h));
                const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
                const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(a, mhi));
#pragma GCC unroll 10
                for (int i = 0; i < MR; i++) {
                    const float *x = xs + i * ldq + c + 8 * h;
                    acc[i][j][h] = _mm256_fmadd_ps(wo, _mm256_loadu_ps(x + 16), acc[i][j][h]);
                    acc[i][j][h] = _mm256_fmadd_ps(we, _mm256_loadu_ps(x), acc[i][j][h]);
                }
            }
        }
    _mm_setcsr(csr);
    float lanes[16];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            _mm256_storeu_ps(lanes, acc[i][j][0]);
            _mm256_storeu_ps(lanes + 8, acc[i][j][1]);
            y[i * ldy + j] = ops_tree16(lanes);
        }
}

typedef void (*BcEmuFn)(float *, int64_t, const float *, int64_t, const uint16_t *, int64_t, int);
#define TEMU(MR, NR)                                                                                                   \
    __attribute__((target("avx2,fma"))) static void tile_emu_##MR##_##NR(float *y, int64_t ldy, const float *xs,       \
                                                                         int64_t ldq, const uint16_t *w, int64_t ldw,  \
                                                                         int K) {                                      \
        tile_emu_avx2(y, ldy, xs, ldq, w, ldw, K, MR, NR);                                                             \
    }
TEMU(1, 1)
TEMU(1, 2)
TEMU(2, 1)
TEMU(2, 2)
static const BcEmuFn tiles_emu[2][2] = {{tile_emu_1_1, tile_emu_1_2}, {tile_emu_2_1, tile_emu_2_2}};

// ---------------------------------------------------------------------------- portable emulation

// one output: the split-layout row xs (denormals flushed) . the bf16 weight row w, the chain of bf16c_pair_step
static float dot_emu_scalar(const float *xs, const uint16_t *w, int K) {
    float acc[16] = {0};
    for (int c = 0; c < K; c += 32)
        for (int j = 0; j < 16; j++) {
            const int k = c + 2 * j;
            uint16_t h0 = 0, h1 = 0;
            if (k < K) memcpy(&h0, w + k, 2);
            if (k + 1 < K) memcpy(&h1, w + k + 1, 2);
            acc[j] = fma_ftz(flush(bfv(h1)), xs[c + 16 + j], acc[j]);
            acc[j] = fma_ftz(flush(bfv(h0)), xs[c + j], acc[j]);
        }
    return ops_tree16(acc);
}

// ---------------------------------------------------------------------------- dispatch

static uint16_t *bc_wbuf;  // per-thread bf16 copy of f16 / f32 weight rows (rounded as they are read)
static size_t bc_wbuf_len; // elements
static float *bc_row;      // per-thread fp32 copy of one such row
static size_t bc_row_len;  // floats
#pragma omp threadprivate(bc_wbuf, bc_wbuf_len, bc_row, bc_row_len)

// rows [r0, r1) of W as bf16 (the mapping itself for bf16 weights; a thread buffer for f16 / f32: each row widened
// to fp32, then rounded with f32_to_bf16, the same bits as a checkpoint converted to bf16 once), row r0 first
static const uint16_t *weight_rows_bf16(const Tensor *W, int r0, int r1) {
    const int64_t K = W->cols;
    if (W->dtype == DT_BF16) return (const uint16_t *)W->data + (int64_t)r0 * K;
    const size_t n = (size_t)(r1 - r0) * (size_t)K;
    if (bc_wbuf_len < n || bc_row_len < (size_t)K + 32) {
        free(bc_wbuf), free(bc_row);
        bc_wbuf = malloc(n * sizeof(uint16_t) + 64), bc_row = malloc(((size_t)K + 32) * sizeof(float));
        if (!bc_wbuf || !bc_row) glm_die(EXIT_INPUT, "out of memory (bf16 weight rows)");
        bc_wbuf_len = n, bc_row_len = (size_t)K + 32;
    }
    for (int r = r0; r < r1; r++) {
        uint16_t *dst = bc_wbuf + (size_t)(r - r0) * (size_t)K;
        tensor_row_f32(bc_row, W, r);
        if (cpu.avx512bw) { // (writes up to the next multiple of 32: into the next row, rewritten next, or the slack)
            prepare_dp512(dst, bc_row, (int)K);
            continue;
        }
        for (int64_t k = 0; k < K; k++) dst[k] = f32_to_bf16(bc_row[k]);
    }
    return bc_wbuf;
}

// (one pass over K per tile: blocking k so that a block's rows stay in L1, with the lanes saved between blocks, was
// measured slower: README "Performance")
// the block over nr bf16 rows given as they are (row r at w0 + r * K; y at output column 0), prefetching pf
static void block_rows(float *y, int64_t ldy, const float *xq, int64_t ldq, const uint16_t *w0, int K, int m, int nr,
                       const void *pf, size_t pf_bytes, int amx) {
    const int path = bc_path();
    if (amx && bc_amx()) (cpu.amx_bf16 == 2 ? amx_block_emu : amx_block)(y, ldy, (const uint16_t *)xq, 2 * ldq, w0, K, m, nr);
    else if (path == PATH_DP) {
        const uint16_t *x16 = (const uint16_t *)xq;
        const int64_t ld16 = 2 * ldq, tbytes = (int64_t)(K / 32) * 64; // lines a tile prefetches: one a full chunk
        size_t off = 0; // of the next tile's lines in pf
        for (int i = 0; i < m; i += BC_MR)
            for (int r = 0; r < nr; r += BC_NR, off += (size_t)tbytes) {
                const int mi = m - i < BC_MR ? m - i : BC_MR, nb = nr - r < BC_NR ? nr - r : BC_NR;
                // (past the range: the tile's own first weight row, already on its way)
                const char *tp = pf && off + (size_t)tbytes <= pf_bytes ? (const char *)pf + off
                                                                         : (const char *)(w0 + (int64_t)r * K);
                tiles_dp[mi - 1][nb - 1](y + i * ldy + r, ldy, x16 + i * ld16, ld16, w0 + (int64_t)r * K, K, K, tp);
            }
    } else if (path == PATH_AVX2) {
        for (int i = 0; i < m; i += 2)
            for (int r = 0; r < nr; r += 2) {
                const int mi = m - i < 2 ? m - i : 2, nb = nr - r < 2 ? nr - r : 2;
                tiles_emu[mi - 1][nb - 1](y + i * ldy + r, ldy, xq + i * ldq, ldq, w0 + (int64_t)r * K, K, K);
            }
    } else
        for (int r = 0; r < nr; r++)
            for (int i = 0; i < m; i++) y[i * ldy + r] = dot_emu_scalar(xq + i * ldq, w0 + (int64_t)r * K, K);
}

// one block of a Linear task: 4 x 5 tiles (AVX512_BF16), 2 x 2 (AVX2), single outputs (portable), or AMX tiles
// (GLM4V_AMX: ops_amx.h)
void bf16c_block(float *y, int64_t ldy, const float *xq, int64_t ldq, const Tensor *W, int m, int r0, int r1,
                 const void *pf, size_t pf_bytes) {
    block_rows(y + r0, ldy, xq, ldq, weight_rows_bf16(W, r0, r1), (int)W->cols, m, r1 - r0, pf, pf_bytes, 1);
}

void bf16c_block_rows(float *y, int64_t ldy, const float *xq, int64_t ldq, const uint16_t *w, int K, int m, int nr) {
    block_rows(y, ldy, xq, ldq, w, K, m, nr, NULL, 0, 0); // (FP8 x FP8 prompts: the chain of its decode kernel)
}

// reference: Intel's pseudo-code one lane at a time on the zero-padded bf16 rows, then the tree
void linear_bf16c_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    const int64_t O = W->rows, K = W->cols, Kp = bc_pad32(K);
    uint16_t *xb = xmalloc((size_t)Kp * 2), *wb = xmalloc((size_t)Kp * 2);
    for (int i = 0; i < n; i++) {
        // the input rounded as torch's x.to(torch.bfloat16)
        for (int64_t k = 0; k < Kp; k++) xb[k] = k < K ? f32_to_bf16(x[i * K + k]) : 0;
        for (int64_t o = 0; o < O; o++) {
            // the weight as bf16 (exact for bf16 weights; f16 / f32 rounded as weight.to(torch.bfloat16))
            for (int64_t k = 0; k < Kp; k++) wb[k] = k < K ? f32_to_bf16(tensor_get(W, o * K + k)) : 0;
            float acc[16] = {0};
            for (int64_t c = 0; c < Kp; c += 32)
                for (int j = 0; j < 16; j++)
                    acc[j] = bf16c_pair_step(acc[j], wb[c + 2 * j], wb[c + 2 * j + 1], xb[c + 2 * j], xb[c + 2 * j + 1]);
            float v = ops_tree16(acc);
            if (b && b->data) v += tensor_get(b, o);
            y[i * O + o] = v;
        }
    }
    free(xb);
    free(wb);
}

// ---------------------------------------------------------------------------- attention products (pairs)

static inline uint32_t pair_of(float lo, float hi) { return (uint32_t)f32_to_bf16(lo) | (uint32_t)f32_to_bf16(hi) << 16; }

// 16 floats rounded with f32_to_bf16, one per 32-bit lane (low half)
__attribute__((target("avx512f,avx512bw"))) static inline __m512i round16v_512(__m512 v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                                         _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))), 16);
    return _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
}

// the first `valid` of 16 floats (the rest zero) rounded
__attribute__((target("avx512f,avx512bw"))) static inline __m512i round16_512(const float *x, int valid) {
    const __mmask16 m = valid >= 16 ? 0xffff : valid <= 0 ? 0 : (__mmask16)((1u << valid) - 1);
    return round16v_512(_mm512_maskz_loadu_ps(m, x));
}

// round16_512 of the 16 floats x[j] * cs[j] (each product rounded to fp32 first, as a stored x * cs would be)
__attribute__((target("avx512f,avx512bw"))) static inline __m512i round16_scaled_512(const float *x, const float *cs,
                                                                                      int valid) {
    const __mmask16 m = valid >= 16 ? 0xffff : valid <= 0 ? 0 : (__mmask16)((1u << valid) - 1);
    return round16v_512(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x), _mm512_maskz_loadu_ps(m, cs)));
}

__attribute__((target("avx512f,avx512bw"))) static void pack_rows_512(uint32_t *dst, int64_t ldd, const float *src,
                                                                       int64_t lds, int rows, int n, const float *cs) {
    for (int kp = 0; kp < (rows + 1) / 2; kp++) {
        const float *a = src + (int64_t)(2 * kp) * lds;
        const int odd = 2 * kp + 1 < rows;
        uint32_t *d = dst + (int64_t)kp * ldd;
        for (int j = 0; j < n; j += 16) {
            const int valid = n - j;
            __m512i lo, hi = _mm512_setzero_si512();
            if (cs) {
                lo = round16_scaled_512(a + j, cs + j, valid);
                if (odd) hi = round16_scaled_512(a + lds + j, cs + j, valid);
            } else {
                lo = round16_512(a + j, valid);
                if (odd) hi = round16_512(a + lds + j, valid);
            }
            _mm512_mask_storeu_epi32(d + j, valid >= 16 ? 0xffff : (__mmask16)((1u << valid) - 1),
                                     _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

// pairs of rows, optionally scaled per column (AVX-512 or scalar: the same rounding)
void pack_pairs_rows(uint32_t *dst, int64_t ldd, const float *src, int64_t lds, int rows, int n, const float *cs) {
    if (cpu.avx512bw) {
        pack_rows_512(dst, ldd, src, lds, rows, n, cs);
        return;
    }
    for (int kp = 0; kp < (rows + 1) / 2; kp++) {
        const float *a = src + (int64_t)(2 * kp) * lds, *b = 2 * kp + 1 < rows ? a + lds : NULL;
        uint32_t *d = dst + (int64_t)kp * ldd;
        for (int j = 0; j < n; j++) {
            const float c = cs ? cs[j] : 1.0f; // (x * 1 is x: the unscaled bits)
            d[j] = pair_of(a[j] * c, b ? b[j] * c : 0.0f);
        }
    }
}

// pairs of columns: a row's bf16 elements in order
void pack_pairs_cols(uint32_t *dst, int64_t ldd, const float *src, int64_t lds, int rows, int cols) {
    if (cpu.avx512bw && cols % 32 == 0) { // a row's pairs are its bf16 elements in order (prepare_dp512, no padding)
        for (int r = 0; r < rows; r++) prepare_dp512((uint16_t *)(dst + (int64_t)r * ldd), src + (int64_t)r * lds, cols);
        return;
    }
    for (int r = 0; r < rows; r++) {
        const float *a = src + (int64_t)r * lds;
        uint32_t *d = dst + (int64_t)r * ldd;
        for (int kp = 0; kp < cols / 2; kp++) d[kp] = pair_of(a[2 * kp], a[2 * kp + 1]);
        if (cols % 2) d[cols / 2] = pair_of(a[cols - 1], 0.0f);
    }
}

// reference: bf16c_pair_step one output at a time
void gemm_pairs_naive(float *C, int64_t ldc, const uint32_t *A, int64_t ars, int64_t acs, const uint32_t *B,
                      int64_t ldb, int M, int N, int Kp, int accumulate) {
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            float acc = accumulate ? C[(int64_t)i * ldc + n] : 0.0f;
            for (int k = 0; k < Kp; k++) {
                const uint32_t a = A[i * ars + k * acs], b = B[(int64_t)k * ldb + n];
                acc = bf16c_pair_step(acc, (uint16_t)a, (uint16_t)(a >> 16), (uint16_t)b, (uint16_t)(b >> 16));
            }
            C[(int64_t)i * ldc + n] = acc;
        }
}

// AVX512_BF16: MR rows x NV vectors of 16 columns (the last masked by lastm), one vdpbf16ps per (row, vector, kp)
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static inline __attribute__((always_inline)) void
gp_tile_dp(float *C, int64_t ldc, const uint32_t *A, int64_t ars, int64_t acs, const uint32_t *B, int64_t ldb, int Kp,
           int accumulate, int MR, int NV, __mmask16 lastm) {
    __m512 c[8][4];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int v = 0; v < NV; v++)
            c[i][v] = accumulate ? _mm512_maskz_loadu_ps(v == NV - 1 ? lastm : 0xffff, C + i * ldc + 16 * v)
                                 : _mm512_setzero_ps();
    for (int k = 0; k < Kp; k++) {
        __m512i b[4];
#pragma GCC unroll 10
        for (int v = 0; v < NV; v++) b[v] = _mm512_maskz_loadu_epi32(v == NV - 1 ? lastm : 0xffff, B + k * ldb + 16 * v);
#pragma GCC unroll 10
        for (int i = 0; i < MR; i++) {
            const __m512i a = _mm512_set1_epi32((int)A[i * ars + k * acs]);
#pragma GCC unroll 10
            for (int v = 0; v < NV; v++) c[i][v] = _mm512_dpbf16_ps(c[i][v], (__m512bh)a, (__m512bh)b[v]);
        }
    }
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(C + i * ldc + 16 * v, v == NV - 1 ? lastm : 0xffff, c[i][v]);
}

typedef void (*GpFn)(float *, int64_t, const uint32_t *, int64_t, int64_t, const uint32_t *, int64_t, int, int,
                     __mmask16);
#define GPT(MR, NV)                                                                                                    \
    __attribute__((target("avx512f,avx512bw,avx512bf16"))) static void gp_dp_##MR##_##NV(                              \
        float *C, int64_t ldc, const uint32_t *A, int64_t ars, int64_t acs, const uint32_t *B, int64_t ldb, int Kp,    \
        int acc, __mmask16 m) {                                                                                        \
        gp_tile_dp(C, ldc, A, ars, acs, B, ldb, Kp, acc, MR, NV, m);                                                   \
    }
#define GPT_COL(NV) GPT(1, NV) GPT(2, NV) GPT(3, NV) GPT(4, NV) GPT(5, NV) GPT(6, NV) GPT(7, NV) GPT(8, NV)
GPT_COL(1)
GPT_COL(2)
GPT_COL(3)
#define GPCOL(NV) {gp_dp_1_##NV, gp_dp_2_##NV, gp_dp_3_##NV, gp_dp_4_##NV, gp_dp_5_##NV, gp_dp_6_##NV, gp_dp_7_##NV, \
    gp_dp_8_##NV}
static const GpFn gp_dp[3][8] = {GPCOL(1), GPCOL(2), GPCOL(3)};
// 64 columns (4 vectors) x up to 6 rows: 24 accumulators, 4 loads and 6 broadcasts per 24 vdpbf16ps (the 8 x 3 tiles:
// 3 and 8), for N a multiple of 64 (attention's query blocks and head_dim 128)
GPT(1, 4) GPT(2, 4) GPT(3, 4) GPT(4, 4) GPT(5, 4) GPT(6, 4)
static const GpFn gp_dp4[6] = {gp_dp_1_4, gp_dp_2_4, gp_dp_3_4, gp_dp_4_4, gp_dp_5_4, gp_dp_6_4};

// AVX2 emulation: up to 4 rows x 16 columns (two 8-lane halves), the odd then the even FMA under MXCSR.DAZ|FTZ
__attribute__((target("avx2,fma"))) static void gp_tile_avx2(float *C, int64_t ldc, const uint32_t *A, int64_t ars,
                                                             int64_t acs, const uint32_t *B, int64_t ldb, int Kp,
                                                             int accumulate, int MR, int ncol) {
    __m256 c[4][2];
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), mhi = _mm256_set1_epi32((int)0xffff0000u);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncol), idx);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncol - 8), idx);
    for (int i = 0; i < MR; i++) {
        c[i][0] = accumulate ? _mm256_maskload_ps(C + i * ldc, m0) : _mm256_setzero_ps();
        c[i][1] = accumulate ? _mm256_maskload_ps(C + i * ldc + 8, m1) : _mm256_setzero_ps();
    }
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | BC_CSR_DAZ_FTZ);
    for (int k = 0; k < Kp; k++) {
        const int *b = (const int *)(B + k * ldb);
        const __m256i b0 = _mm256_maskload_epi32(b, m0), b1 = _mm256_maskload_epi32(b + 8, m1);
        const __m256 be0 = _mm256_castsi256_ps(_mm256_slli_epi32(b0, 16)), bo0 = _mm256_castsi256_ps(_mm256_and_si256(b0, mhi));
        const __m256 be1 = _mm256_castsi256_ps(_mm256_slli_epi32(b1, 16)), bo1 = _mm256_castsi256_ps(_mm256_and_si256(b1, mhi));
        for (int i = 0; i < MR; i++) {
            const __m256i a = _mm256_set1_epi32((int)A[i * ars + k * acs]);
            const __m256 ae = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), ao = _mm256_castsi256_ps(_mm256_and_si256(a, mhi));
            c[i][0] = _mm256_fmadd_ps(ae, be0, _mm256_fmadd_ps(ao, bo0, c[i][0]));
            c[i][1] = _mm256_fmadd_ps(ae, be1, _mm256_fmadd_ps(ao, bo1, c[i][1]));
        }
    }
    _mm_setcsr(csr);
    for (int i = 0; i < MR; i++) {
        _mm256_maskstore_ps(C + i * ldc, m0, c[i][0]);
        _mm256_maskstore_ps(C + i * ldc + 8, m1, c[i][1]);
    }
}

// dispatch: 6 x 64 vdpbf16ps tiles (N a multiple of 64) or 8 x 48, 4 x 16 AVX2 tiles, or the scalar chain
void gemm_pairs(float *C, int64_t ldc, const uint32_t *A, int64_t ars, int64_t acs, const uint32_t *B, int64_t ldb,
                int M, int N, int Kp, int accumulate) {
    if (M <= 0 || N <= 0) return;
    const int path = bc_path();
    if (path == PATH_DP && N % 64 == 0) {
        for (int j0 = 0; j0 < N; j0 += 64)
            for (int i0 = 0; i0 < M; i0 += 6) {
                const int m = M - i0 < 6 ? M - i0 : 6;
                gp_dp4[m - 1](C + i0 * ldc + j0, ldc, A + i0 * ars, ars, acs, B + j0, ldb, Kp, accumulate, 0xffff);
            }
    } else if (path == PATH_DP) {
        for (int j0 = 0; j0 < N; j0 += 48) {
            const int nc = N - j0 < 48 ? N - j0 : 48, nv = (nc + 15) / 16;
            const __mmask16 lastm = (__mmask16)(nc % 16 ? (1u << (nc % 16)) - 1 : 0xffff);
            for (int i0 = 0; i0 < M; i0 += 8) {
                const int m = M - i0 < 8 ? M - i0 : 8;
                gp_dp[nv - 1][m - 1](C + i0 * ldc + j0, ldc, A + i0 * ars, ars, acs, B + j0, ldb, Kp, accumulate, lastm);
            }
        }
    } else if (path == PATH_AVX2) {
        for (int j0 = 0; j0 < N; j0 += 16)
            for (int i0 = 0; i0 < M; i0 += 4)
                gp_tile_avx2(C + i0 * ldc + j0, ldc, A + i0 * ars, ars, acs, B + j0, ldb, Kp, accumulate,
                             M - i0 < 4 ? M - i0 : 4, N - j0 < 16 ? N - j0 : 16);
    } else
        for (int i = 0; i < M; i++)
            for (int n = 0; n < N; n++) {
                float acc = accumulate ? flush(C[(int64_t)i * ldc + n]) : 0.0f; // (DAZ on the accumulator too)
                for (int k = 0; k < Kp; k++) {
                    const uint32_t a = A[i * ars + k * acs], b = B[(int64_t)k * ldb + n];
                    acc = fma_ftz(flush(bfv((uint16_t)(a >> 16))), flush(bfv((uint16_t)(b >> 16))), acc);
                    acc = fma_ftz(flush(bfv((uint16_t)a)), flush(bfv((uint16_t)b)), acc);
                }
                C[(int64_t)i * ldc + n] = acc;
            }
}

// ---------------------------------------------------------------------------- peak

// 12 independent vdpbf16ps chains for iters steps (their sum, so the loop is not removed)
__attribute__((target("avx512f,avx512bf16"))) static float peak_loop(long iters) {
    __m512 a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_setzero_ps();
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), w = (__m512bh)_mm512_set1_epi32(0x00010001);
    for (long t = 0; t < iters; t++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], x, w);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

// monotonic seconds
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// best of 3 timed runs of peak_loop on every thread, the loop sized to ~seconds / 10 a run
double bf16_dot_peak_gflops(double seconds) {
    if (!cpu.avx512bf16) return 0;
    long iters = 1 << 20;
    volatile float sink = 0;
    for (;;) { // grow the loop until one run takes a tenth of the time
        const double t0 = now_s();
        sink += peak_loop(iters);
        if (now_s() - t0 > seconds / 10 || iters > (1L << 40)) break;
        iters *= 2;
    }
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        const double t0 = now_s();
        float s = 0;
#pragma omp parallel reduction(+ : s)
        s += peak_loop(iters);
        sink += s;
        const double dt = now_s() - t0, flop = (double)omp_get_max_threads() * (double)iters * 12 * 16 * 2 * 2;
        best = flop / dt / 1e9 > best ? flop / dt / 1e9 : best;
    }
    (void)sink;
    return best;
}
