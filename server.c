// SPDX-License-Identifier: MIT
// server.c - `glm4v serve`: an OpenAI-compatible HTTP server (libmicrohttpd, one thread per connection) over the
// engine, after llama.cpp's tools/server and vLLM's entrypoints/openai. HTTP threads read and check a request
// (openai.c), preprocess its media and tokenize it, and queue it; ONE scheduler thread owns the engine's --parallel
// sessions and runs steps: requests join between steps, finished ones leave, and in each step every active slot does
// one unit of work (a prefill chunk, or one decoded token through engine_step_batch). Answers stream back as
// Server-Sent Events or as one JSON object; a new request takes the free slot whose cache shares the longest prefix.
#include "server.h"

#include "chat_output.h"
#include "fileio.h"
#include "messages.h"
#include "openai.h"
#include "ops.h"
#include "pdf.h"
#include "webui.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <omp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef GLM4V_GIT_COMMIT
#define GLM4V_GIT_COMMIT "unknown"
#endif

// ---------------------------------------------------------------------------- options

typedef struct {
    const char *model_dir;   // -m
    const char *host;        // --host
    int port;                // --port (0: any free port, printed)
    int parallel;            // --parallel: slots (sessions decoding together)
    int ctx;                 // --ctx-size: tokens of one slot (0: 4096 or the model's maximum)
    int queue;               // --queue: requests waiting for a slot
    char *api_key;           // --api-key / --api-key-file (owned), or NULL: no key
    const char *media_dir;   // --allowed-media-path as given
    char media_real[PATH_MAX]; // its realpath
    const char *served_name; // --served-model-name (default: the folder's name)
    size_t max_body;         // --max-body bytes
    int threads;             // -t
    int chunk;               // --chunk: prefill tokens per step
    int64_t max_image_pixels; // --max-image-pixels
    int media_cache_mb;      // --media-cache: MB of vision features kept for images seen again (0: off)
    int timeout;             // --timeout: seconds a connection may stay idle while sending its request
    const char *chat_template; // --chat-template FILE: overrides the model folder's template
    const char *mmproj;      // --mmproj FILE: a GGUF model's vision tower
    const char *processor;   // --processor FILE: an HF processor config over the model's
    int max_pages;           // --max-pages: pages of one document (more are refused, never truncated)
    int pdf_dpi;             // --pdf-dpi: 0 = pdf.h's automatic rule (150 dpi, lowered to fit max_pixels)
    double pdf_timeout;      // --pdf-timeout: seconds one renderer run (page count, one page) may take
    int64_t max_visual_tokens; // --max-visual-tokens: image + page + video tokens of one request (0: no limit)
    int no_webui;            // --no-webui: no chat page at /
} ServeOptions;

// glm4v serve --help
static void serve_usage(FILE *f) {
    fprintf(f,
            "usage: glm4v serve -m MODEL_DIR [options]\n"
            "An OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, /tokenize,\n"
            "/detokenize, /health, /metrics, and /v1/pages (a PDF's pages as the model sees them).\n"
            "  -m, --model DIR              Hugging Face model folder, or a llama.cpp GGUF text file\n"
            "      --mmproj FILE            the GGUF model's vision file (mmproj-*.gguf)\n"
            "      --processor FILE         an HF processor config over the model's (GGUF: HF's defaults)\n"
            "      --host ADDR              address to bind (default 127.0.0.1: this machine only)\n"
            "      --port N                 port (default 8080; 0 = any free port, printed)\n"
            "      --parallel N             requests decoded together, one KV cache each (default 4)\n"
            "      --ctx-size N             tokens of one request: prompt + answer (default 4096 or the model's maximum)\n"
            "      --queue N                requests waiting for a slot before 503 (default 64)\n"
            "      --api-key KEY            require 'Authorization: Bearer KEY' on /v1/*, /tokenize, /detokenize, /metrics\n"
            "      --api-key-file FILE      the same, the key read from a file (first line)\n"
            "      --allowed-media-path DIR local image/video paths and file:// URLs allowed under DIR (default: none)\n"
            "                               (alias --allowed-local-media-path)\n"
            "      --served-model-name NAME the model id in /v1/models and responses (default: the folder's name)\n"
            "      --max-body BYTES         largest request body (default 67108864)\n"
            "      --max-image-pixels N     refuse images larger than N pixels before decoding (default 100000000)\n"
            "      --media-cache MB         vision features kept for images seen again (default 256; 0 = off)\n"
            "      --timeout S              a request's headers must arrive within S seconds, its body with no pause of S s\n"
            "                               and, once S s have passed, at 1 KB/s on average (default 30; slowloris)\n"
            "      --chat-template FILE     use this Jinja chat template instead of the model folder's\n"
            "      --max-pages N            refuse PDF documents with more than N pages selected (default 16)\n"
            "      --pdf-dpi N              render PDF pages at N dpi (default 0: 150, lowered per page to fit max_pixels)\n"
            "      --pdf-timeout S          refuse a PDF whose page count or one page takes longer than S s (default 20)\n"
            "      --max-visual-tokens N    refuse requests whose images, pages and videos take more than N visual tokens\n"
            "                               (default 16384; 0 = only the context limits them)\n"
            "      --no-webui               do not serve the chat page at / (the API only)\n"
            "      --compute f32|bf16       matrix products: f32 (default) or bf16 (bf16 operands, fp32 sums; faster)\n"
            "  -t, --threads N              threads of the compute (default: all cores)\n"
            "      --chunk N                prompt tokens per prefill step (default 512)\n"
            "  -h, --help                   this help\n");
}

_Noreturn static void serve_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn static void serve_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    glm_usage_vdie("serve", fmt, ap);
}

// an integer flag value in [lo, hi], or exit 2 naming the flag
static long serve_long(const char *flag, const char *s, long lo, long hi) { return glm_flag_long("serve", flag, s, lo, hi); }

// the flags, each at most once
enum { F_MODEL, F_HOST, F_PORT, F_PARALLEL, F_CTX, F_QUEUE, F_KEY, F_KEYFILE, F_MEDIA, F_NAME, F_BODY, F_THREADS,
       F_CHUNK, F_PIXELS, F_MCACHE, F_TIMEOUT, F_TEMPLATE, F_MAXPAGES, F_PDFDPI, F_PDFTIMEOUT, F_VISTOK, F_COMPUTE,
       F_MMPROJ, F_PROCESSOR, F_COUNT };
static const struct {
    const char *name, *alias; // long name, short or alias (NULL)
} serve_flags[F_COUNT] = {
    [F_MODEL] = {"--model", "-m"}, [F_HOST] = {"--host", NULL}, [F_PORT] = {"--port", NULL},
    [F_PARALLEL] = {"--parallel", "-np"}, [F_CTX] = {"--ctx-size", "-c"}, [F_QUEUE] = {"--queue", NULL},
    [F_KEY] = {"--api-key", NULL}, [F_KEYFILE] = {"--api-key-file", NULL},
    [F_MEDIA] = {"--allowed-media-path", "--allowed-local-media-path"}, [F_NAME] = {"--served-model-name", NULL},
    [F_BODY] = {"--max-body", NULL}, [F_THREADS] = {"--threads", "-t"}, [F_CHUNK] = {"--chunk", NULL},
    [F_PIXELS] = {"--max-image-pixels", NULL}, [F_MCACHE] = {"--media-cache", NULL},
    [F_TIMEOUT] = {"--timeout", NULL}, [F_TEMPLATE] = {"--chat-template", NULL},
    [F_MAXPAGES] = {"--max-pages", NULL}, [F_PDFDPI] = {"--pdf-dpi", NULL}, [F_PDFTIMEOUT] = {"--pdf-timeout", NULL},
    [F_VISTOK] = {"--max-visual-tokens", NULL}, [F_COMPUTE] = {"--compute", NULL}, [F_MMPROJ] = {"--mmproj", NULL},
    [F_PROCESSOR] = {"--processor", NULL},
};

// the serve flags (each at most once; exit 2 with one line on any misuse); the key file read, the media folder resolved
static void serve_parse_args(ServeOptions *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1", o->port = 8080, o->parallel = 4, o->queue = 64, o->max_body = 64u << 20, o->chunk = 512;
    o->max_image_pixels = 100000000, o->media_cache_mb = 256, o->timeout = 30;
    o->max_pages = PDF_MAX_PAGES, o->pdf_timeout = PDF_TIMEOUT_S, o->max_visual_tokens = 16384;
    int seen[F_COUNT] = {0};
    const char *keyfile = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            serve_usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--no-webui")) { // the one flag without a value
            if (o->no_webui++) serve_usage_error("--no-webui given twice");
            continue;
        }
        int f = -1;
        for (int k = 0; k < F_COUNT && f < 0; k++)
            if (!strcmp(a, serve_flags[k].name) || (serve_flags[k].alias && !strcmp(a, serve_flags[k].alias))) f = k;
        if (f < 0) serve_usage_error("unknown option '%s'", a);
        if (seen[f]++) serve_usage_error("%s given twice", serve_flags[f].name);
        if (i + 1 >= argc) serve_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        switch (f) {
        case F_MODEL: o->model_dir = v; break;
        case F_HOST: o->host = v; break;
        case F_PORT: o->port = (int)serve_long(a, v, 0, 65535); break;
        case F_PARALLEL: o->parallel = (int)serve_long(a, v, 1, 256); break;
        case F_CTX: o->ctx = (int)serve_long(a, v, 16, 1 << 24); break;
        case F_QUEUE: o->queue = (int)serve_long(a, v, 0, 1 << 20); break;
        case F_KEY: o->api_key = xstrdup(v); break;
        case F_KEYFILE: keyfile = v; break;
        case F_MEDIA: o->media_dir = v; break;
        case F_NAME: o->served_name = v; break;
        case F_BODY: o->max_body = (size_t)serve_long(a, v, 1024, 1L << 34); break;
        case F_THREADS: o->threads = (int)serve_long(a, v, 1, 1024); break;
        case F_CHUNK: o->chunk = (int)serve_long(a, v, 1, 1 << 16); break;
        case F_PIXELS: o->max_image_pixels = serve_long(a, v, 1, 1L << 40); break;
        case F_MCACHE: o->media_cache_mb = (int)serve_long(a, v, 0, 1 << 20); break;
        case F_TIMEOUT: o->timeout = (int)serve_long(a, v, 1, 86400); break;
        case F_TEMPLATE: o->chat_template = v; break;
        case F_MMPROJ: o->mmproj = v; break;
        case F_PROCESSOR: o->processor = v; break;
        case F_MAXPAGES: o->max_pages = (int)serve_long(a, v, 1, ENGINE_MAX_IMAGES); break;
        case F_PDFDPI: o->pdf_dpi = (int)serve_long(a, v, 0, PDF_DPI_MAX); break;
        case F_PDFTIMEOUT: o->pdf_timeout = (double)serve_long(a, v, 1, 3600); break;
        case F_VISTOK: o->max_visual_tokens = serve_long(a, v, 0, 1L << 40); break;
        case F_COMPUTE:
            if (engine_set_compute(v)) serve_usage_error("%s", glm_errmsg);
            break;
        }
    }
    if (!o->model_dir) serve_usage_error("-m MODEL_DIR is required");
    if (o->api_key && keyfile) serve_usage_error("--api-key and --api-key-file cannot both be given");
    if (keyfile) {
        char *k = read_input(keyfile, NULL, 4096); // a file or a pipe (--api-key-file <(pass show key)): fileio.h
        if (!k) glm_die(EXIT_USAGE, "serve: --api-key-file: %s", glm_errmsg);
        k[strcspn(k, "\r\n")] = 0;
        o->api_key = k;
    }
    if (o->api_key && !o->api_key[0]) serve_usage_error("the API key is empty");
    if (o->media_dir && !realpath(o->media_dir, o->media_real))
        glm_die(EXIT_USAGE, "serve: --allowed-media-path %s: %s", o->media_dir, strerror(errno));
}

