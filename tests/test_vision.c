// SPDX-License-Identifier: MIT
// test_vision.c - the vision tower against HuggingFace (fp32 eager): every module tap of tests/data/golden
// (moe.image, dense.video) and of tests/data/vision_cases.safetensors (several images in one call), and the
// bicubic position-table resampling bit for bit against torch's F.grid_sample (tests/golden/make_vision_cases.py).
#include "../vision.h"
#include "../ops.h"
#include "../ops_bf16.h"
#include "test_util.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------- tap recorder

#define MAX_TAPS 64
typedef struct {
    char *name[MAX_TAPS];    //
    float *data[MAX_TAPS];   // owned copies
    int64_t rows[MAX_TAPS], cols[MAX_TAPS];
    int n;
} Taps;

static void record(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    Taps *t = ctx;
    if (t->n == MAX_TAPS || dt != DT_F32 || ndim != 2) return;
    size_t n = (size_t)shape[0] * (size_t)shape[1];
    t->name[t->n] = xstrdup(name);
    t->data[t->n] = xmalloc(n * sizeof(float));
    memcpy(t->data[t->n], data, n * sizeof(float));
    t->rows[t->n] = shape[0], t->cols[t->n] = shape[1];
    t->n++;
}

static void taps_free(Taps *t) {
    for (int i = 0; i < t->n; i++) free(t->name[i]), free(t->data[i]);
    memset(t, 0, sizeof *t);
}

static const float *taps_get(const Taps *t, const char *name, int64_t *rows, int64_t *cols) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->name[i], name) == 0) {
            *rows = t->rows[i], *cols = t->cols[i];
            return t->data[i];
        }
    return NULL;
}

static int64_t numel(const STensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

// max |a - b| / max |b|
static double rel_err(const float *a, const float *b, int64_t n) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        md = d > md ? d : md;
        mr = fabs(b[i]) > mr ? fabs(b[i]) : mr;
    }
    return mr > 0 ? md / mr : md;
}

// ---------------------------------------------------------------------------- grid_sample cases

static void test_grid_sample(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/vision_cases.safetensors", test_data_dir());
    SFile f;
    if (sf_open(&f, path)) {
        CHECK(0, "open %s: %s", path, glm_errmsg);
        return;
    }
    for (int k = 0;; k++) {
        char n1[64], n2[64], n3[64];
        snprintf(n1, sizeof n1, "gs.%d.table", k), snprintf(n2, sizeof n2, "gs.%d.grid", k);
        snprintf(n3, sizeof n3, "gs.%d.out", k);
        const STensor *tt = sf_find(&f, n1), *tg = sf_find(&f, n2), *to = sf_find(&f, n3);
        if (!tt || !tg || !to) {
            CHECK(k > 0, "grid_sample cases present");
            break;
        }
        const int C = (int)tt->shape[1];
        int side = 1;
        while ((int64_t)side * side < tt->shape[0]) side++;
        const int64_t *grid = tg->data;
        const int64_t n = to->shape[0];
        float *fast = xmalloc((size_t)n * C * sizeof(float)), *naive = xmalloc((size_t)n * C * sizeof(float));
        int64_t off = 0;
        char desc[256] = "";
        for (int i = 0; i < tg->shape[0]; i++) {
            const int h = (int)grid[i * 3 + 1], w = (int)grid[i * 3 + 2];
            vision_pos_embed(fast + off * C, tt->data, side, C, h, w, 2);
            vision_pos_embed_naive(naive + off * C, tt->data, side, C, h, w, 2);
            off += (int64_t)h * w;
            snprintf(desc + strlen(desc), sizeof desc - strlen(desc), "%s%dx%d", i ? "," : "", h, w);
        }
        const float *ref = to->data;
        int64_t bad = 0, bad_naive = 0;
        for (int64_t i = 0; i < n * C; i++) {
            bad += fast[i] != ref[i];
            bad_naive += naive[i] != fast[i];
        }
        CHECK(off == n && bad == 0, "grid_sample bicubic bit-exact vs torch: table %dx%d, items %s (%lld of %lld differ, "
              "rel err %.3g)", side, side, desc, (long long)bad, (long long)(n * C), rel_err(fast, ref, n * C));
        CHECK(bad_naive == 0, "grid_sample: naive twin agrees bit for bit (items %s)", desc);
        free(fast), free(naive);
    }
    sf_close(&f);
}

// ---------------------------------------------------------------------------- full tower vs HF hooks

