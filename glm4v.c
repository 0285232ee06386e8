// glm4v.c - command line, prompt assembly (Glm4vProcessor), M-RoPE positions (get_rope_index), generation, --dump.
//   ./glm4v -m MODEL_DIR -p "question" [-i image.png ...] [--video DIR|FILE] [-n 128] [--dump out.safetensors]
#include "glm4v.h"

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

static char *prompt_from_file(const char *path) {
    if (strcmp(path, "-") == 0) {
        size_t cap = 4096, n = 0;
        char *buf = xmalloc(cap);
        size_t got;
        while ((got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
            n += got;
            if (n + 1 >= cap) {
                if (cap > (256u << 20)) glm_die(EXIT_INPUT, "stdin: prompt larger than 256 MB");
                cap *= 2;
                char *nb = realloc(buf, cap);
                if (!nb) glm_die(EXIT_INPUT, "out of memory");
                buf = nb;
            }
        }
        buf[n] = 0;
        return buf;
    }
    char *s = read_file(path, NULL, 256u << 20);
    if (!s) glm_die_err(EXIT_INPUT);
    return s;
}

static void parse_args(Options *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->think = 1, o->n_predict = 256, o->temp = -1, o->top_k = -1, o->top_p = -1, o->repeat_penalty = -1;
    o->fps = 2.0f, o->max_image_pixels = 100000000, o->chunk = 512;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(s) (strcmp(a, s) == 0)
#define NEEDV() (v ? (void)i++ : usage_error("%s needs a value", a))
        if (ARG("-h") || ARG("--help")) {
            usage(stdout);
            exit(0);
        } else if (ARG("--version")) {
            printf("glm4v.c %s (commit %s)\n", GLM4V_VERSION, GLM4V_GIT_COMMIT);
            exit(0);
        } else if (ARG("-m") || ARG("--model")) NEEDV(), o->model_dir = v;
        else if (ARG("-p") || ARG("--prompt")) NEEDV(), o->prompt = v;
        else if (ARG("-f") || ARG("--file")) NEEDV(), o->prompt = prompt_from_file(v);
        else if (ARG("--system")) NEEDV(), o->system = v;
        else if (ARG("--raw")) o->raw = 1;
        else if (ARG("--think")) o->think = 1;
        else if (ARG("--no-think")) o->think = 0;
        else if (ARG("-n") || ARG("--n-predict")) NEEDV(), o->n_predict = (int)parse_long(a, v, 0, 1 << 24);
        else if (ARG("--temp")) NEEDV(), o->temp = parse_float(a, v, 0, 100);
        else if (ARG("--top-k")) NEEDV(), o->top_k = (int)parse_long(a, v, 0, 1 << 30);
        else if (ARG("--top-p")) NEEDV(), o->top_p = parse_float(a, v, 0, 1);
        else if (ARG("--repeat-penalty")) NEEDV(), o->repeat_penalty = parse_float(a, v, 1e-3f, 100);
        else if (ARG("--seed")) NEEDV(), o->seed = (uint64_t)parse_long(a, v, 0, 0x7fffffffffffffffL);
        else if (ARG("-t") || ARG("--threads")) NEEDV(), o->threads = (int)parse_long(a, v, 1, 1024);
        else if (ARG("--dump")) NEEDV(), o->dump = v;
        else if (ARG("-i") || ARG("--image")) {
            NEEDV();
            if (o->nimages == MAX_MEDIA) usage_error("at most %d images", MAX_MEDIA);
            o->images[o->nimages++] = v;
        } else if (ARG("--video")) NEEDV(), o->video = v;
        else if (ARG("--fps")) NEEDV(), o->fps = parse_float(a, v, 1e-3f, 1000);
        else if (ARG("--max-image-pixels")) NEEDV(), o->max_image_pixels = parse_long(a, v, 1, 1L << 40);
        else if (ARG("--resize")) {
            NEEDV();
            if (strcmp(v, "torch") == 0) o->resize = RESIZE_TORCH;
            else if (strcmp(v, "pil") == 0) o->resize = RESIZE_PIL;
            else usage_error("--resize: '%s' is not torch or pil", v);
        } else if (ARG("--chat")) o->chat = 1;
        else if (ARG("--hide-think")) o->hide_think = 1;
        else if (ARG("-q") || ARG("--quiet")) o->quiet = 1;
        else if (ARG("--draw-boxes")) NEEDV(), o->draw_boxes = v;
        else if (ARG("--chunk")) NEEDV(), o->chunk = (int)parse_long(a, v, 1, 1 << 16);
        else usage_error("unknown option '%s'", a);
#undef ARG
#undef NEEDV
    }
    if (!o->model_dir) usage_error("-m MODEL_DIR is required");
    if (!o->prompt && !o->chat) usage_error("-p TEXT is required");
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

typedef struct {
    PixelBatch img;          // every image, one item each, in order
    PixelBatch vid;          // the video: one item (t = frames / 2, h, w)
    char **stamps;           // [vid.grid[0][0]] timestamp text per temporal patch
    int nstamps;             //
    float *img_embeds;       // [n_img_tok, H] merger output for the images
    float *vid_embeds;       // [n_vid_tok, H] merger output for the video frames
    int64_t n_img_tok, n_vid_tok;
    int first_w, first_h;    // size of the first image (for grounding boxes)
} Media;

static void media_free(Media *m) {
    pixel_batch_free(&m->img);
    pixel_batch_free(&m->vid);
    if (m->stamps) video_timestamps_free(m->stamps, m->nstamps);
    free(m->img_embeds);
    free(m->vid_embeds);
    memset(m, 0, sizeof *m);
}

// decode and preprocess every --image and the --video (Glm4vImageProcessor / Glm4vVideoProcessor)
static void media_load(Media *m, const Options *o, const Config *c) {
    memset(m, 0, sizeof *m);
    if ((o->nimages || o->video) && !c->has_vision)
        glm_die(EXIT_INPUT, "%s: the checkpoint has no vision tower (model.visual.*), cannot use images or video",
                o->model_dir);
    for (int i = 0; i < o->nimages; i++) {
        progress("preprocessing image %d/%d", i + 1, o->nimages);
        Image im;
        if (image_load(&im, o->images[i], o->max_image_pixels)) glm_die_err(EXIT_INPUT);
        if (i == 0) m->first_w = im.w, m->first_h = im.h;
        if (preprocess_frames(&m->img, &im, 1, &c->proc, o->resize, 0)) {
            image_free(&im);
            glm_die(EXIT_INPUT, "%s: %s", o->images[i], glm_errmsg);
        }
        image_free(&im);
    }
    if (o->video) {
        progress("reading video %s", o->video);
        Image *frames = NULL;
        int nf = 0;
        double *times = NULL; // [nf] seconds of each frame
        struct stat st;
        if (stat(o->video, &st) != 0) glm_die(EXIT_INPUT, "%s: %s", o->video, strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            // a folder of frames: all used, frame i at i / --fps seconds
            if (video_load_dir(&frames, &nf, o->video, o->max_image_pixels)) glm_die_err(EXIT_INPUT);
            times = xmalloc((size_t)nf * sizeof(double));
            for (int i = 0; i < nf; i++) times[i] = i / (double)o->fps;
        } else if (video_load_file(&frames, &nf, &times, o->video, &c->proc, o->max_image_pixels))
            glm_die_err(EXIT_INPUT);
        if (preprocess_frames(&m->vid, frames, nf, &c->proc, o->resize, 1)) glm_die(EXIT_INPUT, "%s: %s", o->video, glm_errmsg);
        m->nstamps = m->vid.grid[0][0];
        if (video_timestamps(&m->stamps, m->nstamps, times, nf, &c->proc) < 0) glm_die_err(EXIT_INPUT);
        free(times);
        for (int i = 0; i < nf; i++) image_free(&frames[i]);
        free(frames);
    }
    progress_done();
}

// run the vision tower over a batch: [sum t*h*w / merge^2, H]
static float *media_encode(const Weights *w, const Config *c, const PixelBatch *pb, int64_t *ntok, const TapSink *taps) {
    const int m2 = c->vision.spatial_merge_size * c->vision.spatial_merge_size;
    *ntok = pb->npatches / m2;
    if (!pb->npatches) return NULL;
    size_t nsc = vision_scratch_floats(c, pb), bytes;
    if (nsc == 0 || size_mul(nsc, sizeof(float), &bytes)) glm_die_err(EXIT_INPUT);
    float *scratch = malloc(bytes);
    float *out = malloc((size_t)*ntok * c->text.hidden_size * sizeof(float));
    if (!scratch || !out) glm_die(EXIT_INPUT, "out of memory: the vision tower needs %.1f MB", bytes / 1e6);
    const VisionConfig *v = &c->vision;
    size_t maxk = 1176 > (size_t)4 * v->hidden_size ? 1176 : (size_t)4 * v->hidden_size;
    maxk = maxk > (size_t)v->mlp_size ? maxk : (size_t)v->mlp_size;
    maxk = maxk > (size_t)v->intermediate_size ? maxk : (size_t)v->intermediate_size;
    ops_reserve(maxk);
    if (vision_forward(w, c, pb, out, scratch, taps)) glm_die_err(EXIT_INPUT);
    free(scratch);
    return out;
}

// ---------------------------------------------------------------------------- prompt assembly (Glm4vProcessor)

typedef struct {
    int *ids;    // [n] token ids after placeholder expansion
    int *type;   // [n] mm_token_type_ids: 0 text, 1 image token, 2 image token inside a video
    int n, cap;
} Seq;

static void seq_push(Seq *s, int id) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->ids = realloc(s->ids, (size_t)s->cap * sizeof(int));
        s->type = realloc(s->type, (size_t)s->cap * sizeof(int));
        if (!s->ids || !s->type) glm_die(EXIT_INPUT, "out of memory");
    }
    s->type[s->n] = 0;
    s->ids[s->n++] = id;
}

