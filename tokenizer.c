// SPDX-License-Identifier: MIT
// tokenizer.c - HF `tokenizers` byte-level BPE read from tokenizer.json (AddedVocabulary, Split/ByteLevel
// pre-tokenizers, BPE model, ByteLevel decoder) and a streaming decoder.
// Mirrors tokenizers/src/tokenizer/{added_vocabulary,pre_tokenizer,normalizer}.rs, models/bpe/{model,word}.rs,
// pre_tokenizers/{split,byte_level,sequence}.rs, decoders ByteLevel.
#include "tokenizer.h"
#include "prompt.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_FILE (1u << 30)   // tokenizer.json size limit (real GLM files are ~7 MB)
#define TOK_MAX_ID ((1 << 22) - 1) // largest token id accepted (GLM: 151364)

// ----------------------------------------------------------------------------
// small containers

// growable byte buffer
typedef struct {
    char *p;    // [cap] bytes, NUL-terminated after buf_nul
    size_t n;   // bytes used
    size_t cap; //
} Buf;

// make room for k more bytes
static void buf_reserve(Buf *b, size_t k) {
    if (b->n + k + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + k + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) glm_die(EXIT_INPUT, "out of memory");
    b->p = p;
    b->cap = cap;
}
static void buf_put(Buf *b, const void *s, size_t k) {
    buf_reserve(b, k);
    if (k) memcpy(b->p + b->n, s, k);
    b->n += k;
    b->p[b->n] = 0;
}
static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

// growable int array
typedef struct {
    int *p;     // [cap]
    size_t n;   //
    size_t cap; //
} IntVec;

static void iv_push(IntVec *v, int x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        int *p = realloc(v->p, v->cap * sizeof *p);
        if (!p) glm_die(EXIT_INPUT, "out of memory");
        v->p = p;
    }
    v->p[v->n++] = x;
}

// 64-bit FNV-1a folded to 32 bits (keys are short token strings)
static uint32_t hash_bytes(const void *k, size_t n) {
    const uint8_t *p = k;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

// splitmix64 finaliser for integer keys
static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// open-addressing map: byte string -> int64; keys are views into memory that outlives the map
typedef struct {
    const char *k; // key bytes (not owned)
    uint32_t len;  // key length
    uint32_t hash; //
    int64_t val;   //
    int used;      //
} SSlot;
typedef struct {
    SSlot *slots; // [cap], cap a power of two
    size_t cap;   //
    size_t n;     // used slots
} SMap;

static void smap_init(SMap *m, size_t expect) {
    size_t cap = 16;
    while (cap < expect * 2) cap *= 2;
    m->slots = xcalloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->n = 0;
}
static void smap_free(SMap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}
static SSlot *smap_slot(const SMap *m, const char *k, size_t len, uint32_t h) {
    size_t i = h & (m->cap - 1);
    for (;;) {
        SSlot *s = &m->slots[i];
        if (!s->used || (s->hash == h && s->len == len && memcmp(s->k, k, len) == 0)) return s;
        i = (i + 1) & (m->cap - 1);
    }
}
// pointer to the value of key k, or NULL
static int64_t *smap_get(const SMap *m, const char *k, size_t len) {
    if (!m->slots) return NULL;
    SSlot *s = smap_slot(m, k, len, hash_bytes(k, len));
    return s->used ? &s->val : NULL;
}
// insert or overwrite (serde/HashMap semantics: the last value wins)
static void smap_put(SMap *m, const char *k, size_t len, int64_t val) {
    if ((m->n + 1) * 10 > m->cap * 7) {
        SMap g;
        smap_init(&g, m->cap);
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].used) *smap_slot(&g, m->slots[i].k, m->slots[i].len, m->slots[i].hash) = m->slots[i];
        g.n = m->n;
        free(m->slots);
        *m = g;
    }
    uint32_t h = hash_bytes(k, len);
    SSlot *s = smap_slot(m, k, len, h);
    if (!s->used) {
        s->used = 1;
        s->k = k;
        s->len = (uint32_t)len;
        s->hash = h;
        m->n++;
    }
    s->val = val;
}

// open-addressing map: uint64 key -> two int32 values (BPE merges: (left id, right id) -> (rank, new id))
typedef struct {
    uint64_t key; // UINT64_MAX: empty
    int32_t a, b; //
} PSlot;
typedef struct {
    PSlot *slots; // [cap]
    size_t cap;   //
    size_t n;     //
} PMap;

static void pmap_init(PMap *m, size_t expect) {
    size_t cap = 16;
    while (cap < expect * 2) cap *= 2;
    m->slots = xmalloc(cap * sizeof *m->slots);
    memset(m->slots, 0xff, cap * sizeof *m->slots);
    m->cap = cap;
    m->n = 0;
}
static void pmap_free(PMap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}
static PSlot *pmap_slot(const PMap *m, uint64_t key) {
    size_t i = hash_u64(key) & (m->cap - 1);
    while (m->slots[i].key != UINT64_MAX && m->slots[i].key != key) i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}
static const PSlot *pmap_get(const PMap *m, uint64_t key) {
    if (!m->slots) return NULL;
    const PSlot *s = pmap_slot(m, key);
    return s->key == UINT64_MAX ? NULL : s;
}
static void pmap_put(PMap *m, uint64_t key, int32_t a, int32_t b) {
    if ((m->n + 1) * 10 > m->cap * 7) {
        PMap g;
        pmap_init(&g, m->cap);
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key != UINT64_MAX) *pmap_slot(&g, m->slots[i].key) = m->slots[i];
        g.n = m->n;
        free(m->slots);
        *m = g;
    }
    PSlot *s = pmap_slot(m, key);
    if (s->key == UINT64_MAX) m->n++;
    s->key = key;
    s->a = a;
    s->b = b;
}

// bump allocator for the strings made while encoding one text (freed all at once)
typedef struct ArenaBlock {
    struct ArenaBlock *next; //
    size_t used, cap;        // bytes
    char data[];             // [cap]
} ArenaBlock;
typedef struct {
    ArenaBlock *head; //
} Arena;

