// SPDX-License-Identifier: MIT
// openai.c - OpenAI-style requests: /v1/chat/completions and /v1/completions bodies checked field by field (a known
// field with a bad value is an error naming it; unknown fields are ignored, as OpenAI clients send many), media parts
// read by messages.c (data: URIs, local paths under --allowed-media-path, http(s) refused, file parts with PDFs) and
// counted against the request's limits, documents rendered, the media loaded into the engine, and the prompt rendered.
// Mirrors vLLM's protocol.py / chat_utils.py.
#include "openai.h"

#include "messages.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// fill err and return -1
static int fail(OaError *err, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(OaError *err, const char *param, const char *fmt, ...) {
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

// ---------------------------------------------------------------------------- small codecs

// the whole body is UTF-8 (RFC 8259): checked after the fields, whose own checks name them, for the strings passed on
// unread (tools, chat_template_kwargs, tool calls of earlier turns: rendered into the prompt) and the ignored ones
static int body_utf8(const char *body, size_t len, OaError *err) {
    const size_t at = utf8_invalid_at(body, len);
    return at == len ? 0 : fail(err, "", "the body is not valid UTF-8 (at byte %zu)", at);
}


// 1 when the JSON text has a \u0000 escape (cJSON would cut the string there: refused, never truncated silently)
static int has_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\\') {
            if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
            i++; // the escaped character
        }
    return 0;
}

// ---------------------------------------------------------------------------- field readers

// an absent or null field reads as "not given"
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    return f && !cJSON_IsNull(f) ? f : NULL;
}

// a number field in [lo, hi]; integral when want_int. 1 = read, 0 = absent, -1 = bad (err)
static int get_num(const cJSON *o, const char *name, double lo, double hi, int want_int, double *v, OaError *err) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble))
        return fail(err, name, "'%s' must be a number", name);
    double x = f->valuedouble;
    if (want_int && x != floor(x)) return fail(err, name, "'%s' must be an integer", name);
    if (x < lo || x > hi) return fail(err, name, "'%s' must be in [%g, %g] (got %g)", name, lo, hi, x);
    *v = x;
    return 1;
}

// a boolean field: 1 = read, 0 = absent, -1 = bad (err)
static int get_bool(const cJSON *o, const char *name, int *v, OaError *err) {
    const cJSON *f = field(o, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) return fail(err, name, "'%s' must be true or false", name);
    *v = cJSON_IsTrue(f);
    return 1;
}

// a string copy checked for UTF-8; NULL + err
static char *dup_text(const char *s, const char *param, OaError *err) {
    size_t n = strlen(s);
    if (!utf8_valid(s, n)) {
        fail(err, param, "%s is not valid UTF-8", param);
        return NULL;
    }
    char *d = strdup(s);
    if (!d) fail(err, param, "out of memory");
    return d;
}

