// SPDX-License-Identifier: MIT
// pdf.c - PDF pages as images through poppler's pdfinfo / pdftoppm programs (pdf.h): the page selection (--pages),
// the DPI rule against the processor's max_pixels, running the programs under a time limit, a memory limit and an
// output limit (no temporary files: the pages stream back as PPM on a pipe), and the grounding boxes' page.
// No Python counterpart: users render pages themselves (pdf2image = pdftoppm -r DPI) before Glm4vImageProcessor.
#include "pdf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ERR_KEEP 4096     // bytes of a program's stderr kept for its error message
#define INFO_MAX (8 << 20) // bytes of pdfinfo output read at most (about 200000 pages' size lines)

// ---------------------------------------------------------------------------- running a program

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// what one program run gave
typedef struct {
    uint8_t *out;       // stdout bytes (malloc'd, NUL-terminated)
    size_t nout;        // their count
    char err[ERR_KEEP]; // the start of stderr (NUL-terminated)
    int status;         // exit status, 128 + signal when killed by one, -1 when it could not be waited for
    int timed_out;      // 1: killed at the deadline
    int too_long;       // 1: killed for writing more than max_out bytes
} RunResult;

// append n bytes to a growing buffer of at most cap bytes (+ a NUL); -1 when it would pass cap
static int buf_append(uint8_t **b, size_t *n, size_t *room, const uint8_t *src, size_t k, size_t cap) {
    if (k > cap - *n) return -1;
    if (*n + k + 1 > *room) {
        size_t r = *room ? *room : 65536;
        while (r < *n + k + 1) r = r > SIZE_MAX / 2 ? SIZE_MAX : 2 * r;
        if (r > cap + 1) r = cap + 1;
        uint8_t *nb = realloc(*b, r);
        if (!nb) return -1;
        *b = nb, *room = r;
    }
    memcpy(*b + *n, src, k);
    *n += k;
    (*b)[*n] = 0;
    return 0;
}

// run argv (argv[0] a full path) through /bin/sh to set its limits (ulimit -v mem_kb, no core file), in its own
// process group, stdin = in_fd (or /dev/null when -1), stdout and stderr on pipes read until they close, the program
// killed (the whole group) at the deadline or when stdout passes max_out bytes. posix_spawn (vfork-like: no copy of a
// big process's page tables, safe with threads), as preprocess.c runs ffmpeg. -1 + glm_errmsg when it cannot start
static int run_program(char *const argv[], int in_fd, size_t max_out, double deadline, long mem_kb, RunResult *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int argc = 0;
    while (argv[argc]) argc++;
    char ulim[128];
    snprintf(ulim, sizeof ulim, "ulimit -c 0; ulimit -v %ld 2>/dev/null; exec \"$@\"", mem_kb);
    char **sh = calloc((size_t)argc + 5, sizeof(char *));
    if (!sh) return glm_err("out of memory");
    sh[0] = "/bin/sh", sh[1] = "-c", sh[2] = ulim, sh[3] = "glm4v-render"; // $0, then "$@" = argv
    for (int i = 0; i < argc; i++) sh[4 + i] = argv[i];
    int out[2] = {-1, -1}, err[2] = {-1, -1}, devnull = -1, rc = -1;
    pid_t pid = -1;
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
        glm_err("pipe: %s", strerror(errno));
        goto done;
    }
    if (in_fd < 0 && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        glm_err("/dev/null: %s", strerror(errno));
        goto done;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, in_fd >= 0 ? in_fd : devnull, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all); // SIGPIPE etc. at their defaults in the child
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int e = posix_spawn(&pid, sh[0], &fa, &at, sh, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]), close(err[1]);
    out[1] = err[1] = -1;
    if (e) {
        pid = -1;
        glm_err("cannot run %s: %s", argv[0], strerror(e));
        goto done;
    }
    size_t room = 0, nerr = 0;
    uint8_t chunk[65536];
    struct pollfd pf[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds) {
        double left = deadline - now_s();
        if (left <= 0) {
            r->timed_out = 1;
            break;
        }
        int pr = poll(pf, 2, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) break;
        for (int k = 0; k < 2; k++) {
            if (pf[k].fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = read(pf[k].fd, chunk, sizeof chunk);
            if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (got <= 0) {
                pf[k].fd = -1, open_fds--;
                continue;
            }
            if (k == 0 && buf_append(&r->out, &r->nout, &room, chunk, (size_t)got, max_out)) {
                r->too_long = 1;
                open_fds = 0;
                break;
            }
            if (k == 1 && nerr < sizeof r->err - 1) {
                size_t take = (size_t)got < sizeof r->err - 1 - nerr ? (size_t)got : sizeof r->err - 1 - nerr;
                memcpy(r->err + nerr, chunk, take);
                nerr += take;
                r->err[nerr] = 0;
            }
        }
    }
    if (r->timed_out || r->too_long) kill(-pid, SIGKILL), kill(pid, SIGKILL);
    // the pipes are closed (or we gave up on them): wait for the exit, still under the deadline
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            break;
        }
        if (w < 0 && errno != EINTR) break;
        if (now_s() > deadline && !r->timed_out) r->timed_out = 1, kill(-pid, SIGKILL), kill(pid, SIGKILL);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL); // anything of the group still alive (a grandchild that kept running)
    if (!r->out && buf_append(&r->out, &r->nout, &room, (const uint8_t *)"", 0, max_out) == 0 && !r->out) {
        glm_err("out of memory");
        goto done;
    }
    rc = 0;
