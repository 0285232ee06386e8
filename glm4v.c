// SPDX-License-Identifier: MIT
// glm4v.c - the command line: options, the one-shot run and --chat, printing (streamed text, thinking dimmed,
// progress, timing, grounding boxes) and --dump formatting. Everything that computes is the engine's (engine.h).
//   ./glm4v -m MODEL_DIR -p "question" [-i image.png ...] [--video DIR|FILE] [-n 128] [--dump out.safetensors]
#include "boxes.h"
#include "chat_output.h"
#include "dump.h"
#include "engine.h"
#include "fileio.h"
#include "json.h"
#include "messages.h"
#include "ops.h"
#include "quant.h"
#include "quantize.h"
#include "quant_config.h"
#include "pdf.h"
#include "scorer.h"
#include "server.h"

#include <errno.h>
#include <limits.h>
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

#define MAX_MEDIA ENGINE_MAX_IMAGES // -i images on one command line

typedef struct {
    const char *model_dir;   // -m (a folder, or a GGUF text file)
    const char *mmproj;      // --mmproj: a GGUF model's vision file
    const char *processor;   // --processor: an HF processor config over the model's (GGUF: HF's defaults)
    const char *prompt;      // -p
    char *prompt_text;       // -p / -f text (owned; prompt points here): prompt_text_from_bytes, NULs as C0 80
    char *system_text;       // --system text (owned; system points here), the same way
    const char *system;      // --system
    int raw;                 // --raw: prompt used verbatim
    int ignore_eos;          // --ignore-eos: generate -n tokens, stop ids included (llama.cpp's --ignore-eos)
    int think;               // 1 thinking on (default), 0 --no-think
    int think_set;           // --think or --no-think was given (enable_thinking is passed to the template)
    const char *messages;    // --messages FILE.json: the whole conversation (OpenAI format)
    const char *tools;       // --tools FILE.json: OpenAI tools
    const char *chat_template; // --chat-template FILE: overrides the model folder's template
    const char *template_kwargs; // --chat-template-kwargs JSON: extra template variables
    int show_prompt;         // --show-prompt: print the rendered template and exit
    int n_predict;           // -n
    float temp;              // --temp (<0: from generation_config / greedy)
    int top_k;               // --top-k (<0: default)
    float top_p;             // --top-p (<0: default)
    float repeat_penalty;    // --repeat-penalty (<0: default)
    uint64_t seed;           // --seed
    int threads;             // -t
    const char *dump;        // --dump
    const char *images[MAX_MEDIA]; // -i / --pdf, in order
    unsigned char is_pdf[MAX_MEDIA]; // 1: given with --pdf (else a PDF is recognised by its %PDF- header)
    int nimages;
    const char *pages;       // --pages (every PDF)
    int max_pages;           // --max-pages
    int dpi;                 // --dpi (0: the automatic rule of pdf.h)
    float pdf_timeout;       // --pdf-timeout: seconds one page (or the page count) may take
    const char *video;       // --video
    float fps;               // --fps (frame directory rate)
    ResizeMode resize;       // --resize torch|pil|pil13
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
            "       glm4v serve -m MODEL_DIR [options]   (an OpenAI-compatible HTTP server: glm4v serve --help)\n"
            "       glm4v score -m MODEL_DIR CASES.jsonl [-o REPORT.json]   (check another backend: glm4v score --help)\n"
            "GLM-4.5V / GLM-4.6V (MoE) and GLM-4.1V / GLM-4.6V-Flash (dense) on the CPU, matching HF transformers.\n"
            "\nmodel:\n"
            "  -m, --model DIR          Hugging Face model folder (config.json, *.safetensors, tokenizer.json), or a\n"
            "                           llama.cpp GGUF text file (FILE.gguf: glm4moe / glm4; split files: any one)\n"
            "      --mmproj FILE        the GGUF model's vision tower (mmproj-*.gguf) for images and video\n"
            "      --processor FILE     an HF processor_config.json / preprocessor_config.json whose image and video\n"
            "                           settings (min/max pixels, fps, ...) replace the model's (GGUF: HF's defaults)\n"
            "\ninput:\n"
            "  -p, --prompt TEXT        the user message (or the whole prompt with --raw)\n"
            "  -f, --file FILE          read the prompt from a file ('-' = stdin)\n"
            "      --system TEXT        system message (chat template)\n"
            "      --raw                use the prompt verbatim: no chat template; special tokens written as text count\n"
            "      --messages FILE      the whole conversation as an OpenAI messages JSON array (image_url / video_url\n"
            "                           parts: data: URIs or local paths)\n"
            "      --tools FILE         OpenAI tools JSON array, given to the chat template\n"
            "      --chat-template FILE use this Jinja chat template instead of the model folder's\n"
            "      --chat-template-kwargs JSON  extra template variables, e.g. '{\"enable_thinking\": false}'\n"
            "      --show-prompt        print the rendered chat template (before media expansion) and exit\n"
            "  -i, --image FILE         attach an image (repeatable; JPEG, PNG, BMP, GIF, TGA, PSD, HDR, PNM) or a PDF\n"
            "      --pdf FILE           attach the pages of a PDF (also -i FILE when it starts with %%PDF-): one image each\n"
            "      --pages LIST         PDF pages, e.g. 1-3,7 (default: all, at most --max-pages)\n"
            "      --max-pages N        refuse PDFs with more pages selected than N (default 16)\n"
            "      --dpi N              render PDF pages at N dpi (default: 150, lowered per page to fit max_pixels)\n"
            "      --pdf-timeout S      give up on a PDF page that takes longer than S seconds to render (default 20)\n"
            "      --video PATH         attach a video: a folder of frames (file-name order) or a video file (ffmpeg)\n"
            "      --fps F              frame rate of a frame folder (default 2)\n"
            "      --max-image-pixels N refuse images larger than N pixels before decoding (default 100000000)\n"
            "      --resize torch|pil   image resize: torchvision (default, = Glm4vImageProcessor) or Pillow\n"
            "                           (pil: Pillow <= 12; pil13: Pillow >= 13, = Glm4vImageProcessorPil)\n"
            "      --chat               interactive conversation on stdin (/image, /video, /think on|off, /reset, /quit)\n"
            "\ngeneration:\n"
            "  -n, --n-predict N        tokens to generate (default 256; 0 = only read the prompt)\n"
            "      --ignore-eos         do not stop at the model's stop ids: generate all N tokens\n"
            "      --think / --no-think thinking mode on (default) or off (/nothink + empty <think></think>)\n"
            "      --temp T             temperature; 0 = greedy (default: greedy unless generation_config samples)\n"
            "      --top-k K            sample among the K most likely tokens (0 = all)\n"
            "      --top-p P            nucleus sampling threshold (over what --top-k kept, as HF; 0: the top token)\n"
            "      --repeat-penalty R   HF repetition penalty (1 = off)\n"
            "      --seed S             random seed for sampling (default 0)\n"
            "\noutput:\n"
            "      --dump FILE          write inputs, positions, hidden states, logits, image embeddings (safetensors)\n"
            "      --hide-think         do not print the <think>...</think> part\n"
            "      --draw-boxes OUT.png draw the answer's grounding boxes on the image they refer to: the last one (a PDF: OUT-pN.png per page)\n"
            "  -q, --quiet              no progress or timing lines on stderr\n"
            "\nperformance:\n"
            "  -t, --threads N          threads (default: all cores; physical cores are best)\n"
            "      --chunk N            prompt tokens per prefill step (default 512)\n"
            "      --compute f32|bf16   Linear arithmetic: f32 (default; HF fp32 parity) or bf16 (inputs rounded to bf16,\n"
            "                           fp32 accumulation, as a torch.bfloat16 model: about twice as fast on AVX512_BF16)\n"
            "  -c, --ctx N              chat: tokens the KV cache holds (default 8192, at most the model's context)\n"
            "\nquantised checkpoints (FP8 / int8 / int4 compressed-tensors folders, block FP8):\n"
            "      --act-quant on|off|hf the scheme's dynamic activation quantisation (default on; off: fp32 activations;\n"
            "                           hf: not the routed experts' inputs, as transformers 5 computes it)\n"
            "  glm4v quantize IN_DIR OUT_DIR --scheme fp8|int8|int4 [--group 128]\n"
            "                           write a compressed-tensors folder (FP8 per channel + dynamic FP8 activations,\n"
            "                           int8 per channel, int4 in groups; round to nearest, symmetric)\n"
            "\n  -h, --help               this help\n"
            "      --version            version and build\n");
}