// the sampling fields shared by both endpoints
static int parse_sampling(ChatRequest *r, const cJSON *root, OaError *err) {
    double v;
    int rc;
    r->max_tokens = -1, r->temperature = -1, r->top_p = -1, r->top_k = -1, r->repetition_penalty = -1;
    const char *mt[2] = {"max_completion_tokens", "max_tokens"};
    for (int i = 0; i < 2; i++) {
        if ((rc = get_num(root, mt[i], 1, 1 << 30, 1, &v, err)) < 0) return -1;
        if (rc && r->max_tokens < 0) r->max_tokens = (int)v;
    }
    if ((rc = get_num(root, "temperature", 0, 100, 0, &v, err)) < 0) return -1;
    if (rc) r->temperature = (float)v;
    if ((rc = get_num(root, "top_p", 0, 1, 0, &v, err)) < 0) return -1;
    if (rc) {
        if (v <= 0) return fail(err, "top_p", "'top_p' must be in (0, 1]");
        r->top_p = (float)v;
    }
    if ((rc = get_num(root, "top_k", -1, 1 << 30, 1, &v, err)) < 0) return -1;
    if (rc) r->top_k = v < 0 ? 0 : (int)v; // vLLM: -1 = all tokens
    if ((rc = get_num(root, "repetition_penalty", 1e-3, 100, 0, &v, err)) < 0) return -1;
    if (rc) r->repetition_penalty = (float)v;
    if ((rc = get_num(root, "seed", -9.2e18, 1.8e19, 1, &v, err)) < 0) return -1;
    if (rc) r->seed = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v, r->has_seed = 1;
    if ((rc = get_num(root, "n", 1, 1, 1, &v, err)) < 0) return fail(err, "n", "'n' must be 1 (one choice per request)");
    if (get_bool(root, "stream", &r->stream, err) < 0) return -1;
    if (get_bool(root, "ignore_eos", &r->ignore_eos, err) < 0) return -1;
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return fail(err, "stream_options", "'stream_options' must be an object");
        if (get_bool(so, "include_usage", &r->include_usage, err) < 0)
            return fail(err, "stream_options.include_usage", "'stream_options.include_usage' must be true or false");
    }
    const cJSON *lb = field(root, "logit_bias"); // {"token id": bias}
    if (lb) {
        if (!cJSON_IsObject(lb)) return fail(err, "logit_bias", "'logit_bias' must be an object of token id -> bias");
        const int n = cJSON_GetArraySize(lb);
        if (n > 1024) return fail(err, "logit_bias", "at most 1024 entries in 'logit_bias'");
        r->bias_ids = malloc((size_t)(n + 1) * sizeof(int)), r->bias_vals = malloc((size_t)(n + 1) * sizeof(float));
        if (!r->bias_ids || !r->bias_vals) return fail(err, "logit_bias", "out of memory");
        for (const cJSON *b = lb->child; b; b = b->next) {
            char *end;
            errno = 0;
            long id = strtol(b->string, &end, 10);
            if (errno || end == b->string || *end || id < 0 || id > INT_MAX || !cJSON_IsNumber(b) ||
                !(b->valuedouble >= -100 && b->valuedouble <= 100))
                return fail(err, "logit_bias", "'logit_bias' maps token ids (as strings) to numbers in [-100, 100]");
            r->bias_ids[r->nbias] = (int)id, r->bias_vals[r->nbias++] = (float)b->valuedouble;
        }
    }
    const cJSON *st = field(root, "stop");
    if (st) {
        const cJSON *it;
        if (cJSON_IsString(st)) it = st;
        else if (cJSON_IsArray(st)) it = st->child;
        else return fail(err, "stop", "'stop' must be a string or a list of strings");
        for (; it; it = cJSON_IsArray(st) ? it->next : NULL) {
            if (!cJSON_IsString(it)) return fail(err, "stop", "'stop' must be a string or a list of strings");
            size_t n = strlen(it->valuestring);
            if (!n) continue;
            if (r->nstop == OA_MAX_STOP) return fail(err, "stop", "at most %d stop strings", OA_MAX_STOP);
            if (n > OA_MAX_STOP_LEN) return fail(err, "stop", "a stop string is longer than %d bytes", OA_MAX_STOP_LEN);
            if (!(r->stop[r->nstop] = dup_text(it->valuestring, "stop", err))) return -1;
            r->nstop++;
        }
    }
    return 0;
}

// ---------------------------------------------------------------------------- media parts

// a media part of a message (image_url, video_url, file, HF's image / video items): read by messages.c's one reader
// (data: URIs, local paths under --allowed-media-path, documents), counted against the request's limits
static int parse_media_part(ChatRequest *r, const cJSON *part, const char *param, int mi, int pi, const OaLimits *lim,
                            OaError *err) {
    MediaRef md;
    const MediaPolicy pol = {.allowed_dir = lim->media_dir, .allow_local = lim->media_dir != NULL};
    int nimg = 0, nvid = 0;
    for (int i = 0; i < r->nmedia; i++) nimg += r->media[i].kind == MEDIA_IMAGE, nvid += r->media[i].kind == MEDIA_VIDEO;
    const int kind = media_part_kind(part);
    if (kind == MEDIA_IMAGE && nimg >= lim->max_images) return fail(err, param, "at most %d images in one request", lim->max_images);
    if (kind == MEDIA_VIDEO && nvid >= lim->max_videos) return fail(err, param, "at most %d videos in one request", lim->max_videos);
    if (media_ref_parse(&md, part, &pol)) {
        media_ref_free(&md);
        return fail(err, param, "%s: %s", param, glm_errmsg);
    }
    snprintf(md.param, sizeof md.param, "%s", param);
    md.msg = mi, md.part = pi;
    MediaRef *nm = realloc(r->media, (size_t)(r->nmedia + 1) * sizeof *nm);
    if (!nm) {
        media_ref_free(&md);
        return fail(err, param, "out of memory");
    }
    r->media = nm;
    r->media[r->nmedia++] = md;
    return 0;
}

