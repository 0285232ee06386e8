// SPDX-License-Identifier: MIT
// glm4v_api.c - libglm4v (glm4v_api.h): the engine (engine.h) and the scorer (scorer.h) behind a C ABI of opaque
// handles, for python/glm4v.py and other languages. Mirrors what the CLI does for one prompt: a forward pass is the
// --dump's prefill (every position's logits, hidden_states.i), generation is its decode loop, so the numbers are
// the CLI's bit for bit. Built with -fvisibility=hidden: only the GLM4V_EXPORT functions are the library's symbols.
#include "glm4v_api.h"

#include "engine.h"
#include "json.h"
#include "ops.h"
#include "scorer.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GLM4V_EXPORT __attribute__((visibility("default")))

struct glm4v_model {
    Engine e; // the loaded checkpoint
};

struct glm4v_output {
    int n, V, H, nh;  // expanded tokens, vocabulary, hidden size, hidden-state tensors (layers + 1; 0: none)
    int32_t *ids;     // [n] expanded ids
    float *logits;    // [n, V] every position's logits
    float *hidden;    // [nh, n, H] hidden_states.0 .. hidden_states.layers (NULL when not asked)
    int *hrows;       // [nh] rows received so far of each hidden-state tensor
    int lrows;        // rows of logits received so far
};

// the engine's kernels keep scratch buffers shared by every model of the process (ops.c): two forward passes,
// generations or scores at once, on one model or two, would write into each other's. Every call that computes
// takes this lock, so calls from several threads run one at a time and give the numbers of a lone call
static pthread_mutex_t compute_lock = PTHREAD_MUTEX_INITIALIZER;
static int api_threads; // glm4v_set_threads' count (0: OpenMP's default), applied by every computing call

// take the compute lock and give the calling thread glm4v_set_threads' count (omp_set_num_threads sets it for the
// calling thread only, and calls may come from any thread)
static void compute_begin(void) {
    pthread_mutex_lock(&compute_lock);
    if (__atomic_load_n(&api_threads, __ATOMIC_RELAXED) > 0) omp_set_num_threads(__atomic_load_n(&api_threads, __ATOMIC_RELAXED));
}

GLM4V_EXPORT const char *glm4v_last_error(void) { return glm_errmsg; }
GLM4V_EXPORT const char *glm4v_version(void) { return GLM4V_VERSION; }
GLM4V_EXPORT void glm4v_set_threads(int n) {
    if (n > 0) __atomic_store_n(&api_threads, n, __ATOMIC_RELAXED), omp_set_num_threads(n);
}
GLM4V_EXPORT void glm4v_free(void *p) { free(p); }

GLM4V_EXPORT int glm4v_open(const char *model_dir, glm4v_model **out) {
    if (!out) return glm_err("glm4v_open: out is NULL");
    *out = NULL;
    if (!model_dir) return glm_err("no model folder");
    ops_init();
    glm4v_model *m = calloc(1, sizeof *m);
    if (!m) return glm_err("out of memory");
    if (engine_load(&m->e, model_dir, NULL, NULL, NULL)) {
        free(m);
        return -1;
    }
    *out = m;
    return 0;
}

GLM4V_EXPORT void glm4v_close(glm4v_model *m) {
    if (!m) return;
    engine_free(&m->e);
    free(m);
}

GLM4V_EXPORT int glm4v_info(const glm4v_model *m, int *vocab_size, int *hidden_size, int *num_layers, int *max_positions) {
    if (!m) return glm_err("no model");
    const Config *c = m->e.c;
    if (vocab_size) *vocab_size = c->text.vocab_size;
    if (hidden_size) *hidden_size = c->text.hidden_size;
    if (num_layers) *num_layers = c->text.num_hidden_layers;
    if (max_positions) *max_positions = c->text.max_position_embeddings;
    return 0;
}

GLM4V_EXPORT int glm4v_tokenize(const glm4v_model *m, const char *text, size_t len, int32_t **ids) {
    if (!ids) return glm_err("glm4v_tokenize: ids is NULL");
    *ids = NULL;
    if (!m || !text) return glm_err("no model or no text");
    int *raw = NULL, n = tokenizer_encode(m->e.tok, text, len, &raw);
    if (n < 0) return -1;
    *ids = (int32_t *)raw; // int is int32_t on every platform the engine builds on
    return n;
}

GLM4V_EXPORT char *glm4v_detokenize(const glm4v_model *m, const int32_t *ids, int n) {
    if (!m || n < 0 || (n && !ids)) return glm_err("no model or no ids"), NULL;
    for (int i = 0; i < n; i++) // tokenizer_decode skips an unknown id: the text would silently lack it
        if (ids[i] < 0 || ids[i] >= m->e.c->text.vocab_size)
            return glm_err("ids[%d]: token id %d is outside the model vocabulary (%d)", i, (int)ids[i],
                           m->e.c->text.vocab_size), NULL;
    char *s = tokenizer_decode(m->e.tok, (const int *)ids, n, 0);
    if (!s) glm_err("out of memory");
    return s;
}

