// SPDX-License-Identifier: MIT
// vision.c - the vision tower (HF Glm4vVisionModel, identical in the MoE model): pixel rows -> merged embeddings.
// patch_embed (Conv3d as one matrix product) -> post_conv_layernorm -> + bicubic-resampled position table
// -> depth x Glm4vVisionBlock (2-D RoPE, attention within each image / video frame pair) -> post_layernorm
// -> 2x2 downsample Conv2d (one matrix product) -> Glm4vVisionPatchMerger.  docs/SPEC.md section 3.
// All activations live in the caller's scratch (vision_scratch_floats); fp32 throughout, as HF in float32.
#include "vision.h"
#include "ops.h"
#include "ops_bf16.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

// Glm4vVisionConfig.rope_parameters["rope_theta"]: 10000 in every release and in the default config
#define VISION_ROPE_THETA 10000.0f
// grid_sample bicubic: cubic convolution constant (PyTorch, not Pillow's -0.5)
#define GS_A -0.75f
// MLP rows per chunk (bounds the [rows, mlp width] buffers of the block MLP and the merger)
#define VIS_CHUNK 1024
// query rows per attention task: (segment, head, query chunk) tasks keep many cores busy on one large image; the
// split is fixed, so results do not depend on the thread count
#define VIS_QCHUNK 256
_Static_assert(VIS_QCHUNK % 2 == 0, "vision_pack_kv packs whole key pairs per query chunk");
// limits that keep every int in the kernels in range
#define VIS_MAX_PATCHES (1 << 24)

// one attention segment: an image, or one temporal patch of a video (HF get_video_features splits (t, h, w) into
// t items of (1, h, w): each its own attention segment and its own position-table lookup)
typedef struct {
    int64_t off;   // first pixel row of the segment
    int64_t voff;  // first row of the segment's V pairs (the bf16 mode's vpk: (n + 1) / 2 rows a segment)
    int64_t task0; // first attention task of the segment (tasks: heads x query chunks per segment)
    int h, w;      // patch grid (unmerged)
} VisSeg;

// where each buffer sits in the scratch (offsets in floats, 64-byte aligned)
typedef struct {
    int64_t P, N4;   // patches, merged tokens (P / m^2)
    int64_t nseg;    // attention segments
    int64_t ntask;   // attention tasks
    int64_t npv;     // rows of V pairs over all segments (sum of (n + 1) / 2)
    int kvpairs;     // the bf16 mode packs K and V once per block for all query chunks (kpk, vpk)
    int maxlen;      // longest segment (h * w)
    int nthr;        // OpenMP threads the attention scratch is sized for
    int chunk;       // MLP rows per chunk
    size_t pos;      // [side*side, Hv] position table in fp32
    size_t wv, wb;   // [max(Hv, O)] norm weight / bias in fp32
    size_t cs, sn;   // [P, hd/2] RoPE cos / sin
    size_t x;        // [P, Hv] residual stream
    size_t hn;       // [P, Hv] normed input of a sub-block / sub-block output
    size_t qkv;      // [P, 3Hv]; after the blocks: the downsample input [N4, Hv*m*m]
    size_t att;      // [P, Hv] attention output (heads concatenated) / MLP output
    size_t kpk, vpk; // kvpairs: uint32 [heads, P, hd/2] K pairs along head_dim, [heads, npv, hd] V pairs of keys
    size_t g, u;     // [chunk, max(mlp_size, intermediate_size)] SwiGLU gate / up
    size_t ds;       // [N4, O] downsample output
    size_t mh;       // [N4, O] merger hidden
    size_t segs;     // VisSeg [nseg]
    size_t attsc;    // [nthr, attention_scratch_floats(maxlen)]
    size_t total;    // floats
} VisLayout;

// reserve a*b floats at the end of the layout (64-byte aligned); -1 on overflow
static int lay(size_t *total, size_t *off, size_t a, size_t b) {
    size_t n, t;
    if (size_mul(a, b, &n) || size_add(*total, 15, &t)) return -1;
    t &= ~(size_t)15;
    *off = t;
    return size_add(t, n, total);
}

