// SPDX-License-Identifier: MIT
// tools/synth_ckpt.c - write a deterministic synthetic GLM-4.5V (MoE) or GLM-4.1V (dense) checkpoint folder.
//
// The folder looks like what transformers 5.x `save_pretrained` writes: config.json (rope_parameters layout),
// model.safetensors (or --shards N files + model.safetensors.index.json), processor_config.json,
// generation_config.json, tokenizer.json (copied) and tokenizer_config.json. Weights are bf16 (the MoE router bias
// F32, as in the released GLM-4.5V), one value per element from splitmix64 over (seed, tensor name, element
// index): bit-identical on every machine, independent of the shard count and of the other tensors, so a tensor
// keeps its values when --layers changes. Tensors are generated in chunks and streamed to disk.
//
// Values: uniform in [-1, 1) (24-bit) scaled per tensor kind, so that activations stay O(1):
//   Linear / Conv weights   +-sqrt(3/fan_in)      (std 1/sqrt(fan_in))
//   RMSNorm / LayerNorm w   1 +- 0.2
//   biases                  +-0.1 (router e_score_correction_bias: F32, +-0.1)
//   embed_tokens            +-sqrt(3) (std 1);  position_embedding +-0.5
//
// Build: make tools/synth_ckpt  (standalone C11 + cJSON)
// Use:   tools/synth_ckpt --preset realdims --seed 1 --out build/realdims      (see --help)
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SHARDS 999

// ----------------------------------------------------------------------------------------------------------------
// model dimensions (one struct for both architectures; names follow config.json)

typedef struct {
    int moe;                   // 1: Glm4vMoeForConditionalGeneration, 0: Glm4vForConditionalGeneration
    // text_config
    int vocab_size;            // V
    int hidden_size;           // H
    int intermediate_size;     // dense MLP width
    int num_hidden_layers;     //
    int num_attention_heads;   // Hq
    int num_key_value_heads;   // Hkv
    int head_dim;              // MoE: written to config.json; dense: H / Hq
    double partial_rotary_factor;
    int mrope_section[8];      // frequency chunks
    int n_mrope;               //
    double rope_theta;         //
    int max_position_embeddings;
    int moe_intermediate_size; // Im, one routed expert
    int n_routed_experts;      // E
    int num_experts_per_tok;   // top-k
    int n_shared_experts;      //
    int n_group, topk_group;   //
    int first_k_dense_replace; //
    double routed_scaling_factor;
    int norm_topk_prob;        //
    // vision_config
    int v_depth;               //
    int v_hidden;              // Hv
    int v_heads;               //
    int v_out;                 // out_hidden_size (= H; also the ViT MLP width)
    int v_merger;              // intermediate_size (merger SwiGLU width)
    int v_image_size;          // position table side = image_size / patch_size
    int v_patch, v_merge, v_temporal;
    int v_attention_bias;      // qkv bias
} Dims;

// GLM-4.5V text + vision dimensions with 2 text layers (layer 0 dense, layer 1 MoE) and the tiny vocabulary
static const Dims PRESET_REALDIMS = {
    .moe = 1, .vocab_size = 1088, .hidden_size = 4096, .intermediate_size = 10944, .num_hidden_layers = 2,
    .num_attention_heads = 96, .num_key_value_heads = 8, .head_dim = 128, .partial_rotary_factor = 0.5,
    .mrope_section = {8, 12, 12}, .n_mrope = 3, .rope_theta = 10000.0, .max_position_embeddings = 65536,
    .moe_intermediate_size = 1408, .n_routed_experts = 128, .num_experts_per_tok = 8, .n_shared_experts = 1,
    .n_group = 1, .topk_group = 1, .first_k_dense_replace = 1, .routed_scaling_factor = 1.0, .norm_topk_prob = 1,
    .v_depth = 24, .v_hidden = 1536, .v_heads = 12, .v_out = 4096, .v_merger = 10944, .v_image_size = 336,
    .v_patch = 14, .v_merge = 2, .v_temporal = 2, .v_attention_bias = 0,
};

// GLM-4.1V-9B dimensions (dense, sandwich norms, fused gate_up_proj) with 2 text layers
static const Dims PRESET_REALDIMS_DENSE = {
    .moe = 0, .vocab_size = 1088, .hidden_size = 4096, .intermediate_size = 13696, .num_hidden_layers = 2,
    .num_attention_heads = 32, .num_key_value_heads = 2, .head_dim = 128, .partial_rotary_factor = 0.5,
    .mrope_section = {8, 12, 12}, .n_mrope = 3, .rope_theta = 10000.0, .max_position_embeddings = 65536,
    .v_depth = 24, .v_hidden = 1536, .v_heads = 12, .v_out = 4096, .v_merger = 13696, .v_image_size = 336,
    .v_patch = 14, .v_merge = 2, .v_temporal = 2, .v_attention_bias = 0,
};