// append s to a growing string
static int append(char **dst, size_t *n, const char *s) {
    size_t k = strlen(s);
    char *d = realloc(*dst, *n + k + 1);
    if (!d) return -1;
    memcpy(d + *n, s, k + 1);
    *dst = d, *n += k;
    return 0;
}

// one message's content: a string, or a list of text / image_url / video_url parts
static int parse_content(ChatRequest *r, OaMessage *msg, const cJSON *c, int mi, const OaLimits *lim, OaError *err) {
    char param[96];
    size_t n = 0;
    if (!(msg->content = strdup(""))) return fail(err, "messages", "out of memory");
    msg->media0 = r->nmedia;
    if (!c) return 0;
    snprintf(param, sizeof param, "messages[%d].content", mi);
    if (cJSON_IsString(c)) {
        free(msg->content);
        return (msg->content = dup_text(c->valuestring, param, err)) ? 0 : -1;
    }
    if (!cJSON_IsArray(c)) return fail(err, param, "%s must be a string or a list of parts", param);
    int pi = 0;
    for (const cJSON *p = c->child; p; p = p->next, pi++) {
        snprintf(param, sizeof param, "messages[%d].content[%d]", mi, pi);
        const cJSON *type = field(p, "type");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type))
            return fail(err, param, "%s must be an object with a 'type'", param);
        const char *t = type->valuestring;
        if (!strcmp(t, "text")) {
            const cJSON *tx = field(p, "text");
            if (!cJSON_IsString(tx)) return fail(err, param, "%s.text must be a string", param);
            if (!utf8_valid(tx->valuestring, strlen(tx->valuestring)))
                return fail(err, param, "%s.text is not valid UTF-8", param);
            if (append(&msg->content, &n, tx->valuestring)) return fail(err, param, "out of memory");
        } else if (media_part_kind(p) >= 0) {
            char up[128];
            snprintf(up, sizeof up, "%s.%s", param, t);
            if (parse_media_part(r, p, up, mi, pi, lim, err)) return -1;
            msg->nmedia++;
        } else
            return fail(err, param, "%s: unsupported part type '%.40s' (text, image_url, video_url, file)", param, t);
    }
    return 0;
}

// ---------------------------------------------------------------------------- requests