// segments of the batch (videos split per temporal patch) with checks; segs may be NULL (count only)
static int vision_segments(const Config *c, const PixelBatch *pb, VisSeg *segs, int64_t *nseg, int64_t *ntask,
                           int64_t *npv, int *maxlen) {
    const VisionConfig *v = &c->vision;
    const int m = v->spatial_merge_size;
    if (!c->has_vision) return glm_err("vision: the checkpoint has no vision tower");
    if (pb->nitems < 1 || pb->nitems > PIXEL_BATCH_MAX_ITEMS)
        return glm_err("vision: %d media items (1..%d supported)", pb->nitems, PIXEL_BATCH_MAX_ITEMS);
    if (pb->ncols != v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size)
        return glm_err("vision: pixel rows have %d values, the model needs %d", pb->ncols,
                       v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size);
    int64_t rows = 0, n = 0, tasks = 0, pv = 0;
    int mx = 0;
    for (int i = 0; i < pb->nitems; i++) {
        const int t = pb->grid[i][0], h = pb->grid[i][1], w = pb->grid[i][2];
        if (t < 1 || h < 1 || w < 1 || h % m || w % m || h > VIS_MAX_PATCHES || w > VIS_MAX_PATCHES ||
            (int64_t)h * w > VIS_MAX_PATCHES || (int64_t)t * h * w > VIS_MAX_PATCHES)
            return glm_err("vision: item %d has an invalid patch grid (%d, %d, %d)", i, t, h, w);
        for (int k = 0; k < t; k++, n++) {
            if (segs) segs[n] = (VisSeg){rows, pv, tasks, h, w};
            rows += (int64_t)h * w;
            pv += ((int64_t)h * w + 1) / 2;
            tasks += (int64_t)v->num_heads * ((h * w + VIS_QCHUNK - 1) / VIS_QCHUNK);
        }
        if (rows > VIS_MAX_PATCHES) return glm_err("vision: too many patches in one batch (limit %d)", VIS_MAX_PATCHES);
        mx = h * w > mx ? h * w : mx;
    }
    if (rows != pb->npatches)
        return glm_err("vision: the grids describe %lld patches but there are %lld pixel rows", (long long)rows,
                       (long long)pb->npatches);
    *nseg = n, *ntask = tasks, *npv = pv, *maxlen = mx;
    return 0;
}

// the scratch layout for this config and batch; -1 + glm_errmsg on a bad batch or a size overflow
static int vision_layout(const Config *c, const PixelBatch *pb, VisLayout *L) {
    const VisionConfig *v = &c->vision;
    const size_t Hv = (size_t)v->hidden_size, O = (size_t)v->out_hidden_size, hd = (size_t)v->head_dim;
    const size_t m2 = (size_t)v->spatial_merge_size * (size_t)v->spatial_merge_size;
    const size_t side = (size_t)v->pos_side;
    memset(L, 0, sizeof *L);
    if (vision_segments(c, pb, NULL, &L->nseg, &L->ntask, &L->npv, &L->maxlen)) return -1;
    L->kvpairs = ops_compute == COMPUTE_BF16 && v->head_dim % 2 == 0 && v->head_dim <= 512;
    L->P = pb->npatches, L->N4 = pb->npatches / (int64_t)m2;
    L->nthr = omp_get_max_threads();
    L->chunk = L->P < VIS_CHUNK ? (int)L->P : VIS_CHUNK;
    const size_t P = (size_t)L->P, N4 = (size_t)L->N4;
    const size_t wide = (size_t)(v->mlp_size > v->intermediate_size ? v->mlp_size : v->intermediate_size);
    size_t t = 0, segf = (L->nseg * sizeof(VisSeg) + sizeof(float) - 1) / sizeof(float);
    if (lay(&t, &L->pos, side * side, Hv) || lay(&t, &L->wv, Hv > O ? Hv : O, 1) || lay(&t, &L->wb, O, 1) ||
        lay(&t, &L->cs, P, hd / 2) || lay(&t, &L->sn, P, hd / 2) || lay(&t, &L->x, P, Hv) || lay(&t, &L->hn, P, Hv) ||
        lay(&t, &L->qkv, P, 3 * Hv) || lay(&t, &L->att, P, Hv) || lay(&t, &L->kpk, L->kvpairs ? P : 0, Hv / 2) ||
        lay(&t, &L->vpk, L->kvpairs ? (size_t)L->npv : 0, Hv) || lay(&t, &L->g, (size_t)L->chunk, wide) ||
        lay(&t, &L->u, (size_t)L->chunk, wide) || lay(&t, &L->ds, N4, O) || lay(&t, &L->mh, N4, O) ||
        lay(&t, &L->segs, segf, 1) || lay(&t, &L->attsc, (size_t)L->nthr, attention_scratch_floats(L->maxlen)))
        return glm_err("vision: scratch size overflows for %lld patches", (long long)L->P);
    L->total = t;
    return 0;
}