static char *arena_alloc(Arena *a, size_t n) {
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        ArenaBlock *b = xmalloc(sizeof *b + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    char *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}
static void arena_free(Arena *a) {
    while (a->head) {
        ArenaBlock *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

// ----------------------------------------------------------------------------
// UTF-8

// length of the valid UTF-8 sequence at s[0..n) (> 0); -k when its first k bytes are a maximal invalid subpart
// (Unicode "substitution of maximal subparts", as Rust's from_utf8_lossy and Python's decode("replace")); 0 when
// s[0..n) is a valid but incomplete start of a sequence
static int utf8_check(const uint8_t *s, size_t n) {
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    int need;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else return -1;
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return 0;
        if (s[i] < lo || s[i] > hi) return -i;
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; // U+FFFD

// String::from_utf8_lossy: append s[0..n) to b with every maximal invalid subpart replaced by U+FFFD;
// with hold != NULL an incomplete sequence at the end is not written and its length is stored in *hold
static void utf8_lossy(Buf *b, const uint8_t *s, size_t n, size_t *hold) {
    size_t i = 0, run = 0; // run: start of the pending valid run
    if (hold) *hold = 0;
    while (i < n) {
        int k = utf8_check(s + i, n - i);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        buf_put(b, s + run, i - run);
        if (k == 0 && hold) {
            *hold = n - i;
            return;
        }
        buf_put(b, REPLACEMENT, 3);
        i += k == 0 ? n - i : (size_t)-k;
        run = i;
    }
    buf_put(b, s + run, i - run);
}


// decode the (valid) character at s; *len gets its byte length
static uint32_t utf8_decode(const uint8_t *s, int *len) {
    uint8_t c = s[0];
    if (c < 0x80) return *len = 1, c;
    if (c < 0xE0) return *len = 2, ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
    if (c < 0xF0) return *len = 3, ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    *len = 4;
    return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
           (s[3] & 0x3F);
}

// write codepoint cp as UTF-8 into o (4 bytes room); returns the length
static int utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) return o[0] = (char)cp, 1;
    if (cp < 0x800) return o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return o[0] = (char)(0xE0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
               o[2] = (char)(0x80 | (cp & 0x3F)), 3;
    o[0] = (char)(0xF0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Unicode White_Space (Rust char::is_whitespace, regex `\s`, Oniguruma `\s`)
static int is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}


// ----------------------------------------------------------------------------
// regexes: HF compiles Split patterns with Oniguruma (Ruby syntax); we run them with PCRE2 (UTF + UCP, JIT).
// Oniguruma's `\s` is Unicode White_Space (includes U+0085, which PCRE2's \s lacks), `\w` is L|M|N|Pc and `\h`
// is a hex digit, so those escapes are rewritten to explicit classes. (`\S`/`\W`/`\H` inside a bracket class
// keep PCRE2's meaning.) Ruby's `^`/`$` always match at line breaks: PCRE2_MULTILINE.

#define WS_CLASS "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
#define WORD_CLASS "\\p{L}\\p{M}\\p{N}\\p{Pc}"
// the Rust regex crate's Unicode `\w` (UTS#18 word), used by AddedVocabulary for single_word tokens
#define RUST_WORD_RE "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200c}\\x{200d}]"

// rewrite an Oniguruma pattern into PCRE2 syntax (malloc'd)
static char *onig_to_pcre2(const char *p) {
    Buf b = {0};
    int in_class = 0;
    buf_put(&b, "", 0);
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        if (c == '\\' && p[i + 1]) {
            char e = p[++i];
            const char *body = e == 's' || e == 'S' ? WS_CLASS : e == 'w' || e == 'W' ? WORD_CLASS
                             : e == 'h' || e == 'H' ? "0-9a-fA-F" : NULL;
            int neg = e == 'S' || e == 'W' || e == 'H';
            if (body && !in_class) {
                buf_puts(&b, neg ? "[^" : "[");
                buf_puts(&b, body);
                buf_puts(&b, "]");
            } else if (body && !neg) {
                buf_puts(&b, body);
            } else {
                buf_put(&b, p + i - 1, 2);
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            buf_put(&b, &c, 1);
            if (p[i + 1] == '^') buf_put(&b, &p[++i], 1);
            if (p[i + 1] == ']') buf_put(&b, &p[++i], 1); // a leading ']' is literal
            continue;
        }
        if (in_class && c == '[' && p[i + 1] == ':') { // POSIX class [:name:]
            const char *end = strstr(p + i + 2, ":]");
            if (end) {
                buf_put(&b, p + i, (size_t)(end + 2 - (p + i)));
                i = (size_t)(end + 1 - p);
                continue;
            }
        }
        if (in_class && c == ']') in_class = 0;
        buf_put(&b, &c, 1);
    }
    return b.p;
}

// compile an Oniguruma-syntax pattern (literal 0), a literal string (1) or a PCRE2 pattern (2); NULL + glm_err
static pcre2_code *regex_compile(const char *pat, int literal, const char *name, const char *where) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re;
    if (literal == 2) {
        re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    } else if (literal) {
        re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_LITERAL, &err, &off, NULL);
    } else {
        char *q = onig_to_pcre2(pat);
        re = pcre2_compile((PCRE2_SPTR)q, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &off,
                           NULL);
        free(q);
    }
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        glm_err("%s: %s: bad regex (%s at offset %zu)", name, where, (const char *)msg, (size_t)off);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); // falls back to the interpreter when JIT is unavailable
    return re;
}

// per-encode regex state (a JIT stack big enough for long whitespace runs)
typedef struct {
    pcre2_match_data *md;     // one ovector pair
    pcre2_match_context *mc;  //
    pcre2_jit_stack *js;      //
} RegexCtx;

static void rctx_init(RegexCtx *r) {
    r->md = pcre2_match_data_create(1, NULL);
    r->mc = pcre2_match_context_create(NULL);
    r->js = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
    if (!r->md || !r->mc) glm_die(EXIT_INPUT, "out of memory");
    if (r->js) pcre2_jit_stack_assign(r->mc, NULL, r->js);
}
static void rctx_free(RegexCtx *r) {
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mc);
    pcre2_jit_stack_free(r->js);
}

// one (start, end, is_match) range from Pattern::find_matches
typedef struct {
    size_t s, e; // byte offsets
    int match;   //
} Range;
typedef struct {
    Range *p;
    size_t n, cap;
} RangeVec;
static void rv_push(RangeVec *v, size_t s, size_t e, int match) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        Range *p = realloc(v->p, v->cap * sizeof *p);
        if (!p) glm_die(EXIT_INPUT, "out of memory");
        v->p = p;
    }
    v->p[v->n++] = (Range){s, e, match};
}

// impl Pattern for &Regex: find_matches(inside) -> the matches and the gaps between them, covering `inside`;
// the iteration is onig's FindMatches (an empty match right after the previous match is skipped)
static int regex_find_matches(const pcre2_code *re, RegexCtx *rc, const char *s, size_t n, RangeVec *out) {
    out->n = 0;
    if (n == 0) {
        rv_push(out, 0, 0, 0);
        return 0;
    }
    size_t pos = 0, prev = 0, last_end = SIZE_MAX;
    while (pos <= n) {
        int r = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, rc->md, rc->mc);
        if (r == PCRE2_ERROR_NOMATCH) break;
        if (r < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(r, msg, sizeof msg);
            return glm_err("tokenizer: regex match failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rc->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && last_end == me) { // skip an empty match right after the previous one
            if (pos >= n) break;
            int k;
            utf8_decode((const uint8_t *)s + pos, &k);
            pos += (size_t)k;
            continue;
        }
        pos = me;
        last_end = me;
        if (prev != ms) rv_push(out, prev, ms, 0);
        rv_push(out, ms, me, 1);
        prev = me;
    }
    if (prev != n) rv_push(out, prev, n, 0);
    return 0;
}

// ----------------------------------------------------------------------------
// the tokenizer

// added_tokens[i] of tokenizer.json (AddedToken)
typedef struct {
    char *content;   // token text (in Tokenizer.owned)
    size_t len;      // bytes
    int id;          // id in the tokenizer
    int single_word; // only match whole words
    int lstrip;      // swallow whitespace on the left
    int rstrip;      // swallow whitespace on the right
    int normalized;  // matched against the normalized text (second pass)
    int special;     // skipped by decode(skip_special_tokens=True)
} AddedToken;

// byte trie for the leftmost-longest matching of added tokens (HF uses an Aho-Corasick automaton)
typedef struct {
    int32_t child;   // first child node, -1 none
    int32_t sibling; // next sibling, -1 none
    int32_t tok;     // id of the added token ending here, -1 none
    uint8_t byte;    // edge label
} TrieNode;
typedef struct {
    TrieNode *nodes;  // [n], node 0 is the root
    int n, cap;       //
    int32_t root[256]; // children of the root by byte (-1 none)
} Trie;

enum { PT_SPLIT, PT_BYTELEVEL };
enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };

// one pre-tokenizer of the (flattened) Sequence
typedef struct {
    int type;             // PT_SPLIT / PT_BYTELEVEL
    pcre2_code *re;       // Split pattern, or the GPT-2 regex for ByteLevel(use_regex=true); NULL otherwise
    int behavior;         // Split: SplitDelimiterBehavior
    int invert;           // Split: invert
    int add_prefix_space; // ByteLevel
} PreTok;

