// SPDX-License-Identifier: MIT
// fuzz_prompt.c - libFuzzer target: the prompt path with arbitrary user text (special-token text included): chat
// template (the built-in one, through jinja.c) or --raw text, encoding with the tiny checkpoint's tokenizer, placeholder
// expansion for 0-3 images and 0-1 video (prompt_expand) and M-RoPE positions (prompt_positions).
// Input: byte 0 = flags (bit 0 raw, bit 1 think, bits 2-3 images, bit 4 video, bit 5 multi-turn), then 2 bytes per
// image and 3 for the video (grid sizes), then the text ('\x01' separates turns in multi-turn mode).
#include "../chat_template.h"
#include "../prompt.h"
#include "../tokenizer.h"

#include <stdlib.h>
#include <string.h>

static Tokenizer *fz_ptok;
static Config fz_pcfg;
static ChatTemplate fz_tmpl; // the built-in template (the tiny checkpoint has none)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("GLM4V_FUZZ_MODEL");
    char path[4096];
    if (!dir) dir = "weights/tiny-glm4v-moe";
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    fz_ptok = tokenizer_load(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *json = read_file(path, &len, 1 << 20);
    if (!fz_ptok || !json || config_parse(&fz_pcfg, json, len, path) || chat_template_load(&fz_tmpl, dir, NULL)) {
        fprintf(stderr, "fuzz_prompt: %s (run from the repository root)\n", glm_errmsg);
        exit(1);
    }
    free(json);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fz_ptok) LLVMFuzzerInitialize(NULL, NULL);
    const Config *c = &fz_pcfg;
    const int m = c->vision.spatial_merge_size;
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    int raw = flags & 1, think = (flags >> 1) & 1, nimg = (flags >> 2) & 3, nvid = (flags >> 4) & 1;
    int multi = (flags >> 5) & 1;
    size_t hdr = 1 + 2 * (size_t)nimg + 3 * (size_t)nvid;
    if (size < hdr) return 0;
    int img_grid[3][3], vid_grid[1][3] = {{1, m, m}};
    const uint8_t *g = data + 1;
    for (int i = 0; i < nimg; i++, g += 2) { // (1, h, w) in patches: multiples of the merge size, as preprocessed
        img_grid[i][0] = 1;
        img_grid[i][1] = m * (1 + g[0] % 6);
        img_grid[i][2] = m * (1 + g[1] % 6);
    }
    if (nvid) vid_grid[0][0] = 1 + g[0] % 4, vid_grid[0][1] = m * (1 + g[1] % 4), vid_grid[0][2] = m * (1 + g[2] % 4);
    char *text = malloc(size - hdr + 1);
    memcpy(text, data + hdr, size - hdr);
    text[size - hdr] = 0; // a NUL inside the text ends it, as it would on the command line

    // prompt text: the built-in chat template over one user turn (or turns split at '\x01', roles cycling through
    // system, user, assistant, tool; the media on the second), or the raw text
    char *prompt;
    int expect_ok = !raw && !strstr(text, "<|"); // a template prompt without special-token text always expands
    if (raw) prompt = xstrdup(text);
    else {
        static const char *roles[4] = {"system", "user", "assistant", "tool"};
        cJSON *msgs = cJSON_CreateArray(), *kw = cJSON_CreateObject();
        cJSON_AddBoolToObject(kw, "enable_thinking", think);
        int nm = 0;
        char *s = text;
        while (nm < 16) {
            char *e = multi ? strchr(s, '\x01') : NULL;
            if (e) *e = 0;
            const int media_here = multi ? nm == 1 : 1;
            cJSON *msg = cJSON_CreateObject();
            cJSON_AddStringToObject(msg, "role", multi ? roles[nm % 4] : "user");
            if (media_here && nimg + nvid) {
                cJSON *parts = cJSON_CreateArray(), *t = cJSON_CreateObject();
                for (int i = 0; i < nimg + nvid; i++) {
                    cJSON *p = cJSON_CreateObject();
                    cJSON_AddStringToObject(p, "type", i < nimg ? "image" : "video");
                    cJSON_AddItemToArray(parts, p);
                }
                cJSON_AddStringToObject(t, "type", "text");
                cJSON_AddStringToObject(t, "text", s);
                cJSON_AddItemToArray(parts, t);
                cJSON_AddItemToObject(msg, "content", parts);
            } else cJSON_AddStringToObject(msg, "content", s);
            cJSON_AddItemToArray(msgs, msg);
            nm++;
            if (!e) break;
            s = e + 1;
        }
        size_t len;
        prompt = chat_template_render(&fz_tmpl, msgs, NULL, 1, kw, &len);
        cJSON_Delete(msgs), cJSON_Delete(kw);
        if (!prompt) abort(); // the built-in template renders any conversation
        if (multi && nm < 2 && nimg + nvid) expect_ok = 0; // no user turn to carry the media
    }
    int *ids = NULL;
    int n = tokenizer_encode(fz_ptok, prompt, strlen(prompt), &ids);
    free(prompt);
    if (n < 0) abort(); // any text encodes

    // timestamps "0", "1", ... as the video processor gives them, encoded
    int *stamp_ids[4] = {0}, stamp_len[4] = {0};
    for (int f = 0; f < vid_grid[0][0]; f++) {
        char ts[16];
        snprintf(ts, sizeof ts, "%d", f);
        stamp_len[f] = tokenizer_encode(fz_ptok, ts, strlen(ts), &stamp_ids[f]);
    }
    const int *const sids[4] = {stamp_ids[0], stamp_ids[1], stamp_ids[2], stamp_ids[3]};
    const int *const *sidp[1] = {sids};
    const int *slp[1] = {stamp_len};
    PromptMedia pm = {.nimages = nimg, .img_grid = (const int(*)[3])img_grid, .nvideos = nvid,
                      .vid_grid = (const int(*)[3])vid_grid, .stamp_ids = sidp, .stamp_len = slp};
    Seq s;
    if (prompt_expand(&s, ids, n, c, &pm) == 0) {
        int64_t *pos = malloc(sizeof(int64_t) * 3 * (size_t)(s.n ? s.n : 1)), delta;
        if (prompt_positions(pos, &delta, &s, c, &pm) == 0) {
            for (int i = 0; i < 3 * s.n; i++)
                if (pos[i] < 0 || pos[i] >= s.n + delta + 1) abort(); // positions within [0, max]
        } else if (expect_ok) abort();
        free(pos);
        seq_free(&s);
    } else if (expect_ok) abort();
    for (int f = 0; f < 4; f++) free(stamp_ids[f]);
    free(ids);
    free(text);
    return 0;
}