size_t vision_scratch_floats(const Config *c, const PixelBatch *pb) {
    VisLayout L;
    return vision_layout(c, pb, &L) ? 0 : L.total;
}

// ---------------------------------------------------------------------------- position ids

// get_vision_position_ids: (h, w) of token j of an h x w grid in the block-major (m x m merge groups) order
static inline void vision_pos_id(int j, int w, int m, int *hp, int *wp) {
    const int blk = j / (m * m), in = j % (m * m), bpr = w / m;
    *hp = (blk / bpr) * m + in / m;
    *wp = (blk % bpr) * m + in % m;
}

// ---------------------------------------------------------------------------- position embedding (grid_sample)
// PyTorch runs F.grid_sample on float32 CPU tensors in the vectorized kernel (aten/src/ATen/native/cpu/
// GridSamplerKernel.cpp, ApplyGridSample<Bicubic>::forward). Its AVX2 and AVX512 builds contract some of the
// source's multiply-adds into FMAs; which ones was established against torch 2.15 on 200k random grid points and
// every (h, w) in tests/data/vision_cases.safetensors (both capabilities give the same bits). The contracted steps
// are written with fmaf below; every other step is rounded on its own as in the source (-ffp-contract=off).
// (The non-vectorized fallback, used only for > 2^31 gather offsets, has no FMAs and differs by an ulp.)

// get_cubic_coefficients (A = -0.75):
//   x = tx + 1;  coeffs[0] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
//   x = tx;      coeffs[1] = ((A + 2) * x - (A + 3)) * x * x + 1
//   x = 1 - tx;  coeffs[2] = ((A + 2) * x - (A + 3)) * x * x + 1
//   x = 2 - tx;  coeffs[3] = ((A * x - 5 * A) * x + 8 * A) * x - 4 * A
static inline __attribute__((always_inline)) float cubic_far(float x) { // 1 < x < 2
    const float A = GS_A;
    return ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}
static inline __attribute__((always_inline)) float cubic_near(float x) { // 0 <= x <= 1
    const float A = GS_A;
    return fmaf(fmaf(A + 2.0f, x, -(A + 3.0f)) * x, x, 1.0f);
}
static inline __attribute__((always_inline)) void cubic_coefficients(float co[4], float tx) {
    co[0] = cubic_far(tx + 1.0f);
    co[1] = cubic_near(tx);
    co[2] = cubic_near(1.0f - tx);
    co[3] = cubic_far(2.0f - tx);
}

// ComputeLocation<Border>::compute_coordinates + convert_to_int: clip to [0, size - 1], truncate
static inline __attribute__((always_inline)) int clip_index(float coord, int size) {
    const float hi = (float)(size - 1);
    float c = coord > 0.0f ? coord : 0.0f; // clamp_min(Vec(0), in)
    c = c < hi ? c : hi;                   // clamp_max(Vec(max_val), .)
    return (int)c;
}

// grid location of token (hp, wp) of an h x w grid on a side x side table:
// norm_w = ((w_coords + 0.5) / target_w) * 2 - 1 (HF, separate tensor ops), then
// ComputeLocationBase<align_corners=False>::unnormalize: (in + 1) * (size / 2) - 0.5 (contracted)
static inline __attribute__((always_inline)) void grid_location(int hp, int wp, int h, int w, int side, float *x,
                                                                float *y) {
    const float nw = (((float)wp + 0.5f) / (float)w) * 2.0f - 1.0f;
    const float nh = (((float)hp + 0.5f) / (float)h) * 2.0f - 1.0f;
    const float sf = (float)side / 2.0f;
    *x = fmaf(nw + 1.0f, sf, -0.5f);
    *y = fmaf(nh + 1.0f, sf, -0.5f);
}

