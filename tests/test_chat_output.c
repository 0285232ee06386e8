// SPDX-License-Identifier: MIT
// test_chat_output.c - chat_output.c against vLLM's GLM-4.5 parsers: every case of tests/chat_output/cases.json
// (written by tests/chat_output/make_cases.py, which mirrors vLLM's glm45 tool parser) must give the expected OpenAI
// message byte for byte (whole parse, chat_output_message, chat_output_message_json), and the streaming parser fed
// the same text in pieces (one piece, every split into two (400 of them for longer texts), 1-byte pieces, random
// 1-3 byte pieces) must send deltas
// that concatenate to the same message, never cutting a UTF-8 character.
#include "../chat_output.h"
#include "test_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// a growable string for the test
typedef struct {
    char *p;    // bytes (NUL-terminated)
    size_t n;   // used
    size_t cap; // allocated
} Str;

// appends n bytes
static void str_add(Str *s, const char *t, size_t n) {
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        if (!s->p) abort();
    }
    memcpy(s->p + s->n, t, n);
    s->n += n;
    s->p[s->n] = 0;
}

#define MAX_CALLS 16

// what a stream sent, concatenated
typedef struct {
    Str reasoning, content;     // concatenated text deltas
    Str name[MAX_CALLS];        // tool call names
    Str args[MAX_CALLS];        // concatenated argument fragments
    char id[MAX_CALLS][32];     // tool call ids
    int ncalls;                 // tool calls started
    int bad;                    // a delta broke a rule (order, index, UTF-8)
    char why[160];              // the first broken rule
} Got;

// 1 when s[0..n) is valid UTF-8 (each delta must be: no character cut at either end)
static int utf8_ok(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if ((u[i + k] & 0xC0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

// the delta callback: appends to Got and checks the delta rules
static int on_delta(void *user, const ChatDelta *d) {
    Got *g = user;
#define BAD(...) (g->bad ? 0 : (g->bad = 1, snprintf(g->why, sizeof g->why, __VA_ARGS__)))
    switch (d->kind) {
    case CHAT_DELTA_REASONING:
    case CHAT_DELTA_CONTENT:
        if (!d->len) BAD("empty text delta");
        if (!utf8_ok(d->text, d->len)) BAD("delta cuts a UTF-8 character");
        if (g->ncalls && d->kind == CHAT_DELTA_CONTENT) BAD("content after a tool call");
        str_add(d->kind == CHAT_DELTA_REASONING ? &g->reasoning : &g->content, d->text, d->len);
        break;
    case CHAT_DELTA_TOOL_CALL:
        if (d->index != g->ncalls || g->ncalls >= MAX_CALLS) {
            BAD("tool call index %d, expected %d", d->index, g->ncalls);
            break;
        }
        snprintf(g->id[g->ncalls], sizeof g->id[0], "%s", d->id ? d->id : "(null)");
        str_add(&g->name[g->ncalls], d->text, d->len);
        g->ncalls++;
        break;
    case CHAT_DELTA_TOOL_ARGS:
        if (d->index < 0 || d->index >= g->ncalls) {
            BAD("arguments for tool call %d of %d", d->index, g->ncalls);
            break;
        }
        str_add(&g->args[d->index], d->text, d->len);
        break;
    }
#undef BAD
    return 0;
}

// frees Got's strings
static void got_free(Got *g) {
    free(g->reasoning.p), free(g->content.p);
    for (int i = 0; i < MAX_CALLS; i++) free(g->name[i].p), free(g->args[i].p);
    memset(g, 0, sizeof *g);
}

// 1 when text s[0..n) (NULL/empty = null) equals the expected JSON string-or-null e
static int same_text(const char *s, size_t n, const cJSON *e) {
    if (cJSON_IsNull(e)) return n == 0;
    return cJSON_IsString(e) && strlen(e->valuestring) == n && (n == 0 || !memcmp(s, e->valuestring, n));
}

// compares a whole parse with the expected message; describes the first difference in why
static int check_whole(const ChatOutput *o, const cJSON *exp, char *why, size_t wn) {
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(exp, "tool_calls");
    if (!same_text(o->content, o->content ? o->content_len : 0, cJSON_GetObjectItemCaseSensitive(exp, "content")) ||
        (o->content && !o->content_len))
        return snprintf(why, wn, "content [%s]", o->content ? o->content : "null"), 0;
    if (!same_text(o->reasoning, o->reasoning ? o->reasoning_len : 0, cJSON_GetObjectItemCaseSensitive(exp, "reasoning_content")) ||
        (o->reasoning && !o->reasoning_len))
        return snprintf(why, wn, "reasoning [%s]", o->reasoning ? o->reasoning : "null"), 0;
    if (cJSON_GetArraySize(calls) != o->n_tool_calls) return snprintf(why, wn, "%d tool calls", o->n_tool_calls), 0;
    for (int i = 0; i < o->n_tool_calls; i++) {
        const cJSON *c = cJSON_GetArrayItem(calls, i), *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id"), *nm = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *ar = cJSON_GetObjectItemCaseSensitive(f, "arguments");
        if (strcmp(id->valuestring, o->tool_calls[i].id)) return snprintf(why, wn, "id %s", o->tool_calls[i].id), 0;
        if (strcmp(nm->valuestring, o->tool_calls[i].name)) return snprintf(why, wn, "name [%s]", o->tool_calls[i].name), 0;
        if (strcmp(ar->valuestring, o->tool_calls[i].arguments))
            return snprintf(why, wn, "arguments [%.100s] want [%.100s]", o->tool_calls[i].arguments, ar->valuestring), 0;
    }
    return 1;
}

// compares what a stream sent with the expected message
static int check_stream(const Got *g, const cJSON *exp, char *why, size_t wn) {
    if (g->bad) return snprintf(why, wn, "%s", g->why), 0;
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(exp, "tool_calls");
    if (!same_text(g->content.p, g->content.n, cJSON_GetObjectItemCaseSensitive(exp, "content")))
        return snprintf(why, wn, "content [%.100s]", g->content.p ? g->content.p : ""), 0;
    if (!same_text(g->reasoning.p, g->reasoning.n, cJSON_GetObjectItemCaseSensitive(exp, "reasoning_content")))
        return snprintf(why, wn, "reasoning [%.100s]", g->reasoning.p ? g->reasoning.p : ""), 0;
    if (cJSON_GetArraySize(calls) != g->ncalls) return snprintf(why, wn, "%d tool calls", g->ncalls), 0;
    for (int i = 0; i < g->ncalls; i++) {
        const cJSON *c = cJSON_GetArrayItem(calls, i), *f = cJSON_GetObjectItemCaseSensitive(c, "function");
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "id")->valuestring, g->id[i])) return snprintf(why, wn, "id %s", g->id[i]), 0;
        if (!same_text(g->name[i].p, g->name[i].n, cJSON_GetObjectItemCaseSensitive(f, "name")))
            return snprintf(why, wn, "name of call %d", i), 0;
        if (!same_text(g->args[i].p, g->args[i].n, cJSON_GetObjectItemCaseSensitive(f, "arguments")))
            return snprintf(why, wn, "arguments of call %d [%.100s]", i, g->args[i].p ? g->args[i].p : ""), 0;
    }
    return 1;
}

