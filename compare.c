// SPDX-License-Identifier: MIT
// compare.c - glm4v-compare: compare two tensor dumps (safetensors, .npy, .npz) name by name, in model data-flow order.
//
//   ./glm4v-compare A B [--rtol R] [--atol A] [--names GLOB]... [--rows N]
//
// A tensor passes when max|A-B| <= atol + rtol * max|B| (max|B| over finite values; defaults atol 0, rtol 1e-4).
// Integer/bool tensors must be exactly equal. A NaN or infinity on one side that the other side does not have fails.
// Names are canonicalised to our --dump naming first (HF fixture names accepted):
//   - a leading "input." or "hook." is stripped;
//   - "generate.ids" -> "generated_ids", "generate.scores" -> "generated_logits",
//     "model.visual.merger" -> "image_embeds". ("model.visual" is left alone: in transformers 5.x the module's first
//     output is last_hidden_state = the pre-merger downsample output, the merger output being pooler_output; the
//     fixtures in tests/data/golden show it.) When a file has several names for one canonical name, the one already
//     canonical, else the first by name, is compared and a note printed;
//   - "model.language_model.norm" (HF hook on the final norm) is compared with the other file's highest
//     hidden_states.N when the other file has no model.language_model.norm (HF's last hidden state is that norm).
// Shapes may differ by size-1 dimensions ([1,L] vs [L], [3,1,L] vs [3,L], [N,128,1,1] vs [N,128]): when the element
// counts match and the shapes agree with every size-1 dimension dropped, the tensors are compared element by element.
// Dtypes are converted (F32/F16/BF16/F64, I64/I32/..., compared in double).
// Router top-k outputs "*.mlp.gate.out2" (expert ids) and "*.mlp.gate.out1" (their weights) come in any order per
// row (HF topk(sorted=False)): each row of out2 is sorted by expert id and the same file's out1 row permuted the same
// way (an out1 without an out2 beside it has its rows sorted by decreasing weight) before comparing.
// .npy: one tensor named after the file's basename without its extension. .npz (np.savez / np.savez_compressed):
// one tensor per entry, named after the entry without ".npy". Only little-endian C-order numeric arrays.
// Exit status: 0 all compared tensors pass, 1 a failure / no tensor in common / unreadable file, 2 bad usage.
#include "dump.h"
#include "fileio.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

// ----------------------------------------------------------------------------
// tensors of one input file

typedef struct {
    char *orig;                  // name in the file
    char *name;                  // canonical name (our --dump naming)
    DType dtype;                 //
    int ndim;                    //
    int64_t shape[ST_MAX_DIMS];  //
    size_t numel;                // product of shape
    const uint8_t *data;         // [numel * dtype_size], possibly unaligned (read with memcpy)
    uint8_t *owned;              // buffer behind data when we own it (inflated npz entry, re-ordered top-k rows)
    int alias_of;                // -1, or the index of the entry this one duplicates (same canonical name)
} Ent;

typedef struct {
    const char *path;            // as given on the command line
    SFile sf;                    // safetensors input (mmap'd)
    int is_sf;                   //
    uint8_t *buf;                // whole file for .npy / .npz
    Ent *e;                      // [n]
    int n, cap;                  //
} TFile;

static void tfile_close(TFile *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->e[i].orig);
        free(f->e[i].name);
        free(f->e[i].owned);
    }
    free(f->e);
    free(f->buf);
    if (f->is_sf) sf_close(&f->sf);
    memset(f, 0, sizeof *f);
}

// HF fixture name -> our dump name (malloc'd)
static char *canon_name(const char *orig) {
    const char *s = orig;
    if (strncmp(s, "input.", 6) == 0) s += 6;
    else if (strncmp(s, "hook.", 5) == 0) s += 5;
    if (strcmp(s, "generate.ids") == 0) s = "generated_ids";
    else if (strcmp(s, "generate.scores") == 0) s = "generated_logits";
    else if (strcmp(s, "model.visual.merger") == 0) s = "image_embeds"; // not "model.visual": see the top of the file
    return xstrdup(s);
}

// append an entry (name and shape checked by the caller); takes ownership of owned
static Ent *tfile_add(TFile *f, const char *orig, DType dt, int ndim, const int64_t *shape, const uint8_t *data,
                      uint8_t *owned) {
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        Ent *ne = realloc(f->e, (size_t)f->cap * sizeof *ne);
        if (!ne) glm_die(EXIT_INPUT, "out of memory");
        f->e = ne;
    }
    Ent *e = &f->e[f->n++];
    memset(e, 0, sizeof *e);
    e->orig = xstrdup(orig);
    e->name = canon_name(orig);
    e->dtype = dt;
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        e->numel *= (size_t)shape[i]; // overflow already ruled out by the parsers
    }
    e->data = data;
    e->owned = owned;
    e->alias_of = -1;
    return e;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

// ----------------------------------------------------------------------------
// .npy (numpy.lib.format): "\x93NUMPY" major minor, header length (u16 for v1, u32 for v2/v3), a Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces and '\n', then the raw data.

typedef struct {
    const char *p, *end;  // cursor over the header text
} Lex;

static void lex_ws(Lex *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

// a quoted Python string ('...' or "...") without escapes -> out (NUL-terminated, at most cap-1 bytes)
static int lex_str(Lex *l, char *out, size_t cap) {
    lex_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return -1;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end) return -1;
    l->p++;
    out[n] = 0;
    return 0;
}

static int lex_char(Lex *l, char c) {
    lex_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 0;
    }
    return -1;
}

