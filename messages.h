// SPDX-License-Identifier: MIT
// messages.h - an OpenAI `messages` array as the front ends receive it (messages.c): reading it from a file, and the
// one implementation of the media its parts refer to, used by the CLI's --messages and by the server (openai.c):
// image_url / video_url parts with data: URIs, local paths or file:// URLs, HF's {"type": "image", "path" | "url"}
// items, and documents (OpenAI's {"type": "file", "file": {"file_data": "data:application/pdf;base64,..."}}, or a
// PDF given as an image_url: recognised by its %PDF- header), whose pages become images through pdf.c. Reading a part
// (media_ref_parse: checks, base64, paths) is apart from rendering documents (media_ref_render: no engine needed) and
// from preprocessing (media_ref_load), so a server can do each where it fits.
#ifndef GLM4V_MESSAGES_H
#define GLM4V_MESSAGES_H

#include "engine.h"
#include "pdf.h"

#include <cjson/cJSON.h>

#define MESSAGES_MAX_BYTES (256u << 20) // a --messages file or a request's messages

typedef struct MediaRef MediaRef;

// where media may come from, and how documents become pages
typedef struct {
    const char *allowed_dir; // local files only under this folder (its realpath; relative paths are taken from it);
                             // NULL: any local file, relative to the working directory (the CLI)
    int allow_local;         // 0: no local paths at all (a server without --allowed-media-path)
    int max_images;          // images (document pages included) in one conversation (0: ENGINE_MAX_IMAGES)
    int max_videos;          // videos in one conversation (0: ENGINE_MAX_VIDEOS)
    PdfOptions pdf;          // pages, page limit, DPI, time limit of documents (a part's "pages" / "dpi" override)
    void (*on_document)(void *ctx, const MediaRef *ref); // called by messages_add_media after each document's pages
                                                         // are loaded (the CLI prints their cost line), or NULL
    void *ctx;               // its first argument
} MediaPolicy;

// one media item of a message part, as read (media_ref_parse), rendered (documents) and then loaded
struct MediaRef {
    MediaKind kind;   // MEDIA_IMAGE (images and documents) or MEDIA_VIDEO
    int is_pdf;       // 1: a PDF document: its pages become images, in page order
    uint8_t *data;    // bytes decoded from a data: URI / file_data (owned), or NULL
    size_t len;       // bytes in data
    char *path;       // resolved local file or frames folder (owned), or NULL
    char *pages;      // a document part's "pages" selection ("1-3,7", owned), or NULL: the policy's
    int dpi;          // a document part's "dpi" (0: the policy's)
    PdfDoc doc;       // a document's rendered pages (media_ref_render), doc.n = 0 before
    char name[128];   // label in messages: the filename, the path, or "data: URI"
    char param[128];  // the field it came from ("messages[0].content[1].file")
    int msg, part;    // where the part is: messages[msg].content[part] (for media_part_expand), -1 when not known
};

// read and check a messages file: a JSON array of objects with a "role" string (or {"messages": [...]})
cJSON *messages_read(const char *path);
// the kind of a content part: MEDIA_IMAGE (image_url, image, input_image, file), MEDIA_VIDEO (video_url, video,
// input_video), or -1 when it names no media (text, unknown types)
int media_part_kind(const cJSON *part);
// read a media part into ref (zeroed first): its URL or file_data checked against the policy, data: URIs decoded,
// local paths resolved, documents recognised (%PDF- header, application/pdf); -1 + glm_errmsg (without the part's
// name, which the caller adds). The part must be one media_part_kind accepts
int media_ref_parse(MediaRef *ref, const cJSON *part, const MediaPolicy *pol);
// render a document's pages (nothing for other media); -1 + glm_errmsg
int media_ref_render(MediaRef *ref, const MediaPolicy *pol, const ProcConfig *pc);
// preprocess the item into m (a document: each rendered page, rendering it first when not done); the items added
// (pages for a document, else 1), or -1 + glm_errmsg (m as before)
int media_ref_load(Media *m, const Engine *e, MediaRef *ref, const MediaOptions *o, const MediaPolicy *pol);
void media_ref_free(MediaRef *ref);
// a document part of a message replaced by one {"type": "image"} part per rendered page (what the chat template then
// shows as one image each); other parts unchanged. part must be an item of its message's content array
int media_part_expand(cJSON *content, cJSON *part, const MediaRef *ref);
// media_part_expand on the part ref->msg / ref->part of messages (expand the last part first: earlier indices stay)
int messages_expand_ref(cJSON *messages, const MediaRef *ref);

// attach every image, video and document page the messages refer to, in order, each document part replaced by its
// pages' image parts (media_part_expand); -1 + glm_errmsg naming the part ("messages[1].content[0].image_url: ...")
int messages_add_media(Media *m, const Engine *e, cJSON *messages, const MediaOptions *o, const MediaPolicy *pol);
// a video file's bytes (a data: URI's) attached to m: written to a private temporary file for the decoder (ffmpeg),
// removed at once; -1 + glm_errmsg
int media_add_video_mem(Media *m, const Engine *e, const uint8_t *bytes, size_t n, const MediaOptions *o);
// decode standard base64 (whitespace ignored); malloc'd bytes in *out, or -1 + glm_errmsg
int base64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);
// encode n bytes as standard base64 with padding, after prefix (e.g. "data:image/png;base64,"): malloc'd string,
// or NULL + glm_errmsg
char *base64_encode(const uint8_t *p, size_t n, const char *prefix);

#endif
