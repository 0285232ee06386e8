// SPDX-License-Identifier: MIT
// model.c - the text decoders: Glm4vMoeTextModel (GLM-4.5V/4.6V) and Glm4vTextModel (GLM-4.1V/4.6V-Flash).
// Prefill and decode share this code: a call processes n tokens appended to the KV cache (decode is n = 1).
#include "model.h"
#include "moe.h"
#include "ops.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

// ---------------------------------------------------------------------------- arena

// the arena for a KV cache of max_ctx tokens (none when !with_kv) and activations of chunk rows
static int model_alloc(Model *m, const Config *c, const Weights *w, int max_ctx, int chunk, int with_kv) {
    memset(m, 0, sizeof *m);
    const TextConfig *t = &c->text;
    m->cfg = c, m->w = w, m->max_ctx = max_ctx, m->chunk = chunk;
    if (max_ctx < 1 || chunk < 1) return glm_err("invalid context size %d", max_ctx);
    const size_t H = t->hidden_size, hd = t->head_dim, Q = (size_t)t->num_attention_heads * hd;
    const size_t KV = (size_t)t->num_key_value_heads * hd, L = t->num_hidden_layers, C = chunk;
    size_t I = c->is_moe ? (size_t)t->intermediate_size : 2 * (size_t)t->intermediate_size;
    m->att_threads = omp_get_max_threads();
    size_t cache, tot = 0, sz[20];
    if (size_mul(L * (size_t)t->num_key_value_heads, (size_t)max_ctx * hd, &cache)) return -1;
    if (!with_kv) cache = 0;
    int k = 0;
    sz[k++] = cache;                                                     // k_cache
    sz[k++] = cache;                                                     // v_cache
    sz[k++] = C * H;                                                     // x
    sz[k++] = C * H;                                                     // xn
    sz[k++] = C * Q;                                                     // q
    sz[k++] = C * KV;                                                    // k
    sz[k++] = C * KV;                                                    // v
    sz[k++] = C * Q;                                                     // att
    sz[k++] = C * H;                                                     // o
    sz[k++] = C * I;                                                     // mlp_g
    sz[k++] = C * I;                                                     // mlp_u
    sz[k++] = c->is_moe ? moe_scratch_floats(c, chunk) : 0;              // moe_scratch
    sz[k++] = (size_t)m->att_threads * attention_scratch_floats(max_ctx); // att_scratch
    sz[k++] = 2 * C * (size_t)(t->rotary_dim / 2) + (size_t)(t->rotary_dim / 2); // cos, sin, inv_freq
    sz[k++] = H + (Q > H ? Q : H);                                       // norm_w, bias
    sz[k++] = with_kv ? 0 : C * (size_t)t->vocab_size;                 // logits_rows (batches only)
    for (int i = 0; i < k; i++) {
        sz[i] = (sz[i] + 15) & ~(size_t)15; // 64-byte aligned sub-buffers
        if (size_add(tot, sz[i], &tot)) return -1;
    }
    size_t bytes;
    if (size_mul(tot, sizeof(float), &bytes)) return -1;
    // on 2 MB pages where the kernel gives them: every decode step reads the whole KV cache, and 4 KB pages cost a
    // TLB walk per 4 KB (~25 % of decode attention measured on a VM)
    const size_t huge = (size_t)2 << 20, align = bytes >= 2 * huge ? huge : 64;
    m->arena = aligned_alloc(align, (bytes + align - 1) & ~(align - 1));
#ifdef MADV_HUGEPAGE
    if (m->arena && align == huge) madvise(m->arena, bytes, MADV_HUGEPAGE);
#endif
    if (!m->arena)
        return glm_err("out of memory: the KV cache and activations need %.1f MB (context %d tokens)", bytes / 1e6,
                       max_ctx);
    m->arena_floats = tot;
    float *p = m->arena;
    k = 0;
    m->k_cache = p, p += sz[k++];
    m->v_cache = p, p += sz[k++];
    m->x = p, p += sz[k++];
    m->xn = p, p += sz[k++];
    m->q = p, p += sz[k++];
    m->k = p, p += sz[k++];
    m->v = p, p += sz[k++];
    m->att = p, p += sz[k++];
    m->o = p, p += sz[k++];
    m->mlp_g = p, p += sz[k++];
    m->mlp_u = p, p += sz[k++];
    m->moe_scratch = p, p += sz[k++];
    m->att_scratch = p, p += sz[k++];
    m->cos = p, m->sin = p + C * (t->rotary_dim / 2), m->inv_freq = p + 2 * C * (t->rotary_dim / 2), p += sz[k++];
    m->norm_w = p, m->bias = p + H, p += sz[k++];
    m->logits_rows = with_kv ? NULL : p, p += sz[k++];
    // Glm4v(Moe)TextRotaryEmbedding.compute_default_rope_parameters:
    // inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    const int rd = t->rotary_dim;
    for (int j = 0; j < rd / 2; j++) m->inv_freq[j] = 1.0f / powf(t->rope_theta, (float)(2 * j) / (float)rd);
    // every kernel buffer, sized once for a chunk (nothing is allocated in the token loop)
    size_t maxk = H > Q ? H : Q;
    maxk = maxk > (size_t)t->intermediate_size ? maxk : (size_t)t->intermediate_size;
    ops_reserve_rows(C, maxk);
    return 0;
}