// the dimensions of weights/tiny-glm4v-moe (fast self-checks of this tool)
static const Dims PRESET_TINY = {
    .moe = 1, .vocab_size = 1088, .hidden_size = 128, .intermediate_size = 256, .num_hidden_layers = 3,
    .num_attention_heads = 4, .num_key_value_heads = 2, .head_dim = 32, .partial_rotary_factor = 0.5,
    .mrope_section = {2, 3, 3}, .n_mrope = 3, .rope_theta = 10000.0, .max_position_embeddings = 4096,
    .moe_intermediate_size = 32, .n_routed_experts = 8, .num_experts_per_tok = 2, .n_shared_experts = 1,
    .n_group = 2, .topk_group = 1, .first_k_dense_replace = 1, .routed_scaling_factor = 1.5, .norm_topk_prob = 1,
    .v_depth = 2, .v_hidden = 64, .v_heads = 4, .v_out = 128, .v_merger = 96, .v_image_size = 336,
    .v_patch = 14, .v_merge = 2, .v_temporal = 2, .v_attention_bias = 0,
};

// the dimensions of weights/tiny-glm4v-dense
static const Dims PRESET_TINY_DENSE = {
    .moe = 0, .vocab_size = 1088, .hidden_size = 128, .intermediate_size = 256, .num_hidden_layers = 2,
    .num_attention_heads = 4, .num_key_value_heads = 2, .head_dim = 32, .partial_rotary_factor = 0.5,
    .mrope_section = {2, 3, 3}, .n_mrope = 3, .rope_theta = 10000.0, .max_position_embeddings = 4096,
    .v_depth = 2, .v_hidden = 64, .v_heads = 4, .v_out = 128, .v_merger = 96, .v_image_size = 336,
    .v_patch = 14, .v_merge = 2, .v_temporal = 2, .v_attention_bias = 0,
};

// ----------------------------------------------------------------------------------------------------------------
// the deterministic generator

// splitmix64 finaliser (Steele, Lea, Flood 2014)
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// output number i (0-based) of the splitmix64 generator started at state s
static inline uint64_t splitmix64_at(uint64_t s, uint64_t i) {
    return mix64(s + (i + 1) * 0x9E3779B97F4A7C15ULL);
}

// uniform in [-1, 1) with 24 bits: an exact float
static inline float uniform_pm1(uint64_t x) {
    int32_t k = (int32_t)(x >> 40) - (1 << 23); // [-2^23, 2^23)
    return (float)k * 0x1p-23f;
}

// FNV-1a 64 of a tensor name
static uint64_t fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

// float -> bf16 bits, round to nearest even (values here are finite)
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// ----------------------------------------------------------------------------------------------------------------
// tensor table

typedef struct {
    char name[192];     // HF tensor name
    int ndim;           //
    int64_t shape[5];   //
    int f32;            // 1: F32 element type, else BF16
    float center, amp;  // value = center + amp * uniform[-1, 1)
    uint64_t seed;      // stream state for this tensor
    uint64_t numel;     //
    uint64_t nbytes;    //
    int shard;          // file index
    uint64_t offset;    // byte offset inside the shard's data section
} Spec;

typedef struct {
    Spec *t;            // [n]
    int n, cap;         //
    uint64_t seed;      // user seed
} Table;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "synth_ckpt: out of memory\n");
        exit(1);
    }
    return q;
}

