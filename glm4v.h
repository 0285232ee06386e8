// glm4v.h - the one shared header of glm4v.c: configs, weights, kernels, tokenizer, vision, model.
// Mirrors HuggingFace transformers' Glm4vForConditionalGeneration / Glm4vMoeForConditionalGeneration.
#ifndef GLM4V_H
#define GLM4V_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>

#define GLM4V_VERSION "0.1.0"

// ----------------------------------------------------------------------------
// errors: parsers return -1 and leave a one-line message in glm_errmsg; the CLI prints it and exits.

#define EXIT_INPUT 1  // bad input file / runtime error
#define EXIT_USAGE 2  // bad command line

extern char glm_errmsg[1024];
// record "fmt..." as the current error; always returns -1
int glm_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// print "glm4v: error: MSG" as the last stderr line, remove pending output files, exit(code)
_Noreturn void glm_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// die with glm_errmsg
_Noreturn void glm_die_err(int code);
// output files that are removed by glm_die (temporary names before the final rename)
void glm_atexit_remove(const char *path);
void glm_atexit_forget(const char *path);

void *xmalloc(size_t n);            // malloc or die(1, "out of memory")
void *xcalloc(size_t n, size_t sz); // calloc or die
char *xstrdup(const char *s);
// overflow-checked size arithmetic: returns -1 (and sets glm_errmsg) on overflow
int size_mul(size_t a, size_t b, size_t *out);
int size_add(size_t a, size_t b, size_t *out);
// read a whole file (NUL-terminated); NULL + glm_errmsg on error; max_bytes limits the size
char *read_file(const char *path, size_t *len, size_t max_bytes);
int file_exists(const char *path);

// ----------------------------------------------------------------------------
// dtypes and safetensors (safetensors.c)

typedef enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL, DT_COUNT } DType;
extern const char *dtype_name[DT_COUNT];
extern const int dtype_size[DT_COUNT];
int dtype_from_name(const char *s); // -1 when unknown

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
float f16_to_f32(uint16_t h);

#define ST_MAX_DIMS 8
typedef struct {
    char *name;                    // tensor name as in the file
    DType dtype;                   // element type
    int ndim;                      // number of dimensions
    int64_t shape[ST_MAX_DIMS];    // [ndim] sizes
    const void *data;              // view into the mapping
    size_t nbytes;                 // bytes of data (= numel x dtype size)
} STensor;

typedef struct {
    char *path;       // file path (for messages)
    const uint8_t *map; // whole file, mmap'd read-only (or a caller's buffer)
    size_t size;      // bytes
    int mapped;       // 1 when map came from mmap
    int n;            // number of tensors
    STensor *t;       // [n], sorted by name
    char *metadata;   // __metadata__ as JSON text (or NULL)
} SFile;

// parse a safetensors buffer (validates header, dtypes, shapes, offsets); name is used in messages
int sf_parse(SFile *f, const uint8_t *buf, size_t size, const char *name);
// mmap + parse a file
int sf_open(SFile *f, const char *path);
void sf_close(SFile *f);
const STensor *sf_find(const SFile *f, const char *name);

// dump writer (dump.c): collects named tensors and writes one safetensors file atomically (temp name + rename);
// __metadata__ gets "crc32.<name>" (zlib CRC-32 of the tensor bytes, 8 hex digits) for every tensor + caller keys
typedef struct {
    char *name;                  // tensor name (owned)
    DType dtype;                 // element type
    int ndim;                    // number of dimensions
    int64_t shape[ST_MAX_DIMS];  // [ndim] sizes
    void *data;                  // owned copy
    size_t nbytes;               // bytes of data
} DumpTensor;
typedef struct {
    DumpTensor *t;               // [n] in insertion order (written sorted by name, as safetensors requires none)
    int n, cap;                  // tensors used / allocated
    char **mkeys, **mvals;       // metadata key/value strings [nmeta]
    int nmeta, capmeta;          // metadata entries used / allocated
} Dump;
void dump_init(Dump *d);
void dump_free(Dump *d);
// copy a tensor into the dump (replaces one of the same name)
void dump_add(Dump *d, const char *name, DType dt, int ndim, const int64_t *shape, const void *data);
void dump_meta(Dump *d, const char *key, const char *value);
// write to path (via path.tmp + rename); -1 + glm_errmsg on error, nothing left behind
int dump_write(const Dump *d, const char *path);
uint32_t crc32_bytes(const void *p, size_t n);