struct Tokenizer {
    char *name;                // file name for messages
    // BPE model
    char *pool;                // vocab strings, each NUL-terminated
    int nvocab;                // vocab entries (BPE get_vocab_size)
    int vocab_ids;             // highest vocab id + 1
    int64_t *vocab_off;        // [vocab_ids] offset of each id's string in pool, -1 when no token has the id
    SMap vocab;                // token string -> id
    PMap merges;               // (left id << 32 | right id) -> (rank, merged id)
    char *unk_token;           // NULL when none
    char *prefix, *suffix;     // continuing_subword_prefix / end_of_word_suffix (NULL when none)
    int fuse_unk, byte_fallback, ignore_merges;
    // AddedVocabulary
    AddedToken *added;         // [nadded] added_tokens_map_r: one entry per id (the last token given that id)
    int nadded;                //
    PMap added_index;          // id -> (index into added, -)
    SMap added_map;            // content -> id (added_tokens_map)
    SMap special_set;          // contents of special tokens
    char **owned;              // [nowned] every added token content (the maps' keys point here)
    int nowned;                //
    Trie trie, trie_norm;      // non-normalized / normalized added tokens
    pcre2_code *word_re;       // regex-crate `\w` test for single_word tokens (NULL when none)
    // pre-tokenizer, decoder
    PreTok *pre;               // [npre] flattened Sequence; none = the whole text is one word
    int npre;                  //
    int byte_level_decoder;    // decoder ByteLevel (else tokens are joined with " ")
    int size;                  // highest id + 1
    // GPT-2 bytes_to_unicode
    char byte_char[256][3];    // UTF-8 of the char standing for each byte (NUL-padded)
    uint8_t byte_char_len[256];//
    int16_t char_byte[512];    // codepoint -> byte (-1 when the codepoint is not a byte char)
};

// pre_tokenizers/byte_level.rs bytes_char(): printable bytes stand for themselves, the others for 256 + n
static void bytes_to_unicode(Tokenizer *t) {
    int n = 0;
    for (int i = 0; i < 512; i++) t->char_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = keep ? (uint32_t)b : 256u + (uint32_t)n++;
        t->byte_char_len[b] = (uint8_t)utf8_encode(cp, t->byte_char[b]);
        t->char_byte[cp] = (int16_t)b;
    }
}

static void trie_init(Trie *tr) {
    tr->cap = 16;
    tr->nodes = xmalloc((size_t)tr->cap * sizeof *tr->nodes);
    tr->n = 1;
    tr->nodes[0] = (TrieNode){-1, -1, -1, 0};
    for (int i = 0; i < 256; i++) tr->root[i] = -1;
}
// insert; an existing pattern keeps its first id (Aho-Corasick reports the first of equal patterns)
static void trie_add(Trie *tr, const char *s, size_t n, int id) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        int32_t ch = node == 0 ? tr->root[c] : tr->nodes[node].child;
        if (node != 0)
            while (ch >= 0 && tr->nodes[ch].byte != c) ch = tr->nodes[ch].sibling;
        if (ch < 0) {
            if (tr->n == tr->cap) {
                tr->cap *= 2;
                TrieNode *p = realloc(tr->nodes, (size_t)tr->cap * sizeof *p);
                if (!p) glm_die(EXIT_INPUT, "out of memory");
                tr->nodes = p;
            }
            ch = tr->n++;
            tr->nodes[ch] = (TrieNode){-1, -1, -1, c};
            if (node == 0) {
                tr->root[c] = ch;
            } else {
                tr->nodes[ch].sibling = tr->nodes[node].child;
                tr->nodes[node].child = ch;
            }
        }
        node = ch;
    }
    if (node != 0 && tr->nodes[node].tok < 0) tr->nodes[node].tok = id;
}
// longest pattern starting at s[0..n): its id and length in *len, or -1
static int trie_longest(const Trie *tr, const uint8_t *s, size_t n, size_t *len) {
    int best = -1;
    int32_t node = n ? tr->root[s[0]] : -1;
    for (size_t i = 1; node >= 0; i++) {
        if (tr->nodes[node].tok >= 0) best = tr->nodes[node].tok, *len = i;
        if (i >= n) break;
        int32_t ch = tr->nodes[node].child;
        while (ch >= 0 && tr->nodes[ch].byte != s[i]) ch = tr->nodes[ch].sibling;
        node = ch;
    }
    return best;
}

// the added token that owns id, or NULL
static const AddedToken *added_by_id(const Tokenizer *t, int id) {
    const PSlot *ix = id >= 0 ? pmap_get(&t->added_index, (uint64_t)id) : NULL;
    return ix ? &t->added[ix->a] : NULL;
}

// model.id_to_token / added_vocabulary.id_to_token: token text of id (added tokens first), or NULL
static const char *id_to_token(const Tokenizer *t, int id, size_t *len) {
    const AddedToken *a = added_by_id(t, id);
    if (a) return *len = a->len, a->content;
    if (id < 0 || id >= t->vocab_ids || t->vocab_off[id] < 0) return NULL;
    const char *s = t->pool + t->vocab_off[id];
    *len = strlen(s);
    return s;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    free(t->name);
    free(t->pool);
    free(t->vocab_off);
    smap_free(&t->vocab);
    pmap_free(&t->merges);
    free(t->unk_token);
    free(t->prefix);
    free(t->suffix);
    for (int i = 0; i < t->nowned; i++) free(t->owned[i]);
    free(t->owned);
    free(t->added);
    pmap_free(&t->added_index);
    smap_free(&t->added_map);
    smap_free(&t->special_set);
    free(t->trie.nodes);
    free(t->trie_norm.nodes);
    pcre2_code_free(t->word_re);
    for (int i = 0; i < t->npre; i++) pcre2_code_free(t->pre[i].re);
    free(t->pre);
    free(t);
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->size; }

int tokenizer_token_id(const Tokenizer *t, const char *s) {
    size_t n = strlen(s);
    int64_t *v = smap_get(&t->added_map, s, n);
    if (!v) v = smap_get(&t->vocab, s, n);
    return v ? (int)*v : -1;
}

int tokenizer_bytes_id(const Tokenizer *t, const void *bytes, size_t n) {
    const uint8_t *b = bytes;
    if (n == 0 || n > 1024) return -1;
    char key[1024 * 2 + 1]; // each byte's byte char is at most 2 UTF-8 bytes (codepoints < 512)
    if (n < sizeof key) { // an added token is matched by its literal text
        memcpy(key, b, n);
        key[n] = 0;
        if (!memchr(b, 0, n)) {
            int64_t *v = smap_get(&t->added_map, key, n);
            if (v) return (int)*v;
        }
    }
    size_t k = 0;
    if (t->byte_level_decoder)
        for (size_t i = 0; i < n; i++) memcpy(key + k, t->byte_char[b[i]], t->byte_char_len[b[i]]), k += t->byte_char_len[b[i]];
    else if (!memchr(b, 0, n)) memcpy(key, b, n), k = n;
    else return -1;
    int64_t *v = smap_get(&t->vocab, key, k);
    return v ? (int)*v : -1;
}

const char *tokenizer_token_str(const Tokenizer *t, int id) {
    size_t n;
    return id_to_token(t, id, &n);
}

// ----------------------------------------------------------------------------
// loading tokenizer.json

