// SPDX-License-Identifier: MIT
// quant_fp8x.c - Linear over FP8 E4M3 weights (one scale per tensor or per output channel) whose scheme quantises
// the input to FP8 per token as well: the official GLM-4.5V-FP8 / GLM-4.6V-FP8 releases (compressed-tensors
// float-quantized, weights "channel", input_activations dynamic "token"). transformers computes
//   x' = fp8(x / sx) * sx   (compressed_tensors forward_quantize: sx = absmax / 448, per token)
//   w' = float(qw) * sw     (decompressed weight)
//   y  = x' . w'^T (+ b)
// Both codes are E4M3 values (4 significant bits, exponents 2^-9 .. 2^8): each is an exact bf16 and the product of
// two is exact in fp32, so the same real number is
//   y = (sum_k qx[k] * qw[k]) * sx * sw (+ b)
// and the sum is the bf16 compute mode's chain (ops_bf16.h: per lane the odd pair's fma, then the even pair's, then
// the 16-lane tree), which vdpbf16ps runs 32 products per instruction; no product or partial sum is ever denormal
// (all are multiples of 2^-18), so the chain is plain fp32 fmas on every path. Against transformers the result
// differs by fp32 rounding only (HF rounds x' and each product; here only the sums and the two scalings round).
// The sum runs over K zero-padded to a multiple of 64 in "unpack order": within each block of 64 columns, position
// p holds column 16 * ((p % 32) / 8) + 8 * (p / 32) + p % 8, the order in which vpunpcklbw / vpunpckhbw put the
// two bytes of each bf16 that the decode kernel looks up (vpermi2b: 128-entry tables of the low and high bytes).
// The activations are permuted once per Linear; prompts and vision batches convert 20 weight rows at a time into a
// per-thread bf16 buffer in the same order and run ops_bf16.c's tiles, so a row has the same bits alone, in any
// batch, on any thread count and on AVX512_BF16, AVX2 or portable C. Without AVX512_BF16 + VBMI (AVX2 CPUs, and
// AVX-512 ones before Sapphire Rapids / Zen 4), decode reads the FP8 bytes with AVX2 + F16C (fx2_rows below).
#include "quant_fp8x.h"
#include "ops_bf16.h"
#include "quant.h"
#include "tree16.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define FX_DECODE_ROWS 4 // batches up to this many rows read the FP8 bytes directly (AVX512_BF16 + VBMI)
#define FX_NS 5          // decode: weight streams of dot_vbmi
#define FX_NS2 4         // batches of 2-4 rows: weight streams (4 x 4 accumulators)
#define FX_PFS 512       // dot_vbmi's streams: bytes prefetched ahead in each stream
#define FX_PFS2 2048     // dot_vbmi's streams: bytes prefetched into L2 ahead in each stream as well
#define FX_PF 512        // consecutive rows (a task's last few, after its streams) of FX_LONG bytes or more: bytes
                         // prefetched ahead in each row
#define FX_LONG 2048     // shorter consecutive rows: the pass after next prefetched as one block (measured on the
                         // 2-vCPU VM, one thread: K = 1408 12 -> 20 GB/s; K = 4096 and 12288: in-row prefetch best)

static inline int64_t kp64(int64_t K) { return (K + 63) & ~(int64_t)63; }

int fp8x_unpack_src(int p) { return 16 * ((p & 31) >> 3) + 8 * (p >> 5) + (p & 7); }

int fp8x_applies(const Tensor *W) {
    return W->dtype == DT_F8_E4M3 && W->act == ACT_FP8_TOKEN && quant_act_enabled && !W->zero && W->cols > 0 &&
           W->group >= W->cols && (W->block_rows == 1 || W->block_rows >= W->rows);
}

// the AVX2 decode kernel runs where the AVX512_BF16 + VBMI one cannot (AVX-512 CPUs without them included: a 16-lane
// form of the same kernel measured no faster on Zen 4, whose 512-bit conversions and shuffles take two passes)
static inline int fx2_ok(void) { return !(cpu.avx512bf16 && cpu.avx512vbmi) && cpu.avx2 && cpu.fma && cpu.f16c; }

