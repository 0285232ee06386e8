// SPDX-License-Identifier: MIT
// test_jinja.c - the Jinja interpreter (jinja.c) against Python's jinja2 as transformers configures it: every case of
// tests/jinja/expected.json (written by tests/jinja/make_jinja_cases.py: real chat templates x chat contexts, and
// small edge-case templates) must render byte for byte as Python did, or fail when Python failed / when the case is
// marked as a construct jinja.c rejects. Plus hostile templates (loops, recursion, nesting, output growth) that must
// end with a clean error, and the cJSON entry point on the chat cases.
#include "../jinja.h"
#include "../json.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// read a whole file (NUL-terminated); NULL when missing
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = 0;
    if (len) *len = got;
    return b;
}

// first differing byte, for the failure message
static size_t diff_at(const char *a, size_t an, const char *b, size_t bn) {
    size_t i = 0;
    while (i < an && i < bn && a[i] == b[i]) i++;
    return i;
}

// a template that must fail (parse or render) with a one-line error within a time limit
static void check_fails(const char *name, const char *src, const char *ctx_json) {
    char err[600] = {0};
    clock_t t0 = clock();
    JinjaTemplate *t = jinja_parse(src, strlen(src), err, sizeof err);
    char *out = NULL;
    if (t) {
        size_t n;
        out = jinja_render_json(t, ctx_json, strlen(ctx_json), &n, err, sizeof err);
    }
    double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(!out && err[0] && !strchr(err, '\n') && s < 60, "hostile %s: clean error in %.2f s (%s)", name, s, err);
    free(out);
    jinja_free(t);
}

