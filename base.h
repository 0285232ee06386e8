// SPDX-License-Identifier: MIT
// base.h - the ground every module stands on: errors, checked allocation, whole-file reads, element types
// (bf16/f16 conversion in one place), the Tensor weight view and the taps that record named activations.
// Depends on nothing of the project (util.c, safetensors.c's dtype table).
#ifndef GLM4V_BASE_H
#define GLM4V_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GLM4V_VERSION "0.2.0"

// ---------------------------------------------------------------------------- errors (util.c)
// library code returns -1 and leaves a one-line message in glm_errmsg; only front ends print it and exit

#define EXIT_INPUT 1 // bad input file / runtime error
#define EXIT_USAGE 2 // bad command line

extern char glm_errmsg[1024];
// record "fmt..." as the current error; always returns -1
int glm_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// front ends only: print "glm4v: error: MSG" as the last stderr line, remove pending output files, exit(code)
_Noreturn void glm_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// front ends only: glm_die with glm_errmsg
_Noreturn void glm_die_err(int code);
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

// ---------------------------------------------------------------------------- element types (safetensors.c)

typedef enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL, DT_COUNT } DType;
extern const char *dtype_name[DT_COUNT]; // safetensors names: "F32", "BF16", ...
extern const int dtype_size[DT_COUNT];   // bytes per element
int dtype_from_name(const char *s);      // -1 when unknown

// torch.bfloat16 -> float32: the high half of the fp32 bits
static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
// IEEE half -> float32 (exact)
float f16_to_f32(uint16_t h);

// ---------------------------------------------------------------------------- weight views

// a weight: dtype-tagged view into the mapped checkpoint (never a copy)
typedef struct {
    const void *data;   // bf16/f16/f32 elements, row-major
    DType dtype;        // BF16, F16 or F32
    int64_t rows, cols; // 2-D view ([out, in] for Linear); 1-D tensors have rows = 1
} Tensor;

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
