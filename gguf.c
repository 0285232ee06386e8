// SPDX-License-Identifier: MIT
// gguf.c - read-only GGUF reader over an mmap'd file (see gguf.h). Layout (ggml/docs/gguf.md, gguf-py GGUFWriter):
//   u32 magic "GGUF", u32 version (2, 3), u64 tensor_count, u64 kv_count,
//   kv_count x { string key, u32 value_type, value }   (string = u64 length + bytes; array = u32 type, u64 n, items)
//   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to general.alignment (default 32), then the data section; tensor offsets are relative to it.
// Everything little-endian. Nothing is trusted: each read is bounds-checked, each count is bounded by the bytes left
// (every element takes at least one byte) and by the GGUF_MAX_* limits before anything is allocated.
#include "gguf.h"

#include "ggml_quants.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char gguf_errbuf[1024];

const char *gguf_last_error(void) { return gguf_errbuf; }

// set the error line; returns -1
__attribute__((format(printf, 1, 2))) static int gerr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gguf_errbuf, sizeof gguf_errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *const value_type_names[GGUF_TYPE_COUNT] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32",
                                                              "INT32", "FLOAT32", "BOOL",  "STRING", "ARRAY",
                                                              "UINT64", "INT64", "FLOAT64"};

const char *gguf_type_name(uint32_t type) { return type < GGUF_TYPE_COUNT ? value_type_names[type] : "?"; }

