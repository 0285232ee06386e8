// SPDX-License-Identifier: MIT
// dump.c - the --dump writer: collects named tensors and writes one safetensors file, deterministically and atomically.
// Layout (same as the safetensors Python package writes): u64 little-endian header length N, N bytes of JSON
//   {"__metadata__":{key:value,...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}
// with tensors (and metadata keys) sorted by name, no whitespace except the trailing spaces that pad 8 + N to a
// multiple of 8 (so the data block starts 8-byte aligned), then the tensors' bytes back to back in that order.
// __metadata__ holds the caller's keys plus "crc32.<name>" = zlib CRC-32 of each tensor's bytes as 8 hex digits.
#include "dump.h"
#include "fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

void dump_init(Dump *d) { memset(d, 0, sizeof *d); }

void dump_free(Dump *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->t[i].name);
        free(d->t[i].data);
    }
    for (int i = 0; i < d->nmeta; i++) {
        free(d->mkeys[i]);
        free(d->mvals[i]);
    }
    free(d->t);
    free(d->mkeys);
    free(d->mvals);
    memset(d, 0, sizeof *d);
}

// copy a tensor into the dump; a tensor of the same name is replaced
void dump_add(Dump *d, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    if (ndim < 0 || ndim > ST_MAX_DIMS || (int)dt < 0 || dt >= DT_COUNT)
        glm_die(EXIT_INPUT, "dump_add: tensor '%s': bad dtype or %d dims", name, ndim);
    size_t numel = 1, nbytes;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || size_mul(numel, (size_t)shape[i], &numel))
            glm_die(EXIT_INPUT, "dump_add: tensor '%s': invalid shape", name);
    if (size_mul(numel, (size_t)dtype_size[dt], &nbytes)) glm_die(EXIT_INPUT, "dump_add: tensor '%s' too large", name);
    DumpTensor *t = NULL;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->t[i].name, name) == 0) {
            t = &d->t[i];
            free(t->data);
            break;
        }
    if (!t) {
        if (d->n == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 16;
            DumpTensor *nt = realloc(d->t, (size_t)d->cap * sizeof *nt);
            if (!nt) glm_die(EXIT_INPUT, "out of memory");
            d->t = nt;
        }
        t = &d->t[d->n++];
        t->name = xstrdup(name);
    }
    t->dtype = dt;
    t->ndim = ndim;
    memset(t->shape, 0, sizeof t->shape);
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    t->data = xmalloc(nbytes);
    if (nbytes) memcpy(t->data, data, nbytes);
}

// a TapFn over a Dump (ctx): rows (along dim 0) are appended to the tensor of the same name, so prefill chunks
// concatenate into one tensor
void dump_tap(void *ctx, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    Dump *d = ctx;
    for (int i = 0; i < d->n; i++) {
        DumpTensor *t = &d->t[i];
        if (strcmp(t->name, name) != 0) continue;
        size_t add = (size_t)dtype_size[dt];
        for (int k = 0; k < ndim; k++) add *= (size_t)shape[k];
        void *nd = realloc(t->data, t->nbytes + add);
        if (!nd) glm_die(EXIT_INPUT, "out of memory (--dump)");
        memcpy((char *)nd + t->nbytes, data, add);
        t->data = nd;
        t->nbytes += add;
        t->shape[0] += shape[0];
        return;
    }
    dump_add(d, name, dt, ndim, shape, data);
}

// add a string key/value to __metadata__ (replaces the value of an existing key)
void dump_meta(Dump *d, const char *key, const char *value) {
    for (int i = 0; i < d->nmeta; i++)
        if (strcmp(d->mkeys[i], key) == 0) {
            free(d->mvals[i]);
            d->mvals[i] = xstrdup(value);
            return;
        }
    if (d->nmeta == d->capmeta) {
        d->capmeta = d->capmeta ? 2 * d->capmeta : 16;
        char **k = realloc(d->mkeys, (size_t)d->capmeta * sizeof *k);
        if (!k) glm_die(EXIT_INPUT, "out of memory");
        d->mkeys = k;
        char **v = realloc(d->mvals, (size_t)d->capmeta * sizeof *v);
        if (!v) glm_die(EXIT_INPUT, "out of memory");
        d->mvals = v;
    }
    d->mkeys[d->nmeta] = xstrdup(key);
    d->mvals[d->nmeta] = xstrdup(value);
    d->nmeta++;
}

// zlib's CRC-32 (the one in PNG/zip/gzip) of n bytes
uint32_t crc32_bytes(const void *p, size_t n) {
    const Bytef *b = p;
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n; // zlib takes uInt lengths
        c = crc32(c, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

// growable text buffer for the header JSON
typedef struct {
    char *s;    // [cap]
    size_t len, cap;
} Str;

static void str_put(Str *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) glm_die(EXIT_INPUT, "out of memory");
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void str_puts(Str *b, const char *s) { str_put(b, s, strlen(s)); }

// append s as a JSON string literal (quotes, backslashes and control bytes escaped; other bytes as they are)
static void str_json(Str *b, const char *s) {
    str_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') {
            e[0] = '\\';
            e[1] = (char)*p;
            str_put(b, e, 2);
        } else if (*p < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", *p);
            str_put(b, e, 6);
        } else str_put(b, (const char *)p, 1);
    }
    str_put(b, "\"", 1);
}

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// sort helpers: indices ordered by tensor name / metadata key
static const Dump *sort_dump;
static int cmp_tensor_idx(const void *a, const void *b) {
    return strcmp(sort_dump->t[*(const int *)a].name, sort_dump->t[*(const int *)b].name);
}

