// SPDX-License-Identifier: MIT
// boxes.h - grounding (boxes.c): GLM-4.5V answers boxes as <|begin_of_box|>[[x1,y1,x2,y2],...]<|end_of_box|>
// (points [[x,y]]) in 0-1000 coordinates of the image; parsed, mapped to pixels, drawn on a PNG.
#ifndef GLM4V_BOXES_H
#define GLM4V_BOXES_H

#include "preprocess.h"

typedef struct {
    float x1, y1, x2, y2; // 0-1000 coordinates as written (a point has x2 = x1, y2 = y1)
    int is_point;         // 1 when written as [x, y]
} Box;

// boxes in a generated text (malloc'd into *out, NULL when none); returns the count. Only spans
// <|begin_of_box|>...<|end_of_box|> count when the answer has any, else bare [[...]] lists of 2 or 4 numbers;
// <think>...</think> text is skipped. Never fails: malformed or truncated lists are ignored
int boxes_parse(const char *text, Box **out);
// pixel coordinates in the original img_w x img_h image: round(x * img_w / 1000) clamped to [0, img_w - 1]
// (y likewise), ordered so x1 <= x2, y1 <= y2
void box_to_pixels(const Box *b, int img_w, int img_h, int *px1, int *py1, int *px2, int *py2);
// outline colour of box i in boxes_draw_png (a cycle of distinct bright colours)
void box_color(int i, uint8_t rgb[3]);
// draw the boxes (2-3 px outlines, points as filled dots) on a copy of img, write it as PNG to out_png
// (via out_png.tmp.<pid> + rename); -1 + glm_errmsg naming out_png on error, nothing left behind
int boxes_draw_png(const char *out_png, const Image *img, const Box *boxes, int n);

#endif
