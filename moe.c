// SPDX-License-Identifier: MIT
// moe.c - Glm4vMoeTextMoE: sigmoid top-k router with group-limited selection, routed experts, shared expert.
// Prefill groups the tokens of a chunk by expert, so each chosen expert's weights are read once per chunk.
#include "moe.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#define MOE_GROUP 128 // most experts in one batch of Linears (prefill)

// where each buffer of moe_forward sits in its scratch for n tokens (offsets in floats; the int arrays are stored in
// float-sized slots). One table, so the size and the pointers cannot disagree
typedef struct {
    size_t logits;   // [n, E] router logits
    size_t topk_w;   // [n, K] routing weights
    size_t topk_i;   // [n, K] (int) chosen experts
    size_t tok_list; // [E, n] (int) tokens routed to each expert
    size_t tok_slot; // [E, n] (int) their top-k slot
    size_t count;    // [E] (int) tokens per expert
    size_t xg;       // [n, H] gathered tokens of a group of experts
    size_t g, u;     // [n, I] SwiGLU gate / up (I = max(Im, Im * shared))
    size_t eo;       // [n, H] expert outputs
    size_t sh;       // [n, H] shared expert output
    size_t bg, bu;   // [K + 1, I] decode (n = 1): gate / up of the k experts + the shared one
    size_t beo;      // [K + 1, H] decode: their outputs
    size_t total;    // floats
} MoeLayout;

static MoeLayout moe_layout(const TextConfig *t, size_t n) {
    const size_t E = (size_t)t->n_routed_experts, K = (size_t)t->num_experts_per_tok, H = (size_t)t->hidden_size;
    const size_t Im = (size_t)t->moe_intermediate_size, Is = Im * (size_t)t->n_shared_experts, I = Im > Is ? Im : Is;
    MoeLayout L;
    L.logits = 0;
    L.topk_w = L.logits + n * E;
    L.topk_i = L.topk_w + n * K;
    L.tok_list = L.topk_i + n * K;
    L.tok_slot = L.tok_list + E * n;
    L.count = L.tok_slot + E * n;
    L.xg = L.count + E;
    L.g = L.xg + n * H;
    L.u = L.g + n * I;
    L.eo = L.u + n * I;
    L.sh = L.eo + n * H;
    L.bg = L.sh + n * H;
    L.bu = L.bg + (K + 1) * I;
    L.beo = L.bu + (K + 1) * I;
    L.total = L.beo + (K + 1) * H + 64;
    return L;
}

size_t moe_scratch_floats(const Config *c, int n) { return moe_layout(&c->text, (size_t)n).total; }

// index of the larger score; ties keep the lower index first (a deterministic order for topk(sorted=False))
static int better(const float *s, int a, int b) { return s[a] > s[b] || (s[a] == s[b] && a < b); }

// Glm4vMoeTextTopkRouter.forward for one token, from its fp32 router logits [E]
void moe_router(const TextLayer *L, const Config *c, const float *logits, int *idx, float *wts) {
    const TextConfig *t = &c->text;
    const int E = t->n_routed_experts, K = t->num_experts_per_tok, G = t->n_group, per = E / G;
    float scores[1024], choice[1024], gscore[1024];
    int gsel[1024];
    float *sc = E <= 1024 ? scores : xmalloc((size_t)E * 3 * sizeof(float));
    float *ch = E <= 1024 ? choice : sc + E, *gs = E <= 1024 ? gscore : sc + 2 * E;
    int *gk = E <= 1024 ? gsel : xmalloc((size_t)E * sizeof(int));
    for (int e = 0; e < E; e++) {
        // scores = router_logits.sigmoid()
        sc[e] = 1.0f / (1.0f + expf(-logits[e]));
        // scores_for_choice = scores + self.e_score_correction_bias
        ch[e] = sc[e] + tensor_get(&L->router_bias, e);
    }
    if (G > 1) {
        // group_scores = scores_for_choice.view(-1, n_group, E // n_group).topk(2, dim=-1)[0].sum(dim=-1)
        for (int g = 0; g < G; g++) {
            const float *s = ch + g * per;
            int a = 0, b = 1;
            if (better(s, b, a)) a = 1, b = 0;
            for (int e = 2; e < per; e++) {
                if (better(s, e, a)) b = a, a = e;
                else if (better(s, e, b)) b = e;
            }
            gs[g] = s[a] + s[b];
        }
        // group_idx = topk(group_scores, k=topk_group); masked_fill(~score_mask, -inf) (5.x; 4.5x filled 0.0)
        for (int g = 0; g < G; g++) gk[g] = 0;
        for (int r = 0; r < t->topk_group; r++) {
            int best = -1;
            for (int g = 0; g < G; g++)
                if (!gk[g] && (best < 0 || better(gs, g, best))) best = g;
            gk[best] = 1;
        }
        for (int e = 0; e < E; e++)
            if (!gk[e / per]) ch[e] = -INFINITY;
    }
    // topk_indices = torch.topk(scores_for_choice, k=top_k, dim=-1, sorted=False)[1]  (selection by score, ties by id)
    for (int r = 0; r < K; r++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int q = 0; q < r && !taken; q++) taken = idx[q] == e;
            if (!taken && (best < 0 || better(ch, e, best))) best = e;
        }
        idx[r] = best;
    }
    // topk_weights = scores.gather(1, topk_indices)
    float sum = 0.0f;
    for (int r = 0; r < K; r++) wts[r] = sc[idx[r]];
    if (t->norm_topk_prob) {
        // denominator = topk_weights.sum(dim=-1, keepdim=True) + 1e-20
        for (int r = 0; r < K; r++) sum += wts[r];
        float den = sum + 1e-20f;
        for (int r = 0; r < K; r++) wts[r] /= den;
    }
    // topk_weights = topk_weights * self.routed_scaling_factor
    for (int r = 0; r < K; r++) wts[r] *= t->routed_scaling_factor;
    if (sc != scores) free(sc);
    if (gk != gsel) free(gk);
}

