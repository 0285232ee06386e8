// SPDX-License-Identifier: MIT
// tokenizer.h - HF `tokenizers` byte-level BPE read from tokenizer.json (tokenizer.c), and a streaming decoder.
#ifndef GLM4V_TOKENIZER_H
#define GLM4V_TOKENIZER_H

#include "base.h"

typedef struct Tokenizer Tokenizer;
// load from a file path or a JSON text; NULL + glm_errmsg on error
Tokenizer *tokenizer_load(const char *path);
Tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name);
void tokenizer_free(Tokenizer *t);
int tokenizer_vocab_size(const Tokenizer *t);          // highest id + 1
int tokenizer_token_id(const Tokenizer *t, const char *s); // exact token (added or vocab) id, or -1
const char *tokenizer_token_str(const Tokenizer *t, int id); // raw token text (byte-level form for BPE ids), or NULL
// the id of the token whose decoded bytes are exactly these n bytes (an added token by its text; a vocabulary token by
// its bytes in byte-level form), or -1 (the reverse of a one-token decode: an OpenAI logprobs entry's `bytes`)
int tokenizer_bytes_id(const Tokenizer *t, const void *bytes, size_t n);
// encode UTF-8 text (added/special tokens recognised): ids malloc'd into *ids; returns count or -1
// (a C0 80 pair, Modified UTF-8's NUL, is read as the byte 0x00: see prompt_text_from_bytes)
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids);
// prompt bytes (a file, stdin, a chat line: any bytes, NULs included) as the NUL-terminated text to render and encode:
// invalid UTF-8 becomes U+FFFD (as HF's str), each NUL byte C0 80, which tokenizer_encode reads back as 0x00; malloc'd
char *prompt_text_from_bytes(const char *bytes, size_t n);
// decode ids to UTF-8 (malloc'd, NUL-terminated); skip_special drops special added tokens
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special);
// streaming decoder: feed one id, get the text that became complete (incomplete UTF-8 held back)
typedef struct {
    const Tokenizer *tok; // the tokenizer whose ids are fed
    int skip_special;     // 1: special added tokens produce no text
    char pending[64];   // bytes of an incomplete UTF-8 sequence (at most 3)
    int npending;         // bytes in pending
    int ntok;           // tokens emitted so far (a tokenizer without decoder joins tokens with " ")
} StreamDecoder;
void stream_init(StreamDecoder *s, const Tokenizer *t, int skip_special);
// writes the newly completed text to out (cap bytes, NUL-terminated); returns bytes written, or -1 (glm_errmsg,
// nothing consumed) when cap is too small: 3 * (token bytes + 3) + 1 always suffices; 4096 for GLM vocabularies
int stream_feed(StreamDecoder *s, int id, char *out, int cap);
// held-back bytes of an unfinished character become U+FFFD (as a full decode would); same return convention
int stream_flush(StreamDecoder *s, char *out, int cap);

#endif
