// SPDX-License-Identifier: MIT
// json.c - JSON text from outside (--messages, --tools, request bodies, score lines) into cJSON trees, strictly
// (RFC 8259: one value, only whitespace around it), with limits a hostile input cannot exceed (depth, size), keeping
// each number's literal text (a cJSON raw item, so 1.0 stays 1.0 when a template prints it, as Python's json.loads
// keeps floats and ints apart) and refusing a string with a NUL character (cJSON would cut it there) with the
// path of the field. cJSON's own parser stays for files whose numbers are only read as numbers.
#include "json.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s;   // the text
    size_t n, i;     // its length, the read position
    int depth;       // nesting of the value being read
    char path[256];  // JSON path of the value being read (for messages)
    const char *name; // the input's name (file or "request body")
} Parser;

static int perr(Parser *p, const char *what) {
    return glm_err("%s: %s at byte %zu%s%s", p->name, what, p->i, p->path[0] ? " in " : "", p->path);
}

static void skip_ws(Parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}

static int hex4(Parser *p, unsigned *out) {
    if (p->n - p->i < 4) return perr(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return perr(p, "bad \\u escape");
    }
    *out = v;
    return 0;
}

// the bytes of one UTF-8 sequence starting at s (n available), or 0 when it is not valid UTF-8
static int utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!k || (size_t)k > n) return 0;
    for (int j = 1; j < k; j++)
        if ((s[j] & 0xC0) != 0x80) return 0;
    unsigned cp = k == 1 ? c : k == 2 ? c & 31 : k == 3 ? c & 15 : c & 7;
    for (int j = 1; j < k; j++) cp = cp << 6 | (s[j] & 63);
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static void put_utf8(char *o, size_t *m, unsigned cp) {
    if (cp < 0x80) o[(*m)++] = (char)cp;
    else if (cp < 0x800) o[(*m)++] = (char)(0xC0 | cp >> 6), o[(*m)++] = (char)(0x80 | (cp & 63));
    else if (cp < 0x10000)
        o[(*m)++] = (char)(0xE0 | cp >> 12), o[(*m)++] = (char)(0x80 | (cp >> 6 & 63)), o[(*m)++] = (char)(0x80 | (cp & 63));
    else
        o[(*m)++] = (char)(0xF0 | cp >> 18), o[(*m)++] = (char)(0x80 | (cp >> 12 & 63)),
        o[(*m)++] = (char)(0x80 | (cp >> 6 & 63)), o[(*m)++] = (char)(0x80 | (cp & 63));
}

// a string at p->i (the opening quote), decoded into a malloc'd NUL-terminated buffer
static char *parse_string(Parser *p) {
    p->i++; // "
    size_t start = p->i, cap = 16;
    while (p->i < p->n && p->s[p->i] != '"') p->i += p->s[p->i] == '\\' ? 2 : 1;
    if (p->i >= p->n) {
        perr(p, "unterminated string");
        return NULL;
    }
    cap += p->i - start;
    char *o = malloc(cap);
    if (!o) {
        glm_err("%s: out of memory", p->name);
        return NULL;
    }
    size_t m = 0;
    p->i = start;
    while (p->s[p->i] != '"') {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 0x20) {
            free(o);
            perr(p, c ? "control character in a string" : "NUL byte in a string");
            return NULL;
        }
        if (c != '\\') {
            int k = utf8_len((const unsigned char *)p->s + p->i, p->n - p->i);
            if (!k) {
                free(o);
                perr(p, "invalid UTF-8 in a string");
                return NULL;
            }
            memcpy(o + m, p->s + p->i, (size_t)k);
            m += (size_t)k, p->i += (size_t)k;
            continue;
        }
        p->i++;
        char e = p->s[p->i++];
        unsigned cp;
        switch (e) {
        case '"': o[m++] = '"'; break;
        case '\\': o[m++] = '\\'; break;
        case '/': o[m++] = '/'; break;
        case 'b': o[m++] = '\b'; break;
        case 'f': o[m++] = '\f'; break;
        case 'n': o[m++] = '\n'; break;
        case 'r': o[m++] = '\r'; break;
        case 't': o[m++] = '\t'; break;
        case 'u':
            if (hex4(p, &cp)) goto fail;
            if (cp >= 0xD800 && cp <= 0xDBFF) { // a surrogate pair
                unsigned lo;
                if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                    perr(p, "lone surrogate in a \\u escape");
                    goto fail;
                }
                p->i += 2;
                if (hex4(p, &lo)) goto fail;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    perr(p, "bad surrogate pair");
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                perr(p, "lone surrogate in a \\u escape");
                goto fail;
            }
            if (cp == 0) {
                // cJSON strings end at NUL: refused rather than cut
                perr(p, "\\u0000 in a string is not supported");
                goto fail;
            }
            put_utf8(o, &m, cp);
            break;
        default: perr(p, "bad escape"); goto fail;
        }
    }
    p->i++; // "
    o[m] = 0;
    return o;
