// SPDX-License-Identifier: MIT
// test_boxes_corpus.c - the grounding-box corpus (tests/data/boxes_corpus.json: answer texts with their boxes, and
// for a PDF the page of each box, written by hand from GLM-4.5V's box format): boxes.c's boxes_parse and pdf.c's
// pdf_box_pages must give exactly the listed boxes and pages. With --json it prints what they give, one result per
// answer, for tests/webui_check.py, which holds the chat page's parser (webui/boxes.js) against it in the browser.
#include "boxes.h"
#include "fileio.h"
#include "json.h"
#include "pdf.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

// one box of the corpus ([x1, y1, x2, y2] or a point [x, y]) equals b
static int box_equal(const cJSON *want, const Box *b) {
    const int k = cJSON_GetArraySize(want);
    float v[4];
    int ok = 1;
    for (int i = 0; i < k && i < 4; i++) v[i] = (float)json_number(cJSON_GetArrayItem(want, i), &ok);
    if (k == 2) v[2] = v[0], v[3] = v[1];
    return ok && (k == 2 || k == 4) && b->is_point == (k == 2) && b->x1 == v[0] && b->y1 == v[1] && b->x2 == v[2] &&
           b->y2 == v[3];
}

int main(int argc, char **argv) {
    const int json = argc > 1 && !strcmp(argv[1], "--json");
    char path[4096];
    snprintf(path, sizeof path, "%s/boxes_corpus.json", test_data_dir());
    size_t len;
    char *text = read_file(path, &len, 1 << 24);
    cJSON *corpus = text ? json_parse(text, len, path) : NULL;
    free(text);
    if (!cJSON_IsArray(corpus)) {
        printf("not ok - %s: %s\n", path, glm_errmsg);
        return 1;
    }
    if (json) printf("[");
    int idx = 0;
    for (const cJSON *c = corpus->child; c; c = c->next, idx++) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "text"));
        const char *note = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "note"));
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "boxes");
        const cJSON *pages = cJSON_GetObjectItemCaseSensitive(c, "pages");
        const cJSON *want_pg = cJSON_GetObjectItemCaseSensitive(c, "page_of");
        Box *b = NULL;
        const int n = boxes_parse(t ? t : "", &b);
        int *pg = NULL, np = pages ? cJSON_GetArraySize(pages) : 0;
        if (np > 0 && n > 0) {
            int *pn = malloc((size_t)np * sizeof(int)), ok = 1;
            pg = malloc((size_t)n * sizeof(int));
            for (int i = 0; i < np; i++) pn[i] = (int)json_number(cJSON_GetArrayItem(pages, i), &ok);
            pdf_box_pages(t, n, pn, np, pg);
            free(pn);
        }
        if (json) {
            printf("%s\n{\"boxes\": [", idx ? "," : "");
            for (int i = 0; i < n; i++)
                printf("%s[%.17g, %.17g, %.17g, %.17g, %d]", i ? ", " : "", (double)b[i].x1, (double)b[i].y1,
                       (double)b[i].x2, (double)b[i].y2, b[i].is_point);
            printf("], \"page_of\": [");
            for (int i = 0; pg && i < n; i++) printf("%s%d", i ? ", " : "", pg[i]);
            printf("]}");
        } else {
            int ok = t && cJSON_IsArray(want) && cJSON_GetArraySize(want) == n;
            for (int i = 0; ok && i < n; i++) ok = box_equal(cJSON_GetArrayItem(want, i), &b[i]);
            CHECK(ok, "corpus %d (%s): %d box(es) as listed", idx, note ? note : "", n);
            if (pages) {
                int pok = cJSON_GetArraySize(want_pg) == n, okn = 1;
                for (int i = 0; pok && i < n; i++) pok = pg && (int)json_number(cJSON_GetArrayItem(want_pg, i), &okn) == pg[i];
                CHECK(pok && okn, "corpus %d (%s): the page of each box as listed", idx, note ? note : "");
            }
        }
        free(b);
        free(pg);
    }
    if (json) printf("\n]\n");
    cJSON_Delete(corpus);
    return json ? 0 : test_done();
}
