// glm4v.c - command line, prompt assembly (Glm4vProcessor), M-RoPE positions (get_rope_index), generation, --dump.
//   ./glm4v -m MODEL_DIR -p "question" [-i image.png ...] [--video DIR|FILE] [-n 128] [--dump out.safetensors]
#include "glm4v.h"
#include "fileio.h"

#include <errno.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef GLM4V_GIT_COMMIT
#define GLM4V_GIT_COMMIT "unknown"
#endif

// ---------------------------------------------------------------------------- options

#define MAX_MEDIA 64

typedef struct {
    const char *model_dir;   // -m
    const char *prompt;      // -p
    char *prompt_text;       // -p / -f text (owned; prompt points here): prompt_text_from_bytes, NULs as C0 80
    char *system_text;       // --system text (owned; system points here), the same way
    const char *system;      // --system
    int raw;                 // --raw: prompt used verbatim
    int think;               // 1 thinking on (default), 0 --no-think
    int n_predict;           // -n
    float temp;              // --temp (<0: from generation_config / greedy)
    int top_k;               // --top-k (<0: default)
    float top_p;             // --top-p (<0: default)
    float repeat_penalty;    // --repeat-penalty (<0: default)
    uint64_t seed;           // --seed
    int threads;             // -t
    const char *dump;        // --dump
    const char *images[MAX_MEDIA]; // -i, in order
    int nimages;
    const char *video;       // --video
    float fps;               // --fps (frame directory rate)
    ResizeMode resize;       // --resize torch|pil
    int64_t max_image_pixels; // --max-image-pixels
    int chat;                // --chat
    int hide_think;          // --hide-think
    int quiet;               // --quiet
    const char *draw_boxes;  // --draw-boxes
    int chunk;               // --chunk (prefill tokens per step)
    int ctx;                 // --ctx (chat: KV cache tokens)
} Options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: glm4v -m MODEL_DIR -p TEXT [options]\n"
            "GLM-4.5V / GLM-4.6V (MoE) and GLM-4.1V / GLM-4.6V-Flash (dense) on the CPU, matching HF transformers.\n"
            "\nmodel:\n"
            "  -m, --model DIR          Hugging Face model folder (config.json, *.safetensors, tokenizer.json)\n"
            "\ninput:\n"
            "  -p, --prompt TEXT        the user message (or the whole prompt with --raw)\n"
            "  -f, --file FILE          read the prompt from a file ('-' = stdin)\n"
            "      --system TEXT        system message (chat template)\n"
            "      --raw                use the prompt verbatim: no chat template; special tokens written as text count\n"
            "  -i, --image FILE         attach an image (repeatable; JPEG, PNG, BMP, GIF, TGA, PSD, HDR, PNM)\n"
            "      --video PATH         attach a video: a folder of frames (file-name order) or a video file (ffmpeg)\n"
            "      --fps F              frame rate of a frame folder (default 2)\n"
            "      --max-image-pixels N refuse images larger than N pixels before decoding (default 100000000)\n"
            "      --resize torch|pil   image resize: torchvision (default, = Glm4vImageProcessor) or Pillow\n"
            "      --chat               interactive conversation on stdin (/image, /video, /think on|off, /reset, /quit)\n"
            "\ngeneration:\n"
            "  -n, --n-predict N        tokens to generate (default 256; 0 = only read the prompt)\n"
            "      --think / --no-think thinking mode on (default) or off (/nothink + empty <think></think>)\n"
            "      --temp T             temperature; 0 = greedy (default: greedy unless generation_config samples)\n"
            "      --top-k K            sample among the K most likely tokens (0 = all)\n"
            "      --top-p P            nucleus sampling threshold\n"
            "      --repeat-penalty R   HF repetition penalty (1 = off)\n"
            "      --seed S             random seed for sampling (default 0)\n"
            "\noutput:\n"
            "      --dump FILE          write inputs, positions, hidden states, logits, image embeddings (safetensors)\n"
            "      --hide-think         do not print the <think>...</think> part\n"
            "      --draw-boxes OUT.png draw the answer's grounding boxes on the first image\n"
            "  -q, --quiet              no progress or timing lines on stderr\n"
            "\nperformance:\n"
            "  -t, --threads N          threads (default: all cores; physical cores are best)\n"
            "      --chunk N            prompt tokens per prefill step (default 512)\n"
            "  -c, --ctx N              chat: tokens the KV cache holds (default 8192, at most the model's context)\n"
            "\n  -h, --help               this help\n"
            "      --version            version and build\n");
}

_Noreturn static void usage_error(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    glm_die(EXIT_USAGE, "%s (see --help)", msg);
}

static long parse_long(const char *flag, const char *s, long lo, long hi) {
    if (!s) usage_error("%s needs a value", flag);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) usage_error("%s: '%s' is not an integer in [%ld, %ld]", flag, s, lo, hi);
    return v;
}

static float parse_float(const char *flag, const char *s, float lo, float hi) {
    if (!s) usage_error("%s needs a value", flag);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        usage_error("%s: '%s' is not a number in [%g, %g]", flag, s, lo, hi);
    return (float)v;
}

// -f FILE: a file, a pipe (-f <(cmd), a FIFO) or '-' = stdin, read to its end (fileio.h read_input); any bytes, NULs
// included (prompt_text_from_bytes: they reach the tokenizer as bytes, not as the end of the text)
static char *prompt_from_file(const char *path) {
    size_t len;
    char *s = read_input(path, &len, 256u << 20);
    if (!s) glm_die_err(EXIT_INPUT);
    char *text = prompt_text_from_bytes(s, len);
    free(s);
    return text;
}

// an output path is checked before any work is done (fileio.h: a file or new path in a writable folder, a character
// device or FIFO; a folder, block device, socket or dangling link is refused); the file is written at the end
static void check_output_path(const char *path, const char *flag) {
    if (output_check(path, flag)) glm_die(EXIT_INPUT, "%s", glm_errmsg);
}