// build the header: {"__metadata__":{...},"name":{...},...} padded with spaces so 8 + len is a multiple of 8
static void build_header(const Dump *d, const int *order, Str *h) {
    // metadata = caller keys + crc32.<name>, sorted by key ("key\0value" pairs sorted by key)
    int nm = d->nmeta + d->n;
    char **kv = xcalloc((size_t)(nm ? nm : 1), sizeof *kv);
    int k = 0;
    for (int i = 0; i < d->nmeta; i++) {
        int crckey = 0; // a caller's "crc32.<tensor>" key is superseded by ours
        if (strncmp(d->mkeys[i], "crc32.", 6) == 0)
            for (int j = 0; j < d->n && !crckey; j++) crckey = strcmp(d->mkeys[i] + 6, d->t[j].name) == 0;
        if (crckey) continue;
        size_t kl = strlen(d->mkeys[i]), vl = strlen(d->mvals[i]);
        kv[k] = xmalloc(kl + vl + 2);
        memcpy(kv[k], d->mkeys[i], kl + 1);
        memcpy(kv[k] + kl + 1, d->mvals[i], vl + 1);
        k++;
    }
    for (int i = 0; i < d->n; i++) {
        size_t kl = 6 + strlen(d->t[i].name);
        kv[k] = xmalloc(kl + 10);
        snprintf(kv[k], kl + 1, "crc32.%s", d->t[i].name);
        snprintf(kv[k] + kl + 1, 9, "%08x", crc32_bytes(d->t[i].data, d->t[i].nbytes));
        k++;
    }
    qsort(kv, (size_t)k, sizeof *kv, cmp_str_ptr); // strcmp stops at the key's NUL: sorts by key
    str_puts(h, "{\"__metadata__\":{");
    for (int i = 0; i < k; i++) {
        if (i) str_puts(h, ",");
        str_json(h, kv[i]);
        str_puts(h, ":");
        str_json(h, kv[i] + strlen(kv[i]) + 1);
        free(kv[i]);
    }
    free(kv);
    str_puts(h, "}");
    // tensors in name order, data back to back in the same order
    size_t off = 0;
    for (int i = 0; i < d->n; i++) {
        const DumpTensor *t = &d->t[order[i]];
        char num[64];
        str_puts(h, ",");
        str_json(h, t->name);
        str_puts(h, ":{\"dtype\":\"");
        str_puts(h, dtype_name[t->dtype]);
        str_puts(h, "\",\"shape\":[");
        for (int j = 0; j < t->ndim; j++) {
            snprintf(num, sizeof num, "%s%lld", j ? "," : "", (long long)t->shape[j]);
            str_puts(h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        str_puts(h, num);
        off += t->nbytes;
    }
    str_puts(h, "}");
    while ((8 + h->len) % 8) str_puts(h, " "); // the format allows trailing whitespace in the header
}

// write all of buf or fail
static int write_all(FILE *f, const void *buf, size_t n) { return n == 0 || fwrite(buf, 1, n, f) == n ? 0 : -1; }

int dump_write(const Dump *d, const char *path) {
    int *order = xmalloc((size_t)(d->n ? d->n : 1) * sizeof *order);
    for (int i = 0; i < d->n; i++) order[i] = i;
    sort_dump = d;
    qsort(order, (size_t)d->n, sizeof *order, cmp_tensor_idx);
    for (int i = 1; i < d->n; i++) // dump_add keeps names unique; a repeated name would be an invalid file
        if (strcmp(d->t[order[i - 1]].name, d->t[order[i]].name) == 0) {
            glm_err("%s: tensor '%s' added twice", path, d->t[order[i]].name);
            free(order);
            return -1;
        }
    Str h = {0};
    build_header(d, order, &h);

    // fileio.h's output rule: a file is replaced atomically, a device / FIFO / our stdout is written in place
    OutFile out;
    int rc = 0;
    if (output_open(&out, path)) {
        rc = -1;
        goto done;
    }
    uint8_t len8[8];
    uint64_t hl = h.len;
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(hl >> (8 * i)); // u64 little-endian header length
    int werr = write_all(out.f, len8, 8) || write_all(out.f, h.s, h.len);
    for (int i = 0; i < d->n && !werr; i++) werr = write_all(out.f, d->t[order[i]].data, d->t[order[i]].nbytes);
    if (werr) {
        rc = glm_err("%s: write failed: %s", path, strerror(errno));
        output_abort(&out);
        goto done;
    }
    rc = output_commit(&out);
done:
    free(h.s);
    free(order);
    return rc;
}