// a prepared row: the bf16 path's layout (bf16c_row_floats(Kp) floats), then, where fx2_ok, Kp floats of fx2_rows'
size_t fp8x_row_floats(int K) { return bf16c_row_floats((int)kp64(K)) + (fx2_ok() ? (size_t)kp64(K) : 0); }

// the bf16 of the magnitude code m (0..127): 2^(e-7) * (1 + f/8) for e > 0, f * 2^-9 for e = 0, NaN for 0x7f
static uint16_t mag_bf16(unsigned m) {
    const unsigned e = m >> 3, f = m & 7;
    if (m == 0x7f) return 0x7fc0;
    if (e == 0) return f32_to_bf16((float)f * 0x1p-9f); // exact (a normal bf16)
    return (uint16_t)(((e + 120) << 7) | (f << 4));
}

// the E4M3 code b as bf16 (exact): the magnitude's bf16 with b's sign bit
static inline uint16_t fp8_bf16(uint8_t b) { return (uint16_t)(mag_bf16(b & 0x7fu) | (unsigned)(b & 0x80) << 8); }

static void tables_init(void);
static void fx2_prepare_row(float *dst, const float *q, int64_t Kp);

// ---------------------------------------------------------------------------- activations

static float *fx_q;   // per thread: fp8x_prepare's codes of one row and their permutation (2 x Kp floats; grows)
static size_t fx_qcap; // floats
#pragma omp threadprivate(fx_q, fx_qcap)

void fp8x_prepare(float *dst, int64_t ldq, float *sx, const float *x, int64_t ldx, int n, int K) {
    const int64_t Kp = kp64(K);
    tables_init();
    // rows in parallel for prompts (each row its own codes, scale and place: the same bits as one at a time)
#pragma omp parallel for schedule(static) if (n >= 8)
    for (int i = 0; i < n; i++) {
        if (fx_qcap < (size_t)Kp * 2) {
            free(fx_q);
            fx_q = xmalloc((size_t)Kp * 2 * sizeof(float)), fx_qcap = (size_t)Kp * 2;
        }
        float *q = fx_q, *qp = q + Kp;
        sx[i] = quant_act_fp8_codes(q, x + (int64_t)i * ldx, K);
        for (int64_t k = K; k < Kp; k++) q[k] = 0.0f;
        for (int64_t c = 0; c < Kp; c += 64)
            for (int p = 0; p < 64; p++) qp[c + p] = q[c + fp8x_unpack_src(p)];
        bf16c_prepare_row(dst + (int64_t)i * ldq, qp, (int)Kp); // exact: every code is a bf16
        if (fx2_ok()) fx2_prepare_row(dst + (int64_t)i * ldq + bf16c_row_floats((int)Kp), q, Kp);
    }
}

// ---------------------------------------------------------------------------- AVX512_BF16 + VBMI

// vpermi2b tables: low and high bytes of mag_bf16(m), m = 0..127 (filled by fp8x_prepare, which runs before any
// kernel and outside parallel regions)
static uint8_t tab_lo[128], tab_hi[128];
static int tab_ready;
static void tables_init(void) {
    if (tab_ready) return;
    for (unsigned m = 0; m < 128; m++) tab_lo[m] = (uint8_t)(mag_bf16(m) & 0xff), tab_hi[m] = (uint8_t)(mag_bf16(m) >> 8);
    tab_ready = 1;
}

typedef struct {
    __m512i lo0, lo1, hi0, hi1, sign;
} Tabs;

