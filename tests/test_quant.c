// SPDX-License-Identifier: MIT
// test_quant.c - quantised Linear kernels (quant.c): FP8 E4M3 conversions against torch's rounding rules, the vector
// row / dot kernels (AVX-512, AVX2, portable) bit-identical to the element-by-element reference, Linear against the
// double-precision naive one, the same bits for 1 and 2 threads and for a row alone or inside a batch, and the
// dynamic activation quantisation on hand-computed values.
#include "../quant.h"
#include "../ops_bf16.h"
#include "../quant_fp8x.h"
#include "../quant_i8x.h"
#include "../safetensors.h"
#include "test_util.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static uint64_t rs = 88172645463325252ULL;
static float frand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void fp8_cases(void) {
    int ok = 1;
    for (int b = 0; b < 256; b++) { // every code round-trips (NaN codes to NaN codes)
        float f = fp8_e4m3_to_f32((uint8_t)b);
        uint8_t back = fp8_e4m3_from_f32(f);
        if ((b & 0x7f) == 0x7f) ok &= isnan(f) && (back & 0x7f) == 0x7f;
        else ok &= back == b;
    }
    CHECK(ok, "fp8: every E4M3 code decodes and encodes back to itself");
    CHECK(fp8_e4m3_to_f32(0x7e) == 448.0f && fp8_e4m3_to_f32(0x01) == 0x1p-9f && fp8_e4m3_to_f32(0x38) == 1.0f &&
              fp8_e4m3_to_f32(0xb8) == -1.0f && fp8_e4m3_to_f32(0x08) == 0x1p-6f,
          "fp8: 448, 2^-9, 1, -1, 2^-6 decode");
    // ties to even: 1.0625 between 1 (m=0) and 1.125 (m=1) -> 1; 1.1875 -> 1.25; subnormal 2^-10 -> 0, 3*2^-10 -> 2*2^-9
    CHECK(fp8_e4m3_from_f32(1.0625f) == 0x38 && fp8_e4m3_from_f32(1.1875f) == 0x3a && fp8_e4m3_from_f32(0x1p-10f) == 0 &&
              fp8_e4m3_from_f32(3 * 0x1p-10f) == 0x02 && fp8_e4m3_from_f32(-464.0f) == 0xfe &&
              fp8_e4m3_from_f32(480.0f) == 0x7f && fp8_e4m3_from_f32(1.07f) == 0x39,
          "fp8: round to nearest even (normal and subnormal), 464 -> 448, 480 -> NaN");
}

static void act_cases(void) {
    // scale = 1/448 (absmax 1); 0.5 -> 224 (exact) -> 0.5; 0.3 -> 134.4 -> 128 -> 128/448
    float x[4] = {0.5f, -1.0f, 0.3f, -0.0f};
    quant_act_rows(x, 4, 1, 4, ACT_FP8_TOKEN, 0);
    const float s = 1.0f / 448.0f;
    CHECK(x[0] == 224.0f * s && x[1] == -448.0f * s && x[2] == 128.0f * s && x[3] == 0.0f && !signbit(x[3]),
          "act FP8 per token: hand-computed values (-0 becomes +0)");
    float y[3] = {1.0f, 0.5f, -0.25f}; // int8: scale 1/127.5; 0.5 * 127.5 = 63.75 -> 64; -0.25 -> -31.875 -> -32
    quant_act_rows(y, 3, 1, 3, ACT_INT8_TOKEN, 0);
    const float si = 1.0f / 127.5f;
    CHECK(y[0] == 127.0f * si && y[1] == 64.0f * si && y[2] == -32.0f * si, "act int8 per token: hand-computed values");
    float z[3] = {0, 0, 0};
    quant_act_rows(z, 3, 1, 3, ACT_FP8_TOKEN, 0);
    CHECK(z[0] == 0 && z[1] == 0 && z[2] == 0, "act FP8: an all-zero row stays zero (eps scale)");
}

