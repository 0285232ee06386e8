// SPDX-License-Identifier: MIT
// scorer.c - `glm4v score`: another backend's completions checked token by token against the exact model (scorer.h).
// Mirrors the checks backends run on themselves: vLLM tests/models/utils.py check_logprobs_close (the token of one
// side in the other's top-k) and llama.cpp tools/perplexity --kl-divergence (KL of the reference distribution
// against the tested one), here over a teacher-forced prefill of prompt + their completion:
//   logits = model(prompt + completion[:-1]).logits[len(prompt) - 1:]      (every position's row, one prefill)
//   ours   = logits.log_softmax(-1)                                      (in double, rounded to fp32)
// Cases come from JSONL lines; their reports are cJSON objects, written as one JSON text per run or shard.
#include "scorer.h"

#include "chat_template.h"
#include "json.h"
#include "messages.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------- options

void score_options_default(ScoreOptions *o) {
    memset(o, 0, sizeof *o);
    o->top_k = 20, o->chunk = 512;
    o->media = (MediaOptions){.resize = RESIZE_TORCH, .max_image_pixels = 100000000, .fps = 2.0f};
    score_preset(&o->th, "fp32");
}

int score_preset(ScoreThresholds *t, const char *name) {
    // preset             near_tie  max|d|  mean|d|  min_agree
    static const struct { const char *name; double nt, mx, mean, agree; } P[] = {
        {"fp32", 1e-3, 1e-3, 1e-4, 1.0},  // another fp32 implementation: rounding-level differences only
        {"bf16", 0.25, 1.0, 0.05, 0.98},  // bf16 weights / activations (vLLM, SGLang in bf16)
        {"quant", 0.5, 2.0, 0.15, 0.95},  // FP8 / int8 / int4 / GGUF k-quants
    };
    for (size_t i = 0; i < sizeof P / sizeof *P; i++)
        if (!strcmp(name, P[i].name)) {
            snprintf(t->preset, sizeof t->preset, "%s", P[i].name);
            t->near_tie = P[i].nt, t->max_abs_dlogprob = P[i].mx, t->mean_abs_dlogprob = P[i].mean;
            t->min_agree = P[i].agree;
            return 0;
        }
    return glm_err("--preset: '%s' is not fp32, bf16 or quant", name);
}

// ---------------------------------------------------------------------------- text buffer

// a growable string (the report and the page are built in one)
typedef struct {
    char *s;       // [cap] text, NUL-terminated
    size_t n, cap; // bytes used / allocated
    int oom;       // 1 after a failed allocation (the text is then dropped)
} Str;

