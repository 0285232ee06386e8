// SPDX-License-Identifier: MIT
// test_quant_config.c - quantization_config parsing and the binding of quantised tensors (quant_config.c): every
// supported layout binds with the right scale table / group / zero points / activation mode; malformed folders
// (wrong scale shape, a group that does not divide, a bad dtype, a missing weight_shape, activation ordering, a
// quantised tensor the ignore list names, ...) fail with one line naming the tensor. Checkpoints are built in memory.
#include "../quant_config.h"
#include "test_util.h"

#include <string.h>

typedef struct {
    const char *name, *dtype; // tensor name, safetensors dtype
    int ndim;
    int64_t shape[2];
    const void *data; // NULL: zeros
} TSpec;

static uint8_t *g_buf;
static SFile g_file;
static Checkpoint g_ck;

// a checkpoint of the given tensors with config.json text cfg; returns 0 or -1 (config error in glm_errmsg)
static int make_ck(const TSpec *t, int n, const char *cfg) {
    static const char *dts[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3"};
    static const int dsz[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 1};
    char hdr[8192] = "{";
    size_t off = 0, sizes[32];
    for (int i = 0; i < n; i++) {
        int es = 0;
        for (int d = 0; d < 11; d++)
            if (strcmp(t[i].dtype, dts[d]) == 0) es = dsz[d];
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        sizes[i] = numel * (size_t)es;
        char one[512], shp[64] = "";
        for (int d = 0; d < t[i].ndim; d++) snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        snprintf(one, sizeof one, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}", i ? "," : "",
                 t[i].name, t[i].dtype, shp, off, off + sizes[i]);
        strcat(hdr, one);
        off += sizes[i];
    }
    strcat(hdr, "}");
    size_t hl = strlen(hdr);
    free(g_buf);
    g_buf = calloc(1, 8 + hl + off + 1);
    for (int b = 0; b < 8; b++) g_buf[b] = (uint8_t)((uint64_t)hl >> (8 * b));
    memcpy(g_buf + 8, hdr, hl);
    size_t o = 8 + hl;
    for (int i = 0; i < n; i++) {
        if (t[i].data) memcpy(g_buf + o, t[i].data, sizes[i]);
        o += sizes[i];
    }
    sf_close(&g_file);
    quant_config_free(g_ck.quant);
    memset(&g_ck, 0, sizeof g_ck);
    strcpy(g_ck.dir, "ck");
    if (sf_parse(&g_file, g_buf, 8 + hl + off, "ck/model.safetensors")) {
        printf("# sf_parse: %s\n", glm_errmsg);
        return -1;
    }
    g_ck.files = &g_file, g_ck.nfiles = 1;
    return quant_config_parse(&g_ck.quant, cfg, strlen(cfg), "ck/config.json");
}

static const char *Q = "model.language_model.layers.0.self_attn.q_proj";
#define W8x32 (int64_t[]){8, 32}

// bind q_proj [8, 32]
static int bind_q(Tensor *t) {
    char nm[256];
    snprintf(nm, sizeof nm, "%s.weight", Q);
    return quant_tensor(&g_ck, t, nm, 2, W8x32);
}

// config with one group: weights args, input args (or null), format, ignore list
static char *cfg(const char *fmt, const char *w, const char *in, const char *ignore) {
    static char b[4096];
    snprintf(b, sizeof b,
             "{\"quantization_config\":{\"quant_method\":\"compressed-tensors\",\"format\":\"%s\","
             "\"config_groups\":{\"group_0\":{\"targets\":[\"Linear\"],\"weights\":%s,\"input_activations\":%s}},"
             "\"ignore\":%s}}",
             fmt, w, in, ignore);
    return b;
}

static const char *FP8W = "{\"num_bits\":8,\"type\":\"float\",\"strategy\":\"channel\",\"symmetric\":true,\"dynamic\":false}";
static const char *FP8A = "{\"num_bits\":8,\"type\":\"float\",\"strategy\":\"token\",\"symmetric\":true,\"dynamic\":true}";
static const char *I4G16 = "{\"num_bits\":4,\"type\":\"int\",\"strategy\":\"group\",\"group_size\":16,\"symmetric\":true}";
static const char *I4G16A = "{\"num_bits\":4,\"type\":\"int\",\"strategy\":\"group\",\"group_size\":16,\"symmetric\":false}";

static char nbuf[16][256]; // tensor names of the current spec (reused: build a spec right before make_ck)
static const char *nm(int i, const char *suffix) {
    snprintf(nbuf[i], sizeof nbuf[i], "%s.%s", Q, suffix);
    return nbuf[i];
}

