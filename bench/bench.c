// SPDX-License-Identifier: MIT
// bench.c - the numbers behind `make bench`: the machine's ceilings and the real code paths on a checkpoint with
// GLM-4.5V's layer dimensions. Prints one key=value per line (bench.sh adds the ratios).
//   bench micro            stream_read_gbs, fma_peak_gflops, sgemm_gflops (OpenBLAS with the best core type)
//   bench model DIR [N]    vision on a 1024x1024 image, a 2048-token prefill, N decode steps (default 36) with
//                          STREAM passes between their windows (stream_read_gbs); then vision and prefill again in
//                          the bf16 compute mode (*_bf16_*) and the time to the first token of a 1024x1024 image +
//                          64-word question in both modes (ttft_image_s, ttft_image_bf16_s)
//   bench vision DIR [f32|bf16] [D] [R] [cpu]  the vision tower alone on the 1024x1024 image, R runs (default 1),
//                          the first D blocks only (default: all; for profiling and quick old/new comparisons), with
//                          `cpu` in process CPU time (all threads); prints the embeddings' hash too
//   bench prefill DIR [f32|bf16] [T] [cpu]  a T-token prefill alone (default 2048, chunks of 512)
//   bench long DIR [T] [f32|bf16]  a T-token prefill (default 32768; `make bench-full`): long_prefill_* with the
//                          peak RSS and the KV cache size
// Threads: OMP_NUM_THREADS (default: every CPU). What is counted (FLOPs = 2 per multiply-add):
//   Linear [n rows, in -> out]: 2 * n * in * out; attention per head: 4 * hd * (visible keys) per query (q.k and
//   p.v); norms, RoPE, softmax, SiLU and the router's sort are not counted (they are < 1 % here).
//   decode bytes: every weight tensor a decode step reads, at its stored size: attention projections and biases,
//   norms, the dense MLP, the router and its bias, the top-k experts chosen for the token plus the shared expert,
//   the token's embedding row and the whole lm_head. The KV cache is not counted as weights (kv_cache_mb).
#include "../engine.h"
#include "../vision.h"
#include "../ops.h"
#include "../ops_bf16.h"
#include "fma_loop.h"
#include "bench_util.h"
#include "bench_stream.h"
#include "bench_bytes.h"

#ifndef BENCH_NO_BLAS
#include <cblas.h>
#endif
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_NO_BLAS
void openblas_set_num_threads(int);
#endif

// ---------------------------------------------------------------------------- machine ceilings

// fma_peak_gflops: the best of 5 runs of the FMA loop (fma_loop.h)
static double fma_peak(int nthr) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        const double gf = fma_loop_gflops(20000000, nthr, now_s);
        best = gf > best ? gf : best;
    }
    return best;
}

// best of 5 passes over a 1 GiB array
static double stream_read(int nthr) {
    float *buf = stream_alloc(STREAM_N, nthr);
    if (!buf) return 0;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double gbs = stream_pass(buf, STREAM_N, nthr);
        best = gbs > best ? gbs : best;
    }
    free(buf);
    return best;
}

#ifndef BENCH_NO_BLAS
static double sgemm_peak(int nthr) {
    const int n = 2048;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double best = 0;
    openblas_set_num_threads(nthr);
    for (int rep = 0; rep < 4; rep++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double gf = 2.0 * n * n * n / (now_s() - t0) / 1e9;
        best = gf > best ? gf : best;
    }
    free(a), free(b), free(c);
    return best;
}
#endif

// ---------------------------------------------------------------------------- model


// Linear FLOPs for n rows
static double lin(const Tensor *t, double n) { return t->data ? 2.0 * n * t->rows * t->cols : 0; }