// JSON helpers: optional bool field (absent/null = dflt); -1 on a wrong type
static int json_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return dflt;
    if (!cJSON_IsBool(v)) return -1;
    return cJSON_IsTrue(v) ? 1 : 0;
}
// a JSON number that is an integer in [0, TOK_MAX_ID]; -1 otherwise
static int json_id(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= TOK_MAX_ID) || d != (double)(int)d) return -1;
    return (int)d;
}
// optional string field: NULL when absent/null; *bad = 1 on a wrong type
static const char *json_str(const cJSON *o, const char *key, int *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsString(v)) {
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

// models/bpe/serialization.rs + BpeBuilder::build: vocab, merges and options of model
static int load_bpe(Tokenizer *t, const cJSON *model) {
    const char *nm = t->name;
    if (!cJSON_IsObject(model)) return glm_err("%s: \"model\" is missing or not an object", nm);
    int bad = 0;
    const char *type = json_str(model, "type", &bad);
    if (bad) return glm_err("%s: model.type is not a string", nm);
    if (type && strcmp(type, "BPE") != 0)
        return glm_err("%s: model type '%s' is not supported (only BPE)", nm, type);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return glm_err("%s: model.dropout is not supported (BPE dropout is random)", nm);
    const char *unk = json_str(model, "unk_token", &bad);
    const char *prefix = json_str(model, "continuing_subword_prefix", &bad);
    const char *suffix = json_str(model, "end_of_word_suffix", &bad);
    if (bad) return glm_err("%s: model: unk_token/continuing_subword_prefix/end_of_word_suffix must be strings", nm);
    t->unk_token = unk ? xstrdup(unk) : NULL;
    t->prefix = prefix && *prefix ? xstrdup(prefix) : NULL;
    t->suffix = suffix && *suffix ? xstrdup(suffix) : NULL;
    t->fuse_unk = json_bool(model, "fuse_unk", 0);
    t->byte_fallback = json_bool(model, "byte_fallback", 0);
    t->ignore_merges = json_bool(model, "ignore_merges", 0);
    if (t->fuse_unk < 0 || t->byte_fallback < 0 || t->ignore_merges < 0)
        return glm_err("%s: model: fuse_unk/byte_fallback/ignore_merges must be booleans", nm);

    // vocab: {"token": id, ...}
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab)) return glm_err("%s: model.vocab is missing or not an object", nm);
    size_t pool_len = 0, count = 0;
    int max_id = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int id = json_id(e);
        if (id < 0)
            return glm_err("%s: model.vocab[\"%.40s\"]: id is not an integer in [0, %d]", nm, e->string, TOK_MAX_ID);
        if (id > max_id) max_id = id;
        pool_len += strlen(e->string) + 1;
        count++;
    }
    t->pool = xmalloc(pool_len ? pool_len : 1);
    t->vocab_ids = max_id + 1;
    t->vocab_off = xmalloc((size_t)(max_id + 1) * sizeof *t->vocab_off + 1);
    for (int i = 0; i <= max_id; i++) t->vocab_off[i] = -1;
    smap_init(&t->vocab, count);
    size_t off = 0;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        size_t n = strlen(e->string);
        int id = json_id(e);
        memcpy(t->pool + off, e->string, n + 1);
        smap_put(&t->vocab, t->pool + off, n, id);
        if (t->vocab_off[id] < 0) t->vocab_off[id] = (int64_t)off; // two tokens with one id: the first decodes
        off += n + 1;
    }
    t->nvocab = (int)t->vocab.n;

    // merges: ["a b", ...] (legacy) or [["a", "b"], ...]; rank = position; a pair given twice keeps the last rank
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(merges)) return glm_err("%s: model.merges is missing or not an array", nm);
    int nmerges = cJSON_GetArraySize(merges);
    pmap_init(&t->merges, (size_t)nmerges);
    size_t plen = t->prefix ? strlen(t->prefix) : 0;
    int legacy = merges->child && cJSON_IsString(merges->child);
    Buf cat = {0};
    int rank = 0, idx = 0;
    for (const cJSON *e = merges->child; e; e = e->next, idx++) {
        const char *a, *b;
        size_t alen, blen;
        if (legacy) {
            if (!cJSON_IsString(e)) goto bad_merge;
            const char *s = e->valuestring;
            if (strncmp(s, "#version", 8) == 0) continue; // convert_merges_to_hashmap skips these lines
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) goto bad_merge;
            a = s, alen = (size_t)(sp - s), b = sp + 1, blen = strlen(b);
        } else {
            if (cJSON_GetArraySize(e) != 2 || !cJSON_IsString(e->child) || !cJSON_IsString(e->child->next))
                goto bad_merge;
            a = e->child->valuestring, alen = strlen(a);
            b = e->child->next->valuestring, blen = strlen(b);
        }
        int64_t *ia = smap_get(&t->vocab, a, alen), *ib = smap_get(&t->vocab, b, blen);
        if (!ia || !ib) {
            free(cat.p);
            return glm_err("%s: model.merges[%d]: token '%.*s' is not in the vocab", nm, idx,
                           (int)(ia ? (blen > 60 ? 60 : blen) : (alen > 60 ? 60 : alen)), ia ? b : a);
        }
        if (blen < plen) goto bad_merge;
        // new_token = format!("{}{}", a, &b[prefix_len..])
        cat.n = 0;
        buf_put(&cat, a, alen);
        buf_put(&cat, b + plen, blen - plen);
        int64_t *inew = smap_get(&t->vocab, cat.p, cat.n);
        if (!inew) {
            int k = cat.n > 60 ? 60 : (int)cat.n;
            glm_err("%s: model.merges[%d]: merged token '%.*s' is not in the vocab", nm, idx, k, cat.p);
            free(cat.p);
            return -1;
        }
        pmap_put(&t->merges, (uint64_t)*ia << 32 | (uint64_t)*ib, rank++, (int32_t)*inew);
    }
    free(cat.p);
    return 0;
bad_merge:
    free(cat.p);
    return glm_err("%s: model.merges[%d]: expected \"a b\" or [\"a\", \"b\"] (all entries of one kind)", nm, idx);
}

// one entry of the special_tokens / added_tokens lists that the matching tries are built from
typedef struct {
    const char *content; // owned by the tokenizer
    size_t len;          //
    int normalized;      // goes to the normalized trie
} TrieEntry;
typedef struct {
    TrieEntry *p;
    int n, cap;
} TrieList;
static void tl_push(TrieList *l, const char *c, size_t len, int normalized) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        TrieEntry *p = realloc(l->p, (size_t)l->cap * sizeof *p);
        if (!p) glm_die(EXIT_INPUT, "out of memory");
        l->p = p;
    }
    l->p[l->n++] = (TrieEntry){c, len, normalized};
}

// AddedVocabulary::add_tokens / add_special_tokens for one added_tokens[] entry, as the deserializer calls them
static int add_token(Tokenizer *t, const cJSON *e, int idx, int *max_added, TrieList *specials, TrieList *plain) {
    const char *nm = t->name;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(e, "id");
    if (!cJSON_IsObject(e) || !cJSON_IsString(c) || !jid)
        return glm_err("%s: added_tokens[%d]: expected an object with \"id\" and \"content\"", nm, idx);
    int file_id = json_id(jid);
    if (file_id < 0) return glm_err("%s: added_tokens[%d]: id is not an integer in [0, %d]", nm, idx, TOK_MAX_ID);
    AddedToken a = {.content = c->valuestring, .len = strlen(c->valuestring)};
    // every flag is a required field of AddedToken's serde form
    a.special = json_bool(e, "special", -1);
    a.single_word = json_bool(e, "single_word", -1);
    a.lstrip = json_bool(e, "lstrip", -1);
    a.rstrip = json_bool(e, "rstrip", -1);
    a.normalized = json_bool(e, "normalized", -1);
    if (a.special < 0 || a.single_word < 0 || a.lstrip < 0 || a.rstrip < 0 || a.normalized < 0)
        return glm_err("%s: added_tokens[%d]: special/single_word/lstrip/rstrip/normalized must all be booleans", nm,
                       idx);
    if (a.len == 0) return glm_err("%s: added_tokens[%d]: empty content", nm, idx);

    int64_t *have = smap_get(&t->added_map, a.content, a.len);
    // new_id: the existing id (added or model vocab), else max(added ids) + 1 or the model's vocab size
    int64_t *inv = have ? NULL : smap_get(&t->vocab, a.content, a.len);
    int id = have ? (int)*have : inv ? (int)*inv
           : *max_added < 0 ? t->nvocab
           : (*max_added >= t->nvocab || t->nvocab == 0) ? *max_added + 1 : t->nvocab;
    if (id != file_id) // tokenizers only warns and uses its own id; a file like that is broken
        return glm_err("%s: added_tokens[%d] '%.60s': id %d, but tokenizers gives this token id %d", nm, idx,
                       a.content, file_id, id);
    if (t->nowned % 64 == 0) {
        char **p = realloc(t->owned, (size_t)(t->nowned + 64) * sizeof *p);
        if (!p) glm_die(EXIT_INPUT, "out of memory");
        t->owned = p;
    }
    a.content = t->owned[t->nowned++] = xstrdup(a.content);
    a.id = id;

    // special tokens are registered first (special_tokens list + special_tokens_set)
    if (a.special && !smap_get(&t->special_set, a.content, a.len)) {
        smap_put(&t->special_set, a.content, a.len, 1);
        tl_push(specials, a.content, a.len, a.normalized);
    }
    // a token equal (every field) to one already added is ignored
    const AddedToken *old = have ? added_by_id(t, id) : NULL;
    if (old && old->len == a.len && !memcmp(old->content, a.content, a.len) && old->special == a.special &&
        old->single_word == a.single_word && old->lstrip == a.lstrip && old->rstrip == a.rstrip &&
        old->normalized == a.normalized)
        return 0;
    if (id > *max_added) *max_added = id;
    smap_put(&t->added_map, a.content, a.len, id);
    const PSlot *ix = pmap_get(&t->added_index, (uint64_t)id);
    if (ix) { // added_tokens_map_r.entry(new_id).and_modify(|t| *t = token.clone())
        t->added[ix->a] = a;
    } else {
        if (t->nadded % 64 == 0) {
            AddedToken *p = realloc(t->added, (size_t)(t->nadded + 64) * sizeof *p);
            if (!p) glm_die(EXIT_INPUT, "out of memory");
            t->added = p;
        }
        pmap_put(&t->added_index, (uint64_t)id, t->nadded, 0);
        t->added[t->nadded++] = a;
    }
    if (!smap_get(&t->special_set, a.content, a.len)) tl_push(plain, a.content, a.len, a.normalized);
    return 0;
}

