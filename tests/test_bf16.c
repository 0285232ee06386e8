// SPDX-License-Identifier: MIT
// test_bf16.c - the bf16 compute mode (ops_bf16.c): the emulated vdpbf16ps step against the instruction on random
// scalars (denormals, values around FLT_MIN, signed zeros); Linear on every path (AVX512_BF16, AVX2 emulation,
// portable emulation) bit-identical to the naive twin for bf16 / f16 / f32 weights and odd K; rows batch-invariant
// (alone = in a batch) and thread-count independent; attention's pair products likewise, the bf16 attention
// path-, block- and decode-invariant; f32 mode untouched by the switch.
#include "../ops.h"
#include "../ops_bf16.h"
#include "test_util.h"

#include <float.h>
#include <omp.h>
#include <string.h>

static uint64_t rs = 88172645463325252ULL;
static uint64_t rnd(void) { return t_rnd(&rs); }
static float frand(void) { return t_frand(&rs); }
#define bits t_bits
#define fbits t_fbits

// a random finite bf16 with the biased exponent in [elo, ehi]
static uint16_t rbf(int elo, int ehi) {
    return (uint16_t)((rnd() & 0x807f) | (uint16_t)((elo + (int)(rnd() % (uint64_t)(ehi - elo + 1))) << 7));
}

// the scalar emulation of one vdpbf16ps lane step against the instruction
static void check_pair_step(void) {
    if (!cpu.avx512bf16) {
        printf("ok - # SKIP vdpbf16ps step: no AVX512_BF16 on this CPU (the emulation is checked against the naive twin)\n");
        return;
    }
    long bad = 0, n = 0;
    for (int mode = 0; mode < 4; mode++)
        for (int t = 0; t < 400000; t++, n++) {
            uint16_t a0, a1, b0, b1;
            float acc;
            if (mode == 0) { // normal values of mixed magnitude (cancellation, rounding ties)
                a0 = rbf(110, 140), a1 = rbf(110, 140), b0 = rbf(110, 140), b1 = rbf(110, 140);
                acc = fbits((uint32_t)(rnd() & 0x807fffff) | (uint32_t)(100 + rnd() % 60) << 23);
            } else if (mode == 1) { // any finite bits (denormal inputs, overflow to inf)
                do a0 = (uint16_t)rnd(); while (((a0 >> 7) & 0xff) == 0xff);
                do a1 = (uint16_t)rnd(); while (((a1 >> 7) & 0xff) == 0xff);
                do b0 = (uint16_t)rnd(); while (((b0 >> 7) & 0xff) == 0xff);
                do b1 = (uint16_t)rnd(); while (((b1 >> 7) & 0xff) == 0xff);
                uint32_t u;
                do u = (uint32_t)rnd(); while (((u >> 23) & 0xff) == 0xff);
                acc = fbits(u);
            } else if (mode == 2) { // products and sums near the denormal range (FTZ of results)
                a0 = rbf(0, 8), a1 = rbf(0, 8), b0 = rbf(60, 130), b1 = rbf(60, 130);
                acc = fbits((uint32_t)(rnd() & 0x807fffff) | (uint32_t)(rnd() % 4) << 23);
            } else { // acc within a few ulp of +-FLT_MIN and a product that nearly cancels it (rounding at the edge)
                const float fm = FLT_MIN * (1.0f + (float)(rnd() % 8) * FLT_EPSILON);
                acc = rnd() & 1 ? fm : -fm;
                const uint16_t p = f32_to_bf16(-acc * (float)(1 + rnd() % 3));
                a0 = rnd() & 1 ? 0x3f80 : 0xbf80, b0 = (uint16_t)(p + (uint16_t)(rnd() % 3) - 1);
                a1 = rbf(0, 2), b1 = rbf(100, 127);
            }
            if (bits(bf16c_pair_step(acc, a0, a1, b0, b1)) != bits(bf16c_pair_step_hw(acc, a0, a1, b0, b1))) { if (bad < 6) printf("# mode %d acc %08x a %04x %04x b %04x %04x: emu %08x hw %08x\n", mode, bits(acc), a0, a1, b0, b1, bits(bf16c_pair_step(acc, a0, a1, b0, b1)), bits(bf16c_pair_step_hw(acc, a0, a1, b0, b1))); bad++; }
        }
    CHECK(bad == 0, "vdpbf16ps step: the emulation equals the instruction on %ld random cases (%ld differ)", n, bad);
}

