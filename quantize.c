// SPDX-License-Identifier: MIT
// quantize.c - writes a compressed-tensors folder from a bf16/f16/f32 one, tensor by tensor, as llm-compressor's
// round-to-nearest schemes do (compressed_tensors.quantization.utils.calculate_qparams + lifecycle.forward.quantize
// + compressors.pack_quantized.helpers.pack_to_int32): for each output channel (or group of columns)
//   scale = bf16(max(|min(w, 0)|, |max(w, 0)|) / (bit_range / 2))      (448 for FP8 E4M3, 127.5 int8, 7.5 int4)
//   q = round(clamp(w / float(scale), q_min, q_max))                    (FP8: torch's cast; int: half to even)
// and int values packed into int32 words (value + 2^(bits-1), low bits first). tests/golden/make_quant_cases.py
// checks that the result equals compressed-tensors' own quantisation of the same weights, bit for bit. The scale is
// stored as F32 (the bf16 value, widened: exact): transformers and compressed-tensors decompress a weight in its
// scale's dtype, so an F32 scale gives them float(q) * scale in fp32, the weight glm4v computes with, where a BF16
// one would round every product to bf16.
#include "quantize.h"

#include "checkpoint.h"
#include "quant.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static float elem_f32(const STensor *t, size_t i) {
    switch (t->dtype) {
    case DT_BF16: return bf16_to_f32(((const uint16_t *)t->data)[i]);
    case DT_F16: return f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return ((const float *)t->data)[i];
    }
}

// the language-model Linear weights quantize writes quantised (layers < n_layers; not the router)
static int is_target(const STensor *t, int n_layers) {
    const char *n = t->name;
    const char *p = NULL;
    if (strncmp(n, "model.language_model.layers.", 28) == 0) p = n + 28;
    else if (strncmp(n, "model.layers.", 13) == 0) p = n + 13;
    if (!p || t->ndim != 2 || (t->dtype != DT_BF16 && t->dtype != DT_F16 && t->dtype != DT_F32)) return 0;
    size_t l = strlen(n);
    if (l < 8 || strcmp(n + l - 7, ".weight") != 0 || strstr(n, ".mlp.gate.weight") || strstr(n, "norm")) return 0;
    return atoi(p) < n_layers;
}

typedef struct {
    const STensor *src; // the input tensor
    char name[600];     // output name
    DType dt;           // output dtype (I32 for packed words, I64 for weight_shape)
    int ndim;           // output dims
    int64_t shape[2];   // output shape
    int part;           // 0: copy; 1: quantised values; 2: weight_scale; 3: weight_shape
    size_t nbytes;      // bytes
} OutT;

// one quantised Linear: its q bytes (FP8 / packed words) and scales, computed once per source tensor
typedef struct {
    const STensor *src; // the tensor these are for (NULL: none yet)
    uint8_t *q;         // [O, ld] bytes
    float *scale;       // [O, ngroups] bf16 values (stored as F32)
} QCache;

