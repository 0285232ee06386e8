// SPDX-License-Identifier: MIT
// test_ops.c - every optimised kernel against its naive twin, and bit-identical results for 1 and 2 threads.
#include "../ops.h"
#include "test_util.h"

#include <omp.h>
#include <string.h>

static uint64_t rs = 88172645463325252ULL;
static float frand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static uint16_t f32_to_f16(float f) { // round to nearest even via hardware-free path: values here are in [-1, 1]
    union { float f; uint32_t u; } v = {f};
    uint32_t sign = (v.u >> 16) & 0x8000, exp = (v.u >> 23) & 0xff, man = v.u & 0x7fffff;
    if (exp < 103) return (uint16_t)sign;
    if (exp < 113) { // subnormal
        man |= 0x800000;
        int shift = 126 - (int)exp;
        return (uint16_t)(sign | ((man + (1u << (shift - 1))) >> shift));
    }
    uint32_t h = sign | ((exp - 112) << 10) | (man >> 13);
    if ((man & 0x1fff) > 0x1000 || ((man & 0x1fff) == 0x1000 && (h & 1))) h++;
    return (uint16_t)h;
}

static double rel_err(const float *a, const float *b, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        e = d > e || d != d ? d : e;
        m = fabs(b[i]) > m ? fabs(b[i]) : m;
    }
    return e / (m > 0 ? m : 1);
}

// Linear for one dtype and batch size: fast vs naive, and 1 vs 2 threads bit-identical
static void check_linear(DType dt, int O, int K, int n) {
    size_t nw = (size_t)O * K;
    void *wdata = malloc(nw * 4);
    float *bias = malloc(O * sizeof(float));
    for (size_t i = 0; i < nw; i++) {
        float f = frand() * 0.1f;
        if (dt == DT_F32) ((float *)wdata)[i] = f;
        else if (dt == DT_BF16) ((uint16_t *)wdata)[i] = f32_to_bf16(f);
        else ((uint16_t *)wdata)[i] = f32_to_f16(f);
    }
    uint16_t *bb = malloc(O * 2);
    for (int i = 0; i < O; i++) bias[i] = frand(), bb[i] = f32_to_bf16(bias[i]);
    Tensor W = {.data = wdata, .dtype = dt, .rows = O, .cols = K}, B = {.data = bb, .dtype = DT_BF16, .rows = 1, .cols = O};
    float *x = malloc((size_t)n * K * sizeof(float)), *y1 = malloc((size_t)n * O * 4), *y2 = malloc((size_t)n * O * 4);
    float *yr = malloc((size_t)n * O * 4);
    for (size_t i = 0; i < (size_t)n * K; i++) x[i] = frand();
    omp_set_num_threads(1);
    linear(y1, x, &W, &B, n);
    omp_set_num_threads(2);
    linear(y2, x, &W, &B, n);
    linear_naive(yr, x, &W, &B, n);
    CHECK(memcmp(y1, y2, (size_t)n * O * 4) == 0, "linear %s [%d x %d] n=%d: 1 and 2 threads bit-identical",
          dtype_name[dt], O, K, n);
    double e = rel_err(y2, yr, (size_t)n * O);
    CHECK(e < 2e-6, "linear %s [%d x %d] n=%d: fast vs naive rel err %.2g", dtype_name[dt], O, K, n, e);
    free(wdata), free(bias), free(bb), free(x), free(y1), free(y2), free(yr);
}

static void check_attention(int nq, int nk, int hd, int causal_off) {
    int ld = hd * 3;
    float *q = malloc((size_t)nq * ld * 4), *k = malloc((size_t)nk * ld * 4), *v = malloc((size_t)nk * ld * 4);
    float *o = calloc((size_t)nq * ld, 4), *r = calloc((size_t)nq * ld, 4);
    for (size_t i = 0; i < (size_t)nq * ld; i++) q[i] = frand();
    for (size_t i = 0; i < (size_t)nk * ld; i++) k[i] = frand(), v[i] = frand();
    float *sc = malloc(attention_scratch_floats(nk) * 4);
    float scale = 1.0f / sqrtf((float)hd);
    attention_head(o, ld, q, ld, k, ld, v, ld, nq, nk, hd, scale, causal_off, sc);
    attention_head_naive(r, ld, q, ld, k, ld, v, ld, nq, nk, hd, scale, causal_off);
    double e = rel_err(o, r, (size_t)nq * ld);
    CHECK(e < 1e-5, "attention nq=%d nk=%d hd=%d %s: fast vs naive rel err %.2g", nq, nk, hd,
          causal_off >= 0 ? "causal" : "bidirectional", e);
    free(q), free(k), free(v), free(o), free(r), free(sc);
}

