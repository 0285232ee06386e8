// SPDX-License-Identifier: MIT
// gguf_model.c - llama.cpp GGUF files (text + mmproj) opened as a Checkpoint (gguf_model.h). The metadata keys are
// those llama.cpp's converter writes (conversion/glm.py Glm4MoeModel / Glm4Model.set_gguf_parameters,
// conversion/qwen3vl.py Glm4VVisionModel, gguf-py constants.Keys); they are turned back into the HF config.json and
// tokenizer.json they came from, so the folders' parsers check them. The tensors: gguf_map.c's tables.
#include "gguf_model.h"

#include "ggml_quants.h"
#include "gguf.h"
#include "gguf_map.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int is_gguf_path(const char *path) { return path && has_suffix_ci(path, ".gguf"); }

// the reader's error as ours
static int gerr(void) { return glm_err("%s", gguf_last_error()); }

// keep buffer p until the model is freed; returns p
static void *own(GGUFModel *m, void *p) {
    if (m->n_owned == m->cap_owned) {
        m->cap_owned = m->cap_owned ? 2 * m->cap_owned : 64;
        void **o = realloc(m->owned, (size_t)m->cap_owned * sizeof *o);
        if (!o) glm_die(EXIT_INPUT, "out of memory");
        m->owned = o;
    }
    return m->owned[m->n_owned++] = p;
}

void gguf_model_free(GGUFModel *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->text) gguf_close_split(m->text), free(m->text);
    if (m->mmproj) gguf_close_split(m->mmproj), free(m->mmproj);
    free(m->tokenizer_json), free(m->tokcfg_json), free(m->chat_template), free(m->config_json);
    free(m);
}

// ---------------------------------------------------------------------------- metadata

// "{arch}.key" as u32 into *out; missing: dflt when dflt >= 0, else an error
static int arch_u32(const GGUFFile *g, const char *arch, const char *key, int64_t dflt, int64_t *out) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    uint32_t v;
    if (!gguf_find_kv(g, k)) {
        if (dflt < 0) return glm_err("%s: metadata key '%s' is missing", g->path, k);
        *out = dflt;
        return 0;
    }
    if (gguf_get_u32(g, k, &v)) return gerr();
    *out = v;
    return 0;
}

// "{arch}.key" as a float into *out; missing: dflt when it is a number, else (NAN) an error
static int arch_f32(const GGUFFile *g, const char *arch, const char *key, double dflt, double *out) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    float v;
    if (!gguf_find_kv(g, k)) {
        if (dflt != dflt) return glm_err("%s: metadata key '%s' is missing", g->path, k);
        *out = dflt;
        return 0;
    }
    if (gguf_get_f32(g, k, &v)) return gerr();
    if (!isfinite(v)) return glm_err("%s: metadata key '%s' is %g, not a finite number", g->path, k, (double)v);
    *out = v;
    return 0;
}

// a tensor of the text or mmproj file by GGUF name (NULL when absent)
static const GGUFTensor *find_t(const GGUFSplit *s, const char *name) { return s ? gguf_split_find_tensor(s, name, NULL) : NULL; }

// the id of token text s in the vocabulary (tokens[n]), or -1
static int token_id(const GGUFValue *tokens, const char *s) {
    size_t sl = strlen(s);
    for (uint64_t i = 0; i < tokens->n; i++) {
        uint64_t len;
        const char *p = gguf_arr_str(tokens, i, &len);
        if (len == sl && memcmp(p, s, sl) == 0) return (int)i;
    }
    return -1;
}

