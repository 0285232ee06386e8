// SPDX-License-Identifier: MIT
// prompt.h - from prompt text to the decoder's inputs (prompt.c): Glm4vProcessor's placeholder expansion and
// mm_token_type_ids, and Glm4vModel.get_rope_index (M-RoPE positions).
#ifndef GLM4V_PROMPT_H
#define GLM4V_PROMPT_H

#include "checkpoint.h"

// a media item of a conversation turn, in order (the CLI's --chat history)
typedef enum { MEDIA_IMAGE = 1, MEDIA_VIDEO = 2 } MediaKind;

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