static void check_norms(void) {
    int n = 5, d = 300;
    float *x = malloc(n * d * 4), *w = malloc(d * 4), *b = malloc(d * 4), *y = malloc(n * d * 4);
    for (int i = 0; i < n * d; i++) x[i] = frand() * 3;
    for (int i = 0; i < d; i++) w[i] = 1 + frand() * 0.2f, b[i] = frand() * 0.1f;
    rmsnorm(y, x, w, n, d, 1e-5f);
    double e = 0;
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int j = 0; j < d; j++) ss += (double)x[i * d + j] * x[i * d + j];
        double r = 1.0 / sqrt(ss / d + 1e-5);
        for (int j = 0; j < d; j++) e = fmax(e, fabs(y[i * d + j] - w[j] * x[i * d + j] * r));
    }
    CHECK(e < 1e-5, "rmsnorm vs double reference: max err %.2g", e);
    layernorm(y, x, w, b, n, d, 1e-5f);
    e = 0;
    for (int i = 0; i < n; i++) {
        double m = 0, v = 0;
        for (int j = 0; j < d; j++) m += x[i * d + j];
        m /= d;
        for (int j = 0; j < d; j++) v += (x[i * d + j] - m) * (x[i * d + j] - m);
        v /= d;
        for (int j = 0; j < d; j++) e = fmax(e, fabs(y[i * d + j] - ((x[i * d + j] - m) / sqrt(v + 1e-5) * w[j] + b[j])));
    }
    CHECK(e < 1e-5, "layernorm vs double reference: max err %.2g", e);
    float g = gelu_erf(0.5f);
    CHECK(fabs(g - 0.3457312306) < 1e-6, "gelu_erf(0.5) = %.7f", g);
    free(x), free(w), free(b), free(y);
}

// the same inputs through AVX-512, AVX2 and the portable code: bit-identical outputs (one fixed order everywhere)
static void set_isa(int which) { // 0 = best, 1 = AVX2, 2 = portable
    unsetenv("GLM4V_PORTABLE"), unsetenv("GLM4V_ISA");
    if (which == 1) setenv("GLM4V_ISA", "avx2", 1);
    if (which == 2) setenv("GLM4V_PORTABLE", "1", 1);
    ops_init();
}

static void check_isa_linear_at(DType dt, int O, int K, int n, int off);
static void check_isa_linear(DType dt, int O, int K, int n) { check_isa_linear_at(dt, O, K, n, 0); }

// off: the weights start off elements after a 64-byte boundary (tensors in a safetensors file are rarely aligned)
static void check_isa_linear_at(DType dt, int O, int K, int n, int off) {
    size_t nw = (size_t)O * K;
    uint16_t *base = aligned_alloc(64, ((nw + (size_t)off) * 2 + 63) / 64 * 64), *wd = base + off;
    for (size_t i = 0; i < nw; i++) wd[i] = dt == DT_BF16 ? f32_to_bf16(frand() * 0.1f) : f32_to_f16(frand() * 0.1f);
    Tensor W = {.data = wd, .dtype = dt, .rows = O, .cols = K};
    float *x = malloc((size_t)n * K * 4), *y[3];
    for (size_t i = 0; i < (size_t)n * K; i++) x[i] = frand();
    for (int a = 0; a < 3; a++) {
        set_isa(a);
        y[a] = malloc((size_t)n * O * 4);
        linear(y[a], x, &W, NULL, n);
    }
    set_isa(0);
    CHECK(memcmp(y[0], y[1], (size_t)n * O * 4) == 0 && memcmp(y[0], y[2], (size_t)n * O * 4) == 0,
          "linear %s [%d x %d] n=%d (weights at +%d): AVX-512, AVX2 and portable bit-identical", dtype_name[dt], O, K,
          n, off);
    // each row alone gives the same bits as in the batch
    {
        float *r = malloc((size_t)O * 4);
        int same = 1;
        for (int i = 0; i < n; i++) {
            linear(r, x + (size_t)i * K, &W, NULL, 1);
            same &= memcmp(r, y[0] + (size_t)i * O, (size_t)O * 4) == 0;
        }
        CHECK(same, "linear %s [%d x %d] n=%d: every row equals the row alone", dtype_name[dt], O, K, n);
        free(r);
    }
    free(base), free(x), free(y[0]), free(y[1]), free(y[2]);
}

