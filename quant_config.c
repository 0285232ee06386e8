// SPDX-License-Identifier: MIT
// quant_config.c - quantization_config of config.json and the binding of quantised Linear weights.
// Mirrors compressed_tensors (QuantizationConfig / QuantizationScheme / QuantizationArgs, utils.match.match_name,
// compressors.{naive,float,pack}_quantized: the tensors each format stores) and transformers' FineGrainedFP8Config
// (quant_method "fp8": weight_block_size, activation_scheme, modules_to_not_convert; tensors weight +
// weight_scale_inv). Which layers are quantised is decided by the tensors themselves (their dtype and the scale
// tensors beside them): GLM-4.5V-FP8's ignore list names the vision attention `attn.qkv_proj` while the module and
// its bf16 tensors are `attn.qkv`, so a list entry that matches no module is harmless; a quantised tensor whose
// module the list ignores, or that no config group targets, is refused.
#include "quant_config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

int quant_act_experts = 1;

// ---------------------------------------------------------------------------- parsing

static char *qstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

// a list of strings (NULL / absent: none)
static int str_list(const cJSON *v, char ***out, int *n, const char *file, const char *what) {
    *out = NULL, *n = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsArray(v)) return glm_err("%s: quantization_config %s must be a list of strings", file, what);
    int cnt = cJSON_GetArraySize(v);
    if (cnt > 1 << 20) return glm_err("%s: quantization_config %s has too many entries", file, what);
    *out = xcalloc((size_t)(cnt ? cnt : 1), sizeof(char *));
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsString(e)) return glm_err("%s: quantization_config %s must be a list of strings", file, what);
        if (strncmp(e->valuestring, "re:", 3) == 0) { // a pattern that does not compile would match nothing, silently
            int err;
            PCRE2_SIZE off;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)(e->valuestring + 3), PCRE2_ZERO_TERMINATED,
                                           PCRE2_ANCHORED | PCRE2_UTF, &err, &off, NULL);
            if (!re) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(err, msg, sizeof msg);
                return glm_err("%s: quantization_config %s: \"%.200s\" is not a valid regular expression (%s at offset %zu)",
                               file, what, e->valuestring, (const char *)msg, (size_t)off);
            }
            pcre2_code_free(re);
        }
        (*out)[(*n)++] = qstrdup(e->valuestring);
    }
    return 0;
}

