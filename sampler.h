// SPDX-License-Identifier: MIT
// sampler.h - choosing the next token from logits (sampler.c), as HF generate does: RepetitionPenaltyLogitsProcessor,
// then greedy argmax or TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper -> multinomial.
#ifndef GLM4V_SAMPLER_H
#define GLM4V_SAMPLER_H

#include "checkpoint.h"

// what the caller asks for; a negative value means "the checkpoint's generation_config.json default"
typedef struct {
    float temp;           // temperature (0: greedy)
    int top_k;            // 0: all tokens
    float top_p;          // nucleus threshold (1: off)
    float repeat_penalty; // HF repetition_penalty (1: off)
    uint64_t seed;        // random seed (sampling only)
} SamplerParams;

typedef struct {
    int greedy;           // 1: argmax (lowest id on ties, as torch.argmax)
    float temp;           // temperature when sampling
    int top_k;            // 0: all tokens
    float top_p;          // nucleus threshold
    float penalty;        // repetition penalty (1: off)
    uint64_t seed;        // the seed the state came from (provenance)
    uint64_t rng;         // xorshift64* state
    int V;                // vocabulary size the scratch below holds
    unsigned char *seen;  // [V] tokens already penalised in this step
    void *pbuf;           // [V] (probability, id) pairs for sampling
} Sampler;

// resolve the parameters against generation_config (HF: greedy unless it samples; --temp 0 is greedy) and allocate
// the [V] scratch once; -1 + glm_errmsg when out of memory
int sampler_init(Sampler *s, const SamplerParams *p, const Config *c);
void sampler_free(Sampler *s);
// the next token: repetition penalty over seq [nseq] applied to logits [V] in place, then argmax or a draw
int sampler_sample(Sampler *s, float *logits, const int *seq, int nseq);

#endif
