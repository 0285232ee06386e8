// SPDX-License-Identifier: MIT
// chat_output.c - model raw output -> OpenAI message {content, reasoning_content, tool_calls}, whole and streamed.
// Mirrors vLLM's glm45 tool parser (vllm/tool_parsers/glm4_moe_tool_parser.py: extract_tool_calls, _deserialize =
// json.loads then ast.literal_eval, _is_string_type, json.dumps(..., ensure_ascii=False)) and the GLM-4.5 reasoning
// split (vllm/reasoning/glm4_moe_reasoning_parser.py); the exact rules are in chat_output.h.
#include "chat_output.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char co_err[256];

const char *chat_output_error(void) { return co_err; }

// sets this thread's error message; returns -1
static int co_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(co_err, sizeof co_err, fmt, ap);
    va_end(ap);
    return -1;
}

// status of the value parsers
enum {
    R_OK = 0,     // parsed
    R_SYNTAX = 1, // JSONDecodeError / SyntaxError / ValueError: try the next reader, at the end keep the string
    R_FATAL = 2,  // an exception vLLM does not catch per value: the whole extraction fails (content = the text)
    R_OOM = -1,   // out of memory
};

#define TAG_THINK "<think>"
#define TAG_THINK_END "</think>"
#define TAG_CALL "<tool_call>"
#define TAG_CALL_END "</tool_call>"
#define TAG_KEY "<arg_key>"
#define TAG_KEY_END "</arg_key>"
#define TAG_VAL "<arg_value>"
#define TAG_VAL_END "</arg_value>"
#define INT_MAX_DIGITS 4300 // sys.get_int_max_str_digits(): longer ints fail int() / repr()
#define LIT_MAX_LEVEL 200   // CPython's tokenizer: "too many nested parentheses" beyond
#define LIT_MAX_DEPTH 2984  // deeper ASTs: RecursionError "during ast construction" (CPython 3.11, shallow stack)

// ------------------------------------------------------------------------------------------------ growable buffer

// a growable byte string
typedef struct {
    char *p;    // bytes (NUL-terminated when not oom)
    size_t n;   // bytes used
    size_t cap; // bytes allocated
    int oom;    // 1 after a failed allocation
} Buf;

// appends n bytes
static void buf_add(Buf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) {
            if (cap > ((size_t)-1) / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

// appends one byte
static void buf_addc(Buf *b, char c) { buf_add(b, &c, 1); }

// appends a C string
static void buf_adds(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }

// appends a code point as UTF-8 (surrogates as 3-byte sequences, as CPython's surrogatepass would)
static void buf_addcp(Buf *b, uint32_t c) {
    char u[4];
    if (c < 0x80) u[0] = (char)c, buf_add(b, u, 1);
    else if (c < 0x800) u[0] = (char)(0xC0 | c >> 6), u[1] = (char)(0x80 | (c & 63)), buf_add(b, u, 2);
    else if (c < 0x10000)
        u[0] = (char)(0xE0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 63)), u[2] = (char)(0x80 | (c & 63)),
        buf_add(b, u, 3);
    else
        u[0] = (char)(0xF0 | c >> 18), u[1] = (char)(0x80 | ((c >> 12) & 63)), u[2] = (char)(0x80 | ((c >> 6) & 63)),
        u[3] = (char)(0x80 | (c & 63)), buf_add(b, u, 4);
}

// a malloc'd NUL-terminated copy of s[0..n)
static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

// first occurrence of needle in s[from..n), or (size_t)-1
static size_t find(const char *s, size_t n, size_t from, const char *needle) {
    size_t m = strlen(needle);
    if (from > n || n - from < m) return (size_t)-1;
    const char *p = memmem(s + from, n - from, needle, m);
    return p ? (size_t)(p - s) : (size_t)-1;
}

#define NPOS ((size_t)-1)

// ------------------------------------------------------------------------------------------------ UTF-8, whitespace

// decodes the character at s[0..n): its byte length (1 for an invalid byte, with *cp = 0xFFFD); 0 when s holds only
// the first bytes of a valid sequence (incomplete)
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) return *cp = c, 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07;
    else return *cp = 0xFFFD, 1;
    for (size_t i = 1; i < len; i++) {
        if (i >= n) return 0;
        if ((s[i] & 0xC0) != 0x80) return *cp = 0xFFFD, 1;
        v = v << 6 | (s[i] & 63);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF))) return *cp = 0xFFFD, 1;
    return *cp = v, len;
}

// the largest e' <= e such that s[from..e') does not end inside a UTF-8 character that the next bytes may complete
static size_t utf8_safe_end(const char *s, size_t from, size_t e) {
    for (size_t k = e; k > from && e - k < 4; k--) {
        unsigned c = (unsigned char)s[k - 1];
        if ((c & 0xC0) == 0x80) continue; // continuation byte: look further back
        if (c < 0xC2 || c > 0xF4) return e;
        uint32_t cp;
        return utf8_next((const unsigned char *)s + k - 1, e - (k - 1), &cp) == 0 ? k - 1 : e;
    }
    return e;
}

// Python's str.isspace() for one code point (bidirectional class WS/B/S or category Zs)
static int py_isspace(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

// the `regex` module's \s (Unicode White_Space: as isspace without U+001C..U+001F)
static int re_isspace(uint32_t c) { return py_isspace(c) && !(c >= 0x1C && c <= 0x1F); }

// s.strip() (Python, Unicode whitespace): the stripped range of s[0..n)
static void py_strip(const char *s, size_t n, size_t *a, size_t *b) {
    size_t i = 0, e = n;
    while (i < e) {
        uint32_t cp;
        size_t l = utf8_next((const unsigned char *)s + i, e - i, &cp);
        if (!l || !py_isspace(cp)) break;
        i += l;
    }
    while (e > i) { // the last character: step back over continuation bytes
        size_t k = e - 1;
        while (k > i && ((unsigned char)s[k] & 0xC0) == 0x80 && e - k < 4) k--;
        uint32_t cp;
        size_t l = utf8_next((const unsigned char *)s + k, e - k, &cp);
        if (l != e - k || !py_isspace(cp)) break;
        e = k;
    }
    *a = i, *b = e;
}

// 1 when s[0..n) is empty or whitespace only (`not s.strip()`)
static int py_isblank(const char *s, size_t n) {
    size_t a, b;
    py_strip(s, n, &a, &b);
    return a == b;
}

// ------------------------------------------------------------------------------------------------ Python values

// the Python value types json.loads / ast.literal_eval produce
typedef enum { PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_LIST, PV_TUPLE, PV_DICT, PV_SET, PV_BYTES, PV_COMPLEX, PV_ELLIPSIS } PvType;

// one Python value
typedef struct PyVal {
    PvType t;          // type
    int b;             // BOOL: the value; INT: 1 when negative
    double f;          // FLOAT: the value
    char *s;           // STR: UTF-8 bytes; INT: decimal digits without sign or leading zeros (NULL: over 4300)
    size_t n;          // bytes of s
    struct PyVal **v;  // LIST/TUPLE/SET: items; DICT: values
    struct PyVal **k;  // DICT: keys (parallel to v)
    int nv, cap;       // items used / allocated
} PyVal;

// frees a value tree
static void pv_free(PyVal *p) {
    if (!p) return;
    for (int i = 0; i < p->nv; i++) {
        pv_free(p->v[i]);
        if (p->k) pv_free(p->k[i]);
    }
    free(p->v), free(p->k), free(p->s), free(p);
}

// a new value of type t (NULL when out of memory)
static PyVal *pv_new(PvType t) {
    PyVal *p = calloc(1, sizeof *p);
    if (p) p->t = t;
    return p;
}

// a new STR value holding s[0..n)
static PyVal *pv_str(const char *s, size_t n) {
    PyVal *p = pv_new(PV_STR);
    if (!p) return NULL;
    if (!(p->s = dupn(s, n))) return free(p), NULL;
    p->n = n;
    return p;
}

// appends an item (and key for dicts); -1 when out of memory
static int pv_push(PyVal *p, PyVal *k, PyVal *v) {
    if (p->nv == p->cap) {
        int cap = p->cap ? 2 * p->cap : 4;
        PyVal **nv = realloc(p->v, sizeof *nv * (size_t)cap);
        if (!nv) return -1;
        p->v = nv;
        if (p->t == PV_DICT) {
            PyVal **nk = realloc(p->k, sizeof *nk * (size_t)cap);
            if (!nk) return -1;
            p->k = nk;
        }
        p->cap = cap;
    }
    if (p->t == PV_DICT) p->k[p->nv] = k;
    p->v[p->nv++] = v;
    return 0;
}

// hash(x) raises TypeError (list, dict, set, or a tuple holding one)
static int pv_unhashable(const PyVal *x) {
    if (x->t == PV_LIST || x->t == PV_DICT || x->t == PV_SET) return 1;
    if (x->t == PV_TUPLE)
        for (int i = 0; i < x->nv; i++)
            if (pv_unhashable(x->v[i])) return 1;
    return 0;
}

// the integer digits of a numeric key (bool/int/integral float) in *d (sign in *neg); 0 when not an integer
static int pv_intdigits(const PyVal *x, char *d, size_t cap, int *neg) {
    if (x->t == PV_BOOL) return snprintf(d, cap, "%d", x->b), *neg = 0, 1;
    if (x->t == PV_INT) {
        if (!x->s || x->n + 1 > cap) return 0;
        memcpy(d, x->s, x->n + 1), *neg = x->b;
        return 1;
    }
    if (x->t == PV_FLOAT && isfinite(x->f) && x->f == floor(x->f)) {
        snprintf(d, cap, "%.0f", fabs(x->f));
        *neg = x->f < 0 && strcmp(d, "0") != 0;
        return 1;
    }
    return 0;
}

// Python's == between two hashable dict keys of the kinds that can end up in JSON (others never compare equal here:
// their dict cannot be serialized anyway)
static int pv_key_eq(const PyVal *a, const PyVal *b) {
    if (a->t == PV_STR || b->t == PV_STR) return a->t == b->t && a->n == b->n && !memcmp(a->s, b->s, a->n);
    if (a->t == PV_NONE || b->t == PV_NONE) return a->t == b->t;
    int an = a->t == PV_BOOL || a->t == PV_INT || a->t == PV_FLOAT, bn = b->t == PV_BOOL || b->t == PV_INT || b->t == PV_FLOAT;
    if (!an || !bn) return 0;
    if (a->t == PV_FLOAT && b->t == PV_FLOAT) return a->f == b->f;
    char da[4400], db[4400];
    int na, nb;
    if (!pv_intdigits(a, da, sizeof da, &na) || !pv_intdigits(b, db, sizeof db, &nb)) return 0;
    return na == nb && !strcmp(da, db);
}

// d[k] = v as a Python dict does (an existing equal key keeps its place and object, the value is replaced)
static int pv_dict_set(PyVal *d, PyVal *k, PyVal *v) {
    for (int i = 0; i < d->nv; i++)
        if (pv_key_eq(d->k[i], k)) {
            pv_free(d->v[i]);
            d->v[i] = v;
            pv_free(k);
            return 0;
        }
    if (pv_push(d, k, v)) return pv_free(k), pv_free(v), -1;
    return 0;
}

// ------------------------------------------------------------------------------------------------ integers

// the decimal digits of digs (ASCII digits of base `base`, leading zeros allowed) into an INT value; digits NULL when
// the number has more than INT_MAX_DIGITS decimal digits (repr() would raise)
static int int_from_base(PyVal *x, const char *digs, size_t n, int base) {
    size_t i = 0;
    while (i < n && digs[i] == '0') i++;
    if (i == n) return (x->s = dupn("0", 1)) ? (x->n = 1, 0) : -1;
    if (base == 10) {
        if (n - i > INT_MAX_DIGITS) return x->s = NULL, x->n = 0, 0;
        return (x->s = dupn(digs + i, n - i)) ? (x->n = n - i, 0) : -1;
    }
    int bits = base == 2 ? 1 : base == 8 ? 3 : 4;
    // 2^14287 > 10^4300: a longer number certainly has more than 4300 decimal digits
    if ((n - i) * (size_t)bits > 14300) return x->s = NULL, x->n = 0, 0;
    size_t nl = (n - i) * (size_t)bits / 29 + 2, used = 0;
    uint32_t *limb = calloc(nl, sizeof *limb); // base 1e9, little-endian
    if (!limb) return -1;
    for (; i < n; i++) {
        int d = digs[i] <= '9' ? digs[i] - '0' : (digs[i] | 32) - 'a' + 10;
        uint64_t carry = (uint64_t)d;
        for (size_t j = 0; j < used; j++) {
            uint64_t t = (uint64_t)limb[j] * (uint64_t)base + carry;
            limb[j] = (uint32_t)(t % 1000000000u), carry = t / 1000000000u;
        }
        if (carry) limb[used++] = (uint32_t)carry;
    }
    Buf b = {0};
    char tmp[16];
    snprintf(tmp, sizeof tmp, "%u", used ? limb[used - 1] : 0u);
    buf_adds(&b, tmp);
    for (size_t j = used - 1; j-- > 0;) snprintf(tmp, sizeof tmp, "%09u", limb[j]), buf_adds(&b, tmp);
    free(limb);
    if (b.oom) return free(b.p), -1;
    if (b.n > INT_MAX_DIGITS) return free(b.p), x->s = NULL, x->n = 0, 0;
    x->s = b.p, x->n = b.n;
    return 0;
}

// ------------------------------------------------------------------------------------------------ json.loads

// the state of one json.loads
typedef struct {
    const char *s; // the text
    size_t n;      // its length
    size_t i;      // read position
    int depth;     // nesting of objects/arrays
    int st;        // R_* of the first failure
} Jp;

// skips JSON whitespace ([ \t\n\r]*)
static void jp_ws(Jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

// value of hex digit c, or -1
static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 32) >= 'a' && (c | 32) <= 'f') return (c | 32) - 'a' + 10;
    return -1;
}

