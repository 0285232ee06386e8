// SPDX-License-Identifier: MIT
// checkpoint.c - a Hugging Face model folder as downloaded: config.json (4.57 and 5.x layouts), generation and
// processor configs, model.safetensors or sharded model-0000N-of-0000M.safetensors + index, weight binding.
#include "checkpoint.h"
#include "fileio.h"
#include "gguf_model.h"
#include "quant_config.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define MAX_JSON_BYTES (64u << 20) // config files, safetensors index

// ---------------------------------------------------------------------------- JSON helpers

// integer field: -1 on a wrong type / range; *out untouched when absent
static int js_int(const cJSON *o, const char *key, int *out, const char *file, int lo, int hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    // range first: converting an out-of-range double to an integer is undefined behaviour
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) || v->valuedouble != floor(v->valuedouble))
        return glm_err("%s: \"%s\" must be an integer in [%d, %d]", file, key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

static int js_float(const cJSON *o, const char *key, float *out, const char *file) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return glm_err("%s: \"%s\" must be a number", file, key);
    *out = (float)v->valuedouble;
    return 0;
}

static int js_double(const cJSON *o, const char *key, double *out, const char *file) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return glm_err("%s: \"%s\" must be a number", file, key);
    *out = v->valuedouble;
    return 0;
}

static int js_bool(const cJSON *o, const char *key, int *out, const char *file) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return glm_err("%s: \"%s\" must be true or false", file, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

// a required positive integer
static int js_req(const cJSON *o, const char *key, int *out, const char *file, const char *section) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return glm_err("%s: %s has no \"%s\"", file, section, key);
    return js_int(o, key, out, file, 1, 1 << 30);
}

// eos ids: int or list of ints, appended to c->eos_ids (deduplicated)
static int js_eos(Config *c, const cJSON *v, const char *file) {
    if (!v || cJSON_IsNull(v)) return 0;
    const cJSON *one = v;
    if (cJSON_IsArray(v)) one = v->child;
    for (; one; one = cJSON_IsArray(v) ? one->next : NULL) {
        if (!cJSON_IsNumber(one) || !(one->valuedouble >= 0 && one->valuedouble <= 1e9) ||
            one->valuedouble != floor(one->valuedouble))
            return glm_err("%s: eos_token_id must be an integer or a list of integers", file);
        int id = (int)one->valuedouble, dup = 0;
        for (int i = 0; i < c->n_eos; i++) dup |= c->eos_ids[i] == id;
        if (!dup && c->n_eos < 16) c->eos_ids[c->n_eos++] = id;
        if (!cJSON_IsArray(v)) break;
    }
    return 0;
}

// ---------------------------------------------------------------------------- config.json

// architecture: Glm4vMoeForConditionalGeneration (GLM-4.5V/4.6V) or Glm4vForConditionalGeneration (GLM-4.1V)
static int config_architecture(Config *c, const cJSON *root, const cJSON *tc, const char *file) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *mts = cJSON_IsString(mt) ? mt->valuestring : "";
    const char *as = cJSON_IsArray(arch) && cJSON_IsString(arch->child) ? arch->child->valuestring : "";
    // Glm46VConfig (model_type glm46v) builds its text model from text_config.model_type (AutoModel)
    const cJSON *tmt = cJSON_GetObjectItemCaseSensitive(tc, "model_type");
    const char *tms = cJSON_IsString(tmt) ? tmt->valuestring : "";
    if (strcmp(tms, "glm4v_moe_text") == 0) c->is_moe = 1;
    else if (strcmp(tms, "glm4v_text") == 0) c->is_moe = 0;
    else if (strcmp(mts, "glm4v_moe") == 0 || strstr(as, "Glm4vMoe")) c->is_moe = 1;
    else if (strcmp(mts, "glm4v") == 0 || strcmp(mts, "glm46v") == 0 || strstr(as, "Glm4v") || strstr(as, "Glm46V"))
        c->is_moe = 0;
    else return glm_err("%s: model_type \"%s\" is not glm4v, glm4v_moe or glm46v", file, mts);

    return 0;
}

