// SPDX-License-Identifier: MIT
// gguf_map.c - GGUF <-> HF tensor names of GLM-4.xV (see gguf_map.h). Written from llama.cpp's converter
// (convert_hf_to_gguf.py, now split into conversion/*.py): Glm4MoeModel ("Glm4MoeForCausalLM",
// "Glm4vMoeForConditionalGeneration", conversion/glm.py), Glm4Model ("Glm4vForConditionalGeneration",
// conversion/glm.py) and Glm4VVisionModel (mmproj of both, a Qwen3VLVisionModel, conversion/qwen3vl.py), with the
// names of gguf-py's gguf/tensor_mapping.py (TensorNameMap) and gguf/constants.py (TENSOR_NAMES); the converter's
// steps that change a name or a layout:
//   ModelBase.filter_tensors: "language_model." removed, "e_score_correction_bias" -> "e_score_correction.bias"
//   Glm4MoeModel.modify_tensors: model.layers.{bid}.mlp.experts.{xid}.{down,gate,up}_proj.weight stacked with
//     torch.stack(dim=0) into one 3-d tensor per layer; block_count = num_hidden_layers + num_nextn_predict_layers
//     (the NextN layer is written as blk.{n_layers}.*); no Q/K permutation ("GLM4V_MOE uses Neox ordering already")
//   Glm4Model.modify_tensors (GLM-4.1V, M-RoPE): q_proj / k_proj weight and bias rows permuted by normal_to_neox
//     (per head, the rotary part [0, rotary_dim) becomes its even rows then its odd rows); mlp.gate_up_proj stays
//     fused (-> ffn_up)
//   Qwen3VLVisionModel.modify_tensors: "model.visual." -> "visual."; the Conv3d patch embedding [out, 3, 2, p, p]
//     split along the temporal axis into v.patch_embd.weight (t = 0) and v.patch_embd.weight.1 (t = 1)
// tests/test_gguf.c checks every entry against gguf-py's TensorNameMap on the tiny checkpoints' names
// (tests/gguf/make_gguf_cases.py writes tests/data/gguf/name_map.json).
#include "gguf_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L "model.language_model.layers.{bid}."

// arch "glm4moe": MODEL_ARCH.GLM4_MOE
static const GMEntry glm4moe[] = {
    {"token_embd.weight", "model.language_model.embed_tokens.weight", GM_COPY},
    {"output_norm.weight", "model.language_model.norm.weight", GM_COPY},
    {"output.weight", "lm_head.weight", GM_COPY},
    {"blk.{bid}.attn_norm.weight", L "input_layernorm.weight", GM_COPY},
    {"blk.{bid}.post_attention_norm.weight", L "post_attention_layernorm.weight", GM_COPY},
    {"blk.{bid}.attn_q.weight", L "self_attn.q_proj.weight", GM_COPY},
    {"blk.{bid}.attn_q.bias", L "self_attn.q_proj.bias", GM_COPY},
    {"blk.{bid}.attn_k.weight", L "self_attn.k_proj.weight", GM_COPY},
    {"blk.{bid}.attn_k.bias", L "self_attn.k_proj.bias", GM_COPY},
    {"blk.{bid}.attn_v.weight", L "self_attn.v_proj.weight", GM_COPY},
    {"blk.{bid}.attn_v.bias", L "self_attn.v_proj.bias", GM_COPY},
    {"blk.{bid}.attn_output.weight", L "self_attn.o_proj.weight", GM_COPY},
    {"blk.{bid}.attn_q_norm.weight", L "self_attn.q_norm.weight", GM_COPY},
    {"blk.{bid}.attn_k_norm.weight", L "self_attn.k_norm.weight", GM_COPY},
    {"blk.{bid}.ffn_gate.weight", L "mlp.gate_proj.weight", GM_COPY},
    {"blk.{bid}.ffn_up.weight", L "mlp.up_proj.weight", GM_COPY},
    {"blk.{bid}.ffn_down.weight", L "mlp.down_proj.weight", GM_COPY},
    {"blk.{bid}.ffn_gate_inp.weight", L "mlp.gate.weight", GM_COPY},
    {"blk.{bid}.exp_probs_b.bias", L "mlp.gate.e_score_correction_bias", GM_COPY},
    {"blk.{bid}.ffn_gate_exps.weight", L "mlp.experts.{xid}.gate_proj.weight", GM_STACK_EXPERTS},
    {"blk.{bid}.ffn_up_exps.weight", L "mlp.experts.{xid}.up_proj.weight", GM_STACK_EXPERTS},
    {"blk.{bid}.ffn_down_exps.weight", L "mlp.experts.{xid}.down_proj.weight", GM_STACK_EXPERTS},
    {"blk.{bid}.ffn_gate_shexp.weight", L "mlp.shared_experts.gate_proj.weight", GM_COPY},
    {"blk.{bid}.ffn_up_shexp.weight", L "mlp.shared_experts.up_proj.weight", GM_COPY},
    {"blk.{bid}.ffn_down_shexp.weight", L "mlp.shared_experts.down_proj.weight", GM_COPY},
    // the NextN (multi-token prediction) layer, blk.{num_hidden_layers}: its attention and MoE tensors use the names
    // above; these are its own
    {"blk.{bid}.nextn.eh_proj.weight", L "eh_proj.weight", GM_UNUSED},
    {"blk.{bid}.nextn.embed_tokens.weight", L "embed_tokens.weight", GM_UNUSED},
    {"blk.{bid}.nextn.enorm.weight", L "enorm.weight", GM_UNUSED},
    {"blk.{bid}.nextn.hnorm.weight", L "hnorm.weight", GM_UNUSED},
    {"blk.{bid}.nextn.shared_head_head.weight", L "shared_head.head.weight", GM_UNUSED},
    {"blk.{bid}.nextn.shared_head_norm.weight", L "shared_head.norm.weight", GM_UNUSED},
};