// bytes of one value of a fixed-size type; 0 for STRING / ARRAY / unknown
static size_t value_size(uint32_t type) {
    switch (type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

// ---------------------------------------------------------------------------- allocation (freed by gguf_close)

// remember p for gguf_close; p or NULL (p freed) when the list cannot grow
static void *track(GGUFFile *g, void *p) {
    if (!p) return NULL;
    if (g->n_allocs == g->cap_allocs) {
        size_t cap = g->cap_allocs ? g->cap_allocs * 2 : 64;
        void **a = realloc(g->allocs, cap * sizeof *a);
        if (!a) { free(p); return NULL; }
        g->allocs = a;
        g->cap_allocs = cap;
    }
    g->allocs[g->n_allocs++] = p;
    return p;
}

// a NUL-terminated copy of s[n] from the arena (chunks of 64 KiB; strings over 4 KiB get their own block); NULL
// when out of memory
static char *copy_str(GGUFFile *g, const uint8_t *s, size_t n) {
    char *d;
    if (n + 1 > 4096) {
        if (!(d = track(g, malloc(n + 1)))) return NULL;
    } else {
        if (n + 1 > g->arena_left) {
            if (!(g->arena = track(g, malloc(65536)))) { g->arena_left = 0; return NULL; }
            g->arena_left = 65536;
        }
        d = g->arena;
        g->arena += n + 1;
        g->arena_left -= n + 1;
    }
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

// ---------------------------------------------------------------------------- bounded reads

// the parse cursor
typedef struct {
    GGUFFile *g;        // the file being read
    size_t pos;         // next byte to read
    const char *what;   // what is being read, for errors ("key 'x'", "tensor 'y'", "header")
} Cur;

static size_t left(const Cur *c) { return c->g->size - c->pos; }

// little-endian loads
static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

// n bytes at the cursor (advanced), or NULL with an error when the file ends first
static const uint8_t *take(Cur *c, size_t n) {
    if (n > left(c)) {
        gerr("%s: truncated: %s needs %zu bytes at offset %zu, the file has %zu", c->g->path, c->what, n, c->pos,
             c->g->size);
        return NULL;
    }
    const uint8_t *p = c->g->map + c->pos;
    c->pos += n;
    return p;
}

static int rd32(Cur *c, uint32_t *v) {
    const uint8_t *p = take(c, 4);
    if (!p) return -1;
    *v = ld32(p);
    return 0;
}

static int rd64(Cur *c, uint64_t *v) {
    const uint8_t *p = take(c, 8);
    if (!p) return -1;
    *v = ld64(p);
    return 0;
}

// a string: *s = its bytes, *n = its length (<= the bytes left)
static int rdstr(Cur *c, const uint8_t **s, uint64_t *n) {
    if (rd64(c, n)) return -1;
    if (*n > left(c))
        return gerr("%s: %s: string length %llu at offset %zu exceeds the %zu bytes left", c->g->path, c->what,
                    (unsigned long long)*n, c->pos - 8, left(c));
    *s = take(c, (size_t)*n);
    return 0;
}

// a name (key or tensor name): a NUL-terminated copy, no NUL inside, at most GGUF_MAX_NAME bytes
static int rdname(Cur *c, const char **out, const char *kind) {
    const uint8_t *s;
    uint64_t n;
    if (rdstr(c, &s, &n)) return -1;
    if (n > GGUF_MAX_NAME)
        return gerr("%s: %s name of %llu bytes at offset %zu (at most %d)", c->g->path, kind, (unsigned long long)n,
                    c->pos - (size_t)n - 8, GGUF_MAX_NAME);
    if (memchr(s, 0, (size_t)n))
        return gerr("%s: %s name at offset %zu contains a NUL byte", c->g->path, kind, c->pos - (size_t)n - 8);
    if (!(*out = copy_str(c->g, s, (size_t)n))) return gerr("%s: out of memory", c->g->path);
    return 0;
}

// ---------------------------------------------------------------------------- values

// read one value of type into v (arrays: the elements are checked and indexed); depth counts enclosing arrays
static int rdvalue(Cur *c, uint32_t type, GGUFValue *v, int depth) {
    GGUFFile *g = c->g;
    memset(v, 0, sizeof *v);
    v->type = type;
    size_t vs = value_size(type);
    if (vs) {
        const uint8_t *p = take(c, vs);
        if (!p) return -1;
        switch (type) {
        case GGUF_TYPE_UINT8: v->num.u = p[0]; break;
        case GGUF_TYPE_INT8: v->num.i = (int8_t)p[0]; break;
        case GGUF_TYPE_BOOL:
            if (p[0] > 1) return gerr("%s: %s: bool value %u at offset %zu is not 0 or 1", g->path, c->what, p[0], c->pos - 1);
            v->num.u = p[0];
            break;
        case GGUF_TYPE_UINT16: v->num.u = ld16(p); break;
        case GGUF_TYPE_INT16: v->num.i = (int16_t)ld16(p); break;
        case GGUF_TYPE_UINT32: v->num.u = ld32(p); break;
        case GGUF_TYPE_INT32: v->num.i = (int32_t)ld32(p); break;
        case GGUF_TYPE_FLOAT32: {
            uint32_t u = ld32(p);
            float f;
            memcpy(&f, &u, 4);
            v->num.f = f;
            break;
        }
        case GGUF_TYPE_UINT64: v->num.u = ld64(p); break;
        case GGUF_TYPE_INT64: v->num.i = (int64_t)ld64(p); break;
        case GGUF_TYPE_FLOAT64: {
            uint64_t u = ld64(p);
            memcpy(&v->num.f, &u, 8);
            break;
        }
        }
        return 0;
    }
    if (type == GGUF_TYPE_STRING) return rdstr(c, &v->p, &v->n);
    if (type != GGUF_TYPE_ARRAY)
        return gerr("%s: %s: unknown value type %u at offset %zu", g->path, c->what, type, c->pos - 4);
    // array: u32 element type, u64 count, elements
    uint32_t et;
    if (rd32(c, &et) || rd64(c, &v->n)) return -1;
    v->arr_type = et;
    if (et >= GGUF_TYPE_COUNT)
        return gerr("%s: %s: unknown array element type %u at offset %zu", g->path, c->what, et, c->pos - 12);
    if (et == GGUF_TYPE_ARRAY && depth + 1 >= GGUF_MAX_DEPTH)
        return gerr("%s: %s: arrays nested deeper than %d", g->path, c->what, GGUF_MAX_DEPTH);
    // the smallest encoding of one element: fixed size, 8 (string length), 12 (array type + count)
    size_t es = value_size(et), emin = es ? es : et == GGUF_TYPE_STRING ? 8 : 12;
    if (v->n > left(c) / emin)
        return gerr("%s: %s: array of %llu %s elements at offset %zu exceeds the %zu bytes left", g->path, c->what,
                    (unsigned long long)v->n, gguf_type_name(et), c->pos - 12, left(c));
    v->p = g->map + c->pos;
    if (es) {
        if (et == GGUF_TYPE_BOOL)
            for (uint64_t i = 0; i < v->n; i++)
                if (v->p[i] > 1)
                    return gerr("%s: %s: bool element %llu is %u, not 0 or 1", g->path, c->what,
                                (unsigned long long)i, v->p[i]);
        c->pos += (size_t)v->n * es;
        return 0;
    }
    if (v->n > GGUF_MAX_NODES - g->n_nodes)
        return gerr("%s: %s: more than %u strings / arrays inside arrays", g->path, c->what, GGUF_MAX_NODES);
    g->n_nodes += v->n;
    if (v->n == 0) return 0;
    if (et == GGUF_TYPE_STRING) {
        uint64_t *offs = track(g, malloc((size_t)v->n * sizeof *offs));
        if (!offs) return gerr("%s: %s: out of memory for %llu strings", g->path, c->what, (unsigned long long)v->n);
        for (uint64_t i = 0; i < v->n; i++) {
            offs[i] = (uint64_t)(g->map + c->pos - v->p);
            const uint8_t *s;
            uint64_t n;
            if (rdstr(c, &s, &n)) return -1;
        }
        v->offs = offs;
        return 0;
    }
    GGUFValue *items = track(g, calloc((size_t)v->n, sizeof *items));
    if (!items) return gerr("%s: %s: out of memory for %llu arrays", g->path, c->what, (unsigned long long)v->n);
    for (uint64_t i = 0; i < v->n; i++)
        if (rdvalue(c, GGUF_TYPE_ARRAY, &items[i], depth + 1)) return -1;
    v->items = items;
    return 0;
}

// ---------------------------------------------------------------------------- name index (open addressing)

static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

// a table of n_slots (power of two >= 2 * count) slots of index + 1 (0 = empty)
static uint32_t *hash_new(GGUFFile *g, uint64_t count, uint32_t *n_slots) {
    uint32_t n = 16;
    while (n < 2 * count) n *= 2;
    *n_slots = n;
    return track(g, calloc(n, sizeof(uint32_t)));
}

// insert entry idx named name; -1 when the name is already there
static int hash_put(uint32_t *tab, uint32_t n_slots, const char *name, uint32_t idx, const char *(*name_of)(const GGUFFile *, uint32_t),
                    const GGUFFile *g) {
    for (uint32_t h = hash_str(name) & (n_slots - 1);; h = (h + 1) & (n_slots - 1)) {
        if (!tab[h]) { tab[h] = idx + 1; return 0; }
        if (strcmp(name_of(g, tab[h] - 1), name) == 0) return -1;
    }
}

// slot content of name, or -1
static int64_t hash_get(const uint32_t *tab, uint32_t n_slots, const char *name,
                        const char *(*name_of)(const GGUFFile *, uint32_t), const GGUFFile *g) {
    if (!tab) return -1;
    for (uint32_t h = hash_str(name) & (n_slots - 1);; h = (h + 1) & (n_slots - 1)) {
        if (!tab[h]) return -1;
        if (strcmp(name_of(g, tab[h] - 1), name) == 0) return tab[h] - 1;
    }
}

static const char *kv_name(const GGUFFile *g, uint32_t i) { return g->kv[i].key; }
static const char *t_name(const GGUFFile *g, uint32_t i) { return g->tensors[i].name; }

// ---------------------------------------------------------------------------- parse

// order of tensors by data offset (for the overlap check)
static int cmp_off(const void *a, const void *b) {
    const GGUFTensor *x = *(const GGUFTensor *const *)a, *y = *(const GGUFTensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int parse(GGUFFile *g) {
    Cur c = {g, 0, "header"};
    const uint8_t *p = take(&c, 4);
    if (!p) return -1;
    if (memcmp(p, "GGUF", 4) != 0)
        return gerr("%s: not a GGUF file (magic %02x %02x %02x %02x)", g->path, p[0], p[1], p[2], p[3]);
    if (rd32(&c, &g->version)) return -1;
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0 && g->version)
            return gerr("%s: big-endian GGUF (version %u byte-swapped) is not supported", g->path,
                        __builtin_bswap32(g->version));
        return gerr("%s: GGUF version %u is not supported (2 or 3)", g->path, g->version);
    }
    uint64_t nt, nkv;
    if (rd64(&c, &nt) || rd64(&c, &nkv)) return -1;
    // a key/value takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8
    if (nkv > GGUF_MAX_KV || nkv > left(&c) / 13)
        return gerr("%s: metadata count %llu is too large (%zu bytes left, at most %u)", g->path,
                    (unsigned long long)nkv, left(&c), GGUF_MAX_KV);
    if (nt > GGUF_MAX_TENSORS || nt > left(&c) / 24)
        return gerr("%s: tensor count %llu is too large (%zu bytes left, at most %u)", g->path, (unsigned long long)nt,
                    left(&c), GGUF_MAX_TENSORS);
    g->kv = track(g, calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv));
    g->tensors = track(g, calloc(nt ? (size_t)nt : 1, sizeof *g->tensors));
    g->kv_hash = hash_new(g, nkv, &g->kv_hash_n);
    g->t_hash = hash_new(g, nt, &g->t_hash_n);
    if (!g->kv || !g->tensors || !g->kv_hash || !g->t_hash) return gerr("%s: out of memory", g->path);

    // metadata
    char what[160];
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < nkv; i++) {
        GGUFKV *kv = &g->kv[i];
        snprintf(what, sizeof what, "metadata entry %llu", (unsigned long long)i);
        c.what = what;
        if (rdname(&c, &kv->key, "key")) return -1;
        snprintf(what, sizeof what, "key '%.100s'", kv->key);
        uint32_t type;
        if (rd32(&c, &type) || rdvalue(&c, type, &kv->v, 0)) return -1;
        if (type == GGUF_TYPE_STRING && !(kv->str = copy_str(g, kv->v.p, (size_t)kv->v.n)))
            return gerr("%s: out of memory", g->path);
        if (hash_put(g->kv_hash, g->kv_hash_n, kv->key, (uint32_t)i, kv_name, g))
            return gerr("%s: key '%.100s' appears twice", g->path, kv->key);
        g->n_kv = i + 1;
        if (strcmp(kv->key, "general.alignment") == 0) {
            // ggml: a UINT32, a power of two
            if (type != GGUF_TYPE_UINT32)
                return gerr("%s: general.alignment has type %s, expected UINT32", g->path, gguf_type_name(type));
            if (kv->v.num.u == 0 || (kv->v.num.u & (kv->v.num.u - 1)))
                return gerr("%s: general.alignment %llu is not a power of two", g->path,
                            (unsigned long long)kv->v.num.u);
            g->alignment = (uint32_t)kv->v.num.u;
        }
    }

    // tensor infos
    for (uint64_t i = 0; i < nt; i++) {
        GGUFTensor *t = &g->tensors[i];
        snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)i);
        c.what = what;
        if (rdname(&c, &t->name, "tensor")) return -1;
        snprintf(what, sizeof what, "tensor '%.100s'", t->name);
        uint32_t nd;
        if (rd32(&c, &nd)) return -1;
        if (nd > GGUF_MAX_DIMS)
            return gerr("%s: tensor '%.100s' has %u dimensions (at most %d)", g->path, t->name, nd, GGUF_MAX_DIMS);
        t->n_dims = (int)nd;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        uint64_t nelem = 1;
        int overflow = 0;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            if (rd64(&c, &ne)) return -1;
            if (ne > (uint64_t)INT64_MAX)
                return gerr("%s: tensor '%.100s': dimension %u is %llu", g->path, t->name, d, (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
            overflow |= __builtin_mul_overflow(nelem, ne, &nelem);
        }
        if (overflow || nelem > (uint64_t)INT64_MAX)
            return gerr("%s: tensor '%.100s': element count overflows", g->path, t->name);
        t->nelem = nelem;
        if (rd32(&c, &t->type) || rd64(&c, &t->offset)) return -1;
        const GQType *ty = gq_type(t->type);
        if (!ty) return gerr("%s: tensor '%.100s' has unknown ggml type %u", g->path, t->name, t->type);
        if (t->ne[0] % ty->block)
            return gerr("%s: tensor '%.100s' (%s): row length %lld is not a multiple of the block size %d", g->path,
                        t->name, ty->name, (long long)t->ne[0], ty->block);
        uint64_t nb = 0;
        if (nelem && __builtin_mul_overflow(nelem / (uint64_t)ty->block, (uint64_t)ty->bytes, &nb))
            return gerr("%s: tensor '%.100s': byte size overflows", g->path, t->name);
        if (nb > g->size) // also keeps it within size_t
            return gerr("%s: tensor '%.100s' (%s, %llu elements) needs %llu bytes, more than the file's %zu", g->path,
                        t->name, ty->name, (unsigned long long)nelem, (unsigned long long)nb, g->size);
        t->nbytes = (size_t)nb;
        if (t->offset % g->alignment)
            return gerr("%s: tensor '%.100s': offset %llu is not a multiple of the alignment %u", g->path, t->name,
                        (unsigned long long)t->offset, g->alignment);
        if (hash_put(g->t_hash, g->t_hash_n, t->name, (uint32_t)i, t_name, g))
            return gerr("%s: tensor '%.100s' appears twice", g->path, t->name);
        g->n_tensors = i + 1;
    }

    // data section: aligned after the infos; every tensor inside the file, no two overlapping
    size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    if (pad > left(&c)) {
        if (nt) return gerr("%s: the data section (offset %zu + %zu padding) starts past the end of the file (%zu)",
                            g->path, c.pos, pad, g->size);
        pad = left(&c); // no tensors: the padding may be absent
    }
    g->data_offset = c.pos + pad;
    size_t data_size = g->size - g->data_offset;
    for (uint64_t i = 0; i < nt; i++) {
        GGUFTensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return gerr("%s: tensor '%.100s' (%s, %zu bytes at data offset %llu) extends past the end of the file "
                        "(data section of %zu bytes)", g->path, t->name, gq_type_name(t->type), t->nbytes,
                        (unsigned long long)t->offset, data_size);
        t->data = g->map + g->data_offset + t->offset;
    }
    if (nt > 1) {
        GGUFTensor **ord = malloc((size_t)nt * sizeof *ord);
        if (!ord) return gerr("%s: out of memory", g->path);
        for (uint64_t i = 0; i < nt; i++) ord[i] = &g->tensors[i];
        qsort(ord, (size_t)nt, sizeof *ord, cmp_off);
        const GGUFTensor *prev = NULL;
        for (uint64_t i = 0; i < nt; i++) {
            if (!ord[i]->nbytes) continue;
            if (prev && prev->offset + prev->nbytes > ord[i]->offset) {
                int rc = gerr("%s: tensors '%.100s' and '%.100s' overlap in the data section", g->path, prev->name,
                              ord[i]->name);
                free(ord);
                return rc;
            }
            prev = ord[i];
        }
        free(ord);
    }
    return 0;
}

