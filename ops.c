// SPDX-License-Identifier: MIT
// ops.c - the kernels: Linear (bf16/f16/f32 weights, fp32 activations), norms, activations, attention.
// Every fast kernel has a naive twin (`*_naive`) and tests/test_ops.c checks that they agree.
// Determinism: work is split over output rows / heads / tiles, never over a summed dimension, and every reduction
// has one fixed order that the AVX-512, AVX2 and portable code all follow (the same fused multiply-adds in the
// same sequence), so results are bit-identical for any thread count and any of the three instruction sets.
// Batch invariance: the order of every output's sum depends only on the summed length (K, head_dim, visible keys),
// never on the number of rows, a row's position, the tile or the task, so a row gives the same bits alone (decode)
// as in any batch (prefill chunks of any size, vision), on every instruction set.
// No BLAS: OpenBLAS's speed depends on its core-type detection and its bits on the kernel it picks; these
// kernels read the bf16 weights from the mapping (no fp32 copy of them) and reach a large fraction of the FMA peak.
#include "ops.h"
#include "tree16.h"
#include "ops_bf16.h"
#include "ops_amx.h"
#include "quant.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

CpuFeatures cpu;
static char cpu_feature_str[128];

void ops_omp_reexec(char **argv) {
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY") || getenv("GLM4V_NO_REEXEC")) return;
    if (setenv("GOMP_SPINCOUNT", OPS_SPINCOUNT, 1) == 0) execv("/proc/self/exe", argv);
    unsetenv("GOMP_SPINCOUNT"); // (exec failed: the environment stays as the user gave it)
}

void ops_init(void) {

    memset(&cpu, 0, sizeof cpu);
    const char *portable = getenv("GLM4V_PORTABLE"), *isa = getenv("GLM4V_ISA");
    if (!(portable && *portable && strcmp(portable, "0") != 0)) {
        __builtin_cpu_init();
        cpu.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        cpu.fma = cpu.avx2;
        cpu.f16c = cpu.avx2 && __builtin_cpu_supports("f16c");
        // GLM4V_ISA=avx2: leave AVX-512 unused (tests compare the instruction sets)
        if (!(isa && strcmp(isa, "avx2") == 0)) {
            cpu.avx512f = cpu.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
            cpu.avx512bw = cpu.avx512f;
            cpu.avx512bf16 = cpu.avx512f && __builtin_cpu_supports("avx512bf16");
            cpu.avx512vbmi = cpu.avx512f && __builtin_cpu_supports("avx512vbmi");
            cpu.avx512vnni = cpu.avx512f && __builtin_cpu_supports("avx512vnni");
            // GLM4V_ISA=avx512: AVX-512 F / BW only, as Skylake-SP and Cascade Lake (no BF16, VBMI or VNNI)
            if (isa && strcmp(isa, "avx512") == 0) cpu.avx512bf16 = cpu.avx512vbmi = cpu.avx512vnni = 0;
            const char *amx = getenv("GLM4V_AMX");
            if (amx && *amx && strcmp(amx, "0") != 0) {
                // (GLM4V_AMX=emulate: the same kernel over the software tiles of ops_amx_emu.c, for tests)
                cpu.amx_bf16 = !cpu.avx512bf16 ? 0 : strcmp(amx, "emulate") == 0 ? 2 : amx_usable();
                static int told;
                if (!cpu.amx_bf16 && !told++)
                    fprintf(stderr, "glm4v: GLM4V_AMX: no usable AMX-BF16 tiles on this CPU; --compute bf16 runs avx512bf16 or its emulation\n");
            }
        }
    }
    snprintf(cpu_feature_str, sizeof cpu_feature_str, "%s%s%s", cpu.avx512f ? "avx512f,avx512bw," : "",
             cpu.avx2 ? "avx2,fma," : "", cpu.f16c ? "f16c" : "");
    size_t n = strlen(cpu_feature_str);
    if (n && cpu_feature_str[n - 1] == ',') cpu_feature_str[n - 1] = 0;
    if (!cpu_feature_str[0]) strcpy(cpu_feature_str, "portable");
}

const char *ops_features(void) { return cpu_feature_str; }

// ---------------------------------------------------------------------------- element access

// Tensor data sits wherever the safetensors header puts it: an odd header length (legal) leaves it at any address.
// Every scalar load of weights goes through these (memcpy: one unaligned load, no alignment assumption); the vector
// kernels use unaligned loads (loadu / maskz_loadu).
static inline uint16_t ld_u16(const void *base, int64_t i) {
    uint16_t v;
    memcpy(&v, (const char *)base + i * 2, sizeof v);
    return v;
}
static inline float ld_f32(const void *base, int64_t i) {
    float v;
    memcpy(&v, (const char *)base + i * 4, sizeof v);
    return v;
}

float tensor_get(const Tensor *W, int64_t i) {
    switch (W->dtype) {
    case DT_GGML: return quant_get(W, i / W->cols, i % W->cols);
    case DT_BF16: return bf16_to_f32(ld_u16(W->data, i));
    case DT_F16: return f16_to_f32(ld_u16(W->data, i));
    default: return ld_f32(W->data, i);
    }
}

__attribute__((target("avx512f,avx512bw"))) static void bf16_row_avx512(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
    for (; i < n; i++) dst[i] = bf16_to_f32(ld_u16(src, i));
}

__attribute__((target("avx2,f16c"))) static void f16_row_f16c(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = f16_to_f32(ld_u16(src, i));
}

// n elements starting at flat index off, widened to fp32 (exact)
static void widen(float *dst, const Tensor *W, int64_t off, int64_t n) {
    if (W->dtype == DT_GGML) { // whole rows of ggml blocks (GGUF embeddings): dequantised as ggml does
        for (int64_t i = 0; i < n; i += W->cols) quant_row_naive(dst + i, W, (off + i) / W->cols);
    } else if (W->dtype == DT_F32) {
        memcpy(dst, (const char *)W->data + off * 4, (size_t)n * sizeof(float));
    } else if (W->dtype == DT_BF16) {
        const uint16_t *s = (const uint16_t *)W->data + off;
        if (cpu.avx512f) bf16_row_avx512(dst, s, n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(ld_u16(s, i));
    } else {
        const uint16_t *s = (const uint16_t *)W->data + off;
        if (cpu.f16c) f16_row_f16c(dst, s, n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(ld_u16(s, i));
    }
}

void tensor_row_f32(float *dst, const Tensor *W, int64_t r) { widen(dst, W, r * W->cols, W->cols); }
void tensor_to_f32(float *dst, const Tensor *W, int64_t n) { widen(dst, W, 0, n); }

// ---------------------------------------------------------------------------- per-thread buffers

static float *tls_buf;      // per-thread fp32 buffer: one widened f16 / f32 weight row (generic Linear paths)
static size_t tls_buf_len;  // floats
#pragma omp threadprivate(tls_buf, tls_buf_len)

static float *thread_buf(size_t n) {
    if (tls_buf_len < n) {
        free(tls_buf);
        tls_buf = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
        if (!tls_buf) glm_die(EXIT_INPUT, "out of memory (kernel tile buffer)");
        tls_buf_len = n;
    }
    return tls_buf;
}

// ---------------------------------------------------------------------------- horizontal sums (one tree)

// the 16-lane tree every dot product ends with (tree16.h: s[j] = a[j] + a[j+8], then + 4, + 2, + 1)
float ops_tree16(const float a[16]) { return tree16(a); }


// ---------------------------------------------------------------------------- dot products (natural order)
// lane j (0..15) accumulates fma(a[16c+j], b[16c+j]) over the chunks c (the last one zero-padded), then tree16.

static float dot_f32_scalar(const float *a, const float *b, int n) {
    float acc[16] = {0};
    for (int i = 0; i < n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] = i + j < n ? fmaf(a[i + j], b[i + j], acc[j]) : fmaf(0.0f, 0.0f, acc[j]);
    return ops_tree16(acc);
}

__attribute__((target("avx512f"))) static float dot_f32_avx512(const float *a, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
    }
    return tree16_512(acc);
}

// zero-padded 8 floats from p (n < 8 valid)
__attribute__((target("avx2,fma"))) static inline __m256 load8_partial(const float *p, int n) {
    if (n >= 8) return _mm256_loadu_ps(p);
    if (n <= 0) return _mm256_setzero_ps();
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx));
}

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi);
    }
    if (i < n) {
        lo = _mm256_fmadd_ps(load8_partial(a + i, n - i), load8_partial(b + i, n - i), lo);
        hi = _mm256_fmadd_ps(load8_partial(a + i + 8, n - i - 8), load8_partial(b + i + 8, n - i - 8), hi);
    }
    return tree16_256x2(lo, hi);
}

float dot_f32(const float *a, const float *b, int n) {
    if (cpu.avx512f) return dot_f32_avx512(a, b, n);
    if (cpu.avx2) return dot_f32_avx2(a, b, n);
    return dot_f32_scalar(a, b, n);
}

// ---------------------------------------------------------------------------- Linear: dot-product tiles
// y[i, o] = x_i . W_o. A tile is MR activation rows x NR weight rows, each output one register accumulator over the
// whole K (no packing: weight rows are read once per tile straight from the mapping and widened in registers).
// bf16 weights, "pair order": K is zero-padded to a multiple of 32; in chunk c lane j (0..15) accumulates
//   fma(W[32c+2j], x[32c+2j]) and then fma(W[32c+2j+1], x[32c+2j+1]), then tree16.
// One 64-byte load of 32 bf16 gives both halves (even = word << 16, odd = word & 0xffff0000) with no shuffle; the
// activation row is permuted once to match: xp[32c+j] = x[32c+2j], xp[32c+16+j] = x[32c+2j+1] (zero-padded).
// f16 / f32 weights use the natural order of dot_f32 (x not permuted). Every batch size uses these tiles (and the
// decode kernels below, the same chain for one row): the tile shape changes with the batch, never an output's order.

