// SPDX-License-Identifier: MIT
// base.h - the ground every module stands on: errors, checked allocation, whole-file reads, element types
// (bf16/f16 conversion in one place), the Tensor weight view and the taps that record named activations.
// Depends on nothing of the project (util.c, safetensors.c's dtype table).
#ifndef GLM4V_BASE_H
#define GLM4V_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GLM4V_VERSION "0.2.0"

// ---------------------------------------------------------------------------- errors (util.c)
// library code returns -1 and leaves a one-line message in glm_errmsg; only front ends print it and exit

#define EXIT_INPUT 1 // bad input file / runtime error
#define EXIT_USAGE 2 // bad command line

extern _Thread_local char glm_errmsg[1024]; // one per thread: threads (the server's) never mix their messages
// record "fmt..." as the current error; always returns -1
int glm_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern const char *glm_prog; // the program named in glm_die's line ("glm4v"; glm4v-compare sets its own name)
// front ends only: print "PROG: error: MSG" as the last stderr line, remove pending output files, exit(code)
_Noreturn void glm_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// front ends only: glm_die with glm_errmsg
_Noreturn void glm_die_err(int code);
// front ends only: a usage error of glm4v (cmd NULL) or of its subcommand cmd: exit EXIT_USAGE with the one line
// "[CMD: ]MSG (see [glm4v CMD ]--help)"
_Noreturn void glm_usage_vdie(const char *cmd, const char *fmt, va_list ap);
// front ends only: the integer value s of a flag, in [lo, hi]; else (s NULL, not an integer, out of range) a usage
// error naming the flag
long glm_flag_long(const char *cmd, const char *flag, const char *s, long lo, long hi);
// output files that glm_die removes (temporary names before the final rename)
void glm_atexit_remove(const char *path);
void glm_atexit_forget(const char *path);

void *xmalloc(size_t n);            // malloc, or die(1, "out of memory") (sizes known up front, never per token)
void *xcalloc(size_t n, size_t sz); // calloc, or die
char *xstrdup(const char *s);       // strdup, or die
// overflow-checked size arithmetic: returns -1 (and sets glm_errmsg) on overflow
int size_mul(size_t a, size_t b, size_t *out);
int size_add(size_t a, size_t b, size_t *out);
// read a whole file (NUL-terminated); NULL + glm_errmsg on error; max_bytes limits the size
char *read_file(const char *path, size_t *len, size_t max_bytes);
int file_exists(const char *path); // a regular file is there
// the path of an executable found on $PATH (malloc'd), or NULL (none, or out of memory)
char *find_program(const char *prog);
// 1 when s ends with suffix, ASCII case ignored
int has_suffix_ci(const char *s, const char *suffix);
// strict UTF-8 (Python's and Rust's decoders: no overlong forms, no surrogates, at most U+10FFFF): the offset of the
// first byte of s[0..n) that does not start a valid sequence, or n when it is all valid
size_t utf8_invalid_at(const void *s, size_t n);
int utf8_valid(const void *s, size_t n); // 1 when s[0..n) is all valid UTF-8

// ---------------------------------------------------------------------------- element types (util.c)

// DT_F32 .. DT_F8_E4M3 are safetensors element types; DT_Q8 and DT_Q4 exist only in Tensor views of quantised
// weights (compressed-tensors "pack-quantized": int32 words read as bytes, see Tensor below), DT_GGML only in views of
// GGUF tensors (gguf_model.c)
typedef enum {
    DT_F32, DT_F16, DT_BF16, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL,
    DT_F8_E4M3, // torch.float8_e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, S.1111.111 = NaN
    DT_Q8,      // pack-quantized int8: byte u holds q = u - 128 (4 per little-endian int32 word)
    DT_Q4,      // pack-quantized int4: byte i holds element 2i in its low nibble, 2i+1 in its high one, q = nibble - 8
    DT_GGML,    // a ggml block type of a GGUF file (Tensor.ggml: GQ_Q8_0, GQ_Q4_K, ...; ggml_quants.h), rows ld bytes apart
    DT_COUNT
} DType;
#define DT_FILE_COUNT DT_Q8            // dtypes a safetensors file may name (dtype_from_name never returns Q8/Q4)
extern const char *dtype_name[DT_COUNT]; // safetensors names: "F32", "BF16", "F8_E4M3", ... ("Q8", "Q4": ours)
extern const int dtype_size[DT_COUNT];   // bytes per element (DT_Q4: 2 elements a byte; quantised rows are Tensor.ld bytes)
int dtype_from_name(const char *s);      // -1 when unknown