static void parse_args(Options *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->think = 1, o->n_predict = 256, o->temp = -1, o->top_k = -1, o->top_p = -1, o->repeat_penalty = -1;
    o->fps = 2.0f, o->max_image_pixels = 100000000, o->chunk = 512;
    // single-valued options may be given once (-p and -f are one: the prompt); -i is repeatable
    enum { O_MODEL, O_PROMPT, O_SYSTEM, O_THINK, O_N, O_TEMP, O_TOPK, O_TOPP, O_PENALTY, O_SEED, O_THREADS, O_DUMP,
           O_VIDEO, O_FPS, O_MAXPIX, O_RESIZE, O_BOXES, O_CHUNK, O_CTX, O_COUNT };
    const char *given[O_COUNT] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(s) (strcmp(a, s) == 0)
#define NEEDV() (v ? (void)i++ : usage_error("%s needs a value", a))
#define ONCE(slot) (!given[slot] ? (void)(given[slot] = a)                                                  \
                 : strcmp(given[slot], a) ? usage_error("%s: %s was already given (one value only)", a, given[slot]) \
                                          : usage_error("%s: given twice (one value only)", a))
        if (ARG("-h") || ARG("--help")) {
            usage(stdout);
            exit(0);
        } else if (ARG("--version")) {
            printf("glm4v.c %s (commit %s)\n", GLM4V_VERSION, GLM4V_GIT_COMMIT);
            exit(0);
        } else if (ARG("-m") || ARG("--model")) ONCE(O_MODEL), NEEDV(), o->model_dir = v;
        else if (ARG("-p") || ARG("--prompt"))
            ONCE(O_PROMPT), NEEDV(), o->prompt = o->prompt_text = prompt_text_from_bytes(v, strlen(v));
        else if (ARG("-f") || ARG("--file")) {
            ONCE(O_PROMPT), NEEDV();
            o->prompt = o->prompt_text = prompt_from_file(v);
        } else if (ARG("--system"))
            ONCE(O_SYSTEM), NEEDV(), o->system = o->system_text = prompt_text_from_bytes(v, strlen(v));
        else if (ARG("--raw")) o->raw = 1;
        else if (ARG("--think")) ONCE(O_THINK), o->think = 1;
        else if (ARG("--no-think")) ONCE(O_THINK), o->think = 0;
        else if (ARG("-n") || ARG("--n-predict")) ONCE(O_N), NEEDV(), o->n_predict = (int)parse_long(a, v, 0, 1 << 24);
        else if (ARG("--temp")) ONCE(O_TEMP), NEEDV(), o->temp = parse_float(a, v, 0, 100);
        else if (ARG("--top-k")) ONCE(O_TOPK), NEEDV(), o->top_k = (int)parse_long(a, v, 0, 1 << 30);
        else if (ARG("--top-p")) ONCE(O_TOPP), NEEDV(), o->top_p = parse_float(a, v, 0, 1);
        else if (ARG("--repeat-penalty")) ONCE(O_PENALTY), NEEDV(), o->repeat_penalty = parse_float(a, v, 1e-3f, 100);
        else if (ARG("--seed")) ONCE(O_SEED), NEEDV(), o->seed = (uint64_t)parse_long(a, v, 0, 0x7fffffffffffffffL);
        else if (ARG("-t") || ARG("--threads")) ONCE(O_THREADS), NEEDV(), o->threads = (int)parse_long(a, v, 1, 1024);
        else if (ARG("--dump")) ONCE(O_DUMP), NEEDV(), o->dump = v;
        else if (ARG("-i") || ARG("--image")) {
            NEEDV();
            if (o->nimages == MAX_MEDIA) usage_error("at most %d images", MAX_MEDIA);
            o->images[o->nimages++] = v;
        } else if (ARG("--video")) ONCE(O_VIDEO), NEEDV(), o->video = v;
        else if (ARG("--fps")) ONCE(O_FPS), NEEDV(), o->fps = parse_float(a, v, 1e-3f, 1000);
        else if (ARG("--max-image-pixels")) ONCE(O_MAXPIX), NEEDV(), o->max_image_pixels = parse_long(a, v, 1, 1L << 40);
        else if (ARG("--resize")) {
            ONCE(O_RESIZE), NEEDV();
            if (strcmp(v, "torch") == 0) o->resize = RESIZE_TORCH;
            else if (strcmp(v, "pil") == 0) o->resize = RESIZE_PIL;
            else usage_error("--resize: '%s' is not torch or pil", v);
        } else if (ARG("--chat")) o->chat = 1;
        else if (ARG("--hide-think")) o->hide_think = 1;
        else if (ARG("-q") || ARG("--quiet")) o->quiet = 1;
        else if (ARG("--draw-boxes")) ONCE(O_BOXES), NEEDV(), o->draw_boxes = v;
        else if (ARG("--chunk")) ONCE(O_CHUNK), NEEDV(), o->chunk = (int)parse_long(a, v, 1, 1 << 16);
        else if (ARG("-c") || ARG("--ctx")) ONCE(O_CTX), NEEDV(), o->ctx = (int)parse_long(a, v, 16, 1 << 24);
        else usage_error("unknown option '%s'", a);
#undef ARG
#undef NEEDV
#undef ONCE
    }
    if (!o->model_dir) usage_error("-m MODEL_DIR is required");
    if (!o->prompt && !o->chat) usage_error("-p TEXT is required (or --chat)");
    if (o->chat && o->dump) usage_error("--dump works with one prompt, not with --chat");
    if (o->chat && o->raw) usage_error("--raw cannot be used with --chat");
    if (o->draw_boxes && !o->nimages && !o->chat) usage_error("--draw-boxes needs an image (-i)");
    // the first image is read again to draw on: a pipe gives its bytes once
    if (o->draw_boxes && o->nimages && (!strcmp(o->images[0], "-") || path_kind(o->images[0]) == FT_STREAM))
        usage_error("--draw-boxes: the first image %s is a pipe or device (read once); give it as a file", o->images[0]);
    if (o->dump) check_output_path(o->dump, "--dump");
    if (o->draw_boxes) check_output_path(o->draw_boxes, "--draw-boxes");
    if (o->raw && o->system) usage_error("--system cannot be used with --raw (write the system turn in the prompt)");
}

// ---------------------------------------------------------------------------- timing and progress

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int g_quiet;
static int stderr_tty;