static int js_opt_int(const cJSON *o, const char *key, int *out, int lo, int hi, const char *file, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) || v->valuedouble != (int)v->valuedouble)
        return glm_err("%s: quantization_config %s.%s must be an integer in [%d, %d]", file, what, key, lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

// QuantizationArgs (weights or input_activations)
static int parse_args(QuantArgs *a, const cJSON *o, const char *file, const char *what, int is_input) {
    memset(a, 0, sizeof *a);
    if (!o || cJSON_IsNull(o)) return 0;
    if (!cJSON_IsObject(o)) return glm_err("%s: quantization_config %s must be an object", file, what);
    a->present = 1, a->num_bits = 8, a->symmetric = 1, a->group_size = 0;
    if (js_opt_int(o, "num_bits", &a->num_bits, 1, 64, file, what)) return -1;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    const char *tys = cJSON_IsString(ty) ? ty->valuestring : "int";
    if (strcmp(tys, "float") == 0) a->is_float = 1;
    else if (strcmp(tys, "int") != 0)
        return glm_err("%s: quantization_config %s.type \"%s\" is not supported (int or float)", file, what, tys);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "strategy");
    const char *sts = cJSON_IsString(st) ? st->valuestring : "tensor";
    static const char *names[] = {"tensor", "channel", "group", "block", "token"};
    a->strategy = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(sts, names[i]) == 0) a->strategy = i;
    if (a->strategy < 0)
        return glm_err("%s: quantization_config %s.strategy \"%s\" is not supported", file, what, sts);
    if (js_opt_int(o, "group_size", &a->group_size, 1, 1 << 24, file, what)) return -1;
    const cJSON *sym = cJSON_GetObjectItemCaseSensitive(o, "symmetric");
    if (sym && !cJSON_IsNull(sym)) {
        if (!cJSON_IsBool(sym)) return glm_err("%s: quantization_config %s.symmetric must be true or false", file, what);
        a->symmetric = cJSON_IsTrue(sym);
    }
    const cJSON *dy = cJSON_GetObjectItemCaseSensitive(o, "dynamic");
    a->dynamic = cJSON_IsTrue(dy) || (cJSON_IsString(dy) && strcmp(dy->valuestring, "local") == 0);
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(o, "block_structure");
    if (a->strategy == QS_BLOCK) {
        if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 || !cJSON_IsNumber(bs->child) ||
            !cJSON_IsNumber(bs->child->next) || !(bs->child->valuedouble >= 1 && bs->child->valuedouble <= 1 << 20) ||
            !(bs->child->next->valuedouble >= 1 && bs->child->next->valuedouble <= 1 << 20))
            return glm_err("%s: quantization_config %s: strategy \"block\" needs block_structure [rows, cols]", file, what);
        a->block[0] = (int)bs->child->valuedouble, a->block[1] = (int)bs->child->next->valuedouble;
    }
    if (a->strategy == QS_GROUP && a->group_size <= 0)
        return glm_err("%s: quantization_config %s: strategy \"group\" needs a positive group_size", file, what);
    if (is_input) {
        // only what compressed-tensors computes at run time per token (the official FP8 releases, W8A8)
        if (!a->dynamic || a->strategy != QS_TOKEN || !a->symmetric || a->num_bits != 8)
            return glm_err("%s: quantization_config %s: only dynamic symmetric 8-bit per-token activations are "
                           "supported (got %s%s, %d bits, strategy %s)", file, what, a->dynamic ? "dynamic" : "static",
                           a->symmetric ? "" : " asymmetric", a->num_bits, sts);
    } else {
        if (a->dynamic) return glm_err("%s: quantization_config %s: dynamic weight quantisation is not supported", file, what);
        if (a->is_float && a->num_bits != 8)
            return glm_err("%s: quantization_config %s: %d-bit float weights are not supported (FP8 only)", file, what,
                           a->num_bits);
        if (!a->is_float && a->num_bits != 4 && a->num_bits != 8)
            return glm_err("%s: quantization_config %s: %d-bit int weights are not supported (4 or 8)", file, what,
                           a->num_bits);
        if (a->strategy == QS_TOKEN) return glm_err("%s: quantization_config %s: strategy \"token\" for weights", file, what);
        if (a->is_float && !a->symmetric)
            return glm_err("%s: quantization_config %s: asymmetric FP8 weights are not supported", file, what);
    }
    return 0;
}

static int format_code(const char *s) {
    if (strcmp(s, "float-quantized") == 0) return QF_FLOAT;
    if (strcmp(s, "int-quantized") == 0 || strcmp(s, "naive-quantized") == 0) return QF_INT;
    if (strcmp(s, "pack-quantized") == 0) return QF_PACK;
    return -1;
}

