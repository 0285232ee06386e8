// SPDX-License-Identifier: MIT
// test_pdf.c - pdf.c: the %PDF- check, --pages parsing, pdftoppm's pixel size and the DPI rule against
// smart_resize, the page of each grounding box, and (when poppler-utils is installed) rendering tests/data/pdf/*.pdf
// from a file and from memory: the same pixels both ways, the sizes predicted, the bad documents refused with one
// line, no file descriptor left open.
#include "pdf.h"

#include "test_util.h"

#include <dirent.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

// open file descriptors of this process
static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

// 1 when the program is on $PATH
static int have_program(const char *p) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", p);
    return system(cmd) == 0;
}

static void test_magic(void) {
    uint8_t buf[2048];
    memset(buf, ' ', sizeof buf);
    CHECK(!pdf_is_pdf(buf, sizeof buf), "no header: not a PDF");
    memcpy(buf, "%PDF-1.7", 8);
    CHECK(pdf_is_pdf(buf, sizeof buf), "%%PDF- at byte 0");
    memset(buf, ' ', sizeof buf);
    memcpy(buf + 500, "%PDF-1.4", 8);
    CHECK(pdf_is_pdf(buf, sizeof buf), "%%PDF- at byte 500 (junk before the header, as readers accept)");
    memset(buf, ' ', sizeof buf);
    memcpy(buf + 1100, "%PDF-1.4", 8);
    CHECK(!pdf_is_pdf(buf, sizeof buf), "%%PDF- past the first 1024 bytes: not a PDF");
    CHECK(!pdf_is_pdf((const uint8_t *)"%PDF", 4), "a truncated header is not a PDF");
}

// parse spec against npages/max and compare with want[n] (n < 0: an error whose message contains err)
static void pages_case(const char *spec, int npages, int max, const int *want, int n, const char *err) {
    int *got = NULL;
    int k = pdf_parse_pages(spec, npages, max, &got);
    if (n < 0) {
        CHECK(k < 0 && strstr(glm_errmsg, err), "--pages '%s' of %d (max %d) refused: %s", spec ? spec : "(all)",
              npages, max, glm_errmsg);
    } else {
        int same = k == n;
        for (int i = 0; same && i < n; i++) same = got[i] == want[i];
        CHECK(same, "--pages '%s' of %d pages: %d pages as expected", spec ? spec : "(all)", npages, k);
    }
    free(got);
}

static void test_pages(void) {
    pages_case("1-3,7", 10, 16, (int[]){1, 2, 3, 7}, 4, NULL);
    pages_case("7,1-3", 10, 16, (int[]){1, 2, 3, 7}, 4, NULL); // page order
    pages_case("2,2,1-2", 10, 16, (int[]){1, 2}, 2, NULL);     // once each
    pages_case("8-", 10, 16, (int[]){8, 9, 10}, 3, NULL);
    pages_case(NULL, 3, 16, (int[]){1, 2, 3}, 3, NULL);
    pages_case("", 2, 16, (int[]){1, 2}, 2, NULL);
    pages_case("5000", 5000, 16, (int[]){5000}, 1, NULL);
    pages_case(NULL, 3000, 16, NULL, -1, "--pages");             // thousands of pages: refused, not truncated
    pages_case("1-20", 30, 16, NULL, -1, "more than --max-pages 16");
    pages_case("0", 5, 16, NULL, -1, "not a range");
    pages_case("3-1", 5, 16, NULL, -1, "not a range");
    pages_case("6", 5, 16, NULL, -1, "past the end");
    pages_case("6-", 5, 16, NULL, -1, "page 6 is past the end"); // was "'6-5' is not a range of pages"
    pages_case("5-", 5, 16, (int[]){5}, 1, NULL);
    pages_case("1,,2", 5, 16, NULL, -1, "not a list");
    pages_case("a", 5, 16, NULL, -1, "not a list");
    pages_case("1-2x", 5, 16, NULL, -1, "not a list");
    pages_case("99999999999", 5, 16, NULL, -1, "not a list");
    pages_case(NULL, 0, 16, NULL, -1, "no pages");
}