// 4 hex digits at s[i..i+4) (needs i+4 <= n), or -1
static long hex4(const char *s, size_t n, size_t i) {
    if (i + 4 > n) return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval((unsigned char)s[i + (size_t)k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

// scanstring (strict): the string whose opening quote is at p->i, decoded into b
static int jp_string(Jp *p, Buf *b) {
    const char *s = p->s;
    size_t i = p->i + 1;
    for (;;) {
        size_t st = i;
        while (i < p->n && s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20) i++;
        buf_add(b, s + st, i - st);
        if (i >= p->n || (unsigned char)s[i] < 0x20) return R_SYNTAX; // unterminated / invalid control character
        if (s[i] == '"') break;
        if (++i >= p->n) return R_SYNTAX;
        char c = s[i];
        const char *map = strchr("\"\\/bfnrt", c);
        if (c && map) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            buf_addc(b, out[map - "\"\\/bfnrt"]);
            i++;
            continue;
        }
        if (c != 'u') return R_SYNTAX;
        long u = hex4(s, p->n, i + 1);
        if (u < 0) return R_SYNTAX;
        i += 5;
        // a high surrogate followed by \uXXXX: joined when that is a low surrogate (bad hex there is an error)
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < p->n && s[i] == '\\' && s[i + 1] == 'u') {
            long u2 = hex4(s, p->n, i + 2);
            if (u2 < 0) return R_SYNTAX;
            if (u2 >= 0xDC00 && u2 <= 0xDFFF) u = 0x10000 + ((u - 0xD800) << 10) + (u2 - 0xDC00), i += 6;
        }
        buf_addcp(b, (uint32_t)u);
    }
    p->i = i + 1;
    return b->oom ? R_OOM : R_OK;
}

static PyVal *jp_value(Jp *p);

// a number at p->i (json's NUMBER_RE: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?); ints over 4300 digits: ValueError
static PyVal *jp_number(Jp *p) {
    const char *s = p->s;
    size_t i = p->i, st = i;
    int is_float = 0;
#define DIG(k) ((k) < p->n && s[k] >= '0' && s[k] <= '9')
    if (i < p->n && s[i] == '-') i++;
    if (DIG(i) && s[i] != '0') {
        while (DIG(i)) i++;
    } else if (i < p->n && s[i] == '0') i++;
    else return p->st = R_SYNTAX, NULL;
    if (i < p->n && s[i] == '.' && DIG(i + 1)) {
        is_float = 1, i += 2;
        while (DIG(i)) i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i + 1;
        if (e < p->n && (s[e] == '+' || s[e] == '-')) e++;
        if (DIG(e)) {
            while (DIG(e)) e++;
            is_float = 1, i = e;
        }
    }
#undef DIG
    p->i = i;
    PyVal *x = pv_new(is_float ? PV_FLOAT : PV_INT);
    if (!x) return p->st = R_OOM, NULL;
    if (is_float) {
        char *t = dupn(s + st, i - st);
        if (!t) return free(x), p->st = R_OOM, NULL;
        x->f = strtod(t, NULL);
        free(t);
        return x;
    }
    int neg = s[st] == '-';
    if (int_from_base(x, s + st + neg, i - st - (size_t)neg, 10)) return free(x), p->st = R_OOM, NULL;
    if (!x->s) return free(x), p->st = R_FATAL, NULL; // int(): "Exceeds the limit (4300 digits)": ValueError
    x->b = neg && strcmp(x->s, "0") != 0;
    return x;
}

// 1 when s[i..] starts with lit
static int starts(const char *s, size_t n, size_t i, const char *lit) {
    size_t m = strlen(lit);
    return i <= n && n - i >= m && !memcmp(s + i, lit, m);
}

// scan_once: one JSON value at p->i (NULL with p->st set on failure)
static PyVal *jp_value(Jp *p) {
    const char *s = p->s;
    if (p->i >= p->n) return p->st = R_SYNTAX, NULL;
    char c = s[p->i];
    PyVal *x;
    if (c == '"') {
        Buf b = {0};
        int r = jp_string(p, &b);
        if (r) return free(b.p), p->st = r, NULL;
        x = pv_str(b.p ? b.p : "", b.n);
        free(b.p);
        return x ? x : (p->st = R_OOM, NULL);
    }
    if (c == '{' || c == '[') {
        if (++p->depth > CHAT_OUTPUT_JSON_MAX_DEPTH) return p->st = R_FATAL, NULL; // RecursionError
        int obj = c == '{';
        if (!(x = pv_new(obj ? PV_DICT : PV_LIST))) return p->st = R_OOM, NULL;
        p->i++;
        jp_ws(p);
        if (p->i < p->n && s[p->i] == (obj ? '}' : ']')) {
            p->i++, p->depth--;
            return x;
        }
        for (;;) {
            PyVal *k = NULL;
            if (obj) {
                if (p->i >= p->n || s[p->i] != '"') return pv_free(x), p->st = R_SYNTAX, NULL;
                if (!(k = jp_value(p))) return pv_free(x), NULL;
                jp_ws(p);
                if (p->i >= p->n || s[p->i] != ':') return pv_free(k), pv_free(x), p->st = R_SYNTAX, NULL;
                p->i++;
                jp_ws(p);
            }
            PyVal *v = jp_value(p);
            if (!v) return pv_free(k), pv_free(x), NULL;
            if (obj ? pv_dict_set(x, k, v) : pv_push(x, NULL, v)) {
                if (!obj) pv_free(v);
                return pv_free(x), p->st = R_OOM, NULL;
            }
            jp_ws(p);
            if (p->i < p->n && s[p->i] == (obj ? '}' : ']')) break;
            if (p->i >= p->n || s[p->i] != ',') return pv_free(x), p->st = R_SYNTAX, NULL;
            p->i++;
            jp_ws(p);
        }
        p->i++, p->depth--;
        return x;
    }
    static const struct { const char *lit; PvType t; int b; double f; } consts[] = {
        {"null", PV_NONE, 0, 0},           {"true", PV_BOOL, 1, 0},          {"false", PV_BOOL, 0, 0},
        {"NaN", PV_FLOAT, 0, NAN},         {"Infinity", PV_FLOAT, 0, INFINITY}, {"-Infinity", PV_FLOAT, 0, -INFINITY},
    };
    for (size_t k = 0; k < sizeof consts / sizeof consts[0]; k++)
        if (starts(s, p->n, p->i, consts[k].lit)) {
            if (!(x = pv_new(consts[k].t))) return p->st = R_OOM, NULL;
            x->b = consts[k].b, x->f = consts[k].f;
            p->i += strlen(consts[k].lit);
            return x;
        }
    return jp_number(p);
}

// json.loads(s): R_OK with *out, R_SYNTAX (JSONDecodeError), R_FATAL (ValueError/RecursionError), R_OOM
static int json_loads(const char *s, size_t n, PyVal **out) {
    Jp p = {.s = s, .n = n};
    jp_ws(&p);
    PyVal *x = jp_value(&p);
    if (!x) return p.st;
    jp_ws(&p);
    if (p.i != n) return pv_free(x), R_SYNTAX; // "Extra data"
    *out = x;
    return R_OK;
}

// ------------------------------------------------------------------------------------------------ ast.literal_eval

// token kinds of the literal subset of Python's tokenizer
typedef enum { T_END, T_NUM, T_STR, T_NAME, T_LP, T_RP, T_LB, T_RB, T_LC, T_RC, T_COMMA, T_COLON, T_PLUS, T_MINUS, T_ELL, T_NL, T_BAD } Tk;

// one token
typedef struct {
    Tk t;        // kind
    PyVal *val;  // T_NUM / T_STR: the value (T_STR bytes: PV_BYTES without content; f-string: NULL)
    int skind;   // T_STR: 0 str, 1 bytes, 2 f-string
    size_t a, e; // T_NAME: the name s[a..e)
} Tok;

// the literal lexer/parser state
typedef struct {
    const char *s; // source
    size_t n;      // its length
    size_t i;      // read position
    int level;     // bracket nesting
    int bad;       // a syntax error (or out of memory: oom)
    int oom;       // out of memory
    int fatal;     // nested too deep for CPython (RecursionError / MemoryError: vLLM's exception path)
    int udepth;    // current depth of unary operators being parsed
    Tok cur;       // the lookahead token (valid when have)
    int have;      // cur holds the next token
} Lx;

// an identifier character as far as the literal subset cares (non-ASCII: outside the subset)
static int ident_char(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80; }

// reads digitpart (digit (["_"] digit)*) of digits valid in `base` at *i into b (underscores dropped); 0 when none
static int lx_digits(Lx *x, size_t *i, int base, Buf *b) {
    size_t j = *i;
    int got = 0;
    for (;;) {
        int c = j < x->n ? (unsigned char)x->s[j] : 0;
        int d = hexval(c);
        if (d >= 0 && d < base) {
            buf_addc(b, (char)c), j++, got = 1;
            continue;
        }
        if (c == '_' && got && j + 1 < x->n) {
            int d2 = hexval((unsigned char)x->s[j + 1]);
            if (d2 >= 0 && d2 < base) {
                j++;
                continue;
            }
        }
        break;
    }
    *i = j;
    return got;
}

// a number token at x->i (Python's integer / floatnumber / imagnumber); 0 or -1 (syntax)
static int lx_number(Lx *x, Tok *t) {
    const char *s = x->s;
    size_t i = x->i;
    Buf b = {0};
    PyVal *v = NULL;
    int base = 10, is_float = 0, is_complex = 0;
    if (s[i] == '0' && i + 1 < x->n && strchr("xXoObB", s[i + 1]) && s[i + 1]) {
        base = (s[i + 1] | 32) == 'x' ? 16 : (s[i + 1] | 32) == 'o' ? 8 : 2;
        i += 2;
        if (i < x->n && s[i] == '_') i++;
        if (!lx_digits(x, &i, base, &b)) goto bad;
    } else {
        int has_int = lx_digits(x, &i, 10, &b);
        if (i < x->n && s[i] == '.') {
            is_float = 1, buf_addc(&b, '.'), i++;
            if (!lx_digits(x, &i, 10, &b) && !has_int) goto bad;
        }
        if (i < x->n && (s[i] == 'e' || s[i] == 'E')) {
            buf_addc(&b, 'e'), i++;
            if (i < x->n && (s[i] == '+' || s[i] == '-')) buf_addc(&b, s[i]), i++;
            if (!lx_digits(x, &i, 10, &b)) goto bad;
            is_float = 1;
        }
        if (i < x->n && (s[i] == 'j' || s[i] == 'J')) is_complex = 1, i++;
    }
    if (i < x->n && ident_char((unsigned char)s[i])) goto bad; // "1x", "0b12", "1e", "1_"
    if (b.oom) goto oom;
    if (is_complex) {
        if (!(v = pv_new(PV_COMPLEX))) goto oom;
    } else if (is_float) {
        if (!(v = pv_new(PV_FLOAT))) goto oom;
        v->f = strtod(b.p, NULL);
    } else {
        if (base == 10 && b.p[0] == '0' && strspn(b.p, "0") != b.n) goto bad; // leading zeros in decimal integer
        size_t nd = b.n - strspn(b.p, "0");
        if (base == 10 && nd > INT_MAX_DIGITS) goto bad; // SyntaxError: exceeds the limit
        if (!(v = pv_new(PV_INT))) goto oom;
        if (int_from_base(v, b.p, b.n, base)) goto oom;
    }
    free(b.p);
    x->i = i;
    t->t = T_NUM, t->val = v;
    return 0;
bad:
    free(b.p);
    x->bad = 1;
    return -1;
oom:
    free(b.p), pv_free(v);
    x->bad = x->oom = 1;
    return -1;
}

// a string literal at x->i whose prefix is s[pa..pe) (quote at x->i); 0 or -1
static int lx_string(Lx *x, size_t pa, size_t pe, Tok *t) {
    const char *s = x->s;
    int raw = 0, bytes = 0, fstr = 0;
    for (size_t k = pa; k < pe; k++) {
        int c = s[k] | 32;
        raw |= c == 'r', bytes |= c == 'b', fstr |= c == 'f';
    }
    char q = s[x->i];
    int triple = x->i + 2 < x->n && s[x->i + 1] == q && s[x->i + 2] == q;
    size_t i = x->i + (triple ? 3 : 1);
    Buf b = {0};
    for (;;) {
        if (i >= x->n) goto bad; // unterminated
        unsigned char c = (unsigned char)s[i];
        if (c == 0) goto bad; // source code cannot contain null bytes
        if (c == (unsigned char)q && (!triple || (i + 2 < x->n && s[i + 1] == q && s[i + 2] == q))) break;
        if (c == '\r' || c == '\n') { // universal newlines: \r\n and \r read as \n
            if (!triple) goto bad;
            i += c == '\r' && i + 1 < x->n && s[i + 1] == '\n' ? 2 : 1;
            buf_addc(&b, '\n');
            continue;
        }
        if (bytes && c >= 0x80) goto bad; // bytes can only contain ASCII literal characters
        if (c != '\\') {
            buf_addc(&b, (char)c), i++;
            continue;
        }
        if (i + 1 >= x->n) goto bad;
        unsigned char e = (unsigned char)s[i + 1];
        if (e == 0) goto bad;
        if (e == '\r' || e == '\n') { // line continuation (raw: kept)
            size_t l = e == '\r' && i + 2 < x->n && s[i + 2] == '\n' ? 2 : 1;
            if (raw) buf_adds(&b, "\\\n");
            i += 1 + l;
            continue;
        }
        if (raw) { // the backslash stays; it only keeps the next character from ending the string
            buf_addc(&b, '\\'), i++;
            if (e == (unsigned char)q || e == '\\') buf_addc(&b, (char)e), i++;
            continue;
        }
        i += 2;
        const char *m = strchr("\\'\"abfnrtv", e);
        if (m) {
            static const char out[] = "\\'\"\a\b\f\n\r\t\v";
            buf_addc(&b, out[m - "\\'\"abfnrtv"]);
        } else if (e >= '0' && e <= '7') {
            uint32_t v = (uint32_t)(e - '0');
            for (int k = 0; k < 2 && i < x->n && s[i] >= '0' && s[i] <= '7'; k++) v = v * 8 + (uint32_t)(s[i++] - '0');
            if (bytes) buf_addc(&b, (char)(v & 0xFF));
            else buf_addcp(&b, v);
        } else if (e == 'x' || (!bytes && (e == 'u' || e == 'U'))) {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int k = 0; k < nd; k++, i++) {
                int h = i < x->n ? hexval((unsigned char)s[i]) : -1;
                if (h < 0) goto bad; // truncated \xXX / \uXXXX / \UXXXXXXXX escape
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF) goto bad; // illegal Unicode character
            if (bytes) buf_addc(&b, (char)v);
            else buf_addcp(&b, v);
        } else if (e == 'N' && !bytes) {
            goto bad; // \N{NAME}: no Unicode name table here (documented: the value stays a string)
        } else {
            buf_addc(&b, '\\'); // an unknown escape keeps its backslash
            i--;
        }
    }
    if (b.oom) goto oom;
    x->i = i + (triple ? 3 : 1);
    t->t = T_STR, t->skind = fstr ? 2 : bytes ? 1 : 0;
    t->val = NULL;
    if (!fstr) {
        t->val = bytes ? pv_new(PV_BYTES) : pv_str(b.p ? b.p : "", b.n);
        if (!t->val) goto oom;
    }
    free(b.p);
    return 0;
bad:
    free(b.p);
    x->bad = 1;
    return -1;
oom:
    free(b.p);
    x->bad = x->oom = 1;
    return -1;
}