// ----------------------------------------------------------------------------
// checkpoint: a HF model folder (config.json, shards, processor configs) (model_load.c)

typedef struct {
    int vocab_size;            // V: rows of embed_tokens and lm_head
    int hidden_size;           // H
    int intermediate_size;     // dense MLP width (layers < first_k_dense_replace; every layer in the dense model)
    int num_hidden_layers;     // decoder layers
    int num_attention_heads;   // Hq
    int num_key_value_heads;   // Hkv
    int head_dim;              // MoE: config head_dim (or H/Hq); dense: always H/Hq
    int rotary_dim;            // int(head_dim * partial_rotary_factor)
    float rope_theta;          // RoPE base
    int mrope_section[8];      // frequency chunks; chunk i uses axis i % 3
    int n_mrope_section;       // chunks in mrope_section
    float rms_norm_eps;        // RMSNorm epsilon
    int attention_bias;        // q/k/v bias
    int max_position_embeddings;
    // MoE (is_moe)
    int moe_intermediate_size; // width of one routed expert
    int n_routed_experts;      // E
    int num_experts_per_tok;   // top-k
    int n_shared_experts;      // shared experts (their MLP is Im x n wide)
    int n_group, topk_group;   // group-limited routing
    int first_k_dense_replace; // layers [0, k) use the dense MLP
    int norm_topk_prob;        // renormalise the top-k weights to sum 1
    float routed_scaling_factor;
} TextConfig;

typedef struct {
    int depth;                 // number of blocks
    int hidden_size;           // Hv
    int num_heads;             // attention heads
    int head_dim;              // Hv / num_heads
    int intermediate_size;     // merger SwiGLU width
    int mlp_size;              // ViT block MLP width (= out_hidden_size, as HF Glm4VisionMlp)
    int out_hidden_size;       // = text hidden
    int patch_size;            // 14
    int temporal_patch_size;   // 2
    int spatial_merge_size;    // 2
    int in_channels;           // 3
    int image_size;            // 336
    int pos_side;              // sqrt(rows of the position table)
    float rms_norm_eps;        // RMSNorm epsilon
    int attention_bias;        // qkv bias
} VisionConfig;

typedef struct {
    int min_pixels, max_pixels;   // image smart_resize budget (size.shortest_edge / longest_edge)
    int vmin_pixels, vmax_pixels; // video budget
    float image_mean[3], image_std[3];
    double rescale_factor;
    int patch_size, temporal_patch_size, merge_size;
    float video_fps;              // frames sampled per second
    int video_max_duration;       // seconds
    int glm46v;                   // 1 when Glm46VProcessor (timestamps "{t:.1f} seconds", dynamic fps)
} ProcConfig;

typedef struct {
    int is_moe;                  // Glm4vMoeForConditionalGeneration
    TextConfig text;             // text_config
    VisionConfig vision;         // vision_config
    int has_vision;              // vision weights present
    int image_token_id, video_token_id;
    int image_start_token_id, image_end_token_id;
    int video_start_token_id, video_end_token_id;
    int eos_ids[16], n_eos;      // stop tokens (config + generation_config)
    // generation_config.json defaults
    int do_sample;
    float temperature, top_p, repetition_penalty;
    int top_k;
    ProcConfig proc;             // image / video processor settings
    int chat_template;           // CHAT_TEMPLATE_*: which conversation format the checkpoint's template uses
    uint32_t config_crc;         // CRC-32 of config.json bytes (provenance)
} Config;