// ---------------------------------------------------------------------------- small helpers

// a growing byte string
typedef struct {
    char *p;       // bytes (NUL-terminated when n > 0)
    size_t n, cap; // used / allocated
} Buf;

// append n bytes (kept NUL-terminated); -1 when out of memory
static int buf_add(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

// monotonic seconds
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// splitmix64: the content keys of vision tokens
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// FNV-1a over bytes, continuing from h
static uint64_t fnv64(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

// Generated text may hold NUL bytes (a byte token decodes to "\0"), which cJSON's C strings cannot carry: a NUL is
// stored as the overlong pair C0 80 (never in the decoder's valid UTF-8) and printed as \u0000 (json_print)
static void json_add_bytes(cJSON *o, const char *key, const char *p, size_t n) {
    Buf b = {0};
    for (size_t i = 0; i < n; i++) buf_add(&b, p[i] ? p + i : "\xC0\x80", p[i] ? 1 : 2);
    cJSON_AddStringToObject(o, key, b.p ? b.p : "");
    free(b.p);
}

// cJSON_PrintUnformatted with the NUL pairs written as \u0000
static char *json_print(const cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (!s || !strstr(s, "\xC0\x80")) return s;
    Buf b = {0};
    for (const char *p = s; *p; p++)
        if ((unsigned char)p[0] == 0xC0 && (unsigned char)p[1] == 0x80) buf_add(&b, "\\u0000", 6), p++;
        else buf_add(&b, p, 1);
    free(s);
    return b.p;
}

// ---------------------------------------------------------------------------- requests

enum { PH_PREFILL, PH_GEN };

// one accepted inference request: its inputs (built by the HTTP thread), its progress (the scheduler's) and its
// output bytes (written by the scheduler, sent by the HTTP thread); freed when both have let it go (refs)
typedef struct Req {
    struct Req *next;      // queue link
    ChatRequest cr;        // the parsed request
    Prompt p;              // expanded ids and positions
    Media m;               // its images / videos
    uint64_t *keys;        // [p.seq.n] content key of each prompt token (id, or a hash of the image and index)
    uint64_t img_hash[ENGINE_MAX_IMAGES]; // media_hashes of each image
    uint64_t vid_hash[ENGINE_MAX_VIDEOS]; // and of each video
    Sampler smp;           // its sampling state
    int max_new;           // tokens to generate at most
    char id[48];           // "chatcmpl-N" / "cmpl-N"
    long created;          // Unix time
    // scheduler state
    int slot;              // its session, -1 while queued
    int phase;             // PH_PREFILL / PH_GEN
    int started;           // 1 once the prefill began (media encoded, cache prefix chosen)
    int n_cached;          // prompt tokens reused from the slot's cache
    int *gen;              // [cap_gen] generated ids
    int ngen, cap_gen;     // generated / room in gen
    ChatOutputStream *co;  // chat: the reasoning / content / tool-call splitter (chat_output.c, as parse-output)
    StreamDecoder raw;     // the generated text with every token, markers included (UTF-8 completed across tokens)
    int think_open;        // the rendered prompt ended in <think>
    cJSON *tool_calls;     // tool calls found so far ([{index, id, type, function: {name, arguments}}])
    int tc_sent;           // tool calls already in a streamed chunk
    Buf held;              // the model's text not passed on yet: it may begin a stop string (model_text)
    Buf text[2];           // per channel (0 content, 1 reasoning): all text so far
    Buf step[2];           // per channel: the text given out by this token (one stream chunk)
    cJSON *lp;             // logprobs entries not yet sent (stream: this token's; otherwise all)
    size_t lp_pos;         // completions: text_offset of the next logprobs entry (the token strings before it)
    const char *finish;    // "stop" / "length" once decided
    double t_start, t_gen, t_end; // prefill start, first sample, end
    // shared with the HTTP thread, under g.mu
    Buf out;               // response bytes (stream: SSE events; otherwise the whole JSON)
    size_t out_sent;       // bytes of out given to the connection
    int status;            // HTTP status of a non-streamed answer
    int done;              // 1: no more output
    int cancelled;         // 1: the client left, or the server stops
    int refs;              // holders: the HTTP thread and the scheduler
    pthread_cond_t cv;     // signalled when out grows or done
    struct MHD_Connection *conn; // its connection (disconnect checks)
} Req;

// the server: options, engine, slots, queue and counters
static struct {
    ServeOptions o;          // the flags
    Engine e;                // the model (the scheduler computes with it; HTTP threads tokenize under prep_mu)
    int loaded;              // 1 when the model is ready (/health 200)
    int load_failed;         // 1 when loading failed (exit 1)
    int stopping;            // SIGINT/SIGTERM seen
    int ctx;                 // tokens per slot
    Session *slots;          // [parallel]
    Batch batch;             // the activations of one decode step over every slot
    Req **slot_req;          // [parallel] the request in each slot, or NULL
    uint64_t **slot_keys;    // [parallel][ctx] content keys of each slot's cached tokens
    uint64_t *slot_used;     // [parallel] when each slot last took a request (LRU among equals)
    uint64_t tick;           // counter for slot_used
    Req *qhead, *qtail;      // queue, oldest first
    int qlen;                // its length
    int busy;                // slots holding a request
    pthread_mutex_t mu;      // guards everything shared between threads
    pthread_cond_t sched_cv; // wakes the scheduler
    pthread_mutex_t prep_mu; // the tokenizer and media preprocessing (not thread-safe) one request at a time
                             // (glm_errmsg is per thread; documents are rendered outside it)
    pthread_cond_t render_cv; // signalled when a document rendering ends (under mu)
    int rendering;           // documents being rendered now (at most RENDER_MAX; the others wait their turn)
    pthread_t sched_thread, load_thread; // the scheduler and the model loader
    int sched_started;       // 1 once the scheduler thread runs (joined at stop)
    struct MHD_Daemon *d;    // the HTTP daemon
    char name[256];          // served model name
    char fingerprint[160];   // system_fingerprint
    float *lpbuf;            // [V] raw logits of the step being sampled (logprobs)
    uint64_t next_id;        // request counter
    size_t body_bytes;       // bytes of request bodies held by connections (their budget: 4 x --max-body)
    // metrics
    uint64_t m_requests, m_rejected, m_cancelled, m_media_hits; // requests queued, refused, cut short; media cache hits
    uint64_t m_prompt_tokens, m_prompt_run, m_gen_tokens, m_cache_hit; // prompt tokens: all, run, generated, cached
    double m_prompt_s, m_decode_s; // seconds of prefill and of generation, summed over requests
} g;

// drop one holder of a request; the last one frees it
static void req_unref(Req *r) {
    pthread_mutex_lock(&g.mu);
    int left = --r->refs;
    pthread_mutex_unlock(&g.mu);
    if (left) return;
    openai_request_free(&r->cr);
    chat_output_stream_free(r->co);
    cJSON_Delete(r->tool_calls);
    prompt_free(&r->p);
    media_free(&r->m);
    sampler_free(&r->smp);
    free(r->keys), free(r->gen);
    for (int c = 0; c < 2; c++) free(r->text[c].p), free(r->step[c].p);
    free(r->held.p);
    free(r->out.p);
    cJSON_Delete(r->lp);
    pthread_cond_destroy(&r->cv);
    free(r);
}

// append to the request's output and wake its connection (scheduler thread)
static void req_out(Req *r, const char *s, size_t n) {
    pthread_mutex_lock(&g.mu);
    buf_add(&r->out, s, n);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&g.mu);
}

// one SSE event "data: JSON\n\n" of a cJSON object (deleted)
static void req_event(Req *r, cJSON *j) {
    char *s = json_print(j);
    cJSON_Delete(j);
    if (!s) return;
    Buf b = {0};
    buf_add(&b, "data: ", 6);
    buf_add(&b, s, strlen(s));
    buf_add(&b, "\n\n", 2);
    free(s);
    if (b.p) req_out(r, b.p, b.n);
    free(b.p);
}

// ---------------------------------------------------------------------------- response JSON

// {"error": {"message", "type", "param", "code"}}
static char *error_json(int status, const char *param, const char *msg) {
    const char *type = status == 401 ? "authentication_error" : status == 404 ? "not_found_error"
                       : status == 503 ? "unavailable_error" : status >= 500 ? "server_error" : "invalid_request_error";
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    if (param && param[0]) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    cJSON_AddNumberToObject(e, "code", status);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

// the fields every response object starts with
static cJSON *resp_head(const Req *r, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", g.name);
    cJSON_AddStringToObject(o, "system_fingerprint", g.fingerprint);
    return o;
}

// usage with prompt_tokens_details.cached_tokens
static cJSON *usage_json(const Req *r) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", r->p.seq.n);
    cJSON_AddNumberToObject(u, "completion_tokens", r->ngen);
    cJSON_AddNumberToObject(u, "total_tokens", r->p.seq.n + r->ngen);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(d, "cached_tokens", r->n_cached);
    return u;
}

// llama-server's timings object
static cJSON *timings_json(const Req *r) {
    cJSON *t = cJSON_CreateObject();
    const int pn = r->p.seq.n - r->n_cached;
    const double pms = (r->t_gen - r->t_start) * 1e3, gms = (r->t_end - r->t_gen) * 1e3;
    cJSON_AddNumberToObject(t, "cache_n", r->n_cached);
    cJSON_AddNumberToObject(t, "prompt_n", pn);
    cJSON_AddNumberToObject(t, "prompt_ms", pms);
    cJSON_AddNumberToObject(t, "prompt_per_token_ms", pn ? pms / pn : 0);
    cJSON_AddNumberToObject(t, "prompt_per_second", pms > 0 ? pn / pms * 1e3 : 0);
    cJSON_AddNumberToObject(t, "predicted_n", r->ngen);
    cJSON_AddNumberToObject(t, "predicted_ms", gms);
    cJSON_AddNumberToObject(t, "predicted_per_token_ms", r->ngen ? gms / r->ngen : 0);
    cJSON_AddNumberToObject(t, "predicted_per_second", gms > 0 ? r->ngen / gms * 1e3 : 0);
    return t;
}

// a token's text as a logprobs entry names it (special tokens written out), malloc'd, its length in *n
static char *token_text(int id, size_t *n) {
    StreamDecoder sd;
    stream_init(&sd, g.e.tok, 0);
    char *s = malloc(4096 + 256);
    if (!s) return NULL;
    int a = stream_feed(&sd, id, s, 4096), b = a >= 0 ? stream_flush(&sd, s + a, 256) : -1;
    *n = a >= 0 && b >= 0 ? (size_t)(a + b) : 0;
    s[*n] = 0;
    return s;
}

// the "bytes" list of a logprobs entry
static cJSON *bytes_json(const char *s, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)s[i]));
    return a;
}