static void str_put(Str *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->s = t, b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void str_cat(Str *b, const char *s) { str_put(b, s, strlen(s)); }

static void str_printf(Str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void str_printf(Str *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        str_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    str_put(b, big, (size_t)n);
    free(big);
}

// the text, or NULL + glm_errmsg after an allocation failure
static char *str_take(Str *b) {
    if (b->oom || !b->s) {
        free(b->s);
        glm_err("out of memory (report text)");
        return NULL;
    }
    return b->s;
}

// a cJSON object's text appended (compact); 0 or -1 when out of memory
static void str_json(Str *b, const cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    if (!t) {
        b->oom = 1;
        return;
    }
    str_cat(b, t);
    free(t);
}

// ---------------------------------------------------------------------------- what the other backend gave

// their completion as our token ids, with what they said about each position
typedef struct {
    int *ids;        // [n] completion ids
    int n;           // completion tokens
    double *lp;      // [n] their logprob of their token (NAN: not given); NULL when none given
    int **top_ids;   // [n] their top-k ids at each position (NULL rows: not given); NULL when none given
    double **top_lp; // [n] their logprobs of those ids
    int *top_n;      // [n] entries of each row
    int retokenized; // 1: their tokens could not be mapped one to one, the completion text was re-tokenized
    char note[600];  // what was done to read the case ("" when nothing special)
} Theirs;

static void theirs_free(Theirs *t) {
    for (int i = 0; t->top_ids && i < t->n; i++) free(t->top_ids[i]), free(t->top_lp[i]);
    free(t->ids), free(t->lp), free(t->top_ids), free(t->top_lp), free(t->top_n);
    memset(t, 0, sizeof *t);
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

// an integer item (a raw or plain JSON number with an integral value in [lo, hi]); -1 + glm_errmsg otherwise
static int get_int(const cJSON *v, long lo, long hi, long *out, const char *what) {
    int ok;
    double d = json_number(v, &ok);
    if (!ok || d != floor(d) || d < lo || d > hi) return glm_err("%s: not an integer in [%ld, %ld]", what, lo, hi);
    *out = (long)d;
    return 0;
}

// a logprob they gave: NAN when absent or null, else a finite number (1e999 reads as infinity: an error, not a value
// to compare); -1 + glm_errmsg naming where otherwise
static int read_logprob(const cJSON *v, double *out, const char *where) {
    int ok;
    *out = NAN;
    if (!v || cJSON_IsNull(v)) return 0;
    const double d = json_number(v, &ok);
    if (!ok) return glm_err("%s: a logprob is not a number", where);
    if (!isfinite(d)) return glm_err("%s: logprob %g is not a finite number", where, d);
    *out = d;
    return 0;
}

// the bytes an OpenAI logprobs entry stands for: its `bytes` array, else the UTF-8 of its token text; the vLLM form
// "token_id:N" (--return-tokens-as-token-ids) gives the id directly. Returns our id, or -1 when the vocabulary has no
// such token (raw bytes appended to text either way when text is not NULL; *known = 0 when none are known)
static int map_entry(const Engine *e, const char *tok, const cJSON *bytes, Str *text, int *known) {
    const int V = e->c->text.vocab_size;
    uint8_t buf[1024];
    size_t n = 0;
    int have = 0;
    if (tok && !strncmp(tok, "token_id:", 9)) {
        char *end;
        long id = strtol(tok + 9, &end, 10);
        if (end == tok + 9 || *end || id < 0 || id >= V) return -1;
        if (text) {
            char *s = tokenizer_decode(e->tok, (int[]){(int)id}, 1, 0);
            if (s) str_cat(text, s);
            free(s);
        }
        return (int)id;
    }
    if (cJSON_IsArray(bytes) && cJSON_GetArraySize(bytes) > 0 && cJSON_GetArraySize(bytes) <= (int)sizeof buf) {
        have = 1;
        for (const cJSON *b = bytes->child; b; b = b->next) {
            long v;
            if (get_int(b, 0, 255, &v, "bytes")) {
                have = 0;
                break;
            }
            buf[n++] = (uint8_t)v;
        }
    }
    const int have_bytes = have;
    if (!have && tok && strlen(tok) <= sizeof buf) n = strlen(tok), memcpy(buf, tok, n), have = 1;
    if (!have) {
        if (known) *known = 0;
        return -1;
    }
    if (text) str_put(text, (const char *)buf, n);
    int id = tokenizer_bytes_id(e->tok, buf, n);
    // a backend that logs the vocabulary's own strings (convert_ids_to_tokens: "Ġthe") rather than their text
    if (id < 0 && tok && !have_bytes) id = tokenizer_token_id(e->tok, tok);
    return id;
}

// their top candidates at one position: {"token text": logprob, ...} (the completions API), or a list of
// {"token", "logprob", "bytes"} / {"token_id" | "id", "logprob"} (chat completions, vLLM, llama-server); entries
// whose token is not in our vocabulary are left out
static int read_top(const Engine *e, const cJSON *v, int **ids, double **lps, int *n, const char *where) {
    *ids = NULL, *lps = NULL, *n = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return glm_err("%s: not an object or a list", where);
    int cap = cJSON_GetArraySize(v), k = 0;
    *ids = malloc((size_t)(cap + 1) * sizeof(int)), *lps = malloc((size_t)(cap + 1) * sizeof(double));
    if (!*ids || !*lps) return glm_err("out of memory");
    for (const cJSON *it = v->child; it; it = it->next) {
        int id;
        double lp;
        const cJSON *lv;
        if (cJSON_IsObject(v)) {
            id = map_entry(e, it->string, NULL, NULL, NULL);
            lv = it;
        } else {
            if (!cJSON_IsObject(it)) return glm_err("%s: an entry is not an object", where);
            const cJSON *tid = get(it, "token_id") ? get(it, "token_id") : get(it, "id"), *t = get(it, "token");
            long l;
            if (tid) id = get_int(tid, 0, e->c->text.vocab_size - 1, &l, where) ? -1 : (int)l;
            else id = map_entry(e, cJSON_IsString(t) ? t->valuestring : NULL, get(it, "bytes"), NULL, NULL);
            lv = get(it, "logprob");
        }
        if (read_logprob(lv, &lp, where)) return -1;
        if (isnan(lp)) return glm_err("%s: an entry has no logprob", where);
        if (id < 0) continue;
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= (*ids)[j] == id;
        if (!dup) (*ids)[k] = id, (*lps)[k] = lp, k++;
    }
    *n = k;
    return 0;
}

// room for n positions of their data
static int theirs_alloc(Theirs *t, int n, int with_lp, int with_top) {
    t->n = n;
    t->ids = calloc((size_t)n + 1, sizeof(int));
    if (with_lp && (t->lp = malloc(((size_t)n + 1) * sizeof(double))))
        for (int i = 0; i < n; i++) t->lp[i] = NAN;
    if (with_top) {
        t->top_ids = calloc((size_t)n + 1, sizeof(int *)), t->top_lp = calloc((size_t)n + 1, sizeof(double *));
        t->top_n = calloc((size_t)n + 1, sizeof(int));
    }
    if (!t->ids || (with_lp && !t->lp) || (with_top && (!t->top_ids || !t->top_lp || !t->top_n)))
        return glm_err("out of memory");
    return 0;
}

// their text tokenized by our tokenizer (a completion given as text, or tokens that did not map one to one)
static int tokenize_text(const Engine *e, const char *s, size_t len, Theirs *t) {
    char *text = prompt_text_from_bytes(s, len); // invalid UTF-8 as U+FFFD, as HF's str
    int *ids = NULL;
    int n = text ? tokenizer_encode(e->tok, text, strlen(text), &ids) : -1;
    free(text);
    if (n < 0) return -1;
    if (theirs_alloc(t, n, 0, 0)) {
        free(ids);
        return -1;
    }
    if (n) memcpy(t->ids, ids, (size_t)n * sizeof(int));
    free(ids);
    return 0;
}

// per-token logprobs and top lists given beside completion_ids / completion: "logprobs" [n] numbers (null: not
// given), "top_logprobs" [n] (read_top's forms)
static int read_side_logprobs(const Engine *e, const cJSON *c, Theirs *t) {
    const cJSON *lp = get(c, "logprobs"), *top = get(c, "top_logprobs");
    const int nlp = cJSON_IsArray(lp) ? cJSON_GetArraySize(lp) : cJSON_IsArray(top) ? cJSON_GetArraySize(top) : t->n;
    if (get(c, "completion") && nlp != t->n) { // their text, our tokens: their per-token numbers do not line up
        snprintf(t->note, sizeof t->note, "the completion text was tokenized into %d tokens, not the %d of their "
                 "logprobs: their logprobs are not compared", t->n, nlp);
        t->retokenized = 1;
        return 0;
    }
    if (lp && !cJSON_IsNull(lp)) {
        if (!cJSON_IsArray(lp)) return glm_err("logprobs: not a list");
        if (cJSON_GetArraySize(lp) != t->n)
            return glm_err("logprobs: %d entries for %d completion tokens", cJSON_GetArraySize(lp), t->n);
        if (!(t->lp = malloc(((size_t)t->n + 1) * sizeof(double)))) return glm_err("out of memory");
        int i = 0;
        for (const cJSON *v = lp->child; v; v = v->next, i++) {
            char where[64];
            snprintf(where, sizeof where, "logprobs[%d]", i);
            if (read_logprob(v, &t->lp[i], where)) return -1;
        }
    }
    if (top && !cJSON_IsNull(top)) {
        if (!cJSON_IsArray(top)) return glm_err("top_logprobs: not a list");
        if (cJSON_GetArraySize(top) != t->n)
            return glm_err("top_logprobs: %d entries for %d completion tokens", cJSON_GetArraySize(top), t->n);
        t->top_ids = calloc((size_t)t->n + 1, sizeof(int *)), t->top_lp = calloc((size_t)t->n + 1, sizeof(double *));
        t->top_n = calloc((size_t)t->n + 1, sizeof(int));
        if (!t->top_ids || !t->top_lp || !t->top_n) return glm_err("out of memory");
        int i = 0;
        for (const cJSON *v = top->child; v; v = v->next, i++) {
            char where[64];
            snprintf(where, sizeof where, "top_logprobs[%d]", i);
            if (read_top(e, v, &t->top_ids[i], &t->top_lp[i], &t->top_n[i], where)) return -1;
        }
    }
    return 0;
}

// an OpenAI response object (chat.completion with choices[0].logprobs.content, or text_completion with
// choices[0].logprobs.tokens / token_logprobs / top_logprobs): their tokens mapped back to our ids, else the text
// re-tokenized
static int read_response(const Engine *e, const cJSON *r, Theirs *t) {
    const cJSON *ch = get(r, "choices");
    if (!cJSON_IsObject(r) || !cJSON_IsArray(ch) || !cJSON_IsObject(ch->child))
        return glm_err("response: no choices[0] (an OpenAI chat.completion or text_completion object)");
    ch = ch->child;
    const cJSON *lp = get(ch, "logprobs"), *msg = get(ch, "message");
    const cJSON *content = cJSON_IsObject(lp) ? get(lp, "content") : NULL;
    const cJSON *toks = cJSON_IsObject(lp) ? get(lp, "tokens") : NULL;
    // the message text, for when there are no usable tokens
    Str text = {0};
    const cJSON *rc = cJSON_IsObject(msg) ? get(msg, "reasoning_content") : NULL;
    if (!rc && cJSON_IsObject(msg)) rc = get(msg, "reasoning");
    const cJSON *mc = cJSON_IsObject(msg) ? get(msg, "content") : get(ch, "text");
    if (cJSON_IsString(rc)) str_cat(&text, "<think>"), str_cat(&text, rc->valuestring), str_cat(&text, "</think>");
    if (cJSON_IsString(mc)) str_cat(&text, mc->valuestring);
    int n = cJSON_IsArray(content) ? cJSON_GetArraySize(content) : cJSON_IsArray(toks) ? cJSON_GetArraySize(toks) : -1;
    if (n < 0) { // no logprobs: the text is all there is
        int rcode = !text.s && !cJSON_IsString(mc) ? glm_err("response: no logprobs and no message content") : 0;
        if (!rcode) rcode = tokenize_text(e, text.s ? text.s : "", text.n, t);
        if (!rcode)
            snprintf(t->note, sizeof t->note, "the response has no logprobs: its text was tokenized (%d tokens)%s", t->n,
                     cJSON_IsString(rc) ? "; reasoning_content joined as <think>...</think> before the content" : "");
        t->retokenized = 1;
        free(text.s);
        return rcode;
    }
    if (theirs_alloc(t, n, 1, 1)) return free(text.s), -1;
    const cJSON *tlp = cJSON_IsArray(toks) ? get(lp, "token_logprobs") : NULL;
    const cJSON *ttop = cJSON_IsArray(toks) ? get(lp, "top_logprobs") : NULL;
    Str raw = {0}; // their tokens' bytes in order: the text to re-tokenize when a token does not map
    int bad = -1, i = 0, have_top = 0;
    char badtok[64] = "";
    const cJSON *it = cJSON_IsArray(content) ? content->child : toks->child;
    const cJSON *lpi = cJSON_IsArray(tlp) ? tlp->child : NULL, *topi = cJSON_IsArray(ttop) ? ttop->child : NULL;
    for (; it; it = it->next, i++) {
        char where[64];
        snprintf(where, sizeof where, "response logprobs[%d]", i);
        const cJSON *tok = content ? get(it, "token") : it, *top = content ? get(it, "top_logprobs") : topi;
        const cJSON *lv = content ? get(it, "logprob") : lpi;
        if (!cJSON_IsString(tok)) {
            free(raw.s), free(text.s);
            return glm_err("%s: no token string", where);
        }
        int known = 1, id = map_entry(e, tok->valuestring, content ? get(it, "bytes") : NULL, &raw, &known);
        // llama-server and SGLang may give the id itself ("id" / "token_id"): it wins over the text
        const cJSON *tid = content ? (get(it, "token_id") ? get(it, "token_id") : get(it, "id")) : NULL;
        long l;
        if (tid && !get_int(tid, 0, e->c->text.vocab_size - 1, &l, where)) id = (int)l;
        if (id < 0 && bad < 0) bad = i, snprintf(badtok, sizeof badtok, "%s", tok->valuestring);
        t->ids[i] = id;
        if (read_logprob(lv, &t->lp[i], where)) {
            free(raw.s), free(text.s);
            return -1;
        }
        if (top && !cJSON_IsNull(top)) {
            if (read_top(e, top, &t->top_ids[i], &t->top_lp[i], &t->top_n[i], where)) {
                free(raw.s), free(text.s);
                return -1;
            }
            have_top = 1;
        }
        if (lpi) lpi = lpi->next;
        if (topi) topi = topi->next;
    }
    if (!have_top) { // no top lists at all: the report says null, not "none in common"
        for (int j = 0; j < n; j++) free(t->top_ids[j]), free(t->top_lp[j]);
        free(t->top_ids), free(t->top_lp), free(t->top_n);
        t->top_ids = NULL, t->top_lp = NULL, t->top_n = NULL;
    }
    if (bad >= 0) { // not one to one: their text, re-tokenized; their per-token numbers no longer line up
        // the text is their tokens' bytes in order, unless those hold U+FFFD where the message text does not: a
        // backend that logs each token decoded on its own (vLLM: token and bytes of "\uFFFD" for each piece of a
        // split UTF-8 character) lost those bytes, and the message text has the characters
        const char *fffd = "\xEF\xBF\xBD";
        const int lossy = raw.s && text.s && memmem(raw.s, raw.n, fffd, 3) && !memmem(text.s, text.n, fffd, 3);
        const Str *src = lossy ? &text : &raw;
        Theirs r = {0};
        int rcode = tokenize_text(e, src->s ? src->s : "", src->n, &r);
        free(raw.s), free(text.s);
        if (rcode) return -1;
        for (size_t k = 0; badtok[k]; k++)
            if ((unsigned char)badtok[k] < 0x20 || (unsigned char)badtok[k] >= 0x80) badtok[k] = '?';
        snprintf(r.note, sizeof r.note,
                 "token %d ('%s') of the response is not one of our tokens: the completion (%d tokens) was "
                 "re-tokenized%s into %d tokens; their logprobs do not line up and are not compared", bad, badtok, n,
                 lossy ? " from the message text (their tokens hold U+FFFD for pieces of UTF-8 characters)" : "", r.n);
        r.retokenized = 1;
        theirs_free(t);
        *t = r;
        return 0;
    }
    free(raw.s), free(text.s);
    return 0;
}

// the case's completion: completion_ids, completion (text) or response
static int case_output(const Engine *e, const cJSON *c, Theirs *t) {
    const cJSON *ids = get(c, "completion_ids"), *text = get(c, "completion"), *resp = get(c, "response");
    if (!!ids + !!text + !!resp > 1) return glm_err("give one of completion_ids, completion and response");
    if (resp) return read_response(e, resp, t);
    if (ids) {
        if (!cJSON_IsArray(ids)) return glm_err("completion_ids: not a list of token ids");
        if (theirs_alloc(t, cJSON_GetArraySize(ids), 0, 0)) return -1;
        int i = 0;
        for (const cJSON *v = ids->child; v; v = v->next, i++) {
            long id;
            char where[64];
            snprintf(where, sizeof where, "completion_ids[%d]", i);
            if (get_int(v, 0, e->c->text.vocab_size - 1, &id, where))
                return glm_err("completion_ids[%d]: token id %s is not in the vocabulary (0..%d)", i,
                               cJSON_IsRaw(v) && v->valuestring ? v->valuestring : "?", e->c->text.vocab_size - 1);
            t->ids[i] = (int)id;
        }
    } else if (text) {
        if (!cJSON_IsString(text)) return glm_err("completion: not a string");
        if (tokenize_text(e, text->valuestring, strlen(text->valuestring), t)) return -1;
        snprintf(t->note, sizeof t->note, "the completion text was tokenized (%d tokens)", t->n);
    } else return glm_err("no completion: give completion_ids, completion or response");
    return read_side_logprobs(e, c, t);
}

// ---------------------------------------------------------------------------- the prompt

int score_placeholder_ids(const Engine *e, int *ids, int n, int nimages) {
    int nimg = 0, k = 0;
    for (int i = 0; i < n; i++) nimg += ids[i] == e->c->image_token_id;
    if (!nimages || nimg == nimages) return n;
    for (int i = 0; i < n; i++)
        if (!(i > 0 && ids[i] == e->c->image_token_id && ids[i - 1] == e->c->image_token_id)) ids[k++] = ids[i];
    return k;
}

// the case's prompt as token ids with image / video placeholders, its media attached to m: messages (the
// checkpoint's chat template, add_generation_prompt), prompt (raw text) with images / video, or input_ids
static int case_input(const Engine *e, const cJSON *c, const ScoreOptions *o, Media *m, int **ids, int *n) {
    const cJSON *msgs = get(c, "messages"), *prompt = get(c, "prompt"), *inids = get(c, "input_ids");
    const cJSON *images = get(c, "images"), *video = get(c, "video");
    if (!!msgs + !!prompt + !!inids != 1) return glm_err("give one of messages, prompt and input_ids");
    if (msgs && (images || video)) return glm_err("messages carry their own images and videos: no images or video with them");
    if (images && !cJSON_IsArray(images)) return glm_err("images: not a list of paths");
    for (const cJSON *im = images ? images->child : NULL; im; im = im->next) {
        if (!cJSON_IsString(im)) return glm_err("images: an entry is not a path");
        if (media_add_image(m, e, im->valuestring, &o->media)) return -1;
    }
    if (video) {
        if (!cJSON_IsString(video)) return glm_err("video: not a path");
        if (media_add_video(m, e, video->valuestring, &o->media)) return -1;
    }
    if (inids) {
        if (!cJSON_IsArray(inids)) return glm_err("input_ids: not a list of token ids");
        *n = cJSON_GetArraySize(inids);
        if (!(*ids = malloc(((size_t)*n + 1) * sizeof(int)))) return glm_err("out of memory");
        int i = 0;
        for (const cJSON *v = inids->child; v; v = v->next, i++) {
            long id;
            if (get_int(v, 0, e->c->text.vocab_size - 1, &id, "input_ids"))
                return glm_err("input_ids[%d]: not a token id of the vocabulary (0..%d)", i, e->c->text.vocab_size - 1);
            (*ids)[i] = (int)id;
        }
        *n = score_placeholder_ids(e, *ids, *n, m->img.nitems);
        return 0;
    }
    char *text;
    size_t len;
    if (prompt) {
        if (!cJSON_IsString(prompt)) return glm_err("prompt: not a string");
        text = strdup(prompt->valuestring), len = strlen(prompt->valuestring);
        if (!text) return glm_err("out of memory");
    } else {
        if (!cJSON_IsArray(msgs) || !cJSON_GetArraySize(msgs)) return glm_err("messages: not a non-empty list");
        const cJSON *tools = get(c, "tools"), *kw = get(c, "chat_template_kwargs");
        if (tools && !cJSON_IsArray(tools)) return glm_err("tools: not a list");
        if (kw && !cJSON_IsObject(kw)) return glm_err("chat_template_kwargs: not an object");
        MediaPolicy pol = {.allowed_dir = NULL, .allow_local = 1};
        cJSON *mm = cJSON_Duplicate(msgs, 1); // a document part becomes its pages' image parts in this copy
        if (!mm) return glm_err("out of memory");
        text = messages_add_media(m, e, mm, &o->media, &pol) ? NULL : chat_template_render(&e->tmpl, mm, tools, 1, kw, &len);
        cJSON_Delete(mm);
        if (!text) return -1;
    }
    *n = tokenizer_encode(e->tok, text, len, ids);
    free(text);
    return *n < 0 ? -1 : 0;
}

// ---------------------------------------------------------------------------- teacher forcing

// what we make of one completion position
typedef struct {
    int token;          // their token
    int rank;           // its rank in our distribution (0 = our greedy choice)
    int top1;           // our greedy choice (torch.argmax: the first maximum)
    double lp;          // our logprob of their token
    double top1_lp;     // our logprob of top1
    double margin;      // top1_lp minus our second-best logprob
    double their_lp;    // their logprob of their token (NAN: not given)
    double kl;          // KL(ours || theirs) over the shared top-k support, both renormalised (NAN: no top list)
    int in_our_topk;    // their token among our top_k
    int ours_in_theirs; // our top1 among their top list (-1: no top list)
} Pos;

// the tap that receives the prefill's logits, chunk by chunk, and scores the completion's rows
typedef struct {
    const Theirs *t;  // their completion
    int first_row;    // the prefill row whose logits predict completion token 0
    int rows_seen;    // rows received so far
    int top_k;        // our top-k
    Pos *pos;         // [t->n] results
    int *kid;         // [top_k] scratch: our top-k ids
    double *klp;      // [top_k] their logprobs (ours)
} Forced;

// v rounded to fp32. Through a volatile float: gcc 12 -O2 vectorises two neighbouring (double)(float)(a - b)
// expressions into one subpd and drops the rounding
static double f32_round(double v) {
    volatile float f = (float)v;
    return f;
}

// one row of logits [V]: log_softmax in double, rank of their token, our top-1/top-2 and top-k, the KL divergence
static void score_row(Forced *f, const float *x, int V, int j) {
    const Theirs *t = f->t;
    Pos *p = &f->pos[j];
    const int tok = t->ids[j], k = f->top_k < V ? f->top_k : V;
    int a = 0;
    for (int i = 1; i < V; i++)
        if (x[i] > x[a]) a = i;
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)x[i] - x[a]);
    // torch.log_softmax: x - max - log(sum(exp(x - max)))
    const double lse = x[a] + log(s);
    int a2 = a == 0 ? 1 : 0, rank = 0, nk = 0;
    for (int i = 0; i < V; i++) {
        if (i != a && (x[i] > x[a2] || (x[i] == x[a2] && i < a2))) a2 = i;
        rank += x[i] > x[tok] || (x[i] == x[tok] && i < tok);
        // our top-k, by value then id (insertion into a sorted list of k)
        if (nk < k || x[i] > x[f->kid[nk - 1]]) {
            int q = nk < k ? nk++ : k - 1;
            while (q > 0 && x[f->kid[q - 1]] < x[i]) f->kid[q] = f->kid[q - 1], q--;
            f->kid[q] = i;
        }
    }
    // logprobs as fp32 values (what an fp32 log_softmax gives, correctly rounded)
#define LP(i) f32_round((double)x[i] - lse)
    p->token = tok, p->rank = rank, p->top1 = a;
    p->lp = LP(tok), p->top1_lp = LP(a);
    p->margin = V > 1 ? p->top1_lp - LP(a2) : INFINITY;
    p->their_lp = t->lp ? t->lp[j] : NAN;
    p->in_our_topk = rank < k;
    p->ours_in_theirs = -1, p->kl = NAN;
    if (t->top_ids && t->top_ids[j]) {
        const int *tid = t->top_ids[j];
        const double *tlp = t->top_lp[j];
        const int tn = t->top_n[j];
        p->ours_in_theirs = 0;
        for (int q = 0; q < tn; q++) p->ours_in_theirs |= tid[q] == a;
        // the shared support: our top-k ids that are in their list; each side renormalised over it
        double zp = 0, zq = 0, kl = 0;
        int ns = 0;
        for (int q = 0; q < nk; q++)
            for (int r = 0; r < tn; r++)
                if (tid[r] == f->kid[q]) {
                    f->klp[ns] = tlp[r], f->kid[ns] = f->kid[q], ns++; // compacted in place (q >= ns)
                    break;
                }
        double mo = -INFINITY, mt = -INFINITY;
        for (int q = 0; q < ns; q++) mo = fmax(mo, LP(f->kid[q])), mt = fmax(mt, f->klp[q]);
        for (int q = 0; q < ns; q++) zp += exp(LP(f->kid[q]) - mo), zq += exp(f->klp[q] - mt);
        for (int q = 0; q < ns; q++) {
            // KL(P || Q) = sum P log(P / Q), P ours and Q theirs on the shared support
            const double lpp = LP(f->kid[q]) - mo - log(zp), lq = f->klp[q] - mt - log(zq);
            kl += exp(lpp) * (lpp - lq);
        }
        p->kl = ns ? fmax(kl, 0.0) : NAN;
    }
#undef LP
}

// the TapFn: the "logits" rows of each prefill chunk
static void forced_tap(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    Forced *f = ctx;
    if (strcmp(name, "logits") || dt != DT_F32 || ndim != 2) return;
    const int n = (int)shape[0], V = (int)shape[1];
    for (int r = 0; r < n; r++) {
        const int j = f->rows_seen + r - f->first_row;
        if (j >= 0 && j < f->t->n) score_row(f, (const float *)data + (size_t)r * V, V, j);
    }
    f->rows_seen += n;
}

// prompt ids (placeholders) + their completion through one prefill of every row's logits; pos[n] filled
static int teacher_force(const Engine *e, const int *pids, int np, Media *m, const Theirs *t, const ScoreOptions *o,
                         Pos *pos, int *prompt_tokens) {
    const Config *c = e->c;
    for (int i = 0; i < t->n; i++)
        if (t->ids[i] < 0 || t->ids[i] >= c->text.vocab_size)
            return glm_err("completion token %d: id %d is outside the model vocabulary (%d)", i, t->ids[i], c->text.vocab_size);
        else if (t->ids[i] == c->image_token_id || t->ids[i] == c->video_token_id)
            return glm_err("completion token %d is an image / video placeholder (%d)", i, t->ids[i]);
    int L = np + t->n - 1; // the last completion token predicts nothing we score
    int *all = malloc(((size_t)L + 2) * sizeof(int));
    if (!all) return glm_err("out of memory");
    memcpy(all, pids, (size_t)np * sizeof(int));
    if (t->n > 1) memcpy(all + np, t->ids, (size_t)(t->n - 1) * sizeof(int));
    Prompt p;
    int rc = engine_prompt_ids(e, all, L, m, &p);
    free(all);
    if (rc) {
        prompt_free(&p);
        return -1;
    }
    L = p.seq.n;
    *prompt_tokens = L - (t->n - 1);
    if ((int64_t)L + 1 > c->text.max_position_embeddings) {
        prompt_free(&p);
        return glm_err("the prompt (%d tokens) plus the completion (%d tokens) exceeds the model context of %d tokens",
                       *prompt_tokens, t->n, c->text.max_position_embeddings);
    }
    const int k = o->top_k < c->text.vocab_size ? o->top_k : c->text.vocab_size;
    Forced f = {.t = t, .first_row = L - t->n, .top_k = k, .pos = pos};
    f.kid = malloc(((size_t)k + 1) * sizeof(int)), f.klp = malloc(((size_t)k + 1) * sizeof(double));
    Session s;
    TapSink sink = {forced_tap, &f};
    rc = !f.kid || !f.klp ? glm_err("out of memory") : 0;
    if (!rc) rc = media_encode(m, e, NULL);
    if (!rc && !(rc = session_init(&s, e, L, o->chunk < L ? o->chunk : L, 1))) {
        rc = session_prefill(&s, &p, m, &sink);
        session_free(&s);
    }
    if (!rc && f.rows_seen != L) rc = glm_err("the prefill gave %d logits rows for %d tokens", f.rows_seen, L);
    free(f.kid), free(f.klp);
    prompt_free(&p);
    return rc;
}

// ---------------------------------------------------------------------------- a case's report

// a string as valid UTF-8 for the report (an error message may quote bytes of a malformed line): bytes that do not
// form UTF-8 become '?'
static cJSON *utf8_string(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        for (int q = 1; q < len; q++)
            if (i + (size_t)q >= n || ((unsigned char)s[i + q] & 0xC0) != 0x80) len = 0;
        if (len == 3 && ((c == 0xE0 && (unsigned char)s[i + 1] < 0xA0) || (c == 0xED && (unsigned char)s[i + 1] >= 0xA0))) len = 0;
        if (len == 4 && ((c == 0xF0 && (unsigned char)s[i + 1] < 0x90) || (c == 0xF4 && (unsigned char)s[i + 1] >= 0x90))) len = 0;
        if (!len) o[i++] = '?';
        else memcpy(o + i, s + i, (size_t)len), i += (size_t)len;
    }
    o[n] = 0;
    cJSON *j = cJSON_CreateString(o);
    free(o);
    return j;
}