// the vision tower's FLOPs for the batch (see the top of the file)
static double vision_flops(const Weights *w, const Config *c, const PixelBatch *pb) {
    const VisionConfig *v = &c->vision;
    const double P = (double)pb->npatches, N4 = P / (v->spatial_merge_size * v->spatial_merge_size);
    double f = lin(&w->vis.patch_w, P);
    for (int b = 0; b < v->depth; b++) {
        const VisionBlock *B = &w->vis.blocks[b];
        f += lin(&B->qkv, P) + lin(&B->proj, P) + lin(&B->gate_proj, P) + lin(&B->up_proj, P) + lin(&B->down_proj, P);
        for (int i = 0; i < pb->nitems; i++) { // bidirectional attention within each image
            const double n = (double)pb->grid[i][0] * pb->grid[i][1] * pb->grid[i][2];
            f += 4.0 * n * n * v->hidden_size;
        }
    }
    f += lin(&w->vis.downsample_w, N4) + lin(&w->vis.merger_proj, N4) + lin(&w->vis.merger_gate, N4) +
         lin(&w->vis.merger_up, N4) + lin(&w->vis.merger_down, N4);
    return f;
}

// decoder FLOPs for tokens at positions [p0, p0 + n) of one sequence (lm_head on `lm_rows` rows)
static double text_flops(const Weights *w, const Config *c, double p0, double n, double lm_rows) {
    const TextConfig *t = &c->text;
    double f = 0;
    for (int l = 0; l < t->num_hidden_layers; l++) {
        const TextLayer *L = &w->layers[l];
        f += lin(&L->q_proj, n) + lin(&L->k_proj, n) + lin(&L->v_proj, n) + lin(&L->o_proj, n);
        // causal: query at position p sees p + 1 keys; sum over the block = n * p0 + n (n + 1) / 2
        f += 4.0 * t->head_dim * t->num_attention_heads * (n * p0 + n * (n + 1) / 2);
        if (L->is_moe_layer) {
            f += lin(&L->router, n) + t->num_experts_per_tok * (lin(&L->exp_gate[0], n) + lin(&L->exp_up[0], n) +
                                                                lin(&L->exp_down[0], n));
            f += lin(&L->sh_gate, n) + lin(&L->sh_up, n) + lin(&L->sh_down, n);
        } else
            f += lin(&L->gate_proj, n) + lin(&L->up_proj, n) + lin(&L->gate_up_proj, n) + lin(&L->down_proj, n);
    }
    return f + lin(&w->lm_head, lm_rows);
}


// one timed greedy decode step of a session (the engine's step: embedding, decoder, logits)
static double decode_step(Session *s) {
    int id = argmax(s->last, s->e->c->text.vocab_size);
    double t0 = now_s();
    if (session_step(s, id)) return 1e9;
    return now_s() - t0;
}

// the bench's 1024 x 1024 image (a deterministic colour pattern; bench_hf.py draws the same)
static Image bench_image(int side) {
    Image img = {side, side, malloc((size_t)side * side * 3)};
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            uint8_t *p = img.rgb + ((size_t)y * side + x) * 3;
            p[0] = (uint8_t)(x * 255 / side), p[1] = (uint8_t)(y * 255 / side), p[2] = (uint8_t)((x ^ y) & 255);
        }
    return img;
}

// a prompt of n deterministic token ids (xorshift, as bench_hf.py) at text positions
static void bench_prompt(Prompt *pr, int n, int vocab) {
    memset(pr, 0, sizeof *pr);
    pr->seq.n = pr->seq.cap = n;
    pr->seq.ids = malloc((size_t)n * sizeof(int));
    pr->seq.type = calloc((size_t)n, sizeof(int));
    pr->pos = malloc((size_t)3 * n * sizeof(int64_t));
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        pr->seq.ids[i] = (int)(s % (uint64_t)vocab);
        pr->pos[i] = pr->pos[n + i] = pr->pos[2 * n + i] = i;
    }
}

// vision on the bench image: seconds (GFLOP/s into *gflops; with hash: the FNV-1a hash of the embeddings' bytes);
// -1 on error
static double time_vision(const Engine *e, int side, double *gflops, long long *patches, uint64_t *hash) {
    Image img = bench_image(side);
    PixelBatch pb = {0};
    if (preprocess_frames(&pb, &img, 1, &e->c->proc, RESIZE_TORCH, 0)) return -1;
    image_free(&img);
    float *emb = malloc((size_t)(pb.npatches / 4) * e->c->vision.out_hidden_size * sizeof(float));
    if (!emb) return -1;
    double t0 = now_s();
    if (vision_encode(&e->w, e->c, &pb, emb, NULL)) return -1;
    const double tv = now_s() - t0;
    *gflops = vision_flops(&e->w, e->c, &pb) / tv / 1e9;
    *patches = (long long)pb.npatches;
    if (hash) {
        const uint8_t *b = (const uint8_t *)emb;
        *hash = 14695981039346656037ULL;
        for (size_t i = 0; i < (size_t)(pb.npatches / 4) * e->c->vision.out_hidden_size * sizeof(float); i++)
            *hash = (*hash ^ b[i]) * 1099511628211ULL;
    }
    free(emb);
    pixel_batch_free(&pb);
    return tv;
}

