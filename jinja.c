// SPDX-License-Identifier: MIT
// jinja.c - a Jinja2 interpreter for HuggingFace chat templates (mirrors Python jinja2 3.1 as transformers configures
// it in src/transformers/utils/chat_template_utils.py, _compile_jinja_template: ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks, jinja2.ext.loopcontrols and the {% generation %} tag, transformers' tojson filter and
// the raise_exception / strftime_now / dict / namespace globals). The lexer follows jinja2/lexer.py, the parser
// jinja2/parser.py (same grammar and precedence), values follow Python's semantics (str(), repr(), truthiness,
// comparison, int/float arithmetic) and jinja2/filters.py, tests.py, runtime.py (Undefined, LoopContext, Macro).
// Anything outside the supported subset is an error (one line: "line N: ..."), never a different rendering.
// Everything a parse or a render allocates lives in one arena, freed at once; errors unwind with longjmp.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE // timegm, strcasecmp, localtime_r
#endif
#include "jinja.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ------------------------------------------------------------------------------------------------ limits

#ifndef JINJA_FUZZ_LIMITS
#define J_MAX_OUTPUT (64u << 20)      // bytes of rendered output (any one buffer)
#define J_MAX_ARENA (512ull << 20)    // bytes a parse or a render may allocate in all
#define J_MAX_STEPS 20000000LL        // evaluation steps of one render
#else // smaller bounds for the fuzzer (fast executions, within its memory limit)
#define J_MAX_OUTPUT (4u << 20)
#define J_MAX_ARENA (64ull << 20)
#define J_MAX_STEPS 300000LL
#endif
#define J_MAX_DEPTH 400               // nesting of expressions / statements / macro calls
#define J_MAX_RANGE 100000            // jinja2.sandbox.MAX_RANGE: longest range()
#define J_MAX_TEMPLATE (16u << 20)    // bytes of template source

// ------------------------------------------------------------------------------------------------ arena + errors

typedef struct Chunk {
    struct Chunk *next; // previous chunk
    size_t cap, used;   // bytes in data / bytes handed out
    char data[];        // the memory
} Chunk;

typedef struct {
    Chunk *head;    // newest chunk
    size_t total;   // bytes allocated in all chunks
    jmp_buf *jb;    // where an error unwinds to
    char *msg;      // error message buffer (the J's)
    size_t msgcap;  // its size
} Arena;

// the error state shared by the parser and the renderer
typedef struct {
    jmp_buf jb;     // unwind target
    char msg[512];  // the one-line error
    Arena *ar;      // the arena allocations go to
    int line;       // template line being executed (for errors raised without one)
} J;

// set the error message ("line N: ...") and unwind
static void jfail(J *j, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static void jfail(J *j, int line, const char *fmt, ...) {
    char tmp[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (line <= 0) line = j->line;
    if (line > 0) snprintf(j->msg, sizeof j->msg, "jinja: line %d: %s", line, tmp);
    else snprintf(j->msg, sizeof j->msg, "jinja: %s", tmp);
    for (char *c = j->msg; *c; c++) // one line, whatever a message (raise_exception, a name) holds
        if ((unsigned char)*c < 0x20 || *c == 0x7F) *c = ' ';
    longjmp(j->jb, 1);
}

// allocate n zeroed bytes from the arena (16-byte aligned); unwinds past the arena limit
static void *aalloc(J *j, size_t n) {
    Arena *a = j->ar;
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total + cap > J_MAX_ARENA) jfail(j, 0, "memory limit (%llu MB) exceeded", J_MAX_ARENA >> 20);
        Chunk *c = malloc(sizeof(Chunk) + cap);
        if (!c) jfail(j, 0, "out of memory");
        c->next = a->head, c->cap = cap, c->used = 0;
        a->head = c;
        a->total += cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

// free every chunk of an arena
static void arena_free(Arena *a) {
    for (Chunk *c = a->head, *n; c; c = n) n = c->next, free(c);
    a->head = NULL, a->total = 0;
}

// copy n bytes into the arena as a NUL-terminated string
static char *astrndup(J *j, const char *s, size_t n) {
    char *p = aalloc(j, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

// growable byte buffer in the arena, capped at J_MAX_OUTPUT
typedef struct {
    char *p;        // bytes
    size_t n, cap;  // used / allocated
} Buf;

// make room for add more bytes
static void buf_reserve(J *j, Buf *b, size_t add) {
    if (b->n + add + 1 <= b->cap) return;
    if (b->n + add > J_MAX_OUTPUT) jfail(j, 0, "output limit (%u MB) exceeded", J_MAX_OUTPUT >> 20);
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->n + add + 1) cap *= 2;
    char *p = aalloc(j, cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p, b->cap = cap;
}
// append bytes / a C string / one char / formatted text
static void buf_add(J *j, Buf *b, const char *s, size_t n) {
    if (!n) return;
    buf_reserve(j, b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void buf_puts(J *j, Buf *b, const char *s) { buf_add(j, b, s, strlen(s)); }
static void buf_putc(J *j, Buf *b, char c) { buf_add(j, b, &c, 1); }
static void buf_printf(J *j, Buf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void buf_printf(J *j, Buf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    buf_add(j, b, tmp, (size_t)k);
}

// ------------------------------------------------------------------------------------------------ UTF-8 helpers

// decode one code point at s[*i] (advancing *i); invalid bytes decode as themselves (U+0080..U+00FF)
static uint32_t u8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[*i];
    if (c < 0x80) return (*i)++, c;
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (len == 1 || *i + (size_t)len > n) return (*i)++, c;
    uint32_t cp = c & (0x3F >> (len - 1));
    for (int k = 1; k < len; k++) {
        if ((u[*i + k] & 0xC0) != 0x80) return (*i)++, c;
        cp = cp << 6 | (u[*i + k] & 0x3F);
    }
    *i += len;
    return cp;
}

// append a code point as UTF-8
static void u8_put(J *j, Buf *b, uint32_t cp) {
    char t[4];
    int n;
    if (cp < 0x80) t[0] = (char)cp, n = 1;
    else if (cp < 0x800) t[0] = (char)(0xC0 | cp >> 6), t[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        t[0] = (char)(0xE0 | cp >> 12), t[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), t[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        t[0] = (char)(0xF0 | cp >> 18), t[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), t[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    buf_add(j, b, t, (size_t)n);
}

// Python's str.isspace() (also what the lexer's \s matches)
static int py_isspace(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// length of the whitespace run ending at s[n] (Python rstrip)
static size_t ws_tail(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80 && end - st < 4) st--;
        size_t i = st;
        uint32_t c = u8_next(s, end, &i);
        if (i != end || !py_isspace(c)) break;
        end = st;
    }
    return n - end;
}

// length of the whitespace run starting at s[0] (Python lstrip)
static size_t ws_head(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t k = i;
        uint32_t c = u8_next(s, n, &k);
        if (!py_isspace(c)) break;
        i = k;
    }
    return i;
}

// number of code points
static size_t u8_len(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n;) u8_next(s, n, &i), c++;
    return c;
}

// Python's str.isprintable() for one code point (repr escapes the others); an approximation of the Unicode tables:
// controls, separators other than space, format characters, private use and non-characters are not printable
static int py_isprintable(uint32_t c) {
    if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return 0;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F))
        return 0;
    if (c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || c == 0xFFFE || c == 0xFFFF) return 0;
    if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E) return 0;
    if ((c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000 || (c >= 0xE0000 && c <= 0xE0FFF)) return 0;
    return 1;
}

// ------------------------------------------------------------------------------------------------ values

// the value kinds: Python's None/bool/int/float/str/list/dict plus jinja's Undefined, Namespace, Macro, loop, functions
enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_NS, V_MACRO, V_FUNC, V_LOOP };

// what a V_LIST is in Python: list, tuple, a generator (select/map/...), range, dict views, reversed iterator
enum { L_LIST, L_TUPLE, L_GEN, L_RANGE, L_ITEMS, L_KEYS, L_VALUES, L_REVITER };

struct JList;
struct JDict;
struct JMacro;
struct JFunc;
struct JLoop;

typedef struct JVal {
    uint8_t t;      // V_* kind
    uint8_t markup; // V_STR: a jinja Markup string (from |safe or |escape)
    uint32_t n;     // V_STR: length in bytes
    union {
        int64_t i;            // V_BOOL (0/1), V_INT
        double f;             // V_FLOAT
        const char *s;        // V_STR bytes (UTF-8, not NUL-terminated); V_UNDEF: hint for the error, or NULL
        struct JList *l;      // V_LIST
        struct JDict *d;      // V_DICT, V_NS (a namespace is a mutable dict of attributes)
        struct JMacro *m;     // V_MACRO
        struct JFunc *fn;     // V_FUNC: a global function or a bound method
        struct JLoop *loop;   // V_LOOP: the `loop` variable of a for loop
    } u;
} JVal;

typedef struct JList {
    JVal *v;          // items
    uint32_t n;       // count
    uint8_t kind;     // L_* (Python type)
    uint8_t consumed; // L_GEN / L_REVITER: iterated once already (a Python iterator is then empty)
    int64_t r0, r1, rs; // L_RANGE: start, stop, step (what Python prints: range(r0, r1[, rs]))
} JList;

typedef struct JDict {
    JVal *k, *v;      // keys / values in insertion order
    uint32_t n, cap;  // count / allocated
} JDict;

// value constructors
static JVal v_undef(const char *hint) { JVal v = {.t = V_UNDEF}; v.u.s = hint; return v; }
static JVal v_none(void) { return (JVal){.t = V_NONE}; }
static JVal v_bool(int b) { JVal v = {.t = V_BOOL}; v.u.i = !!b; return v; }
static JVal v_int(int64_t i) { JVal v = {.t = V_INT}; v.u.i = i; return v; }
static JVal v_float(double f) { JVal v = {.t = V_FLOAT}; v.u.f = f; return v; }
static JVal v_strn(const char *s, size_t n) { JVal v = {.t = V_STR, .n = (uint32_t)n}; v.u.s = s; return v; }
static JVal v_cstr(const char *s) { return v_strn(s, strlen(s)); }

// a new list of n items (zeroed = undefined) of a kind
static JVal v_list(J *j, uint32_t n, int kind) {
    JList *l = aalloc(j, sizeof *l);
    l->v = n ? aalloc(j, sizeof(JVal) * n) : NULL;
    l->n = n, l->kind = (uint8_t)kind;
    JVal v = {.t = V_LIST};
    v.u.l = l;
    return v;
}

// a new empty dict (or namespace with t = V_NS)
static JVal v_dict(J *j, int t) {
    JVal v = {.t = (uint8_t)t};
    v.u.d = aalloc(j, sizeof(JDict));
    return v;
}

// a string value copied from a buffer
static JVal v_buf(J *j, const Buf *b) { return v_strn(b->n ? astrndup(j, b->p, b->n) : "", b->n); }

// Python numbers (bool is an int) and their float value
static int is_num(JVal v) { return v.t == V_BOOL || v.t == V_INT || v.t == V_FLOAT; }
static double num_f(JVal v) { return v.t == V_FLOAT ? v.u.f : (double)v.u.i; }

// Python's name for the type (error messages)
static const char *type_name(JVal v) {
    static const char *names[] = {"Undefined", "NoneType", "bool", "int",       "float",    "str",
                                  "list",      "dict",     "Namespace", "Macro", "function", "LoopContext"};
    if (v.t == V_LIST) {
        static const char *ln[] = {"list", "tuple", "generator", "range", "dict_items", "dict_keys", "dict_values",
                                   "list_reverseiterator"};
        return ln[v.u.l->kind];
    }
    return names[v.t];
}

// is a a str equal to s
static int str_eq(JVal a, const char *s) { return a.t == V_STR && a.n == strlen(s) && !memcmp(a.u.s, s, a.n); }

// Python equality (==)
static int v_eq(JVal a, JVal b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) return a.u.i == b.u.i;
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case V_UNDEF: case V_NONE: return 1;
    case V_STR: return a.n == b.n && !memcmp(a.u.s, b.u.s, a.n);
    case V_LIST: {
        JList *x = a.u.l, *y = b.u.l;
        if (x == y) return 1;
        // list == list, tuple == tuple, range == range (same values): never across kinds, as in Python
        int seqa = x->kind == L_LIST || x->kind == L_TUPLE || x->kind == L_RANGE;
        int seqb = y->kind == L_LIST || y->kind == L_TUPLE || y->kind == L_RANGE;
        if (!seqa || !seqb || x->kind != y->kind || x->n != y->n) return 0;
        for (uint32_t i = 0; i < x->n; i++)
            if (!v_eq(x->v[i], y->v[i])) return 0;
        return 1;
    }
    case V_DICT: {
        JDict *x = a.u.d, *y = b.u.d;
        if (x->n != y->n) return 0;
        for (uint32_t i = 0; i < x->n; i++) {
            uint32_t k = 0;
            while (k < y->n && !v_eq(x->k[i], y->k[k])) k++;
            if (k == y->n || !v_eq(x->v[i], y->v[k])) return 0;
        }
        return 1;
    }
    default: return a.u.d == b.u.d; // identity
    }
}

// look a key up in a dict: index or -1
static int64_t dict_find(JDict *d, JVal key) {
    for (uint32_t i = 0; i < d->n; i++)
        if (v_eq(d->k[i], key)) return i;
    return -1;
}
// look a str key up in a dict: index or -1
static int64_t dict_find_s(JDict *d, const char *s, size_t n) {
    for (uint32_t i = 0; i < d->n; i++)
        if (d->k[i].t == V_STR && d->k[i].n == n && !memcmp(d->k[i].u.s, s, n)) return i;
    return -1;
}

// set d[key] = val (replacing an existing key in place, as Python does)
static void dict_set(J *j, JDict *d, JVal key, JVal val) {
    int64_t i = dict_find(d, key);
    if (i >= 0) { d->v[i] = val; return; }
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 8;
        JVal *k = aalloc(j, sizeof(JVal) * cap), *v = aalloc(j, sizeof(JVal) * cap);
        if (d->n) memcpy(k, d->k, sizeof(JVal) * d->n), memcpy(v, d->v, sizeof(JVal) * d->n);
        d->k = k, d->v = v, d->cap = cap;
    }
    d->k[d->n] = key, d->v[d->n] = val, d->n++;
}

// ------------------------------------------------------------------------------------------------ lexer

// token kinds (jinja2/lexer.py); operators are T_OP with op = the operator's first char or an OP_* code
enum { T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP, T_EOF };
enum { OP_FLOORDIV = 256, OP_POW, OP_EQ, OP_NE, OP_GE, OP_LE };

typedef struct {
    int type;        // T_*
    int line;        // 1-based template line
    int op;          // T_OP: the operator
    const char *s;   // T_TEXT / T_STRING: the (unescaped) text; T_NAME: the name (NUL-terminated)
    size_t n;        // length of s
    int64_t i;       // T_INT
    double f;        // T_FLOAT
} Tok;

typedef struct {
    J *j;            // errors + arena
    const char *src; // normalized template source
    size_t n, pos;   // its length / current position
    int line;        // current line
    Tok *toks;       // the tokens
    int ntok, cap;   // count / allocated
} Lexer;

// append a token (at the current line)
static Tok *lex_push(Lexer *L, int type) {
    if (L->ntok == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        Tok *t = aalloc(L->j, sizeof(Tok) * (size_t)cap);
        if (L->ntok) memcpy(t, L->toks, sizeof(Tok) * (size_t)L->ntok);
        L->toks = t, L->cap = cap;
    }
    Tok *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->type = type, t->line = L->line;
    return t;
}

// newlines in s[0..n)
static int count_nl(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += s[i] == '\n';
    return c;
}

// emit template text (skipped when empty)
static void lex_text(Lexer *L, const char *s, size_t n, int line) {
    if (!n) return;
    Tok *t = lex_push(L, T_TEXT);
    t->s = s, t->n = n, t->line = line;
}

// decode a string literal's body as Python's "unicode-escape" codec does after backslashreplace (jinja2 lexer)
static void lex_unescape(Lexer *L, const char *s, size_t n, Tok *t) {
    J *j = L->j;
    Buf b = {0};
    buf_reserve(j, &b, n);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c != '\\' || i + 1 >= n) {
            buf_putc(j, &b, (char)c), i++;
            continue;
        }
        unsigned char e = (unsigned char)s[i + 1];
        i += 2;
        switch (e) {
        case '\n': break;
        case '\\': buf_putc(j, &b, '\\'); break;
        case '\'': buf_putc(j, &b, '\''); break;
        case '"': buf_putc(j, &b, '"'); break;
        case 'a': buf_putc(j, &b, 7); break;
        case 'b': buf_putc(j, &b, 8); break;
        case 'f': buf_putc(j, &b, 12); break;
        case 'n': buf_putc(j, &b, '\n'); break;
        case 'r': buf_putc(j, &b, '\r'); break;
        case 't': buf_putc(j, &b, '\t'); break;
        case 'v': buf_putc(j, &b, 11); break;
        case 'x': case 'u': case 'U': {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < nd; k++) {
                if (i + (size_t)k >= n || !isxdigit((unsigned char)s[i + k]))
                    jfail(j, t->line, "invalid \\%c escape in a string literal", e);
                char h = s[i + k];
                cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            }
            i += (size_t)nd;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                jfail(j, t->line, "unsupported escape in a string literal (surrogate or out of range)");
            u8_put(j, &b, cp);
            break;
        }
        case 'N': jfail(j, t->line, "unsupported \\N{...} escape in a string literal");
        default:
            if (e >= '0' && e <= '7') {
                uint32_t cp = e - '0';
                for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++) cp = cp * 8 + (uint32_t)(s[i++] - '0');
                u8_put(j, &b, cp);
            } else if (e >= 0x80) { // a backslash before a non-ASCII char: backslashreplace made it \xNN / \uNNNN
                size_t k = i - 1;
                uint32_t cp = u8_next(s, n, &k);
                i = k;
                buf_putc(j, &b, '\\');
                if (cp < 0x100) buf_printf(j, &b, "x%02x", cp);
                else if (cp < 0x10000) buf_printf(j, &b, "u%04x", cp);
                else buf_printf(j, &b, "U%08x", cp);
            } else buf_putc(j, &b, '\\'), buf_putc(j, &b, (char)e); // unknown escape: kept
        }
    }
    t->s = b.n ? b.p : "", t->n = b.n;
}

// parse an integer/float literal at L->pos (jinja2's integer_re / float_re); 0 when none starts here
static int lex_number(Lexer *L) {
    const char *s = L->src + L->pos;
    size_t n = L->n - L->pos, i = 0;
    if (!n || !isdigit((unsigned char)s[0])) return 0;
    size_t span = 0;
    while (span < n && (isalnum((unsigned char)s[span]) || s[span] == '_' || s[span] == '.')) span++;
    if (span > 100) jfail(L->j, L->line, "unsupported: number literal longer than 100 characters");
    char buf[128];
    size_t bn = 0;
    // prefixed integers
    if (s[0] == '0' && n > 2 && strchr("bBoOxX", s[1])) {
        int base = (s[1] | 32) == 'b' ? 2 : (s[1] | 32) == 'o' ? 8 : 16;
        i = 2;
        int64_t v = 0;
        int nd = 0;
        while (i < n) {
            if (s[i] == '_' && i + 1 < n && isxdigit((unsigned char)s[i + 1])) i++;
            int d = isdigit((unsigned char)s[i]) ? s[i] - '0' : isxdigit((unsigned char)s[i]) ? (s[i] | 32) - 'a' + 10 : 99;
            if (d >= base) break;
            if (v > (INT64_MAX - d) / base) jfail(L->j, L->line, "integer literal too large");
            v = v * base + d, nd++, i++;
        }
        if (nd) {
            Tok *t = lex_push(L, T_INT);
            t->i = v;
            L->pos += i;
            return 1;
        }
        i = 0;
    }
    // digits with single underscores
    while (i < n && (isdigit((unsigned char)s[i]) || (s[i] == '_' && i + 1 < n && isdigit((unsigned char)s[i + 1])))) {
        if (s[i] != '_' && bn < sizeof buf - 1) buf[bn++] = s[i];
        i++;
    }
    size_t int_end = i, int_bn = bn;
    int is_float = 0;
    int after_dot = L->pos > 0 && L->src[L->pos - 1] == '.';
    if (!after_dot) {
        size_t k = i, kb = bn;
        char fb[128];
        memcpy(fb, buf, bn);
        if (k + 1 < n && s[k] == '.' && isdigit((unsigned char)s[k + 1])) {
            fb[kb++] = '.', k++;
            while (k < n && (isdigit((unsigned char)s[k]) || (s[k] == '_' && k + 1 < n && isdigit((unsigned char)s[k + 1])))) {
                if (s[k] != '_' && kb < sizeof fb - 8) fb[kb++] = s[k];
                k++;
            }
            is_float = 1;
        }
        if (k < n && (s[k] | 32) == 'e') {
            size_t e = k + 1;
            if (e < n && (s[e] == '+' || s[e] == '-')) e++;
            if (e < n && isdigit((unsigned char)s[e])) {
                fb[kb++] = 'e';
                if (s[k + 1] == '-') fb[kb++] = '-';
                while (e < n && (isdigit((unsigned char)s[e]) || (s[e] == '_' && e + 1 < n && isdigit((unsigned char)s[e + 1])))) {
                    if (s[e] != '_' && kb < sizeof fb - 2) fb[kb++] = s[e];
                    e++;
                }
                k = e, is_float = 1;
            }
        }
        if (is_float) {
            fb[kb] = 0;
            Tok *t = lex_push(L, T_FLOAT);
            t->f = strtod(fb, NULL);
            L->pos += k;
            return 1;
        }
    }
    // integer_re: [1-9](_?\d)* | 0(_?0)*
    buf[int_bn] = 0;
    if (buf[0] == '0') { // only zeros may follow a leading 0
        size_t k = 1;
        while (k < int_end && (s[k] == '0' || (s[k] == '_' && k + 1 < int_end && s[k + 1] == '0'))) k++;
        int_end = k;
        Tok *t = lex_push(L, T_INT);
        t->i = 0;
        L->pos += int_end;
        return 1;
    }
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) jfail(L->j, L->line, "integer literal too large");
    Tok *t = lex_push(L, T_INT);
    t->i = v;
    L->pos += int_end;
    return 1;
}

// tokenize the inside of {{ }} / {% %} up to its end tag; returns the position after the end tag (and its
// whitespace control) and whether the end consumed a trailing newline
static void lex_tag(Lexer *L, int block, int *ends_nl) {
    J *j = L->j;
    int depth = 0; // open ( [ { : end tags are not recognized inside them (jinja's balancing stack)
    int start_line = L->line;
    for (;;) {
        if (L->pos >= L->n) jfail(j, start_line, "unexpected end of template: missing end of %s tag", block ? "block" : "variable");
        const char *s = L->src + L->pos;
        size_t rem = L->n - L->pos;
        if (depth == 0) {
            if (block) {
                if (rem >= 3 && s[0] == '+' && s[1] == '%' && s[2] == '}') {
                    lex_push(L, T_BLOCK_END), L->pos += 3, *ends_nl = 0;
                    return;
                }
                if (rem >= 3 && s[0] == '-' && s[1] == '%' && s[2] == '}') {
                    lex_push(L, T_BLOCK_END);
                    L->pos += 3;
                    size_t w = ws_head(L->src + L->pos, L->n - L->pos);
                    L->line += count_nl(L->src + L->pos, w);
                    *ends_nl = w > 0 && L->src[L->pos + w - 1] == '\n';
                    L->pos += w;
                    return;
                }
                if (rem >= 2 && s[0] == '%' && s[1] == '}') {
                    lex_push(L, T_BLOCK_END);
                    L->pos += 2;
                    *ends_nl = 0;
                    if (L->pos < L->n && L->src[L->pos] == '\n') L->pos++, L->line++, *ends_nl = 1; // trim_blocks
                    return;
                }
            } else {
                if (rem >= 3 && s[0] == '-' && s[1] == '}' && s[2] == '}') {
                    lex_push(L, T_VAR_END);
                    L->pos += 3;
                    size_t w = ws_head(L->src + L->pos, L->n - L->pos);
                    L->line += count_nl(L->src + L->pos, w);
                    *ends_nl = w > 0 && L->src[L->pos + w - 1] == '\n';
                    L->pos += w;
                    return;
                }
                if (rem >= 2 && s[0] == '}' && s[1] == '}') {
                    lex_push(L, T_VAR_END), L->pos += 2, *ends_nl = 0;
                    return;
                }
            }
        }
        unsigned char c = (unsigned char)s[0];
        if (c < 0x80 && (isspace(c) || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x1F)) {
            if (c == '\n') L->line++;
            L->pos++;
            continue;
        }
        if (c >= 0x80) { // Unicode whitespace is skipped; other non-ASCII is not a token
            size_t k = L->pos;
            uint32_t cp = u8_next(L->src, L->n, &k);
            if (py_isspace(cp)) { L->pos = k; continue; }
            jfail(j, L->line, "unexpected character U+%04X in a tag", cp);
        }
        if (lex_number(L)) continue;
        if (isalpha(c) || c == '_') {
            size_t k = 0;
            while (k < rem && (isalnum((unsigned char)s[k]) || s[k] == '_')) k++;
            Tok *t = lex_push(L, T_NAME);
            t->s = astrndup(j, s, k), t->n = k;
            L->pos += k;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t k = 1;
            while (k < rem && s[k] != (char)c) {
                if (s[k] == '\\' && k + 1 < rem) k++;
                k++;
            }
            if (k >= rem) jfail(j, L->line, "unterminated string literal");
            Tok *t = lex_push(L, T_STRING);
            lex_unescape(L, s + 1, k - 1, t);
            L->line += count_nl(s, k);
            L->pos += k + 1;
            continue;
        }
        // operators, longest first
        int op = 0;
        size_t len = 2;
        if (rem >= 2) {
            if (s[0] == '/' && s[1] == '/') op = OP_FLOORDIV;
            else if (s[0] == '*' && s[1] == '*') op = OP_POW;
            else if (s[0] == '=' && s[1] == '=') op = OP_EQ;
            else if (s[0] == '!' && s[1] == '=') op = OP_NE;
            else if (s[0] == '>' && s[1] == '=') op = OP_GE;
            else if (s[0] == '<' && s[1] == '=') op = OP_LE;
        }
        if (!op) {
            len = 1;
            if (strchr("+-/*%~[](){}><=.:|,;", c)) op = c;
            else jfail(j, L->line, "unexpected character '%c' in a tag", c);
        }
        if (op == '(' || op == '[' || op == '{') depth++;
        if (op == ')' || op == ']' || op == '}') {
            if (depth == 0) jfail(j, L->line, "unexpected '%c'", op);
            depth--;
        }
        Tok *t = lex_push(L, T_OP);
        t->op = op;
        L->pos += len;
    }
}

// is s (at a tag opener) "{% raw %}" (with - / + control)? sets *after to the position after it, *strip_after
static int lex_is_raw(const char *s, size_t n, size_t *after, int *strip_after) {
    size_t i = 2;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    while (i < n && isspace((unsigned char)s[i])) i++;
    if (i + 3 > n || memcmp(s + i, "raw", 3)) return 0;
    i += 3;
    while (i < n && isspace((unsigned char)s[i])) i++;
    if (i + 3 <= n && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}') { *after = i + 3, *strip_after = 1; return 1; }
    if (i + 2 <= n && s[i] == '%' && s[i + 1] == '}') { *after = i + 2, *strip_after = 0; return 1; }
    return 0;
}