// a number in the shortest text that reads back as the same double (cJSON's own printing settles for 15 digits
// when they are "close enough"), or null for NAN / infinities
static cJSON *num_or_null(double v) {
    if (!isfinite(v)) return cJSON_CreateNull();
    char t[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    return cJSON_CreateRaw(t);
}

// the text of one token (special tokens kept; a partial UTF-8 character as U+FFFD)
static cJSON *token_text(const Engine *e, int id) {
    char *s = tokenizer_decode(e->tok, &id, 1, 0);
    cJSON *j = utf8_string(s ? s : "");
    free(s);
    return j;
}

// the report object of a case; err: its error (NULL when it was scored)
static cJSON *case_object(const Engine *e, const cJSON *idv, int index, int prompt_tokens, const Theirs *t,
                          const Pos *pos, const ScoreOptions *o, const char *err) {
    cJSON *c = cJSON_CreateObject();
    if (cJSON_IsString(idv)) cJSON_AddItemToObject(c, "id", utf8_string(idv->valuestring));
    else if (cJSON_IsRaw(idv) && idv->valuestring) cJSON_AddStringToObject(c, "id", idv->valuestring);
    else cJSON_AddNullToObject(c, "id");
    cJSON_AddNumberToObject(c, "index", index);
    const int n = err ? 0 : t->n;
    int agree = 0, near = 0, first = -1;
    double maxd = 0, sumd = 0, sumkl = 0;
    int nd = 0, nkl = 0;
    for (int j = 0; j < n; j++) {
        const Pos *p = &pos[j];
        agree += p->rank == 0;
        if (p->rank) {
            if (first < 0) first = j;
            near += p->top1_lp - p->lp <= o->th.near_tie;
        }
        if (!isnan(p->their_lp)) {
            const double d = fabs(p->their_lp - p->lp);
            maxd = fmax(maxd, d), sumd += d, nd++;
        }
        if (!isnan(p->kl)) sumkl += p->kl, nkl++;
    }
    cJSON_AddNumberToObject(c, "prompt_tokens", err ? 0 : prompt_tokens);
    cJSON_AddNumberToObject(c, "n_tokens", n);
    cJSON_AddNumberToObject(c, "agree", agree);
    cJSON_AddNumberToObject(c, "near_ties", near);
    if (first < 0) cJSON_AddNullToObject(c, "first_divergence");
    else {
        const Pos *p = &pos[first];
        cJSON *d = cJSON_AddObjectToObject(c, "first_divergence");
        cJSON_AddNumberToObject(d, "position", first);
        cJSON_AddNumberToObject(d, "theirs", p->token);
        cJSON_AddNumberToObject(d, "ours", p->top1);
        cJSON_AddItemToObject(d, "margin", num_or_null(p->margin));
        cJSON_AddBoolToObject(d, "near_tie", p->top1_lp - p->lp <= o->th.near_tie);
        cJSON_AddItemToObject(d, "their_text", token_text(e, p->token));
        cJSON_AddItemToObject(d, "our_text", token_text(e, p->top1));
    }
    cJSON_AddItemToObject(c, "max_abs_dlogprob", num_or_null(nd ? maxd : NAN));
    cJSON_AddItemToObject(c, "mean_abs_dlogprob", num_or_null(nd ? sumd / nd : NAN));
    cJSON_AddItemToObject(c, "mean_kl", num_or_null(nkl ? sumkl / nkl : NAN));
    // the verdict: no error, enough agreement (near ties count), |dlogprob| within bounds
    const int pass = !err && n > 0 && (double)(agree + near) >= o->th.min_agree * n &&
                     (!nd || (maxd <= o->th.max_abs_dlogprob && sumd / nd <= o->th.mean_abs_dlogprob));
    cJSON_AddBoolToObject(c, "pass", pass);
    if (err) cJSON_AddItemToObject(c, "error", utf8_string(err));
    else cJSON_AddNullToObject(c, "error");
    cJSON_AddBoolToObject(c, "retokenized", t && t->retokenized);
    if (t && t->note[0]) cJSON_AddItemToObject(c, "note", utf8_string(t->note));
    else cJSON_AddNullToObject(c, "note");
    cJSON *ps = cJSON_AddArrayToObject(c, "positions");
    for (int j = 0; j < n; j++) {
        const Pos *p = &pos[j];
        cJSON *q = cJSON_CreateObject();
        cJSON_AddNumberToObject(q, "token", p->token);
        cJSON_AddItemToObject(q, "text", token_text(e, p->token));
        cJSON_AddItemToObject(q, "logprob", num_or_null(p->lp));
        cJSON_AddNumberToObject(q, "rank", p->rank);
        cJSON_AddNumberToObject(q, "top1", p->top1);
        cJSON_AddItemToObject(q, "top1_text", token_text(e, p->top1));
        cJSON_AddItemToObject(q, "top1_logprob", num_or_null(p->top1_lp));
        cJSON_AddItemToObject(q, "margin", num_or_null(p->margin));
        cJSON_AddItemToObject(q, "their_logprob", num_or_null(p->their_lp));
        cJSON_AddItemToObject(q, "dlogprob", num_or_null(p->their_lp - p->lp));
        cJSON_AddBoolToObject(q, "in_our_topk", p->in_our_topk);
        if (p->ours_in_theirs < 0) cJSON_AddNullToObject(q, "ours_in_their_topk");
        else cJSON_AddBoolToObject(q, "ours_in_their_topk", p->ours_in_theirs);
        cJSON_AddItemToObject(q, "kl", num_or_null(p->kl));
        cJSON_AddItemToArray(ps, q);
    }
    return c;
}

cJSON *score_case(const Engine *e, const char *line, size_t len, int index, const ScoreOptions *o) {
    char name[64];
    snprintf(name, sizeof name, "case %d", index);
    cJSON *c = json_parse(line, len, name), *res;
    if (!c) {
        char msg[sizeof glm_errmsg + 32];
        snprintf(msg, sizeof msg, "not valid JSON: %s", glm_errmsg);
        return case_object(e, NULL, index, 0, NULL, NULL, o, msg);
    }
    const cJSON *idv = get(c, "id");
    if (!cJSON_IsObject(c)) {
        res = case_object(e, NULL, index, 0, NULL, NULL, o, "the line is not a JSON object");
        cJSON_Delete(c);
        return res;
    }
    Media m = {0};
    Theirs t = {0};
    int *pids = NULL, np = 0, prompt_tokens = 0;
    Pos *pos = NULL;
    int rc = case_output(e, c, &t);
    if (!rc && t.n < 1) rc = glm_err("the completion is empty");
    if (!rc) rc = case_input(e, c, o, &m, &pids, &np);
    if (!rc && np < 1) rc = glm_err("the prompt is empty");
    if (!rc && !(pos = calloc((size_t)t.n, sizeof *pos))) rc = glm_err("out of memory");
    if (!rc) rc = teacher_force(e, pids, np, &m, &t, o, pos, &prompt_tokens);
    res = case_object(e, idv, index, prompt_tokens, &t, pos, o, rc ? glm_errmsg : NULL);
    free(pos), free(pids);
    theirs_free(&t);
    media_free(&m);
    cJSON_Delete(c);
    return res;
}

// ---------------------------------------------------------------------------- reports

cJSON *score_settings(const Engine *e, const ScoreOptions *o) {
    cJSON *s = cJSON_CreateObject();
    char crc[16];
    snprintf(crc, sizeof crc, "%08x", e->c->config_crc);
    cJSON_AddStringToObject(s, "model", e->c->is_moe ? "Glm4vMoeForConditionalGeneration" : "Glm4vForConditionalGeneration");
    cJSON_AddStringToObject(s, "config_crc32", crc);
    cJSON_AddStringToObject(s, "glm4v_version", GLM4V_VERSION);
    cJSON_AddNumberToObject(s, "top_k", o->top_k);
    cJSON_AddStringToObject(s, "preset", o->th.preset);
    cJSON_AddItemToObject(s, "near_tie", num_or_null(o->th.near_tie));
    cJSON_AddItemToObject(s, "max_abs_dlogprob", num_or_null(o->th.max_abs_dlogprob));
    cJSON_AddItemToObject(s, "mean_abs_dlogprob", num_or_null(o->th.mean_abs_dlogprob));
    cJSON_AddItemToObject(s, "min_agree", num_or_null(o->th.min_agree));
    return s;
}

static double num(const cJSON *o, const char *k) {
    int ok;
    double v = json_number(get(o, k), &ok);
    return ok ? v : 0;
}

char *score_report_text(const cJSON *settings, const cJSON *cases, const ScoreShard *sh, int total) {
    int n = 0, passed = 0, errors = 0;
    double tokens = 0, agree = 0, near = 0;
    for (const cJSON *c = cases->child; c; c = c->next) {
        n++, passed += cJSON_IsTrue(get(c, "pass")), errors += cJSON_IsString(get(c, "error"));
        tokens += num(c, "n_tokens"), agree += num(c, "agree"), near += num(c, "near_ties");
    }
    Str b = {0};
    str_cat(&b, "{\n");
    if (sh)
        str_printf(&b, "\"shard\": {\"index\": %d, \"count\": %d, \"cases_total\": %d},\n", sh->shard, sh->count, total);
    str_printf(&b, "\"summary\": {\"cases\": %d, \"passed\": %d, \"failed\": %d, \"errors\": %d, \"tokens\": %.0f, "
                   "\"agree\": %.0f, \"near_ties\": %.0f},\n", n, passed, n - passed, errors, tokens, agree, near);
    str_cat(&b, "\"settings\": ");
    str_json(&b, settings);
    str_cat(&b, ",\n\"cases\": [");
    for (const cJSON *c = cases->child; c; c = c->next) {
        str_cat(&b, "\n");
        str_json(&b, c);
        if (c->next) str_cat(&b, ",");
    }
    str_cat(&b, "\n]\n}\n");
    return str_take(&b);
}

// the next case line of a JSONL text from *at on (blank lines skipped; a leading UTF-8 byte order mark, as Windows
// editors and PowerShell write it, is not part of the first case): 1 with [*start, *start + *n), 0 at the end
static int next_case_line(const char *text, size_t len, size_t *at, size_t *start, size_t *n) {
    if (*at == 0 && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) *at = 3;
    while (*at < len) {
        size_t end = *at, k = 0;
        while (end < len && text[end] != '\n') end++;
        *start = *at, *n = end - *at, *at = end + 1;
        while (k < *n && strchr(" \t\r", text[*start + k])) k++;
        if (k < *n) return 1;
    }
    return 0;
}

int score_count_cases(const char *text, size_t len) {
    size_t at = 0, start, n;
    int total = 0;
    while (next_case_line(text, len, &at, &start, &n)) total++;
    return total;
}

char *score_jsonl(const Engine *e, const char *text, size_t len, const ScoreOptions *o, const ScoreShard *shard) {
    const ScoreShard all = {0, 1}, *sh = shard ? shard : &all;
    cJSON *arr = cJSON_CreateArray();
    int total = 0;
    size_t at = 0, start, n;
    while (next_case_line(text, len, &at, &start, &n)) {
        if (total % sh->count == sh->shard) {
            if (e->progress) {
                char msg[64];
                snprintf(msg, sizeof msg, "scoring case %d", total);
                e->progress(e->progress_ctx, msg);
            }
            cJSON_AddItemToArray(arr, score_case(e, text + start, n, total, o));
        }
        total++;
    }
    if (e->progress) e->progress(e->progress_ctx, NULL);
    cJSON *settings = score_settings(e, o);
    char *out = arr && settings ? score_report_text(settings, arr, shard, total) : (glm_err("out of memory"), NULL);
    cJSON_Delete(settings), cJSON_Delete(arr);
    return out;
}

// cases ordered by index
static int cmp_index(const void *a, const void *b) {
    const double x = num(*(cJSON *const *)a, "index"), y = num(*(cJSON *const *)b, "index");
    return x < y ? -1 : x > y;
}

char *score_merge(char *const *texts, const size_t *lens, char *const *paths, int n) {
    cJSON **rep = calloc((size_t)n + 1, sizeof *rep), **all = NULL;
    char *settings0 = NULL, *out = NULL;
    int count = -1, total = -1, ncase = 0, rc = 0;
    unsigned char *seen = NULL;
    if (!rep) return glm_err("out of memory"), NULL;
    for (int i = 0; i < n && !rc; i++) {
        if (!(rep[i] = json_parse(texts[i], lens[i], paths[i]))) {
            rc = -1;
            break;
        }
        const cJSON *sh = get(rep[i], "shard"), *st = get(rep[i], "settings"), *cs = get(rep[i], "cases");
        if (!cJSON_IsObject(sh) || !cJSON_IsObject(st) || !cJSON_IsArray(cs)) {
            rc = glm_err("%s: not a partial report of glm4v score --shard (no shard, settings or cases)", paths[i]);
            break;
        }
        const int k = (int)num(sh, "index"), c = (int)num(sh, "count"), t = (int)num(sh, "cases_total");
        char *s = cJSON_PrintUnformatted(st);
        if (i == 0) count = c, total = t, settings0 = s, seen = calloc((size_t)c + 1, 1);
        else {
            if (c != count || t != total) rc = glm_err("%s: shard of %d over %d cases, %s: of %d over %d", paths[i], c, t, paths[0], count, total);
            else if (!s || strcmp(s, settings0)) rc = glm_err("%s: other settings (model, top_k, thresholds) than %s", paths[i], paths[0]);
            free(s);
        }
        if (rc) break;
        if (!seen) rc = glm_err("out of memory");
        else if (count < 1 || k < 0 || k >= count) rc = glm_err("%s: shard %d of %d", paths[i], k, count);
        else if (seen[k]) rc = glm_err("%s: shard %d/%d given twice", paths[i], k, count);
        else seen[k] = 1, ncase += cJSON_GetArraySize(cs);
        // a part holds only its own shard's cases (index % count == k): a part of another run or a renamed one is caught
        for (const cJSON *c = cs->child; !rc && c; c = c->next) {
            const double ix = num(c, "index");
            if (ix < 0 || ix != floor(ix) || ix >= total || (long)ix % count != k)
                rc = glm_err("%s: case index %g is not one of shard %d/%d's (of %d cases)", paths[i], ix, k, count, total);
        }
    }
    for (int k = 0; !rc && k < count; k++)
        if (!seen[k]) rc = glm_err("shard %d/%d is missing", k, count);
    if (!rc && ncase != total) rc = glm_err("the shards hold %d cases, the run had %d", ncase, total);
    if (!rc && !(all = calloc((size_t)ncase + 1, sizeof *all))) rc = glm_err("out of memory");
    if (!rc) {
        int q = 0;
        for (int i = 0; i < n; i++)
            for (cJSON *c = get(rep[i], "cases")->child; c; c = c->next) all[q++] = c;
        qsort(all, (size_t)ncase, sizeof *all, cmp_index);
        for (int i = 0; i < ncase && !rc; i++)
            if ((int)num(all[i], "index") != i) rc = glm_err("the case indexes are not 0..%d, each once", ncase - 1);
    }
    if (!rc) {
        cJSON *arr = cJSON_CreateArray(); // the cases, copied in index order
        for (int i = 0; i < ncase; i++) cJSON_AddItemToArray(arr, cJSON_Duplicate(all[i], 1));
        out = score_report_text(get(rep[0], "settings"), arr, NULL, total);
        cJSON_Delete(arr);
    }
    for (int i = 0; i < n; i++) cJSON_Delete(rep[i]);
    free(rep), free(all), free(settings0), free(seen);
    return out;
}

int score_all_passed(const cJSON *report) {
    const cJSON *s = get(report, "summary");
    return (int)num(s, "passed") == (int)num(s, "cases");
}

// ---------------------------------------------------------------------------- the terminal table

// worse first: an error, a failure, an earlier first divergence, a larger max |dlogprob|, then input order
static int cmp_worse(const void *a, const void *b) {
    const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
    int ex = cJSON_IsString(get(x, "error")), ey = cJSON_IsString(get(y, "error"));
    if (ex != ey) return ey - ex;
    int px = cJSON_IsTrue(get(x, "pass")), py = cJSON_IsTrue(get(y, "pass"));
    if (px != py) return px - py;
    const cJSON *dx = get(x, "first_divergence"), *dy = get(y, "first_divergence");
    double fx = cJSON_IsObject(dx) ? num(dx, "position") : 1e18, fy = cJSON_IsObject(dy) ? num(dy, "position") : 1e18;
    if (fx != fy) return fx < fy ? -1 : 1;
    double mx = num(x, "max_abs_dlogprob"), my = num(y, "max_abs_dlogprob");
    if (mx != my) return mx > my ? -1 : 1;
    return cmp_index(a, b);
}

// a value for the table: the number, or "-" for null
static void cell(char *out, size_t cap, const cJSON *v) {
    int ok;
    double d = json_number(v, &ok);
    if (ok) snprintf(out, cap, "%.3g", d);
    else snprintf(out, cap, "-");
}

// case text (an id, an error quoting the case) for the terminal: at most max bytes of s into out [cap], cut before a
// UTF-8 character rather than inside it, control characters (ESC sequences, BEL, CR) shown as '?' so that a case
// cannot drive the terminal or break the columns
static void table_text(char *out, size_t cap, const char *s, size_t max) {
    size_t n = 0;
    if (max >= cap) max = cap - 1;
    for (size_t i = 0; s[i] && n < max;) {
        const unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (n + len > max) break;
        for (size_t q = 0; q < len; q++) {
            const unsigned char b = (unsigned char)s[i + q];
            if (!b) return (void)(out[n] = 0);
            out[n++] = b < 0x20 || b == 0x7F ? '?' : (char)b;
        }
        i += len;
    }
    out[n] = 0;
}

void score_table(FILE *f, const cJSON *report) {
    const cJSON *cases = get(report, "cases");
    int n = cJSON_GetArraySize(cases), q = 0;
    const cJSON **row = malloc(((size_t)n + 1) * sizeof *row);
    if (!row) return;
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) row[q++] = c;
    qsort(row, (size_t)n, sizeof *row, cmp_worse);
    fprintf(f, "%-24s %7s %7s  %-28s %10s %10s  %s\n", "case", "tokens", "agree", "first divergence", "max|dlp|",
            "mean|dlp|", "verdict");
    for (int i = 0; i < n; i++) {
        const cJSON *c = row[i], *id = get(c, "id"), *d = get(c, "first_divergence"), *err = get(c, "error");
        char name[64], div[64], mx[32], mean[32];
        if (cJSON_IsString(id)) table_text(name, sizeof name, id->valuestring, 24);
        else snprintf(name, sizeof name, "#%d", (int)num(c, "index"));
        if (cJSON_IsObject(d))
            snprintf(div, sizeof div, "@%d %d->%d m=%.3g%s", (int)num(d, "position"), (int)num(d, "theirs"),
                     (int)num(d, "ours"), num(d, "margin"), cJSON_IsTrue(get(d, "near_tie")) ? " tie" : "");
        else snprintf(div, sizeof div, "-");
        cell(mx, sizeof mx, get(c, "max_abs_dlogprob"));
        cell(mean, sizeof mean, get(c, "mean_abs_dlogprob"));
        char verdict[200], msg[184];
        if (cJSON_IsString(err)) table_text(msg, sizeof msg, err->valuestring, 180), snprintf(verdict, sizeof verdict, "ERROR %s", msg);
        else snprintf(verdict, sizeof verdict, "%s%s", cJSON_IsTrue(get(c, "pass")) ? "pass" : "FAIL",
                      cJSON_IsTrue(get(c, "retokenized")) ? " (re-tokenized)" : "");
        fprintf(f, "%-24s %7d %7d  %-28s %10s %10s  %s\n", name, (int)num(c, "n_tokens"), (int)num(c, "agree"), div, mx,
                mean, verdict);
    }
    const cJSON *s = get(report, "summary");
    fprintf(f, "%d cases: %d passed, %d failed (%d errors)\n", (int)num(s, "cases"), (int)num(s, "passed"),
            (int)num(s, "failed"), (int)num(s, "errors"));
    free(row);
}

