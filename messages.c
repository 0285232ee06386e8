// SPDX-License-Identifier: MIT
// messages.c - OpenAI `messages` arrays from the outside (--messages files, request bodies): reading them strictly
// (json.c), and the one reader of the media their parts name (the CLI's --messages and the server's requests), as
// vLLM's chat_utils loads image_url / video_url parts (data: URIs, local paths, file:// URLs; no network) and OpenAI's
// file parts carry documents (file_data = a base64 data: URI of a PDF, whose pages pdf.c renders as images).
#include "messages.h"

#include "fileio.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

char *base64_encode(const uint8_t *p, size_t n, const char *prefix) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t pl = prefix ? strlen(prefix) : 0;
    if (n > (SIZE_MAX - pl - 1) / 4 * 3 - 3) {
        glm_err("base64: %zu bytes are too many", n);
        return NULL;
    }
    char *s = malloc(pl + (n + 2) / 3 * 4 + 1), *o = s + pl;
    if (!s) {
        glm_err("out of memory (base64)");
        return NULL;
    }
    memcpy(s, prefix ? prefix : "", pl);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = A[v >> 18 & 63], *o++ = A[v >> 12 & 63];
        *o++ = i + 1 < n ? A[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? A[v & 63] : '=';
    }
    *o = 0;
    return s;
}

// ---------------------------------------------------------------------------- one media part

int media_part_kind(const cJSON *part) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
    if (!cJSON_IsString(ty)) return -1;
    const char *t = ty->valuestring;
    if (!strcmp(t, "image_url") || !strcmp(t, "image") || !strcmp(t, "input_image") || !strcmp(t, "file"))
        return MEDIA_IMAGE;
    if (!strcmp(t, "video_url") || !strcmp(t, "video") || !strcmp(t, "input_video")) return MEDIA_VIDEO;
    return -1;
}

// 1 when url starts with a URL scheme ("name:", RFC 3986: a letter, then letters, digits, + - .)
static int has_scheme(const char *url) {
    const char *p = url;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) return 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
           *p == '.')
        p++;
    return *p == ':';
}

// 1 when the absolute path, read lexically ("//", "." and ".." resolved as text, nothing looked up on disk), is dir or
// under it (dir: a realpath). A path outside is refused before the file system is asked, so the answer for it is the
// same whether it exists or not (no probing of files outside the folder through the error messages)
static int lexically_under(const char *path, const char *dir) {
    char norm[PATH_MAX + 8];
    size_t n = 0;
    for (const char *p = path; *p;) {
        while (*p == '/') p++;
        const size_t k = strcspn(p, "/");
        if (!k) break;
        if (k == 1 && p[0] == '.') {
        } else if (k == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && norm[n - 1] != '/') n--; // drop the last component and its slash
            if (n > 0) n--;
        } else {
            if (n + 1 + k >= sizeof norm) return 0;
            norm[n++] = '/';
            memcpy(norm + n, p, k);
            n += k;
        }
        p += k;
    }
    if (!n) norm[n++] = '/';
    norm[n] = 0;
    const size_t dl = strlen(dir);
    return !strcmp(dir, "/") || (!strncmp(norm, dir, dl) && (norm[dl] == '/' || norm[dl] == 0));
}

// 1 when the resolved path real is dir or under it
static int under_dir(const char *real, const char *dir) {
    const size_t dl = strlen(dir);
    return !strcmp(dir, "/") || (!strncmp(real, dir, dl) && (real[dl] == '/' || real[dl] == 0));
}

// a file:// URL's path with its %XX escapes decoded (RFC 8089 / 3986: Python's Path.as_uri() writes a space as %20)
// into out [cap]; -1 + glm_errmsg for a malformed escape, an escaped NUL or a path too long
static int url_path_decode(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; *s; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            int v = 0;
            for (int k = 1; k <= 2; k++) {
                const char h = s[k];
                const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                              : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (d < 0) return glm_err("a file:// URL has a malformed %% escape");
                v = v * 16 + d;
            }
            if (!v) return glm_err("a file:// URL holds an escaped NUL (%%00)");
            c = v, s += 2;
        }
        if (n + 1 >= cap) return glm_err("the file:// URL's path is too long");
        out[n++] = (char)c;
    }
    out[n] = 0;
    return 0;
}