// reads the next token into x->cur
static void lx_scan(Lx *x) {
    Tok *t = &x->cur;
    memset(t, 0, sizeof *t);
    const char *s = x->s;
    for (;;) {
        if (x->i >= x->n) {
            t->t = T_END;
            return;
        }
        unsigned char c = (unsigned char)s[x->i];
        if (c == ' ' || c == '\t' || c == '\f') {
            x->i++;
        } else if (c == '#') {
            while (x->i < x->n && s[x->i] != '\n' && s[x->i] != '\r') x->i++;
        } else if (c == '\\') {
            if (x->i + 1 < x->n && (s[x->i + 1] == '\n' || s[x->i + 1] == '\r')) {
                x->i += 2;
                if (s[x->i - 1] == '\r' && x->i < x->n && s[x->i] == '\n') x->i++;
            } else {
                t->t = T_BAD;
                return;
            }
        } else if (c == '\n' || c == '\r') {
            x->i++;
            if (x->level == 0) {
                t->t = T_NL;
                return;
            }
        } else
            break;
    }
    unsigned char c = (unsigned char)s[x->i];
    if ((c >= '0' && c <= '9') || (c == '.' && x->i + 1 < x->n && s[x->i + 1] >= '0' && s[x->i + 1] <= '9')) {
        if (lx_number(x, t)) t->t = T_BAD;
        return;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        size_t a = x->i;
        while (x->i < x->n && ident_char((unsigned char)s[x->i])) {
            if ((unsigned char)s[x->i] >= 0x80) { // a non-ASCII identifier: outside the subset
                t->t = T_BAD;
                return;
            }
            x->i++;
        }
        if (x->i < x->n && (s[x->i] == '\'' || s[x->i] == '"') && x->i - a <= 2) {
            char p[3] = {0};
            for (size_t k = a; k < x->i; k++) p[k - a] = (char)(s[k] | 32);
            static const char *const pre[] = {"r", "u", "b", "f", "br", "rb", "fr", "rf"};
            for (size_t k = 0; k < sizeof pre / sizeof pre[0]; k++)
                if (!strcmp(p, pre[k])) {
                    if (lx_string(x, a, x->i, t)) t->t = T_BAD;
                    return;
                }
        }
        t->t = T_NAME, t->a = a, t->e = x->i;
        return;
    }
    if (c == '\'' || c == '"') {
        if (lx_string(x, x->i, x->i, t)) t->t = T_BAD;
        return;
    }
    if (starts(s, x->n, x->i, "...")) {
        x->i += 3, t->t = T_ELL;
        return;
    }
    static const char ops[] = "()[]{},:+-";
    static const Tk opk[] = {T_LP, T_RP, T_LB, T_RB, T_LC, T_RC, T_COMMA, T_COLON, T_PLUS, T_MINUS};
    const char *o = c ? strchr(ops, c) : NULL;
    if (!o) {
        t->t = T_BAD;
        return;
    }
    t->t = opk[o - ops];
    if (c == '(' || c == '[' || c == '{') {
        if (x->level >= LIT_MAX_LEVEL) { // too many nested parentheses
            t->t = T_BAD;
            return;
        }
        x->level++;
    } else if (c == ')' || c == ']' || c == '}') {
        if (x->level == 0) {
            t->t = T_BAD;
            return;
        }
        x->level--;
    }
    x->i++;
}