cJSON *openai_parse_body(const char *body, size_t len, OaError *err) {
    if (has_nul_escape(body, len)) {
        fail(err, "", "a JSON string contains \\u0000 (NUL), which is refused");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
    if (!root) {
        fail(err, "", "the body is not valid JSON (at byte %zu)", at);
        return NULL;
    }
    while (at < len && (body[at] == ' ' || body[at] == '\t' || body[at] == '\n' || body[at] == '\r')) at++;
    if (at < len) { // one JSON value, only whitespace after it (RFC 8259): "{...}garbage" or "{...}{...}" is refused
        fail(err, "", "the body is not valid JSON: data after its end (at byte %zu)", at);
        cJSON_Delete(root);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        fail(err, "", "the body must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

// logprobs (chat: bool + top_logprobs; completions: an integer 0..5 of alternatives)
static int parse_logprobs(ChatRequest *r, const cJSON *root, OaError *err) {
    double v;
    int rc;
    if (r->chat) {
        if (get_bool(root, "logprobs", &r->logprobs, err) < 0) return -1;
        if ((rc = get_num(root, "top_logprobs", 0, OA_MAX_TOP_LOGPROBS, 1, &v, err)) < 0) return -1;
        if (rc) r->top_logprobs = (int)v;
        if (r->top_logprobs && !r->logprobs) // OpenAI and vLLM refuse it rather than answer without the alternatives
            return fail(err, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
        return 0;
    }
    if ((rc = get_num(root, "logprobs", 0, OA_MAX_TOP_LOGPROBS, 1, &v, err)) < 0) return -1;
    if (rc) r->logprobs = 1, r->top_logprobs = (int)v;
    return 0;
}

int openai_parse_chat(ChatRequest *r, const char *body, size_t len, const OaLimits *lim, OaError *err) {
    memset(r, 0, sizeof *r);
    r->chat = 1, r->think = 1;
    cJSON *root = openai_parse_body(body, len, err);
    if (!root) return -1;
    int rc = -1;
    if (parse_sampling(r, root, err) || parse_logprobs(r, root, err)) goto done;
    const cJSON *kw = field(root, "chat_template_kwargs");
    if (kw) {
        if (!cJSON_IsObject(kw)) {
            fail(err, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
            goto done;
        }
        if (!(r->kwargs = cJSON_Duplicate(kw, 1))) {
            fail(err, "chat_template_kwargs", "out of memory");
            goto done;
        }
        if (get_bool(kw, "enable_thinking", &r->think, err) < 0) {
            fail(err, "chat_template_kwargs.enable_thinking", "'chat_template_kwargs.enable_thinking' must be true or false");
            goto done;
        }
    }
    const cJSON *tools = field(root, "tools");
    if (tools) {
        if (!cJSON_IsArray(tools)) {
            fail(err, "tools", "'tools' must be a list");
            goto done;
        }
        int ti = 0;
        for (const cJSON *t = tools->child; t; t = t->next, ti++) {
            const cJSON *fn = field(t, "function");
            if (!cJSON_IsObject(t) || !cJSON_IsObject(fn) || !cJSON_IsString(field(fn, "name"))) {
                char tp[48];
                snprintf(tp, sizeof tp, "tools[%d]", ti);
                fail(err, tp, "%s must be {\"type\": \"function\", \"function\": {\"name\": ...}}", tp);
                goto done;
            }
        }
        if (!(r->tools_json = cJSON_Duplicate(tools, 1))) {
            fail(err, "tools", "out of memory");
            goto done;
        }
    }
    const cJSON *tc = field(root, "tool_choice"); // "auto" | "none" | "required" | {"type":"function","function":{"name"}}
    if (tc) {
        const char *name = NULL;
        if (cJSON_IsString(tc) && (!strcmp(tc->valuestring, "auto") || !strcmp(tc->valuestring, "none") ||
                                   !strcmp(tc->valuestring, "required")))
            name = tc->valuestring;
        else if (cJSON_IsObject(tc) && cJSON_IsObject(field(tc, "function")) &&
                 cJSON_IsString(field(field(tc, "function"), "name")))
            name = field(field(tc, "function"), "name")->valuestring;
        if (!name) {
            fail(err, "tool_choice", "'tool_choice' must be \"auto\", \"none\", \"required\" or a named function");
            goto done;
        }
        if (!(r->tool_choice = strdup(name))) {
            fail(err, "tool_choice", "out of memory");
            goto done;
        }
        // a call that is required, or of a named function, needs that function among the tools (OpenAI, vLLM)
        int known = cJSON_IsString(tc) && strcmp(name, "required");
        for (const cJSON *t = r->tools_json ? r->tools_json->child : NULL; t && !known; t = t->next)
            known = !cJSON_IsString(tc) ? !strcmp(field(field(t, "function"), "name")->valuestring, name) : 1;
        if (!known) {
            if (r->tools_json && r->tools_json->child)
                fail(err, "tool_choice", "'tool_choice' names the function '%.100s', which is not in 'tools'", name);
            else
                fail(err, "tool_choice", "'tool_choice' %s%.100s%s needs 'tools'", cJSON_IsString(tc) ? "\"" : "function '",
                     name, cJSON_IsString(tc) ? "\"" : "'");
            goto done;
        }
    }
    const cJSON *th = field(root, "thinking"); // Zhipu's API: {"type": "enabled" | "disabled"}
    if (th && cJSON_IsObject(th) && cJSON_IsString(field(th, "type")))
        r->think = strcmp(field(th, "type")->valuestring, "disabled") != 0;
    const cJSON *ms = field(root, "messages");
    if (!cJSON_IsArray(ms) || !ms->child) {
        fail(err, "messages", "'messages' must be a non-empty list");
        goto done;
    }
    int nm = cJSON_GetArraySize(ms);
    if (!(r->msgs = calloc((size_t)nm, sizeof *r->msgs)) || !(r->messages = cJSON_Duplicate(ms, 1))) {
        fail(err, "messages", "out of memory");
        goto done;
    }
    int mi = 0;
    for (const cJSON *m = ms->child; m; m = m->next, mi++) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d]", mi);
        const cJSON *role = field(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            fail(err, param, "%s must be an object with a 'role'", param);
            goto done;
        }
        OaMessage *msg = &r->msgs[r->nmsgs++];
        const char *ro = role->valuestring;
        if (!strcmp(ro, "system") || !strcmp(ro, "developer")) msg->role = OA_SYSTEM;
        else if (!strcmp(ro, "user")) msg->role = OA_USER;
        else if (!strcmp(ro, "assistant")) msg->role = OA_ASSISTANT;
        else if (!strcmp(ro, "tool")) msg->role = OA_TOOL;
        else {
            fail(err, param, "%s.role '%.40s' is not system, user, assistant or tool", param, ro);
            goto done;
        }
        if (parse_content(r, msg, field(m, "content"), mi, lim, err)) goto done;
        if (msg->nmedia && msg->role != OA_USER) {
            fail(err, param, "%s: images and videos are accepted in user messages only", param);
            goto done;
        }
        const char *rk[2] = {"reasoning_content", "reasoning"};
        for (int k = 0; k < 2 && msg->role == OA_ASSISTANT && !msg->reasoning; k++) {
            const cJSON *rs = field(m, rk[k]);
            if (!rs) continue;
            char rp[96];
            snprintf(rp, sizeof rp, "%s.%s", param, rk[k]);
            if (!cJSON_IsString(rs)) {
                fail(err, rp, "%s must be a string", rp);
                goto done;
            }
            if (!(msg->reasoning = dup_text(rs->valuestring, rp, err))) goto done;
        }
    }
    if (body_utf8(body, len, err)) goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) openai_request_free(r);
    return rc;
}

int openai_parse_completion(ChatRequest *r, const char *body, size_t len, OaError *err) {
    memset(r, 0, sizeof *r);
    r->chat = 0, r->think = 1;
    cJSON *root = openai_parse_body(body, len, err);
    if (!root) return -1;
    int rc = -1;
    if (parse_sampling(r, root, err) || parse_logprobs(r, root, err)) goto done;
    if (r->max_tokens < 0) r->max_tokens = 16; // OpenAI's default for completions
    // fields that would change the answer and are not implemented: refused as n > 1 is, never silently ignored
    // (an evaluation harness sending echo: true would otherwise score the wrong text)
    int echo = 0;
    double bo;
    const cJSON *sfx = field(root, "suffix");
    if (get_bool(root, "echo", &echo, err) < 0) goto done;
    if (echo) {
        fail(err, "echo", "'echo' is not supported (the answer never repeats the prompt)");
        goto done;
    }
    if (get_num(root, "best_of", 1, 1, 1, &bo, err) < 0) {
        fail(err, "best_of", "'best_of' must be 1 (one choice per request)");
        goto done;
    }
    if (sfx && !(cJSON_IsString(sfx) && !sfx->valuestring[0])) {
        fail(err, "suffix", "'suffix' is not supported (no fill-in-the-middle)");
        goto done;
    }
    const cJSON *p = field(root, "prompt");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && !cJSON_IsNumber(p->child)) p = p->child;
    if (cJSON_IsArray(p) && p->child && cJSON_IsNumber(p->child)) { // token ids (llama-server, vLLM)
        const int n = cJSON_GetArraySize(p);
        if (!(r->prompt_ids = malloc((size_t)n * sizeof(int)))) {
            fail(err, "prompt", "out of memory");
            goto done;
        }
        for (const cJSON *t = p->child; t; t = t->next) {
            if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 0 || t->valuedouble > INT_MAX) {
                fail(err, "prompt", "prompt[%d] is not a token id", r->nprompt_ids);
                goto done;
            }
            r->prompt_ids[r->nprompt_ids++] = (int)t->valuedouble;
        }
        rc = body_utf8(body, len, err);
        goto done;
    }
    if (!cJSON_IsString(p)) {
        fail(err, "prompt", "'prompt' must be a string, a list of one string, or a list of token ids");
        goto done;
    }
    if (!p->valuestring[0]) {
        fail(err, "prompt", "'prompt' is empty");
        goto done;
    }
    if (!(r->prompt = dup_text(p->valuestring, "prompt", err)) || body_utf8(body, len, err)) goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) openai_request_free(r);
    return rc;
}

