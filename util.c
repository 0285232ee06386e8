// SPDX-License-Identifier: MIT
// util.c - the ground (base.h): element types and f16 conversion, errors, checked allocation and size arithmetic,
// whole-file reads (inside-folder files and command-line inputs), output files (fileio.h), taps.
#include "base.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

_Thread_local char glm_errmsg[1024];

// ---------------------------------------------------------------------------- element types

const char *dtype_name[DT_COUNT] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3",
                                    "Q8", "Q4", "GGML"};
const int dtype_size[DT_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1, 1, 1, 1, 1};

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

const char *glm_prog = "glm4v";

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
    fprintf(stderr, "%s: error: %s\n", glm_prog, msg);
    fflush(stderr);
    exit(code);
}

_Noreturn void glm_die_err(int code) { glm_die(code, "%s", glm_errmsg[0] ? glm_errmsg : "unknown error"); }

_Noreturn void glm_usage_vdie(const char *cmd, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (cmd) glm_die(EXIT_USAGE, "%s: %s (see glm4v %s --help)", cmd, msg, cmd);
    glm_die(EXIT_USAGE, "%s (see --help)", msg);
}

// glm_usage_vdie with its arguments
_Noreturn static void usage_die(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    glm_usage_vdie(cmd, fmt, ap);
}

long glm_flag_long(const char *cmd, const char *flag, const char *s, long lo, long hi) {
    if (!s) usage_die(cmd, "%s needs a value", flag);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        usage_die(cmd, "%s: '%s' is not an integer in [%ld, %ld]", flag, s, lo, hi);
    return v;
}

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

size_t utf8_invalid_at(const void *str, size_t n) {
    const unsigned char *s = str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        int k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (k < 0 || i + k >= n + (k == 0)) return i;
        if (k == 0) {
            i++;
            continue;
        }
        uint32_t cp = c & (0x3F >> k);
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += (size_t)k + 1;
    }
    return n;
}

int utf8_valid(const void *s, size_t n) { return utf8_invalid_at(s, n) == n; }

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

int path_present(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int path_kind(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            return glm_err("%s: dangling symbolic link", path);
        return glm_err("%s: %s", path, strerror(errno));
    }
    return S_ISREG(st.st_mode) ? FT_REGULAR : S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) ? FT_STREAM : FT_OTHER;
}

// the kind of a non-regular file in words
static const char *kind_words(mode_t m) {
    return S_ISDIR(m) ? "a folder" : S_ISFIFO(m) ? "a named pipe (FIFO)" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

char *read_fd_all(int fd, const char *name, size_t *len, size_t max_bytes) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        glm_err("%s: out of memory", name);
        return NULL;
    }
    for (;;) {
        if (cap - n < 2) { // room for one more byte and the NUL; the last growth stops at max_bytes + 2
            size_t nc = cap <= (max_bytes + 2) / 2 ? cap * 2 : max_bytes + 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                glm_err("%s: out of memory", name);
                return NULL;
            }
            buf = nb, cap = nc;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            glm_err("%s: read failed: %s", name, strerror(e));
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n > max_bytes) {
            free(buf);
            glm_err("%s: larger than the limit of %zu bytes", name, max_bytes);
            return NULL;
        }
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