int model_init(Model *m, const Config *c, const Weights *w, int max_ctx, int chunk) {
    return model_alloc(m, c, w, max_ctx, chunk, 1);
}

int model_init_batch(Model *m, const Config *c, const Weights *w, int max_ctx, int rows) {
    return model_alloc(m, c, w, max_ctx, rows, 0);
}

void model_free(Model *m) {
    free(m->arena);
    memset(m, 0, sizeof *m);
}

void embed_tokens(const Weights *w, const Config *c, const int *ids, int n, float *out) {
    const int H = c->text.hidden_size;
    for (int i = 0; i < n; i++) tensor_row_f32(out + (size_t)i * H, &w->embed_tokens, ids[i]);
}

// ---------------------------------------------------------------------------- rotary

// cos/sin rows [r0, r0 + n) of [rows, rd/2] for M-RoPE: frequency j uses the position row (t, h, w) of its
// mrope_section chunk (i % 3)
static void mrope_cos_sin(Model *m, const int64_t *pos, int stride, int r0, int n) {
    const TextConfig *t = &m->cfg->text;
    const int half = t->rotary_dim / 2;
    int axis[512];
    // freq = torch.cat([m[i % 3] for i, m in enumerate(freq.split(self.mrope_section, dim=-1))], dim=-1)
    for (int s = 0, j = 0; s < t->n_mrope_section; s++)
        for (int q = 0; q < t->mrope_section[s] && j < half && j < 512; q++) axis[j++] = s % 3;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < half; j++) {
            // freqs = position_ids[..., None].float() * self.inv_freq
            float f = (float)pos[(size_t)axis[j] * stride + i] * m->inv_freq[j];
            m->cos[(size_t)(r0 + i) * half + j] = cosf(f);
            m->sin[(size_t)(r0 + i) * half + j] = sinf(f);
        }
}

// apply_rotary_pos_emb on one head vector's first rd dims
static void rope_head(float *x, const float *cs, const float *sn, int rd, int interleaved) {
    const int half = rd / 2;
    if (!interleaved) {
        // Glm4vMoe: q_embed = q * cos + rotate_half(q) * sin, rotate_half(x) = cat(-x2, x1), cos = cat(c, c)
        for (int j = 0; j < half; j++) {
            float a = x[j], b = x[j + half];
            x[j] = a * cs[j] + (-b) * sn[j];
            x[j + half] = b * cs[j] + a * sn[j];
        }
    } else {
        // Glm4v: cos.repeat_interleave(2); rotate_half_llm(x)[2j] = -x[2j+1], [2j+1] = x[2j]
        for (int j = 0; j < half; j++) {
            float a = x[2 * j], b = x[2 * j + 1];
            x[2 * j] = a * cs[j] + (-b) * sn[j];
            x[2 * j + 1] = b * cs[j] + a * sn[j];
        }
    }
}

