// SPDX-License-Identifier: MIT
// quant.c - Linear over quantised weights, as transformers computes it when it loads a compressed-tensors folder
// (compressed_tensors.compressors.{naive_quantized,pack_quantized} decompress + quantization.lifecycle.forward):
//   w = (float(q) - float(zero)) * float(scale)   (base.h, above Tensor; exact in fp32 for bf16/f16 scales)
//   y = act(x) . w^T (+ b)                          (act: the scheme's dynamic input_activations fake-quantisation)
// Kernels: quant_get (one element, the reference), quant_row (a row dequantised: vectors of quantised bytes widened
// in registers), quant_dot (the decode kernel: the same widening fused into dot_f32's 16-lane order), each for
// AVX-512, AVX2 and portable C. Because every dequantised weight is exact and the dot product follows dot_f32's
// fixed order, the three give the same bits, and batches (rows dequantised block by block into a per-thread
// buffer, never a widened copy of the whole weight) give the same bits as decode.
#include "quant.h"
#include "ggml_quants.h"
#include "quant_fp8x.h"
#include "quant_i8x.h"
#include "tree16.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int quant_act_enabled = 1;

// ---------------------------------------------------------------------------- scalars

static inline uint32_t f32_bits(float f) {
    union { float f; uint32_t u; } v = {f};
    return v.u;
}
static inline float bits_f32(uint32_t u) {
    union { uint32_t u; float f; } v = {u};
    return v.f;
}

// FP8 E4M3 (fn: no infinities; S.1111.111 is NaN): (-1)^s * 2^(e-7) * (1 + m/8), subnormal (e = 0): 2^-6 * m/8
// (normal: the fp32 with exponent e - 7 and mantissa m; subnormal: m * 2^-9, exact; the activations' fake
// quantisation calls this once per element, so no libm)
float fp8_e4m3_to_f32(uint8_t b) {
    const uint32_t s = b >> 7, e = (b >> 3) & 15, m = b & 7;
    float v;
    if (e == 15 && m == 7) v = NAN;
    else if (e == 0) v = (float)m * 0x1p-9f;
    else v = bits_f32(((e + 120) << 23) | (m << 20));
    return s ? -v : v;
}

// c10/util/Float8_e4m3fn.h fp8e4m3fn_from_fp32_value (torch's tensor.to(torch.float8_e4m3fn) on the CPU)
uint8_t fp8_e4m3_from_f32(float f) {
    // const uint32_t fp8_max = UINT32_C(1087) << 20;  (480.0f: the first value that rounds past the largest finite)
    const uint32_t fp8_max = UINT32_C(1087) << 20, denorm_mask = UINT32_C(141) << 23;
    uint32_t fb = f32_bits(f);
    const uint32_t sign = fb & UINT32_C(0x80000000);
    fb ^= sign;
    uint8_t result;
    if (fb >= fp8_max) result = 0x7f; // NaN (also for infinities and NaN inputs)
    else if (fb < (UINT32_C(121) << 23)) {
        // below 2^-6 (the smallest normal): let the fp32 adder round at the subnormal spacing
        fb = f32_bits(bits_f32(fb) + bits_f32(denorm_mask));
        result = (uint8_t)(fb - denorm_mask);
    } else {
        const uint32_t mant_odd = (fb >> 20) & 1;
        // update exponent, rounding bias part 1; part 2: + mant_odd (ties to even)
        fb += ((uint32_t)(7 - 127) << 23) + 0x7FFFF;
        fb += mant_odd;
        result = (uint8_t)(fb >> 20);
    }
    return result | (uint8_t)(sign >> 24);
}

// scale table entry i as fp32
// (the tables sit where the safetensors header puts them, at any address: read through memcpy)
static inline float scale_at(const Tensor *W, int64_t i) {
    uint16_t h;
    float f;
    switch (W->scale_dtype) {
    case DT_BF16: return memcpy(&h, (const char *)W->scale + i * 2, 2), bf16_to_f32(h);
    case DT_F16: return memcpy(&h, (const char *)W->scale + i * 2, 2), f16_to_f32(h);
    default: return memcpy(&f, (const char *)W->scale + i * 4, 4), f;
    }
}

// zero point of row r, group g (packed along the output dimension: field r of column g, minus 2^(bits-1))
static inline int zero_at(const Tensor *W, int64_t r, int64_t g) {
    if (!W->zero) return 0;
    const int bits = W->dtype == DT_Q4 ? 4 : 8;
    int32_t z;
    memcpy(&z, W->zero + (r * bits / 32) * W->scale_cols + g, sizeof z); // any address, as the scales
    const uint32_t word = (uint32_t)z;
    return (int)((word >> ((r * bits) % 32)) & ((1u << bits) - 1)) - (1 << (bits - 1));
}

// the integer (or FP8) value q of element (r, c), before the zero point and the scale
static inline float q_at(const Tensor *W, int64_t r, int64_t c) {
    const uint8_t *row = (const uint8_t *)W->data + r * W->ld;
    switch (W->dtype) {
    case DT_F8_E4M3: return fp8_e4m3_to_f32(row[c]);
    case DT_I8: return (float)(int8_t)row[c];
    case DT_Q8: return (float)((int)row[c] - 128);
    case DT_Q4: return (float)((int)((row[c / 2] >> (4 * (c & 1))) & 15) - 8);
    default: return NAN;
    }
}

float quant_scale(const Tensor *W, int64_t r, int64_t g) { return scale_at(W, (r / W->block_rows) * W->scale_cols + g); }

// w = (float(q) - float(zero)) * float(scale)
//   (compressed_tensors _dequantize: dequant = x_q.to(scale.dtype); dequant = dequant - zero_point; dequant * scale)
float quant_get(const Tensor *W, int64_t r, int64_t c) {
    if (W->dtype == DT_GGML) { // ggml blocks (GGUF): the block holding c, as ggml's dequantize_row_* computes it
        float blk[GQ_QK_K];
        const GQType *ty = gq_type(W->ggml);
        const int64_t b = c / ty->block;
        gq_dequant(W->ggml, (const uint8_t *)W->data + r * W->ld + b * ty->bytes, blk, ty->block);
        return blk[c - b * ty->block];
    }
    const int64_t g = c / W->group;
    float q = q_at(W, r, c);
    if (W->zero) q = q - (float)zero_at(W, r, g);
    return q * scale_at(W, (r / W->block_rows) * W->scale_cols + g);
}

void quant_row_naive(float *dst, const Tensor *W, int64_t r) {
    if (W->dtype == DT_GGML) { // exact: gq_dequant is ggml's definition (and the quant_get above block by block)
        gq_dequant(W->ggml, (const uint8_t *)W->data + r * W->ld, dst, W->cols);
        return;
    }
    for (int64_t c = 0; c < W->cols; c++) dst[c] = quant_get(W, r, c);
}

int quant_scale_after(const Tensor *W) { return (W->dtype == DT_I8 || W->dtype == DT_Q8) && W->group >= W->cols; }

// dequant = x_q.to(scale.dtype) - zero_point (quant_get before its product with the scale)
void quant_row_codes(float *dst, const Tensor *W, int64_t r) {
    for (int64_t c = 0; c < W->cols; c++) dst[c] = q_at(W, r, c) - (float)zero_at(W, r, 0);
}

// ---------------------------------------------------------------------------- per-thread buffers

// per-thread fp32 buffers, by slot: 0: dequantised weight rows (batches, the generic decode path); 1: one int4 row
// dequantised before its octet permutation; 2: quant_dot's activations in octet order (int4)
static float *tls_q[3];
static size_t tls_q_len[3]; // floats
#pragma omp threadprivate(tls_q, tls_q_len)

static float *tbuf(int slot, size_t n) {
    if (tls_q_len[slot] < n) {
        free(tls_q[slot]);
        tls_q[slot] = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
        if (!tls_q[slot]) glm_die(EXIT_INPUT, "out of memory (quantised weight rows)");
        tls_q_len[slot] = n;
    }
    return tls_q[slot];
}
static float *qbuf(size_t n) { return tbuf(0, n); }

// ---------------------------------------------------------------------------- vector kernels
// One pass over row r in chunks of 16 columns (the last one zero-padded), a group (one scale and zero point) at a
// time: widen the 16 quantised values to fp32 (minus the zero point), multiply by the scale (one rounding, as
// quant_get), then either store them (dst) or fma them into lane j of the accumulator (x), ending with dot_f32's
// tree (lanes j + 8, + 4, + 2, + 1). Needs groups of a multiple of 16 columns (or one group per row).

static inline int vec_ok(const Tensor *W) {
    return W->dtype != DT_GGML && (W->group >= W->cols || W->group % 16 == 0);
}

