// SPDX-License-Identifier: MIT
// test_gguf.c - the GGUF reader (gguf.c) and ggml dequantisation / matvec (ggml_quants.c) against gguf-py: the files
// and references in tests/data/gguf/ are written by tests/gguf/make_gguf_cases.py (gguf-py's GGUFWriter, its
// GGUFReader's view of the metadata and tensor infos, gguf.quants.dequantize of every tensor). Checks:
//   metadata of every value type (and the typed getters), tensor infos, dequantised values bit for bit;
//   gq_matvec on every instruction set and thread count = gq_matvec_naive = the 16-lane sum of gguf-py's values;
//   malformed files (built here byte by byte) and every truncation fail with one line, FIFOs are refused.
#include "../ggml_quants.h"
#include "../gguf.h"
#include "../gguf_map.h"
#include "../ops.h"
#include "../quant.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// the whole file path, or NULL; *n = its size
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static uint32_t type_id(const char *name) {
    for (uint32_t t = 0; t < GGUF_TYPE_COUNT; t++)
        if (strcmp(gguf_type_name(t), name) == 0) return t;
    return 99;
}

// does the array value a (element type sub) equal the JSON list j? (recursive for nested arrays)
static int arr_equal(const GGUFValue *a, const char *sub, const cJSON *j) {
    if (a->type != GGUF_TYPE_ARRAY || a->arr_type != type_id(sub)) return 0;
    if ((int)a->n != cJSON_GetArraySize(j)) return 0;
    uint64_t i = 0;
    for (const cJSON *e = j->child; e; e = e->next, i++) {
        switch (a->arr_type) {
        case GGUF_TYPE_STRING: {
            uint64_t len;
            const char *s = gguf_arr_str(a, i, &len);
            if (!cJSON_IsString(e) || strlen(e->valuestring) != len || memcmp(s, e->valuestring, len)) return 0;
            break;
        }
        case GGUF_TYPE_ARRAY: {
            const GGUFValue *s = gguf_arr_sub(a, i);
            const cJSON *st = cJSON_GetObjectItem(e, "sub_type"), *it = cJSON_GetObjectItem(e, "items");
            if (!s || !st || !it || !arr_equal(s, st->valuestring, it)) return 0;
            break;
        }
        case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64: {
            double d;
            if (gguf_arr_f64(a, i, &d) || d != e->valuedouble) return 0;
            break;
        }
        case GGUF_TYPE_BOOL: {
            int64_t v;
            if (gguf_arr_int(a, i, &v) || v != cJSON_IsTrue(e)) return 0;
            break;
        }
        case GGUF_TYPE_UINT64: { // may exceed int64 and double: compare the printed value
            const uint8_t *p = a->p + 8 * i;
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = u << 8 | p[b];
            if (fabs((double)u - e->valuedouble) > 0) return 0;
            break;
        }
        default: {
            int64_t v;
            if (gguf_arr_int(a, i, &v) || (double)v != e->valuedouble) return 0;
        }
        }
    }
    return 1;
}

// does a scalar value equal JSON e? (64-bit integers through their decimal text: cJSON keeps numbers as doubles)
static int scalar_equal(const GGUFKV *kv, const cJSON *e, const char *json_text) {
    const GGUFValue *v = &kv->v;
    switch (v->type) {
    case GGUF_TYPE_STRING: return cJSON_IsString(e) && strcmp(kv->str, e->valuestring) == 0 && strlen(kv->str) == v->n;
    case GGUF_TYPE_BOOL: return (int)v->num.u == cJSON_IsTrue(e);
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64: return v->num.f == e->valuedouble;
    case GGUF_TYPE_UINT8: case GGUF_TYPE_UINT16: case GGUF_TYPE_UINT32: case GGUF_TYPE_UINT64: {
        char s[32];
        snprintf(s, sizeof s, "\"value\": %llu", (unsigned long long)v->num.u);
        return strstr(json_text, s) != NULL && (double)v->num.u == e->valuedouble;
    }
    default: {
        char s[32];
        snprintf(s, sizeof s, "\"value\": %lld", (long long)v->num.i);
        return strstr(json_text, s) != NULL && (double)v->num.i == e->valuedouble;
    }
    }
}