#define LT_MR 4   // activation rows per tile
#define LT_NR 5   // weight rows per tile
#define LT_NB 40  // weight rows per task of a batch whose activations fit in L2 (a multiple of LT_NR)
#define LT_NB_MAX 160 // most weight rows per task of a larger batch (a multiple of LT_NR)
#define LT_XL2 (1 << 20) // bytes of activation rows (fp32) up to which a batch counts as fitting in L2
#define LT_MB 32  // activation rows per block of a task (a multiple of LT_MR)
#define LT_RB 20  // bf16 weight rows per block of a task (a multiple of LT_NR)
#define LT_KC2 512 // AVX2 tiles: k per block (a multiple of 32)
#define LT_TASK1 (1 << 20) // bytes of contiguous weight rows per task for batches of at most LT_MR rows (decode)
#define LT_PF 3072 // decode: bf16 elements prefetched ahead of the weight read, in reading order (6 KB)
#define LT_NS 5 // weight streams of rowsm_bf16_512 (decode and small batches)
#define LT_PFM2 1024 // rowsm_bf16_512: bf16 elements prefetched into L2 ahead in each stream as well (2 KB; bench serve,
                     // 2 threads, each window paired with STREAM at the VM's full bandwidth: one row 0.75-0.77 ->
                     // 0.86-0.87 of STREAM, four rows 0.66-0.68 -> 0.79-0.80; 1 KB gave nothing, 3-4 KB less)
#define LT_PFM 128 // rowsm_bf16_512: bf16 elements prefetched ahead in each stream (256 B; per core, 1 thread in CPU
                   // time over 0.13-1 KB: 1 KB read 4 % slower for one activation row, 15 % for four)

static inline int64_t pad32(int64_t k) { return (k + 31) & ~(int64_t)31; }

// xp[Kp] = the pair-order permutation of x[K]
__attribute__((target("avx512f"))) static void permute_pairs_avx512(float *xp, const float *x, int K) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int c = 0; c < K; c += 32) {
        const int n = K - c;
        const __mmask16 m0 = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
        const __mmask16 m1 = n >= 32 ? 0xffff : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
        const __m512 a = _mm512_maskz_loadu_ps(m0, x + c), b = _mm512_maskz_loadu_ps(m1, x + c + 16);
        _mm512_storeu_ps(xp + c, _mm512_permutex2var_ps(a, ev, b));
        _mm512_storeu_ps(xp + c + 16, _mm512_permutex2var_ps(a, od, b));
    }
}

static void permute_pairs(float *xp, const float *x, int K) {
    if (cpu.avx512f) {
        permute_pairs_avx512(xp, x, K);
        return;
    }
    const int Kp = (int)pad32(K);
    for (int c = 0; c < Kp; c += 32)
        for (int j = 0; j < 16; j++) {
            int k = c + 2 * j;
            xp[c + j] = k < K ? x[k] : 0.0f;
            xp[c + 16 + j] = k + 1 < K ? x[k + 1] : 0.0f;
        }
}

__attribute__((target("avx512f,avx512bw"))) static inline __attribute__((always_inline)) void
tile_bf16_512(float *y, int64_t ldy, const float *xp, int64_t ldxp, const uint16_t *w, int64_t ldw, int K, int MR,
              int NR) {
    __m512 acc[LT_MR][LT_NR];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    const int nfull = K / 32, rem = K % 32;
    for (int c = 0; c < nfull; c++) {
        __m512 xe[LT_MR], xo[LT_MR];
#pragma GCC unroll 10
        for (int i = 0; i < MR; i++) {
            xe[i] = _mm512_loadu_ps(xp + i * ldxp + 32 * c);
            xo[i] = _mm512_loadu_ps(xp + i * ldxp + 32 * c + 16);
        }
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            __m512i wv = _mm512_loadu_si512((const void *)(w + j * ldw + 32 * c));
            __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));
            __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(wv, hi));
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++) {
                acc[i][j] = _mm512_fmadd_ps(we, xe[i], acc[i][j]);
                acc[i][j] = _mm512_fmadd_ps(wo, xo[i], acc[i][j]);
            }
        }
    }
    if (rem) {
        const __mmask32 m = (__mmask32)((1ull << rem) - 1);
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            __m512i wv = _mm512_maskz_loadu_epi16(m, w + j * ldw + 32 * nfull);
            __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));
            __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(wv, hi));
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++) {
                acc[i][j] = _mm512_fmadd_ps(we, _mm512_loadu_ps(xp + i * ldxp + 32 * nfull), acc[i][j]);
                acc[i][j] = _mm512_fmadd_ps(wo, _mm512_loadu_ps(xp + i * ldxp + 32 * nfull + 16), acc[i][j]);
            }
        }
    }
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) y[i * ldy + j] = tree16_512(acc[i][j]);
}

// one instance per (MR, NR): the compiler keeps the accumulators in registers
#define TILE512(MR, NR)                                                                                                \
    __attribute__((target("avx512f,avx512bw"))) static void tile_bf16_512_##MR##_##NR(                                 \
        float *y, int64_t ldy, const float *xp, int64_t ldxp, const uint16_t *w, int64_t ldw, int K) {                 \
        tile_bf16_512(y, ldy, xp, ldxp, w, ldw, K, MR, NR);                                                            \
    }
#define TILE512_ROW(MR) TILE512(MR, 1) TILE512(MR, 2) TILE512(MR, 3) TILE512(MR, 4) TILE512(MR, 5)
TILE512_ROW(1)
TILE512_ROW(2)
TILE512_ROW(3)
TILE512_ROW(4)
typedef void (*TileFn)(float *, int64_t, const float *, int64_t, const uint16_t *, int64_t, int);
#define TROW(MR) {tile_bf16_512_##MR##_1, tile_bf16_512_##MR##_2, tile_bf16_512_##MR##_3, tile_bf16_512_##MR##_4, \
    tile_bf16_512_##MR##_5}
static const TileFn tiles512[LT_MR][LT_NR] = {TROW(1), TROW(2), TROW(3), TROW(4)};

// one half h of the tile over the chunks [k0, k1): acc[i][j] += the chain of lanes 8h..8h+7 (tail: the zero-padded
// last chunk of each row)
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void
half_bf16_avx2(__m256 acc[LT_MR][2], int h, const float *xp, int64_t ldxp, const uint16_t *w, int64_t ldw, int K,
               int k0, int k1, int MR, int NR, const uint16_t tail[2][32]) {
    const __m256i mhi = _mm256_set1_epi32((int)0xffff0000u);
    const int nfull = K & ~31;
    for (int c = k0; c < k1; c += 32)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const uint16_t *wr = c < nfull ? w + j * ldw + c : tail[j];
            const __m256i a = _mm256_loadu_si256((const __m256i *)(wr + 16 * h));
            const __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
            const __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(a, mhi));
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++) {
                const float *x = xp + i * ldxp + c + 8 * h;
                acc[i][j] = _mm256_fmadd_ps(we, _mm256_loadu_ps(x), acc[i][j]);
                acc[i][j] = _mm256_fmadd_ps(wo, _mm256_loadu_ps(x + 16), acc[i][j]);
            }
        }
}

// AVX2: 16 lanes as two 8-lane halves, two separate chains: half 0 (lanes 0-7) from words [32c, 32c+16) of each chunk,
// half 1 (lanes 8-15) from words [32c+16, 32c+32), computed one after the other so each half's MR x NR accumulators
// fit the 16 registers; MR (<= LT_MR) activation rows (stride ldxp) x NR (<= 2) weight rows, activations as memory
// operands of the multiply-adds
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void
tile_bf16_avx2(float *y, int64_t ldy, const float *xp, int64_t ldxp, const uint16_t *w, int64_t ldw, int K, int MR,
               int NR) {
    const int nfull = K & ~31;
    uint16_t tail[2][32];
    for (int j = 0; j < NR && nfull < K; j++) { // zero-padded copy of the last chunk
        memset(tail[j], 0, sizeof tail[j]);
        memcpy(tail[j], w + j * ldw + nfull, (size_t)(K - nfull) * 2);
    }
    __m256 lo[LT_MR][2], hi[LT_MR][2];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) lo[i][j] = hi[i][j] = _mm256_setzero_ps();
    // k in blocks of LT_KC2: the second half re-reads the block's operands from L1
    for (int k0 = 0; k0 < (int)pad32(K); k0 += LT_KC2) {
        const int k1 = (int)pad32(K) - k0 < LT_KC2 ? (int)pad32(K) : k0 + LT_KC2;
        half_bf16_avx2(lo, 0, xp, ldxp, w, ldw, K, k0, k1, MR, NR, tail);
        half_bf16_avx2(hi, 1, xp, ldxp, w, ldw, K, k0, k1, MR, NR, tail);
    }
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) y[i * ldy + j] = tree16_256x2(lo[i][j], hi[i][j]);
}

#define TILE2(MR, NR)                                                                                                  \
    __attribute__((target("avx2,fma"))) static void tile_bf16_avx2_##MR##_##NR(                                        \
        float *y, int64_t ldy, const float *xp, int64_t ldxp, const uint16_t *w, int64_t ldw, int K) {                 \
        tile_bf16_avx2(y, ldy, xp, ldxp, w, ldw, K, MR, NR);                                                           \
    }
TILE2(1, 1)
TILE2(1, 2)
TILE2(2, 1)
TILE2(2, 2)
TILE2(3, 1)
TILE2(3, 2)
TILE2(4, 1)
TILE2(4, 2)
static const TileFn tiles_avx2[LT_MR][2] = {{tile_bf16_avx2_1_1, tile_bf16_avx2_1_2},
                                            {tile_bf16_avx2_2_1, tile_bf16_avx2_2_2},
                                            {tile_bf16_avx2_3_1, tile_bf16_avx2_3_2},
                                            {tile_bf16_avx2_4_1, tile_bf16_avx2_4_2}};