_Noreturn static void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    glm_usage_vdie(NULL, fmt, ap);
}

static long parse_long(const char *flag, const char *s, long lo, long hi) { return glm_flag_long(NULL, flag, s, lo, hi); }

// a flag's number in [lo, hi], bounds given in double so that the values the message names are accepted (a float
// 1e-3f is 0.0010000000475: "--fps 0.001" was refused as out of "[0.001, 1000]")
static float parse_float(const char *flag, const char *s, double lo, double hi) {
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
    enum { O_MODEL, O_PROMPT, O_SYSTEM, O_THINK, O_MESSAGES, O_TOOLS, O_TEMPLATE, O_KWARGS, O_N, O_TEMP, O_TOPK, O_TOPP,
           O_PENALTY, O_SEED, O_THREADS, O_DUMP, O_PAGES, O_MAXPAGES, O_DPI, O_PDFTIMEOUT, O_VIDEO, O_FPS, O_MAXPIX,
           O_RESIZE, O_BOXES, O_CHUNK, O_ACTQUANT, O_COMPUTE, O_CTX, O_MMPROJ, O_PROCESSOR, O_COUNT };
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
        else if (ARG("--mmproj")) ONCE(O_MMPROJ), NEEDV(), o->mmproj = v;
        else if (ARG("--processor")) ONCE(O_PROCESSOR), NEEDV(), o->processor = v;
        else if (ARG("-p") || ARG("--prompt"))
            ONCE(O_PROMPT), NEEDV(), o->prompt = o->prompt_text = prompt_text_from_bytes(v, strlen(v));
        else if (ARG("-f") || ARG("--file")) {
            ONCE(O_PROMPT), NEEDV();
            o->prompt = o->prompt_text = prompt_from_file(v);
        } else if (ARG("--system"))
            ONCE(O_SYSTEM), NEEDV(), o->system = o->system_text = prompt_text_from_bytes(v, strlen(v));
        else if (ARG("--raw")) o->raw = 1;
        else if (ARG("--ignore-eos")) o->ignore_eos = 1;
        else if (ARG("--think")) ONCE(O_THINK), o->think = 1, o->think_set = 1;
        else if (ARG("--no-think")) ONCE(O_THINK), o->think = 0, o->think_set = 1;
        else if (ARG("--messages")) ONCE(O_MESSAGES), NEEDV(), o->messages = v;
        else if (ARG("--tools")) ONCE(O_TOOLS), NEEDV(), o->tools = v;
        else if (ARG("--chat-template")) ONCE(O_TEMPLATE), NEEDV(), o->chat_template = v;
        else if (ARG("--chat-template-kwargs")) ONCE(O_KWARGS), NEEDV(), o->template_kwargs = v;
        else if (ARG("--show-prompt")) o->show_prompt = 1;
        else if (ARG("-n") || ARG("--n-predict")) ONCE(O_N), NEEDV(), o->n_predict = (int)parse_long(a, v, 0, 1 << 24);
        else if (ARG("--temp")) ONCE(O_TEMP), NEEDV(), o->temp = parse_float(a, v, 0, 100);
        else if (ARG("--top-k")) ONCE(O_TOPK), NEEDV(), o->top_k = (int)parse_long(a, v, 0, 1 << 30);
        else if (ARG("--top-p")) ONCE(O_TOPP), NEEDV(), o->top_p = parse_float(a, v, 0, 1);
        else if (ARG("--repeat-penalty")) ONCE(O_PENALTY), NEEDV(), o->repeat_penalty = parse_float(a, v, 1e-3, 100);
        else if (ARG("--seed")) ONCE(O_SEED), NEEDV(), o->seed = (uint64_t)parse_long(a, v, 0, 0x7fffffffffffffffL);
        else if (ARG("-t") || ARG("--threads")) ONCE(O_THREADS), NEEDV(), o->threads = (int)parse_long(a, v, 1, 1024);
        else if (ARG("--dump")) ONCE(O_DUMP), NEEDV(), o->dump = v;
        else if (ARG("-i") || ARG("--image") || ARG("--pdf")) {
            NEEDV();
            if (o->nimages == MAX_MEDIA) usage_error("at most %d images", MAX_MEDIA);
            o->is_pdf[o->nimages] = ARG("--pdf");
            o->images[o->nimages++] = v;
        } else if (ARG("--pages")) ONCE(O_PAGES), NEEDV(), o->pages = v;
        else if (ARG("--max-pages")) ONCE(O_MAXPAGES), NEEDV(), o->max_pages = (int)parse_long(a, v, 1, ENGINE_MAX_IMAGES);
        else if (ARG("--dpi")) ONCE(O_DPI), NEEDV(), o->dpi = (int)parse_long(a, v, 1, PDF_DPI_MAX);
        else if (ARG("--pdf-timeout")) ONCE(O_PDFTIMEOUT), NEEDV(), o->pdf_timeout = parse_float(a, v, 0.1, 86400);
        else if (ARG("--video")) ONCE(O_VIDEO), NEEDV(), o->video = v;
        else if (ARG("--fps")) ONCE(O_FPS), NEEDV(), o->fps = parse_float(a, v, 1e-3, 1000);
        else if (ARG("--max-image-pixels")) ONCE(O_MAXPIX), NEEDV(), o->max_image_pixels = parse_long(a, v, 1, 1L << 40);
        else if (ARG("--resize")) {
            ONCE(O_RESIZE), NEEDV();
            if (strcmp(v, "torch") == 0) o->resize = RESIZE_TORCH;
            else if (strcmp(v, "pil") == 0) o->resize = RESIZE_PIL;
            else if (strcmp(v, "pil13") == 0) o->resize = RESIZE_PIL13;
            else usage_error("--resize: '%s' is not torch, pil or pil13", v);
        } else if (ARG("--chat")) o->chat = 1;
        else if (ARG("--hide-think")) o->hide_think = 1;
        else if (ARG("-q") || ARG("--quiet")) o->quiet = 1;
        else if (ARG("--draw-boxes")) ONCE(O_BOXES), NEEDV(), o->draw_boxes = v;
        else if (ARG("--chunk")) ONCE(O_CHUNK), NEEDV(), o->chunk = (int)parse_long(a, v, 1, 1 << 16);
        else if (ARG("--compute")) {
            ONCE(O_COMPUTE), NEEDV();
            if (engine_set_compute(v)) usage_error("%s", glm_errmsg);
        } else if (ARG("--act-quant")) { // quantised checkpoints: the scheme's dynamic activation quantisation
            ONCE(O_ACTQUANT), NEEDV();
            if (strcmp(v, "on") == 0) quant_act_enabled = 1, quant_act_experts = 1;
            else if (strcmp(v, "off") == 0) quant_act_enabled = 0;
            else if (strcmp(v, "hf") == 0) quant_act_enabled = 1, quant_act_experts = 0;
            else usage_error("--act-quant: '%s' is not on, off or hf", v);
        }
        else if (ARG("-c") || ARG("--ctx")) ONCE(O_CTX), NEEDV(), o->ctx = (int)parse_long(a, v, 16, 1 << 24);
        else usage_error("unknown option '%s'", a);
#undef ARG
#undef NEEDV
#undef ONCE
    }
    if (!o->model_dir) usage_error("-m MODEL_DIR is required");
    if (!o->prompt && !o->chat && !o->messages) usage_error("-p TEXT is required (or --messages FILE, or --chat)");
    if (o->messages && (o->prompt || o->system || o->raw || o->chat || o->nimages || o->video))
        usage_error("--messages holds the whole conversation: no -p, -f, --system, --raw, --chat, -i or --video with it");
    if (o->raw && (o->tools || o->chat_template || o->template_kwargs))
        usage_error("--raw uses no chat template: --tools, --chat-template and --chat-template-kwargs need the template");
    if (o->chat && o->dump) usage_error("--dump works with one prompt, not with --chat");
    if (o->chat && o->raw) usage_error("--raw cannot be used with --chat");
    if (o->draw_boxes && !o->nimages && !o->chat) usage_error("--draw-boxes needs an image (-i) or a PDF");
    // the last image (the one boxes refer to) is read again to draw on: a pipe gives its bytes once
    if (o->draw_boxes && o->nimages &&
        (!strcmp(o->images[o->nimages - 1], "-") || path_kind(o->images[o->nimages - 1]) == FT_STREAM))
        usage_error("--draw-boxes: the last image %s is a pipe or device (read once); give it as a file",
                    o->images[o->nimages - 1]);
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

