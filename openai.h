// SPDX-License-Identifier: MIT
// openai.h - OpenAI-style requests (openai.c): the JSON of /v1/chat/completions and /v1/completions checked and read
// into a ChatRequest (messages with text; images, videos and PDF documents read by messages.c's media reader, the one
// the CLI's --messages uses; sampling parameters), documents rendered, the media loaded into the engine (each document
// part then replaced by its pages' image parts), and the conversation rendered to prompt text. Mirrors vLLM's
// entrypoints/openai/protocol.py (ChatCompletionRequest) and chat_utils.py (media parts).
#ifndef GLM4V_OPENAI_H
#define GLM4V_OPENAI_H

#include "engine.h"
#include "messages.h"

#include <stddef.h>
#include <stdint.h>

#define OA_MAX_STOP 16      // stop strings in one request
#define OA_MAX_STOP_LEN 256 // bytes of one stop string
#define OA_MAX_TOP_LOGPROBS 20

// a request error: the offending field (OpenAI's "param", "" when none) and a one-line message
// a message's role
enum { OA_SYSTEM = 0, OA_USER = 1, OA_ASSISTANT = 2, OA_TOOL = 3 };

typedef struct {
    char param[96];   // e.g. "messages[1].content[0].image_url", "temperature"
    char message[1100]; // what is wrong, for a person
} OaError;

// one message of a conversation
typedef struct {
    int role;        // OA_SYSTEM, OA_USER, OA_ASSISTANT, OA_TOOL (role "tool")
    char *content;   // text parts joined (owned; "" when none)
    char *reasoning; // assistant reasoning_content / reasoning (owned), or NULL
    int media0;      // its media are ChatRequest.media[media0 .. media0 + nmedia)
    int nmedia;      // how many
} OaMessage;

// what the server accepts of a request (from its flags)
typedef struct {
    const char *media_dir; // realpath of --allowed-media-path, or NULL: local paths refused
    int max_images;        // images in one request
    int max_videos;        // videos in one request
} OaLimits;

// a parsed /v1/chat/completions (chat = 1) or /v1/completions (chat = 0) request
typedef struct {
    int chat;                 // 1: messages; 0: raw prompt
    OaMessage *msgs;          // [nmsgs] the conversation (chat)
    int nmsgs;                // messages
    MediaRef *media;          // [nmedia] every image / video / document, in order
    int nmedia;               // media items
    char *prompt;             // raw prompt (completions, owned), or NULL when given as token ids
    int *prompt_ids;          // completions: the prompt as token ids (owned), or NULL
    int nprompt_ids;          // ids in prompt_ids
    int think;                // chat_template_kwargs.enable_thinking (default 1)
    int max_tokens;           // max_tokens / max_completion_tokens; -1: until the context is full
    float temperature;        // -1: the checkpoint's default (generation_config.json)
    float top_p;              // -1: default
    int top_k;                // -1: default; 0: all
    float repetition_penalty; // -1: default
    uint64_t seed;            // sampling seed
    int has_seed;             // 1 when the request gave one
    char *stop[OA_MAX_STOP];  // stop strings (owned)
    int nstop;                // stop strings given
    int logprobs;             // 1: return the chosen token's log-probability
    int top_logprobs;         // alternatives per token (0..20)
    int stream;               // 1: Server-Sent Events
    int include_usage;        // stream_options.include_usage
    int ignore_eos;           // 1: generate past end-of-sequence tokens (vLLM / llama-server ignore_eos; benchmarks)
    int *bias_ids;            // logit_bias: token ids (owned), or NULL
    float *bias_vals;         // [nbias] added to those tokens' logits before sampling (-100..100)
    int nbias;                // entries in logit_bias
    char *tool_choice;        // "auto", "none", "required", or the named function's name (owned), or NULL
    cJSON *messages;          // the request's messages as sent (owned): what the chat template renders
    cJSON *tools_json;        // the request's tools (owned), or NULL
    cJSON *kwargs;            // chat_template_kwargs (owned), or NULL
} ChatRequest;

// a request body as a cJSON object: exactly one JSON value (only whitespace after it), an object, no \u0000 in its
// strings; NULL with err filled (a 400 for the client) otherwise
cJSON *openai_parse_body(const char *body, size_t len, OaError *err);
// read a /v1/chat/completions body; 0, or -1 with err filled (a 400 for the client)
int openai_parse_chat(ChatRequest *r, const char *body, size_t len, const OaLimits *lim, OaError *err);
// read a /v1/completions body (prompt: a string or a one-string list); 0 or -1 with err
int openai_parse_completion(ChatRequest *r, const char *body, size_t len, OaError *err);
void openai_request_free(ChatRequest *r);

// render the request's documents (no engine lock needed: pdf.c runs pdftoppm); their visual tokens together above
// max_tokens (> 0) refused; -1 with err naming the part
int openai_render_documents(ChatRequest *r, const MediaPolicy *pol, const ProcConfig *pc, int64_t max_tokens,
                            OaError *err);
// preprocess the request's images, videos and document pages into m (in order; documents rendered first when not
// done), then replace each document part of r->messages by one image part per page; -1 with err naming the field.
// Stops at the item whose visual tokens, with those before it, pass max_visual or max_prompt (each 0: no limit; the
// prompt's room in the context), so a request over its limits is refused before its other items are decoded
int openai_load_media(const Engine *e, ChatRequest *r, Media *m, const MediaOptions *o, const MediaPolicy *pol,
                      int64_t max_visual, int64_t max_prompt, OaError *err);
// visual tokens of every image and video in m: t * h * w / merge^2 of each item's grid
int64_t openai_visual_tokens(const Engine *e, const Media *m);
// the prompt text of a request (special tokens as text, malloc'd into *text): the checkpoint's chat template over the
// request's messages, tools and chat_template_kwargs (think 0: enable_thinking false). Completions: the prompt
// verbatim
int openai_render(const Engine *e, const ChatRequest *r, int think, char **text);

#endif