// the logprobs of one step: log_softmax of the raw model logits (float64; before the repetition penalty and the
// temperature), the chosen token's and the top_logprobs best ones (ties: lower id first)
static void add_logprobs(Req *r, const float *x, int id) {
    const int V = g.e.c->text.vocab_size, K = r->cr.top_logprobs;
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < V; i++) sum += exp((double)x[i] - mx);
    const double lse = mx + log(sum);
    int top[OA_MAX_TOP_LOGPROBS];
    int nt = 0;
    for (int i = 0; K > 0 && i < V; i++) { // insertion into the K best (none asked: top[K - 1] does not exist)
        if (nt == K && !(x[i] > x[top[K - 1]])) continue;
        int j = nt < K ? nt++ : K - 1;
        while (j > 0 && x[i] > x[top[j - 1]]) top[j] = top[j - 1], j--;
        top[j] = i;
    }
    if (!r->lp) r->lp = cJSON_CreateArray();
    size_t tn = 0;
    char *t = token_text(id, &tn);
    cJSON *e = cJSON_CreateObject();
    json_add_bytes(e, "token", t ? t : "", tn);
    cJSON_AddNumberToObject(e, "logprob", (double)x[id] - lse);
    cJSON_AddItemToObject(e, "bytes", bytes_json(t, tn));
    free(t);
    cJSON *ta = cJSON_AddArrayToObject(e, "top_logprobs");
    for (int k = 0; k < nt; k++) {
        size_t sn = 0;
        char *s = token_text(top[k], &sn);
        cJSON *o = cJSON_CreateObject();
        json_add_bytes(o, "token", s ? s : "", sn);
        cJSON_AddNumberToObject(o, "logprob", (double)x[top[k]] - lse);
        cJSON_AddItemToObject(o, "bytes", bytes_json(s, sn));
        cJSON_AddItemToArray(ta, o);
        free(s);
    }
    cJSON_AddItemToArray(r->lp, e);
}

// chat logprobs {"content": [...]} from the entries, or the legacy completions shape {tokens, token_logprobs,
// top_logprobs, text_offset: each token's offset in the concatenated token strings, counted on across a stream's
// chunks in r->lp_pos}; takes r->lp
static cJSON *logprobs_json(Req *r) {
    cJSON *lp = r->lp ? r->lp : cJSON_CreateArray();
    r->lp = NULL;
    if (r->cr.chat) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "content", lp);
        return o;
    }
    cJSON *o = cJSON_CreateObject(), *tk = cJSON_AddArrayToObject(o, "tokens");
    cJSON *tl = cJSON_AddArrayToObject(o, "token_logprobs"), *tt = cJSON_AddArrayToObject(o, "top_logprobs");
    cJSON *off = cJSON_AddArrayToObject(o, "text_offset");
    size_t pos = r->lp_pos;
    for (cJSON *e = lp->child; e; e = e->next) {
        const char *t = cJSON_GetObjectItem(e, "token")->valuestring;
        cJSON_AddItemToArray(tk, cJSON_CreateString(t));
        cJSON_AddItemToArray(tl, cJSON_CreateNumber(cJSON_GetObjectItem(e, "logprob")->valuedouble));
        cJSON *d = cJSON_CreateObject();
        for (cJSON *a = cJSON_GetObjectItem(e, "top_logprobs")->child; a; a = a->next)
            cJSON_AddNumberToObject(d, cJSON_GetObjectItem(a, "token")->valuestring,
                                    cJSON_GetObjectItem(a, "logprob")->valuedouble);
        cJSON_AddItemToArray(tt, d);
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)pos));
        pos += strlen(t);
    }
    r->lp_pos = pos;
    cJSON_Delete(lp);
    return o;
}

// one streamed chunk with this token's text (content / reasoning) and logprobs; finish_reason NULL until the end
static void stream_chunk(Req *r, const char *finish) {
    const int ntc = r->tool_calls ? cJSON_GetArraySize(r->tool_calls) : 0;
    const int has_text = r->step[0].n || r->step[1].n || ntc > r->tc_sent;
    if (!has_text && !r->lp && !finish) return;
    cJSON *o = resp_head(r, r->cr.chat ? "chat.completion.chunk" : "text_completion");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->cr.chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (r->step[1].n) {
            json_add_bytes(d, "reasoning_content", r->step[1].p, r->step[1].n);
            json_add_bytes(d, "reasoning", r->step[1].p, r->step[1].n);
        }
        if (r->step[0].n) json_add_bytes(d, "content", r->step[0].p, r->step[0].n);
        if (ntc > r->tc_sent) { // each call whole, once its </tool_call> arrived: its arguments are valid JSON
            cJSON *arr = cJSON_AddArrayToObject(d, "tool_calls");
            for (int k = r->tc_sent; k < ntc; k++) cJSON_AddItemToArray(arr, cJSON_Duplicate(cJSON_GetArrayItem(r->tool_calls, k), 1));
            r->tc_sent = ntc;
        }
    } else json_add_bytes(c, "text", r->step[0].p, r->step[0].n);
    if (r->lp && r->cr.logprobs) cJSON_AddItemToObject(c, "logprobs", logprobs_json(r));
    else cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", r->tool_calls && !strcmp(finish, "stop") ? "tool_calls" : finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    if (finish && !r->cr.include_usage) { // llama-server: timings on the last chunk
        cJSON_AddItemToObject(o, "timings", timings_json(r));
    }
    req_event(r, o);
    r->step[0].n = r->step[1].n = 0;
}

// the first chunk of a streamed chat answer, as OpenAI and vLLM send it: the message's role with empty content
// (clients that assemble the message from the deltas, such as the openai SDKs' stream helpers, take the role from it)
static void stream_role_chunk(Req *r) {
    cJSON *o = resp_head(r, "chat.completion.chunk");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *d = cJSON_AddObjectToObject(c, "delta");
    cJSON_AddStringToObject(d, "role", "assistant");
    cJSON_AddStringToObject(d, "content", "");
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddNullToObject(c, "finish_reason");
    req_event(r, o);
}

// the whole non-streamed answer
static void final_json(Req *r) {
    cJSON *o = resp_head(r, r->cr.chat ? "chat.completion" : "text_completion");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (r->cr.chat) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        // content before the first tool call (null when blank and there are calls), reasoning, tool calls: as
        // parse-output makes them of the same text
        if (r->tool_calls && !r->text[0].n) cJSON_AddNullToObject(m, "content");
        else json_add_bytes(m, "content", r->text[0].p, r->text[0].n);
        if (r->text[1].n) {
            json_add_bytes(m, "reasoning_content", r->text[1].p, r->text[1].n);
            json_add_bytes(m, "reasoning", r->text[1].p, r->text[1].n);
        }
        if (r->tool_calls) {
            cJSON *tcs = cJSON_Duplicate(r->tool_calls, 1);
            for (cJSON *tc = tcs->child; tc; tc = tc->next) cJSON_DeleteItemFromObjectCaseSensitive(tc, "index");
            cJSON_AddItemToObject(m, "tool_calls", tcs);
        }
    } else json_add_bytes(c, "text", r->text[0].p, r->text[0].n);
    if (r->cr.logprobs) cJSON_AddItemToObject(c, "logprobs", logprobs_json(r));
    else cJSON_AddNullToObject(c, "logprobs");
    const char *fin = r->finish ? r->finish : "stop";
    if (r->tool_calls && !strcmp(fin, "stop")) fin = "tool_calls";
    cJSON_AddStringToObject(c, "finish_reason", fin);
    cJSON_AddItemToObject(o, "usage", usage_json(r));
    cJSON_AddItemToObject(o, "timings", timings_json(r));
    char *s = json_print(o);
    cJSON_Delete(o);
    if (s) req_out(r, s, strlen(s));
    free(s);
}

// ---------------------------------------------------------------------------- generated text

// new text of channel ch (0 content, 1 reasoning): into the answer, and into this token's chunk
static void channel_text(Req *r, int ch, const char *s, size_t n) {
    buf_add(&r->text[ch], s, n);
    buf_add(&r->step[ch], s, n);
}

// the model's text passed on: a chat answer into the splitter (reasoning / content / tool calls), a completion into
// channel 0
static void answer_text(Req *r, const char *s, size_t n) {
    if (!n) return;
    if (r->co) chat_output_stream_feed(r->co, s, n);
    else channel_text(r, 0, s, n);
}

// the model's text as it is generated (every token, markers included), where stop strings are looked for (as vLLM
// and llama-server look for them in the whole output text): what could still begin one is held back (r->held), and
// at one the text before it is passed on, the splitter finished (its held-back text comes out) and the answer ends
// with finish "stop". Matching the splitter's output instead missed a stop string in text the splitter holds back
// (a thinking block the prompt opened, undecided until its end), which then ran to max_tokens
static void model_text(Req *r, const char *s, size_t n) {
    if (r->finish) return;
    if (!r->cr.nstop) {
        answer_text(r, s, n);
        return;
    }
    Buf *h = &r->held;
    buf_add(h, s, n);
    size_t cut = SIZE_MAX, keep = 0;
    for (int k = 0; k < r->cr.nstop; k++) {
        const char *hit = memmem(h->p, h->n, r->cr.stop[k], strlen(r->cr.stop[k]));
        if (hit && (size_t)(hit - h->p) < cut) cut = (size_t)(hit - h->p);
    }
    if (cut != SIZE_MAX) {
        answer_text(r, h->p, cut);
        h->n = 0;
        if (r->co) chat_output_stream_finish(r->co);
        r->finish = "stop"; // after the splitter's last deltas (route_delta takes none once the answer is finished)
        return;
    }
    for (int k = 0; k < r->cr.nstop; k++) // the longest tail that is a proper prefix of a stop string waits for more
        for (size_t m = strlen(r->cr.stop[k]) - 1; m > keep; m--)
            if (m <= h->n && !memcmp(h->p + h->n - m, r->cr.stop[k], m)) {
                keep = m;
                break;
            }
    answer_text(r, h->p, h->n - keep);
    memmove(h->p, h->p + h->n - keep, keep);
    h->n = keep;
}

// a delta of the splitter: content and reasoning into their channels, tool calls collected
static int route_delta(void *user, const ChatDelta *d) {
    Req *r = user;
    if (r->finish) return 0;
    if (d->kind == CHAT_DELTA_CONTENT) channel_text(r, 0, d->text, d->len);
    else if (d->kind == CHAT_DELTA_REASONING) channel_text(r, 1, d->text, d->len);
    else if (d->kind == CHAT_DELTA_TOOL_CALL) {
        if (!r->tool_calls && !(r->tool_calls = cJSON_CreateArray())) return -1;
        cJSON *tc = cJSON_CreateObject(), *fn = cJSON_CreateObject();
        cJSON_AddNumberToObject(tc, "index", d->index);
        cJSON_AddStringToObject(tc, "id", d->id);
        cJSON_AddStringToObject(tc, "type", "function");
        char *name = strndup(d->text, d->len);
        cJSON_AddStringToObject(fn, "name", name ? name : "");
        free(name);
        cJSON_AddStringToObject(fn, "arguments", "");
        cJSON_AddItemToObject(tc, "function", fn);
        cJSON_AddItemToArray(r->tool_calls, tc);
    } else if (d->kind == CHAT_DELTA_TOOL_ARGS && r->tool_calls) {
        cJSON *tc = cJSON_GetArrayItem(r->tool_calls, cJSON_GetArraySize(r->tool_calls) - 1);
        cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const char *old = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(fn, "arguments"));
        size_t n = strlen(old ? old : "");
        char *cat = malloc(n + d->len + 1);
        if (!cat) return -1;
        memcpy(cat, old ? old : "", n), memcpy(cat + n, d->text, d->len), cat[n + d->len] = 0;
        cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", cJSON_CreateString(cat));
        free(cat);
    }
    return 0;
}

// one generated token (not eos) into the answer (model_text: stop strings, then the splitter or the text)
static void token_out(Req *r, int id) {
    char buf[4096];
    int n = stream_feed(&r->raw, id, buf, sizeof buf);
    if (n > 0) model_text(r, buf, (size_t)n);
}