// interp_x[i] = coeff_x[0] * v0 + coeff_x[1] * v1 + coeff_x[2] * v2 + coeff_x[3] * v3 (first product contracted)
static inline __attribute__((always_inline)) float cubic_sum_x(const float c[4], float v0, float v1, float v2,
                                                               float v3) {
    return fmaf(c[0], v0, c[1] * v1) + c[2] * v2 + c[3] * v3;
}
// interpolated = coeff_y[0] * interp_x[0] + ... + coeff_y[3] * interp_x[3] (the last three products contracted)
static inline __attribute__((always_inline)) float cubic_sum_y(const float c[4], const float r[4]) {
    return fmaf(c[3], r[3], fmaf(c[2], r[2], fmaf(c[1], r[1], c[0] * r[0])));
}

// the grid_sample of tokens [j0, j1) of one item: 4 x-direction sums over 16 border-clipped taps, then the y sum
static inline __attribute__((always_inline)) void pos_embed_tokens(float *out, const float *table, int side, int C,
                                                                   int h, int w, int m, int j0, int j1) {
    for (int j = j0; j < j1; j++) {
        int hp, wp;
        vision_pos_id(j, w, m, &hp, &wp);
        float x, y;
        grid_location(hp, wp, h, w, side, &x, &y);
        // auto ix = x.floor(); get_cubic_coefficients(coeff_x, x - ix)
        const float ix = floorf(x), iy = floorf(y);
        float cx[4], cy[4];
        cubic_coefficients(cx, x - ix);
        cubic_coefficients(cy, y - iy);
        // get_value_bounded(inp, ix + (k - 1), iy + (i - 1)): every tap clipped to the border
        const float *src[4][4];
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++)
                src[i][k] = table + ((int64_t)clip_index(iy + (float)(i - 1), side) * side +
                                     clip_index(ix + (float)(k - 1), side)) * C;
        float *o = out + (int64_t)j * C;
        for (int ch = 0; ch < C; ch++) {
            float r[4];
            for (int i = 0; i < 4; i++) r[i] = cubic_sum_x(cx, src[i][0][ch], src[i][1][ch], src[i][2][ch], src[i][3][ch]);
            o[ch] = cubic_sum_y(cy, r);
        }
    }
}

// the same code compiled with hardware FMA (fmaf is exact either way; this is only faster)
__attribute__((target("avx2,fma"))) static void pos_embed_tokens_fma(float *out, const float *table, int side, int C,
                                                                       int h, int w, int m, int j0, int j1) {
    pos_embed_tokens(out, table, side, C, h, w, m, j0, j1);
}
static void pos_embed_tokens_generic(float *out, const float *table, int side, int C, int h, int w, int m, int j0,
                                     int j1) {
    pos_embed_tokens(out, table, side, C, h, w, m, j0, j1);
}

// Glm4vVisionEmbeddings' F.grid_sample(pos_embed_2d, grid, mode="bicubic", align_corners=False,
// padding_mode="border") for one h x w item, bit-identical to PyTorch's CPU kernel.
// table [side*side, C] (row = y*side + x), out [h*w, C] in the block-major token order; m = merge size
void vision_pos_embed(float *out, const float *table, int side, int C, int h, int w, int m) {
    const int n = h * w, blk = 64;
#pragma omp parallel for schedule(static) if (n > blk)
    for (int j0 = 0; j0 < n; j0 += blk) {
        const int j1 = n - j0 < blk ? n : j0 + blk;
        if (cpu.fma) pos_embed_tokens_fma(out, table, side, C, h, w, m, j0, j1);
        else pos_embed_tokens_generic(out, table, side, C, h, w, m, j0, j1);
    }
}

// PyTorch's scalar get_value_bounded with border padding: the table value at a clipped (x, y)
static float value_bounded(const float *table, int side, int C, int ch, float x, float y) {
    return table[((int64_t)clip_index(y, side) * side + clip_index(x, side)) * C + ch];
}