// feeds text in pieces of the given lengths (cycled; 0 = the rest) and checks the result; returns 1 when it matches
static int run_stream(const char *text, size_t n, const ChatOutputOptions *opt, const size_t *pieces, int npieces,
                      const cJSON *exp, int diverges, char *why, size_t wn) {
    Got g = {0};
    ChatOutputStream *s = chat_output_stream_new(opt, on_delta, &g);
    size_t i = 0;
    for (int k = 0; i < n; k = (k + 1) % npieces) {
        size_t m = pieces[k] ? pieces[k] : n - i;
        if (m > n - i) m = n - i;
        if (chat_output_stream_feed(s, text + i, m)) return snprintf(why, wn, "feed: %s", chat_output_error()), 0;
        i += m;
    }
    int ok = chat_output_stream_finish(s) == 0;
    if (!ok) snprintf(why, wn, "finish: %s", chat_output_error());
    if (ok && chat_output_stream_diverged(s) != diverges)
        ok = 0, snprintf(why, wn, "diverged %d, expected %d", chat_output_stream_diverged(s), diverges);
    if (ok && !diverges) ok = check_stream(&g, exp, why, wn);
    chat_output_stream_free(s);
    got_free(&g);
    return ok;
}

// reads a whole file (NULL on failure)
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    Str s = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) str_add(&s, buf, n);
    fclose(f);
    return s.p;
}