// The AVX-512 kernel works on a 16-column chunk with a few instructions per format, each weight the exact product
// float(q - zero) * scale of quant_get (the same bits as before, so decode and batches keep their order):
//   FP8: the bytes sign-extended to 16 bits and shifted left by 7 give IEEE half s.0eeee.mmm0000000 (the value / 2^8,
//        subnormals included) after clearing bit 14; vcvtph2ps widens them and one vmulps by 2^8 * scale rounds
//        float(q) * scale once (2^8 * scale is exact). NaN codes (S.1111.111) are noticed through the bytes' running
//        unsigned / signed maxima (64 bytes at a time) and send the row to the element-by-element path.
//   int8: vpmovsxbd (pack-quantized Q8 stores q + 128: one xor of the sign bit first), vcvtdq2ps, vmulps; with one
//        scale per row (FACT: quant_scale_after) no vmulps: the chain sums x * float(q - zero), and the row's scale
//        multiplies its tree once (quant.h). That takes the kernel from ~17 to ~25 GB/s per core (Zen 4, one thread,
//        1408 x 4096: bf16's memory rate there ~26), since a zmm multiply costs as much as the fma it feeds.
//   int4: the 16 values (n - 8 - zero) * scale of the group are a register table; vpermps looks the nibbles up
//        (it reads the low 4 bits of each dword: the bytes and the bytes >> 4 interleaved, widened, no masking).
// Four rows at a time share each load of x and keep four independent fma chains; one prefetch per 64-byte line.
#define QK_PF 2048 // bytes of a quantised row prefetched ahead of the read (the weights stream from memory once)
#define QK_NR 8    // most rows per decode pass
#define QK_NS 5    // decode (one activation row): weight streams of dots_512 (as ops.c's rowsm_bf16_512)
#define QK_NS2 4   // 2-4 activation rows (a server's batched step): weight streams of dots_512
#define QK_PFS 512 // dots_512: bytes prefetched ahead in each stream
#define QK_PFS2 2048 // dots_512: bytes prefetched into L2 ahead in each stream as well (as ops.c's LT_PFM2)
#define QK_LONG 2048 // rows of fewer bytes run four per pass, not eight (fewer streams: measured on the 2-vCPU VM, one
                     // thread, 4096 x 1408 weights: int8 0.49-0.53 -> 0.83-0.87, int4 0.53-0.56 -> 0.63-0.68 of bf16's
                     // bytes/s)

// software prefetch for the line at byte offset cb of NR decode streams (row[i]: each stream's current row, which its
// next row follows): QK_PFS bytes ahead, and QK_PFS2 into L2
static inline __attribute__((always_inline)) void pf_streams(const uint8_t *const *row, const int NR, int64_t cb) {
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
        _mm_prefetch((const char *)row[i] + cb + QK_PFS, _MM_HINT_T0);
        _mm_prefetch((const char *)row[i] + cb + QK_PFS2, _MM_HINT_T1);
    }
}

// copy the n (< 16) columns' bytes of a tail chunk into a zeroed 16-byte buffer (a loop: no call inside the kernels)
static inline __attribute__((always_inline)) void tail_bytes(uint8_t tmp[16], const uint8_t *p, int nbytes) {
    for (int i = 0; i < 16; i++) tmp[i] = i < nbytes ? p[i] : 0;
}

// software prefetch for the line at byte offset cb of the NR rows of a pass (row[0 .. NR), ld bytes apart): rows
// shorter than the prefetch distance get the next pass's rows as one block, one pass ahead (NR lines per line read);
// longer ones QK_PF bytes ahead in each row, or past its end in the next pass's row
static inline __attribute__((always_inline)) void pf_rows(const uint8_t *const *row, const int NR, int64_t ld, int64_t cb) {
    if (ld < QK_PF)
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _mm_prefetch((const char *)row[0] + NR * ld + cb * NR + 64 * i, _MM_HINT_T0);
    else {
        const int64_t pf = cb + QK_PF < ld ? cb + QK_PF : cb + QK_PF + (NR - 1) * ld;
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _mm_prefetch((const char *)row[i] + pf, _MM_HINT_T0);
    }
}

// per row and group: what wchunk512 needs (s: the scale (FP8: 2^8 * scale); z: the integer subtracted from q
// (zero point, + 128 for Q8 with zero points); t: the int4 table (n - 8 - zero) * scale, n = 0..15)
typedef struct {
    __m512 s, t;
    __m512i z;
} QGroup512;

// the 16 weights float(q - zero) * scale of the chunk at p (DT, ZP: zero points or not, both constants at every
// call site)
__attribute__((target("avx512f,avx512bw,avx2,f16c"))) static inline __attribute__((always_inline)) __m512
wchunk512(const DType DT, const int FACT, const int ZP, const uint8_t *p, const QGroup512 *g) {
    switch (DT) {
    case DT_F8_E4M3: {
        // w = float(q) * scale = half(q) * (2^8 * scale)
        const __m128i b = _mm_loadu_si128((const __m128i *)p);
        const __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), _mm256_set1_epi16((short)0xbfff));
        return _mm512_mul_ps(_mm512_cvtph_ps(h), g->s);
    }
    case DT_I8:
    case DT_Q8: {
        // w = (float(q) - float(zero)) * scale (FACT: float(q) - float(zero))
        const __m128i b = _mm_loadu_si128((const __m128i *)p);
        __m512i v;
        if (ZP) v = _mm512_sub_epi32(DT == DT_I8 ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b), g->z);
        else v = _mm512_cvtepi8_epi32(DT == DT_I8 ? b : _mm_xor_si128(b, _mm_set1_epi8((char)0x80)));
        return FACT ? _mm512_cvtepi32_ps(v) : _mm512_mul_ps(_mm512_cvtepi32_ps(v), g->s);
    }
    default: { // DT_Q4: 8 bytes, low nibble first; w = table[nibble]
        const __m128i b = _mm_loadl_epi64((const __m128i *)p);
        return _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b, _mm_srli_epi16(b, 4))), g->t);
    }
    }
}

// NR (1, 2, 4, 8; QK_NS) rows r + i rstep: dst != NULL: store the dequantised rows (dst + i * K); else out[m * ldo + i
// rstep] = x_m . row r + i rstep for the M (<= 4) activation rows x_m = x + m ldx, in dot_f32's order (one 16-lane fma
// chain per output, the last chunk zero-padded, then the tree; each weight chunk dequantised once for the M rows).
// FACT (int8, one scale a row): the rows' codes float(q - zero) instead, and each tree times the row's scale.
// rstep 1: consecutive rows (pf_rows); else decode streams (each row's stream goes on into row r + 1 + i rstep)
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
rows_512(float *dst, float *out, int64_t ldo, const float *x, int64_t ldx, const int M, const Tensor *W, int64_t r,
         int64_t rstep, const int NR, const DType DT, const int FACT, const int ZP) {
    const int64_t K = W->cols, G = W->group < K ? W->group : K;
    const int64_t line = DT == DT_Q4 ? 127 : 63; // columns per 64-byte line, minus 1
    const uint8_t *row[QK_NR];
    int64_t sb[QK_NR];
    __m512 acc[QK_NR][4];
    __m512i mu[QK_NR], ms[QK_NR]; // FP8: running unsigned / signed maxima of the row's bytes (NaN codes 0xff, 0x7f)
    int bad[QK_NR];
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
        row[i] = (const uint8_t *)W->data + (r + i * rstep) * W->ld;
        sb[i] = (W->block_rows == 1 ? r + i * rstep : (r + i * rstep) / W->block_rows) * W->scale_cols; // (no division per channel)
        _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) acc[i][m] = _mm512_setzero_ps();
        mu[i] = ms[i] = _mm512_setzero_si512(), bad[i] = 0;
    }
    for (int64_t g0 = 0, g = 0; g0 < K; g0 += G, g++) {
        QGroup512 q[QK_NR];
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            const float s = scale_at(W, sb[i] + g);
            const int z = ZP ? zero_at(W, r + i * rstep, g) : 0;
            if (DT == DT_F8_E4M3) {
                const float s8 = s * 256.0f;
                bad[i] |= isinf(s8) && !isinf(s); // 2^8 * scale overflows: the element-by-element path
                q[i].s = _mm512_set1_ps(s8);
            } else if (DT == DT_Q4) {
                const __m512i n = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                // (float(n - 8) - float(zero)) * scale, the value of every nibble n
                q[i].t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(n, _mm512_set1_epi32(8 + z))), _mm512_set1_ps(s));
            } else {
                q[i].s = _mm512_set1_ps(s);
                q[i].z = _mm512_set1_epi32(DT == DT_Q8 ? 128 + z : z);
            }
        }
        const int64_t ge = g0 + G < K ? g0 + G : K, full = g0 + (ge - g0) / 16 * 16;
        int64_t c = g0;
        for (; c < full; c += 16) {
            if (!(c & line)) {
                const int64_t cb = DT == DT_Q4 ? c / 2 : c; // (the line's byte offset in the row)
                if (rstep == 1) pf_rows(row, NR, W->ld, cb);
                else pf_streams(row, NR, cb);
                if (DT == DT_F8_E4M3) { // the NaN check, a line (up to the row's end) at a time
                    const __mmask64 m = K - c >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (K - c)) - 1;
                    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                        const __m512i v = _mm512_maskz_loadu_epi8(m, row[i] + c);
                        mu[i] = _mm512_max_epu8(mu[i], v), ms[i] = _mm512_max_epi8(ms[i], v);
                    }
                }
            }
            __m512 xv[4];
            _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) xv[m] = dst ? _mm512_setzero_ps() : _mm512_loadu_ps(x + m * ldx + c);
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                const __m512 w = wchunk512(DT, FACT, ZP, DT == DT_Q4 ? row[i] + c / 2 : row[i] + c, &q[i]);
                if (dst) _mm512_storeu_ps(dst + i * K + c, w);
                else _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) acc[i][m] = _mm512_fmadd_ps(xv[m], w, acc[i][m]);
            }
        }
        if (c < ge) { // the last, partial chunk: zero-padded weights and activations
            const int n = (int)(ge - c);
            const __mmask16 mk = (__mmask16)((1u << n) - 1);
            __m512 xv[4];
            _Pragma("GCC unroll 4") for (int m = 0; m < M; m++)
                xv[m] = dst ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mk, x + m * ldx + c);
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                uint8_t tmp[16];
                tail_bytes(tmp, DT == DT_Q4 ? row[i] + c / 2 : row[i] + c, DT == DT_Q4 ? (n + 1) / 2 : n);
                if (DT == DT_F8_E4M3) { // (a line starting here was not checked above)
                    const __m512i v = _mm512_zextsi128_si512(_mm_loadu_si128((const __m128i *)tmp));
                    mu[i] = _mm512_max_epu8(mu[i], v), ms[i] = _mm512_max_epi8(ms[i], v);
                }
                const __m512 w = _mm512_maskz_mov_ps(mk, wchunk512(DT, FACT, ZP, tmp, &q[i]));
                if (dst) _mm512_mask_storeu_ps(dst + i * K + c, mk, w);
                else _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) acc[i][m] = _mm512_fmadd_ps(xv[m], w, acc[i][m]);
            }
        }
    }
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
        if (DT == DT_F8_E4M3) // a NaN code (0x7f: the signed maximum; 0xff: the unsigned one) in the row
            bad[i] |= (_mm512_cmpeq_epi8_mask(mu[i], _mm512_set1_epi8((char)0xff)) |
                       _mm512_cmpeq_epi8_mask(ms[i], _mm512_set1_epi8(0x7f))) != 0;
        if (bad[i]) { // the element-by-element path (the reference's bits)
            float *w = dst ? dst + i * K : qbuf((size_t)K);
            quant_row_naive(w, W, r + i * rstep);
            if (!dst)
                for (int m = 0; m < M; m++) out[m * ldo + i * rstep] = dot_f32(x + m * ldx, w, (int)K);
        } else if (!dst) {
            // (FACT) y = dot_f32(x, float(q - zero)) * scale
            const float s = FACT ? scale_at(W, sb[i]) : 1.0f;
            _Pragma("GCC unroll 4") for (int m = 0; m < M; m++)
                out[m * ldo + i * rstep] = FACT ? tree16_512(acc[i][m]) * s : tree16_512(acc[i][m]);
        }
    }
}

