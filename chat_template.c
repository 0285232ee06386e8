// SPDX-License-Identifier: MIT
// chat_template.c - the checkpoint's chat template rendered as transformers renders it: the template found where
// HF's tokenizer and processor look for it, the context apply_chat_template builds (messages normalised as
// _normalize_chat_messages and _alias_reasoning_fields do, tools, add_generation_prompt, the tokenizer's
// special_tokens_map, then the caller's kwargs), and jinja.c for the rendering. OpenAI-format messages are turned into
// the template's items the way vLLM hands them to HF templates.
#include "chat_template.h"

#include "fileio.h"
#include "jinja.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "builtin_templates.h" // generated from templates/*.jinja (Makefile): glm45v_jinja[]

#define TEMPLATE_MAX_BYTES (16u << 20) // a chat template file or JSON holding one

// the named special tokens of transformers' SPECIAL_TOKENS_ATTRIBUTES, as strings (a value may be an AddedToken dict)
static cJSON *special_tokens(const cJSON *tokcfg) {
    static const char *names[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                                  "mask_token"};
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && tokcfg && i < sizeof names / sizeof *names; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(tokcfg, names[i]);
        if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(v)) cJSON_AddStringToObject(o, names[i], v->valuestring);
    }
    return o;
}

// add one parsed template named `name` from text src
static int add_template(ChatTemplate *t, const char *name, const char *src, size_t len) {
    char err[512];
    JinjaTemplate *jt = jinja_parse(src, len, err, sizeof err);
    if (!jt) return glm_err("%s: %s", t->origin, err);
    char **names = realloc(t->names, (size_t)(t->n + 1) * sizeof *names);
    if (names) t->names = names;
    JinjaTemplate **parsed = realloc(t->parsed, (size_t)(t->n + 1) * sizeof *parsed);
    if (parsed) t->parsed = parsed;
    char *nm = strdup(name);
    if (!names || !parsed || !nm) {
        free(nm);
        jinja_free(jt);
        return glm_err("out of memory (chat template)");
    }
    t->names[t->n] = nm, t->parsed[t->n] = jt, t->n++;
    return 0;
}

// a file of the model folder that may be absent: 1 read, 0 absent, -1 error
static int read_optional(const char *dir, const char *name, char **buf, size_t *len, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    if (!path_present(path)) return 0; // anything there (a FIFO, a folder) is read as a file: refused by read_file
    return (*buf = read_file(path, len, TEMPLATE_MAX_BYTES)) ? 1 : -1;
}

int chat_template_load_text(ChatTemplate *t, const char *tokcfg_json, const char *text, const char *origin,
                            const char *override_path) {
    memset(t, 0, sizeof *t);
    cJSON *tokcfg = tokcfg_json ? cJSON_Parse(tokcfg_json) : NULL;
    int rc = -1;
    size_t len = 0;
    char *buf = NULL;
    if (!(t->special = special_tokens(tokcfg))) goto done;
    if (override_path) {
        if (!(buf = read_input(override_path, &len, TEMPLATE_MAX_BYTES))) goto done;
        t->origin = strdup(override_path);
        rc = add_template(t, "default", buf, len);
    } else if (text) {
        t->origin = strdup(origin);
        rc = add_template(t, "default", text, strlen(text));
    } else {
        t->origin = strdup("built-in GLM-4.5V template");
        rc = add_template(t, "default", (const char *)glm45v_jinja, sizeof glm45v_jinja - 1);
    }
done:
    free(buf);
    cJSON_Delete(tokcfg);
    if (!rc && (!t->origin || !t->n)) rc = glm_err("out of memory (chat template)");
    if (rc) chat_template_free(t);
    return rc;
}

