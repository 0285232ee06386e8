// SPDX-License-Identifier: MIT
// fuzz_quant.c - libFuzzer target: a quantised checkpoint (compressed-tensors float / int / pack-quantized, block FP8)
// as glm4v opens it, on arbitrary bytes. Input: [u16 LE n][n bytes of config.json][a safetensors file]. The config
// goes through quant_config_parse; a file that sf_parse refuses is tried once more with its data_offsets recomputed
// from the dtypes and shapes (so that mutated shapes and dtypes reach the quantisation checks, not only the offset
// checks fuzz_safetensors covers); every `<mod>.weight` / `<mod>.weight_packed` of the file is bound through
// quant_tensor (quant_config.c: dtype, shape, weight_shape, scales, zero points, g_idx, activation mode), with the
// [out, in] shape its own tensors give (a model's config would give it). A quantised Linear that binds is then run:
// quant_row against its naive twin, quant_dot and quant_linear_batch (decode rows and the batched tile path) against
// dot_f32 over the naive rows (int4: over their octet permutations, quant.h; FP8 x FP8 Linears, quant_fp8x.h: against
// fp8x_linear_naive; W8A8 ones, quant_i8x.h: against i8x_linear_naive), bit for bit on every instruction set the CPU has, and quant_linear_naive (double accumulation)
// within fp32 rounding.
#include "../ops.h"
#include "../quant.h"
#include "../quant_config.h"
#include "../quant_fp8x.h"
#include "../quant_i8x.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FQ_MAX_ELEMS (1 << 16) // largest weight (rows x cols) that is also multiplied
#define FQ_MAX_TRIES 16        // modules bound per input
#define FQ_ROWS 6              // activation rows of the batched product (more than quant.c's decode rows)

// the bits agree, or both are NaN (payloads aside)
static int same_bits(float a, float b) { return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)); }

// x . w in double, and sum |x w| (the scale of the fp32 rounding error)
static double dot_ref(const float *x, const float *w, int64_t K, double *mag) {
    double s = 0, m = 0;
    for (int64_t k = 0; k < K; k++) s += (double)x[k] * w[k], m += fabs((double)x[k] * w[k]);
    *mag = m;
    return s;
}

