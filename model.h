// SPDX-License-Identifier: MIT
// model.h - the text decoders (model.c): Glm4vMoeTextModel (GLM-4.5V/4.6V) and Glm4vTextModel (GLM-4.1V/4.6V-Flash)
// over n tokens appended to a KV cache; prefill and decode share the code (decode is n = 1).
#ifndef GLM4V_MODEL_H
#define GLM4V_MODEL_H

#include "weights.h"

// text decoder runtime (model.c): KV cache + one arena of activations for chunks of up to `chunk` tokens
typedef struct {
    const Config *cfg;   // the model's config
    const Weights *w;    // the mapped weights
    int max_ctx;         // KV cache capacity in tokens (prompt + requested tokens)
    int chunk;           // most tokens per model_forward call
    int n_past;          // tokens already in the KV cache
    float *k_cache;      // [layers, Hkv, max_ctx, hd] (post-RoPE keys)
    float *v_cache;      // [layers, Hkv, max_ctx, hd]
    float *x;            // [chunk, H] residual stream
    float *xn;           // [chunk, H] normed input of a sub-block
    float *q;            // [chunk, Hq*hd]
    float *k, *v;        // [chunk, Hkv*hd]
    float *att;          // [chunk, Hq*hd] attention output before o_proj
    float *o;            // [chunk, H] sub-block output
    float *mlp_g, *mlp_u; // [chunk, max(I, 2I fused)]
    float *moe_scratch;  // moe_scratch_floats(chunk)
    float *att_scratch;  // [threads, attention_scratch_floats(max_ctx)]
    int att_threads;     // threads att_scratch was sized for
    float *cos, *sin;    // [chunk, rotary_dim/2]
    float *inv_freq;     // [rotary_dim/2]
    float *norm_w;       // [H] scratch for a widened norm weight
    float *bias;         // [max(Hq*hd, ...)] scratch
    float *logits_rows;  // [chunk, V] logits of a batch of sequences (batch models only, else NULL)
    float *arena;        // everything above lives here
    size_t arena_floats; // floats in the arena
} Model;

// size and allocate the arena; -1 + glm_errmsg when it does not fit in memory
int model_init(Model *m, const Config *c, const Weights *w, int max_ctx, int chunk);
// activations for batches of up to `rows` rows over other Models' KV caches of up to max_ctx tokens (no cache)
int model_init_batch(Model *m, const Config *c, const Weights *w, int max_ctx, int rows);
void model_free(Model *m);
// one sequence's rows in a batched forward: consecutive rows of the batch, appended to its own KV cache
typedef struct {
    Model *m;              // the sequence's KV cache (m->n_past advances by n)
    int n;                 // its rows in the batch (a prefill chunk, or 1 for a decode step)
    const int64_t *pos;    // [3][pos_stride] positions t, h, w of its rows
    int pos_stride;        // row stride of pos
    float *logits;         // [all_logits ? n : 1, V]
    int all_logits;        // 1: logits of every row, 0: of the last
} ModelSeq;
// the decoder over several sequences at once, m holding the activations (chunk >= the rows in all): the Linears read
// each weight once for all rows; every row's bits equal those of the same row run alone (batch-invariant kernels).
// Taps are recorded only for a single sequence
void model_forward_batch(Model *m, const ModelSeq *seqs, int nseq, const float *embeds, const TapSink *taps);
// Glm4v(Moe)TextModel.forward over n <= chunk tokens appended to the KV cache:
// embeds [n, H] (already with the image features scattered), pos [3][n] rows t, h, w (stride pos_stride);
// logits [n, V] when all_logits, else [1, V] for the last token; taps get hidden_states.i etc. for these rows
void model_forward(Model *m, const float *embeds, const int64_t *pos, int pos_stride, int n, float *logits,
                   int all_logits, const TapSink *taps);
// embedding rows for token ids (nn.Embedding)
void embed_tokens(const Weights *w, const Config *c, const int *ids, int n, float *out);

#endif
