// SPDX-License-Identifier: MIT
// gguf_model.h - a llama.cpp GGUF model (a text file, "glm4moe" or "glm4", plus an optional vision "mmproj" file) opened
// as a Checkpoint (gguf_model.c): its metadata written out as the HF config.json / tokenizer.json the folder would
// carry and read by the very parsers of the folders (checkpoint.c, tokenizer.c, chat_template.c), its tensors as
// HF-named views into the mappings, each layout change of llama.cpp's converter undone through gguf_map.c's tables.
#ifndef GLM4V_GGUF_MODEL_H
#define GLM4V_GGUF_MODEL_H

#include "checkpoint.h"

// what a GGUF checkpoint holds besides the Checkpoint's views
typedef struct GGUFModel {
    struct GGUFSplit *text;   // the text model's file(s) (gguf.h), mapped
    struct GGUFSplit *mmproj; // the vision tower's file(s), or NULL
    void **owned;             // [n_owned] buffers of tensors rebuilt from the file (un-permuted, rejoined, narrowed)
    int n_owned, cap_owned;   // used / allocated entries of owned
    char *tokenizer_json;     // tokenizer.json text built from tokenizer.ggml.* (tokenizer_load_json reads it)
    char *tokcfg_json;        // {"eos_token": ..., "pad_token": ...}: the template's special-token variables
    char *chat_template;      // tokenizer.chat_template, or NULL (the built-in template then)
    char *config_json;        // config.json text built from the metadata (what config_parse read)
} GGUFModel;

// 1 when path names a GGUF file (ends in .gguf, any case)
int is_gguf_path(const char *path);
// open text_path (+ mmproj_path, may be NULL) as ck: config from the metadata (processor settings: HF's defaults for
// the model, ProcConfig of checkpoint.h; image mean / std and patch size from the mmproj file), tensors under their
// HF names. 0, or -1 with one line naming the file and the key or tensor
int gguf_checkpoint_open(Checkpoint *ck, const char *text_path, const char *mmproj_path);
// free what gguf_checkpoint_open added to a Checkpoint (checkpoint_close calls it)
void gguf_model_free(GGUFModel *m);

#endif
