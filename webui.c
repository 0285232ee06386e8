// SPDX-License-Identifier: MIT
// webui.c - the chat page's files (webui/index.html, style.css, boxes.js, app.js, favicon.svg), embedded at build
// time by the Makefile (build/webui_assets.h, one NUL-terminated byte array per file), looked up by URL path for
// server.c. No network, no CDN: the page is these five files and the server's public API.
#include "webui.h"

#include "webui_assets.h"

#include <string.h>

#define FILE_ENTRY(url, arr, type) {url, arr, sizeof arr - 1, type}

static const WebuiFile files[] = {
    FILE_ENTRY("/", webui_index_html, "text/html; charset=utf-8"),
    FILE_ENTRY("/index.html", webui_index_html, "text/html; charset=utf-8"),
    FILE_ENTRY("/style.css", webui_style_css, "text/css; charset=utf-8"),
    FILE_ENTRY("/boxes.js", webui_boxes_js, "text/javascript; charset=utf-8"),
    FILE_ENTRY("/app.js", webui_app_js, "text/javascript; charset=utf-8"),
    FILE_ENTRY("/favicon.svg", webui_favicon_svg, "image/svg+xml"),
    FILE_ENTRY("/favicon.ico", webui_favicon_svg, "image/svg+xml"), // browsers ask for it unprompted
};

const WebuiFile *webui_find(const char *url) {
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (!strcmp(url, files[i].path)) return &files[i];
    return NULL;
}