// AVX2 decode (one activation row): rows [r0, r1) one after the other, prefetched LT_PF ahead (as rowsm_bf16_512);
// the chain of tile_bf16_avx2 (same bits)
__attribute__((target("avx2,fma"))) static void rows1_bf16_avx2(float *y, const float *xp, const uint16_t *W, int K,
                                                                int r0, int r1) {
    const __m256i mhi = _mm256_set1_epi32((int)0xffff0000u);
    const int nfull = K & ~31;
    uint16_t tail[32];
    for (int r = r0; r < r1; r++) {
        const uint16_t *w = W + (int64_t)r * K;
        __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
        for (int c = 0; c < (int)pad32(K); c += 32) {
            const uint16_t *wr = w + c;
            if (c < nfull) _mm_prefetch((const char *)(wr + LT_PF), _MM_HINT_T0);
            else { // zero-padded copy of the last chunk
                memset(tail, 0, sizeof tail);
                memcpy(tail, wr, (size_t)(K - c) * 2);
                wr = tail;
            }
            const __m256i a = _mm256_loadu_si256((const __m256i *)wr);
            const __m256i b = _mm256_loadu_si256((const __m256i *)(wr + 16));
            lo = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), _mm256_loadu_ps(xp + c), lo);
            lo = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(a, mhi)), _mm256_loadu_ps(xp + c + 16), lo);
            hi = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(b, 16)), _mm256_loadu_ps(xp + c + 8), hi);
            hi = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(b, mhi)), _mm256_loadu_ps(xp + c + 24), hi);
        }
        y[r] = tree16_256x2(lo, hi);
    }
}

// portable: the same order with fmaf
static float dot_bf16_pairs_scalar(const float *xp, const uint16_t *w, int K) {
    float acc[16] = {0};
    for (int c = 0; c < K; c += 32)
        for (int j = 0; j < 16; j++) {
            int k = c + 2 * j;
            float we = k < K ? bf16_to_f32(ld_u16(w, k)) : 0.0f, wo = k + 1 < K ? bf16_to_f32(ld_u16(w, k + 1)) : 0.0f;
            acc[j] = fmaf(we, xp[c + j], acc[j]);
            acc[j] = fmaf(wo, xp[c + 16 + j], acc[j]);
        }
    return ops_tree16(acc);
}

// acc + we x xe + wo x xo, we / wo = the even / odd weights of a 32-bf16 chunk as fp32 (pair order): the chain every
// decode kernel runs
__attribute__((target("avx512f"))) static inline __m512 pair_fma512w(__m512 acc, __m512 we, __m512 wo, __m512 xe,
                                                                     __m512 xo) {
    acc = _mm512_fmadd_ps(we, xe, acc);
    return _mm512_fmadd_ps(wo, xo, acc);
}

// the even weights of a 32-bf16 chunk as fp32 (word << 16), and the odd ones (word & 0xffff0000)
__attribute__((target("avx512f"))) static inline __m512 bf16_even512(__m512i wv) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));
}
__attribute__((target("avx512f"))) static inline __m512 bf16_odd512(__m512i wv) {
    return _mm512_castsi512_ps(_mm512_and_si512(wv, _mm512_set1_epi32((int)0xffff0000u)));
}

// acc + even weights of a 32-bf16 chunk x xe + odd weights x xo (pair order)
__attribute__((target("avx512f"))) static inline __m512 pair_fma512(__m512 acc, __m512i wv, __m512 xe, __m512 xo) {
    return pair_fma512w(acc, bf16_even512(wv), bf16_odd512(wv), xe, xo);
}

// one 32-bf16 chunk c of rowsm_step512's NS streams for its M activation rows (mask: the valid weights of a last,
// partial chunk; 0: a full chunk)
__attribute__((target("avx512f,avx512bw"))) static inline __attribute__((always_inline)) void
rowsm_chunk512(__m512 acc[LT_NS][LT_MR], const float *xp, int64_t ldxp, const uint16_t *const *w, int c, int M, int NS,
               __mmask32 mask) {
    __m512 xe[LT_MR], xo[LT_MR];
#pragma GCC unroll 8
    for (int i = 0; i < M; i++) xe[i] = _mm512_loadu_ps(xp + i * ldxp + c), xo[i] = _mm512_loadu_ps(xp + i * ldxp + c + 16);
#pragma GCC unroll 8
    for (int j = 0; j < NS; j++) {
        _mm_prefetch((const char *)(w[j] + c + LT_PFM), _MM_HINT_T0);
        _mm_prefetch((const char *)(w[j] + c + LT_PFM2), _MM_HINT_T1);
        const __m512i v = mask ? _mm512_maskz_loadu_epi16(mask, w[j] + c) : _mm512_loadu_si512((const void *)(w[j] + c));
        const __m512 we = bf16_even512(v), wo = bf16_odd512(v);
#pragma GCC unroll 8
        for (int i = 0; i < M; i++) acc[j][i] = pair_fma512w(acc[j][i], we, wo, xe[i], xo[i]);
    }
}

// small batches: y[i, r + j step] = xp_i . W_(r + j step) for the M activation rows i (xp: permuted rows, stride ldxp)
// and the NS weight rows j, one pass over K: per 32-bf16 chunk the M activation chunks are loaded once for the NS
// weight rows, and each weight chunk is loaded (each stream prefetched LT_PFM ahead, running on into its next
// rows) and widened once for the M activation rows; every output is the chain of tile_bf16_512 (same bits)
__attribute__((target("avx512f,avx512bw"))) static inline __attribute__((always_inline)) void
rowsm_step512(float *y, int64_t ldy, const float *xp, int64_t ldxp, const uint16_t *W, int K, int r, int step, int M,
              int NS) {
    const int nfull = K & ~31;
    const __mmask32 mrem = (__mmask32)((1ull << (K % 32)) - 1);
    const uint16_t *w[LT_NS];
    __m512 acc[LT_NS][LT_MR];
#pragma GCC unroll 8
    for (int j = 0; j < NS; j++) {
        w[j] = W + (int64_t)(r + j * step) * K;
#pragma GCC unroll 8
        for (int i = 0; i < M; i++) acc[j][i] = _mm512_setzero_ps();
    }
    // the full chunks, then the masked last one (one loop for both put a branch per stream and chunk in the loop)
    for (int c = 0; c < nfull; c += 32) rowsm_chunk512(acc, xp, ldxp, w, c, M, NS, 0);
    if (nfull < K) rowsm_chunk512(acc, xp, ldxp, w, nfull, M, NS, mrem);
#pragma GCC unroll 8
    for (int j = 0; j < NS; j++)
#pragma GCC unroll 8
        for (int i = 0; i < M; i++) y[i * ldy + r + j * step] = tree16_512(acc[j][i]);
}

// decode and small batches (1 to LT_MR activation rows: a token, a server's batched step): rows [r0, r1) read as LT_NS sequential
// streams, the LT_NS consecutive parts of the rows, one row of each at a time (the rows left over then one at a
// time), so each weight is read from memory once for all M activation rows and each activation load serves LT_NS
// weight rows; unaligned loads (shifting aligned ones into place would need LT_NS more registers). For one row, five
// streams read 1.2-1.3x the bytes/s of the one-stream kernel they replaced (2 threads, the bench checkpoint's decode)
__attribute__((target("avx512f,avx512bw"))) static inline __attribute__((always_inline)) void
rowsm_bf16_512(float *y, int64_t ldy, const float *xp, int64_t ldxp, const uint16_t *W, int K, int r0, int r1, int M) {
    const int part = (r1 - r0) / LT_NS; // stream j: rows [r0 + j part, r0 + (j + 1) part)
    for (int r = r0; r < r0 + part; r++) rowsm_step512(y, ldy, xp, ldxp, W, K, r, part, M, LT_NS);
    for (int r = r0 + LT_NS * part; r < r1; r++) rowsm_step512(y, ldy, xp, ldxp, W, K, r, 0, M, 1);
}

// one instance per M: the M x LT_NS accumulators and LT_NS widened weight chunks stay in registers
typedef void (*RowsMFn)(float *, int64_t, const float *, int64_t, const uint16_t *, int, int, int);
#define ROWSM512(M)                                                                                                    \
    __attribute__((target("avx512f,avx512bw"))) static void rowsm_bf16_512_##M(                                        \
        float *y, int64_t ldy, const float *xp, int64_t ldxp, const uint16_t *W, int K, int r0, int r1) {              \
        rowsm_bf16_512(y, ldy, xp, ldxp, W, K, r0, r1, M);                                                             \
    }
ROWSM512(1)
ROWSM512(2)
ROWSM512(3)
ROWSM512(4)
static const RowsMFn rowsm512[LT_MR] = {rowsm_bf16_512_1, rowsm_bf16_512_2, rowsm_bf16_512_3, rowsm_bf16_512_4};

// rows [r0, r1) of one job for activation rows [i0, i0 + mr): bf16 weights, xp = the permuted rows (stride Kp)
static void tiles_bf16(float *y, int64_t ldy, const float *xp, int64_t Kp, const uint16_t *W, int K, int mr, int r0,
                       int r1) {
    if (mr == 1 && cpu.avx2 && !cpu.avx512f) {
        rows1_bf16_avx2(y, xp, W, K, r0, r1);
        return;
    }
    if (mr == 1 && cpu.avx512f) {
        rowsm512[0](y, 0, xp, Kp, W, K, r0, r1);
        return;
    }
    if (cpu.avx512f) {
        for (int r = r0; r < r1; r += LT_NR) {
            const int nb = r1 - r < LT_NR ? r1 - r : LT_NR;
            tiles512[mr - 1][nb - 1](y + r, ldy, xp, Kp, W + (int64_t)r * K, K, K);
        }
    } else if (cpu.avx2) {
        for (int r = r0; r < r1; r += 2) {
            const int nb = r1 - r < 2 ? r1 - r : 2;
            tiles_avx2[mr - 1][nb - 1](y + r, ldy, xp, Kp, W + (int64_t)r * K, K, K);
        }
    } else
        for (int r = r0; r < r1; r++)
            for (int i = 0; i < mr; i++) y[i * ldy + r] = dot_bf16_pairs_scalar(xp + i * Kp, W + (int64_t)r * K, K);
}

// ---------------------------------------------------------------------------- Linear: f32 / f16 weights
// The natural order of dot_f32: in chunk c lane j (0..15) accumulates fma(W[16c+j], x[16c+j]) (the last chunk
// zero-padded), then tree16. A tile is MR activation rows x NR weight rows; f16 weights are widened in registers.

#define LW_NR 6 // AVX-512: weight rows per tile (4 x 6 accumulators)
#define LW_RB 24 // f32 / f16 weight rows per block of a task (a multiple of LW_NR)

