// SPDX-License-Identifier: MIT
// moe.c - Glm4vMoeTextMoE: sigmoid top-k router with group-limited selection, routed experts, shared expert.
// Prefill groups the tokens of a chunk by expert, so each chosen expert's weights are read once per chunk.
#include "moe.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#define MOE_GROUP 128 // most experts in one batch of Linears (prefill)
#define MOE_SMALL 8   // most tokens of a step run as small batches (moe_small: decode, a server's batched step)

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
    size_t bg, bu;   // [m (K + 1), I] small batches (m = min(n, MOE_SMALL) tokens): gate / up of every chosen
                     // expert's tokens + the shared expert's
    size_t beo;      // [m (K + 1), H] small batches: their outputs
    size_t bxg;      // [m K, H] small batches: the tokens of experts chosen by more than one, gathered
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
    const size_t m = n < MOE_SMALL ? n : MOE_SMALL;
    L.bg = L.sh + n * H;
    L.bu = L.bg + m * (K + 1) * I;
    L.beo = L.bu + m * (K + 1) * I;
    L.bxg = L.beo + m * (K + 1) * H;
    L.total = L.bxg + m * K * H + 64;
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

// small batches (decode, a server's batched step: n <= MOE_SMALL tokens): every chosen expert (for the tokens that
// chose it, gathered where more than one did) and the shared expert as two batches of Linears (gate + up of all of
// them, then all the down projections), so the whole MoE block costs two parallel regions, every core streams
// weights and each chosen expert is read once; then the same sums in the same order as moe_forward's loop (for each
// token: ascending expert id, then the shared expert)
static void moe_small(const TextLayer *L, const TextConfig *t, const float *x, float *y, int n, const int *idx,
                      const float *w, float *g, float *u, float *eo, float *xg) {
    const int E = t->n_routed_experts, K = t->num_experts_per_tok, H = t->hidden_size, Im = t->moe_intermediate_size;
    const int Is = Im * t->n_shared_experts, I = Im > Is ? Im : Is;
    enum { NJ = MOE_SMALL * 64 + 1 }; // most jobs of a batch (K <= 64)
    LinearJob jobs[2 * NJ];
    int exp_of[NJ], tok_of[NJ][MOE_SMALL], cnt[NJ], ne = 0, ng = 0;
    // the chosen experts in ascending id, with their tokens in token order
    for (int e = 0; e < E; e++) {
        int c = 0;
        for (int i = 0; i < n; i++)
            for (int r = 0; r < K; r++)
                if (idx[i * K + r] == e) tok_of[ne][c++] = i;
        if (c) exp_of[ne] = e, cnt[ne++] = c;
    }
    // job q: expert q's tokens (rows of x, or gathered into xg), their gate / up in rows [row[q], row[q] + cnt[q])
    int row[NJ + 1];
    row[0] = 0;
    for (int q = 0; q < ne; q++) {
        const float *xq = x + (size_t)tok_of[q][0] * H;
        if (cnt[q] > 1) {
            for (int j = 0; j < cnt[q]; j++)
                memcpy(xg + (size_t)(ng + j) * H, x + (size_t)tok_of[q][j] * H, (size_t)H * sizeof(float));
            xq = xg + (size_t)ng * H, ng += cnt[q];
        }
        const int e = exp_of[q];
        jobs[2 * q] = (LinearJob){g + (size_t)row[q] * I, I, xq, H, &L->exp_gate[e], NULL, cnt[q]};
        jobs[2 * q + 1] = (LinearJob){u + (size_t)row[q] * I, I, xq, H, &L->exp_up[e], NULL, cnt[q]};
        row[q + 1] = row[q] + cnt[q];
    }
    int nj = 2 * ne;
    if (Is) { // the shared expert on every token
        jobs[nj++] = (LinearJob){g + (size_t)row[ne] * I, I, x, H, &L->sh_gate, NULL, n};
        jobs[nj++] = (LinearJob){u + (size_t)row[ne] * I, I, x, H, &L->sh_up, NULL, n};
    }
    // down_proj(act_fn(gate_proj(x)) * up_proj(x))
    linear_batch(jobs, nj);
    const int rows = row[ne] + (Is ? n : 0);
    for (int r = 0; r < rows; r++) swiglu(g + (size_t)r * I, g + (size_t)r * I, u + (size_t)r * I, r < row[ne] ? Im : Is);
    for (int q = 0; q < ne; q++)
        jobs[q] = (LinearJob){eo + (size_t)row[q] * H, H, g + (size_t)row[q] * I, I, &L->exp_down[exp_of[q]], NULL,
                              cnt[q]};
    if (Is) jobs[ne] = (LinearJob){eo + (size_t)row[ne] * H, H, g + (size_t)row[ne] * I, I, &L->sh_down, NULL, n};
    linear_batch(jobs, ne + (Is > 0));
    // current_hidden_states * top_k_weights[token_idx, top_k_pos, None], added in ascending expert id
    memset(y, 0, (size_t)n * H * sizeof(float));
    for (int q = 0; q < ne; q++)
        for (int j = 0; j < cnt[q]; j++) {
            const int tok = tok_of[q][j];
            int r = 0;
            while (idx[tok * K + r] != exp_of[q]) r++;
            const float wt = w[tok * K + r], *er = eo + (size_t)(row[q] + j) * H;
            float *yr = y + (size_t)tok * H;
            for (int h = 0; h < H; h++) yr[h] += er[h] * wt;
        }
    // hidden_states = hidden_states + self.shared_experts(residuals)
    if (Is)
        for (int i = 0; i < n; i++) {
            const float *sh = eo + (size_t)(row[ne] + i) * H;
            float *yr = y + (size_t)i * H;
            for (int h = 0; h < H; h++) yr[h] += sh[h];
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
    if (n <= MOE_SMALL && K <= 64) {
        moe_small(L, t, x, y, n, topk_i, topk_w, scratch + S.bg, scratch + S.bu, scratch + S.beo, scratch + S.bxg);
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