// text_config sizes: Glm4v(Moe)TextConfig's vocabulary, widths, layers, heads, head_dim (*cfg_head_dim: as written)
static int text_config_sizes(Config *c, const cJSON *tc, const char *file, int *cfg_head_dim) {
    TextConfig *t = &c->text;
    const char *ts = "text_config";
    if (js_req(tc, "vocab_size", &t->vocab_size, file, ts) || js_req(tc, "hidden_size", &t->hidden_size, file, ts) ||
        js_req(tc, "intermediate_size", &t->intermediate_size, file, ts) ||
        js_req(tc, "num_hidden_layers", &t->num_hidden_layers, file, ts) ||
        js_req(tc, "num_attention_heads", &t->num_attention_heads, file, ts))
        return -1;
    // per-layer tables are allocated before the weights are bound (GLM-4.5V has 46 layers)
    if (t->num_hidden_layers > 4096) {
        return glm_err("%s: num_hidden_layers %d is implausible (at most 4096)", file, t->num_hidden_layers);
    }
    t->num_key_value_heads = t->num_attention_heads;
    t->rms_norm_eps = 1e-5f;
    t->attention_bias = 1;
    t->max_position_embeddings = c->is_moe ? 65536 : 32768;
    if (js_int(tc, "num_key_value_heads", &t->num_key_value_heads, file, 1, 1 << 20) ||
        js_float(tc, "rms_norm_eps", &t->rms_norm_eps, file) ||
        js_int(tc, "max_position_embeddings", &t->max_position_embeddings, file, 1, 1 << 30))
        return -1;
    if (t->rms_norm_eps <= 0 || t->rms_norm_eps > 1) return glm_err("%s: rms_norm_eps out of range", file);
    if (t->num_attention_heads % t->num_key_value_heads) {
        return glm_err("%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", file,
                t->num_attention_heads, t->num_key_value_heads);
    }
    // head_dim: Glm4vMoeTextAttention: getattr(config, "head_dim", hidden // heads); Glm4vTextAttention: hidden // heads
    *cfg_head_dim = 0;
    if (js_int(tc, "head_dim", cfg_head_dim, file, 0, 1 << 16)) return -1;
    if (t->hidden_size % t->num_attention_heads && !(c->is_moe && *cfg_head_dim)) {
        return glm_err("%s: hidden_size %d is not a multiple of num_attention_heads %d", file, t->hidden_size,
                t->num_attention_heads);
    }
    t->head_dim = (c->is_moe && *cfg_head_dim) ? *cfg_head_dim : t->hidden_size / t->num_attention_heads;
    return 0;
}

// text_config rope: theta, partial_rotary_factor and mrope_section in the 5.x (rope_parameters) or 4.57 layout
static int text_config_rope(Config *c, const cJSON *tc, const char *file, int cfg_head_dim) {
    TextConfig *t = &c->text;
    // rope: 5.x rope_parameters{rope_theta, partial_rotary_factor, mrope_section}; 4.57 rope_theta,
    // partial_rotary_factor, rope_scaling{mrope_section}
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(tc, "rope_parameters");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(tc, "rope_scaling");
    // Glm4vMoeTextConfig.__post_init__: kwargs.setdefault("partial_rotary_factor", 0.5); dense default 1.0
    float prf = c->is_moe ? 0.5f : 1.0f;
    t->rope_theta = 10000.0f;
    if (js_float(tc, "rope_theta", &t->rope_theta, file) || js_float(tc, "partial_rotary_factor", &prf, file))
        return -1;
    const cJSON *sec = NULL;
    if (cJSON_IsObject(rs)) sec = cJSON_GetObjectItemCaseSensitive(rs, "mrope_section");
    if (cJSON_IsObject(rp)) {
        if (js_float(rp, "rope_theta", &t->rope_theta, file) || js_float(rp, "partial_rotary_factor", &prf, file))
            return -1;
        const cJSON *s2 = cJSON_GetObjectItemCaseSensitive(rp, "mrope_section");
        if (s2) sec = s2;
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        if (cJSON_IsString(ty) && strcmp(ty->valuestring, "default") != 0) {
            return glm_err("%s: rope_type \"%s\" is not supported (only \"default\")", file, ty->valuestring);
        }
    }
    if (!(prf > 0 && prf <= 1) || !(t->rope_theta > 0)) return glm_err("%s: invalid rope parameters", file);
    // HF: head_dim = getattr(config, "head_dim", None) or hidden // heads; dim = int(head_dim * partial_rotary_factor)
    int rope_head_dim = cfg_head_dim ? cfg_head_dim : t->hidden_size / t->num_attention_heads;
    t->rotary_dim = (int)(rope_head_dim * (double)prf);
    if (sec) {
        if (!cJSON_IsArray(sec) || cJSON_GetArraySize(sec) < 1 || cJSON_GetArraySize(sec) > 8) {
            return glm_err("%s: mrope_section must be a list of 1..8 integers", file);
        }
        for (const cJSON *e = sec->child; e; e = e->next) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= 4096) ||
                e->valuedouble != floor(e->valuedouble)) {
                return glm_err("%s: mrope_section must be a list of integers", file);
            }
            t->mrope_section[t->n_mrope_section++] = (int)e->valuedouble;
        }
    } else { // HF default [8, 12, 12]
        t->mrope_section[0] = 8, t->mrope_section[1] = 12, t->mrope_section[2] = 12, t->n_mrope_section = 3;
    }
    int secsum = 0;
    for (int i = 0; i < t->n_mrope_section; i++) secsum += t->mrope_section[i];
    if (t->rotary_dim % 2 || secsum * 2 != t->rotary_dim || t->rotary_dim > t->head_dim) {
        return glm_err("%s: mrope_section sums to %d but the rotary dimension is %d (head_dim %d x partial_rotary_factor %g)",
                file, secsum, t->rotary_dim, rope_head_dim, prf);
    }
    return 0;
}