// 64 codes -> 64 bf16 in unpack order: *a = positions 0..31, *b = 32..63 (lookups of the low and high bytes by the
// code's low 7 bits, the sign bit or-ed into the high byte, then the bytes interleaved within each 128-bit lane)
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static inline __attribute__((always_inline)) void
cvt64(const Tabs *t, __m512i v, __m512i *a, __m512i *b) {
    const __m512i lo = _mm512_permutex2var_epi8(t->lo0, v, t->lo1);
    __m512i hi = _mm512_permutex2var_epi8(t->hi0, v, t->hi1);
    hi = _mm512_ternarylogic_epi32(hi, v, t->sign, 0xF8); // hi | (v & 0x80)
    *a = _mm512_unpacklo_epi8(lo, hi);
    *b = _mm512_unpackhi_epi8(lo, hi);
}

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static inline __attribute__((always_inline)) Tabs tabs_load(void) {
    Tabs t;
    t.lo0 = _mm512_loadu_si512((const void *)tab_lo), t.lo1 = _mm512_loadu_si512((const void *)(tab_lo + 64));
    t.hi0 = _mm512_loadu_si512((const void *)tab_hi), t.hi1 = _mm512_loadu_si512((const void *)(tab_hi + 64));
    t.sign = _mm512_set1_epi8((char)0x80);
    return t;
}

// one weight row's codes as bf16 in unpack order, Kp = kp64(K) of them (zero-padded)
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void row_bf16_vbmi(uint16_t *dst, const uint8_t *row,
                                                                                  int K) {
    const Tabs t = tabs_load();
    for (int c = 0; c < K; c += 64) {
        const int n = K - c;
        const __m512i v = _mm512_maskz_loadu_epi8(n >= 64 ? ~0ull : (1ull << n) - 1, row + c);
        __m512i a, b;
        cvt64(&t, v, &a, &b);
        _mm512_storeu_si512((void *)(dst + c), a);
        _mm512_storeu_si512((void *)(dst + c + 32), b);
    }
}

// out[i * ldo + j * ostep] = chain(row i of xp (ldx apart), weight row j) for NR weight rows (ld bytes long) rs bytes
// apart and M activation rows: per 64 columns one load of each weight row's codes, two lookups (once for all M
// rows), then two vdpbf16ps per activation row (positions 0..31, then 32..63: the tile's chunk order over the
// converted row). Prefetch: rs > ld: NR streams (the rows of a task cut into NR consecutive parts, as ops.c's
// rowsm_bf16_512 reads bf16 rows; each stream's next row right after its current one), each FX_PFS bytes ahead and
// FX_PFS2 into L2, on into its next row; rs = ld (consecutive rows): FX_PF bytes ahead in each row (long rows), or
// (short rows) the rows two passes on, read as one block, a line per row
__attribute__((target("avx512f,avx512bw,avx512vbmi,avx512bf16"))) static inline __attribute__((always_inline)) void
dot_vbmi(float *out, int64_t ldo, int64_t ostep, const uint16_t *xp, int64_t ldx, const uint8_t *w, int64_t ld,
         int64_t rs, int K, const int NR, const int M) {
    const Tabs t = tabs_load();
    __m512 acc[8][4]; // [NR][M], NR * M <= 16
    _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) _Pragma("GCC unroll 4") for (int i = 0; i < M; i++)
        acc[j][i] = _mm512_setzero_ps();
    for (int c = 0; c < K; c += 64) {
        const int n = K - c;
        const __mmask64 m = n >= 64 ? ~0ull : (1ull << n) - 1;
        // long rows: FX_PF bytes ahead in each row, or past its end: the same place in the next pass's row
        const int64_t pf = c + FX_PF < ld ? c + FX_PF : c + FX_PF + (NR - 1) * ld;
        _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) {
            if (rs > ld) {
                _mm_prefetch((const char *)(w + j * rs + c + FX_PFS), _MM_HINT_T0);
                _mm_prefetch((const char *)(w + j * rs + c + FX_PFS2), _MM_HINT_T1);
            } else if (ld >= FX_LONG) _mm_prefetch((const char *)(w + j * ld + pf), _MM_HINT_T0);
            else _mm_prefetch((const char *)(w + 2 * NR * ld + (int64_t)c * NR + 64 * j), _MM_HINT_T0);
            __m512i a, b;
            cvt64(&t, _mm512_maskz_loadu_epi8(m, w + j * rs + c), &a, &b);
            _Pragma("GCC unroll 4") for (int i = 0; i < M; i++) {
                const __m512i x0 = _mm512_loadu_si512((const void *)(xp + i * ldx + c));
                const __m512i x1 = _mm512_loadu_si512((const void *)(xp + i * ldx + c + 32));
                acc[j][i] = _mm512_dpbf16_ps(acc[j][i], (__m512bh)a, (__m512bh)x0);
                acc[j][i] = _mm512_dpbf16_ps(acc[j][i], (__m512bh)b, (__m512bh)x1);
            }
        }
    }
    _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) _Pragma("GCC unroll 4") for (int i = 0; i < M; i++)
        out[i * ldo + j * ostep] = tree16_512(acc[j][i]);
}