// the checkpoint's chat template (chat_template.jinja, chat_template.json or tokenizer_config.json's chat_template)
enum {
    CHAT_TEMPLATE_NONE = 0,  // no template in the folder: the GLM-4.5V format is used
    CHAT_TEMPLATE_GLM45 = 1, // the GLM-4.5V / 4.6V family (it knows /nothink): reproduced by chat_render
    CHAT_TEMPLATE_OTHER = 2, // another layout (GLM-4.1V-9B-Thinking's): not reproduced, only --raw is available
};

// a weight view: dtype-tagged pointer into the mapping
typedef struct {
    const void *data;   // bf16/f16/f32 elements, row-major
    DType dtype;        // BF16, F16 or F32
    int64_t rows, cols; // 2-D view ([out, in] for Linear); 1-D tensors have rows = 1
} Tensor;

typedef struct {
    char dir[4096];     // model folder
    int nfiles;         // shards
    SFile *files;       // [nfiles] shards
    Config cfg;         // parsed config.json and friends
} Checkpoint;

// read config.json (+ generation_config.json, processor configs) from a folder or a JSON text
int config_parse(Config *c, const char *json, size_t len, const char *name);
int proc_config_parse(ProcConfig *p, const char *json, size_t len, const char *name, int video_only);
void proc_config_defaults(ProcConfig *p);
// generation_config.json over a parsed config (do_sample, temperature, top_k, top_p, repetition_penalty, eos ids)
int generation_config_parse(Config *c, const char *json, size_t len, const char *name);
// model.safetensors.index.json: the unique shard file names of weight_map (malloc'd strings in a malloc'd array,
// first-seen order); names with '/' or "..", none, or too many are errors (nothing allocated then)
int checkpoint_index_parse(const char *json, size_t len, const char *name, char ***shards, int *nshards);
// open a model folder: config + every shard mmap'd (does not bind weights)
int checkpoint_open(Checkpoint *ck, const char *dir);
void checkpoint_close(Checkpoint *ck);
// find a tensor by name across shards, trying the released aliases (model.layers.* / visual.*)
const STensor *checkpoint_find(const Checkpoint *ck, const char *name);
// bind name -> Tensor checking dtype (float types) and shape; shape dims terminated by -1; fails with the name
int checkpoint_tensor(const Checkpoint *ck, Tensor *out, const char *name, int ndim, const int64_t *shape);

// ----------------------------------------------------------------------------
// kernels (ops.c). fp32 activations; weights bf16/f16/f32. Every fast kernel has a naive twin.

typedef struct {
    int avx2, avx512f, avx512bw, avx512bf16, f16c, fma; // runtime CPU features actually used
} CpuFeatures;
extern CpuFeatures cpu;
void ops_init(void);            // detect features (GLM4V_PORTABLE=1: scalar kernels; GLM4V_ISA=avx2: no AVX-512)
const char *ops_features(void); // "avx512f,avx512bf16,..." for provenance