// the text config (Glm4vMoeTextConfig / Glm4vTextConfig keys) of text file g (arch "glm4moe" or "glm4") into tc
static int text_config_json(const GGUFFile *g, const GGUFSplit *ts, const char *arch, int moe, cJSON *tc) {
    int64_t H, I, L, Hq, Hkv, ctx, rot, nextn = 0;
    double eps, theta;
    if (arch_u32(g, arch, "embedding_length", -1, &H) || arch_u32(g, arch, "feed_forward_length", -1, &I) ||
        arch_u32(g, arch, "block_count", -1, &L) || arch_u32(g, arch, "attention.head_count", -1, &Hq) ||
        arch_u32(g, arch, "attention.head_count_kv", Hq, &Hkv) || arch_u32(g, arch, "context_length", 65536, &ctx) ||
        arch_u32(g, arch, "rope.dimension_count", -1, &rot) ||
        arch_f32(g, arch, "attention.layer_norm_rms_epsilon", 1e-5, &eps) ||
        arch_f32(g, arch, "rope.freq_base", 10000.0, &theta) ||
        (moe && arch_u32(g, arch, "nextn_predict_layers", 0, &nextn)))
        return -1;
    // Glm4MoeModel: block_count = num_hidden_layers + num_nextn_predict_layers (the NextN layer is not run)
    if (nextn > L) return glm_err("%s: %s.nextn_predict_layers %lld > block_count %lld", g->path, arch, (long long)nextn, (long long)L);
    const GGUFTensor *emb = find_t(ts, "token_embd.weight"), *q = find_t(ts, "blk.0.attn_q.weight");
    if (!emb || emb->n_dims != 2) return glm_err("%s: no 2-d tensor 'token_embd.weight'", g->path);
    if (!q || q->n_dims != 2 || Hq < 1 || q->ne[1] % Hq) return glm_err("%s: no 2-d tensor 'blk.0.attn_q.weight' of head_count rows", g->path);
    const int64_t hd = q->ne[1] / Hq;
    cJSON_AddStringToObject(tc, "model_type", moe ? "glm4v_moe_text" : "glm4v_text");
    cJSON_AddNumberToObject(tc, "vocab_size", (double)emb->ne[1]);
    cJSON_AddNumberToObject(tc, "hidden_size", (double)H);
    cJSON_AddNumberToObject(tc, "intermediate_size", (double)I);
    cJSON_AddNumberToObject(tc, "num_hidden_layers", (double)(L - nextn));
    cJSON_AddNumberToObject(tc, "num_attention_heads", (double)Hq);
    cJSON_AddNumberToObject(tc, "num_key_value_heads", (double)Hkv);
    if (moe) cJSON_AddNumberToObject(tc, "head_dim", (double)hd); // (the dense model's is hidden / heads)
    cJSON_AddNumberToObject(tc, "rms_norm_eps", eps);
    cJSON_AddNumberToObject(tc, "max_position_embeddings", (double)ctx);
    // rope: Glm4(Moe)Model.set_gguf_parameters wrote rope_dim = int(head_dim * partial_rotary_factor);
    // rope.dimension_sections = mrope_section padded with zeros to 4
    cJSON *rp = cJSON_AddObjectToObject(tc, "rope_parameters");
    cJSON_AddNumberToObject(rp, "rope_theta", theta);
    cJSON_AddNumberToObject(rp, "partial_rotary_factor", hd ? (double)rot / (double)hd : 0);
    cJSON_AddStringToObject(rp, "rope_type", "default");
    char k[256];
    snprintf(k, sizeof k, "%s.rope.dimension_sections", arch);
    if (gguf_find_kv(g, k)) {
        int32_t sec[8];
        uint64_t n = 0;
        if (gguf_get_arr_i32(g, k, sec, 8, &n)) return gerr();
        while (n > 1 && sec[n - 1] == 0) n--; // the converter's padding
        cJSON_AddItemToObject(rp, "mrope_section", cJSON_CreateIntArray(sec, (int)n));
    }
    cJSON_AddBoolToObject(tc, "attention_bias", find_t(ts, "blk.0.attn_q.bias") != NULL);
    if (moe) {
        int64_t E, k_, Im, ns, ng, tg, fk, norm, gating;
        double scale;
        if (arch_u32(g, arch, "expert_count", -1, &E) || arch_u32(g, arch, "expert_used_count", -1, &k_) ||
            arch_u32(g, arch, "expert_feed_forward_length", -1, &Im) ||
            arch_u32(g, arch, "expert_shared_count", 0, &ns) || arch_u32(g, arch, "expert_group_count", 1, &ng) ||
            arch_u32(g, arch, "expert_group_used_count", 1, &tg) ||
            arch_u32(g, arch, "leading_dense_block_count", 0, &fk) ||
            arch_u32(g, arch, "expert_gating_func", 2, &gating) || arch_f32(g, arch, "expert_weights_scale", 1.0, &scale))
            return -1;
        snprintf(k, sizeof k, "%s.expert_weights_norm", arch);
        int nb = 0;
        if (gguf_find_kv(g, k) && gguf_get_bool(g, k, &nb)) return gerr();
        norm = nb;
        // gguf-py ExpertGatingFuncType.SIGMOID = 2 (Glm4vMoeTextTopkRouter: sigmoid + e_score_correction_bias)
        if (gating != 2) return glm_err("%s: %s.expert_gating_func is %lld, not 2 (sigmoid)", g->path, arch, (long long)gating);
        cJSON_AddNumberToObject(tc, "n_routed_experts", (double)E);
        cJSON_AddNumberToObject(tc, "num_experts_per_tok", (double)k_);
        cJSON_AddNumberToObject(tc, "moe_intermediate_size", (double)Im);
        cJSON_AddNumberToObject(tc, "n_shared_experts", (double)ns);
        cJSON_AddNumberToObject(tc, "n_group", (double)ng);
        cJSON_AddNumberToObject(tc, "topk_group", (double)tg);
        cJSON_AddNumberToObject(tc, "first_k_dense_replace", (double)fk);
        cJSON_AddBoolToObject(tc, "norm_topk_prob", (int)norm);
        cJSON_AddNumberToObject(tc, "routed_scaling_factor", scale);
    }
    return 0;
}