// reference: the same arithmetic written plainly, one output value at a time, positions from the
// meshgrid -> (h/m, m, w/m, m) -> transpose -> flatten recipe of get_vision_position_ids
void vision_pos_embed_naive(float *out, const float *table, int side, int C, int h, int w, int m) {
    int j = 0;
    for (int bh = 0; bh < h / m; bh++)
        for (int bw = 0; bw < w / m; bw++)
            for (int mh = 0; mh < m; mh++)
                for (int mw = 0; mw < m; mw++, j++) {
                    const int hp = bh * m + mh, wp = bw * m + mw;
                    float x, y;
                    grid_location(hp, wp, h, w, side, &x, &y);
                    const float x0 = floorf(x), y0 = floorf(y);
                    float cx[4], cy[4];
                    cubic_coefficients(cx, x - x0);
                    cubic_coefficients(cy, y - y0);
                    for (int ch = 0; ch < C; ch++) {
                        float r[4], v[4];
                        for (int i = 0; i < 4; i++) {
                            for (int k = 0; k < 4; k++)
                                v[k] = value_bounded(table, side, C, ch, x0 + (float)(k - 1), y0 + (float)(i - 1));
                            r[i] = cubic_sum_x(cx, v[0], v[1], v[2], v[3]);
                        }
                        out[(int64_t)j * C + ch] = cubic_sum_y(cy, r);
                    }
                }
}

// ---------------------------------------------------------------------------- 2-D rotary embedding

// Glm4vVisionRotaryEmbedding: cos/sin [P, hd/2] (the second half of emb = cat(rot, rot) repeats the first);
// column i < hd/4 rotates by h * inv_freq[i], column hd/4 + i by w * inv_freq[i]
static void vision_rotary(float *cs, float *sn, const VisSeg *segs, int64_t nseg, int hd, int m) {
    const int half = hd / 2, q = hd / 4;
    float inv_freq[512]; // [hd/4]; vision_forward refuses head_dim > 2048
    // inv_freq = 1.0 / (base ** (torch.arange(0, spatial_dim, 2, dtype=torch.float) / spatial_dim)), spatial_dim = hd/2
    for (int i = 0; i < q; i++) inv_freq[i] = 1.0f / powf(VISION_ROPE_THETA, (float)(2 * i) / (float)half);
    for (int64_t s = 0; s < nseg; s++) {
        const VisSeg *g = &segs[s];
        const int n = g->h * g->w;
#pragma omp parallel for schedule(static) if (n > 256)
        for (int j = 0; j < n; j++) {
            int hp, wp;
            vision_pos_id(j, g->w, m, &hp, &wp);
            float *c = cs + (g->off + j) * half, *si = sn + (g->off + j) * half;
            for (int i = 0; i < q; i++) {
                // freqs = position_ids[..., None].float() * inv_freq; cos = freqs.cos(); sin = freqs.sin()
                const float fh = (float)hp * inv_freq[i], fw = (float)wp * inv_freq[i];
                c[i] = cosf(fh), si[i] = sinf(fh);
                c[q + i] = cosf(fw), si[q + i] = sinf(fw);
            }
        }
    }
}

// apply_rotary_pos_emb_vision on q and k in place (fp32): x * cos + rotate_half(x) * sin over the whole head,
// rotate_half(x) = cat(-x[hd/2:], x[:hd/2]). qkv [P, 3, heads, hd]
static void vision_apply_rope(float *qkv, const float *cs, const float *sn, int64_t P, int heads, int hd) {
    const int half = hd / 2, Hv = heads * hd;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < P; r++) {
        const float *c = cs + r * half, *s = sn + r * half;
        for (int part = 0; part < 2; part++) // q, k
            for (int h = 0; h < heads; h++) {
                float *x = qkv + r * 3 * Hv + (int64_t)part * Hv + (int64_t)h * hd;
                for (int i = 0; i < half; i++) {
                    const float a = x[i], b = x[half + i];
                    x[i] = a * c[i] + -b * s[i];
                    x[half + i] = b * c[i] + a * s[i];
                }
            }
    }
}

// ---------------------------------------------------------------------------- helpers

// y[i] += x[i]
static void add_inplace(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = y[i] + x[i];
}

