// SPDX-License-Identifier: MIT
// test_tokenizer.c - tokenizer.c against HuggingFace `tokenizers`: ids and decodes of tests/data/tokenizer_cases.json
// and tokenizer_cases_extra.json (tests/golden/make_tokenizer_cases.py), streaming decode, chat template strings,
// broken tokenizer.json files, speed of long prompts and of a 150k-merge vocabulary.
#include "../tokenizer.h"
#include "../chat_template.h"
#include "../gguf_model.h"
#include "../safetensors.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <time.h>

static const char *TOK_PATH = "weights/tiny-glm4v-moe/tokenizer.json";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static cJSON *load_json_file(const char *path) {
    size_t n;
    char *s = read_file(path, &n, 1 << 28);
    if (!s) return NULL;
    cJSON *j = cJSON_ParseWithLength(s, n);
    free(s);
    return j;
}

// print a string with escapes (diagnostics)
static void show(const char *label, const char *s) {
    printf("#   %s: \"", label);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') printf("\\n");
        else if (*p == '\r') printf("\\r");
        else if (*p == '\t') printf("\\t");
        else if (*p < 32) printf("\\x%02x", *p);
        else putchar(*p);
    }
    printf("\"\n");
}

static void show_ids(const char *label, const int *ids, int n) {
    printf("#   %s (%d):", label, n);
    for (int i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

// ids of a JSON array
static int *json_ids(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int *ids = xmalloc((size_t)(*n + 1) * sizeof(int));
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next) ids[i++] = (int)e->valuedouble;
    return ids;
}

// decode ids one at a time through a StreamDecoder (malloc'd result)
static char *stream_decode(const Tokenizer *t, const int *ids, int n, int skip, int *ok) {
    StreamDecoder sd;
    stream_init(&sd, t, skip);
    size_t cap = 256, len = 0;
    char *all = xmalloc(cap), buf[4096];
    all[0] = 0;
    *ok = 1;
    for (int i = 0; i <= n; i++) {
        int k = i < n ? stream_feed(&sd, ids[i], buf, sizeof buf) : stream_flush(&sd, buf, sizeof buf);
        if (k < 0 || (size_t)k != strlen(buf)) {
            *ok = 0;
            break;
        }
        if (len + (size_t)k + 1 > cap) {
            while (len + (size_t)k + 1 > cap) cap *= 2;
            all = realloc(all, cap);
        }
        memcpy(all + len, buf, (size_t)k + 1);
        len += (size_t)k;
    }
    return all;
}

// check one {"text","ids","decoded","decoded_skip_special"} case; returns the number of mismatches
static int check_case(const Tokenizer *t, const cJSON *c, const char *what, int idx) {
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    const char *dec = cJSON_GetObjectItem(c, "decoded")->valuestring;
    const char *decs = cJSON_GetObjectItem(c, "decoded_skip_special")->valuestring;
    int nref, *ref = json_ids(cJSON_GetObjectItem(c, "ids"), &nref);
    int *ids = NULL, bad = 0;
    int n = tokenizer_encode(t, text, strlen(text), &ids);
    if (n != nref || memcmp(ids, ref, (size_t)n * sizeof(int)) != 0) {
        printf("# %s case %d: ids differ\n", what, idx);
        show("text", text);
        show_ids("hf", ref, nref);
        if (n >= 0) show_ids("c ", ids, n);
        else printf("#   error: %s\n", glm_errmsg);
        bad++;
    }
    for (int skip = 0; skip < 2; skip++) {
        const char *want = skip ? decs : dec;
        char *got = tokenizer_decode(t, ref, nref, skip);
        if (strcmp(got, want) != 0) {
            printf("# %s case %d: decode(skip_special=%d) differs\n", what, idx, skip);
            show("hf", want);
            show("c ", got);
            bad++;
        }
        int ok;
        char *st = stream_decode(t, ref, nref, skip, &ok);
        if (!ok || strcmp(st, want) != 0) {
            printf("# %s case %d: stream decode(skip_special=%d) differs\n", what, idx, skip);
            show("hf", want);
            show("c ", st);
            bad++;
        }
        free(st);
        free(got);
    }
    free(ids);
    free(ref);
    return bad;
}

// the reference cases that came with the fixtures
static void test_reference_cases(const Tokenizer *t) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer_cases.json", test_data_dir());
    cJSON *j = load_json_file(path);
    CHECK(j != NULL, "read %s", path);
    if (!j) return;
    const cJSON *sp = cJSON_GetObjectItem(j, "special_ids");
    int bad = 0, n = 0;
    for (const cJSON *e = sp ? sp->child : NULL; e; e = e->next, n++)
        if (tokenizer_token_id(t, e->string) != (int)e->valuedouble ||
            strcmp(tokenizer_token_str(t, (int)e->valuedouble), e->string) != 0)
            bad++;
    CHECK(n == 36 && bad == 0, "special token ids and strings (%d tokens, %d wrong)", n, bad);
    CHECK(tokenizer_vocab_size(t) == 1060, "vocab size 1060 (got %d)", tokenizer_vocab_size(t));
    CHECK(tokenizer_token_id(t, "Ġ") == 220 && tokenizer_token_id(t, "nope-not-a-token") == -1 &&
              tokenizer_token_str(t, 220) && strcmp(tokenizer_token_str(t, 220), "Ġ") == 0 &&
              tokenizer_token_str(t, 5000) == NULL && tokenizer_token_str(t, -1) == NULL,
          "token_id / token_str on vocab tokens and unknown ids");
    const cJSON *cases = cJSON_GetObjectItem(j, "cases");
    int i = 0, nbad = 0, round = 0;
    for (const cJSON *c = cases->child; c; c = c->next, i++) {
        nbad += check_case(t, c, "tokenizer_cases", i) != 0;
        // round trip: decode(encode(text)) == text
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        int *ids;
        int k = tokenizer_encode(t, text, strlen(text), &ids);
        char *back = k >= 0 ? tokenizer_decode(t, ids, k, 0) : NULL;
        round += back && strcmp(back, text) == 0;
        free(back);
        free(ids);
    }
    CHECK(i > 0 && nbad == 0, "tokenizer_cases.json: ids, decode, decode(skip_special), streaming (%d cases, %d bad)",
          i, nbad);
    CHECK(round == i, "tokenizer_cases.json: decode(encode(text)) == text (%d of %d)", round, i);
    cJSON_Delete(j);
}