// 16 weights from element off of a f32 (f16 = 0) or f16 row, the first `valid` of them (the rest zero)
__attribute__((target("avx512f,avx512bw"))) static inline __attribute__((always_inline)) __m512
w16_load512(const void *w, int64_t off, int f16, int valid) {
    const __mmask16 m = valid >= 16 ? 0xffff : (__mmask16)((1u << valid) - 1);
    if (f16) {
        const uint16_t *p = (const uint16_t *)w + off;
        return _mm512_cvtph_ps(valid >= 16 ? _mm256_loadu_si256((const __m256i *)p)
                                           : _mm512_castsi512_si256(_mm512_maskz_loadu_epi16((__mmask32)m, p)));
    }
    return valid >= 16 ? _mm512_loadu_ps((const float *)w + off) : _mm512_maskz_loadu_ps(m, (const float *)w + off);
}

// y[i, j] = x_i . W_j for MR (<= LT_MR) activation rows x NR (<= LW_NR) f32 / f16 weight rows, one pass over K
__attribute__((target("avx512f,avx512bw"))) static inline __attribute__((always_inline)) void
tile_w32_512(float *y, int64_t ldy, const float *x, int64_t ldx, const void *w, int64_t ldw, int K, int MR, int NR,
             int f16) {
    __m512 acc[LT_MR][LW_NR];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    const int nfull = K & ~15;
    for (int c = 0; c < nfull; c += 16) {
        __m512 xv[LT_MR];
#pragma GCC unroll 10
        for (int i = 0; i < MR; i++) xv[i] = _mm512_loadu_ps(x + i * ldx + c);
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const __m512 wv = w16_load512(w, j * ldw + c, f16, 16);
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++) acc[i][j] = _mm512_fmadd_ps(wv, xv[i], acc[i][j]);
        }
    }
    if (nfull < K) {
        const int rem = K - nfull;
        const __mmask16 m = (__mmask16)((1u << rem) - 1);
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const __m512 wv = w16_load512(w, j * ldw + nfull, f16, rem);
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++)
                acc[i][j] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + i * ldx + nfull), acc[i][j]);
        }
    }
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) y[i * ldy + j] = tree16_512(acc[i][j]);
}

typedef void (*TileW32Fn)(float *, int64_t, const float *, int64_t, const void *, int64_t, int);
#define TILEW(F16, MR, NR)                                                                                             \
    __attribute__((target("avx512f,avx512bw"))) static void tile_w32_512_##F16##_##MR##_##NR(                          \
        float *y, int64_t ldy, const float *x, int64_t ldx, const void *w, int64_t ldw, int K) {                       \
        tile_w32_512(y, ldy, x, ldx, w, ldw, K, MR, NR, F16);                                                          \
    }
#define TILEW_ROW(F16, MR) TILEW(F16, MR, 1) TILEW(F16, MR, 2) TILEW(F16, MR, 3) TILEW(F16, MR, 4) TILEW(F16, MR, 5) \
    TILEW(F16, MR, 6)
#define TILEW_ALL(F16) TILEW_ROW(F16, 1) TILEW_ROW(F16, 2) TILEW_ROW(F16, 3) TILEW_ROW(F16, 4)
TILEW_ALL(0)
TILEW_ALL(1)
#define TWROW(F16, MR) {tile_w32_512_##F16##_##MR##_1, tile_w32_512_##F16##_##MR##_2, tile_w32_512_##F16##_##MR##_3, \
    tile_w32_512_##F16##_##MR##_4, tile_w32_512_##F16##_##MR##_5, tile_w32_512_##F16##_##MR##_6}
#define TWALL(F16) {TWROW(F16, 1), TWROW(F16, 2), TWROW(F16, 3), TWROW(F16, 4)}
static const TileW32Fn tiles_w32_512[2][LT_MR][LW_NR] = {TWALL(0), TWALL(1)};

// AVX2: 8 weights (two 8-lane halves make the 16 lanes) from element off of a f32 or f16 row, the first `valid`
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) __m256
w8_load_avx2(const void *w, int64_t off, int f16, int valid) {
    if (f16) {
        const uint16_t *p = (const uint16_t *)w + off;
        if (valid >= 8) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
        uint16_t t[8] = {0};
        if (valid > 0) memcpy(t, p, (size_t)valid * 2);
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)t));
    }
    return load8_partial((const float *)w + off, valid);
}

// one half h of the tile over k in [k0, k1) (k0 a multiple of 16): acc[i][j] += the chain of lanes 8h..8h+7
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
half_w32_avx2(__m256 acc[LT_MR][3], int h, const float *x, int64_t ldx, const void *w, int64_t ldw, int K, int k0,
              int k1, int MR, int NR, int f16) {
    const int nfull = k1 & ~15;
    for (int c = k0; c < nfull; c += 16)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const __m256 wv = w8_load_avx2(w, j * ldw + c + 8 * h, f16, 8);
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++)
                acc[i][j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i * ldx + c + 8 * h), acc[i][j]);
        }
    if (nfull < k1) { // the last chunk of the row, zero-padded
        const int valid = k1 - nfull - 8 * h;
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) {
            const __m256 wv = w8_load_avx2(w, j * ldw + nfull + 8 * h, f16, valid);
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++)
                acc[i][j] = _mm256_fmadd_ps(wv, load8_partial(x + i * ldx + nfull + 8 * h, valid), acc[i][j]);
        }
    }
    (void)K;
}

// MR (<= LT_MR) activation rows x NR (<= 3) weight rows; the two 8-lane halves of the 16 lanes (two separate chains)
// one after the other, so each half's accumulators fit the 16 registers
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
tile_w32_avx2(float *y, int64_t ldy, const float *x, int64_t ldx, const void *w, int64_t ldw, int K, int MR, int NR,
              int f16) {
    __m256 lo[LT_MR][3], hi[LT_MR][3];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) lo[i][j] = hi[i][j] = _mm256_setzero_ps();
    // k in blocks of LT_KC2: the second half re-reads the block's operands from L1
    for (int k0 = 0; k0 < K; k0 += LT_KC2) {
        const int k1 = K - k0 < LT_KC2 ? K : k0 + LT_KC2;
        half_w32_avx2(lo, 0, x, ldx, w, ldw, K, k0, k1, MR, NR, f16);
        half_w32_avx2(hi, 1, x, ldx, w, ldw, K, k0, k1, MR, NR, f16);
    }
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int j = 0; j < NR; j++) y[i * ldy + j] = tree16_256x2(lo[i][j], hi[i][j]);
}

#define TILEW2(F16, MR, NR)                                                                                            \
    __attribute__((target("avx2,fma,f16c"))) static void tile_w32_avx2_##F16##_##MR##_##NR(                            \
        float *y, int64_t ldy, const float *x, int64_t ldx, const void *w, int64_t ldw, int K) {                       \
        tile_w32_avx2(y, ldy, x, ldx, w, ldw, K, MR, NR, F16);                                                         \
    }
#define TILEW2_ROW(F16, MR) TILEW2(F16, MR, 1) TILEW2(F16, MR, 2) TILEW2(F16, MR, 3)
#define TILEW2_ALL(F16) TILEW2_ROW(F16, 1) TILEW2_ROW(F16, 2) TILEW2_ROW(F16, 3) TILEW2_ROW(F16, 4)
TILEW2_ALL(0)
TILEW2_ALL(1)
#define TW2ROW(F16, MR) {tile_w32_avx2_##F16##_##MR##_1, tile_w32_avx2_##F16##_##MR##_2, tile_w32_avx2_##F16##_##MR##_3}
#define TW2ALL(F16) {TW2ROW(F16, 1), TW2ROW(F16, 2), TW2ROW(F16, 3), TW2ROW(F16, 4)}
static const TileW32Fn tiles_w32_avx2[2][LT_MR][3] = {TW2ALL(0), TW2ALL(1)};

// rows [r0, r1) for activation rows [0, mr) (mr <= LT_MR) with f16 / f32 weights
static void tiles_w32(float *y, int64_t ldy, const float *x, int64_t ldx, const Tensor *W, int mr, int r0, int r1) {
    const int K = (int)W->cols, f16 = W->dtype == DT_F16;
    const size_t es = f16 ? 2 : 4;
    const char *W0 = (const char *)W->data;
    if (cpu.avx512f) {
        for (int r = r0; r < r1; r += LW_NR) {
            const int nb = r1 - r < LW_NR ? r1 - r : LW_NR;
            tiles_w32_512[f16][mr - 1][nb - 1](y + r, ldy, x, ldx, W0 + (size_t)r * K * es, K, K);
        }
    } else if (cpu.avx2 && (cpu.f16c || !f16)) {
        for (int r = r0; r < r1; r += 3) {
            const int nb = r1 - r < 3 ? r1 - r : 3;
            tiles_w32_avx2[f16][mr - 1][nb - 1](y + r, ldy, x, ldx, W0 + (size_t)r * K * es, K, K);
        }
    } else { // portable: widen a row, natural-order dots
        float *rowbuf = thread_buf((size_t)K);
        for (int r = r0; r < r1; r++) {
            const float *wr;
            if (W->dtype == DT_F32 && (uintptr_t)W->data % sizeof(float) == 0) wr = (const float *)W->data + (int64_t)r * K;
            else { // widened (f16) or copied (f32 at an unaligned address: an odd safetensors header length)
                tensor_row_f32(rowbuf, W, r);
                wr = rowbuf;
            }
            for (int i = 0; i < mr; i++) y[i * ldy + r] = dot_f32(x + i * ldx, wr, K);
        }
    }
}

// the activation rows of the bf16 jobs, permuted (shared by the tasks; grown outside the token loop by ops_reserve)
static float *xp_buf;  // [rows, Kp] for every distinct x of a batch
static size_t xp_cap;  // floats

static void xp_reserve(size_t n) {
    if (xp_cap >= n) return;
    free(xp_buf);
    xp_buf = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    if (!xp_buf) glm_die(EXIT_INPUT, "out of memory (%.1f MB of permuted activations)", n * 4 / 1e6);
    xp_cap = n;
}