// call(..., DT, FACT) for W's type (FACT: the int8 row-scale kernels where `fact`, a variable at the call site, says so)
#define DISPATCH_DT(call, ...)                                                                                         \
    switch (W->dtype) {                                                                                                \
    case DT_F8_E4M3: call(__VA_ARGS__, DT_F8_E4M3, 0); break;                                                          \
    case DT_I8: fact ? call(__VA_ARGS__, DT_I8, 1) : call(__VA_ARGS__, DT_I8, 0); break;                               \
    case DT_Q8: fact ? call(__VA_ARGS__, DT_Q8, 1) : call(__VA_ARGS__, DT_Q8, 0); break;                               \
    default: call(__VA_ARGS__, DT_Q4, 0);                                                                              \
    }
#define ROWS512_ZP(...) (W->zero ? rows_512(__VA_ARGS__, 1) : rows_512(__VA_ARGS__, 0))

// row r stored (fact: its codes float(q - zero), for the batches of a row-scale int8 weight; else dequantised)
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void row_store_512(float *dst, const Tensor *W, int64_t r, int fact) {
    DISPATCH_DT(ROWS512_ZP, dst, NULL, 0, NULL, 0, 1, W, r, 1, 1)
}
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void dot1_512(float *out, const float *x, const Tensor *W, int64_t r) {
    const int fact = quant_scale_after(W);
    DISPATCH_DT(ROWS512_ZP, NULL, out, 0, x, 0, 1, W, r, 1, 1)
}
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void dot2_512(float *out, const float *x, const Tensor *W, int64_t r) {
    const int fact = quant_scale_after(W);
    DISPATCH_DT(ROWS512_ZP, NULL, out, 0, x, 0, 1, W, r, 1, 2)
}
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void dot4_512(float *out, const float *x, const Tensor *W, int64_t r) {
    const int fact = quant_scale_after(W);
    DISPATCH_DT(ROWS512_ZP, NULL, out, 0, x, 0, 1, W, r, 1, 4)
}
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void dot8_512(float *out, const float *x, const Tensor *W, int64_t r) {
    const int fact = quant_scale_after(W);
    DISPATCH_DT(ROWS512_ZP, NULL, out, 0, x, 0, 1, W, r, 1, 8)
}
// decode streams: out[m * ldo + i step] = x_m . row r + i step, i < QK_NS (one activation row) or QK_NS2 (2-4 rows: m < M)
#define DOTS512(M, NS)                                                                                                 \
    __attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void dots_512_##M(                                \
        float *out, int64_t ldo, const float *x, int64_t ldx, const Tensor *W, int64_t r, int64_t step) {              \
        const int fact = quant_scale_after(W);                                                                         \
        DISPATCH_DT(ROWS512_ZP, NULL, out, ldo, x, ldx, M, W, r, step, NS)                                             \
    }
DOTS512(1, QK_NS)
DOTS512(2, QK_NS2)
DOTS512(3, QK_NS2)
DOTS512(4, QK_NS2)
typedef void (*DotsFn)(float *, int64_t, const float *, int64_t, const Tensor *, int64_t, int64_t);
static const DotsFn dots_512[4] = {dots_512_1, dots_512_2, dots_512_3, dots_512_4};

// ---------------------------------------------------------------------------- int4 in octet order
// int4 weights are summed in "octet order": K zero-padded to a multiple of 128; in block c of 128 columns lane k
// (0..15) accumulates fma(w[128c+8k+j], x[128c+8k+j]) for j = 0..7 in turn, then the tree. That is
// dot_f32(quant_permute_octets(x), quant_permute_octets(row)), the definition every path below computes (decode,
// batches, AVX-512, AVX2 and portable C). The reason is the layout: a 64-byte line of int4 weights read as 16 dwords
// holds in dword k exactly the 8 weights of lane k (nibble j = column 128c+8k+j), so vpsrld by 4j and vpermps (which
// reads the low 4 bits of each dword) look the group's weight table up with no byte shuffle at all: per 16 weights
// one shift, one vpermps and the fma. The activations are permuted once per Linear (quant_linear_batch), the weights
// never.

void quant_permute_octets(float *xo, const float *x, int64_t K) {
    const int64_t Kp = (K + 127) & ~(int64_t)127;
    for (int64_t c = 0; c < Kp; c += 128)
        for (int j = 0; j < 8; j++)
            for (int k = 0; k < 16; k++) {
                const int64_t s = c + 8 * k + j;
                xo[c + 16 * j + k] = s < K ? x[s] : 0.0f;
            }
}

// the AVX-512 kernel's groups: whole multiples of 128 columns (one table a block), one group a row, or 32 / 64
// columns (a scale and zero point per lane: lanes 4 or 8 at a time share a group)
static inline int q4_fast(const Tensor *W) {
    return W->dtype == DT_Q4 && (W->group >= W->cols || W->group % 128 == 0 || W->group == 32 || W->group == 64);
}

// the 8 x 16 weights of one 128-column block of NR rows (v[i]: its 64 bytes as 16 dwords): lookups of the table t[i]
// (LANES: (float(n) - zv) * sv per lane), masked to the lanes in mk[j] (FULL: all), then stored (dst) or fma'd into
// acc[i][m] against xo_m (xb + m ldx + 16 j)
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
q4o_block512(__m512 acc[][4], float *dst, int64_t ldd, const __m512i *v, const __m512 *t, const __m512 *sv,
             const __m512 *zv, const float *xb, int64_t ldx, const int M, const int NR, const int LANES, const int FULL,
             const __mmask16 *mk) {
    const __m512 nibf = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
        __m512 xv[4];
        _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) xv[m] = dst ? _mm512_setzero_ps() : _mm512_loadu_ps(xb + m * ldx + 16 * j);
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            const __m512i q = j ? _mm512_srli_epi32(v[i], 4 * j) : v[i];
            __m512 w;
            if (LANES) w = _mm512_mul_ps(_mm512_sub_ps(_mm512_permutexvar_ps(q, nibf), zv[i]), sv[i]);
            else w = _mm512_permutexvar_ps(q, t[i]);
            if (!FULL) w = _mm512_maskz_mov_ps(mk[j], w);
            if (dst) _mm512_storeu_ps(dst + i * ldd + 16 * j, w);
            else _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) acc[i][m] = _mm512_fmadd_ps(xv[m], w, acc[i][m]);
        }
    }
}

