// SPDX-License-Identifier: MIT
// fuzz_gguf_model.c - libFuzzer target: a text GGUF file opened as a model (gguf_model.c) on arbitrary bytes: the
// config, tokenizer.json and template variables rebuilt from its metadata and read back (config_parse,
// tokenizer_load_json, chat_template_load_text), its tensors mapped to HF names with the converter's layout undone;
// every byte of every resulting tensor view is read (ASan: inside the mapping or an owned copy).
#include "../chat_template.h"
#include "../gguf_model.h"
#include "../tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // the bytes as a regular file (gguf_open maps paths): an anonymous memory file named by /proc/self/fd
    int fd = memfd_create("fuzz.gguf", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    Checkpoint ck;
    if (gguf_checkpoint_open(&ck, path, NULL) == 0) {
        volatile uint64_t h = 0;
        for (int f = 0; f < ck.nfiles; f++)
            for (int i = 0; i < ck.files[f].n; i++) {
                const STensor *t = &ck.files[f].t[i];
                for (size_t b = 0; b < t->nbytes; b++) h += ((const uint8_t *)t->data)[b];
            }
        Tokenizer *tok = tokenizer_load_json(ck.gguf->tokenizer_json, strlen(ck.gguf->tokenizer_json), path);
        if (tok) {
            int *ids = NULL;
            int n = tokenizer_encode(tok, "[gMASK]<sop><|user|>\nhello world 123<|assistant|>", 48, &ids);
            if (n > 0) {
                char *s = tokenizer_decode(tok, ids, n, 0);
                free(s);
            }
            free(ids);
            tokenizer_free(tok);
        }
        ChatTemplate ct;
        if (chat_template_load_text(&ct, ck.gguf->tokcfg_json, ck.gguf->chat_template, path, NULL) == 0)
            chat_template_free(&ct);
        checkpoint_close(&ck);
        (void)h;
    }
    close(fd);
    return 0;
}