// the end of the answer: pending characters, held-back text, the last chunk or the whole JSON; metrics
static void finish_req(Req *r, const char *reason) {
    char buf[256];
    if (!r->finish) {
        int n = stream_flush(&r->raw, buf, sizeof buf);
        if (n > 0) model_text(r, buf, (size_t)n);
    }
    if (!r->finish) { // no stop string came: the text held back for one goes on, and the splitter ends
        answer_text(r, r->held.p, r->held.n);
        r->held.n = 0;
        if (r->co) chat_output_stream_finish(r->co);
        r->finish = reason;
    }
    r->t_end = now_s();
    if (!r->t_gen) r->t_gen = r->t_end;
    if (r->cr.stream) {
        stream_chunk(r, NULL); // the held-back text first
        stream_chunk(r, r->finish);
        if (r->cr.include_usage) {
            cJSON *o = resp_head(r, r->cr.chat ? "chat.completion.chunk" : "text_completion");
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "usage", usage_json(r));
            cJSON_AddItemToObject(o, "timings", timings_json(r));
            req_event(r, o);
        }
        req_out(r, "data: [DONE]\n\n", 14);
    } else {
        r->status = 200;
        final_json(r);
    }
    pthread_mutex_lock(&g.mu);
    g.m_gen_tokens += (uint64_t)r->ngen;
    g.m_prompt_tokens += (uint64_t)r->p.seq.n;
    g.m_cache_hit += (uint64_t)r->n_cached;
    g.m_prompt_run += (uint64_t)(r->p.seq.n - r->n_cached);
    g.m_prompt_s += r->t_gen - r->t_start;
    g.m_decode_s += r->t_end - r->t_gen;
    pthread_mutex_unlock(&g.mu);
}

// a request that failed inside the scheduler: an error object (stream: one error event, then [DONE])
static void fail_req(Req *r, int status, const char *msg) {
    char *e = error_json(status, "", msg);
    if (!e) return;
    if (r->cr.stream) {
        Buf b = {0};
        buf_add(&b, "data: ", 6), buf_add(&b, e, strlen(e)), buf_add(&b, "\n\ndata: [DONE]\n\n", 16);
        if (b.p) req_out(r, b.p, b.n);
        free(b.p);
    } else {
        r->status = status;
        req_out(r, e, strlen(e));
    }
    free(e);
}

// ---------------------------------------------------------------------------- scheduler

// the request leaves its slot: done, connection woken, the scheduler's reference dropped (scheduler thread)
static void release(int slot) {
    Req *r = g.slot_req[slot];
    pthread_mutex_lock(&g.mu);
    g.slot_req[slot] = NULL;
    g.busy--;
    r->done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&g.mu);
    req_unref(r);
}

// tokens at the start of the prompt whose content keys equal what slot i caches
static int key_prefix(int i, const Req *r) {
    const int have = g.slots[i].md.n_past;
    int k = 0;
    while (k < have && k < r->p.seq.n && g.slot_keys[i][k] == r->keys[k]) k++;
    return k;
}

// the free slot for r: the longest cached prefix, else the least recently used (g.mu held)
static int pick_slot(const Req *r) {
    int best = -1, best_len = -1;
    for (int i = 0; i < g.o.parallel; i++) {
        if (g.slot_req[i]) continue;
        int len = key_prefix(i, r);
        if (len > best_len || (len == best_len && g.slot_used[i] < g.slot_used[best])) best = i, best_len = len;
    }
    return best;
}

static int encode_media(Req *r);

// start of a prefill: features of the media, the slot's cache cut where the content first differs
static int prefill_start(Req *r, Session *s, int slot) {
    r->t_start = now_s();
    if (encode_media(r)) return -1;
    session_truncate(s, key_prefix(slot, r));
    r->n_cached = session_prefix(s, &r->p);
    r->started = 1;
    return 0;
}

// one step: every active slot does one unit of work (a prefill chunk, or sample + one decoded token)
static void run_step(void) {
    const int P = g.o.parallel;
    Session *bs[256];
    int bid[256], bslot[256], nb = 0;
    for (int i = 0; i < P; i++) {
        Req *r = g.slot_req[i];
        if (!r) continue;
        Session *s = &g.slots[i];
        if (__atomic_load_n(&r->cancelled, __ATOMIC_RELAXED)) {
            pthread_mutex_lock(&g.mu);
            g.m_cancelled++, g.m_gen_tokens += (uint64_t)r->ngen;
            pthread_mutex_unlock(&g.mu);
            release(i);
            continue;
        }
        if (r->phase == PH_PREFILL) {
            int left = r->started || !prefill_start(r, s, i) ? session_prefill_chunk(s, &r->p, &r->m, NULL) : -1;
            if (left < 0) {
                fail_req(r, 500, glm_errmsg);
                session_truncate(s, 0);
                release(i);
                continue;
            }
            memcpy(g.slot_keys[i], r->keys, (size_t)(r->p.seq.n - left) * sizeof(uint64_t));
            if (left > 0) continue;
            r->phase = PH_GEN;
            r->t_gen = now_s();
        }
        // decode: the next token from the newest logits (copied first for the log-probabilities: the sampler's
        // repetition penalty changes them in place)
        if (r->cr.logprobs) memcpy(g.lpbuf, s->last, (size_t)g.e.c->text.vocab_size * sizeof(float));
        for (int k = 0; k < r->cr.nbias; k++) s->last[r->cr.bias_ids[k]] += r->cr.bias_vals[k]; // logit_bias
        int id = sampler_sample(&r->smp, s->last, s->cache_ids, s->md.n_past);
        r->gen[r->ngen++] = id;
        if (engine_is_eos(&g.e, id) && !r->cr.ignore_eos) {
            finish_req(r, "stop");
            release(i);
            continue;
        }
        if (r->cr.logprobs) add_logprobs(r, g.lpbuf, id);
        token_out(r, id);
        if (r->cr.stream) stream_chunk(r, NULL);
        if (r->finish || r->ngen >= r->max_new || s->md.n_past >= s->max_ctx) {
            finish_req(r, "length");
            release(i);
            continue;
        }
        bs[nb] = s, bid[nb] = id, bslot[nb] = i, nb++;
    }
    if (nb && engine_step_batch(&g.batch, bs, bid, nb)) { // only a full cache fails, and that was checked
        for (int k = 0; k < nb; k++) fail_req(g.slot_req[bslot[k]], 500, glm_errmsg), release(bslot[k]);
        return;
    }
    for (int k = 0; k < nb; k++) g.slot_keys[bslot[k]][g.slots[bslot[k]].md.n_past - 1] = (uint64_t)bid[k];
}

// the scheduler thread: admit queued requests into free slots between steps, run steps while any slot is busy,
// sleep otherwise; on stop, end every running and queued request
static void *scheduler_main(void *arg) {
    (void)arg;
    if (g.o.threads) omp_set_num_threads(g.o.threads);
    pthread_mutex_lock(&g.mu);
    while (!g.stopping) {
        // new requests join between steps
        while (g.qhead && g.busy < g.o.parallel) {
            Req *r = g.qhead;
            g.qhead = r->next;
            if (!g.qhead) g.qtail = NULL;
            g.qlen--;
            if (r->cancelled) { // its client left while it waited
                g.m_cancelled++;
                r->done = 1;
                pthread_cond_broadcast(&r->cv);
                pthread_mutex_unlock(&g.mu);
                req_unref(r);
                pthread_mutex_lock(&g.mu);
                continue;
            }
            int s = pick_slot(r);
            g.slot_req[s] = r, r->slot = s, g.busy++;
            g.slot_used[s] = ++g.tick;
        }
        if (!g.busy) {
            pthread_cond_wait(&g.sched_cv, &g.mu);
            continue;
        }
        pthread_mutex_unlock(&g.mu);
        run_step();
        pthread_mutex_lock(&g.mu);
    }
    // stopping: every running and queued request ends now
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < g.o.parallel; i++)
        if (g.slot_req[i]) { // the client learns why its answer ends here
            __atomic_store_n(&g.slot_req[i]->cancelled, 1, __ATOMIC_RELAXED);
            fail_req(g.slot_req[i], 503, "the server is shutting down: the answer was cut");
            pthread_mutex_lock(&g.mu);
            g.m_cancelled++, g.m_gen_tokens += (uint64_t)g.slot_req[i]->ngen;
            pthread_mutex_unlock(&g.mu);
            release(i);
        }
    pthread_mutex_lock(&g.mu);
    while (g.qhead) {
        Req *r = g.qhead;
        g.qhead = r->next, g.qlen--;
        g.m_cancelled++;
        r->cancelled = r->done = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&g.mu);
        req_unref(r);
        pthread_mutex_lock(&g.mu);
    }
    g.qtail = NULL;
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

// ---------------------------------------------------------------------------- HTTP

#define GEN_TIMEOUT_S 3600 // idle limit of a connection once its request is accepted
#define BODY_MIN_RATE 1024 // bytes per second a request body must average once --timeout seconds have passed since its
                           // headers (slowloris: a byte now and then never leaves the connection idle)

// per request on a connection: the body as it arrives
typedef struct {
    Buf body;     // request body so far
    int too_big;  // the body passed --max-body (read and dropped; 413 at the end)
    int too_busy; // the bodies being received together passed their budget (dropped; 503 at the end)
    size_t held;  // bytes of this body counted in g.body_bytes
    int answered; // a response was already queued (early 413 / 401)
    double t0;    // when the headers were read
    size_t received; // body bytes received so far (kept or dropped)
} ConnCtx;

// queue a response of bytes with a content type and optional extra header
static enum MHD_Result respond(struct MHD_Connection *c, int status, const char *type, const char *body, size_t n,
                               const char *hname, const char *hval) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    if (hname) MHD_add_response_header(resp, hname, hval);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

// queue a cJSON object (deleted) as the response
static enum MHD_Result respond_json(struct MHD_Connection *c, int status, cJSON *j) {
    char *s = json_print(j);
    cJSON_Delete(j);
    if (!s) return MHD_NO;
    enum MHD_Result rc = respond(c, status, "application/json", s, strlen(s), NULL, NULL);
    free(s);
    return rc;
}

// an OpenAI error object with one extra header (hname NULL: none)
static enum MHD_Result respond_error_va(struct MHD_Connection *c, int status, const char *hname, const char *hval,
                                        const char *param, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static enum MHD_Result respond_error_va(struct MHD_Connection *c, int status, const char *hname, const char *hval,
                                        const char *param, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (size_t i = 0, n = strlen(msg); i < n; i++) // a request's bytes quoted in the message: invalid ones become '?'
        if ((unsigned char)msg[i] >= 0x80) {
            size_t k = 2;
            while (k <= 4 && i + k <= n && !utf8_valid(msg + i, k)) k++;
            if (k > 4 || i + k > n) msg[i] = '?';
            else i += k - 1;
        }
    char *s = error_json(status, param, msg);
    if (!s) return MHD_NO;
    pthread_mutex_lock(&g.mu);
    g.m_rejected++;
    pthread_mutex_unlock(&g.mu);
    enum MHD_Result rc = respond(c, status, "application/json", s, strlen(s), hname, hval);
    free(s);
    return rc;
}

// an OpenAI error object; 503 carries Retry-After, 401 WWW-Authenticate
static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result rc = respond_error_va(c, status, status == 503 ? "Retry-After" : status == 401 ? "WWW-Authenticate" : NULL,
                                          status == 503 ? "1" : "Bearer", param, fmt, ap);
    va_end(ap);
    return rc;
}