// numpy descr '<f4' -> dtype; -1 + glm_err
static int npy_dtype(const char *descr, const char *where) {
    static const struct { const char *code; DType dt; } codes[] = {
        {"f4", DT_F32}, {"f8", DT_F64}, {"f2", DT_F16}, {"i8", DT_I64}, {"i4", DT_I32},
        {"i2", DT_I16}, {"i1", DT_I8},  {"u1", DT_U8},  {"b1", DT_BOOL},
    };
    char order = descr[0];
    const char *code = descr + 1;
    if (order != '<' && order != '|' && order != '=' && order != '>')
        return glm_err("%s: .npy dtype '%s' not supported", where, descr);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i].code) == 0) {
            if (order == '>' && dtype_size[codes[i].dt] > 1)
                return glm_err("%s: big-endian .npy data ('%s') not supported; save it little-endian", where, descr);
            return (int)codes[i].dt;
        }
    return glm_err("%s: .npy dtype '%s' not supported (need f4/f8/f2/i8/i4/i2/i1/u1/b1)", where, descr);
}

// parse one .npy image p[0..n) into an entry named name; data stays a view into p unless owned is given
static int npy_parse(TFile *f, const uint8_t *p, size_t n, const char *name, uint8_t *owned, const char *where) {
    if (n < 10 || memcmp(p, "\x93NUMPY", 6) != 0) {
        free(owned);
        return glm_err("%s: not a .npy array (bad magic)", where);
    }
    int major = p[6];
    size_t hstart, hlen;
    if (major == 1) {
        hstart = 10;
        hlen = rd16(p + 8);
    } else if (major == 2 || major == 3) {
        if (n < 12) {
            free(owned);
            return glm_err("%s: truncated .npy header", where);
        }
        hstart = 12;
        hlen = rd32(p + 8);
    } else {
        free(owned);
        return glm_err("%s: .npy format version %d not supported", where, major);
    }
    if (hlen > n - hstart) {
        free(owned);
        return glm_err("%s: .npy header length %zu runs past the end (%zu bytes)", where, hlen, n);
    }
    // {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
    Lex l = {(const char *)p + hstart, (const char *)p + hstart + hlen};
    char key[32], descr[16] = "";
    int fortran = -1, ndim = -1;
    int64_t shape[ST_MAX_DIMS];
    int bad = lex_char(&l, '{');
    while (!bad) {
        if (lex_char(&l, '}') == 0) break;
        if (lex_str(&l, key, sizeof key) || lex_char(&l, ':')) {
            bad = 1;
            break;
        }
        lex_ws(&l);
        if (strcmp(key, "descr") == 0) {
            if (lex_str(&l, descr, sizeof descr) || !descr[0]) {
                free(owned);
                return glm_err("%s: .npy descr is not a simple dtype string (structured arrays not supported)",
                               where);
            }
        } else if (strcmp(key, "fortran_order") == 0) {
            if (l.end - l.p >= 4 && memcmp(l.p, "True", 4) == 0) fortran = 1, l.p += 4;
            else if (l.end - l.p >= 5 && memcmp(l.p, "False", 5) == 0) fortran = 0, l.p += 5;
            else bad = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (lex_char(&l, '(')) { bad = 1; break; }
            ndim = 0;
            for (;;) {
                lex_ws(&l);
                if (l.p < l.end && *l.p == ')') { l.p++; break; }
                if (l.p >= l.end || *l.p < '0' || *l.p > '9') { bad = 1; break; }
                int64_t v = 0;
                while (l.p < l.end && *l.p >= '0' && *l.p <= '9') {
                    if (v > (INT64_MAX - 9) / 10) { bad = 1; break; }
                    v = v * 10 + (*l.p++ - '0');
                }
                if (bad) break;
                if (l.p < l.end && *l.p == 'L') l.p++; // Python 2 long
                if (ndim == ST_MAX_DIMS) {
                    free(owned);
                    return glm_err("%s: .npy array has more than %d dimensions", where, ST_MAX_DIMS);
                }
                shape[ndim++] = v;
                lex_ws(&l);
                if (l.p < l.end && *l.p == ',') l.p++;
                else if (l.p >= l.end || *l.p != ')') { bad = 1; break; }
            }
        } else bad = 1;
        if (bad) break;
        if (lex_char(&l, ',') == 0) continue;
        if (lex_char(&l, '}') == 0) break;
        bad = 1;
    }
    if (bad || !descr[0] || fortran < 0 || ndim < 0) {
        free(owned);
        return glm_err("%s: malformed .npy header (need {'descr', 'fortran_order', 'shape'})", where);
    }
    int dt = npy_dtype(descr, where);
    if (dt < 0) {
        free(owned);
        return -1;
    }
    size_t numel = 1, nbytes;
    for (int i = 0; i < ndim; i++)
        if (size_mul(numel, (size_t)shape[i], &numel)) {
            free(owned);
            return glm_err("%s: .npy shape overflows", where);
        }
    if (fortran == 1 && ndim > 1 && numel > 1) {
        free(owned);
        return glm_err("%s: Fortran-order .npy arrays not supported; save with np.ascontiguousarray", where);
    }
    if (size_mul(numel, (size_t)dtype_size[dt], &nbytes)) {
        free(owned);
        return glm_err("%s: .npy shape overflows", where);
    }
    size_t data_off = hstart + hlen;
    if (n - data_off != nbytes) {
        free(owned);
        return glm_err("%s: .npy data is %zu bytes but %s shape needs %zu (truncated?)", where, n - data_off, descr,
                       nbytes);
    }
    tfile_add(f, name, (DType)dt, ndim, shape, p + data_off, owned);
    return 0;
}

// ----------------------------------------------------------------------------
// .npz = zip archive of .npy entries (numpy writes stored or deflated entries; local headers carry zip64 extras, so
// sizes are taken from the central directory)

#define ZIP_EOCD 0x06054b50u
#define ZIP64_LOC 0x07064b50u
#define ZIP64_EOCD 0x06064b50u
#define ZIP_CDH 0x02014b50u
#define ZIP_LFH 0x04034b50u
#define DEFLATE_MAX_RATIO 1032u // deflate cannot expand more than ~1032:1