fail:
    free(o);
    return NULL;
}

static cJSON *parse_value(Parser *p);

// append ".key" or "[i]" to the path for the value being read; returns the old length to restore
static size_t path_push(Parser *p, const char *key, long idx) {
    size_t old = strlen(p->path);
    if (key) snprintf(p->path + old, sizeof p->path - old, "%s%.40s", old ? "." : "", key);
    else snprintf(p->path + old, sizeof p->path - old, "[%ld]", idx);
    return old;
}

static cJSON *parse_number(Parser *p) {
    size_t a = p->i;
    if (p->s[p->i] == '-') p->i++;
    if (p->i < p->n && p->s[p->i] == '0') p->i++;
    else if (p->i < p->n && p->s[p->i] >= '1' && p->s[p->i] <= '9')
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    else {
        perr(p, "bad number");
        return NULL;
    }
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!(p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')) {
            perr(p, "bad number");
            return NULL;
        }
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
        if (!(p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')) {
            perr(p, "bad number");
            return NULL;
        }
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') p->i++;
    }
    if (p->i - a > 400) {
        perr(p, "number too long");
        return NULL;
    }
    char buf[512];
    memcpy(buf, p->s + a, p->i - a);
    buf[p->i - a] = 0;
    cJSON *r = cJSON_CreateRaw(buf);
    if (!r) glm_err("%s: out of memory", p->name);
    return r;
}

static cJSON *parse_value(Parser *p) {
    skip_ws(p);
    if (p->i >= p->n) {
        perr(p, "unexpected end of input");
        return NULL;
    }
    const char c = p->s[p->i];
    if (c == '{' || c == '[') {
        if (++p->depth > JSON_MAX_DEPTH) {
            perr(p, "nested too deeply");
            return NULL;
        }
        const int obj = c == '{';
        cJSON *r = obj ? cJSON_CreateObject() : cJSON_CreateArray();
        if (!r) {
            glm_err("%s: out of memory", p->name);
            return NULL;
        }
        p->i++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
            p->i++, p->depth--;
            return r;
        }
        for (long idx = 0;; idx++) {
            char *key = NULL;
            if (obj) {
                skip_ws(p);
                if (p->i >= p->n || p->s[p->i] != '"') {
                    perr(p, "expected a key");
                    goto bad;
                }
                if (!(key = parse_string(p))) goto bad;
                skip_ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') {
                    free(key);
                    perr(p, "expected ':'");
                    goto bad;
                }
                p->i++;
            }
            size_t old = path_push(p, key, idx);
            cJSON *v = parse_value(p);
            p->path[old] = 0;
            if (!v) {
                free(key);
                goto bad;
            }
            if (obj) {
                // Python's json.loads keeps the last of repeated keys
                if (cJSON_GetObjectItemCaseSensitive(r, key)) cJSON_ReplaceItemInObjectCaseSensitive(r, key, v);
                else cJSON_AddItemToObject(r, key, v);
                free(key);
            } else cJSON_AddItemToArray(r, v);
            skip_ws(p);
            if (p->i < p->n && p->s[p->i] == ',') {
                p->i++;
                continue;
            }
            if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
                p->i++, p->depth--;
                return r;
            }
            perr(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            goto bad;
        }
    bad:
        cJSON_Delete(r);
        return NULL;
    }
    if (c == '"') {
        char *s = parse_string(p);
        if (!s) return NULL;
        cJSON *r = cJSON_CreateString(s);
        free(s);
        if (!r) glm_err("%s: out of memory", p->name);
        return r;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
    const char *words[3] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(words[k]);
        if (p->n - p->i >= l && memcmp(p->s + p->i, words[k], l) == 0) {
            p->i += l;
            return k == 0 ? cJSON_CreateTrue() : k == 1 ? cJSON_CreateFalse() : cJSON_CreateNull();
        }
    }
    perr(p, "unexpected character");
    return NULL;
}

cJSON *json_parse(const char *text, size_t len, const char *name) {
    if (len > JSON_MAX_BYTES) {
        glm_err("%s: JSON larger than %d MB", name, JSON_MAX_BYTES >> 20);
        return NULL;
    }
    Parser p = {text, len, 0, 0, "", name};
    cJSON *r = parse_value(&p);
    if (!r) return NULL;
    skip_ws(&p);
    if (p.i != p.n) {
        perr(&p, "text after the JSON value");
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

double json_number(const cJSON *v, int *ok) {
    if (cJSON_IsNumber(v)) {
        if (ok) *ok = 1;
        return v->valuedouble;
    }
    if (cJSON_IsRaw(v) && v->valuestring) {
        char *end;
        double d = strtod(v->valuestring, &end);
        if (ok) *ok = *end == 0;
        return d;
    }
    if (ok) *ok = 0;
    return 0;
}

int json_is_number(const cJSON *v) {
    int ok;
    json_number(v, &ok);
    return ok;
}