// tokenize a whole (normalized) template
static void lex_all(Lexer *L) {
    J *j = L->j;
    int line_starting = 1;
    L->line = 1;
    while (L->pos < L->n) {
        const char *s = L->src + L->pos;
        size_t rem = L->n - L->pos, k = 0;
        while (k + 1 < rem && !(s[k] == '{' && (s[k + 1] == '{' || s[k + 1] == '%' || s[k + 1] == '#'))) k++;
        if (k + 1 >= rem) { // no more tags
            lex_text(L, s, rem, L->line);
            L->line += count_nl(s, rem);
            L->pos = L->n;
            break;
        }
        char kind = s[k + 1];
        char sign = k + 2 < rem ? s[k + 2] : 0;
        if (sign != '-' && sign != '+') sign = 0;
        size_t tn = k;
        if (sign == '-') tn -= ws_tail(s, k);
        else if (sign != '+' && kind != '{') { // lstrip_blocks
            size_t lp = k;
            while (lp > 0 && s[lp - 1] != '\n') lp--;
            if ((lp > 0 || line_starting) && lp < k && ws_head(s + lp, k - lp) == k - lp) tn = lp;
        }
        int text_line = L->line;
        L->line += count_nl(s, k);
        size_t raw_after;
        int raw_strip;
        if (kind == '%' && lex_is_raw(s + k, rem - k, &raw_after, &raw_strip)) {
            lex_text(L, s, tn, text_line);
            size_t p = L->pos + k + raw_after;
            if (raw_strip) p += ws_head(L->src + p, L->n - p);
            // find {% endraw %}
            size_t q = p;
            for (;;) {
                while (q + 1 < L->n && !(L->src[q] == '{' && L->src[q + 1] == '%')) q++;
                if (q + 1 >= L->n) jfail(j, text_line, "missing end of raw directive");
                size_t i = q + 2;
                char sg = i < L->n && (L->src[i] == '-' || L->src[i] == '+') ? L->src[i] : 0;
                if (sg) i++;
                while (i < L->n && isspace((unsigned char)L->src[i])) i++;
                if (i + 6 <= L->n && !memcmp(L->src + i, "endraw", 6)) {
                    i += 6;
                    while (i < L->n && isspace((unsigned char)L->src[i])) i++;
                    int end_nl = 0;
                    size_t after = 0;
                    if (i + 3 <= L->n && L->src[i] == '+' && L->src[i + 1] == '%' && L->src[i + 2] == '}') after = i + 3;
                    else if (i + 3 <= L->n && L->src[i] == '-' && L->src[i + 1] == '%' && L->src[i + 2] == '}') {
                        after = i + 3;
                        after += ws_head(L->src + after, L->n - after);
                        end_nl = after > i + 3 && L->src[after - 1] == '\n';
                    } else if (i + 2 <= L->n && L->src[i] == '%' && L->src[i + 1] == '}') {
                        after = i + 2;
                        if (after < L->n && L->src[after] == '\n') after++, end_nl = 1;
                    }
                    if (after) {
                        size_t dn = q - p;
                        if (sg == '-') dn -= ws_tail(L->src + p, dn);
                        else if (sg != '+') { // lstrip_blocks on the endraw tag
                            size_t lp = dn;
                            while (lp > 0 && L->src[p + lp - 1] != '\n') lp--;
                            if (lp > 0 && lp < dn && ws_head(L->src + p + lp, dn - lp) == dn - lp) dn = lp;
                        }
                        lex_text(L, L->src + p, dn, L->line);
                        L->line += count_nl(L->src + L->pos + k, after - (L->pos + k));
                        L->pos = after;
                        line_starting = end_nl;
                        break;
                    }
                }
                q += 2;
            }
            continue;
        }
        lex_text(L, s, tn, text_line);
        L->pos += k + 2 + (sign ? 1 : 0);
        int ends_nl = 0;
        if (kind == '#') { // comment: up to the first #}
            const char *c = L->src + L->pos;
            size_t cr = L->n - L->pos, e = 0;
            while (e + 1 < cr && !(c[e] == '#' && c[e + 1] == '}')) e++;
            if (e + 1 >= cr) jfail(j, L->line, "missing end of comment tag");
            L->line += count_nl(c, e);
            size_t after = L->pos + e + 2;
            if (e > 0 && c[e - 1] == '-') {
                size_t w = ws_head(L->src + after, L->n - after);
                L->line += count_nl(L->src + after, w);
                ends_nl = w > 0 && L->src[after + w - 1] == '\n';
                after += w;
            } else if (!(e > 0 && c[e - 1] == '+') && after < L->n && L->src[after] == '\n') after++, L->line++, ends_nl = 1;
            L->pos = after;
        } else {
            lex_push(L, kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN);
            lex_tag(L, kind == '%', &ends_nl);
        }
        line_starting = ends_nl;
    }
    lex_push(L, T_EOF);
}

// ------------------------------------------------------------------------------------------------ syntax tree

// node kinds: expressions (jinja2/nodes.py) and statements
enum {
    N_CONST, N_NAME, N_GETATTR, N_GETITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_NEG, N_POS, N_NOT, N_AND, N_OR,
    N_BINOP, N_CONCAT, N_COMPARE, N_COND, N_LIST, N_TUPLE, N_DICT, N_CAPTURE,
    S_TEXT, S_EMIT, S_IF, S_FOR, S_SET, S_SET_NS, S_SET_BLOCK, S_MACRO, S_BREAK, S_CONTINUE, S_BODY, S_FILTER_BLOCK,
    S_CALL_BLOCK, S_WITH
};

typedef struct Node Node;
struct Node {
    int kind;            // N_* / S_*
    int line;            // template line
    int op;              // N_BINOP: operator; N_TEST: negated
    const char *name;    // N_NAME / N_GETATTR attribute / N_FILTER / N_TEST / S_SET target / S_MACRO name
    const char *name2;   // S_SET_NS: the attribute
    JVal v;              // N_CONST value; S_TEXT text
    Node *a, *b, *c;     // children: operand(s), condition, slice parts, loop iterable / filter ...
    Node **list;         // args / items / body / compare operands / dict keys
    int nlist;           // count
    Node **list2;        // keyword values / else body / dict values
    int nlist2;          // count
    const char **names;  // keyword names / for targets / macro params / compare operators (as ints in ops)
    int nnames;          // count
    int *ops;            // N_COMPARE: operator of each operand
    uint8_t catch_varargs, catch_kwargs; // S_MACRO: its body reads varargs / kwargs
    uint8_t catch_caller; // S_MACRO: its body reads caller (a {% call %} block passes its body as caller=)
    uint8_t unpack;      // S_FOR: the target is a tuple (a, b / (a,)), each item is unpacked into it
    uint8_t unknown;     // N_FILTER / N_TEST: the name is no filter / test of jinja2 (an error when evaluated)
    uint8_t soft;        // N_FILTER / N_TEST: inside an if / inline-if (jinja2 then defers the unknown-name error)
};

typedef struct {
    J *j;            // errors + arena
    Tok *t;          // tokens
    int pos;         // current token
    int depth;       // expression / statement nesting
    int in_loop;     // inside a for body (break/continue allowed)
    int macro_varargs, macro_kwargs; // a Name varargs / kwargs was read (while parsing a macro body)
    int macro_caller; // a Name caller was read (while parsing a macro body)
    int soft;        // parsing inside an {% if %} or an inline if (jinja2's soft frame)
    Node **unknown;  // filter / test nodes with names jinja2 does not know (checked at the end of the parse)
    int nunknown, capunknown; // count / allocated
} Parser;

// token stream helpers: current token, the one k ahead, kind tests
static Tok *cur(Parser *p) { return &p->t[p->pos]; }
static Tok *peek(Parser *p, int k) {
    Tok *t = &p->t[p->pos];
    for (int i = 0; i < k && t->type != T_EOF; i++) t++;
    return t;
}
static int is_op(Tok *t, int op) { return t->type == T_OP && t->op == op; }
static int is_name(Tok *t, const char *s) { return t->type == T_NAME && !strcmp(t->s, s); }

// a token as error messages name it
static const char *tok_desc(Tok *t, char *buf, size_t cap) {
    switch (t->type) {
    case T_NAME: snprintf(buf, cap, "'%s'", t->s); break;
    case T_OP:
        if (t->op < 256) snprintf(buf, cap, "'%c'", t->op);
        else snprintf(buf, cap, "operator");
        break;
    case T_STRING: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    case T_BLOCK_END: return "end of statement block";
    case T_VAR_END: return "end of print statement";
    case T_EOF: return "end of template";
    default: return "token";
    }
    return buf;
}

// syntax error: expected what, got the current token
static void p_fail_tok(Parser *p, const char *what) __attribute__((noreturn));
static void p_fail_tok(Parser *p, const char *what) {
    char b[80];
    jfail(p->j, cur(p)->line, "syntax error: expected %s, got %s", what, tok_desc(cur(p), b, sizeof b));
}
// consume an operator / a name or fail
static void expect_op(Parser *p, int op) {
    if (!is_op(cur(p), op)) {
        char w[8] = {'\'', (char)op, '\'', 0};
        p_fail_tok(p, w);
    }
    p->pos++;
}
static const char *expect_name(Parser *p) {
    if (cur(p)->type != T_NAME) p_fail_tok(p, "a name");
    return p->t[p->pos++].s;
}

// a new node
static Node *mk(Parser *p, int kind, int line) {
    Node *n = aalloc(p->j, sizeof *n);
    n->kind = kind, n->line = line;
    return n;
}

// growable node array
typedef struct {
    Node **v;     // items
    int n, cap;   // count / allocated
} NVec;
// append to a node / string vector
static void nv_push(J *j, NVec *a, Node *n) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 8;
        Node **v = aalloc(j, sizeof(Node *) * (size_t)cap);
        if (a->n) memcpy(v, a->v, sizeof(Node *) * (size_t)a->n);
        a->v = v, a->cap = cap;
    }
    a->v[a->n++] = n;
}
typedef struct {
    const char **v; // items
    int n, cap;     // count / allocated
} SVec;
static void sv_push(J *j, SVec *a, const char *s) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 8;
        const char **v = aalloc(j, sizeof(char *) * (size_t)cap);
        if (a->n) memcpy(v, a->v, sizeof(char *) * (size_t)a->n);
        a->v = v, a->cap = cap;
    }
    a->v[a->n++] = s;
}

static Node *parse_expression(Parser *p, int with_condexpr);
static Node *parse_tuple(Parser *p, int with_condexpr, int explicit_parens);
static Node *parse_unary(Parser *p, int with_filter);
static Node *parse_primary(Parser *p);
static Node *parse_postfix(Parser *p, Node *n);

// one more level of nesting (bounded: a hostile template cannot exhaust the C stack)
static void enter(Parser *p) {
    if (++p->depth > J_MAX_DEPTH) jfail(p->j, cur(p)->line, "template nested too deeply");
}

// the filters and tests this interpreter implements (unknown names fail at parse time, as in jinja2)
static const char *const known_filters[] = {
    "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "indent", "int",
    "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
    "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique",
    "upper", "wordcount", "center", "batch", "format", "slice", NULL};
static const char *const jinja_filters[] = { // jinja2's other built-in filters: known to jinja2, not implemented here
    "attr", "filesizeformat", "forceescape", "groupby", "pprint", "random",
    "striptags", "truncate", "urlencode", "urlize", "wordwrap", "xmlattr", NULL};
static const char *const known_tests[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float",
    "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none",
    "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper", "==", "!=", ">", ">=", "<",
    "<=", NULL};
// is s in the NULL-terminated list l
static int in_list(const char *const *l, const char *s) {
    for (; *l; l++)
        if (!strcmp(*l, s)) return 1;
    return 0;
}

// remember a filter / test node whose name jinja2 does not know: outside an if / inline if that is a compile error
// in jinja2 (checked once the whole template is parsed), inside one an error only when it is evaluated
static void note_unknown(Parser *p, Node *n) {
    n->unknown = 1, n->soft = (uint8_t)p->soft;
    if (p->nunknown == p->capunknown) {
        int cap = p->capunknown ? p->capunknown * 2 : 16;
        Node **v = aalloc(p->j, sizeof(Node *) * (size_t)cap);
        if (p->nunknown) memcpy(v, p->unknown, sizeof(Node *) * (size_t)p->nunknown);
        p->unknown = v, p->capunknown = cap;
    }
    p->unknown[p->nunknown++] = n;
}

// a dotted filter / test name (jinja2 accepts "a.b" and then finds no such filter)
static const char *dotted_name(Parser *p, const char *name) {
    while (is_op(cur(p), '.')) {
        p->pos++;
        const char *more = expect_name(p);
        char *cat = aalloc(p->j, strlen(name) + strlen(more) + 2);
        sprintf(cat, "%s.%s", name, more);
        name = cat;
    }
    return name;
}

// call arguments: positional into args, keyword into kwn / kwv
static void parse_call_args(Parser *p, NVec *args, SVec *kwn, NVec *kwv) {
    int line = cur(p)->line;
    expect_op(p, '(');
    int require_comma = 0;
    while (!is_op(cur(p), ')')) {
        if (require_comma) {
            expect_op(p, ',');
            if (is_op(cur(p), ')')) break;
        }
        if (is_op(cur(p), '*') || (is_op(cur(p), OP_POW)))
            jfail(p->j, cur(p)->line, "unsupported construct: *args / **kwargs in a call");
        if (cur(p)->type == T_NAME && is_op(peek(p, 1), '=')) {
            const char *key = cur(p)->s;
            p->pos += 2;
            sv_push(p->j, kwn, key);
            nv_push(p->j, kwv, parse_expression(p, 1));
        } else {
            if (kwn->n) jfail(p->j, line, "invalid syntax for function call expression");
            nv_push(p->j, args, parse_expression(p, 1));
        }
        require_comma = 1;
    }
    expect_op(p, ')');
}

// store parsed call arguments in a node
static void fill_call(Parser *p, Node *n, NVec *args, SVec *kwn, NVec *kwv) {
    n->list = args->v, n->nlist = args->n;
    n->names = kwn->v, n->nnames = kwn->n;
    n->list2 = kwv->v, n->nlist2 = kwv->n;
}

// x|filter(args)|filter ...
static Node *parse_filter_name(Parser *p, Node *node);

static Node *parse_filter(Parser *p, Node *node) {
    while (is_op(cur(p), '|')) {
        p->pos++;
        node = parse_filter_name(p, node);
    }
    return node;
}

// one filter after its '|' (name and arguments) applied to node; {% filter name %} starts with one without '|'
static Node *parse_filter_name(Parser *p, Node *node) {
    {
        int line = cur(p)->line;
        const char *name = dotted_name(p, expect_name(p));
        Node *f = mk(p, N_FILTER, line);
        f->name = name, f->a = node;
        if (!in_list(known_filters, name) && !in_list(jinja_filters, name)) note_unknown(p, f);
        NVec args = {0}, kwv = {0};
        SVec kwn = {0};
        if (is_op(cur(p), '(')) parse_call_args(p, &args, &kwn, &kwv);
        fill_call(p, f, &args, &kwn, &kwv);
        node = f;
    }
    return node;
}

// x is [not] test [arg] / x is test(args)
static Node *parse_test(Parser *p, Node *node) {
    int line = cur(p)->line;
    p->pos++; // 'is'
    int negated = 0;
    if (is_name(cur(p), "not")) p->pos++, negated = 1;
    const char *name = dotted_name(p, expect_name(p));
    Node *t = mk(p, N_TEST, line);
    t->name = name, t->a = node;
    if (!in_list(known_tests, name)) note_unknown(p, t);
    NVec args = {0}, kwv = {0};
    SVec kwn = {0};
    Tok *c = cur(p);
    if (is_op(c, '(')) parse_call_args(p, &args, &kwn, &kwv);
    else if ((c->type == T_NAME || c->type == T_STRING || c->type == T_INT || c->type == T_FLOAT || is_op(c, '(') ||
              is_op(c, '[') || is_op(c, '{')) &&
             !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) jfail(p->j, c->line, "You cannot chain multiple tests with is");
        Node *arg = parse_postfix(p, parse_primary(p));
        nv_push(p->j, &args, arg);
    }
    fill_call(p, t, &args, &kwn, &kwv);
    if (negated) {
        Node *n = mk(p, N_NOT, line);
        n->a = t;
        return n;
    }
    return t;
}

// the filters, tests and calls that follow a unary expression (jinja's parse_filter_expr)
static Node *parse_filter_expr(Parser *p, Node *node) {
    for (;;) {
        if (is_op(cur(p), '|')) node = parse_filter(p, node);
        else if (is_name(cur(p), "is")) node = parse_test(p, node);
        else if (is_op(cur(p), '(')) {
            Node *c = mk(p, N_CALL, cur(p)->line);
            c->a = node;
            NVec args = {0}, kwv = {0};
            SVec kwn = {0};
            parse_call_args(p, &args, &kwn, &kwv);
            fill_call(p, c, &args, &kwn, &kwv);
            node = c;
        } else break;
    }
    return node;
}

// a[b], a[b:c:d], a.b, a.0, a(...)
static Node *parse_postfix(Parser *p, Node *node) {
    for (;;) {
        Tok *t = cur(p);
        if (is_op(t, '.')) {
            p->pos++;
            Tok *a = cur(p);
            if (a->type == T_NAME) {
                Node *g = mk(p, N_GETATTR, t->line);
                g->a = node, g->name = a->s;
                p->pos++;
                node = g;
            } else if (a->type == T_INT) {
                Node *g = mk(p, N_GETITEM, t->line), *k = mk(p, N_CONST, a->line);
                k->v = v_int(a->i);
                g->a = node, g->b = k;
                p->pos++;
                node = g;
            } else p_fail_tok(p, "name or number");
        } else if (is_op(t, '[')) {
            p->pos++;
            Node *sub;
            Node *parts[3] = {0};
            int is_slice = 0;
            if (is_op(cur(p), ']')) p_fail_tok(p, "an expression");
            if (!is_op(cur(p), ':')) {
                parts[0] = parse_expression(p, 1);
                if (is_op(cur(p), ':')) is_slice = 1;
            } else is_slice = 1;
            if (is_slice) {
                expect_op(p, ':');
                if (!is_op(cur(p), ']') && !is_op(cur(p), ',') && !is_op(cur(p), ':')) parts[1] = parse_expression(p, 1);
                if (is_op(cur(p), ':')) {
                    p->pos++;
                    if (!is_op(cur(p), ']') && !is_op(cur(p), ',')) parts[2] = parse_expression(p, 1);
                }
                sub = mk(p, N_SLICE, t->line);
                sub->a = node, sub->b = parts[0], sub->c = parts[1];
                sub->list = aalloc(p->j, sizeof(Node *));
                sub->list[0] = parts[2], sub->nlist = 1;
            } else {
                sub = mk(p, N_GETITEM, t->line);
                sub->a = node, sub->b = parts[0];
            }
            if (is_op(cur(p), ',')) jfail(p->j, t->line, "unsupported construct: subscript with a tuple");
            expect_op(p, ']');
            node = sub;
        } else if (is_op(t, '(')) {
            Node *c = mk(p, N_CALL, t->line);
            c->a = node;
            NVec args = {0}, kwv = {0};
            SVec kwn = {0};
            parse_call_args(p, &args, &kwn, &kwv);
            fill_call(p, c, &args, &kwn, &kwv);
            node = c;
        } else break;
    }
    return node;
}

// names, constants, (tuples), [lists], {dicts} (jinja's parse_primary)
static Node *parse_primary(Parser *p) {
    Tok *t = cur(p);
    Node *n;
    enter(p);
    if (t->type == T_NAME) {
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True") || !strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n = mk(p, N_CONST, t->line);
            n->v = v_bool(t->s[0] == 't' || t->s[0] == 'T');
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n = mk(p, N_CONST, t->line);
            n->v = v_none();
        } else {
            n = mk(p, N_NAME, t->line);
            n->name = t->s;
            if (!strcmp(t->s, "varargs")) p->macro_varargs = 1;
            if (!strcmp(t->s, "kwargs")) p->macro_kwargs = 1;
            if (!strcmp(t->s, "caller")) p->macro_caller = 1;
        }
        p->pos++;
    } else if (t->type == T_STRING) {
        n = mk(p, N_CONST, t->line);
        Buf b = {0};
        while (cur(p)->type == T_STRING) buf_add(p->j, &b, cur(p)->s, cur(p)->n), p->pos++;
        n->v = v_strn(b.n ? b.p : "", b.n);
    } else if (t->type == T_INT || t->type == T_FLOAT) {
        n = mk(p, N_CONST, t->line);
        n->v = t->type == T_INT ? v_int(t->i) : v_float(t->f);
        p->pos++;
    } else if (is_op(t, '(')) {
        p->pos++;
        n = parse_tuple(p, 1, 1);
        expect_op(p, ')');
    } else if (is_op(t, '[')) {
        p->pos++;
        n = mk(p, N_LIST, t->line);
        NVec items = {0};
        while (!is_op(cur(p), ']')) {
            if (items.n) expect_op(p, ',');
            if (is_op(cur(p), ']')) break;
            nv_push(p->j, &items, parse_expression(p, 1));
        }
        expect_op(p, ']');
        n->list = items.v, n->nlist = items.n;
    } else if (is_op(t, '{')) {
        p->pos++;
        n = mk(p, N_DICT, t->line);
        NVec keys = {0}, vals = {0};
        while (!is_op(cur(p), '}')) {
            if (keys.n) expect_op(p, ',');
            if (is_op(cur(p), '}')) break;
            nv_push(p->j, &keys, parse_expression(p, 1));
            expect_op(p, ':');
            nv_push(p->j, &vals, parse_expression(p, 1));
        }
        expect_op(p, '}');
        n->list = keys.v, n->nlist = keys.n, n->list2 = vals.v, n->nlist2 = vals.n;
    } else p_fail_tok(p, "an expression");
    p->depth--;
    return n;
}

// -x / +x, then postfix and (optionally) filters
static Node *parse_unary(Parser *p, int with_filter) {
    Tok *t = cur(p);
    Node *n;
    enter(p);
    if (is_op(t, '-') || is_op(t, '+')) {
        p->pos++;
        n = mk(p, t->op == '-' ? N_NEG : N_POS, t->line);
        n->a = parse_unary(p, 0);
    } else n = parse_primary(p);
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

// a binary operator node
static Node *binop(Parser *p, int op, int line, Node *a, Node *b) {
    Node *n = mk(p, N_BINOP, line);
    n->op = op, n->a = a, n->b = b;
    return n;
}

// the precedence levels of jinja's parser: ** (left-associative), * / // %, ~, + -
static Node *parse_pow(Parser *p) {
    Node *l = parse_unary(p, 1);
    while (is_op(cur(p), OP_POW)) {
        int line = cur(p)->line;
        p->pos++;
        l = binop(p, OP_POW, line, l, parse_unary(p, 1));
    }
    return l;
}
static Node *parse_math2(Parser *p) {
    Node *l = parse_pow(p);
    while (is_op(cur(p), '*') || is_op(cur(p), '/') || is_op(cur(p), OP_FLOORDIV) || is_op(cur(p), '%')) {
        int op = cur(p)->op, line = cur(p)->line;
        p->pos++;
        l = binop(p, op, line, l, parse_pow(p));
    }
    return l;
}
static Node *parse_concat(Parser *p) {
    Node *l = parse_math2(p);
    if (!is_op(cur(p), '~')) return l;
    Node *n = mk(p, N_CONCAT, cur(p)->line);
    NVec items = {0};
    nv_push(p->j, &items, l);
    while (is_op(cur(p), '~')) p->pos++, nv_push(p->j, &items, parse_math2(p));
    n->list = items.v, n->nlist = items.n;
    return n;
}
static Node *parse_math1(Parser *p) {
    Node *l = parse_concat(p);
    while (is_op(cur(p), '+') || is_op(cur(p), '-')) {
        int op = cur(p)->op, line = cur(p)->line;
        p->pos++;
        l = binop(p, op, line, l, parse_concat(p));
    }
    return l;
}

// comparison operator codes for N_COMPARE
enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_NOTIN };