// the error is one line and mentions every needle
static int err_has(const char *a, const char *b) {
    return !strchr(glm_errmsg, '\n') && strstr(glm_errmsg, a) && (!b || strstr(glm_errmsg, b));
}

int main(void) {
    Tensor t;
    const int64_t wshape[2] = {8, 32}, wshape_bad[2] = {8, 40};
    // ---- good layouts
    TSpec fp8[] = {{nm(0, "weight"), "F8_E4M3", 2, {8, 32}, NULL}, {nm(1, "weight_scale"), "BF16", 2, {8, 1}, NULL}};
    CHECK(make_ck(fp8, 2, cfg("float-quantized", FP8W, FP8A, "[\"lm_head\"]")) == 0 && bind_q(&t) == 0 &&
              t.dtype == DT_F8_E4M3 && t.group == 32 && t.block_rows == 1 && t.scale_cols == 1 && t.ld == 32 &&
              t.act == ACT_FP8_TOKEN && t.scale_dtype == DT_BF16 && is_quantised(&t),
          "FP8 per channel + dynamic FP8 tokens binds (%s)", glm_errmsg);
    TSpec q4[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape},
                  {nm(2, "weight_scale"), "BF16", 2, {8, 2}, NULL}};
    CHECK(make_ck(q4, 3, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == 0 && t.dtype == DT_Q4 &&
              t.group == 16 && t.scale_cols == 2 && t.ld == 16 && t.act == ACT_NONE && !t.zero,
          "int4 group 16 (pack-quantized) binds (%s)", glm_errmsg);
    TSpec q4z[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape},
                   {nm(2, "weight_scale"), "F32", 2, {8, 2}, NULL}, {nm(3, "weight_zero_point"), "I32", 2, {1, 2}, NULL}};
    CHECK(make_ck(q4z, 4, cfg("pack-quantized", I4G16A, "null", "[]")) == 0 && bind_q(&t) == 0 && t.zero != NULL,
          "int4 asymmetric binds its packed zero points (%s)", glm_errmsg);
    TSpec blk[] = {{nm(0, "weight"), "F8_E4M3", 2, {8, 32}, NULL}, {nm(1, "weight_scale_inv"), "F32", 2, {1, 2}, NULL}};
    const char *fp8cfg = "{\"quantization_config\":{\"quant_method\":\"fp8\",\"activation_scheme\":\"dynamic\","
                         "\"fmt\":\"e4m3\",\"weight_block_size\":[8,16]}}";
    CHECK(make_ck(blk, 2, fp8cfg) == 0 && bind_q(&t) == 0 && t.group == 16 && t.block_rows == 8 && t.scale_cols == 2 &&
              t.act == ACT_FP8_GROUP,
          "block FP8 (quant_method fp8, weight_scale_inv) binds (%s)", glm_errmsg);
    TSpec plain[] = {{nm(0, "weight"), "BF16", 2, {8, 32}, NULL}};
    CHECK(make_ck(plain, 1, cfg("float-quantized", FP8W, FP8A, "[]")) == 0 && bind_q(&t) == 0 && !is_quantised(&t) &&
              t.dtype == DT_BF16,
          "a bf16 weight in a quantised folder binds as bf16 (the tensors decide)");
    // GLM-4.5V-FP8's ignore list: attn.qkv_proj named, the bf16 tensors are attn.qkv
    TSpec qkv[] = {{"model.visual.blocks.0.attn.qkv.weight", "BF16", 2, {8, 32}, NULL}};
    CHECK(make_ck(qkv, 1, cfg("float-quantized", FP8W, FP8A, "[\"model.visual.blocks.0.attn.qkv_proj\"]")) == 0 &&
              quant_tensor(&g_ck, &t, "model.visual.blocks.0.attn.qkv.weight", 2, W8x32) == 0 && !is_quantised(&t),
          "ignore list names qkv_proj, the tensor is the bf16 attn.qkv: bound as bf16");
    int32_t gidx[32];
    for (int c = 0; c < 32; c++) gidx[c] = c / 16;
    TSpec q4g[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape},
                   {nm(2, "weight_scale"), "BF16", 2, {8, 2}, NULL}, {nm(3, "weight_g_idx"), "I32", 1, {32}, gidx}};
    CHECK(make_ck(q4g, 4, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == 0,
          "an identity weight_g_idx is accepted (%s)", glm_errmsg);
    // ---- malformed tensors: one line naming the tensor
    TSpec bad_scale[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape},
                         {nm(2, "weight_scale"), "BF16", 2, {8, 3}, NULL}};
    CHECK(make_ck(bad_scale, 3, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("q_proj.weight_scale' has shape [8,3]", "[8,2]"),
          "wrong scale shape: %s", glm_errmsg);
    const char *I4G24 = "{\"num_bits\":4,\"type\":\"int\",\"strategy\":\"group\",\"group_size\":24,\"symmetric\":true}";
    CHECK(make_ck(q4, 3, cfg("pack-quantized", I4G24, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("group_size 24 does not divide", "q_proj.weight_packed"),
          "group that does not divide: %s", glm_errmsg);
    TSpec i8[] = {{nm(0, "weight"), "I8", 2, {8, 32}, NULL}, {nm(1, "weight_scale"), "BF16", 2, {8, 1}, NULL}};
    CHECK(make_ck(i8, 2, cfg("float-quantized", FP8W, FP8A, "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("q_proj.weight' has dtype I8", "F8_E4M3"),
          "bad dtype: %s", glm_errmsg);
    TSpec noshape[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(2, "weight_scale"), "BF16", 2, {8, 2}, NULL}};
    CHECK(make_ck(noshape, 2, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("missing tensor", "q_proj.weight_shape"),
          "missing weight_shape: %s", glm_errmsg);
    TSpec badshape[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape_bad},
                        {nm(2, "weight_scale"), "BF16", 2, {8, 2}, NULL}};
    CHECK(make_ck(badshape, 3, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("weight_shape' is [8,40]", NULL),
          "weight_shape that disagrees: %s", glm_errmsg);
    TSpec badpack[] = {{nm(0, "weight_packed"), "I32", 2, {8, 5}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape},
                       {nm(2, "weight_scale"), "BF16", 2, {8, 2}, NULL}};
    CHECK(make_ck(badpack, 3, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("q_proj.weight_packed' is I32 [8,5]", "[8,4]"),
          "weight_packed of the wrong width: %s", glm_errmsg);
    TSpec noscale[] = {{nm(0, "weight"), "F8_E4M3", 2, {8, 32}, NULL}};
    CHECK(make_ck(noscale, 1, cfg("float-quantized", FP8W, FP8A, "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("missing tensor", "q_proj.weight_scale"),
          "missing weight_scale: %s", glm_errmsg);
    TSpec badsdt[] = {{nm(0, "weight"), "F8_E4M3", 2, {8, 32}, NULL}, {nm(1, "weight_scale"), "I32", 2, {8, 1}, NULL}};
    CHECK(make_ck(badsdt, 2, cfg("float-quantized", FP8W, FP8A, "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("weight_scale' has dtype I32", NULL),
          "scale of a bad dtype: %s", glm_errmsg);
    gidx[3] = 1;
    TSpec q4p[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape},
                   {nm(2, "weight_scale"), "BF16", 2, {8, 2}, NULL}, {nm(3, "weight_g_idx"), "I32", 1, {32}, gidx}};
    CHECK(make_ck(q4p, 4, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("weight_g_idx", "activation ordering"),
          "activation ordering (a permuting g_idx): %s", glm_errmsg);
    uint16_t nan_scale[16] = {0}, inf_scale[16] = {0};
    nan_scale[5] = 0x7fc0, inf_scale[15] = 0x7f80;
    TSpec q4n[] = {{nm(0, "weight_packed"), "I32", 2, {8, 4}, NULL}, {nm(1, "weight_shape"), "I64", 1, {2}, wshape},
                   {nm(2, "weight_scale"), "BF16", 2, {8, 2}, nan_scale}};
    CHECK(make_ck(q4n, 3, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("weight_scale' has a non-finite scale (NaN) at element 5", NULL),
          "a NaN scale: %s", glm_errmsg);
    q4n[2].data = inf_scale;
    CHECK(make_ck(q4n, 3, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("weight_scale' has a non-finite scale (infinity) at element 15", NULL),
          "an infinite scale: %s", glm_errmsg);
    q4p[3].shape[0] = 31; // one index short
    CHECK(make_ck(q4p, 4, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("weight_g_idx' is I32 [31]; expected I32 [32]", NULL),
          "a g_idx of the wrong length: %s", glm_errmsg);
    q4p[3].shape[0] = 32, gidx[3] = 2; // group 2 of 2
    CHECK(make_ck(q4p, 4, cfg("pack-quantized", I4G16, "null", "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("column 3 names group 2, outside the 2 groups", NULL),
          "a g_idx naming a group that does not exist: %s", glm_errmsg);
    CHECK(make_ck(fp8, 2, cfg("float-quantized", FP8W, FP8A, "[\"re:.*self_attn.*\"]")) == 0 && bind_q(&t) == -1 &&
              err_has("ignore list", "q_proj.weight"),
          "quantised tensor of an ignored module: %s", glm_errmsg);
    TSpec bias_scale[] = {{nm(0, "weight"), "BF16", 2, {8, 32}, NULL}, {nm(1, "weight_scale"), "BF16", 2, {8, 1}, NULL}};
    CHECK(make_ck(bias_scale, 2, cfg("float-quantized", FP8W, FP8A, "[]")) == 0 && bind_q(&t) == -1 &&
              err_has("q_proj.weight' is BF16 but has a weight_scale", NULL),
          "bf16 weight with a scale: %s", glm_errmsg);
    TSpec emb[] = {{"model.language_model.embed_tokens.weight", "F8_E4M3", 2, {8, 32}, NULL},
                   {"model.language_model.embed_tokens.weight_scale", "BF16", 2, {8, 1}, NULL}};
    CHECK(make_ck(emb, 2, cfg("float-quantized", FP8W, FP8A, "[]")) == 0 &&
              quant_tensor(&g_ck, &t, "model.language_model.embed_tokens.weight", 2, W8x32) == -1 &&
              err_has("embed_tokens.weight' is quantised", "not a Linear"),
          "quantised embedding refused: %s", glm_errmsg);
    const char *G2 = "{\"quantization_config\":{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\","
                     "\"config_groups\":{\"g\":{\"targets\":[\"re:.*mlp.*\"],\"weights\":{\"num_bits\":8,\"type\":"
                     "\"float\",\"strategy\":\"channel\"}}}}}";
    CHECK(make_ck(fp8, 2, G2) == 0 && bind_q(&t) == -1 && err_has("no quantization_config group", "q_proj"),
          "quantised tensor no group targets: %s", glm_errmsg);
    // ---- malformed configs
    TSpec none[] = {{"x", "F32", 1, {1}, NULL}};
    CHECK(make_ck(none, 1, cfg("float-quantized", FP8W, "{\"num_bits\":8,\"type\":\"float\",\"strategy\":\"tensor\","
                                                      "\"dynamic\":false}", "[]")) == -1 &&
              err_has("only dynamic symmetric 8-bit per-token", "input_activations"),
          "static activation scales refused: %s", glm_errmsg);
    CHECK(make_ck(none, 1, "{\"quantization_config\":{\"quant_method\":\"gptq\",\"bits\":4}}") == -1 &&
              err_has("quant_method \"gptq\" is not supported", NULL),
          "unknown quant_method refused: %s", glm_errmsg);
    CHECK(make_ck(none, 1, cfg("float-quantized", "{\"num_bits\":3,\"type\":\"int\",\"strategy\":\"channel\"}", "null",
                               "[]")) == -1 && err_has("3-bit", NULL),
          "3-bit weights refused: %s", glm_errmsg);
    CHECK(make_ck(none, 1, cfg("marlin-24", FP8W, "null", "[]")) == -1 && err_has("format \"marlin-24\"", NULL),
          "unknown format refused: %s", glm_errmsg);
    CHECK(make_ck(none, 1, "{\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[128]}}") == -1 &&
              err_has("weight_block_size", NULL),
          "block FP8 without a 2-D block refused: %s", glm_errmsg);
    CHECK(make_ck(none, 1, cfg("float-quantized", FP8W, FP8A, "[\"lm_head\", \"re:model.(visual\"]")) == -1 &&
              err_has("\"re:model.(visual\" is not a valid regular expression", "ignore"),
          "an ignore pattern that does not compile refused (it would match nothing): %s", glm_errmsg);
    CHECK(make_ck(none, 1, "{\"text_config\":{}}") == 0 && g_ck.quant == NULL, "no quantization_config: plain folder");
    // ---- names as compressed-tensors matches them (re.match: anchored at the start only)
    CHECK(quant_name_match("model.language_model.layers.1.mlp.gate", "re:.*mlp.gate$") &&
              !quant_name_match("model.language_model.layers.1.mlp.gate_proj", "re:.*mlp.gate$") &&
              quant_name_match("model.visual.blocks.0.attn.qkv", "re:model.visual") &&
              !quant_name_match("x.model.visual", "re:model.visual") && quant_name_match("lm_head", "lm_head") &&
              !quant_name_match("lm_head2", "lm_head") && !quant_name_match("a", "re:("),
          "target / ignore matching (exact, re.match, a bad pattern matches nothing)");
    sf_close(&g_file);
    quant_config_free(g_ck.quant);
    free(g_buf);
    return test_done();
}