// run the bound quantised Linear W every way glm4v runs one and compare with the naive twins
static void fq_run(const Tensor *W) {
    const int64_t O = W->rows, K = W->cols;
    float *wn = malloc((size_t)(O * K) * sizeof(float)), *wf = malloc((size_t)K * sizeof(float));
    float *x = malloc((size_t)(FQ_ROWS * K) * sizeof(float)), *xa = malloc((size_t)(FQ_ROWS * K) * sizeof(float));
    float *ref = malloc((size_t)(FQ_ROWS * O) * sizeof(float)), *y = malloc((size_t)(FQ_ROWS * O) * sizeof(float));
    float *yn = malloc((size_t)(FQ_ROWS * O) * sizeof(float)), *yx = malloc((size_t)(FQ_ROWS * O) * sizeof(float));
    if (!wn || !wf || !x || !xa || !ref || !y || !yn || !yx) goto done;
    for (int64_t r = 0; r < O; r++) quant_row_naive(wn + r * K, W, r);
    for (int64_t i = 0; i < FQ_ROWS * K; i++) x[i] = (float)((int)((i * 29 + i / K * 131) % 17) - 8) * 0.37f;
    // the activations as the Linear quantises them, then dot_f32 over the naive rows: what every kernel must give
    memcpy(xa, x, (size_t)(FQ_ROWS * K) * sizeof(float));
    quant_act_rows(xa, K, FQ_ROWS, (int)K, W->act, W->group);
    if (W->dtype == DT_Q4) { // int4 sums in octet order: dot_f32 over the permuted row and activations (quant.h)
        const int64_t Kp = (K + 127) & ~(int64_t)127;
        float *xo = malloc((size_t)Kp * sizeof(float)), *wo = malloc((size_t)Kp * sizeof(float));
        if (!xo || !wo) {
            free(xo), free(wo);
            goto done;
        }
        for (int64_t r = 0; r < O; r++) {
            quant_permute_octets(wo, wn + r * K, K);
            for (int i = 0; i < FQ_ROWS; i++) {
                quant_permute_octets(xo, xa + i * K, K);
                ref[i * O + r] = dot_f32(xo, wo, (int)Kp);
            }
        }
        free(xo), free(wo);
    } else if (quant_scale_after(W)) { // row-scale int8: the codes' dot_f32, times the row's scale (quant.h)
        for (int64_t r = 0; r < O; r++) {
            quant_row_codes(wf, W, r);
            for (int i = 0; i < FQ_ROWS; i++) ref[i * O + r] = dot_f32(xa + i * K, wf, (int)K) * quant_scale(W, r, 0);
        }
    } else
        for (int i = 0; i < FQ_ROWS; i++)
            for (int64_t r = 0; r < O; r++) ref[i * O + r] = dot_f32(xa + i * K, wn + r * K, (int)K);
    // FP8 x FP8 Linears sum the codes' exact products (quant_fp8x.c), W8A8 ones the codes' exact integer products
    // (quant_i8x.c): their batches give fp8x_linear_naive's / i8x_linear_naive's bits
    const int fx = fp8x_applies(W) || i8x_applies(W);
    if (fp8x_applies(W)) fp8x_linear_naive(yx, x, W, NULL, FQ_ROWS);
    else if (fx) i8x_linear_naive(yx, x, W, NULL, FQ_ROWS);
    const CpuFeatures full = cpu;
    for (int isa = 2; isa >= 0; isa--) {
        // 2: what the CPU has; 1: AVX2 (no AVX-512); 0: portable C
        cpu = full;
        if (isa < 2) {
            if (!full.avx512f) continue;
            cpu.avx512f = cpu.avx512bw = cpu.avx512bf16 = cpu.avx512vbmi = cpu.avx512vnni = 0;
        }
        if (isa < 1) {
            if (!full.avx2) continue;
            memset(&cpu, 0, sizeof cpu);
        }
        for (int64_t r = 0; r < O; r++) {
            quant_row(wf, W, r);
            for (int64_t k = 0; k < K; k++)
                if (!same_bits(wf[k], wn[r * K + k])) abort(); // quant_row != quant_row_naive
            for (int i = 0; i < FQ_ROWS; i++)
                if (!same_bits(quant_dot(xa + i * K, W, r), ref[i * O + r])) abort(); // quant_dot != dot_f32
        }
        // a decode batch (2 rows: quant_dot per output) and a prefill batch (FQ_ROWS rows: dequantised tiles)
        for (int n = 2; n <= FQ_ROWS; n += FQ_ROWS - 2) {
            LinearJob J = {.y = y, .ldy = O, .x = x, .ldx = K, .W = W, .b = NULL, .n = n};
            quant_linear_batch(&J, 1);
            for (int64_t i = 0; i < n * O; i++)
                if (!same_bits(y[i], fx ? yx[i] : ref[i])) abort(); // a batch's bits differ from the decode kernel's
        }
    }
    cpu = full;
    // the double-accumulation twin: within fp32 rounding of dot_f32 wherever everything is finite
    quant_linear_naive(yn, x, W, NULL, FQ_ROWS);
    for (int i = 0; i < FQ_ROWS; i++)
        for (int64_t r = 0; r < O; r++) {
            double mag;
            const double d = dot_ref(xa + i * K, wn + r * K, K, &mag);
            const float a = ref[i * O + r], b = yn[i * O + r], c = fx ? yx[i * O + r] : a;
            if (!isfinite(mag) || !isfinite(a) || !isfinite(b) || !isfinite(c) || mag > 1e30) continue;
            // (FP8 x FP8 and W8A8: the activations and weights enter as exact codes; + 4 roundings: the two scalings,
            // and the fake-quantised activations and their products, which the reference d rounds but these do not)
            const double tol = ((double)K + (fx ? 4 : 2)) * 0x1p-24 * mag + 1e-37;
            if (fabs((double)a - d) > tol || fabs((double)b - d) > tol || fabs((double)c - d) > tol) abort();
        }
done:
    free(wn), free(wf), free(x), free(xa), free(ref), free(y), free(yn), free(yx);
}

