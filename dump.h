// SPDX-License-Identifier: MIT
// dump.h - the --dump writer (dump.c): collects named tensors and writes one safetensors file atomically (temp name
// + rename); __metadata__ gets "crc32.<name>" (zlib CRC-32 of the tensor bytes, 8 hex digits) for every tensor + the
// caller's keys.
#ifndef GLM4V_DUMP_H
#define GLM4V_DUMP_H

#include "safetensors.h"

typedef struct {
    char *name;                  // tensor name (owned)
    DType dtype;                 // element type
    int ndim;                    // number of dimensions
    int64_t shape[ST_MAX_DIMS];  // [ndim] sizes
    void *data;                  // owned copy
    size_t nbytes;               // bytes of data
} DumpTensor;
typedef struct {
    DumpTensor *t;               // [n] in insertion order (written sorted by name)
    int n, cap;                  // tensors used / allocated
    char **mkeys, **mvals;       // metadata key/value strings [nmeta]
    int nmeta, capmeta;          // metadata entries used / allocated
} Dump;
void dump_init(Dump *d);
void dump_free(Dump *d);
// copy a tensor into the dump (replaces one of the same name)
void dump_add(Dump *d, const char *name, DType dt, int ndim, const int64_t *shape, const void *data);
// append rows (along dim 0) to the tensor of that name, or add it: a TapFn (ctx = the Dump) for prefill chunks
void dump_tap(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data);
// set a metadata key
void dump_meta(Dump *d, const char *key, const char *value);
// write to path (via path.tmp + rename); -1 + glm_errmsg on error, nothing left behind
int dump_write(const Dump *d, const char *path);
// zlib CRC-32 of n bytes
uint32_t crc32_bytes(const void *p, size_t n);

#endif
