// SPDX-License-Identifier: MIT
// test_boxes.c - grounding boxes (boxes.c): parsing GLM-4.5V box answers (well-formed, think text, malformed and
// pathological text), 0-1000 -> pixel conversion on non-square images, drawing onto a PNG and its error paths
#include "boxes.h"
#include "test_util.h"

#include <math.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// parse text; check the count and, when want != NULL, every box against want [n][5] (x1, y1, x2, y2, is_point)
static void check_parse(const char *label, const char *text, int n, const float (*want)[5]) {
    Box *b = (Box *)0x1; // must be overwritten
    int got = boxes_parse(text, &b);
    int ok = got == n && (n > 0 ? b != NULL : b == NULL);
    for (int i = 0; ok && want && i < n; i++)
        ok = b[i].x1 == want[i][0] && b[i].y1 == want[i][1] && b[i].x2 == want[i][2] && b[i].y2 == want[i][3] &&
             b[i].is_point == (int)want[i][4];
    CHECK(ok, "boxes_parse %s: %d box(es) (got %d)", label, n, got);
    if (!ok && got > 0 && b)
        for (int i = 0; i < got; i++)
            printf("#   [%d] %g %g %g %g point=%d\n", i, b[i].x1, b[i].y1, b[i].x2, b[i].y2, b[i].is_point);
    if (got > 0) free(b);
}