// batch invariance: row r of a batch of n rows (x at a random misalignment, rows at a random stride) equals the row
// alone, for every weight dtype and instruction set (the row alone computed with the best one)
static void check_batch_invariance(DType dt, int O, int K) {
    static const int ns[] = {1, 2, 4, 7, 8, 191, 192, 193, 512};
    const size_t es = dt == DT_F32 ? 4 : 2;
    void *wd = malloc((size_t)O * K * es);
    for (size_t i = 0; i < (size_t)O * K; i++) {
        const float f = frand() * 0.1f;
        if (dt == DT_F32) ((float *)wd)[i] = f;
        else ((uint16_t *)wd)[i] = dt == DT_BF16 ? f32_to_bf16(f) : f32_to_f16(f);
    }
    uint16_t *bb = malloc((size_t)O * 2);
    for (int i = 0; i < O; i++) bb[i] = f32_to_bf16(frand());
    Tensor W = {wd, dt, O, K}, B = {bb, DT_BF16, 1, O};
    const int nmax = 512, ldx = K + 3, ldy = O + 5;
    float *x = malloc(((size_t)nmax * ldx + 16) * 4), *y = malloc((size_t)nmax * ldy * 4);
    float *xa = malloc(((size_t)K + 16) * 4), *ref = malloc((size_t)nmax * O * 4);
    for (size_t i = 0; i < (size_t)nmax * ldx + 16; i++) x[i] = frand();
    // every row alone (best instruction set): the reference
    for (int i = 0; i < nmax; i++) {
        const int mis = (int)((frand() + 1.0f) * 7.9f); // 0..15 floats past the start of the buffer
        memcpy(xa + mis, x + 1 + (size_t)i * ldx, (size_t)K * 4);
        linear(ref + (size_t)i * O, xa + mis, &W, &B, 1);
    }
    for (int a = 0; a < 3; a++) {
        set_isa(a);
        int same = 1, checked = 0;
        for (size_t q = 0; q < sizeof ns / sizeof ns[0]; q++) {
            const int n = ns[q], i0 = (int)((frand() + 1.0f) * 0.5f * (float)(nmax - n)); // rows [i0, i0 + n)
            const LinearJob J = {y, ldy, x + 1 + (size_t)i0 * ldx, ldx, &W, &B, n};
            omp_set_num_threads(1 + (int)(q % 2));
            linear_batch(&J, 1);
            for (int i = 0; i < n; i++, checked++)
                same &= memcmp(y + (size_t)i * ldy, ref + (size_t)(i0 + i) * O, (size_t)O * 4) == 0;
        }
        omp_set_num_threads(2);
        CHECK(same, "linear %s [%d x %d], %s: %d rows of batches of 1..512 rows equal the row alone (AVX-512)",
              dtype_name[dt], O, K, a == 0 ? "best ISA" : a == 1 ? "AVX2" : "portable", checked);
    }
    set_isa(0);
    free(wd), free(bb), free(x), free(y), free(xa), free(ref);
}

// small batches (2..8 rows: a server's batched decode step; ops.c's rowsm_bf16_512 for up to 4 on AVX-512): the fast kernel
// agrees with the naive twin (linear_naive), 1 and 2 threads, AVX-512, AVX2 and portable give the same bits, and every
// row equals the row alone; weights at shifted and unaligned starts, K with and without a partial last chunk, and
// row counts that leave rows over after the kernel's streams
static void check_small_batches(void) {
    for (int n = 2; n <= 8; n++) {
        check_linear(DT_BF16, 203, 259, n);
        check_isa_linear_at(DT_BF16, 70 + n, 512, n, (n * 3) % 32);
        check_isa_linear_at(DT_BF16, 41, 1408, n, 8);
        check_isa_linear_at(DT_BF16, 37, 300, n, n);
    }
}