// compressed-tensors: format, config_groups{name: {targets, weights, input_activations, output_activations}}, ignore
static int parse_ct(QuantConfig *q, const cJSON *qc, const char *file) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(qc, "format");
    int deffmt = -1;
    if (cJSON_IsString(fmt)) {
        if (strcmp(fmt->valuestring, "dense") == 0) deffmt = -2; // nothing compressed: plain weights
        else if ((deffmt = format_code(fmt->valuestring)) < 0)
            return glm_err("%s: quantization_config format \"%s\" is not supported (float-quantized, int-quantized, "
                           "pack-quantized)", file, fmt->valuestring);
    }
    q->method = deffmt;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(qc, "quantization_status");
    if (cJSON_IsString(st) && strcmp(st->valuestring, "compressed") != 0 && strcmp(st->valuestring, "frozen") != 0)
        return glm_err("%s: quantization_config quantization_status \"%s\" is not a saved checkpoint", file,
                       st->valuestring);
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(qc, "kv_cache_scheme");
    if (kv && !cJSON_IsNull(kv)) return glm_err("%s: quantization_config kv_cache_scheme (quantised KV cache) is not supported", file);
    if (str_list(cJSON_GetObjectItemCaseSensitive(qc, "ignore"), &q->ignore, &q->nignore, file, "ignore")) return -1;
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(qc, "config_groups");
    if (!cJSON_IsObject(groups) || !groups->child)
        return glm_err("%s: quantization_config has no config_groups", file);
    int n = cJSON_GetArraySize(groups);
    if (n > 1024) return glm_err("%s: quantization_config has too many config_groups", file);
    q->groups = xcalloc((size_t)n, sizeof(QuantGroup));
    for (const cJSON *g = groups->child; g; g = g->next) {
        QuantGroup *G = &q->groups[q->ngroups++];
        char what[160];
        snprintf(what, sizeof what, "config_groups.%.100s", g->string ? g->string : "?");
        if (!cJSON_IsObject(g)) return glm_err("%s: quantization_config %s must be an object", file, what);
        if (str_list(cJSON_GetObjectItemCaseSensitive(g, "targets"), &G->targets, &G->ntargets, file, what)) return -1;
        const cJSON *gf = cJSON_GetObjectItemCaseSensitive(g, "format");
        G->format = deffmt;
        if (cJSON_IsString(gf) && (G->format = format_code(gf->valuestring)) < 0)
            return glm_err("%s: quantization_config %s.format \"%s\" is not supported", file, what, gf->valuestring);
        char w1[200], w2[200];
        snprintf(w1, sizeof w1, "%s.weights", what), snprintf(w2, sizeof w2, "%s.input_activations", what);
        if (parse_args(&G->weights, cJSON_GetObjectItemCaseSensitive(g, "weights"), file, w1, 0) ||
            parse_args(&G->input, cJSON_GetObjectItemCaseSensitive(g, "input_activations"), file, w2, 1))
            return -1;
        const cJSON *oa = cJSON_GetObjectItemCaseSensitive(g, "output_activations");
        if (oa && !cJSON_IsNull(oa)) return glm_err("%s: quantization_config %s: output_activations are not supported", file, what);
        if (G->weights.present && G->format < 0)
            return glm_err("%s: quantization_config %s quantises weights but names no format", file, what);
        if (G->weights.present && G->format == QF_FLOAT && !G->weights.is_float)
            return glm_err("%s: quantization_config %s: format float-quantized with int weights", file, what);
        if (G->weights.present && (G->format == QF_INT || G->format == QF_PACK) && G->weights.is_float)
            return glm_err("%s: quantization_config %s: an int format with float weights", file, what);
        if (G->weights.present && G->format == QF_INT && G->weights.num_bits != 8)
            return glm_err("%s: quantization_config %s: int-quantized stores 8-bit weights only", file, what);
    }
    return 0;
}

// transformers FineGrainedFP8Config: quant_method "fp8", weight_block_size [bh, bw], activation_scheme "dynamic"
static int parse_fp8(QuantConfig *q, const cJSON *qc, const char *file) {
    q->method = QF_FP8_BLOCK;
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(qc, "activation_scheme");
    if (cJSON_IsString(as) && strcmp(as->valuestring, "dynamic") != 0)
        return glm_err("%s: quantization_config activation_scheme \"%s\" is not supported (dynamic only)", file,
                       as->valuestring);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(qc, "fmt");
    if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "e4m3") != 0)
        return glm_err("%s: quantization_config fmt \"%s\" is not supported (e4m3 only)", file, fmt->valuestring);
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(qc, "weight_block_size");
    if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 || !cJSON_IsNumber(bs->child) ||
        !cJSON_IsNumber(bs->child->next) || !(bs->child->valuedouble >= 1 && bs->child->valuedouble <= 1 << 20) ||
        !(bs->child->next->valuedouble >= 1 && bs->child->next->valuedouble <= 1 << 20))
        return glm_err("%s: quantization_config (fp8) needs weight_block_size [rows, cols]", file);
    if (str_list(cJSON_GetObjectItemCaseSensitive(qc, "modules_to_not_convert"), &q->ignore, &q->nignore, file,
                 "modules_to_not_convert"))
        return -1;
    q->groups = xcalloc(1, sizeof(QuantGroup));
    q->ngroups = 1;
    QuantGroup *G = &q->groups[0];
    G->targets = xcalloc(1, sizeof(char *));
    G->targets[0] = qstrdup("Linear");
    G->ntargets = 1;
    G->format = QF_FP8_BLOCK;
    G->weights = (QuantArgs){.present = 1, .num_bits = 8, .is_float = 1, .strategy = QS_BLOCK, .symmetric = 1,
                             .block = {(int)bs->child->valuedouble, (int)bs->child->next->valuedouble}};
    G->input = (QuantArgs){.present = 1, .num_bits = 8, .is_float = 1, .strategy = QS_GROUP, .symmetric = 1,
                           .dynamic = 1, .group_size = G->weights.block[1]};
    return 0;
}