int gguf_parse(GGUFFile *g, const uint8_t *buf, size_t size, const char *name) {
    memset(g, 0, sizeof *g);
    g->map = buf;
    g->size = size;
    g->path = strdup(name ? name : "(gguf)");
    if (!g->path) return gerr("out of memory");
    if (parse(g) == 0) return 0;
    char keep[sizeof gguf_errbuf];
    memcpy(keep, gguf_errbuf, sizeof keep);
    gguf_close(g);
    memcpy(gguf_errbuf, keep, sizeof keep);
    return -1;
}

int gguf_open(GGUFFile *g, const char *path) {
    memset(g, 0, sizeof *g);
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below)
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return gerr("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gerr("%s: not a regular file", path);
    }
    if (st.st_size <= 0) {
        close(fd);
        return gerr("%s: not a GGUF file (empty)", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return gerr("%s: too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return gerr("%s: cannot map %zu bytes: %s", path, size, strerror(errno));
    if (gguf_parse(g, m, size, path)) {
        munmap(m, size);
        return -1;
    }
    g->mapped = 1;
    return 0;
}

void gguf_close(GGUFFile *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_allocs; i++) free(g->allocs[i]);
    free(g->allocs);
    free(g->path);
    if (g->mapped && g->map) munmap((void *)g->map, g->size);
    memset(g, 0, sizeof *g);
}

// ---------------------------------------------------------------------------- metadata access

const GGUFKV *gguf_find_kv(const GGUFFile *g, const char *key) {
    int64_t i = hash_get(g->kv_hash, g->kv_hash_n, key, kv_name, g);
    return i < 0 || (uint64_t)i >= g->n_kv ? NULL : &g->kv[i];
}

const GGUFTensor *gguf_find_tensor(const GGUFFile *g, const char *name) {
    int64_t i = hash_get(g->t_hash, g->t_hash_n, name, t_name, g);
    return i < 0 || (uint64_t)i >= g->n_tensors ? NULL : &g->tensors[i];
}

// the key/value or NULL with "file: key 'k' not found"
static const GGUFKV *need(const GGUFFile *g, const char *key) {
    const GGUFKV *kv = gguf_find_kv(g, key);
    if (!kv) gerr("%s: metadata key '%s' not found", g->path, key);
    return kv;
}

static int is_int_type(uint32_t t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_INT16 ||
           t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}
static int is_signed_type(uint32_t t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

// an integer value as (negative?, magnitude-preserving) pair: 0 when v is an integer
static int int_of(const GGUFValue *v, int *neg, uint64_t *u, int64_t *i) {
    if (!is_int_type(v->type)) return -1;
    if (is_signed_type(v->type)) { *neg = v->num.i < 0; *i = v->num.i; *u = (uint64_t)v->num.i; }
    else { *neg = 0; *u = v->num.u; *i = (int64_t)v->num.u; }
    return 0;
}

int gguf_get_str(const GGUFFile *g, const char *key, const char **out) {
    const GGUFKV *kv = need(g, key);
    if (!kv) return -1;
    if (kv->v.type != GGUF_TYPE_STRING)
        return gerr("%s: metadata key '%s' has type %s, expected STRING", g->path, key, gguf_type_name(kv->v.type));
    if (strlen(kv->str) != kv->v.n) // a C string cannot hold it
        return gerr("%s: metadata key '%s': the string contains a NUL byte", g->path, key);
    *out = kv->str;
    return 0;
}

// an integer key in [lo, hi] (hi as unsigned when lo >= 0)
static int get_int(const GGUFFile *g, const char *key, int64_t lo, uint64_t hi, uint64_t *u, int64_t *i) {
    const GGUFKV *kv = need(g, key);
    if (!kv) return -1;
    int neg;
    if (int_of(&kv->v, &neg, u, i))
        return gerr("%s: metadata key '%s' has type %s, expected an integer", g->path, key, gguf_type_name(kv->v.type));
    if (neg ? *i < lo : *u > hi)
        return gerr("%s: metadata key '%s' = %s%llu is out of range", g->path, key, neg ? "-" : "",
                    neg ? (unsigned long long)(-(uint64_t)*i) : (unsigned long long)*u);
    return 0;
}

int gguf_get_u32(const GGUFFile *g, const char *key, uint32_t *out) {
    uint64_t u;
    int64_t i;
    if (get_int(g, key, 0, UINT32_MAX, &u, &i)) return -1;
    *out = (uint32_t)u;
    return 0;
}

int gguf_get_i32(const GGUFFile *g, const char *key, int32_t *out) {
    uint64_t u;
    int64_t i;
    if (get_int(g, key, INT32_MIN, INT32_MAX, &u, &i)) return -1;
    *out = (int32_t)i;
    return 0;
}

int gguf_get_u64(const GGUFFile *g, const char *key, uint64_t *out) {
    int64_t i;
    return get_int(g, key, 0, UINT64_MAX, out, &i);
}

int gguf_get_f32(const GGUFFile *g, const char *key, float *out) {
    const GGUFKV *kv = need(g, key);
    if (!kv) return -1;
    if (kv->v.type != GGUF_TYPE_FLOAT32 && kv->v.type != GGUF_TYPE_FLOAT64)
        return gerr("%s: metadata key '%s' has type %s, expected FLOAT32", g->path, key, gguf_type_name(kv->v.type));
    *out = (float)kv->v.num.f;
    return 0;
}

int gguf_get_bool(const GGUFFile *g, const char *key, int *out) {
    const GGUFKV *kv = need(g, key);
    if (!kv) return -1;
    if (kv->v.type != GGUF_TYPE_BOOL)
        return gerr("%s: metadata key '%s' has type %s, expected BOOL", g->path, key, gguf_type_name(kv->v.type));
    *out = (int)kv->v.num.u;
    return 0;
}

// the array value of key, or NULL with an error
static const GGUFValue *need_arr(const GGUFFile *g, const char *key) {
    const GGUFKV *kv = need(g, key);
    if (!kv) return NULL;
    if (kv->v.type != GGUF_TYPE_ARRAY) {
        gerr("%s: metadata key '%s' has type %s, expected ARRAY", g->path, key, gguf_type_name(kv->v.type));
        return NULL;
    }
    return &kv->v;
}

int gguf_get_arr_str(const GGUFFile *g, const char *key, const GGUFValue **arr) {
    const GGUFValue *a = need_arr(g, key);
    if (!a) return -1;
    if (a->arr_type != GGUF_TYPE_STRING)
        return gerr("%s: metadata key '%s' is an array of %s, expected STRING", g->path, key, gguf_type_name(a->arr_type));
    *arr = a;
    return 0;
}

const char *gguf_arr_str(const GGUFValue *a, uint64_t i, uint64_t *len) {
    const uint8_t *p = a->p + a->offs[i];
    *len = ld64(p);
    return (const char *)p + 8;
}

// the scalar element i of a fixed-size array
static GGUFValue elem(const GGUFValue *a, uint64_t i) {
    GGUFValue v;
    memset(&v, 0, sizeof v);
    v.type = a->arr_type;
    const uint8_t *p = a->p + i * value_size(a->arr_type);
    switch (a->arr_type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: v.num.u = p[0]; break;
    case GGUF_TYPE_INT8: v.num.i = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: v.num.u = ld16(p); break;
    case GGUF_TYPE_INT16: v.num.i = (int16_t)ld16(p); break;
    case GGUF_TYPE_UINT32: v.num.u = ld32(p); break;
    case GGUF_TYPE_INT32: v.num.i = (int32_t)ld32(p); break;
    case GGUF_TYPE_UINT64: v.num.u = ld64(p); break;
    case GGUF_TYPE_INT64: v.num.i = (int64_t)ld64(p); break;
    case GGUF_TYPE_FLOAT32: {
        uint32_t u = ld32(p);
        float f;
        memcpy(&f, &u, 4);
        v.num.f = f;
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        uint64_t u = ld64(p);
        memcpy(&v.num.f, &u, 8);
        break;
    }
    }
    return v;
}

int gguf_arr_int(const GGUFValue *a, uint64_t i, int64_t *out) {
    if (a->type != GGUF_TYPE_ARRAY || i >= a->n) return -1;
    if (a->arr_type == GGUF_TYPE_BOOL) { *out = elem(a, i).num.u; return 0; }
    GGUFValue v = elem(a, i);
    int neg;
    uint64_t u;
    if (int_of(&v, &neg, &u, out)) return -1;
    if (!neg && u > (uint64_t)INT64_MAX) return -1;
    return 0;
}

int gguf_arr_f64(const GGUFValue *a, uint64_t i, double *out) {
    if (a->type != GGUF_TYPE_ARRAY || i >= a->n) return -1;
    GGUFValue v = elem(a, i);
    if (v.type == GGUF_TYPE_FLOAT32 || v.type == GGUF_TYPE_FLOAT64) { *out = v.num.f; return 0; }
    if (is_int_type(v.type) || v.type == GGUF_TYPE_BOOL) {
        *out = is_signed_type(v.type) ? (double)v.num.i : (double)v.num.u;
        return 0;
    }
    return -1;
}

const GGUFValue *gguf_arr_sub(const GGUFValue *a, uint64_t i) {
    return a->type == GGUF_TYPE_ARRAY && a->items && i < a->n ? &a->items[i] : NULL;
}

int gguf_get_arr_i64(const GGUFFile *g, const char *key, int64_t *out, uint64_t cap, uint64_t *n) {
    const GGUFValue *a = need_arr(g, key);
    if (!a) return -1;
    if (!is_int_type(a->arr_type))
        return gerr("%s: metadata key '%s' is an array of %s, expected integers", g->path, key, gguf_type_name(a->arr_type));
    if (a->n > cap)
        return gerr("%s: metadata key '%s' has %llu elements, at most %llu expected", g->path, key,
                    (unsigned long long)a->n, (unsigned long long)cap);
    for (uint64_t i = 0; i < a->n; i++)
        if (gguf_arr_int(a, i, &out[i]))
            return gerr("%s: metadata key '%s': element %llu is out of range", g->path, key, (unsigned long long)i);
    *n = a->n;
    return 0;
}

int gguf_get_arr_i32(const GGUFFile *g, const char *key, int32_t *out, uint64_t cap, uint64_t *n) {
    const GGUFValue *a = need_arr(g, key);
    if (!a) return -1;
    if (!is_int_type(a->arr_type))
        return gerr("%s: metadata key '%s' is an array of %s, expected integers", g->path, key, gguf_type_name(a->arr_type));
    if (a->n > cap)
        return gerr("%s: metadata key '%s' has %llu elements, at most %llu expected", g->path, key,
                    (unsigned long long)a->n, (unsigned long long)cap);
    for (uint64_t i = 0; i < a->n; i++) {
        int64_t v;
        if (gguf_arr_int(a, i, &v) || v < INT32_MIN || v > INT32_MAX)
            return gerr("%s: metadata key '%s': element %llu is out of range", g->path, key, (unsigned long long)i);
        out[i] = (int32_t)v;
    }
    *n = a->n;
    return 0;
}

int gguf_get_arr_f32(const GGUFFile *g, const char *key, float *out, uint64_t cap, uint64_t *n) {
    const GGUFValue *a = need_arr(g, key);
    if (!a) return -1;
    if (a->arr_type != GGUF_TYPE_FLOAT32 && a->arr_type != GGUF_TYPE_FLOAT64)
        return gerr("%s: metadata key '%s' is an array of %s, expected FLOAT32", g->path, key, gguf_type_name(a->arr_type));
    if (a->n > cap)
        return gerr("%s: metadata key '%s' has %llu elements, at most %llu expected", g->path, key,
                    (unsigned long long)a->n, (unsigned long long)cap);
    for (uint64_t i = 0; i < a->n; i++) {
        double d;
        gguf_arr_f64(a, i, &d);
        out[i] = (float)d;
    }
    *n = a->n;
    return 0;
}

// ---------------------------------------------------------------------------- tensor data

int gguf_tensor_supported(const GGUFFile *g, const GGUFTensor *t) {
    const GQType *ty = gq_type(t->type);
    if (!ty || !ty->supported)
        return gerr("%s: tensor '%s' has ggml type %s (%u), which is not supported (supported: F32 F16 BF16 Q8_0 Q4_0 "
                    "Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K)", g->path, t->name, gq_type_name(t->type), t->type);
    return 0;
}

int gguf_tensor_rows(const GGUFFile *g, const GGUFTensor *t, int64_t row0, int64_t nrows, float *out) {
    if (gguf_tensor_supported(g, t)) return -1;
    int64_t K = t->ne[0], total = K ? (int64_t)(t->nelem / (uint64_t)K) : 0;
    if (row0 < 0 || nrows < 0 || row0 > total || nrows > total - row0)
        return gerr("%s: tensor '%s': rows [%lld, %lld) out of range (%lld rows)", g->path, t->name, (long long)row0,
                    (long long)(row0 + nrows), (long long)total);
    size_t rb = gq_row_bytes(t->type, K);
    for (int64_t r = 0; r < nrows; r++)
        if (gq_dequant(t->type, (const uint8_t *)t->data + (size_t)(row0 + r) * rb, out + r * K, K))
            return gerr("%s: tensor '%s': cannot dequantise", g->path, t->name);
    return 0;
}

// ---------------------------------------------------------------------------- split models

// the split.no / split.count of g: 0 (*count = 0 when g is not split) or -1
static int split_keys(const GGUFFile *g, uint32_t *no, uint32_t *count) {
    *no = 0;
    *count = 0;
    if (!gguf_find_kv(g, "split.count")) {
        if (gguf_find_kv(g, "split.no")) return gerr("%s: split.no without split.count", g->path);
        return 0;
    }
    if (gguf_get_u32(g, "split.count", count) || gguf_get_u32(g, "split.no", no)) return -1;
    if (*count < 1 || *count > GGUF_MAX_SPLITS)
        return gerr("%s: split.count %u out of range (1..%d)", g->path, *count, GGUF_MAX_SPLITS);
    if (*no >= *count) return gerr("%s: split.no %u is not below split.count %u", g->path, *no, *count);
    return 0;
}

int gguf_open_split(GGUFSplit *s, const char *path) {
    memset(s, 0, sizeof *s);
    GGUFFile first;
    if (gguf_open(&first, path)) return -1;
    uint32_t no, count;
    if (split_keys(&first, &no, &count)) { gguf_close(&first); return -1; }
    if (count <= 1) {
        if (!(s->f = malloc(sizeof *s->f))) { gguf_close(&first); return gerr("%s: out of memory", path); }
        s->f[0] = first;
        s->n = 1;
        return 0;
    }
    // PREFIX-%05d-of-%05d.gguf (gguf-py SHARD_NAME_FORMAT, llama.cpp llama_split_path)
    size_t len = strlen(path);
    char tail[64];
    snprintf(tail, sizeof tail, "-%05u-of-%05u.gguf", no + 1, count);
    size_t tl = strlen(tail);
    if (len < tl || strcmp(path + len - tl, tail) != 0) {
        gguf_close(&first);
        return gerr("%s: shard %u of %u, but the name does not end in %s", path, no + 1, count, tail);
    }
    s->f = calloc(count, sizeof *s->f);
    char *p = malloc(len + 1);
    if (!s->f || !p) { free(p); gguf_close(&first); gguf_close_split(s); return gerr("%s: out of memory", path); }
    s->n = (int)count;
    s->f[no] = first;
    int rc = 0;
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        if (i == no) continue;
        memcpy(p, path, len - tl);
        snprintf(p + len - tl, tl + 1, "-%05u-of-%05u.gguf", i + 1, count);
        uint32_t ino, icount;
        if (gguf_open(&s->f[i], p) || split_keys(&s->f[i], &ino, &icount)) rc = -1;
        else if (icount != count || ino != i)
            rc = gerr("%s: split.no %u / split.count %u, expected %u / %u", p, ino, icount, i, count);
    }
    free(p);
    // every tensor once; split.tensors.count of the first shard = their number
    uint64_t total = 0;
    for (int i = 0; i < s->n && rc == 0; i++) {
        total += s->f[i].n_tensors;
        for (uint64_t t = 0; t < s->f[i].n_tensors && rc == 0; t++)
            for (int k = 0; k < i && rc == 0; k++)
                if (gguf_find_tensor(&s->f[k], s->f[i].tensors[t].name))
                    rc = gerr("%s: tensor '%.100s' is also in %s", s->f[i].path, s->f[i].tensors[t].name, s->f[k].path);
    }
    uint64_t want;
    if (rc == 0 && gguf_find_kv(&s->f[0], "split.tensors.count")) {
        if (gguf_get_u64(&s->f[0], "split.tensors.count", &want)) rc = -1;
        else if (want != total)
            rc = gerr("%s: split.tensors.count is %llu, the %d shards hold %llu tensors", s->f[0].path,
                      (unsigned long long)want, s->n, (unsigned long long)total);
    }
    if (rc) {
        char keep[sizeof gguf_errbuf];
        memcpy(keep, gguf_errbuf, sizeof keep);
        gguf_close_split(s);
        memcpy(gguf_errbuf, keep, sizeof keep);
    }
    return rc;
}

void gguf_close_split(GGUFSplit *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) gguf_close(&s->f[i]);
    free(s->f);
    memset(s, 0, sizeof *s);
}

const GGUFTensor *gguf_split_find_tensor(const GGUFSplit *s, const char *name, const GGUFFile **file) {
    for (int i = 0; i < s->n; i++) {
        const GGUFTensor *t = gguf_find_tensor(&s->f[i], name);
        if (t) {
            if (file) *file = &s->f[i];
            return t;
        }
    }
    return NULL;
}