// down(act_fn(gate(x)) * up(x)) over row chunks (Glm4VisionMlp and the tail of Glm4vVisionPatchMerger)
static void swiglu_mlp(float *y, const float *x, int64_t n, const Tensor *gate, const Tensor *up, const Tensor *down,
                       float *g, float *u, int chunk) {
    const int64_t K = gate->cols, I = gate->rows, O = down->rows;
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        const int nr = (int)(n - r0 < chunk ? n - r0 : chunk);
        // gate and up in one parallel region
        const LinearJob gu[2] = {{g, I, x + r0 * K, K, gate, NULL, nr}, {u, I, x + r0 * K, K, up, NULL, nr}};
        linear_batch(gu, 2);
#pragma omp parallel for schedule(static) if (nr > 8)
        for (int i = 0; i < nr; i++) swiglu(g + (int64_t)i * I, g + (int64_t)i * I, u + (int64_t)i * I, (int)I);
        linear(y + r0 * O, g, down, NULL, nr);
    }
}

// the segment that attention task t belongs to (binary search on task0)
static const VisSeg *seg_of_task(const VisSeg *segs, int64_t nseg, int64_t t) {
    int64_t lo = 0, hi = nseg - 1;
    while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (segs[mid].task0 <= t) lo = mid;
        else hi = mid - 1;
    }
    return &segs[lo];
}

// the bf16 mode's K and V pairs of every (segment, head): kpk [heads, P, hd/2] (pack_pairs_cols of each key row),
// vpk [heads, npv, hd] (pack_pairs_rows of the segment's keys, pairs (2j, 2j + 1), a missing last key zero); one
// task per attention task's span of VIS_QCHUNK keys (an even count, so a task's pairs are whole)
static void vision_pack_kv(uint32_t *kpk, uint32_t *vpk, const float *qkv, const VisSeg *segs, int64_t ntask,
                           int64_t nseg, int64_t P, int64_t npv, int heads, int hd) {
    const int64_t Hv = (int64_t)heads * hd;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntask; t++) {
        const VisSeg *sg = seg_of_task(segs, nseg, t);
        const int n = sg->h * sg->w, nchunk = (n + VIS_QCHUNK - 1) / VIS_QCHUNK;
        const int h = (int)((t - sg->task0) / nchunk), j0 = (int)((t - sg->task0) % nchunk) * VIS_QCHUNK;
        const int nj = n - j0 < VIS_QCHUNK ? n - j0 : VIS_QCHUNK;
        const float *k = qkv + (sg->off + j0) * 3 * Hv + Hv + (int64_t)h * hd;
        pack_pairs_cols(kpk + ((int64_t)h * P + sg->off + j0) * (hd / 2), hd / 2, k, 3 * Hv, nj, hd);
        pack_pairs_rows(vpk + ((int64_t)h * npv + sg->voff + j0 / 2) * hd, hd, k + Hv, 3 * Hv, nj, hd, NULL);
    }
}

static void tap2(const TapSink *taps, const char *name, const float *data, int64_t rows, int64_t cols) {
    const int64_t shape[2] = {rows, cols};
    tap(taps, name, DT_F32, 2, shape, data);
}

// ---------------------------------------------------------------------------- forward

