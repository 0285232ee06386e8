// SPDX-License-Identifier: MIT
// fuzz_json.c - libFuzzer target: outside JSON (json.c: --messages, --tools, score lines) on arbitrary bytes, then an
// accepted array through chat_messages_for_template (OpenAI parts to the template's items, tool-call arguments
// parsed, reasoning aliased). An accepted value must print and parse back; nothing may crash or leak.
#include "../chat_template.h"
#include "../json.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *j = json_parse((const char *)data, size, "fuzz");
    if (!j) return 0;
    char *s = cJSON_PrintUnformatted(j);
    cJSON *back = s ? cJSON_Parse(s) : NULL;
    if (s && !back) abort(); // what json_parse accepts prints as JSON
    cJSON_Delete(back);
    free(s);
    if (cJSON_IsArray(j)) cJSON_Delete(chat_messages_for_template(j));
    cJSON_Delete(j);
    return 0;
}