static void test_parse(void) {
    check_parse("one span, two boxes",
                "The two cats are at <|begin_of_box|>[[100,200,300,400],[500, 600, 700, 800]]<|end_of_box|>.", 2,
                (const float[][5]){{100, 200, 300, 400, 0}, {500, 600, 700, 800, 0}});
    check_parse("two spans",
                "left <|begin_of_box|>[[1,2,3,4]]<|end_of_box|> and right <|begin_of_box|>[[5,6,7,8]]<|end_of_box|>",
                2, (const float[][5]){{1, 2, 3, 4, 0}, {5, 6, 7, 8, 0}});
    check_parse("point", "The dot: <|begin_of_box|>[[250,750]]<|end_of_box|>", 1,
                (const float[][5]){{250, 750, 250, 750, 1}});
    check_parse("points and a box in one span", "<|begin_of_box|>[[1,2],[3,4,5,6],[7,8]]<|end_of_box|>", 3,
                (const float[][5]){{1, 2, 1, 2, 1}, {3, 4, 5, 6, 0}, {7, 8, 7, 8, 1}});
    check_parse("decimals", "<|begin_of_box|>[[12.5, 0.25, 999.75, .5]]<|end_of_box|>", 1,
                (const float[][5]){{12.5f, 0.25f, 999.75f, 0.5f, 0}});
    check_parse("whitespace and newlines", "<|begin_of_box|>[ [ 10 ,\n20 , 30,40 ] ]<|end_of_box|>", 1,
                (const float[][5]){{10, 20, 30, 40, 0}});
    check_parse("single brackets inside a span", "<|begin_of_box|>[10,20,30,40]<|end_of_box|>", 1,
                (const float[][5]){{10, 20, 30, 40, 0}});
    check_parse("text before/after, newlines",
                "Sure!\nThe red car is located at <|begin_of_box|>[[0,0,1000,1000]]<|end_of_box|>\nin the image.", 1,
                (const float[][5]){{0, 0, 1000, 1000, 0}});
    check_parse("spans present: bare lists ignored", "[[9,9,9,9]] then <|begin_of_box|>[[1,2,3,4]]<|end_of_box|> [[8,8]]",
                1, (const float[][5]){{1, 2, 3, 4, 0}});
    check_parse("think text skipped (spans)",
                "<think>It might be <|begin_of_box|>[[1,1,2,2]]<|end_of_box|> or [[3,3,4,4]]</think>"
                "Answer: <|begin_of_box|>[[10,20,30,40]]<|end_of_box|>",
                1, (const float[][5]){{10, 20, 30, 40, 0}});
    check_parse("think text skipped (bare)", "<think>maybe [[1,1,2,2]]?</think>The box is [[10,20,30,40]].", 1,
                (const float[][5]){{10, 20, 30, 40, 0}});
    check_parse("</think> only: text before it is thinking", "so [[1,1,2,2]]</think>answer [[5,5,6,6]]", 1,
                (const float[][5]){{5, 5, 6, 6, 0}});
    check_parse("unterminated think", "<think>let me see [[1,1,2,2]] and <|begin_of_box|>[[3,3,4,4]]", 0, NULL);
    check_parse("two think blocks", "<think>[[1,1,1,1]]</think>[[2,2,2,2]]<think>[[3,3,3,3]]</think>[[4,4]]", 2,
                (const float[][5]){{2, 2, 2, 2, 0}, {4, 4, 4, 4, 1}});
    check_parse("bare lists", "The box is [[10, 20, 30, 40]] and the point [[5,6]].", 2,
                (const float[][5]){{10, 20, 30, 40, 0}, {5, 6, 5, 6, 1}});
    check_parse("bare list of two boxes", "[[10,20,30,40],[50,60,70,80]]", 2,
                (const float[][5]){{10, 20, 30, 40, 0}, {50, 60, 70, 80, 0}});
    check_parse("bare single brackets are not boxes", "see [1,2,3,4] and [5, 6]", 0, NULL);
    check_parse("signs", "[[+1,-2,3,4]]", 1, (const float[][5]){{1, -2, 3, 4, 0}});

    // malformed
    check_parse("truncated list", "<|begin_of_box|>[[1,2,3", 0, NULL);
    check_parse("truncated after one box", "<|begin_of_box|>[[1,2,3,4],[5,6,7", 1, (const float[][5]){{1, 2, 3, 4, 0}});
    check_parse("missing end token", "<|begin_of_box|>[[1,2,3,4]]", 1, (const float[][5]){{1, 2, 3, 4, 0}});
    check_parse("begin inside an open span",
                "<|begin_of_box|>[[1,2,3,4]]<|begin_of_box|>[[5,6,7,8]]<|end_of_box|>", 2,
                (const float[][5]){{1, 2, 3, 4, 0}, {5, 6, 7, 8, 0}});
    check_parse("truncated special token", "[[1,2,3,4]] <|begin_of_b", 1, (const float[][5]){{1, 2, 3, 4, 0}});
    check_parse("end token only", "<|end_of_box|>[[1,2,3,4]]<|end_of_box|>", 1, (const float[][5]){{1, 2, 3, 4, 0}});
    check_parse("empty span", "<|begin_of_box|><|end_of_box|> [[1,2,3,4]]", 0, NULL);
    check_parse("non-numbers", "[[a,b,c,d]]", 0, NULL);
    check_parse("1e309", "[[1e309,0,0,0]]", 0, NULL);
    check_parse("beyond float range", "[[99999999999999999999999999999999999999999,0,0,0]]", 0, NULL);
    check_parse("nan/inf", "[[nan,inf,1,2]]", 0, NULL);
    check_parse("hex", "[[0x10,0,0,0]]", 0, NULL);
    check_parse("negative and > 1000 kept as written", "<|begin_of_box|>[[-5, 2000, 3, 4]]<|end_of_box|>", 1,
                (const float[][5]){{-5, 2000, 3, 4, 0}});
    check_parse("three numbers", "[[1,2,3]]", 0, NULL);
    check_parse("five numbers", "[[1,2,3,4,5]]", 0, NULL);
    check_parse("empty groups", "[[]] [[,]] [[1,]] [[,1,2]]", 0, NULL);
    check_parse("deeply nested", "[[[[[[1,2,3,4]]]]]]", 1, (const float[][5]){{1, 2, 3, 4, 0}});
    check_parse("nested garbage", "[[[,],[[1,2],x]]", 1, (const float[][5]){{1, 2, 1, 2, 1}});
    check_parse("unbalanced brackets", "]]]][[1,2,3,4]]]]][[[", 1, (const float[][5]){{1, 2, 3, 4, 0}});
    check_parse("empty string", "", 0, NULL);
    check_parse("NULL text", NULL, 0, NULL);

    // pathological sizes: no crash, linear time
    size_t big = 100 * 1024;
    char *s = xmalloc(big + 64);
    clock_t t0 = clock();
    memset(s, '[', big);
    s[big] = '\0';
    check_parse("100 KB of '['", s, 0, NULL);
    memcpy(s, "<|begin_of_box|>", 16);
    check_parse("100 KB of '[' in a span", s, 0, NULL);
    memset(s, '[', big);
    memset(s + 2, '9', big - 2);
    check_parse("100 KB number", s, 0, NULL);
    for (size_t i = 0; i < big; i += 6) memcpy(s + i, "[[1,2]", 6);
    s[big - big % 6] = '\0';
    check_parse("100 KB of '[[1,2]' (each an unterminated list)", s, (int)(big / 6), NULL);
    for (size_t i = 0; i + 16 <= big; i += 16) memcpy(s + i, "<|begin_of_box|>", 16);
    s[big - big % 16] = '\0';
    check_parse("100 KB of begin tokens", s, 0, NULL);
    for (size_t i = 0; i + 8 <= big; i += 8) memcpy(s + i, "</think>", 8);
    s[big - big % 8] = '\0';
    check_parse("100 KB of </think>", s, 0, NULL);
    for (size_t i = 0; i + 7 <= big; i += 7) memcpy(s + i, "<think>", 7);
    s[big - big % 7] = '\0';
    check_parse("100 KB of <think>", s, 0, NULL);
    memset(s, ' ', big);
    s[0] = '[';
    s[big / 2] = '[';
    s[big - 1] = 'x';
    s[big] = '\0';
    check_parse("'[' + 50 KB of blanks + '[' + 50 KB of blanks", s, 0, NULL);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(secs < 2.0, "pathological inputs parsed in %.3f s", secs);
    free(s);
}