// vision_config (Glm4vVisionConfig keys) from the mmproj file (clip.* keys; sizes the keys do not carry from the
// tensors' shapes). No mmproj: only out_hidden_size (the text width), which the config check compares
static int vision_config_json(const GGUFSplit *ms, int64_t H, cJSON *vc) {
    if (!ms) {
        cJSON_AddNumberToObject(vc, "out_hidden_size", (double)H);
        return 0;
    }
    const GGUFFile *g = &ms->f[0];
    const char *s;
    if (!gguf_find_kv(g, "clip.projector_type")) return glm_err("%s: not an mmproj file (no clip.projector_type)", g->path);
    if (gguf_get_str(g, "clip.projector_type", &s)) return gerr();
    if (strcmp(s, "glm4v") != 0) return glm_err("%s: clip.projector_type is '%s', not 'glm4v'", g->path, s);
    int64_t Hv, depth, heads, P, img, O;
    double eps;
    if (arch_u32(g, "clip", "vision.embedding_length", -1, &Hv) || arch_u32(g, "clip", "vision.block_count", -1, &depth) ||
        arch_u32(g, "clip", "vision.attention.head_count", -1, &heads) ||
        arch_u32(g, "clip", "vision.patch_size", -1, &P) || arch_u32(g, "clip", "vision.image_size", 336, &img) ||
        arch_u32(g, "clip", "vision.projection_dim", H, &O) ||
        arch_f32(g, "clip", "vision.attention.layer_norm_epsilon", 1e-5, &eps))
        return -1;
    // merger width: mm.gate [O -> I]; merge size: mm.patch_merger (the downsample conv) ne = [m, m, Hv, O];
    // temporal patch: v.patch_embd.weight.1 holds the second frame of the Conv3d
    const GGUFTensor *gate = find_t(ms, "mm.gate.weight"), *ds = find_t(ms, "mm.patch_merger.weight");
    const GGUFTensor *pe = find_t(ms, "v.patch_embd.weight");
    if (!gate || gate->n_dims != 2) return glm_err("%s: no 2-d tensor 'mm.gate.weight'", g->path);
    if (!ds || ds->n_dims != 4) return glm_err("%s: no 4-d tensor 'mm.patch_merger.weight'", g->path);
    if (!pe || pe->n_dims != 4) return glm_err("%s: no 4-d tensor 'v.patch_embd.weight'", g->path);
    cJSON_AddNumberToObject(vc, "depth", (double)depth);
    cJSON_AddNumberToObject(vc, "hidden_size", (double)Hv);
    cJSON_AddNumberToObject(vc, "num_heads", (double)heads);
    cJSON_AddNumberToObject(vc, "intermediate_size", (double)gate->ne[1]);
    cJSON_AddNumberToObject(vc, "out_hidden_size", (double)O);
    cJSON_AddNumberToObject(vc, "patch_size", (double)P);
    cJSON_AddNumberToObject(vc, "temporal_patch_size", find_t(ms, "v.patch_embd.weight.1") ? 2 : 1);
    cJSON_AddNumberToObject(vc, "spatial_merge_size", (double)ds->ne[0]);
    cJSON_AddNumberToObject(vc, "in_channels", (double)pe->ne[2]);
    cJSON_AddNumberToObject(vc, "image_size", (double)img);
    cJSON_AddNumberToObject(vc, "rms_norm_eps", eps);
    cJSON_AddBoolToObject(vc, "attention_bias", find_t(ms, "v.blk.0.attn_qkv.bias") != NULL);
    return 0;
}