// instances: 1 or 2 consecutive weight rows x M (1-4) activation rows (the few rows a task has left after its streams)
typedef void (*DotFn)(float *, int64_t, const uint16_t *, int64_t, const uint8_t *, int64_t, int);
#define DOTRM(NR, M)                                                                                                   \
    __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512bf16"))) static void dot_vbmi_##NR##_##M(                 \
        float *out, int64_t ldo, const uint16_t *xp, int64_t ldx, const uint8_t *w, int64_t ld, int K) {               \
        dot_vbmi(out, ldo, 1, xp, ldx, w, ld, ld, K, NR, M);                                                           \
    }
DOTRM(1, 1)
DOTRM(1, 2)
DOTRM(1, 3)
DOTRM(1, 4)
DOTRM(2, 1)
DOTRM(2, 2)
DOTRM(2, 3)
DOTRM(2, 4)
static const DotFn dot_rows_fns[2][4] = {{dot_vbmi_1_1, dot_vbmi_1_2, dot_vbmi_1_3, dot_vbmi_1_4},
                                         {dot_vbmi_2_1, dot_vbmi_2_2, dot_vbmi_2_3, dot_vbmi_2_4}};

// instances: FX_NS streams for one activation row, FX_NS2 for 2-4 (the accumulators stay in registers)
typedef void (*StreamFn)(float *, int64_t, int64_t, const uint16_t *, int64_t, const uint8_t *, int64_t, int64_t, int);
#define STREAMS(NS, M)                                                                                                 \
    __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512bf16"))) static void dot_streams_##M(                     \
        float *out, int64_t ldo, int64_t ostep, const uint16_t *xp, int64_t ldx, const uint8_t *w, int64_t ld,          \
        int64_t rs, int K) {                                                                                           \
        dot_vbmi(out, ldo, ostep, xp, ldx, w, ld, rs, K, NS, M);                                                       \
    }
STREAMS(FX_NS, 1)
STREAMS(FX_NS2, 2)
STREAMS(FX_NS2, 3)
STREAMS(FX_NS2, 4)
static const StreamFn dot_streams[4] = {dot_streams_1, dot_streams_2, dot_streams_3, dot_streams_4};

// ---------------------------------------------------------------------------- AVX2 + F16C
// The lanes of the chain, 8 columns at a time: in block c (64 columns) chunk h (positions 32h .. 32h + 31) gives lane
// j the columns 16 (j / 4) + 8h + 2 (j % 4) (the even pair) and that + 1 (the odd pair), so lanes 0-7 take the even /
// odd columns of the column groups h and 2 + h (8 columns each), lanes 8-15 those of groups 4 + h and 6 + h:
// vshufps 0x88 / 0xDD of two groups' 8 values gives each half, with the lanes in the register order
// fx2_lane = 0, 1, 4, 5, 2, 3, 6, 7 (both halves alike: one permutation puts both back in chain order for the tree).
// A weight code widens to IEEE half as quant.c's FP8 kernel does (sign-extended to 16 bits, shifted left by 7, bit 14
// cleared: the value / 2^8, subnormals included) and vcvtph2ps makes it fp32; the activations are prepared times
// 2^8, so each product is the exact product of the two codes and the fmas are the chain's (no denormals, as above).
// The NaN codes 0x7f / 0xff are not NaN as halves: running byte maxima notice them and send the row to the
// converted-row path (the reference's bits).
static const int fx2_lane[8] = {0, 1, 4, 5, 2, 3, 6, 7};