static void check_px(const char *label, Box b, int w, int h, int x1, int y1, int x2, int y2) {
    int a, c, d, e;
    box_to_pixels(&b, w, h, &a, &c, &d, &e);
    CHECK(a == x1 && c == y1 && d == x2 && e == y2, "box_to_pixels %s on %dx%d: (%d,%d)-(%d,%d) (got (%d,%d)-(%d,%d))",
          label, w, h, x1, y1, x2, y2, a, c, d, e);
}

static void test_pixels(void) {
    check_px("box", (Box){100, 200, 300, 400, 0}, 1000, 500, 100, 100, 300, 200);
    check_px("swapped corners", (Box){300, 400, 100, 200, 0}, 1000, 500, 100, 100, 300, 200);
    check_px("full image", (Box){0, 0, 1000, 1000, 0}, 1000, 500, 0, 0, 999, 499);
    check_px("full image", (Box){0, 0, 1000, 1000, 0}, 97, 61, 0, 0, 96, 60);
    // 123*97/1000 = 11.931, 456*61/1000 = 27.816, 789*97/1000 = 76.533, 999*61/1000 = 60.939 (clamped to 60)
    check_px("rounding", (Box){123, 456, 789, 999, 0}, 97, 61, 12, 28, 77, 60);
    // 500*97/1000 = 48.5, 500*61/1000 = 30.5: half away from zero
    check_px("point, halves", (Box){500, 500, 500, 500, 1}, 97, 61, 49, 31, 49, 31);
    check_px("decimals", (Box){12.5f, 0.25f, 999.75f, 0.5f, 0}, 1000, 500, 13, 0, 999, 0);
    check_px("negative / > 1000 clamped", (Box){-5, 2000, 3, 4, 0}, 97, 61, 0, 0, 0, 60);
    check_px("huge", (Box){1e30f, -1e30f, 0, 0, 0}, 97, 61, 0, 0, 96, 0);
    check_px("nan", (Box){NAN, NAN, 1000, 1000, 0}, 97, 61, 0, 0, 96, 60);
}

// names in dir other than "." and ".."
static int dir_entries(const char *dir, char *names, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    names[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            n++;
            if (strlen(names) + strlen(e->d_name) + 2 < cap) strcat(strcat(names, e->d_name), " ");
        }
    closedir(d);
    return n;
}