// y[n, out] = x[n, in] . W[out, in]^T (+ b[out]);  parallel over output tiles, the same bits for any thread count and
// instruction set; each row's bits as if it were alone (batch-invariant: any n, row position, chunk, threads)
void linear(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
void linear_naive(float *y, const float *x, const Tensor *W, const Tensor *b, int n);
// one Linear of a batch: y[n, W->rows] (row stride ldy) = x[n, W->cols] (row stride ldx) . W^T (+ b)
typedef struct {
    float *y;          // [n, ldy]
    int64_t ldy;       // row stride of y (floats)
    const float *x;    // [n, ldx]
    int64_t ldx;       // row stride of x (floats)
    const Tensor *W;   // [out, in]
    const Tensor *b;   // [out] or NULL
    int n;             // rows
} LinearJob;
#define LINEAR_MAX_JOBS 512
// several Linears in one parallel region (e.g. q/k/v, gate/up, the experts of a token): one OpenMP fork per batch
void linear_batch(const LinearJob *jobs, int njobs);
// C[M, N] (+)= A . B with A(i, k) = A[i * ars + k * acs] broadcast and B [K, N] (ldb) rows as vectors: one fma chain
// per output over k (accumulate: starting from C); bits independent of the instruction set. _naive: double sums
void gemm_bcast(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb, int M,
                int N, int K, int accumulate);
void gemm_bcast_naive(float *C, int64_t ldc, const float *A, int64_t ars, int64_t acs, const float *B, int64_t ldb,
                      int M, int N, int K, int accumulate);
// expf within about 1 ulp, the same bits on every instruction set (softmax, SiLU)
float exp_fast(float x);
// row r of W as fp32
void tensor_row_f32(float *dst, const Tensor *W, int64_t r);
// element i (flat) as fp32
float tensor_get(const Tensor *W, int64_t i);
// w[n] as fp32 (norm weights, biases)
void tensor_to_f32(float *dst, const Tensor *W, int64_t n);

// out[n, d] = rmsnorm(x) * w  (HF Glm4vRMSNorm / Glm4vMoeRMSNorm)
void rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps);
// out[n, d] = layernorm(x) * w + b (biased variance)
void layernorm(float *out, const float *x, const float *w, const float *b, int n, int d, float eps);
void softmax_inplace(float *x, int n);
static inline float silu_f(float x) { return x / (1.0f + expf(-x)); }
float gelu_erf(float x);
// deterministic dot product in a fixed lane order
float dot_f32(const float *a, const float *b, int n);
// y = silu(g) * u elementwise (exp_fast; y may alias g or u); _naive: libm expf
void swiglu(float *y, const float *g, const float *u, int n);
void swiglu_naive(float *y, const float *g, const float *u, int n);
// eager attention for one head (softmax fp32): q [nq, ldq], k/v [nk, ldk/ldv], out [nq, ldo];
// q_offset >= 0: causal (query i sees keys j <= q_offset + i); < 0: bidirectional.
// scores: attention_scratch_floats(nk) floats of per-thread scratch
void attention_head(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                    int nq, int nk, int hd, float scale, int q_offset, float *scores);
void attention_head_naive(float *out, int ldo, const float *q, int ldq, const float *k, int ldk, const float *v,
                          int ldv, int nq, int nk, int hd, float scale, int q_offset);
size_t attention_scratch_floats(int nk);
// allocate every OpenMP thread's kernel tile buffer for weights with up to max_cols columns
void ops_reserve(size_t max_cols);
// the same, plus the permuted activations of Linears over up to `rows` rows (prefill chunks, vision batches)
void ops_reserve_rows(size_t rows, size_t max_cols);

// ----------------------------------------------------------------------------
// tokenizer (tokenizer.c): HF tokenizers byte-level BPE from tokenizer.json

typedef struct Tokenizer Tokenizer;
// load from a file path or a JSON text; NULL + glm_errmsg on error
Tokenizer *tokenizer_load(const char *path);
Tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name);
void tokenizer_free(Tokenizer *t);
int tokenizer_vocab_size(const Tokenizer *t);          // highest id + 1
int tokenizer_token_id(const Tokenizer *t, const char *s); // exact token (added or vocab) id, or -1
const char *tokenizer_token_str(const Tokenizer *t, int id); // raw token text (byte-level form for BPE ids), or NULL
// encode UTF-8 text (added/special tokens recognised): ids malloc'd into *ids; returns count or -1
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids);
// decode ids to UTF-8 (malloc'd, NUL-terminated); skip_special drops special added tokens
char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special);
// streaming decoder: feed one id, get the text that became complete (incomplete UTF-8 held back)
typedef struct {
    const Tokenizer *tok;
    int skip_special;
    char pending[64];   // bytes of an incomplete UTF-8 sequence (at most 3)
    int npending;
    int ntok;           // tokens emitted so far (a tokenizer without decoder joins tokens with " ")
} StreamDecoder;
void stream_init(StreamDecoder *s, const Tokenizer *t, int skip_special);
// writes the newly completed text to out (cap bytes, NUL-terminated); returns bytes written, or -1 (glm_errmsg,
// nothing consumed) when cap is too small: 3 * (token bytes + 3) + 1 always suffices; 4096 for GLM vocabularies
int stream_feed(StreamDecoder *s, int id, char *out, int cap);
// held-back bytes of an unfinished character become U+FFFD (as a full decode would); same return convention
int stream_flush(StreamDecoder *s, char *out, int cap);

