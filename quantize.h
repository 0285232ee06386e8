// SPDX-License-Identifier: MIT
// quantize.h - `glm4v quantize IN_DIR OUT_DIR --scheme fp8|int8|int4 [--group G]` (quantize.c): a bf16/f16/f32 Hugging
// Face folder written as a compressed-tensors folder that transformers, vLLM and glm4v load as it is.
#ifndef GLM4V_QUANTIZE_H
#define GLM4V_QUANTIZE_H

enum {
    QZ_FP8,  // float-quantized: FP8 E4M3 per output channel, bf16-valued scales stored as F32, dynamic per-token FP8 activations
             // (the scheme of the official GLM-4.5V-FP8 / GLM-4.6V-FP8 releases)
    QZ_INT8, // pack-quantized: int8 per output channel, symmetric, bf16-valued F32 scales (W8A16)
    QZ_INT4, // pack-quantized: int4 in groups of `group` columns, symmetric, bf16-valued F32 scales (W4A16)
};

// quantise every language-model Linear of IN_DIR (round to nearest, symmetric, as compressed-tensors' quantize does;
// the router, embeddings, lm_head and the vision tower stay as they are, listed in `ignore`) into OUT_DIR, one tensor
// at a time (memory: about one tensor), copying the tokenizer, processor and generation files. int4: a Linear whose
// width the group does not divide stays as it is and is added to `ignore` (an error when that leaves none). OUT_DIR must not
// exist or be empty; everything is written to OUT_DIR.tmp and renamed at the end (removed on error). quiet = 0:
// one progress line per shard on stderr. -1 + glm_errmsg on error.
int quantize_folder(const char *in_dir, const char *out_dir, int scheme, int group, int quiet);

#endif