// raw deflate in[0..csize) -> exactly usize bytes (malloc'd into *out)
static int zip_inflate(const uint8_t *in, uint64_t csize, uint64_t usize, uint8_t **out, const char *where) {
    if (usize > csize * DEFLATE_MAX_RATIO + 64 || usize > SIZE_MAX - 1)
        return glm_err("%s: implausible uncompressed size %llu for %llu compressed bytes", where,
                       (unsigned long long)usize, (unsigned long long)csize);
    uint8_t *buf = malloc(usize ? (size_t)usize : 1);
    if (!buf) return glm_err("%s: out of memory inflating %llu bytes", where, (unsigned long long)usize);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) {
        free(buf);
        return glm_err("%s: zlib init failed", where);
    }
    uint64_t in_left = csize, out_left = usize;
    z.next_in = (Bytef *)in;
    z.next_out = buf;
    int zr = Z_OK;
    while (zr == Z_OK) {
        if (z.avail_in == 0) {
            z.avail_in = in_left > UINT32_MAX ? UINT32_MAX : (uInt)in_left;
            in_left -= z.avail_in;
        }
        if (z.avail_out == 0) {
            z.avail_out = out_left > UINT32_MAX ? UINT32_MAX : (uInt)out_left;
            out_left -= z.avail_out;
        }
        uInt ai = z.avail_in, ao = z.avail_out;
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR || (zr == Z_OK && ai == z.avail_in && ao == z.avail_out)) break; // no progress
    }
    int ok = zr == Z_STREAM_END && z.total_out == usize;
    inflateEnd(&z);
    if (!ok) {
        free(buf);
        return glm_err("%s: corrupt deflate data", where);
    }
    *out = buf;
    return 0;
}

static int npz_parse(TFile *f, const uint8_t *p, size_t n) {
    const char *path = f->path;
    // end of central directory: 22 bytes + comment (<= 65535) at the end of the file
    if (n < 22) return glm_err("%s: not a zip archive (too short)", path);
    size_t eocd = SIZE_MAX;
    for (size_t i = n - 22 + 1; i-- > 0 && n - i <= 22 + 65535;)
        if (rd32(p + i) == ZIP_EOCD && i + 22 + rd16(p + i + 20) <= n) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX) return glm_err("%s: not a zip archive (no end-of-central-directory record)", path);
    uint64_t nent = rd16(p + eocd + 10), cdsize = rd32(p + eocd + 12), cdoff = rd32(p + eocd + 16);
    if (rd16(p + eocd + 4) != 0 || rd16(p + eocd + 6) != 0) return glm_err("%s: multi-disk zip not supported", path);
    if (nent == 0xffff || cdsize == 0xffffffffu || cdoff == 0xffffffffu) { // zip64 end records
        if (eocd < 20 || rd32(p + eocd - 20) != ZIP64_LOC) return glm_err("%s: zip64 locator missing", path);
        uint64_t z64 = rd64(p + eocd - 20 + 8);
        if (z64 > n || n - z64 < 56 || rd32(p + z64) != ZIP64_EOCD)
            return glm_err("%s: zip64 end-of-central-directory record invalid", path);
        nent = rd64(p + z64 + 32);
        cdsize = rd64(p + z64 + 40);
        cdoff = rd64(p + z64 + 48);
    }
    if (cdoff > n || cdsize > n - cdoff)
        return glm_err("%s: zip central directory runs past the end of the file", path);
    const uint8_t *cd = p + cdoff, *cd_end = cd + cdsize;
    const uint8_t *q = cd;
    for (uint64_t k = 0; k < nent; k++) {
        if ((size_t)(cd_end - q) < 46 || rd32(q) != ZIP_CDH)
            return glm_err("%s: zip central directory entry %llu is corrupt", path, (unsigned long long)k);
        unsigned flags = rd16(q + 8), method = rd16(q + 10);
        uint32_t crc = rd32(q + 16);
        uint64_t csize = rd32(q + 20), usize = rd32(q + 24), lho = rd32(q + 42);
        size_t nl = rd16(q + 28), xl = rd16(q + 30), cl = rd16(q + 32);
        if ((size_t)(cd_end - q) - 46 < nl + xl + cl)
            return glm_err("%s: zip central directory entry %llu is corrupt", path, (unsigned long long)k);
        const uint8_t *nm = q + 46, *x = nm + nl, *xe = x + xl;
        q = xe + cl;
        // zip64 extended information (id 1): the 0xffffffff fields, in this order
        for (const uint8_t *e = x; xe - e >= 4;) {
            unsigned id = rd16(e), sz = rd16(e + 2);
            if ((size_t)(xe - e) - 4 < sz) break;
            if (id == 1) {
                const uint8_t *v = e + 4, *ve = v + sz;
                if (usize == 0xffffffffu && ve - v >= 8) usize = rd64(v), v += 8;
                if (csize == 0xffffffffu && ve - v >= 8) csize = rd64(v), v += 8;
                if (lho == 0xffffffffu && ve - v >= 8) lho = rd64(v), v += 8;
            }
            e += 4 + sz;
        }
        char name[512];
        if (nl == 0 || nl >= sizeof name || memchr(nm, 0, nl))
            return glm_err("%s: zip entry %llu has an invalid name", path, (unsigned long long)k);
        memcpy(name, nm, nl);
        name[nl] = 0;
        if (name[nl - 1] == '/') continue; // a directory
        char where[1024];
        snprintf(where, sizeof where, "%s: entry '%s'", path, name);
        if (flags & 1) return glm_err("%s: encrypted zip entries not supported", where);
        if (method != 0 && method != 8)
            return glm_err("%s: zip compression method %u not supported (stored or deflate only)", where, method);
        if (lho > n || n - lho < 30 || rd32(p + lho) != ZIP_LFH)
            return glm_err("%s: zip local header missing or corrupt", where);
        uint64_t data_off = lho + 30 + (uint64_t)rd16(p + lho + 26) + rd16(p + lho + 28);
        if (data_off > n || csize > n - data_off)
            return glm_err("%s: zip entry data runs past the end of the file", where);
        const uint8_t *data = p + data_off;
        uint8_t *owned = NULL;
        if (method == 0) {
            if (csize != usize) return glm_err("%s: stored zip entry sizes disagree", where);
        } else {
            if (zip_inflate(data, csize, usize, &owned, where)) return -1;
            data = owned;
        }
        if (crc32_bytes(data, (size_t)usize) != crc) {
            free(owned);
            return glm_err("%s: zip CRC-32 mismatch (corrupt file)", where);
        }
        if (nl > 4 && strcmp(name + nl - 4, ".npy") == 0) name[nl - 4] = 0; // np.savez adds ".npy"
        if (npy_parse(f, data, (size_t)usize, name, owned, where)) return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// open any supported file (the format is told by its first bytes, not its extension)

static int tfile_open(TFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    struct stat st;
    int pipe_in = strcmp(path, "-") == 0;
    if (!pipe_in && stat(path, &st) != 0) return glm_err("%s: %s", path, strerror(errno));
    if (!pipe_in && !S_ISREG(st.st_mode)) {
        if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) return glm_err("%s: not a regular file or a pipe", path);
        pipe_in = 1;
    }
    uint8_t magic[6] = {0};
    size_t got = 0, len = 0;
    if (pipe_in) { // a pipe (<(cmd), a FIFO, '-' = stdin): read to its end (fileio.h read_input), parsed in memory
        f->buf = (uint8_t *)read_input(path, &len, (size_t)1 << 40);
        if (!f->buf) return -1;
        got = len < sizeof magic ? len : sizeof magic;
        memcpy(magic, f->buf, got);
    } else {
        FILE *fp = fopen(path, "rb");
        if (!fp) return glm_err("%s: %s", path, strerror(errno));
        got = fread(magic, 1, sizeof magic, fp);
        fclose(fp);
    }
    int is_npy = got == 6 && memcmp(magic, "\x93NUMPY", 6) == 0;
    int is_zip = got >= 4 && (memcmp(magic, "PK\x03\x04", 4) == 0 || memcmp(magic, "PK\x05\x06", 4) == 0);
    if (!is_npy && !is_zip) {
        if (pipe_in ? sf_parse(&f->sf, f->buf, len, path) : sf_open(&f->sf, path)) {
            free(f->buf);
            f->buf = NULL;
            return -1;
        }
        f->is_sf = 1;
        for (int i = 0; i < f->sf.n; i++) {
            const STensor *t = &f->sf.t[i];
            tfile_add(f, t->name, t->dtype, t->ndim, t->shape, t->data, NULL);
        }
        return 0;
    }
    if (!pipe_in) f->buf = (uint8_t *)read_file(path, &len, (size_t)1 << 40);
    if (!f->buf) return -1;
    int rc;
    if (is_npy) {
        // tensor name = basename without its extension
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        char *name = xstrdup(b);
        char *dot = strrchr(name, '.');
        if (dot && dot != name) *dot = 0;
        rc = npy_parse(f, f->buf, len, name, NULL, path);
        free(name);
    } else rc = npz_parse(f, f->buf, len);
    if (rc) tfile_close(f);
    return rc;
}