// the prepared activations of fx2_rows: per block c and chunk h, 32 floats: lanes 0-7 odd, lanes 0-7 even, lanes
// 8-15 odd, lanes 8-15 even (register order), each code times 2^8 (exact)
static void fx2_prepare_row(float *dst, const float *q, int64_t Kp) {
    for (int64_t c = 0; c < Kp; c += 64)
        for (int h = 0; h < 2; h++) {
            float *o = dst + c + 32 * h;
            for (int k = 0; k < 8; k++) {
                const int j = fx2_lane[k], col = 16 * (j / 4) + 8 * h + 2 * (j % 4);
                o[k] = q[c + col + 1] * 256.0f, o[8 + k] = q[c + col] * 256.0f;             // lanes 0-7
                o[16 + k] = q[c + 32 + col + 1] * 256.0f, o[24 + k] = q[c + 32 + col] * 256.0f; // lanes 8-15
            }
        }
}

// the 16 weight codes v as halves (value / 2^8): *a = codes 0-7 as fp32, *b = codes 8-15
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
fx2_widen(__m128i v, __m256 *a, __m256 *b) {
    const __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(v), 7), _mm256_set1_epi16((short)0xbfff));
    *a = _mm256_cvtph_ps(_mm256_castsi256_si128(h)), *b = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

// fx2_widen of the 16 codes at p, and the codes' running unsigned / signed byte maxima in *mu, *ms
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
fx2_w16(const uint8_t *p, __m256 *a, __m256 *b, __m128i *mu, __m128i *ms) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    *mu = _mm_max_epu8(*mu, v), *ms = _mm_max_epi8(*ms, v);
    fx2_widen(v, a, b);
}

