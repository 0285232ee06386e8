// SPDX-License-Identifier: MIT
// boxes.c - grounding: GLM-4.5V box answers (<|begin_of_box|>[[x1,y1,x2,y2]]<|end_of_box|>, 0-1000 coordinates)
// parsed from generated text, mapped to pixels of the original image and drawn onto a PNG.
#include "boxes.h"
#include "fileio.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOX_BEGIN "<|begin_of_box|>"
#define BOX_END "<|end_of_box|>"
#define THINK_OPEN "<think>"
#define THINK_CLOSE "</think>"
#define MAX_NUMBER_CHARS 63 // longer "numbers" are garbage, not coordinates
#define BLANK '\x1f'        // replaces think text so that nothing can match across it

// ----------------------------------------------------------------------------
// parsing

typedef struct {
    Box *v;      // [cap]
    int n, cap;  //
} BoxList;

// append a box from k = 2 (point) or 4 numbers
static void boxlist_push(BoxList *l, const double *num, int k) {
    if (l->n == l->cap) {
        if (l->cap > INT_MAX / 2 - 8) return; // cannot happen for a text below 2 GB; drop rather than overflow
        int cap = l->cap ? 2 * l->cap : 8;
        Box *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) glm_die(EXIT_INPUT, "out of memory allocating %d boxes", cap);
        l->v = v;
        l->cap = cap;
    }
    Box *b = &l->v[l->n++];
    b->x1 = (float)num[0];
    b->y1 = (float)num[1];
    b->x2 = (float)num[k == 4 ? 2 : 0];
    b->y2 = (float)num[k == 4 ? 3 : 1];
    b->is_point = k == 2;
}

// first non-blank at or after p
static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

// ASCII digit (isdigit depends on the locale)
static int is_digit(char c) { return c >= '0' && c <= '9'; }

// a number [+-]digits[.digits][e[+-]digits] at p: value in *v, returns the end, NULL when none or not a finite float
static const char *scan_number(const char *p, double *v) {
    const char *s = p;
    if (*p == '+' || *p == '-') p++;
    int ndig = 0;
    while (is_digit(*p)) p++, ndig++;
    if (*p == '.') {
        p++;
        while (is_digit(*p)) p++, ndig++;
    }
    if (ndig == 0) return NULL;
    if (*p == 'e' || *p == 'E') {
        const char *e = p + 1;
        if (*e == '+' || *e == '-') e++;
        if (is_digit(*e)) {
            while (is_digit(*e)) e++;
            p = e;
        }
    }
    if (p - s > MAX_NUMBER_CHARS) return NULL;
    char buf[MAX_NUMBER_CHARS + 1];
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = '\0';
    double x = strtod(buf, NULL); // the C locale (nothing here calls setlocale)
    if (!isfinite(x) || fabs(x) > FLT_MAX) return NULL;
    *v = x;
    return p;
}

// one group "[n, n]" or "[n, n, n, n]" at p (p[0] == '['): appended to l, returns the end; NULL when malformed
static const char *parse_group(const char *p, BoxList *l) {
    double num[4];
    int k = 0;
    const char *q = p + 1;
    for (;;) {
        if (k == 4) return NULL;
        q = scan_number(skip_ws(q), &num[k]);
        if (!q) return NULL;
        k++;
        q = skip_ws(q);
        if (*q == ',') {
            q++;
            continue;
        }
        if (*q == ']') break;
        return NULL;
    }
    if (k != 2 && k != 4) return NULL;
    boxlist_push(l, num, k);
    return q + 1;
}

// inside a box span [s, end): every group, however it is nested ("[[a],[b]]", "[a]", "[[[a]]]")
static void parse_span(const char *s, const char *end, BoxList *l) {
    // a group cannot run past end: end points at '<' of a box token or at the terminating NUL
    for (const char *p = s; p < end;) {
        const char *r = *p == '[' ? parse_group(p, l) : NULL;
        p = r ? r : p + 1;
    }
}

// outside spans: lists "[[a], [b], ...]"; q points at the first group's '['. Returns where the list stopped
static const char *parse_list(const char *q, BoxList *l) {
    for (;;) {
        const char *r = parse_group(q, l);
        if (!r) return q; // a malformed group may itself start a list ("[[[1,2]]]")
        r = skip_ws(r);
        if (*r != ',') return r;
        r = skip_ws(r + 1);
        if (*r != '[') return r;
        q = r;
    }
}

// blank [a, b) of the copy
static void blank(char *a, char *b) { memset(a, BLANK, (size_t)(b - a)); }

// think text (<think>...</think>, unterminated: to the end; a first "</think>" without "<think>": from the start,
// as when the prompt ended with <think>) blanked in place
static void blank_think(char *t) {
    char *p = t;                                                  // text before p is done
    char *o = strstr(t, THINK_OPEN), *c = strstr(t, THINK_CLOSE); // next tags at or after p (NULL: none left)
    for (int first = 1; o || c; first = 0) {
        char *e;
        if (c && (!o || c < o)) { // "</think>" before any "<think>"
            e = c + strlen(THINK_CLOSE);
            blank(first ? p : c, e);
        } else {
            e = c ? c + strlen(THINK_CLOSE) : o + strlen(o); // c > o here: the tags cannot overlap
            blank(o, e);
        }
        p = e;
        if (o && o < p) o = strstr(p, THINK_OPEN);
        if (c && c < p) c = strstr(p, THINK_CLOSE);
    }
}