// chat template (GLM-4.5V / GLM-4.6V family, SPEC 9.3)
typedef enum { MEDIA_IMAGE = 1, MEDIA_VIDEO = 2 } MediaKind;
typedef struct {
    const char *system;    // NULL when absent
    const char *user;      // user text
    const MediaKind *media; // media items in order, placed before the user text
    int nmedia;
    int think;             // 1 = thinking on (default), 0 = --no-think
} ChatPrompt;
// render the prompt text (special tokens as text) with the generation prompt; malloc'd
char *chat_render(const ChatPrompt *p);
// a conversation turn for chat_render_msgs
enum { CHAT_SYSTEM = 0, CHAT_USER = 1, CHAT_ASSISTANT = 2, CHAT_OBSERVATION = 3 /* tool result */ };
typedef struct {
    int role;               // CHAT_*
    const char *content;    // text (NULL = empty)
    const MediaKind *media; // media items in order, placed before the text
    int nmedia;
} ChatMsg;
// render a conversation (SPEC 9.3 template rules: earlier assistant turns as <|assistant|>\n<think></think>\n +
// content.strip()); add_generation_prompt appends <|assistant|> (+ \n<think></think> when think == 0); malloc'd
char *chat_render_msgs(const ChatMsg *msgs, int n, int think, int add_generation_prompt);

// ----------------------------------------------------------------------------
// vision input and preprocessing (preprocess.c): HF Glm4vImageProcessor / Glm4vVideoProcessor (5.x)

typedef struct {
    int w, h;           // pixels
    uint8_t *rgb;       // [h, w, 3]
} Image;

// decode a file into RGB (transformers load_image: EXIF orientation, then PIL convert("RGB"): alpha dropped, gray
// replicated); PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PNM; refuses > max_pixels (0: no limit) from the header
int image_load(Image *img, const char *path, int64_t max_pixels);
int image_load_mem(Image *img, const uint8_t *buf, size_t len, const char *name, int64_t max_pixels);
void image_free(Image *img);
void images_free(Image *frames, int n); // image_free of each, then free(frames)

// RESIZE_TORCH: Glm4vImageProcessor (torchvision, default); RESIZE_PIL: Glm4vImageProcessorPil with Pillow <= 12;
// RESIZE_PIL13: the same with Pillow >= 13 (vertical pass first when the height shrinks much more than the width)
typedef enum { RESIZE_TORCH = 0, RESIZE_PIL = 1, RESIZE_PIL13 = 2 } ResizeMode;

// Glm4vImageProcessor.smart_resize: out h, w (multiples of factor); -1 on error (aspect > 200, ...)
int smart_resize(int num_frames, int height, int width, int temporal_factor, int factor,
                 int64_t min_pixels, int64_t max_pixels, int *out_h, int *out_w);
// antialiased bicubic resize of uint8 RGB (RESIZE_TORCH: PyTorch's uint8 AVX2 kernel; RESIZE_PIL*: Pillow)
int image_resize(Image *dst, const Image *src, int out_w, int out_h, ResizeMode mode);

// preprocessed visual input: pixel rows in the 2x2 block-major patch order
typedef struct {
    float *pixel_values;  // [P, C*T*ps*ps]
    int64_t npatches;     // P
    int ncols;            // C*T*ps*ps (1176)
    int grid[64][3];      // (t, h, w) per item, in patches
    int nitems;           // items (images, or videos) in the batch
} PixelBatch;