void openai_request_free(ChatRequest *r) {
    for (int i = 0; i < r->nmsgs; i++) free(r->msgs[i].content), free(r->msgs[i].reasoning);
    for (int i = 0; i < r->nmedia; i++) media_ref_free(&r->media[i]);
    for (int i = 0; i < r->nstop; i++) free(r->stop[i]);
    free(r->msgs), free(r->media), free(r->prompt), free(r->prompt_ids), free(r->bias_ids), free(r->bias_vals), free(r->tool_choice);
    cJSON_Delete(r->messages), cJSON_Delete(r->tools_json), cJSON_Delete(r->kwargs);
    memset(r, 0, sizeof *r);
}

// ---------------------------------------------------------------------------- media, prompt

int openai_render_documents(ChatRequest *r, const MediaPolicy *pol, const ProcConfig *pc, int64_t max_tokens,
                            OaError *err) {
    int64_t total = 0;
    for (int i = 0; i < r->nmedia; i++) {
        MediaRef *md = &r->media[i];
        if (!md->is_pdf) continue;
        if (media_ref_render(md, pol, pc)) return fail(err, md->param, "%s: %s", md->param, glm_errmsg);
        int64_t t = pdf_cost_line(&md->doc, md->name, pc, NULL, 0);
        if (t < 0) return fail(err, md->param, "%s: %s: a page cannot be processed", md->param, md->name);
        total += t;
        if (max_tokens > 0 && total > max_tokens)
            return fail(err, md->param, "%s: %s: %d page%s take %lld visual tokens%s, above the budget of %lld per "
                        "request (--max-visual-tokens): send fewer pages (\"pages\": \"1-3\" in the file part) or a "
                        "lower \"dpi\"", md->param, md->name, md->doc.n, md->doc.n == 1 ? "" : "s", (long long)t,
                        total > t ? " (with the request's other documents: more)" : "", (long long)max_tokens);
    }
    return 0;
}