static void seq_free(Seq *s) {
    free(s->ids), free(s->type);
    memset(s, 0, sizeof *s);
}

// replace_image_token / replace_video_token: <|image|> -> <|image|> x (t*h*w / merge^2) for the next image;
// <|video|> -> per temporal patch "<|begin_of_image|>" + <|image|> x (h*w / merge^2) + "<|end_of_image|>" + timestamp
static void expand_prompt(Seq *out, const int *ids, int n, const Config *c, const Tokenizer *tok, const Media *m) {
    const int m2 = c->vision.spatial_merge_size * c->vision.spatial_merge_size;
    int next_img = 0, videos = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] == c->image_token_id) {
            if (next_img >= m->img.nitems)
                glm_die(EXIT_INPUT, "the prompt has more <|image|> placeholders than the %d image(s) given with -i",
                        m->img.nitems);
            const int *g = m->img.grid[next_img++];
            int64_t cnt = (int64_t)g[0] * g[1] * g[2] / m2;
            for (int64_t k = 0; k < cnt; k++) seq_push(out, c->image_token_id);
        } else if (ids[i] == c->video_token_id) {
            if (videos++ || !m->vid.nitems)
                glm_die(EXIT_INPUT, "the prompt has %s <|video|> placeholder than the %d video(s) given with --video",
                        "more", m->vid.nitems);
            const int *g = m->vid.grid[0];
            int64_t cnt = (int64_t)g[1] * g[2] / m2;
            for (int f = 0; f < g[0]; f++) {
                seq_push(out, c->image_start_token_id);
                for (int64_t k = 0; k < cnt; k++) seq_push(out, c->image_token_id);
                seq_push(out, c->image_end_token_id);
                int *ts = NULL;
                int nts = tokenizer_encode(tok, m->stamps[f], strlen(m->stamps[f]), &ts);
                if (nts < 0) glm_die_err(EXIT_INPUT);
                for (int k = 0; k < nts; k++) seq_push(out, ts[k]);
                free(ts);
            }
        } else seq_push(out, ids[i]);
    }
    if (next_img != m->img.nitems)
        glm_die(EXIT_INPUT, "%d image(s) given with -i but the prompt has %d <|image|> placeholder(s)", m->img.nitems,
                next_img);
    if (m->vid.nitems && !videos) glm_die(EXIT_INPUT, "a video was given but the prompt has no <|video|> placeholder");
    // create_mm_token_type_ids: 2 for <|image|> between <|begin_of_video|> and <|end_of_video|>, 1 for other ones
    int starts = 0, ends = 0;
    for (int i = 0; i < out->n; i++) {
        starts += out->ids[i] == c->video_start_token_id;
        ends += out->ids[i] == c->video_end_token_id;
        out->type[i] = out->ids[i] != c->image_token_id ? 0 : (starts > ends ? 2 : 1);
    }
}

