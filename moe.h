// SPDX-License-Identifier: MIT
// moe.h - Glm4vMoeTextMoE (moe.c): sigmoid top-k router with group-limited selection, routed and shared experts.
#ifndef GLM4V_MOE_H
#define GLM4V_MOE_H

#include "weights.h"

// MoE block (moe.c): x [n, H] -> y [n, H]; router outputs optionally recorded via taps
size_t moe_scratch_floats(const Config *c, int n);
void moe_forward(const TextLayer *L, const Config *c, const float *x, float *y, int n, float *scratch,
                 const TapSink *taps, int layer);
// HF Glm4vMoeTopkRouter + route_tokens_to_experts for one token: scores [E] fp32 -> idx/weights [k]
void moe_router(const TextLayer *L, const Config *c, const float *logits, int *idx, float *wts);

#endif
