// SPDX-License-Identifier: MIT
// fuzz_openai.c - libFuzzer target: HTTP request bodies of `glm4v serve`, read as /v1/chat/completions
// (openai_parse_chat: messages, parts, data: URIs, local paths under an allowed folder, file parts carrying PDF
// documents (recognised, never rendered here), sampling fields) and as
// /v1/completions (openai_parse_completion). Input: the body bytes as a client sends them.
#include "../openai.h"

#include <stdlib.h>
#include <string.h>

// the fuzz build links no engine (openai_load_media is never called here): weak stand-ins, replaced by engine.c's
// functions where the library is linked (tests/test_regress.c)
__attribute__((weak)) int media_add_image(Media *m, const Engine *e, const char *path, const MediaOptions *o) {
    return glm_err("no engine");
}
__attribute__((weak)) int media_add_image_mem(Media *m, const Engine *e, const uint8_t *buf, size_t len,
                                              const char *name, const MediaOptions *o) {
    return glm_err("no engine");
}
__attribute__((weak)) int media_add_image_rgb(Media *m, const Engine *e, const Image *im, const char *name,
                                              const MediaOptions *o) {
    return glm_err("no engine");
}
__attribute__((weak)) void media_truncate(Media *m, const Engine *e, int nimg, int nvid) {}
__attribute__((weak)) int media_add_video(Media *m, const Engine *e, const char *path, const MediaOptions *o) {
    return glm_err("no engine");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    OaLimits lim = {"/nonexistent-glm4v-fuzz", 64, 16}; // local paths are resolved and refused (nothing is read)
    ChatRequest r;
    OaError err;
    if (!openai_parse_chat(&r, (const char *)data, size, &lim, &err)) {
        // what a parsed request holds must be consistent: media indices inside the list, texts NUL-terminated
        for (int i = 0; i < r.nmsgs; i++)
            if (r.msgs[i].media0 + r.msgs[i].nmedia > r.nmedia || strlen(r.msgs[i].content) > size) abort();
        openai_request_free(&r);
    }
    if (!openai_parse_completion(&r, (const char *)data, size, &err)) {
        if (!r.prompt == !r.prompt_ids || (r.prompt && strlen(r.prompt) > size)) abort();
        openai_request_free(&r);
    }
    return 0;
}