// W [O, K] of dtype dt with random values (a few denormal / tiny ones), x [n, K] likewise
static void fill(void *w, DType dt, size_t nw, float *x, size_t nx, int tiny) {
    for (size_t i = 0; i < nw; i++) {
        float f = frand() * 0.1f;
        if (tiny && rnd() % 16 == 0) f *= 1e-36f; // bf16 / f32 denormals and products below FLT_MIN
        if (dt == DT_F32) ((float *)w)[i] = f;
        else if (dt == DT_BF16) ((uint16_t *)w)[i] = f32_to_bf16(f);
        else ((uint16_t *)w)[i] = (uint16_t)((rnd() & 0x83ff) | (uint16_t)((4 + rnd() % 12) << 10)); // f16
    }
    for (size_t i = 0; i < nx; i++) {
        x[i] = frand() * 2.0f;
        if (tiny && rnd() % 16 == 0) x[i] *= 1e-37f;
    }
}

static const char *path_names[3] = {"AVX512_BF16", "AVX2 emulation", "portable emulation"};

// select a path by masking the CPU features (restored from saved); 0 when this CPU lacks it
static int use_path(int p, const CpuFeatures *saved) {
    cpu = *saved;
    if (p == 0) return saved->avx512bf16;
    if (p == 1) {
        cpu.avx512f = cpu.avx512bw = cpu.avx512bf16 = 0;
        return saved->avx2;
    }
    memset(&cpu, 0, sizeof cpu);
    return 1;
}

static void check_linear(DType dt, int O, int K, int n, int tiny) {
    const size_t nw = (size_t)O * K, nx = (size_t)n * K, ny = (size_t)n * O;
    void *w = malloc(nw * 4);
    float *x = malloc(nx * 4), *yr = malloc(ny * 4), *y = malloc(ny * 4), *y1 = malloc((size_t)O * 4);
    uint16_t *bb = malloc((size_t)O * 2);
    fill(w, dt, nw, x, nx, tiny);
    for (int i = 0; i < O; i++) bb[i] = f32_to_bf16(frand());
    Tensor W = {.data = w, .dtype = dt, .rows = O, .cols = K}, B = {.data = bb, .dtype = DT_BF16, .rows = 1, .cols = O};
    const CpuFeatures saved = cpu;
    linear_bf16c_naive(yr, x, &W, &B, n);
    ops_compute = COMPUTE_BF16;
    for (int p = 0; p < 3; p++) {
        if (!use_path(p, &saved)) continue;
        omp_set_num_threads(1 + p % 2);
        linear(y, x, &W, &B, n);
        int same = memcmp(y, yr, ny * 4) == 0, inv = 1;
        // batch invariance: the last row alone (a decode step) and the first rows as a smaller batch
        linear(y1, x + (size_t)(n - 1) * K, &W, &B, 1);
        inv &= memcmp(y1, y + (size_t)(n - 1) * O, (size_t)O * 4) == 0;
        if (n > 5) {
            omp_set_num_threads(2 - p % 2);
            float *y5 = malloc((size_t)5 * O * 4);
            linear(y5, x, &W, &B, 5);
            inv &= memcmp(y5, y, (size_t)5 * O * 4) == 0;
            free(y5);
        }
        CHECK(same && inv, "bf16 compute %s: linear %s [%d x %d] n=%d%s: bit-identical to the naive twin%s%s",
              path_names[p], dtype_name[dt], O, K, n, tiny ? " (denormals)" : "", same ? "" : " (DIFFERS)",
              inv ? ", rows batch-invariant" : ", rows NOT batch-invariant");
    }
    cpu = saved;
    ops_compute = COMPUTE_F32;
    omp_set_num_threads(2);
    free(w), free(x), free(yr), free(y), free(y1), free(bb);
}