static int g_quiet;    // --quiet
static int stderr_tty; // stderr is a terminal

// a live status line on a terminal (overwritten in place); nothing when piped or --quiet. msg NULL: erase it
static void progress_line(void *ctx, const char *msg) {
    (void)ctx;
    if (g_quiet || !stderr_tty) return;
    fprintf(stderr, "\r\033[K%s", msg ? msg : "");
    fflush(stderr);
}

// a formatted status line
static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    progress_line(NULL, msg);
}

// ---------------------------------------------------------------------------- printing and generation

// writes text to stdout: the whole output with the <think>...</think> part dimmed on a terminal, or (--hide-think)
// only the answer, split from the reasoning by the same parser the server uses (chat_output.c)
typedef struct {
    int tty;                 // stdout is a terminal: thinking dimmed
    int hide;                // --hide-think: only content deltas are printed
    int in_think;            // inside <think>...</think> (dimming)
    StreamDecoder raw;       // the generated text with every token (the parser's input, --hide-think)
    ChatOutputStream *parse; // --hide-think: the reasoning / content / tool-call splitter
} Printer;

// a content delta of the splitter goes to stdout; reasoning and tool calls do not
static int print_delta(void *user, const ChatDelta *d) {
    (void)user;
    if (d->kind == CHAT_DELTA_CONTENT) fwrite(d->text, 1, d->len, stdout), fflush(stdout);
    return 0;
}

// a printer for one answer; prompt_ends_in_think: the rendered prompt opened thinking
static void printer_start(Printer *p, const Engine *e, int hide, int prompt_ends_in_think) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(1), p->hide = hide;
    if (!hide) return;
    stream_init(&p->raw, e->tok, 0);
    ChatOutputOptions opt = {.tools = NULL, .prompt_ends_in_think = prompt_ends_in_think, .no_tool_parse = 1};
    if (!(p->parse = chat_output_stream_new(&opt, print_delta, NULL))) glm_die(EXIT_INPUT, "out of memory");
}

// print one generated token (the think markers as styled text)
static void print_token(Printer *p, StreamDecoder *sd, int id, const Engine *e) {
    char buf[4096];
    if (p->hide) {
        int n = stream_feed(&p->raw, id, buf, sizeof buf);
        if (n > 0) chat_output_stream_feed(p->parse, buf, (size_t)n);
        return;
    }
    if (id == e->think_open) {
        p->in_think = 1;
        fputs(p->tty ? "\033[2m<think>" : "<think>", stdout);
    } else if (id == e->think_close) {
        fputs(p->tty ? "</think>\033[0m" : "</think>", stdout);
        p->in_think = 0;
    } else {
        int n = stream_feed(sd, id, buf, sizeof buf);
        if (n > 0) fwrite(buf, 1, (size_t)n, stdout);
    }
    fflush(stdout);
}

// the held-back bytes of an unfinished character, the style reset and the final newline
static void print_end(Printer *p, StreamDecoder *sd) {
    char tail[256];
    if (p->hide) {
        int nt = stream_flush(&p->raw, tail, sizeof tail);
        if (nt > 0) chat_output_stream_feed(p->parse, tail, (size_t)nt);
        chat_output_stream_finish(p->parse);
        chat_output_stream_free(p->parse);
        p->parse = NULL;
    } else {
        int nt = stream_flush(sd, tail, sizeof tail);
        if (nt > 0) fwrite(tail, 1, (size_t)nt, stdout);
        if (p->tty && p->in_think) fputs("\033[0m", stdout);
    }
    fputc('\n', stdout);
    fflush(stdout);
}

// one turn's generated tokens and timings
typedef struct {
    int *ids;        // [cap] generated ids
    int n, cap;      // generated / room
    double t_prefill; // seconds of the prefill
    double t_decode;  // seconds of the generation
} Turn;

// generate up to n_predict tokens after the prefill (stops at an eos id unless ignore_eos), streaming them; the dump
// (when given) gets each step's logits as "generated_logits"
static int generate(Session *s, Turn *t, int n_predict, int ignore_eos, Sampler *smp, Printer *pr, Dump *dump) {
    const Engine *e = s->e;
    const int V = e->c->text.vocab_size;
    StreamDecoder sd;
    stream_init(&sd, e->tok, 1);
    double t0 = now_s();
    int rc = 0;
    t->n = 0;
    for (int step = 0; step < n_predict && t->n < t->cap; step++) {
        // the sequence so far: what the cache holds (the prompt) + the tokens generated before this step
        int id = sampler_sample(smp, s->last, s->cache_ids, s->md.n_past);
        if (dump) dump_tap(dump, "generated_logits", DT_F32, 2, (int64_t[]){1, V}, s->last);
        t->ids[t->n++] = id;
        if (!ignore_eos && engine_is_eos(e, id)) break;
        if (pr) print_token(pr, &sd, id, e);
        if (step + 1 == n_predict || s->md.n_past >= s->max_ctx) break;
        if ((rc = session_step(s, id))) break;
    }
    if (pr) print_end(pr, &sd);
    t->t_decode = now_s() - t0;
    return rc;
}

static void timing_line(const Options *o, const Session *s, const Turn *t, double t_vision) {
    if (o->quiet) return;
    char cached[64] = "";
    if (s->n_cached) snprintf(cached, sizeof cached, " (+%d cached)", s->n_cached);
    fprintf(stderr, "glm4v: prompt %d tokens%s in %.2f s (%.1f tok/s), vision %.2f s | generated %d tokens in %.2f s (%.2f tok/s)\n",
            s->n_prefilled, cached, t->t_prefill, s->n_prefilled / (t->t_prefill + 1e-9), t_vision, t->n,
            t->t_decode, t->n / (t->t_decode + 1e-9));
}

// the tool calls of an answer (--tools), parsed as the server parses them, one line each on stderr
static void report_tool_calls(const Engine *e, const Turn *t, const cJSON *tools, int think_open) {
    int n = t->n;
    while (n > 0 && engine_is_eos(e, t->ids[n - 1])) n--;
    char *text = tokenizer_decode(e->tok, t->ids, n, 0);
    ChatOutputOptions opt = {.tools = tools, .prompt_ends_in_think = think_open};
    ChatOutput out;
    if (text && chat_output_parse(text, strlen(text), &opt, &out) == 0) {
        for (int i = 0; i < out.n_tool_calls; i++)
            fprintf(stderr, "glm4v: tool call %s: %s %s\n", out.tool_calls[i].id, out.tool_calls[i].name,
                    out.tool_calls[i].arguments);
        chat_output_free(&out);
    }
    free(text);
}

// ---------------------------------------------------------------------------- PDF documents

static MediaOptions media_options(const Options *o) {
    MediaOptions mo = {.resize = o->resize, .max_image_pixels = o->max_image_pixels, .fps = o->fps};
    return mo;
}

// --pages, --max-pages, --dpi, --max-image-pixels, --pdf-timeout
static PdfOptions pdf_options(const Options *o) {
    PdfOptions po = {.pages = o->pages, .max_pages = o->max_pages, .dpi = o->dpi,
                     .max_image_pixels = o->max_image_pixels, .timeout_s = o->pdf_timeout};
    return po;
}

// MediaPolicy.on_document of --messages: a document's cost line on stderr, as for -i (ctx: the ProcConfig)
static void cost_line(void *ctx, const MediaRef *ref) {
    char line[2400], name[300]; // a file by its path, bytes by their part ("messages[0].content[1].file (x.pdf)")
    if (ref->path) snprintf(name, sizeof name, "%s", ref->name);
    else snprintf(name, sizeof name, "%s (%s)", ref->param, ref->name);
    if (pdf_cost_line(&ref->doc, name, ctx, line, sizeof line) >= 0) fprintf(stderr, "%s\n", line);
}