int boxes_parse(const char *text, Box **out) {
    *out = NULL;
    if (!text) return 0;
    char *t = xstrdup(text);
    blank_think(t);
    BoxList l = {0};
    const char *b = strstr(t, BOX_BEGIN);
    if (b) {
        // spans <|begin_of_box|> ... <|end_of_box|> (or the next <|begin_of_box|>, or the end of a truncated text)
        const char *e = strstr(b, BOX_END); // the next end token at or after b (NULL: none left)
        while (b) {
            const char *s = b + strlen(BOX_BEGIN);
            if (e && e < s) e = strstr(s, BOX_END);
            const char *nb = strstr(s, BOX_BEGIN);
            const char *end = e ? e : s + strlen(s);
            if (nb && nb < end) end = nb;
            parse_span(s, end, &l);
            b = nb;
        }
    } else {
        // no spans: bare lists "[[x1,y1,x2,y2], ...]" or "[[x,y]]"
        for (const char *p = t; *p;) {
            const char *q = *p == '[' ? skip_ws(p + 1) : NULL;
            if (!q || *q != '[') {
                p++;
                continue;
            }
            const char *stop = parse_list(q, &l);
            p = stop > p ? stop : p + 1;
        }
    }
    free(t);
    if (l.n == 0) {
        free(l.v);
        return 0;
    }
    *out = l.v;
    return l.n;
}

// ----------------------------------------------------------------------------
// pixels

// v (0-1000) -> pixel index in [0, size - 1]
static int coord_to_pixel(float v, int size) {
    if (size <= 0 || isnan(v)) return 0;
    double x = round((double)v * size / 1000.0); // half away from zero
    if (x < 0) x = 0;
    if (x > size - 1) x = size - 1;
    return (int)x;
}

void box_to_pixels(const Box *b, int img_w, int img_h, int *px1, int *py1, int *px2, int *py2) {
    int x1 = coord_to_pixel(b->x1, img_w), x2 = coord_to_pixel(b->x2, img_w);
    int y1 = coord_to_pixel(b->y1, img_h), y2 = coord_to_pixel(b->y2, img_h);
    *px1 = x1 < x2 ? x1 : x2;
    *px2 = x1 < x2 ? x2 : x1;
    *py1 = y1 < y2 ? y1 : y2;
    *py2 = y1 < y2 ? y2 : y1;
}

void box_color(int i, uint8_t rgb[3]) {
    static const uint8_t pal[8][3] = {
        {255, 40, 40}, {40, 230, 40}, {40, 120, 255}, {255, 220, 0},
        {255, 0, 255}, {0, 230, 255}, {255, 140, 0},  {170, 90, 255},
    };
    const uint8_t *c = pal[(unsigned)i % 8];
    rgb[0] = c[0], rgb[1] = c[1], rgb[2] = c[2];
}

// fill the inclusive rectangle [x0, x1] x [y0, y1] (clipped) of rgb [h, w, 3]
static void fill_rect(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1, const uint8_t c[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > w - 1) x1 = w - 1;
    if (y1 > h - 1) y1 = h - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) memcpy(rgb + ((size_t)y * w + x) * 3, c, 3);
}

// filled disc of radius r around (cx, cy) (clipped)
static void fill_disc(uint8_t *rgb, int w, int h, int cx, int cy, int r, const uint8_t c[3]) {
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            int x = cx + dx, y = cy + dy;
            if (dx * dx + dy * dy <= r * r && x >= 0 && x < w && y >= 0 && y < h)
                memcpy(rgb + ((size_t)y * w + x) * 3, c, 3);
        }
}

int boxes_draw_png(const char *out_png, const Image *img, const Box *boxes, int n) {
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return glm_err("%s: no image to draw on", out_png);
    if (n < 0 || (n > 0 && !boxes)) return glm_err("%s: bad box list", out_png);
    int w = img->w, h = img->h;
    size_t nbytes;
    if ((size_t)w > INT_MAX / 3 || size_mul((size_t)w * 3, (size_t)h, &nbytes))
        return glm_err("%s: image of %d x %d pixels too large", out_png, w, h);
    uint8_t *rgb = xmalloc(nbytes); // [h, w, 3]
    memcpy(rgb, img->rgb, nbytes);
    int side = w < h ? w : h;
    int t = side >= 600 ? 3 : 2;                 // line width
    int r = side / 100 > 4 ? side / 100 : 4;     // point radius
    for (int i = 0; i < n; i++) {
        uint8_t c[3];
        box_color(i, c);
        int x1, y1, x2, y2;
        box_to_pixels(&boxes[i], w, h, &x1, &y1, &x2, &y2);
        if (boxes[i].is_point) {
            fill_disc(rgb, w, h, x1, y1, r, c);
            continue;
        }
        // outline drawn inside [x1, x2] x [y1, y2] so it stays visible at the image border
        fill_rect(rgb, w, h, x1, y1, x2, y1 + t - 1, c); // top
        fill_rect(rgb, w, h, x1, y2 - t + 1, x2, y2, c); // bottom
        fill_rect(rgb, w, h, x1, y1, x1 + t - 1, y2, c); // left
        fill_rect(rgb, w, h, x2 - t + 1, y1, x2, y2, c); // right
    }

    // fileio.h's output rule: a file is replaced atomically, a device / FIFO / our stdout is written in place
    int rc = -1;
    uint8_t *png = NULL; // the encoded file
    size_t npng = 0;
    const Image drawn = {w, h, rgb};
    if (image_encode_png(&drawn, &png, &npng)) {
        glm_err("%s: PNG encoding failed: %s", out_png, glm_errmsg);
        goto done;
    }
    OutFile out;
    if (output_open(&out, out_png)) goto done;
    errno = 0;
    if (fwrite(png, 1, npng, out.f) != npng) {
        glm_err("%s: write failed: %s", out_png, strerror(errno ? errno : EIO));
        output_abort(&out);
        goto done;
    }
    if (output_commit(&out)) goto done;
    rc = 0;
done:
    free(png);
    free(rgb);
    return rc;
}