// NR (1, 2, 4, 8; QK_NS) int4 rows r + i rstep in octet order: dst != NULL: store the dequantised rows octet-permuted
// (dst + i * Kp, zero-padded); else out[m * ldo + i rstep] = xo_m . row r + i rstep for the M (<= 4) activation rows
// xo_m = xo + m ldx (octet-permuted, Kp each; each weight chunk looked up once for them); rstep 1: consecutive rows
// (pf_rows), else decode streams (as rows_512). LANES: groups of 32 / 64 columns (a scale and zero point per lane).
// The whole 128-column blocks run without a branch; the last, partial one masked.
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
q4o_512(float *dst, float *out, int64_t ldo, const float *xo, int64_t ldx, const int M, const Tensor *W, int64_t r,
        int64_t rstep, const int NR, const int ZP, const int LANES) {
    const int64_t K = W->cols, Kp = (K + 127) & ~(int64_t)127, G = W->group < K ? W->group : K;
    const __m512i nib = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const uint8_t *row[QK_NR];
    int64_t sb[QK_NR];
    __m512 acc[QK_NR][4], t[QK_NR], sv[QK_NR], zv[QK_NR];
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
        row[i] = (const uint8_t *)W->data + (r + i * rstep) * W->ld;
        sb[i] = (W->block_rows == 1 ? r + i * rstep : (r + i * rstep) / W->block_rows) * W->scale_cols;
        t[i] = sv[i] = zv[i] = _mm512_setzero_ps();
        _Pragma("GCC unroll 4") for (int m = 0; m < M; m++) acc[i][m] = _mm512_setzero_ps();
    }
    int64_t gnext = 0; // (!LANES) the column where the next group starts
    for (int64_t c = 0; c < K; c += 128) {
        if (LANES) // lane k: group (c + 8k) / G; w = (float(n) - float(8 + zero)) * scale
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                float s[16], z[16];
                for (int k = 0; k < 16; k++) {
                    const int64_t g = (c + 8 * k) / G;
                    s[k] = scale_at(W, sb[i] + g < sb[i] + W->scale_cols ? sb[i] + g : sb[i]);
                    z[k] = (float)(8 + (ZP && g < W->scale_cols ? zero_at(W, r + i * rstep, g) : 0));
                }
                sv[i] = _mm512_loadu_ps(s), zv[i] = _mm512_loadu_ps(z);
            }
        else if (c == gnext) { // a new group: the table (float(n - 8) - float(zero)) * scale of its 16 nibbles n
            const int64_t g = c / G;
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                const int z = ZP ? zero_at(W, r + i * rstep, g) : 0;
                t[i] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(nib, _mm512_set1_epi32(8 + z))),
                                     _mm512_set1_ps(scale_at(W, sb[i] + g)));
            }
            gnext += G;
        }
        const int64_t cb = c / 2; // the block's 64 bytes
        if (rstep == 1) pf_rows(row, NR, W->ld, cb);
        else pf_streams(row, NR, cb);
        __m512i v[QK_NR];
        if (K - c >= 128) {
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) v[i] = _mm512_loadu_si512((const void *)(row[i] + cb));
            q4o_block512(acc, dst ? dst + c : NULL, Kp, v, t, sv, zv, xo + c, ldx, M, NR, LANES, 1, NULL);
        } else { // the last, partial block: its bytes only; weights past the row are zero
            const int64_t n = K - c; // columns in this block
            const __mmask64 mb = ((__mmask64)1 << ((n + 1) / 2)) - 1;
            __mmask16 mk[8]; // lanes k with column 8k + j inside the row
            for (int j = 0; j < 8; j++)
                mk[j] = _mm512_cmplt_epi32_mask(_mm512_add_epi32(_mm512_slli_epi32(nib, 3), _mm512_set1_epi32(j)), _mm512_set1_epi32((int)n));
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) v[i] = _mm512_maskz_loadu_epi8(mb, row[i] + cb);
            q4o_block512(acc, dst ? dst + c : NULL, Kp, v, t, sv, zv, xo + c, ldx, M, NR, LANES, 0, mk);
        }
    }
    if (!dst) // (dst: the masked last block wrote the zero padding up to Kp)
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) _Pragma("GCC unroll 4") for (int m = 0; m < M; m++)
            out[m * ldo + i * rstep] = tree16_512(acc[i][m]);
}

#define Q4O_ZP(...)                                                                                                    \
    (W->zero ? (W->group < 128 && W->group < W->cols ? q4o_512(__VA_ARGS__, 1, 1) : q4o_512(__VA_ARGS__, 1, 0))        \
             : (W->group < 128 && W->group < W->cols ? q4o_512(__VA_ARGS__, 0, 1) : q4o_512(__VA_ARGS__, 0, 0)))
// (xo: never read when storing; dst, a Kp-float buffer, keeps the block offsets xo + c defined pointers)
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void q4o_store_512(float *dst, const Tensor *W, int64_t r) {
    Q4O_ZP(dst, NULL, 0, dst, 0, 1, W, r, 1, 1);
}
// nr (1, 2, 4, 8) consecutive rows: one function each (their four variants are large inlined bodies)
#define Q4ODOT(NR)                                                                                                     \
    __attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void q4o_dot_512_##NR(                            \
        float *out, const float *xo, const Tensor *W, int64_t r) {                                                     \
        Q4O_ZP(NULL, out, 0, xo, 0, 1, W, r, 1, NR);                                                                   \
    }
Q4ODOT(1)
Q4ODOT(2)
Q4ODOT(4)
Q4ODOT(8)
static void q4o_dot_512(float *out, const float *xo, const Tensor *W, int64_t r, int nr) {
    (nr == 8 ? q4o_dot_512_8 : nr == 4 ? q4o_dot_512_4 : nr == 2 ? q4o_dot_512_2 : q4o_dot_512_1)(out, xo, W, r);
}

// decode streams: out[m * ldo + i step] = xo_m . row r + i step, i < QK_NS (one activation row) or QK_NS2 (2-4)
#define Q4ODOTS(M, NS)                                                                                                 \
    __attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void q4o_dots_512_##M(                            \
        float *out, int64_t ldo, const float *xo, int64_t ldx, const Tensor *W, int64_t r, int64_t step) {             \
        Q4O_ZP(NULL, out, ldo, xo, ldx, M, W, r, step, NS);                                                            \
    }
Q4ODOTS(1, QK_NS)
Q4ODOTS(2, QK_NS2)
Q4ODOTS(3, QK_NS2)
Q4ODOTS(4, QK_NS2)
static const DotsFn q4o_dots_512[4] = {q4o_dots_512_1, q4o_dots_512_2, q4o_dots_512_3, q4o_dots_512_4};


// 16 quantised values at p minus the zero point zi, as fp32 (exact): lanes 0-7 in *lo, 8-15 in *hi
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
dec_avx2(DType dt, const uint8_t *p, int zi, __m256 *lo, __m256 *hi) {
    __m256i v0, v1;
    switch (dt) {
    case DT_F8_E4M3: { // through IEEE half (F16C), then times 2^8 (NaN codes: rows_avx2 falls back per row)
        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
        const __m256i mag = _mm256_and_si256(v, _mm256_set1_epi16(0x7f));
        __m256i h = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8));
        const __m256 k = _mm256_set1_ps(256.0f);
        *lo = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), k);
        *hi = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), k);
        return;
    }
    case DT_I8: {
        const __m128i b = _mm_loadu_si128((const __m128i *)p);
        v0 = _mm256_cvtepi8_epi32(b), v1 = _mm256_cvtepi8_epi32(_mm_srli_si128(b, 8));
        break;
    }
    case DT_Q8: {
        const __m128i b = _mm_loadu_si128((const __m128i *)p);
        v0 = _mm256_cvtepu8_epi32(b), v1 = _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8));
        zi += 128;
        break;
    }
    default: { // DT_Q4: 8 bytes, low nibble first
        const __m128i b = _mm_loadl_epi64((const __m128i *)p), m4 = _mm_set1_epi8(15);
        const __m128i n = _mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4));
        v0 = _mm256_cvtepu8_epi32(n), v1 = _mm256_cvtepu8_epi32(_mm_srli_si128(n, 8));
        zi += 8;
    }
    }
    const __m256i z = _mm256_set1_epi32(zi);
    *lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(v0, z));
    *hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(v1, z));
}

