// SPDX-License-Identifier: MIT
// util.c - the ground (base.h): element types and f16 conversion, errors, checked allocation and size arithmetic,
// whole-file reads, taps.
#include "base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char glm_errmsg[1024];

// ---------------------------------------------------------------------------- element types

const char *dtype_name[DT_COUNT] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3",
                                    "Q8", "Q4"};
const int dtype_size[DT_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 1, 1, 1};

// the DType of a safetensors dtype name, or -1 (never the in-memory Q8 / Q4)
int dtype_from_name(const char *s) {
    for (int i = 0; i < DT_FILE_COUNT; i++)
        if (strcmp(s, dtype_name[i]) == 0) return i;
    return -1;
}

// IEEE binary16 -> binary32, exact (subnormals renormalised)
float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { // subnormal: renormalise
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp - 15 + 127) << 23) | (man << 13);
    union { uint32_t u; float f; } v = {u};
    return v.f;
}

// ---------------------------------------------------------------------------- errors


int glm_err(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(glm_errmsg, sizeof glm_errmsg, fmt, ap);
    va_end(ap);
    return -1;
}

#define MAX_PENDING 8
static char *pending_files[MAX_PENDING]; // temporary output files removed on error

void glm_atexit_remove(const char *path) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (!pending_files[i]) {
            pending_files[i] = strdup(path);
            return;
        }
}

void glm_atexit_forget(const char *path) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_files[i] && strcmp(pending_files[i], path) == 0) {
            free(pending_files[i]);
            pending_files[i] = NULL;
        }
}

static void remove_pending(void) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_files[i]) {
            unlink(pending_files[i]);
            free(pending_files[i]);
            pending_files[i] = NULL;
        }
}

_Noreturn void glm_die(int code, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    remove_pending();
    fflush(stdout);
    // one line: newlines inside the message would break "the last line names the culprit"
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (isatty(2)) fputs("\r\033[K", stderr); // a live progress line is erased, the error stays
    fprintf(stderr, "glm4v: error: %s\n", msg);
    fflush(stderr);
    exit(code);
}

_Noreturn void glm_die_err(int code) { glm_die(code, "%s", glm_errmsg[0] ? glm_errmsg : "unknown error"); }

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) glm_die(EXIT_INPUT, "out of memory allocating %zu bytes", n);
    return p;
}

void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) glm_die(EXIT_INPUT, "out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

int size_mul(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return glm_err("size overflow (%zu x %zu)", a, b);
    *out = a * b;
    return 0;
}

int size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return glm_err("size overflow (%zu + %zu)", a, b);
    *out = a + b;
    return 0;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *read_file(const char *path, size_t *len, size_t max_bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        glm_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        glm_err("%s: not a regular file", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        glm_err("%s: file too large (%lld bytes, limit %zu)", path, (long long)st.st_size, max_bytes);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        glm_err("%s: out of memory", path);
        return NULL;
    }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        glm_err("%s: short read", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

void tap(const TapSink *s, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    if (s && s->fn) s->fn(s->ctx, name, dt, ndim, shape, data);
}
