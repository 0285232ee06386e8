// SPDX-License-Identifier: MIT
// test_text.c - the text decoders against HF fixtures: given HF's input_ids, positions and image features, every
// hidden_states.i, router output and the logits match to 1e-4 x max|ref|, and 12 greedy tokens are identical.
#include "../engine.h"
#include "../ops.h"
#include "test_util.h"

#include <omp.h>
#include <string.h>

typedef struct {
    const SFile *ref;
    int nbad;
    int nchecked;
} Cmp;

// tensor from the fixture as float (F32 / I64 converted)
static const STensor *ref_get(const SFile *f, const char *name) { return sf_find(f, name); }

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

// compare our rows with the reference tensor (same element count); prints the relative error
static void cmp_tensor(const char *what, const float *ours, const STensor *ref, size_t n) {
    if (!ref) {
        CHECK(0, "%s: reference tensor missing", what);
        return;
    }
    size_t rn = ref->nbytes / 4;
    if (rn != n || ref->dtype != DT_F32) {
        CHECK(0, "%s: size mismatch (%zu vs %zu)", what, n, rn);
        return;
    }
    const float *r = ref->data;
    double mx = max_abs(r, n), err = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - r[i]);
        if (!(d <= err)) err = d; // NaN-propagating
    }
    CHECK(err <= 1e-4 * mx, "%-52s max_abs_err %.3g  rel %.3g", what, err, err / (mx > 0 ? mx : 1));
}

// collects taps by name (rows appended)
typedef struct {
    char name[96];
    float *data;
    size_t n;
} Tapped;
typedef struct {
    Tapped t[64];
    int n;
} TapStore;

static void store_tap(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    TapStore *s = ctx;
    size_t cnt = 1;
    for (int i = 0; i < ndim; i++) cnt *= (size_t)shape[i];
    Tapped *t = NULL;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) t = &s->t[i];
    if (!t) {
        if (s->n == 64) return;
        t = &s->t[s->n++];
        snprintf(t->name, sizeof t->name, "%s", name);
    }
    t->data = realloc(t->data, (t->n + cnt) * sizeof(float));
    for (size_t i = 0; i < cnt; i++)
        t->data[t->n + i] = dt == DT_I64 ? (float)((const int64_t *)data)[i] : ((const float *)data)[i];
    t->n += cnt;
}

static Tapped *find_tap(TapStore *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    return NULL;
}