// ---------------------------------------------------------------------------- the HTML page

// text as HTML character data / attribute value
static void html_esc(Str *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': str_cat(b, "&amp;"); break;
        case '<': str_cat(b, "&lt;"); break;
        case '>': str_cat(b, "&gt;"); break;
        case '"': str_cat(b, "&quot;"); break;
        case '\'': str_cat(b, "&#39;"); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') str_printf(b, "&#x%x;", 0x2400 + *s); // a control char's picture
            else str_put(b, s, 1);
        }
    }
}

// the plot of dlogprob (or, without their logprobs, our top-1 logprob minus ours of their token) and our margin
static void html_plot(Str *b, const cJSON *ps, int n, const cJSON *div) {
    const double W = 900, H = 180, pad = 30;
    double lo = 0, hi = 0;
    int have_d = 0;
    for (const cJSON *p = ps->child; p; p = p->next) {
        int ok;
        double d = json_number(get(p, "dlogprob"), &ok);
        if (ok) have_d = 1, lo = fmin(lo, d), hi = fmax(hi, d);
        double m = json_number(get(p, "margin"), &ok);
        if (ok) hi = fmax(hi, m);
        if (!have_d) hi = fmax(hi, num(p, "top1_logprob") - num(p, "logprob"));
    }
    if (hi - lo < 1e-12) hi = lo + 1;
    const double left = 70; // room for the value labels
    const double sx = n > 1 ? (W - left - pad) / (n - 1) : 0, sy = (H - 2 * pad) / (hi - lo);
#define PX(i) (left + (i) * sx)
#define PY(v) (H - pad - ((v) - lo) * sy)
    str_printf(b, "<svg class=\"plot\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\">", W, H, W, H);
    str_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>", left, PY(0), W - pad, PY(0));
    str_printf(b, "<text x=\"2\" y=\"%.1f\" class=\"tick\">%.3g</text><text x=\"2\" y=\"%.1f\" class=\"tick\">%.3g</text>",
               PY(hi) + 4, hi, PY(lo) + 4, lo);
    if (cJSON_IsObject(div)) {
        const double x = PX(num(div, "position"));
        str_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"div\"/>", x, pad / 2, x, H - pad / 2);
    }
    for (int series = 0; series < 2; series++) {
        str_printf(b, "<polyline class=\"%s\" points=\"", series ? "margin" : "dlp");
        int i = 0;
        for (const cJSON *p = ps->child; p; p = p->next, i++) {
            int ok;
            double v = series ? json_number(get(p, "margin"), &ok)
                              : have_d ? json_number(get(p, "dlogprob"), &ok)
                                       : (ok = 1, num(p, "top1_logprob") - num(p, "logprob"));
            if (ok) str_printf(b, "%.1f,%.1f ", PX(i), PY(v));
        }
        str_cat(b, "\"/>");
    }
    str_printf(b, "<text x=\"%.0f\" y=\"14\" class=\"legend dlp\">%s</text>", left,
               have_d ? "&#916;logprob (theirs - ours)" : "our top-1 logprob - ours of their token");
    str_printf(b, "<text x=\"%.0f\" y=\"14\" class=\"legend margin\">our margin (top-1 - top-2)</text>", W / 2);
    str_printf(b, "<text x=\"%.0f\" y=\"%.0f\" class=\"tick\">position 0 .. %d</text></svg>\n", left, H - 6, n - 1);