done:
    for (int k = 0; k < 2; k++) {
        if (out[k] >= 0) close(out[k]);
        if (err[k] >= 0) close(err[k]);
    }
    if (devnull >= 0) close(devnull);
    free(sh);
    if (rc) free(r->out), r->out = NULL;
    return rc;
}

// the most telling line of a program's stderr: the first "Error" line, else the first line; "" when none
static void err_line(const char *err, char *line, size_t cap) {
    const char *s = strstr(err, "Error");
    if (s) {
        while (s > err && s[-1] != '\n') s--;
    } else s = err;
    size_t n = strcspn(s, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(line, s, n);
    line[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 32) line[i] = ' ';
}

// ---------------------------------------------------------------------------- the document source

// where the renderer reads the PDF from: a path, or an in-memory file on its stdin
typedef struct {
    const char *name;  // for messages
    char *arg;         // the file argument given to the programs ("-" = stdin)
    int fd;            // stdin of the programs (-1: /dev/null)
    double run_s;      // time limit of each program run, seconds
    long mem_kb;       // ulimit -v of each run
    char *pdfinfo, *pdftoppm; // program paths
} Source;

// rewind the stdin file before a run (every run reads it from the start)
static int source_rewind(Source *s) {
    if (s->fd >= 0 && lseek(s->fd, 0, SEEK_SET) != 0) return glm_err("%s: lseek: %s", s->name, strerror(errno));
    return 0;
}

// what a failed run means, as one line about the document
static int run_failed(const Source *s, const char *what, const RunResult *r, int page) {
    char where[64] = "";
    if (page > 0) snprintf(where, sizeof where, " on page %d", page);
    char line[300];
    err_line(r->err, line, sizeof line);
    if (r->timed_out)
        return glm_err("%s: %s did not finish%s within the time limit of %g s (the document is too complex or the "
                       "renderer hangs; --pdf-timeout)", s->name, what, where, s->run_s);
    if (r->too_long) return glm_err("%s: %s wrote more than the page's pixels%s", s->name, what, where);
    if (r->status >= 128)
        return glm_err("%s: %s crashed%s (signal %d%s)%s%s", s->name, what, where, r->status - 128,
                       r->status - 128 == SIGKILL ? ", perhaps out of memory" : "", line[0] ? ": " : "", line);
    if (strstr(r->err, "Incorrect password"))
        return glm_err("%s: the document is encrypted and needs a password (glm4v takes none: decrypt it first, e.g. "
                       "qpdf --decrypt --password=PW in out.pdf)", s->name);
    return glm_err("%s: %s failed%s (exit status %d)%s%s", s->name, what, where, r->status, line[0] ? ": " : "",
                   line);
}

// ---------------------------------------------------------------------------- pages and DPI

int pdf_is_pdf(const uint8_t *buf, size_t len) {
    if (len > 1024) len = 1024;
    for (size_t i = 0; i + 5 <= len; i++)
        if (!memcmp(buf + i, "%PDF-", 5)) return 1;
    return 0;
}

int pdf_has_eof(const uint8_t *tail, size_t len) {
    for (size_t i = 0; i + 5 <= len; i++)
        if (!memcmp(tail + i, "%%EOF", 5)) return 1;
    return 0;
}

// 1 when the last 1024 bytes of the file hold %%EOF
static int file_has_eof(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t tail[1024];
    size_t n = 0;
    if (fseeko(f, 0, SEEK_END) == 0) {
        off_t size = ftello(f);
        if (size >= 0 && fseeko(f, size > (off_t)sizeof tail ? size - (off_t)sizeof tail : 0, SEEK_SET) == 0)
            n = fread(tail, 1, sizeof tail, f);
    }
    fclose(f);
    return pdf_has_eof(tail, n);
}

int pdf_file_is_pdf(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t head[1024];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return pdf_is_pdf(head, n);
}

// a page number at *p (1..INT_MAX), advancing p; -1 when none
static long parse_num(const char **p) {
    if (!isdigit((unsigned char)**p)) return -1;
    long v = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        if (v > INT_MAX) return -1;
        (*p)++;
    }
    return v;
}