// append a tensor: dims terminated by 0; value = center + amp * uniform[-1, 1); f32 selects F32 storage
static void add(Table *tb, const char *name, float center, float amp, int f32, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3, int64_t d4) {
    if (tb->n == tb->cap) {
        tb->cap = tb->cap ? 2 * tb->cap : 1024;
        tb->t = xrealloc(tb->t, (size_t)tb->cap * sizeof(Spec));
    }
    Spec *s = &tb->t[tb->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    int64_t d[5] = {d0, d1, d2, d3, d4};
    s->numel = 1;
    for (int i = 0; i < 5 && d[i] > 0; i++) {
        s->shape[s->ndim++] = d[i];
        s->numel *= (uint64_t)d[i];
    }
    s->f32 = f32;
    s->center = center;
    s->amp = amp;
    s->seed = mix64(fnv1a64(name) ^ mix64(tb->seed));
    s->nbytes = s->numel * (f32 ? 4u : 2u);
}

// nn.Linear / Conv weight [out, fan_in...]: uniform with std 1/sqrt(fan_in)
static void add_linear(Table *tb, const char *name, int64_t out, int64_t in) {
    add(tb, name, 0.0f, (float)sqrt(3.0 / (double)in), 0, out, in, 0, 0, 0);
}
static void add_norm(Table *tb, const char *name, int64_t n) { add(tb, name, 1.0f, 0.2f, 0, n, 0, 0, 0, 0); }
static void add_bias(Table *tb, const char *name, int64_t n) { add(tb, name, 0.0f, 0.1f, 0, n, 0, 0, 0, 0); }

// every tensor of the checkpoint, HF names (released per-expert layout)
static void build_table(Table *tb, const Dims *d) {
    char nm[192];
    const int64_t H = d->hidden_size, V = d->vocab_size;
    const int64_t hd = d->moe ? d->head_dim : H / d->num_attention_heads;
    const int64_t q_out = d->num_attention_heads * hd, kv_out = d->num_key_value_heads * hd;

    // text
    add(tb, "model.language_model.embed_tokens.weight", 0.0f, 1.7320508f, 0, V, H, 0, 0, 0);
    for (int L = 0; L < d->num_hidden_layers; L++) {
#define P(fmt, ...) (snprintf(nm, sizeof nm, "model.language_model.layers.%d." fmt, L, ##__VA_ARGS__), nm)
        add_norm(tb, P("input_layernorm.weight"), H);
        add_norm(tb, P("post_attention_layernorm.weight"), H);
        if (!d->moe) {
            add_norm(tb, P("post_self_attn_layernorm.weight"), H);
            add_norm(tb, P("post_mlp_layernorm.weight"), H);
        }
        add_linear(tb, P("self_attn.q_proj.weight"), q_out, H);
        add_bias(tb, P("self_attn.q_proj.bias"), q_out);
        add_linear(tb, P("self_attn.k_proj.weight"), kv_out, H);
        add_bias(tb, P("self_attn.k_proj.bias"), kv_out);
        add_linear(tb, P("self_attn.v_proj.weight"), kv_out, H);
        add_bias(tb, P("self_attn.v_proj.bias"), kv_out);
        add_linear(tb, P("self_attn.o_proj.weight"), H, q_out);
        if (!d->moe) {
            add_linear(tb, P("mlp.gate_up_proj.weight"), 2 * (int64_t)d->intermediate_size, H);
            add_linear(tb, P("mlp.down_proj.weight"), H, d->intermediate_size);
        } else if (L < d->first_k_dense_replace) {
            add_linear(tb, P("mlp.gate_proj.weight"), d->intermediate_size, H);
            add_linear(tb, P("mlp.up_proj.weight"), d->intermediate_size, H);
            add_linear(tb, P("mlp.down_proj.weight"), H, d->intermediate_size);
        } else {
            const int64_t Im = d->moe_intermediate_size, Is = Im * d->n_shared_experts;
            add_linear(tb, P("mlp.gate.weight"), d->n_routed_experts, H);
            add(tb, P("mlp.gate.e_score_correction_bias"), 0.0f, 0.1f, 1, d->n_routed_experts, 0, 0, 0, 0);
            for (int e = 0; e < d->n_routed_experts; e++) {
                add_linear(tb, P("mlp.experts.%d.gate_proj.weight", e), Im, H);
                add_linear(tb, P("mlp.experts.%d.up_proj.weight", e), Im, H);
                add_linear(tb, P("mlp.experts.%d.down_proj.weight", e), H, Im);
            }
            add_linear(tb, P("mlp.shared_experts.gate_proj.weight"), Is, H);
            add_linear(tb, P("mlp.shared_experts.up_proj.weight"), Is, H);
            add_linear(tb, P("mlp.shared_experts.down_proj.weight"), H, Is);
        }
#undef P
    }
    add_norm(tb, "model.language_model.norm.weight", H);
    add_linear(tb, "lm_head.weight", V, H);

    // vision
    const int64_t Hv = d->v_hidden, ps = d->v_patch, side = d->v_image_size / d->v_patch, m = d->v_merge;
    const int64_t fan_patch = 3 * (int64_t)d->v_temporal * ps * ps;
    add(tb, "model.visual.patch_embed.proj.weight", 0.0f, (float)sqrt(3.0 / (double)fan_patch), 0, Hv, 3,
        d->v_temporal, ps, ps);
    add_bias(tb, "model.visual.patch_embed.proj.bias", Hv);
    add_norm(tb, "model.visual.post_conv_layernorm.weight", Hv);
    add(tb, "model.visual.embeddings.position_embedding.weight", 0.0f, 0.5f, 0, side * side, Hv, 0, 0, 0);
    for (int b = 0; b < d->v_depth; b++) {
#define P(fmt) (snprintf(nm, sizeof nm, "model.visual.blocks.%d." fmt, b), nm)
        add_norm(tb, P("norm1.weight"), Hv);
        add_norm(tb, P("norm2.weight"), Hv);
        add_linear(tb, P("attn.qkv.weight"), 3 * Hv, Hv);
        if (d->v_attention_bias) add_bias(tb, P("attn.qkv.bias"), 3 * Hv);
        add_linear(tb, P("attn.proj.weight"), Hv, Hv);
        add_linear(tb, P("mlp.gate_proj.weight"), d->v_out, Hv);
        add_linear(tb, P("mlp.up_proj.weight"), d->v_out, Hv);
        add_linear(tb, P("mlp.down_proj.weight"), Hv, d->v_out);
#undef P
    }
    add_norm(tb, "model.visual.post_layernorm.weight", Hv);
    add(tb, "model.visual.downsample.weight", 0.0f, (float)sqrt(3.0 / (double)(Hv * m * m)), 0, d->v_out, Hv, m, m,
        0);
    add_bias(tb, "model.visual.downsample.bias", d->v_out);
    add_linear(tb, "model.visual.merger.proj.weight", d->v_out, d->v_out);
    add_norm(tb, "model.visual.merger.post_projection_norm.weight", d->v_out);
    add_bias(tb, "model.visual.merger.post_projection_norm.bias", d->v_out);
    add_linear(tb, "model.visual.merger.gate_proj.weight", d->v_merger, d->v_out);
    add_linear(tb, "model.visual.merger.up_proj.weight", d->v_merger, d->v_out);
    add_linear(tb, "model.visual.merger.down_proj.weight", d->v_out, d->v_merger);
}

static int cmp_spec(const void *a, const void *b) {
    return strcmp(((const Spec *)a)->name, ((const Spec *)b)->name);
}

// ----------------------------------------------------------------------------------------------------------------
// output

// fill elements [i0, i0 + n) of tensor s into buf (bf16 or f32), in parallel; element i depends only on (s, i)
static void generate_chunk(const Spec *s, uint64_t i0, uint64_t n, void *buf) {
    const float c = s->center, a = s->amp;
    if (s->f32) {
        float *o = buf;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < (int64_t)n; j++) {
            float t = a * uniform_pm1(splitmix64_at(s->seed, i0 + (uint64_t)j));
            o[j] = c + t;
        }
    } else {
        uint16_t *o = buf;
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < (int64_t)n; j++) {
            float t = a * uniform_pm1(splitmix64_at(s->seed, i0 + (uint64_t)j));
            o[j] = f32_to_bf16(c + t);
        }
    }
}