// text_config attention bias and MoE routing (Glm4vMoeTextConfig: experts, groups, top-k, shared experts)
static int text_config_moe(Config *c, const cJSON *tc, const char *file) {
    TextConfig *t = &c->text;
    const char *ts = "text_config";
    if (js_bool(tc, "attention_bias", &t->attention_bias, file)) return -1;
    if (!c->is_moe) t->attention_bias = 1; // Glm4vTextAttention: bias=True always
    if (c->is_moe) {
        t->n_shared_experts = 1, t->n_group = 1, t->topk_group = 1, t->first_k_dense_replace = 1;
        t->norm_topk_prob = 1, t->routed_scaling_factor = 1.0f;
        if (js_req(tc, "moe_intermediate_size", &t->moe_intermediate_size, file, ts) ||
            js_req(tc, "num_experts_per_tok", &t->num_experts_per_tok, file, ts))
            return -1;
        t->n_routed_experts = 0;
        if (js_int(tc, "n_routed_experts", &t->n_routed_experts, file, 1, 1 << 16) ||
            (!t->n_routed_experts && js_int(tc, "num_local_experts", &t->n_routed_experts, file, 1, 1 << 16)) ||
            js_int(tc, "n_shared_experts", &t->n_shared_experts, file, 0, 1 << 10) ||
            js_int(tc, "n_group", &t->n_group, file, 1, 1 << 16) ||
            js_int(tc, "topk_group", &t->topk_group, file, 1, 1 << 16) ||
            js_int(tc, "first_k_dense_replace", &t->first_k_dense_replace, file, 0, 1 << 20) ||
            js_bool(tc, "norm_topk_prob", &t->norm_topk_prob, file) ||
            js_float(tc, "routed_scaling_factor", &t->routed_scaling_factor, file))
            return -1;
        if (!t->n_routed_experts) return glm_err("%s: text_config has no \"n_routed_experts\"", file);
        if (t->n_routed_experts % t->n_group || t->topk_group > t->n_group ||
            t->num_experts_per_tok > t->topk_group * (t->n_routed_experts / t->n_group) ||
            t->n_routed_experts / t->n_group < 2 || t->num_experts_per_tok > 256) {
            return glm_err("%s: inconsistent MoE routing (experts %d, groups %d, topk_group %d, top-k %d)", file,
                    t->n_routed_experts, t->n_group, t->topk_group, t->num_experts_per_tok);
        }
    }
    return 0;
}

