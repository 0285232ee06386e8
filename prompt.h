// SPDX-License-Identifier: MIT
// prompt.h - from a conversation to the decoder's inputs (prompt.c): the chat template (the GLM-4.5V / 4.6V layout),
// Glm4vProcessor's placeholder expansion and mm_token_type_ids, and Glm4vModel.get_rope_index (M-RoPE positions).
#ifndef GLM4V_PROMPT_H
#define GLM4V_PROMPT_H

#include "checkpoint.h"

// chat template (GLM-4.5V / GLM-4.6V family, docs/SPEC.md 9.3)
typedef enum { MEDIA_IMAGE = 1, MEDIA_VIDEO = 2 } MediaKind;
typedef struct {
    const char *system;    // NULL when absent
    const char *user;      // user text
    const MediaKind *media; // media items in order, placed before the user text
    int nmedia;
    int think;             // 1 = thinking on (default), 0 = --no-think
} ChatPrompt;
// render the prompt text (special tokens as text) with the generation prompt; malloc'd
char *chat_render(const ChatPrompt *p);
// a conversation turn for chat_render_msgs
enum { CHAT_SYSTEM = 0, CHAT_USER = 1, CHAT_ASSISTANT = 2, CHAT_OBSERVATION = 3 /* tool result */ };
typedef struct {
    int role;               // CHAT_*
    const char *content;    // text (NULL = empty)
    const MediaKind *media; // media items in order, placed before the text
    int nmedia;
} ChatMsg;
// render a conversation (docs/SPEC.md 9.3 template rules: earlier assistant turns as <|assistant|>\n<think></think>\n +
// content.strip()); add_generation_prompt appends <|assistant|> (+ \n<think></think> when think == 0); malloc'd
char *chat_render_msgs(const ChatMsg *msgs, int n, int think, int add_generation_prompt);

typedef struct {
    int *ids;   // [n] token ids after placeholder expansion
    int *type;  // [n] mm_token_type_ids: 0 text, 1 image token, 2 image token inside a video
    int n, cap; // tokens used / allocated
} Seq;

// the visual inputs a prompt refers to, in prompt order
typedef struct {
    int nimages;                    // images, in prompt order
    const int (*img_grid)[3];       // [nimages] (t, h, w) in patches
    int nvideos;                    // videos, in prompt order
    const int (*vid_grid)[3];       // [nvideos] (t' = frames / 2, h, w)
    const int *const *const *stamp_ids; // [nvideos][t'] token ids of each temporal patch's timestamp text
    const int *const *stamp_len;    // [nvideos][t'] their counts
} PromptMedia;

// expand <|image|> / <|video|> placeholders of ids [n] into out (zeroed by the call); -1 + glm_errmsg on a count
// mismatch
int prompt_expand(Seq *out, const int *ids, int n, const Config *c, const PromptMedia *pm);
// 3-D positions pos [3][s->n] (rows t, h, w) and rope_delta = max(pos) + 1 - n; -1 + glm_errmsg on a grid mismatch
int prompt_positions(int64_t *pos, int64_t *rope_delta, const Seq *s, const Config *c, const PromptMedia *pm);
void seq_free(Seq *s);

#endif