// compressed-tensors' own fake quantisation (tests/golden/make_quant_cases.py: act_quant.safetensors), bit for bit
static void act_vectors(void) {
    SFile f;
    if (sf_open(&f, "tests/golden/quant/cases/act_quant.safetensors")) {
        CHECK(0, "act_quant.safetensors: %s", glm_errmsg);
        return;
    }
    const STensor *x = sf_find(&f, "x");
    const char *keys[3] = {"fp8_token", "int8_token", "fp8_group32"};
    const ActQuant modes[3] = {ACT_FP8_TOKEN, ACT_INT8_TOKEN, ACT_FP8_GROUP};
    for (int m = 0; m < 3; m++) {
        const STensor *e = sf_find(&f, keys[m]);
        if (!x || !e || x->ndim != 2 || e->ndim != 2 || e->shape[0] != x->shape[0] || x->dtype != DT_F32) {
            CHECK(0, "act_quant.safetensors: tensors x / %s missing or malformed", keys[m]);
            continue;
        }
        const int n = (int)x->shape[0], K = (int)e->shape[1];
        float *buf = malloc((size_t)n * K * 4);
        for (int i = 0; i < n; i++) memcpy(buf + (int64_t)i * K, (const float *)x->data + (int64_t)i * x->shape[1], (size_t)K * 4);
        quant_act_rows(buf, K, n, K, modes[m], 32);
        int bad = -1;
        for (int64_t i = 0; i < (int64_t)n * K && bad < 0; i++)
            if (memcmp(buf + i, (const float *)e->data + i, 4)) bad = (int)i;
        CHECK(bad < 0, "act %s: %d x %d values bit-identical to compressed-tensors%s (first differing: %d)", keys[m], n, K,
              m == 2 ? " (vLLM group emulation)" : "", bad);
        free(buf);
    }
    sf_close(&f);
}

typedef struct {
    const char *name;
    DType dt;
    int O, K;
    int group;      // 0: per channel
    int block_rows; // 0: 1
    int per_tensor;
    int zero;       // asymmetric (Q4 / Q8)
    DType sdt;
} QCase;

// a random quantised weight for case c (arrays malloc'd into *bufs)
static Tensor make_weight(const QCase *c, void **wbuf, void **sbuf, void **zbuf) {
    Tensor W = {0};
    const int bits = c->dt == DT_Q4 ? 4 : 8;
    const int64_t ld = c->dt == DT_Q4 ? ((int64_t)c->K * 4 + 31) / 32 * 4 : (c->dt == DT_Q8 ? ((int64_t)c->K + 3) / 4 * 4 : c->K);
    uint8_t *w = malloc((size_t)(ld * c->O));
    for (int64_t i = 0; i < ld * c->O; i++) {
        rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
        w[i] = (uint8_t)(rs >> 32);
        if (c->dt == DT_F8_E4M3 && (w[i] & 0x7f) == 0x7f) w[i] = 0x3f; // no NaN codes in weights
    }
    W.data = w, W.dtype = c->dt, W.rows = c->O, W.cols = c->K, W.ld = ld;
    W.group = c->per_tensor || !c->group ? c->K : c->group;
    W.block_rows = c->per_tensor ? c->O : c->block_rows ? c->block_rows : 1;
    W.scale_cols = (c->K + W.group - 1) / W.group;
    const int64_t srows = (c->O + W.block_rows - 1) / W.block_rows, ns = srows * W.scale_cols;
    void *s = malloc((size_t)ns * 4);
    for (int64_t i = 0; i < ns; i++) {
        float v = (0.5f + 0.5f * fabsf(frand())) * (c->dt == DT_F8_E4M3 ? 0.01f : 0.003f);
        if (c->sdt == DT_BF16) ((uint16_t *)s)[i] = f32_to_bf16(v);
        else ((float *)s)[i] = v;
    }
    W.scale = s, W.scale_dtype = c->sdt;
    *wbuf = w, *sbuf = s, *zbuf = NULL;
    if (c->zero) {
        const int64_t zr = ((int64_t)c->O * bits + 31) / 32;
        int32_t *z = malloc((size_t)(zr * W.scale_cols) * 4);
        for (int64_t i = 0; i < zr * W.scale_cols; i++) {
            rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
            z[i] = (int32_t)(rs >> 32);
        }
        W.zero = z, *zbuf = z;
    }
    return W;
}