// whether a job runs in the bf16 compute mode; whether it reads prepared activation rows (bf16 weights: permuted;
// the bf16 compute mode: rounded), and the floats of one prepared row
static int force_fp32; // set by linear_fp32 for its call (the kernels, like xp_buf, serve one caller at a time)
static int job_bf16c(const LinearJob *J) { return ops_compute == COMPUTE_BF16 && !force_fp32 && J; }
static int job_needs_x(const LinearJob *J) { return J->n > 0 && (J->W->dtype == DT_BF16 || job_bf16c(J)); }
static int64_t job_xrow(const LinearJob *J) {
    return job_bf16c(J) ? (int64_t)bf16c_row_floats((int)J->W->cols) : pad32(J->W->cols);
}

// one task: rows [r0, r1) of job J for all its activation rows; xp = its permuted rows (bf16). The task runs in
// blocks of LT_MB activation rows x LT_RB weight rows (LW_RB for f32 / f16), LT_MR rows at a time inside a block,
// so a block's operands stay in cache (measured +2-4 % over whole-task sweeps); decode-sized batches read the task's
// rows in one pass. The order of each output's sum does not depend on any of this.
static void linear_task(const LinearJob *J, const float *xp, int r0, int r1) {
    const int K = (int)J->W->cols, n = J->n, bf16 = J->W->dtype == DT_BF16, c16 = job_bf16c(J);
    const int rbk = n <= LT_MR ? r1 - r0 : c16 ? bf16c_rows_per_block(LT_RB) : bf16 ? LT_RB : LW_RB; // (decode: one stream)
    const int64_t Kp = job_xrow(J);
    if (n >= 2 && n <= LT_MR && bf16 && !c16 && cpu.avx512f) { // a small batch: streamed as decode streams
        rowsm512[n - 1](J->y, J->ldy, xp, Kp, (const uint16_t *)J->W->data, K, r0, r1);
        if (J->b && J->b->data)
            for (int i = 0; i < n; i++)
                for (int r = r0; r < r1; r++) J->y[(int64_t)i * J->ldy + r] += tensor_get(J->b, r);
        return;
    }
    for (int ib = 0; ib < n; ib += LT_MB) {
        const int ie = n - ib < LT_MB ? n : ib + LT_MB;
        for (int rb = r0; rb < r1; rb += rbk) {
            const int re = r1 - rb < rbk ? r1 : rb + rbk;
            if (c16) { // the bf16 compute mode: the whole block at once (ops_bf16.c blocks k inside it)
                float *y = J->y + (int64_t)ib * J->ldy;
                // the operand the next block reads first from memory: the next weight rows (bf16 weights; the
                // first block row reads them once), else the next block row's inputs
                const void *pf = NULL;
                size_t pfb = 0;
                if (re < r1 && J->W->dtype == DT_BF16) {
                    const int rn = r1 - re < rbk ? r1 - re : rbk;
                    pf = (const uint16_t *)J->W->data + (int64_t)re * K, pfb = (size_t)rn * K * 2;
                } else if (re >= r1 && ie < n) {
                    const int in = n - ie < LT_MB ? n - ie : LT_MB;
                    pf = xp + ie * Kp, pfb = (size_t)in * Kp * sizeof(float);
                }
                bf16c_block(y, J->ldy, xp + ib * Kp, Kp, J->W, ie - ib, rb, re, pf, pfb);
                if (J->b && J->b->data)
                    for (int i = 0; i < ie - ib; i++)
                        for (int r = rb; r < re; r++) y[(int64_t)i * J->ldy + r] += tensor_get(J->b, r);
                continue;
            }
            for (int i0 = ib; i0 < ie; i0 += LT_MR) {
                const int mr = ie - i0 < LT_MR ? ie - i0 : LT_MR;
                float *y = J->y + (int64_t)i0 * J->ldy;
                if (bf16) tiles_bf16(y, J->ldy, xp + i0 * Kp, Kp, (const uint16_t *)J->W->data, K, mr, rb, re);
                else tiles_w32(y, J->ldy, J->x + (int64_t)i0 * J->ldx, J->ldx, J->W, mr, rb, re);
                if (J->b && J->b->data)
                    for (int i = 0; i < mr; i++)
                        for (int r = rb; r < re; r++) y[(int64_t)i * J->ldy + r] += tensor_get(J->b, r);
            }
        }
    }
}

// output rows per task of a job (the bits do not depend on it)
static int job_rows(const LinearJob *J) {
    if (J->n > LT_MR) {
        // batches: every task reads all the activation rows once; where they outgrow L2 (prefill, vision), larger
        // tasks (up to LT_NB_MAX weight rows) read them less often, yet at least 8 tasks per thread where possible
        const int64_t cap = (int64_t)J->n * J->W->cols * 4 > LT_XL2 || job_bf16c(J) ? LT_NB_MAX : LT_NB;
        const int64_t nt = 8 * (int64_t)omp_get_max_threads(), nb = (J->W->rows + nt - 1) / nt;
        const int64_t r = (nb + LT_NR - 1) / LT_NR * LT_NR;
        return (int)(r < LT_NB ? LT_NB : r > cap ? cap : r);
    }
    // decode: ~LT_TASK1 bytes per task, and at least 8 tasks per thread where the job has the rows
    const int64_t rows = J->W->rows, fair = (rows + 8 * omp_get_max_threads() - 1) / (8 * omp_get_max_threads());
    const int64_t nb = LT_TASK1 / (J->W->cols * dtype_size[J->W->dtype] + 1);
    return (int)(nb < 1 ? 1 : nb < fair ? nb : fair > 0 ? fair : 1);
}


// preparation unit u of a batch: one activation row of a job permuted (bf16 weights) or rounded (bf16 compute)
static void prepare_x(const LinearJob *jobs, const int64_t *ustart, const int64_t *xoff, int64_t u) {
    int j = 0;
    while (ustart[j + 1] <= u) j++;
    const LinearJob *J = &jobs[j];
    const int64_t i = u - ustart[j];
    float *dst = xp_buf + xoff[j] + i * job_xrow(J);
    if (job_bf16c(J)) bf16c_prepare_row(dst, J->x + i * J->ldx, (int)J->W->cols);
    else permute_pairs(dst, J->x + i * J->ldx, (int)J->W->cols);
}

// several Linears in one parallel region: the activation rows of bf16 jobs are permuted once (jobs with the same x
// share them), then tasks of output rows run on any thread; each output is computed by one task in one fixed
// order whatever the batch, so the bits depend neither on the threads nor on the other rows of the batch
void linear_batch(const LinearJob *jobs, int njobs) {
    for (int j = 0; j < njobs; j++) // quantised weights (quant.c): the whole batch goes there (plain jobs come back)
        if (is_quantised(jobs[j].W)) {
            quant_linear_batch(jobs, njobs);
            return;
        }
    if (njobs > LINEAR_MAX_JOBS) {
        linear_batch(jobs, LINEAR_MAX_JOBS);
        linear_batch(jobs + LINEAR_MAX_JOBS, njobs - LINEAR_MAX_JOBS);
        return;
    }
    // per job: task range, permuted-x offset, x preparation units (rows)
    int64_t start[LINEAR_MAX_JOBS + 1], xoff[LINEAR_MAX_JOBS], ustart[LINEAR_MAX_JOBS + 1];
    int own[LINEAR_MAX_JOBS];
    size_t tot = 0;
    start[0] = ustart[0] = 0;
    for (int j = 0; j < njobs; j++) {
        const LinearJob *J = &jobs[j];
        const int nb = job_rows(J);
        start[j + 1] = start[j] + (J->n > 0 ? (J->W->rows + nb - 1) / nb : 0);
        own[j] = j, xoff[j] = 0;
        const int needx = job_needs_x(J);
        if (needx) {
            for (int q = 0; q < j; q++)
                if (own[q] == q && job_needs_x(&jobs[q]) && job_bf16c(&jobs[q]) == job_bf16c(J) && jobs[q].x == J->x &&
                    jobs[q].ldx == J->ldx &&
                    jobs[q].n == J->n && jobs[q].W->cols == J->W->cols) {
                    own[j] = q;
                    break;
                }
            if (own[j] == j) {
                xoff[j] = (int64_t)tot;
                tot += (size_t)J->n * (size_t)job_xrow(J);
            } else xoff[j] = xoff[own[j]];
        }
        ustart[j + 1] = ustart[j] + (needx && own[j] == j ? J->n : 0);
    }
    xp_reserve(tot);
    const int64_t ntask = start[njobs], nunits = ustart[njobs];
    // small batches (decode) prepare x on this thread: one synchronisation less per parallel region
    const int serial_x = tot <= 65536;
    for (int64_t u = 0; u < (serial_x ? nunits : 0); u++) prepare_x(jobs, ustart, xoff, u);
#pragma omp parallel if (ntask > 1)
    {
        if (!serial_x) {
#pragma omp for schedule(static)
            for (int64_t u = 0; u < nunits; u++) prepare_x(jobs, ustart, xoff, u);
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < ntask; t++) {
            int j = 0;
            while (start[j + 1] <= t) j++;
            const int nb = job_rows(&jobs[j]);
            const int r0 = (int)((t - start[j]) * nb), O = (int)jobs[j].W->rows;
            const int r1 = r0 + nb < O ? r0 + nb : O;
            linear_task(&jobs[j], xp_buf + xoff[j], r0, r1);
        }
    }
}

// nn.Linear: y = x W^T + b
void linear(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    LinearJob J = {y, W->rows, x, W->cols, W, b, n};
    linear_batch(&J, 1);
}

void linear_fp32(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    force_fp32 = 1;
    linear(y, x, W, b, n);
    force_fp32 = 0;
}

// reference: one output at a time, double accumulation
void linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    if (is_quantised(W)) {
        quant_linear_naive(y, x, W, b, n);
        return;
    }
    const int64_t O = W->rows, K = W->cols;
    for (int i = 0; i < n; i++)
        for (int64_t o = 0; o < O; o++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)tensor_get(W, o * K + k) * x[(int64_t)i * K + k];
            float v = (float)s;
            if (b && b->data) v += tensor_get(b, o);
            y[(int64_t)i * O + o] = v;
        }
}