// the lookahead token
static Tok *lx_peek(Lx *x) {
    if (!x->have) lx_scan(x), x->have = 1;
    if (x->cur.t == T_BAD) x->bad = 1;
    return &x->cur;
}

// consumes the lookahead token (its value now belongs to the caller)
static void lx_take(Lx *x) { x->have = 0; }

// node kinds of the literal subset of Python's AST
typedef enum { N_CONST, N_TUPLE, N_LIST, N_SET, N_DICT, N_SETCALL, N_UNARY, N_BINOP, N_NOTLIT } NodeT;

// one AST node
typedef struct Node {
    NodeT t;           // kind
    PyVal *val;        // N_CONST: the constant
    struct Node **a;   // elements / dict keys / unary operand (a[0]) / binop operands (a[0], a[1])
    struct Node **b;   // dict values (parallel to a)
    int na, cap;       // elements used / allocated
    int neg;           // N_UNARY: 1 for '-'; N_BINOP: 1 for '-'
    int depth;         // depth of the subtree (a leaf is 1)
} Node;

// frees an AST
static void node_free(Node *n) {
    if (!n) return;
    for (int i = 0; i < n->na; i++) {
        node_free(n->a[i]);
        if (n->b) node_free(n->b[i]);
    }
    free(n->a), free(n->b), pv_free(n->val), free(n);
}

// a new node (NULL and oom set when out of memory)
static Node *node_new(Lx *x, NodeT t) {
    Node *n = calloc(1, sizeof *n);
    if (!n) x->bad = x->oom = 1;
    else n->t = t, n->depth = 1;
    return n;
}

// appends element a (and dict value b); -1 when out of memory (both freed)
static int node_push(Lx *x, Node *n, Node *a, Node *b) {
    if (n->na == n->cap) {
        int cap = n->cap ? 2 * n->cap : 4;
        Node **na = realloc(n->a, sizeof *na * (size_t)cap);
        if (!na) goto oom;
        n->a = na;
        if (n->t == N_DICT) {
            Node **nb = realloc(n->b, sizeof *nb * (size_t)cap);
            if (!nb) goto oom;
            n->b = nb;
        }
        n->cap = cap;
    }
    n->a[n->na] = a;
    if (n->t == N_DICT) n->b[n->na] = b;
    n->na++;
    if (a && a->depth + 1 > n->depth) n->depth = a->depth + 1;
    if (b && b->depth + 1 > n->depth) n->depth = b->depth + 1;
    return 0;
oom:
    node_free(a), node_free(b);
    x->bad = x->oom = 1;
    return -1;
}

static Node *p_expr(Lx *x);

// a comma-separated list of expressions into n up to the closing token `close` (trailing comma allowed); dict: key:val
static Node *p_items(Lx *x, Node *n, Tk close) {
    for (;;) {
        if (lx_peek(x)->t == close) break;
        Node *k = p_expr(x), *v = NULL;
        if (!k) return node_free(n), NULL;
        if (n->t == N_DICT) {
            if (lx_peek(x)->t != T_COLON) return node_free(k), node_free(n), x->bad = 1, NULL;
            lx_take(x);
            if (!(v = p_expr(x))) return node_free(k), node_free(n), NULL;
        }
        if (node_push(x, n, k, v)) return node_free(n), NULL;
        Tk t = lx_peek(x)->t;
        if (t == T_COMMA) lx_take(x);
        else if (t != close) return node_free(n), x->bad = 1, NULL;
    }
    lx_take(x);
    return n;
}