// chained comparisons, in, not in
static Node *parse_compare(Parser *p) {
    int line = cur(p)->line;
    Node *first = parse_math1(p);
    NVec operands = {0};
    int ops[64], nops = 0;
    for (;;) {
        Tok *t = cur(p);
        int op = -1;
        if (is_op(t, OP_EQ)) op = C_EQ;
        else if (is_op(t, OP_NE)) op = C_NE;
        else if (is_op(t, '<')) op = C_LT;
        else if (is_op(t, OP_LE)) op = C_LE;
        else if (is_op(t, '>')) op = C_GT;
        else if (is_op(t, OP_GE)) op = C_GE;
        else if (is_name(t, "in")) op = C_IN;
        else if (is_name(t, "not") && is_name(peek(p, 1), "in")) op = C_NOTIN, p->pos++;
        if (op < 0) break;
        p->pos++;
        if (nops == 64) jfail(p->j, t->line, "comparison chain too long");
        ops[nops++] = op;
        nv_push(p->j, &operands, parse_math1(p));
    }
    if (!nops) return first;
    Node *n = mk(p, N_COMPARE, line);
    n->a = first, n->list = operands.v, n->nlist = operands.n;
    n->ops = aalloc(p->j, sizeof(int) * (size_t)nops);
    memcpy(n->ops, ops, sizeof(int) * (size_t)nops);
    return n;
}
// not / and / or
static Node *parse_not(Parser *p) {
    if (is_name(cur(p), "not")) {
        Node *n = mk(p, N_NOT, cur(p)->line);
        p->pos++;
        enter(p);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}
static Node *parse_and(Parser *p) {
    Node *l = parse_not(p);
    while (is_name(cur(p), "and")) {
        Node *n = mk(p, N_AND, cur(p)->line);
        p->pos++;
        n->a = l, n->b = parse_not(p);
        l = n;
    }
    return l;
}
static Node *parse_or(Parser *p) {
    Node *l = parse_and(p);
    while (is_name(cur(p), "or")) {
        Node *n = mk(p, N_OR, cur(p)->line);
        p->pos++;
        n->a = l, n->b = parse_and(p);
        l = n;
    }
    return l;
}

// an expression with inline ifs (a if c else b, chained)
static Node *parse_expression(Parser *p, int with_condexpr) {
    enter(p);
    int first_unknown = p->nunknown, soft = p->soft;
    Node *e = parse_or(p);
    if (with_condexpr) {
        while (is_name(cur(p), "if")) {
            p->soft = 1;
            for (int i = first_unknown; i < p->nunknown; i++) p->unknown[i]->soft = 1;
            Node *n = mk(p, N_COND, cur(p)->line);
            p->pos++;
            n->b = parse_or(p); // condition
            n->a = e;           // value when true
            if (is_name(cur(p), "else")) {
                p->pos++;
                n->c = parse_expression(p, 1);
            }
            e = n;
        }
    }
    p->soft = soft;
    p->depth--;
    return e;
}

// an expression or a tuple "a, b" (jinja's parse_tuple)
static Node *parse_tuple(Parser *p, int with_condexpr, int explicit_parens) {
    int line = cur(p)->line;
    NVec items = {0};
    int is_tuple = 0;
    for (;;) {
        if (items.n) expect_op(p, ',');
        Tok *t = cur(p);
        if (t->type == T_BLOCK_END || t->type == T_VAR_END || is_op(t, ')')) break;
        nv_push(p->j, &items, parse_expression(p, with_condexpr));
        if (is_op(cur(p), ',')) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (items.n) return items.v[0];
        if (!explicit_parens) p_fail_tok(p, "an expression");
    }
    Node *n = mk(p, N_TUPLE, line);
    n->list = items.v, n->nlist = items.n;
    return n;
}

// statements up to a block tag named in ends (returns its index; the tag's name is consumed, its end is not)
static int parse_body(Parser *p, const char *const *ends, NVec *out);

// the %} that closes a statement
static void expect_block_end(Parser *p) {
    if (cur(p)->type != T_BLOCK_END) p_fail_tok(p, "end of statement block");
    p->pos++;
}

// the body of a block until one of ends; the closing tag (when it has no arguments) consumed too
static Node *body_node(Parser *p, int line, NVec *v) {
    Node *b = mk(p, S_BODY, line);
    b->list = v->v, b->nlist = v->n;
    return b;
}

// {% for targets in iter [if cond] %} body [{% else %} body] {% endfor %}
// the targets of set / for / with: a name, names separated by commas, or either in parentheses, as jinja2's
// parse_assign_target reads them; returns whether they unpack (a comma among them: `a, b`, `(a,)`; not `(a)`).
// A trailing comma outside parentheses is a syntax error, as in jinja2 (`set a, = x`)
static int parse_targets(Parser *p, SVec *targets) {
    int paren = is_op(cur(p), '('), tuple = 0;
    if (paren) p->pos++;
    for (;;) {
        sv_push(p->j, targets, expect_name(p));
        if (!is_op(cur(p), ',')) break;
        p->pos++, tuple = 1;
        if (paren && is_op(cur(p), ')')) break; // (a, b,)
        if (!paren && (is_op(cur(p), '=') || is_name(cur(p), "in"))) p_fail_tok(p, "a name");
    }
    if (paren) expect_op(p, ')');
    return tuple;
}

static Node *parse_for(Parser *p, int line) {
    Node *n = mk(p, S_FOR, line);
    SVec targets = {0};
    int tuple = parse_targets(p, &targets);
    n->names = targets.v, n->nnames = targets.n;
    n->unpack = (uint8_t)tuple;
    if (!is_name(cur(p), "in")) p_fail_tok(p, "'in'");
    p->pos++;
    n->a = parse_tuple(p, 0, 0);
    if (is_name(cur(p), "if")) {
        p->pos++;
        n->b = parse_expression(p, 1);
    }
    if (is_name(cur(p), "recursive")) n->op = 1, p->pos++; // loop(items) renders the body for items, one level down
    expect_block_end(p);
    static const char *const ends1[] = {"endfor", "else", NULL};
    NVec body = {0}, els = {0};
    p->in_loop++;
    int soft = p->soft;
    p->soft = 0; // the loop body is an inner (not soft) frame in jinja2
    int which = parse_body(p, ends1, &body);
    p->soft = soft;
    p->in_loop--;
    expect_block_end(p);
    if (which == 1) {
        static const char *const ends2[] = {"endfor", NULL};
        parse_body(p, ends2, &els);
        expect_block_end(p);
    }
    n->list = body.v, n->nlist = body.n, n->list2 = els.v, n->nlist2 = els.n;
    return n;
}

// {% if c %} ... {% elif c %} ... {% else %} ... {% endif %}: a chain of S_IF nodes (a = condition, list = body,
// list2 = else body holding the next S_IF for an elif)
static Node *parse_if(Parser *p, int line) {
    Node *n = mk(p, S_IF, line);
    int soft = p->soft;
    p->soft = 1;
    n->a = parse_tuple(p, 0, 0);
    expect_block_end(p);
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    NVec body = {0};
    int which = parse_body(p, ends, &body);
    n->list = body.v, n->nlist = body.n;
    if (which == 0) {
        Node *e = parse_if(p, p->t[p->pos - 1].line);
        n->list2 = aalloc(p->j, sizeof(Node *));
        n->list2[0] = e, n->nlist2 = 1;
        p->soft = soft;
        return n;
    }
    expect_block_end(p);
    if (which == 1) {
        static const char *const ends2[] = {"endif", NULL};
        NVec els = {0};
        parse_body(p, ends2, &els);
        expect_block_end(p);
        n->list2 = els.v, n->nlist2 = els.n;
    }
    p->soft = soft;
    return n;
}

// the body of a block statement up to its end tag (one name; the tag's block end read too) into n->list, parsed as
// an inner (not soft) frame of jinja2; p->soft is `soft` again afterwards (the caller's, saved before it cleared it)
static void parse_inner_body(Parser *p, Node *n, const char *const *ends, int soft) {
    NVec body = {0};
    p->soft = 0;
    parse_body(p, ends, &body);
    p->soft = soft;
    expect_block_end(p);
    n->list = body.v, n->nlist = body.n;
}

// {% set x = e %}, {% set a, b = e %}, {% set ns.attr = e %}, {% set x %}...{% endset %}
static Node *parse_set(Parser *p, int line) {
    if (cur(p)->type == T_NAME && is_op(peek(p, 1), '.')) {
        Node *n = mk(p, S_SET_NS, line);
        n->name = expect_name(p);
        p->pos++;
        n->name2 = expect_name(p);
        expect_op(p, '=');
        n->a = parse_tuple(p, 1, 0);
        expect_block_end(p);
        return n;
    }
    SVec targets = {0};
    int tuple = parse_targets(p, &targets);
    if (is_op(cur(p), '=')) {
        p->pos++;
        Node *n = mk(p, S_SET, line);
        n->names = targets.v, n->nnames = targets.n;
        n->op = tuple; // unpack
        n->a = parse_tuple(p, 1, 0);
        expect_block_end(p);
        return n;
    }
    if (tuple) p_fail_tok(p, "'='");
    Node *n = mk(p, S_SET_BLOCK, line);
    int soft = p->soft;
    p->soft = 0; // the filters and the body are an inner (not soft) frame in jinja2
    if (is_op(cur(p), '|')) n->a = parse_filter(p, mk(p, N_CAPTURE, line)); // {% set x | f %}: f(the block)
    expect_block_end(p);
    n->name = targets.v[0];
    static const char *const ends[] = {"endset", NULL};
    parse_inner_body(p, n, ends, soft);
    return n;
}

// {% filter name(args) | name2 ... %} ... {% endfilter %}: the filters applied to the body's output
static Node *parse_filter_block(Parser *p, int line) {
    Node *n = mk(p, S_FILTER_BLOCK, line);
    int soft = p->soft;
    p->soft = 0; // the filters and the body are an inner (not soft) frame in jinja2
    n->a = parse_filter(p, parse_filter_name(p, mk(p, N_CAPTURE, line)));
    expect_block_end(p);
    static const char *const ends[] = {"endfilter", NULL};
    parse_inner_body(p, n, ends, soft);
    return n;
}

// a macro's parameter list (a, b=default) into n (the opening '(' already read; reads the closing ')')
static void parse_macro_params(Parser *p, Node *n) {
    SVec params = {0};
    NVec defaults = {0};
    while (!is_op(cur(p), ')')) {
        if (params.n) expect_op(p, ',');
        sv_push(p->j, &params, expect_name(p));
        if (is_op(cur(p), '=')) {
            p->pos++;
            nv_push(p->j, &defaults, parse_expression(p, 1));
        } else if (defaults.n) jfail(p->j, cur(p)->line, "non-default argument follows default argument");
    }
    expect_op(p, ')');
    n->names = params.v, n->nnames = params.n, n->list2 = defaults.v, n->nlist2 = defaults.n;
}

// a macro's body up to its end tag (endmacro / endcall) into n, noting whether it reads varargs / kwargs / caller
static void parse_macro_body(Parser *p, Node *n, const char *const *ends) {
    int sv = p->macro_varargs, sk = p->macro_kwargs, sc = p->macro_caller, loop = p->in_loop, soft = p->soft;
    p->macro_varargs = p->macro_kwargs = p->macro_caller = 0, p->in_loop = 0, p->soft = 0;
    NVec body = {0};
    parse_body(p, ends, &body);
    n->catch_varargs = (uint8_t)p->macro_varargs, n->catch_kwargs = (uint8_t)p->macro_kwargs;
    n->catch_caller = (uint8_t)p->macro_caller;
    p->macro_varargs = sv | p->macro_varargs, p->macro_kwargs = sk | p->macro_kwargs;
    p->macro_caller = sc | p->macro_caller, p->in_loop = loop, p->soft = soft;
    n->list = body.v, n->nlist = body.n;
}

// {% with a = x, (b, c) = y %} ... {% endwith %}: the body in a scope of its own holding the targets (n->list2:
// S_SET nodes, their values read in the enclosing scope)
static Node *parse_with(Parser *p, int line) {
    Node *n = mk(p, S_WITH, line);
    NVec sets = {0};
    while (!(cur(p)->type == T_BLOCK_END)) {
        if (sets.n) expect_op(p, ',');
        Node *st = mk(p, S_SET, cur(p)->line);
        SVec targets = {0};
        int tuple = parse_targets(p, &targets);
        expect_op(p, '=');
        st->names = targets.v, st->nnames = targets.n, st->op = tuple;
        st->a = parse_expression(p, 1);
        nv_push(p->j, &sets, st);
    }
    expect_block_end(p);
    static const char *const ends[] = {"endwith", NULL};
    parse_inner_body(p, n, ends, p->soft); // (an inner frame in jinja2)
    n->list2 = sets.v, n->nlist2 = sets.n;
    return n;
}

// {% macro name(a, b=default) %} ... {% endmacro %}
static Node *parse_macro(Parser *p, int line) {
    Node *n = mk(p, S_MACRO, line);
    n->name = expect_name(p);
    expect_op(p, '(');
    parse_macro_params(p, n);
    expect_block_end(p);
    static const char *const ends[] = {"endmacro", NULL};
    parse_macro_body(p, n, ends);
    if (cur(p)->type == T_NAME && !strcmp(cur(p)->s, n->name)) p->pos++; // {% endmacro name %}
    expect_block_end(p);
    return n;
}

// {% call(params) m(args) %} ... {% endcall %}: m called with caller= a macro whose body is the block (n->b)
static Node *parse_call_block(Parser *p, int line) {
    Node *n = mk(p, S_CALL_BLOCK, line);
    Node *c = mk(p, S_MACRO, line);
    c->name = "caller";
    if (is_op(cur(p), '(')) {
        p->pos++;
        parse_macro_params(p, c);
    }
    n->a = parse_expression(p, 1);
    if (n->a->kind != N_CALL) jfail(p->j, line, "expected call");
    expect_block_end(p);
    static const char *const ends[] = {"endcall", NULL};
    parse_macro_body(p, c, ends);
    expect_block_end(p);
    n->b = c;
    return n;
}

// statements until a tag named in ends (its index returned, the name consumed) or the end of the template
static int parse_body(Parser *p, const char *const *ends, NVec *out) {
    J *j = p->j;
    enter(p);
    for (;;) {
        Tok *t = cur(p);
        if (t->type == T_EOF) {
            if (ends) jfail(j, t->line, "unexpected end of template: expected '%s'", ends[0]);
            p->depth--;
            return -1;
        }
        if (t->type == T_TEXT) {
            Node *n = mk(p, S_TEXT, t->line);
            n->v = v_strn(t->s, t->n);
            nv_push(j, out, n);
            p->pos++;
            continue;
        }
        if (t->type == T_VAR_BEGIN) {
            p->pos++;
            Node *n = mk(p, S_EMIT, t->line);
            n->a = parse_tuple(p, 1, 0);
            if (cur(p)->type != T_VAR_END) p_fail_tok(p, "end of print statement");
            p->pos++;
            nv_push(j, out, n);
            continue;
        }
        if (t->type != T_BLOCK_BEGIN) p_fail_tok(p, "a template tag");
        p->pos++;
        Tok *k = cur(p);
        if (k->type != T_NAME) p_fail_tok(p, "a statement name");
        int line = k->line;
        if (ends)
            for (int i = 0; ends[i]; i++)
                if (!strcmp(k->s, ends[i])) {
                    p->pos++;
                    p->depth--;
                    return i;
                }
        const char *kw = k->s;
        p->pos++;
        Node *n = NULL;
        if (!strcmp(kw, "for")) n = parse_for(p, line);
        else if (!strcmp(kw, "if")) n = parse_if(p, line);
        else if (!strcmp(kw, "set")) n = parse_set(p, line);
        else if (!strcmp(kw, "macro")) n = parse_macro(p, line);
        else if (!strcmp(kw, "filter")) n = parse_filter_block(p, line);
        else if (!strcmp(kw, "call")) n = parse_call_block(p, line);
        else if (!strcmp(kw, "with")) n = parse_with(p, line);
        else if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
            if (!p->in_loop) jfail(j, line, "'%s' outside of a loop", kw);
            n = mk(p, kw[0] == 'b' ? S_BREAK : S_CONTINUE, line);
            expect_block_end(p);
        } else if (!strcmp(kw, "generation")) { // transformers' AssistantTracker: renders its body
            expect_block_end(p);
            static const char *const gends[] = {"endgeneration", NULL};
            NVec body = {0};
            parse_body(p, gends, &body);
            expect_block_end(p);
            n = body_node(p, line, &body);
        } else if (!strcmp(kw, "block") ||
                   !strcmp(kw, "extends") || !strcmp(kw, "include") || !strcmp(kw, "import") ||
                   !strcmp(kw, "from") || !strcmp(kw, "autoescape") || !strcmp(kw, "trans"))
            jfail(j, line, "unsupported statement '%s'", kw);
        else jfail(j, line, "unknown tag '%s'", kw);
        nv_push(j, out, n);
    }
}

// ------------------------------------------------------------------------------------------------ runtime

struct JinjaTemplate {
    Arena ar;   // the nodes and strings of the template
    Node *root; // S_BODY of the whole template
};

// a scope: a for-loop iteration, a macro call or the template; names resolve up the parent chain
typedef struct Frame {
    struct Frame *parent; // enclosing scope (NULL for the template's)
    JDict vars;           // name (V_STR) -> value
} Frame;

typedef struct JMacro {
    Node *def;       // S_MACRO node
    Frame *closure;  // scope it was defined in
} JMacro;

// built-in functions and bound methods
enum {
    F_RANGE, F_DICT, F_NAMESPACE, F_RAISE, F_STRFTIME, F_CYCLE, F_CHANGED, F_UNSUPPORTED_GLOBAL,
    // str methods
    M_STARTSWITH, M_ENDSWITH, M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_RSPLIT, M_UPPER, M_LOWER, M_REPLACE, M_TITLE,
    M_CAPITALIZE, M_FIND, M_RFIND, M_COUNT, M_JOIN, M_SPLITLINES, M_ISDIGIT, M_ISALPHA, M_ISSPACE, M_ISUPPER,
    M_ISLOWER, M_ISALNUM, M_INDEX, M_FORMAT,
    // dict methods
    M_ITEMS, M_KEYS, M_VALUES, M_GET,
    // list / tuple methods
    M_LCOUNT, M_LINDEX,
    // methods that mutate or are not implemented (an error when called)
    M_UNSAFE, M_UNSUPPORTED
};

typedef struct JFunc {
    int id;            // F_* / M_*
    JVal self;         // bound receiver (methods, loop.cycle)
    const char *name;  // for error messages
} JFunc;

typedef struct JLoop {
    JList *items;      // the (filtered) items iterated
    int64_t i;         // index0 of the current iteration
    int depth0;        // loop nesting (0 = outermost)
    JVal changed;      // loop.changed: the arguments of its last call (a tuple), V_UNDEF before the first
    struct Node *node; // the S_FOR (a recursive one: loop(items) runs it again)
    struct Frame *outer; // the scope the loop runs in (a recursive call's too)
    int rdepth0;       // recursion level of a recursive loop (loop.depth0)
} JLoop;

typedef struct {
    J j;             // errors + arena
    Buf *out;        // where output goes now (macro calls and block sets swap it)
    int64_t steps;   // evaluation steps so far
    int depth;       // recursion depth
    int loop_depth;  // nesting of for loops (loop.depth0)
    Frame *top;      // the template's scope
    JDict *ctx;      // the context's variables
    JVal capture;    // the output of the block whose filters ({% filter %}, {% set x | f %}) are evaluated now
} R;

// count one evaluation step (bounded) and remember the line for errors
static void step(R *r, int line) {
    r->j.line = line;
    if (++r->steps > J_MAX_STEPS) jfail(&r->j, line, "evaluation step limit (%lld) exceeded", (long long)J_MAX_STEPS);
}

static JVal eval(R *r, Node *n);
static void exec_body(R *r, Node **body, int n, int *ctl);
static JVal exec_captured(R *r, Node *n, int *ctl);
static void to_str(R *r, JVal v, Buf *b, int line);
static void repr(R *r, JVal v, Buf *b, int line);

// fail for an Undefined that is used (UndefinedError)
static void undef_fail(R *r, JVal v, int line) __attribute__((noreturn));
static void undef_fail(R *r, JVal v, int line) {
    jfail(&r->j, line, "UndefinedError: %s", v.u.s ? v.u.s : "value is undefined");
}

// Python truthiness (a generator is always true)
static int truthy(JVal v) {
    switch (v.t) {
    case V_UNDEF: case V_NONE: return 0;
    case V_BOOL: case V_INT: return v.u.i != 0;
    case V_FLOAT: return v.u.f != 0;
    case V_STR: return v.n != 0;
    case V_LIST: return v.u.l->kind == L_GEN || v.u.l->kind == L_REVITER ? 1 : v.u.l->n != 0;
    case V_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

// Python str() of a value (the {{ }} output)
static JVal str_of(R *r, JVal v, int line) {
    if (v.t == V_STR) return v;
    Buf b = {0};
    to_str(r, v, &b, line);
    return v_buf(&r->j, &b);
}

// ---- Python float repr

// Python's repr(float): shortest round-trip digits, fixed for 1e-4 <= |x| < 1e16, else d.ddde+XX
static void fmt_float(R *r, Buf *b, double x) {
    J *j = &r->j;
    if (isnan(x)) { buf_puts(j, b, "nan"); return; }
    if (isinf(x)) { buf_puts(j, b, x < 0 ? "-inf" : "inf"); return; }
    char tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x) break;
    }
    // tmp = [-]d[.ddd]e[+-]XX
    const char *s = tmp;
    if (*s == '-') buf_putc(j, b, '-'), s++;
    char dig[32];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (isdigit((unsigned char)*s)) dig[nd++] = *s;
    int e = atoi(s + 1);
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) buf_putc(j, b, i < nd ? dig[i] : '0');
            buf_putc(j, b, '.');
            if (nd > e + 1) buf_add(j, b, dig + e + 1, (size_t)(nd - e - 1));
            else buf_putc(j, b, '0');
        } else {
            buf_puts(j, b, "0.");
            for (int i = 0; i < -e - 1; i++) buf_putc(j, b, '0');
            buf_add(j, b, dig, (size_t)nd);
        }
    } else {
        buf_putc(j, b, dig[0]);
        if (nd > 1) buf_putc(j, b, '.'), buf_add(j, b, dig + 1, (size_t)(nd - 1));
        buf_printf(j, b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

// Python repr() of a str
static void repr_str(R *r, Buf *b, const char *s, size_t n) {
    J *j = &r->j;
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    buf_putc(j, b, q);
    for (size_t i = 0; i < n;) {
        size_t st = i;
        uint32_t c = u8_next(s, n, &i);
        if (c == (uint32_t)q || c == '\\') buf_putc(j, b, '\\'), buf_putc(j, b, (char)c);
        else if (c == '\t') buf_puts(j, b, "\\t");
        else if (c == '\n') buf_puts(j, b, "\\n");
        else if (c == '\r') buf_puts(j, b, "\\r");
        else if (!py_isprintable(c)) {
            if (c < 0x100) buf_printf(j, b, "\\x%02x", c);
            else if (c < 0x10000) buf_printf(j, b, "\\u%04x", c);
            else buf_printf(j, b, "\\U%08x", c);
        } else buf_add(j, b, s + st, i - st);
    }
    buf_putc(j, b, q);
}

// Python repr() (items of a rendered list / dict)
static void repr(R *r, JVal v, Buf *b, int line) {
    J *j = &r->j;
    switch (v.t) {
    case V_STR:
        if (v.markup) buf_puts(j, b, "Markup(");
        repr_str(r, b, v.u.s, v.n);
        if (v.markup) buf_putc(j, b, ')');
        break;
    case V_UNDEF: buf_puts(j, b, "Undefined"); break;
    case V_LIST: {
        JList *l = v.u.l;
        const char *open = "[", *close = "]";
        if (l->kind == L_TUPLE) open = "(", close = l->n == 1 ? ",)" : ")";
        else if (l->kind == L_ITEMS) open = "dict_items([", close = "])";
        else if (l->kind == L_KEYS) open = "dict_keys([", close = "])";
        else if (l->kind == L_VALUES) open = "dict_values([", close = "])";
        else if (l->kind == L_RANGE) {
            if (l->rs == 1) buf_printf(j, b, "range(%lld, %lld)", (long long)l->r0, (long long)l->r1);
            else buf_printf(j, b, "range(%lld, %lld, %lld)", (long long)l->r0, (long long)l->r1, (long long)l->rs);
            break;
        } else if (l->kind != L_LIST) jfail(j, line, "cannot render a %s object (Python prints its address)", type_name(v));
        buf_puts(j, b, open);
        for (uint32_t i = 0; i < l->n; i++) {
            if (i) buf_puts(j, b, ", ");
            step(r, line);
            repr(r, l->v[i], b, line);
        }
        buf_puts(j, b, close);
        break;
    }
    case V_DICT: case V_NS: {
        JDict *d = v.u.d;
        buf_puts(j, b, v.t == V_NS ? "<Namespace {" : "{");
        for (uint32_t i = 0; i < d->n; i++) {
            if (i) buf_puts(j, b, ", ");
            step(r, line);
            repr(r, d->k[i], b, line);
            buf_puts(j, b, ": ");
            repr(r, d->v[i], b, line);
        }
        buf_puts(j, b, v.t == V_NS ? "}>" : "}");
        break;
    }
    default: to_str(r, v, b, line);
    }
}

// Python str() (what {{ }} writes); objects Python prints with an address fail
static void to_str(R *r, JVal v, Buf *b, int line) {
    J *j = &r->j;
    switch (v.t) {
    case V_UNDEF: break;
    case V_NONE: buf_puts(j, b, "None"); break;
    case V_BOOL: buf_puts(j, b, v.u.i ? "True" : "False"); break;
    case V_INT: buf_printf(j, b, "%lld", (long long)v.u.i); break;
    case V_FLOAT: fmt_float(r, b, v.u.f); break;
    case V_STR: buf_add(j, b, v.u.s, v.n); break;
    case V_LIST: case V_DICT: case V_NS: repr(r, v, b, line); break;
    default: jfail(j, line, "cannot render a %s object (Python prints its address)", type_name(v));
    }
}

// ---- JSON out: Python's json.dumps(x, ensure_ascii, indent, separators, sort_keys) (transformers' tojson)

typedef struct {
    int ensure_ascii;      // escape non-ASCII as \uXXXX
    const char *indent;    // NULL: one line; else the indent unit
    size_t indent_n;       // its length
    JVal item_sep, key_sep; // separators
    int sort_keys;         // sort dict keys
} JsonOpt;

// a JSON string as json.dumps writes it
static void json_str(R *r, Buf *b, const char *s, size_t n, int ensure_ascii) {
    J *j = &r->j;
    buf_putc(j, b, '"');
    for (size_t i = 0; i < n;) {
        size_t st = i;
        uint32_t c = u8_next(s, n, &i);
        switch (c) {
        case '"': buf_puts(j, b, "\\\""); break;
        case '\\': buf_puts(j, b, "\\\\"); break;
        case '\n': buf_puts(j, b, "\\n"); break;
        case '\r': buf_puts(j, b, "\\r"); break;
        case '\t': buf_puts(j, b, "\\t"); break;
        case '\b': buf_puts(j, b, "\\b"); break;
        case '\f': buf_puts(j, b, "\\f"); break;
        default:
            if (c < 0x20 || (ensure_ascii && c >= 0x7F)) {
                if (c >= 0x10000) {
                    uint32_t v = c - 0x10000;
                    buf_printf(j, b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else buf_printf(j, b, "\\u%04x", c);
            } else buf_add(j, b, s + st, i - st);
        }
    }
    buf_putc(j, b, '"');
}

// newline + indent for level
static void json_nl(R *r, Buf *b, const JsonOpt *o, int level) {
    buf_putc(&r->j, b, '\n');
    for (int i = 0; i < level; i++) buf_add(&r->j, b, o->indent, o->indent_n);
}

// the key of a dict as json.dumps writes it (str; int/float/bool/None converted)
static void json_key(R *r, Buf *b, JVal k, const JsonOpt *o, int line) {
    if (k.t == V_STR) { json_str(r, b, k.u.s, k.n, o->ensure_ascii); return; }
    Buf t = {0};
    if (k.t == V_BOOL) buf_puts(&r->j, &t, k.u.i ? "true" : "false");
    else if (k.t == V_NONE) buf_puts(&r->j, &t, "null");
    else if (k.t == V_INT || k.t == V_FLOAT) to_str(r, k, &t, line);
    else jfail(&r->j, line, "TypeError: keys must be str, int, float, bool or None, not %s", type_name(k));
    json_str(r, b, t.p ? t.p : "", t.n, 0);
}

static int v_cmp(R *r, JVal a, JVal b, int line);

// json.dumps of a value
static void json_dump(R *r, Buf *b, JVal v, const JsonOpt *o, int level, int line) {
    J *j = &r->j;
    step(r, line);
    if (level > J_MAX_DEPTH) jfail(j, line, "tojson: nested too deeply");
    switch (v.t) {
    case V_NONE: buf_puts(j, b, "null"); return;
    case V_BOOL: buf_puts(j, b, v.u.i ? "true" : "false"); return;
    case V_INT: buf_printf(j, b, "%lld", (long long)v.u.i); return;
    case V_FLOAT:
        if (isnan(v.u.f)) buf_puts(j, b, "NaN");
        else if (isinf(v.u.f)) buf_puts(j, b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else fmt_float(r, b, v.u.f);
        return;
    case V_STR: json_str(r, b, v.u.s, v.n, o->ensure_ascii); return;
    case V_LIST: {
        JList *l = v.u.l;
        if (l->kind != L_LIST && l->kind != L_TUPLE)
            jfail(j, line, "TypeError: Object of type %s is not JSON serializable", type_name(v));
        if (!l->n) { buf_puts(j, b, "[]"); return; }
        buf_putc(j, b, '[');
        if (o->indent) json_nl(r, b, o, level + 1);
        for (uint32_t i = 0; i < l->n; i++) {
            if (i) {
                buf_add(j, b, o->item_sep.u.s, o->item_sep.n);
                if (o->indent) json_nl(r, b, o, level + 1);
            }
            json_dump(r, b, l->v[i], o, level + 1, line);
        }
        if (o->indent) json_nl(r, b, o, level);
        buf_putc(j, b, ']');
        return;
    }
    case V_DICT: {
        JDict *d = v.u.d;
        if (!d->n) { buf_puts(j, b, "{}"); return; }
        uint32_t *ord = aalloc(j, sizeof(uint32_t) * d->n);
        for (uint32_t i = 0; i < d->n; i++) ord[i] = i;
        if (o->sort_keys) // insertion sort (stable), Python's sorted(dct.items()) on the keys
            for (uint32_t i = 1; i < d->n; i++) {
                uint32_t x = ord[i], k = i;
                while (k > 0 && v_cmp(r, d->k[ord[k - 1]], d->k[x], line) > 0) ord[k] = ord[k - 1], k--;
                ord[k] = x;
            }
        buf_putc(j, b, '{');
        if (o->indent) json_nl(r, b, o, level + 1);
        for (uint32_t i = 0; i < d->n; i++) {
            if (i) {
                buf_add(j, b, o->item_sep.u.s, o->item_sep.n);
                if (o->indent) json_nl(r, b, o, level + 1);
            }
            json_key(r, b, d->k[ord[i]], o, line);
            buf_add(j, b, o->key_sep.u.s, o->key_sep.n);
            json_dump(r, b, d->v[ord[i]], o, level + 1, line);
        }
        if (o->indent) json_nl(r, b, o, level);
        buf_putc(j, b, '}');
        return;
    }
    default: jfail(j, line, "TypeError: Object of type %s is not JSON serializable", type_name(v));
    }
}

// ---- JSON in: Python json.loads types (int / float distinct), for jinja_render_json

typedef struct {
    J *j;           // errors + arena
    const char *s;  // text
    size_t n, i;    // length / position
    int depth;      // nesting
} JIn;

// skip JSON whitespace
static void jin_ws(JIn *x) {
    while (x->i < x->n && (x->s[x->i] == ' ' || x->s[x->i] == '\t' || x->s[x->i] == '\n' || x->s[x->i] == '\r')) x->i++;
}
static void jin_fail(JIn *x, const char *what) __attribute__((noreturn));
static void jin_fail(JIn *x, const char *what) { jfail(x->j, 0, "JSON: %s at byte %zu", what, x->i); }

// four hex digits of a \u escape
static uint32_t jin_hex4(JIn *x) {
    if (x->i + 4 > x->n) jin_fail(x, "bad \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char h = x->s[x->i++];
        if (!isxdigit((unsigned char)h)) jin_fail(x, "bad \\u escape");
        v = v * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
    }
    return v;
}

static JVal jin_value(JIn *x);

// a JSON string (at its opening quote)
static JVal jin_string(JIn *x) {
    J *j = x->j;
    Buf b = {0};
    x->i++; // "
    for (;;) {
        if (x->i >= x->n) jin_fail(x, "unterminated string");
        unsigned char c = (unsigned char)x->s[x->i];
        if (c == '"') { x->i++; break; }
        if (c < 0x20) jin_fail(x, "control character in string");
        if (c != '\\') { buf_putc(j, &b, (char)c), x->i++; continue; }
        if (++x->i >= x->n) jin_fail(x, "bad escape");
        char e = x->s[x->i++];
        switch (e) {
        case '"': buf_putc(j, &b, '"'); break;
        case '\\': buf_putc(j, &b, '\\'); break;
        case '/': buf_putc(j, &b, '/'); break;
        case 'b': buf_putc(j, &b, '\b'); break;
        case 'f': buf_putc(j, &b, '\f'); break;
        case 'n': buf_putc(j, &b, '\n'); break;
        case 'r': buf_putc(j, &b, '\r'); break;
        case 't': buf_putc(j, &b, '\t'); break;
        case 'u': {
            uint32_t cp = jin_hex4(x);
            if (cp >= 0xD800 && cp < 0xDC00 && x->i + 6 <= x->n && x->s[x->i] == '\\' && x->s[x->i + 1] == 'u') {
                size_t save = x->i;
                x->i += 2;
                uint32_t lo = jin_hex4(x);
                if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else x->i = save;
            }
            if (cp >= 0xD800 && cp < 0xE000) jin_fail(x, "unpaired surrogate escape (unsupported)");
            u8_put(j, &b, cp);
            break;
        }
        default: jin_fail(x, "bad escape");
        }
    }
    return v_buf(j, &b);
}

// any JSON value as Python's json.loads reads it
static JVal jin_value(JIn *x) {
    J *j = x->j;
    jin_ws(x);
    if (x->i >= x->n) jin_fail(x, "unexpected end");
    if (++x->depth > J_MAX_DEPTH) jin_fail(x, "nested too deeply");
    JVal out;
    const char *s = x->s + x->i;
    size_t rem = x->n - x->i;
    char c = *s;
    if (c == '{') {
        x->i++;
        out = v_dict(j, V_DICT);
        jin_ws(x);
        if (x->i < x->n && x->s[x->i] == '}') x->i++;
        else
            for (;;) {
                jin_ws(x);
                if (x->i >= x->n || x->s[x->i] != '"') jin_fail(x, "expected a key");
                JVal k = jin_string(x);
                jin_ws(x);
                if (x->i >= x->n || x->s[x->i] != ':') jin_fail(x, "expected ':'");
                x->i++;
                JVal v = jin_value(x);
                dict_set(j, out.u.d, k, v);
                jin_ws(x);
                if (x->i < x->n && x->s[x->i] == ',') { x->i++; continue; }
                if (x->i < x->n && x->s[x->i] == '}') { x->i++; break; }
                jin_fail(x, "expected ',' or '}'");
            }
    } else if (c == '[') {
        x->i++;
        JVal *items = NULL;
        uint32_t n = 0, cap = 0;
        jin_ws(x);
        if (x->i < x->n && x->s[x->i] == ']') x->i++;
        else
            for (;;) {
                JVal v = jin_value(x);
                if (n == cap) {
                    cap = cap ? cap * 2 : 8;
                    JVal *ni = aalloc(j, sizeof(JVal) * cap);
                    if (n) memcpy(ni, items, sizeof(JVal) * n);
                    items = ni;
                }
                items[n++] = v;
                jin_ws(x);
                if (x->i < x->n && x->s[x->i] == ',') { x->i++; continue; }
                if (x->i < x->n && x->s[x->i] == ']') { x->i++; break; }
                jin_fail(x, "expected ',' or ']'");
            }
        out = v_list(j, 0, L_LIST);
        out.u.l->v = items, out.u.l->n = n;
    } else if (c == '"') out = jin_string(x);
    else if (rem >= 4 && !memcmp(s, "true", 4)) out = v_bool(1), x->i += 4;
    else if (rem >= 5 && !memcmp(s, "false", 5)) out = v_bool(0), x->i += 5;
    else if (rem >= 4 && !memcmp(s, "null", 4)) out = v_none(), x->i += 4;
    else if (rem >= 3 && !memcmp(s, "NaN", 3)) out = v_float(NAN), x->i += 3;
    else if (rem >= 8 && !memcmp(s, "Infinity", 8)) out = v_float(INFINITY), x->i += 8;
    else if (rem >= 9 && !memcmp(s, "-Infinity", 9)) out = v_float(-INFINITY), x->i += 9;
    else if (c == '-' || isdigit((unsigned char)c)) {
        size_t k = 0;
        int is_float = 0;
        if (s[k] == '-') k++;
        if (k >= rem || !isdigit((unsigned char)s[k])) jin_fail(x, "bad number");
        if (s[k] == '0') k++;
        else while (k < rem && isdigit((unsigned char)s[k])) k++;
        if (k + 1 < rem && s[k] == '.' && isdigit((unsigned char)s[k + 1])) {
            is_float = 1, k++;
            while (k < rem && isdigit((unsigned char)s[k])) k++;
        }
        if (k < rem && (s[k] == 'e' || s[k] == 'E')) {
            size_t e = k + 1;
            if (e < rem && (s[e] == '+' || s[e] == '-')) e++;
            if (e < rem && isdigit((unsigned char)s[e])) {
                is_float = 1, k = e;
                while (k < rem && isdigit((unsigned char)s[k])) k++;
            }
        }
        char *num = astrndup(j, s, k);
        if (is_float) out = v_float(strtod(num, NULL));
        else {
            errno = 0;
            long long v = strtoll(num, NULL, 10);
            if (errno == ERANGE) jin_fail(x, "integer beyond 64 bits (unsupported)");
            out = v_int(v);
        }
        x->i += k;
    } else jin_fail(x, "unexpected character");
    x->depth--;
    return out;
}

// public: transformers' _alias_reasoning_fields on a messages array (see jinja.h)
int jinja_alias_reasoning(cJSON *messages) {
    static const char *const fields[] = {"reasoning_content", "thinking", "reasoning"};
    if (!cJSON_IsArray(messages)) return -1;
    int i = 0;
    for (cJSON *m = messages->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m)) continue;
        const cJSON *r = NULL;
        for (int k = 0; k < 3 && !r; k++) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, fields[k]);
            if (f && !cJSON_IsNull(f)) r = f;
        }
        if (!r) continue;
        // {"thinking": r, **message, "reasoning_content": r}
        cJSON *n = cJSON_CreateObject();
        if (!n) return -1;
        const cJSON *own = cJSON_GetObjectItemCaseSensitive(m, "thinking");
        cJSON *t = cJSON_Duplicate(own ? own : r, 1), *rc_added = NULL;
        if (!t) { cJSON_Delete(n); return -1; }
        cJSON_AddItemToObject(n, "thinking", t);
        for (const cJSON *e = m->child; e; e = e->next) {
            if (!e->string || !strcmp(e->string, "thinking")) continue;
            cJSON *v = cJSON_Duplicate(strcmp(e->string, "reasoning_content") ? e : r, 1);
            if (!v) { cJSON_Delete(n); return -1; }
            cJSON_AddItemToObject(n, e->string, v);
            if (!strcmp(e->string, "reasoning_content")) rc_added = v;
        }
        if (!rc_added) {
            cJSON *v = cJSON_Duplicate(r, 1);
            if (!v) { cJSON_Delete(n); return -1; }
            cJSON_AddItemToObject(n, "reasoning_content", v);
        }
        cJSON_ReplaceItemInArray(messages, i, n);
        m = n;
    }
    return 0;
}

// a cJSON tree as values (numbers: integral and |x| <= 2^53 -> int; cJSON_Raw items are read as JSON text)
static JVal from_cjson(J *j, const cJSON *c, int depth) {
    if (depth > J_MAX_DEPTH) jfail(j, 0, "context nested too deeply");
    if (!c) return v_none();
    if (cJSON_IsNull(c)) return v_none();
    if (cJSON_IsBool(c)) return v_bool(cJSON_IsTrue(c));
    if (cJSON_IsString(c)) return v_strn(c->valuestring ? c->valuestring : "", c->valuestring ? strlen(c->valuestring) : 0);
    if (cJSON_IsNumber(c)) {
        double d = c->valuedouble;
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) return v_int((int64_t)d);
        return v_float(d);
    }
    if (cJSON_IsRaw(c)) {
        JIn x = {j, c->valuestring ? c->valuestring : "", c->valuestring ? strlen(c->valuestring) : 0, 0, depth};
        JVal v = jin_value(&x);
        jin_ws(&x);
        if (x.i != x.n) jin_fail(&x, "trailing characters in a raw item");
        return v;
    }
    if (cJSON_IsArray(c)) {
        uint32_t n = (uint32_t)cJSON_GetArraySize(c), i = 0;
        JVal l = v_list(j, n, L_LIST);
        for (const cJSON *e = c->child; e && i < n; e = e->next) l.u.l->v[i++] = from_cjson(j, e, depth + 1);
        return l;
    }
    if (cJSON_IsObject(c)) {
        JVal d = v_dict(j, V_DICT);
        for (const cJSON *e = c->child; e; e = e->next) {
            const char *k = e->string ? e->string : "";
            dict_set(j, d.u.d, v_strn(k, strlen(k)), from_cjson(j, e, depth + 1));
        }
        return d;
    }
    jfail(j, 0, "context: unsupported cJSON item");
}

