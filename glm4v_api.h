// SPDX-License-Identifier: MIT
// glm4v_api.h - libglm4v's public C API (glm4v_api.c; `make lib` builds libglm4v.so, `pkg-config --cflags --libs
// glm4v`): a model folder opened once, then forward passes (logits and hidden states of every position), greedy or
// sampled generation and `glm4v score` cases, over the same engine as the glm4v CLI (bit-identical numbers).
// Handles are opaque; every function returns 0 (or a count) on success and -1 on error, with the one-line message in
// glm4v_last_error(); nothing is printed. Calls that compute (forward, generate, score) from several threads run one at
// a time (a process-wide lock: the kernels' scratch buffers are shared), each giving the numbers of a lone call;
// closing a model while another thread uses it is the caller's error.
// python/glm4v.py is a ctypes binding of exactly this header.
#ifndef GLM4V_API_H
#define GLM4V_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GLM4V_API_VERSION 1

typedef struct glm4v_model glm4v_model;   // a loaded model folder
typedef struct glm4v_output glm4v_output; // the result of one forward pass

// the message of the calling thread's last failed call (a per-thread buffer, overwritten by its next failure)
const char *glm4v_last_error(void);
// "0.2.0" etc.
const char *glm4v_version(void);
// threads of the kernels (OpenMP); n < 1 leaves the default (all cores)
void glm4v_set_threads(int n);

// open a Hugging Face model folder (config.json, *.safetensors, tokenizer.json; GLM-4.5V / 4.6V / 4.1V); -1 on error
int glm4v_open(const char *model_dir, glm4v_model **out);
void glm4v_close(glm4v_model *m);
// vocabulary rows, hidden size, decoder layers, context (max_position_embeddings); any pointer may be NULL
int glm4v_info(const glm4v_model *m, int *vocab_size, int *hidden_size, int *num_layers, int *max_positions);

// text (special tokens written as text count) -> token ids: *ids malloc'd (free with glm4v_free), returns the count
int glm4v_tokenize(const glm4v_model *m, const char *text, size_t len, int32_t **ids);
// token ids -> UTF-8 text (special tokens kept), malloc'd (glm4v_free); NULL on error
char *glm4v_detokenize(const glm4v_model *m, const int32_t *ids, int n);
// the checkpoint's chat template over an OpenAI messages JSON array, with the generation prompt; malloc'd text
// (glm4v_free), NULL on error. kwargs_json: template variables as a JSON object ("{\"enable_thinking\": false}") or NULL
char *glm4v_chat_prompt(const glm4v_model *m, const char *messages_json, const char *kwargs_json);
void glm4v_free(void *p);

// media of one forward / generate call: image files (or data: URIs) in prompt order, and at most one video (a file or
// a folder of frames at fps frames a second; fps <= 0: 2)
typedef struct {
    const char *const *images; // [n_images] paths
    int n_images;              // images
    const char *video;         // NULL: none
    float fps;                 // frame rate of a frame folder
} glm4v_media;

// one prefill over ids (with <|image|> / <|video|> placeholders, or HF's already expanded image tokens) and the
// media: the logits of every position [n_tokens, vocab] and (want_hidden) the hidden states [layers + 1, n_tokens,
// hidden] (0 = embeddings, the last = after the final norm), as HF's output_hidden_states. n_tokens counts the
// expanded prompt. media may be NULL
int glm4v_forward(glm4v_model *m, const int32_t *ids, int n, const glm4v_media *media, int want_hidden,
                  glm4v_output **out);
int glm4v_output_tokens(const glm4v_output *o);            // n_tokens
const int32_t *glm4v_output_ids(const glm4v_output *o);    // [n_tokens] the expanded ids
const float *glm4v_output_logits(const glm4v_output *o);   // [n_tokens, vocab]
const float *glm4v_output_hidden(const glm4v_output *o);   // [layers + 1, n_tokens, hidden], NULL unless asked
void glm4v_output_free(glm4v_output *o);

// sampling settings of glm4v_generate (temperature 0: greedy, torch.argmax; top_k 0: all; top_p 1: off)
typedef struct {
    float temperature;   // 0 = greedy
    int top_k;           // 0 = all
    float top_p;         // 1 = off
    float repeat_penalty; // 1 = off
    uint64_t seed;       // random seed of the sampler
} glm4v_sampling;

// generate up to max_new tokens after the prompt (ids + media, as glm4v_forward), stopping after an end-of-sequence
// id (included); out_ids [max_new] gets them, returns their count. sampling NULL: greedy. logits (NULL: not wanted)
// [max_new, vocab] gets the raw logits that chose each token (the --dump's generated_logits)
int glm4v_generate(glm4v_model *m, const int32_t *ids, int n, const glm4v_media *media, int max_new,
                   const glm4v_sampling *sampling, int32_t *out_ids, float *logits);

// `glm4v score` over cases (JSONL text: one case a line, the format of README.md): the JSON report text, malloc'd
// (glm4v_free). top_k < 1: 20; preset NULL: "fp32"
char *glm4v_score(glm4v_model *m, const char *cases_jsonl, size_t len, int top_k, const char *preset);

#ifdef __cplusplus
}
#endif
#endif