// one pre-tokenizer object (Sequence flattened into t->pre)
static int load_pretok(Tokenizer *t, const cJSON *p, int depth) {
    const char *nm = t->name;
    int bad = 0;
    const char *type = cJSON_IsObject(p) ? json_str(p, "type", &bad) : NULL;
    if (!type || bad) return glm_err("%s: pre_tokenizer: expected an object with a \"type\"", nm);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list) || depth > 8) return glm_err("%s: pre_tokenizer Sequence: bad \"pretokenizers\"", nm);
        for (const cJSON *e = list->child; e; e = e->next)
            if (load_pretok(t, e, depth + 1)) return -1;
        return 0;
    }
    PreTok pt = {0};
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const char *beh = json_str(p, "behavior", &bad);
        static const char *behaviors[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
        pt.type = PT_SPLIT;
        pt.behavior = -1;
        for (int i = 0; beh && i < 5; i++)
            if (strcmp(beh, behaviors[i]) == 0) pt.behavior = i;
        pt.invert = json_bool(p, "invert", 0);
        if (pt.behavior < 0 || pt.invert < 0 || (!cJSON_IsString(rx) && !cJSON_IsString(str)))
            return glm_err("%s: pre_tokenizer Split: needs pattern {Regex|String}, a known behavior, bool invert", nm);
        pt.re = regex_compile(cJSON_IsString(rx) ? rx->valuestring : str->valuestring, !cJSON_IsString(rx), nm,
                              "pre_tokenizer Split pattern");
        if (!pt.re) return -1;
    } else if (strcmp(type, "ByteLevel") == 0) {
        pt.type = PT_BYTELEVEL;
        pt.add_prefix_space = json_bool(p, "add_prefix_space", 1);
        int use_regex = json_bool(p, "use_regex", 1);
        if (pt.add_prefix_space < 0 || use_regex < 0)
            return glm_err("%s: pre_tokenizer ByteLevel: add_prefix_space/use_regex must be booleans", nm);
        // pre_tokenizers/byte_level.rs RE (the GPT-2 pattern)
        if (use_regex &&
            !(pt.re = regex_compile("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
                                    0, nm, "ByteLevel regex")))
            return -1;
    } else {
        return glm_err("%s: pre_tokenizer type '%s' is not supported (Sequence, Split, ByteLevel)", nm, type);
    }
    PreTok *np = realloc(t->pre, (size_t)(t->npre + 1) * sizeof *np);
    if (!np) glm_die(EXIT_INPUT, "out of memory");
    t->pre = np;
    t->pre[t->npre++] = pt;
    return 0;
}

// build the tokenizer from a parsed tokenizer.json
static int load_root(Tokenizer *t, const cJSON *root) {
    const char *nm = t->name;
    if (!cJSON_IsObject(root)) return glm_err("%s: not a JSON object", nm);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (ver && !(cJSON_IsString(ver) && strcmp(ver->valuestring, "1.0") == 0))
        return glm_err("%s: unknown tokenizer version (expected \"1.0\")", nm);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(norm, "type");
        return glm_err("%s: normalizer type '%s' is not supported (only null)", nm,
                       cJSON_IsString(ty) ? ty->valuestring : "?");
    }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (dec && !cJSON_IsNull(dec)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(dec, "type");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "ByteLevel") != 0)
            return glm_err("%s: decoder type '%s' is not supported (ByteLevel or null)", nm,
                           cJSON_IsString(ty) ? ty->valuestring : "?");
        t->byte_level_decoder = 1;
    }
    if (load_bpe(t, cJSON_GetObjectItemCaseSensitive(root, "model"))) return -1;
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (pre && !cJSON_IsNull(pre) && load_pretok(t, pre, 0)) return -1;

    // added_tokens (the post_processor is not used: encoding here is add_special_tokens=False)
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return glm_err("%s: added_tokens is not an array", nm);
    int n = added ? cJSON_GetArraySize(added) : 0, max_added = -1, i = 0, need_word = 0, rc = 0;
    TrieList specials = {0}, plain = {0};
    smap_init(&t->added_map, (size_t)n);
    smap_init(&t->special_set, (size_t)n);
    pmap_init(&t->added_index, (size_t)n);
    for (const cJSON *e = added ? added->child : NULL; e && !rc; e = e->next, i++)
        rc = add_token(t, e, i, &max_added, &specials, &plain);
    // refresh_added_tokens: tries over special_tokens ++ added_tokens, partitioned by `normalized`
    trie_init(&t->trie);
    trie_init(&t->trie_norm);
    for (int k = 0; k < specials.n + plain.n && !rc; k++) {
        const TrieEntry *te = k < specials.n ? &specials.p[k] : &plain.p[k - specials.n];
        trie_add(te->normalized ? &t->trie_norm : &t->trie, te->content, te->len,
                 (int)*smap_get(&t->added_map, te->content, te->len));
    }
    free(specials.p);
    free(plain.p);
    if (rc) return -1;
    for (int k = 0; k < t->nadded; k++) need_word |= t->added[k].single_word;
    if (need_word && !(t->word_re = regex_compile(RUST_WORD_RE, 2, nm, "single_word"))) return -1;
    t->size = t->vocab_ids > max_added + 1 ? t->vocab_ids : max_added + 1;
    bytes_to_unicode(t);
    return 0;
}