// Glm4vModel.get_rope_index: 3-D positions pos[3][n] (rows t, h, w); returns rope_delta
static int64_t get_rope_index(int64_t *pos, const Seq *s, const Config *c, const Media *m) {
    const int merge = c->vision.spatial_merge_size, n = s->n;
    int64_t cur = 0, mx = -1;
    int next_img = 0, next_frame = 0;
    for (int i = 0; i < n;) {
        int type = s->type[i], j = i;
        while (j < n && s->type[j] == type) j++;
        if (type == 0) { // text: arange on all three rows
            for (int k = i; k < j; k++) pos[k] = pos[n + k] = pos[2 * n + k] = cur++;
            i = j;
            continue;
        }
        // vision run(s): each grid (1, h, w) gives t = cur, h = cur + row, w = cur + col in raster order
        while (i < j) {
            int gh, gw;
            if (type == 1) {
                if (next_img >= m->img.nitems) glm_die(EXIT_INPUT, "internal: image grid missing");
                gh = m->img.grid[next_img][1], gw = m->img.grid[next_img][2];
                next_img++;
            } else {
                if (next_frame >= m->vid.grid[0][0]) glm_die(EXIT_INPUT, "internal: video grid missing");
                gh = m->vid.grid[0][1], gw = m->vid.grid[0][2];
                next_frame++;
            }
            int lh = gh / merge, lw = gw / merge;
            if (i + lh * lw > j) glm_die(EXIT_INPUT, "an <|image|> run is shorter than its image grid (%dx%d)", lh, lw);
            for (int r = 0; r < lh; r++)
                for (int q = 0; q < lw; q++, i++) pos[i] = cur, pos[n + i] = cur + r, pos[2 * n + i] = cur + q;
            // current_pos += max(grid_thw[1], grid_thw[2]) // spatial_merge_size
            cur += (gh > gw ? gh : gw) / merge;
        }
    }
    for (int i = 0; i < 3 * n; i++) mx = pos[i] > mx ? pos[i] : mx;
    // mrope_position_deltas = llm_positions.max() + 1 - len(input_ids)
    return mx + 1 - n;
}