// ----------------------------------------------------------------------------
// element access

static int is_int_dtype(DType d) {
    return d == DT_I64 || d == DT_I32 || d == DT_I16 || d == DT_I8 || d == DT_U8 || d == DT_BOOL;
}

static double ent_get(const Ent *e, size_t i) {
    const uint8_t *p = e->data + i * (size_t)dtype_size[e->dtype];
    switch (e->dtype) {
    case DT_F32: { float v; memcpy(&v, p, 4); return v; }
    case DT_F16: return f16_to_f32(rd16(p));
    case DT_BF16: return bf16_to_f32(rd16(p));
    case DT_F64: { double v; memcpy(&v, p, 8); return v; }
    case DT_I64: return (double)(int64_t)rd64(p);
    case DT_I32: return (int32_t)rd32(p);
    case DT_I16: return (int16_t)rd16(p);
    case DT_I8: return (int8_t)p[0];
    case DT_U8: return p[0];
    case DT_BOOL: return p[0] != 0;
    default: return NAN;
    }
}

static int64_t ent_get_int(const Ent *e, size_t i) {
    const uint8_t *p = e->data + i * (size_t)dtype_size[e->dtype];
    switch (e->dtype) {
    case DT_I64: return (int64_t)rd64(p);
    case DT_I32: return (int32_t)rd32(p);
    case DT_I16: return (int16_t)rd16(p);
    case DT_I8: return (int8_t)p[0];
    case DT_U8: return p[0];
    case DT_BOOL: return p[0] != 0;
    default: return 0;
    }
}

// ----------------------------------------------------------------------------
// per-file preparation: aliases, top-k row order

static int cmp_ent_name(const void *a, const void *b) {
    const Ent *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    int xc = strcmp(x->orig, x->name) == 0, yc = strcmp(y->orig, y->name) == 0; // the canonical spelling first
    if (xc != yc) return yc - xc;
    return strcmp(x->orig, y->orig);
}

static const Ent *find_ent(const TFile *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, f->e[mid].name);
        if (c == 0) {
            while (mid > 0 && strcmp(f->e[mid - 1].name, name) == 0) mid--;
            return &f->e[mid];
        }
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

// sort key for one top-k slot
typedef struct {
    double key;   // expert id, or -weight
    int64_t idx;  // original slot (stable order on ties)
} Slot;