// the PDFs of a run: each one's rendered pages (kept for --draw-boxes and the dump's metadata)
typedef struct {
    const char *path[MAX_MEDIA]; // file as given
    PdfDoc doc[MAX_MEDIA];       // its rendered pages
    int first_img[MAX_MEDIA];    // index of its first page among the prompt's images
    int n;                       // PDFs
} PdfInputs;

static void pdf_inputs_free(PdfInputs *pi, int keep) {
    while (pi->n > keep) pdf_doc_free(&pi->doc[--pi->n]);
}

// visual tokens of image i of the prompt: grid_h * grid_w / merge^2
static int64_t image_tokens(const Media *m, const Engine *e, int i) {
    const int m2 = e->c->vision.spatial_merge_size * e->c->vision.spatial_merge_size;
    return (int64_t)m->img.grid[i][0] * m->img.grid[i][1] * m->img.grid[i][2] / m2;
}

// visual tokens of every PDF page in the prompt
static int64_t pdf_tokens(const PdfInputs *pi, const Media *m, const Engine *e) {
    int64_t n = 0;
    for (int k = 0; k < pi->n; k++)
        for (int i = 0; i < pi->doc[k].n; i++) n += image_tokens(m, e, pi->first_img[k] + i);
    return n;
}

// an -i / --pdf / /image input: a PDF (by --pdf or its %PDF- header) becomes one image per selected page, with the
// cost line "report.pdf: 3 pages, 1 x 1560 + 2 x 1204 = 3968 visual tokens" on stderr; anything else is an image.
// Returns the images added, or -1 + glm_errmsg
static int add_input(Media *m, const Engine *e, const Options *o, const char *path, int force_pdf, PdfInputs *pi) {
    const MediaOptions mo = media_options(o);
    if (!force_pdf && !pdf_file_is_pdf(path)) {
        const char *dot = strrchr(path, '.');
        if (media_add_image(m, e, path, &mo)) {
            if (dot && !strcasecmp(dot, ".pdf") && file_exists(path))
                return glm_err("%s: not a PDF (no %%PDF- header) and not an image", path);
            return -1;
        }
        return 1;
    }
    if (!e->c->has_vision) return glm_err("%s: the checkpoint has no vision tower (model.visual.*)", e->ck.dir);
    if (pi->n >= MAX_MEDIA) return glm_err("%s: too many PDFs", path);
    const PdfOptions po = pdf_options(o);
    progress("rendering %s", path);
    PdfDoc *d = &pi->doc[pi->n];
    if (pdf_render_file(d, path, &po, &e->c->proc)) return -1;
    const int first = m->img.nitems;
    if (first + d->n > ENGINE_MAX_IMAGES) {
        glm_err("%s: %d pages do not fit: one prompt takes %d images and %d are left: choose fewer with --pages", path,
                d->n, ENGINE_MAX_IMAGES, ENGINE_MAX_IMAGES - first);
        pdf_doc_free(d);
        return -1;
    }
    for (int i = 0; i < d->n; i++) {
        char name[4200];
        snprintf(name, sizeof name, "%s#page=%d", path, d->pages[i].page);
        progress("preprocessing %s page %d (%d dpi)", path, d->pages[i].page, d->pages[i].dpi);
        if (media_add_image_rgb(m, e, &d->pages[i].img, name, &mo)) {
            media_truncate(m, e, first, m->vid.nitems);
            pdf_doc_free(d);
            return -1;
        }
        if (!o->draw_boxes) free(d->pages[i].img.rgb), d->pages[i].img.rgb = NULL; // only needed to draw on (w, h kept)
    }
    progress_line(NULL, NULL);
    pi->path[pi->n] = path, pi->first_img[pi->n] = first, pi->n++;
    char line[2400];
    pdf_cost_line(d, path, &e->c->proc, line, sizeof line);
    fprintf(stderr, "%s\n", line);
    return d->n;
}

// the dump's record of how the pages were made: renderer and version, command, page numbers, DPIs, sizes
static void dump_pdf_meta(Dump *dp, const PdfInputs *pi) {
    if (!pi->n) return;
    char pages[4096] = "", dpis[4096] = "", imgs[4096] = "", pts[8192] = "", px[8192] = "";
    size_t a = 0, b = 0, c = 0, d = 0, f = 0;
#define APPEND(buf, n, ...) (n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, __VA_ARGS__))
    for (int k = 0; k < pi->n; k++)
        for (int i = 0; i < pi->doc[k].n; i++) {
            const PdfPage *p = &pi->doc[k].pages[i];
            const char *sep = k || i ? "," : "";
            APPEND(pages, a, "%s%d", sep, p->page);
            APPEND(dpis, b, "%s%d", sep, p->dpi);
            APPEND(imgs, c, "%s%d", sep, pi->first_img[k] + i);
            APPEND(pts, d, "%s%.6gx%.6g", sep, p->w_pt, p->h_pt);
            APPEND(px, f, "%s%dx%d", sep, p->img.w, p->img.h); // as rendered
        }
#undef APPEND
    dump_meta(dp, "pdf.renderer", pi->doc[0].renderer);
    dump_meta(dp, "pdf.command", "pdftoppm -r DPI -f PAGE -l PAGE -singlefile FILE (PPM, RGB, MediaBox)");
    dump_meta(dp, "pdf.pages", pages);
    dump_meta(dp, "pdf.dpi", dpis);
    dump_meta(dp, "pdf.images", imgs);
    dump_meta(dp, "pdf.page_size_pt", pts);
    dump_meta(dp, "pdf.page_size_px", px);
    char nd[16];
    snprintf(nd, sizeof nd, "%d", pi->n);
    dump_meta(dp, "pdf.documents", nd);
}

// grounding boxes on a PDF's pages: each box on the page the answer names before it (pdf_box_pages), printed in page
// pixels and in PDF points from the page's top-left corner (pixels * 72 / dpi), drawn into OUT-pN.png per page
static int report_pdf_boxes(const Options *o, const char *text, const Box *b, int n, const PdfInputs *pi, int doc) {
    const PdfDoc *d = &pi->doc[doc];
    const char *path = pi->path[doc];
    if (n <= 0) {
        if (o->draw_boxes && !o->quiet) fprintf(stderr, "glm4v: the answer has no boxes: no page drawn\n");
        return 0;
    }
    int *pg = xmalloc((size_t)n * sizeof(int)), *pages = xmalloc((size_t)d->n * sizeof(int));
    for (int i = 0; i < d->n; i++) pages[i] = d->pages[i].page;
    pdf_box_pages(text, n, pages, d->n, pg);
    for (int i = 0; i < n; i++) {
        char line[4600];
        pdf_box_line(line, sizeof line, i, &b[i], &d->pages[pg[i]], path);
        fprintf(stderr, "glm4v: %s\n", line);
    }
    int rc = 0;
    if (o->draw_boxes) {
        char(*written)[4200] = xmalloc((size_t)d->n * sizeof *written);
        int files = pdf_draw_boxes(o->draw_boxes, d, b, pg, n, written);
        for (int k = 0; k < files && !o->quiet; k++) fprintf(stderr, "glm4v: boxes drawn on %s\n", written[k]);
        rc = files < 0 ? -1 : 0;
        free(written);
    }
    free(pg);
    free(pages);
    return rc;
}

// ---------------------------------------------------------------------------- grounding boxes