static int quantise_tensor(QCache *c, const STensor *t, int scheme, int group) {
    const int64_t O = t->shape[0], K = t->shape[1], G = scheme == QZ_INT4 ? group : K, ng = K / G;
    const int bits = scheme == QZ_INT4 ? 4 : 8;
    const int64_t ld = scheme == QZ_FP8 ? K : (K * bits + 31) / 32 * 4;
    free(c->q), free(c->scale);
    c->q = xcalloc((size_t)(O * ld), 1);
    c->scale = xmalloc((size_t)(O * ng) * sizeof(float));
    c->src = t;
    // bit_range / 2: FP8 (448 - (-448)) / 2; int: (2^(bits-1) - 1 - (-2^(bits-1))) / 2
    const float half = scheme == QZ_FP8 ? 448.0f : scheme == QZ_INT8 ? 255.0f / 2.0f : 15.0f / 2.0f;
    const float qmin = scheme == QZ_FP8 ? -448.0f : scheme == QZ_INT8 ? -128.0f : -8.0f;
    const float qmax = -qmin - (scheme == QZ_FP8 ? 0.0f : 1.0f);
#pragma omp parallel for schedule(static) if (O * K > (1 << 20))
    for (int64_t r = 0; r < O; r++) { // rows are independent: the same bytes for any thread count
        uint8_t *row = c->q + r * ld;
        for (int64_t g = 0; g < ng; g++) {
            float mn = 0.0f, mx = 0.0f; // min_vals = torch.min(min_vals, 0); max_vals = torch.max(max_vals, 0)
            for (int64_t k = g * G; k < (g + 1) * G; k++) {
                const float w = elem_f32(t, (size_t)(r * K + k));
                mn = w < mn ? w : mn, mx = w > mx ? w : mx;
            }
            // scales = max_val_pos / (bit_range / 2); scales == 0 -> eps; cast to the bf16 scale dtype
            float s = (fabsf(mn) > fabsf(mx) ? fabsf(mn) : fabsf(mx)) / half;
            if (s == 0.0f) s = 0x1p-23f;
            const float sf = bf16_to_f32(f32_to_bf16(s));
            c->scale[r * ng + g] = sf;
            for (int64_t k = g * G; k < (g + 1) * G; k++) {
                // scaled = x / scale; clamp(scaled, q_min, q_max); FP8: .to(float8_e4m3fn); int: torch.round
                float v = elem_f32(t, (size_t)(r * K + k)) / sf;
                v = v < qmin ? qmin : v > qmax ? qmax : v;
                if (scheme == QZ_FP8) row[k] = fp8_e4m3_from_f32(v);
                else {
                    const int q = (int)nearbyintf(v);
                    if (bits == 8) row[k] = (uint8_t)(q + 128); // pack_to_int32: value + offset, low bits first
                    else row[k / 2] |= (uint8_t)((q + 8) << (4 * (k & 1)));
                }
            }
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------- files

// the pages of a source tensor leave this process once it is written (they stay in the page cache): the resident
// set stays near one tensor whatever the checkpoint size
static void drop_pages(const void *p, size_t n) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p & ~(pg - 1);
    const uintptr_t e = ((uintptr_t)p + n + pg - 1) & ~(pg - 1);
    if (n) madvise((void *)a, e - a, MADV_DONTNEED);
}

static char *pjoin(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

// remove the temporary folder and what is in it (only plain files are ever written there)
static void remove_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char *p = pjoin(dir, e->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

// the signal that asked us to stop (SIGINT, SIGTERM, SIGHUP; 0: none): checked between tensors, so that an
// interrupted run still removes its OUT_DIR.tmp
static volatile sig_atomic_t qz_signal;
static void qz_on_signal(int sig) { qz_signal = sig; }

// -1 with one line once a stop signal arrived
static int interrupted(const char *dir) {
    return qz_signal ? glm_err("%s: interrupted by signal %d; the partial folder is removed", dir, (int)qz_signal) : 0;
}

static int write_all(FILE *f, const void *p, size_t n, const char *path) {
    if (n && fwrite(p, 1, n, f) != n) return glm_err("%s: write failed (%s)", path, strerror(errno));
    return 0;
}

static int copy_file(const char *from, const char *to) {
    size_t len;
    char *buf = read_file(from, &len, (size_t)1 << 32);
    if (!buf) return -1;
    FILE *f = fopen(to, "wb");
    if (!f) {
        free(buf);
        return glm_err("%s: cannot create (%s)", to, strerror(errno));
    }
    int rc = write_all(f, buf, len, to);
    if (fclose(f) && !rc) rc = glm_err("%s: write failed (%s)", to, strerror(errno));
    free(buf);
    return rc;
}

// one output shard: plan the tensors, write the header, then stream the data one source tensor at a time
static int write_shard(const SFile *sf, const char *path, int scheme, int group, int n_layers, cJSON *wmap,
                       const char *shard_name, size_t *total, cJSON *skipped, int *nquant, int quiet) {
    OutT *ot = xcalloc((size_t)sf->n * 3 + 1, sizeof(OutT));
    int n = 0, rc = 0;
    for (int i = 0; i < sf->n && !rc; i++) {
        const STensor *t = &sf->t[i];
        // int4: a Linear whose width the group does not divide stays as it is (listed in `ignore`), as llm-compressor
        // users do with GLM-4.5V's dense 10944-wide down_proj and groups of 128
        const int fits = scheme != QZ_INT4 || t->ndim != 2 || t->shape[1] % group == 0;
        if (is_target(t, n_layers) && !fits) {
            char mod[600];
            snprintf(mod, sizeof mod, "%.*s", (int)(strlen(t->name) - 7), t->name);
            cJSON_AddItemToArray(skipped, cJSON_CreateString(mod));
            if (!quiet)
                fprintf(stderr, "quantize: %s: %lld columns are not a multiple of --group %d: kept as %s (ignored)\n",
                        t->name, (long long)t->shape[1], group, dtype_name[t->dtype]);
        }
        if (!is_target(t, n_layers) || !fits) {
            OutT *o = &ot[n++];
            o->src = t, o->dt = t->dtype, o->ndim = 0, o->part = 0, o->nbytes = t->nbytes;
            snprintf(o->name, sizeof o->name, "%s", t->name);
            continue;
        }
        const int64_t O = t->shape[0], K = t->shape[1];
        ++*nquant;
        const int bits = scheme == QZ_INT4 ? 4 : 8;
        const size_t base = strlen(t->name) - 6; // "...weight" -> "..."
        OutT *q = &ot[n++], *s = &ot[n++];
        q->src = s->src = t, q->part = 1, s->part = 2;
        if (scheme == QZ_FP8) {
            snprintf(q->name, sizeof q->name, "%s", t->name);
            q->dt = DT_F8_E4M3, q->ndim = 2, q->shape[0] = O, q->shape[1] = K, q->nbytes = (size_t)(O * K);
        } else {
            snprintf(q->name, sizeof q->name, "%.*sweight_packed", (int)base, t->name);
            const int64_t words = (K * bits + 31) / 32;
            q->dt = DT_I32, q->ndim = 2, q->shape[0] = O, q->shape[1] = words, q->nbytes = (size_t)(O * words * 4);
        }
        const int64_t ng = scheme == QZ_INT4 ? K / group : 1;
        snprintf(s->name, sizeof s->name, "%.*sweight_scale", (int)base, t->name);
        s->dt = DT_F32, s->ndim = 2, s->shape[0] = O, s->shape[1] = ng, s->nbytes = (size_t)(O * ng * 4);
        if (scheme != QZ_FP8) {
            OutT *w = &ot[n++];
            w->src = t, w->part = 3, w->dt = DT_I64, w->ndim = 1, w->shape[0] = 2, w->nbytes = 16;
            snprintf(w->name, sizeof w->name, "%.*sweight_shape", (int)base, t->name);
        }
    }
    // header: {"__metadata__": {"format": "pt"}, name: {dtype, shape, data_offsets}} in file order
    cJSON *h = cJSON_CreateObject(), *md = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(md, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < n && !rc; i++) {
        OutT *o = &ot[i];
        cJSON *e = cJSON_AddObjectToObject(h, o->name), *sh = cJSON_AddArrayToObject(e, "shape");
        cJSON_AddStringToObject(e, "dtype", dtype_name[o->dt]);
        const int nd = o->part ? o->ndim : o->src->ndim;
        for (int d = 0; d < nd; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)(o->part ? o->shape[d] : o->src->shape[d])));
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + o->nbytes)));
        off += o->nbytes;
        if (wmap) cJSON_AddStringToObject(wmap, o->name, shard_name);
    }
    *total += off;
    char *hj = rc ? NULL : cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    FILE *f = rc ? NULL : fopen(path, "wb");
    if (!rc && !f) rc = glm_err("%s: cannot create (%s)", path, strerror(errno));
    if (!rc) {
        size_t hl = strlen(hj), pad = (8 - hl % 8) % 8; // the header padded with spaces to 8 bytes (safetensors)
        uint8_t len8[8];
        for (int b = 0; b < 8; b++) len8[b] = (uint8_t)((uint64_t)(hl + pad) >> (8 * b));
        rc = write_all(f, len8, 8, path) || write_all(f, hj, hl, path) || write_all(f, "       ", pad, path);
    }
    QCache qc = {0};
    for (int i = 0; i < n && !rc; i++) {
        OutT *o = &ot[i];
        if ((rc = interrupted(path))) break;
        if (o->part == 0) {
            rc = write_all(f, o->src->data, o->nbytes, path);
            if (sf->mapped) drop_pages(o->src->data, o->nbytes);
        }
        else if (o->part == 3) {
            const int64_t v[2] = {o->src->shape[0], o->src->shape[1]}; // little-endian hosts (x86-64)
            rc = write_all(f, v, 16, path);
        } else {
            if (qc.src != o->src) {
                quantise_tensor(&qc, o->src, scheme, group);
                if (sf->mapped) drop_pages(o->src->data, o->src->nbytes);
            }
            rc = write_all(f, o->part == 1 ? (const void *)qc.q : (const void *)qc.scale, o->nbytes, path);
        }
    }
    free(qc.q), free(qc.scale);
    if (f && fclose(f) && !rc) rc = glm_err("%s: write failed (%s)", path, strerror(errno));
    free(hj);
    free(ot);
    return rc;
}