#undef PX
#undef PY
}

// one case: verdict line, the completion coloured by |dlogprob| (or by rank), the plot
static void html_case(Str *b, const cJSON *c, double scale) {
    const cJSON *id = get(c, "id"), *err = get(c, "error"), *ps = get(c, "positions"), *div = get(c, "first_divergence");
    const int n = cJSON_GetArraySize(ps), pass = cJSON_IsTrue(get(c, "pass"));
    str_printf(b, "<section id=\"case%d\"><h2 class=\"%s\">", (int)num(c, "index"), pass ? "ok" : "bad");
    if (cJSON_IsString(id)) html_esc(b, id->valuestring);
    else str_printf(b, "#%d", (int)num(c, "index"));
    str_printf(b, " &mdash; %s</h2>\n<p>", cJSON_IsString(err) ? "error" : pass ? "pass" : "fail");
    if (cJSON_IsString(err)) {
        html_esc(b, err->valuestring);
        str_cat(b, "</p></section>\n");
        return;
    }
    char mx[32], mean[32], kl[32];
    cell(mx, sizeof mx, get(c, "max_abs_dlogprob"));
    cell(mean, sizeof mean, get(c, "mean_abs_dlogprob"));
    cell(kl, sizeof kl, get(c, "mean_kl"));
    str_printf(b, "%d tokens after a prompt of %d; agree %d, near ties %d; max |&#916;| %s, mean |&#916;| %s, mean KL %s",
               n, (int)num(c, "prompt_tokens"), (int)num(c, "agree"), (int)num(c, "near_ties"), mx, mean, kl);
    if (cJSON_IsObject(div)) {
        str_printf(b, "; first divergence at %d: theirs %d (", (int)num(div, "position"), (int)num(div, "theirs"));
        html_esc(b, cJSON_IsString(get(div, "their_text")) ? get(div, "their_text")->valuestring : "");
        str_printf(b, ") ours %d (", (int)num(div, "ours"));
        html_esc(b, cJSON_IsString(get(div, "our_text")) ? get(div, "our_text")->valuestring : "");
        str_printf(b, "), margin %.3g%s", num(div, "margin"), cJSON_IsTrue(get(div, "near_tie")) ? " (near tie)" : "");
    }
    str_cat(b, "</p>\n");
    if (cJSON_IsString(get(c, "note"))) str_cat(b, "<p class=\"note\">"), html_esc(b, get(c, "note")->valuestring), str_cat(b, "</p>\n");
    str_cat(b, "<div class=\"text\">");
    int i = 0;
    for (const cJSON *p = ps->child; p; p = p->next, i++) {
        int ok;
        double d = fabs(json_number(get(p, "dlogprob"), &ok));
        const int rank = (int)num(p, "rank");
        // colour: |dlogprob| on a scale up to the max threshold; without logprobs, red where we would not pick it
        double t = ok ? fmin(1.0, d / scale) : rank ? 1.0 : 0.0;
        const char *t1 = cJSON_IsString(get(p, "top1_text")) ? get(p, "top1_text")->valuestring : "";
        str_printf(b, "<span style=\"background:rgba(220,40,40,%.3f)\"%s title=\"", t > 0 ? 0.1 + 0.7 * t : 0.0,
                   i == (cJSON_IsObject(div) ? (int)num(div, "position") : -1) ? " class=\"first\"" : "");
        str_printf(b, "position %d: token %d, our logprob %.6g, rank %d; our top-1 %d (", i, (int)num(p, "token"),
                   num(p, "logprob"), rank, (int)num(p, "top1"));
        html_esc(b, t1);
        str_printf(b, ") margin %.4g", num(p, "margin"));
        if (ok) str_printf(b, "; their logprob %.6g, &#916; %.3g", num(p, "their_logprob"), num(p, "dlogprob"));
        str_cat(b, "\">");
        html_esc(b, cJSON_IsString(get(p, "text")) ? get(p, "text")->valuestring : "");
        str_cat(b, "</span>");
    }
    str_cat(b, "</div>\n");
    html_plot(b, ps, n, div);
    str_cat(b, "</section>\n");
}

