#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_vision_cases.py - references for tests/test_vision.c (run from the repo root: python3 tests/golden/make_vision_cases.py)
#
# 1. grid_sample cases: the bicubic position-embedding resampling of Glm4vVisionEmbeddings.forward, computed with
#    F.grid_sample exactly as HF calls it (fp32, CPU), for random position tables and several (h, w) patch grids.
#    The C code must reproduce these bit for bit.
#      gs.{k}.table  F32 [side*side, C]   position table (nn.Embedding weight layout)
#      gs.{k}.grid   I64 [n_items, 3]     (1, h, w) per item, one grid_sample call over all items (as HF)
#      gs.{k}.out    F32 [sum h*w, C]     adapted position embedding in the block-major token order
# 2. vision.multi: the tiny MoE checkpoint's vision tower (fp32, eager) on random pixel rows for several images of
#    different sizes in one call; module outputs as `hook.model.visual.*`, inputs as `input.pixel_values` /
#    `input.image_grid_thw` (same names as tests/data/golden).
# 3. big: a 18x24 image and a (2, 4, 4) video in one call (pixel rows from a formula, outputs only).
# Output: tests/data/vision_cases.safetensors
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from transformers.vision_utils import get_vision_position_ids

torch.manual_seed(1234)
out = {}


def adapt_pos_embed(table, grid_thw, merge=2):
    # the arithmetic of Glm4vVisionEmbeddings.forward (5.x), minus the final add
    side = int(table.shape[0] ** 0.5)
    hidden = table.shape[1]
    pos_embed_2d = table.view(side, side, hidden).permute(2, 0, 1).unsqueeze(0).to(dtype=torch.float32)
    pos = get_vision_position_ids(grid_thw, merge)
    h_coords, w_coords = pos[:, 0], pos[:, 1]
    lengths = torch.repeat_interleave(grid_thw[:, 1] * grid_thw[:, 2], grid_thw[:, 0])
    n = pos.shape[0]
    seq_ids = (torch.arange(n).unsqueeze(0) >= lengths.cumsum(0).unsqueeze(1)).sum(0)
    target_h = grid_thw[seq_ids, 1].to(dtype=torch.float32)
    target_w = grid_thw[seq_ids, 2].to(dtype=torch.float32)
    norm_w = ((w_coords + 0.5) / target_w) * 2 - 1
    norm_h = ((h_coords + 0.5) / target_h) * 2 - 1
    grid = torch.stack((norm_w, norm_h), dim=-1).unsqueeze(0).unsqueeze(2)
    r = F.grid_sample(pos_embed_2d, grid, mode="bicubic", align_corners=False, padding_mode="border")
    return r.squeeze(0).squeeze(-1).permute(1, 0).contiguous()


# (side, channels, items)
gs_cases = [
    (24, 8, [(1, 10, 14)]),            # the moe.image grid
    (24, 8, [(1, 2, 2)]),              # tiny
    (24, 4, [(1, 100, 60)]),           # large, h != w
    (24, 8, [(1, 24, 24)]),            # identity size
    (24, 8, [(1, 48, 20), (1, 6, 8), (1, 2, 36)]),  # several items in one call
    (16, 8, [(1, 16, 16), (1, 30, 10), (1, 4, 70)]),  # 16x16 table
    (16, 4, [(1, 2, 2), (1, 64, 64)]),
    (5, 8, [(1, 8, 6), (1, 2, 4)]),    # odd-sized table
    (24, 4, [(1, 74, 74)]),            # ~1024x1024 image (74*14 = 1036)
]
for k, (side, ch, items) in enumerate(gs_cases):
    table = torch.randn(side * side, ch, dtype=torch.float32) * 3
    grid = torch.tensor(items, dtype=torch.int64)
    out[f"gs.{k}.table"] = table
    out[f"gs.{k}.grid"] = grid
    out[f"gs.{k}.out"] = adapt_pos_embed(table, grid)

# the same through the real module (fp32 table) must give the same numbers: proves the replica above
from transformers.models.glm4v.modeling_glm4v import Glm4vVisionEmbeddings
from transformers.models.glm4v.configuration_glm4v import Glm4vVisionConfig
cfg = Glm4vVisionConfig(hidden_size=8, image_size=24 * 14, patch_size=14)
emb = Glm4vVisionEmbeddings(cfg)
with torch.no_grad():
    emb.position_embedding.weight.copy_(out["gs.4.table"])
    grid = out["gs.4.grid"]
    pos = get_vision_position_ids(grid, 2)
    lengths = torch.repeat_interleave(grid[:, 1] * grid[:, 2], grid[:, 0])
    z = torch.zeros(pos.shape[0], 8)
    ref = emb(z, lengths, grid, pos[:, 0], pos[:, 1])
assert torch.equal(ref, out["gs.4.out"]), "replica differs from Glm4vVisionEmbeddings"

# the whole tower on several images at once
from transformers import AutoModelForImageTextToText
model = AutoModelForImageTextToText.from_pretrained("weights/tiny-glm4v-moe", dtype=torch.float32,
                                                    attn_implementation="eager")
model.eval()
visual = model.model.visual
grid = torch.tensor([(1, 4, 6), (1, 8, 2), (1, 2, 2)], dtype=torch.int64)
P = int((grid[:, 0] * grid[:, 1] * grid[:, 2]).sum())
pixels = torch.randn(P, 1176, dtype=torch.float32)
hooks = {}
names = ["patch_embed", "embeddings", "blocks.0", "blocks.1", "post_layernorm", "downsample", "merger"]
handles = []
for name in names:
    mod = visual.get_submodule(name)
    handles.append(mod.register_forward_hook(
        lambda m, a, o, name=name: hooks.__setitem__(name, o.detach().clone())))
with torch.no_grad():
    res = visual(pixels, grid_thw=grid, return_dict=True)
for h in handles:
    h.remove()
out["multi.input.pixel_values"] = pixels
out["multi.input.image_grid_thw"] = grid
for name in names:
    out[f"multi.hook.model.visual.{name}"] = hooks[name].contiguous()
assert torch.equal(res.pooler_output, hooks["merger"])

# a larger batch: an image with more tokens than one attention query chunk (256) and a 2-frame-pair video, split
# into (1, h, w) items as Glm4vModel.get_video_features does. The pixel rows are a formula (the C test rebuilds them)
# so only the outputs are stored: pixel[r, c] = float32(sin(0.01 * (r * 1176 + c)) * 2)
import numpy as np
grid = torch.tensor([(1, 18, 24), (2, 4, 4)], dtype=torch.int64)
split = torch.tensor([(1, 18, 24), (1, 4, 4), (1, 4, 4)], dtype=torch.int64)
P = int((grid[:, 0] * grid[:, 1] * grid[:, 2]).sum())
idx = np.arange(P * 1176, dtype=np.float64)
pixels = torch.from_numpy((np.sin(0.01 * idx) * 2).astype(np.float32).reshape(P, 1176))
hooks.clear()
handles = [visual.get_submodule(n).register_forward_hook(
    lambda m, a, o, name=n: hooks.__setitem__(name, o.detach().clone())) for n in ["blocks.0", "merger"]]
with torch.no_grad():
    visual(pixels, grid_thw=split, return_dict=True)
for h in handles:
    h.remove()
out["big.input.grid_thw"] = grid
out["big.hook.model.visual.blocks.0"] = hooks["blocks.0"].contiguous()
out["big.hook.model.visual.merger"] = hooks["merger"].contiguous()

save_file(out, "tests/data/vision_cases.safetensors")
print("wrote tests/data/vision_cases.safetensors:", len(out), "tensors")
