#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# bench_hf.py DIR [N] - HuggingFace transformers on the CPU on the bench checkpoint, as a user would run it: the
# model in its stored bf16 (torch_dtype=torch.bfloat16), the same 2048-token prompt (same ids as bench.c) in one
# forward (prefill), then N - 1 timed greedy decode steps with the KV cache (the first step is a warm-up, as in
# bench.c), and the vision tower on bench.c's 1024x1024 image. Threads: OMP_NUM_THREADS. Prints hf_* key=value lines.
import os, sys, time

import torch
from transformers import AutoModelForImageTextToText

d = sys.argv[1]
ndec = int(sys.argv[2]) if len(sys.argv) > 2 else 32
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
PROMPT = 2048

t0 = time.time()
model = AutoModelForImageTextToText.from_pretrained(d, dtype=torch.bfloat16)
model.eval()
print(f"hf_load_s={time.time() - t0:.1f}")
print(f"hf_dtype=bfloat16")
print(f"hf_threads={torch.get_num_threads()}")
V = model.config.text_config.vocab_size

# the xorshift ids of bench.c
s, ids, M = 88172645463325252, [], (1 << 64) - 1
for _ in range(PROMPT):
    s ^= (s << 13) & M
    s ^= s >> 7
    s ^= (s << 17) & M
    ids.append(s % V)
input_ids = torch.tensor([ids])

with torch.inference_mode():
    t0 = time.time()
    out = model(input_ids=input_ids, use_cache=True)
    tp = time.time() - t0
    print(f"hf_prefill_s={tp:.3f}")
    print(f"hf_prefill_tok_s={PROMPT / tp:.1f}")
    past = out.past_key_values
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    td, n = 0.0, 0
    for step in range(ndec):
        t1 = time.time()
        out = model(input_ids=nxt, past_key_values=past, use_cache=True)
        if step > 0:
            td += time.time() - t1
            n += 1
        past = out.past_key_values
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    print(f"hf_decode_tokens={n}")
    print(f"hf_decode_tok_s={n / td:.2f}")
# the vision tower in bf16 on bench.c's 1024 x 1024 image (the same pattern), preprocessed by the default
# Glm4vImageProcessor (GLM-4.5V's patch 14, merge 2, temporal patch 2): best of 2 runs after a warm-up
if getattr(model.config, "vision_config", None) is not None:
    import numpy as np
    from PIL import Image
    from transformers import Glm4vImageProcessor

    IMG = 1024
    x, y = np.meshgrid(np.arange(IMG), np.arange(IMG))
    rgb = np.stack([x * 255 // IMG, y * 255 // IMG, (x ^ y) & 255], -1).astype(np.uint8)
    proc = Glm4vImageProcessor()
    pv = proc(images=[Image.fromarray(rgb)], return_tensors="pt")
    pixels, grid = pv["pixel_values"].to(torch.bfloat16), pv["image_grid_thw"]
    with torch.inference_mode():
        best = float("inf")
        for rep in range(3):
            t0 = time.time()
            model.model.visual(pixels, grid_thw=grid)
            if rep > 0:
                best = min(best, time.time() - t0)
    print(f"hf_vision_patches={pixels.shape[0]}")
    print(f"hf_vision_s={best:.3f}")
try:
    import resource
    print(f"hf_peak_rss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6:.0f}")
except Exception:
    pass
