// SPDX-License-Identifier: MIT
// gguf.h - read-only GGUF (v2/v3, little-endian) reader over an mmap'd file: header, metadata key/values (every GGUF
// value type, arrays and nested arrays), tensor infos with their data in the mapping (no copies). Mirrors the
// format that gguf-py (gguf/gguf_reader.py, gguf/gguf_writer.py) and ggml/src/gguf.cpp read and write.
// Every count, offset, string length, alignment and tensor extent is checked; errors are one line naming the file
// and the key or tensor (gguf_last_error()). Dequantisation and matrix-vector kernels: ggml_quants.h.
#ifndef GGUF_H
#define GGUF_H
#include <stddef.h>
#include <stdint.h>

// GGUF metadata value types (gguf-py GGUFValueType)
enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
};

// limits that keep a hostile file from exhausting memory or time (real files: ~1000 tensors, ~50 keys, vocabularies
// of ~150k strings)
#define GGUF_MAX_TENSORS (1u << 20)   // tensor infos per file
#define GGUF_MAX_KV (1u << 16)        // metadata key/values per file
#define GGUF_MAX_NAME 65536           // bytes of a key or tensor name
#define GGUF_MAX_DEPTH 8              // nesting depth of arrays of arrays
#define GGUF_MAX_NODES (1u << 24)     // array elements of variable size (strings, arrays) indexed per file
#define GGUF_MAX_DIMS 4               // dimensions of a tensor (ggml's GGML_MAX_DIMS)
#define GGUF_DEFAULT_ALIGNMENT 32

// one metadata value (scalars decoded; strings and arrays point into the mapping)
typedef struct GGUFValue {
    uint32_t type;                   // GGUF_TYPE_*
    uint32_t arr_type;               // element type when type == GGUF_TYPE_ARRAY
    uint64_t n;                      // STRING: length in bytes; ARRAY: number of elements
    const uint8_t *p;                // STRING: its bytes (not NUL-terminated); ARRAY: the first element's bytes
    union {
        uint64_t u;                  // UINT8/16/32/64 and BOOL (0/1)
        int64_t i;                   // INT8/16/32/64
        double f;                    // FLOAT32/64
    } num;                           // the scalar's value
    const uint64_t *offs;            // ARRAY of STRING: byte offset of element i from p ([n]); NULL otherwise
    const struct GGUFValue *items;   // ARRAY of ARRAY: the sub-arrays ([n]); NULL otherwise
} GGUFValue;

// one metadata key/value
typedef struct GGUFKV {
    const char *key;                 // NUL-terminated copy of the key
    const char *str;                 // STRING values: NUL-terminated copy (NULL for other types)
    GGUFValue v;                     // the value
} GGUFKV;

// one tensor info
typedef struct GGUFTensor {
    const char *name;                // NUL-terminated copy of the name
    uint32_t type;                   // ggml type id (GQ_TYPE_* in ggml_quants.h)
    int n_dims;                      // number of dimensions stored (1..4; 0 is read as a scalar)
    int64_t ne[GGUF_MAX_DIMS];       // elements per dimension in ggml order: ne[0] is the row (innermost); unused = 1
    uint64_t offset;                 // byte offset in the data section
    const void *data;                // the bytes in the mapping
    size_t nbytes;                   // bytes of data: nelem / block size * bytes per block
    uint64_t nelem;                  // ne[0] * ne[1] * ne[2] * ne[3]
} GGUFTensor;

// an open GGUF file
typedef struct GGUFFile {
    char *path;                      // the name used in error messages
    const uint8_t *map;              // the file's bytes
    size_t size;                     // file size in bytes
    int mapped;                      // 1 when map is our mmap (gguf_close unmaps it)
    uint32_t version;                // 2 or 3
    uint32_t alignment;              // general.alignment or 32
    size_t data_offset;              // start of the data section (aligned)
    uint64_t n_kv;                   // metadata count
    GGUFKV *kv;                      // [n_kv] in file order
    uint64_t n_tensors;              // tensor count
    GGUFTensor *tensors;             // [n_tensors] in file order
    // private
    void **allocs;                   // every block this reader allocated (name copies, offs, items), freed on close
    size_t n_allocs, cap_allocs;     // used / allocated entries of allocs
    char *arena;                     // current chunk for NUL-terminated copies of keys, names and string values
    size_t arena_left;               // free bytes at arena
    uint64_t n_nodes;                // variable-size array elements indexed so far (<= GGUF_MAX_NODES)
    uint32_t *kv_hash;               // open-addressing index of kv by key (size kv_hash_n)
    uint32_t *t_hash;                // same for tensors by name
    uint32_t kv_hash_n, t_hash_n;    // slot counts (powers of two)
} GGUFFile;