// config.json (Glm4vMoeConfig / Glm4vConfig) from the metadata; the token ids by their text in the vocabulary
static char *config_json(const GGUFSplit *ts, const GGUFSplit *ms, const char *arch, int moe) {
    const GGUFFile *g = &ts->f[0];
    cJSON *root = cJSON_CreateObject(), *tc = cJSON_AddObjectToObject(root, "text_config");
    cJSON *vc = cJSON_AddObjectToObject(root, "vision_config");
    char *out = NULL;
    const GGUFValue *tokens;
    cJSON_AddStringToObject(root, "model_type", moe ? "glm4v_moe" : "glm4v");
    if (text_config_json(g, ts, arch, moe, tc)) goto done;
    const cJSON *Hj = cJSON_GetObjectItemCaseSensitive(tc, "hidden_size");
    if (vision_config_json(ms, (int64_t)Hj->valuedouble, vc)) goto done;
    if (gguf_get_arr_str(g, "tokenizer.ggml.tokens", &tokens)) {
        gerr();
        goto done;
    }
    // Glm4vMoeConfig image_token_id ... video_end_token_id: the tokens <|image|> ... <|end_of_video|>
    static const char *keys[6][2] = {{"image_token_id", "<|image|>"}, {"video_token_id", "<|video|>"},
                                     {"image_start_token_id", "<|begin_of_image|>"}, {"image_end_token_id", "<|end_of_image|>"},
                                     {"video_start_token_id", "<|begin_of_video|>"}, {"video_end_token_id", "<|end_of_video|>"}};
    for (int i = 0; i < 6; i++) {
        int id = token_id(tokens, keys[i][1]);
        if (id >= 0) cJSON_AddNumberToObject(root, keys[i][0], id);
        else if (ms) {
            glm_err("%s: the vocabulary has no token %s (needed with an mmproj file)", g->path, keys[i][1]);
            goto done;
        }
    }
    // generation_config.json eos_token_id of GLM-4.5V / 4.6V: [<|endoftext|>, <|user|>, <|observation|>] = the
    // converter's eos, eot and eom ids (_set_vocab_glm)
    cJSON *eos = cJSON_AddArrayToObject(root, "eos_token_id");
    static const char *eos_keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"};
    int seen[3], ns = 0;
    for (int i = 0; i < 3; i++) {
        uint32_t id;
        if (!gguf_find_kv(g, eos_keys[i])) continue;
        if (gguf_get_u32(g, eos_keys[i], &id)) { gerr(); goto done; }
        int dup = 0;
        for (int j = 0; j < ns; j++) dup |= seen[j] == (int)id;
        if (!dup) seen[ns++] = (int)id, cJSON_AddItemToArray(eos, cJSON_CreateNumber(id));
    }
    out = cJSON_PrintUnformatted(root);
    if (!out) glm_err("out of memory (config)");
done:
    cJSON_Delete(root);
    return out;
}

// ---------------------------------------------------------------------------- tokenizer