// tokenizer.json of a variant: the tiny file with the patch of make_tokenizer_cases.py applied
static char *patched_json(const cJSON *base, const cJSON *patch) {
    cJSON *d = cJSON_Duplicate(base, 1);
    for (const cJSON *p = patch->child; p; p = p->next) {
        if (strcmp(p->string, "added_tokens_append") == 0) {
            cJSON *added = cJSON_GetObjectItem(d, "added_tokens");
            for (const cJSON *e = p->child; e; e = e->next) cJSON_AddItemToArray(added, cJSON_Duplicate(e, 1));
        } else if (strcmp(p->string, "model") == 0) {
            cJSON *m = cJSON_GetObjectItem(d, "model");
            for (const cJSON *e = p->child; e; e = e->next) {
                cJSON_DeleteItemFromObjectCaseSensitive(m, e->string);
                cJSON_AddItemToObject(m, e->string, cJSON_Duplicate(e, 1));
            }
        } else if (strcmp(p->string, "merges_keep") == 0) {
            cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "model"), "merges");
            while (cJSON_GetArraySize(m) > (int)p->valuedouble) cJSON_DeleteItemFromArray(m, cJSON_GetArraySize(m) - 1);
        } else if (strcmp(p->string, "merges_legacy") == 0) {
            cJSON *m = cJSON_GetObjectItem(d, "model"), *legacy = cJSON_CreateArray();
            for (const cJSON *e = cJSON_GetObjectItem(m, "merges")->child; e; e = e->next) {
                char buf[256];
                snprintf(buf, sizeof buf, "%s %s", e->child->valuestring, e->child->next->valuestring);
                cJSON_AddItemToArray(legacy, cJSON_CreateString(buf));
            }
            cJSON_ReplaceItemInObjectCaseSensitive(m, "merges", legacy);
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(d, p->string);
            cJSON_AddItemToObject(d, p->string, cJSON_Duplicate(p, 1));
        }
    }
    char *s = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return s;
}