// frames [nframes] of identical size -> one item appended to pb (zero-initialise pb before the first call):
// smart_resize (images: num_frames = temporal_patch_size and the image budget; videos: nframes and the video budget),
// resize, rescale + normalize, T padded to temporal_patch_size by repeating the last frame, patchify;
// grid (T/2, h/14, w/14). Call once per image; a video is one item (is_video = 1).
int preprocess_frames(PixelBatch *pb, const Image *frames, int nframes, const ProcConfig *pc, ResizeMode mode,
                      int is_video);
void pixel_batch_free(PixelBatch *pb);

// video frames from a directory: every image file (by extension, hidden files skipped) in strcmp order, one size
int video_load_dir(Image **frames, int *nframes, const char *dir, int64_t max_pixels);
// Glm4vVideoProcessor.sample_frames (Glm46VVideoProcessor's when pc->glm46v): sampled frame indices (malloc'd into
// *idx, even count); duration <= 0: unknown. Returns the count or -1
int video_sample_frames(int **idx, int total_frames, double video_fps, double duration, const ProcConfig *pc);
// decode a video file with the ffmpeg program: frames sampled as video_sample_frames, frame_times [nframes] =
// frame_index / fps in seconds (malloc'd)
int video_load_file(Image **frames, int *nframes, double **frame_times, const char *path, const ProcConfig *pc,
                    int64_t max_pixels);
// per temporal patch timestamp text (frame_times[::2], padded with the last): "0", "1", ... (int seconds);
// GLM-4.6V: "0.0 seconds", ... ; *texts malloc'd [n_patches]
int video_timestamps(char ***texts, int n_patches, const double *frame_times, int nframes, const ProcConfig *pc);
void video_timestamps_free(char **texts, int n);

// ----------------------------------------------------------------------------
// grounding (boxes.c): GLM-4.5V answers boxes as <|begin_of_box|>[[x1,y1,x2,y2],...]<|end_of_box|> (points [[x,y]])
// in 0-1000 coordinates of the image

typedef struct {
    float x1, y1, x2, y2; // 0-1000 coordinates as written (a point has x2 = x1, y2 = y1)
    int is_point;         // 1 when written as [x, y]
} Box;

// boxes in a generated text (malloc'd into *out, NULL when none); returns the count. Only spans
// <|begin_of_box|>...<|end_of_box|> count when the answer has any, else bare [[...]] lists of 2 or 4 numbers;
// <think>...</think> text is skipped. Never fails: malformed or truncated lists are ignored
int boxes_parse(const char *text, Box **out);
// pixel coordinates in the original img_w x img_h image: round(x * img_w / 1000) clamped to [0, img_w - 1]
// (y likewise), ordered so x1 <= x2, y1 <= y2
void box_to_pixels(const Box *b, int img_w, int img_h, int *px1, int *py1, int *px2, int *py2);
// outline colour of box i in boxes_draw_png (a cycle of distinct bright colours)
void box_color(int i, uint8_t rgb[3]);
// draw the boxes (2-3 px outlines, points as filled dots) on a copy of img, write it as PNG to out_png
// (via out_png.tmp.<pid> + rename); -1 + glm_errmsg naming out_png on error, nothing left behind
int boxes_draw_png(const char *out_png, const Image *img, const Box *boxes, int n);

// ----------------------------------------------------------------------------
// prompt assembly (prompt.c): Glm4vProcessor placeholder expansion + Glm4vModel.get_rope_index

typedef struct {
    int *ids;   // [n] token ids after placeholder expansion
    int *type;  // [n] mm_token_type_ids: 0 text, 1 image token, 2 image token inside a video
    int n, cap; // tokens used / allocated
} Seq;

// the visual inputs a prompt refers to, in prompt order
typedef struct {
    int nimages;                    // images, in prompt order
    const int (*img_grid)[3];       // [nimages] (t, h, w) in patches
    int nvideos;                    // videos, in prompt order
    const int (*vid_grid)[3];       // [nvideos] (t' = frames / 2, h, w)
    const int *const *const *stamp_ids; // [nvideos][t'] token ids of each temporal patch's timestamp text
    const int *const *stamp_len;    // [nvideos][t'] their counts
} PromptMedia;