static void check_isa_attention(int nq, int nk, int hd, int off) {
    int ld = hd + 5;
    float *q = malloc((size_t)nq * ld * 4), *k = malloc((size_t)nk * ld * 4), *v = malloc((size_t)nk * ld * 4);
    float *o[3], *sc = malloc(attention_scratch_floats(nk) * 4);
    for (size_t i = 0; i < (size_t)nq * ld; i++) q[i] = frand();
    for (size_t i = 0; i < (size_t)nk * ld; i++) k[i] = frand(), v[i] = frand();
    for (int a = 0; a < 3; a++) {
        set_isa(a);
        o[a] = calloc((size_t)nq * ld, 4);
        attention_head(o[a], ld, q, ld, k, ld, v, ld, nq, nk, hd, 0.125f, off, sc);
    }
    set_isa(0);
    CHECK(memcmp(o[0], o[1], (size_t)nq * ld * 4) == 0 && memcmp(o[0], o[2], (size_t)nq * ld * 4) == 0,
          "attention nq=%d nk=%d hd=%d: AVX-512, AVX2 and portable bit-identical", nq, nk, hd);
    // decode: query i alone (keys up to its position) equals its row of the batch
    if (off >= 0) {
        float *r = calloc((size_t)ld, 4);
        int same = 1;
        for (int i = 0; i < nq; i++) {
            attention_head(r, ld, q + (size_t)i * ld, ld, k, ld, v, ld, 1, off + i + 1, hd, 0.125f, -1, sc);
            same &= memcmp(r, o[0] + (size_t)i * ld, (size_t)hd * 4) == 0;
        }
        CHECK(same, "attention nq=%d nk=%d: each query alone (decode) equals its row of the prefill", nq, nk);
        free(r);
    }
    free(q), free(k), free(v), free(o[0]), free(o[1]), free(o[2]), free(sc);
}

// gemm_bcast's naive twin: double accumulation
static void gemm_bcast_naive(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb,
                      int M, int N, int K, int accumulate) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = accumulate ? C[i * ldc + j] : 0.0;
            for (int k = 0; k < K; k++) s += (double)A[i * ars + k * acs] * B[k * ldb + j];
            C[i * ldc + j] = (float)s;
        }
}

static void check_gemm_bcast(int M, int N, int K, int trans) {
    float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)K * (N + 3) * 4);
    float *C = malloc((size_t)M * (N + 1) * 4), *R = malloc((size_t)M * (N + 1) * 4), *C2 = malloc((size_t)M * (N + 1) * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = frand();
    for (size_t i = 0; i < (size_t)K * (N + 3); i++) B[i] = frand();
    for (size_t i = 0; i < (size_t)M * (N + 1); i++) C[i] = R[i] = frand();
    int64_t ars = trans ? 1 : K, acs = trans ? M : 1;
    memcpy(C2, C, (size_t)M * (N + 1) * 4);
    gemm_bcast(C, N + 1, A, ars, acs, B, N + 3, M, N, K, 1);
    gemm_bcast_naive(R, N + 1, A, ars, acs, B, N + 3, M, N, K, 1);
    double e = rel_err(C, R, (size_t)M * (N + 1));
    CHECK(e < 1e-6, "gemm_bcast M=%d N=%d K=%d %s, accumulate: fast vs naive rel err %.2g", M, N, K,
          trans ? "A^T" : "A", e);
    set_isa(2);
    gemm_bcast(C2, N + 1, A, ars, acs, B, N + 3, M, N, K, 1);
    set_isa(0);
    CHECK(memcmp(C, C2, (size_t)M * (N + 1) * 4) == 0, "gemm_bcast M=%d N=%d K=%d: portable bit-identical", M, N, K);
    free(A), free(B), free(C), free(R), free(C2);
}

static void check_exp_swiglu(void) {
    double e = 0;
    int same = 1;
    float g[1000], u[1000], y1[1000], y2[1000], y3[1000];
    for (int i = 0; i < 200000; i++) {
        float x = -110.0f + 200.0f * (float)i / 200000.0f;
        float a = exp_fast(x), b = expf(x);
        if (b > 1e-37f && b < 1e37f) e = fmax(e, fabs((double)a - b) / b);
    }
    CHECK(e < 3e-7, "exp_fast vs expf on [-110, 90]: max rel err %.2g", e);
    CHECK(exp_fast(-INFINITY) == 0.0f && isinf(exp_fast(100.0f)) && exp_fast(0.0f) == 1.0f,
          "exp_fast(-inf) = 0, exp_fast(100) = inf, exp_fast(0) = 1");
    for (int i = 0; i < 1000; i++) g[i] = frand() * 20, u[i] = frand();
    swiglu(y1, g, u, 1000);
    swiglu_naive(y2, g, u, 1000);
    set_isa(2);
    swiglu(y3, g, u, 1000);
    set_isa(0);
    e = rel_err(y1, y2, 1000);
    for (int i = 0; i < 1000; i++) same &= y1[i] == y3[i];
    CHECK(e < 1e-6, "swiglu vs libm silu: rel err %.2g", e);
    CHECK(same, "swiglu: AVX-512 and portable bit-identical");
}

