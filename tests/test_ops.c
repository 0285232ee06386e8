// test_ops.c - every optimised kernel against its naive twin, and bit-identical results for 1 and 2 threads.
#include "../glm4v.h"
#include "test_util.h"

#include <omp.h>
#include <string.h>

static uint64_t rs = 88172645463325252ULL;
static float frand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static uint16_t f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    return (uint16_t)((v.u + 0x7fff + ((v.u >> 16) & 1)) >> 16);
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
    Tensor W = {wdata, dt, O, K}, B = {bb, DT_BF16, 1, O};
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
    // the same kernels with the portable (scalar) paths, as valgrind runs them
    setenv("GLM4V_PORTABLE", "1", 1);
    ops_init();
    CHECK(strcmp(ops_features(), "portable") == 0, "GLM4V_PORTABLE=1 selects the portable kernels");
    check_linear(DT_BF16, 301, 259, 1);
    check_linear(DT_F16, 64, 100, 2);
    check_attention(3, 20, 32, 17);
    return test_done();
}