// --compute bf16: the batch's embeddings equal, byte for byte, those of each attention segment (an image, or one
// temporal patch of a video) run alone as a (1, h, w) item: the K / V pairs the tower packs once per block
// (vision_pack_kv) sit where every segment's attention reads them
static void check_bf16_segments(const Config *c, const Weights *w, const PixelBatch *pb, const char *label) {
    const int O = c->vision.out_hidden_size;
    ops_compute = COMPUTE_BF16;
    size_t nsc = vision_scratch_floats(c, pb);
    float *sc = xmalloc(nsc * sizeof(float)), *out = xmalloc((size_t)(pb->npatches / 4) * O * sizeof(float));
    int ok = vision_forward(w, c, pb, out, sc, NULL) == 0, nseg = 0;
    free(sc);
    int64_t off = 0;
    for (int i = 0; i < pb->nitems && ok; i++)
        for (int t = 0; t < pb->grid[i][0] && ok; t++, nseg++) {
            const int n = pb->grid[i][1] * pb->grid[i][2];
            PixelBatch one = {.pixel_values = pb->pixel_values + off * pb->ncols, .npatches = n, .ncols = pb->ncols,
                              .grid = {{1, pb->grid[i][1], pb->grid[i][2]}}, .nitems = 1};
            float *sc1 = xmalloc(vision_scratch_floats(c, &one) * sizeof(float)),
                  *o1 = xmalloc((size_t)(n / 4) * O * sizeof(float));
            ok = vision_forward(w, c, &one, o1, sc1, NULL) == 0 &&
                 memcmp(o1, out + (off / 4) * O, (size_t)(n / 4) * O * sizeof(float)) == 0;
            free(sc1), free(o1);
            off += n;
        }
    const char *path = ops_compute_path();
    ops_compute = COMPUTE_F32;
    CHECK(ok, "%s: --compute bf16 (%s): the batch equals each of its %d segments alone, byte for byte", label, path,
          nseg);
    free(out);
}

// run the tower on (prefix)input.<pix>/<grid> of a fixture and compare every hook.model.visual.* present;
// pix NULL: pixel[r, c] = float(sin(0.01 * (r * ncols + c)) * 2), as make_vision_cases.py writes for the "big" case
static void test_tower(const char *model_dir, const char *fixture, const char *prefix, const char *pix,
                       const char *gridname) {
    Checkpoint ck;
    Weights w;
    SFile f;
    char path[4096], name[256], label[256];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), fixture);
    snprintf(label, sizeof label, "%s%s%s", fixture, *prefix ? " " : "", prefix);
    if (checkpoint_open(&ck, model_dir)) {
        CHECK(0, "open %s: %s", model_dir, glm_errmsg);
        return;
    }
    if (weights_bind(&w, &ck)) {
        CHECK(0, "bind %s: %s", model_dir, glm_errmsg);
        checkpoint_close(&ck);
        return;
    }
    if (sf_open(&f, path)) {
        CHECK(0, "open %s: %s", path, glm_errmsg);
        weights_free(&w), checkpoint_close(&ck);
        return;
    }
    const Config *c = &ck.cfg;
    snprintf(name, sizeof name, "%sinput.%s", prefix, pix);
    const STensor *tp = pix ? sf_find(&f, name) : NULL;
    snprintf(name, sizeof name, "%sinput.%s", prefix, gridname);
    const STensor *tg = sf_find(&f, name);
    CHECK((tp || !pix) && tg && (!tp || tp->dtype == DT_F32) && tg->dtype == DT_I64, "%s: %s and %s present",
          label, pix ? pix : "(formula pixels)", gridname);
    if ((!tp && pix) || !tg) goto done;

    PixelBatch pb = {0};
    pb.nitems = (int)tg->shape[0];
    for (int i = 0; i < pb.nitems; i++) {
        for (int k = 0; k < 3; k++) pb.grid[i][k] = (int)((const int64_t *)tg->data)[i * 3 + k];
        pb.npatches += (int64_t)pb.grid[i][0] * pb.grid[i][1] * pb.grid[i][2];
    }
    float *formula = NULL;
    if (tp) {
        pb.pixel_values = (float *)tp->data;
        pb.npatches = tp->shape[0], pb.ncols = (int)tp->shape[1];
    } else {
        pb.ncols = 1176;
        formula = xmalloc((size_t)pb.npatches * pb.ncols * sizeof(float));
        for (int64_t i = 0; i < pb.npatches * pb.ncols; i++) formula[i] = (float)(sin(0.01 * (double)i) * 2);
        pb.pixel_values = formula;
    }

    const int O = c->vision.out_hidden_size;
    const int64_t N4 = pb.npatches / 4;
    size_t nsc = vision_scratch_floats(c, &pb);
    CHECK(nsc > 0, "%s: scratch size %zu floats%s%s", label, nsc, nsc ? "" : ": ", nsc ? "" : glm_errmsg);
    if (!nsc) goto done;
    float *scratch = xmalloc(nsc * sizeof(float)), *out = xmalloc((size_t)N4 * O * sizeof(float));
    Taps taps = {0};
    TapSink sink = {record, &taps};
    int rc = vision_forward(&w, c, &pb, out, scratch, &sink);
    CHECK(rc == 0, "%s: vision_forward (%d items, %lld patches)%s%s", label, pb.nitems, (long long)pb.npatches,
          rc ? ": " : "", rc ? glm_errmsg : "");

    static const char *mods[] = {"patch_embed", "embeddings", "blocks.0", "blocks.1", "post_layernorm", "downsample",
                                 "merger"};
    for (size_t i = 0; i < sizeof mods / sizeof *mods; i++) {
        snprintf(name, sizeof name, "%shook.model.visual.%s", prefix, mods[i]);
        const STensor *ref = sf_find(&f, name);
        if (!ref) continue;
        int64_t rows = 0, cols = 0;
        const float *got = taps_get(&taps, name + strlen(prefix) + 5, &rows, &cols);
        int ok = got && rows * cols == numel(ref) && ref->shape[0] == rows;
        double e = ok ? rel_err(got, ref->data, rows * cols) : 1.0;
        CHECK(ok && e <= 1e-4, "%s: %s [%lld, %lld] max rel err %.3g", label, mods[i], (long long)rows,
              (long long)cols, e);
    }
    snprintf(name, sizeof name, "%shook.model.visual.merger", prefix);
    const STensor *ref = sf_find(&f, name);
    if (ref) CHECK(rel_err(out, ref->data, N4 * O) <= 1e-4, "%s: output = merger (rel err %.3g)", label,
                   rel_err(out, ref->data, N4 * O));

    // deterministic for any thread count: 1 thread gives the same bits
    const int nthr = omp_get_max_threads();
    omp_set_num_threads(1);
    size_t nsc1 = vision_scratch_floats(c, &pb);
    float *scratch1 = xmalloc(nsc1 * sizeof(float)), *out1 = xmalloc((size_t)N4 * O * sizeof(float));
    vision_forward(&w, c, &pb, out1, scratch1, NULL);
    omp_set_num_threads(nthr);
    CHECK(memcmp(out, out1, (size_t)N4 * O * sizeof(float)) == 0, "%s: 1 thread and %d threads agree bit for bit",
          label, nthr);
    free(scratch1), free(out1);
    check_bf16_segments(c, &w, &pb, label);
    taps_free(&taps);
    free(scratch), free(out), free(formula);
