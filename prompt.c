// SPDX-License-Identifier: MIT
// prompt.c - Glm4vProcessor's placeholder expansion and mm_token_type_ids, and Glm4vModel.get_rope_index (M-RoPE
// 3-D positions). Pure functions of token ids and visual grids: no weights, no I/O.
#include "prompt.h"

#include <stdlib.h>
#include <string.h>

static int seq_push(Seq *s, int id) {
    if (s->n == s->cap) {
        if (s->cap > (1 << 28)) return glm_err("prompt too long (more than %d tokens)", s->cap);
        int cap = s->cap ? s->cap * 2 : 256;
        int *ids = realloc(s->ids, (size_t)cap * sizeof(int)), *type = ids ? realloc(s->type, (size_t)cap * sizeof(int)) : NULL;
        if (ids) s->ids = ids;
        if (type) s->type = type;
        if (!ids || !type) return glm_err("out of memory (prompt)");
        s->cap = cap;
    }
    s->type[s->n] = 0;
    s->ids[s->n++] = id;
    return 0;
}

void seq_free(Seq *s) {
    free(s->ids);
    free(s->type);
    memset(s, 0, sizeof *s);
}

int prompt_expand(Seq *out, const int *ids, int n, const Config *c, const PromptMedia *pm) {
    memset(out, 0, sizeof *out);
    const int m2 = c->vision.spatial_merge_size * c->vision.spatial_merge_size;
    int next_img = 0, next_vid = 0, rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (ids[i] == c->image_token_id) {
            // replace_image_token: self.image_token * (image_grid_thw[image_idx].prod() // merge_length)
            if (next_img >= pm->nimages) {
                rc = glm_err("the prompt has more <|image|> placeholders than the %d image(s) given", pm->nimages);
                break;
            }
            const int *g = pm->img_grid[next_img++];
            int64_t cnt = (int64_t)g[0] * g[1] * g[2] / m2;
            for (int64_t k = 0; k < cnt && !rc; k++) rc = seq_push(out, c->image_token_id);
        } else if (ids[i] == c->video_token_id) {
            // replace_video_token: per frame "<|begin_of_image|>" + image_token * (h*w // merge_length)
            //                      + "<|end_of_image|>" + str(int(timestamp))
            if (next_vid >= pm->nvideos) {
                rc = glm_err("the prompt has more <|video|> placeholders than the %d video(s) given", pm->nvideos);
                break;
            }
            const int v = next_vid++, *g = pm->vid_grid[v];
            int64_t cnt = (int64_t)g[1] * g[2] / m2;
            for (int f = 0; f < g[0] && !rc; f++) {
                rc = seq_push(out, c->image_start_token_id);
                for (int64_t k = 0; k < cnt && !rc; k++) rc = seq_push(out, c->image_token_id);
                if (!rc) rc = seq_push(out, c->image_end_token_id);
                for (int k = 0; k < pm->stamp_len[v][f] && !rc; k++) rc = seq_push(out, pm->stamp_ids[v][f][k]);
            }
        } else rc = seq_push(out, ids[i]);
    }
    if (!rc && next_img != pm->nimages)
        rc = glm_err("%d image(s) given but the prompt has %d <|image|> placeholder(s)", pm->nimages, next_img);
    if (!rc && next_vid != pm->nvideos)
        rc = glm_err("%d video(s) given but the prompt has %d <|video|> placeholder(s)", pm->nvideos, next_vid);
    if (rc) {
        seq_free(out);
        return -1;
    }
    // create_mm_token_type_ids: is_video_modality = cumsum(ids == video_start) > cumsum(ids == video_end);
    // image tokens inside a video get 2, other image tokens 1, everything else 0
    int starts = 0, ends = 0;
    for (int i = 0; i < out->n; i++) {
        starts += out->ids[i] == c->video_start_token_id;
        ends += out->ids[i] == c->video_end_token_id;
        out->type[i] = out->ids[i] != c->image_token_id ? 0 : (starts > ends ? 2 : 1);
    }
    return 0;
}

int prompt_positions(int64_t *pos, int64_t *rope_delta, const Seq *s, const Config *c, const PromptMedia *pm) {
    const int merge = c->vision.spatial_merge_size, n = s->n;
    int64_t cur = 0, mx = -1;
    int next_img = 0, vid = 0, frame = 0;
    for (int i = 0; i < n;) {
        // itertools.groupby(enumerate(input_token_type), lambda x: x[1])
        int type = s->type[i], j = i;
        while (j < n && s->type[j] == type) j++;
        if (type == 0) {
            // llm_pos_ids_list.append(torch.arange(text_len).view(1, -1).expand(3, -1) + current_pos)
            for (int k = i; k < j; k++) pos[k] = pos[n + k] = pos[2 * n + k] = cur++;
            i = j;
            continue;
        }
        // grid_thw = next(grid_iters[modality_type]) (video grids split per temporal patch); a run holding the tokens
        // of several adjacent grids is split between them
        while (i < j) {
            int gh, gw;
            if (type == 1) {
                if (next_img >= pm->nimages) return glm_err("more image tokens than image grids");
                gh = pm->img_grid[next_img][1], gw = pm->img_grid[next_img][2];
                next_img++;
            } else {
                while (vid < pm->nvideos && frame >= pm->vid_grid[vid][0]) vid++, frame = 0;
                if (vid >= pm->nvideos) return glm_err("more video tokens than video frames");
                gh = pm->vid_grid[vid][1], gw = pm->vid_grid[vid][2];
                frame++;
            }
            const int lh = gh / merge, lw = gw / merge;
            if ((int64_t)lh * lw > j - i)
                return glm_err("a run of %d <|image|> tokens is shorter than its %dx%d grid", j - i, lh, lw);
            // get_vision_position_ids: t = start, h = start + row, w = start + col (row-major over h' x w')
            for (int r = 0; r < lh; r++)
                for (int q = 0; q < lw; q++, i++) pos[i] = cur, pos[n + i] = cur + r, pos[2 * n + i] = cur + q;
            // current_pos += max(grid_thw[1], grid_thw[2]) // spatial_merge_size
            cur += (gh > gw ? gh : gw) / merge;
        }
    }
    for (int i = 0; i < 3 * n; i++) mx = pos[i] > mx ? pos[i] : mx;
    // mrope_position_deltas = llm_positions.max() + 1 - len(input_ids)
    *rope_delta = mx + 1 - n;
    return 0;
}