// the special token ids (Glm4vMoeConfig / Glm4vConfig defaults, overridden by config.json)
static int config_token_ids(Config *c, const cJSON *root, const char *file) {
    const TextConfig *t = &c->text;
    c->image_token_id = c->is_moe ? 151363 : 151343;
    c->video_token_id = c->is_moe ? 151364 : 151344;
    c->image_start_token_id = 151339, c->image_end_token_id = 151340;
    c->video_start_token_id = 151341, c->video_end_token_id = 151342;
    int vmax = t->vocab_size - 1;
    if (js_int(root, "image_token_id", &c->image_token_id, file, 0, vmax) ||
        js_int(root, "video_token_id", &c->video_token_id, file, 0, vmax) ||
        js_int(root, "image_start_token_id", &c->image_start_token_id, file, 0, vmax) ||
        js_int(root, "image_end_token_id", &c->image_end_token_id, file, 0, vmax) ||
        js_int(root, "video_start_token_id", &c->video_start_token_id, file, 0, vmax) ||
        js_int(root, "video_end_token_id", &c->video_end_token_id, file, 0, vmax))
        return -1;

    return 0;
}

// vision_config (Glm4vVisionConfig defaults: GLM-4.5V's tower)
static int vision_config(Config *c, const cJSON *vc, const char *file) {
    const TextConfig *t = &c->text;
    VisionConfig *v = &c->vision;
    v->depth = 24, v->hidden_size = 1536, v->num_heads = 12, v->intermediate_size = 13696, v->out_hidden_size = 4096;
    v->patch_size = 14, v->temporal_patch_size = 2, v->spatial_merge_size = 2, v->in_channels = 3;
    v->image_size = 336, v->rms_norm_eps = 1e-5f, v->attention_bias = 0;
    if (cJSON_IsObject(vc)) {
        const char *f = file;
        if (js_int(vc, "depth", &v->depth, f, 0, 1 << 10) || js_int(vc, "hidden_size", &v->hidden_size, f, 1, 1 << 20) ||
            js_int(vc, "num_heads", &v->num_heads, f, 1, 1 << 12) ||
            js_int(vc, "intermediate_size", &v->intermediate_size, f, 1, 1 << 24) ||
            js_int(vc, "out_hidden_size", &v->out_hidden_size, f, 1, 1 << 20) ||
            js_int(vc, "patch_size", &v->patch_size, f, 1, 1024) ||
            js_int(vc, "temporal_patch_size", &v->temporal_patch_size, f, 1, 16) ||
            js_int(vc, "spatial_merge_size", &v->spatial_merge_size, f, 1, 16) ||
            js_int(vc, "in_channels", &v->in_channels, f, 3, 3) ||
            js_int(vc, "image_size", &v->image_size, f, 1, 1 << 16) || js_float(vc, "rms_norm_eps", &v->rms_norm_eps, f) ||
            js_bool(vc, "attention_bias", &v->attention_bias, f))
            return -1;
    }
    if (v->hidden_size % v->num_heads || (v->hidden_size / v->num_heads) % 4) {
        return glm_err("%s: vision hidden_size %d / num_heads %d must give a head_dim divisible by 4", file, v->hidden_size,
                v->num_heads);
    }
    v->head_dim = v->hidden_size / v->num_heads;
    v->mlp_size = v->out_hidden_size; // Glm4VisionMlp: self.intermediate_size = config.out_hidden_size
    if (v->out_hidden_size != t->hidden_size) {
        return glm_err("%s: vision out_hidden_size %d differs from the text hidden_size %d", file, v->out_hidden_size,
                t->hidden_size);
    }
    return 0;
}

int config_parse(Config *c, const char *json, size_t len, const char *file) {
    memset(c, 0, sizeof *c);
    c->config_crc = (uint32_t)crc32(0L, (const Bytef *)json, (uInt)len);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return glm_err("%s: not valid JSON", file);
    }
    int rc = -1, cfg_head_dim = 0;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    if (!cJSON_IsObject(tc)) {
        glm_err("%s: no \"text_config\" object (not a GLM-4V config)", file);
        goto done;
    }
    if (config_architecture(c, root, tc, file) || text_config_sizes(c, tc, file, &cfg_head_dim) ||
        text_config_rope(c, tc, file, cfg_head_dim) || text_config_moe(c, tc, file))
        goto done;
    if (js_eos(c, cJSON_GetObjectItemCaseSensitive(tc, "eos_token_id"), file) ||
        js_eos(c, cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), file))
        goto done;

    if (config_token_ids(c, root, file) || vision_config(c, cJSON_IsObject(vc) ? vc : NULL, file)) goto done;
    TextConfig *t = &c->text;
    t->max_position_embeddings = t->max_position_embeddings > 0 ? t->max_position_embeddings : 1;
    c->temperature = 1.0f, c->top_p = 1.0f, c->top_k = 0, c->repetition_penalty = 1.0f;
    proc_config_defaults(&c->proc);
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

