// ops.c - the kernels: Linear (bf16/f16/f32 weights, fp32 activations), norms, activations, attention.
// Every fast kernel has a naive twin (`*_naive`) and tests/test_ops.c checks that they agree.
// Determinism: work is split over output rows / heads / tiles, never over a summed dimension, and every reduction
// has a fixed order, so results are bit-identical for any thread count.
#include "glm4v.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

CpuFeatures cpu;
static char cpu_feature_str[128];

// OpenBLAS extension (not in every cblas.h)
void openblas_set_num_threads(int);

void ops_init(void) {
    memset(&cpu, 0, sizeof cpu);
    const char *portable = getenv("GLM4V_PORTABLE");
    if (!(portable && *portable && strcmp(portable, "0") != 0)) {
        __builtin_cpu_init();
        cpu.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        cpu.fma = cpu.avx2;
        cpu.f16c = cpu.avx2 && __builtin_cpu_supports("f16c");
        cpu.avx512f = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
        cpu.avx512bw = cpu.avx512f;
        cpu.avx512bf16 = cpu.avx512f && __builtin_cpu_supports("avx512bf16");
    }
    snprintf(cpu_feature_str, sizeof cpu_feature_str, "%s%s%s", cpu.avx512f ? "avx512f,avx512bw," : "",
             cpu.avx2 ? "avx2,fma," : "", cpu.f16c ? "f16c" : "");
    size_t n = strlen(cpu_feature_str);
    if (n && cpu_feature_str[n - 1] == ',') cpu_feature_str[n - 1] = 0;
    if (!cpu_feature_str[0]) strcpy(cpu_feature_str, "portable");
    // BLAS is called single-threaded on tiles that we distribute ourselves (determinism)
    openblas_set_num_threads(1);
}

const char *ops_features(void) { return cpu_feature_str; }

// ---------------------------------------------------------------------------- element access

float tensor_get(const Tensor *W, int64_t i) {
    switch (W->dtype) {
    case DT_BF16: return bf16_to_f32(((const uint16_t *)W->data)[i]);
    case DT_F16: return f16_to_f32(((const uint16_t *)W->data)[i]);
    default: return ((const float *)W->data)[i];
    }
}

__attribute__((target("avx512f,avx512bw"))) static void bf16_row_avx512(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    }
    for (; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

__attribute__((target("avx2,f16c"))) static void f16_row_f16c(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

// n elements starting at flat index off, widened to fp32 (exact)
static void widen(float *dst, const Tensor *W, int64_t off, int64_t n) {
    if (W->dtype == DT_F32) {
        memcpy(dst, (const float *)W->data + off, (size_t)n * sizeof(float));
    } else if (W->dtype == DT_BF16) {
        const uint16_t *s = (const uint16_t *)W->data + off;
        if (cpu.avx512f) bf16_row_avx512(dst, s, n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
    } else {
        const uint16_t *s = (const uint16_t *)W->data + off;
        if (cpu.f16c) f16_row_f16c(dst, s, n);
        else
            for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(s[i]);
    }
}

void tensor_row_f32(float *dst, const Tensor *W, int64_t r) { widen(dst, W, r * W->cols, W->cols); }
void tensor_to_f32(float *dst, const Tensor *W, int64_t n) { widen(dst, W, 0, n); }

// ---------------------------------------------------------------------------- dot products (fixed lane order)

// 16 lanes, lane-wise sums then a fixed pairwise tree: identical for any caller
static float dot_f32_scalar(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += a[i + j] * b[i + j];
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    float s = acc[0];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx512f"))) static float hsum512(__m512 v) {
    // fixed tree: 16 -> 8 -> 4 -> 2 -> 1
    __m256 lo = _mm512_castps512_ps256(v), hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
}

__attribute__((target("avx2,fma"))) static float hsum256(__m256 v) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
}

__attribute__((target("avx512f"))) static float dot_f32_avx512(const float *a, const float *b, int n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
    }
    return hsum512(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx2,fma"))) static float dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

float dot_f32(const float *a, const float *b, int n) {
    if (cpu.avx512f) return dot_f32_avx512(a, b, n);
    if (cpu.avx2) return dot_f32_avx2(a, b, n);
    return dot_f32_scalar(a, b, n);
}

// y += a * x
static void axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

// ---------------------------------------------------------------------------- matrix-vector (decode, n small)

// rows [r0, r1) of y = W x (+ b) for one activation row, bf16 weights; 4 rows at a time share the x loads
__attribute__((target("avx512f,avx512bw"))) static void matvec_bf16_avx512(float *y, const float *x,
                                                                           const uint16_t *W, int64_t K, int r0,
                                                                           int r1) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint16_t *w0 = W + (int64_t)r * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 16 <= K; k += 16) {
            __m512 xv = _mm512_loadu_ps(x + k);
#define BF16V(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
            a0 = _mm512_fmadd_ps(BF16V(w0 + k), xv, a0);
            a1 = _mm512_fmadd_ps(BF16V(w1 + k), xv, a1);
            a2 = _mm512_fmadd_ps(BF16V(w2 + k), xv, a2);
            a3 = _mm512_fmadd_ps(BF16V(w3 + k), xv, a3);
        }
        float s0 = hsum512(a0), s1 = hsum512(a1), s2 = hsum512(a2), s3 = hsum512(a3);
        for (; k < K; k++) {
            s0 += bf16_to_f32(w0[k]) * x[k], s1 += bf16_to_f32(w1[k]) * x[k];
            s2 += bf16_to_f32(w2[k]) * x[k], s3 += bf16_to_f32(w3[k]) * x[k];
        }
        y[r] = s0, y[r + 1] = s1, y[r + 2] = s2, y[r + 3] = s3;
    }
    for (; r < r1; r++) {
        const uint16_t *w0 = W + (int64_t)r * K;
        __m512 a0 = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 16 <= K; k += 16) a0 = _mm512_fmadd_ps(BF16V(w0 + k), _mm512_loadu_ps(x + k), a0);
#undef BF16V
        float s0 = hsum512(a0);
        for (; k < K; k++) s0 += bf16_to_f32(w0[k]) * x[k];
        y[r] = s0;
    }
}