// quantization_config as llm-compressor writes it for the scheme
static cJSON *quant_config_json(int scheme, int group, const cJSON *skipped) {
    cJSON *qc = cJSON_CreateObject();
    cJSON_AddStringToObject(qc, "quant_method", "compressed-tensors");
    cJSON_AddStringToObject(qc, "format", scheme == QZ_FP8 ? "float-quantized" : "pack-quantized");
    cJSON_AddStringToObject(qc, "quantization_status", "compressed");
    cJSON *g = cJSON_AddObjectToObject(cJSON_AddObjectToObject(qc, "config_groups"), "group_0");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(g, "targets"), cJSON_CreateString("Linear"));
    cJSON *w = cJSON_AddObjectToObject(g, "weights");
    cJSON_AddNumberToObject(w, "num_bits", scheme == QZ_INT4 ? 4 : 8);
    cJSON_AddStringToObject(w, "type", scheme == QZ_FP8 ? "float" : "int");
    cJSON_AddStringToObject(w, "strategy", scheme == QZ_INT4 ? "group" : "channel");
    if (scheme == QZ_INT4) cJSON_AddNumberToObject(w, "group_size", group);
    else cJSON_AddNullToObject(w, "group_size");
    cJSON_AddBoolToObject(w, "symmetric", 1);
    cJSON_AddBoolToObject(w, "dynamic", 0);
    cJSON_AddStringToObject(w, "observer", "minmax");
    if (scheme == QZ_FP8) {
        cJSON *a = cJSON_AddObjectToObject(g, "input_activations");
        cJSON_AddNumberToObject(a, "num_bits", 8);
        cJSON_AddStringToObject(a, "type", "float");
        cJSON_AddStringToObject(a, "strategy", "token");
        cJSON_AddBoolToObject(a, "symmetric", 1);
        cJSON_AddBoolToObject(a, "dynamic", 1);
        cJSON_AddNullToObject(a, "observer");
    } else cJSON_AddNullToObject(g, "input_activations");
    cJSON_AddNullToObject(g, "output_activations");
    cJSON *ig = cJSON_AddArrayToObject(qc, "ignore"); // the official FP8 releases' defaults, as patterns
    cJSON_AddItemToArray(ig, cJSON_CreateString("lm_head"));
    cJSON_AddItemToArray(ig, cJSON_CreateString("re:.*mlp\\.gate$"));
    cJSON_AddItemToArray(ig, cJSON_CreateString("re:(model\\.)?visual\\..*"));
    cJSON_AddItemToArray(ig, cJSON_CreateString("re:.*embed_tokens$"));
    for (const cJSON *e = skipped ? skipped->child : NULL; e; e = e->next) cJSON_AddItemToArray(ig, cJSON_Duplicate(e, 0));
    cJSON_AddNullToObject(qc, "kv_cache_scheme");
    return qc;
}

