// SPDX-License-Identifier: MIT
// messages.c - OpenAI `messages` arrays from the outside (--messages files, request bodies): reading them strictly
// (json.c), and attaching the media their parts name to the engine's Media in prompt order, as vLLM's chat_utils
// loads image_url / video_url parts (data: URIs, local paths, file:// URLs; no network).
#include "messages.h"

#include "fileio.h"
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

cJSON *messages_read(const char *path) {
    size_t len;
    char *text = read_input(path, &len, MESSAGES_MAX_BYTES); // a file or a pipe (fileio.h: named by the user)
    if (!text) return NULL;
    cJSON *j = json_parse(text, len, path);
    free(text);
    if (!j) return NULL;
    if (cJSON_IsObject(j)) { // {"messages": [...]} (a request body) is accepted too
        cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(j, "messages");
        cJSON_Delete(j);
        j = m;
    }
    if (!cJSON_IsArray(j) || !cJSON_GetArraySize(j)) {
        cJSON_Delete(j);
        glm_err("%s: expected a non-empty JSON array of messages", path);
        return NULL;
    }
    int i = 0;
    for (const cJSON *m = j->child; m; m = m->next, i++)
        if (!cJSON_IsObject(m) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role"))) {
            cJSON_Delete(j);
            glm_err("%s: messages[%d] is not an object with a \"role\" string", path, i);
            return NULL;
        }
    return j;
}

int base64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen) {
    uint8_t *o = malloc(n / 4 * 3 + 4);
    if (!o) return glm_err("out of memory (base64)");
    size_t m = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+' || c == '-') v = 62; // standard or URL-safe alphabet
        else if (c == '/' || c == '_') v = 63;
        else if (c == '=') {
            pad++;
            continue;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        else {
            free(o);
            return glm_err("invalid base64 character at offset %zu", i);
        }
        if (pad) {
            free(o);
            return glm_err("base64 data after '=' padding");
        }
        acc = acc << 6 | (uint32_t)v, bits += 6;
        if (bits >= 8) bits -= 8, o[m++] = (uint8_t)(acc >> bits);
    }
    if (bits >= 6 || pad > 2) { // a lone 6-bit group cannot end a byte
        free(o);
        return glm_err("truncated base64 data");
    }
    *out = o, *outlen = m;
    return 0;
}

int media_add_video_mem(Media *m, const Engine *e, const uint8_t *bytes, size_t n, const MediaOptions *o) {
    // the video decoder (ffmpeg) reads a file: a private temporary one, removed at once
    char tmp[] = "/tmp/glm4v-video-XXXXXX";
    int fd = mkstemp(tmp), rc;
    if (fd < 0) return glm_err("temporary file: %s", strerror(errno));
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, bytes + off, n - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    rc = off == n ? media_add_video(m, e, tmp, o) : glm_err("temporary file: short write");
    unlink(tmp);
    return rc;
}

// the path a local reference names (file:// stripped), checked against the policy; malloc'd or NULL + glm_errmsg
static char *local_path(const char *url, const MediaPolicy *pol) {
    const char *p = strncmp(url, "file://", 7) == 0 ? url + 7 : url;
    if (!pol->allow_local) {
        glm_err("local files are not allowed (start the server with --allowed-media-path DIR)");
        return NULL;
    }
    if (!pol->allowed_dir) return strdup(p);
    char rp[PATH_MAX], rd[PATH_MAX];
    if (!realpath(p, rp)) {
        glm_err("%s: %s", p, strerror(errno));
        return NULL;
    }
    if (!realpath(pol->allowed_dir, rd)) {
        glm_err("%s: %s", pol->allowed_dir, strerror(errno));
        return NULL;
    }
    size_t n = strlen(rd);
    if (strncmp(rp, rd, n) != 0 || (rp[n] != '/' && rp[n] != 0)) {
        glm_err("%s is outside the allowed media folder", p);
        return NULL;
    }
    return strdup(rp);
}

// one image or video reference (a URL string) attached to m
static int add_ref(Media *m, const Engine *e, const char *url, int video, const MediaOptions *o, const MediaPolicy *pol) {
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return glm_err("%.60s: remote URLs are not fetched (send the bytes as a data: URI)", url);
    if (!strncmp(url, "data:", 5)) {
        const char *comma = strchr(url, ',');
        if (!comma || !strstr(url, ";base64")  || strstr(url, ";base64") > comma)
            return glm_err("data: URI without ';base64,' data");
        uint8_t *bytes;
        size_t n;
        if (base64_decode(comma + 1, strlen(comma + 1), &bytes, &n)) return -1;
        int rc = video ? media_add_video_mem(m, e, bytes, n, o) : media_add_image_mem(m, e, bytes, n, "data: URI", o);
        free(bytes);
        return rc;
    }
    char *p = local_path(url, pol);
    if (!p) return -1;
    int rc = video ? media_add_video(m, e, p, o) : media_add_image(m, e, p, o);
    free(p);
    return rc;
}

// the URL of a part: {"image_url": {"url": ...}} or {"image_url": "..."} (and video_url), or HF's "path" / "url" /
// "image" / "video" strings; NULL when the part names none
static const char *part_url(const cJSON *part, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(part, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "url");
    if (cJSON_IsString(v)) return v->valuestring;
    const char *hf[3] = {"path", "url", key[0] == 'i' ? "image" : "video"};
    for (int i = 0; i < 3; i++) {
        v = cJSON_GetObjectItemCaseSensitive(part, hf[i]);
        if (cJSON_IsString(v)) return v->valuestring;
    }
    return NULL;
}

int messages_add_media(Media *m, const Engine *e, const cJSON *messages, const MediaOptions *o, const MediaPolicy *pol) {
    int mi = 0;
    for (const cJSON *msg = messages ? messages->child : NULL; msg; msg = msg->next, mi++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (!cJSON_IsArray(content)) continue;
        int pi = 0;
        for (const cJSON *part = content->child; part; part = part->next, pi++) {
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
            if (!cJSON_IsString(ty)) continue;
            const char *t = ty->valuestring;
            int image = !strcmp(t, "image_url") || !strcmp(t, "image") || !strcmp(t, "input_image");
            int video = !strcmp(t, "video_url") || !strcmp(t, "video") || !strcmp(t, "input_video");
            if (!image && !video) continue;
            const char *url = part_url(part, image ? "image_url" : "video_url");
            int rc = url ? add_ref(m, e, url, video, o, pol) : glm_err("no url");
            if (rc) {
                char msg2[sizeof glm_errmsg];
                snprintf(msg2, sizeof msg2, "%s", glm_errmsg);
                return glm_err("messages[%d].content[%d].%s: %s", mi, pi, t, msg2);
            }
        }
    }
    return 0;
}