// every case of cases.json: whole parse, message builders, streams
static void test_cases(void) {
    char *json = slurp("tests/chat_output/cases.json");
    CHECK(json != NULL, "read tests/chat_output/cases.json");
    if (!json) return;
    cJSON *root = cJSON_Parse(json);
    free(json);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases"), *c;
    CHECK(cJSON_GetArraySize(cases) > 100, "cases.json holds %d cases", cJSON_GetArraySize(cases));
    uint32_t rng = 12345;
    int nwhole = 0, nstream = 0, total = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *text = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
        size_t n = strlen(text);
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(c, "tools"), *exp = cJSON_GetObjectItemCaseSensitive(c, "expected");
        ChatOutputOptions opt = {.tools = cJSON_IsArray(tools) ? tools : NULL,
                                 .prompt_ends_in_think = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "prompt_ends_in_think")),
                                 .no_tool_parse = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "no_tool_parse"))};
        int diverges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "stream_diverges"));
        char why[256] = "";
        total++;

        // whole parse and the two message builders
        ChatOutput o;
        int ok = chat_output_parse(text, n, &opt, &o) == 0;
        if (!ok) snprintf(why, sizeof why, "%s", chat_output_error());
        if (ok) ok = check_whole(&o, exp, why, sizeof why);
        if (ok) {
            cJSON *m = chat_output_message(&o);
            char *mj = chat_output_message_json(&o);
            cJSON *mp = mj ? cJSON_Parse(mj) : NULL;
            ok = m && mp && cJSON_Compare(m, exp, 1) && cJSON_Compare(mp, exp, 1);
            if (!ok) snprintf(why, sizeof why, "message JSON differs: %.200s", mj ? mj : "(null)");
            cJSON_Delete(m), cJSON_Delete(mp), free(mj);
        }
        chat_output_free(&o);
        if (ok) nwhole++;
        else CHECK(0, "whole parse %s: %s", name, why);

        // streams: one piece, every split into two, 1-byte pieces, random 1-3 byte pieces
        int sok = 1;
        size_t one[1] = {0};
        sok = run_stream(text, n, &opt, one, 1, exp, diverges, why, sizeof why);
        size_t stride = n > 400 ? n / 400 : 1; // every split of texts up to 400 bytes, 400 splits of longer ones
        for (size_t k = 1; sok && k < n; k += stride) {
            size_t two[2] = {k, 0};
            sok = run_stream(text, n, &opt, two, 2, exp, diverges, why, sizeof why);
            if (!sok) snprintf(why + strlen(why), sizeof why - strlen(why), " (split at %zu)", k);
        }
        size_t bytes1[1] = {1};
        if (sok) sok = run_stream(text, n, &opt, bytes1, 1, exp, diverges, why, sizeof why);
        for (int r = 0; sok && r < 4; r++) {
            size_t rnd[64];
            for (int k = 0; k < 64; k++) rng = rng * 1103515245u + 12345u, rnd[k] = 1 + (rng >> 16) % 3;
            sok = run_stream(text, n, &opt, rnd, 64, exp, diverges, why, sizeof why);
        }
        if (sok) nstream++;
        else CHECK(0, "stream %s: %s", name, why);
    }
    CHECK(nwhole == total, "whole parse equals vLLM's message for %d/%d cases", nwhole, total);
    CHECK(nstream == total, "streamed deltas concatenate to the message for %d/%d cases", nstream, total);
    cJSON_Delete(root);
}

// API edges: NULL text/options, tools not an array, a consumer that stops the stream
static int stop_at_first(void *user, const ChatDelta *d) { return ++*(int *)user >= 1; }

static void test_api(void) {
    ChatOutput o;
    CHECK(chat_output_parse(NULL, 0, NULL, &o) == 0 && !o.content && !o.reasoning && !o.n_tool_calls, "NULL text: null message");
    chat_output_free(&o);
    cJSON *obj = cJSON_CreateObject();
    ChatOutputOptions bad = {.tools = obj};
    CHECK(chat_output_parse("x", 1, &bad, &o) == -1 && strstr(chat_output_error(), "tools"), "tools not an array: -1 (%s)",
          chat_output_error());
    cJSON_Delete(obj);
    int calls = 0;
    ChatOutputStream *s = chat_output_stream_new(NULL, stop_at_first, &calls);
    CHECK(chat_output_stream_feed(s, "hello", 5) == -1 && calls == 1, "a consumer can stop the stream");
    chat_output_stream_free(s);
    // NUL bytes inside the text survive the JSON builder
    CHECK(chat_output_parse("a\0b", 3, NULL, &o) == 0 && o.content_len == 3, "NUL inside the content kept");
    char *mj = chat_output_message_json(&o);
    CHECK(mj && strstr(mj, "\"a\\u0000b\""), "NUL written as \\u0000: %s", mj ? mj : "(null)");
    free(mj);
    chat_output_free(&o);
    // the prompt helper; the flat tools form
    CHECK(chat_output_prompt_ends_in_think("<|assistant|>\n<think>\n", 22) == 1 &&
              chat_output_prompt_ends_in_think("<|assistant|>", 13) == 0 && chat_output_prompt_ends_in_think("x<think></think>\n", 17) == 0,
          "chat_output_prompt_ends_in_think");
    cJSON *flat = cJSON_Parse("[{\"type\":\"function\",\"name\":\"f\",\"parameters\":{\"properties\":{\"a\":{\"type\":\"string\"}}}}]");
    ChatOutputOptions fo = {.tools = flat};
    const char *fc = "<tool_call>f\n<arg_key>a</arg_key><arg_value> 1 </arg_value><arg_key>b</arg_key><arg_value> 1 </arg_value></tool_call>";
    CHECK(chat_output_parse(fc, strlen(fc), &fo, &o) == 0 && o.n_tool_calls == 1 &&
              !strcmp(o.tool_calls[0].arguments, "{\"a\": \" 1 \", \"b\": 1}"),
          "flat tools form: a string parameter stays raw (%s)", o.n_tool_calls ? o.tool_calls[0].arguments : "-");
    chat_output_free(&o);
    cJSON_Delete(flat);
    // invalid UTF-8 never crashes and streams every byte
    const char junk[] = "\xff\xfe<think>\xe4\xb8</think>\xc3<tool_call>\xf0\x9f\n<arg_key>\x80</arg_key><arg_value>\xc0</arg_value></tool_call>";
    CHECK(chat_output_parse(junk, sizeof junk - 1, NULL, &o) == 0, "invalid UTF-8 parses");
    chat_output_free(&o);
}

int main(void) {
    test_api();
    test_cases();
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return test_done();
}