int chat_template_load(ChatTemplate *t, const char *model_dir, const char *override_path) {
    memset(t, 0, sizeof *t);
    char path[4200];
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;
    cJSON *tokcfg = NULL, *j = NULL;
    // the tokenizer's special tokens (tokenizer_config.json) are template variables whatever the template's source
    int r = read_optional(model_dir, "tokenizer_config.json", &buf, &len, path, sizeof path);
    if (r < 0) return -1;
    if (r == 1) {
        tokcfg = cJSON_ParseWithLength(buf, len);
        free(buf), buf = NULL;
        if (!cJSON_IsObject(tokcfg)) {
            cJSON_Delete(tokcfg);
            return glm_err("%s: not a JSON object", path);
        }
    }
    if (!(t->special = special_tokens(tokcfg))) goto done;
    if (override_path) {
        if (!(buf = read_input(override_path, &len, TEMPLATE_MAX_BYTES))) goto done; // named by the user: a pipe too
        t->origin = strdup(override_path);
        rc = add_template(t, "default", buf, len);
        goto done;
    }
    if ((r = read_optional(model_dir, "chat_template.jinja", &buf, &len, path, sizeof path)) < 0) goto done;
    if (r == 1) {
        t->origin = strdup(path);
        rc = add_template(t, "default", buf, len);
        goto done;
    }
    if ((r = read_optional(model_dir, "chat_template.json", &buf, &len, path, sizeof path)) < 0) goto done;
    if (r == 1) {
        j = cJSON_ParseWithLength(buf, len);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
        t->origin = strdup(path);
        if (!cJSON_IsString(ct)) glm_err("%s: no \"chat_template\" string", path);
        else rc = add_template(t, "default", ct->valuestring, strlen(ct->valuestring));
        goto done;
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(tokcfg, "chat_template");
    snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
    if (cJSON_IsString(ct)) {
        t->origin = strdup(path);
        rc = add_template(t, "default", ct->valuestring, strlen(ct->valuestring));
        goto done;
    }
    if (cJSON_IsArray(ct)) { // [{"name": ..., "template": ...}, ...]
        t->origin = strdup(path);
        rc = 0;
        for (const cJSON *e = ct->child; e && !rc; e = e->next) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *tx = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (!cJSON_IsString(nm) || !cJSON_IsString(tx))
                rc = glm_err("%s: chat_template list entries need \"name\" and \"template\" strings", path);
            else rc = add_template(t, nm->valuestring, tx->valuestring, strlen(tx->valuestring));
        }
        goto done;
    }
    // no template in the folder: the layout of the released GLM-4.5V / 4.6V files
    t->origin = strdup("built-in GLM-4.5V template");
    rc = add_template(t, "default", (const char *)glm45v_jinja, sizeof glm45v_jinja - 1);
done:
    free(buf);
    cJSON_Delete(j);
    cJSON_Delete(tokcfg);
    if (!rc && (!t->origin || !t->n)) rc = glm_err("out of memory (chat template)");
    if (rc) chat_template_free(t);
    return rc;
}

void chat_template_free(ChatTemplate *t) {
    for (int i = 0; i < t->n; i++) free(t->names[i]), jinja_free(t->parsed[i]);
    free(t->names);
    free(t->parsed);
    free(t->origin);
    cJSON_Delete(t->special);
    memset(t, 0, sizeof *t);
}

// ---------------------------------------------------------------------------- messages for the template

// one content part in the template's form: image_url -> {"type": "image"}, video_url -> {"type": "video"}, others
// (text, and HF's own image / video items) as given
static cJSON *content_part(const cJSON *part, int idx) {
    if (!cJSON_IsObject(part)) {
        glm_err("content[%d]: a content part must be an object", idx);
        return NULL;
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
    if (!cJSON_IsString(ty)) {
        glm_err("content[%d]: no \"type\"", idx);
        return NULL;
    }
    const char *k = ty->valuestring;
    if (!strcmp(k, "image_url") || !strcmp(k, "input_image")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "image");
        return o;
    }
    if (!strcmp(k, "video_url") || !strcmp(k, "input_video")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "video");
        return o;
    }
    return cJSON_Duplicate(part, 1);
}