// HF tokenizer.json pre-tokenizer Split regexes of llama.cpp's tokenizer.ggml.pre names (llama-vocab.cpp
// LLAMA_VOCAB_PRE_TYPE_GLM4: the regex of GLM-4 / GLM-4.5's tokenizer.json)
static const struct { const char *pre, *regex; } pre_regex[] = {
    {"glm4", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

// a string of the array as a cJSON string (NUL bytes refused)
static cJSON *arr_string(const GGUFValue *a, uint64_t i) {
    uint64_t len;
    const char *p = gguf_arr_str(a, i, &len);
    if (memchr(p, 0, len)) return NULL;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    memcpy(s, p, len), s[len] = 0;
    cJSON *j = cJSON_CreateString(s);
    free(s);
    return j;
}

// the tokenizer.json (and the template's special tokens) of tokenizer.ggml.*: gpt2 (byte-level BPE) only. Token
// types (gguf-py TokenType): NORMAL 1 and BYTE 6 -> model.vocab, CONTROL 3 -> added special, USER_DEFINED 4 -> added
// not special, UNUSED 5 (the converter's [PADn] fillers) -> left out
static int tokenizer_json(GGUFModel *m, const GGUFFile *g) {
    const char *model, *pre = "default";
    const GGUFValue *tokens, *merges = NULL;
    if (gguf_get_str(g, "tokenizer.ggml.model", &model)) return gerr();
    if (strcmp(model, "gpt2") != 0) return glm_err("%s: tokenizer.ggml.model is '%s', not 'gpt2' (byte-level BPE)", g->path, model);
    if (gguf_find_kv(g, "tokenizer.ggml.pre") && gguf_get_str(g, "tokenizer.ggml.pre", &pre)) return gerr();
    const char *regex = NULL;
    for (size_t i = 0; i < sizeof pre_regex / sizeof *pre_regex; i++)
        if (strcmp(pre, pre_regex[i].pre) == 0) regex = pre_regex[i].regex;
    if (!regex) return glm_err("%s: tokenizer.ggml.pre '%s' is not GLM's ('glm4')", g->path, pre);
    if (gguf_get_arr_str(g, "tokenizer.ggml.tokens", &tokens)) return gerr();
    if (gguf_find_kv(g, "tokenizer.ggml.merges") && gguf_get_arr_str(g, "tokenizer.ggml.merges", &merges)) return gerr();
    if (tokens->n > (1u << 24)) return glm_err("%s: %llu tokens", g->path, (unsigned long long)tokens->n);
    int32_t *types = xcalloc(tokens->n ? tokens->n : 1, sizeof *types);
    uint64_t nt = 0;
    int rc = -1;
    if (gguf_find_kv(g, "tokenizer.ggml.token_type")) {
        if (gguf_get_arr_i32(g, "tokenizer.ggml.token_type", types, tokens->n, &nt)) { gerr(); goto out; }
        if (nt != tokens->n) { glm_err("%s: %llu token types for %llu tokens", g->path, (unsigned long long)nt, (unsigned long long)tokens->n); goto out; }
    } else
        for (uint64_t i = 0; i < tokens->n; i++) types[i] = 1;
    cJSON *root = cJSON_CreateObject(), *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *pt = cJSON_AddObjectToObject(root, "pre_tokenizer"), *seq = cJSON_AddArrayToObject(pt, "pretokenizers");
    cJSON_AddStringToObject(pt, "type", "Sequence");
    cJSON *split = cJSON_CreateObject(), *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", regex);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddFalseToObject(split, "invert");
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddFalseToObject(bl, "add_prefix_space");
    cJSON_AddTrueToObject(bl, "trim_offsets");
    cJSON_AddFalseToObject(bl, "use_regex");
    cJSON_AddItemToArray(seq, split), cJSON_AddItemToArray(seq, bl);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON *mo = cJSON_AddObjectToObject(root, "model"), *vocab = cJSON_AddObjectToObject(mo, "vocab");
    cJSON_AddStringToObject(mo, "type", "BPE");
    cJSON *ml = cJSON_AddArrayToObject(mo, "merges");
    for (uint64_t i = 0; i < tokens->n; i++) {
        if (types[i] == 5) continue;
        cJSON *s = arr_string(tokens, i);
        if (!s) { glm_err("%s: token %llu holds a NUL byte", g->path, (unsigned long long)i); cJSON_Delete(root); goto out; }
        if (types[i] == 3 || types[i] == 4) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i);
            cJSON_AddItemToObject(a, "content", s);
            cJSON_AddBoolToObject(a, "special", types[i] == 3);
            cJSON_AddFalseToObject(a, "single_word");
            cJSON_AddFalseToObject(a, "lstrip");
            cJSON_AddFalseToObject(a, "rstrip");
            cJSON_AddFalseToObject(a, "normalized");
            cJSON_AddItemToArray(added, a);
        } else {
            cJSON_AddItemToObject(vocab, s->valuestring, cJSON_CreateNumber((double)i));
            cJSON_Delete(s);
        }
    }
    for (uint64_t i = 0; merges && i < merges->n; i++) {
        cJSON *s = arr_string(merges, i);
        if (!s) { glm_err("%s: merge %llu holds a NUL byte", g->path, (unsigned long long)i); cJSON_Delete(root); goto out; }
        cJSON_AddItemToArray(ml, s);
    }
    m->tokenizer_json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    // tokenizer_config.json of GLM-4.5V: eos_token and pad_token (the template's variables)
    cJSON *tk = cJSON_CreateObject();
    static const char *sp[2][2] = {{"eos_token", "tokenizer.ggml.eos_token_id"}, {"pad_token", "tokenizer.ggml.padding_token_id"}};
    for (int i = 0; i < 2; i++) {
        uint32_t id;
        if (!gguf_find_kv(g, sp[i][1])) continue;
        if (gguf_get_u32(g, sp[i][1], &id)) { gerr(); cJSON_Delete(tk); goto out; }
        cJSON *s = id < tokens->n ? arr_string(tokens, id) : NULL;
        if (!s) { glm_err("%s: %s %u is not a token", g->path, sp[i][1], id); cJSON_Delete(tk); goto out; }
        cJSON_AddItemToObject(tk, sp[i][0], s);
    }
    m->tokcfg_json = cJSON_PrintUnformatted(tk);
    cJSON_Delete(tk);
    if (gguf_find_kv(g, "tokenizer.chat_template")) {
        const char *ct;
        if (gguf_get_str(g, "tokenizer.chat_template", &ct)) { gerr(); goto out; }
        m->chat_template = xstrdup(ct);
    }
    rc = m->tokenizer_json && m->tokcfg_json ? 0 : glm_err("out of memory (tokenizer)");
out:
    free(types);
    return rc;
}

// ---------------------------------------------------------------------------- tensors

// the Checkpoint's tensor list being built
typedef struct {
    STensor *t;  // [n] HF-named views
    int n, cap;  // used / allocated
} TList;

// a new zeroed entry named name at the end of l
static STensor *tl_add(TList *l, const char *name) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        STensor *t = realloc(l->t, (size_t)l->cap * sizeof *t);
        if (!t) glm_die(EXIT_INPUT, "out of memory");
        l->t = t;
    }
    STensor *s = &l->t[l->n++];
    memset(s, 0, sizeof *s);
    s->name = xstrdup(name);
    return s;
}