char *read_file(const char *path, size_t *len, size_t max_bytes) {
    // stat first: a FIFO or device is refused before any open (opening a FIFO blocks until a writer comes)
    struct stat st, fst;
    if (stat(path, &st) != 0) {
        glm_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        glm_err("%s: %s, not a regular file", path, kind_words(st.st_mode));
        return NULL;
    }
    // O_NONBLOCK: should the path have been swapped for a FIFO since the stat, the open still returns at once
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        glm_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
        close(fd);
        glm_err("%s: not a regular file", path);
        return NULL;
    }
    if ((uint64_t)fst.st_size > max_bytes) {
        close(fd);
        glm_err("%s: file too large (%lld bytes, limit %zu)", path, (long long)fst.st_size, max_bytes);
        return NULL;
    }
    size_t n = (size_t)fst.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        glm_err("%s: out of memory", path);
        return NULL;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        glm_err("%s: short read", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

char *read_input(const char *path, size_t *len, size_t max_bytes) {
    if (strcmp(path, "-") == 0) return read_fd_all(0, "stdin", len, max_bytes);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) glm_err("%s: dangling symbolic link", path);
        else glm_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISREG(st.st_mode)) return read_file(path, len, max_bytes);
    if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
        glm_err("%s: %s, not a file or a pipe", path, kind_words(st.st_mode));
        return NULL;
    }
    // a pipe the user named (-f <(cmd), a FIFO, /dev/stdin): blocking open and read to the end, as cat does
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        glm_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = read_fd_all(fd, path, len, max_bytes);
    close(fd);
    return buf;
}

// ---------------------------------------------------------------------------- outputs

// 1 when st is the file behind one of our own stdout / stderr (/dev/stdout, /proc/self/fd/2, ...): fd is set
static int std_stream_of(const struct stat *st, int *fd) {
    for (int k = 1; k <= 2; k++) {
        struct stat s;
        if (fstat(k, &s) == 0 && s.st_dev == st->st_dev && s.st_ino == st->st_ino && s.st_rdev == st->st_rdev) {
            *fd = k;
            return 1;
        }
    }
    return 0;
}

// the folder part of path ("." when none); malloc'd
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    if (slash == path) return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

// where an output goes: 1 = atomic replace of *target (malloc'd), 2 = direct write (std fd in *stdfd, or -1 to open
// path), -1 = refused (glm_errmsg)
static int output_resolve(const char *path, const char *flag, char **target, int *stdfd) {
    struct stat st, lst;
    *target = NULL, *stdfd = -1;
    const char *fl = flag ? flag : "output", *sep = flag ? " " : ": ";
    if (!*path) return glm_err("%s: empty path", fl);
    if (stat(path, &st) != 0) {
        int e = errno;
        if (e == ENOENT && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
            return glm_err("%s%s%s: dangling symbolic link (refused: its target would be created)", fl, sep, path);
        if (e != ENOENT) return glm_err("%s%s%s: %s", fl, sep, path, strerror(e));
        // a new file: its folder must exist and be writable
        char *dir = dir_of(path);
        int rc = 0;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = glm_err("%s%s%s: folder '%s' does not exist", fl, sep, path, dir);
        else if (access(dir, W_OK) != 0) rc = glm_err("%s%s%s: folder '%s' is not writable", fl, sep, path, dir);
        free(dir);
        if (rc) return rc;
        *target = xstrdup(path);
        return 1;
    }
    // /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: our own stream, written at its current offset (a regular
    // file that merely is our stdout under its own name is replaced as any file)
    int std_name = !strncmp(path, "/dev/std", 8) || !strncmp(path, "/dev/fd/", 8) || !strncmp(path, "/proc/", 6);
    if (std_stream_of(&st, stdfd) && (std_name || !S_ISREG(st.st_mode))) return 2;
    *stdfd = -1;
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        // checked now, not after the run: a device or FIFO we may not open for writing
        if (access(path, W_OK) != 0) return glm_err("%s%s%s: not writable (%s)", fl, sep, path, strerror(errno));
        return 2;
    }
    if (!S_ISREG(st.st_mode))
        return glm_err("%s%s%s: is %s (refused: only a file, a character device or a pipe can be written)", fl, sep,
                       path, kind_words(st.st_mode));
    // a regular file, maybe through symlinks: the file itself is replaced, the links stay
    char *real = NULL;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        real = realpath(path, NULL);
        if (!real) return glm_err("%s%s%s: cannot resolve the symbolic link: %s", fl, sep, path, strerror(errno));
    } else real = xstrdup(path);
    char *dir = dir_of(real);
    int rc = access(dir, W_OK) != 0 ? glm_err("%s%s%s: folder '%s' is not writable", fl, sep, path, dir) : 0;
    // a file its owner made read-only is not replaced behind its back (the rename would not need its permission)
    if (!rc && access(real, W_OK) != 0)
        rc = glm_err("%s%s%s: the file is not writable (%s; refused rather than replaced)", fl, sep, path, strerror(errno));
    free(dir);
    if (rc) {
        free(real);
        return rc;
    }
    *target = real;
    return 1;
}