cJSON *chat_messages_for_template(const cJSON *messages) {
    if (!cJSON_IsArray(messages)) {
        glm_err("messages: not an array");
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    int mi = 0;
    for (const cJSON *msg = messages->child; msg; msg = msg->next, mi++) {
        if (!cJSON_IsObject(msg)) {
            glm_err("messages[%d]: not an object", mi);
            goto fail;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        if (!cJSON_IsString(role)) {
            glm_err("messages[%d]: no \"role\" string", mi);
            goto fail;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddItemToArray(out, m);
        for (const cJSON *e = msg->child; e; e = e->next) {
            if (cJSON_IsNull(e)) continue; // _normalize_chat_messages: keys whose value is None are dropped
            cJSON *v = NULL;
            if (!strcmp(e->string, "content") && cJSON_IsArray(e)) {
                v = cJSON_CreateArray();
                int pi = 0;
                for (const cJSON *part = e->child; part; part = part->next, pi++) {
                    cJSON *p = content_part(part, pi);
                    if (!p) {
                        char msg2[sizeof glm_errmsg];
                        snprintf(msg2, sizeof msg2, "%s", glm_errmsg);
                        glm_err("messages[%d].%s", mi, msg2);
                        cJSON_Delete(v);
                        goto fail;
                    }
                    cJSON_AddItemToArray(v, p);
                }
            } else if (!strcmp(e->string, "tool_calls") && cJSON_IsArray(e)) {
                // vLLM: a tool call's "arguments" JSON string becomes an object (templates iterate over it)
                v = cJSON_Duplicate(e, 1);
                for (cJSON *tc = v->child; tc; tc = tc->next) {
                    cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
                    cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
                    if (cJSON_IsString(args)) {
                        cJSON *parsed = json_parse(args->valuestring, strlen(args->valuestring), "tool_calls.arguments");
                        if (parsed) cJSON_ReplaceItemInObjectCaseSensitive(fn, "arguments", parsed);
                    }
                }
            } else v = cJSON_Duplicate(e, 1);
            cJSON_AddItemToObject(m, e->string, v);
        }
    }
    // HF _alias_reasoning_fields: {"thinking": r, **message, "reasoning_content": r}
    if (jinja_alias_reasoning(out)) {
        glm_err("out of memory (messages)");
        goto fail;
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

char *chat_template_render(const ChatTemplate *t, const cJSON *messages, const cJSON *tools, int add_generation_prompt,
                           const cJSON *kwargs, size_t *len) {
    // HF get_chat_template: a named set uses "tool_use" when tools are given and it exists, else "default"
    int which = -1;
    for (int i = 0; i < t->n; i++) {
        if (tools && !strcmp(t->names[i], "tool_use")) which = i;
        if (which < 0 && !strcmp(t->names[i], "default")) which = i;
    }
    if (which < 0) {
        glm_err("%s: no \"default\" chat template among the named ones", t->origin);
        return NULL;
    }
    cJSON *msgs = chat_messages_for_template(messages);
    if (!msgs) return NULL;
    // template.render(messages=chat, tools=tool_schemas, documents=None, add_generation_prompt=...,
    //                 **{**special_tokens_map, **kwargs})
    cJSON *ctx = cJSON_CreateObject();
    cJSON_AddItemToObject(ctx, "messages", msgs);
    cJSON_AddItemToObject(ctx, "tools", tools ? cJSON_Duplicate(tools, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(ctx, "documents", cJSON_CreateNull());
    cJSON_AddItemToObject(ctx, "add_generation_prompt", cJSON_CreateBool(add_generation_prompt));
    for (const cJSON *e = t->special ? t->special->child : NULL; e; e = e->next)
        cJSON_AddItemToObject(ctx, e->string, cJSON_Duplicate(e, 1));
    for (const cJSON *e = kwargs ? kwargs->child : NULL; e; e = e->next) {
        cJSON *d = cJSON_Duplicate(e, 1);
        if (cJSON_GetObjectItemCaseSensitive(ctx, e->string)) cJSON_ReplaceItemInObjectCaseSensitive(ctx, e->string, d);
        else cJSON_AddItemToObject(ctx, e->string, d);
    }
    char err[512];
    char *out = jinja_render(t->parsed[which], ctx, len, err, sizeof err);
    cJSON_Delete(ctx);
    if (!out) glm_err("%s: %s", t->origin, err);
    return out;
}
