// SPDX-License-Identifier: MIT
// weights.c - binds every tensor of an opened checkpoint to the model's weight views (weights.h), checking names,
// dtypes and shapes against the config before the first token; mirrors the module tree of HF
// Glm4v(Moe)ForConditionalGeneration (model.language_model.*, model.visual.*, lm_head).
#include "weights.h"
#include "quant_config.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------- weight binding

#define BIND1(dst, d0, ...) bind(ck, &(dst), 1, (int64_t[]){d0}, __VA_ARGS__)
#define BIND2(dst, d0, d1, ...) bind(ck, &(dst), 2, (int64_t[]){d0, d1}, __VA_ARGS__)

// bind the tensor named by printf(fmt, ...) with the given shape
static int bind(const Checkpoint *ck, Tensor *dst, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int bind(const Checkpoint *ck, Tensor *dst, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    // quantised checkpoints: a Linear weight may be FP8 / int8 / packed int4 with its scales (quant_config.c)
    if (ck->quant) return quant_tensor(ck, dst, name, ndim, shape);
    return checkpoint_tensor(ck, dst, name, ndim, shape);
}

static int bind_vision(VisionWeights *vw, const Checkpoint *ck, const Config *c) {
    const VisionConfig *v = &c->vision;
    const int64_t Hv = v->hidden_size, P = v->patch_size, T = v->temporal_patch_size, m = v->spatial_merge_size;
    const int64_t O = v->out_hidden_size, I = v->intermediate_size, M = v->mlp_size;
    const char *p = "model.visual.";
    // nn.Conv3d(in_channels, hidden, kernel=(T, P, P)) weight [Hv, C, T, P, P] viewed as [Hv, C*T*P*P]
    if (bind(ck, &vw->patch_w, 5, (int64_t[]){Hv, v->in_channels, T, P, P}, "%spatch_embed.proj.weight", p) ||
        BIND1(vw->patch_b, Hv, "%spatch_embed.proj.bias", p) ||
        BIND1(vw->post_conv_layernorm, Hv, "%spost_conv_layernorm.weight", p))
        return -1;
    // embeddings.position_embedding.weight [side*side, Hv]; side = int(sqrt(rows))
    const STensor *pe = checkpoint_find(ck, "model.visual.embeddings.position_embedding.weight");
    if (!pe || pe->ndim != 2) return glm_err("%s: missing tensor 'model.visual.embeddings.position_embedding.weight'", ck->dir);
    int side = (int)sqrt((double)pe->shape[0]);
    while ((int64_t)(side + 1) * (side + 1) <= pe->shape[0]) side++;
    while ((int64_t)side * side > pe->shape[0]) side--;
    if (side < 1 || (int64_t)side * side != pe->shape[0])
        return glm_err("%s: position_embedding has %lld rows, not a square", ck->dir, (long long)pe->shape[0]);
    ((Config *)c)->vision.pos_side = side;
    if (BIND2(vw->pos_embed, (int64_t)side * side, Hv, "%sembeddings.position_embedding.weight", p)) return -1;
    vw->blocks = xcalloc((size_t)v->depth, sizeof(VisionBlock));
    for (int b = 0; b < v->depth; b++) {
        VisionBlock *B = &vw->blocks[b];
        if (BIND1(B->norm1, Hv, "%sblocks.%d.norm1.weight", p, b) || BIND1(B->norm2, Hv, "%sblocks.%d.norm2.weight", p, b) ||
            BIND2(B->qkv, 3 * Hv, Hv, "%sblocks.%d.attn.qkv.weight", p, b) ||
            (v->attention_bias && BIND1(B->qkv_bias, 3 * Hv, "%sblocks.%d.attn.qkv.bias", p, b)) ||
            BIND2(B->proj, Hv, Hv, "%sblocks.%d.attn.proj.weight", p, b) ||
            BIND2(B->gate_proj, M, Hv, "%sblocks.%d.mlp.gate_proj.weight", p, b) ||
            BIND2(B->up_proj, M, Hv, "%sblocks.%d.mlp.up_proj.weight", p, b) ||
            BIND2(B->down_proj, Hv, M, "%sblocks.%d.mlp.down_proj.weight", p, b))
            return -1;
    }
    // downsample: nn.Conv2d(Hv, out, kernel=m, stride=m) weight [O, Hv, m, m]
    if (BIND1(vw->post_layernorm, Hv, "%spost_layernorm.weight", p) ||
        bind(ck, &vw->downsample_w, 4, (int64_t[]){O, Hv, m, m}, "%sdownsample.weight", p) ||
        BIND1(vw->downsample_b, O, "%sdownsample.bias", p) || BIND2(vw->merger_proj, O, O, "%smerger.proj.weight", p) ||
        BIND1(vw->merger_norm_w, O, "%smerger.post_projection_norm.weight", p) ||
        BIND1(vw->merger_norm_b, O, "%smerger.post_projection_norm.bias", p) ||
        BIND2(vw->merger_gate, I, O, "%smerger.gate_proj.weight", p) ||
        BIND2(vw->merger_up, I, O, "%smerger.up_proj.weight", p) ||
        BIND2(vw->merger_down, O, I, "%smerger.down_proj.weight", p))
        return -1;
    return 0;
}

int weights_bind(Weights *w, const Checkpoint *ck) {
    memset(w, 0, sizeof *w);
    Config *c = (Config *)&ck->cfg;
    const TextConfig *t = &c->text;
    const int64_t H = t->hidden_size, V = t->vocab_size, hd = t->head_dim, I = t->intermediate_size;
    const int64_t Q = (int64_t)t->num_attention_heads * hd, KV = (int64_t)t->num_key_value_heads * hd;
    const char *p = "model.language_model.";
    if (BIND2(w->embed_tokens, V, H, "%sembed_tokens.weight", p) || BIND1(w->norm, H, "%snorm.weight", p) ||
        BIND2(w->lm_head, V, H, "lm_head.weight"))
        return -1;
    w->layers = xcalloc((size_t)t->num_hidden_layers, sizeof(TextLayer));
    w->n_layers = t->num_hidden_layers;
    for (int l = 0; l < t->num_hidden_layers; l++) {
        TextLayer *L = &w->layers[l];
        if (BIND1(L->input_layernorm, H, "%slayers.%d.input_layernorm.weight", p, l) ||
            BIND1(L->post_attention_layernorm, H, "%slayers.%d.post_attention_layernorm.weight", p, l) ||
            BIND2(L->q_proj, Q, H, "%slayers.%d.self_attn.q_proj.weight", p, l) ||
            BIND2(L->k_proj, KV, H, "%slayers.%d.self_attn.k_proj.weight", p, l) ||
            BIND2(L->v_proj, KV, H, "%slayers.%d.self_attn.v_proj.weight", p, l) ||
            BIND2(L->o_proj, H, Q, "%slayers.%d.self_attn.o_proj.weight", p, l))
            return -1;
        if (t->attention_bias && (BIND1(L->q_bias, Q, "%slayers.%d.self_attn.q_proj.bias", p, l) ||
                                  BIND1(L->k_bias, KV, "%slayers.%d.self_attn.k_proj.bias", p, l) ||
                                  BIND1(L->v_bias, KV, "%slayers.%d.self_attn.v_proj.bias", p, l)))
            return -1;
        if (!c->is_moe) { // Glm4vTextDecoderLayer: sandwich norms, fused gate_up_proj
            if (BIND1(L->post_self_attn_layernorm, H, "%slayers.%d.post_self_attn_layernorm.weight", p, l) ||
                BIND1(L->post_mlp_layernorm, H, "%slayers.%d.post_mlp_layernorm.weight", p, l) ||
                BIND2(L->gate_up_proj, 2 * I, H, "%slayers.%d.mlp.gate_up_proj.weight", p, l) ||
                BIND2(L->down_proj, H, I, "%slayers.%d.mlp.down_proj.weight", p, l))
                return -1;
        } else if (l < t->first_k_dense_replace) { // Glm4vMoeTextMLP
            if (BIND2(L->gate_proj, I, H, "%slayers.%d.mlp.gate_proj.weight", p, l) ||
                BIND2(L->up_proj, I, H, "%slayers.%d.mlp.up_proj.weight", p, l) ||
                BIND2(L->down_proj, H, I, "%slayers.%d.mlp.down_proj.weight", p, l))
                return -1;
        } else { // Glm4vMoeTextMoE
            const int64_t E = t->n_routed_experts, Im = t->moe_intermediate_size, Is = Im * t->n_shared_experts;
            L->is_moe_layer = 1;
            if (BIND2(L->router, E, H, "%slayers.%d.mlp.gate.weight", p, l) ||
                BIND1(L->router_bias, E, "%slayers.%d.mlp.gate.e_score_correction_bias", p, l))
                return -1;
            if (Is && (BIND2(L->sh_gate, Is, H, "%slayers.%d.mlp.shared_experts.gate_proj.weight", p, l) ||
                       BIND2(L->sh_up, Is, H, "%slayers.%d.mlp.shared_experts.up_proj.weight", p, l) ||
                       BIND2(L->sh_down, H, Is, "%slayers.%d.mlp.shared_experts.down_proj.weight", p, l)))
                return -1;
            L->exp_gate = xcalloc((size_t)E, sizeof(Tensor));
            L->exp_up = xcalloc((size_t)E, sizeof(Tensor));
            L->exp_down = xcalloc((size_t)E, sizeof(Tensor));
            for (int e = 0; e < E; e++)
                if (BIND2(L->exp_gate[e], Im, H, "%slayers.%d.mlp.experts.%d.gate_proj.weight", p, l, e) ||
                    BIND2(L->exp_up[e], Im, H, "%slayers.%d.mlp.experts.%d.up_proj.weight", p, l, e) ||
                    BIND2(L->exp_down[e], H, Im, "%slayers.%d.mlp.experts.%d.down_proj.weight", p, l, e))
                    return -1;
        }
    }
    c->has_vision = checkpoint_find(ck, "model.visual.patch_embed.proj.weight") != NULL;
    if (c->has_vision && bind_vision(&w->vis, ck, c)) return -1;
    return 0;
}

void weights_free(Weights *w) {
    for (int l = 0; l < w->n_layers; l++)
        free(w->layers[l].exp_gate), free(w->layers[l].exp_up), free(w->layers[l].exp_down);
    free(w->layers);
    free(w->vis.blocks);
    memset(w, 0, sizeof *w);
}
