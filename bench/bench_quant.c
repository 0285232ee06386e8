// SPDX-License-Identifier: MIT
// bench_quant.c - decode speed and accuracy of the quantised formats, for `make bench` (bench.sh writes the
// quantised folders with `./glm4v quantize` once, next to the bf16 checkpoint, and calls this):
//   glm4v-bench-quant N BF16_DIR [NAME=DIR ...]   (DIR may be a GGUF text file: NAME=FILE.gguf, e.g. q8_0, q4_k)
//   glm4v-bench-quant --rss N DIR                 (DIR alone in this process: peak_rss_mb, weights_mb = the mapped
//                                                  checkpoint, kv_cache_mb = the fp32 KV cache of the run)
// For the bf16 checkpoint and each NAME=DIR: a 64-token prompt, then N greedy decode steps, the other formats
// teacher-forced on the bf16 run's tokens (the same sequence everywhere). The first step is not timed; the median
// of the rest gives decode_NAME_tok_s and decode_NAME_weight_gbs (the weight bytes one step reads at their stored
// size, scales included, over the step time); decode_NAME_speedup = its tok/s over bf16's; decode_NAME_logits_nmse
// = sum (l - l_bf16)^2 / sum l_bf16^2 over every step's logits. One key=value per line.
#include "../engine.h"
#include "../gguf.h"
#include "../gguf_model.h"
#include "../ops.h"
#include "bench_util.h"
#include "bench_stream.h"
#include "bench_bytes.h"

#include <omp.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <time.h>

static float *sbuf; // the STREAM array (bench_stream.h); NULL: no passes (--rss)

// prefill + n steps on dir; ids: NULL = greedy (written to out_ids), else the tokens to feed; logits [n, V] out;
// mb (if not NULL): [0] the mapped checkpoint's bytes, [1] the session's fp32 KV cache, in MB; gs / ss (if sbuf):
// the steps' GB/s and the STREAM passes around them (below)
static int run(const char *dir, int n, const int *ids, int *out_ids, float *logits, double *tok_s, double *gbs,
               double *mb, double *gs, double *ss) {
    enum { PROMPT = 64 };
    Engine e;
    if (engine_load(&e, dir, NULL, NULL, NULL)) return -1;
    const int V = e.c->text.vocab_size;
    // every page of the checkpoint read once before timing (a served model has its weights in memory)
    volatile uint8_t sink = 0;
    double mapped = 0;
    for (int i = 0; i < e.ck.nfiles; i++) {
        mapped += (double)e.ck.files[i].size;
        for (size_t off = 0; off < e.ck.files[i].size; off += 4096) sink += e.ck.files[i].map[off];
    }
    for (int i = 0; e.ck.gguf && i < e.ck.gguf->text->n; i++) { // a GGUF model (NAME=FILE.gguf): its mapped file(s)
        mapped += (double)e.ck.gguf->text->f[i].size;
        for (size_t off = 0; off < e.ck.gguf->text->f[i].size; off += 4096) sink += e.ck.gguf->text->f[i].map[off];
    }
    if (mb) {
        const TextConfig *t = &e.c->text;
        mb[0] = mapped / 1e6;
        mb[1] = 2.0 * t->num_hidden_layers * t->num_key_value_heads * (double)(PROMPT + n + 1) * t->head_dim * 4 / 1e6;
    }
    Session s;
    if (session_init(&s, &e, PROMPT + n + 1, 512, 0)) {
        engine_free(&e);
        return -1;
    }
    Prompt pr = {0};
    pr.seq.n = pr.seq.cap = PROMPT;
    pr.seq.ids = malloc(PROMPT * sizeof(int));
    pr.seq.type = calloc(PROMPT, sizeof(int));
    pr.pos = malloc(3 * PROMPT * sizeof(int64_t));
    uint64_t r = 88172645463325252ULL;
    for (int i = 0; i < PROMPT; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        pr.seq.ids[i] = (int)(r % (uint64_t)V);
        pr.pos[i] = pr.pos[PROMPT + i] = pr.pos[2 * PROMPT + i] = i;
    }
    Media none = {0};
    int rc = session_prefill(&s, &pr, &none, NULL);
    // a STREAM pass before each step and after the last (bench_stream.h): gs[i] = the GB/s of step i + 1 (the first
    // step warms the path: not counted), ss[i], ss[i + 1] the passes either side of it
    const int nthr = omp_get_max_threads();
    const double bytes = step_bytes(&e.w, e.c);
    double *dt = malloc((size_t)n * sizeof(double)), str_first = 0;
    for (int i = 0; !rc && i < n; i++) {
        const int id = ids ? ids[i] : argmax(s.last, V);
        if (out_ids) out_ids[i] = id;
        if (sbuf) *(i ? &ss[i - 1] : &str_first) = stream_pass(sbuf, STREAM_N, nthr);
        const double t0 = now_s();
        rc = session_step(&s, id);
        dt[i] = now_s() - t0;
        if (sbuf && i) gs[i - 1] = bytes / dt[i] / 1e9;
        memcpy(logits + (size_t)i * V, s.last, (size_t)V * sizeof(float));
    }
    if (!rc && sbuf) ss[n - 1] = stream_pass(sbuf, STREAM_N, nthr);
    if (!rc) {
        qsort(dt + 1, (size_t)(n - 1), sizeof(double), cmp_double); // the first step warms the path: not timed
        const int m = n - 1;
        const double med = m % 2 ? dt[1 + m / 2] : 0.5 * (dt[m / 2] + dt[1 + m / 2]);
        *tok_s = 1.0 / med;
        *gbs = bytes / med / 1e9;
    }
    free(dt), free(pr.seq.ids), free(pr.seq.type), free(pr.pos);
    session_free(&s);
    engine_free(&e);
    return rc;
}