static void test_dpi_rule(void) {
    ProcConfig pc;
    proc_config_defaults(&pc); // GLM-4.5V: max_pixels 11760000, patch 14, merge 2, temporal 2
    int w, h;
    pdf_page_pixels(612, 792, 150, &w, &h);
    CHECK(w == 1275 && h == 1650, "Letter at 150 dpi: %d x %d (1275 x 1650)", w, h);
    pdf_page_pixels(216, 280, 150, &w, &h);
    CHECK(w == 450 && h == 584, "216 x 280 pt at 150 dpi: %d x %d (450 x 584, rounded up)", w, h);
    CHECK(pdf_auto_dpi(612, 792, &pc) == 150, "Letter: 150 dpi");
    CHECK(pdf_auto_dpi(595.276, 841.89, &pc) == 150, "A4: 150 dpi");
    CHECK(pdf_auto_dpi(792, 1224, &pc) == 150, "Tabloid: 150 dpi");
    // A1 (1684 x 2384 pt) is too large at 150 dpi: the highest DPI that smart_resize does not shrink
    int d = pdf_auto_dpi(1684, 2384, &pc);
    pdf_page_pixels(1684, 2384, d, &w, &h);
    int fits = pdf_fits_processor(w, h, &pc);
    pdf_page_pixels(1684, 2384, d + 1, &w, &h);
    CHECK(d > PDF_DPI_MIN && d < 150 && fits && !pdf_fits_processor(w, h, &pc),
          "A1: %d dpi, the highest that is not shrunk", d);
    CHECK(pdf_auto_dpi(14400, 14400, &pc) == PDF_DPI_MIN, "a 200 in page: the floor, %d dpi", PDF_DPI_MIN);
    CHECK(pdf_image_tokens(1275, 1650, &pc) == 2714 && pdf_image_tokens(1241, 1754, &pc) == 2772 &&
              pdf_image_tokens(600, 750, &pc) == 567 && pdf_image_tokens(10, 5000, &pc) == -1,
          "visual tokens: Letter 2714, A4 2772 at 150 dpi; 600 x 750 px 567; 1:500 refused");
    CHECK(pdf_fits_processor(1275, 1650, &pc), "1275 x 1650 is only rounded by smart_resize");
    CHECK(!pdf_fits_processor(4000, 4000, &pc), "4000 x 4000 is shrunk by smart_resize");
    // a small max_pixels lowers a Letter page
    pc.max_pixels = 2 * 800 * 1000;
    d = pdf_auto_dpi(612, 792, &pc);
    CHECK(d < 150 && d > PDF_DPI_MIN, "Letter with max_pixels 1600000: %d dpi", d);
}

static void test_box_pages(void) {
    int pages[3] = {2, 5, 9}, out[4];
    const char *t1 = "On page 5 the total is <|begin_of_box|>[[1,2,3,4]]<|end_of_box|>; page 9 has "
                     "<|begin_of_box|>[[5,6,7,8],[1,1,2,2]]<|end_of_box|> and again <|begin_of_box|>[[0,0,9,9]]"
                     "<|end_of_box|>";
    pdf_box_pages(t1, 4, pages, 3, out);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 2 && out[3] == 2, "boxes on the pages named before them: %d %d %d %d",
          out[0], out[1], out[2], out[3]);
    pdf_box_pages("<|begin_of_box|>[[1,2,3,4]]<|end_of_box|>", 1, pages, 3, out);
    CHECK(out[0] == 0, "no page named: the first page");
    pdf_box_pages("Page 3: [[1,2,3,4]]", 1, pages, 3, out);
    CHECK(out[0] == 2, "'Page 3' is not a document page: the third page given (%d)", out[0]);
    pdf_box_pages("\xe7\xac\xac" "9\xe9\xa1\xb5 <|begin_of_box|>[[1,2,3,4]]<|end_of_box|>", 1, pages, 3, out);
    CHECK(out[0] == 2, "a Chinese page mention (%d)", out[0]);
    pdf_box_pages("<think>page 9 maybe</think>see p. 5 <|begin_of_box|>[[1,2,3,4]]<|end_of_box|>", 1, pages, 3, out);
    CHECK(out[0] == 1, "'p. 5' after the thinking (%d)", out[0]);
    pdf_box_pages("homepage 9 [[1,2,3,4]]", 1, pages, 3, out);
    CHECK(out[0] == 0, "'homepage 9' is no page mention (%d)", out[0]);
}