int quant_config_parse(QuantConfig **out, const char *json, size_t len, const char *file) {
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return glm_err("%s: invalid JSON", file);
    int rc = 0;
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (!qc) {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
        if (cJSON_IsObject(tc)) qc = cJSON_GetObjectItemCaseSensitive(tc, "quantization_config");
    }
    if (qc && !cJSON_IsNull(qc)) {
        QuantConfig *q = xcalloc(1, sizeof *q);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(qc, "quant_method");
        if (!cJSON_IsObject(qc)) rc = glm_err("%s: quantization_config must be an object", file);
        else if (!cJSON_IsString(m)) rc = glm_err("%s: quantization_config has no quant_method", file);
        else if (strcmp(m->valuestring, "compressed-tensors") == 0) rc = parse_ct(q, qc, file);
        else if (strcmp(m->valuestring, "fp8") == 0) rc = parse_fp8(q, qc, file);
        else
            rc = glm_err("%s: quantization_config quant_method \"%s\" is not supported (compressed-tensors, fp8)", file,
                         m->valuestring);
        if (rc) quant_config_free(q);
        else *out = q;
    }
    cJSON_Delete(root);
    return rc;
}

void quant_config_free(QuantConfig *q) {
    if (!q) return;
    for (int g = 0; g < q->ngroups; g++) {
        for (int i = 0; i < q->groups[g].ntargets; i++) free(q->groups[g].targets[i]);
        free(q->groups[g].targets);
    }
    free(q->groups);
    for (int i = 0; i < q->nignore; i++) free(q->ignore[i]);
    free(q->ignore);
    free(q);
}

// ---------------------------------------------------------------------------- matching

int quant_name_match(const char *name, const char *target) {
    if (strncmp(target, "re:", 3) != 0) return strcmp(name, target) == 0;
    // re.match(pattern, name): anchored at the start, not at the end
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(target + 3), PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED | PCRE2_UTF, &err,
                                   &off, NULL);
    if (!re) return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (mc) pcre2_set_match_limit(mc, 100000), pcre2_set_depth_limit(mc, 10000); // a hostile pattern cannot hang us
    int rc = md && mc ? pcre2_match(re, (PCRE2_SPTR)name, strlen(name), 0, 0, md, mc) : -1;
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

// the module matches target: its class (every weight bound through here is an nn.Linear) or its name (HF 5.x name
// or the name the file stores it under)
static int target_match(const char *mod, const char *alias, const char *target) {
    return strcmp(target, "Linear") == 0 || quant_name_match(mod, target) || (alias && quant_name_match(alias, target));
}

// ---------------------------------------------------------------------------- binding

static void shape_str(char *buf, size_t n, const STensor *t) {
    buf[0] = 0;
    for (int i = 0; i < t->ndim; i++) snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld", i ? "," : "", (long long)t->shape[i]);
}

// the tensor "<mod>.<suffix>" (HF or released alias name), or NULL
static const STensor *find_part(const Checkpoint *ck, const char *mod, const char *suffix) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s.%s", mod, suffix);
    return checkpoint_find(ck, nm);
}

