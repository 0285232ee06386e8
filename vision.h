// SPDX-License-Identifier: MIT
// vision.h - the vision tower (vision.c): HF Glm4vVisionModel, pixel rows -> merged image embeddings.
#ifndef GLM4V_VISION_H
#define GLM4V_VISION_H

#include "preprocess.h"
#include "weights.h"

// vision tower (vision.c): pixel rows -> merged embeddings out [npatches/m^2, out_hidden] (HF model.visual
// pooler_output). Items with t > 1 (videos) are split into t items of (1, h, w) as HF get_video_features does.
// scratch: vision_scratch_floats floats, sized for omp_get_max_threads() and the compute mode (--compute bf16 adds
// the K / V pairs: call both with the same thread count and mode);
// 0 (+ glm_errmsg) for an inconsistent batch or a size overflow. vision_forward: 0, or -1 + glm_errmsg.
size_t vision_scratch_floats(const Config *c, const PixelBatch *pb);
int vision_forward(const Weights *w, const Config *c, const PixelBatch *pb, float *out, float *scratch,
                   const TapSink *taps);
// vision_forward with its own scratch (allocated, freed) and the kernels' buffers reserved: out [npatches/m^2, out]
int vision_encode(const Weights *w, const Config *c, const PixelBatch *pb, float *out, const TapSink *taps);
// Glm4vVisionEmbeddings' bicubic grid_sample of the position table for one h x w item, bit-identical to PyTorch
// CPU: table [side*side, C] fp32, out [h*w, C] in the block-major token order (m = merge size); _naive: reference
void vision_pos_embed(float *out, const float *table, int side, int C, int h, int w, int m);
void vision_pos_embed_naive(float *out, const float *table, int side, int C, int h, int w, int m);

#endif