int64_t openai_visual_tokens(const Engine *e, const Media *m) {
    const int m2 = e->c->vision.spatial_merge_size * e->c->vision.spatial_merge_size;
    int64_t n = 0;
    for (int k = 0; k < 2; k++) {
        const PixelBatch *pb = k ? &m->vid : &m->img;
        for (int i = 0; i < pb->nitems; i++) n += (int64_t)pb->grid[i][0] * pb->grid[i][1] * pb->grid[i][2] / m2;
    }
    return n;
}

int openai_load_media(const Engine *e, ChatRequest *r, Media *m, const MediaOptions *o, const MediaPolicy *pol,
                      int64_t max_visual, int64_t max_prompt, OaError *err) {
    int has_doc = 0;
    for (int i = 0; i < r->nmedia; i++) has_doc |= r->media[i].is_pdf;
    const char *fewer = has_doc ? ": send fewer pages (\"pages\": \"1-3\" in the file part)" : "";
    for (int i = 0; i < r->nmedia; i++) {
        MediaRef *md = &r->media[i];
        if (media_ref_load(m, e, md, o, pol) < 0) return fail(err, md->param, "%s: %s", md->param, glm_errmsg);
        if (md->is_pdf) { // preprocessed: the pages' pixels and the document's bytes are no longer needed (sizes kept)
            for (int k = 0; k < md->doc.n; k++) free(md->doc.pages[k].img.rgb), md->doc.pages[k].img.rgb = NULL;
            free(md->data), md->data = NULL;
        }
        // a request already over its limits stops here, not after decoding the rest of its (maybe 64 large) images
        const int64_t vis = openai_visual_tokens(e, m);
        if (max_visual > 0 && vis > max_visual)
            return fail(err, md->param, "%s: the request's images and videos up to this one take %lld visual tokens, "
                        "above the budget of %lld per request (--max-visual-tokens)%s", md->param, (long long)vis,
                        (long long)max_visual, fewer);
        if (max_prompt > 0 && vis > max_prompt)
            return fail(err, md->param, "%s: the request's images and videos up to this one take %lld visual tokens: "
                        "the prompt does not fit the context of %lld tokens per request (--ctx-size) with room for an "
                        "answer%s", md->param, (long long)vis, (long long)max_prompt + 1, fewer);
    }
    // each document part becomes its pages' image parts, the last part first (earlier positions stay)
    for (int i = r->nmedia - 1; i >= 0 && r->chat; i--)
        if (messages_expand_ref(r->messages, &r->media[i])) return fail(err, r->media[i].param, "%s", glm_errmsg);
    return 0;
}

int openai_render(const Engine *e, const ChatRequest *r, int think, char **text) {
    *text = NULL;
    if (!r->chat) return (*text = strdup(r->prompt ? r->prompt : "")) ? 0 : glm_err("out of memory");
    // the checkpoint's chat template, as the CLI renders it: chat_template_kwargs, then enable_thinking when off
    cJSON *kw = r->kwargs ? cJSON_Duplicate(r->kwargs, 1) : cJSON_CreateObject();
    if (!kw) return glm_err("out of memory");
    if (!think && !cJSON_GetObjectItemCaseSensitive(kw, "enable_thinking")) cJSON_AddFalseToObject(kw, "enable_thinking");
    size_t len;
    *text = chat_template_render(&e->tmpl, r->messages, r->tools_json, 1, kw, &len);
    cJSON_Delete(kw);
    return *text ? 0 : -1;
}