static void set_isa(int isa) { // 2: AVX-512, 1: AVX2, 0: portable (only what the machine has)
    static CpuFeatures saved;
    static int have;
    if (!have) saved = cpu, have = 1;
    cpu = saved;
    if (isa < 2) cpu.avx512f = cpu.avx512bw = cpu.avx512bf16 = cpu.avx512vbmi = cpu.avx512vnni = 0;
    if (isa < 1) cpu.avx2 = cpu.fma = cpu.f16c = 0;
}

static void weight_case(const QCase *c) {
    void *wb, *sb, *zb;
    Tensor W = make_weight(c, &wb, &sb, &zb);
    const int O = c->O, K = c->K;
    const int Kp = (K + 127) & ~127;
    float *ref = malloc((size_t)K * 4), *row = malloc((size_t)K * 4), *x = malloc((size_t)K * 4);
    float *xp = malloc((size_t)Kp * 4), *refp = malloc((size_t)Kp * 4);
    for (int k = 0; k < K; k++) x[k] = frand();
    quant_permute_octets(xp, x, K);
    const char *isas[3] = {"portable", "avx2", "avx512"};
    for (int isa = 0; isa < 3; isa++) {
        set_isa(isa);
        if ((isa == 2 && !cpu.avx512f) || (isa == 1 && !cpu.avx2)) continue;
        int same_row = 1, same_dot = 1;
        for (int r = 0; r < O; r++) {
            quant_row_naive(ref, &W, r);
            quant_row(row, &W, r);
            same_row &= memcmp(ref, row, (size_t)K * 4) == 0;
            // int4 sums in octet order: dot_f32 over the octet-permuted row and activations; row-scale int8 its codes
            // float(q - zero), times the row's scale once
            quant_permute_octets(refp, ref, K);
            float d = quant_dot(x, &W, r), e;
            if (c->dt == DT_Q4) e = dot_f32(xp, refp, Kp);
            else if (quant_scale_after(&W)) quant_row_codes(row, &W, r), e = dot_f32(x, row, K) * quant_scale(&W, r, 0);
            else e = dot_f32(x, ref, K);
            same_dot &= memcmp(&d, &e, 4) == 0;
        }
        CHECK(same_row, "%s %s: quant_row == element-by-element reference (bits)", c->name, isas[isa]);
        CHECK(same_dot, "%s %s: quant_dot == dot_f32 over the reference row (bits%s)", c->name, isas[isa],
              c->dt == DT_Q4 ? ", octet order" : quant_scale_after(&W) ? ", the codes, then the row's scale" : "");
    }
    set_isa(2);
    // Linear: decode (1 row), a server's batched step (2, 3, 4 rows) and batches (7, 40 rows) vs naive; each row
    // alone == in the batch; 1 vs 2 threads
    const int ns[6] = {1, 2, 3, 4, 7, 40};
    const int nmax = 40;
    float *X = malloc((size_t)nmax * K * 4), *Y = malloc((size_t)nmax * O * 4), *Yn = malloc((size_t)nmax * O * 4);
    float *Y1 = malloc((size_t)O * 4), *Y2 = malloc((size_t)nmax * O * 4);
    for (int i = 0; i < nmax * K; i++) X[i] = frand();
    uint16_t *bb = malloc((size_t)O * 2);
    for (int o = 0; o < O; o++) bb[o] = f32_to_bf16(frand());
    Tensor B = {.data = bb, .dtype = DT_BF16, .rows = 1, .cols = O};
    for (ActQuant act = ACT_NONE; act <= ACT_FP8_GROUP; act++) {
        W.act = act;
        double worst = 0;
        int alone = 1, threads = 1, isas = 1;
        for (int q = 0; q < 6; q++) {
            const int n = ns[q];
            linear(Y, X, &W, &B, n);
            linear_naive(Yn, X, &W, &B, n);
            double e = 0, m = 0;
            for (int i = 0; i < n * O; i++) {
                e = fmax(e, fabs((double)Y[i] - Yn[i]));
                m = fmax(m, fabs((double)Yn[i]));
            }
            worst = fmax(worst, e / (m > 0 ? m : 1));
            for (int i = 0; i < n; i++) {
                linear(Y1, X + (int64_t)i * K, &W, &B, 1);
                alone &= memcmp(Y1, Y + (int64_t)i * O, (size_t)O * 4) == 0;
            }
            omp_set_num_threads(1);
            linear(Y2, X, &W, &B, n);
            omp_set_num_threads(2);
            threads &= memcmp(Y2, Y, (size_t)n * O * 4) == 0;
            for (int isa = 0; isa < 2; isa++) { // AVX2 and portable: the same bits (two-row decode passes included)
                set_isa(isa);
                linear(Y2, X, &W, &B, n);
                isas &= memcmp(Y2, Y, (size_t)n * O * 4) == 0;
            }
            set_isa(2);
        }
        CHECK(worst <= 2e-6, "%s act %d: Linear (1, 2, 3, 4, 7, 40 rows) vs naive: max err %.2e of the max", c->name, act,
              worst);
        CHECK(alone, "%s act %d: each row alone gives the batch's bits", c->name, act);
        CHECK(threads, "%s act %d: 1 and 2 threads give the same bits", c->name, act);
        CHECK(isas, "%s act %d: AVX-512, AVX2 and portable C give the same bits", c->name, act);
    }
    free(X), free(Y), free(Yn), free(Y1), free(Y2), free(bb);
    free(ref), free(row), free(x), free(xp), free(refp), free(wb), free(sb), free(zb);
}