// the 16-lane sum of ggml_quants.h over w[K] . x[K]
static float lane_sum(const float *w, const float *x, int64_t K) {
    float acc[16] = {0};
    for (int64_t i = 0; i < K; i += 16)
        for (int j = 0; j < 16; j++) acc[j] = i + j < K ? fmaf(w[i + j], x[i + j], acc[j]) : fmaf(0.0f, 0.0f, acc[j]);
    float s8[8], s4[4], s2[2];
    for (int j = 0; j < 8; j++) s8[j] = acc[j] + acc[j + 8];
    for (int j = 0; j < 4; j++) s4[j] = s8[j] + s8[j + 4];
    for (int j = 0; j < 2; j++) s2[j] = s4[j] + s4[j + 2];
    return s2[0] + s2[1];
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(void) { return (float)((int32_t)rnd() % 2000001) / 1000000.0f; } // [-2, 2]

// gq_matvec on every instruction set the CPU has and 1..3 threads, and gq_matvec_streams, equal gq_matvec_naive bit
// for bit
static int matvec_agrees(uint32_t type, const void *W, size_t rb, int64_t rows, int64_t K, const float *x,
                         const char *what) {
    float *ref = malloc((size_t)rows * 4), *y = malloc((size_t)rows * 4);
    int ok = gq_matvec_naive(type, W, rb, rows, K, x, ref) == 0, runs = 0;
    int top = gq_set_isa(2);
    for (int isa = 0; isa <= top && ok; isa++) {
        gq_set_isa(isa);
        for (int nt = 1; nt <= 3 && ok; nt++) {
            memset(y, 0xff, (size_t)rows * 4);
            ok = gq_matvec(type, W, rb, rows, K, x, y, nt) == 0 && memcmp(y, ref, (size_t)rows * 4) == 0;
            if (!ok) {
                for (int64_t r = 0; r < rows; r++)
                    if (memcmp(&y[r], &ref[r], 4)) {
                        printf("# %s isa %d threads %d row %lld: %.9g vs naive %.9g\n", what, isa, nt, (long long)r,
                               y[r], ref[r]);
                        break;
                    }
            }
            runs++;
        }
        if (ok) { // the decode streams (gq_matvec_streams) on this instruction set
            memset(y, 0xff, (size_t)rows * 4);
            ok = gq_matvec_streams(type, W, rb, rows, K, x, y) == 0 && memcmp(y, ref, (size_t)rows * 4) == 0;
            if (!ok) printf("# %s isa %d: gq_matvec_streams differs from the naive twin\n", what, isa);
            runs++;
        }
    }
    gq_set_isa(2);
    free(ref);
    free(y);
    return ok ? runs : 0;
}

// ---------------------------------------------------------------------------- the files gguf-py wrote

static void check_case(const char *name) {
    char path[512], jpath[512], rpath[512];
    snprintf(path, sizeof path, "%s/gguf/%s.gguf", test_data_dir(), name);
    snprintf(jpath, sizeof jpath, "%s/gguf/%s.json", test_data_dir(), name);
    snprintf(rpath, sizeof rpath, "%s/gguf/%s.ref.f32", test_data_dir(), name);
    size_t jn, rn;
    char *jtext = (char *)slurp(jpath, &jn);
    uint8_t *refb = slurp(rpath, &rn);
    CHECK(jtext && refb, "%s: reference files present", name);
    if (!jtext || !refb) { free(jtext); free(refb); return; }
    jtext = realloc(jtext, jn + 1);
    jtext[jn] = 0;
    cJSON *j = cJSON_Parse(jtext);
    const float *ref = (const float *)refb;
    GGUFFile g;
    int rc = gguf_open(&g, path);
    CHECK(rc == 0, "%s: opens (%s)", name, rc ? gguf_last_error() : "ok");
    if (rc) { cJSON_Delete(j); free(jtext); free(refb); return; }
    CHECK(g.version == (uint32_t)cJSON_GetObjectItem(j, "version")->valueint &&
              g.alignment == (uint32_t)cJSON_GetObjectItem(j, "alignment")->valueint &&
              g.data_offset == (size_t)cJSON_GetObjectItem(j, "data_offset")->valuedouble,
          "%s: version %u, alignment %u, data offset %zu as gguf-py reads them", name, g.version, g.alignment,
          g.data_offset);

    // metadata
    const cJSON *kvs = cJSON_GetObjectItem(j, "kv");
    CHECK((int)g.n_kv == cJSON_GetArraySize(kvs), "%s: %llu metadata entries (gguf-py: %d)", name,
          (unsigned long long)g.n_kv, cJSON_GetArraySize(kvs));
    int i = 0, bad = 0;
    for (const cJSON *e = kvs->child; e; e = e->next, i++) {
        const char *key = cJSON_GetObjectItem(e, "key")->valuestring;
        const char *tn = cJSON_GetObjectItem(e, "type")->valuestring;
        const cJSON *val = cJSON_GetObjectItem(e, "value");
        const GGUFKV *kv = gguf_find_kv(&g, key);
        int ok = kv && kv == &g.kv[i] && strcmp(gguf_type_name(kv->v.type), tn) == 0;
        if (ok && kv->v.type == GGUF_TYPE_ARRAY)
            ok = arr_equal(&kv->v, cJSON_GetObjectItem(e, "sub_type")->valuestring, val);
        else if (ok) {
            // the JSON line of this key's value, for the exact 64-bit integers
            char needle[300];
            snprintf(needle, sizeof needle, "\"key\": \"%s\"", key);
            const char *at = strstr(jtext, needle);
            ok = at && scalar_equal(kv, val, at);
        }
        if (!ok) { bad++; printf("# %s: key %s differs from gguf-py\n", name, key); }
    }
    CHECK(bad == 0, "%s: every key, type and value equals gguf-py's (%d keys)", name, i);

    // tensors
    const cJSON *ts = cJSON_GetObjectItem(j, "tensors");
    CHECK((int)g.n_tensors == cJSON_GetArraySize(ts), "%s: %llu tensors", name, (unsigned long long)g.n_tensors);
    i = 0;
    for (const cJSON *e = ts->child; e; e = e->next, i++) {
        const char *tname = cJSON_GetObjectItem(e, "name")->valuestring;
        const GGUFTensor *t = gguf_find_tensor(&g, tname);
        const cJSON *ne = cJSON_GetObjectItem(e, "ne");
        int ok = t == &g.tensors[i] && t->type == (uint32_t)cJSON_GetObjectItem(e, "type")->valueint &&
                 t->n_dims == cJSON_GetArraySize(ne) &&
                 t->nbytes == (size_t)cJSON_GetObjectItem(e, "nbytes")->valuedouble &&
                 (size_t)((const uint8_t *)t->data - g.map) == (size_t)cJSON_GetObjectItem(e, "data_offset")->valuedouble;
        int d = 0;
        for (const cJSON *x = ne ? ne->child : NULL; x && ok; x = x->next, d++) ok = t->ne[d] == (int64_t)x->valuedouble;
        for (; d < GGUF_MAX_DIMS && ok; d++) ok = t->ne[d] == 1;
        CHECK(ok, "%s: tensor %s: type %s, ne, byte size and data offset as gguf-py reads them", name, tname,
              gq_type_name(t ? t->type : 999));
        if (!t) continue;
        const cJSON *ro = cJSON_GetObjectItem(e, "ref_offset");
        if (!ro) { // unsupported type: refused with one line naming the tensor and the type
            float dummy[64];
            int r1 = gguf_tensor_supported(&g, t), r2 = gguf_tensor_rows(&g, t, 0, 0, dummy);
            const char *msg = gguf_last_error();
            CHECK(r1 == -1 && r2 == -1 && strstr(msg, tname) && strstr(msg, gq_type_name(t->type)) && !strchr(msg, '\n'),
                  "%s: tensor %s refused: %s", name, tname, msg);
            continue;
        }
        size_t off = (size_t)ro->valuedouble, cnt = (size_t)cJSON_GetObjectItem(e, "ref_count")->valuedouble;
        int64_t K = t->ne[0], rows = (int64_t)(t->nelem / (uint64_t)K);
        float *out = malloc(cnt * sizeof(float));
        int rr = gguf_tensor_rows(&g, t, 0, rows, out);
        size_t diff = 0;
        for (size_t k = 0; rr == 0 && k < cnt; k++) diff += memcmp(&out[k], &ref[off + k], 4) != 0;
        CHECK(rr == 0 && cnt == t->nelem && (off + cnt) * 4 <= rn && diff == 0,
              "%s: tensor %s (%s): %zu values dequantised bit-identical to gguf.quants.dequantize (%zu differ)", name,
              tname, gq_type_name(t->type), cnt, diff);
        // a row range
        if (rows > 1) {
            rr = gguf_tensor_rows(&g, t, 1, rows - 1, out);
            CHECK(rr == 0 && memcmp(out, ref + off + K, (size_t)(rows - 1) * K * 4) == 0,
                  "%s: tensor %s: rows [1, %lld) alone equal gguf-py's", name, tname, (long long)rows);
        }
        CHECK(gguf_tensor_rows(&g, t, rows, 1, out) == -1 && strstr(gguf_last_error(), tname),
              "%s: tensor %s: a row past the end is refused (%s)", name, tname, gguf_last_error());
        // matvec: every kernel = naive = the lane sum of gguf-py's values
        float *x = malloc((size_t)K * 4), *y = malloc((size_t)rows * 4);
        for (int64_t k = 0; k < K; k++) x[k] = rndf();
        int exact = gq_matvec_naive(t->type, t->data, gq_row_bytes(t->type, K), rows, K, x, y) == 0;
        for (int64_t r = 0; r < rows && exact; r++) {
            float want = lane_sum(ref + off + r * K, x, K);
            exact = memcmp(&want, &y[r], 4) == 0;
        }
        int runs = matvec_agrees(t->type, t->data, gq_row_bytes(t->type, K), rows, K, x, tname);
        CHECK(exact && runs > 0, "%s: tensor %s: matvec naive = lane sum of gguf-py's values; %d isa x thread runs "
              "bit-identical", name, tname, runs);
        free(x);
        free(y);
        free(out);
    }

    // typed getters (types.gguf)
    if (strcmp(name, "types") == 0) {
        uint32_t u32;
        int32_t i32;
        uint64_t u64, n;
        float f;
        int b;
        const char *s;
        const GGUFValue *arr;
        CHECK(gguf_get_u32(&g, "test.u32", &u32) == 0 && u32 == 4000000000u, "get_u32");
        CHECK(gguf_get_u32(&g, "test.u8", &u32) == 0 && u32 == 200, "get_u32 widens UINT8");
        CHECK(gguf_get_i32(&g, "test.i8", &i32) == 0 && i32 == -100, "get_i32 widens INT8");
        CHECK(gguf_get_u32(&g, "test.i8", &u32) == -1 && strstr(gguf_last_error(), "test.i8"),
              "get_u32 of -100 refused: %s", gguf_last_error());
        CHECK(gguf_get_i32(&g, "test.u32", &i32) == -1, "get_i32 of 4e9 refused: %s", gguf_last_error());
        CHECK(gguf_get_u64(&g, "test.u64", &u64) == 0 && u64 == 18000000000000000000ull, "get_u64");
        CHECK(gguf_get_f32(&g, "test.f32", &f) == 0 && f == 0.1f, "get_f32");
        CHECK(gguf_get_bool(&g, "test.bool", &b) == 0 && b == 1, "get_bool");
        CHECK(gguf_get_str(&g, "test.string", &s) == 0 && strcmp(s, "h\xc3\xa9llo, GGUF \xe4\xb8\x96\xe7\x95\x8c") == 0,
              "get_str");
        CHECK(gguf_get_str(&g, "test.u8", &s) == -1 && strstr(gguf_last_error(), "test.u8") &&
                  strstr(gguf_last_error(), "UINT8"), "get_str of a UINT8 refused: %s", gguf_last_error());
        CHECK(gguf_get_u32(&g, "no.such.key", &u32) == -1 && strstr(gguf_last_error(), "no.such.key"),
              "missing key: %s", gguf_last_error());
        CHECK(gguf_get_arr_str(&g, "test.arr_str", &arr) == 0 && arr->n == 4, "get_arr_str");
        int32_t iv[8];
        int64_t lv[8];
        float fv[8];
        CHECK(gguf_get_arr_i32(&g, "test.arr_i16", iv, 8, &n) == 0 && n == 2 && iv[0] == -32768 && iv[1] == 32767,
              "get_arr_i32 of INT16");
        CHECK(gguf_get_arr_i32(&g, "test.arr_u32", iv, 8, &n) == -1, "get_arr_i32 of 4294967295 refused: %s",
              gguf_last_error());
        CHECK(gguf_get_arr_i64(&g, "test.arr_i64", lv, 8, &n) == 0 && lv[0] == INT64_MIN, "get_arr_i64");
        CHECK(gguf_get_arr_i32(&g, "test.arr_i32", iv, 2, &n) == -1, "get_arr_i32 over capacity refused: %s",
              gguf_last_error());
        CHECK(gguf_get_arr_f32(&g, "test.arr_f32", fv, 8, &n) == 0 && n == 4 && fv[2] == 1e-30f && fv[3] == 3.4e38f,
              "get_arr_f32");
        CHECK(gguf_get_arr_f32(&g, "test.arr_str", fv, 8, &n) == -1, "get_arr_f32 of strings refused: %s",
              gguf_last_error());
    }
    gguf_close(&g);
    cJSON_Delete(j);
    free(jtext);
    free(refb);
}

// ---------------------------------------------------------------------------- random blocks, bigger shapes

// fp16 bits of a finite random scale
static uint16_t rnd_f16(void) {
    uint16_t h = (uint16_t)rnd();
    if ((h & 0x7C00) == 0x7C00) h &= 0x83FF;
    // mostly moderate exponents
    if (rnd() % 4) h = (uint16_t)((h & 0x83FF) | ((uint16_t)(8 + rnd() % 8) << 10));
    return h;
}

// W (rows x K of type t, rows rb bytes apart) as a DT_GGML Tensor through ops.c's linear (quant.c: the block kernels
// for up to 4 activation rows, rows dequantised per tile above): every output has the bits of gq_matvec_naive for
// its row, for 1, 3 (decode) and 9 (tiles) activation rows, and is within fp32 rounding of linear_naive
static int ggml_linear_agrees(uint32_t t, const uint8_t *w, size_t rb, int64_t rows, int64_t K) {
    Tensor W = {0};
    W.data = w, W.dtype = DT_GGML, W.ggml = t, W.rows = rows, W.cols = K, W.ld = (int64_t)rb;
    const int N = 9;
    float *x = malloc((size_t)(N * K) * 4), *y = malloc((size_t)(N * rows) * 4), *ref = malloc((size_t)(N * rows) * 4);
    float *yn = malloc((size_t)(N * rows) * 4);
    for (int64_t i = 0; i < N * K; i++) x[i] = rndf();
    for (int i = 0; i < N; i++) gq_matvec_naive(t, w, rb, rows, K, x + i * K, ref + i * rows);
    int ok = 1;
    const int ns[3] = {1, 3, 9};
    for (int c = 0; c < 3; c++) {
        linear(y, x, &W, NULL, ns[c]);
        ok &= memcmp(y, ref, (size_t)(ns[c] * rows) * 4) == 0;
    }
    linear_naive(yn, x, &W, NULL, N);
    for (int64_t i = 0; i < N * rows; i++) {
        double mag = 0;
        for (int64_t k = 0; k < K; k++) mag += fabs((double)quant_get(&W, i % rows, k) * x[(i / rows) * K + k]);
        ok &= fabs((double)yn[i] - ref[i]) <= 1e-5 * mag + 1e-30;
    }
    free(x), free(y), free(ref), free(yn);
    return ok;
}

static void check_random_matvec(void) {
    // fp16 scale offsets inside each block type's bytes (ggml-common.h)
    static const struct { uint32_t t; int offs[2]; } sc[] = {
        {GQ_Q4_0, {0, -1}}, {GQ_Q4_1, {0, 2}}, {GQ_Q5_0, {0, -1}}, {GQ_Q5_1, {0, 2}}, {GQ_Q8_0, {0, -1}},
        {GQ_Q2_K, {80, 82}}, {GQ_Q3_K, {108, -1}}, {GQ_Q4_K, {0, 2}}, {GQ_Q5_K, {0, 2}}, {GQ_Q6_K, {208, -1}},
        {GQ_F16, {-1, -1}}, {GQ_BF16, {-1, -1}}, {GQ_F32, {-1, -1}},
    };
    for (size_t c = 0; c < sizeof sc / sizeof *sc; c++) {
        const GQType *ty = gq_type(sc[c].t);
        int64_t rows = 19, K = ty->block == 1 ? 1003 : 4096;
        size_t rb = gq_row_bytes(sc[c].t, K), nb = (size_t)(K / ty->block) * (size_t)rows;
        uint8_t *w = malloc(rb * (size_t)rows);
        for (size_t i = 0; i < rb * (size_t)rows; i++) w[i] = (uint8_t)rnd();
        if (sc[c].t == GQ_F16)
            for (size_t i = 0; i < nb; i++) { uint16_t h = rnd_f16(); memcpy(w + 2 * i, &h, 2); }
        else if (sc[c].t == GQ_BF16)
            for (size_t i = 0; i < nb; i++) { uint16_t h = (uint16_t)(rnd() & 0xBFFF); memcpy(w + 2 * i, &h, 2); }
        else if (sc[c].t == GQ_F32)
            for (size_t i = 0; i < nb; i++) { float v = rndf(); memcpy(w + 4 * i, &v, 4); }
        else
            for (size_t b = 0; b < nb; b++)
                for (int k = 0; k < 2; k++)
                    if (sc[c].offs[k] >= 0) { uint16_t h = rnd_f16(); memcpy(w + b * ty->bytes + sc[c].offs[k], &h, 2); }
        float *x = malloc((size_t)K * 4);
        for (int64_t k = 0; k < K; k++) x[k] = rndf();
        int runs = matvec_agrees(sc[c].t, w, rb, rows, K, x, ty->name);
        // a server's batched step: gq_matmul_streams over 2, 3 and 4 activation rows = the naive twin row by row
        float *xm = malloc((size_t)(4 * K) * 4), *ym = malloc((size_t)(4 * rows) * 4), *rm = malloc((size_t)(4 * rows) * 4);
        for (int64_t k = 0; k < 4 * K; k++) xm[k] = rndf();
        int mok = 1;
        for (int m = 0; m < 4; m++) mok &= gq_matvec_naive(sc[c].t, w, rb, rows, K, xm + m * K, rm + m * rows) == 0;
        const int top = gq_set_isa(2);
        for (int isa = 0; isa <= top; isa++) {
            gq_set_isa(isa);
            for (int M = 2; M <= 4; M++) {
                memset(ym, 0xff, (size_t)(4 * rows) * 4);
                mok &= gq_matmul_streams(sc[c].t, w, rb, rows, K, xm, K, M, ym, rows) == 0 &&
                       memcmp(ym, rm, (size_t)(M * rows) * 4) == 0;
            }
        }
        gq_set_isa(2);
        CHECK(mok, "random %s: gq_matmul_streams (2, 3, 4 activation rows, every isa) = the naive twin bit for bit",
              ty->name);
        free(xm), free(ym), free(rm);
        CHECK(runs > 0, "random %s [%lld x %lld]: gq_matvec bit-identical to the naive twin on %d isa x thread runs",
              ty->name, (long long)rows, (long long)K, runs);
        // rows farther apart than their bytes (a padded stride)
        uint8_t *w2 = calloc((size_t)rows, rb + 64);
        for (int64_t r = 0; r < rows; r++) memcpy(w2 + (size_t)r * (rb + 64), w + (size_t)r * rb, rb);
        float *y1 = malloc((size_t)rows * 4), *y2 = malloc((size_t)rows * 4);
        gq_matvec(sc[c].t, w, rb, rows, K, x, y1, 2);
        gq_matvec(sc[c].t, w2, rb + 64, rows, K, x, y2, 2);
        CHECK(memcmp(y1, y2, (size_t)rows * 4) == 0, "random %s: a row stride of row bytes + 64 gives the same", ty->name);
        if (ty->block > 1)
            CHECK(ggml_linear_agrees(sc[c].t, w, rb, rows, K), "random %s: linear() on a DT_GGML view (1, 3, 9 rows) "
                  "= gq_matvec_naive bit for bit, linear_naive within fp32 rounding", ty->name);
        free(w);
        free(w2);
        free(x);
        free(y1);
        free(y2);
    }
    float x[32] = {0}, y[2];
    uint8_t blk[64] = {0};
    CHECK(gq_matvec(GQ_IQ4_NL, blk, 18, 1, 32, x, y, 1) == -1 && gq_matvec(GQ_Q8_0, blk, 34, 1, 33, x, y, 1) == -1 &&
              gq_matvec(GQ_Q8_0, blk, 33, 1, 32, x, y, 1) == -1 && gq_dequant(GQ_IQ2_XXS, blk, x, 256) == -1 &&
              gq_dequant(77, blk, x, 1) == -1,
          "matvec / dequant refuse unsupported types, partial blocks and short row strides");
}

// ---------------------------------------------------------------------------- malformed files

typedef struct {
    uint8_t *b;   // bytes
    size_t n, cap; // used / allocated
} Buf;

static void put(Buf *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 64;
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void p8(Buf *o, uint8_t v) { put(o, &v, 1); }
static void p32(Buf *o, uint32_t v) { put(o, &v, 4); }
static void p64(Buf *o, uint64_t v) { put(o, &v, 8); }
static void pstr(Buf *o, const char *s) { p64(o, strlen(s)); put(o, s, strlen(s)); }
static void pad(Buf *o, size_t a) { while (o->n % a) p8(o, 0); }
static void zeros(Buf *o, size_t n) { while (n--) p8(o, 0); }
static void hdr(Buf *o, uint32_t ver, uint64_t nt, uint64_t nkv) { put(o, "GGUF", 4); p32(o, ver); p64(o, nt); p64(o, nkv); }
static void tinfo(Buf *o, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    pstr(o, name);
    p32(o, nd);
    for (uint32_t d = 0; d < nd; d++) p64(o, ne[d]);
    p32(o, type);
    p64(o, off);
}

// options of the base file that the malformed cases change
typedef struct {
    uint32_t version;          // header version
    uint64_t nt_hdr, nkv_hdr;  // counts written in the header (0: the true ones)
    int extra_kv;              // 1: one more key/value, written by kvfn
    void (*kvfn)(Buf *);       // writes the extra key/value
    uint32_t t1_type;          // ggml type of t1 (Q8_0)
    uint64_t t1_ne0, t1_off;   // t1's row length (32) and data offset (the alignment)
    int t1_at_zero;            // 1: t1 at data offset 0, over t0
    uint32_t t1_nd;            // t1's dimension count (2)
    const char *t1_name;       // t1's name ("t1")
    uint32_t align;            // general.alignment (0: not written)
    size_t cut;                // keep only this many bytes (0: all)
} Opt;

// the base file: 2 tensors (t0 F32 [4] at 0, t1 Q8_0 [32, 2] at 32) and 2 or 3 keys, with o's changes
static Buf build(Opt o) {
    Buf b = {0};
    uint64_t nkv = 2 + (o.extra_kv ? 1 : 0) + (o.align ? 1 : 0);
    hdr(&b, o.version ? o.version : 3, o.nt_hdr ? o.nt_hdr : 2, o.nkv_hdr ? o.nkv_hdr : nkv);
    pstr(&b, "general.architecture"); p32(&b, GGUF_TYPE_STRING); pstr(&b, "glm4moe");
    pstr(&b, "a.empty"); p32(&b, GGUF_TYPE_ARRAY); p32(&b, GGUF_TYPE_UINT32); p64(&b, 0);
    if (o.align) { pstr(&b, "general.alignment"); p32(&b, GGUF_TYPE_UINT32); p32(&b, o.align); }
    if (o.extra_kv) o.kvfn(&b);
    uint64_t ne0[1] = {4}, ne1[5] = {o.t1_ne0 ? o.t1_ne0 : 32, 2, 1, 1, 1}; // (5: the 5-dimension case)
    tinfo(&b, "t0", 1, ne0, GQ_F32, 0);
    uint32_t al = o.align ? o.align : 32;
    if (al & (al - 1) || al > 4096) al = 32;
    tinfo(&b, o.t1_name ? o.t1_name : "t1", o.t1_nd ? o.t1_nd : 2, ne1, o.t1_type ? o.t1_type : GQ_Q8_0,
          o.t1_at_zero ? 0 : o.t1_off ? o.t1_off : al);
    pad(&b, al);
    for (int i = 0; i < 4; i++) { float v = (float)i; put(&b, &v, 4); }
    zeros(&b, al - 16);
    for (int r = 0; r < 2; r++) { uint16_t d = 0x3c00; put(&b, &d, 2); for (int i = 0; i < 32; i++) p8(&b, (uint8_t)(i - 16)); }
    if (o.cut && o.cut < b.n) b.n = o.cut;
    return b;
}

static void kv_badtype(Buf *b) { pstr(b, "x"); p32(b, 13); p32(b, 0); }
static void kv_badarrtype(Buf *b) { pstr(b, "x"); p32(b, GGUF_TYPE_ARRAY); p32(b, 99); p64(b, 1); p32(b, 0); }
static void kv_hugearr(Buf *b) { pstr(b, "x"); p32(b, GGUF_TYPE_ARRAY); p32(b, GGUF_TYPE_UINT32); p64(b, 1ull << 60); }
static void kv_hugestrarr(Buf *b) { pstr(b, "x"); p32(b, GGUF_TYPE_ARRAY); p32(b, GGUF_TYPE_STRING); p64(b, 1ull << 40); }
static void kv_hugestr(Buf *b) { pstr(b, "x"); p32(b, GGUF_TYPE_STRING); p64(b, 1ull << 62); }
static void kv_hugekey(Buf *b) { p64(b, ~0ull); }
static void kv_nulkey(Buf *b) { p64(b, 3); put(b, "a\0b", 3); p32(b, GGUF_TYPE_UINT8); p8(b, 1); }
static void kv_bool2(Buf *b) { pstr(b, "x"); p32(b, GGUF_TYPE_BOOL); p8(b, 2); }
static void kv_boolarr2(Buf *b) { pstr(b, "x"); p32(b, GGUF_TYPE_ARRAY); p32(b, GGUF_TYPE_BOOL); p64(b, 2); p8(b, 1); p8(b, 7); }
static void kv_dup(Buf *b) { pstr(b, "a.empty"); p32(b, GGUF_TYPE_UINT8); p8(b, 1); }
static void kv_align_u64(Buf *b) { pstr(b, "general.alignment"); p32(b, GGUF_TYPE_UINT64); p64(b, 32); }
static void kv_deep(Buf *b) {
    pstr(b, "x");
    p32(b, GGUF_TYPE_ARRAY);
    for (int d = 0; d < 9; d++) { p32(b, GGUF_TYPE_ARRAY); p64(b, 1); }
    p32(b, GGUF_TYPE_UINT8); p64(b, 0);
}
static void kv_nested_ok(Buf *b) { // [[1, 2], []] of UINT16, and [["s"]]
    pstr(b, "x");
    p32(b, GGUF_TYPE_ARRAY);
    p32(b, GGUF_TYPE_ARRAY); p64(b, 2);
    p32(b, GGUF_TYPE_UINT16); p64(b, 2); p8(b, 1); p8(b, 0); p8(b, 2); p8(b, 0);
    p32(b, GGUF_TYPE_UINT16); p64(b, 0);
}
static void kv_nested_trunc(Buf *b) { pstr(b, "x"); p32(b, GGUF_TYPE_ARRAY); p32(b, GGUF_TYPE_ARRAY); p64(b, 3); p32(b, GGUF_TYPE_STRING); p64(b, 1); p64(b, 1000); }

static void check_malformed(void) {
    GGUFFile g;
    Buf b = build((Opt){0});
    int rc = gguf_parse(&g, b.b, b.n, "base.gguf");
    const GGUFValue *e = NULL;
    uint64_t n;
    int32_t iv[1];
    CHECK(rc == 0 && g.n_tensors == 2 && g.tensors[1].nbytes == 68 && gguf_find_kv(&g, "a.empty") &&
              gguf_get_arr_i32(&g, "a.empty", iv, 1, &n) == 0 && n == 0 && gguf_get_arr_str(&g, "a.empty", &e) == -1,
          "hand-built base file parses (empty array) (%s)", rc ? gguf_last_error() : "ok");
    size_t full = b.n;
    if (rc == 0) {
        float y[64];
        CHECK(gguf_tensor_rows(&g, &g.tensors[1], 0, 2, y) == 0 && y[0] == -16.0f && y[63] == 15.0f,
              "base file: Q8_0 rows dequantised");
        gguf_close(&g);
    }
    // every truncation fails cleanly
    int trunc_ok = 1;
    for (size_t cut = 0; cut < full; cut++) {
        if (gguf_parse(&g, b.b, cut, "cut.gguf") == 0) { trunc_ok = 0; printf("# prefix of %zu bytes parsed\n", cut); gguf_close(&g); }
        else if (!gguf_last_error()[0] || strchr(gguf_last_error(), '\n')) trunc_ok = 0;
    }
    CHECK(trunc_ok, "every one of the %zu truncations of the base file fails with one line", full);
    free(b.b);
    b = build((Opt){.version = 2});
    CHECK(gguf_parse(&g, b.b, b.n, "v2.gguf") == 0, "version 2 parses");
    gguf_close(&g);
    free(b.b);
    b = build((Opt){.extra_kv = 1, .kvfn = kv_nested_ok});
    rc = gguf_parse(&g, b.b, b.n, "nested.gguf");
    const GGUFKV *kv = rc ? NULL : gguf_find_kv(&g, "x");
    int64_t v0 = 0, v1 = 0;
    CHECK(kv && kv->v.n == 2 && gguf_arr_sub(&kv->v, 0)->n == 2 && gguf_arr_int(gguf_arr_sub(&kv->v, 0), 1, &v1) == 0 &&
              gguf_arr_int(gguf_arr_sub(&kv->v, 0), 0, &v0) == 0 && v0 == 1 && v1 == 2 && gguf_arr_sub(&kv->v, 1)->n == 0,
          "nested arrays [[1, 2], []] read back");
    gguf_close(&g);
    free(b.b);
    b = build((Opt){.align = 64});
    rc = gguf_parse(&g, b.b, b.n, "a64.gguf");
    CHECK(rc == 0 && g.alignment == 64 && g.data_offset % 64 == 0, "general.alignment 64 honoured");
    gguf_close(&g);
    free(b.b);

    struct { const char *what; Opt o; const char *expect; uint8_t patch_magic; } cases[] = {
        {"bad magic", {0}, "not a GGUF", 1},
        {"version 1", {.version = 1}, "version 1", 0},
        {"version 4", {.version = 4}, "version 4", 0},
        {"big-endian", {.version = 0x03000000}, "big-endian", 0},
        {"huge tensor count", {.nt_hdr = 1ull << 40}, "tensor count", 0},
        {"huge metadata count", {.nkv_hdr = ~0ull}, "metadata count", 0},
        {"unknown value type", {.extra_kv = 1, .kvfn = kv_badtype}, "unknown value type", 0},
        {"unknown array type", {.extra_kv = 1, .kvfn = kv_badarrtype}, "unknown array element type", 0},
        {"huge array", {.extra_kv = 1, .kvfn = kv_hugearr}, "exceeds", 0},
        {"huge string array", {.extra_kv = 1, .kvfn = kv_hugestrarr}, "exceeds", 0},
        {"huge string", {.extra_kv = 1, .kvfn = kv_hugestr}, "string length", 0},
        {"huge key length", {.extra_kv = 1, .kvfn = kv_hugekey}, "string length", 0},
        {"NUL in key", {.extra_kv = 1, .kvfn = kv_nulkey}, "NUL", 0},
        {"bool 2", {.extra_kv = 1, .kvfn = kv_bool2}, "bool", 0},
        {"bool array element 7", {.extra_kv = 1, .kvfn = kv_boolarr2}, "bool", 0},
        {"duplicate key", {.extra_kv = 1, .kvfn = kv_dup}, "twice", 0},
        {"arrays nested 10 deep", {.extra_kv = 1, .kvfn = kv_deep}, "nested", 0},
        {"nested array truncated", {.extra_kv = 1, .kvfn = kv_nested_trunc}, "x", 0},
        {"alignment UINT64", {.extra_kv = 1, .kvfn = kv_align_u64}, "general.alignment", 0},
        {"alignment 48", {.align = 48}, "power of two", 0},
        {"5 dimensions", {.t1_nd = 5}, "dimensions", 0},
        {"unknown ggml type 4", {.t1_type = 4}, "unknown ggml type 4", 0},
        {"unknown ggml type 1000", {.t1_type = 1000}, "unknown ggml type", 0},
        {"partial block", {.t1_ne0 = 33}, "block size", 0},
        {"element count overflow", {.t1_ne0 = 1ull << 62}, "overflows", 0},
        {"dimension above INT64_MAX", {.t1_ne0 = ~0ull}, "dimension", 0},
        {"tensor larger than the file", {.t1_ne0 = 1ull << 20}, "more than the file", 0},
        {"misaligned offset", {.t1_off = 36}, "alignment", 0},
        {"offset out of range", {.t1_off = 1ull << 40}, "past the end", 0},
        {"extent past the end", {.t1_off = 64}, "past the end", 0},
        {"overlapping tensors", {.t1_at_zero = 1}, "overlap", 0},
        {"duplicate tensor name", {.t1_name = "t0"}, "twice", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        Opt o = cases[c].o;
        Buf m = build(o);
        if (cases[c].patch_magic) m.b[3] = 'X';
        int r = gguf_parse(&g, m.b, m.n, "bad.gguf");
        const char *msg = gguf_last_error();
        CHECK(r == -1 && strstr(msg, "bad.gguf") && strstr(msg, cases[c].expect) && !strchr(msg, '\n'),
              "malformed (%s) refused: %s", cases[c].what, r ? msg : "PARSED");
        if (r == 0) gguf_close(&g);
        free(m.b);
    }
}

// ---------------------------------------------------------------------------- not regular files

static void check_special_files(void) {
    GGUFFile g;
    char fifo[] = "/tmp/test_gguf_fifo_XXXXXX";
    int fd = mkstemp(fifo);
    if (fd >= 0) {
        close(fd);
        unlink(fifo);
        if (mkfifo(fifo, 0600) == 0) {
            int r = gguf_open(&g, fifo); // O_NONBLOCK: returns at once
            CHECK(r == -1 && strstr(gguf_last_error(), "not a regular file"), "a FIFO is refused at once: %s",
                  gguf_last_error());
            unlink(fifo);
        }
    }
    CHECK(gguf_open(&g, "/dev/null") == -1 && strstr(gguf_last_error(), "not a regular file"), "/dev/null refused: %s",
          gguf_last_error());
    CHECK(gguf_open(&g, "/tmp") == -1, "a directory is refused: %s", gguf_last_error());
    CHECK(gguf_open(&g, "/nonexistent/x.gguf") == -1 && strstr(gguf_last_error(), "x.gguf"), "a missing file: %s",
          gguf_last_error());
}

// ---------------------------------------------------------------------------- split models

// copy file src to dst; 0 or -1
static int copy_file(const char *src, const char *dst) {
    size_t n;
    uint8_t *b = slurp(src, &n);
    FILE *f = b ? fopen(dst, "wb") : NULL;
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f) fclose(f);
    free(b);
    return ok ? 0 : -1;
}

static void check_split(void) {
    char path[512], jpath[512];
    snprintf(path, sizeof path, "%s/gguf/split-00002-of-00003.gguf", test_data_dir());
    snprintf(jpath, sizeof jpath, "%s/gguf/split.json", test_data_dir());
    size_t n;
    char *text = (char *)slurp(jpath, &n);
    CHECK(text != NULL, "split.json present");
    if (!text) return;
    text = realloc(text, n + 1);
    text[n] = 0;
    cJSON *j = cJSON_Parse(text);
    GGUFSplit s;
    int rc = gguf_open_split(&s, path);
    CHECK(rc == 0 && s.n == 3, "a split model opens from its second shard: %d files (%s)", s.n, rc ? gguf_last_error() : "ok");
    if (rc == 0) {
        int bad = 0, cnt = 0;
        for (const cJSON *e = cJSON_GetObjectItem(j, "tensors")->child; e; e = e->next, cnt++) {
            const GGUFFile *f = NULL;
            const GGUFTensor *tt = gguf_split_find_tensor(&s, cJSON_GetObjectItem(e, "name")->valuestring, &f);
            int ok = tt && f == &s.f[cJSON_GetObjectItem(e, "shard")->valueint];
            int k = 0;
            for (const cJSON *v = cJSON_GetObjectItem(e, "values")->child; v && ok; v = v->next, k++)
                ok = (uint64_t)k < tt->nelem && ((const float *)tt->data)[k] == (float)v->valuedouble;
            bad += !ok;
        }
        const char *name = NULL;
        CHECK(bad == 0 && cnt == 5 && gguf_get_str(&s.f[0], "general.name", &name) == 0 && strcmp(name, "split") == 0 &&
                  !gguf_split_find_tensor(&s, "t9", NULL),
              "split model: every tensor in the shard gguf-py put it in, with gguf-py's values; metadata in shard 1");
        gguf_close_split(&s);
    }
    // an unsplit file opens as one
    snprintf(path, sizeof path, "%s/gguf/align64.gguf", test_data_dir());
    rc = gguf_open_split(&s, path);
    CHECK(rc == 0 && s.n == 1 && gguf_split_find_tensor(&s, "a", NULL), "an unsplit file opens as a split of 1");
    gguf_close_split(&s);
    // a missing shard, a shard under another name
    char dir[] = "/tmp/test_gguf_split_XXXXXX";
    if (mkdtemp(dir)) {
        char src[512], dst[600];
        snprintf(src, sizeof src, "%s/gguf/split-00001-of-00003.gguf", test_data_dir());
        snprintf(dst, sizeof dst, "%s/m-00001-of-00003.gguf", dir);
        copy_file(src, dst);
        rc = gguf_open_split(&s, dst);
        CHECK(rc == -1 && strstr(gguf_last_error(), "m-00002-of-00003.gguf"), "a missing shard is named: %s",
              gguf_last_error());
        snprintf(dst, sizeof dst, "%s/renamed.gguf", dir);
        copy_file(src, dst);
        rc = gguf_open_split(&s, dst);
        CHECK(rc == -1 && strstr(gguf_last_error(), "-00001-of-00003.gguf"), "a renamed shard is refused: %s",
              gguf_last_error());
        unlink(dst);
        // shard 2 in the place of shard 3
        snprintf(src, sizeof src, "%s/gguf/split-00002-of-00003.gguf", test_data_dir());
        snprintf(dst, sizeof dst, "%s/m-00002-of-00003.gguf", dir);
        copy_file(src, dst);
        snprintf(dst, sizeof dst, "%s/m-00003-of-00003.gguf", dir);
        copy_file(src, dst);
        snprintf(dst, sizeof dst, "%s/m-00001-of-00003.gguf", dir);
        rc = gguf_open_split(&s, dst);
        CHECK(rc == -1 && strstr(gguf_last_error(), "split.no 1"), "a shard with the wrong split.no is refused: %s",
              gguf_last_error());
        for (int i = 1; i <= 3; i++) {
            snprintf(dst, sizeof dst, "%s/m-%05d-of-00003.gguf", dir, i);
            unlink(dst);
        }
        rmdir(dir);
    }
    cJSON_Delete(j);
    free(text);
}

// ---------------------------------------------------------------------------- GGUF <-> HF names

static void check_name_map(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/gguf/name_map.json", test_data_dir());
    size_t n;
    char *text = (char *)slurp(path, &n);
    CHECK(text != NULL, "name_map.json present");
    if (!text) return;
    text = realloc(text, n + 1);
    text[n] = 0;
    cJSON *j = cJSON_Parse(text);
    static const struct { const char *key; int which; } tabs[] = {
        {"glm4moe", GM_GLM4MOE}, {"glm4", GM_GLM4}, {"glm4v_mmproj", GM_GLM4V_MMPROJ}};
    static const char *const tr_names[] = {"copy", "stack", "conv3d_t0", "conv3d_t1", "neox_qk", "unused"};
    for (int t = 0; t < 3; t++) {
        const cJSON *rows = cJSON_GetObjectItem(j, tabs[t].key);
        int ne;
        const GMEntry *tab = gguf_map_table(tabs[t].which, &ne);
        int *hit = calloc((size_t)ne, sizeof *hit), bad = 0, nrows = 0;
        for (const cJSON *r = rows ? rows->child : NULL; r; r = r->next, nrows++) {
            const char *hf = cJSON_GetArrayItem(r, 0)->valuestring, *gg = cJSON_GetArrayItem(r, 1)->valuestring,
                       *tr = cJSON_GetArrayItem(r, 2)->valuestring;
            char out[512];
            int transform = -1, bid, xid;
            // GGUF -> HF (stacked experts keep "{xid}", as the reference writes them)
            int ok = gguf_map_to_hf(tabs[t].which, gg, out, sizeof out, &transform, &bid) == 0 && strcmp(out, hf) == 0 &&
                     strcmp(tr_names[transform], tr) == 0;
            const int gbid = bid;
            // HF -> GGUF (an expert's own name: expert 5)
            char hf5[512];
            snprintf(hf5, sizeof hf5, "%s", hf);
            char *x = strstr(hf5, "{xid}");
            if (x) { memmove(x + 1, x + 5, strlen(x + 5) + 1); *x = '5'; }
            if (ok && strcmp(tr, "conv3d_t1") != 0)
                ok = gguf_map_from_hf(tabs[t].which, hf5, out, sizeof out, &transform, &bid, &xid) == 0 &&
                     strcmp(out, gg) == 0 && xid == (x ? 5 : -1);
            if (!ok) { bad++; printf("# %s: %s <-> %s (%s) not in the table\n", tabs[t].key, gg, hf, tr); }
            // the table entry this name comes from: its pattern with this block index is the name
            for (int e = 0; ok && e < ne; e++) {
                char want[512];
                const char *p = strstr(tab[e].gguf, "{bid}");
                if (p) snprintf(want, sizeof want, "%.*s%d%s", (int)(p - tab[e].gguf), tab[e].gguf, gbid, p + 5);
                else snprintf(want, sizeof want, "%s", tab[e].gguf);
                if (strcmp(want, gg) == 0) hit[e] = 1;
            }
        }
        int unhit = 0;
        for (int e = 0; e < ne; e++)
            if (!hit[e]) { unhit++; printf("# %s: table entry %s never produced by the converter\n", tabs[t].key, tab[e].gguf); }
        CHECK(nrows > 0 && bad == 0 && unhit == 0,
              "name map %s: %d converter names (gguf-py TensorNameMap) map both ways; all %d table entries used",
              tabs[t].key, nrows, ne);
        free(hit);
    }
    // GM_NEOX_QK: GGUF row g holds the HF row rows[g] (the converter's permutation on row numbers)
    const cJSON *nx = cJSON_GetObjectItem(j, "neox");
    int nbad = 0, ncase = 0;
    for (const cJSON *c = nx ? nx->child : NULL; c; c = c->next, ncase++) {
        int hd = cJSON_GetObjectItem(c, "head_dim")->valueint, rd = cJSON_GetObjectItem(c, "rotary_dim")->valueint;
        long g = 0;
        for (const cJSON *v = cJSON_GetObjectItem(c, "rows")->child; v; v = v->next, g++)
            nbad += gguf_map_neox_row(v->valueint, hd, rd) != g;
    }
    CHECK(ncase == 2 && nbad == 0 && gguf_map_neox_row(0, 8, 3) == -1 && gguf_map_neox_row(0, 8, 10) == -1,
          "gguf_map_neox_row inverts the converter's normal_to_neox (%d cases)", ncase);
    char out[64];
    int tr, bid, xid;
    CHECK(gguf_map_to_hf(GM_GLM4MOE, "blk.x.attn_q.weight", out, sizeof out, &tr, &bid) == -1 &&
              gguf_map_to_hf(GM_GLM4MOE, "blk.01.attn_q.weight", out, sizeof out, &tr, &bid) == -1 &&
              gguf_map_to_hf(GM_GLM4MOE, "blk.1.attn_q.weightx", out, sizeof out, &tr, &bid) == -1 &&
              gguf_map_to_hf(GM_GLM4MOE, "blk.1.attn_q.weight", out, 8, &tr, &bid) == -1 &&
              gguf_map_from_hf(GM_GLM4MOE, "model.visual.blocks.0.norm1.weight", out, sizeof out, &tr, &bid, &xid) == -1 &&
              gguf_map_which("glm4moe") == GM_GLM4MOE && gguf_map_which("llama") == -1,
          "name map refuses malformed names, small buffers and other tables' names");
    cJSON_Delete(j);
    free(text);
}

int main(void) {
    ops_init();
    printf("# kernels: isa %d (2 AVX-512, 1 AVX2, 0 portable)\n", gq_isa());
    check_case("types");
    check_case("align64");
    check_random_matvec();
    check_malformed();
    check_special_files();
    check_name_map();
    check_split();
    printf("# %d passed, %d failed\n", t_passed, t_failed);
    return test_done();
}
