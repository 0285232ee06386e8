// SPDX-License-Identifier: MIT
// fuzz_gguf.c - libFuzzer target: gguf_parse (header, metadata of every value type, nested arrays, tensor infos,
// alignment, extents) on arbitrary bytes; everything it accepts is walked: every string and array element read,
// the typed getters called on every key, every tensor's bytes read, and small supported tensors dequantised and
// multiplied (gq_matvec on every instruction set and its naive twin must agree bit for bit).
#include "../ggml_quants.h"
#include "../gguf.h"

#include <stdlib.h>
#include <string.h>

// read every element of value v (recursively); returns a checksum so nothing is optimised away
static uint64_t walk(const GGUFValue *v) {
    uint64_t h = v->type;
    if (v->type == GGUF_TYPE_STRING) {
        for (uint64_t i = 0; i < v->n; i++) h = h * 31 + v->p[i];
    } else if (v->type == GGUF_TYPE_ARRAY) {
        for (uint64_t i = 0; i < v->n; i++) {
            if (v->arr_type == GGUF_TYPE_STRING) {
                uint64_t len;
                const char *s = gguf_arr_str(v, i, &len);
                for (uint64_t k = 0; k < len; k++) h = h * 31 + (uint8_t)s[k];
            } else if (v->arr_type == GGUF_TYPE_ARRAY) {
                const GGUFValue *sub = gguf_arr_sub(v, i);
                if (!sub) abort();
                h ^= walk(sub);
            } else {
                double d;
                int64_t x;
                if (gguf_arr_f64(v, i, &d) == 0) h ^= (uint64_t)(d == d);
                if (gguf_arr_int(v, i, &x) == 0) h ^= (uint64_t)x;
            }
        }
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // a private copy: ASan then catches any read past the end of the "file"
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    GGUFFile g;
    if (gguf_parse(&g, buf, size, "fuzz.gguf") == 0) {
        volatile uint64_t h = 0;
        for (uint64_t i = 0; i < g.n_kv; i++) {
            const GGUFKV *kv = &g.kv[i];
            if (gguf_find_kv(&g, kv->key) != kv) abort(); // unique keys
            h ^= walk(&kv->v);
            const char *s;
            uint32_t u32;
            int32_t i32;
            uint64_t u64, n;
            float f, fa[4];
            int b;
            int32_t ia[4];
            int64_t la[4];
            const GGUFValue *arr;
            h ^= (uint64_t)gguf_get_str(&g, kv->key, &s) + (uint64_t)gguf_get_u32(&g, kv->key, &u32) +
                 (uint64_t)gguf_get_i32(&g, kv->key, &i32) + (uint64_t)gguf_get_u64(&g, kv->key, &u64) +
                 (uint64_t)gguf_get_f32(&g, kv->key, &f) + (uint64_t)gguf_get_bool(&g, kv->key, &b) +
                 (uint64_t)gguf_get_arr_str(&g, kv->key, &arr) + (uint64_t)gguf_get_arr_i32(&g, kv->key, ia, 4, &n) +
                 (uint64_t)gguf_get_arr_i64(&g, kv->key, la, 4, &n) + (uint64_t)gguf_get_arr_f32(&g, kv->key, fa, 4, &n);
            if (gguf_get_str(&g, kv->key, &s) == 0 && strlen(s) != kv->v.n) abort(); // the C string is the whole value
        }
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const GGUFTensor *t = &g.tensors[i];
            if (gguf_find_tensor(&g, t->name) != t) abort(); // unique names
            const uint8_t *p = t->data;
            for (size_t k = 0; k < t->nbytes; k++) h = h * 31 + p[k]; // reads every byte the header promises
            const GQType *ty = gq_type(t->type);
            if (!ty || t->ne[0] % ty->block) abort();
            int64_t K = t->ne[0], rows = K ? (int64_t)(t->nelem / (uint64_t)K) : 0;
            if (gq_row_bytes(t->type, K) * (size_t)rows != t->nbytes) abort();
            if (ty->supported && t->nelem <= 4096 && K > 0 && K <= 4096) { // (K alone is unbounded when rows = 0)
                float *w = malloc((size_t)t->nelem * sizeof(float)), *x = calloc((size_t)K, sizeof(float));
                float *y1 = malloc((size_t)rows * sizeof(float)), *y2 = malloc((size_t)rows * sizeof(float));
                if (w && x && y1 && y2) {
                    if (gguf_tensor_rows(&g, t, 0, rows, w)) abort();
                    for (int64_t k = 0; k < K; k++) x[k] = (float)(k % 7) - 3.0f;
                    size_t rb = gq_row_bytes(t->type, K);
                    if (gq_matvec_naive(t->type, t->data, rb, rows, K, x, y2)) abort();
                    // every instruction set the CPU has gives the naive twin's bits (NaN payloads aside)
                    int top = gq_set_isa(2);
                    for (int isa = 0; isa <= top; isa++) {
                        gq_set_isa(isa);
                        if (gq_matvec(t->type, t->data, rb, rows, K, x, y1, 1)) abort();
                        for (int64_t r = 0; r < rows; r++)
                            if (memcmp(&y1[r], &y2[r], 4) && !(y1[r] != y1[r] && y2[r] != y2[r])) abort();
                    }
                    gq_set_isa(top);
                }
                free(w);
                free(x);
                free(y1);
                free(y2);
            } else if (!ty->supported && gguf_tensor_supported(&g, t) == 0) abort();
        }
        (void)h;
        gguf_close(&g);
    }
    free(buf);
    return 0;
}