// Glm4vMoeTextMLP on rows x [n, H] -> y [n, H] with separate gate/up/down (g, u: [n, I] scratch)
static void mlp_swiglu(float *y, const float *x, const Tensor *gate, const Tensor *up, const Tensor *down, int n,
                       float *g, float *u) {
    const int I = (int)gate->rows, H = (int)gate->cols;
    // down_proj(act_fn(gate_proj(x)) * up_proj(x)): gate and up in one parallel region
    const LinearJob gu[2] = {{g, I, x, H, gate, NULL, n}, {u, I, x, H, up, NULL, n}};
    linear_batch(gu, 2);
#pragma omp parallel for schedule(static) if (n > 8)
    for (int i = 0; i < n; i++) swiglu(g + (int64_t)i * I, g + (int64_t)i * I, u + (int64_t)i * I, I);
    linear(y, g, down, NULL, n);
}

// decode (one token): the k chosen experts and the shared expert as two batches of Linears (gate + up of all of
// them, then all the down projections), so the whole MoE block costs two parallel regions and every core streams
// weights; then the same sums in the same order as moe_forward's loop (ascending expert id, then the shared expert)
static void moe_decode(const TextLayer *L, const TextConfig *t, const float *x, float *y, const int *idx,
                       const float *w, float *g, float *u, float *eo) {
    const int K = t->num_experts_per_tok, H = t->hidden_size, Im = t->moe_intermediate_size;
    const int Is = Im * t->n_shared_experts, I = Im > Is ? Im : Is, ne = K + (Is > 0);
    LinearJob jobs[2 * 65] = {{0}};
    for (int r = 0; r < ne; r++) {
        const Tensor *gt = r < K ? &L->exp_gate[idx[r]] : &L->sh_gate, *ut = r < K ? &L->exp_up[idx[r]] : &L->sh_up;
        jobs[2 * r] = (LinearJob){g + (size_t)r * I, I, x, H, gt, NULL, 1};
        jobs[2 * r + 1] = (LinearJob){u + (size_t)r * I, I, x, H, ut, NULL, 1};
    }
    linear_batch(jobs, 2 * ne);
    for (int r = 0; r < ne; r++) {
        const int w_ = r < K ? Im : Is;
        swiglu(g + (size_t)r * I, g + (size_t)r * I, u + (size_t)r * I, w_);
        jobs[r] = (LinearJob){eo + (size_t)r * H, H, g + (size_t)r * I, w_, r < K ? &L->exp_down[idx[r]] : &L->sh_down,
                              NULL, 1};
    }
    linear_batch(jobs, ne);
    memset(y, 0, (size_t)H * sizeof(float));
    int done[64] = {0};
    for (int q = 0; q < K; q++) { // ascending expert id (ids are distinct)
        int r = -1;
        for (int s = 0; s < K; s++)
            if (!done[s] && (r < 0 || idx[s] < idx[r])) r = s;
        done[r] = 1;
        const float *er = eo + (size_t)r * H;
        for (int h = 0; h < H; h++) y[h] += er[h] * w[r];
    }
    if (Is) {
        const float *sh = eo + (size_t)K * H;
        for (int h = 0; h < H; h++) y[h] += sh[h];
    }
}