// 405 with the Allow header naming the methods the URL takes (RFC 9110: a 405 must carry it)
static enum MHD_Result respond_405(struct MHD_Connection *c, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result respond_405(struct MHD_Connection *c, const char *allow, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result rc = respond_error_va(c, 405, "Allow", allow, "", fmt, ap);
    va_end(ap);
    return rc;
}

// 1 when the client closed its side (or the socket failed): the request is abandoned
static int client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return 1;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

// the key, compared in constant time
static int key_ok(struct MHD_Connection *c) {
    if (!g.o.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(g.o.api_key);
    unsigned diff = a != b;
    for (size_t i = 0; i < b; i++) diff |= (unsigned)(h[i < a ? i : 0] ^ g.o.api_key[i]);
    return diff == 0;
}

// MHD content reader of an SSE answer: the bytes the scheduler wrote so far, waiting (the connection has its own
// thread) while there are none; the end when the request is done; an error when the client went away
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    Req *r = cls;
    pthread_mutex_lock(&g.mu);
    for (;;) {
        if (r->out.n > r->out_sent) {
            size_t n = r->out.n - r->out_sent < max ? r->out.n - r->out_sent : max;
            memcpy(buf, r->out.p + r->out_sent, n);
            r->out_sent += n;
            pthread_mutex_unlock(&g.mu);
            return (ssize_t)n;
        }
        if (r->done) {
            pthread_mutex_unlock(&g.mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&r->cv, &g.mu, &ts);
        if (!r->done && r->out.n == r->out_sent && client_gone(r->conn)) {
            r->cancelled = 1;
            pthread_mutex_unlock(&g.mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
}

// MHD is done with the SSE response: a request still running is cancelled; the HTTP side lets go of it
static void stream_free(void *cls) {
    Req *r = cls;
    pthread_mutex_lock(&g.mu);
    if (!r->done) r->cancelled = 1;
    pthread_cond_signal(&g.sched_cv);
    pthread_mutex_unlock(&g.mu);
    req_unref(r);
}

// a hash of each image's and video's preprocessed pixels (with its grid, and a video's timestamp ids): the content
// of its tokens for the prefix cache, and the key of its features in the media cache
static void media_hashes(const Media *m, uint64_t *img_h, uint64_t *vid_h) {
    const PixelBatch *pbs[2] = {&m->img, &m->vid};
    uint64_t *hs[2] = {img_h, vid_h};
    for (int b = 0; b < 2; b++) {
        int64_t off = 0;
        for (int j = 0; j < pbs[b]->nitems; j++) {
            const int *gr = pbs[b]->grid[j];
            const int64_t np = (int64_t)gr[0] * gr[1] * gr[2];
            uint64_t h = fnv64(0xcbf29ce484222325ULL ^ (uint64_t)b, gr, 3 * sizeof(int));
            h = fnv64(h, pbs[b]->pixel_values + off * pbs[b]->ncols, (size_t)(np * pbs[b]->ncols) * sizeof(float));
            if (b == 1 && m->stamp_ids[j])
                for (int f = 0; f < gr[0]; f++) h = fnv64(h, m->stamp_ids[j][f], (size_t)m->stamp_len[j][f] * sizeof(int));
            hs[b][j] = h;
            off += np;
        }
    }
}

// the content keys of a prompt: a text token is its id; a vision token the hash of its item and its index in it, with
// the top bit set (never equal to an id)
static uint64_t *prompt_keys(const Prompt *p, const Media *m, const uint64_t *img_h, const uint64_t *vid_h) {
    const int m2 = g.e.c->vision.spatial_merge_size * g.e.c->vision.spatial_merge_size;
    uint64_t *k = malloc((size_t)p->seq.n * sizeof(uint64_t));
    if (!k) return NULL;
    const PixelBatch *pbs[2] = {&m->img, &m->vid};
    const uint64_t *hs[2] = {img_h, vid_h};
    int item[2] = {-1, -1};
    int64_t left[2] = {0, 0}, idx[2] = {0, 0};
    for (int i = 0; i < p->seq.n; i++) {
        const int t = p->seq.type[i];
        if (!t) {
            k[i] = (uint64_t)(uint32_t)p->seq.ids[i];
            continue;
        }
        const int b = t - 1;
        if (left[b] == 0 && item[b] + 1 < pbs[b]->nitems) { // the next item's tokens start
            const int *gr = pbs[b]->grid[++item[b]];
            left[b] = (int64_t)gr[0] * gr[1] * gr[2] / m2, idx[b] = 0;
        }
        k[i] = mix64((item[b] >= 0 ? hs[b][item[b]] : 0) ^ mix64((uint64_t)idx[b]++)) | (1ULL << 63);
        if (left[b] > 0) left[b]--;
    }
    return k;
}

// ---------------------------------------------------------------------------- media feature cache

// the vision tower's output for one item, kept for the same pixels seen again (scheduler thread only)
typedef struct {
    uint64_t hash;  // media_hashes of the item
    int type;       // MEDIA_IMAGE / MEDIA_VIDEO
    float *rows;    // [n, H] features
    int64_t n;      // rows
    uint64_t used;  // last use (LRU)
} FeatEntry;

static FeatEntry *fc;          // [fc_n] entries
static int fc_n, fc_cap;       // used / allocated
static size_t fc_bytes;        // bytes of rows held
static uint64_t fc_tick;       // use counter

// the cached features of an item, or NULL
static FeatEntry *fc_find(uint64_t hash, int type) {
    for (int i = 0; i < fc_n; i++)
        if (fc[i].hash == hash && fc[i].type == type) return fc[i].used = ++fc_tick, &fc[i];
    return NULL;
}

// keep a copy of rows [n, H]; the least recently used entries leave while over --media-cache
static void fc_put(uint64_t hash, int type, const float *rows, int64_t n) {
    const size_t bytes = (size_t)n * g.e.c->text.hidden_size * sizeof(float), max = (size_t)g.o.media_cache_mb << 20;
    if (bytes > max) return;
    while (fc_n && fc_bytes + bytes > max) {
        int lru = 0;
        for (int i = 1; i < fc_n; i++)
            if (fc[i].used < fc[lru].used) lru = i;
        fc_bytes -= (size_t)fc[lru].n * g.e.c->text.hidden_size * sizeof(float);
        free(fc[lru].rows);
        fc[lru] = fc[--fc_n];
    }
    if (fc_n == fc_cap) {
        FeatEntry *nf = realloc(fc, (size_t)(fc_cap ? 2 * fc_cap : 16) * sizeof *fc);
        if (!nf) return;
        fc = nf, fc_cap = fc_cap ? 2 * fc_cap : 16;
    }
    float *copy = malloc(bytes);
    if (!copy) return;
    memcpy(copy, rows, bytes);
    fc[fc_n++] = (FeatEntry){hash, type, copy, n, ++fc_tick};
    fc_bytes += bytes;
}

// empty the media cache
static void fc_free(void) {
    for (int i = 0; i < fc_n; i++) free(fc[i].rows);
    free(fc);
    fc = NULL, fc_n = fc_cap = 0, fc_bytes = 0;
}

// the features of every item of a request: from the cache when the same pixels were seen, else the vision tower
// (item by item, which gives the same rows as media_encode)
static int encode_media(Req *r) {
    const int H = g.e.c->text.hidden_size;
    for (int type = MEDIA_IMAGE; type <= MEDIA_VIDEO; type++) {
        const PixelBatch *pb = type == MEDIA_IMAGE ? &r->m.img : &r->m.vid;
        const uint64_t *hs = type == MEDIA_IMAGE ? r->img_hash : r->vid_hash;
        for (int j = type == MEDIA_IMAGE ? r->m.img_done : r->m.vid_done; j < pb->nitems; j++) {
            const FeatEntry *f = g.o.media_cache_mb ? fc_find(hs[j], type) : NULL;
            if (f) {
                if (media_put_features(&r->m, &g.e, type, f->rows, f->n)) return -1;
                pthread_mutex_lock(&g.mu);
                g.m_media_hits++;
                pthread_mutex_unlock(&g.mu);
                continue;
            }
            const int64_t before = type == MEDIA_IMAGE ? r->m.n_img_tok : r->m.n_vid_tok;
            if (media_encode_next(&r->m, &g.e, type)) return -1;
            const int64_t after = type == MEDIA_IMAGE ? r->m.n_img_tok : r->m.n_vid_tok;
            const float *rows = (type == MEDIA_IMAGE ? r->m.img_embeds : r->m.vid_embeds) + (size_t)before * H;
            if (g.o.media_cache_mb) fc_put(hs[j], type, rows, after - before);
        }
    }
    return 0;
}

#define RENDER_MAX 4 // documents rendered at once (each runs pdftoppm with up to 4 GiB of address space)

// wait for a turn to render documents (render_leave gives it back): a flood of PDFs runs RENDER_MAX renderers at a
// time, whatever the number of connections
static void render_enter(void) {
    pthread_mutex_lock(&g.mu);
    while (g.rendering >= RENDER_MAX) pthread_cond_wait(&g.render_cv, &g.mu);
    g.rendering++;
    pthread_mutex_unlock(&g.mu);
}

static void render_leave(void) {
    pthread_mutex_lock(&g.mu);
    g.rendering--;
    pthread_cond_signal(&g.render_cv);
    pthread_mutex_unlock(&g.mu);
}

// where a request's media may come from and how its documents become pages (the flags)
static MediaPolicy media_policy(void) {
    MediaPolicy p = {.allowed_dir = g.o.media_dir ? g.o.media_real : NULL, .allow_local = g.o.media_dir != NULL,
                     .max_images = ENGINE_MAX_IMAGES, .max_videos = ENGINE_MAX_VIDEOS,
                     .pdf = {.max_pages = g.o.max_pages, .dpi = g.o.pdf_dpi, .max_image_pixels = g.o.max_image_pixels,
                             .timeout_s = g.o.pdf_timeout, .from_request = 1}};
    return p;
}

// visual tokens of the pages of a request's documents
static int64_t document_tokens(const ChatRequest *cr) {
    int64_t n = 0;
    for (int i = 0; i < cr->nmedia; i++)
        if (cr->media[i].is_pdf) n += pdf_cost_line(&cr->media[i].doc, "", &g.e.c->proc, NULL, 0);
    return n;
}

// a new request from a parsed body: media, prompt, checks, sampler; NULL after queueing the error response
static Req *build_req(struct MHD_Connection *c, ChatRequest *cr, enum MHD_Result *res) {
    Req *r = calloc(1, sizeof *r);
    if (!r) {
        openai_request_free(cr);
        *res = respond_error(c, 500, "", "out of memory");
        return NULL;
    }
    r->cr = *cr;
    r->slot = -1, r->refs = 2, r->conn = c;
    pthread_cond_init(&r->cv, NULL);
    OaError err = {{0}, {0}};
    int status = 400;
    MediaOptions mo = {.resize = RESIZE_TORCH, .max_image_pixels = g.o.max_image_pixels, .fps = 2.0f};
    char *text = NULL;
    const MediaPolicy pol = media_policy();
    // documents are rendered before the preprocessing lock (pdftoppm runs as a program; other requests go on), their
    // pages' visual tokens checked against the budget before any preprocessing
    int has_doc = 0;
    for (int i = 0; i < r->cr.nmedia; i++) has_doc |= r->cr.media[i].is_pdf;
    if (has_doc) render_enter();
    int rc = openai_render_documents(&r->cr, &pol, &g.e.c->proc, g.o.max_visual_tokens, &err);
    if (has_doc) render_leave();
    pthread_mutex_lock(&g.prep_mu);
    if (!rc) rc = openai_load_media(&g.e, &r->cr, &r->m, &mo, &pol, g.o.max_visual_tokens, g.ctx - 1, &err);
    if (!rc && openai_render(&g.e, &r->cr, r->cr.think, &text)) {
        rc = -1;
        snprintf(err.param, sizeof err.param, "%s", r->cr.chat ? "messages" : "prompt");
        snprintf(err.message, sizeof err.message, "%s", glm_errmsg);
    }
    if (!rc && (r->cr.prompt_ids ? engine_prompt_ids(&g.e, r->cr.prompt_ids, r->cr.nprompt_ids, &r->m, &r->p)
                                 : engine_prompt(&g.e, text, strlen(text), &r->m, &r->p))) {
        rc = -1;
        snprintf(err.param, sizeof err.param, "%s", r->cr.chat ? "messages" : "prompt");
        snprintf(err.message, sizeof err.message, "%s", glm_errmsg);
    }
    pthread_mutex_unlock(&g.prep_mu);
    if (text) r->think_open = chat_output_prompt_ends_in_think(text, strlen(text));
    free(text);
    const int L = r->p.seq.n;
    for (int i = 0; !rc && i < L; i++)
        if (r->p.seq.ids[i] < 0 || r->p.seq.ids[i] >= g.e.c->text.vocab_size) {
            rc = -1;
            snprintf(err.param, sizeof err.param, "prompt");
            snprintf(err.message, sizeof err.message, "token id %d is outside the model vocabulary (%d)",
                     r->p.seq.ids[i], g.e.c->text.vocab_size);
        }
    for (int i = 0; !rc && i < r->cr.nbias; i++)
        if (r->cr.bias_ids[i] >= g.e.c->text.vocab_size) {
            rc = -1;
            snprintf(err.param, sizeof err.param, "logit_bias");
            snprintf(err.message, sizeof err.message, "logit_bias: token id %d is outside the vocabulary (%d)",
                     r->cr.bias_ids[i], g.e.c->text.vocab_size);
        }
    const int64_t vis = openai_visual_tokens(&g.e, &r->m), doc = document_tokens(&r->cr);
    if (!rc && g.o.max_visual_tokens > 0 && vis > g.o.max_visual_tokens) {
        rc = -1;
        snprintf(err.param, sizeof err.param, "messages");
        snprintf(err.message, sizeof err.message, "the request's images%s and videos take %lld visual tokens, above the "
                 "budget of %lld per request (--max-visual-tokens)%s", doc ? ", document pages" : "", (long long)vis,
                 (long long)g.o.max_visual_tokens, doc ? ": send fewer pages (\"pages\": \"1-3\" in the file part)" : "");
    }
    if (!rc && L + 1 > g.ctx) {
        rc = -1;
        snprintf(err.param, sizeof err.param, "%s", r->cr.chat ? "messages" : "prompt");
        if (doc)
            snprintf(err.message, sizeof err.message,
                     "the prompt is %d tokens, %lld of them the visual tokens of the document pages: it does not fit the "
                     "context of %d tokens per request (--ctx-size) with room for an answer: send fewer pages "
                     "(\"pages\": \"1-3\" in the file part) or a lower \"dpi\"", L, (long long)doc, g.ctx);
        else
            snprintf(err.message, sizeof err.message,
                     "the prompt is %d tokens: it does not fit the context of %d tokens per request (--ctx-size) with "
                     "room for an answer", L, g.ctx);
    }
    if (!rc) {
        r->max_new = r->cr.max_tokens < 0 ? g.ctx - L : r->cr.max_tokens;
        if (r->max_new > g.ctx - L + 1) r->max_new = g.ctx - L + 1;
        r->cap_gen = r->max_new + 1;
        SamplerParams sp = {.temp = r->cr.temperature, .top_k = r->cr.top_k, .top_p = r->cr.top_p,
                            .repeat_penalty = r->cr.repetition_penalty, .seed = r->cr.seed};
        if (!r->cr.has_seed) sp.seed = mix64((uint64_t)time(NULL) ^ mix64(__atomic_add_fetch(&g.next_id, 0, __ATOMIC_RELAXED)));
        media_hashes(&r->m, r->img_hash, r->vid_hash);
        if (!(r->gen = malloc((size_t)r->cap_gen * sizeof(int))) ||
            !(r->keys = prompt_keys(&r->p, &r->m, r->img_hash, r->vid_hash)) ||
            sampler_init(&r->smp, &sp, g.e.c)) {
            rc = -1, status = 500;
            snprintf(err.message, sizeof err.message, "out of memory");
        }
    }
    if (rc) {
        *res = respond_error(c, status, err.param, "%s", err.message);
        r->refs = 1;
        req_unref(r);
        return NULL;
    }
    stream_init(&r->raw, g.e.tok, 0);
    if (r->cr.chat) {
        // tool calls are parsed when the request gave tools and did not say tool_choice "none" (vLLM's rule)
        ChatOutputOptions opt = {.tools = r->cr.tools_json, .prompt_ends_in_think = r->think_open,
                                 .no_tool_parse = !r->cr.tools_json || (r->cr.tool_choice && !strcmp(r->cr.tool_choice, "none"))};
        if (!(r->co = chat_output_stream_new(&opt, route_delta, r))) {
            *res = respond_error(c, 500, NULL, "out of memory");
            r->refs = 1;
            req_unref(r);
            return NULL;
        }
    }
    uint64_t n = __atomic_add_fetch(&g.next_id, 1, __ATOMIC_RELAXED);
    snprintf(r->id, sizeof r->id, "%s-%llu%06llx", r->cr.chat ? "chatcmpl" : "cmpl", (unsigned long long)n,
             (unsigned long long)(mix64(n ^ (uint64_t)time(NULL)) & 0xffffff));
    r->created = (long)time(NULL);
    return r;
}

// /v1/chat/completions and /v1/completions: parse, build, queue, then stream or wait
static enum MHD_Result handle_generate(struct MHD_Connection *c, ConnCtx *cc, int chat) {
    ChatRequest cr;
    OaError err = {{0}, {0}};
    OaLimits lim = {g.o.media_dir ? g.o.media_real : NULL, ENGINE_MAX_IMAGES, ENGINE_MAX_VIDEOS};
    const char *body = cc->body.p ? cc->body.p : "";
    const int bad = chat ? openai_parse_chat(&cr, body, cc->body.n, &lim, &err)
                         : openai_parse_completion(&cr, body, cc->body.n, &err);
    __atomic_sub_fetch(&g.body_bytes, cc->held, __ATOMIC_RELAXED); // the body is read: its bytes leave the budget
    cc->held = 0, free(cc->body.p), cc->body = (Buf){0};
    if (bad) return respond_error(c, 400, err.param, "%s", err.message);
    enum MHD_Result res = MHD_NO;
    Req *r = build_req(c, &cr, &res);
    if (!r) return res;
    if (r->cr.stream && r->cr.chat) stream_role_chunk(r); // before the scheduler can write
    pthread_mutex_lock(&g.mu);
    if (g.stopping || g.qlen >= g.o.queue + (g.o.parallel - g.busy > 0 ? g.o.parallel - g.busy : 0)) {
        int stopping = g.stopping;
        pthread_mutex_unlock(&g.mu);
        r->refs = 1;
        req_unref(r);
        return stopping ? respond_error(c, 503, "", "the server is shutting down")
                        : respond_error(c, 503, "", "the queue is full (%d waiting): retry later", g.o.queue);
    }
    if (g.qtail) g.qtail->next = r;
    else g.qhead = r;
    g.qtail = r, g.qlen++;
    g.m_requests++;
    // the answer may take long (a long prompt on a large model): the idle limit of the request's reading no longer
    // applies; a client that stops reading is dropped after GEN_TIMEOUT_S
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)GEN_TIMEOUT_S);
    pthread_cond_signal(&g.sched_cv);
    pthread_mutex_unlock(&g.mu);
    if (r->cr.stream) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, r, stream_free);
        if (!resp) {
            stream_free(r);
            return MHD_NO;
        }
        // the charset named: without one, clients such as Python's requests decode a text/* body as Latin-1
        MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        enum MHD_Result rc = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    // not streamed: wait here (one thread per connection), watching for the client leaving
    pthread_mutex_lock(&g.mu);
    while (!r->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&r->cv, &g.mu, &ts);
        if (!r->done && client_gone(c)) {
            r->cancelled = 1;
            pthread_cond_signal(&g.sched_cv);
            pthread_mutex_unlock(&g.mu);
            req_unref(r);
            return MHD_NO;
        }
    }
    pthread_mutex_unlock(&g.mu);
    if (!r->out.n) res = respond_error(c, 503, "", "the request was cancelled: the server is shutting down");
    else res = respond(c, r->status ? r->status : 500, "application/json", r->out.p, r->out.n, NULL, NULL);
    req_unref(r);
    return res;
}

// GET /v1/models: the one served model
static enum MHD_Result handle_models(struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject(), *d = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToArray(d, m);
    cJSON_AddStringToObject(m, "id", g.name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "glm4v.c");
    cJSON_AddNumberToObject(m, "max_model_len", g.ctx);
    return respond_json(c, 200, o);
}

// llama-server's POST /tokenize {"content", "with_pieces"} -> {"tokens": [...]}
static enum MHD_Result handle_tokenize(struct MHD_Connection *c, ConnCtx *cc) {
    OaError err;
    cJSON *root = openai_parse_body(cc->body.p ? cc->body.p : "", cc->body.n, &err);
    if (!root) return respond_error(c, 400, err.param, "%s", err.message);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(root, "content");
    const cJSON *wp = cJSON_GetObjectItemCaseSensitive(root, "with_pieces");
    if (!cJSON_IsString(ct) || !utf8_valid(ct->valuestring, strlen(ct->valuestring)) || memmem(cc->body.p, cc->body.n, "\\u0000", 6)) {
        cJSON_Delete(root);
        return respond_error(c, 400, "content", "'content' must be a UTF-8 string (without \\u0000)");
    }
    int *ids = NULL;
    char msg[sizeof glm_errmsg];
    pthread_mutex_lock(&g.prep_mu);
    int n = tokenizer_encode(g.e.tok, ct->valuestring, strlen(ct->valuestring), &ids);
    if (n < 0) snprintf(msg, sizeof msg, "%s", glm_errmsg);
    pthread_mutex_unlock(&g.prep_mu);
    if (n < 0) {
        cJSON_Delete(root);
        return respond_error(c, 400, "content", "%s", msg);
    }
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "tokens");
    for (int i = 0; i < n; i++) {
        if (cJSON_IsTrue(wp)) {
            cJSON *t = cJSON_CreateObject();
            size_t sn = 0;
            char *s = token_text(ids[i], &sn);
            cJSON_AddNumberToObject(t, "id", ids[i]);
            if (s && utf8_valid(s, sn)) json_add_bytes(t, "piece", s, sn);
            else cJSON_AddItemToObject(t, "piece", bytes_json(s, s ? sn : 0));
            free(s);
            cJSON_AddItemToArray(a, t);
        } else cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    }
    free(ids);
    cJSON_Delete(root);
    return respond_json(c, 200, o);
}