// rows_512 with AVX2 (the former widening: integer subtraction of the zero point, vcvtdq2ps, vmulps): lanes 0-7 and 8-15 of dot_f32's accumulator in two registers
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
rows_avx2(float *dst, float *out, const float *x, const Tensor *W, int64_t r, const int NR, const DType DT, const int FACT) {
    const int64_t K = W->cols, G = W->group < K ? W->group : K;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const uint8_t *row[QK_NR];
    int64_t sb[QK_NR];
    __m256 alo[QK_NR], ahi[QK_NR];
    __m128i mu[QK_NR], ms[QK_NR]; // FP8: running unsigned / signed byte maxima (NaN codes: rows_512)
    _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++) {
        mu[i] = ms[i] = _mm_setzero_si128();
        row[i] = (const uint8_t *)W->data + (r + i) * W->ld;
        sb[i] = ((r + i) / W->block_rows) * W->scale_cols;
        alo[i] = ahi[i] = _mm256_setzero_ps();
    }
    for (int64_t g0 = 0, g = 0; g0 < K; g0 += G, g++) {
        __m256 sv[QK_NR];
        int zi[QK_NR];
        _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++) sv[i] = _mm256_set1_ps(scale_at(W, sb[i] + g)), zi[i] = zero_at(W, r + i, g);
        const int64_t ge = g0 + G < K ? g0 + G : K, full = g0 + (ge - g0) / 16 * 16;
        int64_t c = g0;
        for (; c < full; c += 16) {
            const __m256 xl = dst ? _mm256_setzero_ps() : _mm256_loadu_ps(x + c);
            const __m256 xh = dst ? _mm256_setzero_ps() : _mm256_loadu_ps(x + c + 8);
            if (!(c & (DT == DT_Q4 ? 127 : 63))) pf_rows(row, NR, W->ld, DT == DT_Q4 ? c / 2 : c); // a line at a time
            _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++) {
                __m256 wl, wh;
                if (DT == DT_F8_E4M3) {
                    const __m128i b = _mm_loadu_si128((const __m128i *)(row[i] + c));
                    mu[i] = _mm_max_epu8(mu[i], b), ms[i] = _mm_max_epi8(ms[i], b);
                }
                dec_avx2(DT, DT == DT_Q4 ? row[i] + c / 2 : row[i] + c, zi[i], &wl, &wh);
                if (!FACT) wl = _mm256_mul_ps(wl, sv[i]), wh = _mm256_mul_ps(wh, sv[i]);
                if (dst) _mm256_storeu_ps(dst + i * K + c, wl), _mm256_storeu_ps(dst + i * K + c + 8, wh);
                else alo[i] = _mm256_fmadd_ps(xl, wl, alo[i]), ahi[i] = _mm256_fmadd_ps(xh, wh, ahi[i]);
            }
        }
        if (c < ge) {
            const int n = (int)(ge - c);
            const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
            const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), idx);
            const __m256 xl = dst ? _mm256_setzero_ps() : _mm256_maskload_ps(x + c, m0);
            const __m256 xh = dst ? _mm256_setzero_ps() : _mm256_maskload_ps(x + c + 8, m1);
            _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++) {
                uint8_t tmp[16];
                tail_bytes(tmp, DT == DT_Q4 ? row[i] + c / 2 : row[i] + c, DT == DT_Q4 ? (n + 1) / 2 : n);
                __m256 wl, wh;
                if (DT == DT_F8_E4M3) {
                    const __m128i b = _mm_loadu_si128((const __m128i *)tmp);
                    mu[i] = _mm_max_epu8(mu[i], b), ms[i] = _mm_max_epi8(ms[i], b);
                }
                dec_avx2(DT, tmp, zi[i], &wl, &wh);
                if (!FACT) wl = _mm256_mul_ps(wl, sv[i]), wh = _mm256_mul_ps(wh, sv[i]);
                wl = _mm256_and_ps(wl, _mm256_castsi256_ps(m0)), wh = _mm256_and_ps(wh, _mm256_castsi256_ps(m1));
                if (dst) _mm256_maskstore_ps(dst + i * K + c, m0, wl), _mm256_maskstore_ps(dst + i * K + c + 8, m1, wh);
                else alo[i] = _mm256_fmadd_ps(xl, wl, alo[i]), ahi[i] = _mm256_fmadd_ps(xh, wh, ahi[i]);
            }
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < NR; i++) {
        if (DT == DT_F8_E4M3 && _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(mu[i], _mm_set1_epi8((char)0xff)),
                                                               _mm_cmpeq_epi8(ms[i], _mm_set1_epi8(0x7f))))) {
            float *w = dst ? dst + i * K : qbuf((size_t)K); // a NaN code: the reference's bits
            quant_row_naive(w, W, r + i);
            if (!dst) out[i] = dot_f32(x, w, (int)K);
        } else if (!dst)
            out[i] = FACT ? tree16_256x2(alo[i], ahi[i]) * scale_at(W, sb[i]) : tree16_256x2(alo[i], ahi[i]);
    }
}

__attribute__((target("avx2,fma,f16c"))) static void row_store_avx2(float *dst, const Tensor *W, int64_t r, int fact) {
    DISPATCH_DT(rows_avx2, dst, NULL, NULL, W, r, 1)
}
__attribute__((target("avx2,fma,f16c"))) static void dot1_avx2(float *out, const float *x, const Tensor *W, int64_t r) {
    const int fact = quant_scale_after(W);
    DISPATCH_DT(rows_avx2, NULL, out, x, W, r, 1)
}
__attribute__((target("avx2,fma,f16c"))) static void dot2_avx2(float *out, const float *x, const Tensor *W, int64_t r) {
    const int fact = quant_scale_after(W);
    DISPATCH_DT(rows_avx2, NULL, out, x, W, r, 2)
}
__attribute__((target("avx2,fma,f16c"))) static void dot4_avx2(float *out, const float *x, const Tensor *W, int64_t r) {
    const int fact = quant_scale_after(W);
    DISPATCH_DT(rows_avx2, NULL, out, x, W, r, 4)
}

// q4o_512 with AVX2 (no 16-entry permute): the nibbles masked and converted, w = (float(n) - float(8 + zero)) * scale
// with a scale and zero point per lane (the same exact product, so the same bits); lanes 0-7 and 8-15 of the
// accumulator in two registers, the 64 bytes of a block as two halves
__attribute__((target("avx2,fma,f16c"))) static inline __attribute__((always_inline)) void
q4o_avx2(float *dst, float *out, const float *xo, const Tensor *W, int64_t r, const int NR, const int ZP) {
    const int64_t K = W->cols, Kp = (K + 127) & ~(int64_t)127, G = W->group < K ? W->group : K;
    const __m256i kx8 = _mm256_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56), m15 = _mm256_set1_epi32(15);
    const uint8_t *row[QK_NR];
    int64_t sb[QK_NR];
    __m256 alo[QK_NR], ahi[QK_NR], slo[QK_NR], shi[QK_NR], zlo[QK_NR], zhi[QK_NR];
    _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
        row[i] = (const uint8_t *)W->data + (r + i) * W->ld;
        sb[i] = (W->block_rows == 1 ? r + i : (r + i) / W->block_rows) * W->scale_cols;
        alo[i] = ahi[i] = slo[i] = shi[i] = zlo[i] = zhi[i] = _mm256_setzero_ps();
    }
    for (int64_t c = 0; c < K; c += 128) {
        if (G >= 128 && c % G == 0) // a new group: one scale and zero point for every lane
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                const int64_t g = c / G;
                slo[i] = shi[i] = _mm256_set1_ps(scale_at(W, sb[i] + g));
                zlo[i] = zhi[i] = _mm256_set1_ps((float)(8 + (ZP ? zero_at(W, r + i, g) : 0)));
            }
        else if (G < 128) // lane k: group (c + 8k) / G
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                float s[16], z[16];
                for (int k = 0; k < 16; k++) {
                    const int64_t g = (c + 8 * k) / G < W->scale_cols ? (c + 8 * k) / G : W->scale_cols - 1;
                    s[k] = scale_at(W, sb[i] + g), z[k] = (float)(8 + (ZP ? zero_at(W, r + i, g) : 0));
                }
                slo[i] = _mm256_loadu_ps(s), shi[i] = _mm256_loadu_ps(s + 8);
                zlo[i] = _mm256_loadu_ps(z), zhi[i] = _mm256_loadu_ps(z + 8);
            }
        const int64_t cb = c / 2, n = K - c < 128 ? K - c : 128;
        pf_rows(row, NR, W->ld, cb);
        __m256i vlo[QK_NR], vhi[QK_NR];
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
            if (n == 128) {
                vlo[i] = _mm256_loadu_si256((const __m256i *)(row[i] + cb));
                vhi[i] = _mm256_loadu_si256((const __m256i *)(row[i] + cb + 32));
            } else { // the last, partial block: its bytes only (zero-padded); weights past the row are zero
                uint8_t tmp[64];
                for (int b = 0; b < 64; b++) tmp[b] = b < (n + 1) / 2 ? row[i][cb + b] : 0;
                vlo[i] = _mm256_loadu_si256((const __m256i *)tmp), vhi[i] = _mm256_loadu_si256((const __m256i *)(tmp + 32));
            }
        }
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) {
            // lanes k with column 8k + j inside the row
            const __m256i jv = _mm256_set1_epi32(j), nv = _mm256_set1_epi32((int)n);
            const __m256 mlo = _mm256_castsi256_ps(_mm256_cmpgt_epi32(nv, _mm256_add_epi32(kx8, jv)));
            const __m256 mhi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(nv, _mm256_add_epi32(_mm256_add_epi32(kx8, _mm256_set1_epi32(64)), jv)));
            const __m256 xl = dst ? _mm256_setzero_ps() : _mm256_loadu_ps(xo + c + 16 * j);
            const __m256 xh = dst ? _mm256_setzero_ps() : _mm256_loadu_ps(xo + c + 16 * j + 8);
            _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) {
                const __m256i ql = _mm256_and_si256(_mm256_srli_epi32(vlo[i], 4 * j), m15);
                const __m256i qh = _mm256_and_si256(_mm256_srli_epi32(vhi[i], 4 * j), m15);
                __m256 wl = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(ql), zlo[i]), slo[i]);
                __m256 wh = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(qh), zhi[i]), shi[i]);
                if (n < 128) wl = _mm256_and_ps(wl, mlo), wh = _mm256_and_ps(wh, mhi);
                if (dst) _mm256_storeu_ps(dst + i * Kp + c + 16 * j, wl), _mm256_storeu_ps(dst + i * Kp + c + 16 * j + 8, wh);
                else alo[i] = _mm256_fmadd_ps(xl, wl, alo[i]), ahi[i] = _mm256_fmadd_ps(xh, wh, ahi[i]);
            }
        }
    }
    if (!dst)
        _Pragma("GCC unroll 8") for (int i = 0; i < NR; i++) out[i] = tree16_256x2(alo[i], ahi[i]);
}