static int cmp_slot(const void *a, const void *b) {
    const Slot *x = a, *y = b;
    int xn = isnan(x->key), yn = isnan(y->key);
    if (xn != yn) return xn - yn;
    if (!xn && x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

// copy of e with the slots of each row of width k reordered by perm (the rows' slot indices)
static void ent_permute(Ent *e, const int64_t *perm, size_t k) {
    size_t es = (size_t)dtype_size[e->dtype], rows = e->numel / k;
    uint8_t *nb = xmalloc(e->numel * es);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < k; j++) memcpy(nb + (r * k + j) * es, e->data + (r * k + perm[r * k + j]) * es, es);
    free(e->owned);
    e->owned = nb;
    e->data = nb;
}

// HF Glm4vMoeTextTopkRouter.forward (transformers 5.x):
//   topk_indices = torch.topk(scores_for_choice, k=self.top_k, dim=-1, sorted=False)[1]
// -> the order within a row is arbitrary: sort each row of ".mlp.gate.out2" by expert id, permute ".mlp.gate.out1" alike
static void canonical_topk_order(TFile *f) {
    for (int i = 0; i < f->n; i++) {
        Ent *w = &f->e[i];
        if (w->alias_of >= 0 || !ends_with(w->name, ".mlp.gate.out1") || w->ndim < 1 || w->numel == 0) continue;
        size_t k = (size_t)w->shape[w->ndim - 1];
        if (k == 0) continue;
        // the ids beside it
        size_t pl = strlen(w->name);
        char *idn = xstrdup(w->name);
        idn[pl - 1] = '2';
        Ent *ids = (Ent *)find_ent(f, idn);
        free(idn);
        int have_ids = ids && ids->ndim >= 1 && ids->numel == w->numel && (size_t)ids->shape[ids->ndim - 1] == k;
        Slot *s = xmalloc(k * sizeof *s);
        int64_t *perm = xmalloc(w->numel * sizeof *perm);
        for (size_t r = 0; r < w->numel / k; r++) {
            for (size_t j = 0; j < k; j++) {
                s[j].key = have_ids ? ent_get(ids, r * k + j) : -ent_get(w, r * k + j);
                s[j].idx = (int64_t)j;
            }
            qsort(s, k, sizeof *s, cmp_slot);
            for (size_t j = 0; j < k; j++) perm[r * k + j] = s[j].idx;
        }
        ent_permute(w, perm, k);
        if (have_ids) ent_permute(ids, perm, k);
        free(perm);
        free(s);
    }
    // ids without weights: sort their rows by id
    for (int i = 0; i < f->n; i++) {
        Ent *ids = &f->e[i];
        if (ids->alias_of >= 0 || !ends_with(ids->name, ".mlp.gate.out2") || ids->ndim < 1 || ids->numel == 0) continue;
        size_t k = (size_t)ids->shape[ids->ndim - 1];
        char *wn = xstrdup(ids->name);
        wn[strlen(wn) - 1] = '1';
        const Ent *w = find_ent(f, wn);
        free(wn);
        if (k == 0 || (w && w->ndim >= 1 && w->numel == ids->numel && (size_t)w->shape[w->ndim - 1] == k)) continue;
        Slot *s = xmalloc(k * sizeof *s);
        int64_t *perm = xmalloc(ids->numel * sizeof *perm);
        for (size_t r = 0; r < ids->numel / k; r++) {
            for (size_t j = 0; j < k; j++) s[j].key = ent_get(ids, r * k + j), s[j].idx = (int64_t)j;
            qsort(s, k, sizeof *s, cmp_slot);
            for (size_t j = 0; j < k; j++) perm[r * k + j] = s[j].idx;
        }
        ent_permute(ids, perm, k);
        free(perm);
        free(s);
    }
}

// sort by canonical name, mark duplicates (two file names for one canonical name) and canonicalise top-k order
static void tfile_prepare(TFile *f) {
    if (f->n > 1) qsort(f->e, (size_t)f->n, sizeof *f->e, cmp_ent_name); // f->e is NULL for an empty file
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->e[i].name, f->e[i - 1].name) == 0)
            f->e[i].alias_of = f->e[i - 1].alias_of >= 0 ? f->e[i - 1].alias_of : i - 1;
    canonical_topk_order(f);
}

// ----------------------------------------------------------------------------
// layer order: the model's data flow (inputs, vision tower, text layers, logits, generation)

typedef struct {
    int group;   // coarse stage
    long a;      // block / layer index
    int sub;     // position inside the stage / layer
} Rank;

// "123" + rest: the number (at most 9 digits) and *rest; -1 when s does not start with a digit
static long parse_index(const char *s, const char **rest) {
    long v = 0;
    int nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 9) v = v * 10 + (*s++ - '0'), nd++;
    if (nd == 0 || (*s >= '0' && *s <= '9')) return -1;
    *rest = s;
    return v;
}

static Rank rank_of(const char *n) {
    static const char *inputs[] = {"input_ids",           "attention_mask", "mm_token_type_ids", "position_ids",
                                   "pixel_values",        "pixel_values_videos", "image_grid_thw", "video_grid_thw"};
    static const char *final[] = {"model.language_model.norm", "logits", "generated_ids", "generated_logits"};
    const char *rest;
    long i;
    for (int k = 0; k < (int)(sizeof inputs / sizeof *inputs); k++)
        if (strcmp(n, inputs[k]) == 0) return (Rank){0, 0, k};
    if (strcmp(n, "model.visual.patch_embed") == 0) return (Rank){10, 0, 0};
    if (strcmp(n, "model.visual.embeddings") == 0) return (Rank){10, 0, 1};
    if (strncmp(n, "model.visual.blocks.", 20) == 0 && (i = parse_index(n + 20, &rest)) >= 0 &&
        (*rest == 0 || *rest == '.'))
        return (Rank){11, i, *rest ? 0 : 1}; // a block's submodules before the block's output
    if (strcmp(n, "model.visual.post_layernorm") == 0) return (Rank){12, 0, 0};
    if (strcmp(n, "model.visual.downsample") == 0) return (Rank){12, 0, 1};
    if (strncmp(n, "model.visual", 12) == 0 && (n[12] == 0 || n[12] == '.')) return (Rank){12, 0, 2};
    if (strcmp(n, "image_embeds") == 0) return (Rank){12, 0, 3};
    if (strcmp(n, "model.language_model.embed_tokens") == 0) return (Rank){20, 0, 0};
    if (strcmp(n, "hidden_states.0") == 0) return (Rank){20, 0, 1};
    if (strncmp(n, "hidden_states.", 14) == 0 && (i = parse_index(n + 14, &rest)) >= 1 && *rest == 0)
        return (Rank){21, i - 1, 11}; // output of layer i-1
    if (strncmp(n, "model.language_model.layers.", 28) == 0 && (i = parse_index(n + 28, &rest)) >= 0 &&
        (*rest == 0 || *rest == '.')) {
        static const struct { const char *sfx; int prefix; int sub; } sub[] = {
            {".input_layernorm", 0, 0},          {".self_attn.", 1, 1},  {".self_attn", 0, 2},
            {".post_self_attn_layernorm", 0, 3}, {".post_attention_layernorm", 0, 4},
            {".mlp.gate", 0, 5},                 {".mlp.gate.", 1, 5},   {".mlp.", 1, 6},
            {".mlp", 0, 7},                      {".post_mlp_layernorm", 0, 8}, {"", 0, 10},
        };
        for (int k = 0; k < (int)(sizeof sub / sizeof *sub); k++)
            if (sub[k].prefix ? strncmp(rest, sub[k].sfx, strlen(sub[k].sfx)) == 0 : strcmp(rest, sub[k].sfx) == 0)
                return (Rank){21, i, sub[k].sub};
        return (Rank){21, i, 9};
    }
    for (int k = 0; k < (int)(sizeof final / sizeof *final); k++)
        if (strcmp(n, final[k]) == 0) return (Rank){30, 0, k};
    if (strncmp(n, "generate.", 9) == 0) return (Rank){30, 0, 4};
    return (Rank){40, 0, 0}; // unknown names last, by name
}