Tokenizer *tokenizer_load_json(const char *json, size_t len, const char *name) {
    if (!name) name = "tokenizer.json";
    // serde_json reads UTF-8 text: invalid UTF-8 is an error there too
    if (!json || !utf8_valid((const uint8_t *)json, len)) {
        glm_err("%s: not valid UTF-8 text", name);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        glm_err("%s: not valid JSON (near byte %zu)", name,
                at && at >= json && at <= json + len ? (size_t)(at - json) : (size_t)0);
        return NULL;
    }
    while (end && end < json + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (end && end < json + len) { // serde_json rejects trailing characters
        glm_err("%s: not valid JSON (trailing characters at byte %zu)", name, (size_t)(end - json));
        cJSON_Delete(root);
        return NULL;
    }
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name);
    int rc = load_root(t, root);
    cJSON_Delete(root);
    if (rc) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

Tokenizer *tokenizer_load(const char *path) {
    size_t len;
    char *json = read_file(path, &len, TOK_MAX_FILE);
    if (!json) return NULL;
    Tokenizer *t = tokenizer_load_json(json, len, path);
    free(json);
    return t;
}

// ----------------------------------------------------------------------------
// encoding

// a piece of the text being tokenized: a view (s, len), or an added token (id >= 0)
typedef struct {
    const char *s; // bytes (arena, the input, or a view into another piece)
    size_t len;    //
    int id;        // added token id, -1 for text still to be tokenized
} Piece;
typedef struct {
    Piece *p;
    size_t n, cap;
} PieceVec;
static void pv_push(PieceVec *v, const char *s, size_t len, int id) {
    if (!len) return; // PreTokenizedString::split drops empty splits
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        Piece *p = realloc(v->p, v->cap * sizeof *p);
        if (!p) glm_die(EXIT_INPUT, "out of memory");
        v->p = p;
    }
    v->p[v->n++] = (Piece){s, len, id};
}

// ends_with_word / starts_with_word: `\w` on the char before s[at] (before=1) or at s[at]
static int word_char_at(const Tokenizer *t, RegexCtx *rc, const char *s, size_t n, size_t at, int before) {
    size_t a = at;
    if (before) {
        if (at == 0) return 0;
        a = at - 1;
        while (a > 0 && ((uint8_t)s[a] & 0xC0) == 0x80) a--;
    } else if (at >= n) {
        return 0;
    }
    int k;
    utf8_decode((const uint8_t *)s + a, &k);
    return pcre2_match(t->word_re, (PCRE2_SPTR)s + a, (size_t)k, 0, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, rc->md,
                       NULL) >= 0;
}

// AddedVocabulary::find_matches + split_with_indices: split piece `in` on the added tokens of trie tr
static void find_matches(const Tokenizer *t, const Trie *tr, RegexCtx *rc, Piece in, PieceVec *out) {
    const char *s = in.s;
    size_t n = in.len, start_offset = 0, p = 0;
    while (p < n) {
        size_t mlen = 0;
        int id = trie_longest(tr, (const uint8_t *)s + p, n - p, &mlen);
        if (id < 0) {
            p++;
            continue;
        }
        size_t start = p, stop = p + mlen;
        p = stop; // the automaton's iterator resumes after the match whatever happens to it
        const AddedToken *a = added_by_id(t, id);
        if (a && a->single_word) {
            int start_space = start == 0 || !word_char_at(t, rc, s, n, start, 1);
            int stop_space = stop == n || !word_char_at(t, rc, s, n, stop, 0);
            if (!stop_space || !start_space) continue; // discard: not a single word
        }
        if (a && a->lstrip) { // start = max(space_leftmost_at_end(&sentence[..start]), start_offset)
            size_t ns = start;
            while (ns > 0) {
                size_t c = ns - 1;
                while (c > 0 && ((uint8_t)s[c] & 0xC0) == 0x80) c--;
                int k;
                if (!is_white_space(utf8_decode((const uint8_t *)s + c, &k))) break;
                ns = c;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a && a->rstrip) { // stop += space_rightmost_at_start(&sentence[stop..])
            while (stop < n) {
                int k;
                if (!is_white_space(utf8_decode((const uint8_t *)s + stop, &k))) break;
                stop += (size_t)k;
            }
        }
        if (start_offset < start) pv_push(out, s + start_offset, start - start_offset, -1);
        pv_push(out, s + start, stop - start, id);
        start_offset = stop;
    }
    if (start_offset != n) pv_push(out, s + start_offset, n - start_offset, -1);
}

// NormalizedString::split(pattern, behavior) for one Split pre-tokenizer, appending the pieces to out
static int split_piece(const PreTok *pt, RegexCtx *rc, RangeVec *rv, Piece in, PieceVec *out) {
    if (regex_find_matches(pt->re, rc, in.s, in.len, rv)) return -1;
    Range *m = rv->p;
    size_t n = rv->n, k = 0;
    if (pt->invert) // Invert(pattern): flip match / non-match
        for (size_t i = 0; i < n; i++) m[i].match = !m[i].match;
    switch (pt->behavior) {
    case SPLIT_REMOVED: // keep the non-matches
        for (size_t i = 0; i < n; i++)
            if (!m[i].match) m[k++] = m[i];
        break;
    case SPLIT_ISOLATED: k = n; break;
    case SPLIT_CONTIGUOUS: // consecutive ranges of the same kind are fused
        for (size_t i = 0; i < n; i++) {
            if (k > 0 && m[i].match == m[i - 1].match) m[k - 1].e = m[i].e;
            else m[k++] = m[i];
            m[k - 1].match = m[i].match;
        }
        break;
    case SPLIT_MERGED_PREV: { // a match joins the range before it
        int prev_match = 0;
        for (size_t i = 0; i < n; i++) {
            int is = m[i].match;
            if (is && !prev_match && k > 0) m[k - 1].e = m[i].e;
            else m[k++] = m[i];
            prev_match = is;
        }
        break;
    }
    case SPLIT_MERGED_NEXT: { // a match joins the range after it (folded from the end)
        int prev_match = 0;
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            int is = m[i].match;
            if (is && !prev_match && w < n) m[w].s = m[i].s;
            else m[--w] = m[i];
            prev_match = is;
        }
        for (size_t i = w; i < n; i++) m[k++] = m[i];
        break;
    }
    }
    for (size_t i = 0; i < k; i++) pv_push(out, in.s + m[i].s, m[i].e - m[i].s, -1);
    return 0;
}

// ByteLevel pre-tokenizer on one piece: optional prefix space, optional GPT-2 split, bytes -> byte chars
static int byte_level_piece(const Tokenizer *t, const PreTok *pt, RegexCtx *rc, RangeVec *rv, Arena *ar, Piece in,
                            PieceVec *out) {
    if (pt->add_prefix_space && in.s[0] != ' ') { // normalized.prepend(" ")
        char *s = arena_alloc(ar, in.len + 1);
        s[0] = ' ';
        memcpy(s + 1, in.s, in.len);
        in.s = s, in.len++;
    }
    size_t first = out->n;
    if (pt->re) {
        if (regex_find_matches(pt->re, rc, in.s, in.len, rv)) return -1;
        for (size_t i = 0; i < rv->n; i++) pv_push(out, in.s + rv->p[i].s, rv->p[i].e - rv->p[i].s, -1);
    } else {
        pv_push(out, in.s, in.len, -1);
    }
    for (size_t i = first; i < out->n; i++) { // every byte becomes its bytes_char
        Piece *p = &out->p[i];
        size_t m = 0;
        for (size_t j = 0; j < p->len; j++) m += t->byte_char_len[(uint8_t)p->s[j]];
        char *s = arena_alloc(ar, m), *o = s;
        for (size_t j = 0; j < p->len; j++) {
            uint8_t b = (uint8_t)p->s[j];
            memcpy(o, t->byte_char[b], t->byte_char_len[b]);
            o += t->byte_char_len[b];
        }
        p->s = s, p->len = m;
    }
    return 0;
}

// BPE Word::merge_all heap entry
typedef struct {
    int32_t rank, pos, new_id;
} Merge;
// BinaryHeap order: the lowest rank first, then the lowest position
static int merge_before(Merge a, Merge b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

typedef struct {
    Merge *h;
    size_t n, cap;
} Heap;
static void heap_push(Heap *q, Merge m) {
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        Merge *p = realloc(q->h, q->cap * sizeof *p);
        if (!p) glm_die(EXIT_INPUT, "out of memory");
        q->h = p;
    }
    size_t i = q->n++;
    while (i > 0 && merge_before(m, q->h[(i - 1) / 2])) {
        q->h[i] = q->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->h[i] = m;
}
static Merge heap_pop(Heap *q) {
    Merge top = q->h[0], last = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && merge_before(q->h[c + 1], q->h[c])) c++;
        if (!merge_before(q->h[c], last)) break;
        q->h[i] = q->h[c];
        i = c;
    }
    if (q->n) q->h[i] = last;
    return top;
}