// out[i * ldo + j] = the chain of activation row i (fx2_prepare_row's layout, ldx apart) and weight row j (ld bytes
// apart) for NR weight rows and M activation rows (NR * M <= 4: two accumulators each); bad[j]: row j holds a NaN code
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
fx2_rows(float *out, int64_t ldo, const float *xp, int64_t ldx, const uint8_t *w, int64_t ld, int K, int *bad,
         const int NR, const int M) {
    const int64_t Kp = kp64(K);
    __m256 lo[4][4], hi[4][4]; // [NR][M]: lanes 0-7, 8-15 (register order)
    __m128i mu[4], ms[4];
    _Pragma("GCC unroll 4") for (int j = 0; j < NR; j++) {
        mu[j] = ms[j] = _mm_setzero_si128();
        _Pragma("GCC unroll 4") for (int i = 0; i < M; i++) lo[j][i] = hi[j][i] = _mm256_setzero_ps();
    }
    for (int64_t c = 0; c < Kp; c += 64) {
        __m256 g[4][8]; // [row][column group]: the block's 64 weights, 8 per group
        _Pragma("GCC unroll 4") for (int j = 0; j < NR; j++) {
            const uint8_t *p = w + j * ld + c;
            _mm_prefetch((const char *)(p + FX_PF), _MM_HINT_T0);
            if (K - c >= 64)
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) fx2_w16(p + 16 * q, &g[j][2 * q], &g[j][2 * q + 1], &mu[j], &ms[j]);
            else { // the last, partial block: its bytes, then zeros
                uint8_t t[64] = {0};
                memcpy(t, p, (size_t)(K - c));
                for (int q = 0; q < 4; q++) fx2_w16(t + 16 * q, &g[j][2 * q], &g[j][2 * q + 1], &mu[j], &ms[j]);
            }
        }
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            _Pragma("GCC unroll 4") for (int j = 0; j < NR; j++) {
                // acc[lane] = fma(w odd, x odd, acc[lane]), then the even pair
                const __m256 lodd = _mm256_shuffle_ps(g[j][h], g[j][2 + h], 0xDD), lev = _mm256_shuffle_ps(g[j][h], g[j][2 + h], 0x88);
                const __m256 hodd = _mm256_shuffle_ps(g[j][4 + h], g[j][6 + h], 0xDD), hev = _mm256_shuffle_ps(g[j][4 + h], g[j][6 + h], 0x88);
                _Pragma("GCC unroll 4") for (int i = 0; i < M; i++) {
                    const float *x = xp + i * ldx + c + 32 * h;
                    lo[j][i] = _mm256_fmadd_ps(lodd, _mm256_loadu_ps(x), lo[j][i]);
                    lo[j][i] = _mm256_fmadd_ps(lev, _mm256_loadu_ps(x + 8), lo[j][i]);
                    hi[j][i] = _mm256_fmadd_ps(hodd, _mm256_loadu_ps(x + 16), hi[j][i]);
                    hi[j][i] = _mm256_fmadd_ps(hev, _mm256_loadu_ps(x + 24), hi[j][i]);
                }
            }
        }
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < NR; j++) {
        bad[j] = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(mu[j], _mm_set1_epi8((char)0xff)),
                                                _mm_cmpeq_epi8(ms[j], _mm_set1_epi8(0x7f)))) != 0;
        // the tree over the lanes put back in chain order (fx2_lane is its own inverse)
        const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
        _Pragma("GCC unroll 4") for (int i = 0; i < M; i++)
            out[i * ldo + j] = tree16_256x2(_mm256_permutevar8x32_ps(lo[j][i], order), _mm256_permutevar8x32_ps(hi[j][i], order));
    }
}

typedef void (*Fx2Fn)(float *, int64_t, const float *, int64_t, const uint8_t *, int64_t, int, int *);
#define FX2RM(NR, M)                                                                                                   \
    __attribute__((target("avx2,fma,f16c"))) static void fx2_##NR##_##M(float *out, int64_t ldo, const float *xp,     \
                                                                      int64_t ldx, const uint8_t *w, int64_t ld, int K, \
                                                                      int *bad) {                                      \
        fx2_rows(out, ldo, xp, ldx, w, ld, K, bad, NR, M);                                                             \
    }
FX2RM(1, 1)
FX2RM(4, 1)
FX2RM(1, 2)
FX2RM(2, 2)
FX2RM(1, 3)
FX2RM(1, 4)

// ---------------------------------------------------------------------------- any path

static uint16_t *fx_wbuf;  // per-thread: FP8X_BLOCK converted weight rows, Kp each
static size_t fx_wbuf_len; // elements
#pragma omp threadprivate(fx_wbuf, fx_wbuf_len)

// the calling thread's converted-row buffer, at least `need` elements
static uint16_t *fx_rows_buf(size_t need) {
    if (fx_wbuf_len < need) {
        free(fx_wbuf);
        fx_wbuf = aligned_alloc(64, need * sizeof(uint16_t));
        if (!fx_wbuf) glm_die(EXIT_INPUT, "out of memory (FP8 weight rows)");
        fx_wbuf_len = need;
    }
    return fx_wbuf;
}