// llama-server's POST /detokenize {"tokens": [...]} -> {"content"}
static enum MHD_Result handle_detokenize(struct MHD_Connection *c, ConnCtx *cc) {
    OaError err;
    cJSON *root = openai_parse_body(cc->body.p ? cc->body.p : "", cc->body.n, &err);
    if (!root) return respond_error(c, 400, err.param, "%s", err.message);
    const cJSON *tk = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    if (!cJSON_IsArray(tk)) {
        cJSON_Delete(root);
        return respond_error(c, 400, "tokens", "'tokens' must be a list of token ids");
    }
    const int n = cJSON_GetArraySize(tk), V = tokenizer_vocab_size(g.e.tok);
    int *ids = malloc(((size_t)n + 1) * sizeof(int)), k = 0;
    for (const cJSON *t = tk->child; t && ids; t = t->next, k++)
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 0 || t->valuedouble >= V) {
            free(ids);
            cJSON_Delete(root);
            return respond_error(c, 400, "tokens", "tokens[%d] is not a token id in [0, %d)", k, V);
        } else ids[k] = (int)t->valuedouble;
    char *s = ids ? tokenizer_decode(g.e.tok, ids, n, 0) : NULL;
    free(ids);
    cJSON_Delete(root);
    if (!s) return respond_error(c, 500, "", "out of memory");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "content", s);
    free(s);
    return respond_json(c, 200, o);
}