GLM4V_EXPORT char *glm4v_chat_prompt(const glm4v_model *m, const char *messages_json, const char *kwargs_json) {
    if (!m || !messages_json) return glm_err("no model or no messages"), NULL;
    cJSON *msgs = json_parse(messages_json, strlen(messages_json), "messages");
    cJSON *kw = kwargs_json ? json_parse(kwargs_json, strlen(kwargs_json), "kwargs") : NULL;
    char *text = NULL;
    size_t len;
    if (msgs && (!kwargs_json || kw)) {
        if (!cJSON_IsArray(msgs)) glm_err("messages: not a JSON array");
        else if (kw && !cJSON_IsObject(kw)) glm_err("kwargs: not a JSON object");
        else text = chat_template_render(&m->e.tmpl, msgs, NULL, 1, kw, &len);
    }
    cJSON_Delete(msgs), cJSON_Delete(kw);
    return text;
}

// the media of a call attached to m, the ids as the engine's prompt (HF's expanded image runs accepted)
static int build_prompt(glm4v_model *md, const int32_t *ids, int n, const glm4v_media *media, Media *m, Prompt *p) {
    const Engine *e = &md->e;
    memset(p, 0, sizeof *p);
    if (!ids || n < 1) return glm_err("no input ids");
    MediaOptions mo = {.resize = RESIZE_TORCH, .max_image_pixels = 100000000, .fps = 2.0f};
    if (media && media->fps > 0) mo.fps = media->fps;
    for (int i = 0; media && i < media->n_images; i++)
        if (!media->images || !media->images[i] || media_add_image(m, e, media->images[i], &mo)) {
            if (!media->images || !media->images[i]) glm_err("image %d: no path", i);
            return -1;
        }
    if (media && media->video && media_add_video(m, e, media->video, &mo)) return -1;
    int *cp = malloc((size_t)n * sizeof(int));
    if (!cp) return glm_err("out of memory");
    memcpy(cp, ids, (size_t)n * sizeof(int));
    const int k = score_placeholder_ids(e, cp, n, m->img.nitems);
    int rc = engine_prompt_ids(e, cp, k, m, p);
    free(cp);
    if (!rc && p->seq.n > e->c->text.max_position_embeddings)
        rc = glm_err("the prompt (%d tokens) exceeds the model context of %d tokens", p->seq.n, e->c->text.max_position_embeddings);
    if (!rc) rc = media_encode(m, e, NULL);
    return rc;
}

// the TapFn of a forward pass: every row of "logits" and of each "hidden_states.i", in prefill order
static void output_tap(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    glm4v_output *o = ctx;
    if (dt != DT_F32 || ndim != 2) return;
    const int rows = (int)shape[0];
    if (!strcmp(name, "logits") && shape[1] == o->V && o->lrows + rows <= o->n) {
        memcpy(o->logits + (size_t)o->lrows * o->V, data, (size_t)rows * o->V * sizeof(float));
        o->lrows += rows;
    } else if (o->hidden && !strncmp(name, "hidden_states.", 14) && shape[1] == o->H) {
        char *end;
        long i = strtol(name + 14, &end, 10);
        if (*end || i < 0 || i >= o->nh || o->hrows[i] + rows > o->n) return;
        memcpy(o->hidden + ((size_t)i * o->n + o->hrows[i]) * o->H, data, (size_t)rows * o->H * sizeof(float));
        o->hrows[i] += rows;
    }
}

GLM4V_EXPORT void glm4v_output_free(glm4v_output *o) {
    if (!o) return;
    free(o->ids), free(o->logits), free(o->hidden), free(o->hrows);
    free(o);
}

// one forward pass (glm4v_forward) under compute_lock
static int forward_locked(glm4v_model *md, const int32_t *ids, int n, const glm4v_media *media, int want_hidden,
                          glm4v_output **out) {
    const Engine *e = &md->e;
    const Config *c = e->c;
    Media m = {0};
    Prompt p;
    glm4v_output *o = NULL;
    int rc = build_prompt(md, ids, n, media, &m, &p);
    const int L = p.seq.n;
    if (!rc && !(o = calloc(1, sizeof *o))) rc = glm_err("out of memory");
    if (!rc) {
        o->n = L, o->V = c->text.vocab_size, o->H = c->text.hidden_size;
        o->nh = want_hidden ? c->text.num_hidden_layers + 1 : 0;
        o->ids = malloc((size_t)L * sizeof(int32_t));
        o->logits = malloc((size_t)L * o->V * sizeof(float));
        if (want_hidden) {
            o->hidden = malloc((size_t)o->nh * L * o->H * sizeof(float));
            o->hrows = calloc((size_t)o->nh, sizeof(int));
        }
        if (!o->ids || !o->logits || (want_hidden && (!o->hidden || !o->hrows))) rc = glm_err("out of memory (outputs)");
    }
    if (!rc) {
        memcpy(o->ids, p.seq.ids, (size_t)L * sizeof(int32_t));
        // the CLI's --dump prefill: chunks of 512, every position's logits
        Session s;
        TapSink sink = {output_tap, o};
        if (!(rc = session_init(&s, e, L, 512 < L ? 512 : L, 1))) {
            rc = session_prefill(&s, &p, &m, &sink);
            session_free(&s);
        }
        if (!rc && o->lrows != L) rc = glm_err("the prefill gave %d logits rows for %d tokens", o->lrows, L);
        for (int i = 0; !rc && i < o->nh; i++)
            if (o->hrows[i] != L) rc = glm_err("hidden_states.%d: %d rows for %d tokens", i, o->hrows[i], L);
    }
    prompt_free(&p);
    media_free(&m);
    if (rc) {
        glm4v_output_free(o);
        return -1;
    }
    *out = o;
    return 0;
}

