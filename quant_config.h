// SPDX-License-Identifier: MIT
// quant_config.h - config.json's quantization_config (quant_config.c), as compressed-tensors reads it
// (compressed_tensors.quantization.quant_config / quant_args / quant_scheme, utils.match) and as transformers reads
// block FP8 (quant_method "fp8", weight_block_size); and the binding of one checkpoint tensor to a quantised Tensor
// view, checked against its scheme (dtype and shape of weight / weight_packed / weight_shape / weight_scale /
// weight_zero_point / weight_scale_inv) with a one-line error naming the tensor.
#ifndef GLM4V_QUANT_CONFIG_H
#define GLM4V_QUANT_CONFIG_H

#include "checkpoint.h"

enum { QS_TENSOR, QS_CHANNEL, QS_GROUP, QS_BLOCK, QS_TOKEN };         // QuantizationStrategy
enum { QF_FLOAT, QF_INT, QF_PACK, QF_FP8_BLOCK };                    // storage: float-quantized, int-quantized
                                                                     // (naive-quantized), pack-quantized, "fp8"

typedef struct {
    int present;     // 0: the args are null (no quantisation of this tensor kind)
    int num_bits;    // 4 or 8
    int is_float;    // type "float" (FP8 E4M3) rather than "int"
    int strategy;    // QS_*
    int group_size;  // QS_GROUP: columns per scale
    int block[2];    // QS_BLOCK: block_structure [rows, cols]
    int symmetric;   // no zero point
    int dynamic;     // scales computed at run time (activations)
} QuantArgs;

typedef struct {
    char **targets;     // [ntargets] "Linear", "re:PATTERN" or exact module names
    int ntargets;       // entries of targets
    int format;         // QF_*: the group's own "format", else the config's
    QuantArgs weights;  // weights args
    QuantArgs input;    // input_activations args (present = 0: fp32 activations)
} QuantGroup;

typedef struct QuantConfig {
    int method;         // QF_FP8_BLOCK for quant_method "fp8"; else the default format of the groups
    QuantGroup *groups; // [ngroups] config_groups in file order (quant_method "fp8": one synthesised group)
    int ngroups;        // entries of groups
    char **ignore;      // [nignore] modules left unquantised ("re:" patterns allowed; "fp8": modules_to_not_convert)
    int nignore;        // entries of ignore
} QuantConfig;

// 1 (default): the routed experts quantise their inputs as the scheme says (vLLM, SGLang); 0: they stay fp32, as
// transformers 5 computes it (it fuses the experts into 3-D tensors that compressed-tensors does not hook)
extern int quant_act_experts;

// parse config.json text: *out = NULL when there is no quantization_config; -1 + glm_errmsg when it is malformed or
// asks for something unsupported (static activation scales, output activations, a KV-cache scheme, 2/3-bit, ...)
int quant_config_parse(QuantConfig **out, const char *json, size_t len, const char *file);
void quant_config_free(QuantConfig *q);
// checkpoint_tensor for a Linear weight of a checkpoint with a quantization_config: a bf16/f16/f32 `weight` binds as
// usual; a quantised one (FP8 / int8 `weight` + `weight_scale`, `weight_packed` + `weight_shape`, block FP8 +
// `weight_scale_inv`) binds with its scale table, group, zero points and activation mode after every check.
// (embed_tokens, the position table and the router (mlp.gate) are not Linear modules in HF: never quantised)
int quant_tensor(const Checkpoint *ck, Tensor *out, const char *name, int ndim, const int64_t *shape);
// the module name matches a target / ignore entry as compressed-tensors matches it ("re:" = Python re.match)
int quant_name_match(const char *name, const char *target);

#endif
