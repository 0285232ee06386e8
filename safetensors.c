// SPDX-License-Identifier: MIT
// safetensors.c - read-only safetensors parsing over an mmap'd file; every header field is validated.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]}, __metadata__},
// then the data block; offsets are relative to the data block.
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const STensor *)a)->name, ((const STensor *)b)->name);
}

// the header may hold at most this many bytes (the safetensors library's MAX_HEADER_SIZE; real checkpoints: ~2 MB
// for 18k tensors)
#define SF_MAX_HEADER 100000000u

// data_offsets of tensor idx, for the contiguity check
typedef struct {
    double b, e; // [begin, end) in the data block
    int idx;     // index into SFile.t
} SpanIdx;

// order by (begin, end) as the library's sort_by(data_offsets), then by index (a stable order for equal spans)
static int cmp_span(const void *x, const void *y) {
    const SpanIdx *a = x, *b = y;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    if (a->e != b->e) return a->e < b->e ? -1 : 1;
    return a->idx - b->idx;
}

int sf_parse(SFile *f, const uint8_t *buf, size_t size, const char *name) {
    memset(f, 0, sizeof *f);
    f->map = buf;
    f->size = size;
    if (size < 8) return glm_err("%s: not a safetensors file (only %zu bytes)", name, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > SF_MAX_HEADER || hlen > size - 8)
        return glm_err("%s: safetensors header length %llu exceeds the file size %zu", name, (unsigned long long)hlen,
                       size);
    if (hlen < 2) return glm_err("%s: safetensors header is empty", name);
    size_t data_start = 8 + (size_t)hlen, data_size = size - data_start;
    // read_metadata: str::from_utf8, then serde_json::from_str (one JSON value, only JSON whitespace after it; both
    // checked after the entries below)
    const char *hend = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)hlen, &hend, 0);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return glm_err("%s: safetensors header is not a JSON object", name);
    }
    int n = 0;
    for (cJSON *it = root->child; it; it = it->next) n++;
    f->t = calloc(n ? n : 1, sizeof(STensor));
    SpanIdx *spans = calloc(n ? n : 1, sizeof(SpanIdx));
    if (!f->t || !spans) {
        free(spans);
        cJSON_Delete(root);
        return glm_err("%s: out of memory", name);
    }
    int k = 0, rc = 0;
    for (cJSON *it = root->child; it && rc == 0; it = it->next) {
        const char *tn = it->string ? it->string : "";
        if (strcmp(tn, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) { rc = glm_err("%s: __metadata__ is not an object", name); break; }
            if (f->metadata) { rc = glm_err("%s: __metadata__ appears twice", name); break; }
            // HashMap<String, String>: every value a string
            for (cJSON *m = it->child; m && !rc; m = m->next)
                if (!cJSON_IsString(m))
                    rc = glm_err("%s: __metadata__ '%s' is not a string", name, m->string ? m->string : "");
            if (rc) break;
            f->metadata = cJSON_PrintUnformatted(it);
            continue;
        }
        if (!cJSON_IsObject(it)) { rc = glm_err("%s: tensor '%s': entry is not an object", name, tn); break; }
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
            rc = glm_err("%s: tensor '%s': needs dtype, shape and data_offsets", name, tn);
            break;
        }
        int d = dtype_from_name(dt->valuestring);
        if (d < 0) { rc = glm_err("%s: tensor '%s': unsupported dtype %s", name, tn, dt->valuestring); break; }
        STensor *t = &f->t[k];
        t->dtype = (DType)d;
        t->ndim = cJSON_GetArraySize(sh);
        if (t->ndim > ST_MAX_DIMS) { rc = glm_err("%s: tensor '%s': %d dims is too many", name, tn, t->ndim); break; }
        size_t numel = 1;
        int i = 0;
        for (cJSON *e = sh->child; e; e = e->next, i++) {
            double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
            if (v < 0 || v > 9.0e15 || v != (double)(int64_t)v) {
                rc = glm_err("%s: tensor '%s': invalid shape", name, tn);
                break;
            }
            t->shape[i] = (int64_t)v;
            if (size_mul(numel, (size_t)t->shape[i], &numel)) {
                rc = glm_err("%s: tensor '%s': shape overflows", name, tn);
                break;
            }
        }
        if (rc) break;
        double b = cJSON_IsNumber(of->child) ? of->child->valuedouble : -1;
        double e = cJSON_IsNumber(of->child->next) ? of->child->next->valuedouble : -1;
        // integers in [0, 2^53) checked in double before any conversion (a cast of an out-of-range double is UB)
        if (!(b >= 0 && e >= b && e <= 9.0e15) || b != floor(b) || e != floor(e)) {
            rc = glm_err("%s: tensor '%s': invalid data_offsets", name, tn);
            break;
        }
        if (e > (double)data_size) {
            rc = glm_err("%s: tensor '%s': data_offsets [%.0f, %.0f] past the end of the file (data block %zu bytes)",
                         name, tn, b, e, data_size);
            break;
        }
        size_t nbytes;
        if (size_mul(numel, (size_t)dtype_size[d], &nbytes) || (double)nbytes != e - b) {
            rc = glm_err("%s: tensor '%s': data_offsets span %.0f bytes but %s%s needs %zu", name, tn, e - b,
                         dt->valuestring, " shape", numel * (size_t)dtype_size[d]);
            break;
        }
        spans[k] = (SpanIdx){b, e, k};
        t->data = buf + data_start + (size_t)b;
        t->nbytes = nbytes;
        t->name = strdup(tn);
        if (!t->name) { rc = glm_err("%s: out of memory", name); break; }
        k++;
    }
    cJSON_Delete(root);
    f->n = k;
    if (!rc && !utf8_valid(buf + 8, (size_t)hlen)) rc = glm_err("%s: safetensors header is not valid UTF-8", name);
    for (const char *q = hend; !rc && q && q < (const char *)buf + 8 + hlen; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
            rc = glm_err("%s: safetensors header has bytes after its JSON object (at header offset %zu; only "
                         "whitespace may follow)", name, (size_t)(q - (const char *)buf - 8));
    if (!rc) {
        // Metadata::validate: ordered by data_offsets, each tensor starts where the previous one ends (no gap, no
        // overlap), and the last one ends at the end of the file (MetadataIncompleteBuffer otherwise)
        qsort(spans, (size_t)k, sizeof *spans, cmp_span);
        double at = 0;
        for (int i = 0; i < k && !rc; i++) {
            if (spans[i].b != at)
                rc = glm_err("%s: tensor '%s': data_offsets [%.0f, %.0f] %s %.0f (tensors must be contiguous, without "
                             "gaps or overlaps, from offset 0)", name, f->t[spans[i].idx].name, spans[i].b, spans[i].e,
                             i == 0 ? "do not start at" : spans[i].b < at ? "overlap the previous tensor, which ends at"
                                                                          : "leave a gap after the previous tensor's end at",
                             at);
            at = spans[i].e;
        }
        if (!rc && at != (double)data_size)
            rc = glm_err("%s: the tensors cover %.0f bytes but the data block holds %zu (the last tensor must end at the "
                         "end of the file)%s%s%s", name, at, data_size, k ? ": after tensor '" : "",
                         k ? f->t[spans[k - 1].idx].name : "", k ? "'" : "");
    }
    free(spans);
    if (rc) { sf_close(f); return rc; }
    qsort(f->t, f->n, sizeof(STensor), cmp_tensor);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->t[i - 1].name, f->t[i].name) == 0) {
            glm_err("%s: tensor '%s' appears twice", name, f->t[i].name);
            sf_close(f);
            return -1;
        }
    return 0;
}

int sf_open(SFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    // a shard is a file found in a folder: regular only, checked before the open, which never blocks (O_NONBLOCK)
    struct stat st;
    if (stat(path, &st) != 0) return glm_err("%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return glm_err("%s: not a regular file", path);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return glm_err("%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return glm_err("%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return glm_err("%s: not a safetensors file (only %zu bytes)", path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return glm_err("%s: mmap failed: %s", path, strerror(errno));
#ifdef MADV_HUGEPAGE
    // pages this mapping reads from disk become 2 MB page-cache folios mapped by one TLB entry each (where the
    // kernel and file system allow; a no-op otherwise): decode streams the weights ~10 % faster than on 4 KB pages
    madvise(map, size, MADV_HUGEPAGE);
#endif
    if (sf_parse(f, map, size, path)) {
        munmap(map, size);
        return -1;
    }
    f->mapped = 1;
    f->path = strdup(path);
    return 0;
}

void sf_close(SFile *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->metadata);
    free(f->path);
    if (f->mapped && f->map) munmap((void *)f->map, f->size);
    memset(f, 0, sizeof *f);
}

const STensor *sf_find(const SFile *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, f->t[mid].name);
        if (c == 0) return &f->t[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}