#define Q4O_AVX2_ZP(...) (W->zero ? q4o_avx2(__VA_ARGS__, 1) : q4o_avx2(__VA_ARGS__, 0))
__attribute__((target("avx2,fma,f16c"))) static void q4o_store_avx2(float *dst, const Tensor *W, int64_t r) {
    Q4O_AVX2_ZP(dst, NULL, NULL, W, r, 1);
}
__attribute__((target("avx2,fma,f16c"))) static void q4o_dot_avx2(float *out, const float *xo, const Tensor *W, int64_t r, int nr) {
    switch (nr) {
    case 8: Q4O_AVX2_ZP(NULL, out, xo, W, r, 8); break;
    case 4: Q4O_AVX2_ZP(NULL, out, xo, W, r, 4); break;
    case 2: Q4O_AVX2_ZP(NULL, out, xo, W, r, 2); break;
    default: Q4O_AVX2_ZP(NULL, out, xo, W, r, 1);
    }
}

// row r of an int4 W dequantised in octet order into dst[Kp] (zero-padded): the AVX-512 or AVX2 kernel, else
// quant_row and quant_permute_octets (the same bits: all exact)
static void q4_row_octets(float *dst, const Tensor *W, int64_t r) {
    if (q4_fast(W) && cpu.avx512f && cpu.f16c) q4o_store_512(dst, W, r);
    else if (q4_fast(W) && cpu.avx2 && cpu.f16c) q4o_store_avx2(dst, W, r);
    else {
        float *t = tbuf(1, (size_t)W->cols);
        quant_row(t, W, r);
        quant_permute_octets(dst, t, W->cols);
    }
}

// out[0 .. nr) = xo . rows r .. r + nr of an int4 W in octet order (xo: octet-permuted activations)
static void q4_dot_octets(float *out, const float *xo, const Tensor *W, int64_t r, int nr) {
    if (q4_fast(W) && cpu.avx512f && cpu.f16c) q4o_dot_512(out, xo, W, r, nr);
    else if (q4_fast(W) && cpu.avx2 && cpu.f16c) q4o_dot_avx2(out, xo, W, r, nr);
    else {
        const int Kp = (int)((W->cols + 127) & ~(int64_t)127);
        float *w = qbuf((size_t)Kp);
        for (int i = 0; i < nr; i++) q4_row_octets(w, W, r + i), out[i] = dot_f32(xo, w, Kp);
    }
}

void quant_row(float *dst, const Tensor *W, int64_t r) {
    if (W->dtype == DT_GGML) quant_row_naive(dst, W, r); // (ggml_quants.c's dequantisation is its only one)
    else if (vec_ok(W) && cpu.avx512f && cpu.f16c) row_store_512(dst, W, r, 0);
    else if (vec_ok(W) && cpu.avx2 && cpu.f16c) row_store_avx2(dst, W, r, 0);
    else quant_row_naive(dst, W, r);
}

// row r of a row-scale int8 W (quant_scale_after) as its codes float(q - zero): quant_row_codes' bits, read as vectors
static void row_codes(float *dst, const Tensor *W, int64_t r) {
    if (cpu.avx512f && cpu.f16c) row_store_512(dst, W, r, 1);
    else if (cpu.avx2 && cpu.f16c) row_store_avx2(dst, W, r, 1);
    else quant_row_codes(dst, W, r);
}

float quant_dot(const float *x, const Tensor *W, int64_t r) {
    float out;
    if (W->dtype == DT_Q4) { // octet order
        float *xo = tbuf(2, (size_t)((W->cols + 127) & ~(int64_t)127));
        quant_permute_octets(xo, x, W->cols);
        q4_dot_octets(&out, xo, W, r, 1);
    } else if (W->dtype == DT_GGML) // ggml blocks read directly (ggml_quants.c: dot_f32's order over the dequantised row)
        gq_matvec_serial(W->ggml, (const uint8_t *)W->data + r * W->ld, (size_t)W->ld, 1, W->cols, x, &out);
    else if (vec_ok(W) && cpu.avx512f && cpu.f16c) dot1_512(&out, x, W, r);
    else if (vec_ok(W) && cpu.avx2 && cpu.f16c) dot1_avx2(&out, x, W, r);
    else if (quant_scale_after(W)) { // y = dot_f32(x, float(q - zero)) * scale
        float *w = qbuf((size_t)W->cols);
        quant_row_codes(w, W, r);
        out = dot_f32(x, w, (int)W->cols) * quant_scale(W, r, 0);
    } else {
        float *w = qbuf((size_t)W->cols);
        quant_row_naive(w, W, r);
        out = dot_f32(x, w, (int)W->cols);
    }
    return out;
}

// out[0..1] = x . rows r and r + 1 (the bits of two quant_dot calls; one read of x for both)
static void quant_dot2(float *out, const float *x, const Tensor *W, int64_t r) {
    if (W->dtype == DT_GGML) gq_matvec_serial(W->ggml, (const uint8_t *)W->data + r * W->ld, (size_t)W->ld, 2, W->cols, x, out);
    else if (vec_ok(W) && cpu.avx512f && cpu.f16c) dot2_512(out, x, W, r);
    else if (vec_ok(W) && cpu.avx2 && cpu.f16c) dot2_avx2(out, x, W, r);
    else out[0] = quant_dot(x, W, r), out[1] = quant_dot(x, W, r + 1);
}

// out[0..7] = x . rows r .. r + 7 (AVX-512: eight chains; else two quant_dot4)
static void quant_dot8(float *out, const float *x, const Tensor *W, int64_t r);

// out[0..3] = x . rows r .. r + 3 (the bits of four quant_dot calls: four independent chains, one read of x)
static void quant_dot4(float *out, const float *x, const Tensor *W, int64_t r) {
    if (W->dtype == DT_GGML) gq_matvec_serial(W->ggml, (const uint8_t *)W->data + r * W->ld, (size_t)W->ld, 4, W->cols, x, out);
    else if (vec_ok(W) && cpu.avx512f && cpu.f16c) dot4_512(out, x, W, r);
    else if (vec_ok(W) && cpu.avx2 && cpu.f16c) dot4_avx2(out, x, W, r);
    else quant_dot2(out, x, W, r), quant_dot2(out + 2, x, W, r + 2);
}

static void quant_dot8(float *out, const float *x, const Tensor *W, int64_t r) {
    if (W->dtype != DT_GGML && vec_ok(W) && cpu.avx512f && cpu.f16c) dot8_512(out, x, W, r);
    else quant_dot4(out, x, W, r), quant_dot4(out + 4, x, W, r + 4);
}

// y[i][j] (i < mr, j < nr, both <= 4) = x_i . w_j over K (rows of x and w with strides ldx, ldw), in dot_f32's
// order: each output one 16-lane fma chain over the chunks (the last one masked: zero-padded), then its tree. The
// 4 x 4 register tile reads 8 vectors per 16 fmas; rows past mr / nr repeat the last one and are not stored
__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))) static void tile4x4_512(float *y, int64_t ldy, const float *x,
                                                                               int64_t ldx, const float *w, int64_t ldw,
                                                                               int K, int mr, int nr) {
    const float *xr[4], *wr[4];
    for (int i = 0; i < 4; i++) xr[i] = x + (i < mr ? i : mr - 1) * ldx, wr[i] = w + (i < nr ? i : nr - 1) * ldw;
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) wv[j] = _mm512_loadu_ps(wr[j] + k);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const __m512 xv = _mm512_loadu_ps(xr[i] + k);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    if (k < K) {
        const __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) wv[j] = _mm512_maskz_loadu_ps(m, wr[j] + k);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, xr[i] + k);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) y[i * ldy + j] = tree16_512(acc[i][j]);
}

// ---------------------------------------------------------------------------- activation quantisation