done:
    sf_close(&f);
    weights_free(&w);
    checkpoint_close(&ck);
}

// ---------------------------------------------------------------------------- bad batches

static void test_errors(void) {
    Checkpoint ck;
    Weights w;
    if (checkpoint_open(&ck, "weights/tiny-glm4v-moe") || weights_bind(&w, &ck)) {
        CHECK(0, "open tiny-glm4v-moe: %s", glm_errmsg);
        return;
    }
    float px[8 * 1176] = {0}, out[2 * 128], sc[16];
    PixelBatch pb = {.pixel_values = px, .npatches = 8, .ncols = 1176, .nitems = 1, .grid = {{1, 2, 4}}};
    CHECK(vision_scratch_floats(&ck.cfg, &pb) > 0, "errors: a valid 2x4 batch is accepted");
    pb.npatches = 7;
    CHECK(vision_scratch_floats(&ck.cfg, &pb) == 0 && strstr(glm_errmsg, "pixel rows"),
          "errors: patch count mismatch refused (%s)", glm_errmsg);
    CHECK(vision_forward(&w, &ck.cfg, &pb, out, sc, NULL) == -1, "errors: vision_forward refuses it too");
    pb.npatches = 8, pb.grid[0][1] = 1, pb.grid[0][2] = 8;
    CHECK(vision_scratch_floats(&ck.cfg, &pb) == 0 && strstr(glm_errmsg, "grid"), "errors: odd grid refused (%s)",
          glm_errmsg);
    pb.grid[0][1] = 2, pb.grid[0][2] = 4, pb.ncols = 1000;
    CHECK(vision_scratch_floats(&ck.cfg, &pb) == 0, "errors: wrong row width refused (%s)", glm_errmsg);
    pb.ncols = 1176, pb.nitems = 0;
    CHECK(vision_scratch_floats(&ck.cfg, &pb) == 0, "errors: empty batch refused (%s)", glm_errmsg);
    weights_free(&w);
    checkpoint_close(&ck);
}

int main(void) {
    ops_init();
    test_grid_sample();
    test_tower("weights/tiny-glm4v-moe", "golden/moe.image.safetensors", "", "pixel_values", "image_grid_thw");
    test_tower("weights/tiny-glm4v-dense", "golden/dense.video.safetensors", "", "pixel_values_videos",
               "video_grid_thw");
    test_tower("weights/tiny-glm4v-moe", "vision_cases.safetensors", "multi.", "pixel_values", "image_grid_thw");
    test_tower("weights/tiny-glm4v-moe", "vision_cases.safetensors", "big.", NULL, "grid_thw");
    test_errors();
    return test_done();
}