// ----------------------------------------------------------------------------
// comparing one pair

enum { ST_PASS, ST_FAIL, ST_ONLY_A, ST_ONLY_B };

typedef struct {
    const char *name;     // display (canonical) name
    const Ent *a, *b;     // either is NULL for a tensor present in one file only
    char note[160];       // e.g. "vs B hidden_states.3"
    Rank rank;            // sort key (data-flow order)
    int status;           // ST_*
    char shape[96];       // "[L,H]"
    double max_abs;       // max|A-B|
    double max_rel;       // max|A-B| / max|B|
    double nmse;          // sum (A-B)^2 / sum B^2
    char first_diff[96];  // multi-dim index of the first element that differs at all, or "-"
    char why[320];        // failure detail
    int shape_bad;        // shapes cannot be matched (no metrics)
} Row;

static void fmt_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}

// flat index -> "[i,j,k]" in shape
static void fmt_index(char *out, size_t cap, int ndim, const int64_t *shape, size_t flat) {
    int64_t idx[ST_MAX_DIMS];
    for (int i = ndim - 1; i >= 0; i--) {
        idx[i] = shape[i] ? (int64_t)(flat % (size_t)shape[i]) : 0;
        flat = shape[i] ? flat / (size_t)shape[i] : 0;
    }
    fmt_shape(out, cap, ndim, idx);
}

// shape without its size-1 dimensions
static int squeeze(const Ent *e, int64_t *out) {
    int n = 0;
    for (int i = 0; i < e->ndim; i++)
        if (e->shape[i] != 1) out[n++] = e->shape[i];
    return n;
}

static int64_t cmp_rows = -1; // --rows N: only the first N entries of each tensor's first dimension (-1: all)

static void compare_pair(Row *r, double atol, double rtol) {
    const Ent *a = r->a, *b = r->b;
    // shape: equal, or equal after dropping size-1 dims (then shown and indexed in the shorter form)
    const Ent *shown = a->ndim <= b->ndim ? a : b;
    int same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++) same = a->shape[i] == b->shape[i];
    if (!same) {
        int64_t sa[ST_MAX_DIMS], sb[ST_MAX_DIMS];
        int na = squeeze(a, sa), nb = squeeze(b, sb);
        int ok = a->numel == b->numel && na == nb;
        for (int i = 0; ok && i < na; i++) ok = sa[i] == sb[i];
        if (!ok) {
            char s1[96], s2[96];
            fmt_shape(s1, sizeof s1, a->ndim, a->shape);
            fmt_shape(s2, sizeof s2, b->ndim, b->shape);
            fmt_shape(r->shape, sizeof r->shape, a->ndim, a->shape);
            r->status = ST_FAIL;
            r->shape_bad = 1;
            snprintf(r->why, sizeof r->why, "shape mismatch: A %s vs B %s", s1, s2);
            return;
        }
    }
    fmt_shape(r->shape, sizeof r->shape, shown->ndim, shown->shape);
    int ia = is_int_dtype(a->dtype), ib = is_int_dtype(b->dtype), exact = ia || ib;
    size_t n = a->numel, first_diff = SIZE_MAX, first_nf = SIZE_MAX; // first non-finite mismatch
    if (cmp_rows >= 0 && shown->ndim >= 1 && shown->shape[0] > cmp_rows) // (a prefix of the rows: one block)
        n = (size_t)cmp_rows * (a->numel / (size_t)shown->shape[0]);
    double max_abs = 0, max_b = 0, sum_d2 = 0, sum_b2 = 0;
    for (size_t i = 0; i < n; i++) {
        double va = ent_get(a, i), vb = ent_get(b, i);
        int differ = ia && ib ? ent_get_int(a, i) != ent_get_int(b, i) : !(va == vb || (isnan(va) && isnan(vb)));
        if (isfinite(vb)) {
            if (fabs(vb) > max_b) max_b = fabs(vb);
            sum_b2 += vb * vb;
        }
        if (!differ) continue;
        if (first_diff == SIZE_MAX) first_diff = i;
        double d = fabs(va - vb);
        if (!isfinite(d)) { // NaN or infinity on one side only
            if (first_nf == SIZE_MAX) first_nf = i;
            continue;
        }
        if (d > max_abs) max_abs = d;
        sum_d2 += d * d;
        if (ia && ib && d == 0) max_abs = fmax(max_abs, 1); // int64 values beyond 2^53 that differ
    }
    double tol = exact ? 0 : atol + rtol * max_b;
    r->max_abs = first_nf != SIZE_MAX ? INFINITY : max_abs;
    r->max_rel = r->max_abs == 0 ? 0 : max_b > 0 ? r->max_abs / max_b : INFINITY;
    r->nmse = sum_d2 == 0 && first_nf == SIZE_MAX ? 0 : sum_b2 > 0 && first_nf == SIZE_MAX ? sum_d2 / sum_b2 : INFINITY;
    if (first_diff == SIZE_MAX) snprintf(r->first_diff, sizeof r->first_diff, "-");
    else fmt_index(r->first_diff, sizeof r->first_diff, shown->ndim, shown->shape, first_diff);
    int pass = first_nf == SIZE_MAX && (exact ? first_diff == SIZE_MAX : max_abs <= tol);
    r->status = pass ? ST_PASS : ST_FAIL;
    if (pass) return;
    // the first element over the tolerance
    size_t bad = first_nf;
    if (bad == SIZE_MAX)
        for (size_t i = 0; i < n; i++) {
            double va = ent_get(a, i), vb = ent_get(b, i);
            if (exact ? (ia && ib ? ent_get_int(a, i) != ent_get_int(b, i) : va != vb) : fabs(va - vb) > tol) {
                bad = i;
                break;
            }
        }
    char idx[96];
    fmt_index(idx, sizeof idx, shown->ndim, shown->shape, bad);
    if (exact)
        snprintf(r->why, sizeof r->why, "first_bad %s A=%.17g B=%.17g (integers must match exactly)", idx,
                 ent_get(a, bad), ent_get(b, bad));
    else
        snprintf(r->why, sizeof r->why, "first_bad %s A=%.9g B=%.9g tol %.2e", idx, ent_get(a, bad), ent_get(b, bad),
                 tol);
}