// FP8 NaN codes (0x7f, 0xff) anywhere in a row (first line, a later line, the tail chunk): the kernels notice them
// and give the element-by-element reference's bits (a NaN output), on every ISA, in decode and in batches
static void fp8_nan_case(void) {
    const QCase c = {"fp8 NaN codes", DT_F8_E4M3, 24, 150, 0, 0, 0, 0, DT_BF16};
    void *wb, *sb, *zb;
    Tensor W = make_weight(&c, &wb, &sb, &zb);
    const int K = c.K, cols[6] = {0, 63, 64, 100, 147, 149};
    for (int r = 0; r < 12; r++) ((uint8_t *)wb)[r * W.ld + cols[r % 6]] = r < 6 ? 0x7f : 0xff; // rows 12..23 clean
    float *x = malloc((size_t)K * 4), *ref = malloc((size_t)K * 4), *row = malloc((size_t)K * 4);
    float *y = malloc((size_t)c.O * 4), *Y = malloc((size_t)2 * c.O * 4), *X = malloc((size_t)2 * K * 4);
    for (int k = 0; k < K; k++) x[k] = frand(), X[k] = x[k], X[K + k] = frand();
    const char *isas[3] = {"portable", "avx2", "avx512"};
    for (int isa = 0; isa < 3; isa++) {
        set_isa(isa);
        if ((isa == 2 && !cpu.avx512f) || (isa == 1 && !cpu.avx2)) continue;
        int ok = 1;
        linear(y, x, &W, NULL, 1);
        linear(Y, X, &W, NULL, 2);
        for (int r = 0; r < c.O; r++) {
            quant_row_naive(ref, &W, r);
            quant_row(row, &W, r);
            ok &= memcmp(ref, row, (size_t)K * 4) == 0;
            const float d = quant_dot(x, &W, r), e = dot_f32(x, ref, K);
            ok &= memcmp(&d, &e, 4) == 0 && (r < 12) == (isnan(d) != 0) && memcmp(&y[r], &d, 4) == 0;
            ok &= (r < 12) == (isnan(Y[r]) != 0);
        }
        CHECK(ok, "fp8 NaN codes %s: rows with a NaN code give the reference's bits (NaN), the others stay finite", isas[isa]);
    }
    set_isa(2);
    free(x), free(ref), free(row), free(y), free(Y), free(X), free(wb), free(sb), free(zb);
}