// torch.bfloat16 -> float32: the high half of the fp32 bits
static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
// float32 -> torch.bfloat16 as c10::BFloat16 rounds: round to nearest even, NaN -> 0x7fc0 (denormals kept)
static inline uint16_t f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    // rounding_bias = ((U32 >> 16) & 1) + UINT32_C(0x7FFF); return static_cast<uint16_t>((U32 + rounding_bias) >> 16)
    return (uint16_t)((v.u + ((v.u >> 16) & 1) + 0x7fffu) >> 16);
}
// IEEE half -> float32 (exact)
float f16_to_f32(uint16_t h);

// ---------------------------------------------------------------------------- weight views

// activation quantisation a quantised Linear applies to its input rows before the product (the scheme's
// input_activations; quant.c): each row (token) is replaced by its fake-quantised value dequant(quant(x))
typedef enum {
    ACT_NONE = 0,     // fp32 activations (weight-only schemes, or --act-quant off)
    ACT_FP8_TOKEN,    // dynamic per token, FP8 E4M3: scale = absmax / 448 (compressed-tensors float 8-bit, "token")
    ACT_INT8_TOKEN,   // dynamic per token, int8: scale = absmax / 127.5, round half to even, clamp [-128, 127]
    ACT_FP8_GROUP,    // dynamic per token and group of `group` columns (the weight's block width), FP8: vLLM/SGLang
                      // per_token_group_quant_fp8 (block-FP8 serving)
} ActQuant;

// a weight: dtype-tagged view into the mapped checkpoint (never a copy).
// Quantised weights (dtype F8_E4M3, I8, Q8, Q4): element (r, c) is, in fp32,
//   w[r][c] = (float(q[r][c]) - float(zero(r, g))) * float(scale[(r / block_rows) * scale_cols + g]),  g = c / group
// (zero = 0 when zero is NULL); float(q) * float(scale) is exact in fp32 for bf16/f16 scales (<= 12 significant
// bits) and rounded once for fp32 scales: compressed-tensors' dequantize with the scale in fp32 (transformers 5.25
// decompresses in the scale's dtype and so rounds the product to bf16: an artifact not copied).
// Per tensor: block_rows = rows, group = cols; per output channel: block_rows = 1, group = cols; groups of g
// columns: block_rows = 1, group = g; blocks of bh x bw (block FP8): block_rows = bh, group = bw.
typedef struct {
    const void *data;   // row-major elements: bf16/f16/f32; quantised: row r starts at (const uint8_t *)data + r * ld
    DType dtype;        // BF16, F16 or F32; quantised: F8_E4M3, I8, Q8 or Q4
    int64_t rows, cols; // 2-D view ([out, in] for Linear); 1-D tensors have rows = 1
    // quantisation (all zero for bf16/f16/f32 weights)
    int64_t ld;         // bytes from one row of data to the next (packed rows start on int32 words)
    const void *scale;  // [ceil(rows / block_rows), scale_cols] of scale_dtype (weight_scale / weight_scale_inv)
    DType scale_dtype;  // BF16, F16 or F32
    int64_t scale_cols; // ceil(cols / group): scales per row of the scale table
    int64_t group;      // columns sharing one scale (cols for per-tensor / per-channel)
    int64_t block_rows; // rows sharing one scale row (rows for per-tensor, 1 per channel / group, bh for blocks)
    const int32_t *zero; // NULL or packed zero points (Q8 / Q4 asymmetric), packed along the output dimension:
                         // int32 [ceil(rows * bits / 32), scale_cols]; zero(r, g) = field r of column g minus 2^(bits-1)
    ActQuant act;       // what the Linear does to its input rows first (ACT_NONE: nothing)
    uint32_t ggml;      // DT_GGML: the ggml type id (enum in ggml_quants.h); rows of cols elements, ld bytes each
} Tensor;

// a quantised weight (dtype F8_E4M3, I8, Q8 or Q4 with a scale table, or a ggml block type: quant.c's Linear)
static inline int is_quantised(const Tensor *W) { return W->scale != NULL || W->dtype == DT_GGML; }

// ---------------------------------------------------------------------------- taps (util.c)
// named activations recorded for --dump, tests and compare (a no-op when no sink): the forward passes call
// tap("hidden_states.3", ...) at the points HF exposes

typedef void (*TapFn)(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data);
typedef struct {
    TapFn fn;  // called with each recorded tensor
    void *ctx; // the caller's state (a Dump, a test's store)
} TapSink;
void tap(const TapSink *s, const char *name, DType dt, int ndim, const int64_t *shape, const void *data);

#endif