// the DType of a ggml type (F32 / F16 / BF16 as themselves, the block types as DT_GGML)
static DType dtype_of(uint32_t ty) {
    return ty == GQ_F32 ? DT_F32 : ty == GQ_F16 ? DT_F16 : ty == GQ_BF16 ? DT_BF16 : DT_GGML;
}

// The converter keeps some tensors F32 that the checkpoint holds in bf16 (norms, biases, the router, the patch
// embedding, the position table, the downsample conv: gguf-py's rules, not the checkpoint's) and writes every tensor
// F32 with --outtype f32. The Linear kernels keep one order per weight type (ops.c: bf16 pairs, f32 natural), so a
// matrix whose every value is a bf16 number is given back as the bf16 it was widened from (exact): the same bits as
// the HF folder. n floats at src -> a malloc'd bf16 copy, or NULL when a value is not a bf16 number
static uint16_t *narrow_bf16(const void *src, size_t n) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        if (u & 0xffff) return NULL;
    }
    uint16_t *o = malloc(n * 2 + 1);
    if (!o) glm_die(EXIT_INPUT, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        o[i] = (uint16_t)(u >> 16);
    }
    return o;
}

// set s to a view of (or, narrowed, a copy of) the data of type ty, shape [ndim] (HF order), nbytes
static void set_view(GGUFModel *m, STensor *s, uint32_t ty, int ndim, const int64_t *shape, const void *data, size_t nbytes) {
    s->ndim = ndim;
    memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
    s->dtype = dtype_of(ty), s->ggml = ty, s->data = data, s->nbytes = nbytes;
    if (ty == GQ_F32 && ndim >= 2) {
        uint16_t *b = narrow_bf16(data, nbytes / 4);
        if (b) s->dtype = DT_BF16, s->ggml = GQ_BF16, s->data = own(m, b), s->nbytes = nbytes / 2;
    }
}