// ---------------------------------------------------------------------------- broadcast GEMM (attention)
// C[i, j] (+)= sum_k A(i, k) * B[k, j], A(i, k) = A[i * ars + k * acs]: one fma chain per output over k in
// ascending order, from 0 (accumulate = 0) or from C; B rows are vectors, A elements are broadcast. The k range is
// cut into blocks with the partial sums kept in C, which continues the same chain: the bits do not depend on the
// blocking, the tile shape or the instruction set.

#define GB_KB 256 // k per block (the B rows of a block stay in cache)
#define GB_PF 8   // rows of B prefetched ahead when the operands stream from memory

__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
gb_tile512(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb, int K,
           int accumulate, int MR, int NV, __mmask16 lastm, int pf) {
    __m512 c[8][4];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int v = 0; v < NV; v++)
            c[i][v] = accumulate ? _mm512_maskz_loadu_ps(v == NV - 1 ? lastm : 0xffff, C + i * ldc + 16 * v)
                                 : _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = B + k * ldb, *a = A + k * acs;
        if (pf) { // operands streamed from memory (decode): B rows GB_PF ahead, and the next tile's A rows
#pragma GCC unroll 10
            for (int v = 0; v < NV; v++) _mm_prefetch((const char *)(b + GB_PF * ldb + 16 * v), _MM_HINT_T0);
            if (acs == 1 && k % 16 == 0)
#pragma GCC unroll 10
                for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(a + (MR + i) * ars), _MM_HINT_T0);
        }
        __m512 bv[4];
#pragma GCC unroll 10
        for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? lastm : 0xffff, b + 16 * v);
#pragma GCC unroll 10
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(a[i * ars]);
#pragma GCC unroll 10
            for (int v = 0; v < NV; v++) c[i][v] = _mm512_fmadd_ps(ai, bv[v], c[i][v]);
        }
    }
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 10
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(C + i * ldc + 16 * v, v == NV - 1 ? lastm : 0xffff, c[i][v]);
}

#define GB512(MR, NV)                                                                                                  \
    __attribute__((target("avx512f"))) static void gb512_##MR##_##NV(float *C, int64_t ldc, const float *A,            \
                                                                     int64_t ars, int64_t acs, const float *B,         \
                                                                     int64_t ldb, int K, int acc, __mmask16 m, int pf) { \
        gb_tile512(C, ldc, A, ars, acs, B, ldb, K, acc, MR, NV, m, pf);                                                \
    }
#define GB512_COL(NV) GB512(1, NV) GB512(2, NV) GB512(3, NV) GB512(4, NV) GB512(5, NV) GB512(6, NV) GB512(7, NV) \
    GB512(8, NV)
GB512_COL(1)
GB512_COL(2)
GB512_COL(3)
GB512_COL(4)
typedef void (*GbFn)(float *, int64_t, const float *, int64_t, int64_t, const float *, int64_t, int, int, __mmask16,
                     int);
#define GBCOL(NV) {gb512_1_##NV, gb512_2_##NV, gb512_3_##NV, gb512_4_##NV, gb512_5_##NV, gb512_6_##NV, gb512_7_##NV, \
    gb512_8_##NV}
static const GbFn gb512[4][8] = {GBCOL(1), GBCOL(2), GBCOL(3), GBCOL(4)};

// AVX2: up to 4 rows x 16 columns
__attribute__((target("avx2,fma"))) static void gb_tile_avx2(float *C, int64_t ldc, const float *A, int64_t ars,
                                                             int64_t acs, const float *B, int64_t ldb, int K,
                                                             int accumulate, int MR, int ncol) {
    __m256 c[4][2];
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncol), idx);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncol - 8), idx);
    for (int i = 0; i < MR; i++) {
        c[i][0] = accumulate ? _mm256_maskload_ps(C + i * ldc, m0) : _mm256_setzero_ps();
        c[i][1] = accumulate && ncol > 8 ? _mm256_maskload_ps(C + i * ldc + 8, m1) : _mm256_setzero_ps();
    }
    for (int k = 0; k < K; k++) {
        const float *b = B + k * ldb, *a = A + k * acs;
        const __m256 b0 = _mm256_maskload_ps(b, m0), b1 = ncol > 8 ? _mm256_maskload_ps(b + 8, m1) : _mm256_setzero_ps();
        for (int i = 0; i < MR; i++) {
            const __m256 ai = _mm256_set1_ps(a[i * ars]);
            c[i][0] = _mm256_fmadd_ps(ai, b0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(ai, b1, c[i][1]);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm256_maskstore_ps(C + i * ldc, m0, c[i][0]);
        if (ncol > 8) _mm256_maskstore_ps(C + i * ldc + 8, m1, c[i][1]);
    }
}

// pf: prefetch the operands (they stream from memory, as the KV cache in decode); the same bits either way
static void gemm_bcast_pf(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb,
                          int M, int N, int K, int accumulate, int pf) {
    if (M <= 0 || N <= 0) return;
    for (int k0 = 0; k0 < K || (K == 0 && k0 == 0); k0 += GB_KB) {
        const int kb = K - k0 < GB_KB ? K - k0 : GB_KB, acc = accumulate || k0 > 0;
        const float *Ak = A + (int64_t)k0 * acs, *Bk = B + (int64_t)k0 * ldb;
        if (cpu.avx512f) {
            for (int j0 = 0; j0 < N; j0 += 64) {
                const int nc = N - j0 < 64 ? N - j0 : 64, nv = (nc + 15) / 16;
                const __mmask16 lastm = (__mmask16)(nc % 16 ? (1u << (nc % 16)) - 1 : 0xffff);
                const int mr = nv == 4 ? 6 : 8;
                for (int i0 = 0; i0 < M; i0 += mr) {
                    const int m = M - i0 < mr ? M - i0 : mr;
                    gb512[nv - 1][m - 1](C + i0 * ldc + j0, ldc, Ak + i0 * ars, ars, acs, Bk + j0, ldb, kb, acc, lastm, pf);
                }
            }
        } else if (cpu.avx2) {
            for (int j0 = 0; j0 < N; j0 += 16)
                for (int i0 = 0; i0 < M; i0 += 4)
                    gb_tile_avx2(C + i0 * ldc + j0, ldc, Ak + i0 * ars, ars, acs, Bk + j0, ldb, kb, acc,
                                 M - i0 < 4 ? M - i0 : 4, N - j0 < 16 ? N - j0 : 16);
        } else {
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    float c = acc ? C[i * ldc + j] : 0.0f;
                    for (int k = 0; k < kb; k++) c = fmaf(Ak[i * ars + k * acs], Bk[k * ldb + j], c);
                    C[i * ldc + j] = c;
                }
        }
        if (K == 0) break;
    }
}

// the attention kernel's GEMM without prefetching, for its agreement test (tests/test_ops.c holds the naive twin)
void gemm_bcast(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb, int M,
                int N, int K, int accumulate) {
    gemm_bcast_pf(C, ldc, A, ars, acs, B, ldb, M, N, K, accumulate, 0);
}

// ---------------------------------------------------------------------------- exp

// expf by range reduction and the Cephes degree-6 polynomial (error about 1 ulp); x < -110 gives 0, overflow inf.
// exp_fast and its vector twins run the same roundings in the same order, so every instruction set agrees.
#define EXP_LO -110.0f
#define EXP_HI 88.8f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_C1 0.693359375f
#define EXP_C2 -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

static inline float pow2i(int k) { // 2^k for -126 <= k <= 127
    union { uint32_t u; float f; } v = {(uint32_t)(k + 127) << 23};
    return v.f;
}

float exp_fast(float x) {
    x = x < EXP_LO ? EXP_LO : x;
    x = x > EXP_HI ? EXP_HI : x;
    const float z = floorf(x * EXP_LOG2E + 0.5f);
    float r = fmaf(z, -EXP_C1, x);
    r = fmaf(z, -EXP_C2, r);
    float p = EXP_P0;
    p = fmaf(p, r, EXP_P1), p = fmaf(p, r, EXP_P2), p = fmaf(p, r, EXP_P3), p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    const float y = fmaf(p, r * r, r) + 1.0f;
    const int n = (int)z, n1 = n >> 1, n2 = n - n1; // 2^n = 2^n1 * 2^n2, both normal
    return (y * pow2i(n1)) * pow2i(n2);
}

__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(EXP_LO), x); // x < lo ? lo : x (NaN stays NaN)
    x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), x);
    const __m512 z = _mm512_floor_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)), _mm512_set1_ps(0.5f)));
    __m512 r = _mm512_fmadd_ps(z, _mm512_set1_ps(-EXP_C1), x);
    r = _mm512_fmadd_ps(z, _mm512_set1_ps(-EXP_C2), r);
    __m512 p = _mm512_set1_ps(EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    const __m512i n = _mm512_cvttps_epi32(z), n1 = _mm512_srai_epi32(n, 1), n2 = _mm512_sub_epi32(n, n1);
    const __m512i b = _mm512_set1_epi32(127);
    const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, b), 23));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, b), 23));
    return _mm512_mul_ps(_mm512_mul_ps(y, s1), s2);
}

__attribute__((target("avx2,fma"))) static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO), x);
    x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), x);
    const __m256 z = _mm256_floor_ps(_mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fmadd_ps(z, _mm256_set1_ps(-EXP_C1), x);
    r = _mm256_fmadd_ps(z, _mm256_set1_ps(-EXP_C2), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i n = _mm256_cvttps_epi32(z), n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
    const __m256i b = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}

// ---------------------------------------------------------------------------- norms and activations

// fixed-order sum of squares (16 lanes then a tree), as dot_f32
static float sumsq(const float *x, int d) { return dot_f32(x, x, d); }

// Glm4vRMSNorm: variance = x.pow(2).mean(-1); x * rsqrt(variance + eps); weight * x
void rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps) {
#pragma omp parallel for schedule(static) if (n > 8)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * d;
        float *oi = out + (int64_t)i * d;
        float var = sumsq(xi, d) / (float)d;
        float r = 1.0f / sqrtf(var + eps);
        for (int j = 0; j < d; j++) oi[j] = w[j] * (xi[j] * r);
    }
}

