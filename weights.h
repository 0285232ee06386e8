// SPDX-License-Identifier: MIT
// weights.h - the model's weights as HF names them (weights.c binds every tensor of a checkpoint to these views and
// checks its dtype and shape against the config): Glm4v(Moe)TextModel layers, the vision tower, embeddings, lm_head.
#ifndef GLM4V_WEIGHTS_H
#define GLM4V_WEIGHTS_H

#include "checkpoint.h"

typedef struct {
    Tensor input_layernorm;          // [H]
    Tensor post_self_attn_layernorm; // [H] (dense model only)
    Tensor post_attention_layernorm; // [H]
    Tensor post_mlp_layernorm;       // [H] (dense model only)
    Tensor q_proj, q_bias;           // [Hq*hd, H], [Hq*hd]
    Tensor k_proj, k_bias;           // [Hkv*hd, H], [Hkv*hd]
    Tensor v_proj, v_bias;           // [Hkv*hd, H], [Hkv*hd]
    Tensor o_proj;                   // [H, Hq*hd]
    // dense MLP (MoE model: layers < first_k_dense_replace; dense model: gate_up fused)
    Tensor gate_proj, up_proj;       // [I, H]
    Tensor gate_up_proj;             // [2I, H] (dense model)
    Tensor down_proj;                // [H, I]
    int is_moe_layer;                // 1 for a Glm4vMoeTextMoE layer, 0 for a dense MLP
    // MoE (moe.c)
    Tensor router;                   // mlp.gate.weight [E, H]
    Tensor router_bias;              // mlp.gate.e_score_correction_bias [E]
    Tensor *exp_gate, *exp_up;       // [E] of [Im, H]
    Tensor *exp_down;                // [E] of [H, Im]
    Tensor sh_gate, sh_up;           // shared experts [Im*ns, H]
    Tensor sh_down;                  // [H, Im*ns]
} TextLayer;

typedef struct {
    Tensor norm1, norm2;             // [Hv]
    Tensor qkv, qkv_bias;            // [3Hv, Hv], [3Hv] (bias optional)
    Tensor proj;                     // [Hv, Hv]
    Tensor gate_proj, up_proj;       // [Iv, Hv]
    Tensor down_proj;                // [Hv, Iv]
} VisionBlock;

typedef struct {
    Tensor patch_w;                  // patch_embed.proj.weight viewed [Hv, C*T*P*P]
    Tensor patch_b;                  // [Hv]
    Tensor post_conv_layernorm;      // [Hv]
    Tensor pos_embed;                // embeddings.position_embedding.weight [side*side, Hv]
    VisionBlock *blocks;             // [depth]
    Tensor post_layernorm;           // [Hv]
    Tensor downsample_w;             // [out, Hv*m*m] (viewed from [out, Hv, m, m])
    Tensor downsample_b;             // [out]
    Tensor merger_proj;              // [out, out]
    Tensor merger_norm_w, merger_norm_b; // [out]
    Tensor merger_gate, merger_up;   // [I, out]
    Tensor merger_down;              // [out, I]
} VisionWeights;

typedef struct {
    Tensor embed_tokens;             // [V, H]
    TextLayer *layers;               // [num_hidden_layers]
    int n_layers;                    // allocated entries of layers
    Tensor norm;                     // [H]
    Tensor lm_head;                  // [V, H]
    VisionWeights vis;               // the vision tower
} Weights;

// bind and check every tensor against the config (names reported on error)
int weights_bind(Weights *w, const Checkpoint *ck);
void weights_free(Weights *w);

#endif