// ---------------------------------------------------------------------------- layers

static const float *norm_weight(Model *m, const Tensor *w) {
    tensor_to_f32(m->norm_w, w, w->cols);
    return m->norm_w;
}

// Glm4v(Moe)TextAttention.forward over the rows of a batch: xn [rows, H] -> m->o [rows, H] (m: the activations);
// each sequence appends its rows' keys and values to its own cache (layer l) and attends over it
static void self_attention(Model *m, const TextLayer *L, int l, const ModelSeq *seqs, int nseq, int rows) {
    const TextConfig *t = &m->cfg->text;
    const int hd = t->head_dim, Hq = t->num_attention_heads, Hkv = t->num_key_value_heads;
    const int Q = Hq * hd, KV = Hkv * hd, rd = t->rotary_dim, half = rd / 2, n = rows;
    // query_states = self.q_proj(hidden_states); key_states = ...; value_states = ... (one parallel region)
    const LinearJob qkv[3] = {
        {m->q, Q, m->xn, t->hidden_size, &L->q_proj, L->q_bias.data ? &L->q_bias : NULL, n},
        {m->k, KV, m->xn, t->hidden_size, &L->k_proj, L->k_bias.data ? &L->k_bias : NULL, n},
        {m->v, KV, m->xn, t->hidden_size, &L->v_proj, L->v_bias.data ? &L->v_bias : NULL, n},
    };
    linear_batch(qkv, 3);
    // query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
    const int inter = !m->cfg->is_moe;
    for (int i = 0; i < n; i++) {
        const float *cs = m->cos + (size_t)i * half, *sn = m->sin + (size_t)i * half;
        for (int h = 0; h < Hq; h++) rope_head(m->q + (size_t)i * Q + (size_t)h * hd, cs, sn, rd, inter);
        for (int h = 0; h < Hkv; h++) rope_head(m->k + (size_t)i * KV + (size_t)h * hd, cs, sn, rd, inter);
    }
    const float scale = 1.0f / sqrtf((float)hd);
    const int group = Hq / Hkv;
    const size_t per_thread = attention_scratch_floats(m->max_ctx);
    int ndec = 0; // sequences with one row (decode), attended together below
    for (int s = 0, r0 = 0; s < nseq; r0 += seqs[s].n, s++) {
        Model *kvm = seqs[s].m;
        const int ns = seqs[s].n, past = kvm->n_past, nk = past + ns, ctx = kvm->max_ctx;
        // key_states, value_states = cache.update(key_states, value_states, self.layer_idx)
        const size_t lstride = (size_t)Hkv * ctx * hd;
        float *kc = kvm->k_cache + (size_t)l * lstride, *vc = kvm->v_cache + (size_t)l * lstride;
        for (int i = 0; i < ns; i++)
            for (int h = 0; h < Hkv; h++) {
                size_t dst = ((size_t)h * ctx + past + i) * hd;
                memcpy(kc + dst, m->k + (size_t)(r0 + i) * KV + (size_t)h * hd, (size_t)hd * sizeof(float));
                memcpy(vc + dst, m->v + (size_t)(r0 + i) * KV + (size_t)h * hd, (size_t)hd * sizeof(float));
            }
        // attn_output = eager_attention_forward(query, repeat_kv(key), repeat_kv(value), causal mask, scaling)
        float *qs = m->q + (size_t)r0 * Q, *as = m->att + (size_t)r0 * Q;
        if (ns == 1) ndec++;
        else {
#pragma omp parallel for schedule(dynamic, 1)
            for (int h = 0; h < Hq; h++) {
                int tid = omp_get_thread_num();
                float *scores = m->att_scratch + (size_t)(tid < m->att_threads ? tid : 0) * per_thread;
                const float *kh = kc + (size_t)(h / group) * ctx * hd, *vh = vc + (size_t)(h / group) * ctx * hd;
                attention_head(as + (size_t)h * hd, Q, qs + (size_t)h * hd, Q, kh, hd, vh, hd, ns, nk, hd, scale,
                               past, scores);
            }
        }
    }
    // decode: every cached key is visible, so the `group` query heads of a KV head are the rows of one call (each row
    // gets the same roundings as alone: the bits equal the per-head computation); the (sequence, KV head) pairs of all
    // the one-row sequences of the batch in one parallel region
#pragma omp parallel for schedule(dynamic, 1) if (ndec > 0)
    for (int task = 0; task < ndec * Hkv; task++) {
        const int g = task % Hkv;
        int s = 0, r0 = 0; // the (task / Hkv)-th one-row sequence, its row r0
        for (int d = task / Hkv; seqs[s].n != 1 || d-- > 0; r0 += seqs[s].n, s++) {}
        const Model *kvm = seqs[s].m;
        const int ctx = kvm->max_ctx, nk = kvm->n_past + 1;
        const size_t lstride = (size_t)Hkv * ctx * hd;
        const float *kh = kvm->k_cache + (size_t)l * lstride + (size_t)g * ctx * hd;
        const float *vh = kvm->v_cache + (size_t)l * lstride + (size_t)g * ctx * hd;
        const int tid = omp_get_thread_num();
        float *scores = m->att_scratch + (size_t)(tid < m->att_threads ? tid : 0) * per_thread;
        attention_head(m->att + (size_t)r0 * Q + (size_t)g * group * hd, hd, m->q + (size_t)r0 * Q + (size_t)g * group * hd,
                       hd, kh, hd, vh, hd, group, nk, hd, scale, -1, scores);
    }
    // attn_output = self.o_proj(attn_output)
    linear(m->o, m->att, &L->o_proj, NULL, n);
}