// expand <|image|> / <|video|> placeholders of ids [n] into out (zeroed by the call); -1 + glm_errmsg on a count
// mismatch
int prompt_expand(Seq *out, const int *ids, int n, const Config *c, const PromptMedia *pm);
// 3-D positions pos [3][s->n] (rows t, h, w) and rope_delta = max(pos) + 1 - n; -1 + glm_errmsg on a grid mismatch
int prompt_positions(int64_t *pos, int64_t *rope_delta, const Seq *s, const Config *c, const PromptMedia *pm);
void seq_free(Seq *s);

// ----------------------------------------------------------------------------
// model (glm4v.c, vision.c, moe.c)

typedef struct {
    Tensor input_layernorm;          // [H]
    Tensor post_self_attn_layernorm; // [H] (dense model only)
    Tensor post_attention_layernorm; // [H]
    Tensor post_mlp_layernorm;       // [H] (dense model only)
    Tensor q_proj, q_bias;           // [Hq*hd, H], [Hq*hd]
    Tensor k_proj, k_bias;           // [Hkv*hd, H], [Hkv*hd]
    Tensor v_proj, v_bias;           // [Hkv*hd, H], [Hkv*hd]
    Tensor o_proj;                   // [H, Hq*hd]
    // dense MLP (MoE model: layers < first_k_dense_replace; dense model: gate_up fused)
    Tensor gate_proj, up_proj;       // [I, H]
    Tensor gate_up_proj;             // [2I, H] (dense model)
    Tensor down_proj;                // [H, I]
    int is_moe_layer;                // 1 for a Glm4vMoeTextMoE layer, 0 for a dense MLP
    // MoE (moe.c)
    Tensor router;                   // mlp.gate.weight [E, H]
    Tensor router_bias;              // mlp.gate.e_score_correction_bias [E]
    Tensor *exp_gate, *exp_up;       // [E] of [Im, H]
    Tensor *exp_down;                // [E] of [H, Im]
    Tensor sh_gate, sh_up;           // shared experts [Im*ns, H]
    Tensor sh_down;                  // [H, Im*ns]
} TextLayer;

typedef struct {
    Tensor norm1, norm2;             // [Hv]
    Tensor qkv, qkv_bias;            // [3Hv, Hv], [3Hv] (bias optional)
    Tensor proj;                     // [Hv, Hv]
    Tensor gate_proj, up_proj;       // [Iv, Hv]
    Tensor down_proj;                // [Hv, Iv]
} VisionBlock;

typedef struct {
    Tensor patch_w;                  // patch_embed.proj.weight viewed [Hv, C*T*P*P]
    Tensor patch_b;                  // [Hv]
    Tensor post_conv_layernorm;      // [Hv]
    Tensor pos_embed;                // embeddings.position_embedding.weight [side*side, Hv]
    VisionBlock *blocks;             // [depth]
    Tensor post_layernorm;           // [Hv]
    Tensor downsample_w;             // [out, Hv*m*m] (viewed from [out, Hv, m, m])
    Tensor downsample_b;             // [out]
    Tensor merger_proj;              // [out, out]
    Tensor merger_norm_w, merger_norm_b; // [out]
    Tensor merger_gate, merger_up;   // [I, out]
    Tensor merger_down;              // [out, I]
} VisionWeights;

typedef struct {
    Tensor embed_tokens;             // [V, H]
    TextLayer *layers;               // [num_hidden_layers]
    int n_layers;                    // allocated entries of layers
    Tensor norm;                     // [H]
    Tensor lm_head;                  // [V, H]
    VisionWeights vis;               // the vision tower
} Weights;

// bind and check every tensor against the config (names reported on error)
int weights_bind(Weights *w, const Checkpoint *ck);
void weights_free(Weights *w);

// taps: named activations recorded for --dump and tests (no-op when no sink)
typedef void (*TapFn)(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data);
typedef struct {
    TapFn fn;
    void *ctx;
} TapSink;
void tap(const TapSink *s, const char *name, DType dt, int ndim, const int64_t *shape, const void *data);