// generation_config.json: do_sample, temperature, top_k, top_p, repetition_penalty, eos_token_id
int generation_config_parse(Config *c, const char *json, size_t len, const char *file) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return glm_err("%s: not valid JSON", file);
    }
    int rc = 0;
    if (js_bool(root, "do_sample", &c->do_sample, file) || js_float(root, "temperature", &c->temperature, file) ||
        js_float(root, "top_p", &c->top_p, file) || js_int(root, "top_k", &c->top_k, file, 0, 1 << 30) ||
        js_float(root, "repetition_penalty", &c->repetition_penalty, file) ||
        js_eos(c, cJSON_GetObjectItemCaseSensitive(root, "eos_token_id"), file))
        rc = -1;
    cJSON_Delete(root);
    return rc;
}

// ---------------------------------------------------------------------------- processor configs

// Glm4vImageProcessor's class defaults (image != 0) or Glm4vVideoProcessor's (image == 0) over p's fields for it
static void proc_modality_defaults(ProcConfig *p, int image) {
    // OPENAI_CLIP_MEAN / OPENAI_CLIP_STD, rescale_factor 1 / 255
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    if (image) {
        // Glm4vImageProcessor: size {"shortest_edge": 112*112, "longest_edge": 28*28*15000}
        p->min_pixels = 12544, p->max_pixels = 11760000;
        memcpy(p->image_mean, mean, sizeof mean), memcpy(p->image_std, std, sizeof std);
        p->rescale_factor = 1.0 / 255.0;
    } else {
        // Glm4vVideoProcessor: size {"shortest_edge": 12544, "longest_edge": 28*28*2*30000}, fps 2, max_duration 300
        p->vmin_pixels = 12544, p->vmax_pixels = 47040000;
        memcpy(p->vimage_mean, mean, sizeof mean), memcpy(p->vimage_std, std, sizeof std);
        p->vrescale_factor = 1.0 / 255.0;
        p->video_fps = 2.0f, p->video_max_duration = 300;
    }
}

void proc_config_defaults(ProcConfig *p) {
    memset(p, 0, sizeof *p);
    proc_modality_defaults(p, 1);
    proc_modality_defaults(p, 0);
    p->patch_size = 14, p->temporal_patch_size = 2, p->merge_size = 2;
}