// dense MLP: Glm4vMoeTextMLP (gate/up/down) or Glm4vTextMLP (fused gate_up_proj, chunk(2))
static void dense_mlp(Model *m, const TextLayer *L, int n) {
    const int I = m->cfg->text.intermediate_size;
    if (L->gate_up_proj.data) {
        // up_states = self.gate_up_proj(hidden_states); gate, up_states = up_states.chunk(2, dim=-1)
        linear(m->mlp_g, m->xn, &L->gate_up_proj, NULL, n);
        // up_states = up_states * self.activation_fn(gate)
#pragma omp parallel for schedule(static) if (n > 8)
        for (int i = 0; i < n; i++) {
            float *gu = m->mlp_g + (size_t)i * 2 * I;
            swiglu(m->mlp_u + (size_t)i * I, gu, gu + I, I);
        }
    } else {
        // self.act_fn(self.gate_proj(x)) * self.up_proj(x)
        const int H = m->cfg->text.hidden_size;
        const LinearJob gu[2] = {{m->mlp_g, I, m->xn, H, &L->gate_proj, NULL, n}, {m->mlp_u, I, m->xn, H, &L->up_proj, NULL, n}};
        linear_batch(gu, 2);
#pragma omp parallel for schedule(static) if (n > 8)
        for (int i = 0; i < n; i++) swiglu(m->mlp_u + (size_t)i * I, m->mlp_g + (size_t)i * I, m->mlp_u + (size_t)i * I, I);
    }
    // self.down_proj(...)
    linear(m->o, m->mlp_u, &L->down_proj, NULL, n);
}

static void tap_rows(const TapSink *taps, const char *name, const float *x, int n, int d) {
    int64_t shape[2] = {n, d};
    tap(taps, name, DT_F32, 2, shape, x);
}