// ---------------------------------------------------------------------------- generation

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
    progress("checking tensors");
    if (weights_bind(&e->w, &e->ck)) glm_die_err(EXIT_INPUT);
    e->c = &e->ck.cfg;
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", o->model_dir);
    progress("loading %s", path);
    if (!(e->tok = tokenizer_load(path))) glm_die_err(EXIT_INPUT);
    e->think_open = tokenizer_token_id(e->tok, "<think>");
    e->think_close = tokenizer_token_id(e->tok, "</think>");
    const Config *c = e->c;
    int ids[6] = {c->image_token_id, c->video_token_id, c->image_start_token_id, c->image_end_token_id,
                  c->video_start_token_id, c->video_end_token_id};
    for (int i = 0; i < 6; i++)
        if (ids[i] >= tokenizer_vocab_size(e->tok) && c->has_vision)
            glm_die(EXIT_INPUT, "%s: special token id %d from config.json is not in tokenizer.json", o->model_dir, ids[i]);
    progress_done();
}

static void engine_free(Engine *e) {
    tokenizer_free(e->tok);
    weights_free(&e->w);
    checkpoint_close(&e->ck);
}

// the prompt text: chat template (GLM-4.5V format) or --raw verbatim
static char *build_prompt_text(const Options *o, const Media *m) {
    if (o->raw) return xstrdup(o->prompt);
    MediaKind kinds[MAX_MEDIA + 1];
    int nk = 0;
    for (int i = 0; i < m->img.nitems && nk < MAX_MEDIA; i++) kinds[nk++] = MEDIA_IMAGE;
    if (m->vid.nitems) kinds[nk++] = MEDIA_VIDEO;
    ChatPrompt p = {.system = o->system, .user = o->prompt, .media = kinds, .nmedia = nk, .think = o->think};
    return chat_render(&p);
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
        return;
    }
    if (id == e->think_close) {
        if (!p->hide) fputs(p->tty ? "</think>\033[0m" : "</think>", stdout);
        p->in_think = 0;
        return;
    }
    int n = stream_feed(sd, id, buf, sizeof buf);
    if (n > 0 && !(p->hide && p->in_think)) fwrite(buf, 1, (size_t)n, stdout);
    fflush(stdout);
}