// one row of K activations fake-quantised with one dynamic scale (compressed-tensors symmetric args):
//   min_vals = torch.min(min_vals, 0); max_vals = torch.max(max_vals, 0)
//   scales = max(|min_vals|, |max_vals|) / (bit_range / 2);  scales = torch.where(scales == 0, eps, scales)
//   scaled = x / scale; scaled += zero_point (0); quantized = round_to_quantized_type_args(clamp(scaled, q_min, q_max))
//   dequant = quantized.to(scale.dtype) - zero_point; dequant * scale
// the scale of one row: max(|min|, |max|) / half_range (NaN when the row holds one), eps when that is 0
static float act_scale(const float *x, int K, float half_range) {
    float mn = 0.0f, mx = 0.0f;
    int nan = 0;
    for (int k = 0; k < K; k++) {
        nan |= isnan(x[k]);
        mn = x[k] < mn ? x[k] : mn, mx = x[k] > mx ? x[k] : mx;
    }
    float amax = fabsf(mn) > fabsf(mx) ? fabsf(mn) : fabsf(mx);
    if (nan) amax = NAN; // torch.amin / amax propagate NaN
    const float scale = amax / half_range;
    return scale == 0.0f ? 0x1p-23f : scale; // _get_dtype_eps(float32) = torch.finfo(torch.float32).eps
}

// the FP8 value torch.clamp(x / scale + 0, -448, 448).to(torch.float8_e4m3fn) gives, as fp32 (exact)
static inline float fp8_code_of(float x, float scale) {
    float s = x / scale + 0.0f; // + zero_point (0.0: turns -0 into +0 as torch does)
    s = s < -448.0f ? -448.0f : s > 448.0f ? 448.0f : s;
    return fp8_e4m3_to_f32(fp8_e4m3_from_f32(s));
}

float quant_act_fp8_codes(float *q, const float *x, int K) {
    // bit_range: 448 - (-448) for FP8 E4M3
    const float scale = act_scale(x, K, 896.0f / 2.0f);
    for (int k = 0; k < K; k++) q[k] = fp8_code_of(x[k], scale);
    return scale;
}

// torch.round(torch.clamp(x / scale + 0, -128, 127)) (half to even)
static inline float int8_code_of(float x, float scale) {
    float s = x / scale + 0.0f; // + zero_point (0.0: turns -0 into +0 as torch does)
    s = s < -128.0f ? -128.0f : s > 127.0f ? 127.0f : s;
    return nearbyintf(s);
}

float quant_act_int8_codes(int8_t *q, const float *x, int K) {
    // bit_range: 127 - (-128)
    const float scale = act_scale(x, K, 255.0f / 2.0f);
    if (!isfinite(scale)) { // a NaN or infinite input: transformers' row is NaN throughout (x / inf * inf)
        memset(q, 0, (size_t)K);
        return NAN;
    }
    for (int k = 0; k < K; k++) q[k] = (int8_t)int8_code_of(x[k], scale);
    return scale;
}

static void fake_quant(float *x, int K, int is_int) {
    // bit_range: 448 - (-448) for FP8 E4M3; 127 - (-128) for int8
    const float scale = act_scale(x, K, is_int ? 255.0f / 2.0f : 896.0f / 2.0f);
    for (int k = 0; k < K; k++) {
        float q;
        if (is_int) q = int8_code_of(x[k], scale); // torch.clamp(tensor, -128, 127); torch.round (half to even)
        else
            q = fp8_code_of(x[k], scale); // torch.clamp(tensor, -448, 448).to(torch.float8_e4m3fn)
        x[k] = (q - 0.0f) * scale;
    }
}

// vLLM per_token_group_quant_fp8, emulated in fp32: for each group of G columns
//   _absmax = max(max(|y|), 1e-10); y_s = _absmax / 448; y_q = clamp(y / y_s, -448, 448).to(fp8); y = y_q * y_s
static void fake_quant_group(float *x, int K, int64_t G) {
    for (int64_t k0 = 0; k0 < K; k0 += G) {
        const int64_t ke = k0 + G < K ? k0 + G : K;
        float amax = 1e-10f;
        int nan = 0;
        for (int64_t k = k0; k < ke; k++) nan |= isnan(x[k]), amax = fabsf(x[k]) > amax ? fabsf(x[k]) : amax;
        const float s = nan ? NAN : amax / 448.0f;
        for (int64_t k = k0; k < ke; k++) {
            float v = x[k] / s;
            v = v < -448.0f ? -448.0f : v > 448.0f ? 448.0f : v;
            x[k] = fp8_e4m3_to_f32(fp8_e4m3_from_f32(v)) * s;
        }
    }
}

void quant_act_rows(float *x, int64_t ld, int n, int K, ActQuant mode, int64_t group) {
    if (mode == ACT_NONE) return;
    for (int i = 0; i < n; i++) {
        float *xi = x + (int64_t)i * ld;
        if (mode == ACT_FP8_GROUP) fake_quant_group(xi, K, group > 0 ? group : K);
        else fake_quant(xi, K, mode == ACT_INT8_TOKEN);
    }
}

// ---------------------------------------------------------------------------- Linear

#define QL_DECODE_ROWS 4      // batches up to this many rows read the quantised bytes once per row (quant_dot)
#define QL_TASK_BYTES (1 << 20) // decode: bytes of quantised rows per task
#define QL_BLOCK 16           // batches: weight rows dequantised per block (per-thread buffer QL_BLOCK x K floats)

static float *qx_buf; // fake-quantised activation rows of the jobs that quantise their input
static size_t qx_cap; // floats

// output rows per task of a quantised job
static int qjob_rows(const LinearJob *J) {
    if (J->n > QL_DECODE_ROWS) return fp8x_applies(J->W) ? FP8X_BLOCK : QL_BLOCK;
    const int64_t th = omp_get_max_threads(), fair = (J->W->rows + 8 * th - 1) / (8 * th);
    const int64_t nb = QL_TASK_BYTES / (J->W->ld + 1);
    return (int)(nb < 1 ? 1 : nb < fair ? nb : fair > 0 ? fair : 1);
}

// how a job's input rows are prepared and multiplied
enum { QK_PLAIN, QK_FP8X, QK_I8X }; // (possibly fake-quantised) fp32 rows; quant_fp8x.c's; quant_i8x.c's

// rows [r0, r1) of job J (x: its prepared rows, row stride ldx: QK_PLAIN fp32, int4 octet-permuted, Kp each;
// QK_FP8X: fp8x_prepare's rows, then their J->n scales; QK_I8X: i8x_prepare's rows)
static void qtask(const LinearJob *J, const float *x, int64_t ldx, int kind, int r0, int r1) {
    const Tensor *W = J->W;
    const int q4 = W->dtype == DT_Q4, K = q4 ? (int)((W->cols + 127) & ~(int64_t)127) : (int)W->cols;
    if (kind == QK_FP8X) fp8x_rows(J->y, J->ldy, x, ldx, x + (int64_t)J->n * ldx, W, J->n, r0, r1);
    else if (kind == QK_I8X) i8x_rows(J->y, J->ldy, x, ldx, W, J->n, r0, r1);
    else if (q4 && J->n <= QL_DECODE_ROWS) { // octet order: eight rows per pass, then four, two, one
        int r = r0;
        if (q4_fast(W) && cpu.avx512f && cpu.f16c) { // QK_NS (2-4 activation rows: QK_NS2) streams, as below
            const int ns = J->n == 1 ? QK_NS : QK_NS2, part = (r1 - r0) / ns;
            for (; r < r0 + part; r++) q4o_dots_512[J->n - 1](J->y + r, J->ldy, x, ldx, W, r, part);
            r = r0 + ns * part;
        }
        while (r < r1) {
            const int nr = r1 - r >= 8 && W->ld >= QK_LONG ? 8 : r1 - r >= 4 ? 4 : r1 - r >= 2 ? 2 : 1;
            for (int i = 0; i < J->n; i++) {
                float o[8];
                q4_dot_octets(o, x + (int64_t)i * ldx, W, r, nr);
                for (int k = 0; k < nr; k++) J->y[(int64_t)i * J->ldy + r + k] = o[k];
            }
            r += nr;
        }
    } else if (J->n <= QL_DECODE_ROWS && W->dtype == DT_GGML) // the task's rows as streams (ggml_quants.h)
        gq_matmul_streams(W->ggml, (const uint8_t *)W->data + (int64_t)r0 * W->ld, (size_t)W->ld, r1 - r0, K, x, ldx, J->n,
                          J->y + r0, J->ldy);
    else if (J->n <= QL_DECODE_ROWS) {
        int r = r0;
        if (vec_ok(W) && cpu.avx512f && cpu.f16c) { // the task's rows as QK_NS (2-4 activation rows: QK_NS2) streams
            const int ns = J->n == 1 ? QK_NS : QK_NS2, part = (r1 - r0) / ns; // stream j: rows [r0 + j part, ...)
            for (; r < r0 + part; r++) dots_512[J->n - 1](J->y + r, J->ldy, x, ldx, W, r, part);
            r = r0 + ns * part;
        }
        for (; r + 8 <= r1 && W->ld >= QK_LONG; r += 8) // eight rows per pass (AVX-512; long rows)
            for (int i = 0; i < J->n; i++) {
                float o[8];
                quant_dot8(o, x + (int64_t)i * ldx, W, r);
                for (int k = 0; k < 8; k++) J->y[(int64_t)i * J->ldy + r + k] = o[k];
            }
        for (; r + 4 <= r1; r += 4) // four rows per pass: one read of x, four independent chains
            for (int i = 0; i < J->n; i++) {
                float o[4];
                quant_dot4(o, x + (int64_t)i * ldx, W, r);
                for (int k = 0; k < 4; k++) J->y[(int64_t)i * J->ldy + r + k] = o[k];
            }
        for (; r + 2 <= r1; r += 2)
            for (int i = 0; i < J->n; i++) {
                float o[2];
                quant_dot2(o, x + (int64_t)i * ldx, W, r);
                J->y[(int64_t)i * J->ldy + r] = o[0], J->y[(int64_t)i * J->ldy + r + 1] = o[1];
            }
        for (; r < r1; r++)
            for (int i = 0; i < J->n; i++) J->y[(int64_t)i * J->ldy + r] = quant_dot(x + (int64_t)i * ldx, W, r);
    } else {
        // (int4: the rows in octet order, as x, K = Kp; row-scale int8: the codes, each output times its row's scale)
        float *w = qbuf((size_t)QL_BLOCK * (size_t)K);
        const int fact = quant_scale_after(W);
        for (int r = r0; r < r1; r++)
            if (q4) q4_row_octets(w + (int64_t)(r - r0) * K, W, r);
            else if (fact) row_codes(w + (int64_t)(r - r0) * K, W, r);
            else quant_row(w + (int64_t)(r - r0) * K, W, r);
        if (cpu.avx512f && cpu.f16c) // 4 x 4 tiles: the bits of dot_f32 per output
            for (int i = 0; i < J->n; i += 4)
                for (int r = r0; r < r1; r += 4)
                    tile4x4_512(J->y + (int64_t)i * J->ldy + r, J->ldy, x + (int64_t)i * ldx, ldx,
                                w + (int64_t)(r - r0) * K, K, K, J->n - i < 4 ? J->n - i : 4, r1 - r < 4 ? r1 - r : 4);
        else
            for (int i = 0; i < J->n; i++)
                for (int r = r0; r < r1; r++)
                    J->y[(int64_t)i * J->ldy + r] = dot_f32(x + (int64_t)i * ldx, w + (int64_t)(r - r0) * K, K);
        if (fact) // y = dot_f32(x, float(q - zero)) * scale
            for (int r = r0; r < r1; r++) {
                const float s = quant_scale(W, r, 0);
                for (int i = 0; i < J->n; i++) J->y[(int64_t)i * J->ldy + r] *= s;
            }
    }
    if (J->b && J->b->data)
        for (int i = 0; i < J->n; i++)
            for (int r = r0; r < r1; r++) J->y[(int64_t)i * J->ldy + r] += tensor_get(J->b, r);
}

