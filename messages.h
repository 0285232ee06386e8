// SPDX-License-Identifier: MIT
// messages.h - an OpenAI `messages` array as the front ends receive it (messages.c): reading it from a file, and the
// images and videos it refers to (image_url / video_url parts with data: URIs, local paths or file:// URLs, and HF's
// {"type": "image", "path" | "url"} items), attached to a Media in the order the template places them.
#ifndef GLM4V_MESSAGES_H
#define GLM4V_MESSAGES_H

#include "engine.h"

#include <cjson/cJSON.h>

#define MESSAGES_MAX_BYTES (256u << 20) // a --messages file or a request's messages

// where media may come from
typedef struct {
    const char *allowed_dir; // local files only under this folder (realpath); NULL: any local file (the CLI)
    int allow_local;         // 0: no local paths at all (a server without --allowed-media-path)
} MediaPolicy;

// read and check a messages file: a JSON array of objects with a "role" string (or {"messages": [...]})
cJSON *messages_read(const char *path);
// attach every image and video the messages refer to, in order; -1 + glm_errmsg naming the part
// ("messages[1].content[0].image_url: ...")
int messages_add_media(Media *m, const Engine *e, const cJSON *messages, const MediaOptions *o, const MediaPolicy *pol);
// a video file's bytes (a data: URI's) attached to m: written to a private temporary file for the decoder (ffmpeg),
// removed at once; -1 + glm_errmsg
int media_add_video_mem(Media *m, const Engine *e, const uint8_t *bytes, size_t n, const MediaOptions *o);
// decode standard base64 (whitespace ignored); malloc'd bytes in *out, or -1 + glm_errmsg
int base64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);

#endif