// the scale table must be [srows, scols] (per tensor: one element, any of [], [1], [1, 1])
static int check_scale(const Checkpoint *ck, const STensor *s, const char *nm, int64_t srows, int64_t scols, int per_tensor) {
    if (s->dtype != DT_BF16 && s->dtype != DT_F16 && s->dtype != DT_F32)
        return glm_err("%s: tensor '%s' has dtype %s (expected BF16, F16 or F32 scales)", ck->dir, nm, dtype_name[s->dtype]);
    int64_t numel = 1;
    for (int i = 0; i < s->ndim; i++) numel *= s->shape[i];
    int ok;
    if (per_tensor) ok = numel == 1;
    else ok = (s->ndim == 2 && s->shape[0] == srows && s->shape[1] == scols) ||
              (s->ndim == 1 && scols == 1 && s->shape[0] == srows);
    if (!ok) {
        char got[128];
        shape_str(got, sizeof got, s);
        return glm_err("%s: tensor '%s' has shape [%s] but the scheme needs [%lld,%lld]", ck->dir, nm, got,
                       (long long)srows, (long long)scols);
    }
    // every scale finite (a NaN or infinite one would turn its rows into NaN / garbage): one pass over the scales,
    // ~1/64 of the weights' bytes or less
    const uint8_t *d = s->data;
    for (int64_t i = 0; i < numel; i++) {
        uint32_t u = 0;
        int bad;
        if (s->dtype == DT_F32) memcpy(&u, d + 4 * i, 4), bad = (u & 0x7f800000u) == 0x7f800000u;
        else {
            memcpy(&u, d + 2 * i, 2);
            bad = s->dtype == DT_BF16 ? (u & 0x7f80u) == 0x7f80u : (u & 0x7c00u) == 0x7c00u;
        }
        if (bad)
            return glm_err("%s: tensor '%s' has a non-finite scale (%s) at element %lld", ck->dir, nm,
                           (s->dtype == DT_F32 ? (u & 0x7fffffu) : s->dtype == DT_BF16 ? (u & 0x7fu) : (u & 0x3ffu)) ? "NaN" : "infinity",
                           (long long)i);
    }
    return 0;
}

// the config group that quantises module mod (its first matching group, as compressed-tensors applies them); NULL +
// error when none or when the ignore list names it
static const QuantGroup *scheme_for(const Checkpoint *ck, const char *mod, const char *alias, const char *tname) {
    const QuantConfig *q = ck->quant;
    for (int i = 0; i < q->nignore; i++)
        if (quant_name_match(mod, q->ignore[i]) || (alias && quant_name_match(alias, q->ignore[i]))) {
            glm_err("%s: tensor '%s' is quantised but quantization_config's ignore list names its module ('%s')",
                    ck->dir, tname, q->ignore[i]);
            return NULL;
        }
    for (int g = 0; g < q->ngroups; g++) {
        const QuantGroup *G = &q->groups[g];
        if (!G->weights.present) continue;
        for (int i = 0; i < G->ntargets; i++)
            if (target_match(mod, alias, G->targets[i])) return G;
    }
    glm_err("%s: tensor '%s' is quantised but no quantization_config group quantises module '%s'", ck->dir, tname, mod);
    return NULL;
}