// pdf_parse_pages, its messages naming the selection as the CLI's flag (req = 0) or a request's "pages" field (1)
static int parse_pages(const char *spec, int npages, int max_pages, int req, int **out) {
    char what[1100]; // the selection as the user wrote it
    snprintf(what, sizeof what, "%s%.1000s%s", req ? "\"pages\": \"" : "--pages ", spec ? spec : "", req ? "\"" : "");
    *out = NULL;
    if (npages < 1) return glm_err("the document has no pages");
    if (max_pages <= 0) max_pages = PDF_MAX_PAGES;
    unsigned char *sel = calloc((size_t)npages + 1, 1);
    if (!sel) return glm_err("out of memory");
    if (!spec || !*spec) memset(sel + 1, 1, (size_t)npages);
    else {
        const char *p = spec;
        for (;;) {
            long a = parse_num(&p), b = a;
            if (a < 0) goto syntax;
            if (*p == '-') {
                p++;
                if (*p == ',' || !*p) { // "N-": to the end, so N itself must be a page
                    if (a > npages) {
                        free(sel);
                        return glm_err("%s: page %ld is past the end (the document has %d page%s)", what, a, npages,
                                       npages == 1 ? "" : "s");
                    }
                    b = npages;
                } else if ((b = parse_num(&p)) < 0) {
                    goto syntax;
                }
            }
            if (a < 1 || b < a) {
                free(sel);
                return glm_err("%s: '%ld-%ld' is not a range of pages (first <= last, from 1)", what, a, b);
            }
            if (b > npages) {
                free(sel);
                return glm_err("%s: page %ld is past the end (the document has %d page%s)", what, b, npages,
                               npages == 1 ? "" : "s");
            }
            memset(sel + a, 1, (size_t)(b - a + 1));
            if (!*p) break;
            if (*p++ != ',') goto syntax;
        }
    }
    int n = 0;
    for (int i = 1; i <= npages; i++) n += sel[i];
    if (n > max_pages) {
        free(sel);
        if (!spec || !*spec)
            return glm_err(req ? "the document has %d pages, more than --max-pages %d: choose some with \"pages\" "
                                 "(e.g. \"pages\": \"1-%d\") or raise the server's --max-pages"
                               : "the document has %d pages, more than --max-pages %d: choose some with --pages (e.g. "
                                 "--pages 1-%d) or raise --max-pages", npages, max_pages, max_pages);
        return glm_err("%s selects %d pages, more than --max-pages %d", what, n, max_pages);
    }
    int *v = malloc((size_t)n * sizeof(int));
    if (!v) {
        free(sel);
        return glm_err("out of memory");
    }
    for (int i = 1, k = 0; i <= npages; i++)
        if (sel[i]) v[k++] = i;
    free(sel);
    *out = v;
    return n;
syntax:
    free(sel);
    return glm_err("%s: not a list of pages and ranges such as 1-3,7", what);
}

int pdf_parse_pages(const char *spec, int npages, int max_pages, int **out) {
    return parse_pages(spec, npages, max_pages, 0, out);
}

void pdf_page_pixels(double w_pt, double h_pt, int dpi, int *w, int *h) {
    // pdftoppm: ceil(points * dpi / 72) (a hair of rounding noise below an integer is not a pixel more)
    double fw = ceil(w_pt * dpi / 72.0 - 1e-6), fh = ceil(h_pt * dpi / 72.0 - 1e-6);
    *w = fw < 1 ? 1 : fw > INT_MAX ? INT_MAX : (int)fw;
    *h = fh < 1 ? 1 : fh > INT_MAX ? INT_MAX : (int)fh;
}

