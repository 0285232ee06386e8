// SPDX-License-Identifier: MIT
// engine.h - the one place that owns a loaded model and its sessions (engine.c), between the front ends (the CLI,
// the bench, the tests; later the server and the scorer) and the model, as llama.cpp's mtmd.cpp sits between clip.cpp
// and mtmd-cli.cpp. It mirrors HF Glm4vModel.forward's joining of media and text:
//   media (images, videos) -> Glm4vImageProcessor / Glm4vVideoProcessor -> vision tower (get_image_features)
//   prompt text -> tokenizer -> placeholder expansion (Glm4vProcessor) -> M-RoPE positions (get_rope_index)
//   embed_tokens + masked_scatter of the features -> decoder prefill in chunks -> one decode step at a time.
// Nothing here prints or exits: errors come back as -1 with the one-line message in glm_errmsg.
#ifndef GLM4V_ENGINE_H
#define GLM4V_ENGINE_H

#include "chat_template.h"
#include "model.h"
#include "preprocess.h"
#include "prompt.h"
#include "sampler.h"
#include "tokenizer.h"

#define ENGINE_MAX_IMAGES PIXEL_BATCH_MAX_ITEMS // images in one prompt (one PixelBatch holds them)
#define ENGINE_MAX_VIDEOS 16                    // videos in one prompt

// progress of a long step (loading, encoding, prefill), for a front end's status line; NULL = none
typedef void (*ProgressFn)(void *ctx, const char *msg);

// a loaded model: the mapped checkpoint, its bound weights and tokenizer; shared read-only by every session
typedef struct {
    Checkpoint ck;               // config + mmap'd shards
    Weights w;                   // typed views into the shards
    Tokenizer *tok;              // tokenizer.json
    ChatTemplate tmpl;           // the chat template (the folder's, an override, or the built-in one)
    const Config *c;             // = &ck.cfg
    int think_open, think_close; // <think> / </think> token ids (-1 if absent)
    ProgressFn progress;         // status callback (NULL: silent)
    void *progress_ctx;          // its first argument
} Engine;

// open a model folder: map and check every tensor, load the tokenizer and the chat template (chat_template: a file
// that overrides the folder's, or NULL); -1 + glm_errmsg on error
int engine_load(Engine *e, const char *model_dir, const char *chat_template, ProgressFn progress, void *progress_ctx);
// the same for a folder or a llama.cpp GGUF model: model ending in .gguf is the text file (its metadata gives the
// config, tokenizer and chat template; gguf_model.h), mmproj its vision file (NULL: text only); processor (NULL:
// the folder's, or for GGUF HF's defaults for the model) an HF processor_config.json / preprocessor_config.json whose
// settings (min / max pixels, video sampling) replace them
int engine_load_files(Engine *e, const char *model, const char *mmproj, const char *processor,
                      const char *chat_template, ProgressFn progress, void *progress_ctx);
void engine_free(Engine *e);
// 1 when id is one of the checkpoint's end-of-sequence ids
int engine_is_eos(const Engine *e, int id);
// the arithmetic of every dense Linear, process-wide (set before running the model): "f32" (default: fp32, HF fp32
// parity) or "bf16" (input rows rounded to bf16, fp32 accumulation: ops_bf16.h); -1 + glm_errmsg on another name
int engine_set_compute(const char *mode);
// "f32" or "bf16", and the kernel path that runs it ("fp32", "avx512bf16", "avx2-emulation", "portable-emulation")
const char *engine_compute(void);
const char *engine_compute_path(void);

// ---------------------------------------------------------------------------- media

// how media files become pixels
typedef struct {
    ResizeMode resize;        // torchvision (default) or Pillow resampling
    int64_t max_image_pixels; // images larger than this are refused before decoding
    float fps;                // frame rate of a folder of frames
} MediaOptions;

// the images and videos of one conversation, in order of appearance, preprocessed and (once encoded) their features
typedef struct {
    PixelBatch img;                     // every image, one item each
    PixelBatch vid;                     // every video, one item each (t' = frames / 2, h, w)
    int img_w[ENGINE_MAX_IMAGES];       // original pixel width of each image (grounding boxes)
    int img_h[ENGINE_MAX_IMAGES];       // original pixel height of each image
    char *img_path[ENGINE_MAX_IMAGES];  // each image's file (owned copies)
    int **stamp_ids[ENGINE_MAX_VIDEOS]; // [video][t'] token ids of each temporal patch's timestamp text
    int *stamp_len[ENGINE_MAX_VIDEOS];  // [video][t'] their counts
    float *img_embeds;                  // [n_img_tok, H] merger output of the encoded images
    float *vid_embeds;                  // [n_vid_tok, H] merger output of the encoded video frames
    int64_t n_img_tok, n_vid_tok;       // feature rows encoded so far
    int img_done, vid_done;             // items already through the vision tower
} Media;

// Glm4vImageProcessor on one image file: decode, smart_resize, resize, normalise, patchify (appended to m->img)
int media_add_image(Media *m, const Engine *e, const char *path, const MediaOptions *o);
// the same for an image file's bytes in memory (a data: URI); name labels it in messages
int media_add_image_mem(Media *m, const Engine *e, const uint8_t *buf, size_t len, const char *name,
                        const MediaOptions *o);