// GLM-4.5V grounding: boxes of the answer (0-1000 coordinates) refer to the last image of the user turn being
// answered (a turn without images: the last image before it; the chat page follows the same rule), printed in its
// pixels and drawn on it; when that image is a page of a PDF, each box goes to the page the answer names
// (report_pdf_boxes)
static int report_boxes(const Options *o, const Engine *e, const Turn *t, const Media *m, const PdfInputs *pi) {
    char *text = tokenizer_decode(e->tok, t->ids, t->n, 0); // special tokens kept: box and think markers
    if (!text) return -1;
    Box *b = NULL;
    int n = boxes_parse(text, &b), rc = 0;
    const int last = m->img.nitems - 1;
    for (int k = 0; k < pi->n; k++)
        if (last >= pi->first_img[k] && last < pi->first_img[k] + pi->doc[k].n) {
            rc = report_pdf_boxes(o, text, b, n, pi, k);
            free(text);
            free(b);
            return rc;
        }
    free(text);
    const char *img = last >= 0 ? m->img_path[last] : NULL;
    if (n > 0 && img) {
        for (int i = 0; i < n; i++) {
            int x1, y1, x2, y2;
            box_to_pixels(&b[i], m->img_w[last], m->img_h[last], &x1, &y1, &x2, &y2);
            if (b[i].is_point) fprintf(stderr, "glm4v: point %d: (%d, %d) px in %s\n", i + 1, x1, y1, img);
            else fprintf(stderr, "glm4v: box %d: (%d, %d)-(%d, %d) px in %s\n", i + 1, x1, y1, x2, y2, img);
        }
    }
    if (o->draw_boxes && img) {
        Image im;
        rc = image_load(&im, img, o->max_image_pixels);
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
    dump_meta(d, "preprocess.resize", o->resize == RESIZE_PIL ? "pil" : o->resize == RESIZE_PIL13 ? "pil13" : "torch");
    put_meta_f(d, "preprocess.fps", o->fps);
    dump_meta(d, "compute.mode", engine_compute());     // f32 / bf16: changes the numbers
    dump_meta(d, "compute.path", engine_compute_path()); // the kernel (the bf16 paths give the same bits)
    dump_meta(d, "cpu.features", ops_features()); // informative: the kernels give the same bits on every ISA
}

// the model's inputs as HF names them: input_ids, position_ids, pixel values and grids, image_embeds
static void dump_inputs(Dump *d, const Engine *e, const Prompt *p, const Media *m) {
    const int L = p->seq.n, H = e->c->text.hidden_size;
    int64_t *ids64 = xmalloc((size_t)L * sizeof(int64_t));
    for (int i = 0; i < L; i++) ids64[i] = p->seq.ids[i];
    dump_add(d, "input_ids", DT_I64, 1, (int64_t[]){L}, ids64);
    dump_add(d, "position_ids", DT_I64, 2, (int64_t[]){3, L}, p->pos);
    free(ids64);
    const PixelBatch *pbs[2] = {&m->img, &m->vid};
    const char *pv[2] = {"pixel_values", "pixel_values_videos"}, *gn[2] = {"image_grid_thw", "video_grid_thw"};
    for (int k = 0; k < 2; k++) {
        if (!pbs[k]->nitems) continue;
        dump_add(d, pv[k], DT_F32, 2, (int64_t[]){pbs[k]->npatches, pbs[k]->ncols}, pbs[k]->pixel_values);
        int64_t g[ENGINE_MAX_IMAGES * 3];
        for (int i = 0; i < pbs[k]->nitems * 3; i++) g[i] = pbs[k]->grid[i / 3][i % 3];
        dump_add(d, gn[k], DT_I64, 2, (int64_t[]){pbs[k]->nitems, 3}, g);
    }
    // image_embeds: the features of every image and video frame, in prompt order
    const int64_t n = m->n_img_tok + m->n_vid_tok;
    if (!n) return;
    float *all = xmalloc((size_t)n * H * sizeof(float));
    int64_t r = engine_gather_features(e, p, m, all);
    if (r >= 0) dump_add(d, "image_embeds", DT_F32, 2, (int64_t[]){r, H}, all);
    free(all);
}

static SamplerParams sampler_params(const Options *o) {
    SamplerParams sp = {.temp = o->temp, .top_k = o->top_k, .top_p = o->top_p, .repeat_penalty = o->repeat_penalty,
                        .seed = o->seed};
    return sp;
}

static void load_engine(Engine *e, const Options *o) {
    if (engine_load_files(e, o->model_dir, o->mmproj, o->processor, o->chat_template, progress_line, NULL))
        glm_die_err(EXIT_INPUT);
}

// the template variables: --chat-template-kwargs, then enable_thinking from --think / --no-think
static cJSON *template_kwargs(const Options *o, int think) {
    cJSON *kw = o->template_kwargs ? json_parse(o->template_kwargs, strlen(o->template_kwargs), "--chat-template-kwargs")
                                   : cJSON_CreateObject();
    if (!kw) glm_die_err(EXIT_USAGE);
    if (!cJSON_IsObject(kw)) glm_die(EXIT_USAGE, "--chat-template-kwargs: not a JSON object");
    if (o->think_set || !think) {
        cJSON_DeleteItemFromObjectCaseSensitive(kw, "enable_thinking");
        cJSON_AddBoolToObject(kw, "enable_thinking", think);
    }
    return kw;
}

// --tools FILE: an OpenAI tools array (NULL when not given)
static cJSON *load_tools(const Options *o) {
    if (!o->tools) return NULL;
    size_t len;
    char *text = read_input(o->tools, &len, MESSAGES_MAX_BYTES); // a file or a pipe
    cJSON *t = text ? json_parse(text, len, o->tools) : NULL;
    free(text);
    if (!t) glm_die_err(EXIT_INPUT);
    if (cJSON_IsObject(t)) { // {"tools": [...]} is accepted too
        cJSON *a = cJSON_DetachItemFromObjectCaseSensitive(t, "tools");
        cJSON_Delete(t);
        t = a;
    }
    if (!cJSON_IsArray(t)) glm_die(EXIT_INPUT, "%s: expected a JSON array of tools", o->tools);
    return t;
}

// one message of the chat history: role + content (a string, or the media parts of the turn and its text)
static void history_push(cJSON *h, const char *role, const char *text, const MediaKind *kinds, int nk) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    if (!nk) cJSON_AddStringToObject(m, "content", text);
    else {
        cJSON *parts = cJSON_CreateArray(), *t = cJSON_CreateObject();
        for (int i = 0; i < nk; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", kinds[i] == MEDIA_VIDEO ? "video" : "image");
            cJSON_AddItemToArray(parts, p);
        }
        cJSON_AddStringToObject(t, "type", "text");
        cJSON_AddStringToObject(t, "text", text);
        cJSON_AddItemToArray(parts, t);
        cJSON_AddItemToObject(m, "content", parts);
    }
    cJSON_AddItemToArray(h, m);
}

// the conversation: --messages, or a system message (--system) and a user message whose parts are the media items
// already attached (-i images and PDF pages, the --video) and the -p text (a plain string when there is no media)
static cJSON *cli_messages(const Options *o, const MediaKind *kinds, int nk) {
    if (o->messages) {
        cJSON *m = messages_read(o->messages);
        if (!m) glm_die_err(EXIT_INPUT);
        return m;
    }
    cJSON *msgs = cJSON_CreateArray();
    if (o->system) history_push(msgs, "system", o->system, NULL, 0);
    history_push(msgs, "user", o->prompt, kinds, nk);
    return msgs;
}

// the checkpoint's chat template over a conversation, with the generation prompt
static char *render(const Engine *e, const Options *o, const cJSON *msgs, const cJSON *tools, int think, size_t *len) {
    cJSON *kw = template_kwargs(o, think);
    char *text = chat_template_render(&e->tmpl, msgs, tools, 1, kw, len);
    cJSON_Delete(kw);
    return text;
}