// nn.LayerNorm(d, eps): (x - mean) / sqrt(var + eps) * w + b, biased variance
void layernorm(float *out, const float *x, const float *w, const float *b, int n, int d, float eps) {
#pragma omp parallel for schedule(static) if (n > 8)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * d;
        float *oi = out + (int64_t)i * d;
        double mean = 0, var = 0;
        for (int j = 0; j < d; j++) mean += xi[j];
        mean /= d;
        for (int j = 0; j < d; j++) var += (xi[j] - mean) * (xi[j] - mean);
        var /= d;
        float m = (float)mean, r = (float)(1.0 / sqrt(var + eps));
        for (int j = 0; j < d; j++) oi[j] = (xi[j] - m) * r * w[j] + b[j];
    }
}

// softmax over n values (max-subtracted, sequential sum in double)
void softmax_inplace(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = exp_fast(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

// nn.GELU() (exact): 0.5 * x * (1 + erf(x / sqrt(2)))
float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

__attribute__((target("avx512f"))) static void swiglu_avx512(float *y, const float *g, const float *u, int n) {
    int i = 0;
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        const __m512 gv = _mm512_loadu_ps(g + i);
        const __m512 s = _mm512_div_ps(gv, _mm512_add_ps(one, exp512(_mm512_sub_ps(zero, gv))));
        _mm512_storeu_ps(y + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = (g[i] / (1.0f + exp_fast(0.0f - g[i]))) * u[i];
}

__attribute__((target("avx2,fma"))) static void swiglu_avx2(float *y, const float *g, const float *u, int n) {
    int i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        const __m256 gv = _mm256_loadu_ps(g + i);
        const __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, exp256(_mm256_sub_ps(zero, gv))));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = (g[i] / (1.0f + exp_fast(0.0f - g[i]))) * u[i];
}

// act_fn(gate) * up with act_fn = SiLU: silu(g) = g / (1 + exp(-g)) (y may alias g or u)
void swiglu(float *y, const float *g, const float *u, int n) {
    if (cpu.avx512f) swiglu_avx512(y, g, u, n);
    else if (cpu.avx2) swiglu_avx2(y, g, u, n);
    else
        for (int i = 0; i < n; i++) y[i] = (g[i] / (1.0f + exp_fast(0.0f - g[i]))) * u[i];
}

// reference: libm expf
void swiglu_naive(float *y, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) y[i] = silu_f(g[i]) * u[i];
}

// ---------------------------------------------------------------------------- attention (one head)
// Scores are computed transposed, S^T[j, i] = k_j . q_i (a broadcast GEMM of the key rows against the query block
// transposed, Q^T [hd, nb]), so the softmax of query i runs down column i with 16 queries per vector, and
// O = P V is a broadcast GEMM reading P^T rows directly. Every (query, key) gets the same roundings whatever the
// block, so decode (one query, or the heads of a GQA group as the columns) and prefill agree bit for bit.
// Long inputs: the keys are taken in blocks of ATT_KB absolute positions ([b * ATT_KB, (b + 1) * ATT_KB), whatever
// the query block or prefill chunk) with an online softmax that keeps the output normalised (flash-attention style):
// per query the running max m, the running double sum l and O = sum_j (e_j / l) v_j; a new block with l' = l *
// exp(m - m') + sum_j e'_j scales O by l * exp(m - m') / l' and adds its e'_j / l' rows. The scratch is ATT_QB x
// ATT_KB scores (O(1) in the input length). A query whose visible keys fit in the first block computes exactly
// what the one-block softmax computes (P = e / l, O = P V), and a block it cannot see changes nothing (scale 1,
// weights 0), so its bits do not depend on the chunking either.

#define ATT_QB 64       // queries per block
#define ATT_KB 1024     // keys per block (absolute positions; a multiple of GB_KB)
#define ATT_QG 4        // query blocks that share one pass over the key blocks
#define ATT_MAX_HD 512  // head_dim the scratch is sized for (larger heads use the naive kernel)

// (ATT_QG query blocks' Q^T, one S^T block, then the bf16 mode's packed pairs: K [kb][hd/2], V [kb/2][hd],
// P [kb/2][ATT_QB], as uint32)
size_t attention_scratch_floats(int nk) {
    const size_t kb = nk < 1 ? 1 : nk < ATT_KB ? (size_t)nk : ATT_KB, kb2 = (kb + 1) / 2;
    return (size_t)ATT_QG * ATT_QB * ATT_MAX_HD + (size_t)ATT_QB * kb + 64 + kb * (ATT_MAX_HD / 2) + kb2 * ATT_MAX_HD +
           kb2 * ATT_QB + 64;
}

// One key block of the online column softmax of S^T [kn, nb] (ld nb, a multiple of 16): query i sees the block's
// keys j < vis[i] (vis local to the block, 0..kn). Per column: the block max of scale * s, the new max mn =
// max(m, .), e_j = exp(scale * s_j - mn) (0 where masked), lsum = sum_j e_j in double (ascending j); first block:
// l = lsum; later: t = l * exp(m - mn), l = t + lsum, c[i] = t / l (the factor for O). S becomes e_j / l; with inv
// (the bf16 mode, whose packing multiplies as it rounds: pack_pairs_rows) S stays e_j and inv[i] = (float)(1 / l).
__attribute__((target("avx512f"))) static void softmax_block_avx512(float *S, int kn, int nb, const int *vis,
                                                                     float scale, int first, float *m, double *l,
                                                                     float *c, float *inv_out) {
    for (int i0 = 0; i0 < nb; i0 += 16) {
        const __m512i visv = _mm512_loadu_si512((const void *)(vis + i0));
        const __m512 sc = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
        // max_j fl(s_j * scale) = fl(scale * max_j s_j) (rounding is monotonic, scale > 0): no scaled copy is stored
        __m512 mx = ninf;
        for (int j = 0; j < kn; j++) {
            const __mmask16 vm = _mm512_cmpgt_epi32_mask(visv, _mm512_set1_epi32(j));
            mx = _mm512_mask_max_ps(mx, vm, mx, _mm512_loadu_ps(S + (int64_t)j * nb + i0));
        }
        mx = _mm512_mul_ps(mx, sc);
        const __m512 mo = first ? ninf : _mm512_loadu_ps(m + i0), mn = first ? mx : _mm512_max_ps(mo, mx);
        __m512d sum0 = _mm512_setzero_pd(), sum1 = _mm512_setzero_pd();
        for (int j = 0; j < kn; j++) {
            float *s = S + (int64_t)j * nb + i0;
            const __mmask16 vm = _mm512_cmpgt_epi32_mask(visv, _mm512_set1_epi32(j));
            const __m512 e = _mm512_maskz_mov_ps(vm, exp512(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(s), sc), mn)));
            sum0 = _mm512_add_pd(sum0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
            sum1 = _mm512_add_pd(sum1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
            _mm512_storeu_ps(s, e);
        }
        if (!first) { // t = l * exp(m - mn); l = t + lsum; c = t / l
            const __m512 a = exp512(_mm512_sub_ps(mo, mn));
            const __m512d t0 = _mm512_mul_pd(_mm512_loadu_pd(l + i0), _mm512_cvtps_pd(_mm512_castps512_ps256(a)));
            const __m512d t1 = _mm512_mul_pd(_mm512_loadu_pd(l + i0 + 8),
                                              _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))));
            sum0 = _mm512_add_pd(t0, sum0), sum1 = _mm512_add_pd(t1, sum1);
            const __m256 c0 = _mm512_cvtpd_ps(_mm512_div_pd(t0, sum0)), c1 = _mm512_cvtpd_ps(_mm512_div_pd(t1, sum1));
            _mm256_storeu_ps(c + i0, c0), _mm256_storeu_ps(c + i0 + 8, c1);
        }
        _mm512_storeu_pd(l + i0, sum0), _mm512_storeu_pd(l + i0 + 8, sum1);
        _mm512_storeu_ps(m + i0, mn);
        const __m512d one = _mm512_set1_pd(1.0);
        const __m256 inv0 = _mm512_cvtpd_ps(_mm512_div_pd(one, sum0)), inv1 = _mm512_cvtpd_ps(_mm512_div_pd(one, sum1));
        const __m512 inv = _mm512_castpd_ps(
            _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(inv0)), _mm256_castps_pd(inv1), 1));
        if (inv_out) {
            _mm512_storeu_ps(inv_out + i0, inv);
            continue;
        }
        for (int j = 0; j < kn; j++) {
            float *s = S + (int64_t)j * nb + i0;
            _mm512_storeu_ps(s, _mm512_mul_ps(_mm512_loadu_ps(s), inv));
        }
    }
}

static void softmax_block_scalar(float *S, int kn, int nb, const int *vis, float scale, int first, float *m,
                                 double *l, float *c, float *inv_out) {
    for (int i = 0; i < nb; i++) {
        float mx = -INFINITY;
        for (int j = 0; j < kn && j < vis[i]; j++) {
            const float s = S[(int64_t)j * nb + i];
            mx = s > mx ? s : mx;
        }
        mx = mx * scale;
        const float mn = first ? mx : (m[i] > mx ? m[i] : mx);
        double sum = 0;
        for (int j = 0; j < kn; j++) {
            float *s = S + (int64_t)j * nb + i;
            *s = j < vis[i] ? exp_fast(*s * scale - mn) : 0.0f;
            sum += *s;
        }
        if (!first) {
            const double t = l[i] * (double)exp_fast(m[i] - mn);
            sum = t + sum;
            c[i] = (float)(t / sum);
        }
        l[i] = sum, m[i] = mn;
        const float inv = (float)(1.0 / sum);
        if (inv_out) inv_out[i] = inv;
        else
            for (int j = 0; j < kn; j++) S[(int64_t)j * nb + i] *= inv;
    }
}

