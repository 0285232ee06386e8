// SPDX-License-Identifier: MIT
// gguf_map.h - the tensor names of llama.cpp's GGUF files of GLM-4.5V / GLM-4.6V (text: arch "glm4moe"), GLM-4.1V /
// GLM-4.6V-Flash (text: arch "glm4") and their vision "mmproj" files (clip, projector type "glm4v"), mapped to the
// HuggingFace checkpoint names, with the layout change llama.cpp's converter made to each (gguf_map.c cites where).
#ifndef GGUF_MAP_H
#define GGUF_MAP_H
#include <stddef.h>

// the tables
enum {
    GM_GLM4MOE = 0,     // text GGUF, general.architecture "glm4moe" (Glm4vMoeForConditionalGeneration)
    GM_GLM4 = 1,        // text GGUF, general.architecture "glm4" (Glm4vForConditionalGeneration)
    GM_GLM4V_MMPROJ = 2, // vision GGUF, general.architecture "clip", clip.projector_type "glm4v"
    GM_TABLES
};

// what the converter did to the HF tensor
enum {
    GM_COPY = 0,        // the same tensor (ggml ne[] = the HF shape reversed)
    GM_STACK_EXPERTS,   // experts {xid} = 0..n-1 stacked along a new outer dimension: ne = [in, out, n_expert]
    GM_CONV3D_T0,       // temporal slice 0 of the Conv3d patch embedding [out, in, 2, p, p] -> [out, in, p, p]
    GM_CONV3D_T1,       // temporal slice 1 of the same (GGUF name ends in ".weight.1")
    GM_NEOX_QK,         // rows of each head's rotary part reordered even-then-odd (Glm4Model.normal_to_neox; only
                        // with M-RoPE, i.e. when the file has {arch}.rope.dimension_sections: gguf_model.c)
    GM_UNUSED,          // carried by the file, not used by this model (NextN / MTP layer)
};

// one name pair; "{bid}" stands for the block index, "{xid}" (HF side of GM_STACK_EXPERTS) for the expert index
typedef struct GMEntry {
    const char *gguf;   // GGUF tensor name pattern
    const char *hf;     // HF tensor name pattern
    int transform;      // GM_*
} GMEntry;

// the table of which (GM_GLM4MOE ...); *n = its entries; NULL for an unknown table
const GMEntry *gguf_map_table(int which, int *n);
// the table for a GGUF file's general.architecture ("glm4moe", "glm4", "clip"); -1 when none
int gguf_map_which(const char *arch);
// the HF name of GGUF tensor name gguf in table which, into hf[cap] ("{xid}" kept for stacked experts); *transform,
// *bid (-1 without one). 0, or -1 when the name is not in the table (or hf[cap] is too small)
int gguf_map_to_hf(int which, const char *gguf, char *hf, size_t cap, int *transform, int *bid);
// the other way: the GGUF name holding HF tensor hf (an expert's name "...experts.5..." gives the stacked tensor,
// *xid = 5, else -1). 0 or -1
int gguf_map_from_hf(int which, const char *hf, char *gguf, size_t cap, int *transform, int *bid, int *xid);
// GM_NEOX_QK: the row of the GGUF tensor that holds row r of the HF q_proj / k_proj weight (or element r of its bias),
// heads of head_dim rows whose first rotary_dim rows are rotated (GLM-4.1V: rotary_dim = head_dim / 2); -1 when
// rotary_dim is odd or larger than head_dim
long gguf_map_neox_row(long r, int head_dim, int rotary_dim);
#endif