// the [out, in] shapes to bind module mod at: a weight's own shape; a packed weight's weight_shape when it holds
// one, else its words unpacked at 4 and at 8 bits. Returns the number of distinct shapes (dims within a config's
// int range)
static int fq_shapes(const SFile *f, const STensor *t, const char *mod, int packed, int64_t shp[3][2]) {
    if (t->ndim != 2) return 0;
    int n = 0;
    if (!packed) {
        shp[n][0] = t->shape[0], shp[n][1] = t->shape[1], n++;
    } else {
        char nm[600];
        snprintf(nm, sizeof nm, "%s.weight_shape", mod);
        const STensor *ws = sf_find(f, nm);
        if (ws && ws->dtype == DT_I64 && ws->nbytes >= 16) {
            int64_t v[2];
            memcpy(v, ws->data, sizeof v);
            shp[n][0] = v[0], shp[n][1] = v[1], n++;
        } else if (ws && ws->dtype == DT_I32 && ws->nbytes >= 8) {
            int32_t v[2];
            memcpy(v, ws->data, sizeof v);
            shp[n][0] = v[0], shp[n][1] = v[1], n++;
        }
        shp[n][0] = t->shape[0], shp[n][1] = t->shape[1] * 8, n++;
        shp[n][0] = t->shape[0], shp[n][1] = t->shape[1] * 4, n++;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= shp[j][0] == shp[i][0] && shp[j][1] == shp[i][1];
        if (!dup && shp[i][0] >= 0 && shp[i][0] <= INT32_MAX && shp[i][1] >= 0 && shp[i][1] <= INT32_MAX)
            shp[k][0] = shp[i][0], shp[k][1] = shp[i][1], k++;
    }
    return k;
}

// buf with each tensor's data_offsets made to tile the data block in header order (bytes from dtype and shape; the
// data block cut or zero-padded to their total), or NULL when the header is not a JSON object of such entries
static uint8_t *fq_retile(const uint8_t *buf, size_t len, size_t *outlen) {
    if (len < 8) return NULL;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > len - 8) return NULL;
    cJSON *h = cJSON_ParseWithLength((const char *)buf + 8, (size_t)n);
    uint8_t *out = NULL;
    size_t off = 0;
    for (cJSON *t = h && cJSON_IsObject(h) ? h->child : NULL; t; t = t->next) {
        if (t->string && strcmp(t->string, "__metadata__") == 0) continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
        const int d = cJSON_IsString(dt) ? dtype_from_name(dt->valuestring) : -1;
        if (d < 0 || !cJSON_IsArray(sh)) goto done;
        double bytes = dtype_size[d];
        for (const cJSON *e = sh->child; e; e = e->next) bytes *= cJSON_IsNumber(e) && e->valuedouble >= 0 ? e->valuedouble : -1;
        if (!(bytes >= 0 && bytes <= (1 << 20))) goto done;
        cJSON *o = cJSON_CreateArray();
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off + bytes));
        if (cJSON_GetObjectItemCaseSensitive(t, "data_offsets")) cJSON_ReplaceItemInObjectCaseSensitive(t, "data_offsets", o);
        else cJSON_AddItemToObject(t, "data_offsets", o);
        off += (size_t)bytes;
        if (off > (4 << 20)) goto done;
    }
    char *txt = h ? cJSON_PrintUnformatted(h) : NULL;
    if (txt) {
        const size_t hl = strlen(txt), have = len - 8 - (size_t)n;
        out = calloc(1, 8 + hl + off);
        if (out) {
            for (int i = 0; i < 8; i++) out[i] = (uint8_t)((uint64_t)hl >> (8 * i));
            memcpy(out + 8, txt, hl);
            memcpy(out + 8 + hl, buf + 8 + n, have < off ? have : off);
            *outlen = 8 + hl + off;
        }
        free(txt);
    }