// ---- comparisons, membership, iteration

// Python ordering (<): -1 / 0 / 1; TypeError for unorderable types
static int v_cmp(R *r, JVal a, JVal b, int line) {
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
        double x = num_f(a), y = num_f(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == V_STR && b.t == V_STR) {
        size_t m = a.n < b.n ? a.n : b.n;
        int c = memcmp(a.u.s, b.u.s, m);
        if (c) return c < 0 ? -1 : 1;
        return a.n < b.n ? -1 : a.n > b.n;
    }
    if (a.t == V_LIST && b.t == V_LIST && a.u.l->kind == b.u.l->kind &&
        (a.u.l->kind == L_LIST || a.u.l->kind == L_TUPLE)) {
        JList *x = a.u.l, *y = b.u.l;
        for (uint32_t i = 0; i < x->n && i < y->n; i++) {
            if (v_eq(x->v[i], y->v[i])) continue;
            return v_cmp(r, x->v[i], y->v[i], line);
        }
        return x->n < y->n ? -1 : x->n > y->n;
    }
    if (a.t == V_UNDEF) undef_fail(r, a, line);
    if (b.t == V_UNDEF) undef_fail(r, b, line);
    jfail(&r->j, line, "TypeError: '<' not supported between instances of '%s' and '%s'", type_name(a), type_name(b));
}

// the items a for loop (or list(), join, ...) iterates: str -> chars, dict -> keys, Undefined -> nothing
static JList *iter_list(R *r, JVal v, int line) {
    J *j = &r->j;
    static JList empty;
    switch (v.t) {
    case V_UNDEF: return &empty;
    case V_LIST:
        if (v.u.l->kind == L_GEN || v.u.l->kind == L_REVITER) {
            if (v.u.l->consumed) return &empty;
            v.u.l->consumed = 1;
        }
        return v.u.l;
    case V_DICT: {
        JVal l = v_list(j, v.u.d->n, L_LIST);
        if (v.u.d->n) memcpy(l.u.l->v, v.u.d->k, sizeof(JVal) * v.u.d->n);
        return l.u.l;
    }
    case V_STR: {
        uint32_t n = (uint32_t)u8_len(v.u.s, v.n), k = 0;
        JVal l = v_list(j, n, L_LIST);
        for (size_t i = 0; i < v.n;) {
            size_t st = i;
            u8_next(v.u.s, v.n, &i);
            l.u.l->v[k++] = v_strn(v.u.s + st, i - st);
        }
        return l.u.l;
    }
    default: jfail(j, line, "TypeError: '%s' object is not iterable", type_name(v));
    }
}

// substring search: byte offset or -1
static int64_t str_find(const char *h, size_t hn, const char *nd, size_t nn, size_t from) {
    if (nn == 0) return from <= hn ? (int64_t)from : -1;
    for (size_t i = from; i + nn <= hn; i++)
        if (h[i] == nd[0] && !memcmp(h + i, nd, nn)) return (int64_t)i;
    return -1;
}

// a in b
static int v_in(R *r, JVal a, JVal b, int line) {
    switch (b.t) {
    case V_UNDEF: return 0;
    case V_STR:
        if (a.t != V_STR) jfail(&r->j, line, "TypeError: 'in <string>' requires string as left operand, not %s", type_name(a));
        return str_find(b.u.s, b.n, a.u.s, a.n, 0) >= 0;
    case V_DICT:
        if (a.t == V_DICT || a.t == V_NS || (a.t == V_LIST && a.u.l->kind != L_TUPLE))
            jfail(&r->j, line, "TypeError: unhashable type: '%s'", type_name(a));
        return dict_find(b.u.d, a) >= 0;
    case V_LIST: {
        JList *l = iter_list(r, b, line);
        for (uint32_t i = 0; i < l->n; i++) {
            step(r, line);
            if (v_eq(l->v[i], a)) return 1;
        }
        return 0;
    }
    default: jfail(&r->j, line, "TypeError: argument of type '%s' is not iterable", type_name(b));
    }
}

// ---- case mapping (Python str.upper/lower) for the scripts chat templates meet; others fail

// 0: not cased, 1: lowercase letter, 2: uppercase letter; *up / *lo: the mapped code points (0 = multi-char)
static int cp_case(R *r, uint32_t c, uint32_t *up, uint32_t *lo, int line) {
    *up = *lo = c;
    if (c < 0x80) {
        if (c >= 'a' && c <= 'z') return *up = c - 32, 1;
        if (c >= 'A' && c <= 'Z') return *lo = c + 32, 2;
        return 0;
    }
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return *lo = c + 32, 2;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return *up = c - 32, 1;
    if (c == 0xDF) return *up = 0, 1; // ß -> SS
    if (c == 0xFF) return *up = 0x178, 1;
    if (c == 0xB5) return *up = 0x39C, 1;
    if (c >= 0x80 && c <= 0xBF && c != 0xAA && c != 0xBA) return 0;
    if (c == 0xD7 || c == 0xF7) return 0;
    if (c >= 0x100 && c <= 0x17F) { // Latin Extended-A: upper/lower pairs, a few singular letters
        if (c == 0x130 || c == 0x149) jfail(&r->j, line, "unsupported: case mapping of U+%04X", c);
        if (c == 0x131) return *up = 'I', 1;
        if (c == 0x138) return 1;                 // kra: lowercase without an uppercase
        if (c == 0x178) return *lo = 0xFF, 2;
        if (c == 0x17F) return *up = 'S', 1;      // long s
        int upper_even = c < 0x138 || (c >= 0x14A && c < 0x178);
        int is_upper = upper_even ? (c % 2 == 0) : (c % 2 == 1);
        if (is_upper) return *lo = c + 1, 2;
        return *up = c - 1, 1;
    }
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2 && c != 0x3A3) return *lo = c + 32, 2;
    if (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) return *up = c - 32, 1;
    if (c == 0x3C2) return *up = 0x3A3, 1;
    if (c == 0x375 || c == 0x37E || c == 0x384 || c == 0x385 || c == 0x387) return 0; // Greek signs
    if (c == 0x386) return *lo = 0x3AC, 2; // Greek letters with tonos
    if (c == 0x3AC) return *up = 0x386, 1;
    if (c >= 0x388 && c <= 0x38A) return *lo = c + 37, 2;
    if (c >= 0x3AD && c <= 0x3AF) return *up = c - 37, 1;
    if (c == 0x38C) return *lo = 0x3CC, 2;
    if (c == 0x3CC) return *up = 0x38C, 1;
    if (c == 0x38E || c == 0x38F) return *lo = c + 63, 2;
    if (c == 0x3CD || c == 0x3CE) return *up = c - 63, 1;
    if (c >= 0x410 && c <= 0x42F) return *lo = c + 32, 2;
    if (c >= 0x430 && c <= 0x44F) return *up = c - 32, 1;
    if (c >= 0x400 && c <= 0x40F) return *lo = c + 80, 2;
    if (c >= 0x450 && c <= 0x45F) return *up = c - 80, 1;
    if (c >= 0xFF21 && c <= 0xFF3A) return *lo = c + 32, 2;
    if (c >= 0xFF41 && c <= 0xFF5A) return *up = c - 32, 1;
    if ((c >= 0x300 && c <= 0x36F && c != 0x345) || (c >= 0x590 && c <= 0xFFF) || (c >= 0x1000 && c <= 0x109F) ||
        (c >= 0x1100 && c <= 0x139F) || (c >= 0x1780 && c <= 0x18AF)) // combining marks, Hebrew..Tibetan, Myanmar, ...
        return 0;
    if ((c >= 0x2000 && c <= 0x206F) || (c >= 0x20A0 && c <= 0x20CF) || (c >= 0x2190 && c <= 0x23FF) ||
        (c >= 0x2500 && c <= 0x27BF) || (c >= 0x2900 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x9FFF) ||
        (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
        (c >= 0xFF01 && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFFEF) ||
        (c >= 0x1F000 && c <= 0x1FAFF) || (c >= 0x20000 && c <= 0x3FFFF))
        return 0;
    jfail(&r->j, line, "unsupported: case mapping of U+%04X", c);
}

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE_WORDS, CASE_CAPITALIZE };

// Python's str.upper() / lower() / title() / capitalize()
static JVal str_case(R *r, JVal s, int mode, int line) {
    J *j = &r->j;
    Buf b = {0};
    int prev_cased = 0, first = 1;
    for (size_t i = 0; i < s.n;) {
        uint32_t c = u8_next(s.u.s, s.n, &i), up, lo;
        int k = cp_case(r, c, &up, &lo, line);
        int to_up;
        if (mode == CASE_UPPER) to_up = 1;
        else if (mode == CASE_LOWER) to_up = 0;
        else if (mode == CASE_TITLE_WORDS) to_up = !prev_cased;
        else to_up = first;
        if (mode == CASE_LOWER && c == 0x3A3) jfail(j, line, "unsupported: lower() of a capital sigma");
        if (mode == CASE_TITLE_WORDS && !to_up && c == 0x3A3) jfail(j, line, "unsupported: lower() of a capital sigma");
        if (mode == CASE_CAPITALIZE && !first && c == 0x3A3) jfail(j, line, "unsupported: lower() of a capital sigma");
        if (k && to_up) {
            if (up == 0) buf_puts(j, &b, mode == CASE_UPPER ? "SS" : "Ss"); // ß: upper SS, title Ss
            else u8_put(j, &b, up);
        } else if (k) u8_put(j, &b, lo);
        else u8_put(j, &b, c);
        prev_cased = k != 0, first = 0;
    }
    return v_buf(j, &b);
}

// ---- attribute and item access (jinja2.sandbox getattr / getitem)

// a bound method / built-in function value
static JVal method(R *r, JVal self, int id, const char *name) {
    JFunc *f = aalloc(&r->j, sizeof *f);
    f->id = id, f->self = self, f->name = name;
    JVal v = {.t = V_FUNC};
    v.u.fn = f;
    return v;
}

static const char *const str_methods[] = {"startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit",
                                          "upper", "lower", "replace", "title", "capitalize", "find", "rfind",
                                          "count", "join", "splitlines", "isdigit", "isalpha", "isspace", "isupper",
                                          "islower", "isalnum", "index", "format", NULL};
static const int str_method_ids[] = {M_STARTSWITH, M_ENDSWITH, M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_RSPLIT,
                                     M_UPPER, M_LOWER, M_REPLACE, M_TITLE, M_CAPITALIZE, M_FIND, M_RFIND,
                                     M_COUNT, M_JOIN, M_SPLITLINES, M_ISDIGIT, M_ISALPHA, M_ISSPACE, M_ISUPPER,
                                     M_ISLOWER, M_ISALNUM, M_INDEX, M_FORMAT};
static const char *const str_other_methods[] = {"casefold", "center", "encode", "expandtabs", "format_map",
                                                "isascii", "isdecimal", "isidentifier", "isnumeric", "isprintable",
                                                "istitle", "ljust", "maketrans", "partition", "removeprefix",
                                                "removesuffix", "rindex", "rjust", "rpartition", "swapcase",
                                                "translate", "zfill", NULL};