static int quantize_into(const Checkpoint *ck, const char *in_dir, const char *tmp, int scheme, int group, int quiet) {
    const int n_layers = ck->cfg.text.num_hidden_layers;
    int rc = 0, nquant = 0;
    // the shards, under their own names; the index when there was one
    char *ip = pjoin(in_dir, "model.safetensors.index.json");
    const int indexed = file_exists(ip);
    free(ip);
    cJSON *index = indexed ? cJSON_CreateObject() : NULL, *wmap = NULL, *meta = NULL, *skipped = cJSON_CreateArray();
    if (index) meta = cJSON_AddObjectToObject(index, "metadata"), wmap = cJSON_AddObjectToObject(index, "weight_map");
    size_t total = 0;
    for (int i = 0; i < ck->nfiles && !rc; i++) {
        const char *base = strrchr(ck->files[i].path, '/');
        base = base ? base + 1 : ck->files[i].path;
        char *op = pjoin(tmp, base);
        if (!quiet) fprintf(stderr, "quantize: %s (%d tensors)\n", base, ck->files[i].n);
        rc = write_shard(&ck->files[i], op, scheme, group, n_layers, wmap, base, &total, skipped, &nquant, quiet);
        free(op);
    }
    if (!rc && nquant == 0)
        rc = glm_err("%s: no Linear weight to quantise%s", in_dir,
                     scheme == QZ_INT4 ? " (--group divides none of their widths)" : "");
    FILE *f;
    char *p;
    if (!rc && index) {
        cJSON_AddNumberToObject(meta, "total_size", (double)total);
        char *ij = cJSON_Print(index);
        p = pjoin(tmp, "model.safetensors.index.json");
        f = fopen(p, "wb");
        rc = f ? write_all(f, ij, strlen(ij), p) : glm_err("%s: cannot create", p);
        if (f && fclose(f) && !rc) rc = glm_err("%s: write failed", p);
        free(p), free(ij);
    }
    cJSON_Delete(index);
    // config.json + quantization_config (the ignore list includes the Linears left unquantised)
    size_t len;
    char *txt = NULL;
    if (!rc) {
        p = pjoin(in_dir, "config.json");
        txt = read_file(p, &len, 64u << 20);
        free(p);
        if (!txt) rc = -1;
    }
    cJSON *cfg = txt ? cJSON_ParseWithLength(txt, len) : NULL;
    free(txt);
    if (!rc && !cfg) rc = glm_err("%s/config.json: invalid JSON", in_dir);
    if (!rc) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "quantization_config");
        cJSON_AddItemToObject(cfg, "quantization_config", quant_config_json(scheme, group, skipped));
        char *cj = cJSON_Print(cfg);
        p = pjoin(tmp, "config.json");
        f = fopen(p, "wb");
        rc = f ? write_all(f, cj, strlen(cj), p) || write_all(f, "\n", 1, p) : glm_err("%s: cannot create", p);
        if (f && fclose(f) && !rc) rc = glm_err("%s: write failed", p);
        free(p), free(cj);
    }
    cJSON_Delete(cfg);
    cJSON_Delete(skipped);
    // every other regular file (tokenizer, processor, generation config, chat template, ...)
    DIR *d = rc ? NULL : opendir(in_dir);
    if (!rc && !d) rc = glm_err("%s: cannot list (%s)", in_dir, strerror(errno));
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        if (nm[0] == '.' || strcmp(nm, "config.json") == 0 || strcmp(nm, "model.safetensors.index.json") == 0 ||
            (l > 12 && strcmp(nm + l - 12, ".safetensors") == 0))
            continue;
        char *from = pjoin(in_dir, nm), *to = pjoin(tmp, nm);
        struct stat st;
        if (stat(from, &st) == 0 && S_ISREG(st.st_mode)) rc = copy_file(from, to);
        free(from), free(to);
    }
    if (d) closedir(d);
    return rc;
}