void quant_linear_batch(const LinearJob *jobs, int njobs) {
    if (njobs > LINEAR_MAX_JOBS) {
        quant_linear_batch(jobs, LINEAR_MAX_JOBS);
        quant_linear_batch(jobs + LINEAR_MAX_JOBS, njobs - LINEAR_MAX_JOBS);
        return;
    }
    LinearJob plain[LINEAR_MAX_JOBS];
    int nplain = 0;
    for (int j = 0; j < njobs; j++)
        if (!is_quantised(jobs[j].W)) plain[nplain++] = jobs[j];
    if (nplain) linear_batch(plain, nplain);
    // the input rows of every job that quantises them, fake-quantised once per distinct (x, rows, K, mode), and of
    // every int4 job, permuted into octet order (Kp columns a row) once per distinct (x, rows, K, mode)
    const float *xs[LINEAR_MAX_JOBS];
    int64_t ldxs[LINEAR_MAX_JOBS], xoff[LINEAR_MAX_JOBS], start[LINEAR_MAX_JOBS + 1];
    int64_t ldq[LINEAR_MAX_JOBS];          // row stride of a job's prepared rows (int4: Kp)
    int own[LINEAR_MAX_JOBS], octs[LINEAR_MAX_JOBS]; // octs: int4 (octet-order activations)
    int kind[LINEAR_MAX_JOBS];             // QK_PLAIN, QK_FP8X (the rows' codes, then their n scales) or QK_I8X
    ActQuant acts[LINEAR_MAX_JOBS];        // the fake quantisation applied to a job's rows (ACT_NONE: none)
    size_t tot = 0;
    start[0] = 0;
    for (int j = 0; j < njobs; j++) {
        const LinearJob *J = &jobs[j];
        const int q = is_quantised(J->W), act = q && quant_act_enabled && J->W->act != ACT_NONE && J->n > 0;
        start[j + 1] = start[j] + (q && J->n > 0 ? (J->W->rows + qjob_rows(J) - 1) / qjob_rows(J) : 0);
        own[j] = -1, xoff[j] = 0, octs[j] = J->W->dtype == DT_Q4 && J->n > 0, acts[j] = act ? J->W->act : ACT_NONE;
        kind[j] = J->n <= 0 ? QK_PLAIN : fp8x_applies(J->W) ? QK_FP8X : i8x_applies(J->W) ? QK_I8X : QK_PLAIN;
        if (!act && !octs[j]) continue;
        own[j] = j;
        for (int p = 0; p < j; p++)
            if (own[p] == p && jobs[p].x == J->x && jobs[p].ldx == J->ldx && jobs[p].n == J->n &&
                jobs[p].W->cols == J->W->cols && acts[p] == acts[j] && octs[p] == octs[j] && kind[p] == kind[j] &&
                (acts[j] == ACT_NONE || jobs[p].W->group == J->W->group) &&
                (kind[j] != QK_I8X || jobs[p].W->dtype == J->W->dtype)) { // (i8x rows: biased for DT_I8 only)
                own[j] = p;
                break;
            }
        ldq[j] = octs[j]               ? (J->W->cols + 127) & ~(int64_t)127
                 : kind[j] == QK_FP8X ? (int64_t)fp8x_row_floats((int)J->W->cols)
                 : kind[j] == QK_I8X  ? (int64_t)i8x_row_floats((int)J->W->cols)
                                    : J->W->cols;
        if (own[j] == j) xoff[j] = (int64_t)tot, tot += (size_t)J->n * (size_t)ldq[j] + (kind[j] == QK_FP8X ? (size_t)J->n : 0);
        else xoff[j] = xoff[own[j]];
    }
    if (tot > qx_cap) {
        free(qx_buf);
        qx_buf = aligned_alloc(64, ((tot * sizeof(float) + 63) / 64) * 64);
        if (!qx_buf) glm_die(EXIT_INPUT, "out of memory (%.1f MB of quantised activations)", tot * 4 / 1e6);
        qx_cap = tot;
    }
    for (int j = 0; j < njobs; j++) {
        const LinearJob *J = &jobs[j];
        xs[j] = J->x, ldxs[j] = J->ldx;
        if (own[j] < 0) continue;
        xs[j] = qx_buf + xoff[j], ldxs[j] = ldq[j];
        if (own[j] != j) continue;
        const int K = (int)J->W->cols;
        if (kind[j] == QK_FP8X) {
            fp8x_prepare(qx_buf + xoff[j], ldq[j], qx_buf + xoff[j] + (int64_t)J->n * ldq[j], J->x, J->ldx, J->n, K);
            continue;
        }
        if (kind[j] == QK_I8X) {
            i8x_prepare(qx_buf + xoff[j], ldq[j], J->x, J->ldx, J->n, J->W);
            continue;
        }
        for (int i = 0; i < J->n; i++) {
            float *dst = qx_buf + xoff[j] + (int64_t)i * ldq[j], *t = octs[j] ? tbuf(1, (size_t)K) : dst;
            memcpy(t, J->x + (int64_t)i * J->ldx, (size_t)K * 4);
            quant_act_rows(t, K, 1, K, acts[j], J->W->group);
            if (octs[j]) quant_permute_octets(dst, t, K);
        }
    }
    const int64_t ntask = start[njobs];
#pragma omp parallel for schedule(dynamic, 1) if (ntask > 1)
    for (int64_t t = 0; t < ntask; t++) {
        int j = 0;
        while (start[j + 1] <= t) j++;
        const int nb = qjob_rows(&jobs[j]), O = (int)jobs[j].W->rows;
        const int r0 = (int)((t - start[j]) * nb), r1 = r0 + nb < O ? r0 + nb : O;
        qtask(&jobs[j], xs[j], ldxs[j], kind[j], r0, r1);
    }
}

void quant_linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    const int64_t O = W->rows, K = W->cols;
    float *xq = xmalloc((size_t)(K > 0 ? K : 1) * sizeof(float));
    for (int i = 0; i < n; i++) {
        memcpy(xq, x + (int64_t)i * K, (size_t)K * sizeof(float));
        if (quant_act_enabled) quant_act_rows(xq, K, 1, (int)K, W->act, W->group);
        for (int64_t o = 0; o < O; o++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += (double)quant_get(W, o, k) * xq[k];
            float v = (float)s;
            if (b && b->data) v += tensor_get(b, o);
            y[(int64_t)i * O + o] = v;
        }
    }
    free(xq);
}
