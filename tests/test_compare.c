// SPDX-License-Identifier: MIT
// test_compare.c - dump.c (the --dump writer) and the ./glm4v-compare CLI: identical/nudged dumps, HF fixture names
// against our names, npy/npz files written by numpy (tests/golden/make_npz_cases.py), broken inputs, bad flags.
// Runs the CLI binary (./glm4v-compare, or $GLM4V_COMPARE) in a temporary directory.
#include "../dump.h"
#include "test_util.h"

#include <math.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];
static const char *cmp_bin;
static char out_txt[1 << 16], err_txt[4096];

// path inside the temporary directory (a pool of static buffers; the tests need fewer than 64 at a time)
static const char *tpath(const char *name) {
    static char buf[64][512];
    static int k;
    char *p = buf[k++ % 64];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void slurp(const char *path, char *dst, size_t cap) {
    dst[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(dst, 1, cap - 1, f);
    dst[n] = 0;
    fclose(f);
}

// run glm4v-compare ARGS; stdout/stderr into out_txt/err_txt; returns the exit status (-1 when it crashed)
static int run_cmp(const char *args) {
    char cmd[4096], outp[512], errp[512];
    snprintf(outp, sizeof outp, "%s/out.txt", tmpdir);
    snprintf(errp, sizeof errp, "%s/err.txt", tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s", cmp_bin, args, outp, errp);
    int st = system(cmd);
    slurp(outp, out_txt, sizeof out_txt);
    slurp(errp, err_txt, sizeof err_txt);
    size_t n = strlen(err_txt);
    if (n && err_txt[n - 1] == '\n') err_txt[n - 1] = 0; // one line: no newline left
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// the output line for canonical name (tag in columns 0-5, name from column 8), or NULL
static const char *line_of(const char *out, const char *name) {
    size_t n = strlen(name);
    for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
        if (strlen(l) > 8 + n && strncmp(l + 8, name, n) == 0 && (l[8 + n] == ' ' || l[8 + n] == '\n')) return l;
    }
    return NULL;
}

static int line_is(const char *out, const char *name, const char *tag) {
    const char *l = line_of(out, name);
    return l && strncmp(l, tag, strlen(tag)) == 0;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int same_files(const char *a, const char *b) {
    size_t na, nb;
    char *x = read_file(a, &na, 1 << 28), *y = read_file(b, &nb, 1 << 28);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

// ----------------------------------------------------------------------------
// dump.c

static void test_dump(void) {
    CHECK(crc32_bytes("123456789", 9) == 0xcbf43926u, "crc32_bytes check value 0xcbf43926");
    uint8_t big[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 31 + 7);
    CHECK(crc32_bytes(big, sizeof big) == (uint32_t)crc32(0, big, sizeof big), "crc32_bytes == zlib crc32");

    float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    int64_t ids[3] = {5, -1, 1LL << 40};
    uint16_t h[4] = {0x3c00, 0xc000, 0x3800, 0};
    int64_t sa[2] = {2, 3}, si[1] = {3}, sh[2] = {2, 2};
    Dump d1, d2;
    dump_init(&d1);
    dump_add(&d1, "zeta", DT_F32, 2, sa, a);
    dump_add(&d1, "alpha", DT_I64, 1, si, ids);
    dump_add(&d1, "mid\"q", DT_BF16, 2, sh, h);
    dump_add(&d1, "alpha", DT_I64, 1, si, ids); // replaced, not duplicated
    dump_meta(&d1, "format", "glm4v-dump");
    dump_meta(&d1, "model", "tiny");
    dump_meta(&d1, "model", "tiny-moe");
    CHECK(d1.n == 3 && d1.nmeta == 2, "dump_add/dump_meta replace same-name entries (n=%d nmeta=%d)", d1.n, d1.nmeta);
    // the same content added in another order
    dump_init(&d2);
    dump_meta(&d2, "model", "tiny-moe");
    dump_add(&d2, "mid\"q", DT_BF16, 2, sh, h);
    dump_add(&d2, "alpha", DT_F32, 2, sa, a); // replaced below by the I64 version
    dump_add(&d2, "alpha", DT_I64, 1, si, ids);
    dump_add(&d2, "zeta", DT_F32, 2, sa, a);
    dump_meta(&d2, "format", "glm4v-dump");

    const char *p1 = tpath("d1.safetensors"), *p2 = tpath("d2.safetensors"), *p3 = tpath("d3.safetensors");
    CHECK(dump_write(&d1, p1) == 0, "dump_write ok (%s)", glm_errmsg);
    CHECK(dump_write(&d1, p3) == 0 && same_files(p1, p3), "dump_write twice: byte-identical files");
    CHECK(dump_write(&d2, p2) == 0 && same_files(p1, p2), "same content in another insertion order: byte-identical");

    size_t len;
    uint8_t *raw = (uint8_t *)read_file(p1, &len, 1 << 20);
    uint64_t hl = 0;
    for (int i = 7; raw && len >= 8 && i >= 0; i--) hl = hl << 8 | raw[i];
    CHECK(raw && (8 + hl) % 8 == 0, "data block starts 8-byte aligned (header %llu bytes)", (unsigned long long)hl);
    int ws_ok = raw != NULL;
    for (uint64_t i = 8; ws_ok && i < 8 + hl; i++) { // no whitespace before the trailing padding
        if (raw[i] == ' ') {
            for (uint64_t j = i; j < 8 + hl; j++) ws_ok &= raw[j] == ' ';
            break;
        }
    }
    CHECK(ws_ok && raw && memcmp(raw + 8, "{\"__metadata__\":{", 17) == 0, "header: compact JSON, metadata first");
    free(raw);

    SFile f;
    int ok = sf_open(&f, p1) == 0;
    CHECK(ok, "dump readable by sf_open (%s)", glm_errmsg);
    if (ok) {
        const STensor *t = sf_find(&f, "zeta"), *ti = sf_find(&f, "alpha"), *tb = sf_find(&f, "mid\"q");
        CHECK(f.n == 3 && t && ti && tb, "three tensors, names intact (escaped quote)");
        CHECK(t && t->dtype == DT_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
                  memcmp(t->data, a, sizeof a) == 0,
              "F32 tensor round-trips");
        CHECK(ti && ti->dtype == DT_I64 && memcmp(ti->data, ids, sizeof ids) == 0, "I64 tensor round-trips");
        CHECK(tb && tb->dtype == DT_BF16 && memcmp(tb->data, h, sizeof h) == 0, "BF16 tensor round-trips");
        CHECK(ti && tb && t && (const uint8_t *)ti->data < (const uint8_t *)tb->data &&
                  (const uint8_t *)tb->data < (const uint8_t *)t->data,
              "data in name order");
        cJSON *m = f.metadata ? cJSON_Parse(f.metadata) : NULL;
        int crc_ok = m != NULL;
        for (int i = 0; crc_ok && i < f.n; i++) {
            char key[64], want[16];
            snprintf(key, sizeof key, "crc32.%s", f.t[i].name);
            snprintf(want, sizeof want, "%08lx", crc32(0, f.t[i].data, (uInt)f.t[i].nbytes));
            cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
            crc_ok = cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
        }
        CHECK(crc_ok, "__metadata__ crc32.<name> == zlib crc32 of each tensor's bytes");
        cJSON *mv = m ? cJSON_GetObjectItemCaseSensitive(m, "model") : NULL;
        CHECK(cJSON_IsString(mv) && strcmp(mv->valuestring, "tiny-moe") == 0, "caller metadata kept");
        cJSON_Delete(m);
        sf_close(&f);
    }

    // failures leave nothing behind
    const char *bad = tpath("no/such/dir/x.safetensors");
    glm_errmsg[0] = 0;
    // (the call on its own line: GCC 12.2's UBSan reports glm_errmsg, a thread-local array, as a NULL strstr argument
    // inside the CHECK condition here; a false report, the address is never NULL)
    const int wr = dump_write(&d1, bad);
    const int named = strstr(glm_errmsg, bad) != NULL;
    CHECK(wr == -1 && named && access(bad, F_OK) != 0,
          "dump_write into a missing directory fails naming the path: %s", glm_errmsg);
    const char *isdir = tpath("adir");
    mkdir(isdir, 0755);
    write_bytes(tpath("adir/keep"), "x", 1); // rename onto a non-empty directory fails
    CHECK(dump_write(&d1, isdir) == -1 && strstr(glm_errmsg, isdir), "dump_write onto a directory fails: %s",
          glm_errmsg);
    int leftovers = 0;
    DIR *dir = opendir(tmpdir);
    for (struct dirent *de; dir && (de = readdir(dir));) leftovers += strstr(de->d_name, ".tmp.") != NULL;
    if (dir) closedir(dir);
    CHECK(leftovers == 0, "no temporary file left after failed writes");
    dump_free(&d1);
    dump_free(&d2);
}

// ----------------------------------------------------------------------------
// HF fixture -> our dump names (explicit: this is the naming the CLI must bridge)

typedef struct {
    const char *hf, *ours;
    int squeeze; // drop size-1 dims (HF batch dims)
} NameMap;

static const NameMap name_map[] = {
    {"input.input_ids", "input_ids", 1},
    {"hook.position_ids", "position_ids", 1},
    {"input.pixel_values", "pixel_values", 0},
    {"input.image_grid_thw", "image_grid_thw", 0},
    {"hook.model.visual.patch_embed", "model.visual.patch_embed", 0},
    {"hook.model.visual.embeddings", "model.visual.embeddings", 0},
    {"hook.model.visual.blocks.0", "model.visual.blocks.0", 0},
    {"hook.model.visual.post_layernorm", "model.visual.post_layernorm", 0},
    {"hook.model.visual.downsample", "model.visual.downsample", 1},
    {"hook.model.visual.merger", "image_embeds", 0},
    {"hidden_states.0", "hidden_states.0", 0},
    {"hidden_states.1", "hidden_states.1", 0},
    {"hidden_states.2", "hidden_states.2", 0},
    {"hidden_states.3", "hidden_states.3", 0},
    {"hook.model.language_model.layers.0.self_attn", "model.language_model.layers.0.self_attn", 1},
    {"hook.model.language_model.layers.0.mlp", "model.language_model.layers.0.mlp", 1},
    {"hook.model.language_model.layers.1.mlp", "model.language_model.layers.1.mlp", 1},
    {"hook.model.language_model.layers.1.mlp.gate.out0", "model.language_model.layers.1.mlp.gate.out0", 0},
    {"hook.model.language_model.layers.1.mlp.gate.out1", "model.language_model.layers.1.mlp.gate.out1", 0},
    {"hook.model.language_model.layers.1.mlp.gate.out2", "model.language_model.layers.1.mlp.gate.out2", 0},
    {"logits", "logits", 0},
    {"generate.ids", "generated_ids", 0},
    {"generate.scores", "generated_logits", 0},
};

// golden HF file -> Dump under our names (tensors not in name_map are left out)
static int dump_from_golden(Dump *d, const SFile *g) {
    dump_init(d);
    int n = 0;
    for (size_t k = 0; k < sizeof name_map / sizeof *name_map; k++) {
        const STensor *t = sf_find(g, name_map[k].hf);
        if (!t) continue;
        int64_t shape[ST_MAX_DIMS];
        int nd = 0;
        for (int i = 0; i < t->ndim; i++)
            if (!name_map[k].squeeze || t->shape[i] != 1) shape[nd++] = t->shape[i];
        dump_add(d, name_map[k].ours, t->dtype, nd, shape, t->data);
        n++;
    }
    return n;
}

static DumpTensor *dump_get(Dump *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->t[i].name, name) == 0) return &d->t[i];
    return NULL;
}

static void test_golden(const char *ddir) {
    char gtext[512], gimage[512], args[2048];
    snprintf(gtext, sizeof gtext, "%s/golden/moe.text.safetensors", ddir);
    snprintf(gimage, sizeof gimage, "%s/golden/moe.image.safetensors", ddir);
    SFile g;
    if (sf_open(&g, gtext)) {
        CHECK(0, "open %s: %s", gtext, glm_errmsg);
        return;
    }
    Dump d;
    int n = dump_from_golden(&d, &g);
    const char *ours = tpath("ours.safetensors");
    CHECK(n == 14 && dump_write(&d, ours) == 0, "moe.text re-written under our names (%d tensors)", n);

    // identical dumps
    snprintf(args, sizeof args, "%s %s", ours, ours);
    int rc = run_cmp(args);
    CHECK(rc == 0 && strstr(out_txt, "14 compared: 14 passed, 0 failed") && !strstr(out_txt, "first divergence"),
          "identical dumps pass (exit %d)", rc);
    CHECK(line_is(out_txt, "logits", "PASS") && strstr(line_of(out_txt, "logits"), "max_abs 0.0e+00") &&
              strstr(line_of(out_txt, "logits"), "first_diff -"),
          "identical: logits max_abs 0, no first_diff");

    // HF names vs ours
    snprintf(args, sizeof args, "%s %s", gtext, ours);
    rc = run_cmp(args);
    CHECK(rc == 0 && strstr(out_txt, "15 compared: 15 passed, 0 failed; 4 only in A, 0 only in B"),
          "HF-style moe.text vs our names: pass (exit %d)", rc);
    CHECK(line_is(out_txt, "input_ids", "PASS") && line_is(out_txt, "generated_ids", "PASS") &&
              line_is(out_txt, "generated_logits", "PASS") &&
              line_is(out_txt, "model.language_model.layers.0.self_attn", "PASS"),
          "input./hook./generate. names and [1,L,H] vs [L,H] matched");
    const char *nl = line_of(out_txt, "model.language_model.norm");
    CHECK(nl && !strncmp(nl, "PASS", 4) && strstr(nl, "(vs B hidden_states.3)"),
          "model.language_model.norm compared with the last hidden_states");
    CHECK(line_is(out_txt, "attention_mask", "A-only") && line_is(out_txt, "generate.margin", "A-only"),
          "tensors in one file only are listed");
    // data-flow order of the printed lines
    static const char *order[] = {"input_ids",
                                  "attention_mask",
                                  "hidden_states.0",
                                  "model.language_model.layers.0.self_attn",
                                  "model.language_model.layers.0.mlp",
                                  "hidden_states.1",
                                  "model.language_model.layers.1.mlp.gate.out0",
                                  "model.language_model.layers.1.mlp.gate.out2",
                                  "model.language_model.layers.1.mlp",
                                  "hidden_states.2",
                                  "hidden_states.3",
                                  "model.language_model.norm",
                                  "logits",
                                  "generated_ids",
                                  "generated_logits"};
    int in_order = 1;
    for (size_t i = 1; i < sizeof order / sizeof *order; i++) {
        const char *x = line_of(out_txt, order[i - 1]), *y = line_of(out_txt, order[i]);
        if (!x || !y || x >= y) {
            in_order = 0;
            printf("# out of order: %s / %s\n", order[i - 1], order[i]);
        }
    }
    CHECK(in_order, "lines sorted in data-flow order");

    // nudge the largest |logit| by 1% of its value
    DumpTensor *lg = dump_get(&d, "logits");
    float *lv = lg->data;
    size_t nl_el = lg->nbytes / 4, im = 0;
    for (size_t i = 0; i < nl_el; i++)
        if (fabsf(lv[i]) > fabsf(lv[im])) im = i;
    lv[im] *= 1.01f;
    const char *nudged = tpath("nudged.safetensors");
    dump_write(&d, nudged);
    snprintf(args, sizeof args, "%s %s", gtext, nudged);
    rc = run_cmp(args);
    char idx[64];
    snprintf(idx, sizeof idx, "first_diff [%zu,%zu]", im / (size_t)lg->shape[1], im % (size_t)lg->shape[1]);
    CHECK(rc == 1 && strstr(out_txt, "first divergence: logits\n") && line_is(out_txt, "logits", "FAIL") &&
              strstr(line_of(out_txt, "logits"), idx),
          "logit nudged by 1%%: exit 1, first divergence: logits, %s", idx);
    CHECK(line_is(out_txt, "hidden_states.3", "PASS") && line_is(out_txt, "generated_logits", "PASS"),
          "other tensors still pass");
    // --names restricts the comparison
    snprintf(args, sizeof args, "%s %s --names 'hidden_states.*' --names=input_ids", gtext, nudged);
    rc = run_cmp(args);
    CHECK(rc == 0 && !line_of(out_txt, "logits") && strstr(out_txt, "5 compared: 5 passed"),
          "--names 'hidden_states.*' --names=input_ids skips logits (exit %d)", rc);
    snprintf(args, sizeof args, "%s %s --names 'nothing*'", gtext, nudged);
    CHECK(run_cmp(args) == 1 && strstr(out_txt, "no tensors in common"), "--names matching nothing: exit 1");
    // an earlier layer diverging is reported first
    DumpTensor *h2 = dump_get(&d, "hidden_states.2");
    ((float *)h2->data)[5] += 0.1f;
    dump_write(&d, nudged);
    snprintf(args, sizeof args, "%s %s", gtext, nudged);
    rc = run_cmp(args);
    CHECK(rc == 1 && strstr(out_txt, "first divergence: hidden_states.2\n") &&
              strstr(line_of(out_txt, "hidden_states.2"), "first_diff [0,5]"),
          "hidden_states.2 and logits differ: first divergence hidden_states.2");
    // --rtol loose enough to accept the nudges
    snprintf(args, sizeof args, "%s %s --rtol 0.2", gtext, nudged);
    CHECK(run_cmp(args) == 0, "--rtol 0.2 accepts them");
    ((float *)h2->data)[5] -= 0.1f;
    lv[im] = ((float *)sf_find(&g, "logits")->data)[im];

    // router top-k: any order within a row
    DumpTensor *w = dump_get(&d, "model.language_model.layers.1.mlp.gate.out1");
    DumpTensor *e = dump_get(&d, "model.language_model.layers.1.mlp.gate.out2");
    int k = (int)e->shape[1], rows = (int)e->shape[0];
    float *wv = w->data;
    int64_t *ev = e->data;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < k / 2; j++) {
            float tw = wv[r * k + j];
            wv[r * k + j] = wv[r * k + k - 1 - j];
            wv[r * k + k - 1 - j] = tw;
            int64_t te = ev[r * k + j];
            ev[r * k + j] = ev[r * k + k - 1 - j];
            ev[r * k + k - 1 - j] = te;
        }
    const char *swapped = tpath("swapped.safetensors");
    dump_write(&d, swapped);
    snprintf(args, sizeof args, "%s %s", gtext, swapped);
    rc = run_cmp(args);
    CHECK(rc == 0 && line_is(out_txt, "model.language_model.layers.1.mlp.gate.out2", "PASS") &&
              line_is(out_txt, "model.language_model.layers.1.mlp.gate.out1", "PASS"),
          "top-k ids/weights reversed within every row: still pass (exit %d)", rc);
    ev[3 * k] = (ev[3 * k] + 1) % 8 == ev[3 * k + 1] ? (ev[3 * k] + 2) % 8 : (ev[3 * k] + 1) % 8; // another expert
    dump_write(&d, swapped);
    rc = run_cmp(args);
    CHECK(rc == 1 && line_is(out_txt, "model.language_model.layers.1.mlp.gate.out2", "FAIL"),
          "a different expert id in one row fails");
    // integer tensors: exact
    DumpTensor *ii = dump_get(&d, "input_ids");
    ((int64_t *)ii->data)[7] += 1;
    dump_write(&d, swapped);
    snprintf(args, sizeof args, "%s %s --atol 1000", gtext, swapped);
    rc = run_cmp(args);
    CHECK(rc == 1 && line_is(out_txt, "input_ids", "FAIL") && strstr(out_txt, "first divergence: input_ids\n"),
          "input_ids off by one fails even with --atol 1000");
    dump_free(&d);
    sf_close(&g);

    // moe.image: [3,1,L] vs [3,L], [N,128,1,1] vs [N,128], model.visual + model.visual.merger -> image_embeds
    if (sf_open(&g, gimage)) {
        CHECK(0, "open %s: %s", gimage, glm_errmsg);
        return;
    }
    n = dump_from_golden(&d, &g);
    dump_write(&d, ours);
    snprintf(args, sizeof args, "%s %s", gimage, ours);
    rc = run_cmp(args);
    CHECK(rc == 0 && strstr(out_txt, " 0 failed") && line_is(out_txt, "position_ids", "PASS") &&
              line_is(out_txt, "model.visual.downsample", "PASS") && line_is(out_txt, "image_embeds", "PASS") &&
              line_is(out_txt, "model.visual", "A-only"),
          "HF-style moe.image vs our names (squeezed dims, merger -> image_embeds): pass (exit %d)", rc);
    CHECK(line_of(out_txt, "pixel_values") < line_of(out_txt, "model.visual.patch_embed") &&
              line_of(out_txt, "model.visual.blocks.0") < line_of(out_txt, "model.visual.downsample") &&
              line_of(out_txt, "image_embeds") < line_of(out_txt, "hidden_states.0"),
          "vision lines in data-flow order");
    // BF16 copy of every float tensor: compared after conversion
    Dump b;
    dump_init(&b);
    for (int i = 0; i < d.n; i++) {
        DumpTensor *t = &d.t[i];
        if (t->dtype != DT_F32) {
            dump_add(&b, t->name, t->dtype, t->ndim, t->shape, t->data);
            continue;
        }
        size_t ne = t->nbytes / 4;
        uint16_t *hb = xmalloc(ne * 2);
        for (size_t j = 0; j < ne; j++) {
            uint32_t u;
            memcpy(&u, (float *)t->data + j, 4);
            hb[j] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16); // round to nearest even
        }
        dump_add(&b, t->name, DT_BF16, t->ndim, t->shape, hb);
        free(hb);
    }
    const char *bf = tpath("bf16.safetensors");
    dump_write(&b, bf);
    snprintf(args, sizeof args, "%s %s --rtol 1e-2", gimage, bf);
    rc = run_cmp(args);
    CHECK(rc == 0 && line_is(out_txt, "logits", "PASS"), "BF16 dump vs F32 fixture at bf16 tolerance (exit %d)", rc);
    snprintf(args, sizeof args, "%s %s", gimage, bf);
    CHECK(run_cmp(args) == 1 && line_is(out_txt, "logits", "FAIL"), "... and fails at the default fp32 tolerance");
    dump_free(&b);
    dump_free(&d);
    sf_close(&g);
}

// ----------------------------------------------------------------------------
// synthetic: numeric block order, NaN

static void test_order_nan(void) {
    Dump a, b;
    dump_init(&a);
    dump_init(&b);
    int64_t s[1] = {2};
    for (int i = 0; i < 12; i++) {
        char name[64];
        float v[2] = {(float)i, 1.0f};
        snprintf(name, sizeof name, "model.visual.blocks.%d", i);
        dump_add(&a, name, DT_F32, 1, s, v);
        if (i == 9 || i == 10) v[1] = 2.0f;
        dump_add(&b, name, DT_F32, 1, s, v);
        snprintf(name, sizeof name, "hidden_states.%d", i);
        v[1] = 1.0f;
        dump_add(&a, name, DT_F32, 1, s, v);
        dump_add(&b, name, DT_F32, 1, s, v);
    }
    dump_write(&a, tpath("oa.safetensors"));
    dump_write(&b, tpath("ob.safetensors"));
    char args[1024];
    snprintf(args, sizeof args, "%s %s", tpath("oa.safetensors"), tpath("ob.safetensors"));
    int rc = run_cmp(args);
    CHECK(rc == 1 && strstr(out_txt, "first divergence: model.visual.blocks.9\n"),
          "blocks.9 and blocks.10 differ: first divergence blocks.9 (numeric order)");
    CHECK(line_of(out_txt, "model.visual.blocks.2") < line_of(out_txt, "model.visual.blocks.9") &&
              line_of(out_txt, "model.visual.blocks.9") < line_of(out_txt, "model.visual.blocks.10") &&
              line_of(out_txt, "hidden_states.2") < line_of(out_txt, "hidden_states.10") &&
              line_of(out_txt, "model.visual.blocks.11") < line_of(out_txt, "hidden_states.0"),
          "numeric order: blocks.9 < blocks.10, hidden_states.2 < hidden_states.10");

    float x[2] = {NAN, 1}, y[2] = {0, 1}, z[2] = {NAN, 1};
    dump_add(&a, "x", DT_F32, 1, s, x);
    dump_add(&b, "x", DT_F32, 1, s, y);
    dump_add(&a, "z", DT_F32, 1, s, z);
    dump_add(&b, "z", DT_F32, 1, s, z);
    dump_write(&a, tpath("oa.safetensors"));
    dump_write(&b, tpath("ob.safetensors"));
    snprintf(args, sizeof args, "%s %s --atol 1e30 --names x --names z", tpath("oa.safetensors"),
             tpath("ob.safetensors"));
    rc = run_cmp(args);
    CHECK(rc == 1 && line_is(out_txt, "x", "FAIL") && line_is(out_txt, "z", "PASS"),
          "NaN in A where B is 0 fails even with --atol 1e30; NaN in both passes");
    dump_free(&a);
    dump_free(&b);
}

// ----------------------------------------------------------------------------
// npy / npz written by numpy (tests/golden/make_npz_cases.py)

// the arrays of make_npz_cases.py, rebuilt from their formulas; bad = 1 changes one element of each
static void npz_reference(Dump *d, int bad) {
    float f32[12], f16[5], logits[10], scalar = 3.5f, empty[1] = {0};
    double f64[6];
    int64_t i64[4] = {-3, 0, 7, 1LL << 40};
    int32_t i32[4] = {-1, 2, -3, 100000};
    uint8_t flags[3] = {1, 0, 1};
    for (int i = 0; i < 12; i++) f32[i] = i * 0.5f - 1.25f;
    for (int i = 0; i < 6; i++) f64[i] = i / 3.0;
    for (int i = 0; i < 5; i++) f16[i] = (i - 2) * 0.25f;
    for (int i = 0; i < 10; i++) logits[i] = i * 0.25f - 1;
    if (bad) {
        f32[7] += 1e-6f;
        f64[4] += 1e-12;
        f16[3] += 1.0f / 1024;
        i64[3] += 1;
        i32[2] = 3;
        flags[1] = 1;
    }
    int64_t s34[2] = {3, 4}, s23[2] = {2, 3}, s5[1] = {5}, s22[2] = {2, 2}, s4[1] = {4}, s3[1] = {3}, s03[2] = {0, 3},
            s25[2] = {2, 5};
    dump_init(d);
    dump_add(d, "f32", DT_F32, 2, s34, f32);
    dump_add(d, "f64", DT_F64, 2, s23, f64);
    dump_add(d, "f16", DT_F32, 1, s5, f16);
    dump_add(d, "i64", DT_I64, 2, s22, i64);
    dump_add(d, "i32", DT_I32, 1, s4, i32);
    dump_add(d, "flags", DT_BOOL, 1, s3, flags);
    dump_add(d, "scalar", DT_F32, 0, NULL, &scalar);
    dump_add(d, "empty", DT_F32, 2, s03, empty);
    dump_add(d, "logits", DT_F32, 2, s25, logits);
    dump_add(d, "logits_v2", DT_F32, 2, s25, logits);
}

static void test_npz(const char *ddir) {
    Dump d;
    npz_reference(&d, 0);
    const char *ref = tpath("npzref.safetensors"), *bad = tpath("npzbad.safetensors");
    dump_write(&d, ref);
    dump_free(&d);
    npz_reference(&d, 1);
    dump_write(&d, bad);
    dump_free(&d);
    static const char *names[] = {"f32", "f64", "f16", "i64", "i32", "flags", "scalar", "empty"};
    char args[2048];
    for (int c = 0; c < 2; c++) {
        const char *file = c ? "savez_compressed.npz" : "savez.npz";
        snprintf(args, sizeof args, "%s/npz/%s %s --rtol 0 --atol 0", ddir, file, ref);
        int rc = run_cmp(args), all = 1;
        for (int i = 0; i < 8; i++) all &= line_is(out_txt, names[i], "PASS");
        CHECK(rc == 0 && all && strstr(out_txt, "8 compared: 8 passed, 0 failed; 0 only in A, 2 only in B"),
              "%s: 8 arrays (f4 f8 f2 i8 i4 bool 0-d empty) equal the formulas exactly (exit %d)", file, rc);
        snprintf(args, sizeof args, "%s/npz/%s %s --rtol 0 --atol 0", ddir, file, bad);
        rc = run_cmp(args);
        CHECK(rc == 1 && strstr(out_txt, "8 compared: 2 passed, 6 failed"),
              "%s vs one element changed in each of 6 arrays: 6 fail", file);
        CHECK(strstr(line_of(out_txt, "f64") ? line_of(out_txt, "f64") : "", "first_diff [1,1]") &&
                  strstr(line_of(out_txt, "i64") ? line_of(out_txt, "i64") : "", "first_diff [1,1]"),
              "%s: first_diff as a multi-dim index", file);
    }
    snprintf(args, sizeof args, "%s/npz/savez.npz %s/npz/savez_compressed.npz --rtol 0", ddir, ddir);
    CHECK(run_cmp(args) == 0, "savez vs savez_compressed: pass");
    snprintf(args, sizeof args, "%s/npz/logits.npy %s --rtol 0", ddir, ref);
    int rc = run_cmp(args);
    CHECK(rc == 0 && line_is(out_txt, "logits", "PASS") && strstr(out_txt, "1 compared"),
          ".npy: one tensor named after the file (exit %d)", rc);
    snprintf(args, sizeof args, "%s/npz/logits_v2.npy %s --rtol 0", ddir, ref);
    CHECK(run_cmp(args) == 0 && line_is(out_txt, "logits_v2", "PASS"), ".npy format version 2.0");
    snprintf(args, sizeof args, "%s/npz/fortran.npy %s", ddir, ref);
    rc = run_cmp(args);
    CHECK(rc == 1 && strstr(err_txt, "fortran.npy") && strstr(err_txt, "Fortran"), "Fortran order rejected: %s",
          err_txt);
    snprintf(args, sizeof args, "%s/npz/bigendian.npy %s", ddir, ref);
    rc = run_cmp(args);
    CHECK(rc == 1 && strstr(err_txt, "bigendian.npy") && strstr(err_txt, "big-endian"), "big-endian rejected: %s",
          err_txt);
}

// ----------------------------------------------------------------------------
// unreadable files, bad flags, mutated files

static int one_line_naming(const char *path) { return count_lines(err_txt) == 0 && strstr(err_txt, path) != NULL; }

static void test_errors(const char *ddir) {
    char args[2048], src[512];
    const char *ref = tpath("npzref.safetensors");
    const char *missing = tpath("missing.safetensors");
    snprintf(args, sizeof args, "%s %s", missing, ref);
    CHECK(run_cmp(args) == 1 && one_line_naming(missing), "missing file: exit 1, one stderr line naming it");

    struct { const char *file, *name; size_t keep; } trunc[] = {
        {"golden/moe.text.safetensors", "trunc.safetensors", 1000},
        {"npz/savez_compressed.npz", "trunc.npz", 700},
        {"npz/savez.npz", "trunc2.npz", 1500},
        {"npz/logits.npy", "trunc.npy", 150},
    };
    for (size_t i = 0; i < sizeof trunc / sizeof *trunc; i++) {
        snprintf(src, sizeof src, "%s/%s", ddir, trunc[i].file);
        size_t n;
        char *buf = read_file(src, &n, 1 << 24);
        write_bytes(tpath(trunc[i].name), buf, buf && n > trunc[i].keep ? trunc[i].keep : 0);
        free(buf);
        snprintf(args, sizeof args, "%s %s", ref, tpath(trunc[i].name));
        int rc = run_cmp(args);
        CHECK(rc == 1 && one_line_naming(tpath(trunc[i].name)), "truncated %s: exit %d, %s", trunc[i].file, rc,
              err_txt);
    }
    uint8_t junk[300] = "PK\003\004";
    uint32_t r = 12345;
    for (int i = 4; i < 300; i++) junk[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 16);
    write_bytes(tpath("garbage.npz"), junk, sizeof junk);
    snprintf(args, sizeof args, "%s %s", tpath("garbage.npz"), ref);
    CHECK(run_cmp(args) == 1 && one_line_naming(tpath("garbage.npz")), "garbage zip: exit 1, %s", err_txt);
    // a flipped byte inside deflate data
    snprintf(src, sizeof src, "%s/npz/savez_compressed.npz", ddir);
    size_t n;
    uint8_t *z = (uint8_t *)read_file(src, &n, 1 << 24);
    if (z && n > 100) z[80] ^= 0x55;
    write_bytes(tpath("flipped.npz"), z, z ? n : 0);
    snprintf(args, sizeof args, "%s %s", tpath("flipped.npz"), ref);
    CHECK(run_cmp(args) == 1 && one_line_naming(tpath("flipped.npz")), "corrupt deflate data: exit 1, %s", err_txt);
    free(z);

    // mutated inputs never crash: exit 0 or 1 only
    static const char *seeds[] = {"npz/savez_compressed.npz", "npz/savez.npz", "npz/logits.npy"};
    int crashes = 0, runs = 0;
    for (size_t s = 0; s < 3; s++) {
        snprintf(src, sizeof src, "%s/%s", ddir, seeds[s]);
        uint8_t *orig = (uint8_t *)read_file(src, &n, 1 << 24);
        if (!orig) continue;
        uint8_t *m = xmalloc(n);
        for (int it = 0; it < 60; it++, runs++) {
            memcpy(m, orig, n);
            size_t len = n;
            int nflip = 1 + (int)((r = r * 1103515245u + 12345u) >> 16) % 4;
            for (int f = 0; f < nflip; f++) {
                size_t at = ((r = r * 1103515245u + 12345u) >> 8) % n;
                m[at] = (uint8_t)((r = r * 1103515245u + 12345u) >> 16);
            }
            if (it % 5 == 4) len = ((r = r * 1103515245u + 12345u) >> 8) % n;
            write_bytes(tpath("mut.bin"), m, len);
            snprintf(args, sizeof args, "%s %s", tpath("mut.bin"), ref);
            int rc = run_cmp(args);
            if (rc != 0 && rc != 1) {
                crashes++;
                printf("# mutation %s/%d: exit %d\n", seeds[s], it, rc);
            }
        }
        free(m);
        free(orig);
    }
    CHECK(crashes == 0, "%d mutated npz/npy files: exit 0 or 1 every time", runs);

    static const char *usage_args[] = {"--bogus a b", "--rtol abc a b", "--rtol -1 a b", "--atol=x a b", "a",
                                       "a b c", "a b --rtol", "a b --names", "",
                                       "a b --rows 0", "a b --rows 1.5", "a b --rows=1e30", "a b --rows -1",
                                       "a b --rows"};
    for (size_t i = 0; i < sizeof usage_args / sizeof *usage_args; i++)
        CHECK(run_cmp(usage_args[i]) == 2 && strstr(err_txt, "usage:"), "usage error '%s': exit 2",
              usage_args[i]);
    // the error line names this program, not glm4v
    CHECK(run_cmp("a b --rows 0") == 2 && strstr(err_txt, "glm4v-compare: error: --rows") && !strstr(err_txt, "glm4v: error"),
          "the error line starts with 'glm4v-compare: error:'");
    CHECK(run_cmp("--help") == 0 && strstr(out_txt, "usage:"), "--help: exit 0");
}

static void rm_tree(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
}

int main(void) {
    const char *ddir = test_data_dir();
    cmp_bin = getenv("GLM4V_COMPARE") ? getenv("GLM4V_COMPARE") : "./glm4v-compare";
    snprintf(tmpdir, sizeof tmpdir, "/tmp/glm4v-test-compare-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp");
        return 1;
    }
    test_dump();
    if (access(cmp_bin, X_OK) != 0) CHECK(0, "%s is built", cmp_bin);
    else {
        test_golden(ddir);
        test_order_nan();
        test_npz(ddir);
        test_errors(ddir);
    }
    if (!getenv("KEEP")) rm_tree(tmpdir);
    return test_done();
}