static void test_info(void) {
    const char *info = "Pages:           2\nPage    1 size:  200 x 300 pts\nPage    1 rot:   90\n"
                       "Page    1 MediaBox:      0.00     0.00   600.00   800.00\n"
                       "Page    1 CropBox:     100.00   100.00   300.00   400.00\n"
                       "Page    2 size:  595.276 x 841.89 pts (A4)\nPage    2 rot:   0\n";
    double w = 0, h = 0;
    CHECK(!pdf_info_page_size(info, 1, &w, &h) && w == 800 && h == 600, "pdfinfo: the MediaBox, rotated: %g x %g", w,
          h);
    CHECK(!pdf_info_page_size(info, 2, &w, &h) && w == 595.276 && h == 841.89, "pdfinfo: 'size:' when no MediaBox line");
    CHECK(pdf_info_page_size(info, 3, &w, &h) < 0, "pdfinfo: a page it does not list");
    Image im;
    const uint8_t ppm[] = "P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06";
    CHECK(!pdf_ppm_parse(ppm, sizeof ppm - 1, &im) && im.w == 2 && im.h == 1 && im.rgb[5] == 6, "PPM 2 x 1");
    image_free(&im);
    CHECK(pdf_ppm_parse(ppm, sizeof ppm - 2, &im) < 0 && !im.rgb, "PPM one byte short: refused");
    CHECK(pdf_ppm_parse((const uint8_t *)"P6\n99999999999 1\n255\n", 20, &im) < 0, "PPM with an absurd width: refused");
}

