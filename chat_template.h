// SPDX-License-Identifier: MIT
// chat_template.h - the checkpoint's own chat template, rendered as transformers renders it (chat_template.c):
// where the template comes from, the context HF builds for it (messages, tools, add_generation_prompt, the special
// tokens, extra kwargs such as enable_thinking) and the rendering through jinja.c. Mirrors
// PreTrainedTokenizerBase.apply_chat_template / ProcessorMixin.apply_chat_template with tokenize=False.
#ifndef GLM4V_CHAT_TEMPLATE_H
#define GLM4V_CHAT_TEMPLATE_H

#include "base.h"

#include <cjson/cJSON.h>

typedef struct JinjaTemplate JinjaTemplate;

// a loaded template (one, or the named set of a tokenizer_config.json list)
typedef struct {
    char *origin;             // where the text came from (a path, or "built-in GLM-4.5V template")
    int n;                    // templates held (1, or the named templates of a list)
    char **names;             // [n] template names ("default" for a single one)
    JinjaTemplate **parsed;   // [n] parsed templates
    cJSON *special;           // {"bos_token": ..., "eos_token": ...}: the tokenizer's named special tokens
} ChatTemplate;

// Where the template comes from, first found wins: override_path (--chat-template), then in model_dir
// chat_template.jinja, chat_template.json ({"chat_template": ...}), tokenizer_config.json's "chat_template" (a string,
// or a list of {"name", "template"}); a folder with none gets the built-in GLM-4.5V template (the layout the released
// GLM-4.5V / 4.6V files use). Every template is parsed here: an unsupported construct fails now, with its line.
int chat_template_load(ChatTemplate *t, const char *model_dir, const char *override_path);
// the same from a template text (a GGUF file's tokenizer.chat_template; origin names it in errors; NULL: the built-in
// one) and the special tokens as a tokenizer_config.json text (NULL: none); override_path as above
int chat_template_load_text(ChatTemplate *t, const char *tokcfg_json, const char *text, const char *origin,
                            const char *override_path);
void chat_template_free(ChatTemplate *t);

// the text HF's apply_chat_template(messages, tools=tools, add_generation_prompt=..., **kwargs, tokenize=False)
// renders. messages: an OpenAI-format array (content a string or a list of parts: "text", "image_url" / "image",
// "video_url" / "video"; tool_calls with arguments as a JSON string or an object; reasoning_content / reasoning);
// tools: an OpenAI tools array or NULL; kwargs: an object of extra template variables (enable_thinking, ...) or NULL.
// Returns malloc'd text (*len bytes, NUL-terminated) or NULL + glm_errmsg.
char *chat_template_render(const ChatTemplate *t, const cJSON *messages, const cJSON *tools, int add_generation_prompt,
                           const cJSON *kwargs, size_t *len);

// messages as the template sees them (HF's conventions from OpenAI's): image_url -> {"type": "image"}, video_url ->
// {"type": "video"}, tool-call arguments parsed into objects, keys whose value is null dropped, reasoning aliased
// (thinking, reasoning_content). A new array, or NULL + glm_errmsg for a malformed message
cJSON *chat_messages_for_template(const cJSON *messages);

#endif
