// SPDX-License-Identifier: MIT
// fuzz_tokenizer.c - libFuzzer target: tokenizer_load_json on arbitrary bytes (vocab, merges, added tokens,
// pre-tokenizer regexes, decoder); a tokenizer it accepts must then encode and decode without fault.
#include "../tokenizer.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tokenizer *t = tokenizer_load_json((const char *)data, size, "tokenizer.json");
    if (!t) return 0;
    static const char *texts[] = {"", "Hello world! 123 ", "<|user|>\nhi<|assistant|><think></think>",
                                  "\xe4\xbd\xa0\xe5\xa5\xbd  \t\n\n x", "\xff\xfe bad \xc3", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        int *ids = NULL;
        int n = tokenizer_encode(t, texts[k], strlen(texts[k]), &ids);
        if (n > 0) {
            for (int i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(t)) abort(); // ids within the vocabulary
            char *s = tokenizer_decode(t, ids, n, 0);
            free(s);
        }
        free(ids);
    }
    // every id (and some that are not) through decode, the stream decoder and the id <-> string maps
    int V = tokenizer_vocab_size(t), lim = V < 4096 ? V + 2 : 4096;
    StreamDecoder sd;
    stream_init(&sd, t, 1);
    char out[1 << 16];
    for (int id = -1; id < lim; id++) {
        const char *s = tokenizer_token_str(t, id);
        if (s) tokenizer_token_id(t, s);
        char *d = tokenizer_decode(t, &id, 1, id & 1);
        free(d);
        stream_feed(&sd, id, out, sizeof out);
    }
    stream_flush(&sd, out, sizeof out);
    tokenizer_free(t);
    return 0;
}
