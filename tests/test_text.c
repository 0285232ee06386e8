// test_text.c - the text decoders against HF fixtures: given HF's input_ids, positions and image features, every
// hidden_states.i, router output and the logits match to 1e-4 x max|ref|, and 12 greedy tokens are identical.
#include "../glm4v.h"
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
    Checkpoint ck;
    Weights w;
    if (checkpoint_open(&ck, model_dir) || weights_bind(&w, &ck)) {
        CHECK(0, "%s: %s", case_name, glm_errmsg);
        sf_close(&ref);
        return;
    }
    const Config *c = &ck.cfg;
    const int H = c->text.hidden_size, V = c->text.vocab_size;
    const STensor *ids_t = ref_get(&ref, "input.input_ids"), *pos_t = ref_get(&ref, "hook.position_ids");
    const int L = (int)ids_t->shape[1];
    int *ids = malloc(L * sizeof(int));
    for (int i = 0; i < L; i++) ids[i] = (int)((const int64_t *)ids_t->data)[i];
    // embeddings with HF's image features scattered at the <|image|> positions
    float *emb = malloc((size_t)L * H * sizeof(float));
    embed_tokens(&w, c, ids, L, emb);
    const STensor *feat = ref_get(&ref, "hook.model.visual.merger");
    if (feat) {
        const float *f = feat->data;
        int k = 0;
        for (int i = 0; i < L; i++)
            if (ids[i] == c->image_token_id) memcpy(emb + (size_t)i * H, f + (size_t)k++ * H, H * sizeof(float));
        CHECK((size_t)k == feat->nbytes / 4 / H, "%s: %d image tokens match the HF features", case_name, k);
    }
    // [3, 1, L]; text-only cases have none: positions are arange on all three rows
    int64_t *pos = malloc(3 * (size_t)L * sizeof(int64_t));
    for (int i = 0; i < 3 * L; i++) pos[i] = pos_t ? ((const int64_t *)pos_t->data)[i] : i % L;
    int64_t mx = 0;
    for (int i = 0; i < 3 * L; i++) mx = pos[i] > mx ? pos[i] : mx;
    int64_t rope_delta = mx + 1 - L;

    const STensor *gen = ref_get(&ref, "generate.ids");
    int ngen = (int)gen->shape[0];
    Model m;
    if (model_init(&m, c, &w, L + ngen, chunk)) {
        CHECK(0, "model_init: %s", glm_errmsg);
        return;
    }
    TapStore store = {0};
    TapSink sink = {store_tap, &store};
    float *logits = malloc((size_t)L * V * sizeof(float));
    for (int i0 = 0; i0 < L; i0 += chunk) {
        int n = L - i0 < chunk ? L - i0 : chunk;
        model_forward(&m, emb + (size_t)i0 * H, pos + i0, L, n, logits + (size_t)i0 * V, 1, &sink);
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

    // greedy decoding with the KV cache; positions = cache position + rope_delta
    const float *last = logits + (size_t)(L - 1) * V;
    float *step = malloc(V * sizeof(float)), *e1 = malloc(H * sizeof(float));
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
        int64_t p = m.n_past + rope_delta, p3[3] = {p, p, p};
        embed_tokens(&w, c, &id, 1, e1);
        model_forward(&m, e1, p3, 1, 1, step, 0, NULL);
        last = step;
    }
    CHECK(same, "%s chunk %d: %d greedy tokens identical to HF", case_name, chunk, ngen);
    CHECK(serr <= 1e-4 * smax, "%s chunk %d: decode-step logits vs generate.scores rel %.3g", case_name, chunk,
          serr / smax);
    for (int i = 0; i < store.n; i++) free(store.t[i].data);
    free(step), free(e1), free(pos), free(logits), free(emb), free(ids);
    model_free(&m);
    weights_free(&w);
    checkpoint_close(&ck);
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