// tokenizer_cases_extra.json: more strings, and the variants exercising the other tokenizer.json options
static void test_extra_cases(const Tokenizer *tiny) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer_cases_extra.json", test_data_dir());
    cJSON *j = load_json_file(path), *base = load_json_file(TOK_PATH);
    CHECK(j && base, "read %s and %s", path, TOK_PATH);
    if (!j || !base) return;
    for (const cJSON *v = cJSON_GetObjectItem(j, "variants")->child; v; v = v->next) {
        const char *name = cJSON_GetObjectItem(v, "name")->valuestring;
        char *js = patched_json(base, cJSON_GetObjectItem(v, "patch"));
        Tokenizer *t = tokenizer_load_json(js, strlen(js), name);
        free(js);
        CHECK(t != NULL, "variant %s loads%s%s", name, t ? "" : ": ", t ? "" : glm_errmsg);
        if (!t) continue;
        int i = 0, nbad = 0, dbad = 0, nd = 0;
        for (const cJSON *c = cJSON_GetObjectItem(v, "cases")->child; c; c = c->next, i++)
            nbad += check_case(t, c, name, i) != 0;
        for (const cJSON *c = cJSON_GetObjectItem(v, "decode_cases")->child; c; c = c->next, nd++) {
            int n, *ids = json_ids(cJSON_GetObjectItem(c, "ids"), &n), bad = 0;
            for (int skip = 0; skip < 2; skip++) {
                const char *want = cJSON_GetObjectItem(c, skip ? "decoded_skip_special" : "decoded")->valuestring;
                char *got = tokenizer_decode(t, ids, n, skip);
                int ok;
                char *st = stream_decode(t, ids, n, skip, &ok);
                if (strcmp(got, want) || !ok || strcmp(st, want)) {
                    printf("# %s decode case %d (skip_special=%d) differs\n", name, nd, skip);
                    show_ids("ids", ids, n);
                    show("hf    ", want);
                    show("c     ", got);
                    show("stream", st);
                    bad = 1;
                }
                free(got);
                free(st);
            }
            dbad += bad;
            free(ids);
        }
        CHECK(nbad == 0, "variant %s: ids, decode, decode(skip_special), streaming equal HF (%d cases, %d bad)", name,
              i, nbad);
        if (nd) CHECK(dbad == 0, "variant %s: decode of random id sequences equals HF (%d cases, %d bad)", name, nd, dbad);
        tokenizer_free(t);
    }
    // invalid UTF-8 input is encoded as its U+FFFD-replaced text
    int nb = 0, bad = 0;
    for (const cJSON *c = cJSON_GetObjectItem(j, "invalid_utf8")->child; c; c = c->next, nb++) {
        const char *hex = cJSON_GetObjectItem(c, "hex")->valuestring;
        size_t len = strlen(hex) / 2;
        char *raw = xmalloc(len + 1);
        for (size_t i = 0; i < len; i++) {
            unsigned x;
            sscanf(hex + 2 * i, "%2x", &x);
            raw[i] = (char)x;
        }
        int nref, *ref = json_ids(cJSON_GetObjectItem(c, "ids"), &nref), *ids;
        int n = tokenizer_encode(tiny, raw, len, &ids);
        if (n != nref || memcmp(ids, ref, (size_t)nref * sizeof(int))) {
            printf("# invalid UTF-8 case %s differs\n", hex);
            bad++;
        }
        free(ids);
        free(ref);
        free(raw);
    }
    CHECK(nb > 0 && bad == 0, "invalid UTF-8 input encodes like its U+FFFD replacement in HF (%d cases)", nb);
    cJSON_Delete(j);
    cJSON_Delete(base);
}

// the HF processor cases of tests/data/golden: the prompt encodes to input_ids (image token runs collapsed to the
// single <|image|> of the prompt text) and generate.ids decode to "generated" (ids past the vocab are skipped)
static void test_golden_prompts(const Tokenizer *t) {
    static const char *names[] = {"moe.text", "moe.image", "dense.text", "dense.video"};
    int img = tokenizer_token_id(t, "<|image|>");
    for (int c = 0; c < 4; c++) {
        char path[512];
        snprintf(path, sizeof path, "%s/golden/%s.json", test_data_dir(), names[c]);
        cJSON *j = load_json_file(path);
        snprintf(path, sizeof path, "%s/golden/%s.safetensors", test_data_dir(), names[c]);
        SFile f;
        if (!j || sf_open(&f, path) != 0) {
            CHECK(0, "golden %s: read json + safetensors", names[c]);
            cJSON_Delete(j);
            continue;
        }
        const STensor *in = sf_find(&f, "input.input_ids"), *gen = sf_find(&f, "generate.ids");
        if (c < 3) { // video prompts are expanded with frame tokens and timestamps by the processor
            const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
            int *ids, n = tokenizer_encode(t, prompt, strlen(prompt), &ids), m = 0, same = in && in->dtype == DT_I64;
            const int64_t *ref = in ? in->data : NULL;
            for (int64_t i = 0; same && i < in->shape[1]; i++) {
                if (ref[i] == img && i > 0 && ref[i - 1] == img) continue;
                same = m < n && ids[m++] == ref[i];
            }
            CHECK(same && m == n, "golden %s: prompt encodes to HF input_ids (%d tokens)", names[c], n);
            free(ids);
        }
        if (gen && gen->dtype == DT_I64) {
            int n = (int)(gen->nbytes / 8), ids[64], ok;
            for (int i = 0; i < n && i < 64; i++) ids[i] = (int)((const int64_t *)gen->data)[i];
            const char *want = cJSON_GetObjectItem(j, "generated")->valuestring;
            char *got = tokenizer_decode(t, ids, n, 0), *st = stream_decode(t, ids, n, 0, &ok);
            CHECK(strcmp(got, want) == 0 && ok && strcmp(st, want) == 0,
                  "golden %s: generate.ids decode (and stream-decode) to HF's text", names[c]);
            free(got);
            free(st);
        }
        sf_close(&f);
        cJSON_Delete(j);
    }
}