int vision_forward(const Weights *wt, const Config *c, const PixelBatch *pb, float *out, float *scratch,
                   const TapSink *taps) {
    const VisionConfig *v = &c->vision;
    const VisionWeights *W = &wt->vis;
    VisLayout L;
    if (vision_layout(c, pb, &L)) return -1;
    if (v->head_dim > 2048) return glm_err("vision: head_dim %d is too large", v->head_dim);
    const int Hv = v->hidden_size, heads = v->num_heads, hd = v->head_dim, m = v->spatial_merge_size;
    const int O = v->out_hidden_size, m2 = m * m, side = v->pos_side;
    const int64_t P = L.P, N4 = L.N4;
    float *pos = scratch + L.pos, *wv = scratch + L.wv, *wb = scratch + L.wb, *cs = scratch + L.cs,
          *sn = scratch + L.sn, *x = scratch + L.x, *hn = scratch + L.hn, *qkv = scratch + L.qkv,
          *att = scratch + L.att, *g = scratch + L.g, *u = scratch + L.u, *ds = scratch + L.ds, *mh = scratch + L.mh,
          *attsc = scratch + L.attsc;
    uint32_t *kpk = (uint32_t *)(scratch + L.kpk), *vpk = (uint32_t *)(scratch + L.vpk);
    VisSeg *segs = (VisSeg *)(scratch + L.segs);
    vision_segments(c, pb, segs, &L.nseg, &L.ntask, &L.npv, &L.maxlen);
    const size_t attsz = attention_scratch_floats(L.maxlen);

    // hidden_states = self.patch_embed(hidden_states): Conv3d(kernel = stride = (T, P, P)) = x . W[Hv, C*T*P*P]^T + b
    linear(x, pb->pixel_values, &W->patch_w, &W->patch_b, (int)P);
    tap2(taps, "model.visual.patch_embed", x, P, Hv);
    // hidden_states = self.post_conv_layernorm(hidden_states)
    tensor_to_f32(wv, &W->post_conv_layernorm, Hv);
    rmsnorm(x, x, wv, (int)P, Hv, v->rms_norm_eps);
    // position_embeddings = self.rotary_pos_emb(hidden_states, position_ids)
    vision_rotary(cs, sn, segs, L.nseg, hd, m);
    // hidden_states = self.embeddings(hidden_states, ...): + grid_sample of the position table, per item
    tensor_to_f32(pos, &W->pos_embed, (int64_t)side * side * Hv);
    for (int64_t s = 0; s < L.nseg; s++)
        vision_pos_embed(hn + segs[s].off * Hv, pos, side, Hv, segs[s].h, segs[s].w, m);
    add_inplace(x, hn, P * Hv);
    tap2(taps, "model.visual.embeddings", x, P, Hv);

    const float scale = (float)pow((double)hd, -0.5);
    for (int b = 0; b < v->depth; b++) {
        const VisionBlock *B = &W->blocks[b];
        // hidden_states = hidden_states + self.attn(self.norm1(hidden_states), ...)
        tensor_to_f32(wv, &B->norm1, Hv);
        rmsnorm(hn, x, wv, (int)P, Hv, v->rms_norm_eps);
        // self.qkv(hidden_states).reshape(seq_length, 3, self.num_heads, -1)
        linear(qkv, hn, &B->qkv, &B->qkv_bias, (int)P);
        // apply_rotary_pos_emb_vision(query_states, key_states, cos, sin)
        vision_apply_rope(qkv, cs, sn, P, heads, hd);
        // the bf16 mode: key_states / value_states as bf16 pairs once for all query chunks (the same pairs
        // attention_head packs per key block: blocks start at even keys)
        if (L.kvpairs) vision_pack_kv(kpk, vpk, qkv, segs, L.ntask, L.nseg, P, L.npv, heads, hd);
        // eager_attention_forward on each torch.split chunk (one per segment), bidirectional
#pragma omp parallel for schedule(dynamic, 1) num_threads(L.nthr)
        for (int64_t t = 0; t < L.ntask; t++) {
            const VisSeg *sg = seg_of_task(segs, L.nseg, t);
            const int n = sg->h * sg->w, nchunk = (n + VIS_QCHUNK - 1) / VIS_QCHUNK;
            const int h = (int)((t - sg->task0) / nchunk), q0 = (int)((t - sg->task0) % nchunk) * VIS_QCHUNK;
            const int nq = n - q0 < VIS_QCHUNK ? n - q0 : VIS_QCHUNK;
            const float *k = qkv + sg->off * 3 * Hv + Hv + (int64_t)h * hd, *q = k - Hv + (int64_t)q0 * 3 * Hv;
            float *o = att + (sg->off + q0) * Hv + (int64_t)h * hd, *sc = attsc + (size_t)omp_get_thread_num() * attsz;
            if (L.kvpairs)
                attention_head_kvpairs(o, Hv, q, 3 * Hv, kpk + ((int64_t)h * P + sg->off) * (hd / 2), hd / 2,
                                       vpk + ((int64_t)h * L.npv + sg->voff) * hd, hd, nq, n, hd, scale, sc);
            else attention_head(o, Hv, q, 3 * Hv, k, 3 * Hv, k + Hv, 3 * Hv, nq, n, hd, scale, -1, sc);
        }
        // attn_output = self.proj(attn_output)
        linear(hn, att, &B->proj, NULL, (int)P);
        add_inplace(x, hn, P * Hv);
        // hidden_states = hidden_states + self.mlp(self.norm2(hidden_states))
        tensor_to_f32(wv, &B->norm2, Hv);
        rmsnorm(hn, x, wv, (int)P, Hv, v->rms_norm_eps);
        swiglu_mlp(att, hn, P, &B->gate_proj, &B->up_proj, &B->down_proj, g, u, L.chunk);
        add_inplace(x, att, P * Hv);
        char name[64];
        snprintf(name, sizeof name, "model.visual.blocks.%d", b);
        tap2(taps, name, x, P, Hv);
    }

    // hidden_states = self.post_layernorm(hidden_states)
    tensor_to_f32(wv, &W->post_layernorm, Hv);
    rmsnorm(hn, x, wv, (int)P, Hv, v->rms_norm_eps);
    tap2(taps, "model.visual.post_layernorm", hn, P, Hv);
    // view(-1, m, m, Hv).permute(0, 3, 1, 2); self.downsample (Conv2d, kernel = stride = m) = one matrix product
    // over the m*m consecutive tokens laid out as [Hv, m, m]: x4[c*m*m + mh*m + mw] = token(mh, mw)[c]
    float *x4 = qkv; // [N4, Hv*m*m]
#pragma omp parallel for schedule(static)
    for (int64_t gi = 0; gi < N4; gi++)
        for (int k = 0; k < m2; k++)
            for (int ch = 0; ch < Hv; ch++) x4[gi * Hv * m2 + (int64_t)ch * m2 + k] = hn[(gi * m2 + k) * Hv + ch];
    linear(ds, x4, &W->downsample_w, &W->downsample_b, (int)N4);
    tap2(taps, "model.visual.downsample", ds, N4, O);

    // merged_hidden_states = self.merger(hidden_states)
    // hidden_state = self.proj(hidden_state)
    linear(mh, ds, &W->merger_proj, NULL, (int)N4);
    // hidden_state = self.act1(self.post_projection_norm(hidden_state)): LayerNorm(eps 1e-5), exact GELU
    tensor_to_f32(wv, &W->merger_norm_w, O);
    tensor_to_f32(wb, &W->merger_norm_b, O);
    layernorm(mh, mh, wv, wb, (int)N4, O, 1e-5f);
#pragma omp parallel for schedule(static) if (N4 * O > 65536)
    for (int64_t i = 0; i < N4 * O; i++) mh[i] = gelu_erf(mh[i]);
    // self.down_proj(self.act_fn(self.gate_proj(hidden_state)) * self.up_proj(hidden_state))
    swiglu_mlp(out, mh, N4, &W->merger_gate, &W->merger_up, &W->merger_down, g, u, L.chunk);
    tap2(taps, "model.visual.merger", out, N4, O);
    return 0;
}

// the widest input any vision Linear reads: the per-thread kernel buffers are sized for it
static size_t vision_max_cols(const VisionConfig *v) {
    const size_t m2 = (size_t)v->spatial_merge_size * v->spatial_merge_size;
    size_t k = (size_t)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
    const size_t ks[] = {(size_t)v->hidden_size * m2, (size_t)v->mlp_size, (size_t)v->intermediate_size,
                         (size_t)v->out_hidden_size};
    for (size_t i = 0; i < sizeof ks / sizeof *ks; i++) k = ks[i] > k ? ks[i] : k;
    return k;
}

int vision_encode(const Weights *w, const Config *c, const PixelBatch *pb, float *out, const TapSink *taps) {
    size_t nsc = vision_scratch_floats(c, pb), bytes;
    if (nsc == 0 || size_mul(nsc, sizeof(float), &bytes)) return -1;
    ops_reserve(vision_max_cols(&c->vision));
    float *scratch = malloc(bytes);
    if (!scratch) return glm_err("out of memory: the vision tower needs %.1f MB", bytes / 1e6);
    int rc = vision_forward(w, c, pb, out, scratch, taps);
    free(scratch);
    return rc;
}