int pdf_fits_processor(int w, int h, const ProcConfig *pc) {
    const int f = pc->patch_size * pc->merge_size, tp = pc->temporal_patch_size;
    int h0, w0, h1, w1;
    // smart_resize with no upper bound (rounding only) and with the processor's: equal = not shrunk
    if (smart_resize(tp, h, w, tp, f, 1, INT64_MAX, &h0, &w0)) return 0;
    if (smart_resize(tp, h, w, tp, f, 1, pc->max_pixels, &h1, &w1)) return 0;
    return h0 == h1 && w0 == w1;
}

int pdf_auto_dpi(double w_pt, double h_pt, const ProcConfig *pc) {
    for (int d = PDF_DPI_DEFAULT; d > PDF_DPI_MIN; d--) {
        int w, h;
        pdf_page_pixels(w_pt, h_pt, d, &w, &h);
        if (pdf_fits_processor(w, h, pc)) return d;
    }
    return PDF_DPI_MIN;
}

int64_t pdf_image_tokens(int w, int h, const ProcConfig *pc) {
    const int ps = pc->patch_size, m = pc->merge_size, tp = pc->temporal_patch_size;
    int rh, rw;
    if (ps <= 0 || m <= 0 || smart_resize(tp, h, w, tp, ps * m, pc->min_pixels, pc->max_pixels, &rh, &rw)) return -1;
    return (int64_t)(rh / ps) * (rw / ps) / (m * m);
}

// ---------------------------------------------------------------------------- pdfinfo

// the value after "Key:" on the line that starts with key, or NULL
static const char *info_value(const char *text, const char *key) {
    size_t k = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, key, k)) {
            l += k;
            while (*l == ' ') l++;
            return l;
        }
    return NULL;
}

// renderer name and version ("pdftoppm 22.12.0") from `pdftoppm -v`
static void renderer_version(Source *s, char *out, size_t cap) {
    char *argv[] = {s->pdftoppm, "-v", NULL};
    RunResult r;
    snprintf(out, cap, "pdftoppm (unknown version)");
    if (run_program(argv, -1, 65536, now_s() + (s->run_s < 5 ? s->run_s : 5), s->mem_kb, &r)) return;
    const char *v = strstr(r.err, "version ");
    if (!v) v = strstr((const char *)r.out, "version ");
    if (v) {
        v += 8;
        size_t n = strcspn(v, " \n\r");
        snprintf(out, cap, "pdftoppm %.*s", (int)(n < 40 ? n : 40), v);
    }
    free(r.out);
}

// pdfinfo: the page count (refusing encrypted, damaged and empty documents)
static int doc_pages(Source *s, int *npages) {
    char *argv[] = {s->pdfinfo, s->arg, NULL};
    RunResult r;
    if (source_rewind(s) || run_program(argv, s->fd, INFO_MAX, now_s() + s->run_s, s->mem_kb, &r)) return -1;
    const char *pg = info_value((const char *)r.out, "Pages:");
    long n = pg ? strtol(pg, NULL, 10) : -1;
    int rc = 0;
    if (!r.timed_out && r.status < 128 &&
        (n == 0 || strstr(r.err, "Invalid page count 0") || strstr(r.err, "last page (0)")))
        rc = glm_err("%s: the document has no pages", s->name);
    else if (r.status == 1 && !strstr(r.err, "Incorrect password")) {
        char line[300];
        err_line(r.err, line, sizeof line);
        rc = glm_err("%s: the document is damaged or not a PDF (pdfinfo: %s)", s->name, line[0] ? line : "no reason");
    } else if (r.status != 0 || r.timed_out || r.too_long) rc = run_failed(s, "pdfinfo", &r, 0);
    else if (n < 0 || n > INT_MAX) rc = glm_err("%s: pdfinfo gave no page count (damaged document?)", s->name);
    else *npages = (int)n;
    free(r.out);
    return rc;
}

// pdfinfo -f A -l B: the displayed size (points, /Rotate applied) of each selected page
static int page_sizes(Source *s, const int *sel, int n, double (*size)[2]) {
    char fa[16], la[16];
    snprintf(fa, sizeof fa, "%d", sel[0]);
    snprintf(la, sizeof la, "%d", sel[n - 1]);
    char *argv[] = {s->pdfinfo, "-box", "-f", fa, "-l", la, s->arg, NULL};
    RunResult r;
    if (source_rewind(s) || run_program(argv, s->fd, INFO_MAX, now_s() + s->run_s, s->mem_kb, &r)) return -1;
    int rc = r.status != 0 || r.timed_out || r.too_long ? run_failed(s, "pdfinfo", &r, 0) : 0;
    for (int i = 0; i < n && !rc; i++)
        if (pdf_info_page_size((const char *)r.out, sel[i], &size[i][0], &size[i][1]))
            rc = glm_err("%s: page %d has no usable size in pdfinfo's output", s->name, sel[i]);
    free(r.out);
    return rc;
}

