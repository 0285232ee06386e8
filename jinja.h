// SPDX-License-Identifier: MIT
// jinja.h - a Jinja2 template interpreter for HuggingFace chat templates: the subset of Jinja2 that chat templates
// use, with the environment transformers builds (src/transformers/utils/chat_template_utils.py,
// _compile_jinja_template: ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[AssistantTracker, jinja2.ext.loopcontrols]), its own `tojson` filter, the globals raise_exception,
// strftime_now, dict and namespace). Output is byte-identical to Python's jinja2; a construct outside the subset fails
// with one error line naming it and its template line, never with a silently different rendering.
//
// Supported: {{ }} {% %} {# #}, whitespace control (- and +) with trim_blocks + lstrip_blocks, {% raw %}; if / elif /
// else, for (targets and tuple unpacking, `if` filter, else, recursive with loop(items), loop.index / index0 / revindex
// / revindex0 / first / last / length / previtem / nextitem / depth / cycle / changed), break / continue, set (names,
// tuples, ns.attr, block set, filtered block set {% set x | f %}), macro (defaults, keyword arguments, varargs /
// kwargs, caller; .name / .arguments), {% call(params) m(args) %} blocks, {% filter f(args) | g %} blocks, {% with a =
// x %} blocks, {% generation %}; literals (str with Python escapes, int, float, true / false / none in both cases,
// list, tuple, dict), a.b / a['b'] / a[i] / slices, calls, all operators (+ - * / // % ** ~, comparisons and chains, in
// / not in, and / or / not, a if c else b), printf-style str % args (s r d i u x X o f F e E g G, flags - 0 + space #,
// width, precision); filters abs batch capitalize center count d default dictsort e escape first float format indent
// int items join last length list lower map max min reject rejectattr replace reverse round safe select selectattr
// slice sort string sum title tojson (transformers': ensure_ascii / indent / separators / sort_keys) trim unique upper
// wordcount (ASCII text); every jinja2 test; str methods startswith endswith strip lstrip rstrip split rsplit
// splitlines upper lower title capitalize replace find rfind index count join isdigit isalpha isalnum isspace isupper
// islower format (fields, .attr / [key], !s / !r, format specs); dict items keys values get; list count index; globals
// range (sandbox-bounded), dict, namespace, raise_exception, strftime_now.
// Not supported (an error naming the construct): include / extends / import / block, *args / **kwargs in calls, %c / %a
// / * widths in printf formatting, nested {} fields / !a / n and c types in str.format specs, ints beyond 64 bits, case
// mapping of scripts outside Latin / Greek / Cyrillic (and the caseless ones), Markup-escaping operations other than +
// (Markup % args, Markup.join / replace / format ...; Markup + str escapes the str as markupsafe does), objects Python
// prints with their address (generators, methods). Bounded: 64 MB of output, 512 MB of memory, 20 M evaluation steps,
// 400 levels of nesting / recursion.
#ifndef JINJA_H
#define JINJA_H

#include <stddef.h>

#include <cjson/cJSON.h>

// The chat context as transformers builds it (processing_utils.ProcessorMixin.apply_chat_template ->
// chat_template_utils.render_jinja_template), for `compiled.render(**ctx)`:
//   messages               the conversation (list of dicts; content a string or a list of {"type": "text", "text"}
//                          / {"type": "image"} / {"type": "video"} items); a message whose reasoning_content /
//                          thinking / reasoning is not null becomes {"thinking": r, ...message, "reasoning_content": r}
//   tools                  the tool schemas (OpenAI format) or null (the key is always present)
//   documents              null (always present)
//   add_generation_prompt  true / false (always present)
//   the tokenizer's special tokens that are set, as strings (of bos_token, eos_token, unk_token, sep_token,
//                          pad_token, cls_token, mask_token; the GLM-V tokenizers set eos_token and pad_token)
//   then the extra kwargs (enable_thinking, --chat-template-kwargs ...), which override the special tokens
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

// transformers' _alias_reasoning_fields, in place on a messages array: a message whose reasoning_content, thinking
// or reasoning (the first not null, r) is set becomes {"thinking": r, ...message, "reasoning_content": r} (keys in
// that order; a "thinking" of its own is kept). 0, or -1 when messages is no array / out of memory.
int jinja_alias_reasoning(cJSON *messages);

// free a parsed template (NULL is fine)
void jinja_free(JinjaTemplate *t);

// strftime_now(fmt) formats the local time now; the environment variable GLM4V_JINJA_NOW="YYYY-MM-DD HH:MM:SS"
// fixes that time (tests use it to match a generator run at another moment)
#define JINJA_NOW_ENV "GLM4V_JINJA_NOW"

#endif
