// SPDX-License-Identifier: MIT
// test_batch.c - continuous batching never changes an answer: sessions with different prompts (text, an image,
// different lengths) decoded together in one engine_step_batch per token give logits bit-identical to each session
// decoded alone with session_step, on both architectures, for batches that grow and shrink between steps.
#include "../engine.h"
#include "../ops.h"
#include "test_util.h"

#include <string.h>

#define NS 4     // sessions
#define STEPS 6  // decode steps

static const char *prompts[NS] = {
    "[gMASK]<sop><|user|>\nHello there<|assistant|>",
    "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|><|end_of_image|>What is this?<|assistant|>",
    "[gMASK]<sop><|user|>\nA much longer prompt, so that the caches of the sessions hold different numbers of tokens "
    "when they are decoded together in one batch.<|assistant|>",
    "[gMASK]<sop><|system|>\nBe brief.<|user|>\nWhy?<|assistant|>\n<think></think>",
};

// greedy argmax (lowest id on ties)
static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void run(const char *dir) {
    Engine e;
    if (engine_load(&e, dir, NULL, NULL, NULL)) {
        CHECK(0, "%s: %s", dir, glm_errmsg);
        return;
    }
    const int V = e.c->text.vocab_size, ctx = 256;
    MediaOptions mo = {.resize = RESIZE_TORCH, .max_image_pixels = 100000000, .fps = 2};
    Media media[NS];
    memset(media, 0, sizeof media);
    Prompt p[NS];
    Session alone[NS], together[NS];
    float *ref = malloc((size_t)NS * STEPS * V * sizeof(float));
    int ids[NS][STEPS], ok = 1;
    for (int s = 0; s < NS; s++) {
        if (s == 1 && media_add_image(&media[s], &e, "tests/data/images/synth_97x61.png", &mo)) ok = 0;
        if (media_encode(&media[s], &e, NULL) || engine_prompt(&e, prompts[s], strlen(prompts[s]), &media[s], &p[s]) ||
            session_init(&alone[s], &e, ctx, 64, 0) || session_init(&together[s], &e, ctx, 64, 0)) {
            CHECK(0, "%s: setup: %s", dir, glm_errmsg);
            return;
        }
    }
    // alone: prefill, then greedy steps one session at a time
    for (int s = 0; s < NS; s++) {
        ok &= session_prefill(&alone[s], &p[s], &media[s], NULL) == 0;
        for (int k = 0; k < STEPS; k++) {
            memcpy(ref + ((size_t)s * STEPS + k) * V, alone[s].last, (size_t)V * sizeof(float));
            ids[s][k] = argmax(alone[s].last, V);
            ok &= session_step(&alone[s], ids[s][k]) == 0;
        }
    }
    CHECK(ok, "%s: sessions decoded alone", dir);
    // together: the same tokens, sessions joining one step after another and the first leaving early
    Batch b;
    if (batch_init(&b, &e, NS, ctx)) {
        CHECK(0, "batch_init: %s", glm_errmsg);
        return;
    }
    for (int s = 0; s < NS; s++) ok &= session_prefill(&together[s], &p[s], &media[s], NULL) == 0;
    int step[NS] = {0}, same = 1, steps_run = 0;
    for (int round = 0; round < STEPS + NS; round++) {
        Session *ss[NS];
        int tok[NS], n = 0, who[NS];
        for (int s = 0; s < NS; s++) {
            const int last = s == 0 ? STEPS - 2 : STEPS; // session 0 leaves early
            if (s > round || step[s] >= last) continue; // session s joins at round s
            if (memcmp(together[s].last, ref + ((size_t)s * STEPS + step[s]) * V, (size_t)V * sizeof(float)))
                same = 0;
            ss[n] = &together[s], tok[n] = ids[s][step[s]], who[n++] = s;
        }
        if (!n) continue;
        ok &= engine_step_batch(&b, ss, tok, n) == 0;
        for (int i = 0; i < n; i++) step[who[i]]++;
        steps_run++;
    }
    CHECK(ok && steps_run > 0, "%s: %d batched steps of 1..%d sessions", dir, steps_run, NS);
    CHECK(same, "%s: every session's logits in a batch are bit-identical to the session alone", dir);
    batch_free(&b);
    for (int s = 0; s < NS; s++) {
        session_free(&alone[s]), session_free(&together[s]);
        prompt_free(&p[s]), media_free(&media[s]);
    }
    free(ref);
    engine_free(&e);
}

int main(void) {
    ops_init();
    run("weights/tiny-glm4v-moe");
    run("weights/tiny-glm4v-dense");
    return test_done();
}
