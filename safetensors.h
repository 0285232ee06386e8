// SPDX-License-Identifier: MIT
// safetensors.h - read-only safetensors files over mmap (safetensors.c): every header field validated.
#ifndef GLM4V_SAFETENSORS_H
#define GLM4V_SAFETENSORS_H

#include "base.h"

#define ST_MAX_DIMS 8
typedef struct {
    char *name;                    // tensor name as in the file
    DType dtype;                   // element type
    int ndim;                      // number of dimensions
    int64_t shape[ST_MAX_DIMS];    // [ndim] sizes
    const void *data;              // view into the mapping
    size_t nbytes;                 // bytes of data (= numel x dtype size; DT_GGML: rows x the type's row bytes)
    uint32_t ggml;                 // DT_GGML (GGUF tensors viewed by gguf_model.c): the ggml type id
} STensor;

typedef struct {
    char *path;         // file path (for messages)
    const uint8_t *map; // whole file, mmap'd read-only (or a caller's buffer)
    size_t size;        // bytes
    int mapped;         // 1 when map came from mmap
    int n;              // number of tensors
    STensor *t;         // [n], sorted by name
    char *metadata;     // __metadata__ as JSON text (or NULL)
} SFile;

// parse a safetensors buffer (validates header, dtypes, shapes, offsets); name is used in messages
int sf_parse(SFile *f, const uint8_t *buf, size_t size, const char *name);
// mmap + parse a file
int sf_open(SFile *f, const char *path);
void sf_close(SFile *f);
// a tensor by exact name, or NULL
const STensor *sf_find(const SFile *f, const char *name);

#endif