// a PROMPT-token prefill in chunks of CHUNK in a fresh session: seconds (GFLOP/s into *gflops); -1 on error
static double time_prefill(const Engine *e, int n, int chunk, double *gflops) {
    Session ss;
    if (session_init(&ss, e, n + 1, chunk, 0)) return -1;
    Prompt pr;
    bench_prompt(&pr, n, e->c->text.vocab_size);
    Media none = {0};
    const double t0 = now_s();
    if (session_prefill(&ss, &pr, &none, NULL)) return -1;
    const double tp = now_s() - t0;
    double fp = 0;
    for (int i0 = 0; i0 < n; i0 += chunk) fp += text_flops(&e->w, e->c, i0, n - i0 < chunk ? n - i0 : chunk, 1);
    *gflops = fp / tp / 1e9;
    prompt_free(&pr);
    session_free(&ss);
    return tp;
}

// time to the first token of a chat turn with the bench image and a 64-word question (64 tokens with GLM's
// tokenizer; more with the tiny test tokenizers): preprocessing, the vision
// tower, the template-free GLM prompt and its prefill, up to the first token's logits; -1 on error
static double time_ttft_image(const Engine *e, int side, int *ntok) {
    char text[2048] = "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>";
    static const char *words[8] = {"what", "colour", "is", "the", "corner", "of", "this", "picture"};
    for (int i = 0; i < 64; i++) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", words[i % 8], i < 63 ? " " : "?");
    snprintf(text + strlen(text), sizeof text - strlen(text), "<|assistant|>");
    Image img = bench_image(side);
    const MediaOptions mo = {RESIZE_TORCH, (int64_t)1 << 40, 2.0f};
    Media m = {0};
    Prompt p;
    Session ss;
    const double t0 = now_s();
    if (media_add_image_rgb(&m, e, &img, "bench", &mo) || media_encode(&m, e, NULL) ||
        engine_prompt(e, text, strlen(text), &m, &p))
        return -1;
    if (session_init(&ss, e, p.seq.n + 1, 512, 0) || session_prefill(&ss, &p, &m, NULL)) return -1;
    const double t = now_s() - t0;
    *ntok = p.seq.n;
    session_free(&ss);
    prompt_free(&p);
    media_free(&m);
    image_free(&img);
    return t;
}

// the bf16 compute mode beside the default: vision, prefill, and the time to the first token in both modes
static int run_bf16(const Engine *e, int img, int prompt, int chunk) {
    double gf;
    long long np;
    int ntok = 0;
    const double t32 = e->c->has_vision ? time_ttft_image(e, img, &ntok) : 0;
    if (t32 < 0) return -1;
    ops_set_compute("bf16");
    printf("compute_bf16_path=%s\n", ops_compute_path());
    if (e->c->has_vision) {
        const double tv = time_vision(e, img, &gf, &np, NULL);
        if (tv < 0) return -1;
        printf("vision_bf16_s=%.3f\nvision_bf16_gflops=%.1f\n", tv, gf);
    }
    const double tp = time_prefill(e, prompt, chunk, &gf);
    if (tp < 0) return -1;
    printf("prefill_bf16_s=%.3f\nprefill_bf16_tok_s=%.1f\nprefill_bf16_gflops=%.1f\n", tp, prompt / tp, gf);
    if (e->c->has_vision) {
        const double t16 = time_ttft_image(e, img, &ntok);
        if (t16 < 0) return -1;
        printf("ttft_image_prompt_tokens=%d\nttft_image_s=%.3f\nttft_image_bf16_s=%.3f\n", ntok, t32, t16);
    }
    ops_set_compute("f32");
    return 0;
}