__attribute__((target("avx2,fma"))) static void matvec_bf16_avx2(float *y, const float *x, const uint16_t *W,
                                                                 int64_t K, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const uint16_t *w0 = W + (int64_t)r * K;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t k = 0;
#define BF16V8(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
        for (; k + 16 <= K; k += 16) {
            a0 = _mm256_fmadd_ps(BF16V8(w0 + k), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(BF16V8(w0 + k + 8), _mm256_loadu_ps(x + k + 8), a1);
        }
#undef BF16V8
        float s0 = hsum256(_mm256_add_ps(a0, a1));
        for (; k < K; k++) s0 += bf16_to_f32(w0[k]) * x[k];
        y[r] = s0;
    }
}

// generic rows: widen one row, then the fixed-order dot
static void matvec_generic(float *y, const float *x, const Tensor *W, int r0, int r1, float *rowbuf) {
    for (int r = r0; r < r1; r++) {
        if (W->dtype == DT_F32) y[r] = dot_f32((const float *)W->data + (int64_t)r * W->cols, x, (int)W->cols);
        else {
            tensor_row_f32(rowbuf, W, r);
            y[r] = dot_f32(rowbuf, x, (int)W->cols);
        }
    }
}

static void matvec_rows(float *y, const float *x, const Tensor *W, int r0, int r1, float *rowbuf) {
    if (W->dtype == DT_BF16 && cpu.avx512f) matvec_bf16_avx512(y, x, W->data, W->cols, r0, r1);
    else if (W->dtype == DT_BF16 && cpu.avx2) matvec_bf16_avx2(y, x, W->data, W->cols, r0, r1);
    else matvec_generic(y, x, W, r0, r1, rowbuf);
}

// ---------------------------------------------------------------------------- Linear

#define MV_ROWS 64    // rows per matrix-vector work item
#define GEMM_TILE 256 // weight rows widened to fp32 per BLAS call (fixed: results do not depend on threads)
#define GEMM_MIN_N 4  // batches below this use the matrix-vector kernels row by row

static float *tls_buf;      // per-thread fp32 tile buffer
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