// scratch of one encode call: symbols of the word being merged, the heap, the per-call word cache
typedef struct {
    int32_t *c, *prev, *next, *len; // [cap] Word symbols: id, neighbours, byte length (0 = merged away)
    size_t cap;                      //
    Heap q;                          //
    Buf tmp;                         // token text with prefix/suffix
    SMap cache;                      // word -> index into cached (offset << 32 | count)
    IntVec cached;                   // ids of the cached words
} BpeScratch;

static void bpe_add_symbol(BpeScratch *w, size_t *n, int id, int len) {
    if (*n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 256;
        w->c = realloc(w->c, w->cap * sizeof(int32_t));
        w->prev = realloc(w->prev, w->cap * sizeof(int32_t));
        w->next = realloc(w->next, w->cap * sizeof(int32_t));
        w->len = realloc(w->len, w->cap * sizeof(int32_t));
        if (!w->c || !w->prev || !w->next || !w->len) glm_die(EXIT_INPUT, "out of memory");
    }
    size_t i = (*n)++;
    w->c[i] = id;
    w->len[i] = len;
    w->prev[i] = (int32_t)i - 1;
    w->next[i] = -1;
    if (i > 0) w->next[i - 1] = (int32_t)i;
}

// BPE::merge_word + Word::merge_all: the ids of one pre-tokenized word, appended to out
static int bpe_merge_word(const Tokenizer *t, BpeScratch *w, const char *s, size_t n, IntVec *out) {
    size_t ns = 0;
    int unk_id = -1, unk_len = 0, have_unk = 0;
    for (size_t i = 0; i < n;) {
        int k;
        utf8_decode((const uint8_t *)s + i, &k);
        // s = char (+ continuing_subword_prefix when not first) (+ end_of_word_suffix when last)
        w->tmp.n = 0;
        if (i > 0 && t->prefix) buf_puts(&w->tmp, t->prefix);
        buf_put(&w->tmp, s + i, (size_t)k);
        if (i + (size_t)k == n && t->suffix) buf_puts(&w->tmp, t->suffix);
        int64_t *id = smap_get(&t->vocab, w->tmp.p, w->tmp.n);
        if (id) {
            if (have_unk) bpe_add_symbol(w, &ns, unk_id, unk_len), have_unk = 0;
            bpe_add_symbol(w, &ns, (int)*id, k);
        } else {
            int done = 0;
            if (t->byte_fallback) { // every byte as <0xXX>, only when all of them exist
                int ok = 1;
                for (int pass = 0; pass < 2 && ok; pass++)
                    for (size_t j = 0; ok && j < w->tmp.n; j++) {
                        char code[8];
                        snprintf(code, sizeof code, "<0x%02X>", (uint8_t)w->tmp.p[j]);
                        int64_t *b = smap_get(&t->vocab, code, 6);
                        if (!b) ok = 0;
                        else if (pass == 1) bpe_add_symbol(w, &ns, (int)*b, 1);
                    }
                done = ok;
            }
            if (!done && t->unk_token) {
                int64_t *u = smap_get(&t->vocab, t->unk_token, strlen(t->unk_token));
                if (!u) return glm_err("%s: unk_token '%.60s' is not in the vocab", t->name, t->unk_token);
                if (have_unk && t->fuse_unk) {
                    unk_len += k;
                } else {
                    if (have_unk) bpe_add_symbol(w, &ns, unk_id, unk_len);
                    unk_id = (int)*u, unk_len = k, have_unk = 1;
                }
            }
            // byte-level BPE has no unk: a char missing from the vocab is dropped, as HF does
        }
        i += (size_t)k;
    }
    if (have_unk) bpe_add_symbol(w, &ns, unk_id, unk_len);

    // merge_all: repeatedly apply the lowest-ranked merge, leftmost first
    w->q.n = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        const PSlot *m = pmap_get(&t->merges, (uint64_t)w->c[i] << 32 | (uint32_t)w->c[i + 1]);
        if (m) heap_push(&w->q, (Merge){m->a, (int32_t)i, m->b});
    }
    while (w->q.n) {
        Merge top = heap_pop(&w->q);
        int32_t pos = top.pos;
        if (w->len[pos] == 0 || w->next[pos] == -1) continue;
        int32_t nx = w->next[pos];
        const PSlot *m = pmap_get(&t->merges, (uint64_t)w->c[pos] << 32 | (uint32_t)w->c[nx]);
        if (!m || m->b != top.new_id) continue; // an expired queue entry
        w->c[pos] = top.new_id;
        w->len[pos] += w->len[nx];
        w->next[pos] = w->next[nx];
        w->len[nx] = 0;
        if (w->next[nx] >= 0) w->prev[w->next[nx]] = pos;
        if (w->prev[pos] >= 0) {
            int32_t pv = w->prev[pos];
            const PSlot *pm = pmap_get(&t->merges, (uint64_t)w->c[pv] << 32 | (uint32_t)w->c[pos]);
            if (pm) heap_push(&w->q, (Merge){pm->a, pv, pm->b});
        }
        if (w->next[pos] >= 0) {
            const PSlot *nm = pmap_get(&t->merges, (uint64_t)w->c[pos] << 32 | (uint32_t)w->c[w->next[pos]]);
            if (nm) heap_push(&w->q, (Merge){nm->a, pos, nm->b});
        }
    }
    for (size_t i = 0; i < ns; i++)
        if (w->len[i]) iv_push(out, w->c[i]);
    return 0;
}

// BPE::tokenize_with_cache: ignore_merges lookup, the per-call cache, merge_word
static int bpe_tokenize(const Tokenizer *t, BpeScratch *w, const char *s, size_t n, IntVec *out) {
    if (t->ignore_merges) {
        int64_t *id = smap_get(&t->vocab, s, n);
        if (id) return iv_push(out, (int)*id), 0;
    }
    int64_t *hit = smap_get(&w->cache, s, n);
    if (hit) {
        size_t off = (size_t)(*hit >> 32), cnt = (size_t)(*hit & 0xffffffff);
        for (size_t i = 0; i < cnt; i++) iv_push(out, w->cached.p[off + i]);
        return 0;
    }
    size_t before = out->n;
    if (bpe_merge_word(t, w, s, n, out)) return -1;
    size_t off = w->cached.n, cnt = out->n - before;
    for (size_t i = before; i < out->n; i++) iv_push(&w->cached, out->p[i]);
    smap_put(&w->cache, s, n, (int64_t)off << 32 | (int64_t)cnt); // s lives in the input or the arena
    return 0;
}

