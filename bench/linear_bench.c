// SPDX-License-Identifier: MIT
// linear_bench.c - `make bench-linear`: linear() at prefill / vision shapes (bf16, f16 and f32 weights), in GFLOP/s
// and as a ratio to the register-only FMA peak measured in the same run (interleaved with the timings, best of
// several repetitions, so other jobs on a shared machine lower both sides alike). A quick yardstick for the Linear
// kernels without the 7 GB checkpoint of `make bench`. Prints one key=value per line.
//   linear_bench [reps] [cpu] [bf16]   (threads: OMP_NUM_THREADS)
//   linear_bench decode [reps] [cpu] [bf16]   (decode shapes, 1 to 8 rows, weights streamed from memory: run_decode)
// With `bf16` linear() runs in the bf16 compute mode (ops_bf16.h) and the ratios are to the vdpbf16ps peak.
// With `cpu` every figure is counted in process CPU time instead of wall-clock time (per core, as the FMA peak is
// then too): on a machine shared with other jobs the time slices the others take no longer count.
#include "../ops.h"
#include "../ops_bf16.h"
#include "fma_loop.h"
#include "bench_util.h"

#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// GFLOP/s of the FMA loop (fma_loop.h) on every thread, one short run (with CPU time: the rate per core)
static double fma_peak_once(void) { return fma_loop_gflops(5000000, omp_get_max_threads(), now_s); }

// a random weight tensor [O, K] of the dtype (values ~ N(0, 1/K)-ish, as bf16 / f16 / f32)
static void *make_weights(DType dt, int64_t O, int64_t K) {
    const size_t n = (size_t)(O * K);
    uint32_t s = 12345;
    if (dt == DT_F32) {
        float *w = malloc(n * 4);
        for (size_t i = 0; i < n; i++) s = s * 1664525u + 1013904223u, w[i] = ((int)(s >> 9) - (1 << 22)) / 4.0e8f;
        return w;
    }
    uint16_t *w = malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        const float f = ((int)(s >> 9) - (1 << 22)) / 4.0e8f;
        uint32_t u;
        memcpy(&u, &f, 4);
        w[i] = dt == DT_BF16 ? (uint16_t)(u >> 16) : (uint16_t)(0x3c00 ^ (s & 0x83ff)); // f16: |x| in [1, 2)
    }
    return w;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// `linear_bench decode [reps] [cpu] [bf16]`: bf16 weights streamed from memory (copies cycled through, 512 MB in all,
// more than the L3) at the bench checkpoint's decode shapes, with 1, 2, 4 and 8 activation rows (a server's batched
// decode step) in turn within each repetition; prints the weight bytes per second (median) and each batch's ratio to
// one row: 1.0 means a batch reads its weights as fast as the one-row decode kernel
static int run_decode(int reps) {
    static const struct {
        const char *name;
        int K, O;
    } shapes[] = {
        {"qkv_4096x14336", 4096, 14336},  {"o_proj_12288x4096", 12288, 4096}, {"gate_up_4096x10944", 4096, 10944},
        {"down_10944x4096", 10944, 4096}, {"expert_4096x1408", 4096, 1408},   {"expert_down_1408x4096", 1408, 4096},
    };
    static const int ns[] = {1, 2, 4, 8};
    enum { NN = sizeof ns / sizeof ns[0] };
    if (reps < 3) reps = 3;
    if (reps > 200) reps = 200;
    printf("threads=%d\nisa=%s\ntime=%s\ncompute=%s (%s)\n", omp_get_max_threads(), ops_features(),
           use_cpu_time ? "cpu" : "wall", ops_compute_name(), ops_compute_path());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int K = shapes[s].K, O = shapes[s].O;
        const size_t wb = (size_t)O * K * 2;
        const int ncopy = (int)((512u << 20) / wb) + 1;
        Tensor *W = calloc((size_t)ncopy, sizeof *W);
        for (int c = 0; c < ncopy; c++) W[c] = (Tensor){.data = make_weights(DT_BF16, O, K), .dtype = DT_BF16, .rows = O, .cols = K};
        float *x = malloc((size_t)8 * K * 4), *y = malloc((size_t)8 * O * 4);
        for (size_t i = 0; i < (size_t)8 * K; i++) x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
        ops_reserve_rows(8, (size_t)K);
        double *t = malloc((size_t)NN * reps * sizeof(double));
        for (int r = 0, c = 0; r < reps; r++)
            for (int q = 0; q < NN; q++, c = (c + 1) % ncopy) {
                const double t0 = now_s();
                linear(y, x, &W[c], NULL, ns[q]);
                t[q * reps + r] = now_s() - t0;
            }
        double gbs[NN];
        for (int q = 0; q < NN; q++) {
            qsort(t + q * reps, (size_t)reps, sizeof(double), cmp_double);
            gbs[q] = wb / t[q * reps + reps / 2] / 1e9;
        }
        for (int q = 0; q < NN; q++) {
            printf("decode_%s_n%d_gbs=%.2f\n", shapes[s].name, ns[q], gbs[q]);
            if (q) printf("decode_%s_n%d_ratio=%.3f\n", shapes[s].name, ns[q], gbs[q] / gbs[0]);
        }
        fflush(stdout);
        for (int c = 0; c < ncopy; c++) free((void *)W[c].data);
        free(W), free(x), free(y), free(t);
    }
    return 0;
}