// grow-only text buffer
typedef struct {
    char *p;
    size_t n, cap;
} Buf;

static void bprintf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(Buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) exit(1);
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
}

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "synth_ckpt: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "synth_ckpt: cannot write %s\n", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

static void shard_name(char *out, size_t cap, int k, int nshards) {
    if (nshards == 1)
        snprintf(out, cap, "model.safetensors");
    else
        snprintf(out, cap, "model-%05d-of-%05d.safetensors", k + 1, nshards);
}

// write one shard: header (tensors sorted by name, data in the same order) then streamed data
static int write_shard(const char *dir, const Table *tb, int k, int nshards, void *chunk, uint64_t chunk_elems,
                       uint64_t *done, uint64_t total) {
    Buf h = {0};
    bprintf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (int i = 0; i < tb->n; i++) {
        Spec *s = &tb->t[i];
        if (s->shard != k) continue;
        s->offset = off;
        bprintf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", s->name, s->f32 ? "F32" : "BF16");
        for (int j = 0; j < s->ndim; j++) bprintf(&h, "%s%lld", j ? "," : "", (long long)s->shape[j]);
        bprintf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + s->nbytes));
        off += s->nbytes;
    }
    bprintf(&h, "}");
    while (h.n % 8) bprintf(&h, " "); // data section 8-byte aligned

    char fname[64], path[4096], tmp[4200];
    shard_name(fname, sizeof fname, k, nshards);
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "synth_ckpt: cannot write %s: %s\n", tmp, strerror(errno));
        free(h.p);
        return -1;
    }
    uint8_t len8[8];
    for (int j = 0; j < 8; j++) len8[j] = (uint8_t)((uint64_t)h.n >> (8 * j)); // little-endian u64
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.p, 1, h.n, f) == h.n;
    free(h.p);
    for (int i = 0; ok && i < tb->n; i++) {
        const Spec *s = &tb->t[i];
        if (s->shard != k) continue;
        for (uint64_t i0 = 0; ok && i0 < s->numel; i0 += chunk_elems) {
            uint64_t n = s->numel - i0 < chunk_elems ? s->numel - i0 : chunk_elems;
            generate_chunk(s, i0, n, chunk);
            size_t nb = (size_t)n * (s->f32 ? 4u : 2u);
            ok = fwrite(chunk, 1, nb, f) == nb;
            uint64_t before = *done >> 30;
            *done += nb;
            if ((*done >> 30) != before)
                fprintf(stderr, "\rsynth_ckpt: %.1f / %.1f GB", (double)*done / 1e9, (double)total / 1e9);
        }
    }
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "synth_ckpt: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

// special token ids read from tokenizer.json's added_tokens
typedef struct {
    int image, video, boi, eoi, bov, eov; // <|image|> <|video|> <|begin_of_image|> ...
    int max_id;                           // largest id in the tokenizer
} TokIds;