int output_check(const char *path, const char *flag) {
    char *target;
    int fd, k = output_resolve(path, flag, &target, &fd);
    free(target);
    return k < 0 ? -1 : 0;
}

int output_open(OutFile *o, const char *path) {
    memset(o, 0, sizeof *o);
    int stdfd, k = output_resolve(path, NULL, &o->target, &stdfd);
    if (k < 0) return -1;
    o->path = xstrdup(path);
    int fd;
    if (k == 2) {
        o->direct = 1;
        // a character device or FIFO is opened as it is (no O_CREAT, no O_TRUNC); our stdout/stderr is shared
        fd = stdfd >= 0 ? dup(stdfd) : open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            glm_err("%s: cannot write: %s", path, strerror(errno));
            output_abort(o);
            return -1;
        }
    } else {
        // TARGET.tmp.<pid> next to the target (same file system: the rename is atomic); O_EXCL: never through a link
        size_t tl = strlen(o->target) + 32;
        o->tmp = xmalloc(tl);
        snprintf(o->tmp, tl, "%s.tmp.%ld", o->target, (long)getpid());
        unlink(o->tmp); // a leftover of an earlier run with our pid
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0) {
            glm_err("%s: cannot write: %s", path, strerror(errno));
            free(o->tmp), o->tmp = NULL;
            output_abort(o);
            return -1;
        }
        glm_atexit_remove(o->tmp); // removed by glm_die while it exists
        struct stat st;
        if (stat(o->target, &st) == 0) fchmod(fd, st.st_mode & 07777); // a replaced file keeps its permissions
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        close(fd);
        glm_err("%s: cannot write: %s", path, strerror(errno));
        output_abort(o);
        return -1;
    }
    return 0;
}

// free the names, forget the temporary file
static void output_release(OutFile *o) {
    if (o->tmp) {
        glm_atexit_forget(o->tmp);
        free(o->tmp);
    }
    free(o->path);
    free(o->target);
    memset(o, 0, sizeof *o);
}

void output_abort(OutFile *o) {
    if (o->f) fclose(o->f);
    o->f = NULL;
    if (o->tmp) unlink(o->tmp);
    output_release(o);
}

int output_commit(OutFile *o) {
    const char *name = o->path ? o->path : "output";
    int err = ferror(o->f) ? (errno ? errno : EIO) : 0;
    if (!err && fflush(o->f) != 0) err = errno;
    if (!err && !o->direct && fsync(fileno(o->f)) != 0) err = errno;
    if (fclose(o->f) != 0 && !err) err = errno;
    o->f = NULL;
    if (err) {
        glm_err("%s: write failed: %s", name, strerror(err));
        output_abort(o);
        return -1;
    }
    if (!o->direct && rename(o->tmp, o->target) != 0) {
        glm_err("%s: cannot rename %s into place: %s", name, o->tmp, strerror(errno));
        output_abort(o);
        return -1;
    }
    output_release(o);
    return 0;
}

void tap(const TapSink *s, const char *name, DType dt, int ndim, const int64_t *shape, const void *data) {
    if (s && s->fn) s->fn(s->ctx, name, dt, ndim, shape, data);
}

// 1 when s ends with suffix, ASCII case ignored
int has_suffix_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

// path of an executable found on $PATH (malloc'd) or NULL
char *find_program(const char *prog) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t plen = len + strlen(prog) + 3;
        char *cand = malloc(plen);
        if (!cand) return NULL;
        snprintf(cand, plen, "%.*s/%s", (int)len, len ? p : ".", prog);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) return cand;
        free(cand);
        p = e ? e + 1 : p + len;
    }
    return NULL;
}