// eager_attention_forward for one head: out_i = softmax(scale * q_i . K^T + mask) . V, softmax in fp32.
// q [nq, ldq], k [nk, ldk], v [nk, ldv], out [nq, ldo]; q_offset >= 0: causal, query i sees keys j <= q_offset + i;
// q_offset < 0: bidirectional. scores: attention_scratch_floats(nk) floats. Up to ATT_QG query blocks share each
// pass over a key block (its keys and values stay in cache; the bf16 mode packs them once for all of them); every
// query block runs the same operations in the same order as alone.
// x[d] *= c for d < n (AVX-512 or scalar: the same products)
__attribute__((target("avx512f"))) static void scale_row_avx512(float *x, float c, int n) {
    const __m512 cv = _mm512_set1_ps(c);
    for (int d = 0; d < n; d += 16) {
        const __mmask16 m = n - d >= 16 ? 0xffff : (__mmask16)((1u << (n - d)) - 1);
        _mm512_mask_storeu_ps(x + d, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + d), cv));
    }
}
static void scale_row(float *x, float c, int n) {
    if (cpu.avx512f) scale_row_avx512(x, c, n);
    else
        for (int d = 0; d < n; d++) x[d] *= c;
}

// (kpk / vpk: the bf16 mode's K and V pairs packed beforehand by the caller (attention_head_kvpairs), else NULL)
static void attention_core(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v,
                           int ldv, const uint32_t *kpk, int64_t ldkp, const uint32_t *vpk, int64_t ldvp, int nq,
                           int nk, int hd, float scale, int q_offset, float *scores) {
    // Q^T [hd, nbp] per query block, S^T [kn, nbp]: nbp = nb rounded up to whole vectors; the extra columns are zero
    // queries that see every key (finite, never read back), so every row of S^T is aligned and no load or store is
    // masked
    float *S = scores + (size_t)ATT_QG * ATT_QB * ATT_MAX_HD;
    // --compute bf16: both products on bf16 pairs (ops_bf16.h gemm_pairs), as a torch.bfloat16 model's matmuls; the
    // scores, the softmax and the output stay fp32. Q^T as pairs along head_dim [hd2][nbp] in Q^T's place
    const int c16 = ops_compute == COMPUTE_BF16, hd2 = (hd + 1) / 2;
    const size_t kbmax = (size_t)(nk < ATT_KB ? (nk > 0 ? nk : 1) : ATT_KB);
    uint32_t *kp = (uint32_t *)(S + (size_t)ATT_QB * kbmax + 64);
    uint32_t *vp = kp + kbmax * (ATT_MAX_HD / 2), *pp = vp + (kbmax + 1) / 2 * ATT_MAX_HD;
    int64_t ldkb = hd2, ldvb = hd; // row strides of the key block's K and V pairs
    int vis[ATT_QG][ATT_QB], vl[ATT_QB], nbs[ATT_QG], nviss[ATT_QG];
    float m[ATT_QG][ATT_QB], c[ATT_QB], inv[ATT_QB];
    double l[ATT_QG][ATT_QB];
    for (int g0 = 0; g0 < nq; g0 += ATT_QG * ATT_QB) {
        int ng = 0, gvis = 0;
        for (int i0 = g0; i0 < nq && ng < ATT_QG; i0 += ATT_QB, ng++) {
            const int nb = nq - i0 < ATT_QB ? nq - i0 : ATT_QB, nbp = (nb + 15) & ~15;
            // keys visible to the last query of the block
            const int nvis = q_offset >= 0 ? (q_offset + i0 + nb < nk ? q_offset + i0 + nb : nk) : nk;
            float *qt = scores + (size_t)ng * ATT_QB * ATT_MAX_HD;
            uint32_t *qp = (uint32_t *)qt;
            nbs[ng] = nb, nviss[ng] = nvis, gvis = nvis > gvis ? nvis : gvis;
            for (int i = 0; i < nbp; i++) {
                vis[ng][i] = i >= nb ? nvis : q_offset >= 0 ? (q_offset + i0 + i + 1 < nk ? q_offset + i0 + i + 1 : nk) : nk;
                const float *qi = q + (int64_t)(i0 + i) * ldq;
                if (c16) { // the query's pairs (a missing last element: 0), transposed into column i
                    uint32_t row[ATT_MAX_HD / 2];
                    if (i < nb) pack_pairs_cols(row, hd2, qi, ldq, 1, hd);
                    for (int d = 0; d < hd2; d++) qp[d * nbp + i] = i < nb ? row[d] : 0;
                } else
                    for (int d = 0; d < hd; d++) qt[d * nbp + i] = i < nb ? qi[d] : 0.0f;
            }
        }
        for (int j0 = 0; j0 < gvis; j0 += ATT_KB) {
            const int gkn = gvis - j0 < ATT_KB ? gvis - j0 : ATT_KB;
            if (c16 && kpk) { // packed by the caller (j0 is even: the block's pairs are the whole input's)
                kp = (uint32_t *)kpk + (int64_t)j0 * ldkp, vp = (uint32_t *)vpk + (int64_t)(j0 / 2) * ldvp;
                ldkb = ldkp, ldvb = ldvp;
            } else if (c16) { // K as pairs along head_dim, V as pairs of keys (2j, 2j + 1) of the block (a missing last: 0)
                pack_pairs_cols(kp, hd2, k + (int64_t)j0 * ldk, ldk, gkn, hd);
                pack_pairs_rows(vp, hd, v + (int64_t)j0 * ldv, ldv, gkn, hd, NULL);
            }
            for (int b = 0; b < ng; b++) {
                if (j0 >= nviss[b]) continue;
                const int i0 = g0 + b * ATT_QB, nb = nbs[b], nbp = (nb + 15) & ~15;
                const int kn = nviss[b] - j0 < ATT_KB ? nviss[b] - j0 : ATT_KB, first = j0 == 0;
                const float *qt = scores + (size_t)b * ATT_QB * ATT_MAX_HD;
                // (one query block reads each key once: the keys and values stream from memory, so they are prefetched)
                const int pf = nb <= 16;
                for (int i = 0; i < nbp; i++) vl[i] = vis[b][i] - j0 < 0 ? 0 : vis[b][i] - j0 > kn ? kn : vis[b][i] - j0;
                // attn_weights = torch.matmul(query, key_states.transpose(2, 3)): S^T = K . Q^T (this key block)
                if (c16) gemm_pairs(S, nbp, kp, ldkb, 1, (const uint32_t *)qt, nbp, kn, nbp, hd2, 0);
                else gemm_bcast_pf(S, nbp, k + (int64_t)j0 * ldk, ldk, 1, qt, nbp, kn, nbp, hd, 0, pf);
                // * scaling (+ causal mask); softmax(attn_weights, dim=-1, dtype=torch.float32), online over the blocks
                // (the bf16 mode normalises P as it packs it: the same products, one pass over S less)
                if (cpu.avx512f) softmax_block_avx512(S, kn, nbp, vl, scale, first, m[b], l[b], c, c16 ? inv : NULL);
                else softmax_block_scalar(S, kn, nbp, vl, scale, first, m[b], l[b], c, c16 ? inv : NULL);
                // attn_output = torch.matmul(attn_weights, value_states): O = O * c + (S^T)^T . V (this key block)
                float *o = out + (int64_t)i0 * ldo;
                if (!first)
                    for (int i = 0; i < nb; i++)
                        if (c[i] != 1.0f) scale_row(o + (int64_t)i * ldo, c[i], hd);
                if (c16) { // P = S * inv as pairs of keys (a missing last key: 0)
                    pack_pairs_rows(pp, nbp, S, nbp, kn, nbp, inv);
                    gemm_pairs(o, ldo, pp, 1, nbp, vp, ldvb, nb, hd, (kn + 1) / 2, !first);
                } else gemm_bcast_pf(o, ldo, S, 1, nbp, v + (int64_t)j0 * ldv, ldv, nb, hd, kn, !first, pf);
            }
        }
    }
}

void attention_head(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                    int nq, int nk, int hd, float scale, int q_offset, float *scores) {
    if (hd > ATT_MAX_HD) {
        attention_head_naive(out, ldo, q, ldq, k, ldk, v, ldv, nq, nk, hd, scale, q_offset);
        return;
    }
    attention_core(out, ldo, q, ldq, k, ldk, v, ldv, NULL, 0, NULL, 0, nq, nk, hd, scale, q_offset, scores);
}

// the bf16 mode's bidirectional attention_head on pairs packed once for all the query chunks of a head
void attention_head_kvpairs(float *out, int ldo, const float *q, int ldq, const uint32_t *kpk, int64_t ldkp,
                            const uint32_t *vpk, int64_t ldvp, int nq, int nk, int hd, float scale, float *scores) {
    attention_core(out, ldo, q, ldq, NULL, 0, NULL, 0, kpk, ldkp, vpk, ldvp, nq, nk, hd, scale, -1, scores);
}

// reference: double accumulation, libm exp, one query at a time
void attention_head_naive(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, int nq, int nk, int hd, float scale, int q_offset) {
    double *s = xmalloc((size_t)nk * sizeof(double));
    for (int i = 0; i < nq; i++) {
        int nvis = q_offset >= 0 ? (q_offset + i + 1 < nk ? q_offset + i + 1 : nk) : nk;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < nvis; j++) {
            double d = 0;
            for (int c = 0; c < hd; c++) d += (double)q[(int64_t)i * ldq + c] * k[(int64_t)j * ldk + c];
            s[j] = d * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < nvis; j++) sum += (s[j] = exp(s[j] - mx));
        for (int c = 0; c < hd; c++) {
            double o = 0;
            for (int j = 0; j < nvis; j++) o += s[j] / sum * v[(int64_t)j * ldv + c];
            out[(int64_t)i * ldo + c] = (float)o;
        }
    }
    free(s);
}

// size every buffer up front (no allocation later, in the token loop): each thread's row buffer, and the permuted
// activations of up to `rows` rows (ops_reserve: 16, enough for a decode step's batches)
void ops_reserve_rows(size_t rows, size_t max_cols) {
#pragma omp parallel
    {
        thread_buf(max_cols > 0 ? max_cols : 1);
        if (cpu.amx_bf16) (cpu.amx_bf16 == 2 ? amx_reserve_emu : amx_reserve)(max_cols > 0 ? (int)max_cols : 1);
    }
    size_t n;
    if (size_mul(rows, (size_t)pad32((int64_t)max_cols), &n)) glm_die(EXIT_INPUT, "activation buffer size overflows");
    xp_reserve(n);
}

void ops_reserve(size_t max_cols) { ops_reserve_rows(16, max_cols); }