static int token_ids(const char *json, TokIds *t, const char *path) {
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        fprintf(stderr, "synth_ckpt: %s: not valid JSON\n", path);
        return -1;
    }
    *t = (TokIds){-1, -1, -1, -1, -1, -1, -1};
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    const cJSON *it;
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(c)) continue;
        int v = id->valueint;
        if (v > t->max_id) t->max_id = v;
        const char *s = c->valuestring;
        if (!strcmp(s, "<|image|>")) t->image = v;
        if (!strcmp(s, "<|video|>")) t->video = v;
        if (!strcmp(s, "<|begin_of_image|>")) t->boi = v;
        if (!strcmp(s, "<|end_of_image|>")) t->eoi = v;
        if (!strcmp(s, "<|begin_of_video|>")) t->bov = v;
        if (!strcmp(s, "<|end_of_video|>")) t->eov = v;
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"), "vocab");
    cJSON_ArrayForEach(it, vocab) if (cJSON_IsNumber(it) && it->valueint > t->max_id) t->max_id = it->valueint;
    cJSON_Delete(root);
    if (t->image < 0 || t->video < 0 || t->boi < 0 || t->eoi < 0 || t->bov < 0 || t->eov < 0) {
        fprintf(stderr, "synth_ckpt: %s: missing one of the GLM image/video special tokens\n", path);
        return -1;
    }
    return 0;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    Buf b = {0};
    char tmp[65536];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (b.n + k + 1 > b.cap) {
            b.cap = (b.n + k + 1) * 2;
            b.p = xrealloc(b.p, b.cap);
        }
        memcpy(b.p + b.n, tmp, k);
        b.n += k;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b.p);
        return NULL;
    }
    if (!b.p) b.p = xrealloc(NULL, 1);
    b.p[b.n] = 0;
    *len = b.n;
    return b.p;
}

// a double as JSON the way Python's json writes floats: shortest round-trip digits, always with '.' or exponent
// (transformers' strict configs reject 1 where a float is declared)
static const char *jfloat(char *buf, size_t cap, double v) {
    if (v == floor(v) && fabs(v) < 1e16) {
        snprintf(buf, cap, "%.1f", v);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".en")) strncat(buf, ".0", cap - strlen(buf) - 1);
    return buf;
}

// config.json as transformers 5.x writes it (rope_parameters, dtype)
static char *config_json(const Dims *d, const TokIds *t) {
    Buf b = {0};
    char f1[32], f2[32];
    const char *tt = d->moe ? "glm4v_moe" : "glm4v";
    bprintf(&b, "{\n  \"architectures\": [\n    \"%s\"\n  ],\n  \"dtype\": \"bfloat16\",\n",
            d->moe ? "Glm4vMoeForConditionalGeneration" : "Glm4vForConditionalGeneration");
    bprintf(&b, "  \"image_end_token_id\": %d,\n  \"image_start_token_id\": %d,\n  \"image_token_id\": %d,\n", t->eoi,
            t->boi, t->image);
    bprintf(&b, "  \"model_type\": \"%s\",\n  \"text_config\": {\n", tt);
    bprintf(&b, "    \"attention_bias\": true,\n    \"attention_dropout\": 0.0,\n");
    if (d->moe) {
        bprintf(&b, "    \"bos_token_id\": null,\n    \"eos_token_id\": null,\n");
        bprintf(&b, "    \"first_k_dense_replace\": %d,\n    \"head_dim\": %d,\n", d->first_k_dense_replace, d->head_dim);
    }
    bprintf(&b, "    \"hidden_act\": \"silu\",\n    \"hidden_size\": %d,\n    \"initializer_range\": 0.02,\n",
            d->hidden_size);
    bprintf(&b, "    \"intermediate_size\": %d,\n    \"max_position_embeddings\": %d,\n", d->intermediate_size,
            d->max_position_embeddings);
    bprintf(&b, "    \"model_type\": \"%s_text\",\n", tt);
    if (d->moe) {
        bprintf(&b, "    \"moe_intermediate_size\": %d,\n    \"n_group\": %d,\n    \"n_routed_experts\": %d,\n",
                d->moe_intermediate_size, d->n_group, d->n_routed_experts);
        bprintf(&b, "    \"n_shared_experts\": %d,\n    \"norm_topk_prob\": %s,\n", d->n_shared_experts,
                d->norm_topk_prob ? "true" : "false");
    }
    bprintf(&b, "    \"num_attention_heads\": %d,\n", d->num_attention_heads);
    if (d->moe) bprintf(&b, "    \"num_experts_per_tok\": %d,\n", d->num_experts_per_tok);
    bprintf(&b, "    \"num_hidden_layers\": %d,\n    \"num_key_value_heads\": %d,\n", d->num_hidden_layers,
            d->num_key_value_heads);
    if (d->moe) bprintf(&b, "    \"output_router_logits\": false,\n");
    bprintf(&b, "    \"pad_token_id\": null,\n    \"rms_norm_eps\": 1e-05,\n    \"rope_parameters\": {\n");
    bprintf(&b, "      \"mrope_section\": [\n");
    for (int i = 0; i < d->n_mrope; i++) bprintf(&b, "        %d%s\n", d->mrope_section[i], i + 1 < d->n_mrope ? "," : "");
    bprintf(&b, "      ],\n      \"partial_rotary_factor\": %s,\n      \"rope_theta\": %s,\n",
            jfloat(f1, sizeof f1, d->partial_rotary_factor), jfloat(f2, sizeof f2, d->rope_theta));
    bprintf(&b, "      \"rope_type\": \"default\"\n    },\n");
    if (d->moe)
        bprintf(&b, "    \"routed_scaling_factor\": %s,\n    \"router_aux_loss_coef\": 0.0001,\n",
                jfloat(f1, sizeof f1, d->routed_scaling_factor));
    bprintf(&b, "    \"tie_word_embeddings\": false,\n");
    if (d->moe) bprintf(&b, "    \"topk_group\": %d,\n", d->topk_group);
    bprintf(&b, "    \"use_cache\": true,\n    \"vocab_size\": %d\n  },\n", d->vocab_size);
    bprintf(&b, "  \"tie_word_embeddings\": false,\n  \"transformers_version\": \"5.24.0\",\n");
    bprintf(&b, "  \"video_end_token_id\": %d,\n  \"video_start_token_id\": %d,\n  \"video_token_id\": %d,\n", t->eov,
            t->bov, t->video);
    bprintf(&b, "  \"vision_config\": {\n    \"attention_bias\": %s,\n    \"attention_dropout\": 0.0,\n",
            d->v_attention_bias ? "true" : "false");
    bprintf(&b, "    \"depth\": %d,\n    \"hidden_act\": \"silu\",\n    \"hidden_size\": %d,\n", d->v_depth, d->v_hidden);
    bprintf(&b, "    \"image_size\": %d,\n    \"in_channels\": 3,\n    \"initializer_range\": 0.02,\n", d->v_image_size);
    bprintf(&b, "    \"intermediate_size\": %d,\n    \"model_type\": \"%s_vision\",\n", d->v_merger, tt);
    bprintf(&b, "    \"num_heads\": %d,\n    \"out_hidden_size\": %d,\n    \"patch_size\": %d,\n", d->v_heads, d->v_out,
            d->v_patch);
    bprintf(&b, "    \"rms_norm_eps\": 1e-05,\n    \"rope_parameters\": {\n      \"rope_theta\": 10000.0,\n");
    bprintf(&b, "      \"rope_type\": \"axial\"\n    },\n");
    bprintf(&b, "    \"spatial_merge_size\": %d,\n    \"temporal_patch_size\": %d\n  }\n}\n", d->v_merge, d->v_temporal);
    return b.p;
}

