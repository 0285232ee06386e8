// SPDX-License-Identifier: MIT
// fuzz_pdf.c - libFuzzer target: pdf.c's parsers of outside text on arbitrary bytes (the programs themselves are
// not run): the --pages list against a document of 1-65536 pages and a page limit, the page of each grounding box
// in a model's answer, pdfinfo's page-size lines, pdftoppm's PPM output, the %PDF- check, and the DPI rule. The first
// byte picks the parser, the next two give the page count.
#include "pdf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const int sel = data[0] % 5, npages = 1 + (data[1] | data[2] << 8);
    data += 3, size -= 3;
    char *text = malloc(size + 1); // NUL-terminated copy for the text parsers
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    if (sel == 0) {
        int *pages = NULL;
        int n = pdf_parse_pages(text, npages, 1 + npages % 64, &pages);
        for (int i = 1; i < n; i++)
            if (pages[i] <= pages[i - 1] || pages[i] > npages) abort(); // ascending, distinct, in range
        free(pages);
    } else if (sel == 1) {
        Box *b = NULL;
        int nb = boxes_parse(text, &b), pages[64], out[256];
        int np = 1 + npages % 64;
        for (int i = 0; i < np; i++) pages[i] = 1 + (i * 7 + npages) % 1000;
        if (nb > 256) nb = 256;
        pdf_box_pages(text, nb, pages, np, out);
        for (int i = 0; i < nb; i++)
            if (out[i] < 0 || out[i] >= np) abort();
        free(b);
    } else if (sel == 2) {
        double w, h;
        if (!pdf_info_page_size(text, npages, &w, &h) && !(w > 0 && h > 0)) abort();
    } else if (sel == 3) {
        Image img;
        if (!pdf_ppm_parse(data, size, &img)) image_free(&img);
    } else {
        (void)pdf_is_pdf(data, size);
        ProcConfig pc;
        proc_config_defaults(&pc);
        double w = 1 + (size ? data[0] : 0) + (size > 1 ? data[1] << 8 : 0), h = 1 + npages;
        int d = pdf_auto_dpi(w, h, &pc);
        if (d < PDF_DPI_MIN || d > PDF_DPI_DEFAULT) abort();
    }
    free(text);
    return 0;
}
