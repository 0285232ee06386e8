// SPDX-License-Identifier: MIT
// gguf_ab.c - `make bench-gguf-ab OLD=<commit>`: ggml_quants.c's kernels of another commit against this tree's in
// one process. The old object's exported symbols are renamed A_* (objcopy --redefine-sym), both read the same block
// weights, calls alternate, and each side keeps its best time: on a shared VM whose speed drifts by up to 1.5x
// between runs, only a comparison inside one run is worth printing. One line per type: weight GB/s of the old (A)
// and this (B) build, B's speed over A's, and whether the outputs are bit-identical (they must be).
//   gguf_ab [reps] [MB] [type|all] [M]   (M activation rows per call: 1 = decode, 2-4 = a server's batched step;
//   GLM4V_ISA=avx2 runs both on AVX2; one thread is the useful setting: OMP_NUM_THREADS=1; CPU time)
#include "../ggml_quants.h"
#include "../ops.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// the old build's entry points (renamed)
int A_gq_matmul_streams(uint32_t id, const void *W, size_t row_bytes, int64_t rows, int64_t K, const float *x,
                        int64_t ldx, int M, float *y, int64_t ldy);
int A_gq_set_isa(int isa);
typedef int (*MatmulFn)(uint32_t, const void *, size_t, int64_t, int64_t, const float *, int64_t, int, float *, int64_t);

int main(int argc, char **argv) {
    ops_init();
    use_cpu_time = 1;
    const int reps = argc > 1 ? atoi(argv[1]) : 10, M = argc > 4 ? atoi(argv[4]) : 1;
    const double mb = argc > 2 ? atof(argv[2]) : 64;
    const char *only = argc > 3 ? argv[3] : "all";
    if (M < 1 || M > 4 || reps < 1 || mb <= 0) {
        fprintf(stderr, "usage: gguf_ab [reps] [MB] [type|all] [M 1-4]\n");
        return 2;
    }
    A_gq_set_isa(gq_isa()); // (GLM4V_ISA: this build read it; the old one is told)
    const int64_t K = 4096, task_bytes = 1 << 20; // decode tasks of 1 MB (quant.c's QL_TASK_BYTES)
    static const uint32_t types[] = {GQ_Q8_0, GQ_Q4_0, GQ_Q4_1, GQ_Q5_0, GQ_Q5_1, GQ_Q2_K,
                                     GQ_Q3_K, GQ_Q4_K, GQ_Q5_K, GQ_Q6_K};
    float *x = malloc((size_t)(4 * K) * sizeof(float));
    for (int64_t i = 0; i < 4 * K; i++) x[i] = (float)(next_u32() >> 8) / (float)(1 << 24) - 0.5f;
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        const GQType *ty = gq_type(types[t]);
        if (strcmp(only, "all") && strcmp(only, ty->name)) continue;
        const size_t rb = gq_row_bytes(types[t], K);
        const int64_t rows = (int64_t)(mb * 1e6 / (double)rb), task = task_bytes / (int64_t)(rb + 1);
        uint8_t *w = malloc(rb * (size_t)rows);
        for (size_t i = 0; i < rb * (size_t)rows; i++) w[i] = (uint8_t)(next_u32() >> 24);
        // no fp16 Inf / NaN anywhere a block scale may sit (every aligned pair with an all-ones exponent replaced)
        for (size_t i = 0; i + 1 < rb * (size_t)rows; i += 2) {
            uint16_t h;
            memcpy(&h, w + i, 2);
            if ((h & 0x7c00) == 0x7c00) h = (uint16_t)((3u << 10) | (next_u32() >> 22)), memcpy(w + i, &h, 2);
        }
        float *y[2] = {malloc((size_t)(4 * rows) * sizeof(float)), malloc((size_t)(4 * rows) * sizeof(float))};
        const MatmulFn f[2] = {A_gq_matmul_streams, gq_matmul_streams};
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < reps; r++)
            for (int v = 0; v < 2; v++) {
                const double t0 = now_s();
                for (int64_t r0 = 0; r0 < rows; r0 += task)
                    f[v](types[t], w + (size_t)r0 * rb, rb, rows - r0 < task ? rows - r0 : task, K, x, K, M, y[v] + r0, rows);
                const double dt = now_s() - t0;
                if (dt < best[v]) best[v] = dt;
            }
        int same = 1;
        for (int m = 0; m < M; m++) same &= memcmp(y[0] + m * rows, y[1] + m * rows, (size_t)rows * sizeof(float)) == 0;
        printf("%-5s M=%d  A %6.2f GB/s  B %6.2f GB/s  B/A %.3f  %s\n", ty->name, M, (double)(rb * (size_t)rows) / best[0] / 1e9,
               (double)(rb * (size_t)rows) / best[1] / 1e9, best[0] / best[1], same ? "same bits" : "DIFFERENT BITS");
        free(w), free(y[0]), free(y[1]);
    }
    free(x);
    return 0;
}