// the same on pixels already decoded (a rendered PDF page); name labels it (img_path)
int media_add_image_rgb(Media *m, const Engine *e, const Image *im, const char *name, const MediaOptions *o);
// Glm4vVideoProcessor on a folder of frames (frame i at i / fps s) or a video file (ffmpeg, sampled); the timestamp
// text of each temporal patch is tokenized here
int media_add_video(Media *m, const Engine *e, const char *path, const MediaOptions *o);
// run the vision tower over the items not encoded yet (Glm4vModel.get_image_features / get_video_features)
int media_encode(Media *m, const Engine *e, const TapSink *taps);
// the vision tower over the next item not encoded yet of one kind (MEDIA_IMAGE / MEDIA_VIDEO) only: the same rows as
// media_encode gives it (the tower treats items independently); the server caches features item by item
int media_encode_next(Media *m, const Engine *e, int type);
// the next item's features taken from elsewhere (a cache of the same pixels) instead of the vision tower; nrows must
// be its token count
int media_put_features(Media *m, const Engine *e, int type, const float *rows, int64_t nrows);
// forget the media added after the first nimg images / nvid videos (a turn that failed)
void media_truncate(Media *m, const Engine *e, int nimg, int nvid);
void media_free(Media *m);
// the k-th feature row of the image (type 1) or video (type 2) tokens, or NULL when not encoded
const float *media_feature(const Media *m, int type, int64_t k, int H);

// ---------------------------------------------------------------------------- prompt

// the decoder's inputs: expanded ids, token types and M-RoPE positions
typedef struct {
    Seq seq;            // ids [n] after placeholder expansion, mm_token_type_ids [n]
    int64_t *pos;       // [3][n] position rows t, h, w
    int64_t rope_delta; // decode positions are cache position + rope_delta
} Prompt;

// prompt text (special tokens written as text count) -> ids -> placeholder expansion -> positions
int engine_prompt(const Engine *e, const char *text, size_t len, const Media *m, Prompt *p);
// the same from token ids (with <|image|> / <|video|> placeholders, or already expanded when the media has none)
int engine_prompt_ids(const Engine *e, const int *ids, int n, const Media *m, Prompt *p);
void prompt_free(Prompt *p);
// inputs_embeds of rows [i0, i0 + n) of a prompt: embed_tokens, then the image and video features scattered in at
// their tokens in order (HF masked_scatter); -1 + glm_errmsg when features and tokens do not match
int engine_embed(const Engine *e, const Prompt *p, int i0, int n, const Media *m, float *out);
// the features of every vision token of a prompt, in prompt order ([rows, H] into out); returns rows
int64_t engine_gather_features(const Engine *e, const Prompt *p, const Media *m, float *out);

// ---------------------------------------------------------------------------- sessions

// one conversation's KV cache with the ids it holds, and its buffers, sized once; sessions are independent
typedef struct {
    const Engine *e;     // the model
    Model md;            // KV cache + activations
    int max_ctx;         // tokens the cache holds
    int *cache_ids;      // [max_ctx] ids whose keys/values are in the cache (md.n_past of them)
    int64_t rope_delta;  // decode positions: cache position + rope_delta
    int all_logits;      // 1: prefill records the logits of every prompt position (tap "logits")
    float *logits;       // [chunk (all_logits) or 1, V]
    float *last;         // [V] logits of the newest position
    float *emb;          // [chunk, H] embeddings of one prefill chunk or decode step
    int n_prefilled;     // prompt tokens actually run in the last prefill
    int n_cached;        // prompt tokens reused from the KV cache in the last prefill
} Session;

// a session of max_ctx tokens prefilling chunk tokens per step; -1 + glm_errmsg when it does not fit in memory
int session_init(Session *s, const Engine *e, int max_ctx, int chunk, int all_logits);
void session_free(Session *s);
// make the KV cache hold the prompt: keep the common prefix with what it holds, run the rest in chunks;
// logits of the last position in s->last; taps get hidden states (and "logits" when all_logits) of the rows run
int session_prefill(Session *s, const Prompt *p, const Media *m, const TapSink *taps);
// the prompt tokens session_prefill would keep from the cache (common prefix of ids, at most n - 1)
int session_prefix(const Session *s, const Prompt *p);
// one unit of a prefill: runs at most one chunk of the prompt after what the cache already holds of it; returns
// the tokens still to run (0: done, logits of the last position in s->last) or -1 + glm_errmsg
int session_prefill_chunk(Session *s, const Prompt *p, const Media *m, const TapSink *taps);
// one decode step: append token id at the next position; its logits in s->last. -1 when the cache is full
int session_step(Session *s, int id);
// keep only the first n tokens of the KV cache
void session_truncate(Session *s, int n);

// ---------------------------------------------------------------------------- batched decoding

// the activations of one decode step over several sessions (continuous batching), sized once
typedef struct {
    const Engine *e;  // the model
    Model act;        // activations for max_rows rows (no KV cache: each session has its own)
    int max_rows;     // sessions one step can hold
    float *emb;       // [max_rows, H] the steps' token embeddings
    int64_t *pos;     // [3][max_rows] their positions (rows t, h, w)
} Batch;

// a batch of up to max_rows sessions whose caches hold up to max_ctx tokens; -1 + glm_errmsg when out of memory
int batch_init(Batch *b, const Engine *e, int max_rows, int max_ctx);
void batch_free(Batch *b);
// one decode step for n sessions at once: ids[i] is appended to ss[i] and its logits land in ss[i]->last, the same
// bits as session_step(ss[i], ids[i]) alone; every weight is read once for the whole step
int engine_step_batch(Batch *b, Session **ss, const int *ids, int n);

#endif