int quant_tensor(const Checkpoint *ck, Tensor *out, const char *name, int ndim, const int64_t *shape) {
    size_t nl = strlen(name);
    if (!ck->quant || ndim != 2 || nl < 8 || nl > 500 || strcmp(name + nl - 7, ".weight") != 0)
        return checkpoint_tensor(ck, out, name, ndim, shape);
    char mod[512];
    memcpy(mod, name, nl - 7);
    mod[nl - 7] = 0;
    const int is_linear = !strstr(mod, "embed_tokens") && !strstr(mod, "position_embedding") &&
                          !(nl >= 16 && strcmp(mod + strlen(mod) - 9, ".mlp.gate") == 0);
    const STensor *w = checkpoint_find(ck, name), *wp = find_part(ck, mod, "weight_packed");
    const STensor *sc = find_part(ck, mod, "weight_scale"), *si = find_part(ck, mod, "weight_scale_inv");
    // a plain weight: bf16 / f16 / f32 and nothing beside it
    if (w && (w->dtype == DT_BF16 || w->dtype == DT_F16 || w->dtype == DT_F32) && !wp) {
        if (sc || si)
            return glm_err("%s: tensor '%s' is %s but has a %s beside it (a quantised weight is FP8 or int8)", ck->dir,
                           name, dtype_name[w->dtype], sc ? "weight_scale" : "weight_scale_inv");
        return checkpoint_tensor(ck, out, name, ndim, shape);
    }
    if (!w && !wp) return glm_err("%s: missing tensor '%s' (nor '%s.weight_packed')", ck->dir, name, mod);
    const STensor *q = w ? w : wp;
    char qname[600];
    snprintf(qname, sizeof qname, "%s.%s", mod, w ? "weight" : "weight_packed");
    if (!is_linear)
        return glm_err("%s: tensor '%s' is quantised (%s) but HF's module is not a Linear (only Linear weights are)",
                       ck->dir, qname, dtype_name[q->dtype]);
    if (w && wp) return glm_err("%s: module '%s' has both a weight and a weight_packed", ck->dir, mod);
    // the module name as HF 5.x names it and as the file stores it
    char alias[512];
    const char *al = NULL;
    size_t ql = strlen(q->name);
    const size_t sl = w ? 7 : 14; // ".weight" / ".weight_packed"
    if (ql > sl && ql - sl < sizeof alias && strncmp(q->name, mod, ql - sl) != 0) {
        memcpy(alias, q->name, ql - sl);
        alias[ql - sl] = 0;
        al = alias;
    }
    const QuantGroup *G = scheme_for(ck, mod, al, qname);
    if (!G) return -1;
    const QuantArgs *a = &G->weights;
    const int64_t O = shape[0], K = shape[1];
    // (the scale layout divides by the row and column counts)
    if (O < 1 || K < 1)
        return glm_err("%s: tensor '%s' is quantised but the config gives it no elements ([%lld,%lld])", ck->dir, qname,
                       (long long)O, (long long)K);
    memset(out, 0, sizeof *out);
    out->rows = O, out->cols = K;
    // storage per format
    if (G->format == QF_PACK) {
        if (!wp) return glm_err("%s: module '%s' is pack-quantized but has no weight_packed (has %s weight)", ck->dir, mod,
                                dtype_name[q->dtype]);
        const int64_t words = (K * a->num_bits + 31) / 32;
        if (wp->dtype != DT_I32 || wp->ndim != 2 || wp->shape[0] != O || wp->shape[1] != words) {
            char got[128];
            shape_str(got, sizeof got, wp);
            return glm_err("%s: tensor '%s' is %s [%s] but %d-bit packing of [%lld,%lld] needs I32 [%lld,%lld]", ck->dir,
                           qname, dtype_name[wp->dtype], got, a->num_bits, (long long)O, (long long)K, (long long)O,
                           (long long)words);
        }
        const STensor *ws = find_part(ck, mod, "weight_shape");
        if (!ws) return glm_err("%s: missing tensor '%s.weight_shape' (pack-quantized)", ck->dir, mod);
        if ((ws->dtype != DT_I64 && ws->dtype != DT_I32) || ws->ndim != 1 || ws->shape[0] != 2)
            return glm_err("%s: tensor '%s.weight_shape' must be an I64 or I32 [2]", ck->dir, mod);
        int64_t s0, s1;
        if (ws->dtype == DT_I64) {
            int64_t v[2];
            memcpy(v, ws->data, sizeof v);
            s0 = v[0], s1 = v[1];
        } else {
            int32_t v[2];
            memcpy(v, ws->data, sizeof v);
            s0 = v[0], s1 = v[1];
        }
        if (s0 != O || s1 != K)
            return glm_err("%s: tensor '%s.weight_shape' is [%lld,%lld] but the config needs [%lld,%lld]", ck->dir, mod,
                           (long long)s0, (long long)s1, (long long)O, (long long)K);
        out->dtype = a->num_bits == 4 ? DT_Q4 : DT_Q8;
        out->ld = words * 4;
    } else {
        if (!w) return glm_err("%s: module '%s' has a weight_packed but the format is not pack-quantized", ck->dir, mod);
        const DType want = G->format == QF_INT ? DT_I8 : DT_F8_E4M3;
        if (w->dtype != want)
            return glm_err("%s: tensor '%s' has dtype %s (the scheme stores %s)", ck->dir, qname, dtype_name[w->dtype],
                           dtype_name[want]);
        if (w->ndim != 2 || w->shape[0] != O || w->shape[1] != K) {
            char got[128];
            shape_str(got, sizeof got, w);
            return glm_err("%s: tensor '%s' has shape [%s] but the config needs [%lld,%lld]", ck->dir, qname, got,
                           (long long)O, (long long)K);
        }
        out->dtype = want;
        out->ld = K;
    }
    out->data = q->data;
    // scales
    const char *sname = G->format == QF_FP8_BLOCK ? "weight_scale_inv" : "weight_scale";
    const STensor *s = G->format == QF_FP8_BLOCK ? si : sc;
    char snm[600];
    snprintf(snm, sizeof snm, "%s.%s", mod, sname);
    if (!s) return glm_err("%s: missing tensor '%s'", ck->dir, snm);
    int per_tensor = 0;
    switch (a->strategy) {
    case QS_TENSOR: out->group = K, out->block_rows = O, per_tensor = 1; break;
    case QS_CHANNEL: out->group = K, out->block_rows = 1; break;
    case QS_GROUP:
        if (K % a->group_size)
            return glm_err("%s: tensor '%s': group_size %d does not divide its %lld columns", ck->dir, qname,
                           a->group_size, (long long)K);
        out->group = a->group_size, out->block_rows = 1;
        break;
    default: // QS_BLOCK
        out->group = a->block[1], out->block_rows = a->block[0];
    }
    out->scale_cols = (K + out->group - 1) / out->group;
    const int64_t srows = (O + out->block_rows - 1) / out->block_rows;
    if (check_scale(ck, s, snm, srows, out->scale_cols, per_tensor)) return -1;
    out->scale = s->data, out->scale_dtype = s->dtype;
    // zero points: pack-quantized asymmetric group / channel, packed along the output dimension
    const STensor *z = find_part(ck, mod, "weight_zero_point");
    if (!a->symmetric) {
        if (G->format != QF_PACK || (a->strategy != QS_GROUP && a->strategy != QS_CHANNEL))
            return glm_err("%s: module '%s': asymmetric weights are supported packed (pack-quantized) per group or "
                           "channel only", ck->dir, mod);
        const int64_t zr = (O * a->num_bits + 31) / 32;
        if (!z) return glm_err("%s: missing tensor '%s.weight_zero_point' (asymmetric scheme)", ck->dir, mod);
        if (z->dtype != DT_I32 || z->ndim != 2 || z->shape[0] != zr || z->shape[1] != out->scale_cols) {
            char got[128];
            shape_str(got, sizeof got, z);
            return glm_err("%s: tensor '%s.weight_zero_point' is %s [%s] but the scheme needs I32 [%lld,%lld]", ck->dir,
                           mod, dtype_name[z->dtype], got, (long long)zr, (long long)out->scale_cols);
        }
        out->zero = (const int32_t *)z->data;
    } else if (z) {
        // symmetric: compressed-tensors drops the zero point when saving; one that is all zero is harmless
        int nz = 0;
        for (size_t i = 0; i < z->nbytes; i++) nz |= ((const uint8_t *)z->data)[i];
        if (nz) return glm_err("%s: tensor '%s.weight_zero_point' is not zero but the scheme is symmetric", ck->dir, mod);
    }
    // activation ordering: honoured only when it is the identity grouping (g_idx[c] == c / group_size)
    const STensor *gi = find_part(ck, mod, "weight_g_idx");
    if (gi) {
        if (gi->dtype != DT_I32 || gi->ndim != 1 || gi->shape[0] != K) {
            char sh[64];
            shape_str(sh, sizeof sh, gi);
            return glm_err("%s: tensor '%s.weight_g_idx' is %s [%s]; expected I32 [%lld] (one group index per input column)",
                           ck->dir, mod, dtype_name[gi->dtype], sh, (long long)K);
        }
        int ok = a->strategy == QS_GROUP;
        for (int64_t c = 0; ok && c < K; c++) {
            int32_t v;
            memcpy(&v, (const uint8_t *)gi->data + c * 4, 4);
            if (v < 0 || v >= (K + a->group_size - 1) / a->group_size)
                return glm_err("%s: tensor '%s.weight_g_idx': column %lld names group %d, outside the %lld groups", ck->dir,
                               mod, (long long)c, (int)v, (long long)((K + a->group_size - 1) / a->group_size));
            ok = v == c / a->group_size;
        }
        if (!ok)
            return glm_err("%s: tensor '%s.weight_g_idx': activation ordering (actorder \"group\") is not supported; "
                           "export without actorder or with actorder \"weight\"", ck->dir, mod);
    }
    // activations
    const QuantArgs *in = &G->input;
    if (!in->present) out->act = ACT_NONE;
    else if (G->format == QF_FP8_BLOCK) {
        if (a->block[1] != in->group_size) return glm_err("%s: module '%s': activation group differs from the block", ck->dir, mod);
        out->act = ACT_FP8_GROUP;
    } else out->act = in->is_float ? ACT_FP8_TOKEN : ACT_INT8_TOKEN;
    if (!quant_act_experts && strstr(mod, ".mlp.experts.")) out->act = ACT_NONE; // transformers 5's fused experts
    return 0;
}