int pdf_info_page_size(const char *info, int page, double *w_pt, double *h_pt) {
    char key[64];
    double w = -1, h = -1;
    // the MediaBox (pdfinfo -box), which pdftoppm draws; "size:" is the CropBox, used when there is no MediaBox line
    snprintf(key, sizeof key, "Page %4d MediaBox:", page);
    const char *v = info_value(info, key);
    if (v) {
        char *end;
        double b[4];
        int k = 0;
        for (; k < 4; k++, v = end) {
            b[k] = strtod(v, &end);
            if (end == v) break;
        }
        if (k == 4) w = fabs(b[2] - b[0]), h = fabs(b[3] - b[1]);
    } else {
        snprintf(key, sizeof key, "Page %4d size:", page);
        if ((v = info_value(info, key))) w = strtod(v, (char **)&v);
        if (v && !strncmp(v, " x ", 3)) h = strtod(v + 3, NULL);
    }
    snprintf(key, sizeof key, "Page %4d rot:", page);
    const char *rv = info_value(info, key);
    long rot = rv ? strtol(rv, NULL, 10) % 360 : 0;
    if (!(w > 0 && h > 0 && isfinite(w) && isfinite(h))) return -1;
    // /Rotate 90 or 270: shown (and drawn by pdftoppm) with width and height swapped
    if (rot == 90 || rot == 270 || rot == -90 || rot == -270) *w_pt = h, *h_pt = w;
    else *w_pt = w, *h_pt = h;
    return 0;
}

// ---------------------------------------------------------------------------- pdftoppm

int pdf_ppm_parse(const uint8_t *b, size_t n, Image *img) {
    size_t i = 0;
    long v[3];
    memset(img, 0, sizeof *img);
    if (n < 2 || b[0] != 'P' || b[1] != '6') return -1;
    i = 2;
    for (int k = 0; k < 3; k++) {
        while (i < n && (isspace(b[i]) || b[i] == '#')) {
            if (b[i] == '#')
                while (i < n && b[i] != '\n') i++;
            else i++;
        }
        if (i >= n || !isdigit(b[i])) return -1;
        v[k] = 0;
        while (i < n && isdigit(b[i])) {
            v[k] = v[k] * 10 + (b[i++] - '0');
            if (v[k] > INT_MAX) return -1;
        }
    }
    if (i >= n || !isspace(b[i]) || v[2] != 255 || v[0] < 1 || v[1] < 1) return -1;
    i++;
    size_t need = (size_t)v[0] * (size_t)v[1] * 3;
    if (n - i != need) return -1;
    if (!(img->rgb = malloc(need))) return -1;
    memcpy(img->rgb, b + i, need);
    img->w = (int)v[0], img->h = (int)v[1];
    return 0;
}

// pdftoppm -r dpi -f page -l page -singlefile -> img
static int render_page(Source *s, int page, int dpi, int64_t max_px, Image *img) {
    char ra[16], pa[16];
    snprintf(ra, sizeof ra, "%d", dpi);
    snprintf(pa, sizeof pa, "%d", page);
    char *argv[] = {s->pdftoppm, "-r", ra, "-f", pa, "-l", pa, "-singlefile", s->arg, NULL};
    size_t max_out = (max_px > 0 ? (size_t)max_px : (size_t)1 << 31) * 3 + 64;
    RunResult r;
    if (source_rewind(s) || run_program(argv, s->fd, max_out, now_s() + s->run_s, s->mem_kb, &r)) return -1;
    int rc = 0;
    if (r.status != 0 || r.timed_out || r.too_long) rc = run_failed(s, "pdftoppm", &r, page);
    else if (pdf_ppm_parse(r.out, r.nout, img)) {
        char line[300];
        err_line(r.err, line, sizeof line);
        rc = glm_err("%s: pdftoppm gave no complete image for page %d (%zu bytes)%s%s", s->name, page, r.nout,
                     line[0] ? ": " : "", line);
    } else if (max_px > 0 && (int64_t)img->w * img->h > max_px) {
        rc = glm_err("%s: page %d rendered at %d dpi is %d x %d pixels, above the limit of %lld (--max-image-pixels)",
                     s->name, page, dpi, img->w, img->h, (long long)max_px);
        image_free(img);
    }
    free(r.out);
    return rc;
}