// the file a local reference names (a path, or a file:// URL with an absolute path), checked against the policy:
// under its folder (relative paths taken from it), a regular file (or a frames folder for a video). malloc'd, or NULL
// + glm_errmsg. Without a folder (the CLI) the path is kept as given and media_add_* apply their own rules
static char *local_path(const char *url, MediaKind kind, const MediaPolicy *pol) {
    const char *path = url;
    char decoded[PATH_MAX + 8];
    if (!strncmp(url, "file://", 7)) {
        path = url + 7;
        if (!strncmp(path, "localhost/", 10)) path += 9;
        if (path[0] != '/') {
            glm_err("a file:// URL needs an absolute path");
            return NULL;
        }
        if (url_path_decode(path, decoded, sizeof decoded)) return NULL;
        path = decoded;
    } else if (has_scheme(url)) {
        glm_err("unsupported URL scheme (data:, file:// or a local path)");
        return NULL;
    }
    if (!pol->allow_local) {
        glm_err("local paths are refused unless the server runs with --allowed-media-path");
        return NULL;
    }
    if (!pol->allowed_dir) {
        char *p = strdup(path);
        if (!p) glm_err("out of memory");
        return p;
    }
    char joined[2 * PATH_MAX + 16], real[PATH_MAX]; // the folder, '/', the path (realpath refuses one too long)
    if (path[0] == '/') snprintf(joined, sizeof joined, "%s", path);
    else snprintf(joined, sizeof joined, "%s/%s", pol->allowed_dir, path);
    if (!lexically_under(joined, pol->allowed_dir)) {
        glm_err("%s is outside --allowed-media-path", path);
        return NULL;
    }
    if (!realpath(joined, real)) {
        // not there: its nearest existing folder says whether the path leads outside (a symlink in the folder to
        // /etc: "link/missing" is outside, not "No such file", so nothing outside can be probed through it either)
        const int e = errno;
        char up[sizeof joined];
        snprintf(up, sizeof up, "%s", joined);
        for (char *sl = strrchr(up, '/'); sl && sl > up; sl = strrchr(up, '/')) {
            *sl = 0;
            if (realpath(up, real)) {
                if (!under_dir(real, pol->allowed_dir)) glm_err("%s is outside --allowed-media-path", path);
                else glm_err("%s: %s", path, strerror(e));
                return NULL;
            }
        }
        glm_err("%s: %s", path, strerror(e));
        return NULL;
    }
    if (!under_dir(real, pol->allowed_dir)) {
        glm_err("%s is outside --allowed-media-path", path);
        return NULL;
    }
    struct stat st;
    if (stat(real, &st)) {
        glm_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode) && !(kind == MEDIA_VIDEO && S_ISDIR(st.st_mode))) {
        glm_err("%s is not a regular file%s", path, kind == MEDIA_VIDEO ? " or a folder" : "");
        return NULL;
    }
    char *p = strdup(real);
    if (!p) glm_err("out of memory");
    return p;
}

// a data: URI's base64 payload decoded into ref (mime: its media type, "" when none, into mime[cap])
static int decode_data_uri(MediaRef *ref, const char *url, char *mime, size_t cap) {
    const char *comma = strchr(url, ',');
    if (!comma) return glm_err("a data: URI needs a ',' before its data");
    if (comma - url < 12 || memcmp(comma - 7, ";base64", 7))
        return glm_err("only base64 data: URIs are accepted (data:image/png;base64,...)");
    size_t ml = strcspn(url + 5, ";,");
    snprintf(mime, cap, "%.*s", (int)(ml < cap ? ml : cap - 1), url + 5);
    if (base64_decode(comma + 1, strlen(comma + 1), &ref->data, &ref->len)) {
        char m2[sizeof glm_errmsg];
        snprintf(m2, sizeof m2, "%s", glm_errmsg);
        return glm_err("the data: URI is not valid base64 (%s)", m2);
    }
    if (!ref->len) return glm_err("the data: URI is empty");
    return 0;
}

