// SPDX-License-Identifier: MIT
// fuzz_chat_output.c - libFuzzer target: the model-output parser (chat_output.c) on arbitrary text: the whole parse,
// both message builders, and the streaming parser fed in pieces, which must send exactly the whole parse (unless it
// reports the one documented divergence). Input: byte 0 = flags (bit 0 prompt_ends_in_think, bit 1 no_tool_parse,
// bits 2-3 tools: none / a typical set / odd schemas / empty array), byte 1 = piece-size seed, then the text.
#include "../chat_output.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cJSON *fzco_tools[4];

// the tool sets of the flags
static void fzco_init(void) {
    if (fzco_tools[1]) return;
    fzco_tools[1] = cJSON_Parse(
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"properties\":{\"a\":{\"type\":\"string\"}}}}}]");
    fzco_tools[2] = cJSON_Parse(
        "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"properties\":null}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":{\"properties\":{\"a\":1}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}, 3, {\"function\":7}]");
    fzco_tools[3] = cJSON_Parse("[]");
}

// what the stream sent, concatenated
typedef struct {
    char *r, *c, *calls; // reasoning, content, tool calls as "name\x01args\x02..."
    size_t rn, cn, kn;   // their lengths
    int ncalls;          // tool calls started
} FzcoGot;

// appends to a malloc'd string
static void fzco_add(char **p, size_t *n, const char *t, size_t m) {
    char *q = realloc(*p, *n + m + 1);
    if (!q) abort();
    if (m) memcpy(q + *n, t, m);
    *n += m;
    q[*n] = 0;
    *p = q;
}

// the delta callback
static int fzco_delta(void *user, const ChatDelta *d) {
    FzcoGot *g = user;
    if (d->kind == CHAT_DELTA_REASONING) fzco_add(&g->r, &g->rn, d->text, d->len);
    else if (d->kind == CHAT_DELTA_CONTENT) fzco_add(&g->c, &g->cn, d->text, d->len);
    else if (d->kind == CHAT_DELTA_TOOL_CALL) {
        if (d->index != g->ncalls++) abort();
        fzco_add(&g->calls, &g->kn, "\x02", 1), fzco_add(&g->calls, &g->kn, d->text, d->len);
        fzco_add(&g->calls, &g->kn, "\x01", 1);
    } else {
        if (d->index != g->ncalls - 1) abort(); // arguments follow their call
        fzco_add(&g->calls, &g->kn, d->text, d->len);
    }
    return 0;
}

// 1 when s[0..n) equals the optional text t[0..tn)
static int fzco_same(const char *s, size_t n, const char *t, size_t tn) {
    return n == (t ? tn : 0) && (n == 0 || !memcmp(s, t, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fzco_init();
    if (size < 2) return 0;
    ChatOutputOptions opt = {.prompt_ends_in_think = data[0] & 1, .no_tool_parse = (data[0] >> 1) & 1,
                             .tools = fzco_tools[(data[0] >> 2) & 3]};
    uint32_t seed = data[1];
    const char *text = (const char *)data + 2;
    size_t n = size - 2;

    ChatOutput o;
    if (chat_output_parse(text, n, &opt, &o)) return 0; // out of memory only
    cJSON *m = chat_output_message(&o);
    char *mj = chat_output_message_json(&o);
    cJSON *mp = mj ? cJSON_Parse(mj) : NULL;
    if (mj && !mp) abort(); // our JSON must parse
    cJSON_Delete(m), cJSON_Delete(mp), free(mj);

    // the stream, in pieces of 1..8 bytes from the seed, then once byte by byte
    for (int pass = 0; pass < 2; pass++) {
        FzcoGot g = {0};
        ChatOutputStream *s = chat_output_stream_new(&opt, fzco_delta, &g);
        if (!s) abort();
        for (size_t i = 0; i < n;) {
            seed = seed * 1103515245u + 12345u;
            size_t k = pass ? 1 : 1 + (seed >> 16) % 8;
            if (k > n - i) k = n - i;
            if (chat_output_stream_feed(s, text + i, k)) abort();
            i += k;
        }
        if (chat_output_stream_finish(s)) abort();
        if (!chat_output_stream_diverged(s)) {
            char *want = NULL;
            size_t wn = 0;
            for (int i = 0; i < o.n_tool_calls; i++) {
                fzco_add(&want, &wn, "\x02", 1), fzco_add(&want, &wn, o.tool_calls[i].name, strlen(o.tool_calls[i].name));
                fzco_add(&want, &wn, "\x01", 1), fzco_add(&want, &wn, o.tool_calls[i].arguments, strlen(o.tool_calls[i].arguments));
            }
            if (!fzco_same(g.r, g.rn, o.reasoning, o.reasoning_len) || !fzco_same(g.c, g.cn, o.content, o.content_len) ||
                !fzco_same(g.calls ? g.calls : "", g.kn, want, wn) || g.ncalls != o.n_tool_calls)
                abort(); // the stream must send the whole parse
            free(want);
        }
        chat_output_stream_free(s);
        free(g.r), free(g.c), free(g.calls);
    }
    chat_output_free(&o);
    return 0;
}