int main(int argc, char **argv) {
    ops_init();
    if (argc > 1 && strcmp(argv[1], "decode") == 0) {
        use_cpu_time = argc > 3 && strcmp(argv[3], "cpu") == 0;
        if (strcmp(argv[argc - 1], "bf16") == 0) ops_compute = COMPUTE_BF16;
        return run_decode(argc > 2 ? atoi(argv[2]) : 15);
    }
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    use_cpu_time = argc > 2 && strcmp(argv[2], "cpu") == 0;
    const int bf16 = (argc > 2 && strcmp(argv[argc - 1], "bf16") == 0);
    if (bf16) ops_compute = COMPUTE_BF16;
    static const struct {
        const char *name;
        int n, K, O;
        DType dt;
    } shapes[] = {
        {"prefill_bf16_512x4096x4096", 512, 4096, 4096, DT_BF16},
        {"prefill_bf16_512x4096x1408", 512, 4096, 1408, DT_BF16},
        {"prefill_bf16_512x12288x4096", 512, 12288, 4096, DT_BF16},
        {"prefill_bf16_512x10944x4096", 512, 10944, 4096, DT_BF16},
        {"prefill_bf16_64x4096x1408", 64, 4096, 1408, DT_BF16},
        {"expert_bf16_32x4096x1408", 32, 4096, 1408, DT_BF16},
        {"expert_bf16_32x1408x4096", 32, 1408, 4096, DT_BF16},
        {"vision_bf16_1369x1536x4608", 1369, 1536, 4608, DT_BF16},
        {"vision_bf16_1369x4096x1536", 1369, 4096, 1536, DT_BF16},
        {"vision_bf16_1024x1536x4096", 1024, 1536, 4096, DT_BF16},
        {"decode_bf16_1x4096x12288", 1, 4096, 12288, DT_BF16},
        {"decode_bf16_4x4096x12288", 4, 4096, 12288, DT_BF16},
        {"prefill_f32_512x1024x1024", 512, 1024, 1024, DT_F32},
        {"prefill_f16_512x1024x1024", 512, 1024, 1024, DT_F16},
    };
    printf("threads=%d\nisa=%s\ntime=%s\ncompute=%s (%s)\n", omp_get_max_threads(), ops_features(),
           use_cpu_time ? "cpu" : "wall", ops_compute_name(), ops_compute_path());
    double peak = 0, best_of[32] = {0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s].n, K = shapes[s].K, O = shapes[s].O;
        Tensor W = {.data = make_weights(shapes[s].dt, O, K), .dtype = shapes[s].dt, .rows = O, .cols = K};
        float *x = malloc((size_t)n * K * 4), *y = malloc((size_t)n * O * 4);
        for (size_t i = 0; i < (size_t)n * K; i++) x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
        ops_reserve_rows((size_t)n, (size_t)K);
        linear(y, x, &W, NULL, n); // warm-up
        double best = 0;
        for (int r = 0; r < reps; r++) {
            const double p = bf16 ? bf16_dot_peak_gflops(0.05) : fma_peak_once();
            peak = p > peak ? p : peak;
            const double t0 = now_s();
            linear(y, x, &W, NULL, n);
            const double gf = 2.0 * n * K * O / (now_s() - t0) / 1e9; // per core with `cpu`
            best = gf > best ? gf : best;
        }
        best_of[s] = best;
        free((void *)W.data), free(x), free(y);
    }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        printf("%s_gflops=%.1f\n%s_ratio=%.3f\n", shapes[s].name, best_of[s], shapes[s].name, best_of[s] / peak);
    printf("%s=%.1f\n", bf16 ? "bf16_dot_peak_gflops" : "fma_peak_gflops", peak);
    return 0;
}