// the URL of a part: {"image_url": {"url": ...}} or {"image_url": "..."} (and video_url), or HF's "path" / "url" /
// "image" / "video" strings; NULL when the part names none
static const char *part_url(const cJSON *part, MediaKind kind) {
    const char *key = kind == MEDIA_VIDEO ? "video_url" : "image_url";
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(part, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "url");
    if (cJSON_IsString(v)) return v->valuestring;
    const char *hf[3] = {"path", "url", kind == MEDIA_VIDEO ? "video" : "image"};
    for (int i = 0; i < 3; i++) {
        v = cJSON_GetObjectItemCaseSensitive(part, hf[i]);
        if (cJSON_IsString(v)) return v->valuestring;
    }
    return NULL;
}

// OpenAI's file part: {"file": {"file_data": "data:application/pdf;base64,..." (or bare base64), "filename": ...}},
// with this project's optional "pages" ("1-3,7") and "dpi" (an integer) beside them
static int parse_file_part(MediaRef *ref, const cJSON *part) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(part, "file");
    if (!cJSON_IsObject(f)) return glm_err("a file part needs a \"file\" object with \"file_data\"");
    const cJSON *fd = cJSON_GetObjectItemCaseSensitive(f, "file_data");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(f, "filename");
    const cJSON *pg = cJSON_GetObjectItemCaseSensitive(f, "pages");
    const cJSON *dpi = cJSON_GetObjectItemCaseSensitive(f, "dpi");
    if (!cJSON_IsString(fd)) {
        if (cJSON_GetObjectItemCaseSensitive(f, "file_id"))
            return glm_err("uploaded files (file_id) are not kept here: send the document as file_data");
        return glm_err("\"file_data\" must be a string (data:application/pdf;base64,...)");
    }
    if (fn && !cJSON_IsNull(fn)) {
        if (!cJSON_IsString(fn)) return glm_err("\"filename\" must be a string");
        snprintf(ref->name, sizeof ref->name, "%s", fn->valuestring);
    }
    // numbers as cJSON reads them (a request body) or as json.c keeps them (raw text: a --messages file)
    int isnum;
    if (pg && !cJSON_IsNull(pg)) {
        char num[32];
        const double v = json_number(pg, &isnum);
        if (isnum && v >= 1 && v <= INT_MAX && v == floor(v)) snprintf(num, sizeof num, "%d", (int)v);
        else if (!cJSON_IsString(pg) || strlen(pg->valuestring) > 1000)
            return glm_err("\"pages\" must be a string of pages and ranges such as \"1-3,7\"");
        if (!(ref->pages = strdup(cJSON_IsString(pg) ? pg->valuestring : num))) return glm_err("out of memory");
    }
    if (dpi && !cJSON_IsNull(dpi)) {
        const double v = json_number(dpi, &isnum);
        if (!isnum || v != floor(v) || v < 1 || v > PDF_DPI_MAX)
            return glm_err("\"dpi\" must be an integer in [1, %d]", PDF_DPI_MAX);
        ref->dpi = (int)v;
    }
    char mime[64] = "";
    const char *s = fd->valuestring;
    if (!strncmp(s, "data:", 5)) {
        if (decode_data_uri(ref, s, mime, sizeof mime)) return -1;
    } else if (base64_decode(s, strlen(s), &ref->data, &ref->len)) {
        char m2[sizeof glm_errmsg];
        snprintf(m2, sizeof m2, "%s", glm_errmsg);
        return glm_err("\"file_data\" is neither a data: URI nor valid base64 (%s)", m2);
    } else if (!ref->len) return glm_err("\"file_data\" is empty");
    if (!pdf_is_pdf(ref->data, ref->len))
        return glm_err("%s: only PDF documents are read from file parts (%s%s)", ref->name,
                       mime[0] ? mime : "no media type", mime[0] && strcmp(mime, "application/pdf") ? "" :
                       ", but no %PDF- header");
    ref->is_pdf = 1;
    return 0;
}