// one image or video processor object (preprocessor_config.json's fields, or one of processor_config.json's objects)
// read as that processor's from_pretrained reads it, over its class defaults
static int proc_object(ProcConfig *p, const cJSON *o, const char *file, int video) {
    proc_modality_defaults(p, !video);
    // resize(): if not size.shortest_edge or not size.longest_edge: raise ValueError (the processors read nothing
    // else: a top-level min_pixels / max_pixels, as Qwen2-VL's processor takes them, is not read by Glm4v's)
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
    int *mn = video ? &p->vmin_pixels : &p->min_pixels, *mx = video ? &p->vmax_pixels : &p->max_pixels;
    if (size && !cJSON_IsNull(size)) {
        if (!cJSON_IsObject(size) || !cJSON_GetObjectItemCaseSensitive(size, "shortest_edge") ||
            !cJSON_GetObjectItemCaseSensitive(size, "longest_edge"))
            return glm_err("%s: \"size\" must hold \"shortest_edge\" and \"longest_edge\" (the pixel budget %s reads)",
                           file, video ? "Glm4vVideoProcessor" : "Glm4vImageProcessor");
        if (js_int(size, "shortest_edge", mn, file, 1, 1 << 30) || js_int(size, "longest_edge", mx, file, 1, 2000000000))
            return -1;
    }
    // settings glm4v implements one value of: another value is refused, never silently ignored (resample 3 = BICUBIC)
    static const char *always[] = {"do_resize", "do_rescale", "do_normalize", "do_convert_rgb"};
    for (size_t k = 0; k < sizeof always / sizeof always[0]; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, always[k]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsTrue(v))
            return glm_err("%s: \"%s\": %s is not supported (glm4v always resizes, rescales, normalizes and converts "
                           "to RGB, as the released processors do)", file, always[k], cJSON_IsFalse(v) ? "false" : "a non-boolean");
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "resample");
    if (rs && !cJSON_IsNull(rs) && !(cJSON_IsNumber(rs) && rs->valuedouble == 3))
        return glm_err("%s: \"resample\" other than 3 (bicubic, the processors' default) is not supported", file);
    const char *keys[2] = {"image_mean", "image_std"};
    float *dst[2] = {video ? p->vimage_mean : p->image_mean, video ? p->vimage_std : p->image_std};
    for (int k = 0; k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
        if (!a || cJSON_IsNull(a)) continue;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) return glm_err("%s: %s must be 3 numbers", file, keys[k]);
        int i = 0;
        for (const cJSON *e = a->child; e; e = e->next, i++) {
            if (!cJSON_IsNumber(e)) return glm_err("%s: %s must be 3 numbers", file, keys[k]);
            dst[k][i] = (float)e->valuedouble;
        }
    }
    for (int i = 0; i < 3; i++)
        if (!(dst[1][i] > 0)) return glm_err("%s: image_std must be positive", file);
    double *rescale = video ? &p->vrescale_factor : &p->rescale_factor;
    if (js_double(o, "rescale_factor", rescale, file)) return -1;
    // _fuse_mean_std_and_rescale_factor divides by it (transformers: ZeroDivisionError)
    if (*rescale == 0) return glm_err("%s: \"rescale_factor\" must not be 0", file);
    if (js_int(o, "patch_size", &p->patch_size, file, 1, 1024) ||
        js_int(o, "temporal_patch_size", &p->temporal_patch_size, file, 1, 16) ||
        js_int(o, "merge_size", &p->merge_size, file, 1, 16))
        return -1;
    if (video) {
        if (js_float(o, "fps", &p->video_fps, file) || js_int(o, "max_duration", &p->video_max_duration, file, 1, 1 << 24))
            return -1;
        if (!(p->video_fps > 0 && p->video_fps <= 1000)) return glm_err("%s: fps out of range", file);
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, video ? "video_processor_type" : "image_processor_type");
    if (cJSON_IsString(ty) && strstr(ty->valuestring, "Glm46V")) p->glm46v = 1;
    return 0;
}

int proc_config_parse(ProcConfig *p, const char *json, size_t len, const char *file, int which, int *set) {
    if (set) *set = 0;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return glm_err("%s: not valid JSON", file);
    }
    int rc = 0, done = 0;
    const cJSON *ip = cJSON_GetObjectItemCaseSensitive(root, "image_processor");
    const cJSON *vp = cJSON_GetObjectItemCaseSensitive(root, "video_processor");
    if (ip || vp) { // 5.x processor_config.json: each processor from its own object
        if ((ip && !cJSON_IsObject(ip)) || (vp && !cJSON_IsObject(vp)))
            rc = glm_err("%s: image_processor / video_processor must be objects", file);
        if (!rc && ip && (which & PROC_IMAGE) && !(rc = proc_object(p, ip, file, 0))) done |= PROC_IMAGE;
        if (!rc && vp && (which & PROC_VIDEO) && !(rc = proc_object(p, vp, file, 1))) done |= PROC_VIDEO;
    } else if (!(which & PROC_NESTED_ONLY)) { // one flat object: what each processor of `which` reads
        if ((which & PROC_IMAGE) && !(rc = proc_object(p, root, file, 0))) done |= PROC_IMAGE;
        if (!rc && (which & PROC_VIDEO) && !(rc = proc_object(p, root, file, 1))) done |= PROC_VIDEO;
    }
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(root, "processor_class");
    if (cJSON_IsString(pc) && strstr(pc->valuestring, "Glm46V")) p->glm46v = 1;
    cJSON_Delete(root);
    if (set) *set = done;
    return rc;
}

// ---------------------------------------------------------------------------- model folder

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// read DIR/NAME if it exists: 1 = read, 0 = absent, -1 = error
static int read_opt(const char *dir, const char *name, char **buf, size_t *len) {
    char *p = path_join(dir, name);
    int rc = 0;
    *buf = NULL;
    // anything at the path (a FIFO, a folder, a dangling link) is read as a file and so refused with one line
    if (path_present(p)) rc = (*buf = read_file(p, len, MAX_JSON_BYTES)) ? 1 : -1;
    free(p);
    return rc;
}