static int run_once(const Options *o) {
    Engine e;
    load_engine(&e, o);
    const Config *c = e.c;
    Dump dump;
    dump_init(&dump);
    TapSink taps = {dump_tap, &dump};
    const TapSink *tp = o->dump ? &taps : NULL;

    // inputs: the conversation rendered by the chat template (or --raw text), its media, expanded ids, positions
    Media m = {0};
    const MediaOptions mo = media_options(o);
    static PdfInputs pdfs; // large: not on the stack
    MediaKind kinds[ENGINE_MAX_IMAGES + 1]; // the template's media items of the user message, in order
    int nk = 0;
    cJSON *msgs = NULL, *tools = NULL;
    if (o->messages) {
        msgs = cli_messages(o, NULL, 0);
        progress("preprocessing the media");
        MediaPolicy pol = {.allowed_dir = NULL, .allow_local = 1, .pdf = pdf_options(o), .on_document = cost_line,
                           .ctx = (void *)&e.c->proc};
        if (messages_add_media(&m, &e, msgs, &mo, &pol)) glm_die_err(EXIT_INPUT);
    } else {
        // -i images and PDF pages (one image each), then the video
        for (int i = 0; i < o->nimages; i++) {
            progress("preprocessing image %d/%d", i + 1, o->nimages);
            int k = add_input(&m, &e, o, o->images[i], o->is_pdf[i], &pdfs);
            if (k < 0) glm_die_err(EXIT_INPUT);
            while (k-- > 0 && nk < ENGINE_MAX_IMAGES) kinds[nk++] = MEDIA_IMAGE;
        }
        if (o->video) {
            progress("reading video %s", o->video);
            if (media_add_video(&m, &e, o->video, &mo)) glm_die_err(EXIT_INPUT);
            kinds[nk++] = MEDIA_VIDEO;
        }
        if (!o->raw) msgs = cli_messages(o, kinds, nk);
    }
    char *text;
    size_t tlen;
    if (o->raw) text = xstrdup(o->prompt), tlen = strlen(text);
    else {
        tools = load_tools(o);
        if (!(text = render(&e, o, msgs, tools, o->think, &tlen))) glm_die_err(EXIT_INPUT);
    }
    if (o->show_prompt) { // what apply_chat_template(..., tokenize=False) returns
        for (size_t i = 0; i < tlen; i++) // a C0 80 pair is a NUL of the prompt (prompt_text_from_bytes): the byte 0
            if ((unsigned char)text[i] == 0xC0 && i + 1 < tlen && (unsigned char)text[i + 1] == 0x80) fputc(0, stdout), i++;
            else fputc(text[i], stdout);
        fflush(stdout);
        const int rc = ferror(stdout) ? EXIT_INPUT : 0;
        free(text);
        cJSON_Delete(msgs), cJSON_Delete(tools);
        media_free(&m);
        pdf_inputs_free(&pdfs, 0);
        dump_free(&dump);
        engine_free(&e);
        return rc;
    }
    progress_line(NULL, NULL);
    cJSON_Delete(msgs);
    Prompt p;
    if (engine_prompt(&e, text, tlen, &m, &p)) glm_die_err(EXIT_INPUT);
    const int think_open = chat_output_prompt_ends_in_think(text, tlen);
    free(text);
    const int L = p.seq.n;
    const int64_t ctx = (int64_t)L + o->n_predict;
    if (ctx > c->text.max_position_embeddings && pdfs.n)
        glm_die(EXIT_INPUT, "%s%s: the prompt (%d tokens, %lld of them the visual tokens of the PDF pages) plus -n %d "
                "exceeds the model context of %d tokens: choose fewer pages with --pages (or a lower --dpi)",
                pdfs.path[0], pdfs.n > 1 ? " and the other PDFs" : "", L, (long long)pdf_tokens(&pdfs, &m, &e),
                o->n_predict, c->text.max_position_embeddings);
    if (ctx > c->text.max_position_embeddings)
        glm_die(EXIT_INPUT, "the prompt (%d tokens) plus -n %d exceeds the model context of %d tokens", L, o->n_predict,
                c->text.max_position_embeddings);
    Sampler smp;
    SamplerParams sp = sampler_params(o);
    if (sampler_init(&smp, &sp, c)) glm_die_err(EXIT_INPUT);

    double t0 = now_s();
    if (media_encode(&m, &e, tp)) glm_die_err(EXIT_INPUT);
    double t_vision = now_s() - t0;
    if (o->dump) dump_inputs(&dump, &e, &p, &m);

    Session s;
    if (session_init(&s, &e, (int)ctx, o->chunk < L ? o->chunk : L, o->dump != NULL)) glm_die_err(EXIT_INPUT);
    Turn t = {.ids = xmalloc((size_t)(o->n_predict + 1) * sizeof(int)), .cap = o->n_predict};
    double t1 = now_s();
    if (session_prefill(&s, &p, &m, tp)) glm_die_err(EXIT_INPUT);
    t.t_prefill = now_s() - t1;
    Printer pr;
    printer_start(&pr, &e, o->hide_think, think_open);
    if (o->n_predict && generate(&s, &t, o->n_predict, o->ignore_eos, &smp, &pr, o->dump ? &dump : NULL)) glm_die_err(EXIT_INPUT);
    if (tools) report_tool_calls(&e, &t, tools, think_open);

    if (o->dump) {
        int64_t *g = xmalloc((size_t)(t.n + 1) * sizeof(int64_t));
        for (int i = 0; i < t.n; i++) g[i] = t.ids[i];
        dump_add(&dump, "generated_ids", DT_I64, 1, (int64_t[]){t.n}, g);
        free(g);
        if (!t.n) dump_add(&dump, "generated_logits", DT_F32, 2, (int64_t[]){0, c->text.vocab_size}, s.last);
        dump_provenance(&dump, o, &e, &smp);
        dump_pdf_meta(&dump, &pdfs);
        if (dump_write(&dump, o->dump)) glm_die_err(EXIT_INPUT);
    }
    if (report_boxes(o, &e, &t, &m, &pdfs)) glm_die_err(EXIT_INPUT);
    timing_line(o, &s, &t, t_vision);
    cJSON_Delete(tools);
    free(t.ids);
    sampler_free(&smp);
    session_free(&s);
    prompt_free(&p);
    media_free(&m);
    pdf_inputs_free(&pdfs, 0);
    dump_free(&dump);
    engine_free(&e);
    return 0;
}

// ---------------------------------------------------------------------------- interactive chat

// the answer kept in the history: the text after </think> (the reasoning is dropped, as the template does)
static char *answer_text(const Engine *e, const int *gen, int n) {
    int start = 0;
    for (int i = 0; i < n; i++)
        if (gen[i] == e->think_close) start = i + 1;
    int end = n;
    while (end > start && engine_is_eos(e, gen[end - 1])) end--;
    char *t = tokenizer_decode(e->tok, gen + start, end - start, 1);
    return t ? t : xstrdup("");
}