int media_ref_parse(MediaRef *ref, const cJSON *part, const MediaPolicy *pol) {
    memset(ref, 0, sizeof *ref);
    ref->msg = ref->part = -1;
    int kind = media_part_kind(part);
    if (kind < 0) return glm_err("not an image, video or file part");
    ref->kind = (MediaKind)kind;
    snprintf(ref->name, sizeof ref->name, "data: URI");
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
    if (!strcmp(ty->valuestring, "file")) {
        snprintf(ref->name, sizeof ref->name, "document");
        return parse_file_part(ref, part);
    }
    const char *url = part_url(part, ref->kind);
    if (!url) return glm_err("needs a 'url' string");
    if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8))
        return glm_err("%.60s: remote URLs are not fetched (the program reads nothing from the network): send the "
                       "bytes as a data: URI, or a local path (under --allowed-media-path on a server)", url);
    if (!strncmp(url, "data:", 5)) {
        char mime[64];
        if (decode_data_uri(ref, url, mime, sizeof mime)) return -1;
        // a document is recognised by its content (%PDF-), as the CLI's -i recognises one
        ref->is_pdf = ref->kind == MEDIA_IMAGE && pdf_is_pdf(ref->data, ref->len);
        if (!ref->is_pdf && !strcmp(mime, "application/pdf")) return glm_err("application/pdf data without a %%PDF- header");
        return 0;
    }
    if (!(ref->path = local_path(url, ref->kind, pol))) return -1;
    snprintf(ref->name, sizeof ref->name, "%s", url);
    ref->is_pdf = ref->kind == MEDIA_IMAGE && pdf_file_is_pdf(ref->path);
    return 0;
}

void media_ref_free(MediaRef *ref) {
    free(ref->data), free(ref->path), free(ref->pages);
    pdf_doc_free(&ref->doc);
    memset(ref, 0, sizeof *ref);
}

int media_ref_render(MediaRef *ref, const MediaPolicy *pol, const ProcConfig *pc) {
    if (!ref->is_pdf || ref->doc.n) return 0;
    PdfOptions po = pol->pdf;
    if (ref->pages) po.pages = ref->pages;
    if (ref->dpi) po.dpi = ref->dpi;
    return ref->data ? pdf_render_mem(&ref->doc, ref->data, ref->len, ref->name, &po, pc)
                     : pdf_render_file(&ref->doc, ref->path, &po, pc);
}

int media_add_video_mem(Media *m, const Engine *e, const uint8_t *bytes, size_t n, const MediaOptions *o) {
    // the video decoder (ffmpeg) reads a file: a private temporary one, removed at once
    char tmp[] = "/tmp/glm4v-video-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) return glm_err("temporary file: %s", strerror(errno));
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, bytes + off, n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    close(fd);
    int rc = off == n ? media_add_video(m, e, tmp, o) : glm_err("temporary file: short write");
    unlink(tmp);
    return rc;
}

int media_ref_load(Media *m, const Engine *e, MediaRef *ref, const MediaOptions *o, const MediaPolicy *pol) {
    if (ref->kind == MEDIA_VIDEO) {
        const int max = pol->max_videos > 0 ? pol->max_videos : ENGINE_MAX_VIDEOS;
        if (m->vid.nitems >= max) return glm_err("at most %d videos in one request", max);
        int rc = ref->data ? media_add_video_mem(m, e, ref->data, ref->len, o) : media_add_video(m, e, ref->path, o);
        return rc ? -1 : 1;
    }
    const int max = pol->max_images > 0 ? pol->max_images : ENGINE_MAX_IMAGES;
    if (!ref->is_pdf) {
        if (m->img.nitems >= max) return glm_err("at most %d images in one request", max);
        int rc = ref->data ? media_add_image_mem(m, e, ref->data, ref->len, ref->name, o)
                           : media_add_image(m, e, ref->path, o);
        return rc ? -1 : 1;
    }
    if (!e->c->has_vision) return glm_err("%s: the checkpoint has no vision tower (model.visual.*)", e->ck.dir);
    if (media_ref_render(ref, pol, &e->c->proc)) return -1;
    const PdfDoc *d = &ref->doc;
    const int first = m->img.nitems, nvid = m->vid.nitems;
    if (first + d->n > max)
        return glm_err("%s: %d pages do not fit: one request takes %d images (pages included) and %d are left: "
                       "choose fewer pages", ref->name, d->n, max, max - first);
    for (int i = 0; i < d->n; i++) {
        char name[300];
        snprintf(name, sizeof name, "%s#page=%d", ref->name, d->pages[i].page);
        if (media_add_image_rgb(m, e, &d->pages[i].img, name, o)) {
            media_truncate(m, e, first, nvid);
            return -1;
        }
    }
    return d->n;
}