static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const dict_other[] = {"copy", "fromkeys", NULL};
static const char *const list_unsafe[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort", NULL};

// index of s in the NULL-terminated list l, or -1
static int list_idx(const char *const *l, const char *s) {
    for (int i = 0; l[i]; i++)
        if (!strcmp(l[i], s)) return i;
    return -1;
}

// obj.name
static JVal get_attr(R *r, JVal obj, const char *name, int line) {
    J *j = &r->j;
    int k;
    switch (obj.t) {
    case V_UNDEF: undef_fail(r, obj, line);
    case V_DICT:
        if (!strcmp(name, "items")) return method(r, obj, M_ITEMS, "items");
        if (!strcmp(name, "keys")) return method(r, obj, M_KEYS, "keys");
        if (!strcmp(name, "values")) return method(r, obj, M_VALUES, "values");
        if (!strcmp(name, "get")) return method(r, obj, M_GET, "get");
        if (list_idx(dict_unsafe, name) >= 0) return method(r, obj, M_UNSAFE, name);
        if (list_idx(dict_other, name) >= 0) return method(r, obj, M_UNSUPPORTED, name);
        {
            int64_t i = dict_find_s(obj.u.d, name, strlen(name));
            if (i >= 0) return obj.u.d->v[i];
        }
        break;
    case V_NS: {
        int64_t i = dict_find_s(obj.u.d, name, strlen(name));
        if (i >= 0) return obj.u.d->v[i];
        break;
    }
    case V_STR:
        if ((k = list_idx(str_methods, name)) >= 0) return method(r, obj, str_method_ids[k], str_methods[k]);
        if (list_idx(str_other_methods, name) >= 0) return method(r, obj, M_UNSUPPORTED, name);
        break;
    case V_LIST:
        if (obj.u.l->kind == L_LIST || obj.u.l->kind == L_TUPLE) {
            if (!strcmp(name, "count")) return method(r, obj, M_LCOUNT, "count");
            if (!strcmp(name, "index")) return method(r, obj, M_LINDEX, "index");
            if (obj.u.l->kind == L_LIST && list_idx(list_unsafe, name) >= 0) return method(r, obj, M_UNSAFE, name);
            if (obj.u.l->kind == L_LIST && !strcmp(name, "copy")) return method(r, obj, M_UNSUPPORTED, name);
        }
        break;
    case V_LOOP: {
        JLoop *lp = obj.u.loop;
        int64_t n = lp->items->n, i = lp->i;
        if (!strcmp(name, "index")) return v_int(i + 1);
        if (!strcmp(name, "index0")) return v_int(i);
        if (!strcmp(name, "revindex")) return v_int(n - i);
        if (!strcmp(name, "revindex0")) return v_int(n - i - 1);
        if (!strcmp(name, "first")) return v_bool(i == 0);
        if (!strcmp(name, "last")) return v_bool(i == n - 1);
        if (!strcmp(name, "length")) return v_int(n);
        // depth counts the levels of a recursive loop (loop(items) calls); 1 / 0 in any other loop
        if (!strcmp(name, "depth")) return v_int(lp->rdepth0 + 1);
        if (!strcmp(name, "depth0")) return v_int(lp->rdepth0);
        if (!strcmp(name, "previtem")) return i > 0 ? lp->items->v[i - 1] : v_undef("there is no previous item");
        if (!strcmp(name, "nextitem")) return i + 1 < n ? lp->items->v[i + 1] : v_undef("there is no next item");
        if (!strcmp(name, "cycle")) return method(r, obj, F_CYCLE, "cycle");
        if (!strcmp(name, "changed")) return method(r, obj, F_CHANGED, "changed");
        break;
    }
    case V_MACRO: { // jinja2.runtime.Macro's public attributes
        Node *d = obj.u.m->def;
        if (!strcmp(name, "name")) return v_cstr(d->name);
        if (!strcmp(name, "arguments")) {
            JVal t = v_list(j, (uint32_t)d->nnames, L_TUPLE);
            for (int i = 0; i < d->nnames; i++) t.u.l->v[i] = v_cstr(d->names[i]);
            return t;
        }
        if (!strcmp(name, "catch_kwargs")) return v_bool(d->catch_kwargs);
        if (!strcmp(name, "catch_varargs")) return v_bool(d->catch_varargs);
        if (!strcmp(name, "caller")) return v_bool(d->catch_caller);
        if (name[0] != '_') break;
        jfail(j, line, "unsupported: attribute '%s' of a macro", name);
    }
    case V_INT: case V_FLOAT: case V_BOOL:
        if (!strcmp(name, "real") || !strcmp(name, "imag") || !strcmp(name, "numerator") || !strcmp(name, "denominator") ||
            !strcmp(name, "is_integer") || !strcmp(name, "conjugate") || !strcmp(name, "bit_length"))
            jfail(j, line, "unsupported: attribute '%s' of a number", name);
        break;
    default: break;
    }
    char *hint = aalloc(j, strlen(name) + 64);
    sprintf(hint, "'%s' has no attribute '%s'", type_name(obj), name);
    return v_undef(hint);
}

// normalize a Python index (negative from the end); -1 when out of range
static int64_t norm_index(int64_t i, int64_t n) {
    if (i < 0) i += n;
    return i < 0 || i >= n ? -1 : i;
}

// byte offsets of each code point of a string (n + 1 entries)
static size_t *cp_offsets(R *r, JVal s, size_t *count) {
    size_t n = u8_len(s.u.s, s.n), k = 0;
    size_t *o = aalloc(&r->j, sizeof(size_t) * (n + 1));
    for (size_t i = 0; i < s.n;) o[k++] = i, u8_next(s.u.s, s.n, &i);
    o[n] = s.n;
    *count = n;
    return o;
}

// obj[key]
static JVal get_item(R *r, JVal obj, JVal key, int line) {
    if (obj.t == V_UNDEF) undef_fail(r, obj, line);
    if (obj.t == V_DICT) {
        int64_t i = dict_find(obj.u.d, key);
        if (i >= 0) return obj.u.d->v[i];
    } else if ((key.t == V_INT || key.t == V_BOOL) && obj.t == V_LIST &&
               (obj.u.l->kind == L_LIST || obj.u.l->kind == L_TUPLE || obj.u.l->kind == L_RANGE)) {
        int64_t i = norm_index(key.u.i, obj.u.l->n);
        if (i >= 0) return obj.u.l->v[i];
        return v_undef("list index out of range");
    } else if ((key.t == V_INT || key.t == V_BOOL) && obj.t == V_STR) {
        size_t n, *o = cp_offsets(r, obj, &n);
        int64_t i = norm_index(key.u.i, (int64_t)n);
        if (i < 0) return v_undef("string index out of range");
        JVal c = v_strn(obj.u.s + o[i], o[i + 1] - o[i]);
        c.markup = obj.markup; // Markup.__getitem__ returns Markup
        return c;
    }
    if (key.t == V_STR) { // jinja: obj[str] falls back to getattr(obj, str)
        if (obj.t == V_DICT) { // a dict method of that name, else undefined
            char *name = astrndup(&r->j, key.u.s, key.n);
            JVal a = get_attr(r, obj, name, line);
            return a;
        }
        char *name = astrndup(&r->j, key.u.s, key.n);
        return get_attr(r, obj, name, line);
    }
    return v_undef("no such item");
}

// Python slice indices (PySlice_AdjustIndices)
static int64_t slice_indices(R *r, JVal a, JVal b, JVal c, int64_t n, int64_t *start, int64_t *stop, int line) {
    int64_t st = 1;
    if (c.t != V_NONE && c.t != V_UNDEF) {
        if (c.t != V_INT && c.t != V_BOOL) jfail(&r->j, line, "TypeError: slice indices must be integers or None");
        st = c.u.i;
        if (st == 0) jfail(&r->j, line, "ValueError: slice step cannot be zero");
    }
    int64_t lo, hi;
    for (int w = 0; w < 2; w++) {
        JVal x = w ? b : a;
        int64_t *out = w ? &hi : &lo;
        if (x.t == V_NONE || x.t == V_UNDEF) *out = w ? (st < 0 ? -1 - n : n) : (st < 0 ? n - 1 : 0);
        else {
            if (x.t != V_INT && x.t != V_BOOL) jfail(&r->j, line, "TypeError: slice indices must be integers or None");
            int64_t v = x.u.i;
            if (v < 0) {
                v += n;
                if (v < 0) v = st < 0 ? -1 : 0;
            } else if (v >= n) v = st < 0 ? n - 1 : n;
            *out = v;
        }
        if ((x.t == V_NONE || x.t == V_UNDEF) && w && st < 0) *out = -1;
    }
    *start = lo, *stop = hi;
    return st;
}

// obj[a:b:c] for str, list, tuple, range
static JVal do_slice(R *r, JVal obj, JVal a, JVal b, JVal c, int line) {
    J *j = &r->j;
    if (obj.t == V_UNDEF) undef_fail(r, obj, line);
    if (obj.t == V_STR) {
        size_t n, *o = cp_offsets(r, obj, &n);
        int64_t s0, s1, st = slice_indices(r, a, b, c, (int64_t)n, &s0, &s1, line);
        Buf out = {0};
        if (st > 0) for (int64_t i = s0; i < s1; i += st) buf_add(j, &out, obj.u.s + o[i], o[i + 1] - o[i]);
        else for (int64_t i = s0; i > s1; i += st) buf_add(j, &out, obj.u.s + o[i], o[i + 1] - o[i]);
        JVal res = v_buf(j, &out);
        res.markup = obj.markup;
        return res;
    }
    if (obj.t == V_LIST && (obj.u.l->kind == L_LIST || obj.u.l->kind == L_TUPLE || obj.u.l->kind == L_RANGE)) {
        JList *l = obj.u.l;
        int64_t s0, s1, st = slice_indices(r, a, b, c, l->n, &s0, &s1, line);
        int64_t cnt = 0;
        if (st > 0 && s1 > s0) cnt = (s1 - s0 + st - 1) / st;
        if (st < 0 && s0 > s1) cnt = (s0 - s1 + (-st) - 1) / (-st);
        JVal out = v_list(j, (uint32_t)cnt, l->kind == L_RANGE ? L_RANGE : l->kind);
        for (int64_t k = 0; k < cnt; k++) out.u.l->v[k] = l->v[s0 + k * st];
        if (l->kind == L_RANGE) { // a slice of a range is a range (Objects/rangeobject.c compute_slice)
            int64_t a0, a1, as;
            if (__builtin_mul_overflow(s0, l->rs, &a0) || __builtin_add_overflow(a0, l->r0, &a0) ||
                __builtin_mul_overflow(s1, l->rs, &a1) || __builtin_add_overflow(a1, l->r0, &a1) ||
                __builtin_mul_overflow(st, l->rs, &as))
                jfail(j, line, "unsupported: integer beyond 64 bits");
            out.u.l->r0 = a0, out.u.l->r1 = a1, out.u.l->rs = as;
        }
        return out;
    }
    // slices bypass jinja's getitem (compiled to a plain Python subscript): a TypeError
    jfail(j, line, "TypeError: '%s' object is not subscriptable", type_name(obj));
}

// ---- arithmetic (Python int / float semantics; ints are 64-bit here and overflow is an error)

// arithmetic on Undefined is an UndefinedError
static void no_undef(R *r, JVal v, int line) {
    if (v.t == V_UNDEF) undef_fail(r, v, line);
}

// an int result, or an error when it left 64 bits
static JVal checked(R *r, int ovf, int64_t v, int line) {
    if (ovf) jfail(&r->j, line, "unsupported: integer beyond 64 bits");
    return v_int(v);
}

// Python float divmod (Objects/floatobject.c float_divmod)
static void float_divmod(double vx, double wx, double *floordiv, double *mod_out) {
    double mod = fmod(vx, wx), div = (vx - mod) / wx, fd;
    if (mod) {
        if ((wx < 0) != (mod < 0)) mod += wx, div -= 1.0;
    } else mod = copysign(0.0, wx);
    if (div) {
        fd = floor(div);
        if (div - fd > 0.5) fd += 1.0;
    } else fd = copysign(0.0, vx / wx);
    *floordiv = fd, *mod_out = mod;
}

// str * int / list * int (bounded)
static JVal seq_repeat(R *r, JVal s, int64_t k, int line) {
    J *j = &r->j;
    if (k < 0) k = 0;
    if (s.t == V_STR) {
        if (s.n && (uint64_t)k * s.n > J_MAX_OUTPUT) jfail(j, line, "string repetition too large");
        Buf b = {0};
        for (int64_t i = 0; i < k; i++) buf_add(j, &b, s.u.s, s.n);
        return v_buf(j, &b);
    }
    JList *l = s.u.l;
    if ((uint64_t)k * l->n > 10000000) jfail(j, line, "list repetition too large");
    JVal out = v_list(j, (uint32_t)(k * l->n), l->kind);
    if (l->n)
        for (int64_t i = 0; i < k; i++) memcpy(out.u.l->v + i * l->n, l->v, sizeof(JVal) * l->n);
    return out;
}

// Python's printf-style str % args for the common conversions (%s %r %d %i %%, flags '-' and '0', a width; %(key)s
// with a dict); others fail as unsupported
static JVal str_percent(R *r, JVal fmt, JVal args, int line) {
    J *j = &r->j;
    int is_tuple = args.t == V_LIST && args.u.l->kind == L_TUPLE;
    // Python treats any non-tuple with __getitem__ (dict, list, range, Undefined; str excluded) as a mapping: no "not
    // all converted" error (iterators such as reversed() / generators / dict views have no __getitem__)
    int mappingish = !is_tuple && (args.t == V_DICT || args.t == V_UNDEF ||
                                   (args.t == V_LIST && (args.u.l->kind == L_LIST || args.u.l->kind == L_RANGE)));
    uint32_t argi = 0, nargs = is_tuple ? args.u.l->n : 1;
    int used_single = 0;
    Buf b = {0};
    for (size_t i = 0; i < fmt.n; i++) {
        char c = fmt.u.s[i];
        if (c != '%') { buf_putc(j, &b, c); continue; }
        if (++i >= fmt.n) jfail(j, line, "ValueError: incomplete format");
        JVal arg;
        int have_key = 0;
        if (fmt.u.s[i] == '(') {
            size_t k = i + 1;
            while (k < fmt.n && fmt.u.s[k] != ')') k++;
            if (k >= fmt.n) jfail(j, line, "ValueError: incomplete format key");
            if (args.t != V_DICT) jfail(j, line, "TypeError: format requires a mapping");
            int64_t at = dict_find_s(args.u.d, fmt.u.s + i + 1, k - i - 1);
            if (at < 0) jfail(j, line, "KeyError: %.*s", (int)(k - i - 1), fmt.u.s + i + 1);
            arg = args.u.d->v[at], have_key = 1, i = k + 1;
            if (i >= fmt.n) jfail(j, line, "ValueError: incomplete format");
        }
        int left = 0, zero = 0, plus = 0, space = 0, alt = 0;
        for (; i < fmt.n && strchr("-0+ #", fmt.u.s[i]); i++) {
            char fl = fmt.u.s[i];
            left |= fl == '-', zero |= fl == '0', plus |= fl == '+', space |= fl == ' ', alt |= fl == '#';
        }
        int width = 0, prec = -1;
        while (i < fmt.n && isdigit((unsigned char)fmt.u.s[i]) && width < 10000) width = width * 10 + (fmt.u.s[i++] - '0');
        if (i < fmt.n && fmt.u.s[i] == '.')
            for (prec = 0, i++; i < fmt.n && isdigit((unsigned char)fmt.u.s[i]) && prec < 10000; i++)
                prec = prec * 10 + (fmt.u.s[i] - '0');
        if (i >= fmt.n) jfail(j, line, "ValueError: incomplete format");
        char conv = fmt.u.s[i];
        if (conv == '%' && !have_key) { buf_putc(j, &b, '%'); continue; }
        if (!strchr("srdiuxXofFeEgG", conv)) jfail(j, line, "unsupported: %%%c in printf-style formatting", conv);
        if (prec > 300 && !strchr("sr", conv)) jfail(j, line, "unsupported: precision %d in printf-style formatting", prec);
        if (!have_key) {
            if (is_tuple) {
                if (argi >= nargs) jfail(j, line, "TypeError: not enough arguments for format string");
                arg = args.u.l->v[argi++];
            } else {
                if (used_single) jfail(j, line, "TypeError: not enough arguments for format string");
                arg = args, used_single = 1;
            }
        }
        Buf f = {0};
        size_t sign = 0; // bytes of sign / 0x prefix before the digits (zero padding goes after them)
        if (conv == 's' || conv == 'r') {
            if (conv == 's') to_str(r, arg, &f, line);
            else repr(r, arg, &f, line);
            if (prec >= 0) { // %.Ns: the first N characters
                size_t k = 0;
                for (int ci = 0; ci < prec && k < f.n; ci++) u8_next(f.p, f.n, &k);
                f.n = k;
            }
        } else if (strchr("diuxXo", conv)) {
            if (arg.t == V_FLOAT && strchr("xXo", conv))
                jfail(j, line, "TypeError: %%%c format: an integer is required, not float", conv);
            if (arg.t == V_FLOAT) {
                if (!isfinite(arg.u.f)) jfail(j, line, "unsupported: %%d of a non-finite float");
                if (fabs(arg.u.f) >= 9.2e18) jfail(j, line, "unsupported: integer beyond 64 bits");
                arg = v_int((int64_t)arg.u.f);
            }
            if (arg.t != V_INT && arg.t != V_BOOL)
                jfail(j, line, "TypeError: %%%c format: %s is required, not %s", conv,
                      strchr("xXo", conv) ? "an integer" : "a real number", type_name(arg));
            int64_t x = arg.u.i;
            uint64_t ux = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
            if (x < 0) buf_putc(j, &f, '-');
            else if (plus) buf_putc(j, &f, '+');
            else if (space) buf_putc(j, &f, ' ');
            if (alt && conv != 'd' && conv != 'i' && conv != 'u') buf_puts(j, &f, conv == 'o' ? "0o" : conv == 'x' ? "0x" : "0X");
            sign = f.n;
            char digits[32];
            int nd = snprintf(digits, sizeof digits, conv == 'o' ? "%llo" : conv == 'x' ? "%llx" : conv == 'X' ? "%llX" : "%llu",
                              (unsigned long long)ux);
            for (int k = nd; k < prec; k++) buf_putc(j, &f, '0'); // %.Nd: at least N digits
            buf_add(j, &f, digits, (size_t)nd);
        } else { // f F e E g G: C's printf rounds the exact binary value as Python's float formatting does
            if (!is_num(arg)) jfail(j, line, "TypeError: must be real number, not %s", type_name(arg));
            double x = num_f(arg);
            char spec[16], *q = spec, out[700]; // %.300f of 1.8e308: 310 + 301 bytes
            *q++ = '%';
            if (plus) *q++ = '+';
            else if (space) *q++ = ' ';
            if (alt) *q++ = '#';
            snprintf(q, sizeof spec - 4, ".*%c", conv);
            int nd = snprintf(out, sizeof out, spec, prec < 0 ? 6 : prec, x);
            if (nd < 0 || nd >= (int)sizeof out) jfail(j, line, "unsupported: %%%c of %g (too long)", conv, x);
            buf_add(j, &f, out, (size_t)nd);
            sign = nd && strchr("+- ", out[0]) ? 1 : 0;
        }
        size_t n = u8_len(f.p ? f.p : "", f.n);
        int pad = width > (int)n ? width - (int)n : 0;
        int zpad = zero && !left && conv != 's' && conv != 'r'; // Python zero-pads inf / nan too
        if (!left && !zpad) for (int k = 0; k < pad; k++) buf_putc(j, &b, ' ');
        if (zpad) buf_add(j, &b, f.p, sign), f.p += sign, f.n -= sign;
        if (zpad) for (int k = 0; k < pad; k++) buf_putc(j, &b, '0');
        buf_add(j, &b, f.p, f.n);
        if (left) for (int k = 0; k < pad; k++) buf_putc(j, &b, ' ');
    }
    if (is_tuple && argi < nargs) jfail(j, line, "TypeError: not all arguments converted during string formatting");
    if (!is_tuple && !used_single && !mappingish)
        jfail(j, line, "TypeError: not all arguments converted during string formatting");
    return v_buf(j, &b);
}

// a binary arithmetic operator with Python's semantics
// markupsafe.escape of a str onto b (a Markup string is kept as it is): & < > " ' become entities
static void html_escape(J *j, Buf *b, JVal s) {
    if (s.markup) { buf_add(j, b, s.u.s, s.n); return; }
    for (size_t i = 0; i < s.n; i++) {
        char c = s.u.s[i];
        if (c == '&') buf_puts(j, b, "&amp;");
        else if (c == '<') buf_puts(j, b, "&lt;");
        else if (c == '>') buf_puts(j, b, "&gt;");
        else if (c == '"') buf_puts(j, b, "&#34;");
        else if (c == '\'') buf_puts(j, b, "&#39;");
        else buf_putc(j, b, c);
    }
}

static JVal arith(R *r, int op, JVal a, JVal b, int line) {
    J *j = &r->j;
    if (op == '%' && a.t == V_STR) { // printf-style formatting (the right side may be anything, even Undefined)
        if (a.markup) jfail(j, line, "unsupported: printf-style formatting of a Markup string");
        return str_percent(r, a, b, line);
    }
    no_undef(r, a, line), no_undef(r, b, line);
    int ints = (a.t == V_INT || a.t == V_BOOL) && (b.t == V_INT || b.t == V_BOOL);
    int nums = is_num(a) && is_num(b);
    int64_t x = a.u.i, y = b.u.i, z = 0;
    switch (op) {
    case '+':
        if (ints) { int o = __builtin_add_overflow(x, y, &z); return checked(r, o, z, line); }
        if (nums) return v_float(num_f(a) + num_f(b));
        if (a.t == V_STR && b.t == V_STR) {
            Buf o = {0};
            if (a.markup || b.markup) { // Markup.__add__ / __radd__: the plain side is escaped, the sum is Markup
                html_escape(j, &o, a), html_escape(j, &o, b);
                JVal m = v_buf(j, &o);
                m.markup = 1;
                return m;
            }
            buf_add(j, &o, a.u.s, a.n), buf_add(j, &o, b.u.s, b.n);
            return v_buf(j, &o);
        }
        if (a.t == V_LIST && b.t == V_LIST && a.u.l->kind == b.u.l->kind &&
            (a.u.l->kind == L_LIST || a.u.l->kind == L_TUPLE)) {
            JVal o = v_list(j, a.u.l->n + b.u.l->n, a.u.l->kind);
            if (a.u.l->n) memcpy(o.u.l->v, a.u.l->v, sizeof(JVal) * a.u.l->n);
            if (b.u.l->n) memcpy(o.u.l->v + a.u.l->n, b.u.l->v, sizeof(JVal) * b.u.l->n);
            return o;
        }
        break;
    case '-':
        if (ints) { int o = __builtin_sub_overflow(x, y, &z); return checked(r, o, z, line); }
        if (nums) return v_float(num_f(a) - num_f(b));
        break;
    case '*':
        if (ints) { int o = __builtin_mul_overflow(x, y, &z); return checked(r, o, z, line); }
        if (nums) return v_float(num_f(a) * num_f(b));
        if ((a.t == V_STR || (a.t == V_LIST && (a.u.l->kind == L_LIST || a.u.l->kind == L_TUPLE))) &&
            (b.t == V_INT || b.t == V_BOOL))
            return seq_repeat(r, a, y, line);
        if ((b.t == V_STR || (b.t == V_LIST && (b.u.l->kind == L_LIST || b.u.l->kind == L_TUPLE))) &&
            (a.t == V_INT || a.t == V_BOOL))
            return seq_repeat(r, b, x, line);
        break;
    case '/':
        if (nums) {
            if (num_f(b) == 0) jfail(j, line, "ZeroDivisionError: division by zero");
            if (ints) return v_float((double)x / (double)y); // Python int/int is correctly rounded; exact below 2^53
            return v_float(num_f(a) / num_f(b));
        }
        break;
    case OP_FLOORDIV: case '%':
        if (ints) {
            if (y == 0) jfail(j, line, "ZeroDivisionError: integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) jfail(j, line, "unsupported: integer beyond 64 bits");
            int64_t q = x / y, m = x % y;
            if (m && ((m < 0) != (y < 0))) q--, m += y;
            return v_int(op == '%' ? m : q);
        }
        if (nums) {
            if (num_f(b) == 0) jfail(j, line, "ZeroDivisionError: float division by zero");
            double fd, md;
            float_divmod(num_f(a), num_f(b), &fd, &md);
            return v_float(op == '%' ? md : fd);
        }

        break;
    case OP_POW:
        if (ints && y >= 0) {
            int64_t res = 1, base = x;
            int ovf = 0;
            for (int64_t e = y; e > 0; e >>= 1) {
                if (e & 1) ovf |= __builtin_mul_overflow(res, base, &res);
                if (e > 1) ovf |= __builtin_mul_overflow(base, base, &base);
                if (ovf) break;
            }
            return checked(r, ovf, res, line);
        }
        if (nums) {
            double fa = num_f(a), fb = num_f(b);
            if (fa == 0 && fb < 0) jfail(j, line, "ZeroDivisionError: 0.0 cannot be raised to a negative power");
            if (fa < 0 && fb != floor(fb)) jfail(j, line, "unsupported: complex result of **");
            double res = pow(fa, fb);
            if (isinf(res) && isfinite(fa) && isfinite(fb)) // float_pow: a finite result that overflows raises
                jfail(j, line, "OverflowError: (34, 'Numerical result out of range')");
            return v_float(res);
        }
        break;
    }
    static const char *opn[] = {"+", "-", "*", "/", "//", "%", "**"};
    int oi = op == '+' ? 0 : op == '-' ? 1 : op == '*' ? 2 : op == '/' ? 3 : op == OP_FLOORDIV ? 4 : op == '%' ? 5 : 6;
    jfail(j, line, "TypeError: unsupported operand type(s) for %s: '%s' and '%s'", opn[oi], type_name(a), type_name(b));
}

// ---- argument binding for built-ins

typedef struct {
    JVal *pos;          // positional arguments
    int npos;           // count
    const char **kwn;   // keyword names
    JVal *kwv;          // keyword values
    int nkw;            // count
} Args;

// bind args to the parameters (NULL-terminated names; the first nreq required); out[i] is V_UNDEF with u.s = NULL
// for a missing optional parameter (check with has())
static void bind(R *r, int line, const char *fname, const char *const *params, int nreq, const Args *a, JVal *out) {
    int np = 0;
    while (params[np]) np++;
    uint8_t set[16] = {0};
    if (a->npos > np) jfail(&r->j, line, "TypeError: %s() takes at most %d argument(s) (%d given)", fname, np, a->npos);
    for (int i = 0; i < np; i++) out[i] = (JVal){.t = V_UNDEF}, out[i].n = 0xFFFFFFFFu; // marker: not given
    for (int i = 0; i < a->npos; i++) out[i] = a->pos[i], set[i] = 1;
    for (int k = 0; k < a->nkw; k++) {
        int i = list_idx(params, a->kwn[k]);
        if (i < 0) jfail(&r->j, line, "TypeError: %s() got an unexpected keyword argument '%s'", fname, a->kwn[k]);
        if (set[i]) jfail(&r->j, line, "TypeError: %s() got multiple values for argument '%s'", fname, a->kwn[k]);
        out[i] = a->kwv[k], set[i] = 1;
    }
    for (int i = 0; i < nreq; i++)
        if (!set[i]) jfail(&r->j, line, "TypeError: %s() missing required argument '%s'", fname, params[i]);
}
// was an optional parameter given (bind() marks the missing ones)
static int has(JVal v) { return !(v.t == V_UNDEF && v.n == 0xFFFFFFFFu); }

// an int / str argument or a TypeError
static int64_t want_int(R *r, JVal v, const char *what, int line) {
    if (v.t != V_INT && v.t != V_BOOL) jfail(&r->j, line, "TypeError: %s must be an integer, not %s", what, type_name(v));
    return v.u.i;
}
static JVal want_str(R *r, JVal v, const char *what, int line) {
    if (v.t != V_STR) jfail(&r->j, line, "TypeError: %s must be str, not %s", what, type_name(v));
    return v;
}

// ---- string helpers (Python str methods)

// is code point c in the chars of set (a UTF-8 string)
static int in_chars(JVal set, uint32_t c) {
    for (size_t i = 0; i < set.n;)
        if (u8_next(set.u.s, set.n, &i) == c) return 1;
    return 0;
}

// strip (which: 1 left, 2 right, 3 both) whitespace or the chars of set
static JVal str_strip(R *r, JVal s, JVal chars, int which, int line) {
    int ws = chars.t == V_NONE || !has(chars) || chars.t == V_UNDEF;
    if (!ws) want_str(r, chars, "strip arg", line);
    size_t b = 0, e = s.n;
    if (which & 1)
        while (b < e) {
            size_t k = b;
            uint32_t c = u8_next(s.u.s, e, &k);
            if (ws ? !py_isspace(c) : !in_chars(chars, c)) break;
            b = k;
        }
    if (which & 2)
        while (e > b) {
            size_t st = e - 1;
            while (st > b && ((unsigned char)s.u.s[st] & 0xC0) == 0x80 && e - st < 4) st--;
            size_t k = st;
            uint32_t c = u8_next(s.u.s, e, &k);
            if (ws ? !py_isspace(c) : !in_chars(chars, c)) break;
            e = st;
        }
    JVal out = v_strn(s.u.s + b, e - b);
    return out;
}

// append to a list value being built
static void lpush(R *r, JVal *list, JVal v) {
    JList *l = list->u.l;
    if (l->n % 16 == 0) {
        JVal *nv = aalloc(&r->j, sizeof(JVal) * (l->n + 16));
        if (l->n) memcpy(nv, l->v, sizeof(JVal) * l->n);
        l->v = nv;
    }
    l->v[l->n++] = v;
}

// str.split(sep=None, maxsplit=-1) / rsplit
static JVal str_split(R *r, JVal s, JVal sep, int64_t maxsplit, int right, int line) {
    J *j = &r->j;
    JVal out = v_list(j, 0, L_LIST);
    if (sep.t == V_NONE || !has(sep)) { // runs of whitespace
        if (!right) {
            size_t i = 0;
            int64_t splits = 0;
            for (;;) {
                i += ws_head(s.u.s + i, s.n - i);
                if (i >= s.n) break;
                if (maxsplit >= 0 && splits >= maxsplit) { // the rest, trailing whitespace kept
                    lpush(r, &out, v_strn(s.u.s + i, s.n - i));
                    break;
                }
                size_t st = i;
                while (i < s.n) {
                    size_t k = i;
                    if (py_isspace(u8_next(s.u.s, s.n, &k))) break;
                    i = k;
                }
                lpush(r, &out, v_strn(s.u.s + st, i - st));
                splits++;
            }
        } else {
            size_t e = s.n;
            int64_t splits = 0;
            JVal rev = v_list(j, 0, L_LIST);
            for (;;) {
                e -= ws_tail(s.u.s, e);
                if (e == 0) break;
                if (maxsplit >= 0 && splits >= maxsplit) { // the rest, leading whitespace kept
                    lpush(r, &rev, v_strn(s.u.s, e));
                    break;
                }
                size_t b = e;
                while (b > 0) {
                    size_t st = b - 1;
                    while (st > 0 && ((unsigned char)s.u.s[st] & 0xC0) == 0x80 && b - st < 4) st--;
                    size_t k = st;
                    if (py_isspace(u8_next(s.u.s, b, &k))) break;
                    b = st;
                }
                lpush(r, &rev, v_strn(s.u.s + b, e - b));
                e = b, splits++;
            }
            for (uint32_t i = rev.u.l->n; i-- > 0;) lpush(r, &out, rev.u.l->v[i]);
        }
        return out;
    }
    want_str(r, sep, "separator", line);
    if (!sep.n) jfail(j, line, "ValueError: empty separator");
    if (!right) {
        size_t i = 0;
        int64_t splits = 0;
        for (;;) {
            int64_t f = maxsplit >= 0 && splits >= maxsplit ? -1 : str_find(s.u.s, s.n, sep.u.s, sep.n, i);
            if (f < 0) { lpush(r, &out, v_strn(s.u.s + i, s.n - i)); break; }
            lpush(r, &out, v_strn(s.u.s + i, (size_t)f - i));
            i = (size_t)f + sep.n, splits++;
            step(r, line);
        }
    } else {
        JVal rev = v_list(j, 0, L_LIST);
        size_t e = s.n;
        int64_t splits = 0;
        for (;;) {
            int64_t f = -1;
            if (!(maxsplit >= 0 && splits >= maxsplit))
                for (size_t k = e >= sep.n ? e - sep.n + 1 : 0; k-- > 0;)
                    if (!memcmp(s.u.s + k, sep.u.s, sep.n)) { f = (int64_t)k; break; }
            if (f < 0) { lpush(r, &rev, v_strn(s.u.s, e)); break; }
            lpush(r, &rev, v_strn(s.u.s + f + sep.n, e - (size_t)f - sep.n));
            e = (size_t)f, splits++;
            step(r, line);
        }
        for (uint32_t i = rev.u.l->n; i-- > 0;) lpush(r, &out, rev.u.l->v[i]);
    }
    return out;
}

// str.replace(old, new, count=-1)
static JVal str_replace(R *r, JVal s, JVal old, JVal nw, int64_t count, int line) {
    J *j = &r->j;
    Buf b = {0};
    if (!old.n) { // inserts new between every character (and at both ends)
        int64_t done = 0;
        for (size_t i = 0;;) {
            if (count < 0 || done < count) buf_add(j, &b, nw.u.s, nw.n), done++;
            if (i >= s.n) break;
            size_t st = i;
            u8_next(s.u.s, s.n, &i);
            buf_add(j, &b, s.u.s + st, i - st);
        }
        return v_buf(j, &b);
    }
    size_t i = 0;
    int64_t done = 0;
    for (;;) {
        int64_t f = count >= 0 && done >= count ? -1 : str_find(s.u.s, s.n, old.u.s, old.n, i);
        if (f < 0) break;
        buf_add(j, &b, s.u.s + i, (size_t)f - i);
        buf_add(j, &b, nw.u.s, nw.n);
        i = (size_t)f + old.n, done++;
        step(r, line);
    }
    buf_add(j, &b, s.u.s + i, s.n - i);
    return v_buf(j, &b);
}

// Python str.splitlines() (keepends=False)
static JVal str_splitlines(R *r, JVal s) {
    JVal out = v_list(&r->j, 0, L_LIST);
    size_t st = 0, i = 0;
    while (i < s.n) {
        size_t k = i;
        uint32_t c = u8_next(s.u.s, s.n, &k);
        if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
            c == 0x2028 || c == 0x2029) {
            lpush(r, &out, v_strn(s.u.s + st, i - st));
            if (c == '\r' && k < s.n && s.u.s[k] == '\n') k++;
            st = k;
        }
        i = k;
    }
    if (st < s.n) lpush(r, &out, v_strn(s.u.s + st, s.n - st));
    return out;
}

// code point index of a byte offset
static int64_t cp_index(JVal s, size_t byte) { return (int64_t)u8_len(s.u.s, byte); }

// ---- tests (jinja2/tests.py)

static JVal call_value(R *r, JVal fn, Args *a, int line);

// x is name(args): jinja2/tests.py
static int test_apply(R *r, const char *name, JVal v, Args *a, int line) {
    J *j = &r->j;
    JVal p[2];
    static const char *const none[] = {NULL}, *const one[] = {"other", NULL};
    const char *const *sig = none;
    int nreq = 0;
    if (!strcmp(name, "divisibleby") || !strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==") ||
        !strcmp(name, "ne") || !strcmp(name, "!=") || !strcmp(name, "gt") || !strcmp(name, ">") ||
        !strcmp(name, "greaterthan") || !strcmp(name, "ge") || !strcmp(name, ">=") || !strcmp(name, "lt") ||
        !strcmp(name, "<") || !strcmp(name, "lessthan") || !strcmp(name, "le") || !strcmp(name, "<=") ||
        !strcmp(name, "in") || !strcmp(name, "sameas"))
        sig = one, nreq = 1;
    bind(r, line, name, sig, nreq, a, p);
    if (!strcmp(name, "defined")) return v.t != V_UNDEF;
    if (!strcmp(name, "undefined")) return v.t == V_UNDEF;
    if (!strcmp(name, "none")) return v.t == V_NONE;
    if (!strcmp(name, "boolean")) return v.t == V_BOOL;
    if (!strcmp(name, "true")) return v.t == V_BOOL && v.u.i;
    if (!strcmp(name, "false")) return v.t == V_BOOL && !v.u.i;
    if (!strcmp(name, "integer")) return v.t == V_INT;
    if (!strcmp(name, "float")) return v.t == V_FLOAT;
    if (!strcmp(name, "number")) return is_num(v);
    if (!strcmp(name, "string")) return v.t == V_STR;
    if (!strcmp(name, "mapping")) return v.t == V_DICT;
    if (!strcmp(name, "iterable")) return v.t == V_UNDEF || v.t == V_STR || v.t == V_LIST || v.t == V_DICT;
    if (!strcmp(name, "sequence"))
        return v.t == V_UNDEF || v.t == V_STR || v.t == V_DICT ||
               (v.t == V_LIST && (v.u.l->kind == L_LIST || v.u.l->kind == L_TUPLE || v.u.l->kind == L_RANGE));
    // Undefined and loop are callable too (calling them raises / recurses)
    if (!strcmp(name, "callable")) return v.t == V_MACRO || v.t == V_FUNC || v.t == V_UNDEF || v.t == V_LOOP;
    if (!strcmp(name, "escaped")) return v.t == V_STR && v.markup;
    if (!strcmp(name, "filter") || !strcmp(name, "test")) { // a name of the environment's filters / tests
        if (v.t != V_STR) return 0;
        char *nm = astrndup(j, v.u.s, v.n);
        if (name[0] == 't') return in_list(known_tests, nm);
        return in_list(known_filters, nm) || in_list(jinja_filters, nm);
    }
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        JVal m = arith(r, '%', v, v_int(2), line);
        int is1 = m.t == V_FLOAT ? m.u.f == 1 : m.u.i == 1, is0 = m.t == V_FLOAT ? m.u.f == 0 : m.u.i == 0;
        return name[0] == 'o' ? is1 : is0;
    }
    if (!strcmp(name, "divisibleby")) {
        JVal m = arith(r, '%', v, p[0], line);
        return m.t == V_FLOAT ? m.u.f == 0 : m.u.i == 0;
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        JVal s = str_of(r, v, line);
        int cased = 0, ok = 1;
        for (size_t i = 0; i < s.n;) {
            uint32_t c = u8_next(s.u.s, s.n, &i), up, lo;
            int k = cp_case(r, c, &up, &lo, line);
            if (k) cased = 1;
            if (k == (name[0] == 'l' ? 2 : 1)) ok = 0;
        }
        return cased && ok;
    }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return v_eq(v, p[0]);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !v_eq(v, p[0]);
    if (!strcmp(name, "gt") || !strcmp(name, ">") || !strcmp(name, "greaterthan")) return v_cmp(r, v, p[0], line) > 0;
    if (!strcmp(name, "ge") || !strcmp(name, ">=")) return v_cmp(r, v, p[0], line) >= 0;
    if (!strcmp(name, "lt") || !strcmp(name, "<") || !strcmp(name, "lessthan")) return v_cmp(r, v, p[0], line) < 0;
    if (!strcmp(name, "le") || !strcmp(name, "<=")) return v_cmp(r, v, p[0], line) <= 0;
    if (!strcmp(name, "in")) return v_in(r, v, p[0], line);
    if (!strcmp(name, "sameas")) {
        JVal o = p[0];
        if (v.t == V_NONE || o.t == V_NONE) return v.t == o.t;
        if (v.t == V_BOOL || o.t == V_BOOL) return v.t == o.t && v.u.i == o.u.i;
        if (v.t == V_UNDEF || o.t == V_UNDEF) jfail(j, line, "unsupported: 'sameas' with an undefined value");
        if (v.t == V_LIST || v.t == V_DICT || v.t == V_NS || v.t == V_MACRO) return v.t == o.t && v.u.d == o.u.d;
        jfail(j, line, "unsupported: 'sameas' on %s values (depends on CPython object identity)", type_name(v));
    }
    jfail(j, line, "unsupported test '%s'", name);
}

// ---- filters (jinja2/filters.py; tojson is transformers')

static JVal filter_apply(R *r, const char *name, JVal v, Args *a, int line);