// ---------------------------------------------------------------------------- documents

void pdf_doc_free(PdfDoc *d) {
    for (int i = 0; d->pages && i < d->n; i++) image_free(&d->pages[i].img);
    free(d->pages);
    memset(d, 0, sizeof *d);
}

int64_t pdf_cost_line(const PdfDoc *d, const char *name, const ProcConfig *pc, char *line, size_t cap) {
    char terms[2048] = "";
    size_t len = 0;
    int64_t total = 0;
    for (int i = 0; i < d->n;) {
        int64_t t = pdf_image_tokens(d->pages[i].img.w, d->pages[i].img.h, pc);
        if (t < 0) return -1;
        int j = i;
        while (j < d->n && pdf_image_tokens(d->pages[j].img.w, d->pages[j].img.h, pc) == t) j++;
        len += (size_t)snprintf(terms + len, len < sizeof terms ? sizeof terms - len : 0, "%s%d x %lld",
                                i ? " + " : "", j - i, (long long)t);
        total += t * (j - i);
        i = j;
    }
    if (line) snprintf(line, cap, "%s: %d page%s, %s = %lld visual tokens", name, d->n, d->n == 1 ? "" : "s", terms,
                       (long long)total);
    return total;
}

// count, select, size, choose the DPI of and render the pages of the document behind s
static int render_doc(PdfDoc *d, Source *s, const PdfOptions *o, const ProcConfig *pc) {
    int npages = 0, *sel = NULL, rc = -1;
    double(*size)[2] = NULL;
    if (o->dpi < 0 || o->dpi > PDF_DPI_MAX)
        return glm_err("%s %d: not in 1..%d", o->from_request ? "\"dpi\":" : "--dpi", o->dpi, PDF_DPI_MAX);
    if (doc_pages(s, &npages)) return -1;
    int n = parse_pages(o->pages, npages, o->max_pages, o->from_request, &sel);
    if (n < 0) {
        char msg[sizeof glm_errmsg];
        snprintf(msg, sizeof msg, "%s", glm_errmsg);
        return glm_err("%s: %s", s->name, msg);
    }
    if (!(size = malloc((size_t)n * sizeof *size)) || !(d->pages = calloc((size_t)n, sizeof(PdfPage)))) {
        glm_err("out of memory");
        goto done;
    }
    d->doc_pages = npages;
    if (page_sizes(s, sel, n, size)) goto done;
    // refuse what cannot become an image before drawing anything
    for (int i = 0; i < n; i++) {
        double w = size[i][0], h = size[i][1], ratio = w > h ? w / h : h / w;
        if (ratio > 200) {
            glm_err("%s: page %d is %.6g x %.6g pt, an aspect ratio of %.0f:1 (the image processor takes at most "
                    "200:1)", s->name, sel[i], w, h, ratio);
            goto done;
        }
        int dpi = o->dpi > 0 ? o->dpi : pdf_auto_dpi(w, h, pc), pw, ph;
        pdf_page_pixels(w, h, dpi, &pw, &ph);
        if (o->max_image_pixels > 0 && (double)pw * ph > (double)o->max_image_pixels) {
            glm_err("%s: page %d is %.6g x %.6g pt: %d x %d pixels at %d dpi, above the limit of %lld pixels "
                    "(--max-image-pixels%s)", s->name, sel[i], w, h, pw, ph, dpi, (long long)o->max_image_pixels,
                    o->dpi > 0 ? (o->from_request ? ", \"dpi\"" : ", --dpi") : "");
            goto done;
        }
        d->pages[i].page = sel[i], d->pages[i].dpi = dpi, d->pages[i].w_pt = w, d->pages[i].h_pt = h;
    }
    renderer_version(s, d->renderer, sizeof d->renderer);
    for (int i = 0; i < n; i++) {
        PdfPage *p = &d->pages[i];
        for (;;) {
            if (render_page(s, p->page, p->dpi, o->max_image_pixels, &p->img)) goto done;
            d->n = i + 1;
            // the prediction of pdftoppm's size can be one pixel off: the automatic rule checks what came out
            if (o->dpi > 0 || p->dpi <= PDF_DPI_MIN || pdf_fits_processor(p->img.w, p->img.h, pc)) break;
            image_free(&p->img);
            p->dpi--;
        }
    }
    rc = 0;
done:
    free(sel);
    free(size);
    if (rc) pdf_doc_free(d);
    return rc;
}