// one weight row's codes as bf16 in unpack order (zero-padded to Kp), AVX2 + F16C: 16 codes at a time through IEEE
// half (fx2_widen: the value / 2^8), times 2^8 (exact), the fp32's upper half (exact: at most 4 significant bits); the
// NaN codes get mag_bf16's 0x7fc0 and their sign. Column group g (8 codes) of a block goes to positions
// 32 (g % 2) + 8 (g / 2) (unpack order)
__attribute__((target("avx2,fma,f16c"))) static void row_bf16_avx2(uint16_t *dst, const uint8_t *row, int K) {
    const int64_t Kp = kp64(K);
    const __m256 k256 = _mm256_set1_ps(256.0f);
    for (int64_t c = 0; c < Kp; c += 64)
        for (int q = 0; q < 4; q++) { // column groups 2q, 2q + 1
            uint8_t t[16] = {0};
            const int64_t k = c + 16 * q, n = K - k;
            const uint8_t *p = row + k;
            if (n < 16) memcpy(t, p, (size_t)(n > 0 ? n : 0)), p = t;
            const __m128i bytes = _mm_loadu_si128((const __m128i *)p);
            __m256 a, b;
            fx2_widen(bytes, &a, &b);
            const __m256i ua = _mm256_srli_epi32(_mm256_castps_si256(_mm256_mul_ps(a, k256)), 16);
            const __m256i ub = _mm256_srli_epi32(_mm256_castps_si256(_mm256_mul_ps(b, k256)), 16);
            __m256i u = _mm256_permute4x64_epi64(_mm256_packus_epi32(ua, ub), 0xD8); // codes 0-15 in order
            const __m256i v = _mm256_cvtepu8_epi16(bytes);
            const __m256i nan = _mm256_cmpeq_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7f)), _mm256_set1_epi16(0x7f));
            const __m256i nb = _mm256_or_si256(_mm256_set1_epi16(0x7fc0), _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8));
            u = _mm256_blendv_epi8(u, nb, nan);
            _mm_storeu_si128((__m128i *)(dst + c + 8 * q), _mm256_castsi256_si128(u));            // group 2q
            _mm_storeu_si128((__m128i *)(dst + c + 32 + 8 * q), _mm256_extracti128_si256(u, 1)); // group 2q + 1
        }
}

// one weight row's codes as bf16 in unpack order (zero-padded to Kp)
static void row_bf16(uint16_t *dst, const uint8_t *row, int K) {
    if (cpu.avx512vbmi) {
        row_bf16_vbmi(dst, row, K);
        return;
    }
    if (cpu.avx2 && cpu.fma && cpu.f16c) {
        row_bf16_avx2(dst, row, K);
        return;
    }
    const int64_t Kp = kp64(K);
    for (int64_t c = 0; c < Kp; c += 64)
        for (int p = 0; p < 64; p++) {
            const int64_t k = c + fp8x_unpack_src(p);
            dst[c + p] = k < K ? fp8_bf16(row[k]) : 0;
        }
}