// shard file names from model.safetensors.index.json's weight_map (unique, in first-seen order)
#define MAX_SHARDS 4096 // GLM-4.5V has 46
int checkpoint_index_parse(const char *json, size_t len, const char *file, char ***names, int *n) {
    *names = NULL, *n = 0;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return glm_err("%s: no \"weight_map\" object", file);
    }
    int cap = 0, rc = 0;
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e)) { rc = glm_err("%s: weight_map values must be file names", file); break; }
        const char *s = e->valuestring;
        if (!*s || strchr(s, '/') || strcmp(s, "..") == 0 || strcmp(s, ".") == 0 || strlen(s) > 255) {
            rc = glm_err("%s: invalid shard name \"%.300s\" (must be a file in the model folder)", file, s);
            break;
        }
        int dup = 0;
        for (int i = 0; i < *n && !dup; i++) dup = strcmp((*names)[i], s) == 0;
        if (dup) continue;
        if (*n == MAX_SHARDS) { rc = glm_err("%s: more than %d shard files", file, MAX_SHARDS); break; }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(*names, (size_t)cap * sizeof(char *));
            if (!nn) glm_die(EXIT_INPUT, "out of memory");
            *names = nn;
        }
        (*names)[(*n)++] = xstrdup(s);
    }
    if (!rc && *n == 0) rc = glm_err("%s: weight_map is empty", file);
    cJSON_Delete(root);
    if (rc) { // nothing handed back on error
        for (int i = 0; i < *n; i++) free((*names)[i]);
        free(*names);
        *names = NULL, *n = 0;
    }
    return rc;
}

static int checkpoint_open_(Checkpoint *ck, const char *dir) {
    memset(ck, 0, sizeof *ck);
    struct stat st;
    if (stat(dir, &st) != 0) return glm_err("%s: model folder not found (%s)", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return glm_err("%s: not a folder (-m expects a Hugging Face model folder)", dir);
    if (strlen(dir) >= sizeof ck->dir) return glm_err("model folder path too long");
    strcpy(ck->dir, dir);
    char *buf = NULL, *cfgpath = path_join(dir, "config.json");
    size_t len = 0;
    int r = read_opt(dir, "config.json", &buf, &len);
    if (r == 0) glm_err("%s: missing (not a Hugging Face model folder?)", cfgpath);
    if (r != 1 || config_parse(&ck->cfg, buf, len, cfgpath) || quant_config_parse(&ck->quant, buf, len, cfgpath)) {
        free(buf), free(cfgpath);
        return -1;
    }
    free(buf), free(cfgpath);
    Config *c = &ck->cfg;
    // generation_config.json (optional)
    if ((r = read_opt(dir, "generation_config.json", &buf, &len)) < 0) return -1;
    if (r == 1) {
        char *p = path_join(dir, "generation_config.json");
        int e = generation_config_parse(c, buf, len, p);
        free(buf), free(p);
        if (e) return -1;
    }
    // processor settings, each processor from the first file that has them (transformers' from_pretrained: the 5.x
    // processor_config.json's nested object, else video_preprocessor_config.json for the video processor, else
    // preprocessor_config.json, the released layout, for both)
    const char *pnames[3] = {"processor_config.json", "video_preprocessor_config.json", "preprocessor_config.json"};
    const int pwhich[3] = {PROC_IMAGE | PROC_VIDEO | PROC_NESTED_ONLY, PROC_VIDEO, PROC_IMAGE | PROC_VIDEO};
    int have = 0; // the processors read so far
    for (int i = 0; i < 3; i++) {
        if ((r = read_opt(dir, pnames[i], &buf, &len)) < 0) return -1;
        if (r == 0) continue;
        char *p = path_join(dir, pnames[i]);
        int got = 0, e = proc_config_parse(&c->proc, buf, len, p, pwhich[i] & ~have, &got);
        have |= got;
        free(buf), free(p);
        if (e) return -1;
    }
    if (c->proc.patch_size != c->vision.patch_size || c->proc.merge_size != c->vision.spatial_merge_size ||
        c->proc.temporal_patch_size != c->vision.temporal_patch_size)
        return glm_err("%s: processor patch/merge/temporal sizes (%d/%d/%d) differ from vision_config (%d/%d/%d)", dir,
                       c->proc.patch_size, c->proc.merge_size, c->proc.temporal_patch_size, c->vision.patch_size,
                       c->vision.spatial_merge_size, c->vision.temporal_patch_size);
    // weights: index + shards, or a single model.safetensors
    char **names = NULL;
    int n = 0;
    if ((r = read_opt(dir, "model.safetensors.index.json", &buf, &len)) < 0) return -1;
    if (r == 1) {
        char *p = path_join(dir, "model.safetensors.index.json");
        int e = checkpoint_index_parse(buf, len, p, &names, &n);
        free(buf), free(p);
        if (e) return -1;
    } else {
        char *p = path_join(dir, "model.safetensors");
        if (!path_present(p)) {
            glm_err("%s: no model.safetensors or model.safetensors.index.json", dir);
            free(p);
            return -1;
        }
        free(p);
        names = xmalloc(sizeof(char *));
        names[0] = xstrdup("model.safetensors");
        n = 1;
    }
    ck->files = xcalloc((size_t)n, sizeof(SFile));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char *p = path_join(dir, names[i]);
        if (!rc && sf_open(&ck->files[i], p) == 0) ck->nfiles = i + 1;
        else rc = -1;
        free(p);
        free(names[i]);
    }
    free(names);
    if (rc) checkpoint_close(ck);
    return rc;
}