static int run_chat(const Options *o) {
    Engine e;
    load_engine(&e, o);
    const Config *c = e.c;
    int ctx = o->ctx > 0 ? o->ctx : 8192;
    if (ctx > c->text.max_position_embeddings) ctx = c->text.max_position_embeddings;
    Session s;
    if (session_init(&s, &e, ctx, o->chunk, 0)) glm_die_err(EXIT_INPUT);
    Sampler smp;
    SamplerParams sp = sampler_params(o);
    if (sampler_init(&smp, &sp, c)) glm_die_err(EXIT_INPUT);
    Turn t = {.ids = xmalloc((size_t)ctx * sizeof(int)), .cap = ctx};
    Printer pr;
    const int interactive = isatty(0);
    const MediaOptions mo = media_options(o);
    cJSON *h = cJSON_CreateArray(), *tools = load_tools(o);
    Media m = {0};
    MediaKind pending[ENGINE_MAX_IMAGES + ENGINE_MAX_VIDEOS];
    int npending = 0, pimg = 0, pvid = 0, think = o->think;
    const int maxpending = (int)(sizeof pending / sizeof *pending);
    if (o->system) history_push(h, "system", o->system, NULL, 0);
    static PdfInputs pdfs; // large: not on the stack
    for (int i = 0; i < o->nimages; i++) { // -i / --pdf / --video attach to the first message
        int k = add_input(&m, &e, o, o->images[i], o->is_pdf[i], &pdfs);
        if (k < 0) glm_die_err(EXIT_INPUT);
        while (k--) pending[npending++] = MEDIA_IMAGE, pimg++;
    }
    if (o->video) {
        if (media_add_video(&m, &e, o->video, &mo)) glm_die_err(EXIT_INPUT);
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
                while (cJSON_GetArraySize(h)) cJSON_DeleteItemFromArray(h, 0);
                if (o->system) history_push(h, "system", o->system, NULL, 0);
                media_free(&m);
                pdf_inputs_free(&pdfs, 0);
                npending = pimg = pvid = 0;
                session_truncate(&s, 0);
                fprintf(stderr, "glm4v: conversation reset\n");
            } else if (!strcmp(msg, "/think") && arg && (!strcmp(arg, "on") || !strcmp(arg, "off"))) {
                think = !strcmp(arg, "on");
                fprintf(stderr, "glm4v: thinking %s\n", think ? "on" : "off");
            } else if ((!strcmp(msg, "/image") || !strcmp(msg, "/video")) && arg && *arg) {
                int video = msg[1] == 'v';
                int k = npending >= maxpending ? glm_err("%s: too many attachments for one message", arg)
                        : video ? (media_add_video(&m, &e, arg, &mo) ? -1 : 1) : add_input(&m, &e, o, arg, 0, &pdfs);
                if (k < 0) fprintf(stderr, "glm4v: error: %s\n", glm_errmsg);
                else {
                    while (k--) pending[npending++] = video ? MEDIA_VIDEO : MEDIA_IMAGE, pimg += !video, pvid += video;
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
        history_push(h, "user", msg, pending, npending);
        free(msg);
        int nimg0 = m.img.nitems - pimg, nvid0 = m.vid.nitems - pvid;
        npending = pimg = pvid = 0;
        size_t tlen = 0;
        char *text = render(&e, o, h, tools, think, &tlen);
        Prompt p = {0};
        double t0 = now_s();
        int rc = text ? engine_prompt(&e, text, tlen, &m, &p) : -1;
        const int think_open = text ? chat_output_prompt_ends_in_think(text, tlen) : 0;
        free(text);
        if (!rc && p.seq.n + 1 > ctx)
            rc = glm_err("the conversation (%d tokens) does not fit the context of %d tokens (--ctx, or /reset)", p.seq.n, ctx);
        if (!rc) rc = media_encode(&m, &e, NULL);
        double t_vision = now_s() - t0;
        double t1 = now_s();
        if (!rc) rc = session_prefill(&s, &p, &m, NULL);
        t.t_prefill = now_s() - t1;
        if (!rc) {
            int room = ctx - s.md.n_past;
            printer_start(&pr, &e, o->hide_think, think_open);
            rc = generate(&s, &t, o->n_predict < room ? o->n_predict : room, o->ignore_eos, &smp, &pr, NULL);
            if (!rc && tools) report_tool_calls(&e, &t, tools, think_open);
        }
        if (rc) {
            fprintf(stderr, "glm4v: error: %s\n", glm_errmsg);
            cJSON_DeleteItemFromArray(h, cJSON_GetArraySize(h) - 1);
            media_truncate(&m, &e, nimg0, nvid0);
            while (pdfs.n && pdfs.first_img[pdfs.n - 1] >= nimg0) pdf_inputs_free(&pdfs, pdfs.n - 1);
        } else {
            char *ans = answer_text(&e, t.ids, t.n);
            history_push(h, "assistant", ans, NULL, 0);
            free(ans);
            if (report_boxes(o, &e, &t, &m, &pdfs)) fprintf(stderr, "glm4v: error: %s\n", glm_errmsg);
            timing_line(o, &s, &t, t_vision);
        }
        prompt_free(&p);
    }
    free(line);
    cJSON_Delete(h);
    cJSON_Delete(tools);
    free(t.ids);
    media_free(&m);
    pdf_inputs_free(&pdfs, 0);
    sampler_free(&smp);
    session_free(&s);
    engine_free(&e);
    return 0;
}

// ---------------------------------------------------------------------------- glm4v parse-output

// ./glm4v parse-output [--tools FILE.json] [--prompt-ends-in-think] [FILE]: the OpenAI message (content,
// reasoning_content, tool_calls) that the CLI and the server make of a model's raw output text, as one JSON object
static int parse_output_main(int argc, char **argv) {
    const char *tools_path = NULL, *file = NULL;
    int think_open = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tools")) {
            if (i + 1 >= argc) usage_error("--tools needs a value");
            if (tools_path) usage_error("--tools given twice");
            tools_path = argv[++i];
        } else if (!strcmp(argv[i], "--prompt-ends-in-think")) think_open = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: glm4v parse-output [--tools FILE.json] [--prompt-ends-in-think] [FILE]\n"
                   "Prints the OpenAI message (content, reasoning_content, tool_calls) made of a model's raw output\n"
                   "text (FILE, or stdin), split as vLLM's glm45 reasoning and tool parsers split it.\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) usage_error("parse-output: unknown option '%s'", argv[i]);
        else if (file) usage_error("parse-output: one input file");
        else file = argv[i];
    }
    Options o = {.tools = tools_path};
    cJSON *tools = load_tools(&o);
    // the model's raw output, every byte with its length (a file, a pipe or stdin: fileio.h read_input)
    size_t tlen;
    char *text = read_input(file ? file : "-", &tlen, 256u << 20);
    if (!text) glm_die_err(EXIT_INPUT);
    ChatOutputOptions opt = {.tools = tools, .prompt_ends_in_think = think_open};
    ChatOutput out;
    if (chat_output_parse(text, tlen, &opt, &out)) glm_die(EXIT_INPUT, "parse-output: %s", chat_output_error());
    char *json = chat_output_message_json(&out);
    if (!json) glm_die(EXIT_INPUT, "out of memory");
    puts(json);
    free(json);
    chat_output_free(&out);
    free(text);
    cJSON_Delete(tools);
    return 0;
}

// ---------------------------------------------------------------------------- glm4v score

static void score_usage(FILE *f) {
    fprintf(f,
            "usage: glm4v score -m MODEL_DIR CASES.jsonl [-o REPORT.json] [--html REPORT.html] [options]\n"
            "       glm4v score --merge PART.json... -o REPORT.json [--html REPORT.html]\n"
            "Checks another backend's completions token by token against the model (teacher forcing; scorer.h).\n"
            "One case a line: {\"id\", \"messages\" | \"prompt\" (+ \"images\", \"video\") | \"input_ids\",\n"
            "  \"completion_ids\" | \"completion\" (+ \"logprobs\", \"top_logprobs\") | \"response\" (OpenAI, logprobs)}\n"
            "  -o, --output FILE        the JSON report (README.md: schema)\n"
            "      --html FILE          a self-contained HTML page of the report\n"
            "      --top-k K            top-k memberships and KL support (default 20)\n"
            "      --shard K/N          score cases K, K+N, K+2N, ... (K from 0) into a partial report\n"
            "      --merge PARTS...     merge partial reports into the report of the whole run\n"
            "      --preset P           thresholds: fp32 (default), bf16, quant\n"
            "      --near-tie X         a divergence within X of our top-1 logprob is a near tie\n"
            "      --max-abs-dlogprob X fail a case whose max |their logprob - ours| exceeds X\n"
            "      --mean-abs-dlogprob X  fail a case whose mean |their logprob - ours| exceeds X\n"
            "      --min-agree F        fail a case where fewer than F of the positions agree (near ties count)\n"
            "      --chat-template FILE, --resize torch|pil|pil13, --chunk N, -t N, -q   as for glm4v\n"
            "exit status: 0 every case passes, 1 a case fails or has an error, 2 bad usage or a model that cannot load\n");
}

// a report text written to path (atomically; fileio.h)
static void write_text(const char *path, const char *text) {
    OutFile of;
    if (output_open(&of, path)) glm_die(EXIT_USAGE, "%s", glm_errmsg);
    fputs(text, of.f);
    if (output_commit(&of)) glm_die(EXIT_USAGE, "%s", glm_errmsg);
}

