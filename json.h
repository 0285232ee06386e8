// SPDX-License-Identifier: MIT
// json.h - strict JSON for outside input (json.c): cJSON trees whose numbers keep their literal text (raw items),
// strings checked (valid UTF-8, no NUL), bounded depth and size.
#ifndef GLM4V_JSON_H
#define GLM4V_JSON_H

#include "base.h"

#include <cjson/cJSON.h>

#define JSON_MAX_DEPTH 64          // nesting of objects and arrays
#define JSON_MAX_BYTES (256 << 20) // input size

// parse one JSON value (numbers as cJSON raw items holding their text); NULL + glm_errmsg naming `name`, the byte
// offset and the field path ("messages[2].content") otherwise
cJSON *json_parse(const char *text, size_t len, const char *name);
// the value of a number item (a raw number from json_parse, or a cJSON number); *ok = 0 when v is not one
double json_number(const cJSON *v, int *ok);
// 1 when v is a number item of either kind
int json_is_number(const cJSON *v);

#endif