// one GGUF tensor (of file g, table which) as its HF tensor(s); rotary_dim 0: q / k were not permuted
static int add_tensor(GGUFModel *m, TList *l, const GGUFSplit *sp, int which, const GGUFTensor *t, int head_dim,
                      int rotary_dim, int64_t nblocks, const char *nblocks_key) {
    char hf[512];
    int tr, bid;
    if (gguf_map_to_hf(which, t->name, hf, sizeof hf, &tr, &bid)) return 0; // not one the model reads
    if (bid >= nblocks) // (llama.cpp refuses such a file: a tensor it does not load)
        return glm_err("%s: tensor '%s' is in block %d, but %s is %lld: the tensors and the metadata disagree",
                       sp->f[0].path, t->name, bid, nblocks_key, (long long)nblocks);
    if (tr == GM_UNUSED || tr == GM_CONV3D_T1) return 0;                     // (T1: joined with T0)
    if (tr == GM_NEOX_QK && !rotary_dim) tr = GM_COPY;
    const GGUFFile *g = &sp->f[0];
    if (gguf_tensor_supported(g, t)) return gerr();
    if (!t->nelem) return glm_err("%s: tensor '%s' is empty", g->path, t->name);
    int64_t shape[GGUF_MAX_DIMS + 1];
    const int nd = t->n_dims < 1 ? 1 : t->n_dims;
    for (int i = 0; i < nd; i++) shape[i] = t->ne[nd - 1 - i]; // ggml ne[0] is the innermost: HF shape reversed
    if (tr == GM_COPY) {
        set_view(m, tl_add(l, hf), t->type, nd, shape, t->data, t->nbytes);
    } else if (tr == GM_STACK_EXPERTS) {
        // data_torch = torch.stack(datas, dim=0)  (Glm4MoeModel.modify_tensors)
        // ne = [in, out, n_expert]; expert x is the x-th contiguous slab
        if (nd != 3) return glm_err("%s: tensor '%s' is not 3-d (stacked experts)", g->path, t->name);
        const void *data = t->data;
        uint32_t ty = t->type;
        size_t nbytes = t->nbytes;
        if (ty == GQ_F32) { // narrow the whole stack once (see narrow_bf16)
            uint16_t *b = narrow_bf16(data, nbytes / 4);
            if (b) data = own(m, b), ty = GQ_BF16, nbytes /= 2;
        }
        const size_t slab = nbytes / (size_t)shape[0];
        char name[600];
        for (int64_t x = 0; x < shape[0]; x++) {
            // "{xid}" of the HF pattern
            const char *at = strstr(hf, "{xid}");
            if (!at) return glm_err("gguf_map: '%s' has no {xid}", hf);
            snprintf(name, sizeof name, "%.*s%lld%s", (int)(at - hf), hf, (long long)x, at + 5);
            STensor *s = tl_add(l, name);
            s->ndim = 2, s->shape[0] = shape[1], s->shape[1] = shape[2];
            s->dtype = dtype_of(ty), s->ggml = ty, s->data = (const uint8_t *)data + (size_t)x * slab, s->nbytes = slab;
        }
    } else if (tr == GM_NEOX_QK) {
        // permuted_rot = torch.cat((rot_part[:, ::2, :], rot_part[:, 1::2, :]), dim=1)  (Glm4Model.normal_to_neox)
        // rows (weight) / elements (bias) of each head; HF row r is GGUF row neox_row(r)
        const int64_t rows = shape[0];
        const size_t rb = t->nbytes / (size_t)rows;
        if (head_dim <= 0 || rows % head_dim) return glm_err("%s: tensor '%s': %lld rows are not whole heads of %d", g->path, t->name, (long long)rows, head_dim);
        uint8_t *buf = own(m, xmalloc(t->nbytes ? t->nbytes : 1));
        for (int64_t r = 0; r < rows; r++) {
            long src = gguf_map_neox_row(r, head_dim, rotary_dim);
            if (src < 0) return glm_err("%s: tensor '%s': rotary dimension %d does not fit head_dim %d", g->path, t->name, rotary_dim, head_dim);
            memcpy(buf + (size_t)r * rb, (const uint8_t *)t->data + (size_t)src * rb, rb);
        }
        set_view(m, tl_add(l, hf), t->type, nd, shape, buf, t->nbytes);
    } else if (tr == GM_CONV3D_T0) {
        // yield (V_ENC_EMBD_PATCH + ".weight", data_torch[:, :, 0, ...])
        // yield (V_ENC_EMBD_PATCH + ".weight.1", data_torch[:, :, 1, ...])  (Qwen3VLVisionModel.modify_tensors)
        // the Conv3d [out, in, 2, p, p] rejoined from its two frames
        char n1[600];
        snprintf(n1, sizeof n1, "%s.1", t->name);
        const GGUFFile *g1 = NULL;
        const GGUFTensor *t1 = gguf_split_find_tensor(sp, n1, &g1);
        if (!t1) return glm_err("%s: tensor '%s' has no second frame '%s'", g->path, t->name, n1);
        if (gguf_tensor_supported(g1, t1)) return gerr();
        if (nd != 4 || t1->n_dims != 4 || memcmp(t->ne, t1->ne, sizeof t->ne))
            return glm_err("%s: tensors '%s' and '%s' are not two 4-d frames of one shape", g->path, t->name, n1);
        const size_t fr = (size_t)t->ne[0] * (size_t)t->ne[1], oc = (size_t)t->ne[2] * (size_t)t->ne[3];
        float *f0 = xmalloc(t->nelem * sizeof(float)), *f1 = xmalloc(t->nelem * sizeof(float));
        float *w = own(m, xmalloc(2 * t->nelem * sizeof(float)));
        int rc = gguf_tensor_rows(g, t, 0, (int64_t)(t->nelem / (uint64_t)t->ne[0]), f0) ||
                 gguf_tensor_rows(g1, t1, 0, (int64_t)(t1->nelem / (uint64_t)t1->ne[0]), f1);
        for (size_t i = 0; !rc && i < oc; i++) {
            memcpy(w + (2 * i) * fr, f0 + i * fr, fr * sizeof(float));
            memcpy(w + (2 * i + 1) * fr, f1 + i * fr, fr * sizeof(float));
        }
        free(f0), free(f1);
        if (rc) return gerr();
        const int64_t hs[5] = {shape[0], shape[1], 2, shape[2], shape[3]};
        set_view(m, tl_add(l, hf), GQ_F32, 5, hs, w, 2 * t->nelem * sizeof(float));
    }
    return 0;
}

// every tensor of split sp through table which (blocks: nblocks, the value of metadata key nblocks_key)
static int add_tensors(GGUFModel *m, TList *l, const GGUFSplit *sp, int which, int head_dim, int rotary_dim,
                       int64_t nblocks, const char *nblocks_key) {
    for (int f = 0; f < sp->n; f++)
        for (uint64_t i = 0; i < sp->f[f].n_tensors; i++)
            if (add_tensor(m, l, sp, which, &sp->f[f].tensors[i], head_dim, rotary_dim, nblocks, nblocks_key)) return -1;
    return 0;
}

// qsort order of the views: by name (sf_find's binary search)
static int by_name(const void *a, const void *b) { return strcmp(((const STensor *)a)->name, ((const STensor *)b)->name); }

// ---------------------------------------------------------------------------- open