// processor_config.json as transformers 5.x writes it (defaults of Glm4vImageProcessor / Glm4vVideoProcessor)
static char *processor_json(const Dims *d) {
    Buf b = {0};
    const char *norm = "    \"image_mean\": [\n      0.48145466,\n      0.4578275,\n      0.40821073\n    ],\n";
    const char *std = "    \"image_std\": [\n      0.26862954,\n      0.26130258,\n      0.27577711\n    ],\n";
    bprintf(&b, "{\n  \"image_processor\": {\n    \"do_convert_rgb\": true,\n    \"do_normalize\": true,\n");
    bprintf(&b, "    \"do_rescale\": true,\n    \"do_resize\": true,\n%s", norm);
    bprintf(&b, "    \"image_processor_type\": \"Glm4vImageProcessor\",\n%s", std);
    bprintf(&b, "    \"merge_size\": %d,\n    \"patch_size\": %d,\n    \"resample\": 3,\n", d->v_merge, d->v_patch);
    bprintf(&b, "    \"rescale_factor\": 0.00392156862745098,\n    \"size\": {\n      \"longest_edge\": 11760000,\n");
    bprintf(&b, "      \"shortest_edge\": 12544\n    },\n    \"temporal_patch_size\": %d\n  },\n", d->v_temporal);
    bprintf(&b, "  \"processor_class\": \"Glm4vProcessor\",\n  \"video_processor\": {\n    \"do_convert_rgb\": true,\n");
    bprintf(&b, "    \"do_normalize\": true,\n    \"do_rescale\": true,\n    \"do_resize\": true,\n");
    bprintf(&b, "    \"do_sample_frames\": true,\n    \"fps\": 2,\n%s%s", norm, std);
    bprintf(&b, "    \"max_duration\": 300,\n    \"max_image_size\": {\n      \"longest_edge\": 47040000\n    },\n");
    bprintf(&b, "    \"merge_size\": %d,\n    \"num_frames\": 16,\n    \"patch_size\": %d,\n", d->v_merge, d->v_patch);
    bprintf(&b, "    \"resample\": 3,\n    \"rescale_factor\": 0.00392156862745098,\n    \"return_metadata\": false,\n");
    bprintf(&b, "    \"size\": {\n      \"longest_edge\": 47040000,\n      \"shortest_edge\": 12544\n    },\n");
    bprintf(&b, "    \"temporal_patch_size\": %d,\n    \"video_processor_type\": \"Glm4vVideoProcessor\"\n  }\n}\n",
            d->v_temporal);
    return b.p;
}