// Linear of W (+ B) over 1, 2, 3, 4, 7 and 40 rows of X on four paths (portable, AVX2, AVX-512 without the feature *feat,
// with it; the last two only where have512): the bits of Yn (the naive twin), for each row alone too, on 1 and 2
// threads
static void check_paths(const char *name, const Tensor *W, const Tensor *B, const float *X, const float *Yn, int O,
                        int K, int have512, int *feat, const char *const paths[4]) {
    const int ns[6] = {1, 2, 3, 4, 7, 40}, has_feat = *feat; // (2-4: the batched decode kernels)
    float *Y = malloc((size_t)40 * O * 4), *Y1 = malloc((size_t)O * 4);
    for (int path = 0; path < 4; path++) {
        set_isa(path == 0 ? 0 : path == 1 ? 1 : 2);
        if ((path >= 2 && !have512) || (path == 3 && !has_feat) || (path == 1 && !cpu.avx2)) continue;
        if (path == 2) *feat = 0;
        int same = 1, alone = 1, threads = 1;
        for (int q = 0; q < 6; q++) {
            const int n = ns[q];
            linear(Y, X, W, B, n);
            same &= memcmp(Y, Yn, (size_t)n * O * 4) == 0;
            for (int i = 0; i < n; i++) {
                linear(Y1, X + (int64_t)i * K, W, B, 1);
                alone &= memcmp(Y1, Y + (int64_t)i * O, (size_t)O * 4) == 0;
            }
            omp_set_num_threads(1);
            linear(Y1, X, W, B, 1);
            omp_set_num_threads(2);
            threads &= memcmp(Y1, Y, (size_t)O * 4) == 0;
        }
        CHECK(same, "%s %s: Linear (1, 2, 3, 4, 7, 40 rows) == the naive twin (bits)", name, paths[path]);
        CHECK(alone, "%s %s: each row alone gives the batch's bits", name, paths[path]);
        CHECK(threads, "%s %s: 1 and 2 threads give the same bits", name, paths[path]);
    }
    set_isa(2);
    free(Y), free(Y1);
}

// a case of the exact-product Linears (FP8 x FP8, W8A8) on 40 random rows (zero codes in the first) with a bias:
// naive (their reference twin) within fp32 rounding of transformers' formula (quant_linear_naive), then the
// Linear on every path against it (check_paths); returns the rows (malloc'd) for the caller's own checks
static float *exact_case(const char *name, const Tensor *W, void (*naive)(float *, const float *, const Tensor *,
                                                                          const Tensor *, int),
                         int have512, int *feat, const char *const paths[4]) {
    const int O = (int)W->rows, K = (int)W->cols, nmax = 40;
    float *X = malloc((size_t)nmax * K * 4), *Yn = malloc((size_t)nmax * O * 4), *Yh = malloc((size_t)nmax * O * 4);
    for (int i = 0; i < nmax * K; i++) X[i] = frand() * (i % 7 == 0 ? 8.0f : 1.0f);
    for (int k = 0; k < K && K > 4; k += 5) X[k] = 0.0f; // zero codes in the first row
    uint16_t *bb = malloc((size_t)O * 2);
    for (int o = 0; o < O; o++) bb[o] = f32_to_bf16(frand());
    Tensor B = {.data = bb, .dtype = DT_BF16, .rows = 1, .cols = O};
    naive(Yn, X, W, &B, nmax);
    quant_linear_naive(Yh, X, W, &B, nmax);
    double worst = 0, mag = 0;
    for (int i = 0; i < nmax * O; i++) worst = fmax(worst, fabs((double)Yn[i] - Yh[i])), mag = fmax(mag, fabs((double)Yh[i]));
    CHECK(worst <= 2e-6 * (mag > 0 ? mag : 1), "%s: the exact products vs transformers' formula: max err %.2e of the max %.2e",
          name, worst, mag);
    check_paths(name, W, &B, X, Yn, O, K, have512, feat, paths);
    free(Yn), free(Yh), free(bb);
    return X;
}