void moe_forward(const TextLayer *L, const Config *c, const float *x, float *y, int n, float *scratch,
                 const TapSink *taps, int layer) {
    const TextConfig *t = &c->text;
    const int E = t->n_routed_experts, K = t->num_experts_per_tok, H = t->hidden_size;
    const int Im = t->moe_intermediate_size, Is = Im * t->n_shared_experts;
    const MoeLayout S = moe_layout(t, (size_t)n);
    float *logits = scratch + S.logits, *topk_w = scratch + S.topk_w;
    int *topk_i = (int *)(scratch + S.topk_i), *tok_list = (int *)(scratch + S.tok_list);
    int *tok_slot = (int *)(scratch + S.tok_slot), *count = (int *)(scratch + S.count);
    float *xg = scratch + S.xg, *g = scratch + S.g, *u = scratch + S.u, *eo = scratch + S.eo, *sh = scratch + S.sh;

    // router_logits = F.linear(hidden_states.float(), self.weight.float())
    linear_fp32(logits, x, &L->router, NULL, n); // (fp32 in --compute bf16 too, as HF)
    for (int i = 0; i < n; i++) moe_router(L, c, logits + (size_t)i * E, topk_i + (size_t)i * K, topk_w + (size_t)i * K);
    if (taps && taps->fn) {
        char name[128];
        int64_t s0[2] = {n, E}, s1[2] = {n, K};
        snprintf(name, sizeof name, "model.language_model.layers.%d.mlp.gate.out0", layer);
        tap(taps, name, DT_F32, 2, s0, logits);
        snprintf(name, sizeof name, "model.language_model.layers.%d.mlp.gate.out1", layer);
        tap(taps, name, DT_F32, 2, s1, topk_w);
        int64_t *ids = xmalloc((size_t)n * K * sizeof(int64_t)); // dump path only
        for (size_t i = 0; i < (size_t)n * K; i++) ids[i] = topk_i[i];
        snprintf(name, sizeof name, "model.language_model.layers.%d.mlp.gate.out2", layer);
        tap(taps, name, DT_I64, 2, s1, ids);
        free(ids);
    }
    if (n == 1 && K <= 64) {
        moe_decode(L, t, x, y, topk_i, topk_w, scratch + S.bg, scratch + S.bu, scratch + S.beo);
        return;
    }
    // group the tokens by expert (token order within an expert)
    memset(count, 0, (size_t)E * sizeof(int));
    for (int i = 0; i < n; i++)
        for (int r = 0; r < K; r++) {
            int e = topk_i[i * K + r];
            tok_list[(size_t)e * n + count[e]] = i;
            tok_slot[(size_t)e * n + count[e]] = r;
            count[e]++;
        }
    memset(y, 0, (size_t)n * H * sizeof(float));
    // Glm4vMoeTextExperts: for each hit expert in ascending id, final_hidden_states.index_add_(token_idx, out * w).
    // Consecutive experts whose tokens fit in the scratch (n rows) run as one group: their gate/up Linears in one
    // parallel region, their down Linears in another (each expert's rows get the same bits as alone)
    LinearJob jobs[2 * MOE_GROUP];
    int off[MOE_GROUP + 1]; // first scratch row of each expert of the group
    for (int e0 = 0; e0 < E;) {
        int e1 = e0, rows = 0, nj = 0;
        while (e1 < E && e1 - e0 < MOE_GROUP && (rows == 0 || rows + count[e1] <= n)) rows += count[e1++];
        off[0] = 0;
        for (int e = e0; e < e1; e++) off[e - e0 + 1] = off[e - e0] + count[e];
#pragma omp parallel for schedule(dynamic, 1) if (rows * H > 65536)
        for (int e = e0; e < e1; e++)
            for (int j = 0; j < count[e]; j++)
                memcpy(xg + (size_t)(off[e - e0] + j) * H, x + (size_t)tok_list[(size_t)e * n + j] * H,
                       (size_t)H * sizeof(float));
        for (int e = e0; e < e1; e++)
            if (count[e]) {
                const size_t o = (size_t)off[e - e0];
                jobs[nj++] = (LinearJob){g + o * Im, Im, xg + o * H, H, &L->exp_gate[e], NULL, count[e]};
                jobs[nj++] = (LinearJob){u + o * Im, Im, xg + o * H, H, &L->exp_up[e], NULL, count[e]};
            }
        // down_proj(act_fn(gate_proj(x)) * up_proj(x))
        linear_batch(jobs, nj);
#pragma omp parallel for schedule(static) if (rows > 8)
        for (int r = 0; r < rows; r++) swiglu(g + (size_t)r * Im, g + (size_t)r * Im, u + (size_t)r * Im, Im);
        nj = 0;
        for (int e = e0; e < e1; e++)
            if (count[e]) {
                const size_t o = (size_t)off[e - e0];
                jobs[nj++] = (LinearJob){eo + o * H, H, g + o * Im, Im, &L->exp_down[e], NULL, count[e]};
            }
        linear_batch(jobs, nj);
        // current_hidden_states * top_k_weights[token_idx, top_k_pos, None], added in ascending expert id
#pragma omp parallel for schedule(static) if (rows * H > 65536)
        for (int h0 = 0; h0 < H; h0 += 256) {
            const int h1 = h0 + 256 < H ? h0 + 256 : H;
            for (int e = e0; e < e1; e++)
                for (int j = 0; j < count[e]; j++) {
                    const int tok = tok_list[(size_t)e * n + j];
                    const float w = topk_w[(size_t)tok * K + tok_slot[(size_t)e * n + j]];
                    float *yr = y + (size_t)tok * H;
                    const float *er = eo + (size_t)(off[e - e0] + j) * H;
                    for (int h = h0; h < h1; h++) yr[h] += er[h] * w;
                }
        }
        e0 = e1;
    }
    // hidden_states = hidden_states + self.shared_experts(residuals)
    if (Is) {
        mlp_swiglu(sh, x, &L->sh_gate, &L->sh_up, &L->sh_down, n, g, u);
        for (size_t i = 0; i < (size_t)n * H; i++) y[i] += sh[i];
    }
}