static const char *GENERATION_CONFIG =
    "{\n  \"_from_model_config\": true,\n  \"output_attentions\": false,\n  \"output_hidden_states\": false,\n"
    "  \"transformers_version\": \"5.24.0\",\n  \"use_cache\": true\n}\n";

static const char *TOKENIZER_CONFIG =
    "{\n  \"backend\": \"tokenizers\",\n  \"eos_token\": \"<|endoftext|>\",\n"
    "  \"model_max_length\": 1000000000000000019884624838656,\n  \"pad_token\": \"<|endoftext|>\",\n"
    "  \"processor_class\": \"Glm4vProcessor\",\n  \"tokenizer_class\": \"TokenizersBackend\"\n}\n";

// ----------------------------------------------------------------------------------------------------------------
// command line

static void usage(FILE *f) {
    fprintf(f,
            "usage: synth_ckpt --out DIR [options]\n"
            "Writes a synthetic GLM-4V checkpoint folder with deterministic bf16 weights (bit-identical everywhere).\n"
            "  --out DIR          output folder (created; files in it are replaced)\n"
            "  --preset NAME      realdims        GLM-4.5V dims, 2 text layers (0 dense, 1 MoE), vocab 1088 (~7 GB)\n"
            "                     realdims-dense  GLM-4.1V dims, 2 text layers, vocab 1088 (~4.5 GB)\n"
            "                     bench           realdims with 4 text layers (1 dense + 3 MoE) (~16 GB)\n"
            "                     tiny            the dims of weights/tiny-glm4v-moe (default)\n"
            "                     tiny-dense      the dims of weights/tiny-glm4v-dense\n"
            "  --seed N           generator seed (default 1)\n"
            "  --layers N         text decoder layers (num_hidden_layers)\n"
            "  --dense-layers K   MoE model: first_k_dense_replace (layers [0, K) use the dense MLP)\n"
            "  --experts E        MoE model: n_routed_experts (--topk K: num_experts_per_tok)\n"
            "  --vocab N          vocab_size (embed_tokens / lm_head rows; must cover the tokenizer's ids)\n"
            "  --vision-depth N   vision blocks\n"
            "  --shards N         write N files model-0000i-of-0000N.safetensors + model.safetensors.index.json\n"
            "  --tokenizer PATH   tokenizer.json to copy (default weights/tiny-glm4v-moe/tokenizer.json);\n"
            "                     the special-token ids in config.json are read from it\n");
}

static int parse_int(const char *s, int lo, int hi, int *out, const char *opt) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "synth_ckpt: %s: expected an integer in [%d, %d], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

// the constraints HF's modules assume (docs/SPEC.md 1.5)
static int check_dims(const Dims *d) {
    const char *err = NULL;
    int hd = d->moe ? d->head_dim : d->hidden_size / d->num_attention_heads;
    int rot = (int)(hd * d->partial_rotary_factor), msum = 0;
    for (int i = 0; i < d->n_mrope; i++) msum += d->mrope_section[i];
    if (d->num_attention_heads % d->num_key_value_heads) err = "num_attention_heads % num_key_value_heads != 0";
    else if (!d->moe && d->hidden_size % d->num_attention_heads) err = "hidden_size % num_attention_heads != 0";
    else if (rot % 2 || msum != rot / 2) err = "sum(mrope_section) != rotary_dim / 2";
    else if (d->moe && d->n_routed_experts % d->n_group) err = "n_routed_experts % n_group != 0";
    else if (d->moe && d->n_routed_experts / d->n_group < 2) err = "fewer than 2 experts per group";
    else if (d->moe && d->num_experts_per_tok > d->topk_group * (d->n_routed_experts / d->n_group))
        err = "num_experts_per_tok > experts in the selected groups";
    else if (d->moe && d->topk_group > d->n_group) err = "topk_group > n_group";
    else if (d->v_hidden % d->v_heads || (d->v_hidden / d->v_heads) % 4) err = "vision head_dim not a multiple of 4";
    else if (d->v_image_size % d->v_patch) err = "image_size % patch_size != 0";
    else if (d->v_out != d->hidden_size) err = "out_hidden_size != hidden_size";
    if (err) fprintf(stderr, "synth_ckpt: bad dimensions: %s\n", err);
    return err ? -1 : 0;
}

