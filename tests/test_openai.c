// SPDX-License-Identifier: MIT
// test_openai.c - openai.c on its own: base64 (against Python's base64 module), UTF-8 validation (against Python's
// bytes.decode), request fields read and refused with the right param, local-path rules under an allowed folder,
// the rendered prompt (the same template code as the CLI's chat_render), and the reasoning split on the tiny
// checkpoint's <think> / </think> ids.
#include "messages.h"
#include "openai.h"

#include "fileio.h"
#include "test_util.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// a chat body of one user message: a part (JSON text) then a text part
static char *one_part_body(const char *part) {
    static const char *fmt = "{\"messages\":[{\"role\":\"user\",\"content\":[%s,{\"type\":\"text\",\"text\":\"Q\"}]}]}";
    size_t n = strlen(fmt) + strlen(part) + 1;
    char *b = malloc(n);
    snprintf(b, n, fmt, part);
    return b;
}

// a data: URI of a test data file (malloc'd)
static char *data_uri(const char *rel, const char *mime) {
    char path[4096], prefix[64];
    snprintf(path, sizeof path, "%s/%s", test_data_dir(), rel);
    snprintf(prefix, sizeof prefix, "data:%s;base64,", mime);
    size_t len = 0;
    char *bytes = read_file(path, &len, 1 << 24);
    char *uri = bytes ? base64_encode((const uint8_t *)bytes, len, prefix) : NULL;
    free(bytes);
    return uri;
}

// parse a chat body; returns 0 or -1 with the error's param in err
static int chat(const char *body, ChatRequest *r, OaError *err, const char *media_dir) {
    OaLimits lim = {media_dir, ENGINE_MAX_IMAGES, ENGINE_MAX_VIDEOS};
    return openai_parse_chat(r, body, strlen(body), &lim, err);
}

static void bad(const char *body, const char *param, const char *media_dir) {
    ChatRequest r;
    OaError err = {{0}, {0}};
    int rc = chat(body, &r, &err, media_dir);
    CHECK(rc == -1 && !strcmp(err.param, param), "refused with param '%s': %.70s (got %d, '%s': %s)", param, body, rc,
          err.param, err.message);
    if (!rc) openai_request_free(&r);
}