// atom: number, strings, True/False/None/names, set(), ..., (...), [...], {...}
static Node *p_atom(Lx *x) {
    Tok *t = lx_peek(x);
    Node *n;
    switch (t->t) {
    case T_NUM:
        if (!(n = node_new(x, N_CONST))) return NULL;
        n->val = t->val, t->val = NULL;
        lx_take(x);
        return n;
    case T_STR: { // adjacent literals concatenate; bytes and str do not mix; an f-string makes a JoinedStr
        int kind = t->skind, f = 0;
        Buf b = {0};
        while (lx_peek(x)->t == T_STR) {
            t = &x->cur;
            if ((t->skind == 1) != (kind == 1)) return pv_free(t->val), t->val = NULL, free(b.p), x->bad = 1, NULL;
            f |= t->skind == 2;
            if (t->val && t->val->t == PV_STR) buf_add(&b, t->val->s, t->val->n);
            pv_free(t->val), t->val = NULL;
            lx_take(x);
        }
        if (b.oom) return free(b.p), x->bad = x->oom = 1, NULL;
        if (!(n = node_new(x, f ? N_NOTLIT : N_CONST))) return free(b.p), NULL;
        if (!f) n->val = kind == 1 ? pv_new(PV_BYTES) : pv_str(b.p ? b.p : "", b.n);
        free(b.p);
        if (!f && !n->val) return node_free(n), x->bad = x->oom = 1, NULL;
        return n;
    }
    case T_NAME: {
        size_t len = t->e - t->a;
        const char *nm = x->s + t->a;
        lx_take(x);
        if (len == 3 && !memcmp(nm, "set", 3) && lx_peek(x)->t == T_LP) { // set() (any argument: outside the subset)
            lx_take(x);
            if (lx_peek(x)->t != T_RP) return x->bad = 1, NULL;
            lx_take(x);
            return node_new(x, N_SETCALL);
        }
        int k = len == 4 && !memcmp(nm, "True", 4) ? 1 : len == 5 && !memcmp(nm, "False", 5) ? 2 : len == 4 && !memcmp(nm, "None", 4) ? 3 : 0;
        if (!(n = node_new(x, k ? N_CONST : N_NOTLIT))) return NULL;
        if (k && !(n->val = pv_new(k == 3 ? PV_NONE : PV_BOOL))) return node_free(n), x->bad = x->oom = 1, NULL;
        if (k) n->val->b = k == 1;
        return n;
    }
    case T_ELL:
        lx_take(x);
        if (!(n = node_new(x, N_CONST))) return NULL;
        if (!(n->val = pv_new(PV_ELLIPSIS))) return node_free(n), x->bad = x->oom = 1, NULL;
        return n;
    case T_LP: {
        lx_take(x);
        if (lx_peek(x)->t == T_RP) return lx_take(x), node_new(x, N_TUPLE);
        Node *e = p_expr(x);
        if (!e) return NULL;
        if (lx_peek(x)->t == T_RP) return lx_take(x), e; // parenthesized expression
        if (x->cur.t != T_COMMA) return node_free(e), x->bad = 1, NULL;
        lx_take(x);
        if (!(n = node_new(x, N_TUPLE))) return node_free(e), NULL;
        if (node_push(x, n, e, NULL)) return node_free(n), NULL;
        return p_items(x, n, T_RP);
    }
    case T_LB:
        lx_take(x);
        if (!(n = node_new(x, N_LIST))) return NULL;
        return p_items(x, n, T_RB);
    case T_LC: {
        lx_take(x);
        if (lx_peek(x)->t == T_RC) return lx_take(x), node_new(x, N_DICT);
        Node *e = p_expr(x);
        if (!e) return NULL;
        int dict = lx_peek(x)->t == T_COLON;
        if (!(n = node_new(x, dict ? N_DICT : N_SET))) return node_free(e), NULL;
        Node *v = NULL;
        if (dict) {
            lx_take(x);
            if (!(v = p_expr(x))) return node_free(e), node_free(n), NULL;
        }
        if (node_push(x, n, e, v)) return node_free(n), NULL;
        Tk tt = lx_peek(x)->t;
        if (tt == T_COMMA) lx_take(x);
        else if (tt != T_RC) return node_free(n), x->bad = 1, NULL;
        return p_items(x, n, T_RC);
    }
    default:
        x->bad = 1;
        return NULL;
    }
}

// factor: ('+' | '-') factor | atom
static Node *p_unary(Lx *x) {
    Tk t = lx_peek(x)->t;
    if (t == T_PLUS || t == T_MINUS) {
        lx_take(x);
        if (x->udepth >= LIT_MAX_DEPTH) return x->bad = x->fatal = 1, NULL; // C stack guard; CPython fails too
        x->udepth++;
        Node *o = p_unary(x);
        x->udepth--;
        if (!o) return NULL;
        Node *n = node_new(x, N_UNARY);
        if (!n) return node_free(o), NULL;
        n->neg = t == T_MINUS;
        if (node_push(x, n, o, NULL)) return node_free(n), NULL;
        return n;
    }
    return p_atom(x);
}

// sum: factor (('+' | '-') factor)*, left-associative
static Node *p_expr(Lx *x) {
    Node *l = p_unary(x);
    while (l) {
        Tk t = lx_peek(x)->t;
        if (t != T_PLUS && t != T_MINUS) break;
        lx_take(x);
        Node *r = p_unary(x);
        if (!r) return node_free(l), NULL;
        Node *n = node_new(x, N_BINOP);
        if (!n) return node_free(l), node_free(r), NULL;
        n->neg = t == T_MINUS;
        if (node_push(x, n, l, NULL) || node_push(x, n, r, NULL)) return node_free(n), NULL;
        l = n;
        if (l->depth > LIT_MAX_DEPTH) return node_free(l), x->bad = x->fatal = 1, NULL; // keeps node_free shallow
    }
    return l;
}

// a deep copy of a constant
static PyVal *pv_copy(const PyVal *c) {
    PyVal *v = pv_new(c->t);
    if (!v) return NULL;
    v->b = c->b, v->f = c->f;
    if (c->s && !(v->s = dupn(c->s, c->n))) return free(v), NULL;
    v->n = c->n;
    return v;
}

// _convert_num: a Constant int/float/complex (not bool) into *out; R_SYNTAX (ValueError) otherwise
static int lit_num(const Node *n, PyVal **out) {
    if (n->t != N_CONST || (n->val->t != PV_INT && n->val->t != PV_FLOAT && n->val->t != PV_COMPLEX)) return R_SYNTAX;
    return (*out = pv_copy(n->val)) ? R_OK : R_OOM;
}

// _convert_signed_num: [+|-] number
static int lit_signed(const Node *n, PyVal **out) {
    if (n->t != N_UNARY) return lit_num(n, out);
    int r = lit_num(n->a[0], out);
    if (r || !n->neg) return r;
    PyVal *v = *out;
    if (v->t == PV_FLOAT) v->f = -v->f;
    else if (v->t == PV_INT && v->s && strcmp(v->s, "0") != 0) v->b = !v->b;
    return R_OK;
}

// ast.literal_eval's _convert, in its evaluation order: R_OK, R_SYNTAX (ValueError), R_FATAL (TypeError), R_OOM
static int lit_convert(const Node *n, PyVal **out) {
    *out = NULL;
    switch (n->t) {
    case N_CONST:
        return (*out = pv_copy(n->val)) ? R_OK : R_OOM;
    case N_TUPLE:
    case N_LIST:
    case N_SET:
    case N_SETCALL: {
        PyVal *v = pv_new(n->t == N_TUPLE ? PV_TUPLE : n->t == N_LIST ? PV_LIST : PV_SET);
        if (!v) return R_OOM;
        for (int i = 0; i < n->na; i++) {
            PyVal *e;
            int r = lit_convert(n->a[i], &e);
            if (r) return pv_free(v), r;
            if (n->t == N_SET && pv_unhashable(e)) return pv_free(e), pv_free(v), R_FATAL; // set(): unhashable
            if (pv_push(v, NULL, e)) return pv_free(e), pv_free(v), R_OOM;
        }
        *out = v;
        return R_OK;
    }
    case N_DICT: { // dict(zip(map(_convert, keys), map(_convert, values))): key i, value i, insert i, ...
        PyVal *d = pv_new(PV_DICT);
        if (!d) return R_OOM;
        for (int i = 0; i < n->na; i++) {
            PyVal *k, *v;
            int r = lit_convert(n->a[i], &k);
            if (r) return pv_free(d), r;
            if ((r = lit_convert(n->b[i], &v))) return pv_free(k), pv_free(d), r;
            if (pv_unhashable(k)) return pv_free(k), pv_free(v), pv_free(d), R_FATAL;
            if (pv_dict_set(d, k, v)) return pv_free(d), R_OOM;
        }
        *out = d;
        return R_OK;
    }
    case N_BINOP: { // left: signed number, right: number; only real +/- complex is a literal
        PyVal *l, *r;
        int st = lit_signed(n->a[0], &l);
        if (st) return st;
        if ((st = lit_num(n->a[1], &r))) return pv_free(l), st;
        int ok = (l->t == PV_INT || l->t == PV_FLOAT) && r->t == PV_COMPLEX;
        pv_free(l), pv_free(r);
        if (!ok) return R_SYNTAX;
        return (*out = pv_new(PV_COMPLEX)) ? R_OK : R_OOM;
    }
    case N_UNARY:
        return lit_signed(n, out);
    default:
        return R_SYNTAX;
    }
}

// ast.literal_eval(s): R_OK with *out, R_SYNTAX (SyntaxError/ValueError: keep the string), R_FATAL, R_OOM
static int literal_eval(const char *s, size_t n, PyVal **out) {
    size_t a = 0;
    while (a < n && (s[a] == ' ' || s[a] == '\t')) a++; // node_or_string.lstrip(" \t")
    if (memchr(s, 0, n)) return R_SYNTAX;                  // source code string cannot contain null bytes
    Lx x = {.s = s + a, .n = n - a};
    Node *root = NULL;
    if (lx_peek(&x)->t != T_END) root = p_expr(&x);
    if (root && lx_peek(&x)->t == T_COMMA) { // a bare tuple
        Node *t = node_new(&x, N_TUPLE);
        if (t && !node_push(&x, t, root, NULL)) {
            root = NULL;
            while (!x.bad && lx_peek(&x)->t == T_COMMA) {
                lx_take(&x);
                Tk k = lx_peek(&x)->t;
                if (k == T_END || k == T_NL) break;
                Node *e = p_expr(&x);
                if (!e || node_push(&x, t, e, NULL)) break;
            }
            root = t;
        } else {
            if (!t) node_free(root); // node_push frees root itself when it fails
            node_free(t), root = NULL;
        }
    }
    while (root && !x.bad && lx_peek(&x)->t == T_NL) lx_take(&x);
    if (root && !x.bad && lx_peek(&x)->t != T_END) x.bad = 1;
    if (x.have && x.cur.val) pv_free(x.cur.val), x.cur.val = NULL;
    if (x.oom) return node_free(root), R_OOM;
    if (x.fatal) return node_free(root), R_FATAL;
    if (!root || x.bad) return node_free(root), R_SYNTAX;
    if (root->depth > LIT_MAX_DEPTH) return node_free(root), R_FATAL;
    int r = lit_convert(root, out);
    node_free(root);
    return r;
}