// nn.Linear: y = x W^T + b
void linear(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
    const int O = (int)W->rows, K = (int)W->cols;
    if (n < GEMM_MIN_N) {
        const int ntiles = (O + MV_ROWS - 1) / MV_ROWS;
#pragma omp parallel for schedule(dynamic, 1) collapse(2)
        for (int i = 0; i < n; i++)
            for (int t = 0; t < ntiles; t++) {
                int r0 = t * MV_ROWS, r1 = r0 + MV_ROWS < O ? r0 + MV_ROWS : O;
                float *rowbuf = W->dtype == DT_BF16 && cpu.avx2 ? NULL : thread_buf((size_t)K);
                matvec_rows(y + (int64_t)i * O, x + (int64_t)i * K, W, r0, r1, rowbuf);
            }
    } else {
        const int ntiles = (O + GEMM_TILE - 1) / GEMM_TILE;
#pragma omp parallel for schedule(dynamic, 1)
        for (int t = 0; t < ntiles; t++) {
            int r0 = t * GEMM_TILE, nr = r0 + GEMM_TILE < O ? GEMM_TILE : O - r0;
            const float *wt;
            if (W->dtype == DT_F32) wt = (const float *)W->data + (int64_t)r0 * K;
            else {
                float *buf = thread_buf((size_t)GEMM_TILE * K);
                widen(buf, W, (int64_t)r0 * K, (int64_t)nr * K);
                wt = buf;
            }
            // y[:, r0:r0+nr] = x[n, K] . wt[nr, K]^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, nr, K, 1.0f, x, K, wt, K, 0.0f, y + r0, O);
        }
    }
    if (b && b->data) {
        float *bias = thread_buf((size_t)O); // main thread's buffer; the parallel region above is over
        tensor_to_f32(bias, b, O);
#pragma omp parallel for schedule(static)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < O; o++) y[(int64_t)i * O + o] += bias[o];
    }
}

// reference: one output at a time, double accumulation
void linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n) {
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

// softmax over n values (max-subtracted, sequential sum)
void softmax_inplace(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

// nn.GELU() (exact): 0.5 * x * (1 + erf(x / sqrt(2)))
float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

// act_fn(gate) * up with act_fn = SiLU
void swiglu(float *y, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) y[i] = silu_f(g[i]) * u[i];
}

// ---------------------------------------------------------------------------- attention (one head)

#define ATT_QBLOCK 64 // query rows per BLAS block

// eager_attention_forward for one head: out_i = softmax(scale * q_i . K^T + mask) . V, softmax in fp32.
// q [nq, ldq], k [nk, ldk], v [nk, ldv], out [nq, ldo]; q_offset >= 0: causal, query i sees keys j <= q_offset + i;
// q_offset < 0: bidirectional. scores: scratch of ATT_QBLOCK * nk floats.
void attention_head(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                    int nq, int nk, int hd, float scale, int q_offset, float *scores) {
    if (nq < 8) { // decode: dot products and an ordered weighted sum
        for (int i = 0; i < nq; i++) {
            int nvis = q_offset >= 0 ? (q_offset + i + 1 < nk ? q_offset + i + 1 : nk) : nk;
            const float *qi = q + (int64_t)i * ldq;
            // attn_weights = torch.matmul(query, key_states.transpose(2, 3)) * scaling
            for (int j = 0; j < nvis; j++) scores[j] = dot_f32(qi, k + (int64_t)j * ldk, hd) * scale;
            // attn_weights = softmax(attn_weights, dim=-1, dtype=torch.float32)
            softmax_inplace(scores, nvis);
            // attn_output = torch.matmul(attn_weights, value_states)
            float *oi = out + (int64_t)i * ldo;
            memset(oi, 0, (size_t)hd * sizeof(float));
            for (int j = 0; j < nvis; j++) axpy(oi, scores[j], v + (int64_t)j * ldv, hd);
        }
        return;
    }
    for (int i0 = 0; i0 < nq; i0 += ATT_QBLOCK) {
        int nb = nq - i0 < ATT_QBLOCK ? nq - i0 : ATT_QBLOCK;
        // keys visible to the last query of the block
        int nvis = q_offset >= 0 ? (q_offset + i0 + nb < nk ? q_offset + i0 + nb : nk) : nk;
        // S[nb, nvis] = Q_blk . K^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nvis, hd, 1.0f, q + (int64_t)i0 * ldq, ldq, k, ldk,
                    0.0f, scores, nvis);
        for (int i = 0; i < nb; i++) {
            float *s = scores + (int64_t)i * nvis;
            int vis = q_offset >= 0 ? (q_offset + i0 + i + 1 < nvis ? q_offset + i0 + i + 1 : nvis) : nvis;
            for (int j = 0; j < vis; j++) s[j] *= scale;
            softmax_inplace(s, vis);
            for (int j = vis; j < nvis; j++) s[j] = 0.0f; // masked: exp(finfo.min - max) == 0
        }
        // O_blk = P . V
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hd, nvis, 1.0f, scores, nvis, v, ldv, 0.0f,
                    out + (int64_t)i0 * ldo, ldo);
    }
}

// reference: double accumulation, one query at a time
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

// size every thread's tile buffer up front (no allocation later, in the token loop)
void ops_reserve(size_t max_cols) {
#pragma omp parallel
    thread_buf((size_t)GEMM_TILE * max_cols);
}

size_t attention_scratch_floats(int nk) { return (size_t)ATT_QBLOCK * (size_t)(nk > 0 ? nk : 1); }