// ----------------------------------------------------------------------------
// CLI

static int cmp_row(const void *x, const void *y) {
    const Row *a = x, *b = y;
    if (a->rank.group != b->rank.group) return a->rank.group < b->rank.group ? -1 : 1;
    if (a->rank.a != b->rank.a) return a->rank.a < b->rank.a ? -1 : 1;
    if (a->rank.sub != b->rank.sub) return a->rank.sub < b->rank.sub ? -1 : 1;
    return strcmp(a->name, b->name);
}

static void usage(FILE *o) {
    fprintf(o,
            "usage: glm4v-compare A B [--rtol R] [--atol A] [--names GLOB]... [--rows N]\n"
            "  A, B: .safetensors, .npy or .npz files (told apart by their content)\n"
            "  a tensor passes when max|A-B| <= atol + rtol * max|B|   (defaults: --atol 0 --rtol 1e-4)\n"
            "  integer tensors must match exactly; NaN/inf on one side only fails\n"
            "  --names GLOB: only names matching the fnmatch glob (canonical names; repeatable)\n"
            "  --rows N: only the first N rows (first dimension) of each tensor (max|B| over them too)\n"
            "  HF fixture names are mapped to ours (input./hook. stripped, generate.ids -> generated_ids,\n"
            "  generate.scores -> generated_logits, model.visual.merger -> image_embeds, model.language_model.norm\n"
            "  vs the last hidden_states.N); size-1 dims are dropped to match shapes; router top-k rows\n"
            "  (*.mlp.gate.out2 ids, .out1 weights) are compared as sets (sorted by expert id)\n"
            "  exit: 0 all compared tensors pass, 1 a failure or unreadable file, 2 bad usage\n");
}

static double parse_tol(const char *flag, const char *v) {
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || errno || !isfinite(x) || x < 0) {
        usage(stderr);
        glm_die(EXIT_USAGE, "%s needs a non-negative number, got '%s'", flag, v ? v : "");
    }
    return x;
}

// --rows N: a whole number of rows >= 1 (0 compared nothing and passed; 1.5 and 1e30 were cast to an integer)
static int64_t parse_rows(const char *flag, const char *v) {
    char *end;
    errno = 0;
    long long x = v && *v >= '0' && *v <= '9' ? strtoll(v, &end, 10) : -1;
    if (x < 1 || *end || errno) {
        usage(stderr);
        glm_die(EXIT_USAGE, "%s needs a whole number of rows >= 1, got '%s'", flag, v ? v : "");
    }
    return (int64_t)x;
}

static int matches(const char *name, const char **globs, int nglobs) {
    if (nglobs == 0) return 1;
    for (int i = 0; i < nglobs; i++)
        if (fnmatch(globs[i], name, 0) == 0) return 1;
    return 0;
}

// the highest hidden_states.N of a file (for pairing with model.language_model.norm)
static const Ent *last_hidden(const TFile *f) {
    const Ent *best = NULL;
    long bi = -1;
    for (int i = 0; i < f->n; i++) {
        const char *rest;
        long k;
        if (f->e[i].alias_of < 0 && strncmp(f->e[i].name, "hidden_states.", 14) == 0 &&
            (k = parse_index(f->e[i].name + 14, &rest)) > bi && *rest == 0)
            bi = k, best = &f->e[i];
    }
    return best;
}

