// SPDX-License-Identifier: MIT
// fuzz_jinja.c - libFuzzer target: the Jinja interpreter (jinja.c) with arbitrary templates. Input: the template
// text, optionally followed by a NUL byte and a JSON context (else a small fixed chat context is used). Parsing and
// rendering must never crash, hang or exhaust memory: they either render or fail with one error line.
#include "../jinja.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char fzj_ctx[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": [{\"type\": "
    "\"image\"}, {\"type\": \"text\", \"text\": \"hi \\u00e9\"}]}, {\"role\": \"assistant\", \"content\": "
    "\"<think>r</think>a\", \"tool_calls\": [{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": [1.5, "
    "null, true]}}}]}, {\"role\": \"tool\", \"content\": \"42\"}], \"tools\": [{\"type\": \"function\", \"function\": "
    "{\"name\": \"f\", \"parameters\": {}}}], \"add_generation_prompt\": true, \"enable_thinking\": false, "
    "\"bos_token\": \"<s>\", \"n\": 3, \"s\": \"Hello\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    const char *ctx = fzj_ctx;
    size_t clen = sizeof fzj_ctx - 1;
    if (nul) ctx = (const char *)nul + 1, clen = size - tlen - 1;
    char err[600];
    JinjaTemplate *t = jinja_parse(src, tlen, err, sizeof err);
    if (!t) {
        if (!err[0] || strchr(err, '\n')) abort(); // one error line
        return 0;
    }
    size_t n;
    char *out = jinja_render_json(t, ctx, clen, &n, err, sizeof err);
    if (out) {
        if (strlen(out) > n) abort(); // out_len is the length (the output may hold NUL bytes from \x00 escapes)
        free(out);
    } else if (!err[0] || strchr(err, '\n')) abort();
    jinja_free(t);
    return 0;
}