// find the programs, set the time and memory limits, render, clean up
static int render_source(PdfDoc *d, Source *s, const PdfOptions *o, const ProcConfig *pc) {
    memset(d, 0, sizeof *d);
    s->pdfinfo = find_program("pdfinfo");
    s->pdftoppm = find_program("pdftoppm");
    int rc;
    if (!s->pdfinfo || !s->pdftoppm)
        rc = glm_err("%s: pdftoppm and pdfinfo not found: install poppler-utils to read PDF files", s->name);
    else {
        s->run_s = o->timeout_s > 0 ? o->timeout_s : PDF_TIMEOUT_S;
        int64_t px = o->max_image_pixels > 0 ? o->max_image_pixels : 0;
        s->mem_kb = (long)(o->mem_limit_mb > 0 ? o->mem_limit_mb : PDF_MEM_LIMIT_MB) * 1024 + (long)(px * 8 / 1024);
        rc = render_doc(d, s, o, pc);
    }
    free(s->pdfinfo);
    free(s->pdftoppm);
    return rc;
}

int pdf_render_file(PdfDoc *d, const char *path, const PdfOptions *o, const ProcConfig *pc) {
    struct stat st;
    memset(d, 0, sizeof *d);
    if (stat(path, &st) != 0) return glm_err("%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return glm_err("%s: not a regular file", path);
    if (!pdf_file_is_pdf(path)) return glm_err("%s: not a PDF file (no %%PDF- header)", path);
    if (!file_has_eof(path))
        return glm_err("%s: the document is truncated or damaged (no %%%%EOF marker at its end)", path);
    // a relative path that looks like an option or a poppler URL ("fd://0") is made explicit
    size_t len = strlen(path) + 3;
    char *arg = malloc(len);
    if (!arg) return glm_err("out of memory");
    snprintf(arg, len, "%s%s", path[0] == '/' ? "" : "./", path);
    Source s = {.name = path, .arg = arg, .fd = -1};
    int rc = render_source(d, &s, o, pc);
    free(arg);
    return rc;
}

int pdf_render_mem(PdfDoc *d, const uint8_t *data, size_t len, const char *name, const PdfOptions *o,
                   const ProcConfig *pc) {
    memset(d, 0, sizeof *d);
    if (!name) name = "PDF";
    if (!pdf_is_pdf(data, len)) return glm_err("%s: not a PDF (no %%PDF- header)", name);
    if (!pdf_has_eof(data + (len > 1024 ? len - 1024 : 0), len > 1024 ? 1024 : len))
        return glm_err("%s: the document is truncated or damaged (no %%%%EOF marker at its end)", name);
    // an anonymous in-memory file (nothing on disk), the programs' stdin; "-" makes poppler read stdin
    int fd = memfd_create("glm4v-pdf", MFD_CLOEXEC);
    if (fd < 0) return glm_err("%s: memfd_create: %s", name, strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            return glm_err("%s: writing the in-memory copy: %s", name, strerror(errno));
        }
        off += (size_t)w;
    }
    Source s = {.name = name, .arg = "-", .fd = fd};
    int rc = render_source(d, &s, o, pc);
    close(fd);
    return rc;
}

// ---------------------------------------------------------------------------- grounding boxes

// case-insensitive prefix match
static int starts_ci(const char *s, const char *p) {
    for (; *p; s++, p++)
        if (tolower((unsigned char)*s) != *p) return 0;
    return 1;
}

// the page number of a mention starting at s ("page N", "pages N", "page #N", "p. N", "第N页"), or -1
static long page_mention(const char *text, const char *s) {
    const char *p = NULL;
    if (starts_ci(s, "page") && (s == text || !isalpha((unsigned char)s[-1]))) {
        p = s + 4;
        if (*p == 's' || *p == 'S') p++;
        while (*p == ' ' || *p == '#' || *p == '\t') p++;
    } else if ((*s == 'p' || *s == 'P') && s[1] == '.' && (s == text || !isalpha((unsigned char)s[-1]))) {
        p = s + 2;
        while (*p == ' ') p++;
    } else if (!strncmp(s, "\xe7\xac\xac", 3)) { // 第 N 页
        p = s + 3;
        const char *q = p;
        while (isdigit((unsigned char)*q)) q++;
        if (q == p || strncmp(q, "\xe9\xa1\xb5", 3)) return -1;
    }
    if (!p || !isdigit((unsigned char)*p)) return -1;
    return parse_num(&p);
}