static void test_render(void) {
    if (!have_program("pdftoppm") || !have_program("pdfinfo")) {
        printf("# skipped: pdftoppm / pdfinfo not installed (Debian poppler-utils)\n");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/pdf/doc.pdf", test_data_dir());
    ProcConfig pc;
    proc_config_defaults(&pc);
    PdfOptions o = {.max_image_pixels = 100000000};
    const int fds = count_fds();
    PdfDoc d, dm;
    int rc = pdf_render_file(&d, path, &o, &pc);
    CHECK(rc == 0 && d.n == 4 && d.doc_pages == 4, "doc.pdf: 4 pages rendered (%s)", rc ? glm_errmsg : "");
    if (rc) return;
    CHECK(!strncmp(d.renderer, "pdftoppm ", 9) && strlen(d.renderer) > 9, "renderer recorded: %s", d.renderer);
    const double pt[4][2] = {{288, 360}, {360, 216}, {216, 280}, {288, 216}}; // page 4: /Rotate 90
    for (int i = 0; i < 4; i++) {
        int w, h;
        pdf_page_pixels(pt[i][0], pt[i][1], 150, &w, &h);
        CHECK(d.pages[i].page == i + 1 && d.pages[i].dpi == 150 && d.pages[i].w_pt == pt[i][0] &&
                  d.pages[i].h_pt == pt[i][1] && d.pages[i].img.w == w && d.pages[i].img.h == h,
              "page %d: %g x %g pt at %d dpi = %d x %d px (predicted %d x %d)", d.pages[i].page, d.pages[i].w_pt,
              d.pages[i].h_pt, d.pages[i].dpi, d.pages[i].img.w, d.pages[i].img.h, w, h);
    }
    // the same bytes from memory: the same pixels
    size_t len;
    char *bytes = read_file(path, &len, 1 << 24);
    o.pages = "2,4";
    rc = bytes ? pdf_render_mem(&dm, (const uint8_t *)bytes, len, "doc.pdf", &o, &pc) : -1;
    int same = rc == 0 && dm.n == 2;
    for (int i = 0; same && i < 2; i++) {
        const Image *a = &dm.pages[i].img, *b = &d.pages[i == 0 ? 1 : 3].img;
        same = a->w == b->w && a->h == b->h && !memcmp(a->rgb, b->rgb, (size_t)a->w * a->h * 3);
    }
    CHECK(same, "pages 2 and 4 from memory equal those from the file (%s)", rc ? glm_errmsg : "");
    if (!rc) pdf_doc_free(&dm);
    // a fixed DPI, and rendering twice gives the same pixels
    o.pages = "1", o.dpi = 100;
    PdfDoc a, b;
    int ra = pdf_render_file(&a, path, &o, &pc), rb = pdf_render_file(&b, path, &o, &pc);
    CHECK(!ra && !rb && a.pages[0].img.w == 400 && a.pages[0].img.h == 500 && a.pages[0].dpi == 100 &&
              !memcmp(a.pages[0].img.rgb, b.pages[0].img.rgb, 400 * 500 * 3),
          "--dpi 100: 400 x 500, the same pixels twice");
    if (!ra) pdf_doc_free(&a);
    if (!rb) pdf_doc_free(&b);
    o.dpi = 0, o.pages = NULL;
    // bad documents: one line each
    const char *bad[][2] = {{"encrypted.pdf", "encrypted"}, {"zero.pdf", "no pages"}, {"damaged.pdf", "damaged"},
                            {"huge.pdf", "--max-image-pixels"}, {"tall.pdf", "aspect ratio"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/pdf/%s", test_data_dir(), bad[i][0]);
        PdfDoc x;
        rc = pdf_render_file(&x, p, &o, &pc);
        CHECK(rc < 0 && strstr(glm_errmsg, bad[i][1]) && !strchr(glm_errmsg, '\n') && x.n == 0 && !x.pages,
              "%s refused: %s", bad[i][0], glm_errmsg);
    }
    rc = pdf_render_mem(&dm, (const uint8_t *)"GIF89a", 6, "x.pdf", &o, &pc);
    CHECK(rc < 0 && strstr(glm_errmsg, "not a PDF"), "bytes that are not a PDF: %s", glm_errmsg);
    // a truncated copy in memory
    rc = bytes ? pdf_render_mem(&dm, (const uint8_t *)bytes, len / 3, "cut.pdf", &o, &pc) : -1;
    CHECK(rc < 0 && strstr(glm_errmsg, "cut.pdf") && strstr(glm_errmsg, "truncated"), "a PDF cut to a third: %s",
          glm_errmsg);
    free(bytes);
    // boxes drawn on the pages they belong to: OUT-p1.png and OUT-p3.png, nothing for page 2
    char dir[] = "/tmp/glm4v-test-pdf-XXXXXX";
    if (mkdtemp(dir)) {
        char out[600], p1[700], p2[700], p3[700];
        snprintf(out, sizeof out, "%s/boxes.png", dir);
        snprintf(p1, sizeof p1, "%s/boxes-p1.png", dir);
        snprintf(p2, sizeof p2, "%s/boxes-p2.png", dir);
        snprintf(p3, sizeof p3, "%s/boxes-p3.png", dir);
        Box *bx = NULL;
        const char *ans = "Page 3: <|begin_of_box|>[[100,100,500,500]]<|end_of_box|>, page 1: "
                          "<|begin_of_box|>[[0,0,1000,1000]]<|end_of_box|>";
        int nb = boxes_parse(ans, &bx), pg[2] = {-1, -1}, pages[4] = {1, 2, 3, 4};
        pdf_box_pages(ans, nb, pages, 4, pg);
        char written[4][4200];
        int files = nb == 2 ? pdf_draw_boxes(out, &d, bx, pg, nb, written) : -1;
        Image im = {0};
        int loaded = files == 2 && !image_load(&im, p3, 0);
        uint8_t c0[3];
        box_color(0, c0);
        int x1, y1, x2, y2;
        box_to_pixels(&bx[0], d.pages[2].img.w, d.pages[2].img.h, &x1, &y1, &x2, &y2);
        const uint8_t *px = loaded ? im.rgb + ((size_t)y1 * im.w + (x1 + x2) / 2) * 3 : NULL;
        CHECK(files == 2 && pg[0] == 2 && pg[1] == 0 && file_exists(p1) && file_exists(p3) && !file_exists(p2) &&
                  !strcmp(written[0], p1) && !strcmp(written[1], p3) && loaded && im.w == d.pages[2].img.w &&
                  px && !memcmp(px, c0, 3),
              "--draw-boxes on a PDF: boxes-p1.png and boxes-p3.png (box 1's outline at (%d, %d) of page 3), no p2",
              (x1 + x2) / 2, y1);
        CHECK(pdf_px_to_pt(150, 150) == 72 && fabs(pdf_px_to_pt(x1, 150) - x1 * 0.48) < 1e-9, "pixels at 150 dpi * 0.48 = points");
        // the CLI's line: box 1 (100..500 of 1000) on page 3, 450 x 584 px at 150 dpi: round(100 * 450 / 1000) = 45,
        // round(100 * 584 / 1000) = 58, 225, 292 px; x 72 / 150 = 21.6, 27.84, 108, 140.16 pt
        char line[512];
        pdf_box_line(line, sizeof line, 0, &bx[0], &d.pages[2], "doc.pdf");
        CHECK(!strcmp(line, "box 1: (45, 58)-(225, 292) px = (21.6, 27.8)-(108.0, 140.2) pt on page 3 of doc.pdf"),
              "the box line in pixels and points: %s", line);
        Box pt = {500, 250, 500, 250, 1};
        pdf_box_line(line, sizeof line, 1, &pt, &d.pages[0], "doc.pdf"); // page 1: 600 x 750 px
        CHECK(!strcmp(line, "point 2: (300, 188) px = (144.0, 90.2) pt on page 1 of doc.pdf"), "the point line: %s", line);
        image_free(&im);
        free(bx);
        remove(p1), remove(p3), rmdir(dir);
    }
    pdf_doc_free(&d);
    CHECK(count_fds() == fds, "no file descriptor left open (%d before, %d after)", fds, count_fds());
}

int main(void) {
    test_magic();
    test_pages();
    test_dpi_rule();
    test_box_pages();
    test_info();
    test_render();
    return test_done();
}