int checkpoint_open(Checkpoint *ck, const char *dir) {
    int rc = checkpoint_open_(ck, dir);
    if (rc) quant_config_free(ck->quant), ck->quant = NULL; // an error after config.json
    return rc;
}

void checkpoint_close(Checkpoint *ck) {
    quant_config_free(ck->quant);
    ck->quant = NULL;
    gguf_model_free(ck->gguf);
    ck->gguf = NULL;
    for (int i = 0; i < ck->nfiles; i++) sf_close(&ck->files[i]);
    free(ck->files);
    ck->files = NULL;
    ck->nfiles = 0;
}

static const STensor *find_exact(const Checkpoint *ck, const char *name) {
    for (int i = 0; i < ck->nfiles; i++) {
        const STensor *t = sf_find(&ck->files[i], name);
        if (t) return t;
    }
    return NULL;
}

const STensor *checkpoint_find(const Checkpoint *ck, const char *name) {
    const STensor *t = find_exact(ck, name);
    if (t) return t;
    // pre-4.52 names: model.layers.* / model.embed_tokens / model.norm and visual.*
    char alt[512];
    if (strncmp(name, "model.language_model.", 21) == 0) snprintf(alt, sizeof alt, "model.%s", name + 21);
    else if (strncmp(name, "model.visual.", 13) == 0) snprintf(alt, sizeof alt, "visual.%s", name + 13);
    else return NULL;
    return find_exact(ck, alt);
}

int checkpoint_tensor(const Checkpoint *ck, Tensor *out, const char *name, int ndim, const int64_t *shape) {
    memset(out, 0, sizeof *out);
    const STensor *t = checkpoint_find(ck, name);
    if (!t) return glm_err("%s: missing tensor '%s'", ck->dir, name);
    if (t->dtype != DT_BF16 && t->dtype != DT_F16 && t->dtype != DT_F32 && !(t->dtype == DT_GGML && ndim >= 2))
        return glm_err("%s: tensor '%s' has dtype %s (expected BF16, F16 or F32)", ck->dir, name, dtype_name[t->dtype]);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[128] = "", want[128] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
        return glm_err("%s: tensor '%s' has shape [%s] but the config needs [%s]", ck->dir, name, got, want);
    }
    out->data = t->data;
    out->dtype = t->dtype;
    if (t->dtype == DT_GGML) { // GGUF block types (gguf_model.c): [shape[0], the rest flattened], rows ld bytes apart
        out->ggml = t->ggml, out->rows = shape[0], out->ld = (int64_t)(t->nbytes / (size_t)shape[0]);
        out->cols = 1;
        for (int i = 1; i < ndim; i++) out->cols *= shape[i];
        return 0;
    }
    out->rows = ndim >= 2 ? shape[0] : 1;
    out->cols = ndim == 1 ? shape[0] : 1; // 2-D and more: the trailing dims flattened (also with no rows)
    for (int i = 1; i < ndim; i++) out->cols *= shape[i];
    return 0;
}
