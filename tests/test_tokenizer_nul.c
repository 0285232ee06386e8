// SPDX-License-Identifier: MIT
// test_tokenizer_nul.c - a prompt is a byte string: tokenizer_encode with an explicit length tokenizes NUL bytes as
// HF's tokenizer does (the byte-level token of 0x00), never stopping at them. Expected ids from HF `tokenizers`:
// tests/data/tokenizer_nul_cases.json (tests/golden/make_nul_cases.py).
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "test_util.h"

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

int main(void) {
    Tokenizer *t = tokenizer_load("weights/tiny-glm4v-moe/tokenizer.json");
    CHECK(t != NULL, "load the tiny tokenizer%s%s", t ? "" : ": ", t ? "" : glm_errmsg);
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer_nul_cases.json", test_data_dir());
    size_t len;
    char *json = read_file(path, &len, 1 << 24);
    CHECK(json != NULL, "read %s", path);
    if (!t || !json) return 1;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        const char *hex = cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
        size_t nb = strlen(hex) / 2;
        char *text = xmalloc(nb + 1); // exact bytes; the NUL terminator past them is not part of the text
        for (size_t i = 0; i < nb; i++) text[i] = (char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        text[nb] = 0;
        int *ids = NULL, k = tokenizer_encode(t, text, nb, &ids), ok = k == cJSON_GetArraySize(want), i = 0;
        const cJSON *w;
        cJSON_ArrayForEach(w, want) ok = ok && i < k && ids[i++] == w->valueint;
        CHECK(ok, "case %d (hex %s): %d ids, HF's %d, equal", n, hex, k, cJSON_GetArraySize(want));
        free(ids);
        free(text);
        n++;
    }
    CHECK(n >= 10, "%d cases", n);
    cJSON_Delete(root);
    free(json);
    tokenizer_free(t);
    return test_done();
}