// ./glm4v score ...: read the cases, score this shard's, write the report(s), print the table
static int score_main(int argc, char **argv) {
    const char *model = NULL, *cases = NULL, *out = NULL, *html = NULL, *tmpl = NULL, *preset = NULL;
    const char **parts = xcalloc((size_t)argc, sizeof *parts);
    int nparts = 0, merge = 0, quiet = 0, threads = 0, sharded = 0, scoring_flags = 0;
    double over[4] = {NAN, NAN, NAN, NAN}; // --near-tie, --max-abs-dlogprob, --mean-abs-dlogprob, --min-agree
    ScoreOptions so;
    score_options_default(&so);
    ScoreShard sh = {0, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE() (v ? argv[++i] : (usage_error("%s needs a value", a), NULL))
        // the flags of scoring (--merge takes the settings its parts were scored with, so none of them)
        static const char *const scoring[] = {"--top-k", "--preset", "--near-tie", "--max-abs-dlogprob",
                                              "--mean-abs-dlogprob", "--min-agree", "--chat-template", "--chunk",
                                              "--resize", "-t", "--threads"};
        for (size_t q = 0; q < sizeof scoring / sizeof *scoring; q++)
            if (!strcmp(a, scoring[q]) && !scoring_flags) scoring_flags = i;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            score_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = TAKE();
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = TAKE();
        else if (!strcmp(a, "--html")) html = TAKE();
        else if (!strcmp(a, "--top-k")) so.top_k = (int)parse_long(a, TAKE(), 1, SCORE_MAX_TOP_K);
        else if (!strcmp(a, "--shard")) {
            // K/N: two decimal integers, 0 <= K < N <= INT_MAX (no sign, no spaces; sscanf's %d wraps on overflow)
            const char *s = TAKE();
            char *end = NULL;
            long k = -1, c = -1;
            errno = 0;
            if (s[0] >= '0' && s[0] <= '9') k = strtol(s, &end, 10);
            if (k >= 0 && *end == '/' && end[1] >= '0' && end[1] <= '9') c = strtol(end + 1, &end, 10);
            if (errno || k < 0 || c < 1 || *end || k >= c || c > INT_MAX)
                usage_error("--shard: '%s' is not K/N with 0 <= K < N <= %d", s, INT_MAX);
            sh.shard = (int)k, sh.count = (int)c, sharded = 1;
        } else if (!strcmp(a, "--merge")) merge = 1;
        else if (!strcmp(a, "--preset")) preset = TAKE();
        else if (!strcmp(a, "--near-tie")) over[0] = parse_float(a, TAKE(), 0, 1e6);
        else if (!strcmp(a, "--max-abs-dlogprob")) over[1] = parse_float(a, TAKE(), 0, 1e6);
        else if (!strcmp(a, "--mean-abs-dlogprob")) over[2] = parse_float(a, TAKE(), 0, 1e6);
        else if (!strcmp(a, "--min-agree")) over[3] = parse_float(a, TAKE(), 0, 1);
        else if (!strcmp(a, "--chat-template")) tmpl = TAKE();
        else if (!strcmp(a, "--chunk")) so.chunk = (int)parse_long(a, TAKE(), 1, 1 << 16);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = (int)parse_long(a, TAKE(), 1, 1024);
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--resize")) {
            const char *r = TAKE();
            if (!strcmp(r, "torch")) so.media.resize = RESIZE_TORCH;
            else if (!strcmp(r, "pil")) so.media.resize = RESIZE_PIL;
            else if (!strcmp(r, "pil13")) so.media.resize = RESIZE_PIL13;
            else usage_error("--resize: '%s' is not torch, pil or pil13", r);
        } else if (a[0] == '-' && a[1]) usage_error("score: unknown option '%s'", a);
        else if (merge) parts[nparts++] = a;
        else if (cases) usage_error("score: one CASES.jsonl file (got '%s' too)", a);
        else cases = a;
#undef TAKE
    }
    if (preset && score_preset(&so.th, preset)) usage_error("%s", glm_errmsg);
    double *th[4] = {&so.th.near_tie, &so.th.max_abs_dlogprob, &so.th.mean_abs_dlogprob, &so.th.min_agree};
    for (int k = 0; k < 4; k++)
        if (!isnan(over[k])) *th[k] = over[k], snprintf(so.th.preset, sizeof so.th.preset, "custom");
    if (merge && (model || cases || sharded)) usage_error("score --merge takes partial reports only (no -m, cases or --shard)");
    if (merge && scoring_flags)
        usage_error("score --merge: %s is a scoring setting (the parts' settings are merged as they are)", argv[scoring_flags]);
    if (merge && !nparts) usage_error("score --merge needs the partial reports");
    if (!merge && (!model || !cases)) usage_error("usage: glm4v score -m MODEL_DIR CASES.jsonl [-o REPORT.json]");
    if (out && output_check(out, "-o")) glm_die(EXIT_USAGE, "%s", glm_errmsg);
    if (html && output_check(html, "--html")) glm_die(EXIT_USAGE, "%s", glm_errmsg);
    g_quiet = quiet, stderr_tty = isatty(2);
    char *text;
    if (merge) {
        char **texts = xcalloc((size_t)nparts, sizeof *texts);
        size_t *lens = xcalloc((size_t)nparts, sizeof *lens);
        for (int i = 0; i < nparts; i++)
            if (!(texts[i] = read_input(parts[i], &lens[i], 1u << 30))) glm_die(EXIT_USAGE, "%s", glm_errmsg);
        if (!(text = score_merge(texts, lens, (char *const *)parts, nparts))) glm_die(EXIT_USAGE, "%s", glm_errmsg);
        for (int i = 0; i < nparts; i++) free(texts[i]);
        free(texts), free(lens);
    } else {
        if (threads) omp_set_num_threads(threads);
        ops_init();
        size_t len;
        char *all = read_input(cases, &len, 1u << 30);
        if (!all) glm_die(EXIT_USAGE, "%s", glm_errmsg);
        // no case at all is a wrong file, not a run where every case passed (exit 0)
        if (!score_count_cases(all, len)) glm_die(EXIT_USAGE, "%s: no cases (every line is blank)", cases);
        Engine e;
        if (engine_load(&e, model, tmpl, progress_line, NULL)) glm_die(EXIT_USAGE, "%s", glm_errmsg);
        if (!(text = score_jsonl(&e, all, len, &so, sharded ? &sh : NULL))) glm_die(EXIT_USAGE, "%s", glm_errmsg);
        engine_free(&e);
        free(all);
    }
    cJSON *rep = json_parse(text, strlen(text), "the report");
    if (!rep) glm_die(EXIT_USAGE, "%s", glm_errmsg);
    if (out) write_text(out, text);
    if (html) {
        char *page = score_html(rep);
        if (!page) glm_die(EXIT_USAGE, "%s", glm_errmsg);
        write_text(html, page);
        free(page);
    }
    score_table(stdout, rep);
    const int rc = score_all_passed(rep) ? 0 : 1;
    cJSON_Delete(rep);
    free(text);
    free(parts);
    return rc;
}

// ---------------------------------------------------------------------------- main

#ifndef GLM4V_NO_MAIN
// glm4v quantize IN_DIR OUT_DIR --scheme fp8|int8|int4 [--group G] [-q]: a compressed-tensors folder (quantize.c)
static int run_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int scheme = -1, group = 128, quiet = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--scheme") == 0) {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            if (!v) usage_error("--scheme needs a value");
            scheme = strcmp(v, "fp8") == 0 ? QZ_FP8 : strcmp(v, "int8") == 0 ? QZ_INT8 : strcmp(v, "int4") == 0 ? QZ_INT4 : -2;
            if (scheme == -2) usage_error("--scheme: '%s' is not fp8, int8 or int4", v);
        } else if (strcmp(a, "--group") == 0) group = (int)parse_long(a, i + 1 < argc ? argv[++i] : NULL, 1, 1 << 20);
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) quiet = 1;
        else if (a[0] == '-') usage_error("quantize: unknown option '%s'", a);
        else if (!in) in = a;
        else if (!out) out = a;
        else usage_error("quantize: one input and one output folder (got '%s' too)", a);
    }
    if (!in || !out || scheme < 0)
        usage_error("usage: glm4v quantize IN_DIR OUT_DIR --scheme fp8|int8|int4 [--group 128] [-q]");
    ops_init();
    if (quantize_folder(in, out, scheme, group, quiet)) glm_die_err(EXIT_INPUT);
    if (!quiet) fprintf(stderr, "quantize: wrote %s\n", out);
    return 0;
}

int main(int argc, char **argv) {
    ops_omp_reexec(argv); // OpenMP threads that wait spin briefly, then sleep (ops.h)
    if (argc >= 2 && strcmp(argv[1], "quantize") == 0) return run_quantize(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "parse-output")) return parse_output_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "serve")) return server_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "score")) return score_main(argc - 1, argv + 1);
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
