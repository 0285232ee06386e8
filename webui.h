// SPDX-License-Identifier: MIT
// webui.h - the chat page of `glm4v serve` (webui.c): the files of webui/ (HTML, CSS, JavaScript, icon), embedded in
// the binary at build time, looked up by URL path, with the security headers they are served with. After
// llama.cpp's tools/server/webui (built into llama-server the same way).
#ifndef GLM4V_WEBUI_H
#define GLM4V_WEBUI_H

#include <stddef.h>

// the page's Content-Security-Policy: only its own scripts and styles, no inline code or eval, requests only to the
// server itself, images and videos from data: / blob: URLs (the attachments), no framing
#define WEBUI_CSP                                                                                                      \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' data: "    \
    "blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// one embedded file
typedef struct {
    const char *path;          // URL path it answers ("/", "/app.js", ...)
    const unsigned char *data; // its bytes
    size_t len;                // byte count
    const char *type;          // Content-Type
} WebuiFile;

// the embedded file for a URL path ("/" and "/index.html": the page), or NULL
const WebuiFile *webui_find(const char *url);

#endif