// streaming decode holds back split characters and emits them once complete
static void test_stream(const Tokenizer *t) {
    const char *text = "a你😀b"; // with the tiny vocab every multi-byte char spans several tokens
    int *ids, n = tokenizer_encode(t, text, strlen(text), &ids);
    StreamDecoder sd;
    stream_init(&sd, t, 0);
    char buf[256], all[256] = "";
    int fffd = 0, held = 0;
    for (int i = 0; i < n; i++) {
        int k = stream_feed(&sd, ids[i], buf, sizeof buf);
        fffd += strstr(buf, "\xEF\xBF\xBD") != NULL;
        held += k == 0;
        strcat(all, buf);
    }
    stream_flush(&sd, buf, sizeof buf);
    strcat(all, buf);
    CHECK(n > 5 && held > 0 && fffd == 0 && strcmp(all, text) == 0,
          "stream: split multi-byte chars are held back and emitted whole (%d tokens, %d held)", n, held);
    // an unfinished character at the end: flush emits U+FFFD, as the full decode does
    stream_init(&sd, t, 0);
    int k1 = stream_feed(&sd, ids[0], buf, sizeof buf);
    int k2 = stream_feed(&sd, ids[1], buf, sizeof buf); // first byte(s) of 你
    int k3 = stream_flush(&sd, buf, sizeof buf);
    char *full = tokenizer_decode(t, ids, 2, 0);
    CHECK(k1 == 1 && k2 == 0 && k3 == 3 && strcmp(buf, "\xEF\xBF\xBD") == 0 && strcmp(full, "a\xEF\xBF\xBD") == 0,
          "stream: flush turns a dangling partial character into U+FFFD like decode");
    free(full);
    // a too-small buffer is refused without consuming anything
    stream_init(&sd, t, 0);
    int small = stream_feed(&sd, ids[0], buf, 1);
    int again = stream_feed(&sd, ids[0], buf, sizeof buf);
    CHECK(small == -1 && again == 1 && strcmp(buf, "a") == 0, "stream: too-small output buffer returns -1");
    free(ids);
    // skip_special in streaming
    int sp[3] = {tokenizer_token_id(t, "<|user|>"), 64, tokenizer_token_id(t, "<|assistant|>")};
    stream_init(&sd, t, 1);
    int a = stream_feed(&sd, sp[0], buf, sizeof buf), b = stream_feed(&sd, sp[1], buf, sizeof buf);
    CHECK(a == 0 && b == 1 && strcmp(buf, "a") == 0, "stream: skip_special drops special tokens");
}

static void check_render(const char *got, const char *want, const char *what) {
    int ok = got && strcmp(got, want) == 0;
    CHECK(ok, "chat template: %s", what);
    if (!ok) {
        show("want", want);
        show("got ", got ? got : glm_errmsg);
    }
}

// the conversation (JSON text) through the chat template; think: -1 leaves enable_thinking undefined
static char *render(const ChatTemplate *ct, const char *messages, int think, int add_generation_prompt) {
    cJSON *m = cJSON_Parse(messages), *kw = cJSON_CreateObject();
    if (think >= 0) cJSON_AddBoolToObject(kw, "enable_thinking", think);
    size_t len;
    char *s = chat_template_render(ct, m, NULL, add_generation_prompt, kw, &len);
    cJSON_Delete(m), cJSON_Delete(kw);
    return s;
}

