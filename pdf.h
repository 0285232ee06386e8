// SPDX-License-Identifier: MIT
// pdf.h - PDF documents as page images (pdf.c): the pages a user picks are rendered by poppler's pdftoppm, run as a
// separate program (GPL code is run, never linked, as the video path runs ffmpeg), and come back as RGB images that
// go through the same Glm4vImageProcessor steps as any image. There is no PDF parser here: pdfinfo counts the pages
// and gives their sizes, pdftoppm draws them.
//
// Rendering, one program run per page, the PDF given by path (a file) or on stdin from a memfd (bytes in memory, the
// server's case; nothing is written to disk, no temporary file or folder exists at any time):
//   pdfinfo FILE                          -> "Pages: N" (encrypted / damaged / zero pages are refused here)
//   pdfinfo -box -f A -l B FILE           -> each wanted page's MediaBox in points and rotation
//   pdftoppm -r DPI -f K -l K -singlefile FILE   -> binary PPM (P6) on stdout = page K, RGB, MediaBox, rotation applied
// Every run has stdin from /dev/null (or the in-memory document), stdout/stderr on pipes, its own process group, no
// core files, an address-space limit (ulimit -v), and a time limit (PdfOptions.timeout_s): past it the group is
// killed (SIGKILL) and the document refused. The output is read with a byte limit (max_image_pixels * 3 + header): a renderer that writes more is killed.
//
// The DPI rule (o->dpi == 0): each page is rendered at the highest whole DPI d <= PDF_DPI_DEFAULT (150) at which the
// rendered page, ceil(width_pt * d / 72) x ceil(height_pt * d / 72) pixels, is not shrunk by the processor's
// smart_resize (temporal_patch_size * h_bar * w_bar <= ProcConfig.max_pixels, h_bar and w_bar the sizes rounded to
// multiples of patch_size * merge_size), never below PDF_DPI_MIN (72; a page still too large at 72 DPI is rendered at
// 72 and smart_resize shrinks it as it shrinks any large image). 150 DPI keeps 6 pt print about 12 px high (legible
// to the vision tower's 14 px patches); with GLM-4.5V's max_pixels (11760000, i.e. 5880000 pixels per image) Letter,
// A4 (2772 visual tokens), A3 and Tabloid pages keep 150 DPI, A2 gets 122 and A1 86.
// `--dpi N` (o->dpi > 0) renders every page at N DPI, whatever smart_resize then does with it.
// Deterministic: the same file, pages, DPI and pdftoppm version give the same pixels (recorded: PdfDoc.renderer).
#ifndef GLM4V_PDF_H
#define GLM4V_PDF_H

#include "boxes.h"
#include "preprocess.h"

#define PDF_DPI_DEFAULT 150   // the automatic rule's starting DPI
#define PDF_DPI_MIN 72        // the automatic rule never goes below this
#define PDF_DPI_MAX 1200      // --dpi above this is refused
#define PDF_MAX_PAGES 16      // default page limit of one document (--max-pages)
#define PDF_TIMEOUT_S 20.0    // default time limit of each program run (the page count, one page), seconds
#define PDF_MEM_LIMIT_MB 4096 // address-space limit of each renderer run (ulimit -v), MiB, beyond the page's pixels

// how a document becomes pages
typedef struct {
    const char *pages;        // "1-3,7" (pages, ranges A-B, A- = to the end); NULL or "" = every page
    int max_pages;            // more selected pages than this are refused, never truncated (0: PDF_MAX_PAGES)
    int dpi;                  // 0: the automatic rule above; > 0: every page at this DPI
    int64_t max_image_pixels; // a page that would render larger than this many pixels is refused (0: no limit)
    double timeout_s;         // time limit of each program run (the page count, one page), s (0: PDF_TIMEOUT_S)
    int mem_limit_mb;         // address-space limit of each renderer run beyond the page's pixels (0: default)
    int from_request;         // 1: pages and dpi came from a request's "pages" / "dpi" fields (messages name those,
                              // not the CLI's --pages / --dpi)
} PdfOptions;

// one rendered page
typedef struct {
    int page;          // page number in the document, 1-based
    int dpi;           // resolution it was rendered at
    double w_pt, h_pt; // size in PDF points (1/72 in) as drawn: the MediaBox, /Rotate applied
    Image img;         // pixels [h, w, 3]: exactly what pdftoppm -r dpi -f page -l page -singlefile writes
} PdfPage;

// the rendered pages of one document
typedef struct {
    int doc_pages;      // pages in the document
    int n;              // pages rendered (the selection)
    PdfPage *pages;     // [n] in page order
    char renderer[64];  // renderer name and version, "pdftoppm 22.12.0"
} PdfDoc;