// Linear rows whose lane-0 chain passes within a few ulp of FLT_MIN (the FTZ edge, where "tiny after rounding"
// matters): chunk 0 sets acc = w1 * x1 + w0 * x0 near +-FLT_MIN, chunk 1 adds products that nearly cancel it
static void check_edge(void) {
    const int O = 257, K = 64, n = 4;
    uint16_t *w = calloc((size_t)O * K, 2);
    float *x = calloc((size_t)n * K, 4), *yr = malloc((size_t)n * O * 4), *y = malloc((size_t)n * O * 4);
    for (int i = 0; i < n; i++) {
        x[i * K + 1] = 1.0f, x[i * K + 33] = 1.0f;
        x[i * K + 0] = bf16_to_f32(rbf(100, 110)), x[i * K + 32] = bf16_to_f32(rbf(100, 110) | 0x8000);
    }
    for (int o = 0; o < O; o++) {
        w[o * K + 1] = (uint16_t)(0x0080 | (rnd() & 0x8003));         // +-FLT_MIN (1 + k / 128)
        w[o * K + 0] = rbf(1, 30), w[o * K + 32] = rbf(1, 30);       // products of 2^-150 .. 2^-110
        w[o * K + 33] = (uint16_t)(w[o * K + 1] ^ (rnd() & 1 ? 0x8000 : 0)); // cancels acc, or doubles it
    }
    Tensor W = {.data = w, .dtype = DT_BF16, .rows = O, .cols = K};
    linear_bf16c_naive(yr, x, &W, NULL, n);
    const CpuFeatures saved = cpu;
    ops_compute = COMPUTE_BF16;
    for (int p = 0; p < 3; p++) {
        if (!use_path(p, &saved)) continue;
        linear(y, x, &W, NULL, n);
        int nz = 0;
        for (int i = 0; i < n * O; i++) nz += yr[i] != 0.0f;
        CHECK(memcmp(y, yr, (size_t)n * O * 4) == 0, "bf16 compute %s: %d rows at the FTZ edge bit-identical to the naive twin (%d of %d outputs nonzero)",
              path_names[p], O, nz, n * O);
    }
    cpu = saved;
    ops_compute = COMPUTE_F32;
    free(w), free(x), free(yr), free(y);
}

// gemm_pairs (attention's products in the bf16 mode) on every path against its naive twin: random pairs with
// denormals, the accumulating form from a C with denormals, column counts that leave a masked tail
static void check_gemm_pairs(int M, int N, int Kp, int accumulate) {
    uint32_t *A = malloc((size_t)M * Kp * 4), *B = malloc((size_t)Kp * N * 4);
    float *C0 = malloc((size_t)M * N * 4), *Cr = malloc((size_t)M * N * 4), *C = malloc((size_t)M * N * 4);
    for (int i = 0; i < M * Kp; i++) A[i] = (uint32_t)rbf(rnd() % 8 ? 100 : 0, 140) | (uint32_t)rbf(100, 140) << 16;
    for (int i = 0; i < Kp * N; i++) B[i] = (uint32_t)rbf(100, 140) | (uint32_t)rbf(rnd() % 8 ? 100 : 0, 140) << 16;
    for (int i = 0; i < M * N; i++) C0[i] = rnd() % 8 ? frand() : frand() * 1e-38f;
    memcpy(Cr, C0, (size_t)M * N * 4);
    gemm_pairs_naive(Cr, N, A, Kp, 1, B, N, M, N, Kp, accumulate);
    const CpuFeatures saved = cpu;
    for (int p = 0; p < 3; p++) {
        if (!use_path(p, &saved)) continue;
        memcpy(C, C0, (size_t)M * N * 4);
        gemm_pairs(C, N, A, Kp, 1, B, N, M, N, Kp, accumulate);
        CHECK(memcmp(C, Cr, (size_t)M * N * 4) == 0, "gemm_pairs %s [%d x %d] Kp=%d%s: bit-identical to the naive twin",
              path_names[p], M, N, Kp, accumulate ? " accumulating" : "");
    }
    cpu = saved;
    free(A), free(B), free(C0), free(Cr), free(C);
}