int main(int argc, char **argv) {
    Dims d = PRESET_TINY;
    const char *out = NULL, *tok_path = "weights/tiny-glm4v-moe/tokenizer.json";
    int seed = 1, shards = 1;
    int layers = -1, dense_layers = -1, experts = -1, topk = -1, vocab = -1, vdepth = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "synth_ckpt: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--preset")) {
            if (!strcmp(v, "realdims")) d = PRESET_REALDIMS;
            else if (!strcmp(v, "realdims-dense")) d = PRESET_REALDIMS_DENSE;
            else if (!strcmp(v, "bench")) {
                d = PRESET_REALDIMS;
                d.num_hidden_layers = 4;
            } else if (!strcmp(v, "tiny")) d = PRESET_TINY;
            else if (!strcmp(v, "tiny-dense")) d = PRESET_TINY_DENSE;
            else {
                fprintf(stderr, "synth_ckpt: unknown preset '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--seed")) bad = parse_int(v, 0, 2147483647, &seed, a);
        else if (!strcmp(a, "--shards")) bad = parse_int(v, 1, MAX_SHARDS, &shards, a);
        else if (!strcmp(a, "--layers")) bad = parse_int(v, 1, 1000, &layers, a);
        else if (!strcmp(a, "--dense-layers")) bad = parse_int(v, 0, 1000, &dense_layers, a);
        else if (!strcmp(a, "--experts")) bad = parse_int(v, 1, 4096, &experts, a);
        else if (!strcmp(a, "--topk")) bad = parse_int(v, 1, 4096, &topk, a);
        else if (!strcmp(a, "--vocab")) bad = parse_int(v, 1, 1 << 22, &vocab, a);
        else if (!strcmp(a, "--vision-depth")) bad = parse_int(v, 1, 1000, &vdepth, a);
        else {
            fprintf(stderr, "synth_ckpt: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) return 2;
    }
    if (!out) {
        usage(stderr);
        return 2;
    }
    if (layers > 0) d.num_hidden_layers = layers;
    if (dense_layers >= 0) d.first_k_dense_replace = dense_layers;
    if (experts > 0) d.n_routed_experts = experts;
    if (topk > 0) d.num_experts_per_tok = topk;
    if (vocab > 0) d.vocab_size = vocab;
    if (vdepth > 0) d.v_depth = vdepth;
    if (check_dims(&d)) return 2;

    size_t tok_len;
    char *tok = slurp(tok_path, &tok_len);
    if (!tok) {
        fprintf(stderr, "synth_ckpt: cannot read %s: %s\n", tok_path, strerror(errno));
        return 1;
    }
    TokIds ids;
    if (token_ids(tok, &ids, tok_path)) {
        free(tok);
        return 1;
    }
    if (ids.max_id >= d.vocab_size) {
        fprintf(stderr, "synth_ckpt: --vocab %d does not cover the tokenizer's ids (largest %d)\n", d.vocab_size,
                ids.max_id);
        free(tok);
        return 2;
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "synth_ckpt: cannot create %s: %s\n", out, strerror(errno));
        free(tok);
        return 1;
    }

    Table tb = {.seed = (uint64_t)seed};
    build_table(&tb, &d);
    qsort(tb.t, (size_t)tb.n, sizeof(Spec), cmp_spec);
    uint64_t total = 0;
    for (int i = 0; i < tb.n; i++) total += tb.t[i].nbytes;
    if (shards > tb.n) shards = tb.n;
    // contiguous runs in name order, each closed once it reaches its share of the bytes
    uint64_t acc = 0;
    int k = 0;
    for (int i = 0; i < tb.n; i++) {
        tb.t[i].shard = k;
        acc += tb.t[i].nbytes;
        if (k + 1 < shards && acc >= total / (uint64_t)shards * (uint64_t)(k + 1) && tb.n - i - 1 >= shards - k - 1) k++;
    }
    shards = k + 1;

    int rc = 0;
    char *cfg = config_json(&d, &ids), *proc = processor_json(&d);
    rc |= write_text(out, "config.json", cfg);
    rc |= write_text(out, "processor_config.json", proc);
    rc |= write_text(out, "generation_config.json", GENERATION_CONFIG);
    rc |= write_text(out, "tokenizer_config.json", TOKENIZER_CONFIG);
    rc |= write_text(out, "tokenizer.json", tok);
    free(cfg);
    free(proc);
    free(tok);

    const uint64_t chunk_elems = 1u << 22;
    void *chunk = malloc(chunk_elems * 4);
    if (!chunk) {
        fprintf(stderr, "synth_ckpt: out of memory\n");
        free(tb.t);
        return 1;
    }
    uint64_t done = 0;
    for (int s = 0; s < shards && !rc; s++) rc |= write_shard(out, &tb, s, shards, chunk, chunk_elems, &done, total);
    free(chunk);
    if (total >= (1u << 30)) fprintf(stderr, "\n");

    if (!rc && shards > 1) {
        Buf b = {0};
        bprintf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
                (unsigned long long)total);
        for (int i = 0; i < tb.n; i++) {
            char fname[64];
            shard_name(fname, sizeof fname, tb.t[i].shard, shards);
            bprintf(&b, "    \"%s\": \"%s\"%s\n", tb.t[i].name, fname, i + 1 < tb.n ? "," : "");
        }
        bprintf(&b, "  }\n}\n");
        rc |= write_text(out, "model.safetensors.index.json", b.p);
        free(b.p);
    }
    if (!rc)
        fprintf(stderr, "synth_ckpt: wrote %s: %d tensors, %.3f GB in %d file%s (seed %d)\n", out, tb.n,
                (double)total / 1e9, shards, shards > 1 ? "s" : "", seed);
    free(tb.t);
    return rc ? 1 : 0;
}