void model_forward_batch(Model *m, const ModelSeq *seqs, int nseq, const float *embeds, const TapSink *taps) {
    const Config *c = m->cfg;
    const TextConfig *t = &c->text;
    const Weights *w = m->w;
    const int H = t->hidden_size, V = t->vocab_size;
    int n = 0;
    for (int s = 0; s < nseq; s++) n += seqs[s].n;
    const size_t nh = (size_t)n * H;
    const int tapping = taps && taps->fn && nseq == 1;
    char name[128];
    memcpy(m->x, embeds, nh * sizeof(float));
    if (tapping) tap_rows(taps, "hidden_states.0", m->x, n, H);
    // position_embeddings = self.rotary_emb(hidden_states, position_ids)
    for (int s = 0, r0 = 0; s < nseq; r0 += seqs[s].n, s++) mrope_cos_sin(m, seqs[s].pos, seqs[s].pos_stride, r0, seqs[s].n);
    for (int l = 0; l < t->num_hidden_layers; l++) {
        const TextLayer *L = &w->layers[l];
        // hidden_states = self.input_layernorm(hidden_states)
        rmsnorm(m->xn, m->x, norm_weight(m, &L->input_layernorm), n, H, t->rms_norm_eps);
        self_attention(m, L, l, seqs, nseq, n);
        if (tapping) {
            snprintf(name, sizeof name, "model.language_model.layers.%d.self_attn", l);
            tap_rows(taps, name, m->o, n, H);
        }
        // dense model: hidden_states = self.post_self_attn_layernorm(hidden_states)
        if (!c->is_moe) rmsnorm(m->o, m->o, norm_weight(m, &L->post_self_attn_layernorm), n, H, t->rms_norm_eps);
        // hidden_states = residual + hidden_states
        for (size_t i = 0; i < nh; i++) m->x[i] += m->o[i];
        // hidden_states = self.post_attention_layernorm(hidden_states); hidden_states = self.mlp(hidden_states)
        rmsnorm(m->xn, m->x, norm_weight(m, &L->post_attention_layernorm), n, H, t->rms_norm_eps);
        if (L->is_moe_layer) moe_forward(L, c, m->xn, m->o, n, m->moe_scratch, tapping ? taps : NULL, l);
        else dense_mlp(m, L, n);
        if (tapping) {
            snprintf(name, sizeof name, "model.language_model.layers.%d.mlp", l);
            tap_rows(taps, name, m->o, n, H);
        }
        // dense model: hidden_states = self.post_mlp_layernorm(hidden_states)
        if (!c->is_moe) rmsnorm(m->o, m->o, norm_weight(m, &L->post_mlp_layernorm), n, H, t->rms_norm_eps);
        for (size_t i = 0; i < nh; i++) m->x[i] += m->o[i];
        if (tapping && l + 1 < t->num_hidden_layers) {
            snprintf(name, sizeof name, "hidden_states.%d", l + 1);
            tap_rows(taps, name, m->x, n, H);
        }
    }
    // hidden_states = self.norm(hidden_states)
    rmsnorm(m->x, m->x, norm_weight(m, &w->norm), n, H, t->rms_norm_eps);
    if (tapping) {
        snprintf(name, sizeof name, "hidden_states.%d", t->num_hidden_layers);
        tap_rows(taps, name, m->x, n, H);
    }
    // logits = self.lm_head(hidden_states): every row of the sequences that want all, the last row of the others,
    // gathered so the lm_head weights are read once for the whole batch
    int ng = 0;
    for (int s = 0, r0 = 0; s < nseq; r0 += seqs[s].n, s++) {
        const int k = seqs[s].all_logits ? seqs[s].n : 1, from = seqs[s].all_logits ? r0 : r0 + seqs[s].n - 1;
        if (ng != from) memmove(m->x + (size_t)ng * H, m->x + (size_t)from * H, (size_t)k * H * sizeof(float));
        ng += k;
    }
    if (nseq == 1) linear(seqs[0].logits, m->x, &w->lm_head, NULL, ng);
    else {
        linear(m->logits_rows, m->x, &w->lm_head, NULL, ng);
        for (int s = 0, g = 0; s < nseq; s++) {
            const int k = seqs[s].all_logits ? seqs[s].n : 1;
            memcpy(seqs[s].logits, m->logits_rows + (size_t)g * V, (size_t)k * V * sizeof(float));
            g += k;
        }
    }
    for (int s = 0; s < nseq; s++) seqs[s].m->n_past += seqs[s].n;
}

void model_forward(Model *m, const float *embeds, const int64_t *pos, int pos_stride, int n, float *logits,
                   int all_logits, const TapSink *taps) {
    const ModelSeq one = {m, n, pos, pos_stride, logits, all_logits};
    model_forward_batch(m, &one, 1, embeds, taps);
}
