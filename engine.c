// SPDX-License-Identifier: MIT
// engine.c - a loaded model and its sessions: media in (preprocess + vision tower), prompt text in (tokenizer,
// placeholder expansion, M-RoPE positions), the two joined (embed_tokens + masked_scatter of the features), then
// prefill in chunks and one decode step at a time over a session's KV cache. Mirrors HF Glm4vModel.forward and the
// parts of GenerationMixin that are not sampling. Front ends (glm4v.c, bench/, tests/) call only this.
#include "engine.h"

#include "fileio.h"
#include "gguf_model.h"
#include "ops.h"
#include "ops_bf16.h"
#include "vision.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// a status message for the front end (nothing when it gave no callback); msg NULL: the step is over
static void progress(const Engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const Engine *e, const char *fmt, ...) {
    if (!e->progress) return;
    if (!fmt) {
        e->progress(e->progress_ctx, NULL);
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e->progress(e->progress_ctx, msg);
}

static void progress_done(const Engine *e) {
    if (e->progress) e->progress(e->progress_ctx, NULL);
}

// prefix "what: " to the current error message
static int err_prefix(const char *what) {
    char msg[sizeof glm_errmsg];
    snprintf(msg, sizeof msg, "%s", glm_errmsg);
    return glm_err("%s: %s", what, msg);
}

// ---------------------------------------------------------------------------- engine

int engine_load(Engine *e, const char *model_dir, const char *chat_template, ProgressFn fn, void *ctx) {
    return engine_load_files(e, model_dir, NULL, NULL, chat_template, fn, ctx);
}

// --processor FILE over the checkpoint's processor settings (the sizes must stay the vision tower's)
static int load_processor(Config *c, const char *path) {
    size_t len;
    char *buf = read_input(path, &len, 1 << 20);
    if (!buf) return -1;
    // a flat file (preprocessor_config.json) is what both processors read when a folder has no other
    int rc = proc_config_parse(&c->proc, buf, len, path, PROC_IMAGE | PROC_VIDEO, NULL);
    free(buf);
    if (!rc && (c->proc.patch_size != c->vision.patch_size || c->proc.merge_size != c->vision.spatial_merge_size ||
                c->proc.temporal_patch_size != c->vision.temporal_patch_size))
        rc = glm_err("%s: patch/merge/temporal sizes (%d/%d/%d) differ from the vision tower's (%d/%d/%d)", path,
                     c->proc.patch_size, c->proc.merge_size, c->proc.temporal_patch_size, c->vision.patch_size,
                     c->vision.spatial_merge_size, c->vision.temporal_patch_size);
    return rc;
}

int engine_load_files(Engine *e, const char *model, const char *mmproj, const char *processor,
                      const char *chat_template, ProgressFn fn, void *ctx) {
    memset(e, 0, sizeof *e);
    e->progress = fn, e->progress_ctx = ctx;
    ops_init();
    progress(e, "mapping %s", model);
    const int gguf = is_gguf_path(model);
    if (mmproj && !gguf) return glm_err("--mmproj %s: only with a GGUF model (-m FILE.gguf)", mmproj);
    if (gguf ? gguf_checkpoint_open(&e->ck, model, mmproj) : checkpoint_open(&e->ck, model)) return -1;
    int ntensors = 0;
    for (int i = 0; i < e->ck.nfiles; i++) ntensors += e->ck.files[i].n;
    progress(e, "checking the tensors of %d shard(s) (%d tensors)", e->ck.nfiles, ntensors);
    if ((processor && load_processor(&e->ck.cfg, processor)) || weights_bind(&e->w, &e->ck)) goto fail;
    e->c = &e->ck.cfg;
    char path[4200];
    if (gguf) { // tokenizer.ggml.* and tokenizer.chat_template (gguf_model.c wrote them out as the folder's files)
        snprintf(path, sizeof path, "%s (tokenizer.chat_template)", model);
        if (!(e->tok = tokenizer_load_json(e->ck.gguf->tokenizer_json, strlen(e->ck.gguf->tokenizer_json), model)) ||
            chat_template_load_text(&e->tmpl, e->ck.gguf->tokcfg_json, e->ck.gguf->chat_template, path, chat_template))
            goto fail;
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.json", model);
        progress(e, "loading %s", path);
        if (!(e->tok = tokenizer_load(path))) goto fail;
        if (chat_template_load(&e->tmpl, model, chat_template)) goto fail;
    }
    e->think_open = tokenizer_token_id(e->tok, "<think>");
    e->think_close = tokenizer_token_id(e->tok, "</think>");
    const Config *c = e->c;
    int ids[6] = {c->image_token_id, c->video_token_id, c->image_start_token_id, c->image_end_token_id,
                  c->video_start_token_id, c->video_end_token_id};
    for (int i = 0; i < 6 && c->has_vision; i++)
        if (ids[i] >= tokenizer_vocab_size(e->tok)) {
            glm_err("%s: special token id %d from config.json is not in tokenizer.json", model, ids[i]);
            goto fail;
        }
    progress_done(e);
    return 0;
fail:
    progress_done(e);
    engine_free(e);
    return -1;
}

void engine_free(Engine *e) {
    chat_template_free(&e->tmpl);
    tokenizer_free(e->tok);
    weights_free(&e->w);
    checkpoint_close(&e->ck);
    memset(e, 0, sizeof *e);
}

int engine_is_eos(const Engine *e, int id) {
    for (int i = 0; i < e->c->n_eos; i++)
        if (e->c->eos_ids[i] == id) return 1;
    return 0;
}

int engine_set_compute(const char *mode) { return ops_set_compute(mode); }
const char *engine_compute(void) { return ops_compute_name(); }
const char *engine_compute_path(void) { return ops_compute_path(); }

// ---------------------------------------------------------------------------- media

// the timestamp token ids of video v (a NULL-terminated list)
static void media_free_stamps(Media *m, int v) {
    if (m->stamp_ids[v])
        for (int f = 0; m->stamp_ids[v][f]; f++) free(m->stamp_ids[v][f]);
    free(m->stamp_ids[v]);
    free(m->stamp_len[v]);
    m->stamp_ids[v] = NULL, m->stamp_len[v] = NULL;
}

void media_free(Media *m) {
    pixel_batch_free(&m->img);
    pixel_batch_free(&m->vid);
    for (int v = 0; v < ENGINE_MAX_VIDEOS; v++) media_free_stamps(m, v);
    for (int i = 0; i < ENGINE_MAX_IMAGES; i++) free(m->img_path[i]);
    free(m->img_embeds);
    free(m->vid_embeds);
    memset(m, 0, sizeof *m);
}

// the error of media for a model without a vision tower
static int no_vision(const Engine *e) {
    if (e->ck.gguf) return glm_err("%s: a text GGUF file has no vision tower: give its mmproj file with --mmproj", e->ck.dir);
    return glm_err("%s: the checkpoint has no vision tower (model.visual.*)", e->ck.dir);
}

// the checks every image source shares
static int can_add_image(const Media *m, const Engine *e, const char *name) {
    if (!e->c->has_vision) return no_vision(e);
    if (m->img.nitems >= ENGINE_MAX_IMAGES) return glm_err("%s: at most %d images", name, ENGINE_MAX_IMAGES);
    return 0;
}

int media_add_image_rgb(Media *m, const Engine *e, const Image *im, const char *name, const MediaOptions *o) {
    if (can_add_image(m, e, name)) return -1;
    if (o->max_image_pixels > 0 && (int64_t)im->w * im->h > o->max_image_pixels)
        return glm_err("%s: %d x %d pixels, above the limit of %lld (--max-image-pixels)", name, im->w, im->h,
                       (long long)o->max_image_pixels);
    const int i = m->img.nitems;
    int rc = preprocess_frames(&m->img, im, 1, &e->c->proc, o->resize, 0);
    if (rc) err_prefix(name);
    else {
        m->img_w[i] = im->w, m->img_h[i] = im->h;
        free(m->img_path[i]);
        if (!(m->img_path[i] = strdup(name))) rc = glm_err("out of memory");
    }
    return rc;
}

int media_add_image(Media *m, const Engine *e, const char *path, const MediaOptions *o) {
    Image im;
    if (can_add_image(m, e, path) || image_load(&im, path, o->max_image_pixels)) return -1;
    int rc = media_add_image_rgb(m, e, &im, path, o);
    image_free(&im);
    return rc;
}

int media_add_image_mem(Media *m, const Engine *e, const uint8_t *buf, size_t len, const char *name,
                        const MediaOptions *o) {
    Image im;
    if (can_add_image(m, e, name) || image_load_mem(&im, buf, len, name, o->max_image_pixels)) return -1;
    int rc = media_add_image_rgb(m, e, &im, name, o);
    image_free(&im);
    return rc;
}

int media_add_video(Media *m, const Engine *e, const char *path, const MediaOptions *o) {
    const Config *c = e->c;
    if (!c->has_vision) return no_vision(e);
    if (m->vid.nitems >= ENGINE_MAX_VIDEOS) return glm_err("%s: at most %d videos", path, ENGINE_MAX_VIDEOS);
    Image *frames = NULL;
    int nf = 0, rc = -1;
    double *times = NULL; // [nf] seconds of each frame
    struct stat st;
    if (stat(path, &st) != 0) return glm_err("%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (video_load_dir(&frames, &nf, path, o->max_image_pixels)) return -1;
        if (!(times = malloc((size_t)nf * sizeof(double)))) {
            glm_err("out of memory");
            goto done;
        }
        for (int i = 0; i < nf; i++) times[i] = i / (double)o->fps;
    } else if (video_load_file(&frames, &nf, &times, path, &c->proc, o->max_image_pixels))
        return -1;
    const int v = m->vid.nitems;
    char **texts = NULL;
    if (preprocess_frames(&m->vid, frames, nf, &c->proc, o->resize, 1)) {
        err_prefix(path);
        goto done;
    }
    const int np = m->vid.grid[v][0];
    if (video_timestamps(&texts, np, times, nf, &c->proc) < 0) goto done;
    m->stamp_ids[v] = calloc((size_t)np + 1, sizeof(int *)); // NULL-terminated
    m->stamp_len[v] = calloc((size_t)np, sizeof(int));
    rc = m->stamp_ids[v] && m->stamp_len[v] ? 0 : glm_err("out of memory");
    for (int f = 0; f < np && !rc; f++) {
        m->stamp_len[v][f] = tokenizer_encode(e->tok, texts[f], strlen(texts[f]), &m->stamp_ids[v][f]);
        if (m->stamp_len[v][f] < 0) rc = -1;
    }
    video_timestamps_free(texts, np);
done:
    for (int i = 0; i < nf; i++) image_free(&frames[i]);
    free(frames);
    free(times);
    return rc;
}

// run the vision tower over items [from, to) of a batch, appending [tokens, H] to *embeds
static int encode_items(const Engine *e, const PixelBatch *pb, int from, int to, float **embeds, int64_t *ntok,
                        const TapSink *taps) {
    const Config *c = e->c;
    const int m2 = c->vision.spatial_merge_size * c->vision.spatial_merge_size, H = c->text.hidden_size;
    if (from >= to) return 0;
    PixelBatch sub = *pb; // a view of the items not encoded yet
    int64_t skip = 0, take = 0;
    for (int i = 0; i < from; i++) skip += (int64_t)pb->grid[i][0] * pb->grid[i][1] * pb->grid[i][2];
    for (int i = from; i < to; i++) take += (int64_t)pb->grid[i][0] * pb->grid[i][1] * pb->grid[i][2];
    sub.pixel_values = pb->pixel_values + skip * pb->ncols;
    sub.npatches = take;
    sub.nitems = to - from;
    memmove(sub.grid, pb->grid + from, (size_t)sub.nitems * sizeof sub.grid[0]);
    const int64_t add = sub.npatches / m2;
    float *out = realloc(*embeds, (size_t)(*ntok + add) * H * sizeof(float));
    if (!out) return glm_err("out of memory: %lld image features", (long long)(*ntok + add));
    *embeds = out;
    int rc = vision_encode(&e->w, c, &sub, *embeds + (size_t)*ntok * H, taps);
    if (!rc) *ntok += add;
    return rc;
}

int media_encode(Media *m, const Engine *e, const TapSink *taps) {
    if (m->img_done < m->img.nitems) progress(e, "encoding %d image(s)", m->img.nitems - m->img_done);
    if (encode_items(e, &m->img, m->img_done, m->img.nitems, &m->img_embeds, &m->n_img_tok, taps)) return -1;
    m->img_done = m->img.nitems;
    if (m->vid_done < m->vid.nitems) progress(e, "encoding %d video(s)", m->vid.nitems - m->vid_done);
    if (encode_items(e, &m->vid, m->vid_done, m->vid.nitems, &m->vid_embeds, &m->n_vid_tok, taps)) return -1;
    m->vid_done = m->vid.nitems;
    progress_done(e);
    return 0;
}

int media_encode_next(Media *m, const Engine *e, int type) {
    PixelBatch *pb = type == MEDIA_VIDEO ? &m->vid : &m->img;
    int *done = type == MEDIA_VIDEO ? &m->vid_done : &m->img_done;
    if (*done >= pb->nitems) return glm_err("no media item left to encode");
    if (encode_items(e, pb, *done, *done + 1, type == MEDIA_VIDEO ? &m->vid_embeds : &m->img_embeds,
                     type == MEDIA_VIDEO ? &m->n_vid_tok : &m->n_img_tok, NULL))
        return -1;
    ++*done;
    return 0;
}

int media_put_features(Media *m, const Engine *e, int type, const float *rows, int64_t nrows) {
    const int m2 = e->c->vision.spatial_merge_size * e->c->vision.spatial_merge_size, H = e->c->text.hidden_size;
    PixelBatch *pb = type == MEDIA_VIDEO ? &m->vid : &m->img;
    int *done = type == MEDIA_VIDEO ? &m->vid_done : &m->img_done;
    float **emb = type == MEDIA_VIDEO ? &m->vid_embeds : &m->img_embeds;
    int64_t *ntok = type == MEDIA_VIDEO ? &m->n_vid_tok : &m->n_img_tok;
    if (*done >= pb->nitems) return glm_err("no media item left to take features");
    const int *g = pb->grid[*done];
    if (nrows != (int64_t)g[0] * g[1] * g[2] / m2)
        return glm_err("%lld feature rows given for an item of %lld tokens", (long long)nrows,
                       (long long)((int64_t)g[0] * g[1] * g[2] / m2));
    float *out = realloc(*emb, (size_t)(*ntok + nrows) * H * sizeof(float));
    if (!out) return glm_err("out of memory: %lld image features", (long long)(*ntok + nrows));
    *emb = out;
    memcpy(out + (size_t)*ntok * H, rows, (size_t)nrows * H * sizeof(float));
    *ntok += nrows;
    ++*done;
    return 0;
}

void media_truncate(Media *m, const Engine *e, int nimg, int nvid) {
    const int m2 = e->c->vision.spatial_merge_size * e->c->vision.spatial_merge_size;
    PixelBatch *pbs[2] = {&m->img, &m->vid};
    int keep[2] = {nimg, nvid}, *done[2] = {&m->img_done, &m->vid_done};
    int64_t *ntok[2] = {&m->n_img_tok, &m->n_vid_tok};
    for (int k = 0; k < 2; k++) {
        PixelBatch *pb = pbs[k];
        while (pb->nitems > keep[k]) {
            int i = --pb->nitems;
            int64_t p = (int64_t)pb->grid[i][0] * pb->grid[i][1] * pb->grid[i][2];
            pb->npatches -= p;
            if (*done[k] > i) *ntok[k] -= p / m2, *done[k] = i;
            if (k == 1) media_free_stamps(m, i);
            else free(m->img_path[i]), m->img_path[i] = NULL;
        }
    }
}

const float *media_feature(const Media *m, int type, int64_t k, int H) {
    if (type == 1) return k < m->n_img_tok ? m->img_embeds + (size_t)k * H : NULL;
    if (type == 2) return k < m->n_vid_tok ? m->vid_embeds + (size_t)k * H : NULL;
    return NULL;
}

// ---------------------------------------------------------------------------- prompt

// the prompt's view of the media: grids and timestamp ids
static PromptMedia media_prompt(const Media *m) {
    PromptMedia pm = {m->img.nitems, (const int(*)[3])m->img.grid, m->vid.nitems, (const int(*)[3])m->vid.grid,
                      (const int *const *const *)m->stamp_ids, (const int *const *)m->stamp_len};
    return pm;
}

int engine_prompt_ids(const Engine *e, const int *ids, int n, const Media *m, Prompt *p) {
    memset(p, 0, sizeof *p);
    PromptMedia pm = media_prompt(m);
    if (prompt_expand(&p->seq, ids, n, e->c, &pm)) return -1;
    if (p->seq.n == 0) return glm_err("the prompt is empty");
    if (!(p->pos = malloc((size_t)3 * p->seq.n * sizeof(int64_t)))) return glm_err("out of memory (positions)");
    return prompt_positions(p->pos, &p->rope_delta, &p->seq, e->c, &pm);
}

int engine_prompt(const Engine *e, const char *text, size_t len, const Media *m, Prompt *p) {
    int *raw = NULL;
    int nraw = tokenizer_encode(e->tok, text, len, &raw);
    if (nraw < 0) {
        memset(p, 0, sizeof *p);
        return -1;
    }
    int rc = engine_prompt_ids(e, raw, nraw, m, p);
    free(raw);
    return rc;
}

void prompt_free(Prompt *p) {
    seq_free(&p->seq);
    free(p->pos);
    memset(p, 0, sizeof *p);
}

// masked_scatter: the k-th image (video) token takes row k of the image (video) features, in prompt order. Rows
// [i0, i0 + n) of the prompt; out[i - i0] gets the feature of token i (compact = 0: text rows untouched) or out[r++]
// (compact = 1: vision rows gathered). Returns the rows written, or -1 + glm_errmsg when a feature is missing
static int64_t scatter_features(const Prompt *p, int i0, int n, const Media *m, int H, float *out, int compact) {
    int64_t ki = 0, kv = 0, r = 0;
    for (int i = 0; i < i0; i++) ki += p->seq.type[i] == 1, kv += p->seq.type[i] == 2;
    for (int i = i0; i < i0 + n; i++) {
        const int t = p->seq.type[i];
        if (!t) continue;
        const float *src = media_feature(m, t, t == 1 ? ki++ : kv++, H);
        if (!src) return glm_err("image features and image tokens do not match");
        memcpy(out + (size_t)(compact ? r : i - i0) * H, src, (size_t)H * sizeof(float));
        r++;
    }
    return r;
}

int engine_embed(const Engine *e, const Prompt *p, int i0, int n, const Media *m, float *out) {
    const int H = e->c->text.hidden_size, V = e->c->text.vocab_size;
    for (int i = i0; i < i0 + n; i++)
        if (p->seq.ids[i] < 0 || p->seq.ids[i] >= V)
            return glm_err("token id %d is outside the model vocabulary (%d)", p->seq.ids[i], V);
    embed_tokens(&e->w, e->c, p->seq.ids + i0, n, out);
    return scatter_features(p, i0, n, m, H, out, 0) < 0 ? -1 : 0;
}

int64_t engine_gather_features(const Engine *e, const Prompt *p, const Media *m, float *out) {
    return scatter_features(p, 0, p->seq.n, m, e->c->text.hidden_size, out, 1);
}

// ---------------------------------------------------------------------------- sessions

int session_init(Session *s, const Engine *e, int max_ctx, int chunk, int all_logits) {
    memset(s, 0, sizeof *s);
    const Config *c = e->c;
    const int V = c->text.vocab_size, H = c->text.hidden_size;
    s->e = e, s->max_ctx = max_ctx, s->all_logits = all_logits;
    if (model_init(&s->md, c, &e->w, max_ctx, chunk)) return -1;
    s->cache_ids = malloc((size_t)max_ctx * sizeof(int));
    s->logits = malloc((size_t)(all_logits ? chunk : 1) * V * sizeof(float));
    s->last = malloc((size_t)V * sizeof(float));
    s->emb = malloc((size_t)chunk * H * sizeof(float));
    if (!s->cache_ids || !s->logits || !s->last || !s->emb) {
        session_free(s);
        return glm_err("out of memory (vocabulary and prompt buffers)");
    }
    return 0;
}

void session_free(Session *s) {
    model_free(&s->md);
    free(s->cache_ids), free(s->logits), free(s->last), free(s->emb);
    memset(s, 0, sizeof *s);
}

// the checks session_prefill makes before the KV cache changes: every id in the vocabulary, one feature row per
// vision token
static int prefill_check(const Session *s, const Prompt *p, const Media *m) {
    const int V = s->e->c->text.vocab_size, L = p->seq.n;
    if (L < 1) return glm_err("the prompt is empty");
    if (L > s->max_ctx) return glm_err("the prompt (%d tokens) exceeds the context of %d tokens", L, s->max_ctx);
    int64_t ki = 0, kv = 0;
    for (int i = 0; i < L; i++) {
        if (p->seq.ids[i] < 0 || p->seq.ids[i] >= V)
            return glm_err("token id %d is outside the model vocabulary (%d)", p->seq.ids[i], V);
        ki += p->seq.type[i] == 1, kv += p->seq.type[i] == 2;
    }
    if (ki != m->n_img_tok || kv != m->n_vid_tok)
        return glm_err("image features (%lld + %lld) and image tokens (%lld + %lld) do not match",
                       (long long)m->n_img_tok, (long long)m->n_vid_tok, (long long)ki, (long long)kv);
    return 0;
}

int session_prefix(const Session *s, const Prompt *p) {
    const int L = p->seq.n;
    int keep = 0;
    while (keep < s->md.n_past && keep < L && s->cache_ids[keep] == p->seq.ids[keep]) keep++;
    if (keep == L && L > 0) keep = L - 1; // the last position must run again to give its logits
    return keep;
}

int session_prefill_chunk(Session *s, const Prompt *p, const Media *m, const TapSink *taps) {
    const int V = s->e->c->text.vocab_size, L = p->seq.n;
    if (prefill_check(s, p, m)) return -1;
    const int i0 = session_prefix(s, p), n = L - i0 < s->md.chunk ? L - i0 : s->md.chunk;
    s->md.n_past = i0;
    s->rope_delta = p->rope_delta;
    if (engine_embed(s->e, p, i0, n, m, s->emb)) return -1;
    model_forward(&s->md, s->emb, p->pos + i0, L, n, s->logits, s->all_logits, taps);
    if (s->all_logits) tap(taps, "logits", DT_F32, 2, (int64_t[]){n, V}, s->logits);
    memcpy(s->last, s->all_logits ? s->logits + (size_t)(n - 1) * V : s->logits, (size_t)V * sizeof(float));
    memcpy(s->cache_ids + i0, p->seq.ids + i0, (size_t)n * sizeof(int));
    return L - (i0 + n);
}

int session_prefill(Session *s, const Prompt *p, const Media *m, const TapSink *taps) {
    const int L = p->seq.n;
    if (prefill_check(s, p, m)) return -1;
    const int keep = session_prefix(s, p);
    for (int left = L - keep; left > 0;) {
        progress(s->e, "prompt %d/%d tokens", L - left - keep, L - keep);
        if ((left = session_prefill_chunk(s, p, m, taps)) < 0) {
            progress_done(s->e);
            return -1;
        }
    }
    progress_done(s->e);
    s->n_prefilled = L - keep;
    s->n_cached = keep;
    return 0;
}

int session_step(Session *s, int id) {
    const Engine *e = s->e;
    if (s->md.n_past >= s->max_ctx) return glm_err("the context of %d tokens is full", s->max_ctx);
    if (id < 0 || id >= e->c->text.vocab_size) return glm_err("token id %d is outside the model vocabulary", id);
    // decode: position = cache position + rope_delta on all three rows
    int64_t pp = s->md.n_past + s->rope_delta, p3[3] = {pp, pp, pp};
    s->cache_ids[s->md.n_past] = id;
    embed_tokens(&e->w, e->c, &id, 1, s->emb);
    model_forward(&s->md, s->emb, p3, 1, 1, s->last, 0, NULL);
    return 0;
}

void session_truncate(Session *s, int n) {
    if (n < s->md.n_past) s->md.n_past = n < 0 ? 0 : n;
}

// ---------------------------------------------------------------------------- batched decoding

int batch_init(Batch *b, const Engine *e, int max_rows, int max_ctx) {
    memset(b, 0, sizeof *b);
    b->e = e, b->max_rows = max_rows;
    if (max_rows < 1) return glm_err("a batch needs at least one row");
    if (model_init_batch(&b->act, e->c, &e->w, max_ctx, max_rows)) return -1;
    b->emb = malloc((size_t)max_rows * e->c->text.hidden_size * sizeof(float));
    b->pos = malloc((size_t)3 * max_rows * sizeof(int64_t));
    if (!b->emb || !b->pos) {
        batch_free(b);
        return glm_err("out of memory (batch buffers)");
    }
    return 0;
}

void batch_free(Batch *b) {
    model_free(&b->act);
    free(b->emb), free(b->pos);
    memset(b, 0, sizeof *b);
}

int engine_step_batch(Batch *b, Session **ss, const int *ids, int n) {
    const Engine *e = b->e;
    const int H = e->c->text.hidden_size, V = e->c->text.vocab_size;
    if (n < 1 || n > b->max_rows) return glm_err("a batch of %d sessions (1..%d)", n, b->max_rows);
    ModelSeq seqs[n];
    for (int i = 0; i < n; i++) {
        Session *s = ss[i];
        if (s->md.n_past >= s->max_ctx) return glm_err("the context of %d tokens is full", s->max_ctx);
        if (s->max_ctx > b->act.max_ctx) return glm_err("a session of %d tokens in a batch of %d", s->max_ctx, b->act.max_ctx);
        if (ids[i] < 0 || ids[i] >= V) return glm_err("token id %d is outside the model vocabulary", ids[i]);
    }
    for (int i = 0; i < n; i++) {
        Session *s = ss[i];
        // decode: position = cache position + rope_delta on all three rows
        const int64_t p = s->md.n_past + s->rope_delta;
        b->pos[i] = b->pos[b->max_rows + i] = b->pos[2 * b->max_rows + i] = p;
        s->cache_ids[s->md.n_past] = ids[i];
        embed_tokens(&e->w, e->c, &ids[i], 1, b->emb + (size_t)i * H);
        seqs[i] = (ModelSeq){&s->md, 1, b->pos + i, b->max_rows, s->last, 0};
    }
    model_forward_batch(&b->act, seqs, n, b->emb, NULL);
    return 0;
}