// TokenizerImpl::encode(text, add_special_tokens=False) on valid UTF-8
static int encode_valid(const Tokenizer *t, const char *text, size_t len, IntVec *ids) {
    RegexCtx rc;
    rctx_init(&rc);
    Arena ar = {0};
    PieceVec a = {0}, b = {0};
    RangeVec rv = {0};
    BpeScratch w = {0};
    smap_init(&w.cache, 256);
    int err = 0;

    // AddedVocabulary::extract_and_normalize: non-normalized tokens on the raw text, then normalized tokens
    // on the remaining text (the normalizer is the identity)
    pv_push(&a, text, len, -1);
    for (int pass = 0; pass < 2; pass++) {
        b.n = 0;
        for (size_t i = 0; i < a.n; i++) {
            if (a.p[i].id >= 0) pv_push(&b, a.p[i].s, a.p[i].len, a.p[i].id);
            else find_matches(t, pass == 0 ? &t->trie : &t->trie_norm, &rc, a.p[i], &b);
        }
        PieceVec tmp = a;
        a = b, b = tmp;
    }

    // pre-tokenize every text piece, then the model
    PieceVec cur = {0}, nxt = {0};
    for (size_t i = 0; i < a.n && !err; i++) {
        if (a.p[i].id >= 0) {
            iv_push(ids, a.p[i].id);
            continue;
        }
        cur.n = 0;
        pv_push(&cur, a.p[i].s, a.p[i].len, -1);
        for (int k = 0; k < t->npre && !err; k++) {
            const PreTok *pt = &t->pre[k];
            nxt.n = 0;
            for (size_t j = 0; j < cur.n && !err; j++)
                err = pt->type == PT_SPLIT ? split_piece(pt, &rc, &rv, cur.p[j], &nxt)
                                           : byte_level_piece(t, pt, &rc, &rv, &ar, cur.p[j], &nxt);
            PieceVec tmp = cur;
            cur = nxt, nxt = tmp;
        }
        for (size_t j = 0; j < cur.n && !err; j++) err = bpe_tokenize(t, &w, cur.p[j].s, cur.p[j].len, ids);
    }
    free(cur.p);
    free(nxt.p);
    free(a.p);
    free(b.p);
    free(rv.p);
    free(w.c), free(w.prev), free(w.next), free(w.len), free(w.q.h), free(w.tmp.p), free(w.cached.p);
    smap_free(&w.cache);
    arena_free(&ar);
    rctx_free(&rc);
    return err;
}

char *prompt_text_from_bytes(const char *bytes, size_t n) {
    // the text HF would tokenize: bytes.decode("utf-8", "replace")
    Buf lossy = {0}, out = {0};
    utf8_lossy(&lossy, (const uint8_t *)bytes, n, NULL);
    // U+0000 written as C0 80 (Modified UTF-8), so the text is a C string; no other C0 80 is left (invalid UTF-8 is
    // U+FFFD by now)
    buf_put(&out, "", 0);
    for (size_t i = 0, run = 0; i <= lossy.n; i++)
        if (i == lossy.n || lossy.p[i] == 0) {
            buf_put(&out, lossy.p + run, i - run);
            if (i < lossy.n) buf_put(&out, "\xC0\x80", 2);
            run = i + 1;
        }
    free(lossy.p);
    return out.p;
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids) {
    *ids = NULL;
    if (!text) len = 0, text = "";
    // a C0 80 pair is a NUL carried through C strings (prompt_text_from_bytes): back to the byte 0x00, which HF's
    // byte-level BPE tokenizes as any other byte
    Buf nul = {0};
    if (len >= 2 && memmem(text, len, "\xC0\x80", 2)) {
        buf_put(&nul, "", 0);
        size_t run = 0;
        for (size_t i = 0; i + 1 < len; i++)
            if ((uint8_t)text[i] == 0xC0 && (uint8_t)text[i + 1] == 0x80) {
                buf_put(&nul, text + run, i - run);
                buf_put(&nul, "", 1); // the NUL byte itself
                run = i + 2;
                i++;
            }
        buf_put(&nul, text + run, len - run);
        text = nul.p, len = nul.n;
    }
    // HF takes a Python str, so its input is always valid UTF-8. Bytes that are not valid UTF-8 are replaced by
    // U+FFFD here (as bytes.decode("utf-8", "replace") would) instead of being rejected.
    Buf fixed = {0};
    if (!utf8_valid((const uint8_t *)text, len)) {
        utf8_lossy(&fixed, (const uint8_t *)text, len, NULL);
        text = fixed.p, len = fixed.n;
    }
    IntVec v = {0};
    int rc = encode_valid(t, text, len, &v);
    free(fixed.p);
    free(nul.p);
    if (rc || v.n > INT32_MAX) {
        free(v.p);
        if (!rc) glm_err("%s: too many tokens", t->name);
        return -1;
    }
    *ids = v.p ? v.p : xmalloc(sizeof(int));
    return (int)v.n;
}

// ----------------------------------------------------------------------------
// decoding

// the bytes one id contributes to the decoder (nothing for unknown ids and, with skip_special, special tokens);
// ByteLevel: each char of the token back to its byte, or the token's own bytes when a char is not a byte char
static void token_bytes(const Tokenizer *t, int id, int skip_special, Buf *out) {
    size_t n;
    const char *s = id_to_token(t, id, &n);
    if (!s || (skip_special && smap_get(&t->special_set, s, n))) return;
    if (!t->byte_level_decoder) {
        buf_put(out, s, n);
        return;
    }
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        int k;
        uint32_t cp = utf8_decode((const uint8_t *)s + i, &k);
        if (cp >= 512 || t->char_byte[cp] < 0) { // not all chars map: the raw token text
            out->n = start;
            buf_put(out, s, n);
            return;
        }
        uint8_t byte = (uint8_t)t->char_byte[cp];
        buf_put(out, &byte, 1);
        i += (size_t)k;
    }
}

// 1 when id yields a token for the decoder (known, and not a skipped special token)
static int token_counts(const Tokenizer *t, int id, int skip_special) {
    size_t n;
    const char *s = id_to_token(t, id, &n);
    return s && !(skip_special && smap_get(&t->special_set, s, n));
}

char *tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special) {
    Buf raw = {0}, out = {0};
    buf_put(&raw, "", 0);
    buf_put(&out, "", 0);
    int ntok = 0;
    for (int i = 0; i < n; i++) {
        if (!t->byte_level_decoder && token_counts(t, ids[i], skip_special) && ntok++ > 0)
            buf_put(&raw, " ", 1); // no decoder: tokens.join(" ")
        token_bytes(t, ids[i], skip_special, &raw);
    }
    utf8_lossy(&out, (const uint8_t *)raw.p, raw.n, NULL); // String::from_utf8_lossy
    free(raw.p);
    return out.p;
}

void stream_init(StreamDecoder *s, const Tokenizer *t, int skip_special) {
    memset(s, 0, sizeof *s);
    s->tok = t;
    s->skip_special = skip_special;
}

int stream_feed(StreamDecoder *s, int id, char *out, int cap) {
    const Tokenizer *t = s->tok;
    Buf raw = {0}, txt = {0};
    buf_put(&raw, s->pending, (size_t)s->npending);
    int counts = token_counts(t, id, s->skip_special);
    if (counts && !t->byte_level_decoder && s->ntok > 0) buf_put(&raw, " ", 1);
    token_bytes(t, id, s->skip_special, &raw);
    size_t hold;
    buf_put(&txt, "", 0);
    utf8_lossy(&txt, (const uint8_t *)raw.p, raw.n, &hold); // complete text; an unfinished char stays pending
    int rc;
    if (cap <= 0 || txt.n + 1 > (size_t)cap) {
        rc = glm_err("stream_feed: output buffer of %d bytes too small for %zu bytes", cap, txt.n + 1);
        if (cap > 0) out[0] = 0;
    } else {
        memcpy(out, txt.p, txt.n + 1);
        memcpy(s->pending, raw.p + raw.n - hold, hold);
        s->npending = (int)hold;
        s->ntok += counts;
        rc = (int)txt.n;
    }
    free(raw.p);
    free(txt.p);
    return rc;
}

int stream_flush(StreamDecoder *s, char *out, int cap) {
    Buf txt = {0};
    buf_put(&txt, "", 0);
    utf8_lossy(&txt, (const uint8_t *)s->pending, (size_t)s->npending, NULL); // leftovers become U+FFFD
    int rc;
    if (cap <= 0 || txt.n + 1 > (size_t)cap) {
        rc = glm_err("stream_flush: output buffer of %d bytes too small", cap);
        if (cap > 0) out[0] = 0;
    } else {
        memcpy(out, txt.p, txt.n + 1);
        s->npending = 0;
        rc = (int)txt.n;
    }
    free(txt.p);
    return rc;
}
