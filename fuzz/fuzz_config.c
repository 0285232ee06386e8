// SPDX-License-Identifier: MIT
// fuzz_config.c - libFuzzer target: the model folder's JSON files on arbitrary bytes: config.json (config_parse),
// generation_config.json, processor configs (proc_config_parse, image and video layouts) and
// model.safetensors.index.json (checkpoint_index_parse), quantization_config (quant_config_parse, its target / ignore
// patterns matched against module names). What a parser accepts is then used the way the loader uses
// it: video frame sampling with the parsed processor config.
#include "../preprocess.h"
#include "../quant_config.h"

#include <stdlib.h>
#include <string.h>

// a parsed processor config drives video_sample_frames (frame counts/rates as a real video would give)
static void fz_config_sample(const ProcConfig *pc) {
    static const struct { int total; double fps, dur; } v[] = {{1, 30, 0}, {120, 30, 4}, {9000, 30, 300}, {100000, 25, 4000}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int *idx = NULL;
        int n = video_sample_frames(&idx, v[i].total, v[i].fps, v[i].dur, pc);
        for (int k = 0; k < n; k++)
            if (idx[k] < 0 || idx[k] >= v[i].total) abort(); // every sampled index is a frame of the video
        free(idx);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *json = malloc(size + 1);
    if (!json) return 0;
    memcpy(json, data, size);
    json[size] = 0;
    Config c;
    if (config_parse(&c, json, size, "config.json") == 0) {
        generation_config_parse(&c, json, size, "generation_config.json");
        if (c.text.rotary_dim > c.text.head_dim || c.text.num_attention_heads % c.text.num_key_value_heads) abort();
    }
    ProcConfig pc;
    for (int video_only = 0; video_only < 2; video_only++) {
        proc_config_defaults(&pc);
        if (proc_config_parse(&pc, json, size, "processor_config.json",
                              video_only ? PROC_VIDEO : PROC_IMAGE | PROC_VIDEO, NULL) == 0)
            fz_config_sample(&pc);
    }
    QuantConfig *q = NULL;
    if (quant_config_parse(&q, json, size, "config.json") == 0 && q) {
        static const char *mods[] = {"model.language_model.layers.0.self_attn.q_proj", "lm_head",
                                     "model.visual.blocks.0.attn.qkv", "model.layers.1.mlp.experts.7.down_proj"};
        for (int g = 0; g < q->ngroups; g++) {
            const QuantArgs *w = &q->groups[g].weights;
            if (w->present && ((w->num_bits != 4 && w->num_bits != 8) || (w->strategy == QS_GROUP && w->group_size < 1)))
                abort(); // only what the kernels implement gets through
            for (int i = 0; i < q->groups[g].ntargets; i++)
                for (int m = 0; m < 4; m++) quant_name_match(mods[m], q->groups[g].targets[i]);
        }
        for (int i = 0; i < q->nignore; i++)
            for (int m = 0; m < 4; m++) quant_name_match(mods[m], q->ignore[i]);
    }
    quant_config_free(q);
    char **shards = NULL;
    int n = 0;
    if (checkpoint_index_parse(json, size, "model.safetensors.index.json", &shards, &n) == 0) {
        for (int i = 0; i < n; i++) {
            if (strchr(shards[i], '/') || strcmp(shards[i], "..") == 0) abort(); // stays inside the model folder
            free(shards[i]);
        }
        free(shards);
    }
    free(json);
    return 0;
}