// ------------------------------------------------------------------------------------------------ json.dumps

// t = "[-]d.ddd...e[+-]XX": replaces it by its last-digit neighbour (+1, then -1) that reads back as x; 1 if one does
static int near_digits(char *t, double x) {
    for (int dir = 1; dir >= -1; dir -= 2) {
        char u[64];
        snprintf(u, sizeof u, "%s", t);
        char *e = strchr(u, 'e'), *q = e - 1;
        int neg = u[0] == '-';
        for (;; q--) { // add dir to the last digit, carrying or borrowing
            if (*q == '.') continue;
            if (dir > 0 && *q == '9') {
                *q = '0';
                if (q == u + neg) break; // 9.99 -> 10.0: a shorter number, found at a smaller precision
                continue;
            }
            if (dir < 0 && *q == '0') {
                *q = '9';
                if (q == u + neg) break;
                continue;
            }
            *q = (char)(*q + dir);
            break;
        }
        if (u[neg] == '0') continue; // 1.00 - 1 -> 0.99: a shorter number as well
        if (strtod(u, NULL) == x) return memcpy(t, u, strlen(u) + 1), 1;
    }
    return 0;
}

// float.__repr__ (shortest repr that round-trips; exponent form when the exponent is < -4 or >= 16)
static void py_float_repr(double x, Buf *b) {
    if (isnan(x)) return buf_adds(b, "NaN");
    if (isinf(x)) return buf_adds(b, x < 0 ? "-Infinity" : "Infinity");
    if (x == 0) return buf_adds(b, signbit(x) ? "-0.0" : "0.0");
    char t[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(t, sizeof t, "%.*e", p - 1, x);
        if (strtod(t, NULL) == x) break;
        // the shortest string is not always the nearest one of its length (at the wide side of a power of two):
        // the neighbours in the last digit may round-trip where the correctly rounded digits do not
        if (p > 1 && near_digits(t, x)) break;
    }
    // t = [-]d[.ddd]e[+-]XX
    char dig[32];
    int nd = 0, neg = t[0] == '-';
    const char *q = t + neg;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') dig[nd++] = *q;
    int e10 = atoi(q + 1);
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    int decpt = e10 + 1;
    if (neg) buf_addc(b, '-');
    if (decpt <= -4 || decpt > 16) {
        buf_addc(b, dig[0]);
        if (nd > 1) buf_addc(b, '.'), buf_add(b, dig + 1, (size_t)nd - 1);
        snprintf(t, sizeof t, "e%c%02d", e10 < 0 ? '-' : '+', e10 < 0 ? -e10 : e10);
        buf_adds(b, t);
    } else if (decpt <= 0) {
        buf_adds(b, "0.");
        for (int i = 0; i < -decpt; i++) buf_addc(b, '0');
        buf_add(b, dig, (size_t)nd);
    } else if (decpt >= nd) {
        buf_add(b, dig, (size_t)nd);
        for (int i = nd; i < decpt; i++) buf_addc(b, '0');
        buf_adds(b, ".0");
    } else {
        buf_add(b, dig, (size_t)decpt), buf_addc(b, '.'), buf_add(b, dig + decpt, (size_t)(nd - decpt));
    }
}

// a JSON string as json.dumps(ensure_ascii=False) writes it; surr: surrogate code points (which UTF-8 cannot carry;
// stored as their 3-byte forms) written as \udXXX, else all bytes that are not escaped go through as they are
static void dump_str_x(Buf *b, const char *s, size_t n, int surr) {
    buf_addc(b, '"');
    size_t st = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        size_t skip = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) snprintf(u, sizeof u, "\\u%04x", c), esc = u;
        else if (surr && c == 0xED && i + 2 < n && ((unsigned char)s[i + 1] & 0xE0) == 0xA0 && ((unsigned char)s[i + 2] & 0xC0) == 0x80) {
            unsigned v = 0xD000u | ((unsigned)(s[i + 1] & 0x3F) << 6) | (unsigned)(s[i + 2] & 0x3F);
            snprintf(u, sizeof u, "\\u%04x", v), esc = u, skip = 3;
        }
        if (!esc) continue;
        buf_add(b, s + st, i - st);
        buf_adds(b, esc);
        st = i + skip;
        i += skip - 1;
    }
    buf_add(b, s + st, n - st);
    buf_addc(b, '"');
}

// a JSON string of decoded text (surrogates as \udXXX)
static void dump_str(Buf *b, const char *s, size_t n) { dump_str_x(b, s, n, 1); }

// json.dumps(x, ensure_ascii=False) appended to b: R_OK, or R_FATAL (TypeError / ValueError: not serializable)
static int dump_val(Buf *b, const PyVal *x) {
    switch (x->t) {
    case PV_NONE: buf_adds(b, "null"); return R_OK;
    case PV_BOOL: buf_adds(b, x->b ? "true" : "false"); return R_OK;
    case PV_INT:
        if (!x->s) return R_FATAL; // repr(): exceeds the limit (4300 digits)
        if (x->b) buf_addc(b, '-');
        buf_add(b, x->s, x->n);
        return R_OK;
    case PV_FLOAT: py_float_repr(x->f, b); return R_OK;
    case PV_STR: dump_str(b, x->s, x->n); return R_OK;
    case PV_LIST:
    case PV_TUPLE:
        buf_addc(b, '[');
        for (int i = 0; i < x->nv; i++) {
            if (i) buf_adds(b, ", ");
            if (dump_val(b, x->v[i])) return R_FATAL;
        }
        buf_addc(b, ']');
        return R_OK;
    case PV_DICT:
        buf_addc(b, '{');
        for (int i = 0; i < x->nv; i++) {
            const PyVal *k = x->k[i];
            if (i) buf_adds(b, ", ");
            if (k->t == PV_STR) dump_str(b, k->s, k->n);
            else if (k->t == PV_FLOAT || k->t == PV_BOOL || k->t == PV_NONE || k->t == PV_INT) { // str(key)
                Buf kb = {0};
                if (dump_val(&kb, k)) return free(kb.p), R_FATAL;
                if (kb.oom) return free(kb.p), b->oom = 1, R_OK;
                dump_str(b, kb.p, kb.n);
                free(kb.p);
            } else
                return R_FATAL; // keys must be str, int, float, bool or None
            buf_adds(b, ": ");
            if (dump_val(b, x->v[i])) return R_FATAL;
        }
        buf_addc(b, '}');
        return R_OK;
    default: return R_FATAL; // set, bytes, complex, Ellipsis: not JSON serializable
    }
}

// ------------------------------------------------------------------------------------------------ tool calls

// _is_string_type: 1 when the tool named name[0..nn) declares parameter key as {"type": "string"}; 0 otherwise;
// R_FATAL where Python's .get chain would raise (properties or the parameter's schema not an object)
static int is_string_param(const cJSON *tools, const char *name, size_t nn, const char *key) {
    if (!tools) return 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        if (!cJSON_IsObject(fn) && cJSON_GetObjectItemCaseSensitive(t, "name")) fn = t; // flat (Responses API) form
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (!cJSON_IsString(nm) || strlen(nm->valuestring) != nn || memcmp(nm->valuestring, name, nn)) continue;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (!cJSON_IsObject(params)) return 0; // parameters is None
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(params, "properties");
        if (!props) return 0;
        if (!cJSON_IsObject(props)) return 2; // .get on a non-dict: AttributeError
        const cJSON *prop = cJSON_GetObjectItemCaseSensitive(props, key);
        if (!prop) return 0;
        if (!cJSON_IsObject(prop)) return 2;
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(prop, "type");
        return cJSON_IsString(ty) && !strcmp(ty->valuestring, "string");
    }
    return 0;
}

// one region's result
enum { REG_CALL = 0, REG_SKIP = 1, REG_FAIL = 2 };

// _deserialize(value): json.loads, else ast.literal_eval, else the string itself
static int deserialize(const char *s, size_t n, PyVal **out) {
    int r = json_loads(s, n, out);
    if (r != R_SYNTAX) return r;
    r = literal_eval(s, n, out);
    if (r != R_SYNTAX) return r;
    return (*out = pv_str(s, n)) ? R_OK : R_OOM;
}