int main(int argc, char **argv) {
    glm_prog = "glm4v-compare";
    const char *pos[2];
    int npos = 0, nglobs = 0;
    const char **globs = xcalloc((size_t)argc, sizeof *globs);
    double atol = 0, rtol = 1e-4;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *eq = NULL;
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout);
            free(globs);
            return 0;
        }
        if (strncmp(s, "--", 2) == 0 && (eq = strchr(s, '='))) { // --flag=value
            char flag[32];
            size_t fl = (size_t)(eq - s);
            if (fl >= sizeof flag) fl = sizeof flag - 1;
            memcpy(flag, s, fl);
            flag[fl] = 0;
            if (strcmp(flag, "--rtol") == 0) rtol = parse_tol("--rtol", eq + 1);
            else if (strcmp(flag, "--atol") == 0) atol = parse_tol("--atol", eq + 1);
            else if (strcmp(flag, "--names") == 0) globs[nglobs++] = eq + 1;
            else if (strcmp(flag, "--rows") == 0) cmp_rows = parse_rows("--rows", eq + 1);
            else {
                usage(stderr);
                glm_die(EXIT_USAGE, "unknown option %s", s);
            }
        } else if (strcmp(s, "--rtol") == 0) rtol = parse_tol(s, i + 1 < argc ? argv[++i] : NULL);
        else if (strcmp(s, "--atol") == 0) atol = parse_tol(s, i + 1 < argc ? argv[++i] : NULL);
        else if (strcmp(s, "--rows") == 0) cmp_rows = parse_rows(s, i + 1 < argc ? argv[++i] : NULL);
        else if (strcmp(s, "--names") == 0) {
            if (i + 1 >= argc) {
                usage(stderr);
                glm_die(EXIT_USAGE, "--names needs a glob");
            }
            globs[nglobs++] = argv[++i];
        } else if (s[0] == '-' && s[1]) {
            usage(stderr);
            glm_die(EXIT_USAGE, "unknown option %s", s);
        } else {
            if (npos == 2) {
                usage(stderr);
                glm_die(EXIT_USAGE, "more than two files given ('%s')", s);
            }
            pos[npos++] = s;
        }
    }
    if (npos != 2) {
        usage(stderr);
        glm_die(EXIT_USAGE, "need two files to compare");
    }

    TFile fa, fb;
    if (tfile_open(&fa, pos[0])) {
        free(globs);
        glm_die_err(EXIT_INPUT);
    }
    if (tfile_open(&fb, pos[1])) {
        tfile_close(&fa);
        free(globs);
        glm_die_err(EXIT_INPUT);
    }
    tfile_prepare(&fa);
    tfile_prepare(&fb);
    printf("A: %s (%d tensors)\nB: %s (%d tensors)\n", pos[0], fa.n, pos[1], fb.n);
    printf("pass: max|A-B| <= %g + %g * max|B|; integer tensors exact\n", atol, rtol);
    for (int s = 0; s < 2; s++) {
        const TFile *f = s ? &fb : &fa;
        for (int i = 0; i < f->n; i++)
            if (f->e[i].alias_of >= 0 && matches(f->e[i].name, globs, nglobs))
                printf("note: %c: '%s' is another name for %s; '%s' is compared\n", s ? 'B' : 'A', f->e[i].orig,
                       f->e[i].name, f->e[f->e[i].alias_of].orig);
    }

    // pair the tensors by canonical name
    Row *rows = xcalloc((size_t)(fa.n + fb.n + 1), sizeof *rows);
    int nr = 0;
    for (int s = 0; s < 2; s++) {
        const TFile *f = s ? &fb : &fa, *g = s ? &fa : &fb;
        for (int i = 0; i < f->n; i++) {
            const Ent *e = &f->e[i], *o = find_ent(g, e->name);
            if (e->alias_of >= 0 || (s == 1 && o)) continue; // pairs are made from A's side
            Row *r = &rows[nr];
            memset(r, 0, sizeof *r);
            r->name = e->name;
            r->a = s ? o : e;
            r->b = s ? e : o;
            if (!o && strcmp(e->name, "model.language_model.norm") == 0 && (o = last_hidden(g))) {
                // HF output_hidden_states: the last hidden state is the final norm's output
                r->a = s ? o : e;
                r->b = s ? e : o;
                snprintf(r->note, sizeof r->note, "  (vs %c %s)", s ? 'A' : 'B', o->orig);
            }
            if (!matches(r->name, globs, nglobs)) continue;
            r->rank = rank_of(r->name);
            r->status = !r->b ? ST_ONLY_A : !r->a ? ST_ONLY_B : ST_PASS;
            nr++;
        }
    }
    qsort(rows, (size_t)nr, sizeof *rows, cmp_row);
    int ncmp = 0, nfail = 0, nonly[2] = {0, 0}, wname = 4, wshape = 2;
    const Row *first_fail = NULL;
    for (int i = 0; i < nr; i++) {
        Row *r = &rows[i];
        if (r->status == ST_PASS) {
            compare_pair(r, atol, rtol);
            ncmp++;
            if (r->status == ST_FAIL && !first_fail) first_fail = r;
            nfail += r->status == ST_FAIL;
        } else {
            const Ent *e = r->a ? r->a : r->b;
            fmt_shape(r->shape, sizeof r->shape, e->ndim, e->shape);
            nonly[r->status == ST_ONLY_B]++;
        }
        if ((int)strlen(r->name) > wname) wname = (int)strlen(r->name);
        if ((int)strlen(r->shape) > wshape) wshape = (int)strlen(r->shape);
    }
    if (wname > 60) wname = 60;
    for (int i = 0; i < nr; i++) {
        const Row *r = &rows[i];
        if (r->status == ST_ONLY_A || r->status == ST_ONLY_B) {
            const Ent *e = r->a ? r->a : r->b;
            printf("%-6s  %-*s  %-*s  %s%s%s\n", r->status == ST_ONLY_A ? "A-only" : "B-only", wname, r->name, wshape,
                   r->shape, dtype_name[e->dtype], strcmp(e->orig, e->name) ? "  " : "",
                   strcmp(e->orig, e->name) ? e->orig : "");
            continue;
        }
        if (r->shape_bad) {
            printf("%-6s  %-*s  %-*s  %s\n", "FAIL", wname, r->name, wshape, r->shape, r->why);
            continue;
        }
        printf("%-6s  %-*s  %-*s  max_abs %-7.1e  max_rel %-7.1e  nmse %-7.1e  first_diff %s%s%s%s\n",
               r->status == ST_PASS ? "PASS" : "FAIL", wname, r->name, wshape, r->shape, r->max_abs, r->max_rel,
               r->nmse, r->first_diff, r->note, r->why[0] ? "  " : "", r->why);
    }
    printf("%d compared: %d passed, %d failed; %d only in A, %d only in B\n", ncmp, ncmp - nfail, nfail, nonly[0],
           nonly[1]);
    int rc = 0;
    if (first_fail) {
        printf("first divergence: %s\n", first_fail->name);
        rc = EXIT_INPUT;
    } else if (ncmp == 0) {
        printf("no tensors in common%s\n", nglobs ? " (matching --names)" : "");
        rc = EXIT_INPUT;
    }
    free(rows);
    free(globs);
    tfile_close(&fa);
    tfile_close(&fb);
    return rc;
}