GLM4V_EXPORT int glm4v_forward(glm4v_model *md, const int32_t *ids, int n, const glm4v_media *media, int want_hidden,
                               glm4v_output **out) {
    if (!out) return glm_err("glm4v_forward: out is NULL");
    *out = NULL;
    if (!md) return glm_err("no model");
    compute_begin();
    const int rc = forward_locked(md, ids, n, media, want_hidden, out);
    pthread_mutex_unlock(&compute_lock);
    return rc;
}

GLM4V_EXPORT int glm4v_output_tokens(const glm4v_output *o) { return o ? o->n : -1; }
GLM4V_EXPORT const int32_t *glm4v_output_ids(const glm4v_output *o) { return o ? o->ids : NULL; }
GLM4V_EXPORT const float *glm4v_output_logits(const glm4v_output *o) { return o ? o->logits : NULL; }
GLM4V_EXPORT const float *glm4v_output_hidden(const glm4v_output *o) { return o ? o->hidden : NULL; }

// one generation (glm4v_generate) under compute_lock
static int generate_locked(glm4v_model *md, const int32_t *ids, int n, const glm4v_media *media, int max_new,
                           const glm4v_sampling *sampling, int32_t *out_ids, float *logits) {
    const Engine *e = &md->e;
    const Config *c = e->c;
    const int V = c->text.vocab_size;
    Media m = {0};
    Prompt p;
    int rc = build_prompt(md, ids, n, media, &m, &p), got = 0;
    const int L = p.seq.n;
    if (!rc && (int64_t)L + max_new > c->text.max_position_embeddings)
        rc = glm_err("the prompt (%d tokens) plus %d new tokens exceeds the model context of %d tokens", L, max_new,
                     c->text.max_position_embeddings);
    // NULL: the CLI's defaults (generation_config.json; greedy unless it samples)
    SamplerParams sp = {.temp = -1, .top_k = -1, .top_p = -1, .repeat_penalty = -1};
    if (sampling)
        sp = (SamplerParams){.temp = sampling->temperature, .top_k = sampling->top_k, .top_p = sampling->top_p,
                             .repeat_penalty = sampling->repeat_penalty, .seed = sampling->seed};
    Sampler smp;
    Session s;
    int have_smp = 0, have_s = 0;
    if (!rc && !(rc = sampler_init(&smp, &sp, c))) have_smp = 1;
    if (!rc && !(rc = session_init(&s, e, L + max_new, 512 < L ? 512 : L, 0))) have_s = 1;
    if (!rc) rc = session_prefill(&s, &p, &m, NULL);
    // the CLI's decode loop (glm4v.c generate): sample from the newest logits, stop after an end-of-sequence id
    for (int step = 0; !rc && step < max_new; step++) {
        int id = sampler_sample(&smp, s.last, s.cache_ids, s.md.n_past);
        if (logits) memcpy(logits + (size_t)step * V, s.last, (size_t)V * sizeof(float));
        out_ids[got++] = id;
        if (engine_is_eos(e, id) || step + 1 == max_new) break;
        rc = session_step(&s, id);
    }
    if (have_s) session_free(&s);
    if (have_smp) sampler_free(&smp);
    prompt_free(&p);
    media_free(&m);
    return rc ? -1 : got;
}

GLM4V_EXPORT int glm4v_generate(glm4v_model *md, const int32_t *ids, int n, const glm4v_media *media, int max_new,
                                const glm4v_sampling *sampling, int32_t *out_ids, float *logits) {
    if (!md) return glm_err("no model");
    if (!out_ids) return glm_err("glm4v_generate: out_ids is NULL");
    if (max_new < 1) return glm_err("max_new: %d, not a count of tokens >= 1", max_new);
    compute_begin();
    const int rc = generate_locked(md, ids, n, media, max_new, sampling, out_ids, logits);
    pthread_mutex_unlock(&compute_lock);
    return rc;
}

GLM4V_EXPORT char *glm4v_score(glm4v_model *md, const char *cases_jsonl, size_t len, int top_k, const char *preset) {
    if (!md || !cases_jsonl) return glm_err("no model or no cases"), NULL;
    ScoreOptions o;
    score_options_default(&o);
    if (top_k > 0) o.top_k = top_k < SCORE_MAX_TOP_K ? top_k : SCORE_MAX_TOP_K;
    if (preset && score_preset(&o.th, preset)) return NULL;
    compute_begin();
    char *text = score_jsonl(&md->e, cases_jsonl, len, &o, NULL);
    pthread_mutex_unlock(&compute_lock);
    return text;
}
