// SPDX-License-Identifier: MIT
// sampler.c - the next token from logits, as HF generate chooses it (GenerationMixin._sample): the repetition
// penalty, then argmax, or temperature -> top-k -> top-p -> a draw from a seeded xorshift64* generator.
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float p; // probability
    int id;  // token id
} ProbId;

int sampler_init(Sampler *s, const SamplerParams *p, const Config *c) {
    memset(s, 0, sizeof *s);
    // HF generate: greedy unless generation_config samples; flags override; temperature 0 is greedy
    s->greedy = !(p->temp > 0 || (p->temp < 0 && c->do_sample && c->temperature > 0));
    s->temp = p->temp > 0 ? p->temp : c->temperature;
    s->top_k = p->top_k >= 0 ? p->top_k : c->top_k;
    s->top_p = p->top_p >= 0 ? p->top_p : c->top_p;
    s->penalty = p->repeat_penalty > 0 ? p->repeat_penalty : (c->repetition_penalty > 0 ? c->repetition_penalty : 1);
    s->seed = p->seed;
    s->rng = p->seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    if (!s->rng) s->rng = 1;
    s->V = c->text.vocab_size;
    s->seen = malloc((size_t)s->V);
    s->pbuf = malloc((size_t)s->V * sizeof(ProbId));
    if (!s->seen || !s->pbuf) {
        sampler_free(s);
        return glm_err("out of memory (sampler buffers)");
    }
    return 0;
}

void sampler_free(Sampler *s) {
    free(s->seen);
    free(s->pbuf);
    s->seen = NULL, s->pbuf = NULL;
}

// xorshift64*: small, portable, reproducible for a seed
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

// uniform in [0, 1) with 24 bits
static float rng_uniform(uint64_t *s) { return (float)((rng_next(s) >> 40) * (1.0 / 16777216.0)); }

// RepetitionPenaltyLogitsProcessor: score < 0 ? score * p : score / p for every token already in the sequence
static void apply_repetition_penalty(float *logits, int V, const int *seq, int n, float p, unsigned char *seen) {
    if (p == 1.0f) return;
    memset(seen, 0, (size_t)V);
    for (int i = 0; i < n; i++)
        if (seq[i] >= 0 && seq[i] < V && !seen[seq[i]]) {
            seen[seq[i]] = 1;
            float *l = &logits[seq[i]];
            *l = *l < 0 ? *l * p : *l / p;
        }
}

// descending probability, then ascending id
static int cmp_probid(const void *a, const void *b) {
    const ProbId *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

int sampler_sample(Sampler *s, float *logits, const int *seq, int nseq) {
    const int V = s->V;
    apply_repetition_penalty(logits, V, seq, nseq, s->penalty, s->seen);
    if (s->greedy) {
        // torch.argmax: the first maximum
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    ProbId *buf = s->pbuf;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) {
        buf[i].id = i;
        buf[i].p = expf((logits[i] - mx) / s->temp);
        sum += buf[i].p;
    }
    for (int i = 0; i < V; i++) buf[i].p = (float)(buf[i].p / sum);
    qsort(buf, (size_t)V, sizeof *buf, cmp_probid);
    int n = V;
    // TopKLogitsWarper: the k most likely (the others -inf)
    if (s->top_k > 0 && s->top_k < n) n = s->top_k;
    // TopPLogitsWarper(top_p) for top_p < 1, after top-k: softmax over what top-k kept, then the smallest head whose
    // mass reaches top_p (at least one token: top_p 0 keeps the most likely alone)
    if (s->top_p >= 0 && s->top_p < 1) {
        double kept = 0, c = 0;
        for (int i = 0; i < n; i++) kept += buf[i].p;
        for (int i = 0; i < n; i++) {
            c += buf[i].p;
            if (c >= s->top_p * kept) {
                n = i + 1;
                break;
            }
        }
    }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += buf[i].p;
    double r = rng_uniform(&s->rng) * tot, c = 0;
    for (int i = 0; i < n; i++) {
        c += buf[i].p;
        if (r < c) return buf[i].id;
    }
    return buf[n - 1].id;
}
