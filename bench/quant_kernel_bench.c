// SPDX-License-Identifier: MIT
// quant_kernel_bench.c - `make bench-quant-kernels`: the decode Linear (one activation row, linear() with n = 1) over
// bf16, FP8 E4M3 (per channel, dynamic per-token FP8 activations as the official releases: fp8; without them: fp8w), int8 (pack-quantized,
// per channel; with dynamic per-token int8 activations: w8a8) and int4 (pack-quantized, group 128) weights at the bench checkpoint's expert and attention shapes,
// as bytes of weights read per second. Each format cycles through enough copies of the shape (different "experts")
// that the weights stream from memory, as in a decode step; the formats are timed in turn inside every repetition,
// so a moment of low bandwidth on a shared machine lowers all of them alike, and the best repetition of each is kept.
// Prints one key=value per line: <shape>_<fmt>_gbs and <shape>_<fmt>_ratio (its bytes/s over bf16's on that shape;
// 1.0 = the kernel reads its smaller bytes as fast as bf16 reads its own, i.e. no longer compute-bound).
//   quant_kernel_bench [reps] [MB per format pool] [cpu]   (threads: OMP_NUM_THREADS)
// With `cpu` the time is the process's CPU time (all threads; with OMP_NUM_THREADS=1 the rate per core), so the time
// slices other jobs take on a shared machine no longer count.
#include "../ops.h"
#include "bench_util.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { F_BF16, F_FP8, F_FP8W, F_INT8, F_W8A8, F_INT4, NFMT };
// fp8w: FP8 weights, fp32 activations; w8a8: the int8 weights with dynamic per-token int8 activations
static const char *fmt_name[NFMT] = {"bf16", "fp8", "fp8w", "int8", "w8a8", "int4"};

// one copy of an [O, K] weight in format f, as the loader maps it (bytes random: FP8 without NaN codes; bf16 scales
// ~ 0.003 per channel, int4 per group of 128); *bytes = what a decode step reads of it (rows + scale table)
static Tensor make(int f, int O, int K, double *bytes) {
    Tensor W = {.rows = O, .cols = K};
    if (f == F_BF16) {
        uint16_t *w = malloc((size_t)O * K * 2);
        for (size_t i = 0; i < (size_t)O * K; i++) {
            const float v = ((int)(next_u32() >> 9) - (1 << 22)) / 4.0e8f;
            uint32_t u;
            memcpy(&u, &v, 4);
            w[i] = (uint16_t)(u >> 16);
        }
        W.data = w, W.dtype = DT_BF16;
        *bytes = (double)O * K * 2;
        return W;
    }
    const int fp8 = f == F_FP8 || f == F_FP8W;
    W.dtype = fp8 ? DT_F8_E4M3 : f == F_INT8 || f == F_W8A8 ? DT_Q8 : DT_Q4;
    W.ld = f == F_INT4 ? K / 2 : K;
    uint8_t *w = malloc((size_t)O * W.ld);
    for (size_t i = 0; i < (size_t)O * W.ld; i++) {
        w[i] = (uint8_t)(next_u32() >> 24);
        if (fp8 && (w[i] & 0x7f) == 0x7f) w[i] = 0x3f;
    }
    W.data = w;
    W.group = f == F_INT4 ? 128 : K, W.block_rows = 1, W.scale_cols = K / W.group;
    uint16_t *s = malloc((size_t)O * W.scale_cols * 2);
    for (int64_t i = 0; i < O * W.scale_cols; i++) s[i] = f32_to_bf16(0.002f + (next_u32() >> 8) * 1e-10f);
    W.scale = s, W.scale_dtype = DT_BF16;
    W.act = f == F_FP8 ? ACT_FP8_TOKEN : f == F_W8A8 ? ACT_INT8_TOKEN : ACT_NONE;
    *bytes = (double)O * W.ld + (double)O * W.scale_cols * 2;
    return W;
}

int main(int argc, char **argv) {
    ops_init();
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    const double pool_mb = argc > 2 ? atof(argv[2]) : 96;
    use_cpu_time = argc > 3 && strcmp(argv[3], "cpu") == 0;
    static const struct {
        const char *name;
        int O, K;
    } shapes[] = {
        {"expert_gate_1408x4096", 1408, 4096},
        {"expert_down_4096x1408", 4096, 1408},
        {"attn_q_12288x4096", 12288, 4096},
        {"attn_o_4096x12288", 4096, 12288},
        {"cached_256x1024", 256, 1024}, // two copies that stay in L2: the kernels' compute rate alone
    };
    enum { NSHAPE = sizeof shapes / sizeof shapes[0] };
    printf("threads=%d\nisa=%s\ntime=%s\n", omp_get_max_threads(), ops_features(), use_cpu_time ? "cpu" : "wall");
    ops_reserve(12288);
    double best[NSHAPE][NFMT] = {{0}};
    for (int s = 0; s < NSHAPE; s++) {
        const int O = shapes[s].O, K = shapes[s].K;
        // copies per format: the bf16 pool is pool_mb; the others hold the same number of copies (smaller bytes)
        int n = (int)(pool_mb * 1e6 / ((double)O * K * 2));
        n = n < 2 || (double)O * K * 2 < 1e6 ? 2 : n;
        const int it = (double)n * O * K * 2 < pool_mb * 1e6 ? (int)(pool_mb * 1e6 / ((double)n * O * K * 2)) : 1; // passes
        Tensor *W[NFMT];
        double bytes[NFMT];
        for (int f = 0; f < NFMT; f++) {
            W[f] = malloc((size_t)n * sizeof(Tensor));
            for (int i = 0; i < n; i++) W[f][i] = make(f, O, K, &bytes[f]);
        }
        float *x = malloc((size_t)K * 4), *y = malloc((size_t)O * 4);
        for (int k = 0; k < K; k++) x[k] = (float)((k * 2654435761u) % 2001) / 1000.0f - 1.0f;
        for (int f = 0; f < NFMT; f++) // warm-up: pages touched, buffers sized
            for (int i = 0; i < n; i++) linear(y, x, &W[f][i], NULL, 1);
        for (int r = 0; r < reps; r++)
            for (int f = 0; f < NFMT; f++) {
                const double t0 = now_s();
                for (int p = 0; p < it; p++)
                    for (int i = 0; i < n; i++) linear(y, x, &W[f][i], NULL, 1);
                const double gbs = bytes[f] * n * it / (now_s() - t0) / 1e9;
                best[s][f] = gbs > best[s][f] ? gbs : best[s][f];
            }
        for (int f = 0; f < NFMT; f++) {
            for (int i = 0; i < n; i++) free((void *)W[f][i].data), free((void *)W[f][i].scale);
            free(W[f]);
        }
        free(x), free(y);
    }
    for (int s = 0; s < NSHAPE; s++)
        for (int f = 0; f < NFMT; f++)
            printf("%s_%s_gbs=%.2f\n%s_%s_ratio=%.3f\n", shapes[s].name, fmt_name[f], best[s][f], shapes[s].name,
                   fmt_name[f], best[s][f] / best[s][F_BF16]);
    return 0;
}