// attribute path "a.b.0" of an item (jinja's make_attrgetter): Undefined when missing
static JVal attr_path_d(R *r, JVal item, JVal attr, const JVal *dflt, int line);
static JVal attr_path(R *r, JVal item, JVal attr, int line) { return attr_path_d(r, item, attr, NULL, line); }

// the same with map's default= (put in place of an Undefined after each part, as make_attrgetter does)
static JVal attr_path_d(R *r, JVal item, JVal attr, const JVal *dflt, int line) {
    if (dflt && dflt->t == V_NONE) dflt = NULL;
    if (attr.t == V_INT) {
        item = get_item(r, item, attr, line);
        return dflt && item.t == V_UNDEF ? *dflt : item;
    }
    want_str(r, attr, "attribute", line);
    size_t st = 0;
    for (size_t i = 0; i <= attr.n; i++) {
        if (i < attr.n && attr.u.s[i] != '.') continue;
        const char *part = attr.u.s + st;
        size_t pn = i - st;
        int digits = pn > 0;
        for (size_t k = 0; k < pn; k++) digits &= isdigit((unsigned char)part[k]) != 0;
        JVal key = digits ? v_int(strtoll(astrndup(&r->j, part, pn), NULL, 10)) : v_strn(part, pn);
        // environment.getitem
        if (item.t == V_UNDEF) undef_fail(r, item, line);
        item = get_item(r, item, key, line);
        if (dflt && item.t == V_UNDEF) item = *dflt;
        st = i + 1;
    }
    return item;
}

// sort key with case folding (jinja's ignore_case: str.lower())
static JVal fold_key(R *r, JVal v, int case_sensitive, int line) {
    if (!case_sensitive && v.t == V_STR) return str_case(r, v, CASE_LOWER, line);
    return v;
}

// stable merge sort of idx[] by keys[]
// listkeys: the keys are compared as jinja2's |sort compares its one-item key lists ([x] < [y]: equal when x == y,
// so keys that are all Undefined - a missing attribute - keep their order instead of failing)
static void sort_idx(R *r, uint32_t *idx, uint32_t n, JVal *keys, int reverse, int listkeys, int line) {
    if (n < 2) return;
    uint32_t *tmp = aalloc(&r->j, sizeof(uint32_t) * n);
    for (uint32_t w = 1; w < n; w *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * w) {
            uint32_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, k = mid, o = lo;
            while (i < mid && k < hi) {
                step(r, line);
                int c = listkeys && v_eq(keys[idx[k]], keys[idx[i]]) ? 0 : v_cmp(r, keys[idx[k]], keys[idx[i]], line);
                if (reverse) c = -c;
                // Python's reverse=True keeps equal elements in their original order
                if (c < 0) tmp[o++] = idx[k++];
                else tmp[o++] = idx[i++];
            }
            while (i < mid) tmp[o++] = idx[i++];
            while (k < hi) tmp[o++] = idx[k++];
        }
        memcpy(idx, tmp, sizeof(uint32_t) * n);
    }
}

// list(v)
static JVal as_list_val(R *r, JVal v, int line) {
    JList *l = iter_list(r, v, line);
    JVal out = v_list(&r->j, l->n, L_LIST);
    if (l->n) memcpy(out.u.l->v, l->v, sizeof(JVal) * l->n);
    return out;
}

// len(v) (Undefined has length 0; a generator has none)
static int64_t py_len(R *r, JVal v, int line) {
    switch (v.t) {
    case V_UNDEF: return 0;
    case V_STR: return (int64_t)u8_len(v.u.s, v.n);
    case V_DICT: return v.u.d->n;
    case V_LIST:
        if (v.u.l->kind == L_GEN || v.u.l->kind == L_REVITER)
            jfail(&r->j, line, "TypeError: object of type '%s' has no len()", type_name(v));
        return v.u.l->n;
    default: jfail(&r->j, line, "TypeError: object of type '%s' has no len()", type_name(v));
    }
}

// Python int(str, base) / float(str); 0 when the text is not a number
static int parse_py_int(JVal s, int64_t base, int64_t *out) {
    size_t b = ws_head(s.u.s, s.n), e = s.n - ws_tail(s.u.s, s.n);
    if (b >= e) return 0;
    const char *p = s.u.s + b;
    size_t n = e - b, i = 0;
    int neg = 0;
    if (p[0] == '+' || p[0] == '-') neg = p[0] == '-', i++;
    if (base == 0 || base == 16 || base == 8 || base == 2) {
        if (i + 1 < n && p[i] == '0' && strchr("xXoObB", p[i + 1])) {
            int pb = (p[i + 1] | 32) == 'x' ? 16 : (p[i + 1] | 32) == 'o' ? 8 : 2;
            if (base && base != pb) return 0;
            base = pb, i += 2;
            if (i < n && p[i] == '_') i++;
        } else if (base == 0) base = 10;
    }
    if (base < 2 || base > 36 || i >= n) return 0;
    int64_t v = 0;
    int prev_us = 1;
    for (; i < n; i++) {
        if (p[i] == '_') {
            if (prev_us) return 0;
            prev_us = 1;
            continue;
        }
        int d = isdigit((unsigned char)p[i]) ? p[i] - '0' : isalpha((unsigned char)p[i]) ? (p[i] | 32) - 'a' + 10 : 99;
        if (d >= base) return 0;
        if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v)) return 0;
        prev_us = 0;
    }
    if (prev_us) return 0;
    *out = neg ? -v : v;
    return 1;
}
// Python float(str): strips whitespace, accepts _ between digits, inf / nan
static int parse_py_float(R *r, JVal s, double *out) {
    size_t b = ws_head(s.u.s, s.n), e = s.n - ws_tail(s.u.s, s.n);
    if (b >= e || e - b > 200) return 0;
    char buf[256];
    size_t k = 0;
    for (size_t i = b; i < e; i++) {
        char c = s.u.s[i];
        if (c == '_') {
            if (i == b || i + 1 >= e || !isdigit((unsigned char)s.u.s[i - 1]) || !isdigit((unsigned char)s.u.s[i + 1]))
                return 0;
            continue;
        }
        if (!(isdigit((unsigned char)c) || strchr("+-.eEinfatyINFATY", c))) return 0;
        buf[k++] = c;
    }
    buf[k] = 0;
    const char *q = buf + (buf[0] == '+' || buf[0] == '-');
    if (!strcasecmp(q, "inf") || !strcasecmp(q, "infinity") || !strcasecmp(q, "nan")) {
        double v = tolower((unsigned char)q[0]) == 'n' ? NAN : INFINITY;
        *out = buf[0] == '-' ? -v : v;
        return 1;
    }
    for (const char *c = q; *c; c++)
        if (isalpha((unsigned char)*c) && *c != 'e' && *c != 'E') return 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end || end == buf) return 0;
    if (strchr(buf, 'x') || strchr(buf, 'X')) return 0;
    *out = v;
    (void)r;
    return 1;
}

// transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
static JVal do_tojson(R *r, JVal v, Args *a, int line) {
    J *j = &r->j;
    static const char *const sig[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    JVal p[4];
    bind(r, line, "tojson", sig, 0, a, p);
    JsonOpt o = {0};
    o.ensure_ascii = has(p[0]) && truthy(p[0]);
    if (has(p[1]) && p[1].t != V_NONE) {
        if (p[1].t == V_STR) o.indent = p[1].u.s, o.indent_n = p[1].n;
        else {
            int64_t w = want_int(r, p[1], "indent", line);
            if (w > 1000) jfail(j, line, "tojson: indent too large");
            char *sp = aalloc(j, (size_t)(w > 0 ? w : 0) + 1);
            memset(sp, ' ', (size_t)(w > 0 ? w : 0));
            o.indent = sp, o.indent_n = (size_t)(w > 0 ? w : 0);
        }
    }
    if (has(p[2]) && p[2].t != V_NONE) {
        if (p[2].t != V_LIST || p[2].u.l->n != 2 || p[2].u.l->v[0].t != V_STR || p[2].u.l->v[1].t != V_STR)
            jfail(j, line, "tojson: separators must be a pair of strings");
        o.item_sep = p[2].u.l->v[0], o.key_sep = p[2].u.l->v[1];
    } else {
        o.item_sep = v_cstr(o.indent ? "," : ", ");
        o.key_sep = v_cstr(": ");
    }
    o.sort_keys = has(p[3]) && truthy(p[3]);
    Buf b = {0};
    json_dump(r, &b, v, &o, 0, line);
    return v_buf(j, &b);
}

// select / reject / selectattr / rejectattr (jinja's select_or_reject): a generator
static JVal select_reject(R *r, JVal seq, Args *a, int by_attr, int keep, int line) {
    J *j = &r->j;
    int off = 0;
    JVal attr = {0};
    if (by_attr) {
        if (a->npos < 1) jfail(j, line, "TypeError: missing attribute name");
        attr = a->pos[0], off = 1;
    }
    const char *test = NULL;
    if (a->npos > off) {
        JVal t = want_str(r, a->pos[off], "test name", line);
        test = astrndup(j, t.u.s, t.n);
        if (!in_list(known_tests, test)) jfail(j, line, "no test named '%s'", test);
        off++;
    }
    Args ta = {a->npos > off ? a->pos + off : NULL, a->npos - off, a->kwn, a->kwv, a->nkw};
    if (!test && (ta.npos || ta.nkw)) jfail(j, line, "TypeError: test arguments without a test");
    JVal out = v_list(j, 0, L_GEN);
    if (!truthy(seq)) return out; // jinja's select_or_reject: `if value:`
    JList *l = iter_list(r, seq, line);
    for (uint32_t i = 0; i < l->n; i++) {
        step(r, line);
        JVal item = l->v[i], x = by_attr ? attr_path(r, item, attr, line) : item;
        int ok = test ? test_apply(r, test, x, &ta, line) : truthy(x);
        if (ok == keep) lpush(r, &out, item);
    }
    return out;
}

// jinja's str.title-like filter: capitalize the first char of each chunk split at [-\s({[<]+
static JVal do_title(R *r, JVal s, int line) {
    J *j = &r->j;
    Buf b = {0};
    size_t i = 0;
    while (i < s.n) {
        size_t st = i;
        int sep = -1;
        while (i < s.n) { // a run of separators, or a run of others
            size_t k = i;
            uint32_t c = u8_next(s.u.s, s.n, &k);
            int is_sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c);
            if (sep < 0) sep = is_sep;
            if (is_sep != sep) break;
            i = k;
        }
        JVal chunk = v_strn(s.u.s + st, i - st);
        if (sep) { buf_add(j, &b, chunk.u.s, chunk.n); continue; }
        size_t k = 0;
        u8_next(chunk.u.s, chunk.n, &k);
        JVal f = str_case(r, v_strn(chunk.u.s, k), CASE_UPPER, line), rest = str_case(r, v_strn(chunk.u.s + k, chunk.n - k), CASE_LOWER, line);
        buf_add(j, &b, f.u.s, f.n), buf_add(j, &b, rest.u.s, rest.n);
    }
    return v_buf(j, &b);
}

// min / max (jinja's _min_or_max with ignore_case)
static JVal min_max(R *r, JVal v, Args *a, int want_max, int line) {
    static const char *const sig[] = {"case_sensitive", "attribute", NULL};
    JVal p[2];
    bind(r, line, want_max ? "max" : "min", sig, 0, a, p);
    int cs = has(p[0]) && truthy(p[0]);
    JList *l = iter_list(r, v, line);
    if (!l->n) return v_undef("No aggregated item, sequence was empty.");
    uint32_t best = 0;
    JVal bk = {0};
    for (uint32_t i = 0; i < l->n; i++) {
        JVal x = has(p[1]) && p[1].t != V_NONE ? attr_path(r, l->v[i], p[1], line) : l->v[i];
        JVal k = fold_key(r, x, cs, line);
        if (i == 0) { bk = k; continue; }
        int c = v_cmp(r, k, bk, line);
        if (want_max ? c > 0 : c < 0) best = i, bk = k;
    }
    return l->v[best];
}

// x|name(args): jinja2/filters.py
// Python's round(x, -k): x rounded half-even to a multiple of 10**k (an int stays an int; a float is rounded from
// its exact binary value, as CPython's dtoa-based float round does)
static JVal round_tens(R *r, JVal v, int64_t k, int line) {
    J *j = &r->j;
    if (v.t != V_FLOAT) {
        int64_t x = v.u.i;
        if (k >= 19) { // 10**k is beyond int64: only |x| > 5 * 10**18 would round away from 0
            if (x > 5000000000000000000LL || x < -5000000000000000000LL) jfail(j, line, "unsupported: integer beyond 64 bits");
            return v_int(0);
        }
        int64_t p = 1, q, rem, res;
        for (int64_t i = 0; i < k; i++) p *= 10;
        q = x / p, rem = x % p;
        if (rem < 0) q--, rem += p;                         // floor division: 0 <= rem < p
        if (2 * rem > p || (2 * rem == p && (q & 1))) q++; // above half, or half and q odd
        if (__builtin_mul_overflow(q, p, &res)) jfail(j, line, "unsupported: integer beyond 64 bits");
        return v_int(res);
    }
    double x = v.u.f;
    if (!isfinite(x) || x == 0) return v_float(x);
    double ax = fabs(x), ip = trunc(ax);
    char d[400];
    int n = snprintf(d + 1, sizeof d - 1, "%.0f", ip); // exact: ip is an integer-valued double
    d[0] = '0';                                         // room for a carry
    n++;
    if (k >= n) return v_float(copysign(0.0, x));       // |x| < 10**(k-1): below half of 10**k
    // d[0 .. n-k) kept, d[n-k .. n) dropped (then the fraction ax - ip): compare the dropped part with one half
    int cmp = d[n - k] > '5' ? 1 : d[n - k] < '5' ? -1 : 0;
    for (int i = n - (int)k + 1; i < n && !cmp; i++) cmp = d[i] != '0';
    if (!cmp && ax != ip) cmp = 1;
    int keep = n - (int)k;
    if (cmp > 0 || (cmp == 0 && ((d[keep - 1] - '0') & 1))) // round up: add 1 to the kept digits
        for (int i = keep - 1; i >= 0; i--) {
            if (d[i] != '9') { d[i]++; break; }
            d[i] = '0';
        }
    snprintf(d + keep, sizeof d - (size_t)keep, "e%lld", (long long)k);
    return v_float(copysign(strtod(d, NULL), x));
}

static JVal filter_apply(R *r, const char *name, JVal v, Args *a, int line) {
    J *j = &r->j;
    JVal p[8];
#define SIG(...) static const char *const sig_[] = {__VA_ARGS__, NULL}
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        return v_int(py_len(r, v, line));
    }
    if (!strcmp(name, "tojson")) return do_tojson(r, v, a, line);
    if (!strcmp(name, "trim")) {
        SIG("chars");
        bind(r, line, name, sig_, 0, a, p);
        JVal sv = str_of(r, v, line);
        if (sv.markup && has(p[0]) && p[0].t != V_NONE) jfail(j, line, "unsupported: trim(chars) of a Markup string");
        JVal out = str_strip(r, sv, p[0], 3, line);
        out.markup = sv.markup; // Markup.strip returns Markup
        return out;
    }
    if (!strcmp(name, "string")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        return str_of(r, v, line);
    }
    if (!strcmp(name, "safe") || !strcmp(name, "e") || !strcmp(name, "escape")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        if (v.t == V_STR && v.markup) return v;
        JVal s = str_of(r, v, line);
        if (name[0] != 's') {
            Buf b = {0};
            html_escape(j, &b, s);
            s = v_buf(j, &b);
        }
        s.markup = 1;
        return s;
    }
    if (!strcmp(name, "join")) {
        SIG("d", "attribute");
        bind(r, line, name, sig_, 0, a, p);
        JVal sep = has(p[0]) ? str_of(r, p[0], line) : v_cstr("");
        JList *l = iter_list(r, v, line);
        Buf b = {0};
        for (uint32_t i = 0; i < l->n; i++) {
            step(r, line);
            if (i) buf_add(j, &b, sep.u.s, sep.n);
            JVal x = has(p[1]) && p[1].t != V_NONE ? attr_path(r, l->v[i], p[1], line) : l->v[i];
            to_str(r, x, &b, line);
        }
        return v_buf(j, &b);
    }
    if (!strcmp(name, "replace")) {
        SIG("old", "new", "count");
        bind(r, line, name, sig_, 2, a, p);
        int64_t cnt = has(p[2]) && p[2].t != V_NONE ? want_int(r, p[2], "count", line) : -1;
        return str_replace(r, str_of(r, v, line), str_of(r, p[0], line), str_of(r, p[1], line), cnt, line);
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper") || !strcmp(name, "capitalize") || !strcmp(name, "title")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        JVal s = str_of(r, v, line);
        JVal out = name[0] == 't' ? do_title(r, s, line)
                 : str_case(r, s, name[0] == 'l' ? CASE_LOWER : name[0] == 'u' ? CASE_UPPER : CASE_CAPITALIZE, line);
        if (name[0] != 't') out.markup = s.markup; // Markup.upper() etc. return Markup (title joins plain str)
        return out;
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        SIG("default_value", "boolean");
        bind(r, line, name, sig_, 0, a, p);
        int boolean = has(p[1]) && truthy(p[1]);
        if (v.t == V_UNDEF || (boolean && !truthy(v))) return has(p[0]) ? p[0] : v_cstr("");
        return v;
    }
    if (!strcmp(name, "first")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        JList *l = iter_list(r, v, line);
        return l->n ? l->v[0] : v_undef("No first item, sequence was empty.");
    }
    if (!strcmp(name, "last")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        if (v.t == V_LIST && (v.u.l->kind == L_GEN || v.u.l->kind == L_REVITER))
            jfail(j, line, "TypeError: '%s' object is not reversible", type_name(v));
        JList *l = iter_list(r, v, line);
        return l->n ? l->v[l->n - 1] : v_undef("No last item, sequence was empty.");
    }
    if (!strcmp(name, "items")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        if (v.t == V_UNDEF) return v_list(j, 0, L_GEN);
        if (v.t != V_DICT) jfail(j, line, "TypeError: Can only get item pairs from a mapping.");
        JVal out = v_list(j, v.u.d->n, L_GEN);
        for (uint32_t i = 0; i < v.u.d->n; i++) {
            JVal t = v_list(j, 2, L_TUPLE);
            t.u.l->v[0] = v.u.d->k[i], t.u.l->v[1] = v.u.d->v[i];
            out.u.l->v[i] = t;
        }
        return out;
    }
    if (!strcmp(name, "list")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        return as_list_val(r, v, line);
    }
    if (!strcmp(name, "map")) {
        JVal out = v_list(j, 0, L_GEN);
        JList *l = truthy(v) ? iter_list(r, v, line) : iter_list(r, v_undef(NULL), line); // do_map: `if value:`
        int by_attr = a->npos == 0;
        if (by_attr) {
            SIG("attribute", "default");
            bind(r, line, name, sig_, 1, a, p);
            for (uint32_t i = 0; i < l->n; i++) {
                step(r, line);
                lpush(r, &out, attr_path_d(r, l->v[i], p[0], has(p[1]) ? &p[1] : NULL, line));
            }
            return out;
        }
        JVal fname = want_str(r, a->pos[0], "filter name", line);
        const char *fn = astrndup(j, fname.u.s, fname.n);
        if (!in_list(known_filters, fn)) jfail(j, line, "no filter named '%s'", fn);
        Args fa = {a->pos + 1, a->npos - 1, a->kwn, a->kwv, a->nkw};
        for (uint32_t i = 0; i < l->n; i++) step(r, line), lpush(r, &out, filter_apply(r, fn, l->v[i], &fa, line));
        return out;
    }
    if (!strcmp(name, "select")) return select_reject(r, v, a, 0, 1, line);
    if (!strcmp(name, "reject")) return select_reject(r, v, a, 0, 0, line);
    if (!strcmp(name, "selectattr")) return select_reject(r, v, a, 1, 1, line);
    if (!strcmp(name, "rejectattr")) return select_reject(r, v, a, 1, 0, line);
    if (!strcmp(name, "unique")) {
        SIG("case_sensitive", "attribute");
        bind(r, line, name, sig_, 0, a, p);
        int cs = has(p[0]) && truthy(p[0]);
        JList *l = iter_list(r, v, line);
        JVal out = v_list(j, 0, L_GEN), seen = v_list(j, 0, L_LIST);
        for (uint32_t i = 0; i < l->n; i++) {
            JVal x = has(p[1]) && p[1].t != V_NONE ? attr_path(r, l->v[i], p[1], line) : l->v[i];
            JVal k = fold_key(r, x, cs, line);
            if (k.t == V_LIST && k.u.l->kind == L_LIST) jfail(j, line, "TypeError: unhashable type: 'list'");
            if (k.t == V_DICT) jfail(j, line, "TypeError: unhashable type: 'dict'");
            if (v_in(r, k, seen, line)) continue;
            lpush(r, &seen, k), lpush(r, &out, l->v[i]);
        }
        return out;
    }
    if (!strcmp(name, "int")) {
        SIG("default", "base");
        bind(r, line, name, sig_, 0, a, p);
        no_undef(r, v, line); // int(Undefined) raises UndefinedError (not caught like a ValueError)
        JVal dflt = has(p[0]) ? p[0] : v_int(0);
        int64_t base = has(p[1]) ? want_int(r, p[1], "base", line) : 10, iv;
        double fv;
        if (v.t == V_STR) {
            if (parse_py_int(v, base, &iv)) return v_int(iv);
            if (!parse_py_float(r, v, &fv) || isnan(fv)) return dflt;
        } else if (v.t == V_INT || v.t == V_BOOL) return v_int(v.u.i);
        else if (v.t == V_FLOAT) {
            if (isnan(v.u.f)) return dflt;
            fv = v.u.f;
        } else return dflt;
        if (isinf(fv)) jfail(j, line, "OverflowError: cannot convert float infinity to integer");
        if (fabs(fv) >= 9.2e18) jfail(j, line, "unsupported: integer beyond 64 bits");
        return v_int((int64_t)fv);
    }
    if (!strcmp(name, "float")) {
        SIG("default");
        bind(r, line, name, sig_, 0, a, p);
        double fv;
        no_undef(r, v, line);
        if (is_num(v)) return v_float(num_f(v));
        if (v.t == V_STR && parse_py_float(r, v, &fv)) return v_float(fv);
        return has(p[0]) ? p[0] : v_float(0.0);
    }
    if (!strcmp(name, "abs")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        if (v.t == V_FLOAT) return v_float(fabs(v.u.f));
        if (v.t == V_INT || v.t == V_BOOL) {
            if (v.u.i == INT64_MIN) jfail(j, line, "unsupported: integer beyond 64 bits");
            return v_int(v.u.i < 0 ? -v.u.i : v.u.i);
        }
        jfail(j, line, "TypeError: bad operand type for abs(): '%s'", type_name(v));
    }
    if (!strcmp(name, "round")) {
        SIG("precision", "method");
        bind(r, line, name, sig_, 0, a, p);
        int64_t prec = has(p[0]) ? want_int(r, p[0], "precision", line) : 0;
        JVal m = has(p[1]) ? want_str(r, p[1], "method", line) : v_cstr("common");
        if (!is_num(v)) jfail(j, line, "TypeError: round() of a %s", type_name(v));
        if (prec < -400 || prec > 300) jfail(j, line, "unsupported: round() precision %lld", (long long)prec);
        if (str_eq(m, "common") && prec < 0) return round_tens(r, v, -prec, line);
        if (str_eq(m, "common")) {
            if (v.t != V_FLOAT) return v_int(v.u.i);
            double x = v.u.f;
            if (!isfinite(x)) return v_float(x);
            if (prec == 0) return v_float(nearbyint(x));
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            return v_float(strtod(buf, NULL));
        }
        if (!str_eq(m, "ceil") && !str_eq(m, "floor")) jfail(j, line, "TypeError: method must be common, ceil or floor");
        double sc = pow(10.0, (double)prec), x = num_f(v) * sc;
        if (!isfinite(x)) jfail(j, line, "unsupported: round() of a non-finite value");
        double rr = m.u.s[0] == 'c' ? ceil(x) : floor(x);
        return v_float(rr / sc);
    }
    if (!strcmp(name, "dictsort")) {
        SIG("case_sensitive", "by", "reverse");
        bind(r, line, name, sig_, 0, a, p);
        if (v.t != V_DICT) jfail(j, line, "TypeError: dictsort of a %s", type_name(v));
        int cs = has(p[0]) && truthy(p[0]), by_value = 0;
        if (has(p[1])) {
            if (str_eq(p[1], "value")) by_value = 1;
            else if (!str_eq(p[1], "key")) jfail(j, line, "FilterArgumentError: You can only sort by either \"key\" or \"value\"");
        }
        JDict *d = v.u.d;
        uint32_t *idx = aalloc(j, sizeof(uint32_t) * (d->n + 1));
        JVal *keys = aalloc(j, sizeof(JVal) * (d->n + 1));
        for (uint32_t i = 0; i < d->n; i++) idx[i] = i, keys[i] = fold_key(r, by_value ? d->v[i] : d->k[i], cs, line);
        sort_idx(r, idx, d->n, keys, has(p[2]) && truthy(p[2]), 0, line);
        JVal out = v_list(j, d->n, L_LIST);
        for (uint32_t i = 0; i < d->n; i++) {
            JVal t = v_list(j, 2, L_TUPLE);
            t.u.l->v[0] = d->k[idx[i]], t.u.l->v[1] = d->v[idx[i]];
            out.u.l->v[i] = t;
        }
        return out;
    }
    if (!strcmp(name, "sort")) {
        SIG("reverse", "case_sensitive", "attribute");
        bind(r, line, name, sig_, 0, a, p);
        JList *l = iter_list(r, v, line);
        uint32_t *idx = aalloc(j, sizeof(uint32_t) * (l->n + 1));
        JVal *keys = aalloc(j, sizeof(JVal) * (l->n + 1));
        int cs = has(p[1]) && truthy(p[1]);
        if (has(p[2]) && p[2].t == V_STR && memchr(p[2].u.s, ',', p[2].n))
            jfail(j, line, "unsupported: sort by several attributes");
        for (uint32_t i = 0; i < l->n; i++) {
            JVal x = has(p[2]) && p[2].t != V_NONE ? attr_path(r, l->v[i], p[2], line) : l->v[i];
            idx[i] = i, keys[i] = fold_key(r, x, cs, line);
        }
        sort_idx(r, idx, l->n, keys, has(p[0]) && truthy(p[0]), 1, line);
        JVal out = v_list(j, l->n, L_LIST);
        for (uint32_t i = 0; i < l->n; i++) out.u.l->v[i] = l->v[idx[i]];
        return out;
    }
    if (!strcmp(name, "reverse")) {
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        if (v.t == V_STR) {
            JVal none = v_none();
            JVal out = do_slice(r, v, none, none, v_int(-1), line);
            out.markup = v.markup;
            return out;
        }
        int kind = v.t == V_LIST && (v.u.l->kind == L_LIST || v.u.l->kind == L_TUPLE || v.u.l->kind == L_RANGE)
                       ? L_REVITER : L_LIST;
        if (v.t == V_DICT) kind = L_REVITER; // reversed(dict): its keys, last first
        if (v.t == V_UNDEF) kind = L_REVITER; // reversed(Undefined) works (empty), a reversed object as well
        if (v.t == V_LIST && v.u.l->kind >= L_ITEMS && v.u.l->kind <= L_VALUES) kind = L_REVITER;
        JList *l = iter_list(r, v, line);
        JVal out = v_list(j, l->n, kind);
        for (uint32_t i = 0; i < l->n; i++) out.u.l->v[i] = l->v[l->n - 1 - i];
        return out;
    }
    if (!strcmp(name, "indent")) {
        SIG("width", "first", "blank");
        bind(r, line, name, sig_, 0, a, p);
        JVal ind;
        if (has(p[0]) && p[0].t == V_STR) ind = p[0];
        else {
            int64_t w = has(p[0]) ? want_int(r, p[0], "width", line) : 4;
            if (w > 1000) jfail(j, line, "indent width too large");
            char *sp = aalloc(j, (size_t)(w > 0 ? w : 0) + 1);
            memset(sp, ' ', (size_t)(w > 0 ? w : 0));
            ind = v_strn(sp, (size_t)(w > 0 ? w : 0));
        }
        if (v.t == V_STR && v.markup) jfail(j, line, "unsupported: indent of a Markup string");
        JVal s = want_str(r, v, "indent value", line);
        Buf t = {0};
        buf_add(j, &t, s.u.s, s.n), buf_putc(j, &t, '\n');
        JVal lines = str_splitlines(r, v_buf(j, &t));
        JList *l = lines.u.l;
        Buf b = {0};
        if (has(p[2]) && truthy(p[2])) {
            for (uint32_t i = 0; i < l->n; i++) {
                if (i) buf_putc(j, &b, '\n'), buf_add(j, &b, ind.u.s, ind.n);
                buf_add(j, &b, l->v[i].u.s, l->v[i].n);
            }
        } else {
            for (uint32_t i = 0; i < l->n; i++) {
                if (i) {
                    buf_putc(j, &b, '\n');
                    if (l->v[i].n) buf_add(j, &b, ind.u.s, ind.n);
                }
                buf_add(j, &b, l->v[i].u.s, l->v[i].n);
            }
        }
        JVal out = v_buf(j, &b);
        if (has(p[1]) && truthy(p[1])) {
            Buf f = {0};
            buf_add(j, &f, ind.u.s, ind.n), buf_add(j, &f, out.u.s, out.n);
            out = v_buf(j, &f);
        }
        return out;
    }
    if (!strcmp(name, "max") || !strcmp(name, "min")) return min_max(r, v, a, name[1] == 'a', line);
    if (!strcmp(name, "sum")) {
        SIG("attribute", "start");
        bind(r, line, name, sig_, 0, a, p);
        JVal acc = has(p[1]) ? p[1] : v_int(0);
        JList *l = iter_list(r, v, line);
        for (uint32_t i = 0; i < l->n; i++) {
            JVal x = has(p[0]) && p[0].t != V_NONE ? attr_path(r, l->v[i], p[0], line) : l->v[i];
            if (x.t == V_STR) jfail(j, line, "TypeError: unsupported operand type(s) for +: 'int' and 'str'");
            acc = arith(r, '+', acc, x, line);
        }
        return acc;
    }
    if (!strcmp(name, "center")) {
        SIG("width");
        bind(r, line, name, sig_, 0, a, p);
        int64_t w = has(p[0]) ? want_int(r, p[0], "width", line) : 80;
        JVal s = str_of(r, v, line);
        int64_t n = (int64_t)u8_len(s.u.s, s.n);
        if (w <= n) return s;
        if (w > 100000) jfail(j, line, "center width too large");
        int64_t marg = w - n, left = marg / 2 + (marg & w & 1);
        Buf b = {0};
        for (int64_t i = 0; i < left; i++) buf_putc(j, &b, ' ');
        buf_add(j, &b, s.u.s, s.n);
        for (int64_t i = 0; i < marg - left; i++) buf_putc(j, &b, ' ');
        JVal out = v_buf(j, &b);
        out.markup = s.markup;
        return out;
    }
    if (!strcmp(name, "batch")) {
        SIG("linecount", "fill_with");
        bind(r, line, name, sig_, 1, a, p);
        int64_t cnt = want_int(r, p[0], "linecount", line);
        if (cnt <= 0) jfail(j, line, "unsupported: batch size %lld", (long long)cnt);
        JList *l = iter_list(r, v, line);
        JVal out = v_list(j, 0, L_GEN), cur = v_list(j, 0, L_LIST);
        for (uint32_t i = 0; i < l->n; i++) {
            if ((int64_t)cur.u.l->n == cnt) lpush(r, &out, cur), cur = v_list(j, 0, L_LIST);
            lpush(r, &cur, l->v[i]);
        }
        if (cur.u.l->n) {
            if (has(p[1]) && p[1].t != V_NONE)
                while ((int64_t)cur.u.l->n < cnt) lpush(r, &cur, p[1]);
            lpush(r, &out, cur);
        }
        return out;
    }
    if (!strcmp(name, "format")) { // do_format: soft_str(value) % (kwargs or args)
        if (a->npos && a->nkw) jfail(j, line, "FilterArgumentError: can't handle positional and keyword arguments at the same time");
        JVal fargs;
        if (a->nkw) {
            fargs = v_dict(j, V_DICT);
            for (int k = 0; k < a->nkw; k++) dict_set(j, fargs.u.d, v_cstr(a->kwn[k]), a->kwv[k]);
        } else {
            fargs = v_list(j, (uint32_t)a->npos, L_TUPLE);
            for (int k = 0; k < a->npos; k++) fargs.u.l->v[k] = a->pos[k];
        }
        JVal fs = str_of(r, v, line);
        if (fs.markup) jfail(j, line, "unsupported: format of a Markup string");
        return str_percent(r, fs, fargs, line);
    }
    if (!strcmp(name, "wordcount")) { // len(re.findall(r"\w+", str(v))): ASCII text only here
        static const char *const s0[] = {NULL};
        bind(r, line, name, s0, 0, a, p);
        JVal sv = str_of(r, v, line);
        int64_t words = 0;
        int in_word = 0;
        for (uint32_t i = 0; i < sv.n; i++) {
            unsigned char c = (unsigned char)sv.u.s[i];
            if (c >= 0x80) jfail(j, line, "unsupported: wordcount of non-ASCII text");
            int w = isalnum(c) || c == '_';
            words += w && !in_word, in_word = w;
        }
        return v_int(words);
    }
    if (!strcmp(name, "slice")) { // jinja2's do_slice: `slices` columns, the first len % slices one item longer
        SIG("slices", "fill_with");
        bind(r, line, name, sig_, 1, a, p);
        int64_t ns = want_int(r, p[0], "slices", line);
        if (ns <= 0 || ns > 1000000) jfail(j, line, "unsupported: slice count %lld", (long long)ns);
        JList *l = iter_list(r, v, line);
        int64_t len = l->n, per = len / ns, extra = len % ns, offset = 0;
        JVal out = v_list(j, 0, L_GEN);
        for (int64_t k = 0; k < ns; k++) {
            step(r, line);
            int64_t start = offset + k * per;
            if (k < extra) offset++;
            int64_t end = offset + (k + 1) * per;
            JVal col = v_list(j, 0, L_LIST);
            for (int64_t i = start; i < end; i++) lpush(r, &col, l->v[i]);
            if (has(p[1]) && p[1].t != V_NONE && k >= extra) lpush(r, &col, p[1]);
            lpush(r, &out, col);
        }
        return out;
    }