static void test_draw(void) {
    char path[4096], dir[] = "/tmp/test_boxes.XXXXXX", out[4200], names[1024];
    snprintf(path, sizeof path, "%s/images/synth_200x150.png", test_data_dir());
    Image img;
    if (image_load(&img, path, 0) != 0) {
        CHECK(0, "load %s: %s", path, glm_errmsg);
        return;
    }
    CHECK(mkdtemp(dir) != NULL, "temp dir %s", dir);
    snprintf(out, sizeof out, "%s/boxes.png", dir);

    // 200x150: box 0 -> (20,15)-(80,75), box 1 -> (120,30)-(180,120), point 2 -> (100,135)
    const Box boxes[3] = {{100, 100, 400, 500, 0}, {600, 200, 900, 800, 0}, {500, 900, 500, 900, 1}};
    const int rect[2][4] = {{20, 15, 80, 75}, {120, 30, 180, 120}};
    const int t = 2, r = 4, pcx = 100, pcy = 135; // line width and point radius for a 200x150 image
    int rc = boxes_draw_png(out, &img, boxes, 3);
    CHECK(rc == 0, "boxes_draw_png %s%s%s", out, rc ? ": " : "", rc ? glm_errmsg : "");
    CHECK(dir_entries(dir, names, sizeof names) == 1 && !strcmp(names, "boxes.png "), "only boxes.png written (%s)",
          names);
    Image drawn;
    if (image_load(&drawn, out, 0) != 0) {
        CHECK(0, "read back %s: %s", out, glm_errmsg);
    } else {
        CHECK(drawn.w == img.w && drawn.h == img.h, "PNG is %dx%d", drawn.w, drawn.h);
        uint8_t col[3][3];
        for (int i = 0; i < 3; i++) box_color(i, col[i]);
        int bad_outline = 0, bad_far = 0, n_outline = 0, n_far = 0;
        for (int y = 0; y < img.h; y++)
            for (int x = 0; x < img.w; x++) {
                const uint8_t *p = drawn.rgb + ((size_t)y * img.w + x) * 3, *o = img.rgb + ((size_t)y * img.w + x) * 3;
                int on = -1; // box whose outline covers (x, y)
                for (int i = 0; i < 2; i++) {
                    const int *q = rect[i];
                    int inside = x >= q[0] && x <= q[2] && y >= q[1] && y <= q[3];
                    if (inside && (x < q[0] + t || x > q[2] - t || y < q[1] + t || y > q[3] - t)) on = i;
                }
                int dpt = (x - pcx) * (x - pcx) + (y - pcy) * (y - pcy);
                if (on >= 0) {
                    n_outline++;
                    bad_outline += memcmp(p, col[on], 3) != 0;
                } else if (dpt <= r * r) {
                    bad_outline += memcmp(p, col[2], 3) != 0;
                } else {
                    n_far++;
                    bad_far += memcmp(p, o, 3) != 0;
                }
            }
        // 2 px outlines of a 61x61 and a 61x91 rectangle
        CHECK(n_outline == (61 * 61 - 57 * 57) + (61 * 91 - 57 * 87), "outline pixel count %d", n_outline);
        CHECK(bad_outline == 0, "outline and point pixels have the box colours (%d wrong)", bad_outline);
        CHECK(bad_far == 0, "%d pixels off the boxes unchanged (%d changed)", n_far, bad_far);
        // the interior of a box is not filled
        CHECK(!memcmp(drawn.rgb + ((size_t)45 * img.w + 50) * 3, img.rgb + ((size_t)45 * img.w + 50) * 3, 3),
              "box interior unchanged");
        image_free(&drawn);
    }
    Image again;
    if (image_load(&again, path, 0) == 0) {
        CHECK(!memcmp(again.rgb, img.rgb, (size_t)img.w * img.h * 3), "the input image is not modified");
        image_free(&again);
    }

    // no boxes: a plain copy of the image
    rc = boxes_draw_png(out, &img, NULL, 0);
    if (rc == 0 && image_load(&drawn, out, 0) == 0) {
        CHECK(!memcmp(drawn.rgb, img.rgb, (size_t)img.w * img.h * 3), "no boxes: the image unchanged");
        image_free(&drawn);
    } else {
        CHECK(0, "no boxes: %s", glm_errmsg);
    }
    unlink(out);

    // errors: a missing directory, a directory in the way; nothing left behind
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/missing/boxes.png", dir);
    glm_errmsg[0] = '\0';
    rc = boxes_draw_png(bad, &img, boxes, 3);
    CHECK(rc == -1 && strstr(glm_errmsg, bad), "missing directory fails: %s", glm_errmsg);
    CHECK(dir_entries(dir, names, sizeof names) == 0, "missing directory: nothing written (%s)", names);
    snprintf(bad, sizeof bad, "%s/adir", dir);
    mkdir(bad, 0700);
    glm_errmsg[0] = '\0';
    rc = boxes_draw_png(bad, &img, boxes, 3);
    CHECK(rc == -1 && strstr(glm_errmsg, bad), "a directory in the way fails: %s", glm_errmsg);
    CHECK(dir_entries(dir, names, sizeof names) == 1 && !strcmp(names, "adir "), "directory in the way: no temp left (%s)",
          names);
    rmdir(bad);
    Image empty = {0, 0, NULL};
    CHECK(boxes_draw_png(out, &empty, boxes, 3) == -1 && !file_exists(out), "no image fails: %s", glm_errmsg);
    CHECK(boxes_draw_png(out, &img, NULL, 2) == -1 && !file_exists(out), "NULL boxes fail: %s", glm_errmsg);

    uint8_t c[8][3];
    int distinct = 1;
    for (int i = 0; i < 8; i++) box_color(i, c[i]);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < i; j++) distinct &= memcmp(c[i], c[j], 3) != 0;
    CHECK(distinct, "8 distinct box colours");

    rmdir(dir);
    image_free(&img);
}

int main(void) {
    test_parse();
    test_pixels();
    test_draw();
    return test_done();
}