// pack_pairs_rows with a column scale on every path: the pairs of the rows multiplied in fp32 first (odd row counts,
// a masked column tail, denormal products)
static void check_pack_scaled(int rows, int n) {
    float *src = malloc((size_t)rows * n * 4), *pre = malloc((size_t)rows * n * 4), *cs = malloc((size_t)n * 4);
    const int np = (rows + 1) / 2;
    uint32_t *ref = malloc((size_t)np * n * 4), *got = malloc((size_t)np * n * 4);
    for (int j = 0; j < n; j++) cs[j] = rnd() % 4 ? frand() * 3.0f : frand() * 1e-30f;
    for (int i = 0; i < rows * n; i++) src[i] = rnd() % 8 ? frand() : frand() * 1e-10f, pre[i] = src[i] * cs[i % n];
    const CpuFeatures saved = cpu;
    int ok = 1;
    for (int p = 0; p < 3; p++) {
        if (!use_path(p, &saved)) continue;
        pack_pairs_rows(ref, n, pre, n, rows, n, NULL);
        pack_pairs_rows(got, n, src, n, rows, n, cs);
        ok &= memcmp(ref, got, (size_t)np * n * 4) == 0;
    }
    cpu = saved;
    CHECK(ok, "pack_pairs_rows with a column scale [%d x %d]: the pairs of the products on every path", rows, n);
    free(src), free(pre), free(cs), free(ref), free(got);
}

// attention_head in the bf16 mode: the three paths bit-identical, each query alone (decode) equal to its row of the
// prefill (also across key blocks), and close to the double-precision naive attention (bf16 operands: ~1e-2)
static void check_attention_bf16(int nq, int nk, int hd, int off) {
    const int ld = hd + 3;
    float *q = malloc((size_t)nq * ld * 4), *k = malloc((size_t)nk * ld * 4), *v = malloc((size_t)nk * ld * 4);
    float *o[3], *r = calloc((size_t)nq * ld, 4), *one = calloc((size_t)ld, 4), *sc = malloc(attention_scratch_floats(nk) * 4);
    for (int i = 0; i < nq * ld; i++) q[i] = frand();
    for (int i = 0; i < nk * ld; i++) k[i] = frand(), v[i] = frand();
    const CpuFeatures saved = cpu;
    attention_head_naive(r, ld, q, ld, k, ld, v, ld, nq, nk, hd, 0.125f, off);
    ops_compute = COMPUTE_BF16;
    int same = 1, dec = 1, np = 0;
    for (int p = 0; p < 3; p++) {
        o[p] = calloc((size_t)nq * ld, 4);
        if (!use_path(p, &saved)) {
            memcpy(o[p], o[0], (size_t)nq * ld * 4);
            continue;
        }
        np++;
        attention_head(o[p], ld, q, ld, k, ld, v, ld, nq, nk, hd, 0.125f, off, sc);
        same &= memcmp(o[p], o[0], (size_t)nq * ld * 4) == 0;
    }
    // bidirectional, even head_dim: K and V packed once beforehand (the vision tower's path) give the same bits
    int pk = 1;
    if (off < 0 && hd % 2 == 0) {
        const int hd2 = hd / 2, ldv = hd + 5;
        uint32_t *kpk = malloc((size_t)nk * hd2 * 4), *vpk = malloc((size_t)(nk + 1) / 2 * ldv * 4);
        float *o2 = calloc((size_t)nq * ld, 4);
        ops_compute = COMPUTE_BF16;
        for (int p = 0; p < 3; p++) {
            if (!use_path(p, &saved)) continue;
            pack_pairs_cols(kpk, hd2, k, ld, nk, hd);
            pack_pairs_rows(vpk, ldv, v, ld, nk, hd, NULL);
            memset(o2, 0, (size_t)nq * ld * 4);
            attention_head_kvpairs(o2, ld, q, ld, kpk, hd2, vpk, ldv, nq, nk, hd, 0.125f, sc);
            pk &= memcmp(o2, o[0], (size_t)nq * ld * 4) == 0;
        }
        free(kpk), free(vpk), free(o2);
    }
    cpu = saved;
    for (int i = 0; i < nq && off >= 0; i++) {
        attention_head(one, ld, q + (size_t)i * ld, ld, k, ld, v, ld, 1, off + i + 1, hd, 0.125f, -1, sc);
        dec &= memcmp(one, o[0] + (size_t)i * ld, (size_t)hd * 4) == 0;
    }
    ops_compute = COMPUTE_F32;
    double e = 0, m = 0;
    for (int i = 0; i < nq; i++)
        for (int d = 0; d < hd; d++)
            e = fmax(e, fabs((double)o[0][i * ld + d] - r[i * ld + d])), m = fmax(m, fabs(r[i * ld + d]));
    CHECK(same && dec && pk && e < 2e-2 * m, "bf16 attention nq=%d nk=%d hd=%d %s: %d paths bit-identical%s, decode "
          "rows %s, K/V packed beforehand %s, vs naive %.2g (max %.2g)", nq, nk, hd,
          off >= 0 ? "causal" : "bidirectional", np, same ? "" : " (NOT)", off >= 0 ? (dec ? "equal" : "DIFFER") : "n/a",
          off < 0 && hd % 2 == 0 ? (pk ? "equal" : "DIFFER") : "n/a", e, m);
    free(q), free(k), free(v), free(r), free(one), free(sc), free(o[0]), free(o[1]), free(o[2]);
}

