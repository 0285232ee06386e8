// SPDX-License-Identifier: MIT
// jinja.h - a Jinja2 template interpreter for HuggingFace chat templates: the subset of Jinja2 that chat templates
// use, with the environment transformers builds (src/transformers/utils/chat_template_utils.py,
// _compile_jinja_template: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[AssistantTracker, jinja2.ext.loopcontrols]), its own `tojson` filter, the globals raise_exception,
// strftime_now, dict and namespace). Output is byte-identical to Python's jinja2; a construct outside the subset fails
// with one error line naming it and its template line, never with a silently different rendering.
#ifndef JINJA_H
#define JINJA_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct JinjaTemplate JinjaTemplate;

// parse a template once (src need not be NUL-terminated); NULL on error with a one-line message in err
JinjaTemplate *jinja_parse(const char *src, size_t len, char *err, size_t errcap);

// render with a cJSON object as the context (its members are the template's variables); returns a malloc'd
// NUL-terminated string (*out_len = its length) or NULL with a one-line message in err. cJSON keeps no number text,
// so a number is an int when it is integral and |x| <= 2^53, else a float (1.0 in the JSON renders as "1"): use a
// cJSON_Raw item (cJSON_CreateRaw("1.0")) or jinja_render_json for the exact Python json.loads types.
char *jinja_render(const JinjaTemplate *t, const cJSON *ctx, size_t *out_len, char *err, size_t errcap);

// render with the context given as JSON text (an object), read with Python json.loads' types (1 is an int, 1.0 a
// float, big integers exact up to int64); same result contract as jinja_render
char *jinja_render_json(const JinjaTemplate *t, const char *json, size_t json_len, size_t *out_len, char *err,
                        size_t errcap);

// parse JSON text into a cJSON tree for jinja_render that keeps Python's json.loads types: every number is a
// cJSON_Raw item holding its text (1 stays an int, 1.0 a float, NaN / Infinity accepted); duplicate keys keep the last
// value, as a Python dict does. NULL with a one-line message in err on bad JSON. Free with cJSON_Delete.
cJSON *jinja_json_parse(const char *json, size_t len, char *err, size_t errcap);

// free a parsed template (NULL is fine)
void jinja_free(JinjaTemplate *t);

// strftime_now(fmt) formats the local time now; the environment variable GLM4V_JINJA_NOW="YYYY-MM-DD HH:MM:SS"
// fixes that time (tests use it to match a generator run at another moment)
#define JINJA_NOW_ENV "GLM4V_JINJA_NOW"

#endif
