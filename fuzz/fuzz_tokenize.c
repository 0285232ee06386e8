// SPDX-License-Identifier: MIT
// fuzz_tokenize.c - libFuzzer target: the tiny checkpoint's tokenizer.json (GLM-4.5V's pre-tokenizer and added
// tokens) encoding arbitrary bytes (invalid UTF-8, special-token text), decoding the result, and decoding the input
// read as arbitrary token ids (out-of-range ones included) in one piece and through the stream decoder; the CLI's
// prompt text (prompt_text_from_bytes, NULs carried as C0 80) must give the same ids as the bytes themselves.
#include "../tokenizer.h"

#include <stdlib.h>
#include <string.h>

static Tokenizer *fz_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *p = getenv("GLM4V_FUZZ_TOKENIZER");
    fz_tok = tokenizer_load(p ? p : "weights/tiny-glm4v-moe/tokenizer.json");
    if (!fz_tok) {
        fprintf(stderr, "fuzz_tokenize: %s (run from the repository root)\n", glm_errmsg);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fz_tok) LLVMFuzzerInitialize(NULL, NULL);
    const Tokenizer *t = fz_tok;
    const int V = tokenizer_vocab_size(t);
    int *ids = NULL;
    int n = tokenizer_encode(t, (const char *)data, size, &ids);
    if (n >= 0) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V) abort();
        char *s = tokenizer_decode(t, ids, n, 0);
        free(s);
        s = tokenizer_decode(t, ids, n, 1);
        free(s);
        // the CLI's way (prompt_text_from_bytes: U+FFFD for invalid UTF-8, NULs as C0 80, then a C string) gives the
        // same ids as encoding the bytes with their length, for every input without a C0 80 pair of its own
        if (!memmem(data, size, "\xC0\x80", 2)) {
            char *text = prompt_text_from_bytes((const char *)data, size);
            int *ids2 = NULL, n2 = tokenizer_encode(t, text, strlen(text), &ids2);
            if (n2 != n || memcmp(ids, ids2, sizeof(int) * (size_t)n) != 0) abort();
            free(ids2);
            free(text);
        }
    }
    free(ids);
    // the bytes as little-endian 16-bit ids shifted to cover [-2, 65533]: unknown ids must be skipped, not crash
    int m = (int)(size / 2);
    int *raw = malloc(sizeof(int) * (size_t)(m ? m : 1));
    if (!raw) return 0;
    for (int i = 0; i < m; i++) raw[i] = (int)(data[2 * i] | data[2 * i + 1] << 8) - 2;
    char *s = tokenizer_decode(t, raw, m, size & 1);
    free(s);
    StreamDecoder sd;
    stream_init(&sd, t, size & 1);
    char out[4096];
    for (int i = 0; i < m; i++) stream_feed(&sd, raw[i], out, sizeof out);
    stream_flush(&sd, out, sizeof out);
    free(raw);
    return 0;
}