// the mode is a switch: f32 results are the same before and after a bf16 run, and bf16 differs from f32 by bf16
// rounding (about 2^-8 relative per input), not more
static void check_modes(void) {
    const int O = 37, K = 300, n = 9;
    uint16_t *w = malloc((size_t)O * K * 2);
    float *x = malloc((size_t)n * K * 4), *a = malloc((size_t)n * O * 4), *b = malloc((size_t)n * O * 4),
          *c = malloc((size_t)n * O * 4);
    fill(w, DT_BF16, (size_t)O * K, x, (size_t)n * K, 0);
    Tensor W = {.data = w, .dtype = DT_BF16, .rows = O, .cols = K};
    linear(a, x, &W, NULL, n);
    ops_compute = COMPUTE_BF16;
    linear(b, x, &W, NULL, n);
    ops_compute = COMPUTE_F32;
    linear(c, x, &W, NULL, n);
    double e = 0, m = 0;
    for (int i = 0; i < n * O; i++) e = fmax(e, fabs((double)a[i] - b[i])), m = fmax(m, fabs(a[i]));
    CHECK(memcmp(a, c, (size_t)n * O * 4) == 0, "compute f32 after bf16: the same bits as before");
    CHECK(e > 0 && e < m * 2e-2, "compute bf16 vs f32: max abs diff %.3g (max |y| %.3g): bf16 rounding only", e, m);
    free(w), free(x), free(a), free(b), free(c);
}

int main(void) {
    ops_init();
    printf("# cpu features: %s%s\n", ops_features(), cpu.avx512bf16 ? ", avx512bf16" : "");
    CHECK(ops_set_compute("bf16") == 0 && ops_compute == COMPUTE_BF16 && ops_set_compute("f32") == 0 &&
              ops_compute == COMPUTE_F32 && ops_set_compute("fp16") == -1,
          "ops_set_compute: f32 / bf16 accepted, another name refused");
    CHECK(f32_to_bf16(1.00390625f) == 0x3f80 && f32_to_bf16(1.01171875f) == 0x3f82 && f32_to_bf16(-0.0f) == 0x8000 &&
              f32_to_bf16(NAN) == 0x7fc0 && f32_to_bf16(3.4e38f) == 0x7f80,
          "f32_to_bf16: ties to even, signed zero, NaN 0x7fc0, overflow to inf (c10::BFloat16)");
    check_pair_step();
    const DType dts[3] = {DT_BF16, DT_F16, DT_F32};
    for (int d = 0; d < 3; d++) {
        check_linear(dts[d], 23, 64, 7, 0);
        check_linear(dts[d], 11, 1, 3, 0);
        check_linear(dts[d], 17, 77, 9, 1);
    }
    check_linear(DT_BF16, 41, 1000, 13, 1);
    check_linear(DT_BF16, 10, 4096, 33, 0);
    check_edge();
    check_gemm_pairs(13, 37, 64, 0);
    check_gemm_pairs(9, 48, 33, 1);
    check_gemm_pairs(1, 5, 7, 1);
    check_gemm_pairs(13, 64, 40, 0); // (N a multiple of 64: the 6 x 64 tiles)
    check_gemm_pairs(7, 128, 19, 1);
    check_pack_scaled(7, 37);
    check_pack_scaled(64, 64);
    check_attention_bf16(70, 90, 64, 20);
    check_attention_bf16(12, 101, 128, -1);
    check_attention_bf16(50, 2100, 64, 2050);
    check_attention_bf16(9, 2501, 48, -1);
    check_attention_bf16(5, 37, 30, 32);
    check_attention_bf16(300, 1029, 64, -1);
    check_modes();
    return test_done();
}