// FP8 x FP8 (quant_fp8x.c: per-channel or per-tensor FP8 weights, dynamic per-token FP8 activations): the Linear
// (decode rows read as FP8 bytes, batches through the bf16 tiles) gives the bits of fp8x_linear_naive on every path
// (AVX512_BF16 with and without VBMI, AVX2, portable), for a row alone or in a batch, on 1 and 2 threads; and it is
// within fp32 rounding of transformers' formula (quant_linear_naive: x' = fp8(x / sx) * sx, w' = q * sw, in double)
static void fp8x_cases(void) {
    int lut = 1;
    for (int b = 0; b < 256; b++) { // every code's bf16 is the code's value (exact)
        const float v = fp8_e4m3_to_f32((uint8_t)b);
        if (isnan(v)) continue;
        lut &= bf16_to_f32(f32_to_bf16(v)) == v;
    }
    CHECK(lut, "fp8x: every E4M3 value is an exact bf16");
    const QCase cases[] = {
        {"fp8x channel K=1", DT_F8_E4M3, 5, 1, 0, 0, 0, 0, DT_BF16},
        {"fp8x channel K=63", DT_F8_E4M3, 19, 63, 0, 0, 0, 0, DT_BF16},
        {"fp8x channel K=64", DT_F8_E4M3, 23, 64, 0, 0, 0, 0, DT_BF16},
        {"fp8x tensor K=65 f32", DT_F8_E4M3, 17, 65, 0, 0, 1, 0, DT_F32},
        {"fp8x channel K=200 f32", DT_F8_E4M3, 41, 200, 0, 0, 0, 0, DT_F32},
        {"fp8x channel many rows K=1000", DT_F8_E4M3, 301, 1000, 0, 0, 0, 0, DT_BF16},
        {"fp8x channel long rows K=2100", DT_F8_E4M3, 19, 2100, 0, 0, 0, 0, DT_BF16}, // eight rows per pass
        {"fp8x channel long rows K=2100, 83 rows", DT_F8_E4M3, 83, 2100, 0, 0, 0, 0, DT_BF16}, // decode streams
    };
    const char *paths[4] = {"portable", "avx2", "avx512bf16 without vbmi", "avx512bf16 + vbmi"};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const QCase *c = &cases[ci];
        void *wb, *sb, *zb;
        Tensor W = make_weight(c, &wb, &sb, &zb);
        W.act = ACT_FP8_TOKEN;
        CHECK(fp8x_applies(&W), "%s: runs as FP8 x FP8", c->name);
        const int O = c->O;
        float *X = exact_case(c->name, &W, fp8x_linear_naive, cpu.avx512bf16, &cpu.avx512vbmi, paths), *Y = malloc((size_t)2 * O * 4);
        // a NaN activation: the row's scale is NaN, so is every output of the row; --act-quant off: not FP8 x FP8
        X[0] = NAN;
        linear(Y, X, &W, NULL, 2);
        int nan = 1;
        for (int o = 0; o < O; o++) nan &= isnan(Y[o]) && !isnan(Y[O + o]);
        CHECK(nan, "%s: a NaN input gives NaN outputs in its row only", c->name);
        quant_act_enabled = 0;
        CHECK(!fp8x_applies(&W), "%s: --act-quant off leaves FP8 x FP8", c->name);
        quant_act_enabled = 1;
        free(X), free(Y), free(wb), free(sb), free(zb);
    }
    const QCase g = {"fp8 group 32", DT_F8_E4M3, 4, 64, 32, 0, 0, 0, DT_BF16};
    void *wb, *sb, *zb;
    Tensor W = make_weight(&g, &wb, &sb, &zb);
    W.act = ACT_FP8_TOKEN;
    CHECK(!fp8x_applies(&W), "fp8x: weights scaled per group of columns keep the fp32 path");
    free(wb), free(sb), free(zb);
}