int main(void) {
    const char *dir = "tests/jinja";
    char path[4096];
    snprintf(path, sizeof path, "%s/expected.json", dir);
    char *exp = slurp(path, NULL);
    CHECK(exp != NULL, "read %s", path);
    if (!exp) return test_done();
    cJSON *root = cJSON_Parse(exp);
    CHECK(root != NULL, "parse expected.json");
    if (!root) return test_done();
    const cJSON *now = cJSON_GetObjectItem(root, "now");
    setenv(JINJA_NOW_ENV, cJSON_IsString(now) ? now->valuestring : "2025-07-26 12:34:56", 1);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    int ncase = 0, nfail = 0;
    cJSON_ArrayForEach(c, cases) {
        ncase++;
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        const cJSON *tf = cJSON_GetObjectItem(c, "template_file"), *ti = cJSON_GetObjectItem(c, "template");
        const cJSON *cf = cJSON_GetObjectItem(c, "context_file"), *eo = cJSON_GetObjectItem(c, "output");
        const cJSON *ee = cJSON_GetObjectItem(c, "error");
        int must_fail = cJSON_IsTrue(cJSON_GetObjectItem(c, "c_must_fail"));
        size_t tlen = 0, clen = 0;
        char *tsrc;
        if (tf) {
            snprintf(path, sizeof path, "%s/%s", dir, tf->valuestring);
            tsrc = slurp(path, &tlen);
        } else {
            tsrc = strdup(ti->valuestring);
            tlen = strlen(tsrc);
        }
        snprintf(path, sizeof path, "%s/%s", dir, cf->valuestring);
        char *ctx = slurp(path, &clen);
        if (!tsrc || !ctx) {
            CHECK(0, "%s: read template/context", name);
            nfail++;
            free(tsrc), free(ctx);
            continue;
        }
        char err[600] = {0};
        JinjaTemplate *t = jinja_parse(tsrc, tlen, err, sizeof err);
        size_t on = 0;
        char *out = NULL;
        int alias = cJSON_IsTrue(cJSON_GetObjectItem(c, "alias_reasoning"));
        if (t && alias) { // messages through jinja_alias_reasoning (transformers' _alias_reasoning_fields)
            cJSON *cj = json_parse(ctx, clen, name);
            if (cj && jinja_alias_reasoning(cJSON_GetObjectItem(cj, "messages")) == 0)
                out = jinja_render(t, cj, &on, err, sizeof err);
            cJSON_Delete(cj);
        } else if (t) out = jinja_render_json(t, ctx, clen, &on, err, sizeof err);
        int ok;
        if (ee || must_fail) {
            ok = out == NULL && err[0] && !strchr(err, '\n');
            if (ok && ee && strstr(ee->valuestring, "TemplateError: ") == ee->valuestring + strlen("render: ")) {
                // raise_exception: the message is carried through
                const char *msg = ee->valuestring + strlen("render: TemplateError: ");
                ok = strstr(err, msg) != NULL;
            }
            CHECK(ok, "%s: error as Python (%s) -> %s", name, ee ? ee->valuestring : "c_must_fail", out ? "rendered" : err);
        } else {
            const char *want = eo->valuestring;
            size_t wn = strlen(want);
            ok = out && on == wn && !memcmp(out, want, wn);
            if (ok) CHECK(1, "%s: %zu bytes identical", name, wn);
            else if (!out) CHECK(0, "%s: error %s", name, err);
            else {
                size_t d = diff_at(out, on, want, wn);
                CHECK(0, "%s: differs at byte %zu (got %zu bytes, want %zu): got [%.60s] want [%.60s]", name, d, on,
                      wn, out + (d > 20 ? d - 20 : 0), want + (d > 20 ? d - 20 : 0));
            }
            // the cJSON entry point: exact with json_parse's tree (numbers kept as text); with cJSON_Parse's
            // own tree for the chat contexts (they hold no integral floats such as 1.0)
            if (ok && !alias) {
                cJSON *cj = json_parse(ctx, clen, name);
                size_t on2 = 0;
                char *out2 = cj ? jinja_render(t, cj, &on2, err, sizeof err) : NULL;
                CHECK(out2 && on2 == wn && !memcmp(out2, want, wn), "%s: same through json_parse + jinja_render", name);
                free(out2);
                cJSON_Delete(cj);
            }
            if (ok && tf && !alias) {
                cJSON *cj = cJSON_Parse(ctx);
                size_t on2 = 0;
                char *out2 = jinja_render(t, cj, &on2, err, sizeof err);
                CHECK(out2 && on2 == wn && !memcmp(out2, want, wn), "%s: same through cJSON_Parse + jinja_render", name);
                free(out2);
                cJSON_Delete(cj);
            }
        }
        nfail += !ok;
        free(out);
        jinja_free(t);
        free(tsrc), free(ctx);
    }
    printf("# %d jinja cases, %d failed\n", ncase, nfail);
    cJSON_Delete(root);
    free(exp);

    // hostile templates: bounded time and memory, one clean error line
    const char *ctx = "{\"x\": \"abc\"}";
    check_fails("nested range loops", "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}", ctx);
    check_fails("macro recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", ctx);
    check_fails("string doubling", "{% set ns = namespace(s='xy') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", ctx);
    check_fails("list doubling", "{% set ns = namespace(l=[1, 2]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}", ctx);
    check_fails("string repeat", "{{ 'x' * 10000000000 }}", ctx);
    check_fails("output flood", "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' }}{% endfor %}{% endfor %}", ctx);
    {
        size_t depth = 100000;
        char *deep = malloc(2 * depth + 16);
        char *p = deep;
        p += sprintf(p, "{{ ");
        for (size_t i = 0; i < depth; i++) *p++ = '(';
        *p++ = '1';
        for (size_t i = 0; i < depth; i++) *p++ = ')';
        sprintf(p, " }}");
        check_fails("deep parentheses", deep, ctx);
        p = deep;
        for (size_t i = 0; i < depth / 20; i++) p += sprintf(p, "{%% if 1 %%}");
        *p = 0;
        check_fails("deep if nesting", deep, ctx);
        free(deep);
    }
    check_fails("integer overflow", "{{ 9223372036854775807 + 1 }}", ctx);
    check_fails("bad context", "{{ x }}", "[1, 2");
    // json_parse: Python's json.loads types through cJSON, clean errors, no leak on bad input
    {
        char err[200];
        const char *js = "{\"a\": 1.0, \"b\": 1, \"c\": [2.50, -0.0, 1e16, 12345678901234567890.0], \"a\": 3.0, "
                         "\"s\": \"\\u00e9\\ud83d\\ude00\"}";
        cJSON *cj = json_parse(js, strlen(js), "test");
        const char *src = "{{ a }} {{ b }} {{ c }} {{ c|tojson }} {{ s }} {{ a is float }}";
        JinjaTemplate *t = jinja_parse(src, strlen(src), err, sizeof err);
        size_t n;
        char *o = cj && t ? jinja_render(t, cj, &n, err, sizeof err) : NULL;
        const char *want = "3.0 1 [2.5, -0.0, 1e+16, 1.2345678901234567e+19] [2.5, -0.0, 1e+16, 1.2345678901234567e+19] "
                           "\xc3\xa9\xf0\x9f\x98\x80 True";
        CHECK(o && !strcmp(o, want), "json_parse keeps float/int apart: [%s]", o ? o : err);
        free(o);
        jinja_free(t);
        cJSON_Delete(cj);
        const char *bad[] = {"{\"a\": [1, 2", "{\"a\": {\"b\": [tru]}}", "[1, 2] x", "\"\\u0000\"", "{\"x\": 01}", ""};
        for (int i = 0; i < 6; i++) {
            err[0] = 0;
            glm_errmsg[0] = 0;
            cJSON *b = json_parse(bad[i], strlen(bad[i]), "test");
            CHECK(!b && glm_errmsg[0], "json_parse rejects %s (%s)", bad[i], glm_errmsg);
            cJSON_Delete(b);
        }
    }
    // a NULL / empty template is fine; a NULL context renders with no variables
    {
        char err[200];
        JinjaTemplate *t = jinja_parse("", 0, err, sizeof err);
        size_t n = 99;
        char *o = t ? jinja_render(t, NULL, &n, err, sizeof err) : NULL;
        CHECK(o && n == 0 && !o[0], "empty template renders empty");
        free(o);
        jinja_free(t);
    }
    return test_done();
}