int quantize_folder(const char *in_dir, const char *out_dir, int scheme, int group, int quiet) {
    if (scheme == QZ_INT4 && (group < 1 || group > 1 << 20)) return glm_err("--group %d is out of range", group);
    struct stat st;
    if (stat(out_dir, &st) == 0) { // must be an empty folder
        DIR *d = S_ISDIR(st.st_mode) ? opendir(out_dir) : NULL;
        if (!d) return glm_err("%s: exists and is not an empty folder", out_dir);
        struct dirent *e;
        int empty = 1;
        while ((e = readdir(d))) empty &= strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
        closedir(d);
        if (!empty) return glm_err("%s: exists and is not empty (refusing to overwrite)", out_dir);
    }
    size_t n = strlen(out_dir) + 8;
    char *tmp = xmalloc(n);
    snprintf(tmp, n, "%s.tmp", out_dir);
    if (stat(tmp, &st) == 0) {
        glm_err("%s: exists (left by an interrupted run?); remove it first", tmp);
        free(tmp);
        return -1;
    }
    Checkpoint ck;
    if (checkpoint_open(&ck, in_dir)) {
        free(tmp);
        return -1;
    }
    int rc = 0;
    if (ck.quant) rc = glm_err("%s: already quantised (config.json has a quantization_config)", in_dir);
    struct sigaction sa = {0}, old[3];
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    sa.sa_handler = qz_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    qz_signal = 0;
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);
    if (!rc && mkdir(tmp, 0755)) rc = glm_err("%s: cannot create (%s)", tmp, strerror(errno));
    else if (!rc) {
        rc = quantize_into(&ck, in_dir, tmp, scheme, group, quiet);
        if (!rc) rc = interrupted(tmp);
        // complete: replace the (empty or absent) OUT_DIR by the finished folder in one rename
        if (!rc) rmdir(out_dir);
        if (!rc && rename(tmp, out_dir)) rc = glm_err("%s: cannot rename to %s (%s)", tmp, out_dir, strerror(errno));
        if (rc) remove_tmp(tmp);
    }
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
    checkpoint_close(&ck);
    free(tmp);
    return rc ? -1 : 0;
}