char *score_html(const cJSON *report) {
    const cJSON *s = get(report, "summary"), *st = get(report, "settings"), *cases = get(report, "cases");
    Str b = {0};
    str_cat(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>glm4v score</title>\n<style>\n"
                "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}\n"
                "h2{font-size:16px;margin:28px 0 4px}h2.ok{color:#176c2c}h2.bad{color:#b01818}\n"
                "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left}\n"
                ".text{font:13px/1.7 ui-monospace,monospace;white-space:pre-wrap;border:1px solid #ccc;padding:8px;"
                "background:#fff}\n.text span{border-radius:2px}.text span.first{outline:2px solid #b01818}\n"
                ".note{color:#8a5a00}.plot{display:block;margin-top:8px;background:#fafafa;border:1px solid #ddd}\n"
                ".plot .axis{stroke:#999}.plot .div{stroke:#b01818;stroke-dasharray:4 3}\n"
                ".plot polyline{fill:none;stroke-width:1.5}.plot polyline.dlp{stroke:#1f5fbf}"
                ".plot polyline.margin{stroke:#e08a00}\n.plot text{font:11px sans-serif}.legend.dlp{fill:#1f5fbf}"
                ".legend.margin{fill:#e08a00}.tick{fill:#555}\n</style></head><body>\n<h1>glm4v score</h1>\n");
    str_printf(&b, "<p>%d cases: %d passed, %d failed (%d errors); %.0f tokens, %.0f agree with our greedy choice, "
                   "%.0f near ties.</p>\n", (int)num(s, "cases"), (int)num(s, "passed"), (int)num(s, "failed"),
               (int)num(s, "errors"), num(s, "tokens"), num(s, "agree"), num(s, "near_ties"));
    const cJSON *pr = get(st, "preset");
    str_cat(&b, "<p>preset ");
    html_esc(&b, cJSON_IsString(pr) ? pr->valuestring : "?");
    str_printf(&b, ", top-k %d, near tie &le; %.3g, max |&#916;| &le; %.3g, mean |&#916;| &le; %.3g, agreement &ge; %.3g</p>\n",
               (int)num(st, "top_k"), num(st, "near_tie"), num(st, "max_abs_dlogprob"), num(st, "mean_abs_dlogprob"),
               num(st, "min_agree"));
    // the cases, worst first, linking to their sections
    int n = cJSON_GetArraySize(cases), q = 0;
    const cJSON **row = malloc(((size_t)n + 1) * sizeof *row);
    if (!row) return glm_err("out of memory"), free(b.s), NULL;
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) row[q++] = c;
    qsort(row, (size_t)n, sizeof *row, cmp_worse);
    str_cat(&b, "<table><tr><th>case</th><th>tokens</th><th>agree</th><th>first divergence</th><th>max |&#916;|</th>"
                "<th>verdict</th></tr>\n");
    for (int i = 0; i < n; i++) {
        const cJSON *c = row[i], *id = get(c, "id"), *d = get(c, "first_divergence");
        char mx[32];
        cell(mx, sizeof mx, get(c, "max_abs_dlogprob"));
        str_printf(&b, "<tr><td><a href=\"#case%d\">", (int)num(c, "index"));
        if (cJSON_IsString(id)) html_esc(&b, id->valuestring);
        else str_printf(&b, "#%d", (int)num(c, "index"));
        str_printf(&b, "</a></td><td>%d</td><td>%d</td><td>", (int)num(c, "n_tokens"), (int)num(c, "agree"));
        if (cJSON_IsObject(d)) str_printf(&b, "%d%s", (int)num(d, "position"), cJSON_IsTrue(get(d, "near_tie")) ? " (near tie)" : "");
        else str_cat(&b, "&ndash;");
        str_printf(&b, "</td><td>%s</td><td>%s</td></tr>\n", mx,
                   cJSON_IsString(get(c, "error")) ? "error" : cJSON_IsTrue(get(c, "pass")) ? "pass" : "fail");
    }
    str_cat(&b, "</table>\n");
    free(row);
    const double scale = num(st, "max_abs_dlogprob") > 0 ? num(st, "max_abs_dlogprob") : 1;
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) html_case(&b, c, scale);
    str_cat(&b, "</body></html>\n");
    return str_take(&b);
}