// a live status line on a terminal (overwritten in place); nothing when piped or --quiet
static void progress(const char *fmt, ...) {
    if (g_quiet || !stderr_tty) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\r\033[K");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

static void progress_done(void) {
    if (!g_quiet && stderr_tty) fprintf(stderr, "\r\033[K"), fflush(stderr);
}

// ---------------------------------------------------------------------------- dump sink

// taps append rows (along dim 0) to the dump tensor of the same name: prefill chunks concatenate
typedef struct {
    Dump *d;
} DumpSink;

static void dump_tap(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    Dump *d = ((DumpSink *)ctx)->d;
    for (int i = 0; i < d->n; i++) {
        DumpTensor *t = &d->t[i];
        if (strcmp(t->name, name) != 0) continue;
        size_t add = (size_t)dtype_size[dt];
        for (int k = 0; k < ndim; k++) add *= (size_t)shape[k];
        void *nd = realloc(t->data, t->nbytes + add);
        if (!nd) glm_die(EXIT_INPUT, "out of memory (--dump)");
        memcpy((char *)nd + t->nbytes, data, add);
        t->data = nd;
        t->nbytes += add;
        t->shape[0] += shape[0];
        return;
    }
    dump_add(d, name, dt, ndim, shape, data);
}

// ---------------------------------------------------------------------------- sampling

typedef struct {
    int greedy;          // argmax
    float temp, top_p, penalty;
    int top_k;
    uint64_t rng;        // xorshift64* state
} Sampler;

static uint64_t rng_next(uint64_t *s) {
    // xorshift64*: small, portable, reproducible for a seed
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static float rng_uniform(uint64_t *s) { return (float)((rng_next(s) >> 40) * (1.0 / 16777216.0)); }

// RepetitionPenaltyLogitsProcessor: score < 0 ? score * p : score / p for every token already in the sequence
static void apply_repetition_penalty(float *logits, int V, const int *seq, int n, float p, unsigned char *seen) {
    if (p == 1.0f) return;
    memset(seen, 0, (size_t)V);
    for (int i = 0; i < n; i++)
        if (seq[i] >= 0 && seq[i] < V && !seen[seq[i]]) {
            seen[seq[i]] = 1;
            float *l = &logits[seq[i]];
            *l = *l < 0 ? *l * p : *l / p;
        }
}

typedef struct {
    float p;
    int id;
} ProbId;

static int cmp_probid(const void *a, const void *b) {
    const ProbId *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

// argmax (lowest id on ties, as torch.argmax) or temperature / top-k / top-p sampling (HF warper order)
static int sample(Sampler *s, const float *logits, int V, ProbId *buf) {
    if (s->greedy) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        buf[i].id = i;
        buf[i].p = expf((logits[i] - mx) / s->temp);
        sum += buf[i].p;
    }
    for (int i = 0; i < V; i++) buf[i].p = (float)(buf[i].p / sum);
    qsort(buf, (size_t)V, sizeof *buf, cmp_probid);
    int n = V;
    if (s->top_k > 0 && s->top_k < n) n = s->top_k;
    if (s->top_p > 0 && s->top_p < 1) {
        double c = 0;
        for (int i = 0; i < n; i++) {
            c += buf[i].p;
            if (c >= s->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += buf[i].p;
    double r = rng_uniform(&s->rng) * tot, c = 0;
    for (int i = 0; i < n; i++) {
        c += buf[i].p;
        if (r < c) return buf[i].id;
    }
    return buf[n - 1].id;
}

// ---------------------------------------------------------------------------- media: decode, preprocess, encode

#define MAX_VIDEOS 16

typedef struct {
    PixelBatch img;              // every image, one item each, in order of appearance
    PixelBatch vid;              // every video, one item each (t' = frames / 2, h, w)
    int **stamp_ids[MAX_VIDEOS]; // [video][t'] token ids of each temporal patch's timestamp text
    int *stamp_len[MAX_VIDEOS];  // [video][t']
    float *img_embeds;           // [n_img_tok, H] merger output of the encoded images
    float *vid_embeds;           // [n_vid_tok, H] merger output of the encoded video frames
    int64_t n_img_tok, n_vid_tok;
    int img_done, vid_done;      // items already through the vision tower
    int first_w, first_h;        // pixel size of the first image (grounding boxes)
    const char *first_path;      // the first image's file
} Media;

// the timestamp token ids of video v (a NULL-terminated list)
static void media_free_stamps(Media *m, int v) {
    if (m->stamp_ids[v])
        for (int f = 0; m->stamp_ids[v][f]; f++) free(m->stamp_ids[v][f]);
    free(m->stamp_ids[v]);
    free(m->stamp_len[v]);
    m->stamp_ids[v] = NULL, m->stamp_len[v] = NULL;
}

static void media_free(Media *m) {
    pixel_batch_free(&m->img);
    pixel_batch_free(&m->vid);
    for (int v = 0; v < MAX_VIDEOS; v++) media_free_stamps(m, v);
    free(m->img_embeds);
    free(m->vid_embeds);
    memset(m, 0, sizeof *m);
}

static PromptMedia media_prompt(const Media *m) {
    PromptMedia pm = {m->img.nitems, (const int(*)[3])m->img.grid, m->vid.nitems, (const int(*)[3])m->vid.grid,
                      (const int *const *const *)m->stamp_ids, (const int *const *)m->stamp_len};
    return pm;
}

// Glm4vImageProcessor on one file: decode, smart_resize, resize, normalise, patchify (appended to m->img)
static int media_add_image(Media *m, const char *path, const Options *o, const Config *c) {
    if (!c->has_vision) return glm_err("%s: the checkpoint has no vision tower (model.visual.*)", o->model_dir);
    if (m->img.nitems >= 64) return glm_err("%s: at most 64 images", path);
    Image im;
    if (image_load(&im, path, o->max_image_pixels)) return -1;
    if (!m->img.nitems) m->first_w = im.w, m->first_h = im.h, m->first_path = path;
    int rc = preprocess_frames(&m->img, &im, 1, &c->proc, o->resize, 0);
    if (rc) {
        char msg[sizeof glm_errmsg];
        snprintf(msg, sizeof msg, "%s", glm_errmsg);
        glm_err("%s: %s", path, msg);
    }
    image_free(&im);
    return rc;
}

// Glm4vVideoProcessor on a folder of frames (all of them, frame i at i / --fps s) or a video file (ffmpeg, sampled);
// the timestamp text of each temporal patch is tokenized here
static int media_add_video(Media *m, const char *path, const Options *o, const Config *c, const Tokenizer *tok) {
    if (!c->has_vision) return glm_err("%s: the checkpoint has no vision tower (model.visual.*)", o->model_dir);
    if (m->vid.nitems >= MAX_VIDEOS) return glm_err("%s: at most %d videos", path, MAX_VIDEOS);
    Image *frames = NULL;
    int nf = 0, rc = -1;
    double *times = NULL; // [nf] seconds of each frame
    struct stat st;
    if (stat(path, &st) != 0) return glm_err("%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (video_load_dir(&frames, &nf, path, o->max_image_pixels)) return -1;
        times = xmalloc((size_t)nf * sizeof(double));
        for (int i = 0; i < nf; i++) times[i] = i / (double)o->fps;
    } else if (video_load_file(&frames, &nf, &times, path, &c->proc, o->max_image_pixels))
        return -1;
    const int v = m->vid.nitems;
    char **texts = NULL;
    if (preprocess_frames(&m->vid, frames, nf, &c->proc, o->resize, 1)) {
        char msg[sizeof glm_errmsg];
        snprintf(msg, sizeof msg, "%s", glm_errmsg);
        glm_err("%s: %s", path, msg);
        goto done;
    }
    const int np = m->vid.grid[v][0];
    if (video_timestamps(&texts, np, times, nf, &c->proc) < 0) goto done;
    m->stamp_ids[v] = xcalloc((size_t)np + 1, sizeof(int *)); // NULL-terminated
    m->stamp_len[v] = xcalloc((size_t)np, sizeof(int));
    rc = 0;
    for (int f = 0; f < np && !rc; f++) {
        m->stamp_len[v][f] = tokenizer_encode(tok, texts[f], strlen(texts[f]), &m->stamp_ids[v][f]);
        if (m->stamp_len[v][f] < 0) rc = -1;
    }
    video_timestamps_free(texts, np);
done:
    for (int i = 0; i < nf; i++) image_free(&frames[i]);
    free(frames);
    free(times);
    return rc;
}

// run the vision tower over items [from, pb->nitems) of a batch, appending [tokens, H] to *embeds
static int encode_items(const Weights *w, const Config *c, const PixelBatch *pb, int from, float **embeds,
                        int64_t *ntok, const TapSink *taps) {
    const int m2 = c->vision.spatial_merge_size * c->vision.spatial_merge_size, H = c->text.hidden_size;
    if (from >= pb->nitems) return 0;
    PixelBatch sub = *pb; // a view of the items not encoded yet
    int64_t skip = 0;
    for (int i = 0; i < from; i++) skip += (int64_t)pb->grid[i][0] * pb->grid[i][1] * pb->grid[i][2];
    sub.pixel_values = pb->pixel_values + skip * pb->ncols;
    sub.npatches = pb->npatches - skip;
    sub.nitems = pb->nitems - from;
    memmove(sub.grid, pb->grid + from, (size_t)sub.nitems * sizeof sub.grid[0]);
    const int64_t add = sub.npatches / m2;
    size_t nsc = vision_scratch_floats(c, &sub), bytes;
    if (nsc == 0 || size_mul(nsc, sizeof(float), &bytes)) return -1;
    const VisionConfig *v = &c->vision;
    size_t maxk = 1176 > (size_t)4 * v->hidden_size ? 1176 : (size_t)4 * v->hidden_size;
    maxk = maxk > (size_t)v->mlp_size ? maxk : (size_t)v->mlp_size;
    maxk = maxk > (size_t)v->intermediate_size ? maxk : (size_t)v->intermediate_size;
    ops_reserve(maxk);
    float *scratch = malloc(bytes);
    float *out = realloc(*embeds, (size_t)(*ntok + add) * H * sizeof(float));
    if (out) *embeds = out;
    if (!scratch || !out) {
        free(scratch);
        return glm_err("out of memory: the vision tower needs %.1f MB", bytes / 1e6);
    }
    int rc = vision_forward(w, c, &sub, *embeds + (size_t)*ntok * H, scratch, taps);
    free(scratch);
    if (!rc) *ntok += add;
    return rc;
}

static int media_encode(Media *m, const Weights *w, const Config *c, const TapSink *taps) {
    if (m->img_done < m->img.nitems) progress("encoding %d image(s)", m->img.nitems - m->img_done);
    if (encode_items(w, c, &m->img, m->img_done, &m->img_embeds, &m->n_img_tok, taps)) return -1;
    m->img_done = m->img.nitems;
    if (m->vid_done < m->vid.nitems) progress("encoding %d video(s)", m->vid.nitems - m->vid_done);
    if (encode_items(w, c, &m->vid, m->vid_done, &m->vid_embeds, &m->n_vid_tok, taps)) return -1;
    m->vid_done = m->vid.nitems;
    progress_done();
    return 0;
}

// ---------------------------------------------------------------------------- engine and session

typedef struct {
    Checkpoint ck;
    Weights w;
    Tokenizer *tok;
    const Config *c;
    int think_open, think_close; // <think> / </think> ids (-1 if absent)
} Engine;

static void engine_load(Engine *e, const Options *o) {
    memset(e, 0, sizeof *e);
    progress("mapping %s", o->model_dir);
    if (checkpoint_open(&e->ck, o->model_dir)) glm_die_err(EXIT_INPUT);
    int ntensors = 0;
    for (int i = 0; i < e->ck.nfiles; i++) ntensors += e->ck.files[i].n;
    progress("checking the tensors of %d shard(s) (%d tensors)", e->ck.nfiles, ntensors);
    if (weights_bind(&e->w, &e->ck)) glm_die_err(EXIT_INPUT);
    e->c = &e->ck.cfg;
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", o->model_dir);
    progress("loading %s", path);
    if (!(e->tok = tokenizer_load(path))) glm_die_err(EXIT_INPUT);
    if (e->ck.cfg.chat_template == CHAT_TEMPLATE_OTHER && (!o->raw || o->chat))
        glm_die(EXIT_INPUT, "%s: this checkpoint's chat template is not the GLM-4.5V/4.6V format (GLM-4.1V-9B-Thinking "
                "uses its own, which glm4v.c does not reproduce): write the whole prompt with --raw", o->model_dir);
    e->think_open = tokenizer_token_id(e->tok, "<think>");
    e->think_close = tokenizer_token_id(e->tok, "</think>");
    const Config *c = e->c;
    int ids[6] = {c->image_token_id, c->video_token_id, c->image_start_token_id, c->image_end_token_id,
                  c->video_start_token_id, c->video_end_token_id};
    for (int i = 0; i < 6 && c->has_vision; i++)
        if (ids[i] >= tokenizer_vocab_size(e->tok))
            glm_die(EXIT_INPUT, "%s: special token id %d from config.json is not in tokenizer.json", o->model_dir, ids[i]);
    progress_done();
}

static void engine_free(Engine *e) {
    tokenizer_free(e->tok);
    weights_free(&e->w);
    checkpoint_close(&e->ck);
}

// writes text to stdout, dimming (terminal) or hiding (--hide-think) the <think>...</think> part
typedef struct {
    int tty, hide, in_think;
} Printer;

static void print_token(Printer *p, StreamDecoder *sd, int id, const Engine *e) {
    char buf[4096];
    if (id == e->think_open) {
        p->in_think = 1;
        if (!p->hide) fputs(p->tty ? "\033[2m<think>" : "<think>", stdout);
    } else if (id == e->think_close) {
        if (!p->hide) fputs(p->tty ? "</think>\033[0m" : "</think>", stdout);
        p->in_think = 0;
    } else {
        int n = stream_feed(sd, id, buf, sizeof buf);
        if (n > 0 && !(p->hide && p->in_think)) fwrite(buf, 1, (size_t)n, stdout);
    }
    fflush(stdout);
}

static void print_end(Printer *p, StreamDecoder *sd) {
    char tail[256];
    int nt = stream_flush(sd, tail, sizeof tail);
    if (nt > 0 && !(p->hide && p->in_think)) fwrite(tail, 1, (size_t)nt, stdout);
    if (p->tty && p->in_think && !p->hide) fputs("\033[0m", stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static int is_eos(const Config *c, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return 0;
}

// a KV cache with the ids it holds, and the buffers of one turn; sized once
typedef struct {
    Engine *e;           //
    Model md;            // KV cache + activations
    int max_ctx;         // tokens the cache holds
    int *cache_ids;      // [max_ctx] ids whose keys/values are in the cache (md.n_past of them)
    int64_t rope_delta;  // decode positions: cache position + rope_delta
    int all_logits;      // --dump: logits of every prompt position
    float *logits;       // [chunk (all_logits) or 1, V]
    float *last;         // [V] logits of the newest position
    float *emb;          // [chunk, H] embeddings of one prefill chunk
    unsigned char *seen; // [V] repetition penalty scratch
    ProbId *pbuf;        // [V] sampling scratch
    int *gen;            // [max_ctx] generated ids of the turn
    int ngen;            //
    double t_prefill, t_decode;
    int n_prefilled;     // prompt tokens actually run in the last prefill
    int n_cached;        // prompt tokens reused from the KV cache in the last prefill
} Session;

static int session_init(Session *s, Engine *e, int max_ctx, int chunk, int all_logits) {
    memset(s, 0, sizeof *s);
    const Config *c = e->c;
    const int V = c->text.vocab_size, H = c->text.hidden_size;
    s->e = e, s->max_ctx = max_ctx, s->all_logits = all_logits;
    if (model_init(&s->md, c, &e->w, max_ctx, chunk)) return -1;
    s->cache_ids = malloc((size_t)max_ctx * sizeof(int));
    s->gen = malloc((size_t)max_ctx * sizeof(int));
    s->logits = malloc((size_t)(all_logits ? chunk : 1) * V * sizeof(float));
    s->last = malloc((size_t)V * sizeof(float));
    s->emb = malloc((size_t)chunk * H * sizeof(float));
    s->seen = malloc((size_t)V);
    s->pbuf = malloc((size_t)V * sizeof(ProbId));
    if (!s->cache_ids || !s->gen || !s->logits || !s->last || !s->emb || !s->seen || !s->pbuf)
        return glm_err("out of memory (vocabulary and prompt buffers)");
    return 0;
}

static void session_free(Session *s) {
    model_free(&s->md);
    free(s->cache_ids), free(s->gen), free(s->logits), free(s->last), free(s->emb), free(s->seen), free(s->pbuf);
    memset(s, 0, sizeof *s);
}

// make the KV cache hold seq: keep the common prefix with what it holds, run the rest (in chunks) through the
// decoder with the image features scattered in (masked_scatter, in order); logits of the last position in s->last
static int session_prefill(Session *s, const Seq *seq, const int64_t *pos, int64_t rope_delta, const Media *m,
                           const TapSink *taps, DumpSink *dsink) {
    const Config *c = s->e->c;
    const int H = c->text.hidden_size, V = c->text.vocab_size, L = seq->n, chunk = s->md.chunk;
    if (L > s->max_ctx) return glm_err("the prompt (%d tokens) exceeds the context of %d tokens", L, s->max_ctx);
    for (int i = 0; i < L; i++)
        if (seq->ids[i] < 0 || seq->ids[i] >= V)
            return glm_err("token id %d is outside the model vocabulary (%d)", seq->ids[i], V);
    int keep = 0;
    while (keep < s->md.n_past && keep < L && s->cache_ids[keep] == seq->ids[keep]) keep++;
    if (keep == L) keep = L - 1; // the last position must run again to give its logits
    s->md.n_past = keep;
    s->rope_delta = rope_delta;
    // feature row of each vision token: the k-th image (video) token takes row k of the image (video) features
    int64_t ki = 0, kv = 0;
    for (int i = 0; i < keep; i++) ki += seq->type[i] == 1, kv += seq->type[i] == 2;
    double t0 = now_s();
    for (int i0 = keep; i0 < L; i0 += chunk) {
        const int n = L - i0 < chunk ? L - i0 : chunk;
        progress("prompt %d/%d tokens", i0 - keep, L - keep);
        embed_tokens(&s->e->w, c, seq->ids + i0, n, s->emb);
        for (int i = 0; i < n; i++) {
            const int t = seq->type[i0 + i];
            const float *src = t == 1 ? (ki < m->n_img_tok ? m->img_embeds + (size_t)ki * H : NULL)
                             : t == 2 ? (kv < m->n_vid_tok ? m->vid_embeds + (size_t)kv * H : NULL) : s->emb;
            if (!src) return glm_err("image features and image tokens do not match");
            if (t) memcpy(s->emb + (size_t)i * H, src, (size_t)H * sizeof(float));
            ki += t == 1, kv += t == 2;
        }
        model_forward(&s->md, s->emb, pos + i0, L, n, s->logits, s->all_logits, taps);
        if (dsink) dump_tap(dsink, "logits", DT_F32, 2, (int64_t[]){n, V}, s->logits);
        memcpy(s->last, s->all_logits ? s->logits + (size_t)(n - 1) * V : s->logits, (size_t)V * sizeof(float));
        memcpy(s->cache_ids + i0, seq->ids + i0, (size_t)n * sizeof(int));
    }
    if (ki != m->n_img_tok || kv != m->n_vid_tok)
        return glm_err("image features (%lld + %lld) and image tokens (%lld + %lld) do not match",
                       (long long)m->n_img_tok, (long long)m->n_vid_tok, (long long)ki, (long long)kv);
    progress_done();
    s->t_prefill = now_s() - t0;
    s->n_prefilled = L - keep;
    s->n_cached = keep;
    return 0;
}

// generate up to n_predict tokens after the prefill (stops at an eos id), streaming them; ids in s->gen
static void session_generate(Session *s, int n_predict, Sampler *smp, Printer *pr, DumpSink *dsink) {
    const Engine *e = s->e;
    const Config *c = e->c;
    const int V = c->text.vocab_size;
    StreamDecoder sd;
    stream_init(&sd, e->tok, 1);
    double t0 = now_s();
    s->ngen = 0;
    for (int step = 0; step < n_predict; step++) {
        // the sequence so far: what the cache holds (the prompt) + the tokens generated before this step
        int nseq = s->md.n_past;
        apply_repetition_penalty(s->last, V, s->cache_ids, nseq, smp->penalty, s->seen);
        int id = sample(smp, s->last, V, s->pbuf);
        if (dsink) dump_tap(dsink, "generated_logits", DT_F32, 2, (int64_t[]){1, V}, s->last);
        s->gen[s->ngen++] = id;
        if (is_eos(c, id)) break;
        if (pr) print_token(pr, &sd, id, e);
        if (step + 1 == n_predict || s->md.n_past >= s->max_ctx) break;
        // decode: position = cache position + rope_delta on all three rows
        int64_t p = s->md.n_past + s->rope_delta, p3[3] = {p, p, p};
        s->cache_ids[s->md.n_past] = id;
        embed_tokens(&e->w, c, &id, 1, s->emb);
        model_forward(&s->md, s->emb, p3, 1, 1, s->last, 0, NULL);
    }
    if (pr) print_end(pr, &sd);
    s->t_decode = now_s() - t0;
}

static Sampler make_sampler(const Options *o, const Config *c) {
    // HF generate: greedy unless generation_config samples; flags override; --temp 0 is greedy
    Sampler smp = {0};
    smp.greedy = !(o->temp > 0 || (o->temp < 0 && c->do_sample && c->temperature > 0));
    smp.temp = o->temp > 0 ? o->temp : c->temperature;
    smp.top_k = o->top_k >= 0 ? o->top_k : c->top_k;
    smp.top_p = o->top_p >= 0 ? o->top_p : c->top_p;
    smp.penalty = o->repeat_penalty > 0 ? o->repeat_penalty : (c->repetition_penalty > 0 ? c->repetition_penalty : 1);
    smp.rng = o->seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    if (!smp.rng) smp.rng = 1;
    return smp;
}

static void timing_line(const Options *o, const Session *s, double t_vision) {
    if (o->quiet) return;
    char cached[64] = "";
    if (s->n_cached) snprintf(cached, sizeof cached, " (+%d cached)", s->n_cached);
    fprintf(stderr, "glm4v: prompt %d tokens%s in %.2f s (%.1f tok/s), vision %.2f s | generated %d tokens in %.2f s (%.2f tok/s)\n",
            s->n_prefilled, cached, s->t_prefill, s->n_prefilled / (s->t_prefill + 1e-9), t_vision, s->ngen,
            s->t_decode, s->ngen / (s->t_decode + 1e-9));
}

// prompt text -> expanded ids and positions (Glm4vProcessor + get_rope_index)
static int build_seq(Seq *seq, int64_t **pos, int64_t *rope_delta, const char *text, const Engine *e, const Media *m) {
    int *raw = NULL;
    int nraw = tokenizer_encode(e->tok, text, strlen(text), &raw);
    if (nraw < 0) return -1;
    PromptMedia pm = media_prompt(m);
    int rc = prompt_expand(seq, raw, nraw, e->c, &pm);
    free(raw);
    if (rc) return -1;
    if (seq->n == 0) return glm_err("the prompt is empty");
    *pos = xmalloc((size_t)3 * seq->n * sizeof(int64_t));
    return prompt_positions(*pos, rope_delta, seq, e->c, &pm);
}

// ---------------------------------------------------------------------------- grounding boxes

// GLM-4.5V grounding: boxes of the answer (0-1000 coordinates) printed in pixels of the first image, and drawn
static int report_boxes(const Options *o, const Engine *e, const Session *s, const Media *m) {
    char *text = tokenizer_decode(e->tok, s->gen, s->ngen, 0); // special tokens kept: box and think markers
    if (!text) return -1;
    Box *b = NULL;
    int n = boxes_parse(text, &b), rc = 0;
    free(text);
    if (n > 0 && m->first_path) {
        for (int i = 0; i < n; i++) {
            int x1, y1, x2, y2;
            box_to_pixels(&b[i], m->first_w, m->first_h, &x1, &y1, &x2, &y2);
            if (b[i].is_point) fprintf(stderr, "glm4v: point %d: (%d, %d) px in %s\n", i + 1, x1, y1, m->first_path);
            else fprintf(stderr, "glm4v: box %d: (%d, %d)-(%d, %d) px in %s\n", i + 1, x1, y1, x2, y2, m->first_path);
        }
    }
    if (o->draw_boxes && m->first_path) {
        Image im;
        rc = image_load(&im, m->first_path, o->max_image_pixels);
        if (!rc) {
            rc = boxes_draw_png(o->draw_boxes, &im, b, n > 0 ? n : 0);
            image_free(&im);
        }
        if (!rc && !o->quiet) fprintf(stderr, "glm4v: %d box(es) drawn on %s\n", n > 0 ? n : 0, o->draw_boxes);
    }
    free(b);
    return rc;
}

// ---------------------------------------------------------------------------- one-shot run

static void put_meta_f(Dump *d, const char *k, double v) {
    char s[64];
    snprintf(s, sizeof s, "%.9g", v);
    dump_meta(d, k, s);
}

// provenance: what changes the numbers, nothing that does not (threads, paths, time)
static void dump_provenance(Dump *d, const Options *o, const Engine *e, const Sampler *s) {
    char v[64];
    dump_meta(d, "glm4v.version", GLM4V_VERSION);
    dump_meta(d, "glm4v.commit", GLM4V_GIT_COMMIT);
    snprintf(v, sizeof v, "%08x", e->c->config_crc);
    dump_meta(d, "config.crc32", v);
    dump_meta(d, "model.architecture", e->c->is_moe ? "Glm4vMoeForConditionalGeneration" : "Glm4vForConditionalGeneration");
    dump_meta(d, "gen.mode", s->greedy ? "greedy" : "sample");
    put_meta_f(d, "gen.temperature", s->greedy ? 0.0 : s->temp);
    snprintf(v, sizeof v, "%d", s->top_k);
    dump_meta(d, "gen.top_k", v);
    put_meta_f(d, "gen.top_p", s->top_p);
    put_meta_f(d, "gen.repetition_penalty", s->penalty);
    snprintf(v, sizeof v, "%llu", (unsigned long long)o->seed);
    dump_meta(d, "gen.seed", v);
    snprintf(v, sizeof v, "%d", o->n_predict);
    dump_meta(d, "gen.n_predict", v);
    dump_meta(d, "prompt.mode", o->raw ? "raw" : (o->think ? "chat,think" : "chat,no-think"));
    dump_meta(d, "preprocess.resize", o->resize == RESIZE_PIL ? "pil" : "torch");
    put_meta_f(d, "preprocess.fps", o->fps);
    dump_meta(d, "cpu.features", ops_features()); // informative: the kernels give the same bits on every ISA
}

static void dump_inputs(Dump *d, const Seq *seq, const int64_t *pos, const Media *m, int H) {
    const int L = seq->n;
    int64_t *ids64 = xmalloc((size_t)L * sizeof(int64_t));
    for (int i = 0; i < L; i++) ids64[i] = seq->ids[i];
    dump_add(d, "input_ids", DT_I64, 1, (int64_t[]){L}, ids64);
    dump_add(d, "position_ids", DT_I64, 2, (int64_t[]){3, L}, pos);
    free(ids64);
    const PixelBatch *pbs[2] = {&m->img, &m->vid};
    const char *pv[2] = {"pixel_values", "pixel_values_videos"}, *gn[2] = {"image_grid_thw", "video_grid_thw"};
    for (int k = 0; k < 2; k++) {
        if (!pbs[k]->nitems) continue;
        dump_add(d, pv[k], DT_F32, 2, (int64_t[]){pbs[k]->npatches, pbs[k]->ncols}, pbs[k]->pixel_values);
        int64_t g[64 * 3];
        for (int i = 0; i < pbs[k]->nitems * 3; i++) g[i] = pbs[k]->grid[i / 3][i % 3];
        dump_add(d, gn[k], DT_I64, 2, (int64_t[]){pbs[k]->nitems, 3}, g);
    }
    // image_embeds: the features of every image and video frame, in prompt order
    int64_t n = m->n_img_tok + m->n_vid_tok, ki = 0, kv = 0, r = 0;
    if (!n) return;
    float *all = xmalloc((size_t)n * H * sizeof(float));
    for (int i = 0; i < L && r < n; i++) {
        const float *src = seq->type[i] == 1 && ki < m->n_img_tok ? m->img_embeds + (size_t)ki++ * H
                         : seq->type[i] == 2 && kv < m->n_vid_tok ? m->vid_embeds + (size_t)kv++ * H : NULL;
        if (src) memcpy(all + (size_t)r++ * H, src, (size_t)H * sizeof(float));
    }
    dump_add(d, "image_embeds", DT_F32, 2, (int64_t[]){r, H}, all);
    free(all);
}

static int run_once(const Options *o) {
    Engine e;
    engine_load(&e, o);
    const Config *c = e.c;
    Dump dump;
    dump_init(&dump);
    DumpSink sink = {&dump};
    TapSink taps = {dump_tap, &sink};
    const TapSink *tp = o->dump ? &taps : NULL;
    DumpSink *ds = o->dump ? &sink : NULL;

    // inputs: media, prompt text (chat template or --raw), expanded ids, positions
    Media m = {0};
    for (int i = 0; i < o->nimages; i++) {
        progress("preprocessing image %d/%d", i + 1, o->nimages);
        if (media_add_image(&m, o->images[i], o, c)) glm_die_err(EXIT_INPUT);
    }
    if (o->video) {
        progress("reading video %s", o->video);
        if (media_add_video(&m, o->video, o, c, e.tok)) glm_die_err(EXIT_INPUT);
    }
    progress_done();
    char *text;
    if (o->raw) text = xstrdup(o->prompt);
    else {
        MediaKind kinds[65];
        int nk = 0;
        for (int i = 0; i < m.img.nitems; i++) kinds[nk++] = MEDIA_IMAGE;
        if (m.vid.nitems) kinds[nk++] = MEDIA_VIDEO;
        ChatPrompt p = {.system = o->system, .user = o->prompt, .media = kinds, .nmedia = nk, .think = o->think};
        text = chat_render(&p);
    }
    Seq seq = {0};
    int64_t *pos = NULL, rope_delta = 0;
    if (build_seq(&seq, &pos, &rope_delta, text, &e, &m)) glm_die_err(EXIT_INPUT);
    free(text);
    const int L = seq.n;
    const int64_t ctx = (int64_t)L + o->n_predict;
    if (ctx > c->text.max_position_embeddings)
        glm_die(EXIT_INPUT, "the prompt (%d tokens) plus -n %d exceeds the model context of %d tokens", L, o->n_predict,
                c->text.max_position_embeddings);
    Sampler smp = make_sampler(o, c);

    double t0 = now_s();
    if (media_encode(&m, &e.w, c, tp)) glm_die_err(EXIT_INPUT);
    double t_vision = now_s() - t0;
    if (o->dump) dump_inputs(&dump, &seq, pos, &m, c->text.hidden_size);

    Session s;
    if (session_init(&s, &e, (int)ctx, o->chunk < L ? o->chunk : L, o->dump != NULL)) glm_die_err(EXIT_INPUT);
    if (session_prefill(&s, &seq, pos, rope_delta, &m, tp, ds)) glm_die_err(EXIT_INPUT);
    Printer pr = {.tty = isatty(1), .hide = o->hide_think};
    if (o->n_predict) session_generate(&s, o->n_predict, &smp, &pr, ds);

    if (o->dump) {
        int64_t *g = xmalloc((size_t)(s.ngen + 1) * sizeof(int64_t));
        for (int i = 0; i < s.ngen; i++) g[i] = s.gen[i];
        dump_add(&dump, "generated_ids", DT_I64, 1, (int64_t[]){s.ngen}, g);
        free(g);
        if (!s.ngen) dump_add(&dump, "generated_logits", DT_F32, 2, (int64_t[]){0, c->text.vocab_size}, s.last);
        dump_provenance(&dump, o, &e, &smp);
        if (dump_write(&dump, o->dump)) glm_die_err(EXIT_INPUT);
    }
    if (report_boxes(o, &e, &s, &m)) glm_die_err(EXIT_INPUT);
    timing_line(o, &s, t_vision);
    session_free(&s);
    seq_free(&seq);
    free(pos);
    media_free(&m);
    dump_free(&dump);
    engine_free(&e);
    return 0;
}

// ---------------------------------------------------------------------------- interactive chat

typedef struct {
    ChatMsg *msgs;      // [n] the conversation so far
    char **texts;       // [n] owned contents
    MediaKind **kinds;  // [n] owned media lists
    int *nimg, *nvid;   // [n] media items each message added
    int n, cap;
} History;

static void history_push(History *h, int role, const char *text, const MediaKind *kinds, int nk, int nimg, int nvid) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 16;
        h->msgs = realloc(h->msgs, (size_t)h->cap * sizeof *h->msgs);
        h->texts = realloc(h->texts, (size_t)h->cap * sizeof *h->texts);
        h->kinds = realloc(h->kinds, (size_t)h->cap * sizeof *h->kinds);
        h->nimg = realloc(h->nimg, (size_t)h->cap * sizeof(int));
        h->nvid = realloc(h->nvid, (size_t)h->cap * sizeof(int));
        if (!h->msgs || !h->texts || !h->kinds || !h->nimg || !h->nvid) glm_die(EXIT_INPUT, "out of memory");
    }
    h->texts[h->n] = xstrdup(text);
    h->kinds[h->n] = nk ? xmalloc((size_t)nk * sizeof(MediaKind)) : NULL;
    if (nk) memcpy(h->kinds[h->n], kinds, (size_t)nk * sizeof(MediaKind));
    h->nimg[h->n] = nimg, h->nvid[h->n] = nvid;
    h->msgs[h->n] = (ChatMsg){role, h->texts[h->n], h->kinds[h->n], nk};
    h->n++;
}

static void history_pop(History *h) {
    h->n--;
    free(h->texts[h->n]);
    free(h->kinds[h->n]);
}

static void history_clear(History *h) {
    while (h->n) history_pop(h);
}

// forget the media added after the first nimg images / nvid videos (a turn that failed)
static void media_truncate(Media *m, const Config *c, int nimg, int nvid) {
    const int m2 = c->vision.spatial_merge_size * c->vision.spatial_merge_size;
    PixelBatch *pbs[2] = {&m->img, &m->vid};
    int keep[2] = {nimg, nvid}, *done[2] = {&m->img_done, &m->vid_done};
    int64_t *ntok[2] = {&m->n_img_tok, &m->n_vid_tok};
    for (int k = 0; k < 2; k++) {
        PixelBatch *pb = pbs[k];
        while (pb->nitems > keep[k]) {
            int i = --pb->nitems;
            int64_t p = (int64_t)pb->grid[i][0] * pb->grid[i][1] * pb->grid[i][2];
            pb->npatches -= p;
            if (*done[k] > i) *ntok[k] -= p / m2, *done[k] = i;
            if (k == 1) media_free_stamps(m, i);
        }
    }
}

// the answer kept in the history: the text after </think> (the reasoning is dropped, as the template does)
static char *answer_text(const Engine *e, const int *gen, int n) {
    int start = 0;
    for (int i = 0; i < n; i++)
        if (gen[i] == e->think_close) start = i + 1;
    int end = n;
    while (end > start && is_eos(e->c, gen[end - 1])) end--;
    char *t = tokenizer_decode(e->tok, gen + start, end - start, 1);
    return t ? t : xstrdup("");
}

static int run_chat(const Options *o) {
    Engine e;
    engine_load(&e, o);
    const Config *c = e.c;
    int ctx = o->ctx > 0 ? o->ctx : 8192;
    if (ctx > c->text.max_position_embeddings) ctx = c->text.max_position_embeddings;
    Session s;
    if (session_init(&s, &e, ctx, o->chunk, 0)) glm_die_err(EXIT_INPUT);
    Sampler smp = make_sampler(o, c);
    Printer pr = {.tty = isatty(1), .hide = o->hide_think};
    const int interactive = isatty(0);
    History h = {0};
    Media m = {0};
    MediaKind pending[65];
    int npending = 0, pimg = 0, pvid = 0, think = o->think;
    if (o->system) history_push(&h, CHAT_SYSTEM, o->system, NULL, 0, 0, 0);
    for (int i = 0; i < o->nimages; i++) { // -i / --video attach to the first message
        if (media_add_image(&m, o->images[i], o, c)) glm_die_err(EXIT_INPUT);
        pending[npending++] = MEDIA_IMAGE, pimg++;
    }
    if (o->video) {
        if (media_add_video(&m, o->video, o, c, e.tok)) glm_die_err(EXIT_INPUT);
        pending[npending++] = MEDIA_VIDEO, pvid++;
    }
    if (interactive && !o->quiet)
        fprintf(stderr, "glm4v chat: type a message; /image PATH, /video PATH, /think on|off, /reset, /quit\n");
    char *line = NULL;
    size_t cap = 0;
    const char *first = o->prompt; // -p gives the first message
    for (;;) {
        char *msg;
        if (first) {
            msg = xstrdup(first);
            first = NULL;
        } else {
            if (interactive) fputs("> ", stdout), fflush(stdout);
            ssize_t got = getline(&line, &cap, stdin);
            if (got < 0) break;
            while (got && (line[got - 1] == '\n' || line[got - 1] == '\r')) got--; // trailing newline off
            line[got] = 0;
            // a message keeps every byte, NULs included; a /command's path stays as typed
            msg = line[0] == '/' ? xstrdup(line) : prompt_text_from_bytes(line, (size_t)got);
        }
        if (msg[0] == '/') {
            char *arg = strchr(msg, ' ');
            if (arg) *arg++ = 0;
            while (arg && *arg == ' ') arg++;
            if (!strcmp(msg, "/quit") || !strcmp(msg, "/exit")) {
                free(msg);
                break;
            } else if (!strcmp(msg, "/reset")) {
                history_clear(&h);
                if (o->system) history_push(&h, CHAT_SYSTEM, o->system, NULL, 0, 0, 0);
                media_free(&m);
                npending = pimg = pvid = 0;
                s.md.n_past = 0;
                fprintf(stderr, "glm4v: conversation reset\n");
            } else if (!strcmp(msg, "/think") && arg && (!strcmp(arg, "on") || !strcmp(arg, "off"))) {
                think = !strcmp(arg, "on");
                fprintf(stderr, "glm4v: thinking %s\n", think ? "on" : "off");
            } else if ((!strcmp(msg, "/image") || !strcmp(msg, "/video")) && arg && *arg) {
                int video = msg[1] == 'v';
                int rc = video ? media_add_video(&m, arg, o, c, e.tok) : media_add_image(&m, arg, o, c);
                if (rc) fprintf(stderr, "glm4v: error: %s\n", glm_errmsg);
                else if (npending < 64) {
                    pending[npending++] = video ? MEDIA_VIDEO : MEDIA_IMAGE, pimg += !video, pvid += video;
                    fprintf(stderr, "glm4v: %s attached to the next message\n", arg);
                }
            } else fprintf(stderr, "glm4v: error: unknown command '%s' (/image PATH, /video PATH, /think on|off, /reset, /quit)\n", msg);
            free(msg);
            continue;
        }
        if (!msg[0] && !npending) {
            free(msg);
            continue;
        }
        // a user turn: render the whole conversation, reuse the cached prefix, run the rest, generate
        history_push(&h, CHAT_USER, msg, pending, npending, pimg, pvid);
        free(msg);
        int nimg0 = m.img.nitems - pimg, nvid0 = m.vid.nitems - pvid;
        npending = pimg = pvid = 0;
        char *text = chat_render_msgs(h.msgs, h.n, think, 1);
        Seq seq = {0};
        int64_t *pos = NULL, rope_delta = 0;
        double t0 = now_s();
        int rc = build_seq(&seq, &pos, &rope_delta, text, &e, &m);
        free(text);
        if (!rc && seq.n + 1 > ctx)
            rc = glm_err("the conversation (%d tokens) does not fit the context of %d tokens (--ctx, or /reset)", seq.n, ctx);
        if (!rc) rc = media_encode(&m, &e.w, c, NULL);
        double t_vision = now_s() - t0;
        if (!rc) rc = session_prefill(&s, &seq, pos, rope_delta, &m, NULL, NULL);
        if (rc) {
            fprintf(stderr, "glm4v: error: %s\n", glm_errmsg);
            history_pop(&h);
            media_truncate(&m, c, nimg0, nvid0);
        } else {
            int room = ctx - s.md.n_past;
            session_generate(&s, o->n_predict < room ? o->n_predict : room, &smp, &pr, NULL);
            char *ans = answer_text(&e, s.gen, s.ngen);
            history_push(&h, CHAT_ASSISTANT, ans, NULL, 0, 0, 0);
            free(ans);
            if (report_boxes(o, &e, &s, &m)) fprintf(stderr, "glm4v: error: %s\n", glm_errmsg);
            timing_line(o, &s, t_vision);
        }
        seq_free(&seq);
        free(pos);
    }
    free(line);
    history_clear(&h);
    free(h.msgs), free(h.texts), free(h.kinds), free(h.nimg), free(h.nvid);
    media_free(&m);
    session_free(&s);
    engine_free(&e);
    return 0;
}

// ---------------------------------------------------------------------------- main

#ifndef GLM4V_NO_MAIN
int main(int argc, char **argv) {
    Options o;
    parse_args(&o, argc, argv);
    g_quiet = o.quiet;
    stderr_tty = isatty(2);
    if (o.threads) omp_set_num_threads(o.threads);
    ops_init();
    int rc = o.chat ? run_chat(&o) : run_once(&o);
    free(o.prompt_text);
    free(o.system_text);
    return rc;
}
#endif