// runs one HF case: prefill (chunk size `chunk`) + 12 greedy steps
static void run_case(const char *model_dir, const char *case_name, int chunk) {
    char path[512];
    snprintf(path, sizeof path, "%s/golden/%s.safetensors", test_data_dir(), case_name);
    SFile ref;
    if (sf_open(&ref, path)) {
        CHECK(0, "%s: %s", case_name, glm_errmsg);
        return;
    }
    Engine e;
    if (engine_load(&e, model_dir, NULL, NULL, NULL)) {
        CHECK(0, "%s: %s", case_name, glm_errmsg);
        sf_close(&ref);
        return;
    }
    const Config *c = e.c;
    const int H = c->text.hidden_size, V = c->text.vocab_size;
    const STensor *ids_t = ref_get(&ref, "input.input_ids"), *pos_t = ref_get(&ref, "hook.position_ids");
    const int L = (int)ids_t->shape[1];
    // HF's expanded input_ids; every image token (video frames included) takes the next row of HF's vision features
    Prompt p = {0};
    p.seq.n = p.seq.cap = L;
    p.seq.ids = malloc(L * sizeof(int));
    p.seq.type = malloc(L * sizeof(int));
    for (int i = 0; i < L; i++) {
        p.seq.ids[i] = (int)((const int64_t *)ids_t->data)[i];
        p.seq.type[i] = p.seq.ids[i] == c->image_token_id;
    }
    Media m = {0};
    const STensor *feat = ref_get(&ref, "hook.model.visual.merger");
    if (feat) m.img_embeds = (float *)feat->data, m.n_img_tok = (int64_t)(feat->nbytes / 4 / H);
    // [3, 1, L]; text-only cases have none: positions are arange on all three rows
    p.pos = malloc(3 * (size_t)L * sizeof(int64_t));
    for (int i = 0; i < 3 * L; i++) p.pos[i] = pos_t ? ((const int64_t *)pos_t->data)[i] : i % L;
    int64_t mx = 0;
    for (int i = 0; i < 3 * L; i++) mx = p.pos[i] > mx ? p.pos[i] : mx;
    p.rope_delta = mx + 1 - L;

    const STensor *gen = ref_get(&ref, "generate.ids");
    int ngen = (int)gen->shape[0];
    Session ss;
    if (session_init(&ss, &e, L + ngen, chunk, 1)) {
        CHECK(0, "session_init: %s", glm_errmsg);
        return;
    }
    TapStore store = {0};
    TapSink sink = {store_tap, &store};
    // the engine's chunked prefill: embed_tokens + the feature scatter + the decoder; logits of every row tapped
    CHECK(session_prefill(&ss, &p, &m, &sink) == 0, "%s chunk %d: prefill (%s)", case_name, chunk,
          glm_errmsg);
    const float *logits = find_tap(&store, "logits") ? find_tap(&store, "logits")->data : NULL;
    if (!logits) {
        CHECK(0, "%s chunk %d: no logits", case_name, chunk);
        return;
    }
    char nm[128], tn[256];
    for (int i = 0; i <= c->text.num_hidden_layers; i++) {
        snprintf(nm, sizeof nm, "hidden_states.%d", i);
        Tapped *t = find_tap(&store, nm);
        snprintf(tn, sizeof tn, "%s chunk %d: %s", case_name, chunk, nm);
        if (t) cmp_tensor(tn, t->data, ref_get(&ref, nm), t->n);
        else CHECK(0, "%s not tapped", tn);
    }
    const char *hooks[] = {"self_attn", "mlp"};
    for (int l = 0; l < c->text.num_hidden_layers; l++)
        for (int h = 0; h < 2; h++) {
            snprintf(nm, sizeof nm, "model.language_model.layers.%d.%s", l, hooks[h]);
            char hn[160];
            snprintf(hn, sizeof hn, "hook.%s", nm);
            const STensor *r = ref_get(&ref, hn);
            Tapped *t = find_tap(&store, nm);
            snprintf(tn, sizeof tn, "%s chunk %d: %s", case_name, chunk, nm);
            if (r && t) cmp_tensor(tn, t->data, r, t->n);
        }
    // router: logits compared as values; the top-k sets per token identical, weights matched by expert id
    for (int l = 0; l < c->text.num_hidden_layers; l++) {
        snprintf(nm, sizeof nm, "hook.model.language_model.layers.%d.mlp.gate.out0", l);
        const STensor *r0 = ref_get(&ref, nm);
        if (!r0) continue;
        snprintf(nm, sizeof nm, "model.language_model.layers.%d.mlp.gate.out0", l);
        snprintf(tn, sizeof tn, "%s chunk %d: %s", case_name, chunk, nm);
        cmp_tensor(tn, find_tap(&store, nm)->data, r0, find_tap(&store, nm)->n);
        snprintf(nm, sizeof nm, "hook.model.language_model.layers.%d.mlp.gate.out1", l);
        const STensor *r1 = ref_get(&ref, nm);
        snprintf(nm, sizeof nm, "hook.model.language_model.layers.%d.mlp.gate.out2", l);
        const STensor *r2 = ref_get(&ref, nm);
        snprintf(nm, sizeof nm, "model.language_model.layers.%d.mlp.gate.out1", l);
        Tapped *w1 = find_tap(&store, nm);
        snprintf(nm, sizeof nm, "model.language_model.layers.%d.mlp.gate.out2", l);
        Tapped *w2 = find_tap(&store, nm);
        int K = c->text.num_experts_per_tok, bad = 0;
        double werr = 0;
        for (int i = 0; i < L; i++)
            for (int a = 0; a < K; a++) {
                int64_t id = ((const int64_t *)r2->data)[i * K + a];
                int found = 0;
                for (int b = 0; b < K; b++)
                    if ((int64_t)w2->data[i * K + b] == id) {
                        found = 1;
                        double d = fabs(w1->data[i * K + b] - ((const float *)r1->data)[i * K + a]);
                        werr = d > werr ? d : werr;
                    }
                bad += !found;
            }
        CHECK(bad == 0 && werr < 1e-5, "%s chunk %d: layer %d router top-%d ids identical (%d differ), weights err %.2g",
              case_name, chunk, l, K, bad, werr);
    }
    snprintf(tn, sizeof tn, "%s chunk %d: logits", case_name, chunk);
    cmp_tensor(tn, logits, ref_get(&ref, "logits"), (size_t)L * V);

    // greedy decoding with the KV cache: the engine's decode step (positions = cache position + rope_delta)
    const float *last = logits + (size_t)(L - 1) * V;
    int same = 1;
    const STensor *scores = ref_get(&ref, "generate.scores");
    double serr = 0, smax = max_abs(scores->data, scores->nbytes / 4);
    for (int g = 0; g < ngen; g++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (last[v] > last[best]) best = v;
        for (int v = 0; v < V; v++) {
            double d = fabs(last[v] - ((const float *)scores->data)[(size_t)g * V + v]);
            serr = d > serr ? d : serr;
        }
        if (best != ((const int64_t *)gen->data)[g]) same = 0;
        int id = (int)((const int64_t *)gen->data)[g]; // follow HF's tokens so later steps stay comparable
        if (session_step(&ss, id)) same = 0;
        last = ss.last;
    }
    CHECK(same, "%s chunk %d: %d greedy tokens identical to HF", case_name, chunk, ngen);
    CHECK(serr <= 1e-4 * smax, "%s chunk %d: decode-step logits vs generate.scores rel %.3g", case_name, chunk,
          serr / smax);
    for (int i = 0; i < store.n; i++) free(store.t[i].data);
    m.img_embeds = NULL; // HF's, not ours
    media_free(&m);
    prompt_free(&p);
    session_free(&ss);
    engine_free(&e);
    sf_close(&ref);
}

int main(void) {
    ops_init();
    run_case("weights/tiny-glm4v-moe", "moe.text", 512);
    run_case("weights/tiny-glm4v-moe", "moe.text", 7); // chunked prefill gives the same numbers
    run_case("weights/tiny-glm4v-moe", "moe.image", 512);
    run_case("weights/tiny-glm4v-dense", "dense.text", 512);
    run_case("weights/tiny-glm4v-dense", "dense.video", 512);
    run_case("weights/tiny-glm4v-dense", "dense.video", 16);
    return test_done();
}