#undef SIG
    jfail(j, line, "unsupported filter '%s'", name);
}

// ---- calls: globals, methods, macros

// strftime_now(fmt): datetime.now().strftime(fmt) (GLM4V_JINJA_NOW fixes the time)
static JVal do_strftime(R *r, JVal fmt, int line) {
    J *j = &r->j;
    struct tm tm = {0};
    long usec = 0;
    const char *fixed = getenv(JINJA_NOW_ENV);
    if (fixed && *fixed) {
        int Y, M, D, h, m, s;
        if (sscanf(fixed, "%d-%d-%d %d:%d:%d", &Y, &M, &D, &h, &m, &s) != 6)
            jfail(j, line, "%s must be \"YYYY-MM-DD HH:MM:SS\"", JINJA_NOW_ENV);
        tm.tm_year = Y - 1900, tm.tm_mon = M - 1, tm.tm_mday = D, tm.tm_hour = h, tm.tm_min = m, tm.tm_sec = s;
        tm.tm_isdst = -1;
        time_t t = timegm(&tm); // normalizes and fills tm_wday / tm_yday
        gmtime_r(&t, &tm);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        usec = ts.tv_nsec / 1000;
    }
    // Python's datetime.strftime: %f = microseconds, %z / %Z empty for a naive datetime
    Buf f = {0};
    for (size_t i = 0; i < fmt.n; i++) {
        if (fmt.u.s[i] == '%' && i + 1 < fmt.n) {
            char c = fmt.u.s[i + 1];
            if (c == 'f') { buf_printf(j, &f, "%06ld", usec), i++; continue; }
            if (c == 'z' || c == 'Z') { i++; continue; }
            buf_putc(j, &f, '%'), buf_putc(j, &f, c), i++;
            continue;
        }
        buf_putc(j, &f, fmt.u.s[i]);
    }
    if (!f.n) return v_cstr("");
    size_t cap = f.n * 8 + 256;
    if (cap > (1u << 20)) jfail(j, line, "strftime format too long");
    char *out = aalloc(j, cap);
    size_t k = strftime(out, cap, f.p, &tm);
    return v_strn(out, k);
}

// call a global function or a bound method (str / dict / list methods, loop.cycle)
// pad f (a formatted value: sign / prefix in its first `sign` bytes) to width code points with fill, aligned by
// align (< > ^ =) as Python's format() does, onto b
static void fmt_pad(R *r, Buf *b, const char *f, size_t fn, size_t sign, int64_t width, const char *fill,
                    size_t filln, char align) {
    J *j = &r->j;
    int64_t n = (int64_t)u8_len(f, fn), pad = width > n ? width - n : 0, before = 0;
    if (align == '>') before = pad;
    else if (align == '^') before = pad / 2;
    else if (align == '=') buf_add(j, b, f, sign), f += sign, fn -= sign, before = pad;
    for (int64_t k = 0; k < before; k++) buf_add(j, b, fill, filln);
    buf_add(j, b, f, fn);
    for (int64_t k = before; k < pad; k++) buf_add(j, b, fill, filln);
}

// digits with a separator every `every` digits from the right (format's , and _ grouping) onto b
static void fmt_group(R *r, Buf *b, const char *d, size_t n, char sep, int every) {
    for (size_t i = 0; i < n; i++) {
        if (sep && i && (n - i) % (size_t)every == 0) buf_putc(&r->j, b, sep);
        buf_putc(&r->j, b, d[i]);
    }
}

// format(v, spec) for str.format: [[fill]align][sign][#][0][width][, or _][.precision][type] on str, int (types
// d b o x X and the float ones), float (e E f F g G %, or none without a precision); anything else only with an
// empty spec (its str())
static void format_value(R *r, Buf *b, JVal v, const char *sp, size_t sn, int line) {
    J *j = &r->j;
    if (!sn || (v.t != V_STR && v.t != V_INT && v.t != V_BOOL && v.t != V_FLOAT)) {
        if (sn) jfail(j, line, "TypeError: unsupported format string passed to %s.__format__", type_name(v));
        to_str(r, v, b, line);
        return;
    }
    size_t i = 0, filln = 1;
    const char *fill = " ";
    char align = 0, sign = '-', group = 0, type = 0;
    int alt = 0, zero = 0;
    int64_t width = -1, prec = -1;
    size_t cl = 1; // the first code point's bytes (a fill may be any character)
    while (cl < sn && ((unsigned char)sp[cl] & 0xC0) == 0x80) cl++;
    if (cl < sn && strchr("<>=^", sp[cl])) fill = sp, filln = cl, align = sp[cl], i = cl + 1;
    else if (strchr("<>=^", sp[0])) align = sp[0], i = 1;
    int fill_given = align && i > 1;
    if (i < sn && strchr("+- ", sp[i])) sign = sp[i++];
    if (i < sn && sp[i] == 'z') jfail(j, line, "unsupported: the z option in a format spec");
    if (i < sn && sp[i] == '#') alt = 1, i++;
    if (i < sn && sp[i] == '0') zero = 1, i++;
    if (i < sn && isdigit((unsigned char)sp[i]))
        for (width = 0; i < sn && isdigit((unsigned char)sp[i]); i++)
            if ((width = width * 10 + (sp[i] - '0')) > 100000) jfail(j, line, "unsupported: format width %lld", (long long)width);
    if (i < sn && (sp[i] == ',' || sp[i] == '_')) group = sp[i++];
    if (i < sn && sp[i] == '.') {
        if (++i >= sn || !isdigit((unsigned char)sp[i])) jfail(j, line, "ValueError: Format specifier missing precision");
        for (prec = 0; i < sn && isdigit((unsigned char)sp[i]); i++)
            if ((prec = prec * 10 + (sp[i] - '0')) > 300) jfail(j, line, "unsupported: format precision %lld", (long long)prec);
    }
    if (i < sn) type = sp[i++];
    if (i < sn) jfail(j, line, "ValueError: Invalid format specifier '%.*s' for object of type '%s'", (int)sn, sp, type_name(v));
    if (zero && !fill_given) fill = "0", filln = 1;
    if (v.t == V_STR) {
        if (type && type != 's') jfail(j, line, "ValueError: Unknown format code '%c' for object of type 'str'", type);
        if (sign != '-') jfail(j, line, "ValueError: Sign not allowed in string format specifier");
        if (alt) jfail(j, line, "ValueError: Alternate form (#) not allowed in string format specifier");
        if (group) jfail(j, line, "ValueError: Cannot specify '%c' with 's'.", group);
        if (align == '=') jfail(j, line, "ValueError: '=' alignment not allowed in string format specifier");
        size_t n = v.n;
        if (prec >= 0) { // the first prec characters
            size_t k = 0;
            for (int64_t c = 0; c < prec && k < v.n; c++) u8_next(v.u.s, v.n, &k);
            n = k;
        }
        fmt_pad(r, b, v.u.s, n, 0, width, fill, filln, align ? align : '<');
        return;
    }
    if (!align) align = zero ? '=' : '>';
    Buf f = {0};
    size_t signn = 0;
    if ((v.t == V_INT || v.t == V_BOOL) && (!type || strchr("dboxX", type))) {
        if (prec >= 0) jfail(j, line, "ValueError: Precision not allowed in integer format specifier");
        int64_t x = v.u.i;
        uint64_t ux = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
        if (x < 0) buf_putc(j, &f, '-');
        else if (sign != '-') buf_putc(j, &f, sign);
        if (alt && type && type != 'd') buf_putc(j, &f, '0'), buf_putc(j, &f, type == 'X' ? 'X' : type);
        signn = f.n;
        char d[80];
        size_t n = 0;
        int base = type == 'b' ? 2 : type == 'o' ? 8 : type == 'x' || type == 'X' ? 16 : 10;
        do d[n++] = "0123456789abcdef0123456789ABCDEF"[(ux % (uint64_t)base) + (type == 'X' ? 16 : 0)], ux /= (uint64_t)base;
        while (ux);
        for (size_t k = 0; k < n / 2; k++) { char t = d[k]; d[k] = d[n - 1 - k], d[n - 1 - k] = t; }
        if (group && group == ',' && base != 10) jfail(j, line, "ValueError: Cannot specify ',' with '%c'.", type);
        fmt_group(r, &f, d, n, group, base == 10 ? 3 : 4);
    } else if (is_num(v) && (!type || strchr("eEfFgG%", type))) {
        double x = num_f(v);
        if (!type && prec >= 0) jfail(j, line, "unsupported: a format precision without a type for a number");
        if (!type) { // no type, no precision: str(x), signs and padding applied
            Buf t = {0};
            to_str(r, v_float(x), &t, line);
            if (v.t != V_FLOAT) t.n = 0, buf_printf(j, &t, "%lld", (long long)v.u.i);
            if (group) jfail(j, line, "unsupported: grouping without a format type");
            if (t.p[0] != '-' && sign != '-') buf_putc(j, &f, sign);
            buf_add(j, &f, t.p, t.n);
            signn = f.n && strchr("+- ", f.p[0]) ? 1 : 0;
        } else {
            char spec[16], *q = spec, out[700]; // %.300f of 1.8e308: 310 + 301 bytes
            double y = type == '%' ? x * 100 : x;
            *q++ = '%';
            if (sign != '-') *q++ = sign;
            if (alt) *q++ = '#';
            snprintf(q, sizeof spec - 4, ".*%c", type == '%' ? 'f' : type);
            int nd = snprintf(out, sizeof out, spec, prec < 0 ? 6 : (int)prec, y);
            if (nd < 0 || nd >= (int)sizeof out) jfail(j, line, "unsupported: format of %g (too long)", x);
            signn = strchr("+- ", out[0]) ? 1 : 0;
            buf_add(j, &f, out, signn);
            size_t di = signn, de = di;
            while (de < (size_t)nd && isdigit((unsigned char)out[de])) de++;
            if (isfinite(y)) fmt_group(r, &f, out + di, de - di, group, 3);
            else buf_add(j, &f, out + di, de - di);
            buf_add(j, &f, out + de, (size_t)nd - de);
            if (type == '%') buf_putc(j, &f, '%');
        }
    } else jfail(j, line, "ValueError: Unknown format code '%c' for object of type '%s'", type, type_name(v));
    fmt_pad(r, b, f.p ? f.p : "", f.n, signn, width, fill, filln, align);
}

// str.format(*args, **kwargs) as the sandbox's formatter runs it: {} / {0} / {name}, then .attr / [key] lookups,
// !s / !r, and a format spec (format_value); {{ and }} are braces
static JVal str_format(R *r, JVal fmt, Args *a, int line) {
    J *j = &r->j;
    const char *s = fmt.u.s;
    size_t n = fmt.n;
    int autonum = -1; // -1 unknown, 1 automatic numbering, 0 manual
    int64_t next = 0;
    Buf b = {0};
    for (size_t i = 0; i < n; i++) {
        step(r, line);
        char c = s[i];
        if (c == '}') {
            if (i + 1 < n && s[i + 1] == '}') { buf_putc(j, &b, '}'), i++; continue; }
            jfail(j, line, "ValueError: Single '}' encountered in format string");
        }
        if (c != '{') { buf_putc(j, &b, c); continue; }
        if (i + 1 < n && s[i + 1] == '{') { buf_putc(j, &b, '{'), i++; continue; }
        size_t k = i + 1, e = k;
        while (e < n && s[e] != '}' && s[e] != '{') e++;
        if (e >= n) jfail(j, line, "ValueError: expected '}' before end of string");
        if (s[e] == '{') jfail(j, line, "unsupported: a nested {} field in a str.format spec");
        // field name: [arg_name](.attr | [key])*, then !conv, then :spec
        size_t fe = k;
        while (fe < e && s[fe] != '.' && s[fe] != '[' && s[fe] != '!' && s[fe] != ':') fe++;
        JVal v;
        if (fe == k || isdigit((unsigned char)s[k])) {
            int64_t idx;
            if (fe == k) {
                if (autonum == 0) jfail(j, line, "ValueError: cannot switch from manual field specification to automatic field numbering");
                autonum = 1, idx = next++;
            } else {
                // string.Formatter says this for both directions
                if (autonum == 1) jfail(j, line, "ValueError: cannot switch from manual field specification to automatic field numbering");
                autonum = 0, idx = 0;
                for (size_t q = k; q < fe; q++) {
                    if (!isdigit((unsigned char)s[q])) jfail(j, line, "unsupported: field name '%.*s' in str.format", (int)(fe - k), s + k);
                    if ((idx = idx * 10 + (s[q] - '0')) > 1000000) jfail(j, line, "IndexError: tuple index out of range");
                }
            }
            if (idx >= a->npos) jfail(j, line, "IndexError: tuple index out of range");
            v = a->pos[idx];
        } else {
            int kw = 0;
            while (kw < a->nkw && (strlen(a->kwn[kw]) != fe - k || memcmp(a->kwn[kw], s + k, fe - k))) kw++;
            if (kw == a->nkw) jfail(j, line, "KeyError: '%.*s'", (int)(fe - k), s + k);
            v = a->kwv[kw];
        }
        while (fe < e && (s[fe] == '.' || s[fe] == '[')) {
            size_t q = fe + 1, qe = q;
            if (s[fe] == '.') {
                while (qe < e && s[qe] != '.' && s[qe] != '[' && s[qe] != '!' && s[qe] != ':') qe++;
                if (qe == q) jfail(j, line, "ValueError: Empty attribute in format string");
                char *name = astrndup(j, s + q, qe - q);
                if (name[0] == '_') jfail(j, line, "SecurityError: access to attribute '%s' is unsafe", name);
                v = get_attr(r, v, name, line);
                fe = qe;
            } else {
                while (qe < e && s[qe] != ']') qe++;
                if (qe >= e) jfail(j, line, "ValueError: Missing ']' in format string");
                int digits = qe > q;
                for (size_t t = q; t < qe; t++) digits &= isdigit((unsigned char)s[t]) != 0;
                JVal key = v_strn(astrndup(j, s + q, qe - q), qe - q);
                if (digits) {
                    int64_t x = 0;
                    for (size_t t = q; t < qe && x < 1000000000; t++) x = x * 10 + (s[t] - '0');
                    key = v_int(x);
                }
                v = get_item(r, v, key, line);
                fe = qe + 1;
            }
        }
        if (fe < e && s[fe] == '!') {
            if (fe + 1 >= e || (fe + 2 < e && s[fe + 2] != ':')) jfail(j, line, "ValueError: expected ':' after conversion specifier");
            char conv = s[fe + 1];
            Buf t = {0};
            if (conv == 's') to_str(r, v, &t, line);
            else if (conv == 'r') repr(r, v, &t, line);
            else jfail(j, line, "unsupported: !%c conversion in str.format", conv);
            v = v_buf(j, &t);
            fe += 2;
        }
        if (fe < e && s[fe] != ':') jfail(j, line, "ValueError: expected ':' after conversion specifier");
        const char *spec = fe < e ? s + fe + 1 : "";
        size_t specn = fe < e ? e - fe - 1 : 0;
        format_value(r, &b, v, spec, specn, line);
        i = e;
    }
    return v_buf(j, &b);
}

static JVal call_builtin(R *r, JFunc *f, Args *a, int line) {
    J *j = &r->j;
    JVal p[4], self = f->self;
    switch (f->id) {
    case F_RANGE: {
        if (a->nkw) jfail(j, line, "TypeError: range() takes no keyword arguments");
        if (a->npos < 1 || a->npos > 3) jfail(j, line, "TypeError: range expected 1 to 3 arguments");
        int64_t start = 0, stop, st = 1;
        if (a->npos == 1) stop = want_int(r, a->pos[0], "range() argument", line);
        else {
            start = want_int(r, a->pos[0], "range() argument", line), stop = want_int(r, a->pos[1], "range() argument", line);
            if (a->npos == 3) st = want_int(r, a->pos[2], "range() argument", line);
        }
        if (st == 0) jfail(j, line, "ValueError: range() arg 3 must not be zero");
        int64_t n = 0;
        if (st > 0 && stop > start) n = (stop - start + st - 1) / st;
        if (st < 0 && start > stop) n = (start - stop + (-st) - 1) / (-st);
        if (n > J_MAX_RANGE) jfail(j, line, "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", J_MAX_RANGE);
        JVal l = v_list(j, (uint32_t)n, L_RANGE);
        for (int64_t i = 0; i < n; i++) l.u.l->v[i] = v_int(start + i * st);
        l.u.l->r0 = start, l.u.l->r1 = stop, l.u.l->rs = st;
        return l;
    }
    case F_DICT: case F_NAMESPACE: {
        JVal d = v_dict(j, f->id == F_DICT ? V_DICT : V_NS);
        if (a->npos > 1) jfail(j, line, "TypeError: %s expected at most 1 positional argument", f->name);
        if (a->npos == 1) {
            JVal src = a->pos[0];
            if (src.t == V_DICT)
                for (uint32_t i = 0; i < src.u.d->n; i++) dict_set(j, d.u.d, src.u.d->k[i], src.u.d->v[i]);
            else {
                JList *l = iter_list(r, src, line);
                for (uint32_t i = 0; i < l->n; i++) {
                    JVal e = l->v[i];
                    JList *pair = e.t == V_LIST ? iter_list(r, e, line) : NULL;
                    if (!pair || pair->n != 2) jfail(j, line, "ValueError: dictionary update sequence element has wrong length");
                    dict_set(j, d.u.d, pair->v[0], pair->v[1]);
                }
            }
        }
        for (int k = 0; k < a->nkw; k++) dict_set(j, d.u.d, v_cstr(a->kwn[k]), a->kwv[k]);
        if (f->id == F_NAMESPACE)
            for (uint32_t i = 0; i < d.u.d->n; i++)
                if (d.u.d->k[i].t == V_STR && d.u.d->k[i].n && d.u.d->k[i].u.s[0] == '_')
                    jfail(j, line, "SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace");
        return d;
    }
    case F_RAISE: {
        static const char *const sig[] = {"message", NULL};
        bind(r, line, "raise_exception", sig, 1, a, p);
        JVal m = str_of(r, p[0], line);
        jfail(j, line, "TemplateError: %.*s", (int)(m.n > 300 ? 300 : m.n), m.u.s);
    }
    case F_STRFTIME: {
        static const char *const sig[] = {"format", NULL};
        bind(r, line, "strftime_now", sig, 1, a, p);
        return do_strftime(r, want_str(r, p[0], "format", line), line);
    }
    case F_CYCLE: {
        if (!a->npos) jfail(j, line, "TypeError: no items for cycling given");
        return a->pos[self.u.loop->i % a->npos];
    }
    case F_CHANGED: { // loop.changed(*values): true when the values differ from the previous call's
        if (a->nkw) jfail(j, line, "TypeError: changed() got an unexpected keyword argument '%s'", a->kwn[0]);
        JVal t = v_list(j, (uint32_t)a->npos, L_TUPLE);
        for (int i = 0; i < a->npos; i++) t.u.l->v[i] = a->pos[i];
        JLoop *lp = self.u.loop;
        if (lp->changed.t != V_UNDEF && v_eq(lp->changed, t)) return v_bool(0);
        lp->changed = t;
        return v_bool(1);
    }
    case F_UNSUPPORTED_GLOBAL: jfail(j, line, "unsupported global function '%s'", f->name);
    case M_UNSAFE: jfail(j, line, "SecurityError: access to attribute '%s' of '%s' object is unsafe (immutable sandbox)", f->name, type_name(self));
    case M_UNSUPPORTED: jfail(j, line, "unsupported method '%s' of %s", f->name, type_name(self));
    case M_ITEMS: case M_KEYS: case M_VALUES: {
        static const char *const s0[] = {NULL};
        bind(r, line, f->name, s0, 0, a, p);
        JDict *d = self.u.d;
        JVal out = v_list(j, d->n, f->id == M_ITEMS ? L_ITEMS : f->id == M_KEYS ? L_KEYS : L_VALUES);
        for (uint32_t i = 0; i < d->n; i++) {
            if (f->id == M_ITEMS) {
                JVal t = v_list(j, 2, L_TUPLE);
                t.u.l->v[0] = d->k[i], t.u.l->v[1] = d->v[i];
                out.u.l->v[i] = t;
            } else out.u.l->v[i] = f->id == M_KEYS ? d->k[i] : d->v[i];
        }
        return out;
    }
    case M_GET: {
        if (a->nkw) jfail(j, line, "TypeError: get() takes no keyword arguments");
        if (a->npos < 1 || a->npos > 2) jfail(j, line, "TypeError: get expected 1 or 2 arguments");
        int64_t i = dict_find(self.u.d, a->pos[0]);
        return i >= 0 ? self.u.d->v[i] : a->npos == 2 ? a->pos[1] : v_none();
    }
    case M_LCOUNT: case M_LINDEX: {
        if (a->nkw || a->npos != 1) jfail(j, line, "unsupported: list.%s with these arguments", f->name);
        int64_t cnt = 0;
        for (uint32_t i = 0; i < self.u.l->n; i++)
            if (v_eq(self.u.l->v[i], a->pos[0])) {
                if (f->id == M_LINDEX) return v_int(i);
                cnt++;
            }
        if (f->id == M_LINDEX) jfail(j, line, "ValueError: item is not in list");
        return v_int(cnt);
    }
    default: break;
    }
    // str methods (positional arguments as Python accepts them)
    JVal s = self;
    if (s.markup && (f->id == M_JOIN || f->id == M_REPLACE || f->id == M_SPLIT || f->id == M_RSPLIT || f->id == M_FORMAT ||
                     ((f->id == M_STRIP || f->id == M_LSTRIP || f->id == M_RSTRIP) && a->npos)))
        jfail(j, line, "unsupported: str.%s of a Markup string (Markup escapes the arguments)", f->name);
    switch (f->id) {
    case M_STARTSWITH: case M_ENDSWITH: {
        if (a->nkw || a->npos < 1 || a->npos > 3) jfail(j, line, "TypeError: %s() takes 1 to 3 positional arguments", f->name);
        size_t n, *o = cp_offsets(r, s, &n);
        int64_t lo = 0, hi = (int64_t)n;
        if (a->npos >= 2) { // slice bounds as in s[start:end]
            JVal none = v_none();
            slice_indices(r, a->pos[1], a->npos == 3 ? a->pos[2] : none, none, (int64_t)n, &lo, &hi, line);
            if (hi < lo) hi = lo;
        }
        JVal sub = v_strn(s.u.s + o[lo], o[hi] - o[lo]);
        JVal pre = a->pos[0];
        JList *alts = NULL;
        if (pre.t == V_LIST && pre.u.l->kind == L_TUPLE) alts = pre.u.l;
        else if (pre.t != V_STR)
            jfail(j, line, "TypeError: %s first arg must be str or a tuple of str, not %s", f->name, type_name(pre));
        for (uint32_t k = 0; k < (alts ? alts->n : 1); k++) {
            JVal x = alts ? want_str(r, alts->v[k], "tuple item", line) : pre;
            if (x.n <= sub.n && !memcmp(f->id == M_STARTSWITH ? sub.u.s : sub.u.s + sub.n - x.n, x.u.s, x.n)) return v_bool(1);
        }
        return v_bool(0);
    }
    case M_STRIP: case M_LSTRIP: case M_RSTRIP: {
        if (a->nkw || a->npos > 1) jfail(j, line, "TypeError: %s() takes at most 1 argument", f->name);
        JVal ch = a->npos ? a->pos[0] : v_none();
        JVal out = str_strip(r, s, ch, f->id == M_STRIP ? 3 : f->id == M_LSTRIP ? 1 : 2, line);
        out.markup = s.markup;
        return out;
    }
    case M_SPLIT: case M_RSPLIT: {
        static const char *const sig[] = {"sep", "maxsplit", NULL};
        bind(r, line, f->name, sig, 0, a, p);
        int64_t ms = has(p[1]) ? want_int(r, p[1], "maxsplit", line) : -1;
        return str_split(r, s, has(p[0]) ? p[0] : v_none(), ms, f->id == M_RSPLIT, line);
    }
    case M_UPPER: case M_LOWER: case M_TITLE: case M_CAPITALIZE: {
        static const char *const s0[] = {NULL};
        bind(r, line, f->name, s0, 0, a, p);
        JVal out = str_case(r, s, f->id == M_UPPER ? CASE_UPPER : f->id == M_LOWER ? CASE_LOWER : f->id == M_TITLE ? CASE_TITLE_WORDS : CASE_CAPITALIZE, line);
        out.markup = s.markup;
        return out;
    }
    case M_REPLACE: {
        if (a->nkw || a->npos < 2 || a->npos > 3) jfail(j, line, "TypeError: replace() takes 2 or 3 arguments");
        int64_t cnt = a->npos == 3 ? want_int(r, a->pos[2], "count", line) : -1;
        return str_replace(r, s, want_str(r, a->pos[0], "old", line), want_str(r, a->pos[1], "new", line), cnt, line);
    }
    case M_FIND: case M_RFIND: case M_INDEX: case M_COUNT: {
        if (a->nkw || a->npos < 1 || a->npos > 3) jfail(j, line, "TypeError: %s() takes 1 to 3 arguments", f->name);
        JVal sub = want_str(r, a->pos[0], "substring", line);
        size_t n, *o = cp_offsets(r, s, &n);
        int64_t lo = 0, hi = (int64_t)n;
        if (a->npos >= 2) {
            JVal none = v_none();
            slice_indices(r, a->pos[1], a->npos == 3 ? a->pos[2] : none, none, (int64_t)n, &lo, &hi, line);
        }
        if (hi < lo) return v_int(f->id == M_COUNT ? 0 : -1);
        JVal hay = v_strn(s.u.s + o[lo], o[hi] - o[lo]);
        if (f->id == M_COUNT) {
            if (!sub.n) return v_int(hi - lo + 1);
            int64_t cnt = 0;
            for (size_t i = 0;;) {
                int64_t x = str_find(hay.u.s, hay.n, sub.u.s, sub.n, i);
                if (x < 0) break;
                cnt++, i = (size_t)x + sub.n;
            }
            return v_int(cnt);
        }
        int64_t pos = -1;
        if (f->id == M_RFIND) {
            for (size_t k = hay.n >= sub.n ? hay.n - sub.n + 1 : 0; k-- > 0;)
                if (!memcmp(hay.u.s + k, sub.u.s, sub.n)) { pos = (int64_t)k; break; }
        } else pos = str_find(hay.u.s, hay.n, sub.u.s, sub.n, 0);
        if (pos < 0) {
            if (f->id == M_INDEX) jfail(j, line, "ValueError: substring not found");
            return v_int(-1);
        }
        return v_int(lo + cp_index(hay, (size_t)pos));
    }
    case M_JOIN: {
        if (a->nkw || a->npos != 1) jfail(j, line, "TypeError: join() takes exactly one argument");
        JList *l = iter_list(r, a->pos[0], line);
        Buf b = {0};
        for (uint32_t i = 0; i < l->n; i++) {
            if (i) buf_add(j, &b, s.u.s, s.n);
            JVal x = l->v[i];
            if (x.t != V_STR) jfail(j, line, "TypeError: sequence item %u: expected str instance, %s found", i, type_name(x));
            buf_add(j, &b, x.u.s, x.n);
        }
        return v_buf(j, &b);
    }
    case M_FORMAT: return str_format(r, s, a, line);
    case M_SPLITLINES: {
        if (a->npos || a->nkw) jfail(j, line, "unsupported: splitlines(keepends)");
        return str_splitlines(r, s);
    }
    case M_ISDIGIT: case M_ISALPHA: case M_ISSPACE: case M_ISUPPER: case M_ISLOWER: case M_ISALNUM: {
        static const char *const s0[] = {NULL};
        bind(r, line, f->name, s0, 0, a, p);
        if (!s.n) return v_bool(0);
        if (f->id == M_ISUPPER || f->id == M_ISLOWER) {
            Args none = {0};
            return v_bool(test_apply(r, f->id == M_ISUPPER ? "upper" : "lower", s, &none, line));
        }
        for (size_t i = 0; i < s.n;) {
            uint32_t c = u8_next(s.u.s, s.n, &i);
            if (c >= 0x80 && f->id != M_ISSPACE) jfail(j, line, "unsupported: str.%s of non-ASCII text", f->name);
            int ok = f->id == M_ISDIGIT ? isdigit((int)c) : f->id == M_ISALPHA ? isalpha((int)c)
                   : f->id == M_ISALNUM ? isalnum((int)c) : py_isspace(c);
            if (!ok) return v_bool(0);
        }
        return v_bool(1);
    }
    }
    jfail(j, line, "unsupported call of '%s'", f->name);
}

