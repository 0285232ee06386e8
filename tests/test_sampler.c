// SPDX-License-Identifier: MIT
// test_sampler.c - the sampling filters against HF generate's warpers (TemperatureLogitsWarper, TopKLogitsWarper, then
// TopPLogitsWarper on what top-k kept): which tokens a draw can give. The expected sets are what transformers 5.25's
// warpers keep for the probabilities below (softmax of log [0.4, 0.3, 0.2, 0.1, 0.0001], values away from any
// rounding boundary): top_k 2 + top_p 0.5 -> {0}, top_k 2 + top_p 0.6 -> {0, 1}, top_p 0 -> {0}, top_p 0.5 -> {0, 1},
// top_k 3 + top_p 0.7 -> {0, 1}, top_p 1 -> all five.
#include "../sampler.h"
#include "test_util.h"

#include <math.h>

// the tokens 4000 draws (seeds 1..4000) give, as a bit mask
static unsigned drawn(int top_k, float top_p) {
    static const double p[5] = {0.4, 0.3, 0.2, 0.1, 0.0001};
    Config c;
    memset(&c, 0, sizeof c);
    c.text.vocab_size = 5, c.temperature = 1, c.top_p = 1, c.repetition_penalty = 1;
    unsigned mask = 0;
    for (uint64_t seed = 1; seed <= 4000; seed++) {
        SamplerParams sp = {1.0f, top_k, top_p, 1.0f, seed};
        Sampler s;
        if (sampler_init(&s, &sp, &c)) return 0;
        float logits[5];
        for (int i = 0; i < 5; i++) logits[i] = (float)log(p[i]);
        mask |= 1u << sampler_sample(&s, logits, NULL, 0);
        sampler_free(&s);
    }
    return mask;
}

int main(void) {
    unsigned m;
    m = drawn(2, 0.5f);
    CHECK(m == 0x1, "top_k 2, top_p 0.5: top-p over the top-k's renormalised mass keeps token 0 alone (drew 0x%x)", m);
    m = drawn(2, 0.6f);
    CHECK(m == 0x3, "top_k 2, top_p 0.6: tokens 0 and 1 (drew 0x%x)", m);
    m = drawn(0, 0.0f);
    CHECK(m == 0x1, "top_p 0: the most likely token alone, as TopPLogitsWarper keeps (drew 0x%x)", m);
    m = drawn(0, 0.5f);
    CHECK(m == 0x3, "top_p 0.5: tokens 0 and 1 (drew 0x%x)", m);
    m = drawn(3, 0.7f);
    CHECK(m == 0x3, "top_k 3, top_p 0.7: tokens 0 and 1 (drew 0x%x)", m);
    m = drawn(0, 1.0f);
    CHECK((m & 0xF) == 0xF, "top_p 1: no filter, the four likely tokens all drawn (drew 0x%x)", m);
    return test_done();
}