// FP8 x FP8 weights holding NaN codes (0x7f, 0xff) in 12 of 24 rows (in the first 64-column block, a later one,
// the tail): on every path (portable, AVX2, AVX-512 without VBMI: the AVX2 decode kernel, which notices the codes
// and sends the row through the converted row; AVX512_BF16 + VBMI) and for 1-4 activation rows, those rows give
// NaN and the others the naive twin's bits
static void fp8x_nan_case(void) {
    const QCase c = {"fp8x NaN codes", DT_F8_E4M3, 24, 150, 0, 0, 0, 0, DT_BF16};
    void *wb, *sb, *zb;
    Tensor W = make_weight(&c, &wb, &sb, &zb);
    W.act = ACT_FP8_TOKEN;
    const int K = c.K, O = c.O, cols[6] = {0, 63, 64, 100, 147, 149};
    for (int r = 0; r < 12; r++) ((uint8_t *)wb)[r * W.ld + cols[r % 6]] = r < 6 ? 0x7f : 0xff;
    float *X = malloc((size_t)4 * K * 4), *Y = malloc((size_t)4 * O * 4), *Yn = malloc((size_t)4 * O * 4);
    for (int i = 0; i < 4 * K; i++) X[i] = frand();
    fp8x_linear_naive(Yn, X, &W, NULL, 4);
    const char *paths[4] = {"portable", "avx2", "avx512 without vbmi", "avx512"};
    for (int path = 0; path < 4; path++) {
        set_isa(path == 0 ? 0 : path == 1 ? 1 : 2);
        if ((path == 1 && !cpu.avx2) || (path >= 2 && !cpu.avx512f)) continue;
        if (path == 2) cpu.avx512vbmi = 0;
        int ok = 1;
        for (int n = 1; n <= 4; n++) {
            linear(Y, X, &W, NULL, n);
            for (int i = 0; i < n; i++)
                for (int r = 0; r < O; r++) {
                    const float a = Y[i * O + r], e = Yn[i * O + r];
                    ok &= r < 12 ? isnan(a) != 0 : memcmp(&a, &e, 4) == 0;
                }
        }
        CHECK(ok, "fp8x NaN codes %s: rows with a NaN code give NaN, the others the naive twin's bits (1-4 rows)", paths[path]);
    }
    set_isa(2);
    free(X), free(Y), free(Yn), free(wb), free(sb), free(zb);
}

// W8A8 (quant_i8x.c: int8 weights per channel or tensor, dynamic per-token int8 activations): the Linear's integer
// sums are exact, so every path (AVX512_VNNI, AVX2, portable), batch, row position and thread count gives the bits
// of i8x_linear_naive; within fp32 rounding of transformers' formula (quant_linear_naive); a row holding NaN or inf
// gives NaN outputs (transformers' x / inf * inf)
static void i8x_cases(void) {
    const QCase cases[] = {
        {"i8x int8 channel K=1", DT_I8, 5, 1, 0, 0, 0, 0, DT_BF16},
        {"i8x int8 channel K=63", DT_I8, 19, 63, 0, 0, 0, 0, DT_BF16},
        {"i8x int8 tensor K=65 f32", DT_I8, 17, 65, 0, 0, 1, 0, DT_F32},
        {"i8x int8 channel many rows K=1000", DT_I8, 301, 1000, 0, 0, 0, 0, DT_BF16},
        {"i8x int8 channel long rows K=2100", DT_I8, 19, 2100, 0, 0, 0, 0, DT_BF16},
        {"i8x pack q8 channel K=200", DT_Q8, 41, 200, 0, 0, 0, 0, DT_BF16},
        {"i8x pack q8 channel long rows K=2112", DT_Q8, 19, 2112, 0, 0, 0, 0, DT_F32},
        {"i8x pack q8 channel long rows K=2112, 83 rows", DT_Q8, 83, 2112, 0, 0, 0, 0, DT_BF16}, // decode streams
    };
    const char *paths[4] = {"portable", "avx2", "avx512 without vnni", "avx512 vnni"};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const QCase *c = &cases[ci];
        void *wb, *sb, *zb;
        Tensor W = make_weight(c, &wb, &sb, &zb);
        W.act = ACT_INT8_TOKEN;
        CHECK(i8x_applies(&W) && !fp8x_applies(&W), "%s: runs as W8A8 integer products", c->name);
        const int O = c->O, K = c->K;
        float *X = exact_case(c->name, &W, i8x_linear_naive, cpu.avx512f, &cpu.avx512vnni, paths), *Y = malloc((size_t)3 * O * 4);
        X[0] = NAN, X[K] = INFINITY;
        linear(Y, X, &W, NULL, 3);
        int nan = 1;
        for (int o = 0; o < O; o++) nan &= isnan(Y[o]) && isnan(Y[O + o]) && !isnan(Y[2 * O + o]);
        CHECK(nan, "%s: a NaN or infinite input gives NaN outputs in its row only", c->name);
        free(X), free(Y), free(wb), free(sb), free(zb);
    }
    const QCase z = {"q8 zero points", DT_Q8, 4, 64, 0, 0, 0, 1, DT_BF16};
    void *wb, *sb, *zb;
    Tensor W = make_weight(&z, &wb, &sb, &zb);
    W.act = ACT_INT8_TOKEN;
    CHECK(!i8x_applies(&W), "i8x: weights with zero points keep the fp32 path");
    free(wb), free(sb), free(zb);
}