// arch "glm4": MODEL_ARCH.GLM4 (GLM-4.1V-9B-Thinking, GLM-4.6V-Flash)
static const GMEntry glm4[] = {
    {"token_embd.weight", "model.language_model.embed_tokens.weight", GM_COPY},
    {"output_norm.weight", "model.language_model.norm.weight", GM_COPY},
    {"output.weight", "lm_head.weight", GM_COPY},
    {"blk.{bid}.attn_norm.weight", L "input_layernorm.weight", GM_COPY},
    {"blk.{bid}.post_attention_norm.weight", L "post_self_attn_layernorm.weight", GM_COPY},
    {"blk.{bid}.ffn_norm.weight", L "post_attention_layernorm.weight", GM_COPY},
    {"blk.{bid}.post_ffw_norm.weight", L "post_mlp_layernorm.weight", GM_COPY},
    {"blk.{bid}.attn_q.weight", L "self_attn.q_proj.weight", GM_NEOX_QK},
    {"blk.{bid}.attn_q.bias", L "self_attn.q_proj.bias", GM_NEOX_QK},
    {"blk.{bid}.attn_k.weight", L "self_attn.k_proj.weight", GM_NEOX_QK},
    {"blk.{bid}.attn_k.bias", L "self_attn.k_proj.bias", GM_NEOX_QK},
    {"blk.{bid}.attn_v.weight", L "self_attn.v_proj.weight", GM_COPY},
    {"blk.{bid}.attn_v.bias", L "self_attn.v_proj.bias", GM_COPY},
    {"blk.{bid}.attn_output.weight", L "self_attn.o_proj.weight", GM_COPY},
    {"blk.{bid}.ffn_up.weight", L "mlp.gate_up_proj.weight", GM_COPY}, // fused [gate; up]
    {"blk.{bid}.ffn_down.weight", L "mlp.down_proj.weight", GM_COPY},
};
#undef L

#define V "model.visual."
#define VB "model.visual.blocks.{bid}."
// clip.projector_type "glm4v": MODEL_ARCH.MMPROJ names of TensorNameMap
static const GMEntry glm4v_mmproj[] = {
    {"v.patch_embd.weight", V "patch_embed.proj.weight", GM_CONV3D_T0},
    {"v.patch_embd.weight.1", V "patch_embed.proj.weight", GM_CONV3D_T1},
    {"v.patch_embd.bias", V "patch_embed.proj.bias", GM_COPY},
    {"v.norm_embd.weight", V "post_conv_layernorm.weight", GM_COPY},
    {"v.position_embd.weight", V "embeddings.position_embedding.weight", GM_COPY},
    {"v.blk.{bid}.ln1.weight", VB "norm1.weight", GM_COPY},
    {"v.blk.{bid}.ln2.weight", VB "norm2.weight", GM_COPY},
    {"v.blk.{bid}.attn_qkv.weight", VB "attn.qkv.weight", GM_COPY},
    {"v.blk.{bid}.attn_qkv.bias", VB "attn.qkv.bias", GM_COPY},
    {"v.blk.{bid}.attn_out.weight", VB "attn.proj.weight", GM_COPY},
    {"v.blk.{bid}.attn_out.bias", VB "attn.proj.bias", GM_COPY},
    {"v.blk.{bid}.ffn_gate.weight", VB "mlp.gate_proj.weight", GM_COPY},
    {"v.blk.{bid}.ffn_up.weight", VB "mlp.up_proj.weight", GM_COPY},
    {"v.blk.{bid}.ffn_down.weight", VB "mlp.down_proj.weight", GM_COPY},
    {"v.post_ln.weight", V "post_layernorm.weight", GM_COPY},
    {"mm.patch_merger.weight", V "downsample.weight", GM_COPY},
    {"mm.patch_merger.bias", V "downsample.bias", GM_COPY},
    {"mm.model.fc.weight", V "merger.proj.weight", GM_COPY},
    {"mm.post_norm.weight", V "merger.post_projection_norm.weight", GM_COPY},
    {"mm.post_norm.bias", V "merger.post_projection_norm.bias", GM_COPY},
    {"mm.gate.weight", V "merger.gate_proj.weight", GM_COPY},
    {"mm.up.weight", V "merger.up_proj.weight", GM_COPY},
    {"mm.down.weight", V "merger.down_proj.weight", GM_COPY},
};
#undef V
#undef VB

