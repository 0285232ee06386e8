// SPDX-License-Identifier: MIT
// test_safetensors.c - sf_parse accepts and refuses exactly what the `safetensors` library does on the small files of
// tests/data/safetensors_cases.json (written by tests/gen_safetensors_cases.py with the real library): header one
// JSON object with only whitespace after it, valid UTF-8, __metadata__ values strings, tensors contiguous and
// non-overlapping when ordered by offset, covering the data block exactly; the message names the offending tensor.
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "test_util.h"

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

int main(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/safetensors_cases.json", test_data_dir());
    size_t len;
    char *json = read_file(path, &len, 1 << 24);
    CHECK(json != NULL, "read %s", path);
    if (!json) return 1;
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    CHECK(cJSON_GetArraySize(cases) >= 20, "%d cases", cJSON_GetArraySize(cases));
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        const char *hex = cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring;
        int want_ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "ok"));
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(c, "tensor");
        size_t n = strlen(hex) / 2;
        // an exact-size heap copy, so ASan sees any read past the file's end
        uint8_t *buf = xmalloc(n);
        for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        SFile f;
        glm_errmsg[0] = 0;
        int rc = sf_parse(&f, buf, n, name);
        CHECK((rc == 0) == want_ok, "%s: %s as the safetensors library (%s)", name, want_ok ? "accepted" : "refused",
              rc ? glm_errmsg : "ok");
        if (rc && cJSON_IsString(tn)) {
            char q[256];
            snprintf(q, sizeof q, "tensor '%s'", tn->valuestring);
            CHECK(strstr(glm_errmsg, q) != NULL, "%s: the message names %s: %s", name, q, glm_errmsg);
        }
        if (!rc) sf_close(&f);
        free(buf);
    }
    cJSON_Delete(root);
    free(json);
    return test_done();
}