int main(void) {
    ops_init();
    ops_reserve(4096);
    fp8_cases();
    act_cases();
    act_vectors();
    const QCase cases[] = {
        {"fp8 channel bf16", DT_F8_E4M3, 37, 200, 0, 0, 0, 0, DT_BF16},
        {"fp8 tensor f32", DT_F8_E4M3, 21, 64, 0, 0, 1, 0, DT_F32},
        {"fp8 block 16x32", DT_F8_E4M3, 40, 96, 32, 16, 0, 0, DT_F32},
        {"fp8 group 16 tail", DT_F8_E4M3, 9, 120, 16, 0, 0, 0, DT_BF16},
        {"int8 channel", DT_I8, 33, 130, 0, 0, 0, 0, DT_BF16},
        {"q8 group 32 zero", DT_Q8, 35, 96, 32, 0, 0, 1, DT_BF16},
        {"q4 group 32", DT_Q4, 37, 128, 32, 0, 0, 0, DT_BF16},
        {"q4 group 128 zero", DT_Q4, 19, 256, 128, 0, 0, 1, DT_F32},
        {"q4 channel odd K", DT_Q4, 11, 75, 0, 0, 0, 0, DT_BF16},
        {"q4 group 8 (generic)", DT_Q4, 13, 64, 8, 0, 0, 1, DT_BF16},
        {"q4 group 16", DT_Q4, 21, 96, 16, 0, 0, 0, DT_BF16},
        {"q4 group 32 zero, 2 blocks + tail", DT_Q4, 23, 288, 32, 0, 0, 1, DT_BF16},
        {"q4 group 256 f32", DT_Q4, 19, 512, 256, 0, 0, 0, DT_F32},
        {"q4 group 64 partial last", DT_Q4, 17, 160, 64, 0, 0, 1, DT_BF16},
        // enough rows that decode tasks run the eight-row passes (then four, two, one)
        {"q4 group 128 many rows", DT_Q4, 300, 256, 128, 0, 0, 0, DT_BF16},
        {"q8 channel many rows", DT_Q8, 300, 128, 0, 0, 0, 0, DT_BF16},
        {"fp8 channel many rows", DT_F8_E4M3, 300, 112, 0, 0, 0, 0, DT_BF16},
        // one activation row: a task's rows read as five streams (quant.c's dots_512), with groups, zero points, blocks
        {"q8 group 32 zero many rows", DT_Q8, 131, 96, 32, 0, 0, 1, DT_BF16},
        {"int8 channel many long rows", DT_I8, 97, 2100, 0, 0, 0, 0, DT_F32},
        {"fp8 block 16x32 many rows", DT_F8_E4M3, 160, 96, 32, 16, 0, 0, DT_F32},
        {"q4 group 32 zero many rows", DT_Q4, 113, 288, 32, 0, 0, 1, DT_BF16},
        {"q4 group 128 many long rows", DT_Q4, 67, 4224, 128, 0, 0, 0, DT_F32},
        // rows of 2048 bytes or more: eight rows per pass (shorter ones run four)
        {"fp8 channel long rows", DT_F8_E4M3, 11, 2100, 0, 0, 0, 0, DT_BF16},
        {"q8 channel long rows", DT_Q8, 11, 2112, 0, 0, 0, 0, DT_BF16},
        {"q4 group 128 long rows", DT_Q4, 11, 4224, 128, 0, 0, 0, DT_BF16},
        // row-scale int8 (the codes' sum times the scale): zero points, odd K, per tensor, blocks of rows, streams
        {"q8 channel zero odd K", DT_Q8, 29, 75, 0, 0, 0, 1, DT_BF16},
        {"int8 tensor f32 K=37", DT_I8, 21, 37, 0, 0, 1, 0, DT_F32},
        {"int8 block 8 rows", DT_I8, 40, 96, 96, 8, 0, 0, DT_F32},
        {"q8 channel zero many long rows", DT_Q8, 83, 2100, 0, 0, 0, 1, DT_BF16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) weight_case(&cases[i]);
    fp8_nan_case();
    fp8x_cases();
    fp8x_nan_case();
    i8x_cases();
    return test_done();
}