static void exec_node(R *r, Node *n, int *ctl);
static void exec_for(R *r, Node *n, JVal it, Frame *outer, int rdepth0);
static JVal call_loop(R *r, JLoop *lp, Args *a, int line);

// call a macro: bind arguments (missing ones are Undefined or their defaults), render the body to a string
static JVal call_macro(R *r, JMacro *m, Args *a, int line) {
    J *j = &r->j;
    Node *d = m->def;
    if (++r->depth > J_MAX_DEPTH) jfail(j, line, "macro recursion too deep");
    Frame *f = aalloc(j, sizeof *f);
    f->parent = m->closure;
    int np = d->nnames, ndef = d->nlist2;
    if (a->npos > np && !d->catch_varargs)
        jfail(j, line, "TypeError: macro '%s' takes not more than %d argument(s)", d->name, np);
    uint8_t *set = aalloc(j, (size_t)np + 1);
    for (int i = 0; i < a->npos && i < np; i++) dict_set(j, &f->vars, v_cstr(d->names[i]), a->pos[i]), set[i] = 1;
    JVal kw = v_dict(j, V_DICT);
    JVal caller = v_undef("No caller defined");
    for (int k = 0; k < a->nkw; k++) {
        int i = 0;
        while (i < np && strcmp(d->names[i], a->kwn[k])) i++;
        if (i == np && d->catch_caller && !strcmp(a->kwn[k], "caller")) { // jinja2 pops caller= first
            caller = a->kwv[k];
            continue;
        }
        if (i == np) {
            if (!d->catch_kwargs) jfail(j, line, "TypeError: macro '%s' takes no keyword argument '%s'", d->name, a->kwn[k]);
            dict_set(j, kw.u.d, v_cstr(a->kwn[k]), a->kwv[k]);
            continue;
        }
        if (set[i]) jfail(j, line, "TypeError: macro '%s' got multiple values for argument '%s'", d->name, a->kwn[k]);
        dict_set(j, &f->vars, v_cstr(d->names[i]), a->kwv[k]), set[i] = 1;
    }
    for (int i = 0; i < np; i++) {
        if (set[i]) continue;
        int di = i - (np - ndef);
        JVal v;
        if (di >= 0) {
            Frame *saved = r->top;
            (void)saved;
            // defaults are evaluated in the macro's scope (they may read earlier parameters)
            Frame *cur_top = r->top;
            r->top = f;
            v = eval(r, d->list2[di]);
            r->top = cur_top;
        } else {
            char *hint = aalloc(j, strlen(d->names[i]) + 40);
            sprintf(hint, "parameter '%s' was not provided", d->names[i]);
            v = v_undef(hint);
        }
        dict_set(j, &f->vars, v_cstr(d->names[i]), v);
    }
    if (d->catch_varargs) {
        int extra = a->npos > np ? a->npos - np : 0;
        JVal t = v_list(j, (uint32_t)extra, L_TUPLE);
        for (int i = 0; i < extra; i++) t.u.l->v[i] = a->pos[np + i];
        dict_set(j, &f->vars, v_cstr("varargs"), t);
    }
    if (d->catch_kwargs) dict_set(j, &f->vars, v_cstr("kwargs"), kw);
    if (d->catch_caller) {
        int i = 0;
        while (i < np && strcmp(d->names[i], "caller")) i++;
        if (i == np) dict_set(j, &f->vars, v_cstr("caller"), caller);
    }
    Buf out = {0}, *saved_out = r->out;
    Frame *saved_top = r->top;
    int saved_loop = r->loop_depth;
    r->out = &out, r->top = f, r->loop_depth = 0;
    int ctl = 0;
    exec_body(r, d->list, d->nlist, &ctl);
    r->out = saved_out, r->top = saved_top, r->loop_depth = saved_loop;
    r->depth--;
    return v_buf(j, &out);
}

// call whatever fn is (macro or built-in)
static JVal call_value(R *r, JVal fn, Args *a, int line) {
    if (fn.t == V_MACRO) return call_macro(r, fn.u.m, a, line);
    if (fn.t == V_LOOP) return call_loop(r, fn.u.loop, a, line);
    if (fn.t == V_FUNC) return call_builtin(r, fn.u.fn, a, line);
    if (fn.t == V_UNDEF) undef_fail(r, fn, line);
    jfail(&r->j, line, "TypeError: '%s' object is not callable", type_name(fn));
}

// ---- evaluation

static const char *const global_names[] = {"range", "dict", "namespace", "raise_exception", "strftime_now",
                                           "lipsum", "cycler", "joiner", NULL};

// a name: the scopes inside out, then the context, then the globals; else Undefined
// loop(items) in a recursive for loop: the loop's body for items, one level deeper, rendered to a string
static JVal call_loop(R *r, JLoop *lp, Args *a, int line) {
    J *j = &r->j;
    if (!lp->node->op) jfail(j, line, "TypeError: The loop must have the 'recursive' marker to be called recursively.");
    if (a->npos != 1 || a->nkw) jfail(j, line, "TypeError: loop() takes exactly one argument (the items)");
    if (++r->depth > J_MAX_DEPTH) jfail(j, line, "recursive loop too deep");
    Buf out = {0}, *saved_out = r->out;
    Frame *saved_top = r->top;
    r->out = &out;
    exec_for(r, lp->node, a->pos[0], lp->outer, lp->rdepth0 + 1);
    r->out = saved_out, r->top = saved_top;
    r->depth--;
    return v_buf(j, &out);
}

static JVal lookup(R *r, const char *name, int line) {
    size_t n = strlen(name);
    for (Frame *f = r->top; f; f = f->parent) {
        int64_t i = dict_find_s(&f->vars, name, n);
        if (i >= 0) return f->vars.v[i];
    }
    int64_t i = dict_find_s(r->ctx, name, n);
    if (i >= 0) return r->ctx->v[i];
    int g = list_idx(global_names, name);
    if (g >= 0) {
        static const int ids[] = {F_RANGE, F_DICT, F_NAMESPACE, F_RAISE, F_STRFTIME, F_UNSUPPORTED_GLOBAL,
                                  F_UNSUPPORTED_GLOBAL, F_UNSUPPORTED_GLOBAL};
        return method(r, v_none(), ids[g], global_names[g]);
    }
    char *hint = aalloc(&r->j, n + 32);
    sprintf(hint, "'%s' is undefined", name);
    (void)line;
    return v_undef(hint);
}

// evaluate the arguments of a call / filter / test node
static void eval_args(R *r, Node *n, Args *a) {
    a->npos = n->nlist, a->nkw = n->nlist2;
    a->pos = n->nlist ? aalloc(&r->j, sizeof(JVal) * (size_t)n->nlist) : NULL;
    a->kwv = n->nlist2 ? aalloc(&r->j, sizeof(JVal) * (size_t)n->nlist2) : NULL;
    a->kwn = n->names;
    for (int i = 0; i < n->nlist; i++) a->pos[i] = eval(r, n->list[i]);
    for (int i = 0; i < n->nlist2; i++) a->kwv[i] = eval(r, n->list2[i]);
}

// evaluate an expression
static JVal eval(R *r, Node *n) {
    J *j = &r->j;
    step(r, n->line);
    if (++r->depth > J_MAX_DEPTH) jfail(j, n->line, "evaluation nested too deeply");
    JVal out;
    switch (n->kind) {
    case N_CONST: out = n->v; break;
    case N_CAPTURE: out = r->capture; break;
    case N_NAME: out = lookup(r, n->name, n->line); break;
    case N_GETATTR: out = get_attr(r, eval(r, n->a), n->name, n->line); break;
    case N_GETITEM: {
        JVal o = eval(r, n->a), k = eval(r, n->b);
        out = get_item(r, o, k, n->line);
        break;
    }
    case N_SLICE: {
        JVal o = eval(r, n->a), none = v_none();
        JVal a = n->b ? eval(r, n->b) : none, b = n->c ? eval(r, n->c) : none, c = n->list[0] ? eval(r, n->list[0]) : none;
        out = do_slice(r, o, a, b, c, n->line);
        break;
    }
    case N_CALL: {
        JVal fn = eval(r, n->a);
        Args a;
        eval_args(r, n, &a);
        out = call_value(r, fn, &a, n->line);
        break;
    }
    case N_FILTER: {
        if (n->unknown) jfail(j, n->line, "no filter named '%s'", n->name);
        JVal v = eval(r, n->a);
        Args a;
        eval_args(r, n, &a);
        out = filter_apply(r, n->name, v, &a, n->line);
        break;
    }
    case N_TEST: {
        if (n->unknown) jfail(j, n->line, "no test named '%s'", n->name);
        JVal v = eval(r, n->a);
        Args a;
        eval_args(r, n, &a);
        out = v_bool(test_apply(r, n->name, v, &a, n->line));
        break;
    }
    case N_NEG: case N_POS: {
        JVal v = eval(r, n->a);
        no_undef(r, v, n->line);
        if (v.t == V_FLOAT) out = v_float(n->kind == N_NEG ? -v.u.f : v.u.f);
        else if (v.t == V_INT || v.t == V_BOOL) {
            if (n->kind == N_NEG && v.u.i == INT64_MIN) jfail(j, n->line, "unsupported: integer beyond 64 bits");
            out = v_int(n->kind == N_NEG ? -v.u.i : v.u.i);
        } else jfail(j, n->line, "TypeError: bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+', type_name(v));
        break;
    }
    case N_NOT: out = v_bool(!truthy(eval(r, n->a))); break;
    case N_AND: {
        JVal a = eval(r, n->a);
        out = truthy(a) ? eval(r, n->b) : a;
        break;
    }
    case N_OR: {
        JVal a = eval(r, n->a);
        out = truthy(a) ? a : eval(r, n->b);
        break;
    }
    case N_BINOP: {
        JVal a = eval(r, n->a), b = eval(r, n->b);
        out = arith(r, n->op, a, b, n->line);
        break;
    }
    case N_CONCAT: {
        Buf b = {0};
        for (int i = 0; i < n->nlist; i++) to_str(r, eval(r, n->list[i]), &b, n->line);
        out = v_buf(j, &b);
        break;
    }
    case N_COMPARE: {
        JVal left = eval(r, n->a);
        out = v_bool(1);
        for (int i = 0; i < n->nlist; i++) {
            JVal right = eval(r, n->list[i]);
            int ok;
            switch (n->ops[i]) {
            case C_EQ: ok = v_eq(left, right); break;
            case C_NE: ok = !v_eq(left, right); break;
            case C_LT: ok = v_cmp(r, left, right, n->line) < 0; break;
            case C_LE: ok = v_cmp(r, left, right, n->line) <= 0; break;
            case C_GT: ok = v_cmp(r, left, right, n->line) > 0; break;
            case C_GE: ok = v_cmp(r, left, right, n->line) >= 0; break;
            case C_IN: ok = v_in(r, left, right, n->line); break;
            default: ok = !v_in(r, left, right, n->line); break;
            }
            if (!ok) { out = v_bool(0); break; }
            left = right;
        }
        break;
    }
    case N_COND:
        if (truthy(eval(r, n->b))) out = eval(r, n->a);
        else if (n->c) out = eval(r, n->c);
        else out = v_undef("the inline if-expression evaluated to false and no else section was defined.");
        break;
    case N_LIST: case N_TUPLE: {
        out = v_list(j, (uint32_t)n->nlist, n->kind == N_LIST ? L_LIST : L_TUPLE);
        for (int i = 0; i < n->nlist; i++) out.u.l->v[i] = eval(r, n->list[i]);
        break;
    }
    case N_DICT: {
        out = v_dict(j, V_DICT);
        for (int i = 0; i < n->nlist; i++) {
            JVal k = eval(r, n->list[i]), v = eval(r, n->list2[i]);
            if (k.t == V_DICT || k.t == V_NS || (k.t == V_LIST && k.u.l->kind != L_TUPLE) || k.t == V_UNDEF)
                jfail(j, n->line, "TypeError: unhashable type: '%s'", type_name(k));
            dict_set(j, out.u.d, k, v);
        }
        break;
    }
    default: jfail(j, n->line, "internal: bad expression node");
    }
    r->depth--;
    return out;
}

// ---- statements

// write {{ v }}
static void emit(R *r, JVal v, int line) {
    if (v.t == V_STR) buf_add(&r->j, r->out, v.u.s, v.n);
    else to_str(r, v, r->out, line);
}

// set a variable in the current scope
static void assign(R *r, const char *name, JVal v) { dict_set(&r->j, &r->top->vars, v_cstr(name), v); }

// unpack v into names (for k, v in ... / set a, b = ...)
static void unpack(R *r, const char *const *names, int nn, JVal v, int line) {
    JList *l = iter_list(r, v, line);
    if ((int)l->n != nn)
        jfail(&r->j, line, "ValueError: %s values to unpack (expected %d, got %u)", (int)l->n > nn ? "too many" : "not enough", nn, l->n);
    for (int i = 0; i < nn; i++) assign(r, names[i], l->v[i]);
}

// a for loop: filtered items, a fresh scope per iteration, loop.*, break / continue, else
static void exec_for(R *r, Node *n, JVal it, Frame *outer, int rdepth0) {
    J *j = &r->j;
    JList *src = iter_list(r, it, n->line);
    JList *items = src;
    if (n->b) { // {% for x in xs if cond %}: the filter sees the loop target, not `loop`
        JVal kept = v_list(j, 0, L_LIST);
        Frame *f = aalloc(j, sizeof *f);
        f->parent = outer;
        for (uint32_t i = 0; i < src->n; i++) {
            f->vars.n = 0;
            r->top = f;
            if (!n->unpack) assign(r, n->names[0], src->v[i]);
            else unpack(r, n->names, n->nnames, src->v[i], n->line);
            int keep = truthy(eval(r, n->b));
            r->top = outer;
            if (keep) lpush(r, &kept, src->v[i]);
        }
        items = kept.u.l;
    }
    if (!items->n) {
        int ctl = 0;
        exec_body(r, n->list2, n->nlist2, &ctl); // {% else %}
        return;
    }
    JLoop *lp = aalloc(j, sizeof *lp);
    lp->items = items, lp->depth0 = r->loop_depth, lp->changed = v_undef(NULL);
    lp->node = n, lp->outer = outer, lp->rdepth0 = rdepth0;
    JVal loopv = {.t = V_LOOP};
    loopv.u.loop = lp;
    r->loop_depth++;
    Frame *f = aalloc(j, sizeof *f); // one scope per iteration (emptied each time: nothing carries over, as in jinja2)
    f->parent = outer;
    for (uint32_t i = 0; i < items->n; i++) {
        step(r, n->line);
        lp->i = i;
        f->vars.n = 0;
        r->top = f;
        assign(r, "loop", loopv);
        if (!n->unpack) assign(r, n->names[0], items->v[i]);
        else unpack(r, n->names, n->nnames, items->v[i], n->line);
        int ctl = 0;
        exec_body(r, n->list, n->nlist, &ctl);
        r->top = outer;
        if (ctl == 1) break;
    }
    r->loop_depth--;
}

// ctl: set to 1 by break, 2 by continue (stops the enclosing body)
static void exec_node(R *r, Node *n, int *ctl) {
    J *j = &r->j;
    step(r, n->line);
    switch (n->kind) {
    case S_TEXT: buf_add(j, r->out, n->v.u.s, n->v.n); break;
    case S_EMIT: emit(r, eval(r, n->a), n->line); break;
    case S_BODY: exec_body(r, n->list, n->nlist, ctl); break;
    case S_IF:
        if (truthy(eval(r, n->a))) exec_body(r, n->list, n->nlist, ctl);
        else exec_body(r, n->list2, n->nlist2, ctl);
        break;
    case S_FOR:
        if (++r->depth > J_MAX_DEPTH) jfail(j, n->line, "loops nested too deeply");
        exec_for(r, n, eval(r, n->a), r->top, 0);
        r->depth--;
        break;
    case S_SET: {
        JVal v = eval(r, n->a);
        if (n->op) unpack(r, n->names, n->nnames, v, n->line);
        else assign(r, n->names[0], v);
        break;
    }
    case S_SET_NS: {
        JVal ns = lookup(r, n->name, n->line);
        if (ns.t != V_NS) jfail(j, n->line, "TemplateRuntimeError: cannot assign attribute on non-namespace object");
        if (n->name2[0] == '_')
            jfail(j, n->line, "SecurityError: Chat templates cannot store underscore-prefixed attributes on a namespace");
        JVal v = eval(r, n->a);
        dict_set(j, ns.u.d, v_cstr(n->name2), v);
        break;
    }
    case S_SET_BLOCK:
    case S_FILTER_BLOCK: {
        JVal v = exec_captured(r, n, ctl);
        if (*ctl) break; // a break / continue inside: jinja2 leaves the block before it assigns / writes
        if (n->kind == S_SET_BLOCK) assign(r, n->name, v);
        else emit(r, v, n->line);
        break;
    }
    case S_MACRO: {
        JMacro *m = aalloc(j, sizeof *m);
        m->def = n, m->closure = r->top;
        JVal v = {.t = V_MACRO};
        v.u.m = m;
        assign(r, n->name, v);
        break;
    }
    case S_CALL_BLOCK: {
        JMacro *m = aalloc(j, sizeof *m);
        m->def = n->b, m->closure = r->top;
        JVal cv = {.t = V_MACRO};
        cv.u.m = m;
        Node *c = n->a;
        JVal fn = eval(r, c->a);
        Args a;
        eval_args(r, c, &a);
        const char **kwn = aalloc(j, sizeof(char *) * ((size_t)a.nkw + 1));
        JVal *kwv = aalloc(j, sizeof(JVal) * ((size_t)a.nkw + 1));
        for (int i = 0; i < a.nkw; i++) kwn[i] = a.kwn[i], kwv[i] = a.kwv[i];
        kwn[a.nkw] = "caller", kwv[a.nkw] = cv;
        a.kwn = kwn, a.kwv = kwv, a.nkw++;
        emit(r, call_value(r, fn, &a, n->line), n->line);
        break;
    }
    case S_WITH: {
        Frame *outer = r->top, *f = aalloc(j, sizeof *f);
        f->parent = outer;
        for (int i = 0; i < n->nlist2; i++) {
            Node *st = n->list2[i];
            JVal v = eval(r, st->a); // in the enclosing scope
            r->top = f;
            if (st->op) unpack(r, st->names, st->nnames, v, st->line);
            else assign(r, st->names[0], v);
            r->top = outer;
        }
        r->top = f;
        exec_body(r, n->list, n->nlist, ctl);
        r->top = outer;
        break;
    }
    case S_BREAK: *ctl = 1; break;
    case S_CONTINUE: *ctl = 2; break;
    default: jfail(j, n->line, "internal: bad statement node");
    }
}

// the body of a {% set x %} / {% filter %} block run in a scope of its own (its sets stay inside, as in jinja2),
// its output captured and passed through the block's filters (n->a, if any)
static JVal exec_captured(R *r, Node *n, int *ctl) {
    J *j = &r->j;
    Buf b = {0}, *saved = r->out;
    Frame *outer = r->top, *f = aalloc(j, sizeof *f);
    f->parent = outer;
    r->out = &b, r->top = f;
    int c = 0;
    exec_body(r, n->list, n->nlist, &c);
    r->out = saved, r->top = outer;
    JVal v = v_buf(j, &b);
    if (c) { *ctl = c; return v; } // cut short by break / continue: the caller drops it
    if (!n->a) return v;
    JVal saved_capture = r->capture;
    r->capture = v;
    v = eval(r, n->a);
    r->capture = saved_capture;
    return v;
}

// run statements until break / continue
static void exec_body(R *r, Node **body, int n, int *ctl) {
    for (int i = 0; i < n && !*ctl; i++) exec_node(r, body[i], ctl);
}

// ------------------------------------------------------------------------------------------------ API

// copy an error message out
static void set_err(char *err, size_t errcap, const char *msg) {
    if (err && errcap) snprintf(err, errcap, "%s", msg);
}

// public: lex + parse a template into its arena (newlines normalized, one trailing newline dropped)
JinjaTemplate *jinja_parse(const char *src, size_t len, char *err, size_t errcap) {
    JinjaTemplate *volatile t = calloc(1, sizeof *t);
    if (!t) { set_err(err, errcap, "jinja: out of memory"); return NULL; }
    J *j = calloc(1, sizeof *j);
    if (!j) { free(t); set_err(err, errcap, "jinja: out of memory"); return NULL; }
    j->ar = &t->ar;
    if (setjmp(j->jb)) {
        set_err(err, errcap, j->msg);
        arena_free(&t->ar);
        free(t), free(j);
        return NULL;
    }
    if (!src && len) jfail(j, 0, "no template");
    if (len > J_MAX_TEMPLATE) jfail(j, 0, "template larger than %u MB", J_MAX_TEMPLATE >> 20);
    // newlines normalized to \n, one trailing newline dropped (keep_trailing_newline=False)
    char *s = aalloc(j, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    if (memchr(s, 0, n)) jfail(j, 0, "template contains a NUL byte");
    Lexer L = {.j = j, .src = s, .n = n};
    lex_all(&L);
    Parser p = {.j = j, .t = L.toks};
    NVec body = {0};
    parse_body(&p, NULL, &body);
    for (int i = 0; i < p.nunknown; i++)
        if (!p.unknown[i]->soft)
            jfail(j, p.unknown[i]->line, "no %s named '%s'", p.unknown[i]->kind == N_FILTER ? "filter" : "test",
                  p.unknown[i]->name);
    t->root = body_node(&p, 1, &body);
    free(j);
    return t;
}

// render with the context already converted (ctx built inside r's arena by the caller through make)
typedef JVal (*CtxMaker)(J *j, const void *arg);

// render with the context that make builds in the render's arena; the output copied out with malloc
static char *render_with(const JinjaTemplate *t, CtxMaker make, const void *arg, size_t *out_len, char *err,
                         size_t errcap) {
    if (out_len) *out_len = 0;
    if (!t) { set_err(err, errcap, "jinja: no template"); return NULL; }
    R *r = calloc(1, sizeof *r);
    Arena *ar = calloc(1, sizeof *ar);
    if (!r || !ar) {
        free(r), free(ar);
        set_err(err, errcap, "jinja: out of memory");
        return NULL;
    }
    r->j.ar = ar;
    if (setjmp(r->j.jb)) {
        set_err(err, errcap, r->j.msg);
        arena_free(ar);
        free(ar), free(r);
        return NULL;
    }
    JVal ctx = make(&r->j, arg);
    if (ctx.t != V_DICT) jfail(&r->j, 0, "the context must be a JSON object");
    r->ctx = ctx.u.d;
    r->top = aalloc(&r->j, sizeof(Frame));
    Buf out = {0};
    r->out = &out;
    int ctl = 0;
    exec_body(r, t->root->list, t->root->nlist, &ctl);
    char *res = malloc(out.n + 1);
    if (!res) jfail(&r->j, 0, "out of memory");
    if (out.n) memcpy(res, out.p, out.n);
    res[out.n] = 0;
    if (out_len) *out_len = out.n;
    arena_free(ar);
    free(ar), free(r);
    return res;
}

// the context from a cJSON tree / from JSON text
static JVal make_from_cjson(J *j, const void *arg) {
    const cJSON *c = arg;
    if (!c) return v_dict(j, V_DICT);
    return from_cjson(j, c, 0);
}

typedef struct {
    const char *s; // JSON text
    size_t n;      // its length
} JsonText;

static JVal make_from_json(J *j, const void *arg) {
    const JsonText *t = arg;
    JIn x = {j, t->s ? t->s : "", t->s ? t->n : 0, 0, 0};
    JVal v = jin_value(&x);
    jin_ws(&x);
    if (x.i != x.n) jin_fail(&x, "trailing characters");
    return v;
}

// public entry points (jinja.h)
char *jinja_render(const JinjaTemplate *t, const cJSON *ctx, size_t *out_len, char *err, size_t errcap) {
    return render_with(t, make_from_cjson, ctx, out_len, err, errcap);
}

char *jinja_render_json(const JinjaTemplate *t, const char *json, size_t json_len, size_t *out_len, char *err,
                        size_t errcap) {
    JsonText jt = {json, json_len};
    return render_with(t, make_from_json, &jt, out_len, err, errcap);
}

void jinja_free(JinjaTemplate *t) {
    if (!t) return;
    arena_free(&t->ar);
    free(t);
}