int main(void) {
    // base64: python3 -c 'import base64; print(base64.b64encode(b"hello glm"))' -> aGVsbG8gZ2xt
    uint8_t *out = NULL;
    size_t n = 0;
    CHECK(!base64_decode("aGVsbG8gZ2xt", 12, &out, &n) && n == 9 && !memcmp(out, "hello glm", 9), "base64: hello glm");
    free(out);
    // base64.b64encode(b"\xfb\xff") = b'+/8=', base64.urlsafe_b64encode = b'-_8='; whitespace skipped, padding optional
    CHECK(!base64_decode("+/8=", 4, &out, &n) && n == 2 && out[0] == 0xfb && out[1] == 0xff, "base64: + / alphabet");
    free(out);
    CHECK(!base64_decode("-_8", 3, &out, &n) && n == 2 && out[0] == 0xfb && out[1] == 0xff, "base64: URL alphabet, no padding");
    free(out);
    CHECK(!base64_decode("aGVs\nbG8=", 9, &out, &n) && n == 5 && !memcmp(out, "hello", 5), "base64: a newline inside");
    free(out);
    CHECK(base64_decode("a", 1, &out, &n) == -1, "base64: a lone 6-bit group is refused");
    CHECK(base64_decode("aGVs*", 5, &out, &n) == -1, "base64: a character outside the alphabet is refused");
    CHECK(base64_decode("aG==bG8=", 8, &out, &n) == -1, "base64: data after padding is refused");

    // UTF-8 (Python's bytes.decode('utf-8') accepts exactly these)
    CHECK(utf8_valid("h\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 12), "utf8: 2-, 3- and 4-byte characters");
    CHECK(!utf8_valid("\xc0\x80", 2), "utf8: overlong NUL refused");
    CHECK(!utf8_valid("\xed\xa0\x80", 3), "utf8: a surrogate refused");
    CHECK(!utf8_valid("\xe4\xb8", 2), "utf8: a cut character refused");
    CHECK(!utf8_valid("\xf4\x90\x80\x80", 4), "utf8: above U+10FFFF refused");
    CHECK(!utf8_valid("\xff", 1), "utf8: 0xff refused");

    // fields
    ChatRequest r;
    OaError err;
    int rc = chat("{\"model\":\"x\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":"
                  "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\","
                  "\"content\":\"A\",\"reasoning\":\"R\"}],\"max_completion_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,"
                  "\"top_k\":-1,\"seed\":-1,\"stop\":[\"x\",\"\",\"yz\"],\"logprobs\":true,\"top_logprobs\":3,\"stream\":true,"
                  "\"stream_options\":{\"include_usage\":true},\"chat_template_kwargs\":{\"enable_thinking\":false},"
                  "\"presence_penalty\":0.5,\"user\":\"u\",\"tools\":[],\"response_format\":{\"type\":\"text\"}}",
                  &r, &err, NULL);
    CHECK(!rc, "a full request parses (%s)", rc ? err.message : "");
    if (!rc) {
        CHECK(r.nmsgs == 3 && r.msgs[0].role == OA_SYSTEM && r.msgs[1].role == OA_USER && !strcmp(r.msgs[1].content, "ab") &&
              r.msgs[2].role == OA_ASSISTANT && r.msgs[2].reasoning && !strcmp(r.msgs[2].reasoning, "R"),
              "messages: roles, text parts joined, reasoning kept");
        CHECK(r.max_tokens == 7 && r.temperature == 0.5f && r.top_p == 0.9f && r.top_k == 0 && r.has_seed &&
              r.seed == UINT64_MAX && r.nstop == 2 && !strcmp(r.stop[1], "yz") && r.logprobs && r.top_logprobs == 3 &&
              r.stream && r.include_usage && !r.think,
              "sampling fields, stop (empty dropped), logprobs, stream_options, enable_thinking");
        openai_request_free(&r);
    }
    rc = chat("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"name\":\"n\"}],\"temperature\":null,\"n\":1}", &r, &err, NULL);
    CHECK(!rc && r.temperature < 0 && r.max_tokens == -1 && r.think == 1, "null fields read as not given; defaults");
    if (!rc) openai_request_free(&r);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"seed\":1.5}", "seed", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\"}]}", "tools[0]", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"maybe\"}", "tool_choice", NULL);
    rc = chat("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":"
              "{\"name\":\"f\",\"parameters\":{}}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}",
              &r, &err, NULL);
    CHECK(!rc && cJSON_GetArraySize(r.tools_json) == 1 && !strcmp(r.tool_choice, "f"),
          "tools kept for the template, a named tool_choice read");
    if (!rc) openai_request_free(&r);
    // a required call, or a named function, needs that function among the tools; top_logprobs needs logprobs
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":"
        "{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", "tool_choice", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"required\"}", "tool_choice", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[],\"tool_choice\":{\"type\":\"function\","
        "\"function\":{\"name\":\"f\"}}}", "tool_choice", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_logprobs\":2}", "top_logprobs", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":false,\"top_logprobs\":2}", "top_logprobs", NULL);
    rc = chat("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"none\",\"top_logprobs\":0}", &r, &err,
              NULL);
    CHECK(!rc && !strcmp(r.tool_choice, "none") && !r.logprobs, "tool_choice none without tools, top_logprobs 0 alone: read");
    if (!rc) openai_request_free(&r);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":[1]}", "stop", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream_options\":{\"include_usage\":1}}",
        "stream_options.include_usage", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"chat_template_kwargs\":{\"enable_thinking\":\"no\"}}",
        "chat_template_kwargs.enable_thinking", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"audio\"}]}]}", "messages[0].content[0]", NULL);
    bad("{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]}]}",
        "messages[0]", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://h/a.png\"}}]}]}",
        "messages[0].content[0].image_url", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"a.png\"}}]}]}",
        "messages[0].content[0].image_url", NULL); // no --allowed-media-path: local paths refused
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,AAAA\"}}]}]}",
        "messages[0].content[0].image_url", NULL); // not base64
    // a video as a data: URI (the chat page sends a picked file so): its bytes kept for the decoder
    rc = chat("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video_url\",\"video_url\":{\"url\":\"data:video/mp4;base64,aGVsbG8gZ2xt\"}}]}]}",
              &r, &err, NULL);
    CHECK(!rc && r.nmedia == 1 && r.media[0].kind == MEDIA_VIDEO && r.media[0].len == 9 && !memcmp(r.media[0].data, "hello glm", 9) &&
          !r.media[0].path, "a video data: URI: its bytes kept (%s)", rc ? err.message : "");
    if (!rc) openai_request_free(&r);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video_url\",\"video_url\":{\"url\":\"data:video/mp4,AAAA\"}}]}]}",
        "messages[0].content[0].video_url", NULL); // not base64

    // base64_encode: python3 -c 'import base64; print(base64.b64encode(b"hello glm"), base64.b64encode(b"\xfb\xff"),
    // base64.b64encode(b"ab"))' -> aGVsbG8gZ2xt +/8= YWI=
    char *enc = base64_encode((const uint8_t *)"hello glm", 9, NULL);
    CHECK(enc && !strcmp(enc, "aGVsbG8gZ2xt"), "base64_encode: hello glm (%s)", enc ? enc : "NULL");
    free(enc);
    enc = base64_encode((const uint8_t *)"\xfb\xff", 2, "data:x;base64,");
    CHECK(enc && !strcmp(enc, "data:x;base64,+/8="), "base64_encode: padding and a prefix (%s)", enc ? enc : "NULL");
    free(enc);
    enc = base64_encode((const uint8_t *)"ab", 2, "");
    CHECK(enc && !strcmp(enc, "YWI="), "base64_encode: ab (%s)", enc ? enc : "NULL");
    free(enc);

    // documents: OpenAI's file part, and a PDF as an image_url, recognised by its %PDF- header; read, not rendered
    char *pdf_uri = data_uri("pdf/doc.pdf", "application/pdf"), *png_uri = data_uri("images/synth_97x61.png", "image/png");
    CHECK(pdf_uri && png_uri, "data: URIs of doc.pdf and synth_97x61.png");
    size_t blen = strlen(pdf_uri) + 200;
    char *part = malloc(blen), *body;
    snprintf(part, blen, "{\"type\":\"file\",\"file\":{\"file_data\":\"%s\",\"filename\":\"doc.pdf\",\"pages\":\"2,4\"}}", pdf_uri);
    body = one_part_body(part);
    rc = chat(body, &r, &err, NULL);
    CHECK(!rc && r.nmedia == 1 && r.media[0].is_pdf && r.media[0].kind == MEDIA_IMAGE && r.media[0].len == 31509 &&
          !strcmp(r.media[0].pages, "2,4") && !strcmp(r.media[0].name, "doc.pdf") && r.media[0].msg == 0 &&
          r.media[0].part == 0 && !strcmp(r.media[0].param, "messages[0].content[0].file"),
          "a file part: a PDF of 31509 bytes, pages 2,4 (%s)", rc ? err.message : "");
    if (!rc) openai_request_free(&r);
    free(body);
    snprintf(part, blen, "{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}", pdf_uri);
    body = one_part_body(part);
    rc = chat(body, &r, &err, NULL);
    CHECK(!rc && r.nmedia == 1 && r.media[0].is_pdf, "a data:application/pdf image_url is a document (%s)", rc ? err.message : "");
    if (!rc) openai_request_free(&r);
    free(body);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_id\":\"file-1\"}}]}]}",
        "messages[0].content[0].file", NULL); // uploads are not kept
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_data\":\"data:application/pdf;base64,AAAA\"}}]}]}",
        "messages[0].content[0].file", NULL); // not a PDF
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_data\":\"@@@\"}}]}]}",
        "messages[0].content[0].file", NULL); // not base64
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":\"x.pdf\"}]}]}",
        "messages[0].content[0].file", NULL);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:application/pdf;base64,AAAA\"}}]}]}",
        "messages[0].content[0].image_url", NULL); // application/pdf without a PDF in it
    snprintf(part, blen, "{\"type\":\"file\",\"file\":{\"file_data\":\"%s\",\"dpi\":5000}}", pdf_uri);
    body = one_part_body(part);
    bad(body, "messages[0].content[0].file", NULL); // dpi out of range
    free(body);

    // local paths: resolved under the allowed folder; a folder is a video, never an image; outside is refused
    char dir[PATH_MAX];
    CHECK(realpath(test_data_dir(), dir) != NULL, "realpath of the test data folder");
    rc = chat("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"images/synth_97x61.png\"}},"
              "{\"type\":\"video_url\",\"video_url\":{\"url\":\"video_frames\"}},{\"type\":\"text\",\"text\":\"q\"}]}]}",
              &r, &err, dir);
    CHECK(!rc && r.nmedia == 2 && r.media[0].kind == MEDIA_IMAGE && r.media[1].kind == MEDIA_VIDEO &&
          strstr(r.media[0].path, "/images/synth_97x61.png") && r.msgs[0].nmedia == 2,
          "an image file and a frames folder under the allowed folder (%s)", rc ? err.message : "");
    if (!rc) openai_request_free(&r);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"video_frames\"}}]}]}",
        "messages[0].content[0].image_url", dir);
    rc = chat("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"pdf/doc.pdf\"}}]}]}",
              &r, &err, dir);
    CHECK(!rc && r.nmedia == 1 && r.media[0].is_pdf && !r.media[0].data && strstr(r.media[0].path, "/pdf/doc.pdf"),
          "a PDF by a path under the allowed folder is a document (%s)", rc ? err.message : "");
    if (!rc) openai_request_free(&r);
    bad("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"../../Makefile\"}}]}]}",
        "messages[0].content[0].image_url", dir);
    // a symlink in the folder to a folder outside: a missing file through it is 'outside' as a present one is (no
    // probing of the outside through the messages); a missing file in the folder itself says so
    char tmp[] = "/tmp/glm4v-test-media-XXXXXX", sub[PATH_MAX + 64], media[PATH_MAX + 64];
    if (mkdtemp(tmp)) {
        snprintf(sub, sizeof sub, "%s/outside", tmp), snprintf(media, sizeof media, "%s/media", tmp);
        char link[PATH_MAX + 80], present[PATH_MAX + 80];
        snprintf(link, sizeof link, "%s/link", media), snprintf(present, sizeof present, "%s/present.png", sub);
        FILE *f = !mkdir(sub, 0700) && !mkdir(media, 0700) && !symlink(sub, link) ? fopen(present, "w") : NULL;
        if (f) fclose(f);
        char msg[3][sizeof err.message];
        const char *urls[3] = {"link/present.png", "link/missing.png", "missing.png"};
        for (int k = 0; k < 3; k++) {
            char b[256];
            snprintf(b, sizeof b, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
                     "{\"url\":\"%s\"}}]}]}", urls[k]);
            rc = chat(b, &r, &err, media);
            snprintf(msg[k], sizeof msg[k], "%s", rc ? err.message : "read");
            if (!rc) openai_request_free(&r);
        }
        CHECK(f && strstr(msg[0], "link/present.png is outside --allowed-media-path") &&
              strstr(msg[1], "link/missing.png is outside --allowed-media-path") &&
              strstr(msg[2], "missing.png: No such file or directory"),
              "a symlink out of the folder: present and missing files both 'outside' (%s | %s | %s)", msg[0], msg[1],
              msg[2]);
        unlink(present), unlink(link), rmdir(sub), rmdir(media), rmdir(tmp);
    } else
        CHECK(0, "mkdtemp: %s", strerror(errno));

    // rendering and the reasoning split need the tiny checkpoint
    Engine e;
    if (engine_load(&e, "weights/tiny-glm4v-moe", NULL, NULL, NULL)) {
        CHECK(0, "engine_load: %s", glm_errmsg);
        return test_done();
    }
    rc = chat("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
              "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},{\"type\":\"text\",\"text\":\"Q\"}]}]}", &r, &err, NULL);
    // the checkpoint's chat template (here the built-in one, rendered as jinja2 renders it: tests/cli_templates.sh)
    char *text = NULL;
    const char *want = "[gMASK]<sop><|system|>\nS<|user|>\n<|begin_of_image|><|image|><|end_of_image|>Q<|assistant|>";
    CHECK(!rc && !openai_render(&e, &r, 1, &text) && !strcmp(text, want), "render: the chat template over the messages");
    free(text);
    want = "[gMASK]<sop><|system|>\nS<|user|>\n<|begin_of_image|><|image|><|end_of_image|>Q/nothink<|assistant|>\n"
           "<think></think>";
    CHECK(!openai_render(&e, &r, 0, &text) && !strcmp(text, want), "render, thinking off: enable_thinking=false");
    free(text);
    if (!rc) openai_request_free(&r);
    rc = chat("{\"messages\":[{\"role\":\"user\",\"content\":\"1\"},{\"role\":\"assistant\",\"content\":\"A\","
              "\"reasoning_content\":\"R\"}]}", &r, &err, NULL);
    want = "[gMASK]<sop><|user|>\n1<|assistant|>\n<think>R</think>\nA<|assistant|>";
    CHECK(!rc && !openai_render(&e, &r, 1, &text) && !strcmp(text, want),
          "an assistant turn's reasoning_content reaches the template (after the last user turn it is kept)");
    free(text);
    if (!rc) openai_request_free(&r);

    // documents through the engine: an image, a file part's pages 2 and 4, a PDF image_url's page 3 (the server's
    // "pages" in the file object; an image_url document takes the policy's pages) -> 1 + 2 + 4 images in order, each
    // document part replaced in the messages by one image part per page
    {
        size_t bl = 2 * strlen(pdf_uri) + strlen(png_uri) + 600;
        char *b = malloc(bl);
        snprintf(b, bl, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":\"%s\"},"
                 "{\"type\":\"file\",\"file\":{\"file_data\":\"%s\",\"filename\":\"doc.pdf\",\"pages\":\"2,4\"}},"
                 "{\"type\":\"text\",\"text\":\"Q\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}]}]}",
                 png_uri, pdf_uri, pdf_uri);
        rc = chat(b, &r, &err, NULL);
        MediaPolicy pol = {.max_images = ENGINE_MAX_IMAGES, .max_videos = ENGINE_MAX_VIDEOS, .pdf = {.max_pages = 16}};
        MediaOptions mo = {.resize = RESIZE_TORCH, .max_image_pixels = 100000000, .fps = 2};
        Media m = {0};
        // doc.pdf at 150 dpi: pages 2 and 4 take 432 + 336 tokens; the second document's 4 pages 1671
        CHECK(!rc && openai_render_documents(&r, &pol, &e.c->proc, 2000, &err) == -1 &&
              !strcmp(err.param, "messages[0].content[3].image_url") && strstr(err.message, "--max-visual-tokens"),
              "documents above the visual-token budget: refused, naming the part (%s)", err.message);
        CHECK(!rc && !openai_render_documents(&r, &pol, &e.c->proc, 0, &err) && r.media[1].doc.n == 2 &&
              r.media[2].doc.n == 4, "documents rendered (%s)", err.message);
        CHECK(!rc && !openai_load_media(&e, &r, &m, &mo, &pol, 0, 0, &err) && m.img.nitems == 7 && m.img_w[1] == 750 &&
              m.img_w[2] == 600 && m.img_h[2] == 450 && m.img_w[5] == 450,
              "1 image + 2 + 4 pages preprocessed in order (%s)", err.message);
        text = NULL;
        const char *img = "<|begin_of_image|><|image|><|end_of_image|>";
        char w2[1024];
        snprintf(w2, sizeof w2, "[gMASK]<sop><|user|>\n%s%s%sQ%s%s%s%s<|assistant|>", img, img, img, img, img, img, img);
        CHECK(!rc && !openai_render(&e, &r, 1, &text) && !strcmp(text, w2), "the template shows one image per page: %s",
              text ? text : glm_errmsg);
        free(text);
        media_free(&m);
        if (!rc) openai_request_free(&r);
        // the same conversation as a --messages file: messages_add_media, the same reader
        cJSON *msgs = cJSON_Parse(b);
        cJSON *arr = cJSON_DetachItemFromObject(msgs, "messages");
        cJSON_Delete(msgs);
        Media m2 = {0};
        pol.allow_local = 1;
        CHECK(!messages_add_media(&m2, &e, arr, &mo, &pol) && m2.img.nitems == 7 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "content")) == 8,
              "messages_add_media: the same 7 images, the parts expanded (%s)", glm_errmsg);
        cJSON_Delete(arr);
        media_free(&m2);
        free(b);
    }
    free(part), free(pdf_uri), free(png_uri);

    // the reasoning / content / tool-call split of answers is chat_output.c's (tests/test_chat_output.c, and the
    // server's answers in tests/cli_server.sh)
    engine_free(&e);
    return test_done();
}