static int is_eos(const Config *c, int id) {
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return 1;
    return 0;
}

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
    dump_meta(d, "cpu.features", ops_features());
    const char *core = getenv("OPENBLAS_CORETYPE");
    dump_meta(d, "blas.coretype", core && *core ? core : "auto");
}

static int run_once(const Options *o) {
    Engine e;
    engine_load(&e, o);
    const Config *c = e.c;
    const int H = c->text.hidden_size, V = c->text.vocab_size;
    Dump dump;
    dump_init(&dump);
    DumpSink sink = {&dump};
    TapSink taps = {o->dump ? dump_tap : NULL, &sink};
    const TapSink *tp = o->dump ? &taps : NULL;

    // --- inputs: media, prompt text, ids, positions
    Media m;
    media_load(&m, o, c);
    char *text = build_prompt_text(o, &m);
    int *raw_ids = NULL;
    int nraw = tokenizer_encode(e.tok, text, strlen(text), &raw_ids);
    if (nraw < 0) glm_die_err(EXIT_INPUT);
    free(text);
    Seq s = {0};
    expand_prompt(&s, raw_ids, nraw, c, e.tok, &m);
    free(raw_ids);
    const int L = s.n;
    if (L == 0) glm_die(EXIT_INPUT, "the prompt is empty");
    for (int i = 0; i < L; i++)
        if (s.ids[i] < 0 || s.ids[i] >= V) glm_die(EXIT_INPUT, "token id %d is outside the model vocabulary (%d)", s.ids[i], V);
    int64_t ctx = (int64_t)L + o->n_predict;
    if (ctx > c->text.max_position_embeddings)
        glm_die(EXIT_INPUT, "the prompt (%d tokens) plus -n %d exceeds the model context of %d tokens", L, o->n_predict,
                c->text.max_position_embeddings);
    int64_t *pos = xmalloc((size_t)3 * L * sizeof(int64_t));
    int64_t rope_delta = get_rope_index(pos, &s, c, &m);

    // --- Sampler: HF generate defaults (greedy unless generation_config samples), flags override
    Sampler smp = {0};
    smp.greedy = !(o->temp > 0 || (o->temp < 0 && c->do_sample && c->temperature > 0));
    smp.temp = o->temp > 0 ? o->temp : c->temperature;
    smp.top_k = o->top_k >= 0 ? o->top_k : c->top_k;
    smp.top_p = o->top_p >= 0 ? o->top_p : c->top_p;
    smp.penalty = o->repeat_penalty > 0 ? o->repeat_penalty : (c->repetition_penalty > 0 ? c->repetition_penalty : 1);
    smp.rng = o->seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    if (!smp.rng) smp.rng = 1;

    // --- vision tower
    double t0 = now_s();
    if (m.img.nitems) {
        progress("encoding %d image(s): %lld patches", m.img.nitems, (long long)m.img.npatches);
        m.img_embeds = media_encode(&e.w, c, &m.img, &m.n_img_tok, tp);
    }
    if (m.vid.nitems) {
        progress("encoding video: %d frame pairs, %lld patches", m.vid.grid[0][0], (long long)m.vid.npatches);
        m.vid_embeds = media_encode(&e.w, c, &m.vid, &m.n_vid_tok, tp);
    }
    progress_done();

    // --- model inputs: embeddings with the image features scattered in (masked_scatter, in order)
    float *embeds = malloc((size_t)L * H * sizeof(float));
    if (!embeds) glm_die(EXIT_INPUT, "out of memory (%d prompt tokens)", L);
    embed_tokens(&e.w, c, s.ids, L, embeds);
    int64_t ki = 0, kv = 0;
    for (int i = 0; i < L; i++) {
        if (s.type[i] == 1 && ki < m.n_img_tok)
            memcpy(embeds + (size_t)i * H, m.img_embeds + (size_t)ki++ * H, (size_t)H * sizeof(float));
        else if (s.type[i] == 2 && kv < m.n_vid_tok)
            memcpy(embeds + (size_t)i * H, m.vid_embeds + (size_t)kv++ * H, (size_t)H * sizeof(float));
    }
    if (ki != m.n_img_tok || kv != m.n_vid_tok)
        glm_die(EXIT_INPUT, "image features and image tokens do not match (%lld + %lld features)", (long long)m.n_img_tok,
                (long long)m.n_vid_tok);
    if (o->dump) {
        int64_t *ids64 = xmalloc((size_t)L * sizeof(int64_t));
        for (int i = 0; i < L; i++) ids64[i] = s.ids[i];
        dump_add(&dump, "input_ids", DT_I64, 1, (int64_t[]){L}, ids64);
        dump_add(&dump, "position_ids", DT_I64, 2, (int64_t[]){3, L}, pos);
        free(ids64);
        const PixelBatch *pbs[2] = {&m.img, &m.vid};
        const char *pv[2] = {"pixel_values", "pixel_values_videos"}, *gn[2] = {"image_grid_thw", "video_grid_thw"};
        for (int k = 0; k < 2; k++) {
            if (!pbs[k]->nitems) continue;
            dump_add(&dump, pv[k], DT_F32, 2, (int64_t[]){pbs[k]->npatches, pbs[k]->ncols}, pbs[k]->pixel_values);
            int64_t g[MAX_MEDIA * 3];
            for (int i = 0; i < pbs[k]->nitems * 3; i++) g[i] = pbs[k]->grid[i / 3][i % 3];
            dump_add(&dump, gn[k], DT_I64, 2, (int64_t[]){pbs[k]->nitems, 3}, g);
        }
        if (m.n_img_tok + m.n_vid_tok) { // image_embeds in prompt order
            float *all = xmalloc((size_t)(m.n_img_tok + m.n_vid_tok) * H * sizeof(float));
            int64_t r = 0;
            for (int i = 0; i < L; i++)
                if (s.type[i]) memcpy(all + (size_t)r++ * H, embeds + (size_t)i * H, (size_t)H * sizeof(float));
            dump_add(&dump, "image_embeds", DT_F32, 2, (int64_t[]){r, H}, all);
            free(all);
        }
    }

    // --- prefill in chunks, then decode
    Model md;
    int chunk = o->chunk < L ? o->chunk : L;
    if (model_init(&md, c, &e.w, (int)ctx, chunk)) glm_die_err(EXIT_INPUT);
    float *logits = malloc((size_t)(o->dump ? chunk : 1) * V * sizeof(float));
    float *last = malloc((size_t)V * sizeof(float));
    int *seq = malloc((size_t)ctx * sizeof(int));
    unsigned char *seen = malloc((size_t)V);
    ProbId *pbuf = malloc((size_t)V * sizeof(ProbId));
    if (!logits || !last || !seq || !seen || !pbuf) glm_die(EXIT_INPUT, "out of memory (vocabulary buffers)");
    memcpy(seq, s.ids, (size_t)L * sizeof(int));
    double t1 = now_s();
    for (int i0 = 0; i0 < L; i0 += chunk) {
        int n = L - i0 < chunk ? L - i0 : chunk;
        progress("prompt %d/%d tokens", i0, L);
        model_forward(&md, embeds + (size_t)i0 * H, pos + i0, L, n, logits, o->dump != NULL, tp);
        if (o->dump) dump_tap(&sink, "logits", DT_F32, 2, (int64_t[]){n, V}, logits);
        memcpy(last, o->dump ? logits + (size_t)(n - 1) * V : logits, (size_t)V * sizeof(float));
    }
    progress_done();
    double t2 = now_s();

    Printer pr = {.tty = isatty(1), .hide = o->hide_think};
    StreamDecoder sd;
    stream_init(&sd, e.tok, 1);
    float *emb1 = malloc((size_t)H * sizeof(float));
    int64_t *gen_ids = malloc((size_t)(o->n_predict + 1) * sizeof(int64_t));
    int ngen = 0;
    for (int step = 0; step < o->n_predict; step++) {
        apply_repetition_penalty(last, V, seq, L + ngen, smp.penalty, seen);
        int id = sample(&smp, last, V, pbuf);
        if (o->dump) dump_tap(&sink, "generated_logits", DT_F32, 2, (int64_t[]){1, V}, last);
        gen_ids[ngen] = id;
        seq[L + ngen++] = id;
        if (is_eos(c, id)) break;
        print_token(&pr, &sd, id, &e);
        if (step + 1 == o->n_predict) break;
        // decode: position = cache position + rope_delta on all three rows
        int64_t p = md.n_past + rope_delta, p3[3] = {p, p, p};
        embed_tokens(&e.w, c, &id, 1, emb1);
        model_forward(&md, emb1, p3, 1, 1, last, 0, NULL);
    }
    char tail[256];
    int nt = stream_flush(&sd, tail, sizeof tail);
    if (nt > 0 && !(pr.hide && pr.in_think)) fwrite(tail, 1, (size_t)nt, stdout);
    if (pr.tty && pr.in_think && !pr.hide) fputs("\033[0m", stdout);
    if (ngen || o->n_predict) fputc('\n', stdout);
    fflush(stdout);
    double t3 = now_s();

    if (o->dump) {
        dump_add(&dump, "generated_ids", DT_I64, 1, (int64_t[]){ngen}, gen_ids);
        if (!ngen) dump_add(&dump, "generated_logits", DT_F32, 2, (int64_t[]){0, V}, last);
        dump_provenance(&dump, o, &e, &smp);
        if (dump_write(&dump, o->dump)) glm_die_err(EXIT_INPUT);
    }
    if (!o->quiet)
        fprintf(stderr, "glm4v: prompt %d tokens in %.2f s (%.1f tok/s), vision %.2f s | generated %d tokens (%.2f tok/s)\n",
                L, t2 - t1, L / (t2 - t1 + 1e-9), t1 - t0, ngen, ngen > 1 ? (ngen - 1) / (t3 - t2 + 1e-9) : 0.0);
    free(emb1), free(gen_ids), free(logits), free(last), free(seq), free(seen), free(pbuf), free(embeds), free(pos);
    model_free(&md);
    seq_free(&s);
    media_free(&m);
    dump_free(&dump);
    engine_free(&e);
    return 0;
}

// ---------------------------------------------------------------------------- main

// OpenBLAS reads OPENBLAS_CORETYPE when it is loaded: when unset, pick the kernel for this CPU and re-exec once
static void ensure_blas_coretype(char **argv) {
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if ((ct && *ct) || getenv("GLM4V_NO_REEXEC")) return;
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512f") ? "SKYLAKEX" : __builtin_cpu_supports("avx2") ? "HASWELL" : NULL;
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("GLM4V_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    // exec failed: carry on with OpenBLAS's own choice
}

#ifndef GLM4V_NO_MAIN
int main(int argc, char **argv) {
    ensure_blas_coretype(argv);
    Options o;
    parse_args(&o, argc, argv);
    g_quiet = o.quiet;
    stderr_tty = isatty(2);
    if (o.threads) omp_set_num_threads(o.threads);
    ops_init();
    if (o.chat) glm_die(EXIT_USAGE, "--chat is not implemented yet");
    return run_once(&o);
}
#endif