// `make bench-full`: one long prefill (tokens in chunks of 512) in the given compute mode; the peak RSS of the
// process (the weights it touched, the KV cache, the activations) beside the KV cache size
static int run_long(const char *dir, int n, const char *mode) {
    Engine e;
    if (engine_load(&e, dir, NULL, NULL, NULL) || ops_set_compute(mode)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    const TextConfig *t = &e.c->text;
    double wbytes = 0, gf;
    for (int i = 0; i < e.ck.nfiles; i++) wbytes += (double)e.ck.files[i].size;
    const double tp = time_prefill(&e, n, 512, &gf);
    if (tp < 0) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("long_prefill_tokens=%d\nlong_prefill_compute=%s\nlong_prefill_s=%.1f\nlong_prefill_tok_s=%.1f\n", n, mode,
           tp, n / tp);
    printf("long_prefill_gflops=%.1f\nlong_prefill_peak_rss_mb=%.0f\nlong_prefill_kv_mb=%.1f\nlong_prefill_weights_mb=%.0f\n",
           gf, ru.ru_maxrss * 1024.0 / 1e6,
           2.0 * t->num_hidden_layers * t->num_key_value_heads * (double)(n + 1) * t->head_dim * 4 / 1e6, wbytes / 1e6);
    engine_free(&e);
    return 0;
}

static int run_model(const char *dir, int ndecode) {
    const int PROMPT = 2048, CHUNK = 512, IMG = 1024;
    Engine e;
    if (engine_load(&e, dir, NULL, NULL, NULL)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    const Checkpoint *ck = &e.ck;
    const Weights *w = &e.w;
    const Config *c = e.c;
    const TextConfig *t = &c->text;
    double wbytes = 0;
    for (int i = 0; i < ck->nfiles; i++) wbytes += (double)ck->files[i].size;
    double la[3];
    printf("threads=%d\ncpu_features=%s\nweights_mb=%.0f\n", omp_get_max_threads(), ops_features(), wbytes / 1e6);
    // how long OpenMP's waiting threads spin (ops_omp_reexec sets it unless the environment did)
    printf("gomp_spincount=%s\n", getenv("GOMP_SPINCOUNT") ? getenv("GOMP_SPINCOUNT") : "default");
    // read every page of the checkpoint once before timing anything (a served model has its weights in memory; the
    // first run after the checkpoint is written reads it from disk here, not inside the timed sections), then unmap
    // them from this process again (they stay cached): the resident set counts only what the model reads
    double tl = now_s();
    volatile uint8_t sink = 0;
    for (int i = 0; i < ck->nfiles; i++) {
        for (size_t off = 0; off < ck->files[i].size; off += 4096) sink += ck->files[i].map[off];
        madvise((void *)ck->files[i].map, ck->files[i].size, MADV_DONTNEED);
    }
    printf("weights_load_s=%.1f\n", now_s() - tl);
    if (getloadavg(la, 3) == 3) printf("load_avg_start=%.2f\n", la[0]);
    // --- vision: one 1024 x 1024 image (a deterministic colour pattern), preprocessed as the CLI does
    if (c->has_vision) {
        double gv;
        long long np;
        const double tv = time_vision(&e, IMG, &gv, &np, NULL);
        if (tv < 0) {
            fprintf(stderr, "bench: %s\n", glm_errmsg);
            return 1;
        }
        printf("vision_image=%dx%d\nvision_patches=%lld\nvision_s=%.3f\nvision_gflops=%.1f\n", IMG, IMG, np, tv, gv);
    }

    // --- prefill: a 2048-token prompt (deterministic ids, text positions) through the engine in chunks of 512
    Session ss;
    const int ctx = PROMPT + ndecode;
    if (session_init(&ss, &e, ctx, CHUNK, 0)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    const int H = t->hidden_size;
    Prompt pr;
    bench_prompt(&pr, PROMPT, t->vocab_size);
    Media none = {0};
    double t0 = now_s();
    if (session_prefill(&ss, &pr, &none, NULL)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    double tp = now_s() - t0, fp = 0;
    for (int i0 = 0; i0 < PROMPT; i0 += CHUNK) fp += text_flops(w, c, i0, PROMPT - i0 < CHUNK ? PROMPT - i0 : CHUNK, 1);
    printf("prefill_tokens=%d\nprefill_s=%.3f\nprefill_tok_s=%.1f\nprefill_gflops=%.1f\n", PROMPT, tp, PROMPT / tp,
           fp / tp / 1e9);

    // --- decode: greedy steps after the prompt (context 2048..2048+N). The first step warms the decode path and is
    // not timed; the rest run in windows of DWIN steps with one STREAM pass before the first window and after each,
    // so both see the same moments of a shared machine's bandwidth. Each reports the median of its samples (robust
    // to a moment of contention on either side); the best samples are printed beside them.
    enum { DWIN = 5, NWIN_MAX = 64 };
    const int nthr = omp_get_max_threads();
    const double bytes = step_bytes(w, c);
    if (H > 8192 || ndecode < 2) return 1;
    decode_step(&ss);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double rss_model = ru.ru_maxrss * 1024.0; // the model's own peak, before the STREAM array exists
    float *sbuf = stream_alloc(STREAM_N, nthr);
    if (!sbuf) return 1;
    double win[NWIN_MAX], str[NWIN_MAX + 1], td = 0; // GB/s of each decode window / STREAM pass
    int nwin = 0, nd = 0;
    str[0] = stream_pass(sbuf, STREAM_N, nthr);
    while (nd < ndecode - 1 && nwin < NWIN_MAX) {
        const int k = ndecode - 1 - nd < DWIN ? ndecode - 1 - nd : DWIN;
        double tw = 0;
        for (int i = 0; i < k; i++) tw += decode_step(&ss);
        td += tw, nd += k;
        win[nwin++] = bytes * k / tw / 1e9;
        str[nwin] = stream_pass(sbuf, STREAM_N, nthr);
    }
    char wins[NWIN_MAX * 8] = "", strs[NWIN_MAX * 8] = "";
    for (int i = 0; i <= nwin; i++) {
        if (i < nwin) snprintf(wins + strlen(wins), sizeof wins - strlen(wins), "%s%.1f", i ? "," : "", win[i]);
        snprintf(strs + strlen(strs), sizeof strs - strlen(strs), "%s%.1f", i ? "," : "", str[i]);
    }
    double prw[NWIN_MAX], pr_fast; // each window over the STREAM passes either side of it (bench_stream.h)
    const double ratio = paired_ratio(win, str, str + 1, nwin, maxof(str, nwin + 1), prw, &pr_fast);
    const double dec = median(win, nwin), sr = median(str, nwin + 1);
    printf("decode_tokens=%d\ndecode_ctx=%d\ndecode_bytes_per_token_mb=%.1f\n", nd, PROMPT, bytes / 1e6);
    printf("decode_tok_s=%.2f\ndecode_weight_gbs=%.2f\nstream_read_gbs=%.2f\n", dec * 1e9 / bytes, dec, sr);
    printf("decode_tok_s_mean=%.2f\ndecode_weight_gbs_best=%.2f\nstream_read_gbs_best=%.2f\n", nd / td,
           maxof(win, nwin), maxof(str, nwin + 1));
    printf("decode_window_gbs=%s\nstream_window_gbs=%s\n", wins, strs);
    printf("decode_bw_ratio=%.2f\ndecode_bw_ratio_fast=%.2f\n", ratio, pr_fast);
    // how much of the checkpoint is mapped with 2 MB pages (see sf_open)
    FILE *smr = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long pmd_kb = -1;
    while (smr && fgets(line, sizeof line, smr))
        if (sscanf(line, "FilePmdMapped: %ld kB", &pmd_kb) == 1) break;
    if (smr) fclose(smr);
    if (pmd_kb >= 0) printf("weights_2mb_pages_pct=%.0f\n", 100.0 * pmd_kb * 1024 / wbytes);
    printf("kv_cache_mb=%.1f\n", 2.0 * t->num_hidden_layers * t->num_key_value_heads * (double)ctx * t->head_dim * 4 / 1e6);
    if (getloadavg(la, 3) == 3) printf("load_avg_end=%.2f\n", la[0]); // other jobs on the machine (1-minute average)
    // peak RSS of the model: its peak before the STREAM array, or its resident set now without that array
    long pages = 0, resident = 0;
    FILE *sm = fopen("/proc/self/statm", "r");
    if (sm && fscanf(sm, "%ld %ld", &pages, &resident) != 2) resident = 0;
    if (sm) fclose(sm);
    double rss_now = (double)resident * sysconf(_SC_PAGESIZE) - (double)STREAM_N * sizeof(float);
    free(sbuf);
    printf("peak_rss_mb=%.0f\n", (rss_model > rss_now ? rss_model : rss_now) / 1e6);
    prompt_free(&pr);
    session_free(&ss);
    fflush(stdout);
    if (run_bf16(&e, IMG, PROMPT, CHUNK)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    engine_free(&e);
    return 0;
}

// `glm4v serve`'s continuous batching (issue 15, serve_batch4_*): greedy decode steps of one session alone and of 4
// sessions together through engine_step_batch, at about the same positions. The weight bytes of a batched step: the
// dense part once and the experts the 4 sequences chose, counted as their expected number under independent routing
// (E * (1 - (1 - k/E)^4)); the KV cache reads are not counted, as for decode_weight_gbs
static int run_serve(const char *dir, int nsteps) {
    enum { B = 4 };
    Engine e;
    if (engine_load(&e, dir, NULL, NULL, NULL)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    const Config *c = e.c;
    const TextConfig *t = &c->text;
    Batch bt;
    if (batch_init(&bt, &e, B, 4096)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    static const char *texts[B] = {"Describe a sunset over the sea.", "List three prime numbers.",
                                   "What is the capital of France?", "Write a haiku about snow."};
    Session ss[B], *sp[B];
    int ids[B];
    Media none = {0};
    for (int i = 0; i < B; i++) {
        Prompt p;
        if (engine_prompt(&e, texts[i], strlen(texts[i]), &none, &p) ||
            session_init(&ss[i], &e, p.seq.n + 2 * nsteps + 8, p.seq.n, 0) || session_prefill(&ss[i], &p, &none, NULL)) {
            fprintf(stderr, "bench: %s\n", glm_errmsg);
            return 1;
        }
        prompt_free(&p);
        sp[i] = &ss[i];
    }
    // the expected unique weight bytes of a batched step (the dense part once, the experts 4 sequences choose)
    double bytes1 = step_bytes(&e.w, c), bytes4 = bytes1;
    for (int l = 0; l < t->num_hidden_layers; l++) {
        const TextLayer *L = &e.w.layers[l];
        if (!L->is_moe_layer) continue;
        const double E = t->n_routed_experts, k = t->num_experts_per_tok, u = E * (1 - pow(1 - k / E, B));
        bytes4 += (u - k) * (tbytes(&L->exp_gate[0]) + tbytes(&L->exp_up[0]) + tbytes(&L->exp_down[0]));
    }
    // windows of SW steps: a STREAM pass, session 0 alone (timed), the others catch up to its position (untimed), a
    // STREAM pass, the four together (timed), a STREAM pass; each window's GB/s is paired with the passes either
    // side of it (bench_stream.h), the step times give the medians
    enum { SW = 3, NW_MAX = 64 };
    for (int i = 0; i < B; i++) ids[i] = argmax(ss[i].last, t->vocab_size); // one untimed batched step (warm-up)
    if (engine_step_batch(&bt, sp, ids, B)) return 1;
    const int nthr = omp_get_max_threads(), nw = (nsteps + SW - 1) / SW < NW_MAX ? (nsteps + SW - 1) / SW : NW_MAX;
    float *sbuf = stream_alloc(STREAM_N, nthr);
    double *t1 = malloc((size_t)nw * SW * sizeof(double)), *t4 = malloc((size_t)nw * SW * sizeof(double));
    if (!sbuf || !t1 || !t4) return 1;
    double g1[NW_MAX], g4[NW_MAX], p[2 * NW_MAX + 1]; // alone window w between passes p[2w] and p[2w + 1], batched
                                                      // window w between p[2w + 1] and p[2w + 2]
    p[0] = stream_pass(sbuf, STREAM_N, nthr);
    for (int w = 0; w < nw; w++) {
        double tw = 0;
        for (int k = 0; k < SW; k++) { // one alone
            ids[0] = argmax(ss[0].last, t->vocab_size);
            double t0 = now_s();
            if (engine_step_batch(&bt, sp, ids, 1)) return 1;
            tw += t1[w * SW + k] = now_s() - t0;
        }
        g1[w] = bytes1 * SW / tw / 1e9;
        for (int i = 1; i < B; i++) // the others catch up to the same position (untimed)
            for (int k = 0; k < SW; k++) {
                ids[0] = argmax(ss[i].last, t->vocab_size);
                if (engine_step_batch(&bt, sp + i, ids, 1)) return 1;
            }
        p[2 * w + 1] = stream_pass(sbuf, STREAM_N, nthr);
        tw = 0;
        for (int k = 0; k < SW; k++) { // four together
            for (int i = 0; i < B; i++) ids[i] = argmax(ss[i].last, t->vocab_size);
            double t0 = now_s();
            if (engine_step_batch(&bt, sp, ids, B)) return 1;
            tw += t4[w * SW + k] = now_s() - t0;
        }
        g4[w] = bytes4 * SW / tw / 1e9;
        p[2 * w + 2] = stream_pass(sbuf, STREAM_N, nthr);
    }
    free(sbuf);
    double b1[NW_MAX], a1[NW_MAX], b4[NW_MAX], a4[NW_MAX], r1[NW_MAX], r4[NW_MAX], f1, f4;
    for (int w = 0; w < nw; w++) b1[w] = p[2 * w], a1[w] = b4[w] = p[2 * w + 1], a4[w] = p[2 * w + 2];
    char w4[NW_MAX * 8], st[NW_MAX * 16];
    csv_of(w4, sizeof w4, g4, nw, 1), csv_of(st, sizeof st, p, 2 * nw + 1, 1);
    const double best = maxof(p, 2 * nw + 1);
    const double pr1 = paired_ratio(g1, b1, a1, nw, best, r1, &f1), pr4 = paired_ratio(g4, b4, a4, nw, best, r4, &f4);
    const double m1 = median(t1, nw * SW), m4 = median(t4, nw * SW);
    printf("serve_batch1_tok_s=%.3f\nserve_batch4_tok_s=%.3f\nserve_batch4_speedup=%.2f\nserve_batch4_weight_gbs=%.2f\n",
           1 / m1, B / m4, (B / m4) / (1 / m1), bytes4 / m4 / 1e9);
    printf("serve_batch4_window_gbs=%s\nserve_stream_window_gbs=%s\n", w4, st);
    printf("serve_batch1_bw_ratio=%.2f\nserve_batch1_bw_ratio_fast=%.2f\nserve_batch4_bw_ratio=%.2f\n"
           "serve_batch4_bw_ratio_fast=%.2f\n", pr1, f1, pr4, f4);
    free(t1), free(t4);
    batch_free(&bt);
    for (int i = 0; i < B; i++) session_free(&ss[i]);
    engine_free(&e);
    return 0;
}

// the vision tower alone (bench vision): vision_s / vision_gflops per run, in `mode`, on its first `depth` blocks
static int run_vision(const char *dir, const char *mode, int depth, int runs) {
    Engine e;
    if (engine_load(&e, dir, NULL, NULL, NULL) || ops_set_compute(mode)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    if (depth > 0 && depth < e.c->vision.depth) ((Config *)e.c)->vision.depth = depth;
    printf("compute=%s\ncompute_path=%s\nvision_depth=%d\n", ops_compute_name(), ops_compute_path(), e.c->vision.depth);
    for (int r = 0; r < runs; r++) {
        double gf;
        long long np;
        uint64_t h;
        const double tv = time_vision(&e, 1024, &gf, &np, &h);
        if (tv < 0) {
            fprintf(stderr, "bench: %s\n", glm_errmsg);
            return 1;
        }
        printf("vision_s=%.3f\nvision_gflops=%.1f\nvision_hash=%016llx\n", tv, gf, (unsigned long long)h);
        fflush(stdout);
    }
    engine_free(&e);
    return 0;
}

// the prefill alone (bench prefill): prefill_s / prefill_gflops of an n-token prompt in chunks of 512, in `mode`
static int run_prefill(const char *dir, const char *mode, int n, int runs) {
    Engine e;
    if (engine_load(&e, dir, NULL, NULL, NULL) || ops_set_compute(mode)) {
        fprintf(stderr, "bench: %s\n", glm_errmsg);
        return 1;
    }
    printf("compute=%s\ncompute_path=%s\nprefill_tokens=%d\n", ops_compute_name(), ops_compute_path(), n);
    for (int r = 0; r < runs; r++) {
        double gf;
        const double tp = time_prefill(&e, n, 512, &gf);
        if (tp < 0) {
            fprintf(stderr, "bench: %s\n", glm_errmsg);
            return 1;
        }
        printf("prefill_s=%.3f\nprefill_gflops=%.1f\n", tp, gf);
        fflush(stdout);
    }
    engine_free(&e);
    return 0;
}

int main(int argc, char **argv) {
    ops_omp_reexec(argv); // OpenMP threads that wait spin briefly, then sleep, as in glm4v (ops.h)
    ops_init();
    const int nthr = omp_get_max_threads();
    if (argc >= 2 && strcmp(argv[1], "micro") == 0) {
        // OpenBLAS reads OPENBLAS_CORETYPE at load: re-exec once with the kernel for this CPU (whatever the
        // environment says), so sgemm_gflops is OpenBLAS at its best here
        const char *want = cpu.avx512f ? "SKYLAKEX" : cpu.avx2 ? "HASWELL" : NULL;
        const char *have = getenv("OPENBLAS_CORETYPE");
        if (want && !(have && strcmp(have, want) == 0) && !getenv("GLM4V_BENCH_REEXEC")) {
            setenv("OPENBLAS_CORETYPE", want, 1);
            setenv("GLM4V_BENCH_REEXEC", "1", 1);
            execv("/proc/self/exe", argv);
        }
        printf("threads=%d\nblas_coretype=%s\n", nthr, getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "auto");
        printf("fma_peak_gflops=%.1f\n", fma_peak(nthr));
        printf("bf16_dot_peak_gflops=%.1f\n", bf16_dot_peak_gflops(1.0)); // 0 without AVX512_BF16
        fflush(stdout);
        printf("stream_read_gbs=%.2f\n", stream_read(nthr));
        fflush(stdout);
#ifndef BENCH_NO_BLAS
        printf("sgemm_gflops=%.1f\n", sgemm_peak(nthr));
#endif
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "model") == 0) return run_model(argv[2], argc >= 4 ? atoi(argv[3]) : 36);
    if (argc >= 3 && strcmp(argv[1], "long") == 0)
        return run_long(argv[2], argc >= 4 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 32768, argc >= 5 ? argv[4] : "f32");
    if (argc >= 3 && strcmp(argv[1], "vision") == 0) {
        use_cpu_time = argc >= 7 && strcmp(argv[6], "cpu") == 0;
        return run_vision(argv[2], argc >= 4 ? argv[3] : "f32", argc >= 5 ? atoi(argv[4]) : 0, argc >= 6 ? atoi(argv[5]) : 1);
    }
    if (argc >= 3 && strcmp(argv[1], "prefill") == 0) {
        use_cpu_time = argc >= 6 && strcmp(argv[5], "cpu") == 0;
        return run_prefill(argv[2], argc >= 4 ? argv[3] : "f32", argc >= 5 && atoi(argv[4]) > 0 ? atoi(argv[4]) : 2048, 1);
    }
    if (argc >= 3 && strcmp(argv[1], "serve") == 0) return run_serve(argv[2], argc >= 4 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 36);
    fprintf(stderr, "usage: bench micro | bench model DIR [decode_steps] | bench serve DIR [decode_steps] | "
                    "bench vision DIR [f32|bf16] [depth] [runs] [cpu] | bench prefill DIR [f32|bf16] [tokens] [cpu] | "
                    "bench long DIR [tokens] [f32|bf16]\n");
    return 2;
}