void fp8x_rows(float *y, int64_t ldy, const float *xq, int64_t ldq, const float *sx, const Tensor *W, int n, int r0,
               int r1) {
    const int K = (int)W->cols, Kp = (int)kp64(K);
    const uint8_t *w = (const uint8_t *)W->data;
    if (n <= FX_DECODE_ROWS && cpu.avx512bf16 && cpu.avx512vbmi) {
        // decode and a server's batched step (1-4 activation rows): the task's rows as FX_NS (2-4 rows: FX_NS2)
        // streams, then the fewer than that left in passes of two, each weight chunk converted once for all the rows
        const int64_t ldx = 2 * ldq; // (in uint16)
        const int ns = n == 1 ? FX_NS : FX_NS2, part = (r1 - r0) / ns;
        for (int r = r0; r < r0 + part; r++)
            dot_streams[n - 1](y + r, ldy, part, (const uint16_t *)xq, ldx, w + (int64_t)r * W->ld, W->ld,
                               (int64_t)part * W->ld, K);
        for (int r = r0 + ns * part; r < r1;) {
            const int nr = r1 - r >= 2 ? 2 : 1;
            dot_rows_fns[nr - 1][n - 1](y + r, ldy, (const uint16_t *)xq, ldx, w + (int64_t)r * W->ld, W->ld, K);
            r += nr;
        }
    } else if (n <= FX_DECODE_ROWS && fx2_ok()) {
        // decode and a server's batched step without AVX512_BF16 + VBMI: four rows per pass (2 activation rows: two;
        // 3-4: one), then one; a row holding a NaN code again through the converted row (the reference's bits)
        const float *xp = xq + bf16c_row_floats(Kp);
        static const Fx2Fn many[4] = {fx2_4_1, fx2_2_2, fx2_1_3, fx2_1_4}, one[4] = {fx2_1_1, fx2_1_2, fx2_1_3, fx2_1_4};
        const int per = n == 1 ? 4 : n == 2 ? 2 : 1;
        for (int r = r0; r < r1;) {
            const int nr = r1 - r >= per ? per : 1;
            int bad[4];
            const Fx2Fn f = nr == per ? many[n - 1] : one[n - 1];
            f(y + r, ldy, xp, ldq, w + (int64_t)r * W->ld, W->ld, K, bad);
            for (int j = 0; j < nr; j++)
                if (bad[j]) {
                    uint16_t *wb = fx_rows_buf((size_t)Kp);
                    row_bf16(wb, w + (int64_t)(r + j) * W->ld, K);
                    bf16c_block_rows(y + r + j, ldy, xq, ldq, wb, Kp, n, 1);
                }
            r += nr;
        }
    } else {
        uint16_t *wbuf = fx_rows_buf((size_t)FP8X_BLOCK * (size_t)Kp);
        for (int rb = r0; rb < r1; rb += FP8X_BLOCK) {
            const int nr = r1 - rb < FP8X_BLOCK ? r1 - rb : FP8X_BLOCK;
            for (int r = 0; r < nr; r++) row_bf16(wbuf + (size_t)r * (size_t)Kp, w + (int64_t)(rb + r) * W->ld, K);
            bf16c_block_rows(y + rb, ldy, xq, ldq, wbuf, Kp, n, nr);
        }
    }
    for (int rc = r0; rc < r1; rc += 64) { // the rows' scales 64 at a time, then each output row in turn
        const int re = rc + 64 < r1 ? rc + 64 : r1;
        float sw[64];
        for (int r = rc; r < re; r++) sw[r - rc] = quant_scale(W, r, 0);
        for (int i = 0; i < n; i++)
            for (int r = rc; r < re; r++) y[(int64_t)i * ldy + r] = y[(int64_t)i * ldy + r] * sx[i] * sw[r - rc];
    }
}

void fp8x_linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    const int64_t O = W->rows, K = W->cols, Kp = kp64(K);
    float *q = xmalloc((size_t)Kp * sizeof(float));
    for (int i = 0; i < n; i++) {
        // x' = fp8(x / sx): the codes and the scale of the row
        const float sx = quant_act_fp8_codes(q, x + i * K, (int)K);
        for (int64_t o = 0; o < O; o++) {
            const uint8_t *row = (const uint8_t *)W->data + o * W->ld;
            float acc[16] = {0};
            for (int64_t c = 0; c < Kp; c += 64)
                for (int h = 0; h < 2; h++)
                    for (int j = 0; j < 16; j++) { // lane j of chunk (c, h): positions 32h + 2j (even), + 1 (odd)
                        const int64_t k0 = c + fp8x_unpack_src(32 * h + 2 * j), k1 = c + fp8x_unpack_src(32 * h + 2 * j + 1);
                        const uint16_t w0 = k0 < K ? fp8_bf16(row[k0]) : 0, w1 = k1 < K ? fp8_bf16(row[k1]) : 0;
                        const uint16_t x0 = k0 < K ? f32_to_bf16(q[k0]) : 0, x1 = k1 < K ? f32_to_bf16(q[k1]) : 0;
                        acc[j] = bf16c_pair_step(acc[j], w0, w1, x0, x1);
                    }
            // y = (sum_k qx[k] * qw[k]) * sx * sw (+ b)
            float v = ops_tree16(acc) * sx * quant_scale(W, o, 0);
            if (b && b->data) v += tensor_get(b, o);
            y[i * O + o] = v;
        }
    }
    free(q);
}