// the inner text x[0..n) of one <tool_call>...</tool_call> region: REG_CALL (*name, *args malloc'd), REG_SKIP
// (no "\n": func_detail_regex does not match), REG_FAIL (vLLM's exception path), or -1 (out of memory)
static int parse_region(const char *x, size_t n, const cJSON *tools, char **name, char **args) {
    const char *nl = memchr(x, '\n', n);
    if (!nl) return REG_SKIP;
    size_t na, nb;
    py_strip(x, (size_t)(nl - x), &na, &nb); // tc_name = group(1).strip()
    const char *a = nl + 1;
    size_t an = n - (size_t)(a - x), cur = 0;
    PyVal *d = pv_new(PV_DICT);
    if (!d) return -1;
    int ret = REG_CALL;
    // func_arg_regex.findall: <arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>
    for (;;) {
        size_t p = find(a, an, cur, TAG_KEY);
        if (p == NPOS) break;
        size_t ks = p + strlen(TAG_KEY), e = ks, vs = NPOS;
        for (;;) { // the first "</arg_key>" followed by \s* "<arg_value>"
            e = find(a, an, e, TAG_KEY_END);
            if (e == NPOS) break;
            size_t j = e + strlen(TAG_KEY_END);
            while (j < an) {
                uint32_t cp;
                size_t l = utf8_next((const unsigned char *)a + j, an - j, &cp);
                if (!l || !re_isspace(cp)) break;
                j += l;
            }
            if (starts(a, an, j, TAG_VAL)) {
                vs = j + strlen(TAG_VAL);
                break;
            }
            e++;
        }
        if (vs == NPOS) break; // no later start can match either
        size_t ve = find(a, an, vs, TAG_VAL_END);
        if (ve == NPOS) break;
        cur = ve + strlen(TAG_VAL_END);
        size_t ka, kb;
        py_strip(a + ks, e - ks, &ka, &kb);
        PyVal *key = pv_str(a + ks + ka, kb - ka), *val = NULL;
        if (!key) goto oom;
        int st = is_string_param(tools, x + na, nb - na, key->s);
        if (st == 2) {
            pv_free(key);
            ret = REG_FAIL;
            goto done;
        }
        if (st == 1) {
            if (!(val = pv_str(a + vs, ve - vs))) return pv_free(key), pv_free(d), -1; // raw, unstripped
        } else {
            size_t va, vb;
            py_strip(a + vs, ve - vs, &va, &vb);
            int r = deserialize(a + vs + va, vb - va, &val);
            if (r == R_OOM) return pv_free(key), pv_free(d), -1;
            if (r == R_FATAL) {
                pv_free(key);
                ret = REG_FAIL;
                goto done;
            }
        }
        if (pv_dict_set(d, key, val)) goto oom;
    }
    {
        Buf b = {0};
        if (dump_val(&b, d)) {
            free(b.p);
            ret = REG_FAIL;
            goto done;
        }
        if (b.oom || !(*name = dupn(x + na, nb - na))) return free(b.p), pv_free(d), -1;
        *args = b.p;
    }
done:
    pv_free(d);
    return ret;
oom:
    pv_free(d);
    return -1;
}

// ------------------------------------------------------------------------------------------------ whole parse

// the reasoning split (rules 1-4 of chat_output.h): reasoning [ra, rb) (has_r), content [ca, cb) (has_c)
static void split_reasoning(const char *t, size_t n, int prompt_think, int *has_r, size_t *ra, size_t *rb, int *has_c,
                            size_t *ca, size_t *cb) {
    size_t q = 0;
    while (q < n) {
        uint32_t cp;
        size_t l = utf8_next((const unsigned char *)t + q, n - q, &cp);
        if (!l || !py_isspace(cp)) break;
        q += l;
    }
    int model = starts(t, n, q, TAG_THINK);
    *has_r = 0, *ra = *rb = 0;
    *has_c = 1, *ca = 0, *cb = n;
    if (!model && !prompt_think) return;
    size_t r0 = model ? q + strlen(TAG_THINK) : 0;
    size_t i = find(t, n, r0, TAG_THINK_END), j = find(t, n, r0, TAG_CALL);
    if (i != NPOS && (j == NPOS || i < j)) *has_r = 1, *ra = r0, *rb = i, *ca = i + strlen(TAG_THINK_END);
    else if (j != NPOS) *has_r = 1, *ra = r0, *rb = j, *ca = j;
    else if (model) *has_r = 1, *ra = r0, *rb = n, *has_c = 0, *ca = *cb = n;
    else *ca = 0;
    if (*has_r && *ra == *rb) *has_r = 0;
    if (*has_c && *ca == *cb) *has_c = 0;
}

int chat_output_prompt_ends_in_think(const char *prompt, size_t len) {
    size_t a, b;
    if (!prompt) return 0;
    py_strip(prompt, len, &a, &b);
    size_t m = strlen(TAG_THINK);
    return b - a >= m && !memcmp(prompt + b - m, TAG_THINK, m);
}

void chat_output_free(ChatOutput *o) {
    if (!o) return;
    free(o->content), free(o->reasoning);
    for (int i = 0; i < o->n_tool_calls; i++) free(o->tool_calls[i].id), free(o->tool_calls[i].name), free(o->tool_calls[i].arguments);
    free(o->tool_calls);
    memset(o, 0, sizeof *o);
}

// a malloc'd "call_<i>"
static char *call_id(int i) {
    char t[32];
    snprintf(t, sizeof t, "call_%d", i);
    return dupn(t, strlen(t));
}

int chat_output_parse(const char *text, size_t len, const ChatOutputOptions *opt, ChatOutput *out) {
    static const ChatOutputOptions none = {0};
    memset(out, 0, sizeof *out);
    if (!opt) opt = &none;
    if (!text) text = "", len = 0;
    if (opt->tools && !cJSON_IsArray(opt->tools)) return co_fail("tools: not an array");
    int has_r, has_c;
    size_t ra, rb, ca, cb;
    split_reasoning(text, len, opt->prompt_ends_in_think, &has_r, &ra, &rb, &has_c, &ca, &cb);
    if (has_r) {
        if (!(out->reasoning = dupn(text + ra, rb - ra))) goto oom;
        out->reasoning_len = rb - ra;
    }
    const char *c = text + ca;
    size_t cn = has_c ? cb - ca : 0, keep = cn;
    if (has_c && !opt->no_tool_parse) {
        int cap = 0, fail = 0;
        size_t pos = 0, first = NPOS;
        for (;;) { // func_call_regex.findall: <tool_call>.*?</tool_call>
            size_t s = find(c, cn, pos, TAG_CALL);
            if (s == NPOS) break;
            size_t e = find(c, cn, s + strlen(TAG_CALL), TAG_CALL_END);
            if (e == NPOS) break;
            if (first == NPOS) first = s;
            char *name = NULL, *args = NULL;
            size_t is = s + strlen(TAG_CALL);
            int r = parse_region(c + is, e - is, opt->tools, &name, &args);
            if (r < 0) goto oom;
            if (r == REG_FAIL) {
                fail = 1;
                break;
            }
            if (r == REG_CALL) {
                if (out->n_tool_calls == cap) {
                    cap = cap ? 2 * cap : 4;
                    ChatOutputToolCall *nc = realloc(out->tool_calls, sizeof *nc * (size_t)cap);
                    if (!nc) {
                        free(name), free(args);
                        goto oom;
                    }
                    out->tool_calls = nc;
                }
                ChatOutputToolCall *tc = &out->tool_calls[out->n_tool_calls++];
                tc->name = name, tc->arguments = args, tc->id = call_id(out->n_tool_calls - 1);
                if (!tc->id) goto oom;
            }
            pos = e + strlen(TAG_CALL_END);
        }
        if (fail) { // logger.exception("Failed to extract tool call spec"): content = the text, no calls
            for (int i = 0; i < out->n_tool_calls; i++)
                free(out->tool_calls[i].id), free(out->tool_calls[i].name), free(out->tool_calls[i].arguments);
            free(out->tool_calls);
            out->tool_calls = NULL, out->n_tool_calls = 0;
        } else if (out->n_tool_calls) {
            keep = first;
            if (py_isblank(c, keep)) keep = 0, has_c = 0;
        }
    }
    if (has_c && keep) {
        if (!(out->content = dupn(c, keep))) goto oom;
        out->content_len = keep;
    }
    return 0;
oom:
    chat_output_free(out);
    return co_fail("out of memory");
}

cJSON *chat_output_message(const ChatOutput *o) {
    cJSON *m = cJSON_CreateObject(), *calls;
    if (!m) return NULL;
    int ok = cJSON_AddStringToObject(m, "role", "assistant") != NULL;
    ok &= (o->content ? cJSON_AddStringToObject(m, "content", o->content) : cJSON_AddNullToObject(m, "content")) != NULL;
    ok &= (o->reasoning ? cJSON_AddStringToObject(m, "reasoning_content", o->reasoning)
                        : cJSON_AddNullToObject(m, "reasoning_content")) != NULL;
    ok &= (calls = cJSON_AddArrayToObject(m, "tool_calls")) != NULL;
    for (int i = 0; ok && i < o->n_tool_calls; i++) {
        cJSON *tc = cJSON_CreateObject(), *fn;
        ok = tc && cJSON_AddItemToArray(calls, tc);
        if (!ok) {
            cJSON_Delete(tc);
            break;
        }
        ok &= cJSON_AddStringToObject(tc, "id", o->tool_calls[i].id) != NULL;
        ok &= cJSON_AddStringToObject(tc, "type", "function") != NULL;
        ok &= (fn = cJSON_AddObjectToObject(tc, "function")) != NULL;
        ok = ok && cJSON_AddStringToObject(fn, "name", o->tool_calls[i].name) && cJSON_AddStringToObject(fn, "arguments", o->tool_calls[i].arguments);
    }
    if (!ok) cJSON_Delete(m), m = NULL;
    return m;
}

// a JSON string value or null
static void msg_str(Buf *b, const char *s, size_t n) {
    if (!s) buf_adds(b, "null");
    else dump_str_x(b, s, n, 0);
}

char *chat_output_message_json(const ChatOutput *o) {
    Buf b = {0};
    buf_adds(&b, "{\"role\":\"assistant\",\"content\":");
    msg_str(&b, o->content, o->content_len);
    buf_adds(&b, ",\"reasoning_content\":");
    msg_str(&b, o->reasoning, o->reasoning_len);
    buf_adds(&b, ",\"tool_calls\":[");
    for (int i = 0; i < o->n_tool_calls; i++) {
        const ChatOutputToolCall *t = &o->tool_calls[i];
        if (i) buf_addc(&b, ',');
        buf_adds(&b, "{\"id\":");
        msg_str(&b, t->id, strlen(t->id));
        buf_adds(&b, ",\"type\":\"function\",\"function\":{\"name\":");
        msg_str(&b, t->name, strlen(t->name));
        buf_adds(&b, ",\"arguments\":");
        msg_str(&b, t->arguments, strlen(t->arguments));
        buf_adds(&b, "}}");
    }
    buf_adds(&b, "]}");
    if (b.oom) return free(b.p), NULL;
    return b.p;
}