// POST /v1/pages {"file": {"file_data": "data:application/pdf;base64,...", "filename"}, "pages": "1-3", "dpi": N}:
// the pages of a document exactly as a chat request's file part renders them for the model (the same messages.c
// reader, pdf.c renderer and server flags), each as a PNG data: URI with its size in pixels and points and its visual
// tokens: {"object": "list", "data": [{"page", "width", "height", "width_pt", "height_pt", "dpi", "visual_tokens",
// "image_url"}, ...], "renderer", "dpi", "document_pages"}
static enum MHD_Result handle_pages(struct MHD_Connection *c, ConnCtx *cc) {
    OaError err;
    cJSON *root = openai_parse_body(cc->body.p ? cc->body.p : "", cc->body.n, &err);
    __atomic_sub_fetch(&g.body_bytes, cc->held, __ATOMIC_RELAXED); // parsed: the body's bytes leave the budget
    cc->held = 0, free(cc->body.p), cc->body = (Buf){0};
    if (!root) return respond_error(c, 400, err.param, "%s", err.message);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(root, "file");
    if (!cJSON_IsObject(file)) {
        cJSON_Delete(root);
        return respond_error(c, 400, "file", "the body must be {\"file\": {\"file_data\": \"data:application/pdf;"
                             "base64,...\", \"filename\": ...}} (optionally \"pages\": \"1-3\", \"dpi\": N)");
    }
    // the part a chat request would carry; top-level "pages" / "dpi" go into it
    cJSON *part = cJSON_CreateObject(), *f = cJSON_Duplicate(file, 1);
    cJSON_AddStringToObject(part, "type", "file");
    cJSON_AddItemToObject(part, "file", f);
    const char *keys[2] = {"pages", "dpi"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!v || cJSON_IsNull(v) || !f) continue;
        cJSON_DeleteItemFromObjectCaseSensitive(f, keys[k]);
        cJSON_AddItemToObject(f, keys[k], cJSON_Duplicate(v, 1));
    }
    cJSON_Delete(root);
    const MediaPolicy pol = media_policy();
    MediaRef ref;
    const ProcConfig *pc = &g.e.c->proc;
    int rc = media_ref_parse(&ref, part, &pol);
    cJSON_Delete(part);
    if (!rc) {
        render_enter();
        rc = media_ref_render(&ref, &pol, pc);
        render_leave();
    }
    if (rc) {
        char msg[sizeof glm_errmsg];
        snprintf(msg, sizeof msg, "%s", glm_errmsg);
        media_ref_free(&ref);
        return respond_error(c, 400, "file", "file: %s", msg);
    }
    cJSON *o = cJSON_CreateObject(), *data = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToObject(o, "data", data);
    for (int i = 0; i < ref.doc.n && o; i++) {
        const PdfPage *p = &ref.doc.pages[i];
        uint8_t *png = NULL;
        size_t npng = 0;
        char *uri = image_encode_png(&p->img, &png, &npng) ? NULL : base64_encode(png, npng, "data:image/png;base64,");
        free(png);
        cJSON *e = cJSON_CreateObject();
        if (!uri || !e) {
            free(uri), cJSON_Delete(e), cJSON_Delete(o);
            o = NULL;
            break;
        }
        cJSON_AddNumberToObject(e, "page", p->page);
        cJSON_AddNumberToObject(e, "width", p->img.w);
        cJSON_AddNumberToObject(e, "height", p->img.h);
        cJSON_AddNumberToObject(e, "width_pt", p->w_pt);
        cJSON_AddNumberToObject(e, "height_pt", p->h_pt);
        cJSON_AddNumberToObject(e, "dpi", p->dpi);
        cJSON_AddNumberToObject(e, "visual_tokens", (double)pdf_image_tokens(p->img.w, p->img.h, pc));
        cJSON_AddStringToObject(e, "image_url", uri);
        free(uri);
        cJSON_AddItemToArray(data, e);
    }
    if (o) {
        cJSON_AddStringToObject(o, "renderer", ref.doc.renderer);
        cJSON_AddNumberToObject(o, "dpi", ref.doc.n ? ref.doc.pages[0].dpi : 0);
        cJSON_AddNumberToObject(o, "document_pages", ref.doc.doc_pages);
    }
    media_ref_free(&ref);
    if (!o) return respond_error(c, 500, "", "out of memory");
    return respond_json(c, 200, o);
}

// Prometheus text format
static enum MHD_Result handle_metrics(struct MHD_Connection *c) {
    char s[4096];
    pthread_mutex_lock(&g.mu);
    snprintf(s, sizeof s,
             "# HELP glm4v_requests_total Generation requests accepted into the queue.\n# TYPE glm4v_requests_total counter\nglm4v_requests_total %llu\n"
             "# HELP glm4v_requests_rejected_total Requests answered with an error status.\n# TYPE glm4v_requests_rejected_total counter\nglm4v_requests_rejected_total %llu\n"
             "# HELP glm4v_requests_cancelled_total Requests ended early (client gone, shutdown).\n# TYPE glm4v_requests_cancelled_total counter\nglm4v_requests_cancelled_total %llu\n"
             "# HELP glm4v_media_cache_hits_total Images and videos whose features came from the media cache.\n# TYPE glm4v_media_cache_hits_total counter\nglm4v_media_cache_hits_total %llu\n"
             "# HELP glm4v_prompt_tokens_total Prompt tokens of finished requests (cached ones included).\n# TYPE glm4v_prompt_tokens_total counter\nglm4v_prompt_tokens_total %llu\n"
             "# HELP glm4v_generated_tokens_total Tokens generated.\n# TYPE glm4v_generated_tokens_total counter\nglm4v_generated_tokens_total %llu\n"
             "# HELP glm4v_cache_hit_tokens_total Prompt tokens reused from a slot's KV cache.\n# TYPE glm4v_cache_hit_tokens_total counter\nglm4v_cache_hit_tokens_total %llu\n"
             "# HELP glm4v_queue_depth Requests waiting for a slot.\n# TYPE glm4v_queue_depth gauge\nglm4v_queue_depth %d\n"
             "# HELP glm4v_slots_busy Slots holding a request.\n# TYPE glm4v_slots_busy gauge\nglm4v_slots_busy %d\n"
             "# HELP glm4v_slots_total Slots (--parallel).\n# TYPE glm4v_slots_total gauge\nglm4v_slots_total %d\n"
             "# HELP glm4v_prompt_seconds_total Seconds from prefill start to first token, summed over requests.\n# TYPE glm4v_prompt_seconds_total counter\nglm4v_prompt_seconds_total %.6f\n"
             "# HELP glm4v_decode_seconds_total Seconds of generation, summed over requests.\n# TYPE glm4v_decode_seconds_total counter\nglm4v_decode_seconds_total %.6f\n"
             "# HELP glm4v_prompt_tokens_per_second Prompt tokens run (not cached) per prefill second, since start.\n# TYPE glm4v_prompt_tokens_per_second gauge\nglm4v_prompt_tokens_per_second %.3f\n"
             "# HELP glm4v_decode_tokens_per_second Generated tokens per request-second of generation, since start.\n# TYPE glm4v_decode_tokens_per_second gauge\nglm4v_decode_tokens_per_second %.3f\n",
             (unsigned long long)g.m_requests, (unsigned long long)g.m_rejected,
             (unsigned long long)g.m_cancelled, (unsigned long long)g.m_media_hits, (unsigned long long)g.m_prompt_tokens,
             (unsigned long long)g.m_gen_tokens, (unsigned long long)g.m_cache_hit, g.qlen, g.busy, g.o.parallel,
             g.m_prompt_s, g.m_decode_s, g.m_prompt_s > 0 ? g.m_prompt_run / g.m_prompt_s : 0.0,
             g.m_decode_s > 0 ? g.m_gen_tokens / g.m_decode_s : 0.0);
    pthread_mutex_unlock(&g.mu);
    return respond(c, 200, "text/plain; version=0.0.4", s, strlen(s), NULL, NULL);
}

// a file of the chat page (no key needed: it holds no data; the page asks for the key itself), with its security
// headers: the page's Content-Security-Policy, no MIME sniffing, no referrer, revalidated on every load
static enum MHD_Result respond_webui(struct MHD_Connection *c, const WebuiFile *f) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", f->type);
    MHD_add_response_header(resp, "Content-Security-Policy", WEBUI_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result rc = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

// ---------------------------------------------------------------------------- header deadline

// an open connection as the header watchdog sees it (MHD's socket context): while it waits for a request's headers,
// they must all arrive within --timeout seconds of the wait's start (its accept, or the end of its previous answer).
// --timeout alone is an idle limit, which a client sending a header byte every few seconds never reaches
typedef struct WatchConn {
    struct WatchConn *prev, *next; // the list of open connections
    MHD_socket fd;                 // its socket
    int waiting;                   // 1 while a request's headers are awaited
    int cut;                       // 1 once shut down for being late
    double since;                  // when that wait began
} WatchConn;

static struct {
    pthread_mutex_t mu; // guards the list, and each entry's fields
    pthread_cond_t cv;  // wakes the watchdog to stop
    WatchConn *head;    // open connections
    int stop;           // 1: the watchdog ends
    pthread_t thread;   // the watchdog
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

// MHD opened or closed a connection: it joins or leaves the watchdog's list (MHD closes the socket only after the
// CLOSED notice, so the watchdog never shuts down a socket number that was reused)
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        WatchConn *k = ci ? calloc(1, sizeof *k) : NULL;
        if (!k) return; // not watched: only the idle limit applies to it
        k->fd = ci->connect_fd, k->waiting = 1, k->since = now_s();
        pthread_mutex_lock(&wd.mu);
        k->next = wd.head;
        if (wd.head) wd.head->prev = k;
        wd.head = k;
        pthread_mutex_unlock(&wd.mu);
        *socket_context = k;
    } else if (*socket_context) {
        WatchConn *k = *socket_context;
        pthread_mutex_lock(&wd.mu);
        if (k->prev) k->prev->next = k->next;
        else wd.head = k->next;
        if (k->next) k->next->prev = k->prev;
        pthread_mutex_unlock(&wd.mu);
        free(k);
        *socket_context = NULL;
    }
}

// the connection's request headers have arrived (waiting 0), or its answer is sent and the next request's headers
// are awaited from now (waiting 1)
static void conn_waiting(struct MHD_Connection *c, int waiting) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    WatchConn *k = ci ? ci->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&wd.mu);
    k->waiting = waiting, k->since = now_s();
    pthread_mutex_unlock(&wd.mu);
}