int media_part_expand(cJSON *content, cJSON *part, const MediaRef *ref) {
    if (!ref->is_pdf) return 0;
    const cJSON *q = content->child;
    while (q && q != part) q = q->next;
    if (!q) return glm_err("the part is not in its message");
    cJSON **pages = calloc((size_t)ref->doc.n + 1, sizeof *pages); // the new parts, made before anything changes
    int ok = pages != NULL;
    for (int i = 0; ok && i < ref->doc.n; i++)
        ok = (pages[i] = cJSON_CreateObject()) && cJSON_AddStringToObject(pages[i], "type", "image");
    if (!ok) {
        for (int i = 0; pages && i < ref->doc.n; i++) cJSON_Delete(pages[i]);
        free(pages);
        return glm_err("out of memory");
    }
    // the parts taken out and put back in order, the document's place taken by its pages (cJSON 1.7.15's
    // InsertItemInArray fails after an insertion at the front: appending is the reliable way)
    cJSON *old = content->child;
    content->child = NULL;
    for (cJSON *it = old, *next; it; it = next) {
        next = it->next;
        it->next = it->prev = NULL;
        if (it != part) cJSON_AddItemToArray(content, it);
        else {
            for (int i = 0; i < ref->doc.n; i++) cJSON_AddItemToArray(content, pages[i]);
            cJSON_Delete(it);
        }
    }
    free(pages);
    return 0;
}

int messages_expand_ref(cJSON *messages, const MediaRef *ref) {
    if (!ref->is_pdf) return 0;
    cJSON *msg = cJSON_GetArrayItem(messages, ref->msg);
    cJSON *content = msg ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
    cJSON *part = cJSON_IsArray(content) ? cJSON_GetArrayItem(content, ref->part) : NULL;
    if (!part) return glm_err("%s: the part is gone from the messages", ref->param);
    return media_part_expand(content, part, ref);
}

// ---------------------------------------------------------------------------- a conversation

int messages_add_media(Media *m, const Engine *e, cJSON *messages, const MediaOptions *o, const MediaPolicy *pol) {
    int mi = 0;
    for (cJSON *msg = messages ? messages->child : NULL; msg; msg = msg->next, mi++) {
        cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (!cJSON_IsArray(content)) continue;
        int pi = 0;
        for (cJSON *part = content->child, *next; part; part = next, pi++) {
            next = part->next; // a document part is replaced by its pages
            if (media_part_kind(part) < 0) continue;
            MediaRef ref;
            int rc = media_ref_parse(&ref, part, pol);
            snprintf(ref.param, sizeof ref.param, "messages[%d].content[%d].%s", mi, pi,
                     cJSON_GetObjectItemCaseSensitive(part, "type")->valuestring);
            if (!rc) rc = media_ref_load(m, e, &ref, o, pol) < 0 ? -1 : media_part_expand(content, part, &ref);
            if (!rc && ref.is_pdf && pol->on_document) pol->on_document(pol->ctx, &ref);
            if (rc) {
                char msg2[sizeof glm_errmsg];
                snprintf(msg2, sizeof msg2, "%s", glm_errmsg);
                media_ref_free(&ref);
                return glm_err("messages[%d].content[%d].%s: %s", mi, pi,
                               cJSON_GetObjectItemCaseSensitive(part, "type")->valuestring, msg2);
            }
            media_ref_free(&ref);
        }
    }
    return 0;
}