// docs/SPEC.md 9.3 renderings, by the built-in template (a model folder without one) through jinja.c
static void test_chat(const Tokenizer *t) {
    ChatTemplate ct;
    if (chat_template_load(&ct, "weights/tiny-glm4v-moe", NULL)) {
        CHECK(0, "chat_template_load: %s", glm_errmsg);
        return;
    }
    CHECK(strcmp(ct.origin, "built-in GLM-4.5V template") == 0, "a folder without a template gets the built-in one");
#define USER(x) "[{\"role\": \"user\", \"content\": \"" x "\"}]"
    char *s = render(&ct, USER("Describe this picture."), -1, 1);
    check_render(s, "[gMASK]<sop><|user|>\nDescribe this picture.<|assistant|>", "plain");
    free(s);
    s = render(&ct, "[{\"role\": \"system\", \"content\": \"You are a helpful assistant\"}, "
                    "{\"role\": \"user\", \"content\": \"Describe this picture.\"}]", -1, 1);
    check_render(s, "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nDescribe this picture.<|assistant|>",
                 "--system");
    free(s);
    s = render(&ct, USER("Describe this picture."), 0, 1);
    check_render(s, "[gMASK]<sop><|user|>\nDescribe this picture./nothink<|assistant|>\n<think></think>", "--no-think");
    free(s);
    s = render(&ct, USER("Be brief /nothink"), 0, 1);
    check_render(s, "[gMASK]<sop><|user|>\nBe brief /nothink<|assistant|>\n<think></think>",
                 "--no-think, text already ending with /nothink");
    free(s);
    s = render(&ct, USER("Be brief /nothink"), 1, 1);
    check_render(s, "[gMASK]<sop><|user|>\nBe brief /nothink<|assistant|>", "thinking on keeps the text as is");
    free(s);
    s = render(&ct, "[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x.png\"}}, "
                    "{\"type\": \"text\", \"text\": \"What is this?\"}]}]", -1, 1);
    check_render(s, "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>What is this?<|assistant|>",
                 "one image");
    free(s);
    s = render(&ct, "[{\"role\": \"system\", \"content\": \"Sys\"}, {\"role\": \"user\", \"content\": [{\"type\": \"image\"}, "
                    "{\"type\": \"image_url\", \"image_url\": {\"url\": \"y.png\"}}, {\"type\": \"video_url\", \"video_url\": "
                    "{\"url\": \"v/\"}}, {\"type\": \"text\", \"text\": \"Compare.\"}]}]", 0, 1);
    check_render(s,
                 "[gMASK]<sop><|system|>\nSys<|user|>\n<|begin_of_image|><|image|><|end_of_image|>"
                 "<|begin_of_image|><|image|><|end_of_image|><|begin_of_video|><|video|><|end_of_video|>Compare./nothink"
                 "<|assistant|>\n<think></think>",
                 "two images + video, system, no-think");
    // the prompt tokenizes with the special tokens as single ids
    int *ids, n = s ? tokenizer_encode(t, s, strlen(s), &ids) : 0;
    CHECK(n > 4 && ids[0] == 1026 && ids[1] == 1028 && ids[2] == 1030 && ids[n - 1] == 1046 && ids[n - 2] == 1045,
          "rendered prompt encodes to [gMASK] <sop> <|system|> ... <think> </think>");
    if (n > 0) free(ids);
    free(s);

    // multi-turn: the confirmed GLM-4.5 rendering of the template's own example (docs/SPEC.md 9.3)
    s = render(&ct, "[{\"role\": \"system\", \"content\": \"You are a helpful assistant\"}, {\"role\": \"user\", \"content\": "
                    "\"Hello\"}, {\"role\": \"assistant\", \"content\": \"Hi there\"}, {\"role\": \"user\", \"content\": "
                    "\"How are you?\"}]", -1, 1);
    check_render(s,
                 "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\n<think></think>\n"
                 "Hi there<|user|>\nHow are you?<|assistant|>",
                 "multi-turn (docs/SPEC.md 9.3 example)");
    free(s);
#define CONV2 "[{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"Q1\"}]}, " \
              "{\"role\": \"assistant\", \"content\": \"<think>\\nlong reasoning\\n</think>\\n\\n  Answer one.  \\n\"}, " \
              "{\"role\": \"user\", \"content\": \"Q2\"}"
    s = render(&ct, CONV2 "]", 0, 1);
    check_render(s,
                 "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Q1/nothink<|assistant|>\n"
                 "<think></think>\nAnswer one.<|user|>\nQ2/nothink<|assistant|>\n<think></think>",
                 "multi-turn: earlier reasoning dropped, content stripped, no-think");
    free(s);
    s = render(&ct, CONV2 ", {\"role\": \"assistant\", \"content\": \"   \"}]", 1, 0);
    check_render(s,
                 "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>Q1<|assistant|>\n"
                 "<think></think>\nAnswer one.<|user|>\nQ2<|assistant|>\n<think></think>",
                 "multi-turn: empty assistant content, no generation prompt");
    free(s);
    chat_template_free(&ct);
}

// a broken tokenizer.json returns NULL with a one-line message naming the file
static void expect_fail(const char *json, size_t len, const char *what, const char *needle) {
    glm_errmsg[0] = 0;
    Tokenizer *t = tokenizer_load_json(json, len, "bad/tokenizer.json");
    int ok = t == NULL && strncmp(glm_errmsg, "bad/tokenizer.json: ", 20) == 0 && !strchr(glm_errmsg, '\n') &&
             (!needle || strstr(glm_errmsg, needle));
    CHECK(ok, "broken tokenizer.json (%s) -> NULL: %s", what, glm_errmsg);
    tokenizer_free(t);
}

#define MINI_HEAD "{\"version\":\"1.0\",\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,\"decoder\":null,"
#define FLAGS "\"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false"
#define MINI_VOCAB "\"vocab\":{\"a\":0,\"b\":1,\"ab\":2}"