// gguf_checkpoint_open's work (ck->gguf = m set by the caller, freed by it on error)
static int open_(Checkpoint *ck, GGUFModel *m, const char *text_path, const char *mmproj_path) {
    if (strlen(text_path) >= sizeof ck->dir) return glm_err("model path too long");
    strcpy(ck->dir, text_path);
    m->text = xcalloc(1, sizeof *m->text);
    if (gguf_open_split(m->text, text_path)) return gerr();
    if (mmproj_path) {
        m->mmproj = xcalloc(1, sizeof *m->mmproj);
        if (gguf_open_split(m->mmproj, mmproj_path)) return gerr();
    }
    const GGUFFile *g = &m->text->f[0];
    const char *arch;
    if (gguf_get_str(g, "general.architecture", &arch)) return gerr();
    const int which = gguf_map_which(arch);
    if (which != GM_GLM4MOE && which != GM_GLM4)
        return glm_err("%s: general.architecture is '%s', not 'glm4moe' (GLM-4.5V / 4.6V) or 'glm4' (GLM-4.1V / "
                       "4.6V-Flash)%s", g->path, arch, which == GM_GLM4V_MMPROJ ? "; an mmproj file goes to --mmproj" : "");
    if (!(m->config_json = config_json(m->text, m->mmproj, arch, which == GM_GLM4MOE))) return -1;
    // (an error in the configuration built from the metadata names both files: the key may come from either)
    char label[2 * 4096 + 8];
    snprintf(label, sizeof label, "%s%s%s", g->path, m->mmproj ? " + " : "", m->mmproj ? m->mmproj->f[0].path : "");
    if (config_parse(&ck->cfg, m->config_json, strlen(m->config_json), label)) return -1;
    if (tokenizer_json(m, g)) return -1;
    // processor: HF's Glm4vImageProcessor / Glm4vVideoProcessor defaults (config_parse set them); the mmproj's
    // normalisation and patch sizes (clip.vision.image_mean / image_std)
    Config *c = &ck->cfg;
    c->proc.patch_size = c->vision.patch_size, c->proc.merge_size = c->vision.spatial_merge_size;
    c->proc.temporal_patch_size = c->vision.temporal_patch_size;
    if (m->mmproj) {
        const GGUFFile *mg = &m->mmproj->f[0];
        uint64_t n;
        float v[3];
        if (gguf_find_kv(mg, "clip.vision.image_mean")) {
            if (gguf_get_arr_f32(mg, "clip.vision.image_mean", v, 3, &n) || n != 3) return n != 3 ? glm_err("%s: clip.vision.image_mean is not 3 numbers", mg->path) : gerr();
            memcpy(c->proc.image_mean, v, sizeof v), memcpy(c->proc.vimage_mean, v, sizeof v);
        }
        if (gguf_find_kv(mg, "clip.vision.image_std")) {
            if (gguf_get_arr_f32(mg, "clip.vision.image_std", v, 3, &n) || n != 3) return n != 3 ? glm_err("%s: clip.vision.image_std is not 3 numbers", mg->path) : gerr();
            memcpy(c->proc.image_std, v, sizeof v), memcpy(c->proc.vimage_std, v, sizeof v);
        }
    }
    TList l = {0};
    // Glm4Model permutes q / k only with M-RoPE ("mrope_section" in rope_parameters), the same condition under which
    // it writes rope.dimension_sections
    char sk[64];
    snprintf(sk, sizeof sk, "%s.rope.dimension_sections", arch);
    const int permuted = gguf_find_kv(g, sk) != NULL;
    // the block counts (config_json read both: present and in range)
    char bk[64];
    snprintf(bk, sizeof bk, "%s.block_count", arch);
    int64_t nb_text = 0, nb_vis = 0;
    int rc = arch_u32(g, arch, "block_count", -1, &nb_text) ||
             (m->mmproj && arch_u32(&m->mmproj->f[0], "clip", "vision.block_count", -1, &nb_vis));
    rc = rc || add_tensors(m, &l, m->text, which, c->text.head_dim, permuted ? c->text.rotary_dim : 0, nb_text, bk) ||
         (m->mmproj && add_tensors(m, &l, m->mmproj, GM_GLM4V_MMPROJ, 0, 0, nb_vis, "clip.vision.block_count"));
    qsort(l.t, (size_t)l.n, sizeof *l.t, by_name);
    ck->files = xcalloc(1, sizeof(SFile));
    ck->nfiles = 1;
    ck->files[0].path = xstrdup(text_path);
    ck->files[0].n = l.n, ck->files[0].t = l.t;
    return rc ? -1 : 0;
}

int gguf_checkpoint_open(Checkpoint *ck, const char *text_path, const char *mmproj_path) {
    memset(ck, 0, sizeof *ck);
    GGUFModel *m = xcalloc(1, sizeof *m);
    ck->gguf = m;
    glm_errmsg[0] = 0;
    if (open_(ck, m, text_path, mmproj_path)) {
        char msg[sizeof glm_errmsg];
        snprintf(msg, sizeof msg, "%s", glm_errmsg);
        checkpoint_close(ck);
        return glm_err("%s", msg);
    }
    return 0;
}