// one linear_batch of jobs sharing and not sharing x equals the separate calls
static void check_linear_batch(void) {
    int K = 200, O1 = 70, O2 = 33, n = 3;
    uint16_t *w1 = malloc((size_t)O1 * K * 2), *w2 = malloc((size_t)O2 * K * 2);
    for (int i = 0; i < O1 * K; i++) w1[i] = f32_to_bf16(frand());
    for (int i = 0; i < O2 * K; i++) w2[i] = f32_to_bf16(frand());
    Tensor W1 = {.data = w1, .dtype = DT_BF16, .rows = O1, .cols = K}, W2 = {.data = w2, .dtype = DT_BF16, .rows = O2, .cols = K};
    float x[3 * 200], x2[3 * 200], ya[3 * 70], yb[3 * 33], yc[3 * 70], r1[3 * 70], r2[3 * 33], r3[3 * 70];
    for (int i = 0; i < n * K; i++) x[i] = frand(), x2[i] = frand();
    LinearJob jobs[3] = {{ya, O1, x, K, &W1, NULL, n}, {yb, O2, x, K, &W2, NULL, n}, {yc, O1, x2, K, &W1, NULL, n}};
    linear_batch(jobs, 3);
    linear(r1, x, &W1, NULL, n), linear(r2, x, &W2, NULL, n), linear(r3, x2, &W1, NULL, n);
    CHECK(!memcmp(ya, r1, sizeof ya) && !memcmp(yb, r2, sizeof yb) && !memcmp(yc, r3, sizeof yc),
          "linear_batch of 3 jobs (2 share x) equals 3 linear calls");
    free(w1), free(w2);
}

int main(void) {
    ops_init();
    printf("# cpu features: %s\n", ops_features());
    DType dts[3] = {DT_BF16, DT_F16, DT_F32};
    int ns[4] = {1, 3, 4, 37};
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < 4; i++) check_linear(dts[d], 301, 259, ns[i]);
    check_linear(DT_BF16, 1030, 512, 1);
    check_linear(DT_BF16, 600, 1024, 70);
    check_attention(1, 37, 64, 36);
    check_attention(5, 40, 32, 35);
    check_attention(70, 70, 48, 0);
    check_attention(100, 130, 64, 30);
    check_attention(77, 77, 128, -1);
    check_norms();
    // large batches: K with a tail, outputs not a multiple of the tile
    check_linear(DT_BF16, 333, 600, 195);
    check_linear(DT_F16, 70, 300, 193);
    for (int i = 0; i < 2; i++) {
        check_isa_linear(DT_BF16, 301, 259, i ? 5 : 1);
        check_isa_linear(DT_BF16, 150, 700, i ? 31 : 197);
        check_isa_linear(DT_F16, 90, 77, i ? 13 : 2);
        check_isa_linear(DT_BF16, 133, 9000 + 19, i ? 5 : 1); // a long row with a partial chunk
        // decode rows starting inside a cache line: shifted aligned loads (4-byte steps) or unaligned loads
        for (int off = 1; off < 32; off += 7) check_isa_linear_at(DT_BF16, 70, 512, i ? 5 : 1, off);
        check_isa_linear_at(DT_BF16, 33, 8192, i ? 5 : 1, 8); // long rows read in pairs (an odd one alone)
    }
    check_batch_invariance(DT_BF16, 75, 300);
    check_batch_invariance(DT_F16, 75, 300);
    check_batch_invariance(DT_F32, 75, 300);
    check_batch_invariance(DT_BF16, 41, 64);
    check_small_batches();
    check_isa_attention(70, 90, 64, 20);
    check_isa_attention(12, 100, 128, -1);
    // long inputs: several key blocks of the online softmax (1024 absolute positions each)
    check_attention(70, 2100, 64, 2030);
    check_attention(20, 2500, 64, -1);
    check_isa_attention(100, 2200, 64, 2100);
    check_isa_attention(16, 3000, 48, -1);
    check_gemm_bcast(13, 70, 300, 0);
    check_gemm_bcast(9, 17, 5, 1);
    check_exp_swiglu();
    check_linear_batch();
    set_isa(0);
    // the same kernels with the portable (scalar) paths, as valgrind runs them
    setenv("GLM4V_PORTABLE", "1", 1);
    ops_init();
    CHECK(strcmp(ops_features(), "portable") == 0, "GLM4V_PORTABLE=1 selects the portable kernels");
    check_linear(DT_BF16, 301, 259, 1);
    check_linear(DT_F16, 64, 100, 2);
    check_attention(3, 20, 32, 17);
    return test_done();
}