// ------------------------------------------------------------------------------------------------ streaming

// where the stream is
enum { S_START, S_THINK_MODEL, S_THINK_PROMPT, S_CONTENT, S_TOOLS, S_PASS, S_IGNORE, S_DONE };

struct ChatOutputStream {
    ChatOutputOptions opt; // options (tools borrowed)
    ChatDeltaFn fn;        // delta callback
    void *user;            // its argument
    Buf buf;               // all text fed so far
    int phase;             // S_*
    size_t rp;             // reasoning: start (prompt-opened) / sent up to (model-opened)
    size_t scan;           // tags are searched from here (earlier text holds none)
    size_t c0, cp;         // content: start / sent up to
    size_t wsck;           // content checked for a non-blank character up to here
    int nonblank;          // the content before the first <tool_call> has a non-blank character
    size_t tpos;           // S_TOOLS: the "<tool_call>" of the region being read, or NPOS while searching
    size_t tscan;          // S_TOOLS: search position for the next tag
    int ncalls;            // tool calls sent
    int diverged;          // the whole parse failed after calls were sent
    int stopped;           // the callback asked to stop / out of memory
};

ChatOutputStream *chat_output_stream_new(const ChatOutputOptions *opt, ChatDeltaFn fn, void *user) {
    ChatOutputStream *s = calloc(1, sizeof *s);
    if (!s) return co_fail("out of memory"), NULL;
    if (opt) s->opt = *opt;
    s->fn = fn, s->user = user, s->tpos = NPOS;
    return s;
}

void chat_output_stream_free(ChatOutputStream *s) {
    if (!s) return;
    free(s->buf.p);
    free(s);
}

int chat_output_stream_diverged(const ChatOutputStream *s) { return s->diverged; }

// sends one delta (nothing for empty text unless a tool call)
static void emit(ChatOutputStream *s, ChatDeltaKind k, const char *t, size_t n, int index, const char *id) {
    if (s->stopped || (!n && k != CHAT_DELTA_TOOL_CALL)) return;
    ChatDelta d = {.kind = k, .text = t, .len = n, .index = index, .id = id};
    if (s->fn && s->fn(s->user, &d)) s->stopped = 1, co_fail("stream stopped by its consumer");
}

// the length of the longest suffix of s[from..n) that is a proper prefix of tag
static size_t partial_tag(const char *s, size_t from, size_t n, const char *tag) {
    size_t m = strlen(tag);
    for (size_t k = m - 1; k > 0; k--)
        if (n - from >= k && !memcmp(s + n - k, tag, k)) return k;
    return 0;
}

// content [cp, e): sent once a non-blank character has been seen (blank content before a tool call is null)
static void emit_content(ChatOutputStream *s, size_t e, int whole) {
    const char *b = s->buf.p ? s->buf.p : "";
    if (!whole) e = utf8_safe_end(b, s->cp, e);
    if (!s->nonblank) {
        size_t i = s->wsck > s->cp ? s->wsck : s->cp;
        while (i < e) {
            uint32_t cp;
            size_t l = utf8_next((const unsigned char *)b + i, e - i, &cp);
            if (!l || !py_isspace(cp)) { // e is a hard end here: an incomplete character counts as text (py_strip)
                s->nonblank = 1;
                break;
            }
            i += l;
        }
        s->wsck = i;
        if (!s->nonblank) return;
    }
    emit(s, CHAT_DELTA_CONTENT, b + s->cp, e - s->cp, -1, NULL);
    s->cp = e;
}

// runs the state machine over the text fed so far (final: the text is complete)
static void advance(ChatOutputStream *s, int final) {
    for (;;) {
        if (s->stopped) return;
        const char *b = s->buf.p ? s->buf.p : "";
        size_t n = s->buf.n;
        switch (s->phase) {
        case S_START: {
            size_t q = s->scan; // whitespace already read
            while (q < n) {
                uint32_t cp;
                size_t l = utf8_next((const unsigned char *)b + q, n - q, &cp);
                if (!l) {
                    if (!final) return;
                    break;
                }
                if (!py_isspace(cp)) break;
                q += l;
            }
            s->scan = q;
            size_t m = strlen(TAG_THINK);
            if (!final && (q == n || (n - q < m && !memcmp(b + q, TAG_THINK, n - q)))) return;
            if (starts(b, n, q, TAG_THINK)) s->phase = S_THINK_MODEL, s->rp = s->scan = q + m;
            else if (s->opt.prompt_ends_in_think) s->phase = S_THINK_PROMPT, s->rp = s->scan = 0;
            else s->phase = S_CONTENT, s->c0 = s->cp = s->scan = 0;
            continue;
        }
        case S_THINK_MODEL:
        case S_THINK_PROMPT: {
            size_t i = find(b, n, s->scan, TAG_THINK_END), j = find(b, n, s->scan, TAG_CALL);
            if (i != NPOS || j != NPOS) {
                int end = i != NPOS && (j == NPOS || i < j);
                size_t t = end ? i : j;
                emit(s, CHAT_DELTA_REASONING, b + s->rp, t - s->rp, -1, NULL);
                s->c0 = s->cp = s->scan = end ? t + strlen(TAG_THINK_END) : t;
                s->phase = S_CONTENT;
                continue;
            }
            if (final) {
                if (s->phase == S_THINK_MODEL) {
                    emit(s, CHAT_DELTA_REASONING, b + s->rp, n - s->rp, -1, NULL);
                    s->phase = S_DONE;
                    return;
                }
                s->phase = S_CONTENT, s->c0 = s->cp = s->scan = 0; // rule 3: the whole text is content
                continue;
            }
            size_t h1 = partial_tag(b, s->scan, n, TAG_THINK_END), h2 = partial_tag(b, s->scan, n, TAG_CALL);
            size_t hold = h1 > h2 ? h1 : h2;
            s->scan = n - hold;
            if (s->phase == S_THINK_MODEL) {
                size_t e = utf8_safe_end(b, s->rp, n - hold);
                emit(s, CHAT_DELTA_REASONING, b + s->rp, e - s->rp, -1, NULL);
                s->rp = e;
            }
            return;
        }
        case S_CONTENT: {
            if (s->opt.no_tool_parse) {
                s->phase = S_PASS;
                continue;
            }
            size_t t = find(b, n, s->scan, TAG_CALL);
            if (t != NPOS) {
                emit_content(s, t, 1);
                s->phase = S_TOOLS, s->tpos = t, s->tscan = t + strlen(TAG_CALL);
                continue;
            }
            if (final) {
                s->nonblank = 1; // no tool call: the content is the text, blank or not
                emit_content(s, n, 1);
                s->phase = S_DONE;
                return;
            }
            size_t hold = partial_tag(b, s->scan, n, TAG_CALL);
            s->scan = n - hold;
            emit_content(s, n - hold, 0);
            return;
        }
        case S_TOOLS: {
            if (s->tpos == NPOS) { // looking for the next region
                size_t t = find(b, n, s->tscan, TAG_CALL);
                if (t == NPOS) {
                    if (final) goto tools_end;
                    s->tscan = n - partial_tag(b, s->tscan, n, TAG_CALL);
                    return;
                }
                s->tpos = t, s->tscan = t + strlen(TAG_CALL);
            }
            size_t e = find(b, n, s->tscan, TAG_CALL_END);
            if (e == NPOS) {
                if (final) goto tools_end;
                s->tscan = n - partial_tag(b, s->tscan, n, TAG_CALL_END);
                return;
            }
            char *name = NULL, *args = NULL;
            size_t is = s->tpos + strlen(TAG_CALL);
            int r = parse_region(b + is, e - is, s->opt.tools, &name, &args);
            if (r < 0) {
                s->stopped = 1, co_fail("out of memory");
                return;
            }
            if (r == REG_CALL) {
                char id[32];
                snprintf(id, sizeof id, "call_%d", s->ncalls);
                emit(s, CHAT_DELTA_TOOL_CALL, name, strlen(name), s->ncalls, id);
                emit(s, CHAT_DELTA_TOOL_ARGS, args, strlen(args), s->ncalls, NULL);
                s->ncalls++;
            }
            free(name), free(args);
            if (r == REG_FAIL) {
                if (s->ncalls) s->diverged = 1, s->phase = S_IGNORE;
                else s->phase = S_PASS, s->nonblank = 1;
                continue;
            }
            s->tpos = NPOS, s->tscan = e + strlen(TAG_CALL_END);
            continue;
        tools_end:
            if (!s->ncalls) { // no call parsed: the content is the whole text
                s->nonblank = 1;
                emit_content(s, n, 1);
            }
            s->phase = S_DONE;
            return;
        }
        case S_PASS: {
            s->nonblank = 1;
            emit_content(s, n, final);
            if (final) s->phase = S_DONE;
            return;
        }
        default:
            return;
        }
    }
}

int chat_output_stream_feed(ChatOutputStream *s, const char *text, size_t len) {
    if (s->stopped) return -1;
    if (s->phase == S_DONE) return co_fail("stream: feed after finish");
    buf_add(&s->buf, text, len);
    if (s->buf.oom) return s->stopped = 1, co_fail("out of memory");
    advance(s, 0);
    return s->stopped ? -1 : 0;
}

int chat_output_stream_finish(ChatOutputStream *s) {
    if (s->stopped) return -1;
    if (s->phase == S_DONE) return 0;
    advance(s, 1);
    s->phase = S_DONE;
    return s->stopped ? -1 : 0;
}