// the watchdog thread: once a second, a connection whose awaited headers are later than --timeout is shut down (its
// MHD thread then sees the end of the stream and closes it)
static void *watchdog_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&wd.mu);
    while (!wd.stop) {
        const double t = now_s();
        for (WatchConn *k = wd.head; k; k = k->next)
            if (k->waiting && !k->cut && t - k->since > g.o.timeout) shutdown(k->fd, SHUT_RDWR), k->cut = 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec++;
        pthread_cond_timedwait(&wd.cv, &wd.mu, &ts);
    }
    pthread_mutex_unlock(&wd.mu);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls, (void)version;
    ConnCtx *cc = *con_cls;
    const int post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    const int is_health = !strcmp(url, "/health") || !strcmp(url, "/v1/health");
    const WebuiFile *page = get && !g.o.no_webui ? webui_find(url) : NULL;
    if (!cc) { // headers only: what can be refused before the body is read
        if (!(cc = calloc(1, sizeof *cc))) return MHD_NO;
        *con_cls = cc;
        cc->t0 = now_s();
        conn_waiting(c, 0);
        if (page) return cc->answered = 1, respond_webui(c, page);
        if (!is_health && !key_ok(c)) return cc->answered = 1, respond_error(c, 401, "", "a valid API key is required (Authorization: Bearer KEY)");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > g.o.max_body)
            return cc->answered = 1, respond_error(c, 413, "", "the body is larger than --max-body (%zu bytes)", g.o.max_body);
        return MHD_YES;
    }
    if (*upload_size) {
        // a body trickling in (under BODY_MIN_RATE on average once --timeout has passed) closes the connection: the
        // idle limit alone lets a client hold a connection and its thread for hours with a byte every few seconds
        cc->received += *upload_size;
        const double late = now_s() - cc->t0 - g.o.timeout;
        if (late > 0 && (double)cc->received < late * BODY_MIN_RATE) {
            pthread_mutex_lock(&g.mu);
            g.m_rejected++;
            pthread_mutex_unlock(&g.mu);
            return MHD_NO;
        }
        if (!cc->answered && !cc->too_big && !cc->too_busy) {
            // every body being received counts against one budget (4 x --max-body, at least 256 MB), so many large
            // uploads at once cannot exhaust memory
            const size_t budget = g.o.max_body * 4 > (256u << 20) ? g.o.max_body * 4 : (256u << 20);
            if (cc->body.n + *upload_size > g.o.max_body) cc->too_big = 1;
            else if (__atomic_add_fetch(&g.body_bytes, *upload_size, __ATOMIC_RELAXED) > budget) {
                __atomic_sub_fetch(&g.body_bytes, *upload_size, __ATOMIC_RELAXED);
                cc->too_busy = 1;
            } else {
                cc->held += *upload_size;
                if (buf_add(&cc->body, upload, *upload_size)) return MHD_NO;
            }
            if (cc->too_big || cc->too_busy) {
                __atomic_sub_fetch(&g.body_bytes, cc->held, __ATOMIC_RELAXED);
                cc->held = 0, free(cc->body.p), cc->body = (Buf){0};
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cc->answered) return MHD_YES;
    if (cc->too_big) return respond_error(c, 413, "", "the body is larger than --max-body (%zu bytes)", g.o.max_body);
    if (cc->too_busy) return respond_error(c, 503, "", "too many large requests are being received: retry later");
    pthread_mutex_lock(&g.mu);
    const int loaded = g.loaded, stopping = g.stopping;
    pthread_mutex_unlock(&g.mu);
    if (is_health) {
        if (!get) return respond_405(c, "GET, HEAD", "use GET %s", url);
        const char *st = stopping ? "{\"status\":\"shutting down\"}" : loaded ? "{\"status\":\"ok\"}" : "{\"status\":\"loading model\"}";
        return respond(c, loaded && !stopping ? 200 : 503, "application/json", st, strlen(st), stopping || !loaded ? "Retry-After" : NULL, "1");
    }
    static const struct {
        const char *url;
        int post;
    } routes[] = {{"/v1/chat/completions", 1}, {"/chat/completions", 1}, {"/v1/completions", 1}, {"/completions", 1},
                  {"/v1/models", 0}, {"/models", 0}, {"/tokenize", 1}, {"/detokenize", 1}, {"/metrics", 0},
                  {"/v1/pages", 1}};
    int route = -1;
    for (int i = 0; i < (int)(sizeof routes / sizeof *routes) && route < 0; i++)
        if (!strcmp(url, routes[i].url)) route = i;
    if (route < 0) return respond_error(c, 404, "", "%s %.200s: no such endpoint", method, url);
    if (routes[route].post ? !post : !get)
        return respond_405(c, routes[route].post ? "POST" : "GET, HEAD", "use %s %s", routes[route].post ? "POST" : "GET",
                           routes[route].url);
    if (route == 8) return handle_metrics(c);
    if (stopping) return respond_error(c, 503, "", "the server is shutting down");
    if (!loaded) return respond_error(c, 503, "", "the model is loading");
    switch (route) {
    case 0: case 1: return handle_generate(c, cc, 1);
    case 2: case 3: return handle_generate(c, cc, 0);
    case 4: case 5: return handle_models(c);
    case 6: return handle_tokenize(c, cc);
    case 9: return handle_pages(c, cc);
    default: return handle_detokenize(c, cc);
    }
}

// MHD finished a request: free its body buffer; a kept-alive connection waits for its next request under --timeout
// again (an answered generation request had raised its limit to GEN_TIMEOUT_S)
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls, (void)t;
    ConnCtx *cc = *con_cls;
    if (cc) {
        __atomic_sub_fetch(&g.body_bytes, cc->held, __ATOMIC_RELAXED);
        free(cc->body.p), free(cc);
    }
    *con_cls = NULL;
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)g.o.timeout);
    conn_waiting(c, 1);
}

// ---------------------------------------------------------------------------- start and stop

// load the model and the slots in the background (/health says 503 meanwhile), then print the URL
static void *loader_main(void *arg) {
    const char *url = arg;
    ServeOptions *o = &g.o;
    if (engine_load_files(&g.e, o->model_dir, o->mmproj, o->processor, o->chat_template, NULL, NULL)) goto fail;
    const Config *c = g.e.c;
    g.ctx = o->ctx ? o->ctx : 4096;
    if (g.ctx > c->text.max_position_embeddings) g.ctx = c->text.max_position_embeddings;
    g.slots = calloc((size_t)o->parallel, sizeof *g.slots);
    g.slot_req = calloc((size_t)o->parallel, sizeof *g.slot_req);
    g.slot_keys = calloc((size_t)o->parallel, sizeof *g.slot_keys);
    g.slot_used = calloc((size_t)o->parallel, sizeof *g.slot_used);
    g.lpbuf = malloc((size_t)c->text.vocab_size * sizeof(float));
    if (!g.slots || !g.slot_req || !g.slot_keys || !g.slot_used || !g.lpbuf) {
        glm_err("out of memory");
        goto fail;
    }
    size_t arena = 0;
    for (int i = 0; i < o->parallel; i++) {
        if (session_init(&g.slots[i], &g.e, g.ctx, o->chunk < g.ctx ? o->chunk : g.ctx, 0)) goto fail;
        if (!(g.slot_keys[i] = malloc((size_t)g.ctx * sizeof(uint64_t)))) {
            glm_err("out of memory (slot keys)");
            goto fail;
        }
        arena += g.slots[i].md.arena_floats * sizeof(float);
    }
    if (batch_init(&g.batch, &g.e, o->parallel, g.ctx)) goto fail;
    arena += g.batch.act.arena_floats * sizeof(float);
    const double kv = 2.0 * c->text.num_hidden_layers * c->text.num_key_value_heads * c->text.head_dim * (double)g.ctx *
                      sizeof(float) * o->parallel;
    const char *base = strrchr(o->model_dir, '/');
    size_t bl = strlen(o->model_dir);
    while (bl > 1 && o->model_dir[bl - 1] == '/') bl--;
    if (o->served_name) snprintf(g.name, sizeof g.name, "%s", o->served_name);
    else {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)bl, o->model_dir);
        base = strrchr(dir, '/');
        snprintf(g.name, sizeof g.name, "%.255s", base ? base + 1 : dir);
    }
    snprintf(g.fingerprint, sizeof g.fingerprint, "glm4v-%s-%s-cpu-%s-%s", GLM4V_VERSION, GLM4V_GIT_COMMIT,
             strcmp(engine_compute(), "bf16") ? "fp32" : "bf16", dtype_name[g.e.w.embed_tokens.dtype]);
    fprintf(stderr, "glm4v serve: %s, %d slots x %d tokens: KV pool %.1f MB (activations and KV %.1f MB), %s, compute %s (%s)\n",
            g.name, o->parallel, g.ctx, kv / 1048576.0, arena / 1048576.0, ops_features(), engine_compute(),
            engine_compute_path());
    if (pthread_create(&g.sched_thread, NULL, scheduler_main, NULL)) {
        glm_err("cannot start the scheduler thread");
        goto fail;
    }
    pthread_mutex_lock(&g.mu);
    g.sched_started = 1;
    g.loaded = 1;
    pthread_mutex_unlock(&g.mu);
    if (o->no_webui) printf("glm4v serve: listening on %s (model %s)\n", url, g.name);
    else printf("glm4v serve: listening on %s (model %s); chat page: %s/\n", url, g.name, url);
    fflush(stdout);
    return NULL;
fail:
    fprintf(stderr, "glm4v: error: %s\n", glm_errmsg);
    pthread_mutex_lock(&g.mu);
    g.load_failed = 1;
    pthread_mutex_unlock(&g.mu);
    kill(getpid(), SIGTERM);
    return NULL;
}

// bind, load in the background, wait for SIGINT / SIGTERM, then stop in order: no new work, requests cancelled,
// scheduler joined, connections closed, memory freed
int server_main(int argc, char **argv) {
    serve_parse_args(&g.o, argc, argv);
    ServeOptions *o = &g.o;
    pthread_mutex_init(&g.mu, NULL);
    pthread_mutex_init(&g.prep_mu, NULL);
    pthread_cond_init(&g.render_cv, NULL);
    pthread_cond_init(&g.sched_cv, NULL);
    // SIGINT / SIGTERM are taken by sigwait below; every thread started from here inherits the mask
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    ops_init();

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    int gai = getaddrinfo(o->host, port, &hints, &ai);
    if (gai) glm_die(EXIT_USAGE, "serve: --host %s: %s", o->host, gai_strerror(gai));
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    g.d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout,
                           MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->parallel + o->queue + 64),
                           MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!g.d) glm_die(EXIT_INPUT, "serve: cannot listen on %s:%d (in use, or not an address of this machine)", o->host, o->port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(g.d, MHD_DAEMON_INFO_BIND_PORT);
    static char url[600];
    snprintf(url, sizeof url, strchr(o->host, ':') ? "http://[%s]:%u" : "http://%s:%u", o->host,
             di ? (unsigned)di->port : (unsigned)o->port);
    if (pthread_create(&g.load_thread, NULL, loader_main, url)) glm_die(EXIT_INPUT, "serve: cannot start a thread");
    if (pthread_create(&wd.thread, NULL, watchdog_main, NULL)) glm_die(EXIT_INPUT, "serve: cannot start a thread");

    int sig = 0;
    sigwait(&sigs, &sig);
    // stop: no new work, running and queued requests cancelled at the next step, connections closed
    pthread_mutex_lock(&g.mu);
    g.stopping = 1;
    pthread_cond_broadcast(&g.sched_cv);
    pthread_mutex_unlock(&g.mu);
    MHD_socket lfd = MHD_quiesce_daemon(g.d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    pthread_join(g.load_thread, NULL);
    if (g.sched_started) pthread_join(g.sched_thread, NULL);
    pthread_mutex_lock(&wd.mu);
    wd.stop = 1;
    pthread_cond_signal(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
    pthread_join(wd.thread, NULL);
    MHD_stop_daemon(g.d);
    const int failed = g.load_failed;
    if (!failed) fprintf(stderr, "glm4v serve: stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    for (int i = 0; g.slots && i < o->parallel; i++) {
        session_free(&g.slots[i]);
        free(g.slot_keys[i]);
    }
    free(g.slots), free(g.slot_req), free(g.slot_keys), free(g.slot_used), free(g.lpbuf);
    fc_free();
    batch_free(&g.batch);
    if (g.e.tok) engine_free(&g.e);
    free(o->api_key);
    return failed ? EXIT_INPUT : 0;
}