void pdf_box_pages(const char *text, int nboxes, const int *pages, int npages, int *out) {
    for (int i = 0; i < nboxes; i++) out[i] = 0;
    if (nboxes <= 0 || npages <= 1 || !text) return;
    // the answer after the thinking (boxes_parse skips <think>...</think>)
    const char *t = text, *tc = NULL;
    for (const char *q = text; (q = strstr(q, "</think>")); q += 8) tc = q + 8;
    if (tc) t = tc;
    // where each box starts: box spans when there are any, else bare [[ lists; each span's boxes counted by
    // boxes_parse on the span alone
    const char *mark = strstr(t, "<|begin_of_box|>") ? "<|begin_of_box|>" : "[[";
    const size_t ml = strlen(mark);
    int cur = 0, k = 0;
    const char *scan = text; // page mentions are read up to each box (thinking included: it names pages too)
    for (const char *q = strstr(t, mark); q && k < nboxes; q = strstr(q + ml, mark)) {
        for (; scan < q; scan++) {
            long pn = page_mention(text, scan);
            if (pn < 1) continue;
            int idx = -1;
            for (int j = 0; j < npages; j++)
                if (pages[j] == pn) idx = j;
            if (idx < 0 && pn <= npages) idx = (int)pn - 1;
            if (idx >= 0) cur = idx;
        }
        // the boxes of this span: up to the next mark
        const char *next = strstr(q + ml, mark);
        size_t len = next ? (size_t)(next - q) : strlen(q);
        char *span = malloc(len + 1);
        if (!span) return;
        memcpy(span, q, len);
        span[len] = 0;
        Box *bx = NULL;
        int nb = boxes_parse(span, &bx);
        free(bx);
        free(span);
        for (int j = 0; j < nb && k < nboxes; j++) out[k++] = cur;
    }
    for (; k < nboxes; k++) out[k] = cur; // boxes this scan did not place: the last page named
}

void pdf_box_line(char *out, size_t cap, int i, const Box *b, const PdfPage *p, const char *name) {
    int x1, y1, x2, y2;
    box_to_pixels(b, p->img.w, p->img.h, &x1, &y1, &x2, &y2);
    const int r = p->dpi;
    if (b->is_point)
        snprintf(out, cap, "point %d: (%d, %d) px = (%.1f, %.1f) pt on page %d of %s", i + 1, x1, y1,
                 pdf_px_to_pt(x1, r), pdf_px_to_pt(y1, r), p->page, name);
    else
        snprintf(out, cap, "box %d: (%d, %d)-(%d, %d) px = (%.1f, %.1f)-(%.1f, %.1f) pt on page %d of %s", i + 1, x1, y1,
                 x2, y2, pdf_px_to_pt(x1, r), pdf_px_to_pt(y1, r), pdf_px_to_pt(x2, r), pdf_px_to_pt(y2, r), p->page,
                 name);
}

int pdf_draw_boxes(const char *out_png, const PdfDoc *d, const Box *boxes, const int *page_of, int n,
                   char (*written)[4200]) {
    char base[4096];
    if (strlen(out_png) >= sizeof base) return glm_err("%s: path too long", out_png);
    snprintf(base, sizeof base, "%s", out_png);
    char *dot = strrchr(base, '.'), *slash = strrchr(base, '/');
    if (dot && (!slash || dot > slash) && !strcasecmp(dot, ".png")) *dot = 0;
    Box *mine = malloc((size_t)(n > 0 ? n : 1) * sizeof(Box));
    if (!mine) return glm_err("out of memory");
    int files = 0, rc = 0;
    for (int k = 0; k < d->n && !rc; k++) {
        int nk = 0;
        for (int i = 0; i < n; i++)
            if (page_of[i] == k) mine[nk++] = boxes[i];
        if (!nk) continue;
        if (!d->pages[k].img.rgb) {
            rc = glm_err("%s: the pixels of page %d are gone", out_png, d->pages[k].page);
            break;
        }
        char out[4200];
        snprintf(out, sizeof out, "%s-p%d.png", base, d->pages[k].page);
        if ((rc = boxes_draw_png(out, &d->pages[k].img, mine, nk))) break;
        if (written) memcpy(written[files], out, sizeof out);
        files++;
    }
    free(mine);
    return rc ? -1 : files;
}