static void test_broken(void) {
    static const struct {
        const char *json, *what, *needle;
    } cases[] = {
        {"{ not json", "not JSON", "JSON"},
        {"[1, 2]", "array root", "object"},
        {"{}", "no model", "model"},
        {"{\"model\": 7}", "model not an object", "model"},
        {"{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "no vocab", "vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", "vocab is an array", "vocab"},
        {"{\"model\": {\"type\": \"BPE\", " MINI_VOCAB "}}", "no merges", "merges"},
        {"{\"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": {}}}", "merges an object", "merges"},
        {"{\"model\": {\"vocab\": {\"a\": -1}, \"merges\": []}}", "negative id", "vocab"},
        {"{\"model\": {\"vocab\": {\"a\": 1.5}, \"merges\": []}}", "fractional id", "vocab"},
        {"{\"model\": {\"vocab\": {\"a\": \"0\"}, \"merges\": []}}", "string id", "vocab"},
        {"{\"model\": {\"vocab\": {\"a\": 1e12}, \"merges\": []}}", "huge id", "vocab"},
        {"{\"model\": {\"vocab\": {\"a\": 99999999}, \"merges\": []}}", "id out of range", "vocab"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [[\"a\", \"zz\"]]}}", "merge names an unknown token", "zz"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [\"b a\"]}}", "merged token missing", "ba"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [\"a b c\"]}}", "legacy merge with 3 parts", "merges[0]"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [\"a b\", [\"a\", \"b\"]]}}", "mixed merge kinds", "merges[1]"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [5]}}", "merge is a number", "merges[0]"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [[\"a\"]]}}", "merge pair of one", "merges[0]"},
        {"{\"model\": {\"type\": \"WordPiece\", " MINI_VOCAB ", \"merges\": []}}", "WordPiece model", "WordPiece"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [], \"dropout\": 0.1}}", "BPE dropout", "dropout"},
        {"{\"model\": {" MINI_VOCAB ", \"merges\": [], \"ignore_merges\": 3}}", "bool field is a number", "model"},
        {"{\"normalizer\": {\"type\": \"NFC\"}, \"model\": {" MINI_VOCAB ", \"merges\": []}}", "NFC normalizer", "NFC"},
        {"{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {" MINI_VOCAB ", \"merges\": []}}",
         "Metaspace pre-tokenizer", "Metaspace"},
        {"{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\"}]}, \"model\": {" MINI_VOCAB
         ", \"merges\": []}}",
         "Digits inside a Sequence", "Digits"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\", "
         "\"invert\": false}, \"model\": {" MINI_VOCAB ", \"merges\": []}}",
         "bad Split regex", "regex"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": \"Sideways\"}, "
         "\"model\": {" MINI_VOCAB ", \"merges\": []}}",
         "unknown Split behavior", "Split"},
        {"{\"decoder\": {\"type\": \"WordPiece\"}, \"model\": {" MINI_VOCAB ", \"merges\": []}}", "WordPiece decoder",
         "WordPiece"},
        {"{\"version\": \"2.0\", \"model\": {" MINI_VOCAB ", \"merges\": []}}", "unknown version", "version"},
        {"{\"added_tokens\": 5, \"model\": {" MINI_VOCAB ", \"merges\": []}}", "added_tokens not an array",
         "added_tokens"},
        {"{\"added_tokens\": [{\"id\": 3}], \"model\": {" MINI_VOCAB ", \"merges\": []}}", "added token without content",
         "added_tokens[0]"},
        {"{\"added_tokens\": [{\"id\": 9, \"content\": \"<x>\", \"special\": true, " FLAGS "}], \"model\": {" MINI_VOCAB
         ", \"merges\": []}}",
         "added token id that tokenizers would not give", "added_tokens[0]"},
        {"{\"added_tokens\": [{\"id\": 4294967296, \"content\": \"<x>\"}], \"model\": {" MINI_VOCAB ", \"merges\": []}}",
         "added token id out of range", "added_tokens[0]"},
        {"{\"added_tokens\": [{\"id\": 3, \"content\": \"\", \"special\": true, " FLAGS "}], \"model\": {" MINI_VOCAB ", \"merges\": []}}",
         "empty added token", "added_tokens[0]"},
        {"{\"added_tokens\": [{\"id\": 3, \"content\": \"<x>\", \"special\": \"yes\"}], \"model\": {" MINI_VOCAB
         ", \"merges\": []}}",
         "added token flag not a bool", "added_tokens[0]"},
        {"{\"added_tokens\": [{\"id\": 3, \"content\": \"<x>\", \"special\": true}], \"model\": {" MINI_VOCAB
         ", \"merges\": []}}",
         "added token flags missing", "added_tokens[0]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_fail(cases[i].json, strlen(cases[i].json), cases[i].what, cases[i].needle);
    expect_fail("", 0, "empty file", "JSON");
    expect_fail("{} {}", 5, "trailing characters", "trailing");
    expect_fail("{\"model\": {\"vocab\": {\"\xff\": 0}, \"merges\": []}}", 41, "invalid UTF-8", "UTF-8");
    // a truncated real file
    size_t len;
    char *full = read_file(TOK_PATH, &len, 1 << 26);
    if (full) {
        expect_fail(full, len / 2, "truncated tokenizer.json", "JSON");
        free(full);
    }
    Tokenizer *t = tokenizer_load("no/such/tokenizer.json");
    CHECK(t == NULL && strstr(glm_errmsg, "no/such/tokenizer.json"), "missing file -> NULL: %s", glm_errmsg);
    // a minimal valid file works
    const char *ok = MINI_HEAD "\"model\": {" MINI_VOCAB ", \"merges\": [\"a b\"]}}";
    t = tokenizer_load_json(ok, strlen(ok), "mini");
    int *ids, n = t ? tokenizer_encode(t, "abba", 4, &ids) : -1;
    CHECK(t && n == 3 && ids[0] == 2 && ids[1] == 1 && ids[2] == 0, "minimal tokenizer.json: \"abba\" -> ab b a");
    if (n >= 0) free(ids);
    tokenizer_free(t);
}

// long inputs are fast (linear-ish), pathological ones included
static void test_speed(const Tokenizer *t) {
    const char *chunk = "The quick brown fox jumps over the lazy dog, 1234567 times! 日本語のテキスト 😀 "
                        "<|user|> x'LL\tdon't\n\n  indented   code(x) { return y; }\r\n";
    size_t cl = strlen(chunk), n = 100000;
    char *text = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = chunk[i % cl];
    // cut at a character boundary
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80) n--;
    text[n] = 0;
    int *ids;
    double t0 = now_s();
    int k = tokenizer_encode(t, text, n, &ids);
    double dt = now_s() - t0;
    CHECK(k > 10000 && dt < 1.0, "100 KB mixed prompt: %d tokens in %.3f s", k, dt);
    char *back = k > 0 ? tokenizer_decode(t, ids, k, 0) : NULL;
    CHECK(back && strcmp(back, text) == 0, "100 KB prompt round trip");
    free(back);
    if (k >= 0) free(ids);
    static const char *fills[] = {" ", "a", "\n", "1", "!", " \t", "<|", "\xe4\xb8\xad"};
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        size_t fl = strlen(fills[f]);
        for (size_t i = 0; i + fl <= 100000; i += fl) memcpy(text + i, fills[f], fl);
        size_t m = 100000 / fl * fl;
        t0 = now_s();
        k = tokenizer_encode(t, text, m, &ids);
        dt = now_s() - t0;
        CHECK(k > 0 && dt < 2.0, "100 KB of \"%s\" repeated: %d tokens in %.3f s", f == 2 ? "\\n" : f == 5 ? " \\t" : fills[f],
              k, dt);
        if (k >= 0) free(ids);
    }
    // random bytes (invalid UTF-8 included)
    uint32_t r = 12345;
    for (size_t i = 0; i < 100000; i++) {
        r = r * 1103515245u + 12345u;
        text[i] = (char)(r >> 16);
    }
    t0 = now_s();
    k = tokenizer_encode(t, text, 100000, &ids);
    dt = now_s() - t0;
    CHECK(k > 0 && dt < 2.0, "100 KB of random bytes: %d tokens in %.3f s", k, dt);
    if (k >= 0) free(ids);
    free(text);
}

// a GLM-sized vocabulary (256 byte chars + 150k merges of lowercase letters, ~4 MB of JSON) loads fast
static void test_big_vocab(void) {
    size_t cap = 8 << 20, n = 0;
    char *js = xmalloc(cap);
#define EMIT(...) n += (size_t)snprintf(js + n, cap - n, __VA_ARGS__)
    EMIT("{\"version\":\"1.0\",\"added_tokens\":[{\"id\":150256,\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
         "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
         "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}"
         "\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\","
         "\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]},"
         "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"vocab\":{");
    // byte chars: printable ASCII except '"' and '\\' are themselves; escape those two
    int id = 0;
    for (int b = 33; b <= 126; b++) EMIT("%s\"%s%c\":%d", id ? "," : "", b == '"' || b == '\\' ? "\\" : "", b, id), id++;
    for (int c = 256; c < 256 + 162; c++) { // the remaining byte chars (U+0100...)
        char u[4] = {(char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)), 0};
        EMIT(",\"%s\":%d", u, id++);
    }
    // words over a..z of length 2..4: prefix + last letter
    int nmerge = 0, target = 150000;
    for (int len = 2; len <= 4 && nmerge < target; len++) {
        int total = 1;
        for (int i = 0; i < len; i++) total *= 26;
        for (int w = 0; w < total && nmerge < target; w++, nmerge++) {
            char s[8];
            for (int i = 0, x = w; i < len; i++, x /= 26) s[len - 1 - i] = (char)('a' + x % 26);
            s[len] = 0;
            EMIT(",\"%s\":%d", s, id++);
        }
    }
    EMIT("},\"merges\":[");
    nmerge = 0;
    for (int len = 2; len <= 4 && nmerge < target; len++) {
        int total = 1;
        for (int i = 0; i < len; i++) total *= 26;
        for (int w = 0; w < total && nmerge < target; w++, nmerge++) {
            char s[8];
            for (int i = 0, x = w; i < len; i++, x /= 26) s[len - 1 - i] = (char)('a' + x % 26);
            EMIT("%s[\"%.*s\",\"%c\"]", nmerge ? "," : "", len - 1, s, s[len - 1]);
        }
    }
    EMIT("]}}");
#undef EMIT
    // CPU time of this process (a shared machine's load does not count): loading is linear, a quadratic merge
    // table would take minutes
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    Tokenizer *t = tokenizer_load_json(js, n, "big");
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double dt = (double)(c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) * 1e-9;
    CHECK(t && tokenizer_vocab_size(t) == 150257 && dt < 1.0, "150k-merge tokenizer.json (%.1f MB) loads in %.3f s of CPU%s%s",
          (double)n / 1e6, dt, t ? "" : ": ", t ? "" : glm_errmsg);
    if (t) {
        // ranks: 2-letter merges first (ab = 1, cd = 55), then 3-letter (ab + c = 704): "abcd" -> ab cd
        const char *want[] = {"ab", "cd", "Ġ", "abc", "Ġ", "w", "orl", "ds", "<|endoftext|>"};
        int *ids, k = tokenizer_encode(t, "abcd abc worlds<|endoftext|>", 28, &ids), same = k == 9;
        for (int i = 0; same && i < k; i++) same = strcmp(tokenizer_token_str(t, ids[i]), want[i]) == 0;
        CHECK(same, "big vocabulary: BPE merges by rank");
        if (getenv("DUMP_BIG")) { FILE *f = fopen(getenv("DUMP_BIG"), "wb"); fwrite(js, 1, n, f); fclose(f); }
        if (k >= 0) free(ids);
        tokenizer_free(t);
    }
    free(js);
}

// the tokenizer llama.cpp's converter stored in a GGUF file (tokenizer.ggml.*, rebuilt as a tokenizer.json by
// gguf_model.c) against the same HF references; a template from tokenizer.chat_template with its special tokens
static void test_gguf(void) {
    static const char *files[] = {"weights/gguf/tiny-glm4v-moe-q8_0.gguf", "weights/gguf/tiny-glm4v-dense-bf16.gguf"};
    for (int f = 0; f < 2; f++) {
        Checkpoint ck;
        if (gguf_checkpoint_open(&ck, files[f], NULL)) {
            CHECK(0, "gguf_checkpoint_open %s: %s", files[f], glm_errmsg);
            continue;
        }
        Tokenizer *t = tokenizer_load_json(ck.gguf->tokenizer_json, strlen(ck.gguf->tokenizer_json), files[f]);
        CHECK(t != NULL, "%s: tokenizer from tokenizer.ggml.*%s%s", files[f], t ? "" : ": ", t ? "" : glm_errmsg);
        if (t) {
            printf("# %s\n", files[f]);
            test_reference_cases(t);
            test_golden_prompts(t);
            tokenizer_free(t);
        }
        checkpoint_close(&ck);
    }
    ChatTemplate ct;
    if (chat_template_load_text(&ct, "{\"eos_token\": \"<|endoftext|>\"}", "{{ eos_token }}{{ messages[0].content }}",
                                "test.gguf (tokenizer.chat_template)", NULL)) {
        CHECK(0, "chat_template_load_text: %s", glm_errmsg);
        return;
    }
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"hi\"}]");
    size_t len;
    char *out = chat_template_render(&ct, msgs, NULL, 1, NULL, &len);
    CHECK(out && strcmp(out, "<|endoftext|>hi") == 0, "a GGUF chat template renders with its special tokens (%s)", out ? out : glm_errmsg);
    free(out);
    cJSON_Delete(msgs);
    chat_template_free(&ct);
}

int main(void) {
    Tokenizer *t = tokenizer_load(TOK_PATH);
    CHECK(t != NULL, "load %s%s%s", TOK_PATH, t ? "" : ": ", t ? "" : glm_errmsg);
    if (!t) return test_done();
    test_reference_cases(t);
    test_extra_cases(t);
    test_golden_prompts(t);
    test_stream(t);
    test_chat(t);
    test_broken();
    test_speed(t);
    test_big_vocab();
    test_gguf();
    tokenizer_free(t);
    return test_done();
}