// the last error of this thread (one line)
const char *gguf_last_error(void);

// map and parse path (a regular file); 0 or -1 (error set, g zeroed)
int gguf_open(GGUFFile *g, const char *path);
// parse the bytes buf[size] (kept by g, not copied; name is used in errors); 0 or -1
int gguf_parse(GGUFFile *g, const uint8_t *buf, size_t size, const char *name);
// free everything (and unmap a file from gguf_open); g may be zeroed or partly filled
void gguf_close(GGUFFile *g);

// a model in one GGUF file or split in several (llama.cpp's gguf-split / gguf-py's GGUFWriter split_max_*):
// NAME-00001-of-0000N.gguf ... each holding split.no, split.count (and the first split.tensors.count and all the
// other metadata)
#define GGUF_MAX_SPLITS 1024
typedef struct GGUFSplit {
    int n;                           // number of files (1 for an unsplit file)
    GGUFFile *f;                     // [n] in split.no order; f[0] holds the model's metadata
} GGUFSplit;

// open path (an unsplit file, or any one shard of a split model: all its shards are opened); 0 or -1 (error set)
int gguf_open_split(GGUFSplit *s, const char *path);
void gguf_close_split(GGUFSplit *s);
// the tensor named name in any shard (its file in *file when file != NULL), or NULL
const GGUFTensor *gguf_split_find_tensor(const GGUFSplit *s, const char *name, const GGUFFile **file);

// the value type's name ("UINT32", ...)
const char *gguf_type_name(uint32_t type);

// metadata lookup: the key/value or NULL (no error set)
const GGUFKV *gguf_find_kv(const GGUFFile *g, const char *key);
// typed getters: 0, or -1 with an error naming the file and key (missing, wrong type, out of range).
// Integer getters accept any integer type whose value fits; gguf_get_f32 accepts FLOAT32 and FLOAT64;
// gguf_get_str refuses a string with a NUL byte inside (GGUFKV.v has all its bytes).
int gguf_get_str(const GGUFFile *g, const char *key, const char **out);
int gguf_get_u32(const GGUFFile *g, const char *key, uint32_t *out);
int gguf_get_i32(const GGUFFile *g, const char *key, int32_t *out);
int gguf_get_u64(const GGUFFile *g, const char *key, uint64_t *out);
int gguf_get_f32(const GGUFFile *g, const char *key, float *out);
int gguf_get_bool(const GGUFFile *g, const char *key, int *out);
// arrays: the array value itself when key is an array of strings (elements with gguf_arr_str)
int gguf_get_arr_str(const GGUFFile *g, const char *key, const GGUFValue **arr);
// arrays of integers into out[cap] (any integer element type; each value must fit int64 / int32); *n = count
int gguf_get_arr_i64(const GGUFFile *g, const char *key, int64_t *out, uint64_t cap, uint64_t *n);
int gguf_get_arr_i32(const GGUFFile *g, const char *key, int32_t *out, uint64_t cap, uint64_t *n);
// arrays of FLOAT32 (or FLOAT64, rounded) into out[cap]; *n = count
int gguf_get_arr_f32(const GGUFFile *g, const char *key, float *out, uint64_t cap, uint64_t *n);

// element i of an array value (caller checks i < a->n and the element type): string bytes + length
const char *gguf_arr_str(const GGUFValue *a, uint64_t i, uint64_t *len);
// element i of an integer / bool array as int64 (UINT64 above INT64_MAX: -1 with error); 0 or -1 (wrong type)
int gguf_arr_int(const GGUFValue *a, uint64_t i, int64_t *out);
// element i of a numeric array as double; 0 or -1
int gguf_arr_f64(const GGUFValue *a, uint64_t i, double *out);
// element i of an array of arrays
const GGUFValue *gguf_arr_sub(const GGUFValue *a, uint64_t i);

// tensor lookup by name: the tensor or NULL (no error set)
const GGUFTensor *gguf_find_tensor(const GGUFFile *g, const char *name);
// 0 when the tensor's type can be dequantised, else -1 with "file: tensor 'name' has type IQ2_XXS, which ..."
int gguf_tensor_supported(const GGUFFile *g, const GGUFTensor *t);
// rows [row0, row0 + nrows) of t (rows of ne[0] elements) dequantised into out[nrows * ne[0]]; 0 or -1 (error
// naming the tensor: unsupported type or rows out of range)
int gguf_tensor_rows(const GGUFFile *g, const GGUFTensor *t, int64_t row0, int64_t nrows, float *out);
#endif