const GMEntry *gguf_map_table(int which, int *n) {
    switch (which) {
    case GM_GLM4MOE: *n = (int)(sizeof glm4moe / sizeof *glm4moe); return glm4moe;
    case GM_GLM4: *n = (int)(sizeof glm4 / sizeof *glm4); return glm4;
    case GM_GLM4V_MMPROJ: *n = (int)(sizeof glm4v_mmproj / sizeof *glm4v_mmproj); return glm4v_mmproj;
    default: *n = 0; return NULL;
    }
}

int gguf_map_which(const char *arch) {
    if (!arch) return -1;
    if (strcmp(arch, "glm4moe") == 0) return GM_GLM4MOE;
    if (strcmp(arch, "glm4") == 0) return GM_GLM4;
    if (strcmp(arch, "clip") == 0) return GM_GLM4V_MMPROJ;
    return -1;
}

// does name match pattern (each "{bid}" / "{xid}" one decimal number, at most 9 digits)? *bid / *xid = the numbers
static int match(const char *pat, const char *name, int *bid, int *xid) {
    *bid = *xid = -1;
    while (*pat) {
        int is_bid = strncmp(pat, "{bid}", 5) == 0, is_xid = strncmp(pat, "{xid}", 5) == 0;
        if (is_bid || is_xid) {
            int v = 0, nd = 0;
            while (name[nd] >= '0' && name[nd] <= '9' && nd < 9) v = v * 10 + (name[nd++] - '0');
            if (!nd || (nd > 1 && name[0] == '0') || (name[nd] >= '0' && name[nd] <= '9')) return 0;
            *(is_bid ? bid : xid) = v;
            name += nd;
            pat += 5;
        } else if (*pat++ != *name++)
            return 0;
    }
    return *name == 0;
}

// pattern with "{bid}" replaced by bid (and "{xid}" by xid when >= 0) into out[cap]; 0 or -1 (too small)
static int format(const char *pat, int bid, int xid, char *out, size_t cap) {
    size_t o = 0;
    while (*pat) {
        char num[16];
        const char *s = NULL;
        if (strncmp(pat, "{bid}", 5) == 0 && bid >= 0) { snprintf(num, sizeof num, "%d", bid); s = num; }
        else if (strncmp(pat, "{xid}", 5) == 0 && xid >= 0) { snprintf(num, sizeof num, "%d", xid); s = num; }
        if (s) {
            size_t n = strlen(s);
            if (o + n >= cap) return -1;
            memcpy(out + o, s, n);
            o += n;
            pat += 5;
        } else {
            if (o + 1 >= cap) return -1;
            out[o++] = *pat++;
        }
    }
    if (o >= cap) return -1;
    out[o] = 0;
    return 0;
}

int gguf_map_to_hf(int which, const char *gguf, char *hf, size_t cap, int *transform, int *bid) {
    int n, xid;
    const GMEntry *t = gguf_map_table(which, &n);
    for (int i = 0; i < n; i++)
        if (match(t[i].gguf, gguf, bid, &xid)) {
            *transform = t[i].transform;
            return format(t[i].hf, *bid, -1, hf, cap);
        }
    return -1;
}

int gguf_map_from_hf(int which, const char *hf, char *gguf, size_t cap, int *transform, int *bid, int *xid) {
    int n;
    const GMEntry *t = gguf_map_table(which, &n);
    for (int i = 0; i < n; i++)
        if (t[i].transform != GM_CONV3D_T1 && match(t[i].hf, hf, bid, xid)) {
            *transform = t[i].transform;
            return format(t[i].gguf, *bid, -1, gguf, cap);
        }
    return -1;
}

long gguf_map_neox_row(long r, int head_dim, int rotary_dim) {
    if (r < 0 || head_dim <= 0 || rotary_dim < 0 || rotary_dim > head_dim || rotary_dim % 2) return -1;
    // normal_to_neox: per head, permuted_rot = cat(rot[::2], rot[1::2]); rows >= rotary_dim stay
    long h = r / head_dim, i = r % head_dim;
    if (i < rotary_dim) i = i % 2 == 0 ? i / 2 : rotary_dim / 2 + i / 2;
    return h * head_dim + i;
}