// the vocabulary size of the checkpoint at dir (the logits' width), or -1 with the error printed
static int vocab_of(const char *dir) {
    Engine probe;
    if (engine_load(&probe, dir, NULL, NULL, NULL)) {
        fprintf(stderr, "bench-quant: %s\n", glm_errmsg);
        return -1;
    }
    const int V = probe.c->text.vocab_size;
    engine_free(&probe);
    return V;
}

int main(int argc, char **argv) {
    ops_omp_reexec(argv); // OpenMP threads that wait spin briefly, then sleep, as in glm4v (ops.h)
    if (argc < 3) {
        fprintf(stderr, "usage: glm4v-bench-quant N BF16_DIR [NAME=DIR ...]\n");
        return 2;
    }
    ops_init();
    if (!strcmp(argv[1], "--rss")) { // one checkpoint alone in this process: its peak RSS beside weights + KV
        const int n = argc > 3 && atoi(argv[2]) >= 3 ? atoi(argv[2]) : 3;
        if (argc < 4) {
            fprintf(stderr, "usage: glm4v-bench-quant --rss N DIR\n");
            return 2;
        }
        const int V = vocab_of(argv[3]);
        if (V < 0) return 1;
        int *ids = malloc((size_t)n * sizeof(int));
        float *lg = malloc((size_t)n * V * sizeof(float));
        double ts, gb, mb[2];
        if (run(argv[3], n, NULL, ids, lg, &ts, &gb, mb, NULL, NULL)) {
            fprintf(stderr, "bench-quant: %s\n", glm_errmsg);
            return 1;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("peak_rss_mb=%.0f\nweights_mb=%.0f\nkv_cache_mb=%.1f\n", ru.ru_maxrss * 1024.0 / 1e6, mb[0], mb[1]);
        free(ids), free(lg);
        return 0;
    }
    const int n = atoi(argv[1]) < 3 ? 3 : atoi(argv[1]);
    const int V = vocab_of(argv[2]);
    if (V < 0) return 1;
    int *ids = malloc((size_t)n * sizeof(int));
    float *ref = malloc((size_t)n * V * sizeof(float)), *lg = malloc((size_t)n * V * sizeof(float));
    double ts0, gb0;
    sbuf = stream_alloc(STREAM_N, omp_get_max_threads());
    // per format f (0: bf16): the steps' GB/s gs[f] and the STREAM passes around them ss[f] (paired at the end, with
    // the best pass of the whole run as the "full bandwidth" mark of the _fast ratios)
    const int nf = argc - 2;
    double *gs = malloc((size_t)nf * n * sizeof(double)), *ss = malloc((size_t)nf * n * sizeof(double));
    double *tmp = malloc((size_t)n * sizeof(double));
    char names[64][64];
    if (!sbuf || !gs || !ss || !tmp || nf > 64 || run(argv[2], n, NULL, ids, ref, &ts0, &gb0, NULL, gs, ss)) {
        fprintf(stderr, "bench-quant: %s\n", glm_errmsg);
        return 1;
    }
    printf("decode_q_steps=%d\ndecode_bf16_tok_s=%.2f\ndecode_bf16_weight_gbs=%.2f\n", n, ts0, gb0);
    strcpy(names[0], "bf16");
    int done = 1;
    for (int a = 3; a < argc; a++) {
        char *name = names[done];
        const char *eq = strchr(argv[a], '=');
        if (!eq || eq - argv[a] >= 64) continue;
        memcpy(name, argv[a], (size_t)(eq - argv[a]));
        name[eq - argv[a]] = 0;
        double ts, gb;
        if (run(eq + 1, n, ids, NULL, lg, &ts, &gb, NULL, gs + (size_t)done * n, ss + (size_t)done * n)) {
            fprintf(stderr, "bench-quant: %s: %s\n", name, glm_errmsg);
            return 1;
        }
        done++;
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)n * V; i++) num += ((double)lg[i] - ref[i]) * ((double)lg[i] - ref[i]), den += (double)ref[i] * ref[i];
        printf("decode_%s_tok_s=%.2f\ndecode_%s_weight_gbs=%.2f\ndecode_%s_speedup=%.2f\ndecode_%s_logits_nmse=%.3g\n", name,
               ts, name, gb, name, ts / ts0, name, den > 0 ? num / den : 0.0);
    }
    const double best = maxof(ss, done * n);
    for (int f = 0; f < done; f++) {
        double fast;
        const double *sf = ss + (size_t)f * n;
        const double r = paired_ratio(gs + (size_t)f * n, sf, sf + 1, n - 1, best, tmp, &fast);
        printf("decode_%s_bw_ratio=%.2f\ndecode_%s_bw_ratio_fast=%.2f\n", names[f], r, names[f], fast);
    }
    printf("decode_q_stream_best_gbs=%.1f\n", best); // (the _fast ratios: steps with both passes >= 0.9 of it)
    free(gs), free(ss), free(tmp);
    free(ids), free(ref), free(lg), free(sbuf);
    return 0;
}
