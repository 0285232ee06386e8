// SPDX-License-Identifier: MIT
// checkpoint.h - a Hugging Face model folder as downloaded (checkpoint.c): config.json (transformers 4.57 and 5.x
// layouts: Glm4vConfig / Glm4vMoeConfig), generation_config.json, the processor configs, and the mmap'd
// safetensors shards with checked tensor lookup. Binding the tensors to the model's structs is weights.c's job.
#ifndef GLM4V_CHECKPOINT_H
#define GLM4V_CHECKPOINT_H

#include "safetensors.h"

typedef struct {
    int vocab_size;            // V: rows of embed_tokens and lm_head
    int hidden_size;           // H
    int intermediate_size;     // dense MLP width (layers < first_k_dense_replace; every layer in the dense model)
    int num_hidden_layers;     // decoder layers
    int num_attention_heads;   // Hq
    int num_key_value_heads;   // Hkv
    int head_dim;              // MoE: config head_dim (or H/Hq); dense: always H/Hq
    int rotary_dim;            // int(head_dim * partial_rotary_factor)
    float rope_theta;          // RoPE base
    int mrope_section[8];      // frequency chunks; chunk i uses axis i % 3
    int n_mrope_section;       // chunks in mrope_section
    float rms_norm_eps;        // RMSNorm epsilon
    int attention_bias;        // q/k/v bias
    int max_position_embeddings; // longest context the model was built for (prompt + generated)
    // MoE (is_moe)
    int moe_intermediate_size; // width of one routed expert
    int n_routed_experts;      // E
    int num_experts_per_tok;   // top-k
    int n_shared_experts;      // shared experts (their MLP is Im x n wide)
    int n_group, topk_group;   // group-limited routing
    int first_k_dense_replace; // layers [0, k) use the dense MLP
    int norm_topk_prob;        // renormalise the top-k weights to sum 1
    float routed_scaling_factor; // multiplies the routing weights
} TextConfig;

typedef struct {
    int depth;                 // number of blocks
    int hidden_size;           // Hv
    int num_heads;             // attention heads
    int head_dim;              // Hv / num_heads
    int intermediate_size;     // merger SwiGLU width
    int mlp_size;              // ViT block MLP width (= out_hidden_size, as HF Glm4VisionMlp)
    int out_hidden_size;       // = text hidden
    int patch_size;            // 14
    int temporal_patch_size;   // 2
    int spatial_merge_size;    // 2
    int in_channels;           // 3
    int image_size;            // 336
    int pos_side;              // sqrt(rows of the position table)
    float rms_norm_eps;        // RMSNorm epsilon
    int attention_bias;        // qkv bias
} VisionConfig;

typedef struct {
    int min_pixels, max_pixels;   // image smart_resize budget (size.shortest_edge / longest_edge)
    int vmin_pixels, vmax_pixels; // video budget
    float image_mean[3], image_std[3]; // per-channel normalisation of images: (x * rescale - mean) / std
    double rescale_factor;        // 1/255: uint8 -> [0, 1]
    float vimage_mean[3], vimage_std[3]; // the same for videos (the video processor's own image_mean / image_std)
    double vrescale_factor;       // the video processor's rescale_factor
    int patch_size, temporal_patch_size, merge_size; // 14, 2 (frames per patch), 2 (2x2 merge)
    float video_fps;              // frames sampled per second
    int video_max_duration;       // seconds
    int glm46v;                   // 1 when Glm46VProcessor (timestamps "{t:.1f} seconds", dynamic fps)
} ProcConfig;

typedef struct {
    int is_moe;                  // Glm4vMoeForConditionalGeneration
    TextConfig text;             // text_config
    VisionConfig vision;         // vision_config
    int has_vision;              // vision weights present
    int image_token_id, video_token_id;             // <|image|> / <|video|> placeholders
    int image_start_token_id, image_end_token_id;   // <|begin_of_image|> / <|end_of_image|>
    int video_start_token_id, video_end_token_id;   // <|begin_of_video|> / <|end_of_video|>
    int eos_ids[16], n_eos;      // stop tokens (config + generation_config)
    int do_sample;               // generation_config.json: sample (1) or greedy (0)
    float temperature, top_p, repetition_penalty; // generation_config.json defaults
    int top_k;                   // generation_config.json top_k (0: all)
    ProcConfig proc;             // image / video processor settings
    uint32_t config_crc;         // CRC-32 of config.json bytes (provenance)
} Config;

typedef struct {
    char dir[4096];     // model folder
    int nfiles;         // shards
    SFile *files;       // [nfiles] shards
    Config cfg;         // parsed config.json and friends
    struct QuantConfig *quant; // config.json's quantization_config (quant_config.h), NULL when none
    struct GGUFModel *gguf;    // a GGUF model (gguf_model.h: its files, tokenizer, template), NULL for a folder
} Checkpoint;

// read config.json (+ generation_config.json, processor configs) from a folder or a JSON text
int config_parse(Config *c, const char *json, size_t len, const char *name);
// the modalities a processor file is read for (proc_config_parse's `which`, its *set)
enum { PROC_IMAGE = 1, PROC_VIDEO = 2, PROC_NESTED_ONLY = 4 };
// a processor file's settings over p, for the modalities in `which`: a 5.x processor_config.json's "image_processor" /
// "video_processor" objects, or a flat (preprocessor_config.json-style) object read for every modality in `which`
// (none with PROC_NESTED_ONLY: transformers reads no settings from a flat processor_config.json). Each modality read
// starts from the processor class's defaults, as from_pretrained builds it from that one file. *set (NULL: not
// wanted): the modalities read. 0, or -1 + glm_errmsg naming the file and field.
int proc_config_parse(ProcConfig *p, const char *json, size_t len, const char *name, int which, int *set);
void proc_config_defaults(ProcConfig *p);
// generation_config.json over a parsed config (do_sample, temperature, top_k, top_p, repetition_penalty, eos ids)
int generation_config_parse(Config *c, const char *json, size_t len, const char *name);
// model.safetensors.index.json: the unique shard file names of weight_map (malloc'd strings in a malloc'd array,
// first-seen order); names with '/' or "..", none, or too many are errors (nothing allocated then)
int checkpoint_index_parse(const char *json, size_t len, const char *name, char ***shards, int *nshards);
// open a model folder: config + every shard mmap'd (does not bind weights)
int checkpoint_open(Checkpoint *ck, const char *dir);
void checkpoint_close(Checkpoint *ck);
// find a tensor by name across shards, trying the released aliases (model.layers.* / visual.*)
const STensor *checkpoint_find(const Checkpoint *ck, const char *name);
// bind name -> Tensor checking dtype (float types) and shape; shape dims terminated by -1; fails with the name
int checkpoint_tensor(const Checkpoint *ck, Tensor *out, const char *name, int ndim, const int64_t *shape);

#endif