// vision tower (vision.c): pixel rows -> merged embeddings out [npatches/m^2, out_hidden] (HF model.visual
// pooler_output). Items with t > 1 (videos) are split into t items of (1, h, w) as HF get_video_features does.
// scratch: vision_scratch_floats floats, sized for omp_get_max_threads() (call both with the same thread count);
// 0 (+ glm_errmsg) for an inconsistent batch or a size overflow. vision_forward: 0, or -1 + glm_errmsg.
size_t vision_scratch_floats(const Config *c, const PixelBatch *pb);
int vision_forward(const Weights *w, const Config *c, const PixelBatch *pb, float *out, float *scratch,
                   const TapSink *taps);
// Glm4vVisionEmbeddings' bicubic grid_sample of the position table for one h x w item, bit-identical to PyTorch
// CPU: table [side*side, C] fp32, out [h*w, C] in the block-major token order (m = merge size); _naive: reference
void vision_pos_embed(float *out, const float *table, int side, int C, int h, int w, int m);
void vision_pos_embed_naive(float *out, const float *table, int side, int C, int h, int w, int m);

// text decoder runtime (model.c): KV cache + one arena of activations for chunks of up to `chunk` tokens
typedef struct {
    const Config *cfg;   // the model's config
    const Weights *w;    // the mapped weights
    int max_ctx;         // KV cache capacity in tokens (prompt + requested tokens)
    int chunk;           // most tokens per model_forward call
    int n_past;          // tokens already in the KV cache
    float *k_cache;      // [layers, Hkv, max_ctx, hd] (post-RoPE keys)
    float *v_cache;      // [layers, Hkv, max_ctx, hd]
    float *x;            // [chunk, H] residual stream
    float *xn;           // [chunk, H] normed input of a sub-block
    float *q;            // [chunk, Hq*hd]
    float *k, *v;        // [chunk, Hkv*hd]
    float *att;          // [chunk, Hq*hd] attention output before o_proj
    float *o;            // [chunk, H] sub-block output
    float *mlp_g, *mlp_u; // [chunk, max(I, 2I fused)]
    float *moe_scratch;  // moe_scratch_floats(chunk)
    float *att_scratch;  // [threads, attention_scratch_floats(max_ctx)]
    int att_threads;     // threads att_scratch was sized for
    float *cos, *sin;    // [chunk, rotary_dim/2]
    float *inv_freq;     // [rotary_dim/2]
    float *norm_w;       // [H] scratch for a widened norm weight
    float *bias;         // [max(Hq*hd, ...)] scratch
    float *arena;        // everything above lives here
    size_t arena_floats; // floats in the arena
} Model;

// size and allocate the arena; -1 + glm_errmsg when it does not fit in memory
int model_init(Model *m, const Config *c, const Weights *w, int max_ctx, int chunk);
void model_free(Model *m);
// Glm4v(Moe)TextModel.forward over n <= chunk tokens appended to the KV cache:
// embeds [n, H] (already with the image features scattered), pos [3][n] rows t, h, w (stride pos_stride);
// logits [n, V] when all_logits, else [1, V] for the last token; taps get hidden_states.i etc. for these rows
void model_forward(Model *m, const float *embeds, const int64_t *pos, int pos_stride, int n, float *logits,
                   int all_logits, const TapSink *taps);
// embedding rows for token ids (nn.Embedding)
void embed_tokens(const Weights *w, const Config *c, const int *ids, int n, float *out);

// MoE block (moe.c): x [n, H] -> y [n, H]; router outputs optionally recorded via taps
size_t moe_scratch_floats(const Config *c, int n);
void moe_forward(const TextLayer *L, const Config *c, const float *x, float *y, int n, float *scratch,
                 const TapSink *taps, int layer);
// HF Glm4vMoeTopkRouter + route_tokens_to_experts for one token: scores [E] fp32 -> idx/weights [k]
void moe_router(const TextLayer *L, const Config *c, const float *logits, int *idx, float *wts);

#endif