done:
    cJSON_Delete(h);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int inited;
    if (!inited) ops_init(), inited = 1;
    if (size < 2) return 0;
    Checkpoint ck;
    memset(&ck, 0, sizeof ck);
    strcpy(ck.dir, "fuzz");
    size_t clen = (size_t)(data[0] | data[1] << 8);
    if (clen > size - 2) clen = size - 2;
    size_t slen = size - 2 - clen;
    // private copies: ASan then catches any read past the end of the config text or the "file"
    char *json = malloc(clen + 1);
    uint8_t *buf = malloc(slen ? slen : 1);
    if (!json || !buf) goto out;
    memcpy(json, data + 2, clen);
    json[clen] = 0;
    if (slen) memcpy(buf, data + 2 + clen, slen);
    if (quant_config_parse(&ck.quant, json, clen, "fuzz/config.json")) goto out;
    SFile f;
    int ok = sf_parse(&f, buf, slen, "fuzz/model.safetensors") == 0;
    if (!ok) {
        size_t rlen = 0;
        uint8_t *r = fq_retile(buf, slen, &rlen);
        if (r) free(buf), buf = r, slen = rlen, ok = sf_parse(&f, buf, slen, "fuzz/model.safetensors") == 0;
    }
    if (ok) {
        ck.files = &f, ck.nfiles = 1;
        int tries = 0;
        for (int i = 0; i < f.n && tries < FQ_MAX_TRIES; i++) {
            const STensor *t = &f.t[i];
            const size_t nl = strlen(t->name);
            const int packed = nl > 14 && strcmp(t->name + nl - 14, ".weight_packed") == 0;
            if (!packed && !(nl > 7 && strcmp(t->name + nl - 7, ".weight") == 0)) continue;
            if (nl > 500) continue;
            char mod[512], name[520];
            memcpy(mod, t->name, nl - (packed ? 14 : 7));
            mod[nl - (packed ? 14 : 7)] = 0;
            snprintf(name, sizeof name, "%s.weight", mod);
            int64_t shp[3][2];
            const int ns = fq_shapes(&f, t, mod, packed, shp);
            for (int s = 0; s < ns; s++, tries++) {
                Tensor W;
                if (quant_tensor(&ck, &W, name, 2, shp[s]) != 0) continue;
                if (W.rows != shp[s][0] || W.cols != shp[s][1]) abort(); // bound at the shape asked for
                if (!is_quantised(&W)) continue;                          // a plain bf16 / f16 / f32 weight
                // the quantised bytes, the scale table and the zero points lie inside the file
                const uint8_t *lo = buf, *hi = buf + slen;
                const uint8_t *d = W.data, *sc = W.scale;
                const int64_t srows = (W.rows + W.block_rows - 1) / W.block_rows;
                const size_t ssz = (size_t)dtype_size[W.scale_dtype] * (size_t)(srows * W.scale_cols);
                if (W.rows && (d < lo || d + W.rows * W.ld > hi || sc < lo || sc + ssz > hi)) abort();
                if (W.zero) { // int32 [ceil(rows * bits / 32), scale_cols]
                    const int64_t zr = (W.rows * (W.dtype == DT_Q4 ? 4 : 8) + 31) / 32;
                    const uint8_t *z = (const uint8_t *)W.zero;
                    if (z < lo || z + zr * W.scale_cols * 4 > hi) abort();
                }
                if (W.rows > 0 && W.cols > 0 && W.rows * W.cols <= FQ_MAX_ELEMS) fq_run(&W);
            }
        }
        sf_close(&f);
    }
out:
    quant_config_free(ck.quant);
    free(json);
    free(buf);
    return 0;
}