// 1 when the bytes are a PDF: "%PDF-" within the first 1024 bytes (where readers look for it)
int pdf_is_pdf(const uint8_t *buf, size_t len);
// 1 when the last bytes of a document (its final 1024) hold the %%EOF marker every complete PDF ends with: documents
// without it (cut short: an interrupted download or copy) are refused before poppler rebuilds a partial one
int pdf_has_eof(const uint8_t *tail, size_t len);
// 1 when the file starts as a PDF (pdf_is_pdf on its first 1024 bytes), 0 when not or unreadable
int pdf_file_is_pdf(const char *path);
// render the selected pages of a PDF file; name labels the messages. -1 + glm_errmsg (one line) on error
int pdf_render_file(PdfDoc *d, const char *path, const PdfOptions *o, const ProcConfig *pc);
// the same from bytes in memory (handed to the renderer through an in-memory file on its stdin)
int pdf_render_mem(PdfDoc *d, const uint8_t *data, size_t len, const char *name, const PdfOptions *o,
                   const ProcConfig *pc);
void pdf_doc_free(PdfDoc *d);
// the visual tokens of a rendered document (pdf_image_tokens of each page) and its one-line cost into line:
// "report.pdf: 3 pages, 1 x 1560 + 2 x 1204 = 3968 visual tokens" (runs of equal counts, in page order); -1 when
// a page cannot be processed
int64_t pdf_cost_line(const PdfDoc *d, const char *name, const ProcConfig *pc, char *line, size_t cap);

// the size pdftoppm draws a page at (points, /Rotate applied) from pdfinfo -box's "Page    N MediaBox: x0 y0 x1 y1"
// (else "Page    N size: W x H pts", the CropBox) and "Page    N rot:" lines; -1 when the page is missing or its size
// is not positive and finite
int pdf_info_page_size(const char *info, int page, double *w_pt, double *h_pt);
// a binary PPM (P6, maxval 255, nothing after the pixels) as pdftoppm writes it -> img (malloc'd); -1 when malformed
int pdf_ppm_parse(const uint8_t *buf, size_t len, Image *img);
// --pages: parse spec against a document of npages pages into ascending, distinct page numbers (malloc'd *out);
// returns the count, or -1 + glm_errmsg (syntax, a page outside 1..npages, more than max_pages selected)
int pdf_parse_pages(const char *spec, int npages, int max_pages, int **out);
// pixel size of a page of w_pt x h_pt points rendered at dpi (pdftoppm's ceil(pt * dpi / 72))
void pdf_page_pixels(double w_pt, double h_pt, int dpi, int *w, int *h);
// 1 when an image of w x h pixels goes through smart_resize without being shrunk (only rounded)
int pdf_fits_processor(int w, int h, const ProcConfig *pc);
// the automatic DPI rule for a page of w_pt x h_pt points (see above)
int pdf_auto_dpi(double w_pt, double h_pt, const ProcConfig *pc);
// visual tokens an image of w x h pixels takes after smart_resize: (h' / patch) * (w' / patch) / merge^2, or -1 when
// the processor refuses it (a server's token budget can be checked before any preprocessing)
int64_t pdf_image_tokens(int w, int h, const ProcConfig *pc);

// grounding on documents: the page (index into pages[0..npages), in page order) that each of the nboxes boxes of an
// answer refers to: the last "page N" / "p. N" / "第N页" written before the box names document page N when N is one
// of pages[], else the N-th page given when 1 <= N <= npages; a box with no page named before it belongs to the first
// page. out[nboxes]. The boxes are counted as boxes_parse counts them (box spans, else bare [[...]] lists, after the
// thinking); the page mentions are read from the whole text, thinking included
void pdf_box_pages(const char *text, int nboxes, const int *pages, int npages, int *out);
// draw boxes[i] on page page_of[i] (an index into d->pages, whose pixels must still be there): one PNG per page that
// has boxes, named after out_png with "-p<page number>" before its .png ("boxes.png" -> "boxes-p3.png"); the
// names written go to written[d->n][4200] when not NULL. Returns the files written, or -1 + glm_errmsg (files already
// written stay)
int pdf_draw_boxes(const char *out_png, const PdfDoc *d, const Box *boxes, const int *page_of, int n,
                   char (*written)[4200]);
// the line the CLI prints for box i (0-based) of an answer on page p of the document name: the box in the page's
// pixels and in PDF points from its top-left corner, "box 1: (45, 58)-(225, 292) px = (21.6, 27.8)-(108.0, 140.2) pt
// on page 3 of doc.pdf" (a point: "point 1: (45, 58) px = (21.6, 27.8) pt on page 3 of doc.pdf")
void pdf_box_line(char *out, size_t cap, int i, const Box *b, const PdfPage *p, const char *name);
// a pixel coordinate of a page rendered at dpi in PDF points (1/72 in) from the page's top-left corner
static inline double pdf_px_to_pt(double px, int dpi) { return px * 72.0 / dpi; }

#endif
