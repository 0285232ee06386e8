// SPDX-License-Identifier: MIT
// gguf_decode_bench.c - `make bench-gguf-decode`: the decode Linear (linear() on one activation row, as a decode step
// runs it) over ggml Q8_0 / Q4_K / Q5_0 / Q6_K / Q5_K / Q4_0 block weights and over bf16 weights, each well beyond the
// caches, timed alternately in one run (best of reps), as weight bytes read per second and as a ratio to the bf16
// kernel's (which streams at the machine's read bandwidth). A quick yardstick for ggml_quants.c's block kernels
// without the 7 GB checkpoint of `make bench`. Prints one key=value per line.
//   gguf_decode_bench [reps] [MB] [cpu]   (threads: OMP_NUM_THREADS; MB: the bf16 weight's size, default 512; cpu:
// process CPU time instead of wall-clock time, so the time slices other jobs take do not count)
#include "../ggml_quants.h"
#include "../ops.h"
#include "bench_util.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// an fp16 in [2^-12, 2^-11) with a random mantissa (block scales of trained weights are of this order)
static uint16_t scale_f16(void) { return (uint16_t)((3u << 10) | (next_u32() >> 22)); }

// rows x K of type t: random bytes, every fp16 scale a sane one (so no NaN / Inf)
static uint8_t *make_blocks(uint32_t t, int64_t rows, int64_t K) {
    const GQType *ty = gq_type(t);
    const size_t n = gq_row_bytes(t, K) * (size_t)rows, nb = n / (size_t)ty->bytes;
    uint8_t *w = malloc(n);
    for (size_t i = 0; i < n; i++) w[i] = (uint8_t)(next_u32() >> 24);
    // fp16 scale offsets in each block (ggml-common.h)
    int off[2] = {-1, -1};
    switch (t) {
    case GQ_Q8_0: case GQ_Q4_0: case GQ_Q5_0: off[0] = 0; break;
    case GQ_Q4_K: case GQ_Q5_K: off[0] = 0, off[1] = 2; break;
    case GQ_Q6_K: off[0] = 208; break;
    }
    for (size_t b = 0; b < nb; b++)
        for (int k = 0; k < 2; k++)
            if (off[k] >= 0) {
                const uint16_t h = scale_f16();
                memcpy(w + b * (size_t)ty->bytes + off[k], &h, 2);
            }
    return w;
}

int main(int argc, char **argv) {
    ops_init();
    const int reps = argc > 1 ? atoi(argv[1]) : 5;
    const double mb = argc > 2 ? atof(argv[2]) : 512;
    use_cpu_time = argc > 3 && strcmp(argv[3], "cpu") == 0;
    const int64_t K = 4096, rows = (int64_t)(mb * 1e6 / (2.0 * K)); // the bf16 matrix: mb MB
    static const uint32_t types[] = {GQ_BF16, GQ_Q8_0, GQ_Q4_K, GQ_Q5_0, GQ_Q6_K, GQ_Q5_K, GQ_Q4_0};
    enum { NT = sizeof types / sizeof *types };
    Tensor W[NT];
    double bytes[NT], best[NT];
    for (int i = 0; i < NT; i++) {
        memset(&W[i], 0, sizeof W[i]);
        W[i].rows = rows, W[i].cols = K;
        if (types[i] == GQ_BF16) {
            uint16_t *w = malloc((size_t)(rows * K) * 2);
            for (size_t e = 0; e < (size_t)(rows * K); e++) w[e] = (uint16_t)(0x3c00 ^ (next_u32() >> 16 & 0x80ff));
            W[i].data = w, W[i].dtype = DT_BF16;
        } else {
            W[i].data = make_blocks(types[i], rows, K), W[i].dtype = DT_GGML, W[i].ggml = types[i];
            W[i].ld = (int64_t)gq_row_bytes(types[i], K);
        }
        bytes[i] = types[i] == GQ_BF16 ? 2.0 * rows * K : (double)rows * W[i].ld;
        best[i] = 1e30;
    }
    float *x = malloc((size_t)K * 4), *y = malloc((size_t)rows * 4);
    for (int64_t k = 0; k < K; k++) x[k] = ((int)(next_u32() >> 9) - (1 << 22)) / 4.0e6f;
    printf("threads=%d\nisa=%s\nggml_isa=%d\nrows=%lld\ncols=%lld\n", omp_get_max_threads(), ops_features(), gq_isa(),
           (long long)rows, (long long)K);
    for (int rep = 0; rep <= reps; rep++) // rep 0 warms (page faults): not counted
        for (int i = 0; i < NT; i++) {
            const double t0 = now_s();
            linear(y, x, &W[i], NULL, 1);
            const double dt = now_s() - t0;
            if (rep && dt < best[i]) best[i] = dt;
        }
    for (int i = 0; i < NT; i++) {
        const char *nm = gq_type_name(types[i]);
        char low[16];
        for (int c = 0; (low[c] = (char)(nm[c] >= 'A' && nm[c] <= 'Z' ? nm[c] + 32 : nm[c])); c++) {}
        printf("decode_kernel_%s_gbs=%.2f\n", low, bytes[i] / best[i] / 1e9);
        if (i) printf("decode_kernel_%s_vs_bf16=%.2f\n", low, (bytes[i] / best[i]) / (bytes[0] / best[0]));
    }
    for (int i = 0; i < NT; i++) free((void *)W[i].data);
    free(x), free(y);
    return 0;
}
